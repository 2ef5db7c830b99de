// Package cgotest calls libpatchcore's C API through cgo for capi's tests, which cannot
// import "C" themselves (the tests of package main link this package, and the exported
// patchcore_* functions of capi satisfy its references). Its functions mirror
// include/patchcore.h with Go types: a nil slice, *string or out pointer is passed as
// NULL, and capacities and counts are passed as given, independently of slice lengths,
// so tests can lie about sizes the way a C caller could (never beyond the slice, though).
package cgotest

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -lpthread
#include <stdint.h>
#include <stdlib.h>
#include "patchcore.h"

static inline void* ct_ptr(uintptr_t id) { return (void*)id; }
static inline uintptr_t ct_id(void* p) { return (uintptr_t)p; }
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Status codes, pixel formats, methods and parameter keys of patchcore.h.
const (
	OK              = C.PATCHCORE_OK
	InvalidArgument = C.PATCHCORE_ERR_INVALID_ARGUMENT
	InvalidHandle   = C.PATCHCORE_ERR_INVALID_HANDLE
	InvalidState    = C.PATCHCORE_ERR_INVALID_STATE
	BufferTooSmall  = C.PATCHCORE_ERR_BUFFER_TOO_SMALL
	IO              = C.PATCHCORE_ERR_IO
	Format          = C.PATCHCORE_ERR_FORMAT
	OutOfMemory     = C.PATCHCORE_ERR_OUT_OF_MEMORY
	Internal        = C.PATCHCORE_ERR_INTERNAL
	Unsupported     = C.PATCHCORE_ERR_UNSUPPORTED
	Backend         = C.PATCHCORE_ERR_BACKEND

	PixelRGB = C.PATCHCORE_PIXEL_RGB
	PixelBGR = C.PATCHCORE_PIXEL_BGR

	NNExact = C.PATCHCORE_NN_EXACT
	NNIVFPQ = C.PATCHCORE_NN_IVFPQ

	CalibrateQuantile = C.PATCHCORE_CALIBRATE_QUANTILE
	CalibrateMeanStd  = C.PATCHCORE_CALIBRATE_MEAN_STD
	CalibrateF1       = C.PATCHCORE_CALIBRATE_F1

	ParamResize           = C.PATCHCORE_PARAM_RESIZE
	ParamImageSize        = C.PATCHCORE_PARAM_IMAGESIZE
	ParamPretrainEmbedDim = C.PATCHCORE_PARAM_PRETRAIN_EMBED_DIM
	ParamTargetEmbedDim   = C.PATCHCORE_PARAM_TARGET_EMBED_DIM
	ParamPatchSize        = C.PATCHCORE_PARAM_PATCHSIZE
	ParamNumNN            = C.PATCHCORE_PARAM_NUM_NN
	ParamNNMethod         = C.PATCHCORE_PARAM_NN_METHOD
	ParamSeed             = C.PATCHCORE_PARAM_SEED
	ParamNumThreads       = C.PATCHCORE_PARAM_NUM_THREADS
	ParamBatchSize        = C.PATCHCORE_PARAM_BATCH_SIZE
	ParamEmbedBackbone    = C.PATCHCORE_PARAM_EMBED_BACKBONE
	ParamPercentage       = C.PATCHCORE_PARAM_PERCENTAGE
	ParamSigma            = C.PATCHCORE_PARAM_SIGMA
	ParamMean             = C.PATCHCORE_PARAM_MEAN
	ParamStd              = C.PATCHCORE_PARAM_STD
	ParamBackbonePath     = C.PATCHCORE_PARAM_BACKBONE_PATH
	ParamSampler          = C.PATCHCORE_PARAM_SAMPLER
	ParamDevice           = C.PATCHCORE_PARAM_DEVICE
	ParamBankRows         = C.PATCHCORE_PARAM_BANK_ROWS
	ParamGridHeight       = C.PATCHCORE_PARAM_GRID_HEIGHT
	ParamGridWidth        = C.PATCHCORE_PARAM_GRID_WIDTH
	ParamThreshold        = C.PATCHCORE_PARAM_THRESHOLD

	VersionMajor  = C.PATCHCORE_VERSION_MAJOR
	VersionMinor  = C.PATCHCORE_VERSION_MINOR
	VersionPatch  = C.PATCHCORE_VERSION_PATCH
	VersionNumber = C.PATCHCORE_VERSION_NUMBER
)

// Handle is a handle value as C sees it (0 is NULL).
type Handle uintptr

// S returns a pointer to s, for the *string parameters (nil means NULL).
func S(s string) *string { return &s }

func ptr(h Handle) unsafe.Pointer { return C.ct_ptr(C.uintptr_t(h)) }

// cstrings converts optional strings to C strings; free releases them.
type cstrings []*C.char

func (cs *cstrings) str(s *string) *C.char {
	if s == nil {
		return nil
	}
	p := C.CString(*s)
	*cs = append(*cs, p)
	return p
}

// array builds a C array of C strings (a nil slice gives NULL, a nil element NULL).
// The array lives in C memory, so the caller's pointer check sees no Go pointers.
func (cs *cstrings) array(ss []*string) **C.char {
	if ss == nil {
		return nil
	}
	arr := (**C.char)(C.calloc(C.size_t(len(ss)+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	*cs = append(*cs, (*C.char)(unsafe.Pointer(arr)))
	elems := unsafe.Slice(arr, len(ss)+1)
	for i, s := range ss {
		elems[i] = cs.str(s)
	}
	return arr
}

func (cs cstrings) free() {
	for _, p := range cs {
		C.free(unsafe.Pointer(p))
	}
}

func f32(s []float32) *C.float {
	if s == nil {
		return nil
	}
	return (*C.float)(unsafe.Pointer(unsafe.SliceData(s)))
}

func u8(s []byte) *C.uint8_t {
	if s == nil {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(s)))
}

func i64(s []int64) *C.int64_t {
	if s == nil {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(s)))
}

// layerArray builds the const float* const* argument for per-layer maps: the array lives
// in C memory and the Go float slices it points to are pinned for the call.
func layerArray(layers [][]float32, pin *runtime.Pinner) (**C.float, func()) {
	if layers == nil {
		return nil, func() {}
	}
	arr := (**C.float)(C.calloc(C.size_t(len(layers)+1), C.size_t(unsafe.Sizeof((*C.float)(nil)))))
	elems := unsafe.Slice(arr, len(layers)+1)
	for i, l := range layers {
		if l != nil {
			pin.Pin(unsafe.SliceData(l))
			elems[i] = f32(l)
		}
	}
	return arr, func() { C.free(unsafe.Pointer(arr)) }
}

// out writes a returned handle to an optional Go out pointer.
func outHandle(dst *Handle, p unsafe.Pointer) {
	if dst != nil {
		*dst = Handle(C.ct_id(p))
	}
}

// ------------------------------------------------------------------ library

// VersionNumberOf calls patchcore_version_number.
func VersionNumberOf() int32 { return int32(C.patchcore_version_number()) }

// VersionString calls patchcore_version_string.
func VersionString() string { return C.GoString(C.patchcore_version_string()) }

// StatusString calls patchcore_status_string.
func StatusString(status int32) string {
	return C.GoString(C.patchcore_status_string(C.int32_t(status)))
}

// LastError returns the calling thread's whole last message (size query, then copy).
func LastError() string {
	n := C.patchcore_last_error(nil, 0)
	buf := make([]byte, n)
	C.patchcore_last_error((*C.char)(unsafe.Pointer(&buf[0])), n)
	return string(buf[:n-1])
}

// LastErrorInto calls patchcore_last_error with buf (nil: NULL) and capacity.
func LastErrorInto(buf []byte, capacity uint64) uint64 {
	var p *C.char
	if buf != nil {
		p = (*C.char)(unsafe.Pointer(unsafe.SliceData(buf)))
	}
	return uint64(C.patchcore_last_error(p, C.size_t(capacity)))
}

// SetONNXRuntimePath calls patchcore_set_onnxruntime_path.
func SetONNXRuntimePath(path *string) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_set_onnxruntime_path(cs.str(path)))
}

// SetNumThreads calls patchcore_set_num_threads.
func SetNumThreads(n int32) int32 { return int32(C.patchcore_set_num_threads(C.int32_t(n))) }

// GPUAvailable calls patchcore_gpu_available.
func GPUAvailable() int32 { return int32(C.patchcore_gpu_available()) }

// ------------------------------------------------------------------ config

// ConfigCreate calls patchcore_config_create.
func ConfigCreate(out *Handle) int32 {
	var h *C.patchcore_config
	var st C.int32_t
	if out == nil {
		st = C.patchcore_config_create(nil)
	} else {
		st = C.patchcore_config_create(&h)
	}
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// ConfigFree calls patchcore_config_free.
func ConfigFree(h Handle) int32 { return int32(C.patchcore_config_free((*C.patchcore_config)(ptr(h)))) }

// ConfigSetInt calls patchcore_config_set_int.
func ConfigSetInt(h Handle, key int32, v int64) int32 {
	return int32(C.patchcore_config_set_int((*C.patchcore_config)(ptr(h)), C.int32_t(key), C.int64_t(v)))
}

// ConfigSetFloat calls patchcore_config_set_float.
func ConfigSetFloat(h Handle, key int32, v float64) int32 {
	return int32(C.patchcore_config_set_float((*C.patchcore_config)(ptr(h)), C.int32_t(key), C.double(v)))
}

// ConfigSetFloats calls patchcore_config_set_floats.
func ConfigSetFloats(h Handle, key int32, v []float32, count uint64) int32 {
	return int32(C.patchcore_config_set_floats((*C.patchcore_config)(ptr(h)), C.int32_t(key), f32(v), C.size_t(count)))
}

// ConfigSetString calls patchcore_config_set_string.
func ConfigSetString(h Handle, key int32, v *string) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_config_set_string((*C.patchcore_config)(ptr(h)), C.int32_t(key), cs.str(v)))
}

// ConfigSetLayers calls patchcore_config_set_layers.
func ConfigSetLayers(h Handle, names []*string, count uint64) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_config_set_layers((*C.patchcore_config)(ptr(h)), cs.array(names), C.size_t(count)))
}

// ConfigSetBackboneBytes calls patchcore_config_set_backbone_bytes.
func ConfigSetBackboneBytes(h Handle, b []byte, size uint64) int32 {
	return int32(C.patchcore_config_set_backbone_bytes((*C.patchcore_config)(ptr(h)), unsafe.Pointer(u8(b)), C.size_t(size)))
}

// ------------------------------------------------------------------ model

// Image describes a pixel buffer argument.
type Image struct {
	Pix                                        []byte
	N, Width, Height, Stride, Channels, Format int32
}

// ModelCreate calls patchcore_model_create.
func ModelCreate(cfg Handle, out *Handle) int32 {
	var h *C.patchcore_model
	var st C.int32_t
	if out == nil {
		st = C.patchcore_model_create((*C.patchcore_config)(ptr(cfg)), nil)
	} else {
		st = C.patchcore_model_create((*C.patchcore_config)(ptr(cfg)), &h)
	}
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// ModelFree calls patchcore_model_free.
func ModelFree(h Handle) int32 { return int32(C.patchcore_model_free((*C.patchcore_model)(ptr(h)))) }

// ModelAddImages calls patchcore_model_add_images.
func ModelAddImages(h Handle, im Image) int32 {
	return int32(C.patchcore_model_add_images((*C.patchcore_model)(ptr(h)), u8(im.Pix), C.int32_t(im.N), C.int32_t(im.Width),
		C.int32_t(im.Height), C.int32_t(im.Stride), C.int32_t(im.Channels), C.int32_t(im.Format)))
}

// ModelAddFiles calls patchcore_model_add_files.
func ModelAddFiles(h Handle, paths []*string, count uint64) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_model_add_files((*C.patchcore_model)(ptr(h)), cs.array(paths), C.size_t(count)))
}

// ModelAddFeatures calls patchcore_model_add_features.
func ModelAddFeatures(h Handle, layers [][]float32, shapes []int64, n int32) int32 {
	var pin runtime.Pinner
	defer pin.Unpin()
	arr, free := layerArray(layers, &pin)
	defer free()
	return int32(C.patchcore_model_add_features((*C.patchcore_model)(ptr(h)), arr, i64(shapes), C.int32_t(n)))
}

// ModelFit calls patchcore_model_fit.
func ModelFit(h Handle) int32 { return int32(C.patchcore_model_fit((*C.patchcore_model)(ptr(h)))) }

// ModelMapSize calls patchcore_model_map_size.
func ModelMapSize(h Handle, out *uint64) int32 {
	var n C.size_t
	var st C.int32_t
	if out == nil {
		st = C.patchcore_model_map_size((*C.patchcore_model)(ptr(h)), nil)
	} else {
		st = C.patchcore_model_map_size((*C.patchcore_model)(ptr(h)), &n)
		*out = uint64(n)
	}
	return int32(st)
}

// Outputs are the output arguments of the predict functions.
type Outputs struct {
	Scores, Maps []float32
	Capacity     uint64
	Needed       *uint64 // nil: NULL
}

func (o *Outputs) call(f func(scores, maps *C.float, capacity C.size_t, needed *C.size_t) C.int32_t) int32 {
	var n C.size_t
	var np *C.size_t
	if o.Needed != nil {
		np = &n
	}
	st := f(f32(o.Scores), f32(o.Maps), C.size_t(o.Capacity), np)
	if o.Needed != nil {
		*o.Needed = uint64(n)
	}
	return int32(st)
}

// ModelPredict calls patchcore_model_predict.
func ModelPredict(h Handle, im Image, o Outputs) int32 {
	return o.call(func(s, m *C.float, c C.size_t, n *C.size_t) C.int32_t {
		return C.patchcore_model_predict((*C.patchcore_model)(ptr(h)), u8(im.Pix), C.int32_t(im.N), C.int32_t(im.Width),
			C.int32_t(im.Height), C.int32_t(im.Stride), C.int32_t(im.Channels), C.int32_t(im.Format), s, m, c, n)
	})
}

// ModelPredictFiles calls patchcore_model_predict_files.
func ModelPredictFiles(h Handle, paths []*string, count uint64, o Outputs) int32 {
	var cs cstrings
	defer cs.free()
	arr := cs.array(paths)
	return o.call(func(s, m *C.float, c C.size_t, n *C.size_t) C.int32_t {
		return C.patchcore_model_predict_files((*C.patchcore_model)(ptr(h)), arr, C.size_t(count), s, m, c, n)
	})
}

// ModelPredictFeatures calls patchcore_model_predict_features.
func ModelPredictFeatures(h Handle, layers [][]float32, shapes []int64, nLayers int32, o Outputs) int32 {
	var pin runtime.Pinner
	defer pin.Unpin()
	arr, free := layerArray(layers, &pin)
	defer free()
	return o.call(func(s, m *C.float, c C.size_t, n *C.size_t) C.int32_t {
		return C.patchcore_model_predict_features((*C.patchcore_model)(ptr(h)), arr, i64(shapes), C.int32_t(nLayers), s, m, c, n)
	})
}

// ModelSegment calls patchcore_model_segment.
func ModelSegment(h Handle, maps []float32, count uint64, threshold float32, masks []byte) int32 {
	return int32(C.patchcore_model_segment((*C.patchcore_model)(ptr(h)), f32(maps), C.size_t(count), C.float(threshold), u8(masks)))
}

// ModelCalibrate calls patchcore_model_calibrate.
func ModelCalibrate(h Handle, im Image, method int32, param float64, threshold *float32) int32 {
	var t C.float
	var tp *C.float
	if threshold != nil {
		tp = &t
	}
	st := C.patchcore_model_calibrate((*C.patchcore_model)(ptr(h)), u8(im.Pix), C.int32_t(im.N), C.int32_t(im.Width),
		C.int32_t(im.Height), C.int32_t(im.Stride), C.int32_t(im.Channels), C.int32_t(im.Format), C.int32_t(method), C.double(param), tp)
	if threshold != nil {
		*threshold = float32(t)
	}
	return int32(st)
}

// ModelCalibrateScores calls patchcore_model_calibrate_scores.
func ModelCalibrateScores(h Handle, scores []float32, labels []int32, count uint64, method int32, param float64, threshold *float32) int32 {
	var t C.float
	var tp *C.float
	if threshold != nil {
		tp = &t
	}
	var lp *C.int32_t
	if labels != nil {
		lp = (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(labels)))
	}
	st := C.patchcore_model_calibrate_scores((*C.patchcore_model)(ptr(h)), f32(scores), lp, C.size_t(count), C.int32_t(method), C.double(param), tp)
	if threshold != nil {
		*threshold = float32(t)
	}
	return int32(st)
}

// ModelNormalizeScores calls patchcore_model_normalize_scores.
func ModelNormalizeScores(h Handle, scores []float32, count uint64, out []float32) int32 {
	return int32(C.patchcore_model_normalize_scores((*C.patchcore_model)(ptr(h)), f32(scores), C.size_t(count), f32(out)))
}

// ModelGetInt calls patchcore_model_get_int.
func ModelGetInt(h Handle, key int32, out *int64) int32 {
	var v C.int64_t
	var vp *C.int64_t
	if out != nil {
		vp = &v
	}
	st := C.patchcore_model_get_int((*C.patchcore_model)(ptr(h)), C.int32_t(key), vp)
	if out != nil {
		*out = int64(v)
	}
	return int32(st)
}

// ModelGetFloat calls patchcore_model_get_float.
func ModelGetFloat(h Handle, key int32, out *float64) int32 {
	var v C.double
	var vp *C.double
	if out != nil {
		vp = &v
	}
	st := C.patchcore_model_get_float((*C.patchcore_model)(ptr(h)), C.int32_t(key), vp)
	if out != nil {
		*out = float64(v)
	}
	return int32(st)
}

// ModelSave calls patchcore_model_save.
func ModelSave(h Handle, path *string) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_model_save((*C.patchcore_model)(ptr(h)), cs.str(path)))
}

// ModelSaveToBuffer calls patchcore_model_save_to_buffer.
func ModelSaveToBuffer(h Handle, buf []byte, capacity uint64, needed *uint64) int32 {
	var n C.size_t
	var np *C.size_t
	if needed != nil {
		np = &n
	}
	st := C.patchcore_model_save_to_buffer((*C.patchcore_model)(ptr(h)), unsafe.Pointer(u8(buf)), C.size_t(capacity), np)
	if needed != nil {
		*needed = uint64(n)
	}
	return int32(st)
}

// ModelLoad calls patchcore_model_load.
func ModelLoad(path, backbone *string, out *Handle) int32 {
	var cs cstrings
	defer cs.free()
	var h *C.patchcore_model
	var st C.int32_t
	if out == nil {
		st = C.patchcore_model_load(cs.str(path), cs.str(backbone), nil)
	} else {
		st = C.patchcore_model_load(cs.str(path), cs.str(backbone), &h)
	}
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// ModelLoadFromBuffer calls patchcore_model_load_from_buffer.
func ModelLoadFromBuffer(buf []byte, size uint64, backbone *string, out *Handle) int32 {
	var cs cstrings
	defer cs.free()
	var h *C.patchcore_model
	var st C.int32_t
	if out == nil {
		st = C.patchcore_model_load_from_buffer(unsafe.Pointer(u8(buf)), C.size_t(size), cs.str(backbone), nil)
	} else {
		st = C.patchcore_model_load_from_buffer(unsafe.Pointer(u8(buf)), C.size_t(size), cs.str(backbone), &h)
	}
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// ------------------------------------------------------------------ aggregator

// AggregatorCreate calls patchcore_aggregator_create.
func AggregatorCreate(path *string, onnx []byte, size uint64, layers []*string, count uint64, device *string, out *Handle) int32 {
	var cs cstrings
	defer cs.free()
	var h *C.patchcore_aggregator
	hp := &h
	if out == nil {
		hp = nil
	}
	st := C.patchcore_aggregator_create(cs.str(path), unsafe.Pointer(u8(onnx)), C.size_t(size), cs.array(layers), C.size_t(count), cs.str(device), hp)
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// AggregatorFree calls patchcore_aggregator_free.
func AggregatorFree(h Handle) int32 {
	return int32(C.patchcore_aggregator_free((*C.patchcore_aggregator)(ptr(h))))
}

// AggregatorFeatureShapes calls patchcore_aggregator_feature_shapes.
func AggregatorFeatureShapes(h Handle, c, height, width int32, out []int64, capacity uint64, needed *uint64) int32 {
	var n C.size_t
	var np *C.size_t
	if needed != nil {
		np = &n
	}
	st := C.patchcore_aggregator_feature_shapes((*C.patchcore_aggregator)(ptr(h)), C.int32_t(c), C.int32_t(height), C.int32_t(width), i64(out), C.size_t(capacity), np)
	if needed != nil {
		*needed = uint64(n)
	}
	return int32(st)
}

// AggregatorForward calls patchcore_aggregator_forward.
func AggregatorForward(h Handle, images []float32, n, c, height, width int64, layer int32, out []float32, capacity uint64, needed *uint64) int32 {
	var nd C.size_t
	var np *C.size_t
	if needed != nil {
		np = &nd
	}
	st := C.patchcore_aggregator_forward((*C.patchcore_aggregator)(ptr(h)), f32(images), C.int64_t(n), C.int64_t(c), C.int64_t(height), C.int64_t(width),
		C.int32_t(layer), f32(out), C.size_t(capacity), np)
	if needed != nil {
		*needed = uint64(nd)
	}
	return int32(st)
}

// AggregatorForwardAll calls patchcore_aggregator_forward_all; outs[i] may be nil (NULL).
func AggregatorForwardAll(h Handle, images []float32, n, c, height, width int64, outs [][]float32, capacities []uint64, nOuts uint64, needed []uint64) int32 {
	var pin runtime.Pinner
	defer pin.Unpin()
	arr, free := layerArray(outs, &pin)
	defer free()
	var caps *C.size_t
	if capacities != nil {
		cs := make([]C.size_t, len(capacities))
		for i, v := range capacities {
			cs[i] = C.size_t(v)
		}
		pin.Pin(&cs[0])
		caps = &cs[0]
	}
	var nd []C.size_t
	var np *C.size_t
	if needed != nil {
		nd = make([]C.size_t, len(needed))
		pin.Pin(&nd[0])
		np = &nd[0]
	}
	st := C.patchcore_aggregator_forward_all((*C.patchcore_aggregator)(ptr(h)), f32(images), C.int64_t(n), C.int64_t(c), C.int64_t(height), C.int64_t(width),
		arr, caps, C.size_t(nOuts), np)
	for i := range nd {
		needed[i] = uint64(nd[i])
	}
	return int32(st)
}

// ------------------------------------------------------------------ embedding

// Embed calls patchcore_embed.
func Embed(layers [][]float32, shapes []int64, nLayers, patchsize, pretrain, target int32, out []float32, capacity uint64, needed *uint64) int32 {
	var pin runtime.Pinner
	defer pin.Unpin()
	arr, free := layerArray(layers, &pin)
	defer free()
	var nd C.size_t
	var np *C.size_t
	if needed != nil {
		np = &nd
	}
	st := C.patchcore_embed(arr, i64(shapes), C.int32_t(nLayers), C.int32_t(patchsize), C.int32_t(pretrain), C.int32_t(target), f32(out), C.size_t(capacity), np)
	if needed != nil {
		*needed = uint64(nd)
	}
	return int32(st)
}

// AdaptiveAvgPool1D calls patchcore_adaptive_avg_pool1d.
func AdaptiveAvgPool1D(in []float32, rows, inLen, outLen int64, out []float32) int32 {
	return int32(C.patchcore_adaptive_avg_pool1d(f32(in), C.int64_t(rows), C.int64_t(inLen), C.int64_t(outLen), f32(out)))
}

// ------------------------------------------------------------------ scorer

// ScorerCreate calls patchcore_scorer_create.
func ScorerCreate(k, method, onGPU, workers int32, out *Handle) int32 {
	var h *C.patchcore_scorer
	hp := &h
	if out == nil {
		hp = nil
	}
	st := C.patchcore_scorer_create(C.int32_t(k), C.int32_t(method), C.int32_t(onGPU), C.int32_t(workers), hp)
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// ScorerFree calls patchcore_scorer_free.
func ScorerFree(h Handle) int32 { return int32(C.patchcore_scorer_free((*C.patchcore_scorer)(ptr(h)))) }

// ScorerFit calls patchcore_scorer_fit.
func ScorerFit(h Handle, features []float32, n, d int64) int32 {
	return int32(C.patchcore_scorer_fit((*C.patchcore_scorer)(ptr(h)), f32(features), C.int64_t(n), C.int64_t(d)))
}

// ScorerPredict calls patchcore_scorer_predict.
func ScorerPredict(h Handle, queries []float32, n, d int64, scores, distances []float32, indices []int64) int32 {
	return int32(C.patchcore_scorer_predict((*C.patchcore_scorer)(ptr(h)), f32(queries), C.int64_t(n), C.int64_t(d), f32(scores), f32(distances), i64(indices)))
}

// ScorerSave calls patchcore_scorer_save.
func ScorerSave(h Handle, folder *string, separately int32, prepend *string) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_scorer_save((*C.patchcore_scorer)(ptr(h)), cs.str(folder), C.int32_t(separately), cs.str(prepend)))
}

// ScorerLoad calls patchcore_scorer_load.
func ScorerLoad(h Handle, folder, prepend *string) int32 {
	var cs cstrings
	defer cs.free()
	return int32(C.patchcore_scorer_load((*C.patchcore_scorer)(ptr(h)), cs.str(folder), cs.str(prepend)))
}

// ------------------------------------------------------------------ segmentor

// SegmentorCreate calls patchcore_segmentor_create.
func SegmentorCreate(height, width int32, sigma float64, out *Handle) int32 {
	var h *C.patchcore_segmentor
	hp := &h
	if out == nil {
		hp = nil
	}
	st := C.patchcore_segmentor_create(C.int32_t(height), C.int32_t(width), C.double(sigma), hp)
	outHandle(out, unsafe.Pointer(h))
	return int32(st)
}

// SegmentorFree calls patchcore_segmentor_free.
func SegmentorFree(h Handle) int32 {
	return int32(C.patchcore_segmentor_free((*C.patchcore_segmentor)(ptr(h))))
}

// SegmentorConvert calls patchcore_segmentor_convert.
func SegmentorConvert(h Handle, scores []float32, n, height, width int64, out []float32, capacity uint64, needed *uint64) int32 {
	var nd C.size_t
	var np *C.size_t
	if needed != nil {
		np = &nd
	}
	st := C.patchcore_segmentor_convert((*C.patchcore_segmentor)(ptr(h)), f32(scores), C.int64_t(n), C.int64_t(height), C.int64_t(width), f32(out), C.size_t(capacity), np)
	if needed != nil {
		*needed = uint64(nd)
	}
	return int32(st)
}
