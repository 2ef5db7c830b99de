package coreset

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// catch runs fn and returns the value it panicked with on the calling goroutine.
func catch(fn func()) (r any) {
	defer func() { r = recover() }()
	fn()
	return nil
}

// A panic in any worker goroutine of parallelChunks or parallelRows comes back to the
// calling goroutine (where core's guards recover it) once every worker has stopped; it
// never unwinds a goroutine of its own, which would kill the host process.
func TestWorkerPanicsReachTheCaller(t *testing.T) {
	for _, bad := range []int{0, 3} { // the caller's own worker and a spawned one
		var calls, started atomic.Int64
		var first [4]atomic.Bool
		r := catch(func() {
			parallelChunks(1000, 4, 10, func(worker, lo, hi int) {
				calls.Add(1)
				// Each worker's first chunk waits until all four have one (a blocked
				// worker takes no more chunks, so at most 4 of the 100 are taken first).
				if !first[worker].Swap(true) {
					started.Add(1)
					for started.Load() < 4 {
						runtime.Gosched()
					}
					if worker == bad {
						panic("chunk worker fault")
					}
				}
			})
		})
		if s, _ := r.(string); s != "chunk worker fault" {
			t.Fatalf("parallelChunks, worker %d panicking: recovered %v", bad, r)
		}
		if calls.Load() == 0 {
			t.Fatal("no chunk ran")
		}
	}
	p := NewPoints(make([]float32, 4096*2), 4096, 2, 4)
	var ranges atomic.Int64
	r := catch(func() {
		p.parallelRows(func(lo, hi int) {
			ranges.Add(1)
			if lo > 0 {
				var m map[int]int
				m[lo] = hi // a runtime error in a spawned worker
			}
		})
	})
	if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("parallelRows: recovered %v", r)
	}
	if ranges.Load() != 4 {
		t.Fatalf("%d of 4 row ranges ran before the panic was re-raised", ranges.Load())
	}
}
