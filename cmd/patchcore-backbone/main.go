// Command patchcore-backbone builds the ONNX feature extractor ("backbone") that
// libpatchcore runs, from sources a user can install offline through a package registry.
//
// Usage:
//
//	patchcore-backbone nsfwjs --package nsfwjs-4.3.0.tgz --out mobilenet_v2_block10.onnx \
//	    [--upto block_10] [--outputs block_6_expand_relu,block_10_expand_relu] \
//	    [--input-size 224] [--model-dir dist/models/mobilenet_v2]
//
// The nsfwjs subcommand reads the Keras MobileNetV2 (ImageNet weights up to block_10)
// bundled as a TensorFlow.js layers model in the npm package nsfwjs (the tarball written
// by `npm pack nsfwjs@4.3.0`), converts the layers up to --upto into an ONNX graph
// (opset 13, NCHW, dynamic batch, batch normalisation folded into the convolutions) and
// writes it with a JSON sidecar next to it (same path, extension .json, format of package
// internal/sidecar) that records the input normalisation, size and default layers. Every
// Keras layer output up to --upto is a named tensor of the graph; --outputs picks the
// graph outputs.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/modelfile"
	"github.com/libpatchcore/libpatchcore/internal/onnxbuild"
	"github.com/libpatchcore/libpatchcore/internal/sidecar"
	"github.com/libpatchcore/libpatchcore/internal/tfjs"
)

// Default layers: the MobileNetV2 counterparts of WideResNet50's layer2 and layer3.
var defaultOutputs = []string{"block_6_expand_relu", "block_10_expand_relu"}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "patchcore-backbone:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: patchcore-backbone nsfwjs --package nsfwjs-4.3.0.tgz --out model.onnx
        [--upto block_10] [--outputs block_6_expand_relu,block_10_expand_relu]
        [--input-size 224] [--model-dir dist/models/mobilenet_v2]`)
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "nsfwjs" {
		usage(os.Stderr)
		return fmt.Errorf("%w: expected the subcommand nsfwjs", flag.ErrHelp)
	}
	fs := flag.NewFlagSet("nsfwjs", flag.ContinueOnError)
	pkg := fs.String("package", "", "npm tarball of nsfwjs (npm pack nsfwjs@4.3.0)")
	out := fs.String("out", "", "ONNX file to write; the sidecar goes to the same path with extension .json")
	upto := fs.String("upto", "block_10", "last Keras block to convert")
	outputs := fs.String("outputs", strings.Join(defaultOutputs, ","), "comma-separated Keras layer names to expose as graph outputs")
	inputSize := fs.Int("input-size", 0, "input height and width (0: the model's own, 224)")
	modelDir := fs.String("model-dir", "dist/models/mobilenet_v2", "model directory inside the package")
	randomInit := fs.Bool("random-init", false, "replace the pretrained weights by Keras' default random initialisation (a baseline for evaluations)")
	seed := fs.Uint64("seed", 0, "random seed for --random-init")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *pkg == "" || *out == "" || fs.NArg() != 0 {
		usage(os.Stderr)
		return fmt.Errorf("%w: --package and --out are required", flag.ErrHelp)
	}
	res, err := Build(BuildOptions{
		Package:    *pkg,
		ModelDir:   *modelDir,
		Out:        *out,
		UpTo:       *upto,
		Outputs:    sidecar.ParseLayers(*outputs),
		InputSize:  *inputSize,
		RandomInit: *randomInit,
		Seed:       *seed,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d nodes, %d tensors up to %s) and %s\n",
		*out, len(res.Converted.Model.Graph.Nodes), len(res.Converted.Tensors), *upto, sidecar.Path(*out))
	for _, o := range res.Converted.Outputs {
		fmt.Fprintf(stdout, "  output %s [batch %s]\n", o.Name, strings.Trim(fmt.Sprint(o.Shape), "[]"))
	}
	return nil
}

// BuildOptions are the inputs of Build.
type BuildOptions struct {
	Package   string   // path of the nsfwjs npm tarball
	ModelDir  string   // model directory inside the package
	Out       string   // ONNX file to write
	UpTo      string   // last Keras block to convert
	Outputs   []string // graph outputs (Keras layer names)
	InputSize int      // 0: the model's own
	// RandomInit replaces the pretrained weights by Keras' default initialisation drawn
	// with Seed (Glorot-uniform kernels, zero biases, identity batch normalisation): the
	// same architecture without ImageNet features, as a baseline for evaluations.
	RandomInit bool
	Seed       uint64
}

// BuildResult describes what Build wrote.
type BuildResult struct {
	Converted *tfjs.Converted
	Sidecar   sidecar.Sidecar
}

// Build converts the model in the package and writes the ONNX file and its sidecar.
func Build(o BuildOptions) (*BuildResult, error) {
	model, sum, err := tfjs.ReadNPMPackage(o.Package, o.ModelDir)
	if err != nil {
		return nil, err
	}
	weights := "Keras MobileNetV2 (alpha 1.0, 224), ImageNet weights, uint8-quantised by TensorFlow.js"
	if o.RandomInit {
		randomizeWeights(model, o.Seed)
		weights = fmt.Sprintf("Keras MobileNetV2 (alpha 1.0, 224) architecture, RANDOM weights (Glorot uniform, seed %d)", o.Seed)
	}
	conv, err := tfjs.Convert(model, tfjs.ConvertOptions{UpTo: o.UpTo, Outputs: o.Outputs, InputSize: o.InputSize})
	if err != nil {
		return nil, err
	}
	src := sidecar.Source{
		Package: "nsfwjs",
		File:    filepath.Base(o.Package),
		SHA256:  sum,
		Path:    o.ModelDir,
		UpTo:    o.UpTo,
		Weights: weights,
	}
	if v := packageVersion(o.Package); v != "" {
		src.Package += "@" + v
	}
	conv.Model.DocString = fmt.Sprintf("Keras MobileNetV2 up to %s from %s (%s, sha256 %s). Input: RGB NCHW float32 in [-1, 1] (pixel/127.5 - 1).",
		o.UpTo, src.Package, src.File, sum)
	conv.Model.Metadata = []onnxbuild.KeyValue{
		{Key: "source_package", Value: src.Package},
		{Key: "source_sha256", Value: sum},
		{Key: "input_range", Value: "[-1, 1]"},
	}
	data, err := conv.Model.Marshal()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(data)
	sc := sidecar.Sidecar{
		Format:      sidecar.Format,
		Model:       filepath.Base(o.Out),
		ModelSHA256: hex.EncodeToString(digest[:]),
		InputName:   conv.Input.Name,
		InputSize:   conv.Input.Shape[1],
		// Keras MobileNetV2 takes x/127.5 - 1 = (x/255 - 0.5) / 0.5.
		Mean:        []float64{0.5, 0.5, 0.5},
		Std:         []float64{0.5, 0.5, 0.5},
		LayerShapes: map[string][]int{},
		Source:      src,
	}
	for _, t := range conv.Outputs {
		sc.Layers = append(sc.Layers, t.Name)
		sc.LayerShapes[t.Name] = t.Shape
	}
	if err := writeFileAtomic(o.Out, data); err != nil {
		return nil, err
	}
	if err := sidecar.Write(sidecar.Path(o.Out), &sc); err != nil {
		return nil, err
	}
	return &BuildResult{Converted: conv, Sidecar: sc}, nil
}

// packageVersion takes the version from an npm tarball name such as nsfwjs-4.3.0.tgz:
// everything after the first '-' that is followed by a digit.
func packageVersion(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), ".tgz")
	for i := 0; i+1 < len(base); i++ {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			return base[i+1:]
		}
	}
	return ""
}

// writeFileAtomic writes data to path through modelfile.WriteFileAtomic (temporary file,
// fsync, rename), creating the directory first, so a reader never sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: create %s: %v", errs.ErrIO, dir, err)
	}
	if err := modelfile.WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("%w: write %s: %v", errs.ErrIO, path, err)
	}
	return nil
}

// randomizeWeights overwrites every weight with Keras' default initial value: kernels
// Glorot-uniform U(±sqrt(6/(fan_in+fan_out))) with fans from [kh, kw, in, out], biases
// and BN betas/means 0, BN gammas/variances 1. Weights are visited in name order so the
// result depends only on the seed.
func randomizeWeights(m *tfjs.Model, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	names := make([]string, 0, len(m.Weights))
	for n := range m.Weights {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := m.Weights[n]
		switch {
		case len(w.Shape) == 4:
			recept := w.Shape[0] * w.Shape[1]
			limit := float32(math.Sqrt(6 / float64(recept*w.Shape[2]+recept*w.Shape[3])))
			for i := range w.Data {
				w.Data[i] = (2*rng.Float32() - 1) * limit
			}
		case strings.HasSuffix(n, "/gamma"), strings.HasSuffix(n, "/moving_variance"):
			for i := range w.Data {
				w.Data[i] = 1
			}
		default: // biases, betas, moving means
			clear(w.Data)
		}
	}
}
