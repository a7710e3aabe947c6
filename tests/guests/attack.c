/*
 * A hostile guest. It first tries what must be refused without ending it
 * (unassigned ports, forbidden MSRs, VMX instructions, bad hypercalls),
 * then does what its command line asks and must end it:
 *   fatal=read    read guest-physical memory beyond its RAM
 *   fatal=write   write beyond its RAM (where another VM's memory might be)
 *   fatal=triple  load an empty IDT and take an exception: triple fault
 *   fatal=mmio    touch the I/O APIC with an instruction the MMIO emulator
 *                 does not handle (BTS)
 */
#include "guest.h"

static const char *option(const char *key)
{
	const char *s = guest_cmdline;
	while (*s) {
		const char *k = key;
		const char *p = s;
		while (*k && *p == *k) {
			k++;
			p++;
		}
		if (!*k && *p == '=')
			return p + 1;
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
	}
	return "";
}

int main(void)
{
	uint64_t v;

	check(inb(0x1234) == 0xff && inw(0x1234) == 0xffff && inl(0x1234) == 0xffffffffU,
	      "attack: unassigned ports read as all ones");
	outb(0x80, 0x55);
	outb(0x1234, 0x06);
	check(true, "attack: writes to unassigned ports are dropped");
	check(rdmsr_safe(0x480, &v) == 13, "attack: RDMSR of a VMX MSR is #GP");
	check(wrmsr_safe(0x12345, 1) == 13, "attack: WRMSR of an unknown MSR is #GP");
	check(wrmsr_safe(0xc0000082, 0x0000800000000000ULL) == 13,
	      "attack: non-canonical LSTAR is #GP");
	check(vmxon_safe(0x10000) == 6, "attack: VMXON is #UD");
	check(vmcall(0xdead, 1, 2, 3) == HC_ENOSYS, "attack: unknown hypercall refused");
	check(vmcall(HC_CONSOLE_WRITE, guest_ram_bytes - 8, 64, 0) == HC_EFAULT,
	      "attack: hypercall buffer past RAM refused");
	/* Only the management VM may control the machine (include/abi/hypercall.h). */
	static struct hc_control req = { .version = HC_CONTROL_VERSION, .request = 0x25 };
	check(vmcall(HC_CONTROL, (uint64_t)(uintptr_t)&req, 0, 0) == HC_EPERM &&
	      vmcall(HC_LINE_WRITE, (uint64_t)(uintptr_t)&req, 4, HC_LINE_TEXT) == HC_EPERM,
	      "attack: control hypercalls refused to a guest");

	const char *fatal = option("fatal");
	/* 4 GiB is identity-mapped by the boot page tables; RAM ends far below. */
	volatile uint64_t *outside = (volatile uint64_t *)(guest_ram_bytes + 0x200000);
	put("attack: now ");
	put(fatal);
	put("\n");
	if (streq(fatal, "read")) {
		v = *outside;
		check(false, "attack: read outside RAM went through");
	} else if (streq(fatal, "write")) {
		*outside = 0x4141414141414141ULL;
		check(false, "attack: write outside RAM went through");
	} else if (streq(fatal, "mmio")) {
		/* First what the emulator does handle: IOREGSEL = 1, read IOWIN. */
		volatile uint32_t *ioapic = (volatile uint32_t *)0xfec00000UL;
		ioapic[0] = 1;
		check(ioapic[4] == 0x00170020, "attack: the I/O APIC version reads through MMIO");
		__asm__ volatile("btsl $0, %0" : "+m"(ioapic[0]));
		check(false, "attack: BTS on MMIO went through");
	} else if (streq(fatal, "triple")) {
		struct {
			uint16_t limit;
			uint64_t base;
		} __attribute__((packed)) empty = { 0, 0 };
		__asm__ volatile("lidt %0; int3" : : "m"(empty));
		check(false, "attack: survived an exception with no IDT");
	}
	return 0;
}
