package sidecar

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// valid returns a complete, valid sidecar (a fresh copy per call).
func valid() *Sidecar {
	return &Sidecar{
		Format:      Format,
		Model:       "net.onnx",
		ModelSHA256: "00ff",
		InputName:   "input",
		InputSize:   160,
		Mean:        []float64{0.485, 0.456, 0.406},
		Std:         []float64{0.229, 0.224, 0.225},
		Layers:      []string{"l2", "l3"},
		LayerShapes: map[string][]int{"l3": {8, 10, 10}, "l2": {4, 20, 20}},
		Source:      Source{Package: "pkg@1.2.3", File: "w.bin", SHA256: "abcd", Path: "dir", UpTo: "l3", Weights: "random, seed 1"},
	}
}

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a/b.onnx", "a/b.json"},
		{"model", "model.json"},
		{"x.y/m.v2.onnx", "x.y/m.v2.json"},
		{"/abs/net.ONNX", "/abs/net.json"},
		{"net.json", "net.json"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestReadScriptSidecars reads the sidecars of .deps/models: mobilenet_v2_block10.json as
// scripts/make-backbone.sh (cmd/patchcore-backbone) wrote it and wrn50_layer3_random0.json
// as scripts/export_torchvision_backbone.py wrote it. Writing what was read gives the
// file back byte for byte: both writers produce the same layout.
func TestReadScriptSidecars(t *testing.T) {
	cases := []struct {
		file string
		want *Sidecar
	}{
		{"mobilenet_v2_block10.json", &Sidecar{
			Format:      "libpatchcore-backbone/1",
			Model:       "mobilenet_v2_block10.onnx",
			ModelSHA256: "fab147f70ee8891cb715e932674378af28499465f7b305f20ac60acb7676227f",
			InputName:   "input",
			InputSize:   224,
			Mean:        []float64{0.5, 0.5, 0.5},
			Std:         []float64{0.5, 0.5, 0.5},
			Layers:      []string{"block_6_expand_relu", "block_10_expand_relu"},
			LayerShapes: map[string][]int{"block_10_expand_relu": {384, 14, 14}, "block_6_expand_relu": {192, 28, 28}},
			Source: Source{
				Package: "nsfwjs@4.3.0",
				File:    "nsfwjs-4.3.0.tgz",
				SHA256:  "4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f",
				Path:    "dist/models/mobilenet_v2",
				UpTo:    "block_10",
				Weights: "Keras MobileNetV2 (alpha 1.0, 224), ImageNet weights, uint8-quantised by TensorFlow.js",
			},
		}},
		{"wrn50_layer3_random0.json", &Sidecar{
			Format:      "libpatchcore-backbone/1",
			Model:       "wrn50_layer3_random0.onnx",
			ModelSHA256: "eb4bf1ebc40e8b2d14766b50a9fef48ccf54ddae0ddec82d64edab3d093b0dc3",
			InputName:   "input",
			InputSize:   224,
			Mean:        []float64{0.485, 0.456, 0.406},
			Std:         []float64{0.229, 0.224, 0.225},
			Layers:      []string{"layer2", "layer3"},
			LayerShapes: map[string][]int{"layer2": {512, 28, 28}, "layer3": {1024, 14, 14}},
			Source: Source{
				Package: "torchvision@0.14.1a0",
				UpTo:    "layer3",
				Weights: "wide_resnet50_2, random initialisation, seed 0",
			},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Read\n got  %+v\n want %+v", got, tc.want)
			}
			out := filepath.Join(t.TempDir(), tc.file)
			if err := Write(out, got); err != nil {
				t.Fatal(err)
			}
			orig, _ := os.ReadFile(path)
			if written, _ := os.ReadFile(out); !bytes.Equal(written, orig) {
				t.Errorf("Write(Read(%s)) differs:\n%s\nwant\n%s", tc.file, written, orig)
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "net.json")
	os.WriteFile(path, []byte("old content that is longer than nothing"), 0o644)
	sc := valid()
	sc.Source.Path, sc.Source.UpTo, sc.Source.Weights = "", "", "" // omitted fields
	if err := Write(path, sc); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"{\n  \"format\": \"libpatchcore-backbone/1\",\n", "\n  \"input_size\": 160,\n", "\n    \"l2\",\n", "}\n"} {
		if !bytes.Contains(raw, []byte(s)) {
			t.Errorf("written file lacks %q:\n%s", s, raw)
		}
	}
	for _, s := range []string{`"path"`, `"up_to"`, `"weights"`} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("written file has the empty optional field %s:\n%s", s, raw)
		}
	}
	if !bytes.HasSuffix(raw, []byte("}\n")) || bytes.HasSuffix(raw, []byte("\n\n")) {
		t.Errorf("written file does not end in exactly one newline: %q", raw[len(raw)-4:])
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sc) {
		t.Errorf("round trip\n got  %+v\n want %+v", got, sc)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Write left %d files in the folder, want 1", len(entries))
	}
}

func TestReadIgnoresUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(path, []byte(`{"format": "libpatchcore-backbone/1", "mean": [0,0,0], "std": [1,1,1],
		"layers": ["a"], "future": {"x": 1}}`), 0o644)
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Layers, []string{"a"}) || got.InputSize != 0 || got.Model != "" {
		t.Errorf("Read = %+v", got)
	}
}

func TestReadRejectsBadContent(t *testing.T) {
	const head = `"format": "libpatchcore-backbone/1"`
	const norm = `"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]`
	cases := []struct {
		name, json, msg string
	}{
		{"not JSON", `{`, "unexpected end"},
		{"not an object", `[1, 2]`, "cannot unmarshal array"},
		{"wrong field type", `{` + head + `, "mean": "0.5"}`, "cannot unmarshal string"},
		{"no format", `{` + norm + `, "layers": ["a"]}`, `format ""`},
		{"other format", `{"format": "libpatchcore-backbone/2", ` + norm + `, "layers": ["a"]}`, `format "libpatchcore-backbone/2"`},
		{"no mean", `{` + head + `, "std": [1, 1, 1], "layers": ["a"]}`, "got 0 and 3"},
		{"one mean", `{` + head + `, "mean": [0.5], "std": [1, 1, 1], "layers": ["a"]}`, "got 1 and 3"},
		{"four std", `{` + head + `, "mean": [0, 0, 0], "std": [1, 1, 1, 1], "layers": ["a"]}`, "got 3 and 4"},
		{"zero std", `{` + head + `, "mean": [0, 0, 0], "std": [1, 0, 1], "layers": ["a"]}`, "std [1 0 1]"},
		{"negative std", `{` + head + `, "mean": [0, 0, 0], "std": [1, 1, -0.5], "layers": ["a"]}`, "> 0"},
		{"no layers", `{` + head + `, ` + norm + `}`, "no layers"},
		{"empty layers", `{` + head + `, ` + norm + `, "layers": []}`, "no layers"},
		{"empty layer name", `{` + head + `, ` + norm + `, "layers": ["a", ""]}`, "layer 1 has an empty name"},
		{"negative input size", `{` + head + `, ` + norm + `, "layers": ["a"], "input_size": -1}`, "input_size -1"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			os.WriteFile(path, []byte(tc.json), 0o644)
			sc, err := Read(path)
			if sc != nil || !errors.Is(err, errs.ErrFormat) || errors.Is(err, errs.ErrIO) {
				t.Fatalf("Read = %+v, %v; want nil and ErrFormat", sc, err)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %q and the path", err, tc.msg)
			}
		})
	}
}

func TestReadUnreadable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent.json")
	sc, err := Read(missing)
	if sc != nil || !errors.Is(err, errs.ErrIO) || !errors.Is(err, os.ErrNotExist) || errors.Is(err, errs.ErrFormat) {
		t.Errorf("missing file: %+v, %v; want ErrIO and os.ErrNotExist", sc, err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %q does not name the path", err)
	}
	// A folder exists but cannot be read as a file: ErrIO, not "no sidecar".
	if _, err := Read(dir); !errors.Is(err, errs.ErrIO) || errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder: %v; want ErrIO without os.ErrNotExist", err)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	bad := func(edit func(*Sidecar)) *Sidecar { sc := valid(); edit(sc); return sc }
	cases := []struct {
		name string
		sc   *Sidecar
		kind error
	}{
		{"nil", nil, errs.ErrInvalidArgument},
		{"wrong format", bad(func(s *Sidecar) { s.Format = "x" }), errs.ErrInvalidArgument},
		{"two std", bad(func(s *Sidecar) { s.Std = s.Std[:2] }), errs.ErrInvalidArgument},
		{"NaN mean", bad(func(s *Sidecar) { s.Mean[1] = math.NaN() }), errs.ErrInvalidArgument},
		{"infinite mean", bad(func(s *Sidecar) { s.Mean[0] = math.Inf(-1) }), errs.ErrInvalidArgument},
		{"NaN std", bad(func(s *Sidecar) { s.Std[2] = math.NaN() }), errs.ErrInvalidArgument},
		{"infinite std", bad(func(s *Sidecar) { s.Std[2] = math.Inf(1) }), errs.ErrInvalidArgument},
		{"no layers", bad(func(s *Sidecar) { s.Layers = nil }), errs.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "keep.json")
			os.WriteFile(path, []byte("previous"), 0o644)
			if err := Write(path, tc.sc); !errors.Is(err, tc.kind) {
				t.Errorf("Write: %v, want %v", err, tc.kind)
			}
			if b, _ := os.ReadFile(path); string(b) != "previous" {
				t.Errorf("a failed Write changed the file to %q", b)
			}
		})
	}
	if err := Write(filepath.Join(dir, "no", "such", "dir", "x.json"), valid()); !errors.Is(err, errs.ErrIO) {
		t.Errorf("Write into a missing folder: %v, want ErrIO", err)
	}
}

func TestMeanStd(t *testing.T) {
	mean, std := valid().MeanStd()
	if mean != [3]float32{0.485, 0.456, 0.406} || std != [3]float32{0.229, 0.224, 0.225} {
		t.Errorf("MeanStd = %v, %v", mean, std)
	}
}

func TestParseLayers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"layer2", []string{"layer2"}},
		{"layer2,layer3", []string{"layer2", "layer3"}},
		{" a, ,b,", []string{"a", "b"}},
		{"block_6_expand_relu , block_10_expand_relu", []string{"block_6_expand_relu", "block_10_expand_relu"}},
	} {
		if got := ParseLayers(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLayers(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
