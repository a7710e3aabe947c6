/*
 * Architectural conformance: what a guest sees must be what an x86 CPU
 * does (Intel SDM Vol. 3A), wherever the hypervisor takes part. Each area
 * checks the rules a guest OS other than our Linux relies on: leaving and
 * re-entering long mode and the 32-bit paging modes (CR0/CR4 as one
 * register, whoever owns a bit), hardware task switches (32-bit TSSs, and
 * a 32-bit task calling a 16-bit one), CR0/CR4
 * reserved bits, CR0.WP,
 * IA32_MISC_ENABLE, NMIs, disabling and re-enabling the local APIC,
 * fixed and level-triggered interrupts with their priorities and EOIs,
 * x2APIC mode,
 * IA32_TSC_ADJUST, RDTSCP and IA32_TSC_AUX, the
 * single-step trap after each instruction the hypervisor completes for the
 * guest (and a data breakpoint held by MOV SS across one), the TSS T bit,
 * and XSAVE: XSETBV's rules, leaf 0DH, IA32_XSS, and AVX/AVX-512
 * registers that stay the guest's through the whole run while other VMs
 * use theirs. Ends with "conform: N passed, N failed".
 */
#include "guest.h"

#include "x86/msr.h"

#define APIC_BASE_EN (1ULL << 11)
#define APIC_BASE_EXTD (1ULL << 10)
#define DR6_BS (1ULL << 14)
#define DR6_B0 (1ULL << 0)
#define PTE_RW 2ULL

static unsigned passed, failed_count;

static void expect(bool ok, const char *name)
{
	if (check(ok, name))
		passed++;
	else
		failed_count++;
}

/* ---- Modes: long mode off and on again, 32-bit and PAE paging between ---- */

/*
 * From 64-bit code to the 32-bit code segment 0x18 of the GDT just loaded
 * (a far return), then paging off, which leaves IA-32e mode (SDM 9.8.5.4).
 */
#define FROM_64BIT_TO_32BIT_WITHOUT_PAGING \
	"	pushq $0x18\n"                    \
	"	leaq 1f(%rip), %rax\n"            \
	"	pushq %rax\n"                     \
	"	lretq\n"                          \
	"	.code32\n"                        \
	"1:	movl %cr0, %eax\n"                \
	"	andl $0x7fffffff, %eax\n"         \
	"	movl %eax, %cr0\n"

/*
 * mode_trip(pd32, pae_pdpt, results): from 64-bit mode to compatibility
 * mode (a 32-bit code segment of our own GDT), paging off (which leaves
 * IA-32e mode), EFER.LME off, 32-bit paging with 4-MiB pages, paging off,
 * PAE paging, paging off, then back the way it came. Each CR0 write that
 * turns paging on clears CR0.NE, a bit the hypervisor owns, so it exits
 * and is applied by the hypervisor; the ones that turn it off set NE
 * again. results[]: EFER after LME off, CR0 and a marker under 32-bit
 * paging, CR0 and a marker under PAE paging, EFER after LME on again.
 */
__asm__(
	"	.text\n"
	"	.code64\n"
	"	.globl mode_trip\n"
	"mode_trip:\n"
	"	pushq %rbx\n"
	"	pushq %rbp\n"
	"	movq %rsp, trip_rsp(%rip)\n"
	"	movq %cr3, %rax\n"
	"	movq %rax, trip_cr3(%rip)\n"
	"	movq %cr0, %rax\n"
	"	movq %rax, trip_cr0(%rip)\n"
	"	movq %cr4, %rax\n"
	"	movq %rax, trip_cr4(%rip)\n"
	"	movl %edx, %ebp\n"
	"	lgdt trip_gdtr(%rip)\n"
	FROM_64BIT_TO_32BIT_WITHOUT_PAGING
	"	movl $0xc0000080, %ecx\n"
	"	rdmsr\n"
	"	andl $0xfffffeff, %eax\n"
	"	wrmsr\n"
	"	rdmsr\n"
	"	movl %eax, 0(%ebp)\n"
	"	movl %cr4, %eax\n"
	"	andl $0xffffffdf, %eax\n"
	"	orl $0x10, %eax\n"
	"	movl %eax, %cr4\n"
	"	movl %edi, %cr3\n"
	"	movl $0x80010001, %eax\n"
	"	movl %eax, %cr0\n"
	"	movl %cr0, %eax\n"
	"	movl %eax, 4(%ebp)\n"
	"	movl $0x32, 8(%ebp)\n"
	"	movl $0x00010031, %eax\n"
	"	movl %eax, %cr0\n"
	"	movl %cr4, %eax\n"
	"	orl $0x20, %eax\n"
	"	movl %eax, %cr4\n"
	"	movl %esi, %cr3\n"
	"	movl $0x80010001, %eax\n"
	"	movl %eax, %cr0\n"
	"	movl %cr0, %eax\n"
	"	movl %eax, 12(%ebp)\n"
	"	movl $0xae, 16(%ebp)\n"
	"	movl $0x00010031, %eax\n"
	"	movl %eax, %cr0\n"
	"	movl trip_cr4, %eax\n"
	"	movl %eax, %cr4\n"
	"	movl trip_cr3, %eax\n"
	"	movl %eax, %cr3\n"
	"	movl $0xc0000080, %ecx\n"
	"	rdmsr\n"
	"	orl $0x100, %eax\n"
	"	wrmsr\n"
	"	rdmsr\n"
	"	movl %eax, 20(%ebp)\n"
	"	movl trip_cr0, %eax\n"
	"	movl %eax, %cr0\n"
	"	ljmp $0x08, $2f\n"
	"	.code64\n"
	"2:	movq trip_rsp(%rip), %rsp\n"
	"	popq %rbp\n"
	"	popq %rbx\n"
	"	ret\n"
	"	.data\n"
	"	.balign 8\n"
	"trip_gdt:\n"
	"	.quad 0\n"
	"	.quad 0x00af9b000000ffff\n" /* 0x08: 64-bit code, as the boot GDT */
	"	.quad 0x00cf93000000ffff\n" /* 0x10: flat data, as the boot GDT */
	"	.quad 0x00cf9b000000ffff\n" /* 0x18: 32-bit code */
	"trip_gdtr:\n"
	"	.word 4 * 8 - 1\n"
	"	.quad trip_gdt\n"
	"	.balign 8\n"
	"trip_rsp: .quad 0\n"
	"trip_cr0: .quad 0\n"
	"trip_cr3: .quad 0\n"
	"trip_cr4: .quad 0\n"
	"	.text\n");

void mode_trip(uint32_t pd32, uint32_t pae_pdpt, volatile uint32_t *results);

static uint32_t pd32[1024] __attribute__((aligned(4096)));
static uint64_t pae_pdpt[4] __attribute__((aligned(32)));
static volatile uint32_t trip_results[6];

/* The boot page tables' directory for the first GiB (vmm/guest_boot.c): PML4[0] -> PDPT[0]. */
static uint64_t *first_gib_directory(void)
{
	const uint64_t *pml4 = (const uint64_t *)(read_cr3() & ~0xfffULL);
	const uint64_t *pdpt = (const uint64_t *)(pml4[0] & 0xffffffffff000ULL);
	return (uint64_t *)(pdpt[0] & 0xffffffffff000ULL);
}

static void check_modes(void)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer;

	for (uint32_t i = 0; i < 1024; i++)
		pd32[i] = (i << 22) | 0x83; /* present, writable, 4 MiB */
	pae_pdpt[0] = ((uint64_t)first_gib_directory()) | 1;
	mode_trip((uint32_t)(uintptr_t)pd32, (uint32_t)(uintptr_t)pae_pdpt, trip_results);
	rdmsr_safe(MSR_IA32_EFER, &efer);
	expect(!(trip_results[0] & (EFER_LME | EFER_LMA)),
	       "modes: CR0.PG off leaves IA-32e mode, then EFER.LME clears");
	expect((trip_results[1] & ~0x10U) == 0x80010001U && trip_results[2] == 0x32,
	       "modes: 32-bit paging with CR4.PAE changed natively (CR0 = 80010001)");
	expect((trip_results[3] & ~0x10U) == 0x80010001U && trip_results[4] == 0xae,
	       "modes: PAE paging outside long mode, its PDPTEs loaded at the CR0 write");
	expect((trip_results[5] & (EFER_LME | EFER_LMA)) == EFER_LME,
	       "modes: EFER.LME set again with paging off, LMA still clear");
	expect((efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA) && read_cr0() == cr0 &&
		       read_cr4() == cr4,
	       "modes: back in 64-bit mode with CR0, CR4 and EFER as before");
}

/* ---- Hardware task switches: 32-bit TSSs, and a 16-bit one ---- */

/*
 * task_trip(gdtr, idtr32): into 32-bit protected mode with paging off
 * (which leaves IA-32e mode; EFER.LME stays set), then task A (LTR 0x20):
 * CALL to task B, which IRETs back (NT, back link); JMP to B, which JMPs
 * back to A; INT 0x40 through a task gate in the IDT to task C, which
 * IRETs back (C's TSS has its T bit set: a #DB with DR6.BT comes before
 * C's first instruction, taken by an interrupt gate); a #GP (a selector
 * past the GDT limit) through a task gate to
 * task D, which takes the error code from its stack, moves A past the
 * faulting instruction and IRETs. Then a CALL to task E, whose TSS is a
 * 16-bit one (SDM Vol. 3A 8.6) and whose code a 16-bit code segment
 * based at task_e_entry (IP 0): it counts its run, records AX and FLAGS
 * as it starts with them, scribbles on ESI, and IRETs back; A keeps ESI
 * and EDI in task_a_esi/edi. Then a JMP to task F, which starts in
 * virtual-8086 mode (its TSS's EFLAGS.VM) and comes back by INT 0x41
 * through a task gate to A, which notes its EFLAGS (NT set by the gate)
 * and clears NT. Then TR into task_tr, paging on again (IA-32e mode), back
 * to 64-bit code.
 */
__asm__(
	"	.text\n"
	"	.code64\n"
	"	.globl task_trip\n"
	"task_trip:\n"
	"	pushq %rbx\n"
	"	pushq %rbp\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, task_rsp(%rip)\n"
	"	sidt task_idtr64(%rip)\n"
	"	movq %cr0, %rax\n"
	"	movq %rax, task_cr0(%rip)\n"
	"	lgdt (%rdi)\n"
	"	movq %rsi, %rbx\n"
	FROM_64BIT_TO_32BIT_WITHOUT_PAGING
	"	movw $0x10, %ax\n"
	"	movw %ax, %ds\n"
	"	movw %ax, %es\n"
	"	movw %ax, %ss\n"
	"	movw %ax, %fs\n"
	"	movw %ax, %gs\n"
	"	lidt (%ebx)\n"
	"	movw $0x20, %ax\n"
	"	ltr %ax\n"
	"	lcall $0x28, $0\n"
	"	ljmp $0x28, $0\n"
	"	int $0x40\n"
	"	movw $0x7f8, %ax\n"
	"	movw %ax, %ds\n"
	"	movw $0x10, %ax\n"
	"	movw %ax, %ds\n"
	"	movl $0x89abcdef, %esi\n"
	"	movl $0x01234567, %edi\n"
	"	lcall $0x40, $0\n"
	"	movl %esi, task_a_esi\n"
	"	movl %edi, task_a_edi\n"
	"	ljmp $0x58, $0\n"
	"	pushfl\n"
	"	popl task_a_eflags_after_v86\n"
	"	pushfl\n"
	"	andl $~0x4000, (%esp)\n"
	"	popfl\n"
	"	str %ax\n"
	"	movzwl %ax, %eax\n"
	"	movl %eax, task_tr\n"
	"	movl task_cr0, %eax\n"
	"	movl %eax, %cr0\n"
	"	ljmp $0x08, $2f\n"
	/* Task B: entered by CALL, back by IRET; entered again by JMP, back by JMP. */
	"	.globl task_b_entry\n"
	"task_b_entry:\n"
	"	incl task_b_runs\n"
	"	iretl\n"
	"	incl task_b_runs\n"
	"	ljmp $0x20, $0\n"
	/* Task C: INT 0x40 through a task gate; its TSS's T bit raises #DB first. */
	"	.globl task_c_entry\n"
	"task_c_entry:\n"
	"	incl task_c_runs\n"
	"	iretl\n"
	"	jmp task_c_entry\n"
	/* #DB through an interrupt gate, in the task it hit: DR6 and EIP kept, DR6 cleared. */
	"	.globl task_db_handler\n"
	"task_db_handler:\n"
	"	pushl %eax\n"
	"	movl %dr6, %eax\n"
	"	movl %eax, task_db_dr6\n"
	"	movl 4(%esp), %eax\n"
	"	movl %eax, task_db_eip\n"
	"	xorl %eax, %eax\n"
	"	movl %eax, %dr6\n"
	"	popl %eax\n"
	"	iretl\n"
	/* Task D: #GP through a task gate, its error code on D's stack. */
	"	.globl task_d_entry\n"
	"task_d_entry:\n"
	"	popl task_gp_error\n"
	"	addl $2, tss_a + 32\n"
	"	iretl\n"
	"	jmp task_d_entry\n"
	/* Task E: 16-bit code; DS and SS are its 256-byte area (task_e_area). */
	"	.code16\n"
	"	.globl task_e_entry, task_e_resume\n"
	"task_e_entry:\n"
	"	incw 0\n"
	"	movw %ax, 2\n"
	"	pushfw\n"
	"	popw 4\n"
	"	movl $0x5555aaaa, %esi\n"
	"	iret\n"
	"task_e_resume:\n"
	"	jmp task_e_entry\n"
	/*
	 * Task F's code, copied below 1 MiB (V86_SEGMENT): virtual-8086 mode,
	 * IOPL 3, so INT 0x41 goes through the IDT, to a task gate back to A.
	 */
	"	.globl task_f_code, task_f_after_int, task_f_code_end\n"
	"task_f_code:\n"
	"	movw $0x8086, %ax\n"
	"	movw %ax, 0x80\n"
	"	movw %cs, %ax\n"
	"	movw %ax, 0x82\n"
	"	int $0x41\n"
	"task_f_after_int:\n"
	"	jmp task_f_code\n"
	"task_f_code_end:\n"
	"	.code64\n"
	"2:	lidt task_idtr64(%rip)\n"
	"	movq task_rsp(%rip), %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbp\n"
	"	popq %rbx\n"
	"	ret\n"
	"	.data\n"
	"	.balign 8\n"
	"task_rsp: .quad 0\n"
	"task_cr0: .quad 0\n"
	"task_idtr64: .quad 0, 0\n"
	"	.text\n");

struct pseudo_descriptor {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

void task_trip(const struct pseudo_descriptor *gdtr, const struct pseudo_descriptor *idtr32);
extern const char task_b_entry[], task_c_entry[], task_d_entry[], task_db_handler[];
extern const char task_e_entry[], task_e_resume[];
extern const char task_f_code[], task_f_after_int[], task_f_code_end[];

enum { TSS_WORDS = 26, TSS_EIP = 8, TSS_EFLAGS = 9, TSS_ESP = 14, TSS_ES = 18, TSS_LDT = 24,
       TSS_T = 25 };
uint32_t tss_a[TSS_WORDS], tss_b[TSS_WORDS], tss_c[TSS_WORDS], tss_d[TSS_WORDS];
static uint32_t tss_f[TSS_WORDS];
volatile uint32_t task_b_runs, task_c_runs, task_gp_error, task_tr, task_db_dr6, task_db_eip;
volatile uint32_t task_a_esi, task_a_edi, task_a_eflags_after_v86;
static uint64_t task_gdt[12];
/*
 * Task F's segment in virtual-8086 mode: code at 0x9000, its data words
 * at 0x9080, stack below 0x9100; free guest RAM under the 64-bit guest's
 * stack, which grows down from 1 MiB (vmm/guest_boot.h).
 */
#define V86_SEGMENT 0x0900u
#define V86_BASE ((uintptr_t)V86_SEGMENT << 4)
#define RFLAGS_VM (1U << 17)
#define RFLAGS_IOPL3 (3U << 12)
/* The 16-bit TSS (SDM 8.6), in words: IP, FLAGS, AX..DI, ES CS SS DS, LDT. */
enum { TSS16_WORDS = 22, TSS16_IP = 7, TSS16_FLAGS = 8, TSS16_AX = 9, TSS16_SP = 13,
       TSS16_ES = 17 };
static uint16_t tss_e[TSS16_WORDS];
/* Task E's data and stack: its run count, AX and FLAGS at words 0-2. */
static volatile uint16_t task_e_area[128];
static uint64_t idt32[0x42];
static uint8_t task_stacks[3][512] __attribute__((aligned(16)));

/* A descriptor (SDM 3.4.5) with a byte-granular limit and base below 4 GiB; flags: G D/B L AVL. */
static uint64_t descriptor(const volatile void *at, uint32_t limit, unsigned access,
			   unsigned flags)
{
	uint64_t base = (uint64_t)(uintptr_t)at;
	return (limit & 0xffff) | (base & 0xffffff) << 16 | (uint64_t)access << 40 |
	       (uint64_t)(((limit >> 16) & 0xf) | flags) << 48 | (base >> 24) << 56;
}

static uint64_t tss_descriptor(const uint32_t *tss)
{
	/* Limit 0x67, present 32-bit available TSS (type 9), DPL 0. */
	return descriptor(tss, 0x67, 0x89, 0);
}

static void task_init(uint32_t *tss, const char *entry, uint8_t *stack_top)
{
	for (unsigned i = 0; i < TSS_WORDS; i++)
		tss[i] = 0;
	tss[TSS_EIP] = (uint32_t)(uintptr_t)entry;
	tss[TSS_EFLAGS] = 2;
	tss[TSS_ESP] = (uint32_t)(uintptr_t)stack_top;
	for (unsigned s = 0; s < 6; s++)
		tss[TSS_ES + s] = s == 1 ? 0x18 : 0x10; /* ES CS SS DS FS GS */
}

static unsigned tss_type(unsigned index)
{
	return (unsigned)(task_gdt[index] >> 40) & 0xf;
}

static void check_task_switches(void)
{
	task_gdt[1] = 0x00af9b000000ffffULL; /* 0x08: 64-bit code */
	task_gdt[2] = 0x00cf93000000ffffULL; /* 0x10: flat data */
	task_gdt[3] = 0x00cf9b000000ffffULL; /* 0x18: 32-bit code */
	task_gdt[4] = tss_descriptor(tss_a);
	task_gdt[5] = tss_descriptor(tss_b);
	task_gdt[6] = tss_descriptor(tss_c);
	task_gdt[7] = tss_descriptor(tss_d);
	/*
	 * 0x40: task E's 16-bit TSS (type 1, limit 2BH: 44 bytes); 0x48 its
	 * 16-bit code (D clear) and 0x50 its data and stack (B clear, so SP).
	 */
	task_gdt[8] = descriptor(tss_e, 0x2b, 0x81, 0);
	task_gdt[9] = descriptor(task_e_entry, 0xffff, 0x9b, 0);
	task_gdt[10] = descriptor(task_e_area, sizeof(task_e_area) - 1, 0x93, 0);
	for (unsigned i = 0; i < TSS16_WORDS; i++)
		tss_e[i] = 0;
	tss_e[TSS16_FLAGS] = 2;
	tss_e[TSS16_AX] = 0x1616;
	tss_e[TSS16_SP] = sizeof(task_e_area);
	for (unsigned s = 0; s < 4; s++)
		tss_e[TSS16_ES + s] = s == 1 ? 0x48 : 0x50; /* ES CS SS DS */
	task_init(tss_b, task_b_entry, task_stacks[0] + sizeof(task_stacks[0]));
	task_init(tss_c, task_c_entry, task_stacks[1] + sizeof(task_stacks[1]));
	task_init(tss_d, task_d_entry, task_stacks[2] + sizeof(task_stacks[2]));
	/* Task gates (type 5, present): INT 0x40 to C (0x30), #GP to D (0x38). */
	idt32[0x40] = 0x30ULL << 16 | 0x85ULL << 40;
	idt32[VECTOR_GP] = 0x38ULL << 16 | 0x85ULL << 40;
	/* #DB: a 32-bit interrupt gate (type 14, present) to code segment 0x18. */
	uint64_t db = (uint64_t)(uintptr_t)task_db_handler;
	idt32[VECTOR_DB] = (db & 0xffff) | 0x18ULL << 16 | 0x8eULL << 40 | (db >> 16) << 48;
	tss_c[TSS_T] = 1;
	/* 0x58: task F, whose TSS starts it in virtual-8086 mode; INT 0x41 (DPL 3) to task A. */
	task_gdt[11] = tss_descriptor(tss_f);
	task_init(tss_f, 0, (uint8_t *)0x100);
	tss_f[TSS_EFLAGS] = RFLAGS_VM | RFLAGS_IOPL3 | 2;
	for (unsigned s = 0; s < 6; s++)
		tss_f[TSS_ES + s] = V86_SEGMENT;
	volatile uint8_t *v86 = (volatile uint8_t *)V86_BASE;
	for (unsigned i = 0; i < 0x100; i++)
		v86[i] = i < (unsigned)(task_f_code_end - task_f_code) ? (uint8_t)task_f_code[i] : 0;
	idt32[0x41] = 0x20ULL << 16 | 0xe5ULL << 40;
	const struct pseudo_descriptor gdtr = { sizeof(task_gdt) - 1, (uint64_t)(uintptr_t)task_gdt };
	const struct pseudo_descriptor idtr = { sizeof(idt32) - 1, (uint64_t)(uintptr_t)idt32 };

	task_trip(&gdtr, &idtr);
	expect(task_b_runs == 2 && tss_b[0] == 0x20,
	       "tasks: CALL to a TSS links back, IRET returns; JMP there and back");
	expect(task_c_runs == 1 && tss_c[0] == 0x20, "tasks: INT 0x40 through a task gate and back");
	expect((task_db_dr6 & DR6_BT) && task_db_eip == (uint32_t)(uintptr_t)task_c_entry,
	       "tasks: a TSS with its T bit set raises #DB (DR6.BT) before the task's first instruction");
	expect(task_gp_error == 0x7f8, "tasks: #GP through a task gate pushes its error code");
	expect(task_tr == 0x20 && tss_type(4) == 0xb && tss_type(5) == 0x9 && tss_type(6) == 0x9 &&
		       tss_type(7) == 0x9,
	       "tasks: back in task A, busy; B, C and D available again");
	expect(tss_a[TSS_ES + 1] == 0x18 && tss_a[TSS_ES + 3] == 0x10,
	       "tasks: the old task's selectors saved in its TSS");
	expect(task_e_area[0] == 1 && tss_e[0] == 0x20 && task_e_area[1] == 0x1616 &&
		       (task_e_area[2] & RFLAGS_NT) && tss_type(8) == 0x1 &&
		       tss_e[TSS16_IP] == (uint16_t)(task_e_resume - task_e_entry) &&
		       !(tss_e[TSS16_FLAGS] & RFLAGS_NT),
	       "tasks: CALL to a 16-bit TSS links back (NT, AX loaded), its IRET returns to the "
	       "32-bit task and saves IP and FLAGS");
	expect(task_a_esi == 0x89abcdef && task_a_edi == 0x01234567,
	       "tasks: the 32-bit task's registers come back whole after a 16-bit task");
	volatile uint16_t *v86_data = (volatile uint16_t *)(V86_BASE + 0x80);
	expect(v86_data[0] == 0x8086 && v86_data[1] == V86_SEGMENT,
	       "tasks: JMP to a TSS with EFLAGS.VM runs its task in virtual-8086 mode "
	       "(segment bases selector * 16)");
	expect((tss_f[TSS_EFLAGS] & RFLAGS_VM) &&
		       tss_f[TSS_EIP] == (uint32_t)(task_f_after_int - task_f_code) &&
		       tss_f[TSS_ES + 1] == V86_SEGMENT && tss_f[TSS_ES + 3] == V86_SEGMENT,
	       "tasks: INT n through a task gate leaves virtual-8086 mode, VM, IP and the "
	       "selectors saved in its TSS");
	expect(tss_a[0] == 0x58 && (task_a_eflags_after_v86 & RFLAGS_NT) &&
		       !(task_a_eflags_after_v86 & RFLAGS_VM) && tss_type(11) == 0xb,
	       "tasks: back in the 32-bit task from virtual-8086 mode, linked back with NT, "
	       "the virtual-8086 task still busy");
}

/* ---- Control registers: reserved bits and CR0.WP ---- */

static void check_control_registers(void)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();

	expect(write_cr4_safe(cr4 | (1ULL << 32)) == VECTOR_GP && read_cr4() == cr4,
	       "cr4: a reserved bit (32) is #GP and changes nothing");
	expect(write_cr4_safe(cr4 | CR4_VMXE) == VECTOR_GP, "cr4: VMXE is #GP (CPUID shows no VMX)");
	expect(write_cr4_safe(cr4 ^ CR4_PCE) == NO_FAULT && read_cr4() == (cr4 ^ CR4_PCE) &&
		       write_cr4_safe(cr4) == NO_FAULT && read_cr4() == cr4,
	       "cr4: a host-owned bit (PCE) is written and read back as the guest set it");
	expect(write_cr0_safe(cr0 | (1ULL << 40)) == VECTOR_GP, "cr0: bits 63:32 are #GP");
	expect(write_cr0_safe((cr0 | CR0_NW) & ~CR0_CD) == VECTOR_GP, "cr0: NW without CD is #GP");
	expect(write_cr0_safe(cr0 & ~1ULL) == VECTOR_GP, "cr0: PG without PE is #GP");
	expect(read_cr0() == cr0, "cr0: unchanged by the refused writes");

	/* The 2-MiB page at 2 MiB (unused by this 4-MiB guest) made read-only. */
	uint64_t *pd = first_gib_directory();
	volatile uint32_t *target = (volatile uint32_t *)(uintptr_t)0x200000;
	pd[1] &= ~PTE_RW;
	__asm__ volatile("invlpg (%0)" : : "r"(target) : "memory");
	expect(write32_safe(target, 1) == VECTOR_PF, "cr0: WP set, a kernel write to a read-only page is #PF");
	write_cr0(cr0 & ~CR0_WP);
	expect(write32_safe(target, 2) == NO_FAULT && *target == 2,
	       "cr0: WP clear, the same write goes through");
	write_cr0(cr0);
	pd[1] |= PTE_RW;
	__asm__ volatile("invlpg (%0)" : : "r"(target) : "memory");
}

/* ---- IA32_MISC_ENABLE ---- */

static void check_misc_enable(void)
{
	uint64_t v, efer;
	bool host_nx = cpuid(0x80000001U, 0).edx & (1U << 20);

	expect(rdmsr_safe(MSR_IA32_MISC_ENABLE, &v) == NO_FAULT &&
		       (v & (MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_BTS_UNAVAILABLE |
			     MISC_ENABLE_PEBS_UNAVAILABLE)) ==
			       (MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_BTS_UNAVAILABLE |
				MISC_ENABLE_PEBS_UNAVAILABLE) &&
		       !(v & MISC_ENABLE_MONITOR),
	       "misc_enable: fast strings on, no BTS, no PEBS, MONITOR off as CPUID hides it");
	uint64_t initial = v;
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial) == NO_FAULT,
	       "misc_enable: writing back what was read is accepted");
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial & ~MISC_ENABLE_FAST_STRINGS) == NO_FAULT &&
		       rdmsr_safe(MSR_IA32_MISC_ENABLE, &v) == NO_FAULT &&
		       !(v & MISC_ENABLE_FAST_STRINGS),
	       "misc_enable: fast strings can be turned off");
	wrmsr_safe(MSR_IA32_MISC_ENABLE, initial);
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial | MISC_ENABLE_MONITOR) == NO_FAULT &&
		       rdmsr_safe(MSR_IA32_MISC_ENABLE, &v) == NO_FAULT && v == initial,
	       "misc_enable: a write to MONITOR enable is ignored");
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial | (1ULL << 40)) == VECTOR_GP,
	       "misc_enable: a reserved bit is #GP");
	uint32_t max_leaf = cpuid(0, 0).eax;
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial | MISC_ENABLE_LIMIT_CPUID) == NO_FAULT &&
		       cpuid(0, 0).eax == 2,
	       "misc_enable: limit CPUID makes leaf 0 report 2");
	wrmsr_safe(MSR_IA32_MISC_ENABLE, initial);
	expect(cpuid(0, 0).eax == max_leaf, "misc_enable: clearing it restores the leaf range");

	rdmsr_safe(MSR_IA32_EFER, &efer);
	if (!host_nx) {
		expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial | MISC_ENABLE_XD_DISABLE) == VECTOR_GP,
		       "misc_enable: XD disable is #GP where the CPU has no NX");
		return;
	}
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial | MISC_ENABLE_XD_DISABLE) == NO_FAULT &&
		       !(cpuid(0x80000001U, 0).edx & (1U << 20)),
	       "misc_enable: XD disable hides NX from CPUID");
	expect(wrmsr_safe(MSR_IA32_EFER, efer | EFER_NXE) == VECTOR_GP,
	       "misc_enable: with XD disabled EFER.NXE is #GP");
	wrmsr_safe(MSR_IA32_MISC_ENABLE, initial);
	expect((cpuid(0x80000001U, 0).edx & (1U << 20)) &&
		       wrmsr_safe(MSR_IA32_EFER, efer | EFER_NXE) == NO_FAULT,
	       "misc_enable: XD enabled again, NX is back and EFER.NXE sets");
	expect(wrmsr_safe(MSR_IA32_MISC_ENABLE, initial | MISC_ENABLE_XD_DISABLE) == VECTOR_GP,
	       "misc_enable: XD disable is #GP while EFER.NXE is set");
	wrmsr_safe(MSR_IA32_EFER, efer);
}

/* ---- NMIs: delivered whatever RFLAGS.IF says, blocked until the handler's IRET ---- */

#define ICR_DELIVERY_NMI 0x400

static volatile unsigned nmi_count, nmi_depth, nmi_count_inside;
static volatile bool nmi_nested, nmi_send_another;

/* An NMI IPI to this CPU: physical destination 0 (its APIC ID), no shorthand. */
static void send_self_nmi(void)
{
	LAPIC[LAPIC_ICR_HIGH] = 0;
	LAPIC[LAPIC_ICR_LOW] = ICR_DELIVERY_NMI;
}

static void on_nmi(void)
{
	if (nmi_depth)
		nmi_nested = true;
	nmi_depth++;
	nmi_count++;
	if (nmi_send_another) {
		nmi_send_another = false;
		send_self_nmi();
		for (volatile unsigned i = 0; i < 1000; i++)
			cpuid(0, 0);
		nmi_count_inside = nmi_count;
	}
	nmi_depth--;
}

static void check_nmi(void)
{
	set_irq_handler(VECTOR_NMI, on_nmi);
	LAPIC[LAPIC_SVR] = LAPIC_SVR_ENABLE | 0xff;
	__asm__ volatile("cli");
	send_self_nmi();
	expect(nmi_count == 1, "nmi: a self-NMI arrives at once, RFLAGS.IF clear or not");
	nmi_send_another = true;
	send_self_nmi();
	expect(nmi_count_inside == 2 && nmi_count == 3 && !nmi_nested,
	       "nmi: one sent inside the handler waits for its IRET, then arrives");
}

/* ---- The local APIC: disabled and enabled again through IA32_APIC_BASE ---- */

static void check_apic_enable(void)
{
	uint64_t base, v;
	volatile uint32_t *version = &LAPIC[LAPIC_VERSION];
	volatile uint32_t *tpr = &LAPIC[LAPIC_TPR];

	rdmsr_safe(MSR_IA32_APIC_BASE, &base);
	uint32_t version_value = *version;
	expect((base & APIC_BASE_EN) && (cpuid(1, 0).edx & (1U << 9)) && (version_value & 0xff) &&
		       version_value != 0xffffffffU,
	       "apic: enabled at boot, in CPUID, its version register reads");
	expect(wrmsr_safe(MSR_IA32_APIC_BASE, base & ~APIC_BASE_EN) == NO_FAULT &&
		       rdmsr_safe(MSR_IA32_APIC_BASE, &v) == NO_FAULT && !(v & APIC_BASE_EN),
	       "apic: IA32_APIC_BASE.EN clears");
	expect(!(cpuid(1, 0).edx & (1U << 9)), "apic: disabled, CPUID.01H:EDX.APIC is clear");
	expect(*version == 0xffffffffU, "apic: disabled, its page no longer decodes (reads all ones)");
	*tpr = 0x20;
	expect(*tpr == 0xffffffffU, "apic: disabled, a write to its page goes nowhere");
	expect(wrmsr_safe(MSR_IA32_APIC_BASE, base | APIC_BASE_EXTD) == VECTOR_GP,
	       "apic: from disabled straight to x2APIC mode is #GP");
	expect(wrmsr_safe(MSR_IA32_APIC_BASE, (base & ~APIC_BASE_EN) | APIC_BASE_EXTD) == VECTOR_GP,
	       "apic: EXTD without EN is #GP");
	expect(wrmsr_safe(MSR_IA32_APIC_BASE, base) == NO_FAULT && (cpuid(1, 0).edx & (1U << 9)) &&
		       *version == version_value,
	       "apic: enabled again, in CPUID and decoding its page");
}

/*
 * ---- x2APIC mode (SDM 11.12): entered from xAPIC mode, the registers as
 * MSRs 800H + offset / 16, left only through the disabled state ----
 */

#define MSR_X2APIC_ID 0x802
#define MSR_X2APIC_VERSION 0x803
#define MSR_X2APIC_TPR 0x808
#define MSR_X2APIC_EOI 0x80b
#define MSR_X2APIC_SVR 0x80f
#define MSR_X2APIC_ISR0 0x810
#define MSR_X2APIC_SELF_IPI 0x83f
#define X2APIC_TEST_VECTOR 0x52
#define C1_ECX_X2APIC (1U << 21)

static volatile unsigned x2apic_irqs;
static volatile uint64_t x2apic_isr_in_handler;

static void on_x2apic_interrupt(void)
{
	rdmsr_safe(MSR_X2APIC_ISR0 + X2APIC_TEST_VECTOR / 32, (uint64_t *)&x2apic_isr_in_handler);
	x2apic_irqs++;
	wrmsr_safe(MSR_X2APIC_EOI, 0);
}

static void check_x2apic(void)
{
	uint64_t base, v, cr8, isr = ~0ULL;
	uint32_t version = LAPIC[LAPIC_VERSION];

	rdmsr_safe(MSR_IA32_APIC_BASE, &base);
	expect(cpuid(1, 0).ecx & C1_ECX_X2APIC, "x2apic: offered in CPUID.01H:ECX");
	expect(wrmsr_safe(MSR_IA32_APIC_BASE, base | APIC_BASE_EXTD) == NO_FAULT &&
		       rdmsr_safe(MSR_X2APIC_ID, &v) == NO_FAULT && v == 0 &&
		       rdmsr_safe(MSR_X2APIC_VERSION, &v) == NO_FAULT && v == version,
	       "x2apic: entered from xAPIC mode, its ID and version read as MSRs");
	expect(LAPIC[LAPIC_VERSION] == 0xffffffffU, "x2apic: the xAPIC page no longer decodes");

	wrmsr_safe(MSR_X2APIC_TPR, 0x30);
	__asm__ volatile("mov %%cr8, %0" : "=r"(cr8));
	expect(cr8 == 3, "x2apic: TPR 0x30 written as an MSR reads back as CR8 3");
	wrmsr_safe(MSR_X2APIC_TPR, 0);

	set_irq_handler(X2APIC_TEST_VECTOR, on_x2apic_interrupt);
	wrmsr_safe(MSR_X2APIC_SVR, LAPIC_SVR_ENABLE | 0xff);
	__asm__ volatile("sti");
	wrmsr_safe(MSR_X2APIC_SELF_IPI, X2APIC_TEST_VECTOR);
	__asm__ volatile("nop; cli");
	rdmsr_safe(MSR_X2APIC_ISR0 + X2APIC_TEST_VECTOR / 32, &isr);
	expect(x2apic_irqs == 1 && x2apic_isr_in_handler == 1U << (X2APIC_TEST_VECTOR % 32) &&
		       isr == 0,
	       "x2apic: a SELF IPI arrives, in service in its handler, ended by the EOI MSR");

	expect(wrmsr_safe(MSR_IA32_APIC_BASE, base) == VECTOR_GP,
	       "x2apic: straight back to xAPIC mode is #GP");
	expect(wrmsr_safe(MSR_IA32_APIC_BASE, base & ~(APIC_BASE_EN | APIC_BASE_EXTD)) == NO_FAULT &&
		       wrmsr_safe(MSR_IA32_APIC_BASE, base) == NO_FAULT &&
		       LAPIC[LAPIC_VERSION] == version,
	       "x2apic: left through the disabled state, the xAPIC page decodes again");
	/* The disable reset the APIC: software-enabled again for what follows. */
	LAPIC[LAPIC_SVR] = LAPIC_SVR_ENABLE | 0xff;
}

/* ---- IA32_TSC_ADJUST and TSC writes (SDM 17.17.3) ---- */

/*
 * ---- Fixed interrupts through the local APIC: priorities, TPR, EOI ----
 * What the local APIC does whether the hypervisor emulates it or the CPU
 * delivers its interrupts and takes its EOIs (APIC virtualization): the
 * highest vector first, a class at or under PPR held back (SDM 11.8.3.1),
 * CR8 and the TPR register one value (11.8.6), a level-triggered I/O APIC
 * interrupt's EOI reaching the I/O APIC (11.8.5).
 */

#define LAPIC_PPR (0xa0 / 4)
#define LAPIC_ISR (0x100 / 4)
#define LAPIC_IRR (0x200 / 4)
#define LAPIC_LVT_LINT0 (0x350 / 4)
#define LAPIC_LVT_MASKED 0x10000U
#define ICR_SELF (1U << 18)
#define IOAPIC ((volatile uint32_t *)0xfec00000UL)
#define IOAPIC_REDIR_LOW(pin) (0x10 + 2 * (pin))
#define IOAPIC_LEVEL (1U << 15)
#define IOAPIC_REMOTE_IRR (1U << 14)
#define IOAPIC_MASKED (1U << 16)
#define PIT_GSI 2 /* IRQ 0's I/O APIC input (the MADT's override) */
#define LEVEL_VECTOR 0x62
#define LEVEL_STORM 5
#define SPIN_LIMIT 10000000U

static volatile unsigned irq_order[8], irq_count, level_count;
static volatile bool irq_nested_seen;

static int highest_vector_of(unsigned first_word)
{
	for (int w = 7; w >= 0; w--) {
		uint32_t bits = LAPIC[first_word + 4 * w];
		if (bits)
			return w * 32 + 31 - __builtin_clz(bits);
	}
	return -1;
}

static void send_self(uint8_t vector)
{
	LAPIC[LAPIC_ICR_LOW] = ICR_SELF | vector;
}

static void ioapic_write(unsigned reg, uint32_t value)
{
	IOAPIC[0] = reg;
	IOAPIC[4] = value;
}

static uint32_t ioapic_read(unsigned reg)
{
	IOAPIC[0] = reg;
	return IOAPIC[4];
}

static void spin_until(volatile unsigned *count, unsigned target)
{
	for (unsigned i = 0; i < SPIN_LIMIT && *count < target; i++)
		__asm__ volatile("pause");
}

static void on_interrupt(void)
{
	int vector = highest_vector_of(LAPIC_ISR);

	if (vector == LEVEL_VECTOR) {
		/* The line stays high: each EOI that reaches the I/O APIC brings it again. */
		if (++level_count == LEVEL_STORM)
			ioapic_write(IOAPIC_REDIR_LOW(PIT_GSI), LEVEL_VECTOR | IOAPIC_LEVEL |
									IOAPIC_MASKED);
		LAPIC[LAPIC_EOI] = 0;
		return;
	}
	unsigned n = irq_count++;
	if (n < 8)
		irq_order[n] = (unsigned)vector;
	if (vector == 0x45) {
		/* In service 0x45: 0x35's class waits, 0x75's interrupts this handler. */
		__asm__ volatile("sti");
		send_self(0x35);
		send_self(0x75);
		__asm__ volatile("cli");
		irq_nested_seen = irq_count == 2 && irq_order[1] == 0x75;
	}
	LAPIC[LAPIC_EOI] = 0;
}

static void check_interrupts(void)
{
	static const uint8_t vectors[] = { 0x35, 0x41, 0x45, 0x50, 0x51, 0x61, 0x75, LEVEL_VECTOR };
	uint64_t cr8;

	for (unsigned i = 0; i < sizeof(vectors); i++)
		set_irq_handler(vectors[i], on_interrupt);
	LAPIC[LAPIC_SVR] = LAPIC_SVR_ENABLE | 0xff;
	__asm__ volatile("mov %0, %%cr8" : : "r"(0ULL));

	__asm__ volatile("sti");
	send_self(0x50);
	__asm__ volatile("cli");
	expect(irq_count == 1 && irq_order[0] == 0x50 && highest_vector_of(LAPIC_ISR) < 0,
	       "irq: a self-IPI arrives at once, in service in its handler, ended by its EOI");

	__asm__ volatile("mov %0, %%cr8" : : "r"(5ULL));
	__asm__ volatile("sti");
	send_self(0x51);
	__asm__ volatile("nop; cli");
	expect(irq_count == 1 && LAPIC[LAPIC_TPR] == 0x50 && LAPIC[LAPIC_PPR] == 0x50 &&
		       highest_vector_of(LAPIC_IRR) == 0x51,
	       "irq: CR8 5 is TPR 0x50, and holds vector 0x51 back in IRR");
	LAPIC[LAPIC_TPR] = 0x40;
	__asm__ volatile("mov %%cr8, %0" : "=r"(cr8));
	expect(cr8 == 4 && irq_count == 1, "irq: a TPR write of 0x40 reads back as CR8 4");
	__asm__ volatile("sti; nop; cli");
	expect(irq_count == 2 && irq_order[1] == 0x51 && highest_vector_of(LAPIC_IRR) < 0,
	       "irq: under the lower TPR the held vector arrives");
	__asm__ volatile("mov %0, %%cr8" : : "r"(0ULL));

	irq_count = 0;
	send_self(0x41);
	send_self(0x61);
	send_self(0x51);
	__asm__ volatile("sti; nop; cli");
	expect(irq_count == 3 && irq_order[0] == 0x61 && irq_order[1] == 0x51 &&
		       irq_order[2] == 0x41,
	       "irq: three pending vectors arrive highest first");

	irq_count = 0;
	__asm__ volatile("sti");
	send_self(0x45);
	__asm__ volatile("nop; cli");
	expect(irq_nested_seen && irq_count == 3 && irq_order[2] == 0x35,
	       "irq: a higher class nests in a handler, a lower one waits for its EOI");

	/*
	 * IRQ 0 to the I/O APIC, level-triggered: the PIT keeps its line high
	 * between periods, so every EOI that reaches the I/O APIC clears
	 * Remote IRR and brings the interrupt again. The 8259s and LINT0 are
	 * kept out of it.
	 */
	uint32_t lint0 = LAPIC[LAPIC_LVT_LINT0];
	uint8_t pic_mask = inb(0x21);
	LAPIC[LAPIC_LVT_LINT0] = lint0 | LAPIC_LVT_MASKED;
	outb(0x21, 0xff);
	ioapic_write(IOAPIC_REDIR_LOW(PIT_GSI) + 1, 0);
	ioapic_write(IOAPIC_REDIR_LOW(PIT_GSI), LEVEL_VECTOR | IOAPIC_LEVEL);
	outb(0x43, 0x34);
	outb(0x40, 1193 & 0xff); /* 1 kHz */
	outb(0x40, 1193 >> 8);
	__asm__ volatile("sti");
	spin_until(&level_count, LEVEL_STORM);
	__asm__ volatile("cli");
	expect(level_count == LEVEL_STORM &&
		       !(ioapic_read(IOAPIC_REDIR_LOW(PIT_GSI)) & IOAPIC_REMOTE_IRR),
	       "irq: a level-triggered interrupt's EOI reaches the I/O APIC each time");
	outb(0x43, 0x30); /* counter 0 back to a one-shot that is never loaded */
	outb(0x21, pic_mask);
	LAPIC[LAPIC_LVT_LINT0] = lint0;
}

static void check_tsc_adjust(void)
{
	uint64_t adjust = 1, v = 0;
	const uint64_t step = 1ULL << 40;

	expect((cpuid(7, 0).ebx & (1U << 1)) && rdmsr_safe(MSR_IA32_TSC_ADJUST, &adjust) == NO_FAULT,
	       "tsc_adjust: in CPUID and readable");
	uint64_t before = rdtsc();
	expect(wrmsr_safe(MSR_IA32_TSC_ADJUST, adjust + step) == NO_FAULT && rdtsc() - before >= step &&
		       rdtsc() - before < step + (1ULL << 32),
	       "tsc_adjust: a write moves the TSC by the same amount");
	uint64_t tsc = rdtsc();
	expect(wrmsr_safe(MSR_IA32_TIME_STAMP_COUNTER, tsc - step) == NO_FAULT &&
		       rdmsr_safe(MSR_IA32_TSC_ADJUST, &v) == NO_FAULT && adjust - v < (1ULL << 32),
	       "tsc_adjust: a TSC write moves IA32_TSC_ADJUST back by what it took");
}

/* ---- RDTSCP, RDPID and IA32_TSC_AUX ---- */

/* rdtscp_safe(&tsc, &aux), rdpid_safe(&aux): the vector of a fault, or NO_FAULT. */
__asm__("	.text\n"
	"	.globl rdtscp_safe\n"
	"rdtscp_safe:\n"
	"	leaq 1f(%rip), %rax\n"
	"	movq %rax, fault_resume(%rip)\n"
	"	rdtscp\n"
	"	shlq $32, %rdx\n"
	"	movl %eax, %eax\n"
	"	orq %rdx, %rax\n"
	"	movq %rax, (%rdi)\n"
	"	movl %ecx, (%rsi)\n"
	"	movq $0, fault_resume(%rip)\n"
	"	movl $0xff, %eax\n"
	"	ret\n"
	"1:	movl fault_vector(%rip), %eax\n"
	"	ret\n"
	"	.globl rdpid_safe\n"
	"rdpid_safe:\n"
	"	leaq 1f(%rip), %rax\n"
	"	movq %rax, fault_resume(%rip)\n"
	"	rdpid %rax\n"
	"	movq %rax, (%rdi)\n"
	"	movq $0, fault_resume(%rip)\n"
	"	movl $0xff, %eax\n"
	"	ret\n"
	"1:	movl fault_vector(%rip), %eax\n"
	"	ret\n");
unsigned rdtscp_safe(uint64_t *tsc, uint32_t *aux);
unsigned rdpid_safe(uint64_t *aux);

static void check_tsc_aux(void)
{
	bool rdtscp = cpuid(0x80000001U, 0).edx & CPUID_80000001_EDX_RDTSCP;
	bool rdpid = cpuid(7, 0).ecx & CPUID_07_ECX_RDPID;
	uint64_t tsc = 0, v = 0;
	uint32_t aux = 0;

	if (!rdtscp) {
		expect(rdtscp_safe(&tsc, &aux) == VECTOR_UD && rdmsr_safe(MSR_IA32_TSC_AUX, &v) == VECTOR_GP,
		       "tsc_aux: hidden from CPUID, RDTSCP is #UD and IA32_TSC_AUX #GP");
		return;
	}
	expect(wrmsr_safe(MSR_IA32_TSC_AUX, 0x5a5a1234) == NO_FAULT &&
		       rdmsr_safe(MSR_IA32_TSC_AUX, &v) == NO_FAULT && v == 0x5a5a1234,
	       "tsc_aux: IA32_TSC_AUX round-trips");
	expect(wrmsr_safe(MSR_IA32_TSC_AUX, 1ULL << 32) == VECTOR_GP, "tsc_aux: bits 63:32 are #GP");
	uint64_t before = rdtsc();
	expect(rdtscp_safe(&tsc, &aux) == NO_FAULT && aux == 0x5a5a1234 && tsc >= before &&
		       rdtsc() >= tsc,
	       "tsc_aux: RDTSCP returns the guest TSC and IA32_TSC_AUX");
	/* Long enough for other VMs to run, each with its own IA32_TSC_AUX. */
	for (uint64_t end = rdtsc() + 50 * 1000 * 1000; rdtsc() < end;)
		;
	expect(rdtscp_safe(&tsc, &aux) == NO_FAULT && aux == 0x5a5a1234,
	       "tsc_aux: the value survives the other VMs' slices");
	if (rdpid)
		expect(rdpid_safe(&v) == NO_FAULT && v == 0x5a5a1234, "tsc_aux: RDPID reads it");
	else
		expect(rdpid_safe(&v) == VECTOR_UD, "tsc_aux: RDPID, hidden from CPUID, is #UD");
}

/* ---- Single-step over every kind of instruction the hypervisor completes ---- */

/*
 * STEP(name, setup, insn): name_step() sets RFLAGS.TF with POPF, so the
 * single-step trap comes after the instruction that follows (insn), then
 * runs two NOPs with TF still set; name_after is the address right after
 * insn. Returns the vector of the exception it caught (NO_FAULT: none).
 */
#define STEP(name, setup, insn)                                   \
	__asm__("	.text\n"                                     \
		"	.globl " #name "_step\n"                     \
		#name "_step:\n"                                     \
		"	pushq %rbx\n"                                \
		"	leaq 1f(%rip), %rax\n"                       \
		"	movq %rax, fault_resume(%rip)\n"             \
		setup                                                \
		"	pushfq\n"                                    \
		"	orq $0x100, (%rsp)\n"                        \
		"	popfq\n"                                     \
		insn                                                 \
		"	.globl " #name "_after\n"                    \
		#name "_after:\n"                                    \
		"	nop\n"                                       \
		"	nop\n"                                       \
		"	pushfq\n"                                    \
		"	andq $~0x100, (%rsp)\n"                      \
		"	popfq\n"                                     \
		"	movq $0, fault_resume(%rip)\n"               \
		"	popq %rbx\n"                                 \
		"	movl $0xff, %eax\n"                          \
		"	ret\n"                                       \
		"1:	popq %rbx\n"                                 \
		"	movl fault_vector(%rip), %eax\n"             \
		"	ret\n");                                     \
	unsigned name##_step(void);                                  \
	extern const char name##_after[];

STEP(cpuid, "	xorl %eax, %eax\n", "	cpuid\n")
STEP(rdmsr, "	movl $0x277, %ecx\n", "	rdmsr\n")
STEP(in, "", "	inb $0x61, %al\n")
STEP(mmio, "	movl $0xfee00030, %ecx\n", "	movl (%rcx), %eax\n")
STEP(cr4, "	movq %cr4, %rcx\n	xorq $0x100, %rcx\n", "	movq %rcx, %cr4\n")
STEP(vmcall, "	xorl %eax, %eax\n", "	vmcall\n")
/* MOV SS holds the trap for itself back until after the next instruction (SDM 6.8.3). */
STEP(movss, "	movw %ss, %dx\n	xorl %eax, %eax\n", "	movw %dx, %ss\n	cpuid\n")

/*
 * MOVSS_BREAK(name, setup, insn): name_movss() arms a data breakpoint
 * (DR0, read or write, 2 bytes) on the word a MOV SS then loads SS from,
 * runs setup, the MOV SS and insn in its shadow; name_after is right after
 * insn. MOV SS holds every debug exception back until after the
 * instruction that follows (SDM Vol. 3A 6.8.3). Returns the vector caught
 * (NO_FAULT: none), with RSP restored whatever the handler left.
 */
#define MOVSS_BREAK(name, setup, insn)                            \
	__asm__("	.text\n"                                     \
		"	.globl " #name "_movss\n"                    \
		#name "_movss:\n"                                    \
		"	pushq %rbx\n"                                \
		"	movq %rsp, movss_rsp(%rip)\n"                \
		"	leaq 1f(%rip), %rax\n"                       \
		"	movq %rax, fault_resume(%rip)\n"             \
		"	movw %ss, movss_ss(%rip)\n"                  \
		"	leaq movss_ss(%rip), %rax\n"                 \
		"	movq %rax, %dr0\n"                           \
		"	movq $0x70401, %rax\n" /* L0, RW0 read/write, LEN0 2 */ \
		"	movq %rax, %dr7\n"                           \
		setup                                             \
		"	movw movss_ss(%rip), %ss\n"                  \
		insn                                              \
		"	.globl " #name "_after\n"                    \
		#name "_after:\n"                                    \
		"	nop\n"                                       \
		"	movq $0, fault_resume(%rip)\n"               \
		"	movl $0xff, %ebx\n"                          \
		"	jmp 2f\n"                                    \
		"1:	movq movss_rsp(%rip), %rsp\n"                \
		"	movl fault_vector(%rip), %ebx\n"             \
		"2:	movq $0x400, %rax\n"                         \
		"	movq %rax, %dr7\n"                           \
		"	movl %ebx, %eax\n"                           \
		"	popq %rbx\n"                                 \
		"	ret\n");                                     \
	unsigned name##_movss(void);                                 \
	extern const char name##_after[];

__asm__("	.data\n"
	"movss_rsp: .quad 0\n"
	"movss_ss: .word 0\n"
	"	.text\n");
/* The breakpoint held until after a CPUID the hypervisor completes. */
MOVSS_BREAK(databp, "	xorl %eax, %eax\n", "	cpuid\n")
/*
 * A software exception in the shadow (INT3, and INT1, byte F1): it is
 * delivered, and the held #DB comes at its handler's first instruction
 * (Vol. 2 MOV: "the debug exception is delivered after the transfer").
 * None of this exits: the CPU's own behaviour, which the hypervisor must
 * leave intact (it intercepts neither #BP nor #DB).
 */
MOVSS_BREAK(int3, "", "	int3\n")
MOVSS_BREAK(int1, "", "	.byte 0xf1\n")

extern const char guest_exception_stubs[];

/*
 * The SDM's outcome passes; so does the event delivered as such after its
 * instruction with the held #DB dropped, which is what Bochs' CPU does
 * (with no VM exit in between, the hypervisor cannot change it): noted.
 */
static void check_shadow_int(const char *check_name, unsigned (*run)(void), const char *after,
			     unsigned vector)
{
	write_dr6(0);
	unsigned caught = run();
	uint64_t dr6 = read_dr6();
	uint64_t handler = (uint64_t)(uintptr_t)guest_exception_stubs + 16 * vector;
	bool as_sdm = caught == VECTOR_DB && fault_rip == handler && (dr6 & DR6_B0);
	bool delivered = caught == vector && fault_rip == (uint64_t)(uintptr_t)after;
	if (!as_sdm) {
		/* The CPU's, not the hypervisor's: no VM exit in between. */
		put(delivered ? "conform: NOTE the CPU dropped the held #DB: " : "conform: ");
		put("vector ");
		put_u64(caught);
		put(", RIP ");
		put_hex(fault_rip);
		put(", DR6 ");
		put_hex(dr6);
		put("\n");
	}
	expect(as_sdm || delivered, check_name);
}

static void check_step(const char *check_name, unsigned (*step)(void), const char *after,
		       uint64_t dr6_status)
{
	write_dr6(0);
	unsigned vector = step();
	uint64_t dr6 = read_dr6();
	bool ok = vector == VECTOR_DB && fault_rip == (uint64_t)(uintptr_t)after && (dr6 & dr6_status);
	if (!ok) {
		put("conform: vector ");
		put_u64(vector);
		put(", RIP ");
		put_hex(fault_rip);
		put(" (expected ");
		put_hex((uint64_t)(uintptr_t)after);
		put("), DR6 ");
		put_hex(dr6);
		put("\n");
	}
	expect(ok, check_name);
}

static void check_single_step(void)
{
	uint64_t cr4 = read_cr4();

	check_step("step: CPUID traps right after it (DR6.BS)", cpuid_step, cpuid_after, DR6_BS);
	check_step("step: RDMSR traps right after it", rdmsr_step, rdmsr_after, DR6_BS);
	check_step("step: IN traps right after it", in_step, in_after, DR6_BS);
	check_step("step: an emulated MMIO read traps right after it", mmio_step, mmio_after, DR6_BS);
	check_step("step: MOV to CR4 traps right after it", cr4_step, cr4_after, DR6_BS);
	write_cr4(cr4);
	check_step("step: VMCALL traps right after it", vmcall_step, vmcall_after, DR6_BS);
	check_step("step: MOV SS holds the trap until after the CPUID that follows",
		   movss_step, movss_after, DR6_BS);
	check_step("step: a data breakpoint on MOV SS is held until after the CPUID that follows "
		   "(DR6.B0)",
		   databp_movss, databp_after, DR6_B0);
	check_shadow_int("step: INT3 in a MOV SS shadow with a data breakpoint is delivered",
			 int3_movss, int3_after, VECTOR_BP);
	check_shadow_int("step: INT1 in a MOV SS shadow with a data breakpoint is delivered",
			 int1_movss, int1_after, VECTOR_DB);
}

/* ---- XSAVE: XCR0, leaf 0DH, IA32_XSS, vector registers that stay ours ---- */

#define CPUID_01_ECX_XSAVE (1U << 26)
#define CPUID_01_ECX_OSXSAVE (1U << 27)
#define CPUID_01_ECX_AVX (1U << 28)
#define CPUID_0D_1_XSAVES (1U << 3)
#define XSAVE_AREA_LEGACY_AND_HEADER 576
#define GAP_TICKS 200000ULL
#define VECTOR_SEED 0xc0f0ULL

static uint64_t run_xcr0; /* what main()'s vector registers were filled under */

/* Spins until another VM has run (a jump in the TSC), or about a second. */
static void wait_for_another_vm(void)
{
	uint64_t start = rdtsc(), last = start;

	while (last - start < tsc_hz()) {
		uint64_t now = rdtsc();
		if (now - last > GAP_TICKS)
			return;
		last = now;
	}
}

static bool vector_registers_zero(uint64_t xcr0)
{
	static uint64_t regs[32][8];
	static uint16_t masks[8];
	unsigned n = vector_store(xcr0, regs, masks);
	uint64_t bits = 0;

	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < (n == 32 ? 8U : 4U); j++)
			bits |= regs[i][j];
	for (unsigned i = 0; n == 32 && i < 8; i++)
		bits |= masks[i];
	return n && !bits;
}

static void check_xss(void)
{
	uint64_t v;

	if (!(cpuid(0xd, 1).eax & CPUID_0D_1_XSAVES)) {
		expect(rdmsr_safe(MSR_IA32_XSS, &v) == VECTOR_GP, "xsave: no XSAVES, IA32_XSS is #GP");
		return;
	}
	expect(rdmsr_safe(MSR_IA32_XSS, &v) == NO_FAULT && v == 0 &&
		       wrmsr_safe(MSR_IA32_XSS, 0) == NO_FAULT,
	       "xsave: IA32_XSS reads 0 and takes 0");
	expect(wrmsr_safe(MSR_IA32_XSS, 1ULL << 8) == VECTOR_GP && cpuid(0xd, 1).ecx == 0,
	       "xsave: IA32_XSS: a supervisor component not offered (bit 8) is #GP");
}

static void check_xsave(void)
{
	uint64_t cr4 = read_cr4();

	if (!(cpuid(1, 0).ecx & CPUID_01_ECX_XSAVE)) {
		expect(write_cr4_safe(cr4 | CR4_OSXSAVE) == VECTOR_GP,
		       "xsave: not offered by this host, CR4.OSXSAVE is #GP");
		return;
	}
	expect(!(cpuid(1, 0).ecx & CPUID_01_ECX_OSXSAVE) && xsetbv_safe(0, 1) == VECTOR_UD,
	       "xsave: CR4.OSXSAVE clear, CPUID.1:ECX.OSXSAVE is clear and XSETBV is #UD");
	write_cr4(cr4 | CR4_OSXSAVE);
	struct cpuid_regs d0 = cpuid(0xd, 0);
	expect((cpuid(1, 0).ecx & CPUID_01_ECX_OSXSAVE) && xgetbv(0) == 1,
	       "xsave: CR4.OSXSAVE set, CPUID shows it and XCR0 is 1 from reset");
	expect((d0.eax & 3) == 3 && d0.ebx == XSAVE_AREA_LEGACY_AND_HEADER && d0.ecx >= d0.ebx,
	       "xsave: leaf 0DH offers x87 and SSE, 576 bytes for XCR0 = 1");
	expect(xsetbv_safe(1, 1) == VECTOR_GP, "xsave: XSETBV of XCR1 is #GP");
	expect(xsetbv_safe(0, 0) == VECTOR_GP && xsetbv_safe(0, 2) == VECTOR_GP,
	       "xsave: XCR0 without x87 is #GP");
	expect(xsetbv_safe(0, 1 | XCR0_AVX) == VECTOR_GP, "xsave: AVX without SSE is #GP");
	expect(xsetbv_safe(0, 3 | (1ULL << 9)) == VECTOR_GP && xsetbv_safe(0, 3 | (1ULL << 63)) == VECTOR_GP,
	       "xsave: a component not offered (PKRU, bit 63) is #GP");
	expect(xgetbv(0) == 1, "xsave: the refused XSETBVs left XCR0 as it was");
	check_xss();
	if (!(d0.eax & XCR0_AVX))
		return;

	/* Another VM's registers were in the CPU since; AVX enabled now must show ours. */
	wait_for_another_vm();
	struct cpuid_regs avx = cpuid(0xd, 2);
	expect(xsetbv_safe(0, 3 | XCR0_AVX) == NO_FAULT && xgetbv(0) == (3 | XCR0_AVX) &&
		       cpuid(0xd, 0).ebx == avx.ebx + avx.eax && (cpuid(1, 0).ecx & CPUID_01_ECX_AVX),
	       "xsave: XCR0 = x87|SSE|AVX, leaf 0DH sizes the area for it");
	expect(vector_registers_zero(3 | XCR0_AVX),
	       "xsave: AVX enabled late reads its initial state, not another VM's registers");
	if ((d0.eax & XCR0_AVX512) == XCR0_AVX512) {
		expect(xsetbv_safe(0, 3 | XCR0_AVX | (1ULL << 5)) == VECTOR_GP,
		       "xsave: one AVX-512 component without the other two is #GP");
		expect(xsetbv_safe(0, 3 | XCR0_AVX512) == VECTOR_GP, "xsave: AVX-512 without AVX is #GP");
	}
	run_xcr0 = xstate_enable();
	expect(run_xcr0 == (d0.eax & (3 | XCR0_AVX | XCR0_AVX512)) && cpuid(0xd, 0).ebx == d0.ecx,
	       "xsave: every offered component enabled, leaf 0DH EBX grows to ECX");
	vector_fill(run_xcr0, VECTOR_SEED);
}

/*
 * Whether the command line's "areas=a,b,..." names area; without the
 * list every area runs. The e2e boot runs the areas as two VMs: each VM's
 * console has its own share of the log (devices/console.h).
 */
static bool selected(const char *area)
{
	static const char prefix[] = "areas=";
	const char *s = guest_cmdline;

	for (unsigned i = 0; prefix[i]; i++)
		if (s[i] != prefix[i])
			return true;
	s += sizeof(prefix) - 1;
	while (*s && *s != ' ') {
		const char *a = area;
		while (*a && *s == *a) {
			a++;
			s++;
		}
		if (!*a && (*s == ',' || *s == ' ' || !*s))
			return true;
		while (*s && *s != ',' && *s != ' ')
			s++;
		if (*s == ',')
			s++;
	}
	return false;
}

int main(void)
{
	static const struct {
		const char *name;
		void (*run)(void);
	} areas[] = {
		{ "xsave", check_xsave },	    { "modes", check_modes },
		{ "tasks", check_task_switches },   { "cr", check_control_registers },
		{ "misc", check_misc_enable },	    { "nmi", check_nmi },
		{ "apic", check_apic_enable },	    { "irq", check_interrupts },
		{ "x2apic", check_x2apic },	    { "tsc", check_tsc_adjust },
		{ "tscaux", check_tsc_aux },	    { "step", check_single_step },
	};

	for (unsigned i = 0; i < sizeof(areas) / sizeof(areas[0]); i++)
		if (selected(areas[i].name))
			areas[i].run();
	if (run_xcr0)
		expect(vector_intact(run_xcr0, VECTOR_SEED),
		       (run_xcr0 & XCR0_AVX512) == XCR0_AVX512
			       ? "xsave: ZMM0-31 and k0-7 kept their values through every check, other VMs using theirs"
			       : "xsave: YMM0-15 kept their values through every check, other VMs using theirs");
	put("conform: ");
	put_u64(passed);
	put(" passed, ");
	put_u64(failed_count);
	put(" failed\n");
	return 0;
}
