package main

import "C"

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync"
)

var stackOnce sync.Once

// guard is deferred first by every export. It turns a panic into PATCHCORE_ERR_INTERNAL
// with a message naming the function, prints the stack to stderr once per process, and
// poisons the handle the call was working on (if any), so later calls fail cleanly.
func guard(fn string, status *C.int32_t, poison func()) {
	r := recover()
	if r == nil {
		return
	}
	stackOnce.Do(func() { fmt.Fprintf(os.Stderr, "libpatchcore: panic in %s: %v\n%s", fn, r, debug.Stack()) })
	if poison != nil {
		poison()
	}
	setLastError(fmt.Sprintf("%s: internal error: %v", fn, r))
	*status = statusInternal
}
