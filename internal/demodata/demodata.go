// Package demodata builds a small anomaly-detection data set in the MVTec AD layout from
// real photographs, for demos, examples and end-to-end tests:
//
//	OUT/CATEGORY/train/good/000.png
//	OUT/CATEGORY/test/good/000.png
//	OUT/CATEGORY/test/TYPE/000.png
//	OUT/CATEGORY/ground_truth/TYPE/000_mask.png
//
// Each category is one 512×512 grayscale texture photo shipped by Debian's python3-skimage
// package (brick, grass, gravel; CC0, fetched by scripts/fetch-demo-photos.sh). Every image
// is a random Size×Size crop of its category's photo, randomly flipped, with a slight gain
// and offset jitter, stored as 8-bit RGB (gray replicated). Defect images add one synthetic
// defect to such a crop (see DefectTypes); masks are 8-bit gray, 255 = defect, 0 = normal,
// the size of the image.
//
// Mask rule: every defect is rendered as a per-pixel opacity a in [0, 1] and a target colour
// T, out = round(I + (T − I)·a). The mask holds exactly the pixels with a >= 0.5 whose value
// changed; the anti-aliased fringe with 0 < a < 0.5 is changed but left out of the mask
// (as the reference's fractional mask borders count as normal). All defect colours have
// distinct RGB channels, so on the gray photos every pixel with a >= 0.5 does change and the
// mask is the whole a >= 0.5 footprint. Each mask covers 0.3 %–5 % of the image.
//
// Output is deterministic: the same Options give byte-identical files.
package demodata

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Options configures Generate.
type Options struct {
	// PhotoDir holds brick.png, grass.png and gravel.png (scripts/fetch-demo-photos.sh
	// puts them in .deps/photos).
	PhotoDir string
	// OutDir receives the data set; it must not exist or be empty.
	OutDir string
	// Seed selects the crops and defects; equal seeds give byte-identical output.
	Seed uint64
	// TrainPerCategory is the number of train/good images per category (>= 1).
	TrainPerCategory int
	// TestGoodPerCategory is the number of test/good images per category (>= 1).
	TestGoodPerCategory int
	// TestDefectPerType is the number of images per defect type and category (>= 1).
	TestDefectPerType int
	// Size is the side of the square images in pixels (64 ... the photo size).
	Size int
}

// DefaultOptions returns the demo set's standard configuration: 30 train and 10 test good
// images per category, 8 images per defect type, 256×256 pixels, seed 1.
func DefaultOptions(photoDir, outDir string) Options {
	return Options{PhotoDir: photoDir, OutDir: outDir, Seed: 1, TrainPerCategory: 30,
		TestGoodPerCategory: 10, TestDefectPerType: 8, Size: 256}
}

// Categories returns the category names, each named after its photo (NAME.png).
func Categories() []string { return []string{"brick", "grass", "gravel"} }

// DefectTypes returns the defect types, in generation order:
//
//	scratch  a thin anti-aliased curved line, bright or dark, tapering at its ends
//	stain    a soft-edged, irregular, translucent brownish or coloured blob
//	paste    a rotated rectangle cut from another category's photo, with a slight colour cast
//	color    a small, soft-edged, saturated colour spot that keeps the texture's shading
func DefectTypes() []string { return []string{"scratch", "stain", "paste", "color"} }

const (
	minAreaFrac = 0.003
	maxAreaFrac = 0.05
	maxTries    = 200
	minSize     = 64
)

// photo is a decoded grayscale photograph.
type photo struct {
	w, h int
	pix  []uint8
}

// Generate writes the data set described by opts. It fails with errs.ErrInvalidArgument
// on bad options, errs.ErrIO when a photo is missing or a file cannot be written, and
// errs.ErrFormat when a photo cannot be decoded.
func Generate(opts Options) error {
	if opts.TrainPerCategory < 1 || opts.TestGoodPerCategory < 1 || opts.TestDefectPerType < 1 {
		return fmt.Errorf("%w: demodata: image counts must be >= 1 (train %d, test good %d, per defect type %d)",
			errs.ErrInvalidArgument, opts.TrainPerCategory, opts.TestGoodPerCategory, opts.TestDefectPerType)
	}
	if opts.OutDir == "" || opts.PhotoDir == "" {
		return fmt.Errorf("%w: demodata: PhotoDir and OutDir are required", errs.ErrInvalidArgument)
	}
	if opts.Size < minSize {
		return fmt.Errorf("%w: demodata: image size %d below %d", errs.ErrInvalidArgument, opts.Size, minSize)
	}
	if entries, err := os.ReadDir(opts.OutDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: demodata: output directory %s is not empty", errs.ErrInvalidArgument, opts.OutDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: demodata: %v", errs.ErrIO, err)
	}
	cats := Categories()
	photos := make([]photo, len(cats))
	for i, c := range cats {
		p, err := loadPhoto(filepath.Join(opts.PhotoDir, c+".png"))
		if err != nil {
			return err
		}
		if p.w < opts.Size || p.h < opts.Size {
			return fmt.Errorf("%w: demodata: image size %d exceeds photo %s (%d×%d)", errs.ErrInvalidArgument, opts.Size, c, p.w, p.h)
		}
		photos[i] = p
	}
	errs := make([]error, len(cats))
	var wg sync.WaitGroup
	for i := range cats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			donor := photos[(i+1)%len(photos)]
			errs[i] = generateCategory(opts, cats[i], uint64(i), photos[i], donor)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadPhoto decodes a PNG photo to 8-bit gray.
func loadPhoto(path string) (photo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return photo{}, fmt.Errorf("%w: demodata: %v (run scripts/fetch-demo-photos.sh)", errs.ErrIO, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return photo{}, fmt.Errorf("%w: demodata: %s: %v", errs.ErrFormat, path, err)
	}
	r := img.Bounds()
	p := photo{w: r.Dx(), h: r.Dy(), pix: make([]uint8, r.Dx()*r.Dy())}
	for y := 0; y < p.h; y++ {
		for x := 0; x < p.w; x++ {
			p.pix[y*p.w+x] = color.GrayModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y
		}
	}
	return p, nil
}

// generateCategory writes all images of one category. Its random stream depends only on
// the seed and the category index, so categories can be generated concurrently.
func generateCategory(opts Options, name string, index uint64, src, donor photo) error {
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15^index))
	dir := filepath.Join(opts.OutDir, name)
	n := opts.Size
	for i := 0; i < opts.TrainPerCategory; i++ {
		if err := writeRGB(filepath.Join(dir, "train", "good", fmt.Sprintf("%03d.png", i)), grayToRGB(crop(rng, src, n)), n); err != nil {
			return err
		}
	}
	for i := 0; i < opts.TestGoodPerCategory; i++ {
		if err := writeRGB(filepath.Join(dir, "test", "good", fmt.Sprintf("%03d.png", i)), grayToRGB(crop(rng, src, n)), n); err != nil {
			return err
		}
	}
	for _, kind := range DefectTypes() {
		for i := 0; i < opts.TestDefectPerType; i++ {
			base := crop(rng, src, n)
			rgb, mask, err := defectImage(rng, kind, base, n, donor)
			if err != nil {
				return fmt.Errorf("%s/%s/%03d: %w", name, kind, i, err)
			}
			if err := writeRGB(filepath.Join(dir, "test", kind, fmt.Sprintf("%03d.png", i)), rgb, n); err != nil {
				return err
			}
			if err := writeMask(filepath.Join(dir, "ground_truth", kind, fmt.Sprintf("%03d_mask.png", i)), mask, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// crop cuts a random n×n window of p, flips it at random and jitters its brightness
// (gain 0.92–1.08 about mid-gray, offset ±6).
func crop(rng *rand.Rand, p photo, n int) []uint8 {
	x0, y0 := rng.IntN(p.w-n+1), rng.IntN(p.h-n+1)
	flipX, flipY := rng.IntN(2) == 1, rng.IntN(2) == 1
	gain := 0.92 + 0.16*rng.Float64()
	offset := -6 + 12*rng.Float64()
	out := make([]uint8, n*n)
	for y := 0; y < n; y++ {
		sy := y
		if flipY {
			sy = n - 1 - y
		}
		for x := 0; x < n; x++ {
			sx := x
			if flipX {
				sx = n - 1 - x
			}
			v := float64(p.pix[(y0+sy)*p.w+x0+sx])
			out[y*n+x] = clampU8((v-128)*gain + 128 + offset)
		}
	}
	return out
}

// clampU8 rounds v (half away from zero) and clamps it to 0..255.
func clampU8(v float64) uint8 {
	return uint8(math.Round(min(max(v, 0), 255)))
}

// grayToRGB replicates a gray image into interleaved RGB.
func grayToRGB(g []uint8) []uint8 {
	out := make([]uint8, 3*len(g))
	for i, v := range g {
		out[3*i], out[3*i+1], out[3*i+2] = v, v, v
	}
	return out
}

// defectImage adds one defect of the given kind to the gray crop base, retrying with new
// random parameters until the mask covers minAreaFrac..maxAreaFrac of the image.
func defectImage(rng *rand.Rand, kind string, base []uint8, n int, donor photo) (rgb []uint8, mask []bool, err error) {
	for try := 0; try < maxTries; try++ {
		d := drawDefect(rng, kind, n, donor)
		rgb, mask = d.apply(base)
		area := 0
		for _, m := range mask {
			if m {
				area++
			}
		}
		if frac := float64(area) / float64(n*n); frac >= minAreaFrac && frac <= maxAreaFrac {
			return rgb, mask, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: demodata: no %s defect within %.1f%%–%.0f%% of the area after %d tries",
		errs.ErrInternal, kind, 100*minAreaFrac, 100*maxAreaFrac, maxTries)
}

// writeRGB writes interleaved 8-bit RGB as an opaque PNG (colour type RGB).
func writeRGB(path string, rgb []uint8, n int) error {
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for i := 0; i < n*n; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = rgb[3*i], rgb[3*i+1], rgb[3*i+2], 255
	}
	return writePNG(path, img)
}

// writeMask writes a 0/255 8-bit gray mask.
func writeMask(path string, mask []bool, n int) error {
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i, m := range mask {
		if m {
			img.Pix[i] = 255
		}
	}
	return writePNG(path, img)
}

func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return fmt.Errorf("%w: demodata: encoding %s: %v", errs.ErrInternal, path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%w: demodata: %v", errs.ErrIO, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("%w: demodata: %v", errs.ErrIO, err)
	}
	return nil
}
