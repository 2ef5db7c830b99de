#include "textflag.h"

// SUM8 adds the eight int32 lanes of A (X form AX_) and stores the total at off(R10).
#define SUM8(A, AX_, off) \
	VEXTRACTI128 $1, A, X12 \
	VPADDD       X12, AX_, X12 \
	VPSHUFD      $0x4E, X12, X13 \
	VPADDD       X13, X12, X12 \
	VPSHUFD      $0xB1, X12, X13 \
	VPADDD       X13, X12, X12 \
	VMOVD        X12, off(R10)

// PREFETCH8 asks for the first 128 bytes of row idx[off/4].
#define PREFETCH8(off) \
	MOVLQSX    off(R8), DX \
	IMULQ      BX, DX \
	ADDQ       DI, DX \
	PREFETCHT0 0(DX) \
	PREFETCHT0 64(DX)

// ONE8 accumulates into Y0 the squared int16 differences of the row at R11 and c (SI),
// d = BX bytes, using CX as the offset.
#define ONE8(lbl) \
	VPXOR     Y0, Y0, Y0 \
	XORQ      CX, CX \
lbl: \
	VMOVDQU   (SI)(CX*2), Y8 \
	VPMOVSXBW (R11)(CX*1), Y10 \
	VPSUBW    Y8, Y10, Y10 \
	VPMADDWD  Y10, Y10, Y10 \
	VPADDD    Y10, Y0, Y0 \
	ADDQ      $16, CX \
	CMPQ      CX, BX \
	JLT       lbl

// func sqDist8RowsAVX2(c []int16, data []int8, d int, idx []int32, out []int32)
// out[j] = Σ_k (data[idx[j]*d+k] − c[k])² for every j. Requires 16 <= d <= 32768,
// d % 16 == 0.
TEXT ·sqDist8RowsAVX2(SB), NOSPLIT, $0-104
	MOVQ c_base+0(FP), SI
	MOVQ data_base+24(FP), DI
	MOVQ d+48(FP), BX          // row stride in bytes
	MOVQ idx_base+56(FP), R8
	MOVQ idx_len+64(FP), R9
	MOVQ out_base+80(FP), R10

points:
	CMPQ R9, $4
	JLT  single
	MOVLQSX 0(R8), R11
	IMULQ   BX, R11
	ADDQ    DI, R11
	MOVLQSX 4(R8), R12
	IMULQ   BX, R12
	ADDQ    DI, R12
	MOVLQSX 8(R8), R13
	IMULQ   BX, R13
	ADDQ    DI, R13
	MOVLQSX 12(R8), AX
	IMULQ   BX, AX
	ADDQ    DI, AX
	CMPQ    R9, $8
	JLT     zero
	PREFETCH8(16)
	PREFETCH8(20)
	PREFETCH8(24)
	PREFETCH8(28)

zero:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ  CX, CX

chunks:
	VMOVDQU   (SI)(CX*2), Y8
	VPMOVSXBW (R11)(CX*1), Y10
	VPSUBW    Y8, Y10, Y10
	VPMADDWD  Y10, Y10, Y10
	VPADDD    Y10, Y0, Y0
	VPMOVSXBW (R12)(CX*1), Y11
	VPSUBW    Y8, Y11, Y11
	VPMADDWD  Y11, Y11, Y11
	VPADDD    Y11, Y1, Y1
	VPMOVSXBW (R13)(CX*1), Y10
	VPSUBW    Y8, Y10, Y10
	VPMADDWD  Y10, Y10, Y10
	VPADDD    Y10, Y2, Y2
	VPMOVSXBW (AX)(CX*1), Y11
	VPSUBW    Y8, Y11, Y11
	VPMADDWD  Y11, Y11, Y11
	VPADDD    Y11, Y3, Y3
	ADDQ      $16, CX
	CMPQ      CX, BX
	JLT       chunks

combine:
	SUM8(Y0, X0, 0)
	SUM8(Y1, X1, 4)
	SUM8(Y2, X2, 8)
	SUM8(Y3, X3, 12)
	ADDQ $16, R8
	ADDQ $16, R10
	SUBQ $4, R9
	JMP  points

single:
	TESTQ R9, R9
	JEQ   done
	MOVLQSX 0(R8), R11
	IMULQ   BX, R11
	ADDQ    DI, R11
	ONE8(rowchunk)
	SUM8(Y0, X0, 0)
	ADDQ $4, R8
	ADDQ $4, R10
	DECQ R9
	JMP  single

done:
	VZEROUPPER
	RET

// func sqDist8ContigAVX2(c []int16, rows []int8, d int, out []int32)
// out[j] = Σ_k (rows[j*d+k] − c[k])² for every j. Requires 16 <= d <= 32768, d % 16 == 0.
TEXT ·sqDist8ContigAVX2(SB), NOSPLIT, $0-80
	MOVQ c_base+0(FP), SI
	MOVQ rows_base+24(FP), R11
	MOVQ d+48(FP), BX
	MOVQ out_base+56(FP), R10
	MOVQ out_len+64(FP), R9

quad:
	CMPQ R9, $4
	JLT  lone
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	LEAQ (R13)(BX*1), AX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ  CX, CX

qchunks:
	VMOVDQU   (SI)(CX*2), Y8
	VPMOVSXBW (R11)(CX*1), Y10
	VPSUBW    Y8, Y10, Y10
	VPMADDWD  Y10, Y10, Y10
	VPADDD    Y10, Y0, Y0
	VPMOVSXBW (R12)(CX*1), Y11
	VPSUBW    Y8, Y11, Y11
	VPMADDWD  Y11, Y11, Y11
	VPADDD    Y11, Y1, Y1
	VPMOVSXBW (R13)(CX*1), Y10
	VPSUBW    Y8, Y10, Y10
	VPMADDWD  Y10, Y10, Y10
	VPADDD    Y10, Y2, Y2
	VPMOVSXBW (AX)(CX*1), Y11
	VPSUBW    Y8, Y11, Y11
	VPMADDWD  Y11, Y11, Y11
	VPADDD    Y11, Y3, Y3
	ADDQ      $16, CX
	CMPQ      CX, BX
	JLT       qchunks

	SUM8(Y0, X0, 0)
	SUM8(Y1, X1, 4)
	SUM8(Y2, X2, 8)
	SUM8(Y3, X3, 12)
	LEAQ (AX)(BX*1), R11
	ADDQ $16, R10
	SUBQ $4, R9
	JMP  quad

lone:
	TESTQ R9, R9
	JEQ   cdone
	ONE8(lchunk)
	SUM8(Y0, X0, 0)
	ADDQ BX, R11
	ADDQ $4, R10
	DECQ R9
	JMP  lone

cdone:
	VZEROUPPER
	RET

// func dotU8Rows4VNNI(cu []uint8, rows []int8, d int, out []int32)
// out[j] = Σ_k rows[j*d+k]·cu[k] (signed × unsigned bytes, exact int32) for every j.
// Requires len(out) % 4 == 0, d % 32 == 0, d >= 32, AVX512-VNNI and AVX512-VL.
TEXT ·dotU8Rows4VNNI(SB), NOSPLIT, $0-80
	MOVQ cu_base+0(FP), SI
	MOVQ rows_base+24(FP), R11
	MOVQ d+48(FP), BX
	MOVQ out_base+56(FP), R10
	MOVQ out_len+64(FP), R9

vquad:
	CMPQ R9, $4
	JLT  vdone
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	LEAQ (R13)(BX*1), AX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ  CX, CX

vblocks:
	VMOVDQU  (SI)(CX*1), Y8
	VPDPBUSD (R11)(CX*1), Y8, Y0
	VPDPBUSD (R12)(CX*1), Y8, Y1
	VPDPBUSD (R13)(CX*1), Y8, Y2
	VPDPBUSD (AX)(CX*1), Y8, Y3
	ADDQ     $32, CX
	CMPQ     CX, BX
	JLT      vblocks

	VPHADDD      Y1, Y0, Y0 // rows 0, 1: pairwise sums
	VPHADDD      Y3, Y2, Y2 // rows 2, 3
	VPHADDD      Y2, Y0, Y0 // [r0 r1 r2 r3 | r0' r1' r2' r3']
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VMOVDQU      X0, (R10)
	LEAQ         (AX)(BX*1), R11
	ADDQ         $16, R10
	SUBQ         $4, R9
	JMP          vquad

vdone:
	VZEROUPPER
	RET
