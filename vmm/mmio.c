#include "vmm/mmio.h"

#include "vmm/guest_walk.h"
#include "vmm/insn_decode.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "x86/cpu.h"

#include <string.h>

#define PAGE_OFFSET_MASK 0xfffULL

/* What one emulation needs besides the instruction. */
struct mmio_ctx {
	struct vcpu *vcpu;
	struct guest_paging paging;
	struct guest_mem mem;
	bool user;
	bool long_mode;
	/* A fault the other operand of MOVS/STOS raised, to inject. */
	bool fault;
	uint32_t fault_error;
	uint64_t fault_address;
};

static int bus_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *value)
{
	return vm_mmio_read(((struct mmio_ctx *)ctx)->vcpu->vm, gpa, size, value);
}

static int bus_write(void *ctx, uint64_t gpa, unsigned size, uint64_t value)
{
	return vm_mmio_write(((struct mmio_ctx *)ctx)->vcpu->vm, gpa, size, value);
}

static const enum x86_segment segment_of[] = {
	[INSN_SEG_ES] = SEG_ES, [INSN_SEG_CS] = SEG_CS, [INSN_SEG_SS] = SEG_SS,
	[INSN_SEG_DS] = SEG_DS, [INSN_SEG_FS] = SEG_FS, [INSN_SEG_GS] = SEG_GS,
};

/*
 * The operand of MOVS/STOS that is not on the faulting page: segment base
 * (in 64-bit mode only FS and GS have one, SDM Vol. 3A 3.4.4), the guest's
 * page tables, then RAM or another device. An access that straddles a
 * page is not split: guests do not do that to device memory.
 */
static int other_operand(struct mmio_ctx *c, enum insn_seg seg, uint64_t offset, unsigned size,
			 uint64_t *value, bool write)
{
	struct vm *vm = c->vcpu->vm;
	uint64_t base = 0;
	uint64_t gpa;
	uint32_t error;

	if (!c->long_mode || seg == INSN_SEG_FS || seg == INSN_SEG_GS)
		base = virt_guest_segment(c->vcpu, segment_of[seg]).base;
	uint64_t gla = c->long_mode ? base + offset : (uint32_t)(base + offset);
	unsigned access = (write ? GW_ACCESS_WRITE : 0) | (c->user ? GW_ACCESS_USER : 0);
	int status = guest_walk(&c->paging, &c->mem, gla, access, &gpa, &error);
	if (status == GW_PAGE_FAULT) {
		c->fault = true;
		c->fault_error = error;
		c->fault_address = gla;
		return -1;
	}
	if (status != GW_OK || (gpa & PAGE_OFFSET_MASK) + size > PAGE_OFFSET_MASK + 1)
		return -1;
	if (vm_gpa_is_ram(vm, gpa, size)) {
		if (write)
			memcpy(vm_gpa_to_host(vm, gpa, size), value, size);
		else
			memcpy(value, vm_gpa_to_host(vm, gpa, size), size);
		return 0;
	}
	return write ? vm_mmio_write(vm, gpa, size, *value) : vm_mmio_read(vm, gpa, size, value);
}

static int mem_read(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size,
		    uint64_t *value)
{
	*value = 0;
	return other_operand(ctx, seg, offset, size, value, false);
}

static int mem_write(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size,
		     uint64_t value)
{
	return other_operand(ctx, seg, offset, size, &value, true);
}

static void inject_page_fault(struct vcpu *vcpu, uint64_t address, uint32_t error)
{
	vcpu->regs.cr2 = address;
	virt_inject_exception(vcpu, VECTOR_PF, true, error);
}

static void end_unmapped(struct vcpu *vcpu, uint64_t gpa, bool write)
{
	vm_request_end(vcpu->vm, "%s at guest-physical 0x%llx, outside its memory and devices",
		       write ? "write" : "read", (unsigned long long)gpa);
}

static void emulate(struct vcpu *vcpu, struct mmio_ctx *c, const struct insn *insn,
		    uint64_t gpa, bool write)
{
	const struct insn_bus bus = { c, bus_read, bus_write, mem_read, mem_write };
	uint64_t gpr[16];
	uint64_t rflags = virt_guest_reg(vcpu, GUEST_REG_RFLAGS);

	for (unsigned i = 0; i < 16; i++)
		gpr[i] = vcpu_read_gpr(vcpu, i);
	int rc = insn_emulate(insn, &bus, gpa, write, gpr, &rflags);
	if (rc == INSN_ERR_MISMATCH)
		return; /* the bytes changed under us: let the guest run it again */
	if (rc == INSN_ERR_BUS) {
		if (c->fault)
			inject_page_fault(vcpu, c->fault_address, c->fault_error);
		else
			end_unmapped(vcpu, gpa, write);
		return;
	}
	if (rc < 0) {
		vm_request_end(vcpu->vm, "MMIO at guest-physical 0x%llx: instruction not emulated",
			       (unsigned long long)gpa);
		return;
	}
	for (unsigned i = 0; i < 16; i++)
		vcpu_write_gpr(vcpu, i, gpr[i]);
	virt_set_guest_reg(vcpu, GUEST_REG_RFLAGS, rflags);
	/* A REP string instruction stays on its RIP until RCX runs out. */
	if (rc == INSN_OK)
		virt_skip_instruction(vcpu, insn->len);
}

void vcpu_mmio_access(struct vcpu *vcpu, uint64_t gpa, bool write)
{
	struct vm *vm = vcpu->vm;
	struct segment_state cs = virt_guest_segment(vcpu, SEG_CS);
	struct segment_state ss = virt_guest_segment(vcpu, SEG_SS);
	uint64_t efer = virt_guest_reg(vcpu, GUEST_REG_EFER);
	struct mmio_ctx c = {
		.vcpu = vcpu,
		.paging = {
			.cr0 = virt_guest_reg(vcpu, GUEST_REG_CR0),
			.cr3 = virt_guest_reg(vcpu, GUEST_REG_CR3),
			.cr4 = virt_guest_reg(vcpu, GUEST_REG_CR4),
			.efer = efer,
			.maxphyaddr = cpuid(CPUID_ADDRESS_SIZES, 0).eax & 0xff,
		},
		.mem = { vm, vm_read_ram },
		/* CPL is SS.DPL (SDM Vol. 3A 5.5). */
		.user = ((ss.attributes >> 5) & 3) == 3,
	};
	enum insn_mode mode = insn_mode_of(efer & EFER_LMA, cs.attributes & SEG_ATTR_LONG,
					   cs.attributes & SEG_ATTR_DB);
	uint64_t rip = virt_guest_reg(vcpu, GUEST_REG_RIP);
	c.long_mode = mode == INSN_MODE_64;
	uint64_t gla = c.long_mode ? rip : (uint32_t)(cs.base + rip);

	struct guest_fetch fetch = { 0 };
	uint32_t error = 0;
	int status = guest_fetch(&c.paging, &c.mem, gla, c.user, &fetch, &error);
	if (status == GW_PAGE_FAULT) {
		inject_page_fault(vcpu, gla, error);
		return;
	}
	if (status != GW_OK) {
		vm_request_end(vm, "MMIO at guest-physical 0x%llx from code outside its memory",
			       (unsigned long long)gpa);
		return;
	}

	struct insn insn;
	int rc = insn_decode(fetch.bytes, fetch.len, mode, &insn);
	switch (rc) {
	case INSN_OK:
		emulate(vcpu, &c, &insn, gpa, write);
		return;
	case INSN_ERR_TRUNCATED:
		if (fetch.next_status == GW_PAGE_FAULT) {
			inject_page_fault(vcpu, fetch.next_gla, fetch.next_error);
			return;
		}
		break;
	case INSN_ERR_TOO_LONG:
		virt_inject_exception(vcpu, VECTOR_GP, true, 0);
		return;
	case INSN_ERR_UD:
		virt_inject_exception(vcpu, VECTOR_UD, false, 0);
		return;
	default:
		break;
	}
	vm_request_end(vm, "MMIO at guest-physical 0x%llx by an instruction the hypervisor "
		       "does not emulate (%02x %02x %02x %02x at RIP 0x%llx)",
		       (unsigned long long)gpa, fetch.bytes[0], fetch.bytes[1], fetch.bytes[2],
		       fetch.bytes[3], (unsigned long long)rip);
}
