package core

import "fmt"

// PatchMaker is the reference's patchcore.common.PatchMaker: it cuts feature maps into
// PatchSize x PatchSize neighbourhoods (zero padding (PatchSize-1)/2, the given Stride,
// torch.nn.Unfold order) and reduces patch scores to image scores. The reference default
// is PatchSize 3, Stride 1.
type PatchMaker struct {
	PatchSize, Stride int
}

// Padding is the zero padding on each side, int((PatchSize-1)/2).
func (pm PatchMaker) Padding() int {
	return (pm.PatchSize - 1) / 2
}

// GridSize is the number of patches along an axis of length s:
// (s + 2*padding - (PatchSize-1) - 1)/Stride + 1, or an error when no patch fits.
func (pm PatchMaker) GridSize(s int) (int, error) {
	if pm.PatchSize <= 0 || pm.Stride <= 0 {
		return 0, fmt.Errorf("%w: patch size %d and stride %d must be positive", ErrInvalidArgument, pm.PatchSize, pm.Stride)
	}
	if s <= 0 {
		return 0, fmt.Errorf("%w: feature map side %d is not positive", ErrInvalidArgument, s)
	}
	span := s + 2*pm.Padding() - pm.PatchSize // 2*padding <= PatchSize-1: no overflow
	if span < 0 {
		return 0, fmt.Errorf("%w: patch size %d does not fit a feature map side of %d", ErrInvalidArgument, pm.PatchSize, s)
	}
	return span/pm.Stride + 1, nil
}

// Grid is the patch grid of an h×w feature map: GridSize of each side.
func (pm PatchMaker) Grid(h, w int) (gridH, gridW int, err error) {
	if gridH, err = pm.GridSize(h); err != nil {
		return 0, 0, err
	}
	if gridW, err = pm.GridSize(w); err != nil {
		return 0, 0, err
	}
	return gridH, gridW, nil
}

// Patchify unfolds fm [B, C, H, W] into [B, L, C, PatchSize, PatchSize] with L =
// gridH*gridW patches in row-major grid order, exactly torch.nn.Unfold (channel-major,
// then kernel row, then kernel column, zeros outside the map) reshaped and permuted as
// the reference does.
func (pm PatchMaker) Patchify(fm Tensor) (patches Tensor, gridH, gridW int, err error) {
	if len(fm.Shape) != 4 {
		return Tensor{}, 0, 0, fmt.Errorf("%w: patchify wants a [B,C,H,W] feature map, got shape %v", ErrInvalidArgument, fm.Shape)
	}
	n, err := CheckedSize(fm.Shape)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	if n != len(fm.Data) || n == 0 {
		return Tensor{}, 0, 0, fmt.Errorf("%w: feature map shape %v with %d values", ErrInvalidArgument, fm.Shape, len(fm.Data))
	}
	b, c, h, w := fm.Shape[0], fm.Shape[1], fm.Shape[2], fm.Shape[3]
	if gridH, gridW, err = pm.Grid(h, w); err != nil {
		return Tensor{}, 0, 0, err
	}
	ps, st, pad := pm.PatchSize, pm.Stride, pm.Padding()
	shape := []int{b, gridH * gridW, c, ps, ps}
	size, err := CheckedSize(shape)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	out := make([]float32, size)
	i := 0
	for bi := 0; bi < b; bi++ {
		for gy := 0; gy < gridH; gy++ {
			for gx := 0; gx < gridW; gx++ {
				for ci := 0; ci < c; ci++ {
					plane := fm.Data[(bi*c+ci)*h*w : (bi*c+ci+1)*h*w]
					for ky := 0; ky < ps; ky++ {
						y := gy*st - pad + ky
						if y < 0 || y >= h {
							i += ps
							continue
						}
						row := plane[y*w : y*w+w]
						for kx := 0; kx < ps; kx++ {
							if x := gx*st - pad + kx; x >= 0 && x < w {
								out[i] = row[x]
							}
							i++
						}
					}
				}
			}
		}
	}
	return Tensor{Shape: shape, Data: out}, gridH, gridW, nil
}

// UnpatchScores is the reference's unpatch_scores: the flat per-patch values of batch
// images (image-major) viewed as [batch, len(x)/batch]. The data is not copied.
func (pm PatchMaker) UnpatchScores(x []float32, batch int) (Tensor, error) {
	if batch <= 0 || len(x) == 0 || len(x)%batch != 0 {
		return Tensor{}, fmt.Errorf("%w: %d scores cannot be split into %d images", ErrInvalidArgument, len(x), batch)
	}
	return Tensor{Shape: []int{batch, len(x) / batch}, Data: x}, nil
}

// Score is the reference's PatchMaker.score: the maximum over every axis but the first,
// i.e. one score per image (the max over its patches). NaN is rejected.
func (pm PatchMaker) Score(x Tensor) ([]float32, error) {
	if len(x.Shape) == 0 || x.Shape[0] <= 0 {
		return nil, fmt.Errorf("%w: score wants a [B, ...] tensor, got shape %v", ErrInvalidArgument, x.Shape)
	}
	n, err := CheckedSize(x.Shape)
	if err != nil {
		return nil, err
	}
	if n != len(x.Data) || n == 0 {
		return nil, fmt.Errorf("%w: score tensor shape %v with %d values", ErrInvalidArgument, x.Shape, len(x.Data))
	}
	if err := x.CheckFinite("patch scores"); err != nil {
		return nil, err
	}
	b := x.Shape[0]
	per := n / b
	out := make([]float32, b)
	for i := range out {
		row := x.Data[i*per : (i+1)*per]
		m := row[0]
		for _, v := range row[1:] {
			m = max(m, v)
		}
		out[i] = m
	}
	return out, nil
}
