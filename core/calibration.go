package core

import (
	"fmt"
	"math"

	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

// CalibrationMethod selects how Calibrate derives the image threshold.
type CalibrationMethod int

const (
	// CalibrateQuantile: the param-quantile (in (0,1], numpy's linear interpolation) of
	// the scores of good images.
	CalibrateQuantile CalibrationMethod = iota
	// CalibrateMeanStd: mean + param * standard deviation of the scores of good images.
	CalibrateMeanStd
	// CalibrateF1: the F1-optimal threshold on labelled scores (anomalib's
	// F1AdaptiveThreshold); needs good and anomalous examples.
	CalibrateF1
)

var calibrationNames = map[CalibrationMethod]string{CalibrateQuantile: "quantile", CalibrateMeanStd: "mean_std", CalibrateF1: "f1"}

// Calibration is the stored decision threshold of a model and the score range used to
// normalise scores to [0,1] (threshold at 0.5). The zero value means "not calibrated".
type Calibration struct {
	Method    string  `json:"method,omitempty"`
	Param     float64 `json:"param,omitempty"`
	Threshold float32 `json:"threshold"`
	ScoreMin  float32 `json:"score_min"`
	ScoreMax  float32 `json:"score_max"`
	Count     int     `json:"count"`
}

// Calibrated reports whether a threshold has been set.
func (c Calibration) Calibrated() bool { return c.Method != "" }

// Calibration returns the model's current calibration.
func (m *Model) Calibration() Calibration {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.calib
}

// Calibrate scores held-out good images and stores a threshold derived from their scores
// (CalibrateQuantile or CalibrateMeanStd).
func (m *Model) Calibrate(images ImageSource, method CalibrationMethod, param float64) (Calibration, error) {
	if method == CalibrateF1 {
		return Calibration{}, fmt.Errorf("%w: F1 calibration needs labelled scores (CalibrateScores)", ErrInvalidArgument)
	}
	p, err := m.Predict(images)
	if err != nil {
		return Calibration{}, err
	}
	return m.CalibrateScores(p.Scores, nil, method, param)
}

// CalibrateScores stores a threshold computed from image scores the caller already has.
// labels (true = anomalous) may be nil, meaning every score is of a good image; quantile
// and mean+k*sigma use only the good scores, F1 needs both kinds.
func (m *Model) CalibrateScores(scores []float32, labels []bool, method CalibrationMethod, param float64) (c Calibration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.guard(&err)
	if err := m.readyToPredict(); err != nil {
		return c, err
	}
	if labels != nil && len(labels) != len(scores) {
		return c, fmt.Errorf("%w: %d labels for %d scores", ErrInvalidArgument, len(labels), len(scores))
	}
	for i, s := range scores {
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			return c, fmt.Errorf("%w: score %d is %v", ErrInvalidArgument, i, s)
		}
	}
	var good []float32
	for i, s := range scores {
		if labels == nil || !labels[i] {
			good = append(good, s)
		}
	}
	var thr float64
	switch method {
	case CalibrateQuantile:
		if !(param > 0 && param <= 1) {
			return c, fmt.Errorf("%w: quantile %v outside (0, 1]", ErrInvalidArgument, param)
		}
		thr, err = metrics.Quantile(good, param)
	case CalibrateMeanStd:
		thr, err = metrics.MeanSigmaThreshold(good, param)
	case CalibrateF1:
		if labels == nil {
			return c, fmt.Errorf("%w: F1 calibration needs labels", ErrInvalidArgument)
		}
		var r metrics.F1Result
		r, err = metrics.F1Threshold(scores, labels)
		thr = float64(r.Threshold)
	default:
		return c, fmt.Errorf("%w: unknown calibration method %d", ErrInvalidArgument, method)
	}
	if err != nil {
		return c, err
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	c = Calibration{Method: calibrationNames[method], Param: param, Threshold: float32(thr), ScoreMin: lo, ScoreMax: hi, Count: len(scores)}
	m.calib = c
	return c, nil
}

// NormalizeScores maps scores to [0,1] with the calibrated threshold at 0.5:
// clamp((s - threshold)/(max - min) + 0.5, 0, 1), min/max from the calibration scores.
func (m *Model) NormalizeScores(scores []float32) ([]float32, error) {
	c := m.Calibration()
	if !c.Calibrated() {
		return nil, fmt.Errorf("%w: the model is not calibrated", ErrState)
	}
	lo, hi := c.ScoreMin, c.ScoreMax
	if !(lo < hi) { // a single calibration score: use a unit range around it
		lo, hi = c.Threshold-0.5, c.Threshold+0.5
	}
	n, err := metrics.NewNormalizer(c.Threshold, lo, hi)
	if err != nil {
		return nil, err
	}
	out := append([]float32(nil), scores...)
	n.ApplyInPlace(out)
	return out, nil
}
