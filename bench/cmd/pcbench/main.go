// Command pcbench is libpatchcore's performance harness. It measures, for one backbone and
// one image set, what each stage of PatchCore costs on this machine, counts the
// floating-point work of every stage analytically and relates it to a measured SGEMM
// ceiling. bench/run.sh drives it (one child process per measurement, so that each
// reports its own peak RSS) and docs/benchmarks.md describes the figures.
//
//	pcbench ceiling [-n 4096] [-reps 3]                       # SGEMM GFLOP/s ceiling
//	pcbench fit     -backbone M.onnx -images DIR -n 60 -pct 0.1 [-nn exact|ivfpq]
//	pcbench stages  -backbone M.onnx -images DIR -n 60 -pct 0.1 [-coreset-plain]
//	pcbench report  -in results.jsonl                         # markdown tables
//
// fit times the product path (core.Model.Fit, then Predict at batch 1 and batch 8) and
// reports the process's peak RSS; stages rebuilds the same pipeline from the library's
// building blocks to time each stage apart (preprocessing, backbone, embedding, coreset,
// index, search exact and IVF-PQ, segmentation) and scores the category's test set.
// Every measurement appends one JSON line to -out (default: stdout).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libpatchcore/libpatchcore/bench/internal/imagedir"
	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/sidecar"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ceiling":
		err = runCeiling(os.Args[2:])
	case "fit":
		err = runFit(os.Args[2:])
	case "stages":
		err = runStages(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: pcbench ceiling|fit|stages|report [flags]   (pcbench CMD -h lists the flags)`)
	os.Exit(2)
}

// setup is what fit and stages share: the backbone with its settings, the image set and
// the coreset fraction.
type setup struct {
	backbone   string
	sha        string // SHA-256 of the backbone file
	layers     []string
	mean, std  [3]float32
	resize     int
	imageSize  int
	train      []string // training images, cycled to n when the set is smaller
	distinct   int      // distinct training files behind train
	test       []string // test images (empty for a flat image folder)
	testLabels []bool   // true = anomalous
	pct        float64
	seed       uint64
	out        string
	label      string
}

// setupFlags declares the shared flags on fs; parse must be called after fs.Parse.
type setupFlags struct {
	backbone, layers, mean, std, images, out, label string
	n, resize, imageSize                            int
	pct                                             float64
	seed                                            uint64
}

func (f *setupFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.backbone, "backbone", ".deps/models/mobilenet_v2_block10.onnx", "ONNX backbone (its .json sidecar gives layers, mean and std)")
	fs.StringVar(&f.layers, "layers", "", "comma-separated feature layers (default: the sidecar's)")
	fs.StringVar(&f.mean, "mean", "", "input mean, one value or r,g,b (default: the sidecar's, else ImageNet)")
	fs.StringVar(&f.std, "std", "", "input std, one value or r,g,b (default: the sidecar's, else ImageNet)")
	fs.StringVar(&f.images, "images", "", "an MVTec-style category folder (train/good, test/*) or a folder of images")
	fs.IntVar(&f.n, "n", 60, "number of training images (the set is cycled when it has fewer)")
	fs.IntVar(&f.imageSize, "size", 224, "centre-crop size fed to the backbone")
	fs.IntVar(&f.resize, "resize", 0, "shorter-side resize before the crop (default: size*256/224)")
	fs.Float64Var(&f.pct, "pct", 0.1, "coreset fraction of the patch embeddings kept in the memory bank")
	fs.Uint64Var(&f.seed, "seed", 0, "sampler seed")
	fs.StringVar(&f.out, "out", "", "append the JSON result line to this file (default: stdout)")
	fs.StringVar(&f.label, "label", "", "free-form label stored with the result")
}

func (f *setupFlags) parse() (*setup, error) {
	if f.images == "" {
		return nil, errors.New("-images is required")
	}
	if f.n <= 0 || f.imageSize <= 0 {
		return nil, fmt.Errorf("-n and -size must be positive, got %d and %d", f.n, f.imageSize)
	}
	var err error
	s := &setup{backbone: f.backbone, pct: f.pct, seed: f.seed, out: f.out, label: f.label, imageSize: f.imageSize, resize: f.resize}
	if s.resize == 0 {
		s.resize = f.imageSize * 256 / 224
	}
	if s.sha, err = core.BackboneFromFile(f.backbone).SHA256(); err != nil {
		return nil, err
	}
	sc, err := sidecar.Read(sidecar.Path(f.backbone))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	s.mean, s.std = [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225}
	if sc != nil {
		s.layers = sc.Layers
		s.mean, s.std = sc.MeanStd()
	}
	if f.layers != "" {
		s.layers = sidecar.ParseLayers(f.layers)
	}
	if len(s.layers) == 0 {
		return nil, fmt.Errorf("backbone %s has no sidecar naming its layers: pass -layers", f.backbone)
	}
	if f.mean != "" {
		if s.mean, err = parseTriple(f.mean); err != nil {
			return nil, fmt.Errorf("-mean: %w", err)
		}
	}
	if f.std != "" {
		if s.std, err = parseTriple(f.std); err != nil {
			return nil, fmt.Errorf("-std: %w", err)
		}
	}
	if err := s.findImages(f.images, f.n); err != nil {
		return nil, err
	}
	return s, nil
}

// config is the model configuration of the run: the reference's defaults with this
// backbone, its layers and normalisation, the coreset fraction and the search method.
func (s *setup) config(nn string) core.Config {
	cfg := core.DefaultConfig()
	cfg.Backbone = core.BackboneFromFile(s.backbone)
	cfg.Layers = s.layers
	cfg.Mean, cfg.Std = s.mean, s.std
	cfg.Resize, cfg.ImageSize = s.resize, s.imageSize
	cfg.Percentage, cfg.Seed, cfg.NNMethod = s.pct, s.seed, nn
	return cfg
}

// parseTriple reads "v" or "r,g,b".
func parseTriple(s string) ([3]float32, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return [3]float32{}, fmt.Errorf("want one value or three, got %q", s)
	}
	var out [3]float32
	for i := range out {
		v, err := strconv.ParseFloat(strings.TrimSpace(parts[i%len(parts)]), 32)
		if err != nil {
			return out, err
		}
		out[i] = float32(v)
	}
	return out, nil
}

// findImages lists the training images (cycled to n) and, for an MVTec-style category,
// the test images with their labels (test/good normal, every other folder anomalous).
func (s *setup) findImages(dir string, n int) error {
	trainDir := filepath.Join(dir, "train", "good")
	if st, err := os.Stat(trainDir); err != nil || !st.IsDir() {
		trainDir = dir
	}
	train, err := imagedir.List(trainDir)
	if err != nil {
		return err
	}
	if len(train) == 0 {
		return fmt.Errorf("no PNG/JPEG images in %s", trainDir)
	}
	s.distinct = min(len(train), n)
	for i := 0; i < n; i++ {
		s.train = append(s.train, train[i%len(train)])
	}
	if trainDir == dir {
		return nil
	}
	s.test, s.testLabels, err = imagedir.TestSet(filepath.Join(dir, "test"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a category without a test set
	}
	return err
}

// testSet returns at most max test images with their labels (nil without a test set, when
// the distinct training images stand in), spread evenly over the sorted list so that every
// defect type and the good images stay represented.
func (s *setup) testSet(max int) ([]string, []bool) {
	paths, labels := s.test, s.testLabels
	if len(paths) == 0 {
		paths, labels = s.train[:s.distinct], nil
	}
	if len(paths) <= max {
		return paths, labels
	}
	var ps []string
	var ls []bool
	for i := 0; i < max; i++ {
		j := i * len(paths) / max
		ps = append(ps, paths[j])
		if labels != nil {
			ls = append(ls, labels[j])
		}
	}
	return ps, ls
}

// loadImages decodes files into memory.
func loadImages(paths []string) (core.ImageSlice, error) {
	out := make(core.ImageSlice, len(paths))
	for i, p := range paths {
		img, err := core.LoadImage(p)
		if err != nil {
			return nil, err
		}
		out[i] = img
	}
	return out, nil
}

// machine describes where and when a figure was taken.
type machine struct {
	Date       string     `json:"date"`
	CPU        string     `json:"cpu"`
	Cores      int        `json:"cores"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	LoadBefore [3]float64 `json:"load_before"`
	LoadAfter  [3]float64 `json:"load_after"`
}

func newMachine() machine {
	return machine{Date: time.Now().UTC().Format(time.RFC3339), CPU: cpuModel(), Cores: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), LoadBefore: loadAvg()}
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return runtime.GOARCH
}

// loadAvg is the 1, 5 and 15 minute load average (zeros where unknown).
func loadAvg() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}

// peakRSSMiB is the process's peak resident set size (VmHWM) in MiB, 0 where unknown.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// emit appends r as one JSON line to path (stdout when empty).
func emit(path string, r any) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuSeconds is the CPU time (user + system, all threads) the process has used so far.
// Next to a wall time it tells how much of the machine a step got: on a loaded machine the
// wall time grows while the CPU time stays close to the work done.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// ms is a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
