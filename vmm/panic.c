#include "vmm/panic.h"

#include "lib/fmt.h"
#include "vmm/host_irq.h"
#include "vmm/log.h"
#include "vmm/mce.h"
#include "vmm/nmi.h"
#include "vmm/percpu.h"
#include "x86/cpu.h"

#include <stdarg.h>
#include <stdbool.h>

/* Vectors 0-31 are the architecture's exceptions (SDM 6.3.1). */
#define FIRST_INTERRUPT_VECTOR 32

#define BACKTRACE_MAX_FRAMES 16

/* Both defined by linker.ld: the image's link-time origin and its end. */
extern char ImageBase[];
extern char _image_end[];

static bool panicking;

static void print_address(const char *prefix, uint64_t addr)
{
	uint64_t base = (uint64_t)(uintptr_t)ImageBase;

	/*
	 * Image-relative offsets feed straight into
	 * `addr2line -e build/vmm.so OFFSET`, since vmm.so is linked at 0.
	 */
	if (addr >= base && addr < (uint64_t)(uintptr_t)_image_end)
		log_err("%s0x%016llx  vmm.so+0x%llx", prefix, (unsigned long long)addr,
			(unsigned long long)(addr - base));
	else
		log_err("%s0x%016llx", prefix, (unsigned long long)addr);
}

static void backtrace(uint64_t rbp)
{
	if (!percpu_started()) {
		log_err("backtrace: not available before the hand-over");
		return;
	}
	uint64_t stack_low = this_cpu()->stack_low, stack_high = this_cpu()->stack_high;
	log_err("backtrace:");
	/*
	 * Follow saved frame pointers (the image is built with
	 * -fno-omit-frame-pointer) while they stay inside the hypervisor stack
	 * and move towards its top, so a corrupt chain cannot fault or loop.
	 */
	for (unsigned depth = 0; depth < BACKTRACE_MAX_FRAMES; depth++) {
		if (rbp < stack_low || rbp + 16 > stack_high || (rbp & 7))
			return;
		const uint64_t *frame = (const uint64_t *)(uintptr_t)rbp;
		if (!frame[1])
			return;
		print_address("  ", frame[1]);
		if (frame[0] <= rbp)
			return;
		rbp = frame[0];
	}
}

static __attribute__((noreturn)) void halt(void)
{
	log_err("system halted");
	cpu_halt_forever();
}

static void print_frame(const struct exception_frame *f)
{
	log_err("RIP=%016llx RFLAGS=%016llx CS=%04llx SS=%04llx",
		(unsigned long long)f->rip, (unsigned long long)f->rflags,
		(unsigned long long)f->cs, (unsigned long long)f->ss);
	log_err("RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx",
		(unsigned long long)f->rax, (unsigned long long)f->rbx,
		(unsigned long long)f->rcx, (unsigned long long)f->rdx);
	log_err("RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx",
		(unsigned long long)f->rsi, (unsigned long long)f->rdi,
		(unsigned long long)f->rbp, (unsigned long long)f->rsp);
	log_err("R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx",
		(unsigned long long)f->r8, (unsigned long long)f->r9,
		(unsigned long long)f->r10, (unsigned long long)f->r11);
	log_err("R12=%016llx R13=%016llx R14=%016llx R15=%016llx",
		(unsigned long long)f->r12, (unsigned long long)f->r13,
		(unsigned long long)f->r14, (unsigned long long)f->r15);
	log_err("CR0=%016llx CR2=%016llx CR3=%016llx CR4=%016llx",
		(unsigned long long)read_cr0(), (unsigned long long)read_cr2(),
		(unsigned long long)read_cr3(), (unsigned long long)read_cr4());
	print_address("faulting instruction at ", f->rip);
}

/* Enters the panic path once; a fault inside it only stops the CPU. */
static void enter_panic(void)
{
	irq_disable();
	if (panicking)
		cpu_halt_forever();
	panicking = true;
	/* What was queued comes first, then the panic report goes out directly. */
	log_flush();
	log_set_buffer(NULL);
}

void panic(const char *format, ...)
{
	char reason[256];
	va_list ap;

	enter_panic();
	va_start(ap, format);
	fmt_vsnprintf(reason, sizeof(reason), format, ap);
	va_end(ap);
	log_err("PANIC: %s", reason);
	log_err("CR0=%016llx CR3=%016llx CR4=%016llx RFLAGS=%016llx",
		(unsigned long long)read_cr0(), (unsigned long long)read_cr3(),
		(unsigned long long)read_cr4(), (unsigned long long)read_rflags());
	backtrace((uint64_t)(uintptr_t)__builtin_frame_address(0));
	halt();
}

static const char *const exception_names[32] = {
	[0] = "#DE divide error",
	[1] = "#DB debug",
	[2] = "NMI",
	[3] = "#BP breakpoint",
	[4] = "#OF overflow",
	[5] = "#BR bound range",
	[6] = "#UD invalid opcode",
	[7] = "#NM device not available",
	[8] = "#DF double fault",
	[10] = "#TS invalid TSS",
	[11] = "#NP segment not present",
	[12] = "#SS stack fault",
	[13] = "#GP general protection",
	[14] = "#PF page fault",
	[16] = "#MF x87 error",
	[17] = "#AC alignment check",
	[18] = "#MC machine check",
	[19] = "#XM SIMD error",
	[20] = "#VE virtualization exception",
	[21] = "#CP control protection",
};

void exception_dispatch(struct exception_frame *f)
{
	const char *name = f->vector < 32 ? exception_names[f->vector] : NULL;

	if (f->vector == VECTOR_NMI && !panicking) {
		nmi_in_root_mode();
		return;
	}
	if (f->vector == VECTOR_MC && !panicking) {
		if (mce_in_root_mode())
			return;
	}
	/* Interrupts are on only across the idle HLT (vmm/host_irq.h). */
	if (f->vector >= FIRST_INTERRUPT_VECTOR && !panicking) {
		static uint64_t strays;
		if (host_irq_taken((unsigned)f->vector))
			return;
		strays++;
		/* Logged at 1, 2, 4, 8, ...: a stuck source cannot flood the line. */
		if (!(strays & (strays - 1)))
			log_warn("host: interrupt vector %llu from a source the hypervisor did not arm "
				 "(%llu in all)", (unsigned long long)f->vector,
				 (unsigned long long)strays);
		return;
	}
	enter_panic();
	log_err("PANIC: exception in the hypervisor: vector %llu (%s), error code 0x%llx",
		(unsigned long long)f->vector, name ? name : "unexpected interrupt",
		(unsigned long long)f->error_code);
	print_frame(f);
	if (f->vector == VECTOR_MC)
		mce_log_fatal();
	backtrace(f->rbp);
	halt();
}
