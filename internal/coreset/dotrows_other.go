//go:build !amd64

package coreset

// dotRows sets out[j] = dot(data[idx[j]*d:][:d], c) for every j.
func dotRows(c, data []float32, d int, idx []int32, out []float32) {
	out = out[:len(idx)]
	for j, q := range idx {
		r := int(q) * d
		out[j] = dot(data[r:r+d:r+d], c)
	}
}
