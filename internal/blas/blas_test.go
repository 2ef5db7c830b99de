package blas

import (
	"os"
	"strings"
	"testing"
)

func TestLoaded(t *testing.T) {
	if err := Available(); err != nil {
		t.Fatal(err)
	}
}

// OpenBLAS runs the kernels the CPU supports: SkylakeX with AVX-512, Haswell with
// AVX2+FMA, unless the host chose with OPENBLAS_CORETYPE.
func TestKernelChoice(t *testing.T) {
	core := CoreName()
	env := os.Getenv("OPENBLAS_CORETYPE")
	t.Logf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%q)", core, env)
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo")
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, f := range strings.Fields(line) {
				flags[f] = true
			}
			break
		}
	}
	switch {
	case env != "":
		if !strings.EqualFold(env, core) {
			t.Errorf("OPENBLAS_CORETYPE=%s but OpenBLAS selected %s", env, core)
		}
	case flags["avx512f"] && flags["avx512bw"] && flags["avx512vl"] && flags["avx512dq"] && flags["avx512cd"]:
		if core != "SkylakeX" {
			t.Errorf("AVX-512 CPU runs OpenBLAS kernels %q, want SkylakeX", core)
		}
	case flags["avx2"] && flags["fma"]:
		if core != "Haswell" {
			t.Errorf("AVX2 CPU runs OpenBLAS kernels %q, want Haswell", core)
		}
	}
}
