//go:build faultinject

package parallel

import "sync/atomic"

var injectPanic atomic.Bool

// InjectPanic makes every following worker panic (on = true) until switched off. It
// exists only in builds with the faultinject tag.
func InjectPanic(on bool) { injectPanic.Store(on) }

func maybeInjectPanic() {
	if injectPanic.Load() {
		panic("injected fault")
	}
}
