package core

import (
	"math/rand/v2"
	"testing"
)

// embBenchSizes are per-image feature maps: Small = MobileNetV2 blocks 6/10 at 224,
// Medium = WRN50 layer2/layer3 at 224 (784 x 1024 output), Large = WRN50 at 320.
var embBenchSizes = []struct {
	name   string
	shapes [][3]int
}{
	{"Small", [][3]int{{192, 28, 28}, {384, 14, 14}}},
	{"Medium", [][3]int{{512, 28, 28}, {1024, 14, 14}}},
	{"Large", [][3]int{{512, 40, 40}, {1024, 20, 20}}},
}

func BenchmarkEmbed(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	cfg := DefaultEmbedConfig()
	for _, s := range embBenchSizes {
		layers := embRandomMaps(rng, 1, s.shapes)
		for _, path := range []struct {
			name string
			f    func([]Tensor, EmbedConfig, []float32) (Tensor, int, int, error)
		}{{"Fused", Embed}, {"Generic", EmbedGeneric}} {
			b.Run(s.name+"/"+path.name, func(b *testing.B) {
				emb, _, _, err := path.f(layers, cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				dst := emb.Data
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, _, _, err := path.f(layers, cfg, dst); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/image")
			})
		}
	}
}
