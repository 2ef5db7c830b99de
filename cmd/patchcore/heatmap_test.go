package main

import (
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestMain points the ONNX Runtime loader at the runtime installed by
// scripts/install-deps.sh (a test binary has no libonnxruntime.so.1 next to it), unless
// $PATCHCORE_ORT_LIBRARY is already set.
func TestMain(m *testing.M) {
	if os.Getenv("PATCHCORE_ORT_LIBRARY") == "" {
		_, file, _, _ := runtime.Caller(0)
		lib := filepath.Join(filepath.Dir(file), "..", "..", ".deps", "lib", "libonnxruntime.so.1")
		if _, err := os.Stat(lib); err == nil {
			os.Setenv("PATCHCORE_ORT_LIBRARY", lib)
		}
	}
	os.Exit(m.Run())
}

func TestJetColormap(t *testing.T) {
	// r, g, b = clamp(1.5 − |4h − c|) for c = 3, 2, 1, times 255, rounded (hand-computed).
	cases := []struct {
		h    float32
		want color.RGBA
	}{
		{0, color.RGBA{0, 0, 128, 255}},
		{0.25, color.RGBA{0, 128, 255, 255}},
		{0.5, color.RGBA{128, 255, 128, 255}},
		{0.75, color.RGBA{255, 128, 0, 255}},
		{1, color.RGBA{128, 0, 0, 255}},
		{0.125, color.RGBA{0, 0, 255, 255}}, // b = 1.5 − 0.5 = 1, g = 1.5 − 1.5 = 0
		{-3, color.RGBA{0, 0, 128, 255}},    // clamped to 0
		{7, color.RGBA{128, 0, 0, 255}},     // clamped to 1
		{float32(math.NaN()), color.RGBA{0, 0, 128, 255}},
	}
	for _, c := range cases {
		if got := jet(c.h); got != c.want {
			t.Errorf("jet(%v) = %v, want %v", c.h, got, c.want)
		}
	}
}

func TestOverlay(t *testing.T) {
	// Three pixels of the same colour with heat 0, 1 and 0.5; a = 0.6·h.
	crop := []uint8{100, 61, 200, 100, 61, 200, 100, 61, 200, 0, 0, 0}
	heat := []float32{0, 1, 0.5, float32(math.NaN())}
	img := overlay(crop, heat, 2)
	want := [][4]uint8{
		{100, 61, 200, 255},  // heat 0: the image
		{117, 24, 80, 255},   // 0.4·(100,61,200) + 0.6·(128,0,0) = (116.8, 24.4, 80)
		{108, 119, 178, 255}, // 0.7·(100,61,200) + 0.3·(128,255,128) = (108.4, 119.2, 178.4)
		{0, 0, 0, 255},       // NaN heat reads as 0
	}
	for i, w := range want {
		if got := [4]uint8(img.Pix[4*i : 4*i+4]); got != w {
			t.Errorf("pixel %d = %v, want %v", i, got, w)
		}
	}
	rgb := rgbImage(crop, 2)
	if got := [4]uint8(rgb.Pix[4:8]); got != [4]uint8{100, 61, 200, 255} {
		t.Errorf("rgbImage pixel 1 = %v", got)
	}
}

func TestMaskImageAndScale(t *testing.T) {
	m := maskImage([]bool{true, false, false, true}, 2)
	if string(m.Pix) != string([]byte{255, 0, 0, 255}) {
		t.Errorf("bool mask = %v", m.Pix)
	}
	m8 := maskImage([]uint8{0, 1, 0, 0}, 2)
	if string(m8.Pix) != string([]byte{0, 255, 0, 0}) {
		t.Errorf("uint8 mask = %v", m8.Pix)
	}

	s := medianMaxScale([]float32{1, 3}, []float32{2, 5}) // median 3, max 5
	got := s.apply([]float32{1, 3, 5, 0, 7, 4})
	want := []float32{0, 0, 1, 0, 1, 0.5}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("heat of value %d = %v, want %v", i, got[i], want[i])
		}
	}
	if c := medianMaxScale([]float32{4, 4}); c.apply([]float32{4})[0] != 0 {
		t.Errorf("constant maps should have heat 0, scale %+v", c)
	}
}

func TestWritePNG(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b", "m.png")
	if err := writePNG(p, maskImage([]bool{true, false, false, false}, 2)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := img.At(0, 0).RGBA(); r != 0xffff {
		t.Errorf("pixel (0,0) = %v, want white", img.At(0, 0))
	}
	if r, _, _, _ := img.At(1, 0).RGBA(); r != 0 {
		t.Errorf("pixel (1,0) = %v, want black", img.At(1, 0))
	}
	if err := writePNG(filepath.Join(p, "below-a-file.png"), maskImage([]bool{true}, 1)); err == nil {
		t.Error("writing below a file succeeded")
	}
}
