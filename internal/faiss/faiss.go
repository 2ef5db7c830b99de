// Package faiss is a thin cgo binding over the upstream C API of FAISS 1.7.3 (CPU build):
// exact IndexFlatL2 and index_factory indexes (the IVF-PQ "IVF512,PQ64np" of the reference's
// ApproximateFaissNN), with training, adding, k-NN search, and (de)serialization to files
// and byte slices.
//
// Every entry point validates its arguments in Go before calling FAISS (dimensions, counts,
// slice lengths, non-finite values), and serialized indexes are checked field by field
// before FAISS's unhardened reader sees them, so bad input yields an error instead of an
// abort or a runaway allocation. FAISS's last-error message is per OS thread, so each call
// runs with its goroutine locked to its thread. Search on an index may run concurrently
// from many goroutines; Train, Add, Reset and Close wait for searches to finish.
//
// The prefix holding the headers and static libraries comes from the environment:
// CGO_CFLAGS=-I<prefix>/include CGO_LDFLAGS=-L<prefix>/lib.
package faiss

/*
#cgo LDFLAGS: -lfaiss_c -lfaiss -lgomp -lstdc++ -lm
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/error_c.h>

// Return codes of the helpers below that are not FAISS's own (FAISS uses -1, -2, -4).
enum { PC_ERR_STREAM = -100 };

// pc_write_mem serializes idx into a malloc'ed buffer (*buf, *len) that the caller frees.
static int pc_write_mem(const FaissIndex* idx, char** buf, size_t* len) {
	*buf = NULL;
	*len = 0;
	FILE* f = open_memstream(buf, len);
	if (f == NULL) return PC_ERR_STREAM;
	int rc = faiss_write_index(idx, f);
	if (fclose(f) != 0 && rc == 0) rc = PC_ERR_STREAM;
	return rc;
}

// pc_read_mem deserializes an index from len bytes at buf (len > 0).
static int pc_read_mem(void* buf, size_t len, FaissIndex** out) {
	*out = NULL;
	FILE* f = fmemopen(buf, len, "rb");
	if (f == NULL) return PC_ERR_STREAM;
	int rc = faiss_read_index(f, 0, out);
	fclose(f);
	return rc;
}

static int pc_is_flat(FaissIndex* idx) { return faiss_IndexFlat_cast(idx) != NULL; }
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	openblas "github.com/libpatchcore/libpatchcore/internal/blas"
	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Index owns one FAISS index (a FaissIndex*). Close releases it; a cleanup attached to the
// Index frees it too if a caller forgets, but callers should Close explicitly since the Go
// garbage collector does not see the C memory an index holds.
type Index struct {
	mu      sync.RWMutex
	ptr     *C.FaissIndex
	d       int
	flat    bool
	cleanup runtime.Cleanup
}

// GPUAvailable reports whether this build can put indexes on a GPU: never, in this CPU build.
func GPUAvailable() bool { return false }

// call runs one FAISS C API call on a locked OS thread, with that thread's OpenMP team size
// set from SetThreads, and turns a nonzero return into an error carrying FAISS's message.
func call(what string, f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	applyOMPThreads()
	rc := f()
	if rc == 0 {
		return nil
	}
	if rc == C.PC_ERR_STREAM {
		return fmt.Errorf("%w: %s: could not open an in-memory stream", errs.ErrBackend, what)
	}
	msg := "unknown error"
	if p := C.faiss_get_last_error(); p != nil {
		msg = C.GoString(p)
	}
	return fmt.Errorf("%w: %s failed (code %d): %s", errs.ErrBackend, what, int(rc), msg)
}

// liveIndexes counts the FAISS indexes allocated and not yet freed.
var liveIndexes atomic.Int64

// wrap takes ownership of a freshly created FaissIndex.
func wrap(p *C.FaissIndex) *Index {
	x := &Index{ptr: p, d: int(C.faiss_Index_d(p)), flat: C.pc_is_flat(p) != 0}
	liveIndexes.Add(1)
	x.cleanup = runtime.AddCleanup(x, func(p *C.FaissIndex) {
		C.faiss_Index_free(p)
		liveIndexes.Add(-1)
	}, p)
	return x
}

func checkDim(d int) error {
	if d <= 0 || d > maxDim {
		return fmt.Errorf("%w: dimension %d out of range (1..%d)", errs.ErrInvalidArgument, d, maxDim)
	}
	return nil
}

// NewFlatL2 creates an exact (brute-force) squared-L2 index of dimension d.
func NewFlatL2(d int) (*Index, error) {
	if err := openblas.Available(); err != nil {
		return nil, err
	}
	if err := checkDim(d); err != nil {
		return nil, err
	}
	var p *C.FaissIndexFlatL2
	if err := call("creating IndexFlatL2", func() C.int { return C.faiss_IndexFlatL2_new_with(&p, C.idx_t(d)) }); err != nil {
		return nil, err
	}
	return wrap((*C.FaissIndex)(p)), nil
}

// NewFromFactory creates an L2 index from a FAISS index_factory description, for example
// "IVF512,PQ64np" (IVF-PQ with 512 lists and 64 8-bit sub-quantizers, without polysemous
// training: the ApproximateFaissNN of the reference).
func NewFromFactory(d int, description string) (*Index, error) {
	if err := openblas.Available(); err != nil {
		return nil, err
	}
	if err := checkDim(d); err != nil {
		return nil, err
	}
	if description == "" || len(description) > 1024 {
		return nil, fmt.Errorf("%w: index factory description %q is empty or too long", errs.ErrInvalidArgument, description)
	}
	cs := C.CString(description)
	defer C.free(unsafe.Pointer(cs))
	var p *C.FaissIndex
	if err := call(fmt.Sprintf("index_factory(%d, %q)", d, description), func() C.int {
		return C.faiss_index_factory(&p, C.int(d), cs, C.METRIC_L2)
	}); err != nil {
		return nil, err
	}
	return wrap(p), nil
}

// checkVectors validates n row-major vectors of dimension d.
func checkVectors(what string, x []float32, n, d int) error {
	if n < 0 {
		return fmt.Errorf("%w: negative %s count %d", errs.ErrInvalidArgument, what, n)
	}
	if n > 0 && d > math.MaxInt/n || len(x) != n*d {
		return fmt.Errorf("%w: %d %s of dimension %d need %d values, got %d", errs.ErrInvalidArgument, n, what, d, n*d, len(x))
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: %s contain a non-finite value (%v) at row %d, column %d", errs.ErrInvalidArgument, what, v, i/d, i%d)
		}
	}
	return nil
}

// Dim is the vector dimension (0 after Close).
func (x *Index) Dim() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.ptr == nil {
		return 0
	}
	return x.d
}

// Ntotal is the number of indexed vectors (0 after Close).
func (x *Index) Ntotal() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.ptr == nil {
		return 0
	}
	return int64(C.faiss_Index_ntotal(x.ptr))
}

// IsTrained reports whether the index is ready for Add (always true for flat indexes).
func (x *Index) IsTrained() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ptr != nil && C.faiss_Index_is_trained(x.ptr) != 0
}

// Workload is the kind of work searching this index is (FlatWorkload for exact indexes,
// IVFWorkload otherwise), for UseThreadsFor.
func (x *Index) Workload() Workload {
	if x.flat {
		return FlatWorkload
	}
	return IVFWorkload
}

// Train trains the index on n vectors x (row-major, n*Dim values).
func (x *Index) Train(data []float32, n int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return ErrClosed
	}
	if err := checkVectors("training vectors", data, n, x.d); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: no training vectors", errs.ErrInvalidArgument)
	}
	return call("train", func() C.int { return C.faiss_Index_train(x.ptr, C.idx_t(n), (*C.float)(&data[0])) })
}

// Add appends n vectors (row-major, n*Dim values); their labels are Ntotal() onwards.
// Adding zero vectors is a no-op.
func (x *Index) Add(data []float32, n int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return ErrClosed
	}
	if err := checkVectors("vectors", data, n, x.d); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return call("add", func() C.int { return C.faiss_Index_add(x.ptr, C.idx_t(n), (*C.float)(&data[0])) })
}

// Search finds the k nearest indexed vectors (1 <= k <= Ntotal) of each of n queries
// (row-major, n*Dim values). It returns n*k squared L2 distances, ascending per query, and
// their labels; when an approximate index finds fewer than k vectors (IVF lists probed
// hold fewer) a label is -1 and its distance FAISS's sentinel, the largest float32.
// Searches may run concurrently.
func (x *Index) Search(queries []float32, n, k int) ([]float32, []int64, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.ptr == nil {
		return nil, nil, ErrClosed
	}
	if nt := int64(C.faiss_Index_ntotal(x.ptr)); k <= 0 || int64(k) > nt {
		return nil, nil, fmt.Errorf("%w: k = %d neighbours requested from an index of %d vectors (need 1 <= k <= %d)", errs.ErrInvalidArgument, k, nt, nt)
	}
	if err := checkVectors("queries", queries, n, x.d); err != nil {
		return nil, nil, err
	}
	if n > 0 && k > math.MaxInt/8/n {
		return nil, nil, fmt.Errorf("%w: %d queries x k=%d results overflow", errs.ErrInvalidArgument, n, k)
	}
	dist := make([]float32, n*k)
	labels := make([]int64, n*k)
	if n == 0 {
		return dist, labels, nil
	}
	err := call("search", func() C.int {
		return C.faiss_Index_search(x.ptr, C.idx_t(n), (*C.float)(&queries[0]), C.idx_t(k),
			(*C.float)(&dist[0]), (*C.idx_t)(unsafe.Pointer(&labels[0])))
	})
	if err != nil {
		return nil, nil, err
	}
	return dist, labels, nil
}

// Reset removes all indexed vectors (a trained index stays trained).
func (x *Index) Reset() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr == nil {
		return ErrClosed
	}
	return call("reset", func() C.int { return C.faiss_Index_reset(x.ptr) })
}

// Close frees the FAISS index. It is idempotent; later calls on x return ErrClosed.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ptr != nil {
		x.cleanup.Stop()
		C.faiss_Index_free(x.ptr)
		liveIndexes.Add(-1)
		x.ptr = nil
	}
	return nil
}

// Serialize returns the index in FAISS's own format, byte for byte what faiss.write_index
// writes to a file.
func (x *Index) Serialize() ([]byte, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.ptr == nil {
		return nil, ErrClosed
	}
	var buf *C.char
	var n C.size_t
	err := call("write_index", func() C.int { return C.pc_write_mem(x.ptr, &buf, &n) })
	defer C.free(unsafe.Pointer(buf))
	if err != nil {
		return nil, err
	}
	if buf == nil || uint64(n) > math.MaxInt/2 {
		return nil, fmt.Errorf("%w: write_index produced no usable buffer (%d bytes)", errs.ErrBackend, uint64(n))
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))...), nil
}

// Deserialize rebuilds an index from FAISS-format bytes (as Serialize or faiss.write_index
// produce). The data is validated first: only IndexFlatL2 and IndexIVFPQ are accepted, and
// truncated or corrupted data yields an error wrapping errs.ErrFormat.
func Deserialize(b []byte) (*Index, error) {
	if err := openblas.Available(); err != nil {
		return nil, err
	}
	if _, err := validateIndex(b); err != nil {
		return nil, fmt.Errorf("FAISS index data: %w", err)
	}
	var p *C.FaissIndex
	if err := call("read_index", func() C.int {
		return C.pc_read_mem(unsafe.Pointer(&b[0]), C.size_t(len(b)), &p)
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", errs.ErrFormat, err)
	}
	return wrap(p), nil
}

// WriteFile writes the index to path in FAISS's format (what faiss.write_index produces),
// replacing the file atomically.
func (x *Index) WriteFile(path string) error {
	b, err := x.Serialize()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%w: %v", errs.ErrIO, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%w: writing FAISS index %s: %v", errs.ErrIO, path, werr)
	}
	return nil
}

// ReadFile loads an index written by WriteFile or by faiss.write_index, validating it as
// Deserialize does.
func ReadFile(path string) (*Index, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading FAISS index: %v", errs.ErrIO, err)
	}
	x, err := Deserialize(b)
	if err != nil {
		return nil, fmt.Errorf("FAISS index %s: %w", path, err)
	}
	return x, nil
}
