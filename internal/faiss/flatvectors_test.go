package faiss

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// FlatVectors returns exactly the rows FAISS stored, and refuses other index kinds.
func TestFlatVectors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d = 37, 16
	data := make([]float32, n*d)
	for i := range data {
		data[i] = rng.Float32()
	}
	x, err := NewFlatL2(d)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Add(data, n); err != nil {
		t.Fatal(err)
	}
	b, err := x.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	gotD, got, err := FlatVectors(b)
	if err != nil || gotD != d || len(got) != len(data) {
		t.Fatalf("d=%d len=%d err=%v", gotD, len(got), err)
	}
	for i := range data {
		if got[i] != data[i] {
			t.Fatalf("vector value %d differs", i)
		}
	}
	if _, _, err := FlatVectors(b[:len(b)-1]); !errors.Is(err, errs.ErrFormat) {
		t.Fatalf("truncated index accepted: %v", err)
	}
}
