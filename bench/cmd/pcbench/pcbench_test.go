package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/onnxgraph/onnxtest"
)

// TestMain points the ONNX Runtime loader at the runtime scripts/install-deps.sh installs,
// unless $PATCHCORE_ORT_LIBRARY is set.
func TestMain(m *testing.M) {
	if os.Getenv("PATCHCORE_ORT_LIBRARY") == "" {
		_, file, _, _ := runtime.Caller(0)
		lib := filepath.Join(filepath.Dir(file), "..", "..", "..", ".deps", "lib", "libonnxruntime.so.1")
		if _, err := os.Stat(lib); err == nil {
			os.Setenv("PATCHCORE_ORT_LIBRARY", lib)
		}
	}
	os.Exit(m.Run())
}

// convModel is X [b,3,h,w], at 8×8: X [1,3,8,8] → Conv 3×3 (4 filters, no padding) → A [1,4,6,6] → Relu → B →
// Conv 1×1 (2 filters) → L [1,2,6,6] → Conv 1×1 (5 filters) → Z, the last one past the
// feature layer L.
func convModel() []byte {
	return onnxtest.Model(8, 13, onnxtest.Graph{
		Nodes: [][]byte{
			onnxtest.Node("c1", "Conv", []string{"X", "W1"}, []string{"A"}),
			onnxtest.Node("r", "Relu", []string{"A"}, []string{"B"}),
			onnxtest.Node("c2", "Conv", []string{"B", "W2"}, []string{"L"}),
			onnxtest.Node("c3", "Conv", []string{"L", "W3"}, []string{"Z"}),
		},
		Initializers: [][]byte{
			onnxtest.FloatTensor("W1", []int64{4, 3, 3, 3}, make([]float32, 4*3*3*3)),
			onnxtest.FloatTensor("W2", []int64{2, 4, 1, 1}, make([]float32, 2*4)),
			onnxtest.FloatTensor("W3", []int64{5, 2, 1, 1}, make([]float32, 5*2)),
		},
		Inputs:  [][]byte{onnxtest.Value("X", onnxtest.Float, []any{"b", 3, "h", "w"})},
		Outputs: [][]byte{onnxtest.Value("Z", onnxtest.Float, nil)},
	})
}

// The backbone count is 2·outputs·(Cin·kh·kw) summed over the convolutions that feed the
// layer, computed here by hand: 2·(4·6·6)·(3·3·3) + 2·(2·6·6)·(4·1·1) = 7776 + 576.
func TestCountBackboneConvs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convs.onnx")
	if err := os.WriteFile(path, convModel(), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := countBackbone(path, []string{"L"}, 8, 1)
	if errors.Is(err, core.ErrUnsupported) {
		t.Skipf("ONNX Runtime not available: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if w.FLOPs != 7776+576 || w.Convs != 2 || len(w.Uncounted) != 0 {
		t.Errorf("got %+v, want 8352 FLOPs over 2 convolutions", w)
	}
	// A larger input scales every output map: 10×10 → 8×8 outputs.
	if w, err = countBackbone(path, []string{"L"}, 10, 1); err != nil || w.FLOPs != 2*4*64*27+2*2*64*4 {
		t.Errorf("10×10: %+v, %v", w, err)
	}
}

// Dims are read whether the encoder packs them or not, and Constant nodes count.
func TestInitializerDims(t *testing.T) {
	var packed []byte
	for _, d := range []uint64{7, 1, 300} {
		packed = protowire.AppendVarint(packed, d)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.BytesType)
	tensor = protowire.AppendBytes(tensor, packed)
	tensor = protowire.AppendTag(tensor, 8, protowire.BytesType)
	tensor = protowire.AppendString(tensor, "P")
	var attr []byte
	attr = protowire.AppendTag(attr, 1, protowire.BytesType)
	attr = protowire.AppendString(attr, "value")
	attr = protowire.AppendTag(attr, 5, protowire.BytesType)
	attr = protowire.AppendBytes(attr, onnxtest.FloatTensor("", []int64{3, 2}, make([]float32, 6)))
	node := onnxtest.Node("k", "Constant", nil, []string{"K"})
	node = protowire.AppendTag(node, 5, protowire.BytesType)
	node = protowire.AppendBytes(node, attr)
	var graph []byte
	graph = protowire.AppendTag(graph, 5, protowire.BytesType)
	graph = protowire.AppendBytes(graph, tensor)
	graph = protowire.AppendTag(graph, 5, protowire.BytesType)
	graph = protowire.AppendBytes(graph, onnxtest.FloatTensor("U", []int64{2, 4, 1, 1}, make([]float32, 8)))
	graph = protowire.AppendTag(graph, 1, protowire.BytesType)
	graph = protowire.AppendBytes(graph, node)
	var model []byte
	model = protowire.AppendTag(model, 7, protowire.BytesType)
	model = protowire.AppendBytes(model, graph)
	dims, err := initializerDims(model)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int64{"P": {7, 1, 300}, "U": {2, 4, 1, 1}, "K": {3, 2}}
	for name, d := range want {
		if !slices.Equal(dims[name], d) {
			t.Errorf("%s: dims %v, want %v", name, dims[name], d)
		}
	}
	if _, err := initializerDims([]byte{0x3a, 0x05, 0x01}); err == nil {
		t.Error("a truncated graph field was accepted")
	}
}

// Hand-computed analytic counts for small geometries.
func TestAnalyticFLOPs(t *testing.T) {
	// One 2×2 grid, layers of 1 and 2 channels, patch size 1, 4 → 3 dims: per patch
	// layer 0: 1 + 4, layer 1: 2 + 4 + 6·2, aggregator: 2·4 + 3 → 34; 4 patches.
	if got := embedFLOPs([][3]int{{1, 2, 2}, {2, 1, 1}}, 1, 4, 3); got != 4*34 {
		t.Errorf("embedFLOPs = %v, want %v", got, 4*34)
	}
	p, g := coresetFLOPs(100, 64, 8, 10, 5)
	if p != 2*100*64*8 || g != (10+4)*100*(2*8+4) {
		t.Errorf("coresetFLOPs = %v, %v", p, g)
	}
	if p, _ := coresetFLOPs(100, 8, 8, 10, 5); p != 0 {
		t.Errorf("no projection when D equals the projection size, got %v", p)
	}
	if got := searchFLOPs(784, 4704, 1024); got != 2*784*4704*1024 {
		t.Errorf("searchFLOPs = %v", got)
	}
	// sigma 4: radius 16, 33 taps; 2×2 grid to 4×4: resize 3·(2·4) + 3·16, blur 2·2·33·16.
	if got := segmentFLOPs(2, 2, 4, 4); got != 3*8+3*16+2*2*33*16 {
		t.Errorf("segmentFLOPs = %v", got)
	}
}

func TestMeanMedianP90(t *testing.T) {
	v := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	mean, median, p90 := meanMedianP90(v)
	if mean != 5.5 || median != 5.5 || p90 != 9 {
		t.Errorf("got %v %v %v, want 5.5 5.5 9", mean, median, p90)
	}
	if mean, median, p90 := meanMedianP90([]float64{3}); mean != 3 || median != 3 || p90 != 3 {
		t.Errorf("one value: %v %v %v", mean, median, p90)
	}
	if v[0] != 10 {
		t.Error("input reordered")
	}
}

// The test subset keeps every kind represented, in order.
func TestTestSetSpread(t *testing.T) {
	s := &setup{train: []string{"t0", "t1", "t2"}, distinct: 2}
	for i := 0; i < 12; i++ {
		s.test = append(s.test, string(rune('a'+i)))
		s.testLabels = append(s.testLabels, i >= 6)
	}
	paths, labels := s.testSet(4)
	if !slices.Equal(paths, []string{"a", "d", "g", "j"}) || !slices.Equal(labels, []bool{false, false, true, true}) {
		t.Errorf("got %v %v", paths, labels)
	}
	if paths, _ := s.testSet(20); len(paths) != 12 {
		t.Errorf("a large limit keeps all %d, got %d", 12, len(paths))
	}
	s.test, s.testLabels = nil, nil
	if paths, labels := s.testSet(5); !slices.Equal(paths, []string{"t0", "t1"}) || labels != nil {
		t.Errorf("without a test set: %v %v", paths, labels)
	}
}

func TestParseTriple(t *testing.T) {
	if v, err := parseTriple("0.5"); err != nil || v != [3]float32{0.5, 0.5, 0.5} {
		t.Errorf("one value: %v %v", v, err)
	}
	if v, err := parseTriple("0.1, 0.2,0.3"); err != nil || v != [3]float32{0.1, 0.2, 0.3} {
		t.Errorf("three values: %v %v", v, err)
	}
	for _, bad := range []string{"", "1,2", "a,b,c", "1,2,3,4"} {
		if _, err := parseTriple(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Repeated runs merge into the best time of each figure and the largest peak RSS.
func TestMergeFits(t *testing.T) {
	a := fitResult{Backbone: "m", Images: 60, Percentage: 0.1, NN: "exact", FitSeconds: 5, Batch1MedMs: 80, Batch8IPS: 10, FitRSSMiB: 900}
	a.Machine.LoadBefore[0], a.Machine.LoadAfter[0] = 3, 2
	b := a
	b.FitSeconds, b.Batch1MedMs, b.Batch8IPS, b.FitRSSMiB = 4, 90, 12, 950
	b.Machine.LoadBefore[0], b.Machine.LoadAfter[0] = 6, 5
	c := a
	c.Images = 200
	got := mergeFits([]fitResult{a, b, c})
	if len(got) != 2 || got[0].Runs != 2 || got[1].Runs != 1 {
		t.Fatalf("merged into %d rows: %+v", len(got), got)
	}
	m := got[0]
	if m.FitSeconds != 4 || m.Batch1MedMs != 80 || m.Batch8IPS != 12 || m.FitRSSMiB != 950 {
		t.Errorf("merged %+v", m)
	}
	if m.Machine.LoadBefore[0] != 2 || m.Machine.LoadAfter[0] != 6 {
		t.Errorf("load range %v–%v, want 2–6", m.Machine.LoadBefore[0], m.Machine.LoadAfter[0])
	}
}

// The plain and pruned coreset loop times of a merged row come from one run.
func TestMergeStagesKeepsGreedyPairs(t *testing.T) {
	a := stagesResult{Backbone: "m", Images: 60, Percentage: 0.1, CoresetS: 5, GreedyFastS: 3, GreedyPlainS: 20, GreedySame: true}
	b := a
	b.CoresetS, b.GreedyFastS, b.GreedyPlainS = 4, 4, 9
	got := mergeStages([]stagesResult{a, b})
	if len(got) != 1 || got[0].Runs != 2 {
		t.Fatalf("merged into %+v", got)
	}
	if m := got[0]; m.CoresetS != 4 || m.GreedyFastS != 4 || m.GreedyPlainS != 9 || !m.GreedySame {
		t.Errorf("merged %+v", m)
	}
}
