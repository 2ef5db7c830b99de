package faiss

/*
void omp_set_num_threads(int);
*/
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"

	openblas "github.com/libpatchcore/libpatchcore/internal/blas"
	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Thread pools. FAISS parallelises with OpenMP and its matrix products run in OpenBLAS, and
// each library keeps its own pool of spinning threads. When both pools hold n threads on n
// cores they steal each other's cores and timings jump 2-3x. So each workload gets exactly
// one pool ("one pool per workload"):
//
//   - exact (flat) search is dominated by one large SGEMM: OpenMP 1, OpenBLAS n;
//   - IVF/PQ training and search parallelise over queries and lists with OpenMP and issue
//     only small matrix products: OpenMP n, OpenBLAS 1.
//
// The search layer calls UseThreadsFor before each workload. OpenBLAS's thread count is
// process-wide. OpenMP's is a per-thread setting in libgomp, so it is recorded here and
// applied on the calling OS thread at the start of every FAISS call. Hosts that run other
// OpenMP or OpenBLAS code can instead set OMP_WAIT_POLICY=PASSIVE before loading the library.

// Workload is a kind of FAISS work, to choose its thread pool.
type Workload int

const (
	// FlatWorkload is exact search: OpenMP 1 thread, OpenBLAS n threads.
	FlatWorkload Workload = iota
	// IVFWorkload is IVF/PQ training and search: OpenMP n threads, OpenBLAS 1 thread.
	IVFWorkload
)

var (
	ompThreads  atomic.Int32 // 0: never set, leave libgomp's default
	blasMu      sync.Mutex
	blasThreads int // last value given to OpenBLAS, 0: never set
)

// maxThreads bounds thread counts (OpenBLAS caps its pool at its compiled maximum anyway).
const maxThreads = 1024

// SetThreads sets the OpenMP team size used by subsequent FAISS calls and OpenBLAS's
// (process-wide) thread count. Both must be in 1..1024.
func SetThreads(omp, blas int) error {
	if omp < 1 || omp > maxThreads || blas < 1 || blas > maxThreads {
		return fmt.Errorf("%w: thread counts OpenMP=%d, OpenBLAS=%d out of range (1..%d)", errs.ErrInvalidArgument, omp, blas, maxThreads)
	}
	ompThreads.Store(int32(omp))
	blasMu.Lock()
	defer blasMu.Unlock()
	if blas != blasThreads {
		openblas.SetThreads(blas)
		blasThreads = blas
	}
	return nil
}

// ThreadsFor returns the (OpenMP, OpenBLAS) thread counts for running workload w on n
// threads: one pool gets all n, the other 1.
func ThreadsFor(w Workload, n int) (omp, blas int) {
	if w == FlatWorkload {
		return 1, n
	}
	return n, 1
}

// UseThreadsFor configures the thread pools for workload w on n threads (see ThreadsFor).
func UseThreadsFor(w Workload, n int) error {
	omp, blas := ThreadsFor(w, n)
	return SetThreads(omp, blas)
}

// applyOMPThreads sets the current OS thread's OpenMP team size; call with the goroutine
// locked to its thread.
func applyOMPThreads() {
	if n := ompThreads.Load(); n > 0 {
		C.omp_set_num_threads(C.int(n))
	}
}
