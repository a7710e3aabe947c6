/*
 * Interrupt and exception entry points of the hypervisor's IDT: one stub
 * per vector (include/x86/exception_stubs.S), then one common path that
 * saves the registers as struct exception_frame.
 */
#include "x86/exception_stubs.S"

	.text
	.code64
	.globl exception_stubs
	.balign 16
exception_stubs:
	EXCEPTION_STUBS 256, exception_common

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
	/* It returned: an NMI, counted (vmm/nmi.c); back where it struck. */
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp		/* vector and error code */
	iretq

	.section .note.GNU-stack, "", @progbits
