package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// vectors mirrors testdata/sklearn_vectors.json (see gen_sklearn_vectors.py).
type vectors struct {
	QuantileQ  []float64 `json:"quantile_q"`
	SigmaK     []float64 `json:"sigma_k"`
	LabelCases []struct {
		Scores    []float64 `json:"scores"`
		Labels    string    `json:"labels"`
		AUROC     float64   `json:"auroc"`
		F1        f1Vector  `json:"f1"`
		Quantiles []float64 `json:"quantiles"`
		MeanSigma []float64 `json:"mean_sigma"`
		ROC       *struct {
			FPR        []float64 `json:"fpr"`
			TPR        []float64 `json:"tpr"`
			Thresholds []float64 `json:"thresholds"`
		} `json:"roc"`
	} `json:"label_cases"`
	PixelCases []struct {
		Height     int                `json:"height"`
		Width      int                `json:"width"`
		Maps       [][]float64        `json:"maps"`
		Masks      []string           `json:"masks"`
		PixelAUROC float64            `json:"pixel_auroc"`
		PixelF1    f1Vector           `json:"pixel_f1"`
		AUPRO      map[string]float64 `json:"aupro"`
	} `json:"pixel_cases"`
}

type f1Vector struct {
	Threshold float64 `json:"threshold"`
	F1        float64 `json:"f1"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/sklearn_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.LabelCases) == 0 || len(v.PixelCases) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func to32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

func checkF1(t *testing.T, what string, got F1Result, want f1Vector) {
	t.Helper()
	if float64(got.Threshold) != want.Threshold || got.F1 != want.F1 || got.Precision != want.Precision || got.Recall != want.Recall {
		t.Errorf("%s: F1 threshold %+v, sklearn %+v", what, got, want)
	}
}

func TestAgainstSklearnLabelled(t *testing.T) {
	v := loadVectors(t)
	rocs := 0
	for ci, c := range v.LabelCases {
		scores, labels := to32(c.Scores), bools(c.Labels)
		auc, err := AUROC(scores, labels)
		if err != nil || !near(auc, c.AUROC, 1e-9) {
			t.Errorf("case %d: AUROC %v (%v), sklearn %v", ci, auc, err, c.AUROC)
		}
		f1, err := F1Threshold(scores, labels)
		if err != nil {
			t.Fatal(err)
		}
		checkF1(t, "case", f1, c.F1)
		for qi, q := range v.QuantileQ {
			got, err := Quantile(scores, q)
			if err != nil || !near(got, c.Quantiles[qi], 1e-12*math.Max(1, math.Abs(got))) {
				t.Errorf("case %d: Quantile(%v) = %v (%v), numpy %v", ci, q, got, err, c.Quantiles[qi])
			}
		}
		for ki, k := range v.SigmaK {
			got, err := MeanSigmaThreshold(scores, k)
			if err != nil || !near(got, c.MeanSigma[ki], 1e-12*math.Max(1, math.Abs(got))) {
				t.Errorf("case %d: MeanSigmaThreshold(%v) = %v (%v), numpy %v", ci, k, got, err, c.MeanSigma[ki])
			}
		}
		if c.ROC == nil {
			continue
		}
		rocs++
		r, err := ROCCurve(scores, labels)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.FPR) != len(c.ROC.FPR) || !math.IsInf(r.Thresholds[0], 1) {
			t.Fatalf("case %d: ROC has %d points, sklearn %d", ci, len(r.FPR), len(c.ROC.FPR))
		}
		for i := range r.FPR {
			if r.FPR[i] != c.ROC.FPR[i] || r.TPR[i] != c.ROC.TPR[i] || (i > 0 && r.Thresholds[i] != c.ROC.Thresholds[i-1]) {
				t.Errorf("case %d point %d: (%v,%v,%v), sklearn (%v,%v)", ci, i, r.FPR[i], r.TPR[i], r.Thresholds[i], c.ROC.FPR[i], c.ROC.TPR[i])
			}
		}
	}
	if rocs == 0 {
		t.Fatal("no ROC vectors")
	}
}

func TestAgainstSklearnPixels(t *testing.T) {
	v := loadVectors(t)
	for ci, c := range v.PixelCases {
		maps := make([][]float32, len(c.Maps))
		masks := make([][]bool, len(c.Masks))
		for i := range c.Maps {
			maps[i] = to32(c.Maps[i])
			masks[i] = bools(c.Masks[i])
		}
		auc, err := PixelAUROC(maps, masks)
		if err != nil || !near(auc, c.PixelAUROC, 1e-9) {
			t.Errorf("case %d: PixelAUROC %v (%v), sklearn %v", ci, auc, err, c.PixelAUROC)
		}
		f1, err := PixelF1Threshold(maps, masks)
		if err != nil {
			t.Fatal(err)
		}
		checkF1(t, "pixel case", f1, c.PixelF1)
		if len(c.AUPRO) == 0 {
			t.Fatalf("case %d: no AUPRO values", ci)
		}
		for lim, want := range c.AUPRO {
			var limit float64
			if err := json.Unmarshal([]byte(lim), &limit); err != nil {
				t.Fatal(err)
			}
			got, err := AUPRO(maps, masks, c.Height, c.Width, limit)
			if err != nil || !near(got, want, 1e-6) {
				t.Errorf("case %d: AUPRO(%v) = %v (%v), MVTec/numpy %v", ci, limit, got, err, want)
			}
		}
	}
}

// TestPixelAUROCLarge runs the full-pixel metrics at MVTec test-set scale (200 maps of
// 224×224 = 10 M pixels) and checks the AUROC against an exact histogram computation that
// is possible because the scores take only 256 values.
func TestPixelAUROCLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("10 M pixels")
	}
	const nImg, side, levels = 200, 224, 256
	rng := rand.New(rand.NewPCG(7, 8))
	maps := make([][]float32, nImg)
	masks := make([][]bool, nImg)
	var posHist, negHist [levels]float64
	for i := range maps {
		maps[i] = make([]float32, side*side)
		masks[i] = make([]bool, side*side)
		y0, x0 := rng.IntN(side-40), rng.IntN(side-40)
		defect := i%3 == 0
		for p := range maps[i] {
			y, x := p/side, p%side
			in := defect && y >= y0 && y < y0+30 && x >= x0 && x < x0+25
			l := rng.IntN(200)
			if in {
				l += 56
			}
			maps[i][p] = float32(l)/16 - 3
			masks[i][p] = in
			if in {
				posHist[l]++
			} else {
				negHist[l]++
			}
		}
	}
	var num, npos, nneg, negBelow float64
	for l := 0; l < levels; l++ {
		num += posHist[l] * (negBelow + negHist[l]/2)
		negBelow += negHist[l]
		npos += posHist[l]
	}
	nneg = negBelow
	want := num / (npos * nneg)
	got, err := PixelAUROC(maps, masks)
	if err != nil || !near(got, want, 1e-12) {
		t.Fatalf("PixelAUROC = %v (%v), histogram %v", got, err, want)
	}
	pro, err := AUPRO(maps, masks, side, side, DefaultFPRLimit)
	if err != nil || !(pro > 0 && pro < 1) {
		t.Fatalf("AUPRO = %v (%v)", pro, err)
	}
	if _, err := PixelF1Threshold(maps, masks); err != nil {
		t.Fatal(err)
	}
}
