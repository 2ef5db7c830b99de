package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

func decodeFile(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// The fixtures were written by Python 3.11 + numpy 1.24 (testdata/gen_fixtures.py).
func TestPickleNumpyFixtures(t *testing.T) {
	want := make([]float32, 12)
	for i := range want {
		want[i] = float32(i)*0.5 - 1
	}
	for _, name := range []string{"array_f32_p2.pkl", "array_f32_p3.pkl", "array_f32_p4.pkl", "array_f32_p5.pkl"} {
		a, ok := decodeFile(t, name).(*Array)
		if !ok {
			t.Fatalf("%s: not an array", name)
		}
		if a.Dtype != "<f4" || !reflect.DeepEqual(a.Shape, []int{3, 4}) || a.Fortran {
			t.Fatalf("%s: dtype %s shape %v fortran %v", name, a.Dtype, a.Shape, a.Fortran)
		}
		got, err := a.Float32()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v %v", name, got, err)
		}
	}
	a := decodeFile(t, "array_f64_be_p2.pkl").(*Array)
	got, err := a.Float32()
	if a.Dtype != ">f8" || !reflect.DeepEqual(a.Shape, []int{1, 3}) || err != nil || !reflect.DeepEqual(got, []float32{1.5, -2.25, 3}) {
		t.Fatalf("big-endian float64: %s %v %v %v", a.Dtype, a.Shape, got, err)
	}
	e := decodeFile(t, "array_empty_p5.pkl").(*Array)
	if got, err := e.Float32(); !reflect.DeepEqual(e.Shape, []int{0, 4}) || err != nil || len(got) != 0 {
		t.Fatalf("empty array: %v %v %v", e.Shape, got, err)
	}
}

func TestPickleParamsDict(t *testing.T) {
	d, ok := decodeFile(t, "patchcore_params.pkl").(Dict)
	if !ok {
		t.Fatal("not a dict")
	}
	want := Dict{
		{"backbone.name", "wideresnet50"},
		{"layers_to_extract_from", []any{"layer2", "layer3"}},
		{"input_shape", Tuple{int64(3), int64(224), int64(224)}},
		{"pretrain_embed_dimension", int64(1024)},
		{"target_embed_dimension", int64(1024)},
		{"patchsize", int64(3)},
		{"patchstride", int64(1)},
		{"anomaly_scorer_num_nn", int64(1)},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got %#v", d)
	}
	if v, ok := d.Get("patchsize"); !ok || v != int64(3) {
		t.Errorf("Get(patchsize) = %v, %v", v, ok)
	}
	if _, ok := d.Get("missing"); ok {
		t.Error("Get of a missing key succeeded")
	}
}

func TestPickleValueKinds(t *testing.T) {
	big70, _ := new(big.Int).SetString("1180591620717411303429", 10)
	negBig, _ := new(big.Int).SetString("-36893488147419103232", 10)
	for _, name := range []string{"values_p0.pkl", "values_p2.pkl", "values_p5.pkl"} {
		d := decodeFile(t, name).(Dict)
		get := func(k any) any {
			for _, it := range d {
				if it.Key == k {
					return it.Value
				}
			}
			t.Fatalf("%s: key %v missing", name, k)
			return nil
		}
		checks := map[string]any{
			"none": nil, "true": true, "false": false, "neg": int64(-123456), "float": -0.125,
			"text": "h\u00e9llo \u2603", "bytes": []byte{0, 1, 0xff},
			"np_f32": 0.25, "np_i64": int64(-7), "np_bool": true,
		}
		for k, w := range checks {
			if g := get(k); !reflect.DeepEqual(g, w) {
				t.Errorf("%s: %s = %#v, want %#v", name, k, g, w)
			}
		}
		if g := get("big").(*big.Int); g.Cmp(big70) != 0 {
			t.Errorf("%s: big = %v", name, g)
		}
		if g := get("negbig").(*big.Int); g.Cmp(negBig) != 0 {
			t.Errorf("%s: negbig = %v", name, g)
		}
		if g := get(int64(7)); g != "int key" {
			t.Errorf("%s: key 7 = %v", name, g)
		}
		nested := get("nested").([]any)
		want := []any{[]any{int64(1), int64(2)}, []any{int64(1), int64(2)}, Tuple{int64(1), "a", []any{nil}}}
		if !reflect.DeepEqual(nested, want) {
			t.Errorf("%s: nested = %#v", name, nested)
		}
		// The pickle shares one list object twice; the decoded value shares it too.
		if &nested[0].([]any)[0] != &nested[1].([]any)[0] {
			t.Errorf("%s: shared list decoded as two copies", name)
		}
	}
}

func TestPickleEncodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][]int{{}, {0}, {5}, {2, 3}, {0, 7}, {1, 2, 1, 3, 2}, {300, 2}, {70000, 1}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		var buf bytes.Buffer
		if err := EncodeFloat32Array(&buf, data, shape); err != nil {
			t.Fatal(err)
		}
		v, err := Decode(&buf)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		a := v.(*Array)
		got, err := a.Float32()
		if err != nil || a.Dtype != "<f4" || !reflect.DeepEqual(a.Shape, append([]int{}, shape...)) || !reflect.DeepEqual(got, data) {
			t.Fatalf("shape %v: decoded %s %v (%v)", shape, a.Dtype, a.Shape, err)
		}
	}
	if err := EncodeFloat32Array(&bytes.Buffer{}, []float32{1, 2, 3}, []int{2, 2}); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("mismatched shape: %v", err)
	}
	if err := EncodeFloat32Array(&bytes.Buffer{}, nil, []int{-1}); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Errorf("negative dimension: %v", err)
	}
	if err := EncodeFloat32Array(failingWriter{}, make([]float32, 5000), []int{5000}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error not reported: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// pythonWithNumpy returns a Python interpreter that can import numpy, or skips the test.
func pythonWithNumpy(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	t.Skip("no python3 with numpy on this machine")
	return ""
}

func TestPickleInteropWithNumpy(t *testing.T) {
	py := pythonWithNumpy(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))

	// Go writes, Python loads and re-emits the array as raw little-endian bytes.
	data := make([]float32, 6*5)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	var buf bytes.Buffer
	if err := EncodeFloat32Array(&buf, data, []int{6, 5}); err != nil {
		t.Fatal(err)
	}
	goPkl := filepath.Join(dir, "go.pkl")
	if err := os.WriteFile(goPkl, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import pickle, sys
import numpy as np
a = pickle.load(open(sys.argv[1], "rb"))
assert type(a) is np.ndarray and a.dtype == np.float32 and a.shape == (6, 5) and a.flags.c_contiguous, (type(a), a.dtype, a.shape)
open(sys.argv[2], "wb").write(a.astype("<f4").tobytes())
`
	raw := filepath.Join(dir, "raw.bin")
	if out, err := exec.Command(py, "-c", script, goPkl, raw).CombinedOutput(); err != nil {
		t.Fatalf("python could not load the Go pickle: %v\n%s", err, out)
	}
	rb, err := os.ReadFile(raw)
	if err != nil || len(rb) != 4*len(data) {
		t.Fatalf("raw bytes: %d, %v", len(rb), err)
	}
	for i, v := range data {
		if math.Float32bits(v) != binary.LittleEndian.Uint32(rb[4*i:]) {
			t.Fatalf("element %d differs after the Python round trip", i)
		}
	}

	// Python writes with every protocol, Go decodes.
	script = `
import pickle, sys
import numpy as np
rng = np.random.default_rng(0)
a = rng.standard_normal((7, 9)).astype(np.float32)
open(sys.argv[1] + "/raw.bin", "wb").write(a.tobytes())
for p in range(2, pickle.HIGHEST_PROTOCOL + 1):
    pickle.dump(a, open(sys.argv[1] + "/py%d.pkl" % p, "wb"), p)
pickle.dump({"k": [1, (2.5, "x")], "arr": a[:2]}, open(sys.argv[1] + "/dict.pkl", "wb"), pickle.HIGHEST_PROTOCOL)
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	rb, _ = os.ReadFile(raw)
	want := make([]float32, len(rb)/4)
	for i := range want {
		want[i] = math.Float32frombits(binary.LittleEndian.Uint32(rb[4*i:]))
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "py*.pkl"))
	if len(matches) < 4 {
		t.Fatalf("python wrote %d pickles", len(matches))
	}
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		v, err := Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(m), err)
		}
		got, err := v.(*Array).Float32()
		if err != nil || !reflect.DeepEqual(v.(*Array).Shape, []int{7, 9}) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: values differ (%v)", filepath.Base(m), err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "dict.pkl"))
	v, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	d := v.(Dict)
	if k, _ := d.Get("k"); !reflect.DeepEqual(k, []any{int64(1), Tuple{2.5, "x"}}) {
		t.Errorf("dict k = %#v", k)
	}
	arr, _ := d.Get("arr")
	if got, err := arr.(*Array).Float32(); err != nil || !reflect.DeepEqual(got, want[:18]) {
		t.Errorf("dict arr = %v (%v)", got, err)
	}
}

func TestPickleRefusesAndNeverPanics(t *testing.T) {
	bad := map[string]string{
		"os.system global":        "cos\nsystem\n(S'echo hi'\ntR.",
		"builtins.eval":           "\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.",
		"NEWOBJ":                  "\x80\x02cnumpy\nndarray\n)\x81.",
		"set":                     "\x80\x04\x8f.",
		"persistent id":           "\x80\x02X\x01\x00\x00\x00aQ.",
		"out-of-band buffer":      "\x80\x05\x97.",
		"protocol 6":              "\x80\x06N.",
		"empty":                   "",
		"no STOP":                 "\x80\x04N",
		"stack underflow":         "\x80\x04a.",
		"two values at STOP":      "NN.",
		"append to tuple":         ")Na.",
		"setitem on list":         "]NNs.",
		"odd dict":                "(Nd.",
		"undefined memo":          "\x80\x04h\x05.",
		"huge bytes length":       "\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x01",
		"negative BINSTRING":      "T\xff\xff\xff\xff.",
		"bad utf-8":               "X\x02\x00\x00\x00\xff\xfe.",
		"recursive list":          "]q\x00h\x00a.",
		"bare global":             "cnumpy\nndarray\n.",
		"unbuilt array":           "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R.",
		"object dtype":            "cnumpy\ndtype\nX\x02\x00\x00\x00O8\x85R.",
		"long text int":           "I" + strings.Repeat("9", 5000) + "\n.",
		"bad float":               "Fabc\n.",
		"REDUCE non-global":       "N)R.",
		"BUILD on a list":         "])b.",
		"unknown opcode":          "\xff.",
		"STRING (protocol 0 py2)": "S'abc'\n.",
	}
	for name, s := range bad {
		v, err := Decode(strings.NewReader(s))
		if !errors.Is(err, errs.ErrFormat) {
			t.Errorf("%s: got %#v, %v; want an errs.ErrFormat error", name, v, err)
		}
	}
	deep := strings.Repeat("]", 3000) + strings.Repeat("a", 2999) + "."
	if _, err := Decode(strings.NewReader(deep)); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("3000 nested lists: %v", err)
	}
	// Truncating any fixture anywhere gives an error, never a panic.
	matches, _ := filepath.Glob("testdata/*.pkl")
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		for n := 0; n < len(b); n++ {
			if _, err := Decode(bytes.NewReader(b[:n])); !errors.Is(err, errs.ErrFormat) {
				t.Fatalf("%s truncated to %d bytes: %v", m, n, err)
			}
		}
	}
}

func TestPickleWrongArrayContent(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeFloat32Array(&buf, []float32{1, 2, 3, 4}, []int{2, 2}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Claim a 3x2 shape for 4 values: the data length check must catch it.
	i := bytes.Index(b, []byte{'K', 2, 'K', 2, 0x86})
	if i < 0 {
		t.Fatal("shape tuple not found in the encoding")
	}
	c := append([]byte(nil), b...)
	c[i+1] = 3
	if _, err := Decode(bytes.NewReader(c)); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("shape/data mismatch: %v", err)
	}
	// An int64 array decodes, but is not float data.
	a := &Array{Dtype: "<i8", Shape: []int{1}, Data: make([]byte, 8)}
	if _, err := a.Float32(); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("Float32 of an int64 array: %v", err)
	}
	for _, bad := range []*Array{
		{Dtype: "", Shape: []int{1}, Data: make([]byte, 4)},
		{Dtype: "<f4", Shape: []int{2}, Data: make([]byte, 4)},
		{Dtype: "<f8", Shape: []int{-1}},
	} {
		if _, err := bad.Float32(); !errors.Is(err, errs.ErrFormat) {
			t.Errorf("Float32 of %+v: %v", bad, err)
		}
	}
	f := &Array{Dtype: "<f4", Shape: []int{2, 2}, Fortran: true, Data: make([]byte, 16)}
	if _, err := f.Float32(); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("Float32 of a Fortran array: %v", err)
	}
}
