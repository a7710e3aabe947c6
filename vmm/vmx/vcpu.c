/*
 * VT-x backend: VMCS set-up, guest entry and the guest-register accessors
 * of vmm/virt.h (SDM Vol. 3C chapters 24-26).
 */
#include "vmm/virt.h"

#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/panic.h"
#include "vmm/percpu.h"
#include "vmm/sched.h"
#include "vmm/speculation.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_state.h"
#include "vmm/vmx/ept.h"
#include "vmm/vmx/vmx.h"
#include "x86/cpu.h"
#include "x86/msr.h"
#include "x86/paging.h"
#include "x86/segment.h"

#include <string.h>

extern char vmx_exit_entry[];

#define VMCS_LINK_NONE (~0ULL)
/* MXCSR_MASK 0 in an FXSAVE image means this mask (SDM Vol. 1, 11.6.6). */
#define MXCSR_MASK_DEFAULT 0xffbfU
#define CPUID_EXTENDED_MAX 0x80000000U
#define MAXPHYADDR_WITHOUT_LEAF 36

_Static_assert(VCPU_SEG_UNUSABLE == VMX_AR_UNUSABLE, "vcpu_state keeps the VMX encoding");

static const uint32_t swapped_msr_index[SWAP_COUNT] = {
	[SWAP_STAR] = 0xc0000081,
	[SWAP_LSTAR] = 0xc0000082,
	[SWAP_CSTAR] = 0xc0000083,
	[SWAP_SFMASK] = 0xc0000084,
	[SWAP_KERNEL_GS_BASE] = MSR_IA32_KERNEL_GS_BASE,
	[SWAP_TSC_AUX] = MSR_IA32_TSC_AUX,
	[SWAP_SPEC_CTRL] = MSR_IA32_SPEC_CTRL,
};

uint8_t vmx_swap_position[SWAP_COUNT];
static unsigned swapped_listed; /* the area's first entries, which the CPU swaps */

/* Shared by every vCPU: all ports and all MSRs exit unless opened below. */
static uint64_t io_bitmap_pa, msr_bitmap_pa;
/*
 * The APIC-access page (SDM 29.4): where the EPT maps a guest's xAPIC
 * page when the CPU virtualizes it. Its contents are never read or
 * written: virtualized accesses go to the vCPU's virtual-APIC page, the
 * others exit. One for every VM.
 */
static uint64_t apic_access_pa;
/* Loaded at every VM exit: root mode's IA32_SPEC_CTRL (SDM 27.6). */
static uint64_t host_msr_area_pa;
/* Root mode's GDTR and IDTR as set up, before any exit set their limits to FFFFH. */
static struct descriptor_table_register host_gdtr, host_idtr;
static uint64_t current_vmcs;

void vmcs_access_failed(enum vmcs_field field, bool write, uint64_t value)
{
	uint64_t error = 0;

	/* VMfailValid leaves a reason in the VM-instruction error field. */
	__asm__ volatile("vmread %1, %0" : "=r"(error) : "r"((uint64_t)VMCS_INSTR_ERROR) : "cc");
	panic("%s of VMCS field 0x%x (value 0x%llx) failed, VM-instruction error %llu",
	      write ? "VMWRITE" : "VMREAD", field, (unsigned long long)value,
	      (unsigned long long)error);
}

static void vmcs_load(uint64_t pa)
{
	uint8_t failed;

	if (current_vmcs == pa)
		return;
	__asm__ volatile("vmptrld %1; setna %0" : "=r"(failed) : "m"(pa) : "cc", "memory");
	if (failed)
		panic("VMPTRLD 0x%llx failed", (unsigned long long)pa);
	current_vmcs = pa;
}

static void vmcs_clear(uint64_t pa)
{
	uint8_t failed;

	__asm__ volatile("vmclear %1; setna %0" : "=r"(failed) : "m"(pa) : "cc", "memory");
	if (failed)
		panic("VMCLEAR 0x%llx failed", (unsigned long long)pa);
	if (current_vmcs == pa)
		current_vmcs = 0;
}

static void invept_single(uint64_t eptp)
{
	struct invept_descriptor d = { .eptp = eptp };
	uint8_t failed;

	__asm__ volatile("invept %1, %2; setna %0"
			 : "=r"(failed)
			 : "m"(d), "r"((uint64_t)INVEPT_SINGLE_CONTEXT)
			 : "cc", "memory");
	if (failed)
		panic("INVEPT failed");
}

/*
 * A control value honouring the capability MSR: bits the CPU requires are
 * set, bits it cannot set are refused (SDM 31.5.1, algorithm 3).
 */
static uint32_t adjust_controls(uint32_t wanted, uint32_t optional, uint64_t cap,
				const char *name)
{
	uint32_t value = (wanted | optional | VMX_CTL_ALLOWED0(cap)) & VMX_CTL_ALLOWED1(cap);

	if ((value & wanted) != wanted)
		panic("vmx: %s controls 0x%x not supported (allowed-1 0x%x)", name, wanted,
		      VMX_CTL_ALLOWED1(cap));
	return value;
}

static uint64_t alloc_page_filled(struct page_alloc *pa, unsigned pages, int byte)
{
	uint64_t base;

	if (page_alloc_alloc(pa, pages, 1, &base))
		return 0;
	memset((void *)(uintptr_t)base, byte, pages * PAGE_SIZE);
	return base;
}

bool virt_guest_has_tsc_aux(void)
{
	static int host_rdtscp = -1;

	/* The MSR exists with RDTSCP (SDM Vol. 4, IA32_TSC_AUX); the control lets the guest run it. */
	if (host_rdtscp < 0)
		host_rdtscp = (cpuid(0x80000001U, 0).edx & CPUID_80000001_EDX_RDTSCP) != 0;
	return vmx_host_caps.rdtscp && host_rdtscp;
}

static bool swapped_on_this_cpu(enum vmx_swapped_msr msr)
{
	switch (msr) {
	case SWAP_TSC_AUX:
		return virt_guest_has_tsc_aux();
	case SWAP_SPEC_CTRL:
		return speculation.spec_ctrl;
	default:
		return true;
	}
}

/* The MSRs this CPU has first, in enum order, then the rest, kept but not swapped. */
static void place_swapped_msrs(void)
{
	unsigned n = 0;

	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < SWAP_COUNT; i++)
			if (swapped_on_this_cpu(i) == (pass == 0))
				vmx_swap_position[i] = (uint8_t)n++;
		if (pass == 0)
			swapped_listed = n;
	}
}

/* Opens an MSR in the bitmap for reads, and for writes too if asked (SDM 24.6.9). */
static void msr_bitmap_open(uint8_t *bitmap, uint32_t msr, bool reads, bool writes)
{
	unsigned base = msr >= 0xc0000000 ? 1024 : 0;
	uint32_t bit = msr & 0x1fff;

	if (reads)
		bitmap[base + bit / 8] &= (uint8_t)~(1U << (bit % 8));
	if (writes)
		bitmap[2048 + base + bit / 8] &= (uint8_t)~(1U << (bit % 8));
}

static void msr_bitmap_pass_through(uint8_t *bitmap, uint32_t msr, bool writes)
{
	msr_bitmap_open(bitmap, msr, true, writes);
}

/* A write-only command MSR: reads still exit, to be refused as the CPU does (#GP). */
static void msr_bitmap_write_through(uint8_t *bitmap, uint32_t msr)
{
	msr_bitmap_open(bitmap, msr, false, true);
}

int vmx_init_bitmaps(struct page_alloc *pa)
{
	io_bitmap_pa = alloc_page_filled(pa, 2, 0xff);
	msr_bitmap_pa = alloc_page_filled(pa, 1, 0xff);
	if (!io_bitmap_pa || !msr_bitmap_pa)
		return -1;
	/*
	 * FS/GS base live in the VMCS guest state and the swapped MSRs in the
	 * per-vCPU MSR areas, so the guest may access them directly. Writes of
	 * IA32_TSC_AUX exit: not every CPU (nor Bochs) refuses its reserved
	 * bits 63:32 as the SDM says, vcpu_wrmsr does.
	 */
	uint8_t *bitmap = (uint8_t *)(uintptr_t)msr_bitmap_pa;
	msr_bitmap_pass_through(bitmap, MSR_IA32_FS_BASE, true);
	msr_bitmap_pass_through(bitmap, MSR_IA32_GS_BASE, true);
	place_swapped_msrs();
	for (unsigned i = 0; i < SWAP_COUNT; i++)
		if (swapped_on_this_cpu(i))
			msr_bitmap_pass_through(bitmap, swapped_msr_index[i], i != SWAP_TSC_AUX);
	/*
	 * A guest's own speculation controls (vmm/speculation.h): its
	 * IA32_SPEC_CTRL is swapped, the CPU checks what it writes; IBPB and
	 * the L1D flush act on the guest's own predictions and data. Root mode
	 * gets its IA32_SPEC_CTRL back at every exit.
	 */
	if (speculation.guest_cpuid7_edx & CPUID_07_EDX_SPEC_CTRL)
		msr_bitmap_write_through(bitmap, MSR_IA32_PRED_CMD);
	if (speculation.guest_cpuid7_edx & CPUID_07_EDX_L1D_FLUSH)
		msr_bitmap_write_through(bitmap, MSR_IA32_FLUSH_CMD);
	if (speculation.spec_ctrl) {
		host_msr_area_pa = alloc_page_filled(pa, 1, 0);
		if (!host_msr_area_pa)
			return -1;
		*(struct vmx_msr_entry *)(uintptr_t)host_msr_area_pa = (struct vmx_msr_entry){
			.index = MSR_IA32_SPEC_CTRL, .value = speculation.host_spec_ctrl
		};
	}
	if (vmx_host_caps.apic_virtualization) {
		apic_access_pa = alloc_page_filled(pa, 1, 0);
		if (!apic_access_pa)
			return -1;
	}
	__asm__ volatile("sgdt %0" : "=m"(host_gdtr));
	__asm__ volatile("sidt %0" : "=m"(host_idtr));
	vmx_rsb_fill_entries = speculation.rsb_fill;
	vmx_clear_buffers = speculation.clear_buffers_on_entry;
	/* VERW's operand: any selector clears the buffers; a valid one keeps it quick. */
	__asm__ volatile("mov %%ds, %0" : "=r"(vmx_verw_selector));
	return 0;
}

struct vmx_vm {
	uint64_t eptp;
	bool apic_access_mapped; /* the guest's xAPIC page is the APIC-access page */
};

size_t virt_vm_state_bytes(void)
{
	return sizeof(struct vmx_vm) + sizeof(struct vmx_vcpu);
}

/* 2-MiB EPT pages where the CPU has them and no iTLB multihit mitigation forbids them. */
static bool ept_large_pages(void)
{
	return vmx_host_caps.ept_2m && !speculation.exec_4k_pages;
}

int virt_vm_init(struct vm *vm, struct page_alloc *pa)
{
	static struct vmx_vm vmx_vms[VM_MAX];
	uint64_t pml4;

	if (vmx_ept_build(pa, vm->boot->ram_base, vm->boot->ram_bytes, ept_large_pages(), &pml4))
		return -1;
	struct vmx_vm *v = &vmx_vms[vm->id];
	v->eptp = pml4 | EPTP_WB | EPTP_WALK_4;
	vm->vendor = v;
	/*
	 * The PML4 page may have been an earlier VM's: drop translations
	 * cached under its address (SDM 28.3.3.1).
	 */
	invept_single(v->eptp);
	return 0;
}

void virt_vm_destroy(struct vm *vm, struct page_alloc *pa)
{
	struct vmx_vm *v = vm->vendor;

	/*
	 * Guest-physical and combined mappings are tagged with the EPT's
	 * address (SDM 28.3.1); with EPT on the CPU caches no others for a
	 * guest (SDM 28.3.2). Dropping them now means nothing cached still
	 * points into tables that may become another VM's tables or RAM
	 * (SDM 28.3.3.4).
	 */
	invept_single(v->eptp);
	vmx_ept_destroy(pa, v->eptp & PTE_ADDR_MASK);
	*v = (struct vmx_vm){ 0 };
	vm->vendor = NULL;
}

/* Read and write, no execution: a fetch from the APIC page is an EPT violation. */
static uint64_t apic_access_entry(void)
{
	return apic_access_pa | EPT_READ | EPT_WRITE | (uint64_t)MEMTYPE_WB << EPT_MEMTYPE_SHIFT;
}

/*
 * Maps the APIC-access page where the guest's xAPIC registers are, or
 * takes it away when they are not there (x2APIC mode, disabled, moved):
 * then an access to that page is the EPT violation of any other MMIO, and
 * emulated, as every access is at an address the page is not mapped at.
 */
static void map_apic_access(struct vm *vm, bool mapped)
{
	struct vmx_vm *v = vm->vendor;

	if (v->apic_access_mapped == mapped)
		return;
	if (vmx_ept_set_4k(vm->pages, v->eptp & PTE_ADDR_MASK, LAPIC_DEFAULT_BASE,
			   mapped ? apic_access_entry() : 0))
		return;
	/* A removed translation may be cached (SDM 28.3.3.4). */
	if (!mapped)
		invept_single(v->eptp);
	v->apic_access_mapped = mapped;
}

/*
 * The VM's EPT replaced by new tables (hidden RAM, or all of it mapped):
 * the vCPU's VMCS points at them, and nothing cached through the old ones,
 * or under the new PML4's address from an earlier use of its page, is
 * left (SDM 28.3.3.1) before the old tables go back to the pool.
 */
static int replace_ept(struct vm *vm, bool hidden)
{
	struct vmx_vm *v = vm->vendor;
	uint64_t pml4, old = v->eptp;
	int rc = hidden ? vmx_ept_build_hidden(vm->pages, vm->boot->ram_base,
					       vm->boot->ram_bytes, &pml4)
			: vmx_ept_build(vm->pages, vm->boot->ram_base, vm->boot->ram_bytes,
					ept_large_pages(), &pml4);
	if (rc)
		return -1;
	/* Without a table for it the guest's xAPIC page is emulated until mapped again. */
	if (v->apic_access_mapped && vmx_ept_set_4k(vm->pages, pml4, LAPIC_DEFAULT_BASE,
						    apic_access_entry()))
		v->apic_access_mapped = false;
	v->eptp = pml4 | EPTP_WB | EPTP_WALK_4;
	invept_single(v->eptp);
	vmcs_load(to_vmx(&vm->vcpu)->vmcs_pa);
	vmcs_write(VMCS_EPT_POINTER, v->eptp);
	invept_single(old);
	vmx_ept_destroy(vm->pages, old & PTE_ADDR_MASK);
	return 0;
}

int virt_ram_hide(struct vm *vm)
{
	return replace_ept(vm, true);
}

void virt_ram_show(struct vm *vm, uint64_t gpa, uint64_t bytes)
{
	const struct vmx_vm *v = vm->vendor;

	vmx_ept_show(v->eptp & PTE_ADDR_MASK, gpa, bytes);
}

void virt_ram_show_all(struct vm *vm)
{
	/* Without memory for new tables, the hidden ones, every page shown, serve as well. */
	if (replace_ept(vm, false))
		virt_ram_show(vm, 0, vm->boot->ram_bytes);
}

static void free_page_if_allocated(struct page_alloc *pa, uint64_t page)
{
	if (page)
		page_alloc_free(pa, page, 1);
}

int virt_vcpu_init(struct vcpu *vcpu, struct page_alloc *pa)
{
	static struct vmx_vcpu vmx_vcpus[VM_MAX];
	struct vmx_vcpu *v = &vmx_vcpus[vcpu->vm->id];
	/* RAM reaching the xAPIC page would put it under a large page: emulated then. */
	bool apic_virtualized = vmx_host_caps.apic_virtualization &&
				vcpu->vm->boot->ram_bytes <= LAPIC_DEFAULT_BASE;

	*v = (struct vmx_vcpu){ 0 };
	v->vmcs_pa = alloc_page_filled(pa, 1, 0);
	v->msr_area_pa = alloc_page_filled(pa, 1, 0);
	if (apic_virtualized)
		v->apic_page_pa = alloc_page_filled(pa, 1, 0);
	if (!v->vmcs_pa || !v->msr_area_pa || (apic_virtualized && !v->apic_page_pa)) {
		free_page_if_allocated(pa, v->vmcs_pa);
		free_page_if_allocated(pa, v->msr_area_pa);
		free_page_if_allocated(pa, v->apic_page_pa);
		return -1;
	}
	vcpu->apic_page = v->apic_page_pa ? (uint32_t *)(uintptr_t)v->apic_page_pa : NULL;
	vcpu->apic_page_live = false;
	((struct vmx_region_header *)(uintptr_t)v->vmcs_pa)->revision_id =
		vmx_host_caps.revision_id;
	v->msr_area = (struct vmx_msr_entry *)(uintptr_t)v->msr_area_pa;
	/*
	 * One VPID per VM slot, so reused slots never run out of them; 0 is
	 * the host's (SDM 28.1). A slot's earlier VM left no translation
	 * behind: virt_vm_destroy's INVEPT dropped every mapping tagged with
	 * its EPT.
	 */
	if (vmx_host_caps.vpid)
		v->vpid = (uint16_t)(vcpu->vm->id + 1);
	vcpu->vendor = v;
	return 0;
}

void virt_vcpu_destroy(struct vcpu *vcpu, struct page_alloc *pa)
{
	struct vmx_vcpu *v = to_vmx(vcpu);

	/*
	 * VMCLEAR writes the CPU's cached copy of the VMCS back and leaves it
	 * inactive, so the CPU will not write it later (SDM 24.1, 24.11.1);
	 * if it was current the CPU's current-VMCS pointer becomes invalid
	 * (FFFFFFFF_FFFFFFFFH, SDM 30.3 "VMCLEAR") and vmcs_clear forgets it,
	 * so no VMREAD/VMWRITE reaches the freed page.
	 */
	vmcs_clear(v->vmcs_pa);
	page_alloc_free(pa, v->vmcs_pa, 1);
	page_alloc_free(pa, v->msr_area_pa, 1);
	free_page_if_allocated(pa, v->apic_page_pa);
	*v = (struct vmx_vcpu){ 0 };
	vcpu->apic_page = NULL;
	vcpu->vendor = NULL;
}

/* The fixed CR0/CR4 bits the guest must run with but must not see. */
static uint64_t cr0_host_owned(void)
{
	uint64_t fixed = vmx_host_msrs.cr0_fixed0 | ~vmx_host_msrs.cr0_fixed1;
	/* Unrestricted guest lifts the PE and PG requirements (SDM 26.3.1.1). */
	return fixed & ~(CR0_PE | CR0_PG);
}

/*
 * CR4.PCE is the guest's to set, as any CPU allows, but never reaches the
 * register: the guest sees its own value in the read shadow, and RDPMC
 * exits whatever it is (the host's counters are not the guest's).
 */
static uint64_t cr4_host_owned(void)
{
	return vmx_host_msrs.cr4_fixed0 | ~vmx_host_msrs.cr4_fixed1 | vmx_cr4_hidden_from_guests() |
	       CR4_PCE;
}

/*
 * What the guest reads from CR0/CR4: host-owned bits (set in the mask)
 * from the read shadow, the others from the register (SDM 25.3).
 */
static uint64_t cr_guest_view(enum vmcs_field actual, enum vmcs_field shadow, uint64_t mask)
{
	return (vmcs_read(actual) & ~mask) | (vmcs_read(shadow) & mask);
}

static uint64_t cr0_actual(uint64_t guest_view)
{
	return (guest_view | (vmx_host_msrs.cr0_fixed0 & ~(CR0_PE | CR0_PG))) &
	       vmx_host_msrs.cr0_fixed1;
}

static uint64_t cr4_actual(uint64_t guest_view)
{
	return ((guest_view & ~CR4_PCE) | vmx_host_msrs.cr4_fixed0) & vmx_host_msrs.cr4_fixed1;
}

static void write_host_state(void)
{
	struct descriptor_table_register gdtr, idtr;
	uint16_t tr;

	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	__asm__ volatile("sidt %0" : "=m"(idtr));
	__asm__ volatile("str %0" : "=r"(tr));
	const struct system_descriptor *tss_desc =
		(const void *)(uintptr_t)(gdtr.base + (tr & ~7U));
	uint64_t tr_base = tss_desc->low.base_low | ((uint64_t)tss_desc->low.base_mid << 16) |
			   ((uint64_t)tss_desc->low.base_high << 24) |
			   ((uint64_t)tss_desc->base_upper << 32);

	vmcs_write(VMCS_HOST_CR0, read_cr0());
	vmcs_write(VMCS_HOST_CR3, read_cr3());
	vmcs_write(VMCS_HOST_CR4, read_cr4());
	vmcs_write(VMCS_HOST_CS_SEL, 0x08);
	vmcs_write(VMCS_HOST_SS_SEL, 0x10);
	vmcs_write(VMCS_HOST_DS_SEL, 0x10);
	vmcs_write(VMCS_HOST_ES_SEL, 0x10);
	vmcs_write(VMCS_HOST_FS_SEL, 0x10);
	vmcs_write(VMCS_HOST_GS_SEL, 0x10);
	vmcs_write(VMCS_HOST_TR_SEL, tr);
	vmcs_write(VMCS_HOST_FS_BASE, 0);
	/* this_cpu() reads GS:0 (vmm/percpu.h): the exit must bring our base back. */
	vmcs_write(VMCS_HOST_GS_BASE, (uint64_t)(uintptr_t)this_cpu());
	vmcs_write(VMCS_HOST_TR_BASE, tr_base);
	vmcs_write(VMCS_HOST_GDTR_BASE, gdtr.base);
	vmcs_write(VMCS_HOST_IDTR_BASE, idtr.base);
	vmcs_write(VMCS_HOST_SYSENTER_CS, 0);
	vmcs_write(VMCS_HOST_SYSENTER_ESP, 0);
	vmcs_write(VMCS_HOST_SYSENTER_EIP, 0);
	vmcs_write(VMCS_HOST_PAT, rdmsr(MSR_IA32_PAT));
	vmcs_write(VMCS_HOST_EFER, rdmsr(MSR_IA32_EFER));
	vmcs_write(VMCS_HOST_RIP, (uint64_t)(uintptr_t)vmx_exit_entry);
}

static void write_controls(struct vcpu *vcpu)
{
	struct vmx_vcpu *v = to_vmx(vcpu);
	const struct vmx_msrs *m = &vmx_host_msrs;
	const struct vmx_vm *vv = vcpu->vm->vendor;
	/* Virtual NMIs only with NMI-window exiting beside them, as vmx_host_caps has it. */
	uint32_t pin_optional = (vmx_host_caps.virtual_nmis ? PIN_CTL_VIRTUAL_NMIS : 0) |
				(vmx_host_caps.preemption_timer ? PIN_CTL_PREEMPTION_TIMER : 0);

	vmcs_write(VMCS_PIN_CONTROLS,
		   adjust_controls(PIN_CTL_EXTERNAL_INTERRUPT | PIN_CTL_NMI_EXITING,
				   pin_optional, m->pinbased, "pin-based"));
	/*
	 * CR8 exits: the TPR is per vCPU, never the host local APIC's (SDM 25.3);
	 * with the local APIC virtualized CR8 is the virtual-APIC page's TPR
	 * instead (SDM 29.3), without exits.
	 * TSC offsetting without RDTSC exiting: the guest's RDTSC and RDMSR of
	 * IA32_TIME_STAMP_COUNTER read the host TSC plus the VMCS TSC offset
	 * (SDM 24.6.5, 25.3), the VM's clock (vmm/vm_clock.h), at no exit.
	 * MWAIT and MONITOR exit (and are #UD, as CPUID hides MONITOR/MWAIT):
	 * run natively, MWAIT could put the only physical CPU into a deep
	 * C-state where the preemption timer stops (SDM 25.5.1). RDPMC exits
	 * (and is #GP): it would read the host's performance counters.
	 */
	uint32_t tpr = vcpu->apic_page ? PROC_CTL_USE_TPR_SHADOW
				       : PROC_CTL_CR8_LOAD_EXITING | PROC_CTL_CR8_STORE_EXITING;
	v->proc_controls = adjust_controls(PROC_CTL_HLT_EXITING | PROC_CTL_USE_TSC_OFFSETTING |
						   PROC_CTL_MWAIT_EXITING |
						   PROC_CTL_MONITOR_EXITING |
						   PROC_CTL_RDPMC_EXITING |
						   PROC_CTL_USE_IO_BITMAPS |
						   PROC_CTL_USE_MSR_BITMAPS | tpr |
						   PROC_CTL_SECONDARY_CONTROLS,
					   0, m->procbased, "processor-based");
	if (!(VMX_CTL_ALLOWED1(m->procbased) & PROC_CTL_INTERRUPT_WINDOW))
		panic("vmx: interrupt-window exiting is not supported");
	vmcs_write(VMCS_PROC_CONTROLS, v->proc_controls);
	/*
	 * APIC virtualization (SDM chapter 29): the CPU delivers the local
	 * APIC's interrupts from the virtual-APIC page and takes their EOIs
	 * and the TPR's writes there; with "APIC-register virtualization" the
	 * guest also reads most registers there (lapic_to_page writes them).
	 * Other accesses, and every other register write, exit to the model.
	 */
	uint32_t apic = 0;
	if (vcpu->apic_page)
		apic = PROC2_CTL_VIRTUALIZE_APIC_ACCESSES | PROC2_CTL_VIRTUAL_INTERRUPT_DELIVERY |
		       (vmx_host_caps.apic_register_virtualization
				? PROC2_CTL_APIC_REGISTER_VIRTUALIZATION : 0);
	vmcs_write(VMCS_PROC2_CONTROLS,
		   adjust_controls(PROC2_CTL_ENABLE_EPT | PROC2_CTL_UNRESTRICTED_GUEST |
					   PROC2_CTL_WBINVD_EXITING | apic,
				   (v->vpid ? PROC2_CTL_ENABLE_VPID : 0) |
					   (virt_guest_has_tsc_aux() ? PROC2_CTL_ENABLE_RDTSCP : 0) |
					   (xstate_offers_xsaves(xstate_host_layout()) ? PROC2_CTL_ENABLE_XSAVES : 0),
				   m->procbased2,
				   "secondary"));
	/* IA32_XSS is 0 for host and guests alike: no XSAVES exits (SDM 25.1.3). */
	if (xstate_offers_xsaves(xstate_host_layout()))
		vmcs_write(VMCS_XSS_EXIT_BITMAP, 0);
	/*
	 * Debug controls: the guest's DR7 and DEBUGCTL live in the VMCS
	 * (DR0-3/DR6 are switched by the scheduler). The preemption timer keeps
	 * counting across exits so that a guest that exits often still gets
	 * no more than its slice.
	 */
	vmcs_write(VMCS_EXIT_CONTROLS,
		   adjust_controls(EXIT_CTL_HOST_ADDR_SPACE_SIZE | EXIT_CTL_ACK_INTERRUPT |
					   EXIT_CTL_SAVE_PAT | EXIT_CTL_LOAD_PAT |
					   EXIT_CTL_SAVE_EFER | EXIT_CTL_LOAD_EFER |
					   EXIT_CTL_SAVE_DEBUG,
				   vmx_host_caps.save_preemption_timer
					   ? EXIT_CTL_SAVE_PREEMPTION_TIMER : 0,
				   m->exit, "VM-exit"));
	vmcs_write(VMCS_ENTRY_CONTROLS,
		   adjust_controls(ENTRY_CTL_LOAD_PAT | ENTRY_CTL_LOAD_EFER | ENTRY_CTL_LOAD_DEBUG,
				   0, m->entry, "VM-entry"));
	/* A machine check belongs to the host, not the guest's IDT. */
	vmcs_write(VMCS_EXCEPTION_BITMAP, 1U << VECTOR_MC);
	vmcs_write(VMCS_PF_ERROR_MASK, 0);
	vmcs_write(VMCS_PF_ERROR_MATCH, 0);
	vmcs_write(VMCS_CR3_TARGET_COUNT, 0);
	vmcs_write(VMCS_TSC_OFFSET, 0);
	vmcs_write(VMCS_EXIT_MSR_LOAD_ADDR, host_msr_area_pa);
	vmcs_write(VMCS_IO_BITMAP_A, io_bitmap_pa);
	vmcs_write(VMCS_IO_BITMAP_B, io_bitmap_pa + PAGE_SIZE);
	vmcs_write(VMCS_MSR_BITMAP, msr_bitmap_pa);
	vmcs_write(VMCS_EPT_POINTER, vv->eptp);
	if (vcpu->apic_page) {
		vmcs_write(VMCS_VIRTUAL_APIC_ADDR, v->apic_page_pa);
		vmcs_write(VMCS_APIC_ACCESS_ADDR, apic_access_pa);
		vmcs_write(VMCS_TPR_THRESHOLD, 0);
		/*
		 * A reset or a loaded state made the model newer than anything
		 * the page holds: it writes the page and these afresh before
		 * the next entry (apic_to_cpu).
		 */
		vcpu->apic_page_live = false;
	}
	if (v->vpid)
		vmcs_write(VMCS_VPID, v->vpid);
	vmcs_write(VMCS_LINK_POINTER, VMCS_LINK_NONE);
	vmcs_write(VMCS_CR0_MASK, cr0_host_owned());
	vmcs_write(VMCS_CR4_MASK, cr4_host_owned());
	vmcs_write(VMCS_EXIT_MSR_STORE_ADDR, v->msr_area_pa);
	vmcs_write(VMCS_ENTRY_MSR_LOAD_ADDR, v->msr_area_pa);
	vmcs_write(VMCS_EXIT_MSR_STORE_COUNT, swapped_listed);
	vmcs_write(VMCS_ENTRY_MSR_LOAD_COUNT, swapped_listed);
	vmcs_write(VMCS_EXIT_MSR_LOAD_COUNT, host_msr_area_pa ? 1 : 0);
	vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
}

static uint32_t host_mxcsr_mask(void)
{
	static uint32_t mask;

	if (!mask) {
		struct vcpu_fxsave area __attribute__((aligned(16)));
		__asm__ volatile("fxsave64 %0" : "=m"(area));
		mask = area.mxcsr_mask ? area.mxcsr_mask : MXCSR_MASK_DEFAULT;
	}
	return mask;
}

/* CPUID leaf 80000008H's EAX, which guests see as it is; 0 where the leaf is missing. */
static uint32_t address_sizes(void)
{
	if (cpuid(CPUID_EXTENDED_MAX, 0).eax < CPUID_ADDRESS_SIZES)
		return 0;
	return cpuid(CPUID_ADDRESS_SIZES, 0).eax;
}

/* The physical-address width, bits 7:0; 36 where the leaf is missing (SDM Vol. 3A, 4.1.4). */
static unsigned guest_maxphyaddr(void)
{
	uint32_t sizes = address_sizes();

	return sizes ? sizes & 0xff : MAXPHYADDR_WITHOUT_LEAF;
}

unsigned virt_guest_linear_address_bits(void)
{
	static unsigned bits;

	/* The linear-address width, bits 15:8. */
	if (!bits)
		bits = (address_sizes() >> 8 & 0xff) >= X86_VA_BITS_5LEVEL ? X86_VA_BITS_5LEVEL
									 : X86_VA_BITS_4LEVEL;
	return bits;
}

/* What this CPU lets a loaded state hold (vmm/vcpu_state.h). */
static struct vcpu_state_limits state_limits(void)
{
	return (struct vcpu_state_limits){
		.cr4_allowed = vmx_host_msrs.cr4_fixed1 & ~(CR4_VMXE | vmx_cr4_hidden_from_guests()),
		.maxphyaddr = guest_maxphyaddr(),
		.linear_address_bits = virt_guest_linear_address_bits(),
		.mxcsr_allowed = host_mxcsr_mask(),
		.xcr0_allowed = xstate_host_layout()->components ? xstate_host_layout()->components
								  : XSTATE_X87,
		.spec_ctrl_allowed = speculation.guest_spec_ctrl_bits,
	};
}

static bool pae_paging(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	return (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(efer & EFER_LMA);
}

/* Writes a checked state into the current VMCS and the vCPU's software copies. */
static void write_guest_state(struct vcpu *vcpu, const struct vcpu_state *s)
{
	struct vmx_vcpu *v = to_vmx(vcpu);

	for (unsigned i = 0; i < 16; i++)
		vcpu_write_gpr(vcpu, i, s->gpr[i]);
	vcpu->regs.cr2 = s->cr2;
	vmcs_write(VMCS_GUEST_RIP, s->rip);
	vmcs_write(VMCS_GUEST_RFLAGS, s->rflags);
	virt_set_guest_reg(vcpu, GUEST_REG_CR0, s->cr0);
	virt_set_guest_reg(vcpu, GUEST_REG_CR4, s->cr4);
	vmcs_write(VMCS_GUEST_CR3, s->cr3);
	vmcs_write(VMCS_GUEST_DR7, s->dr7);
	vmcs_write(VMCS_GUEST_DEBUGCTL, s->debugctl);
	vmcs_write(VMCS_GUEST_EFER, s->efer);
	/* The IA-32e mode guest control is EFER.LMA on entry (SDM 26.3.1.1). */
	uint64_t entry = vmcs_read(VMCS_ENTRY_CONTROLS);
	vmcs_write(VMCS_ENTRY_CONTROLS, (s->efer & EFER_LMA) ? entry | ENTRY_CTL_IA32E_GUEST
							       : entry & ~ENTRY_CTL_IA32E_GUEST);
	vmcs_write(VMCS_GUEST_PAT, s->pat);
	vmcs_write(VMCS_GUEST_SYSENTER_CS, s->sysenter_cs);
	vmcs_write(VMCS_GUEST_SYSENTER_ESP, s->sysenter_esp);
	vmcs_write(VMCS_GUEST_SYSENTER_EIP, s->sysenter_eip);
	const uint64_t swapped[SWAP_COUNT] = {
		[SWAP_STAR] = s->star,   [SWAP_LSTAR] = s->lstar,   [SWAP_CSTAR] = s->cstar,
		[SWAP_SFMASK] = s->sfmask, [SWAP_KERNEL_GS_BASE] = s->kernel_gs_base,
		[SWAP_TSC_AUX] = s->tsc_aux, [SWAP_SPEC_CTRL] = s->spec_ctrl,
	};
	for (unsigned i = 0; i < SWAP_COUNT; i++)
		*vmx_swapped(v, i) = (struct vmx_msr_entry){ .index = swapped_msr_index[i],
							     .value = swapped[i] };
	for (unsigned i = 0; i < SEG_COUNT; i++) {
		const struct vcpu_segment *seg = &s->seg[i];
		vmcs_write(VMCS_GUEST_ES_SEL + 2 * i, seg->selector);
		vmcs_write(VMCS_GUEST_ES_BASE + 2 * i, seg->base);
		vmcs_write(VMCS_GUEST_ES_LIMIT + 2 * i, seg->limit);
		vmcs_write(VMCS_GUEST_ES_AR + 2 * i, seg->attributes);
	}
	vmcs_write(VMCS_GUEST_GDTR_BASE, s->gdtr_base);
	vmcs_write(VMCS_GUEST_GDTR_LIMIT, s->gdtr_limit);
	vmcs_write(VMCS_GUEST_IDTR_BASE, s->idtr_base);
	vmcs_write(VMCS_GUEST_IDTR_LIMIT, s->idtr_limit);
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, s->interruptibility);
	vmcs_write(VMCS_GUEST_PENDING_DBG, s->pending_debug);
	/*
	 * HLT exits and is emulated: a halted vCPU is vcpu->halted with the
	 * hardware active, as after the HLT exit. An event to deliver wakes it
	 * (SDM 26.6.2), so then it is not halted.
	 */
	vmcs_write(VMCS_GUEST_ACTIVITY, VCPU_ACTIVITY_ACTIVE);
	vcpu->halted = s->activity == VCPU_ACTIVITY_HLT && !s->event.pending;
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(VMCS_GUEST_PDPTE0 + 2 * i, s->pdpte[i]);
	v->inject_pending = s->event.pending;
	v->inject_info = INTR_INFO_VALID | (uint32_t)s->event.type << 8 | s->event.vector |
			 (s->event.has_error_code ? INTR_INFO_DELIVER_ERROR : 0);
	v->inject_error = s->event.error_code;
	vmcs_write(VMCS_ENTRY_INSTR_LEN, s->event.instruction_length);
	xstate_area_from_state(xstate_host_layout(), s, vcpu->xsave);
	vcpu->xcr0 = s->xcr0;
	memcpy(vcpu->dr, s->dr, sizeof(vcpu->dr));
	vcpu->dr6 = s->dr6;
	vcpu_set_misc_enable(vcpu, s->misc_enable);
	vcpu->tsc_adjust = s->tsc_adjust;
	vcpu->fpu_fresh = true;
	/* Paging may have changed under cached translations. */
	vmx_flush_guest_tlb(vcpu);
}

int virt_vcpu_reset(struct vcpu *vcpu, const struct vcpu_state *state,
		    struct devstate_error *err)
{
	struct vmx_vcpu *v = to_vmx(vcpu);
	const struct vcpu_state_limits limits = state_limits();

	if (!vcpu_state_check(state, &limits, err))
		return -1;
	/* VMCLEAR puts the VMCS in the "clear" launch state (SDM 24.11.3). */
	vmcs_clear(v->vmcs_pa);
	vmcs_load(v->vmcs_pa);
	v->launched = false;
	v->host_rsp = 0;
	write_host_state();
	write_controls(vcpu);
	write_guest_state(vcpu, state);
	return 0;
}

int virt_vcpu_set_state(struct vcpu *vcpu, const struct vcpu_state *state,
			struct devstate_error *err)
{
	const struct vcpu_state_limits limits = state_limits();

	if (!vcpu_state_check(state, &limits, err))
		return -1;
	vmcs_load(to_vmx(vcpu)->vmcs_pa);
	write_guest_state(vcpu, state);
	return 0;
}

static struct vcpu_event pending_event(const struct vmx_vcpu *v)
{
	uint32_t info = v->inject_info;
	uint8_t type = (uint8_t)((info & INTR_INFO_TYPE_MASK) >> 8);
	bool error_code = info & INTR_INFO_DELIVER_ERROR;

	if (!v->inject_pending)
		return (struct vcpu_event){ 0 };
	return (struct vcpu_event){
		.pending = true,
		.type = type,
		.vector = (uint8_t)(info & INTR_INFO_VECTOR_MASK),
		.has_error_code = error_code,
		.error_code = error_code ? v->inject_error : 0,
		/* Only software events use it; requeue_interrupted_event() kept it in the VMCS. */
		.instruction_length = type >= VCPU_EVENT_SOFTWARE_INTERRUPT
					      ? (uint32_t)vmcs_read(VMCS_ENTRY_INSTR_LEN) : 0,
	};
}

void virt_vcpu_get_state(struct vcpu *vcpu, struct vcpu_state *s)
{
	struct vmx_vcpu *v = to_vmx(vcpu);

	sched_save_cpu_state(vcpu);
	vmcs_load(v->vmcs_pa);
	*s = (struct vcpu_state){ 0 };
	for (unsigned i = 0; i < 16; i++)
		s->gpr[i] = vcpu_read_gpr(vcpu, i);
	s->cr2 = vcpu->regs.cr2;
	s->rip = vmcs_read(VMCS_GUEST_RIP);
	s->rflags = vmcs_read(VMCS_GUEST_RFLAGS);
	s->cr0 = virt_guest_reg(vcpu, GUEST_REG_CR0);
	s->cr3 = vmcs_read(VMCS_GUEST_CR3);
	s->cr4 = virt_guest_reg(vcpu, GUEST_REG_CR4);
	memcpy(s->dr, vcpu->dr, sizeof(s->dr));
	s->dr6 = vcpu->dr6;
	s->dr7 = vmcs_read(VMCS_GUEST_DR7);
	s->efer = vmcs_read(VMCS_GUEST_EFER);
	s->pat = vmcs_read(VMCS_GUEST_PAT);
	s->debugctl = vmcs_read(VMCS_GUEST_DEBUGCTL);
	s->misc_enable = vcpu->misc_enable;
	s->tsc_adjust = vcpu->tsc_adjust;
	s->sysenter_cs = vmcs_read(VMCS_GUEST_SYSENTER_CS);
	s->sysenter_esp = vmcs_read(VMCS_GUEST_SYSENTER_ESP);
	s->sysenter_eip = vmcs_read(VMCS_GUEST_SYSENTER_EIP);
	s->star = vmx_swapped(v, SWAP_STAR)->value;
	s->lstar = vmx_swapped(v, SWAP_LSTAR)->value;
	s->cstar = vmx_swapped(v, SWAP_CSTAR)->value;
	s->sfmask = vmx_swapped(v, SWAP_SFMASK)->value;
	s->kernel_gs_base = vmx_swapped(v, SWAP_KERNEL_GS_BASE)->value;
	s->tsc_aux = vmx_swapped(v, SWAP_TSC_AUX)->value;
	s->spec_ctrl = vmx_swapped(v, SWAP_SPEC_CTRL)->value;
	for (unsigned i = 0; i < SEG_COUNT; i++) {
		uint32_t ar = (uint32_t)vmcs_read(VMCS_GUEST_ES_AR + 2 * i);
		/*
		 * Of an unusable segment's access rights only SS.DPL (the CPL)
		 * is defined (SDM 27.3.2); the rest is left out of the state.
		 */
		if (ar & VMX_AR_UNUSABLE)
			ar = VCPU_SEG_UNUSABLE | (i == SEG_SS ? ar & SEG_ATTR_DPL_MASK : 0);
		s->seg[i] = (struct vcpu_segment){
			.selector = (uint16_t)vmcs_read(VMCS_GUEST_ES_SEL + 2 * i),
			.base = vmcs_read(VMCS_GUEST_ES_BASE + 2 * i),
			.limit = (uint32_t)vmcs_read(VMCS_GUEST_ES_LIMIT + 2 * i),
			.attributes = ar,
		};
	}
	s->gdtr_base = vmcs_read(VMCS_GUEST_GDTR_BASE);
	s->gdtr_limit = (uint32_t)vmcs_read(VMCS_GUEST_GDTR_LIMIT);
	s->idtr_base = vmcs_read(VMCS_GUEST_IDTR_BASE);
	s->idtr_limit = (uint32_t)vmcs_read(VMCS_GUEST_IDTR_LIMIT);
	s->interruptibility = (uint32_t)vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
	s->activity = vcpu->halted ? VCPU_ACTIVITY_HLT : (uint32_t)vmcs_read(VMCS_GUEST_ACTIVITY);
	s->pending_debug = vmcs_read(VMCS_GUEST_PENDING_DBG);
	/* The PDPTE fields mean something only in PAE paging (SDM 26.3.2.4). */
	if (pae_paging(s->cr0, s->cr4, s->efer))
		for (unsigned i = 0; i < 4; i++)
			s->pdpte[i] = vmcs_read(VMCS_GUEST_PDPTE0 + 2 * i);
	/* An event an exit interrupted is already queued again (requeue_interrupted_event). */
	s->event = pending_event(v);
	xstate_state_from_area(xstate_host_layout(), vcpu->xsave, s);
	s->xcr0 = vcpu->xcr0;
}

/* Exceptions of the fault class (SDM table 6-1); #DB is injected only as a trap. */
static bool is_fault(unsigned vector)
{
	switch (vector) {
	case VECTOR_DE:
	case VECTOR_BR:
	case VECTOR_UD:
	case VECTOR_NM:
	case VECTOR_TS:
	case VECTOR_NP:
	case VECTOR_SS:
	case VECTOR_GP:
	case VECTOR_PF:
	case VECTOR_MF:
	case VECTOR_AC:
	case VECTOR_XM:
	case VECTOR_VE:
		return true;
	default:
		return false;
	}
}

void virt_inject_exception(struct vcpu *vcpu, unsigned vector, bool has_error_code,
			   uint32_t error_code)
{
	struct vmx_vcpu *v = to_vmx(vcpu);

	/*
	 * Delivery pushes the guest-state RFLAGS: a fault's image must have RF
	 * set (SDM 18.3.1.1), so that the restarted instruction does not raise
	 * its instruction breakpoint again after the handler's IRET.
	 */
	if (is_fault(vector)) {
		vmcs_load(v->vmcs_pa);
		vmcs_write(VMCS_GUEST_RFLAGS, vmcs_read(VMCS_GUEST_RFLAGS) | RFLAGS_RF);
	}
	/* Real-mode delivery pushes no error code (SDM 26.2.1.3). */
	if (!(vmcs_read(VMCS_GUEST_CR0) & CR0_PE))
		has_error_code = false;
	v->inject_pending = true;
	v->inject_info = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (vector & 0xff) |
			 (has_error_code ? INTR_INFO_DELIVER_ERROR : 0);
	v->inject_error = error_code;
}

void vmx_flush_guest_tlb(struct vcpu *vcpu)
{
	const struct vmx_vm *vv = vcpu->vm->vendor;

	invept_single(vv->eptp);
}

/* Turns one primary processor-based control on or off, writing the VMCS only on a change. */
static void set_proc_control(struct vmx_vcpu *v, uint32_t control, bool on)
{
	uint32_t controls = on ? v->proc_controls | control : v->proc_controls & ~control;

	if (controls != v->proc_controls) {
		v->proc_controls = controls;
		vmcs_write(VMCS_PROC_CONTROLS, controls);
	}
}

void vmx_set_interrupt_window(struct vmx_vcpu *v, bool on)
{
	set_proc_control(v, PROC_CTL_INTERRUPT_WINDOW, on);
}

void vmx_set_nmi_window(struct vmx_vcpu *v, bool on)
{
	set_proc_control(v, PROC_CTL_NMI_WINDOW, on);
}

/*
 * Injects the vCPU's NMI when the guest can take one: no other event
 * being injected, no STI/MOV-SS blocking and no NMI blocking, which with
 * virtual NMIs the CPU sets at the injection and clears at the guest's
 * IRET (SDM 25.3, 26.3.1.5, 26.6.1); otherwise asks for an exit as soon as
 * it can (NMI-window exiting). Returns whether it injected.
 */
static bool deliver_nmi(struct vcpu *vcpu, struct vmx_vcpu *v)
{
	if (!vcpu_nmi_pending(vcpu))
		return false;
	if (!vmx_host_caps.virtual_nmis) {
		/* Without virtual NMIs the guest's NMI blocking cannot be kept. */
		vcpu_take_nmi(vcpu);
		log_warn("vm '%s': NMI dropped: this CPU has no virtual NMIs", vcpu->vm->cfg->name);
		return false;
	}
	bool open = !v->inject_pending && !(vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) &
					    (VCPU_BLOCKING_STI | VCPU_BLOCKING_MOV_SS | VCPU_BLOCKING_NMI));
	vmx_set_nmi_window(v, !open);
	if (!open)
		return false;
	vmcs_write(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | VECTOR_NMI);
	vcpu_take_nmi(vcpu);
	return true;
}

/*
 * Delivers the vCPU's NMI, else its next interrupt (vcpu_interrupt_pending)
 * as an external interrupt when the guest can take one (RFLAGS.IF set, no
 * STI/MOV-SS blocking, no other event being injected: SDM 26.3.1.5, 26.6);
 * otherwise asks for an exit as soon as it can (interrupt-window exiting).
 */
static void deliver_interrupt(struct vcpu *vcpu, struct vmx_vcpu *v)
{
	if (!vcpu_interrupt_possible(vcpu))
		return;
	if (deliver_nmi(vcpu, v)) {
		/* One event per entry: an interrupt waits for the handler's IRET. */
		if (vcpu_interrupt_pending(vcpu) >= 0)
			vmx_set_interrupt_window(v, true);
		return;
	}
	if (vcpu_interrupt_pending(vcpu) < 0)
		return;
	bool open = !v->inject_pending && (vmcs_read(VMCS_GUEST_RFLAGS) & RFLAGS_IF) &&
		    !(vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) & 3) &&
		    !(vmcs_read(VMCS_GUEST_PENDING_DBG) & VMX_PENDING_DBG_BS);
	if (!open) {
		vmx_set_interrupt_window(v, true);
		return;
	}
	vmcs_write(VMCS_ENTRY_INTR_INFO,
		   INTR_INFO_VALID | INTR_TYPE_EXTERNAL | vcpu_interrupt_acknowledge(vcpu));
	vmx_set_interrupt_window(v, false);
}

/*
 * Completes an instruction for the guest as the CPU would have: RIP moves
 * on, STI/MOV-SS blocking ends (SDM 24.4.2), and with RFLAGS.TF set the
 * single-step trap is left pending (BS, SDM 24.4.2 table 24-4), so that
 * the CPU delivers #DB with DR6.BS right after VM entry (SDM 26.7.3) and
 * before any interrupt (deliver_interrupt waits for it).
 */
static inline __attribute__((always_inline)) void skip_guest_instruction(uint64_t len)
{
	uint64_t rip = vmcs_read(VMCS_GUEST_RIP), next = rip + len;

	/*
	 * Outside 64-bit mode EIP wraps at 4 GiB: the carry out of bit 31 is
	 * the rare case that pays for reading CS (the L bit, SDM 3.4.5).
	 */
	if (((rip ^ next) >> 32) &&
	    !(vmcs_read(VMCS_GUEST_ES_AR + 2 * SEG_CS) & SEG_ATTR_LONG))
		next = (uint32_t)next;
	vmcs_write(VMCS_GUEST_RIP, next);
	uint64_t intr = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
	if (intr & 3)
		vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, intr & ~3ULL);
	if (vmcs_read(VMCS_GUEST_RFLAGS) & RFLAGS_TF)
		vmcs_write(VMCS_GUEST_PENDING_DBG,
			   vmcs_read(VMCS_GUEST_PENDING_DBG) | VMX_PENDING_DBG_BS);
}

void vmx_advance_rip(void)
{
	skip_guest_instruction(vmcs_read(VMCS_EXIT_INSTR_LEN));
}

void virt_skip_instruction(struct vcpu *vcpu, unsigned len)
{
	vmcs_load(to_vmx(vcpu)->vmcs_pa);
	skip_guest_instruction(len);
}

struct segment_state virt_guest_segment(struct vcpu *vcpu, enum x86_segment seg)
{
	vmcs_load(to_vmx(vcpu)->vmcs_pa);
	uint32_t ar = (uint32_t)vmcs_read(VMCS_GUEST_ES_AR + 2 * seg);
	return (struct segment_state){
		.selector = (uint16_t)vmcs_read(VMCS_GUEST_ES_SEL + 2 * seg),
		.base = vmcs_read(VMCS_GUEST_ES_BASE + 2 * seg),
		.limit = (uint32_t)vmcs_read(VMCS_GUEST_ES_LIMIT + 2 * seg),
		/* The VMCS marks an unusable segment with bit 16 (SDM 24.4.1). */
		.attributes = (ar & VMX_AR_UNUSABLE) ? 0 : ar,
	};
}

unsigned vmx_guest_cpl(void)
{
	return (unsigned)((vmcs_read(VMCS_GUEST_ES_AR + 2 * SEG_SS) >> 5) & 3);
}

/*
 * An event the exit interrupted while it was being delivered (IDT-vectoring
 * information, SDM 27.2.4) must be delivered again, or it is lost.
 */
static void requeue_interrupted_event(struct vmx_vcpu *v)
{
	uint32_t info = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_INFO);

	if (!(info & INTR_INFO_VALID) || v->inject_pending)
		return;
	v->inject_pending = true;
	v->inject_info = info & ~(1U << 12); /* bit 12 is undefined on entry */
	v->inject_error = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_ERROR);
	vmcs_write(VMCS_ENTRY_INSTR_LEN, vmcs_read(VMCS_EXIT_INSTR_LEN));
	/*
	 * An NMI cut short left (virtual-)NMI blocking set, which VM entry
	 * refuses beside an NMI to inject when virtual NMIs are on (SDM Vol.
	 * 3C 26.3.1.5, interruptibility state); its delivery sets it again.
	 */
	if ((info & INTR_INFO_TYPE_MASK) == INTR_TYPE_NMI && vmx_host_caps.virtual_nmis)
		vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
			   vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) & ~(uint64_t)VCPU_BLOCKING_NMI);
}

/*
 * The local APIC's vectors to the virtual-APIC page, its guest interrupt
 * status (SDM 24.4.2) and its EOI-exit bitmap: a level-triggered vector's
 * EOI exits, so that the I/O APIC sees it (lapic_virtual_eoi); an
 * edge-triggered one's completes in the CPU. TMR marks the vectors that
 * arrived level-triggered, as for the model's own EOI.
 */
static void apic_to_cpu(struct vcpu *vcpu)
{
	struct lapic_page_status status = vcpu_apic_to_page(vcpu);

	vmcs_write(VMCS_GUEST_INTERRUPT_STATUS, (uint64_t)status.svi << 8 | status.rvi);
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(VMCS_EOI_EXIT_BITMAP0 + 2 * i, status.level_vectors[i]);
	map_apic_access(vcpu->vm, status.virtualizable);
}

static void report_entry_failure(struct vcpu *vcpu, int failure)
{
	/* After VMfailInvalid there is no current VMCS to read an error from. */
	if (failure == 2)
		vm_request_end(vcpu->vm, "VM entry failed: no current VMCS (VMfailInvalid)");
	else
		vm_request_end(vcpu->vm, "VM entry failed: VM-instruction error %llu",
			       (unsigned long long)vmcs_read(VMCS_INSTR_ERROR));
}

/*
 * The guest armed, moved or stopped a timer: its VM's timers run now (one
 * already due raises its interrupt for the next entry), and a next event
 * inside the slice ends the slice there instead of at its end.
 */
static uint64_t rerun_timers(struct vcpu *vcpu, uint64_t slice_end)
{
	uint64_t now = rdtsc();
	uint64_t next = vm_run_timers(vcpu->vm, now);

	vcpu->timers_moved = false;
	if (next && next < slice_end) {
		slice_end = next;
		vmcs_write(VMCS_PREEMPTION_TIMER,
			   next > now ? (next - now) >> vmx_host_caps.preemption_timer_shift : 0);
	}
	return slice_end;
}

static enum vcpu_run_result run_slice(struct vcpu *vcpu, uint64_t slice_tsc)
{
	struct vmx_vcpu *v = to_vmx(vcpu);

	uint64_t slice_end = rdtsc() + slice_tsc;
	/* The scheduler ran the VM's timers for this slice. */
	vcpu->timers_moved = false;

	vmcs_load(v->vmcs_pa);
	vmcs_write(VMCS_PREEMPTION_TIMER, slice_tsc >> vmx_host_caps.preemption_timer_shift);
	for (;;) {
		/*
		 * Without "save preemption-timer value" every entry restarts the
		 * timer from the field (SDM 25.5.1): load what is left of the slice.
		 */
		if (!vmx_host_caps.save_preemption_timer) {
			uint64_t now = rdtsc();
			vmcs_write(VMCS_PREEMPTION_TIMER,
				   now < slice_end
					   ? (slice_end - now) >> vmx_host_caps.preemption_timer_shift
					   : 0);
		}
		if (vcpu->apic_page && !vcpu->apic_page_live)
			apic_to_cpu(vcpu);
		deliver_interrupt(vcpu, v);
		/* L1TF: nothing of root mode's or another VM's is left in the L1D for the guest. */
		if (speculation.l1d_flush_on_entry)
			wrmsr(MSR_IA32_FLUSH_CMD, FLUSH_CMD_L1D);
		if (v->inject_pending) {
			vmcs_write(VMCS_ENTRY_INTR_INFO, v->inject_info);
			vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR, v->inject_error);
			v->inject_pending = false;
		}
		int failure = vmx_enter_guest(&vcpu->regs, v->launched, &v->host_rsp);
		if (failure) {
			report_entry_failure(vcpu, failure);
			return VCPU_RUN_STOPPED;
		}
		v->launched = true;
		vcpu->exits++;

		requeue_interrupted_event(v);
		enum exit_action action = vmx_handle_exit(vcpu, (uint32_t)vmcs_read(VMCS_EXIT_REASON));
		/* The common case first: one test on the hot exits' path. */
		if (action == EXIT_CONTINUE)
			continue;
		switch (action) {
		case EXIT_CONTINUE:
			continue;
		case EXIT_TIMERS_MOVED:
			slice_end = rerun_timers(vcpu, slice_end);
			continue;
		case EXIT_PREEMPT:
			return VCPU_RUN_PREEMPTED;
		case EXIT_HALT:
			return VCPU_RUN_HALTED;
		case EXIT_STOP:
			return VCPU_RUN_STOPPED;
		}
	}
}

/*
 * A VM exit leaves the GDTR and IDTR limits at FFFFH (SDM 27.5.2): a
 * selector or vector past the tables would read beyond them instead of
 * faulting. Nothing between exits of one slice loads a selector, so the
 * limits are put back once, when the slice ends.
 */
enum vcpu_run_result virt_vcpu_run(struct vcpu *vcpu, uint64_t slice_tsc)
{
	enum vcpu_run_result result = run_slice(vcpu, slice_tsc);

	/* Whatever waits for this vCPU, halted or not, reads the model. */
	vcpu_apic_from_page(vcpu);
	__asm__ volatile("lgdt %0" : : "m"(host_gdtr));
	__asm__ volatile("lidt %0" : : "m"(host_idtr));
	return result;
}

void virt_set_tsc_offset(struct vcpu *vcpu, uint64_t offset)
{
	vmcs_load(to_vmx(vcpu)->vmcs_pa);
	vmcs_write(VMCS_TSC_OFFSET, offset);
}

static const enum vmcs_field vmcs_guest_reg[GUEST_REG_COUNT] = {
	[GUEST_REG_RIP] = VMCS_GUEST_RIP,
	[GUEST_REG_RSP] = VMCS_GUEST_RSP,
	[GUEST_REG_RFLAGS] = VMCS_GUEST_RFLAGS,
	[GUEST_REG_CR3] = VMCS_GUEST_CR3,
	[GUEST_REG_EFER] = VMCS_GUEST_EFER,
	[GUEST_REG_PAT] = VMCS_GUEST_PAT,
	[GUEST_REG_FS_BASE] = VMCS_GUEST_ES_BASE + 2 * SEG_FS,
	[GUEST_REG_GS_BASE] = VMCS_GUEST_ES_BASE + 2 * SEG_GS,
	[GUEST_REG_SYSENTER_CS] = VMCS_GUEST_SYSENTER_CS,
	[GUEST_REG_SYSENTER_ESP] = VMCS_GUEST_SYSENTER_ESP,
	[GUEST_REG_SYSENTER_EIP] = VMCS_GUEST_SYSENTER_EIP,
};

static int swapped_slot(enum guest_reg reg)
{
	switch (reg) {
	case GUEST_REG_STAR: return SWAP_STAR;
	case GUEST_REG_LSTAR: return SWAP_LSTAR;
	case GUEST_REG_CSTAR: return SWAP_CSTAR;
	case GUEST_REG_SFMASK: return SWAP_SFMASK;
	case GUEST_REG_KERNEL_GS_BASE: return SWAP_KERNEL_GS_BASE;
	case GUEST_REG_TSC_AUX: return SWAP_TSC_AUX;
	default: return -1;
	}
}

uint64_t virt_guest_reg(struct vcpu *vcpu, enum guest_reg reg)
{
	int slot = swapped_slot(reg);

	if (slot >= 0)
		return vmx_swapped(to_vmx(vcpu), slot)->value;
	vmcs_load(to_vmx(vcpu)->vmcs_pa);
	switch (reg) {
	case GUEST_REG_CR0:
		return cr_guest_view(VMCS_GUEST_CR0, VMCS_CR0_SHADOW, cr0_host_owned());
	case GUEST_REG_CR4:
		return cr_guest_view(VMCS_GUEST_CR4, VMCS_CR4_SHADOW, cr4_host_owned());
	default:
		return vmcs_read(vmcs_guest_reg[reg]);
	}
}

void virt_set_guest_reg(struct vcpu *vcpu, enum guest_reg reg, uint64_t value)
{
	int slot = swapped_slot(reg);

	if (slot >= 0) {
		vmx_swapped(to_vmx(vcpu), slot)->value = value;
		return;
	}
	vmcs_load(to_vmx(vcpu)->vmcs_pa);
	switch (reg) {
	case GUEST_REG_CR0:
		vmcs_write(VMCS_CR0_SHADOW, value);
		vmcs_write(VMCS_GUEST_CR0, cr0_actual(value));
		break;
	case GUEST_REG_CR4:
		vmcs_write(VMCS_CR4_SHADOW, value);
		vmcs_write(VMCS_GUEST_CR4, cr4_actual(value));
		break;
	default:
		vmcs_write(vmcs_guest_reg[reg], value);
		break;
	}
}
