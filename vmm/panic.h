/*
 * The end of the line for the hypervisor itself: print why, the registers
 * and a backtrace on the serial console, then stop the CPU. Guests never
 * get here; a misbehaving guest ends only itself.
 */
#ifndef VMM_PANIC_H
#define VMM_PANIC_H

#include <stdint.h>

/* Saved by vmm/exceptions.S, lowest address first. */
struct exception_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	/* Pushed by the CPU (SDM Vol. 3A, 6.14.2: always SS:RSP in 64-bit mode). */
	uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(sizeof(struct exception_frame) == 22 * 8, "matches exceptions.S");

__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *format, ...);

/*
 * Called by the exception stubs for every vector taken in root mode; it
 * returns only for an NMI (vmm/nmi.h), which is not an error.
 */
void exception_dispatch(struct exception_frame *frame);

#endif
