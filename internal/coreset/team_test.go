package coreset

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// Every phase runs fn once per worker, the phases one after the other, including after the
// helpers have parked between phases.
func TestTeamRunsEveryWorkerOncePerPhase(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, workers := range []int{1, 2, 4, 9} {
		tm := newTeam(workers)
		if want := min(workers, 4); tm.size() != want {
			t.Fatalf("newTeam(%d) with GOMAXPROCS 4 has %d workers, want %d", workers, tm.size(), want)
		}
		workers := tm.size()
		var total atomic.Int64
		for phase := range 200 {
			seen := make([]atomic.Int32, workers)
			tm.run(func(w int) {
				seen[w].Add(1)
				total.Add(1)
			})
			for w := range seen {
				if n := seen[w].Load(); n != 1 {
					t.Fatalf("%d workers, phase %d: worker %d ran %d times", workers, phase, w, n)
				}
			}
			if phase%50 == 49 {
				time.Sleep(2 * teamSpin) // let the helpers park
			}
		}
		tm.close()
		if total.Load() != int64(200*workers) {
			t.Fatalf("%d workers: %d calls", workers, total.Load())
		}
	}
}

// A panic in a helper or in the caller's share comes back from run on the caller.
func TestTeamPanicsReachTheCaller(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, bad := range []int{0, 1} {
		tm := newTeam(2)
		r := catch(func() {
			tm.run(func(w int) {
				if w == bad {
					panic("team worker fault")
				}
			})
		})
		tm.close()
		if s, _ := r.(string); s != "team worker fault" {
			t.Fatalf("worker %d panicking: recovered %v", bad, r)
		}
	}
}

// close ends the helper goroutines, spinning or parked.
func TestTeamCloseStopsHelpers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	before := runtime.NumGoroutine()
	spinning, parked := newTeam(3), newTeam(3)
	parked.run(func(int) {})
	time.Sleep(3 * teamSpin)
	spinning.close()
	parked.close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}
