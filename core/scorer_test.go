package core

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

func nnGoldenMatrix(t *testing.T, rel string) Tensor {
	t.Helper()
	a := golden.Load(t, rel)
	if a.F32 == nil || len(a.Shape) != 2 {
		t.Fatalf("%s: want a float32 matrix, got %s %v", rel, a.Dtype, a.Shape)
	}
	return Tensor{Shape: a.Shape, Data: a.F32}
}

func newTestScorer(t testing.TB, k int) *NearestNeighbourScorer {
	t.Helper()
	nn, err := NewFaissNN(false, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewNearestNeighbourScorer(k, nn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// maxRelErr is max|got - want| / max|want|.
func nnMaxRelErr(got, want []float32) float64 {
	var maxDiff, maxWant float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxWant = math.Max(maxWant, math.Abs(float64(want[i])))
	}
	return maxDiff / maxWant
}

func nnAgreement(got, want []int64) float64 {
	same := 0
	for i := range want {
		if got[i] == want[i] {
			same++
		}
	}
	return float64(same) / float64(len(want))
}

// TestScorerGoldenMNV2 reproduces the reference's k = 1 patch scores on the MobileNetV2
// embeddings.
func TestScorerGoldenMNV2(t *testing.T) {
	bank := nnGoldenMatrix(t, "mnv2/memory_bank.npy")
	query := nnGoldenMatrix(t, "mnv2/embed_test.npy")
	wantScores := golden.Load(t, "mnv2/patch_scores_k1.npy").F32
	wantIdx := golden.Load(t, "mnv2/nn_index_k1.npy").I64
	s := newTestScorer(t, 1)
	if err := s.Fit([]Tensor{bank}); err != nil {
		t.Fatal(err)
	}
	scores, dist, idx, err := s.Predict([]Tensor{query})
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 1568 || !reflect.DeepEqual(dist.Shape, []int{1568, 1}) {
		t.Fatalf("%d scores, distances %v", len(scores), dist.Shape)
	}
	rel, agree := nnMaxRelErr(scores, wantScores), nnAgreement(idx, wantIdx)
	t.Logf("mnv2 k=1: max rel error %.2e, NN index agreement %.4f", rel, agree)
	if rel > 1e-3 || agree < 0.99 {
		t.Errorf("mnv2 k=1: rel error %.2e (tol 1e-3), agreement %.4f (min 0.99)", rel, agree)
	}
}

// TestScorerGoldenWRN50K3 reproduces the reference's k = 3 scores, distances and
// neighbours on the WideResNet50 embeddings.
func TestScorerGoldenWRN50K3(t *testing.T) {
	bank := nnGoldenMatrix(t, "wrn50/memory_bank.npy")
	query := nnGoldenMatrix(t, "wrn50/embed_test.npy")
	s := newTestScorer(t, 3)
	if err := s.Fit([]Tensor{bank}); err != nil {
		t.Fatal(err)
	}
	scores, dist, idx, err := s.Predict([]Tensor{query})
	if err != nil {
		t.Fatal(err)
	}
	relS := nnMaxRelErr(scores, golden.Load(t, "wrn50/patch_scores_k3.npy").F32)
	relD := nnMaxRelErr(dist.Data, golden.Load(t, "wrn50/nn_dist_k3.npy").F32)
	agree := nnAgreement(idx, golden.Load(t, "wrn50/nn_index_k3.npy").I64)
	t.Logf("wrn50 k=3: scores rel error %.2e, distances %.2e, index agreement %.4f", relS, relD, agree)
	if relS > 1e-3 || relD > 1e-3 || agree < 0.99 {
		t.Errorf("wrn50 k=3: scores %.2e, distances %.2e (tol 1e-3), agreement %.4f (min 0.99)", relS, relD, agree)
	}
	// Image scores are the maximum patch score per image.
	wantImg := golden.Load(t, "wrn50/image_scores_k3.npy").F32
	for im := 0; im < 2; im++ {
		m := float32(math.Inf(-1))
		for _, v := range scores[im*784 : (im+1)*784] {
			m = max(m, v)
		}
		if math.Abs(float64(m-wantImg[im])) > 1e-3*float64(wantImg[im]) {
			t.Errorf("image %d score %v, reference %v", im, m, wantImg[im])
		}
	}
}

// The score is numpy's float32 mean: pairwise summation, then a float32 division.
// Expected values computed with numpy 1.24.
func TestScorerMeanIsNumpys(t *testing.T) {
	seq := []float32{1 << 25, 1, 1}
	if got := pairwiseSum32(seq); got != 33554432 {
		t.Errorf("3 values: %v, numpy 33554432", got)
	}
	sixteen := make([]float32, 16)
	sixteen[0] = 1 << 25
	for i := 1; i < 16; i++ {
		sixteen[i] = 1
	}
	if got := pairwiseSum32(sixteen); got != 33554444 {
		t.Errorf("16 values: %v, numpy 33554444 (a sequential sum gives 33554432)", got)
	}
	if got := pairwiseSum32(sixteen) / 16; got != 2097152.75 {
		t.Errorf("mean of 16: %v, numpy 2097152.75", got)
	}
}

// TestScorerMeanMatchesNumpy compares with numpy itself for many lengths, including the
// recursive case above 128 values.
func TestScorerMeanMatchesNumpy(t *testing.T) {
	py := nnPythonNumpy()
	if py == "" {
		t.Skip("no python3 with numpy")
	}
	dir := t.TempDir()
	script := `
import sys, numpy as np
rng = np.random.default_rng(5)
out = []
for k in [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 127, 128, 129, 200, 300, 1000]:
    x = (rng.standard_normal((50, k)) * np.exp(rng.standard_normal((50, k)) * 4)).astype(np.float32)
    x.tofile(sys.argv[1] + "/x%d.bin" % k)
    x.mean(axis=-1).astype(np.float32).tofile(sys.argv[1] + "/m%d.bin" % k)
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for _, k := range []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 127, 128, 129, 200, 300, 1000} {
		x := nnReadF32(t, filepath.Join(dir, "x"+strconv.Itoa(k)+".bin"))
		m := nnReadF32(t, filepath.Join(dir, "m"+strconv.Itoa(k)+".bin"))
		for i := range m {
			if got := pairwiseSum32(x[i*k:(i+1)*k]) / float32(k); got != m[i] {
				t.Fatalf("k=%d row %d: mean %v, numpy %v", k, i, got, m[i])
			}
		}
	}
}

func nnReadF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func TestScorerMergesLists(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	a, b := nnRandMatrix(rng, 50, 6), NewTensor(50, 2, 3)
	for i := range b.Data {
		b.Data[i] = float32(rng.NormFloat64())
	}
	merged, err := ConcatMerger{}.Merge([]Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestScorer(t, 2)
	if err := s.Fit([]Tensor{a, b}); err != nil {
		t.Fatal(err)
	}
	feats, ok := s.DetectionFeatures()
	if !ok || !reflect.DeepEqual(feats, merged) {
		t.Fatal("detection features are not the ConcatMerger output")
	}
	qa, qb := nnRandMatrix(rng, 7, 6), NewTensor(7, 2, 3)
	qm, _ := ConcatMerger{}.Merge([]Tensor{qa, qb})
	scores, dist, _, err := s.Predict([]Tensor{qa, qb})
	if err != nil {
		t.Fatal(err)
	}
	bd, _ := nnBruteKNN(merged, qm, 2)
	for i := range scores {
		want := (bd[i][0] + bd[i][1]) / 2
		if math.Abs(float64(scores[i])-want) > 1e-4*want || scores[i] != (dist.Data[2*i]+dist.Data[2*i+1])/2 {
			t.Fatalf("query %d: score %v, brute-force mean %v", i, scores[i], want)
		}
	}
}

func TestScorerSaveLoad(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	bank := nnRandMatrix(rng, 200, 16)
	q := nnRandMatrix(rng, 20, 16)
	s := newTestScorer(t, 3)
	if err := s.Fit([]Tensor{bank}); err != nil {
		t.Fatal(err)
	}
	wantS, wantD, wantI, err := s.Predict([]Tensor{q})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const prefix = "Ensemble-1-2_"
	if err := s.Save(dir, true, prefix); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{prefix + "nnscorer_search_index.faiss", prefix + "nnscorer_features.pkl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("missing %s: %v", f, err)
		}
	}
	r := newTestScorer(t, 3)
	if err := r.Load(dir, prefix); err != nil {
		t.Fatal(err)
	}
	feats, ok := r.DetectionFeatures()
	if !ok || !reflect.DeepEqual(feats.Shape, bank.Shape) || !reflect.DeepEqual(feats.Data, bank.Data) {
		t.Fatal("features did not survive the pickle round trip")
	}
	gotS, gotD, gotI, err := r.Predict([]Tensor{q})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotS, wantS) || !reflect.DeepEqual(gotD, wantD) || !reflect.DeepEqual(gotI, wantI) {
		t.Fatal("loaded scorer predicts differently")
	}

	// Without save_features_separately only the index is written, and a load has no features.
	dir2 := t.TempDir()
	if err := s.SaveAndReset(dir2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "nnscorer_features.pkl")); !os.IsNotExist(err) {
		t.Errorf("features file written without saveFeaturesSeparately: %v", err)
	}
	if _, _, _, err := s.Predict([]Tensor{q}); !errors.Is(err, ErrState) {
		t.Errorf("predict after SaveAndReset: %v", err)
	}
	if err := s.Load(dir2, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.DetectionFeatures(); ok {
		t.Error("features reported after loading an index alone")
	}
	if got, _, _, err := s.Predict([]Tensor{q}); err != nil || !reflect.DeepEqual(got, wantS) {
		t.Errorf("predict after reload: %v", err)
	}

	// numpy reads the features file as the reference's pickle.load would.
	py := nnPythonNumpy()
	if py == "" {
		t.Log("no python3 with numpy: skipping the numpy check of the features file")
		return
	}
	check := `import pickle, sys, numpy as np
a = pickle.load(open(sys.argv[1], "rb"))
assert a.dtype == np.float32 and a.shape == (200, 16), (a.dtype, a.shape)
sys.stdout.write(a.astype("<f4").tobytes().hex())`
	out, err := exec.Command(py, "-c", check, filepath.Join(dir, prefix+"nnscorer_features.pkl")).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy cannot load the features file: %v\n%s", err, out)
	}
	raw := make([]byte, 4*len(bank.Data))
	for i, v := range bank.Data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if string(out) != hex.EncodeToString(raw) {
		t.Error("numpy reads different values from the features file")
	}
}

// pythonNumpy returns a Python interpreter that imports numpy, or "".
func nnPythonNumpy() string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	return ""
}

func TestScorerErrors(t *testing.T) {
	if _, err := NewNearestNeighbourScorer(0, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("k=0: %v", err)
	}
	def, err := NewNearestNeighbourScorer(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := def.NN().(*FaissNN); !ok || f.NumWorkers() != DefaultNumWorkers || def.K() != 1 {
		t.Errorf("default search method: %T", def.NN())
	}
	rng := rand.New(rand.NewPCG(45, 46))
	bank, q := nnRandMatrix(rng, 5, 8), nnRandMatrix(rng, 2, 8)
	s := newTestScorer(t, 3)
	if _, _, _, err := s.Predict([]Tensor{q}); !errors.Is(err, ErrState) {
		t.Errorf("predict before fit: %v", err)
	}
	if err := s.Save(t.TempDir(), false, ""); !errors.Is(err, ErrState) {
		t.Errorf("save before fit: %v", err)
	}
	nan := nnRandMatrix(rng, 5, 8)
	nan.Data[9] = float32(math.NaN())
	for name, in := range map[string][]Tensor{
		"no arrays":     nil,
		"empty array":   {NewTensor(0, 8)},
		"row mismatch":  {bank, nnRandMatrix(rng, 4, 8)},
		"NaN":           {nan},
		"inconsistent":  {{Shape: []int{5, 8}, Data: make([]float32, 39)}},
		"scalar-shaped": {{Shape: []int{}, Data: []float32{1}}},
	} {
		if err := s.Fit(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("fit %s: %v", name, err)
		}
	}
	if err := s.Fit([]Tensor{bank}); err != nil {
		t.Fatal(err)
	}
	big := newTestScorer(t, 6)
	if err := big.Fit([]Tensor{bank}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := big.Predict([]Tensor{q}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("k=6 on 5 rows: %v", err)
	}
	qnan := nnRandMatrix(rng, 2, 8)
	qnan.Data[3] = float32(math.NaN())
	for name, in := range map[string][]Tensor{
		"dimension": {nnRandMatrix(rng, 2, 9)},
		"NaN":       {qnan},
		"none":      nil,
	} {
		if _, _, _, err := s.Predict(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("predict %s: %v", name, err)
		}
	}

	dir := t.TempDir()
	if err := s.Load(dir, ""); !errors.Is(err, ErrIO) {
		t.Errorf("load from an empty folder: %v", err)
	}
	if err := s.Save(dir, true, ""); err != nil {
		t.Fatal(err)
	}
	idxPath := filepath.Join(dir, ScorerIndexFile)
	good, _ := os.ReadFile(idxPath)
	os.WriteFile(idxPath, good[:len(good)-3], 0o644)
	if err := s.Load(dir, ""); !errors.Is(err, ErrFormat) {
		t.Errorf("load a truncated index: %v", err)
	}
	os.WriteFile(idxPath, good, 0o644)
	featPath := filepath.Join(dir, ScorerFeaturesFile)
	os.WriteFile(featPath, []byte("\x80\x04cos\nsystem\n."), 0o644)
	if err := s.Load(dir, ""); !errors.Is(err, ErrFormat) {
		t.Errorf("load a hostile features pickle: %v", err)
	}
	other := newTestScorer(t, 1)
	other.Fit([]Tensor{nnRandMatrix(rng, 7, 8)})
	if err := other.Save(t.TempDir(), true, ""); err != nil {
		t.Fatal(err)
	}
	// Features of another bank next to this index: refused.
	d2 := t.TempDir()
	s.Save(d2, false, "")
	otherDir := t.TempDir()
	other.Save(otherDir, true, "")
	pk, _ := os.ReadFile(filepath.Join(otherDir, ScorerFeaturesFile))
	os.WriteFile(filepath.Join(d2, ScorerFeaturesFile), pk, 0o644)
	if err := s.Load(d2, ""); !errors.Is(err, ErrFormat) {
		t.Errorf("features of 7 rows next to an index of 5: %v", err)
	}
	if _, ok := s.DetectionFeatures(); ok {
		t.Error("a failed load left features behind")
	}
}

// TestScorerConcurrentPredict predicts from many goroutines while the bank is re-fitted.
func TestScorerConcurrentPredict(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	bank, q := nnRandMatrix(rng, 500, 32), nnRandMatrix(rng, 40, 32)
	s := newTestScorer(t, 2)
	if err := s.Fit([]Tensor{bank}); err != nil {
		t.Fatal(err)
	}
	want, _, _, err := s.Predict([]Tensor{q})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	fail := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 25; it++ {
				got, _, _, err := s.Predict([]Tensor{q})
				if err != nil {
					fail <- err.Error()
					return
				}
				if !reflect.DeepEqual(got, want) {
					fail <- "concurrent predict differs"
					return
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		if err := s.Fit([]Tensor{bank}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(fail)
	for f := range fail {
		t.Fatal(f)
	}
}
