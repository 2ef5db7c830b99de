package core

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkScorerPredict times the search of one test image: its 784 patch embeddings
// (a 28×28 grid of 1024-d rows, the default at 224) scored against memory banks of 1 % and
// 10 % of Small (60 images × 784 patches), Medium (200) and Large (1000) training sets, k = 1.
// Exact search (IndexFlatL2) reports its GFLOP/s (2·784·bank·1024 per image); IVF-PQ runs
// where its bank has the 512 rows FAISS needs and is small enough (≤ 20,000 rows) to train
// within a benchmark's time. Random Gaussian rows: exact search costs the same on any data.
//
//	go test -run xxx -bench ScorerPredict ./core
func BenchmarkScorerPredict(b *testing.B) {
	const patches, dim = 784, 1024
	query := nnRandMatrix(rand.New(rand.NewPCG(31, 32)), patches, dim)
	for _, size := range []struct {
		name   string
		images int
	}{{"Small", 60}, {"Medium", 200}, {"Large", 1000}} {
		for _, pct := range []int{1, 10} {
			rows := size.images * patches * pct / 100
			for _, method := range []string{"exact", "ivfpq"} {
				if method == "ivfpq" && (rows < approximateMinTrain || rows > 20000) {
					continue
				}
				b.Run(fmt.Sprintf("%s/%d%%/%s", size.name, pct, method), func(b *testing.B) {
					bank := nnRandMatrix(rand.New(rand.NewPCG(uint64(rows), 33)), rows, dim)
					var nn NNMethod
					var err error
					if method == "exact" {
						nn, err = NewFaissNN(false, runtime.NumCPU())
					} else {
						nn, err = NewApproximateFaissNN(false, runtime.NumCPU())
					}
					if err != nil {
						b.Fatal(err)
					}
					sc, err := NewNearestNeighbourScorer(1, nn)
					if err != nil {
						b.Fatal(err)
					}
					defer sc.Close()
					if err := sc.Fit([]Tensor{bank}); err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						scores, _, _, err := sc.Predict([]Tensor{query})
						if err != nil || len(scores) != patches {
							b.Fatalf("%d scores, %v", len(scores), err)
						}
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(sec*1000, "ms/image")
					if method == "exact" {
						b.ReportMetric(2*patches*float64(rows)*dim/sec/1e9, "GFLOP/s")
					}
				})
			}
		}
	}
}
