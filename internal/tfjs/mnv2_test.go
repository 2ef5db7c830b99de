package tfjs_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/libpatchcore/libpatchcore/internal/golden"
	"github.com/libpatchcore/libpatchcore/internal/tfjs"
)

// nsfwjsSHA256 pins the npm tarball of nsfwjs 4.3.0 (also pinned in scripts/make-backbone.sh).
const nsfwjsSHA256 = "4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f"

var defaultLayers = []string{"block_6_expand_relu", "block_10_expand_relu"}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// nsfwjsPackage returns the nsfwjs 4.3.0 tarball: $PATCHCORE_NSFWJS_TGZ, the copy that
// scripts/make-backbone.sh keeps in .deps/npm, or a fresh `npm pack`. The test is
// skipped only when none of these is available.
func nsfwjsPackage(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PATCHCORE_NSFWJS_TGZ")
	if path == "" {
		path = filepath.Join(repoRoot(), ".deps", "npm", "nsfwjs-4.3.0.tgz")
	}
	if _, err := os.Stat(path); err != nil {
		npm, lookErr := exec.LookPath("npm")
		if lookErr != nil {
			t.Skipf("nsfwjs tarball not found at %s and npm is not installed (run scripts/make-backbone.sh)", path)
		}
		dir := t.TempDir()
		cmd := exec.Command(npm, "pack", "nsfwjs@4.3.0", "--pack-destination", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm pack nsfwjs@4.3.0: %v\n%s", err, out)
		}
		path = filepath.Join(dir, "nsfwjs-4.3.0.tgz")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != nsfwjsSHA256 {
		t.Fatalf("%s has sha256 %s, want %s", path, got, nsfwjsSHA256)
	}
	return path
}

var (
	ortOnce sync.Once
	ortErr  error
)

// initORT loads ONNX Runtime from $PATCHCORE_ORT_LIBRARY or .deps/lib (installed by
// scripts/install-deps.sh), skipping the test when neither exists.
func initORT(t *testing.T) {
	t.Helper()
	lib := os.Getenv("PATCHCORE_ORT_LIBRARY")
	if lib == "" {
		lib = filepath.Join(repoRoot(), ".deps", "lib", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("ONNX Runtime library %s not found (run scripts/install-deps.sh or set PATCHCORE_ORT_LIBRARY)", lib)
	}
	ortOnce.Do(func() {
		ort.SetSharedLibraryPath(lib)
		ortErr = ort.InitializeEnvironment()
	})
	if ortErr != nil {
		t.Fatalf("initialise ONNX Runtime from %s: %v", lib, ortErr)
	}
}

// runONNX evaluates a model on one float32 NCHW input and returns the named outputs.
func runONNX(t *testing.T, model []byte, input []float32, inShape []int64, outputs []string, outShapes [][]int64) [][]float32 {
	t.Helper()
	in, err := ort.NewTensor(ort.NewShape(inShape...), input)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	var outVals []ort.Value
	var outTensors []*ort.Tensor[float32]
	for _, s := range outShapes {
		o, err := ort.NewEmptyTensor[float32](ort.NewShape(s...))
		if err != nil {
			t.Fatal(err)
		}
		defer o.Destroy()
		outVals = append(outVals, o)
		outTensors = append(outTensors, o)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(2); err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewAdvancedSessionWithONNXData(model, []string{"input"}, outputs, []ort.Value{in}, outVals, opts)
	if err != nil {
		t.Fatalf("create ONNX Runtime session: %v", err)
	}
	defer sess.Destroy()
	if err := sess.Run(); err != nil {
		t.Fatalf("run: %v", err)
	}
	res := make([][]float32, len(outTensors))
	for i, o := range outTensors {
		res[i] = append([]float32(nil), o.GetData()...)
	}
	return res
}

// relErr is max|got - want| / max|want|.
func relErr(got, want []float32) float64 {
	var maxDiff, maxAbs float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
	}
	return maxDiff / maxAbs
}

// TestMobileNetV2MatchesGolden converts nsfwjs's MobileNetV2 up to block_10 and checks
// the feature maps that ONNX Runtime computes from it against the reference run's
// golden block_6_expand_relu and block_10_expand_relu maps, and against the golden
// ONNX graph that was rebuilt from the same package independently (in PyTorch).
func TestMobileNetV2MatchesGolden(t *testing.T) {
	pkg := nsfwjsPackage(t)
	m, sum, err := tfjs.ReadNPMPackage(pkg, "dist/models/mobilenet_v2")
	if err != nil {
		t.Fatal(err)
	}
	if sum != nsfwjsSHA256 {
		t.Fatalf("ReadNPMPackage digest %s, want %s", sum, nsfwjsSHA256)
	}
	conv, err := tfjs.Convert(m, tfjs.ConvertOptions{UpTo: "block_10", Outputs: defaultLayers})
	if err != nil {
		t.Fatal(err)
	}
	model, err := conv.Model.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := conv.Input.Shape; len(got) != 3 || got[0] != 3 || got[1] != 224 || got[2] != 224 {
		t.Fatalf("input shape %v, want [3 224 224]", got)
	}
	// Every Keras layer up to block_10 is a named tensor of the graph, except the input
	// (the graph input "input") and the convolutions folded into their BN layers.
	tensors := map[string]bool{}
	for _, ti := range conv.Tensors {
		tensors[ti.Name] = true
	}
	nodeOutputs := map[string]bool{}
	for _, n := range conv.Model.Graph.Nodes {
		for _, o := range n.Outputs {
			nodeOutputs[o] = true
		}
	}
	kept := 0
	for i, l := range m.Layers {
		if l.Name == "block_11_expand" {
			break
		}
		kept++
		folded := (l.ClassName == "Conv2D" || l.ClassName == "DepthwiseConv2D") && m.Layers[i+1].ClassName == "BatchNormalization"
		if l.ClassName == "InputLayer" || folded {
			if tensors[l.Name] {
				t.Errorf("%s (%s) should not be a graph tensor", l.Name, l.ClassName)
			}
			continue
		}
		if !tensors[l.Name] || !nodeOutputs[l.Name] {
			t.Errorf("layer %s (%s) is not a named tensor of the graph", l.Name, l.ClassName)
		}
	}
	if last := m.Layers[kept-1].Name; last != "block_10_project_BN" {
		t.Errorf("last layer up to block_10 is %s", last)
	}

	input := golden.Load(t, "mnv2/input_onnx_pm1.npy")
	initORT(t)
	batch := int64(input.Shape[0])
	if batch != 4 {
		t.Fatalf("golden input has %d images, want 4", batch)
	}
	outShapes := [][]int64{{batch, 192, 28, 28}, {batch, 384, 14, 14}}
	inShape := []int64{batch, 3, 224, 224}
	ours := runONNX(t, model, input.F32, inShape, defaultLayers, outShapes)

	for li, layer := range []string{"block6", "block10"} {
		per := len(ours[li]) / int(batch)
		for half, split := range []string{"train", "test"} {
			want := golden.Load(t, "mnv2/"+layer+"_"+split+".npy")
			got := ours[li][2*half*per : 2*(half+1)*per]
			if len(want.F32) != len(got) {
				t.Fatalf("%s_%s: golden has %d values, graph gave %d", layer, split, len(want.F32), len(got))
			}
			e := relErr(got, want.F32)
			t.Logf("%s_%s: relative error %.3g", layer, split, e)
			if e > 1e-4 {
				t.Errorf("%s_%s: relative error %.3g exceeds 1e-4", layer, split, e)
			}
		}
	}

	goldenONNX, err := os.ReadFile(golden.Path(t, "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	theirs := runONNX(t, goldenONNX, input.F32, inShape, defaultLayers, outShapes)
	for i, layer := range defaultLayers {
		e := relErr(ours[i], theirs[i])
		t.Logf("%s vs golden ONNX: relative error %.3g", layer, e)
		if e > 1e-5 {
			t.Errorf("%s: relative error %.3g against the golden ONNX graph exceeds 1e-5", layer, e)
		}
	}
}
