package core

import (
	"errors"
	"math"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
	"github.com/libpatchcore/libpatchcore/internal/imaging"
)

// TestSegmentationGolden: golden k=1 patch scores -> segmentations_k1 within 1e-5.
func TestSegmentationGolden(t *testing.T) {
	for _, dir := range []string{"wrn50", "mnv2"} {
		scores := embGoldenTensor(t, dir+"/patch_scores_k1.npy")
		want := golden.Load(t, dir+"/segmentations_k1.npy")
		seg, err := NewRescaleSegmentor(224, 224).ConvertToSegmentation(scores)
		if err != nil {
			t.Fatal(err)
		}
		if !embEqualInts(seg.Shape, want.Shape) {
			t.Fatalf("%s: shape %v, want %v", dir, seg.Shape, want.Shape)
		}
		if d := embRelDiff(t, seg.Data, want.F32); d > 1e-5 {
			t.Errorf("%s: segmentation relative diff %g > 1e-5", dir, d)
		} else {
			t.Logf("%s: segmentation relative diff %.3g", dir, d)
		}
		// Sigma 0 means the default 4.
		seg0, err := RescaleSegmentor{TargetH: 224, TargetW: 224}.ConvertToSegmentation(scores)
		if err != nil || embRelDiff(t, seg0.Data, seg.Data) != 0 {
			t.Errorf("%s: zero sigma differs from the default (%v)", dir, err)
		}
	}
}

// TestSegmentationNoSmoothing: a sigma below 0.125 has radius 0, leaving the bilinear
// upsample, checked on a hand-computed 1x2 -> 2x4 case.
func TestSegmentationNoSmoothing(t *testing.T) {
	scores, _ := TensorFrom([]float32{0, 8}, 1, 1, 2)
	seg, err := RescaleSegmentor{TargetH: 2, TargetW: 4, Sigma: 0.1}.ConvertToSegmentation(scores)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 2, 6, 8, 0, 2, 6, 8}
	if embRelDiff(t, seg.Data, want) != 0 {
		t.Fatalf("unsmoothed = %v, want %v", seg.Data, want)
	}
	// With smoothing the map is the Gaussian of that upsample (in-place safe).
	seg4, err := RescaleSegmentor{TargetH: 2, TargetW: 4, Sigma: 1}.ConvertToSegmentation(scores)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]float32, 8)
	imaging.GaussianFilter2D(ref, want, 2, 4, 1, 4)
	if embRelDiff(t, seg4.Data, ref) != 0 {
		t.Fatalf("sigma 1 = %v, want %v", seg4.Data, ref)
	}
}

func TestSegmentationErrors(t *testing.T) {
	ok, _ := TensorFrom(make([]float32, 8), 2, 2, 2)
	nan, _ := TensorFrom([]float32{0, 1, float32(math.NaN()), 3}, 1, 2, 2)
	for name, c := range map[string]struct {
		s RescaleSegmentor
		x Tensor
	}{
		"NaN scores":     {NewRescaleSegmentor(8, 8), nan},
		"2-D scores":     {NewRescaleSegmentor(8, 8), Tensor{Shape: []int{2, 4}, Data: make([]float32, 8)}},
		"short data":     {NewRescaleSegmentor(8, 8), Tensor{Shape: []int{2, 2, 2}, Data: make([]float32, 7)}},
		"zero target":    {NewRescaleSegmentor(0, 8), ok},
		"negative sigma": {RescaleSegmentor{TargetH: 8, TargetW: 8, Sigma: -1}, ok},
		"NaN sigma":      {RescaleSegmentor{TargetH: 8, TargetW: 8, Sigma: math.NaN()}, ok},
		"huge target":    {NewRescaleSegmentor(1<<15, 1<<14), ok},
	} {
		if _, err := c.s.ConvertToSegmentation(c.x); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
