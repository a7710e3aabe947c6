/*
 * The session of vmmctl over one byte stream (docs/protocol.md): the frame
 * decoder with its inter-byte timeout, request ids, retries with the same
 * id, events queued while an answer is awaited, stale and duplicated
 * answers ignored, and Hello, authentication and Goodbye. Only an fd: the
 * same code runs over a serial port, a socket, or a socketpair in tests.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* cfmakeraw, CRTSCTS, the higher baud rates */
#endif
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgmt/vmmctl/vmmctl.h"

#define VMMCTL_SOFTWARE "vmmctl 0.1.0"

int64_t vmmctl_now_ms(const struct vmmctl_conn *c)
{
	struct timespec ts;

	if (c && c->now_ms)
		return c->now_ms();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Log text from the line: never a control sequence on the user's terminal. */
static void on_text(void *ctx, const uint8_t *text, size_t len)
{
	struct vmmctl_conn *c = ctx;

	if (!c->log)
		return;
	for (size_t i = 0; i < len; i++) {
		uint8_t b = text[i];

		if (b == '\n') {
			fputs(c->log_crlf ? "\r\n" : "\n", c->log);
			c->log_bol = true;
			continue;
		}
		if (b == '\r')
			continue;
		c->log_bol = false;
		if (b == '\t' || (b >= 0x20 && b <= 0x7e && b != '\\'))
			fputc(b, c->log);
		else if (b == '\\')
			fputs("\\\\", c->log);
		else
			fprintf(c->log, "\\x%02x", b);
	}
	fflush(c->log);
}

void vmmctl_conn_init(struct vmmctl_conn *c, int fd, uint32_t first_id)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->next_id = first_id;
	c->retries = VMMCTL_RETRIES;
	c->log_bol = true;
	proto_decoder_init(&c->dec, on_text, c);
}

int vmmctl_default_timeout_ms(uint16_t request)
{
	if (api_request_waits_for_agent(request))
		return VMMCTL_AGENT_TIMEOUT_MS;
	switch (request) {
	case API_REQ_STARTUP:
	case API_REQ_RESET:
	case API_REQ_TURN_OFF:
	case API_REQ_CREATE_VIRTUAL_MACHINE:
	case API_REQ_DELETE_VIRTUAL_NETWORK:
		return VMMCTL_SLOW_TIMEOUT_MS;
	default:
		return VMMCTL_TIMEOUT_MS;
	}
}

bool vmmctl_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			/* A line that takes no byte for 5 s is as good as gone. */
			if (poll(&pfd, 1, 5000) <= 0)
				return false;
			continue;
		}
		return false;
	}
	return true;
}

static bool interrupted(const struct vmmctl_conn *c)
{
	return c->interrupted && *c->interrupted;
}

/*
 * Waits up to timeout_ms (-1: forever) for bytes and reads them into rbuf.
 * 1: bytes read; 0: timeout; negative: -VMMCTL_CALL_CLOSED or _INTR.
 */
static int read_some(struct vmmctl_conn *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int rc;

	if (c->fd < 0)
		return -VMMCTL_CALL_CLOSED;
	if (interrupted(c))
		return -VMMCTL_CALL_INTR;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? (interrupted(c) ? -VMMCTL_CALL_INTR : 0)
				      : -VMMCTL_CALL_CLOSED;
	if (rc == 0)
		return 0;
	if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	c->rpos = 0;
	c->rlen = 0;
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf, sizeof(c->rbuf));

		if (n > 0) {
			c->rlen = (size_t)n;
			c->last_byte_ms = vmmctl_now_ms(c);
			return 1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -VMMCTL_CALL_CLOSED; /* EOF or error: the line dropped */
	}
}

/*
 * The next frame until deadline_ms (-1: none). 1 with *f; 0 on timeout;
 * negative on a dropped line or an interruption. Text goes to the log.
 */
static int next_frame(struct vmmctl_conn *c, int64_t deadline_ms, struct vmmctl_frame *f)
{
	bool last_look = false;

	for (;;) {
		if (c->rpos < c->rlen) {
			const uint8_t *p = c->rbuf + c->rpos;
			size_t n = c->rlen - c->rpos;
			struct proto_frame pf;
			bool got = proto_decode(&c->dec, &p, &n, &pf);

			c->rpos = c->rlen - n;
			if (got) {
				f->type = pf.type;
				f->flags = pf.flags;
				f->code = pf.code;
				f->id = pf.id;
				f->length = pf.length <= PROTO_MAX_PAYLOAD ? pf.length : 0;
				memcpy(f->payload, pf.payload, f->length);
				return 1;
			}
			continue;
		}

		int64_t now = vmmctl_now_ms(c);
		int64_t wait = deadline_ms < 0 ? -1 : deadline_ms - now;

		/* A frame is sent in one burst: silence inside one means it is lost. */
		if (c->dec.in_frame && c->dec.len > 0) {
			int64_t left = c->last_byte_ms + VMMCTL_INTERBYTE_MS - now;

			if (left <= 0) {
				proto_decoder_reset(&c->dec);
				continue;
			}
			if (wait < 0 || left < wait)
				wait = left;
		}
		if (deadline_ms >= 0 && wait <= 0) {
			/* One look at what is already there, then the deadline holds. */
			if (last_look)
				return 0;
			last_look = true;
			wait = 0;
		}
		if (wait > 60000)
			wait = 60000;

		int rc = read_some(c, (int)wait);

		if (rc < 0)
			return rc;
	}
}

static void queue_event(struct vmmctl_conn *c, const struct vmmctl_frame *f)
{
	if (c->ev_count == VMMCTL_EVENT_QUEUE) {
		/* Keep the newest: the gap shows as a jump in seq. */
		c->ev_head = (c->ev_head + 1) % VMMCTL_EVENT_QUEUE;
		c->ev_count--;
		c->events_dropped++;
	}
	c->events[(c->ev_head + c->ev_count) % VMMCTL_EVENT_QUEUE] = *f;
	c->ev_count++;
}

static bool pop_event(struct vmmctl_conn *c, struct vmmctl_frame *f)
{
	if (c->ev_count == 0)
		return false;
	*f = c->events[c->ev_head];
	c->ev_head = (c->ev_head + 1) % VMMCTL_EVENT_QUEUE;
	c->ev_count--;
	return true;
}

static enum vmmctl_call take_error(struct vmmctl_conn *c, const struct vmmctl_frame *f)
{
	uint16_t code;

	c->err_msg[0] = '\0';
	c->err_has_state = false;
	c->err_retry_after_ms = 0;
	if (!api_payload_valid(f->payload, f->length) ||
	    tlv_get_u16(f->payload, f->length, API_TAG_ERROR, &code) != TLV_OK || code == 0)
		return VMMCTL_CALL_PROTO;
	c->err_code = code;
	if (tlv_get_str(f->payload, f->length, API_TAG_MESSAGE, c->err_msg, sizeof(c->err_msg)) !=
	    TLV_OK)
		c->err_msg[0] = '\0';
	c->err_has_state =
		tlv_get_u8(f->payload, f->length, API_TAG_STATE, &c->err_state) == TLV_OK;
	if (tlv_get_u32(f->payload, f->length, API_TAG_RETRY_AFTER_MS, &c->err_retry_after_ms) !=
	    TLV_OK)
		c->err_retry_after_ms = 0;
	return VMMCTL_CALL_ERROR;
}

enum vmmctl_call vmmctl_call(struct vmmctl_conn *c, uint16_t code, const uint8_t *payload,
			     size_t len)
{
	uint8_t wire[PROTO_MAX_WIRE], signed_payload[PROTO_MAX_PAYLOAD];
	uint32_t id = c->next_id++;
	int timeout = c->timeout_ms > 0 ? c->timeout_ms : vmmctl_default_timeout_ms(code);

	if (len > PROTO_MAX_PAYLOAD)
		return VMMCTL_CALL_PROTO;
	if (c->signing) {
		/* Signed once: a retransmission is the same frame, sequence number included. */
		if (len)
			memcpy(signed_payload, payload, len);
		len = session_sign(c->session_key, c->session_id, ++c->session_seq, id, code,
				   signed_payload, len, sizeof(signed_payload));
		if (!len)
			return VMMCTL_CALL_PROTO;
		payload = signed_payload;
	}
	c->err_code = 0;
	for (int attempt = 0; attempt <= c->retries; attempt++) {
		struct proto_frame req = {
			.type = PROTO_REQUEST,
			.flags = attempt ? PROTO_FLAG_RETRY : 0,
			.code = code,
			.id = id,
			.length = (uint16_t)len,
			.payload = payload,
		};
		int n = proto_encode(wire, sizeof(wire), &req);

		if (n < 0)
			return VMMCTL_CALL_PROTO;
		if (!vmmctl_write_all(c->fd, wire, (size_t)n))
			return VMMCTL_CALL_CLOSED;
		if (attempt)
			c->resent++;
		else
			c->sent++;

		int64_t deadline = vmmctl_now_ms(c) + timeout;

		for (;;) {
			struct vmmctl_frame *f = &c->resp;
			int rc = next_frame(c, deadline, f);

			if (rc == 0)
				break; /* timeout: send the same request again */
			if (rc < 0)
				return (enum vmmctl_call)-rc;
			if (f->type == PROTO_EVENT) {
				queue_event(c, f);
				continue;
			}
			if (f->type != PROTO_RESPONSE && f->type != PROTO_ERROR) {
				c->ignored_frames++; /* a request: an echo, or a confused peer */
				continue;
			}
			if (f->id != id) {
				c->stale_answers++; /* late or duplicated answer to an older request */
				continue;
			}
			if (f->code != code)
				return VMMCTL_CALL_PROTO;
			if (f->type == PROTO_ERROR)
				return take_error(c, f);
			if (!api_payload_valid(f->payload, f->length))
				return VMMCTL_CALL_PROTO;
			return VMMCTL_CALL_OK;
		}
	}
	return VMMCTL_CALL_TIMEOUT;
}

int vmmctl_next_event(struct vmmctl_conn *c, int timeout_ms, struct vmmctl_frame *ev)
{
	int64_t deadline = timeout_ms < 0 ? -1 : vmmctl_now_ms(c) + timeout_ms;

	for (;;) {
		if (pop_event(c, ev))
			return 1;

		int rc = next_frame(c, deadline, ev);

		if (rc <= 0)
			return rc;
		if (ev->type == PROTO_EVENT)
			return 1;
		if (ev->type == PROTO_RESPONSE || ev->type == PROTO_ERROR)
			c->stale_answers++;
		else
			c->ignored_frames++;
	}
}

int vmmctl_pump(struct vmmctl_conn *c, int timeout_ms)
{
	struct vmmctl_frame *f = &c->resp;
	int64_t deadline = vmmctl_now_ms(c) + (timeout_ms < 0 ? 0 : timeout_ms);

	for (;;) {
		int rc = next_frame(c, deadline, f);

		if (rc <= 0)
			return rc;
		if (f->type == PROTO_EVENT)
			queue_event(c, f);
		else if (f->type == PROTO_RESPONSE || f->type == PROTO_ERROR)
			c->stale_answers++;
		else
			c->ignored_frames++;
	}
}

enum vmmctl_call vmmctl_hello(struct vmmctl_conn *c)
{
	uint8_t buf[64 + sizeof(VMMCTL_SOFTWARE)];
	struct tlv_writer w;
	enum vmmctl_call rc;
	const uint8_t *p;
	size_t n;
	uint8_t b = 0;

	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_u16(&w, API_TAG_API_VERSION, API_VERSION);
	tlv_put_str(&w, API_TAG_SOFTWARE, VMMCTL_SOFTWARE);
	rc = vmmctl_call(c, API_REQ_HELLO, buf, w.len);
	if (rc != VMMCTL_CALL_OK)
		return rc;
	p = c->resp.payload;
	n = c->resp.length;
	/* Catalogue versions only grow compatibly; 0 is no version at all. */
	if (tlv_get_u16(p, n, API_TAG_API_VERSION, &c->server_api_version) != TLV_OK ||
	    c->server_api_version == 0)
		return VMMCTL_CALL_PROTO;
	if (tlv_get_str(p, n, API_TAG_SOFTWARE, c->server_software,
			sizeof(c->server_software)) != TLV_OK)
		c->server_software[0] = '\0';
	c->auth_required = tlv_get_u8(p, n, API_TAG_AUTH_REQUIRED, &b) == TLV_OK && b;
	if (tlv_get_u64(p, n, API_TAG_SEQ, &c->hello_seq) != TLV_OK)
		c->hello_seq = 0;
	return VMMCTL_CALL_OK;
}

/* Sleeps ms, waking early on an interruption. */
static void pause_ms(struct vmmctl_conn *c, uint32_t ms)
{
	while (ms > 0 && !interrupted(c)) {
		uint32_t step = ms > 100 ? 100 : ms;
		struct timespec ts = { 0, (long)step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

enum vmmctl_call vmmctl_authenticate(struct vmmctl_conn *c, const uint8_t *key, size_t key_len)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		uint8_t nonce[SESSION_NONCE_SIZE], mac[SHA256_SIZE];
		uint8_t buf[2 * TLV_HEADER_SIZE + 4 + SHA256_SIZE];
		const uint8_t *v;
		size_t n;
		uint32_t session;
		struct tlv_writer w;
		enum vmmctl_call rc;

		vmmctl_end_session(c);
		rc = vmmctl_call(c, API_REQ_AUTH_CHALLENGE, NULL, 0);
		if (rc != VMMCTL_CALL_OK)
			return rc;
		if (tlv_get_bytes(c->resp.payload, c->resp.length, API_TAG_NONCE, &v, &n) !=
			    TLV_OK ||
		    n != sizeof(nonce) ||
		    tlv_get_u32(c->resp.payload, c->resp.length, API_TAG_SESSION, &session) !=
			    TLV_OK)
			return VMMCTL_CALL_PROTO;
		memcpy(nonce, v, n);
		hmac_sha256(key, key_len, nonce, n, mac);
		tlv_writer_init(&w, buf, sizeof(buf));
		tlv_put_u32(&w, API_TAG_SESSION, session);
		tlv_put(&w, API_TAG_AUTH_MAC, mac, sizeof(mac));
		memset(mac, 0, sizeof(mac));
		rc = vmmctl_call(c, API_REQ_AUTH_RESPONSE, buf, w.len);
		memset(buf, 0, sizeof(buf));
		if (rc == VMMCTL_CALL_OK) {
			session_derive_key(key, key_len, nonce, c->session_key);
			c->session_id = session;
			c->session_seq = 0;
			c->signing = true;
		}
		if (rc != VMMCTL_CALL_ERROR || c->err_code != API_E_BUSY)
			return rc;
		/* Rate limited after earlier failures: wait as told (bounded), ask again. */
		pause_ms(c, c->err_retry_after_ms > 60000 ? 60000 : c->err_retry_after_ms);
	}
	return VMMCTL_CALL_ERROR;
}

void vmmctl_goodbye(struct vmmctl_conn *c)
{
	int timeout = c->timeout_ms, retries = c->retries;

	if (c->fd < 0)
		return;
	c->timeout_ms = timeout > 0 && timeout < 500 ? timeout : 500;
	c->retries = 0;
	(void)vmmctl_call(c, API_REQ_GOODBYE, NULL, 0);
	c->timeout_ms = timeout;
	c->retries = retries;
	vmmctl_end_session(c);
}

void vmmctl_end_session(struct vmmctl_conn *c)
{
	c->signing = false;
	memset(c->session_key, 0, sizeof(c->session_key));
}
