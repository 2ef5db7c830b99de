package tfjs

import (
	"fmt"
	"strings"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/onnxbuild"
)

// Opset is the ONNX operator set version of converted graphs.
const Opset = 13

// DefaultInputName is the name of the graph input when ConvertOptions.InputName is empty.
const DefaultInputName = "input"

// ConvertOptions selects the part of a model that Convert turns into an ONNX graph.
type ConvertOptions struct {
	// UpTo keeps the layers up to and including the last one named UpTo or UpTo+"_..."
	// (e.g. "block_10" keeps everything up to block_10_project_BN); empty keeps all.
	UpTo string
	// Outputs are the Keras layer names whose outputs become graph outputs (at least one).
	Outputs []string
	// InputSize is the height and width of the input image; 0 takes the model's own.
	InputSize int
	// InputName names the graph input; empty means DefaultInputName.
	InputName string
}

// TensorInfo names a tensor of the converted graph and gives its shape without the
// (dynamic) batch dimension: [C, H, W].
type TensorInfo struct {
	Name  string
	Shape []int
}

// Converted is the result of Convert.
type Converted struct {
	Model   *onnxbuild.Model
	Input   TensorInfo   // the graph input, NCHW float32, RGB as the Keras model expects it
	Outputs []TensorInfo // the graph outputs, in the order requested
	// Tensors lists every Keras layer output present in the graph under its layer's
	// name, in graph order. A convolution followed by batch normalisation is one fused
	// Conv node whose output carries the batch normalisation layer's name; the
	// convolution's own (pre-normalisation) output does not exist.
	Tensors []TensorInfo
}

// Convert translates the channels-last Keras layers of m (InputLayer, ZeroPadding2D,
// Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, Add) into an NCHW ONNX graph of
// Conv, Pad, Clip/Relu and Add nodes with a dynamic batch dimension. Batch
// normalisation is folded into the preceding convolution in float64 and the result
// rounded to float32. Every ONNX node output is named after the Keras layer it computes.
func Convert(m *Model, opt ConvertOptions) (*Converted, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil model", errs.ErrInvalidArgument)
	}
	if len(opt.Outputs) == 0 {
		return nil, fmt.Errorf("%w: no output layers requested", errs.ErrInvalidArgument)
	}
	if opt.InputSize < 0 {
		return nil, fmt.Errorf("%w: input size %d is negative", errs.ErrInvalidArgument, opt.InputSize)
	}
	if opt.InputName == "" {
		opt.InputName = DefaultInputName
	}
	layers := m.Layers
	if opt.UpTo != "" {
		last := -1
		for i, l := range layers {
			if l.Name == opt.UpTo || strings.HasPrefix(l.Name, opt.UpTo+"_") {
				last = i
			}
		}
		if last < 0 {
			return nil, fmt.Errorf("%w: no layer named %q or %q", errs.ErrInvalidArgument, opt.UpTo, opt.UpTo+"_*")
		}
		layers = layers[:last+1]
	}
	c := &converter{
		model:     m,
		opt:       opt,
		consumers: map[string][]*Layer{},
		shapes:    map[string][]int{},
		foldedBN:  map[string]string{},
		foldedTo:  map[string]string{},
		constants: map[string]bool{},
	}
	for i := range layers {
		for _, in := range layers[i].Inbound {
			c.consumers[in] = append(c.consumers[in], &layers[i])
		}
	}
	for i := range layers {
		if err := c.layer(&layers[i]); err != nil {
			return nil, err
		}
	}
	if c.inputLayer == "" {
		return nil, fmt.Errorf("%w: the selected layers contain no InputLayer", errs.ErrFormat)
	}
	out := &Converted{Input: c.input, Tensors: c.tensors}
	g := onnxbuild.Graph{
		Name:         m.Name,
		Nodes:        c.nodes,
		Initializers: c.inits,
		Inputs:       []onnxbuild.ValueInfo{valueInfo(c.input)},
	}
	requested := map[string]bool{}
	for _, name := range opt.Outputs {
		if requested[name] {
			return nil, fmt.Errorf("%w: output %q requested twice", errs.ErrInvalidArgument, name)
		}
		requested[name] = true
		if bn, ok := c.foldedTo[name]; ok {
			return nil, fmt.Errorf("%w: layer %q is folded into the batch normalisation %q; request %q instead",
				errs.ErrInvalidArgument, name, bn, bn)
		}
		shape, ok := c.shapes[name]
		if !ok || name == opt.InputName || name == c.inputLayer {
			return nil, fmt.Errorf("%w: output %q is not a layer output of the converted graph (up to %q)",
				errs.ErrInvalidArgument, name, opt.UpTo)
		}
		info := TensorInfo{Name: name, Shape: shape}
		out.Outputs = append(out.Outputs, info)
		g.Outputs = append(g.Outputs, valueInfo(info))
	}
	out.Model = &onnxbuild.Model{
		Graph:        g,
		Opset:        Opset,
		ProducerName: "libpatchcore",
	}
	return out, nil
}

func valueInfo(t TensorInfo) onnxbuild.ValueInfo {
	dims := []onnxbuild.Dim{{Param: "batch"}}
	for _, d := range t.Shape {
		dims = append(dims, onnxbuild.Dim{Value: int64(d)})
	}
	return onnxbuild.ValueInfo{Name: t.Name, ElemType: onnxbuild.Float, Dims: dims}
}

// converter accumulates the ONNX graph while walking the Keras layers in order.
type converter struct {
	model     *Model
	opt       ConvertOptions
	consumers map[string][]*Layer // layer name -> the selected layers reading its output
	shapes    map[string][]int    // tensor name -> [C, H, W]
	foldedBN  map[string]string   // batch normalisation layer -> the convolution folded into it
	foldedTo  map[string]string   // convolution -> the batch normalisation it is folded into
	constants map[string]bool     // names of shared constant initializers already emitted

	inputLayer string     // name of the Keras InputLayer
	input      TensorInfo // the graph input
	tensors    []TensorInfo
	nodes      []onnxbuild.Node
	inits      []onnxbuild.Tensor
}

// tensorName is the ONNX tensor holding the output of Keras layer name.
func (c *converter) tensorName(name string) string {
	if name == c.inputLayer {
		return c.opt.InputName
	}
	return name
}

func (c *converter) layer(l *Layer) error {
	if err := c.checkInbound(l); err != nil {
		return err
	}
	var err error
	switch l.ClassName {
	case "InputLayer":
		err = c.inputLayerDef(l)
	case "ZeroPadding2D":
		err = c.zeroPadding(l)
	case "Conv2D", "DepthwiseConv2D":
		err = c.conv(l)
	case "BatchNormalization":
		if _, ok := c.foldedBN[l.Name]; !ok {
			err = fmt.Errorf("%w: BatchNormalization %q does not directly follow a convolution whose only reader it is",
				errs.ErrUnsupported, l.Name)
		}
	case "ReLU":
		err = c.relu(l)
	case "Add":
		err = c.add(l)
	default:
		err = fmt.Errorf("%w: Keras layer class %s (layer %q)", errs.ErrUnsupported, l.ClassName, l.Name)
	}
	if err != nil {
		return err
	}
	if _, folded := c.foldedTo[l.Name]; l.ClassName != "InputLayer" && !folded {
		c.tensors = append(c.tensors, TensorInfo{Name: l.Name, Shape: c.shapes[l.Name]})
	}
	return nil
}

// checkInbound verifies the number of inputs of l and that they exist in the graph.
func (c *converter) checkInbound(l *Layer) error {
	want := 1
	switch l.ClassName {
	case "InputLayer":
		want = 0
	case "Add":
		if len(l.Inbound) < 2 {
			return fmt.Errorf("%w: Add layer %q has %d inputs", errs.ErrFormat, l.Name, len(l.Inbound))
		}
		want = len(l.Inbound)
	}
	if len(l.Inbound) != want {
		return fmt.Errorf("%w: %s layer %q has %d inputs, expected %d", errs.ErrFormat, l.ClassName, l.Name, len(l.Inbound), want)
	}
	for _, in := range l.Inbound {
		if _, folded := c.foldedTo[in]; folded {
			if c.foldedBN[l.Name] != in {
				return fmt.Errorf("%w: layer %q reads the pre-normalisation output of %q", errs.ErrInternal, l.Name, in)
			}
			continue
		}
		if _, ok := c.shapes[c.tensorName(in)]; !ok {
			return fmt.Errorf("%w: layer %q reads %q, which has no output in the graph", errs.ErrFormat, l.Name, in)
		}
	}
	return nil
}
