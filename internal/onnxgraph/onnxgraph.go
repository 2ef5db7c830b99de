// Package onnxgraph reads and edits the few parts of an ONNX model (an onnx.ModelProto in
// protobuf wire format) that libpatchcore needs: the main graph's inputs, outputs,
// value_info, nodes and initializer names, and a rewrite that exposes intermediate tensors as
// graph outputs, so that feature layers the exporter did not expose can be extracted
// by name.
//
// The parser decodes only the messages it needs and skips everything else unread, so the
// weights are never copied. It is hardened against arbitrary input: it never panics, and
// what it allocates is bounded by a small multiple of the input size (every decoded element
// consumes at least a few input bytes, so the memory used stays proportional to the input).
// Errors wrap ErrMalformed or ErrUnknownTensor.
package onnxgraph

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is wrapped by every error about bytes that are not a well-formed ONNX model.
var ErrMalformed = errors.New("malformed ONNX model")

// ErrUnknownTensor is wrapped when a tensor name is not produced by any node of the graph.
var ErrUnknownTensor = errors.New("unknown tensor")

// ElemType is an onnx.TensorProto.DataType value.
type ElemType int32

// The element types libpatchcore meets; the others print as their number.
const (
	Undefined ElemType = 0
	Float     ElemType = 1
	Uint8     ElemType = 2
	Int8      ElemType = 3
	Int32     ElemType = 6
	Int64     ElemType = 7
	Bool      ElemType = 9
	Float16   ElemType = 10
	Double    ElemType = 11
	BFloat16  ElemType = 16
)

// String is the numpy-style name of the type ("float32", "int64", ...).
func (t ElemType) String() string {
	switch t {
	case Undefined:
		return "undefined"
	case Float:
		return "float32"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float16:
		return "float16"
	case Double:
		return "float64"
	case BFloat16:
		return "bfloat16"
	}
	return "elem_type(" + strconv.Itoa(int(t)) + ")"
}

// Dim is one dimension of a tensor shape: a fixed size (Known), a symbolic name (Param),
// or neither (an anonymous dynamic dimension).
type Dim struct {
	Known bool
	Value int64
	Param string
}

// String prints the size, the symbol, or "?".
func (d Dim) String() string {
	switch {
	case d.Known:
		return strconv.FormatInt(d.Value, 10)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// ValueInfo describes a named value (an onnx.ValueInfoProto). For a tensor, IsTensor is set
// with its element type; HasShape says whether a shape (possibly with dynamic dimensions)
// is declared at all.
type ValueInfo struct {
	Name     string
	IsTensor bool
	ElemType ElemType
	HasShape bool
	Shape    []Dim
	// raw is the encoded onnx.ValueInfoProto and typ its onnx.TypeProto, reused verbatim
	// when the value is (or becomes) a graph output.
	raw, typ []byte
}

// String prints e.g. `input: float32[batch,3,224,224]`.
func (v ValueInfo) String() string {
	if !v.IsTensor {
		if len(v.typ) == 0 {
			return v.Name + ": (no type)"
		}
		return v.Name + ": (not a tensor)"
	}
	s := v.Name + ": " + v.ElemType.String()
	if !v.HasShape {
		return s + "[unknown shape]"
	}
	dims := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		dims[i] = d.String()
	}
	return s + "[" + strings.Join(dims, ",") + "]"
}

// Node is one node of the main graph.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string
	Outputs []string
}

// Model is the parsed view of an ONNX model. It refers to (does not copy) the bytes given
// to Parse, which must not be modified while the Model is in use.
type Model struct {
	// IRVersion is the ONNX IR version.
	IRVersion int64
	// Opsets maps an operator-set domain ("" for the default ai.onnx) to its version.
	Opsets map[string]int64
	// Inputs are the graph inputs that are not initializers (the values a caller feeds).
	Inputs []ValueInfo
	// Outputs are the graph outputs, in order.
	Outputs []ValueInfo
	// ValueInfo are the intermediate values whose type the exporter recorded.
	ValueInfo []ValueInfo
	// Nodes are the main graph's nodes in file order.
	Nodes []Node
	// Initializers are the names of the constant tensors.
	Initializers []string

	data                  []byte
	graphStart, graphEnd  int // the graph field, tag included, within data
	graphValue            []byte
	outputSpans           [][2]int // the graph's output fields within graphValue
	producedBy            map[string]int
	outputSet, initSet    map[string]bool
	valueInfoByName       map[string]int
	declaredInputsByName  map[string]int
	declaredInputsInOrder []ValueInfo
}

// Protobuf field numbers of the messages read here (onnx/onnx.proto3).
const (
	modelIRVersion = 1
	modelGraph     = 7
	modelOpset     = 8

	opsetDomain  = 1
	opsetVersion = 2

	graphNode        = 1
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphValueInfo   = 13

	nodeInput  = 1
	nodeOutput = 2
	nodeName   = 3
	nodeOpType = 4
	nodeDomain = 7

	tensorName = 8

	valueName = 1
	valueType = 2

	typeTensor = 1

	tensorTypeElem  = 1
	tensorTypeShape = 2

	shapeDim = 1

	dimValue = 1
	dimParam = 2
)

// field is one decoded protobuf field: a varint (v) or a length-delimited payload (b).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
	// start and end delimit the whole field, tag included, within the message.
	start, end int
}

// walk calls fn for every field of msg in order. Fixed-size and group fields are skipped.
func walk(msg []byte, what string, fn func(f field) error) error {
	off := 0
	for off < len(msg) {
		start := off
		num, typ, n := protowire.ConsumeTag(msg[off:])
		if n < 0 {
			return fmt.Errorf("%w: bad field tag in %s at byte %d: %v", ErrMalformed, what, off, protowire.ParseError(n))
		}
		off += n
		f := field{num: num, typ: typ, start: start}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(msg[off:])
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg[off:])
		case protowire.EndGroupType:
			return fmt.Errorf("%w: unbalanced end-group marker in %s at byte %d", ErrMalformed, what, start)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg[off:])
		}
		if n < 0 {
			return fmt.Errorf("%w: truncated or invalid field %d in %s at byte %d: %v", ErrMalformed, num, what, start, protowire.ParseError(n))
		}
		off += n
		f.end = off
		if typ != protowire.VarintType && typ != protowire.BytesType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks that a known field has the expected wire type.
func want(f field, typ protowire.Type, what string) error {
	if f.typ != typ {
		return fmt.Errorf("%w: field %d of %s has wire type %d, want %d", ErrMalformed, f.num, what, f.typ, typ)
	}
	return nil
}

// Parse decodes an ONNX model. It requires a positive IR version and a graph with at least
// one node; the weights are not decoded.
func Parse(data []byte) (*Model, error) {
	m := &Model{data: data, Opsets: map[string]int64{}, graphStart: -1}
	err := walk(data, "ModelProto", func(f field) error {
		switch f.num {
		case modelIRVersion:
			if err := want(f, protowire.VarintType, "ModelProto"); err != nil {
				return err
			}
			m.IRVersion = int64(f.v)
		case modelGraph:
			if err := want(f, protowire.BytesType, "ModelProto"); err != nil {
				return err
			}
			if m.graphStart >= 0 {
				return fmt.Errorf("%w: the model has more than one graph field", ErrMalformed)
			}
			m.graphStart, m.graphEnd, m.graphValue = f.start, f.end, f.b
		case modelOpset:
			if err := want(f, protowire.BytesType, "ModelProto"); err != nil {
				return err
			}
			return m.parseOpset(f.b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m.IRVersion <= 0 {
		return nil, fmt.Errorf("%w: no positive ir_version (got %d); not an ONNX model", ErrMalformed, m.IRVersion)
	}
	if m.graphStart < 0 {
		return nil, fmt.Errorf("%w: the model has no graph", ErrMalformed)
	}
	if err := m.parseGraph(m.graphValue); err != nil {
		return nil, err
	}
	if len(m.Nodes) == 0 {
		return nil, fmt.Errorf("%w: the graph has no nodes", ErrMalformed)
	}
	return m, nil
}

func (m *Model) parseOpset(b []byte) error {
	var domain string
	var version int64
	err := walk(b, "OperatorSetIdProto", func(f field) error {
		switch f.num {
		case opsetDomain:
			if err := want(f, protowire.BytesType, "OperatorSetIdProto"); err != nil {
				return err
			}
			domain = string(f.b)
		case opsetVersion:
			if err := want(f, protowire.VarintType, "OperatorSetIdProto"); err != nil {
				return err
			}
			version = int64(f.v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.Opsets[domain] = version
	return nil
}

func (m *Model) parseGraph(b []byte) error {
	m.producedBy = map[string]int{}
	m.outputSet = map[string]bool{}
	m.initSet = map[string]bool{}
	m.valueInfoByName = map[string]int{}
	m.declaredInputsByName = map[string]int{}
	err := walk(b, "GraphProto", func(f field) error {
		switch f.num {
		case graphNode, graphInitializer, graphInput, graphOutput, graphValueInfo:
			if err := want(f, protowire.BytesType, "GraphProto"); err != nil {
				return err
			}
		default:
			return nil
		}
		switch f.num {
		case graphNode:
			n, err := parseNode(f.b)
			if err != nil {
				return err
			}
			for _, o := range n.Outputs {
				if o == "" {
					continue
				}
				if _, dup := m.producedBy[o]; dup {
					return fmt.Errorf("%w: tensor %q is produced by more than one node", ErrMalformed, o)
				}
				m.producedBy[o] = len(m.Nodes)
			}
			m.Nodes = append(m.Nodes, n)
		case graphInitializer:
			name, err := parseTensorName(f.b)
			if err != nil {
				return err
			}
			m.Initializers = append(m.Initializers, name)
			m.initSet[name] = true
		case graphInput:
			v, err := parseValueInfo(f.b)
			if err != nil {
				return err
			}
			m.declaredInputsByName[v.Name] = len(m.declaredInputsInOrder)
			m.declaredInputsInOrder = append(m.declaredInputsInOrder, v)
		case graphOutput:
			v, err := parseValueInfo(f.b)
			if err != nil {
				return err
			}
			m.outputSet[v.Name] = true
			m.Outputs = append(m.Outputs, v)
			m.outputSpans = append(m.outputSpans, [2]int{f.start, f.end})
		case graphValueInfo:
			v, err := parseValueInfo(f.b)
			if err != nil {
				return err
			}
			m.valueInfoByName[v.Name] = len(m.ValueInfo)
			m.ValueInfo = append(m.ValueInfo, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, v := range m.declaredInputsInOrder {
		if !m.initSet[v.Name] {
			m.Inputs = append(m.Inputs, v)
		}
	}
	return nil
}

func parseNode(b []byte) (Node, error) {
	var n Node
	err := walk(b, "NodeProto", func(f field) error {
		switch f.num {
		case nodeInput, nodeOutput, nodeName, nodeOpType, nodeDomain:
			if err := want(f, protowire.BytesType, "NodeProto"); err != nil {
				return err
			}
		default:
			return nil
		}
		s := string(f.b)
		switch f.num {
		case nodeInput:
			n.Inputs = append(n.Inputs, s)
		case nodeOutput:
			n.Outputs = append(n.Outputs, s)
		case nodeName:
			n.Name = s
		case nodeOpType:
			n.OpType = s
		case nodeDomain:
			n.Domain = s
		}
		return nil
	})
	if err == nil && (n.OpType == "" || len(n.Outputs) == 0) {
		err = fmt.Errorf("%w: node %q has no op_type or no outputs", ErrMalformed, n.Name)
	}
	return n, err
}

func parseTensorName(b []byte) (string, error) {
	var name string
	err := walk(b, "TensorProto", func(f field) error {
		if f.num == tensorName {
			if err := want(f, protowire.BytesType, "TensorProto"); err != nil {
				return err
			}
			name = string(f.b)
		}
		return nil
	})
	return name, err
}

func parseValueInfo(b []byte) (ValueInfo, error) {
	v := ValueInfo{raw: b}
	err := walk(b, "ValueInfoProto", func(f field) error {
		switch f.num {
		case valueName:
			if err := want(f, protowire.BytesType, "ValueInfoProto"); err != nil {
				return err
			}
			v.Name = string(f.b)
		case valueType:
			if err := want(f, protowire.BytesType, "ValueInfoProto"); err != nil {
				return err
			}
			v.typ = f.b
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	if v.Name == "" {
		return v, fmt.Errorf("%w: a graph value has no name", ErrMalformed)
	}
	err = walk(v.typ, "TypeProto", func(f field) error {
		if f.num != typeTensor {
			return nil
		}
		if err := want(f, protowire.BytesType, "TypeProto"); err != nil {
			return err
		}
		v.IsTensor = true
		return parseTensorType(f.b, &v)
	})
	return v, err
}

func parseTensorType(b []byte, v *ValueInfo) error {
	return walk(b, "TypeProto.Tensor", func(f field) error {
		switch f.num {
		case tensorTypeElem:
			if err := want(f, protowire.VarintType, "TypeProto.Tensor"); err != nil {
				return err
			}
			v.ElemType = ElemType(int32(f.v))
		case tensorTypeShape:
			if err := want(f, protowire.BytesType, "TypeProto.Tensor"); err != nil {
				return err
			}
			v.HasShape = true
			v.Shape = v.Shape[:0]
			return walk(f.b, "TensorShapeProto", func(f field) error {
				if f.num != shapeDim {
					return nil
				}
				if err := want(f, protowire.BytesType, "TensorShapeProto"); err != nil {
					return err
				}
				d, err := parseDim(f.b)
				if err != nil {
					return err
				}
				v.Shape = append(v.Shape, d)
				return nil
			})
		}
		return nil
	})
}

func parseDim(b []byte) (Dim, error) {
	var d Dim
	err := walk(b, "TensorShapeProto.Dimension", func(f field) error {
		switch f.num {
		case dimValue:
			if err := want(f, protowire.VarintType, "TensorShapeProto.Dimension"); err != nil {
				return err
			}
			d.Known, d.Value, d.Param = true, int64(f.v), ""
		case dimParam:
			if err := want(f, protowire.BytesType, "TensorShapeProto.Dimension"); err != nil {
				return err
			}
			d.Known, d.Value, d.Param = false, 0, string(f.b)
		}
		return nil
	})
	if err == nil && d.Known && d.Value < 0 {
		return d, fmt.Errorf("%w: negative dimension %d", ErrMalformed, d.Value)
	}
	return d, err
}

// NodeOutputs lists the names of the tensors computed by the graph's nodes, in node order:
// the names that can be requested as feature layers.
func (m *Model) NodeOutputs() []string {
	var names []string
	for _, n := range m.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				names = append(names, o)
			}
		}
	}
	return names
}

// Produced reports whether a node of the graph computes the named tensor.
func (m *Model) Produced(name string) bool {
	_, ok := m.producedBy[name]
	return ok
}

// IsOutput reports whether the name is already a graph output.
func (m *Model) IsOutput(name string) bool { return m.outputSet[name] }

// Info returns what the model declares about a value: its graph output or value_info
// entry, or its declared graph input. ok is false when nothing is declared.
func (m *Model) Info(name string) (ValueInfo, bool) {
	for _, v := range m.Outputs {
		if v.Name == name {
			return v, true
		}
	}
	if i, ok := m.valueInfoByName[name]; ok {
		return m.ValueInfo[i], true
	}
	if i, ok := m.declaredInputsByName[name]; ok {
		return m.declaredInputsInOrder[i], true
	}
	return ValueInfo{}, false
}

// SetOutputs returns a copy of the model's bytes whose graph outputs are exactly the named
// tensors, in that order (repeated names count once). Each name must be a current graph
// output, whose declaration is kept as is, or be computed by a node. A newly exposed tensor
// takes its type from the model's value_info when declared; otherwise it is added with its
// name only, and ONNX Runtime infers its element type and shape when it loads the model
// (declaring a type there would have to guess the element type, and a wrong guess fails
// the load). Dropping outputs lets the runtime skip the nodes only they needed. Everything
// other than the graph's output list is copied byte for byte; when the list does not
// change, the original bytes are returned.
func (m *Model) SetOutputs(names ...string) ([]byte, error) {
	var uniq []string
	seen := map[string]bool{}
	for _, name := range names {
		if !seen[name] {
			seen[name] = true
			uniq = append(uniq, name)
		}
	}
	if len(uniq) == 0 {
		return nil, fmt.Errorf("%w: a graph needs at least one output", ErrUnknownTensor)
	}
	unchanged := len(uniq) == len(m.Outputs)
	for i, name := range uniq {
		unchanged = unchanged && m.Outputs[i].Name == name
		if !m.outputSet[name] && !m.Produced(name) {
			return nil, fmt.Errorf("%w: no node of the graph computes %q", ErrUnknownTensor, name)
		}
	}
	if unchanged {
		return m.data, nil
	}
	var graph []byte
	prev := 0
	for _, span := range m.outputSpans {
		graph = append(graph, m.graphValue[prev:span[0]]...)
		prev = span[1]
	}
	graph = append(graph, m.graphValue[prev:]...)
	for _, name := range uniq {
		var vi []byte
		if i := slices.IndexFunc(m.Outputs, func(v ValueInfo) bool { return v.Name == name }); i >= 0 {
			vi = m.Outputs[i].raw
		} else {
			vi = protowire.AppendTag(vi, valueName, protowire.BytesType)
			vi = protowire.AppendString(vi, name)
			if j, ok := m.valueInfoByName[name]; ok && len(m.ValueInfo[j].typ) > 0 {
				vi = protowire.AppendTag(vi, valueType, protowire.BytesType)
				vi = protowire.AppendBytes(vi, m.ValueInfo[j].typ)
			}
		}
		graph = protowire.AppendTag(graph, graphOutput, protowire.BytesType)
		graph = protowire.AppendBytes(graph, vi)
	}
	out := make([]byte, 0, len(m.data)-len(m.graphValue)+len(graph)+protowire.SizeVarint(uint64(len(graph))))
	out = append(out, m.data[:m.graphStart]...)
	out = protowire.AppendTag(out, modelGraph, protowire.BytesType)
	out = protowire.AppendBytes(out, graph)
	out = append(out, m.data[m.graphEnd:]...)
	return out, nil
}
