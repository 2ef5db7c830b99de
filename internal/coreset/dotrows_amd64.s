#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax, edx uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// COMBINE reduces one point's two accumulators (lanes 0-7 in A, 8-15 in B) in the order
// of dotGeneric and stores the float32 result at off(R10).
#define COMBINE(A, AX_, B, BX_, off) \
	VEXTRACTF128 $1, A, X12 \
	VADDPS       X12, AX_, X12 \
	VEXTRACTF128 $1, B, X13 \
	VADDPS       X13, BX_, X13 \
	VADDPS       X13, X12, X12 \
	VMOVHLPS     X12, X12, X13 \
	VADDPS       X13, X12, X12 \
	VSHUFPS      $0x55, X12, X12, X13 \
	VADDSS       X13, X12, X12 \
	VMOVSS       X12, off(R10)

// PREFETCHROW asks for the first 512 bytes of row idx[off/4] (prefetches never fault).
#define PREFETCHROW(off) \
	MOVLQSX    off(R8), DX \
	IMULQ      BX, DX \
	ADDQ       DI, DX \
	PREFETCHT0 0(DX) \
	PREFETCHT0 64(DX) \
	PREFETCHT0 128(DX) \
	PREFETCHT0 192(DX) \
	PREFETCHT0 256(DX) \
	PREFETCHT0 320(DX) \
	PREFETCHT0 384(DX) \
	PREFETCHT0 448(DX)

// func dotRows4AVX2(c, data []float32, d int, idx []int32, out []float32)
// For j < len(idx) rounded down to a multiple of 4: out[j] = dot(data[idx[j]*d:][:d], c).
// Requires d % 16 == 0. Lanes: Y(2k) holds lanes 0-7 and Y(2k+1) lanes 8-15 of point k.
TEXT ·dotRows4AVX2(SB), NOSPLIT, $0-104
	MOVQ c_base+0(FP), SI
	MOVQ data_base+24(FP), DI
	MOVQ d+48(FP), BX
	SHLQ $2, BX            // row stride in bytes = block limit (d % 16 == 0)
	MOVQ idx_base+56(FP), R8
	MOVQ idx_len+64(FP), R9
	MOVQ out_base+80(FP), R10

points:
	CMPQ R9, $4
	JLT  done
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
	PREFETCHROW(16)
	PREFETCHROW(20)
	PREFETCHROW(24)
	PREFETCHROW(28)

zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   CX, CX
	TESTQ  BX, BX
	JEQ    combine

blocks:
	VMOVUPS (SI)(CX*1), Y8
	VMOVUPS 32(SI)(CX*1), Y9
	VMULPS  (R11)(CX*1), Y8, Y10
	VADDPS  Y10, Y0, Y0
	VMULPS  32(R11)(CX*1), Y9, Y11
	VADDPS  Y11, Y1, Y1
	VMULPS  (R12)(CX*1), Y8, Y10
	VADDPS  Y10, Y2, Y2
	VMULPS  32(R12)(CX*1), Y9, Y11
	VADDPS  Y11, Y3, Y3
	VMULPS  (R13)(CX*1), Y8, Y10
	VADDPS  Y10, Y4, Y4
	VMULPS  32(R13)(CX*1), Y9, Y11
	VADDPS  Y11, Y5, Y5
	VMULPS  (AX)(CX*1), Y8, Y10
	VADDPS  Y10, Y6, Y6
	VMULPS  32(AX)(CX*1), Y9, Y11
	VADDPS  Y11, Y7, Y7
	ADDQ    $64, CX
	CMPQ    CX, BX
	JLT     blocks

combine:
	COMBINE(Y0, X0, Y1, X1, 0)
	COMBINE(Y2, X2, Y3, X3, 4)
	COMBINE(Y4, X4, Y5, X5, 8)
	COMBINE(Y6, X6, Y7, X7, 12)
	ADDQ $16, R8
	ADDQ $16, R10
	SUBQ $4, R9
	JMP  points

done:
	VZEROUPPER
	RET
