//go:build !faultinject

package parallel

// maybeInjectPanic does nothing in normal builds; builds with the faultinject tag can
// make workers panic on purpose to test the recovery path end to end.
func maybeInjectPanic() {}
