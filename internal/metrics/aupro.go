package metrics

import (
	"fmt"
	"math"
	"slices"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// DefaultFPRLimit is the false-positive-rate integration limit of the MVTec AD AUPRO
// (and of anomalib's AUPRO).
const DefaultFPRLimit = 0.3

// AUPRO returns the normalised area under the per-region-overlap curve up to the false
// positive rate fprLimit (use DefaultFPRLimit), following the MVTec AD evaluation code:
//
//  1. Each binary mask (height×width, row-major, true = defect) is split into 8-connected
//     regions; regions are counted over the whole test set.
//  2. All pixels of all images are sorted by score, descending. A background pixel of any
//     image (normal images included) adds 1/#background to the FPR; a pixel of region r
//     adds 1/|r| to the overlap sum, and PRO = overlap sum / #regions.
//  3. One curve point is kept per distinct score (after the last pixel holding it), (0,0)
//     is prepended, the curve is cut at fprLimit by linear interpolation of the segment
//     that crosses it, integrated with the trapezoid rule and divided by fprLimit.
//
// All maps share the same height and width. At least one defect pixel and one background
// pixel are needed. Memory: 4 bytes per background pixel plus its radix scratch, 8 bytes
// per defect pixel, and one label plane.
func AUPRO(maps [][]float32, masks [][]bool, height, width int, fprLimit float64) (float64, error) {
	if height <= 0 || width <= 0 || height > math.MaxInt32/width {
		return 0, fmt.Errorf("%w: metrics: AUPRO map size %d×%d", errs.ErrInvalidArgument, height, width)
	}
	if !(fprLimit > 0 && fprLimit <= 1) {
		return 0, fmt.Errorf("%w: metrics: AUPRO FPR limit %v outside (0, 1]", errs.ErrInvalidArgument, fprLimit)
	}
	npos, total, err := checkPixels(maps, masks)
	if err != nil {
		return 0, err
	}
	for i, m := range maps {
		if len(m) != height*width {
			return 0, fmt.Errorf("%w: metrics: anomaly map %d has %d pixels, want %d×%d", errs.ErrInvalidArgument, i, len(m), height, width)
		}
	}
	if npos == 0 || npos == total {
		return 0, fmt.Errorf("%w: metrics: AUPRO needs defect and background pixels, got %d defect pixels of %d", errs.ErrInvalidArgument, npos, total)
	}

	// Background keys, and defect pixels packed as key<<32 | global region index.
	bg := make([]uint32, 0, total-npos)
	fg := make([]uint64, 0, npos)
	var regionSize []int
	labels := make([]int32, height*width)
	stack := make([]int32, 0, 64)
	for i, m := range maps {
		base := len(regionSize)
		var n int
		n, stack = label8(masks[i], labels, height, width, stack)
		for r := 0; r < n; r++ {
			regionSize = append(regionSize, 0)
		}
		for j, v := range m {
			if l := labels[j]; l == 0 {
				bg = append(bg, scoreKey(v))
			} else {
				r := base + int(l) - 1
				regionSize[r]++
				fg = append(fg, uint64(scoreKey(v))<<32|uint64(r))
			}
		}
	}
	sortKeys(bg)
	slices.Sort(fg)

	nbg, nreg := float64(len(bg)), float64(len(regionSize))
	area, px, py := 0.0, 0.0, 0.0
	i, j := len(fg)-1, len(bg)-1
	fp, overlap := 0, 0.0
	for i >= 0 || j >= 0 {
		var k uint32
		switch {
		case i < 0:
			k = bg[j]
		case j < 0:
			k = uint32(fg[i] >> 32)
		default:
			k = max(uint32(fg[i]>>32), bg[j])
		}
		for i >= 0 && uint32(fg[i]>>32) == k {
			overlap += 1 / float64(regionSize[uint32(fg[i])])
			i--
		}
		for j >= 0 && bg[j] == k {
			fp++
			j--
		}
		x := min(float64(fp)/nbg, 1)
		y := min(overlap/nreg, 1)
		if x > fprLimit {
			yi := py + (y-py)*(fprLimit-px)/(x-px)
			area += 0.5 * (yi + py) * (fprLimit - px)
			break
		}
		area += 0.5 * (y + py) * (x - px)
		px, py = x, y
	}
	return area / fprLimit, nil
}

// label8 writes the 8-connected component labels (1..n, 0 = background) of the
// height×width mask into labels and returns n. stack is scratch space, returned grown.
func label8(mask []bool, labels []int32, height, width int, stack []int32) (int, []int32) {
	clear(labels)
	n := int32(0)
	for start, on := range mask {
		if !on || labels[start] != 0 {
			continue
		}
		n++
		labels[start] = n
		stack = append(stack[:0], int32(start))
		for len(stack) > 0 {
			p := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			y, x := p/width, p%width
			for dy := -1; dy <= 1; dy++ {
				yy := y + dy
				if yy < 0 || yy >= height {
					continue
				}
				for dx := -1; dx <= 1; dx++ {
					xx := x + dx
					if xx < 0 || xx >= width {
						continue
					}
					q := yy*width + xx
					if mask[q] && labels[q] == 0 {
						labels[q] = n
						stack = append(stack, int32(q))
					}
				}
			}
		}
	}
	return int(n), stack
}
