package tfjs

import (
	"fmt"
	"math"
	"slices"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/onnxbuild"
)

// inputLayerDef records the graph input: NCHW with the channel count and, unless
// overridden, the spatial size of the Keras batch_input_shape [null, H, W, C].
func (c *converter) inputLayerDef(l *Layer) error {
	if c.inputLayer != "" {
		return fmt.Errorf("%w: more than one InputLayer (%q and %q)", errs.ErrUnsupported, c.inputLayer, l.Name)
	}
	if dt, ok := l.Config["dtype"].(string); ok && dt != "float32" {
		return fmt.Errorf("%w: InputLayer %q has dtype %q", errs.ErrUnsupported, l.Name, dt)
	}
	bis, ok := l.Config["batch_input_shape"].([]any)
	if !ok || len(bis) != 4 {
		return fmt.Errorf("%w: InputLayer %q: batch_input_shape is not [batch, height, width, channels]", errs.ErrUnsupported, l.Name)
	}
	dim := func(v any) (int, bool) {
		f, ok := v.(float64)
		if !ok || f <= 0 || f != math.Trunc(f) || f > 1<<20 {
			return 0, false
		}
		return int(f), true
	}
	ch, ok := dim(bis[3])
	if !ok {
		return fmt.Errorf("%w: InputLayer %q: channel count %v", errs.ErrFormat, l.Name, bis[3])
	}
	h, okH := dim(bis[1])
	w, okW := dim(bis[2])
	if c.opt.InputSize > 0 {
		h, w = c.opt.InputSize, c.opt.InputSize
	} else if !okH || !okW {
		return fmt.Errorf("%w: InputLayer %q has no fixed size; give an input size", errs.ErrInvalidArgument, l.Name)
	}
	c.inputLayer = l.Name
	c.input = TensorInfo{Name: c.opt.InputName, Shape: []int{ch, h, w}}
	c.shapes[c.opt.InputName] = c.input.Shape
	return nil
}

// zeroPadding emits a Pad node for a channels-last ZeroPadding2D layer.
func (c *converter) zeroPadding(l *Layer) error {
	if err := channelsLast(l); err != nil {
		return err
	}
	// padding is p, [ph, pw] or [[top, bottom], [left, right]].
	var top, bottom, left, right int
	bad := fmt.Errorf("%w: ZeroPadding2D %q: padding %v", errs.ErrFormat, l.Name, l.Config["padding"])
	switch p := l.Config["padding"].(type) {
	case float64:
		v, ok := nonNegInt(p)
		if !ok {
			return bad
		}
		top, bottom, left, right = v, v, v, v
	case []any:
		if len(p) != 2 {
			return bad
		}
		var pairs [2][2]int
		for i, e := range p {
			switch e := e.(type) {
			case float64:
				v, ok := nonNegInt(e)
				if !ok {
					return bad
				}
				pairs[i] = [2]int{v, v}
			case []any:
				if len(e) != 2 {
					return bad
				}
				for j := range 2 {
					f, isNum := e[j].(float64)
					v, ok := nonNegInt(f)
					if !isNum || !ok {
						return bad
					}
					pairs[i][j] = v
				}
			default:
				return bad
			}
		}
		top, bottom, left, right = pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1]
	default:
		return bad
	}
	in := c.tensorName(l.Inbound[0])
	s := c.shapes[in]
	padsName := l.Name + "/pads"
	c.inits = append(c.inits, onnxbuild.Tensor{
		Name:   padsName,
		Dims:   []int64{8},
		Int64s: []int64{0, 0, int64(top), int64(left), 0, 0, int64(bottom), int64(right)},
	})
	c.nodes = append(c.nodes, onnxbuild.Node{Name: l.Name, OpType: "Pad", Inputs: []string{in, padsName}, Outputs: []string{l.Name}})
	c.shapes[l.Name] = []int{s[0], s[1] + top + bottom, s[2] + left + right}
	return nil
}

// conv emits a Conv node for a Conv2D or DepthwiseConv2D layer. When the layer's only
// reader is a BatchNormalization, the normalisation is folded into the node, whose
// output then carries the normalisation layer's name.
func (c *converter) conv(l *Layer) error {
	if err := channelsLast(l); err != nil {
		return err
	}
	if act, _ := l.Config["activation"].(string); act != "" && act != "linear" {
		return fmt.Errorf("%w: %s %q has activation %q (only linear)", errs.ErrUnsupported, l.ClassName, l.Name, act)
	}
	k, err := intPair(l, "kernel_size", 0)
	if err != nil {
		return err
	}
	stride, err := intPair(l, "strides", 1)
	if err != nil {
		return err
	}
	dil, err := intPair(l, "dilation_rate", 1)
	if err != nil {
		return err
	}
	padding, _ := l.Config["padding"].(string)
	if padding != "valid" && padding != "same" {
		return fmt.Errorf("%w: %s %q has padding %q", errs.ErrUnsupported, l.ClassName, l.Name, padding)
	}
	useBias := true
	if v, ok := l.Config["use_bias"].(bool); ok {
		useBias = v
	}
	in := c.tensorName(l.Inbound[0])
	s := c.shapes[in]
	cin := s[0]

	depthwise := l.ClassName == "DepthwiseConv2D"
	var kernel *Weight
	var cout, group int
	if depthwise {
		mult := 1
		if v, ok := l.Config["depth_multiplier"]; ok {
			f, _ := v.(float64)
			if mult, ok = nonNegInt(f); !ok || mult == 0 {
				return fmt.Errorf("%w: DepthwiseConv2D %q: depth_multiplier %v", errs.ErrFormat, l.Name, v)
			}
		}
		if kernel, err = c.weight(l.Name+"/depthwise_kernel", k[0], k[1], cin, mult); err != nil {
			return err
		}
		cout, group = cin*mult, cin
	} else {
		if g, ok := l.Config["groups"].(float64); ok && g != 1 {
			return fmt.Errorf("%w: Conv2D %q has groups=%v", errs.ErrUnsupported, l.Name, g)
		}
		f, _ := l.Config["filters"].(float64)
		filters, ok := nonNegInt(f)
		if !ok || filters == 0 {
			return fmt.Errorf("%w: Conv2D %q: filters %v", errs.ErrFormat, l.Name, l.Config["filters"])
		}
		if kernel, err = c.weight(l.Name+"/kernel", k[0], k[1], cin, filters); err != nil {
			return err
		}
		cout, group = filters, 1
	}

	// Output size and TensorFlow padding (for "same", the odd pixel goes at the end).
	var outHW [2]int
	var padBegin, padEnd [2]int
	for a := range 2 {
		size, eff := s[1+a], (k[a]-1)*dil[a]+1
		if padding == "valid" {
			if size < eff {
				return fmt.Errorf("%w: %s %q: input %dx%d is smaller than its %dx%d kernel",
					errs.ErrInvalidArgument, l.ClassName, l.Name, s[1], s[2], k[0], k[1])
			}
			outHW[a] = (size-eff)/stride[a] + 1
			continue
		}
		outHW[a] = (size + stride[a] - 1) / stride[a]
		total := max((outHW[a]-1)*stride[a]+eff-size, 0)
		padBegin[a], padEnd[a] = total/2, total-total/2
	}

	// Per-output-channel affine map applied after the convolution: y = conv*scale + shift.
	scale := make([]float64, cout)
	shift := make([]float64, cout)
	for o := range scale {
		scale[o] = 1
	}
	hasBias := useBias
	if useBias {
		b, err := c.weight(l.Name+"/bias", cout)
		if err != nil {
			return err
		}
		for o, v := range b.Data {
			shift[o] = float64(v)
		}
	}
	outName := l.Name
	if readers := c.consumers[l.Name]; len(readers) == 1 && readers[0].ClassName == "BatchNormalization" {
		bn := readers[0]
		if err := c.foldBatchNorm(bn, scale, shift); err != nil {
			return err
		}
		hasBias = true
		outName = bn.Name
		c.foldedBN[bn.Name] = l.Name
		c.foldedTo[l.Name] = bn.Name
	}

	// Keras kernel [kh, kw, cin, cout] (depthwise: [kh, kw, cin, mult], output channel
	// i*mult + m) to ONNX [cout, cin/group, kh, kw].
	kh, kw := k[0], k[1]
	perGroup := cin / group
	w := make([]float32, cout*perGroup*kh*kw)
	for o := range cout {
		for i := range perGroup {
			for y := range kh {
				for x := range kw {
					var src int
					if depthwise {
						mult := cout / cin
						src = ((y*kw+x)*cin+o/mult)*mult + o%mult
					} else {
						src = ((y*kw+x)*cin+i)*cout + o
					}
					w[((o*perGroup+i)*kh+y)*kw+x] = float32(float64(kernel.Data[src]) * scale[o])
				}
			}
		}
	}
	weightName := l.Name + "/weight"
	inputs := []string{in, weightName}
	c.inits = append(c.inits, onnxbuild.Tensor{Name: weightName, Dims: []int64{int64(cout), int64(perGroup), int64(kh), int64(kw)}, Float32: w})
	if hasBias {
		b := make([]float32, cout)
		for o, v := range shift {
			b[o] = float32(v)
		}
		biasName := l.Name + "/bias"
		c.inits = append(c.inits, onnxbuild.Tensor{Name: biasName, Dims: []int64{int64(cout)}, Float32: b})
		inputs = append(inputs, biasName)
	}
	c.nodes = append(c.nodes, onnxbuild.Node{
		Name:    l.Name,
		OpType:  "Conv",
		Inputs:  inputs,
		Outputs: []string{outName},
		Attrs: []onnxbuild.Attr{
			onnxbuild.IntsAttr("kernel_shape", int64(kh), int64(kw)),
			onnxbuild.IntsAttr("strides", int64(stride[0]), int64(stride[1])),
			onnxbuild.IntsAttr("dilations", int64(dil[0]), int64(dil[1])),
			onnxbuild.IntsAttr("pads", int64(padBegin[0]), int64(padBegin[1]), int64(padEnd[0]), int64(padEnd[1])),
			onnxbuild.IntAttr("group", int64(group)),
		},
	})
	c.shapes[outName] = []int{cout, outHW[0], outHW[1]}
	return nil
}

// foldBatchNorm composes the inference-mode batch normalisation bn,
// gamma*(x - mean)/sqrt(var + eps) + beta, with the affine map x*scale + shift (one
// entry per channel), in float64.
func (c *converter) foldBatchNorm(bn *Layer, scale, shift []float64) error {
	ch := len(scale)
	axisOK := false
	switch a := bn.Config["axis"].(type) {
	case float64:
		axisOK = a == -1 || a == 3
	case []any:
		axisOK = len(a) == 1 && (a[0] == -1.0 || a[0] == 3.0)
	}
	if !axisOK {
		return fmt.Errorf("%w: BatchNormalization %q normalises axis %v (only the channel axis)", errs.ErrUnsupported, bn.Name, bn.Config["axis"])
	}
	eps := 1e-3
	if v, ok := bn.Config["epsilon"].(float64); ok {
		eps = v
	}
	param := func(suffix string, flag string, def float64) ([]float64, error) {
		out := make([]float64, ch)
		if on, ok := bn.Config[flag].(bool); flag != "" && ok && !on {
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		w, err := c.weight(bn.Name+"/"+suffix, ch)
		if err != nil {
			return nil, err
		}
		for i, v := range w.Data {
			out[i] = float64(v)
		}
		return out, nil
	}
	gamma, err := param("gamma", "scale", 1)
	if err != nil {
		return err
	}
	beta, err := param("beta", "center", 0)
	if err != nil {
		return err
	}
	mean, err := param("moving_mean", "", 0)
	if err != nil {
		return err
	}
	variance, err := param("moving_variance", "", 0)
	if err != nil {
		return err
	}
	for o := range ch {
		if !(variance[o]+eps > 0) {
			return fmt.Errorf("%w: BatchNormalization %q: variance + epsilon = %g at channel %d", errs.ErrFormat, bn.Name, variance[o]+eps, o)
		}
		f := gamma[o] / math.Sqrt(variance[o]+eps)
		scale[o] *= f
		shift[o] = (shift[o]-mean[o])*f + beta[o]
	}
	return nil
}

// relu emits Clip(x, 0, max_value) for a ReLU layer with a max_value, Relu otherwise.
func (c *converter) relu(l *Layer) error {
	for _, key := range []string{"negative_slope", "threshold"} {
		if v, ok := l.Config[key]; ok && v != nil && v != 0.0 {
			return fmt.Errorf("%w: ReLU %q has %s=%v", errs.ErrUnsupported, l.Name, key, v)
		}
	}
	in := c.tensorName(l.Inbound[0])
	node := onnxbuild.Node{Name: l.Name, OpType: "Relu", Inputs: []string{in}, Outputs: []string{l.Name}}
	switch mv := l.Config["max_value"].(type) {
	case nil:
	case float64:
		if !(mv > 0) || math.IsInf(mv, 0) {
			return fmt.Errorf("%w: ReLU %q has max_value %v", errs.ErrFormat, l.Name, mv)
		}
		node.OpType = "Clip"
		node.Inputs = append(node.Inputs, c.scalar("clip_min_0", 0), c.scalar(fmt.Sprintf("clip_max_%g", mv), float32(mv)))
	default:
		return fmt.Errorf("%w: ReLU %q has max_value %v", errs.ErrFormat, l.Name, mv)
	}
	c.nodes = append(c.nodes, node)
	c.shapes[l.Name] = c.shapes[in]
	return nil
}

// add emits a chain of Add nodes summing the layer's inputs; the last one is named
// after the layer.
func (c *converter) add(l *Layer) error {
	acc := c.tensorName(l.Inbound[0])
	shape := c.shapes[acc]
	for i, name := range l.Inbound[1:] {
		in := c.tensorName(name)
		if !slices.Equal(c.shapes[in], shape) {
			return fmt.Errorf("%w: Add %q sums shapes %v and %v", errs.ErrFormat, l.Name, shape, c.shapes[in])
		}
		out := l.Name
		if i < len(l.Inbound)-2 {
			out = fmt.Sprintf("%s/partial_%d", l.Name, i+1)
		}
		c.nodes = append(c.nodes, onnxbuild.Node{Name: out, OpType: "Add", Inputs: []string{acc, in}, Outputs: []string{out}})
		acc = out
	}
	c.shapes[l.Name] = shape
	return nil
}

// scalar returns the name of a float32 scalar initializer, emitting it on first use.
func (c *converter) scalar(name string, v float32) string {
	if !c.constants[name] {
		c.constants[name] = true
		c.inits = append(c.inits, onnxbuild.Tensor{Name: name, Float32: []float32{v}})
	}
	return name
}

// weight returns the named weight after checking its shape.
func (c *converter) weight(name string, shape ...int) (*Weight, error) {
	w, ok := c.model.Weights[name]
	if !ok {
		return nil, fmt.Errorf("%w: weight %q is missing from the manifest", errs.ErrFormat, name)
	}
	if !slices.Equal(w.Shape, shape) {
		return nil, fmt.Errorf("%w: weight %q has shape %v, the layer needs %v", errs.ErrFormat, name, w.Shape, shape)
	}
	return w, nil
}

// channelsLast rejects layers whose data_format is not channels_last (Keras' default).
func channelsLast(l *Layer) error {
	if f, ok := l.Config["data_format"].(string); ok && f != "channels_last" {
		return fmt.Errorf("%w: %s %q has data_format %q (only channels_last)", errs.ErrUnsupported, l.ClassName, l.Name, f)
	}
	return nil
}

// intPair reads a config entry that is an integer or a pair of integers (all >= 1);
// def > 0 is used when the entry is absent.
func intPair(l *Layer, key string, def int) ([2]int, error) {
	bad := fmt.Errorf("%w: %s %q: %s %v", errs.ErrFormat, l.ClassName, l.Name, key, l.Config[key])
	switch v := l.Config[key].(type) {
	case nil:
		if def > 0 {
			return [2]int{def, def}, nil
		}
	case float64:
		if n, ok := nonNegInt(v); ok && n > 0 {
			return [2]int{n, n}, nil
		}
	case []any:
		if len(v) == 2 {
			a, okA := v[0].(float64)
			b, okB := v[1].(float64)
			na, okNA := nonNegInt(a)
			nb, okNB := nonNegInt(b)
			if okA && okB && okNA && okNB && na > 0 && nb > 0 {
				return [2]int{na, nb}, nil
			}
		}
	}
	return [2]int{}, bad
}

// nonNegInt converts a JSON number to a non-negative int of sensible size.
func nonNegInt(f float64) (int, bool) {
	if f < 0 || f != math.Trunc(f) || f > 1<<24 {
		return 0, false
	}
	return int(f), true
}
