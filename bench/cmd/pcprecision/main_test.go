package main

import (
	"math"
	"testing"
)

// TestRelDiff checks the drift statistics on hand-computed cases and the rejection of
// scores that make a relative difference meaningless.
func TestRelDiff(t *testing.T) {
	// |1.1-1|/1 = 0.1, |1.5-2|/2 = 0.25, |4-4|/4 = 0: mean 0.35/3, max 0.25.
	mean, maxRel, err := relDiff([]float32{1.1, 1.5, 4}, []float32{1, 2, 4})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mean-0.35/3) > 1e-7 || math.Abs(maxRel-0.25) > 1e-7 {
		t.Fatalf("relDiff = %v, %v; want %v, 0.25", mean, maxRel, 0.35/3)
	}
	nan := float32(math.NaN())
	for name, c := range map[string][2][]float32{
		"length":         {{1, 2}, {1}},
		"empty":          {{}, {}},
		"zero reference": {{1}, {0}},
		"NaN variant":    {{nan}, {1}},
		"NaN reference":  {{1}, {nan}},
	} {
		if _, _, err := relDiff(c[0], c[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
