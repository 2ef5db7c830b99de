package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder for image.Decode
	_ "image/png"  // registers the PNG decoder for image.Decode
)

// ErrDecode is wrapped by errors about undecodable image data.
var ErrDecode = errors.New("imaging: cannot decode image")

// ErrTooLarge is wrapped when an image exceeds the caller's pixel limit.
var ErrTooLarge = errors.New("imaging: image too large")

// DecodeRGB decodes a PNG or JPEG file held in data into packed 8-bit RGB (3 bytes per
// pixel, row-major), converting like PIL's Image.convert("RGB") does:
//   - grayscale (any bit depth below 16, scaled to 8 bits) is replicated to R=G=B;
//   - alpha is dropped without compositing (RGBA, LA, palette transparency);
//   - 16-bit RGB(A) keeps the most significant byte of each sample;
//   - 16-bit grayscale is opened by PIL as 32-bit integer mode "I", whose RGB conversion
//     clamps the value to 0..255 (it does not rescale), and is converted the same way here
//     (except with a tRNS chunk, which Go's decoder turns into 16-bit RGBA: high byte);
//   - palette images take their palette colours.
//
// JPEG pixels come from Go's decoder, whose IDCT, chroma upsampling (nearest, where
// libjpeg uses "fancy" triangular upsampling) and YCbCr conversion can differ from
// Pillow/libjpeg by a few grey levels; PNG is exact. The header is checked against
// maxPixels before the pixels are decoded.
func DecodeRGB(data []byte, maxPixels int) (pix []byte, w, h int, err error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, 0, 0, fmt.Errorf("%w: image size %dx%d", ErrDecode, cfg.Width, cfg.Height)
	}
	if cfg.Width > maxPixels/cfg.Height {
		return nil, 0, 0, fmt.Errorf("%w: %dx%d exceeds the limit of %d pixels", ErrTooLarge, cfg.Width, cfg.Height, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	pix = make([]byte, 3*w*h)
	toRGB(img, pix)
	return pix, w, h, nil
}

// toRGB writes img as packed RGB into pix (len 3*W*H).
func toRGB(img image.Image, pix []byte) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < b.Dy(); y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			out := pix[3*w*y : 3*w*(y+1)]
			for x, v := range row {
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < b.Dy(); y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			out := pix[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				v := uint16(row[2*x])<<8 | uint16(row[2*x+1])
				c := byte(min(v, 255))
				out[3*x], out[3*x+1], out[3*x+2] = c, c, c
			}
		}
	case *image.NRGBA:
		copyInterleaved(pix, m.Pix, m.Stride, w, b.Dy(), 4, 1)
	case *image.RGBA:
		// The PNG decoder only produces RGBA for opaque images, where it equals NRGBA.
		copyInterleaved(pix, m.Pix, m.Stride, w, b.Dy(), 4, 1)
	case *image.NRGBA64:
		copyInterleaved(pix, m.Pix, m.Stride, w, b.Dy(), 8, 2)
	case *image.RGBA64:
		copyInterleaved(pix, m.Pix, m.Stride, w, b.Dy(), 8, 2)
	case *image.Paletted:
		var lut [256][3]byte
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]byte{n.R, n.G, n.B}
		}
		for y := 0; y < b.Dy(); y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			out := pix[3*w*y : 3*w*(y+1)]
			for x, v := range row {
				c := lut[v]
				out[3*x], out[3*x+1], out[3*x+2] = c[0], c[1], c[2]
			}
		}
	case *image.YCbCr:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				ci := m.COffset(x, y)
				r, g, bl := color.YCbCrToRGB(m.Y[m.YOffset(x, y)], m.Cb[ci], m.Cr[ci])
				pix[i], pix[i+1], pix[i+2] = r, g, bl
				i += 3
			}
		}
	default:
		// CMYK JPEGs and any other decoder output: Go's colour conversion.
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				pix[i], pix[i+1], pix[i+2] = c.R, c.G, c.B
				i += 3
			}
		}
	}
}

// copyInterleaved copies the first three channels of a w x h image whose pixels are
// pixBytes apart, taking the first (most significant) byte of each sampleBytes-wide
// sample.
func copyInterleaved(dst, src []byte, stride, w, h, pixBytes, sampleBytes int) {
	for y := 0; y < h; y++ {
		row := src[y*stride : y*stride+w*pixBytes]
		out := dst[3*w*y : 3*w*(y+1)]
		for x := 0; x < w; x++ {
			p := row[x*pixBytes:]
			out[3*x] = p[0]
			out[3*x+1] = p[sampleBytes]
			out[3*x+2] = p[2*sampleBytes]
		}
	}
}
