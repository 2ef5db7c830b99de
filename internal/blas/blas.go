// Package blas is the one place libpatchcore reaches OpenBLAS. OpenBLAS is loaded at
// library load time with dlopen rather than linked, for two reasons:
//
//   - OpenBLAS 0.3.21 picks its CPU kernels in its own constructor, from
//     OPENBLAS_CORETYPE or a CPU table that lacks newer CPUs (Sapphire Rapids falls back
//     to SSE3 "Prescott" kernels, 5-7 times slower). Loading it ourselves lets us name
//     the kernel set the CPU supports first (unless the host set the variable).
//   - Linked statically, its thread-local variables would join the Go library's static
//     TLS block, and glibc refuses to dlopen such a library ("cannot allocate memory in
//     static TLS block"): Python, .NET and C hosts load libpatchcore with dlopen.
//
// FAISS (linked statically) and the coreset projection call the BLAS/LAPACK symbols
// below; each is a hidden trampoline that jumps to OpenBLAS's function, so nothing is
// exported into the host's namespace.
package blas

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PC_HIDDEN __attribute__((visibility("hidden")))

// Every BLAS/LAPACK function used by FAISS 1.7.3 and by libpatchcore itself.
#define PC_BLAS_SYMBOLS(X) \
	X(sgemm_) X(dgemm_) X(ssyrk_) X(sgeqrf_) X(sorgqr_) X(sgesvd_) X(dgesvd_) \
	X(sgetrf_) X(sgetri_) X(dgetrf_) X(dgetri_) X(dsyev_) X(sgelsd_) \
	X(cblas_sgemm) X(openblas_set_num_threads) X(openblas_get_corename)

// The real addresses, filled by pc_blas_load.
#define PC_DECLARE_POINTER(name) PC_HIDDEN void* pc_real_##name;
PC_BLAS_SYMBOLS(PC_DECLARE_POINTER)

// A trampoline per symbol: a naked function that jumps to the real one, so the caller's
// arguments (whatever their number and type) reach OpenBLAS untouched.
#define PC_TRAMPOLINE(name) \
	PC_HIDDEN __attribute__((naked)) void name(void) { __asm__("jmp *pc_real_" #name "(%rip)"); }
PC_BLAS_SYMBOLS(PC_TRAMPOLINE)

static char pc_blas_error[512];

// Reached only if a BLAS function is called although loading failed; Go checks
// Available() before using FAISS, so this is a last resort, not an error path.
static void pc_blas_missing(void) {
	fprintf(stderr, "libpatchcore: OpenBLAS is not loaded: %s\n", pc_blas_error);
	abort();
}

static const char* pc_openblas_names[] = {"libopenblas.so.0", "libopenblas.so", NULL};

// Runs before Go's runtime starts and before any BLAS call.
__attribute__((constructor(101))) static void pc_blas_load(void) {
	if (getenv("OPENBLAS_CORETYPE") == NULL) {
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
		    __builtin_cpu_supports("avx512cd")) {
			setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
		} else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
			setenv("OPENBLAS_CORETYPE", "Haswell", 0);
		}
	}
	void* h = NULL;
	for (const char** n = pc_openblas_names; *n != NULL && h == NULL; n++) {
		h = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
	}
	if (h == NULL) {
		snprintf(pc_blas_error, sizeof pc_blas_error, "dlopen(libopenblas.so.0): %s", dlerror());
	}
#define PC_RESOLVE(name) \
	pc_real_##name = h ? dlsym(h, #name) : NULL; \
	if (pc_real_##name == NULL) { \
		if (pc_blas_error[0] == 0) snprintf(pc_blas_error, sizeof pc_blas_error, "OpenBLAS lacks %s", #name); \
		pc_real_##name = (void*)pc_blas_missing; \
	}
	PC_BLAS_SYMBOLS(PC_RESOLVE)
}

static const char* pc_blas_load_error(void) { return pc_blas_error; }

static void pc_blas_set_threads(int n) { ((void (*)(int))pc_real_openblas_set_num_threads)(n); }
static const char* pc_blas_corename(void) { return ((char* (*)(void))pc_real_openblas_get_corename)(); }
*/
import "C"

import (
	"fmt"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Available returns nil when OpenBLAS was loaded with every symbol libpatchcore needs,
// else an error (wrapping errs.ErrUnsupported) naming what is missing.
func Available() error {
	if msg := C.GoString(C.pc_blas_load_error()); msg != "" {
		return fmt.Errorf("%w: %s (install libopenblas0, e.g. apt-get install libopenblas0-pthread)", errs.ErrUnsupported, msg)
	}
	return nil
}

// SetThreads sets OpenBLAS's process-wide thread count.
func SetThreads(n int) {
	if Available() == nil && n > 0 {
		C.pc_blas_set_threads(C.int(n))
	}
}

// CoreName names the CPU kernel set OpenBLAS selected (for example "SkylakeX").
func CoreName() string {
	if Available() != nil {
		return ""
	}
	return C.GoString(C.pc_blas_corename())
}
