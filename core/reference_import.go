package core

import (
	"bytes"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"github.com/libpatchcore/libpatchcore/internal/faiss"
	"github.com/libpatchcore/libpatchcore/internal/pickle"
)

// File names of a model saved by the reference's PatchCore.save_to_path.
const (
	ReferenceParamsFile = "patchcore_params.pkl"
	ReferenceIndexFile  = ScorerIndexFile
)

// ReferenceImportOptions describe what a reference model folder does not record.
type ReferenceImportOptions struct {
	// Prepend is the file-name prefix of an ensemble member, e.g. "Ensemble-1-3_".
	Prepend string
	// Backbone is the ONNX export of the backbone named in the params (the reference
	// reloads weights by name; they are not in the folder). Required.
	Backbone BackboneSource
	// Resize, Mean and Std of the reference's data transform (zero = 256 / ImageNet).
	Resize    int
	Mean, Std [3]float32
	// Device and Threads as in Config.
	Device  string
	Threads int
}

// ImportReferenceModel opens a model folder written by the reference implementation
// (amazon-science/patchcore-inspection): <prepend>patchcore_params.pkl (read without
// executing anything) and <prepend>nnscorer_search_index.faiss (an IndexFlatL2). The
// backbone must be given as ONNX with the layers named in the params as outputs.
func ImportReferenceModel(folder string, opts ReferenceImportOptions) (*Model, error) {
	if opts.Backbone.IsZero() {
		return nil, fmt.Errorf("%w: importing a reference model needs its backbone as ONNX", ErrInvalidArgument)
	}
	paramsPath := filepath.Join(folder, opts.Prepend+ReferenceParamsFile)
	raw, err := os.ReadFile(paramsPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIO, err)
	}
	v, err := pickle.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", paramsPath, err)
	}
	params, ok := v.(pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%w: %s does not hold a dict", ErrFormat, paramsPath)
	}
	p := referenceParams{dict: params, path: paramsPath}
	cfg := DefaultConfig()
	cfg.Backbone, cfg.Device, cfg.Threads = opts.Backbone, opts.Device, opts.Threads
	cfg.Sampler = "identity" // the bank is already sampled
	cfg.Layers = p.strings("layers_to_extract_from")
	shape := p.ints("input_shape")
	cfg.PretrainEmbedDim = p.int("pretrain_embed_dimension")
	cfg.TargetEmbedDim = p.int("target_embed_dimension")
	cfg.PatchSize = p.int("patchsize")
	stride := p.int("patchstride")
	cfg.NumNN = p.int("anomaly_scorer_num_nn")
	if p.err != nil {
		return nil, p.err
	}
	if len(shape) != 3 || shape[0] != 3 || shape[1] != shape[2] {
		return nil, fmt.Errorf("%w: %s: input_shape %v is not (3, S, S)", ErrFormat, paramsPath, shape)
	}
	if stride != 1 {
		return nil, fmt.Errorf("%w: %s: patchstride %d is not supported (the reference always uses 1)", ErrUnsupported, paramsPath, stride)
	}
	cfg.ImageSize = shape[1]
	cfg.Resize = opts.Resize
	if cfg.Resize == 0 {
		cfg.Resize = cfg.ImageSize * 8 / 7 // 224 -> 256, 320 -> 365 (the reference recipes use 366: pass it)
	}
	if opts.Mean != ([3]float32{}) || opts.Std != ([3]float32{}) {
		cfg.Mean, cfg.Std = opts.Mean, opts.Std
	}

	indexPath := filepath.Join(folder, opts.Prepend+ReferenceIndexFile)
	idx, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIO, err)
	}
	d, vectors, err := faiss.FlatVectors(idx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexPath, err)
	}
	if d != cfg.TargetEmbedDim || len(vectors) == 0 {
		return nil, fmt.Errorf("%w: %s holds %d-dimensional vectors, the params say %d", ErrFormat, indexPath, d, cfg.TargetEmbedDim)
	}

	m, err := NewModel(cfg)
	if err != nil {
		return nil, err
	}
	// The grid follows from the first layer's feature map at the crop size.
	gh, gw := m.layerDims[0][1], m.layerDims[0][2]
	m.mu.Lock()
	err = m.buildBank(vectors, gh, gw)
	m.mu.Unlock()
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// referenceParams reads typed values from the reference's params dict, keeping the first
// error.
type referenceParams struct {
	dict pickle.Dict
	path string
	err  error
}

func (p *referenceParams) get(key string) any {
	v, ok := p.dict.Get(key)
	if !ok && p.err == nil {
		p.err = fmt.Errorf("%w: %s has no %q", ErrFormat, p.path, key)
	}
	return v
}

func (p *referenceParams) fail(key string, v any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s: %q has unexpected value %v (%T)", ErrFormat, p.path, key, v, v)
	}
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int64:
		return int(x), true
	case int:
		return x, true
	case *big.Int:
		if x.IsInt64() && x.Int64() >= 0 && x.Int64() < 1<<31 {
			return int(x.Int64()), true
		}
	}
	return 0, false
}

func (p *referenceParams) int(key string) int {
	v := p.get(key)
	n, ok := toInt(v)
	if !ok && v != nil {
		p.fail(key, v)
	}
	return n
}

func (p *referenceParams) list(key string) []any {
	switch x := p.get(key).(type) {
	case []any:
		return x
	case pickle.Tuple:
		return x
	case nil:
		return nil
	default:
		p.fail(key, x)
		return nil
	}
}

func (p *referenceParams) ints(key string) []int {
	var out []int
	for _, e := range p.list(key) {
		n, ok := toInt(e)
		if !ok {
			p.fail(key, e)
		}
		out = append(out, n)
	}
	return out
}

func (p *referenceParams) strings(key string) []string {
	var out []string
	for _, e := range p.list(key) {
		s, ok := e.(string)
		if !ok {
			p.fail(key, e)
		}
		out = append(out, s)
	}
	return out
}
