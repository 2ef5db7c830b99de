package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

// fitResult is the product path: core.Model.Fit on the training files, then Predict.
type fitResult struct {
	Kind        string   `json:"kind"` // "fit"
	Label       string   `json:"label,omitempty"`
	Machine     machine  `json:"machine"`
	Backbone    string   `json:"backbone"`
	BackboneSHA string   `json:"backbone_sha256"`
	Layers      []string `json:"layers"`
	Images      int      `json:"images"`
	Distinct    int      `json:"distinct_images"`
	Percentage  float64  `json:"percentage"`
	NN          string   `json:"nn"`
	BankRows    int      `json:"bank_rows"`
	Dim         int      `json:"dim"`
	Grid        [2]int   `json:"grid"`

	FitSeconds   float64 `json:"fit_s"`
	FitCPU       float64 `json:"fit_cpu_s"`        // CPU time of Fit, all threads
	FitRSSMiB    float64 `json:"fit_peak_rss_mib"` // VmHWM right after Fit
	PeakRSSMiB   float64 `json:"peak_rss_mib"`     // VmHWM at the end (after predicting)
	TestImages   int     `json:"test_images"`
	Batch1MeanMs float64 `json:"predict_b1_mean_ms"`
	Batch1MedMs  float64 `json:"predict_b1_median_ms"`
	Batch1P90Ms  float64 `json:"predict_b1_p90_ms"`
	Batch8IPS    float64 `json:"predict_b8_images_per_s"`
	Batch8MsImg  float64 `json:"predict_b8_ms_per_image"`
	AUROC        float64 `json:"image_auroc,omitempty"`
	Runs         int     `json:"-"` // measurements merged into this one by the report
}

func runFit(args []string) error {
	fs := flag.NewFlagSet("fit", flag.ExitOnError)
	var f setupFlags
	f.declare(fs)
	nn := fs.String("nn", "exact", "search: exact or ivfpq")
	maxTest := fs.Int("max-test", 48, "at most this many test images are predicted (the whole set when smaller)")
	reps8 := fs.Int("reps8", 4, "batches of 8 timed for the throughput")
	fs.Parse(args)
	s, err := f.parse()
	if err != nil {
		return err
	}
	r := fitResult{Kind: "fit", Label: s.label, Machine: newMachine(), Backbone: s.backbone, BackboneSHA: s.sha, Layers: s.layers,
		Images: len(s.train), Distinct: s.distinct, Percentage: s.pct, NN: *nn}
	model, err := core.NewModel(s.config(*nn))
	if err != nil {
		return err
	}
	defer model.Close()
	start, cpu := time.Now(), cpuSeconds()
	if err := model.Fit(core.ImageFiles(s.train), nil); err != nil {
		return err
	}
	r.FitSeconds, r.FitCPU = time.Since(start).Seconds(), cpuSeconds()-cpu
	r.FitRSSMiB = peakRSSMiB()
	r.BankRows, r.Dim = model.BankSize()
	r.Grid[0], r.Grid[1] = model.Grid()
	fmt.Fprintf(os.Stderr, "pcbench fit: %d images, %.0f%%: fit %.2fs, bank %d×%d, peak RSS %.0f MiB\n",
		len(s.train), 100*s.pct, r.FitSeconds, r.BankRows, r.Dim, r.FitRSSMiB)

	// Predict on in-memory test images (the training images when there is no test set).
	paths, labels := s.testSet(*maxTest)
	imgs, err := loadImages(paths)
	if err != nil {
		return err
	}
	r.TestImages = len(imgs)
	if _, err := model.Predict(imgs[:1]); err != nil { // warm-up
		return err
	}
	lat := make([]float64, len(imgs))
	scores := make([]float32, len(imgs))
	for i := range imgs {
		t := time.Now()
		p, err := model.Predict(imgs[i : i+1])
		if err != nil {
			return err
		}
		lat[i] = ms(time.Since(t))
		scores[i] = p.Scores[0]
	}
	r.Batch1MeanMs, r.Batch1MedMs, r.Batch1P90Ms = meanMedianP90(lat)
	batch := make(core.ImageSlice, 8)
	for i := range batch {
		batch[i] = imgs[i%len(imgs)]
	}
	t := time.Now()
	for i := 0; i < *reps8; i++ {
		if _, err := model.Predict(batch); err != nil {
			return err
		}
	}
	sec := time.Since(t).Seconds()
	r.Batch8IPS = float64(8**reps8) / sec
	r.Batch8MsImg = 1000 * sec / float64(8**reps8)
	if labels != nil {
		if r.AUROC, err = metrics.AUROC(scores, labels); err != nil {
			return err
		}
	}
	r.PeakRSSMiB = peakRSSMiB()
	r.Machine.LoadAfter = loadAvg()
	return emit(s.out, r)
}

// meanMedianP90 summarises latencies.
func meanMedianP90(v []float64) (mean, median, p90 float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	for _, x := range s {
		mean += x
	}
	mean /= float64(len(s))
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	p90 = s[min(len(s)-1, (len(s)*9+9)/10-1)]
	return mean, median, p90
}
