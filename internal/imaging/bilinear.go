package imaging

// LinearTaps are PyTorch's linear interpolation taps for one axis resized from InSize to
// OutSize samples with align_corners=False and no explicit scale factor
// (aten/native/UpSample.h, compute_source_index_and_lambda, in float32): output i is
// W0[i]*in[I0[i]] + W1[i]*in[I1[i]] with
//
//	src = max((in/out) * (i + 0.5) - 0.5, 0), I0 = int(src), I1 = min(I0 + 1, in - 1),
//	W1 = src - I0, W0 = 1 - W1.
//
// Equal sizes give the identity (I0 = I1 = i, W0 = 1, W1 = 0).
type LinearTaps struct {
	I0, I1 []int
	W0, W1 []float32
}

// NewLinearTaps computes the taps for inSize -> outSize (both positive).
func NewLinearTaps(inSize, outSize int) LinearTaps {
	t := LinearTaps{I0: make([]int, outSize), I1: make([]int, outSize), W0: make([]float32, outSize), W1: make([]float32, outSize)}
	scale := float32(inSize) / float32(outSize)
	for i := 0; i < outSize; i++ {
		if inSize == outSize {
			t.I0[i], t.I1[i], t.W0[i], t.W1[i] = i, i, 1, 0
			continue
		}
		src := scale*(float32(i)+0.5) - 0.5
		if src < 0 {
			src = 0
		}
		i0 := int(src)
		i1 := i0
		if i0 < inSize-1 {
			i1 = i0 + 1
		}
		l1 := min(max(src-float32(i0), 0), 1)
		t.I0[i], t.I1[i], t.W0[i], t.W1[i] = i0, i1, 1-l1, l1
	}
	return t
}

// ResizeBilinear resizes the single-channel row-major plane src (sh x sw) to dst
// (dh x dw) like torch.nn.functional.interpolate(mode="bilinear", align_corners=False),
// evaluating (x00*wx0 + x01*wx1)*wy0 + (x10*wx0 + x11*wx1)*wy1 in float32 as PyTorch's
// CPU kernel does. Sizes must be positive and the slices at least sh*sw and dh*dw long.
func ResizeBilinear(dst []float32, dh, dw int, src []float32, sh, sw int) {
	ResizeBilinearTaps(dst, src, sw, NewLinearTaps(sh, dh), NewLinearTaps(sw, dw), nil)
}

// ResizeBilinearTaps is ResizeBilinear with precomputed taps (ty over rows, tx over
// columns); sw is the source row length and the output has len(ty.I0) rows of
// len(tx.I0). tmp, if at least (source rows) x len(tx.I0) long, holds the horizontal
// pass (otherwise it is allocated). Each source row is interpolated horizontally once;
// the products are the same as PyTorch's, so the result is unchanged.
func ResizeBilinearTaps(dst, src []float32, sw int, ty, tx LinearTaps, tmp []float32) {
	bilinear(dst, src, sw, ty, tx, tmp, false)
}

// AddBilinearTaps adds the bilinear resize of src (as ResizeBilinearTaps) to dst: the
// accumulate form used when several linearly combined maps are upsampled onto one grid.
func AddBilinearTaps(dst, src []float32, sw int, ty, tx LinearTaps, tmp []float32) {
	bilinear(dst, src, sw, ty, tx, tmp, true)
}

// bilinear implements ResizeBilinearTaps and AddBilinearTaps.
func bilinear(dst, src []float32, sw int, ty, tx LinearTaps, tmp []float32, add bool) {
	dw := len(tx.I0)
	sh := ty.I1[len(ty.I1)-1] + 1 // the taps are monotone: the last row reads the furthest
	if len(tmp) < sh*dw {
		tmp = make([]float32, sh*dw)
	}
	for y := 0; y < sh; y++ {
		r := src[y*sw : (y+1)*sw]
		h := tmp[y*dw : (y+1)*dw]
		for x := range h {
			h[x] = float32(r[tx.I0[x]]*tx.W0[x]) + float32(r[tx.I1[x]]*tx.W1[x])
		}
	}
	for y := range ty.I0 {
		t0 := tmp[ty.I0[y]*dw : (ty.I0[y]+1)*dw]
		t1 := tmp[ty.I1[y]*dw : (ty.I1[y]+1)*dw]
		wy0, wy1 := ty.W0[y], ty.W1[y]
		out := dst[y*dw : (y+1)*dw]
		if add {
			for x := range out {
				out[x] += float32(t0[x]*wy0) + float32(t1[x]*wy1)
			}
		} else {
			for x := range out {
				out[x] = float32(t0[x]*wy0) + float32(t1[x]*wy1)
			}
		}
	}
}
