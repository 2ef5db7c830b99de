// Package fuzzwatch turns a hung fuzz input into a crash the fuzzer records: Go's fuzzer
// has no time limit per input of its own. The fuzz targets of core and capi share it.
package fuzzwatch

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// Limit is the time one fuzz input may take: $PATCHCORE_FUZZ_TIMEOUT (a Go duration),
// 20 s by default.
func Limit() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PATCHCORE_FUZZ_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 20 * time.Second
}

// Start arms the watchdog for one input: unless the returned stop is called within
// Limit, it prints every goroutine's stack to stderr and panics.
func Start() (stop func()) {
	d := Limit()
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		os.Stderr.Write(buf)
		panic(fmt.Sprintf("fuzz input still running after %v", d))
	})
	return func() { timer.Stop() }
}
