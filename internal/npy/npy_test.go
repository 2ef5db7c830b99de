package npy

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestRoundTripFloat32(t *testing.T) {
	data := []float32{1, -2.5, 3e-8, 4, 5, 6}
	for _, shape := range [][]int{{6}, {2, 3}, {1, 2, 3}} {
		var buf bytes.Buffer
		if err := EncodeFloat32(&buf, data, shape); err != nil {
			t.Fatal(err)
		}
		if (buf.Len()-len(data)*4)%64 != 0 {
			t.Fatalf("header not 64-byte aligned: %d", buf.Len())
		}
		a, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Shape) != len(shape) {
			t.Fatalf("shape %v, want %v", a.Shape, shape)
		}
		for i := range data {
			if a.F32[i] != data[i] {
				t.Fatalf("value %d: %v != %v", i, a.F32[i], data[i])
			}
		}
	}
}

func TestGoldenFile(t *testing.T) {
	a, err := ReadFile(filepath.Join("..", "..", "testdata", "golden", "mnv2", "image_scores_k1.npy"))
	if err != nil {
		t.Skip("golden data not present:", err)
	}
	if a.Dtype != "<f4" || len(a.F32) != 2 || a.F32[0] < 206 || a.F32[0] > 206.1 {
		t.Fatalf("unexpected content %+v", a)
	}
}

func TestRejectsTruncated(t *testing.T) {
	var buf bytes.Buffer
	_ = EncodeFloat32(&buf, []float32{1, 2, 3}, []int{3})
	b := buf.Bytes()
	for n := 0; n < len(b); n++ {
		if _, err := Decode(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", n)
		}
	}
}
