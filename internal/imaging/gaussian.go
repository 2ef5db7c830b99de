package imaging

import "math"

// GaussianRadius is scipy's kernel radius int(truncate*sigma + 0.5).
func GaussianRadius(sigma, truncate float64) int {
	return int(truncate*sigma + 0.5)
}

// GaussianKernel1D returns scipy.ndimage's order-0 Gaussian kernel
// (_gaussian_kernel1d): exp(-0.5/sigma^2 * x^2) for x = -radius..radius, divided by its
// sum, the sum taken in numpy's pairwise order.
func GaussianKernel1D(sigma float64, radius int) []float64 {
	k := make([]float64, 2*radius+1)
	c := -0.5 / (sigma * sigma)
	for i := range k {
		x := float64(i - radius)
		k[i] = math.Exp(c * (x * x))
	}
	s := numpyPairwiseSum(k)
	for i := range k {
		k[i] /= s
	}
	return k
}

// numpyPairwiseSum adds v in the order numpy's pairwise_sum uses for float64 (with the
// reduction's identity 0 added first).
func numpyPairwiseSum(v []float64) float64 {
	return 0 + pairwise(v)
}

// pairwise is numpy's pairwise_sum: sequential below 8 elements, eight interleaved
// accumulators up to 128, and recursive halving (at a multiple of 8) above.
func pairwise(v []float64) float64 {
	n := len(v)
	switch {
	case n < 8:
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], v[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += v[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += v[i]
		}
		return s
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwise(v[:n2]) + pairwise(v[n2:])
	}
}

// reflectIndex maps i onto 0..n-1 with scipy's mode "reflect" (half-sample symmetric,
// d c b a | a b c d | d c b a), repeated as often as needed.
func reflectIndex(i, n int) int {
	p := 2 * n
	i %= p
	if i < 0 {
		i += p
	}
	if i >= n {
		i = p - 1 - i
	}
	return i
}

// GaussianFilter2D smooths the h x w float32 plane src into dst like
// scipy.ndimage.gaussian_filter(src, sigma, mode="reflect", truncate=truncate) on a
// float32 array: a correlation along axis 0 (down the columns) and then along axis 1,
// each computed in float64 in scipy's symmetric-kernel order
// (w[0]*x[i] + sum over j=r..1 of (x[i-j] + x[i+j])*w[j]) and stored as float32 between
// and after the passes. A sigma of at most 1e-15 copies src, as scipy skips that axis.
// dst and src may be the same slice; both hold at least h*w values.
func GaussianFilter2D(dst, src []float32, h, w int, sigma, truncate float64) {
	n := h * w
	if sigma <= 1e-15 {
		copy(dst[:n], src[:n])
		return
	}
	r := GaussianRadius(sigma, truncate)
	k := GaussianKernel1D(sigma, r)
	wc := k[r:] // wc[j] = weight at distance j (the kernel is symmetric)

	// Axis 0: rows combined with float64 row accumulators.
	tmp := make([]float32, n)
	acc := make([]float64, w)
	for y := 0; y < h; y++ {
		row := src[y*w : y*w+w]
		for x, v := range row {
			acc[x] = float64(v) * wc[0]
		}
		for j := r; j >= 1; j-- {
			a := src[reflectIndex(y-j, h)*w:][:w]
			b := src[reflectIndex(y+j, h)*w:][:w]
			wj := wc[j]
			for x := range acc {
				acc[x] += (float64(a[x]) + float64(b[x])) * wj
			}
		}
		out := tmp[y*w : y*w+w]
		for x, v := range acc {
			out[x] = float32(v)
		}
	}

	// Axis 1: each row extended by r reflected samples on both sides.
	line := make([]float64, w+2*r)
	for y := 0; y < h; y++ {
		row := tmp[y*w : y*w+w]
		for i := range line {
			line[i] = float64(row[reflectIndex(i-r, w)])
		}
		out := dst[y*w : y*w+w]
		for x := range out {
			c := x + r
			s := line[c] * wc[0]
			for j := r; j >= 1; j-- {
				s += (line[c-j] + line[c+j]) * wc[j]
			}
			out[x] = float32(s)
		}
	}
}
