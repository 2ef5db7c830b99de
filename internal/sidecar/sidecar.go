// Package sidecar reads and writes the JSON file that describes an ONNX backbone: the
// "sidecar" next to model.onnx, named model.json. cmd/patchcore-backbone,
// scripts/export_torchvision_backbone.py and scripts/make-backbone.sh (through
// cmd/patchcore-backbone) write it; cmd/patchcore and bench/cmd/pcbench take the default
// layers, input normalisation and input size of a backbone from it.
//
// Example (format "libpatchcore-backbone/1"; fields this package does not know are
// ignored when reading):
//
//	{
//	  "format": "libpatchcore-backbone/1",
//	  "model": "mobilenet_v2_block10.onnx",
//	  "model_sha256": "fab1…",
//	  "input_name": "input",
//	  "input_size": 224,
//	  "mean": [0.5, 0.5, 0.5],
//	  "std": [0.5, 0.5, 0.5],
//	  "layers": ["block_6_expand_relu", "block_10_expand_relu"],
//	  "layer_shapes": {"block_6_expand_relu": [192, 28, 28], "block_10_expand_relu": [384, 14, 14]},
//	  "source": {"package": "nsfwjs@4.3.0", "file": "nsfwjs-4.3.0.tgz", "sha256": "4496…",
//	             "path": "dist/models/mobilenet_v2", "up_to": "block_10", "weights": "…"}
//	}
package sidecar

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/modelfile"
)

// Format is the value of the "format" field: the name and version of this schema.
const Format = "libpatchcore-backbone/1"

// Sidecar is the content of a backbone's sidecar. Input pixels x in [0, 255] (RGB, NCHW)
// are fed to the graph as (x/255 - Mean[c]) / Std[c].
type Sidecar struct {
	// Format is always the constant Format.
	Format string `json:"format"`
	// Model is the base name of the ONNX file.
	Model string `json:"model"`
	// ModelSHA256 is the hex SHA-256 digest of the ONNX file.
	ModelSHA256 string `json:"model_sha256"`
	// InputName is the graph input, a float32 tensor [batch, 3, InputSize, InputSize].
	InputName string `json:"input_name"`
	// InputSize is the input height and width in pixels; 0 when not recorded.
	InputSize int `json:"input_size"`
	// Mean holds the per-channel (R, G, B) mean on the [0, 1] scale: three values.
	Mean []float64 `json:"mean"`
	// Std holds the per-channel (R, G, B) standard deviation on the [0, 1] scale: three
	// positive values.
	Std []float64 `json:"std"`
	// Layers are the graph outputs, in order: the default feature layers (at least one).
	Layers []string `json:"layers"`
	// LayerShapes maps each graph output to its [C, H, W] shape at InputSize.
	LayerShapes map[string][]int `json:"layer_shapes"`
	// Source records where the graph and its weights came from.
	Source Source `json:"source"`
}

// Source records where a backbone's graph and weights came from.
type Source struct {
	// Package is the package the weights came from, with its version, e.g.
	// "nsfwjs@4.3.0" or "torchvision@0.14.1".
	Package string `json:"package"`
	// File is the base name of the archive or weights file read; "" when none was read
	// (random weights).
	File string `json:"file"`
	// SHA256 is the hex SHA-256 digest of File; "" when File is "".
	SHA256 string `json:"sha256"`
	// Path is the model directory inside the package; omitted when not applicable.
	Path string `json:"path,omitempty"`
	// UpTo is the last block or layer converted.
	UpTo string `json:"up_to,omitempty"`
	// Weights describes the weights in words (pretrained on what, or random with which seed).
	Weights string `json:"weights,omitempty"`
}

// Path returns the sidecar path of an ONNX model path: its extension replaced by .json
// (a path without extension gets .json appended).
func Path(modelPath string) string {
	return strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".json"
}

// Read reads and checks the sidecar at path: the format must be Format, mean and std must
// hold three finite values each with std > 0, layers must name at least one layer and
// input_size must not be negative. Unknown fields are ignored. Errors wrap errs.ErrIO
// when the file cannot be read (and os.ErrNotExist as well when it does not exist, which
// callers that treat the sidecar as optional test with errors.Is) and errs.ErrFormat when
// its content is not a valid sidecar.
func Read(path string) (*Sidecar, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: backbone sidecar: %w", errs.ErrIO, err)
	}
	var sc Sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("%w: backbone sidecar %s: %v", errs.ErrFormat, path, err)
	}
	if err := sc.check(); err != nil {
		return nil, fmt.Errorf("%w: backbone sidecar %s: %v", errs.ErrFormat, path, err)
	}
	return &sc, nil
}

// Write checks sc as Read does and writes it to path as indented JSON ending in a
// newline, atomically (modelfile.WriteFileAtomic): path holds either its previous content
// or all of the new one. The directory must exist. Errors wrap errs.ErrInvalidArgument
// when sc is nil or would not pass Read, errs.ErrIO when the file cannot be written.
func Write(path string, sc *Sidecar) error {
	if sc == nil {
		return fmt.Errorf("%w: backbone sidecar %s: nil sidecar", errs.ErrInvalidArgument, path)
	}
	if err := sc.check(); err != nil {
		return fmt.Errorf("%w: backbone sidecar %s: %v", errs.ErrInvalidArgument, path, err)
	}
	js, err := json.MarshalIndent(sc, "", "  ")
	if err != nil { // check rules out the only failure, a NaN or infinite value
		return fmt.Errorf("%w: encode backbone sidecar %s: %v", errs.ErrInternal, path, err)
	}
	if err := modelfile.WriteFileAtomic(path, append(js, '\n')); err != nil {
		return fmt.Errorf("%w: write backbone sidecar %s: %v", errs.ErrIO, path, err)
	}
	return nil
}

// MeanStd returns Mean and Std as the float32 triples core.Config takes. sc must have
// passed Read's checks (three values each).
func (sc *Sidecar) MeanStd() (mean, std [3]float32) {
	for c := range 3 {
		mean[c], std[c] = float32(sc.Mean[c]), float32(sc.Std[c])
	}
	return mean, std
}

// ParseLayers splits a comma-separated list of layer names, as the commands' layer flags
// take them (the values that end up in, or override, Layers): names are trimmed of
// spaces and empty names are dropped, so " a, ,b," gives [a b].
func ParseLayers(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// check reports the first reason sc is not a valid sidecar, or nil.
func (sc *Sidecar) check() error {
	if sc.Format != Format {
		return fmt.Errorf("format %q, want %q", sc.Format, Format)
	}
	if len(sc.Mean) != 3 || len(sc.Std) != 3 {
		return fmt.Errorf("mean and std need three values each, got %d and %d", len(sc.Mean), len(sc.Std))
	}
	for c := range 3 {
		if math.IsNaN(sc.Mean[c]) || math.IsInf(sc.Mean[c], 0) {
			return fmt.Errorf("mean %v is not finite", sc.Mean)
		}
		if !(sc.Std[c] > 0) || math.IsInf(sc.Std[c], 0) {
			return fmt.Errorf("std %v: want three finite values > 0", sc.Std)
		}
	}
	if len(sc.Layers) == 0 {
		return fmt.Errorf("no layers")
	}
	for i, l := range sc.Layers {
		if l == "" {
			return fmt.Errorf("layer %d has an empty name", i)
		}
	}
	if sc.InputSize < 0 {
		return fmt.Errorf("input_size %d is negative", sc.InputSize)
	}
	return nil
}
