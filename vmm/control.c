/*
 * The dispatcher of the management API: the table of request types with
 * the privilege each needs, the answer plumbing, and the requests that
 * wait (docs/protocol.md, "Pending answers").
 */
#include "vmm/control_internal.h"

#include "lib/fmt.h"
#include "vmm/clock.h"

#include <stdarg.h>
#include <string.h>

/*
 * Requests waiting for their answer. The management VM has one request in
 * flight at a time; the spare slots are for callers to come (the guest
 * additions), so that one waiting caller never blocks another.
 */
#define PENDING_MAX 4

struct request_type {
	uint16_t request; /* its name is api_request_name(request): one list, include/abi/api.h */
	enum control_privilege privilege;
	int (*handler)(struct call *c);
};

/* Every request the hypervisor executes; AuthChallenge and AuthResponse are the management VM's own. */
static const struct request_type request_types[] = {
	{ API_REQ_HELLO, CONTROL_PRIV_NONE, hello },
	{ API_REQ_GOODBYE, CONTROL_PRIV_NONE, goodbye },
	{ API_REQ_GET_HOST_INFO, CONTROL_PRIV_READ, host_info },
	{ API_REQ_CREATE_VIRTUAL_MACHINE, CONTROL_PRIV_ADMIN, create_vm },
	{ API_REQ_DELETE_VIRTUAL_MACHINE, CONTROL_PRIV_ADMIN, delete_vm },
	{ API_REQ_LIST_VIRTUAL_MACHINES, CONTROL_PRIV_READ, list_vms },
	{ API_REQ_FIND_VIRTUAL_MACHINE, CONTROL_PRIV_READ, find_vm },
	{ API_REQ_CREATE_VIRTUAL_NETWORK, CONTROL_PRIV_ADMIN, create_net },
	{ API_REQ_DELETE_VIRTUAL_NETWORK, CONTROL_PRIV_ADMIN, delete_net },
	{ API_REQ_LIST_VIRTUAL_NETWORKS, CONTROL_PRIV_READ, list_nets },
	{ API_REQ_SUBSCRIBE_EVENTS, CONTROL_PRIV_READ, subscribe },
	{ API_REQ_IMPORT_VIRTUAL_MACHINE, CONTROL_PRIV_ADMIN, import_vm },
	{ API_REQ_CREATE_VIRTUAL_HARD_DISK, CONTROL_PRIV_ADMIN, create_disk },
	{ API_REQ_LIST_VIRTUAL_HARD_DISKS, CONTROL_PRIV_READ, list_disks },
	{ API_REQ_DELETE_VIRTUAL_HARD_DISK, CONTROL_PRIV_ADMIN, delete_disk },
	{ API_REQ_GET_STATE, CONTROL_PRIV_READ, get_state },
	{ API_REQ_STARTUP, CONTROL_PRIV_OPERATE, startup_vm },
	{ API_REQ_TURN_OFF, CONTROL_PRIV_OPERATE, turn_off_vm },
	{ API_REQ_RESET, CONTROL_PRIV_OPERATE, reset_vm },
	{ API_REQ_SAVE, CONTROL_PRIV_OPERATE, save_vm },
	{ API_REQ_DISCARD_SAVED_STATE, CONTROL_PRIV_OPERATE, discard_saved_state },
	/* The whole of a VM's memory goes out, or a VM comes in: the administrator's. */
	{ API_REQ_EXPORT_SAVED_STATE, CONTROL_PRIV_ADMIN, export_saved_state },
	{ API_REQ_PAUSE, CONTROL_PRIV_OPERATE, pause_vm },
	{ API_REQ_RESUME, CONTROL_PRIV_OPERATE, resume_vm },
	{ API_REQ_ADD_NETWORK_ADAPTER, CONTROL_PRIV_ADMIN, add_nic },
	{ API_REQ_REMOVE_NETWORK_ADAPTER, CONTROL_PRIV_ADMIN, remove_nic },
	{ API_REQ_LIST_NETWORK_ADAPTERS, CONTROL_PRIV_READ, list_nics },
	/* Console output can hold what the guest prints for its operator only. */
	{ API_REQ_CONSOLE_READ, CONTROL_PRIV_OPERATE, console_read },
	{ API_REQ_CONSOLE_WRITE, CONTROL_PRIV_OPERATE, console_write },
	{ API_REQ_GET_MAC_ADDRESS, CONTROL_PRIV_READ, get_mac },
	/* Cabling decides which guests can reach each other: the machine's shape. */
	{ API_REQ_ATTACH_TO_VIRTUAL_NETWORK, CONTROL_PRIV_ADMIN, attach_nic },
	{ API_REQ_DETACH_FROM_VIRTUAL_NETWORK, CONTROL_PRIV_ADMIN, detach_nic },
	{ API_REQ_GET_ADAPTERS, CONTROL_PRIV_READ, get_adapters },
	{ API_REQ_GET_STATISTICS, CONTROL_PRIV_READ, get_statistics },
	{ API_REQ_GET_DHCP_SETTINGS, CONTROL_PRIV_READ, get_dhcp },
	{ API_REQ_SET_DHCP_SETTINGS, CONTROL_PRIV_ADMIN, set_dhcp },
	{ API_REQ_GET_LEASES, CONTROL_PRIV_READ, get_leases },
	{ API_REQ_GET_HEARTBEAT, CONTROL_PRIV_READ, guest_os },
	{ API_REQ_SHUTDOWN, CONTROL_PRIV_OPERATE, guest_os },
	{ API_REQ_GET_OS_NAME, CONTROL_PRIV_READ, guest_os },
	{ API_REQ_GET_ADDITIONS_VERSION, CONTROL_PRIV_READ, guest_os },
	{ API_REQ_SYNC_TIME, CONTROL_PRIV_OPERATE, sync_time_setting },
	/* Code run inside a guest, and the guest's own settings, are the guest's owner's. */
	{ API_REQ_EXECUTE_COMMAND, CONTROL_PRIV_ADMIN, guest_os },
	{ API_REQ_SET_PARAMETER, CONTROL_PRIV_ADMIN, guest_os },
	{ API_REQ_INSTALL_ADDITIONS, CONTROL_PRIV_ADMIN, install_additions },
};

static const char *const privilege_names[] = {
	[CONTROL_PRIV_NONE] = "none",
	[CONTROL_PRIV_READ] = "read",
	[CONTROL_PRIV_OPERATE] = "operate",
	[CONTROL_PRIV_ADMIN] = "admin",
};

/* A request that waits: what is needed to run its handler again, and whom to answer. */
struct pending_call {
	bool used;
	const struct control_caller *caller;
	uint32_t id;
	uint16_t request;
	uint64_t wait_until_ns;
	size_t len;
	uint8_t payload[PROTO_MAX_PAYLOAD];
};

static struct pending_call pending[PENDING_MAX];
/* Every answer is written here and handed to its caller at once. */
static uint8_t answer[PROTO_MAX_PAYLOAD];

int fail(struct call *c, enum api_error e, const char *format, ...)
{
	char message[API_STR_MAX + 1];
	va_list ap;

	va_start(ap, format);
	fmt_vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	/* The answer so far is dropped: an error frame holds only the error. */
	c->w.len = 0;
	c->w.overflow = false;
	c->error = (uint16_t)e;
	tlv_put_u16(&c->w, API_TAG_ERROR, (uint16_t)e);
	tlv_put_str(&c->w, API_TAG_MESSAGE, message);
	return e;
}

const char *request_name(uint16_t request)
{
	const char *name = api_request_name(request);
	return name ? name : "request";
}

int need_str(struct call *c, uint16_t request, uint8_t tag, char *out, size_t cap)
{
	int r = tlv_get_str(c->req, c->len, tag, out, cap);

	if (r == TLV_ABSENT)
		return fail(c, API_E_INVALID_ARGUMENT, "%s: missing %s", request_name(request),
			    api_tag_name(tag));
	if (r != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "%s: %s is too long", request_name(request),
			    api_tag_name(tag));
	return 0;
}

/*
 * Paged lists: entries from `cursor` on while they fit; a cursor for the
 * next page when one did not. `put` writes entry i, or nothing when it is not shown.
 */
int put_paged(struct call *c, unsigned total, void (*put)(struct call *, unsigned))
{
	uint32_t cursor = 0;

	tlv_get_u32(c->req, c->len, API_TAG_CURSOR, &cursor);
	for (unsigned i = cursor; i < total; i++) {
		size_t before = c->w.len;
		put(c, i);
		/* Room for the cursor must remain. */
		if (c->w.overflow || c->w.cap - c->w.len < TLV_HEADER_SIZE + 4) {
			c->w.len = before;
			c->w.overflow = false;
			tlv_put_u32(&c->w, API_TAG_CURSOR, i);
			return 0;
		}
	}
	return 0;
}

static const struct request_type *request_type(uint16_t request)
{
	for (size_t i = 0; i < sizeof(request_types) / sizeof(request_types[0]); i++)
		if (request_types[i].request == request)
			return &request_types[i];
	return NULL;
}

bool control_request_privilege(uint16_t request, enum control_privilege *needed)
{
	const struct request_type *type = request_type(request);

	if (type)
		*needed = type->privilege;
	return type != NULL;
}

static struct pending_call *free_pending_slot(void)
{
	for (unsigned i = 0; i < PENDING_MAX; i++)
		if (!pending[i].used)
			return &pending[i];
	return NULL;
}

bool call_wait(struct call *c, uint32_t wait_ms)
{
	if (c->waiting)
		return clock_ns() < c->wait_until_ns;
	if (!free_pending_slot())
		return false;
	c->waiting = true;
	c->wait_until_ns = clock_ns() + wait_ms * 1000000ULL;
	return true;
}

static int run_handler(struct call *c, const struct request_type *type)
{
	tlv_writer_init(&c->w, answer, sizeof(answer));
	int r = type->handler(c);
	if (r == 0 && c->w.overflow)
		fail(c, API_E_INTERNAL, "%s: the answer does not fit in a frame",
		     request_name(c->request));
	return r;
}

/* The payload is copied: the caller's copy is only valid during control_execute. */
static void keep_pending(struct call *c, uint32_t id)
{
	struct pending_call *p = free_pending_slot();

	/* call_wait saw a free slot; a handler that waits without asking gets an error. */
	if (!c->waiting || !p) {
		fail(c, API_E_INTERNAL, "%s: waits without a slot", request_name(c->request));
		return;
	}
	*p = (struct pending_call){ .used = true, .caller = c->caller, .id = id,
				    .request = c->request, .wait_until_ns = c->wait_until_ns,
				    .len = c->len };
	memcpy(p->payload, c->req, c->len);
}

void control_execute(const struct control_caller *caller, uint32_t id, uint16_t request,
		     const uint8_t *payload, size_t len)
{
	struct call c = { .caller = caller, .request = request, .req = payload, .len = len };
	const struct request_type *type = request_type(request);

	tlv_writer_init(&c.w, answer, sizeof(answer));
	if (len > PROTO_MAX_PAYLOAD || !api_payload_valid(payload, len))
		fail(&c, API_E_BAD_FRAME, "%s: malformed payload", request_name(request));
	else if (!type)
		fail(&c, API_E_UNKNOWN_REQUEST, "unknown request 0x%x", request);
	else if (caller->privilege < type->privilege)
		fail(&c, API_E_PERMISSION_DENIED, "%s: needs the %s privilege",
		     request_name(request), privilege_names[type->privilege]);
	else if (run_handler(&c, type) == CALL_PENDING) {
		keep_pending(&c, id);
		if (!c.error)
			return;
	}
	caller->answer(id, c.error, answer, c.w.len);
}

/* Runs each waiting handler again: it answers, or waits on while its time lasts. */
static void answer_pending(void)
{
	for (unsigned i = 0; i < PENDING_MAX; i++) {
		struct pending_call *p = &pending[i];
		if (!p->used)
			continue;
		struct call c = { .caller = p->caller, .request = p->request, .req = p->payload,
				  .len = p->len, .waiting = true,
				  .wait_until_ns = p->wait_until_ns };
		if (run_handler(&c, request_type(p->request)) == CALL_PENDING)
			continue;
		p->used = false;
		p->caller->answer(p->id, c.error, answer, c.w.len);
	}
}

void control_poll(void)
{
	control_vm_follow_events();
	console_input_feed();
	answer_pending();
	control_saved_poll();
}

void control_init(const struct boot_info *bi)
{
	control_host_init(bi);
	control_vm_init(bi);
	control_network_init(bi);
	control_saved_init(bi);
}
