package core

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/coreset"
	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// samplerGolden loads the reference's coreset case.
func samplerGolden(t *testing.T) (features Tensor, proj []float32, starts, approx, exact []int) {
	t.Helper()
	f := golden.Load(t, "coreset/features.npy")
	p := golden.Load(t, "coreset/projection.npy")
	ints := func(rel string) []int {
		a := golden.Load(t, rel)
		out := make([]int, len(a.I64))
		for i, v := range a.I64 {
			out[i] = int(v)
		}
		return out
	}
	features, err := TensorFrom(f.F32, f.Shape...)
	if err != nil {
		t.Fatal(err)
	}
	return features, p.F32, ints("coreset/start_indices.npy"), ints("coreset/approx_greedy_indices.npy"), ints("coreset/greedy_indices.npy")
}

// checkBank verifies that bank holds rows idx of features, in order.
func checkBank(t *testing.T, features, bank Tensor, idx []int) {
	t.Helper()
	d := features.Shape[1]
	if !slices.Equal(bank.Shape, []int{len(idx), d}) {
		t.Fatalf("bank shape %v, want [%d %d]", bank.Shape, len(idx), d)
	}
	for i, r := range idx {
		if !slices.Equal(bank.Data[i*d:(i+1)*d], features.Data[r*d:(r+1)*d]) {
			t.Fatalf("bank row %d is not features row %d", i, r)
		}
	}
}

// TestSamplersGolden reproduces the reference's approximate and exact greedy selections on
// the golden 2000×1024 features with the golden projection and start points injected: the
// samplers project the features themselves (OpenBLAS) and must select the same 200 rows in
// the same order.
func TestSamplersGolden(t *testing.T) {
	features, proj, starts, wantApprox, wantExact := samplerGolden(t)
	a := NewApproximateGreedyCoresetSampler(0.1, 0)
	a.Projection, a.StartIndices = proj, starts
	bank, idx, err := a.Sample(features)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx, wantApprox) {
		t.Fatalf("approximate greedy indices differ from the reference:\n got %v\nwant %v", idx[:20], wantApprox[:20])
	}
	checkBank(t, features, bank, idx)

	g := NewGreedyCoresetSampler(0.1, 0)
	g.Projection = proj
	bank, idx, err = g.Sample(features)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx, wantExact) {
		t.Fatalf("exact greedy indices differ from the reference:\n got %v\nwant %v", idx[:20], wantExact[:20])
	}
	checkBank(t, features, bank, idx)
}

// TestApproxSamplerHandComputed: four points on a line (D = ProjectionDim = 1, so no
// projection) at 0, 1, 3, 7 with start points 0 and 1. Initial scores are the mean
// distances 0.5, 0.5, 2.5, 6.5; picks: 3 (6.5), then scores 0.5, 0.5, 2.5, 0 → 2, then
// 0.5, 0.5, 0, 0 → 0 (first of the tie).
func TestApproxSamplerHandComputed(t *testing.T) {
	features, _ := TensorFrom([]float32{0, 1, 3, 7}, 4, 1)
	s := ApproximateGreedyCoresetSampler{Percentage: 0.75, ProjectionDim: 1, StartIndices: []int{0, 1}}
	bank, idx, err := s.Sample(features)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx, []int{3, 2, 0}) || !slices.Equal(bank.Data, []float32{7, 3, 0}) {
		t.Fatalf("got indices %v bank %v, want [3 2 0] and [7 3 0]", idx, bank.Data)
	}
}

// TestApproxSamplerMatchesPlainOracle compares the sampler (drawn start points, injected
// projection, the fast loop) with the plain reference loop run on the same projection and
// start points, for several sizes including fewer rows than start points.
func TestApproxSamplerMatchesPlainOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		n, d, dim int
		p         float64
	}{{5, 3, 2, 0.5}, {9, 8, 4, 0.3}, {64, 16, 16, 0.25}, {500, 40, 8, 0.1}, {1200, 200, 128, 0.05}} {
		data := make([]float32, tc.n*tc.d)
		for i := range data {
			data[i] = float32(r.NormFloat64())
		}
		features, _ := TensorFrom(data, tc.n, tc.d)
		var proj []float32
		if tc.d != tc.dim {
			proj = drawProjection(7, tc.d, tc.dim)
		}
		s := ApproximateGreedyCoresetSampler{Percentage: tc.p, Seed: 3, ProjectionDim: tc.dim, Projection: proj}
		bank, idx, err := s.Sample(features)
		if err != nil {
			t.Fatal(err)
		}
		// The oracle: same projection (computed naively in float64, then float32 — the
		// selections are robust to that rounding on this data), the start points the
		// sampler draws for this seed, the plain loop.
		starts := drawDistinct(rand.New(rand.NewPCG(3, streamStart)), tc.n, min(DefaultNumStartingPoints, tc.n))
		rows := data
		if proj != nil {
			rows = make([]float32, tc.n*tc.dim)
			for i := 0; i < tc.n; i++ {
				for j := 0; j < tc.dim; j++ {
					var acc float64
					for l := 0; l < tc.d; l++ {
						acc += float64(data[i*tc.d+l]) * float64(proj[l*tc.dim+j])
					}
					rows[i*tc.dim+j] = float32(acc)
				}
			}
		}
		pts := coreset.NewPoints(rows, tc.n, tc.dim, 1)
		want := pts.GreedyPlain(pts.MeanDistances(starts), int(float64(tc.n)*tc.p))
		if !slices.Equal(idx, want) {
			t.Fatalf("n=%d d=%d dim=%d: sampler %v, plain oracle %v", tc.n, tc.d, tc.dim, idx, want)
		}
		checkBank(t, features, bank, idx)
	}
}

// TestSamplerSeeds: the drawn projection and start points are reproducible for a seed and
// change with it; the projection has the reference's distribution.
func TestSamplerSeeds(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	data := make([]float32, 3000*64)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	features, _ := TensorFrom(data, 3000, 64)
	run := func(seed uint64) []int {
		_, idx, err := NewApproximateGreedyCoresetSampler(0.02, seed).Sample(features)
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different selections")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, identical selections")
	}

	const d, dim = 1024, 128
	p := drawProjection(5, d, dim)
	bound := 1 / math.Sqrt(d)
	var sum, sq float64
	for _, v := range p {
		if math.Abs(float64(v)) > bound {
			t.Fatalf("projection entry %v outside ±%v", v, bound)
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean, variance := sum/float64(len(p)), sq/float64(len(p))
	// U(−b, b): mean 0, variance b²/3; with 131072 draws the errors are ~1e-4 relative.
	if math.Abs(mean) > 0.01*bound || math.Abs(variance/(bound*bound/3)-1) > 0.02 {
		t.Fatalf("projection mean %g, variance %g, want 0 and %g", mean, variance, bound*bound/3)
	}
	if slices.Equal(p, drawProjection(6, d, dim)) || !slices.Equal(p, drawProjection(5, d, dim)) {
		t.Fatal("projection draw is not a function of the seed")
	}
}

// TestRandomSampler: floor(N·p) distinct rows, reproducible per seed, roughly uniform.
func TestRandomSampler(t *testing.T) {
	data := make([]float32, 50*3)
	for i := range data {
		data[i] = float32(i)
	}
	features, _ := TensorFrom(data, 50, 3)
	bank, idx, err := NewRandomSampler(0.3, 11).Sample(features)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx) != 15 {
		t.Fatalf("got %d rows, want floor(50·0.3) = 15", len(idx))
	}
	sorted := slices.Clone(idx)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != 15 || sorted[0] < 0 || sorted[len(sorted)-1] >= 50 {
		t.Fatalf("indices not 15 distinct rows in range: %v", idx)
	}
	checkBank(t, features, bank, idx)
	_, again, _ := NewRandomSampler(0.3, 11).Sample(features)
	_, other, _ := NewRandomSampler(0.3, 12).Sample(features)
	if !slices.Equal(idx, again) || slices.Equal(idx, other) {
		t.Fatal("random sampler is not a function of the seed")
	}
	// Uniformity: first draw of 1 row out of 4, over 4000 seeds.
	var counts [4]int
	for seed := uint64(0); seed < 4000; seed++ {
		counts[drawDistinct(rand.New(rand.NewPCG(seed, streamRandom)), 4, 1)[0]]++
	}
	for i, c := range counts {
		if c < 880 || c > 1120 { // 1000 ± ~4.4σ
			t.Fatalf("row %d drawn %d times of 4000: %v", i, c, counts)
		}
	}
}

// TestIdentitySampler: every row, in order, sharing the features' storage.
func TestIdentitySampler(t *testing.T) {
	features, _ := TensorFrom([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	bank, idx, err := IdentitySampler{}.Sample(features)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx, []int{0, 1, 2}) || !slices.Equal(bank.Data, features.Data) || !slices.Equal(bank.Shape, []int{3, 2}) {
		t.Fatalf("identity: indices %v bank %v", idx, bank)
	}
}

// TestSamplerErrors: bad percentages, empty coresets, bad shapes, NaN, bad injections.
func TestSamplerErrors(t *testing.T) {
	features, _ := TensorFrom(make([]float32, 40*4), 40, 4)
	for _, p := range []float64{0, 1, -0.1, 1.5, math.NaN(), math.Inf(1)} {
		for name, s := range map[string]Sampler{
			"random": NewRandomSampler(p, 0), "greedy": NewGreedyCoresetSampler(p, 0),
			"approx": NewApproximateGreedyCoresetSampler(p, 0),
		} {
			if _, _, err := s.Sample(features); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s percentage %v: err = %v, want ErrInvalidArgument", name, p, err)
			}
		}
		if _, err := SamplerByName("approx_greedy_coreset", p, 0); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SamplerByName percentage %v: err = %v", p, err)
		}
	}
	// floor(40 · 0.02) = 0: refused (the reference would return an empty bank).
	if _, _, err := NewApproximateGreedyCoresetSampler(0.02, 0).Sample(features); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty coreset: err = %v", err)
	}
	bad := []Tensor{
		{Shape: []int{40}, Data: make([]float32, 40)},
		{Shape: []int{0, 4}, Data: nil},
		{Shape: []int{10, 4}, Data: make([]float32, 39)},
		{Shape: []int{2, 2}, Data: []float32{1, float32(math.NaN()), 0, 0}},
	}
	for _, f := range bad {
		for _, s := range []Sampler{IdentitySampler{}, NewRandomSampler(0.5, 0), NewApproximateGreedyCoresetSampler(0.5, 0)} {
			if _, _, err := s.Sample(f); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("features %v: err = %v, want ErrInvalidArgument", f.Shape, err)
			}
		}
	}
	injections := []ApproximateGreedyCoresetSampler{
		{Percentage: 0.5, StartIndices: []int{}},
		{Percentage: 0.5, StartIndices: []int{1, 1}},
		{Percentage: 0.5, StartIndices: []int{40}},
		{Percentage: 0.5, StartIndices: []int{-1}},
		{Percentage: 0.5, NumStartingPoints: -2},
		{Percentage: 0.5, Projection: make([]float32, 4*128-1)},
		{Percentage: 0.5, Projection: append(make([]float32, 4*128-1), float32(math.Inf(1)))},
		{Percentage: 0.5, ProjectionDim: 4, Projection: make([]float32, 16)}, // D == dim: no projection
		{Percentage: 0.5, ProjectionDim: -1},
	}
	for i, s := range injections {
		if _, _, err := s.Sample(features); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("injection case %d: err = %v, want ErrInvalidArgument", i, err)
		}
	}
	big, _ := TensorFrom([]float32{3e19, 0, 0, 0, 1, 1, 1, 1}, 2, 4)
	if _, _, err := (ApproximateGreedyCoresetSampler{Percentage: 0.5, ProjectionDim: 4}).Sample(big); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("overflowing norms: err = %v", err)
	}
	g := GreedyCoresetSampler{Percentage: 0.5, MaxMatrixBytes: 40*40*4 - 1}
	if _, _, err := g.Sample(features); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("exact greedy above the matrix cap: err = %v", err)
	}
	g.MaxMatrixBytes = 40 * 40 * 4
	if _, _, err := g.Sample(features); err != nil {
		t.Errorf("exact greedy at the matrix cap: %v", err)
	}
	if _, err := SamplerByName("kcenter", 0.1, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unknown sampler: err = %v", err)
	}
}

// TestSamplerByName maps the reference CLI names to the samplers with their defaults.
func TestSamplerByName(t *testing.T) {
	for name, want := range map[string]Sampler{
		"identity":              IdentitySampler{},
		"random":                &RandomSampler{Percentage: 0.1, Seed: 5},
		"greedy_coreset":        &GreedyCoresetSampler{Percentage: 0.1, Seed: 5, ProjectionDim: 128},
		"approx_greedy_coreset": &ApproximateGreedyCoresetSampler{Percentage: 0.1, Seed: 5, ProjectionDim: 128, NumStartingPoints: 10},
	} {
		s, err := SamplerByName(name, 0.1, 5)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !samplerEqual(s, want) {
			t.Errorf("%s: got %#v, want %#v", name, s, want)
		}
	}
	if _, err := SamplerByName("identity", 7, 0); err != nil {
		t.Errorf("identity ignores the percentage, got %v", err)
	}
}

// samplerEqual compares samplers field by field (slices are nil in these cases).
func samplerEqual(a, b Sampler) bool {
	switch x := a.(type) {
	case IdentitySampler:
		_, ok := b.(IdentitySampler)
		return ok
	case *RandomSampler:
		y, ok := b.(*RandomSampler)
		return ok && *x == *y
	case *GreedyCoresetSampler:
		y, ok := b.(*GreedyCoresetSampler)
		return ok && x.Percentage == y.Percentage && x.Seed == y.Seed && x.ProjectionDim == y.ProjectionDim &&
			x.Projection == nil && x.MaxMatrixBytes == y.MaxMatrixBytes && x.Workers == y.Workers
	case *ApproximateGreedyCoresetSampler:
		y, ok := b.(*ApproximateGreedyCoresetSampler)
		return ok && x.Percentage == y.Percentage && x.Seed == y.Seed && x.ProjectionDim == y.ProjectionDim &&
			x.NumStartingPoints == y.NumStartingPoints && x.Projection == nil && x.StartIndices == nil && x.Workers == y.Workers
	}
	return false
}
