//go:build !amd64

package coreset

// dot returns the kernel's float32 dot product of x and y[:len(x)].
func dot(x, y []float32) float32 {
	return dotGeneric(x, y)
}
