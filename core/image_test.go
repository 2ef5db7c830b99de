package core

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// imgMaxAbs returns max |a-b| over two equally long slices.
func imgMaxAbs(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d differ", len(a), len(b))
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

var imgResizeCases = []struct {
	name         string
	resize, crop int
}{
	{"photo_a_640x480", 256, 224},
	{"photo_b_500x333", 256, 224},
	{"photo_b_500x333", 366, 320},
	{"photo_c_300x451", 256, 224},
}

// TestImageTransformGolden: LoadImage + ApplyU8 reproduce the reference crops exactly and
// Apply the normalised tensors within 1e-6 absolute.
func TestImageTransformGolden(t *testing.T) {
	for _, c := range imgResizeCases {
		img, err := LoadImage(golden.Path(t, "resize/"+c.name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		tr := DefaultImageTransform()
		tr.Resize, tr.CropSize = c.resize, c.crop
		prefix := "resize/" + c.name + "_r" + itoaImg(c.resize) + "_c" + itoaImg(c.crop)
		crop, err := tr.ApplyU8(img)
		if err != nil {
			t.Fatal(err)
		}
		if want := golden.Load(t, prefix+"_u8.npy"); !bytes.Equal(crop, want.U8) {
			t.Errorf("%s: uint8 crop differs from the reference", prefix)
		}
		want := golden.Load(t, prefix+"_tensor.npy")
		got := make([]float32, tr.TensorSize())
		if err := tr.Apply(img, got); err != nil {
			t.Fatal(err)
		}
		if d := imgMaxAbs(t, got, want.F32); d > 1e-6 {
			t.Errorf("%s: normalised tensor max abs diff %g > 1e-6", prefix, d)
		} else {
			t.Logf("%s: normalised tensor max abs diff %g", prefix, d)
		}
	}
}

func itoaImg(v int) string {
	s := ""
	for ; v > 0; v /= 10 {
		s = string(rune('0'+v%10)) + s
	}
	return s
}

// TestImageTransformMNV2Input: the four mnv2 PNGs give input_imagenet (train0, train1,
// test0, test1) within 1e-6 when written straight into one batch tensor.
func TestImageTransformMNV2Input(t *testing.T) {
	want := golden.Load(t, "mnv2/input_imagenet.npy")
	tr := DefaultImageTransform()
	n := tr.TensorSize()
	batch := make([]float32, 4*n)
	for i, f := range []string{"train_good_000", "train_good_001", "test_good_001", "test_stain_000"} {
		img, err := LoadImage(golden.Path(t, "mnv2/png/"+f+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Apply(img, batch[i*n:(i+1)*n]); err != nil {
			t.Fatal(err)
		}
	}
	if d := imgMaxAbs(t, batch, want.F32); d > 1e-6 {
		t.Errorf("input_imagenet max abs diff %g > 1e-6", d)
	} else {
		t.Logf("input_imagenet max abs diff %g", d)
	}
}

// TestImageLayouts: BGR, BGRA (any alpha), padded strides and grayscale give the same
// result as the equivalent packed RGB image.
func TestImageLayouts(t *testing.T) {
	img, err := LoadImage(golden.Path(t, "resize/photo_c_300x451.png"))
	if err != nil {
		t.Fatal(err)
	}
	tr := DefaultImageTransform()
	ref := make([]float32, tr.TensorSize())
	if err := tr.Apply(img, ref); err != nil {
		t.Fatal(err)
	}
	w, h := img.Width, img.Height
	bgra := Image{Width: w, Height: h, Channels: 4, Stride: 4*w + 12, BGR: true, Pix: make([]byte, (4*w+12)*h)}
	bgr := Image{Width: w, Height: h, Channels: 3, Stride: 3*w + 5, BGR: true, Pix: make([]byte, (3*w+5)*h-5)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := img.Pix[y*img.Stride+3*x:]
			q := bgra.Pix[y*bgra.Stride+4*x:]
			q[0], q[1], q[2], q[3] = p[2], p[1], p[0], byte(x*7+y)
			r := bgr.Pix[y*bgr.Stride+3*x:]
			r[0], r[1], r[2] = p[2], p[1], p[0]
		}
	}
	for name, im := range map[string]Image{"bgra": bgra, "bgr": bgr} {
		got := make([]float32, tr.TensorSize())
		if err := tr.Apply(im, got); err != nil {
			t.Fatal(name, err)
		}
		if d := imgMaxAbs(t, got, ref); d != 0 {
			t.Errorf("%s differs from RGB by %g", name, d)
		}
	}
	// Grayscale: the same as its RGB replication.
	gray := Image{Width: w, Height: h, Channels: 1, Stride: w, Pix: make([]byte, w*h)}
	rep := Image{Width: w, Height: h, Channels: 3, Stride: 3 * w, Pix: make([]byte, 3*w*h)}
	for i := range gray.Pix {
		v := img.Pix[3*i+1]
		gray.Pix[i] = v
		rep.Pix[3*i], rep.Pix[3*i+1], rep.Pix[3*i+2] = v, v, v
	}
	a, err1 := tr.ApplyU8(gray)
	b, err2 := tr.ApplyU8(rep)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Errorf("gray differs from replicated RGB (%v, %v)", err1, err2)
	}
}

func TestImageErrors(t *testing.T) {
	tr := DefaultImageTransform()
	dst := make([]float32, tr.TensorSize())
	ok := Image{Width: 4, Height: 4, Channels: 3, Stride: 12, Pix: make([]byte, 48)}
	bad := map[string]Image{
		"zero width":     {Width: 0, Height: 4, Channels: 3, Stride: 12, Pix: make([]byte, 48)},
		"negative":       {Width: -1, Height: 4, Channels: 3, Stride: 12, Pix: make([]byte, 48)},
		"two channels":   {Width: 4, Height: 4, Channels: 2, Stride: 12, Pix: make([]byte, 48)},
		"short stride":   {Width: 4, Height: 4, Channels: 3, Stride: 11, Pix: make([]byte, 48)},
		"short buffer":   {Width: 4, Height: 4, Channels: 3, Stride: 12, Pix: make([]byte, 47)},
		"too large":      {Width: 1 << 15, Height: 1<<13 + 1, Channels: 1, Stride: 1 << 15},
		"overflow":       {Width: math.MaxInt / 2, Height: math.MaxInt / 2, Channels: 4, Stride: math.MaxInt},
		"stride product": {Width: 1, Height: 1 << 20, Channels: 1, Stride: math.MaxInt / 1000},
	}
	for name, im := range bad {
		if err := tr.Apply(im, dst); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if err := tr.Apply(ok, dst[:len(dst)-1]); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("short dst: %v", err)
	}
	for name, bt := range map[string]ImageTransform{
		"crop > resize": {Resize: 200, CropSize: 224, Std: [3]float32{1, 1, 1}},
		"zero crop":     {Resize: 200, CropSize: 0, Std: [3]float32{1, 1, 1}},
		"zero std":      {Resize: 256, CropSize: 224, Std: [3]float32{1, 0, 1}},
		"nan mean":      {Resize: 256, CropSize: 224, Mean: [3]float32{float32(math.NaN()), 0, 0}, Std: [3]float32{1, 1, 1}},
	} {
		if err := bt.Apply(ok, dst); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v", name, err)
		}
		if _, err := bt.ApplyU8(ok); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s (u8): err = %v", name, err)
		}
	}
	if err := tr.Apply(ok, dst); err != nil {
		t.Errorf("valid 4x4 image (upscaled): %v", err)
	}
	if _, err := LoadImage(filepath.Join(t.TempDir(), "missing.png")); !errors.Is(err, ErrIO) {
		t.Errorf("missing file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.png")
	if err := os.WriteFile(junk, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadImage(junk); !errors.Is(err, ErrFormat) {
		t.Errorf("junk file: %v", err)
	}
}
