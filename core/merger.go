package core

import "fmt"

// Merger combines a list of per-sample feature arrays into one [n, features] matrix, as
// the reference's ConcatMerger and AverageMerger do.
type Merger interface {
	Merge(features []Tensor) (Tensor, error)
}

// ConcatMerger reshapes every array to [n, -1] and concatenates them along axis 1. With a
// single array it is a reshape (the data are copied, as np.concatenate copies).
type ConcatMerger struct{}

// AverageMerger reduces every array [n, c, ...] to [n, c] by averaging over the trailing
// axes, then concatenates along axis 1. PatchCore itself uses only ConcatMerger.
type AverageMerger struct{}

// Merge implements Merger.
func (ConcatMerger) Merge(features []Tensor) (Tensor, error) {
	return mergeFeatures(features, 1, func(dst []float32, row []float32, cols int) {
		copy(dst, row)
	})
}

// Merge implements Merger. Means are accumulated in float64.
func (AverageMerger) Merge(features []Tensor) (Tensor, error) {
	return mergeFeatures(features, 2, func(dst []float32, row []float32, cols int) {
		inner := len(row) / cols
		for c := range cols {
			var s float64
			for _, v := range row[c*inner : (c+1)*inner] {
				s += float64(v)
			}
			dst[c] = float32(s / float64(inner))
		}
	})
}

// merge validates the inputs (all with the same first dimension n > 0 and at least
// minDims dimensions), then writes, for every input and sample, reduce(dst, row, cols)
// into that input's cols columns of the output row.
func mergeFeatures(features []Tensor, minDims int, reduce func(dst, row []float32, cols int)) (Tensor, error) {
	if len(features) == 0 {
		return Tensor{}, fmt.Errorf("%w: nothing to merge (empty feature list)", ErrInvalidArgument)
	}
	n := -1
	cols := make([]int, len(features))
	total := 0
	for i, f := range features {
		size, err := CheckedSize(f.Shape)
		if err != nil {
			return Tensor{}, err
		}
		if len(f.Shape) < minDims || size != len(f.Data) {
			return Tensor{}, fmt.Errorf("%w: feature array %d has shape %v and %d values (need at least %d dimensions)", ErrInvalidArgument, i, f.Shape, len(f.Data), minDims)
		}
		if n == -1 {
			n = f.Shape[0]
		}
		if f.Shape[0] != n || n == 0 {
			return Tensor{}, fmt.Errorf("%w: feature array %d has %d samples, expected %d (and more than 0)", ErrInvalidArgument, i, f.Shape[0], n)
		}
		cols[i] = size / n
		if minDims == 2 {
			cols[i] = f.Shape[1]
			if cols[i] == 0 || size == 0 {
				return Tensor{}, fmt.Errorf("%w: feature array %d of shape %v has nothing to average", ErrInvalidArgument, i, f.Shape)
			}
		}
		total += cols[i]
	}
	if total == 0 {
		return Tensor{}, fmt.Errorf("%w: merged features would have no columns", ErrInvalidArgument)
	}
	out := NewTensor(n, total)
	off := 0
	for i, f := range features {
		rowLen := len(f.Data) / n
		for s := range n {
			reduce(out.Data[s*total+off:s*total+off+cols[i]], f.Data[s*rowLen:(s+1)*rowLen], cols[i])
		}
		off += cols[i]
	}
	return out, nil
}
