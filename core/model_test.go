package core

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// goldenTensor loads a golden float32 array as a Tensor.
func goldenTensor(t *testing.T, rel string) Tensor {
	t.Helper()
	a := golden.Load(t, rel)
	return Tensor{Shape: a.Shape, Data: a.F32}
}

// maxRelErr is max|got - want| / max|want|.
func maxRelErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		num = math.Max(num, math.Abs(float64(got[i])-float64(want[i])))
		den = math.Max(den, math.Abs(float64(want[i])))
	}
	return num / den
}

func mnv2Config() Config {
	cfg := DefaultConfig()
	cfg.Layers = []string{"block_6_expand_relu", "block_10_expand_relu"}
	cfg.Sampler = "identity"
	cfg.Mean = [3]float32{0.5, 0.5, 0.5}
	cfg.Std = [3]float32{0.5, 0.5, 0.5}
	return cfg
}

func mnv2Backbone(t *testing.T) BackboneSource {
	return BackboneFromFile(golden.Path(t, "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"))
}

// The host-drives-extraction path reproduces the reference's scores and segmentations
// from the golden feature maps.
func TestModelFeaturesGoldenMNV2(t *testing.T) {
	m, err := NewModel(mnv2Config())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	train := []Tensor{goldenTensor(t, "mnv2/block6_train.npy"), goldenTensor(t, "mnv2/block10_train.npy")}
	if err := m.FitFeatures(train); err != nil {
		t.Fatal(err)
	}
	if rows, dim := m.BankSize(); rows != 1568 || dim != 1024 {
		t.Fatalf("bank %dx%d, want 1568x1024", rows, dim)
	}
	p, err := m.PredictFeatures([]Tensor{goldenTensor(t, "mnv2/block6_test.npy"), goldenTensor(t, "mnv2/block10_test.npy")})
	if err != nil {
		t.Fatal(err)
	}
	checkGoldenPrediction(t, p, "mnv2")
}

func checkGoldenPrediction(t *testing.T, p Prediction, dir string) {
	t.Helper()
	if e := maxRelErr(p.Scores, golden.Load(t, dir+"/image_scores_k1.npy").F32); e > 1e-3 {
		t.Errorf("image scores %v: rel err %g", p.Scores, e)
	}
	if e := maxRelErr(p.PatchScores.Data, golden.Load(t, dir+"/patch_scores_k1.npy").F32); e > 1e-3 {
		t.Errorf("patch scores rel err %g", e)
	}
	if e := maxRelErr(p.Maps.Data, golden.Load(t, dir+"/segmentations_k1.npy").F32); e > 1e-3 {
		t.Errorf("segmentations rel err %g", e)
	}
}

// The whole pipeline from PNG files through the ONNX backbone matches the reference run.
func TestModelImagesGoldenMNV2(t *testing.T) {
	cfg := mnv2Config()
	cfg.Backbone = mnv2Backbone(t)
	cfg.BatchSize = 1 // exercises batching across calls
	m, err := NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	png := func(name string) string { return golden.Path(t, "mnv2/png/"+name) }
	if err := m.Fit(ImageFiles{png("train_good_000.png"), png("train_good_001.png")}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := m.Predict(ImageFiles{png("test_good_001.png"), png("test_stain_000.png")})
	if err != nil {
		t.Fatal(err)
	}
	checkGoldenPrediction(t, p, "mnv2")
	if !(p.Scores[1] > p.Scores[0]) {
		t.Errorf("defective image does not score higher: %v", p.Scores)
	}

	// Save -> load -> predict is bit-identical.
	path := filepath.Join(t.TempDir(), "m.pcm")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadModel(path, LoadOptions{BackbonePath: cfg.Backbone.path})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	p2, err := m2.Predict(ImageFiles{png("test_good_001.png"), png("test_stain_000.png")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Scores {
		if p.Scores[i] != p2.Scores[i] {
			t.Fatalf("score %d changed after save/load: %v vs %v", i, p.Scores[i], p2.Scores[i])
		}
	}
	for i := range p.Maps.Data {
		if p.Maps.Data[i] != p2.Maps.Data[i] {
			t.Fatalf("map value %d changed after save/load", i)
		}
	}

	// Without an explicit path, the manifest's file name is looked up next to the model.
	if _, err := LoadModel(path, LoadOptions{}); !errors.Is(err, ErrIO) {
		t.Errorf("missing backbone next to the model: got %v, want ErrIO", err)
	}
	// A different backbone is refused.
	other := filepath.Join(t.TempDir(), "other.onnx")
	b, _ := os.ReadFile(cfg.Backbone.path)
	os.WriteFile(other, append(b, 0), 0o644)
	if _, err := LoadModel(path, LoadOptions{BackbonePath: other}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("wrong backbone: got %v, want ErrInvalidArgument", err)
	}
}

func fittedFeatureModel(t *testing.T) (*Model, []Tensor) {
	t.Helper()
	m, err := NewModel(mnv2Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.FitFeatures([]Tensor{goldenTensor(t, "mnv2/block6_train.npy"), goldenTensor(t, "mnv2/block10_train.npy")}); err != nil {
		t.Fatal(err)
	}
	return m, []Tensor{goldenTensor(t, "mnv2/block6_test.npy"), goldenTensor(t, "mnv2/block10_test.npy")}
}

// A model file truncated or bit-flipped anywhere is refused with ErrFormat.
func TestModelFileCorruption(t *testing.T) {
	m, _ := fittedFeatureModel(t)
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	step := len(b)/97 + 1
	for n := 0; n < len(b); n += step {
		if _, err := UnmarshalModel(b[:n], "", LoadOptions{}); !errors.Is(err, ErrFormat) {
			t.Fatalf("truncated at %d: got %v", n, err)
		}
	}
	for i := 0; i < len(b); i += step {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		if _, err := UnmarshalModel(c, "", LoadOptions{}); !errors.Is(err, ErrFormat) {
			t.Fatalf("flip at %d: got %v", i, err)
		}
	}
	m2, err := UnmarshalModel(b, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2.Close()
}

// Predict from many goroutines gives the single-threaded result.
func TestModelConcurrentPredict(t *testing.T) {
	m, test := fittedFeatureModel(t)
	want, err := m.PredictFeatures(test)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				p, err := m.PredictFeatures(test)
				if err != nil {
					errs <- err
					return
				}
				for i := range p.Scores {
					if p.Scores[i] != want.Scores[i] {
						errs <- errors.New("score differs from single-threaded")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestModelStateAndArgumentErrors(t *testing.T) {
	m, err := NewModel(mnv2Config())
	if err != nil {
		t.Fatal(err)
	}
	test := []Tensor{goldenTensor(t, "mnv2/block6_test.npy"), goldenTensor(t, "mnv2/block10_test.npy")}
	if _, err := m.PredictFeatures(test); !errors.Is(err, ErrState) {
		t.Errorf("predict before fit: %v", err)
	}
	if err := m.FinishFit(); !errors.Is(err, ErrState) {
		t.Errorf("fit with nothing added: %v", err)
	}
	if _, err := m.Predict(ImageFiles{"x.png"}); !errors.Is(err, ErrState) {
		t.Errorf("image predict on a features-only model: %v", err)
	}
	if err := m.FitFeatures(test[:1]); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("one layer of two: %v", err)
	}
	bad := Tensor{Shape: test[0].Shape, Data: append([]float32(nil), test[0].Data...)}
	bad.Data[7] = float32(math.NaN())
	if err := m.FitFeatures([]Tensor{bad, test[1]}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NaN features: %v", err)
	}
	m.Close()
	if _, err := m.PredictFeatures(test); !errors.Is(err, ErrState) {
		t.Errorf("predict after close: %v", err)
	}
	for _, mutate := range []func(*Config){
		func(c *Config) { c.Layers = nil },
		func(c *Config) { c.NumNN = 0 },
		func(c *Config) { c.PatchSize = 2 },
		func(c *Config) { c.Resize = 100 },
		func(c *Config) { c.Sampler = "nope" },
		func(c *Config) { c.Std[1] = 0 },
		func(c *Config) { c.NNMethod = "hnsw" },
	} {
		cfg := mnv2Config()
		mutate(&cfg)
		if _, err := NewModel(cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("bad config %+v accepted: %v", cfg, err)
		}
	}
}

func TestModelCalibration(t *testing.T) {
	m, _ := fittedFeatureModel(t)
	scores := []float32{1, 2, 3, 4, 10}
	c, err := m.CalibrateScores(scores, nil, CalibrateQuantile, 0.5)
	if err != nil || c.Threshold != 3 {
		t.Fatalf("median threshold %v, err %v", c.Threshold, err)
	}
	// mean 4, population sigma sqrt(10): 4 + 2*3.1623
	c, err = m.CalibrateScores(scores, nil, CalibrateMeanStd, 2)
	if err != nil || math.Abs(float64(c.Threshold)-(4+2*math.Sqrt(10))) > 1e-5 {
		t.Fatalf("mean+2sigma threshold %v, err %v", c.Threshold, err)
	}
	c, err = m.CalibrateScores([]float32{1, 2, 8, 9}, []bool{false, false, true, true}, CalibrateF1, 0)
	if err != nil || c.Threshold != 8 {
		t.Fatalf("F1 threshold %v, err %v", c.Threshold, err)
	}
	norm, err := m.NormalizeScores([]float32{8, 1, 100})
	if err != nil || norm[0] != 0.5 || norm[1] != 0 || norm[2] != 1 {
		t.Fatalf("normalised %v, err %v", norm, err)
	}
	// The calibration survives save/load.
	b, _ := m.MarshalBinary()
	m2, err := UnmarshalModel(b, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.Calibration() != c {
		t.Fatalf("calibration after load %+v, want %+v", m2.Calibration(), c)
	}
}

// The pending embeddings live outside the Go heap (internal/offheap): adding ~50 MB of
// them leaves the Go heap about as it was, and fitting from them still works.
func TestModelPendingEmbeddingsStayOffTheGoHeap(t *testing.T) {
	m, err := NewModel(mnv2Config())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	layers := []Tensor{goldenTensor(t, "mnv2/block6_train.npy"), goldenTensor(t, "mnv2/block10_train.npy")}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for range 8 {
		if err := m.AddFeatures(layers); err != nil {
			t.Fatal(err)
		}
	}
	pendingBytes := uint64(m.pending.Len()) * 4
	if pendingBytes < 40<<20 {
		t.Fatalf("only %d bytes pending", pendingBytes)
	}
	if grew := int64(heap()) - int64(before); grew > int64(pendingBytes)/4 {
		t.Fatalf("the Go heap grew by %d bytes for %d bytes of pending embeddings", grew, pendingBytes)
	}
	if err := m.FinishFit(); err != nil {
		t.Fatal(err)
	}
	if m.pending.Len() != 0 {
		t.Fatal("pending embeddings kept after the fit")
	}
	if rows, _ := m.BankSize(); rows == 0 {
		t.Fatal("empty bank")
	}
}
