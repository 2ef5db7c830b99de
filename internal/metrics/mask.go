// Package metrics implements the evaluation metrics and decision thresholds of PatchCore's
// reference implementations: image AUROC and ROC curve (sklearn), full-pixel AUROC, the
// MVTec AD AUPRO, anomalib's F1-adaptive threshold and score normalisation, and thresholds
// calibrated on normal images only (quantile, mean + k·σ).
//
// Scores and anomaly-map pixels are float32 (as the pipeline produces them) and must be
// finite; labels and masks are bool (true = anomalous). Every function returns an error
// wrapping errs.ErrInvalidArgument on bad input and never panics.
package metrics

// Mask convention (spec §1.6). The reference resizes a ground-truth mask like an image
// (bilinear, uint8), converts it to [0, 1] by ToTensor (÷255) and casts it with
// astype(int), so only pixels whose transformed value is exactly 1.0 (uint8 255) are
// defect pixels; the fractional border pixels created by the resize count as normal.

// BinarizeFloatMask turns a mask in [0, 1] (after the reference's ToTensor) into defect
// flags: true exactly where the value is >= 1.0, i.e. 1.0; NaN counts as normal.
func BinarizeFloatMask(m []float32) []bool {
	out := make([]bool, len(m))
	for i, v := range m {
		out[i] = v >= 1
	}
	return out
}

// BinarizeU8Mask turns an 8-bit mask (a 0/255 PNG as MVTec AD and the demo data set store
// them, or a mask resized in uint8) into defect flags: true exactly where the value is 255,
// which is the same rule as BinarizeFloatMask applied after ÷255.
func BinarizeU8Mask(m []uint8) []bool {
	out := make([]bool, len(m))
	for i, v := range m {
		out[i] = v == 255
	}
	return out
}
