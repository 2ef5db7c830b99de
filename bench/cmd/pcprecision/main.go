// Command pcprecision measures what a reduced-precision backbone (scripts/quantize_backbone.py)
// does to PatchCore's image scores. It fits one model per backbone on the same training
// images (same coreset fraction and seed), scores the same test images with each, and
// reports every variant's image AUROC and the relative difference of its image scores from
// the reference backbone's:
//
//	pcprecision -ref M.onnx -images DIR -n 60 -pct 0.1 M_int8.onnx M_fp16.onnx
//
// DIR is an MVTec-style category (train/good, test/<kind>/, "good" being the normal kind).
// Each backbone's .json sidecar gives its layers, mean, std and input size. -csv writes the
// per-image scores. -pct 1 keeps every training patch in the memory bank, which takes the
// coreset's sensitivity to small feature changes out of the comparison. The model is the
// product path (core.Model Fit and Predict) with the reference's defaults otherwise, as in
// pcbench fit.
package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/libpatchcore/libpatchcore/bench/internal/imagedir"
	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pcprecision:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pcprecision", flag.ExitOnError)
	ref := fs.String("ref", "", "reference (float32) ONNX backbone")
	images := fs.String("images", "", "MVTec-style category folder (train/good, test/*)")
	n := fs.Int("n", 60, "training images (the first n of train/good, sorted by name)")
	pct := fs.Float64("pct", 0.1, "coreset fraction; 1 keeps every patch (identity sampler), so that only the features differ")
	seed := fs.Uint64("seed", 0, "sampler seed")
	csvPath := fs.String("csv", "", "write the per-image scores to this CSV file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pcprecision -ref M.onnx -images DIR [-n 60] [-pct 0.1] [-csv F] VARIANT.onnx...")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if *ref == "" || *images == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("-ref, -images and at least one variant are required")
	}
	if *n <= 0 || !(*pct > 0 && *pct <= 1) {
		return fmt.Errorf("-n must be positive and -pct in (0, 1], got %d and %v", *n, *pct)
	}
	train, err := imagedir.List(filepath.Join(*images, "train", "good"))
	if err != nil {
		return err
	}
	if len(train) < *n {
		return fmt.Errorf("%s has %d training images, -n asks for %d", *images, len(train), *n)
	}
	train = train[:*n]
	test, labels, err := imagedir.TestSet(filepath.Join(*images, "test"))
	if err != nil {
		return err
	}
	if len(test) == 0 {
		return fmt.Errorf("no test images under %s", filepath.Join(*images, "test"))
	}
	imgs := make(core.ImageSlice, len(test))
	for i, p := range test {
		if imgs[i], err = core.LoadImage(p); err != nil {
			return err
		}
	}
	backbones := append([]string{*ref}, fs.Args()...)
	scores := make([][]float32, len(backbones))
	for i, b := range backbones {
		if scores[i], err = fitAndScore(b, train, imgs, *pct, *seed); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	fmt.Printf("%d training images, %.0f %% coreset, %d test images (%d anomalous)\n\n", *n, 100**pct, len(test), count(labels))
	fmt.Println("| backbone | image AUROC | score rel. diff. vs reference: mean | max |")
	fmt.Println("| --- | --- | --- | --- |")
	for i, b := range backbones {
		auroc, err := metrics.AUROC(scores[i], labels)
		if err != nil {
			return err
		}
		if i == 0 {
			fmt.Printf("| %s (reference) | %.4f | - | - |\n", filepath.Base(b), auroc)
			continue
		}
		mean, maxRel, err := relDiff(scores[i], scores[0])
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		fmt.Printf("| %s | %.4f | %.4f | %.4f |\n", filepath.Base(b), auroc, mean, maxRel)
	}
	if *csvPath != "" {
		return writeCSV(*csvPath, backbones, test, labels, scores)
	}
	return nil
}

// sidecar is the part of a backbone's JSON sidecar the model configuration needs.
type sidecar struct {
	Layers    []string   `json:"layers"`
	Mean      [3]float32 `json:"mean"`
	Std       [3]float32 `json:"std"`
	InputSize int        `json:"input_size"`
}

// fitAndScore fits a model with the backbone on train and returns the image scores of imgs.
func fitAndScore(backbone string, train []string, imgs core.ImageSlice, pct float64, seed uint64) ([]float32, error) {
	b, err := os.ReadFile(strings.TrimSuffix(backbone, filepath.Ext(backbone)) + ".json")
	if err != nil {
		return nil, fmt.Errorf("reading the sidecar: %w", err)
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	if len(sc.Layers) == 0 || sc.InputSize <= 0 {
		return nil, errors.New("the sidecar names no layers or no input size")
	}
	cfg := core.DefaultConfig()
	cfg.Backbone = core.BackboneFromFile(backbone)
	cfg.Layers, cfg.Mean, cfg.Std = sc.Layers, sc.Mean, sc.Std
	cfg.ImageSize, cfg.Resize = sc.InputSize, sc.InputSize*256/224
	cfg.Percentage, cfg.Seed = pct, seed
	if pct == 1 {
		cfg.Sampler = "identity"
	}
	model, err := core.NewModel(cfg)
	if err != nil {
		return nil, err
	}
	defer model.Close()
	if err := model.Fit(core.ImageFiles(train), nil); err != nil {
		return nil, err
	}
	p, err := model.Predict(imgs)
	if err != nil {
		return nil, err
	}
	return p.Scores, nil
}

// relDiff returns the mean and the maximum of |got_i - ref_i| / ref_i. Every reference
// score must be positive and finite, and the slices of equal length.
func relDiff(got, ref []float32) (mean, maxRel float64, err error) {
	if len(got) != len(ref) || len(ref) == 0 {
		return 0, 0, fmt.Errorf("%d scores against %d reference scores", len(got), len(ref))
	}
	for i := range ref {
		r, g := float64(ref[i]), float64(got[i])
		if !(r > 0) || math.IsInf(r, 0) || math.IsNaN(g) || math.IsInf(g, 0) {
			return 0, 0, fmt.Errorf("score %d: reference %v, variant %v", i, r, g)
		}
		d := math.Abs(g-r) / r
		mean += d
		maxRel = max(maxRel, d)
	}
	return mean / float64(len(ref)), maxRel, nil
}

func count(b []bool) int {
	c := 0
	for _, v := range b {
		if v {
			c++
		}
	}
	return c
}

// writeCSV writes one row per test image: path, label, then each backbone's score.
func writeCSV(path string, backbones, test []string, labels []bool, scores [][]float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	head := []string{"image", "anomalous"}
	for _, b := range backbones {
		head = append(head, filepath.Base(b))
	}
	w.Write(head)
	for i, p := range test {
		row := []string{p, strconv.FormatBool(labels[i])}
		for _, s := range scores {
			row = append(row, strconv.FormatFloat(float64(s[i]), 'g', 9, 32))
		}
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
