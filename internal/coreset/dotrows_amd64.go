package coreset

// cpuid executes CPUID with the given EAX and ECX (dotrows_amd64.s).
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 reads extended control register 0 (dotrows_amd64.s).
func xgetbv0() (eax, edx uint32)

// dotRows4AVX2 is the AVX2 batch kernel (dotrows_amd64.s): it handles len(idx) rounded down
// to a multiple of 4 and requires d % 16 == 0. The caller guarantees the bounds.
//
//go:noescape
func dotRows4AVX2(c, data []float32, d int, idx []int32, out []float32)

// hasAVX2 reports whether the CPU and the operating system support AVX2.
var hasAVX2 = detectAVX2()

func detectAVX2() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state enabled by the OS
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

// dotRows sets out[j] = dot(data[idx[j]*d:][:d], c) for every j, bit-identical to dot.
// c has d elements, every idx[j]*d+d <= len(data), len(out) >= len(idx).
func dotRows(c, data []float32, d int, idx []int32, out []float32) {
	out = out[:len(idx)]
	c = c[:d]
	done := 0
	if hasAVX2 && d%laneCount == 0 && len(idx) >= 4 {
		done = len(idx) &^ 3
		dotRows4AVX2(c, data, d, idx[:done], out[:done])
	}
	for j := done; j < len(idx); j++ {
		q := int(idx[j]) * d
		out[j] = dot(data[q:q+d:q+d], c)
	}
}
