// Package golden locates and loads the reference implementation's golden arrays for tests.
// The repository ships the subset most tests need under testdata/golden; the complete set
// lives in ../shared/golden next to a development checkout and in CI.
package golden

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/npy"
)

// repoRoot is the repository root, found from this source file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Path returns the path of a golden file (e.g. "mnv2/memory_bank.npy"), preferring the
// repository's copy. When neither copy exists the test is skipped with the reason.
func Path(t testing.TB, rel string) string {
	t.Helper()
	candidates := []string{
		filepath.Join(repoRoot(), "testdata", "golden", rel),
		filepath.Join(repoRoot(), "..", "shared", "golden", rel),
	}
	if env := os.Getenv("PATCHCORE_GOLDEN"); env != "" {
		candidates = append([]string{filepath.Join(env, rel)}, candidates...)
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	t.Skipf("golden file %s not found (looked in %v)", rel, candidates)
	return ""
}

// Load reads a golden .npy array, failing the test on a decoding error.
func Load(t testing.TB, rel string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(Path(t, rel))
	if err != nil {
		t.Fatalf("golden %s: %v", rel, err)
	}
	return a
}

// Testdata returns the path of a file under the repository's testdata directory.
func Testdata(rel string) string {
	return filepath.Join(repoRoot(), "testdata", rel)
}
