package coreset

// dotSSE is the SSE implementation of the kernel (dot_amd64.s). It reads len(x) elements of
// both slices; the caller guarantees len(y) >= len(x).
//
//go:noescape
func dotSSE(x, y []float32) float32

// dot returns the kernel's float32 dot product of x and y[:len(x)].
func dot(x, y []float32) float32 {
	return dotSSE(x, y[:len(x)])
}
