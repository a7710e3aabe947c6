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

void guest_nap(uint64_t ticks)
{
	vmcall(HC_SET_TIMER, rdtsc() + ticks, 0, 0);
	__asm__ volatile("sti; hlt; cli");
}

/* From _start, before anything beyond the image is touched: no static variable here. */
void ram_too_small(void)
{
	extern char __bss_end[];

	put("FAIL the guest's memory ends below its data (needs ");
	put_u64((uint64_t)(uintptr_t)__bss_end);
	put(" bytes)\n");
	__asm__ volatile("outl %0, %1" : : "a"(1u), "Nd"((uint16_t)TEST_EXIT_PORT));
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

#define CPUID_01_ECX_XSAVE_BIT (1U << 26)
#define CR4_OSXSAVE_BIT (1ULL << 18)
#define XCR0_OFFERED_MAX (3ULL | XCR0_AVX | XCR0_AVX512)

uint64_t xstate_enable(void)
{
	if (!(cpuid(1, 0).ecx & CPUID_01_ECX_XSAVE_BIT))
		return 0;
	write_cr4(read_cr4() | CR4_OSXSAVE_BIT);
	uint64_t xcr0 = cpuid(0xd, 0).eax & XCR0_OFFERED_MAX;
	if ((xcr0 & XCR0_AVX512) != XCR0_AVX512)
		xcr0 &= ~XCR0_AVX512;
	xsetbv(0, xcr0);
	return xcr0;
}

/* ZMM0-31 (or YMM0-15: the first 32 bytes of the first 16) and k0-7. */
static uint64_t vector_image[32][8] __attribute__((aligned(64)));
static uint16_t mask_image[8];

static void vector_pattern(uint64_t seed, uint64_t regs[32][8], uint16_t masks[8])
{
	for (unsigned i = 0; i < 32; i++)
		for (unsigned j = 0; j < 8; j++)
			regs[i][j] = (seed + i * 8 + j) * 0x9e3779b97f4a7c15ULL;
	for (unsigned i = 0; i < 8; i++)
		masks[i] = (uint16_t)(seed * 31 + i * 0x1111);
}

#define REGS_0_15 "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"
#define REGS_16_31 "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31"

void vector_fill(uint64_t xcr0, uint64_t seed)
{
	vector_pattern(seed, vector_image, mask_image);
	if ((xcr0 & XCR0_AVX512) == XCR0_AVX512)
		__asm__ volatile(".irp n," REGS_0_15 "," REGS_16_31 "\n"
				 "vmovdqu64 \\n*64(%0), %%zmm\\n\n"
				 ".endr\n"
				 ".irp n,0,1,2,3,4,5,6,7\n"
				 "kmovw \\n*2(%1), %%k\\n\n"
				 ".endr\n"
				 :
				 : "r"(vector_image), "r"(mask_image)
				 : "memory");
	else if (xcr0 & XCR0_AVX)
		__asm__ volatile(".irp n," REGS_0_15 "\n"
				 "vmovdqu \\n*64(%0), %%ymm\\n\n"
				 ".endr\n"
				 :
				 : "r"(vector_image)
				 : "memory");
}

unsigned vector_store(uint64_t xcr0, uint64_t regs[32][8], uint16_t masks[8])
{
	if ((xcr0 & XCR0_AVX512) == XCR0_AVX512) {
		__asm__ volatile(".irp n," REGS_0_15 "," REGS_16_31 "\n"
				 "vmovdqu64 %%zmm\\n, \\n*64(%0)\n"
				 ".endr\n"
				 ".irp n,0,1,2,3,4,5,6,7\n"
				 "kmovw %%k\\n, \\n*2(%1)\n"
				 ".endr\n"
				 :
				 : "r"(regs), "r"(masks)
				 : "memory");
		return 32;
	}
	if (!(xcr0 & XCR0_AVX))
		return 0;
	__asm__ volatile(".irp n," REGS_0_15 "\n"
			 "vmovdqu %%ymm\\n, \\n*64(%0)\n"
			 ".endr\n"
			 :
			 : "r"(regs)
			 : "memory");
	return 16;
}

bool vector_intact(uint64_t xcr0, uint64_t seed)
{
	static uint64_t expected[32][8];
	static uint16_t expected_masks[8];
	unsigned regs = vector_store(xcr0, vector_image, mask_image);
	unsigned words = regs == 32 ? 8 : 4;

	vector_pattern(seed, expected, expected_masks);
	for (unsigned i = 0; i < regs; i++)
		for (unsigned j = 0; j < words; j++)
			if (vector_image[i][j] != expected[i][j])
				return false;
	for (unsigned i = 0; regs == 32 && i < 8; i++)
		if (mask_image[i] != expected_masks[i])
			return false;
	return regs != 0;
}
