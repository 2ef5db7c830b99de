package core

import (
	"fmt"

	"github.com/libpatchcore/libpatchcore/internal/imaging"
)

// AdaptiveAvgPoolWindow is PyTorch's adaptive average pooling window for output index i
// of outLen over an input of inLen: input indices [floor(i*inLen/outLen),
// ceil((i+1)*inLen/outLen)), end exclusive. Windows overlap when inLen/outLen is not an
// integer. i must lie in [0, outLen) and both lengths be positive.
func AdaptiveAvgPoolWindow(i, inLen, outLen int) (start, end int) {
	// The same overflow-safe integer forms as aten's start_index/end_index.
	start = (i/outLen)*inLen + ((i%outLen)*inLen)/outLen
	end = 1 + ((i+1)*inLen-1)/outLen
	return start, end
}

// adaptivePoolRow pools src (one row of any length) into dst (len = output length) with
// PyTorch's windows: a sequential float32 sum divided by the window length.
func adaptivePoolRow(dst, src []float32) {
	for i := range dst {
		s, e := AdaptiveAvgPoolWindow(i, len(src), len(dst))
		var sum float32
		for _, v := range src[s:e] {
			sum += v
		}
		dst[i] = sum / float32(e-s)
	}
}

// embedCheckRows validates a tensor used as [N, ...] rows and returns N and the row length.
func embedCheckRows(t Tensor, what string) (rows, rowLen int, err error) {
	if len(t.Shape) < 2 {
		return 0, 0, fmt.Errorf("%w: %s wants at least 2 dimensions, got shape %v", ErrInvalidArgument, what, t.Shape)
	}
	n, err := CheckedSize(t.Shape)
	if err != nil {
		return 0, 0, err
	}
	if n != len(t.Data) || n == 0 {
		return 0, 0, fmt.Errorf("%w: %s has shape %v but %d values", ErrInvalidArgument, what, t.Shape, len(t.Data))
	}
	return t.Shape[0], n / t.Shape[0], nil
}

// AdaptiveAvgPool1D is F.adaptive_avg_pool1d applied to every row of x: x [N, ...] is
// flattened per row to length L and pooled to [N, outLen] with the windows of
// AdaptiveAvgPoolWindow.
func AdaptiveAvgPool1D(x Tensor, outLen int) (Tensor, error) {
	if outLen <= 0 {
		return Tensor{}, fmt.Errorf("%w: adaptive pool output length %d is not positive", ErrInvalidArgument, outLen)
	}
	rows, l, err := embedCheckRows(x, "adaptive pool input")
	if err != nil {
		return Tensor{}, err
	}
	size, err := CheckedSize([]int{rows, outLen})
	if err != nil {
		return Tensor{}, err
	}
	out := make([]float32, size)
	for r := 0; r < rows; r++ {
		adaptivePoolRow(out[r*outLen:(r+1)*outLen], x.Data[r*l:(r+1)*l])
	}
	return Tensor{Shape: []int{rows, outLen}, Data: out}, nil
}

// Preprocessing is the reference's patchcore.common.Preprocessing: one MeanMapper per
// layer, each flattening a patch (C*ps*ps values in (c, ky, kx) order) and adaptive-average
// pooling it to OutputDim. InputDims only sets the number of layers, as in the reference.
type Preprocessing struct {
	InputDims []int
	OutputDim int
}

// Forward maps per-layer patches (each [P, C_l*ps*ps] or [P, C_l, ps, ps], all with the
// same P) to the stacked [P, nLayers, OutputDim] MeanMapper outputs.
func (pp Preprocessing) Forward(patchesPerLayer []Tensor) (Tensor, error) {
	nl := len(pp.InputDims)
	if nl == 0 || len(patchesPerLayer) != nl {
		return Tensor{}, fmt.Errorf("%w: preprocessing has %d layers, got %d patch tensors", ErrInvalidArgument, nl, len(patchesPerLayer))
	}
	if pp.OutputDim <= 0 {
		return Tensor{}, fmt.Errorf("%w: preprocessing output dimension %d is not positive", ErrInvalidArgument, pp.OutputDim)
	}
	rows := -1
	lens := make([]int, nl)
	for l, t := range patchesPerLayer {
		r, rl, err := embedCheckRows(t, fmt.Sprintf("layer %d patches", l))
		if err != nil {
			return Tensor{}, err
		}
		if rows >= 0 && r != rows {
			return Tensor{}, fmt.Errorf("%w: layer %d has %d patches, layer 0 has %d", ErrInvalidArgument, l, r, rows)
		}
		rows, lens[l] = r, rl
	}
	shape := []int{rows, nl, pp.OutputDim}
	size, err := CheckedSize(shape)
	if err != nil {
		return Tensor{}, err
	}
	out := make([]float32, size)
	d := pp.OutputDim
	for p := 0; p < rows; p++ {
		for l, t := range patchesPerLayer {
			o := (p*nl + l) * d
			adaptivePoolRow(out[o:o+d], t.Data[p*lens[l]:(p+1)*lens[l]])
		}
	}
	return Tensor{Shape: shape, Data: out}, nil
}

// Aggregator is the reference's patchcore.common.Aggregator ("preadapt_aggregator"): it
// flattens [P, nLayers, d] to [P, nLayers*d] and adaptive-average pools each row to
// TargetDim.
type Aggregator struct {
	TargetDim int
}

// Forward pools x [P, ...] (normally the [P, nLayers, d] Preprocessing output) to
// [P, TargetDim].
func (a Aggregator) Forward(x Tensor) (Tensor, error) {
	return AdaptiveAvgPool1D(x, a.TargetDim)
}

// AlignPatches brings the patches of a later layer onto the first layer's patch grid, as
// the reference's PatchCore._embed does: patches [B, gridH*gridW, ...] are viewed as
// gridH x gridW maps, one per trailing (c, ky, kx) slot, each resized to refH x refW with
// bilinear interpolation (align_corners=False), giving [B, refH*refW, ...].
func AlignPatches(patches Tensor, gridH, gridW, refH, refW int) (Tensor, error) {
	if len(patches.Shape) < 3 {
		return Tensor{}, fmt.Errorf("%w: align wants [B, L, ...] patches, got shape %v", ErrInvalidArgument, patches.Shape)
	}
	n, err := CheckedSize(patches.Shape)
	if err != nil {
		return Tensor{}, err
	}
	if n != len(patches.Data) || n == 0 {
		return Tensor{}, fmt.Errorf("%w: patches have shape %v but %d values", ErrInvalidArgument, patches.Shape, len(patches.Data))
	}
	if gridH <= 0 || gridW <= 0 || refH <= 0 || refW <= 0 || patches.Shape[1] != gridH*gridW {
		return Tensor{}, fmt.Errorf("%w: cannot align %d patches of a %dx%d grid to %dx%d", ErrInvalidArgument, patches.Shape[1], gridH, gridW, refH, refW)
	}
	b := patches.Shape[0]
	slots := n / (b * gridH * gridW)
	shape := append([]int{b, refH * refW}, patches.Shape[2:]...)
	size, err := CheckedSize(shape)
	if err != nil {
		return Tensor{}, err
	}
	out := make([]float32, size)
	ty, tx := imaging.NewLinearTaps(gridH, refH), imaging.NewLinearTaps(gridW, refW)
	src := make([]float32, gridH*gridW)
	dst := make([]float32, refH*refW)
	tmp := make([]float32, gridH*refW)
	for bi := 0; bi < b; bi++ {
		in := patches.Data[bi*gridH*gridW*slots : (bi+1)*gridH*gridW*slots]
		o := out[bi*refH*refW*slots : (bi+1)*refH*refW*slots]
		for s := 0; s < slots; s++ {
			for i := range src {
				src[i] = in[i*slots+s]
			}
			imaging.ResizeBilinearTaps(dst, src, gridW, ty, tx, tmp)
			for i, v := range dst {
				o[i*slots+s] = v
			}
		}
	}
	return Tensor{Shape: shape, Data: out}, nil
}

// EmbedConfig holds the embedding parameters of the reference PatchCore
// (patchsize, patchstride, pretrain_embed_dimension, target_embed_dimension).
type EmbedConfig struct {
	PatchSize, Stride, PretrainEmbedDim, TargetEmbedDim int
}

// DefaultEmbedConfig is the reference default: patch size 3, stride 1, 1024 / 1024.
func DefaultEmbedConfig() EmbedConfig {
	return EmbedConfig{PatchSize: 3, Stride: 1, PretrainEmbedDim: 1024, TargetEmbedDim: 1024}
}

// embedLayer is the geometry of one feature map of an embedding call.
type embedLayer struct {
	c, h, w int // channels and map size
	gh, gw  int // patch grid
}

// embedGeometry is a validated embedding call: batch size, per-layer geometry and the
// output size.
type embedGeometry struct {
	batch  int
	layers []embedLayer
	rows   int // batch * refH * refW
	size   int // rows * TargetEmbedDim
}

// checkEmbed validates the configuration and the feature maps (4-D, one batch size,
// consistent data, finite values) and computes the geometry.
func checkEmbed(layers []Tensor, cfg EmbedConfig) (embedGeometry, error) {
	var g embedGeometry
	if len(layers) == 0 {
		return g, fmt.Errorf("%w: embedding needs at least one feature map", ErrInvalidArgument)
	}
	if cfg.PretrainEmbedDim <= 0 || cfg.TargetEmbedDim <= 0 {
		return g, fmt.Errorf("%w: embedding dimensions %d / %d must be positive", ErrInvalidArgument, cfg.PretrainEmbedDim, cfg.TargetEmbedDim)
	}
	pm := PatchMaker{PatchSize: cfg.PatchSize, Stride: cfg.Stride}
	g.layers = make([]embedLayer, len(layers))
	for l, t := range layers {
		if len(t.Shape) != 4 {
			return g, fmt.Errorf("%w: feature map %d must be [B,C,H,W], got shape %v", ErrInvalidArgument, l, t.Shape)
		}
		n, err := CheckedSize(t.Shape)
		if err != nil {
			return g, err
		}
		if n != len(t.Data) || n == 0 {
			return g, fmt.Errorf("%w: feature map %d has shape %v but %d values", ErrInvalidArgument, l, t.Shape, len(t.Data))
		}
		if l == 0 {
			g.batch = t.Shape[0]
		} else if t.Shape[0] != g.batch {
			return g, fmt.Errorf("%w: feature map %d has batch %d, feature map 0 has %d", ErrInvalidArgument, l, t.Shape[0], g.batch)
		}
		el := embedLayer{c: t.Shape[1], h: t.Shape[2], w: t.Shape[3]}
		if el.gh, el.gw, err = pm.Grid(el.h, el.w); err != nil {
			return g, err
		}
		if _, err := CheckedSize([]int{el.c, cfg.PatchSize, cfg.PatchSize, el.gh, el.gw}); err != nil {
			return g, err
		}
		if !embedAllFinite(t.Data) {
			return g, t.CheckFinite(fmt.Sprintf("feature map %d", l))
		}
		g.layers[l] = el
	}
	var err error
	if g.rows, err = CheckedSize([]int{g.batch, g.layers[0].gh, g.layers[0].gw}); err != nil {
		return g, err
	}
	if g.size, err = CheckedSize([]int{g.rows, cfg.TargetEmbedDim}); err != nil {
		return g, err
	}
	return g, nil
}

// embedAllFinite reports whether data holds no NaN or infinity: x*0 is 0 for every finite x
// and NaN otherwise, so four running sums of x*0 stay 0 exactly when all values are
// finite (a tight loop, much cheaper than classifying every value).
func embedAllFinite(data []float32) bool {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(data); i += 4 {
		q := data[i : i+4 : i+4]
		s0 += q[0] * 0
		s1 += q[1] * 0
		s2 += q[2] * 0
		s3 += q[3] * 0
	}
	for ; i < len(data); i++ {
		s0 += data[i] * 0
	}
	return s0+s1+s2+s3 == 0
}

// embedOutput returns dst[:size], a new slice when dst is nil, or an error when dst is
// too short.
func embedOutput(dst []float32, size int) ([]float32, error) {
	if dst == nil {
		return make([]float32, size), nil
	}
	if len(dst) < size {
		return nil, fmt.Errorf("%w: embedding destination has %d floats, need %d", ErrInvalidArgument, len(dst), size)
	}
	return dst[:size], nil
}

// Embed computes the reference's patch embeddings (PatchCore._embed after the backbone)
// from per-layer feature maps layers[l] [B, C_l, h_l, w_l]: patchify, align every later
// layer to the first layer's grid, MeanMapper to PretrainEmbedDim per layer, aggregate to
// TargetEmbedDim. The result is [B*P, TargetEmbedDim] with P = gridH*gridW rows per image,
// image-major then row-major on the grid; it is written to dst[:B*P*TargetEmbedDim] when
// dst is non-nil (an error if dst is shorter). With stride 1 it evaluates the whole chain
// as one fused linear operator (no unfolded tensors, parallel over images and output
// dimensions); other strides take the generic unfold path (EmbedGeneric). Both agree to
// float32 rounding.
func Embed(layers []Tensor, cfg EmbedConfig, dst []float32) (emb Tensor, gridH, gridW int, err error) {
	if cfg.Stride == 1 {
		return embedFused(layers, cfg, dst)
	}
	return EmbedGeneric(layers, cfg, dst)
}

// EmbedGeneric is Embed computed step by step as the reference does, materialising the
// unfolded [B, P, C, ps, ps] tensors of every layer (PatchMaker.Patchify, AlignPatches,
// Preprocessing, Aggregator). It is memory-hungry (about B*P*C*ps*ps floats per layer)
// and kept for non-unit strides and as the oracle of the fused path.
func EmbedGeneric(layers []Tensor, cfg EmbedConfig, dst []float32) (emb Tensor, gridH, gridW int, err error) {
	g, err := checkEmbed(layers, cfg)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	out, err := embedOutput(dst, g.size)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	pm := PatchMaker{PatchSize: cfg.PatchSize, Stride: cfg.Stride}
	refH, refW := g.layers[0].gh, g.layers[0].gw
	flat := make([]Tensor, len(layers))
	dims := make([]int, len(layers))
	for l, t := range layers {
		patches, gh, gw, err := pm.Patchify(t)
		if err != nil {
			return Tensor{}, 0, 0, err
		}
		if l > 0 {
			if patches, err = AlignPatches(patches, gh, gw, refH, refW); err != nil {
				return Tensor{}, 0, 0, err
			}
		}
		dims[l] = g.layers[l].c
		flat[l] = Tensor{Shape: []int{g.rows, len(patches.Data) / g.rows}, Data: patches.Data}
	}
	pre, err := Preprocessing{InputDims: dims, OutputDim: cfg.PretrainEmbedDim}.Forward(flat)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	agg, err := Aggregator{TargetDim: cfg.TargetEmbedDim}.Forward(pre)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	copy(out, agg.Data)
	return Tensor{Shape: []int{g.rows, cfg.TargetEmbedDim}, Data: out}, refH, refW, nil
}
