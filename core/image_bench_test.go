package core

import "testing"

// BenchmarkResize: the default transform (Resize 256, CenterCrop 224, normalise) of one
// RGB image. Small = 256x256 (no resampling), Medium = 700x700, Large = 1024x1024.
func BenchmarkResize(b *testing.B) {
	tr := DefaultImageTransform()
	dst := make([]float32, tr.TensorSize())
	for _, s := range []struct {
		name string
		side int
	}{{"Small", 256}, {"Medium", 700}, {"Large", 1024}} {
		img := Image{Width: s.side, Height: s.side, Channels: 3, Stride: 3 * s.side, Pix: make([]byte, 3*s.side*s.side)}
		for i := range img.Pix {
			img.Pix[i] = byte(i*31 + i/977)
		}
		b.Run(s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := tr.Apply(img, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/image")
		})
	}
}
