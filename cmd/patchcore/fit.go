package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/sidecar"
)

// calibration is a parsed --calibrate value.
type calibration struct {
	method core.CalibrationMethod
	name   string
	param  float64
}

// parseCalibration parses "quantile[:Q]" (Q in (0, 1], default 0.99) or "meanstd[:K]"
// (mean + K·sigma, default K = 3).
func parseCalibration(s string) (calibration, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	var c calibration
	switch name {
	case "quantile":
		c = calibration{method: core.CalibrateQuantile, name: name, param: 0.99}
	case "meanstd":
		c = calibration{method: core.CalibrateMeanStd, name: name, param: 3}
	default:
		return c, usageErrorf("--calibrate %q: want quantile[:Q] or meanstd[:K]", s)
	}
	if hasArg {
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return c, usageErrorf("--calibrate %q: %q is not a number", s, arg)
		}
		c.param = v
	}
	if c.method == core.CalibrateQuantile && !(c.param > 0 && c.param <= 1) {
		return c, usageErrorf("--calibrate %q: the quantile must be in (0, 1]", s)
	}
	return c, nil
}

// parseHoldout turns --calibrate-holdout into a number of images out of n: an integer
// N >= 0 is a count, a value strictly between 0 and 1 a fraction (rounded, at least 1).
// At least one image must remain for training.
func parseHoldout(s string, n int) (int, error) {
	if s == "" {
		return 0, nil
	}
	var k int
	if i, err := strconv.Atoi(s); err == nil {
		if i < 0 {
			return 0, usageErrorf("--calibrate-holdout %q is negative", s)
		}
		k = i
	} else {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f > 0 && f < 1) {
			return 0, usageErrorf("--calibrate-holdout %q: want an image count or a fraction in (0, 1)", s)
		}
		k = max(1, int(math.Round(f*float64(n))))
	}
	if k >= n {
		return 0, usageErrorf("--calibrate-holdout %s holds out %d of %d images; at least one must remain for training", s, k, n)
	}
	return k, nil
}

// splitHoldout picks k of the paths, spread evenly over the (sorted) list (index
// floor((j + 0.5)·n/k) for j = 0..k-1), and returns the rest for training, both in order.
func splitHoldout(paths []string, k int) (train, held []string) {
	n := len(paths)
	pick := make(map[int]bool, k)
	for j := range k {
		pick[int((float64(j)+0.5)*float64(n)/float64(k))] = true
	}
	for i, p := range paths {
		if pick[i] {
			held = append(held, p)
		} else {
			train = append(train, p)
		}
	}
	return train, held
}

// fitFlags are fit's settings.
type fitFlags struct {
	out, backbone, layers, mean, std          string
	resize, imageSize, pretrainDim, targetDim int
	patchSize, k, batch, threads              int
	sampler, nn, device, holdout, calibrate   string
	percentage, sigma                         float64
	seed                                      uint64
	embedBackbone, quiet                      bool
}

const fitSynopsis = "fit -o MODEL --backbone ONNX [flags] IMAGE|DIR|@LIST..."

// newFitFlagSet declares fit's flags, with the library's defaults.
func newFitFlagSet(e env) (*flag.FlagSet, *fitFlags) {
	f := &fitFlags{}
	def := core.DefaultConfig()
	fs := newFlagSet("fit", fitSynopsis, e)
	fs.StringVar(&f.out, "out", "", "model file to write (required)")
	fs.StringVar(&f.out, "o", "", "shorthand for --out")
	fs.StringVar(&f.backbone, "backbone", os.Getenv("PATCHCORE_BACKBONE"), "backbone ONNX file (default $PATCHCORE_BACKBONE)")
	fs.StringVar(&f.layers, "layers", "", "comma-separated feature layers (default: the backbone sidecar's)")
	fs.StringVar(&f.mean, "mean", "", "input mean, one value or r,g,b on the [0,1] scale (default: sidecar, else ImageNet)")
	fs.StringVar(&f.std, "std", "", "input std, one value or r,g,b (default: sidecar, else ImageNet)")
	fs.IntVar(&f.resize, "resize", def.Resize, "shorter image side after resizing")
	fs.IntVar(&f.imageSize, "imagesize", def.ImageSize, "centre-crop size (the backbone's input size)")
	fs.IntVar(&f.pretrainDim, "pretrain-dim", def.PretrainEmbedDim, "per-layer embedding dimension")
	fs.IntVar(&f.targetDim, "target-dim", def.TargetEmbedDim, "final embedding dimension")
	fs.IntVar(&f.patchSize, "patchsize", def.PatchSize, "patch neighbourhood size (odd)")
	fs.StringVar(&f.sampler, "sampler", def.Sampler, "memory bank sampler: identity, random, greedy_coreset, approx_greedy_coreset")
	fs.Float64Var(&f.percentage, "percentage", def.Percentage, "coreset fraction in (0, 1)")
	fs.IntVar(&f.k, "k", def.NumNN, "nearest neighbours averaged per patch")
	fs.StringVar(&f.nn, "nn", def.NNMethod, `nearest-neighbour search: "exact" or "ivfpq"`)
	fs.Float64Var(&f.sigma, "sigma", def.Sigma, "Gaussian smoothing of the anomaly maps, in pixels")
	fs.Uint64Var(&f.seed, "seed", def.Seed, "sampler seed")
	fs.IntVar(&f.batch, "batch", def.BatchSize, "images per backbone call")
	fs.IntVar(&f.threads, "threads", 0, "threads (0: all cores)")
	fs.StringVar(&f.device, "device", def.Device, `backbone device: "cpu", "cuda" or "cuda:N"`)
	fs.BoolVar(&f.embedBackbone, "embed-backbone", false, "store the backbone inside the model file")
	fs.StringVar(&f.holdout, "calibrate-holdout", "", "hold out N good images (or a fraction in (0,1)) to calibrate the threshold")
	fs.StringVar(&f.calibrate, "calibrate", "quantile:0.99", "threshold from the held-out scores: quantile[:Q] or meanstd[:K] (mean + K·sigma)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress output")
	return fs, f
}

func cmdFit(args []string, e env) error {
	fs, f := newFitFlagSet(e)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if f.out == "" {
		return usageErrorf("fit: -o MODEL is required")
	}
	if f.backbone == "" {
		return usageErrorf("fit: --backbone ONNX is required (or set PATCHCORE_BACKBONE)")
	}
	if len(pos) == 0 {
		return usageErrorf("fit: no training images given")
	}
	calib, err := parseCalibration(f.calibrate)
	if err != nil {
		return err
	}
	if flagWasSet(fs, "calibrate") && f.holdout == "" {
		return usageErrorf("fit: --calibrate needs --calibrate-holdout")
	}
	cfg, err := f.config(fs)
	if err != nil {
		return err
	}
	paths, err := listImages(pos)
	if err != nil {
		return err
	}
	k, err := parseHoldout(f.holdout, len(paths))
	if err != nil {
		return err
	}
	train, held := splitHoldout(paths, k)
	if err := os.MkdirAll(filepath.Dir(f.out), 0o755); err != nil {
		return fmt.Errorf("%w: model folder: %v", core.ErrIO, err)
	}

	start := time.Now()
	m, err := core.NewModel(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	var prog *progress
	if !f.quiet {
		prog = newProgress(e.stderr, "fit", len(train), e.bar)
	}
	// Fit in its two steps, to report the (possibly long) memory bank construction.
	if err := m.AddImages(core.ImageFiles(train), func(done, _ int) { prog.update(done) }); err != nil {
		return err
	}
	sampler := cfg.Sampler
	if sampler != "identity" {
		sampler += fmt.Sprintf(" %.4g%%", 100*cfg.Percentage)
	}
	featuresDone := time.Now()
	if !f.quiet {
		fmt.Fprintf(e.stderr, "fit: building the memory bank (%s)\n", sampler)
	}
	if err := m.FinishFit(); err != nil {
		return err
	}
	rows, dim := m.BankSize()
	gh, gw := m.Grid()
	fmt.Fprintf(e.stdout, "fitted %d images in %.1fs (features %.1fs, memory bank %.1fs): memory bank %d × %d (%s), patch grid %d×%d\n",
		len(train), time.Since(start).Seconds(), featuresDone.Sub(start).Seconds(), time.Since(featuresDone).Seconds(),
		rows, dim, sampler, gh, gw)
	if len(held) > 0 {
		c, err := m.Calibrate(core.ImageFiles(held), calib.method, calib.param)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "calibrated on %d held-out images (%s %g): threshold %.6g (held-out scores %.6g … %.6g)\n",
			len(held), calib.name, calib.param, c.Threshold, c.ScoreMin, c.ScoreMax)
	}
	if err := m.Save(f.out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", f.out)
	return nil
}

// config builds the model settings from the flags, the backbone sidecar and the defaults:
// layers, mean and std come from the sidecar unless given; the sidecar's input size sets
// --imagesize (and --resize to imagesize·256/224) unless those are given.
func (f *fitFlags) config(fs *flag.FlagSet) (core.Config, error) {
	cfg := core.DefaultConfig()
	sc, err := sidecar.Read(sidecar.Path(f.backbone))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return cfg, err
	}
	resize, imageSize := f.resize, f.imageSize
	if sc != nil {
		cfg.Layers = sc.Layers
		cfg.Mean, cfg.Std = sc.MeanStd()
		if sc.InputSize > 0 && !flagWasSet(fs, "imagesize") {
			imageSize = sc.InputSize
			if !flagWasSet(fs, "resize") {
				resize = int(math.Round(float64(imageSize) * 256 / 224))
			}
		}
	}
	if f.layers != "" {
		cfg.Layers = sidecar.ParseLayers(f.layers)
	}
	if len(cfg.Layers) == 0 {
		return cfg, usageErrorf("fit: --layers is required: backbone %s has no sidecar %s naming its layers", f.backbone, sidecar.Path(f.backbone))
	}
	if f.mean != "" {
		if cfg.Mean, err = parseTriple("mean", f.mean); err != nil {
			return cfg, err
		}
	}
	if f.std != "" {
		if cfg.Std, err = parseTriple("std", f.std); err != nil {
			return cfg, err
		}
	}
	cfg.Backbone = core.BackboneFromFile(f.backbone)
	cfg.Resize, cfg.ImageSize = resize, imageSize
	cfg.PretrainEmbedDim, cfg.TargetEmbedDim, cfg.PatchSize = f.pretrainDim, f.targetDim, f.patchSize
	cfg.Sampler, cfg.Percentage, cfg.Seed = f.sampler, f.percentage, f.seed
	cfg.NumNN, cfg.NNMethod, cfg.Sigma = f.k, f.nn, f.sigma
	cfg.BatchSize, cfg.Threads, cfg.Device, cfg.EmbedBackbone = f.batch, f.threads, f.device, f.embedBackbone
	return cfg, nil
}
