package imagedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestListAndTestSet(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"good/b.png", "good/a.JPG", "good/notes.txt", "crack/z.jpeg", "crack/y.png", "README.md"} {
		touch(t, filepath.Join(dir, f))
	}
	got, err := List(filepath.Join(dir, "good"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "good/a.JPG"), filepath.Join(dir, "good/b.png")}; !slices.Equal(got, want) {
		t.Fatalf("List: %v, want %v", got, want)
	}
	paths, anomalous, err := TestSet(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantPaths := []string{"crack/y.png", "crack/z.jpeg", "good/a.JPG", "good/b.png"}
	for i := range wantPaths {
		wantPaths[i] = filepath.Join(dir, wantPaths[i])
	}
	if !slices.Equal(paths, wantPaths) || !slices.Equal(anomalous, []bool{true, true, false, false}) {
		t.Fatalf("TestSet: %v %v", paths, anomalous)
	}
	if _, _, err := TestSet(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
}
