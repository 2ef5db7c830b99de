package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/sidecar"
)

// runCLI runs the command line and returns its exit status, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// touch creates the files (and their folders) with the given content.
func touch(t *testing.T, content string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("PATCHCORE_BACKBONE", "")
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs")
	touch(t, "x", filepath.Join(imgs, "a.png"), filepath.Join(imgs, "b.png"))
	cases := []struct {
		args []string
		want string // part of the message on stderr
	}{
		{nil, "no command"},
		{[]string{"train"}, `unknown command "train"`},
		{[]string{"fit", imgs}, "-o MODEL is required"},
		{[]string{"fit", "-o", "m", imgs}, "--backbone ONNX is required"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx"}, "no training images"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--bogus", imgs}, "flag provided but not defined: -bogus"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--calibrate", "median", imgs}, `--calibrate "median"`},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--calibrate", "quantile:0.9", imgs}, "--calibrate needs --calibrate-holdout"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--layers", "x", "--calibrate-holdout", "2", imgs}, "at least one must remain"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--layers", "x", "--mean", "1,2", imgs}, "--mean"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", imgs}, "--layers is required"},
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--k", "x", imgs}, "invalid value"},
		{[]string{"predict", imgs}, "--model is required"},
		{[]string{"predict", "-m", "m"}, "no images given"},
		{[]string{"predict", "-m", "m", "--threshold", "abc", imgs}, `--threshold "abc"`},
		{[]string{"predict", "-m", "m", "--threshold", "1", "--normalized", imgs}, "cannot be combined"},
		{[]string{"eval", "-m", "m"}, "exactly one category folder, got 0"},
		{[]string{"eval", "-m", "m", "a", "b"}, "exactly one category folder, got 2"},
		{[]string{"eval", "-m", "m", "--gallery", "-1", "a"}, "--gallery -1"},
		{[]string{"eval", "-m", "m", "--fpr-limit", "0", "a"}, "--fpr-limit 0"},
		{[]string{"info"}, "exactly one model file"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	notModel := filepath.Join(dir, "not-a-model.pcm")
	touch(t, "hello", notModel)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"fit", "-o", "m", "--backbone", "b.onnx", "--layers", "x", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"info", notModel}, "format error"},
		{[]string{"info", filepath.Join(dir, "missing.pcm")}, "no such file"},
		{[]string{"eval", "-m", notModel, dir}, "not an MVTec AD category folder"},
		{[]string{"predict", "-m", notModel, notModel}, "format error"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 1 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI("help")
	if code != 0 || !strings.Contains(out, "patchcore eval") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	for _, cmd := range []string{"fit", "predict", "eval", "info"} {
		code, _, stderr := runCLI(cmd, "-h")
		if code != 0 || !strings.Contains(stderr, "usage: patchcore "+cmd) {
			t.Errorf("%s -h: exit %d, %q", cmd, code, stderr)
		}
	}
}

func TestParseFlagsInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o := fs.String("o", "", "")
	q := fs.Bool("q", false, "")
	pos, err := parseFlags(fs, []string{"a", "-o", "x", "b", "-q", "--", "-c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if *o != "x" || !*q || !reflect.DeepEqual(pos, []string{"a", "b", "-c", "d"}) {
		t.Errorf("o=%q q=%v pos=%q", *o, *q, pos)
	}
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	fs2.SetOutput(new(strings.Builder))
	if _, err := parseFlags(fs2, []string{"a", "-zz"}); !errors.Is(err, errUsage) {
		t.Errorf("unknown flag: %v, want a usage error", err)
	}
}

func TestParseHoldout(t *testing.T) {
	good := map[string]int{"": 0, "0": 0, "3": 3, "9": 9, "0.2": 2, "0.25": 3, "0.01": 1, "0.94": 9}
	for s, want := range good {
		if got, err := parseHoldout(s, 10); err != nil || got != want {
			t.Errorf("parseHoldout(%q, 10) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"10", "11", "-1", "1.5", "0.0", "0.999", "abc", "NaN"} {
		if got, err := parseHoldout(s, 10); !errors.Is(err, errUsage) {
			t.Errorf("parseHoldout(%q, 10) = %d, %v; want a usage error", s, got, err)
		}
	}
}

func TestSplitHoldout(t *testing.T) {
	paths := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"}
	train, held := splitHoldout(paths, 3)
	// floor((j + 0.5)·10/3) = 1, 5, 8
	if !reflect.DeepEqual(held, []string{"p1", "p5", "p8"}) {
		t.Errorf("held out %q", held)
	}
	if !reflect.DeepEqual(train, []string{"p0", "p2", "p3", "p4", "p6", "p7", "p9"}) {
		t.Errorf("train %q", train)
	}
	train, held = splitHoldout(paths, 0)
	if len(held) != 0 || len(train) != 10 {
		t.Errorf("k=0: %d train, %d held", len(train), len(held))
	}
}

func TestParseCalibration(t *testing.T) {
	good := map[string]calibration{
		"quantile":      {core.CalibrateQuantile, "quantile", 0.99},
		"quantile:0.95": {core.CalibrateQuantile, "quantile", 0.95},
		"quantile:1":    {core.CalibrateQuantile, "quantile", 1},
		"meanstd":       {core.CalibrateMeanStd, "meanstd", 3},
		"meanstd:2.5":   {core.CalibrateMeanStd, "meanstd", 2.5},
		"meanstd:-1":    {core.CalibrateMeanStd, "meanstd", -1},
	}
	for s, want := range good {
		if got, err := parseCalibration(s); err != nil || got != want {
			t.Errorf("parseCalibration(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "f1", "quantile:0", "quantile:1.5", "quantile:x", "meanstd:inf", "meanstd:"} {
		if _, err := parseCalibration(s); !errors.Is(err, errUsage) {
			t.Errorf("parseCalibration(%q): %v, want a usage error", s, err)
		}
	}
}

func TestParseTripleAndList(t *testing.T) {
	if v, err := parseTriple("mean", "0.5"); err != nil || v != [3]float32{0.5, 0.5, 0.5} {
		t.Errorf("one value: %v %v", v, err)
	}
	if v, err := parseTriple("mean", "1, 2,3"); err != nil || v != [3]float32{1, 2, 3} {
		t.Errorf("three values: %v %v", v, err)
	}
	for _, s := range []string{"1,2", "1,2,3,4", "a", ""} {
		if _, err := parseTriple("std", s); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--std") {
			t.Errorf("parseTriple(%q): %v", s, err)
		}
	}
}

func TestListImages(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "good")
	touch(t, "x", filepath.Join(d, "b.png"), filepath.Join(d, "a.JPG"), filepath.Join(d, "c.jpeg"),
		filepath.Join(d, "notes.txt"), filepath.Join(d, "sub", "z.png"), filepath.Join(dir, "single.png"))
	list := filepath.Join(dir, "lists", "train.txt")
	touch(t, "# training images\n../good/b.png\n\n  /abs/x.png  \n", list)

	got, err := listImages([]string{d, filepath.Join(dir, "single.png"), "@" + list})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(d, "a.JPG"), filepath.Join(d, "b.png"), filepath.Join(d, "c.jpeg"),
		filepath.Join(dir, "single.png"),
		filepath.Join(dir, "good", "b.png"), "/abs/x.png",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listImages:\n got %q\nwant %q", got, want)
	}

	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	emptyList := filepath.Join(dir, "empty.txt")
	touch(t, "# nothing\n", emptyList)
	for _, args := range [][]string{{empty}, {filepath.Join(dir, "missing")}, {"@" + emptyList}, {"@" + filepath.Join(dir, "nolist")}} {
		if _, err := listImages(args); err == nil {
			t.Errorf("listImages(%q) succeeded", args)
		}
	}
	if _, err := listImages([]string{empty}); !errors.Is(err, core.ErrInvalidArgument) {
		t.Errorf("empty folder: %v, want ErrInvalidArgument", err)
	}
	if _, err := listImages([]string{filepath.Join(dir, "missing")}); !errors.Is(err, core.ErrIO) {
		t.Errorf("missing path: %v, want ErrIO", err)
	}
}

func TestFitConfigFromSidecar(t *testing.T) {
	dir := t.TempDir()
	onnx := filepath.Join(dir, "net.onnx")
	touch(t, `{"format": "libpatchcore-backbone/1", "model": "net.onnx", "input_size": 160,
		"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.5], "layers": ["l1", "l2"], "extra": 1}`, sidecar.Path(onnx))

	config := func(args ...string) (core.Config, error) {
		fs, f := newFitFlagSet(env{stdout: new(strings.Builder), stderr: new(strings.Builder)})
		if _, err := parseFlags(fs, append([]string{"--backbone", onnx}, args...)); err != nil {
			t.Fatal(err)
		}
		return f.config(fs)
	}
	cfg, err := config()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Layers, []string{"l1", "l2"}) || cfg.Mean != [3]float32{0.5, 0.5, 0.5} ||
		cfg.Std != [3]float32{0.25, 0.5, 0.5} || cfg.ImageSize != 160 || cfg.Resize != 183 {
		t.Errorf("sidecar defaults: layers %q mean %v std %v resize %d imagesize %d", cfg.Layers, cfg.Mean, cfg.Std, cfg.Resize, cfg.ImageSize)
	}
	def := core.DefaultConfig()
	if cfg.Sampler != def.Sampler || cfg.Percentage != def.Percentage || cfg.NumNN != def.NumNN || cfg.Sigma != def.Sigma {
		t.Errorf("library defaults not kept: %+v", cfg)
	}

	cfg, err = config("--layers", "x", "--mean", "0.1", "--std", "1,2,3", "--imagesize", "224", "--k", "3",
		"--sampler", "identity", "--embed-backbone")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Layers, []string{"x"}) || cfg.Mean != [3]float32{0.1, 0.1, 0.1} || cfg.Std != [3]float32{1, 2, 3} ||
		cfg.ImageSize != 224 || cfg.Resize != 256 || cfg.NumNN != 3 || cfg.Sampler != "identity" || !cfg.EmbedBackbone {
		t.Errorf("flags do not override the sidecar: %+v", cfg)
	}

	touch(t, `{"format": "other"}`, sidecar.Path(onnx))
	if _, err := config(); !errors.Is(err, core.ErrFormat) {
		t.Errorf("foreign sidecar: %v, want ErrFormat", err)
	}
	touch(t, `{"format": "libpatchcore-backbone/1", "mean": [0.5]}`, sidecar.Path(onnx))
	if _, err := config(); !errors.Is(err, core.ErrFormat) {
		t.Errorf("one-value mean: %v, want ErrFormat", err)
	}
	touch(t, `{`, sidecar.Path(onnx))
	if _, err := config(); !errors.Is(err, core.ErrFormat) {
		t.Errorf("broken JSON: %v, want ErrFormat", err)
	}
	os.Remove(sidecar.Path(onnx))
	cfg, err = config("--layers", "a,b")
	if err != nil || cfg.Mean != def.Mean || cfg.Std != def.Std || cfg.ImageSize != 224 || cfg.Resize != 256 {
		t.Errorf("without a sidecar: %+v, %v", cfg, err)
	}
}

func TestUniqueStems(t *testing.T) {
	got := uniqueStems([]string{"a/x.png", "b/x.png", "c/x.jpg", "d/x_2.png", "y.png"})
	want := []string{"x", "x_2", "x_3", "x_2_2", "y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("uniqueStems = %q, want %q", got, want)
	}
}
