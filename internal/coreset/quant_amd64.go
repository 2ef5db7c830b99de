package coreset

// sqDist8RowsAVX2 is the AVX2 kernel of sqDist8Rows (quant_amd64.s); it requires
// 16 <= d <= quantMaxDim and d % 16 == 0.
//
//go:noescape
func sqDist8RowsAVX2(c []int16, data []int8, d int, idx []int32, out []int32)

// sqDist8ContigAVX2 is the AVX2 kernel of sqDist8Contig (quant_amd64.s), with the same
// requirements.
//
//go:noescape
func sqDist8ContigAVX2(c []int16, rows []int8, d int, out []int32)

// dotU8Rows4VNNI is the AVX512-VNNI kernel of dotU8Rows (quant_amd64.s): signed rows times
// an unsigned vector, exact in int32. It requires len(out) % 4 == 0, d % 32 == 0, d >= 32.
//
//go:noescape
func dotU8Rows4VNNI(cu []uint8, rows []int8, d int, out []int32)

// hasVNNI reports whether the CPU and the OS support AVX512-VNNI on 256-bit registers.
var hasVNNI = detectVNNI()

func detectVNNI() bool {
	if !hasAVX2 {
		return false
	}
	_, ebx7, ecx7, _ := cpuid(7, 0)
	const avx512f, avx512vl, vnni = 1 << 16, 1 << 31, 1 << 11
	if ebx7&avx512f == 0 || ebx7&avx512vl == 0 || ecx7&vnni == 0 {
		return false
	}
	xcr0, _ := xgetbv0()
	return xcr0&0xe6 == 0xe6 // XMM, YMM, opmask, ZMM state enabled by the OS
}

// dotU8Rows sets out[j] = Σ_k rows[j*d+k]·cu[k] for j < n, where n is len(out) rounded
// down to what the fast kernel handles, and returns n (0 when there is no such kernel for
// d on this CPU).
func dotU8Rows(cu []uint8, rows []int8, d int, out []int32) int {
	n := len(out) &^ 3
	if !hasVNNI || d < 32 || d%32 != 0 || d > quantMaxDim || n == 0 {
		return 0
	}
	dotU8Rows4VNNI(cu[:d], rows[:n*d], d, out[:n])
	return n
}

// quantAVX2 reports whether the AVX2 int8 kernels handle dimension d.
func quantAVX2(d int) bool {
	return hasAVX2 && d >= 16 && d%16 == 0 && d <= quantMaxDim
}

// sqDist8Rows sets out[j] = Σ_k (data[idx[j]*d+k] − c[k])² for every j (exact). Requires
// d <= quantMaxDim, valid indices and len(out) >= len(idx).
func sqDist8Rows(c []int16, data []int8, d int, idx []int32, out []int32) {
	out = out[:len(idx)]
	c = c[:d]
	if quantAVX2(d) {
		sqDist8RowsAVX2(c, data, d, idx, out)
		return
	}
	for j, q := range idx {
		r := int(q) * d
		out[j] = sqDist8Clamped(data[r:r+d:r+d], c)
	}
}

// sqDist8Contig sets out[j] = Σ_k (rows[j*d+k] − c[k])² for j < len(out) (exact). Requires
// d <= quantMaxDim and len(rows) >= len(out)*d.
func sqDist8Contig(c []int16, rows []int8, d int, out []int32) {
	c = c[:d]
	rows = rows[:len(out)*d]
	if quantAVX2(d) && len(out) > 0 {
		sqDist8ContigAVX2(c, rows, d, out)
		return
	}
	for j := range out {
		out[j] = sqDist8Clamped(rows[j*d:(j+1)*d], c)
	}
}
