package core

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/libpatchcore/libpatchcore/internal/coreset"
	"github.com/libpatchcore/libpatchcore/internal/coreset/cblas"
	"github.com/libpatchcore/libpatchcore/internal/offheap"
)

// Sampler chooses the memory bank among the training patch features (reference
// patchcore.sampler, spec §5.1). features is [N, D]; bank holds the chosen rows in selection
// order ([M, D]) and indices their row numbers in features, in the same order.
type Sampler interface {
	Sample(features Tensor) (bank Tensor, indices []int, err error)
}

// Defaults of the reference samplers.
const (
	// DefaultProjectionDim is the dimension the greedy samplers project features to.
	DefaultProjectionDim = 128
	// DefaultNumStartingPoints is the number of random start points of the approximate
	// greedy sampler.
	DefaultNumStartingPoints = 10
	// DefaultMaxMatrixBytes caps the exact greedy sampler: the reference materialises an
	// N×N float32 distance matrix, and N·N·4 bytes above this cap (16 GiB, N > 65536) is
	// refused.
	DefaultMaxMatrixBytes = int64(16) << 30
)

// Seed streams of the samplers' random draws. Each draw uses its own PCG stream
// (math/rand/v2, state seeded with Seed and one of these constants), so that injecting one
// draw does not change the others. The draws are reproducible for a seed but are not the
// reference's: it uses the global torch and NumPy generators.
const (
	streamProjection = 0x70726f6a // "proj"
	streamStart      = 0x73746172 // "star"
	streamRandom     = 0x72616e64 // "rand"
)

// IdentitySampler keeps every row: the bank is features itself (sharing its storage, as the
// reference returns the same array) and the indices are 0..N-1.
type IdentitySampler struct{}

// Sample returns features unchanged with indices 0..N-1.
func (IdentitySampler) Sample(features Tensor) (Tensor, []int, error) {
	n, _, err := checkFeatures(features)
	if err != nil {
		return Tensor{}, nil, err
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return features, idx, nil
}

// RandomSampler keeps floor(N·Percentage) distinct rows drawn uniformly at random, in the
// order drawn (reference RandomSampler, which uses np.random.choice without replacement).
type RandomSampler struct {
	Percentage float64 // in (0, 1)
	Seed       uint64
}

// NewRandomSampler returns a RandomSampler.
func NewRandomSampler(percentage float64, seed uint64) *RandomSampler {
	return &RandomSampler{Percentage: percentage, Seed: seed}
}

// Sample draws the rows.
func (s RandomSampler) Sample(features Tensor) (Tensor, []int, error) {
	n, _, err := checkFeatures(features)
	if err != nil {
		return Tensor{}, nil, err
	}
	k, err := coresetSize(n, s.Percentage)
	if err != nil {
		return Tensor{}, nil, err
	}
	idx := drawDistinct(rand.New(rand.NewPCG(s.Seed, streamRandom)), n, k)
	return gatherRows(features, idx), idx, nil
}

// GreedyCoresetSampler is the reference's exact greedy coreset ("greedy_coreset"): project
// the features to ProjectionDim dimensions (unless D already equals it), start every point's
// score at the L2 norm of its row of the N×N Euclidean distance matrix, then
// floor(N·Percentage) times pick the first point of maximal score and lower every score to
// the distance to the pick. The bank holds the original D-dimensional rows.
//
// The distance matrix is never stored (memory O(N·ProjectionDim)), but the initial scores
// cost O(N²·ProjectionDim) time; N is capped through MaxMatrixBytes.
type GreedyCoresetSampler struct {
	Percentage    float64 // in (0, 1)
	Seed          uint64  // seeds the projection draw
	ProjectionDim int     // 0: DefaultProjectionDim
	// Projection, when set, replaces the random draw: a D×ProjectionDim row-major matrix P
	// with projected = features · P (the transpose of the reference's Linear weight). It is
	// an error to set it when D == ProjectionDim, where the reference does not project.
	Projection []float32
	// MaxMatrixBytes refuses inputs whose N×N float32 matrix (as the reference would
	// allocate) exceeds it; 0: DefaultMaxMatrixBytes.
	MaxMatrixBytes int64
	Workers        int // goroutines for the distance loops; 0: GOMAXPROCS
}

// NewGreedyCoresetSampler returns a GreedyCoresetSampler with the reference defaults.
func NewGreedyCoresetSampler(percentage float64, seed uint64) *GreedyCoresetSampler {
	return &GreedyCoresetSampler{Percentage: percentage, Seed: seed, ProjectionDim: DefaultProjectionDim}
}

// Sample selects the coreset.
func (s GreedyCoresetSampler) Sample(features Tensor) (Tensor, []int, error) {
	n, _, err := checkFeatures(features)
	if err != nil {
		return Tensor{}, nil, err
	}
	k, err := coresetSize(n, s.Percentage)
	if err != nil {
		return Tensor{}, nil, err
	}
	limit := s.MaxMatrixBytes
	if limit == 0 {
		limit = DefaultMaxMatrixBytes
	}
	if limit < 0 {
		return Tensor{}, nil, fmt.Errorf("%w: greedy coreset MaxMatrixBytes %d is negative", ErrInvalidArgument, limit)
	}
	if need := float64(n) * float64(n) * 4; need > float64(limit) {
		return Tensor{}, nil, fmt.Errorf("%w: exact greedy coreset on %d rows needs the reference's %d×%d distance matrix (%.0f bytes), above the cap of %d bytes; use approx_greedy_coreset",
			ErrInvalidArgument, n, n, n, need, limit)
	}
	var rows offheap.Floats
	defer rows.Free()
	pts, err := projectFeatures(features, s.ProjectionDim, s.Projection, s.Seed, s.Workers, &rows)
	if err != nil {
		return Tensor{}, nil, err
	}
	idx := pts.GreedyFast(pts.DistanceRowNorms(), k)
	return gatherRows(features, idx), idx, nil
}

// ApproximateGreedyCoresetSampler is the reference's approximate greedy coreset
// ("approx_greedy_coreset", the one its recipes use): project the features to ProjectionDim
// dimensions (unless D already equals it), start every point's score at its mean distance to
// min(NumStartingPoints, N) distinct random start points (which are not added to the bank),
// then floor(N·Percentage) times pick the first point of maximal score and lower every
// score to the distance to the pick. Distances are Euclidean, sqrt(max(|a|²−2a·b+|b|², 0))
// in float32. The bank holds the original D-dimensional rows in selection order. Memory is
// O(N·ProjectionDim) besides the features.
type ApproximateGreedyCoresetSampler struct {
	Percentage        float64 // in (0, 1)
	Seed              uint64  // seeds the projection and start point draws
	ProjectionDim     int     // 0: DefaultProjectionDim
	NumStartingPoints int     // 0: DefaultNumStartingPoints
	// Projection, when set, replaces the random draw (see GreedyCoresetSampler.Projection).
	Projection []float32
	// StartIndices, when set, replaces the draw of the start points (and NumStartingPoints):
	// distinct row numbers in [0, N).
	StartIndices []int
	Workers      int // goroutines for the distance loops; 0: GOMAXPROCS
}

// NewApproximateGreedyCoresetSampler returns an ApproximateGreedyCoresetSampler with the
// reference defaults.
func NewApproximateGreedyCoresetSampler(percentage float64, seed uint64) *ApproximateGreedyCoresetSampler {
	return &ApproximateGreedyCoresetSampler{Percentage: percentage, Seed: seed,
		ProjectionDim: DefaultProjectionDim, NumStartingPoints: DefaultNumStartingPoints}
}

// Sample selects the coreset.
func (s ApproximateGreedyCoresetSampler) Sample(features Tensor) (Tensor, []int, error) {
	n, _, err := checkFeatures(features)
	if err != nil {
		return Tensor{}, nil, err
	}
	k, err := coresetSize(n, s.Percentage)
	if err != nil {
		return Tensor{}, nil, err
	}
	starts := s.StartIndices
	if starts != nil {
		if err := checkStartIndices(starts, n); err != nil {
			return Tensor{}, nil, err
		}
	} else {
		m := s.NumStartingPoints
		if m == 0 {
			m = DefaultNumStartingPoints
		}
		if m < 0 {
			return Tensor{}, nil, fmt.Errorf("%w: NumStartingPoints %d is negative", ErrInvalidArgument, m)
		}
		starts = drawDistinct(rand.New(rand.NewPCG(s.Seed, streamStart)), n, min(m, n))
	}
	var rows offheap.Floats
	defer rows.Free()
	pts, err := projectFeatures(features, s.ProjectionDim, s.Projection, s.Seed, s.Workers, &rows)
	if err != nil {
		return Tensor{}, nil, err
	}
	idx := pts.GreedyFast(pts.MeanDistances(starts), k)
	return gatherRows(features, idx), idx, nil
}

// SamplerByName returns the sampler the reference CLI selects by name: "identity" (the
// percentage is ignored), "random", "greedy_coreset" or "approx_greedy_coreset", with the
// reference defaults otherwise. The percentage must lie in (0, 1) for all but identity.
func SamplerByName(name string, percentage float64, seed uint64) (Sampler, error) {
	if name != "identity" {
		if err := checkPercentage(percentage); err != nil {
			return nil, err
		}
	}
	switch name {
	case "identity":
		return IdentitySampler{}, nil
	case "random":
		return NewRandomSampler(percentage, seed), nil
	case "greedy_coreset":
		return NewGreedyCoresetSampler(percentage, seed), nil
	case "approx_greedy_coreset":
		return NewApproximateGreedyCoresetSampler(percentage, seed), nil
	}
	return nil, fmt.Errorf("%w: unknown sampler %q (want identity, random, greedy_coreset or approx_greedy_coreset)", ErrInvalidArgument, name)
}

// checkFeatures validates an [N, D] feature matrix with N, D >= 1 and finite values.
func checkFeatures(f Tensor) (n, d int, err error) {
	if len(f.Shape) != 2 {
		return 0, 0, fmt.Errorf("%w: sampler features must be 2-D [N, D], got shape %v", ErrInvalidArgument, f.Shape)
	}
	n, d = f.Shape[0], f.Shape[1]
	if n < 1 || d < 1 {
		return 0, 0, fmt.Errorf("%w: sampler features have shape %v; need at least one row and one column", ErrInvalidArgument, f.Shape)
	}
	if size, err := CheckedSize(f.Shape); err != nil {
		return 0, 0, err
	} else if size != len(f.Data) {
		return 0, 0, fmt.Errorf("%w: sampler features of shape %v hold %d values, want %d", ErrInvalidArgument, f.Shape, len(f.Data), size)
	}
	if n > math.MaxInt32 || d > math.MaxInt32 {
		return 0, 0, fmt.Errorf("%w: sampler features of shape %v exceed 2^31-1 rows or columns", ErrInvalidArgument, f.Shape)
	}
	if err := f.CheckFinite("sampler features"); err != nil {
		return 0, 0, err
	}
	return n, d, nil
}

// checkPercentage requires 0 < p < 1, as the reference's BaseSampler.
func checkPercentage(p float64) error {
	if !(p > 0 && p < 1) {
		return fmt.Errorf("%w: sampler percentage %v must lie in the open interval (0, 1); use the identity sampler to keep every row", ErrInvalidArgument, p)
	}
	return nil
}

// coresetSize is floor(n·p), the reference's int(len(features) * percentage). A size of 0
// is refused: the reference would return an empty memory bank, which cannot score anything.
func coresetSize(n int, p float64) (int, error) {
	if err := checkPercentage(p); err != nil {
		return 0, err
	}
	k := int(float64(n) * p)
	if k < 1 {
		return 0, fmt.Errorf("%w: sampler percentage %v of %d rows selects floor(%v) = 0 rows; the memory bank would be empty",
			ErrInvalidArgument, p, n, float64(n)*p)
	}
	return k, nil
}

// checkStartIndices requires a non-empty list of distinct row numbers in [0, n).
func checkStartIndices(starts []int, n int) error {
	if len(starts) == 0 {
		return fmt.Errorf("%w: StartIndices is empty", ErrInvalidArgument)
	}
	seen := make(map[int]bool, len(starts))
	for _, s := range starts {
		if s < 0 || s >= n {
			return fmt.Errorf("%w: start index %d outside [0, %d)", ErrInvalidArgument, s, n)
		}
		if seen[s] {
			return fmt.Errorf("%w: start index %d repeated (the reference draws without replacement)", ErrInvalidArgument, s)
		}
		seen[s] = true
	}
	return nil
}

// drawDistinct draws k distinct integers in [0, n) uniformly, in draw order (a partial
// Fisher–Yates shuffle over a virtual identity array).
func drawDistinct(r *rand.Rand, n, k int) []int {
	swapped := make(map[int]int, 2*k)
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]int, k)
	for i := range out {
		j := i + r.IntN(n-i)
		out[i] = at(j)
		swapped[j] = at(i)
	}
	return out
}

// projectFeatures returns the rows the greedy samplers compute distances on: features
// itself when D == dim (the reference does not project then), else features · P with the
// injected or a drawn P (uniform in ±1/√D, the reference's torch.nn.Linear initialisation),
// written into buf (outside the Go heap: N·dim floats, live for the whole greedy loop;
// the caller frees buf after its last use of the points).
func projectFeatures(f Tensor, dim int, proj []float32, seed uint64, workers int, buf *offheap.Floats) (*coreset.Points, error) {
	n, d := f.Shape[0], f.Shape[1]
	if dim == 0 {
		dim = DefaultProjectionDim
	}
	if dim < 0 || dim > math.MaxInt32 {
		return nil, fmt.Errorf("%w: ProjectionDim %d out of range", ErrInvalidArgument, dim)
	}
	var rows []float32
	if d == dim {
		if proj != nil {
			return nil, fmt.Errorf("%w: a projection matrix was given but the features already have ProjectionDim=%d columns, which the reference never projects", ErrInvalidArgument, dim)
		}
		rows = f.Data
	} else {
		if proj == nil {
			proj = drawProjection(seed, d, dim)
		} else {
			if len(proj) != d*dim {
				return nil, fmt.Errorf("%w: projection matrix has %d values, want D×ProjectionDim = %d×%d = %d", ErrInvalidArgument, len(proj), d, dim, d*dim)
			}
			if err := (Tensor{Shape: []int{d, dim}, Data: proj}).CheckFinite("projection matrix"); err != nil {
				return nil, err
			}
		}
		size, err := CheckedSize([]int{n, dim})
		if err != nil {
			return nil, err
		}
		if err := buf.Reserve(size); err != nil {
			return nil, fmt.Errorf("projecting %d rows to %d dimensions: %w", n, dim, err)
		}
		rows = buf.Spare()[:size]
		buf.Commit(size)
		cblas.Project(f.Data, n, d, proj, dim, rows)
	}
	pts := coreset.NewPoints(rows, n, dim, workers)
	if m := pts.MaxSquaredNorm(); !(m <= coreset.NormLimit) {
		return nil, fmt.Errorf("%w: projected features have a squared norm of %v, beyond %g where float32 distances overflow", ErrInvalidArgument, m, coreset.NormLimit)
	}
	return pts, nil
}

// drawProjection draws a d×dim projection matrix with entries uniform in ±1/√d, the
// distribution of the reference's torch.nn.Linear(d, dim) weight (kaiming-uniform, a=√5).
func drawProjection(seed uint64, d, dim int) []float32 {
	r := rand.New(rand.NewPCG(seed, streamProjection))
	bound := 1 / math.Sqrt(float64(d))
	proj := make([]float32, d*dim)
	for i := range proj {
		proj[i] = float32(bound * (2*r.Float64() - 1))
	}
	return proj
}

// gatherRows copies rows idx of f into a new [len(idx), D] tensor.
func gatherRows(f Tensor, idx []int) Tensor {
	d := f.Shape[1]
	out := NewTensor(len(idx), d)
	for i, r := range idx {
		copy(out.Data[i*d:(i+1)*d], f.Data[r*d:(r+1)*d])
	}
	return out
}
