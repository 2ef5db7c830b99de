package onnxgraph

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/libpatchcore/libpatchcore/internal/onnxgraph/onnxtest"
)

func msgField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// tinyWeights is W of the tiny model: Y = X·W.
var tinyWeights = []float32{1, 2, -3, 0.5}

// tinyModel: X float[N,2] → MatMul(X, W[2,2]) = Y → Relu = Z (the graph output), plus
// Shape(X) = S (int64, computed but unused). Y has a value_info entry, S has none.
func tinyModel() []byte {
	return onnxtest.Model(8, 13, onnxtest.Graph{
		Nodes: [][]byte{
			onnxtest.Node("mm", "MatMul", []string{"X", "W"}, []string{"Y"}),
			onnxtest.Node("relu", "Relu", []string{"Y"}, []string{"Z"}),
			onnxtest.Node("shape", "Shape", []string{"X"}, []string{"S"}),
		},
		Initializers: [][]byte{onnxtest.FloatTensor("W", []int64{2, 2}, tinyWeights)},
		Inputs:       [][]byte{onnxtest.Value("X", onnxtest.Float, []any{"N", 2})},
		Outputs:      [][]byte{onnxtest.Value("Z", onnxtest.Float, []any{"N", 2})},
		ValueInfo:    [][]byte{onnxtest.Value("Y", onnxtest.Float, []any{"N", 2})},
	})
}
