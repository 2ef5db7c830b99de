//go:build faultinject

package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/parallel"
)

// With the faultinject build tag, parallel.InjectPanic makes every worker goroutine of the
// library panic. A panic during predict or fit comes back as ErrInternal naming it (the
// process survives), the model is poisoned (every later call fails with ErrState, also
// once the fault is gone), and other models are unaffected.
// Run with: go test -tags faultinject -run Inject ./core
func TestInjectedWorkerPanicPoisonsModel(t *testing.T) {
	defer parallel.InjectPanic(false)
	victim, bystander := tinyModel(t), tinyModel(t)
	defer victim.Close()
	defer bystander.Close()
	test := tinyLayers(3, 2)
	want, err := bystander.PredictFeatures(test)
	if err != nil {
		t.Fatal(err)
	}

	parallel.InjectPanic(true)
	_, err = victim.PredictFeatures(test)
	parallel.InjectPanic(false)
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "injected fault") {
		t.Fatalf("predict with a panicking worker: %v", err)
	}
	for name, call := range map[string]func() error{
		"PredictFeatures": func() error { _, err := victim.PredictFeatures(test); return err },
		"AddFeatures":     func() error { return victim.AddFeatures(test) },
		"FinishFit":       func() error { return victim.FinishFit() },
		"MarshalBinary":   func() error { _, err := victim.MarshalBinary(); return err },
	} {
		if err := call(); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "unusable after an earlier internal error") {
			t.Errorf("%s on the poisoned model: %v", name, err)
		}
	}
	got, err := bystander.PredictFeatures(test)
	if err != nil || got.Scores[0] != want.Scores[0] || got.Scores[1] != want.Scores[1] {
		t.Fatalf("the other model after the fault: %v, %v (before %v)", got.Scores, err, want.Scores)
	}

	// A fault during fit poisons the model the same way.
	m, err := NewModel(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	parallel.InjectPanic(true)
	err = m.AddFeatures(tinyLayers(1, 2))
	parallel.InjectPanic(false)
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("add features with a panicking worker: %v", err)
	}
	if err := m.FitFeatures(tinyLayers(1, 2)); !errors.Is(err, ErrState) {
		t.Fatalf("fit after the fault: %v", err)
	}
}
