package imaging

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeOK(t *testing.T, data []byte) ([]byte, int, int) {
	t.Helper()
	pix, w, h, err := DecodeRGB(data, 1<<28)
	if err != nil {
		t.Fatal(err)
	}
	return pix, w, h
}

// TestDecodeConversions checks each PNG flavour against PIL's convert("RGB") rules.
func TestDecodeConversions(t *testing.T) {
	// 8-bit gray: replicated.
	g := image.NewGray(image.Rect(0, 0, 3, 1))
	copy(g.Pix, []byte{0, 77, 255})
	pix, w, h := decodeOK(t, encodePNG(t, g))
	if w != 3 || h != 1 || !bytes.Equal(pix, []byte{0, 0, 0, 77, 77, 77, 255, 255, 255}) {
		t.Errorf("gray: %v", pix)
	}

	// 16-bit gray: PIL mode "I" -> RGB clamps to 0..255 instead of rescaling.
	g16 := image.NewGray16(image.Rect(0, 0, 4, 1))
	for i, v := range []uint16{0, 100, 300, 65535} {
		g16.SetGray16(i, 0, color.Gray16{Y: v})
	}
	pix, _, _ = decodeOK(t, encodePNG(t, g16))
	if !bytes.Equal(pix, []byte{0, 0, 0, 100, 100, 100, 255, 255, 255, 255, 255, 255}) {
		t.Errorf("gray16: %v", pix)
	}

	// RGBA: alpha dropped, colour kept un-premultiplied.
	n := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	n.SetNRGBA(0, 0, color.NRGBA{R: 10, G: 20, B: 30, A: 0})
	n.SetNRGBA(1, 0, color.NRGBA{R: 200, G: 100, B: 50, A: 128})
	pix, _, _ = decodeOK(t, encodePNG(t, n))
	if !bytes.Equal(pix, []byte{10, 20, 30, 200, 100, 50}) {
		t.Errorf("rgba: %v", pix)
	}

	// 16-bit RGB(A): most significant byte.
	n64 := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	n64.SetNRGBA64(0, 0, color.NRGBA64{R: 0x12ff, G: 0xab01, B: 0x00ff, A: 0x8000})
	pix, _, _ = decodeOK(t, encodePNG(t, n64))
	if !bytes.Equal(pix, []byte{0x12, 0xab, 0x00}) {
		t.Errorf("rgba64: %v", pix)
	}
	r64 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	r64.SetRGBA64(0, 0, color.RGBA64{R: 0xfe00, G: 0x0100, B: 0x7fff, A: 0xffff})
	pix, _, _ = decodeOK(t, encodePNG(t, r64))
	if !bytes.Equal(pix, []byte{0xfe, 0x01, 0x7f}) {
		t.Errorf("rgb48: %v", pix)
	}

	// Palette: palette colours.
	p := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{250, 128, 7, 255}})
	p.Pix[0], p.Pix[1] = 1, 0
	pix, _, _ = decodeOK(t, encodePNG(t, p))
	if !bytes.Equal(pix, []byte{250, 128, 7, 1, 2, 3}) {
		t.Errorf("paletted: %v", pix)
	}

	// 8-bit RGB: as stored.
	rgb := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := range rgb.Pix {
		rgb.Pix[i] = byte(i * 13)
		if i%4 == 3 {
			rgb.Pix[i] = 255
		}
	}
	pix, w, h = decodeOK(t, encodePNG(t, rgb))
	if w != 2 || h != 2 || pix[3] != rgb.Pix[4] || pix[11] != rgb.Pix[14] {
		t.Errorf("rgb: %v vs %v", pix, rgb.Pix)
	}
}

// TestDecodeJPEG checks that a JPEG decodes to the colours Go's own colour model gives
// (within one level) and that a gray JPEG is replicated.
func TestDecodeJPEG(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			src.SetRGBA(x, y, color.RGBA{uint8(16 * x), uint8(16 * y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	pix, w, h := decodeOK(t, buf.Bytes())
	ref, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(ref.At(x, y)).(color.NRGBA)
			want := []uint8{c.R, c.G, c.B}
			for k := 0; k < 3; k++ {
				d := int(pix[3*(y*w+x)+k]) - int(want[k])
				if d < -1 || d > 1 {
					t.Fatalf("jpeg (%d,%d,%d) = %d, want %d", x, y, k, pix[3*(y*w+x)+k], want[k])
				}
			}
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range gray.Pix {
		gray.Pix[i] = 90
	}
	buf.Reset()
	if err := jpeg.Encode(&buf, gray, nil); err != nil {
		t.Fatal(err)
	}
	pix, _, _ = decodeOK(t, buf.Bytes())
	for i := 0; i < len(pix); i += 3 {
		if pix[i] != pix[i+1] || pix[i] != pix[i+2] || pix[i] < 88 || pix[i] > 92 {
			t.Fatalf("gray jpeg pixel %d = %v", i/3, pix[i:i+3])
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, _, _, err := DecodeRGB([]byte("not an image"), 1<<28); !errors.Is(err, ErrDecode) {
		t.Errorf("garbage: %v", err)
	}
	data := encodePNG(t, image.NewGray(image.Rect(0, 0, 10, 10)))
	if _, _, _, err := DecodeRGB(data, 99); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, _, _, err := DecodeRGB(data[:len(data)-20], 1<<28); !errors.Is(err, ErrDecode) {
		t.Errorf("truncated: %v", err)
	}
}
