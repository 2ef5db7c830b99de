package core

import (
	"runtime"
	"sync/atomic"

	"github.com/libpatchcore/libpatchcore/internal/imaging"
	"github.com/libpatchcore/libpatchcore/internal/parallel"
)

// The fused embedding. Unfold, the per-slot bilinear alignment and both adaptive average
// pools are linear and act on separate axes, so output dimension j of the final embedding
// at grid position (y, x) is
//
//	sum over layers l, channels c, kernel slots (ky, kx) of
//	    W_j[l, c, ky, kx] * A_l( map_l[c] shifted by (ky-pad, kx-pad), zero outside )(y, x)
//
// where A_0 is the identity and A_l (l > 0) the bilinear resize of layer l's patch grid
// to layer 0's. The weights come straight from the adaptive-pool windows:
// W_j[l, f] = sum over the aggregator bins q = (l, i) of output j that cover MeanMapper
// bin i of layer l, and over the MeanMapper bins i that cover the flat slot f = (c, ky,
// kx), of 1/len(aggregator window j) * 1/len(MeanMapper window i). Each output dimension
// touches only a few channels, so it is a handful of small depthwise correlations (on
// the small grid, then one upsample, for later layers) instead of a pass over unfolded
// [P, C*ps*ps] tensors. For the WRN50 default (1024/1024, patch size 3) this is the
// closed form of the spec: a centre-weighted 3x3 box filter per layer2 channel and the
// mean of two 3x3-box-filtered, upsampled layer3 channels.

// fusedTerm is the contribution of count consecutive channels (channel..channel+count-1)
// of one layer that share the same kernel: their planes are summed, then correlated with
// box*ones(ps,ps) (computed as separable running sums) plus the residual kernel
// kernels[kernel : kernel+ps*ps], which has taps non-zero entries.
type fusedTerm struct {
	layer, channel, count int
	box                   float32
	kernel, taps          int
}

// fusedLayer is one layer's geometry plus, for later layers, the taps of the bilinear
// resize of its patch grid to layer 0's.
type fusedLayer struct {
	embedLayer
	ty, tx   imaging.LinearTaps
	identity bool // same grid as layer 0: no resize
}

// fusedPlan is the fused operator for one geometry and configuration.
type fusedPlan struct {
	ps, pad    int
	refH, refW int
	dim        int
	layers     []fusedLayer
	terms      []fusedTerm
	termStart  []int // terms of output j: terms[termStart[j]:termStart[j+1]], by layer
	kernels    []float32
}

// fusedChunk is the number of output dimensions one task computes.
const fusedChunk = 32

// fusedChannel is a channel's full kernel while a plan is built.
type fusedChannel struct {
	layer, channel int
	kernel         []float32
}

// newFusedPlan derives the weights of every output dimension from the adaptive-pool
// windows (stride 1).
func newFusedPlan(g embedGeometry, cfg EmbedConfig) *fusedPlan {
	ps := cfg.PatchSize
	p := &fusedPlan{
		ps: ps, pad: (ps - 1) / 2,
		refH: g.layers[0].gh, refW: g.layers[0].gw,
		dim:       cfg.TargetEmbedDim,
		layers:    make([]fusedLayer, len(g.layers)),
		termStart: make([]int, cfg.TargetEmbedDim+1),
	}
	for l, el := range g.layers {
		fl := fusedLayer{embedLayer: el, identity: el.gh == p.refH && el.gw == p.refW}
		if !fl.identity {
			fl.ty = imaging.NewLinearTaps(el.gh, p.refH)
			fl.tx = imaging.NewLinearTaps(el.gw, p.refW)
		}
		p.layers[l] = fl
	}
	k2 := ps * ps
	dpre, dout := cfg.PretrainEmbedDim, cfg.TargetEmbedDim
	aggLen := len(g.layers) * dpre
	var w []float64
	var chans []fusedChannel
	var kbuf []float32
	for j := 0; j < dout; j++ {
		a0, a1 := AdaptiveAvgPoolWindow(j, aggLen, dout)
		invA := 1 / float64(a1-a0)
		chans, kbuf = chans[:0], kbuf[:0]
		for l := a0 / dpre; l <= (a1-1)/dpre; l++ {
			flatLen := g.layers[l].c * k2
			q0, q1 := max(a0, l*dpre)-l*dpre, min(a1, (l+1)*dpre)-l*dpre
			f0, _ := AdaptiveAvgPoolWindow(q0, flatLen, dpre)
			_, f1 := AdaptiveAvgPoolWindow(q1-1, flatLen, dpre)
			if cap(w) < f1-f0 {
				w = make([]float64, f1-f0)
			}
			w = w[:f1-f0]
			clear(w)
			for i := q0; i < q1; i++ {
				m0, m1 := AdaptiveAvgPoolWindow(i, flatLen, dpre)
				v := invA / float64(m1-m0)
				for f := m0; f < m1; f++ {
					w[f-f0] += v
				}
			}
			for c := f0 / k2; c <= (f1-1)/k2; c++ {
				start := len(kbuf)
				nonzero := false
				for s := 0; s < k2; s++ {
					var v float32
					if f := c*k2 + s; f >= f0 && f < f1 {
						v = float32(w[f-f0])
					}
					kbuf = append(kbuf, v)
					nonzero = nonzero || v != 0
				}
				if nonzero {
					chans = append(chans, fusedChannel{layer: l, channel: c, kernel: kbuf[start : start+k2]})
				} else {
					kbuf = kbuf[:start]
				}
			}
		}
		// kbuf may have moved while growing: re-slice the kernels onto it.
		off := 0
		for i := range chans {
			chans[i].kernel = kbuf[off : off+k2]
			off += k2
		}
		for i := 0; i < len(chans); {
			e := i + 1
			for e < len(chans) && chans[e].layer == chans[i].layer && chans[e].channel == chans[e-1].channel+1 &&
				equalKernels(chans[e].kernel, chans[i].kernel) {
				e++
			}
			p.addTerm(chans[i].layer, chans[i].channel, e-i, chans[i].kernel)
			i = e
		}
		p.termStart[j+1] = len(p.terms)
	}
	return p
}

// equalKernels reports whether two kernels have exactly the same taps.
func equalKernels(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// addTerm splits kernel into a uniform part and a residual and appends the term. The
// uniform part is the most frequent non-zero tap value when at most two taps differ from
// it (a box filter costs about two operations per tap row instead of one per tap).
func (p *fusedPlan) addTerm(layer, channel, count int, kernel []float32) {
	k2 := len(kernel)
	var box float32
	for _, v := range kernel {
		if v == 0 {
			continue
		}
		n := 0
		for _, u := range kernel {
			if u == v {
				n++
			}
		}
		if n >= k2-2 {
			box = v
			break
		}
	}
	t := fusedTerm{layer: layer, channel: channel, count: count, box: box, kernel: len(p.kernels)}
	for _, v := range kernel {
		r := v - box
		if v == box {
			r = 0
		}
		p.kernels = append(p.kernels, r)
		if r != 0 {
			t.taps++
		}
	}
	p.terms = append(p.terms, t)
}

// fusedScratch is one worker's reusable buffers.
type fusedScratch struct {
	planes []float32   // fusedChunk output planes on layer 0's grid
	small  [][]float32 // one grid-sized plane per later layer
	padded []float32   // the zero-padded sum of a term's input channels
	rows   []float32   // horizontal box sums of the padded rows
	interp []float32   // horizontal pass of the bilinear upsample
}

// correlate adds term t of image b to the gh x gw target: target[y][x] += sum over the
// term's channels and kernel taps of k[ky][kx] * plane[y+ky-pad][x+kx-pad] (stride 1,
// zeros outside the plane), with k = box + residual.
func (p *fusedPlan) correlate(target []float32, fm Tensor, b int, t fusedTerm, el embedLayer, sc *fusedScratch) {
	ps, pad := p.ps, p.pad
	wp, hp := el.w+2*pad, el.h+2*pad
	hw := el.h * el.w
	if t.box == 0 && t.count == 1 && (ps != 3 || t.taps <= 4) {
		// A few taps of a single channel: shifted row updates straight from the map.
		p.correlateSparse(target, fm.Data[(b*el.c+t.channel)*hw:(b*el.c+t.channel+1)*hw], p.kernels[t.kernel:t.kernel+ps*ps], el)
		return
	}
	padded := sc.padded[:hp*wp]
	clear(padded[:pad*wp])
	clear(padded[(pad+el.h)*wp:])
	base := (b*el.c + t.channel) * hw
	for y := 0; y < el.h; y++ {
		row := padded[(y+pad)*wp : (y+pad+1)*wp]
		clear(row[:pad])
		copy(row[pad:], fm.Data[base+y*el.w:base+(y+1)*el.w])
		clear(row[pad+el.w:])
		for c := 1; c < t.count; c++ {
			src := fm.Data[base+c*hw+y*el.w : base+c*hw+(y+1)*el.w]
			dst := row[pad : pad+len(src)]
			for x, v := range src {
				dst[x] += v
			}
		}
	}
	gw, gh := el.gw, el.gh
	if t.box != 0 {
		rows := sc.rows[:hp*gw]
		for y := 0; y < hp; y++ {
			r := padded[y*wp : (y+1)*wp]
			h := rows[y*gw : (y+1)*gw]
			if ps == 3 {
				r = r[:gw+2]
				for x := range h {
					q := r[x : x+3 : x+3]
					h[x] = q[0] + q[1] + q[2]
				}
				continue
			}
			for x := range h {
				var s float32
				for _, v := range r[x : x+ps] {
					s += v
				}
				h[x] = s
			}
		}
		u := t.box
		for y := 0; y < gh; y++ {
			o := target[y*gw : (y+1)*gw]
			if ps == 3 {
				h0 := rows[y*gw : (y+1)*gw]
				h1 := rows[(y+1)*gw : (y+2)*gw]
				h2 := rows[(y+2)*gw : (y+3)*gw]
				for x := range o {
					o[x] += u * (h0[x] + h1[x] + h2[x])
				}
				continue
			}
			for x := range o {
				var s float32
				for ky := 0; ky < ps; ky++ {
					s += rows[(y+ky)*gw+x]
				}
				o[x] += u * s
			}
		}
	}
	kernel := p.kernels[t.kernel : t.kernel+ps*ps]
	if t.taps == 0 {
		return
	}
	if ps == 3 && t.taps > 4 {
		k00, k01, k02 := kernel[0], kernel[1], kernel[2]
		k10, k11, k12 := kernel[3], kernel[4], kernel[5]
		k20, k21, k22 := kernel[6], kernel[7], kernel[8]
		for y := 0; y < gh; y++ {
			o := target[y*gw : (y+1)*gw]
			r0 := padded[y*wp : y*wp+gw+2]
			r1 := padded[(y+1)*wp : (y+1)*wp+gw+2]
			r2 := padded[(y+2)*wp : (y+2)*wp+gw+2]
			for x := range o {
				a := r0[x : x+3 : x+3]
				b := r1[x : x+3 : x+3]
				c := r2[x : x+3 : x+3]
				o[x] += k00*a[0] + k01*a[1] + k02*a[2] +
					k10*b[0] + k11*b[1] + k12*b[2] +
					k20*c[0] + k21*c[1] + k22*c[2]
			}
		}
		return
	}
	for y := 0; y < gh; y++ {
		o := target[y*gw : (y+1)*gw]
		for ky := 0; ky < ps; ky++ {
			r := padded[(y+ky)*wp : (y+ky)*wp+gw+ps-1]
			for kx, k := range kernel[ky*ps : (ky+1)*ps] {
				if k == 0 {
					continue
				}
				in := r[kx : kx+len(o)]
				for x, v := range in {
					o[x] += k * v
				}
			}
		}
	}
}

// correlateSparse adds the correlation of one h x w plane with a kernel to the gh x gw
// target, visiting only non-zero taps and clipping each shifted row to the plane (the
// zero padding contributes nothing).
func (p *fusedPlan) correlateSparse(target, plane, kernel []float32, el embedLayer) {
	ps, pad := p.ps, p.pad
	for ky := 0; ky < ps; ky++ {
		dy := ky - pad
		y0, y1 := max(0, -dy), min(el.gh, el.h-dy)
		for kx := 0; kx < ps; kx++ {
			k := kernel[ky*ps+kx]
			dx := kx - pad
			x0, x1 := max(0, -dx), min(el.gw, el.w-dx)
			if k == 0 || x0 >= x1 {
				continue
			}
			for y := y0; y < y1; y++ {
				o := target[y*el.gw+x0 : y*el.gw+x1]
				in := plane[(y+dy)*el.w+x0+dx:]
				in = in[:len(o)]
				for i, v := range in {
					o[i] += k * v
				}
			}
		}
	}
}

// run computes output dimensions [j0, j1) of image b into out (the [B*P, dim] result).
func (p *fusedPlan) run(layers []Tensor, b, j0, j1 int, sc *fusedScratch, out []float32) {
	np := p.refH * p.refW
	for j := j0; j < j1; j++ {
		o := sc.planes[(j-j0)*np : (j-j0+1)*np]
		clear(o)
		ts := p.terms[p.termStart[j]:p.termStart[j+1]]
		for k := 0; k < len(ts); {
			l := ts[k].layer
			e := k + 1
			for e < len(ts) && ts[e].layer == l {
				e++
			}
			fl := &p.layers[l]
			target := o
			if !fl.identity {
				target = sc.small[l]
				clear(target)
			}
			for _, t := range ts[k:e] {
				p.correlate(target, layers[l], b, t, fl.embedLayer, sc)
			}
			if !fl.identity {
				imaging.AddBilinearTaps(o, target, fl.gw, fl.ty, fl.tx, sc.interp)
			}
			k = e
		}
	}
	// Transpose the planes into rows of out: each row receives j1-j0 contiguous values
	// (whole cache lines), read from planes whose stride is not a power of two.
	n := j1 - j0
	for q := 0; q < np; q++ {
		row := out[(b*np+q)*p.dim+j0 : (b*np+q)*p.dim+j1]
		planes := sc.planes[q : q+(n-1)*np+1]
		for jj := range row {
			row[jj] = planes[jj*np]
		}
	}
}

// embedFused is Embed's stride-1 path.
func embedFused(layers []Tensor, cfg EmbedConfig, dst []float32) (Tensor, int, int, error) {
	g, err := checkEmbed(layers, cfg)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	out, err := embedOutput(dst, g.size)
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	p := newFusedPlan(g, cfg)
	chunks := (p.dim + fusedChunk - 1) / fusedChunk
	tasks := g.batch * chunks
	workers := min(runtime.GOMAXPROCS(0), tasks)
	var next atomic.Int64
	err = parallel.For(workers, func(int) {
		sc := &fusedScratch{planes: make([]float32, fusedChunk*p.refH*p.refW), small: make([][]float32, len(p.layers))}
		maxPad, maxRows, maxInterp := 0, 0, 0
		for l, fl := range p.layers {
			hp := fl.h + 2*p.pad
			maxPad = max(maxPad, hp*(fl.w+2*p.pad))
			maxRows = max(maxRows, hp*fl.gw)
			if !fl.identity {
				sc.small[l] = make([]float32, fl.gh*fl.gw)
				maxInterp = max(maxInterp, fl.gh*p.refW)
			}
		}
		sc.padded = make([]float32, maxPad)
		sc.rows = make([]float32, maxRows)
		sc.interp = make([]float32, maxInterp)
		for {
			t := int(next.Add(1)) - 1
			if t >= tasks {
				return
			}
			b, c := t/chunks, t%chunks
			p.run(layers, b, c*fusedChunk, min((c+1)*fusedChunk, p.dim), sc, out)
		}
	})
	if err != nil {
		return Tensor{}, 0, 0, err
	}
	return Tensor{Shape: []int{g.rows, cfg.TargetEmbedDim}, Data: out}, p.refH, p.refW, nil
}
