package core

import (
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"sync"

	"github.com/libpatchcore/libpatchcore/internal/imaging"
)

// MaxImagePixels is the largest image (Width*Height) the library accepts: 1<<28 pixels,
// e.g. 16384 x 16384. Larger images, decoded or passed in, are rejected with
// ErrInvalidArgument.
const MaxImagePixels = 1 << 28

// Image is an 8-bit interleaved image in caller memory: pixel (x, y) starts at
// Pix[y*Stride + x*Channels]. Channels is 1 (grayscale, replicated to RGB like PIL's
// convert("RGB")), 3 (RGB, or BGR when BGR is set) or 4 (RGBA/BGRA; alpha is ignored, as
// convert("RGB") drops it). BGR has no effect on grayscale images. Stride is in bytes and
// at least Width*Channels.
type Image struct {
	Width, Height, Channels, Stride int
	Pix                             []byte
	BGR                             bool
}

// Validate checks the geometry: positive size, at most MaxImagePixels pixels,
// Channels 1, 3 or 4, Stride >= Width*Channels and a Pix long enough for every row.
func (im Image) Validate() error {
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("%w: image size %dx%d is not positive", ErrInvalidArgument, im.Width, im.Height)
	}
	if im.Width > MaxImagePixels/im.Height {
		return fmt.Errorf("%w: image %dx%d exceeds the limit of %d pixels", ErrInvalidArgument, im.Width, im.Height, MaxImagePixels)
	}
	if im.Channels != 1 && im.Channels != 3 && im.Channels != 4 {
		return fmt.Errorf("%w: image has %d channels, want 1, 3 or 4", ErrInvalidArgument, im.Channels)
	}
	rowBytes := im.Width * im.Channels
	if im.Stride < rowBytes {
		return fmt.Errorf("%w: image stride %d is smaller than a row of %d bytes", ErrInvalidArgument, im.Stride, rowBytes)
	}
	if im.Height-1 > (math.MaxInt-rowBytes)/im.Stride {
		return fmt.Errorf("%w: image of %d rows with stride %d overflows", ErrInvalidArgument, im.Height, im.Stride)
	}
	if need := (im.Height-1)*im.Stride + rowBytes; len(im.Pix) < need {
		return fmt.Errorf("%w: image buffer has %d bytes, %dx%dx%d with stride %d needs %d",
			ErrInvalidArgument, len(im.Pix), im.Width, im.Height, im.Channels, im.Stride, need)
	}
	return nil
}

// source is the imaging view of the image.
func (im Image) source() imaging.Source {
	return imaging.Source{Width: im.Width, Height: im.Height, Pix: im.Pix, Stride: im.Stride, Channels: im.Channels, BGR: im.BGR}
}

// LoadImage reads a PNG or JPEG file and converts it to 3-channel RGB the way the
// reference's PIL.Image.open(path).convert("RGB") does (see imaging.DecodeRGB for the
// conversions; PNG decoding is exact, JPEG may differ from libjpeg by a few levels).
// Errors: ErrIO when the file cannot be read, ErrFormat when it is not a decodable
// PNG/JPEG, ErrInvalidArgument when it exceeds MaxImagePixels.
func LoadImage(path string) (Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("%w: reading image: %v", ErrIO, err)
	}
	pix, w, h, err := imaging.DecodeRGB(data, MaxImagePixels)
	switch {
	case errors.Is(err, imaging.ErrTooLarge):
		return Image{}, fmt.Errorf("%w: image %s: %v", ErrInvalidArgument, path, err)
	case err != nil:
		return Image{}, fmt.Errorf("%w: image %s: %v", ErrFormat, path, err)
	}
	return Image{Width: w, Height: h, Channels: 3, Stride: 3 * w, Pix: pix}, nil
}

// ImageTransform is the reference dataset transform (datasets/mvtec.py transform_img):
// Resize(Resize) (shorter side to Resize pixels, Pillow antialiased bilinear in uint8),
// CenterCrop(CropSize), ToTensor (/255) and Normalize(Mean, Std), all per channel in
// float32.
type ImageTransform struct {
	Resize, CropSize int
	Mean, Std        [3]float32
}

// DefaultImageTransform is the reference default: Resize 256, CenterCrop 224, ImageNet
// mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225].
func DefaultImageTransform() ImageTransform {
	return ImageTransform{
		Resize:   256,
		CropSize: 224,
		Mean:     [3]float32{0.485, 0.456, 0.406},
		Std:      [3]float32{0.229, 0.224, 0.225},
	}
}

// Validate checks 0 < CropSize <= Resize (so the crop always fits the resized image),
// finite Mean and finite non-zero Std.
func (t ImageTransform) Validate() error {
	if t.Resize <= 0 || t.CropSize <= 0 || t.CropSize > t.Resize {
		return fmt.Errorf("%w: transform needs 0 < crop size (%d) <= resize (%d)", ErrInvalidArgument, t.CropSize, t.Resize)
	}
	if t.CropSize > MaxImagePixels/t.CropSize {
		return fmt.Errorf("%w: crop size %d is too large", ErrInvalidArgument, t.CropSize)
	}
	for c := 0; c < 3; c++ {
		m, s := float64(t.Mean[c]), float64(t.Std[c])
		if math.IsNaN(m) || math.IsInf(m, 0) || math.IsNaN(s) || math.IsInf(s, 0) || s == 0 {
			return fmt.Errorf("%w: transform channel %d has mean %v and std %v", ErrInvalidArgument, c, m, s)
		}
	}
	return nil
}

// TensorSize is the number of floats Apply writes: 3*CropSize*CropSize.
func (t ImageTransform) TensorSize() int {
	return 3 * t.CropSize * t.CropSize
}

// imageCropPool recycles the uint8 crops Apply normalises.
var imageCropPool sync.Pool

// Apply runs the transform on img and writes the normalised [3, CropSize, CropSize] CHW
// float32 tensor to dst[:TensorSize()] (dst may be one slot of a batch tensor). The result
// equals the reference's to float32 rounding: the uint8 resize and crop are bit-exact
// Pillow/torchvision, and (v/255 - mean)/std is evaluated in float32 as torch does.
func (t ImageTransform) Apply(img Image, dst []float32) error {
	if err := t.Validate(); err != nil {
		return err
	}
	n := t.TensorSize()
	if len(dst) < n {
		return fmt.Errorf("%w: destination has %d floats, the [3,%d,%d] tensor needs %d", ErrInvalidArgument, len(dst), t.CropSize, t.CropSize, n)
	}
	var crop []byte
	if p, ok := imageCropPool.Get().(*[]byte); ok && cap(*p) >= n {
		crop = (*p)[:n]
	} else {
		crop = make([]byte, n)
	}
	defer imageCropPool.Put(&crop)
	if err := t.cropInto(img, crop); err != nil {
		return err
	}
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			lut[c][v] = (float32(v)/255 - t.Mean[c]) / t.Std[c]
		}
	}
	plane := t.CropSize * t.CropSize
	r, g, b := dst[:plane], dst[plane:2*plane], dst[2*plane:3*plane]
	for i := 0; i < plane; i++ {
		px := crop[3*i : 3*i+3]
		r[i] = lut[0][px[0]]
		g[i] = lut[1][px[1]]
		b[i] = lut[2][px[2]]
	}
	return nil
}

// ApplyU8 runs only the uint8 part of the transform (Resize + CenterCrop) and returns the
// CropSize x CropSize x 3 RGB crop, row-major (for tests and overlays).
func (t ImageTransform) ApplyU8(img Image) ([]uint8, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	crop := make([]byte, t.TensorSize())
	if err := t.cropInto(img, crop); err != nil {
		return nil, err
	}
	return crop, nil
}

// cropInto validates img and writes its resized, centre-cropped RGB pixels to crop; only
// the cropped window of the resize is computed.
func (t ImageTransform) cropInto(img Image, crop []byte) error {
	if err := img.Validate(); err != nil {
		return err
	}
	w, h, err := imaging.ResizeShorterSide(img.Width, img.Height, t.Resize)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	top, err := imaging.CenterCropOffset(h, t.CropSize)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	left, err := imaging.CenterCropOffset(w, t.CropSize)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	win := image.Rect(left, top, left+t.CropSize, top+t.CropSize)
	if err := imaging.ResizeBilinearRGB(img.source(), w, h, win, crop); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return nil
}
