package main

import (
	"sync"
	"sync/atomic"
)

// kind tells handle types apart, so a scorer handle passed as a model is refused.
type kind int

const (
	kindConfig kind = iota + 1
	kindModel
	kindAggregator
	kindScorer
	kindSegmentor
)

var kindNames = map[kind]string{kindConfig: "config", kindModel: "model", kindAggregator: "aggregator", kindScorer: "scorer", kindSegmentor: "segmentor"}

// entry is one live object. Calls that mutate it take mu exclusively; concurrent-safe
// calls (predict, segment, get) take it shared.
type entry struct {
	kind kind
	mu   sync.RWMutex
	obj  any
	// closed is set (under mu, exclusively) by free. A call that looked the entry up just
	// before free unregistered it acquires mu after free released it, and sees closed.
	closed   bool
	poisoned atomic.Bool
}

// firstID is the first handle id. A handle travels through Go code typed as a C pointer
// (an export's *C.patchcore_model parameter, the result of pc_model_handle), and the Go
// runtime aborts the process ("invalid pointer found on stack") when it copies a goroutine
// stack holding a pointer-typed value in (0, 4096). Ids start well above that and stay far
// below the addresses Go maps its heap at, so that the garbage collector ignores them.
const firstID = 1 << 16

// registry maps handle ids to entries. Ids only increase, so a stale id is never reused
// and always detected.
var registry = struct {
	sync.Mutex
	next    uintptr
	entries map[uintptr]*entry
}{next: firstID - 1, entries: map[uintptr]*entry{}}

// register stores obj and returns its new id (at least firstID, never 0).
func register(k kind, obj any) uintptr {
	registry.Lock()
	defer registry.Unlock()
	registry.next++
	registry.entries[registry.next] = &entry{kind: k, obj: obj}
	return registry.next
}

// lookup returns the live entry for id, or an INVALID_HANDLE error naming the problem
// (INVALID_STATE in a child process after fork()).
// With remove set it also unregisters the entry, in the same critical section, so two
// racing frees of one handle cannot both succeed.
func lookup(id uintptr, k kind, remove bool) (*entry, error) {
	if err := errIfForkedChild(); err != nil {
		return nil, err // before the registry's lock, which a parent thread may have held
	}
	if id == 0 {
		return nil, errorf(statusInvalidHandle, "%s handle is NULL", kindNames[k])
	}
	registry.Lock()
	defer registry.Unlock()
	e, ok := registry.entries[id]
	if !ok {
		return nil, errorf(statusInvalidHandle, "%s handle %#x is unknown or already freed", kindNames[k], id)
	}
	if e.kind != k {
		return nil, errorf(statusInvalidHandle, "handle %#x is a %s, not a %s", id, kindNames[e.kind], kindNames[k])
	}
	if remove {
		delete(registry.entries, id)
	}
	return e, nil
}

// liveHandles is the number of registered objects (tests assert it returns to zero).
func liveHandles() int {
	registry.Lock()
	defer registry.Unlock()
	return len(registry.entries)
}

// usable returns an INVALID_STATE error for an entry poisoned by an earlier panic and an
// INVALID_HANDLE error for one freed while the caller waited for it. Call it with mu held.
func (e *entry) usable(id uintptr) error {
	if e.closed {
		return errorf(statusInvalidHandle, "%s handle %#x was freed during the call", kindNames[e.kind], id)
	}
	if e.poisoned.Load() {
		return errorf(statusInvalidState, "%s is in an unknown state after an earlier internal error; free it", kindNames[e.kind])
	}
	return nil
}
