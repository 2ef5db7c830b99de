package coreset

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDotMatchesGeneric checks that the platform kernel reproduces the portable one bit for
// bit (same summation order) for every length up to 300, on data with mixed magnitudes.
func TestDotMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		for rep := 0; rep < 20; rep++ {
			x := make([]float32, n)
			y := make([]float32, n+3)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(7)-3)))
				y[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(7)-3)))
			}
			got, want := dot(x, y), dotGeneric(x, y)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("n=%d: dot=%v (%08x), generic=%v (%08x)", n, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestDotGenericOrder pins the documented summation order on a case where it matters:
// lanes 0 and 4 cancel exactly only if they are combined before the small terms.
func TestDotGenericOrder(t *testing.T) {
	x := make([]float32, 17)
	y := make([]float32, 17)
	for i := range y {
		y[i] = 1
	}
	x[0], x[4], x[8], x[16] = 1e8, -1e8, 1, 0.5
	// c_0 = (1e8 + -1e8) + (1 + 0) = 1, s = 1 + 0 + 0, tail: 1 + 0.5.
	if got := dotGeneric(x, y); got != 1.5 {
		t.Fatalf("generic order: got %v, want 1.5", got)
	}
	if got := dot(x, y); got != 1.5 {
		t.Fatalf("kernel order: got %v, want 1.5", got)
	}
	// A sequential sum would lose the 1: ((1e8 + 1) - 1e8) = 0 in float32 if 1 came second.
	x[0], x[1], x[4] = 1e8, 1, -1e8
	x[8] = 0
	// lane 1 holds 1, c_0 = 0, c_1 = 1 → s = (0+0)+(1+0) = 1, tail 0.5 → 1.5.
	if got := dotGeneric(x, y); got != 1.5 {
		t.Fatalf("generic order (2): got %v, want 1.5", got)
	}
}

// TestDistFromDot checks the distance primitive against hand-computed values, including
// the clamp of a slightly negative squared distance to zero.
func TestDistFromDot(t *testing.T) {
	a := []float32{3, 0}
	b := []float32{0, 4}
	if got := distFromDot(dot(a, a), dot(b, b), dot(a, b)); got != 5 {
		t.Fatalf("dist((3,0),(0,4)) = %v, want 5", got)
	}
	// na - 2ab + nb < 0 by rounding: clamped to 0.
	if got := distFromDot(1, 1, 1.0000001); got != 0 {
		t.Fatalf("negative squared distance not clamped: %v", got)
	}
}

// TestDotRowsMatchesDot checks the batch kernel against the single dot product (bit for
// bit) for dimensions with and without the fast path, batch sizes around multiples of 4,
// repeated and out-of-order indices.
func TestDotRowsMatchesDot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range []int{1, 15, 16, 32, 100, 128, 256, 1024} {
		const n = 50
		data := make([]float32, n*d)
		for i := range data {
			data[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(5)-2)))
		}
		c := make([]float32, d)
		for i := range c {
			c[i] = float32(r.NormFloat64())
		}
		for _, m := range []int{0, 1, 3, 4, 5, 8, 13, 64} {
			idx := make([]int32, m)
			for j := range idx {
				idx[j] = int32(r.IntN(n))
			}
			out := make([]float32, m+1)
			out[m] = 42
			dotRows(c, data, d, idx, out)
			for j, q := range idx {
				want := dotGeneric(data[int(q)*d:int(q+1)*d], c)
				if math.Float32bits(out[j]) != math.Float32bits(want) {
					t.Fatalf("d=%d m=%d j=%d: dotRows %v, dot %v", d, m, j, out[j], want)
				}
			}
			if out[m] != 42 {
				t.Fatalf("d=%d m=%d: wrote past the batch", d, m)
			}
		}
	}
}
