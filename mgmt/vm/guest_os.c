/*
 * IVMGuestOS, answered in the management VM through the guest agent
 * (docs/guest-agent.md): the stock qemu-guest-agent or the project's own
 * (mgmt/additions/vmm_agent.c) on the VM's virtio-console port. The
 * hypervisor moves the bytes (HC_AGENT); the JSON the guest writes is
 * read here, never in root mode, by the bounded reader of lib/json.c.
 *
 * A call is one exchange at a time with one VM: 0xff and
 * guest-sync-delimited to resynchronise, then the command, each waited
 * for until a deadline. Each call runs on a fiber of its own (lib/fiber.h):
 * while it waits for its agent, the main loop goes on reading the line,
 * answering other requests and calling other VMs' agents; its answer is
 * sent when it ends (mgmt_answer_later). Calls to one VM run one after
 * the other, as they share its byte stream. The heartbeat pings every VM
 * whose agent has its port open and no call running with the same sync,
 * without waiting: answers are collected as they arrive.
 */
#include "guest.h"

#include "lib/base64.h"
#include "lib/fiber.h"
#include "lib/fmt.h"
#include "abi/api.h"
#include "mgmt/guest_agent.h"
#include "mgmt/proto.h"
#include "mgmt/vm/guest_os.h"
#include "mgmt/vm/mgmt_vm.h"

#include <stdarg.h>
#include <string.h>

/* Bochs runs a guest at a few hundred MIPS: generous, and still no hang. */
#define CALL_TIMEOUT_MS 5000
#define EXEC_TIMEOUT_DEFAULT_MS 10000
#define EXEC_TIMEOUT_MAX_MS 60000
#define EXEC_POLL_MS 100
/* guest-shutdown answers only when it fails (qemu-ga's success-response false). */
#define SHUTDOWN_ERROR_WAIT_MS 1000
/* docs/guest-agent.md: about a dozen exits a ping in an idle Linux guest, under 2 a second. */
#define HEARTBEAT_PERIOD_MS 10000
#define HEARTBEAT_WINDOW 6              /* pings in a minute */
#define HEARTBEAT_LOST_PINGS 3
#define HEARTBEAT_VMS 16
/* qemu-ga's exec output is up to 16 MiB; ours 64 KiB a stream, base64 in one reply. */
#define REPLY_MAX (200 * 1024)
#define REQUEST_MAX 2048
/* Of an answer's payload: what stdout and stderr may take together. */
#define ANSWER_OUTPUT_MAX 760
#define PARAMETER_PATH "/run/vmm-parameter-"
/* Time sync: how often a guest's clock is checked, and how far off it may be. */
#define TIME_CHECK_MS 60000
#define TIME_TOLERANCE_MS 200
/* How long a call waits behind earlier calls to its VM (vmmctl waits 20 s an attempt). */
#define QUEUE_WAIT_MS 15000
/* Calls in progress at once, over all VMs; one more is refused as busy. */
#define CALLS_MAX 4
/* A call's deepest frames (a control request and an answer, 1 KiB each) and an interrupt's. */
#define CALL_STACK (32 * 1024)

/* The heartbeat's reads and its ping, from the main loop only. */
static uint8_t beat_io[HC_AGENT_IO_MAX];
static char beat_request[REQUEST_MAX];
static uint32_t sync_id;

struct heartbeat {
	char vm[API_NAME_MAX + 1];
	bool in_flight;
	uint32_t id;
	uint16_t history;               /* bit per ping, newest in bit 0: 1 answered */
	uint8_t pings;                  /* in history, up to HEARTBEAT_WINDOW */
	uint64_t last_seen_ms;          /* 0: never */
	unsigned missed;                /* pings since the last answer (port closed: passes) */
	unsigned unlisted;              /* passes in a row that did not list the VM */
	bool lost_said;
	/* The VM's on_heartbeat_loss, as ListVirtualMachines gives it, and whether it acted. */
	char action[16];
	uint32_t grace_s;
	bool acted;
	bool time_sync;                 /* the VM's time_sync, as ListVirtualMachines gives it */
	uint64_t next_time_check_ms;    /* 0: at once (first seen: booted or restored) */
	struct agent_stream stream;
	uint8_t buf[64];
};

static struct heartbeat beats[HEARTBEAT_VMS];
static uint64_t next_ping_ms;

static void guest_os_poll_bytes(const char *vm, const uint8_t *p, size_t n);

/* One exchange with one VM's agent, with buffers of its own: calls to several VMs interleave. */
struct exchange {
	const char *vm;
	uint64_t deadline;
	uint32_t status;
	struct agent_stream stream;
	size_t pending, pending_len;    /* bytes of io not fed yet */
	struct json_doc doc;
	int value;
	char error[API_STR_MAX + 1];
	uint8_t *out;
	size_t *out_len;
	uint8_t io[HC_AGENT_IO_MAX];
	uint8_t reply[REPLY_MAX];
	struct json_token tok[AGENT_REPLY_TOKENS];
	char request[REQUEST_MAX];
	uint8_t out_data[ANSWER_OUTPUT_MAX], err_data[ANSWER_OUTPUT_MAX];
};

/* A GuestOS request in progress on its fiber, or the time sync's own clock check. */
struct guest_call {
	bool active;
	bool clock_check;               /* answered to nobody */
	uint64_t order;                 /* calls to one VM run in this order */
	uint16_t rq;
	char vm[API_NAME_MAX + 1];
	uint8_t payload[PROTO_MAX_PAYLOAD];
	size_t payload_len;
	uint8_t origin[GUEST_OS_ORIGIN_MAX];
	uint8_t answer[PROTO_MAX_PAYLOAD];
	size_t answer_len;
	uint16_t error;
	struct fiber fiber;
	struct exchange x;
	_Alignas(16) uint8_t stack[CALL_STACK];
};

static struct guest_call calls[CALLS_MAX];
static struct guest_call *current_call;  /* the one whose fiber runs now */
static uint64_t calls_started;

/* Milliseconds from then to now; 0 when then was read after now. */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static struct heartbeat *beat_of(const char *vm, bool create)
{
	struct heartbeat *free_slot = NULL;

	for (unsigned i = 0; i < HEARTBEAT_VMS; i++) {
		if (beats[i].vm[0] && !strcmp(beats[i].vm, vm))
			return &beats[i];
		if (!beats[i].vm[0] && !free_slot)
			free_slot = &beats[i];
	}
	if (!create || !free_slot)
		return NULL;
	*free_slot = (struct heartbeat){ 0 };
	memcpy(free_slot->vm, vm, strlen(vm) + 1);
	agent_stream_init(&free_slot->stream, free_slot->buf, sizeof(free_slot->buf));
	return free_slot;
}

static void heartbeat_seen(const char *vm)
{
	struct heartbeat *b = beat_of(vm, true);

	if (!b)
		return;
	if (b->lost_said) {
		put("mgmt: vm '");
		put(vm);
		put("': heartbeat back\n");
	}
	b->last_seen_ms = mgmt_now_ms();
	b->missed = 0;
	b->lost_said = b->acted = false;
	if (b->in_flight) {
		b->in_flight = false;
		b->history |= 1;
	}
}

/* One HC_AGENT: writes w[0..n), reads into io[0..cap). Bytes read, or HC_E*. */
static long agent_io(const char *vm, const void *w, size_t n, uint8_t *io, size_t cap,
		     uint32_t *taken, uint32_t *status)
{
	struct hc_agent a = { .write_len = (uint32_t)n, .read_cap = (uint32_t)cap };
	size_t len = strlen(vm);
	long r;

	if (len >= sizeof(a.vm))
		return HC_ENOENT;
	memcpy(a.vm, vm, len);
	r = vmcall(HC_AGENT, (uint64_t)(uintptr_t)&a, (uint64_t)(uintptr_t)w,
		   (uint64_t)(uintptr_t)io);
	if (r < 0)
		return r;
	*taken = a.written;
	*status = a.status;
	return a.read;
}

static uint16_t fail_to(uint8_t *out, size_t *len, uint16_t code, const char *format, ...)
	__attribute__((format(printf, 4, 5)));
static uint16_t fail_to(uint8_t *out, size_t *len, uint16_t code, const char *format, ...)
{
	char message[API_STR_MAX + 1];
	va_list ap;

	va_start(ap, format);
	fmt_vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	return mgmt_error(out, len, code, message, 0);
}

#define fail(x, code, ...) fail_to((x)->out, (x)->out_len, code, __VA_ARGS__)

/* Why vm cannot take a request now (r and status of an HC_AGENT), as an answer; API_E_OK when it can. */
static uint16_t refuse(const char *vm, long r, uint32_t status, uint8_t *out, size_t *len)
{
	if (r == HC_ENOENT)
		return fail_to(out, len, API_E_NOT_FOUND, "no VM named '%s'", vm);
	if (r < 0)
		return fail_to(out, len, API_E_INTERNAL, "HC_AGENT failed (%ld)", r);
	if (!(status & HC_AGENT_RUNNING))
		return fail_to(out, len, API_E_INVALID_STATE, "VM '%s' is not running", vm);
	if (!(status & HC_AGENT_PORT))
		return fail_to(out, len, API_E_NO_ADDITIONS, "VM '%s' has no guest agent port "
			       "(guest_agent = no in its configuration)", vm);
	if (!(status & HC_AGENT_OPEN))
		return fail_to(out, len, API_E_NO_ADDITIONS, "no guest agent runs in VM '%s' "
			       "(nothing in the guest has its port open)", vm);
	return API_E_OK;
}

static uint16_t refusal(struct exchange *x, long r)
{
	return refuse(x->vm, r, x->status, x->out, x->out_len);
}

/* Writes all of p[0..n) before the deadline, feeding what is read meanwhile. */
static uint16_t send_all(struct exchange *x, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		uint32_t taken = 0;
		long r;
		if (x->pending_len)
			/* Bytes read earlier are not wanted now: the next sync skips them. */
			x->stream.skipped += x->pending_len, x->pending_len = 0;
		r = agent_io(x->vm, b, n, x->io, sizeof(x->io), &taken, &x->status);
		if (r < 0 || refusal(x, r) != API_E_OK)
			return refusal(x, r);
		x->pending = 0;
		x->pending_len = (size_t)r;
		b += taken;
		n -= taken;
		if (n && mgmt_now_ms() >= x->deadline)
			return fail(x, API_E_TIMED_OUT, "the guest agent in '%s' reads nothing", x->vm);
		if (n)
			mgmt_wait();
	}
	return API_E_OK;
}

/* Waits for the next whole message; a reply is then in x->doc, x->value. */
static uint16_t receive(struct exchange *x, enum agent_reply *kind)
{
	for (;;) {
		bool complete = false;
		while (x->pending_len && !complete) {
			size_t used = agent_stream_feed(&x->stream, x->io + x->pending,
							x->pending_len, &complete);
			x->pending += used;
			x->pending_len -= used;
		}
		if (complete) {
			if (x->stream.overflow)
				return fail(x, API_E_NO_RESOURCES, "the guest agent's reply is larger "
					    "than %u KiB", REPLY_MAX / 1024);
			*kind = agent_reply_read(&x->doc, x->stream.buf, x->stream.len, x->tok,
						 &x->value, x->error, sizeof(x->error));
			return API_E_OK;
		}
		if (mgmt_now_ms() >= x->deadline)
			return fail(x, API_E_TIMED_OUT, "the guest agent in '%s' did not answer "
				    "in time", x->vm);
		uint32_t taken;
		long r = agent_io(x->vm, NULL, 0, x->io, sizeof(x->io), &taken, &x->status);
		if (r < 0 || refusal(x, r) != API_E_OK)
			return refusal(x, r);
		x->pending = 0;
		x->pending_len = (size_t)r;
		if (!r)
			mgmt_wait();
	}
}

/* 0xff and guest-sync-delimited with id, in request[0..REQUEST_MAX); its length. */
static size_t sync_request(char *request, uint32_t id)
{
	struct json_writer w;

	request[0] = (char)AGENT_SYNC_BYTE;
	agent_request_begin(&w, request + 1, REQUEST_MAX - 1, "guest-sync-delimited");
	json_key(&w, "id");
	json_put_int(&w, id);
	return agent_request_end(&w) + 1;
}

/*
 * 0xff and guest-sync-delimited with a fresh id: the agent drops any
 * half request, and everything it wrote before its answer is skipped.
 */
static uint16_t sync(struct exchange *x)
{
	uint32_t id = ++sync_id;
	size_t n = sync_request(x->request, id);
	int64_t got;
	enum agent_reply kind;
	uint16_t e;

	agent_stream_expect_sync(&x->stream);
	if ((e = send_all(x, x->request, n)) != API_E_OK)
		return e;
	for (;;) {
		if ((e = receive(x, &kind)) != API_E_OK)
			return e;
		if (kind == AGENT_REPLY_RETURN && json_int(&x->doc, x->value, &got) && got == id)
			break;
		/* An earlier sync's answer: wait for this one's 0xff. */
		agent_stream_expect_sync(&x->stream);
	}
	agent_stream_next(&x->stream);
	heartbeat_seen(x->vm);
	return API_E_OK;
}

/* Sends the request in x->request (n bytes) and reads its reply. */
static uint16_t call(struct exchange *x, size_t n)
{
	enum agent_reply kind;
	uint16_t e;

	if (!n)
		return fail(x, API_E_INVALID_ARGUMENT, "the request does not fit %u bytes",
			    REQUEST_MAX);
	if ((e = send_all(x, x->request, n)) != API_E_OK || (e = receive(x, &kind)) != API_E_OK)
		return e;
	agent_stream_next(&x->stream);
	if (kind == AGENT_REPLY_MALFORMED)
		return fail(x, API_E_INTERNAL, "the guest agent in '%s' answered something that "
			    "is not a reply", x->vm);
	if (kind == AGENT_REPLY_ERROR)
		return fail(x, API_E_INTERNAL, "the guest agent in '%s' says: %s", x->vm,
			    x->error[0] ? x->error : "(no description)");
	return API_E_OK;
}

/* A command without arguments, after a sync. */
static uint16_t simple_call(struct exchange *x, const char *command)
{
	struct json_writer w;
	uint16_t e = sync(x);

	if (e != API_E_OK)
		return e;
	agent_request_begin(&w, x->request, REQUEST_MAX, command);
	return call(x, agent_request_end(&w));
}

/* A guest string as an API string: printable ASCII, the rest '?'. */
static void printable(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

static bool member_string(struct exchange *x, int obj, const char *key, char *out, size_t cap)
{
	if (json_string(&x->doc, json_get(&x->doc, obj, key), out, cap) <= 0)
		return false;
	printable(out);
	return true;
}

static uint16_t os_name(struct exchange *x, struct tlv_writer *w)
{
	char name[API_STR_MAX + 1], kernel[128];
	uint16_t e = simple_call(x, "guest-get-osinfo");

	if (e != API_E_OK)
		return e;
	if (!member_string(x, x->value, "pretty-name", name, sizeof(name)) &&
	    !member_string(x, x->value, "name", name, sizeof(name)))
		memcpy(name, "unknown", 8);
	if (member_string(x, x->value, "kernel-release", kernel, sizeof(kernel))) {
		size_t n = strlen(name);
		fmt_snprintf(name + n, sizeof(name) - n, " (kernel %s)", kernel);
	}
	tlv_put_str(w, API_TAG_OS_NAME, name);
	return API_E_OK;
}

static uint16_t additions_version(struct exchange *x, struct tlv_writer *w)
{
	char version[API_STR_MAX + 1], text[API_STR_MAX + 1];
	uint16_t e = simple_call(x, "guest-info");

	if (e != API_E_OK)
		return e;
	if (!member_string(x, x->value, "version", version, sizeof(version)))
		return fail(x, API_E_INTERNAL, "the guest agent in '%s' gives no version", x->vm);
	/* qemu-ga says only its release ("7.2.0"); ours names itself. */
	if (version[0] >= '0' && version[0] <= '9')
		fmt_snprintf(text, sizeof(text), "qemu-guest-agent %s", version);
	else
		memcpy(text, version, sizeof(text));
	tlv_put_str(w, API_TAG_ADDITIONS_VERSION, text);
	return API_E_OK;
}

static uint16_t shutdown(struct exchange *x)
{
	struct json_writer w;
	enum agent_reply kind;
	uint16_t e = sync(x);

	if (e != API_E_OK)
		return e;
	agent_request_begin(&w, x->request, REQUEST_MAX, "guest-shutdown");
	json_key(&w, "mode");
	json_put_string(&w, "powerdown", 9);
	size_t n = agent_request_end(&w);
	if ((e = send_all(x, x->request, n)) != API_E_OK)
		return e;
	/* The wait's own failures are not the answer: kept aside until it is known. */
	uint8_t *answer = x->out, aside[PROTO_MAX_PAYLOAD];
	size_t *answer_len = x->out_len, aside_len = 0;
	x->out = aside;
	x->out_len = &aside_len;
	x->deadline = mgmt_now_ms() + SHUTDOWN_ERROR_WAIT_MS;
	e = receive(x, &kind);
	x->out = answer;
	x->out_len = answer_len;
	/* No error in time, the agent gone or the guest already off: it is shutting down. */
	if (e == API_E_TIMED_OUT || !(x->status & HC_AGENT_RUNNING) ||
	    !(x->status & HC_AGENT_OPEN))
		return API_E_OK;
	if (e != API_E_OK) {
		memcpy(answer, aside, aside_len);
		*answer_len = aside_len;
		return e;
	}
	if (kind == AGENT_REPLY_ERROR)
		return fail(x, API_E_INTERNAL, "the guest refuses to shut down: %s", x->error);
	return API_E_OK;
}

/*
 * The start of out-data or err-data of guest-exec-status: what one answer
 * can carry, decoded from whole 4-character groups of the base64 text as
 * it lies in the reply (base64 needs no JSON escapes); *cut when there
 * was more. -1 when it is not base64.
 */
static long exec_output(struct exchange *x, const char *key, uint8_t *out, bool *cut)
{
	int t = json_get(&x->doc, x->value, key);

	if (t < 0)
		return 0;
	const struct json_token *k = &x->doc.tok[t];
	size_t len = k->end - k->start, take = ANSWER_OUTPUT_MAX / 3 * 4;
	if (k->type != JSON_STRING)
		return -1;
	if (len > take)
		*cut = true;
	else
		take = len;
	return base64_decode(x->doc.text + k->start, take, out, ANSWER_OUTPUT_MAX);
}

static uint16_t execute_command(struct exchange *x, const char *command, uint32_t timeout_ms,
				struct tlv_writer *w)
{
	struct json_writer jw;
	int64_t pid, code;
	bool exited = false, cut = false;
	uint16_t e = sync(x);

	if (e != API_E_OK)
		return e;
	agent_request_begin(&jw, x->request, REQUEST_MAX, "guest-exec");
	json_key(&jw, "path");
	json_put_string(&jw, "/bin/sh", 7);
	json_key(&jw, "arg");
	json_begin_array(&jw);
	json_put_string(&jw, "-c", 2);
	json_put_string(&jw, command, strlen(command));
	json_end_array(&jw);
	json_key(&jw, "capture-output");
	json_put_bool(&jw, true);
	if ((e = call(x, agent_request_end(&jw))) != API_E_OK)
		return e;
	if (!json_int(&x->doc, json_get(&x->doc, x->value, "pid"), &pid))
		return fail(x, API_E_INTERNAL, "guest-exec in '%s' gave no pid", x->vm);
	uint64_t end = mgmt_now_ms() + timeout_ms;
	while (!exited) {
		x->deadline = mgmt_now_ms() + CALL_TIMEOUT_MS;
		agent_request_begin(&jw, x->request, REQUEST_MAX, "guest-exec-status");
		json_key(&jw, "pid");
		json_put_int(&jw, pid);
		if ((e = call(x, agent_request_end(&jw))) != API_E_OK)
			return e;
		json_bool(&x->doc, json_get(&x->doc, x->value, "exited"), &exited);
		if (exited)
			break;
		if (mgmt_now_ms() >= end)
			return fail(x, API_E_TIMED_OUT, "the command still runs in '%s' after %u ms "
				    "(pid %lld)", x->vm, timeout_ms, (long long)pid);
		uint64_t until = mgmt_now_ms() + EXEC_POLL_MS;
		while (mgmt_now_ms() < until)
			mgmt_wait();
	}
	long out_n = exec_output(x, "out-data", x->out_data, &cut);
	long err_n = exec_output(x, "err-data", x->err_data, &cut);
	if (out_n < 0 || err_n < 0)
		return fail(x, API_E_INTERNAL, "the command's output from '%s' is not base64", x->vm);
	bool flag;
	cut |= (json_bool(&x->doc, json_get(&x->doc, x->value, "out-truncated"), &flag) && flag) ||
	       (json_bool(&x->doc, json_get(&x->doc, x->value, "err-truncated"), &flag) && flag);
	/* One answer holds both: stderr keeps a third of the room when both need it. */
	size_t err_room = (size_t)err_n < ANSWER_OUTPUT_MAX / 3 ? (size_t)err_n
								  : ANSWER_OUTPUT_MAX / 3;
	size_t out_room = ANSWER_OUTPUT_MAX - err_room;
	if ((size_t)out_n < out_room)
		err_room = ANSWER_OUTPUT_MAX - (size_t)out_n;
	cut |= (size_t)out_n > out_room || (size_t)err_n > err_room;
	if (json_int(&x->doc, json_get(&x->doc, x->value, "exitcode"), &code))
		tlv_put_u32(w, API_TAG_EXIT_CODE, (uint32_t)code);
	if (json_int(&x->doc, json_get(&x->doc, x->value, "signal"), &code))
		tlv_put_u32(w, API_TAG_SIGNAL, (uint32_t)code);
	tlv_put(w, API_TAG_STDOUT, x->out_data, (size_t)out_n < out_room ? (size_t)out_n : out_room);
	tlv_put(w, API_TAG_STDERR, x->err_data, (size_t)err_n < err_room ? (size_t)err_n : err_room);
	tlv_put_u8(w, API_TAG_TRUNCATED, cut);
	return API_E_OK;
}

/*
 * The guest's clock set to the host's: the host's wall time from
 * GetHostInfo, carried forward on this VM's clock to the moment the
 * request goes out, when it is off by more than tolerance_ms. *off_ms:
 * the guest's clock minus the host's before.
 */
static uint16_t set_guest_clock(struct exchange *x, int64_t tolerance_ms, int64_t *off_ms)
{
	uint8_t info[PROTO_MAX_PAYLOAD];
	size_t len = 0;
	uint64_t host_ns, at_ms;
	int64_t guest_ns;
	struct json_writer jw;
	uint16_t e;

	if (mgmt_control(API_REQ_GET_HOST_INFO, NULL, 0, info, &len) != API_E_OK ||
	    tlv_get_u64(info, len, API_TAG_HOST_TIME_NS, &host_ns) != TLV_OK)
		return fail(x, API_E_INVALID_STATE, "the host's wall clock is unknown");
	at_ms = mgmt_now_ms();
	if ((e = simple_call(x, "guest-get-time")) != API_E_OK)
		return e;
	/* Both non-negative below 2^63: their difference cannot overflow. */
	if (!json_int(&x->doc, x->value, &guest_ns) || guest_ns < 0)
		return fail(x, API_E_INTERNAL, "guest-get-time in '%s' gave no time", x->vm);
	uint64_t now_ns = host_ns + (mgmt_now_ms() - at_ms) * 1000000;
	*off_ms = (guest_ns - (int64_t)now_ns) / 1000000;
	if (*off_ms <= tolerance_ms && *off_ms >= -tolerance_ms)
		return API_E_OK;
	agent_request_begin(&jw, x->request, REQUEST_MAX, "guest-set-time");
	json_key(&jw, "time");
	json_put_int(&jw, (int64_t)(host_ns + (mgmt_now_ms() - at_ms) * 1000000));
	return call(x, agent_request_end(&jw));
}

static void say_clock_set(const char *vm, int64_t off_ms)
{
	char line[128];

	fmt_snprintf(line, sizeof(line), "mgmt: vm '%s': clock set to the host's (it was %lld ms "
		     "off)\n", vm, (long long)off_ms);
	put(line);
}

/* SyncTime turned on: the clock is set at once, then checked every TIME_CHECK_MS. */
static uint16_t set_clock_now(struct exchange *x, struct tlv_writer *w)
{
	int64_t off_ms;
	uint16_t e = set_guest_clock(x, 0, &off_ms);
	/* Looked up after the call's waits: the record may have changed hands meanwhile. */
	struct heartbeat *b = beat_of(x->vm, false);

	if (e != API_E_OK)
		return e;
	say_clock_set(x->vm, off_ms);
	if (b)
		b->next_time_check_ms = mgmt_now_ms() + TIME_CHECK_MS;
	tlv_put_u8(w, API_TAG_TIME_SYNC, 1);
	return API_E_OK;
}

/* The time sync's own check: a clock off by more than the tolerance is set. */
static uint16_t check_clock_now(struct exchange *x)
{
	int64_t off_ms;
	uint16_t e = set_guest_clock(x, TIME_TOLERANCE_MS, &off_ms);

	if (e == API_E_OK && (off_ms > TIME_TOLERANCE_MS || off_ms < -TIME_TOLERANCE_MS))
		say_clock_set(x->vm, off_ms);
	return e;
}

static bool parameter_name_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-' || s[n] == '.'))
			return false;
	return n >= 1 && n <= 64 && s[0] != '.';
}

/* The value goes to PARAMETER_PATH NAME in the guest through the agent's file calls. */
static uint16_t set_parameter(struct exchange *x, const char *name, const char *value)
{
	char path[128], b64[BASE64_ENCODED_LEN(API_STR_MAX) + 1];
	struct json_writer jw;
	int64_t handle;
	uint16_t e;

	if ((e = sync(x)) != API_E_OK)
		return e;
	fmt_snprintf(path, sizeof(path), PARAMETER_PATH "%s", name);
	agent_request_begin(&jw, x->request, REQUEST_MAX, "guest-file-open");
	json_key(&jw, "path");
	json_put_string(&jw, path, strlen(path));
	json_key(&jw, "mode");
	json_put_string(&jw, "w", 1);
	if ((e = call(x, agent_request_end(&jw))) != API_E_OK)
		return e;
	if (!json_int(&x->doc, x->value, &handle))
		return fail(x, API_E_INTERNAL, "guest-file-open in '%s' gave no handle", x->vm);
	base64_encode((const uint8_t *)value, strlen(value), b64, sizeof(b64));
	agent_request_begin(&jw, x->request, REQUEST_MAX, "guest-file-write");
	json_key(&jw, "handle");
	json_put_int(&jw, handle);
	json_key(&jw, "buf-b64");
	json_put_string(&jw, b64, strlen(b64));
	uint16_t written = call(x, agent_request_end(&jw));
	/*
	 * Closed whether the write worked or not: a handle is the guest's
	 * resource. After a failed write, a fresh deadline and a sync, so a
	 * late answer to the write is not taken for the close's.
	 */
	x->deadline = mgmt_now_ms() + CALL_TIMEOUT_MS;
	if (written != API_E_OK && (e = sync(x)) != API_E_OK)
		return e;
	agent_request_begin(&jw, x->request, REQUEST_MAX, "guest-file-close");
	json_key(&jw, "handle");
	json_put_int(&jw, handle);
	e = call(x, agent_request_end(&jw));
	return written != API_E_OK ? written : e;
}

/* --- Calls ----------------------------------------------------------------- */

static bool vm_has_call(const char *vm)
{
	for (unsigned i = 0; i < CALLS_MAX; i++)
		if (calls[i].active && !strcmp(calls[i].vm, vm))
			return true;
	return false;
}

static struct guest_call *free_call(void)
{
	for (unsigned i = 0; i < CALLS_MAX; i++)
		if (!calls[i].active)
			return &calls[i];
	return NULL;
}

static bool earlier_call_to(const struct guest_call *c)
{
	for (unsigned i = 0; i < CALLS_MAX; i++)
		if (calls[i].active && &calls[i] != c && calls[i].order < c->order &&
		    !strcmp(calls[i].vm, c->vm))
			return true;
	return false;
}

/* A call's fiber: waits for the VM's earlier calls, then speaks with its agent. */
static void run_call(void *arg)
{
	struct guest_call *c = arg;
	struct exchange *x = &c->x;
	char name[API_STR_MAX + 1], value[API_STR_MAX + 1];
	uint32_t timeout_ms = EXEC_TIMEOUT_DEFAULT_MS;
	struct tlv_writer w;
	uint16_t e;

	uint64_t came = mgmt_now_ms();
	x->vm = c->vm;
	x->out = c->answer;
	x->out_len = &c->answer_len;
	/*
	 * A client waits VMMCTL_AGENT_TIMEOUT_MS an attempt: a call still
	 * queued after that is answered TIMED_OUT, never run late (a Shutdown
	 * an hour after it was asked for, or twice when the client retried).
	 */
	while (earlier_call_to(c)) {
		if (mgmt_now_ms() - came > QUEUE_WAIT_MS) {
			c->error = fail(x, API_E_TIMED_OUT, "calls to the agent in '%s' that came "
					"earlier still run after %u s", c->vm, QUEUE_WAIT_MS / 1000);
			return;
		}
		mgmt_wait();
	}
	x->deadline = mgmt_now_ms() + CALL_TIMEOUT_MS;
	x->status = 0;
	x->pending = x->pending_len = 0;
	x->error[0] = '\0';
	agent_stream_init(&x->stream, x->reply, sizeof(x->reply));
	tlv_writer_init(&w, c->answer, PROTO_MAX_PAYLOAD);
	tlv_put_str(&w, API_TAG_VM, c->vm);
	/* The arguments were checked when the request came. */
	switch (c->rq) {
	case API_REQ_GET_OS_NAME:
		e = os_name(x, &w);
		break;
	case API_REQ_GET_ADDITIONS_VERSION:
		e = additions_version(x, &w);
		break;
	case API_REQ_SHUTDOWN:
		e = shutdown(x);
		break;
	case API_REQ_EXECUTE_COMMAND:
		tlv_get_str(c->payload, c->payload_len, API_TAG_COMMAND, name, sizeof(name));
		tlv_get_u32(c->payload, c->payload_len, API_TAG_TIMEOUT_MS, &timeout_ms);
		e = execute_command(x, name, timeout_ms, &w);
		break;
	case API_REQ_SYNC_TIME:
		e = set_clock_now(x, &w);
		break;
	case API_REQ_SET_PARAMETER:
		tlv_get_str(c->payload, c->payload_len, API_TAG_PARAMETER, name, sizeof(name));
		tlv_get_str(c->payload, c->payload_len, API_TAG_VALUE, value, sizeof(value));
		e = set_parameter(x, name, value);
		break;
	default:
		e = check_clock_now(x);
		break;
	}
	if (e == API_E_OK && !tlv_writer_ok(&w))
		e = mgmt_error(c->answer, &c->answer_len, API_E_INTERNAL, "the answer does not fit", 0);
	else if (e == API_E_OK)
		c->answer_len = w.len;
	c->error = e;
}

/* rq API_REQ_NONE is the time sync's own check, answered to nobody. */
static void start_call(struct guest_call *c, const char *vm, uint16_t rq, const uint8_t *p,
		       size_t n, const void *origin, size_t origin_size)
{
	c->active = true;
	c->order = ++calls_started;
	c->rq = rq;
	memcpy(c->vm, vm, strlen(vm) + 1);
	c->payload_len = n < sizeof(c->payload) ? n : sizeof(c->payload);
	if (c->payload_len)
		memcpy(c->payload, p, c->payload_len);
	if (origin_size)
		memcpy(c->origin, origin,
		       origin_size < sizeof(c->origin) ? origin_size : sizeof(c->origin));
	c->answer_len = 0;
	fiber_init(&c->fiber, c->stack, sizeof(c->stack), run_call, c);
}

void guest_os_run(void)
{
	for (unsigned i = 0; i < CALLS_MAX; i++) {
		struct guest_call *c = &calls[i];
		if (!c->active)
			continue;
		current_call = c;
		bool more = fiber_resume(&c->fiber);
		current_call = NULL;
		if (more)
			continue;
		if (c->rq != API_REQ_NONE)
			mgmt_answer_later(c->origin, c->rq, c->payload, c->payload_len, c->error,
					  c->answer, c->answer_len);
		c->active = false;
	}
}

bool guest_os_yield(void)
{
	if (!current_call)
		return false;
	fiber_yield(&current_call->fiber);
	return true;
}

/*
 * GetHeartbeat, from the records alone. The port's status is read without
 * its bytes while a call to the VM runs: they are the call's.
 */
/*
 * The agent port's status, and what it holds (unless read_bytes is false)
 * read and handed to the poll loop: an agent's answer to a ping.
 */
static long agent_status(const char *vm, bool read_bytes, uint32_t *status)
{
	uint32_t taken;
	long r = agent_io(vm, NULL, 0, beat_io, read_bytes ? sizeof(beat_io) : 0, &taken, status);

	if (r > 0)
		guest_os_poll_bytes(vm, beat_io, (size_t)r);
	return r;
}

static uint16_t heartbeat(const char *vm, uint8_t *out, size_t *len, struct tlv_writer *w)
{
	uint32_t status = 0;
	long r = agent_status(vm, !vm_has_call(vm), &status);
	const struct heartbeat *b = beat_of(vm, false);
	unsigned answered = 0;

	if (r == HC_ENOENT || (r >= 0 && !(status & HC_AGENT_RUNNING)))
		return refuse(vm, r, status, out, len);
	/* An agent never seen is no agent; one that stopped answering is a lost heartbeat. */
	if (!b && refuse(vm, r, status, out, len) != API_E_OK)
		return refuse(vm, r, status, out, len);
	bool open = r >= 0 && (status & HC_AGENT_OPEN);
	bool alive = open && b && b->last_seen_ms && b->missed < HEARTBEAT_LOST_PINGS;
	if (b)
		for (unsigned i = 0; i < b->pings; i++)
			answered += (b->history >> i) & 1;
	tlv_put_u8(w, API_TAG_HEARTBEATING, alive);
	tlv_put_u8(w, API_TAG_HEARTBEAT_PERCENT,
		   (uint8_t)(b && b->pings ? answered * 100 / b->pings : 0));
	tlv_put_u8(w, API_TAG_CAN_SHUTDOWN, alive);
	if (b && b->last_seen_ms)
		tlv_put_u64(w, API_TAG_HEARTBEAT_AGE_MS, since(mgmt_now_ms(), b->last_seen_ms));
	return API_E_OK;
}

/* Whether the agent of vm can take a call, at once: no call to it may hang on its absence. */
static uint16_t probe(const char *vm, uint8_t *out, size_t *len)
{
	uint32_t status = 0;
	long r = agent_status(vm, true, &status);

	return refuse(vm, r, status, out, len);
}

/* SyncTime's setting, in the hypervisor (it outlives a Save); an answer when it is turned off. */
static uint16_t sync_setting(const uint8_t *p, size_t n, const char *vm, uint8_t *out,
			     size_t *len, bool *on)
{
	struct tlv_writer w;
	uint8_t value = 0;
	uint16_t e = mgmt_control(API_REQ_SYNC_TIME, p, n, out, len);

	if (e != API_E_OK)
		return e;
	tlv_get_u8(out, *len, API_TAG_TIME_SYNC, &value);
	*on = value;
	tlv_writer_init(&w, out, PROTO_MAX_PAYLOAD);
	tlv_put_str(&w, API_TAG_VM, vm);
	tlv_put_u8(&w, API_TAG_TIME_SYNC, 0);
	*len = w.len;
	return API_E_OK;
}

uint16_t guest_os_request(uint16_t rq, const uint8_t *p, size_t n, uint8_t *out, size_t *len,
			  const void *origin, size_t origin_size)
{
	char vm[API_NAME_MAX + 1], text[API_STR_MAX + 1], value[API_STR_MAX + 1];
	uint32_t timeout_ms = EXEC_TIMEOUT_DEFAULT_MS;
	struct guest_call *c;
	struct tlv_writer w;
	bool on;
	uint16_t e;

	if (tlv_get_str(p, n, API_TAG_VM, vm, sizeof(vm)) != TLV_OK)
		return mgmt_error(out, len, API_E_INVALID_ARGUMENT, "missing vm", 0);
	switch (rq) {
	case API_REQ_GET_HEARTBEAT:
		tlv_writer_init(&w, out, PROTO_MAX_PAYLOAD);
		tlv_put_str(&w, API_TAG_VM, vm);
		if ((e = heartbeat(vm, out, len, &w)) != API_E_OK)
			return e;
		*len = w.len;
		return API_E_OK;
	case API_REQ_EXECUTE_COMMAND:
		if (tlv_get_str(p, n, API_TAG_COMMAND, text, sizeof(text)) != TLV_OK)
			return mgmt_error(out, len, API_E_INVALID_ARGUMENT, "missing command", 0);
		tlv_get_u32(p, n, API_TAG_TIMEOUT_MS, &timeout_ms);
		if (!timeout_ms || timeout_ms > EXEC_TIMEOUT_MAX_MS)
			return fail_to(out, len, API_E_INVALID_ARGUMENT, "timeout_ms is 1 to %u",
				       EXEC_TIMEOUT_MAX_MS);
		break;
	case API_REQ_SET_PARAMETER:
		if (tlv_get_str(p, n, API_TAG_PARAMETER, text, sizeof(text)) != TLV_OK ||
		    tlv_get_str(p, n, API_TAG_VALUE, value, sizeof(value)) != TLV_OK)
			return mgmt_error(out, len, API_E_INVALID_ARGUMENT,
					  "missing parameter or value", 0);
		if (!parameter_name_valid(text))
			return mgmt_error(out, len, API_E_INVALID_ARGUMENT, "a parameter name is 1 "
					  "to 64 of A-Z a-z 0-9 _ - . and does not start with '.'",
					  0);
		break;
	case API_REQ_SYNC_TIME:
		/* Turned off, nothing more; turned on, the clock is set through the agent. */
		if ((e = sync_setting(p, n, vm, out, len, &on)) != API_E_OK || !on)
			return e;
		break;
	case API_REQ_GET_OS_NAME:
	case API_REQ_GET_ADDITIONS_VERSION:
	case API_REQ_SHUTDOWN:
		break;
	default:
		return fail_to(out, len, API_E_NOT_SUPPORTED, "%s is not supported yet",
			       api_request_name(rq));
	}
	/* Behind a call already running the agent was there: this one waits its turn. */
	if (!vm_has_call(vm) && (e = probe(vm, out, len)) != API_E_OK)
		return e;
	if (!(c = free_call()))
		return fail_to(out, len, API_E_BUSY, "%u calls to guest agents are in progress",
			       CALLS_MAX);
	start_call(c, vm, rq, p, n, origin, origin_size);
	return GUEST_OS_LATER;
}

bool guest_os_handles(uint16_t rq)
{
	return rq == API_REQ_GET_HEARTBEAT || api_request_waits_for_agent(rq);
}

/* --- The heartbeat ---------------------------------------------------------- */

/* Bytes read from vm's agent port outside a call: a ping's answer, perhaps. */
static void guest_os_poll_bytes(const char *vm, const uint8_t *p, size_t n)
{
	struct heartbeat *b = beat_of(vm, false);

	if (!b || !b->in_flight)
		return;
	while (n) {
		bool complete;
		size_t used = agent_stream_feed(&b->stream, p, n, &complete);
		struct json_doc doc;
		struct json_token t[8];
		int64_t id;
		p += used;
		n -= used;
		if (!complete)
			continue;
		if (!b->stream.overflow &&
		    json_parse(&doc, (const char *)b->stream.buf, b->stream.len, t, 8) == JSON_OK &&
		    json_int(&doc, json_get(&doc, 0, "return"), &id) && id == b->id) {
			heartbeat_seen(vm);
			return;
		}
		agent_stream_expect_sync(&b->stream);
	}
}

/*
 * Every TIME_CHECK_MS, and at once for a VM first seen: a call of its own
 * sets a clock off by more than the tolerance. With every call slot taken
 * it waits for the next pass.
 */
static void check_clock(struct heartbeat *b, uint64_t now)
{
	struct guest_call *c;

	if (!b->time_sync || now < b->next_time_check_ms || vm_has_call(b->vm) ||
	    !(c = free_call()))
		return;
	b->next_time_check_ms = now + TIME_CHECK_MS;
	start_call(c, b->vm, API_REQ_NONE, NULL, 0, NULL, 0);
}

/* A pass's ping slot in the minute's history, unanswered until heartbeat_seen. */
static void next_ping_slot(struct heartbeat *b)
{
	b->history <<= 1;
	if (b->pings < HEARTBEAT_WINDOW)
		b->pings++;
}

static void ping(struct heartbeat *b)
{
	uint32_t taken, status;
	size_t n;

	/* The last one is still unanswered, a whole pass later. */
	if (b->in_flight)
		b->missed++;
	next_ping_slot(b);
	b->id = ++sync_id;
	n = sync_request(beat_request, b->id);
	agent_stream_expect_sync(&b->stream);
	long r = agent_io(b->vm, beat_request, n, beat_io, sizeof(beat_io), &taken, &status);
	/* A ping the receive buffers cannot take whole is not sent: it is missed at once. */
	b->in_flight = r >= 0 && taken == n;
	if (!b->in_flight)
		b->missed++;
	if (r > 0)
		guest_os_poll_bytes(b->vm, beat_io, (size_t)r);
}

/* The log line and a HeartbeatLost event; `done` is what the policy did, or NULL. */
static void report_loss(const struct heartbeat *b, uint64_t now, const char *done)
{
	char line[200];
	uint8_t payload[128];
	struct tlv_writer w;
	uint64_t age = since(now, b->last_seen_ms);

	fmt_snprintf(line, sizeof(line), "vm '%s': heartbeat lost (last seen %llu s ago)%s%s",
		     b->vm, (unsigned long long)(age / 1000), done ? ": " : "", done ? done : "");
	put("mgmt: ");
	put(line);
	put("\n");
	tlv_writer_init(&w, payload, sizeof(payload));
	tlv_put_str(&w, API_TAG_VM, b->vm);
	tlv_put_u64(&w, API_TAG_HEARTBEAT_AGE_MS, age);
	if (done) {
		tlv_put_str(&w, API_TAG_ON_HEARTBEAT_LOSS, b->action);
		tlv_put_str(&w, API_TAG_REASON, done);
	}
	mgmt_guest_event(API_EVENT_HEARTBEAT_LOST, payload, w.len, line);
}

/*
 * on_heartbeat_loss acts once per loss, like a watchdog, after the VM's
 * grace: Reset or TurnOff through the hypervisor, with the reason in the
 * VM's state-change events.
 */
static void act_on_loss(struct heartbeat *b, uint64_t now)
{
	uint16_t rq = !strcmp(b->action, "reset")   ? API_REQ_RESET :
		      !strcmp(b->action, "turnoff") ? API_REQ_TURN_OFF : API_REQ_NONE;
	uint8_t req[128], answer[PROTO_MAX_PAYLOAD];
	char reason[96];
	struct tlv_writer w;
	size_t len = 0;

	if (rq == API_REQ_NONE || b->acted ||
	    (uint64_t)b->missed * HEARTBEAT_PERIOD_MS < b->grace_s * 1000ULL)
		return;
	b->acted = true;
	fmt_snprintf(reason, sizeof(reason), "heartbeat lost for %llu s (on_heartbeat_loss = %s)",
		     (unsigned long long)(since(now, b->last_seen_ms) / 1000), b->action);
	tlv_writer_init(&w, req, sizeof(req));
	tlv_put_str(&w, API_TAG_VM, b->vm);
	tlv_put_str(&w, API_TAG_REASON, reason);
	uint16_t e = mgmt_control(rq, req, w.len, answer, &len);
	report_loss(b, now, e == API_E_OK ? reason : "the policy's request was refused");
}

/* A VM of one ListVirtualMachines entry: its record updated, pinged, its misses judged. */
static void heartbeat_pass_vm(const struct tlv *t, bool *listed)
{
	char vm[API_NAME_MAX + 1];
	uint32_t taken, status;
	uint8_t sync_on = 0;
	bool busy;
	long r;

	if (t->tag != API_TAG_VM_ENTRY ||
	    tlv_get_str(t->value, t->len, API_TAG_VM, vm, sizeof(vm)) != TLV_OK)
		return;
	/* A VM with a call running: its bytes are the call's, and its syncs its heartbeat. */
	busy = vm_has_call(vm);
	r = agent_io(vm, NULL, 0, beat_io, busy ? 0 : sizeof(beat_io), &taken, &status);
	if (r < 0 || !(status & HC_AGENT_RUNNING))
		return;
	if (r > 0)
		guest_os_poll_bytes(vm, beat_io, (size_t)r);
	/* An agent that closed its port (it died, or was stopped) misses its pings. */
	bool open = status & HC_AGENT_OPEN;
	struct heartbeat *b = beat_of(vm, open);
	if (!b)
		return;
	listed[b - beats] = true;
	b->unlisted = 0;
	if (tlv_get_str(t->value, t->len, API_TAG_ON_HEARTBEAT_LOSS, b->action,
			sizeof(b->action)) != TLV_OK)
		memcpy(b->action, "none", 5);
	b->grace_s = 0;
	tlv_get_u32(t->value, t->len, API_TAG_HEARTBEAT_GRACE_S, &b->grace_s);
	tlv_get_u8(t->value, t->len, API_TAG_TIME_SYNC, &sync_on);
	b->time_sync = sync_on;
	if (busy)
		return;
	if (open) {
		ping(b);
	} else {
		next_ping_slot(b);
		b->missed++;
		b->in_flight = false;
	}
	/*
	 * A loss is pings sent and not answered, not time: a pass that comes
	 * late (this VM was busy with a call) costs no VM a ping.
	 */
	if (!b->last_seen_ms || b->missed < HEARTBEAT_LOST_PINGS)
		return;
	uint64_t now = mgmt_now_ms();
	if (!b->lost_said)
		report_loss(b, now, NULL);
	b->lost_said = true;
	act_on_loss(b, now);
}

/*
 * Every HEARTBEAT_PERIOD_MS: the running VMs whose agent has its port
 * open are pinged; between, their answers are read as they come. Clocks
 * are checked after the pings, only where the agent answers them.
 */
void guest_os_poll(void)
{
	for (unsigned i = 0; i < HEARTBEAT_VMS; i++) {
		struct heartbeat *b = &beats[i];
		uint32_t taken, status;
		long r;
		if (!b->vm[0] || !b->in_flight || vm_has_call(b->vm))
			continue;
		r = agent_io(b->vm, NULL, 0, beat_io, sizeof(beat_io), &taken, &status);
		if (r > 0)
			guest_os_poll_bytes(b->vm, beat_io, (size_t)r);
	}
	if (mgmt_now_ms() < next_ping_ms)
		return;
	next_ping_ms = mgmt_now_ms() + HEARTBEAT_PERIOD_MS;

	uint8_t list[PROTO_MAX_PAYLOAD], req[16];
	bool listed[HEARTBEAT_VMS] = { false };
	uint32_t cursor = 0;
	/* Page by page: a full page ends with where the next one starts. */
	for (unsigned page = 0; page < HEARTBEAT_VMS; page++) {
		struct tlv_writer w;
		struct tlv_reader r;
		struct tlv t;
		size_t len = 0;
		tlv_writer_init(&w, req, sizeof(req));
		tlv_put_u32(&w, API_TAG_CURSOR, cursor);
		if (mgmt_control(API_REQ_LIST_VIRTUAL_MACHINES, req, w.len, list, &len) != API_E_OK)
			return;
		tlv_reader_init(&r, list, len);
		while (tlv_next(&r, &t))
			heartbeat_pass_vm(&t, listed);
		if (tlv_get_u32(list, len, API_TAG_CURSOR, &cursor) != TLV_OK)
			break;
	}
	for (unsigned i = 0; i < HEARTBEAT_VMS; i++) {
		/*
		 * A VM deleted or not running starts its record afresh; two
		 * passes, as a deletion between two pages can skip one once.
		 */
		if (!listed[i] && beats[i].vm[0] && ++beats[i].unlisted >= 2)
			beats[i].vm[0] = '\0';
		else if (listed[i] && !beats[i].missed && beats[i].last_seen_ms)
			check_clock(&beats[i], mgmt_now_ms());
	}
}
