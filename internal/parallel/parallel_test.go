package parallel

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

func TestForRunsEveryWorker(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7} {
		var calls atomic.Int64
		seen := make([]atomic.Bool, max(n, 1))
		if err := For(n, func(w int) { calls.Add(1); seen[w].Store(true) }); err != nil {
			t.Fatal(err)
		}
		if want := int64(max(n, 1)); calls.Load() != want {
			t.Fatalf("workers=%d: %d calls, want %d", n, calls.Load(), want)
		}
		for w := range seen {
			if !seen[w].Load() {
				t.Fatalf("workers=%d: worker %d never ran", n, w)
			}
		}
	}
}

func TestForRecoversPanics(t *testing.T) {
	var finished atomic.Int64
	err := For(4, func(w int) {
		if w == 2 {
			var m map[string]int
			m["boom"] = 1 // a real runtime panic
		}
		finished.Add(1)
	})
	if !errors.Is(err, errs.ErrInternal) || !strings.Contains(err.Error(), "worker goroutine 2") {
		t.Fatalf("got %v", err)
	}
	if finished.Load() != 3 {
		t.Fatalf("%d other workers finished, want 3", finished.Load())
	}
	if err := For(1, func(int) { panic("single") }); !errors.Is(err, errs.ErrInternal) {
		t.Fatalf("single worker panic: %v", err)
	}
}
