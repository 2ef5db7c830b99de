package ort

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/golden"
	"github.com/libpatchcore/libpatchcore/internal/onnxbuild"
)

// helperEnv makes the test binary act as a child process that loads the runtime and
// prints where from (see TestHelperProcess).
const helperEnv = "PATCHCORE_ORT_TEST_HELPER"

// repoLib is the runtime installed by scripts/install-deps.sh.
func repoLib() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".deps", "lib", Soname)
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" && os.Getenv(EnvLibrary) == "" {
		if _, err := os.Stat(repoLib()); err == nil {
			os.Setenv(EnvLibrary, repoLib())
		}
	}
	os.Exit(m.Run())
}

// TestHelperProcess is the child side of TestORTLibraryLookup.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as a child process")
	}
	if p := os.Getenv(helperEnv + "_EXPLICIT"); p != "" {
		if err := SetLibraryPath(p); err != nil {
			fmt.Println("ERR", err)
			os.Exit(0)
		}
	}
	info, err := Init()
	if err != nil {
		fmt.Println("ERR", errors.Is(err, ErrUnavailable), err)
	} else {
		fmt.Println("LOADED", info.Path)
	}
	os.Exit(0)
}

func needRuntime(t *testing.T) Info {
	t.Helper()
	info, err := Init()
	if err != nil {
		t.Skipf("ONNX Runtime not available: %v", err)
	}
	return info
}

func mnv2(t *testing.T) (string, []byte) {
	t.Helper()
	p := golden.Path(t, "mnv2/nsfwjs_mnv2_block6er_block10er_pm1.onnx")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestORTParseDevice(t *testing.T) {
	good := map[string]Device{"": {}, "cpu": {}, "CPU": {}, "cuda": {CUDA: true}, "cuda:0": {CUDA: true}, " cuda:3 ": {CUDA: true, ID: 3}}
	for s, want := range good {
		got, err := ParseDevice(s)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", "mps"} {
		if _, err := ParseDevice(s); !errors.Is(err, ErrArgument) || !strings.Contains(err.Error(), s) {
			t.Errorf("ParseDevice(%q): %v", s, err)
		}
	}
	if (Device{CUDA: true, ID: 2}).String() != "cuda:2" || (Device{}).String() != "cpu" {
		t.Error("Device.String")
	}
}

func TestORTCandidates(t *testing.T) {
	t.Setenv(EnvLibrary, "")
	c := candidates("")
	exe, _ := os.Executable()
	if len(c) != 2 || c[0].path != filepath.Join(filepath.Dir(exe), Soname) || c[1].path != Soname {
		t.Errorf("automatic candidates %v, want next to %s then the soname", c, exe)
	}
	t.Setenv(EnvLibrary, "/opt/ort/lib.so")
	if c := candidates(""); len(c) != 1 || c[0].path != "/opt/ort/lib.so" {
		t.Errorf("env candidates %v", c)
	}
	if c := candidates("/x/y.so"); len(c) != 1 || c[0].path != "/x/y.so" {
		t.Errorf("explicit candidates %v", c)
	}
}

// runChild runs the test binary exe as a helper child with the given extra environment.
func runChild(t *testing.T, exe string, env ...string) string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
	var keep []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvLibrary+"=") && !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			keep = append(keep, kv)
		}
	}
	cmd.Env = append(append(keep, helperEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return string(out)
}

// TestORTLibraryLookup loads the runtime in child processes, each with a fresh state.
func TestORTLibraryLookup(t *testing.T) {
	lib := repoLib()
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("runtime not installed at %s", lib)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bogus := filepath.Join(t.TempDir(), "nothing-here.so")

	// An explicit path that does not load is the only place tried.
	out := runChild(t, self, EnvLibrary+"="+bogus)
	t.Log(out)
	if !strings.Contains(out, "ERR true") || !strings.Contains(out, bogus) || !strings.Contains(out, "$"+EnvLibrary) ||
		strings.Contains(out, "system loader") {
		t.Errorf("bogus env path: %s", out)
	}
	out = runChild(t, self, EnvLibrary+"="+lib, helperEnv+"_EXPLICIT="+bogus)
	if !strings.Contains(out, "ERR true") || !strings.Contains(out, "SetLibraryPath") || strings.Contains(out, lib) {
		t.Errorf("bogus explicit path (must win over the env): %s", out)
	}
	// A file that is not ONNX Runtime is rejected by name.
	out = runChild(t, self, EnvLibrary+"="+self)
	if !strings.Contains(out, "ERR true") {
		t.Errorf("non-library file: %s", out)
	}
	// Explicit path and env both work.
	if out := runChild(t, self, helperEnv+"_EXPLICIT="+lib); !strings.Contains(out, "LOADED") {
		t.Errorf("explicit path: %s", out)
	}

	// Automatic lookup: a copy of this test binary next to the library loads it from there;
	// alone in a directory it names both places it tried.
	dir := t.TempDir()
	exe := filepath.Join(dir, "ort.test")
	copyFile(t, self, exe)
	out = runChild(t, exe)
	if !strings.Contains(out, "ERR true") || !strings.Contains(out, filepath.Join(dir, Soname)) || !strings.Contains(out, "system loader") {
		if strings.Contains(out, "LOADED") {
			t.Logf("the system loader finds %s on this machine: %s", Soname, out)
		} else {
			t.Errorf("automatic lookup without a library: %s", out)
		}
	}
	if err := os.Symlink(lib, filepath.Join(dir, Soname)); err != nil {
		t.Fatal(err)
	}
	out = runChild(t, exe)
	t.Log(out)
	if want := "LOADED " + filepath.Join(dir, Soname); !strings.Contains(out, want) {
		t.Errorf("library next to the executable: got %q, want %q", out, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestORTInitInfo(t *testing.T) {
	info := needRuntime(t)
	if info.Version == "" || !info.HasProvider("CPUExecutionProvider") {
		t.Errorf("info %+v", info)
	}
	if err := SetLibraryPath(info.Path); err != nil {
		t.Errorf("SetLibraryPath(loaded path) after init: %v", err)
	}
	other := filepath.Join(t.TempDir(), Soname)
	if err := SetLibraryPath(other); !errors.Is(err, ErrAlreadyLoaded) || !strings.Contains(err.Error(), other) {
		t.Errorf("SetLibraryPath(other) after init: %v", err)
	}
	if err := SetLibraryPath(""); !errors.Is(err, ErrArgument) {
		t.Errorf("SetLibraryPath(\"\"): %v", err)
	}
	// Concurrent Init calls agree.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := Init(); err != nil || got.Path != info.Path {
				t.Errorf("concurrent Init: %v %v", got, err)
			}
		}()
	}
	wg.Wait()
}

var mnv2Outputs = []string{"block_6_expand_relu", "block_10_expand_relu"}

func TestORTSessionFileBytesAndConcurrency(t *testing.T) {
	needRuntime(t)
	path, model := mnv2(t)
	fromBytes, err := NewSession(model, []string{"input"}, mnv2Outputs, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Close()
	fromFile, err := NewSessionFromFile(path, []string{"input"}, mnv2Outputs, Options{Threads: 1, Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Close()
	x := make([]float32, 2*3*224*224)
	for i := range x {
		x[i] = float32(i%511)/255 - 1
	}
	in := []Tensor{{Shape: []int64{2, 3, 224, 224}, Data: x}}
	want, err := fromBytes.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want[0].Shape, []int64{2, 192, 28, 28}) || !slices.Equal(want[1].Shape, []int64{2, 384, 14, 14}) {
		t.Fatalf("output shapes %v %v", want[0].Shape, want[1].Shape)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(s *Session) {
			defer wg.Done()
			got, err := s.Run(in)
			if err != nil {
				t.Error(err)
				return
			}
			for k := range got {
				if !slices.Equal(got[k].Data, want[k].Data) {
					t.Errorf("output %d differs between runs", k)
				}
			}
		}([]*Session{fromBytes, fromFile}[g%2])
	}
	wg.Wait()
}

func TestORTSessionErrors(t *testing.T) {
	info := needRuntime(t)
	_, model := mnv2(t)
	in, out := []string{"input"}, mnv2Outputs
	if _, err := NewSession(model, in, out, Options{Device: "cuda"}); !errors.Is(err, ErrUnavailable) ||
		!strings.Contains(err.Error(), "CUDA") || !strings.Contains(err.Error(), info.Path) {
		t.Errorf("cuda on a runtime without usable CUDA: %v", err)
	} else {
		t.Log(err)
	}
	if _, err := NewSession(model, in, out, Options{Device: "tpu"}); !errors.Is(err, ErrArgument) {
		t.Errorf("bad device: %v", err)
	}
	if _, err := NewSession(model, in, out, Options{Threads: -1}); !errors.Is(err, ErrArgument) {
		t.Errorf("negative threads: %v", err)
	}
	if _, err := NewSession(nil, in, out, Options{}); !errors.Is(err, ErrArgument) {
		t.Errorf("empty model: %v", err)
	}
	if _, err := NewSession(model[:len(model)/2], in, out, Options{}); !errors.Is(err, ErrRuntime) {
		t.Errorf("truncated model: %v", err)
	}
	// ONNX Runtime checks output names when it runs.
	if s, err := NewSession(model, in, []string{"nope"}, Options{Threads: 1}); err != nil {
		t.Errorf("unknown output at creation: %v", err)
	} else {
		_, err := s.Run([]Tensor{{Shape: []int64{1, 3, 224, 224}, Data: make([]float32, 3*224*224)}})
		if !errors.Is(err, ErrRuntime) || !strings.Contains(err.Error(), "nope") {
			t.Errorf("unknown output at run: %v", err)
		}
		s.Close()
	}
	if _, err := NewSessionFromFile(filepath.Join(t.TempDir(), "none.onnx"), in, out, Options{}); !errors.Is(err, ErrArgument) {
		t.Errorf("missing file: %v", err)
	}
	s, err := NewSession(model, in, out, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*224*224)
	bad := map[string][]Tensor{
		"two inputs":    {{Shape: []int64{1, 3, 224, 224}, Data: x}, {Shape: []int64{1, 3, 224, 224}, Data: x}},
		"size mismatch": {{Shape: []int64{2, 3, 224, 224}, Data: x}},
		"zero dim":      {{Shape: []int64{0, 3, 224, 224}, Data: x}},
		"huge dims":     {{Shape: []int64{1 << 40, 1 << 40, 1 << 40}, Data: x}},
		"no shape":      {{Data: x}},
	}
	for name, inputs := range bad {
		if _, err := s.Run(inputs); !errors.Is(err, ErrArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.Run([]Tensor{{Shape: []int64{1, 224, 224, 3}, Data: x}}); !errors.Is(err, ErrRuntime) {
		t.Errorf("wrong layout: %v", err)
	}
	s.Close()
	s.Close()
	if _, err := s.Run([]Tensor{{Shape: []int64{1, 3, 224, 224}, Data: x}}); !errors.Is(err, ErrClosed) {
		t.Errorf("run after close: %v", err)
	}
}

// An output of another element type than float32 is refused with ErrArgument; a float16
// one, which onnxruntime_go cannot convert, used to crash the process while the output
// slots were released.
func TestORTNonFloatOutputs(t *testing.T) {
	needRuntime(t)
	dims := []onnxbuild.Dim{{Value: 1}, {Value: 3}}
	for _, c := range []struct {
		name string
		elem int32
	}{{"float16", onnxbuild.Float16}, {"int64", onnxbuild.Int64}} {
		m := onnxbuild.Model{Opset: 13, Graph: onnxbuild.Graph{
			Name:    "cast",
			Nodes:   []onnxbuild.Node{{Name: "cast", OpType: "Cast", Inputs: []string{"x"}, Outputs: []string{"y"}, Attrs: []onnxbuild.Attr{onnxbuild.IntAttr("to", int64(c.elem))}}},
			Inputs:  []onnxbuild.ValueInfo{{Name: "x", ElemType: onnxbuild.Float, Dims: dims}},
			Outputs: []onnxbuild.ValueInfo{{Name: "y", ElemType: c.elem, Dims: dims}},
		}}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSession(b, []string{"x"}, []string{"y"}, Options{Threads: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = s.Run([]Tensor{{Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}})
		if !errors.Is(err, ErrArgument) || !strings.Contains(err.Error(), `"y"`) {
			t.Errorf("%s output: got %v, want ErrArgument naming the output", c.name, err)
		} else {
			t.Log(err)
		}
		s.Close()
	}
}
