package coreset

import (
	"math"
	"math/rand/v2"
)

// Synthetic point sets shared by the tests and the benchmarks. All are n×d row-major.

// gaussianData: i.i.d. standard normal entries. The worst case for pruning (distances
// concentrate around a common value).
func gaussianData(n, d int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// clusteredData imitates PatchCore features of many images of one texture: nc cluster
// centres (themselves spread along a few dominant directions plus a shared offset, as
// post-ReLU features are), cluster sizes with a long tail, and anisotropic noise within a
// cluster (a random low-rank basis with decaying scales plus a little isotropic noise).
func clusteredData(n, d, nc int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 12))
	const rank = 8
	offset := make([]float64, d)
	for j := range offset {
		offset[j] = 2 * r.Float64()
	}
	centres := make([][]float64, nc)
	bases := make([][][]float64, nc)
	scales := make([][]float64, nc)
	weights := make([]float64, nc)
	global := randomBasis(r, 16, d)
	var wsum float64
	for c := range centres {
		v := make([]float64, d)
		copy(v, offset)
		for k, b := range global {
			a := r.NormFloat64() * 3 / float64(k+1)
			for j := range v {
				v[j] += a * b[j]
			}
		}
		for j := range v {
			v[j] += 0.3 * r.NormFloat64()
		}
		centres[c] = v
		bases[c] = randomBasis(r, rank, d)
		scales[c] = make([]float64, rank)
		s := 0.3 + r.Float64()
		for k := range scales[c] {
			scales[c][k] = s / float64(k+1)
		}
		weights[c] = 1 / float64(c+3) // Zipf-like cluster sizes
		wsum += weights[c]
	}
	x := make([]float32, n*d)
	for i := 0; i < n; i++ {
		u := r.Float64() * wsum
		c := 0
		for c < nc-1 && u > weights[c] {
			u -= weights[c]
			c++
		}
		row := x[i*d : (i+1)*d]
		for j := range row {
			row[j] = float32(centres[c][j] + 0.05*r.NormFloat64())
		}
		for k, b := range bases[c] {
			a := r.NormFloat64() * scales[c][k]
			for j := range row {
				row[j] += float32(a * b[j])
			}
		}
	}
	return x
}

// randomBasis returns k random unit vectors of dimension d.
func randomBasis(r *rand.Rand, k, d int) [][]float64 {
	out := make([][]float64, k)
	for i := range out {
		v := make([]float64, d)
		var s float64
		for j := range v {
			v[j] = r.NormFloat64()
			s += v[j] * v[j]
		}
		s = math.Sqrt(s)
		for j := range v {
			v[j] /= s
		}
		out[i] = v
	}
	return out
}

// latticeData: small integer coordinates, so many distances are exactly equal (ties in
// the argmax and in the min updates) and many points coincide.
func latticeData(n, d, levels int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 13))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(r.IntN(levels))
	}
	return x
}

// duplicatedData: m distinct Gaussian rows, each repeated (in shuffled order) to fill n.
func duplicatedData(n, d, m int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 14))
	base := gaussianData(m, d, seed)
	x := make([]float32, n*d)
	for i := 0; i < n; i++ {
		k := r.IntN(m)
		copy(x[i*d:(i+1)*d], base[k*d:(k+1)*d])
	}
	return x
}

// randomStarts draws count distinct indices below n.
func randomStarts(n, count int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 15))
	return r.Perm(n)[:min(count, n)]
}
