package coreset

import (
	"runtime"
	"sync/atomic"
	"time"
)

// team runs the many short parallel phases of the greedy loop (one per pick, ~0.2-0.4 ms
// each) on persistent helper goroutines that spin between phases before they park. A
// fork-join per phase (parallelChunks) pays a goroutine wake-up at its start and, when the
// caller waits, at its end: measured 30-60 µs each, so that the second of two workers
// did only ~40 % of a phase's chunks and a phase of 200 µs of work took 320 µs.
//
// The caller is worker 0; the workers are numbered below size(). Phases run one at a time:
// run returns after every worker has finished the phase. close must be called to stop the
// helpers.
type team struct {
	workers int
	phase   atomic.Uint64    // number of phases started; helpers wait for it to move
	fn      func(worker int) // the current phase's work, set before phase moves
	pending atomic.Int32     // helpers still in the current phase
	stop    atomic.Bool
	parked  []atomic.Bool   // per helper: it is (about to be) blocked on wake
	wake    []chan struct{} // per helper, capacity 1: a token to unpark it
	failed  workerPanic     // the first panic of any worker
}

// teamSpin is how long an idle helper spins before it parks.
const teamSpin = 100 * time.Microsecond

// newTeam starts helpers for min(workers, GOMAXPROCS) workers in all (none for one): a
// spinning helper keeps its P, so more helpers than Ps would wait on each other.
func newTeam(workers int) *team {
	t := &team{workers: max(min(workers, runtime.GOMAXPROCS(0)), 1)}
	t.parked = make([]atomic.Bool, t.workers)
	t.wake = make([]chan struct{}, t.workers)
	for k := 1; k < t.workers; k++ {
		t.wake[k] = make(chan struct{}, 1)
		go t.helper(k)
	}
	return t
}

// size is the number of workers, the caller included.
func (t *team) size() int { return t.workers }

// helper runs the phases as worker k until close.
func (t *team) helper(k int) {
	seen := uint64(0)
	for {
		if !t.await(k, seen) {
			return
		}
		seen++
		t.failed.run(func() { t.fn(k) })
		t.pending.Add(-1)
	}
}

// await returns true once phase seen+1 has started, false when the team stops. It spins
// for teamSpin, then parks until run or close hands it a token. A token can arrive after
// the helper stopped waiting for it; the stale token only causes one extra check later.
func (t *team) await(k int, seen uint64) bool {
	start := time.Now()
	for spins := 0; ; spins++ {
		if t.phase.Load() != seen {
			return true
		}
		if t.stop.Load() {
			return false
		}
		if spins&63 != 63 {
			continue
		}
		if time.Since(start) < teamSpin {
			runtime.Gosched() // leave the P to any other goroutine that is ready
			continue
		}
		// Announce the park, then check again: run moves phase before it reads parked,
		// so either it sees this helper parked and sends a token, or this check sees
		// the new phase.
		t.parked[k].Store(true)
		if t.phase.Load() == seen && !t.stop.Load() {
			<-t.wake[k]
		}
		t.parked[k].Store(false)
		start = time.Now()
	}
}

// unpark hands a token to every parked helper.
func (t *team) unpark() {
	for k := 1; k < t.workers; k++ {
		if t.parked[k].Load() {
			select {
			case t.wake[k] <- struct{}{}:
			default: // a token is already waiting
			}
		}
	}
}

// run executes fn(worker) on every worker, the caller being worker 0, and returns when all
// are done. A panic in any of them is re-raised here, after all have finished.
func (t *team) run(fn func(worker int)) {
	if t.workers == 1 {
		fn(0)
		return
	}
	t.fn = fn
	t.pending.Store(int32(t.workers - 1))
	t.phase.Add(1)
	t.unpark()
	t.failed.run(func() { fn(0) })
	for spins := 0; t.pending.Load() != 0; spins++ {
		if spins&63 == 63 {
			runtime.Gosched()
		}
	}
	t.fn = nil
	t.failed.rethrow()
}

// close stops the helpers; the team must not be used afterwards.
func (t *team) close() {
	t.stop.Store(true)
	t.unpark()
}
