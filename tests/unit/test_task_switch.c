/*
 * The hardware task switch (vmm/task_switch.c) on a fake flat guest
 * memory: what each source (CALL, JMP, IRET, a task gate) saves, loads,
 * links and marks busy, and which fault every bad TSS, descriptor or
 * selector gets, before the commit (old task unchanged) and after it;
 * then the same between 32-bit and 16-bit TSSs (SDM Vol. 3A 8.6) and
 * between two 16-bit ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/task_switch.h"
#include "x86/cpu.h"

#define GDT 0x1000u
#define TSS_A 0x2000u
#define TSS_B 0x2100u
#define TSS_16 0x2200u
#define TSS_16B 0x2300u
#define STACK_B 0x3000u
#define STACK_16 0x3400u
#define MEM_SIZE 0x4000u
#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_A 0x18
#define SEL_B 0x20
#define SEL_16 0x28
#define SEL_CODE_ABSENT 0x30
#define SEL_DATA_ABSENT 0x38
#define SEL_16B 0x40
#define SEL_CODE16 0x48
#define SEL_DATA16 0x50
#define SEL_DATA_SMALL 0x58 /* 32-bit, expand-up, limit 0xfff */
#define SEL_DATA_DOWN 0x60  /* 32-bit, expand-down, limit 0xfff: offsets 0x1000 and up */
#define GDT_ENTRIES 13

static uint8_t mem[MEM_SIZE];
static uint32_t fault_page = ~0u; /* accesses to this 4-KiB page are #PF */

static int access(uint32_t linear, unsigned len, uint32_t *pf_error)
{
	if ((linear & ~0xfffu) == fault_page || ((linear + len - 1) & ~0xfffu) == fault_page) {
		*pf_error = 2;
		return -1;
	}
	return linear + len <= MEM_SIZE ? 0 : -2;
}

static int mem_read(void *ctx, const struct task_cpu *cpu, uint32_t linear, void *buf,
		    unsigned len, uint32_t *pf_error)
{
	(void)ctx;
	(void)cpu;
	int status = access(linear, len, pf_error);
	if (!status)
		memcpy(buf, mem + linear, len);
	return status;
}

/* Whether the last write was the new task's own (a user access). */
static bool last_write_user;

static int mem_write(void *ctx, const struct task_cpu *cpu, uint32_t linear, const void *buf,
		     unsigned len, bool user, uint32_t *pf_error)
{
	(void)ctx;
	(void)cpu;
	last_write_user = user;
	int status = access(linear, len, pf_error);
	if (!status)
		memcpy(mem + linear, buf, len);
	return status;
}

static const struct task_mem task_mem = { NULL, mem_read, mem_write };

static uint32_t get32(uint32_t at)
{
	uint32_t v;
	memcpy(&v, mem + at, 4);
	return v;
}

static void put32(uint32_t at, uint32_t v)
{
	memcpy(mem + at, &v, 4);
}

static uint16_t get16(uint32_t at)
{
	return (uint16_t)get32(at);
}

static void put16(uint32_t at, uint16_t v)
{
	mem[at] = (uint8_t)v;
	mem[at + 1] = (uint8_t)(v >> 8);
}

static void put_descriptor(uint16_t selector, uint32_t base, uint32_t limit, uint8_t access_byte,
			   uint8_t flags)
{
	uint8_t *d = mem + GDT + (selector & ~7u);
	d[0] = (uint8_t)limit;
	d[1] = (uint8_t)(limit >> 8);
	d[2] = (uint8_t)base;
	d[3] = (uint8_t)(base >> 8);
	d[4] = (uint8_t)(base >> 16);
	d[5] = access_byte;
	d[6] = (uint8_t)(flags | ((limit >> 16) & 0xf));
	d[7] = (uint8_t)(base >> 24);
}

static unsigned type_at(uint16_t selector)
{
	return mem[GDT + (selector & ~7u) + 5] & 0xf;
}

static void tss_init(uint32_t base, uint32_t eip, uint32_t esp, uint16_t cs, uint16_t ss)
{
	memset(mem + base, 0, TSS32_MIN_LIMIT + 1);
	put32(base + TSS32_EIP, eip);
	put32(base + TSS32_EFLAGS, 0x2);
	for (unsigned i = 0; i < 8; i++)
		put32(base + TSS32_GPR + 4 * i, 0x100 + i);
	put32(base + TSS32_GPR + 4 * 4, esp);
	for (unsigned i = 0; i < 6; i++)
		put32(base + TSS32_SEG + 4 * i, i == 1 ? cs : i == 2 ? ss : SEL_DATA);
}

/* A 16-bit TSS: IP, FLAGS 2, AX..DI 0x1600 + i but SP, ES = DS = SS. */
static void tss16_init(uint32_t base, uint16_t ip, uint16_t sp, uint16_t cs, uint16_t ss)
{
	memset(mem + base, 0, TSS16_MIN_LIMIT + 1);
	put16(base + TSS16_IP, ip);
	put16(base + TSS16_FLAGS, 0x2);
	for (unsigned i = 0; i < 8; i++)
		put16(base + TSS16_GPR + 2 * i, (uint16_t)(0x1600 + i));
	put16(base + TSS16_GPR + 2 * 4, sp);
	for (unsigned i = 0; i < 4; i++)
		put16(base + TSS16_SEG + 2 * i, i == 1 ? cs : ss);
}

/* Task A running (TR = A, busy), flat 32-bit protected mode, no paging. */
static struct task_cpu cpu;

static int setup(void **state)
{
	(void)state;
	memset(mem, 0, sizeof(mem));
	fault_page = ~0u;
	put_descriptor(SEL_CODE, 0, 0xfffff, 0x9b, 0xc0);
	put_descriptor(SEL_DATA, 0, 0xfffff, 0x93, 0xc0);
	put_descriptor(SEL_A, TSS_A, TSS32_MIN_LIMIT, 0x8b, 0);
	put_descriptor(SEL_B, TSS_B, TSS32_MIN_LIMIT, 0x89, 0);
	put_descriptor(SEL_16, TSS_16, 0x2b, 0x81, 0);
	put_descriptor(SEL_CODE_ABSENT, 0, 0xfffff, 0x1b, 0xc0);
	put_descriptor(SEL_DATA_ABSENT, 0, 0xfffff, 0x13, 0xc0);
	put_descriptor(SEL_16B, TSS_16B, 0x2b, 0x81, 0);
	put_descriptor(SEL_CODE16, 0, 0xffff, 0x9b, 0);
	put_descriptor(SEL_DATA16, 0, 0xffff, 0x93, 0);
	put_descriptor(SEL_DATA_SMALL, 0, 0xfff, 0x93, 0x40);
	put_descriptor(SEL_DATA_DOWN, 0, 0xfff, 0x97, 0x40);
	tss_init(TSS_B, 0xb000, STACK_B, SEL_CODE, SEL_DATA);
	tss16_init(TSS_16, 0x0100, STACK_16, SEL_CODE16, SEL_DATA16);
	tss16_init(TSS_16B, 0x0200, STACK_16 - 0x100, SEL_CODE16, SEL_DATA16);
	cpu = (struct task_cpu){ .eip = 0xa000, .eflags = 0x202, .cr0 = CR0_PE,
				 .gdtr_base = GDT, .gdtr_limit = GDT_ENTRIES * 8 - 1 };
	for (unsigned i = 0; i < 8; i++)
		cpu.gpr[i] = 0xa0 + i;
	for (unsigned i = 0; i < SEG_COUNT; i++)
		cpu.seg[i] = (struct segment_state){ SEL_DATA, 0, 0xffffffff, 0xc093 };
	cpu.seg[SEG_CS] = (struct segment_state){ SEL_CODE, 0, 0xffffffff, 0xc09b };
	cpu.seg[SEG_LDTR] = (struct segment_state){ 0 };
	cpu.seg[SEG_TR] = (struct segment_state){ SEL_A, TSS_A, TSS32_MIN_LIMIT, 0x8b };
	return 0;
}

static enum task_switch_result run(uint16_t selector, enum task_switch_source source,
				   struct task_switch_fault *fault)
{
	return task_switch(&cpu, selector, source, 0xa005, false, 0, &task_mem, fault);
}

/* A switch that must succeed, the old task resuming at next_eip. */
static void switch_ok(uint16_t selector, enum task_switch_source source, uint32_t next_eip)
{
	struct task_switch_fault fault;

	assert_int_equal(task_switch(&cpu, selector, source, next_eip, false, 0, &task_mem, &fault),
			 TASK_SWITCHED);
}

static void test_call_links_and_iret_returns(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	assert_int_equal(run(SEL_B, TASK_SWITCH_CALL, &fault), TASK_SWITCHED);
	/* The old task saved: where it resumes, its flags, registers and selectors. */
	assert_int_equal(get32(TSS_A + TSS32_EIP), 0xa005);
	assert_int_equal(get32(TSS_A + TSS32_EFLAGS), 0x202);
	assert_int_equal(get32(TSS_A + TSS32_GPR + 4 * 3), 0xa3);
	assert_int_equal(get32(TSS_A + TSS32_SEG + 4), SEL_CODE);
	/* The new one: loaded, linked back, NT set, busy; A stays busy; CR0.TS set. */
	assert_int_equal(cpu.eip, 0xb000);
	assert_int_equal(cpu.gpr[4], STACK_B);
	assert_int_equal(cpu.eflags, 0x2 | RFLAGS_NT);
	assert_int_equal(get32(TSS_B + TSS32_LINK) & 0xffff, SEL_A);
	assert_int_equal(cpu.seg[SEG_TR].selector, SEL_B);
	assert_int_equal(cpu.seg[SEG_TR].base, TSS_B);
	assert_int_equal(cpu.seg[SEG_TR].attributes & 0xf, 0xb);
	assert_int_equal(type_at(SEL_B), 0xb);
	assert_int_equal(type_at(SEL_A), 0xb);
	assert_true(cpu.cr0 & CR0_TS);
	assert_int_equal(cpu.seg[SEG_CS].selector, SEL_CODE);
	assert_int_equal(cpu.seg[SEG_SS].limit, 0xffffffff);
	assert_int_equal(cpu.seg[SEG_LDTR].attributes, 0);

	/* IRET goes back to the linked task: B not busy, NT clear in B's saved flags. */
	cpu.eip = 0xb010;
	assert_int_equal(task_switch(&cpu, SEL_A, TASK_SWITCH_IRET, 0xb011, false, 0, &task_mem,
				     &fault),
			 TASK_SWITCHED);
	assert_int_equal(cpu.eip, 0xa005);
	assert_int_equal(cpu.eflags, 0x202);
	assert_int_equal(cpu.gpr[3], 0xa3);
	assert_int_equal(type_at(SEL_B), 0x9);
	assert_int_equal(type_at(SEL_A), 0xb);
	assert_int_equal(get32(TSS_B + TSS32_EFLAGS), 0x2);
	assert_int_equal(get32(TSS_B + TSS32_EIP), 0xb011);
}

/* A new TSS with its T bit asks for the #DB with DR6.BT; without it, none. */
static void test_debug_trap_bit(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	cpu.debug_trap = true;
	assert_int_equal(run(SEL_B, TASK_SWITCH_CALL, &fault), TASK_SWITCHED);
	assert_false(cpu.debug_trap);
	mem[TSS_A + TSS32_T] = 1;
	assert_int_equal(task_switch(&cpu, SEL_A, TASK_SWITCH_IRET, 0xb011, false, 0, &task_mem,
				     &fault),
			 TASK_SWITCHED);
	assert_true(cpu.debug_trap);
	/* A switch refused before its commit raises no trap. */
	assert_int_equal(run(SEL_A, TASK_SWITCH_CALL, &fault), TASK_SWITCH_FAULT);
	assert_false(cpu.debug_trap);
}

static void test_jmp_frees_the_old_task(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	assert_int_equal(run(SEL_B, TASK_SWITCH_JMP, &fault), TASK_SWITCHED);
	assert_int_equal(type_at(SEL_A), 0x9);
	assert_int_equal(type_at(SEL_B), 0xb);
	assert_int_equal(get32(TSS_B + TSS32_LINK), 0);
	assert_false(cpu.eflags & RFLAGS_NT);
}

static void test_gate_pushes_the_error_code(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	assert_int_equal(task_switch(&cpu, SEL_B, TASK_SWITCH_GATE, 0xa000, true, 0x7f8, &task_mem,
				     &fault),
			 TASK_SWITCHED);
	assert_int_equal(cpu.gpr[4], STACK_B - 4);
	assert_int_equal(get32(STACK_B - 4), 0x7f8);
	assert_false(last_write_user); /* CPL 0 */
	assert_int_equal(get32(TSS_B + TSS32_LINK) & 0xffff, SEL_A);
	assert_int_equal(get32(TSS_A + TSS32_EIP), 0xa000);
}

/*
 * The error code is the new task's push: inside its stack segment's
 * limit, expand-up or expand-down, else #SS with EXT after the commit
 * (the new task holds the CPU; its stack pointer is as the TSS had it).
 */
static void test_error_code_push_checks_the_stack_limit(void **state)
{
	static const struct {
		uint16_t ss;
		uint32_t esp;
		bool pushed;
	} cases[] = {
		{ SEL_DATA_SMALL, 0x1000, true },  /* the last doubleword, 0xffc..0xfff */
		{ SEL_DATA_SMALL, 0x1002, false }, /* 0xffe..0x1001 crosses the limit */
		{ SEL_DATA_DOWN, 0x2000, true },   /* 0x1ffc, above the limit */
		{ SEL_DATA_DOWN, 0x1002, false },  /* 0xffe, at the limit */
		{ SEL_DATA16, 0x0002, false },     /* a 16-bit SP wraps to 0xfffe, 0x10001 past it */
	};
	struct task_switch_fault fault;

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setup(NULL);
		tss_init(TSS_B, 0xb000, cases[i].esp, SEL_CODE, cases[i].ss);
		enum task_switch_result r = task_switch(&cpu, SEL_B, TASK_SWITCH_GATE, 0xa000, true,
							0x7f8, &task_mem, &fault);
		if (cases[i].pushed) {
			assert_int_equal(r, TASK_SWITCHED);
			assert_int_equal(cpu.gpr[4], cases[i].esp - 4);
			continue;
		}
		assert_int_equal(r, TASK_SWITCH_FAULT);
		assert_int_equal(fault.vector, VECTOR_SS);
		assert_true(fault.has_error_code);
		assert_int_equal(fault.error_code, 1);
		assert_int_equal(cpu.seg[SEG_TR].selector, SEL_B);
		assert_int_equal(cpu.gpr[4], cases[i].esp);
	}
}

static void assert_fault_before_commit(uint16_t selector, enum task_switch_source source,
				       unsigned vector, uint32_t error_code)
{
	struct task_switch_fault fault;
	const struct task_cpu before = cpu;

	assert_int_equal(run(selector, source, &fault), TASK_SWITCH_FAULT);
	assert_int_equal(fault.vector, vector);
	assert_true(fault.has_error_code);
	assert_int_equal(fault.error_code, error_code);
	assert_memory_equal(&cpu, &before, sizeof(cpu));
}

static void test_bad_new_tss_faults_in_the_old_task(void **state)
{
	(void)state;
	/* A busy TSS for CALL, a free one for IRET. */
	assert_fault_before_commit(SEL_A, TASK_SWITCH_CALL, VECTOR_GP, SEL_A);
	assert_fault_before_commit(SEL_B, TASK_SWITCH_IRET, VECTOR_TS, SEL_B);
	/* Past the GDT, in the LDT, not a TSS. */
	assert_fault_before_commit(0x48, TASK_SWITCH_JMP, VECTOR_GP, 0x48);
	assert_fault_before_commit(0x48, TASK_SWITCH_GATE, VECTOR_TS, 0x48);
	assert_fault_before_commit(SEL_B | 4, TASK_SWITCH_CALL, VECTOR_GP, SEL_B | 4);
	assert_fault_before_commit(SEL_CODE, TASK_SWITCH_CALL, VECTOR_GP, SEL_CODE);
	/* Not present, too small. */
	mem[GDT + SEL_B + 5] &= 0x7f;
	assert_fault_before_commit(SEL_B, TASK_SWITCH_CALL, VECTOR_NP, SEL_B);
	mem[GDT + SEL_B + 5] |= 0x80;
	mem[GDT + SEL_B] = 0x60;
	assert_fault_before_commit(SEL_B, TASK_SWITCH_CALL, VECTOR_TS, SEL_B);
}

static void test_page_fault(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	fault_page = TSS_B & ~0xfffu;
	assert_int_equal(run(SEL_B, TASK_SWITCH_CALL, &fault), TASK_SWITCH_FAULT);
	assert_int_equal(fault.vector, VECTOR_PF);
	assert_int_equal(fault.address, TSS_B);
}

/*
 * A task whose TSS has EFLAGS.VM starts in virtual-8086 mode: its segments
 * real-mode style with no descriptor behind them (selectors that would
 * fault as protected-mode ones), CPL 3; a gate's error code goes on its
 * 16-bit stack. Its INT n through a task gate goes back, saving VM and the
 * real-mode selectors, and the old task's selectors are checked again.
 */
static void test_virtual_8086_task(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	tss_init(TSS_B, 0x0010, 0x0200, 0x0300, 0x0380);
	put32(TSS_B + TSS32_EFLAGS, 0x23002); /* VM, IOPL 3 */
	put32(TSS_B + TSS32_SEG, 0x03a0);     /* ES */
	assert_int_equal(task_switch(&cpu, SEL_B, TASK_SWITCH_GATE, 0xa000, true, 0x7f8,
				     &task_mem, &fault),
			 TASK_SWITCHED);
	assert_int_equal(cpu.eflags, 0x23002 | RFLAGS_NT);
	assert_int_equal(cpu.eip, 0x0010);
	assert_int_equal(cpu.seg[SEG_CS].selector, 0x0300);
	assert_int_equal(cpu.seg[SEG_CS].base, 0x3000);
	assert_int_equal(cpu.seg[SEG_CS].limit, 0xffff);
	assert_int_equal(cpu.seg[SEG_CS].attributes, 0xf3);
	assert_int_equal(cpu.seg[SEG_ES].base, 0x3a00);
	assert_int_equal(cpu.seg[SEG_SS].base, 0x3800);
	assert_int_equal(cpu.seg[SEG_SS].attributes, 0xf3);
	/* A word of SP on a 16-bit stack, but a doubleword: the gate's TSS is 32-bit. */
	assert_int_equal(cpu.gpr[4], 0x01fc);
	assert_int_equal(get32(0x3800 + 0x01fc), 0x7f8);
	assert_true(last_write_user); /* virtual-8086 mode: CPL 3 */

	/* INT 0x41 in the virtual-8086 task, through a task gate to A. */
	mem[GDT + SEL_A + 5] &= (uint8_t)~0x2; /* A as after a JMP away from it */
	tss_init(TSS_A, 0xa005, 0x0f00, SEL_CODE, SEL_DATA);
	cpu.eip = 0x0020;
	assert_int_equal(task_switch(&cpu, SEL_A, TASK_SWITCH_GATE, 0x0022, false, 0, &task_mem,
				     &fault),
			 TASK_SWITCHED);
	assert_int_equal(get32(TSS_B + TSS32_EFLAGS) & 0x20000, 0x20000);
	assert_int_equal(get32(TSS_B + TSS32_EIP), 0x0022);
	assert_int_equal(get32(TSS_B + TSS32_SEG + 4), 0x0300);
	assert_int_equal(get32(TSS_B + TSS32_SEG), 0x03a0);
	assert_int_equal(cpu.eip, 0xa005);
	assert_int_equal(cpu.eflags, 0x2 | RFLAGS_NT);
	assert_int_equal(cpu.seg[SEG_CS].selector, SEL_CODE);
	assert_int_equal(cpu.seg[SEG_CS].attributes, 0xc09b);
	assert_int_equal(cpu.seg[SEG_SS].limit, 0xffffffff);
	assert_int_equal(get32(TSS_A + TSS32_LINK) & 0xffff, SEL_B);

	/*
	 * A selector that is fine for virtual-8086 mode is checked in a
	 * protected-mode task; its fault, with the real-mode segments still
	 * loaded, ends the VM with the reason (see below).
	 */
	mem[GDT + SEL_A + 5] &= (uint8_t)~0x2;
	put32(TSS_A + TSS32_SEG + 4 * 3, 0x0300); /* DS: past the GDT */
	cpu = (struct task_cpu){ .eip = 0x20, .eflags = 0x23002, .cr0 = CR0_PE, .gdtr_base = GDT,
				 .gdtr_limit = GDT_ENTRIES * 8 - 1 };
	for (unsigned i = 0; i < SEG_TR; i++)
		cpu.seg[i] = (struct segment_state){ 0x0300, 0x3000, 0xffff, 0xf3 };
	cpu.seg[SEG_LDTR] = (struct segment_state){ 0 };
	cpu.seg[SEG_TR] = (struct segment_state){ SEL_B, TSS_B, TSS32_MIN_LIMIT, 0x8b };
	assert_int_equal(task_switch(&cpu, SEL_A, TASK_SWITCH_GATE, 0x22, false, 0, &task_mem,
				     &fault),
			 TASK_SWITCH_FAILED);
	assert_non_null(strstr(fault.why, "virtual-8086"));
}

/*
 * A bad LDT selector faults in a task that starts in virtual-8086 mode
 * with its segments already real-mode style: VM entry takes nothing else.
 */
static void test_virtual_8086_ldt_fault(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	tss_init(TSS_B, 0x0010, 0x0200, 0x0300, 0x0380);
	put32(TSS_B + TSS32_EFLAGS, 0x23002);
	put32(TSS_B + TSS32_LDT, 0x0300); /* past the GDT */
	assert_int_equal(run(SEL_B, TASK_SWITCH_JMP, &fault), TASK_SWITCH_FAULT);
	assert_int_equal(fault.vector, VECTOR_TS);
	assert_true(cpu.eflags & 0x20000);
	for (unsigned i = 0; i < SEG_LDTR; i++) {
		assert_int_equal(cpu.seg[i].base, (uint32_t)cpu.seg[i].selector << 4);
		assert_int_equal(cpu.seg[i].attributes, 0xf3);
	}
}

/* Segment faults come after the commit: the new task is in, and takes them. */
static void test_bad_segments_fault_in_the_new_task(void **state)
{
	struct task_switch_fault fault;
	static const struct {
		unsigned slot; /* in the TSS: ES CS SS DS FS GS */
		uint16_t selector;
		unsigned vector;
	} cases[] = {
		{ 1, 0, VECTOR_TS },                   /* null CS */
		{ 1, SEL_DATA, VECTOR_TS },            /* data as CS */
		{ 1, SEL_CODE_ABSENT, VECTOR_NP },     /* CS not present */
		{ 2, SEL_CODE, VECTOR_TS },            /* code as SS */
		{ 2, SEL_DATA_ABSENT, VECTOR_SS },     /* SS not present */
		{ 2, SEL_DATA | 3, VECTOR_TS },        /* SS RPL is not the CPL */
		{ 3, SEL_DATA_ABSENT, VECTOR_NP },     /* DS not present */
		{ 3, SEL_A, VECTOR_TS },               /* a TSS as DS */
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setup(NULL);
		put32(TSS_B + TSS32_SEG + 4 * cases[i].slot, cases[i].selector);
		assert_int_equal(run(SEL_B, TASK_SWITCH_CALL, &fault), TASK_SWITCH_FAULT);
		assert_int_equal(fault.vector, cases[i].vector);
		assert_int_equal(fault.error_code, cases[i].selector & 0xfffc);
		assert_int_equal(cpu.seg[SEG_TR].selector, SEL_B);
		assert_int_equal(cpu.eip, 0xb000);
	}
	/* A null DS is fine: it becomes unusable. */
	setup(NULL);
	put32(TSS_B + TSS32_SEG + 4 * 3, 0);
	assert_int_equal(run(SEL_B, TASK_SWITCH_CALL, &fault), TASK_SWITCHED);
	assert_int_equal(cpu.seg[SEG_DS].attributes, 0);
}

static void test_accessed_bits_are_set(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	mem[GDT + SEL_CODE + 5] &= (uint8_t)~1u;
	assert_int_equal(run(SEL_B, TASK_SWITCH_CALL, &fault), TASK_SWITCHED);
	assert_true(mem[GDT + SEL_CODE + 5] & 1);
	assert_true(cpu.seg[SEG_CS].attributes & 1);
}

/*
 * A 32-bit task calls a 16-bit one, which IRETs back (SDM 8.6): the
 * 32-bit task comes back whole from its TSS; the 16-bit TSS takes only
 * the low halves, and nothing past its 44 bytes or before IP.
 */
static void test_16_bit_call_and_iret(void **state)
{
	(void)state;
	cpu.cr0 |= CR0_PG;
	cpu.cr3 = 0x7000;
	put32(TSS_A + TSS32_CR3, 0x7000);
	cpu.debug_trap = true;
	mem[TSS_16 + TSS16_MIN_LIMIT + 1] = 0xcc;
	put16(TSS_16 + 2, 0x5150); /* SP0 */
	switch_ok(SEL_16, TASK_SWITCH_CALL, 0xa005);
	/* A saved in its 32-bit TSS. */
	assert_int_equal(get32(TSS_A + TSS32_EIP), 0xa005);
	assert_int_equal(get32(TSS_A + TSS32_GPR + 4 * 7), 0xa7);
	assert_int_equal(get32(TSS_A + TSS32_SEG + 4 * 5), SEL_DATA);
	/* The 16-bit task: IP, FLAGS with NT, words in the registers' low halves. */
	assert_int_equal(cpu.eip, 0x0100);
	assert_int_equal(cpu.eflags, 0x2 | RFLAGS_NT);
	assert_int_equal(cpu.gpr[0] & 0xffff, 0x1600);
	assert_int_equal(cpu.gpr[4] & 0xffff, STACK_16);
	assert_int_equal(cpu.gpr[7] & 0xffff, 0x1607);
	assert_int_equal(cpu.seg[SEG_CS].selector, SEL_CODE16);
	assert_int_equal(cpu.seg[SEG_CS].limit, 0xffff);
	assert_int_equal(cpu.seg[SEG_SS].selector, SEL_DATA16);
	assert_int_equal(cpu.seg[SEG_DS].selector, SEL_DATA16);
	/* No FS or GS, CR3 or T bit in a 16-bit TSS: FS and GS null, CR3 kept, no trap. */
	assert_int_equal(cpu.seg[SEG_FS].attributes, 0);
	assert_int_equal(cpu.seg[SEG_GS].attributes, 0);
	assert_int_equal(cpu.cr3, 0x7000);
	assert_false(cpu.debug_trap);
	/* Linked back to A, busy (type 3), A still busy; CR0.TS. */
	assert_int_equal(get16(TSS_16 + TSS16_LINK), SEL_A);
	assert_int_equal(type_at(SEL_16), 0x3);
	assert_int_equal(type_at(SEL_A), 0xb);
	assert_int_equal(cpu.seg[SEG_TR].selector, SEL_16);
	assert_int_equal(cpu.seg[SEG_TR].attributes & 0xf, 0x3);
	assert_int_equal(cpu.seg[SEG_TR].limit, 0x2b);
	assert_true(cpu.cr0 & CR0_TS);

	/* IRET: A's 32-bit registers, EIP, EFLAGS and FS/GS whole again. */
	cpu.gpr[0] = 0x12345678;
	cpu.gpr[6] = 0xfedcba98;
	cpu.eflags |= 0x40000; /* AC: lost in the FLAGS word */
	switch_ok(SEL_A, TASK_SWITCH_IRET, 0x10123);
	assert_int_equal(cpu.eip, 0xa005);
	assert_int_equal(cpu.eflags, 0x202);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(cpu.gpr[i], 0xa0 + i);
	assert_int_equal(cpu.seg[SEG_FS].selector, SEL_DATA);
	assert_int_equal(cpu.seg[SEG_GS].attributes, 0xc093);
	assert_int_equal(cpu.seg[SEG_CS].limit, 0xffffffff);
	assert_int_equal(cpu.cr3, 0x7000);
	/* The 16-bit task saved as words: IP, FLAGS without NT, AX, SI; upper halves lost. */
	assert_int_equal(get16(TSS_16 + TSS16_IP), 0x0123);
	assert_int_equal(get16(TSS_16 + TSS16_FLAGS), 0x2);
	assert_int_equal(get16(TSS_16 + TSS16_GPR), 0x5678);
	assert_int_equal(get16(TSS_16 + TSS16_GPR + 2 * 6), 0xba98);
	assert_int_equal(get16(TSS_16 + TSS16_SEG + 2), SEL_CODE16);
	assert_int_equal(get16(TSS_16 + TSS16_LDT), 0);
	assert_int_equal(get16(TSS_16 + 2), 0x5150);
	assert_int_equal(mem[TSS_16 + TSS16_MIN_LIMIT + 1], 0xcc);
	assert_int_equal(type_at(SEL_16), 0x1);
	assert_int_equal(type_at(SEL_A), 0xb);
}

/* 16-bit to 16-bit: a nested CALL links the inner TSS to the outer one. */
static void test_16_bit_to_16_bit_call(void **state)
{
	(void)state;
	switch_ok(SEL_16, TASK_SWITCH_CALL, 0xa005);
	switch_ok(SEL_16B, TASK_SWITCH_CALL, 0x0105);
	assert_int_equal(get16(TSS_16B + TSS16_LINK), SEL_16);
	assert_int_equal(get16(TSS_16 + TSS16_IP), 0x0105);
	assert_int_equal(get16(TSS_16 + TSS16_FLAGS), 0x2 | RFLAGS_NT);
	assert_int_equal(cpu.eip, 0x0200);
	assert_int_equal(type_at(SEL_16), 0x3);
	assert_int_equal(type_at(SEL_16B), 0x3);
	switch_ok(SEL_16, TASK_SWITCH_IRET, 0x0201);
	assert_int_equal(cpu.eip, 0x0105);
	assert_int_equal(cpu.eflags, 0x2 | RFLAGS_NT);
	assert_int_equal(type_at(SEL_16B), 0x1);
	assert_int_equal(type_at(SEL_16), 0x3);
}

/* JMP: 32 to 16, 16 to 16, 16 to 32; each frees the task it leaves, none links. */
static void test_16_bit_jmp(void **state)
{
	(void)state;
	switch_ok(SEL_16, TASK_SWITCH_JMP, 0xa005);
	assert_int_equal(type_at(SEL_A), 0x9);
	assert_int_equal(type_at(SEL_16), 0x3);
	assert_int_equal(get16(TSS_16 + TSS16_LINK), 0);
	assert_false(cpu.eflags & RFLAGS_NT);
	switch_ok(SEL_16B, TASK_SWITCH_JMP, 0x12345);
	assert_int_equal(type_at(SEL_16), 0x1);
	assert_int_equal(type_at(SEL_16B), 0x3);
	assert_int_equal(get16(TSS_16 + TSS16_IP), 0x2345);
	assert_int_equal(cpu.eip, 0x0200);
	switch_ok(SEL_A, TASK_SWITCH_JMP, 0x0210);
	assert_int_equal(type_at(SEL_16B), 0x1);
	assert_int_equal(type_at(SEL_A), 0xb);
	assert_int_equal(get16(TSS_16B + TSS16_IP), 0x0210);
	assert_int_equal(cpu.eip, 0xa005);
	assert_int_equal(cpu.gpr[3], 0xa3);
}

/*
 * An exception through a task gate into a 16-bit task pushes its error
 * code as a word (SDM 6.13), at SP: the stack segment is 16-bit.
 */
static void test_16_bit_gate_pushes_a_word(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	put16(STACK_16 - 4, 0xcccc);
	assert_int_equal(task_switch(&cpu, SEL_16, TASK_SWITCH_GATE, 0xa000, true, 0x7f8, &task_mem,
				     &fault),
			 TASK_SWITCHED);
	assert_int_equal(cpu.gpr[4] & 0xffff, STACK_16 - 2);
	assert_int_equal(get16(STACK_16 - 2), 0x7f8);
	assert_int_equal(get16(STACK_16 - 4), 0xcccc);
	assert_int_equal(get16(TSS_16 + TSS16_LINK), SEL_A);
	assert_true(cpu.eflags & RFLAGS_NT);
	assert_int_equal(get32(TSS_A + TSS32_EIP), 0xa000);
	/* A 16-bit task's gate into a 32-bit one: a doubleword on the 32-bit stack. */
	assert_int_equal(task_switch(&cpu, SEL_B, TASK_SWITCH_GATE, 0x0100, true, 0x10, &task_mem,
				     &fault),
			 TASK_SWITCHED);
	assert_int_equal(cpu.gpr[4], STACK_B - 4);
	assert_int_equal(get32(STACK_B - 4), 0x10);
	assert_int_equal(get32(TSS_B + TSS32_LINK), SEL_16);
}

static void test_16_bit_tss_checks(void **state)
{
	struct task_switch_fault fault;

	(void)state;
	/* Busy for CALL, available for IRET, as for a 32-bit TSS. */
	mem[GDT + SEL_16 + 5] |= 2;
	assert_fault_before_commit(SEL_16, TASK_SWITCH_CALL, VECTOR_GP, SEL_16);
	mem[GDT + SEL_16 + 5] &= (uint8_t)~2u;
	assert_fault_before_commit(SEL_16, TASK_SWITCH_IRET, VECTOR_TS, SEL_16);
	/* A limit below 2BH (the 44-byte format less one) is #TS; 2BH itself is enough. */
	mem[GDT + SEL_16] = 0x2a;
	assert_fault_before_commit(SEL_16, TASK_SWITCH_CALL, VECTOR_TS, SEL_16);
	assert_fault_before_commit(SEL_16, TASK_SWITCH_JMP, VECTOR_TS, SEL_16);
	assert_int_equal(type_at(SEL_16), 0x1);
	mem[GDT + SEL_16] = 0x2b;
	/* A null CS in the 16-bit TSS: #TS in the new task, after the commit. */
	put16(TSS_16 + TSS16_SEG + 2, 0);
	assert_int_equal(run(SEL_16, TASK_SWITCH_CALL, &fault), TASK_SWITCH_FAULT);
	assert_int_equal(fault.vector, VECTOR_TS);
	assert_int_equal(fault.error_code, 0);
	assert_int_equal(cpu.seg[SEG_TR].selector, SEL_16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_call_links_and_iret_returns, setup),
		cmocka_unit_test_setup(test_debug_trap_bit, setup),
		cmocka_unit_test_setup(test_jmp_frees_the_old_task, setup),
		cmocka_unit_test_setup(test_gate_pushes_the_error_code, setup),
		cmocka_unit_test_setup(test_error_code_push_checks_the_stack_limit, setup),
		cmocka_unit_test_setup(test_bad_new_tss_faults_in_the_old_task, setup),
		cmocka_unit_test_setup(test_page_fault, setup),
		cmocka_unit_test_setup(test_virtual_8086_task, setup),
		cmocka_unit_test_setup(test_virtual_8086_ldt_fault, setup),
		cmocka_unit_test_setup(test_bad_segments_fault_in_the_new_task, setup),
		cmocka_unit_test_setup(test_accessed_bits_are_set, setup),
		cmocka_unit_test_setup(test_16_bit_call_and_iret, setup),
		cmocka_unit_test_setup(test_16_bit_to_16_bit_call, setup),
		cmocka_unit_test_setup(test_16_bit_jmp, setup),
		cmocka_unit_test_setup(test_16_bit_gate_pushes_a_word, setup),
		cmocka_unit_test_setup(test_16_bit_tss_checks, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
