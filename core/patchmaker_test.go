package core

import (
	"errors"
	"math"
	"testing"
)

// TestPatchifyUnfoldOrder checks torch.nn.Unfold's layout on hand-written patches.
func TestPatchifyUnfoldOrder(t *testing.T) {
	// B=1, C=2, 2x2 maps; channel 1 is channel 0 plus 10.
	fm, _ := TensorFrom([]float32{1, 2, 3, 4, 11, 12, 13, 14}, 1, 2, 2, 2)
	p, gh, gw, err := PatchMaker{PatchSize: 3, Stride: 1}.Patchify(fm)
	if err != nil || gh != 2 || gw != 2 {
		t.Fatalf("grid %dx%d, %v", gh, gw, err)
	}
	if want := []int{1, 4, 2, 3, 3}; !embEqualInts(p.Shape, want) {
		t.Fatalf("shape %v, want %v", p.Shape, want)
	}
	// Patches of channel 0 at (0,0), (0,1), (1,0), (1,1), zero padded.
	want0 := [][]float32{
		{0, 0, 0, 0, 1, 2, 0, 3, 4},
		{0, 0, 0, 1, 2, 0, 3, 4, 0},
		{0, 1, 2, 0, 3, 4, 0, 0, 0},
		{1, 2, 0, 3, 4, 0, 0, 0, 0},
	}
	for l, w := range want0 {
		got0 := p.Data[l*18 : l*18+9]
		got1 := p.Data[l*18+9 : l*18+18]
		for i := range w {
			w1 := float32(0)
			if w[i] != 0 {
				w1 = w[i] + 10
			}
			if got0[i] != w[i] || got1[i] != w1 {
				t.Fatalf("patch %d: %v | %v, want %v (+10 for channel 1)", l, got0, got1, w)
			}
		}
	}

	// Patch size 2, stride 2: padding 0, grid (4-2)/2+1 = 2, non-overlapping blocks.
	vals := make([]float32, 16)
	for i := range vals {
		vals[i] = float32(i)
	}
	fm2, _ := TensorFrom(vals, 1, 1, 4, 4)
	p2, gh, gw, err := PatchMaker{PatchSize: 2, Stride: 2}.Patchify(fm2)
	if err != nil || gh != 2 || gw != 2 {
		t.Fatalf("ps2: grid %dx%d, %v", gh, gw, err)
	}
	want2 := []float32{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}
	for i := range want2 {
		if p2.Data[i] != want2[i] {
			t.Fatalf("ps2 stride2 = %v, want %v", p2.Data, want2)
		}
	}
	// Patch size 5 on a 3x4 map with stride 2: pad 2, grid (3+4-5)/2+1 = 2 by (4+4-5)/2+1 = 2.
	g, err := PatchMaker{PatchSize: 5, Stride: 2}.GridSize(3)
	if err != nil || g != 2 {
		t.Fatalf("grid of 3 with ps5/s2 = %d, %v", g, err)
	}
	// Patch size 4: padding int(1.5) = 1, grid s+2-4+1 = s-1.
	if g, err := (PatchMaker{PatchSize: 4, Stride: 1}).GridSize(6); err != nil || g != 5 {
		t.Fatalf("grid of 6 with ps4 = %d, %v", g, err)
	}
}

func embEqualInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPatchMakerScores(t *testing.T) {
	pm := PatchMaker{PatchSize: 3, Stride: 1}
	x := []float32{1, 5, 2, -1, -3, -2}
	u, err := pm.UnpatchScores(x, 2)
	if err != nil || !embEqualInts(u.Shape, []int{2, 3}) {
		t.Fatalf("unpatch: %v %v", u.Shape, err)
	}
	s, err := pm.Score(u)
	if err != nil || s[0] != 5 || s[1] != -1 {
		t.Fatalf("score = %v, %v; want [5 -1]", s, err)
	}
	// Higher-rank input: max over every trailing axis.
	s, err = pm.Score(Tensor{Shape: []int{1, 2, 2, 1}, Data: []float32{0, 3, 7, 1}})
	if err != nil || s[0] != 7 {
		t.Fatalf("score 4-D = %v, %v", s, err)
	}
	if _, err := pm.UnpatchScores(x, 4); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("indivisible unpatch: %v", err)
	}
	if _, err := pm.UnpatchScores(x, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero batch: %v", err)
	}
	if _, err := pm.Score(Tensor{Shape: []int{1, 2}, Data: []float32{1, float32(math.NaN())}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NaN score: %v", err)
	}
	if _, err := pm.Score(Tensor{Shape: []int{2, 2}, Data: []float32{1}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("inconsistent tensor: %v", err)
	}
}

func TestPatchifyErrors(t *testing.T) {
	fm, _ := TensorFrom(make([]float32, 8), 1, 2, 2, 2)
	for name, pm := range map[string]PatchMaker{
		"zero size":   {PatchSize: 0, Stride: 1},
		"zero stride": {PatchSize: 3, Stride: -1},
	} {
		if _, _, _, err := pm.Patchify(fm); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Patch size 8 (padding 3) on a 1x1 map: 1 + 6 - 8 < 0, no patch fits.
	one, _ := TensorFrom(make([]float32, 2), 1, 2, 1, 1)
	if _, _, _, err := (PatchMaker{PatchSize: 8, Stride: 1}).Patchify(one); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("patch larger than the padded map: %v", err)
	}
	pm := PatchMaker{PatchSize: 3, Stride: 1}
	if _, _, _, err := pm.Patchify(Tensor{Shape: []int{2, 2, 2}, Data: make([]float32, 8)}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("3-D map: %v", err)
	}
	if _, _, _, err := pm.Patchify(Tensor{Shape: []int{1, 2, 2, 2}, Data: make([]float32, 7)}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("short data: %v", err)
	}
}

// Grid is GridSize of each side, hand-computed: patch 5, stride 2, padding 2 gives
// (7+4-5)/2+1 = 4 and (3+4-5)/2+1 = 2; a non-positive side is refused.
func TestPatchMakerGrid(t *testing.T) {
	if gh, gw, err := (PatchMaker{PatchSize: 5, Stride: 2}).Grid(7, 3); err != nil || gh != 4 || gw != 2 {
		t.Fatalf("Grid(7, 3) = %d, %d, %v; want 4, 2", gh, gw, err)
	}
	if gh, gw, err := (PatchMaker{PatchSize: 3, Stride: 1}).Grid(28, 14); err != nil || gh != 28 || gw != 14 {
		t.Fatalf("Grid(28, 14) = %d, %d, %v; want 28, 14", gh, gw, err)
	}
	if _, _, err := (PatchMaker{PatchSize: 3, Stride: 1}).Grid(5, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Grid(5, 0): %v, want ErrInvalidArgument", err)
	}
}
