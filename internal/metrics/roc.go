package metrics

import (
	"fmt"
	"math"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// AUROC returns the area under the ROC curve of scores against binary labels (true =
// anomalous), equal to sklearn.metrics.roc_auc_score: ties between a positive and a
// negative count one half (the trapezoid over distinct thresholds). It is computed as the
// exact Mann-Whitney statistic in integer arithmetic and one final division. Scores must be
// finite and both classes present.
func AUROC(scores []float32, labels []bool) (float64, error) {
	pos, neg, err := splitLabelled(scores, labels)
	if err != nil {
		return 0, err
	}
	return aurocKeys(pos, neg)
}

// PixelAUROC returns the full-pixel AUROC of the reference: every pixel of every anomaly
// map is a sample, positive where its mask is true (see BinarizeFloatMask and
// BinarizeU8Mask for the mask convention). maps[i] and masks[i] must have equal length;
// images may differ in size. Nothing is copied but one 4-byte key per pixel (plus a radix
// scratch buffer of the larger class), so 10 M pixels need about 80 MB.
func PixelAUROC(maps [][]float32, masks [][]bool) (float64, error) {
	pos, neg, err := splitPixels(maps, masks)
	if err != nil {
		return 0, err
	}
	return aurocKeys(pos, neg)
}

// aurocKeys computes the AUROC from the sorted keys of each class.
func aurocKeys(pos, neg []uint32) (float64, error) {
	if len(pos) == 0 || len(neg) == 0 {
		return 0, fmt.Errorf("%w: metrics: AUROC needs both classes, got %d positive and %d negative samples", errs.ErrInvalidArgument, len(pos), len(neg))
	}
	// u2 = 2·#{(p,n): p > n} + #{(p,n): p == n}; fits uint64 for < 2^32 samples.
	var u2 uint64
	below := uint64(len(neg))
	walkGroups(pos, neg, func(_ uint32, np, nn int) {
		below -= uint64(nn)
		u2 += uint64(np) * (2*below + uint64(nn))
	})
	return float64(u2) / (2 * float64(len(pos)) * float64(len(neg))), nil
}

// ROC is a receiver operating characteristic curve as sklearn.metrics.roc_curve returns it
// with drop_intermediate=False: one point per distinct score, in decreasing threshold
// order, preceded by the point (0, 0) whose threshold is +Inf (sklearn ≥ 1.3).
// Point i classifies score >= Thresholds[i] as positive.
type ROC struct {
	FPR        []float64
	TPR        []float64
	Thresholds []float64
}

// ROCCurve computes the ROC curve of scores against binary labels (true = anomalous).
// FPR and TPR are false/true positive counts divided by the class sizes, exactly as
// sklearn computes them. Scores must be finite and both classes present.
func ROCCurve(scores []float32, labels []bool) (ROC, error) {
	pos, neg, err := splitLabelled(scores, labels)
	if err != nil {
		return ROC{}, err
	}
	if len(pos) == 0 || len(neg) == 0 {
		return ROC{}, fmt.Errorf("%w: metrics: ROC curve needs both classes, got %d positive and %d negative samples", errs.ErrInvalidArgument, len(pos), len(neg))
	}
	r := ROC{FPR: []float64{0}, TPR: []float64{0}, Thresholds: []float64{math.Inf(1)}}
	tp, fp := 0, 0
	p, n := float64(len(pos)), float64(len(neg))
	walkGroups(pos, neg, func(k uint32, np, nn int) {
		tp += np
		fp += nn
		r.FPR = append(r.FPR, float64(fp)/n)
		r.TPR = append(r.TPR, float64(tp)/p)
		r.Thresholds = append(r.Thresholds, float64(keyScore(k)))
	})
	return r, nil
}
