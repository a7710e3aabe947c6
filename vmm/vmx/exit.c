/*
 * The VM-exit dispatch table: one handler per basic exit reason (SDM
 * Vol. 3C appendix C). Handlers decode what the hardware reported and hand
 * policy to the generic code in vmm/vcpu.c. An exit without a handler ends
 * the VM with its reason; the hypervisor and the other VMs go on.
 */
#include "vmm/host_irq.h"
#include "vmm/lazy_restore.h"
#include "vmm/log.h"
#include "vmm/mce.h"
#include "vmm/mmio.h"
#include "vmm/panic.h"
#include "vmm/vcpu.h"
#include "vmm/virt.h"
#include "vmm/vmx/vmx.h"
#include "x86/cpu.h"
#include "x86/msr.h"

#define CR_ACCESS_TO_CR 0
#define CR_ACCESS_FROM_CR 1
#define PDPTE_PRESENT 1ULL
/* PAE PDPTE bits that must be 0 (SDM 4.4.1): 2:1, 8:5 and above MAXPHYADDR. */
#define PDPTE_RESERVED 0xfff00000000001e6ULL

typedef enum exit_action (*exit_handler)(struct vcpu *);

static enum exit_action end_vm(struct vcpu *vcpu, const char *what)
{
	vm_request_end(vcpu->vm, "%s at RIP 0x%llx", what,
		       (unsigned long long)vmcs_read(VMCS_GUEST_RIP));
	return EXIT_STOP;
}

static enum exit_action inject_ud(struct vcpu *vcpu)
{
	virt_inject_exception(vcpu, VECTOR_UD, false, 0);
	return EXIT_CONTINUE;
}

/*
 * #GP(0): for RDPMC, as guests are shown no performance counters (CPUID
 * leaf 0AH) and every index is invalid; for an XSETBV its checks refuse.
 */
static enum exit_action inject_gp(struct vcpu *vcpu)
{
	virt_inject_exception(vcpu, VECTOR_GP, true, 0);
	return EXIT_CONTINUE;
}

/*
 * A #MC while a guest ran (an exception exit, SDM 25.2) or during its VM
 * entry (exit reason 41): a corrected or deferred error is cleared and the
 * guest goes on; a fatal one whose address lies in this VM's RAM ends
 * only this VM (15.9.3); any other fatal one stops the host.
 */
static enum exit_action machine_check(struct vcpu *vcpu, const char *when)
{
	struct vm *vm = vcpu->vm;
	struct mce_record r;
	const char *why;
	uint64_t addr;

	mce_read(&r);
	if (mce_judge(&r, &why) == MCE_CONTINUE) {
		mce_clear(&r);
		log_warn("vm '%s': machine check %s, %s: %u bank(s), the VM goes on",
			 vm->cfg->name, when, why, r.count);
		return EXIT_CONTINUE;
	}
	uint64_t ram = vm->boot->ram_base;
	if (mce_failing_address(&r, &addr) && addr >= ram && addr - ram < vm->boot->ram_bytes) {
		mce_clear(&r);
		log_err("vm '%s': machine check %s in its own memory (host 0x%llx, guest 0x%llx): %s",
			vm->cfg->name, when, (unsigned long long)addr,
			(unsigned long long)(addr - ram), why);
		return end_vm(vcpu, "machine check in its memory");
	}
	panic("machine check %s vm '%s', not in its memory: %s (MCG_STATUS 0x%llx, %u bank(s))",
	      when, vm->cfg->name, why, (unsigned long long)r.mcg_status, r.count);
}

static enum exit_action handle_exception_nmi(struct vcpu *vcpu)
{
	uint32_t info = (uint32_t)vmcs_read(VMCS_EXIT_INTR_INFO);

	/* With NMI exiting, an NMI in the guest belongs to the host (SDM 25.3). */
	if ((info & INTR_INFO_TYPE_MASK) == INTR_TYPE_NMI) {
		log_warn("vmx: host NMI while running vm '%s'", vcpu->vm->cfg->name);
		return EXIT_CONTINUE;
	}
	if ((info & INTR_INFO_VECTOR_MASK) == VECTOR_MC)
		return machine_check(vcpu, "while it ran");
	vm_request_end(vcpu->vm, "unexpected exception exit (vector %u)",
		       info & INTR_INFO_VECTOR_MASK);
	return EXIT_STOP;
}

static enum exit_action handle_external_interrupt(struct vcpu *vcpu)
{
	/*
	 * "Acknowledge interrupt on exit" took the vector from the interrupt
	 * controller. The line's byte is read by the scheduler, which the
	 * slice's end brings back to (vmm/host_irq.h).
	 */
	unsigned vector = (unsigned)(vmcs_read(VMCS_EXIT_INTR_INFO) & INTR_INFO_VECTOR_MASK);
	if (!host_irq_taken(vector))
		log_debug("vmx: host interrupt vector %u during vm '%s'", vector, vcpu->vm->cfg->name);
	return EXIT_PREEMPT;
}

static enum exit_action handle_interrupt_window(struct vcpu *vcpu)
{
	/* The guest can take the upcall now; the next entry delivers it. */
	vmx_set_interrupt_window(to_vmx(vcpu), false);
	return EXIT_CONTINUE;
}

static enum exit_action handle_nmi_window(struct vcpu *vcpu)
{
	/* The guest can take its NMI now; the next entry injects it (deliver_interrupt). */
	vmx_set_nmi_window(to_vmx(vcpu), false);
	return EXIT_CONTINUE;
}

static enum exit_action handle_triple_fault(struct vcpu *vcpu)
{
	return end_vm(vcpu, "triple fault");
}

static enum exit_action handle_ignored_signal(struct vcpu *vcpu)
{
	(void)vcpu;
	/* INIT/SIPI: the host sends none to a single-vCPU VM; nothing to do. */
	return EXIT_CONTINUE;
}

static enum exit_action handle_cpuid(struct vcpu *vcpu)
{
	vcpu_cpuid(vcpu);
	vmx_advance_rip();
	return EXIT_CONTINUE;
}

static enum exit_action handle_hlt(struct vcpu *vcpu)
{
	(void)vcpu;
	vmx_advance_rip();
	return EXIT_HALT;
}

static enum exit_action handle_skip(struct vcpu *vcpu)
{
	(void)vcpu;
	/* INVD/WBINVD: caches are coherent; neither may touch other VMs' data. */
	vmx_advance_rip();
	return EXIT_CONTINUE;
}

/*
 * After a request that may end the VM or arm its timers (a hypercall, an
 * MSR or MMIO write): whether it goes on, and how.
 */
static enum exit_action after_request(const struct vcpu *vcpu)
{
	if (vcpu->vm->op_pending)
		return EXIT_STOP;
	return vcpu->timers_moved ? EXIT_TIMERS_MOVED : EXIT_CONTINUE;
}

static enum exit_action handle_vmcall(struct vcpu *vcpu)
{
	vcpu_hypercall(vcpu, vmx_guest_cpl());
	vmx_advance_rip();
	return after_request(vcpu);
}

static bool in_64bit_mode(void)
{
	return (vmcs_read(VMCS_GUEST_EFER) & EFER_LMA) &&
	       (vmcs_read(VMCS_GUEST_ES_AR + 2 * SEG_CS) & SEG_ATTR_LONG);
}

int vmx_load_pae_pdptes(struct vcpu *vcpu)
{
	uint64_t base = vmcs_read(VMCS_GUEST_CR3) & 0xffffffe0ULL;
	uint64_t pdpte[4];

	if (!vm_gpa_is_ram(vcpu->vm, base, sizeof(pdpte)))
		return -1;
	__builtin_memcpy(pdpte, vm_gpa_to_host(vcpu->vm, base, sizeof(pdpte)), sizeof(pdpte));
	for (unsigned i = 0; i < 4; i++) {
		if ((pdpte[i] & PDPTE_PRESENT) && (pdpte[i] & PDPTE_RESERVED))
			return -1;
	}
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(VMCS_GUEST_PDPTE0 + 2 * i, pdpte[i]);
	return 0;
}

/*
 * Applies a new CR0 or CR4 value the way the CPU would: the combinations
 * the SDM makes fault get #GP (2.5 and 9.8.5), IA-32e mode follows
 * CR0.PG with EFER.LME, PAE paging loads its PDPTEs, and a change of a
 * paging-mode bit drops cached translations (with VPID, VM entries and
 * exits keep them: SDM 28.3.3.1). Returns -1 for #GP.
 */
static int write_paging_control(struct vcpu *vcpu, unsigned cr, uint64_t value)
{
	uint64_t cr0 = cr == 0 ? value : virt_guest_reg(vcpu, GUEST_REG_CR0);
	uint64_t cr4 = cr == 4 ? value : virt_guest_reg(vcpu, GUEST_REG_CR4);
	uint64_t old = virt_guest_reg(vcpu, cr == 0 ? GUEST_REG_CR0 : GUEST_REG_CR4);
	uint64_t efer = vmcs_read(VMCS_GUEST_EFER);
	bool paging = cr0 & CR0_PG;

	if (cr == 0 && ((value >> 32) || ((value & CR0_PG) && !(value & CR0_PE)) ||
			((value & CR0_NW) && !(value & CR0_CD))))
		return -1;
	if (cr == 4 && ((value & (CR4_VMXE | vmx_cr4_hidden_from_guests())) ||
			(value & ~vmx_host_msrs.cr4_fixed1)))
		return -1;
	/* Long mode needs PAE; PAE may not go while long mode is active. */
	if (paging && (efer & EFER_LME) && !(cr4 & CR4_PAE))
		return -1;
	if (paging && (cr4 & CR4_PAE) && !(efer & EFER_LME) && vmx_load_pae_pdptes(vcpu))
		return -1;

	virt_set_guest_reg(vcpu, cr == 0 ? GUEST_REG_CR0 : GUEST_REG_CR4, value);
	bool lma = paging && (efer & EFER_LME);
	uint64_t entry = vmcs_read(VMCS_ENTRY_CONTROLS);
	vmcs_write(VMCS_GUEST_EFER, lma ? efer | EFER_LMA : efer & ~EFER_LMA);
	vmcs_write(VMCS_ENTRY_CONTROLS,
		   lma ? entry | ENTRY_CTL_IA32E_GUEST : entry & ~ENTRY_CTL_IA32E_GUEST);

	uint64_t paging_bits = cr == 0 ? (CR0_PG | CR0_PE | CR0_WP)
				       : (CR4_PAE | CR4_PSE | CR4_PGE | CR4_PCIDE | CR4_SMEP |
					  CR4_SMAP);
	if ((old ^ value) & paging_bits)
		vmx_flush_guest_tlb(vcpu);
	return 0;
}

static enum exit_action handle_cr_access(struct vcpu *vcpu)
{
	uint64_t q = vmx_exit_qualification();
	unsigned cr = CR_QUAL_NUMBER(q), type = CR_QUAL_TYPE(q), reg = CR_QUAL_GPR(q);

	if (cr == 8 && type == CR_ACCESS_FROM_CR) {
		vcpu_write_gpr(vcpu, reg, platform_read_cr8(vcpu->vm));
	} else if (cr == 8 && type == CR_ACCESS_TO_CR) {
		if (!platform_write_cr8(vcpu->vm, vcpu_read_gpr(vcpu, reg))) {
			virt_inject_exception(vcpu, VECTOR_GP, true, 0);
			return EXIT_CONTINUE;
		}
	} else if ((cr == 0 || cr == 4) && type == CR_ACCESS_TO_CR) {
		uint64_t value = vcpu_read_gpr(vcpu, reg);
		/* Outside 64-bit mode the source operand is 32 bits wide. */
		if (!in_64bit_mode())
			value = (uint32_t)value;
		if (write_paging_control(vcpu, cr, value)) {
			virt_inject_exception(vcpu, VECTOR_GP, true, 0);
			return EXIT_CONTINUE;
		}
	} else {
		/* CLTS and LMSW touch only guest-owned bits and do not exit. */
		return end_vm(vcpu, "unsupported control-register access");
	}
	vmx_advance_rip();
	/* Loading PAE PDPTEs reads RAM a restore may not have loaded (vmm/lazy_restore.h). */
	return after_request(vcpu);
}

static enum exit_action handle_io(struct vcpu *vcpu)
{
	uint64_t q = vmx_exit_qualification();
	unsigned size = (unsigned)(q & IO_QUAL_SIZE_MASK) + 1;
	uint16_t port = (uint16_t)(q >> IO_QUAL_PORT_SHIFT);
	bool in = q & IO_QUAL_IN;

	if (q & IO_QUAL_STRING)
		return end_vm(vcpu, "string I/O (INS/OUTS) is not emulated");
	if (size != 1 && size != 2 && size != 4)
		return end_vm(vcpu, "I/O access of invalid size");
	uint32_t mask = size == 4 ? 0xffffffffU : (1U << (8 * size)) - 1;
	uint32_t value = (uint32_t)vcpu->regs.rax & mask;
	vcpu_port_io(vcpu, port, size, in, &value);
	/* A 32-bit destination zero-extends into RAX (SDM Vol. 1, 3.4.1.1). */
	if (in)
		vcpu->regs.rax = size == 4 ? value : (vcpu->regs.rax & ~(uint64_t)mask) | (value & mask);
	vmx_advance_rip();
	return vcpu->vm->op_pending ? EXIT_STOP : EXIT_CONTINUE;
}

static enum exit_action handle_rdmsr(struct vcpu *vcpu)
{
	uint64_t value;

	if (vcpu_rdmsr(vcpu, (uint32_t)vcpu->regs.rcx, &value)) {
		virt_inject_exception(vcpu, VECTOR_GP, true, 0);
		return EXIT_CONTINUE;
	}
	vcpu->regs.rax = (uint32_t)value;
	vcpu->regs.rdx = value >> 32;
	vmx_advance_rip();
	return EXIT_CONTINUE;
}

static enum exit_action handle_wrmsr(struct vcpu *vcpu)
{
	uint64_t value = (vcpu->regs.rdx << 32) | (uint32_t)vcpu->regs.rax;

	if (vcpu_wrmsr(vcpu, (uint32_t)vcpu->regs.rcx, value)) {
		virt_inject_exception(vcpu, VECTOR_GP, true, 0);
		return EXIT_CONTINUE;
	}
	vmx_advance_rip();
	return after_request(vcpu);
}

static enum exit_action handle_invalid_state(struct vcpu *vcpu)
{
	return end_vm(vcpu, "VM entry failed: invalid guest state");
}

static enum exit_action handle_msr_loading(struct vcpu *vcpu)
{
	return end_vm(vcpu, "VM entry failed: MSR loading");
}

static enum exit_action handle_machine_check(struct vcpu *vcpu)
{
	return machine_check(vcpu, "during its VM entry");
}

static enum exit_action handle_ept_violation(struct vcpu *vcpu)
{
	uint64_t q = vmx_exit_qualification();
	uint64_t gpa = vmcs_read(VMCS_GUEST_PHYSICAL_ADDR);

	/*
	 * An IRET that unblocked NMIs faulted before it completed: with
	 * virtual NMIs, blocking by NMI holds again until the IRET is done,
	 * and the VM exit leaves setting it to the VMM (SDM Vol. 3C,
	 * "Information About NMI Unblocking Due to IRET"). Not on an exit
	 * during event delivery, where the bit is undefined.
	 */
	if ((q & EPT_QUAL_NMI_UNBLOCKED) && vmx_host_caps.virtual_nmis &&
	    !(vmcs_read(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID))
		vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
			   vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) | VCPU_BLOCKING_NMI);

	/*
	 * RAM a restore has not loaded yet: loaded now and the access retried
	 * (an event whose delivery faulted is delivered again,
	 * requeue_interrupted_event).
	 */
	if (vm_gpa_is_ram(vcpu->vm, gpa, 1) && lazy_restore_fault(vcpu->vm, gpa))
		return after_request(vcpu);
	/* The EPT maps all of the VM's RAM: whatever else it touches is a device or nothing. */
	if (q & EPT_QUAL_FETCH) {
		vm_request_end(vcpu->vm, "instruction fetch at guest-physical 0x%llx, outside its "
			       "memory", (unsigned long long)gpa);
		return EXIT_STOP;
	}
	vcpu_mmio_access(vcpu, gpa, q & EPT_QUAL_WRITE);
	return after_request(vcpu);
}

/*
 * An access to the guest's xAPIC page the CPU does not virtualize (SDM
 * 29.4.2, 29.4.3.1): without APIC-register virtualization every read but
 * the TPR's and every write but the TPR's, the EOI's and the ICR's low
 * half; with it the registers it leaves out (PPR, the current count...).
 * It is fault-like, the instruction has not run: emulated as the MMIO
 * access it is. The page's other accesses, a fetch or a page walk or an
 * event delivery through it, are nothing a guest does.
 */
static enum exit_action handle_apic_access(struct vcpu *vcpu)
{
	uint64_t q = vmx_exit_qualification();
	unsigned type = (unsigned)(q >> APIC_ACCESS_QUAL_TYPE_SHIFT) & 0xf;

	if (type != APIC_ACCESS_LINEAR_READ && type != APIC_ACCESS_LINEAR_WRITE)
		return end_vm(vcpu, "local APIC page used by a fetch, a page walk or an event "
				    "delivery");
	vcpu_mmio_access(vcpu, LAPIC_DEFAULT_BASE + (q & APIC_ACCESS_QUAL_OFFSET),
			 type == APIC_ACCESS_LINEAR_WRITE);
	return after_request(vcpu);
}

/*
 * A write the CPU put in the virtual-APIC page and left to the model (SDM
 * 29.4.3.3): an ICR write that is not a self-IPI, and with APIC-register
 * virtualization a write of the other registers it virtualizes (ID, LDR,
 * DFR, SVR, ESR, the LVT, the timer's). Trap-like: the instruction is
 * done, the register's value is in the page, and the model's answer goes
 * there before the next entry.
 */
static enum exit_action handle_apic_write(struct vcpu *vcpu)
{
	unsigned reg = (unsigned)(vmx_exit_qualification() & APIC_ACCESS_QUAL_OFFSET & ~0xfU);

	vm_mmio_write(vcpu->vm, LAPIC_DEFAULT_BASE + reg, 4, vcpu->apic_page[reg / 4]);
	return after_request(vcpu);
}

/* A virtual EOI of a vector in the EOI-exit bitmap: a level-triggered one (SDM 29.1.4). */
static enum exit_action handle_eoi_induced(struct vcpu *vcpu)
{
	platform_virtual_eoi(vcpu->vm, (uint8_t)vmx_exit_qualification());
	return after_request(vcpu);
}

static enum exit_action handle_ept_misconfig(struct vcpu *vcpu)
{
	/* Our EPT is wrong: a hypervisor bug, but it only concerns this VM. */
	log_err("vmx: EPT misconfiguration for vm '%s' at GPA 0x%llx", vcpu->vm->cfg->name,
		(unsigned long long)vmcs_read(VMCS_GUEST_PHYSICAL_ADDR));
	return end_vm(vcpu, "EPT misconfiguration (hypervisor error)");
}

static enum exit_action handle_preemption_timer(struct vcpu *vcpu)
{
	vcpu->preemptions++;
	return EXIT_PREEMPT;
}

/*
 * XSETBV exits whatever it loads. Its #UD (CR4.OSXSAVE clear) and its #GP
 * at CPL > 0 come before the exit (SDM 26.1.1); what is left are the
 * checks on ECX and the value (SDM Vol. 2C, XSETBV).
 */
static enum exit_action handle_xsetbv(struct vcpu *vcpu)
{
	uint64_t value = (vcpu->regs.rdx << 32) | (uint32_t)vcpu->regs.rax;

	if ((uint32_t)vcpu->regs.rcx != 0 || xstate_set_xcr0(vcpu, value))
		return inject_gp(vcpu);
	vmx_advance_rip();
	return EXIT_CONTINUE;
}

static const exit_handler exit_table[EXIT_REASON_COUNT] = {
	[EXIT_EXCEPTION_NMI] = handle_exception_nmi,
	[EXIT_EXTERNAL_INTERRUPT] = handle_external_interrupt,
	[EXIT_TRIPLE_FAULT] = handle_triple_fault,
	[EXIT_INTERRUPT_WINDOW] = handle_interrupt_window,
	[EXIT_NMI_WINDOW] = handle_nmi_window,
	[EXIT_INIT] = handle_ignored_signal,
	[EXIT_SIPI] = handle_ignored_signal,
	[EXIT_TASK_SWITCH] = vmx_handle_task_switch,
	[EXIT_CPUID] = handle_cpuid,
	[EXIT_GETSEC] = inject_ud,
	[EXIT_HLT] = handle_hlt,
	[EXIT_INVD] = handle_skip,
	[EXIT_RDPMC] = inject_gp,
	/* CPUID.01H:ECX.MONITOR is 0: both are #UD (SDM vol. 2, MONITOR and MWAIT). */
	[EXIT_MWAIT] = inject_ud,
	[EXIT_MONITOR] = inject_ud,
	[EXIT_VMCALL] = handle_vmcall,
	/* No nested virtualization: every VMX instruction is undefined. */
	[EXIT_VMCLEAR] = inject_ud,
	[EXIT_VMLAUNCH] = inject_ud,
	[EXIT_VMPTRLD] = inject_ud,
	[EXIT_VMPTRST] = inject_ud,
	[EXIT_VMREAD] = inject_ud,
	[EXIT_VMRESUME] = inject_ud,
	[EXIT_VMWRITE] = inject_ud,
	[EXIT_VMXOFF] = inject_ud,
	[EXIT_VMXON] = inject_ud,
	[EXIT_INVEPT] = inject_ud,
	[EXIT_INVVPID] = inject_ud,
	[EXIT_VMFUNC] = inject_ud,
	[EXIT_CR_ACCESS] = handle_cr_access,
	[EXIT_IO] = handle_io,
	[EXIT_RDMSR] = handle_rdmsr,
	[EXIT_WRMSR] = handle_wrmsr,
	[EXIT_INVALID_GUEST_STATE] = handle_invalid_state,
	[EXIT_MSR_LOADING] = handle_msr_loading,
	[EXIT_MACHINE_CHECK] = handle_machine_check,
	[EXIT_APIC_ACCESS] = handle_apic_access,
	[EXIT_EOI_INDUCED] = handle_eoi_induced,
	[EXIT_APIC_WRITE] = handle_apic_write,
	[EXIT_EPT_VIOLATION] = handle_ept_violation,
	[EXIT_EPT_MISCONFIG] = handle_ept_misconfig,
	[EXIT_PREEMPTION_TIMER] = handle_preemption_timer,
	[EXIT_WBINVD] = handle_skip,
	[EXIT_XSETBV] = handle_xsetbv,
};

enum exit_action vmx_handle_exit(struct vcpu *vcpu, uint32_t reason)
{
	uint32_t basic = reason & EXIT_REASON_BASIC_MASK;
	exit_handler handler =
		basic < EXIT_REASON_COUNT ? exit_table[index_nospec(basic, EXIT_REASON_COUNT)] : NULL;

	if (!handler) {
		vm_request_end(vcpu->vm, "unhandled VM exit, reason %u%s", basic,
			       (reason & EXIT_REASON_ENTRY_FAILURE) ? " (entry failure)" : "");
		return EXIT_STOP;
	}
	return handler(vcpu);
}
