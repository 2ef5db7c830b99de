package demodata

import (
	"math"
	"math/rand/v2"
)

// defect is a rendered defect: an opacity per pixel of an n×n image and the colour it
// blends towards.
type defect struct {
	alpha []float64
	// target returns the RGB colour the defect gives pixel p whose gray value is v.
	target func(p int, v uint8) [3]float64
}

// apply blends the defect into the gray image base: out = round(v + (T − v)·a) per
// channel. The mask holds the pixels with a >= 0.5 whose RGB value differs from the base.
func (d defect) apply(base []uint8) (rgb []uint8, mask []bool) {
	rgb = grayToRGB(base)
	mask = make([]bool, len(base))
	for p, a := range d.alpha {
		if a == 0 {
			continue
		}
		v := base[p]
		t := d.target(p, v)
		changed := false
		for c := 0; c < 3; c++ {
			o := clampU8(float64(v) + (t[c]-float64(v))*a)
			rgb[3*p+c] = o
			changed = changed || o != v
		}
		mask[p] = a >= 0.5 && changed
	}
	return rgb, mask
}

// uniform returns a uniform float64 in [lo, hi).
func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// drawDefect draws the random parameters of one defect of the given kind and renders it.
func drawDefect(rng *rand.Rand, kind string, n int, donor photo) defect {
	switch kind {
	case "scratch":
		return drawScratch(rng, n)
	case "stain":
		return drawStain(rng, n)
	case "paste":
		return drawPaste(rng, n, donor)
	default: // "color"
		return drawColorSpot(rng, n)
	}
}

// fixedColour is a defect target that ignores the pixel.
func fixedColour(c [3]float64) func(int, uint8) [3]float64 {
	return func(int, uint8) [3]float64 { return c }
}

// shadedColour tints the pixel with c while keeping part of its shading.
func shadedColour(c [3]float64, floor float64) func(int, uint8) [3]float64 {
	return func(_ int, v uint8) [3]float64 {
		k := floor + (1-floor)*float64(v)/255
		return [3]float64{c[0] * k, c[1] * k, c[2] * k}
	}
}

// box returns the pixel range [x0, x1) × [y0, y1) of the square (cx ± r, cy ± r) inside
// an n×n image.
func box(cx, cy, r float64, n int) (x0, y0, x1, y1 int) {
	clampI := func(v float64) int { return int(min(max(v, 0), float64(n))) }
	return clampI(math.Floor(cx - r)), clampI(math.Floor(cy - r)), clampI(math.Ceil(cx + r + 1)), clampI(math.Ceil(cy + r + 1))
}

// drawScratch renders a quadratic Bézier curve with an anti-aliased, end-tapered width.
func drawScratch(rng *rand.Rand, n int) defect {
	fn, s := float64(n), float64(n)/256
	length := fn * uniform(rng, 0.35, 0.7)
	x0, y0 := fn*uniform(rng, 0.15, 0.85), fn*uniform(rng, 0.15, 0.85)
	th := uniform(rng, 0, 2*math.Pi)
	x2, y2 := x0+length*math.Cos(th), y0+length*math.Sin(th)
	bend := uniform(rng, -0.3, 0.3) * length
	x1, y1 := (x0+x2)/2-bend*math.Sin(th), (y0+y2)/2+bend*math.Cos(th)
	hw := max(0.7, s*uniform(rng, 1.2, 2.4))
	col := [3]float64{236, 233, 222} // bright, slightly warm
	if rng.IntN(2) == 0 {
		col = [3]float64{32, 27, 22} // dark, slightly brown
	}

	const segs = 48
	var px, py [segs + 1]float64
	for k := 0; k <= segs; k++ {
		t := float64(k) / segs
		a, b, c := (1-t)*(1-t), 2*(1-t)*t, t*t
		px[k], py[k] = a*x0+b*x1+c*x2, a*y0+b*y1+c*y2
	}
	d := defect{alpha: make([]float64, n*n), target: fixedColour(col)}
	minX, maxX := min(x0, x1, x2), max(x0, x1, x2)
	minY, maxY := min(y0, y1, y2), max(y0, y1, y2)
	bx0, by0, bx1, by1 := box((minX+maxX)/2, (minY+maxY)/2, max(maxX-minX, maxY-minY)/2+hw+2, n)
	reach2 := (hw + 0.5) * (hw + 0.5)
	for y := by0; y < by1; y++ {
		for x := bx0; x < bx1; x++ {
			qx, qy := float64(x)+0.5, float64(y)+0.5
			best := 0.0
			for k := 0; k < segs; k++ {
				ex, ey := px[k+1]-px[k], py[k+1]-py[k]
				l2 := ex*ex + ey*ey
				u := 0.0
				if l2 > 0 {
					u = min(max(((qx-px[k])*ex+(qy-py[k])*ey)/l2, 0), 1)
				}
				rx, ry := qx-px[k]-u*ex, qy-py[k]-u*ey
				d2 := rx*rx + ry*ry
				if d2 >= reach2 {
					continue // farther than the widest point of the line reaches
				}
				dist := math.Sqrt(d2)
				t := (float64(k) + u) / segs
				w := hw * math.Sqrt(min(1, 5*min(t, 1-t)))
				best = max(best, min(max(w+0.5-dist, 0), 1))
			}
			d.alpha[y*n+x] = best
		}
	}
	return d
}

// blob renders an irregular disc (radius modulated by three harmonics) with a smooth
// edge of the given softness, scaled by opacity.
func blob(rng *rand.Rand, n int, radius, wobble, soft, opacity float64) []float64 {
	fn := float64(n)
	cx, cy := fn*uniform(rng, 0.15, 0.85), fn*uniform(rng, 0.15, 0.85)
	var amp, phase [3]float64
	for h := range amp {
		amp[h] = wobble * uniform(rng, 0, 1) / float64(h+1)
		phase[h] = uniform(rng, 0, 2*math.Pi)
	}
	alpha := make([]float64, n*n)
	x0, y0, x1, y1 := box(cx, cy, radius*(1+2*wobble)+soft+1, n)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			th := math.Atan2(dy, dx)
			r := 1.0
			for h := range amp {
				r += amp[h] * math.Cos(float64(h+1)*th+phase[h])
			}
			e := min(max((radius*r-math.Hypot(dx, dy))/soft+0.5, 0), 1)
			alpha[y*n+x] = opacity * e * e * (3 - 2*e)
		}
	}
	return alpha
}

// drawStain renders a translucent brownish or oily blob that darkens and tints the texture.
func drawStain(rng *rand.Rand, n int) defect {
	fn, s := float64(n), float64(n)/256
	colours := [][3]float64{{95, 62, 32}, {48, 44, 58}, {130, 72, 38}}
	col := colours[rng.IntN(len(colours))]
	radius := fn * uniform(rng, 0.04, 0.09)
	soft := max(1.5, s*uniform(rng, 2, 5))
	alpha := blob(rng, n, radius, 0.25, soft, uniform(rng, 0.6, 0.85))
	return defect{alpha: alpha, target: shadedColour(col, 0.45)}
}

// drawColorSpot renders a small saturated colour spot that keeps the texture's shading.
func drawColorSpot(rng *rand.Rand, n int) defect {
	fn, s := float64(n), float64(n)/256
	colours := [][3]float64{{225, 35, 35}, {40, 190, 60}, {40, 80, 230}, {235, 205, 30}, {210, 45, 190}, {245, 130, 25}}
	col := colours[rng.IntN(len(colours))]
	radius := fn * uniform(rng, 0.03, 0.06)
	soft := max(1, s*uniform(rng, 1, 3))
	alpha := blob(rng, n, radius, 0.15, soft, uniform(rng, 0.8, 0.95))
	return defect{alpha: alpha, target: shadedColour(col, 0.55)}
}

// drawPaste renders a rotated rectangle of the donor photo (another texture) with a slight
// colour cast and a one-pixel anti-aliased border.
func drawPaste(rng *rand.Rand, n int, donor photo) defect {
	fn := float64(n)
	a, b := fn*uniform(rng, 0.06, 0.14), fn*uniform(rng, 0.06, 0.14)
	phi := uniform(rng, 0, math.Pi)
	cx, cy := fn*uniform(rng, 0.15, 0.85), fn*uniform(rng, 0.15, 0.85)
	half := math.Hypot(a, b)/2 + 2
	// Donor offset such that every pixel of the rectangle's bounding box maps inside it.
	dcx := uniform(rng, half, float64(donor.w)-half)
	dcy := uniform(rng, half, float64(donor.h)-half)
	ox, oy := int(math.Round(dcx-cx)), int(math.Round(dcy-cy))
	cast := [3]float64{8, 0, -8}
	if rng.IntN(2) == 0 {
		cast = [3]float64{-8, 0, 8}
	}
	cs, sn := math.Cos(phi), math.Sin(phi)
	alpha := make([]float64, n*n)
	x0, y0, x1, y1 := box(cx, cy, half, n)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			u, v := dx*cs+dy*sn, -dx*sn+dy*cs
			sd := max(math.Abs(u)-a/2, math.Abs(v)-b/2)
			alpha[y*n+x] = min(max(0.5-sd, 0), 1)
		}
	}
	target := func(p int, _ uint8) [3]float64 {
		x, y := p%n+ox, p/n+oy
		g := float64(donor.pix[y*donor.w+x])
		return [3]float64{min(max(g+cast[0], 0), 255), g + cast[1], min(max(g+cast[2], 0), 255)}
	}
	return defect{alpha: alpha, target: target}
}
