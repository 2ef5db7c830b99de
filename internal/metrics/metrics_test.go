package metrics

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

func bools(s string) []bool {
	out := make([]bool, len(s))
	for i, c := range s {
		out[i] = c == '1'
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestScoreKeyOrder(t *testing.T) {
	vals := []float32{float32(math.Inf(-1)), -math.MaxFloat32, -3.5, -1, -math.SmallestNonzeroFloat32, 0,
		math.SmallestNonzeroFloat32, 1e-30, 0.5, 1, 2, math.MaxFloat32, float32(math.Inf(1))}
	for i := 1; i < len(vals); i++ {
		if scoreKey(vals[i-1]) >= scoreKey(vals[i]) {
			t.Errorf("key(%v) >= key(%v)", vals[i-1], vals[i])
		}
	}
	negZero := float32(math.Copysign(0, -1))
	if scoreKey(negZero) != scoreKey(0) {
		t.Errorf("-0 and +0 must share a key")
	}
	for _, v := range vals {
		if got := keyScore(scoreKey(v)); got != v {
			t.Errorf("keyScore(scoreKey(%v)) = %v", v, got)
		}
	}
}

func TestSortKeysRadix(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 100, radixThreshold, 50000} {
		a := make([]uint32, n)
		for i := range a {
			switch i % 3 {
			case 0:
				a[i] = rng.Uint32()
			case 1:
				a[i] = scoreKey(float32(rng.NormFloat64()))
			default:
				a[i] = scoreKey(float32(rng.IntN(5)))
			}
		}
		want := slices.Clone(a)
		slices.Sort(want)
		sortKeys(a)
		if !slices.Equal(a, want) {
			t.Fatalf("n=%d: radix sort disagrees with slices.Sort", n)
		}
	}
	// Keys sharing their upper digits exercise the skipped passes.
	a := make([]uint32, 10000)
	for i := range a {
		a[i] = 0x80000000 | uint32(rng.IntN(2000))
	}
	want := slices.Clone(a)
	slices.Sort(want)
	sortKeys(a)
	if !slices.Equal(a, want) {
		t.Fatal("radix sort with constant high digits is wrong")
	}
}

func TestAUROCHand(t *testing.T) {
	// sklearn's documented example.
	got, err := AUROC([]float32{0.1, 0.4, 0.35, 0.8}, bools("0011"))
	if err != nil || got != 0.75 {
		t.Fatalf("AUROC = %v, %v; want 0.75", got, err)
	}
	// Ties: positives {2,3}, negatives {1,2}: (2>1)+(2=2)/2+(3>1)+(3>2) = 3.5 of 4 pairs.
	got, err = AUROC([]float32{1, 2, 2, 3}, bools("0101"))
	if err != nil || got != 0.875 {
		t.Fatalf("AUROC with ties = %v, %v; want 0.875", got, err)
	}
	// All tied: 0.5. Perfectly inverted: 0.
	if got, _ := AUROC([]float32{7, 7, 7}, bools("010")); got != 0.5 {
		t.Errorf("all-tied AUROC = %v, want 0.5", got)
	}
	if got, _ := AUROC([]float32{3, 2, 1}, bools("001")); got != 0 {
		t.Errorf("inverted AUROC = %v, want 0", got)
	}
	// -0 and +0 tie.
	if got, _ := AUROC([]float32{float32(math.Copysign(0, -1)), 0}, bools("01")); got != 0.5 {
		t.Errorf("AUROC(-0 vs +0) = %v, want 0.5", got)
	}
}

func TestAUROCBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 20; trial++ {
		n := 2 + rng.IntN(300)
		scores := make([]float32, n)
		labels := make([]bool, n)
		for i := range scores {
			scores[i] = float32(rng.IntN(20)) - 5
			labels[i] = rng.IntN(3) == 0
		}
		labels[0], labels[1] = true, false
		num, den := 0.0, 0.0
		for i := range scores {
			for j := range scores {
				if labels[i] && !labels[j] {
					den++
					switch {
					case scores[i] > scores[j]:
						num++
					case scores[i] == scores[j]:
						num += 0.5
					}
				}
			}
		}
		got, err := AUROC(scores, labels)
		if err != nil || !near(got, num/den, 1e-15) {
			t.Fatalf("trial %d: AUROC = %v, %v; brute force %v", trial, got, err, num/den)
		}
	}
}

func TestROCCurveHand(t *testing.T) {
	r, err := ROCCurve([]float32{1, 2, 2, 3}, bools("0101"))
	if err != nil {
		t.Fatal(err)
	}
	want := ROC{
		FPR:        []float64{0, 0, 0.5, 1},
		TPR:        []float64{0, 0.5, 1, 1},
		Thresholds: []float64{math.Inf(1), 3, 2, 1},
	}
	if !slices.Equal(r.FPR, want.FPR) || !slices.Equal(r.TPR, want.TPR) || !slices.Equal(r.Thresholds, want.Thresholds) {
		t.Fatalf("ROC = %+v, want %+v", r, want)
	}
}

func TestAUPROHand(t *testing.T) {
	// Image A (3×3) has one defect made of (0,0), (1,1), (1,2): a single 8-connected
	// region of 3 pixels (4-connectivity would give two regions). Image B is normal.
	// Scores: A(0,0)=0.9, A(1,1)=A(1,2)=0.5; one background pixel of A is 0.7, one of B
	// is 0.5, the other 13 background pixels are 0.1. #background = 6 + 9 = 15.
	//   threshold 0.9: FPR 0,    PRO 1/3
	//   threshold 0.7: FPR 1/15, PRO 1/3
	//   threshold 0.5: FPR 2/15, PRO 1
	//   threshold 0.1: FPR 1,    PRO 1
	// Limit 0.3: 1/15·1/3 + 1/15·(1/3+1)/2 + (0.3−2/15)·1 = 1/45 + 2/45 + 1/6 = 7/30 → /0.3 = 7/9.
	// Limit 0.1 crosses the slanted segment: PRO(0.1) = 1/3 + 2/3·(0.1−1/15)/(1/15) = 2/3,
	// area 1/45 + (1/3+2/3)/2·(1/30) = 7/180 → /0.1 = 7/18.
	mapA := []float32{0.9, 0.1, 0.1, 0.7, 0.5, 0.5, 0.1, 0.1, 0.1}
	maskA := bools("100011000")
	mapB := []float32{0.1, 0.1, 0.1, 0.1, 0.5, 0.1, 0.1, 0.1, 0.1}
	maskB := bools("000000000")
	maps, masks := [][]float32{mapA, mapB}, [][]bool{maskA, maskB}
	for _, c := range []struct{ limit, want float64 }{{0.3, 7.0 / 9}, {0.1, 7.0 / 18}, {1, 1 - (1.0/15*(1-1.0/3) + 1.0/15*(1-2.0/3))}} {
		got, err := AUPRO(maps, masks, 3, 3, c.limit)
		if err != nil || !near(got, c.want, 1e-12) {
			t.Errorf("AUPRO(limit %v) = %v, %v; want %v", c.limit, got, err, c.want)
		}
	}
}

func TestLabel8(t *testing.T) {
	// Two regions: an 8-connected diagonal chain and a separate block.
	mask := bools("10000" + "01001" + "00101" + "00000")
	labels := make([]int32, len(mask))
	n, _ := label8(mask, labels, 4, 5, nil)
	if n != 2 {
		t.Fatalf("regions = %d, want 2 (labels %v)", n, labels)
	}
	if labels[0] != labels[6] || labels[6] != labels[12] || labels[9] != labels[14] || labels[0] == labels[9] {
		t.Fatalf("wrong labels %v", labels)
	}
}

func TestF1ThresholdHand(t *testing.T) {
	// Descending: 0.5 → P1 R1/3 F.5; 0.4 → P1 R2/3 F.8; 0.3 → P2/3 R2/3; 0.2 → P3/4 R1 F6/7 (full recall, stop).
	r, err := F1Threshold([]float32{0.1, 0.2, 0.3, 0.4, 0.5}, bools("01011"))
	if err != nil || r.Threshold != 0.2 || !near(r.F1, 6.0/7, 1e-9) || r.Precision != 0.75 || r.Recall != 1 {
		t.Fatalf("F1Threshold = %+v, %v", r, err)
	}
	// Equal F1 (2/3) at 0.9 (TP1 FP0) and 0.6 (TP2 FP2): the lower threshold wins.
	r, _ = F1Threshold([]float32{0.9, 0.8, 0.7, 0.6}, bools("1001"))
	if r.Threshold != 0.6 {
		t.Errorf("tie: threshold %v, want 0.6", r.Threshold)
	}
	// No anomalous samples: the highest score. No normal samples: the lowest.
	r, _ = F1Threshold([]float32{0.3, 0.9, 0.1}, bools("000"))
	if r.Threshold != 0.9 || r.F1 != 0 {
		t.Errorf("no positives: %+v, want threshold 0.9", r)
	}
	r, _ = F1Threshold([]float32{0.3, 0.9, 0.1}, bools("111"))
	if r.Threshold != 0.1 || r.Recall != 1 {
		t.Errorf("no negatives: %+v, want threshold 0.1", r)
	}
}

func TestQuantileAndSigmaHand(t *testing.T) {
	v := []float32{4, 1, 3, 2}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.25, 1.75}, {0.5, 2.5}, {0.9, 3.7}, {1, 4}} {
		got, err := Quantile(v, c.q)
		if err != nil || !near(got, c.want, 1e-12) {
			t.Errorf("Quantile(%v) = %v, %v; want %v", c.q, got, err, c.want)
		}
	}
	if got, _ := Quantile([]float32{5}, 0.7); got != 5 {
		t.Errorf("quantile of one value = %v", got)
	}
	got, err := MeanSigmaThreshold(v, 2)
	if want := 2.5 + 2*math.Sqrt(1.25); err != nil || !near(got, want, 1e-12) {
		t.Errorf("MeanSigmaThreshold = %v, %v; want %v", got, err, want)
	}
}

func TestNormalizer(t *testing.T) {
	n, err := NewNormalizer(5, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ x, want float32 }{{5, 0.5}, {10, 1}, {0, 0}, {7.5, 0.75}, {2.5, 0.25}, {100, 1}, {-100, 0}} {
		if got := n.Apply(c.x); got != c.want {
			t.Errorf("Apply(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if !math.IsNaN(float64(n.Apply(float32(math.NaN())))) {
		t.Error("NaN score must stay NaN")
	}
	xs := []float32{5, 7.5, 100}
	n.ApplyInPlace(xs)
	if !slices.Equal(xs, []float32{0.5, 0.75, 1}) {
		t.Errorf("ApplyInPlace = %v", xs)
	}
	m, err := NewNormalizer(float32(math.NaN()), 2, 6)
	if err != nil || m.Threshold != 4 {
		t.Errorf("NaN threshold → %+v, %v; want midpoint 4", m, err)
	}
	// float32 arithmetic in torch's order: (x−t)/(max−min) + 0.5.
	o, _ := NewNormalizer(0.3, 0.1, 0.7)
	x := float32(0.4)
	want := float32(float32(x-0.3)/float32(0.7-float32(0.1))) + 0.5
	if got := o.Apply(x); got != want {
		t.Errorf("float32 order: %v, want %v", got, want)
	}
}

func TestMaskBinarize(t *testing.T) {
	f := BinarizeFloatMask([]float32{0, 0.5, 0.99999994, 1, float32(math.NaN())})
	if !slices.Equal(f, []bool{false, false, false, true, false}) {
		t.Errorf("BinarizeFloatMask = %v", f)
	}
	u := BinarizeU8Mask([]uint8{0, 1, 128, 254, 255})
	if !slices.Equal(u, []bool{false, false, false, false, true}) {
		t.Errorf("BinarizeU8Mask = %v", u)
	}
}

func TestErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, errs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	_, err := AUROC(nil, nil)
	check("empty", err)
	_, err = AUROC([]float32{1, 2}, bools("1"))
	check("length", err)
	_, err = AUROC([]float32{1, nan}, bools("10"))
	check("NaN", err)
	_, err = AUROC([]float32{1, inf}, bools("10"))
	check("Inf", err)
	_, err = AUROC([]float32{1, 2}, bools("11"))
	check("one class", err)
	_, err = ROCCurve([]float32{1, 2}, bools("00"))
	check("ROC one class", err)
	_, err = F1Threshold([]float32{1}, bools("10"))
	check("F1 length", err)

	maps := [][]float32{{1, 2, 3, 4}}
	_, err = PixelAUROC(maps, nil)
	check("pixel count", err)
	_, err = PixelAUROC(maps, [][]bool{bools("101")})
	check("pixel size", err)
	_, err = PixelAUROC([][]float32{{}}, [][]bool{{}})
	check("empty map", err)
	_, err = PixelAUROC([][]float32{{1, nan}}, [][]bool{bools("10")})
	check("pixel NaN", err)
	_, err = PixelF1Threshold(nil, nil)
	check("pixel F1 empty", err)
	_, err = AUPRO(maps, [][]bool{bools("1000")}, 2, 3, 0.3)
	check("AUPRO shape", err)
	_, err = AUPRO(maps, [][]bool{bools("1000")}, 0, 4, 0.3)
	check("AUPRO zero height", err)
	_, err = AUPRO(maps, [][]bool{bools("1000")}, 2, 2, 0)
	check("AUPRO limit 0", err)
	_, err = AUPRO(maps, [][]bool{bools("1000")}, 2, 2, math.NaN())
	check("AUPRO limit NaN", err)
	_, err = AUPRO(maps, [][]bool{bools("0000")}, 2, 2, 0.3)
	check("AUPRO no defect", err)
	_, err = AUPRO(maps, [][]bool{bools("1111")}, 2, 2, 0.3)
	check("AUPRO no background", err)

	_, err = Quantile(nil, 0.5)
	check("quantile empty", err)
	_, err = Quantile([]float32{1}, 1.5)
	check("quantile q", err)
	_, err = Quantile([]float32{nan}, 0.5)
	check("quantile NaN", err)
	_, err = MeanSigmaThreshold(nil, 3)
	check("sigma empty", err)
	_, err = MeanSigmaThreshold([]float32{1}, math.Inf(1))
	check("sigma k", err)
	_, err = MeanSigmaThreshold([]float32{inf}, 3)
	check("sigma Inf", err)
	_, err = NewNormalizer(0, 1, 1)
	check("normalizer min == max", err)
	_, err = NewNormalizer(0, nan, 1)
	check("normalizer NaN min", err)
	_, err = NewNormalizer(inf, 0, 1)
	check("normalizer Inf threshold", err)
}
