package coreset

import (
	"math"
	"sync"
)

// The int8 filter of GreedyFast. Each point x is stored as x̃ in int8 with a global scale
// s and per-dimension offsets m (x̂_j = s·x̃_j + m_j), and with qerr(x) >= ‖x̂ − x‖. The
// squared distance Σ_j (x̃_j − ỹ_j)² is an exact integer, so
//
//	t(x,y) >= s·√Σ − qerr(x) − qerr(y)
//
// is a rigorous lower bound of the true distance at a quarter of the memory traffic of the
// float32 rows. It decides most "does the new pick come closer than d_p" questions without
// the exact float32 distance (see fast.go).

// quantLevels is the largest magnitude of a quantized coordinate.
const quantLevels = 127

// quantMaxDim bounds the dimension for the int32 arithmetic of the AVX2 and VNNI kernels:
// d·(2·quantLevels)² < 2³¹. Beyond it the portable kernels run and their int32 results are
// clamped (still lower bounds).
const quantMaxDim = 32768

// quantizer maps float32 rows to int8: x̃_j = round((x_j − m_j)/s), clamped to ±127.
type quantizer struct {
	scale float64   // s
	mid   []float64 // m
	slack float64   // absolute allowance for float64 rounding in qerr
}

// newQuantizer chooses s and m from the range of every coordinate of p: m_j is the middle
// of the range, s the largest range over 254, so nothing is clamped.
func (p *Points) newQuantizer() *quantizer {
	d := p.d
	lo := make([]float64, d)
	hi := make([]float64, d)
	for j := range lo {
		lo[j], hi[j] = math.Inf(1), math.Inf(-1)
	}
	var mu sync.Mutex
	var xmax float64
	p.parallelRows(func(a, b int) {
		l := make([]float64, d)
		h := make([]float64, d)
		for j := range l {
			l[j], h[j] = math.Inf(1), math.Inf(-1)
		}
		for i := a; i < b; i++ {
			for j, v := range p.row(i) {
				l[j] = min(l[j], float64(v))
				h[j] = max(h[j], float64(v))
			}
		}
		mu.Lock()
		for j := range lo {
			lo[j] = min(lo[j], l[j])
			hi[j] = max(hi[j], h[j])
		}
		mu.Unlock()
	})
	qz := &quantizer{mid: make([]float64, d)}
	var span float64
	for j := range qz.mid {
		qz.mid[j] = lo[j] + (hi[j]-lo[j])/2
		span = max(span, hi[j]-lo[j])
		xmax = max(xmax, math.Abs(lo[j]), math.Abs(hi[j]))
	}
	qz.scale = span / (2 * quantLevels)
	if !(qz.scale > 0) {
		qz.scale = 1 // all points equal: every x̃ is 0 and the filter never decides anything
	}
	// Every float64 operation in encode is on magnitudes below 3·xmax + 1; its rounding
	// error is below 1e-15 of that, per coordinate.
	qz.slack = 1e-12 * (3*xmax + 1) * math.Sqrt(float64(d))
	return qz
}

// encode quantizes row into out and returns qerr, an upper bound of ‖x̂ − x‖.
func (qz *quantizer) encode(row []float32, out []int8) float64 {
	out = out[:len(row)]
	s, inv := qz.scale, 1/qz.scale
	var e2 float64
	for j, v := range row {
		x := float64(v)
		k := math.Round((x - qz.mid[j]) * inv)
		k = max(-quantLevels, min(quantLevels, k))
		out[j] = int8(k)
		e := s*k + qz.mid[j] - x
		e2 += e * e
	}
	return math.Sqrt(e2)*(1+1e-9) + qz.slack
}

// sqDist8Clamped is sqDist8Generic clamped to the int32 range. Clamping keeps it a lower
// bound of the true value; it only bites beyond quantMaxDim dimensions.
func sqDist8Clamped(a []int8, c []int16) int32 {
	return int32(min(sqDist8Generic(a, c), math.MaxInt32))
}

// sqDist8Generic is Σ_j (a_j − c_j)² in exact integer arithmetic.
func sqDist8Generic(a []int8, c []int16) int64 {
	c = c[:len(a)]
	var s int64
	for j, v := range a {
		t := int64(v) - int64(c[j])
		s += t * t
	}
	return s
}
