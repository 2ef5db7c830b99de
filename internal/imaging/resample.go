// Package imaging holds the pixel-level building blocks of the reference image pipeline,
// written to reproduce the Python libraries the reference uses number for number:
// Pillow's antialiased BILINEAR resize of 8-bit images (Resample.c), torchvision's
// Resize(int)/CenterCrop geometry, PIL-style decoding to RGB, PyTorch's bilinear
// interpolation of float maps (align_corners=False) and scipy.ndimage.gaussian_filter.
package imaging

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// ErrInvalid is wrapped by every argument error of this package.
var ErrInvalid = errors.New("imaging: invalid argument")

// Source is a read-only view of an 8-bit interleaved image: pixel (x, y) starts at
// Pix[y*Stride + x*Channels]. Channels 1 is grayscale (read as R = G = B, like PIL's
// convert("RGB")); Channels 3 or 4 hold R, G, B in their first three bytes, or B, G, R
// when BGR is set; a fourth (alpha) byte is never read, as convert("RGB") drops alpha.
type Source struct {
	Width, Height int
	Pix           []byte
	Stride        int
	Channels      int
	BGR           bool
}

// Check verifies the channel count and that the view's geometry is positive and fits
// inside Pix.
func (s Source) Check() error {
	if s.Width <= 0 || s.Height <= 0 {
		return fmt.Errorf("%w: image size %dx%d is not positive", ErrInvalid, s.Width, s.Height)
	}
	if s.Channels != 1 && s.Channels != 3 && s.Channels != 4 {
		return fmt.Errorf("%w: %d channels, want 1, 3 or 4", ErrInvalid, s.Channels)
	}
	if s.Width > math.MaxInt/s.Channels {
		return fmt.Errorf("%w: row of %d pixels overflows", ErrInvalid, s.Width)
	}
	rowBytes := s.Width * s.Channels
	if s.Stride < rowBytes {
		return fmt.Errorf("%w: stride %d is smaller than a row (%d bytes)", ErrInvalid, s.Stride, rowBytes)
	}
	if s.Height-1 > (math.MaxInt-rowBytes)/s.Stride {
		return fmt.Errorf("%w: image of %d rows with stride %d overflows", ErrInvalid, s.Height, s.Stride)
	}
	if need := (s.Height-1)*s.Stride + rowBytes; len(s.Pix) < need {
		return fmt.Errorf("%w: pixel buffer has %d bytes, the image needs %d", ErrInvalid, len(s.Pix), need)
	}
	return nil
}

// precisionBits is Pillow's fixed-point precision for 8-bit resampling:
// PRECISION_BITS = 32 - 8 - 2 (8 bits of result, 2 bits of headroom).
const precisionBits = 32 - 8 - 2

// roundHalf is the rounding offset every fixed-point sum starts from.
const roundHalf = int32(1) << (precisionBits - 1)

// axisCoeffs are Pillow's fixed-point filter taps for a window of output indices of one
// axis: output i (relative to the window) reads count[i] input samples starting at
// start[i] with weights k[i*ksize : i*ksize+count[i]].
type axisCoeffs struct {
	ksize int
	start []int
	count []int
	k     []int32
}

// bilinearFilter is Pillow's triangle filter (support 1).
func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// pillowCoeffs computes, exactly as Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc, the taps of the BILINEAR filter resampling inSize samples to
// outSize for the output indices first..first+n-1 (box = whole input).
func pillowCoeffs(inSize, outSize, first, n int) axisCoeffs {
	// Pillow passes the box edges as C floats: (double)(in1 - in0) / outSize.
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := 1.0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := axisCoeffs{ksize: ksize, start: make([]int, n), count: make([]int, n), k: make([]int32, n*ksize)}
	w := make([]float64, ksize)
	ss := 1.0 / filterscale
	for i := 0; i < n; i++ {
		xx := first + i
		center := (float64(xx) + 0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			v := bilinearFilter((float64(x+xmin) - center + 0.5) * ss)
			w[x] = v
			ww += v
		}
		kk := c.k[i*ksize : i*ksize+ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				kk[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				kk[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[i] = xmin
		c.count[i] = xmax
	}
	return c
}

// clip8 is Pillow's clip8: the fixed-point sum shifted down and clamped to 0..255.
func clip8(v int32) byte {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// ResizeBilinearRGB computes the part win of Pillow's Image.resize((outW, outH),
// BILINEAR) of src (antialiased two-pass fixed-point resampling, horizontal pass first,
// identical to ImagingResample for an RGB image) and writes it to dst as packed RGB,
// row-major, len(dst) >= 3*win.Dx()*win.Dy(). Every output pixel is bit-identical to the
// corresponding pixel of the full Pillow resize, so a centre crop costs only the cropped
// area. win must lie inside (0,0)-(outW,outH).
func ResizeBilinearRGB(src Source, outW, outH int, win image.Rectangle, dst []byte) error {
	if err := src.Check(); err != nil {
		return err
	}
	if outW <= 0 || outH <= 0 {
		return fmt.Errorf("%w: output size %dx%d is not positive", ErrInvalid, outW, outH)
	}
	if win.Empty() || !win.In(image.Rect(0, 0, outW, outH)) {
		return fmt.Errorf("%w: window %v is empty or outside the %dx%d output", ErrInvalid, win, outW, outH)
	}
	ww, wh := win.Dx(), win.Dy()
	if ww > math.MaxInt/3/wh {
		return fmt.Errorf("%w: window %v overflows", ErrInvalid, win)
	}
	if len(dst) < 3*ww*wh {
		return fmt.Errorf("%w: destination has %d bytes, the window needs %d", ErrInvalid, len(dst), 3*ww*wh)
	}
	needH := outW != src.Width
	needV := outH != src.Height

	// Source rows the vertical pass reads (Pillow's ybox_first..ybox_last, restricted to win).
	var vert axisCoeffs
	rowFirst, rowLast := win.Min.Y, win.Max.Y
	if needV {
		vert = pillowCoeffs(src.Height, outH, win.Min.Y, wh)
		rowFirst = vert.start[0]
		rowLast = vert.start[wh-1] + vert.count[wh-1]
	}
	nRows := rowLast - rowFirst

	// Horizontal pass (or a plain channel gather when the width is unchanged) into a
	// packed RGB buffer of the needed rows; when no vertical pass follows it goes
	// straight into dst.
	tmp := dst[:3*ww*wh]
	if needV {
		tmp = make([]byte, 3*ww*nRows)
	}
	if needH {
		hc := pillowCoeffs(src.Width, outW, win.Min.X, ww)
		for r := 0; r < nRows; r++ {
			horizontalRow(tmp[3*ww*r:3*ww*(r+1)], src.Pix[(rowFirst+r)*src.Stride:], src.Channels, src.BGR, hc)
		}
	} else {
		for r := 0; r < nRows; r++ {
			row := src.Pix[(rowFirst+r)*src.Stride+win.Min.X*src.Channels:]
			copyRow(tmp[3*ww*r:3*ww*(r+1)], row, src.Channels, src.BGR)
		}
	}
	if !needV {
		return nil
	}

	// Vertical pass over the packed buffer.
	rowLen := 3 * ww
	acc := make([]int32, rowLen)
	for i := 0; i < wh; i++ {
		ymin, cnt := vert.start[i]-rowFirst, vert.count[i]
		k := vert.k[i*vert.ksize : i*vert.ksize+cnt]
		for j := range acc {
			acc[j] = roundHalf
		}
		for y, kv := range k {
			in := tmp[(ymin+y)*rowLen : (ymin+y+1)*rowLen]
			for j, v := range in {
				acc[j] += int32(v) * kv
			}
		}
		out := dst[i*rowLen : (i+1)*rowLen]
		for j, v := range acc {
			out[j] = clip8(v)
		}
	}
	return nil
}

// horizontalRow resamples one source row into out (packed RGB, len(out)/3 output
// pixels) with the taps hc: Pillow's ImagingResampleHorizontal_8bpc for one line.
func horizontalRow(out, row []byte, channels int, bgr bool, hc axisCoeffs) {
	n := len(out) / 3
	if channels == 1 {
		for i := 0; i < n; i++ {
			xmin, cnt := hc.start[i], hc.count[i]
			k := hc.k[i*hc.ksize : i*hc.ksize+cnt]
			p := row[xmin : xmin+cnt]
			s := roundHalf
			for x, kv := range k {
				s += int32(p[x]) * kv
			}
			v := clip8(s)
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
		}
		return
	}
	for i := 0; i < n; i++ {
		xmin, cnt := hc.start[i], hc.count[i]
		k := hc.k[i*hc.ksize : i*hc.ksize+cnt]
		p := row[xmin*channels : (xmin+cnt)*channels]
		s0, s1, s2 := roundHalf, roundHalf, roundHalf
		for _, kv := range k {
			q := p[:3:3]
			s0 += int32(q[0]) * kv
			s1 += int32(q[1]) * kv
			s2 += int32(q[2]) * kv
			p = p[channels:]
		}
		if bgr {
			s0, s2 = s2, s0
		}
		out[3*i], out[3*i+1], out[3*i+2] = clip8(s0), clip8(s1), clip8(s2)
	}
}

// copyRow converts len(out)/3 source pixels to packed RGB without resampling.
func copyRow(out, row []byte, channels int, bgr bool) {
	n := len(out) / 3
	for i := 0; i < n; i++ {
		if channels == 1 {
			v := row[i]
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
			continue
		}
		q := row[i*channels : i*channels+3]
		if bgr {
			out[3*i], out[3*i+1], out[3*i+2] = q[2], q[1], q[0]
		} else {
			out[3*i], out[3*i+1], out[3*i+2] = q[0], q[1], q[2]
		}
	}
}
