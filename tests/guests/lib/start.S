/*
 * Entry of the 64-bit test guests: keep the boot arguments, install an
 * IDT whose handlers resume at fault_resume when a *_safe wrapper armed it
 * (and report any other exception), run main, leave through the exit port.
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	/* RAM (RDI bytes from 0) must hold the zeroed data beyond the image. */
	leaq __bss_end(%rip), %rax
	cmpq %rdi, %rax
	ja 1f
	movq %rsi, boot_cmdline(%rip)
	movq %rdi, guest_ram_bytes(%rip)
	call idt_install
	call main
	call guest_exit
1:	call ram_too_small

#include "x86/exception_stubs.S"

/* One 16-byte stub per exception vector 0-31, as in the hypervisor. */
	.text
	.balign 16
	.globl guest_exception_stubs
guest_exception_stubs:
	EXCEPTION_STUBS 32, exception_common

exception_common:
	movq fault_resume(%rip), %rax
	testq %rax, %rax
	jz 1f
	movq (%rsp), %rcx
	movl %ecx, fault_vector(%rip)
	movq 16(%rsp), %rcx	/* the RIP the exception pushed */
	movq %rcx, fault_rip(%rip)
	movq 32(%rsp), %rcx	/* the RFLAGS the exception pushed */
	movq %rcx, fault_rflags(%rip)
	/* The recovery point runs without single-stepping (a caught #DB trap). */
	andq $~0x100, 32(%rsp)
	movq $0, fault_resume(%rip)
	addq $16, %rsp		/* vector and error code */
	movq %rax, (%rsp)	/* iret to the wrapper's recovery point */
	iretq
1:	movq (%rsp), %rdi
	call unexpected_exception

/* Interrupt entry for the upcall vector: C handler, all registers kept. */
	.globl guest_irq_stub
guest_irq_stub:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	call guest_irq
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	iretq

/*
 * The *_safe wrappers: SAFE_ARM points fault_resume at the wrapper's label
 * 1, where a fault resumes; SAFE_RETURN returns NO_FAULT (0xff) when the
 * instruction went through, the vector otherwise.
 */
.macro SAFE_ARM
	leaq 1f(%rip), %rax
	movq %rax, fault_resume(%rip)
.endm
.macro SAFE_RETURN
	movq $0, fault_resume(%rip)
	movl $0xff, %eax
	ret
1:	movl fault_vector(%rip), %eax
	ret
.endm

/* unsigned rdmsr_safe(uint32_t msr, uint64_t *value) */
	.globl rdmsr_safe
rdmsr_safe:
	SAFE_ARM
	movl %edi, %ecx
	rdmsr
	shlq $32, %rdx
	movl %eax, %eax
	orq %rdx, %rax
	movq %rax, (%rsi)
	SAFE_RETURN

/* unsigned wrmsr_safe(uint32_t msr, uint64_t value) */
	.globl wrmsr_safe
wrmsr_safe:
	SAFE_ARM
	movl %edi, %ecx
	movl %esi, %eax
	movq %rsi, %rdx
	shrq $32, %rdx
	wrmsr
	SAFE_RETURN

/* unsigned rdpmc_safe(uint32_t counter) */
	.globl rdpmc_safe
rdpmc_safe:
	SAFE_ARM
	movl %edi, %ecx
	rdpmc
	SAFE_RETURN

/* unsigned monitor_safe(const void *address) */
	.globl monitor_safe
monitor_safe:
	SAFE_ARM
	movq %rdi, %rax
	xorl %ecx, %ecx
	xorl %edx, %edx
	monitor
	SAFE_RETURN

/* unsigned mwait_safe(void) */
	.globl mwait_safe
mwait_safe:
	SAFE_ARM
	xorl %eax, %eax
	xorl %ecx, %ecx
	mwait
	SAFE_RETURN

/* unsigned write_cr0_safe(uint64_t value), write_cr4_safe(uint64_t value) */
	.globl write_cr0_safe
write_cr0_safe:
	SAFE_ARM
	movq %rdi, %cr0
	SAFE_RETURN

	.globl write_cr4_safe
write_cr4_safe:
	SAFE_ARM
	movq %rdi, %cr4
	SAFE_RETURN

/* unsigned xsetbv_safe(uint32_t index, uint64_t value) */
	.globl xsetbv_safe
xsetbv_safe:
	SAFE_ARM
	movl %edi, %ecx
	movl %esi, %eax
	movq %rsi, %rdx
	shrq $32, %rdx
	xsetbv
	SAFE_RETURN

/* unsigned write32_safe(volatile uint32_t *address, uint32_t value) */
	.globl write32_safe
write32_safe:
	SAFE_ARM
	movl %esi, (%rdi)
	SAFE_RETURN

/* unsigned vmxon_safe(uint64_t region) */
	.globl vmxon_safe
vmxon_safe:
	SAFE_ARM
	pushq %rdi
	vmxon (%rsp)
	popq %rdi
	movq $0, fault_resume(%rip)
	movl $0xff, %eax
	ret
1:	popq %rdi
	movl fault_vector(%rip), %eax
	ret

	.data
	.balign 8
	.globl fault_resume
fault_resume: .quad 0
	.globl fault_rflags
fault_rflags: .quad 0
	.globl fault_rip
fault_rip: .quad 0
	.globl fault_vector
fault_vector: .long 0
	.balign 8
	.globl boot_cmdline
boot_cmdline: .quad 0

	.section .note.GNU-stack, "", @progbits
