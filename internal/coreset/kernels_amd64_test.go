package coreset

import "testing"

// TestFastMatchesPlainKernels repeats part of TestFastMatchesPlain with the CPU-specific
// kernels switched off (no AVX512-VNNI; no AVX2 either), so that every kernel path of
// GreedyFast is compared with the plain loop on this machine.
func TestFastMatchesPlainKernels(t *testing.T) {
	vnni, avx2 := hasVNNI, hasAVX2
	defer func() { hasVNNI, hasAVX2 = vnni, avx2 }()
	var sets []matchSet
	for _, s := range matchSets() {
		if s.n <= 1500 {
			sets = append(sets, s)
		}
	}
	for _, c := range []struct {
		name       string
		vnni, avx2 bool
	}{{"AVX2 without VNNI", false, avx2}, {"portable", false, false}} {
		hasVNNI, hasAVX2 = c.vnni, c.avx2
		t.Logf("%s: %d combinations identical", c.name, checkFastMatchesPlain(t, sets, []int{2}))
	}
}
