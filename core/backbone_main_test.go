package core

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestMain points the ONNX Runtime loader at the runtime installed by
// scripts/install-deps.sh (a test binary has no libonnxruntime.so.1 next to it), unless
// $PATCHCORE_ORT_LIBRARY is already set.
func TestMain(m *testing.M) {
	if os.Getenv("PATCHCORE_ORT_LIBRARY") == "" {
		_, file, _, _ := runtime.Caller(0)
		lib := filepath.Join(filepath.Dir(file), "..", ".deps", "lib", "libonnxruntime.so.1")
		if _, err := os.Stat(lib); err == nil {
			os.Setenv("PATCHCORE_ORT_LIBRARY", lib)
		}
	}
	os.Exit(m.Run())
}
