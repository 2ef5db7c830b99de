package core

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/libpatchcore/libpatchcore/internal/onnxgraph"
	"github.com/libpatchcore/libpatchcore/internal/ort"
)

// BackboneSource is where the backbone's ONNX model comes from: a file (BackboneFromFile)
// or bytes in memory (BackboneFromBytes).
type BackboneSource struct {
	path    string
	data    []byte
	isBytes bool
}

// BackboneFromFile names an ONNX model file. Weights stored as external data are resolved
// relative to the file's directory.
func BackboneFromFile(path string) BackboneSource { return BackboneSource{path: path} }

// BackboneFromBytes supplies an ONNX model held in memory. The bytes are only read while
// NewNetworkFeatureAggregator runs.
func BackboneFromBytes(b []byte) BackboneSource { return BackboneSource{data: b, isBytes: true} }

// IsZero reports whether no backbone was given (a features-only model).
func (s BackboneSource) IsZero() bool { return s.path == "" && !s.isBytes }

// Name is the file's base name, or "" for bytes.
func (s BackboneSource) Name() string {
	if s.isBytes {
		return ""
	}
	return filepath.Base(s.path)
}

// Bytes returns the ONNX bytes, reading the file when the source is a path.
func (s BackboneSource) Bytes() ([]byte, error) {
	if s.isBytes {
		return s.data, nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading backbone: %v", ErrIO, err)
	}
	return b, nil
}

// SHA256 returns the hex sha256 of the ONNX bytes.
func (s BackboneSource) SHA256() (string, error) {
	b, err := s.Bytes()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// String describes the source for error messages.
func (s BackboneSource) String() string {
	if s.isBytes {
		return fmt.Sprintf("ONNX model bytes (%d)", len(s.data))
	}
	return "ONNX model " + s.path
}

// BackboneOptions tune NewNetworkFeatureAggregator.
type BackboneOptions struct {
	// Threads is the number of ONNX Runtime intra-op threads; 0 lets the runtime choose
	// (one per physical core).
	Threads int
	// InputName selects the image input; empty: the graph's only input.
	InputName string
}

// SetONNXRuntimeLibrary names the ONNX Runtime shared library to load. It must be called
// before the first backbone is created (otherwise it fails with ErrState unless it names
// the library already loaded). Without it the library is found through
// $PATCHCORE_ORT_LIBRARY, next to libpatchcore.so (or the executable), then by the system
// loader; when none loads, creating a backbone fails with ErrUnsupported.
func SetONNXRuntimeLibrary(path string) error {
	if err := ort.SetLibraryPath(path); err != nil {
		return ortError(err)
	}
	return nil
}

// ortError maps an error of the ONNX Runtime layer onto this package's error kinds.
func ortError(err error) error {
	kind := ErrBackend
	switch {
	case errors.Is(err, ort.ErrUnavailable):
		kind = ErrUnsupported
	case errors.Is(err, ort.ErrAlreadyLoaded), errors.Is(err, ort.ErrClosed):
		kind = ErrState
	case errors.Is(err, ort.ErrArgument):
		kind = ErrInvalidArgument
	}
	return fmt.Errorf("%w: %v", kind, err)
}

// NetworkFeatureAggregator is the reference's common.NetworkFeatureAggregator over an ONNX
// backbone: it runs the network on a batch of images and returns the feature maps of the
// requested layers, which are tensors of the graph named as in the ONNX file (graph
// outputs or any intermediate node output). The graph is cut after the requested layers,
// so nothing beyond them is evaluated, as in the reference.
//
// Forward, ForwardOrdered, FeatureDimensions and FeatureShapes may be called from several
// goroutines at once (ONNX Runtime runs concurrent requests on one session); Close waits
// for the calls in flight.
type NetworkFeatureAggregator struct {
	layers []string
	device ort.Device
	sha    string
	input  string
	// batch is the graph's fixed batch size, 0 when the batch dimension is dynamic.
	batch int
	// chw are the graph's fixed channel/height/width sizes, 0 where dynamic.
	chw  [3]int
	sess *ort.Session

	mu     sync.Mutex
	shapes map[[3]int][][3]int
}

// NewNetworkFeatureAggregator loads an ONNX backbone with exactly one float32 image input
// [B,C,H,W] (C = 3 or dynamic; B, H, W fixed or dynamic) and prepares it to return the
// named layers, in order, on device "cpu", "cuda" or "cuda:N" (a CUDA device needs a
// runtime with the CUDA execution provider; otherwise the error wraps ErrUnsupported).
//
// Errors: ErrInvalidArgument for unusable layers, input or options (an unknown layer's
// error lists the available ones); ErrIO when the file cannot be read; ErrFormat when the
// bytes are not an ONNX model; ErrUnsupported when no ONNX Runtime library loads (the
// error names every place tried) or the device is not available; ErrBackend when ONNX
// Runtime rejects the model.
func NewNetworkFeatureAggregator(backbone BackboneSource, layers []string, device string, opts BackboneOptions) (*NetworkFeatureAggregator, error) {
	if len(layers) == 0 {
		return nil, fmt.Errorf("%w: no layers requested", ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for _, l := range layers {
		if l == "" || seen[l] {
			return nil, fmt.Errorf("%w: layer names must be non-empty and distinct, got %q", ErrInvalidArgument, layers)
		}
		seen[l] = true
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("%w: negative thread count %d", ErrInvalidArgument, opts.Threads)
	}
	dev, err := ort.ParseDevice(device)
	if err != nil {
		return nil, ortError(err)
	}
	data, dir := backbone.data, ""
	if !backbone.isBytes {
		if backbone.path == "" {
			return nil, fmt.Errorf("%w: no backbone given", ErrInvalidArgument)
		}
		if data, err = os.ReadFile(backbone.path); err != nil {
			return nil, fmt.Errorf("%w: reading the backbone: %v", ErrIO, err)
		}
		dir = filepath.Dir(backbone.path)
	}
	model, err := onnxgraph.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, backbone, err)
	}
	a := &NetworkFeatureAggregator{layers: append([]string(nil), layers...), device: dev, shapes: map[[3]int][][3]int{}}
	if err := a.checkInput(model, opts.InputName, backbone); err != nil {
		return nil, err
	}
	if err := checkLayers(model, layers, backbone); err != nil {
		return nil, err
	}
	cut, err := model.SetOutputs(layers...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInternal, err) // every layer was checked above
	}
	sum := sha256.Sum256(data)
	a.sha = hex.EncodeToString(sum[:])
	a.sess, err = ort.NewSession(cut, []string{a.input}, layers, ort.Options{Threads: opts.Threads, Device: device, ExternalDataDir: dir})
	if err != nil {
		return nil, ortError(err)
	}
	// The file's bytes, their parse and the cut model (three times the weights) are
	// garbage now. Collect them and return the pages at once: otherwise the garbage
	// collector's next target is twice this peak and the heap keeps it for minutes.
	debug.FreeOSMemory()
	return a, nil
}

// checkInput selects the image input and records its fixed dimensions.
func (a *NetworkFeatureAggregator) checkInput(model *onnxgraph.Model, name string, src BackboneSource) error {
	var in onnxgraph.ValueInfo
	switch {
	case name != "":
		i := -1
		for k, v := range model.Inputs {
			if v.Name == name {
				i = k
			}
		}
		if i < 0 {
			return fmt.Errorf("%w: %s has no input %q (inputs: %s)", ErrInvalidArgument, src, name, describeValues(model.Inputs))
		}
		if len(model.Inputs) != 1 {
			return fmt.Errorf("%w: %s has %d inputs (%s); the backbone must take the image only", ErrInvalidArgument, src, len(model.Inputs), describeValues(model.Inputs))
		}
		in = model.Inputs[i]
	case len(model.Inputs) != 1:
		return fmt.Errorf("%w: %s has %d inputs (%s); the backbone must take exactly one image input", ErrInvalidArgument, src, len(model.Inputs), describeValues(model.Inputs))
	default:
		in = model.Inputs[0]
	}
	if !in.IsTensor || in.ElemType != onnxgraph.Float || !in.HasShape || len(in.Shape) != 4 {
		return fmt.Errorf("%w: %s: input %s must be a float32 tensor [batch,3,height,width]", ErrInvalidArgument, src, in)
	}
	fixed := func(d onnxgraph.Dim) (int, error) {
		if !d.Known {
			return 0, nil
		}
		if d.Value <= 0 || d.Value > 1<<30 {
			return 0, fmt.Errorf("%w: %s: input %s has dimension %d", ErrInvalidArgument, src, in, d.Value)
		}
		return int(d.Value), nil
	}
	var err error
	if a.batch, err = fixed(in.Shape[0]); err != nil {
		return err
	}
	for i := range a.chw {
		if a.chw[i], err = fixed(in.Shape[i+1]); err != nil {
			return err
		}
	}
	if a.chw[0] != 0 && a.chw[0] != 3 {
		return fmt.Errorf("%w: %s: input %s must have 3 channels", ErrInvalidArgument, src, in)
	}
	a.input = in.Name
	return nil
}

// checkLayers verifies that every layer is a tensor of the graph and, where the model
// declares its shape, a 4-D one.
func checkLayers(model *onnxgraph.Model, layers []string, src BackboneSource) error {
	var missing []string
	for _, l := range layers {
		if !model.Produced(l) && !model.IsOutput(l) {
			missing = append(missing, l)
			continue
		}
		if v, ok := model.Info(l); ok && v.IsTensor && v.HasShape && len(v.Shape) != 4 {
			return fmt.Errorf("%w: %s: layer %s is not a 4-D feature map [batch,channels,height,width]", ErrInvalidArgument, src, v)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	avail := model.NodeOutputs()
	const show = 200
	list := strings.Join(avail[:min(len(avail), show)], ", ")
	if len(avail) > show {
		list += fmt.Sprintf(", ... (%d more)", len(avail)-show)
	}
	return fmt.Errorf("%w: %s has no tensor named %q; available layers: %s", ErrInvalidArgument, src, missing, list)
}

func describeValues(vs []onnxgraph.ValueInfo) string {
	if len(vs) == 0 {
		return "none"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, "; ")
}

// Layers returns the layer names, in output order.
func (a *NetworkFeatureAggregator) Layers() []string { return append([]string(nil), a.layers...) }

// Device is the canonical device the backbone runs on: "cpu" or "cuda:N".
func (a *NetworkFeatureAggregator) Device() string { return a.device.String() }

// SHA256 is the lowercase hex SHA-256 of the backbone's ONNX bytes as given (the .onnx file
// itself, without any external-data files).
func (a *NetworkFeatureAggregator) SHA256() string { return a.sha }

// Forward runs the backbone on images [B,C,H,W] (any B ≥ 1) and returns the feature map
// [B,C_l,h_l,w_l] of every requested layer, keyed by layer name.
func (a *NetworkFeatureAggregator) Forward(images Tensor) (map[string]Tensor, error) {
	maps, err := a.ForwardOrdered(images)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Tensor, len(maps))
	for i, l := range a.layers {
		out[l] = maps[i]
	}
	return out, nil
}

// ForwardOrdered is Forward returning the feature maps in the order of the layers.
func (a *NetworkFeatureAggregator) ForwardOrdered(images Tensor) ([]Tensor, error) {
	if a == nil || a.sess == nil {
		return nil, fmt.Errorf("%w: the aggregator was not created by NewNetworkFeatureAggregator", ErrState)
	}
	if err := a.checkImages(images); err != nil {
		return nil, err
	}
	if err := images.CheckFinite("backbone input"); err != nil {
		return nil, err
	}
	b := images.Shape[0]
	if a.batch == 0 || a.batch == b {
		return a.run(images.Data, images.Shape)
	}
	// A fixed batch size other than B: run chunks of a.batch images, the last one padded
	// with zero images whose features are dropped.
	per := images.RowLen()
	chunkShape := append([]int{a.batch}, images.Shape[1:]...)
	var out []Tensor
	for start := 0; start < b; start += a.batch {
		n := min(a.batch, b-start)
		chunk := images.Data[start*per : (start+n)*per]
		if n < a.batch {
			chunk = append(make([]float32, 0, a.batch*per), chunk...)
			chunk = chunk[:a.batch*per]
		}
		maps, err := a.run(chunk, chunkShape)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]Tensor, len(maps))
			for i, m := range maps {
				out[i] = NewTensor(append([]int{b}, m.Shape[1:]...)...)
			}
		}
		for i, m := range maps {
			rl := m.RowLen()
			copy(out[i].Data[start*rl:(start+n)*rl], m.Data[:n*rl])
		}
	}
	return out, nil
}

// checkImages validates the input's shape against the graph's input.
func (a *NetworkFeatureAggregator) checkImages(images Tensor) error {
	if len(images.Shape) != 4 {
		return fmt.Errorf("%w: backbone input must be [B,C,H,W], got shape %v", ErrInvalidArgument, images.Shape)
	}
	n, err := CheckedSize(images.Shape)
	if err != nil {
		return err
	}
	if n != len(images.Data) {
		return fmt.Errorf("%w: backbone input shape %v needs %d values, got %d", ErrInvalidArgument, images.Shape, n, len(images.Data))
	}
	for i, d := range images.Shape {
		if d <= 0 {
			return fmt.Errorf("%w: backbone input shape %v has an empty dimension", ErrInvalidArgument, images.Shape)
		}
		if i > 0 && a.chw[i-1] != 0 && d != a.chw[i-1] {
			return fmt.Errorf("%w: backbone input shape %v does not fit the graph's fixed [C,H,W] = %v", ErrInvalidArgument, images.Shape, a.chw)
		}
	}
	return nil
}

// run evaluates the session on one batch and checks the outputs are [B,C,h,w].
func (a *NetworkFeatureAggregator) run(data []float32, shape []int) ([]Tensor, error) {
	s64 := make([]int64, len(shape))
	for i, d := range shape {
		s64[i] = int64(d)
	}
	res, err := a.sess.Run([]ort.Tensor{{Shape: s64, Data: data}})
	if err != nil {
		return nil, ortError(err)
	}
	out := make([]Tensor, len(res))
	for i, r := range res {
		if len(r.Shape) != 4 || r.Shape[0] != int64(shape[0]) {
			return nil, fmt.Errorf("%w: layer %q has shape %v for %d images; a layer must be a feature map [B,C,h,w]",
				ErrInvalidArgument, a.layers[i], r.Shape, shape[0])
		}
		dims := make([]int, 4)
		for k, d := range r.Shape {
			dims[k] = int(d)
		}
		t, err := TensorFrom(r.Data, dims...)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %q: %v", ErrBackend, a.layers[i], err)
		}
		out[i] = t
	}
	return out, nil
}

// FeatureShapes returns the [C,h,w] of every layer for images of c×h×w, from a dry run on
// an all-ones image as in the reference (results are cached per input size).
func (a *NetworkFeatureAggregator) FeatureShapes(c, h, w int) ([][3]int, error) {
	key := [3]int{c, h, w}
	a.mu.Lock()
	cached, ok := a.shapes[key]
	a.mu.Unlock()
	if ok {
		return append([][3]int(nil), cached...), nil
	}
	if c <= 0 || h <= 0 || w <= 0 {
		return nil, fmt.Errorf("%w: input size %dx%dx%d", ErrInvalidArgument, c, h, w)
	}
	n, err := CheckedSize([]int{c, h, w})
	if err != nil {
		return nil, err
	}
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	maps, err := a.ForwardOrdered(Tensor{Shape: []int{1, c, h, w}, Data: ones})
	if err != nil {
		return nil, err
	}
	shapes := make([][3]int, len(maps))
	for i, m := range maps {
		shapes[i] = [3]int{m.Shape[1], m.Shape[2], m.Shape[3]}
	}
	a.mu.Lock()
	a.shapes[key] = shapes
	a.mu.Unlock()
	return append([][3]int(nil), shapes...), nil
}

// FeatureDimensions returns the channel count of every layer for images of c×h×w
// (the reference's feature_dimensions).
func (a *NetworkFeatureAggregator) FeatureDimensions(c, h, w int) ([]int, error) {
	shapes, err := a.FeatureShapes(c, h, w)
	if err != nil {
		return nil, err
	}
	dims := make([]int, len(shapes))
	for i, s := range shapes {
		dims[i] = s[0]
	}
	return dims, nil
}

// Close releases the ONNX Runtime session, after the calls in flight finish. Later calls
// fail with ErrState; Close is idempotent.
func (a *NetworkFeatureAggregator) Close() {
	if a != nil && a.sess != nil {
		a.sess.Close()
	}
}
