package faiss

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

func randVectors(rng *rand.Rand, n, d int) []float32 {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// bruteForce returns, per query, all bank rows sorted by float64 squared L2 distance.
func bruteForce(bank []float32, nb int, q []float32, nq, d int) ([][]float64, [][]int64) {
	dists := make([][]float64, nq)
	order := make([][]int64, nq)
	for i := 0; i < nq; i++ {
		all := make([]float64, nb)
		idx := make([]int64, nb)
		for j := 0; j < nb; j++ {
			var s float64
			for c := 0; c < d; c++ {
				diff := float64(q[i*d+c]) - float64(bank[j*d+c])
				s += diff * diff
			}
			all[j] = s
			idx[j] = int64(j)
		}
		sort.SliceStable(idx, func(a, b int) bool { return all[idx[a]] < all[idx[b]] })
		sorted := make([]float64, nb)
		for j, id := range idx {
			sorted[j] = all[id]
		}
		dists[i], order[i] = sorted, idx
	}
	return dists, order
}

// exactDist is the float64 squared distance between query i and bank row j.
func exactDist(bank, q []float32, i int, j int64, d int) float64 {
	var s float64
	for c := 0; c < d; c++ {
		diff := float64(q[i*d+c]) - float64(bank[int(j)*d+c])
		s += diff * diff
	}
	return s
}

func newFlat(t testing.TB, bank []float32, n, d int) *Index {
	t.Helper()
	x, err := NewFlatL2(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if err := x.Add(bank, n); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestFaissFlatMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const nb, d = 700, 48
	bank := randVectors(rng, nb, d)
	x := newFlat(t, bank, nb, d)
	if x.Ntotal() != nb || x.Dim() != d || !x.IsTrained() || x.Workload() != FlatWorkload {
		t.Fatalf("ntotal %d dim %d trained %v workload %v", x.Ntotal(), x.Dim(), x.IsTrained(), x.Workload())
	}
	// 7 queries take FAISS's sequential path, 60 its BLAS path.
	for _, nq := range []int{7, 60} {
		q := randVectors(rng, nq, d)
		bd, bi := bruteForce(bank, nb, q, nq, d)
		for _, k := range []int{1, 5, 9} {
			dist, lab, err := x.Search(q, nq, k)
			if err != nil {
				t.Fatal(err)
			}
			ties := 0
			for i := 0; i < nq; i++ {
				for j := 0; j < k; j++ {
					got, want := float64(dist[i*k+j]), bd[i][j]
					if math.Abs(got-want) > 1e-4*want {
						t.Fatalf("nq=%d k=%d query %d rank %d: distance %v, brute force %v", nq, k, i, j, got, want)
					}
					if lab[i*k+j] != bi[i][j] {
						// Allowed only for a tie: the returned row must be as close.
						alt := exactDist(bank, q, i, lab[i*k+j], d)
						if math.Abs(alt-want) > 1e-4*want {
							t.Fatalf("nq=%d k=%d query %d rank %d: label %d (dist %v), brute force %d (dist %v)", nq, k, i, j, lab[i*k+j], alt, bi[i][j], want)
						}
						ties++
					}
				}
			}
			if ties > nq*k/100 {
				t.Errorf("nq=%d k=%d: %d label differences explained as ties; too many for random data", nq, k, ties)
			}
		}
	}
}

func TestFaissArgumentErrors(t *testing.T) {
	if _, err := NewFlatL2(0); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("NewFlatL2(0): %v", err)
	}
	if _, err := NewFlatL2(-3); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("NewFlatL2(-3): %v", err)
	}
	if _, err := NewFromFactory(8, "NoSuchIndex"); !errors.Is(err, errs.ErrBackend) {
		t.Errorf("bad factory string: %v", err)
	}
	x := newFlat(t, []float32{1, 2, 3, 4}, 2, 2)
	cases := []struct {
		name string
		err  error
	}{
		{"wrong length", x.Add([]float32{1, 2, 3}, 2)},
		{"negative n", x.Add(nil, -1)},
		{"NaN", x.Add([]float32{1, float32(math.NaN())}, 1)},
		{"Inf", x.Add([]float32{float32(math.Inf(1)), 0}, 1)},
		{"train wrong length", x.Train([]float32{1}, 1)},
		{"train empty", x.Train(nil, 0)},
	}
	for _, c := range cases {
		if !errors.Is(c.err, errs.ErrInvalidArgument) {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	for _, k := range []int{0, -1} {
		if _, _, err := x.Search([]float32{1, 2}, 1, k); !errors.Is(err, errs.ErrInvalidArgument) {
			t.Errorf("k=%d: %v", k, err)
		}
	}
	if _, _, err := x.Search([]float32{1, 2, 3}, 1, 1); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("wrong query dimension: %v", err)
	}
	if _, _, err := x.Search([]float32{1, float32(math.NaN())}, 1, 1); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("NaN query: %v", err)
	}
	for _, k := range []int{3, math.MaxInt / 4} {
		if _, _, err := x.Search([]float32{1, 2}, 1, k); !errors.Is(err, errs.ErrInvalidArgument) {
			t.Errorf("k=%d > ntotal: %v", k, err)
		}
	}
	if _, lab, err := x.Search([]float32{1, 2}, 1, 2); err != nil || lab[0] != 0 || lab[1] != 1 {
		t.Errorf("k = ntotal: %v %v", lab, err)
	}
	if x.Ntotal() != 2 {
		t.Errorf("failed calls changed the index: ntotal %d", x.Ntotal())
	}
	if err := SetThreads(0, 1); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("SetThreads(0,1): %v", err)
	}
	if GPUAvailable() || !errors.Is(ErrNoGPU, errs.ErrUnsupported) {
		t.Error("CPU build must report no GPU")
	}
}

func TestFaissUntrainedIVFErrors(t *testing.T) {
	x, err := NewFromFactory(8, "IVF4,PQ2np")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.IsTrained() || x.Workload() != IVFWorkload {
		t.Fatalf("fresh IVF index: trained %v workload %v", x.IsTrained(), x.Workload())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	if err := x.Add(randVectors(rng, 10, 8), 10); !errors.Is(err, errs.ErrBackend) {
		t.Fatalf("add to untrained IVF: %v", err)
	}
	// Too few points for 256 PQ centroids: FAISS refuses, the binding reports its message.
	err = x.Train(randVectors(rng, 100, 8), 100)
	if !errors.Is(err, errs.ErrBackend) {
		t.Fatalf("train with 100 points: %v", err)
	}
	t.Log(err)
}

func TestFaissCloseIsIdempotent(t *testing.T) {
	x, err := NewFlatL2(4)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.Search(make([]float32, 4), 1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("search after close: %v", err)
	}
	if err := x.Add(make([]float32, 4), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: %v", err)
	}
	if _, err := x.Serialize(); !errors.Is(err, ErrClosed) {
		t.Errorf("serialize after close: %v", err)
	}
	if x.Ntotal() != 0 || x.Dim() != 0 || x.IsTrained() {
		t.Error("closed index reports content")
	}
}

// smallIVFPQ is a trained IVF-PQ index small enough to corrupt at every byte.
func smallIVFPQ(t testing.TB) (*Index, []float32) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	const n, d = 300, 8
	data := randVectors(rng, n, d)
	x, err := NewFromFactory(d, "IVF4,PQ4np")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if err := UseThreadsFor(IVFWorkload, 1); err != nil {
		t.Fatal(err)
	}
	if err := x.Train(data, n); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(data, n); err != nil {
		t.Fatal(err)
	}
	return x, data
}

func sameSearch(t *testing.T, a, b *Index, q []float32, nq, k int) {
	t.Helper()
	da, la, err := a.Search(q, nq, k)
	if err != nil {
		t.Fatal(err)
	}
	db, lb, err := b.Search(q, nq, k)
	if err != nil {
		t.Fatal(err)
	}
	for i := range da {
		if da[i] != db[i] || la[i] != lb[i] {
			t.Fatalf("result %d differs after round trip: (%v,%d) vs (%v,%d)", i, da[i], la[i], db[i], lb[i])
		}
	}
}

func TestFaissRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const nb, d = 200, 16
	bank := randVectors(rng, nb, d)
	flat := newFlat(t, bank, nb, d)
	ivf, _ := smallIVFPQ(t)
	for name, x := range map[string]*Index{"flat": flat, "ivfpq": ivf} {
		b, err := x.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		if name == "flat" && len(b) != 45+nb*d*4 {
			t.Errorf("flat index serializes to %d bytes, want 45 + 4*n*d = %d", len(b), 45+nb*d*4)
		}
		y, err := Deserialize(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer y.Close()
		path := filepath.Join(t.TempDir(), "index.faiss")
		if err := x.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		onDisk, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(onDisk, b) {
			t.Fatalf("%s: file content differs from Serialize (%v)", name, err)
		}
		z, err := ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer z.Close()
		if y.Ntotal() != x.Ntotal() || y.Dim() != x.Dim() || y.Workload() != x.Workload() || z.Ntotal() != x.Ntotal() {
			t.Fatalf("%s: loaded index differs: ntotal %d/%d dim %d/%d", name, y.Ntotal(), x.Ntotal(), y.Dim(), x.Dim())
		}
		q := randVectors(rng, 30, x.Dim())
		sameSearch(t, x, y, q, 30, 5)
		sameSearch(t, x, z, q, 30, 5)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.faiss")); !errors.Is(err, errs.ErrIO) {
		t.Errorf("missing file: %v", err)
	}
	if err := flat.WriteFile(filepath.Join(t.TempDir(), "no", "such", "dir", "x.faiss")); !errors.Is(err, errs.ErrIO) {
		t.Errorf("unwritable path: %v", err)
	}
}

// TestFaissCorruptedIndexes truncates small serialized indexes at every offset and flips
// every byte: each must be refused with errs.ErrFormat or load into an index that searches
// without crashing.
func TestFaissCorruptedIndexes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	flat := newFlat(t, randVectors(rng, 3, 4), 3, 4)
	ivf, data := smallIVFPQ(t)
	for name, x := range map[string]*Index{"flat": flat, "ivfpq": ivf} {
		b, err := x.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			if y, err := Deserialize(b[:n]); !errors.Is(err, errs.ErrFormat) {
				if y != nil {
					y.Close()
				}
				t.Fatalf("%s truncated to %d of %d bytes: %v", name, n, len(b), err)
			}
		}
		if _, err := Deserialize(append(append([]byte(nil), b...), 0)); !errors.Is(err, errs.ErrFormat) {
			t.Errorf("%s with a trailing byte: %v", name, err)
		}
		loaded := 0
		c := append([]byte(nil), b...)
		for i := range c {
			for _, mask := range []byte{0xff, 0x01, 0x80} {
				c[i] ^= mask
				y, err := Deserialize(c)
				c[i] ^= mask
				if err != nil {
					if !errors.Is(err, errs.ErrFormat) {
						t.Fatalf("%s byte %d ^ %#x: error %v does not wrap errs.ErrFormat", name, i, mask, err)
					}
					continue
				}
				loaded++
				if _, _, err := y.Search(data[:8*x.Dim()], 8, int(min(3, y.Ntotal()))); err != nil {
					t.Fatalf("%s byte %d ^ %#x: loaded index fails to search: %v", name, i, mask, err)
				}
				y.Close()
			}
		}
		t.Logf("%s: %d bytes, %d of %d single-byte corruptions still load (data bytes) and search", name, len(b), loaded, 3*len(b))
	}
	for _, bad := range [][]byte{nil, []byte("IxF2"), []byte("\x00\x01\x02\x03 garbage"), []byte("IxHE0123456789abcdef")} {
		if _, err := Deserialize(bad); !errors.Is(err, errs.ErrFormat) {
			t.Errorf("Deserialize(%q): %v", bad, err)
		}
	}
}

func TestFaissConcurrentSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const nb, d, nq, k = 500, 32, 40, 3
	bank := randVectors(rng, nb, d)
	x := newFlat(t, bank, nb, d)
	if err := UseThreadsFor(FlatWorkload, 2); err != nil {
		t.Fatal(err)
	}
	q := randVectors(rng, nq, d)
	wantD, wantL, err := x.Search(q, nq, k)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 20; it++ {
				dd, ll, err := x.Search(q, nq, k)
				if err != nil {
					errs <- err.Error()
					return
				}
				for i := range dd {
					if dd[i] != wantD[i] || ll[i] != wantL[i] {
						errs <- "concurrent search result differs"
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestFaissThreadSettings(t *testing.T) {
	if o, b := ThreadsFor(FlatWorkload, 6); o != 1 || b != 6 {
		t.Errorf("flat: OpenMP %d, OpenBLAS %d", o, b)
	}
	if o, b := ThreadsFor(IVFWorkload, 6); o != 6 || b != 1 {
		t.Errorf("IVF: OpenMP %d, OpenBLAS %d", o, b)
	}
	// Results do not depend on the pool sizes.
	rng := rand.New(rand.NewPCG(13, 14))
	bank := randVectors(rng, 300, 24)
	x := newFlat(t, bank, 300, 24)
	q := randVectors(rng, 50, 24)
	var first []int64
	for _, cfg := range [][2]int{{1, 1}, {1, runtime.NumCPU()}, {runtime.NumCPU(), 1}} {
		if err := SetThreads(cfg[0], cfg[1]); err != nil {
			t.Fatal(err)
		}
		_, lab, err := x.Search(q, 50, 2)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = lab
			continue
		}
		for i := range lab {
			if lab[i] != first[i] {
				t.Fatalf("threads %v: labels differ", cfg)
			}
		}
	}
}

// FuzzDeserialize feeds arbitrary bytes to the validating reader: it must never crash.
func FuzzDeserialize(f *testing.F) {
	rng := rand.New(rand.NewPCG(15, 16))
	flat := newFlat(f, randVectors(rng, 3, 4), 3, 4)
	ivf, _ := smallIVFPQ(f)
	for _, x := range []*Index{flat, ivf} {
		b, err := x.Serialize()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		y, err := Deserialize(b)
		if err != nil {
			if !errors.Is(err, errs.ErrFormat) {
				t.Fatalf("error does not wrap errs.ErrFormat: %v", err)
			}
			return
		}
		defer y.Close()
		if y.Ntotal() == 0 {
			return
		}
		if _, _, err := y.Search(make([]float32, y.Dim()), 1, int(min(2, y.Ntotal()))); err != nil {
			t.Fatalf("loaded index fails to search: %v", err)
		}
	})
}

// BenchmarkFlatSearch is the reference workload of exact search: one test image's 784
// patch queries against a 16,384-row bank of 1024-d features, k = 1.
func BenchmarkFlatSearch(b *testing.B) {
	const nq, nb, d = 784, 16384, 1024
	rng := rand.New(rand.NewPCG(17, 18))
	x := newFlat(b, randVectors(rng, nb, d), nb, d)
	q := randVectors(rng, nq, d)
	if err := UseThreadsFor(FlatWorkload, runtime.NumCPU()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := x.Search(q, nq, 1); err != nil {
			b.Fatal(err)
		}
	}
	flops := 2.0 * nq * nb * d
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// TestFaissCleanupFreesForgottenIndexes drops 400 indexes of 256 KiB without Close: the
// cleanup attached to each Index must free every one once it is garbage.
func TestFaissCleanupFreesForgottenIndexes(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	bank := randVectors(rng, 1024, 64)
	base := liveIndexes.Load()
	for i := 0; i < 400; i++ {
		x, err := NewFlatL2(64)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Add(bank, 1024); err != nil {
			t.Fatal(err)
		}
	}
	if n := liveIndexes.Load() - base; n != 400 {
		t.Fatalf("%d live indexes counted, want 400", n)
	}
	// Cleanups run on their own goroutine after a collection finds an Index garbage.
	deadline := time.Now().Add(10 * time.Second)
	for liveIndexes.Load() > base && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := liveIndexes.Load() - base; n != 0 {
		t.Errorf("%d of 400 forgotten indexes were never freed", n)
	}
	// Close frees at once and only once.
	x, err := NewFlatL2(8)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	x.Close()
	if n := liveIndexes.Load() - base; n != 0 {
		t.Errorf("after Close: %d live indexes", n)
	}
}
