package main

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	ct "github.com/libpatchcore/libpatchcore/capi/cgotest"
)

// goNode is a heap object holding Go pointers.
type goNode struct {
	next *goNode
	name *string
}

var heapSink *goNode

// A made-up handle is refused with INVALID_HANDLE whatever its value, also when it happens
// to be the address of a Go object holding pointers: the id is never handed to cgo as a
// pointer, where cgo's pointer checks would inspect that object and panic.
func TestHandleThatLooksLikeAGoPointer(t *testing.T) {
	defer lockThread()()
	obj := &goNode{next: &goNode{}, name: new(string)}
	heapSink = obj // on the heap, where cgo's checks look
	fake := ct.Handle(uintptr(unsafe.Pointer(obj)))
	expect(t, ct.ModelFit(fake), ct.InvalidHandle, "patchcore_model_fit", "unknown or already freed")
	expect(t, ct.ScorerFree(fake), ct.InvalidHandle, "patchcore_scorer_free", "unknown or already freed")
	expect(t, ct.ConfigSetInt(fake, ct.ParamResize, 1), ct.InvalidHandle, "patchcore_config_set_int", "unknown or already freed")
	runtime.KeepAlive(obj)
}

// Handle values are never below 4096: Go code holds them typed as C pointers (export
// parameters, cgo call arguments and results), and the Go runtime aborts the process when a
// stack it copies holds a pointer-typed value in (0, 4096). Then a GC-heavy stress: 8
// goroutines predict, create and free through the C API while the collector runs without
// pause (every run shrinks and copies the goroutines' stacks); the process must survive.
func TestHandleValuesAreNotSmallPointers(t *testing.T) {
	defer lockThread()()
	var c, s, seg ct.Handle
	expect(t, ct.ConfigCreate(&c), ct.OK, "patchcore_config_create")
	expect(t, ct.ScorerCreate(1, ct.NNExact, 0, 1, &s), ct.OK, "patchcore_scorer_create")
	expect(t, ct.SegmentorCreate(4, 4, 0, &seg), ct.OK, "patchcore_segmentor_create")
	m := tinyModel(t, 1)
	for _, h := range []ct.Handle{c, s, seg, m} {
		if h < 4096 {
			t.Errorf("handle %#x is below 4096", h)
		}
	}
	ct.ConfigFree(c)
	ct.ScorerFree(s)
	ct.SegmentorFree(seg)
	defer ct.ModelFree(m)

	defer debug.SetGCPercent(debug.SetGCPercent(1))
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			runtime.GC()
		}
	})
	test := tinyFeatures(2, 1)
	want := predict(m, test)
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			defer lockThread()()
			for !stop.Load() {
				var seg ct.Handle
				if ct.SegmentorCreate(4, 4, 0, &seg) != ct.OK || ct.SegmentorFree(seg) != ct.OK {
					errs <- ct.LastError()
					return
				}
				if got := predict(m, test); !got.equal(want) {
					errs <- "predict: " + ct.LastError()
					return
				}
			}
		})
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
