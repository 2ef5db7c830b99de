package modelfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func sample() []Section {
	return []Section{{"MANI", []byte(`{"a":1}`)}, {"BANK", bytes.Repeat([]byte{1, 2, 3}, 100)}, {"EMPT", nil}}
}

func TestRoundTrip(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	v, secs, err := Decode(b)
	if err != nil || v != FormatVersion || len(secs) != 3 {
		t.Fatalf("decode: v=%d n=%d err=%v", v, len(secs), err)
	}
	for i, s := range sample() {
		if secs[i].Tag != s.Tag || !bytes.Equal(secs[i].Payload, s.Payload) {
			t.Fatalf("section %d differs", i)
		}
	}
	if p, ok := Find(secs, "BANK"); !ok || len(p) != 300 {
		t.Fatal("Find BANK failed")
	}
}

// Every truncation and every single-bit flip must be refused with ErrFormat.
func TestRejectsEveryTruncationAndBitFlip(t *testing.T) {
	b, _ := Encode(sample())
	for n := 0; n < len(b); n++ {
		if _, _, err := Decode(b[:n]); !errors.Is(err, ErrFormat) {
			t.Fatalf("truncation to %d bytes: err=%v", n, err)
		}
	}
	for i := 0; i < len(b); i++ {
		for bit := 0; bit < 8; bit++ {
			c := append([]byte(nil), b...)
			c[i] ^= 1 << bit
			if _, _, err := Decode(c); !errors.Is(err, ErrFormat) {
				t.Fatalf("bit flip at byte %d bit %d accepted", i, bit)
			}
		}
	}
}

func TestRejectsFutureVersion(t *testing.T) {
	b, _ := Encode(sample())
	b[8] = FormatVersion + 1
	if _, _, err := Decode(b); !errors.Is(err, ErrFormat) {
		t.Fatalf("future version accepted: %v", err)
	}
}

func TestWriteFileAtomicKeepsOldFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.pcm")
	if err := WriteFileAtomic(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // root ignores directory permissions
		os.Chmod(dir, 0o500)
		if err := WriteFileAtomic(path, []byte("new")); err == nil {
			t.Fatal("write into read-only dir succeeded")
		}
		os.Chmod(dir, 0o700)
	}
	// Writing to a missing directory fails and leaves nothing behind.
	if err := WriteFileAtomic(filepath.Join(dir, "nope", "m.pcm"), []byte("x")); err == nil {
		t.Fatal("write into missing dir succeeded")
	}
	got, _ := os.ReadFile(path)
	if string(got) != "old" {
		t.Fatalf("old file changed: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b)
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		Decode(data) // must not panic
	})
}
