package metrics

import (
	"fmt"
	"math"
	"slices"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// F1Result is an F1-optimal decision threshold: samples with score >= Threshold are
// predicted anomalous. F1, Precision and Recall are the values at that threshold.
type F1Result struct {
	Threshold float32
	F1        float64
	Precision float64
	Recall    float64
}

// F1Threshold returns the threshold that maximises F1 on a labelled validation set (true =
// anomalous), as anomalib's F1AdaptiveThreshold computes it: the exact (unbinned)
// precision-recall curve over every distinct score, cut after the highest threshold that
// reaches full recall (torchmetrics), F1 = 2PR/(P+R+1e-10) in float64 with NaN read as 0,
// and the threshold at the first maximum in increasing-threshold order (torch.argmax), i.e.
// the lowest threshold among equal maxima.
//
// Fallbacks: without anomalous samples the threshold is the highest score (F1, precision and
// recall are then 0); without normal samples the curve yields the lowest score.
func F1Threshold(scores []float32, labels []bool) (F1Result, error) {
	pos, neg, err := splitLabelled(scores, labels)
	if err != nil {
		return F1Result{}, err
	}
	return f1Keys(pos, neg), nil
}

// PixelF1Threshold is F1Threshold over all pixels of all anomaly maps, each pixel labelled
// by its mask (anomalib's pixel threshold). maps[i] and masks[i] must have equal length.
func PixelF1Threshold(maps [][]float32, masks [][]bool) (F1Result, error) {
	pos, neg, err := splitPixels(maps, masks)
	if err != nil {
		return F1Result{}, err
	}
	return f1Keys(pos, neg), nil
}

// f1Keys finds the F1-optimal threshold from the sorted keys of each class (not both empty).
func f1Keys(pos, neg []uint32) F1Result {
	if len(pos) == 0 {
		return F1Result{Threshold: keyScore(neg[len(neg)-1])}
	}
	best := F1Result{F1: -1}
	tp, fp, np := 0, 0, float64(len(pos))
	i, j := len(pos)-1, len(neg)-1
	for tp < len(pos) { // stop after the first (highest) threshold with full recall
		k := pos[i]
		if j >= 0 && neg[j] > k {
			k = neg[j]
		}
		for i >= 0 && pos[i] == k {
			tp++
			i--
		}
		for j >= 0 && neg[j] == k {
			fp++
			j--
		}
		p := float64(tp) / float64(tp+fp)
		r := float64(tp) / np
		f1 := 2 * p * r / (p + r + 1e-10)
		if math.IsNaN(f1) {
			f1 = 0
		}
		if f1 >= best.F1 { // later = lower threshold wins ties
			best = F1Result{Threshold: keyScore(k), F1: f1, Precision: p, Recall: r}
		}
	}
	return best
}

// Quantile returns the q-quantile (0 <= q <= 1) of values with numpy's default 'linear'
// method: with the values sorted ascending as v and h = (n−1)·q, the result interpolates
// between v[floor(h)] and v[floor(h)+1] by the fraction g = h − floor(h), evaluated as numpy
// does (v0 + (v1−v0)·g for g < 0.5, v1 − (v1−v0)·(1−g) otherwise), in float64. Use it on
// the scores of held-out normal images, e.g. q = 0.99 for a 1 % false-alarm target.
func Quantile(values []float32, q float64) (float64, error) {
	if len(values) == 0 {
		return 0, fmt.Errorf("%w: metrics: quantile of no values", errs.ErrInvalidArgument)
	}
	if !(q >= 0 && q <= 1) {
		return 0, fmt.Errorf("%w: metrics: quantile %v outside [0, 1]", errs.ErrInvalidArgument, q)
	}
	v := make([]float64, len(values))
	for i, x := range values {
		if !finite32(x) {
			return 0, fmt.Errorf("%w: metrics: value %d is %v", errs.ErrInvalidArgument, i, x)
		}
		v[i] = float64(x)
	}
	slices.Sort(v)
	h := float64(len(v)-1) * q
	lo := math.Floor(h)
	g := h - lo
	i := int(lo)
	j := min(i+1, len(v)-1)
	d := v[j] - v[i]
	if g >= 0.5 {
		return v[j] - d*(1-g), nil
	}
	return v[i] + d*g, nil
}

// MeanSigmaThreshold returns mean + k·σ of values, with σ the population standard
// deviation (ddof = 0, numpy's np.std default), computed in float64 in two passes. Use it
// on the scores of held-out normal images (k = 3 is a common choice).
func MeanSigmaThreshold(values []float32, k float64) (float64, error) {
	if len(values) == 0 {
		return 0, fmt.Errorf("%w: metrics: mean and sigma of no values", errs.ErrInvalidArgument)
	}
	if math.IsNaN(k) || math.IsInf(k, 0) {
		return 0, fmt.Errorf("%w: metrics: sigma multiplier k is %v", errs.ErrInvalidArgument, k)
	}
	sum := 0.0
	for i, x := range values {
		if !finite32(x) {
			return 0, fmt.Errorf("%w: metrics: value %d is %v", errs.ErrInvalidArgument, i, x)
		}
		sum += float64(x)
	}
	n := float64(len(values))
	mean := sum / n
	ss := 0.0
	for _, x := range values {
		d := float64(x) - mean
		ss += d * d
	}
	return mean + k*math.Sqrt(ss/n), nil
}

// Normalizer maps raw scores to [0, 1] the way anomalib's PostProcessor does, so that the
// threshold lands on 0.5: clamp((x − Threshold)/(Max − Min) + 0.5, 0, 1), in float32 with
// the same operation order as the torch code. Build it with NewNormalizer.
type Normalizer struct {
	Threshold float32
	Min       float32
	Max       float32
}

// NewNormalizer validates the calibration statistics (min < max, all finite). A NaN
// threshold is replaced by (max + min)/2, as anomalib does when no threshold was fitted.
func NewNormalizer(threshold, minScore, maxScore float32) (Normalizer, error) {
	if !finite32(minScore) || !finite32(maxScore) || !(minScore < maxScore) {
		return Normalizer{}, fmt.Errorf("%w: metrics: normalisation needs finite min < max, got min %v max %v", errs.ErrInvalidArgument, minScore, maxScore)
	}
	if math.IsNaN(float64(threshold)) {
		threshold = (maxScore + minScore) / 2
	} else if !finite32(threshold) {
		return Normalizer{}, fmt.Errorf("%w: metrics: normalisation threshold is %v", errs.ErrInvalidArgument, threshold)
	}
	return Normalizer{Threshold: threshold, Min: minScore, Max: maxScore}, nil
}

// Apply normalises one score. A NaN score stays NaN (as torch.clamp leaves it).
func (n Normalizer) Apply(x float32) float32 {
	v := float32(float32(x-n.Threshold)/float32(n.Max-n.Min)) + 0.5
	if math.IsNaN(float64(v)) {
		return v
	}
	return min(max(v, 0), 1)
}

// ApplyInPlace normalises every value of xs (an image-score vector or an anomaly map).
func (n Normalizer) ApplyInPlace(xs []float32) {
	for i, x := range xs {
		xs[i] = n.Apply(x)
	}
}
