package coreset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libpatchcore/libpatchcore/internal/coreset/cblas"
	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// Benchmark sizes: rows of 784 patches per 224×224 image (28×28 grid), as in the reference.
var benchSizes = []struct {
	name   string
	images int
}{{"Small", 6}, {"Medium", 20}, {"Large", 60}}

const benchDim = 128

// benchData caches the generated point sets across sub-benchmarks.
var benchData = struct {
	sync.Mutex
	m map[string][]float32
}{m: map[string][]float32{}}

// benchPoints returns the named data set with n rows of benchDim columns.
func benchPoints(b testing.TB, kind string, n int) []float32 {
	benchData.Lock()
	defer benchData.Unlock()
	key := fmt.Sprintf("%s/%d", kind, n)
	if x, ok := benchData.m[key]; ok {
		return x
	}
	var x []float32
	switch kind {
	case "Gaussian":
		x = gaussianData(n, benchDim, 1)
	case "Clustered":
		x = clusteredData(n, benchDim, 300, 1)
	case "MNV2":
		x = mnv2Replicas(b, n)
	}
	benchData.m[key] = x
	return x
}

// mnv2Replicas builds n rows from the 3136 real MobileNetV2 patch embeddings of the golden
// weave images (2 train + 2 test images, D=1024), projected to 128 dims with a
// U(±1/√1024) matrix like the sampler's. Each further copy of the set plays "another image
// of the same texture": every row is displaced by isotropic Gaussian noise whose length is
// the median nearest-neighbour distance between patches of two different real images.
func mnv2Replicas(b testing.TB, n int) []float32 {
	bank := golden.Load(b, "mnv2/memory_bank.npy")
	test := golden.Load(b, "mnv2/embed_test.npy")
	const dIn = 1024
	src := append(append([]float32(nil), bank.F32...), test.F32...)
	m := len(src) / dIn
	r := rand.New(rand.NewPCG(7, 7))
	proj := make([]float32, dIn*benchDim)
	for i := range proj {
		proj[i] = float32((2*r.Float64() - 1) / 32)
	}
	base := make([]float32, m*benchDim)
	cblas.Project(src, m, dIn, proj, benchDim, base)

	// Median over image-1 patches of the distance to the nearest image-0 patch.
	pts := NewPoints(base, m, benchDim, 0)
	nn := make([]float64, 0, 784)
	for i := 784; i < 2*784; i++ {
		best := math.Inf(1)
		for j := 0; j < 784; j++ {
			best = min(best, float64(pts.dist(i, j)))
		}
		nn = append(nn, best)
	}
	sort.Float64s(nn)
	sigma := nn[len(nn)/2] / math.Sqrt(benchDim)

	x := make([]float32, n*benchDim)
	for i := 0; i < n; i++ {
		row := x[i*benchDim : (i+1)*benchDim]
		copy(row, base[(i%m)*benchDim:])
		if i >= m {
			for j := range row {
				row[j] += float32(sigma * r.NormFloat64())
			}
		}
	}
	return x
}

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPlain remembers GreedyPlain's selections so that the fast sub-benchmark that runs
// next on the same configuration can check it selects the same indices.
var benchPlain = struct {
	sync.Mutex
	m map[string][]int
}{m: map[string][]int{}}

// BenchmarkCoresetGreedy times the approximate greedy coreset loop (mean-distance init to
// 10 start points included) on projected 128-d features: plain vs fast, for three data
// kinds (Gaussian: worst case for pruning; Clustered: synthetic texture-like features;
// MNV2: real embeddings replicated with noise), three sizes (6, 20, 60 images of 784
// patches) and 10 % / 1 % coresets. Run with
//
//	go test -bench Coreset -run xxx ./internal/coreset
func BenchmarkCoresetGreedy(b *testing.B) {
	for _, kind := range []string{"Gaussian", "Clustered", "MNV2"} {
		for _, sz := range benchSizes {
			n := sz.images * 784
			for _, pct := range []float64{0.10, 0.01} {
				k := int(float64(n) * pct)
				for _, impl := range []string{"Plain", "Fast"} {
					cfg := fmt.Sprintf("%s/%s/%d%%", kind, sz.name, int(pct*100))
					b.Run(cfg+"/"+impl, func(b *testing.B) {
						x := benchPoints(b, kind, n)
						starts := randomStarts(n, 10, 3)
						var sel []int
						var st fastStats
						cpu0 := cpuTime()
						b.ResetTimer()
						for b.Loop() {
							pts := NewPoints(x, n, benchDim, 0)
							init := pts.MeanDistances(starts)
							if impl == "Plain" {
								sel = pts.GreedyPlain(init, k)
							} else {
								sel, st = pts.greedyFast(init, k)
							}
						}
						b.StopTimer()
						b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
						benchPlain.Lock()
						defer benchPlain.Unlock()
						if impl == "Plain" {
							benchPlain.m[cfg] = sel
							return
						}
						plain := float64(n) * float64(k-1)
						b.ReportMetric(100*float64(st.distances)/plain, "%exact")
						b.ReportMetric(100*float64(st.approx+st.groupDist)/plain, "%int8")
						if want, ok := benchPlain.m[cfg]; ok && !slices.Equal(sel, want) {
							b.Fatalf("fast selection differs from plain: %s", firstDiff(sel, want))
						}
					})
				}
			}
		}
	}
}

// BenchmarkCoresetProjection times the random projection of the 60-image WRN50 case:
// 47,040 × 1024 features times a 1024 × 128 matrix (OpenBLAS sgemm).
func BenchmarkCoresetProjection(b *testing.B) {
	const n, dIn = 60 * 784, 1024
	x := gaussianData(n, dIn, 5)
	p := gaussianData(dIn, benchDim, 6)
	out := make([]float32, n*benchDim)
	for b.Loop() {
		cblas.Project(x, n, dIn, p, benchDim, out)
	}
}
