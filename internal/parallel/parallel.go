// Package parallel runs work on a fixed number of goroutines and turns a panic in any of
// them into an error (wrapping errs.ErrInternal) instead of a crash of the host process:
// recover only catches panics of its own goroutine, so every worker the library starts
// goes through here.
package parallel

import (
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// For runs fn(w) for w = 0..workers-1 on separate goroutines and waits for all of them.
// A panic in any worker is recovered and returned as an error naming the panic value; the
// other workers still run to completion.
func For(workers int, fn func(worker int)) error {
	if workers <= 1 {
		return call(0, fn)
	}
	var wg sync.WaitGroup
	errsByWorker := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errsByWorker[w] = call(w, fn)
		}()
	}
	wg.Wait()
	for _, err := range errsByWorker {
		if err != nil {
			return err
		}
	}
	return nil
}

// call runs fn(w), converting a panic into an error.
func call(w int, fn func(int)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic in worker goroutine %d: %v\n%s", errs.ErrInternal, w, r, debug.Stack())
		}
	}()
	maybeInjectPanic()
	fn(w)
	return nil
}
