#include "vmm/speculation.h"

#include "x86/cpu.h"
#include "x86/msr.h"

struct speculation_defences speculation;

#define BIT(bug) (1U << (bug))

/* The immunities and controls a guest is told of as the host has them. */
#define GUEST_ARCH_CAPS_FROM_HOST                                                        \
	(ARCH_CAP_RDCL_NO | ARCH_CAP_IBRS_ALL | ARCH_CAP_RSBA | ARCH_CAP_SSB_NO |           \
	 ARCH_CAP_MDS_NO | ARCH_CAP_TAA_NO | ARCH_CAP_SBDR_SSDP_NO | ARCH_CAP_FBSDP_NO |     \
	 ARCH_CAP_PSDP_NO | ARCH_CAP_FB_CLEAR | ARCH_CAP_RRSBA | ARCH_CAP_BHI_NO |           \
	 ARCH_CAP_PBRSB_NO | ARCH_CAP_GDS_NO | ARCH_CAP_RFDS_NO | ARCH_CAP_RFDS_CLEAR)
#define GUEST_CPUID7_EDX                                                                 \
	(CPUID_07_EDX_MD_CLEAR | CPUID_07_EDX_SPEC_CTRL | CPUID_07_EDX_STIBP |              \
	 CPUID_07_EDX_L1D_FLUSH | CPUID_07_EDX_ARCH_CAPS | CPUID_07_EDX_SSBD)

static uint32_t bugs_of(const struct speculation_cpu *cpu, uint64_t caps)
{
	uint32_t bugs = BIT(CPU_BUG_SPECTRE_V2);

	/* Only eIBRS CPUs that declare PBRSB_NO keep no guest return prediction past VM exit. */
	if (!(caps & ARCH_CAP_IBRS_ALL) || !(caps & ARCH_CAP_PBRSB_NO))
		bugs |= BIT(CPU_BUG_RSB);
	if (!(caps & ARCH_CAP_SSB_NO))
		bugs |= BIT(CPU_BUG_SSB);
	if (!(caps & ARCH_CAP_RDCL_NO))
		bugs |= BIT(CPU_BUG_L1TF);
	if (!(caps & ARCH_CAP_MDS_NO))
		bugs |= BIT(CPU_BUG_MDS);
	/* With MDS_NO, TSX still leaks through an aborted transaction. */
	else if ((cpu->cpuid7_ebx & CPUID_07_EBX_RTM) && !(caps & ARCH_CAP_TAA_NO))
		bugs |= BIT(CPU_BUG_TAA);
	const uint64_t mmio_no = ARCH_CAP_SBDR_SSDP_NO | ARCH_CAP_FBSDP_NO | ARCH_CAP_PSDP_NO;
	if ((caps & mmio_no) != mmio_no)
		bugs |= BIT(CPU_BUG_MMIO);
	if (!(caps & ARCH_CAP_PSCHANGE_MC_NO))
		bugs |= BIT(CPU_BUG_ITLB_MULTIHIT);
	if (cpu->avx && !(caps & ARCH_CAP_GDS_NO))
		bugs |= BIT(CPU_BUG_GDS);
	if (!(caps & ARCH_CAP_BHI_NO))
		bugs |= BIT(CPU_BUG_BHI);
	/*
	 * RFDS is an Atom bug; without a model list, the parts it applies to
	 * are those whose microcode makes VERW clear the register file.
	 */
	if ((caps & ARCH_CAP_RFDS_CLEAR) && !(caps & ARCH_CAP_RFDS_NO))
		bugs |= BIT(CPU_BUG_RFDS);
	return bugs;
}

uint32_t speculation_guest_cpuid7_edx(uint32_t host_edx)
{
	uint32_t edx = host_edx & GUEST_CPUID7_EDX;

	/* STIBP and SSBD are bits of IA32_SPEC_CTRL. */
	if (!(edx & CPUID_07_EDX_SPEC_CTRL))
		edx &= ~(CPUID_07_EDX_STIBP | CPUID_07_EDX_SSBD);
	return edx;
}

void speculation_choose(const struct speculation_cpu *cpu, bool enabled,
			struct speculation_defences *out)
{
	const uint32_t edx = cpu->cpuid7_edx;
	const uint64_t caps = (edx & CPUID_07_EDX_ARCH_CAPS) ? cpu->arch_caps : 0;
	const bool eibrs = (edx & CPUID_07_EDX_SPEC_CTRL) && (caps & ARCH_CAP_IBRS_ALL);
	struct speculation_defences d = { .enabled = enabled, .affected = bugs_of(cpu, caps) };
	uint32_t covered = 0;

	/*
	 * Whatever the host does for itself, each guest has its own controls
	 * to defend itself with: its IA32_SPEC_CTRL (switched at entry and
	 * exit, so no VM's value reaches another), IBPB and the L1D flush on
	 * its own behalf, and the host's immunities. Two it gets from the
	 * hypervisor: no L1D flush of its own is needed at a VM entry (it has
	 * no VMX), and where its code is in 4-KiB EPT pages its page-size
	 * changes cannot raise iTLB multihit's machine check.
	 */
	d.spec_ctrl = edx & CPUID_07_EDX_SPEC_CTRL;
	d.guest_cpuid7_edx = speculation_guest_cpuid7_edx(edx);
	d.guest_arch_caps_msr = edx & CPUID_07_EDX_ARCH_CAPS;
	if (d.spec_ctrl) {
		const uint32_t edx2 = cpu->cpuid7_2_edx;
		d.guest_spec_ctrl_bits =
			SPEC_CTRL_IBRS | ((edx & CPUID_07_EDX_STIBP) ? SPEC_CTRL_STIBP : 0) |
			((edx & CPUID_07_EDX_SSBD) ? SPEC_CTRL_SSBD : 0) |
			((edx2 & CPUID_07_2_EDX_PSFD) ? SPEC_CTRL_PSFD : 0) |
			((edx2 & CPUID_07_2_EDX_IPRED_CTRL)
				 ? SPEC_CTRL_IPRED_DIS_U | SPEC_CTRL_IPRED_DIS_S : 0) |
			((edx2 & CPUID_07_2_EDX_RRSBA_CTRL)
				 ? SPEC_CTRL_RRSBA_DIS_U | SPEC_CTRL_RRSBA_DIS_S : 0) |
			((edx2 & CPUID_07_2_EDX_DDPD_U) ? SPEC_CTRL_DDPD_U : 0) |
			((edx2 & CPUID_07_2_EDX_BHI_CTRL) ? SPEC_CTRL_BHI_DIS_S : 0);
	}
	if (enabled) {
		/*
		 * Spectre v2: root mode runs with IBRS set, once for all with
		 * eIBRS, else loaded at each VM exit (the guest's value at entry);
		 * IBPB keeps one VM's predictions from steering the next.
		 */
		d.host_spec_ctrl = d.spec_ctrl ? SPEC_CTRL_IBRS : 0;
		d.ibpb_between_vms = d.spec_ctrl;
		if (d.spec_ctrl)
			covered |= BIT(CPU_BUG_SPECTRE_V2);
		/* BHI: the branch history a guest wrote does not steer root mode's branches. */
		if (d.spec_ctrl && (cpu->cpuid7_2_edx & CPUID_07_2_EDX_BHI_CTRL)) {
			d.host_spec_ctrl |= SPEC_CTRL_BHI_DIS_S;
			covered |= BIT(CPU_BUG_BHI);
		}
		/*
		 * A guest's CALLs leave return predictions that root mode's RETs
		 * would follow: overwrite all of them without eIBRS, and the one
		 * PBRSB leaves with it (Intel, "Post-barrier Return Stack Buffer
		 * Predictions").
		 */
		if (d.affected & BIT(CPU_BUG_RSB))
			d.rsb_fill = eibrs ? 1 : SPECULATION_RSB_DEPTH;
		covered |= BIT(CPU_BUG_RSB);
		/* SSB: guests get SSBD for themselves; root mode runs no guest-supplied code. */
		if (d.guest_cpuid7_edx & CPUID_07_EDX_SSBD)
			covered |= BIT(CPU_BUG_SSB);
		/*
		 * L1TF: the L1D is flushed before each entry unless the CPU says a
		 * hypervisor below us does it (SKIP_L1DFL_VMENTRY); between VMs too.
		 */
		bool l1d = edx & CPUID_07_EDX_L1D_FLUSH;
		d.l1d_flush_between_vms = l1d;
		if (d.affected & BIT(CPU_BUG_L1TF)) {
			d.l1d_flush_on_entry = l1d && !(caps & ARCH_CAP_SKIP_L1DFL_VMENTRY);
			if (d.l1d_flush_on_entry || (caps & ARCH_CAP_SKIP_L1DFL_VMENTRY))
				covered |= BIT(CPU_BUG_L1TF);
		}
		/*
		 * MDS, TAA and RFDS: VERW clears the buffers (and the register
		 * file, with RFDS_CLEAR) right before entry, where the microcode
		 * makes it do so (MD_CLEAR). After an L1D flush too: root mode
		 * stores between the flush and the entry (Linux moved its VERW
		 * next to VM entry for this, 6.8).
		 */
		const uint32_t buffers = BIT(CPU_BUG_MDS) | BIT(CPU_BUG_TAA) | BIT(CPU_BUG_RFDS);
		if ((d.affected & buffers) && (edx & CPUID_07_EDX_MD_CLEAR)) {
			d.clear_buffers_on_entry = true;
			covered |= d.affected & buffers;
		}
		/* MMIO stale data needs a guest with a device's MMIO: every guest MMIO is emulated. */
		covered |= BIT(CPU_BUG_MMIO);
		/* iTLB multihit: a guest's executable pages are 4-KiB EPT pages. */
		d.exec_4k_pages = d.affected & BIT(CPU_BUG_ITLB_MULTIHIT);
		covered |= BIT(CPU_BUG_ITLB_MULTIHIT);
	}
	d.guest_arch_caps = (caps & GUEST_ARCH_CAPS_FROM_HOST) | ARCH_CAP_SKIP_L1DFL_VMENTRY;
	if (!(d.affected & BIT(CPU_BUG_ITLB_MULTIHIT)) || d.exec_4k_pages)
		d.guest_arch_caps |= ARCH_CAP_PSCHANGE_MC_NO;
	d.uncovered = d.affected & ~covered;
	*out = d;
}

const char *speculation_bug_name(enum cpu_bug bug)
{
	static const char *const names[CPU_BUG_COUNT] = {
		[CPU_BUG_SPECTRE_V2] = "Spectre v2", [CPU_BUG_RSB] = "RSB",
		[CPU_BUG_SSB] = "SSB",               [CPU_BUG_L1TF] = "L1TF",
		[CPU_BUG_MDS] = "MDS",               [CPU_BUG_TAA] = "TAA",
		[CPU_BUG_MMIO] = "MMIO stale data",  [CPU_BUG_ITLB_MULTIHIT] = "iTLB multihit",
		[CPU_BUG_GDS] = "GDS",               [CPU_BUG_BHI] = "BHI",
		[CPU_BUG_RFDS] = "RFDS",
	};
	return (unsigned)bug < CPU_BUG_COUNT ? names[bug] : "?";
}

const char *speculation_bug_defence(const struct speculation_defences *d, enum cpu_bug bug)
{
	if ((unsigned)bug >= CPU_BUG_COUNT)
		return "?";
	if (!(d->affected & BIT(bug)))
		return "not affected";
	if (!d->enabled)
		return "UNCOVERED: speculation_defences = off";
	switch (bug) {
	case CPU_BUG_SPECTRE_V2:
		if (!d->spec_ctrl)
			return "UNCOVERED: no IA32_SPEC_CTRL (microcode)";
		return d->rsb_fill == SPECULATION_RSB_DEPTH ? "IBRS set at each VM exit, IBPB between VMs"
							      : "eIBRS in root mode, IBPB between VMs";
	case CPU_BUG_RSB:
		return d->rsb_fill == 1 ? "one return-stack entry overwritten after each VM exit (PBRSB)"
					: "return stack overwritten after each VM exit";
	case CPU_BUG_SSB:
		return (d->uncovered & BIT(bug)) ? "UNCOVERED: no SSBD for guests (microcode)"
						 : "SSBD per vCPU for guests; root mode runs no guest code";
	case CPU_BUG_L1TF:
		if (d->l1d_flush_on_entry)
			return "L1D flushed before each VM entry";
		return (d->uncovered & BIT(bug)) ? "UNCOVERED: no IA32_FLUSH_CMD (microcode)"
						 : "the hypervisor below flushes the L1D";
	case CPU_BUG_MDS:
	case CPU_BUG_TAA:
	case CPU_BUG_RFDS:
		return (d->uncovered & BIT(bug))
			       ? "UNCOVERED: VERW does not clear buffers (no MD_CLEAR microcode)"
			       : "VERW before each VM entry";
	case CPU_BUG_MMIO:
		return "no guest reaches device MMIO: all of it is emulated";
	case CPU_BUG_ITLB_MULTIHIT:
		return "guest memory mapped with 4-KiB EPT pages";
	case CPU_BUG_GDS:
		return "UNCOVERED here: the microcode's (AVX stays offered)";
	case CPU_BUG_BHI:
		return (d->uncovered & BIT(bug)) ? "UNCOVERED: no BHI_DIS_S (CPUID.(7,2):EDX[4])"
						 : "BHI_DIS_S set in root mode";
	case CPU_BUG_COUNT:
		break;
	}
	return "?";
}
