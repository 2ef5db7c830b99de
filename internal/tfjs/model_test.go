package tfjs_test

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
	"github.com/libpatchcore/libpatchcore/internal/tfjs"
)

func TestExtractExportParsesMinifiedLiterals(t *testing.T) {
	src := bundle(`{a:1,"b c":[.5,-.25,1e-3,-2E+2,0],'q':'it\'s',t:!0,f:!1,n:null,u:void 0,` +
		`s:"x\"\\\/\n\u00e9\ud83d\ude00\x41",nested:{k:[[],{}]},trailing:[1,2,]}`)
	got, err := tfjs.ExtractExport(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": 1.0, "b c": []any{0.5, -0.25, 1e-3, -200.0, 0.0}, "q": "it's", "t": true, "f": false, "n": nil, "u": nil,
		"s": "x\"\\/\n\u00e9\U0001F600A", "nested": map[string]any{"k": []any{[]any{}, map[string]any{}}},
		"trailing": []any{1.0, 2.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	str, err := tfjs.ExtractExport([]byte(`h.exports="QUJD"`))
	if err != nil || str != "QUJD" {
		t.Errorf("string export: %v, %v", str, err)
	}
}

func TestExtractExportRejectsMalformed(t *testing.T) {
	for _, src := range []string{
		`module.exports=e()`,          // no literal at all
		`a.exports={x:1`,              // unterminated object
		`a.exports={x:"abc}`,          // unterminated string
		`a.exports={x:1 y:2}`,         // missing comma
		`a.exports=[1,,2]`,            // hole
		`a.exports={x:12abc}`,         // junk after a number
		`a.exports={x:-}`,             // sign without digits
		`a.exports={x:1e}`,            // exponent without digits
		`a.exports={x:!2}`,            // not a minified boolean
		`a.exports={x:foo}`,           // identifier value
		`a.exports={x:"\u12"}`,        // truncated escape
		`a.exports={"a` + "\n" + `"}`, // raw newline in a string
		`a.exports=` + strings.Repeat("[", 300) + strings.Repeat("]", 300),
	} {
		if _, err := tfjs.ExtractExport([]byte(src)); !errors.Is(err, errs.ErrFormat) {
			t.Errorf("%.60s: error %v, want ErrFormat", src, err)
		}
	}
}

// TestParseDequantises checks float32, uint8 and uint16 weights read from two shards
// of one group, against values computed by hand.
func TestParseDequantises(t *testing.T) {
	shard1 := []byte{0, 1, 255}                                               // w8: uint8
	shard1 = binary.LittleEndian.AppendUint16(shard1, 0)                      // w16[0]
	shard2 := binary.LittleEndian.AppendUint16(nil, 40000)                    // w16[1]
	shard2 = binary.LittleEndian.AppendUint32(shard2, math.Float32bits(-1.5)) // wf
	model := map[string]any{
		"modelTopology": map[string]any{"model_config": map[string]any{"class_name": "Model", "config": map[string]any{
			"name": "m",
			"layers": []any{map[string]any{"name": "input_1", "class_name": "InputLayer",
				"config": map[string]any{"batch_input_shape": []any{nil, 2.0, 2.0, 1.0}}, "inbound_nodes": []any{}}},
		}}},
		"weightsManifest": []any{map[string]any{
			"paths": []any{"s1", "s2"},
			"weights": []any{
				map[string]any{"name": "w8", "shape": []any{3.0}, "dtype": "float32",
					"quantization": map[string]any{"dtype": "uint8", "min": -1.0, "scale": 0.5}},
				map[string]any{"name": "w16", "shape": []any{1.0, 2.0}, "dtype": "float32",
					"quantization": map[string]any{"dtype": "uint16", "min": 2.0, "scale": 0.25}},
				map[string]any{"name": "wf", "shape": []any{}, "dtype": "float32"},
			},
		}},
	}
	shards := map[string][]byte{"s1": shard1, "s2": shard2}
	m, err := tfjs.Parse(model, func(p string) ([]byte, error) { return shards[p], nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"w8": {-1, -0.5, 126.5}, "w16": {2, 10002}, "wf": {-1.5}}
	for name, w := range want {
		if got := m.Weights[name]; got == nil || !reflect.DeepEqual(got.Data, w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	if !reflect.DeepEqual(m.Weights["w16"].Shape, []int{1, 2}) {
		t.Errorf("w16 shape %v", m.Weights["w16"].Shape)
	}

	// Rounding: each product is rounded to float32 before the offset is added.
	model["weightsManifest"] = []any{map[string]any{"paths": []any{"s"}, "weights": []any{
		map[string]any{"name": "r", "shape": []any{1.0}, "dtype": "float32",
			"quantization": map[string]any{"dtype": "uint8", "min": 0.1, "scale": 0.1}},
	}}}
	m, err = tfjs.Parse(model, func(string) ([]byte, error) { return []byte{3}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Weights["r"].Data[0], float32(float32(3)*float32(0.1))+float32(0.1); got != want {
		t.Errorf("dequantised %v, want %v", got, want)
	}
	if got := float64(m.Weights["r"].Data[0]); math.Abs(got-0.4) > 1e-7 {
		t.Errorf("dequantised %v, want 0.4", got)
	}
}

func TestParseRejectsBadManifests(t *testing.T) {
	base := func(weights []any, paths ...any) map[string]any {
		return map[string]any{
			"modelTopology": map[string]any{"model_config": map[string]any{"class_name": "Model", "config": map[string]any{
				"layers": []any{map[string]any{"name": "input_1", "class_name": "InputLayer", "config": map[string]any{}, "inbound_nodes": []any{}}},
			}}},
			"weightsManifest": []any{map[string]any{"paths": paths, "weights": weights}},
		}
	}
	w := func(dtype string, q map[string]any, shape ...any) map[string]any {
		e := map[string]any{"name": "w", "shape": shape, "dtype": dtype}
		if q != nil {
			e["quantization"] = q
		}
		return e
	}
	u8 := map[string]any{"dtype": "uint8", "min": 0.0, "scale": 1.0}
	cases := []struct {
		name  string
		model any
		shard []byte
		kind  error
	}{
		{"not an object", []any{}, nil, errs.ErrFormat},
		{"sequential model", map[string]any{"modelTopology": map[string]any{"model_config": map[string]any{"class_name": "Sequential"}}}, nil, errs.ErrUnsupported},
		{"short shard", base([]any{w("float32", nil, 2.0)}, "s"), make([]byte, 7), errs.ErrFormat},
		{"extra bytes", base([]any{w("float32", u8, 2.0)}, "s"), make([]byte, 3), errs.ErrFormat},
		{"int32 weight", base([]any{w("int32", nil, 1.0)}, "s"), make([]byte, 4), errs.ErrUnsupported},
		{"float16 quantization", base([]any{w("float32", map[string]any{"dtype": "float16"}, 1.0)}, "s"), make([]byte, 2), errs.ErrFormat},
		{"int8 quantization", base([]any{w("float32", map[string]any{"dtype": "int8", "min": 0.0, "scale": 1.0}, 1.0)}, "s"), make([]byte, 1), errs.ErrUnsupported},
		{"negative dim", base([]any{w("float32", nil, -1.0)}, "s"), nil, errs.ErrFormat},
		{"fractional dim", base([]any{w("float32", nil, 1.5)}, "s"), nil, errs.ErrFormat},
		{"huge shape", base([]any{w("float32", u8, 1e9, 1e9)}, "s"), nil, errs.ErrFormat},
		{"no paths", base([]any{w("float32", nil, 1.0)}), nil, errs.ErrFormat},
	}
	for _, tc := range cases {
		_, err := tfjs.Parse(tc.model, func(string) ([]byte, error) { return tc.shard, nil })
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.kind)
		}
	}
	// Topology errors.
	layer := func(name, in string) map[string]any {
		l := map[string]any{"name": name, "class_name": "ReLU", "config": map[string]any{}, "inbound_nodes": []any{}}
		if in != "" {
			l["inbound_nodes"] = []any{[]any{[]any{in, 0.0, 0.0, map[string]any{}}}}
		}
		return l
	}
	for name, layers := range map[string][]any{
		"forward reference": {layer("a", "b"), layer("b", "")},
		"duplicate name":    {layer("a", ""), layer("a", "")},
		"no layers":         {},
	} {
		m := base(nil, "s")
		m["modelTopology"].(map[string]any)["model_config"].(map[string]any)["config"].(map[string]any)["layers"] = layers
		if _, err := tfjs.Parse(m, func(string) ([]byte, error) { return nil, nil }); !errors.Is(err, errs.ErrFormat) {
			t.Errorf("%s: error %v, want ErrFormat", name, err)
		}
	}
}

func TestDecodeShardModule(t *testing.T) {
	payload := []byte{0, 1, 2, 250, 255}
	got, err := tfjs.DecodeShardModule(bundle(`"` + base64.StdEncoding.EncodeToString(payload) + `"`))
	if err != nil || !reflect.DeepEqual(got, payload) {
		t.Errorf("DecodeShardModule = %v, %v; want %v", got, err, payload)
	}
	for _, bad := range []string{`{a:1}`, `"not base64!"`} {
		if _, err := tfjs.DecodeShardModule(bundle(bad)); !errors.Is(err, errs.ErrFormat) {
			t.Errorf("%s: error %v, want ErrFormat", bad, err)
		}
	}
}

func TestReadNPMPackage(t *testing.T) {
	f := buildFixture(5)
	modelJS, shardJS := f.bundledFiles(t)
	dir := t.TempDir()
	write := func(name string, files map[string][]byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, npmTarball(t, files), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.tgz", map[string][]byte{
		"dist/models/fixture/model.min.js":            modelJS,
		"dist/models/fixture/group1-shard1of1.min.js": shardJS,
		"dist/models/other/model.min.js":              []byte("garbage"),
		"package.json":                                []byte(`{"name":"x"}`),
	})
	m, sum, err := tfjs.ReadNPMPackage(good, "dist/models/fixture")
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 64 {
		t.Errorf("digest %q", sum)
	}
	if len(m.Layers) != len(f.layers) || !reflect.DeepEqual(m.Weights["dw/bias"].Data, f.weights["dw/bias"]) {
		t.Errorf("package model differs from the fixture")
	}

	missingShard := write("noshard.tgz", map[string][]byte{"dist/models/fixture/model.min.js": modelJS})
	if _, _, err := tfjs.ReadNPMPackage(missingShard, "dist/models/fixture"); !errors.Is(err, errs.ErrFormat) || !strings.Contains(err.Error(), "group1-shard1of1.min.js") {
		t.Errorf("missing shard: %v", err)
	}
	if _, _, err := tfjs.ReadNPMPackage(good, "dist/models/none"); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("missing model dir: %v", err)
	}
	notGzip := filepath.Join(dir, "plain.tgz")
	if err := os.WriteFile(notGzip, []byte("plain text"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tfjs.ReadNPMPackage(notGzip, "dist/models/fixture"); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("not gzip: %v", err)
	}
	full, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.tgz")
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tfjs.ReadNPMPackage(truncated, "dist/models/fixture"); !errors.Is(err, errs.ErrFormat) {
		t.Errorf("truncated archive: %v", err)
	}
	if _, _, err := tfjs.ReadNPMPackage(filepath.Join(dir, "absent.tgz"), "x"); !errors.Is(err, errs.ErrIO) {
		t.Errorf("absent file: %v", err)
	}
}
