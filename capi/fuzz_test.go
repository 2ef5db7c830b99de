package main

import (
	"math"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	ct "github.com/libpatchcore/libpatchcore/capi/cgotest"
	"github.com/libpatchcore/libpatchcore/internal/fuzzwatch"
	"github.com/libpatchcore/libpatchcore/internal/onnxgraph/onnxtest"
)

// FuzzCAPI runs fuzzed programs of C API calls (through capi/cgotest, as a C host would
// make them): each input is decoded into a sequence of calls with random handles (live,
// freed, of the wrong kind, NULL, made up), random sizes (small honest ones, and
// dimensions that are zero, negative, or whose product overflows or exceeds the
// documented 2^40-element limit), NULL or valid pointers, random keys and values.
//
// Every buffer handed to the library ends at a PROT_NONE guard page and is exactly as
// large as the call's arguments say, so a read or write past what the arguments allow
// crashes the fuzzer. Calls the documented limits refuse get a one-element buffer: the
// library must refuse them before touching it. Calls that are legal but would need large
// buffers are not made.
//
// After every call: the status is a documented code and never INTERNAL (a recovered
// panic), a failure leaves a message naming the function, a failed constructor writes
// NULL. After every program the handles are freed and the registry must be empty.
func FuzzCAPI(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, prog []byte) {
		defer fuzzwatch.Start()()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r := &runner{t: t, p: program{b: prog}, dir: dir}
		defer r.arena.free()
		defer ct.SetNumThreads(0)
		for calls := 0; calls < 48 && len(r.p.b) > 0; {
			if r.step() {
				calls++
			}
		}
		r.freeAll()
		if n := liveHandles(); n != 0 {
			t.Fatalf("%d objects still registered after freeing every handle", n)
		}
	})
}

// Ops of a fuzz program, one byte each; their arguments follow.
const (
	opNop = iota // zero bytes between calls do nothing
	opConfigCreate
	opConfigFree
	opConfigSetInt
	opConfigSetFloat
	opConfigSetFloats
	opConfigSetString
	opConfigSetLayers
	opConfigSetBackbone
	opModelCreate
	opModelFree
	opModelAddFeatures
	opModelFit
	opModelPredictFeatures
	opModelPredict
	opModelAddImages
	opModelBufferRoundTrip
	opModelGet
	opModelCalibrateScores
	opModelNormalizeSegment
	opModelMapSize
	opModelSaveLoad
	opScorerCreate
	opScorerFit
	opScorerPredict
	opScorerFree
	opSegmentorCreate
	opSegmentorConvert
	opSegmentorFree
	opEmbed
	opPool
	opAggregatorCreate
	opAggregatorForward
	opAggregatorFree
	opLastError
	opSetNumThreads
	opCount
)

// fuzzSeeds are programs of honest calls (zero argument bytes mean "the typical valid
// choice", and zero bytes left over are no-ops): the features-only lifecycle, a backbone
// model on images, a scorer, a segmentor, the embedding functions and an aggregator.
func fuzzSeeds() [][]byte {
	prog := func(calls ...[]byte) []byte {
		var b []byte
		for _, c := range calls {
			b = append(append(b, c...), make([]byte, 16)...) // the rest of the arguments: zeros
		}
		return b
	}
	op := func(o int, args ...byte) []byte { return append([]byte{byte(o)}, args...) }
	rLayer := op(opConfigSetLayers, 0, 100) // newest config, one layer "R"
	return [][]byte{
		prog(op(opConfigCreate), op(opConfigSetLayers), op(opModelCreate), op(opModelAddFeatures), op(opModelFit),
			op(opModelPredictFeatures), op(opModelPredictFeatures, 0, 0, 0, 0, 0, 1), op(opModelBufferRoundTrip),
			op(opModelPredictFeatures), op(opModelGet), op(opModelCalibrateScores), op(opModelNormalizeSegment),
			op(opModelSaveLoad), op(opModelFree), op(opModelPredictFeatures), op(opConfigFree)),
		prog(op(opConfigCreate), op(opConfigSetBackbone), rLayer, op(opModelCreate), op(opModelAddImages), op(opModelFit),
			op(opModelPredict), op(opModelPredict, 0, 0, 3, 3, 1, 2, 1), op(opModelMapSize)),
		prog(op(opScorerCreate), op(opScorerFit), op(opScorerPredict), op(opScorerFree), op(opScorerPredict)),
		prog(op(opSegmentorCreate), op(opSegmentorConvert), op(opEmbed), op(opPool), op(opLastError), op(opSetNumThreads)),
		prog(op(opAggregatorCreate, 0, 100), op(opAggregatorForward, 0, 0, 0, 3, 3), op(opAggregatorFree)),
	}
}

// program reads a fuzz input; reading past its end gives zeros.
type program struct{ b []byte }

func (p *program) u8() byte {
	if len(p.b) == 0 {
		return 0
	}
	v := p.b[0]
	p.b = p.b[1:]
	return v
}

func (p *program) u64() uint64 {
	var v uint64
	for i := range 8 {
		v |= uint64(p.u8()) << (8 * i)
	}
	return v
}

// badDims are dimensions the documented limits refuse, alone or in a product.
var badDims = []int64{0, -1, math.MinInt64, 1 << 62, math.MaxInt64, -(1 << 40), 1<<40 + 1, 1 << 41, 3 << 61, 1 << 32, 1 << 31, 1 << 21}

// dim is a small dimension 1..8 for bytes below 224, else an adversarial one.
func (p *program) dim() int64 {
	b := p.u8()
	if b < 224 {
		return int64(1 + b%8)
	}
	return badDims[int(b-224)%len(badDims)]
}

// shapeClass classifies a product of dimensions: honest (all positive, at most 1<<14
// elements: the fuzzer provides the buffers), refused (a dimension <= 0 or a product over
// 2^40: the library must refuse it), or neither (legal but too large to provide).
type shapeClass int

const (
	honest shapeClass = iota
	refused
	tooLarge
)

func classify(dims ...int64) (shapeClass, int) {
	n := big.NewInt(1)
	for _, d := range dims {
		if d <= 0 {
			return refused, 0
		}
		n.Mul(n, big.NewInt(d))
	}
	switch {
	case n.Cmp(big.NewInt(1<<40)) > 0:
		return refused, 0
	case n.Cmp(big.NewInt(1<<14)) > 0:
		return tooLarge, 0
	}
	return honest, int(n.Int64())
}

// arena hands out buffers that end at a PROT_NONE page; free unmaps them all.
type arena struct{ maps [][]byte }

func (a *arena) bytes(t *testing.T, n int) []byte {
	page := os.Getpagesize()
	size := (n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	a.maps = append(a.maps, mem)
	return mem[size-page-n : size-page : size-page]
}

func (a *arena) floats(t *testing.T, n int, fill byte) []float32 {
	b := a.bytes(t, 4*n)
	f := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n)
	for i := range f {
		f[i] = float32(int(fill)+i%7) / 8
	}
	return f
}

func (a *arena) int64s(t *testing.T, vals []int64) []int64 {
	b := a.bytes(t, 8*len(vals))
	s := unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(b))), len(vals))
	copy(s, vals)
	return s
}

func (a *arena) free() {
	for _, m := range a.maps {
		syscall.Munmap(m)
	}
	a.maps = nil
}

// slot is a handle the program created, live or freed.
type slot struct {
	h    ct.Handle
	kind kind
	k    int64 // a scorer's k
}

type runner struct {
	t     *testing.T
	p     program
	arena arena
	slots []slot
	dir   string
}

// handle picks a handle argument: usually the newest of the wanted kind, sometimes any
// handle the program made (freed, other kinds), NULL, or a made-up value.
func (r *runner) handle(k kind) (ct.Handle, slot) {
	b := r.p.u8()
	switch {
	case b < 192:
		for i := len(r.slots) - 1; i >= 0; i-- {
			if r.slots[i].kind == k {
				return r.slots[i].h, r.slots[i]
			}
		}
		return 0, slot{}
	case b < 224 && len(r.slots) > 0:
		s := r.slots[int(b)%len(r.slots)]
		return s.h, s
	case b < 240:
		return 0, slot{}
	default:
		return ct.Handle(r.p.u64() | 1), slot{}
	}
}

// check asserts the contract of one call's status.
func (r *runner) check(fn string, st int32) int32 {
	r.t.Helper()
	if st < ct.OK || st > ct.Backend {
		r.t.Fatalf("%s returned %d, not a documented status", fn, st)
	}
	if st == ct.Internal {
		r.t.Fatalf("%s: INTERNAL (a recovered panic): %s", fn, ct.LastError())
	}
	if st != ct.OK {
		if msg := ct.LastError(); !strings.HasPrefix(msg, fn+": ") {
			r.t.Fatalf("%s failed with %s but the message is %q", fn, ct.StatusString(st), msg)
		}
	}
	return st
}

// created checks a constructor's status and out handle and records a new handle.
func (r *runner) created(fn string, st int32, h ct.Handle, k kind, scorerK int64) {
	r.t.Helper()
	if r.check(fn, st) != ct.OK {
		if h != 0 {
			r.t.Fatalf("%s failed but wrote handle %#x", fn, h)
		}
		return
	}
	if h == 0 {
		r.t.Fatalf("%s succeeded with a NULL handle", fn)
	}
	r.slots = append(r.slots, slot{h: h, kind: k, k: scorerK})
}

// Keys of the settings, and the largest value of each the fuzzer sends (larger legal
// values would allocate more than a fuzz worker should; larger illegal ones are sent).
var fuzzIntKeys = []struct {
	key      int32
	lo, hi   int64 // documented range
	safeHigh int64
}{
	{ct.ParamResize, 1, 32768, 64}, {ct.ParamImageSize, 1, 4096, 64}, {ct.ParamPretrainEmbedDim, 1, 65536, 64},
	{ct.ParamTargetEmbedDim, 1, 65536, 64}, {ct.ParamPatchSize, 1, 63, 7}, {ct.ParamNumNN, 1, 65536, 8},
	{ct.ParamNNMethod, 0, 1, 1}, {ct.ParamSeed, 0, math.MaxInt64, math.MaxInt64}, {ct.ParamNumThreads, 0, 1024, 4},
	{ct.ParamBatchSize, 1, 4096, 8}, {ct.ParamEmbedBackbone, 0, 1, 1}, {ct.ParamPercentage, 0, 0, 0},
	{ct.ParamBankRows, 0, 0, 0}, {999, 0, 0, 0}, {-5, 0, 0, 0},
}

var intValues = []int64{-1, 0, 1, 2, 3, 4, 5, 7, 8, 16, 63, 64, 65, 4097, 32769, 65537, 1 << 31, math.MaxInt64, math.MinInt64}

var floatValues = []float64{0.5, 0, 0.1, 0.99, 1, -0.5, 4, 64, 64.5, 1e300, math.NaN(), math.Inf(1), math.Inf(-1), -0.0, 1e-300}

var strValues = []*string{ct.S("identity"), ct.S("random"), ct.S("greedy_coreset"), ct.S("approx_greedy_coreset"), ct.S("cpu"),
	ct.S("cuda"), ct.S("cuda:1"), ct.S(""), nil, ct.S("/nonexistent/backbone.onnx"), ct.S("kmeans"), ct.S("\xff\xfe"), ct.S(strings.Repeat("x", 5000))}

var strKeys = []int32{ct.ParamSampler, ct.ParamDevice, ct.ParamBackbonePath, ct.ParamResize, ct.ParamMean, 12345}

// tinyONNX are backbones for the config and aggregator ops: R = Relu(X) with a dynamic or
// fixed input, one whose layer F is a declared rank-2 tensor, truncated bytes, garbage.
var tinyONNX = func() [][]byte {
	model := func(input []any, declareF bool) []byte {
		g := onnxtest.Graph{
			Nodes: [][]byte{onnxtest.Node("relu", "Relu", []string{"X"}, []string{"R"}),
				onnxtest.Node("flat", "Flatten", []string{"X"}, []string{"F"})},
			Inputs:  [][]byte{onnxtest.Value("X", onnxtest.Float, input)},
			Outputs: [][]byte{onnxtest.Value("R", onnxtest.Float, nil)},
		}
		if declareF {
			g.ValueInfo = [][]byte{onnxtest.Value("F", onnxtest.Float, []any{"batch", "n"})}
		}
		return onnxtest.Model(8, 13, g)
	}
	dyn := model([]any{"batch", 3, "h", "w"}, false)
	return [][]byte{dyn, model([]any{1, 3, 4, 4}, false), model([]any{"batch", 3, "h", "w"}, true), dyn[:len(dyn)/2], []byte("not onnx")}
}()

var layerNames = []*string{ct.S("a"), ct.S("b"), ct.S("c"), ct.S("R"), ct.S("F"), ct.S("X"), ct.S(""), nil, ct.S("layer2")}

// names builds a layer-name argument: "a", "b", "c" (1..3 of them, the features-only
// layers), "R" (the tiny backbones' layer) or random names; the count is honest or one the
// limits refuse.
func (r *runner) names() ([]*string, uint64) {
	b := r.p.u8()
	n := 1 + int(b%3)
	if b >= 100 && b < 200 {
		n = 1
	}
	out := make([]*string, n)
	for i := range out {
		switch {
		case b < 100:
			out[i] = layerNames[i]
		case b < 200:
			out[i] = ct.S("R")
		default:
			out[i] = layerNames[int(r.p.u8())%len(layerNames)]
		}
	}
	switch r.p.u8() % 8 {
	case 5:
		return out, 0
	case 6:
		return out, 17
	case 7:
		return out, math.MaxUint64
	}
	return out, uint64(n)
}

// layers builds per-layer feature maps: honest shapes get exact guarded buffers (mostly
// the tiny model's [n,8,4,4] and [n,8,2,2]), refused ones one float.
func (r *runner) layers() (maps [][]float32, shapes []int64, nLayers int32, ok bool) {
	nl := 1 + int(r.p.u8()%3)
	batch := int64(1 + r.p.u8()%3)
	shapes = make([]int64, 0, 4*nl)
	class := honest
	sizes := make([]int, nl)
	for i := range nl {
		var s []int64
		if r.p.u8() < 200 {
			side := int64(4 >> i)
			s = []int64{batch, 8, max(side, 1), max(side, 1)}
		} else {
			s = []int64{r.p.dim(), r.p.dim(), r.p.dim(), r.p.dim()}
		}
		c, n := classify(s...)
		if c > class {
			class = c
		}
		sizes[i] = n
		shapes = append(shapes, s...)
	}
	if class == tooLarge {
		return nil, nil, 0, false
	}
	maps = make([][]float32, nl)
	for i := range maps {
		if class == honest {
			maps[i] = r.arena.floats(r.t, sizes[i], byte(i))
		} else {
			maps[i] = r.arena.floats(r.t, 1, 0)
		}
	}
	nLayers = int32(nl)
	switch r.p.u8() % 16 {
	case 13:
		nLayers = 0
	case 14:
		nLayers = -3
	case 15:
		maps[0] = nil // a NULL layer pointer
	}
	if nLayers > int32(nl) {
		nLayers = int32(nl)
	}
	return maps, r.arena.int64s(r.t, shapes), nLayers, true
}

// images builds an image argument: honest (1..3 images up to 8x8, exact buffer) or one
// beyond the documented limits (one byte of buffer).
func (r *runner) images() (ct.Image, bool) {
	b := r.p.u8()
	im := ct.Image{N: 1 + int32(b%3), Width: 1 + int32(r.p.u8()%8), Height: 1 + int32(r.p.u8()%8), Channels: []int32{3, 1, 4}[r.p.u8()%3]}
	im.Stride = im.Width*im.Channels + int32(r.p.u8()%4)
	if b >= 224 {
		switch b % 8 {
		case 0:
			im.Width = 20000
			im.Height = 20000
			im.Stride = 60000
		case 1:
			im.Width = 32769
		case 2:
			im.N = 0
		case 3:
			im.Stride = im.Width*im.Channels - 1
		case 4:
			im.Channels = 2
		case 5:
			im.N, im.Height, im.Stride = math.MaxInt32, 1<<14, 1<<15 // 2^31 images of 2^29 bytes
		case 6:
			im.Format = 7
		case 7:
			im.Width, im.Height = -1, 0
		}
		im.Pix = r.arena.bytes(r.t, 1)
		return im, false
	}
	need := int((im.N-1)*im.Height*im.Stride + (im.Height-1)*im.Stride + im.Width*im.Channels)
	im.Pix = r.arena.bytes(r.t, need)
	for i := range im.Pix {
		im.Pix[i] = byte(i * 13)
	}
	return im, true
}

// outputs builds the predict outputs for n images of mapSize floats: scores of n floats,
// maps NULL or of a capacity around the need.
func (r *runner) outputs(n, mapSize int, ok bool) ct.Outputs {
	o := ct.Outputs{Needed: new(uint64)}
	if !ok {
		o.Scores = r.arena.floats(r.t, 1, 0)
		return o
	}
	b := r.p.u8()
	if b%8 != 7 {
		o.Scores = r.arena.floats(r.t, n, 0)
	}
	need := n * mapSize
	switch b % 4 {
	case 1:
		o.Capacity = uint64(need)
	case 2:
		o.Capacity = uint64(max(need-1, 0))
	case 3:
		o.Capacity = uint64(need + 3)
	}
	if b%4 != 0 && need <= 1<<16 {
		o.Maps = r.arena.floats(r.t, int(o.Capacity), 0)
	} else {
		o.Capacity = 0
	}
	if b&0x80 != 0 {
		o.Needed = nil
	}
	return o
}

// mapSize asks the library for a model's map size (0 when the handle is not a model).
func (r *runner) mapSize(h ct.Handle) int {
	var n uint64
	if ct.ModelMapSize(h, &n) != ct.OK || n > 1<<16 {
		return 0
	}
	return int(n)
}

// step decodes and makes one call; it reports whether the op was not a no-op.
func (r *runner) step() bool {
	t := r.t
	switch op := int(r.p.u8()) % opCount; op {
	case opNop:
		return false
	case opConfigCreate:
		var h ct.Handle
		st := ct.ConfigCreate(&h)
		r.created("patchcore_config_create", st, h, kindConfig, 0)
		// Small models by default, so honest programs stay fast.
		for _, kv := range [][2]int64{{ct.ParamResize, 16}, {ct.ParamImageSize, 16}, {ct.ParamPretrainEmbedDim, 8}, {ct.ParamTargetEmbedDim, 8}, {ct.ParamNumThreads, 1}} {
			if st == ct.OK {
				r.check("patchcore_config_set_int", ct.ConfigSetInt(h, int32(kv[0]), kv[1]))
			}
		}
		if st == ct.OK {
			r.check("patchcore_config_set_string", ct.ConfigSetString(h, ct.ParamSampler, ct.S("identity")))
		}
	case opConfigFree:
		h, _ := r.handle(kindConfig)
		r.check("patchcore_config_free", ct.ConfigFree(h))
	case opConfigSetInt:
		h, _ := r.handle(kindConfig)
		k := fuzzIntKeys[int(r.p.u8())%len(fuzzIntKeys)]
		b := r.p.u8()
		v := intValues[int(b)%len(intValues)]
		if b >= 200 {
			v = int64(r.p.u64())
		}
		if v >= k.lo && v <= k.hi && v > k.safeHigh {
			return true // legal but larger than a fuzz worker should allocate
		}
		r.check("patchcore_config_set_int", ct.ConfigSetInt(h, k.key, v))
	case opConfigSetFloat:
		h, _ := r.handle(kindConfig)
		key := []int32{ct.ParamPercentage, ct.ParamSigma, ct.ParamThreshold, ct.ParamResize, 77}[r.p.u8()%5]
		r.check("patchcore_config_set_float", ct.ConfigSetFloat(h, key, floatValues[int(r.p.u8())%len(floatValues)]))
	case opConfigSetFloats:
		h, _ := r.handle(kindConfig)
		key := []int32{ct.ParamMean, ct.ParamStd, ct.ParamSigma, 31000}[r.p.u8()%4]
		vals := r.arena.floats(t, 3, 0)
		for i := range vals {
			vals[i] = float32(floatValues[int(r.p.u8())%len(floatValues)])
		}
		count := []uint64{3, 3, 0, 2, 4, math.MaxUint64}[r.p.u8()%6]
		if r.p.u8()%8 == 7 {
			vals = nil
		}
		r.check("patchcore_config_set_floats", ct.ConfigSetFloats(h, key, vals, count))
	case opConfigSetString:
		h, _ := r.handle(kindConfig)
		key := strKeys[int(r.p.u8())%len(strKeys)]
		r.check("patchcore_config_set_string", ct.ConfigSetString(h, key, strValues[int(r.p.u8())%len(strValues)]))
	case opConfigSetLayers:
		h, _ := r.handle(kindConfig)
		names, count := r.names()
		if r.p.u8()%16 == 15 {
			names = nil
		}
		r.check("patchcore_config_set_layers", ct.ConfigSetLayers(h, names, count))
	case opConfigSetBackbone:
		h, _ := r.handle(kindConfig)
		b := tinyONNX[int(r.p.u8())%len(tinyONNX)]
		buf := r.arena.bytes(t, len(b))
		copy(buf, b)
		size := uint64(len(b))
		switch r.p.u8() % 8 {
		case 6:
			size = 0
		case 7:
			buf = nil
		}
		r.check("patchcore_config_set_backbone_bytes", ct.ConfigSetBackboneBytes(h, buf, size))
	case opModelCreate:
		c, _ := r.handle(kindConfig)
		var h ct.Handle = 99
		st := ct.ModelCreate(c, &h)
		r.created("patchcore_model_create", st, h, kindModel, 0)
	case opModelFree:
		h, _ := r.handle(kindModel)
		r.check("patchcore_model_free", ct.ModelFree(h))
	case opModelAddFeatures:
		h, _ := r.handle(kindModel)
		if maps, shapes, n, ok := r.layers(); ok {
			r.check("patchcore_model_add_features", ct.ModelAddFeatures(h, maps, shapes, n))
		}
	case opModelFit:
		h, _ := r.handle(kindModel)
		r.check("patchcore_model_fit", ct.ModelFit(h))
	case opModelPredictFeatures:
		h, _ := r.handle(kindModel)
		maps, shapes, n, ok := r.layers()
		if !ok {
			return true
		}
		c, _ := classify(shapes[:4]...)
		batch := 0
		if c == honest && maps[0] != nil && n >= 1 {
			batch = int(shapes[0])
		}
		o := r.outputs(batch, r.mapSize(h), c == honest)
		r.check("patchcore_model_predict_features", ct.ModelPredictFeatures(h, maps, shapes, n, o))
	case opModelPredict:
		h, _ := r.handle(kindModel)
		im, ok := r.images()
		o := r.outputs(int(im.N), r.mapSize(h), ok)
		r.check("patchcore_model_predict", ct.ModelPredict(h, im, o))
	case opModelAddImages:
		h, _ := r.handle(kindModel)
		im, _ := r.images()
		r.check("patchcore_model_add_images", ct.ModelAddImages(h, im))
	case opModelBufferRoundTrip:
		h, _ := r.handle(kindModel)
		var need uint64
		st := r.check("patchcore_model_save_to_buffer", ct.ModelSaveToBuffer(h, nil, 0, &need))
		if st != ct.BufferTooSmall || need == 0 || need > 1<<24 {
			return true
		}
		capacity := need - uint64(r.p.u8()%2)
		buf := r.arena.bytes(t, int(capacity))
		if r.check("patchcore_model_save_to_buffer", ct.ModelSaveToBuffer(h, buf, capacity, nil)) != ct.OK {
			return true
		}
		if b := r.p.u8(); b >= 128 {
			buf[int(r.p.u64()%capacity)] ^= 1 << (b % 8)
		}
		size := capacity - uint64(r.p.u8()%4)%capacity
		var m ct.Handle = 7
		r.created("patchcore_model_load_from_buffer", ct.ModelLoadFromBuffer(buf, size, nil, &m), m, kindModel, 0)
	case opModelGet:
		h, _ := r.handle(kindModel)
		key := int32(r.p.u8())
		if key < 128 {
			key = []int32{ct.ParamImageSize, ct.ParamBankRows, ct.ParamThreshold, ct.ParamSigma, ct.ParamGridHeight}[key%5]
		}
		var iv int64
		var fv float64
		if r.p.u8()%8 == 7 {
			r.check("patchcore_model_get_int", ct.ModelGetInt(h, key, nil))
			return true
		}
		r.check("patchcore_model_get_int", ct.ModelGetInt(h, key, &iv))
		r.check("patchcore_model_get_float", ct.ModelGetFloat(h, key, &fv))
	case opModelCalibrateScores:
		h, _ := r.handle(kindModel)
		b := r.p.u8()
		count := uint64(1 + b%16)
		scores := r.arena.floats(t, int(count), b)
		var labels []int32
		if b&0x40 != 0 {
			lb := r.arena.bytes(t, 4*int(count))
			labels = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(lb))), count)
			for i := range labels {
				labels[i] = int32(r.p.u8()%3) - int32(r.p.u8()%2)
			}
		}
		if b >= 240 {
			count = []uint64{0, 1<<40 + 1, math.MaxUint64}[b%3]
			scores, labels = scores[:1], nil
		}
		method := []int32{ct.CalibrateQuantile, ct.CalibrateMeanStd, ct.CalibrateF1, -1, 3}[r.p.u8()%5]
		r.check("patchcore_model_calibrate_scores", ct.ModelCalibrateScores(h, scores, labels, count, method, floatValues[int(r.p.u8())%len(floatValues)], new(float32)))
	case opModelNormalizeSegment:
		h, _ := r.handle(kindModel)
		b := r.p.u8()
		count := uint64(1 + b%16)
		in, out := r.arena.floats(t, int(count), b), r.arena.floats(t, int(count), 0)
		masks := r.arena.bytes(t, int(count))
		if b >= 240 {
			count = []uint64{0, 1<<40 + 1, math.MaxUint64}[b%3]
			in, out, masks = in[:1], out[:1], masks[:1]
		}
		r.check("patchcore_model_normalize_scores", ct.ModelNormalizeScores(h, in, count, out))
		thr := float32(floatValues[int(r.p.u8())%len(floatValues)])
		r.check("patchcore_model_segment", ct.ModelSegment(h, in, count, thr, masks))
	case opModelMapSize:
		h, _ := r.handle(kindModel)
		if r.p.u8()%2 == 1 {
			r.check("patchcore_model_map_size", ct.ModelMapSize(h, nil))
		} else {
			r.check("patchcore_model_map_size", ct.ModelMapSize(h, new(uint64)))
		}
	case opModelSaveLoad:
		h, _ := r.handle(kindModel)
		path := []*string{ct.S(filepath.Join(r.dir, "m.pcm")), ct.S(filepath.Join(r.dir, "missing", "m.pcm")), nil, ct.S(r.dir)}[r.p.u8()%4]
		r.check("patchcore_model_save", ct.ModelSave(h, path))
		var m ct.Handle = 5
		r.created("patchcore_model_load", ct.ModelLoad(path, nil, &m), m, kindModel, 0)
	case opScorerCreate:
		k := []int32{1, 2, 3, 0, -1, 65537}[r.p.u8()%6]
		method := []int32{ct.NNExact, ct.NNExact, ct.NNIVFPQ, 5}[r.p.u8()%4]
		gpu := []int32{0, 0, 1, 2}[r.p.u8()%4]
		workers := []int32{1, 0, 2, -1, 1025}[r.p.u8()%5]
		var h ct.Handle = 3
		r.created("patchcore_scorer_create", ct.ScorerCreate(k, method, gpu, workers, &h), h, kindScorer, int64(k))
	case opScorerFit:
		h, _ := r.handle(kindScorer)
		n, d := 4+r.p.dim(), r.p.dim()
		if n == 5 {
			n = r.p.dim() // also the adversarial ones
		}
		switch c, size := classify(n, d); c {
		case honest:
			r.check("patchcore_scorer_fit", ct.ScorerFit(h, r.arena.floats(t, size, byte(d)), n, d))
		case refused:
			r.check("patchcore_scorer_fit", ct.ScorerFit(h, r.arena.floats(t, 1, 0), n, d))
		}
	case opScorerPredict:
		h, s := r.handle(kindScorer)
		n, d := r.p.dim(), r.p.dim()
		c, size := classify(n, d)
		if c == tooLarge {
			return true
		}
		k := max(s.k, 1)
		if c == honest {
			outs := r.arena.floats(t, int(n), 0)
			var dist []float32
			var idx []int64
			if r.p.u8()%2 == 0 && s.k > 0 && s.k <= 8 {
				dist, idx = r.arena.floats(t, int(n*k), 0), r.arena.int64s(t, make([]int64, n*k))
			}
			r.check("patchcore_scorer_predict", ct.ScorerPredict(h, r.arena.floats(t, size, 3), n, d, outs, dist, idx))
		} else {
			r.check("patchcore_scorer_predict", ct.ScorerPredict(h, r.arena.floats(t, 1, 0), n, d, r.arena.floats(t, 1, 0), nil, nil))
		}
	case opScorerFree:
		h, _ := r.handle(kindScorer)
		r.check("patchcore_scorer_free", ct.ScorerFree(h))
	case opSegmentorCreate:
		height := []int32{8, 16, 1, 0, -1, 32769}[r.p.u8()%6]
		width := []int32{8, 3, 1, 0, 32769, math.MaxInt32}[r.p.u8()%6]
		var h ct.Handle = 11
		r.created("patchcore_segmentor_create", ct.SegmentorCreate(height, width, floatValues[int(r.p.u8())%len(floatValues)], &h), h, kindSegmentor, 0)
	case opSegmentorConvert:
		h, _ := r.handle(kindSegmentor)
		n, ph, pw := r.p.dim(), r.p.dim(), r.p.dim()
		c, size := classify(n, ph, pw)
		if c == tooLarge {
			return true
		}
		in := r.arena.floats(t, max(size, 1), 1)
		// The output is n x target size; the fuzzer does not know the target: it offers
		// capacities and lets the size query tell it the need.
		var need uint64
		st := r.check("patchcore_segmentor_convert", ct.SegmentorConvert(h, in, n, ph, pw, nil, 0, &need))
		if c == refused || st != ct.BufferTooSmall || need > 1<<16 {
			return true
		}
		capacity := need - uint64(r.p.u8()%2)
		r.check("patchcore_segmentor_convert", ct.SegmentorConvert(h, in, n, ph, pw, r.arena.floats(t, int(capacity), 0), capacity, nil))
	case opSegmentorFree:
		h, _ := r.handle(kindSegmentor)
		r.check("patchcore_segmentor_free", ct.SegmentorFree(h))
	case opEmbed:
		maps, shapes, n, ok := r.layers()
		if !ok {
			return true
		}
		patch := []int32{3, 1, 5, 2, 0, 65}[r.p.u8()%6]
		pre := []int32{8, 4, 16, 0, 65537}[r.p.u8()%5]
		target := []int32{8, 4, 3, -1, 65537}[r.p.u8()%5]
		var need uint64
		st := r.check("patchcore_embed", ct.Embed(maps, shapes, n, patch, pre, target, nil, 0, &need))
		if st != ct.BufferTooSmall || need > 1<<16 {
			return true
		}
		capacity := need - uint64(r.p.u8()%2)
		r.check("patchcore_embed", ct.Embed(maps, shapes, n, patch, pre, target, r.arena.floats(t, int(capacity), 0), capacity, nil))
	case opPool:
		rows, inLen, outLen := r.p.dim(), r.p.dim(), r.p.dim()
		ci, in := classify(rows, inLen)
		co, out := classify(rows, outLen)
		switch {
		case ci == tooLarge || co == tooLarge:
		case ci == honest && co == honest:
			r.check("patchcore_adaptive_avg_pool1d", ct.AdaptiveAvgPool1D(r.arena.floats(t, in, 2), rows, inLen, outLen, r.arena.floats(t, out, 0)))
		default:
			r.check("patchcore_adaptive_avg_pool1d", ct.AdaptiveAvgPool1D(r.arena.floats(t, 1, 2), rows, inLen, outLen, r.arena.floats(t, 1, 0)))
		}
	case opAggregatorCreate:
		b := tinyONNX[int(r.p.u8())%len(tinyONNX)]
		names, count := r.names()
		device := []*string{nil, ct.S("cpu"), ct.S("cuda"), ct.S("tpu")}[r.p.u8()%4]
		var h ct.Handle = 13
		r.created("patchcore_aggregator_create", ct.AggregatorCreate(nil, b, uint64(len(b)), names, count, device, &h), h, kindAggregator, 0)
	case opAggregatorForward:
		h, _ := r.handle(kindAggregator)
		n, c, height, width := r.p.dim(), []int64{3, 3, 1, 0, -3}[r.p.u8()%5], r.p.dim(), r.p.dim()
		class, size := classify(n, c, height, width)
		if class == tooLarge {
			return true
		}
		layer := []int32{0, 1, -1}[r.p.u8()%3]
		var need uint64
		in := r.arena.floats(t, max(size, 1), 4)
		st := r.check("patchcore_aggregator_forward", ct.AggregatorForward(h, in, n, c, height, width, layer, nil, 0, &need))
		if class == refused || st != ct.BufferTooSmall || need > 1<<16 {
			return true
		}
		r.check("patchcore_aggregator_forward", ct.AggregatorForward(h, in, n, c, height, width, layer, r.arena.floats(t, int(need), 0), need, nil))
		shapes := r.arena.int64s(t, make([]int64, 3))
		r.check("patchcore_aggregator_feature_shapes", ct.AggregatorFeatureShapes(h, int32(c), int32(height), int32(width), shapes, 3, nil))
	case opAggregatorFree:
		h, _ := r.handle(kindAggregator)
		r.check("patchcore_aggregator_free", ct.AggregatorFree(h))
	case opLastError:
		capacity := uint64(r.p.u8() % 40)
		buf := r.arena.bytes(t, int(capacity))
		need := ct.LastErrorInto(buf, capacity)
		if need == 0 || (capacity > 0 && buf[min(need, capacity)-1] != 0) {
			t.Fatalf("last_error(cap %d) needs %d, buffer %q not NUL-terminated", capacity, need, buf)
		}
		if ct.StatusString(int32(r.p.u64())) == "" {
			t.Fatal("empty status string")
		}
	case opSetNumThreads:
		r.check("patchcore_set_num_threads", ct.SetNumThreads([]int32{0, 1, 2, -1, 1025}[r.p.u8()%5]))
	}
	return true
}

// freeAll frees every handle the program made (already freed ones answer INVALID_HANDLE).
func (r *runner) freeAll() {
	for _, s := range r.slots {
		var st int32
		switch s.kind {
		case kindConfig:
			st = ct.ConfigFree(s.h)
		case kindModel:
			st = ct.ModelFree(s.h)
		case kindScorer:
			st = ct.ScorerFree(s.h)
		case kindSegmentor:
			st = ct.SegmentorFree(s.h)
		case kindAggregator:
			st = ct.AggregatorFree(s.h)
		}
		if st != ct.OK && st != ct.InvalidHandle {
			r.t.Fatalf("freeing a %s: %s: %s", kindNames[s.kind], ct.StatusString(st), ct.LastError())
		}
	}
}
