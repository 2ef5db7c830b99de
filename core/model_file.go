package core

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/libpatchcore/libpatchcore/internal/modelfile"
)

// Section tags of a model file.
const (
	tagManifest = "MANI" // JSON manifest
	tagBank     = "BANK" // memory bank, float32 little-endian [rows, dim]
	tagIndex    = "FIDX" // trained FAISS index (IVF-PQ models only), FAISS's own format
	tagBackbone = "ONNX" // the backbone's ONNX bytes (optional)
)

// manifest records every setting needed to rebuild a model, in the model file.
type manifest struct {
	Format         string      `json:"format"`
	LibraryVersion string      `json:"library_version"`
	Backbone       bbManifest  `json:"backbone"`
	Layers         []string    `json:"layers"`
	LayerShapes    [][3]int    `json:"layer_shapes"`
	Resize         int         `json:"resize"`
	ImageSize      int         `json:"imagesize"`
	Mean           [3]float32  `json:"mean"`
	Std            [3]float32  `json:"std"`
	PretrainDim    int         `json:"pretrain_embed_dimension"`
	TargetDim      int         `json:"target_embed_dimension"`
	PatchSize      int         `json:"patchsize"`
	PatchStride    int         `json:"patchstride"`
	Grid           [2]int      `json:"grid"`
	Sampler        string      `json:"sampler"`
	Percentage     float64     `json:"percentage"`
	Seed           uint64      `json:"seed"`
	NumNN          int         `json:"num_nn"`
	NNMethod       string      `json:"nn_method"`
	Distance       string      `json:"distance"`
	Sigma          float64     `json:"sigma"`
	Segmentation   string      `json:"segmentation"`
	BankRows       int         `json:"bank_rows"`
	Calibration    Calibration `json:"calibration"`
}

type bbManifest struct {
	File     string `json:"file,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Embedded bool   `json:"embedded"`
}

const manifestFormat = "libpatchcore-model"

// LoadOptions control how a model file is opened.
type LoadOptions struct {
	// BackbonePath overrides the backbone recorded in the manifest (its sha256 must match).
	BackbonePath string
	// Device and Threads as in Config.
	Device  string
	Threads int
}

// MarshalBinary serialises a fitted model into the model file format.
func (m *Model) MarshalBinary() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.readyToPredict(); err != nil {
		return nil, err
	}
	man := manifest{
		Format: manifestFormat, LibraryVersion: Version,
		Backbone: bbManifest{File: m.bbName, SHA256: m.bbSHA, Embedded: m.bbBytes != nil},
		Layers:   m.cfg.Layers, LayerShapes: m.layerDims,
		Resize: m.cfg.Resize, ImageSize: m.cfg.ImageSize, Mean: m.cfg.Mean, Std: m.cfg.Std,
		PretrainDim: m.cfg.PretrainEmbedDim, TargetDim: m.cfg.TargetEmbedDim,
		PatchSize: m.cfg.PatchSize, PatchStride: 1, Grid: [2]int{m.gridH, m.gridW},
		Sampler: m.cfg.Sampler, Percentage: m.cfg.Percentage, Seed: m.cfg.Seed,
		NumNN: m.cfg.NumNN, NNMethod: m.cfg.NNMethod, Distance: "squared_l2",
		Sigma: m.cfg.Sigma, Segmentation: "bilinear(align_corners=false)+gaussian(reflect,truncate=4)",
		BankRows: m.bank.Shape[0], Calibration: m.calib,
	}
	js, err := json.MarshalIndent(man, "", " ")
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrInternal, err)
	}
	bank := make([]byte, 4*len(m.bank.Data))
	for i, v := range m.bank.Data {
		binary.LittleEndian.PutUint32(bank[4*i:], math.Float32bits(v))
	}
	sections := []modelfile.Section{{Tag: tagManifest, Payload: js}, {Tag: tagBank, Payload: bank}}
	if m.cfg.NNMethod == "ivfpq" {
		idx, err := m.scorer.NN().Serialize()
		if err != nil {
			return nil, err
		}
		sections = append(sections, modelfile.Section{Tag: tagIndex, Payload: idx})
	}
	if m.bbBytes != nil {
		sections = append(sections, modelfile.Section{Tag: tagBackbone, Payload: m.bbBytes})
	}
	return modelfile.Encode(sections)
}

// Save writes the model file atomically: path holds either the previous file or the
// complete new one, whatever happens during the write.
func (m *Model) Save(path string) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := modelfile.WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("%w: saving model to %s: %v", ErrIO, path, err)
	}
	return nil
}

// LoadModel opens a model file. The backbone is taken from the file when embedded,
// otherwise from opts.BackbonePath or the manifest's file name (relative names are
// resolved against the model file's directory); its sha256 must match the manifest.
func LoadModel(path string, opts LoadOptions) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading model %s: %v", ErrIO, path, err)
	}
	m, err := UnmarshalModel(b, filepath.Dir(path), opts)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

// UnmarshalModel opens a model from bytes in the model file format. baseDir resolves a
// relative backbone file name from the manifest ("" = current directory).
func UnmarshalModel(b []byte, baseDir string, opts LoadOptions) (*Model, error) {
	_, sections, err := modelfile.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	js, ok := modelfile.Find(sections, tagManifest)
	if !ok {
		return nil, fmt.Errorf("%w: model file has no manifest", ErrFormat)
	}
	var man manifest
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	if man.Format != manifestFormat {
		return nil, fmt.Errorf("%w: manifest format %q is not %q", ErrFormat, man.Format, manifestFormat)
	}
	cfg := Config{
		Layers: man.Layers, Resize: man.Resize, ImageSize: man.ImageSize, Mean: man.Mean, Std: man.Std,
		PretrainEmbedDim: man.PretrainDim, TargetEmbedDim: man.TargetDim, PatchSize: man.PatchSize,
		Sampler: man.Sampler, Percentage: man.Percentage, Seed: man.Seed, NumNN: man.NumNN,
		NNMethod: man.NNMethod, Sigma: man.Sigma, Device: opts.Device, Threads: opts.Threads,
	}
	if cfg.Device == "" {
		cfg.Device = "cpu"
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: manifest settings: %v", ErrFormat, err)
	}
	if man.PatchStride != 1 || man.Distance != "squared_l2" || len(man.LayerShapes) != len(man.Layers) ||
		man.Grid[0] <= 0 || man.Grid[1] <= 0 || man.BankRows <= 0 || man.BankRows < man.NumNN {
		return nil, fmt.Errorf("%w: manifest is inconsistent (stride %d, distance %q, %d layer shapes for %d layers, grid %v, %d bank rows, k %d)",
			ErrFormat, man.PatchStride, man.Distance, len(man.LayerShapes), len(man.Layers), man.Grid, man.BankRows, man.NumNN)
	}
	// The bank's size is checked by division: 4 * rows * dim can wrap around in 64 bits
	// (e.g. 4 * 2^40 * 2^22 = 2^64 = 0) and would let an empty section pass for a huge bank.
	bankBytes, ok := modelfile.Find(sections, tagBank)
	if n := uint64(len(bankBytes)); !ok || n%4 != 0 || n/4%uint64(man.TargetDim) != 0 || n/4/uint64(man.TargetDim) != uint64(man.BankRows) {
		return nil, fmt.Errorf("%w: memory bank section missing or not %d x %d float32", ErrFormat, man.BankRows, man.TargetDim)
	}
	bank := NewTensor(man.BankRows, man.TargetDim)
	for i := range bank.Data {
		bank.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(bankBytes[4*i:]))
	}
	if err := bank.CheckFinite("memory bank"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}

	// The backbone: embedded, given, or the manifest's file next to the model.
	if bbBytes, ok := modelfile.Find(sections, tagBackbone); ok {
		cfg.Backbone = BackboneFromBytes(append([]byte(nil), bbBytes...))
		cfg.EmbedBackbone = true
	} else if opts.BackbonePath != "" {
		cfg.Backbone = BackboneFromFile(opts.BackbonePath)
	} else if man.Backbone.File != "" {
		// Save records the backbone's base name, and it is only ever looked up next to
		// the model. Any other name is refused before it is opened: a crafted file must
		// not make the host read another path (/dev/zero would never end).
		p := man.Backbone.File
		if p != filepath.Base(p) || p == "." || p == ".." || filepath.IsAbs(p) {
			return nil, fmt.Errorf("%w: manifest names the backbone %q, not a file name", ErrFormat, p)
		}
		cfg.Backbone = BackboneFromFile(filepath.Join(baseDir, p))
	}
	if !cfg.Backbone.IsZero() && man.Backbone.SHA256 != "" {
		got, err := cfg.Backbone.SHA256()
		if err != nil {
			return nil, err
		}
		if got != man.Backbone.SHA256 {
			return nil, fmt.Errorf("%w: backbone %s has sha256 %s, the model was fitted with %s", ErrInvalidArgument, cfg.Backbone.Name(), got, man.Backbone.SHA256)
		}
	}
	m, err := NewModel(cfg)
	if err != nil {
		return nil, err
	}
	if man.Backbone.File != "" {
		m.bbName = man.Backbone.File
	}
	if m.layerDims != nil {
		for i, s := range man.LayerShapes {
			if m.layerDims[i] != s {
				m.Close()
				return nil, fmt.Errorf("%w: backbone layer %q gives %v, the model was fitted on %v", ErrInvalidArgument, man.Layers[i], m.layerDims[i], s)
			}
		}
	}
	m.layerDims = man.LayerShapes
	m.bbSHA = man.Backbone.SHA256
	scorer, err := m.newScorer()
	if err == nil {
		if idx, ok := modelfile.Find(sections, tagIndex); ok {
			err = scorer.NN().Deserialize(idx)
			if err == nil && (scorer.NN().Size() != man.BankRows || scorer.NN().Dim() != man.TargetDim) {
				err = fmt.Errorf("%w: stored index holds %d x %d, the bank is %d x %d", ErrFormat, scorer.NN().Size(), scorer.NN().Dim(), man.BankRows, man.TargetDim)
			}
		} else if man.NNMethod == "ivfpq" {
			err = fmt.Errorf("%w: IVF-PQ model without its index section", ErrFormat)
		} else {
			err = scorer.Fit([]Tensor{bank})
		}
	}
	if err != nil {
		if scorer != nil {
			scorer.Close()
		}
		m.Close()
		if errors.Is(err, ErrFormat) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: memory bank: %v", ErrFormat, err)
	}
	m.scorer, m.bank, m.gridH, m.gridW, m.calib, m.fitted = scorer, bank, man.Grid[0], man.Grid[1], man.Calibration, true
	return m, nil
}
