package core

import (
	"fmt"
	"math"
	"runtime"

	"github.com/libpatchcore/libpatchcore/internal/imaging"
	"github.com/libpatchcore/libpatchcore/internal/parallel"
)

// DefaultSegmentationSigma is the reference's fixed smoothing (RescaleSegmentor
// smoothing = 4).
const DefaultSegmentationSigma = 4.0

// segmentationTruncate is scipy.ndimage.gaussian_filter's default truncate: the kernel
// radius is int(4*sigma + 0.5), 16 for sigma 4.
const segmentationTruncate = 4.0

// RescaleSegmentor is the reference's patchcore.common.RescaleSegmentor: patch-score maps
// are upsampled to TargetH x TargetW with bilinear interpolation (align_corners=False)
// and smoothed with scipy.ndimage.gaussian_filter(sigma=Sigma) (truncate 4, mode
// "reflect", float32 storage). Sigma 0 means DefaultSegmentationSigma; a Sigma below
// 0.125 gives a radius-0 kernel, i.e. no smoothing.
type RescaleSegmentor struct {
	TargetH, TargetW int
	Sigma            float64
}

// NewRescaleSegmentor returns the reference segmentor for a targetH x targetW input
// (224 x 224 by default) with sigma 4.
func NewRescaleSegmentor(targetH, targetW int) RescaleSegmentor {
	return RescaleSegmentor{TargetH: targetH, TargetW: targetW, Sigma: DefaultSegmentationSigma}
}

// ConvertToSegmentation turns patch scores [B, h, w] into anomaly maps
// [B, TargetH, TargetW] (same units as the scores). Non-finite scores are rejected.
func (s RescaleSegmentor) ConvertToSegmentation(scores Tensor) (Tensor, error) {
	sigma := s.Sigma
	if sigma == 0 {
		sigma = DefaultSegmentationSigma
	}
	if sigma < 0 || math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma > 1000 {
		return Tensor{}, fmt.Errorf("%w: segmentation sigma %v must be finite, non-negative and at most 1000", ErrInvalidArgument, s.Sigma)
	}
	if len(scores.Shape) != 3 {
		return Tensor{}, fmt.Errorf("%w: segmentation wants [B,h,w] patch scores, got shape %v", ErrInvalidArgument, scores.Shape)
	}
	n, err := CheckedSize(scores.Shape)
	if err != nil {
		return Tensor{}, err
	}
	if n != len(scores.Data) || n == 0 {
		return Tensor{}, fmt.Errorf("%w: patch scores have shape %v but %d values", ErrInvalidArgument, scores.Shape, len(scores.Data))
	}
	if s.TargetH <= 0 || s.TargetW <= 0 {
		return Tensor{}, fmt.Errorf("%w: segmentation target size %dx%d is not positive", ErrInvalidArgument, s.TargetH, s.TargetW)
	}
	b, h, w := scores.Shape[0], scores.Shape[1], scores.Shape[2]
	shape := []int{b, s.TargetH, s.TargetW}
	size, err := CheckedSize(shape)
	if err != nil {
		return Tensor{}, err
	}
	if s.TargetH > MaxImagePixels/s.TargetW {
		return Tensor{}, fmt.Errorf("%w: segmentation target %dx%d exceeds %d pixels", ErrInvalidArgument, s.TargetH, s.TargetW, MaxImagePixels)
	}
	if err := scores.CheckFinite("patch scores"); err != nil {
		return Tensor{}, err
	}
	out := make([]float32, size)
	ty, tx := imaging.NewLinearTaps(h, s.TargetH), imaging.NewLinearTaps(w, s.TargetW)
	plane := s.TargetH * s.TargetW
	workers := min(runtime.GOMAXPROCS(0), b)
	err = parallel.For(workers, func(wk int) {
		tmp := make([]float32, h*s.TargetW)
		for i := wk; i < b; i += workers {
			o := out[i*plane : (i+1)*plane]
			imaging.ResizeBilinearTaps(o, scores.Data[i*h*w:(i+1)*h*w], w, ty, tx, tmp)
			imaging.GaussianFilter2D(o, o, s.TargetH, s.TargetW, sigma, segmentationTruncate)
		}
	})
	if err != nil {
		return Tensor{}, err
	}
	return Tensor{Shape: shape, Data: out}, nil
}
