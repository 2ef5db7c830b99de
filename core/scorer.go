package core

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/libpatchcore/libpatchcore/internal/pickle"
)

// File names of NearestNeighbourScorer.Save, as in the reference (each prefixed with the
// prepend argument, e.g. "Ensemble-1-3_" for ensemble members).
const (
	ScorerIndexFile    = "nnscorer_search_index.faiss"
	ScorerFeaturesFile = "nnscorer_features.pkl"
)

// NearestNeighbourScorer is the reference's patchcore.common.NearestNeighbourScorer: the
// memory bank is indexed by an NNMethod, and a query's anomaly score is the mean of its
// k smallest squared L2 distances to the bank.
//
// Predict may be called concurrently from many goroutines, and without waiting for a
// running Fit or Load: it searches either the old or the new bank. Fit, Load, Save and
// Close are serialised among themselves.
type NearestNeighbourScorer struct {
	k        int
	nn       NNMethod
	merger   ConcatMerger
	mu       sync.RWMutex
	features *Tensor // the merged detection features, when known
}

// NewNearestNeighbourScorer creates a scorer averaging k >= 1 nearest-neighbour distances.
// A nil nn means the reference default, FaissNN(on_gpu=False, num_workers=4).
func NewNearestNeighbourScorer(k int, nn NNMethod) (*NearestNeighbourScorer, error) {
	if k <= 0 {
		return nil, fmt.Errorf("%w: number of nearest neighbours must be >= 1, got %d", ErrInvalidArgument, k)
	}
	if nn == nil {
		f, err := NewFaissNN(false, DefaultNumWorkers)
		if err != nil {
			return nil, err
		}
		nn = f
	}
	return &NearestNeighbourScorer{k: k, nn: nn}, nil
}

// K is the number of nearest neighbours averaged per query.
func (s *NearestNeighbourScorer) K() int { return s.k }

// NN is the search method.
func (s *NearestNeighbourScorer) NN() NNMethod { return s.nn }

// Fit merges the detection features with ConcatMerger (each array [n, ...] is reshaped to
// [n, -1], then they are concatenated along axis 1), keeps the result, and indexes it.
func (s *NearestNeighbourScorer) Fit(features []Tensor) error {
	merged, err := s.merger.Merge(features)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.nn.Fit(merged); err != nil {
		return err
	}
	s.features = &merged
	return nil
}

// mergeQuery merges query arrays like Fit, without copying a single 2-D array.
func (s *NearestNeighbourScorer) mergeQuery(query []Tensor) (Tensor, error) {
	if len(query) == 1 && len(query[0].Shape) == 2 {
		return query[0], nil
	}
	return s.merger.Merge(query)
}

// Predict scores the query rows (merged like Fit's input): scores[i] is the mean of the
// k smallest squared L2 distances of row i to the bank, summed in float32 the way numpy's
// mean does. It also returns those distances [nq, k] (ascending per row) and the bank
// rows they belong to (nq*k, row-major).
func (s *NearestNeighbourScorer) Predict(query []Tensor) (scores []float32, distances Tensor, indices []int64, err error) {
	q, err := s.mergeQuery(query)
	if err != nil {
		return nil, Tensor{}, nil, err
	}
	distances, indices, err = s.nn.Run(s.k, q, nil)
	if err != nil {
		return nil, Tensor{}, nil, err
	}
	nq := distances.Shape[0]
	scores = make([]float32, nq)
	for i := range scores {
		scores[i] = pairwiseSum32(distances.Data[i*s.k:(i+1)*s.k]) / float32(s.k)
	}
	return scores, distances, indices, nil
}

// pairwiseSum32 adds float32 values exactly as numpy's float32 sum reduction does
// (pairwise summation with eight accumulators, blocks of 128), so that Predict's mean
// reproduces np.mean(distances, axis=-1) bit for bit.
func pairwiseSum32(a []float32) float32 {
	n := len(a)
	switch {
	case n < 8:
		var res float32
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float32
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum32(a[:n2]) + pairwiseSum32(a[n2:])
	}
}

// DetectionFeatures returns the merged bank given to Fit (or loaded from a features
// file), if the scorer has it. The tensor must not be modified.
func (s *NearestNeighbourScorer) DetectionFeatures() (Tensor, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.features == nil {
		return Tensor{}, false
	}
	return *s.features, true
}

// Save writes prepend + "nnscorer_search_index.faiss" into folder, and with
// saveFeaturesSeparately also the detection features as prepend + "nnscorer_features.pkl"
// (a pickled float32 numpy array, as the reference writes it).
func (s *NearestNeighbourScorer) Save(folder string, saveFeaturesSeparately bool, prepend string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.nn.Save(filepath.Join(folder, prepend+ScorerIndexFile)); err != nil {
		return err
	}
	if !saveFeaturesSeparately || s.features == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := pickle.EncodeFloat32Array(&buf, s.features.Data, s.features.Shape); err != nil {
		return err
	}
	path := filepath.Join(folder, prepend+ScorerFeaturesFile)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("%w: writing %s: %v", ErrIO, path, err)
	}
	return nil
}

// SaveAndReset saves the index into folder (no features file, no prefix) and drops it,
// as the reference's save_and_reset.
func (s *NearestNeighbourScorer) SaveAndReset(folder string) error {
	if err := s.Save(folder, false, ""); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nn.ResetIndex()
	return nil
}

// Load reads prepend + "nnscorer_search_index.faiss" from folder, and the detection
// features from prepend + "nnscorer_features.pkl" when that file exists (they must match
// the index). Without a features file DetectionFeatures reports none afterwards.
func (s *NearestNeighbourScorer) Load(folder, prepend string) error {
	var features *Tensor
	path := filepath.Join(folder, prepend+ScorerFeaturesFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		t, err := decodeScorerFeatures(b, path)
		if err != nil {
			return err
		}
		features = &t
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: reading %s: %v", ErrIO, path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.nn.Load(filepath.Join(folder, prepend+ScorerIndexFile)); err != nil {
		return err
	}
	if n, d := s.nn.Size(), s.nn.Dim(); features != nil && (features.Shape[0] != n || features.Shape[1] != d) {
		s.nn.ResetIndex()
		s.features = nil
		return fmt.Errorf("%w: %s holds features %v but the index has %d vectors of dimension %d", ErrFormat, path, features.Shape, n, d)
	}
	s.features = features
	return nil
}

// decodeFeatures reads a pickled float32 [n, d] numpy array.
func decodeScorerFeatures(b []byte, path string) (Tensor, error) {
	v, err := pickle.Decode(bytes.NewReader(b))
	if err != nil {
		return Tensor{}, fmt.Errorf("%s: %w", path, err)
	}
	a, ok := v.(*pickle.Array)
	if !ok || len(a.Shape) != 2 {
		return Tensor{}, fmt.Errorf("%w: %s does not hold a 2-D numpy array", ErrFormat, path)
	}
	data, err := a.Float32()
	if err != nil {
		return Tensor{}, fmt.Errorf("%s: %w", path, err)
	}
	return Tensor{Shape: a.Shape, Data: data}, nil
}

// Close releases the search index.
func (s *NearestNeighbourScorer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.features = nil
	return s.nn.Close()
}
