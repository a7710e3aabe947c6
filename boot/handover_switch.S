/*
 * void handover_switch(uint64_t cr3, const void *gdtr, const void *idtr,
 *                      uint64_t stack_top, void (*entry)(void *), void *arg)
 *
 * Loads the hypervisor's page tables, GDT and IDT, reloads every segment
 * register (CS through a far return, since a MOV cannot load CS), loads
 * the TSS and calls entry(arg) on the new stack. Never returns.
 * Both the old and the new page tables map this code 1:1, so execution
 * continues across the CR3 write.
 */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define KERNEL_TSS 0x18

	.text
	.code64
	.globl handover_switch
handover_switch:
	cli
	movq %rdi, %cr3
	lgdt (%rsi)
	lidt (%rdx)
	movq %rcx, %rsp
	movw $KERNEL_DS, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	pushq $KERNEL_CS
	leaq 1f(%rip), %rax
	pushq %rax
	lretq
1:
	movw $KERNEL_TSS, %ax
	ltr %ax
	movq %r9, %rdi
	/* A zero frame pointer ends the panic backtrace here. */
	xorl %ebp, %ebp
	call *%r8
	ud2

	.section .note.GNU-stack, "", @progbits
