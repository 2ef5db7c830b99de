package main

/*
#include <stddef.h>
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/faiss"
)

// Every export below follows one pattern: declare the call, defer its guard first,
// validate pointers and sizes, acquire the handle (shared for concurrent-safe calls,
// exclusive for mutations), call core, map the error. See include/patchcore.h for the
// contract of each function.

// ------------------------------------------------------------------ versions

//export patchcore_version_number
func patchcore_version_number() (number C.int32_t) {
	c := call{fn: "patchcore_version_number"}
	defer c.guardValue()
	return C.int32_t(versionNumber)
}

//export patchcore_version_string
func patchcore_version_string() (version *C.pc_cchar) {
	c := call{fn: "patchcore_version_string"}
	defer c.guardValue()
	return versionString
}

// ------------------------------------------------------------------ library

//export patchcore_status_string
func patchcore_status_string(status C.int32_t) (name *C.pc_cchar) {
	c := call{fn: "patchcore_status_string"}
	defer c.guardValue()
	return statusName(status)
}

//export patchcore_last_error
func patchcore_last_error(buf *C.char, capacity C.size_t) (needed C.size_t) {
	c := call{fn: "patchcore_last_error"}
	defer c.guardValue()
	return copyLastError(buf, capacity)
}

//export patchcore_set_onnxruntime_path
func patchcore_set_onnxruntime_path(path *C.pc_cchar) (status C.int32_t) {
	c := call{fn: "patchcore_set_onnxruntime_path"}
	defer c.guard(&status)
	p, err := goString(path, "path")
	if err == nil && p == "" {
		err = errorf(statusInvalidArgument, "path is empty")
	}
	if err == nil {
		err = core.SetONNXRuntimeLibrary(p)
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_set_num_threads
func patchcore_set_num_threads(n C.int32_t) (status C.int32_t) {
	c := call{fn: "patchcore_set_num_threads"}
	defer c.guard(&status)
	if err := inRange("num_threads", int64(n), 0, maxThreads); err != nil {
		return c.fail(err)
	}
	defaultThreads.Store(int32(n))
	return statusOK
}

//export patchcore_gpu_available
func patchcore_gpu_available() (available C.int32_t) {
	c := call{fn: "patchcore_gpu_available"}
	defer c.guardValue()
	if faiss.GPUAvailable() {
		return 1
	}
	return 0
}

// ------------------------------------------------------------------ config

//export patchcore_config_create
func patchcore_config_create(out **C.patchcore_config) (status C.int32_t) {
	c := call{fn: "patchcore_config_create"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_config is NULL"))
	}
	*out = C.pc_config_handle(C.uintptr_t(register(kindConfig, newConfig())))
	return statusOK
}

//export patchcore_config_free
func patchcore_config_free(cfg *C.patchcore_config) C.int32_t {
	return freeHandle("patchcore_config_free", unsafe.Pointer(cfg), kindConfig)
}

//export patchcore_config_set_int
func patchcore_config_set_int(cfg *C.patchcore_config, key C.int32_t, value C.int64_t) (status C.int32_t) {
	c := call{fn: "patchcore_config_set_int"}
	defer c.guard(&status)
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, true)
	if err == nil {
		err = conf.setInt(key, int64(value))
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_config_set_float
func patchcore_config_set_float(cfg *C.patchcore_config, key C.int32_t, value C.double) (status C.int32_t) {
	c := call{fn: "patchcore_config_set_float"}
	defer c.guard(&status)
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, true)
	if err == nil {
		err = conf.setFloat(key, float64(value))
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_config_set_floats
func patchcore_config_set_floats(cfg *C.patchcore_config, key C.int32_t, values *C.pc_cfloat, count C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_config_set_floats"}
	defer c.guard(&status)
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, true)
	if err == nil {
		err = conf.setFloats(key, values, count)
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_config_set_string
func patchcore_config_set_string(cfg *C.patchcore_config, key C.int32_t, value *C.pc_cchar) (status C.int32_t) {
	c := call{fn: "patchcore_config_set_string"}
	defer c.guard(&status)
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, true)
	if err != nil {
		return c.fail(err)
	}
	v, err := goString(value, "value")
	if err == nil {
		err = conf.setString(key, v)
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_config_set_layers
func patchcore_config_set_layers(cfg *C.patchcore_config, names *C.pc_cstr, count C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_config_set_layers"}
	defer c.guard(&status)
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, true)
	if err != nil {
		return c.fail(err)
	}
	layers, err := goStrings(names, count, "names", maxLayers)
	if err != nil {
		return c.fail(err)
	}
	conf.core.Layers = layers
	return statusOK
}

//export patchcore_config_set_backbone_bytes
func patchcore_config_set_backbone_bytes(cfg *C.patchcore_config, onnx *C.pc_cvoid, n C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_config_set_backbone_bytes"}
	defer c.guard(&status)
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, true)
	if err != nil {
		return c.fail(err)
	}
	b, err := bytesCopy(onnx, n, "onnx")
	if err != nil {
		return c.fail(err)
	}
	conf.backboneBytes, conf.backbonePath = b, ""
	return statusOK
}

// ------------------------------------------------------------------ model

//export patchcore_model_create
func patchcore_model_create(cfg *C.pc_cconfig, out **C.patchcore_model) (status C.int32_t) {
	c := call{fn: "patchcore_model_create"}
	defer c.guard(&status)
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_model is NULL"))
	}
	*out = nil
	conf, err := use[*config](&c, handleID(unsafe.Pointer(cfg)), kindConfig, false)
	if err != nil {
		return c.fail(err)
	}
	m, err := core.NewModel(conf.modelConfig())
	if err != nil {
		return c.fail(err)
	}
	*out = C.pc_model_handle(C.uintptr_t(register(kindModel, m)))
	return statusOK
}

//export patchcore_model_free
func patchcore_model_free(model *C.patchcore_model) C.int32_t {
	return freeHandle("patchcore_model_free", unsafe.Pointer(model), kindModel)
}

//export patchcore_model_add_images
func patchcore_model_add_images(model *C.patchcore_model, pixels *C.pc_cu8, nImages, width, height, stride, channels, pixelFormat C.int32_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_add_images"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, true)
	if err != nil {
		return c.fail(err)
	}
	images, err := imagesIn(pixels, nImages, width, height, stride, channels, pixelFormat)
	if err == nil {
		err = m.AddImages(images, nil)
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_model_add_files
func patchcore_model_add_files(model *C.patchcore_model, paths *C.pc_cstr, count C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_add_files"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, true)
	if err != nil {
		return c.fail(err)
	}
	files, err := goStrings(paths, count, "paths", maxFiles)
	if err == nil {
		err = m.AddImages(core.ImageFiles(files), nil)
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_model_add_features
func patchcore_model_add_features(model *C.patchcore_model, layers *C.pc_cfloatp, shapes *C.pc_ci64, nLayers C.int32_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_add_features"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, true)
	if err != nil {
		return c.fail(err)
	}
	maps, err := layersIn(layers, shapes, nLayers)
	if err == nil {
		err = m.AddFeatures(maps) // keeps only the embeddings it computes
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_model_fit
func patchcore_model_fit(model *C.patchcore_model) (status C.int32_t) {
	c := call{fn: "patchcore_model_fit"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, true)
	if err == nil {
		err = m.FinishFit()
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_model_map_size
func patchcore_model_map_size(model *C.pc_cmodel, outSize *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_map_size"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err == nil {
		err = notNull(unsafe.Pointer(outSize), "out_size")
	}
	if err != nil {
		return c.fail(err)
	}
	*outSize = C.size_t(mapSize(m))
	return statusOK
}

//export patchcore_model_predict
func patchcore_model_predict(model *C.pc_cmodel, pixels *C.pc_cu8, nImages, width, height, stride, channels, pixelFormat C.int32_t, outScores, outMaps *C.float, mapsCapacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_predict"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	images, err := imagesIn(pixels, nImages, width, height, stride, channels, pixelFormat)
	if err == nil {
		err = predictOutputs(m, len(images), outScores, outMaps, mapsCapacity, outNeeded)
	}
	if err != nil {
		return c.fail(err)
	}
	p, err := m.Predict(images)
	if err != nil {
		return c.fail(err)
	}
	writePrediction(p, outScores, outMaps)
	return statusOK
}

//export patchcore_model_predict_files
func patchcore_model_predict_files(model *C.pc_cmodel, paths *C.pc_cstr, count C.size_t, outScores, outMaps *C.float, mapsCapacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_predict_files"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	files, err := goStrings(paths, count, "paths", maxFiles)
	if err == nil {
		err = predictOutputs(m, len(files), outScores, outMaps, mapsCapacity, outNeeded)
	}
	if err != nil {
		return c.fail(err)
	}
	p, err := m.Predict(core.ImageFiles(files))
	if err != nil {
		return c.fail(err)
	}
	writePrediction(p, outScores, outMaps)
	return statusOK
}

//export patchcore_model_predict_features
func patchcore_model_predict_features(model *C.pc_cmodel, layers *C.pc_cfloatp, shapes *C.pc_ci64, nLayers C.int32_t, outScores, outMaps *C.float, mapsCapacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_predict_features"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	maps, err := layersIn(layers, shapes, nLayers)
	if err == nil {
		err = predictOutputs(m, maps[0].Shape[0], outScores, outMaps, mapsCapacity, outNeeded)
	}
	if err != nil {
		return c.fail(err)
	}
	p, err := m.PredictFeatures(maps)
	if err != nil {
		return c.fail(err)
	}
	writePrediction(p, outScores, outMaps)
	return statusOK
}

//export patchcore_model_segment
func patchcore_model_segment(model *C.pc_cmodel, maps *C.pc_cfloat, count C.size_t, threshold C.float, outMasks *C.uint8_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_segment"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	if maps == nil || outMasks == nil {
		return c.fail(errorf(statusInvalidArgument, "maps or out_masks is NULL"))
	}
	n, err := countArg("count", count)
	if err != nil {
		return c.fail(err)
	}
	thr := float32(threshold)
	if math.IsNaN(float64(thr)) {
		cal := m.Calibration()
		if !cal.Calibrated() {
			return c.fail(errorf(statusInvalidState, "threshold is NaN (use the calibrated one) but the model is not calibrated"))
		}
		thr = cal.Threshold
	}
	in := core.Tensor{Shape: []int{n}, Data: floatsIn(maps, n)}
	copy(unsafe.Slice((*uint8)(unsafe.Pointer(outMasks)), n), core.Segment(in, thr))
	return statusOK
}

//export patchcore_model_calibrate
func patchcore_model_calibrate(model *C.patchcore_model, pixels *C.pc_cu8, nImages, width, height, stride, channels, pixelFormat C.int32_t, method C.int32_t, param C.double, outThreshold *C.float) (status C.int32_t) {
	c := call{fn: "patchcore_model_calibrate"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, true)
	if err != nil {
		return c.fail(err)
	}
	images, err := imagesIn(pixels, nImages, width, height, stride, channels, pixelFormat)
	if err == nil {
		err = checkCalibration(method, float64(param))
	}
	if err != nil {
		return c.fail(err)
	}
	cal, err := m.Calibrate(images, core.CalibrationMethod(method), float64(param))
	if err != nil {
		return c.fail(err)
	}
	if outThreshold != nil {
		*outThreshold = C.float(cal.Threshold)
	}
	return statusOK
}

//export patchcore_model_calibrate_scores
func patchcore_model_calibrate_scores(model *C.patchcore_model, scores *C.pc_cfloat, labels *C.pc_ci32, count C.size_t, method C.int32_t, param C.double, outThreshold *C.float) (status C.int32_t) {
	c := call{fn: "patchcore_model_calibrate_scores"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, true)
	if err != nil {
		return c.fail(err)
	}
	if scores == nil {
		return c.fail(errorf(statusInvalidArgument, "scores is NULL"))
	}
	n, err := countArg("count", count)
	if err == nil {
		err = checkCalibration(method, float64(param))
	}
	if err != nil {
		return c.fail(err)
	}
	var anomalous []bool
	if labels != nil {
		anomalous = make([]bool, n)
		for i, l := range unsafe.Slice((*int32)(unsafe.Pointer(labels)), n) {
			if l != 0 && l != 1 {
				return c.fail(errorf(statusInvalidArgument, "labels[%d] = %d, want 0 (good) or 1 (anomalous)", i, l))
			}
			anomalous[i] = l == 1
		}
	}
	cal, err := m.CalibrateScores(floatsIn(scores, n), anomalous, core.CalibrationMethod(method), float64(param))
	if err != nil {
		return c.fail(err)
	}
	if outThreshold != nil {
		*outThreshold = C.float(cal.Threshold)
	}
	return statusOK
}

//export patchcore_model_normalize_scores
func patchcore_model_normalize_scores(model *C.pc_cmodel, scores *C.pc_cfloat, count C.size_t, outNormalized *C.float) (status C.int32_t) {
	c := call{fn: "patchcore_model_normalize_scores"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	if scores == nil || outNormalized == nil {
		return c.fail(errorf(statusInvalidArgument, "scores or out_normalized is NULL"))
	}
	n, err := countArg("count", count)
	if err != nil {
		return c.fail(err)
	}
	norm, err := m.NormalizeScores(floatsIn(scores, n))
	if err != nil {
		return c.fail(err)
	}
	copy(floatsOut(outNormalized, n), norm)
	return statusOK
}

//export patchcore_model_get_int
func patchcore_model_get_int(model *C.pc_cmodel, key C.int32_t, outValue *C.int64_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_get_int"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err == nil {
		err = notNull(unsafe.Pointer(outValue), "out_value")
	}
	if err != nil {
		return c.fail(err)
	}
	v, err := modelInt(m, key)
	if err != nil {
		return c.fail(err)
	}
	*outValue = C.int64_t(v)
	return statusOK
}

//export patchcore_model_get_float
func patchcore_model_get_float(model *C.pc_cmodel, key C.int32_t, outValue *C.double) (status C.int32_t) {
	c := call{fn: "patchcore_model_get_float"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err == nil {
		err = notNull(unsafe.Pointer(outValue), "out_value")
	}
	if err != nil {
		return c.fail(err)
	}
	v, err := modelFloat(m, key)
	if err != nil {
		return c.fail(err)
	}
	*outValue = C.double(v)
	return statusOK
}

//export patchcore_model_save
func patchcore_model_save(model *C.pc_cmodel, path *C.pc_cchar) (status C.int32_t) {
	c := call{fn: "patchcore_model_save"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	p, err := goString(path, "path")
	if err == nil {
		err = m.Save(p)
	}
	if err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_model_save_to_buffer
func patchcore_model_save_to_buffer(model *C.pc_cmodel, buf unsafe.Pointer, capacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_model_save_to_buffer"}
	defer c.guard(&status)
	m, err := use[*core.Model](&c, handleID(unsafe.Pointer(model)), kindModel, false)
	if err != nil {
		return c.fail(err)
	}
	b, err := m.MarshalBinary()
	if err == nil {
		err = outBuffer(buf, capacity, len(b), outNeeded, "buf")
	}
	if err != nil {
		return c.fail(err)
	}
	copy(unsafe.Slice((*byte)(buf), len(b)), b)
	return statusOK
}

//export patchcore_model_load
func patchcore_model_load(path, backbonePath *C.pc_cchar, out **C.patchcore_model) (status C.int32_t) {
	c := call{fn: "patchcore_model_load"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_model is NULL"))
	}
	*out = nil
	p, err := goString(path, "path")
	if err != nil {
		return c.fail(err)
	}
	m, err := core.LoadModel(p, loadOptions(backbonePath))
	if err != nil {
		return c.fail(err)
	}
	*out = C.pc_model_handle(C.uintptr_t(register(kindModel, m)))
	return statusOK
}

//export patchcore_model_load_from_buffer
func patchcore_model_load_from_buffer(buf *C.pc_cvoid, n C.size_t, backbonePath *C.pc_cchar, out **C.patchcore_model) (status C.int32_t) {
	c := call{fn: "patchcore_model_load_from_buffer"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_model is NULL"))
	}
	*out = nil
	// Copied, so that nothing the model keeps can point into the caller's buffer.
	b, err := bytesCopy(buf, n, "buf")
	if err != nil {
		return c.fail(err)
	}
	m, err := core.UnmarshalModel(b, "", loadOptions(backbonePath))
	if err != nil {
		return c.fail(err)
	}
	*out = C.pc_model_handle(C.uintptr_t(register(kindModel, m)))
	return statusOK
}

// ------------------------------------------------------------------ aggregator

//export patchcore_aggregator_create
func patchcore_aggregator_create(onnxPath *C.pc_cchar, onnxBytes *C.pc_cvoid, nBytes C.size_t, layers *C.pc_cstr, nLayers C.size_t, device *C.pc_cchar, out **C.patchcore_aggregator) (status C.int32_t) {
	c := call{fn: "patchcore_aggregator_create"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_aggregator is NULL"))
	}
	*out = nil
	var src core.BackboneSource
	switch {
	case (onnxPath == nil) == (onnxBytes == nil):
		return c.fail(errorf(statusInvalidArgument, "exactly one of onnx_path and onnx_bytes must be non-NULL"))
	case onnxPath != nil:
		src = core.BackboneFromFile(optString(onnxPath))
	case nBytes == 0 || uint64(nBytes) > maxElements:
		return c.fail(errorf(statusInvalidArgument, "n_bytes = %d is out of range [1, 2^40]", uint64(nBytes)))
	default:
		// Borrowed: the constructor only reads the bytes while it runs.
		src = core.BackboneFromBytes(unsafe.Slice((*byte)(unsafe.Pointer(onnxBytes)), int(nBytes)))
	}
	names, err := goStrings(layers, nLayers, "layers", maxLayers)
	if err != nil {
		return c.fail(err)
	}
	dev := "cpu"
	if device != nil {
		dev = optString(device)
	}
	agg, err := core.NewNetworkFeatureAggregator(src, names, dev, core.BackboneOptions{Threads: int(defaultThreads.Load())})
	if err != nil {
		return c.fail(err)
	}
	*out = C.pc_aggregator_handle(C.uintptr_t(register(kindAggregator, agg)))
	return statusOK
}

//export patchcore_aggregator_free
func patchcore_aggregator_free(aggregator *C.patchcore_aggregator) C.int32_t {
	return freeHandle("patchcore_aggregator_free", unsafe.Pointer(aggregator), kindAggregator)
}

//export patchcore_aggregator_feature_shapes
func patchcore_aggregator_feature_shapes(aggregator *C.pc_caggregator, channels, height, width C.int32_t, outShapes *C.int64_t, capacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_aggregator_feature_shapes"}
	defer c.guard(&status)
	agg, err := use[*core.NetworkFeatureAggregator](&c, handleID(unsafe.Pointer(aggregator)), kindAggregator, false)
	if err != nil {
		return c.fail(err)
	}
	if _, err := size("input", int64(channels), int64(height), int64(width)); err != nil {
		return c.fail(err)
	}
	needed := 3 * len(agg.Layers())
	if err := outBuffer(unsafe.Pointer(outShapes), capacity, needed, outNeeded, "out_shapes"); err != nil {
		return c.fail(err)
	}
	shapes, err := agg.FeatureShapes(int(channels), int(height), int(width))
	if err != nil {
		return c.fail(err)
	}
	dst := unsafe.Slice((*int64)(unsafe.Pointer(outShapes)), needed)
	for i, s := range shapes {
		dst[3*i], dst[3*i+1], dst[3*i+2] = int64(s[0]), int64(s[1]), int64(s[2])
	}
	return statusOK
}

//export patchcore_aggregator_forward
func patchcore_aggregator_forward(aggregator *C.pc_caggregator, images *C.pc_cfloat, n, channels, height, width C.int64_t, layerIndex C.int32_t, out *C.float, capacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_aggregator_forward"}
	defer c.guard(&status)
	agg, err := use[*core.NetworkFeatureAggregator](&c, handleID(unsafe.Pointer(aggregator)), kindAggregator, false)
	if err != nil {
		return c.fail(err)
	}
	if images == nil {
		return c.fail(errorf(statusInvalidArgument, "images is NULL"))
	}
	count, err := size("images", int64(n), int64(channels), int64(height), int64(width))
	if err != nil {
		return c.fail(err)
	}
	if err := inRange("layer_index", int64(layerIndex), 0, int64(len(agg.Layers())-1)); err != nil {
		return c.fail(err)
	}
	// Per-image sizes and the single-image channel/height/width fit in int32 here only
	// after this check; FeatureShapes takes ints.
	for _, d := range []C.int64_t{channels, height, width} {
		if d > 1<<20 {
			return c.fail(errorf(statusInvalidArgument, "image dimensions %dx%dx%d exceed 2^20", channels, height, width))
		}
	}
	shapes, err := agg.FeatureShapes(int(channels), int(height), int(width))
	if err != nil {
		return c.fail(err)
	}
	s := shapes[layerIndex]
	needed, err := size("output", int64(n), int64(s[0]), int64(s[1]), int64(s[2]))
	if err != nil {
		return c.fail(err)
	}
	if err := outBuffer(unsafe.Pointer(out), capacity, needed, outNeeded, "out"); err != nil {
		return c.fail(err)
	}
	in := core.Tensor{Shape: []int{int(n), int(channels), int(height), int(width)}, Data: floatsIn(images, count)}
	maps, err := agg.ForwardOrdered(in)
	if err != nil {
		return c.fail(err)
	}
	copy(floatsOut(out, needed), maps[layerIndex].Data)
	return statusOK
}

//export patchcore_aggregator_forward_all
func patchcore_aggregator_forward_all(aggregator *C.pc_caggregator, images *C.pc_cfloat, n, channels, height, width C.int64_t, outs *C.pc_floatpc, capacities *C.pc_csize, nOuts C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_aggregator_forward_all"}
	defer c.guard(&status)
	agg, err := use[*core.NetworkFeatureAggregator](&c, handleID(unsafe.Pointer(aggregator)), kindAggregator, false)
	if err != nil {
		return c.fail(err)
	}
	layers := len(agg.Layers())
	if uint64(nOuts) != uint64(layers) {
		return c.fail(errorf(statusInvalidArgument, "n_outs = %d, the aggregator has %d layers", uint64(nOuts), layers))
	}
	if images == nil || outs == nil || capacities == nil {
		return c.fail(errorf(statusInvalidArgument, "images, outs or capacities is NULL"))
	}
	count, err := size("images", int64(n), int64(channels), int64(height), int64(width))
	if err != nil {
		return c.fail(err)
	}
	for _, d := range []C.int64_t{channels, height, width} {
		if d > 1<<20 {
			return c.fail(errorf(statusInvalidArgument, "image dimensions %dx%dx%d exceed 2^20", channels, height, width))
		}
	}
	shapes, err := agg.FeatureShapes(int(channels), int(height), int(width))
	if err != nil {
		return c.fail(err)
	}
	bufs := unsafe.Slice((**C.float)(unsafe.Pointer(outs)), layers)
	caps := unsafe.Slice((*C.size_t)(unsafe.Pointer(capacities)), layers)
	var neededs []C.size_t
	if outNeeded != nil {
		neededs = unsafe.Slice(outNeeded, layers)
	}
	sizes := make([]int, layers)
	var firstErr error
	for i, s := range shapes {
		if sizes[i], err = size("output", int64(n), int64(s[0]), int64(s[1]), int64(s[2])); err != nil {
			return c.fail(err)
		}
		var need *C.size_t
		if neededs != nil {
			need = &neededs[i]
		}
		if err := outBuffer(unsafe.Pointer(bufs[i]), caps[i], sizes[i], need, fmt.Sprintf("outs[%d]", i)); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return c.fail(firstErr)
	}
	in := core.Tensor{Shape: []int{int(n), int(channels), int(height), int(width)}, Data: floatsIn(images, count)}
	maps, err := agg.ForwardOrdered(in)
	if err != nil {
		return c.fail(err)
	}
	for i := range maps {
		copy(floatsOut(bufs[i], sizes[i]), maps[i].Data)
	}
	return statusOK
}

// ------------------------------------------------------------------ embedding

//export patchcore_embed
func patchcore_embed(layers *C.pc_cfloatp, shapes *C.pc_ci64, nLayers C.int32_t, patchsize, pretrainDim, targetDim C.int32_t, out *C.float, capacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_embed"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if err := checkEmbedParams(int64(patchsize), int64(pretrainDim), int64(targetDim)); err != nil {
		return c.fail(err)
	}
	maps, err := layersIn(layers, shapes, nLayers)
	if err != nil {
		return c.fail(err)
	}
	cfg := core.EmbedConfig{PatchSize: int(patchsize), Stride: 1, PretrainEmbedDim: int(pretrainDim), TargetEmbedDim: int(targetDim)}
	pm := core.PatchMaker{PatchSize: cfg.PatchSize, Stride: 1}
	gh, gw, err := pm.Grid(maps[0].Shape[2], maps[0].Shape[3])
	if err != nil {
		return c.fail(err)
	}
	needed, err := size("embeddings", int64(maps[0].Shape[0]), int64(gh), int64(gw), int64(targetDim))
	if err != nil {
		return c.fail(err)
	}
	if err := outBuffer(unsafe.Pointer(out), capacity, needed, outNeeded, "out"); err != nil {
		return c.fail(err)
	}
	if _, _, _, err := core.Embed(maps, cfg, floatsOut(out, needed)); err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_adaptive_avg_pool1d
func patchcore_adaptive_avg_pool1d(in *C.pc_cfloat, rows, inLen, outLen C.int64_t, out *C.float) (status C.int32_t) {
	c := call{fn: "patchcore_adaptive_avg_pool1d"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	x, err := matrixIn(in, rows, inLen, "in")
	if err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out is NULL"))
	}
	n, err := size("out", int64(rows), int64(outLen))
	if err != nil {
		return c.fail(err)
	}
	y, err := core.AdaptiveAvgPool1D(x, int(outLen))
	if err != nil {
		return c.fail(err)
	}
	copy(floatsOut(out, n), y.Data)
	return statusOK
}

// ------------------------------------------------------------------ scorer

//export patchcore_scorer_create
func patchcore_scorer_create(k, nnMethod, onGPU, numWorkers C.int32_t, out **C.patchcore_scorer) (status C.int32_t) {
	c := call{fn: "patchcore_scorer_create"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_scorer is NULL"))
	}
	*out = nil
	gpu, err := cBool("on_gpu", onGPU)
	if err == nil {
		err = inRange("k", int64(k), 1, maxNN)
	}
	if err == nil {
		err = inRange("num_workers", int64(numWorkers), 0, maxThreads)
	}
	if err != nil {
		return c.fail(err)
	}
	workers := int(numWorkers)
	if workers == 0 {
		workers = int(defaultThreads.Load())
	}
	var nn core.NNMethod
	switch nnMethod {
	case C.PATCHCORE_NN_EXACT:
		nn, err = core.NewFaissNN(gpu, workers)
	case C.PATCHCORE_NN_IVFPQ:
		nn, err = core.NewApproximateFaissNN(gpu, workers)
	default:
		err = errorf(statusInvalidArgument, "nn_method = %d, want PATCHCORE_NN_EXACT (0) or PATCHCORE_NN_IVFPQ (1)", nnMethod)
	}
	if err != nil {
		return c.fail(err)
	}
	s, err := core.NewNearestNeighbourScorer(int(k), nn)
	if err != nil {
		return c.fail(err)
	}
	*out = C.pc_scorer_handle(C.uintptr_t(register(kindScorer, s)))
	return statusOK
}

//export patchcore_scorer_free
func patchcore_scorer_free(scorer *C.patchcore_scorer) C.int32_t {
	return freeHandle("patchcore_scorer_free", unsafe.Pointer(scorer), kindScorer)
}

//export patchcore_scorer_fit
func patchcore_scorer_fit(scorer *C.patchcore_scorer, features *C.pc_cfloat, n, d C.int64_t) (status C.int32_t) {
	c := call{fn: "patchcore_scorer_fit"}
	defer c.guard(&status)
	s, err := use[*core.NearestNeighbourScorer](&c, handleID(unsafe.Pointer(scorer)), kindScorer, true)
	if err != nil {
		return c.fail(err)
	}
	x, err := matrixIn(features, n, d, "features")
	if err != nil {
		return c.fail(err)
	}
	if err := s.Fit([]core.Tensor{x}); err != nil { // Fit keeps a copy (ConcatMerger copies)
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_scorer_predict
func patchcore_scorer_predict(scorer *C.pc_cscorer, queries *C.pc_cfloat, n, d C.int64_t, outScores *C.float, outDistances *C.float, outIndices *C.int64_t) (status C.int32_t) {
	c := call{fn: "patchcore_scorer_predict"}
	defer c.guard(&status)
	s, err := use[*core.NearestNeighbourScorer](&c, handleID(unsafe.Pointer(scorer)), kindScorer, false)
	if err != nil {
		return c.fail(err)
	}
	q, err := matrixIn(queries, n, d, "queries")
	if err != nil {
		return c.fail(err)
	}
	if outScores == nil {
		return c.fail(errorf(statusInvalidArgument, "out_scores is NULL"))
	}
	if _, err := size("distances", int64(n), int64(s.K())); err != nil {
		return c.fail(err)
	}
	scores, dist, idx, err := s.Predict([]core.Tensor{q})
	if err != nil {
		return c.fail(err)
	}
	copy(floatsOut(outScores, len(scores)), scores)
	if outDistances != nil {
		copy(floatsOut(outDistances, len(dist.Data)), dist.Data)
	}
	if outIndices != nil {
		copy(unsafe.Slice((*int64)(unsafe.Pointer(outIndices)), len(idx)), idx)
	}
	return statusOK
}

//export patchcore_scorer_save
func patchcore_scorer_save(scorer *C.pc_cscorer, folder *C.pc_cchar, saveFeaturesSeparately C.int32_t, prepend *C.pc_cchar) (status C.int32_t) {
	c := call{fn: "patchcore_scorer_save"}
	defer c.guard(&status)
	s, err := use[*core.NearestNeighbourScorer](&c, handleID(unsafe.Pointer(scorer)), kindScorer, false)
	if err != nil {
		return c.fail(err)
	}
	dir, err := goString(folder, "folder")
	if err != nil {
		return c.fail(err)
	}
	sep, err := cBool("save_features_separately", saveFeaturesSeparately)
	if err != nil {
		return c.fail(err)
	}
	if err := s.Save(dir, sep, optString(prepend)); err != nil {
		return c.fail(err)
	}
	return statusOK
}

//export patchcore_scorer_load
func patchcore_scorer_load(scorer *C.patchcore_scorer, folder *C.pc_cchar, prepend *C.pc_cchar) (status C.int32_t) {
	c := call{fn: "patchcore_scorer_load"}
	defer c.guard(&status)
	s, err := use[*core.NearestNeighbourScorer](&c, handleID(unsafe.Pointer(scorer)), kindScorer, true)
	if err != nil {
		return c.fail(err)
	}
	dir, err := goString(folder, "folder")
	if err != nil {
		return c.fail(err)
	}
	if err := s.Load(dir, optString(prepend)); err != nil {
		return c.fail(err)
	}
	return statusOK
}

// ------------------------------------------------------------------ segmentor

//export patchcore_segmentor_create
func patchcore_segmentor_create(targetHeight, targetWidth C.int32_t, sigma C.double, out **C.patchcore_segmentor) (status C.int32_t) {
	c := call{fn: "patchcore_segmentor_create"}
	defer c.guard(&status)
	if err := errIfForkedChild(); err != nil {
		return c.fail(err)
	}
	if out == nil {
		return c.fail(errorf(statusInvalidArgument, "out_segmentor is NULL"))
	}
	*out = nil
	err := inRange("target_height", int64(targetHeight), 1, maxImageSide)
	if err == nil {
		err = inRange("target_width", int64(targetWidth), 1, maxImageSide)
	}
	if err == nil {
		err = checkSigma(float64(sigma))
	}
	if err != nil {
		return c.fail(err)
	}
	seg := core.RescaleSegmentor{TargetH: int(targetHeight), TargetW: int(targetWidth), Sigma: float64(sigma)}
	*out = C.pc_segmentor_handle(C.uintptr_t(register(kindSegmentor, seg)))
	return statusOK
}

//export patchcore_segmentor_free
func patchcore_segmentor_free(segmentor *C.patchcore_segmentor) C.int32_t {
	return freeHandle("patchcore_segmentor_free", unsafe.Pointer(segmentor), kindSegmentor)
}

//export patchcore_segmentor_convert
func patchcore_segmentor_convert(segmentor *C.pc_csegmentor, patchScores *C.pc_cfloat, n, h, w C.int64_t, out *C.float, capacity C.size_t, outNeeded *C.size_t) (status C.int32_t) {
	c := call{fn: "patchcore_segmentor_convert"}
	defer c.guard(&status)
	seg, err := use[core.RescaleSegmentor](&c, handleID(unsafe.Pointer(segmentor)), kindSegmentor, false)
	if err != nil {
		return c.fail(err)
	}
	if patchScores == nil {
		return c.fail(errorf(statusInvalidArgument, "patch_scores is NULL"))
	}
	count, err := size("patch_scores", int64(n), int64(h), int64(w))
	if err != nil {
		return c.fail(err)
	}
	needed, err := size("segmentations", int64(n), int64(seg.TargetH), int64(seg.TargetW))
	if err != nil {
		return c.fail(err)
	}
	if err := outBuffer(unsafe.Pointer(out), capacity, needed, outNeeded, "out"); err != nil {
		return c.fail(err)
	}
	in := core.Tensor{Shape: []int{int(n), int(h), int(w)}, Data: floatsIn(patchScores, count)}
	maps, err := seg.ConvertToSegmentation(in)
	if err != nil {
		return c.fail(err)
	}
	copy(floatsOut(out, needed), maps.Data)
	return statusOK
}

// freeHandle implements the _free exports: NULL is a no-op; otherwise the id leaves the
// registry (later use is INVALID_HANDLE), calls already running finish first, and the
// object's resources are released.
func freeHandle(fn string, handle unsafe.Pointer, k kind) (status C.int32_t) {
	c := call{fn: fn}
	defer c.guard(&status)
	if handle == nil {
		return statusOK
	}
	obj, err := c.take(handleID(handle), k)
	if err != nil {
		return c.fail(err)
	}
	if closer, ok := obj.(interface{ Close() error }); ok {
		if err := closer.Close(); err != nil {
			return c.fail(err)
		}
	}
	return statusOK
}
