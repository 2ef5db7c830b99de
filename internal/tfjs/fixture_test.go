package tfjs_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// kerasLayer builds a layer entry of a Keras functional model config.
func kerasLayer(name, class string, config map[string]any, inbound ...string) map[string]any {
	config["name"] = name
	var nodes []any
	if len(inbound) > 0 {
		var conns []any
		for _, in := range inbound {
			conns = append(conns, []any{in, 0, 0, map[string]any{}})
		}
		nodes = []any{conns}
	} else {
		nodes = []any{}
	}
	return map[string]any{"name": name, "class_name": class, "config": config, "inbound_nodes": nodes}
}

// fixtureModel is a small synthetic Keras model in TF.js form: its layers, and its float32
// weights in Keras layout, stored unquantised in one shard.
type fixtureModel struct {
	layers  []map[string]any
	names   []string
	weights map[string][]float32
	shapes  map[string][]int
}

func newFixture() *fixtureModel {
	return &fixtureModel{weights: map[string][]float32{}, shapes: map[string][]int{}}
}

func (f *fixtureModel) add(l map[string]any) { f.layers = append(f.layers, l) }

// weight stores a weight with values drawn uniformly from [lo, hi).
func (f *fixtureModel) weight(rng *rand.Rand, name string, lo, hi float64, shape ...int) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	f.names = append(f.names, name)
	f.weights[name] = v
	f.shapes[name] = shape
}

// modelJSON returns the model.json object and the binary shard.
func (f *fixtureModel) modelJSON() (map[string]any, []byte) {
	var specs []any
	var shard []byte
	for _, name := range f.names {
		specs = append(specs, map[string]any{"name": name, "shape": f.shapes[name], "dtype": "float32"})
		for _, v := range f.weights[name] {
			shard = binary.LittleEndian.AppendUint32(shard, math.Float32bits(v))
		}
	}
	layers := make([]any, len(f.layers))
	for i, l := range f.layers {
		layers[i] = l
	}
	model := map[string]any{
		"modelTopology": map[string]any{
			"keras_version": "2.2.4",
			"model_config": map[string]any{
				"class_name": "Model",
				"config":     map[string]any{"name": "fixture", "layers": layers},
			},
		},
		"weightsManifest": []any{map[string]any{"paths": []any{"group1-shard1of1"}, "weights": specs}},
	}
	return model, shard
}

// bundle wraps a literal the way nsfwjs's browserify bundles do, including the
// `module.exports=e()` of the UMD header that ExtractExport must skip.
func bundle(literal string) []byte {
	return []byte(`!function(e){if("object"==typeof exports&&"undefined"!=typeof module)module.exports=e();else{("undefined"!=typeof window?window:this).model=e()}}(function(){return function e(a,n,i){return a}({1:[function(e,a,n){a.exports=` +
		literal + `},{}]},{},[1])(1)});`)
}

// npmTarball builds an npm-pack-style .tgz holding the given files under package/.
func npmTarball(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bundledFiles returns model.min.js and group1-shard1of1.min.js for the fixture.
func (f *fixtureModel) bundledFiles(t *testing.T) (modelJS, shardJS []byte) {
	t.Helper()
	model, shard := f.modelJSON()
	js, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	return bundle(string(js)), bundle(`"` + base64.StdEncoding.EncodeToString(shard) + `"`)
}
