package core

import (
	"fmt"

	"github.com/libpatchcore/libpatchcore/internal/ort"
)

// ImageSource yields the images of a fit or predict run one at a time, so that a large
// training set never has to be decoded into memory at once.
type ImageSource interface {
	// Len is the number of images.
	Len() int
	// Image returns image i (0 <= i < Len()).
	Image(i int) (Image, error)
}

// ImageSlice is an ImageSource over images already in memory.
type ImageSlice []Image

// Len is the number of images.
func (s ImageSlice) Len() int { return len(s) }

// Image returns image i.
func (s ImageSlice) Image(i int) (Image, error) { return s[i], nil }

// ImageFiles is an ImageSource that decodes PNG/JPEG files on demand.
type ImageFiles []string

// Len is the number of files.
func (s ImageFiles) Len() int { return len(s) }

// Image decodes file i.
func (s ImageFiles) Image(i int) (Image, error) { return LoadImage(s[i]) }

// Progress is called after each batch with the number of images done and the total.
type Progress func(done, total int)

// Fit builds the memory bank from good images: AddImages followed by FinishFit.
func (m *Model) Fit(images ImageSource, progress Progress) error {
	if err := m.AddImages(images, progress); err != nil {
		return err
	}
	return m.FinishFit()
}

// AddImages adds good training images to the pending training set: each batch is
// preprocessed, run through the backbone and embedded at once, and only the embeddings
// are kept. FinishFit turns the pending set into the memory bank.
func (m *Model) AddImages(images ImageSource, progress Progress) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.guard(&err)
	if err := m.usable(); err != nil {
		return err
	}
	if m.backbone == nil {
		return fmt.Errorf("%w: the model has no backbone; add host-computed feature maps instead", ErrState)
	}
	n := images.Len()
	if n == 0 {
		return fmt.Errorf("%w: no training images", ErrInvalidArgument)
	}
	// The C heap keeps what the batches freed mapped until told otherwise, and the coreset
	// that follows is the fit's other memory peak.
	defer ort.ReleaseFreedMemory()
	before := m.pending.Len()
	err = m.forEachBatch(images, func(start int, layers []Tensor) error {
		if err := m.appendPending(layers, n-start); err != nil {
			return err
		}
		if progress != nil {
			progress(start+layers[0].Shape[0], n)
		}
		return nil
	})
	if err != nil {
		m.pending.Truncate(before) // all or nothing
	}
	return err
}

// AddFeatures adds host-computed feature maps of good images to the pending training set:
// layers[i] is [N, C_i, H_i, W_i] for the model's i-th layer.
func (m *Model) AddFeatures(layers []Tensor) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.guard(&err)
	if err := m.usable(); err != nil {
		return err
	}
	if _, err := m.checkLayers(layers); err != nil {
		return err
	}
	return m.appendPending(layers, layers[0].Shape[0])
}

// FitFeatures builds the memory bank from host-computed feature maps: AddFeatures
// followed by FinishFit.
func (m *Model) FitFeatures(layers []Tensor) error {
	if err := m.AddFeatures(layers); err != nil {
		return err
	}
	return m.FinishFit()
}

// FinishFit samples the pending embeddings into the memory bank and indexes it; the
// pending set is cleared. On error the model keeps its previous bank.
func (m *Model) FinishFit() (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.guard(&err)
	if err := m.usable(); err != nil {
		return err
	}
	if m.pending.Len() == 0 {
		return fmt.Errorf("%w: no training images or features were added", ErrState)
	}
	if err := m.buildBank(m.pending.Data(), m.pendingGrid[0], m.pendingGrid[1]); err != nil {
		return err
	}
	m.pending.Free()
	m.pendingGrid = [2]int{}
	return nil
}

// appendPending embeds one batch straight into the pending set; remaining is the number
// of images still to come including this batch, so that the pending buffer grows once to
// its final size instead of doubling. The embeddings dominate a fit's memory: they live
// outside the Go heap (not counted twice by the garbage collector's growth target) and
// are written there without an intermediate copy. Lock held.
func (m *Model) appendPending(layers []Tensor, remaining int) error {
	if len(layers) == 0 || len(layers[0].Shape) != 4 {
		return fmt.Errorf("%w: feature maps must be [B,C,H,W]", ErrInvalidArgument)
	}
	cfg := m.embedConfig()
	pm := PatchMaker{PatchSize: cfg.PatchSize, Stride: cfg.Stride}
	gh, gw, err := pm.Grid(layers[0].Shape[2], layers[0].Shape[3])
	if err != nil {
		return err
	}
	if m.pending.Len() > 0 && (gh != m.pendingGrid[0] || gw != m.pendingGrid[1]) {
		return fmt.Errorf("%w: feature maps give a %dx%d patch grid, earlier ones %dx%d", ErrInvalidArgument, gh, gw, m.pendingGrid[0], m.pendingGrid[1])
	}
	need, err := CheckedSize([]int{remaining, gh, gw, cfg.TargetEmbedDim})
	if err != nil {
		return err
	}
	if err := m.pending.Reserve(need); err != nil {
		return fmt.Errorf("keeping the embeddings of %d more images: %w", remaining, err)
	}
	emb, _, _, err := Embed(layers, cfg, m.pending.Spare())
	if err != nil {
		return err
	}
	m.pending.Commit(len(emb.Data))
	m.rememberLayerDims(layers)
	m.pendingGrid = [2]int{gh, gw}
	return nil
}

// buildBank subsamples the embeddings and indexes the result. Called with the lock held.
func (m *Model) buildBank(features []float32, gh, gw int) error {
	d := m.cfg.TargetEmbedDim
	all, err := TensorFrom(features, len(features)/d, d)
	if err != nil {
		return err
	}
	sampler, err := SamplerByName(m.cfg.Sampler, m.cfg.Percentage, m.cfg.Seed)
	if err != nil {
		return err
	}
	bank, _, err := sampler.Sample(all)
	if err != nil {
		return err
	}
	if &bank.Data[0] == &features[0] {
		// The identity sampler returns its input: the bank must not alias the pending
		// buffer, which is unmapped after the fit.
		bank = Tensor{Shape: bank.Shape, Data: append([]float32(nil), bank.Data...)}
	}
	scorer, err := m.newScorer()
	if err != nil {
		return err
	}
	if err := scorer.Fit([]Tensor{bank}); err != nil {
		scorer.Close()
		return err
	}
	if m.scorer != nil {
		m.scorer.Close()
	}
	m.scorer, m.bank, m.gridH, m.gridW, m.fitted = scorer, bank, gh, gw, true
	m.calib = Calibration{}
	return nil
}

// newScorer creates an unfitted scorer of the configured kind.
func (m *Model) newScorer() (*NearestNeighbourScorer, error) {
	var nn NNMethod
	var err error
	if m.cfg.NNMethod == "ivfpq" {
		nn, err = NewApproximateFaissNN(false, m.cfg.threads())
	} else {
		nn, err = NewFaissNN(false, m.cfg.threads())
	}
	if err != nil {
		return nil, err
	}
	return NewNearestNeighbourScorer(m.cfg.NumNN, nn)
}

// forEachBatch preprocesses images in batches, runs the backbone, and calls fn with the
// per-layer maps of each batch (in the model's layer order).
func (m *Model) forEachBatch(images ImageSource, fn func(start int, layers []Tensor) error) error {
	n, bs := images.Len(), m.cfg.batchSize()
	s := m.cfg.ImageSize
	transform := ImageTransform{Resize: m.cfg.Resize, CropSize: s, Mean: m.cfg.Mean, Std: m.cfg.Std}
	per := 3 * s * s
	buf := make([]float32, min(bs, n)*per)
	for start := 0; start < n; start += bs {
		b := min(bs, n-start)
		for j := range b {
			img, err := images.Image(start + j)
			if err != nil {
				return fmt.Errorf("image %d: %w", start+j, err)
			}
			if err := transform.Apply(img, buf[j*per:(j+1)*per]); err != nil {
				return fmt.Errorf("image %d: %w", start+j, err)
			}
		}
		batch, err := TensorFrom(buf[:b*per], b, 3, s, s)
		if err != nil {
			return err
		}
		layers, err := m.backbone.ForwardOrdered(batch)
		if err != nil {
			return err
		}
		if err := fn(start, layers); err != nil {
			return err
		}
	}
	return nil
}
