/*
 * The management VM: a guest of the hypervisor that owns the physical
 * serial line. It speaks both ways in of docs/protocol.md on it, the human
 * shell and the framed mode, keeps the session (mode, authentication,
 * event subscription, replay cache) and hands every request to the
 * hypervisor with HC_CONTROL (include/abi/hypercall.h), which executes it
 * (vmm/control.c). Built on the test guests' runtime (tests/guests/lib):
 * started in long mode, one vCPU, no devices besides the hypercalls.
 *
 * Everything that arrives on the line is hostile: it goes through the
 * frame decoder (bounded, CRC-checked) and the shell's parser, and the
 * hypervisor checks every request again.
 */
#include "guest.h"

#include "lib/fmt.h"
#include "lib/le.h"
#include "abi/api.h"
#include "mgmt/proto.h"
#include "mgmt/session.h"
#include "mgmt/sha256.h"
#include "mgmt/vm/guest_os.h"
#include "mgmt/vm/mgmt_vm.h"
#include "mgmt/vm/shell.h"

#include <stdarg.h>
#include <string.h>

#define UPCALL_VECTOR 0x40
/* How often the VM looks at its clocks when nothing arrives: console, timeouts. */
#define TICK_MS 50
/* docs/protocol.md "Timeouts": a frame is sent in one burst. */
#define FRAME_TIMEOUT_MS 500
#define AUTH_BACKOFF_FIRST_MS 1000
#define AUTH_BACKOFF_MAX_MS 60000
/* A person at the shell who typed nothing this long must authenticate again. */
#define SHELL_IDLE_MS (5 * 60 * 1000)
#define CONSOLE_CHUNK 768
#define EVENTS_BATCH 8
#define PROMPT "vmm> "

static struct hc_mgmt_info info;
static struct proto_decoder dec;
static struct proto_replay replay;
static struct shell_line editor;
static struct shell_cmd cmd;
static uint8_t wire[PROTO_MAX_WIRE];
static uint8_t answer[PROTO_MAX_PAYLOAD];

static bool framed;
/* Counts the line's changes of hands: an answer that comes later goes to the hands it came from. */
static uint32_t line_epoch;
static uint64_t nonce_count;
static uint64_t auth_blocked_until;
static uint32_t auth_backoff_ms;
static uint32_t auth_failures;
static uint32_t refused_unauthenticated;

/*
 * With a key, each client on the line has its own session (mgmt/session.h)
 * and signs every request. The person at the shell cannot sign: the shell
 * is authenticated as a whole, until `shell_idle` passes without a command.
 */
static struct session_table sessions;
static bool shell_authed;
static uint64_t shell_last_ms;
static uint8_t shell_nonce[SESSION_NONCE_SIZE];
static bool shell_nonce_valid;

/* What a client is subscribed to (SubscribeEvents). */
struct subscription {
	bool state;
	char console[API_NAME_MAX + 1];
	uint32_t console_id;
	uint64_t console_offset;
};

/*
 * One per session; the line's own when no key is configured (everyone on
 * it is one client); the shell's. Those of the mode not in use are empty.
 */
static struct subscription subs[SESSION_SLOTS + 2];
#define LINE_SUB (&subs[SESSION_SLOTS])
#define SHELL_SUB (&subs[SESSION_SLOTS + 1])
static uint64_t seq_seen;

/* Who sent a request, once its signature (if any) is checked. */
struct client {
	enum { CLIENT_SHELL, CLIENT_LINE, CLIENT_SESSION, CLIENT_UNSIGNED } kind;
	unsigned slot; /* CLIENT_SESSION */
	struct subscription *sub;
};

/* What a request answered later (a guest agent call) needs kept to be answered. */
struct origin {
	uint32_t epoch;
	uint32_t frame_id;
	bool shell;
};
_Static_assert(sizeof(struct origin) <= GUEST_OS_ORIGIN_MAX, "origin fits guest_os's room");

static char text_buf[HC_LINE_MAX];
static size_t text_len;

static uint64_t ms_to_tsc(uint64_t ms)
{
	return info.tsc_hz / 1000 * ms;
}

uint64_t mgmt_now_ms(void)
{
	return rdtsc() / (info.tsc_hz / 1000);
}

static void on_upcall(void)
{
	/* Only wakes the HLT in mgmt_wait(); the loop looks at everything. */
}

void mgmt_wait(void)
{
	if (guest_os_yield())
		return;
	vmcall(HC_SET_TIMER, rdtsc() + ms_to_tsc(TICK_MS), 0, 0);
	__asm__ volatile("sti; hlt" ::: "memory");
}

static void line_put(const void *p, size_t n, uint64_t kind)
{
	/* The console queue is full while the UART catches up: wait for it. */
	while (vmcall(HC_LINE_WRITE, (uint64_t)(uintptr_t)p, n, kind) == HC_EAGAIN)
		mgmt_wait();
}

static void text_flush(void)
{
	if (text_len)
		line_put(text_buf, text_len, HC_LINE_TEXT);
	text_len = 0;
}

static void text(const char *s, size_t n)
{
	while (n) {
		if (text_len == sizeof(text_buf))
			text_flush();
		size_t k = sizeof(text_buf) - text_len < n ? sizeof(text_buf) - text_len : n;
		memcpy(text_buf + text_len, s, k);
		text_len += k;
		s += k;
		n -= k;
	}
}

static void textf(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void textf(const char *format, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, format);
	int n = fmt_vsnprintf(buf, sizeof(buf), format, ap);
	va_end(ap);
	text(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void text_out(void *ctx, const char *s, size_t n)
{
	(void)ctx;
	text(s, n);
}

/* A frame goes out whole: text queued before it goes first. */
static void send_frame(uint8_t type, uint32_t id, uint16_t code, const uint8_t *payload,
		       size_t len)
{
	struct proto_frame f = { .type = type, .id = id, .code = code, .length = (uint16_t)len,
				 .payload = payload };
	int n = proto_encode(wire, sizeof(wire), &f);

	text_flush();
	if (n > 0)
		line_put(wire, (size_t)n, HC_LINE_FRAME);
}

uint16_t mgmt_error(uint8_t *out, size_t *len, uint16_t error, const char *message,
		    uint32_t retry_after_ms)
{
	struct tlv_writer w;

	tlv_writer_init(&w, out, PROTO_MAX_PAYLOAD);
	tlv_put_u16(&w, API_TAG_ERROR, error);
	tlv_put_str(&w, API_TAG_MESSAGE, message);
	if (retry_after_ms)
		tlv_put_u32(&w, API_TAG_RETRY_AFTER_MS, retry_after_ms);
	*len = w.len;
	return error;
}

/* HC_CONTROL: the hypervisor executes the request between two vCPU runs. */
uint16_t mgmt_control(uint16_t request, const uint8_t *payload, size_t len, uint8_t *out,
		      size_t *out_len)
{
	/* The caller's own: calls on fibers wait for their answers side by side. */
	struct hc_control ctl;
	long r;

	if (len > sizeof(ctl.payload))
		return mgmt_error(out, out_len, API_E_BAD_FRAME, "payload too long", 0);
	ctl.version = HC_CONTROL_VERSION;
	ctl.request = request;
	ctl.length = (uint16_t)len;
	memcpy(ctl.payload, payload, len);
	__atomic_store_n(&ctl.error, HC_CONTROL_UNANSWERED, __ATOMIC_RELEASE);
	while ((r = vmcall(HC_CONTROL, (uint64_t)(uintptr_t)&ctl, 0, 0)) == HC_EAGAIN)
		mgmt_wait();
	if (r < 0)
		return mgmt_error(out, out_len, API_E_INTERNAL, "HC_CONTROL refused", 0);
	while (__atomic_load_n(&ctl.error, __ATOMIC_ACQUIRE) == HC_CONTROL_UNANSWERED)
		mgmt_wait();
	/* The hypervisor is trusted, but a length is bounded by its destination all the same. */
	*out_len = ctl.length < PROTO_MAX_PAYLOAD ? ctl.length : PROTO_MAX_PAYLOAD;
	memcpy(out, ctl.payload, *out_len);
	return ctl.error;
}

/* --- Events ---------------------------------------------------------------- */

static void send_event(uint16_t code, const uint8_t *payload, size_t len)
{
	send_frame(PROTO_EVENT, 0, code, payload, len);
}

static void state_event(const struct hc_event *e)
{
	if (!framed) {
		textf("event %llu: %s %s%s%s%s\n", (unsigned long long)e->seq, e->vm,
		      vm_state_name((enum vm_state)e->state), e->reason[0] ? " (" : "", e->reason,
		      e->reason[0] ? ")" : "");
		return;
	}
	uint8_t p[PROTO_MAX_PAYLOAD];
	struct tlv_writer w;
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_u64(&w, API_TAG_SEQ, e->seq);
	tlv_put_u32(&w, API_TAG_VM_ID, e->vm_id);
	tlv_put_str(&w, API_TAG_VM, e->vm);
	tlv_put_u8(&w, API_TAG_STATE, e->state);
	if (e->reason[0])
		tlv_put_str(&w, API_TAG_REASON, e->reason);
	send_event(API_EVENT_VM_STATE_CHANGE, p, w.len);
}

static void events_lost(uint64_t first, uint64_t lost)
{
	if (!framed) {
		textf("events %llu..%llu were lost\n", (unsigned long long)first,
		      (unsigned long long)(first + lost - 1));
		return;
	}
	uint8_t p[32];
	struct tlv_writer w;
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_u64(&w, API_TAG_SEQ, first);
	tlv_put_u64(&w, API_TAG_LOST, lost);
	send_event(API_EVENT_EVENTS_LOST, p, w.len);
}

static bool anyone_follows_state(void)
{
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (subs[i].state)
			return true;
	return false;
}

void mgmt_guest_event(uint16_t code, const uint8_t *payload, size_t len, const char *text)
{
	if (!anyone_follows_state())
		return;
	if (framed)
		send_event(code, payload, len);
	else
		textf("event: %s\n", text);
}

/* Everything after seq_seen: sent when someone is subscribed, skipped otherwise. */
static void pump_events(void)
{
	static struct hc_event ev[EVENTS_BATCH];
	long n;

	while ((n = vmcall(HC_EVENTS, seq_seen, (uint64_t)(uintptr_t)ev, EVENTS_BATCH)) > 0) {
		bool follow = anyone_follows_state();
		for (long i = 0; i < n; i++) {
			if (follow && ev[i].seq > seq_seen + 1)
				events_lost(seq_seen + 1, ev[i].seq - seq_seen - 1);
			if (follow)
				state_event(&ev[i]);
			seq_seen = ev[i].seq;
		}
	}
}

/* Guest output for a person's terminal: printable text and line ends, never escapes. */
static void text_safe(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = (v[i] >= 0x20 && v[i] < 0x7f) || v[i] == '\n' ? (char)v[i] : '.';
		text(&c, 1);
	}
}

/* A followed console: ConsoleRead from where the last one ended. */
static void pump_console(struct subscription *sub)
{
	uint8_t req[64], p[PROTO_MAX_PAYLOAD];
	struct tlv_writer w;
	const uint8_t *data;
	size_t n, len;
	uint64_t offset, next;

	if (!sub->console[0])
		return;
	tlv_writer_init(&w, req, sizeof(req));
	tlv_put_str(&w, API_TAG_VM, sub->console);
	tlv_put_u64(&w, API_TAG_OFFSET, sub->console_offset);
	tlv_put_u32(&w, API_TAG_MAX_BYTES, CONSOLE_CHUNK);
	if (mgmt_control(API_REQ_CONSOLE_READ, req, w.len, answer, &len) != API_E_OK ||
	    tlv_get_bytes(answer, len, API_TAG_DATA, &data, &n) != TLV_OK || !n ||
	    tlv_get_u64(answer, len, API_TAG_OFFSET, &offset) != TLV_OK ||
	    tlv_get_u64(answer, len, API_TAG_NEXT_OFFSET, &next) != TLV_OK)
		return;
	sub->console_offset = next;
	if (!framed) {
		text_safe(data, n);
		return;
	}
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_u32(&w, API_TAG_VM_ID, sub->console_id);
	tlv_put_str(&w, API_TAG_VM, sub->console);
	tlv_put_u64(&w, API_TAG_OFFSET, offset);
	tlv_put(&w, API_TAG_DATA, data, n);
	send_event(API_EVENT_CONSOLE_OUTPUT, p, w.len);
}

static void pump_consoles(void)
{
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		pump_console(&subs[i]);
}

/* --- Session requests --------------------------------------------------------- */

static void end_shell_auth(void)
{
	shell_authed = false;
	shell_nonce_valid = false;
}

/* The line changes hands (a mode switch): every client's session and subscription ends. */
static void end_all_sessions(void)
{
	session_close_all(&sessions);
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		subs[i] = (struct subscription){ 0 };
	end_shell_auth();
	line_epoch++;
}

/*
 * Unpredictable without the key: a hash of the key, a counter and the TSC.
 * A nonce is good for one answer.
 */
static void fresh_nonce(uint8_t out[SESSION_NONCE_SIZE])
{
	struct sha256 s;
	uint64_t seed[2] = { ++nonce_count, rdtsc() };

	sha256_init(&s);
	sha256_update(&s, info.auth_key, info.auth_key_len);
	sha256_update(&s, seed, sizeof(seed));
	sha256_final(&s, out);
}

static uint16_t auth_challenge(const struct client *cl, uint8_t *out, size_t *len)
{
	uint8_t nonce[SESSION_NONCE_SIZE];
	struct tlv_writer w;

	if (!info.auth_key_len)
		return mgmt_error(out, len, API_E_NOT_SUPPORTED, "no key is configured", 0);
	fresh_nonce(nonce);
	tlv_writer_init(&w, out, PROTO_MAX_PAYLOAD);
	tlv_put(&w, API_TAG_NONCE, nonce, sizeof(nonce));
	if (cl->kind == CLIENT_SHELL) {
		/* A new challenge replaces the shell's previous one. */
		memcpy(shell_nonce, nonce, sizeof(nonce));
		shell_nonce_valid = true;
	} else {
		unsigned slot = session_open(&sessions, nonce, mgmt_now_ms());
		subs[slot] = (struct subscription){ 0 };
		tlv_put_u32(&w, API_TAG_SESSION, sessions.slot[slot].id);
	}
	*len = w.len;
	return API_E_OK;
}

static void auth_failed(void)
{
	auth_failures++;
	auth_backoff_ms = !auth_backoff_ms ? AUTH_BACKOFF_FIRST_MS
			  : auth_backoff_ms * 2 > AUTH_BACKOFF_MAX_MS ? AUTH_BACKOFF_MAX_MS
								      : auth_backoff_ms * 2;
	auth_blocked_until = rdtsc() + ms_to_tsc(auth_backoff_ms);
	/* Through the debug console into the hypervisor's log, not onto the session. */
	put("mgmt: wrong authentication answer (");
	put_u64(auth_failures);
	put(" failure(s))\n");
}

static uint16_t auth_response(const struct client *cl, const uint8_t *p, size_t n, uint8_t *out,
			      size_t *len)
{
	uint8_t want[SHA256_SIZE];
	const uint8_t *mac;
	size_t mac_len;
	uint64_t now = rdtsc();
	uint32_t id;
	unsigned slot;

	if (!info.auth_key_len)
		return mgmt_error(out, len, API_E_NOT_SUPPORTED, "no key is configured", 0);
	if (now < auth_blocked_until)
		return mgmt_error(out, len, API_E_BUSY, "AuthResponse: too many wrong answers",
				   (uint32_t)((auth_blocked_until - now) / ms_to_tsc(1)) + 1);
	if (tlv_get_bytes(p, n, API_TAG_AUTH_MAC, &mac, &mac_len) != TLV_OK)
		return mgmt_error(out, len, API_E_INVALID_ARGUMENT, "AuthResponse: missing auth_mac",
				   0);
	*len = 0;
	if (cl->kind != CLIENT_SHELL) {
		if (tlv_get_u32(p, n, API_TAG_SESSION, &id) != TLV_OK)
			return mgmt_error(out, len, API_E_INVALID_ARGUMENT,
					   "AuthResponse: missing session", 0);
		enum session_verdict v = session_answer(&sessions, id, info.auth_key,
							info.auth_key_len, mac, mac_len, mgmt_now_ms(),
							&slot);
		if (v == SESSION_OK) {
			auth_backoff_ms = 0;
			return API_E_OK;
		}
		if (v == SESSION_BAD_MAC)
			auth_failed();
		return mgmt_error(out, len, API_E_PERMISSION_DENIED, session_verdict_text(v), 0);
	}
	if (!shell_nonce_valid)
		return mgmt_error(out, len, API_E_PERMISSION_DENIED,
				   "AuthResponse: ask for a challenge first", 0);
	shell_nonce_valid = false;
	hmac_sha256(info.auth_key, info.auth_key_len, shell_nonce, sizeof(shell_nonce), want);
	if (mac_len == SHA256_SIZE && sha256_equal(mac, want, SHA256_SIZE)) {
		shell_authed = true;
		auth_backoff_ms = 0;
		return API_E_OK;
	}
	auth_failed();
	return mgmt_error(out, len, API_E_PERMISSION_DENIED, "AuthResponse: wrong answer", 0);
}

static bool authenticated(const struct client *cl)
{
	switch (cl->kind) {
	case CLIENT_LINE:
	case CLIENT_SESSION:
		return true;
	case CLIENT_SHELL:
		return shell_authed;
	case CLIENT_UNSIGNED:
		break;
	}
	return false;
}

static uint16_t subscribe(struct subscription *sub, const uint8_t *p, size_t n, uint8_t *out,
			  size_t *len)
{
	char name[API_NAME_MAX + 1] = "";
	uint8_t on = 0, req[64], found[PROTO_MAX_PAYLOAD];
	uint32_t id = 0;
	uint64_t seq;
	size_t found_len;
	struct tlv_writer w;
	uint16_t e = mgmt_control(API_REQ_SUBSCRIBE_EVENTS, p, n, out, len);

	if (e != API_E_OK)
		return e;
	tlv_get_u8(p, n, API_TAG_STATE_EVENTS, &on);
	if (tlv_get_str(p, n, API_TAG_CONSOLE_VM, name, sizeof(name)) == TLV_OK) {
		tlv_writer_init(&w, req, sizeof(req));
		tlv_put_str(&w, API_TAG_VM, name);
		if (mgmt_control(API_REQ_FIND_VIRTUAL_MACHINE, req, w.len, found, &found_len) == API_E_OK)
			tlv_get_u32(found, found_len, API_TAG_VM_ID, &id);
	}
	/* The next event sent is the one after the answer's seq. */
	pump_events();
	if (tlv_get_u64(out, *len, API_TAG_SEQ, &seq) == TLV_OK && seq > seq_seen)
		seq_seen = seq;
	sub->state = on;
	memcpy(sub->console, name, sizeof(sub->console));
	sub->console_id = id;
	sub->console_offset = 0;
	return API_E_OK;
}

/*
 * One request, however it arrived, checked in the order docs/protocol.md
 * gives: payload, code, authentication, then the call itself.
 */
static uint16_t execute(const struct client *cl, const struct origin *origin, uint16_t rq,
			const uint8_t *p, size_t n, uint8_t *out, size_t *len)
{
	struct tlv_writer w;

	if (!api_payload_valid(p, n))
		return mgmt_error(out, len, API_E_BAD_FRAME, "malformed payload", 0);
	if (!api_request_name(rq))
		return mgmt_error(out, len, API_E_UNKNOWN_REQUEST, "unknown request", 0);
	if (info.auth_key_len && !authenticated(cl) && !session_open_request(rq))
		return mgmt_error(out, len, API_E_PERMISSION_DENIED, "authentication required", 0);
	switch (rq) {
	case API_REQ_AUTH_CHALLENGE:
		return auth_challenge(cl, out, len);
	case API_REQ_AUTH_RESPONSE:
		return auth_response(cl, p, n, out, len);
	case API_REQ_GOODBYE:
		*len = 0;
		return API_E_OK;
	case API_REQ_SUBSCRIBE_EVENTS:
		return subscribe(cl->sub, p, n, out, len);
	case API_REQ_HELLO: {
		uint16_t e = mgmt_control(rq, p, n, out, len);
		if (e != API_E_OK)
			return e;
		w = (struct tlv_writer){ .buf = out, .cap = PROTO_MAX_PAYLOAD, .len = *len };
		tlv_put_u8(&w, API_TAG_AUTH_REQUIRED, info.auth_key_len != 0);
		*len = w.len;
		return API_E_OK;
	}
	default:
		/* IVMGuestOS is spoken here, with the agent: the hypervisor never parses it. */
		if (guest_os_handles(rq))
			return guest_os_request(rq, p, n, out, len, origin, sizeof(*origin));
		return mgmt_control(rq, p, n, out, len);
	}
}

/* --- The two ways in ----------------------------------------------------------- */

static void set_mode(bool to_framed)
{
	if (framed != to_framed)
		end_all_sessions();
	framed = to_framed;
	/* Framed mode keeps a line editor for the escape line, without echo. */
	shell_line_init(&editor, framed ? NULL : text_out, NULL);
	if (!framed)
		text(PROMPT, sizeof(PROMPT) - 1);
}

/* The answer to f, payload[0..len), encoded into `wire`: its length, or negative. */
static int encode_answer(const struct proto_frame *f, uint16_t e, const uint8_t *payload,
			 size_t len)
{
	struct proto_frame a = { .type = e == API_E_OK ? PROTO_RESPONSE : PROTO_ERROR,
				 .id = f->id, .code = f->code, .length = (uint16_t)len,
				 .payload = payload };

	return proto_encode(wire, sizeof(wire), &a);
}

static void send_wire(int n)
{
	if (n < 0)
		return;
	text_flush();
	line_put(wire, (size_t)n, HC_LINE_FRAME);
}

/* The answer to request f, after every event up to it, kept for a retransmission; sent when send. */
static void answer_frame(const struct proto_frame *f, uint16_t e, const uint8_t *payload,
			 size_t len, bool send)
{
	/* A subscriber sees every event up to the answer's seq before the answer. */
	if (send)
		pump_events();
	int n = encode_answer(f, e, payload, len);
	if (n < 0)
		return;
	proto_replay_store(&replay, f, wire, (size_t)n);
	if (send)
		send_wire(n);
}

static void on_frame(const struct proto_frame *f)
{
	struct session_admission a;
	struct client cl = { .kind = CLIENT_LINE, .sub = LINE_SUB };
	struct origin origin;
	size_t len = 0;
	uint16_t e = API_E_INTERNAL;

	if (f->type != PROTO_REQUEST)
		return;
	switch (session_admit(&sessions, &replay, f, info.auth_key_len != 0, mgmt_now_ms(), &a)) {
	case SESSION_ADMIT_REFUSE:
		e = a.why == SESSION_MALFORMED ? API_E_BAD_FRAME : API_E_PERMISSION_DENIED;
		/* Counted, and said when the count reaches a power of two: a flood cannot fill the log. */
		refused_unauthenticated += e == API_E_PERMISSION_DENIED;
		if (e == API_E_PERMISSION_DENIED &&
		    !(refused_unauthenticated & (refused_unauthenticated - 1))) {
			put("mgmt: refused an unauthenticated request (");
			put_u64(refused_unauthenticated);
			put(" so far)\n");
		}
		mgmt_error(answer, &len, e, session_verdict_text(a.why), 0);
		send_wire(encode_answer(f, e, answer, len));
		return;
	case SESSION_ADMIT_REPLAY:
		text_flush();
		line_put(a.wire, a.len, HC_LINE_FRAME);
		return;
	case SESSION_ADMIT_DROP:
		return;
	case SESSION_ADMIT_STALE:
		e = mgmt_error(answer, &len, API_E_PERMISSION_DENIED, session_verdict_text(a.why), 0);
		break;
	case SESSION_ADMIT_EXECUTE:
		if (a.signed_by_session)
			cl = (struct client){ .kind = CLIENT_SESSION, .slot = a.slot,
					      .sub = &subs[a.slot] };
		else if (info.auth_key_len)
			cl = (struct client){ .kind = CLIENT_UNSIGNED };
		origin = (struct origin){ .epoch = line_epoch, .frame_id = f->id };
		e = execute(&cl, &origin, f->code, f->payload, f->length, answer, &len);
		/* Its replay slot stays executing: a retransmission meanwhile is dropped. */
		if (e == GUEST_OS_LATER)
			return;
		break;
	}
	if (f->code == API_REQ_HELLO && e == API_E_OK && !framed) {
		/* The answer is the first thing of framed mode: no echo, no prompt. */
		end_all_sessions();
		framed = true;
		shell_line_init(&editor, NULL, NULL);
	}
	answer_frame(f, e, answer, len, true);
	if (f->code != API_REQ_GOODBYE || e != API_E_OK || !framed)
		return;
	/* Goodbye ends its sender's session; the shell comes back when nobody is left. */
	if (cl.kind == CLIENT_SESSION) {
		session_close(&sessions, cl.slot);
		subs[cl.slot] = (struct subscription){ 0 };
	}
	if (!session_any_active(&sessions, mgmt_now_ms()))
		set_mode(false);
}

static void put_value(enum api_type type, uint8_t tag, const uint8_t *v, size_t n);

static void print_tlvs(const uint8_t *p, size_t n, unsigned depth)
{
	struct tlv_reader r;
	struct tlv t;
	enum api_type type;

	tlv_reader_init(&r, p, n);
	while (tlv_next(&r, &t)) {
		const char *name = api_tag_name(t.tag);
		if (!name || !api_tag_type(t.tag, &type))
			continue;
		if (type == API_T_LIST) {
			text(depth ? " " : "", depth ? 1 : 0);
			print_tlvs(t.value, t.len, depth + 1);
			if (!depth)
				text("\n", 1);
			continue;
		}
		if (depth)
			textf(" %s=", name);
		else
			textf("%s: ", name);
		put_value(type, t.tag, t.value, t.len);
		if (!depth)
			text("\n", 1);
	}
}

static void put_value(enum api_type type, uint8_t tag, const uint8_t *v, size_t n)
{
	switch (type) {
	case API_T_U8:
		if (tag == API_TAG_STATE) {
			textf("%s", vm_state_name((enum vm_state)v[0]));
			break;
		}
		/* fall through */
	case API_T_U16:
	case API_T_U32:
	case API_T_U64:
		textf("%llu", (unsigned long long)le_get(v, n));
		break;
	case API_T_SIZE: {
		uint64_t bytes = le_get(v, n);
		if (bytes && bytes % (1024 * 1024) == 0)
			textf("%lluM", (unsigned long long)(bytes >> 20));
		else
			textf("%llu", (unsigned long long)bytes);
		break;
	}
	case API_T_BOOL:
		textf("%s", v[0] ? "yes" : "no");
		break;
	case API_T_STR:
	case API_T_NAME:
		text((const char *)v, n);
		break;
	case API_T_BYTES:
		/* Guest output: printable text and line ends only, never terminal escapes. */
		for (size_t i = 0; i < n; i++) {
			char c = (v[i] >= 0x20 && v[i] < 0x7f) || v[i] == '\n' ? (char)v[i] : '.';
			text(&c, 1);
		}
		break;
	case API_T_HEX:
		for (size_t i = 0; i < n; i++)
			textf("%02x", v[i]);
		break;
	case API_T_MAC:
		textf("%02x:%02x:%02x:%02x:%02x:%02x", v[0], v[1], v[2], v[3], v[4], v[5]);
		break;
	case API_T_IPV4:
	case API_T_IPV4_RANGE:
	case API_T_IPV4_LIST:
		for (size_t i = 0; i + 4 <= n; i += 4)
			textf("%s%u.%u.%u.%u", !i ? "" : type == API_T_IPV4_RANGE ? "-" : ",",
			      v[i], v[i + 1], v[i + 2], v[i + 3]);
		break;
	case API_T_LIST:
		break;
	}
}

/* The shell's answer to request rq. */
static void show_answer(uint16_t rq, uint16_t e, const uint8_t *payload, size_t len)
{
	char message[API_STR_MAX + 1];

	pump_events();
	if (e != API_E_OK) {
		if (tlv_get_str(payload, len, API_TAG_MESSAGE, message, sizeof(message)) != TLV_OK)
			message[0] = '\0';
		textf("error: %s: %s\n", api_error_name(e), message);
		return;
	}
	if (rq == API_REQ_GOODBYE) {
		end_shell_auth();
		*SHELL_SUB = (struct subscription){ 0 };
	}
	print_tlvs(payload, len, 0);
	if (!len)
		text("ok\n", 3);
}

void mgmt_answer_later(const void *origin, uint16_t rq, const uint8_t *payload, size_t n,
		       uint16_t e, const uint8_t *answer_payload, size_t len)
{
	struct origin o;

	memcpy(&o, origin, sizeof(o));
	/* The line changed hands meanwhile: nobody there waits for this answer now. */
	bool same_hands = o.epoch == line_epoch && o.shell != framed;
	if (o.shell) {
		if (same_hands) {
			show_answer(rq, e, answer_payload, len);
			text(PROMPT, sizeof(PROMPT) - 1);
		}
		return;
	}
	/*
	 * Kept for a retransmission either way: its replay slot waits for it,
	 * and a client that comes back with the same request gets the answer.
	 */
	struct proto_frame f = { .type = PROTO_REQUEST, .id = o.frame_id, .code = rq,
				 .length = (uint16_t)n, .payload = payload };
	answer_frame(&f, e, answer_payload, len, same_hands);
}

/* Runs a shell line; false when its answer comes later (with the prompt after it). */
static bool run_line(const char *line, size_t n)
{
	size_t len;

	if (shell_parse(&cmd, line, n) != SHELL_OK) {
		textf("%s\n", cmd.error);
		return true;
	}
	if (cmd.kind == SHELL_HELP) {
		shell_help(cmd.topic, cmd.topic_count, text_out, NULL);
		return true;
	}
	if (cmd.kind != SHELL_REQUEST)
		return true;
	uint64_t now = mgmt_now_ms();
	if (shell_authed && now - shell_last_ms > SHELL_IDLE_MS) {
		end_shell_auth();
		textf("authentication ended: idle for over %u minutes\n", SHELL_IDLE_MS / 60000);
	}
	shell_last_ms = now;
	struct client shell = { .kind = CLIENT_SHELL, .sub = SHELL_SUB };
	struct origin origin = { .epoch = line_epoch, .shell = true };
	uint16_t e = execute(&shell, &origin, cmd.request, cmd.payload, cmd.payload_len, answer,
			     &len);
	if (e == GUEST_OS_LATER)
		return false;
	show_answer(cmd.request, e, answer, len);
	return true;
}

static void on_text(void *ctx, const uint8_t *s, size_t n)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++) {
		switch (shell_line_feed(&editor, s[i])) {
		case SHELL_LINE_PENDING:
			break;
		case SHELL_LINE_READY:
			if (framed) {
				if (!strcmp(editor.buf, API_SHELL_ESCAPE_LINE))
					set_mode(false);
				else if (editor.len)
					text("framed mode: type 'shell' and Enter for the shell\n", 51);
				break;
			}
			if (run_line(editor.buf, editor.len))
				text(PROMPT, sizeof(PROMPT) - 1);
			break;
		case SHELL_LINE_CANCELLED:
			if (!framed)
				text("\n" PROMPT, sizeof(PROMPT));
			break;
		case SHELL_LINE_TOO_LONG:
			if (!framed)
				textf("line too long (more than %u characters)\n" PROMPT, SHELL_LINE_MAX);
			break;
		}
	}
}

int main(void)
{
	uint8_t buf[512];
	uint64_t last_rx = 0, next_tick = 0;

	vmcall(HC_MGMT_INFO, (uint64_t)(uintptr_t)&info, 0, 0);
	if (!info.tsc_hz)
		info.tsc_hz = 1000000000ULL;
	set_irq_handler(UPCALL_VECTOR, on_upcall);
	vmcall(HC_SET_UPCALL_VECTOR, UPCALL_VECTOR, 0, 0);
	proto_decoder_init(&dec, on_text, NULL);
	proto_replay_init(&replay);
	/* Session ids of an earlier boot must not name a session of this one. */
	session_table_init(&sessions, (uint32_t)(rdtsc() ^ rdtsc() >> 32));
	pump_events();
	put("mgmt: management VM up; shell on the serial line\n");
	text("\nvmm management shell: 'help' lists the commands\n", 50);
	set_mode(false);
	for (;;) {
		long n = vmcall(HC_LINE_READ, (uint64_t)(uintptr_t)buf, sizeof(buf), 0);
		uint64_t now = rdtsc();
		if (n > 0) {
			const uint8_t *p = buf;
			size_t left = (size_t)n;
			struct proto_frame f;
			last_rx = now;
			while (proto_decode(&dec, &p, &left, &f))
				on_frame(&f);
		} else if (dec.in_frame && now - last_rx > ms_to_tsc(FRAME_TIMEOUT_MS)) {
			/* The peer stopped mid-frame: drop it and resynchronise. */
			proto_decoder_reset(&dec);
		}
		pump_events();
		guest_os_run();
		guest_os_poll();
		if (now >= next_tick) {
			pump_consoles();
			next_tick = now + ms_to_tsc(TICK_MS);
		}
		text_flush();
		if (n <= 0)
			mgmt_wait();
	}
}
