/*
 * IVMVirtualMachine's console: ConsoleRead from the VM's output ring,
 * ConsoleWrite through a per-VM input queue that control_poll feeds to
 * the guest's UART at the guest's pace.
 */
#include "vmm/control_internal.h"

#include "vmm/vm.h"

/* ConsoleWrite: what docs/protocol.md allows in one request, and what is queued per VM. */
#define CONSOLE_WRITE_MAX 256
#define CONSOLE_INPUT_QUEUE 512
/*
 * A full input queue drains at the guest's pace. A ConsoleWrite waits
 * that long for room (its answer is pending meanwhile), well inside the
 * tool's 1 s answer timeout because the management VM serves nothing else
 * while it waits; then BUSY says when to look again.
 */
#define CONSOLE_WRITE_WAIT_MS 250
#define CONSOLE_BUSY_RETRY_MS 100

/* Console input on its way to each VM's UART. */
struct console_input {
	uint8_t bytes[CONSOLE_INPUT_QUEUE];
	unsigned head, len;
};

static struct console_input inputs[VM_MAX];

/* Payload room for console data: three u64 tags and the data tag's header. */
#define CONSOLE_READ_MAX (PROTO_MAX_PAYLOAD - 3 * (TLV_HEADER_SIZE + 8) - TLV_HEADER_SIZE)

int console_read(struct call *c)
{
	uint8_t data[CONSOLE_READ_MAX];
	uint32_t max = CONSOLE_READ_MAX;
	struct vm *vm;
	uint64_t from;

	if (need_vm(c, API_REQ_CONSOLE_READ, &vm))
		return -1;
	const struct console_ring *ring = &vm->console;
	if (tlv_get_u64(c->req, c->len, API_TAG_OFFSET, &from) != TLV_OK)
		from = ring->written > CONSOLE_RING_SIZE ? ring->written - CONSOLE_RING_SIZE : 0;
	if (from > ring->written)
		from = ring->written;
	tlv_get_u32(c->req, c->len, API_TAG_MAX_BYTES, &max);
	if (max > CONSOLE_READ_MAX)
		max = CONSOLE_READ_MAX;
	uint64_t requested = from;
	size_t n = console_ring_read(ring, &from, data, max);
	tlv_put_u64(&c->w, API_TAG_OFFSET, from - n);
	tlv_put(&c->w, API_TAG_DATA, data, n);
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, from);
	tlv_put_u64(&c->w, API_TAG_LOST, from - n - requested);
	return 0;
}

int console_write(struct call *c)
{
	const uint16_t rq = API_REQ_CONSOLE_WRITE;
	const uint8_t *data;
	size_t n;
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	if (tlv_get_bytes(c->req, c->len, API_TAG_DATA, &data, &n) != TLV_OK || !n ||
	    n > CONSOLE_WRITE_MAX)
		return fail(c, API_E_INVALID_ARGUMENT, "ConsoleWrite: data must be 1..%u bytes",
			    CONSOLE_WRITE_MAX);
	if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_PAUSED) {
		fail(c, API_E_INVALID_STATE, "ConsoleWrite: %s is %s", vm->cfg->name,
		     vm_state_name(vm->state));
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	struct console_input *q = &inputs[vm->id % VM_MAX];
	if (CONSOLE_INPUT_QUEUE - q->len < n) {
		/* Only a running guest reads its UART: waiting for a paused one is in vain. */
		if (vm->state == VM_STATE_RUNNING && call_wait(c, CONSOLE_WRITE_WAIT_MS))
			return CALL_PENDING;
		fail(c, API_E_BUSY, "ConsoleWrite: %s has not read its earlier input yet",
		     vm->cfg->name);
		tlv_put_u32(&c->w, API_TAG_RETRY_AFTER_MS, CONSOLE_BUSY_RETRY_MS);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		q->bytes[(q->head + q->len++) % CONSOLE_INPUT_QUEUE] = data[i];
	return 0;
}

void console_input_discard(unsigned vm_id)
{
	inputs[vm_id % VM_MAX].len = 0;
}

void console_input_feed(void)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		struct console_input *q = &inputs[vm->id % VM_MAX];
		if (!q->len || vm->state != VM_STATE_RUNNING)
			continue;
		/* In order, as much as the UART's receive FIFO takes. */
		unsigned run = CONSOLE_INPUT_QUEUE - q->head;
		if (run > q->len)
			run = q->len;
		size_t taken = vm_console_input(vm, q->bytes + q->head, run);
		q->head = (unsigned)((q->head + taken) % CONSOLE_INPUT_QUEUE);
		q->len -= (unsigned)taken;
	}
}
