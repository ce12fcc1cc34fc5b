#include "textflag.h"

// func loopAsm(calls *Call, ncalls int, count *uint64, inc uint64, stop *uint32, iters int) (errno uintptr)
//
// Up to iters iterations: each issues the calls in order (Call: Trap at 0,
// Args at 8..48, Flags at 56; 64 bytes), then adds inc to *count (a plain
// add: this loop is the counter's only writer) and ends when *stop != 0.
// A failing call without IgnoreErr repeats on EINTR and otherwise returns
// its errno. SYSCALL clobbers CX and R11; R14 (g) and R15 are not used.
TEXT ·loopAsm(SB), NOSPLIT, $0-56
	MOVQ	iters+40(FP), BX

iteration:
	MOVQ	calls+0(FP), R12
	MOVQ	ncalls+8(FP), R13
	SHLQ	$6, R13
	ADDQ	R12, R13

call:
	MOVQ	0(R12), AX
	MOVQ	8(R12), DI
	MOVQ	16(R12), SI
	MOVQ	24(R12), DX
	MOVQ	32(R12), R10
	MOVQ	40(R12), R8
	MOVQ	48(R12), R9
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	TESTQ	$1, 56(R12)
	JNE	ok
	NEGQ	AX
	CMPQ	AX, $4 // EINTR
	JEQ	call
	MOVQ	AX, errno+48(FP)
	RET

ok:
	ADDQ	$64, R12
	CMPQ	R12, R13
	JCS	call
	MOVQ	count+16(FP), R12
	MOVQ	inc+24(FP), AX
	ADDQ	AX, 0(R12)
	MOVQ	stop+32(FP), R12
	CMPL	0(R12), $0
	JNE	done
	DECQ	BX
	JNE	iteration

done:
	MOVQ	$0, errno+48(FP)
	RET
