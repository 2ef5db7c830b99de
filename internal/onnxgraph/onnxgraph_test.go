package onnxgraph

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
	"github.com/libpatchcore/libpatchcore/internal/onnxgraph/onnxtest"
	"github.com/libpatchcore/libpatchcore/internal/ort"
)

const mnv2File = "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"

func TestMain(m *testing.M) {
	if os.Getenv(ort.EnvLibrary) == "" {
		_, file, _, _ := runtime.Caller(0)
		lib := filepath.Join(filepath.Dir(file), "..", "..", ".deps", "lib", ort.Soname)
		if _, err := os.Stat(lib); err == nil {
			os.Setenv(ort.EnvLibrary, lib)
		}
	}
	os.Exit(m.Run())
}

func readMNV2(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(golden.Path(t, mnv2File))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOnnxParseMNV2 checks the parse of the golden trunk against its README description.
func TestOnnxParseMNV2(t *testing.T) {
	m, err := Parse(readMNV2(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Opsets[""] != 13 {
		t.Errorf("opset %v, want 13", m.Opsets)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].String() != "input: float32[batch,3,224,224]" {
		t.Errorf("inputs %v", m.Inputs)
	}
	var outs []string
	for _, o := range m.Outputs {
		outs = append(outs, o.String())
	}
	want := []string{"block_6_expand_relu: float32[batch,192,28,28]", "block_10_expand_relu: float32[batch,384,14,14]"}
	if !slices.Equal(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
	if len(m.Nodes) != 62 {
		t.Errorf("%d nodes, want 62", len(m.Nodes))
	}
	ops := map[string]bool{}
	for _, n := range m.Nodes {
		ops[n.OpType] = true
	}
	if len(ops) != 4 || !ops["Conv"] || !ops["Clip"] || !ops["Add"] || !ops["Pad"] {
		t.Errorf("op types %v, want Conv Clip Add Pad", ops)
	}
	names := m.NodeOutputs()
	if len(names) != 62 || names[len(names)-1] != "block_10_expand_relu" {
		t.Errorf("node outputs: %d, last %q", len(names), names[len(names)-1])
	}
	p := m.Nodes[len(m.Nodes)-1]
	if !m.Produced(p.Outputs[0]) || p.OpType != "Clip" || p.Inputs[0] != "/block_10_expand/Conv_output_0" {
		t.Errorf("producer of block_10_expand_relu: %+v", p)
	}
	for _, init := range m.Initializers {
		if m.Produced(init) {
			t.Errorf("initializer %q listed as a node output", init)
		}
	}
	if !m.IsOutput("block_6_expand_relu") || m.IsOutput("/block_10_expand/Conv_output_0") {
		t.Error("IsOutput wrong")
	}
}

func outputNames(m *Model) []string {
	var names []string
	for _, o := range m.Outputs {
		names = append(names, o.Name)
	}
	return names
}

func TestOnnxSetOutputsMNV2(t *testing.T) {
	data := readMNV2(t)
	orig := bytes.Clone(data)
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	same, err := m.SetOutputs("block_6_expand_relu", "block_10_expand_relu", "block_6_expand_relu")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(same, data) {
		t.Error("asking for the existing outputs changed the model bytes")
	}
	added := []string{"/block_10_expand/Conv_output_0", "/block_9_add/Add_output_0"}
	out, err := m.SetOutputs(added[0], "block_6_expand_relu", added[1], added[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, orig) {
		t.Fatal("SetOutputs modified its input")
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outputNames(m2), []string{added[0], "block_6_expand_relu", added[1]}; !slices.Equal(got, want) {
		t.Errorf("outputs after SetOutputs: %v, want %v", got, want)
	}
	if got := m2.Outputs[1].String(); got != "block_6_expand_relu: float32[batch,192,28,28]" {
		t.Errorf("kept output lost its declaration: %s", got)
	}
	if got := m2.Outputs[0].String(); got != added[0]+": (no type)" {
		t.Errorf("new output without value_info: %s", got)
	}
	if !slices.EqualFunc(m2.Nodes, m.Nodes, func(a, b Node) bool {
		return a.Name == b.Name && a.OpType == b.OpType && slices.Equal(a.Inputs, b.Inputs) && slices.Equal(a.Outputs, b.Outputs)
	}) || !slices.Equal(m2.Initializers, m.Initializers) || m2.IRVersion != m.IRVersion || m2.Opsets[""] != 13 ||
		len(m2.Inputs) != 1 || m2.Inputs[0].String() != m.Inputs[0].String() {
		t.Error("rewrite changed nodes, initializers, inputs, opsets or the IR version")
	}
	if !bytes.Equal(out[:m.graphStart], data[:m.graphStart]) || !bytes.HasSuffix(out, data[m.graphEnd:]) {
		t.Error("rewrite changed bytes outside the graph")
	}
	for _, bad := range [][]string{{"no_such_tensor"}, {"block_6_expand_relu", m.Initializers[0]}, {"input"}} {
		_, err = m.SetOutputs(bad...)
		if !errors.Is(err, ErrUnknownTensor) || !strings.Contains(err.Error(), bad[len(bad)-1]) {
			t.Errorf("SetOutputs(%q): %v", bad, err)
		}
	}
	if _, err := m.SetOutputs(); !errors.Is(err, ErrUnknownTensor) {
		t.Errorf("SetOutputs(): %v", err)
	}
}

func TestOnnxTinyModelTypes(t *testing.T) {
	m, err := Parse(tinyModel())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].String() != "X: float32[N,2]" {
		t.Errorf("inputs %v", m.Inputs)
	}
	if !slices.Equal(m.Initializers, []string{"W"}) {
		t.Errorf("initializers %v", m.Initializers)
	}
	out, err := m.SetOutputs("Z", "Y", "S")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m2.Outputs) != 3 || m2.Outputs[0].String() != "Z: float32[N,2]" || m2.Outputs[1].String() != "Y: float32[N,2]" ||
		m2.Outputs[2].String() != "S: (no type)" {
		t.Errorf("outputs %v", m2.Outputs)
	}
	if v, ok := m2.Info("Y"); !ok || !v.HasShape || v.Shape[0].Param != "N" || !v.Shape[1].Known || v.Shape[1].Value != 2 {
		t.Errorf("Info(Y) = %+v", v)
	}
	if _, ok := m2.Info("S"); !ok {
		t.Error("Info(S) after exposing it")
	}
	if _, ok := m.Info("S"); ok {
		t.Error("Info(S) before exposing it")
	}
}

// TestOnnxAddedOutputsRunInORT checks that ONNX Runtime accepts the rewritten model, with a
// typed added output (from value_info) and an untyped one of another element type.
func TestOnnxAddedOutputsRunInORT(t *testing.T) {
	if _, err := ort.Init(); err != nil {
		t.Skipf("ONNX Runtime not available: %v", err)
	}
	m, err := Parse(tinyModel())
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.SetOutputs("Z", "Y", "S")
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{1, -1, 2, 3, 0.5, 4}
	s, err := ort.NewSession(out, []string{"X"}, []string{"Z", "Y"}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Run([]ort.Tensor{{Shape: []int64{3, 2}, Data: x}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 2; j++ {
			y := x[2*i]*tinyWeights[j] + x[2*i+1]*tinyWeights[2+j]
			if got := res[1].Data[2*i+j]; got != y {
				t.Errorf("Y[%d,%d] = %v, want %v", i, j, got, y)
			}
			if got := res[0].Data[2*i+j]; got != max(y, 0) {
				t.Errorf("Z[%d,%d] = %v, want %v", i, j, got, max(y, 0))
			}
		}
	}
	// S is int64: ORT inferred its type, and the float-only Run reports it clearly.
	s2, err := ort.NewSession(out, []string{"X"}, []string{"S"}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.Run([]ort.Tensor{{Shape: []int64{3, 2}, Data: x}})
	if err == nil || !strings.Contains(err.Error(), "not a float32 tensor") {
		t.Errorf("int64 output: %v", err)
	}
}

func TestOnnxMalformed(t *testing.T) {
	good := tinyModel()
	m, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	relu := onnxtest.Node("n", "Relu", []string{"X"}, []string{"Y"})
	cases := map[string][]byte{
		"empty":              nil,
		"no graph":           varintField(nil, 1, 8),
		"no ir_version":      msgField(nil, 7, m.graphValue),
		"two graphs":         msgField(good, 7, m.graphValue),
		"bad tag":            {0x00, 0x01},
		"end group":          {0x0c},
		"graph as int":       varintField(varintField(nil, 1, 8), 7, 3),
		"empty graph":        msgField(varintField(nil, 1, 8), 7, nil),
		"negative dim":       onnxtest.Model(8, 13, onnxtest.Graph{Nodes: [][]byte{onnxtest.Node("n", "Relu", []string{"X"}, []string{"Y"})}, Inputs: [][]byte{onnxtest.Value("X", onnxtest.Float, []any{-1})}}),
		"nameless input":     onnxtest.Model(8, 13, onnxtest.Graph{Nodes: [][]byte{relu}, Inputs: [][]byte{onnxtest.Value("", onnxtest.Float, nil)}}),
		"duplicate producer": onnxtest.Model(8, 13, onnxtest.Graph{Nodes: [][]byte{relu, relu}}),
		"node without op":    onnxtest.Model(8, 13, onnxtest.Graph{Nodes: [][]byte{onnxtest.Node("n", "", []string{"X"}, []string{"Y"})}}),
		"node without out":   onnxtest.Model(8, 13, onnxtest.Graph{Nodes: [][]byte{onnxtest.Node("n", "Relu", []string{"X"}, nil)}}),
		"text":               []byte("this is not an ONNX model, just some text that happens to be here"),
	}
	for name, data := range cases {
		if _, err := Parse(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// Every truncation that cuts into the graph fails; none panics.
	for n := 0; n < len(good); n++ {
		_, err := Parse(good[:n])
		if n > m.graphStart && n < m.graphEnd && err == nil {
			t.Errorf("truncated to %d bytes (inside the graph): parsed without error", n)
		}
	}
	// Random bytes and random corruptions of a valid model never panic.
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := bytes.Clone(good)
		for k := 0; k < 1+rng.Intn(4); k++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		if pm, err := Parse(b); err == nil {
			exercise(t, pm)
		}
	}
}

// exercise calls every accessor and rewrites the model's outputs to all its node outputs,
// checking that the rewrite parses again with exactly those outputs.
func exercise(t *testing.T, m *Model) {
	for _, v := range append(append(append([]ValueInfo{}, m.Inputs...), m.Outputs...), m.ValueInfo...) {
		_ = v.String()
		m.Info(v.Name)
	}
	names := m.NodeOutputs()
	if len(names) == 0 {
		return
	}
	out, err := m.SetOutputs(names...)
	if err != nil {
		t.Fatalf("SetOutputs(node outputs): %v", err)
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("rewritten model does not parse: %v", err)
	}
	if got := outputNames(m2); !slices.Equal(got, names) {
		t.Fatalf("rewritten outputs %v, want %v", got, names)
	}
}

func FuzzParse(f *testing.F) {
	good := tinyModel()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(onnxtest.Model(3, 7, onnxtest.Graph{Nodes: [][]byte{onnxtest.Node("n", "Relu", []string{"X"}, []string{"Y"})}}))
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		exercise(t, m)
	})
}
