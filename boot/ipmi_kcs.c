/*
 * The KCS system interface to the BMC (IPMI 2.0, 9.15), polled, for the
 * few messages the boot sends (boot/ipmi.h). Every wait is bounded: a BMC
 * that stops answering ends the transfer with an error, never a hang.
 */
#include "boot/ipmi_kcs.h"

#include "x86/cpu.h"

#define KCS_OBF 0x01
#define KCS_IBF 0x02
#define KCS_STATE(s) ((s) >> 6)
#define KCS_IDLE 0
#define KCS_READ 1
#define KCS_WRITE 2
#define KCS_ERROR 3
#define KCS_GET_STATUS_ABORT 0x60
#define KCS_WRITE_START 0x61
#define KCS_WRITE_END 0x62
#define KCS_READ_BYTE 0x68

struct kcs {
	uint16_t data, status; /* the command register is written at the status port */
	uint64_t timeout_tsc;
};

static bool wait_status(const struct kcs *k, uint8_t mask, uint8_t want, uint8_t *status)
{
	uint64_t start = rdtsc();

	do {
		*status = inb(k->status);
		if ((*status & mask) == want)
			return true;
		cpu_relax();
	} while (rdtsc() - start < k->timeout_tsc);
	return false;
}

/* Input buffer empty, then whatever the BMC left in the output buffer dropped. */
static bool ready_to_write(const struct kcs *k, uint8_t state)
{
	uint8_t s;

	if (!wait_status(k, KCS_IBF, 0, &s) || KCS_STATE(s) != state)
		return false;
	if (s & KCS_OBF)
		(void)inb(k->data);
	return true;
}

static const char *transfer(const struct kcs *k, const uint8_t *request, size_t n,
			    uint8_t *response, size_t cap, size_t *got)
{
	uint8_t s;

	if (!wait_status(k, KCS_IBF, 0, &s))
		return "the BMC's input buffer never emptied";
	outb(k->status, KCS_WRITE_START);
	if (!ready_to_write(k, KCS_WRITE))
		return "the BMC did not enter its write state";
	for (size_t i = 0; i + 1 < n; i++) {
		outb(k->data, request[i]);
		if (!ready_to_write(k, KCS_WRITE))
			return "the BMC stopped taking the request";
	}
	outb(k->status, KCS_WRITE_END);
	if (!ready_to_write(k, KCS_WRITE))
		return "the BMC refused the request's end";
	outb(k->data, request[n - 1]);

	for (*got = 0;;) {
		if (!wait_status(k, KCS_IBF, 0, &s))
			return "the BMC never answered";
		if (KCS_STATE(s) == KCS_IDLE) {
			/* The last read ends with a dummy byte in the output buffer. */
			if (wait_status(k, KCS_OBF, KCS_OBF, &s))
				(void)inb(k->data);
			return NULL;
		}
		if (KCS_STATE(s) != KCS_READ)
			return "the BMC went into its error state";
		if (!wait_status(k, KCS_OBF, KCS_OBF, &s))
			return "the BMC's response stalled";
		uint8_t byte = inb(k->data);
		if (*got < cap)
			response[(*got)++] = byte;
		outb(k->data, KCS_READ_BYTE);
	}
}

/* Back to idle after an error, as 9.15.9 says; best effort. */
static void abort_transfer(const struct kcs *k)
{
	uint8_t s;

	if (!wait_status(k, KCS_IBF, 0, &s))
		return;
	outb(k->status, KCS_GET_STATUS_ABORT);
	if (!wait_status(k, KCS_IBF, 0, &s))
		return;
	if (s & KCS_OBF)
		(void)inb(k->data);
	outb(k->data, 0);
	if (wait_status(k, KCS_OBF, KCS_OBF, &s))
		(void)inb(k->data); /* the error code */
	if (wait_status(k, KCS_IBF, 0, &s) && KCS_STATE(s) == KCS_READ) {
		outb(k->data, KCS_READ_BYTE);
		if (wait_status(k, KCS_OBF, KCS_OBF, &s))
			(void)inb(k->data);
	}
}

bool ipmi_kcs_present(uint16_t base, unsigned spacing)
{
	/* No device: an unclaimed port reads all ones, which is the error state with IBF set. */
	return inb((uint16_t)(base + spacing)) != 0xff;
}

const char *ipmi_kcs_transfer(uint16_t base, unsigned spacing, uint64_t timeout_tsc,
			      const uint8_t *request, size_t n, uint8_t *response, size_t cap,
			      size_t *got)
{
	const struct kcs k = { base, (uint16_t)(base + spacing), timeout_tsc };
	const char *why = transfer(&k, request, n, response, cap, got);

	if (why)
		abort_transfer(&k);
	return why;
}
