package core

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// benchCrops returns n random 256×256 crops (in memory, sharing the photo's pixels) of the
// grass texture photo that scripts/fetch-demo-photos.sh puts in .deps/photos; the
// benchmark is skipped without it. Real texture matters: the coreset's pruning, and so
// its speed, depends on how the embeddings cluster.
func benchCrops(b *testing.B, n int) ImageSlice {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", ".deps", "photos", "grass.png")
	if _, err := os.Stat(path); err != nil {
		b.Skipf("demo photo not available (scripts/fetch-demo-photos.sh): %v", err)
	}
	photo, err := LoadImage(path)
	if err != nil {
		b.Fatal(err)
	}
	const side = 256
	rng := rand.New(rand.NewPCG(41, 42))
	crops := make(ImageSlice, n)
	for i := range crops {
		x, y := rng.IntN(photo.Width-side+1), rng.IntN(photo.Height-side+1)
		off := y*photo.Stride + x*photo.Channels
		crops[i] = Image{Width: side, Height: side, Channels: photo.Channels, Stride: photo.Stride, Pix: photo.Pix[off:]}
	}
	return crops
}

// benchModel is an unfitted model with the golden MobileNetV2 backbone (blocks 6 and 10,
// inputs in [-1, 1]) and the reference's defaults otherwise: approximate greedy coreset
// 10 %, exact search.
func benchModel(b *testing.B) *Model {
	needORT(b)
	cfg := mnv2Config()
	cfg.Backbone = BackboneFromFile(golden.Path(b, mnv2ONNX))
	cfg.Sampler = "approx_greedy_coreset"
	m, err := NewModel(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkModelFit times Model.Fit end to end (preprocessing, MobileNetV2, embedding,
// approximate greedy coreset 10 %, exact index) on Small (6), Medium (20) and Large (60)
// in-memory 256×256 texture crops.
//
//	go test -run xxx -bench ModelFit -benchtime 1x ./core
func BenchmarkModelFit(b *testing.B) {
	for _, s := range []struct {
		name   string
		images int
	}{{"Small", 6}, {"Medium", 20}, {"Large", 60}} {
		b.Run(s.name, func(b *testing.B) {
			crops := benchCrops(b, s.images)
			m := benchModel(b)
			for b.Loop() {
				if err := m.Fit(crops, nil); err != nil {
					b.Fatal(err)
				}
			}
			if rows, _ := m.BankSize(); rows != s.images*28*28/10 {
				b.Fatalf("bank of %d rows, want 10 %% of %d patches", rows, s.images*28*28)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/fit")
			b.ReportMetric(sec*1000/float64(s.images), "ms/image")
		})
	}
}

// BenchmarkModelPredict times Model.Predict (preprocessing, backbone, embedding, exact
// search against a 10 % bank of 20 images, segmentation) at batch 1 and batch 8.
//
//	go test -run xxx -bench ModelPredict ./core
func BenchmarkModelPredict(b *testing.B) {
	crops := benchCrops(b, 28)
	m := benchModel(b)
	if err := m.Fit(crops[:20], nil); err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			in := crops[20 : 20+batch]
			for b.Loop() {
				p, err := m.Predict(in)
				if err != nil || len(p.Scores) != batch {
					b.Fatalf("%d scores, %v", len(p.Scores), err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N*batch), "ms/image")
		})
	}
}
