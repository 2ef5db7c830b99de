package demodata

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// writeNoisePhotos writes synthetic side×side gray photos (independent uniform noise in
// 30..225, so every window is unique and gain/offset jitter never clips) under the
// category names and returns them.
func writeNoisePhotos(t *testing.T, dir string, side int) map[string]photo {
	t.Helper()
	out := map[string]photo{}
	for i, c := range Categories() {
		rng := rand.New(rand.NewPCG(99, uint64(i)))
		img := image.NewGray(image.Rect(0, 0, side, side))
		for j := range img.Pix {
			img.Pix[j] = uint8(30 + rng.IntN(196))
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c+".png"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out[c] = photo{w: side, h: side, pix: slices.Clone(img.Pix)}
	}
	return out
}

// listFiles returns the relative paths of all regular files under dir, sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// expectedFiles is the MVTec AD layout Generate must produce, sorted.
func expectedFiles(o Options) []string {
	var want []string
	for _, c := range Categories() {
		for i := 0; i < o.TrainPerCategory; i++ {
			want = append(want, filepath.Join(c, "train", "good", fmt.Sprintf("%03d.png", i)))
		}
		for i := 0; i < o.TestGoodPerCategory; i++ {
			want = append(want, filepath.Join(c, "test", "good", fmt.Sprintf("%03d.png", i)))
		}
		for _, k := range DefectTypes() {
			for i := 0; i < o.TestDefectPerType; i++ {
				want = append(want, filepath.Join(c, "test", k, fmt.Sprintf("%03d.png", i)))
				want = append(want, filepath.Join(c, "ground_truth", k, fmt.Sprintf("%03d_mask.png", i)))
			}
		}
	}
	sort.Strings(want)
	return want
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// readRGB decodes an image written by Generate: opaque 8-bit RGB of n×n pixels.
func readRGB(t *testing.T, path string, n int) []uint8 {
	t.Helper()
	img, ok := readPNG(t, path).(*image.RGBA) // Go decodes PNG colour type RGB 8-bit to RGBA
	if !ok || img.Rect != image.Rect(0, 0, n, n) {
		t.Fatalf("%s: want %d×%d 8-bit RGB", path, n, n)
	}
	out := make([]uint8, 3*n*n)
	for i := 0; i < n*n; i++ {
		copy(out[3*i:3*i+3], img.Pix[4*i:4*i+3])
	}
	return out
}

// readMask decodes a mask written by Generate: 8-bit gray, values 0 or 255 only.
func readMask(t *testing.T, path string, n int) []bool {
	t.Helper()
	img, ok := readPNG(t, path).(*image.Gray)
	if !ok || img.Rect != image.Rect(0, 0, n, n) {
		t.Fatalf("%s: want %d×%d 8-bit gray", path, n, n)
	}
	out := make([]bool, n*n)
	for i, v := range img.Pix {
		if v != 0 && v != 255 {
			t.Fatalf("%s: mask value %d", path, v)
		}
		out[i] = v == 255
	}
	return out
}

func isGray(rgb []uint8, p int) bool { return rgb[3*p] == rgb[3*p+1] && rgb[3*p+1] == rgb[3*p+2] }

// dilate grows a mask by a square of the given radius.
func dilate(m []bool, n, r int) []bool {
	out := make([]bool, len(m))
	for p, on := range m {
		if !on {
			continue
		}
		y, x := p/n, p%n
		for yy := max(0, y-r); yy <= min(n-1, y+r); yy++ {
			for xx := max(0, x-r); xx <= min(n-1, x+r); xx++ {
				out[yy*n+xx] = true
			}
		}
	}
	return out
}

// matchCrop finds the window and flips of src that the image's gray values (over the
// pixels where use is true) are an affine function of, and returns that function applied
// to the whole window, rounded: the reconstructed defect-free crop.
func matchCrop(t *testing.T, gray []uint8, use []bool, n int, src photo) []float64 {
	t.Helper()
	bestR, var0 := -2.0, []float64(nil)
	win := make([]float64, n*n)
	for flip := 0; flip < 4; flip++ {
		for y0 := 0; y0+n <= src.h; y0++ {
			for x0 := 0; x0+n <= src.w; x0++ {
				var sv, sw, svv, sww, svw, cnt float64
				for y := 0; y < n; y++ {
					sy := y
					if flip&2 != 0 {
						sy = n - 1 - y
					}
					for x := 0; x < n; x++ {
						sx := x
						if flip&1 != 0 {
							sx = n - 1 - x
						}
						v := float64(src.pix[(y0+sy)*src.w+x0+sx])
						win[y*n+x] = v
						if use[y*n+x] {
							w := float64(gray[y*n+x])
							sv, sw, svv, sww, svw, cnt = sv+v, sw+w, svv+v*v, sww+w*w, svw+v*w, cnt+1
						}
					}
				}
				cov := svw - sv*sw/cnt
				r := cov / math.Sqrt((svv-sv*sv/cnt)*(sww-sw*sw/cnt))
				if r > bestR {
					bestR = r
					slope := cov / (svv - sv*sv/cnt)
					icpt := (sw - slope*sv) / cnt
					var0 = make([]float64, n*n)
					for i, v := range win {
						var0[i] = slope*v + icpt
					}
				}
			}
		}
	}
	if bestR < 0.999 {
		t.Fatalf("no window of the photo matches the image (best correlation %v)", bestR)
	}
	return var0
}

// checkDataset verifies the layout and the content rules of a generated data set. With
// photos (synthetic noise) it also reconstructs every image's source crop and checks
// that good images are pure crops and that defect images differ from their crop only in
// the mask and its soft fringe.
func checkDataset(t *testing.T, dir string, o Options, photos map[string]photo) {
	t.Helper()
	if got, want := listFiles(t, dir), expectedFiles(o); !slices.Equal(got, want) {
		t.Fatalf("layout:\n got %v\nwant %v", got, want)
	}
	n := o.Size
	fringe := max(3, int(math.Ceil(6*float64(n)/256))+2)
	for _, c := range Categories() {
		for _, sub := range []string{"train", "test"} {
			count := o.TrainPerCategory
			if sub == "test" {
				count = o.TestGoodPerCategory
			}
			for i := 0; i < count; i++ {
				rgb := readRGB(t, filepath.Join(dir, c, sub, "good", fmt.Sprintf("%03d.png", i)), n)
				gray := make([]uint8, n*n)
				for p := range gray {
					if !isGray(rgb, p) {
						t.Fatalf("%s/%s/good/%03d: pixel %d is not gray", c, sub, i, p)
					}
					gray[p] = rgb[3*p]
				}
				if photos == nil {
					continue
				}
				all := make([]bool, n*n)
				for p := range all {
					all[p] = true
				}
				base := matchCrop(t, gray, all, n, photos[c])
				for p, v := range base {
					if math.Abs(float64(gray[p])-v) > 1 {
						t.Fatalf("%s/%s/good/%03d: pixel %d = %d, crop %v", c, sub, i, p, gray[p], v)
					}
				}
			}
		}
		for _, k := range DefectTypes() {
			for i := 0; i < o.TestDefectPerType; i++ {
				name := fmt.Sprintf("%s/%s/%03d", c, k, i)
				rgb := readRGB(t, filepath.Join(dir, c, "test", k, fmt.Sprintf("%03d.png", i)), n)
				mask := readMask(t, filepath.Join(dir, c, "ground_truth", k, fmt.Sprintf("%03d_mask.png", i)), n)
				area := 0
				for _, m := range mask {
					if m {
						area++
					}
				}
				if frac := float64(area) / float64(n*n); frac < minAreaFrac || frac > maxAreaFrac {
					t.Errorf("%s: mask covers %.4f of the image", name, frac)
				}
				near := dilate(mask, n, fringe)
				for p := range mask {
					switch {
					case mask[p] && isGray(rgb, p):
						t.Fatalf("%s: masked pixel %d is unchanged gray", name, p)
					case !near[p] && !isGray(rgb, p):
						t.Fatalf("%s: pixel %d far from the mask is coloured", name, p)
					}
				}
				if photos == nil {
					continue
				}
				gray := make([]uint8, n*n)
				far := make([]bool, n*n)
				for p := range gray {
					gray[p], far[p] = rgb[3*p+1], !near[p]
				}
				base := matchCrop(t, gray, far, n, photos[c])
				for p, v := range base {
					if far[p] && math.Abs(float64(gray[p])-v) > 1 {
						t.Fatalf("%s: pixel %d outside the mask changed: %d, crop %v", name, p, gray[p], v)
					}
				}
			}
		}
	}
}

func TestGenerateSynthetic(t *testing.T) {
	photoDir := t.TempDir()
	photos := writeNoisePhotos(t, photoDir, 80)
	o := Options{PhotoDir: photoDir, OutDir: filepath.Join(t.TempDir(), "a"), Seed: 5,
		TrainPerCategory: 3, TestGoodPerCategory: 2, TestDefectPerType: 2, Size: 64}
	if err := Generate(o); err != nil {
		t.Fatal(err)
	}
	checkDataset(t, o.OutDir, o, photos)

	// Same seed: byte-identical files. Another seed: different files.
	o2 := o
	o2.OutDir = filepath.Join(t.TempDir(), "b")
	if err := Generate(o2); err != nil {
		t.Fatal(err)
	}
	o3 := o
	o3.OutDir, o3.Seed = filepath.Join(t.TempDir(), "c"), 6
	if err := Generate(o3); err != nil {
		t.Fatal(err)
	}
	differ := 0
	for _, f := range listFiles(t, o.OutDir) {
		a, _ := os.ReadFile(filepath.Join(o.OutDir, f))
		b, _ := os.ReadFile(filepath.Join(o2.OutDir, f))
		c, _ := os.ReadFile(filepath.Join(o3.OutDir, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with the same seed", f)
		}
		if !bytes.Equal(a, c) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("seed 6 produced the same files as seed 5")
	}
}

// TestDefectMaskRule checks the documented rule on many rendered defects: pixels with
// opacity 0 keep their value, and the mask is exactly the opacity >= 0.5 footprint, every
// pixel of which changed.
func TestDefectMaskRule(t *testing.T) {
	const n = 96
	rng := rand.New(rand.NewPCG(11, 12))
	donor := photo{w: 128, h: 128, pix: make([]uint8, 128*128)}
	for i := range donor.pix {
		donor.pix[i] = uint8(rng.IntN(256))
	}
	base := make([]uint8, n*n)
	for i := range base {
		base[i] = uint8(rng.IntN(256)) // full range: includes 0 and 255
	}
	for _, kind := range DefectTypes() {
		for trial := 0; trial < 25; trial++ {
			d := drawDefect(rng, kind, n, donor)
			rgb, mask := d.apply(base)
			footprint := 0
			for p, a := range d.alpha {
				changed := rgb[3*p] != base[p] || rgb[3*p+1] != base[p] || rgb[3*p+2] != base[p]
				if a == 0 && changed {
					t.Fatalf("%s: pixel %d with opacity 0 changed", kind, p)
				}
				if mask[p] != (a >= 0.5) {
					t.Fatalf("%s: pixel %d opacity %v but mask %v", kind, p, a, mask[p])
				}
				if mask[p] && !changed {
					t.Fatalf("%s: masked pixel %d unchanged", kind, p)
				}
				if a >= 0.5 {
					footprint++
				}
			}
			if footprint == 0 {
				t.Fatalf("%s: empty defect", kind)
			}
		}
	}
}

func TestGenerateRealPhotos(t *testing.T) {
	photoDir := filepath.Join("..", "..", ".deps", "photos")
	if _, err := os.Stat(filepath.Join(photoDir, "gravel.png")); err != nil {
		t.Skip("photos absent: run scripts/fetch-demo-photos.sh")
	}
	o := DefaultOptions(photoDir, filepath.Join(t.TempDir(), "demo"))
	o.TrainPerCategory, o.TestGoodPerCategory, o.TestDefectPerType = 2, 2, 4
	if err := Generate(o); err != nil {
		t.Fatal(err)
	}
	checkDataset(t, o.OutDir, o, nil)
}

func TestGenerateErrors(t *testing.T) {
	photoDir := t.TempDir()
	writeNoisePhotos(t, photoDir, 80)
	good := Options{PhotoDir: photoDir, OutDir: filepath.Join(t.TempDir(), "x"), Seed: 1,
		TrainPerCategory: 1, TestGoodPerCategory: 1, TestDefectPerType: 1, Size: 64}
	cases := []struct {
		name string
		edit func(*Options)
		want error
	}{
		{"no train", func(o *Options) { o.TrainPerCategory = 0 }, errs.ErrInvalidArgument},
		{"no test good", func(o *Options) { o.TestGoodPerCategory = -1 }, errs.ErrInvalidArgument},
		{"no defects", func(o *Options) { o.TestDefectPerType = 0 }, errs.ErrInvalidArgument},
		{"tiny", func(o *Options) { o.Size = 32 }, errs.ErrInvalidArgument},
		{"larger than photo", func(o *Options) { o.Size = 81 }, errs.ErrInvalidArgument},
		{"no out dir", func(o *Options) { o.OutDir = "" }, errs.ErrInvalidArgument},
		{"non-empty out dir", func(o *Options) { o.OutDir = photoDir }, errs.ErrInvalidArgument},
		{"missing photos", func(o *Options) { o.PhotoDir = t.TempDir() }, errs.ErrIO},
	}
	for _, c := range cases {
		o := good
		c.edit(&o)
		if err := Generate(o); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	bad := t.TempDir()
	writeNoisePhotos(t, bad, 80)
	if err := os.WriteFile(filepath.Join(bad, "grass.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := good
	o.PhotoDir = bad
	if err := Generate(o); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("corrupt photo: err = %v, want ErrFormat", err)
	}
	if err := Generate(good); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
