package main

/*
#include <stddef.h>
#include "capi.h"
*/
import "C"

import (
	"strconv"
	"strings"

	"github.com/libpatchcore/libpatchcore/core"
)

// versionString and versionNumber are core.Version (stamped by the Makefile with -X) as
// patchcore_version_string and patchcore_version_number return them.
var (
	versionString = (*C.pc_cchar)(C.CString(core.Version)) // static for the life of the process
	versionNumber = parseVersion(core.Version)
)

// parseVersion turns "MAJOR.MINOR.PATCH[-suffix]" into MAJOR*10000 + MINOR*100 + PATCH,
// or 0 when the string has another form.
func parseVersion(v string) int32 {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return 0
	}
	n := int32(0)
	for i, p := range parts {
		x, err := strconv.ParseUint(p, 10, 8)
		if err != nil || (i > 0 && x > 99) {
			return 0
		}
		n = n*100 + int32(x)
	}
	return n
}

// mapSize is the number of floats of one anomaly map (imagesize x imagesize).
func mapSize(m *core.Model) int {
	s := m.Config().ImageSize
	return s * s
}

// predictOutputs checks the outputs of a predict call for n images before any work is
// done: out_scores is required, out_maps optional and, when given, must hold n maps.
// *outNeeded receives n * map_size in every case.
func predictOutputs(m *core.Model, n int, outScores, outMaps *C.float, capacity C.size_t, outNeeded *C.size_t) error {
	needed, err := size("anomaly maps", int64(n), int64(mapSize(m)))
	if err != nil {
		return err
	}
	setNeeded(outNeeded, needed)
	if outScores == nil {
		return errorf(statusInvalidArgument, "out_scores is NULL")
	}
	if outMaps != nil && uint64(capacity) < uint64(needed) {
		return errorf(statusBufferTooSmall, "out_maps holds %d floats, %d images need %d", uint64(capacity), n, needed)
	}
	return nil
}

// writePrediction copies scores (and maps when wanted) into the caller's buffers, sized
// by predictOutputs.
func writePrediction(p core.Prediction, outScores, outMaps *C.float) {
	copy(floatsOut(outScores, len(p.Scores)), p.Scores)
	if outMaps != nil {
		copy(floatsOut(outMaps, len(p.Maps.Data)), p.Maps.Data)
	}
}

// checkCalibration checks a PATCHCORE_CALIBRATE_* method and a finite parameter.
func checkCalibration(method C.int32_t, param float64) error {
	if method < C.PATCHCORE_CALIBRATE_QUANTILE || method > C.PATCHCORE_CALIBRATE_F1 {
		return errorf(statusInvalidArgument, "method = %d, want PATCHCORE_CALIBRATE_QUANTILE (0), _MEAN_STD (1) or _F1 (2)", method)
	}
	return finite("param", param)
}

// loadOptions are the options of patchcore_model_load*: an optional backbone override and
// the library's default thread count.
func loadOptions(backbonePath *C.pc_cchar) core.LoadOptions {
	return core.LoadOptions{BackbonePath: optString(backbonePath), Threads: int(defaultThreads.Load())}
}
