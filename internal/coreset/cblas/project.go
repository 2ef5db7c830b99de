// Package cblas is the coreset samplers' random projection: a float32 matrix product through
// OpenBLAS cblas_sgemm (cgo; OpenBLAS itself is loaded by package blas). It lives apart from package coreset because a cgo package
// cannot hold Go assembly, which the distance kernel uses.
package cblas

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu/openblas-pthread
#include <cblas.h>
*/
import "C"

import (
	"math"

	_ "github.com/libpatchcore/libpatchcore/internal/blas" // provides cblas_sgemm
)

// projectChunkRows bounds the rows of one sgemm call. It keeps every BLAS integer argument
// within the 32-bit blasint of a standard (LP64) OpenBLAS build, and OpenBLAS's working
// memory small: on 2 threads, one call over 156,800 rows made OpenBLAS take ~260 MB that
// it kept for the life of the process, calls of 16,384 rows ~27 MB, at the same speed
// (BenchmarkCoresetProjection: 114 ms against 129 ms for 47,040×1024 → 128).
const projectChunkRows = 1 << 14

// Project computes out = x · p with OpenBLAS sgemm, where x is n×dIn, p is dIn×dOut and out
// is n×dOut, all row-major float32. It reads x in place (no copy). The caller guarantees the
// slice lengths and that dIn, dOut <= math.MaxInt32.
func Project(x []float32, n, dIn int, p []float32, dOut int, out []float32) {
	if n == 0 || dOut == 0 {
		return
	}
	if dIn == 0 {
		clear(out[:n*dOut])
		return
	}
	_ = x[n*dIn-1]
	_ = p[dIn*dOut-1]
	_ = out[n*dOut-1]
	if dIn > math.MaxInt32 || dOut > math.MaxInt32 {
		panic("cblas.Project: dimension exceeds the BLAS integer range")
	}
	for lo := 0; lo < n; lo += projectChunkRows {
		m := min(projectChunkRows, n-lo)
		C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasNoTrans,
			C.blasint(m), C.blasint(dOut), C.blasint(dIn),
			1, (*C.float)(&x[lo*dIn]), C.blasint(dIn),
			(*C.float)(&p[0]), C.blasint(dOut),
			0, (*C.float)(&out[lo*dOut]), C.blasint(dOut))
	}
}
