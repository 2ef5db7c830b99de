//go:build faultinject

package main

import (
	"testing"

	ct "github.com/libpatchcore/libpatchcore/capi/cgotest"
	"github.com/libpatchcore/libpatchcore/internal/parallel"
)

// With the faultinject build tag, parallel.InjectPanic makes every worker goroutine of the
// library panic. Through the exported C functions (this test binary links them directly,
// the header gains nothing): a predict whose workers panic returns INTERNAL with a message
// naming the panic, the host process carries on, the model answers INVALID_STATE to every
// later call until it is freed, and other objects are unaffected; stateless objects (a
// segmentor) work again once the fault is gone.
// Run with: go test -tags faultinject -run Inject ./capi
func TestInjectedWorkerPanicThroughC(t *testing.T) {
	defer lockThread()()
	defer parallel.InjectPanic(false)
	victim, bystander := tinyModel(t, 1), tinyModel(t, 2)
	defer ct.ModelFree(bystander)
	test := tinyFeatures(3, 1)
	want := predict(bystander, test)

	parallel.InjectPanic(true)
	st := predict(victim, test).status
	parallel.InjectPanic(false)
	expect(t, st, ct.Internal, "patchcore_model_predict_features", "internal error", "panic in worker goroutine", "injected fault")

	out := ct.Outputs{Scores: make([]float32, 1)}
	expect(t, ct.ModelPredictFeatures(victim, test.layers, test.shapes, 2, out), ct.InvalidState, "patchcore_model_predict_features", "unusable after an earlier internal error")
	expect(t, ct.ModelAddFeatures(victim, test.layers, test.shapes, 2), ct.InvalidState, "patchcore_model_add_features", "unusable")
	expect(t, ct.ModelFit(victim), ct.InvalidState, "patchcore_model_fit", "unusable")
	expect(t, ct.ModelSaveToBuffer(victim, nil, 0, nil), ct.InvalidState, "patchcore_model_save_to_buffer", "unusable")
	expect(t, ct.ModelFree(victim), ct.OK, "patchcore_model_free")
	if got := predict(bystander, test); !got.equal(want) {
		t.Fatalf("the other model after the fault: %v, want %v", got.scores, want.scores)
	}

	var seg ct.Handle
	expect(t, ct.SegmentorCreate(8, 8, 4, &seg), ct.OK, "patchcore_segmentor_create")
	defer ct.SegmentorFree(seg)
	scores, maps := []float32{0, 1, 2, 3}, make([]float32, 64)
	parallel.InjectPanic(true)
	st = ct.SegmentorConvert(seg, scores, 1, 2, 2, maps, 64, nil)
	parallel.InjectPanic(false)
	expect(t, st, ct.Internal, "patchcore_segmentor_convert", "injected fault")
	expect(t, ct.SegmentorConvert(seg, scores, 1, 2, 2, maps, 64, nil), ct.OK, "patchcore_segmentor_convert")
}
