/*
 * Four queues of AGENT_QSIZE one-buffer chains: port 0's receive and
 * transmit queues and the control pair (virtio 1.1 5.3.2). Receive
 * buffers are made available again as soon as their bytes are copied;
 * transmit buffers come back when the host has read them, and a reply
 * waits (bounded) for one.
 */
#include "guest.h"
#include "agent.h"
#include "virtio_pci.h"

#include "lib/json.h"

#include <string.h>

#define F_MULTIPORT (1ULL << 1)
#define RXQ 0
#define TXQ 1
#define CTRL_RXQ 2
#define CTRL_TXQ 3
#define QUEUES 4
#define AGENT_QSIZE 8
#define BUF_SIZE 512

/* Control events (5.3.6.2). */
#define DEVICE_READY 0
#define DEVICE_ADD 1
#define PORT_READY 3
#define PORT_OPEN 6
#define PORT_NAME 7
#define PORT_NAME_AGENT "org.qemu.guest_agent.0"

#define REQUEST_MAX 1024
#define REPLY_MAX 512
#define START_NAPS 2000
#define TX_NAPS 2000
#define NAP_TICKS 200000

struct control {
	uint32_t id;
	uint16_t event, value;
};

struct queue {
	_Alignas(16) struct virtq_desc desc[AGENT_QSIZE];
	_Alignas(4) volatile uint16_t avail[2 + AGENT_QSIZE];
	_Alignas(4) volatile uint32_t used[1 + 2 * AGENT_QSIZE];   /* flags, idx; id, len pairs */
	uint8_t buf[AGENT_QSIZE][BUF_SIZE];
	uint64_t notify;
	uint16_t avail_idx, used_seen;
	uint8_t free_count;                     /* transmit: buffers not in the device's hands */
	bool free[AGENT_QSIZE];
};

static struct vpci_dev dev;
static struct queue queues[QUEUES];
static struct agent_identity identity;
static bool port_named, host_open;
static char request[REQUEST_MAX];
static size_t request_len;
static bool request_overflow;
static char reply[REPLY_MAX + 1];

static uint16_t used_idx(const struct queue *q)
{
	return (uint16_t)(q->used[0] >> 16);
}

/* Buffer i, len bytes (device-writable when writable), made available. */
static void post(unsigned qi, unsigned i, uint32_t len, bool writable)
{
	struct queue *q = &queues[qi];

	q->desc[i] = (struct virtq_desc){ (uint64_t)(uintptr_t)q->buf[i], len,
					  writable ? VIRTQ_DESC_F_WRITE : 0, 0 };
	q->avail[2 + q->avail_idx % AGENT_QSIZE] = (uint16_t)i;
	/* The entry before the index that publishes it (2.7.13). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->avail[1] = ++q->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmio_write16(q->notify, (uint16_t)qi);
}

/* The next used entry of queue qi: its buffer and length; false when none. */
static bool take_used(unsigned qi, unsigned *i, uint32_t *len)
{
	struct queue *q = &queues[qi];

	if (used_idx(q) == q->used_seen)
		return false;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	unsigned slot = q->used_seen++ % AGENT_QSIZE;
	*i = q->used[1 + 2 * slot] % AGENT_QSIZE;
	*len = q->used[2 + 2 * slot];
	if (*len > BUF_SIZE)
		*len = BUF_SIZE;
	return true;
}

static void reclaim_tx(void)
{
	struct queue *q = &queues[TXQ];
	unsigned i;
	uint32_t len;

	while (take_used(TXQ, &i, &len))
		if (!q->free[i]) {
			q->free[i] = true;
			q->free_count++;
		}
}

/* Bytes to the host, a buffer at a time; false when the host stopped reading. */
static bool send(const void *p, size_t n)
{
	struct queue *q = &queues[TXQ];
	const uint8_t *b = p;

	while (n) {
		unsigned naps = 0;
		for (reclaim_tx(); !q->free_count; reclaim_tx()) {
			if (++naps > TX_NAPS)
				return false;
			guest_nap(NAP_TICKS);
		}
		unsigned i = 0;
		while (!q->free[i])
			i++;
		size_t part = n < BUF_SIZE ? n : BUF_SIZE;
		memcpy(q->buf[i], b, part);
		q->free[i] = false;
		q->free_count--;
		post(TXQ, i, (uint32_t)part, false);
		b += part;
		n -= part;
	}
	return true;
}

static void send_control(uint16_t event, uint16_t value)
{
	struct queue *q = &queues[CTRL_TXQ];
	const struct control m = { 0, event, value };
	unsigned i, naps = 0;
	uint32_t len;

	memcpy(q->buf[0], &m, sizeof(m));
	post(CTRL_TXQ, 0, sizeof(m), false);
	/* One message in flight: the device gives it back once read. */
	while (!take_used(CTRL_TXQ, &i, &len) && ++naps < TX_NAPS)
		guest_nap(NAP_TICKS);
}

/* The device's control messages: the port added, named and opened on the host's side. */
static void serve_control(void)
{
	unsigned i;
	uint32_t len;
	struct control m;

	while (take_used(CTRL_RXQ, &i, &len)) {
		if (len >= sizeof(m)) {
			memcpy(&m, queues[CTRL_RXQ].buf[i], sizeof(m));
			if (m.event == DEVICE_ADD && m.id == 0) {
				send_control(PORT_READY, 1);
			} else if (m.event == PORT_NAME && m.id == 0) {
				size_t name_len = len - sizeof(m);
				port_named = name_len == sizeof(PORT_NAME_AGENT) - 1 &&
					     !memcmp(queues[CTRL_RXQ].buf[i] + sizeof(m),
						     PORT_NAME_AGENT, name_len);
			} else if (m.event == PORT_OPEN && m.id == 0) {
				host_open = m.value == 1;
			}
		}
		post(CTRL_RXQ, i, BUF_SIZE, true);
	}
}

static void on_upcall(void)
{
}

bool agent_start(const struct agent_identity *id)
{
	identity = *id;
	set_irq_handler(0x40, on_upcall);
	vmcall(HC_SET_UPCALL_VECTOR, 0x40, 0, 0);
	if (!vpci_find(VIRTIO_PCI_CONSOLE, &dev)) {
		put("agent: no virtio console on PCI\n");
		return false;
	}
	if (!vpci_start(&dev, F_MULTIPORT | VIRTIO_F_VERSION_1)) {
		put("agent: the console refused the features\n");
		return false;
	}
	for (unsigned qi = 0; qi < QUEUES; qi++) {
		struct queue *q = &queues[qi];
		if (!vpci_queue(&dev, (uint16_t)qi, AGENT_QSIZE, (uint64_t)(uintptr_t)q->desc,
				(uint64_t)(uintptr_t)q->avail, (uint64_t)(uintptr_t)q->used,
				&q->notify)) {
			put("agent: a console queue is too small\n");
			return false;
		}
	}
	if (!vpci_driver_ok(&dev)) {
		put("agent: the console refused DRIVER_OK\n");
		return false;
	}
	for (unsigned i = 0; i < AGENT_QSIZE; i++) {
		post(CTRL_RXQ, i, BUF_SIZE, true);
		post(RXQ, i, BUF_SIZE, true);
		queues[TXQ].free[i] = true;
	}
	queues[TXQ].free_count = AGENT_QSIZE;
	send_control(DEVICE_READY, 1);
	for (unsigned naps = 0; !(port_named && host_open); naps++) {
		if (naps > START_NAPS) {
			put("agent: the port was never named org.qemu.guest_agent.0 and opened\n");
			return false;
		}
		serve_control();
		guest_nap(NAP_TICKS);
	}
	send_control(PORT_OPEN, 1);
	return true;
}

static void member(struct json_writer *w, const char *key, const char *value)
{
	json_key(w, key);
	json_put_string(w, value, strlen(value));
}

/* The noise a confused agent leaves before a sync's answer: junk, then a stale reply. */
static void send_noise(void)
{
	static const char stale[] = "{\"return\": 1}\n";
	char junk[64];

	memset(junk, '#', sizeof(junk));
	for (size_t n = identity.noise; n; ) {
		size_t part = n < sizeof(junk) ? n : sizeof(junk);
		send(junk, part);
		n -= part;
	}
	send(stale, sizeof(stale) - 1);
}

static void answer(const char *text, size_t len)
{
	struct json_token tok[32];
	struct json_doc doc;
	struct json_writer w;
	char command[48];
	int64_t id = 0;
	bool delimited = false;

	json_writer_init(&w, reply, sizeof(reply) - 1);
	json_begin_object(&w);
	if (json_parse(&doc, text, len, tok, 32) != JSON_OK ||
	    json_string(&doc, json_get(&doc, 0, "execute"), command, sizeof(command)) < 0) {
		json_key(&w, "error");
		json_begin_object(&w);
		member(&w, "class", "GenericError");
		member(&w, "desc", "not a request");
		json_end_object(&w);
	} else if (!strcmp(command, "guest-sync-delimited") || !strcmp(command, "guest-sync")) {
		delimited = command[10] == '-';
		json_int(&doc, json_get(&doc, json_get(&doc, 0, "arguments"), "id"), &id);
		json_key(&w, "return");
		json_put_int(&w, id);
	} else if (!strcmp(command, "guest-ping")) {
		json_key(&w, "return");
		json_begin_object(&w);
		json_end_object(&w);
	} else if (!strcmp(command, "guest-info")) {
		json_key(&w, "return");
		json_begin_object(&w);
		member(&w, "version", "vmm-test-agent 1.0");
		json_key(&w, "supported_commands");
		json_begin_array(&w);
		json_end_array(&w);
		json_end_object(&w);
	} else if (!strcmp(command, "guest-get-osinfo")) {
		json_key(&w, "return");
		json_begin_object(&w);
		member(&w, "name", identity.os_name);
		member(&w, "pretty-name", identity.os_name);
		member(&w, "kernel-release", identity.kernel_release);
		json_end_object(&w);
	} else {
		json_key(&w, "error");
		json_begin_object(&w);
		member(&w, "class", "CommandNotFound");
		member(&w, "desc", "the test guests' agent has no such command");
		json_end_object(&w);
	}
	json_end_object(&w);
	if (!json_writer_ok(&w))
		return;
	if (delimited && identity.noise)
		send_noise();
	if (delimited)
		send("\xff", 1);
	reply[w.len] = '\n';
	send(reply, w.len + 1);
}

/* A byte of the stream: 0xff drops a half request, a line end completes one. */
static void feed(uint8_t c)
{
	if (c == 0xff) {
		request_len = 0;
		request_overflow = false;
	} else if (c == '\n') {
		if (request_len && !request_overflow)
			answer(request, request_len);
		request_len = 0;
		request_overflow = false;
	} else if (request_len < sizeof(request)) {
		request[request_len++] = (char)c;
	} else {
		request_overflow = true;
	}
}

void agent_serve(void)
{
	unsigned i;
	uint32_t len;

	serve_control();
	while (take_used(RXQ, &i, &len)) {
		for (uint32_t k = 0; k < len; k++)
			feed(queues[RXQ].buf[i][k]);
		post(RXQ, i, BUF_SIZE, true);
	}
}
