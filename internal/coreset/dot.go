package coreset

import "math"

// The dot-product kernel. Every distance the samplers use goes through dot, so that the
// plain and the fast greedy loops compute bit-identical float32 values. Its summation order
// is fixed and independent of the CPU: 16 float32 lanes, lane j accumulating the products
// of elements 16i+j in order of i; the lanes are then combined as
//
//	c_l = (L[l] + L[4+l]) + (L[8+l] + L[12+l])     for l = 0..3
//	s   = (c_0 + c_2) + (c_1 + c_3)
//
// and the n mod 16 trailing products are added to s one by one. Products and sums are
// rounded to float32 individually (no fused multiply-add). dot_amd64.s implements the same
// order with SSE; dotGeneric is the portable version and the reference for tests.

// laneCount is the number of accumulation lanes of the dot kernel.
const laneCount = 16

// dotGeneric is the portable implementation of the kernel described above.
func dotGeneric(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	var l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15 float32
	i := 0
	for ; i+laneCount <= n; i += laneCount {
		a := x[i : i+laneCount : i+laneCount]
		b := y[i : i+laneCount : i+laneCount]
		// The explicit conversions forbid the compiler from fusing multiply and add.
		l0 += float32(a[0] * b[0])
		l1 += float32(a[1] * b[1])
		l2 += float32(a[2] * b[2])
		l3 += float32(a[3] * b[3])
		l4 += float32(a[4] * b[4])
		l5 += float32(a[5] * b[5])
		l6 += float32(a[6] * b[6])
		l7 += float32(a[7] * b[7])
		l8 += float32(a[8] * b[8])
		l9 += float32(a[9] * b[9])
		l10 += float32(a[10] * b[10])
		l11 += float32(a[11] * b[11])
		l12 += float32(a[12] * b[12])
		l13 += float32(a[13] * b[13])
		l14 += float32(a[14] * b[14])
		l15 += float32(a[15] * b[15])
	}
	c0 := (l0 + l4) + (l8 + l12)
	c1 := (l1 + l5) + (l9 + l13)
	c2 := (l2 + l6) + (l10 + l14)
	c3 := (l3 + l7) + (l11 + l15)
	s := (c0 + c2) + (c1 + c3)
	for ; i < n; i++ {
		s += float32(x[i] * y[i])
	}
	return s
}

// dotRoundings is the largest number of roundings any single product goes through in the
// kernel for vectors of length n (one for the product, one per later addition on its path):
// ceil(n/16) in the lane, 4 in the lane combination, and the trailing additions.
func dotRoundings(n int) int {
	return (n/laneCount + 1) + 4 + n%laneCount
}

// unitRoundoff is the float32 unit roundoff u = 2^-24.
const unitRoundoff = 1.0 / (1 << 24)

// distFromDot is the reference's distance primitive, sqrt(max((-2ab + |a|²) + |b|², 0)),
// evaluated in float32 from the squared norms and the dot product. a is the point whose
// distance is wanted, b the centre (start point, selected point): the reference computes
// the batch of distances from all features to b in that order.
func distFromDot(na, nb, ab float32) float32 {
	s := (na - 2*ab) + nb
	if s < 0 {
		s = 0
	}
	// The float64 square root of a float32, rounded to float32, is the correctly rounded
	// float32 square root.
	return float32(math.Sqrt(float64(s)))
}
