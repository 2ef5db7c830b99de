package tfjs_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/tfjs"
)

// buildFixture is a small network with every construct the converter handles: an
// asymmetric ZeroPadding2D, valid/same/strided/dilated Conv2D with and without bias,
// a DepthwiseConv2D with depth multiplier 2, batch normalisations with and without
// scale/center, ReLU with and without max_value, and a three-input Add.
func buildFixture(seed uint64) *fixtureModel {
	rng := rand.New(rand.NewPCG(seed, 7))
	f := newFixture()
	conv := func(filters, k, s, d int, padding string, bias bool) map[string]any {
		return map[string]any{"filters": filters, "kernel_size": []int{k, k}, "strides": []int{s, s},
			"dilation_rate": []int{d, d}, "padding": padding, "use_bias": bias, "activation": "linear",
			"data_format": "channels_last"}
	}
	bn := func(center, scale bool, eps float64) map[string]any {
		return map[string]any{"axis": -1, "epsilon": eps, "center": center, "scale": scale, "momentum": 0.999}
	}
	bnWeights := func(name string, ch int, center, scale bool) {
		if scale {
			f.weight(rng, name+"/gamma", 0.5, 2, ch)
		}
		if center {
			f.weight(rng, name+"/beta", -1, 1, ch)
		}
		f.weight(rng, name+"/moving_mean", -0.5, 0.5, ch)
		f.weight(rng, name+"/moving_variance", 0.2, 3, ch)
	}
	f.add(kerasLayer("input_1", "InputLayer", map[string]any{"batch_input_shape": []any{nil, 8, 8, 3}, "dtype": "float32"}))
	f.add(kerasLayer("pad", "ZeroPadding2D", map[string]any{"padding": [][]int{{0, 1}, {0, 1}}, "data_format": "channels_last"}, "input_1"))
	f.add(kerasLayer("conv1", "Conv2D", conv(4, 3, 2, 1, "valid", false), "pad"))
	f.weight(rng, "conv1/kernel", -1, 1, 3, 3, 3, 4)
	f.add(kerasLayer("conv1_BN", "BatchNormalization", bn(true, true, 1e-3), "conv1"))
	bnWeights("conv1_BN", 4, true, true)
	f.add(kerasLayer("conv1_relu", "ReLU", map[string]any{"max_value": 6, "negative_slope": 0, "threshold": 0}, "conv1_BN"))
	f.add(kerasLayer("dw", "DepthwiseConv2D", map[string]any{"kernel_size": []int{3, 3}, "strides": []int{1, 1}, "padding": "same",
		"depth_multiplier": 2, "use_bias": true, "activation": "linear", "data_format": "channels_last"}, "conv1_relu"))
	f.weight(rng, "dw/depthwise_kernel", -1, 1, 3, 3, 4, 2)
	f.weight(rng, "dw/bias", -1, 1, 8)
	f.add(kerasLayer("dw_BN", "BatchNormalization", bn(false, true, 1e-3), "dw"))
	bnWeights("dw_BN", 8, false, true)
	f.add(kerasLayer("dw_relu", "ReLU", map[string]any{"max_value": nil}, "dw_BN"))
	f.add(kerasLayer("proj", "Conv2D", conv(4, 1, 1, 1, "same", true), "dw_relu"))
	f.weight(rng, "proj/kernel", -0.5, 0.5, 1, 1, 8, 4)
	f.weight(rng, "proj/bias", -1, 1, 4)
	f.add(kerasLayer("add3", "Add", map[string]any{}, "conv1_relu", "proj", "conv1_relu"))
	f.add(kerasLayer("dil", "Conv2D", conv(3, 3, 1, 2, "same", false), "add3"))
	f.weight(rng, "dil/kernel", -0.5, 0.5, 3, 3, 4, 3)
	f.add(kerasLayer("down", "Conv2D", conv(2, 3, 2, 1, "same", true), "dil"))
	f.weight(rng, "down/kernel", -0.5, 0.5, 3, 3, 3, 2)
	f.weight(rng, "down/bias", -1, 1, 2)
	f.add(kerasLayer("down_BN", "BatchNormalization", bn(true, false, 0.01), "down"))
	bnWeights("down_BN", 2, true, false)
	return f
}

func parseFixture(t *testing.T, f *fixtureModel) *tfjs.Model {
	t.Helper()
	modelJS, _ := f.bundledFiles(t)
	_, shard := f.modelJSON()
	model, err := tfjs.ExtractExport(modelJS)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tfjs.Parse(model, func(path string) ([]byte, error) {
		if path != "group1-shard1of1" {
			t.Fatalf("unexpected shard path %q", path)
		}
		return shard, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nhwc is a float64 channels-last image for the reference evaluation.
type nhwc struct {
	h, w, c int
	v       []float64
}

func (x nhwc) at(y, xx, ch int) float64 {
	if y < 0 || y >= x.h || xx < 0 || xx >= x.w {
		return 0
	}
	return x.v[(y*x.w+xx)*x.c+ch]
}

// refConv evaluates a Keras Conv2D (mult == 0) or DepthwiseConv2D (mult > 0) directly
// from its channels-last kernel, with TensorFlow's padding rules.
func refConv(x nhwc, kernel []float32, k, s, d, cout, mult int, same bool, bias []float32) nhwc {
	eff := (k-1)*d + 1
	var oh, ow, padT, padL int
	if same {
		oh, ow = (x.h+s-1)/s, (x.w+s-1)/s
		padT = max((oh-1)*s+eff-x.h, 0) / 2
		padL = max((ow-1)*s+eff-x.w, 0) / 2
	} else {
		oh, ow = (x.h-eff)/s+1, (x.w-eff)/s+1
	}
	out := nhwc{oh, ow, cout, make([]float64, oh*ow*cout)}
	for y := range oh {
		for xx := range ow {
			for o := range cout {
				var sum float64
				for ky := range k {
					for kx := range k {
						iy, ix := y*s+ky*d-padT, xx*s+kx*d-padL
						if mult > 0 {
							c, m := o/mult, o%mult
							sum += x.at(iy, ix, c) * float64(kernel[((ky*k+kx)*x.c+c)*mult+m])
						} else {
							for c := range x.c {
								sum += x.at(iy, ix, c) * float64(kernel[((ky*k+kx)*x.c+c)*cout+o])
							}
						}
					}
				}
				if bias != nil {
					sum += float64(bias[o])
				}
				out.v[(y*ow+xx)*cout+o] = sum
			}
		}
	}
	return out
}

func refBN(x nhwc, f *fixtureModel, name string, eps float64) nhwc {
	out := nhwc{x.h, x.w, x.c, slices.Clone(x.v)}
	for i := range out.v {
		c := i % x.c
		g, b := 1.0, 0.0
		if w, ok := f.weights[name+"/gamma"]; ok {
			g = float64(w[c])
		}
		if w, ok := f.weights[name+"/beta"]; ok {
			b = float64(w[c])
		}
		mean, variance := float64(f.weights[name+"/moving_mean"][c]), float64(f.weights[name+"/moving_variance"][c])
		out.v[i] = g*(x.v[i]-mean)/math.Sqrt(variance+eps) + b
	}
	return out
}

func refClip(x nhwc, hi float64) nhwc {
	out := nhwc{x.h, x.w, x.c, slices.Clone(x.v)}
	for i, v := range out.v {
		out.v[i] = math.Min(math.Max(v, 0), hi)
	}
	return out
}

// reference evaluates the fixture network on one image, returning the named layer
// outputs.
func (f *fixtureModel) reference(in nhwc) map[string]nhwc {
	r := map[string]nhwc{}
	padded := nhwc{in.h + 1, in.w + 1, in.c, make([]float64, (in.h+1)*(in.w+1)*in.c)}
	for y := range in.h {
		for x := range in.w {
			for c := range in.c {
				padded.v[(y*padded.w+x)*in.c+c] = in.at(y, x, c)
			}
		}
	}
	r["conv1_relu"] = refClip(refBN(refConv(padded, f.weights["conv1/kernel"], 3, 2, 1, 4, 0, false, nil), f, "conv1_BN", 1e-3), 6)
	r["dw_relu"] = refClip(refBN(refConv(r["conv1_relu"], f.weights["dw/depthwise_kernel"], 3, 1, 1, 8, 2, true, f.weights["dw/bias"]), f, "dw_BN", 1e-3), math.Inf(1))
	proj := refConv(r["dw_relu"], f.weights["proj/kernel"], 1, 1, 1, 4, 0, true, f.weights["proj/bias"])
	add := nhwc{proj.h, proj.w, proj.c, make([]float64, len(proj.v))}
	for i := range add.v {
		add.v[i] = 2*r["conv1_relu"].v[i] + proj.v[i]
	}
	r["add3"] = add
	dil := refConv(add, f.weights["dil/kernel"], 3, 1, 2, 3, 0, true, nil)
	r["down_BN"] = refBN(refConv(dil, f.weights["down/kernel"], 3, 2, 1, 2, 0, true, f.weights["down/bias"]), f, "down_BN", 0.01)
	return r
}

// TestConvertMatchesKerasSemantics runs the converted fixture in ONNX Runtime and
// compares it with a direct float64 evaluation of the Keras layers.
func TestConvertMatchesKerasSemantics(t *testing.T) {
	f := buildFixture(1)
	m := parseFixture(t, f)
	outputs := []string{"conv1_relu", "dw_relu", "add3", "down_BN"}
	conv, err := tfjs.Convert(m, tfjs.ConvertOptions{Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	wantShapes := map[string][]int{"conv1_relu": {4, 4, 4}, "dw_relu": {8, 4, 4}, "add3": {4, 4, 4}, "down_BN": {2, 2, 2}}
	for _, o := range conv.Outputs {
		if !slices.Equal(o.Shape, wantShapes[o.Name]) {
			t.Errorf("output %s has shape %v, want %v", o.Name, o.Shape, wantShapes[o.Name])
		}
	}
	// Folded convolutions are not tensors; their normalisation layers are.
	var names []string
	for _, ti := range conv.Tensors {
		names = append(names, ti.Name)
	}
	wantNames := []string{"pad", "conv1_BN", "conv1_relu", "dw_BN", "dw_relu", "proj", "add3", "dil", "down_BN"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("graph tensors %v, want %v", names, wantNames)
	}
	data, err := conv.Model.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	const batch = 2
	rng := rand.New(rand.NewPCG(3, 4))
	images := make([]nhwc, batch)
	input := make([]float32, batch*3*8*8) // NCHW
	for b := range images {
		images[b] = nhwc{8, 8, 3, make([]float64, 8*8*3)}
		for c := range 3 {
			for y := range 8 {
				for x := range 8 {
					v := float32(2*rng.Float64() - 1)
					input[((b*3+c)*8+y)*8+x] = v
					images[b].v[(y*8+x)*3+c] = float64(v)
				}
			}
		}
	}
	initORT(t)
	var outShapes [][]int64
	for _, name := range outputs {
		s := wantShapes[name]
		outShapes = append(outShapes, []int64{batch, int64(s[0]), int64(s[1]), int64(s[2])})
	}
	got := runONNX(t, data, input, []int64{batch, 3, 8, 8}, outputs, outShapes)
	for b := range batch {
		ref := f.reference(images[b])
		for oi, name := range outputs {
			want := ref[name]
			per := want.h * want.w * want.c
			var maxDiff, maxAbs float64
			for c := range want.c {
				for y := range want.h {
					for x := range want.w {
						g := float64(got[oi][b*per+(c*want.h+y)*want.w+x])
						w := want.v[(y*want.w+x)*want.c+c]
						maxDiff = math.Max(maxDiff, math.Abs(g-w))
						maxAbs = math.Max(maxAbs, math.Abs(w))
					}
				}
			}
			if maxAbs == 0 || maxDiff > 1e-5*maxAbs {
				t.Errorf("image %d, %s: max difference %.3g (max magnitude %.3g)", b, name, maxDiff, maxAbs)
			}
		}
	}
}

func TestConvertUpToAndInputSize(t *testing.T) {
	m := parseFixture(t, buildFixture(2))
	conv, err := tfjs.Convert(m, tfjs.ConvertOptions{UpTo: "dw", Outputs: []string{"dw_relu"}, InputSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	// 10 -> pad 11 -> valid 3x3 stride 2: 5; "same" stride 1 keeps 5.
	if got := conv.Outputs[0].Shape; !slices.Equal(got, []int{8, 5, 5}) {
		t.Errorf("dw_relu shape %v, want [8 5 5]", got)
	}
	if got := conv.Input.Shape; !slices.Equal(got, []int{3, 10, 10}) {
		t.Errorf("input shape %v, want [3 10 10]", got)
	}
	last := conv.Tensors[len(conv.Tensors)-1].Name
	if last != "dw_relu" {
		t.Errorf("last tensor up to dw is %q, want dw_relu", last)
	}
	var ops []string
	for _, n := range conv.Model.Graph.Nodes {
		ops = append(ops, n.OpType+":"+n.Outputs[0])
	}
	wantOps := []string{"Pad:pad", "Conv:conv1_BN", "Clip:conv1_relu", "Conv:dw_BN", "Relu:dw_relu"}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("nodes up to dw: %v, want %v", ops, wantOps)
	}
}

func TestConvertRejects(t *testing.T) {
	m := parseFixture(t, buildFixture(3))
	cases := []struct {
		name string
		opt  tfjs.ConvertOptions
		kind error
		msg  string
	}{
		{"no outputs", tfjs.ConvertOptions{}, errs.ErrInvalidArgument, "no output"},
		{"folded conv", tfjs.ConvertOptions{Outputs: []string{"conv1"}}, errs.ErrInvalidArgument, `request "conv1_BN"`},
		{"unknown layer", tfjs.ConvertOptions{Outputs: []string{"nope"}}, errs.ErrInvalidArgument, "nope"},
		{"beyond upto", tfjs.ConvertOptions{UpTo: "dw", Outputs: []string{"add3"}}, errs.ErrInvalidArgument, "add3"},
		{"input as output", tfjs.ConvertOptions{Outputs: []string{"input_1"}}, errs.ErrInvalidArgument, "input_1"},
		{"duplicate output", tfjs.ConvertOptions{Outputs: []string{"add3", "add3"}}, errs.ErrInvalidArgument, "twice"},
		{"missing upto", tfjs.ConvertOptions{UpTo: "block_99", Outputs: []string{"add3"}}, errs.ErrInvalidArgument, "block_99"},
		{"negative size", tfjs.ConvertOptions{InputSize: -1, Outputs: []string{"add3"}}, errs.ErrInvalidArgument, "negative"},
		{"input too small", tfjs.ConvertOptions{InputSize: 1, Outputs: []string{"add3"}}, errs.ErrInvalidArgument, "smaller than"},
	}
	for _, tc := range cases {
		_, err := tfjs.Convert(m, tc.opt)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %v mentioning %q", tc.name, err, tc.kind, tc.msg)
		}
	}
	if _, err := tfjs.Convert(nil, tfjs.ConvertOptions{Outputs: []string{"x"}}); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("nil model: %v", err)
	}
}

func TestConvertRejectsUnsupportedLayers(t *testing.T) {
	mutate := []struct {
		name   string
		change func(f *fixtureModel)
		kind   error
		msg    string
	}{
		{"dense layer", func(f *fixtureModel) {
			f.add(kerasLayer("dense", "Dense", map[string]any{"units": 3}, "down_BN"))
		}, errs.ErrUnsupported, "Dense"},
		{"leaky relu", func(f *fixtureModel) {
			f.layers[4]["config"].(map[string]any)["negative_slope"] = 0.1
		}, errs.ErrUnsupported, "negative_slope"},
		{"channels first", func(f *fixtureModel) {
			f.layers[2]["config"].(map[string]any)["data_format"] = "channels_first"
		}, errs.ErrUnsupported, "channels_first"},
		{"relu activation inside conv", func(f *fixtureModel) {
			f.layers[2]["config"].(map[string]any)["activation"] = "relu"
		}, errs.ErrUnsupported, "activation"},
		{"wrong kernel shape", func(f *fixtureModel) {
			f.shapes["conv1/kernel"] = []int{3, 3, 4, 3}
		}, errs.ErrFormat, "conv1/kernel"},
		{"standalone batch norm", func(f *fixtureModel) {
			f.add(kerasLayer("bn_alone", "BatchNormalization", map[string]any{"axis": -1}, "add3"))
		}, errs.ErrUnsupported, "bn_alone"},
		{"bad padding", func(f *fixtureModel) {
			f.layers[1]["config"].(map[string]any)["padding"] = []any{"a", 1}
		}, errs.ErrFormat, "padding"},
	}
	for _, tc := range mutate {
		f := buildFixture(4)
		tc.change(f)
		m := parseFixture(t, f)
		_, err := tfjs.Convert(m, tfjs.ConvertOptions{Outputs: []string{"conv1_relu"}})
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %v mentioning %q", tc.name, err, tc.kind, tc.msg)
		}
	}
}
