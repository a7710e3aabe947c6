#include "vmm/task_switch.h"

#include "x86/cpu.h"
#include "x86/segment.h"

#include <stddef.h>

/* Descriptor types (SDM Vol. 3A, table 3-2) with S = 0. */
#define TYPE_TSS16_AVAILABLE 0x1
#define TYPE_LDT 0x2
#define TYPE_TSS16_BUSY 0x3
#define TYPE_TSS32_AVAILABLE 0x9
#define TYPE_TSS32_BUSY 0xb
#define TYPE_BUSY 0x2
/* Code and data types with S = 1 (table 3-1). */
#define TYPE_ACCESSED 0x1
#define TYPE_DATA_WRITABLE 0x2
#define TYPE_CODE_READABLE 0x2
#define TYPE_CODE_CONFORMING 0x4
#define TYPE_CODE 0x8

#define SELECTOR_RPL 3u
#define SELECTOR_TI 4u
#define EFLAGS_NT (1u << 14)
#define EFLAGS_VM (1u << 17)
#define EFLAGS_FIXED_1 (1u << 1)
#define EFLAGS_LOADABLE 0x3f7fd5u
#define DESC_ACCESS_BYTE 5

struct descriptor {
	uint8_t raw[8];
	uint32_t linear; /* where it is in its table */
};

static unsigned type_of(const struct descriptor *d)
{
	return d->raw[DESC_ACCESS_BYTE] & 0xf;
}

static bool is_system(const struct descriptor *d)
{
	return !(d->raw[DESC_ACCESS_BYTE] & SEG_ATTR_S);
}

static bool present(const struct descriptor *d)
{
	return d->raw[DESC_ACCESS_BYTE] & SEG_ATTR_PRESENT;
}

static unsigned dpl_of(const struct descriptor *d)
{
	return (d->raw[DESC_ACCESS_BYTE] & SEG_ATTR_DPL_MASK) >> SEG_ATTR_DPL_SHIFT;
}

/* A descriptor as the segment register's hidden part (SDM 3.4.3). */
static struct segment_state cache_of(const struct descriptor *d, uint16_t selector)
{
	const uint8_t *r = d->raw;
	uint32_t limit = r[0] | (uint32_t)r[1] << 8 | (uint32_t)(r[6] & 0xf) << 16;

	if (r[6] & 0x80)
		limit = limit << 12 | 0xfff;
	return (struct segment_state){
		.selector = selector,
		.base = r[2] | (uint32_t)r[3] << 8 | (uint32_t)r[4] << 16 | (uint32_t)r[7] << 24,
		.limit = limit,
		.attributes = r[5] | (uint32_t)(r[6] & 0xf0) << 8,
	};
}

static enum task_switch_result raise(struct task_switch_fault *f, unsigned vector,
				     uint16_t selector)
{
	*f = (struct task_switch_fault){ .vector = vector, .has_error_code = true,
					 .error_code = selector & 0xfffcu };
	return TASK_SWITCH_FAULT;
}

static enum task_switch_result failed(struct task_switch_fault *f, const char *why)
{
	*f = (struct task_switch_fault){ .why = why };
	return TASK_SWITCH_FAILED;
}

/* A memory access's status as the switch's result (-1: #PF, -2: not RAM). */
static enum task_switch_result memory_fault(int status, uint32_t linear, uint32_t pf_error,
					    struct task_switch_fault *f)
{
	if (status == -1) {
		*f = (struct task_switch_fault){ .vector = VECTOR_PF, .has_error_code = true,
						 .error_code = pf_error, .address = linear };
		return TASK_SWITCH_FAULT;
	}
	return failed(f, "a TSS or descriptor table outside guest RAM");
}

/*
 * Reads the descriptor selector names from the GDT, or the LDT when its
 * TI bit says so. Returns 1 when the selector is outside its table (the
 * caller raises its fault), 0 when read, or a memory status.
 */
static int read_descriptor(const struct task_cpu *cpu, const struct task_mem *mem,
			   uint16_t selector, struct descriptor *d, uint32_t *pf_error)
{
	uint64_t base = cpu->gdtr_base;
	uint32_t limit = cpu->gdtr_limit;

	if (selector & SELECTOR_TI) {
		if (!cpu->seg[SEG_LDTR].attributes)
			return 1;
		base = cpu->seg[SEG_LDTR].base;
		limit = cpu->seg[SEG_LDTR].limit;
	}
	uint32_t offset = selector & ~7u;
	if (offset + 7 > limit)
		return 1;
	d->linear = (uint32_t)(base + offset);
	return mem->read(mem->ctx, cpu, d->linear, d->raw, sizeof(d->raw), pf_error);
}

static int write_access_byte(const struct task_cpu *cpu, const struct task_mem *mem,
			     const struct descriptor *d, uint32_t *pf_error)
{
	return mem->write(mem->ctx, cpu, d->linear + DESC_ACCESS_BYTE, &d->raw[DESC_ACCESS_BYTE],
			  1, pf_error);
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Loads segment register seg of the new task from its selector, with the
 * checks of the task switch (SDM Vol. 3A table 8-1, and the TASK-SWITCH
 * steps of IRET and INT n in Vol. 2): faults are the new task's.
 */
static enum task_switch_result load_segment(struct task_cpu *cpu, const struct task_mem *mem,
					    enum x86_segment seg, uint16_t selector,
					    struct task_switch_fault *f)
{
	struct descriptor d;
	uint32_t pf_error = 0;
	unsigned rpl = selector & SELECTOR_RPL, cpl = cpu->seg[SEG_CS].selector & SELECTOR_RPL;

	if ((selector & ~SELECTOR_RPL) == 0 && !(selector & SELECTOR_TI)) {
		/* A null selector: CS and SS may not have one; the others become unusable. */
		if (seg == SEG_CS || seg == SEG_SS)
			return raise(f, VECTOR_TS, 0);
		cpu->seg[seg] = (struct segment_state){ .selector = selector };
		return TASK_SWITCHED;
	}
	if (seg == SEG_LDTR && (selector & SELECTOR_TI))
		return raise(f, VECTOR_TS, selector);
	int status = read_descriptor(cpu, mem, selector, &d, &pf_error);
	if (status == 1)
		return raise(f, VECTOR_TS, selector);
	if (status)
		return memory_fault(status, d.linear, pf_error, f);

	unsigned type = type_of(&d), dpl = dpl_of(&d);
	bool ok;
	switch (seg) {
	case SEG_LDTR:
		ok = is_system(&d) && type == TYPE_LDT;
		break;
	case SEG_CS:
		ok = !is_system(&d) && (type & TYPE_CODE) &&
		     ((type & TYPE_CODE_CONFORMING) ? dpl <= rpl : dpl == rpl);
		break;
	case SEG_SS:
		ok = !is_system(&d) && !(type & TYPE_CODE) && (type & TYPE_DATA_WRITABLE) &&
		     dpl == cpl && rpl == cpl;
		break;
	default:
		/* Data, or readable code; unless conforming code, DPL >= CPL and RPL. */
		ok = !is_system(&d) &&
		     (!(type & TYPE_CODE) || (type & TYPE_CODE_READABLE)) &&
		     (((type & TYPE_CODE) && (type & TYPE_CODE_CONFORMING)) ||
		      (dpl >= cpl && dpl >= rpl));
		break;
	}
	if (!ok)
		return raise(f, VECTOR_TS, selector);
	if (!present(&d))
		return raise(f, seg == SEG_SS ? VECTOR_SS : seg == SEG_LDTR ? VECTOR_TS : VECTOR_NP,
			     selector);
	/* Loading a code or data segment sets its accessed bit (SDM 3.4.5.1). */
	if (!is_system(&d) && !(type & TYPE_ACCESSED)) {
		d.raw[DESC_ACCESS_BYTE] |= TYPE_ACCESSED;
		status = write_access_byte(cpu, mem, &d, &pf_error);
		if (status)
			return memory_fault(status, d.linear + DESC_ACCESS_BYTE, pf_error, f);
	}
	cpu->seg[seg] = cache_of(&d, selector);
	return TASK_SWITCHED;
}

/* The new task's TSS descriptor, checked as SDM 8.3 steps 2-3 say. */
static enum task_switch_result check_new_tss(const struct task_cpu *cpu,
					     const struct task_mem *mem, uint16_t selector,
					     enum task_switch_source source, struct descriptor *d,
					     struct task_switch_fault *f)
{
	/* CALL and JMP fault with #GP, IRET and task gates with #TS (Vol. 2, JMP, IRET, INT n). */
	unsigned bad_selector = source == TASK_SWITCH_CALL || source == TASK_SWITCH_JMP
					? VECTOR_GP : VECTOR_TS;
	uint32_t pf_error = 0;

	if (selector & SELECTOR_TI)
		return raise(f, bad_selector, selector);
	int status = read_descriptor(cpu, mem, selector, d, &pf_error);
	if (status == 1)
		return raise(f, bad_selector, selector);
	if (status)
		return memory_fault(status, d->linear, pf_error, f);
	unsigned type = type_of(d);
	if (is_system(d) && (type == TYPE_TSS16_AVAILABLE || type == TYPE_TSS16_BUSY))
		return failed(f, "task switch to a 16-bit TSS (not emulated)");
	if (!is_system(d) || (type != TYPE_TSS32_AVAILABLE && type != TYPE_TSS32_BUSY))
		return raise(f, bad_selector, selector);
	/* IRET returns to a busy task; the others may not enter one. */
	if ((source == TASK_SWITCH_IRET) != (type == TYPE_TSS32_BUSY))
		return raise(f, source == TASK_SWITCH_IRET ? VECTOR_TS : VECTOR_GP, selector);
	if (!present(d))
		return raise(f, VECTOR_NP, selector);
	if (cache_of(d, selector).limit < TSS32_MIN_LIMIT)
		return raise(f, VECTOR_TS, selector);
	return TASK_SWITCHED;
}

enum task_switch_result task_switch(struct task_cpu *cpu, uint16_t selector,
				    enum task_switch_source source, uint32_t next_eip,
				    bool push_error_code, uint32_t error_code,
				    const struct task_mem *mem, struct task_switch_fault *fault)
{
	struct segment_state old_tr = cpu->seg[SEG_TR];
	struct descriptor new_desc, old_desc;
	uint8_t new_tss[TSS32_MIN_LIMIT + 1], saved[TSS32_LDT - TSS32_EIP];
	uint32_t pf_error = 0;
	int status;

	cpu->debug_trap = false;
	if ((old_tr.attributes & 0xf) != TYPE_TSS32_BUSY)
		return failed(fault, "task switch from a 16-bit or no TSS (not emulated)");
	enum task_switch_result r = check_new_tss(cpu, mem, selector, source, &new_desc, fault);
	if (r != TASK_SWITCHED)
		return r;
	struct segment_state new_tr = cache_of(&new_desc, selector);
	status = mem->read(mem->ctx, cpu, (uint32_t)new_tr.base, new_tss, sizeof(new_tss),
			   &pf_error);
	if (status)
		return memory_fault(status, (uint32_t)new_tr.base, pf_error, fault);
	/* Reserved EFLAGS bits are what the CPU makes them: 1 is set, 3, 5, 15, 31:22 clear. */
	uint32_t new_eflags = (le32(new_tss + TSS32_EFLAGS) & EFLAGS_LOADABLE) | EFLAGS_FIXED_1;
	if (new_eflags & EFLAGS_VM)
		return failed(fault, "task switch into virtual-8086 mode (not emulated)");

	/* The old task: saved into its TSS, not busy after JMP and IRET (SDM 8.3 steps 5-7). */
	uint32_t old_eflags = cpu->eflags;
	if (source == TASK_SWITCH_IRET)
		old_eflags &= ~EFLAGS_NT;
	put_le32(saved, next_eip);
	put_le32(saved + TSS32_EFLAGS - TSS32_EIP, old_eflags);
	for (unsigned i = 0; i < 8; i++)
		put_le32(saved + TSS32_GPR - TSS32_EIP + 4 * i, cpu->gpr[i]);
	static const enum x86_segment tss_order[6] = { SEG_ES, SEG_CS, SEG_SS,
						       SEG_DS, SEG_FS, SEG_GS };
	for (unsigned i = 0; i < 6; i++)
		put_le32(saved + TSS32_SEG - TSS32_EIP + 4 * i, cpu->seg[tss_order[i]].selector);
	status = mem->write(mem->ctx, cpu, (uint32_t)old_tr.base + TSS32_EIP, saved, sizeof(saved),
			    &pf_error);
	if (status)
		return memory_fault(status, (uint32_t)old_tr.base + TSS32_EIP, pf_error, fault);
	if (source == TASK_SWITCH_JMP || source == TASK_SWITCH_IRET) {
		status = read_descriptor(cpu, mem, old_tr.selector, &old_desc, &pf_error);
		if (status == 0) {
			old_desc.raw[DESC_ACCESS_BYTE] &= (uint8_t)~TYPE_BUSY;
			status = write_access_byte(cpu, mem, &old_desc, &pf_error);
		}
		if (status)
			return status == 1 ? raise(fault, VECTOR_TS, old_tr.selector)
					   : memory_fault(status, old_desc.linear, pf_error, fault);
	}

	/* The new task: linked back for CALL and events, busy (steps 8-10). */
	if (source == TASK_SWITCH_CALL || source == TASK_SWITCH_GATE) {
		uint8_t link[2] = { (uint8_t)old_tr.selector, (uint8_t)(old_tr.selector >> 8) };
		new_eflags |= EFLAGS_NT;
		status = mem->write(mem->ctx, cpu, (uint32_t)new_tr.base + TSS32_LINK, link,
				    sizeof(link), &pf_error);
		if (status)
			return memory_fault(status, (uint32_t)new_tr.base, pf_error, fault);
	}
	if (source != TASK_SWITCH_IRET) {
		new_desc.raw[DESC_ACCESS_BYTE] |= TYPE_BUSY;
		status = write_access_byte(cpu, mem, &new_desc, &pf_error);
		if (status)
			return memory_fault(status, new_desc.linear, pf_error, fault);
	}
	new_tr.attributes |= TYPE_BUSY;

	/* Committed: the new task's state; faults from here on are its own (step 11). */
	cpu->seg[SEG_TR] = new_tr;
	cpu->cr0 |= CR0_TS;
	if (cpu->cr0 & CR0_PG)
		cpu->cr3 = le32(new_tss + TSS32_CR3);
	cpu->eip = le32(new_tss + TSS32_EIP);
	cpu->eflags = new_eflags;
	cpu->debug_trap = new_tss[TSS32_T] & 1;
	for (unsigned i = 0; i < 8; i++)
		cpu->gpr[i] = le32(new_tss + TSS32_GPR + 4 * i);
	uint16_t selectors[6];
	for (unsigned i = 0; i < 6; i++)
		selectors[i] = (uint16_t)le32(new_tss + TSS32_SEG + 4 * i);
	/* CS first: its RPL is the new CPL, which the checks of SS and the data segments use. */
	cpu->seg[SEG_CS].selector = selectors[1];
	r = load_segment(cpu, mem, SEG_LDTR, (uint16_t)le32(new_tss + TSS32_LDT), fault);
	static const enum x86_segment load_order[6] = { SEG_CS, SEG_SS, SEG_ES,
							SEG_DS, SEG_FS, SEG_GS };
	static const unsigned tss_slot[6] = { 1, 2, 0, 3, 4, 5 };
	for (unsigned i = 0; i < 6 && r == TASK_SWITCHED; i++)
		r = load_segment(cpu, mem, load_order[i], selectors[tss_slot[i]], fault);
	if (r != TASK_SWITCHED)
		return r;

	/* An exception's error code goes on the new task's stack (SDM 6.12.2). */
	if (push_error_code) {
		uint32_t esp = cpu->gpr[4] - 4;
		uint8_t code[4];
		put_le32(code, error_code);
		uint32_t linear = (uint32_t)(cpu->seg[SEG_SS].base + esp);
		status = mem->write(mem->ctx, cpu, linear, code, sizeof(code), &pf_error);
		if (status)
			return memory_fault(status, linear, pf_error, fault);
		cpu->gpr[4] = esp;
	}
	return TASK_SWITCHED;
}
