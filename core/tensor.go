// Package core is libpatchcore's Go API: the PatchCore pipeline and the building blocks of
// the reference module patchcore.common (NetworkFeatureAggregator, NearestNeighbourScorer,
// FaissNN, ApproximateFaissNN, Preprocessing, Aggregator, RescaleSegmentor, ConcatMerger,
// AverageMerger), plus PatchMaker, the coreset samplers, image preprocessing and the
// PatchCore model with its model file.
package core

import (
	"fmt"
	"math"
)

// Tensor is a dense, row-major (C-order) float32 array: the Go counterpart of the numpy
// arrays and torch tensors the reference passes around. Data has exactly Size() elements.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zero-filled tensor of the given shape. It panics on a negative
// dimension; use CheckedSize to validate untrusted shapes first.
func NewTensor(shape ...int) Tensor {
	n, err := CheckedSize(shape)
	if err != nil {
		panic(err)
	}
	return Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
}

// TensorFrom wraps data (not copied) with a shape, checking that the sizes agree.
func TensorFrom(data []float32, shape ...int) (Tensor, error) {
	n, err := CheckedSize(shape)
	if err != nil {
		return Tensor{}, err
	}
	if n != len(data) {
		return Tensor{}, fmt.Errorf("%w: shape %v needs %d values, got %d", ErrInvalidArgument, shape, n, len(data))
	}
	return Tensor{Shape: append([]int(nil), shape...), Data: data}, nil
}

// CheckedSize returns the product of the dimensions, or an error when a dimension is
// negative or the product overflows an int.
func CheckedSize(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension in shape %v", ErrInvalidArgument, shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("%w: shape %v overflows", ErrInvalidArgument, shape)
		}
		n *= d
	}
	return n, nil
}

// Size is the number of elements.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Rows is the first dimension (0 for a scalar-shaped tensor).
func (t Tensor) Rows() int {
	if len(t.Shape) == 0 {
		return 0
	}
	return t.Shape[0]
}

// RowLen is the number of elements per first-axis entry (the product of Shape[1:]).
func (t Tensor) RowLen() int {
	n := 1
	for _, d := range t.Shape[1:] {
		n *= d
	}
	return n
}

// Reshape returns a view with another shape of the same size.
func (t Tensor) Reshape(shape ...int) (Tensor, error) {
	return TensorFrom(t.Data, shape...)
}

// CheckFinite returns an error naming the first NaN or infinite value.
func (t Tensor) CheckFinite(what string) error {
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: %s contains a non-finite value (%v) at flat index %d", ErrInvalidArgument, what, v, i)
		}
	}
	return nil
}
