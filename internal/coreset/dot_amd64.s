#include "textflag.h"

// func dotSSE(x, y []float32) float32
// Same summation order as dotGeneric: X0..X3 hold lanes 0-3, 4-7, 8-11, 12-15.
TEXT ·dotSSE(SB), NOSPLIT, $0-52
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	XORPS X0, X0
	XORPS X1, X1
	XORPS X2, X2
	XORPS X3, X3
	CMPQ CX, $16
	JLT  combine

lanes:
	MOVUPS 0(SI), X4
	MOVUPS 0(DI), X8
	MULPS  X8, X4
	ADDPS  X4, X0
	MOVUPS 16(SI), X5
	MOVUPS 16(DI), X9
	MULPS  X9, X5
	ADDPS  X5, X1
	MOVUPS 32(SI), X6
	MOVUPS 32(DI), X10
	MULPS  X10, X6
	ADDPS  X6, X2
	MOVUPS 48(SI), X7
	MOVUPS 48(DI), X11
	MULPS  X11, X7
	ADDPS  X7, X3
	ADDQ   $64, SI
	ADDQ   $64, DI
	SUBQ   $16, CX
	CMPQ   CX, $16
	JGE    lanes

combine:
	ADDPS   X1, X0     // L[l] + L[4+l]
	ADDPS   X3, X2     // L[8+l] + L[12+l]
	ADDPS   X2, X0     // c_l
	MOVHLPS X0, X1     // X1[0:2] = c_2, c_3
	ADDPS   X1, X0     // X0[0] = c_0+c_2, X0[1] = c_1+c_3
	MOVAPS  X0, X1
	SHUFPS  $0x55, X1, X1
	ADDSS   X1, X0     // (c_0+c_2) + (c_1+c_3)
	TESTQ   CX, CX
	JEQ     done

tail:
	MOVSS 0(SI), X1
	MULSS 0(DI), X1
	ADDSS X1, X0
	ADDQ  $4, SI
	ADDQ  $4, DI
	DECQ  CX
	JNZ   tail

done:
	MOVSS X0, ret+48(FP)
	RET
