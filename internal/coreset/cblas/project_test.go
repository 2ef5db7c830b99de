package cblas

import (
	"math/rand/v2"
	"testing"
)

// TestProjectHandComputed: [[1 2 3] [4 5 6]] · [[1 0] [0 1] [1 1]] = [[4 5] [10 11]].
func TestProjectHandComputed(t *testing.T) {
	out := make([]float32, 4)
	Project([]float32{1, 2, 3, 4, 5, 6}, 2, 3, []float32{1, 0, 0, 1, 1, 1}, 2, out)
	want := []float32{4, 5, 10, 11}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("got %v, want %v", out, want)
		}
	}
}

// TestProjectMatchesLoop compares sgemm with a float64 triple loop on random data, and
// checks the degenerate sizes (no rows, no input columns).
func TestProjectMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n, dIn, dOut = 37, 70, 9
	x := make([]float32, n*dIn)
	p := make([]float32, dIn*dOut)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for i := range p {
		p[i] = float32(r.NormFloat64())
	}
	out := make([]float32, n*dOut)
	Project(x, n, dIn, p, dOut, out)
	for i := 0; i < n; i++ {
		for j := 0; j < dOut; j++ {
			var s float64
			for k := 0; k < dIn; k++ {
				s += float64(x[i*dIn+k]) * float64(p[k*dOut+j])
			}
			if diff := float64(out[i*dOut+j]) - s; diff > 1e-4 || diff < -1e-4 {
				t.Fatalf("(%d,%d): sgemm %v, loop %v", i, j, out[i*dOut+j], s)
			}
		}
	}
	zero := []float32{7, 7}
	Project(nil, 1, 0, nil, 2, zero)
	if zero[0] != 0 || zero[1] != 0 {
		t.Fatalf("dIn = 0: got %v, want zeros", zero)
	}
	Project(nil, 0, 3, nil, 2, nil) // no rows: nothing to do, no panic
}

// TestProjectAcrossChunks: rows on both sides of the chunk boundaries land where they
// belong (row i of x is (i, 1, -i), p sums the first two columns and negates the third).
func TestProjectAcrossChunks(t *testing.T) {
	n := 2*projectChunkRows + 5
	x := make([]float32, n*3)
	for i := range n {
		x[i*3], x[i*3+1], x[i*3+2] = float32(i), 1, -float32(i)
	}
	p := []float32{1, 0, 1, 0, 0, -1} // 3×2
	out := make([]float32, n*2)
	Project(x, n, 3, p, 2, out)
	for i := range n {
		if out[i*2] != float32(i)+1 || out[i*2+1] != float32(i) {
			t.Fatalf("row %d: got (%v, %v), want (%v, %v)", i, out[i*2], out[i*2+1], i+1, i)
		}
	}
}
