/*
 * A guest that stays up for the management tests: it says it is ready on
 * its COM1 and answers every line typed into COM1 (console input through
 * the management API) with "echo: <line>"; the line "clock" also gets its
 * guest time, "echo: clock <ms>" from its TSC, for the test that a paused
 * VM's clock stands still (tests/e2e/mgmt-boot.sh); the line "vectors"
 * gets "echo: vectors intact" while the YMM/ZMM and k registers it filled
 * at start still hold their values (across Save and Restore, and a move to
 * another host), "echo: vectors LOST" otherwise; the line "count" gets the
 * number of lines it has answered since it booted, "echo: count <n>", a
 * count held in its RAM that goes on after a move; the line "fill" puts
 * NOISE_BYTES of data that does not compress into its RAM, so that its save
 * file takes a while on the line (a transfer to cut). It sleeps on the
 * paravirtual timer between looks at the UART, so it costs little while it
 * waits.
 */
#include "guest.h"

#define UPCALL_VECTOR 0x40
/* Far below the TSC rate of any machine: a few ms between looks. */
#define POLL_TSC 2000000
#define VECTOR_SEED 0xec40ULL
#define NOISE_BYTES (32u * 1024u)

static uint64_t run_xcr0;
static uint64_t lines_answered;
static volatile uint64_t noise[NOISE_BYTES / sizeof(uint64_t)]; /* written only: kept by volatile */

/* xorshift64: each run of the guest fills the same bytes, none of which repeat nearby. */
static void fill_noise(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (unsigned i = 0; i < NOISE_BYTES / sizeof(uint64_t); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		noise[i] = x;
	}
}

static void on_upcall(void)
{
}

static void answer(const char *line)
{
	char digits[21];

	lines_answered++;
	com1_puts("echo: ");
	com1_puts(line);
	if (streq(line, "fill")) {
		fill_noise();
		com1_puts(" ");
		com1_puts(u64_decimal(NOISE_BYTES, digits));
	}
	if (streq(line, "count")) {
		com1_puts(" ");
		com1_puts(u64_decimal(lines_answered, digits));
	}
	if (streq(line, "clock") && tsc_hz() >= 1000) {
		com1_puts(" ");
		com1_puts(u64_decimal(rdtsc() / (tsc_hz() / 1000), digits));
	}
	if (streq(line, "vectors"))
		com1_puts(!(run_xcr0 & XCR0_AVX)		   ? " not offered"
			  : vector_intact(run_xcr0, VECTOR_SEED) ? " intact"
								  : " LOST");
	com1_puts("\n");
}

int main(void)
{
	char line[80];
	unsigned len = 0;

	set_irq_handler(UPCALL_VECTOR, on_upcall);
	vmcall(HC_SET_UPCALL_VECTOR, UPCALL_VECTOR, 0, 0);
	run_xcr0 = xstate_enable();
	vector_fill(run_xcr0, VECTOR_SEED);
	com1_puts("echo: ready\n");
	for (;;) {
		while (inb(COM1 + COM1_LSR) & LSR_DATA_READY) {
			char c = (char)inb(COM1);
			if (c == '\r' || c == '\n') {
				line[len] = '\0';
				answer(line);
				len = 0;
			} else if (len < sizeof(line) - 1) {
				line[len++] = c;
			}
		}
		vmcall(HC_SET_TIMER, rdtsc() + POLL_TSC, 0, 0);
		__asm__ volatile("sti; hlt");
	}
}
