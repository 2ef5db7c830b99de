package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/sidecar"
)

// fakeNSFWJS writes a miniature nsfwjs tarball: a 16x16 RGB input, block_6_expand
// (1x1 conv + BN + ReLU6) and block_10_expand (3x3 stride-2 conv + BN + ReLU6) with the
// layer names of the real package, bundled like the real dist/models/mobilenet_v2.
func fakeNSFWJS(t *testing.T, path string) {
	t.Helper()
	layer := func(name, class string, cfg map[string]any, in string) map[string]any {
		cfg["name"] = name
		nodes := []any{}
		if in != "" {
			nodes = []any{[]any{[]any{in, 0, 0, map[string]any{}}}}
		}
		return map[string]any{"name": name, "class_name": class, "config": cfg, "inbound_nodes": nodes}
	}
	conv := func(filters, k, s int, padding string) map[string]any {
		return map[string]any{"filters": filters, "kernel_size": []int{k, k}, "strides": []int{s, s}, "padding": padding,
			"use_bias": false, "activation": "linear", "data_format": "channels_last", "dilation_rate": []int{1, 1}}
	}
	relu6 := map[string]any{"max_value": 6, "negative_slope": 0, "threshold": 0}
	layers := []any{
		layer("input_1", "InputLayer", map[string]any{"batch_input_shape": []any{nil, 16, 16, 3}, "dtype": "float32"}, ""),
		layer("block_6_expand", "Conv2D", conv(4, 1, 1, "same"), "input_1"),
		layer("block_6_expand_BN", "BatchNormalization", map[string]any{"axis": -1, "epsilon": 1e-3}, "block_6_expand"),
		layer("block_6_expand_relu", "ReLU", relu6, "block_6_expand_BN"),
		layer("block_10_pad", "ZeroPadding2D", map[string]any{"padding": [][]int{{0, 1}, {0, 1}}}, "block_6_expand_relu"),
		layer("block_10_expand", "Conv2D", conv(5, 3, 2, "valid"), "block_10_pad"),
		layer("block_10_expand_BN", "BatchNormalization", map[string]any{"axis": -1, "epsilon": 1e-3}, "block_10_expand"),
		layer("block_10_expand_relu", "ReLU", relu6, "block_10_expand_BN"),
		layer("block_11_expand", "Conv2D", conv(2, 1, 1, "same"), "block_10_expand_relu"),
	}
	var specs []any
	var shard []byte
	weight := func(name string, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		specs = append(specs, map[string]any{"name": name, "shape": shape, "dtype": "float32",
			"quantization": map[string]any{"dtype": "uint8", "min": 0.25, "scale": 0.01}})
		for i := range n {
			shard = append(shard, byte(i*37%251))
		}
	}
	bn := func(name string, ch int) {
		for _, p := range []string{"gamma", "beta", "moving_mean", "moving_variance"} {
			weight(name+"/"+p, ch)
		}
	}
	weight("block_6_expand/kernel", 1, 1, 3, 4)
	bn("block_6_expand_BN", 4)
	weight("block_10_expand/kernel", 3, 3, 4, 5)
	bn("block_10_expand_BN", 5)
	weight("block_11_expand/kernel", 1, 1, 5, 2)
	model := map[string]any{
		"modelTopology": map[string]any{"model_config": map[string]any{"class_name": "Model",
			"config": map[string]any{"name": "model_1", "layers": layers}}},
		"weightsManifest": []any{map[string]any{"paths": []string{"group1-shard1of1"}, "weights": specs}},
	}
	js, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(lit string) []byte {
		return []byte(`!function(e){"object"==typeof exports&&(module.exports=e())}(function(){return{1:[function(e,a,n){a.exports=` + lit + `},{}]}});`)
	}
	files := map[string][]byte{
		"package/dist/models/mobilenet_v2/model.min.js":            wrap(string(js)),
		"package/dist/models/mobilenet_v2/group1-shard1of1.min.js": wrap(`"` + base64.StdEncoding.EncodeToString(shard) + `"`),
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"package/dist/models/mobilenet_v2/model.min.js", "package/dist/models/mobilenet_v2/group1-shard1of1.min.js"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRunWritesModelAndSidecar(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "nsfwjs-9.8.7.tgz")
	fakeNSFWJS(t, pkg)
	out := filepath.Join(dir, "models", "mnv2.onnx")
	var stdout bytes.Buffer
	if err := run([]string{"nsfwjs", "--package", pkg, "--out", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "output block_10_expand_relu [batch 5 8 8]") {
		t.Errorf("stdout: %s", stdout.String())
	}
	sc, err := sidecar.Read(filepath.Join(dir, "models", "mnv2.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &sidecar.Sidecar{
		Format:      sidecar.Format,
		Model:       "mnv2.onnx",
		ModelSHA256: sha256File(t, out),
		InputName:   "input",
		InputSize:   16,
		Mean:        []float64{0.5, 0.5, 0.5},
		Std:         []float64{0.5, 0.5, 0.5},
		Layers:      []string{"block_6_expand_relu", "block_10_expand_relu"},
		LayerShapes: map[string][]int{"block_6_expand_relu": {4, 16, 16}, "block_10_expand_relu": {5, 8, 8}},
		Source: sidecar.Source{
			Package: "nsfwjs@9.8.7",
			File:    "nsfwjs-9.8.7.tgz",
			SHA256:  sha256File(t, pkg),
			Path:    "dist/models/mobilenet_v2",
			UpTo:    "block_10",
			Weights: sc.Source.Weights,
		},
	}
	if !reflect.DeepEqual(sc, want) {
		t.Errorf("sidecar\n got  %+v\n want %+v", sc, want)
	}
	// (x/255 - mean)/std must equal the Keras preprocessing x/127.5 - 1.
	for _, x := range []float64{0, 1, 127.5, 200, 255} {
		if got := (x/255 - sc.Mean[0]) / sc.Std[0]; math.Abs(got-(x/127.5-1)) > 1e-12 {
			t.Errorf("normalisation of %v: %v, want %v", x, got, x/127.5-1)
		}
	}

	// Rebuilding gives identical bytes (scripts/make-backbone.sh relies on the digest).
	first, _ := os.ReadFile(out)
	if err := run([]string{"nsfwjs", "--package", pkg, "--out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(out); !bytes.Equal(first, second) {
		t.Error("a second build wrote different bytes")
	}

	// Other outputs, a smaller cut and another input size.
	out2 := filepath.Join(dir, "small.onnx")
	if err := run([]string{"nsfwjs", "--package", pkg, "--out", out2, "--upto", "block_6", "--outputs", "block_6_expand_BN", "--input-size", "20"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	sc2, err := sidecar.Read(sidecar.Path(out2))
	if err != nil {
		t.Fatal(err)
	}
	if sc2.InputSize != 20 || !reflect.DeepEqual(sc2.LayerShapes, map[string][]int{"block_6_expand_BN": {4, 20, 20}}) || sc2.Source.UpTo != "block_6" {
		t.Errorf("sidecar for --upto block_6: %+v", sc2)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "nsfwjs-1.0.0.tgz")
	fakeNSFWJS(t, pkg)
	out := filepath.Join(dir, "m.onnx")
	cases := []struct {
		args []string
		kind error
	}{
		{nil, flag.ErrHelp},
		{[]string{"torch"}, flag.ErrHelp},
		{[]string{"nsfwjs", "--out", out}, flag.ErrHelp},
		{[]string{"nsfwjs", "--package", pkg}, flag.ErrHelp},
		{[]string{"nsfwjs", "--package", pkg, "--out", out, "extra"}, flag.ErrHelp},
		{[]string{"nsfwjs", "--package", pkg, "--out", out, "--outputs", "block_11_expand"}, errs.ErrInvalidArgument},
		{[]string{"nsfwjs", "--package", pkg, "--out", out, "--upto", "block_99"}, errs.ErrInvalidArgument},
		{[]string{"nsfwjs", "--package", filepath.Join(dir, "absent.tgz"), "--out", out}, errs.ErrIO},
		{[]string{"nsfwjs", "--package", pkg, "--out", out, "--model-dir", "dist/models/none"}, errs.ErrFormat},
	}
	for _, tc := range cases {
		if err := run(tc.args, io.Discard); !errors.Is(err, tc.kind) {
			t.Errorf("%q: error %v, want %v", tc.args, err, tc.kind)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed runs left %s behind", out)
	}
}

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{"/x/nsfwjs-4.3.0.tgz": "4.3.0", "nsfwjs.tgz": "", "my-pkg-2.0.0-rc.1.tgz": "2.0.0-rc.1", "a-b.tgz": ""} {
		if got := packageVersion(in); got != want {
			t.Errorf("packageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
