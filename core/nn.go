package core

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/libpatchcore/libpatchcore/internal/faiss"
)

// NNMethod is a nearest-neighbour search over a memory bank, the role FaissNN and
// ApproximateFaissNN play for NearestNeighbourScorer in the reference. Distances are
// squared L2, as FAISS returns them.
//
// Run, Save, Serialize, Size and Dim may be called concurrently from many goroutines;
// Fit, Load, Deserialize, ResetIndex and Close may be called at any time too: they
// replace the index atomically and wait for running searches.
type NNMethod interface {
	// Fit replaces the index with one built from features [n, d].
	Fit(features Tensor) error
	// Run returns, for each query row [nq, d], the k nearest rows of the index: squared
	// distances [nq, k] (ascending per row) and their row numbers (nq*k, row-major). With
	// indexFeatures non-nil it searches a throw-away index built from those rows instead.
	Run(k int, query Tensor, indexFeatures *Tensor) (distances Tensor, indices []int64, err error)
	// Save writes the index to path in FAISS's format (faiss.write_index).
	Save(path string) error
	// Load replaces the index with the one stored at path.
	Load(path string) error
	// Serialize returns the index in FAISS's format.
	Serialize() ([]byte, error)
	// Deserialize replaces the index with one in FAISS's format.
	Deserialize(b []byte) error
	// ResetIndex drops the index (the reference's reset_index).
	ResetIndex()
	// Close releases the index; the method may be fitted or loaded again afterwards.
	Close() error
	// Size is the number of indexed rows, 0 without an index.
	Size() int
	// Dim is the dimension of indexed rows, 0 without an index.
	Dim() int
}

// Reference settings of ApproximateFaissNN: IndexIVFPQ with 512 inverted lists and 64
// sub-quantizers of 8 bits, searched with FAISS's default nprobe = 1.
const (
	ApproximateNList         = 512
	ApproximateSubQuantizers = 64
	approximateFactory       = "IVF512,PQ64np" // "np": no polysemous training, as IndexIVFPQ(...) in the reference
	approximateMinTrain      = 512             // max(nlist, 2^8 PQ centroids): FAISS's k-means minimum
)

// DefaultNumWorkers is the reference's FaissNN(on_gpu=False, num_workers=4) default.
const DefaultNumWorkers = 4

// maxNumWorkers is the largest thread count faiss.SetThreads accepts.
const maxNumWorkers = 1024

// faissNN is the index holder shared by FaissNN and ApproximateFaissNN; they differ in how
// an index is built from features.
type faissNN struct {
	mu      sync.RWMutex
	index   *faiss.Index
	workers int
	build   func(features Tensor, workers int) (*faiss.Index, error)
}

// checkWorkers validates the constructor arguments shared by both searches and returns
// the thread count to use.
func checkNNWorkers(onGPU bool, numWorkers int) (int, error) {
	if onGPU && !faiss.GPUAvailable() {
		return 0, faiss.ErrNoGPU
	}
	if numWorkers < 0 || numWorkers > maxNumWorkers {
		return 0, fmt.Errorf("%w: num_workers must be in 0..%d (0 = all CPUs), got %d", ErrInvalidArgument, maxNumWorkers, numWorkers)
	}
	if numWorkers == 0 {
		numWorkers = runtime.NumCPU()
	}
	return numWorkers, nil
}

// checkMatrix validates a finite, non-empty [n, d] float32 matrix.
func checkFeatureMatrix(t Tensor, what string) (n, d int, err error) {
	if len(t.Shape) != 2 {
		return 0, 0, fmt.Errorf("%w: %s must be a matrix [n, d], got shape %v", ErrInvalidArgument, what, t.Shape)
	}
	size, err := CheckedSize(t.Shape)
	if err != nil {
		return 0, 0, err
	}
	if size != len(t.Data) {
		return 0, 0, fmt.Errorf("%w: %s has shape %v but %d values", ErrInvalidArgument, what, t.Shape, len(t.Data))
	}
	if t.Shape[0] == 0 || t.Shape[1] == 0 {
		return 0, 0, fmt.Errorf("%w: %s is empty (shape %v)", ErrInvalidArgument, what, t.Shape)
	}
	if err := t.CheckFinite(what); err != nil {
		return 0, 0, err
	}
	return t.Shape[0], t.Shape[1], nil
}

// Fit replaces the index with one built from features [n, d]. The old index serves
// searches until the new one is ready.
func (m *faissNN) Fit(features Tensor) error {
	x, err := m.build(features, m.workers)
	if err != nil {
		return err
	}
	m.swap(x)
	return nil
}

// swap installs x (nil: none) and frees the previous index.
func (m *faissNN) swap(x *faiss.Index) {
	m.mu.Lock()
	old := m.index
	m.index = x
	m.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// Run searches the k nearest neighbours of each query row; see NNMethod.
func (m *faissNN) Run(k int, query Tensor, indexFeatures *Tensor) (Tensor, []int64, error) {
	if indexFeatures != nil {
		x, err := m.build(*indexFeatures, m.workers)
		if err != nil {
			return Tensor{}, nil, err
		}
		defer x.Close()
		return faissSearch(x, k, query, m.workers)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.index == nil {
		return Tensor{}, nil, fmt.Errorf("%w: nearest-neighbour search before fit or load", ErrState)
	}
	return faissSearch(m.index, k, query, m.workers)
}

// faissSearch validates a query against index x and runs it with the thread pools set for
// the index's kind of search.
func faissSearch(x *faiss.Index, k int, query Tensor, workers int) (Tensor, []int64, error) {
	nq, d, err := checkFeatureMatrix(query, "query features")
	if err != nil {
		return Tensor{}, nil, err
	}
	if d != x.Dim() {
		return Tensor{}, nil, fmt.Errorf("%w: query features have dimension %d, the index %d", ErrInvalidArgument, d, x.Dim())
	}
	n := x.Ntotal()
	if k <= 0 || int64(k) > n {
		return Tensor{}, nil, fmt.Errorf("%w: k = %d nearest neighbours requested from an index of %d vectors (need 1 <= k <= %d)", ErrInvalidArgument, k, n, n)
	}
	if err := faiss.UseThreadsFor(x.Workload(), workers); err != nil {
		return Tensor{}, nil, err
	}
	dist, labels, err := x.Search(query.Data, nq, k)
	if err != nil {
		return Tensor{}, nil, err
	}
	return Tensor{Shape: []int{nq, k}, Data: dist}, labels, nil
}

// Save writes the index to path in FAISS's format.
func (m *faissNN) Save(path string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.index == nil {
		return fmt.Errorf("%w: no index to save (fit or load first)", ErrState)
	}
	return m.index.WriteFile(path)
}

// Load replaces the index with the one stored at path (validated before FAISS reads it).
func (m *faissNN) Load(path string) error {
	x, err := faiss.ReadFile(path)
	if err != nil {
		return err
	}
	m.swap(x)
	return nil
}

// Serialize returns the index in FAISS's format.
func (m *faissNN) Serialize() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.index == nil {
		return nil, fmt.Errorf("%w: no index to serialize (fit or load first)", ErrState)
	}
	return m.index.Serialize()
}

// Deserialize replaces the index with one in FAISS's format.
func (m *faissNN) Deserialize(b []byte) error {
	x, err := faiss.Deserialize(b)
	if err != nil {
		return err
	}
	m.swap(x)
	return nil
}

// ResetIndex drops the index.
func (m *faissNN) ResetIndex() { m.swap(nil) }

// Close releases the index (the same as ResetIndex); it never fails.
func (m *faissNN) Close() error {
	m.swap(nil)
	return nil
}

// Size is the number of indexed rows, 0 without an index.
func (m *faissNN) Size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.index == nil {
		return 0
	}
	return int(m.index.Ntotal())
}

// Dim is the dimension of indexed rows, 0 without an index.
func (m *faissNN) Dim() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.index == nil {
		return 0
	}
	return m.index.Dim()
}

// NumWorkers is the number of threads searches use.
func (m *faissNN) NumWorkers() int { return m.workers }

// FaissNN is the reference's exact search: a FAISS IndexFlatL2 over the memory bank.
type FaissNN struct{ faissNN }

// NewFaissNN creates an exact nearest-neighbour search running on numWorkers threads
// (0 = all CPUs; the reference's default is 4, DefaultNumWorkers). Unlike the reference,
// which sets FAISS's process-wide OpenMP thread count in its constructor, the count
// applies to this object's calls only. onGPU = true fails with an error wrapping
// ErrUnsupported: this build has no GPU support.
func NewFaissNN(onGPU bool, numWorkers int) (*FaissNN, error) {
	workers, err := checkNNWorkers(onGPU, numWorkers)
	if err != nil {
		return nil, err
	}
	return &FaissNN{faissNN{workers: workers, build: buildFlat}}, nil
}

func buildFlat(features Tensor, _ int) (*faiss.Index, error) {
	n, d, err := checkFeatureMatrix(features, "index features")
	if err != nil {
		return nil, err
	}
	x, err := faiss.NewFlatL2(d)
	if err != nil {
		return nil, err
	}
	if err := x.Add(features.Data, n); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// ApproximateFaissNN is the reference's approximate search: a FAISS IndexIVFPQ (512
// lists, 64 sub-quantizers x 8 bits, nprobe 1) trained on the memory bank itself.
// Distances are PQ approximations of squared L2. It needs a feature dimension divisible
// by 64 and at least 512 bank rows (FAISS's k-means needs as many points as centroids;
// FAISS prints a warning below 39 points per centroid, i.e. 19,968 rows).
type ApproximateFaissNN struct{ faissNN }

// NewApproximateFaissNN creates an approximate nearest-neighbour search; arguments as
// for NewFaissNN.
func NewApproximateFaissNN(onGPU bool, numWorkers int) (*ApproximateFaissNN, error) {
	workers, err := checkNNWorkers(onGPU, numWorkers)
	if err != nil {
		return nil, err
	}
	return &ApproximateFaissNN{faissNN{workers: workers, build: buildIVFPQ}}, nil
}

func buildIVFPQ(features Tensor, workers int) (*faiss.Index, error) {
	n, d, err := checkFeatureMatrix(features, "index features")
	if err != nil {
		return nil, err
	}
	if d%ApproximateSubQuantizers != 0 {
		return nil, fmt.Errorf("%w: ApproximateFaissNN needs a feature dimension divisible by %d (its PQ sub-quantizers), got %d", ErrInvalidArgument, ApproximateSubQuantizers, d)
	}
	if n < approximateMinTrain {
		return nil, fmt.Errorf("%w: ApproximateFaissNN trains %d inverted lists and 256 PQ centroids on the index features: it needs at least %d rows, got %d", ErrInvalidArgument, ApproximateNList, approximateMinTrain, n)
	}
	x, err := faiss.NewFromFactory(d, approximateFactory)
	if err != nil {
		return nil, err
	}
	err = faiss.UseThreadsFor(x.Workload(), workers)
	if err == nil {
		err = x.Train(features.Data, n)
	}
	if err == nil {
		err = x.Add(features.Data, n)
	}
	if err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}
