package main

import (
	"encoding/csv"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/demodata"
	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// writeTexturePhotos writes the three grayscale "photos" demodata cuts its images from:
// a periodic pattern plus noise, different per category.
func writeTexturePhotos(t *testing.T, dir string, size int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	for c, name := range demodata.Categories() {
		img := image.NewGray(image.Rect(0, 0, size, size))
		for y := range size {
			for x := range size {
				v := 128 + 60*math.Sin(float64(x)*(0.3+0.1*float64(c)))*math.Cos(float64(y)*0.2) + 30*(rng.Float64()-0.5)
				img.Pix[y*size+x] = uint8(min(max(v, 0), 255))
			}
		}
		f, err := os.Create(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// readCSV parses CSV text.
func readCSV(t *testing.T, text string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, text)
	}
	return rows
}

// decodePNG decodes a PNG file and returns its size.
func decodePNG(t *testing.T, path string) image.Point {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img.Bounds().Size()
}

// modelManifest is the part of a model manifest the test checks.
type modelManifest struct {
	Layers      []string `json:"layers"`
	ImageSize   int      `json:"imagesize"`
	BankRows    int      `json:"bank_rows"`
	Calibration struct {
		Method    string  `json:"method"`
		Threshold float32 `json:"threshold"`
		Count     int     `json:"count"`
	} `json:"calibration"`
}

// infoJSON runs `info --json` on the model.
func infoJSON(t *testing.T, model string) modelManifest {
	t.Helper()
	code, out, stderr := runCLI("info", "--json", model)
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, stderr)
	}
	var m modelManifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	return m
}

// TestEndToEnd runs fit → predict → eval → info on a tiny generated MVTec-layout data set
// with the golden MobileNetV2 backbone (input [-1, 1]: mean = std = 0.5).
func TestEndToEnd(t *testing.T) {
	onnx := golden.Path(t, "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx")
	tmp := t.TempDir()
	photos := filepath.Join(tmp, "photos")
	os.Mkdir(photos, 0o755)
	writeTexturePhotos(t, photos, 96)
	data := filepath.Join(tmp, "data")
	if err := demodata.Generate(demodata.Options{PhotoDir: photos, OutDir: data, Seed: 3, Size: 64,
		TrainPerCategory: 6, TestGoodPerCategory: 3, TestDefectPerType: 1}); err != nil {
		t.Fatal(err)
	}
	cat := filepath.Join(data, "brick")
	model := filepath.Join(tmp, "out", "brick.pcm")

	// fit: 4 training images, 2 held out for the quantile threshold.
	code, out, stderr := runCLI("fit", "--backbone", onnx, "--layers", "block_6_expand_relu,block_10_expand_relu",
		"--mean", "0.5", "--std", "0.5", "--resize", "224", "--imagesize", "224", "--calibrate-holdout", "2",
		"--quiet", "-o", model, filepath.Join(cat, "train", "good"))
	if code != 0 {
		t.Fatalf("fit: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "fitted 4 images") || !strings.Contains(out, "calibrated on 2 held-out images (quantile 0.99)") {
		t.Errorf("fit output:\n%s", out)
	}
	man := infoJSON(t, model)
	if man.Calibration.Method != "quantile" || man.Calibration.Count != 2 || !(man.Calibration.Threshold > 0) {
		t.Errorf("threshold after fit: %+v", man.Calibration)
	}
	if man.ImageSize != 224 || len(man.Layers) != 2 || man.BankRows <= 0 || man.BankRows > 4*28*28 {
		t.Errorf("manifest after fit: %+v", man)
	}
	fitThreshold := man.Calibration.Threshold

	// predict, raw scores: verdicts follow the stored threshold.
	inputs := []string{filepath.Join(cat, "test", "good"), filepath.Join(cat, "test", "scratch")}
	code, out, stderr = runCLI(append([]string{"predict", "-m", model, "--backbone", onnx, "--csv"}, inputs...)...)
	if code != 0 {
		t.Fatalf("predict: exit %d\n%s", code, stderr)
	}
	raw := map[string]float64{}
	rows := readCSV(t, out)
	if len(rows) != 1+4 || strings.Join(rows[0], ",") != "file,score,verdict" {
		t.Fatalf("predict CSV:\n%s", out)
	}
	for _, r := range rows[1:] {
		s, err := strconv.ParseFloat(r[1], 64)
		if err != nil || !(s > 0) {
			t.Errorf("raw score %q: %v", r[1], err)
		}
		if want := map[bool]string{true: "anomalous", false: "good"}[float32(s) >= fitThreshold]; r[2] != want {
			t.Errorf("%s: score %v, threshold %v, verdict %q", r[0], s, fitThreshold, r[2])
		}
		raw[r[0]] = s
	}

	// predict --normalized with heat maps and masks.
	predDir := filepath.Join(tmp, "pred")
	code, out, stderr = runCLI(append([]string{"predict", "-m", model, "--backbone", onnx, "--normalized", "--csv", "-o", predDir}, inputs...)...)
	if code != 0 {
		t.Fatalf("predict --normalized: exit %d\n%s", code, stderr)
	}
	for _, r := range readCSV(t, out)[1:] {
		s, _ := strconv.ParseFloat(r[1], 64)
		if !(s >= 0 && s <= 1) || (s >= 0.5) != (r[2] == "anomalous") {
			t.Errorf("%s: normalised score %v, verdict %q", r[0], s, r[2])
		}
		stem := strings.TrimSuffix(filepath.Base(r[0]), ".png")
		for _, suffix := range []string{"_overlay.png", "_mask.png"} {
			if sz := decodePNG(t, filepath.Join(predDir, stem+suffix)); sz != image.Pt(224, 224) {
				t.Errorf("%s%s is %v, want 224×224", stem, suffix, sz)
			}
		}
	}

	// eval, storing the F1 threshold.
	evalDir := filepath.Join(tmp, "eval")
	code, out, stderr = runCLI("eval", "-m", model, "--backbone", onnx, "-o", evalDir, "--store-threshold", "--quiet", cat)
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s%s", code, out, stderr)
	}
	for _, s := range []string{"image AUROC", "pixel AUROC", "AUPRO (FPR 0.3)", "F1 threshold", "model threshold", "stored the F1 threshold"} {
		if !strings.Contains(out, s) {
			t.Errorf("eval output lacks %q:\n%s", s, out)
		}
	}
	js, err := os.ReadFile(filepath.Join(evalDir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var met evalMetrics
	if err := json.Unmarshal(js, &met); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"image AUROC": met.ImageAUROC, "pixel AUROC": met.PixelAUROC, "AUPRO": met.AUPRO, "F1": met.F1} {
		if !(v >= 0 && v <= 1) {
			t.Errorf("%s = %v, outside [0, 1]", name, v)
		}
	}
	if met.Images != 7 || met.GoodImages != 3 || met.DefectImages != 4 || met.Category != "brick" {
		t.Errorf("metrics header %+v", met)
	}
	if met.Stored == nil || met.Stored.Threshold != fitThreshold || met.Stored.Method != "quantile" {
		t.Errorf("stored threshold evaluated: %+v", met.Stored)
	}

	// scores.csv: one row per test image; the image AUROC recomputed from it by brute
	// force (pairs of defective and good scores, ties half) equals the reported one; the
	// scores agree with predict's.
	b, err := os.ReadFile(filepath.Join(evalDir, "scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows = readCSV(t, string(b))
	if len(rows) != 1+7 {
		t.Fatalf("scores.csv has %d rows", len(rows))
	}
	var pos, neg []float64
	for _, r := range rows[1:] {
		s, _ := strconv.ParseFloat(r[3], 64)
		if r[2] == "1" {
			pos = append(pos, s)
		} else {
			neg = append(neg, s)
		}
		if p, ok := raw[filepath.Join(cat, filepath.FromSlash(r[0]))]; ok && math.Abs(p-s) > 1e-4*math.Abs(s) {
			t.Errorf("%s: eval score %v, predict score %v", r[0], s, p)
		}
		if pred := map[bool]string{true: "1", false: "0"}[float32(s) >= met.F1Threshold]; r[4] != pred {
			t.Errorf("%s: prediction %s at F1 threshold %v for score %v", r[0], r[4], met.F1Threshold, s)
		}
		stem := strings.TrimSuffix(filepath.Base(r[0]), ".png")
		if sz := decodePNG(t, filepath.Join(evalDir, "heatmaps", r[1], stem+".png")); sz != image.Pt(224, 224) {
			t.Errorf("heat map of %s is %v", r[0], sz)
		}
	}
	u := 0.0
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				u++
			case p == n:
				u += 0.5
			}
		}
	}
	if want := u / float64(len(pos)*len(neg)); math.Abs(met.ImageAUROC-want) > 1e-12 {
		t.Errorf("image AUROC %v, brute force from scores.csv %v", met.ImageAUROC, want)
	}
	if sz := decodePNG(t, filepath.Join(evalDir, "roc.png")); sz != image.Pt(rocSize, rocSize) {
		t.Errorf("roc.png is %v", sz)
	}
	decodePNG(t, filepath.Join(evalDir, "gallery.png"))

	// The F1 threshold is now the model's.
	man = infoJSON(t, model)
	if man.Calibration.Method != "f1" || man.Calibration.Threshold != met.F1Threshold || man.Calibration.Count != 7 {
		t.Errorf("threshold after eval --store-threshold: %+v, F1 threshold %v", man.Calibration, met.F1Threshold)
	}
	code, out, _ = runCLI("info", model)
	if code != 0 || !strings.Contains(out, "section MANI") || !strings.Contains(out, "section BANK") || !strings.Contains(out, `"libpatchcore-model"`) {
		t.Errorf("info: exit %d\n%s", code, out)
	}
}

// TestEndToEndUncalibrated covers a model without a threshold and the backbone lookup
// next to the model file.
func TestEndToEndUncalibrated(t *testing.T) {
	onnx := golden.Path(t, "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx")
	tmp := t.TempDir()
	photos := filepath.Join(tmp, "photos")
	os.Mkdir(photos, 0o755)
	writeTexturePhotos(t, photos, 96)
	data := filepath.Join(tmp, "data")
	if err := demodata.Generate(demodata.Options{PhotoDir: photos, OutDir: data, Seed: 4, Size: 64,
		TrainPerCategory: 2, TestGoodPerCategory: 1, TestDefectPerType: 1}); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(tmp, "m", "grass.pcm")
	code, out, stderr := runCLI("fit", "--backbone", onnx, "--layers", "block_6_expand_relu,block_10_expand_relu",
		"--mean", "0.5", "--std", "0.5", "--resize", "224", "--sampler", "identity", "-o", model,
		filepath.Join(data, "grass", "train", "good"))
	if code != 0 {
		t.Fatalf("fit: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(out, "calibrated on") || !strings.Contains(stderr, "fit: 2/2 images (100%)") {
		t.Errorf("fit without holdout:\nstdout %s\nstderr %s", out, stderr)
	}
	img := filepath.Join(data, "grass", "test", "good", "000.png")

	// The manifest names the backbone by its base name, next to the model: absent here.
	code, _, stderr = runCLI("predict", "-m", model, img)
	if code != 1 || !strings.Contains(stderr, "pass --backbone ONNX") {
		t.Errorf("predict without the backbone: exit %d, %s", code, stderr)
	}
	b, err := os.ReadFile(onnx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "m", filepath.Base(onnx)), b, 0o644); err != nil {
		t.Fatal(err)
	}

	code, _, stderr = runCLI("predict", "-m", model, "--normalized", img)
	if code != 1 || !strings.Contains(stderr, "has no threshold") {
		t.Errorf("--normalized without a threshold: exit %d, %s", code, stderr)
	}
	pred := filepath.Join(tmp, "pred")
	code, out, stderr = runCLI("predict", "-m", model, "-o", pred, img)
	if code != 0 || !strings.Contains(stderr, "heat maps are scaled per image") || !strings.Contains(stderr, "no masks written") {
		t.Fatalf("predict uncalibrated: exit %d\n%s%s", code, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SCORE") || !strings.Contains(lines[1], " - ") {
		t.Errorf("table without verdicts:\n%s", out)
	}
	decodePNG(t, filepath.Join(pred, "000_overlay.png"))
	if _, err := os.Stat(filepath.Join(pred, "000_mask.png")); !os.IsNotExist(err) {
		t.Errorf("a mask was written without a threshold: %v", err)
	}
	// --threshold supplies the verdict and the mask.
	code, out, stderr = runCLI("predict", "-m", model, "-o", pred, "--threshold", "0", img)
	if code != 0 || !strings.Contains(out, "anomalous") {
		t.Errorf("predict --threshold 0: exit %d\n%s%s", code, out, stderr)
	}
	decodePNG(t, filepath.Join(pred, "000_mask.png"))
}
