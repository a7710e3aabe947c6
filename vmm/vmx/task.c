/*
 * The task-switch exit (SDM Vol. 3C 28.2.1 table 28-2: the selector and
 * what caused it; 28.2.4: an event through a task gate is in the
 * IDT-vectoring information). The switch itself is vmm/task_switch.c;
 * this reads the guest state it needs from the VMCS and writes the new
 * task's back.
 */
#include "vmm/guest_walk.h"
#include "vmm/task_switch.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmx/vmx.h"
#include "x86/cpu.h"

#include <string.h>

#define TASK_QUAL_SELECTOR_MASK 0xffffU
#define TASK_QUAL_SOURCE_SHIFT 30
#define INTR_TYPE_SOFTWARE_INTERRUPT (4U << 8)
#define INTR_TYPE_SOFTWARE_EXCEPTION (6U << 8)
#define INTR_TYPE_PRIVILEGED_SOFTWARE_EXCEPTION (5U << 8)
#define BLOCKING_STI_MOV_SS 3U
#define BLOCKING_NMI (1U << 3)
#define PAGE_SIZE_4K 4096U

struct linear_ctx {
	struct vm *vm;
	uint64_t cr4, efer;
	unsigned maxphyaddr;
};

/*
 * Supervisor accesses, as the CPU makes them to TSSs and descriptor
 * tables; a user one for the new task's own push at CPL 3.
 */
static int access_linear(struct linear_ctx *c, const struct task_cpu *cpu, uint32_t linear,
			 uint8_t *buf, unsigned len, unsigned access, uint32_t *pf_error)
{
	const struct guest_paging pg = { cpu->cr0, cpu->cr3, c->cr4, c->efer, c->maxphyaddr };
	const struct guest_mem mem = { c->vm, vm_read_ram };

	while (len) {
		unsigned chunk = PAGE_SIZE_4K - (linear & (PAGE_SIZE_4K - 1));
		uint64_t gpa;
		if (chunk > len)
			chunk = len;
		int status = guest_walk(&pg, &mem, linear, access, &gpa, pf_error);
		if (status == GW_PAGE_FAULT)
			return -1;
		if (status != GW_OK || !vm_gpa_is_ram(c->vm, gpa, chunk))
			return -2;
		if (access & GW_ACCESS_WRITE)
			memcpy(vm_gpa_to_host(c->vm, gpa, chunk), buf, chunk);
		else
			memcpy(buf, vm_gpa_to_host(c->vm, gpa, chunk), chunk);
		linear += chunk;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

static int read_linear(void *ctx, const struct task_cpu *cpu, uint32_t linear, void *buf,
		       unsigned len, uint32_t *pf_error)
{
	return access_linear(ctx, cpu, linear, buf, len, 0, pf_error);
}

static int write_linear(void *ctx, const struct task_cpu *cpu, uint32_t linear, const void *buf,
			unsigned len, bool user, uint32_t *pf_error)
{
	return access_linear(ctx, cpu, linear, (uint8_t *)(uintptr_t)buf, len,
			     GW_ACCESS_WRITE | (user ? GW_ACCESS_USER : 0), pf_error);
}

static void read_cpu(struct vcpu *vcpu, struct task_cpu *cpu)
{
	for (unsigned i = 0; i < 8; i++)
		cpu->gpr[i] = (uint32_t)vcpu_read_gpr(vcpu, i);
	cpu->eip = (uint32_t)vmcs_read(VMCS_GUEST_RIP);
	cpu->eflags = (uint32_t)vmcs_read(VMCS_GUEST_RFLAGS);
	cpu->cr0 = virt_guest_reg(vcpu, GUEST_REG_CR0);
	cpu->cr3 = vmcs_read(VMCS_GUEST_CR3);
	for (unsigned i = 0; i < SEG_COUNT; i++)
		cpu->seg[i] = virt_guest_segment(vcpu, (enum x86_segment)i);
	cpu->gdtr_base = vmcs_read(VMCS_GUEST_GDTR_BASE);
	cpu->gdtr_limit = (uint32_t)vmcs_read(VMCS_GUEST_GDTR_LIMIT);
}

/* Returns -1 when the new CR3's PAE PDPTEs are invalid. */
static int write_cpu(struct vcpu *vcpu, const struct task_cpu *cpu)
{
	for (unsigned i = 0; i < 8; i++)
		vcpu_write_gpr(vcpu, i, cpu->gpr[i]);
	vmcs_write(VMCS_GUEST_RIP, cpu->eip);
	vmcs_write(VMCS_GUEST_RFLAGS, cpu->eflags);
	virt_set_guest_reg(vcpu, GUEST_REG_CR0, cpu->cr0);
	for (unsigned i = 0; i < SEG_COUNT; i++) {
		const struct segment_state *s = &cpu->seg[i];
		vmcs_write(VMCS_GUEST_ES_SEL + 2 * i, s->selector);
		vmcs_write(VMCS_GUEST_ES_BASE + 2 * i, s->base);
		vmcs_write(VMCS_GUEST_ES_LIMIT + 2 * i, s->limit);
		vmcs_write(VMCS_GUEST_ES_AR + 2 * i, s->attributes ? s->attributes : VMX_AR_UNUSABLE);
	}
	/* The switch completes an instruction or an event: no STI/MOV-SS shadow follows. */
	uint64_t blocking = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, blocking & ~(uint64_t)BLOCKING_STI_MOV_SS);
	if (cpu->cr3 == vmcs_read(VMCS_GUEST_CR3))
		return 0;
	vmcs_write(VMCS_GUEST_CR3, cpu->cr3);
	vmx_flush_guest_tlb(vcpu);
	bool pae = (cpu->cr0 & CR0_PG) && (vmcs_read(VMCS_GUEST_CR4) & CR4_PAE) &&
		   !(vmcs_read(VMCS_GUEST_EFER) & EFER_LMA);
	return pae ? vmx_load_pae_pdptes(vcpu) : 0;
}

enum exit_action vmx_handle_task_switch(struct vcpu *vcpu)
{
	struct vmx_vcpu *v = to_vmx(vcpu);
	uint64_t q = vmx_exit_qualification();
	uint16_t selector = (uint16_t)(q & TASK_QUAL_SELECTOR_MASK);
	enum task_switch_source source = (enum task_switch_source)((q >> TASK_QUAL_SOURCE_SHIFT) & 3);
	uint32_t rip = (uint32_t)vmcs_read(VMCS_GUEST_RIP);
	uint32_t next_eip = rip + (uint32_t)vmcs_read(VMCS_EXIT_INSTR_LEN);
	bool push_error_code = false;
	uint32_t error_code = 0, event_type = 0;

	if (source == TASK_SWITCH_GATE) {
		/*
		 * The event is delivered by this switch, not again: drop what
		 * requeue_interrupted_event() queued from the IDT-vectoring
		 * information. Software events resume after their instruction,
		 * the others where they happened.
		 */
		uint32_t info = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_INFO);
		v->inject_pending = false;
		event_type = info & INTR_INFO_TYPE_MASK;
		if (event_type != INTR_TYPE_SOFTWARE_INTERRUPT &&
		    event_type != INTR_TYPE_SOFTWARE_EXCEPTION &&
		    event_type != INTR_TYPE_PRIVILEGED_SOFTWARE_EXCEPTION)
			next_eip = rip;
		if (info & INTR_INFO_DELIVER_ERROR) {
			push_error_code = true;
			error_code = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_ERROR);
		}
	}

	struct task_cpu cpu;
	struct linear_ctx ctx = {
		.vm = vcpu->vm,
		.cr4 = vmcs_read(VMCS_GUEST_CR4),
		.efer = vmcs_read(VMCS_GUEST_EFER),
		.maxphyaddr = cpuid(CPUID_ADDRESS_SIZES, 0).eax & 0xff,
	};
	const struct task_mem mem = { &ctx, read_linear, write_linear };
	struct task_switch_fault fault;
	read_cpu(vcpu, &cpu);
	enum task_switch_result r = task_switch(&cpu, selector, source, next_eip, push_error_code,
						error_code, &mem, &fault);
	if (r == TASK_SWITCH_FAILED) {
		vm_request_end(vcpu->vm, "hardware task switch to selector 0x%x at RIP 0x%x: %s",
			       selector, rip, fault.why);
		return EXIT_STOP;
	}
	if (write_cpu(vcpu, &cpu)) {
		vm_request_end(vcpu->vm, "hardware task switch to selector 0x%x: the new task's "
			       "CR3 has invalid PAE PDPTEs", selector);
		return EXIT_STOP;
	}
	/* An NMI delivered through a task gate blocks NMIs as any NMI delivery does. */
	if (source == TASK_SWITCH_GATE && event_type == INTR_TYPE_NMI)
		vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
			   vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) | BLOCKING_NMI);
	if (r == TASK_SWITCH_FAULT) {
		if (fault.vector == VECTOR_PF)
			vcpu->regs.cr2 = fault.address;
		virt_inject_exception(vcpu, fault.vector, fault.has_error_code, fault.error_code);
	} else if (cpu.debug_trap) {
		/*
		 * The T bit's #DB: an injected #DB leaves DR6 as it is (event
		 * injection, SDM Vol. 3C 27.6.1), so BT goes in here; the
		 * guest's DR6 is the CPU's while it runs.
		 */
		write_dr6(read_dr6() | DR6_BT);
		virt_inject_exception(vcpu, VECTOR_DB, false, 0);
	}
	/* Its reads may have found RAM a restore could not load (vmm/lazy_restore.h). */
	return vcpu->vm->op_pending ? EXIT_STOP : EXIT_CONTINUE;
}
