package main

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

var stackOnce sync.Once

// call is the state of one export invocation: the function name for messages and the
// registry entry it holds (locked shared or exclusively), so that the deferred guard can
// poison the entry on a panic and release it in every case.
type call struct {
	fn        string
	e         *entry
	exclusive bool
}

// guard is deferred first by every export (defer c.guard(&status)). It releases the entry
// the call holds. A panic becomes PATCHCORE_ERR_INTERNAL with a message naming the
// function; the goroutine stacks are printed to stderr once per process, and the entry is
// poisoned before it is released, so every later call on it fails with INVALID_STATE.
func (c *call) guard(status *C.int32_t) {
	r := recover()
	if r != nil && c.e != nil {
		c.e.poisoned.Store(true)
	}
	c.release()
	if r == nil {
		return
	}
	c.reportPanic(r)
	*status = statusInternal
}

// guardValue is the guard of the few exports that return a value instead of a status
// (names, sizes, flags). A panic there leaves the zero value as the result and the
// message as the thread's last error.
func (c *call) guardValue() {
	if r := recover(); r != nil {
		c.reportPanic(r)
	}
}

// reportPanic prints the stacks of all goroutines to stderr (once per process, so a
// failing loop cannot flood the host's log) and makes the panic the thread's last error.
func (c *call) reportPanic(r any) {
	stackOnce.Do(func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "libpatchcore: panic in %s: %v\n%s\n", c.fn, r, buf)
	})
	setLastError(fmt.Sprintf("%s: internal error: %v", c.fn, r))
}

// fail records err as the calling thread's last error, prefixed with the function name,
// and returns its status.
func (c *call) fail(err error) C.int32_t { return fail(c.fn, err) }

// acquire looks up id, locks its entry (exclusively for mutations, shared for
// concurrent-safe calls) and checks that it is usable. The guard releases it.
func (c *call) acquire(id uintptr, k kind, exclusive bool) error {
	e, err := lookup(id, k, false)
	if err != nil {
		return err
	}
	if exclusive {
		e.mu.Lock()
	} else {
		e.mu.RLock()
	}
	c.e, c.exclusive = e, exclusive
	return e.usable(id)
}

// release unlocks the entry the call holds, if any.
func (c *call) release() {
	if c.e == nil {
		return
	}
	if c.exclusive {
		c.e.mu.Unlock()
	} else {
		c.e.mu.RUnlock()
	}
	c.e = nil
}

// take unregisters id, so no new call can reach it, then waits for the calls in flight
// by locking the entry exclusively, and marks it closed. The object is the caller's to
// close; the guard releases the lock.
func (c *call) take(id uintptr, k kind) (any, error) {
	e, err := lookup(id, k, true)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	c.e, c.exclusive = e, true
	e.closed = true
	return e.obj, nil
}

// use acquires id and returns its object as a T. The assertion cannot fail for objects
// the exports registered; if the registry were ever corrupted, it panics inside the guard
// and the entry is poisoned.
func use[T any](c *call, id uintptr, k kind, exclusive bool) (T, error) {
	if err := c.acquire(id, k, exclusive); err != nil {
		var zero T
		return zero, err
	}
	return c.e.obj.(T), nil
}
