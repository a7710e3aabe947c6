/*
 * The switch: push the callee-saved registers on the current stack, keep
 * its pointer, load the other stack's pointer and pop its registers. A
 * fresh fiber's stack is built to look like one switched out just before
 * fiber_trampoline, with its fiber in RBX.
 */
#include "lib/fiber.h"

#include <stdint.h>

void fiber_switch(void **save_sp, void *load_sp);
void fiber_trampoline(void);
void fiber_run(struct fiber *f);

__asm__(".pushsection .text\n"
	".globl fiber_switch\n"
	".type fiber_switch, @function\n"
	"fiber_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size fiber_switch, . - fiber_switch\n"
	/* Entered by fiber_switch's ret with RSP 16-byte aligned: call keeps the ABI's alignment. */
	".globl fiber_trampoline\n"
	".type fiber_trampoline, @function\n"
	"fiber_trampoline:\n"
	"	movq %rbx, %rdi\n"
	"	call fiber_run\n"
	"	ud2\n"
	".size fiber_trampoline, . - fiber_trampoline\n"
	".popsection\n");

/* Callee-saved registers fiber_switch pops, then its return address. */
enum { SAVED_REGS = 6 };

void fiber_run(struct fiber *f)
{
	f->entry(f->arg);
	f->finished = true;
	/* Never resumed again: this stack is abandoned here. */
	fiber_switch(&f->sp, f->caller_sp);
}

void fiber_init(struct fiber *f, void *stack, size_t size, void (*entry)(void *), void *arg)
{
	uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
	/* fiber_switch's ret pops the trampoline's address from top - 8, leaving RSP at top. */
	void **sp = (void **)top - 1 - SAVED_REGS;

	*f = (struct fiber){ .entry = entry, .arg = arg };
	for (int i = 0; i < SAVED_REGS; i++)
		sp[i] = NULL;
	/* Popped in the order r15, r14, r13, r12, rbx, rbp: rbx is the fifth. */
	sp[4] = f;
	sp[SAVED_REGS] = (void *)fiber_trampoline;
	f->sp = sp;
}

bool fiber_resume(struct fiber *f)
{
	if (f->finished || f->running)
		return false;
	f->running = true;
	fiber_switch(&f->caller_sp, f->sp);
	f->running = false;
	return !f->finished;
}

void fiber_yield(struct fiber *f)
{
	fiber_switch(&f->sp, f->caller_sp);
}
