package main

/*
#include <stddef.h>
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/libpatchcore/libpatchcore/core"
)

// maxElements bounds every buffer the exports view or fill (2^40 elements), far above
// any real PatchCore workload and far below what unsafe.Slice accepts.
const maxElements = 1 << 40

// maxLayers bounds the number of feature layers of a model or an embedding call.
const maxLayers = 16

// handleID is the registry id a handle carries. It is read in Go, never passed to a C
// helper: cgo checks every pointer argument of a C call, and a made-up handle that happens
// to be the address of a Go object holding pointers would make that check panic instead
// of the lookup reporting INVALID_HANDLE.
func handleID(h unsafe.Pointer) uintptr { return uintptr(h) }

// size multiplies dimensions for an element count: each must be positive, and the product
// at most maxElements (OUT_OF_MEMORY otherwise, without overflowing).
func size(what string, dims ...int64) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d <= 0 {
			return 0, errorf(statusInvalidArgument, "%s shape %v has a non-positive dimension", what, dims)
		}
		if n > maxElements/d {
			return 0, errorf(statusOutOfMemory, "%s of shape %v exceeds the limit of 2^40 elements", what, dims)
		}
		n *= d
	}
	return int(n), nil
}

// inRange checks lo <= v <= hi for a named argument.
func inRange(what string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return errorf(statusInvalidArgument, "%s = %d is out of range [%d, %d]", what, v, lo, hi)
	}
	return nil
}

// notNull returns an INVALID_ARGUMENT error naming a required pointer that is NULL.
func notNull(p unsafe.Pointer, what string) error {
	if p == nil {
		return errorf(statusInvalidArgument, "%s is NULL", what)
	}
	return nil
}

// goString copies a required NUL-terminated string argument.
func goString(p *C.pc_cchar, what string) (string, error) {
	if p == nil {
		return "", errorf(statusInvalidArgument, "%s is NULL", what)
	}
	return C.GoString((*C.char)(unsafe.Pointer(p))), nil
}

// optString copies an optional string argument; NULL gives "".
func optString(p *C.pc_cchar) string {
	if p == nil {
		return ""
	}
	return C.GoString((*C.char)(unsafe.Pointer(p)))
}

// goStrings copies count non-NULL, non-empty strings (1 <= count <= limit).
func goStrings(p *C.pc_cstr, count C.size_t, what string, limit int) ([]string, error) {
	if p == nil {
		return nil, errorf(statusInvalidArgument, "%s is NULL", what)
	}
	if count == 0 || uint64(count) > uint64(limit) {
		return nil, errorf(statusInvalidArgument, "%s count %d is out of range [1, %d]", what, uint64(count), limit)
	}
	ptrs := unsafe.Slice(p, int(count))
	out := make([]string, len(ptrs))
	for i, s := range ptrs {
		if s == nil {
			return nil, errorf(statusInvalidArgument, "%s[%d] is NULL", what, i)
		}
		out[i] = C.GoString((*C.char)(unsafe.Pointer(s)))
		if out[i] == "" {
			return nil, errorf(statusInvalidArgument, "%s[%d] is empty", what, i)
		}
	}
	return out, nil
}

// floatsIn views n floats of caller memory for the duration of the call.
func floatsIn(p *C.pc_cfloat, n int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n)
}

// floatsOut views n floats of a caller output buffer for the duration of the call.
func floatsOut(p *C.float, n int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n)
}

// matrixIn views a required float32 [n, d] input as a tensor (borrowed, not copied).
func matrixIn(p *C.pc_cfloat, n, d C.int64_t, what string) (core.Tensor, error) {
	if p == nil {
		return core.Tensor{}, errorf(statusInvalidArgument, "%s is NULL", what)
	}
	size, err := size(what, int64(n), int64(d))
	if err != nil {
		return core.Tensor{}, err
	}
	return core.Tensor{Shape: []int{int(n), int(d)}, Data: floatsIn(p, size)}, nil
}

// layersIn views n_layers float32 NCHW feature maps, layers[i] of shape
// shapes[4i..4i+3], as tensors (borrowed, not copied).
func layersIn(layers *C.pc_cfloatp, shapes *C.pc_ci64, nLayers C.int32_t) ([]core.Tensor, error) {
	if layers == nil || shapes == nil {
		return nil, errorf(statusInvalidArgument, "layers or shapes is NULL")
	}
	if err := inRange("n_layers", int64(nLayers), 1, maxLayers); err != nil {
		return nil, err
	}
	ptrs := unsafe.Slice(layers, int(nLayers))
	dims := unsafe.Slice((*int64)(unsafe.Pointer(shapes)), 4*int(nLayers))
	out := make([]core.Tensor, nLayers)
	for i, p := range ptrs {
		if p == nil {
			return nil, errorf(statusInvalidArgument, "layers[%d] is NULL", i)
		}
		shape := dims[4*i : 4*i+4]
		n, err := size(fmt.Sprintf("layer %d", i), shape...)
		if err != nil {
			return nil, err
		}
		out[i] = core.Tensor{
			Shape: []int{int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3])},
			Data:  unsafe.Slice((*float32)(unsafe.Pointer(p)), n),
		}
	}
	return out, nil
}

// imagesIn views n_images 8-bit images stored one after another (image i at
// pixels + i*height*stride) as core.Images borrowing caller memory.
func imagesIn(pixels *C.pc_cu8, nImages, width, height, stride, channels, format C.int32_t) (core.ImageSlice, error) {
	if pixels == nil {
		return nil, errorf(statusInvalidArgument, "pixels is NULL")
	}
	switch {
	case nImages < 1:
		return nil, errorf(statusInvalidArgument, "n_images = %d, need at least 1", nImages)
	case width < 1 || width > maxImageSide || height < 1 || height > maxImageSide:
		return nil, errorf(statusInvalidArgument, "image size %dx%d is out of range [1, %d] per side", width, height, maxImageSide)
	case int64(width)*int64(height) > core.MaxImagePixels:
		return nil, errorf(statusInvalidArgument, "image size %dx%d exceeds the limit of 2^28 pixels", width, height)
	case channels != 1 && channels != 3 && channels != 4:
		return nil, errorf(statusInvalidArgument, "channels = %d, want 1, 3 or 4", channels)
	case int64(stride) < int64(width)*int64(channels):
		return nil, errorf(statusInvalidArgument, "stride = %d is smaller than a row of %d x %d bytes", stride, width, channels)
	case format != C.PATCHCORE_PIXEL_RGB && format != C.PATCHCORE_PIXEL_BGR:
		return nil, errorf(statusInvalidArgument, "pixel_format = %d, want PATCHCORE_PIXEL_RGB (0) or PATCHCORE_PIXEL_BGR (1)", format)
	}
	perImage, err := size("image", int64(height), int64(stride))
	if err != nil {
		return nil, err
	}
	// The last row of the last image only needs width*channels bytes, not a whole stride.
	last := (int64(height)-1)*int64(stride) + int64(width)*int64(channels)
	if int64(nImages-1) > (maxElements-last)/int64(perImage) {
		return nil, errorf(statusOutOfMemory, "%d images of %d bytes exceed the limit of 2^40 bytes", nImages, perImage)
	}
	all := unsafe.Slice((*byte)(unsafe.Pointer(pixels)), int64(nImages-1)*int64(perImage)+last)
	images := make(core.ImageSlice, nImages)
	for i := range images {
		off := i * perImage
		images[i] = core.Image{
			Width: int(width), Height: int(height), Channels: int(channels), Stride: int(stride),
			Pix: all[off : off+int(last) : off+int(last)], BGR: format == C.PATCHCORE_PIXEL_BGR,
		}
	}
	return images, nil
}

// setNeeded writes n to an optional out_needed.
func setNeeded(p *C.size_t, n int) {
	if p != nil {
		*p = C.size_t(n)
	}
}

// outBuffer checks an output buffer of capacity elements against the needed count and
// writes the count to an optional outNeeded. A too small buffer, or NULL with capacity 0
// (a size query), gives BUFFER_TOO_SMALL; NULL with a capacity is INVALID_ARGUMENT.
func outBuffer(p unsafe.Pointer, capacity C.size_t, needed int, outNeeded *C.size_t, what string) error {
	setNeeded(outNeeded, needed)
	if p == nil && capacity != 0 {
		return errorf(statusInvalidArgument, "%s is NULL but its capacity is %d", what, uint64(capacity))
	}
	if uint64(capacity) < uint64(needed) {
		return errorf(statusBufferTooSmall, "%s holds %d elements, %d are needed", what, uint64(capacity), needed)
	}
	return nil
}

// finite checks that a float argument is neither NaN nor infinite.
func finite(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return errorf(statusInvalidArgument, "%s = %v is not finite", what, v)
	}
	return nil
}

// cBool converts an int32 flag that must be 0 or 1.
func cBool(what string, v C.int32_t) (bool, error) {
	if v != 0 && v != 1 {
		return false, errorf(statusInvalidArgument, "%s = %d, want 0 or 1", what, v)
	}
	return v == 1, nil
}

// Limits of settings, as documented in patchcore.h.
const (
	maxThreads  = 1024  // num_threads, num_workers
	maxNN       = 65536 // k nearest neighbours
	maxEmbedDim = 65536 // pretrain / target embedding dimension
	maxPatch    = 63    // patch size
	maxSigma    = 1000  // Gaussian sigma of the anomaly maps
	// maxImageSide bounds the sides of input images and segmentor outputs (pixels).
	maxImageSide = 32768
	// maxMapSide bounds a model's IMAGESIZE, the side of its anomaly maps.
	maxMapSide = 4096
	// maxModelSigma bounds a model's SIGMA.
	maxModelSigma = 64
	// maxBatch bounds a model's BATCH_SIZE (images per backbone call).
	maxBatch = 4096
	// maxFiles bounds the number of image files per call.
	maxFiles = 1 << 24
)

// defaultThreads is the thread count objects use when theirs is 0 (set by
// patchcore_set_num_threads; 0 = all cores).
var defaultThreads atomic.Int32

// checkSigma accepts a finite sigma in [0, maxSigma].
func checkSigma(sigma float64) error {
	if !(sigma >= 0 && sigma <= maxSigma) {
		return errorf(statusInvalidArgument, "sigma = %v is out of range [0, %d]", sigma, maxSigma)
	}
	return nil
}

// checkEmbedParams checks the embedding settings: an odd patch size and positive
// dimensions within the limits.
func checkEmbedParams(patchsize, pretrainDim, targetDim int64) error {
	if patchsize < 1 || patchsize > maxPatch || patchsize%2 == 0 {
		return errorf(statusInvalidArgument, "patchsize = %d must be odd and in [1, %d]", patchsize, maxPatch)
	}
	if err := inRange("pretrain_embed_dim", pretrainDim, 1, maxEmbedDim); err != nil {
		return err
	}
	return inRange("target_embed_dim", targetDim, 1, maxEmbedDim)
}

// countArg checks an element count argument: 1 <= count <= 2^40.
func countArg(what string, count C.size_t) (int, error) {
	if count == 0 || uint64(count) > maxElements {
		return 0, errorf(statusInvalidArgument, "%s = %d is out of range [1, 2^40]", what, uint64(count))
	}
	return int(count), nil
}

// bytesCopy copies n bytes of caller memory (1 <= n <= 2^40) into Go memory.
func bytesCopy(p *C.pc_cvoid, n C.size_t, what string) ([]byte, error) {
	if p == nil {
		return nil, errorf(statusInvalidArgument, "%s is NULL", what)
	}
	count, err := countArg("size", n)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(p)), count)...), nil
}
