/*
 * EXCEPTION_STUBS count, common: one 16-byte entry stub per vector from 0
 * to count-1, so the handler for vector N is at (first stub) + 16 * N.
 * Vectors without a CPU-pushed error code push a zero so that every frame
 * has the same layout; SDM Vol. 3A table 6-1 lists the vectors that push
 * one: 8, 10-14, 17, 21, 29 and 30. Each stub then pushes its vector and
 * jumps to `common`. Used by the hypervisor and by the test guests.
 */
	.macro EXCEPTION_STUBS count, common
	.set vector, 0
	.rept \count
	.balign 16
	.if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	pushq $0
	.endif
	pushq $vector
	jmp \common
	.set vector, vector + 1
	.endr
	.endm
