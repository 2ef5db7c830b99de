package main

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu/openblas-pthread
#include <cblas.h>
*/
import "C"

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/libpatchcore/libpatchcore/internal/blas"
)

// ceilingResult is the machine's measured float32 matrix-product ceiling: the best of reps
// n×n×n SGEMMs through the OpenBLAS the library uses (package blas loads it and selects
// its kernels; FAISS and the coreset projection run the same ones), on all cores and on one.
type ceilingResult struct {
	Kind        string  `json:"kind"` // "ceiling"
	Machine     machine `json:"machine"`
	N           int     `json:"n"`
	Reps        int     `json:"reps"`
	BLASCore    string  `json:"blas_core"`
	Threads     int     `json:"threads"`
	GFLOPS      float64 `json:"gflops"`
	GFLOPS1     float64 `json:"gflops_1thread"`
	Seconds     float64 `json:"seconds_best"`
	Seconds1    float64 `json:"seconds_best_1thread"`
	FLOPsPerRun float64 `json:"flops_per_run"`
}

func runCeiling(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	n := fs.Int("n", 4096, "matrix side")
	reps := fs.Int("reps", 3, "runs per thread count (the best is kept)")
	out := fs.String("out", "", "append the JSON result line to this file (default: stdout)")
	fs.Parse(args)
	if *n <= 0 || *n > 1<<15 || *reps <= 0 {
		return fmt.Errorf("need 0 < n <= 32768 and reps > 0, got %d and %d", *n, *reps)
	}
	if err := blas.Available(); err != nil {
		return err
	}
	r := ceilingResult{Kind: "ceiling", Machine: newMachine(), N: *n, Reps: *reps, Threads: runtime.NumCPU()}
	rng := rand.New(rand.NewPCG(1, 2))
	a, b, c := make([]float32, *n**n), make([]float32, *n**n), make([]float32, *n**n)
	for i := range a {
		a[i], b[i] = rng.Float32()-0.5, rng.Float32()-0.5
	}
	r.FLOPsPerRun = 2 * float64(*n) * float64(*n) * float64(*n)
	for _, threads := range []int{r.Threads, 1} {
		blas.SetThreads(threads)
		best := sgemmBest(a, b, c, *n, *reps)
		if threads == r.Threads {
			r.Seconds, r.GFLOPS = best, r.FLOPsPerRun/best/1e9
		} else {
			r.Seconds1, r.GFLOPS1 = best, r.FLOPsPerRun/best/1e9
		}
	}
	r.BLASCore = blas.CoreName()
	r.Machine.LoadAfter = loadAvg()
	return emit(*out, r)
}

// sgemmBest times reps products c = a·b (n×n, row-major) after one warm-up and returns the
// fastest in seconds.
func sgemmBest(a, b, c []float32, n, reps int) float64 {
	run := func() {
		C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasNoTrans, C.blasint(n), C.blasint(n), C.blasint(n),
			1, (*C.float)(&a[0]), C.blasint(n), (*C.float)(&b[0]), C.blasint(n), 0, (*C.float)(&c[0]), C.blasint(n))
	}
	run()
	best := 0.0
	for i := 0; i < reps; i++ {
		t := time.Now()
		run()
		if s := time.Since(t).Seconds(); i == 0 || s < best {
			best = s
		}
	}
	return best
}
