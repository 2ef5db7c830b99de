package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/fuzzwatch"
	"github.com/libpatchcore/libpatchcore/internal/imaging"
	"github.com/libpatchcore/libpatchcore/internal/ort"
)

// The fuzz targets of this file run their seeds with every `go test` and are fuzzed by
// scripts/fuzz.sh (`make fuzz-short` for a few seconds each). Each one asserts what the C
// ABI promises: no panic, no hang, no unbounded allocation, and every error wraps one of
// the kinds that map to a documented status code.

// tinyLayers are feature maps of a features-only model with two small layers: layer "a"
// [n,8,4,4] and layer "b" [n,8,2,2], uniform in [0,1) from a seeded generator.
func tinyLayers(seed uint64, n int) []Tensor {
	rng := rand.New(rand.NewPCG(seed, seed))
	a, b := NewTensor(n, 8, 4, 4), NewTensor(n, 8, 2, 2)
	for _, t := range []Tensor{a, b} {
		for i := range t.Data {
			t.Data[i] = rng.Float32()
		}
	}
	return []Tensor{a, b}
}

// tinyConfig is a features-only configuration for tinyLayers: 16-dimensional embeddings,
// 16x16 maps, identity sampler, one thread.
func tinyConfig() Config {
	cfg := DefaultConfig()
	cfg.Layers = []string{"a", "b"}
	cfg.Resize, cfg.ImageSize = 16, 16
	cfg.PretrainEmbedDim, cfg.TargetEmbedDim = 16, 16
	cfg.Sampler = "identity"
	cfg.Threads = 1
	return cfg
}

// tinyModel fits a features-only model on two images of tinyLayers (a 32 x 16 bank).
func tinyModel(t testing.TB) *Model {
	t.Helper()
	m, err := NewModel(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FitFeatures(tinyLayers(1, 2)); err != nil {
		t.Fatal(err)
	}
	return m
}

// marshal serialises a model and closes it.
func marshal(t testing.TB, m *Model) []byte {
	t.Helper()
	defer m.Close()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reseal recomputes the CRC-32C of every section and the trailer of a model file whose
// section lengths are consistent, so that mutated bytes get past the checksums and reach
// the manifest, bank, index and backbone readers. Anything else is returned unchanged.
func reseal(b []byte) []byte {
	const header, sectionHeader = 16, 16
	if len(b) < header+4 {
		return b
	}
	out := append([]byte(nil), b...)
	body := out[:len(out)-4]
	table := crc32.MakeTable(crc32.Castagnoli)
	count := binary.LittleEndian.Uint32(body[12:16])
	off := header
	for i := uint32(0); i < count && i < 64; i++ {
		if len(body)-off < sectionHeader {
			return b
		}
		n := binary.LittleEndian.Uint64(body[off+4 : off+12])
		if n > uint64(len(body)-off-sectionHeader) {
			return b
		}
		payload := body[off+sectionHeader : off+sectionHeader+int(n)]
		binary.LittleEndian.PutUint32(body[off+12:off+16], crc32.Checksum(payload, table))
		off += sectionHeader + int(n)
	}
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.Checksum(body, table))
	return out
}

// checkKind fails unless err wraps one of the allowed kinds (and never ErrInternal, which
// would mean a recovered panic or a broken invariant).
func checkKind(t *testing.T, what string, err error, allowed ...error) {
	t.Helper()
	if errors.Is(err, ErrInternal) {
		t.Fatalf("%s: internal error (a bug): %v", what, err)
	}
	for _, k := range allowed {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("%s: error of an unexpected kind: %v", what, err)
}

// FuzzUnmarshalModel feeds model files to UnmarshalModel: the bytes as given (the
// checksums refuse almost every mutation) and, with resealed set, after recomputing the
// checksums, so that mutated manifests, banks and sections are parsed. A file must load or
// fail with ErrFormat, ErrInvalidArgument or ErrIO; a loaded model must serialise again and
// score feature maps of its recorded shapes without an internal error.
func FuzzUnmarshalModel(f *testing.F) {
	plain := marshal(f, tinyModel(f))
	f.Add(plain, false)
	f.Add(plain, true)
	f.Add(plain[:len(plain)/2], true)

	calibrated := tinyModel(f)
	if _, err := calibrated.CalibrateScores([]float32{1, 2, 3, 4}, nil, CalibrateQuantile, 0.9); err != nil {
		f.Fatal(err)
	}
	f.Add(marshal(f, calibrated), true)

	if _, err := ort.Init(); err == nil {
		// A model with an embedded backbone: R = Relu(X), fitted on two 16x16 images.
		cfg := tinyConfig()
		cfg.Layers = []string{"R"}
		cfg.PretrainEmbedDim, cfg.TargetEmbedDim = 3, 3
		cfg.Backbone = BackboneFromBytes(tinyBackbone([]any{"batch", 3, "h", "w"}, false))
		cfg.EmbedBackbone = true
		m, err := NewModel(cfg)
		if err != nil {
			f.Fatal(err)
		}
		im := Image{Width: 16, Height: 16, Channels: 3, Stride: 48, Pix: make([]byte, 16*48)}
		for i := range im.Pix {
			im.Pix[i] = byte(i * 7)
		}
		if err := m.Fit(ImageSlice{im, im}, nil); err != nil {
			f.Fatal(err)
		}
		f.Add(marshal(f, m), true)
	}
	dir := f.TempDir() // an empty folder: a backbone file named in a manifest is not there
	f.Fuzz(func(t *testing.T, data []byte, resealed bool) {
		defer fuzzwatch.Start()()
		if resealed {
			data = reseal(data)
		}
		m, err := UnmarshalModel(data, dir, LoadOptions{Threads: 1})
		if err != nil {
			checkKind(t, "UnmarshalModel", err, ErrFormat, ErrInvalidArgument, ErrIO)
			return
		}
		defer m.Close()
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("a loaded model does not serialise: %v", err)
		}
		m2, err := UnmarshalModel(again, dir, LoadOptions{Threads: 1})
		if err != nil {
			t.Fatalf("a re-serialised model does not load: %v", err)
		}
		m2.Close()
		// Score one image of the recorded layer shapes when they are small.
		cfg := m.Config()
		layers := make([]Tensor, len(m.layerDims))
		total := 0
		for i, s := range m.layerDims {
			n, err := CheckedSize([]int{1, s[0], s[1], s[2]})
			if err != nil || n <= 0 || n > 1<<16 || s[0] <= 0 || s[1] <= 0 || s[2] <= 0 {
				return
			}
			total += n
			layers[i] = NewTensor(1, s[0], s[1], s[2])
		}
		if total > 1<<16 || cfg.ImageSize > 256 || cfg.PretrainEmbedDim > 1024 || cfg.TargetEmbedDim > 1024 {
			return
		}
		if _, err := m.PredictFeatures(layers); err != nil {
			checkKind(t, "PredictFeatures", err, ErrInvalidArgument, ErrState)
		}
	})
}

// pickleParams writes the reference's params dict (protocol 2) for a backbone with the
// given layers and an input of 3 x size x size.
func pickleParams(layers []string, size, pretrain, target, patch, stride, k int32) []byte {
	var b bytes.Buffer
	str := func(s string) {
		b.WriteByte('X')
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	num := func(v int32) {
		b.WriteByte('J')
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("\x80\x02}(")
	str("backbone.name")
	str("tiny")
	str("layers_to_extract_from")
	b.WriteString("](")
	for _, l := range layers {
		str(l)
	}
	b.WriteString("e")
	str("input_shape")
	b.WriteString("(")
	num(3)
	num(size)
	num(size)
	b.WriteString("t")
	for _, kv := range []struct {
		k string
		v int32
	}{{"pretrain_embed_dimension", pretrain}, {"target_embed_dimension", target}, {"patchsize", patch}, {"patchstride", stride}, {"anomaly_scorer_num_nn", k}} {
		str(kv.k)
		num(kv.v)
	}
	b.WriteString("u.")
	return b.Bytes()
}

// FuzzImportReference imports fuzzed reference model folders: the params pickle (decoded
// without executing anything, then read by referenceParams) and the FAISS IndexFlatL2
// file (read by faiss.FlatVectors). The backbone is a one-node ONNX graph R = Relu(X) with
// a fixed 8x8 input, so valid params reach NewModel and the bank is indexed by FAISS.
// Every outcome is a model or an error of a documented kind.
func FuzzImportReference(f *testing.F) {
	needORT(f)
	nn, err := NewFaissNN(false, 1)
	if err != nil {
		f.Fatal(err)
	}
	bank := NewTensor(20, 3)
	for i := range bank.Data {
		bank.Data[i] = float32(i%11) / 3
	}
	if err := nn.Fit(bank); err != nil {
		f.Fatal(err)
	}
	index, err := nn.Serialize()
	nn.Close()
	if err != nil {
		f.Fatal(err)
	}
	params := pickleParams([]string{"R"}, 8, 3, 3, 3, 1, 1)
	f.Add(params, index)
	f.Add(pickleParams([]string{"R"}, 8, 3, 3, 3, 1, 30), index) // k larger than the bank
	f.Add(pickleParams([]string{"R", "F"}, 8, 3, 3, 3, 1, 1), index)
	f.Add(pickleParams([]string{"R"}, 16, 3, 3, 1, 2, 1), index[:len(index)-3])
	if ref, err := os.ReadFile(filepath.Join("..", "testdata", "reference", "mnv2_patchcore_params.pkl")); err == nil {
		f.Add(ref, index)
	}
	backbone := BackboneFromBytes(tinyBackbone([]any{"batch", 3, 8, 8}, false))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, params, index []byte) {
		defer fuzzwatch.Start()()
		os.WriteFile(filepath.Join(dir, ReferenceParamsFile), params, 0o600)
		os.WriteFile(filepath.Join(dir, ReferenceIndexFile), index, 0o600)
		m, err := ImportReferenceModel(dir, ReferenceImportOptions{Backbone: backbone, Threads: 1})
		if err != nil {
			checkKind(t, "ImportReferenceModel", err, ErrFormat, ErrInvalidArgument, ErrUnsupported)
			return
		}
		defer m.Close()
		if !m.Fitted() {
			t.Fatal("imported model is not fitted")
		}
	})
}

// encodeImage writes a w x h image in one of the decoder's formats: gray, RGBA, 16-bit,
// palette PNG, or JPEG.
func encodeImage(t testing.TB, kind string, w, h int) []byte {
	var img image.Image
	switch kind {
	case "gray":
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = byte(i * 3)
		}
		img = g
	case "gray16":
		g := image.NewGray16(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = byte(i)
		}
		img = g
	case "paletted":
		p := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White, color.RGBA{200, 10, 10, 255}})
		for i := range p.Pix {
			p.Pix[i] = byte(i % 3)
		}
		img = p
	default:
		n := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range n.Pix {
			n.Pix[i] = byte(i * 5)
		}
		img = n
	}
	var b bytes.Buffer
	var err error
	if kind == "jpeg" {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 80})
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngClaiming is a PNG whose header claims w x h RGBA pixels, with a valid IHDR CRC and
// no pixel data.
func pngClaiming(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	chunk := append([]byte("IHDR"), ihdr...)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, uint32(len(ihdr)))
	b = append(b, chunk...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(chunk))
	return append(b, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82)
}

// fuzzDecodeLimit is the pixel count above which FuzzLoadImage does not let LoadImage
// allocate (a legal 2^28-pixel image takes ~2 GiB to decode, too much for a fuzz worker):
// it checks instead that the decoder refuses such an image under a smaller limit before
// decoding any pixel.
const fuzzDecodeLimit = 1 << 20

// FuzzLoadImage decodes fuzzed PNG/JPEG files with LoadImage: each is refused
// (ErrFormat, or ErrInvalidArgument when over MaxImagePixels) or decodes to a packed RGB
// image of the header's size, which the reference transform then turns into a normalised
// 224 x 224 crop, 1 x 1 images included.
func FuzzLoadImage(f *testing.F) {
	for _, kind := range []string{"gray", "gray16", "paletted", "rgba", "jpeg"} {
		f.Add(encodeImage(f, kind, 5, 3))
	}
	f.Add(encodeImage(f, "rgba", 1, 1))
	f.Add(encodeImage(f, "jpeg", 1, 40))
	f.Add(pngClaiming(100000, 100000))
	f.Add(pngClaiming(1<<14, 1<<14))
	f.Add([]byte("GIF89a"))
	path := filepath.Join(f.TempDir(), "image")
	transform := DefaultImageTransform()
	dst := make([]float32, transform.TensorSize())
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzwatch.Start()()
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width > 0 && cfg.Height > 0 &&
			cfg.Width <= MaxImagePixels/cfg.Height && cfg.Width*cfg.Height > fuzzDecodeLimit {
			if _, _, _, err := imaging.DecodeRGB(data, fuzzDecodeLimit); !errors.Is(err, imaging.ErrTooLarge) {
				t.Fatalf("%dx%d image under a limit of %d pixels: %v", cfg.Width, cfg.Height, fuzzDecodeLimit, err)
			}
			return
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		img, err := LoadImage(path)
		if err != nil {
			checkKind(t, "LoadImage", err, ErrFormat, ErrInvalidArgument)
			return
		}
		if err := img.Validate(); err != nil || img.Channels != 3 || len(img.Pix) != 3*img.Width*img.Height {
			t.Fatalf("decoded image %dx%dx%d with %d bytes: %v", img.Width, img.Height, img.Channels, len(img.Pix), err)
		}
		if err := transform.Apply(img, dst); err != nil {
			checkKind(t, "ImageTransform.Apply", err, ErrInvalidArgument)
		}
	})
}

// FuzzNewNetworkFeatureAggregator feeds fuzzed ONNX bytes to the backbone loader. Bytes
// that onnxgraph cannot parse, or whose input or layers are unusable, are refused before
// ONNX Runtime sees them; what passes those checks is a well-formed graph that ONNX
// Runtime's own parser (C++, not fuzzed here) builds a session from or rejects with
// ErrBackend. See docs/reliability.md for why raw bytes stop at onnxgraph.
func FuzzNewNetworkFeatureAggregator(f *testing.F) {
	needORT(f)
	f.Add(tinyBackbone([]any{"batch", 3, "h", "w"}, false), "R")
	f.Add(tinyBackbone([]any{"batch", 3, "h", "w"}, true), "F")
	f.Add(tinyBackbone([]any{1, 3, 4, 4}, false), "R")
	f.Add(tinyBackbone([]any{"b", "c", "h", "w"}, false), "X")
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00}, "R")
	f.Fuzz(func(t *testing.T, onnx []byte, layer string) {
		defer fuzzwatch.Start()()
		a, err := NewNetworkFeatureAggregator(BackboneFromBytes(onnx), []string{layer}, "cpu", BackboneOptions{Threads: 1})
		if err != nil {
			checkKind(t, "NewNetworkFeatureAggregator", err, ErrFormat, ErrInvalidArgument, ErrBackend)
			return
		}
		defer a.Close()
		if _, err := a.FeatureShapes(3, 4, 4); err != nil {
			checkKind(t, "FeatureShapes", err, ErrInvalidArgument, ErrBackend)
		}
	})
}
