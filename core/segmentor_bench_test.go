package core

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSegment: one image's patch scores to a smoothed map. Small = 28 -> 224
// (default), Medium = 40 -> 320, Large = 64 -> 512.
func BenchmarkSegment(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, s := range []struct {
		name         string
		grid, target int
	}{{"Small", 28, 224}, {"Medium", 40, 320}, {"Large", 64, 512}} {
		scores := NewTensor(1, s.grid, s.grid)
		for i := range scores.Data {
			scores.Data[i] = rng.Float32() * 100
		}
		seg := NewRescaleSegmentor(s.target, s.target)
		b.Run(s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := seg.ConvertToSegmentation(scores); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/image")
		})
	}
}
