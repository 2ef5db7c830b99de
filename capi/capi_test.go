package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	ct "github.com/libpatchcore/libpatchcore/capi/cgotest"
	"github.com/libpatchcore/libpatchcore/internal/golden"
)

// TestMain points the ONNX Runtime loader at the runtime installed by
// scripts/install-deps.sh unless $PATCHCORE_ORT_LIBRARY is set, and fails the run when
// the tests leave objects in the registry.
func TestMain(m *testing.M) {
	if os.Getenv("PATCHCORE_ORT_LIBRARY") == "" {
		_, file, _, _ := runtime.Caller(0)
		lib := filepath.Join(filepath.Dir(file), "..", ".deps", "lib", "libonnxruntime.so.1")
		if _, err := os.Stat(lib); err == nil {
			os.Setenv("PATCHCORE_ORT_LIBRARY", lib)
		}
	}
	code := m.Run()
	if n := liveHandles(); n != 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d objects are still registered after the tests\n", n)
		code = 1
	}
	os.Exit(code)
}

// lockThread wires the calling goroutine to its OS thread, so that a failing call and the
// patchcore_last_error after it run on the same thread: defer lockThread()().
func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// expect asserts a status and, for failures, that the thread's message contains every
// fragment (the function name is always checked).
func expect(t *testing.T, got, want int32, fn string, fragments ...string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %s (%d), want %s; last error %q", fn, ct.StatusString(got), got, ct.StatusString(want), ct.LastError())
	}
	if want == ct.OK {
		return
	}
	msg := ct.LastError()
	for _, f := range append([]string{fn + ": "}, fragments...) {
		if !strings.Contains(msg, f) {
			t.Fatalf("%s: message %q does not contain %q", fn, msg, f)
		}
	}
}

// randMatrix returns rows x cols uniform floats from a seeded generator.
func randMatrix(rng *rand.Rand, rows, cols int) []float32 {
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

// maxAbsDiff returns max|a-b| and max|b|.
func maxAbsDiff(a, b []float32) (diff, scale float64) {
	for i := range b {
		diff = math.Max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

func TestStatusStrings(t *testing.T) {
	names := map[int32]string{
		ct.OK: "PATCHCORE_OK", ct.InvalidArgument: "PATCHCORE_ERR_INVALID_ARGUMENT", ct.InvalidHandle: "PATCHCORE_ERR_INVALID_HANDLE",
		ct.InvalidState: "PATCHCORE_ERR_INVALID_STATE", ct.BufferTooSmall: "PATCHCORE_ERR_BUFFER_TOO_SMALL", ct.IO: "PATCHCORE_ERR_IO",
		ct.Format: "PATCHCORE_ERR_FORMAT", ct.OutOfMemory: "PATCHCORE_ERR_OUT_OF_MEMORY", ct.Internal: "PATCHCORE_ERR_INTERNAL",
		ct.Unsupported: "PATCHCORE_ERR_UNSUPPORTED", ct.Backend: "PATCHCORE_ERR_BACKEND",
		-1: "PATCHCORE_ERR_UNKNOWN", 11: "PATCHCORE_ERR_UNKNOWN", math.MaxInt32: "PATCHCORE_ERR_UNKNOWN",
	}
	for code, want := range names {
		if got := ct.StatusString(code); got != want {
			t.Errorf("status_string(%d) = %q, want %q", code, got, want)
		}
	}
	// The codes are pinned: a renumbering breaks every binding.
	for i, code := range []int32{ct.OK, ct.InvalidArgument, ct.InvalidHandle, ct.InvalidState, ct.BufferTooSmall, ct.IO, ct.Format, ct.OutOfMemory, ct.Internal, ct.Unsupported, ct.Backend} {
		if code != int32(i) {
			t.Errorf("status code %s = %d, want %d", ct.StatusString(code), code, i)
		}
	}
}

func TestLastError(t *testing.T) {
	defer lockThread()() // the message is per OS thread
	expect(t, ct.SetNumThreads(-7), ct.InvalidArgument, "patchcore_set_num_threads", "num_threads = -7")
	msg := ct.LastError()
	if n := ct.LastErrorInto(nil, 0); n != uint64(len(msg)+1) {
		t.Fatalf("size query = %d, want %d", n, len(msg)+1)
	}
	buf := []byte("xxxxxxxx")
	if n := ct.LastErrorInto(buf, 5); n != uint64(len(msg)+1) || string(buf[:5]) != msg[:4]+"\x00" || buf[5] != 'x' {
		t.Fatalf("truncated copy: returned %d, buffer %q", n, buf)
	}
	// A success keeps the previous message.
	expect(t, ct.SetNumThreads(0), ct.OK, "patchcore_set_num_threads")
	if got := ct.LastError(); got != msg {
		t.Fatalf("message after a success = %q, want %q", got, msg)
	}
	expect(t, ct.SetNumThreads(1025), ct.InvalidArgument, "patchcore_set_num_threads", "1025", "[0, 1024]")
}

func TestLastErrorLongMessageIsCut(t *testing.T) {
	defer lockThread()()
	// 4 + 2*1021 = 2046 bytes fit the 2047 available; the next "é" would be split.
	setLastError("xy: " + strings.Repeat("é", 3000))
	msg := ct.LastError()
	if len(msg) != 2046 || !utf8.ValidString(msg) {
		t.Fatalf("long message cut to %d bytes (valid UTF-8: %v)", len(msg), utf8.ValidString(msg))
	}
}

func TestThreadLocalErrors(t *testing.T) {
	if r := ct.ThreadErrors(8, 2000); r != "" {
		t.Fatal(r)
	}
}

func TestLibraryCalls(t *testing.T) {
	defer lockThread()()
	if ct.GPUAvailable() != 0 {
		t.Fatal("gpu_available = 1 in a CPU build")
	}
	expect(t, ct.SetONNXRuntimePath(nil), ct.InvalidArgument, "patchcore_set_onnxruntime_path", "path is NULL")
	expect(t, ct.SetONNXRuntimePath(ct.S("")), ct.InvalidArgument, "patchcore_set_onnxruntime_path", "path is empty")
	expect(t, ct.SetNumThreads(2), ct.OK, "patchcore_set_num_threads")
	expect(t, ct.SetNumThreads(0), ct.OK, "patchcore_set_num_threads")
}

// bruteForce returns, per query, the k smallest squared L2 distances and their rows.
func bruteForce(bank, queries []float32, d, k int) ([]float32, []int64) {
	n, nq := len(bank)/d, len(queries)/d
	dist := make([]float32, 0, nq*k)
	idx := make([]int64, 0, nq*k)
	for q := range nq {
		type cand struct {
			d float64
			i int
		}
		cands := make([]cand, n)
		for i := range n {
			var s float64
			for j := range d {
				x := float64(queries[q*d+j]) - float64(bank[i*d+j])
				s += x * x
			}
			cands[i] = cand{s, i}
		}
		sort.Slice(cands, func(a, b int) bool { return cands[a].d < cands[b].d })
		for _, c := range cands[:k] {
			dist = append(dist, float32(c.d))
			idx = append(idx, int64(c.i))
		}
	}
	return dist, idx
}

func TestScorerAgainstBruteForce(t *testing.T) {
	defer lockThread()()
	rng := rand.New(rand.NewPCG(1, 1))
	const n, nq, d, k = 200, 40, 16, 3
	bank, queries := randMatrix(rng, n, d), randMatrix(rng, nq, d)
	var s ct.Handle
	expect(t, ct.ScorerCreate(k, ct.NNExact, 0, 2, &s), ct.OK, "patchcore_scorer_create")
	defer ct.ScorerFree(s)
	expect(t, ct.ScorerFit(s, bank, n, d), ct.OK, "patchcore_scorer_fit")
	for i := range bank { // the scorer keeps its own copy
		bank[i] = -1e6
	}
	scores, dist, idx := make([]float32, nq), make([]float32, nq*k), make([]int64, nq*k)
	expect(t, ct.ScorerPredict(s, queries, nq, d, scores, dist, idx), ct.OK, "patchcore_scorer_predict")
	rng = rand.New(rand.NewPCG(1, 1))
	wantDist, wantIdx := bruteForce(randMatrix(rng, n, d), queries, d, k)
	if diff, scale := maxAbsDiff(dist, wantDist); diff > 1e-5*scale {
		t.Fatalf("distances differ from brute force by %g (scale %g)", diff, scale)
	}
	for i := range wantIdx {
		if idx[i] != wantIdx[i] {
			t.Fatalf("index %d = %d, brute force %d", i, idx[i], wantIdx[i])
		}
	}
	for q := range nq {
		mean := (wantDist[q*k] + wantDist[q*k+1] + wantDist[q*k+2]) / k
		if math.Abs(float64(scores[q]-mean)) > 1e-5*float64(mean)+1e-6 {
			t.Fatalf("score %d = %g, mean of brute-force distances %g", q, scores[q], mean)
		}
	}
	// Optional outputs may be NULL.
	scores2 := make([]float32, nq)
	expect(t, ct.ScorerPredict(s, queries, nq, d, scores2, nil, nil), ct.OK, "patchcore_scorer_predict")
	if diff, _ := maxAbsDiff(scores2, scores); diff != 0 {
		t.Fatal("scores without distances/indices differ")
	}

	// Save and load in the reference's file names give identical scores.
	dir := t.TempDir()
	expect(t, ct.ScorerSave(s, ct.S(dir), 1, ct.S("Ensemble-1-1_")), ct.OK, "patchcore_scorer_save")
	for _, f := range []string{"Ensemble-1-1_nnscorer_search_index.faiss", "Ensemble-1-1_nnscorer_features.pkl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var s2 ct.Handle
	expect(t, ct.ScorerCreate(k, ct.NNExact, 0, 1, &s2), ct.OK, "patchcore_scorer_create")
	defer ct.ScorerFree(s2)
	expect(t, ct.ScorerLoad(s2, ct.S(dir), ct.S("Ensemble-1-1_")), ct.OK, "patchcore_scorer_load")
	expect(t, ct.ScorerPredict(s2, queries, nq, d, scores2, nil, nil), ct.OK, "patchcore_scorer_predict")
	if diff, _ := maxAbsDiff(scores2, scores); diff != 0 {
		t.Fatal("scores after save/load differ")
	}
	expect(t, ct.ScorerSave(s, ct.S(dir), 0, nil), ct.OK, "patchcore_scorer_save")
	if _, err := os.Stat(filepath.Join(dir, "nnscorer_search_index.faiss")); err != nil {
		t.Fatal(err)
	}
}

func TestScorerErrors(t *testing.T) {
	defer lockThread()()
	var s ct.Handle
	expect(t, ct.ScorerCreate(1, ct.NNExact, 0, 0, nil), ct.InvalidArgument, "patchcore_scorer_create", "out_scorer is NULL")
	for _, c := range []struct {
		k, method, gpu, workers int32
		status                  int32
		frag                    string
	}{
		{0, ct.NNExact, 0, 0, ct.InvalidArgument, "k = 0"},
		{70000, ct.NNExact, 0, 0, ct.InvalidArgument, "k = 70000"},
		{1, 7, 0, 0, ct.InvalidArgument, "nn_method = 7"},
		{1, ct.NNExact, 2, 0, ct.InvalidArgument, "on_gpu = 2"},
		{1, ct.NNExact, 1, 0, ct.Unsupported, "GPU"},
		{1, ct.NNIVFPQ, 0, -1, ct.InvalidArgument, "num_workers = -1"},
	} {
		s = 12345
		expect(t, ct.ScorerCreate(c.k, c.method, c.gpu, c.workers, &s), c.status, "patchcore_scorer_create", c.frag)
		if s != 0 {
			t.Fatalf("failed create left handle %#x", s)
		}
	}

	expect(t, ct.ScorerCreate(2, ct.NNExact, 0, 1, &s), ct.OK, "patchcore_scorer_create")
	q := []float32{1, 2, 3, 4}
	out := make([]float32, 2)
	expect(t, ct.ScorerPredict(s, q, 2, 2, out, nil, nil), ct.InvalidState, "patchcore_scorer_predict", "before fit")
	expect(t, ct.ScorerSave(s, ct.S(t.TempDir()), 0, nil), ct.InvalidState, "patchcore_scorer_save", "fit or load first")
	expect(t, ct.ScorerFit(s, nil, 2, 2), ct.InvalidArgument, "patchcore_scorer_fit", "features is NULL")
	expect(t, ct.ScorerFit(s, q, 0, 2), ct.InvalidArgument, "patchcore_scorer_fit", "non-positive")
	expect(t, ct.ScorerFit(s, q, 2, -2), ct.InvalidArgument, "patchcore_scorer_fit", "non-positive")
	expect(t, ct.ScorerFit(s, q, 1<<40, 1<<40), ct.OutOfMemory, "patchcore_scorer_fit", "2^40")
	expect(t, ct.ScorerFit(s, []float32{1, float32(math.NaN()), 3, 4}, 2, 2), ct.InvalidArgument, "patchcore_scorer_fit", "NaN")
	expect(t, ct.ScorerFit(s, q, 2, 2), ct.OK, "patchcore_scorer_fit")
	expect(t, ct.ScorerPredict(s, q, 1, 4, out, nil, nil), ct.InvalidArgument, "patchcore_scorer_predict", "dimension 4")
	expect(t, ct.ScorerPredict(s, q, 2, 2, nil, nil, nil), ct.InvalidArgument, "patchcore_scorer_predict", "out_scores is NULL")
	expect(t, ct.ScorerPredict(s, nil, 2, 2, out, nil, nil), ct.InvalidArgument, "patchcore_scorer_predict", "queries is NULL")
	expect(t, ct.ScorerSave(s, nil, 0, nil), ct.InvalidArgument, "patchcore_scorer_save", "folder is NULL")
	expect(t, ct.ScorerSave(s, ct.S(t.TempDir()), 3, nil), ct.InvalidArgument, "patchcore_scorer_save", "save_features_separately = 3")
	missing := filepath.Join(t.TempDir(), "nothing-here")
	expect(t, ct.ScorerLoad(s, ct.S(missing), nil), ct.IO, "patchcore_scorer_load", missing)
	expect(t, ct.ScorerLoad(s, nil, nil), ct.InvalidArgument, "patchcore_scorer_load", "folder is NULL")

	// Handles: NULL, wrong kind, freed, double free, free(NULL).
	var seg ct.Handle
	expect(t, ct.SegmentorCreate(4, 4, 1, &seg), ct.OK, "patchcore_segmentor_create")
	expect(t, ct.ScorerFit(seg, q, 2, 2), ct.InvalidHandle, "patchcore_scorer_fit", "is a segmentor, not a scorer")
	expect(t, ct.ScorerFree(seg), ct.InvalidHandle, "patchcore_scorer_free", "is a segmentor, not a scorer")
	expect(t, ct.SegmentorFree(seg), ct.OK, "patchcore_segmentor_free")
	expect(t, ct.ScorerPredict(0, q, 2, 2, out, nil, nil), ct.InvalidHandle, "patchcore_scorer_predict", "scorer handle is NULL")
	expect(t, ct.ScorerFree(0), ct.OK, "patchcore_scorer_free")
	expect(t, ct.ScorerFree(s), ct.OK, "patchcore_scorer_free")
	expect(t, ct.ScorerFree(s), ct.InvalidHandle, "patchcore_scorer_free", fmt.Sprintf("scorer handle %#x is unknown or already freed", uintptr(s)))
	expect(t, ct.ScorerPredict(s, q, 2, 2, out, nil, nil), ct.InvalidHandle, "patchcore_scorer_predict", "already freed")
	expect(t, ct.ScorerSave(s, ct.S("."), 0, nil), ct.InvalidHandle, "patchcore_scorer_save", "already freed")
	expect(t, ct.ScorerLoad(12345678, ct.S("."), nil), ct.InvalidHandle, "patchcore_scorer_load", "unknown")
}

// TestFreeWaitsForCalls frees a scorer while goroutines predict on it: every call either
// completes or reports the handle as freed, none crashes, and once freed it stays freed.
func TestFreeWaitsForCalls(t *testing.T) {
	defer lockThread()()
	rng := rand.New(rand.NewPCG(2, 2))
	const n, d = 300, 32
	bank := randMatrix(rng, n, d)
	var s ct.Handle
	expect(t, ct.ScorerCreate(1, ct.NNExact, 0, 1, &s), ct.OK, "patchcore_scorer_create")
	expect(t, ct.ScorerFit(s, bank, n, d), ct.OK, "patchcore_scorer_fit")
	var wg sync.WaitGroup
	results := make([][]int32, 4)
	started := make(chan struct{}, len(results))
	for g := range results {
		wg.Go(func() {
			out := make([]float32, n)
			for range 100000 {
				st := ct.ScorerPredict(s, bank, n, d, out, nil, nil)
				if len(results[g]) == 0 {
					started <- struct{}{}
				}
				results[g] = append(results[g], st)
				if st != ct.OK {
					return
				}
			}
		})
	}
	<-started
	expect(t, ct.ScorerFree(s), ct.OK, "patchcore_scorer_free")
	wg.Wait()
	for g, rs := range results {
		last := rs[len(rs)-1]
		if last != ct.InvalidHandle {
			t.Fatalf("goroutine %d ended with %s after %d calls", g, ct.StatusString(last), len(rs))
		}
		for _, st := range rs[:len(rs)-1] {
			if st != ct.OK {
				t.Fatalf("goroutine %d: %s before the free was seen", g, ct.StatusString(st))
			}
		}
	}
}

// TestPanicPoisonsHandle injects a panic through the real guard: a scorer entry whose
// object is not a scorer (a corrupted registry) makes the export's type assertion panic.
// It runs in a child process, because the guard prints the stack to stderr.
func TestPanicPoisonsHandle(t *testing.T) {
	if os.Getenv("PATCHCORE_PANIC_CHILD") == "1" {
		defer lockThread()()
		s := ct.Handle(register(kindScorer, "not a scorer"))
		q := []float32{1, 2}
		expect(t, ct.ScorerFit(s, q, 1, 2), ct.Internal, "patchcore_scorer_fit", "internal error", "interface conversion")
		expect(t, ct.ScorerFit(s, q, 1, 2), ct.InvalidState, "patchcore_scorer_fit", "unknown state after an earlier internal error")
		expect(t, ct.ScorerPredict(s, q, 1, 2, make([]float32, 1), nil, nil), ct.InvalidState, "patchcore_scorer_predict", "unknown state")
		if _, err := forget(uintptr(s)); err != nil {
			t.Fatal(err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicPoisonsHandle$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PATCHCORE_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if c := strings.Count(string(out), "libpatchcore: panic in patchcore_scorer_fit"); c != 1 {
		t.Fatalf("stack printed %d times, want once:\n%s", c, out)
	}
	if !strings.Contains(string(out), "goroutine") {
		t.Fatalf("no stack in the child's stderr:\n%s", out)
	}
}

// forget removes an entry the way a free does (the injected object cannot be closed).
func forget(id uintptr) (any, error) {
	c := call{fn: "test"}
	defer c.release()
	return c.take(id, kindScorer)
}

func TestSegmentorGolden(t *testing.T) {
	defer lockThread()()
	scores := golden.Load(t, "mnv2/patch_scores_k1.npy")
	want := golden.Load(t, "mnv2/segmentations_k1.npy")
	var s ct.Handle
	expect(t, ct.SegmentorCreate(224, 224, 4, &s), ct.OK, "patchcore_segmentor_create")
	defer ct.SegmentorFree(s)
	var needed uint64
	expect(t, ct.SegmentorConvert(s, scores.F32, 2, 28, 28, nil, 0, &needed), ct.BufferTooSmall, "patchcore_segmentor_convert", "100352 are needed")
	if needed != 2*224*224 {
		t.Fatalf("needed = %d", needed)
	}
	out := make([]float32, needed)
	expect(t, ct.SegmentorConvert(s, scores.F32, 2, 28, 28, out, needed-1, &needed), ct.BufferTooSmall, "patchcore_segmentor_convert", "100351")
	expect(t, ct.SegmentorConvert(s, scores.F32, 2, 28, 28, nil, 5, nil), ct.InvalidArgument, "patchcore_segmentor_convert", "out is NULL but its capacity is 5")
	expect(t, ct.SegmentorConvert(s, scores.F32, 2, 28, 28, out, needed, nil), ct.OK, "patchcore_segmentor_convert")
	if diff, scale := maxAbsDiff(out, want.F32); diff > 1e-5*scale {
		t.Fatalf("segmentation differs from golden by %g (scale %g)", diff, scale)
	}
	expect(t, ct.SegmentorConvert(s, nil, 2, 28, 28, out, needed, nil), ct.InvalidArgument, "patchcore_segmentor_convert", "patch_scores is NULL")
	expect(t, ct.SegmentorConvert(s, scores.F32, 0, 28, 28, out, needed, nil), ct.InvalidArgument, "patchcore_segmentor_convert", "non-positive")
	expect(t, ct.SegmentorConvert(s, scores.F32, 1<<30, 1<<20, 28, out, needed, nil), ct.OutOfMemory, "patchcore_segmentor_convert", "2^40")

	expect(t, ct.SegmentorCreate(0, 224, 4, &s), ct.InvalidArgument, "patchcore_segmentor_create", "target_height = 0")
	expect(t, ct.SegmentorCreate(224, 40000, 4, &s), ct.InvalidArgument, "patchcore_segmentor_create", "target_width = 40000")
	expect(t, ct.SegmentorCreate(224, 224, math.NaN(), &s), ct.InvalidArgument, "patchcore_segmentor_create", "sigma = NaN")
	expect(t, ct.SegmentorCreate(224, 224, -1, &s), ct.InvalidArgument, "patchcore_segmentor_create", "sigma = -1")
	expect(t, ct.SegmentorCreate(224, 224, 4, nil), ct.InvalidArgument, "patchcore_segmentor_create", "out_segmentor is NULL")
	if s != 0 {
		t.Fatal("failed create left a handle")
	}
}

// goldenLayers returns the mnv2 test feature maps and their shapes.
func goldenLayers(t *testing.T, split string) ([][]float32, []int64) {
	var layers [][]float32
	var shapes []int64
	for _, name := range []string{"block6", "block10"} {
		a := golden.Load(t, "mnv2/"+name+"_"+split+".npy")
		layers = append(layers, a.F32)
		for _, d := range a.Shape {
			shapes = append(shapes, int64(d))
		}
	}
	return layers, shapes
}

func TestEmbedGolden(t *testing.T) {
	defer lockThread()()
	layers, shapes := goldenLayers(t, "test")
	want := golden.Load(t, "mnv2/embed_test.npy")
	var needed uint64
	expect(t, ct.Embed(layers, shapes, 2, 3, 1024, 1024, nil, 0, &needed), ct.BufferTooSmall, "patchcore_embed", "1605632 are needed")
	if needed != 2*28*28*1024 {
		t.Fatalf("needed = %d", needed)
	}
	out := make([]float32, needed)
	expect(t, ct.Embed(layers, shapes, 2, 3, 1024, 1024, out, needed, nil), ct.OK, "patchcore_embed")
	if diff, scale := maxAbsDiff(out, want.F32); diff > 1e-5*scale {
		t.Fatalf("embeddings differ from golden by %g (scale %g)", diff, scale)
	}

	expect(t, ct.Embed(nil, shapes, 2, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "layers or shapes is NULL")
	expect(t, ct.Embed(layers, nil, 2, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "layers or shapes is NULL")
	expect(t, ct.Embed([][]float32{layers[0], nil}, shapes, 2, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "layers[1] is NULL")
	expect(t, ct.Embed(layers, shapes, 0, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "n_layers = 0")
	expect(t, ct.Embed(layers, shapes, 17, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "n_layers = 17")
	expect(t, ct.Embed(layers, shapes, 2, 4, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "patchsize = 4")
	expect(t, ct.Embed(layers, shapes, 2, 3, 0, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "pretrain_embed_dim = 0")
	expect(t, ct.Embed(layers, shapes, 2, 3, 1024, 70000, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "target_embed_dim = 70000")
	bad := append([]int64(nil), shapes...)
	bad[4] = 1 // layer 1 claims batch 1
	expect(t, ct.Embed(layers, bad, 2, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "batch")
	bad[4], bad[5] = -2, 1
	expect(t, ct.Embed(layers, bad, 2, 3, 1024, 1024, out, needed, nil), ct.InvalidArgument, "patchcore_embed", "layer 1 shape")
	bad[4], bad[5] = 1<<21, 1<<21
	expect(t, ct.Embed(layers, bad, 2, 3, 1024, 1024, out, needed, nil), ct.OutOfMemory, "patchcore_embed", "layer 1")
}

func TestAdaptiveAvgPool1D(t *testing.T) {
	defer lockThread()()
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct{ rows, in, out int }{{3, 10, 4}, {2, 4608, 1024}, {1, 5, 5}, {4, 3, 7}} {
		x := randMatrix(rng, c.rows, c.in)
		got := make([]float32, c.rows*c.out)
		expect(t, ct.AdaptiveAvgPool1D(x, int64(c.rows), int64(c.in), int64(c.out), got), ct.OK, "patchcore_adaptive_avg_pool1d")
		for r := range c.rows {
			for i := range c.out {
				lo, hi := i*c.in/c.out, ((i+1)*c.in+c.out-1)/c.out // floor, ceil
				var s float64
				for _, v := range x[r*c.in+lo : r*c.in+hi] {
					s += float64(v)
				}
				want := s / float64(hi-lo)
				if math.Abs(float64(got[r*c.out+i])-want) > 1e-6 {
					t.Fatalf("%v: out[%d][%d] = %g, want %g", c, r, i, got[r*c.out+i], want)
				}
			}
		}
	}
	x := []float32{1, 2, 3, 4}
	out := make([]float32, 4)
	expect(t, ct.AdaptiveAvgPool1D(nil, 1, 4, 2, out), ct.InvalidArgument, "patchcore_adaptive_avg_pool1d", "in is NULL")
	expect(t, ct.AdaptiveAvgPool1D(x, 1, 4, 2, nil), ct.InvalidArgument, "patchcore_adaptive_avg_pool1d", "out is NULL")
	expect(t, ct.AdaptiveAvgPool1D(x, 0, 4, 2, out), ct.InvalidArgument, "patchcore_adaptive_avg_pool1d", "non-positive")
	expect(t, ct.AdaptiveAvgPool1D(x, 1, 4, 0, out), ct.InvalidArgument, "patchcore_adaptive_avg_pool1d", "non-positive")
	expect(t, ct.AdaptiveAvgPool1D(x, 1<<40, 1<<40, 2, out), ct.OutOfMemory, "patchcore_adaptive_avg_pool1d", "2^40")
}

const mnv2ONNX = "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"

var mnv2Layers = []*string{ct.S("block_6_expand_relu"), ct.S("block_10_expand_relu")}

func TestAggregatorGolden(t *testing.T) {
	defer lockThread()()
	onnx := golden.Path(t, mnv2ONNX)
	input := golden.Load(t, "mnv2/input_onnx_pm1.npy").F32[2*3*224*224:] // train 0, 1, then test 0, 1
	var a ct.Handle
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, mnv2Layers, 2, nil, &a), ct.OK, "patchcore_aggregator_create")
	defer ct.AggregatorFree(a)

	var needed uint64
	shapes := make([]int64, 6)
	expect(t, ct.AggregatorFeatureShapes(a, 3, 224, 224, shapes, 5, &needed), ct.BufferTooSmall, "patchcore_aggregator_feature_shapes", "6 are needed")
	expect(t, ct.AggregatorFeatureShapes(a, 3, 224, 224, shapes, 6, &needed), ct.OK, "patchcore_aggregator_feature_shapes")
	if fmt.Sprint(shapes) != "[192 28 28 384 14 14]" || needed != 6 {
		t.Fatalf("feature shapes %v (needed %d)", shapes, needed)
	}
	expect(t, ct.AggregatorFeatureShapes(a, 3, 0, 224, shapes, 6, nil), ct.InvalidArgument, "patchcore_aggregator_feature_shapes", "non-positive")

	for layer, name := range []string{"block6", "block10"} {
		want := golden.Load(t, "mnv2/"+name+"_test.npy")
		expect(t, ct.AggregatorForward(a, input, 2, 3, 224, 224, int32(layer), nil, 0, &needed), ct.BufferTooSmall, "patchcore_aggregator_forward")
		if needed != uint64(len(want.F32)) {
			t.Fatalf("layer %d: needed %d, want %d", layer, needed, len(want.F32))
		}
		out := make([]float32, needed)
		expect(t, ct.AggregatorForward(a, input, 2, 3, 224, 224, int32(layer), out, needed, nil), ct.OK, "patchcore_aggregator_forward")
		if diff, scale := maxAbsDiff(out, want.F32); diff > 1e-4*scale {
			t.Fatalf("layer %s differs from golden by %g (scale %g)", name, diff, scale)
		}
	}
	// forward_all: one backbone run fills every layer; size query first.
	needs := make([]uint64, 2)
	expect(t, ct.AggregatorForwardAll(a, input, 2, 3, 224, 224, [][]float32{nil, nil}, []uint64{0, 0}, 2, needs), ct.BufferTooSmall, "patchcore_aggregator_forward_all", "outs[0]")
	all := [][]float32{make([]float32, needs[0]), make([]float32, needs[1])}
	expect(t, ct.AggregatorForwardAll(a, input, 2, 3, 224, 224, all, needs, 2, nil), ct.OK, "patchcore_aggregator_forward_all")
	for layer, name := range []string{"block6", "block10"} {
		if diff, scale := maxAbsDiff(all[layer], golden.Load(t, "mnv2/"+name+"_test.npy").F32); diff > 1e-4*scale {
			t.Fatalf("forward_all layer %s differs from golden by %g", name, diff)
		}
	}
	expect(t, ct.AggregatorForwardAll(a, input, 2, 3, 224, 224, all, []uint64{needs[0], 5}, 2, nil), ct.BufferTooSmall, "patchcore_aggregator_forward_all", "outs[1] holds 5")
	expect(t, ct.AggregatorForwardAll(a, input, 2, 3, 224, 224, all, needs, 3, nil), ct.InvalidArgument, "patchcore_aggregator_forward_all", "n_outs = 3")
	expect(t, ct.AggregatorForwardAll(a, input, 2, 3, 224, 224, nil, needs, 2, nil), ct.InvalidArgument, "patchcore_aggregator_forward_all", "NULL")
	out := make([]float32, 10)
	expect(t, ct.AggregatorForward(a, input, 2, 3, 224, 224, 2, out, 10, nil), ct.InvalidArgument, "patchcore_aggregator_forward", "layer_index = 2")
	expect(t, ct.AggregatorForward(a, nil, 2, 3, 224, 224, 0, out, 10, nil), ct.InvalidArgument, "patchcore_aggregator_forward", "images is NULL")
	expect(t, ct.AggregatorForward(a, input, 2, 3, 224, -224, 0, out, 10, nil), ct.InvalidArgument, "patchcore_aggregator_forward", "non-positive")
	expect(t, ct.AggregatorForward(a, input, 1, 3, 1<<21, 224, 0, out, 10, nil), ct.InvalidArgument, "patchcore_aggregator_forward", "2^20")
}

func TestAggregatorFromBytesAndErrors(t *testing.T) {
	defer lockThread()()
	onnx := golden.Path(t, mnv2ONNX)
	b, err := os.ReadFile(onnx)
	if err != nil {
		t.Fatal(err)
	}
	var a ct.Handle
	expect(t, ct.AggregatorCreate(nil, b, uint64(len(b)), mnv2Layers[:1], 1, ct.S("cpu"), &a), ct.OK, "patchcore_aggregator_create")
	shapes := make([]int64, 3)
	expect(t, ct.AggregatorFeatureShapes(a, 3, 224, 224, shapes, 3, nil), ct.OK, "patchcore_aggregator_feature_shapes")
	if fmt.Sprint(shapes) != "[192 28 28]" {
		t.Fatalf("feature shapes %v", shapes)
	}
	expect(t, ct.AggregatorFree(a), ct.OK, "patchcore_aggregator_free")
	expect(t, ct.AggregatorFree(a), ct.InvalidHandle, "patchcore_aggregator_free", "already freed")

	a = 99
	expect(t, ct.AggregatorCreate(ct.S(onnx), b, uint64(len(b)), mnv2Layers, 2, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "exactly one of onnx_path and onnx_bytes")
	if a != 0 {
		t.Fatal("failed create left a handle")
	}
	expect(t, ct.AggregatorCreate(nil, nil, 0, mnv2Layers, 2, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "exactly one")
	expect(t, ct.AggregatorCreate(nil, b, 0, mnv2Layers, 2, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "n_bytes = 0")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, mnv2Layers, 2, nil, nil), ct.InvalidArgument, "patchcore_aggregator_create", "out_aggregator is NULL")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, nil, 2, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "layers is NULL")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, mnv2Layers, 0, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "layers count 0")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, []*string{mnv2Layers[0], nil}, 2, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "layers[1] is NULL")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, []*string{ct.S("")}, 1, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "layers[0] is empty")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, []*string{ct.S("no_such_layer")}, 1, nil, &a), ct.InvalidArgument, "patchcore_aggregator_create", "no_such_layer")
	expect(t, ct.AggregatorCreate(ct.S(onnx), nil, 0, mnv2Layers, 2, ct.S("tpu"), &a), ct.InvalidArgument, "patchcore_aggregator_create", "tpu")
	missing := filepath.Join(t.TempDir(), "missing.onnx")
	expect(t, ct.AggregatorCreate(ct.S(missing), nil, 0, mnv2Layers, 2, nil, &a), ct.IO, "patchcore_aggregator_create", "missing.onnx")
	garbage := []byte("this is not an ONNX model at all")
	expect(t, ct.AggregatorCreate(nil, garbage, uint64(len(garbage)), mnv2Layers, 2, nil, &a), ct.Format, "patchcore_aggregator_create")
	expect(t, ct.AggregatorFeatureShapes(0, 3, 224, 224, shapes, 3, nil), ct.InvalidHandle, "patchcore_aggregator_feature_shapes", "aggregator handle is NULL")

	// ONNX Runtime is loaded now: another library path is refused, the same one accepted.
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	expect(t, ct.SetONNXRuntimePath(ct.S(other)), ct.InvalidState, "patchcore_set_onnxruntime_path", "cannot switch to "+other)
	if p := os.Getenv("PATCHCORE_ORT_LIBRARY"); p != "" {
		expect(t, ct.SetONNXRuntimePath(ct.S(p)), ct.OK, "patchcore_set_onnxruntime_path")
	}
}
