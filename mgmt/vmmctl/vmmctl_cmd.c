/*
 * Running one vmmctl subcommand on a session: connect, Hello, optional
 * authentication, the request(s), printing, Goodbye. `events --follow`,
 * `wait` and `console` keep the session and reconnect when the line
 * drops. The connection comes from env->connect, so tests run all of this
 * against a fake peer on a socketpair.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* cfmakeraw, CRTSCTS, the higher baud rates */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgmt/vmmctl/vmmctl.h"
#include "vmm/savefile.h"

struct run {
	const struct vmmctl_parsed *p;
	struct vmmctl_env *env;
	struct vmmctl_conn c;
	bool connected;
};

static void sleep_ms(struct run *r, int ms)
{
	while (ms > 0 && !(r->env->interrupted && *r->env->interrupted)) {
		int step = ms > 50 ? 50 : ms;
		struct timespec ts = { 0, (long)step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static bool interrupted(struct run *r)
{
	return r->env->interrupted && *r->env->interrupted;
}

/* Prints what went wrong with a call; returns the exit code. */
static int report(struct run *r, enum vmmctl_call rc, const char *what)
{
	FILE *err = r->env->err;
	int t = r->c.timeout_ms;

	switch (rc) {
	case VMMCTL_CALL_OK:
		return VMMCTL_EXIT_OK;
	case VMMCTL_CALL_ERROR:
		vmmctl_print_api_error(r->env->out, err, r->p->opts.json, what, &r->c);
		return VMMCTL_EXIT_API;
	case VMMCTL_CALL_TIMEOUT:
		if (t > 0)
			fprintf(err, "vmmctl: %s: no answer after %d attempts of %d ms\n", what,
				r->c.retries + 1, t);
		else
			fprintf(err, "vmmctl: %s: no answer after %d attempts (is the management VM "
				     "on this line? --show-log shows what the line says)\n",
				what, r->c.retries + 1);
		return VMMCTL_EXIT_CONN;
	case VMMCTL_CALL_CLOSED:
		fprintf(err, "vmmctl: %s: the line closed\n", what);
		return VMMCTL_EXIT_CONN;
	case VMMCTL_CALL_PROTO:
		fprintf(err, "vmmctl: %s: malformed answer from the line (protocol error)\n", what);
		return VMMCTL_EXIT_PROTO;
	case VMMCTL_CALL_INTR:
		fprintf(err, "vmmctl: %s: interrupted\n", what);
		return 130;
	}
	return VMMCTL_EXIT_PROTO;
}

static void disconnect(struct run *r, bool goodbye)
{
	if (!r->connected)
		return;
	if (goodbye)
		vmmctl_goodbye(&r->c);
	if (r->c.fd >= 0)
		close(r->c.fd);
	r->c.fd = -1;
	r->connected = false;
}

/* Opens the line and runs Hello and authentication. Returns an exit code. */
static int session(struct run *r)
{
	const struct vmmctl_opts *o = &r->p->opts;
	uint32_t id = r->c.next_id;
	int fd = r->env->connect(r->env->connect_ctx, o);
	enum vmmctl_call rc;

	if (fd < 0)
		return VMMCTL_EXIT_CONN;
	vmmctl_conn_init(&r->c, fd, id);
	r->c.timeout_ms = o->timeout_ms;
	r->c.retries = o->retries;
	r->c.log = o->show_log ? r->env->err : NULL;
	r->c.interrupted = r->env->interrupted;
	r->connected = true;
	rc = vmmctl_hello(&r->c);
	if (rc != VMMCTL_CALL_OK)
		return report(r, rc, "Hello");
	if (o->verbose)
		fprintf(r->env->err, "vmmctl: connected: api %u, authentication %s, event seq %llu\n",
			r->c.server_api_version, r->c.auth_required ? "required" : "off",
			(unsigned long long)r->c.hello_seq);
	if (!r->c.auth_required)
		return VMMCTL_EXIT_OK;
	if (!r->env->key) {
		fprintf(r->env->err, "vmmctl: the line requires authentication: give the key with "
				     "--key-file FILE or VMMCTL_KEY_FILE\n");
		return VMMCTL_EXIT_API;
	}
	rc = vmmctl_authenticate(&r->c, r->env->key, r->env->key_len);
	return report(r, rc, "authentication");
}

/* ---- One request ---- */

static uint8_t list_tag_of(uint16_t request, bool *paged)
{
	*paged = false;
	switch (request) {
	case API_REQ_LIST_VIRTUAL_MACHINES:
		*paged = true;
		return API_TAG_VM_ENTRY;
	case API_REQ_LIST_VIRTUAL_NETWORKS:
		*paged = true;
		return API_TAG_NET_ENTRY;
	case API_REQ_GET_LEASES:
		*paged = true;
		return API_TAG_LEASE_ENTRY;
	case API_REQ_LIST_VIRTUAL_HARD_DISKS:
		*paged = true;
		return API_TAG_DISK_ENTRY;
	case API_REQ_LIST_NETWORK_ADAPTERS:
	case API_REQ_GET_ADAPTERS:
		return API_TAG_NIC_ENTRY;
	}
	return 0;
}

#define PAGES_MAX 4096

/*
 * Sends a request, following cursors of paged lists; the merged answer is
 * in *out (malloc'ed). Returns an exit code (error already printed).
 */
static int request(struct run *r, uint16_t code, const uint8_t *payload, size_t len,
		   const char *what, uint8_t **out, size_t *out_len)
{
	uint8_t buf[PROTO_MAX_PAYLOAD];
	size_t cap = 0;
	uint32_t cursor = 0;
	bool paged;

	list_tag_of(code, &paged);
	*out = NULL;
	*out_len = 0;
	if (len > sizeof(buf) - (TLV_HEADER_SIZE + 4))
		return VMMCTL_EXIT_USAGE;
	for (unsigned page = 0; page < PAGES_MAX; page++) {
		struct tlv_writer w;
		enum vmmctl_call rc;
		uint32_t next = 0;

		memcpy(buf, payload, len);
		tlv_writer_init(&w, buf, sizeof(buf));
		w.len = len; /* the request's own TLVs, then the cursor */
		if (cursor)
			tlv_put_u32(&w, API_TAG_CURSOR, cursor);
		rc = vmmctl_call(&r->c, code, buf, w.len);
		if (rc != VMMCTL_CALL_OK) {
			free(*out);
			*out = NULL;
			return report(r, rc, what);
		}
		if (!vmmctl_merge_page(out, out_len, &cap, r->c.resp.payload, r->c.resp.length,
				       page == 0)) {
			free(*out);
			*out = NULL;
			fprintf(r->env->err, "vmmctl: %s: answer too large\n", what);
			return VMMCTL_EXIT_PROTO;
		}
		if (!paged ||
		    tlv_get_u32(r->c.resp.payload, r->c.resp.length, API_TAG_CURSOR, &next) != TLV_OK ||
		    next == 0)
			return VMMCTL_EXIT_OK;
		if (next == cursor) {
			free(*out);
			*out = NULL;
			fprintf(r->env->err, "vmmctl: %s: the cursor does not advance\n", what);
			return VMMCTL_EXIT_PROTO;
		}
		cursor = next;
	}
	free(*out);
	*out = NULL;
	fprintf(r->env->err, "vmmctl: %s: more than %d pages\n", what, PAGES_MAX);
	return VMMCTL_EXIT_PROTO;
}

static const char *req_name(uint16_t code)
{
	const char *n = api_request_name(code);

	return n ? n : "request";
}

static int cmd_request(struct run *r)
{
	const struct shell_cmd *cmd = &r->p->cmd;
	bool json = r->p->opts.json, paged;
	uint8_t list = list_tag_of(cmd->request, &paged), *ans;
	size_t n;
	int rc = request(r, cmd->request, cmd->payload, cmd->payload_len, req_name(cmd->request),
			 &ans, &n);

	if (rc != VMMCTL_EXIT_OK)
		return rc;
	if (r->p->sub->kind == VK_STATE_OP && !json) {
		char vm[API_NAME_MAX + 1] = "?";
		uint8_t st = 0;
		const char *name;

		tlv_get_str(cmd->payload, cmd->payload_len, API_TAG_VM, vm, sizeof(vm));
		if (tlv_get_u8(ans, n, API_TAG_STATE, &st) == TLV_OK) {
			name = vmmctl_state_name(st);
			if (name)
				fprintf(r->env->out, "%s: %s\n", vm, name);
			else
				fprintf(r->env->out, "%s: state %u\n", vm, st);
		}
	} else if (list) {
		vmmctl_render_list(r->env->out, json, ans, n, list);
	} else if (json) {
		vmmctl_render_json(r->env->out, ans, n);
	} else {
		vmmctl_render_human(r->env->out, ans, n);
	}
	free(ans);
	return VMMCTL_EXIT_OK;
}

/* net-show: statistics, adapters and DHCP settings in one view. */
static int cmd_net_show(struct run *r)
{
	static const struct {
		uint16_t code;
		const char *key;
		const char *title;
	} parts[] = {
		{ API_REQ_GET_STATISTICS, "statistics", "statistics:" },
		{ API_REQ_GET_DHCP_SETTINGS, "dhcp", "DHCP:" },
		{ API_REQ_GET_ADAPTERS, NULL, "adapters:" },
	};
	uint8_t payload[64], *ans[3] = { NULL, NULL, NULL };
	size_t len[3];
	struct tlv_writer w;
	int rc = VMMCTL_EXIT_OK;
	const char *net = r->p->local.vm;

	tlv_writer_init(&w, payload, sizeof(payload));
	tlv_put_str(&w, API_TAG_NET, net);
	for (unsigned i = 0; i < 3 && rc == VMMCTL_EXIT_OK; i++)
		rc = request(r, parts[i].code, payload, w.len, req_name(parts[i].code), &ans[i],
			     &len[i]);
	if (rc == VMMCTL_EXIT_OK && r->p->opts.json) {
		struct json j;

		json_init(&j, r->env->out);
		json_begin(&j, '{');
		json_key(&j, "net");
		json_cstr(&j, net);
		for (unsigned i = 0; i < 2; i++) {
			json_key(&j, parts[i].key);
			json_begin(&j, '{');
			vmmctl_json_fields(&j, ans[i], len[i], 0);
			json_end(&j, '}');
		}
		vmmctl_json_fields(&j, ans[2], len[2], API_TAG_NIC_ENTRY);
		json_end(&j, '}');
		fputc('\n', r->env->out);
	} else if (rc == VMMCTL_EXIT_OK) {
		fprintf(r->env->out, "network:         %s\n", net);
		for (unsigned i = 0; i < 3; i++) {
			fprintf(r->env->out, "\n%s\n", parts[i].title);
			vmmctl_human_fields(r->env->out, ans[i], len[i],
					    i == 2 ? API_TAG_NIC_ENTRY : 0);
		}
	}
	for (unsigned i = 0; i < 3; i++)
		free(ans[i]);
	return rc;
}

/* ---- Events ---- */

static enum vmmctl_call subscribe(struct run *r, bool state_events, const char *console_vm,
				  uint64_t *seq)
{
	uint8_t buf[64];
	struct tlv_writer w;
	enum vmmctl_call rc;

	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_u8(&w, API_TAG_STATE_EVENTS, state_events);
	if (console_vm)
		tlv_put_str(&w, API_TAG_CONSOLE_VM, console_vm);
	rc = vmmctl_call(&r->c, API_REQ_SUBSCRIBE_EVENTS, buf, w.len);
	if (rc == VMMCTL_CALL_OK && seq &&
	    tlv_get_u64(r->c.resp.payload, r->c.resp.length, API_TAG_SEQ, seq) != TLV_OK)
		rc = VMMCTL_CALL_PROTO;
	return rc;
}

/*
 * After the line dropped: reconnect with a growing pause, Hello, auth,
 * subscribe. Returns an exit code other than OK only for errors that a
 * retry cannot fix (interrupted, refused authentication, protocol).
 */
static int resubscribe(struct run *r, bool state_events, const char *console_vm,
		       uint64_t *seq)
{
	int pause = 250, max = r->env->reconnect_max_ms > 0 ? r->env->reconnect_max_ms : 10000;

	for (;;) {
		int rc;

		disconnect(r, false);
		if (interrupted(r))
			return 130;
		rc = session(r);
		if (rc == VMMCTL_EXIT_OK) {
			enum vmmctl_call c = subscribe(r, state_events, console_vm, seq);

			if (c == VMMCTL_CALL_OK)
				return VMMCTL_EXIT_OK;
			rc = report(r, c, "SubscribeEvents");
		}
		if (rc != VMMCTL_EXIT_CONN)
			return rc;
		fprintf(r->env->err, "vmmctl: line lost; reconnecting in %d ms\n", pause);
		sleep_ms(r, pause);
		pause = pause * 2 > max ? max : pause * 2;
	}
}

/* A gap in seq: events lost on the line (or while reconnecting). */
static void report_gap(struct run *r, uint64_t first, uint64_t count)
{
	if (r->p->opts.json) {
		fprintf(r->env->out,
			"{\"event\":\"EventsLost\",\"seq\":%llu,\"lost\":%llu,\"detected_by\":\"vmmctl\"}\n",
			(unsigned long long)first, (unsigned long long)count);
		fflush(r->env->out);
	} else {
		fprintf(r->env->err, "vmmctl: %llu event(s) from %llu on were lost; 'vmmctl state VM' "
				     "shows where the VMs are\n",
			(unsigned long long)count, (unsigned long long)first);
	}
}

static bool event_for_vm(const struct vmmctl_frame *ev, const char *vm)
{
	char name[API_NAME_MAX + 1];

	if (!vm)
		return true;
	if (ev->code == API_EVENT_EVENTS_LOST)
		return true;
	return tlv_get_str(ev->payload, ev->length, API_TAG_VM, name, sizeof(name)) == TLV_OK &&
	       strcmp(name, vm) == 0;
}

/* Tracks seq: reports a gap, and false for an old or repeated event. */
static bool seq_step(struct run *r, const struct vmmctl_frame *ev, uint64_t *last)
{
	uint64_t seq;

	if (ev->code != API_EVENT_VM_STATE_CHANGE ||
	    tlv_get_u64(ev->payload, ev->length, API_TAG_SEQ, &seq) != TLV_OK)
		return true;
	if (seq <= *last)
		return false;
	if (seq > *last + 1)
		report_gap(r, *last + 1, seq - *last - 1);
	*last = seq;
	return true;
}

static int keepalive_ms(struct run *r)
{
	return r->env->keepalive_ms > 0 ? r->env->keepalive_ms : 15000;
}

static int cmd_events(struct run *r)
{
	const struct vmmctl_local *l = &r->p->local;
	uint64_t last = 0, seq;
	long printed = 0;
	enum vmmctl_call c;

	if (!l->follow) {
		if (r->p->opts.json)
			fprintf(r->env->out, "{\"seq\":%llu}\n", (unsigned long long)r->c.hello_seq);
		else
			fprintf(r->env->out, "seq: %llu\n", (unsigned long long)r->c.hello_seq);
		return VMMCTL_EXIT_OK;
	}
	c = subscribe(r, true, NULL, &last);
	if (c != VMMCTL_CALL_OK)
		return report(r, c, "SubscribeEvents");
	for (;;) {
		struct vmmctl_frame ev;
		int rc = vmmctl_next_event(&r->c, keepalive_ms(r), &ev);

		if (rc == 1) {
			if (!seq_step(r, &ev, &last) || !event_for_vm(&ev, l->vm))
				continue;
			vmmctl_print_event(r->env->out, r->p->opts.json, &ev);
			if (l->count && ++printed >= l->count)
				return VMMCTL_EXIT_OK;
			continue;
		}
		if (rc == -VMMCTL_CALL_INTR || interrupted(r))
			return VMMCTL_EXIT_OK;
		if (rc == 0) {
			/*
			 * Quiet line: Hello (brings the line back to framed mode if a
			 * person took it with 'shell') and a renewed subscription,
			 * which also prove the line.
			 */
			c = vmmctl_hello(&r->c);
			if (c == VMMCTL_CALL_OK)
				c = subscribe(r, true, NULL, &seq);
			if (c == VMMCTL_CALL_OK) {
				while (r->c.ev_count && vmmctl_next_event(&r->c, 0, &ev) == 1)
					if (seq_step(r, &ev, &last) && event_for_vm(&ev, l->vm))
						vmmctl_print_event(r->env->out, r->p->opts.json, &ev);
				if (seq > last) {
					report_gap(r, last + 1, seq - last);
					last = seq;
				}
				continue;
			}
			if (c == VMMCTL_CALL_INTR)
				return VMMCTL_EXIT_OK;
			if (c != VMMCTL_CALL_TIMEOUT && c != VMMCTL_CALL_CLOSED &&
			    !(c == VMMCTL_CALL_ERROR && r->c.err_code == API_E_PERMISSION_DENIED))
				return report(r, c, "SubscribeEvents");
		}
		/* The line dropped (or stopped answering): start again. */
		rc = resubscribe(r, true, NULL, &seq);
		if (rc == 130)
			return VMMCTL_EXIT_OK;
		if (rc != VMMCTL_EXIT_OK)
			return rc;
		if (seq > last) {
			report_gap(r, last + 1, seq - last);
			last = seq;
		}
	}
}

/* ---- wait ---- */

static int print_state(struct run *r, const char *vm, uint8_t st)
{
	const char *name = vmmctl_state_name(st);

	if (r->p->opts.json)
		fprintf(r->env->out, "{\"vm\":\"%s\",\"state\":\"%s\",\"state_code\":%u}\n", vm,
			name ? name : "unknown", st);
	else
		fprintf(r->env->out, "%s: %s\n", vm, name ? name : "unknown state");
	return VMMCTL_EXIT_OK;
}

static int get_state(struct run *r, const char *vm, uint8_t *st)
{
	uint8_t buf[64];
	struct tlv_writer w;
	enum vmmctl_call c;

	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_str(&w, API_TAG_VM, vm);
	c = vmmctl_call(&r->c, API_REQ_GET_STATE, buf, w.len);
	if (c != VMMCTL_CALL_OK)
		return report(r, c, "GetState");
	if (tlv_get_u8(r->c.resp.payload, r->c.resp.length, API_TAG_STATE, st) != TLV_OK)
		return report(r, VMMCTL_CALL_PROTO, "GetState");
	return VMMCTL_EXIT_OK;
}

static int cmd_wait(struct run *r)
{
	const char *vm = r->p->local.vm;
	uint8_t want = 0, st = 0;
	int64_t start = vmmctl_now_ms(&r->c);
	uint64_t seq;
	enum vmmctl_call c;
	int rc;

	vmmctl_state_parse(r->p->local.state, &want);
	c = subscribe(r, true, NULL, &seq);
	if (c != VMMCTL_CALL_OK)
		return report(r, c, "SubscribeEvents");
	for (;;) {
		/* Subscribed first, then asked: no change can fall between the two. */
		rc = get_state(r, vm, &st);
		if (rc == VMMCTL_EXIT_OK && st == want)
			return print_state(r, vm, st);
		if (rc == VMMCTL_EXIT_API || rc == VMMCTL_EXIT_PROTO)
			return rc;
		for (bool recheck = rc != VMMCTL_EXIT_OK; !recheck;) {
			struct vmmctl_frame ev;
			int left = keepalive_ms(r);

			if (r->p->local.wait_ms >= 0) {
				int64_t rem = start + r->p->local.wait_ms - vmmctl_now_ms(&r->c);

				if (rem <= 0) {
					fprintf(r->env->err, "vmmctl: wait: %s is still %s\n", vm,
						vmmctl_state_name(st) ? vmmctl_state_name(st) : "?");
					return VMMCTL_EXIT_CONN;
				}
				if (rem < left)
					left = (int)rem;
			}
			int e = vmmctl_next_event(&r->c, left, &ev);

			if (e == -VMMCTL_CALL_INTR)
				return 130;
			if (e < 0) {
				rc = resubscribe(r, true, NULL, &seq);
				if (rc != VMMCTL_EXIT_OK)
					return rc;
				recheck = true;
			} else if (e == 0) {
				recheck = true; /* ask again now and then: a lost event must not hang us */
			} else if (ev.code == API_EVENT_EVENTS_LOST) {
				recheck = true;
			} else if (ev.code == API_EVENT_VM_STATE_CHANGE && event_for_vm(&ev, vm) &&
				   tlv_get_u8(ev.payload, ev.length, API_TAG_STATE, &st) == TLV_OK &&
				   st == want) {
				return print_state(r, vm, st);
			}
		}
	}
}

/*
 * save: Save is answered Saving at once while the hypervisor writes the
 * VM's RAM in steps (docs/savefile.md); the tool follows the VM's state
 * changes to their end, subscribed before it asks so that none passes
 * unseen: Saved after TurnedOff, or the state the VM was saved from again,
 * with the reason, when its file could not be made.
 */
static bool save_under_way(uint8_t st)
{
	return st == VM_STATE_SAVING || st == VM_STATE_TURNING_OFF ||
	       st == VM_STATE_DELETE_MACHINE;
}

static int cmd_save(struct run *r)
{
	const struct shell_cmd *cmd = &r->p->cmd;
	char vm[API_NAME_MAX + 1] = "?", reason[API_STR_MAX + 1] = "";
	uint64_t seq = 0, last = 0;
	uint8_t st = 0;
	int rc;

	tlv_get_str(cmd->payload, cmd->payload_len, API_TAG_VM, vm, sizeof(vm));
	enum vmmctl_call c = subscribe(r, true, NULL, &seq);
	if (c != VMMCTL_CALL_OK)
		return report(r, c, "SubscribeEvents");
	c = vmmctl_call(&r->c, API_REQ_SAVE, cmd->payload, cmd->payload_len);
	if (c != VMMCTL_CALL_OK)
		return report(r, c, "Save");
	if (tlv_get_u8(r->c.resp.payload, r->c.resp.length, API_TAG_STATE, &st) != TLV_OK)
		return report(r, VMMCTL_CALL_PROTO, "Save");
	tlv_get_u64(r->c.resp.payload, r->c.resp.length, API_TAG_SEQ, &last);
	while (save_under_way(st)) {
		struct vmmctl_frame ev;
		int e = vmmctl_next_event(&r->c, keepalive_ms(r), &ev);

		if (e == -VMMCTL_CALL_INTR) {
			fprintf(r->env->err, "vmmctl: save: %s goes on being saved (vmmctl wait %s "
				"Saved)\n", vm, vm);
			return 130;
		}
		if (e < 0 && (rc = resubscribe(r, true, NULL, &seq)) != VMMCTL_EXIT_OK)
			return rc;
		/* A line that dropped, a quiet while or lost events: ask. */
		if (e <= 0 || ev.code == API_EVENT_EVENTS_LOST) {
			if ((rc = get_state(r, vm, &st)) != VMMCTL_EXIT_OK)
				return rc;
			continue;
		}
		if (ev.code != API_EVENT_VM_STATE_CHANGE || !event_for_vm(&ev, vm) ||
		    tlv_get_u8(ev.payload, ev.length, API_TAG_STATE, &st) != TLV_OK)
			continue;
		tlv_get_u64(ev.payload, ev.length, API_TAG_SEQ, &last);
		tlv_get_str(ev.payload, ev.length, API_TAG_REASON, reason, sizeof(reason));
		/* The state table: a saved VM is Saved after its TurnedOff event. */
		if (st == VM_STATE_TURNED_OFF)
			st = VM_STATE_SAVED;
	}
	const char *name = vmmctl_state_name(st) ? vmmctl_state_name(st) : "?";
	if (st != VM_STATE_SAVED) {
		fprintf(r->env->err, "vmmctl: save: %s is %s again, not saved%s%s\n", vm, name,
			reason[0] ? ": " : "", reason);
		return VMMCTL_EXIT_API;
	}
	if (r->p->opts.json)
		fprintf(r->env->out, "{\"vm\":\"%s\",\"state\":\"%s\",\"state_code\":%u,"
			"\"seq\":%llu}\n", vm, name, st, (unsigned long long)last);
	else
		fprintf(r->env->out, "%s: %s\n", vm, name);
	return VMMCTL_EXIT_OK;
}

/* ---- console ---- */

/* C escapes of --send: \n \r \t \\ \xHH; everything else as is. */
static size_t unescape(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*s && n < cap) {
		if (*s != '\\' || !s[1]) {
			out[n++] = (uint8_t)*s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': out[n++] = '\n'; s++; break;
		case 'r': out[n++] = '\r'; s++; break;
		case 't': out[n++] = '\t'; s++; break;
		case 'e': out[n++] = 0x1b; s++; break;
		case 'x': {
			uint8_t v[1];
			size_t got;
			char hex[3] = { s[1], s[1] ? s[2] : 0, 0 };

			if (vmmctl_parse_hex(hex, v, 1, &got) && got == 1 && hex[1]) {
				out[n++] = v[0];
				s += 3;
			} else {
				out[n++] = '\\';
			}
			break;
		}
		default: out[n++] = (uint8_t)*s++; break;
		}
	}
	return n;
}

#define CONSOLE_CHUNK 256

/* ConsoleWrite, waiting out BUSY (a full input buffer: nothing was written). */
static int console_write(struct run *r, const char *vm, const uint8_t *data, size_t len)
{
	while (len > 0) {
		uint8_t buf[CONSOLE_CHUNK + 64];
		size_t n = len > CONSOLE_CHUNK ? CONSOLE_CHUNK : len;
		struct tlv_writer w;
		enum vmmctl_call c;
		int tries = 0;

		tlv_writer_init(&w, buf, sizeof(buf));
		tlv_put_str(&w, API_TAG_VM, vm);
		tlv_put(&w, API_TAG_DATA, data, n);
		for (;;) {
			c = vmmctl_call(&r->c, API_REQ_CONSOLE_WRITE, buf, w.len);
			if (c != VMMCTL_CALL_ERROR || r->c.err_code != API_E_BUSY || ++tries > 50)
				break;
			sleep_ms(r, r->c.err_retry_after_ms == 0 ? 20
				    : r->c.err_retry_after_ms > 2000 ? 2000
				    : (int)r->c.err_retry_after_ms);
		}
		if (c != VMMCTL_CALL_OK)
			return report(r, c, "ConsoleWrite");
		data += n;
		len -= n;
	}
	return VMMCTL_EXIT_OK;
}

#define DUMP_MAX (64u << 20)

static int console_dump(struct run *r, const char *vm)
{
	bool json = r->p->opts.json, have_offset = false;
	uint64_t offset = 0, first = 0, next = 0, lost_total = 0;
	uint8_t *all = NULL;
	size_t all_len = 0, total = 0;

	for (unsigned i = 0;; i++) {
		uint8_t buf[64];
		struct tlv_writer w;
		const uint8_t *d;
		size_t dn;
		uint64_t got_offset, lost = 0;
		enum vmmctl_call c;

		tlv_writer_init(&w, buf, sizeof(buf));
		tlv_put_str(&w, API_TAG_VM, vm);
		if (have_offset)
			tlv_put_u64(&w, API_TAG_OFFSET, offset);
		c = vmmctl_call(&r->c, API_REQ_CONSOLE_READ, buf, w.len);
		if (c != VMMCTL_CALL_OK) {
			free(all);
			return report(r, c, "ConsoleRead");
		}
		const uint8_t *p = r->c.resp.payload;
		size_t n = r->c.resp.length;

		if (tlv_get_u64(p, n, API_TAG_OFFSET, &got_offset) != TLV_OK ||
		    tlv_get_u64(p, n, API_TAG_NEXT_OFFSET, &next) != TLV_OK ||
		    tlv_get_bytes(p, n, API_TAG_DATA, &d, &dn) != TLV_OK ||
		    next != got_offset + dn || (have_offset && got_offset < offset)) {
			free(all);
			return report(r, VMMCTL_CALL_PROTO, "ConsoleRead");
		}
		tlv_get_u64(p, n, API_TAG_LOST, &lost);
		if (i == 0)
			first = got_offset;
		if (lost) {
			lost_total += lost;
			if (!json)
				fprintf(r->env->err, "vmmctl: %llu bytes of console output were lost\n",
					(unsigned long long)lost);
		}
		if (dn == 0 || total + dn > DUMP_MAX)
			break;
		total += dn;
		if (json) {
			uint8_t *nb = realloc(all, all_len + dn);

			if (!nb) {
				free(all);
				return VMMCTL_EXIT_PROTO;
			}
			all = nb;
			memcpy(all + all_len, d, dn);
			all_len += dn;
		} else if (r->p->local.raw) {
			fwrite(d, 1, dn, r->env->out);
		} else {
			vmmctl_put_console(r->env->out, d, dn);
		}
		offset = next;
		have_offset = true;
	}
	if (json) {
		struct json j;

		json_init(&j, r->env->out);
		json_begin(&j, '{');
		json_key(&j, "vm");
		json_cstr(&j, vm);
		json_key(&j, "offset");
		json_uint(&j, first);
		json_key(&j, "next_offset");
		json_uint(&j, next);
		json_key(&j, "lost");
		json_uint(&j, lost_total);
		json_key(&j, "data");
		json_str(&j, all ? all : (const uint8_t *)"", all_len);
		json_end(&j, '}');
		fputc('\n', r->env->out);
		free(all);
	}
	return VMMCTL_EXIT_OK;
}

/* Writes console output to the terminal, skipping what was shown, noting gaps. */
static void console_show(struct run *r, uint64_t *expect, uint64_t off, const uint8_t *d,
			 size_t n)
{
	if (off > *expect && *expect != UINT64_MAX)
		fprintf(r->env->err, "\r\n[vmmctl: %llu bytes of console output lost]\r\n",
			(unsigned long long)(off - *expect));
	if (*expect != UINT64_MAX && off < *expect) {
		uint64_t skip = *expect - off;

		if (skip >= n)
			return;
		d += skip;
		n -= (size_t)skip;
		off = *expect;
	}
	fwrite(d, 1, n, r->env->out);
	fflush(r->env->out);
	*expect = off + n;
}

static int console_interactive(struct run *r, const char *vm)
{
	const struct vmmctl_local *l = &r->p->local;
	uint64_t seq, expect = UINT64_MAX;
	uint8_t st;
	bool raw = false;
	int rc = get_state(r, vm, &st), in = r->env->console_in;
	int64_t last_frame;
	char esc = (char)(l->escape + '@');

	if (rc != VMMCTL_EXIT_OK)
		return rc;
	enum vmmctl_call c = subscribe(r, true, vm, &seq);

	if (c != VMMCTL_CALL_OK)
		return report(r, c, "SubscribeEvents");
	if (r->env->console_tty)
		raw = vmmctl_tty_raw(in);
	r->c.log_crlf = raw;
	fprintf(r->env->err, "[vmmctl: connected to %s (%s); ^%c leaves]\r\n", vm,
		vmmctl_state_name(st) ? vmmctl_state_name(st) : "?", esc);
	last_frame = vmmctl_now_ms(&r->c);
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = r->c.fd, .events = POLLIN },
			{ .fd = in, .events = POLLIN },
		};
		struct vmmctl_frame ev;
		bool dropped = false;

		while (vmmctl_next_event(&r->c, 0, &ev) == 1) {
			uint64_t off = 0;
			const uint8_t *d;
			size_t dn;

			last_frame = vmmctl_now_ms(&r->c);
			if (!event_for_vm(&ev, vm))
				continue;
			if (ev.code == API_EVENT_CONSOLE_OUTPUT &&
			    tlv_get_u64(ev.payload, ev.length, API_TAG_OFFSET, &off) == TLV_OK &&
			    tlv_get_bytes(ev.payload, ev.length, API_TAG_DATA, &d, &dn) == TLV_OK)
				console_show(r, &expect, off, d, dn);
			else if (ev.code == API_EVENT_VM_STATE_CHANGE &&
				 tlv_get_u8(ev.payload, ev.length, API_TAG_STATE, &st) == TLV_OK)
				fprintf(r->env->err, "\r\n[vmmctl: %s is %s]\r\n", vm,
					vmmctl_state_name(st) ? vmmctl_state_name(st) : "?");
		}
		if (interrupted(r))
			break;
		int pr = poll(pfd, in >= 0 ? 2 : 1, 200);

		if (pr < 0 && errno != EINTR)
			break;
		if (pr > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			int e = vmmctl_pump(&r->c, 0);

			if (e < 0 && e != -VMMCTL_CALL_INTR)
				dropped = true;
		}
		if (pr > 0 && in >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			uint8_t keys[CONSOLE_CHUNK];
			ssize_t n = read(in, keys, sizeof(keys));

			if (n <= 0)
				break; /* end of input */
			uint8_t *esc_at = memchr(keys, l->escape, (size_t)n);
			size_t send = esc_at ? (size_t)(esc_at - keys) : (size_t)n;

			if (send && console_write(r, vm, keys, send) != VMMCTL_EXIT_OK) {
				if (r->c.err_code == 0)
					dropped = true; /* line, not the API */
				else if (r->c.err_code != API_E_INVALID_STATE)
					break;
			}
			if (esc_at)
				break;
		}
		if (!dropped && vmmctl_now_ms(&r->c) - last_frame > keepalive_ms(r)) {
			c = vmmctl_hello(&r->c);
			if (c == VMMCTL_CALL_OK)
				c = subscribe(r, true, vm, &seq);
			last_frame = vmmctl_now_ms(&r->c);
			if (c == VMMCTL_CALL_TIMEOUT || c == VMMCTL_CALL_CLOSED ||
			    (c == VMMCTL_CALL_ERROR && r->c.err_code == API_E_PERMISSION_DENIED))
				dropped = true;
		}
		if (dropped) {
			fprintf(r->env->err, "\r\n[vmmctl: line lost, reconnecting]\r\n");
			rc = resubscribe(r, true, vm, &seq);
			if (rc != VMMCTL_EXIT_OK)
				break;
			last_frame = vmmctl_now_ms(&r->c);
			fprintf(r->env->err, "[vmmctl: reconnected to %s]\r\n", vm);
		}
	}
	if (raw)
		vmmctl_tty_restore();
	r->c.log_crlf = false;
	fprintf(r->env->err, "\n[vmmctl: left %s]\n", vm);
	return rc == 130 ? VMMCTL_EXIT_OK : rc;
}

static int cmd_console(struct run *r)
{
	const struct vmmctl_local *l = &r->p->local;

	if (l->dump)
		return console_dump(r, l->vm);
	if (l->send) {
		uint8_t data[4096];
		size_t n = unescape(l->send, data, sizeof(data));

		if (n == 0) {
			fprintf(r->env->err, "vmmctl: console: --send needs text\n");
			return VMMCTL_EXIT_USAGE;
		}
		return console_write(r, l->vm, data, n);
	}
	return console_interactive(r, l->vm);
}

/* ---- export, import: a saved VM as a file ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes, rate and time left on one terminal line, at most five times a second. */
struct progress {
	const char *what;
	double started, shown;
	uint64_t first; /* bytes already there when this run began (a resumed transfer) */
};

static void progress_show(struct run *r, struct progress *pg, uint64_t done, uint64_t total,
			  bool last)
{
	double t = now_s();

	if (!r->env->progress_tty || r->p->opts.json || (!last && t - pg->shown < 0.2))
		return;
	pg->shown = t;
	double rate = t > pg->started ? (double)(done - pg->first) / (t - pg->started) : 0;
	double left = rate > 0 ? (double)(total - done) / rate : 0;
	fprintf(r->env->err, "\r%s: %llu of %llu KiB (%u%%), %.1f KiB/s, %.0f s left  %s",
		pg->what, (unsigned long long)(done / 1024), (unsigned long long)(total / 1024),
		total ? (unsigned)(done * 100 / total) : 100, rate / 1024, left, last ? "\n" : "");
	fflush(r->env->err);
}

static void transfer_done(struct run *r, const char *vm, const char *file, uint64_t bytes,
			  double started)
{
	double secs = now_s() - started;

	if (r->p->opts.json)
		fprintf(r->env->out, "{\"vm\":\"%s\",\"file\":\"%s\",\"bytes\":%llu,"
			"\"seconds\":%.2f}\n", vm, file, (unsigned long long)bytes, secs);
	else
		fprintf(r->env->out, "%s: %llu KiB, %s, in %.1f s\n", vm,
			(unsigned long long)(bytes / 1024), file, secs);
}

/* The whole file is one save file (docs/savefile.md), else a message and false. */
static bool file_checks(struct run *r, const char *what, const uint8_t *data, size_t size,
			struct savefile_header *h)
{
	struct savefile_reader rd;
	struct savefile_error err;

	if (!savefile_open(&rd, data, size, &err)) {
		fprintf(r->env->err, "vmmctl: %s: not a whole save file: %s\n", what, err.text);
		return false;
	}
	*h = rd.walk.header;
	return true;
}

#define EXPORT_MAX (64ull << 30)

/*
 * A chunk of an export or import, asked again while the hypervisor
 * answers BUSY: it reads or writes the VM's disk in steps meanwhile, and
 * says how far it is, which a terminal shows. Ctrl-C ends the wait.
 */
static enum vmmctl_call transfer_call(struct run *r, uint16_t code, const uint8_t *buf,
				      size_t len)
{
	for (;;) {
		enum vmmctl_call c = vmmctl_call(&r->c, code, buf, len);

		if (c != VMMCTL_CALL_ERROR || r->c.err_code != API_E_BUSY)
			return c;
		if (r->env->progress_tty && !r->p->opts.json) {
			fprintf(r->env->err, "\r%s  ", r->c.err_msg);
			fflush(r->env->err);
		}
		if (interrupted(r))
			return VMMCTL_CALL_INTR;
		sleep_ms(r, r->c.err_retry_after_ms == 0 ? 200
			    : r->c.err_retry_after_ms > 2000 ? 2000
			    : (int)r->c.err_retry_after_ms);
	}
}

static int cmd_export(struct run *r)
{
	const char *vm = r->p->local.vm, *file = r->p->local.file;
	char part[4096];
	struct savefile_header h;
	uint64_t size = 0, have = 0;
	uint8_t *data = NULL;

	snprintf(part, sizeof(part), "%s.part", file);
	/* A transfer the line cut goes on from what FILE.part holds. */
	FILE *f = fopen(part, "ab+");
	if (!f) {
		fprintf(r->env->err, "vmmctl: export: %s: %s\n", part, strerror(errno));
		return VMMCTL_EXIT_USAGE;
	}
	fseek(f, 0, SEEK_END);
	have = (uint64_t)ftell(f);
	struct progress pg = { "export", now_s(), 0, have };
	for (;;) {
		uint8_t buf[128];
		struct tlv_writer w;
		const uint8_t *d;
		size_t n;
		uint64_t next;

		tlv_writer_init(&w, buf, sizeof(buf));
		tlv_put_str(&w, API_TAG_VM, vm);
		tlv_put_u64(&w, API_TAG_OFFSET, have);
		if (r->p->local.with_disk)
			tlv_put_u8(&w, API_TAG_WITH_DISK, 1);
		enum vmmctl_call c = transfer_call(r, API_REQ_EXPORT_SAVED_STATE, buf, w.len);
		if (c != VMMCTL_CALL_OK) {
			fclose(f);
			return report(r, c, "ExportSavedState");
		}
		const uint8_t *p = r->c.resp.payload;
		size_t len = r->c.resp.length;
		if (tlv_get_u64(p, len, API_TAG_SAVED_SIZE, &size) != TLV_OK ||
		    tlv_get_bytes(p, len, API_TAG_DATA, &d, &n) != TLV_OK ||
		    tlv_get_u64(p, len, API_TAG_NEXT_OFFSET, &next) != TLV_OK ||
		    next != have + n || size > EXPORT_MAX || next > size || (n == 0 && next < size)) {
			fclose(f);
			return report(r, VMMCTL_CALL_PROTO, "ExportSavedState");
		}
		if (n && fwrite(d, 1, n, f) != n) {
			fprintf(r->env->err, "vmmctl: export: %s: %s\n", part, strerror(errno));
			fclose(f);
			return VMMCTL_EXIT_USAGE;
		}
		have = next;
		progress_show(r, &pg, have, size, have == size);
		if (have == size)
			break;
		if (interrupted(r)) {
			fclose(f);
			fprintf(r->env->err, "vmmctl: export: interrupted at %llu of %llu bytes; run it "
				"again to go on\n", (unsigned long long)have, (unsigned long long)size);
			return 130;
		}
	}
	/* Checked whole before it takes FILE's name: a damaged transfer never looks complete. */
	data = malloc(size ? size : 1);
	bool ok = data && fseek(f, 0, SEEK_SET) == 0 && fread(data, 1, size, f) == size &&
		  file_checks(r, "export", data, size, &h);
	fclose(f);
	free(data);
	if (!ok) {
		unlink(part);
		fprintf(r->env->err, "vmmctl: export: %s removed; run it again\n", part);
		return VMMCTL_EXIT_PROTO;
	}
	if (rename(part, file) != 0) {
		fprintf(r->env->err, "vmmctl: export: %s: %s\n", file, strerror(errno));
		return VMMCTL_EXIT_USAGE;
	}
	transfer_done(r, vm, file, size, pg.started);
	return VMMCTL_EXIT_OK;
}

/* Chunks of ImportVirtualMachine: the frame less the name, size and offset tags. */
#define IMPORT_CHUNK (PROTO_MAX_PAYLOAD - 128)

static enum vmmctl_call import_send(struct run *r, const char *vm, uint64_t size,
				    uint64_t offset, const uint8_t *d, size_t n)
{
	uint8_t buf[PROTO_MAX_PAYLOAD];
	struct tlv_writer w;

	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_str(&w, API_TAG_VM, vm);
	if (r->p->local.network)
		tlv_put_str(&w, API_TAG_NET, r->p->local.network);
	if (r->p->local.disk)
		tlv_put_str(&w, API_TAG_STORE_DISK, r->p->local.disk);
	tlv_put_u64(&w, API_TAG_SAVED_SIZE, size);
	tlv_put_u64(&w, API_TAG_OFFSET, offset);
	tlv_put(&w, API_TAG_DATA, d, n);
	return transfer_call(r, API_REQ_IMPORT_VIRTUAL_MACHINE, buf, w.len);
}

static int cmd_import(struct run *r)
{
	const char *file = r->p->local.file;
	struct savefile_header h;
	enum vmmctl_call c;
	uint64_t next = 0;
	long size;
	FILE *f = fopen(file, "rb");

	if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
		fprintf(r->env->err, "vmmctl: import: %s: %s\n", file, strerror(errno));
		if (f)
			fclose(f);
		return VMMCTL_EXIT_USAGE;
	}
	uint8_t *data = malloc(size ? (size_t)size : 1);
	bool ok = data && fseek(f, 0, SEEK_SET) == 0 &&
		  fread(data, 1, (size_t)size, f) == (size_t)size;
	fclose(f);
	if (!ok || !file_checks(r, "import", data, (size_t)size, &h)) {
		if (!ok)
			fprintf(r->env->err, "vmmctl: import: %s: cannot read it\n", file);
		free(data);
		return VMMCTL_EXIT_USAGE;
	}
	const char *vm = r->p->local.vm ? r->p->local.vm : h.name;
	if (r->p->local.resume) {
		/* Asking past what was received: the answer says how much was. */
		c = import_send(r, vm, (uint64_t)size, (uint64_t)size, data, 0);
		bool said = tlv_get_u64(r->c.resp.payload, r->c.resp.length, API_TAG_NEXT_OFFSET,
					&next) == TLV_OK;
		/* All of it was there: the probe ended the import (its disk written meanwhile). */
		if (c == VMMCTL_CALL_OK && said && next == (uint64_t)size) {
			free(data);
			transfer_done(r, vm, file, (uint64_t)size, now_s());
			return VMMCTL_EXIT_OK;
		}
		if (c == VMMCTL_CALL_ERROR && said)
			fprintf(r->env->err, "vmmctl: import: going on from byte %llu\n",
				(unsigned long long)next);
		else
			next = 0;
	}
	struct progress pg = { "import", now_s(), 0, next };
	uint64_t at = next;
	do {
		size_t n = (uint64_t)size - at < IMPORT_CHUNK ? (size_t)((uint64_t)size - at)
							       : IMPORT_CHUNK;
		c = import_send(r, vm, (uint64_t)size, at, data + at, n);
		if (c != VMMCTL_CALL_OK) {
			free(data);
			if (c == VMMCTL_CALL_TIMEOUT || c == VMMCTL_CALL_CLOSED)
				fprintf(r->env->err, "vmmctl: import: stopped at byte %llu of %ld; "
					"'vmmctl import --resume' goes on\n", (unsigned long long)at,
					size);
			return report(r, c, "ImportVirtualMachine");
		}
		if (tlv_get_u64(r->c.resp.payload, r->c.resp.length, API_TAG_NEXT_OFFSET, &next) !=
			    TLV_OK || next != at + n) {
			free(data);
			return report(r, VMMCTL_CALL_PROTO, "ImportVirtualMachine");
		}
		at = next;
		progress_show(r, &pg, at, (uint64_t)size, at == (uint64_t)size);
		if (interrupted(r)) {
			free(data);
			fprintf(r->env->err, "vmmctl: import: interrupted at byte %llu; 'vmmctl import "
				"--resume' goes on\n", (unsigned long long)at);
			return 130;
		}
	} while (at < (uint64_t)size);
	free(data);
	transfer_done(r, vm, file, (uint64_t)size, pg.started);
	return VMMCTL_EXIT_OK;
}

/* ---- auth-answer (offline) ---- */

static int cmd_auth_answer(struct run *r)
{
	uint8_t nonce[256], mac[SHA256_SIZE];
	size_t n;
	char hex[2 * SHA256_SIZE + 1];

	if (!r->env->key) {
		fprintf(r->env->err, "vmmctl: auth-answer: needs --key-file FILE\n");
		return VMMCTL_EXIT_USAGE;
	}
	if (!vmmctl_parse_hex(r->p->local.nonce, nonce, sizeof(nonce), &n) || n == 0) {
		fprintf(r->env->err, "vmmctl: auth-answer: the nonce is not hex\n");
		return VMMCTL_EXIT_USAGE;
	}
	hmac_sha256(r->env->key, r->env->key_len, nonce, n, mac);
	for (unsigned i = 0; i < SHA256_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	if (r->p->opts.json)
		fprintf(r->env->out, "{\"auth_mac\":\"%s\"}\n", hex);
	else
		fprintf(r->env->out, "auth answer %s\n", hex);
	return VMMCTL_EXIT_OK;
}

/* ---- Entry ---- */

static uint32_t random_id(void)
{
	uint32_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			v = 0;
		close(fd);
	}
	if (v == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		v = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^ (uint32_t)getpid();
	}
	return v;
}

int vmmctl_run(const struct vmmctl_parsed *p, struct vmmctl_env *env)
{
	struct run *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return VMMCTL_EXIT_CONN;
	r->p = p;
	r->env = env;
	r->c.fd = -1;
	r->c.next_id = env->first_id ? env->first_id : random_id();
	if (p->sub->kind == VK_AUTH_ANSWER) {
		rc = cmd_auth_answer(r);
		free(r);
		return rc;
	}
	rc = session(r);
	if (rc == VMMCTL_EXIT_OK) {
		switch (p->sub->kind) {
		case VK_REQUEST:
		case VK_STATE_OP:
		case VK_DHCP_SET:
			rc = p->cmd.request == API_REQ_SAVE ? cmd_save(r) : cmd_request(r);
			break;
		case VK_NET_SHOW:
			rc = cmd_net_show(r);
			break;
		case VK_EVENTS:
			rc = cmd_events(r);
			break;
		case VK_WAIT:
			rc = cmd_wait(r);
			break;
		case VK_EXPORT:
			rc = cmd_export(r);
			break;
		case VK_IMPORT:
			rc = cmd_import(r);
			break;
		case VK_CONSOLE:
			rc = cmd_console(r);
			break;
		default:
			rc = VMMCTL_EXIT_USAGE;
			break;
		}
	}
	if (env->interrupted)
		*env->interrupted = 0; /* let Goodbye be answered */
	disconnect(r, r->connected && r->c.fd >= 0);
	fflush(env->out);
	free(r);
	return rc;
}
