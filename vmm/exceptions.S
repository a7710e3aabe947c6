/*
 * Interrupt and exception entry points of the hypervisor's IDT.
 *
 * One 16-byte stub per vector, so the IDT entry for vector N is
 * exception_stubs + 16 * N. Vectors without a CPU-pushed error code push
 * a zero so that every frame has the same layout (struct exception_frame).
 * SDM Vol. 3A table 6-1 lists the vectors that push an error code:
 * 8, 10-14, 17, 21, 29 and 30.
 */
	.text
	.code64
	.globl exception_stubs
	.balign 16
exception_stubs:
	.set vector, 0
	.rept 256
	.balign 16
	.if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	pushq $0
	.endif
	pushq $vector
	jmp exception_common
	.set vector, vector + 1
	.endr

exception_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	/*
	 * The CPU aligned RSP to 16 bytes before pushing its 5 words (SDM 6.14.2);
	 * with the vector, the error code and 15 registers the frame is 22
	 * words, so RSP is 16-byte aligned here as the ABI wants at a call.
	 */
	movq %rsp, %rdi
	cld
	call exception_dispatch
	ud2

	.section .note.GNU-stack, "", @progbits
