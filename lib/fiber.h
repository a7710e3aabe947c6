/*
 * Fibers: cooperative threads of control, each on a stack of its own,
 * switched only where the code asks (fiber_yield). The management VM runs
 * each IVMGuestOS call on one, so a call that waits seconds for a guest
 * agent leaves the line, the events and the other VMs served in between
 * while its code stays a straight sequence of requests and answers.
 *
 * x86-64 System V only: a switch saves what that ABI makes callee-saved
 * (RBX, RBP, R12-R15 and the stack pointer; x87 and MXCSR control words are
 * left alone, as nothing here changes them). Freestanding, and on the host
 * for the unit tests.
 */
#ifndef LIB_FIBER_H
#define LIB_FIBER_H

#include <stdbool.h>
#include <stddef.h>

struct fiber {
	void *sp;               /* saved stack pointer while switched out */
	void *caller_sp;        /* the resumer's, while running */
	void (*entry)(void *);
	void *arg;
	bool running;           /* on its stack now */
	bool finished;          /* entry returned: never resumed again */
};

/*
 * Prepares f to run entry(arg) on stack[0..size) at its first resume.
 * size must hold the entry's deepest frames plus an interrupt's.
 */
void fiber_init(struct fiber *f, void *stack, size_t size, void (*entry)(void *), void *arg);

/* Runs f until it yields or its entry returns; false once it has finished. */
bool fiber_resume(struct fiber *f);

/* From inside f: back to whoever resumed it, until the next resume. */
void fiber_yield(struct fiber *f);

#endif
