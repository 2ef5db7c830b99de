package imaging

import (
	"errors"
	"image"
	"os"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// resizeCase is one golden variant of resize/: source PNG, Resize and CenterCrop sizes and
// the expected geometry from the golden README.
type resizeCase struct {
	name             string
	resize, crop     int
	outW, outH       int
	cropTop, cropLft int
}

var resizeCases = []resizeCase{
	{"photo_a_640x480", 256, 224, 341, 256, 16, 58},
	{"photo_b_500x333", 256, 224, 384, 256, 16, 80},
	{"photo_b_500x333", 366, 320, 549, 366, 23, 114},
	{"photo_c_300x451", 256, 224, 256, 384, 80, 16},
}

func loadPNG(t *testing.T, rel string) Source {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	pix, w, h, err := DecodeRGB(data, 1<<28)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return Source{Width: w, Height: h, Pix: pix, Stride: 3 * w, Channels: 3}
}

func countDiff(t *testing.T, got, want []byte) int {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("length %d, want %d", len(got), len(want))
	}
	n := 0
	for i := range got {
		if got[i] != want[i] {
			n++
		}
	}
	return n
}

// TestResizeGoldenExact checks that the full resize and the centre crop reproduce
// Pillow's uint8 output byte for byte for all four golden variants.
func TestResizeGoldenExact(t *testing.T) {
	for _, c := range resizeCases {
		src := loadPNG(t, "resize/"+c.name+".png")
		w, h, err := ResizeShorterSide(src.Width, src.Height, c.resize)
		if err != nil || w != c.outW || h != c.outH {
			t.Fatalf("%s r%d: size %dx%d (%v), want %dx%d", c.name, c.resize, w, h, err, c.outW, c.outH)
		}
		top, err1 := CenterCropOffset(h, c.crop)
		left, err2 := CenterCropOffset(w, c.crop)
		if err1 != nil || err2 != nil || top != c.cropTop || left != c.cropLft {
			t.Fatalf("%s: crop offset (%d,%d), want (%d,%d)", c.name, top, left, c.cropTop, c.cropLft)
		}
		prefix := "resize/" + c.name + "_r" + itoa(c.resize)
		want := golden.Load(t, prefix+"_resized_u8.npy")
		if want.Shape[0] != h || want.Shape[1] != w {
			t.Fatalf("%s: golden shape %v", prefix, want.Shape)
		}
		full := make([]byte, 3*w*h)
		if err := ResizeBilinearRGB(src, w, h, image.Rect(0, 0, w, h), full); err != nil {
			t.Fatal(err)
		}
		if n := countDiff(t, full, want.U8); n != 0 {
			t.Errorf("%s: %d of %d resized bytes differ from Pillow", prefix, n, len(full))
		}
		wantCrop := golden.Load(t, prefix+"_c"+itoa(c.crop)+"_u8.npy")
		crop := make([]byte, 3*c.crop*c.crop)
		if err := ResizeBilinearRGB(src, w, h, image.Rect(left, top, left+c.crop, top+c.crop), crop); err != nil {
			t.Fatal(err)
		}
		if n := countDiff(t, crop, wantCrop.U8); n != 0 {
			t.Errorf("%s: %d of %d cropped bytes differ", prefix, n, len(crop))
		}
	}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// TestResizeIdentityAndConstant: an unchanged size copies the pixels (Pillow returns a
// copy), a constant image stays constant, and a grayscale source resamples exactly like
// its RGB replication.
func TestResizeIdentityAndConstant(t *testing.T) {
	w, h := 7, 5
	pix := make([]byte, 4*w*h)
	for i := range pix {
		pix[i] = byte(i*37 + 11)
	}
	// BGRA view.
	src := Source{Width: w, Height: h, Pix: pix, Stride: 4 * w, Channels: 4, BGR: true}
	out := make([]byte, 3*w*h)
	if err := ResizeBilinearRGB(src, w, h, image.Rect(0, 0, w, h), out); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for k := 0; k < 3; k++ {
				if got, want := out[3*(y*w+x)+k], pix[y*4*w+4*x+2-k]; got != want {
					t.Fatalf("identity (%d,%d,%d) = %d, want %d", x, y, k, got, want)
				}
			}
		}
	}
	// A constant image stays constant under any resize (weights sum to 1 after rounding).
	flat := make([]byte, 3*9*4)
	for i := range flat {
		flat[i] = 200
	}
	fs := Source{Width: 9, Height: 4, Pix: flat, Stride: 27, Channels: 3}
	for _, sz := range [][2]int{{3, 4}, {9, 2}, {20, 11}, {1, 1}} {
		o := make([]byte, 3*sz[0]*sz[1])
		if err := ResizeBilinearRGB(fs, sz[0], sz[1], image.Rect(0, 0, sz[0], sz[1]), o); err != nil {
			t.Fatal(err)
		}
		for i, v := range o {
			if v != 200 {
				t.Fatalf("constant image resized to %v: byte %d = %d", sz, i, v)
			}
		}
	}
	gray := Source{Width: 13, Height: 11, Pix: make([]byte, 13*11), Stride: 13, Channels: 1}
	rgb := Source{Width: 13, Height: 11, Pix: make([]byte, 3*13*11), Stride: 39, Channels: 3}
	for i := range gray.Pix {
		v := byte(i * i % 251)
		gray.Pix[i] = v
		rgb.Pix[3*i], rgb.Pix[3*i+1], rgb.Pix[3*i+2] = v, v, v
	}
	for _, sz := range [][2]int{{5, 4}, {13, 6}, {6, 11}, {20, 30}} {
		a := make([]byte, 3*sz[0]*sz[1])
		b := make([]byte, len(a))
		if ResizeBilinearRGB(gray, sz[0], sz[1], image.Rect(0, 0, sz[0], sz[1]), a) != nil ||
			ResizeBilinearRGB(rgb, sz[0], sz[1], image.Rect(0, 0, sz[0], sz[1]), b) != nil {
			t.Fatal("resize failed")
		}
		if n := countDiff(t, a, b); n != 0 {
			t.Fatalf("gray vs replicated RGB at %v: %d bytes differ", sz, n)
		}
	}
}

// TestResizeTwoToOne checks a hand-computed antialiased downscale of a 4-pixel row to 2
// (scale 2: the triangle filter's support grows to 2 input pixels).
func TestResizeTwoToOne(t *testing.T) {
	row := []byte{0, 0, 0, 80, 80, 80, 160, 160, 160, 240, 240, 240}
	src := Source{Width: 4, Height: 1, Pix: row, Stride: 12, Channels: 3}
	out := make([]byte, 6)
	if err := ResizeBilinearRGB(src, 2, 1, image.Rect(0, 0, 2, 1), out); err != nil {
		t.Fatal(err)
	}
	// Output 0: centre 1, support 2, taps x=0..2 with weights tri(0.25)=.75, tri(.25)=.75,
	// tri(.75)=.25 -> normalised 3/7, 3/7, 1/7: (0*3 + 80*3 + 160)/7 = 57.14 -> 57.
	// Output 1: centre 3, taps x=1..3: .25, .75, .75 -> (80 + 160*3 + 240*3)/7 = 182.86 -> 183.
	if out[0] != 57 || out[3] != 183 {
		t.Fatalf("2:1 downscale = %v, want 57 and 183", out)
	}
}

func TestResizeErrors(t *testing.T) {
	good := Source{Width: 2, Height: 2, Pix: make([]byte, 12), Stride: 6, Channels: 3}
	cases := map[string]struct {
		src        Source
		outW, outH int
		win        image.Rectangle
		dst        int
	}{
		"short buffer":   {Source{Width: 2, Height: 2, Pix: make([]byte, 11), Stride: 6, Channels: 3}, 2, 2, image.Rect(0, 0, 2, 2), 12},
		"small stride":   {Source{Width: 2, Height: 2, Pix: make([]byte, 12), Stride: 5, Channels: 3}, 2, 2, image.Rect(0, 0, 2, 2), 12},
		"zero size":      {Source{Width: 0, Height: 2, Pix: make([]byte, 12), Stride: 6, Channels: 3}, 2, 2, image.Rect(0, 0, 2, 2), 12},
		"two channels":   {Source{Width: 2, Height: 2, Pix: make([]byte, 12), Stride: 6, Channels: 2}, 2, 2, image.Rect(0, 0, 2, 2), 12},
		"window outside": {good, 2, 2, image.Rect(1, 1, 3, 2), 12},
		"empty window":   {good, 2, 2, image.Rect(1, 1, 1, 2), 12},
		"zero output":    {good, 0, 2, image.Rect(0, 0, 1, 1), 12},
		"short dst":      {good, 2, 2, image.Rect(0, 0, 2, 2), 11},
	}
	for name, c := range cases {
		if err := ResizeBilinearRGB(c.src, c.outW, c.outH, c.win, make([]byte, c.dst)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestGeometryRules(t *testing.T) {
	for _, c := range []struct{ w, h, size, ow, oh int }{
		{640, 480, 256, 341, 256}, // 341.33 truncated
		{500, 333, 366, 549, 366}, // 549.55 truncated, not rounded
		{300, 451, 256, 256, 384}, // portrait 384.85 -> 384
		{900, 900, 256, 256, 256},
		{1, 3, 2, 2, 6},
	} {
		w, h, err := ResizeShorterSide(c.w, c.h, c.size)
		if err != nil || w != c.ow || h != c.oh {
			t.Errorf("ResizeShorterSide(%d,%d,%d) = %d,%d,%v want %d,%d", c.w, c.h, c.size, w, h, err, c.ow, c.oh)
		}
	}
	for _, c := range []struct{ in, crop, want int }{
		{256, 224, 16}, {341, 224, 58}, {549, 320, 114}, {343, 224, 60}, {225, 224, 0}, {227, 224, 2}, {224, 224, 0},
	} {
		if got, err := CenterCropOffset(c.in, c.crop); err != nil || got != c.want {
			t.Errorf("CenterCropOffset(%d,%d) = %d,%v want %d", c.in, c.crop, got, err, c.want)
		}
	}
	if _, err := CenterCropOffset(100, 101); !errors.Is(err, ErrInvalid) {
		t.Errorf("crop larger than side: %v", err)
	}
	if _, _, err := ResizeShorterSide(0, 5, 256); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero width: %v", err)
	}
	if _, _, err := ResizeShorterSide(1, 1<<40, 1<<20); !errors.Is(err, ErrInvalid) {
		t.Errorf("overflowing long side: %v", err)
	}
}
