package core

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// A folder in the reference's layout (params pickle + faiss.write_index of the bank)
// imports and predicts the reference's scores.
func TestImportReferenceModel(t *testing.T) {
	dir := t.TempDir()
	const prepend = "Ensemble-1-1_"
	params, err := os.ReadFile(golden.Testdata("reference/mnv2_patchcore_params.pkl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, prepend+ReferenceParamsFile), params, 0o644)
	nn, err := NewFaissNN(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer nn.Close()
	if err := nn.Fit(goldenTensor(t, "mnv2/memory_bank.npy")); err != nil {
		t.Fatal(err)
	}
	if err := nn.Save(filepath.Join(dir, prepend+ReferenceIndexFile)); err != nil {
		t.Fatal(err)
	}
	opts := ReferenceImportOptions{Prepend: prepend, Backbone: mnv2Backbone(t),
		Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	m, err := ImportReferenceModel(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	png := func(name string) string { return golden.Path(t, "mnv2/png/"+name) }
	p, err := m.Predict(ImageFiles{png("test_good_001.png"), png("test_stain_000.png")})
	if err != nil {
		t.Fatal(err)
	}
	checkGoldenPrediction(t, p, "mnv2")

	// Missing prefix, wrong backbone output layers, corrupted index: clear errors.
	if _, err := ImportReferenceModel(dir, ReferenceImportOptions{Backbone: opts.Backbone}); !errors.Is(err, ErrIO) {
		t.Errorf("missing files: %v", err)
	}
	idx := filepath.Join(dir, prepend+ReferenceIndexFile)
	b, _ := os.ReadFile(idx)
	os.WriteFile(idx, b[:len(b)-5], 0o644)
	if _, err := ImportReferenceModel(dir, opts); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated index: %v", err)
	}
	os.WriteFile(filepath.Join(dir, prepend+ReferenceParamsFile), []byte("\x80\x04garbage"), 0o644)
	if _, err := ImportReferenceModel(dir, opts); !errors.Is(err, ErrFormat) {
		t.Errorf("garbage params: %v", err)
	}
}
