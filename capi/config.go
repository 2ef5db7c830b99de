package main

/*
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/libpatchcore/libpatchcore/core"
)

// config is a patchcore_config: the settings of core.Config plus where the backbone
// comes from (a file or bytes; neither makes a features-only model).
type config struct {
	core          core.Config
	backbonePath  string
	backboneBytes []byte
}

// defaultLayers are the reference's layers for its WideResNet50 backbone.
var defaultLayers = []string{"layer2", "layer3"}

// newConfig returns the reference defaults.
func newConfig() *config {
	c := &config{core: core.DefaultConfig()}
	c.core.Layers = append([]string(nil), defaultLayers...)
	return c
}

// modelConfig is the core.Config a model is created with: the backbone source resolved
// and a zero thread count replaced by the library default.
func (c *config) modelConfig() core.Config {
	cfg := c.core
	cfg.Layers = append([]string(nil), c.core.Layers...)
	switch {
	case c.backboneBytes != nil:
		cfg.Backbone = core.BackboneFromBytes(c.backboneBytes) // never modified: setters replace it
	case c.backbonePath != "":
		cfg.Backbone = core.BackboneFromFile(c.backbonePath)
	}
	if cfg.Threads == 0 {
		cfg.Threads = int(defaultThreads.Load())
	}
	return cfg
}

// Parameter keys by type, with their names for messages.
var (
	intKeys = map[C.int32_t]string{
		C.PATCHCORE_PARAM_RESIZE: "RESIZE", C.PATCHCORE_PARAM_IMAGESIZE: "IMAGESIZE",
		C.PATCHCORE_PARAM_PRETRAIN_EMBED_DIM: "PRETRAIN_EMBED_DIM", C.PATCHCORE_PARAM_TARGET_EMBED_DIM: "TARGET_EMBED_DIM",
		C.PATCHCORE_PARAM_PATCHSIZE: "PATCHSIZE", C.PATCHCORE_PARAM_NUM_NN: "NUM_NN", C.PATCHCORE_PARAM_NN_METHOD: "NN_METHOD",
		C.PATCHCORE_PARAM_SEED: "SEED", C.PATCHCORE_PARAM_NUM_THREADS: "NUM_THREADS", C.PATCHCORE_PARAM_BATCH_SIZE: "BATCH_SIZE",
		C.PATCHCORE_PARAM_EMBED_BACKBONE: "EMBED_BACKBONE",
		C.PATCHCORE_PARAM_BANK_ROWS:      "BANK_ROWS", C.PATCHCORE_PARAM_GRID_HEIGHT: "GRID_HEIGHT", C.PATCHCORE_PARAM_GRID_WIDTH: "GRID_WIDTH",
	}
	floatKeys  = map[C.int32_t]string{C.PATCHCORE_PARAM_PERCENTAGE: "PERCENTAGE", C.PATCHCORE_PARAM_SIGMA: "SIGMA", C.PATCHCORE_PARAM_THRESHOLD: "THRESHOLD"}
	floatsKeys = map[C.int32_t]string{C.PATCHCORE_PARAM_MEAN: "MEAN", C.PATCHCORE_PARAM_STD: "STD"}
	stringKeys = map[C.int32_t]string{C.PATCHCORE_PARAM_BACKBONE_PATH: "BACKBONE_PATH", C.PATCHCORE_PARAM_SAMPLER: "SAMPLER", C.PATCHCORE_PARAM_DEVICE: "DEVICE"}
)

// keyError explains why a function for parameters of type want cannot use key: it is
// unknown, of another type, or (being of the wanted type yet unhandled by a setter) a
// read-only model property.
func keyError(key C.int32_t, want string) error {
	kinds := []struct {
		names map[C.int32_t]string
		kind  string
	}{{intKeys, "an integer"}, {floatKeys, "a float"}, {floatsKeys, "a float array"}, {stringKeys, "a string"}}
	for _, k := range kinds {
		if name, ok := k.names[key]; ok {
			if k.kind == want {
				return errorf(statusInvalidArgument, "PATCHCORE_PARAM_%s is read-only", name)
			}
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_%s is %s parameter, not %s one", name, k.kind, want)
		}
	}
	return errorf(statusInvalidArgument, "unknown parameter key %d", key)
}

// paramRange checks lo <= v <= hi for a named parameter.
func paramRange(key C.int32_t, v, lo, hi int64) error {
	return inRange("PATCHCORE_PARAM_"+intKeys[key], v, lo, hi)
}

// setInt sets an integer parameter.
func (c *config) setInt(key C.int32_t, v int64) error {
	k := &c.core
	var err error
	switch key {
	case C.PATCHCORE_PARAM_RESIZE:
		if err = paramRange(key, v, 1, maxImageSide); err == nil {
			k.Resize = int(v)
		}
	case C.PATCHCORE_PARAM_IMAGESIZE:
		if err = paramRange(key, v, 1, maxMapSide); err == nil {
			k.ImageSize = int(v)
		}
	case C.PATCHCORE_PARAM_PRETRAIN_EMBED_DIM:
		if err = paramRange(key, v, 1, maxEmbedDim); err == nil {
			k.PretrainEmbedDim = int(v)
		}
	case C.PATCHCORE_PARAM_TARGET_EMBED_DIM:
		if err = paramRange(key, v, 1, maxEmbedDim); err == nil {
			k.TargetEmbedDim = int(v)
		}
	case C.PATCHCORE_PARAM_PATCHSIZE:
		if v < 1 || v > maxPatch || v%2 == 0 {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_PATCHSIZE = %d must be odd and in [1, %d]", v, maxPatch)
		}
		k.PatchSize = int(v)
	case C.PATCHCORE_PARAM_NUM_NN:
		if err = paramRange(key, v, 1, maxNN); err == nil {
			k.NumNN = int(v)
		}
	case C.PATCHCORE_PARAM_NN_METHOD:
		name, ok := nnMethodNames[v]
		if !ok {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_NN_METHOD = %d, want PATCHCORE_NN_EXACT (0) or PATCHCORE_NN_IVFPQ (1)", v)
		}
		k.NNMethod = name
	case C.PATCHCORE_PARAM_SEED:
		if err = paramRange(key, v, 0, math.MaxInt64); err == nil {
			k.Seed = uint64(v)
		}
	case C.PATCHCORE_PARAM_NUM_THREADS:
		if err = paramRange(key, v, 0, maxThreads); err == nil {
			k.Threads = int(v)
		}
	case C.PATCHCORE_PARAM_BATCH_SIZE:
		if err = paramRange(key, v, 1, maxBatch); err == nil {
			k.BatchSize = int(v)
		}
	case C.PATCHCORE_PARAM_EMBED_BACKBONE:
		if err = paramRange(key, v, 0, 1); err == nil {
			k.EmbedBackbone = v == 1
		}
	default:
		return keyError(key, "an integer")
	}
	return err
}

// setFloat sets a floating-point parameter.
func (c *config) setFloat(key C.int32_t, v float64) error {
	switch key {
	case C.PATCHCORE_PARAM_PERCENTAGE:
		if !(v > 0 && v < 1) {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_PERCENTAGE = %v is outside (0, 1)", v)
		}
		c.core.Percentage = v
	case C.PATCHCORE_PARAM_SIGMA:
		if !(v >= 0 && v <= maxModelSigma) {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_SIGMA = %v is out of range [0, %d]", v, maxModelSigma)
		}
		c.core.Sigma = v
	default:
		return keyError(key, "a float")
	}
	return nil
}

// setFloats sets a per-channel parameter from count values (3 are needed).
func (c *config) setFloats(key C.int32_t, values *C.pc_cfloat, count C.size_t) error {
	name, ok := floatsKeys[key]
	if !ok {
		return keyError(key, "a float array")
	}
	if values == nil {
		return errorf(statusInvalidArgument, "values is NULL")
	}
	if count != 3 {
		return errorf(statusInvalidArgument, "PATCHCORE_PARAM_%s needs 3 values, got count = %d", name, uint64(count))
	}
	var a [3]float32
	for i, x := range floatsIn(values, 3) {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_%s[%d] = %v is not finite", name, i, x)
		}
		if key == C.PATCHCORE_PARAM_STD && x <= 0 {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_STD[%d] = %v is not positive", i, x)
		}
		a[i] = x
	}
	if key == C.PATCHCORE_PARAM_MEAN {
		c.core.Mean = a
	} else {
		c.core.Std = a
	}
	return nil
}

// samplers are the sampler names the reference offers.
var samplers = []string{"identity", "random", "greedy_coreset", "approx_greedy_coreset"}

// setString sets a string parameter.
func (c *config) setString(key C.int32_t, v string) error {
	switch key {
	case C.PATCHCORE_PARAM_BACKBONE_PATH:
		c.backbonePath, c.backboneBytes = v, nil
	case C.PATCHCORE_PARAM_SAMPLER:
		for _, s := range samplers {
			if v == s {
				c.core.Sampler = v
				return nil
			}
		}
		return errorf(statusInvalidArgument, "PATCHCORE_PARAM_SAMPLER = %q, want one of %s", v, strings.Join(samplers, ", "))
	case C.PATCHCORE_PARAM_DEVICE:
		if !validDevice(v) {
			return errorf(statusInvalidArgument, "PATCHCORE_PARAM_DEVICE = %q, want \"cpu\", \"cuda\" or \"cuda:N\"", v)
		}
		c.core.Device = v
	default:
		return keyError(key, "a string")
	}
	return nil
}

// validDevice accepts "cpu", "cuda" and "cuda:N".
func validDevice(s string) bool {
	if s == "cpu" || s == "cuda" {
		return true
	}
	n, ok := strings.CutPrefix(s, "cuda:")
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 31)
	return err == nil
}

// nnMethodNames maps PATCHCORE_NN_* to core.Config.NNMethod.
var nnMethodNames = map[int64]string{C.PATCHCORE_NN_EXACT: "exact", C.PATCHCORE_NN_IVFPQ: "ivfpq"}

// modelInt reads an integer setting or property of a model.
func modelInt(m *core.Model, key C.int32_t) (int64, error) {
	cfg := m.Config()
	switch key {
	case C.PATCHCORE_PARAM_RESIZE:
		return int64(cfg.Resize), nil
	case C.PATCHCORE_PARAM_IMAGESIZE:
		return int64(cfg.ImageSize), nil
	case C.PATCHCORE_PARAM_PRETRAIN_EMBED_DIM:
		return int64(cfg.PretrainEmbedDim), nil
	case C.PATCHCORE_PARAM_TARGET_EMBED_DIM:
		return int64(cfg.TargetEmbedDim), nil
	case C.PATCHCORE_PARAM_PATCHSIZE:
		return int64(cfg.PatchSize), nil
	case C.PATCHCORE_PARAM_NUM_NN:
		return int64(cfg.NumNN), nil
	case C.PATCHCORE_PARAM_NN_METHOD:
		for v, name := range nnMethodNames {
			if name == cfg.NNMethod {
				return v, nil
			}
		}
		return 0, fmt.Errorf("%w: model has nn method %q", core.ErrInternal, cfg.NNMethod)
	case C.PATCHCORE_PARAM_SEED:
		return int64(cfg.Seed), nil
	case C.PATCHCORE_PARAM_NUM_THREADS:
		return int64(cfg.Threads), nil
	case C.PATCHCORE_PARAM_BATCH_SIZE:
		return int64(cfg.BatchSize), nil
	case C.PATCHCORE_PARAM_EMBED_BACKBONE:
		if cfg.EmbedBackbone {
			return 1, nil
		}
		return 0, nil
	case C.PATCHCORE_PARAM_BANK_ROWS:
		rows, _ := m.BankSize()
		return int64(rows), nil
	case C.PATCHCORE_PARAM_GRID_HEIGHT:
		h, _ := m.Grid()
		return int64(h), nil
	case C.PATCHCORE_PARAM_GRID_WIDTH:
		_, w := m.Grid()
		return int64(w), nil
	}
	return 0, keyError(key, "an integer")
}

// modelFloat reads a floating-point setting or property of a model.
func modelFloat(m *core.Model, key C.int32_t) (float64, error) {
	switch key {
	case C.PATCHCORE_PARAM_PERCENTAGE:
		return m.Config().Percentage, nil
	case C.PATCHCORE_PARAM_SIGMA:
		return m.Config().Sigma, nil
	case C.PATCHCORE_PARAM_THRESHOLD:
		if c := m.Calibration(); c.Calibrated() {
			return float64(c.Threshold), nil
		}
		return math.NaN(), nil
	}
	return 0, keyError(key, "a float")
}
