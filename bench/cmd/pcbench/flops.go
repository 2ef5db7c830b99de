package main

import (
	"errors"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/onnxgraph"
)

// Analytic floating-point work. A multiply-add counts 2; comparisons, copies and
// square roots count nothing unless stated. The figures are per image unless stated.

// backboneWork is the multiply-add work of the backbone's Conv nodes up to the feature
// layers, from the ONNX graph: 2 · outputs · (Cin/group · kh · kw) per Conv, the kernel
// size read from the weight initializer's dims and the output size from a dry run of
// ONNX Runtime. Elementwise nodes (ReLU, Clip, Add, pooling) are not counted; they add
// about one operation per activation: a few per cent for MobileNetV2, well under 1 % for
// WideResNet50.
type backboneWork struct {
	FLOPs     float64  `json:"flops"`
	Convs     int      `json:"convs"`
	Uncounted []string `json:"uncounted,omitempty"` // multiply-add nodes whose weights are not initializers
}

// countBackbone parses the ONNX file at path and counts the Conv work of one c×size×size
// image for the given feature layers.
func countBackbone(path string, layers []string, size int, threads int) (backboneWork, error) {
	var w backboneWork
	data, err := os.ReadFile(path)
	if err != nil {
		return w, err
	}
	g, err := onnxgraph.Parse(data)
	if err != nil {
		return w, err
	}
	dims, err := initializerDims(data)
	if err != nil {
		return w, err
	}
	// The nodes the layers depend on: walk back from the layers through the producers.
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = i
		}
	}
	needed := map[int]bool{}
	stack := append([]string(nil), layers...)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, ok := producer[v]
		if !ok || needed[i] {
			continue
		}
		needed[i] = true
		stack = append(stack, g.Nodes[i].Inputs...)
	}
	var outs []string
	var kernel []float64
	for i, n := range g.Nodes {
		if !needed[i] {
			continue
		}
		switch n.OpType {
		case "Conv":
			d, ok := dims[n.Inputs[1]]
			if !ok || len(d) < 2 || len(n.Outputs) == 0 {
				w.Uncounted = append(w.Uncounted, n.Name+" ("+n.OpType+")")
				continue
			}
			k := 1.0
			for _, v := range d[1:] {
				k *= float64(v)
			}
			outs, kernel = append(outs, n.Outputs[0]), append(kernel, k)
		case "Gemm", "MatMul", "ConvTranspose", "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul":
			w.Uncounted = append(w.Uncounted, n.Name+" ("+n.OpType+")")
		}
	}
	if len(outs) == 0 {
		return w, errors.New("no Conv node with an initializer weight feeds the layers")
	}
	// Output sizes from a dry run with every Conv output exposed.
	agg, err := core.NewNetworkFeatureAggregator(core.BackboneFromFile(path), outs, "cpu", core.BackboneOptions{Threads: threads})
	if err != nil {
		return w, err
	}
	defer agg.Close()
	shapes, err := agg.FeatureShapes(3, size, size)
	if err != nil {
		return w, err
	}
	for i, s := range shapes {
		w.FLOPs += 2 * float64(s[0]) * float64(s[1]) * float64(s[2]) * kernel[i]
	}
	w.Convs = len(outs)
	return w, nil
}

// initializerDims maps every initializer of the main graph (and every Constant node's
// tensor) to its dims, reading the ModelProto wire format directly: the weights
// themselves are skipped, never decoded.
func initializerDims(model []byte) (map[string][]int64, error) {
	out := map[string][]int64{}
	graph, err := fieldBytes(model, 7) // ModelProto.graph
	if err != nil {
		return nil, err
	}
	for _, g := range graph {
		err := eachField(g, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == 5 && typ == protowire.BytesType: // GraphProto.initializer
				name, d, err := tensorDims(v)
				if err != nil {
					return err
				}
				out[name] = d
			case num == 1 && typ == protowire.BytesType: // GraphProto.node: Constant value
				return constantDims(v, out)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// constantDims records the output dims of a Constant node whose "value" is a tensor.
func constantDims(node []byte, out map[string][]int64) error {
	var op, output string
	var attrs [][]byte
	err := eachField(node, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 2:
			if output == "" {
				output = string(v)
			}
		case 4:
			op = string(v)
		case 5:
			attrs = append(attrs, v)
		}
		return nil
	})
	if err != nil || op != "Constant" {
		return err
	}
	for _, a := range attrs {
		var name string
		var t []byte
		err := eachField(a, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if typ == protowire.BytesType && num == 1 {
				name = string(v)
			}
			if typ == protowire.BytesType && num == 5 {
				t = v
			}
			return nil
		})
		if err != nil {
			return err
		}
		if name == "value" && t != nil {
			_, d, err := tensorDims(t)
			if err != nil {
				return err
			}
			out[output] = d
		}
	}
	return nil
}

// tensorDims reads TensorProto.name (8) and dims (1, packed or not).
func tensorDims(t []byte) (string, []int64, error) {
	var name string
	var dims []int64
	err := eachField(t, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 8 && typ == protowire.BytesType:
			name = string(v)
		case num == 1 && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			dims = append(dims, int64(x))
		case num == 1 && typ == protowire.BytesType:
			for len(v) > 0 {
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return fmt.Errorf("malformed packed dims of tensor %q", name)
				}
				dims, v = append(dims, int64(x)), v[n:]
			}
		}
		return nil
	})
	return name, dims, err
}

// fieldBytes returns every length-delimited field num of msg.
func fieldBytes(msg []byte, num protowire.Number) ([][]byte, error) {
	var out [][]byte
	err := eachField(msg, func(n protowire.Number, typ protowire.Type, v []byte) error {
		if n == num && typ == protowire.BytesType {
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// eachField calls fn for every field of msg with the field's payload: the bytes of a
// length-delimited field, the encoded varint of a varint field, nothing otherwise.
func eachField(msg []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return errors.New("malformed ONNX protobuf (tag)")
		}
		msg = msg[n:]
		var payload []byte
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return errors.New("malformed ONNX protobuf (bytes)")
			}
			payload, n = v, m
		case protowire.VarintType:
			_, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return errors.New("malformed ONNX protobuf (varint)")
			}
			payload, n = msg[:m], m
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
			if n < 0 {
				return errors.New("malformed ONNX protobuf (field)")
			}
		}
		if err := fn(num, typ, payload); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return nil
}

// embedFLOPs is the work of the reference's embedding of one image (spec §3: unfold 3×3,
// bilinear alignment of later layers to the first grid, MeanMapper and Aggregator adaptive
// average pools), for layers [C,h,w] with the first layer's grid of p patches:
// per patch, every layer l contributes C_l·k² pool additions + dPre divisions, later layers
// also 6 operations per unfolded value for the separable bilinear resize; the aggregator
// adds L·dPre additions + d divisions. Unfolding is a copy. The fused path the library runs
// does fewer operations; this is the reference formulation's count, the common yardstick.
func embedFLOPs(shapes [][3]int, ps, dPre, d int) float64 {
	p := float64(shapes[0][1] * shapes[0][2])
	k2 := float64(ps * ps)
	var per float64
	for i, s := range shapes {
		unfolded := float64(s[0]) * k2
		per += unfolded + float64(dPre)
		if i > 0 {
			per += 6 * unfolded
		}
	}
	per += float64(len(shapes)*dPre + d)
	return p * per
}

// distanceFLOPs is the work of one float32 distance sqrt(|a|²−2a·b+|b|²) between dim-d
// rows with precomputed norms: the dot product (2d) and the expansion (3), plus the min.
func distanceFLOPs(d int) float64 { return 2*float64(d) + 4 }

// coresetFLOPs is the approximate greedy coreset's work on n rows of dimension d projected
// to pd: the projection 2·n·d·pd, the mean distance to the start points, and the plain
// greedy loop's k−1 full distance passes (the pruned kernel computes a fraction of them).
func coresetFLOPs(n, d, pd, starts, k int) (projection, greedy float64) {
	projection = 2 * float64(n) * float64(d) * float64(pd)
	if d == pd {
		projection = 0
	}
	greedy = float64(starts+k-1) * float64(n) * distanceFLOPs(pd)
	return projection, greedy
}

// searchFLOPs is exact search of q queries against m bank rows of dimension d: 2·q·m·d.
func searchFLOPs(q, m, d int) float64 { return 2 * float64(q) * float64(m) * float64(d) }

// ivfpqSearchFLOPs is FAISS IVF512,PQ64 search with nprobe 1 of q queries against m rows:
// the coarse quantiser (2·nlist·d per query), the residual's PQ distance tables
// (2·256·d: every sub-quantiser's 256 centroids), and the scan of one list of on average
// m/nlist codes (64 table look-ups and additions each).
func ivfpqSearchFLOPs(q, m, d int) float64 {
	const nlist, ksub, msub = 512, 256, 64
	per := 2*float64(nlist)*float64(d) + 2*ksub*float64(d) + float64(m)/nlist*msub
	return float64(q) * per
}

// segmentFLOPs is RescaleSegmentor's work for one h×w patch grid upsampled to size×size:
// a separable bilinear resize (3 operations per tap pair and pass) and a separable Gaussian
// of radius int(4σ+0.5) (a multiply-add per tap and pass).
func segmentFLOPs(h, w, size int, sigma float64) float64 {
	r := int(4*sigma + 0.5)
	taps := float64(2*r + 1)
	px := float64(size * size)
	resize := 3*float64(h*size) + 3*px
	return resize + 2*2*taps*px
}
