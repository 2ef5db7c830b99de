package onnxbuild

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// msg is a decoded protobuf message: field number -> values (varints as uint64,
// length-delimited fields as []byte), in wire order.
type msg map[protowire.Number][]any

func decode(t *testing.T, b []byte) msg {
	t.Helper()
	m := msg{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				t.Fatal("bad varint")
			}
			m[num] = append(m[num], v)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				t.Fatal("bad length-delimited field")
			}
			m[num] = append(m[num], v)
			b = b[n:]
		default:
			t.Fatalf("unexpected wire type %v for field %d", typ, num)
		}
	}
	return m
}

func (m msg) str(num protowire.Number) string {
	if len(m[num]) == 0 {
		return ""
	}
	return string(m[num][0].([]byte))
}

func (m msg) strs(num protowire.Number) []string {
	var out []string
	for _, v := range m[num] {
		out = append(out, string(v.([]byte)))
	}
	return out
}

func (m msg) varint(num protowire.Number) uint64 {
	if len(m[num]) == 0 {
		return 0
	}
	return m[num][0].(uint64)
}

func packedVarints(t *testing.T, b []byte) []int64 {
	var out []int64
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			t.Fatal("bad packed varint")
		}
		out = append(out, int64(v))
		b = b[n:]
	}
	return out
}

func sample() *Model {
	return &Model{
		Opset:        13,
		ProducerName: "test",
		DocString:    "doc",
		Metadata:     []KeyValue{{Key: "k", Value: "v"}},
		Graph: Graph{
			Name: "g",
			Nodes: []Node{
				{Name: "pad", OpType: "Pad", Inputs: []string{"x", "pads"}, Outputs: []string{"p"}},
				{Name: "conv", OpType: "Conv", Inputs: []string{"p", "w", ""}, Outputs: []string{"y"},
					Attrs: []Attr{IntsAttr("pads", 0, 1, 300, 0), IntAttr("group", 2), IntsAttr("empty")}},
			},
			Initializers: []Tensor{
				{Name: "pads", Dims: []int64{8}, Int64s: []int64{0, 0, 0, 0, 0, 0, 1, -1}},
				{Name: "w", Dims: []int64{2, 1, 1, 1}, Float32: []float32{1.5, -2}},
				{Name: "s", Float32: []float32{6}},
			},
			Inputs:  []ValueInfo{{Name: "x", ElemType: Float, Dims: []Dim{{Param: "batch"}, {Value: 2}, {Value: 3}, {Value: 3}}}},
			Outputs: []ValueInfo{{Name: "y", ElemType: Float, Dims: []Dim{{Param: "batch"}, {Value: 2}, {Value: 4}, {Value: 4}}}},
		},
	}
}

// TestMarshalWireFormat decodes the bytes with the field numbers of onnx.proto and
// checks every field the writer emits.
func TestMarshalWireFormat(t *testing.T) {
	b, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	model := decode(t, b)
	if model.varint(1) != 7 || model.str(2) != "test" || model.str(6) != "doc" {
		t.Errorf("ir_version %d, producer %q, doc %q", model.varint(1), model.str(2), model.str(6))
	}
	opset := decode(t, model[8][0].([]byte))
	if opset.str(1) != "" || opset.varint(2) != 13 {
		t.Errorf("opset import domain %q version %d", opset.str(1), opset.varint(2))
	}
	meta := decode(t, model[14][0].([]byte))
	if meta.str(1) != "k" || meta.str(2) != "v" {
		t.Errorf("metadata %q=%q", meta.str(1), meta.str(2))
	}
	graph := decode(t, model[7][0].([]byte))
	if graph.str(2) != "g" || len(graph[1]) != 2 || len(graph[5]) != 3 {
		t.Fatalf("graph name %q, %d nodes, %d initializers", graph.str(2), len(graph[1]), len(graph[5]))
	}
	conv := decode(t, graph[1][1].([]byte))
	if conv.str(3) != "conv" || conv.str(4) != "Conv" || !reflect.DeepEqual(conv.strs(1), []string{"p", "w", ""}) ||
		!reflect.DeepEqual(conv.strs(2), []string{"y"}) || len(conv[5]) != 3 {
		t.Errorf("conv node: name %q op %q inputs %q outputs %q attrs %d", conv.str(3), conv.str(4), conv.strs(1), conv.strs(2), len(conv[5]))
	}
	pads := decode(t, conv[5][0].([]byte))
	if pads.str(1) != "pads" || pads.varint(20) != 7 || !reflect.DeepEqual(packedVarints(t, pads[8][0].([]byte)), []int64{0, 1, 300, 0}) {
		t.Errorf("pads attribute: %v", pads)
	}
	group := decode(t, conv[5][1].([]byte))
	if group.str(1) != "group" || group.varint(20) != 2 || group.varint(3) != 2 {
		t.Errorf("group attribute: %v", group)
	}
	empty := decode(t, conv[5][2].([]byte))
	if empty.varint(20) != 7 || len(empty[8]) != 1 || len(empty[8][0].([]byte)) != 0 {
		t.Errorf("empty INTS attribute: %v", empty)
	}

	padsInit := decode(t, graph[5][0].([]byte))
	raw := padsInit[9][0].([]byte)
	if padsInit.str(8) != "pads" || padsInit.varint(2) != 7 || !reflect.DeepEqual(packedVarints(t, padsInit[1][0].([]byte)), []int64{8}) || len(raw) != 64 {
		t.Errorf("pads initializer: %v", padsInit)
	} else if int64(binary.LittleEndian.Uint64(raw[56:])) != -1 {
		t.Errorf("pads[7] = %d, want -1", int64(binary.LittleEndian.Uint64(raw[56:])))
	}
	w := decode(t, graph[5][1].([]byte))
	wraw := w[9][0].([]byte)
	if w.varint(2) != 1 || !reflect.DeepEqual(packedVarints(t, w[1][0].([]byte)), []int64{2, 1, 1, 1}) ||
		math.Float32frombits(binary.LittleEndian.Uint32(wraw[4:])) != -2 {
		t.Errorf("weight initializer: %v", w)
	}
	scalar := decode(t, graph[5][2].([]byte))
	if len(scalar[1]) != 0 || len(scalar[9][0].([]byte)) != 4 {
		t.Errorf("scalar initializer should have no dims and 4 bytes: %v", scalar)
	}

	in := decode(t, graph[11][0].([]byte))
	typ := decode(t, in[2][0].([]byte))
	tensorType := decode(t, typ[1][0].([]byte))
	shape := decode(t, tensorType[2][0].([]byte))
	if in.str(1) != "x" || tensorType.varint(1) != 1 || len(shape[1]) != 4 {
		t.Fatalf("input value info: %v", in)
	}
	if d0 := decode(t, shape[1][0].([]byte)); d0.str(2) != "batch" {
		t.Errorf("batch dimension: %v", d0)
	}
	if d1 := decode(t, shape[1][1].([]byte)); d1.varint(1) != 2 || len(d1[2]) != 0 {
		t.Errorf("channel dimension: %v", d1)
	}
	if out := decode(t, graph[12][0].([]byte)); out.str(1) != "y" {
		t.Errorf("output value info: %v", out)
	}
}

func TestMarshalValidates(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *Model)
		msg    string
	}{
		{"opset", func(m *Model) { m.Opset = 0 }, "opset"},
		{"undefined input", func(m *Model) { m.Graph.Nodes[1].Inputs[0] = "nope" }, `"nope"`},
		{"nodes out of order", func(m *Model) { m.Graph.Nodes[0], m.Graph.Nodes[1] = m.Graph.Nodes[1], m.Graph.Nodes[0] }, `reads "p"`},
		{"duplicate tensor", func(m *Model) { m.Graph.Nodes[1].Outputs[0] = "p" }, "defined twice"},
		{"initializer shadows input", func(m *Model) { m.Graph.Initializers[2].Name = "x" }, "defined twice"},
		{"size mismatch", func(m *Model) { m.Graph.Initializers[1].Dims = []int64{3, 1, 1, 1} }, "2 values"},
		{"both data kinds", func(m *Model) { m.Graph.Initializers[1].Int64s = []int64{1, 2} }, "exactly one"},
		{"no data", func(m *Model) { m.Graph.Initializers[2].Float32 = nil }, "exactly one"},
		{"negative dim", func(m *Model) { m.Graph.Initializers[1].Dims = []int64{-2, -1, 1, 1} }, "bad dimensions"},
		{"no outputs", func(m *Model) { m.Graph.Outputs = nil }, "no graph outputs"},
		{"undefined output", func(m *Model) { m.Graph.Outputs[0].Name = "z" }, `"z" is not defined`},
		{"duplicate output", func(m *Model) { m.Graph.Outputs = append(m.Graph.Outputs, m.Graph.Outputs[0]) }, "listed twice"},
		{"bad elem type", func(m *Model) { m.Graph.Inputs[0].ElemType = 3 }, "element type"},
		{"no op type", func(m *Model) { m.Graph.Nodes[0].OpType = "" }, "no op type"},
		{"duplicate node name", func(m *Model) { m.Graph.Nodes[1].Name = "pad" }, "used twice"},
		{"node without outputs", func(m *Model) { m.Graph.Nodes[1].Outputs = nil; m.Graph.Outputs[0].Name = "p" }, "no outputs"},
		{"unnamed attribute", func(m *Model) { m.Graph.Nodes[1].Attrs[0].Name = "" }, "attribute without a name"},
		{"unnamed initializer", func(m *Model) { m.Graph.Initializers[0].Name = "" }, "without a name"},
	}
	for _, tc := range cases {
		m := sample()
		tc.change(m)
		_, err := m.Marshal()
		if !errors.Is(err, errs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want ErrInvalidArgument mentioning %q", tc.name, err, tc.msg)
		}
	}
}
