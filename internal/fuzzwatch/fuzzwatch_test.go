package fuzzwatch

import (
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	for env, want := range map[string]time.Duration{"": 20 * time.Second, "3s": 3 * time.Second, "-1s": 20 * time.Second, "soon": 20 * time.Second} {
		t.Setenv("PATCHCORE_FUZZ_TIMEOUT", env)
		if got := Limit(); got != want {
			t.Errorf("PATCHCORE_FUZZ_TIMEOUT=%q: %v, want %v", env, got, want)
		}
	}
}

// A stopped watchdog never fires (it would panic the test binary).
func TestStopDisarms(t *testing.T) {
	t.Setenv("PATCHCORE_FUZZ_TIMEOUT", "20ms")
	Start()()
	time.Sleep(60 * time.Millisecond)
}
