package core

import (
	"fmt"
)

// Prediction is the output of Predict for a batch of B images.
type Prediction struct {
	// Scores holds one image score per image: the maximum patch score (squared L2).
	Scores []float32
	// Maps holds the anomaly maps [B, ImageSize, ImageSize]: patch scores upsampled
	// bilinearly and smoothed with a Gaussian, in squared-distance units.
	Maps Tensor
	// PatchScores holds the raw patch scores [B, gridH, gridW].
	PatchScores Tensor
}

// Predict scores images: preprocessing, backbone, embedding, nearest-neighbour search and
// segmentation. Safe for concurrent use on a fitted model.
func (m *Model) Predict(images ImageSource) (p Prediction, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	defer m.guard(&err)
	if err := m.readyToPredict(); err != nil {
		return p, err
	}
	if m.backbone == nil {
		return p, fmt.Errorf("%w: the model has no backbone; use PredictFeatures with host-computed feature maps", ErrState)
	}
	if images.Len() == 0 {
		return p, fmt.Errorf("%w: no images to predict", ErrInvalidArgument)
	}
	var parts []Prediction
	err = m.forEachBatch(images, func(_ int, layers []Tensor) error {
		part, err := m.predictLayers(layers)
		parts = append(parts, part)
		return err
	})
	if err != nil {
		return Prediction{}, err
	}
	return concatPredictions(parts), nil
}

// PredictFeatures scores per-layer feature maps computed by the host: layers[i] is
// [B, C_i, H_i, W_i] for the model's i-th layer, in the shapes the model was fitted with.
func (m *Model) PredictFeatures(layers []Tensor) (p Prediction, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	defer m.guard(&err)
	if err := m.readyToPredict(); err != nil {
		return p, err
	}
	if _, err := m.checkLayers(layers); err != nil {
		return p, err
	}
	return m.predictLayers(layers)
}

func (m *Model) readyToPredict() error {
	if err := m.usable(); err != nil {
		return err
	}
	if !m.fitted {
		return fmt.Errorf("%w: the model is not fitted (call fit or load first)", ErrState)
	}
	return nil
}

// predictLayers embeds one batch of feature maps and scores it.
func (m *Model) predictLayers(layers []Tensor) (Prediction, error) {
	b := layers[0].Shape[0]
	emb, gh, gw, err := Embed(layers, m.embedConfig(), nil)
	if err != nil {
		return Prediction{}, err
	}
	if gh != m.gridH || gw != m.gridW {
		return Prediction{}, fmt.Errorf("%w: feature maps give a %dx%d patch grid, the model was fitted on %dx%d", ErrInvalidArgument, gh, gw, m.gridH, m.gridW)
	}
	scores, _, _, err := m.scorer.Predict([]Tensor{emb})
	if err != nil {
		return Prediction{}, err
	}
	patch, err := TensorFrom(scores, b, gh, gw)
	if err != nil {
		return Prediction{}, err
	}
	p := Prediction{Scores: make([]float32, b), PatchScores: patch}
	per := gh * gw
	for i := range b {
		best := scores[i*per]
		for _, s := range scores[i*per : (i+1)*per] {
			best = max(best, s)
		}
		p.Scores[i] = best
	}
	seg := RescaleSegmentor{TargetH: m.cfg.ImageSize, TargetW: m.cfg.ImageSize, Sigma: m.cfg.Sigma}
	p.Maps, err = seg.ConvertToSegmentation(patch)
	if err != nil {
		return Prediction{}, err
	}
	return p, nil
}

// concatPredictions joins per-batch predictions in order.
func concatPredictions(parts []Prediction) Prediction {
	if len(parts) == 1 {
		return parts[0]
	}
	var out Prediction
	b := 0
	for _, p := range parts {
		out.Scores = append(out.Scores, p.Scores...)
		out.Maps.Data = append(out.Maps.Data, p.Maps.Data...)
		out.PatchScores.Data = append(out.PatchScores.Data, p.PatchScores.Data...)
		b += len(p.Scores)
	}
	out.Maps.Shape = []int{b, parts[0].Maps.Shape[1], parts[0].Maps.Shape[2]}
	out.PatchScores.Shape = []int{b, parts[0].PatchScores.Shape[1], parts[0].PatchScores.Shape[2]}
	return out
}

// Segment turns anomaly maps into binary masks: 1 where the map is at or above threshold,
// else 0 (the same rule as image verdicts and the F1-optimal threshold: score >= threshold
// is anomalous).
func Segment(maps Tensor, threshold float32) []uint8 {
	masks := make([]uint8, len(maps.Data))
	for i, v := range maps.Data {
		if v >= threshold {
			masks[i] = 1
		}
	}
	return masks
}
