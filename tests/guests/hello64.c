/* The smallest 64-bit guest: started in long mode with its boot arguments. */
#include "guest.h"

int main(void)
{
	/* Loopback, as Linux's 8250 driver probes for a UART. */
	outb(COM1 + 4, 0x10);
	outb(COM1, 0x5a);
	bool loop_ok = (inb(COM1 + 5) & 1) && inb(COM1) == 0x5a;
	outb(COM1 + 4, 0x03);
	check(loop_ok, "hello64: COM1 answers the loopback probe");
	com1_puts("hello64: this line came through the virtual 16550 on COM1\n");

	uint64_t cr0, cr4, efer_lo, efer_hi;

	__asm__ volatile("mov %%cr0, %0; mov %%cr4, %1" : "=r"(cr0), "=r"(cr4));
	__asm__ volatile("rdmsr" : "=a"(efer_lo), "=d"(efer_hi) : "c"(0xc0000080));
	check((cr0 & 0x80000001) == 0x80000001 && (cr4 & 0x20) && (efer_lo & 0x400),
	      "hello64: long mode with paging at the entry point");
	check(!(cr4 & (1U << 13)), "hello64: CR4.VMXE reads as clear");
	/*
	 * What the configuration gave it is printed for the test to compare:
	 * any RAM size and any command line, none included, is valid here.
	 */
	char mib[21];
	check(guest_ram_bytes >= 1024 * 1024 && !(guest_ram_bytes % (1024 * 1024)),
	      "hello64: RDI holds the RAM size");
	com1_puts("hello64: RAM ");
	com1_puts(u64_decimal(guest_ram_bytes >> 20, mib));
	com1_puts(" MiB, command line \"");
	com1_puts(guest_cmdline);
	com1_puts("\"\n");
	return 0;
}
