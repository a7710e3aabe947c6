#include "guest.h"

extern char guest_exception_stubs[];
extern char guest_irq_stub[];
extern const char *boot_cmdline;

const char *guest_cmdline;
uint64_t guest_ram_bytes;
static bool failed;

struct idt_gate {
	uint16_t offset_low, selector;
	uint8_t ist, type_attr;
	uint16_t offset_mid;
	uint32_t offset_high, reserved;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static void (*irq_handler)(void);

static struct idt_gate interrupt_gate(uint64_t h)
{
	return (struct idt_gate){ (uint16_t)h, 0x08, 0, 0x8e, (uint16_t)(h >> 16),
				  (uint32_t)(h >> 32), 0 };
}

void guest_irq(void)
{
	if (irq_handler)
		irq_handler();
}

void set_irq_handler(uint8_t vector, void (*handler)(void))
{
	irq_handler = handler;
	idt[vector] = interrupt_gate((uint64_t)guest_irq_stub);
}

void idt_install(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };

	guest_cmdline = boot_cmdline ? boot_cmdline : "";
	for (unsigned v = 0; v < 32; v++)
		idt[v] = interrupt_gate((uint64_t)guest_exception_stubs + 16 * v);
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void put(const char *s)
{
	while (*s)
		outb(TEST_CONSOLE_PORT, (uint8_t)*s++);
}

void com1_puts(const char *s)
{
	for (; *s; s++) {
		while (!(inb(COM1 + COM1_LSR) & LSR_THR_EMPTY))
			;
		outb(COM1, (uint8_t)*s);
	}
}

const char *u64_decimal(uint64_t v, char buf[21])
{
	int n = 20;

	buf[n] = '\0';
	do {
		buf[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return buf + n;
}

void put_u64(uint64_t v)
{
	char buf[21];

	put(u64_decimal(v, buf));
}

void put_hex(uint64_t v)
{
	char buf[19] = "0x";
	for (int i = 0; i < 16; i++)
		buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
	buf[18] = '\0';
	put(buf);
}

bool check(bool ok, const char *name)
{
	put(ok ? "PASS " : "FAIL ");
	put(name);
	put("\n");
	if (!ok)
		failed = true;
	return ok;
}

void guest_exit(void)
{
	/* A 4-byte write, as QEMU's isa-debug-exit takes too: every test guest checks it. */
	__asm__ volatile("outl %0, %1" : : "a"((uint32_t)(failed ? 1 : 0)), "Nd"((uint16_t)TEST_EXIT_PORT));
	for (;;)
		__asm__ volatile("cli; hlt");
}

void unexpected_exception(uint64_t vector)
{
	put("FAIL unexpected exception ");
	put_u64(vector);
	put("\n");
	failed = true;
	guest_exit();
}

bool streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

uint64_t tsc_hz(void)
{
	struct cpuid_regs r = cpuid(0x15, 0);

	return r.eax ? (uint64_t)r.ecx * r.ebx / r.eax : 0;
}
