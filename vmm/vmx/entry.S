/*
 * int vmx_enter_guest(struct guest_regs *regs, int launched, uint64_t *host_rsp)
 *
 * Saves the host's callee-saved registers, records RSP as the VMCS host
 * RSP (only when it differs from *host_rsp, the value this VMCS already
 * holds), loads the guest GPRs and CR2 (only when it changed: MOV to CR2
 * serializes) and executes VMLAUNCH (first entry) or
 * VMRESUME. A VM exit arrives at vmx_exit_entry (the VMCS host RIP) with
 * RSP as recorded; the guest GPRs and CR2 are stored back and 0 is
 * returned. If the entry instruction itself fails, execution falls through
 * and 1 (VMfailValid, ZF) or 2 (VMfailInvalid, CF) is returned (SDM 30.2).
 * Offsets follow struct guest_regs in vmm/vm.h.
 */
#define VMCS_HOST_RSP 0x6c14
#define R_RAX 0
#define R_RBX 8
#define R_RCX 16
#define R_RDX 24
#define R_RSI 32
#define R_RDI 40
#define R_RBP 48
#define R_R8 56
#define R_R9 64
#define R_R10 72
#define R_R11 80
#define R_R12 88
#define R_R13 96
#define R_R14 104
#define R_R15 112
#define R_CR2 120

	.text
	.code64
	.globl vmx_enter_guest
	.globl vmx_exit_entry
vmx_enter_guest:
	pushq %rbp
	movq %rsp, %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi		/* regs, found again at exit */

	cmpq %rsp, (%rdx)
	je 1f
	movq %rsp, (%rdx)
	movq $VMCS_HOST_RSP, %rax
	vmwrite %rsp, %rax
	jbe entry_failed
1:
	movq %cr2, %rax
	cmpq R_CR2(%rdi), %rax
	je 2f
	movq R_CR2(%rdi), %rax
	movq %rax, %cr2
2:
	/*
	 * MDS/TAA: with MD_CLEAR microcode, VERW with a memory operand
	 * overwrites the CPU's buffers; past it only the guest's own registers
	 * are loaded (vmm/speculation.h).
	 */
	cmpb $0, vmx_clear_buffers(%rip)
	je 4f
	verw vmx_verw_selector(%rip)
4:
	testl %esi, %esi
	movq R_RAX(%rdi), %rax
	movq R_RBX(%rdi), %rbx
	movq R_RCX(%rdi), %rcx
	movq R_RDX(%rdi), %rdx
	movq R_RSI(%rdi), %rsi
	movq R_RBP(%rdi), %rbp
	movq R_R8(%rdi), %r8
	movq R_R9(%rdi), %r9
	movq R_R10(%rdi), %r10
	movq R_R11(%rdi), %r11
	movq R_R12(%rdi), %r12
	movq R_R13(%rdi), %r13
	movq R_R14(%rdi), %r14
	movq R_R15(%rdi), %r15
	movq R_RDI(%rdi), %rdi	/* last: it held the pointer; MOV keeps the flags */
	jnz 3f
	vmlaunch
	jmp entry_failed
3:	vmresume
entry_failed:
	/* The flags still hold the failed instruction's result; POP keeps them. */
	popq %rdi
	movl $1, %eax
	jnc restore_host
	movl $2, %eax
	jmp restore_host

vmx_exit_entry:
	pushq %rdi		/* guest RDI; the regs pointer is just above */
	movq 8(%rsp), %rdi
	movq %rax, R_RAX(%rdi)
	movq %rbx, R_RBX(%rdi)
	movq %rcx, R_RCX(%rdi)
	movq %rdx, R_RDX(%rdi)
	movq %rsi, R_RSI(%rdi)
	movq %rbp, R_RBP(%rdi)
	movq %r8, R_R8(%rdi)
	movq %r9, R_R9(%rdi)
	movq %r10, R_R10(%rdi)
	movq %r11, R_R11(%rdi)
	movq %r12, R_R12(%rdi)
	movq %r13, R_R13(%rdi)
	movq %r14, R_R14(%rdi)
	movq %r15, R_R15(%rdi)
	popq %rax
	movq %rax, R_RDI(%rdi)
	movq %cr2, %rax
	movq %rax, R_CR2(%rdi)
	/*
	 * Before root mode's first RET: overwrite the return predictions the
	 * guest's CALLs left, all 32 without eIBRS, the one PBRSB leaves with
	 * it. Each CALL's own return address is the int3 that stops a
	 * speculative RET; the stack gets its room back at the end.
	 */
	movl vmx_rsb_fill_entries(%rip), %ecx
	cmpl $1, %ecx
	jb 7f
	je 6f
	.rept 32
	call 5f
	int3
5:
	.endr
	addq $(8 * 32), %rsp
	jmp 8f
6:	call 5f
	int3
5:	addq $8, %rsp
8:	lfence
7:
	popq %rdi
	xorl %eax, %eax
restore_host:
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

	/* The defences' switches, set at VMXON (vmm/vmx/vmx.h). */
	.data
	.balign 4
	.globl vmx_rsb_fill_entries
	.hidden vmx_rsb_fill_entries
vmx_rsb_fill_entries:
	.long 0
	.globl vmx_verw_selector
	.hidden vmx_verw_selector
vmx_verw_selector:
	.word 0
	.globl vmx_clear_buffers
	.hidden vmx_clear_buffers
vmx_clear_buffers:
	.byte 0

	.section .note.GNU-stack, "", @progbits
