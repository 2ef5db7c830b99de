package core

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
	"github.com/libpatchcore/libpatchcore/internal/onnxgraph/onnxtest"
	"github.com/libpatchcore/libpatchcore/internal/ort"
)

const (
	mnv2ONNX   = "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"
	mnv2SHA256 = "207111c51a29e287f8416a6040d1f6cafcf02694c6dd7346eff9fa6329b30015"
	block6     = "block_6_expand_relu"
	block10    = "block_10_expand_relu"
)

// needORT skips the test when no ONNX Runtime can be loaded.
func needORT(t testing.TB) {
	t.Helper()
	if _, err := ort.Init(); err != nil {
		t.Skipf("ONNX Runtime not available: %v", err)
	}
}

func newMNV2(t testing.TB, layers ...string) *NetworkFeatureAggregator {
	t.Helper()
	needORT(t)
	a, err := NewNetworkFeatureAggregator(BackboneFromFile(golden.Path(t, mnv2ONNX)), layers, "cpu", BackboneOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// mnv2Input is input_onnx_pm1: train0, train1, test0, test1 as [4,3,224,224].
func mnv2Input(t testing.TB) Tensor {
	t.Helper()
	a := golden.Load(t, "mnv2/input_onnx_pm1.npy")
	x, err := TensorFrom(a.F32, a.Shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// goldenMaps concatenates the train and test feature maps of a layer: [4,C,h,w].
func goldenMaps(t testing.TB, name string) Tensor {
	t.Helper()
	tr := golden.Load(t, "mnv2/"+name+"_train.npy")
	te := golden.Load(t, "mnv2/"+name+"_test.npy")
	x, err := TensorFrom(append(slices.Clone(tr.F32), te.F32...), append([]int{4}, tr.Shape[1:]...)...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// sliceBatch returns images [from,to) of a [B,...] tensor (a view).
func sliceBatch(x Tensor, from, to int) Tensor {
	rl := x.RowLen()
	return Tensor{Shape: append([]int{to - from}, x.Shape[1:]...), Data: x.Data[from*rl : to*rl]}
}

// relErr is max|got-want| / max|want|.
func relErr(t testing.TB, got, want Tensor) float64 {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	var maxDiff, maxAbs float64
	for i := range want.Data {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got.Data[i])-float64(want.Data[i])))
		maxAbs = math.Max(maxAbs, math.Abs(float64(want.Data[i])))
	}
	return maxDiff / maxAbs
}

func TestBackboneGoldenMNV2(t *testing.T) {
	a := newMNV2(t, block6, block10)
	if a.SHA256() != mnv2SHA256 {
		t.Errorf("SHA256 %s, want %s", a.SHA256(), mnv2SHA256)
	}
	if a.Device() != "cpu" || !slices.Equal(a.Layers(), []string{block6, block10}) {
		t.Errorf("device %q layers %v", a.Device(), a.Layers())
	}
	x := mnv2Input(t)
	want := []Tensor{goldenMaps(t, "block6"), goldenMaps(t, "block10")}
	maps, err := a.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 2 {
		t.Fatalf("%d maps", len(maps))
	}
	full := []Tensor{maps[block6], maps[block10]}
	for i, w := range want {
		if e := relErr(t, full[i], w); e > 1e-4 {
			t.Errorf("%s: relative error %.3g > 1e-4", a.layers[i], e)
		} else {
			t.Logf("%s: relative error %.3g", a.layers[i], e)
		}
	}
	// Batches of 1 and 3 (+1) give the same maps as the batch of 4.
	for _, split := range [][]int{{0, 1, 2, 3, 4}, {0, 3, 4}} {
		for k := 0; k+1 < len(split); k++ {
			part, err := a.ForwardOrdered(sliceBatch(x, split[k], split[k+1]))
			if err != nil {
				t.Fatal(err)
			}
			for i := range part {
				if e := relErr(t, part[i], sliceBatch(full[i], split[k], split[k+1])); e > 1e-6 {
					t.Errorf("batch %v: layer %d differs from the batch of 4 by %.3g", split, i, e)
				}
			}
		}
	}
	dims, err := a.FeatureDimensions(3, 224, 224)
	if err != nil || !slices.Equal(dims, []int{192, 384}) {
		t.Errorf("FeatureDimensions = %v, %v", dims, err)
	}
	shapes, err := a.FeatureShapes(3, 224, 224)
	if err != nil || !slices.Equal(shapes, [][3]int{{192, 28, 28}, {384, 14, 14}}) {
		t.Errorf("FeatureShapes = %v, %v", shapes, err)
	}
}

func TestBackboneFromBytesMatchesFile(t *testing.T) {
	needORT(t)
	data, err := os.ReadFile(golden.Path(t, mnv2ONNX))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewNetworkFeatureAggregator(BackboneFromBytes(data), []string{block10}, "", BackboneOptions{Threads: 1, InputName: "input"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.SHA256() != mnv2SHA256 {
		t.Errorf("SHA256 %s", a.SHA256())
	}
	x := sliceBatch(mnv2Input(t), 3, 4)
	got, err := a.ForwardOrdered(x)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(t, got[0], sliceBatch(goldenMaps(t, "block10"), 3, 4)); e > 1e-4 {
		t.Errorf("relative error %.3g", e)
	}
}

// TestBackboneIntermediateLayer extracts the Conv output that feeds the last Clip, which is
// not a graph output, and checks Clip(0, 6) of it against the graph's own output and the
// golden block_10 map.
func TestBackboneIntermediateLayer(t *testing.T) {
	const preClip = "/block_10_expand/Conv_output_0"
	a := newMNV2(t, block10, preClip, "/block_6_depthwise_relu/Clip_output_0")
	x := sliceBatch(mnv2Input(t), 2, 4)
	maps, err := a.ForwardOrdered(x)
	if err != nil {
		t.Fatal(err)
	}
	if got := maps[2].Shape; !slices.Equal(got, []int{2, 192, 14, 14}) {
		t.Errorf("depthwise map shape %v", got)
	}
	pre := maps[1]
	negative, above6 := 0, 0
	clipped := Tensor{Shape: pre.Shape, Data: make([]float32, len(pre.Data))}
	for i, v := range pre.Data {
		if v < 0 {
			negative++
		}
		if v > 6 {
			above6++
		}
		clipped.Data[i] = min(max(v, 0), 6)
	}
	if negative == 0 || above6 == 0 {
		t.Errorf("pre-activation has %d negative and %d >6 values: not the tensor before the Clip", negative, above6)
	}
	if e := relErr(t, clipped, maps[0]); e > 1e-6 {
		t.Errorf("Clip(pre-activation) differs from %s by %.3g", block10, e)
	}
	if e := relErr(t, clipped, sliceBatch(goldenMaps(t, "block10"), 2, 4)); e > 1e-4 {
		t.Errorf("Clip(pre-activation) differs from golden by %.3g", e)
	}
}

func TestBackboneConcurrentForward(t *testing.T) {
	a := newMNV2(t, block6, block10)
	x := sliceBatch(mnv2Input(t), 0, 2)
	want, err := a.ForwardOrdered(x)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := a.ForwardOrdered(x)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range got {
				if !slices.Equal(got[i].Data, want[i].Data) {
					t.Errorf("layer %d differs between concurrent calls", i)
				}
			}
		}()
	}
	wg.Wait()
}

func TestBackboneErrors(t *testing.T) {
	needORT(t)
	path := golden.Path(t, mnv2ONNX)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file := BackboneFromFile(path)
	layers := []string{block6, block10}
	check := func(what string, err error, kind error, words ...string) {
		t.Helper()
		if !errors.Is(err, kind) {
			t.Errorf("%s: err = %v, want %v", what, err, kind)
			return
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", what, err, w)
			}
		}
	}
	_, err = NewNetworkFeatureAggregator(file, []string{block6, "layer3"}, "cpu", BackboneOptions{})
	check("missing layer", err, ErrInvalidArgument, `"layer3"`, block6, "/block_9_add/Add_output_0")
	_, err = NewNetworkFeatureAggregator(file, nil, "cpu", BackboneOptions{})
	check("no layers", err, ErrInvalidArgument)
	_, err = NewNetworkFeatureAggregator(file, []string{block6, block6}, "cpu", BackboneOptions{})
	check("duplicate layers", err, ErrInvalidArgument)
	_, err = NewNetworkFeatureAggregator(file, layers, "cpu", BackboneOptions{Threads: -2})
	check("negative threads", err, ErrInvalidArgument)
	_, err = NewNetworkFeatureAggregator(file, layers, "cpu", BackboneOptions{InputName: "image"})
	check("unknown input name", err, ErrInvalidArgument, `"image"`, "input: float32[batch,3,224,224]")
	_, err = NewNetworkFeatureAggregator(BackboneFromBytes(data[:len(data)/2]), layers, "cpu", BackboneOptions{})
	check("truncated", err, ErrFormat)
	_, err = NewNetworkFeatureAggregator(BackboneFromBytes([]byte("definitely not an onnx model")), layers, "cpu", BackboneOptions{})
	check("garbage", err, ErrFormat)
	_, err = NewNetworkFeatureAggregator(BackboneFromBytes(nil), layers, "cpu", BackboneOptions{})
	check("empty", err, ErrFormat)
	_, err = NewNetworkFeatureAggregator(BackboneFromFile(filepath.Join(t.TempDir(), "none.onnx")), layers, "cpu", BackboneOptions{})
	check("missing file", err, ErrIO, "none.onnx")
	_, err = NewNetworkFeatureAggregator(BackboneSource{}, layers, "cpu", BackboneOptions{})
	check("zero source", err, ErrInvalidArgument)
	_, err = NewNetworkFeatureAggregator(file, layers, "cuda", BackboneOptions{})
	check("cuda on this runtime", err, ErrUnsupported, "CUDA")
	_, err = NewNetworkFeatureAggregator(file, layers, "tpu:0", BackboneOptions{})
	check("bad device", err, ErrInvalidArgument, "tpu:0")

	a := newMNV2(t, layers...)
	img := make([]float32, 3*224*224)
	_, err = a.Forward(Tensor{Shape: []int{3, 224, 224}, Data: img})
	check("rank 3 input", err, ErrInvalidArgument, "[3 224 224]")
	_, err = a.Forward(Tensor{Shape: []int{1, 1, 3, 224, 224}, Data: img})
	check("rank 5 input", err, ErrInvalidArgument)
	_, err = a.Forward(Tensor{Shape: []int{1, 224, 224, 3}, Data: img})
	check("channels last", err, ErrInvalidArgument)
	_, err = a.Forward(Tensor{Shape: []int{1, 3, 112, 448}, Data: img})
	check("other size than the fixed graph", err, ErrInvalidArgument)
	_, err = a.Forward(Tensor{Shape: []int{2, 3, 224, 224}, Data: img})
	check("data/shape mismatch", err, ErrInvalidArgument)
	_, err = a.Forward(Tensor{Shape: []int{0, 3, 224, 224}})
	check("empty batch", err, ErrInvalidArgument)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		x := slices.Clone(img)
		x[1234] = bad
		_, err = a.Forward(Tensor{Shape: []int{1, 3, 224, 224}, Data: x})
		check(fmt.Sprintf("%v in the input", bad), err, ErrInvalidArgument, "1234")
	}
	_, err = a.FeatureDimensions(3, 0, 224)
	check("empty dry-run size", err, ErrInvalidArgument)
	a.Close()
	a.Close()
	_, err = a.Forward(Tensor{Shape: []int{1, 3, 224, 224}, Data: img})
	check("forward after close", err, ErrState)
	var zero NetworkFeatureAggregator
	_, err = zero.Forward(Tensor{Shape: []int{1, 3, 224, 224}, Data: img})
	check("zero aggregator", err, ErrState)
	zero.Close()

	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	check("switching runtime after load", SetONNXRuntimeLibrary(other), ErrState, other)
}

// tinyBackbone is a one-node model: R = Relu(X) with X declared float[batch...]; F =
// Flatten(X) is a rank-2 tensor, declared in value_info only when declareF is set.
func tinyBackbone(input []any, declareF bool) []byte {
	g := onnxtest.Graph{
		Nodes: [][]byte{
			onnxtest.Node("relu", "Relu", []string{"X"}, []string{"R"}),
			onnxtest.Node("flat", "Flatten", []string{"X"}, []string{"F"}),
		},
		Inputs:  [][]byte{onnxtest.Value("X", onnxtest.Float, input)},
		Outputs: [][]byte{onnxtest.Value("R", onnxtest.Float, nil)},
	}
	if declareF {
		g.ValueInfo = [][]byte{onnxtest.Value("F", onnxtest.Float, []any{"batch", "n"})}
	}
	return onnxtest.Model(8, 13, g)
}

// rampImages is a [b,3,h,w] tensor with values of both signs.
func rampImages(b, h, w int) Tensor {
	x := NewTensor(b, 3, h, w)
	for i := range x.Data {
		x.Data[i] = float32(i%7) - 3
	}
	return x
}

// TestBackboneFixedBatch runs graphs whose batch dimension is fixed to 1 and to 2 on
// batches of 3: the images are run in chunks (the last one padded) and the maps are exact.
func TestBackboneFixedBatch(t *testing.T) {
	needORT(t)
	for _, fixed := range []int{1, 2} {
		a, err := NewNetworkFeatureAggregator(BackboneFromBytes(tinyBackbone([]any{fixed, 3, "h", "w"}, false)), []string{"R"}, "cpu", BackboneOptions{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		x := rampImages(3, 4, 5)
		maps, err := a.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		r := maps["R"]
		if !slices.Equal(r.Shape, x.Shape) {
			t.Fatalf("fixed batch %d: shape %v", fixed, r.Shape)
		}
		for i, v := range x.Data {
			if r.Data[i] != max(v, 0) {
				t.Fatalf("fixed batch %d: R[%d] = %v, want %v", fixed, i, r.Data[i], max(v, 0))
			}
		}
		a.Close()
	}
}

func TestBackboneLayerRank(t *testing.T) {
	needORT(t)
	input := []any{"batch", 3, "h", "w"}
	_, err := NewNetworkFeatureAggregator(BackboneFromBytes(tinyBackbone(input, true)), []string{"R", "F"}, "cpu", BackboneOptions{})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "F: float32[batch,n]") {
		t.Errorf("declared rank-2 layer: %v", err)
	}
	a, err := NewNetworkFeatureAggregator(BackboneFromBytes(tinyBackbone(input, false)), []string{"R", "F"}, "cpu", BackboneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Forward(rampImages(2, 3, 3))
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), `layer "F" has shape [2 27]`) {
		t.Errorf("undeclared rank-2 layer at forward: %v", err)
	}
}

func TestBackboneInputChecks(t *testing.T) {
	needORT(t)
	relu := onnxtest.Node("relu", "Relu", []string{"X"}, []string{"R"})
	two := onnxtest.Model(8, 13, onnxtest.Graph{
		Nodes:   [][]byte{onnxtest.Node("add", "Add", []string{"X", "Y"}, []string{"R"})},
		Inputs:  [][]byte{onnxtest.Value("X", onnxtest.Float, []any{1, 3, 4, 4}), onnxtest.Value("Y", onnxtest.Float, []any{1, 3, 4, 4})},
		Outputs: [][]byte{onnxtest.Value("R", onnxtest.Float, nil)},
	})
	model := func(elem int, dims []any) []byte {
		return onnxtest.Model(8, 13, onnxtest.Graph{
			Nodes:   [][]byte{relu},
			Inputs:  [][]byte{onnxtest.Value("X", elem, dims)},
			Outputs: [][]byte{onnxtest.Value("R", onnxtest.Float, nil)},
		})
	}
	cases := map[string][]byte{
		"two inputs":    two,
		"int64 input":   model(onnxtest.Int64, []any{1, 3, 4, 4}),
		"rank 3 input":  model(onnxtest.Float, []any{3, 4, 4}),
		"no shape":      model(onnxtest.Float, nil),
		"4 channels":    model(onnxtest.Float, []any{"b", 4, 4, 4}),
		"zero-size dim": model(onnxtest.Float, []any{"b", 3, 0, 4}),
	}
	for name, m := range cases {
		_, err := NewNetworkFeatureAggregator(BackboneFromBytes(m), []string{"R"}, "cpu", BackboneOptions{})
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "X") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A dynamic channel dimension is accepted.
	a, err := NewNetworkFeatureAggregator(BackboneFromBytes(model(onnxtest.Float, []any{"b", "c", 4, 4})), []string{"R"}, "cpu", BackboneOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	shapes, err := a.FeatureShapes(3, 4, 4)
	if err != nil || !slices.Equal(shapes, [][3]int{{3, 4, 4}}) {
		t.Errorf("FeatureShapes = %v, %v", shapes, err)
	}
	if _, err := a.Forward(rampImages(1, 5, 4)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("height 5 on a fixed height of 4: %v", err)
	}
}

// BenchmarkBackboneMNV2 times the MobileNetV2 trunk (block_6 and block_10 maps) per image.
func BenchmarkBackboneMNV2(b *testing.B) {
	a := newMNV2(b, block6, block10)
	x := mnv2Input(b)
	for _, batch := range []int{1, 8} {
		in := NewTensor(batch, 3, 224, 224)
		for i := 0; i < batch; i++ {
			copy(sliceBatch(in, i, i+1).Data, sliceBatch(x, i%4, i%4+1).Data)
		}
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			for b.Loop() {
				if _, err := a.ForwardOrdered(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N*batch), "ms/image")
		})
	}
}

// TestBackboneExternalData loads a model whose weights lie in a separate file: from the
// file they are found next to it; from bytes alone they cannot be.
func TestBackboneExternalData(t *testing.T) {
	needORT(t)
	scale := []float32{2, -1, 0.5}
	w, wFile := onnxtest.ExternalFloatTensor("W", []int64{1, 3, 1, 1}, scale, "weights.bin")
	model := onnxtest.Model(8, 13, onnxtest.Graph{
		Nodes:        [][]byte{onnxtest.Node("mul", "Mul", []string{"X", "W"}, []string{"R"})},
		Initializers: [][]byte{w},
		Inputs:       [][]byte{onnxtest.Value("X", onnxtest.Float, []any{"b", 3, "h", "w"})},
		Outputs:      [][]byte{onnxtest.Value("R", onnxtest.Float, []any{"b", 3, "h", "w"})},
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "scaled.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), wFile, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewNetworkFeatureAggregator(BackboneFromFile(path), []string{"R"}, "cpu", BackboneOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	x := rampImages(2, 2, 3)
	maps, err := a.ForwardOrdered(x)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Data {
		c := (i / 6) % 3
		if got := maps[0].Data[i]; got != v*scale[c] {
			t.Fatalf("R[%d] = %v, want %v", i, got, v*scale[c])
		}
	}
	_, err = NewNetworkFeatureAggregator(BackboneFromBytes(model), []string{"R"}, "cpu", BackboneOptions{Threads: 1})
	if !errors.Is(err, ErrBackend) {
		t.Errorf("external data without a directory: %v", err)
	}
}
