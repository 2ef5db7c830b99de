//go:build !amd64

package coreset

// sqDist8Rows sets out[j] = Σ_k (data[idx[j]*d+k] − c[k])² for every j (exact). Requires
// d <= quantMaxDim, valid indices and len(out) >= len(idx).
func sqDist8Rows(c []int16, data []int8, d int, idx []int32, out []int32) {
	out = out[:len(idx)]
	for j, q := range idx {
		r := int(q) * d
		out[j] = sqDist8Clamped(data[r:r+d:r+d], c)
	}
}

// sqDist8Contig sets out[j] = Σ_k (rows[j*d+k] − c[k])² for j < len(out) (exact). Requires
// d <= quantMaxDim and len(rows) >= len(out)*d.
func sqDist8Contig(c []int16, rows []int8, d int, out []int32) {
	for j := range out {
		out[j] = sqDist8Clamped(rows[j*d:(j+1)*d], c)
	}
}

// dotU8Rows has no fast kernel on this architecture: it computes nothing and returns 0.
func dotU8Rows(cu []uint8, rows []int8, d int, out []int32) int {
	return 0
}
