// Package coreset holds the numeric kernels of the greedy coreset samplers of
// patchcore-inspection (spec §5.1): the distance primitive, the two initialisations (mean
// distance to start points for the approximate sampler, row norms of the full distance
// matrix for the exact one) and the greedy farthest-point loop, in two implementations
// that select identical indices:
//
//   - GreedyPlain: the reference loop as written (every iteration computes the distance of
//     every point to the new pick). It is the baseline and the oracle of the tests.
//   - GreedyFast: the same loop with per-centre groups, triangle-inequality pruning, an
//     int8 lower-bound filter and multi-core work sharing. It computes an exact distance
//     only where it might change the running minimum, and computes it bit-identically to
//     GreedyPlain, so the selected indices are the same (see fast.go for the argument).
//
// All arithmetic on distances is float32 with the reference's expansion
// sqrt(max(|a|² − 2a·b + |b|², 0)). The package takes validated input: the callers
// (package core) check shapes, sizes and finiteness first.
package coreset

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// NormLimit is the largest squared row norm the kernels accept. Below it, no intermediate
// of the distance expansion can overflow float32 (|a|² + 2|a·b| + |b|² < 4·NormLimit).
const NormLimit = 1e37

// Points is a set of N projected rows of dimension D (row-major float32) together with
// their squared norms, computed with the package's dot kernel.
type Points struct {
	data    []float32
	n, d    int
	norms   []float32
	workers int
}

// NewPoints wraps data (n×d, row-major; not copied) and computes the squared norms.
// workers is the number of goroutines later calls may use (<= 0: GOMAXPROCS).
func NewPoints(data []float32, n, d, workers int) *Points {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Points{data: data[:n*d], n: n, d: d, norms: make([]float32, n), workers: workers}
	p.parallelRows(func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := p.row(i)
			p.norms[i] = dot(r, r)
		}
	})
	return p
}

// MaxSquaredNorm is the largest squared row norm (0 for an empty set). Callers compare it
// with NormLimit; it is NaN or +Inf when the data are not finite.
func (p *Points) MaxSquaredNorm() float32 {
	var m float32
	for _, v := range p.norms {
		if v != v {
			return v
		}
		m = max(m, v)
	}
	return m
}

// row returns point i.
func (p *Points) row(i int) []float32 {
	return p.data[i*p.d : (i+1)*p.d : (i+1)*p.d]
}

// dist is the reference distance from point i to point c.
func (p *Points) dist(i, c int) float32 {
	return distFromDot(p.norms[i], p.norms[c], dot(p.row(i), p.row(c)))
}

// MeanDistances is the approximate sampler's initial score: for every point, the mean of
// its distances to the start points (summed in float32 in the order given, then divided by
// their count). starts must be non-empty valid indices.
func (p *Points) MeanDistances(starts []int) []float32 {
	out := make([]float32, p.n)
	cnt := float32(len(starts))
	p.parallelRows(func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var s float32
			for _, c := range starts {
				s += p.dist(i, c)
			}
			out[i] = s / cnt
		}
	})
	return out
}

// rowNormBlock is the number of columns DistanceRowNorms streams through the cache at once.
const rowNormBlock = 256

// DistanceRowNorms is the exact sampler's initial score: for every point i, the L2 norm of
// row i of the N×N distance matrix M[i][j] = dist(i, j), accumulated in float64 over j in
// ascending order and rounded to float32. The matrix is never stored: memory is O(N), time
// O(N²·D).
func (p *Points) DistanceRowNorms() []float32 {
	acc := make([]float64, p.n)
	all := make([]int32, p.n)
	for j := range all {
		all[j] = int32(j)
	}
	p.parallelRows(func(lo, hi int) {
		dots := make([]float32, rowNormBlock)
		for jb := 0; jb < p.n; jb += rowNormBlock {
			je := min(jb+rowNormBlock, p.n)
			for i := lo; i < hi; i++ {
				dotRows(p.row(i), p.data, p.d, all[jb:je], dots)
				s := acc[i]
				for j := jb; j < je; j++ {
					m := float64(distFromDot(p.norms[i], p.norms[j], dots[j-jb]))
					s += m * m
				}
				acc[i] = s
			}
		}
	})
	out := make([]float32, p.n)
	for i, s := range acc {
		out[i] = float32(math.Sqrt(s))
	}
	return out
}

// GreedyPlain runs the reference greedy loop k times from the initial scores init (not
// modified): pick the first index of the maximum score, then lower every score to the
// distance to the pick where that is smaller. It returns the picks in order. Single-threaded
// by design: it is the baseline and the test oracle for GreedyFast.
func (p *Points) GreedyPlain(init []float32, k int) []int {
	if k <= 0 || p.n == 0 {
		return []int{}
	}
	d := append([]float32(nil), init[:p.n]...)
	sel := make([]int, 0, k)
	for t := 0; t < k; t++ {
		c := 0
		for i, v := range d {
			if v > d[c] {
				c = i
			}
		}
		sel = append(sel, c)
		if t == k-1 {
			break
		}
		for i := range d {
			if f := p.dist(i, c); f < d[i] {
				d[i] = f
			}
		}
	}
	return sel
}

// workerPanic carries the first panic of the worker goroutines of one parallel call back
// to the calling goroutine. A panic left in a goroutine of its own kills the host process
// (recover only works in the panicking goroutine); re-raised on the caller's goroutine
// after every worker has stopped, it reaches the library's guards, which turn it into an
// internal error.
type workerPanic struct {
	once  sync.Once
	value any
}

// run calls fn, recording a panic instead of letting it unwind the goroutine.
func (p *workerPanic) run(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			p.once.Do(func() { p.value = r })
		}
	}()
	fn()
}

// rethrow panics on the calling goroutine with the first recorded panic, if any. Call it
// after the workers are done.
func (p *workerPanic) rethrow() {
	if p.value != nil {
		panic(p.value)
	}
}

// parallelRows splits [0, N) into one contiguous range per worker and runs fn on each.
func (p *Points) parallelRows(fn func(lo, hi int)) {
	w := min(p.workers, max(1, p.n/64))
	if w <= 1 {
		fn(0, p.n)
		return
	}
	var wg sync.WaitGroup
	var failed workerPanic
	for k := 0; k < w; k++ {
		lo, hi := p.n*k/w, p.n*(k+1)/w
		wg.Go(func() { failed.run(func() { fn(lo, hi) }) })
	}
	wg.Wait()
	failed.rethrow()
}

// parallelChunks covers [0, n) with calls fn(worker, lo, hi) on ranges of at most chunk
// indices, handed out from a shared counter to up to workers goroutines (the caller's
// goroutine is worker 0; worker numbers are below workers).
func parallelChunks(n, workers, chunk int, fn func(worker, lo, hi int)) {
	w := min(workers, (n+chunk-1)/chunk)
	if w <= 1 {
		fn(0, 0, n)
		return
	}
	var next atomic.Int64
	run := func(worker int) {
		for {
			lo := int(next.Add(int64(chunk))) - chunk
			if lo >= n {
				return
			}
			fn(worker, lo, min(lo+chunk, n))
		}
	}
	var wg sync.WaitGroup
	var failed workerPanic
	for k := 1; k < w; k++ {
		wg.Go(func() { failed.run(func() { run(k) }) })
	}
	failed.run(func() { run(0) })
	wg.Wait()
	failed.rethrow()
}
