package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/libpatchcore/libpatchcore/capi/cgotest"
	"github.com/libpatchcore/libpatchcore/internal/ort"
)

// The tests of this file back docs/reliability.md: the C API under concurrency, hostile
// sizes and values, broken files, failing file systems and adversarial ONNX graphs. They
// use tiny features-only models (two layers, 16-dimensional embeddings) so that they run
// in seconds; $PATCHCORE_STRESS_CALLS scales the concurrency tests up.

// needORT skips the test when no ONNX Runtime can be loaded.
func needORT(t testing.TB) {
	t.Helper()
	if _, err := ort.Init(); err != nil {
		t.Skipf("ONNX Runtime not available: %v", err)
	}
}

// stressCalls is the number of predictions TestStressSixteenThreads makes in total:
// $PATCHCORE_STRESS_CALLS, default 10,000 (2,000 under the race detector, which makes
// every call ~10x slower).
func stressCalls() int {
	if n, err := strconv.Atoi(os.Getenv("PATCHCORE_STRESS_CALLS")); err == nil && n > 0 {
		return n
	}
	if raceEnabled {
		return 2000
	}
	return 10000
}

// features are the two feature layers of a tiny model for n images, from a seed:
// [n,8,4,4] and [n,8,2,2].
type features struct {
	layers [][]float32
	shapes []int64
}

func tinyFeatures(seed uint64, n int) features {
	x := seed*2654435761 + 1
	next := func() float32 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return float32(x>>40) / (1 << 24)
	}
	f := features{layers: [][]float32{make([]float32, n*8*16), make([]float32, n*8*4)}, shapes: []int64{int64(n), 8, 4, 4, int64(n), 8, 2, 2}}
	for _, l := range f.layers {
		for i := range l {
			l[i] = next()
		}
	}
	return f
}

// tinyConfig creates the config of the tiny features-only models: layers "a" and "b",
// 16x16 maps, 16-dimensional embeddings, identity sampler, one thread each.
func tinyConfig(t testing.TB) ct.Handle {
	t.Helper()
	var c ct.Handle
	if st := ct.ConfigCreate(&c); st != ct.OK {
		t.Fatalf("config_create: %s", ct.StatusString(st))
	}
	set := func(st int32) {
		t.Helper()
		if st != ct.OK {
			t.Fatalf("config: %s: %s", ct.StatusString(st), ct.LastError())
		}
	}
	set(ct.ConfigSetLayers(c, []*string{ct.S("a"), ct.S("b")}, 2))
	for _, kv := range [][2]int64{{ct.ParamResize, 16}, {ct.ParamImageSize, 16}, {ct.ParamPretrainEmbedDim, 16}, {ct.ParamTargetEmbedDim, 16}, {ct.ParamNumThreads, 1}} {
		set(ct.ConfigSetInt(c, int32(kv[0]), kv[1]))
	}
	set(ct.ConfigSetString(c, ct.ParamSampler, ct.S("identity")))
	return c
}

// tinyModel creates a model fitted on two images of tinyFeatures(seed).
func tinyModel(t testing.TB, seed uint64) ct.Handle {
	t.Helper()
	c := tinyConfig(t)
	defer ct.ConfigFree(c)
	var m ct.Handle
	train := tinyFeatures(seed, 2)
	for _, st := range []int32{ct.ModelCreate(c, &m), ct.ModelAddFeatures(m, train.layers, train.shapes, 2), ct.ModelFit(m)} {
		if st != ct.OK {
			t.Fatalf("tiny model: %s: %s", ct.StatusString(st), ct.LastError())
		}
	}
	return m
}

// prediction is what one predict_features call returns.
type prediction struct {
	status       int32
	scores, maps []float32
}

// predict scores f on model m (scores and maps).
func predict(m ct.Handle, f features) prediction {
	n := int(f.shapes[0])
	p := prediction{scores: make([]float32, n), maps: make([]float32, n*16*16)}
	p.status = ct.ModelPredictFeatures(m, f.layers, f.shapes, 2, ct.Outputs{Scores: p.scores, Maps: p.maps, Capacity: uint64(len(p.maps))})
	return p
}

func (p prediction) equal(q prediction) bool {
	return p.status == q.status && slicesEqual(p.scores, q.scores) && slicesEqual(p.maps, q.maps)
}

// slicesEqual compares bit patterns (so NaN == NaN would count as equal; there is none).
func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestStressSixteenThreads: 16 OS threads share one model for stressCalls() predictions
// in total; every result is bit-identical to the single-threaded one.
func TestStressSixteenThreads(t *testing.T) {
	defer lockThread()()
	m := tinyModel(t, 1)
	defer ct.ModelFree(m)
	test := tinyFeatures(99, 2)
	want := predict(m, test)
	if want.status != ct.OK {
		t.Fatalf("predict: %s", ct.LastError())
	}
	const threads = 16
	total := stressCalls()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, threads)
	start := time.Now()
	for g := range threads {
		wg.Go(func() {
			defer lockThread()()
			for next.Add(1) <= int64(total) {
				if got := predict(m, test); !got.equal(want) {
					errs <- fmt.Sprintf("thread %d: status %s (%s), scores %v, want %v", g, ct.StatusString(got.status), ct.LastError(), got.scores, want.scores)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	t.Logf("%d threads x %d predictions in total: identical to the single-threaded result (%v)", threads, total, time.Since(start).Round(time.Millisecond))
}

// TestLifecycleRacesPredict: while 8 threads predict on a model, another refits it (with
// the same data), calibrates it, and finally frees it; a third swaps in fresh copies
// loaded from a buffer and frees the old ones. Each prediction is OK with the one correct
// result, or INVALID_STATE / INVALID_HANDLE; never another status, never a crash.
func TestLifecycleRacesPredict(t *testing.T) {
	defer lockThread()()
	m := tinyModel(t, 2)
	train, test := tinyFeatures(2, 2), tinyFeatures(7, 1)
	want := predict(m, test)
	var need uint64
	ct.ModelSaveToBuffer(m, nil, 0, &need)
	buf := make([]byte, need)
	if st := ct.ModelSaveToBuffer(m, buf, need, nil); st != ct.OK {
		t.Fatal(ct.LastError())
	}
	var loaded atomic.Uint64 // the current buffer-loaded copy
	var first ct.Handle
	if st := ct.ModelLoadFromBuffer(buf, need, nil, &first); st != ct.OK {
		t.Fatal(ct.LastError())
	}
	loaded.Store(uint64(first))

	var stop atomic.Bool
	var wg sync.WaitGroup
	counts := make([]map[int32]int, 8)
	errs := make(chan string, 16)
	for g := range counts {
		counts[g] = map[int32]int{}
		wg.Go(func() {
			defer lockThread()()
			for i := 0; !stop.Load(); i++ {
				h := m
				if i%2 == 1 {
					h = ct.Handle(loaded.Load())
				}
				got := predict(h, test)
				counts[g][got.status]++
				switch got.status {
				case ct.OK:
					if !got.equal(want) {
						errs <- fmt.Sprintf("thread %d: OK with scores %v, want %v", g, got.scores, want.scores)
						return
					}
				case ct.InvalidState, ct.InvalidHandle:
				default:
					errs <- fmt.Sprintf("thread %d: %s: %s", g, ct.StatusString(got.status), ct.LastError())
					return
				}
			}
		})
	}
	wg.Go(func() { // load a fresh copy, publish it, free the old one
		defer lockThread()()
		for !stop.Load() {
			var h ct.Handle
			if st := ct.ModelLoadFromBuffer(buf, need, nil, &h); st != ct.OK {
				errs <- "load_from_buffer: " + ct.LastError()
				return
			}
			old := loaded.Swap(uint64(h))
			if st := ct.ModelFree(ct.Handle(old)); st != ct.OK {
				errs <- "free of a loaded copy: " + ct.LastError()
				return
			}
		}
	})
	for range 20 { // mutate the shared model
		if st := ct.ModelAddFeatures(m, train.layers, train.shapes, 2); st != ct.OK {
			t.Fatal(ct.LastError())
		}
		if st := ct.ModelFit(m); st != ct.OK {
			t.Fatal(ct.LastError())
		}
		if st := ct.ModelCalibrateScores(m, []float32{1, 2, 3}, nil, 3, ct.CalibrateQuantile, 0.5, nil); st != ct.OK {
			t.Fatal(ct.LastError())
		}
		time.Sleep(time.Millisecond)
	}
	if st := ct.ModelFree(m); st != ct.OK {
		t.Fatal(ct.LastError())
	}
	time.Sleep(20 * time.Millisecond) // predictions on the freed handle
	stop.Store(true)
	wg.Wait()
	ct.ModelFree(ct.Handle(loaded.Load()))
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	total := map[int32]int{}
	for _, c := range counts {
		for st, n := range c {
			total[st] += n
		}
	}
	if total[ct.OK] == 0 || total[ct.InvalidHandle] == 0 {
		t.Fatalf("statuses %v: the race was not exercised", total)
	}
	t.Logf("predictions racing fit/calibrate/load/free: %d OK, %d INVALID_HANDLE, %d INVALID_STATE", total[ct.OK], total[ct.InvalidHandle], total[ct.InvalidState])
}

// TestManyModelsAlive: 50 models, each fitted on its own data, alive at once and used
// from 8 threads in different orders: every result equals that model's own.
func TestManyModelsAlive(t *testing.T) {
	defer lockThread()()
	const models, threads, rounds = 50, 8, 4
	hs := make([]ct.Handle, models)
	want := make([]prediction, models)
	test := tinyFeatures(1234, 1)
	for i := range hs {
		hs[i] = tinyModel(t, uint64(100+i))
		want[i] = predict(hs[i], test)
	}
	for i := 1; i < models; i++ {
		if slicesEqual(want[i].scores, want[0].scores) {
			t.Fatalf("models 0 and %d give the same score: the test cannot tell them apart", i)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, threads)
	for g := range threads {
		wg.Go(func() {
			defer lockThread()()
			for r := range rounds {
				for j := range models {
					i := (j*(2*g+1) + r) % models
					if got := predict(hs[i], test); !got.equal(want[i]) {
						errs <- fmt.Sprintf("thread %d: model %d gave %v, want %v", g, i, got.scores, want[i].scores)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for _, h := range hs {
		if st := ct.ModelFree(h); st != ct.OK {
			t.Fatal(ct.LastError())
		}
	}
}

// TestHostileSizesThroughC: dimensions that are zero, negative or whose product
// overflows int64 or exceeds 2^40 elements are refused before the library touches the
// (one-element) buffers; so are images over the documented limits, whatever their
// buffer. Every buffer ends at a guard page, so an access would crash the test.
func TestHostileSizesThroughC(t *testing.T) {
	defer lockThread()()
	var a arena
	defer a.free()
	one := func() []float32 { return a.floats(t, 1, 0) }
	m := tinyModel(t, 3)
	defer ct.ModelFree(m)
	var s, seg ct.Handle
	expect(t, ct.ScorerCreate(1, ct.NNExact, 0, 1, &s), ct.OK, "patchcore_scorer_create")
	defer ct.ScorerFree(s)
	expect(t, ct.ScorerFit(s, tinyFeatures(1, 1).layers[0], 16, 8), ct.OK, "patchcore_scorer_fit")
	expect(t, ct.SegmentorCreate(8, 8, 4, &seg), ct.OK, "patchcore_segmentor_create")
	defer ct.SegmentorFree(seg)
	var agg ct.Handle // an aggregator when ONNX Runtime is available
	if _, err := ort.Init(); err == nil {
		expect(t, ct.AggregatorCreate(nil, tinyONNX[0], uint64(len(tinyONNX[0])), []*string{ct.S("R")}, 1, nil, &agg), ct.OK, "patchcore_aggregator_create")
		defer ct.AggregatorFree(agg)
	}

	type shape4 = [4]int64
	overflowing := []struct {
		dims   shape4
		status int32
		frag   string
	}{
		{shape4{1 << 62, 4, 1, 1}, ct.OutOfMemory, "exceeds the limit of 2^40"},
		{shape4{1 << 32, 1 << 32, 1, 1}, ct.OutOfMemory, "exceeds the limit of 2^40"}, // 2^64 wraps to 0 in int64
		{shape4{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}, ct.OutOfMemory, "exceeds"},
		{shape4{1 << 20, 1 << 20, 2, 1}, ct.OutOfMemory, "exceeds"}, // 2^41
		{shape4{-1, 8, 4, 4}, ct.InvalidArgument, "non-positive"},
		{shape4{math.MinInt64, -1, 4, 4}, ct.InvalidArgument, "non-positive"}, // product +2^63 if multiplied
		{shape4{0, 8, 4, 4}, ct.InvalidArgument, "non-positive"},
		{shape4{1, 8, 0, 4}, ct.InvalidArgument, "non-positive"},
	}
	for _, c := range overflowing {
		d := c.dims
		shapes := a.int64s(t, []int64{d[0], d[1], d[2], d[3], 1, 8, 2, 2})
		expect(t, ct.ModelPredictFeatures(m, [][]float32{one(), one()}, shapes, 2, ct.Outputs{Scores: one()}), c.status, "patchcore_model_predict_features", c.frag)
		expect(t, ct.ModelAddFeatures(m, [][]float32{one(), one()}, shapes, 2), c.status, "patchcore_model_add_features", c.frag)
		expect(t, ct.Embed([][]float32{one()}, shapes[:4], 1, 3, 8, 8, one(), 1, nil), c.status, "patchcore_embed", c.frag)
		if agg != 0 {
			expect(t, ct.AggregatorForward(agg, one(), d[0], d[1], d[2], d[3], 0, one(), 1, nil), c.status, "patchcore_aggregator_forward", c.frag)
		}
		if d[0]*d[1] != 0 || d[0] < 0 {
			expect(t, ct.ScorerFit(s, one(), d[0], d[1]*d[2]), c.status, "patchcore_scorer_fit", c.frag)
			expect(t, ct.ScorerPredict(s, one(), d[0], d[1]*d[2], one(), nil, nil), c.status, "patchcore_scorer_predict", c.frag)
			expect(t, ct.SegmentorConvert(seg, one(), d[0], d[1], d[2]*d[3], one(), 1, nil), c.status, "patchcore_segmentor_convert", c.frag)
		}
		expect(t, ct.AdaptiveAvgPool1D(one(), d[0], d[1]*d[2], 4, one()), c.status, "patchcore_adaptive_avg_pool1d", c.frag)
	}
	// The scorer's distances: n * k beyond 2^40.
	var big ct.Handle
	expect(t, ct.ScorerCreate(65536, ct.NNExact, 0, 1, &big), ct.OK, "patchcore_scorer_create")
	defer ct.ScorerFree(big)
	expect(t, ct.ScorerPredict(big, one(), 1<<25, 1, one(), nil, nil), ct.OutOfMemory, "patchcore_scorer_predict", "distances")

	// Counts: 0 and beyond 2^40.
	for _, count := range []uint64{0, 1<<40 + 1, math.MaxUint64} {
		expect(t, ct.ModelSegment(m, one(), count, 0, a.bytes(t, 1)), ct.InvalidArgument, "patchcore_model_segment", "count")
		expect(t, ct.ModelCalibrateScores(m, one(), nil, count, ct.CalibrateQuantile, 0.5, nil), ct.InvalidArgument, "patchcore_model_calibrate_scores", "count")
		expect(t, ct.ModelNormalizeScores(m, one(), count, one()), ct.InvalidArgument, "patchcore_model_normalize_scores", "count")
	}

	// Images over the limits, with a one-byte buffer: refused on their geometry alone.
	px := a.bytes(t, 1)
	for _, c := range []struct {
		im   ct.Image
		frag string
	}{
		{ct.Image{N: 1, Width: 20000, Height: 20000, Stride: 60000, Channels: 3}, "exceeds the limit of 2^28 pixels"},
		{ct.Image{N: 1, Width: 32769, Height: 1, Stride: 32769, Channels: 1}, "out of range [1, 32768]"},
		{ct.Image{N: 1, Width: 0, Height: 0, Stride: 0, Channels: 3}, "out of range"},
		{ct.Image{N: 1, Width: -5, Height: 4, Stride: 12, Channels: 3}, "out of range"},
		{ct.Image{N: math.MaxInt32, Width: 16384, Height: 16384, Stride: 16384, Channels: 1}, "exceed the limit of 2^40 bytes"},
		{ct.Image{N: 0, Width: 4, Height: 4, Stride: 12, Channels: 3}, "n_images = 0"},
		{ct.Image{N: 1, Width: 4, Height: 4, Stride: 11, Channels: 3}, "stride = 11"},
		{ct.Image{N: 1, Width: 4, Height: 4, Stride: 12, Channels: 2}, "channels = 2"},
	} {
		c.im.Pix = px
		st := ct.ModelPredict(m, c.im, ct.Outputs{Scores: one()})
		want := int32(ct.InvalidArgument)
		if strings.Contains(c.frag, "2^40") {
			want = ct.OutOfMemory
		}
		expect(t, st, want, "patchcore_model_predict", c.frag)
		expect(t, ct.ModelAddImages(m, c.im), want, "patchcore_model_add_images", c.frag)
	}
}

// TestNonFiniteValuesThroughC: NaN and ±Inf in feature maps, backbone input tensors,
// scorer features and queries, scores and patch scores are refused with INVALID_ARGUMENT
// naming the position; the objects keep working.
func TestNonFiniteValuesThroughC(t *testing.T) {
	defer lockThread()()
	m := tinyModel(t, 4)
	defer ct.ModelFree(m)
	good := tinyFeatures(5, 1)
	want := predict(m, good)
	var s, seg, agg ct.Handle
	expect(t, ct.ScorerCreate(1, ct.NNExact, 0, 1, &s), ct.OK, "patchcore_scorer_create")
	defer ct.ScorerFree(s)
	expect(t, ct.ScorerFit(s, []float32{0, 1, 2, 3}, 2, 2), ct.OK, "patchcore_scorer_fit")
	expect(t, ct.SegmentorCreate(8, 8, 4, &seg), ct.OK, "patchcore_segmentor_create")
	defer ct.SegmentorFree(seg)
	needORT(t)
	onnx := tinyONNX[0]
	expect(t, ct.AggregatorCreate(nil, onnx, uint64(len(onnx)), []*string{ct.S("R")}, 1, nil, &agg), ct.OK, "patchcore_aggregator_create")
	defer ct.AggregatorFree(agg)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		word := fmt.Sprint(bad)
		f := tinyFeatures(5, 1)
		f.layers[1][17] = bad
		expect(t, predict(m, f).status, ct.InvalidArgument, "patchcore_model_predict_features")
		expect(t, ct.ModelPredictFeatures(m, f.layers, f.shapes, 2, ct.Outputs{Scores: make([]float32, 1)}), ct.InvalidArgument, "patchcore_model_predict_features", "feature layer b", word, "index 17")
		expect(t, ct.ModelAddFeatures(m, f.layers, f.shapes, 2), ct.InvalidArgument, "patchcore_model_add_features", word)
		expect(t, ct.ScorerFit(s, []float32{0, 1, bad, 3}, 2, 2), ct.InvalidArgument, "patchcore_scorer_fit", word)
		expect(t, ct.ScorerPredict(s, []float32{bad, 1}, 1, 2, make([]float32, 1), nil, nil), ct.InvalidArgument, "patchcore_scorer_predict", word)
		expect(t, ct.SegmentorConvert(seg, []float32{0, 1, 2, bad}, 1, 2, 2, make([]float32, 64), 64, nil), ct.InvalidArgument, "patchcore_segmentor_convert", word)
		expect(t, ct.ModelCalibrateScores(m, []float32{1, bad}, nil, 2, ct.CalibrateQuantile, 0.5, nil), ct.InvalidArgument, "patchcore_model_calibrate_scores")
		img := make([]float32, 3*4*4)
		img[40] = bad
		expect(t, ct.AggregatorForward(agg, img, 1, 3, 4, 4, 0, make([]float32, 48), 48, nil), ct.InvalidArgument, "patchcore_aggregator_forward", word, "index 40")
	}
	if got := predict(m, good); !got.equal(want) {
		t.Fatalf("after the refused calls the model predicts %v, before %v", got.scores, want.scores)
	}
}

// TestOnePixelImageThroughC: a 1x1 image is valid input; it is resized up to the crop
// size like any other, so a model with a backbone scores it.
func TestOnePixelImageThroughC(t *testing.T) {
	defer lockThread()()
	needORT(t)
	c := tinyConfig(t)
	defer ct.ConfigFree(c)
	expect(t, ct.ConfigSetLayers(c, []*string{ct.S("R")}, 1), ct.OK, "patchcore_config_set_layers")
	expect(t, ct.ConfigSetInt(c, ct.ParamPretrainEmbedDim, 3), ct.OK, "patchcore_config_set_int")
	expect(t, ct.ConfigSetInt(c, ct.ParamTargetEmbedDim, 3), ct.OK, "patchcore_config_set_int")
	expect(t, ct.ConfigSetBackboneBytes(c, tinyONNX[0], uint64(len(tinyONNX[0]))), ct.OK, "patchcore_config_set_backbone_bytes")
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	defer ct.ModelFree(m)
	pixel := func(rgb ...byte) ct.Image {
		return ct.Image{Pix: rgb, N: 1, Width: 1, Height: 1, Stride: int32(len(rgb)), Channels: int32(len(rgb))}
	}
	expect(t, ct.ModelAddImages(m, pixel(10, 200, 30)), ct.OK, "patchcore_model_add_images")
	expect(t, ct.ModelFit(m), ct.OK, "patchcore_model_fit")
	scores, maps := make([]float32, 1), make([]float32, 256)
	expect(t, ct.ModelPredict(m, pixel(10, 200, 30), ct.Outputs{Scores: scores, Maps: maps, Capacity: 256}), ct.OK, "patchcore_model_predict")
	same := scores[0]
	expect(t, ct.ModelPredict(m, pixel(250, 0, 250), ct.Outputs{Scores: scores}), ct.OK, "patchcore_model_predict")
	if !(scores[0] > 0) || same > 1e-4*scores[0] {
		t.Fatalf("1x1 images: training pixel scores %v, another %v", same, scores[0])
	}
	expect(t, ct.ModelPredict(m, pixel(7), ct.Outputs{Scores: scores}), ct.OK, "patchcore_model_predict") // 1 channel
}

// TestAdversarialGraphsThroughC: ONNX backbones with a missing layer, a layer of rank 2
// (declared, or only known when run), symbolic H/W, truncated or garbage bytes.
func TestAdversarialGraphsThroughC(t *testing.T) {
	defer lockThread()()
	needORT(t)
	create := func(onnx []byte, layer string) (ct.Handle, int32) {
		var h ct.Handle
		st := ct.AggregatorCreate(nil, onnx, uint64(len(onnx)), []*string{ct.S(layer)}, 1, nil, &h)
		return h, st
	}
	_, st := create(tinyONNX[0], "layer3")
	expect(t, st, ct.InvalidArgument, "patchcore_aggregator_create", `no tensor named ["layer3"]`, "available layers: R, F")
	_, st = create(tinyONNX[2], "F") // F declared [batch, n]
	expect(t, st, ct.InvalidArgument, "patchcore_aggregator_create", "F: float32[batch,n]", "not a 4-D feature map")
	_, st = create(tinyONNX[3], "R")
	expect(t, st, ct.Format, "patchcore_aggregator_create")
	_, st = create(tinyONNX[4], "R")
	expect(t, st, ct.Format, "patchcore_aggregator_create")

	// F undeclared: its rank is only known when the graph runs.
	f, st := create(tinyONNX[0], "F")
	expect(t, st, ct.OK, "patchcore_aggregator_create")
	expect(t, ct.AggregatorForward(f, make([]float32, 2*27), 2, 3, 3, 3, 0, make([]float32, 100), 100, nil), ct.InvalidArgument, "patchcore_aggregator_forward", `layer "F" has shape [1 27]`)
	expect(t, ct.AggregatorFree(f), ct.OK, "patchcore_aggregator_free")

	// Symbolic H and W: any size runs, and R = Relu(X) exactly.
	r, st := create(tinyONNX[0], "R")
	expect(t, st, ct.OK, "patchcore_aggregator_create")
	defer ct.AggregatorFree(r)
	for _, hw := range [][2]int64{{1, 1}, {4, 4}, {7, 5}, {33, 2}} {
		n := 2 * 3 * hw[0] * hw[1]
		in, out := make([]float32, n), make([]float32, n)
		for i := range in {
			in[i] = float32(i%5) - 2
		}
		expect(t, ct.AggregatorForward(r, in, 2, 3, hw[0], hw[1], 0, out, uint64(n), nil), ct.OK, "patchcore_aggregator_forward")
		for i := range in {
			if out[i] != max(in[i], 0) {
				t.Fatalf("%dx%d: out[%d] = %v, want %v", hw[0], hw[1], i, out[i], max(in[i], 0))
			}
		}
	}
	// A fixed 4x4 input refuses other sizes.
	fixed, st := create(tinyONNX[1], "R")
	expect(t, st, ct.OK, "patchcore_aggregator_create")
	expect(t, ct.AggregatorForward(fixed, make([]float32, 75), 1, 3, 5, 5, 0, make([]float32, 75), 75, nil), ct.InvalidArgument, "patchcore_aggregator_forward", "fixed")
	expect(t, ct.AggregatorFree(fixed), ct.OK, "patchcore_aggregator_free")
}

// TestBackboneMismatchThroughC: a model saved with one backbone refuses to load with a
// backbone whose bytes differ (sha256 recorded at fit time), by path or next to the file.
func TestBackboneMismatchThroughC(t *testing.T) {
	defer lockThread()()
	needORT(t)
	dir := t.TempDir()
	bb, other := filepath.Join(dir, "bb.onnx"), filepath.Join(dir, "other.onnx")
	os.WriteFile(bb, tinyONNX[0], 0o644)
	os.WriteFile(other, append([]byte(nil), tinyONNX[1]...), 0o644)
	c := tinyConfig(t)
	defer ct.ConfigFree(c)
	expect(t, ct.ConfigSetLayers(c, []*string{ct.S("R")}, 1), ct.OK, "patchcore_config_set_layers")
	expect(t, ct.ConfigSetString(c, ct.ParamBackbonePath, ct.S(bb)), ct.OK, "patchcore_config_set_string")
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	im := ct.Image{Pix: make([]byte, 8*8*3), N: 1, Width: 8, Height: 8, Stride: 24, Channels: 3}
	expect(t, ct.ModelAddImages(m, im), ct.OK, "patchcore_model_add_images")
	expect(t, ct.ModelFit(m), ct.OK, "patchcore_model_fit")
	path := filepath.Join(dir, "m.pcm")
	expect(t, ct.ModelSave(m, ct.S(path)), ct.OK, "patchcore_model_save")
	var need uint64
	ct.ModelSaveToBuffer(m, nil, 0, &need)
	buf := make([]byte, need)
	expect(t, ct.ModelSaveToBuffer(m, buf, need, nil), ct.OK, "patchcore_model_save_to_buffer")
	expect(t, ct.ModelFree(m), ct.OK, "patchcore_model_free")

	var h ct.Handle = 1
	expect(t, ct.ModelLoad(ct.S(path), ct.S(other), &h), ct.InvalidArgument, "patchcore_model_load", "sha256")
	if h != 0 {
		t.Fatal("failed load left a handle")
	}
	expect(t, ct.ModelLoadFromBuffer(buf, need, ct.S(other), &h), ct.InvalidArgument, "patchcore_model_load_from_buffer", "sha256")
	os.WriteFile(bb, tinyONNX[1], 0o644) // the file next to the model changes
	expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.InvalidArgument, "patchcore_model_load", "sha256", "bb.onnx")
	os.Remove(bb)
	expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.IO, "patchcore_model_load", "bb.onnx")
	os.WriteFile(bb, tinyONNX[0], 0o644)
	expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.OK, "patchcore_model_load")
	expect(t, ct.ModelFree(h), ct.OK, "patchcore_model_free")
}

// tinyModelBytes is a tiny model serialised with patchcore_model_save_to_buffer.
func tinyModelBytes(t *testing.T) []byte {
	m := tinyModel(t, 6)
	defer ct.ModelFree(m)
	var need uint64
	ct.ModelSaveToBuffer(m, nil, 0, &need)
	buf := make([]byte, need)
	expect(t, ct.ModelSaveToBuffer(m, buf, need, nil), ct.OK, "patchcore_model_save_to_buffer")
	return buf
}

// TestCorruptModelThroughC: a model cut at every length, or with any single bit of any
// byte flipped, is refused by patchcore_model_load_from_buffer with FORMAT (an empty
// buffer with INVALID_ARGUMENT); patchcore_model_load refuses the same corruptions of a
// file (every byte of the header, the first section header and the trailer, and every
// 7th byte elsewhere) with FORMAT naming the path. No handle is ever returned.
func TestCorruptModelThroughC(t *testing.T) {
	defer lockThread()()
	good := tinyModelBytes(t)
	var h ct.Handle
	try := func(b []byte, what string) {
		t.Helper()
		h = 1
		st := ct.ModelLoadFromBuffer(b, uint64(len(b)), nil, &h)
		want := int32(ct.Format)
		if len(b) == 0 {
			want = ct.InvalidArgument
		}
		if st != want || h != 0 {
			t.Fatalf("%s: %s (%s), handle %#x", what, ct.StatusString(st), ct.LastError(), h)
		}
	}
	for n := range len(good) {
		try(good[:n], fmt.Sprintf("cut to %d of %d bytes", n, len(good)))
	}
	flipped := 0
	for i := range good {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			try(b, fmt.Sprintf("bit %d of byte %d flipped", bit, i))
			flipped++
		}
	}
	try(append(bytes.Clone(good), 0), "one byte appended")

	dir := t.TempDir()
	path := filepath.Join(dir, "m.pcm")
	files := 0
	for i := range good {
		if i >= 48 && i < len(good)-8 && i%7 != 0 {
			continue
		}
		b := bytes.Clone(good)
		b[i] ^= 0x5a
		os.WriteFile(path, b, 0o644)
		h = 1
		expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.Format, "patchcore_model_load", path)
		os.WriteFile(path, good[:i], 0o644)
		expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.Format, "patchcore_model_load", path)
		if h != 0 {
			t.Fatal("failed load left a handle")
		}
		files += 2
	}
	os.WriteFile(path, good, 0o644)
	expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.OK, "patchcore_model_load")
	expect(t, ct.ModelFree(h), ct.OK, "patchcore_model_free")
	t.Logf("%d-byte model: %d truncations and %d bit flips refused through load_from_buffer, %d corrupted files through load", len(good), len(good), flipped, files)
}

// mountTmpfs mounts a tmpfs of the given size on a new directory (root only: the test is
// skipped otherwise) and unmounts it at the end of the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestSaveFaultsThroughC: patchcore_model_save onto a full file system and onto a
// read-only one returns IO; the model file saved before is intact byte for byte and
// still loads; no temporary file is left behind. Saving into a missing directory is IO.
func TestSaveFaultsThroughC(t *testing.T) {
	defer lockThread()()
	m := tinyModel(t, 8)
	defer ct.ModelFree(m)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "m.pcm")
	expect(t, ct.ModelSave(m, ct.S(missing)), ct.IO, "patchcore_model_save", missing)

	dir := mountTmpfs(t, "256k")
	path := filepath.Join(dir, "m.pcm")
	expect(t, ct.ModelSave(m, ct.S(path)), ct.OK, "patchcore_model_save")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The next save would write a different file (calibrated).
	expect(t, ct.ModelCalibrateScores(m, []float32{1, 2, 3}, nil, 3, ct.CalibrateQuantile, 0.5, nil), ct.OK, "patchcore_model_calibrate_scores")
	// Fill the file system, leaving less room than one model file.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 512)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	expect(t, ct.ModelSave(m, ct.S(path)), ct.IO, "patchcore_model_save", path)
	check := func(what string) {
		t.Helper()
		after, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(after, before) {
			t.Fatalf("%s: the previous model file changed (%d bytes, was %d; %v)", what, len(after), len(before), err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Fatalf("%s: files left behind: %v", what, entries)
		}
		var h ct.Handle
		expect(t, ct.ModelLoad(ct.S(path), nil, &h), ct.OK, "patchcore_model_load")
		expect(t, ct.ModelFree(h), ct.OK, "patchcore_model_free")
	}
	check("disk full")
	os.Remove(filepath.Join(dir, "filler"))
	os.WriteFile(filepath.Join(dir, "filler"), nil, 0o644)
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	expect(t, ct.ModelSave(m, ct.S(path)), ct.IO, "patchcore_model_save", "read-only")
	check("read-only")
}

// TestHandleKindsAndStaleHandles: every object's functions refuse a handle of another kind,
// a freed handle and a made-up one with INVALID_HANDLE naming the problem.
func TestHandleKindsAndStaleHandles(t *testing.T) {
	defer lockThread()()
	m := tinyModel(t, 9)
	var s ct.Handle
	expect(t, ct.ScorerCreate(1, ct.NNExact, 0, 1, &s), ct.OK, "patchcore_scorer_create")
	f := tinyFeatures(1, 1)
	out := ct.Outputs{Scores: make([]float32, 1)}
	expect(t, ct.ModelPredictFeatures(s, f.layers, f.shapes, 2, out), ct.InvalidHandle, "patchcore_model_predict_features", "is a scorer, not a model")
	expect(t, ct.ScorerPredict(m, []float32{1}, 1, 1, make([]float32, 1), nil, nil), ct.InvalidHandle, "patchcore_scorer_predict", "is a model, not a scorer")
	expect(t, ct.SegmentorFree(m), ct.InvalidHandle, "patchcore_segmentor_free", "is a model, not a segmentor")
	expect(t, ct.ConfigFree(s), ct.InvalidHandle, "patchcore_config_free", "is a scorer, not a config")
	expect(t, ct.ModelFree(m), ct.OK, "patchcore_model_free")
	expect(t, ct.ScorerFree(s), ct.OK, "patchcore_scorer_free")
	for _, h := range []ct.Handle{m, s, 0xdeadbeef, ^ct.Handle(0), 1 << 40} {
		expect(t, ct.ModelPredictFeatures(h, f.layers, f.shapes, 2, out), ct.InvalidHandle, "patchcore_model_predict_features", "unknown or already freed")
		expect(t, ct.ModelFree(h), ct.InvalidHandle, "patchcore_model_free", "unknown or already freed")
	}
	runtime.KeepAlive(f)
}
