package main

import (
	"encoding/csv"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/core"
)

// writeGrayPNG writes a w×h grayscale PNG that is 255 inside rect and 0 elsewhere.
func writeGrayPNG(t *testing.T, path string, w, h int, rect image.Rectangle) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			img.Pix[y*w+x] = 255
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// checkMaskRect asserts that mask (size×size) is true exactly inside want.
func checkMaskRect(t *testing.T, name string, mask []bool, size int, want image.Rectangle) {
	t.Helper()
	bad := 0
	for y := range size {
		for x := range size {
			if mask[y*size+x] != image.Pt(x, y).In(want) {
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d pixels differ from the expected defect rectangle %v", name, bad, want)
	}
}

func TestLoadMaskAtCropResolution(t *testing.T) {
	dir := t.TempDir()
	tr := core.ImageTransform{Resize: 256, CropSize: 224, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}

	// 256 → 256 is the identity; the centre crop drops 16 pixels on each side.
	p1 := filepath.Join(dir, "m256.png")
	writeGrayPNG(t, p1, 256, 256, image.Rect(60, 100, 100, 150))
	m, err := loadMask(p1, tr, 256, 256)
	if err != nil {
		t.Fatal(err)
	}
	checkMaskRect(t, "256 px mask", m, 224, image.Rect(44, 84, 84, 134))

	// 512 → 256 halves the mask with Pillow's antialiased bilinear filter (support 2 input
	// pixels each side): output pixel j mixes inputs 2j−1 … 2j+2 with weights 1/8, 3/8,
	// 3/8, 1/8, so only j = 101 … 148 lie wholly inside the block [200, 300) and stay 255;
	// the border pixels (e.g. 255·7/8 ≈ 223) count as normal. Crop: −16.
	p2 := filepath.Join(dir, "m512.png")
	writeGrayPNG(t, p2, 512, 512, image.Rect(200, 200, 300, 300))
	m, err = loadMask(p2, tr, 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	checkMaskRect(t, "512 px mask", m, 224, image.Rect(85, 85, 133, 133))

	if _, err := loadMask(p2, tr, 256, 256); !errors.Is(err, core.ErrInvalidArgument) {
		t.Errorf("mask of another size than its image: %v, want ErrInvalidArgument", err)
	}
	if _, err := loadMask(filepath.Join(dir, "missing.png"), tr, 256, 256); err == nil {
		t.Error("missing mask accepted")
	}
}

func TestScanMVTec(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "widget")
	touch(t, "x",
		filepath.Join(dir, "test", "good", "001.png"), filepath.Join(dir, "test", "good", "000.png"),
		filepath.Join(dir, "test", "crack", "000.png"), filepath.Join(dir, "test", "crack", "notes.txt"),
		filepath.Join(dir, "test", "readme.txt"), filepath.Join(dir, "ground_truth", "crack", "000_mask.png"),
		filepath.Join(dir, "train", "good", "000.png"))
	got, err := scanMVTec(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []evalSample{
		{path: filepath.Join(dir, "test", "crack", "000.png"), rel: "test/crack/000.png", kind: "crack",
			mask: filepath.Join(dir, "ground_truth", "crack", "000_mask.png"), label: true},
		{path: filepath.Join(dir, "test", "good", "000.png"), rel: "test/good/000.png", kind: "good"},
		{path: filepath.Join(dir, "test", "good", "001.png"), rel: "test/good/001.png", kind: "good"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scanMVTec:\n got %+v\nwant %+v", got, want)
	}

	os.Remove(filepath.Join(dir, "ground_truth", "crack", "000_mask.png"))
	if _, err := scanMVTec(dir); err == nil || !strings.Contains(err.Error(), "ground-truth mask") {
		t.Errorf("missing mask: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, "test", "crack"))
	if _, err := scanMVTec(dir); !errors.Is(err, core.ErrInvalidArgument) || !strings.Contains(err.Error(), "0 defective") {
		t.Errorf("no defective images: %v", err)
	}
	if _, err := scanMVTec(filepath.Join(dir, "train")); !errors.Is(err, core.ErrInvalidArgument) {
		t.Errorf("folder without test/: %v", err)
	}
}

// evalFixture is six test images: three good (scores 1, 3, 2), three defective (5, 0.5, 4).
func evalFixture() ([]evalSample, []float32) {
	samples := []evalSample{
		{rel: "test/good/0.png", kind: "good"}, {rel: "test/good/1.png", kind: "good"}, {rel: "test/good/2.png", kind: "good"},
		{rel: "test/cut/0.png", kind: "cut", label: true}, {rel: "test/cut/1.png", kind: "cut", label: true},
		{rel: "test/hole/0.png", kind: "hole", label: true},
	}
	return samples, []float32{1, 3, 2, 5, 0.5, 4.25}
}

func TestScoresCSV(t *testing.T) {
	samples, scores := evalFixture()
	var b strings.Builder
	if err := writeScoresCSV(&b, samples, scores, 3); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"file", "type", "label", "score", "prediction_f1"},
		{"test/good/0.png", "good", "0", "1", "0"},
		{"test/good/1.png", "good", "0", "3", "1"}, // score == threshold is anomalous
		{"test/good/2.png", "good", "0", "2", "0"},
		{"test/cut/0.png", "cut", "1", "5", "1"},
		{"test/cut/1.png", "cut", "1", "0.5", "0"},
		{"test/hole/0.png", "hole", "1", "4.25", "1"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("CSV:\n got %q\nwant %q", rows, want)
	}
}

func TestEvalThreshold(t *testing.T) {
	samples, scores := evalFixture()
	labels := make([]bool, len(samples))
	for i, s := range samples {
		labels[i] = s.label
	}
	got := evalThreshold("quantile", 2.5, scores, labels)
	if *got != (thrEval{Method: "quantile", Threshold: 2.5, FalseAlarms: 1, Detected: 2}) {
		t.Errorf("evalThreshold = %+v", got)
	}
}

func TestWorstCasesAndGallery(t *testing.T) {
	samples, scores := evalFixture()
	entries := worstCases(samples, scores, 2.5, 2)
	var idx []int
	for _, en := range entries {
		idx = append(idx, en.index)
	}
	// Headings (-1), then the highest-scoring good images, the lowest-scoring defects.
	if !reflect.DeepEqual(idx, []int{-1, 1, 2, -1, 4, 5}) {
		t.Fatalf("gallery entries %v", idx)
	}
	for i, want := range map[int]string{1: "test/good/1.png  score 3  false alarm", 2: "test/good/2.png  score 2  ok",
		4: "test/cut/1.png  score 0.5  missed", 5: "test/hole/0.png  score 4.25  detected"} {
		if entries[i].caption != want {
			t.Errorf("caption %d = %q, want %q", i, entries[i].caption, want)
		}
	}

	const size = 4
	crops := make([][]uint8, len(samples))
	maps := make([][]float32, len(samples))
	masks := make([][]bool, len(samples))
	for i := range samples {
		crops[i] = make([]uint8, 3*size*size)
		for j := range crops[i] {
			crops[i][j] = uint8(10*i + j%3)
		}
		maps[i] = make([]float32, size*size)
		masks[i] = make([]bool, size*size)
		masks[i][5] = true
	}
	img := gallery(entries, crops, maps, masks, heatScale{lo: 0, hi: 1}, size)
	// Width: 8 + 3·4 + 2·4 + 8; height: 8 + 20 (column titles) + 2·(20 + 4) (headings)
	// + 4·(20 + 4 + 4) (captioned rows) + 8.
	if img.Bounds() != image.Rect(0, 0, 36, 196) {
		t.Fatalf("gallery bounds %v", img.Bounds())
	}
	// First image row (sample 1): tiles start at y = 8 + 20 + 24 + 20 = 72.
	if got := img.RGBAAt(8, 72); got.R != 10 || got.G != 11 || got.B != 12 {
		t.Errorf("image tile pixel %v, want the crop's (10, 11, 12)", got)
	}
	// Heat 0 leaves the overlay equal to the image.
	if got := img.RGBAAt(8+size+4, 72); got.R != 10 || got.G != 11 || got.B != 12 {
		t.Errorf("overlay tile pixel %v, want the crop's (10, 11, 12)", got)
	}
	// Mask tile: pixel 5 = (1, 1) is the defect.
	mx := 8 + 2*(size+4)
	if got := img.RGBAAt(mx+1, 73); got.R != 255 {
		t.Errorf("mask defect pixel %v, want white", got)
	}
	if got := img.RGBAAt(mx, 72); got.R != 0 {
		t.Errorf("mask normal pixel %v, want black", got)
	}
}
