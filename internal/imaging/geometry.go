package imaging

import "fmt"

// ResizeShorterSide returns torchvision's output size for Resize(size) with an int size
// (torchvision 0.14 _compute_resized_output_size): the shorter side becomes size and the
// longer one int(size * long / short), a correctly rounded float64 quotient truncated like
// Python's int(). Square images become size x size.
func ResizeShorterSide(w, h, size int) (outW, outH int, err error) {
	if w <= 0 || h <= 0 || size <= 0 {
		return 0, 0, fmt.Errorf("%w: resize of a %dx%d image to %d", ErrInvalid, w, h, size)
	}
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	if size > (1<<53)/long {
		return 0, 0, fmt.Errorf("%w: resizing %dx%d to a shorter side of %d overflows", ErrInvalid, w, h, size)
	}
	// Python divides the exact integer product; below 2**53 it is exact in float64 too.
	newLong := int(float64(size*long) / float64(short))
	if w <= h {
		return size, newLong, nil
	}
	return newLong, size, nil
}

// CenterCropOffset is torchvision's CenterCrop offset int(round((in - crop) / 2)) with
// Python's round-half-to-even; crop must not exceed in.
func CenterCropOffset(in, crop int) (int, error) {
	if crop <= 0 || crop > in {
		return 0, fmt.Errorf("%w: crop %d of a side of %d", ErrInvalid, crop, in)
	}
	d := in - crop
	q := d / 2
	if d%2 == 1 && q%2 == 1 {
		q++ // q + 0.5 rounds to the even neighbour q + 1
	}
	return q, nil
}
