// Package onnxbuild writes ONNX models (ModelProto, protobuf wire format) for the
// small, inference-only graphs that libpatchcore builds itself: float32 and int64
// initializers, nodes of the default ONNX domain with integer attributes, and graph
// inputs/outputs with static or named (dynamic) dimensions.
//
// Marshal checks the graph before encoding it: unique names, initializer sizes that
// match their dimensions, and nodes in topological order (every node input is a graph
// input, an initializer or the output of an earlier node).
package onnxbuild

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// IRVersion is the ONNX IR version written into every model (IR 7 accompanies opset 13).
const IRVersion = 7

// Element types of TensorProto.DataType used by this package.
const (
	// Float is TensorProto.FLOAT (float32).
	Float int32 = 1
	// Float16 is TensorProto.FLOAT16, for graph inputs and outputs only (initializers hold
	// Float or Int64 data).
	Float16 int32 = 10
	// Int64 is TensorProto.INT64.
	Int64 int32 = 7
)

// Model is an ONNX model with a single graph and one default-domain opset import.
type Model struct {
	Graph           Graph
	Opset           int64  // version of the default ("ai.onnx") operator set
	ProducerName    string // ModelProto.producer_name
	ProducerVersion string // ModelProto.producer_version
	DocString       string // ModelProto.doc_string
	Metadata        []KeyValue
}

// KeyValue is one entry of ModelProto.metadata_props.
type KeyValue struct {
	Key, Value string
}

// Graph is a GraphProto: nodes in topological order, constant initializers and the
// graph's inputs and outputs.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node is a NodeProto of the default domain.
type Node struct {
	Name    string
	OpType  string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// Attr is an integer (AttributeProto.INT) or integer-list (AttributeProto.INTS) node
// attribute. A nil Ints makes it an INT attribute holding Int.
type Attr struct {
	Name string
	Int  int64
	Ints []int64
}

// IntAttr returns an INT attribute.
func IntAttr(name string, v int64) Attr { return Attr{Name: name, Int: v} }

// IntsAttr returns an INTS attribute. An empty list is written as an empty INTS attribute.
func IntsAttr(name string, v ...int64) Attr {
	if v == nil {
		v = []int64{}
	}
	return Attr{Name: name, Ints: v}
}

// Tensor is an initializer. Exactly one of Float32 and Int64s holds its data, in
// row-major order; Dims may be empty for a scalar.
type Tensor struct {
	Name    string
	Dims    []int64
	Float32 []float32
	Int64s  []int64
}

// Dim is one dimension of a ValueInfo: a fixed size, or, when Param is not empty, a
// named dynamic dimension (dim_param).
type Dim struct {
	Value int64
	Param string
}

// ValueInfo describes a graph input or output tensor.
type ValueInfo struct {
	Name     string
	ElemType int32 // Float, Float16 or Int64
	Dims     []Dim
}

// Marshal validates the model and encodes it as a serialized ModelProto.
func (m *Model) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType) // ir_version
	b = protowire.AppendVarint(b, IRVersion)
	b = appendString(b, 2, m.ProducerName)
	b = appendString(b, 3, m.ProducerVersion)
	b = appendString(b, 6, m.DocString)
	b = appendMessage(b, 7, m.Graph.encode())
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType) // OperatorSetIdProto.version; domain "" = ai.onnx
	opset = protowire.AppendVarint(opset, uint64(m.Opset))
	b = appendMessage(b, 8, opset)
	for _, kv := range m.Metadata {
		var e []byte
		e = appendString(e, 1, kv.Key)
		e = appendString(e, 2, kv.Value)
		b = appendMessage(b, 14, e)
	}
	return b, nil
}

func (m *Model) validate() error {
	if m.Opset <= 0 {
		return fmt.Errorf("%w: onnx model: opset version %d must be positive", errs.ErrInvalidArgument, m.Opset)
	}
	g := &m.Graph
	defined := map[string]string{} // tensor name -> what defines it
	define := func(name, what string) error {
		if name == "" {
			return fmt.Errorf("%w: onnx graph: %s has an empty name", errs.ErrInvalidArgument, what)
		}
		if prev, ok := defined[name]; ok {
			return fmt.Errorf("%w: onnx graph: tensor %q defined twice (%s and %s)", errs.ErrInvalidArgument, name, prev, what)
		}
		defined[name] = what
		return nil
	}
	for _, in := range g.Inputs {
		if err := in.validate(); err != nil {
			return err
		}
		if err := define(in.Name, "graph input"); err != nil {
			return err
		}
	}
	for i := range g.Initializers {
		t := &g.Initializers[i]
		if err := t.validate(); err != nil {
			return err
		}
		if err := define(t.Name, "initializer"); err != nil {
			return err
		}
	}
	nodeNames := map[string]bool{}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if n.OpType == "" {
			return fmt.Errorf("%w: onnx graph: node %d (%q) has no op type", errs.ErrInvalidArgument, i, n.Name)
		}
		if n.Name != "" {
			if nodeNames[n.Name] {
				return fmt.Errorf("%w: onnx graph: node name %q used twice", errs.ErrInvalidArgument, n.Name)
			}
			nodeNames[n.Name] = true
		}
		for _, in := range n.Inputs {
			if in == "" {
				continue // an omitted optional input
			}
			if _, ok := defined[in]; !ok {
				return fmt.Errorf("%w: onnx graph: node %q reads %q, which no graph input, initializer or earlier node defines",
					errs.ErrInvalidArgument, n.Name, in)
			}
		}
		if len(n.Outputs) == 0 {
			return fmt.Errorf("%w: onnx graph: node %q has no outputs", errs.ErrInvalidArgument, n.Name)
		}
		for _, out := range n.Outputs {
			if err := define(out, "output of node "+n.Name); err != nil {
				return err
			}
		}
		for _, a := range n.Attrs {
			if a.Name == "" {
				return fmt.Errorf("%w: onnx graph: node %q has an attribute without a name", errs.ErrInvalidArgument, n.Name)
			}
		}
	}
	if len(g.Outputs) == 0 {
		return fmt.Errorf("%w: onnx graph: no graph outputs", errs.ErrInvalidArgument)
	}
	seenOut := map[string]bool{}
	for _, out := range g.Outputs {
		if err := out.validate(); err != nil {
			return err
		}
		if _, ok := defined[out.Name]; !ok {
			return fmt.Errorf("%w: onnx graph: graph output %q is not defined", errs.ErrInvalidArgument, out.Name)
		}
		if seenOut[out.Name] {
			return fmt.Errorf("%w: onnx graph: graph output %q listed twice", errs.ErrInvalidArgument, out.Name)
		}
		seenOut[out.Name] = true
	}
	return nil
}

func (t *Tensor) validate() error {
	if t.Name == "" {
		return fmt.Errorf("%w: onnx initializer without a name", errs.ErrInvalidArgument)
	}
	if (t.Float32 == nil) == (t.Int64s == nil) {
		return fmt.Errorf("%w: onnx initializer %q must hold exactly one of float32 and int64 data", errs.ErrInvalidArgument, t.Name)
	}
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return fmt.Errorf("%w: onnx initializer %q has bad dimensions %v", errs.ErrInvalidArgument, t.Name, t.Dims)
		}
		n *= d
	}
	have := int64(len(t.Float32) + len(t.Int64s))
	if have != n {
		return fmt.Errorf("%w: onnx initializer %q has %d values for dimensions %v (%d)", errs.ErrInvalidArgument, t.Name, have, t.Dims, n)
	}
	return nil
}

func (v *ValueInfo) validate() error {
	if v.ElemType != Float && v.ElemType != Float16 && v.ElemType != Int64 {
		return fmt.Errorf("%w: onnx value %q: element type %d is not supported", errs.ErrInvalidArgument, v.Name, v.ElemType)
	}
	for _, d := range v.Dims {
		if d.Param == "" && d.Value < 0 {
			return fmt.Errorf("%w: onnx value %q has a negative dimension", errs.ErrInvalidArgument, v.Name)
		}
	}
	return nil
}

func (g *Graph) encode() []byte {
	var b []byte
	for i := range g.Nodes {
		b = appendMessage(b, 1, g.Nodes[i].encode())
	}
	b = appendString(b, 2, g.Name)
	for i := range g.Initializers {
		b = appendMessage(b, 5, g.Initializers[i].encode())
	}
	for i := range g.Inputs {
		b = appendMessage(b, 11, g.Inputs[i].encode())
	}
	for i := range g.Outputs {
		b = appendMessage(b, 12, g.Outputs[i].encode())
	}
	return b
}

func (n *Node) encode() []byte {
	var b []byte
	for _, in := range n.Inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.Outputs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.OpType)
	for _, a := range n.Attrs {
		b = appendMessage(b, 5, a.encode())
	}
	return b
}

// AttributeProto.AttributeType values.
const (
	attrInt  = 2
	attrInts = 7
)

func (a *Attr) encode() []byte {
	var b []byte
	b = appendString(b, 1, a.Name)
	if a.Ints == nil {
		b = protowire.AppendTag(b, 3, protowire.VarintType) // i
		b = protowire.AppendVarint(b, uint64(a.Int))
		b = protowire.AppendTag(b, 20, protowire.VarintType) // type
		return protowire.AppendVarint(b, attrInt)
	}
	var packed []byte
	for _, v := range a.Ints {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	b = protowire.AppendTag(b, 8, protowire.BytesType) // ints, packed
	b = protowire.AppendBytes(b, packed)
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	return protowire.AppendVarint(b, attrInts)
}

func (t *Tensor) encode() []byte {
	var b []byte
	if len(t.Dims) > 0 {
		var packed []byte
		for _, d := range t.Dims {
			packed = protowire.AppendVarint(packed, uint64(d))
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType) // dims, packed
		b = protowire.AppendBytes(b, packed)
	}
	var raw []byte
	dataType := Float
	if t.Float32 != nil {
		raw = make([]byte, 4*len(t.Float32))
		for i, v := range t.Float32 {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	} else {
		dataType = Int64
		raw = make([]byte, 8*len(t.Int64s))
		for i, v := range t.Int64s {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
		}
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType) // data_type
	b = protowire.AppendVarint(b, uint64(dataType))
	b = appendString(b, 8, t.Name)
	b = protowire.AppendTag(b, 9, protowire.BytesType) // raw_data
	return protowire.AppendBytes(b, raw)
}

func (v *ValueInfo) encode() []byte {
	var shape []byte
	for _, d := range v.Dims {
		var dim []byte
		if d.Param != "" {
			dim = appendString(dim, 2, d.Param) // dim_param
		} else {
			dim = protowire.AppendTag(dim, 1, protowire.VarintType) // dim_value
			dim = protowire.AppendVarint(dim, uint64(d.Value))
		}
		shape = appendMessage(shape, 1, dim)
	}
	var tensorType []byte
	tensorType = protowire.AppendTag(tensorType, 1, protowire.VarintType) // elem_type
	tensorType = protowire.AppendVarint(tensorType, uint64(v.ElemType))
	tensorType = appendMessage(tensorType, 2, shape)
	var typ []byte
	typ = appendMessage(typ, 1, tensorType) // TypeProto.tensor_type
	var b []byte
	b = appendString(b, 1, v.Name)
	return appendMessage(b, 2, typ)
}

// appendString appends a string field, omitting it when empty (proto3-style default).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendMessage appends an embedded message field (written even when empty).
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
