// Package tfjs reads TensorFlow.js layers models, the format in which Keras networks are
// shipped to browsers: a model.json (Keras topology plus a weights manifest) and binary
// weight shards, here in the bundled form that npm packages such as nsfwjs use (each file
// wrapped in a JavaScript module, shards as base64 strings). Quantised weights are
// dequantised to float32 as w = min + scale*q (see decodeWeight for the rounding).
//
// Convert turns the convolutional trunk of such a model into an ONNX graph (NCHW, batch
// normalisation folded into the convolutions) for ONNX Runtime.
package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Model is a decoded TensorFlow.js layers model.
type Model struct {
	Name    string             // the Keras model's name
	Layers  []Layer            // in the order of the Keras config (a topological order)
	Weights map[string]*Weight // by manifest name, e.g. "block_1_expand/kernel"
}

// Layer is one Keras layer of a functional model.
type Layer struct {
	Name      string
	ClassName string         // Keras class, e.g. "Conv2D"
	Config    map[string]any // the layer's Keras config, as parsed
	Inbound   []string       // names of the layers whose outputs this layer consumes
}

// Weight is one dequantised weight tensor in Keras layout (e.g. a Conv2D kernel is
// [kh, kw, in, out]).
type Weight struct {
	Name  string
	Shape []int
	Data  []float32
}

// ShardReader returns the bytes of the weight shard named by a manifest path (e.g.
// "group1-shard1of1"); the caller decides whether that is a binary file or a bundled
// .min.js module (see DecodeShardModule).
type ShardReader func(path string) ([]byte, error)

// Parse decodes a model from its model.json value (the object with modelTopology and
// weightsManifest, as returned by ExtractExport or encoding/json) and its weight shards.
func Parse(modelJSON any, shards ShardReader) (*Model, error) {
	root, ok := modelJSON.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: tfjs model.json is not an object", errs.ErrFormat)
	}
	topology, ok := root["modelTopology"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: tfjs model.json has no modelTopology object", errs.ErrFormat)
	}
	// Keras saves {model_config: {class_name, config}}; some converters store the
	// model config directly.
	modelConfig, ok := topology["model_config"].(map[string]any)
	if !ok {
		modelConfig = topology
	}
	if cls, _ := modelConfig["class_name"].(string); cls != "Model" && cls != "Functional" {
		return nil, fmt.Errorf("%w: tfjs model class %q (only functional Keras models are supported)", errs.ErrUnsupported, cls)
	}
	cfg, ok := modelConfig["config"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: tfjs model topology has no config object", errs.ErrFormat)
	}
	m := &Model{Weights: map[string]*Weight{}}
	m.Name, _ = cfg["name"].(string)
	rawLayers, ok := cfg["layers"].([]any)
	if !ok || len(rawLayers) == 0 {
		return nil, fmt.Errorf("%w: tfjs model topology has no layers", errs.ErrFormat)
	}
	seen := map[string]bool{}
	for i, rl := range rawLayers {
		l, err := parseLayer(rl)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("%w: tfjs layer name %q used twice", errs.ErrFormat, l.Name)
		}
		for _, in := range l.Inbound {
			if !seen[in] {
				return nil, fmt.Errorf("%w: tfjs layer %q reads %q, which is not an earlier layer", errs.ErrFormat, l.Name, in)
			}
		}
		seen[l.Name] = true
		m.Layers = append(m.Layers, l)
	}
	manifest, ok := root["weightsManifest"].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: tfjs model.json has no weightsManifest", errs.ErrFormat)
	}
	for gi, g := range manifest {
		if err := m.decodeGroup(g, shards); err != nil {
			return nil, fmt.Errorf("weight group %d: %w", gi, err)
		}
	}
	return m, nil
}

func parseLayer(v any) (Layer, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Layer{}, fmt.Errorf("%w: tfjs layer is not an object", errs.ErrFormat)
	}
	var l Layer
	l.Name, _ = obj["name"].(string)
	l.ClassName, _ = obj["class_name"].(string)
	l.Config, _ = obj["config"].(map[string]any)
	if l.Name == "" || l.ClassName == "" || l.Config == nil {
		return Layer{}, fmt.Errorf("%w: tfjs layer lacks name, class_name or config", errs.ErrFormat)
	}
	nodes, _ := obj["inbound_nodes"].([]any)
	switch len(nodes) {
	case 0:
		return l, nil
	case 1:
	default:
		return Layer{}, fmt.Errorf("%w: tfjs layer %q is called %d times (shared layers are not supported)", errs.ErrUnsupported, l.Name, len(nodes))
	}
	conns, ok := nodes[0].([]any)
	if !ok {
		return Layer{}, fmt.Errorf("%w: tfjs layer %q: inbound node is not a list", errs.ErrFormat, l.Name)
	}
	for _, c := range conns {
		// Each connection is [layer_name, node_index, tensor_index, kwargs].
		conn, ok := c.([]any)
		if !ok || len(conn) < 3 {
			return Layer{}, fmt.Errorf("%w: tfjs layer %q: malformed inbound connection", errs.ErrFormat, l.Name)
		}
		name, _ := conn[0].(string)
		nodeIdx, _ := conn[1].(float64)
		tensorIdx, _ := conn[2].(float64)
		if name == "" {
			return Layer{}, fmt.Errorf("%w: tfjs layer %q: inbound connection without a layer name", errs.ErrFormat, l.Name)
		}
		if nodeIdx != 0 || tensorIdx != 0 {
			return Layer{}, fmt.Errorf("%w: tfjs layer %q reads output %v of call %v of %q (only single-output, single-call layers are supported)",
				errs.ErrUnsupported, l.Name, tensorIdx, nodeIdx, name)
		}
		l.Inbound = append(l.Inbound, name)
	}
	return l, nil
}

// decodeGroup decodes one weightsManifest entry: its shards, concatenated in order,
// hold its weights back to back.
func (m *Model) decodeGroup(g any, shards ShardReader) error {
	group, ok := g.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: tfjs weight group is not an object", errs.ErrFormat)
	}
	paths, _ := group["paths"].([]any)
	weights, _ := group["weights"].([]any)
	if len(paths) == 0 {
		return fmt.Errorf("%w: tfjs weight group has no shard paths", errs.ErrFormat)
	}
	var buf []byte
	for _, p := range paths {
		path, _ := p.(string)
		if path == "" {
			return fmt.Errorf("%w: tfjs weight group has an empty shard path", errs.ErrFormat)
		}
		b, err := shards(path)
		if err != nil {
			return err
		}
		buf = append(buf, b...)
	}
	off := 0
	for _, wv := range weights {
		w, n, err := decodeWeight(wv, buf[off:])
		if err != nil {
			return err
		}
		if _, dup := m.Weights[w.Name]; dup {
			return fmt.Errorf("%w: tfjs weight %q listed twice", errs.ErrFormat, w.Name)
		}
		m.Weights[w.Name] = w
		off += n
	}
	if off != len(buf) {
		return fmt.Errorf("%w: tfjs weight group: shards hold %d bytes, the manifest describes %d", errs.ErrFormat, len(buf), off)
	}
	return nil
}

// decodeWeight decodes the weight described by spec from the start of buf and returns
// it with the number of bytes it occupies.
func decodeWeight(spec any, buf []byte) (*Weight, int, error) {
	obj, ok := spec.(map[string]any)
	if !ok {
		return nil, 0, fmt.Errorf("%w: tfjs weight entry is not an object", errs.ErrFormat)
	}
	w := &Weight{}
	w.Name, _ = obj["name"].(string)
	if w.Name == "" {
		return nil, 0, fmt.Errorf("%w: tfjs weight entry without a name", errs.ErrFormat)
	}
	shape, ok := obj["shape"].([]any)
	if !ok {
		return nil, 0, fmt.Errorf("%w: tfjs weight %q has no shape", errs.ErrFormat, w.Name)
	}
	count := 1
	for _, d := range shape {
		f, ok := d.(float64)
		if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 || (f > 0 && count > math.MaxInt32/int(f)) {
			return nil, 0, fmt.Errorf("%w: tfjs weight %q has a bad shape %v", errs.ErrFormat, w.Name, shape)
		}
		w.Shape = append(w.Shape, int(f))
		count *= int(f)
	}
	if dtype, _ := obj["dtype"].(string); dtype != "float32" {
		return nil, 0, fmt.Errorf("%w: tfjs weight %q has dtype %q (only float32 is supported)", errs.ErrUnsupported, w.Name, dtype)
	}
	w.Data = make([]float32, count)
	q, quantized := obj["quantization"].(map[string]any)
	if !quantized {
		if len(buf) < 4*count {
			return nil, 0, truncated(w.Name)
		}
		for i := range w.Data {
			w.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		return w, 4 * count, nil
	}
	qtype, _ := q["dtype"].(string)
	minV, okMin := q["min"].(float64)
	scale, okScale := q["scale"].(float64)
	if !okMin || !okScale {
		return nil, 0, fmt.Errorf("%w: tfjs weight %q: %s quantization without min and scale", errs.ErrFormat, w.Name, qtype)
	}
	// Dequantise in float32 arithmetic, as the reference rebuild of the model did:
	// w = float32(q)*float32(scale) + float32(min), each step rounded (the explicit
	// conversion keeps the compiler from fusing it into an FMA). TensorFlow.js itself
	// evaluates q*scale + min in float64 before rounding, which differs by at most an
	// ulp per weight but drifts the block_10 feature maps by about 2e-5 (relative).
	s32, m32 := float32(scale), float32(minV)
	switch qtype {
	case "uint8":
		if len(buf) < count {
			return nil, 0, truncated(w.Name)
		}
		for i := range w.Data {
			w.Data[i] = float32(float32(buf[i])*s32) + m32
		}
		return w, count, nil
	case "uint16":
		if len(buf) < 2*count {
			return nil, 0, truncated(w.Name)
		}
		for i := range w.Data {
			w.Data[i] = float32(float32(binary.LittleEndian.Uint16(buf[2*i:]))*s32) + m32
		}
		return w, 2 * count, nil
	}
	return nil, 0, fmt.Errorf("%w: tfjs weight %q: quantization dtype %q (uint8 and uint16 are supported)", errs.ErrUnsupported, w.Name, qtype)
}

func truncated(name string) error {
	return fmt.Errorf("%w: tfjs weight shards end inside weight %q", errs.ErrFormat, name)
}

// DecodeShardModule returns the binary contents of a bundled weight shard: a
// JavaScript module that exports the shard as a base64 string.
func DecodeShardModule(src []byte) ([]byte, error) {
	v, err := ExtractExport(src)
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%w: weight shard module does not export a string", errs.ErrFormat)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: weight shard module: bad base64: %v", errs.ErrFormat, err)
	}
	return b, nil
}
