package core

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// embRelDiff is max|got-want| / max|want|, the golden README's comparison.
func embRelDiff(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("lengths %d and %d differ", len(got), len(want))
	}
	d, m := 0.0, 0.0
	for i := range got {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = max(m, math.Abs(float64(want[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

func embGoldenTensor(t *testing.T, rel string) Tensor {
	t.Helper()
	a := golden.Load(t, rel)
	x, err := TensorFrom(a.F32, a.Shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestAdaptivePoolWindows(t *testing.T) {
	for _, c := range []struct{ i, in, out, s, e int }{
		{0, 4608, 1024, 0, 5}, {1, 4608, 1024, 4, 9}, {2, 4608, 1024, 9, 14}, {1023, 4608, 1024, 4603, 4608},
		{5, 9216, 1024, 45, 54},
		{0, 2048, 384, 0, 6}, {1, 2048, 384, 5, 11}, {2, 2048, 384, 10, 16}, {191, 2048, 384, 1018, 1024}, {192, 2048, 384, 1024, 1030},
		{0, 1728, 1024, 0, 2}, {1, 1728, 1024, 1, 4},
		{0, 5, 3, 0, 2}, {1, 5, 3, 1, 4}, {2, 5, 3, 3, 5},
		{0, 2, 5, 0, 1}, {2, 2, 5, 0, 2}, {4, 2, 5, 1, 2},
	} {
		s, e := AdaptiveAvgPoolWindow(c.i, c.in, c.out)
		if s != c.s || e != c.e {
			t.Errorf("window(%d, %d->%d) = [%d,%d), want [%d,%d)", c.i, c.in, c.out, s, e, c.s, c.e)
		}
	}
	x, _ := TensorFrom([]float32{1, 2, 3, 4, 5, 10, 20, 30, 40, 50}, 2, 5)
	y, err := AdaptiveAvgPool1D(x, 3)
	want := []float32{1.5, 3, 4.5, 15, 30, 45}
	if err != nil || !embEqualInts(y.Shape, []int{2, 3}) || embRelDiff(t, y.Data, want) != 0 {
		t.Fatalf("pool = %v %v, want %v", y.Data, err, want)
	}
	if _, err := AdaptiveAvgPool1D(x, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero output: %v", err)
	}
}

// TestPreprocessingAggregatorHand checks the MeanMapper/Aggregator chain on a
// hand-computed case: two layers of 2 patches, pre-dim 2, target 2.
func TestPreprocessingAggregatorHand(t *testing.T) {
	l0, _ := TensorFrom([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4) // windows [0,2),[2,4)
	l1, _ := TensorFrom([]float32{0, 3, 6, 9, 12, 15}, 2, 3)     // windows [0,2),[1,3)
	pre, err := Preprocessing{InputDims: []int{4, 3}, OutputDim: 2}.Forward([]Tensor{l0, l1})
	if err != nil {
		t.Fatal(err)
	}
	wantPre := []float32{1.5, 3.5, 1.5, 4.5, 5.5, 7.5, 10.5, 13.5}
	if !embEqualInts(pre.Shape, []int{2, 2, 2}) || embRelDiff(t, pre.Data, wantPre) != 0 {
		t.Fatalf("preprocessing = %v %v, want %v", pre.Shape, pre.Data, wantPre)
	}
	agg, err := Aggregator{TargetDim: 3}.Forward(pre) // 4 -> 3: [0,2),[1,3),[2,4)
	wantAgg := []float32{2.5, 2.5, 3, 6.5, 9, 12}
	if err != nil || embRelDiff(t, agg.Data, wantAgg) != 0 {
		t.Fatalf("aggregator = %v %v, want %v", agg.Data, err, wantAgg)
	}
	if _, err := (Preprocessing{InputDims: []int{4}, OutputDim: 2}).Forward([]Tensor{l0, l1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("layer count mismatch: %v", err)
	}
	l2, _ := TensorFrom(make([]float32, 9), 3, 3)
	if _, err := (Preprocessing{InputDims: []int{4, 3}, OutputDim: 2}).Forward([]Tensor{l0, l2}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("patch count mismatch: %v", err)
	}
}

// TestAlignPatchesHand: a 1x2 grid upsampled to 1x4 per slot, slots kept apart.
func TestAlignPatchesHand(t *testing.T) {
	// [B=1, L=2, 2 slots]: slot 0 = (0, 1), slot 1 = (10, 30).
	p, _ := TensorFrom([]float32{0, 10, 1, 30}, 1, 2, 2)
	a, err := AlignPatches(p, 1, 2, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 10, 0.25, 15, 0.75, 25, 1, 30}
	if !embEqualInts(a.Shape, []int{1, 4, 2}) || embRelDiff(t, a.Data, want) != 0 {
		t.Fatalf("align = %v %v, want %v", a.Shape, a.Data, want)
	}
	if _, err := AlignPatches(p, 2, 2, 1, 4); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("wrong grid: %v", err)
	}
}

// TestEmbedGoldenWRN50: layer2/layer3 test maps -> embed_test by both paths; the
// MeanMapper output of test image 0 -> preproc_test0; the train maps -> memory_bank.
func TestEmbedGoldenWRN50(t *testing.T) {
	l2 := embGoldenTensor(t, "wrn50/layer2_test.npy")
	l3 := embGoldenTensor(t, "wrn50/layer3_test.npy")
	want := golden.Load(t, "wrn50/embed_test.npy")
	cfg := DefaultEmbedConfig()
	for name, f := range map[string]func([]Tensor, EmbedConfig, []float32) (Tensor, int, int, error){"fused": Embed, "generic": EmbedGeneric} {
		emb, gh, gw, err := f([]Tensor{l2, l3}, cfg, nil)
		if err != nil {
			t.Fatal(name, err)
		}
		if gh != 28 || gw != 28 || !embEqualInts(emb.Shape, want.Shape) {
			t.Fatalf("%s: grid %dx%d shape %v, want %v", name, gh, gw, emb.Shape, want.Shape)
		}
		if d := embRelDiff(t, emb.Data, want.F32); d > 1e-5 {
			t.Errorf("%s: embed_test relative diff %g > 1e-5", name, d)
		} else {
			t.Logf("%s: embed_test relative diff %.3g", name, d)
		}
	}

	// preproc_test0 (only in the shared golden set): patchify + align image 0, MeanMapper.
	wantPre := golden.Load(t, "wrn50/preproc_test0.npy")
	pm := PatchMaker{PatchSize: 3, Stride: 1}
	one := func(x Tensor) Tensor {
		n := x.Size() / x.Shape[0]
		return Tensor{Shape: append([]int{1}, x.Shape[1:]...), Data: x.Data[:n]}
	}
	p2, _, _, err := pm.Patchify(one(l2))
	if err != nil {
		t.Fatal(err)
	}
	p3, gh, gw, err := pm.Patchify(one(l3))
	if err != nil {
		t.Fatal(err)
	}
	if p3, err = AlignPatches(p3, gh, gw, 28, 28); err != nil {
		t.Fatal(err)
	}
	pre, err := Preprocessing{InputDims: []int{512, 1024}, OutputDim: 1024}.Forward([]Tensor{
		{Shape: []int{784, 512, 3, 3}, Data: p2.Data},
		{Shape: []int{784, 1024 * 9}, Data: p3.Data},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := embRelDiff(t, pre.Data, wantPre.F32); d > 1e-5 || !embEqualInts(pre.Shape, wantPre.Shape) {
		t.Errorf("preproc_test0: shape %v, relative diff %g", pre.Shape, d)
	}

	// memory_bank from the train maps (only in the shared golden set).
	wantBank := golden.Load(t, "wrn50/memory_bank.npy")
	t2 := embGoldenTensor(t, "wrn50/layer2_train.npy")
	t3 := embGoldenTensor(t, "wrn50/layer3_train.npy")
	bank, _, _, err := Embed([]Tensor{t2, t3}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := embRelDiff(t, bank.Data, wantBank.F32); d > 1e-5 {
		t.Errorf("wrn50 memory_bank relative diff %g", d)
	}
}

// TestEmbedGoldenMNV2: MobileNetV2 maps (192 and 384 channels: overlapping 2-3 and 4-5
// wide MeanMapper bins) -> embed_test and memory_bank.
func TestEmbedGoldenMNV2(t *testing.T) {
	cfg := DefaultEmbedConfig()
	for _, c := range []struct{ split, want string }{{"test", "embed_test"}, {"train", "memory_bank"}} {
		b6 := embGoldenTensor(t, "mnv2/block6_"+c.split+".npy")
		b10 := embGoldenTensor(t, "mnv2/block10_"+c.split+".npy")
		want := golden.Load(t, "mnv2/"+c.want+".npy")
		for name, f := range map[string]func([]Tensor, EmbedConfig, []float32) (Tensor, int, int, error){"fused": Embed, "generic": EmbedGeneric} {
			emb, _, _, err := f([]Tensor{b6, b10}, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := embRelDiff(t, emb.Data, want.F32); d > 1e-5 || !embEqualInts(emb.Shape, want.Shape) {
				t.Errorf("%s %s: shape %v, relative diff %g", name, c.want, emb.Shape, d)
			} else {
				t.Logf("%s %s: relative diff %.3g", name, c.want, d)
			}
		}
	}
}

func embRandomMaps(rng *rand.Rand, batch int, shapes [][3]int) []Tensor {
	out := make([]Tensor, len(shapes))
	for l, s := range shapes {
		t := NewTensor(batch, s[0], s[1], s[2])
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
		out[l] = t
	}
	return out
}

// TestEmbedFusedMatchesGeneric compares both paths on random signed data over patch
// sizes, dimensions (including pre-dims larger than C*ps*ps and windows straddling the
// layer boundary) and 1-3 layers with smaller, equal and larger grids.
func TestEmbedFusedMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	cases := []struct {
		ps, pre, target int
		shapes          [][3]int
	}{
		{3, 1024, 1024, [][3]int{{64, 12, 12}, {128, 6, 6}}},
		{5, 1024, 1024, [][3]int{{48, 10, 9}, {96, 5, 5}}},
		{3, 1024, 384, [][3]int{{40, 8, 8}, {80, 4, 4}}},
		{5, 384, 384, [][3]int{{24, 7, 7}}},
		{3, 384, 1024, [][3]int{{16, 8, 6}, {32, 4, 3}, {20, 2, 2}}},
		{1, 100, 37, [][3]int{{30, 5, 5}, {50, 5, 5}, {7, 10, 10}}},
		{4, 64, 50, [][3]int{{5, 6, 6}, {9, 3, 3}}},
		{3, 7, 3, [][3]int{{200, 4, 4}, {100, 2, 2}}},
		{5, 16, 8, [][3]int{{64, 6, 6}, {32, 3, 3}}},
		{4, 4, 4, [][3]int{{40, 5, 5}, {20, 3, 3}}},
		{1, 8, 8, [][3]int{{64, 5, 5}, {16, 10, 10}}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("ps%d/%d/%d/%v", c.ps, c.pre, c.target, c.shapes)
		layers := embRandomMaps(rng, 2, c.shapes)
		cfg := EmbedConfig{PatchSize: c.ps, Stride: 1, PretrainEmbedDim: c.pre, TargetEmbedDim: c.target}
		want, gh, gw, err := EmbedGeneric(layers, cfg, nil)
		if err != nil {
			t.Fatal(name, err)
		}
		dst := make([]float32, len(want.Data)+5)
		got, gh2, gw2, err := Embed(layers, cfg, dst)
		if err != nil {
			t.Fatal(name, err)
		}
		if gh != gh2 || gw != gw2 || !embEqualInts(got.Shape, want.Shape) || &got.Data[0] != &dst[0] {
			t.Fatalf("%s: fused grid %dx%d shape %v vs %dx%d %v (or dst not used)", name, gh2, gw2, got.Shape, gh, gw, want.Shape)
		}
		if d := embRelDiff(t, got.Data, want.Data); d > 1e-6 {
			t.Errorf("%s: fused vs generic relative diff %g > 1e-6", name, d)
		} else {
			t.Logf("%s: fused vs generic relative diff %.3g", name, d)
		}
	}
}

// TestEmbedClosedForm checks the fused weights on the spec's closed form for the
// default configuration at a single interior patch: layer A channel j weighted 0.1 per
// neighbour plus 0.1 extra at the centre.
func TestEmbedClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	layers := embRandomMaps(rng, 1, [][3]int{{512, 6, 6}, {1024, 3, 3}})
	emb, _, gw, err := Embed(layers, DefaultEmbedConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	y, x, j := 2, 3, 17
	var want float64
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			want += 0.1 * float64(layers[0].Data[j*36+(y+dy)*6+x+dx])
		}
	}
	want += 0.1 * float64(layers[0].Data[j*36+y*6+x])
	got := float64(emb.Data[(y*gw+x)*1024+j])
	if math.Abs(got-want) > 1e-5 {
		t.Fatalf("closed form: %v, want %v", got, want)
	}
}

func TestEmbedErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	good := embRandomMaps(rng, 2, [][3]int{{8, 4, 4}, {16, 2, 2}})
	cfg := EmbedConfig{PatchSize: 3, Stride: 1, PretrainEmbedDim: 16, TargetEmbedDim: 8}
	nan := embRandomMaps(rng, 2, [][3]int{{8, 4, 4}})[0]
	nan.Data[5] = float32(math.NaN())
	inf := embRandomMaps(rng, 2, [][3]int{{16, 2, 2}})[0]
	inf.Data[0] = float32(math.Inf(1))
	otherBatch := embRandomMaps(rng, 3, [][3]int{{16, 2, 2}})[0]
	tiny := embRandomMaps(rng, 2, [][3]int{{8, 1, 1}})[0] // even patch size 4: 1 + 2 - 4 < 0
	cases := map[string]struct {
		layers []Tensor
		cfg    EmbedConfig
		dst    []float32
	}{
		"no layers":      {nil, cfg, nil},
		"NaN":            {[]Tensor{nan, good[1]}, cfg, nil},
		"Inf":            {[]Tensor{good[0], inf}, cfg, nil},
		"batch mismatch": {[]Tensor{good[0], otherBatch}, cfg, nil},
		"3-D map":        {[]Tensor{{Shape: []int{8, 4, 4}, Data: make([]float32, 128)}}, cfg, nil},
		"short data":     {[]Tensor{{Shape: []int{1, 8, 4, 4}, Data: make([]float32, 127)}}, cfg, nil},
		"empty map":      {[]Tensor{{Shape: []int{1, 0, 4, 4}, Data: nil}}, cfg, nil},
		"zero pre dim":   {good, EmbedConfig{PatchSize: 3, Stride: 1, PretrainEmbedDim: 0, TargetEmbedDim: 8}, nil},
		"zero target":    {good, EmbedConfig{PatchSize: 3, Stride: 1, PretrainEmbedDim: 8, TargetEmbedDim: 0}, nil},
		"zero patch":     {good, EmbedConfig{PatchSize: 0, Stride: 1, PretrainEmbedDim: 8, TargetEmbedDim: 8}, nil},
		"no patch fits":  {[]Tensor{tiny}, EmbedConfig{PatchSize: 4, Stride: 1, PretrainEmbedDim: 8, TargetEmbedDim: 8}, nil},
		"short dst":      {good, cfg, make([]float32, 10)},
	}
	for name, c := range cases {
		for _, stride := range []int{1, 2} {
			cc := c.cfg
			cc.Stride = stride
			if _, _, _, err := Embed(c.layers, cc, c.dst); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s (stride %d): err = %v", name, stride, err)
			}
		}
		if _, _, _, err := EmbedGeneric(c.layers, c.cfg, c.dst); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s (generic): err = %v", name, err)
		}
	}
	if _, _, _, err := Embed(good, EmbedConfig{PatchSize: 3, Stride: 0, PretrainEmbedDim: 8, TargetEmbedDim: 8}, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero stride: %v", err)
	}
}
