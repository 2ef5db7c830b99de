package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/libpatchcore/libpatchcore/core"
)

// predictChunk is the number of images decoded and scored together.
const predictChunk = 16

const predictSynopsis = "predict -m MODEL [-o DIR] [--normalized] [--threshold T] [--csv] [flags] IMAGE|DIR|@LIST..."

func cmdPredict(args []string, e env) error {
	var mf modelFlags
	var out, thrFlag string
	var normalized, asCSV bool
	fs := newFlagSet("predict", predictSynopsis, e)
	mf.register(fs)
	fs.StringVar(&out, "out", "", "folder for heat-map overlays (NAME_overlay.png) and masks (NAME_mask.png)")
	fs.StringVar(&out, "o", "", "shorthand for --out")
	fs.BoolVar(&normalized, "normalized", false, "print scores normalised to [0, 1] with the model's threshold at 0.5")
	fs.StringVar(&thrFlag, "threshold", "", "image/pixel threshold overriding the model's (raw score units)")
	fs.BoolVar(&asCSV, "csv", false, "print CSV (file,score,verdict) instead of a table")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("predict: no images given")
	}
	var override float32
	if thrFlag != "" {
		v, err := strconv.ParseFloat(thrFlag, 32)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return usageErrorf("predict: --threshold %q is not a finite number", thrFlag)
		}
		if normalized {
			return usageErrorf("predict: --normalized uses the model's threshold; it cannot be combined with --threshold")
		}
		override = float32(v)
	}
	paths, err := listImages(pos)
	if err != nil {
		return err
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()
	cal := m.Calibration()
	if normalized && !cal.Calibrated() {
		return fmt.Errorf("%w: --normalized: model %s has no threshold (fit with --calibrate-holdout or run eval --store-threshold)", core.ErrState, mf.path)
	}
	threshold, haveThreshold := cal.Threshold, cal.Calibrated()
	if thrFlag != "" {
		threshold, haveThreshold = override, true
	}
	if out != "" && !cal.Calibrated() {
		fmt.Fprintln(e.stderr, "patchcore: warning: the model is not calibrated, heat maps are scaled per image")
		if !haveThreshold {
			fmt.Fprintln(e.stderr, "patchcore: warning: no threshold (model or --threshold): no masks written")
		}
	}

	cfg := m.Config()
	size := cfg.ImageSize
	tr := core.ImageTransform{Resize: cfg.Resize, CropSize: size, Mean: cfg.Mean, Std: cfg.Std}
	names := uniqueStems(paths)
	tab := newScoreTable(e.stdout, asCSV, normalized)
	anomalous := 0
	for start := 0; start < len(paths); start += predictChunk {
		chunk := paths[start:min(start+predictChunk, len(paths))]
		imgs := make(core.ImageSlice, len(chunk))
		for i, p := range chunk {
			if imgs[i], err = core.LoadImage(p); err != nil {
				return err
			}
		}
		pred, err := m.Predict(imgs)
		if err != nil {
			return err
		}
		shown := pred.Scores
		if normalized {
			if shown, err = m.NormalizeScores(pred.Scores); err != nil {
				return err
			}
		}
		for i, p := range chunk {
			verdict := "-"
			if haveThreshold {
				verdict = "good"
				if pred.Scores[i] >= threshold {
					verdict = "anomalous"
					anomalous++
				}
			}
			if err := tab.row(p, shown[i], verdict); err != nil {
				return err
			}
			if out == "" {
				continue
			}
			amap := pred.Maps.Data[i*size*size : (i+1)*size*size]
			if err := writePrediction(filepath.Join(out, names[start+i]), imgs[i], tr, m, amap, threshold, haveThreshold); err != nil {
				return err
			}
		}
		if err := tab.flush(); err != nil {
			return err
		}
	}
	if haveThreshold {
		fmt.Fprintf(e.stderr, "%d of %d images anomalous (threshold %.6g)\n", anomalous, len(paths), threshold)
	}
	return nil
}

// writePrediction writes PREFIX_overlay.png (the heat map over the cropped image: the
// model's normalised scale when it is calibrated, the image's own range otherwise) and,
// with a threshold, PREFIX_mask.png (map >= threshold).
func writePrediction(prefix string, img core.Image, tr core.ImageTransform, m *core.Model, amap []float32, threshold float32, haveThreshold bool) error {
	crop, err := tr.ApplyU8(img)
	if err != nil {
		return err
	}
	var heat []float32
	if m.Calibration().Calibrated() {
		if heat, err = m.NormalizeScores(amap); err != nil {
			return err
		}
	} else {
		heat = medianMaxScale(amap).apply(amap)
	}
	size := tr.CropSize
	if err := writePNG(prefix+"_overlay.png", overlay(crop, heat, size)); err != nil {
		return err
	}
	if !haveThreshold {
		return nil
	}
	mask := core.Segment(core.Tensor{Shape: []int{1, size, size}, Data: amap}, threshold)
	return writePNG(prefix+"_mask.png", maskImage(mask, size))
}

// uniqueStems returns each path's file name without extension, with "_2", "_3", ...
// appended to repeated names so that every output file name is distinct.
func uniqueStems(paths []string) []string {
	seen := map[string]int{}
	out := make([]string, len(paths))
	for i, p := range paths {
		base := filepath.Base(p)
		stem := strings.TrimSuffix(base, filepath.Ext(base))
		name := stem
		for seen[name] > 0 {
			seen[stem]++
			name = fmt.Sprintf("%s_%d", stem, seen[stem])
		}
		seen[name]++
		out[i] = name
	}
	return out
}

// scoreTable prints predict's results as an aligned table or as CSV.
type scoreTable struct {
	tw  *tabwriter.Writer
	csv *csv.Writer
}

func newScoreTable(w io.Writer, asCSV, normalized bool) *scoreTable {
	col := "score"
	if normalized {
		col = "normalized_score"
	}
	if asCSV {
		t := &scoreTable{csv: csv.NewWriter(w)}
		t.csv.Write([]string{"file", col, "verdict"})
		return t
	}
	t := &scoreTable{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	fmt.Fprintf(t.tw, "%s\tVERDICT\tFILE\n", strings.ToUpper(col))
	return t
}

// row adds one image.
func (t *scoreTable) row(path string, score float32, verdict string) error {
	s := strconv.FormatFloat(float64(score), 'g', 7, 32)
	if t.csv != nil {
		return t.csv.Write([]string{path, s, verdict})
	}
	_, err := fmt.Fprintf(t.tw, "%s\t%s\t%s\n", s, verdict, path)
	return err
}

// flush writes buffered output.
func (t *scoreTable) flush() error {
	if t.csv != nil {
		t.csv.Flush()
		return t.csv.Error()
	}
	return t.tw.Flush()
}
