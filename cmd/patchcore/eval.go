package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

// goodType is the MVTec AD folder name of normal test images.
const goodType = "good"

// evalSample is one test image of an MVTec AD layout folder.
type evalSample struct {
	path  string // image file
	rel   string // path relative to the category folder, slash-separated
	kind  string // defect type, goodType for normal images
	mask  string // ground-truth mask file; empty for normal images
	label bool   // true = defective
}

// scanMVTec lists the test images of an MVTec AD category folder: every image in
// DIR/test/<type>/ (types and files sorted by name), with the mask
// DIR/ground_truth/<type>/<name>_mask.png for every type other than "good". It fails
// when a mask is missing or when the test set lacks normal or defective images.
func scanMVTec(dir string) ([]evalSample, error) {
	testDir := filepath.Join(dir, "test")
	entries, err := os.ReadDir(testDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an MVTec AD category folder: %v", core.ErrInvalidArgument, dir, err)
	}
	var out []evalSample
	good, bad := 0, 0
	for _, en := range entries {
		if !en.IsDir() {
			continue
		}
		kind := en.Name()
		files, err := imagesInDir(filepath.Join(testDir, kind))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name := filepath.Base(f)
			s := evalSample{path: f, rel: "test/" + kind + "/" + name, kind: kind, label: kind != goodType}
			if s.label {
				stem := strings.TrimSuffix(name, filepath.Ext(name))
				s.mask = filepath.Join(dir, "ground_truth", kind, stem+"_mask.png")
				if _, err := os.Stat(s.mask); err != nil {
					return nil, fmt.Errorf("%w: ground-truth mask of %s: %v", core.ErrInvalidArgument, f, err)
				}
				bad++
			} else {
				good++
			}
			out = append(out, s)
		}
	}
	if good == 0 || bad == 0 {
		return nil, fmt.Errorf("%w: %s: the test set needs good and defective images, found %d good and %d defective", core.ErrInvalidArgument, testDir, good, bad)
	}
	return out, nil
}

// loadMask reads a ground-truth mask, checks that it has the image's size, applies the
// image transform's resize and centre crop (bilinear, in uint8, like the images) and
// returns the defect flags at crop resolution: true where the result is 255.
func loadMask(path string, tr core.ImageTransform, width, height int) ([]bool, error) {
	img, err := core.LoadImage(path)
	if err != nil {
		return nil, err
	}
	if img.Width != width || img.Height != height {
		return nil, fmt.Errorf("%w: mask %s is %d×%d, its image is %d×%d", core.ErrInvalidArgument, path, img.Width, img.Height, width, height)
	}
	crop, err := tr.ApplyU8(img)
	if err != nil {
		return nil, err
	}
	gray := make([]uint8, len(crop)/3)
	for i := range gray {
		gray[i] = crop[3*i] // grayscale masks decode to R = G = B
	}
	return metrics.BinarizeU8Mask(gray), nil
}

// evalMetrics is what eval reports (and writes to metrics.json).
type evalMetrics struct {
	Category      string   `json:"category"`
	Model         string   `json:"model"`
	Images        int      `json:"images"`
	GoodImages    int      `json:"good_images"`
	DefectImages  int      `json:"defect_images"`
	ImageAUROC    float64  `json:"image_auroc"`
	PixelAUROC    float64  `json:"pixel_auroc"`
	AUPRO         float64  `json:"aupro"`
	AUPROFPRLimit float64  `json:"aupro_fpr_limit"`
	F1Threshold   float32  `json:"f1_threshold"`
	F1            float64  `json:"f1"`
	Precision     float64  `json:"precision"`
	Recall        float64  `json:"recall"`
	Stored        *thrEval `json:"stored_threshold,omitempty"`
	Seconds       float64  `json:"seconds"`
}

// thrEval is the error rates of one threshold on the test set.
type thrEval struct {
	Method      string  `json:"method"`
	Threshold   float32 `json:"threshold"`
	FalseAlarms int     `json:"false_alarms"` // good images with score >= threshold
	Detected    int     `json:"detected"`     // defective images with score >= threshold
}

// evalThreshold counts the images flagged by score >= threshold.
func evalThreshold(method string, threshold float32, scores []float32, labels []bool) *thrEval {
	t := &thrEval{Method: method, Threshold: threshold}
	for i, s := range scores {
		if s >= threshold {
			if labels[i] {
				t.Detected++
			} else {
				t.FalseAlarms++
			}
		}
	}
	return t
}

const evalSynopsis = "eval -m MODEL [-o DIR] [--store-threshold] [--gallery N] [flags] CATEGORY_DIR"

func cmdEval(args []string, e env) error {
	var mf modelFlags
	var out string
	var store, quiet, heatmaps bool
	var galleryN int
	var fprLimit float64
	fs := newFlagSet("eval", evalSynopsis, e)
	mf.register(fs)
	fs.StringVar(&out, "out", "", "folder for scores.csv, metrics.json, roc.png, gallery.png and heatmaps/")
	fs.StringVar(&out, "o", "", "shorthand for --out")
	fs.BoolVar(&store, "store-threshold", false, "store the F1-optimal threshold (and the test score range) in the model file")
	fs.IntVar(&galleryN, "gallery", 4, "worst cases per class in gallery.png (0: no gallery)")
	fs.BoolVar(&heatmaps, "heatmaps", true, "write a heat-map overlay per test image to OUT/heatmaps/<type>/")
	fs.Float64Var(&fprLimit, "fpr-limit", metrics.DefaultFPRLimit, "false positive rate up to which AUPRO integrates")
	fs.BoolVar(&quiet, "quiet", false, "no progress output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("eval: want exactly one category folder, got %d arguments", len(pos))
	}
	if galleryN < 0 {
		return usageErrorf("eval: --gallery %d is negative", galleryN)
	}
	if !(fprLimit > 0 && fprLimit <= 1) {
		return usageErrorf("eval: --fpr-limit %v outside (0, 1]", fprLimit)
	}
	dir := pos[0]
	samples, err := scanMVTec(dir)
	if err != nil {
		return err
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()

	start := time.Now()
	cfg := m.Config()
	size := cfg.ImageSize
	tr := core.ImageTransform{Resize: cfg.Resize, CropSize: size, Mean: cfg.Mean, Std: cfg.Std}
	n := len(samples)
	scores := make([]float32, 0, n)
	maps := make([][]float32, 0, n)
	masks := make([][]bool, 0, n)
	labels := make([]bool, n)
	var crops [][]uint8
	var prog *progress
	if !quiet {
		prog = newProgress(e.stderr, "eval", n, e.bar)
	}
	for lo := 0; lo < n; lo += predictChunk {
		chunk := samples[lo:min(lo+predictChunk, n)]
		imgs := make(core.ImageSlice, len(chunk))
		for i, s := range chunk {
			labels[lo+i] = s.label
			if imgs[i], err = core.LoadImage(s.path); err != nil {
				return err
			}
			var mask []bool
			if s.label {
				if mask, err = loadMask(s.mask, tr, imgs[i].Width, imgs[i].Height); err != nil {
					return err
				}
			} else {
				mask = make([]bool, size*size) // good images: no defect pixel
			}
			masks = append(masks, mask)
			if out != "" {
				crop, err := tr.ApplyU8(imgs[i])
				if err != nil {
					return err
				}
				crops = append(crops, crop)
			}
		}
		pred, err := m.Predict(imgs)
		if err != nil {
			return err
		}
		scores = append(scores, pred.Scores...)
		for i := range chunk {
			maps = append(maps, pred.Maps.Data[i*size*size:(i+1)*size*size])
		}
		prog.update(lo + len(chunk))
	}

	res := evalMetrics{Category: filepath.Base(filepath.Clean(dir)), Model: mf.path, Images: n, AUPROFPRLimit: fprLimit}
	for _, l := range labels {
		if l {
			res.DefectImages++
		} else {
			res.GoodImages++
		}
	}
	if res.ImageAUROC, err = metrics.AUROC(scores, labels); err != nil {
		return err
	}
	roc, err := metrics.ROCCurve(scores, labels)
	if err != nil {
		return err
	}
	if res.PixelAUROC, err = metrics.PixelAUROC(maps, masks); err != nil {
		return fmt.Errorf("pixel AUROC: %w", err)
	}
	if res.AUPRO, err = metrics.AUPRO(maps, masks, size, size, fprLimit); err != nil {
		return fmt.Errorf("AUPRO: %w", err)
	}
	f1, err := metrics.F1Threshold(scores, labels)
	if err != nil {
		return err
	}
	res.F1Threshold, res.F1, res.Precision, res.Recall = f1.Threshold, f1.F1, f1.Precision, f1.Recall
	if c := m.Calibration(); c.Calibrated() {
		res.Stored = evalThreshold(c.Method, c.Threshold, scores, labels)
	}
	res.Seconds = time.Since(start).Seconds()
	printEval(e.stdout, res)

	if store {
		c, err := m.CalibrateScores(scores, labels, core.CalibrateF1, 0)
		if err != nil {
			return err
		}
		if err := m.Save(mf.path); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "stored the F1 threshold %.6g in %s\n", c.Threshold, mf.path)
	}
	if out == "" {
		return nil
	}
	if err := writeEvalFiles(out, res, samples, scores, maps, masks, crops, roc, size, galleryN, heatmaps); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join(evalOutputs(out, galleryN, heatmaps), ", "))
	return nil
}

// printEval prints the metrics table of one category.
func printEval(w io.Writer, r evalMetrics) {
	fmt.Fprintf(w, "category %s: %d test images (%d good, %d defective), %.1fs\n", r.Category, r.Images, r.GoodImages, r.DefectImages, r.Seconds)
	fmt.Fprintf(w, "  image AUROC       %.4f\n", r.ImageAUROC)
	fmt.Fprintf(w, "  pixel AUROC       %.4f\n", r.PixelAUROC)
	fmt.Fprintf(w, "  AUPRO (FPR %.2g)   %.4f\n", r.AUPROFPRLimit, r.AUPRO)
	fmt.Fprintf(w, "  F1 threshold      %.6g (F1 %.3f, precision %.3f, recall %.3f)\n", r.F1Threshold, r.F1, r.Precision, r.Recall)
	if s := r.Stored; s != nil {
		fmt.Fprintf(w, "  model threshold   %.6g (%s): %d/%d good images flagged, %d/%d defective detected\n",
			s.Threshold, s.Method, s.FalseAlarms, r.GoodImages, s.Detected, r.DefectImages)
	}
}

// evalOutputs lists the files writeEvalFiles writes.
func evalOutputs(out string, galleryN int, heatmaps bool) []string {
	files := []string{"scores.csv", "metrics.json", "roc.png"}
	if galleryN > 0 {
		files = append(files, "gallery.png")
	}
	if heatmaps {
		files = append(files, "heatmaps/")
	}
	for i, f := range files {
		files[i] = filepath.Join(out, f)
	}
	return files
}

// writeEvalFiles writes eval's output folder.
func writeEvalFiles(out string, res evalMetrics, samples []evalSample, scores []float32, maps [][]float32, masks [][]bool,
	crops [][]uint8, roc metrics.ROC, size, galleryN int, heatmaps bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("%w: %v", core.ErrIO, err)
	}
	var csvBuf strings.Builder
	if err := writeScoresCSV(&csvBuf, samples, scores, res.F1Threshold); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: metrics.json: %v", core.ErrInternal, err)
	}
	for name, data := range map[string][]byte{"scores.csv": []byte(csvBuf.String()), "metrics.json": append(js, '\n')} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return fmt.Errorf("%w: %v", core.ErrIO, err)
		}
	}
	plot, err := rocPlot(roc, res.ImageAUROC, "ROC "+res.Category)
	if err != nil {
		return err
	}
	if err := writePNG(filepath.Join(out, "roc.png"), plot); err != nil {
		return err
	}
	scale := medianMaxScale(maps...)
	if galleryN > 0 {
		g := worstCases(samples, scores, res.F1Threshold, galleryN)
		if err := writePNG(filepath.Join(out, "gallery.png"), gallery(g, crops, maps, masks, scale, size)); err != nil {
			return err
		}
	}
	if heatmaps {
		hm := filepath.Join(out, "heatmaps")
		if err := os.RemoveAll(hm); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %v", core.ErrIO, err)
		}
		for i, s := range samples {
			stem := strings.TrimSuffix(filepath.Base(s.path), filepath.Ext(s.path))
			if err := writePNG(filepath.Join(hm, s.kind, stem+".png"), overlay(crops[i], scale.apply(maps[i]), size)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeScoresCSV writes one row per test image: file (relative to the category folder),
// defect type, label (1 = defective), image score and the prediction at the F1 threshold
// (1 = score >= threshold).
func writeScoresCSV(w io.Writer, samples []evalSample, scores []float32, f1Threshold float32) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"file", "type", "label", "score", "prediction_f1"})
	for i, s := range samples {
		label, pred := "0", "0"
		if s.label {
			label = "1"
		}
		if scores[i] >= f1Threshold {
			pred = "1"
		}
		cw.Write([]string{s.rel, s.kind, label, strconv.FormatFloat(float64(scores[i]), 'g', -1, 32), pred})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("%w: scores CSV: %v", core.ErrIO, err)
	}
	return nil
}

// galleryEntry is a heading (index < 0) or one test image of the gallery.
type galleryEntry struct {
	heading string
	index   int
	caption string
}

// worstCases picks the n highest-scoring good images (false alarms first) and the n
// lowest-scoring defective images (misses first), with captions against the threshold.
func worstCases(samples []evalSample, scores []float32, threshold float32, n int) []galleryEntry {
	var good, bad []int
	for i, s := range samples {
		if s.label {
			bad = append(bad, i)
		} else {
			good = append(good, i)
		}
	}
	slices.SortStableFunc(good, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	slices.SortStableFunc(bad, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var out []galleryEntry
	add := func(heading string, idx []int, hit, miss string) {
		out = append(out, galleryEntry{heading: heading, index: -1})
		for _, i := range idx[:min(n, len(idx))] {
			verdict := miss
			if scores[i] >= threshold {
				verdict = hit
			}
			out = append(out, galleryEntry{index: i, caption: fmt.Sprintf("%s  score %.4g  %s", samples[i].rel, scores[i], verdict)})
		}
	}
	add("highest-scoring good images", good, "false alarm", "ok")
	add("lowest-scoring defective images", bad, "detected", "missed")
	return out
}

// Gallery layout, in pixels.
const (
	galleryPad     = 8
	galleryGap     = 4
	galleryScale   = 2
	galleryCaption = 7*galleryScale + 6
)

// gallery renders the entries: headings, and per image a caption over three tiles
// (image | heat-map overlay | ground-truth mask), with column titles at the top.
func gallery(entries []galleryEntry, crops [][]uint8, maps [][]float32, masks [][]bool, scale heatScale, size int) *image.RGBA {
	width := 2*galleryPad + 3*size + 2*galleryGap
	height := galleryPad + galleryCaption
	for _, en := range entries {
		if en.index < 0 {
			height += galleryCaption + galleryGap
		} else {
			height += galleryCaption + size + galleryGap
		}
	}
	height += galleryPad
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fillRect(img, img.Bounds(), colWhite)
	for c, title := range []string{"image", "anomaly map", "ground truth"} {
		drawText(img, galleryPad+c*(size+galleryGap), galleryPad, title, colBlack, galleryScale)
	}
	y := galleryPad + galleryCaption
	maxChars := (width - 2*galleryPad) / ((glyphW + glyphGap) * galleryScale)
	for _, en := range entries {
		if en.index < 0 {
			fillRect(img, image.Rect(galleryPad, y+galleryCaption-3, width-galleryPad, y+galleryCaption-2), colBlack)
			drawText(img, galleryPad, y+2, en.heading, colHighlight, galleryScale)
			y += galleryCaption + galleryGap
			continue
		}
		caption := en.caption
		if r := []rune(caption); len(r) > maxChars {
			caption = string(r[:maxChars])
		}
		drawText(img, galleryPad, y+2, caption, colBlack, galleryScale)
		y += galleryCaption
		i := en.index
		tiles := []image.Image{rgbImage(crops[i], size), overlay(crops[i], scale.apply(maps[i]), size), maskImage(masks[i], size)}
		for c, t := range tiles {
			x := galleryPad + c*(size+galleryGap)
			draw.Draw(img, image.Rect(x, y, x+size, y+size), t, image.Point{}, draw.Src)
		}
		y += size + galleryGap
	}
	return img
}
