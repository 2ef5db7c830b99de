package core

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libpatchcore/libpatchcore/internal/modelfile"
)

// editManifest decodes a model file, lets edit change its manifest (as a generic JSON
// object) and re-encodes it with valid checksums: a well-formed file with hostile content.
func editManifest(t *testing.T, b []byte, edit func(man map[string]any, sections []modelfile.Section) []modelfile.Section) []byte {
	t.Helper()
	_, sections, err := modelfile.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var man map[string]any
	if err := json.Unmarshal(sections[0].Payload, &man); err != nil {
		t.Fatal(err)
	}
	sections = edit(man, sections)
	js, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	sections[0] = modelfile.Section{Tag: tagManifest, Payload: js}
	out, err := modelfile.Encode(sections)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Model files whose content is hostile but whose checksums are valid: every one is
// refused with ErrFormat, quickly and without allocating what the manifest claims.
func TestModelFileHostileManifest(t *testing.T) {
	good := marshal(t, tinyModel(t))
	withBank := func(rows, dim float64, bank []byte) func(map[string]any, []modelfile.Section) []modelfile.Section {
		return func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["bank_rows"], man["target_embed_dimension"] = rows, dim
			s[1].Payload = bank
			return s
		}
	}
	cases := map[string]func(map[string]any, []modelfile.Section) []modelfile.Section{
		// 4 * 2^40 * 2^22 = 2^64 wraps to 0 in uint64: an empty bank section "matched".
		"bank size wraps to zero": withBank(1<<40, 1<<22, nil),
		"bank size wraps to 4":    withBank(1<<62+1, 1, []byte{0, 0, 0, 0}),
		"bank 2^31 rows":          withBank(1<<31, 16, make([]byte, 64)),
		"bank not a multiple":     withBank(2, 16, make([]byte, 4*31)),
		"negative bank rows":      withBank(-1, 16, nil),
		"NaN in the bank": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			s[1].Payload = append([]byte(nil), s[1].Payload...)
			copy(s[1].Payload[40:], []byte{0, 0, 0xc0, 0x7f})
			return s
		},
		"k beyond the bank": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["num_nn"] = 33.0
			return s
		},
		"grid of zero": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["grid"] = []any{0.0, 4.0}
			return s
		},
		"layer shapes missing": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["layer_shapes"] = []any{}
			return s
		},
		"unknown field": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["exec"] = "rm -rf /"
			return s
		},
		"ivfpq without its index": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["nn_method"] = "ivfpq"
			return s
		},
		"no manifest": func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			return []modelfile.Section{{Tag: tagManifest}, s[1]}
		},
	}
	for name, edit := range cases {
		b := editManifest(t, good, edit)
		if name == "no manifest" {
			b, _ = modelfile.Encode([]modelfile.Section{{Tag: tagBank, Payload: []byte{1, 2, 3, 4}}})
		}
		start := time.Now()
		m, err := UnmarshalModel(b, "", LoadOptions{Threads: 1})
		if err == nil {
			m.Close()
			t.Errorf("%s: loaded", name)
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: refused after %v", name, d)
		}
	}
}

// The backbone a model file names is looked up next to the model file by its base name
// only: a manifest naming another path (a device that never ends, a file elsewhere) is
// refused with ErrFormat before anything is read.
func TestModelFileBackboneNameIsABaseName(t *testing.T) {
	good := marshal(t, tinyModel(t))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret.onnx"), []byte("not for you"), 0o600)
	for _, name := range []string{"/dev/zero", "/dev/stdin", "../secret.onnx", "sub/secret.onnx", "..", ".", filepath.Join(dir, "secret.onnx")} {
		b := editManifest(t, good, func(man map[string]any, s []modelfile.Section) []modelfile.Section {
			man["backbone"] = map[string]any{"file": name, "sha256": strings.Repeat("0", 64), "embedded": false}
			return s
		})
		done := make(chan error, 1)
		go func() {
			m, err := UnmarshalModel(b, filepath.Join(dir, "models"), LoadOptions{Threads: 1})
			if err == nil {
				m.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), name) {
				t.Errorf("backbone file %q: %v, want ErrFormat naming it", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("backbone file %q: UnmarshalModel still reading after 10 s", name)
		}
	}
}

// Non-finite feature maps are refused on every path that takes them, naming the layer.
func TestNonFiniteFeatures(t *testing.T) {
	m := tinyModel(t)
	defer m.Close()
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for layer := range 2 {
			maps := tinyLayers(3, 1)
			maps[layer].Data[len(maps[layer].Data)-1] = bad
			name := []string{"a", "b"}[layer]
			if _, err := m.PredictFeatures(maps); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "feature layer "+name) {
				t.Errorf("%v in layer %s, predict: %v", bad, name, err)
			}
			if err := m.AddFeatures(maps); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%v in layer %s, add: %v", bad, name, err)
			}
		}
		scores := []float32{1, 2, bad}
		if _, err := m.CalibrateScores(scores, nil, CalibrateQuantile, 0.5); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v in calibration scores: %v", bad, err)
		}
		seg := RescaleSegmentor{TargetH: 8, TargetW: 8, Sigma: 4}
		if _, err := seg.ConvertToSegmentation(Tensor{Shape: []int{1, 2, 2}, Data: []float32{0, bad, 1, 2}}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v in patch scores: %v", bad, err)
		}
	}
	// The model still predicts normally afterwards.
	if _, err := m.PredictFeatures(tinyLayers(3, 1)); err != nil {
		t.Fatal(err)
	}
}

// Image sizes: 0x0 and negative sizes are refused; a 1x1 image is valid and is resized up
// (every pixel of the crop is that one colour); an image over MaxImagePixels is refused
// before anything is allocated for it, also when only its header claims the size.
func TestImageSizeLimits(t *testing.T) {
	tr := DefaultImageTransform()
	dst := make([]float32, tr.TensorSize())
	for _, size := range [][2]int{{0, 0}, {0, 5}, {5, 0}, {-1, 3}} {
		im := Image{Width: size[0], Height: size[1], Channels: 3, Stride: 3 * max(size[0], 1), Pix: make([]byte, 64)}
		if err := tr.Apply(im, dst); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%dx%d image: %v", size[0], size[1], err)
		}
	}
	one := Image{Width: 1, Height: 1, Channels: 3, Stride: 3, Pix: []byte{255, 0, 51}}
	if err := tr.Apply(one, dst); err != nil {
		t.Fatalf("1x1 image: %v", err)
	}
	plane := 224 * 224
	for c, v := range []byte{255, 0, 51} {
		want := (float32(v)/255 - tr.Mean[c]) / tr.Std[c]
		for i := range plane {
			if dst[c*plane+i] != want {
				t.Fatalf("1x1 image, channel %d pixel %d = %v, want %v", c, i, dst[c*plane+i], want)
			}
		}
	}
	// 20000 x 20000 = 4e8 pixels > 2^28: refused on the geometry alone (Pix is empty).
	huge := Image{Width: 20000, Height: 20000, Channels: 3, Stride: 60000}
	if err := huge.Validate(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "20000x20000") {
		t.Errorf("20000x20000 image: %v", err)
	}
	if err := (Image{Width: 1 << 14, Height: 1<<14 + 1, Channels: 1, Stride: 1 << 14}).Validate(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("2^28 + 2^14 pixels: %v", err)
	}
	// Extreme aspect ratios within the limit: 1 x 2^20 resizes to 256 x 2^28 and is cropped.
	long := Image{Width: 1, Height: 1 << 20, Channels: 1, Stride: 1, Pix: make([]byte, 1<<20)}
	if err := tr.Apply(long, dst); err != nil {
		t.Errorf("1 x 2^20 image: %v", err)
	}

	dir := t.TempDir()
	for _, claim := range [][2]uint32{{100000, 100000}, {1 << 31, 1}, {20000, 20000}} {
		path := filepath.Join(dir, "claim.png")
		os.WriteFile(path, pngClaiming(claim[0], claim[1]), 0o600)
		start := time.Now()
		_, err := LoadImage(path)
		if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrFormat) {
			t.Errorf("PNG claiming %dx%d: %v", claim[0], claim[1], err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("PNG claiming %dx%d refused after %v", claim[0], claim[1], d)
		}
	}
	os.WriteFile(filepath.Join(dir, "one.png"), encodeImage(t, "rgba", 1, 1), 0o600)
	if im, err := LoadImage(filepath.Join(dir, "one.png")); err != nil || im.Width != 1 || im.Height != 1 {
		t.Errorf("1x1 PNG: %+v, %v", im, err)
	}
}

// A 1x1 image goes through the whole model (backbone, embedding, search, maps) like any
// other: it is resized up to the crop size first.
func TestModelPredictsOnePixelImage(t *testing.T) {
	needORT(t)
	cfg := tinyConfig()
	cfg.Layers = []string{"R"}
	cfg.PretrainEmbedDim, cfg.TargetEmbedDim = 3, 3
	cfg.Backbone = BackboneFromBytes(tinyBackbone([]any{"batch", 3, "h", "w"}, false))
	m, err := NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	grey := func(v byte) Image { return Image{Width: 1, Height: 1, Channels: 1, Stride: 1, Pix: []byte{v}} }
	if err := m.Fit(ImageSlice{grey(100), grey(110)}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := m.Predict(ImageSlice{grey(100), grey(250)})
	if err != nil {
		t.Fatal(err)
	}
	if !(p.Scores[1] > 0) || p.Scores[0] > 1e-4*p.Scores[1] || len(p.Maps.Data) != 2*16*16 {
		t.Fatalf("scores %v (want ~0 for a training image, > 0 for another), %d map values", p.Scores, len(p.Maps.Data))
	}
}
