package coreset

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/coreset/cblas"
	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// goldenInts loads an int64 golden array as []int.
func goldenInts(t *testing.T, rel string) []int {
	t.Helper()
	a := golden.Load(t, rel)
	out := make([]int, len(a.I64))
	for i, v := range a.I64 {
		out[i] = int(v)
	}
	return out
}

// firstDiff describes the first position where two index sequences differ.
func firstDiff(got, want []int) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at %d: got %d, want %d (len %d vs %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(got), len(want))
}

// TestGoldenCoreset reproduces the reference's approximate and exact greedy selections
// (200 of 2000) exactly, from the reference's own projected features and from our sgemm
// projection of the features with the golden projection matrix, with both loops.
func TestGoldenCoreset(t *testing.T) {
	feats := golden.Load(t, "coreset/features.npy")
	proj := golden.Load(t, "coreset/projection.npy")
	reduced := golden.Load(t, "coreset/reduced_features.npy")
	starts := goldenInts(t, "coreset/start_indices.npy")
	wantApprox := goldenInts(t, "coreset/approx_greedy_indices.npy")
	wantExact := goldenInts(t, "coreset/greedy_indices.npy")
	n, dIn, dOut := feats.Shape[0], feats.Shape[1], proj.Shape[1]
	k := int(float64(n) * 0.1)
	if k != len(wantApprox) || k != len(wantExact) {
		t.Fatalf("golden sizes %d/%d, expected %d", len(wantApprox), len(wantExact), k)
	}

	ours := make([]float32, n*dOut)
	cblas.Project(feats.F32, n, dIn, proj.F32, dOut, ours)
	var maxDiff float64
	for i, v := range ours {
		maxDiff = max(maxDiff, math.Abs(float64(v-reduced.F32[i])))
	}
	if maxDiff > 1e-4 {
		t.Fatalf("sgemm projection differs from the reference's by %g", maxDiff)
	}
	t.Logf("sgemm projection vs reference: max |diff| = %.3g", maxDiff)

	for _, src := range []struct {
		name string
		data []float32
	}{{"reference projection", reduced.F32}, {"sgemm projection", ours}} {
		for _, workers := range []int{1, 2} {
			pts := NewPoints(src.data, n, dOut, workers)
			approxInit := pts.MeanDistances(starts)
			exactInit := pts.DistanceRowNorms()
			for name, got := range map[string][]int{
				"approx plain": pts.GreedyPlain(approxInit, k),
				"approx fast":  pts.GreedyFast(approxInit, k),
			} {
				if !slices.Equal(got, wantApprox) {
					t.Errorf("%s, %s, %d workers: %s", src.name, name, workers, firstDiff(got, wantApprox))
				}
			}
			for name, got := range map[string][]int{
				"exact plain": pts.GreedyPlain(exactInit, k),
				"exact fast":  pts.GreedyFast(exactInit, k),
			} {
				if !slices.Equal(got, wantExact) {
					t.Errorf("%s, %s, %d workers: %s", src.name, name, workers, firstDiff(got, wantExact))
				}
			}
		}
	}
}

// TestHandComputed checks the initialisations and the loop on a tiny set computed by hand:
// four points on a line at 0, 1, 3, 7.
func TestHandComputed(t *testing.T) {
	pts := NewPoints([]float32{0, 1, 3, 7}, 4, 1, 1)
	// Mean distance to points 0 and 1: (0+1)/2, (1+0)/2, (3+2)/2, (7+6)/2.
	if got, want := pts.MeanDistances([]int{0, 1}), []float32{0.5, 0.5, 2.5, 6.5}; !slices.Equal(got, want) {
		t.Fatalf("MeanDistances = %v, want %v", got, want)
	}
	// Row norms of |x_i - x_j|: sqrt(0+1+9+49), sqrt(1+0+4+36), sqrt(9+4+0+16), sqrt(49+36+16+0).
	want := []float32{float32(math.Sqrt(59)), float32(math.Sqrt(41)), float32(math.Sqrt(29)), float32(math.Sqrt(101))}
	if got := pts.DistanceRowNorms(); !slices.Equal(got, want) {
		t.Fatalf("DistanceRowNorms = %v, want %v", got, want)
	}
	// From init (6.5 at 7): pick 3; d = min(init, |x-7|) = 0.5, 0.5, 2.5, 0 → pick 2 (2.5);
	// d = 0.5, 0.5, 0, 0 → pick 0 (first of the tie).
	init := []float32{0.5, 0.5, 2.5, 6.5}
	for name, got := range map[string][]int{"plain": pts.GreedyPlain(init, 3), "fast": pts.GreedyFast(init, 3)} {
		if !slices.Equal(got, []int{3, 2, 0}) {
			t.Errorf("%s: %v, want [3 2 0]", name, got)
		}
	}
}

// matchSet is a data set for the fast-versus-plain comparisons.
type matchSet struct {
	name string
	data []float32
	n, d int
}

// matchSets are data sets of many sizes, dimensions and shapes: Gaussian, clustered, exact
// duplicates, integer lattices full of ties, identical points, fewer points than start
// points, and large coordinates with a small spread (where the pruning margins matter).
func matchSets() []matchSet {
	var sets []matchSet
	for _, n := range []int{1, 2, 7, 9, 10, 33, 200, 1500} {
		for _, d := range []int{1, 3, 16, 37, 128} {
			if n == 1500 && d != 128 && d != 3 {
				continue
			}
			seed := uint64(n*1000 + d)
			sets = append(sets,
				matchSet{fmt.Sprintf("gauss n=%d d=%d", n, d), gaussianData(n, d, seed), n, d},
				matchSet{fmt.Sprintf("lattice n=%d d=%d", n, d), latticeData(n, d, 3, seed), n, d},
			)
			if n >= 33 {
				sets = append(sets,
					matchSet{fmt.Sprintf("clustered n=%d d=%d", n, d), clusteredData(n, d, 1+n/40, seed), n, d},
					matchSet{fmt.Sprintf("duplicates n=%d d=%d", n, d), duplicatedData(n, d, n/7, seed), n, d},
				)
			}
		}
	}
	far := clusteredData(1000, 32, 10, 3)
	for i := range far {
		far[i] = far[i]*1e-3 + 1000
	}
	return append(sets,
		matchSet{"identical", make([]float32, 300*8), 300, 8},
		matchSet{"binary lattice", latticeData(2000, 6, 2, 5), 2000, 6},
		matchSet{"clustered large", clusteredData(6000, 128, 60, 9), 6000, 128},
		matchSet{"offset 1e3", far, 1000, 32},
	)
}

// checkFastMatchesPlain runs GreedyFast and GreedyPlain on every set with both
// initialisations, several coreset sizes and worker counts, and fails on any difference.
// It returns the number of combinations compared.
func checkFastMatchesPlain(t *testing.T, sets []matchSet, workers []int) int {
	t.Helper()
	checked := 0
	for si, s := range sets {
		pts := NewPoints(s.data, s.n, s.d, 1)
		inits := map[string][]float32{"approx": pts.MeanDistances(randomStarts(s.n, 10, uint64(si)))}
		if s.n <= 1500 {
			inits["exact"] = pts.DistanceRowNorms()
		}
		for _, frac := range []float64{0.01, 0.1, 0.5, 0.99} {
			k := int(float64(s.n) * frac)
			if k == 0 || (frac > 0.1 && s.n > 2000) || (frac > 0.5 && s.n > 200) {
				continue
			}
			for name, init := range inits {
				want := pts.GreedyPlain(init, k)
				for _, w := range workers {
					pts.workers = w
					got := pts.GreedyFast(init, k)
					if !slices.Equal(got, want) {
						t.Fatalf("%s, %s init, k=%d, %d workers: %s", s.name, name, k, w, firstDiff(got, want))
					}
					checked++
				}
			}
		}
	}
	return checked
}

// TestFastMatchesPlain: GreedyFast selects exactly GreedyPlain's indices.
func TestFastMatchesPlain(t *testing.T) {
	t.Logf("%d (data set, init, k, workers) combinations identical", checkFastMatchesPlain(t, matchSets(), []int{1, 2, 3}))
}

// TestFastPrunes guards the point of GreedyFast: on clustered data it must skip most of
// the distances the plain loop computes.
func TestFastPrunes(t *testing.T) {
	const n, d = 8000, 128
	pts := NewPoints(clusteredData(n, d, 80, 4), n, d, 2)
	init := pts.MeanDistances(randomStarts(n, 10, 4))
	k := n / 10
	sel, st := pts.greedyFast(init, k)
	if !slices.Equal(sel, pts.GreedyPlain(init, k)) {
		t.Fatal("fast and plain selections differ")
	}
	plain := int64(n) * int64(k-1)
	t.Logf("distances computed: %d point + %d centre of %d (%.1f%%)", st.distances, st.groupDist, plain,
		100*float64(st.distances+st.groupDist)/float64(plain))
	if st.distances+st.groupDist > plain/4 {
		t.Fatalf("pruning ineffective: %d of %d distances computed", st.distances+st.groupDist, plain)
	}
}
