package coreset

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSqDist8Rows checks the int8 kernel against the generic integer loop, including the
// extreme values ±127 whose squared differences are largest.
func TestSqDist8Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, d := range []int{1, 16, 17, 128, 1024, quantMaxDim} {
		const n = 12
		data := make([]int8, n*d)
		for i := range data {
			data[i] = int8(r.IntN(255) - 127)
		}
		for i := 0; i < d; i++ { // row 0 all +127 against a centre of -127: the maximum
			data[i] = 127
		}
		c := make([]int16, d)
		for i := range c {
			c[i] = -127
		}
		for _, m := range []int{1, 2, 3, 4, 5, 7, 12} {
			idx := make([]int32, m)
			for j := range idx {
				idx[j] = int32(r.IntN(n))
			}
			idx[0] = 0
			out := make([]int32, m)
			sqDist8Rows(c, data, d, idx, out)
			for j, q := range idx {
				want := sqDist8Generic(data[int(q)*d:int(q+1)*d], c)
				if int64(out[j]) != want {
					t.Fatalf("d=%d m=%d j=%d: kernel %d, generic %d", d, m, j, out[j], want)
				}
			}
			if want := int64(d) * 254 * 254; int64(out[0]) != want {
				t.Fatalf("d=%d: extreme distance %d, want %d", d, out[0], want)
			}
		}
	}
}

// TestSqDist8Clamped: beyond quantMaxDim dimensions the squared distance can exceed int32;
// it is clamped, never wrapped (a wrapped value would break the lower bound).
func TestSqDist8Clamped(t *testing.T) {
	const d = 2 * quantMaxDim
	a := make([]int8, d)
	c := make([]int16, d)
	for i := range a {
		a[i], c[i] = 127, -127
	}
	if got := sqDist8Clamped(a, c); got != math.MaxInt32 {
		t.Fatalf("clamped distance %d, want %d", got, math.MaxInt32)
	}
	out := make([]int32, 1)
	sqDist8Contig(c, a, d, out)
	if out[0] != math.MaxInt32 {
		t.Fatalf("contiguous kernel beyond quantMaxDim: %d", out[0])
	}
}

// TestQuantizeBound checks that the quantization error bound holds and that the lower
// bound s·√Σ − qerr(x) − qerr(y) never exceeds the true (float64) distance.
func TestQuantizeBound(t *testing.T) {
	for _, kind := range []string{"gauss", "clustered", "offset"} {
		const n, d = 300, 40
		var x []float32
		switch kind {
		case "gauss":
			x = gaussianData(n, d, 8)
		case "clustered":
			x = clusteredData(n, d, 5, 8)
		case "offset":
			x = clusteredData(n, d, 5, 8)
			for i := range x {
				x[i] = x[i]*1e-3 + 500
			}
		}
		pts := NewPoints(x, n, d, 1)
		qz := pts.newQuantizer()
		q := make([]int8, n*d)
		qerr := make([]float64, n)
		for i := range qerr {
			qerr[i] = qz.encode(pts.row(i), q[i*d:(i+1)*d])
		}
		c16 := make([]int16, d)
		var tightest float64 = math.Inf(1)
		for a := 0; a < n; a++ {
			for j, v := range q[a*d : (a+1)*d] {
				c16[j] = int16(v)
			}
			for b := 0; b < n; b++ {
				var t2 float64
				for j := 0; j < d; j++ {
					e := float64(x[a*d+j]) - float64(x[b*d+j])
					t2 += e * e
				}
				lb := qz.scale*math.Sqrt(float64(sqDist8Generic(q[b*d:(b+1)*d], c16))) - qerr[a] - qerr[b]
				if lb > math.Sqrt(t2) {
					t.Fatalf("%s: lower bound %v above the distance %v for (%d,%d)", kind, lb, math.Sqrt(t2), a, b)
				}
				if a != b {
					tightest = min(tightest, math.Sqrt(t2)-lb)
				}
			}
		}
		t.Logf("%s: scale %.3g, smallest slack %.3g", kind, qz.scale, tightest)
	}
}

// TestDotU8Rows checks the signed-by-unsigned byte kernel (where the CPU has one) against
// an integer loop, with the extreme values −127 × 255.
func TestDotU8Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, d := range []int{32, 128, 160, 1024} {
		const n = 13
		rows := make([]int8, n*d)
		for i := range rows {
			rows[i] = int8(r.IntN(255) - 127)
		}
		for i := 0; i < d; i++ {
			rows[i] = -127
		}
		cu := make([]uint8, d)
		for i := range cu {
			cu[i] = uint8(1 + r.IntN(255))
		}
		cu[0] = 255
		out := make([]int32, n)
		done := dotU8Rows(cu, rows, d, out)
		t.Logf("d=%d: fast kernel handled %d of %d rows", d, done, n)
		for j := 0; j < done; j++ {
			var want int64
			for k := 0; k < d; k++ {
				want += int64(rows[j*d+k]) * int64(cu[k])
			}
			if int64(out[j]) != want {
				t.Fatalf("d=%d row %d: kernel %d, want %d", d, j, out[j], want)
			}
		}
		if done != 0 && done != n&^3 {
			t.Fatalf("d=%d: handled %d rows, want 0 or %d", d, done, n&^3)
		}
	}
}
