package main

import (
	"fmt"
	"image"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ct "github.com/libpatchcore/libpatchcore/capi/cgotest"
	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/golden"
)

func TestVersion(t *testing.T) {
	want := fmt.Sprintf("%d.%d.%d", ct.VersionMajor, ct.VersionMinor, ct.VersionPatch)
	if ct.VersionNumber != ct.VersionMajor*10000+ct.VersionMinor*100+ct.VersionPatch {
		t.Fatalf("PATCHCORE_VERSION_NUMBER = %d disagrees with the component macros", ct.VersionNumber)
	}
	// An unstamped test build carries core.Version's default; the Makefile stamps the
	// same MAJOR.MINOR.PATCH, which scripts/test-c.sh checks against the built library.
	if got := ct.VersionString(); got != core.Version || !strings.HasPrefix(got, want) {
		t.Fatalf("version_string = %q, core.Version %q, header %s", got, core.Version, want)
	}
	if got := ct.VersionNumberOf(); got != ct.VersionNumber {
		t.Fatalf("version_number = %d, header %d", got, ct.VersionNumber)
	}
	for v, n := range map[string]int32{"1.2.3": 10203, "0.1.0-dev": 100, "10.0.99": 100099, "1.2": 0, "1.100.0": 0, "x.y.z": 0} {
		if got := parseVersion(v); got != n {
			t.Errorf("parseVersion(%q) = %d, want %d", v, got, n)
		}
	}
}

func TestConfigSetters(t *testing.T) {
	defer lockThread()()
	expect(t, ct.ConfigCreate(nil), ct.InvalidArgument, "patchcore_config_create", "out_config is NULL")
	var c ct.Handle
	expect(t, ct.ConfigCreate(&c), ct.OK, "patchcore_config_create")
	defer ct.ConfigFree(c)

	for _, k := range []struct {
		key  int32
		good []int64
		bad  []int64
		frag string
	}{
		{ct.ParamResize, []int64{1, 256, 32768}, []int64{0, 32769}, "PATCHCORE_PARAM_RESIZE"},
		{ct.ParamImageSize, []int64{1, 224, 4096}, []int64{0, 4097}, "PATCHCORE_PARAM_IMAGESIZE"},
		{ct.ParamPretrainEmbedDim, []int64{1, 1024}, []int64{0, 65537}, "PATCHCORE_PARAM_PRETRAIN_EMBED_DIM"},
		{ct.ParamTargetEmbedDim, []int64{1, 1024}, []int64{-1, 1 << 40}, "PATCHCORE_PARAM_TARGET_EMBED_DIM"},
		{ct.ParamPatchSize, []int64{1, 3, 63}, []int64{0, 2, 65}, "PATCHCORE_PARAM_PATCHSIZE"},
		{ct.ParamNumNN, []int64{1, 9}, []int64{0, 65537}, "PATCHCORE_PARAM_NUM_NN"},
		{ct.ParamNNMethod, []int64{ct.NNIVFPQ, ct.NNExact}, []int64{-1, 2}, "PATCHCORE_PARAM_NN_METHOD"},
		{ct.ParamSeed, []int64{0, math.MaxInt64}, []int64{-1}, "PATCHCORE_PARAM_SEED"},
		{ct.ParamNumThreads, []int64{0, 1024}, []int64{-1, 1025}, "PATCHCORE_PARAM_NUM_THREADS"},
		{ct.ParamBatchSize, []int64{1, 4096}, []int64{0, 4097}, "PATCHCORE_PARAM_BATCH_SIZE"},
		{ct.ParamEmbedBackbone, []int64{1, 0}, []int64{2, -1}, "PATCHCORE_PARAM_EMBED_BACKBONE"},
	} {
		for _, v := range k.good {
			expect(t, ct.ConfigSetInt(c, k.key, v), ct.OK, "patchcore_config_set_int")
		}
		for _, v := range k.bad {
			expect(t, ct.ConfigSetInt(c, k.key, v), ct.InvalidArgument, "patchcore_config_set_int", k.frag, fmt.Sprint(v))
		}
	}
	expect(t, ct.ConfigSetInt(c, 999, 1), ct.InvalidArgument, "patchcore_config_set_int", "unknown parameter key 999")
	expect(t, ct.ConfigSetInt(c, ct.ParamSigma, 1), ct.InvalidArgument, "patchcore_config_set_int", "PATCHCORE_PARAM_SIGMA is a float parameter")
	expect(t, ct.ConfigSetInt(c, ct.ParamBankRows, 1), ct.InvalidArgument, "patchcore_config_set_int", "PATCHCORE_PARAM_BANK_ROWS is read-only")

	expect(t, ct.ConfigSetFloat(c, ct.ParamPercentage, 0.25), ct.OK, "patchcore_config_set_float")
	for _, v := range []float64{0, 1, -0.5, math.NaN()} {
		expect(t, ct.ConfigSetFloat(c, ct.ParamPercentage, v), ct.InvalidArgument, "patchcore_config_set_float", "PATCHCORE_PARAM_PERCENTAGE = "+fmt.Sprint(v))
	}
	expect(t, ct.ConfigSetFloat(c, ct.ParamSigma, 0), ct.OK, "patchcore_config_set_float")
	expect(t, ct.ConfigSetFloat(c, ct.ParamSigma, 64.5), ct.InvalidArgument, "patchcore_config_set_float", "PATCHCORE_PARAM_SIGMA = 64.5")
	expect(t, ct.ConfigSetFloat(c, ct.ParamThreshold, 1), ct.InvalidArgument, "patchcore_config_set_float", "PATCHCORE_PARAM_THRESHOLD is read-only")
	expect(t, ct.ConfigSetFloat(c, ct.ParamSeed, 1), ct.InvalidArgument, "patchcore_config_set_float", "PATCHCORE_PARAM_SEED is an integer parameter, not a float one")

	half := []float32{0.5, 0.5, 0.5}
	expect(t, ct.ConfigSetFloats(c, ct.ParamMean, half, 3), ct.OK, "patchcore_config_set_floats")
	expect(t, ct.ConfigSetFloats(c, ct.ParamStd, half, 3), ct.OK, "patchcore_config_set_floats")
	expect(t, ct.ConfigSetFloats(c, ct.ParamStd, half, 2), ct.InvalidArgument, "patchcore_config_set_floats", "PATCHCORE_PARAM_STD needs 3 values, got count = 2")
	expect(t, ct.ConfigSetFloats(c, ct.ParamStd, nil, 3), ct.InvalidArgument, "patchcore_config_set_floats", "values is NULL")
	expect(t, ct.ConfigSetFloats(c, ct.ParamStd, []float32{1, 0, 1}, 3), ct.InvalidArgument, "patchcore_config_set_floats", "PATCHCORE_PARAM_STD[1] = 0 is not positive")
	expect(t, ct.ConfigSetFloats(c, ct.ParamMean, []float32{1, 1, float32(math.Inf(1))}, 3), ct.InvalidArgument, "patchcore_config_set_floats", "PATCHCORE_PARAM_MEAN[2] = +Inf")
	expect(t, ct.ConfigSetFloats(c, ct.ParamSigma, half, 3), ct.InvalidArgument, "patchcore_config_set_floats", "PATCHCORE_PARAM_SIGMA is a float parameter, not a float array one")

	for _, s := range []string{"identity", "random", "greedy_coreset", "approx_greedy_coreset"} {
		expect(t, ct.ConfigSetString(c, ct.ParamSampler, ct.S(s)), ct.OK, "patchcore_config_set_string")
	}
	expect(t, ct.ConfigSetString(c, ct.ParamSampler, ct.S("kmeans")), ct.InvalidArgument, "patchcore_config_set_string", `PATCHCORE_PARAM_SAMPLER = "kmeans"`)
	for _, d := range []string{"cpu", "cuda", "cuda:1"} {
		expect(t, ct.ConfigSetString(c, ct.ParamDevice, ct.S(d)), ct.OK, "patchcore_config_set_string")
	}
	for _, d := range []string{"gpu", "cuda:", "cuda:-1", "CPU "} {
		expect(t, ct.ConfigSetString(c, ct.ParamDevice, ct.S(d)), ct.InvalidArgument, "patchcore_config_set_string", fmt.Sprintf("PATCHCORE_PARAM_DEVICE = %q", d))
	}
	expect(t, ct.ConfigSetString(c, ct.ParamBackbonePath, nil), ct.InvalidArgument, "patchcore_config_set_string", "value is NULL")
	expect(t, ct.ConfigSetString(c, ct.ParamResize, ct.S("256")), ct.InvalidArgument, "patchcore_config_set_string", "PATCHCORE_PARAM_RESIZE is an integer parameter, not a string one")

	expect(t, ct.ConfigSetLayers(c, mnv2Layers, 2), ct.OK, "patchcore_config_set_layers")
	expect(t, ct.ConfigSetLayers(c, nil, 2), ct.InvalidArgument, "patchcore_config_set_layers", "names is NULL")
	expect(t, ct.ConfigSetLayers(c, mnv2Layers, 0), ct.InvalidArgument, "patchcore_config_set_layers", "names count 0")
	expect(t, ct.ConfigSetLayers(c, make([]*string, 17), 17), ct.InvalidArgument, "patchcore_config_set_layers", "names count 17")
	expect(t, ct.ConfigSetLayers(c, []*string{ct.S("a"), nil}, 2), ct.InvalidArgument, "patchcore_config_set_layers", "names[1] is NULL")

	expect(t, ct.ConfigSetBackboneBytes(c, nil, 10), ct.InvalidArgument, "patchcore_config_set_backbone_bytes", "onnx is NULL")
	expect(t, ct.ConfigSetBackboneBytes(c, []byte{1}, 0), ct.InvalidArgument, "patchcore_config_set_backbone_bytes", "size = 0")

	var m ct.Handle
	// The last device set is "cuda:1": a features-only model computes on the CPU, and this
	// build has no GPU support, so asking for a GPU is refused, never silently ignored.
	expect(t, ct.ModelCreate(c, &m), ct.Unsupported, "patchcore_model_create", `device "cuda:1"`)
	expect(t, ct.ConfigSetString(c, ct.ParamDevice, ct.S("cpu")), ct.OK, "patchcore_config_set_string")
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create") // features-only: no backbone
	var v int64
	var f float64
	for key, want := range map[int32]int64{ct.ParamEmbedBackbone: 0, ct.ParamBatchSize: 4096, ct.ParamSeed: math.MaxInt64, ct.ParamPatchSize: 63,
		ct.ParamNNMethod: ct.NNExact, ct.ParamNumThreads: 1024, ct.ParamBankRows: 0, ct.ParamGridHeight: 0, ct.ParamImageSize: 4096} {
		expect(t, ct.ModelGetInt(m, key, &v), ct.OK, "patchcore_model_get_int")
		if v != want {
			t.Errorf("get_int(%d) = %d, want %d", key, v, want)
		}
	}
	expect(t, ct.ModelGetFloat(m, ct.ParamPercentage, &f), ct.OK, "patchcore_model_get_float")
	if f != 0.25 {
		t.Errorf("percentage = %g", f)
	}
	expect(t, ct.ModelGetFloat(m, ct.ParamThreshold, &f), ct.OK, "patchcore_model_get_float")
	if !math.IsNaN(f) {
		t.Errorf("threshold of an uncalibrated model = %g, want NaN", f)
	}
	expect(t, ct.ModelGetInt(m, ct.ParamSigma, &v), ct.InvalidArgument, "patchcore_model_get_int", "PATCHCORE_PARAM_SIGMA is a float parameter")
	expect(t, ct.ModelGetFloat(m, ct.ParamBankRows, &f), ct.InvalidArgument, "patchcore_model_get_float", "PATCHCORE_PARAM_BANK_ROWS is an integer parameter")
	expect(t, ct.ModelGetInt(m, 5000, &v), ct.InvalidArgument, "patchcore_model_get_int", "unknown parameter key 5000")
	expect(t, ct.ModelGetInt(m, ct.ParamResize, nil), ct.InvalidArgument, "patchcore_model_get_int", "out_value is NULL")
	expect(t, ct.ModelGetFloat(m, ct.ParamSigma, nil), ct.InvalidArgument, "patchcore_model_get_float", "out_value is NULL")
	expect(t, ct.ModelFree(m), ct.OK, "patchcore_model_free")

	expect(t, ct.ModelCreate(c, nil), ct.InvalidArgument, "patchcore_model_create", "out_model is NULL")
	expect(t, ct.ConfigSetInt(c, ct.ParamResize, 100), ct.OK, "patchcore_config_set_int")
	m = 77
	expect(t, ct.ModelCreate(c, &m), ct.InvalidArgument, "patchcore_model_create", "resize 100 imagesize 4096")
	if m != 0 {
		t.Fatal("failed create left a handle")
	}
	expect(t, ct.ModelCreate(0, &m), ct.InvalidHandle, "patchcore_model_create", "config handle is NULL")
	var c2 ct.Handle
	expect(t, ct.ConfigCreate(&c2), ct.OK, "patchcore_config_create")
	expect(t, ct.ConfigFree(c2), ct.OK, "patchcore_config_free")
	expect(t, ct.ConfigFree(c2), ct.InvalidHandle, "patchcore_config_free", "already freed")
	expect(t, ct.ConfigSetInt(c2, ct.ParamResize, 1), ct.InvalidHandle, "patchcore_config_set_int", "already freed")
	expect(t, ct.ConfigFree(0), ct.OK, "patchcore_config_free")
}

// mnv2Config creates a config for the golden MobileNetV2 run: its ONNX takes pixels in
// [-1, 1] (mean = std = 0.5), the coreset is off.
func mnv2Config(t *testing.T, withBackbone bool) ct.Handle {
	t.Helper()
	var c ct.Handle
	expect(t, ct.ConfigCreate(&c), ct.OK, "patchcore_config_create")
	if withBackbone {
		expect(t, ct.ConfigSetString(c, ct.ParamBackbonePath, ct.S(golden.Path(t, mnv2ONNX))), ct.OK, "patchcore_config_set_string")
	}
	expect(t, ct.ConfigSetLayers(c, mnv2Layers, 2), ct.OK, "patchcore_config_set_layers")
	expect(t, ct.ConfigSetString(c, ct.ParamSampler, ct.S("identity")), ct.OK, "patchcore_config_set_string")
	half := []float32{0.5, 0.5, 0.5}
	expect(t, ct.ConfigSetFloats(c, ct.ParamMean, half, 3), ct.OK, "patchcore_config_set_floats")
	expect(t, ct.ConfigSetFloats(c, ct.ParamStd, half, 3), ct.OK, "patchcore_config_set_floats")
	return c
}

func pngs(t *testing.T, names ...string) []*string {
	var out []*string
	for _, n := range names {
		out = append(out, ct.S(golden.Path(t, "mnv2/png/"+n)))
	}
	return out
}

// loadPixels decodes PNGs into one buffer of channels-interleaved images with stride
// padding, in RGB or BGR order.
func loadPixels(t *testing.T, paths []*string, channels int, bgr bool, pad int) ct.Image {
	var im ct.Image
	for _, p := range paths {
		f, err := os.Open(*p)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		w, h := b.Dx(), b.Dy()
		stride := w*channels + pad
		for y := range h {
			row := make([]byte, stride)
			for x := range w {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				px := []byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8), 255}
				if bgr {
					px[0], px[2] = px[2], px[0]
				}
				copy(row[x*channels:], px[:channels])
			}
			im.Pix = append(im.Pix, row...)
		}
		im.Width, im.Height, im.Stride = int32(w), int32(h), int32(stride)
	}
	im.N, im.Channels, im.Format = int32(len(paths)), int32(channels), ct.PixelRGB
	if bgr {
		im.Format = ct.PixelBGR
	}
	return im
}

func relErr(got, want []float32) float64 {
	diff, scale := maxAbsDiff(got, want)
	return diff / scale
}

func TestModelGoldenPNG(t *testing.T) {
	defer lockThread()()
	c := mnv2Config(t, true)
	defer ct.ConfigFree(c)
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	defer ct.ModelFree(m)
	test := pngs(t, "test_good_001.png", "test_stain_000.png")
	scores := make([]float32, 2)
	expect(t, ct.ModelPredictFiles(m, test, 2, ct.Outputs{Scores: scores}), ct.InvalidState, "patchcore_model_predict_files", "not fitted")
	expect(t, ct.ModelFit(m), ct.InvalidState, "patchcore_model_fit", "no training images")
	expect(t, ct.ModelSave(m, ct.S(filepath.Join(t.TempDir(), "unfitted"))), ct.InvalidState, "patchcore_model_save", "not fitted")
	expect(t, ct.ModelSaveToBuffer(m, nil, 0, nil), ct.InvalidState, "patchcore_model_save_to_buffer", "not fitted")
	expect(t, ct.ModelCalibrateScores(m, scores, nil, 2, ct.CalibrateQuantile, 0.5, nil), ct.InvalidState, "patchcore_model_calibrate_scores", "not fitted")

	expect(t, ct.ModelAddFiles(m, pngs(t, "train_good_000.png"), 1), ct.OK, "patchcore_model_add_files")
	expect(t, ct.ModelAddFiles(m, pngs(t, "train_good_001.png"), 1), ct.OK, "patchcore_model_add_files")
	expect(t, ct.ModelFit(m), ct.OK, "patchcore_model_fit")
	var v int64
	for key, want := range map[int32]int64{ct.ParamBankRows: 2 * 784, ct.ParamGridHeight: 28, ct.ParamGridWidth: 28} {
		expect(t, ct.ModelGetInt(m, key, &v), ct.OK, "patchcore_model_get_int")
		if v != want {
			t.Fatalf("get_int(%d) = %d, want %d", key, v, want)
		}
	}
	var mapSize uint64
	expect(t, ct.ModelMapSize(m, &mapSize), ct.OK, "patchcore_model_map_size")
	if mapSize != 224*224 {
		t.Fatalf("map_size = %d", mapSize)
	}
	expect(t, ct.ModelMapSize(m, nil), ct.InvalidArgument, "patchcore_model_map_size", "out_size is NULL")

	var needed uint64
	maps := make([]float32, 2*mapSize)
	expect(t, ct.ModelPredictFiles(m, test, 2, ct.Outputs{Scores: scores, Maps: maps, Capacity: 2*mapSize - 1, Needed: &needed}),
		ct.BufferTooSmall, "patchcore_model_predict_files", "out_maps holds 100351 floats, 2 images need 100352")
	if needed != 2*mapSize {
		t.Fatalf("needed = %d", needed)
	}
	expect(t, ct.ModelPredictFiles(m, test, 2, ct.Outputs{Scores: scores, Maps: maps, Capacity: 2 * mapSize, Needed: &needed}), ct.OK, "patchcore_model_predict_files")
	if e := relErr(scores, golden.Load(t, "mnv2/image_scores_k1.npy").F32); e > 1e-3 {
		t.Fatalf("scores %v: rel err %g against the reference", scores, e)
	}
	if e := relErr(maps, golden.Load(t, "mnv2/segmentations_k1.npy").F32); e > 1e-3 {
		t.Fatalf("maps: rel err %g against the reference", e)
	}
	if !(scores[1] > scores[0]) {
		t.Fatalf("the stain image does not score above the good one: %v", scores)
	}

	// The same images as pixel buffers, in every layout, give the same scores bit for bit.
	for _, layout := range []struct {
		channels int
		bgr      bool
		pad      int
	}{{3, false, 0}, {3, true, 5}, {4, false, 0}, {4, true, 12}} {
		im := loadPixels(t, test, layout.channels, layout.bgr, layout.pad)
		got := make([]float32, 2)
		expect(t, ct.ModelPredict(m, im, ct.Outputs{Scores: got}), ct.OK, "patchcore_model_predict")
		if got[0] != scores[0] || got[1] != scores[1] {
			t.Fatalf("%+v: scores %v, from files %v", layout, got, scores)
		}
	}

	// Save / load (file and buffer) give bit-identical scores.
	path := filepath.Join(t.TempDir(), "mnv2.patchcore")
	expect(t, ct.ModelSave(m, ct.S(path)), ct.OK, "patchcore_model_save")
	var m2 ct.Handle
	// The file names the backbone by its base name, resolved next to the model file: a
	// model saved elsewhere is loaded with the backbone given explicitly.
	expect(t, ct.ModelLoad(ct.S(path), nil, &m2), ct.IO, "patchcore_model_load", "nsfwjs_mnv2_block6er_block10er_pm1.onnx")
	expect(t, ct.ModelLoad(ct.S(path), ct.S(golden.Path(t, mnv2ONNX)), &m2), ct.OK, "patchcore_model_load")
	got := make([]float32, 2)
	expect(t, ct.ModelPredictFiles(m2, test, 2, ct.Outputs{Scores: got}), ct.OK, "patchcore_model_predict_files")
	expect(t, ct.ModelFree(m2), ct.OK, "patchcore_model_free")
	if got[0] != scores[0] || got[1] != scores[1] {
		t.Fatalf("after save/load: %v, before %v", got, scores)
	}
	expect(t, ct.ModelSaveToBuffer(m, nil, 0, &needed), ct.BufferTooSmall, "patchcore_model_save_to_buffer")
	buf := make([]byte, needed)
	expect(t, ct.ModelSaveToBuffer(m, buf, needed-1, nil), ct.BufferTooSmall, "patchcore_model_save_to_buffer", fmt.Sprintf("%d are needed", needed))
	expect(t, ct.ModelSaveToBuffer(m, buf, needed, nil), ct.OK, "patchcore_model_save_to_buffer")
	expect(t, ct.ModelLoadFromBuffer(buf, needed, ct.S(golden.Path(t, mnv2ONNX)), &m2), ct.OK, "patchcore_model_load_from_buffer")
	expect(t, ct.ModelPredictFiles(m2, test, 2, ct.Outputs{Scores: got}), ct.OK, "patchcore_model_predict_files")
	expect(t, ct.ModelFree(m2), ct.OK, "patchcore_model_free")
	if got[0] != scores[0] || got[1] != scores[1] {
		t.Fatalf("after save_to_buffer/load_from_buffer: %v, before %v", got, scores)
	}
	m2 = 5
	expect(t, ct.ModelLoadFromBuffer(buf, needed/2, nil, &m2), ct.Format, "patchcore_model_load_from_buffer")
	if m2 != 0 {
		t.Fatal("failed load left a handle")
	}
	if err := os.WriteFile(path, buf[:needed/2], 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, ct.ModelLoad(ct.S(path), nil, &m2), ct.Format, "patchcore_model_load", path)
	missing := filepath.Join(t.TempDir(), "missing.patchcore")
	expect(t, ct.ModelLoad(ct.S(missing), nil, &m2), ct.IO, "patchcore_model_load", missing)
	expect(t, ct.ModelLoad(nil, nil, &m2), ct.InvalidArgument, "patchcore_model_load", "path is NULL")
	expect(t, ct.ModelLoad(ct.S(path), nil, nil), ct.InvalidArgument, "patchcore_model_load", "out_model is NULL")
	expect(t, ct.ModelLoadFromBuffer(nil, 10, nil, &m2), ct.InvalidArgument, "patchcore_model_load_from_buffer", "buf is NULL")
	expect(t, ct.ModelLoadFromBuffer(buf, 0, nil, &m2), ct.InvalidArgument, "patchcore_model_load_from_buffer", "size = 0")
	expect(t, ct.ModelSave(m, nil), ct.InvalidArgument, "patchcore_model_save", "path is NULL")
	expect(t, ct.ModelSave(m, ct.S(filepath.Join(missing, "sub", "x"))), ct.IO, "patchcore_model_save", missing)

	// Calibration, segmentation and normalisation.
	var thr float32
	var f float64
	expect(t, ct.ModelSegment(m, maps, 4, float32(math.NaN()), make([]byte, 4)), ct.InvalidState, "patchcore_model_segment", "not calibrated")
	expect(t, ct.ModelNormalizeScores(m, scores, 2, got), ct.InvalidState, "patchcore_model_normalize_scores", "not calibrated")
	expect(t, ct.ModelCalibrateScores(m, scores, []int32{0, 1}, 2, ct.CalibrateF1, 0, &thr), ct.OK, "patchcore_model_calibrate_scores")
	if !(thr > scores[0] && thr <= scores[1]) {
		t.Fatalf("F1 threshold %g does not separate %v", thr, scores)
	}
	expect(t, ct.ModelGetFloat(m, ct.ParamThreshold, &f), ct.OK, "patchcore_model_get_float")
	if float32(f) != thr {
		t.Fatalf("stored threshold %g, calibrated %g", f, thr)
	}
	masks := make([]byte, len(maps))
	expect(t, ct.ModelSegment(m, maps, uint64(len(maps)), float32(math.NaN()), masks), ct.OK, "patchcore_model_segment")
	for i, v := range maps {
		if want := v >= thr; (masks[i] == 1) != want || masks[i] > 1 {
			t.Fatalf("mask[%d] = %d for map value %g and threshold %g", i, masks[i], v, thr)
		}
	}
	expect(t, ct.ModelSegment(m, maps, 3, 0, masks), ct.OK, "patchcore_model_segment")
	if masks[0] != 1 || masks[1] != 1 || masks[2] != 1 {
		t.Fatal("explicit threshold 0 does not mark positive map values")
	}
	expect(t, ct.ModelSegment(m, nil, 3, 0, masks), ct.InvalidArgument, "patchcore_model_segment", "maps or out_masks is NULL")
	expect(t, ct.ModelSegment(m, maps, 0, 0, masks), ct.InvalidArgument, "patchcore_model_segment", "count = 0")
	expect(t, ct.ModelNormalizeScores(m, scores, 2, got), ct.OK, "patchcore_model_normalize_scores")
	lo, hi := scores[0], scores[1]
	for i, s := range scores {
		want := float32(math.Min(1, math.Max(0, float64((s-thr)/(hi-lo)+0.5))))
		if math.Abs(float64(got[i]-want)) > 1e-6 {
			t.Fatalf("normalized[%d] = %g, want %g", i, got[i], want)
		}
	}
	expect(t, ct.ModelNormalizeScores(m, nil, 2, got), ct.InvalidArgument, "patchcore_model_normalize_scores", "NULL")

	good := loadPixels(t, pngs(t, "train_good_000.png", "train_good_001.png", "test_good_001.png"), 3, false, 0)
	expect(t, ct.ModelCalibrate(m, good, ct.CalibrateQuantile, 1, &thr), ct.OK, "patchcore_model_calibrate")
	if math.Abs(float64(thr-scores[0])) > 1e-6*float64(scores[0]) {
		t.Fatalf("quantile-1 threshold over good images %g, want the highest good score %g", thr, scores[0])
	}
	expect(t, ct.ModelCalibrate(m, good, ct.CalibrateQuantile, 1.5, nil), ct.InvalidArgument, "patchcore_model_calibrate", "quantile 1.5")
	expect(t, ct.ModelCalibrate(m, good, 9, 1, nil), ct.InvalidArgument, "patchcore_model_calibrate", "method = 9")
	expect(t, ct.ModelCalibrate(m, good, ct.CalibrateMeanStd, math.Inf(1), nil), ct.InvalidArgument, "patchcore_model_calibrate", "param = +Inf")
	expect(t, ct.ModelCalibrate(m, good, ct.CalibrateF1, 0, nil), ct.InvalidArgument, "patchcore_model_calibrate", "labelled")
	expect(t, ct.ModelCalibrateScores(m, scores, []int32{0, 2}, 2, ct.CalibrateF1, 0, nil), ct.InvalidArgument, "patchcore_model_calibrate_scores", "labels[1] = 2")
	expect(t, ct.ModelCalibrateScores(m, scores, nil, 2, ct.CalibrateF1, 0, nil), ct.InvalidArgument, "patchcore_model_calibrate_scores", "needs labels")
	expect(t, ct.ModelCalibrateScores(m, nil, nil, 2, ct.CalibrateQuantile, 0.5, nil), ct.InvalidArgument, "patchcore_model_calibrate_scores", "scores is NULL")
}

func TestModelImageArguments(t *testing.T) {
	defer lockThread()()
	c := mnv2Config(t, true)
	defer ct.ConfigFree(c)
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	defer ct.ModelFree(m)
	good := loadPixels(t, pngs(t, "train_good_000.png"), 3, false, 0)
	for _, c := range []struct {
		edit   func(*ct.Image)
		status int32
		frag   string
	}{
		{func(im *ct.Image) { im.Pix = nil }, ct.InvalidArgument, "pixels is NULL"},
		{func(im *ct.Image) { im.N = 0 }, ct.InvalidArgument, "n_images = 0"},
		{func(im *ct.Image) { im.Width = 0 }, ct.InvalidArgument, "image size 0x256"},
		{func(im *ct.Image) { im.Height = 40000 }, ct.InvalidArgument, "image size 256x40000"},
		{func(im *ct.Image) { im.Width, im.Height = 32768, 16385 }, ct.InvalidArgument, "2^28 pixels"},
		{func(im *ct.Image) { im.Channels = 2 }, ct.InvalidArgument, "channels = 2"},
		{func(im *ct.Image) { im.Stride = 767 }, ct.InvalidArgument, "stride = 767"},
		{func(im *ct.Image) { im.Format = 2 }, ct.InvalidArgument, "pixel_format = 2"},
		{func(im *ct.Image) { im.N, im.Width, im.Height, im.Stride = math.MaxInt32, 16384, 16384, math.MaxInt32 }, ct.OutOfMemory, "2^40"},
	} {
		im := good
		c.edit(&im)
		expect(t, ct.ModelAddImages(m, im), c.status, "patchcore_model_add_images", c.frag)
		expect(t, ct.ModelPredict(m, im, ct.Outputs{Scores: make([]float32, 1)}), c.status, "patchcore_model_predict", c.frag)
		expect(t, ct.ModelCalibrate(m, im, ct.CalibrateQuantile, 0.5, nil), c.status, "patchcore_model_calibrate", c.frag)
	}
	expect(t, ct.ModelAddFiles(m, nil, 1), ct.InvalidArgument, "patchcore_model_add_files", "paths is NULL")
	expect(t, ct.ModelAddFiles(m, []*string{nil}, 1), ct.InvalidArgument, "patchcore_model_add_files", "paths[0] is NULL")
	missing := filepath.Join(t.TempDir(), "missing.png")
	expect(t, ct.ModelAddFiles(m, []*string{ct.S(missing)}, 1), ct.IO, "patchcore_model_add_files", missing)
	notPNG := filepath.Join(t.TempDir(), "bad.png")
	if err := os.WriteFile(notPNG, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, ct.ModelAddFiles(m, []*string{ct.S(notPNG)}, 1), ct.Format, "patchcore_model_add_files", "bad.png")
	expect(t, ct.ModelAddImages(m, good), ct.OK, "patchcore_model_add_images")
	expect(t, ct.ModelFit(m), ct.OK, "patchcore_model_fit")
	expect(t, ct.ModelPredict(m, good, ct.Outputs{}), ct.InvalidArgument, "patchcore_model_predict", "out_scores is NULL")
	// A features call on a model with a backbone checks shapes against the backbone's.
	layers, shapes := goldenLayers(t, "test")
	shapes[1] = 100
	expect(t, ct.ModelAddFeatures(m, layers, shapes, 2), ct.InvalidArgument, "patchcore_model_add_features", "block_6_expand_relu")
}

func TestModelFeaturesOnly(t *testing.T) {
	defer lockThread()()
	c := mnv2Config(t, false)
	defer ct.ConfigFree(c)
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	defer ct.ModelFree(m)
	im := ct.Image{Pix: make([]byte, 16*16*3), N: 1, Width: 16, Height: 16, Stride: 48, Channels: 3}
	expect(t, ct.ModelAddImages(m, im), ct.InvalidState, "patchcore_model_add_images", "no backbone")

	train, trainShapes := goldenLayers(t, "train")
	expect(t, ct.ModelAddFeatures(m, train, trainShapes, 1), ct.InvalidArgument, "patchcore_model_add_features", "1 feature layers")
	expect(t, ct.ModelAddFeatures(m, nil, trainShapes, 2), ct.InvalidArgument, "patchcore_model_add_features", "layers or shapes is NULL")
	nan := append([]float32(nil), train[1]...)
	nan[7] = float32(math.NaN())
	expect(t, ct.ModelAddFeatures(m, [][]float32{train[0], nan}, trainShapes, 2), ct.InvalidArgument, "patchcore_model_add_features", "NaN")
	expect(t, ct.ModelAddFeatures(m, train, trainShapes, 2), ct.OK, "patchcore_model_add_features")
	expect(t, ct.ModelFit(m), ct.OK, "patchcore_model_fit")

	test, testShapes := goldenLayers(t, "test")
	scores, maps := make([]float32, 2), make([]float32, 2*224*224)
	var needed uint64
	expect(t, ct.ModelPredictFeatures(m, test, testShapes, 2, ct.Outputs{Scores: scores, Maps: maps, Capacity: uint64(len(maps)), Needed: &needed}), ct.OK, "patchcore_model_predict_features")
	if needed != uint64(len(maps)) {
		t.Fatalf("needed = %d", needed)
	}
	if e := relErr(scores, golden.Load(t, "mnv2/image_scores_k1.npy").F32); e > 1e-3 {
		t.Fatalf("scores %v: rel err %g against the reference", scores, e)
	}
	if e := relErr(maps, golden.Load(t, "mnv2/segmentations_k1.npy").F32); e > 1e-3 {
		t.Fatalf("maps: rel err %g against the reference", e)
	}
	testShapes[6] = 13 // layer 1 height: the grid no longer matches the fitted model
	expect(t, ct.ModelPredictFeatures(m, test, testShapes, 2, ct.Outputs{Scores: scores}), ct.InvalidArgument, "patchcore_model_predict_features", "block_10_expand_relu")
	// Saving a features-only model and loading it back needs no backbone.
	var n uint64
	expect(t, ct.ModelSaveToBuffer(m, nil, 0, &n), ct.BufferTooSmall, "patchcore_model_save_to_buffer")
	buf := make([]byte, n)
	expect(t, ct.ModelSaveToBuffer(m, buf, n, nil), ct.OK, "patchcore_model_save_to_buffer")
	var m2 ct.Handle
	expect(t, ct.ModelLoadFromBuffer(buf, n, nil, &m2), ct.OK, "patchcore_model_load_from_buffer")
	defer ct.ModelFree(m2)
	testShapes[6] = 14
	got := make([]float32, 2)
	expect(t, ct.ModelPredictFeatures(m2, test, testShapes, 2, ct.Outputs{Scores: got}), ct.OK, "patchcore_model_predict_features")
	if got[0] != scores[0] || got[1] != scores[1] {
		t.Fatalf("after a buffer round trip: %v, before %v", got, scores)
	}
}

func TestModelHandles(t *testing.T) {
	defer lockThread()()
	c := mnv2Config(t, false)
	defer ct.ConfigFree(c)
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	expect(t, ct.ModelFit(c), ct.InvalidHandle, "patchcore_model_fit", "is a config, not a model")
	expect(t, ct.ModelFree(m), ct.OK, "patchcore_model_free")
	for name, st := range map[string]int32{
		"patchcore_model_fit":      ct.ModelFit(m),
		"patchcore_model_map_size": ct.ModelMapSize(m, new(uint64)),
		"patchcore_model_save":     ct.ModelSave(m, ct.S("x")),
		"patchcore_model_free":     ct.ModelFree(m),
		"patchcore_model_segment":  ct.ModelSegment(m, []float32{1}, 1, 0, []byte{0}),
	} {
		if st != ct.InvalidHandle {
			t.Errorf("%s on a freed model: %s", name, ct.StatusString(st))
		}
	}
	expect(t, ct.ModelFree(0), ct.OK, "patchcore_model_free")
	expect(t, ct.ModelPredictFiles(0, pngs(t, "train_good_000.png"), 1, ct.Outputs{Scores: make([]float32, 1)}), ct.InvalidHandle, "patchcore_model_predict_files", "model handle is NULL")
}

// TestModelConcurrentPredict runs predictions through the ONNX backbone from 8 goroutines
// (each on its own OS thread) on one model: every result equals the sequential one.
func TestModelConcurrentPredict(t *testing.T) {
	defer lockThread()()
	c := mnv2Config(t, true)
	defer ct.ConfigFree(c)
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	defer ct.ModelFree(m)
	expect(t, ct.ModelAddFiles(m, pngs(t, "train_good_000.png", "train_good_001.png"), 2), ct.OK, "patchcore_model_add_files")
	expect(t, ct.ModelFit(m), ct.OK, "patchcore_model_fit")
	im := loadPixels(t, pngs(t, "test_good_001.png", "test_stain_000.png"), 3, false, 0)
	want := make([]float32, 2)
	wantMaps := make([]float32, 2*224*224)
	expect(t, ct.ModelPredict(m, im, ct.Outputs{Scores: want, Maps: wantMaps, Capacity: uint64(len(wantMaps))}), ct.OK, "patchcore_model_predict")
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			defer lockThread()()
			got, maps := make([]float32, 2), make([]float32, len(wantMaps))
			for it := range 2 {
				if st := ct.ModelPredict(m, im, ct.Outputs{Scores: got, Maps: maps, Capacity: uint64(len(maps))}); st != ct.OK {
					errs <- fmt.Sprintf("goroutine %d: %s: %s", g, ct.StatusString(st), ct.LastError())
					return
				}
				if d, _ := maxAbsDiff(got, want); d != 0 {
					errs <- fmt.Sprintf("goroutine %d, iteration %d: scores %v, sequential %v", g, it, got, want)
					return
				}
				if d, _ := maxAbsDiff(maps, wantMaps); d != 0 {
					errs <- fmt.Sprintf("goroutine %d, iteration %d: maps differ by %g", g, it, d)
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// TestDefaultThreads: patchcore_set_num_threads sets the thread count of models created
// afterwards whose NUM_THREADS is 0, and only of those.
func TestDefaultThreads(t *testing.T) {
	defer lockThread()()
	c := mnv2Config(t, false)
	defer ct.ConfigFree(c)
	expect(t, ct.SetNumThreads(3), ct.OK, "patchcore_set_num_threads")
	defer ct.SetNumThreads(0)
	var m ct.Handle
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	var v int64
	expect(t, ct.ModelGetInt(m, ct.ParamNumThreads, &v), ct.OK, "patchcore_model_get_int")
	expect(t, ct.ModelFree(m), ct.OK, "patchcore_model_free")
	if v != 3 {
		t.Fatalf("NUM_THREADS of a model created with the default 3: %d", v)
	}
	expect(t, ct.ConfigSetInt(c, ct.ParamNumThreads, 2), ct.OK, "patchcore_config_set_int")
	expect(t, ct.ModelCreate(c, &m), ct.OK, "patchcore_model_create")
	expect(t, ct.ModelGetInt(m, ct.ParamNumThreads, &v), ct.OK, "patchcore_model_get_int")
	expect(t, ct.ModelFree(m), ct.OK, "patchcore_model_free")
	if v != 2 {
		t.Fatalf("NUM_THREADS set to 2 in the config: %d", v)
	}
}
