package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/libpatchcore/libpatchcore/core"
)

// overlayAlpha is the opacity of the heat colour at heat 1; the opacity grows linearly
// from 0 at heat 0, so cool regions show the image unchanged.
const overlayAlpha = 0.6

// jet maps a heat value in [0, 1] (clamped; NaN reads as 0) to the classic "jet" colour
// map: dark blue (0, 0, 128) at 0, green-ish (128, 255, 128) at 0.5, dark red (128, 0, 0)
// at 1, with r, g, b = clamp(1.5 − |4h − c|) for c = 3, 2, 1.
func jet(h float32) color.RGBA {
	if !(h > 0) {
		h = 0
	}
	h = min(h, 1)
	ch := func(c float64) uint8 {
		v := 1.5 - math.Abs(4*float64(h)-c)
		return uint8(math.Round(255 * min(max(v, 0), 1)))
	}
	return color.RGBA{R: ch(3), G: ch(2), B: ch(1), A: 255}
}

// rgbImage wraps an interleaved size×size RGB crop (as core.ImageTransform.ApplyU8
// returns it) into an image.RGBA.
func rgbImage(crop []uint8, size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := range size * size {
		copy(img.Pix[4*i:4*i+3], crop[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}

// overlay blends the heat map (size×size values in [0, 1], row-major) over the RGB crop:
// out = (1 − a)·image + a·jet(h) with a = overlayAlpha·h, rounded per channel.
func overlay(crop []uint8, heat []float32, size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := range size * size {
		h := heat[i]
		if !(h > 0) {
			h = 0
		}
		h = min(h, 1)
		c := jet(h)
		a := overlayAlpha * float64(h)
		for k, hc := range [3]uint8{c.R, c.G, c.B} {
			v := (1-a)*float64(crop[3*i+k]) + a*float64(hc)
			img.Pix[4*i+k] = uint8(math.Round(v))
		}
		img.Pix[4*i+3] = 255
	}
	return img
}

// maskImage renders a binary mask (non-zero = defect) as a 0/255 grayscale image.
func maskImage[T uint8 | bool](mask []T, size int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, size, size))
	var zero T
	for i, v := range mask[:size*size] {
		if v != zero {
			img.Pix[i] = 255
		}
	}
	return img
}

// heatScale maps anomaly-map values linearly onto [0, 1] heat: lo → 0, hi → 1, clamped.
type heatScale struct{ lo, hi float32 }

// medianMaxScale maps the median of all map values (the typical level of normal
// texture) to heat 0 and the largest value to heat 1, so normal regions show the image
// untinted and defects stand out. Above a million values the median is taken from an
// evenly strided sample. A constant set maps to heat 0.
func medianMaxScale(maps ...[]float32) heatScale {
	n := 0
	for _, m := range maps {
		n += len(m)
	}
	step := max(1, n/(1<<20))
	sample := make([]float32, 0, n/step+len(maps))
	hi := float32(math.Inf(-1))
	for _, m := range maps {
		for i, v := range m {
			hi = max(hi, v)
			if i%step == 0 {
				sample = append(sample, v)
			}
		}
	}
	if len(sample) == 0 {
		return heatScale{lo: 0, hi: 1}
	}
	slices.Sort(sample)
	lo := sample[len(sample)/2]
	if !(lo < hi) {
		return heatScale{lo: lo, hi: lo + 1}
	}
	return heatScale{lo: lo, hi: hi}
}

// apply returns the heat of every value of m.
func (s heatScale) apply(m []float32) []float32 {
	out := make([]float32, len(m))
	d := s.hi - s.lo
	for i, v := range m {
		out[i] = min(max((v-s.lo)/d, 0), 1)
	}
	return out
}

// writePNG encodes img to path, creating the parent directory.
func writePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%w: %v", core.ErrIO, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%w: %v", core.ErrIO, err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%w: writing %s: %v", core.ErrIO, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: writing %s: %v", core.ErrIO, path, err)
	}
	return nil
}
