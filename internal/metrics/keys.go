package metrics

import (
	"fmt"
	"math"
	"slices"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Scores are compared through order-preserving uint32 keys: for finite float32 values
// a < b  <=>  key(a) < key(b), and a == b <=> key(a) == key(b) (−0 is folded onto +0,
// as numpy and sklearn compare them equal). Sorting keys instead of floats lets the
// pixel metrics use a radix sort over millions of values with 4 bytes per pixel.

// scoreKey maps a finite float32 to its order-preserving key.
func scoreKey(v float32) uint32 {
	b := math.Float32bits(v)
	if b == 0x80000000 { // −0 → +0
		b = 0
	}
	if b&0x80000000 != 0 {
		return ^b
	}
	return b | 0x80000000
}

// keyScore inverts scoreKey.
func keyScore(k uint32) float32 {
	if k&0x80000000 != 0 {
		return math.Float32frombits(k &^ 0x80000000)
	}
	return math.Float32frombits(^k)
}

// finite32 reports whether v is neither NaN nor ±Inf.
func finite32(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// radixThreshold is the length below which sortKeys falls back to a comparison sort.
const radixThreshold = 1 << 12

// sortKeys sorts a ascending. Large inputs use an LSD radix sort (3 passes of 11 bits,
// skipping passes whose digit is constant), which needs a scratch buffer of len(a).
func sortKeys(a []uint32) {
	if len(a) < radixThreshold {
		slices.Sort(a)
		return
	}
	src, dst := a, make([]uint32, len(a))
	var count [1 << 11]int
	for shift := uint(0); shift < 32; shift += 11 {
		clear(count[:])
		for _, k := range src {
			count[(k>>shift)&0x7ff]++
		}
		if count[(src[0]>>shift)&0x7ff] == len(src) {
			continue // every key has the same digit: the pass would be the identity
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			d := (k >> shift) & 0x7ff
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &a[0] {
		copy(a, src)
	}
}

// splitLabelled validates a score vector with binary labels and returns the sorted keys
// of the positive and of the negative samples.
func splitLabelled(scores []float32, labels []bool) (pos, neg []uint32, err error) {
	if len(scores) == 0 {
		return nil, nil, fmt.Errorf("%w: metrics: no scores", errs.ErrInvalidArgument)
	}
	if len(scores) != len(labels) {
		return nil, nil, fmt.Errorf("%w: metrics: %d scores but %d labels", errs.ErrInvalidArgument, len(scores), len(labels))
	}
	np := 0
	for i, s := range scores {
		if !finite32(s) {
			return nil, nil, fmt.Errorf("%w: metrics: score %d is %v", errs.ErrInvalidArgument, i, s)
		}
		if labels[i] {
			np++
		}
	}
	pos = make([]uint32, 0, np)
	neg = make([]uint32, 0, len(scores)-np)
	for i, s := range scores {
		if labels[i] {
			pos = append(pos, scoreKey(s))
		} else {
			neg = append(neg, scoreKey(s))
		}
	}
	sortKeys(pos)
	sortKeys(neg)
	return pos, neg, nil
}

// checkPixels validates anomaly maps against their masks and returns the number of
// positive and of all pixels.
func checkPixels(maps [][]float32, masks [][]bool) (npos, total int, err error) {
	if len(maps) == 0 {
		return 0, 0, fmt.Errorf("%w: metrics: no anomaly maps", errs.ErrInvalidArgument)
	}
	if len(maps) != len(masks) {
		return 0, 0, fmt.Errorf("%w: metrics: %d anomaly maps but %d masks", errs.ErrInvalidArgument, len(maps), len(masks))
	}
	for i, m := range maps {
		if len(m) == 0 {
			return 0, 0, fmt.Errorf("%w: metrics: anomaly map %d is empty", errs.ErrInvalidArgument, i)
		}
		if len(m) != len(masks[i]) {
			return 0, 0, fmt.Errorf("%w: metrics: anomaly map %d has %d pixels but its mask has %d", errs.ErrInvalidArgument, i, len(m), len(masks[i]))
		}
		for j, v := range m {
			if !finite32(v) {
				return 0, 0, fmt.Errorf("%w: metrics: anomaly map %d pixel %d is %v", errs.ErrInvalidArgument, i, j, v)
			}
			if masks[i][j] {
				npos++
			}
		}
		total += len(m)
	}
	if total >= math.MaxUint32 {
		return 0, 0, fmt.Errorf("%w: metrics: %d pixels exceed the supported 2^32-1", errs.ErrInvalidArgument, total)
	}
	return npos, total, nil
}

// splitPixels validates maps and masks and returns the sorted keys of the positive
// (mask true) and of the negative pixels of all images together.
func splitPixels(maps [][]float32, masks [][]bool) (pos, neg []uint32, err error) {
	npos, total, err := checkPixels(maps, masks)
	if err != nil {
		return nil, nil, err
	}
	pos = make([]uint32, 0, npos)
	neg = make([]uint32, 0, total-npos)
	for i, m := range maps {
		mk := masks[i]
		for j, v := range m {
			if mk[j] {
				pos = append(pos, scoreKey(v))
			} else {
				neg = append(neg, scoreKey(v))
			}
		}
	}
	sortKeys(pos)
	sortKeys(neg)
	return pos, neg, nil
}

// walkGroups visits the distinct keys of the ascending-sorted pos and neg in descending
// order, passing the number of positives and negatives that hold each key.
func walkGroups(pos, neg []uint32, fn func(key uint32, np, nn int)) {
	i, j := len(pos)-1, len(neg)-1
	for i >= 0 || j >= 0 {
		var k uint32
		switch {
		case i < 0:
			k = neg[j]
		case j < 0:
			k = pos[i]
		default:
			k = max(pos[i], neg[j])
		}
		np, nn := 0, 0
		for i >= 0 && pos[i] == k {
			np++
			i--
		}
		for j >= 0 && neg[j] == k {
			nn++
			j--
		}
		fn(k, np, nn)
	}
}
