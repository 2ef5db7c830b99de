package imaging

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLinearTapsHand checks PyTorch align_corners=False taps on hand-computed cases.
func TestLinearTapsHand(t *testing.T) {
	// 2 -> 4: src = 0.5*(i+0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (index 1, right
	// neighbour clamped to 1).
	dst := make([]float32, 4)
	ResizeBilinear(dst, 1, 4, []float32{0, 1}, 1, 2)
	want := []float32{0, 0.25, 0.75, 1}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("2->4 = %v, want %v", dst, want)
		}
	}
	// 4 -> 2 (downscale, no antialias): src = 2*(i+0.5) - 0.5 = 0.5, 2.5.
	ResizeBilinear(dst[:2], 1, 2, []float32{1, 3, 10, 20}, 1, 4)
	if dst[0] != 2 || dst[1] != 15 {
		t.Fatalf("4->2 = %v, want [2 15]", dst[:2])
	}
	// 2x2 -> 3x3 in 2-D: scale 2/3, centre src = 0.5 -> mean of the four.
	out := make([]float32, 9)
	ResizeBilinear(out, 3, 3, []float32{0, 4, 8, 12}, 2, 2)
	if out[4] != 6 || out[0] != 0 || out[8] != 12 {
		t.Fatalf("2x2->3x3 = %v", out)
	}
	// Identity.
	tp := NewLinearTaps(5, 5)
	for i := 0; i < 5; i++ {
		if tp.I0[i] != i || tp.I1[i] != i || tp.W0[i] != 1 || tp.W1[i] != 0 {
			t.Fatalf("identity taps %+v", tp)
		}
	}
	// Accumulating form adds exactly the resize.
	acc := []float32{1, 1, 1, 1}
	AddBilinearTaps(acc, []float32{0, 1}, 2, NewLinearTaps(1, 1), NewLinearTaps(2, 4), nil)
	for i := range want {
		if acc[i] != 1+want[i] {
			t.Fatalf("AddBilinearTaps = %v", acc)
		}
	}
}

// bruteGaussian is an independent float64 reference: the kernel summed directly and a
// full 2-D separable convolution on an explicitly reflected array, with no intermediate
// float32 rounding.
func bruteGaussian(src []float32, h, w int, sigma float64) []float64 {
	r := int(4*sigma + 0.5)
	k := make([]float64, 2*r+1)
	sum := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	refl := func(i, n int) int {
		for i < 0 || i >= n {
			if i < 0 {
				i = -i - 1
			}
			if i >= n {
				i = 2*n - 1 - i
			}
		}
		return i
	}
	tmp := make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s := 0.0
			for i := -r; i <= r; i++ {
				s += k[i+r] / sum * float64(src[refl(y+i, h)*w+x])
			}
			tmp[y*w+x] = s
		}
	}
	out := make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s := 0.0
			for i := -r; i <= r; i++ {
				s += k[i+r] / sum * tmp[y*w+refl(x+i, w)]
			}
			out[y*w+x] = s
		}
	}
	return out
}

func TestGaussianAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		h, w  int
		sigma float64
	}{{40, 30, 4}, {5, 7, 4}, {1, 9, 2}, {12, 12, 0.7}, {3, 2, 1.3}} {
		src := make([]float32, c.h*c.w)
		for i := range src {
			src[i] = rng.Float32()*10 - 3
		}
		got := make([]float32, len(src))
		GaussianFilter2D(got, src, c.h, c.w, c.sigma, 4)
		want := bruteGaussian(src, c.h, c.w, c.sigma)
		for i := range got {
			if d := math.Abs(float64(got[i]) - want[i]); d > 2e-6*10 {
				t.Fatalf("%+v: pixel %d = %v, want %v", c, i, got[i], want[i])
			}
		}
	}
	k := GaussianKernel1D(4, GaussianRadius(4, 4))
	if len(k) != 33 {
		t.Fatalf("sigma 4 kernel has %d taps, want 33", len(k))
	}
	s := 0.0
	for _, v := range k {
		s += v
	}
	if math.Abs(s-1) > 1e-15 || k[0] != k[32] || k[16] <= k[15] {
		t.Fatalf("kernel sum %v, ends %v %v", s, k[0], k[32])
	}
	// In place and sigma ~ 0 (scipy skips the axis).
	src := []float32{1, 2, 3, 4}
	GaussianFilter2D(src, src, 2, 2, 0, 4)
	if src[0] != 1 || src[3] != 4 {
		t.Fatalf("sigma 0 changed the map: %v", src)
	}
}

// TestPairwiseSum checks numpy's summation order where it differs from a sequential
// sum: with 16 values numpy keeps eight accumulators r[j] = v[j] + v[j+8], so the
// cancelling +-1e16 pair meets before the ones are absorbed (a sequential sum gives 7).
func TestPairwiseSum(t *testing.T) {
	v := make([]float64, 16)
	for i := range v {
		v[i] = 1
	}
	v[0], v[8] = 1e16, -1e16
	if got := numpyPairwiseSum(v); got != 14 {
		t.Fatalf("pairwise = %v, want 14", got)
	}
	long := make([]float64, 300)
	for i := range long {
		long[i] = float64(i)
	}
	if got := numpyPairwiseSum(long); got != 299*300/2 {
		t.Fatalf("pairwise of 0..299 = %v", got)
	}
}
