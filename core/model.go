package core

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/libpatchcore/libpatchcore/internal/offheap"
	"github.com/libpatchcore/libpatchcore/internal/ort"
)

// Version is the library version, stamped at build time with -X.
var Version = "0.1.0-dev"

// Config holds every setting of a PatchCore model. Zero values mean "the reference's
// default" where one exists; DefaultConfig spells them out.
type Config struct {
	// Backbone is the ONNX backbone: a file path (BackboneFromFile) or bytes
	// (BackboneFromBytes). Leave it empty for a features-only model whose host runs the
	// backbone itself (FitFeatures / PredictFeatures).
	Backbone BackboneSource
	// Layers are the backbone outputs (or intermediate tensors) to extract, in network
	// order; the first defines the patch grid.
	Layers []string
	// Resize is the shorter-side size images are resized to; ImageSize the centre crop.
	Resize, ImageSize int
	// Mean and Std normalise the [0,1] pixels per channel (RGB) for the backbone.
	Mean, Std [3]float32
	// PretrainEmbedDim and TargetEmbedDim are the MeanMapper and Aggregator sizes.
	PretrainEmbedDim, TargetEmbedDim int
	// PatchSize is the local neighbourhood (3 in the reference); the stride is 1.
	PatchSize int
	// Sampler is "identity", "random", "greedy_coreset" or "approx_greedy_coreset".
	Sampler string
	// Percentage is the coreset fraction in (0,1) (ignored by "identity").
	Percentage float64
	// NumNN is k, the number of nearest bank entries averaged per patch.
	NumNN int
	// NNMethod is "exact" (FAISS IndexFlatL2) or "ivfpq" (IVF512,PQ64, nprobe 1).
	NNMethod string
	// Seed makes the samplers deterministic.
	Seed uint64
	// Threads bounds the library's own parallelism (0 = all cores).
	Threads int
	// Device is "cpu" or "cuda"/"cuda:N" for the backbone.
	Device string
	// BatchSize is the number of images per backbone call during Fit and Predict.
	BatchSize int
	// EmbedBackbone stores the backbone's bytes inside the model file.
	EmbedBackbone bool
	// Sigma is the Gaussian smoothing of the anomaly maps (4 in the reference).
	Sigma float64
}

// DefaultConfig returns the reference's settings for a WRN50-like backbone at 224:
// resize 256, crop 224, ImageNet normalisation, 1024/1024 dims, patch size 3,
// approximate greedy coreset 10%, k = 1, exact search, sigma 4.
func DefaultConfig() Config {
	return Config{
		Resize: 256, ImageSize: 224,
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225},
		PretrainEmbedDim: 1024, TargetEmbedDim: 1024, PatchSize: 3,
		Sampler: "approx_greedy_coreset", Percentage: 0.1,
		NumNN: 1, NNMethod: "exact", Device: "cpu", BatchSize: 8, Sigma: 4,
	}
}

// Validate checks the settings that do not need the backbone.
func (c *Config) Validate() error {
	switch {
	case c.ImageSize <= 0 || c.Resize < c.ImageSize:
		return fmt.Errorf("%w: need 0 < imagesize <= resize, got resize %d imagesize %d", ErrInvalidArgument, c.Resize, c.ImageSize)
	case c.ImageSize > 4096:
		return fmt.Errorf("%w: imagesize %d exceeds the limit of 4096", ErrInvalidArgument, c.ImageSize)
	case c.PretrainEmbedDim <= 0 || c.TargetEmbedDim <= 0:
		return fmt.Errorf("%w: embedding dimensions must be positive, got %d/%d", ErrInvalidArgument, c.PretrainEmbedDim, c.TargetEmbedDim)
	case c.PatchSize <= 0 || c.PatchSize%2 == 0:
		return fmt.Errorf("%w: patchsize must be odd and positive, got %d", ErrInvalidArgument, c.PatchSize)
	case c.NumNN <= 0:
		return fmt.Errorf("%w: num_nn must be positive, got %d", ErrInvalidArgument, c.NumNN)
	case c.NNMethod != "exact" && c.NNMethod != "ivfpq":
		return fmt.Errorf("%w: nn_method %q (want \"exact\" or \"ivfpq\")", ErrInvalidArgument, c.NNMethod)
	case c.Threads < 0 || c.BatchSize < 0:
		return fmt.Errorf("%w: threads and batch size must not be negative", ErrInvalidArgument)
	case len(c.Layers) == 0:
		return fmt.Errorf("%w: at least one layer is needed", ErrInvalidArgument)
	case !(c.Sigma >= 0) || c.Sigma > 64:
		return fmt.Errorf("%w: sigma %v out of range [0, 64]", ErrInvalidArgument, c.Sigma)
	}
	for i := range 3 {
		if !(c.Std[i] > 0) || math.IsNaN(float64(c.Mean[i])) || math.IsInf(float64(c.Mean[i]), 0) || math.IsInf(float64(c.Std[i]), 0) {
			return fmt.Errorf("%w: mean/std channel %d invalid (%v/%v)", ErrInvalidArgument, i, c.Mean[i], c.Std[i])
		}
	}
	if _, err := SamplerByName(c.Sampler, c.Percentage, c.Seed); err != nil {
		return err
	}
	if _, err := ort.ParseDevice(c.Device); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return nil
}

func (c *Config) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.GOMAXPROCS(0)
}

func (c *Config) batchSize() int {
	if c.BatchSize > 0 {
		return c.BatchSize
	}
	return 8
}

// Model is a PatchCore anomaly detector: backbone, patch embedding, memory bank,
// nearest-neighbour scorer and segmentor. Predict, PredictFeatures and Segment may be
// called concurrently from many goroutines; Fit, Load-style mutations and Close take the
// model exclusively (concurrent callers wait).
type Model struct {
	mu          sync.RWMutex
	cfg         Config
	backbone    *NetworkFeatureAggregator
	bbBytes     []byte // the backbone's bytes when EmbedBackbone is set
	bbName      string
	bbSHA       string
	layerDims   [][3]int // per layer C, h, w at ImageSize (from the backbone or the first fit)
	scorer      *NearestNeighbourScorer
	bank        Tensor
	gridH       int
	gridW       int
	calib       Calibration
	pending     offheap.Floats // embeddings added since the last fit, outside the Go heap
	pendingGrid [2]int
	fitted      bool
	closed      bool
	poisoned    atomic.Pointer[error] // set by a recovered panic; the model refuses all calls
}

// NewModel validates cfg and opens the backbone when one is given.
func NewModel(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Layers = append([]string(nil), cfg.Layers...)
	m := &Model{cfg: cfg}
	if dev, _ := ort.ParseDevice(cfg.Device); dev.CUDA && cfg.Backbone.IsZero() {
		return nil, fmt.Errorf("%w: device %q: a features-only model runs its embedding and search on the CPU in this build (no GPU support)", ErrUnsupported, cfg.Device)
	}
	if !cfg.Backbone.IsZero() {
		bb, err := NewNetworkFeatureAggregator(cfg.Backbone, cfg.Layers, cfg.Device, BackboneOptions{Threads: cfg.threads()})
		if err != nil {
			return nil, err
		}
		shapes, err := bb.FeatureShapes(3, cfg.ImageSize, cfg.ImageSize)
		if err != nil {
			bb.Close()
			return nil, err
		}
		m.backbone, m.layerDims = bb, shapes
		m.bbSHA, m.bbName = bb.SHA256(), cfg.Backbone.Name()
		if cfg.EmbedBackbone {
			b, err := cfg.Backbone.Bytes()
			if err != nil {
				bb.Close()
				return nil, err
			}
			m.bbBytes = b
		}
	}
	return m, nil
}

// Config returns a copy of the model's settings.
func (m *Model) Config() Config {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := m.cfg
	c.Layers = append([]string(nil), c.Layers...)
	return c
}

// Fitted reports whether the model has a memory bank.
func (m *Model) Fitted() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fitted
}

// BankSize returns the memory bank's rows and dimension (0, 0 before fitting).
func (m *Model) BankSize() (rows, dim int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.fitted {
		return 0, 0
	}
	return m.bank.Shape[0], m.bank.Shape[1]
}

// Grid returns the patch grid (rows, columns) of one image (0, 0 before it is known).
func (m *Model) Grid() (h, w int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.gridH, m.gridW
}

// Close releases the backbone session and the search index. Later calls fail with ErrState.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.fitted = false
	m.pending.Free()
	if m.scorer != nil {
		m.scorer.Close()
		m.scorer = nil
	}
	if m.backbone != nil {
		m.backbone.Close()
		m.backbone = nil
	}
	return nil
}

// usable returns an error when the model cannot serve a call at all.
func (m *Model) usable() error {
	if m.closed {
		return fmt.Errorf("%w: model is closed", ErrState)
	}
	if p := m.poisoned.Load(); p != nil {
		return fmt.Errorf("%w: model is unusable after an earlier internal error: %v", ErrState, *p)
	}
	return nil
}

// guard turns a panic in the calling goroutine into ErrInternal, and poisons the model
// on any internal error. Call it deferred from every exported method.
func (m *Model) guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrInternal, r)
	}
	if errors.Is(*err, ErrInternal) {
		m.poisoned.CompareAndSwap(nil, err)
	}
}

// embedConfig is the embedding configuration of the model.
func (m *Model) embedConfig() EmbedConfig {
	return EmbedConfig{PatchSize: m.cfg.PatchSize, Stride: 1, PretrainEmbedDim: m.cfg.PretrainEmbedDim, TargetEmbedDim: m.cfg.TargetEmbedDim}
}

// checkLayers validates host-provided per-layer feature maps of one batch and, once the
// shapes are known, that they match the model's.
func (m *Model) checkLayers(layers []Tensor) (batch int, err error) {
	if len(layers) != len(m.cfg.Layers) {
		return 0, fmt.Errorf("%w: got %d feature layers, the model has %d (%v)", ErrInvalidArgument, len(layers), len(m.cfg.Layers), m.cfg.Layers)
	}
	for i, l := range layers {
		if len(l.Shape) != 4 {
			return 0, fmt.Errorf("%w: layer %q must be [B,C,H,W], got shape %v", ErrInvalidArgument, m.cfg.Layers[i], l.Shape)
		}
		n, err := CheckedSize(l.Shape)
		if err != nil {
			return 0, err
		}
		if n != len(l.Data) || n == 0 {
			return 0, fmt.Errorf("%w: layer %q has shape %v but %d values", ErrInvalidArgument, m.cfg.Layers[i], l.Shape, len(l.Data))
		}
		if i == 0 {
			batch = l.Shape[0]
		} else if l.Shape[0] != batch {
			return 0, fmt.Errorf("%w: layer %q has batch %d, layer %q has %d", ErrInvalidArgument, m.cfg.Layers[i], l.Shape[0], m.cfg.Layers[0], batch)
		}
		if m.layerDims != nil {
			want := m.layerDims[i]
			if l.Shape[1] != want[0] || l.Shape[2] != want[1] || l.Shape[3] != want[2] {
				return 0, fmt.Errorf("%w: layer %q has shape [%d,%d,%d] per image, the model expects %v", ErrInvalidArgument, m.cfg.Layers[i], l.Shape[1], l.Shape[2], l.Shape[3], want)
			}
		}
		if err := l.CheckFinite("feature layer " + m.cfg.Layers[i]); err != nil {
			return 0, err
		}
	}
	return batch, nil
}

// rememberLayerDims records the per-image layer shapes from the first batch seen.
func (m *Model) rememberLayerDims(layers []Tensor) {
	if m.layerDims != nil {
		return
	}
	m.layerDims = make([][3]int, len(layers))
	for i, l := range layers {
		m.layerDims[i] = [3]int{l.Shape[1], l.Shape[2], l.Shape[3]}
	}
}
