// Package onnxtest writes small ONNX models for tests: a minimal protobuf encoder of the
// onnx.ModelProto messages (graph, nodes, float initializers, typed value infos), written
// independently of the onnxgraph parser so that each checks the other.
package onnxtest

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Element types (onnx.TensorProto.DataType).
const (
	Float = 1
	Int64 = 7
)

func msgField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func strField(b []byte, num protowire.Number, s string) []byte {
	return msgField(b, num, []byte(s))
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// Graph lists the encoded parts of a graph.
type Graph struct {
	Nodes, Initializers, Inputs, Outputs, ValueInfo [][]byte
}

// Model encodes a ModelProto with the given IR version and one default-domain opset.
func Model(ir, opset int64, g Graph) []byte {
	var b []byte
	b = varintField(b, 1, uint64(ir))
	b = strField(b, 2, "onnxtest")
	b = msgField(b, 7, GraphProto(g))
	return msgField(b, 8, varintField(strField(nil, 1, ""), 2, uint64(opset)))
}

// GraphProto encodes the GraphProto alone.
func GraphProto(g Graph) []byte {
	var b []byte
	for _, n := range g.Nodes {
		b = msgField(b, 1, n)
	}
	b = strField(b, 2, "g")
	for _, t := range g.Initializers {
		b = msgField(b, 5, t)
	}
	for _, v := range g.Inputs {
		b = msgField(b, 11, v)
	}
	for _, v := range g.Outputs {
		b = msgField(b, 12, v)
	}
	for _, v := range g.ValueInfo {
		b = msgField(b, 13, v)
	}
	return b
}

// Node encodes a default-domain NodeProto without attributes.
func Node(name, op string, in, out []string) []byte {
	var b []byte
	for _, s := range in {
		b = strField(b, 1, s)
	}
	for _, s := range out {
		b = strField(b, 2, s)
	}
	b = strField(b, 3, name)
	return strField(b, 4, op)
}

// Value encodes a tensor ValueInfoProto. Each dim is an int (fixed size) or a string
// (symbolic); a nil dims slice declares no shape.
func Value(name string, elem int, dims []any) []byte {
	tt := varintField(nil, 1, uint64(elem))
	if dims != nil {
		var shape []byte
		for _, d := range dims {
			var dim []byte
			switch v := d.(type) {
			case int:
				dim = varintField(nil, 1, uint64(v))
			case string:
				dim = strField(nil, 2, v)
			}
			shape = msgField(shape, 1, dim)
		}
		tt = msgField(tt, 2, shape)
	}
	return msgField(strField(nil, 1, name), 2, msgField(nil, 1, tt))
}

// FloatTensor encodes a float TensorProto holding data in raw_data.
func FloatTensor(name string, dims []int64, data []float32) []byte {
	b := tensorHeader(name, dims)
	return msgField(b, 9, floatBytes(data))
}

func tensorHeader(name string, dims []int64) []byte {
	var b []byte
	for _, d := range dims {
		b = varintField(b, 1, uint64(d))
	}
	b = varintField(b, 2, Float)
	return strField(b, 8, name)
}

func floatBytes(data []float32) []byte {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return raw
}

// ExternalFloatTensor encodes a float TensorProto whose data lie in an external file
// (location, relative to the model's directory) and returns that file's contents too.
func ExternalFloatTensor(name string, dims []int64, data []float32, location string) (tensor, file []byte) {
	b := tensorHeader(name, dims)
	b = msgField(b, 13, strField(strField(nil, 1, "location"), 2, location))
	b = varintField(b, 14, 1) // data_location = EXTERNAL
	return b, floatBytes(data)
}
