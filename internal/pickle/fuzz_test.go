package pickle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// FuzzDecode checks that arbitrary input never panics or hangs the decoder and that every
// failure is reported as errs.ErrFormat. The seed corpus is the Python-written fixtures plus
// the encoder's own output.
func FuzzDecode(f *testing.F) {
	matches, err := filepath.Glob("testdata/*.pkl")
	if err != nil || len(matches) == 0 {
		f.Fatalf("no seed fixtures (%v)", err)
	}
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var buf bytes.Buffer
	if err := EncodeFloat32Array(&buf, []float32{1, -2, 3.5, 0, 7, 8}, []int{1, 2, 3}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("(lp0\nI1\naI2\na(dp1\nVk\np2\nF0.5\nss."))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, errs.ErrFormat) {
				t.Fatalf("error does not wrap errs.ErrFormat: %v", err)
			}
			return
		}
		if a, ok := v.(*Array); ok {
			if _, err := a.Float32(); err != nil && !errors.Is(err, errs.ErrFormat) {
				t.Fatalf("Float32 error does not wrap errs.ErrFormat: %v", err)
			}
		}
	})
}
