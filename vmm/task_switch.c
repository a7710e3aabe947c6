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
#define TYPE_DATA_EXPAND_DOWN 0x4
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
			  1, false, pf_error);
}

/* A little-endian field of width bytes (2 or 4). */
static uint32_t get_field(const uint8_t *p, unsigned width)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < width; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

/* Only the low width bytes of v: a 16-bit TSS loses the upper halves (SDM 8.6). */
static void put_field(uint8_t *p, unsigned width, uint32_t v)
{
	for (unsigned i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Where a TSS format keeps what a switch reads and writes. Both formats
 * hold the same fields in the same order, every one width bytes wide
 * (SDM Vol. 3A figure 8-2; 8.6, figure 8-10): the link, the instruction
 * pointer, the flags, EAX..EDI, the segment selectors, the LDT selector.
 */
struct tss_layout {
	unsigned width;
	unsigned link, ip, flags, gpr, seg, ldt;
	unsigned segments; /* ES CS SS DS, and FS GS in the 32-bit TSS */
	unsigned cr3, t;   /* 0: not in this format */
	uint32_t min_limit;
	/*
	 * What a general register's upper half becomes when the task is
	 * loaded. From a 16-bit TSS the upper halves are "modified and not
	 * maintained" (SDM 8.6), their value left open: ones here, as Bochs
	 * and QEMU model the IA-32 processors.
	 */
	uint32_t gpr_upper;
};

static const struct tss_layout tss32 = {
	.width = 4, .link = TSS32_LINK, .ip = TSS32_EIP, .flags = TSS32_EFLAGS,
	.gpr = TSS32_GPR, .seg = TSS32_SEG, .ldt = TSS32_LDT, .segments = 6,
	.cr3 = TSS32_CR3, .t = TSS32_T, .min_limit = TSS32_MIN_LIMIT, .gpr_upper = 0,
};

/*
 * No CR3: a 16-bit task runs on the previous task's page tables; no T
 * bit; a limit of at least 2BH, one less than the format's 44 bytes as
 * 67H is for the 32-bit TSS's 104 (SDM 8.2.2; 8.6 and table 6-6 quote
 * 2CH, the size itself).
 */
static const struct tss_layout tss16 = {
	.width = 2, .link = TSS16_LINK, .ip = TSS16_IP, .flags = TSS16_FLAGS,
	.gpr = TSS16_GPR, .seg = TSS16_SEG, .ldt = TSS16_LDT, .segments = 4,
	.cr3 = 0, .t = 0, .min_limit = TSS16_MIN_LIMIT, .gpr_upper = 0xffff0000u,
};

/* task_switch() reads and saves either format in buffers sized for the 32-bit one. */
_Static_assert(TSS16_MIN_LIMIT <= TSS32_MIN_LIMIT && TSS16_LDT - TSS16_IP <= TSS32_LDT - TSS32_EIP,
	       "the 16-bit TSS fits the 32-bit TSS's buffers");

/* The format a TSS descriptor type (available or busy) names, or NULL. */
static const struct tss_layout *tss_layout_of(unsigned type)
{
	switch (type & ~TYPE_BUSY) {
	case TYPE_TSS32_AVAILABLE:
		return &tss32;
	case TYPE_TSS16_AVAILABLE:
		return &tss16;
	default:
		return NULL;
	}
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

/*
 * A segment of a task that starts in virtual-8086 mode (its TSS's EFLAGS.VM,
 * SDM Vol. 3A 20.2.1, 8.3 step 11): loaded as in real mode, base selector
 * times 16 and a 64-KiB limit, with no descriptor and so no check, as a
 * read/write data segment at privilege 3, the attributes VM entry demands
 * of every segment register in virtual-8086 mode (Vol. 3C 26.3.1.2).
 */
static struct segment_state virtual_8086_segment(uint16_t selector)
{
	return (struct segment_state){
		.selector = selector,
		.base = (uint32_t)selector << 4,
		.limit = 0xffff,
		.attributes = SEG_ATTR_PRESENT | 3u << SEG_ATTR_DPL_SHIFT | SEG_ATTR_S |
			      SEG_ATTR_TYPE_DATA_RW_ACCESSED,
	};
}

/* The new task's TSS descriptor, checked as SDM 8.3 steps 2-3 say; *layout is its format. */
static enum task_switch_result check_new_tss(const struct task_cpu *cpu,
					     const struct task_mem *mem, uint16_t selector,
					     enum task_switch_source source, struct descriptor *d,
					     const struct tss_layout **layout,
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
	*layout = is_system(d) ? tss_layout_of(type) : NULL;
	if (!*layout)
		return raise(f, bad_selector, selector);
	/* IRET returns to a busy task; the others may not enter one. */
	if ((source == TASK_SWITCH_IRET) != ((type & TYPE_BUSY) != 0))
		return raise(f, source == TASK_SWITCH_IRET ? VECTOR_TS : VECTOR_GP, selector);
	if (!present(d))
		return raise(f, VECTOR_NP, selector);
	if (cache_of(d, selector).limit < (*layout)->min_limit)
		return raise(f, VECTOR_TS, selector);
	return TASK_SWITCHED;
}

/*
 * Whether width bytes at offset lie inside the stack segment (SDM Vol. 3A
 * 5.3): an expand-up segment's offsets are 0..limit, an expand-down one's
 * limit + 1 up to FFFFH, or FFFFFFFFH with its B flag.
 */
static bool on_stack(const struct segment_state *ss, uint32_t offset, unsigned width)
{
	uint64_t last = (uint64_t)offset + width - 1;

	if (ss->attributes & TYPE_DATA_EXPAND_DOWN)
		return offset > ss->limit &&
		       last <= ((ss->attributes & SEG_ATTR_DB) ? 0xffffffffu : 0xffffu);
	return last <= ss->limit;
}

/*
 * Pushes an exception's error code on the new task's stack (SDM 6.12.2):
 * a word into a 16-bit task, a doubleword into a 32-bit one, as wide as
 * the gate (6.13), which for a task gate is its TSS's format; SP or ESP
 * as the stack segment's B flag says (3.4.5). It is the new task's own
 * push: checked against its stack's limit, #SS(EXT) past it (the INT n
 * pseudocode's task-gate path: the error code is EXT, 1, as the fault
 * comes while an exception is delivered), and a user access at CPL 3.
 */
static enum task_switch_result push_error_code_on(struct task_cpu *cpu,
						  const struct task_mem *mem, unsigned width,
						  uint32_t error_code, struct task_switch_fault *f)
{
	const struct segment_state *ss = &cpu->seg[SEG_SS];
	uint32_t sp_mask = (ss->attributes & SEG_ATTR_DB) ? 0xffffffffu : 0xffffu;
	uint32_t esp = (cpu->gpr[4] & ~sp_mask) | ((cpu->gpr[4] - width) & sp_mask);
	uint32_t linear = (uint32_t)(ss->base + (esp & sp_mask)), pf_error = 0;
	bool user = (cpu->seg[SEG_CS].selector & SELECTOR_RPL) == 3 || (cpu->eflags & EFLAGS_VM);
	uint8_t code[4];

	if (!on_stack(ss, esp & sp_mask, width)) {
		*f = (struct task_switch_fault){ .vector = VECTOR_SS, .has_error_code = true,
						 .error_code = 1 };
		return TASK_SWITCH_FAULT;
	}
	put_field(code, width, error_code);
	int status = mem->write(mem->ctx, cpu, linear, code, width, user, &pf_error);
	if (status)
		return memory_fault(status, linear, pf_error, f);
	cpu->gpr[4] = esp;
	return TASK_SWITCHED;
}

enum task_switch_result task_switch(struct task_cpu *cpu, uint16_t selector,
				    enum task_switch_source source, uint32_t next_eip,
				    bool push_error_code, uint32_t error_code,
				    const struct task_mem *mem, struct task_switch_fault *fault)
{
	struct segment_state old_tr = cpu->seg[SEG_TR];
	struct descriptor new_desc, old_desc;
	const struct tss_layout *old_tss = tss_layout_of(old_tr.attributes & 0xf), *tss;
	uint8_t new_tss[TSS32_MIN_LIMIT + 1], saved[TSS32_LDT - TSS32_EIP];
	uint32_t pf_error = 0;
	int status;

	cpu->debug_trap = false;
	if (!old_tss || !(old_tr.attributes & TYPE_BUSY))
		return failed(fault, "task switch from a TR that is not a busy TSS (not emulated)");
	enum task_switch_result r =
		check_new_tss(cpu, mem, selector, source, &new_desc, &tss, fault);
	if (r != TASK_SWITCHED)
		return r;
	struct segment_state new_tr = cache_of(&new_desc, selector);
	status = mem->read(mem->ctx, cpu, (uint32_t)new_tr.base, new_tss, tss->min_limit + 1,
			   &pf_error);
	if (status)
		return memory_fault(status, (uint32_t)new_tr.base, pf_error, fault);
	/*
	 * Reserved EFLAGS bits are what the CPU makes them: 1 is set, 3, 5,
	 * 15, 31:22 clear. A 16-bit TSS's FLAGS word leaves VM clear (8.6).
	 */
	uint32_t new_eflags = (get_field(new_tss + tss->flags, tss->width) & EFLAGS_LOADABLE) |
			      EFLAGS_FIXED_1;

	/*
	 * The old task: saved into its TSS, not busy after JMP and IRET (SDM
	 * 8.3 steps 5-7). Into a 16-bit TSS go the low halves of EIP, EFLAGS
	 * and the registers, and no FS or GS: the rest is lost (8.6).
	 */
	uint32_t old_eflags = cpu->eflags;
	if (source == TASK_SWITCH_IRET)
		old_eflags &= ~EFLAGS_NT;
	unsigned w = old_tss->width;
	put_field(saved, w, next_eip);
	put_field(saved + old_tss->flags - old_tss->ip, w, old_eflags);
	for (unsigned i = 0; i < 8; i++)
		put_field(saved + old_tss->gpr - old_tss->ip + w * i, w, cpu->gpr[i]);
	static const enum x86_segment tss_order[6] = { SEG_ES, SEG_CS, SEG_SS,
						       SEG_DS, SEG_FS, SEG_GS };
	for (unsigned i = 0; i < old_tss->segments; i++)
		put_field(saved + old_tss->seg - old_tss->ip + w * i, w,
			  cpu->seg[tss_order[i]].selector);
	uint32_t saved_at = (uint32_t)old_tr.base + old_tss->ip;
	status = mem->write(mem->ctx, cpu, saved_at, saved, old_tss->ldt - old_tss->ip, false,
			    &pf_error);
	if (status)
		return memory_fault(status, saved_at, pf_error, fault);
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
		status = mem->write(mem->ctx, cpu, (uint32_t)new_tr.base + tss->link, link,
				    sizeof(link), false, &pf_error);
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

	/*
	 * Committed: the new task's state; faults from here on are its own
	 * (step 11). A 16-bit task keeps CR3 (its TSS has none: the previous
	 * task's page tables stay, 8.6), starts at IP with EIP's upper half
	 * clear, and has no trap bit.
	 */
	w = tss->width;
	cpu->seg[SEG_TR] = new_tr;
	cpu->cr0 |= CR0_TS;
	if (tss->cr3 && (cpu->cr0 & CR0_PG))
		cpu->cr3 = get_field(new_tss + tss->cr3, 4);
	cpu->eip = get_field(new_tss + tss->ip, w);
	cpu->eflags = new_eflags;
	cpu->debug_trap = tss->t && (new_tss[tss->t] & 1);
	for (unsigned i = 0; i < 8; i++)
		cpu->gpr[i] = tss->gpr_upper | get_field(new_tss + tss->gpr + w * i, w);
	/*
	 * A 16-bit TSS has no FS or GS: the task gets null ones (unusable),
	 * so no segment of the old task stays reachable in the new one.
	 */
	uint16_t selectors[6] = { 0 };
	for (unsigned i = 0; i < tss->segments; i++)
		selectors[i] = (uint16_t)get_field(new_tss + tss->seg + w * i, w);
	static const enum x86_segment load_order[6] = { SEG_CS, SEG_SS, SEG_ES,
							SEG_DS, SEG_FS, SEG_GS };
	static const unsigned tss_slot[6] = { 1, 2, 0, 3, 4, 5 };
	/*
	 * Virtual-8086 segments have no descriptor to fault on: loaded first,
	 * so that a bad LDT selector leaves them as VM entry wants them.
	 */
	if (new_eflags & EFLAGS_VM)
		for (unsigned i = 0; i < 6; i++)
			cpu->seg[load_order[i]] = virtual_8086_segment(selectors[tss_slot[i]]);
	/* CS first: its RPL is the new CPL, which the checks of SS and the data segments use. */
	cpu->seg[SEG_CS].selector = selectors[1];
	r = load_segment(cpu, mem, SEG_LDTR, (uint16_t)get_field(new_tss + tss->ldt, w), fault);
	for (unsigned i = 0; i < 6 && r == TASK_SWITCHED && !(new_eflags & EFLAGS_VM); i++)
		r = load_segment(cpu, mem, load_order[i], selectors[tss_slot[i]], fault);
	/*
	 * A fault half-way out of virtual-8086 mode would leave real-mode
	 * segments (DPL 3, data) under a protected-mode task, a state VM entry
	 * refuses (SDM Vol. 3C 26.3.1.2) and no handler could run in.
	 */
	if (r == TASK_SWITCH_FAULT && (old_eflags & EFLAGS_VM) && !(new_eflags & EFLAGS_VM))
		return failed(fault, "loading the segments of a task after a virtual-8086 one "
				     "faulted (not emulated)");
	if (r != TASK_SWITCHED || !push_error_code)
		return r;
	return push_error_code_on(cpu, mem, w, error_code, fault);
}
