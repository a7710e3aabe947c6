/*
 * A saved VM as one file over the line (docs/protocol.md, "Moving a VM"):
 * ExportSavedState reads a Saved VM's file in chunks by offset, so that a
 * dropped line resumes where it stopped; ImportVirtualMachine writes a
 * file in chunks into hypervisor memory and, with its last byte, checks
 * it whole and makes a Saved VM of it, which Startup restores.
 */
#include "vmm/control_internal.h"

#include "boot/boot_info.h"
#include "boot/config.h"
#include "lib/fmt.h"
#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/savefile.h"
#include "vmm/storage/store_host.h"
#include "vmm/vm.h"
#include "vmm/vm_save.h"

#include <string.h>

/* The data of one answer: the frame less the other tags of an export answer. */
#define CHUNK_MAX (PROTO_MAX_PAYLOAD - 4 * (TLV_HEADER_SIZE + 8) - TLV_HEADER_SIZE)

static const struct boot_info *boot;

/*
 * The one import under way: the file so far in host pages. A new import
 * (offset 0) replaces one that was left unfinished; one whose line
 * dropped waits for `import --resume` this long, then its memory is freed.
 */
#define IMPORT_ABANDONED_NS (10ull * 60 * 1000000000)
static struct {
	char name[API_NAME_MAX + 1];
	char network[API_NAME_MAX + 1]; /* every adapter's network here; "" keeps the file's */
	uint64_t base, pages, size, received;
	uint64_t last_chunk_ns;
} import;

static void import_drop(void)
{
	if (import.pages)
		page_alloc_free(boot->host_pages, import.base, import.pages);
	memset(&import, 0, sizeof(import));
}

void control_saved_poll(void)
{
	if (!import.pages || clock_ns() - import.last_chunk_ns < IMPORT_ABANDONED_NS)
		return;
	log_warn("vm '%s': import abandoned at %llu of %llu KiB (no chunk for %llu minutes), "
		 "its memory freed", import.name, (unsigned long long)(import.received / 1024),
		 (unsigned long long)(import.size / 1024),
		 (unsigned long long)(IMPORT_ABANDONED_NS / 60000000000ull));
	import_drop();
}

int export_saved_state(struct call *c)
{
	const uint16_t rq = API_REQ_EXPORT_SAVED_STATE;
	uint64_t offset = 0;
	uint32_t max = CHUNK_MAX;
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	if (vm->state != VM_STATE_SAVED) {
		fail(c, API_E_INVALID_STATE, "ExportSavedState: %s is %s, not Saved", vm->cfg->name,
		     vm_state_name(vm->state));
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	tlv_get_u64(c->req, c->len, API_TAG_OFFSET, &offset);
	tlv_get_u32(c->req, c->len, API_TAG_MAX_BYTES, &max);
	if (max > CHUNK_MAX)
		max = CHUNK_MAX;
	if (offset > vm->saved.bytes)
		return fail(c, API_E_INVALID_ARGUMENT, "ExportSavedState: offset %llu is past the "
			    "file's %llu bytes", (unsigned long long)offset,
			    (unsigned long long)vm->saved.bytes);
	uint64_t n = vm->saved.bytes - offset < max ? vm->saved.bytes - offset : max;
	tlv_put_u64(&c->w, API_TAG_SAVED_SIZE, vm->saved.bytes);
	tlv_put_u64(&c->w, API_TAG_OFFSET, offset);
	tlv_put(&c->w, API_TAG_DATA, (const uint8_t *)(uintptr_t)(vm->saved.base + offset),
		(size_t)n);
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, offset + n);
	return 0;
}

/* Where adapter i of the file goes: the network of its name, or the one the import names. */
static const char *saved_nic_network(const struct savefile_header *h, unsigned i,
				     const char *network)
{
	return network[0] && h->nics[i].network[0] ? network : h->nics[i].network;
}

/* The adapters of the file's header, with their MACs, on their networks here. */
static int add_saved_nics(struct call *c, const struct vm *vm, const struct savefile_header *h,
			  const struct savefile_record *config, const char *network)
{
	struct cfg_nic nics[SAVEFILE_NICS_MAX];
	struct tlv_reader r;
	struct tlv t;
	unsigned next = 0;

	for (unsigned i = 0; i < h->nic_count; i++) {
		nics[i] = (struct cfg_nic){ .mac_set = true };
		memcpy(nics[i].mac, h->nics[i].mac, sizeof(nics[i].mac));
		fmt_snprintf(nics[i].network, sizeof(nics[i].network), "%s",
			     saved_nic_network(h, i, network));
	}
	/* Each adapter's further source MACs, in the header's order (vm_save.c: encode_config). */
	tlv_reader_init(&r, config->payload, config->size);
	while (tlv_next(&r, &t) && next < h->nic_count) {
		if (t.tag != API_TAG_ALLOW_MACS)
			continue;
		if (t.len != 1 || t.value[0] > CFG_ALLOW_MACS_MAX)
			return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: adapter %u's "
				    "allow_macs is not 0..%u", next, CFG_ALLOW_MACS_MAX);
		/* Port security the file loosens is the admin's to see. */
		if (t.value[0])
			log_info("vm '%s': adapter %u may send with %u further source MAC(s), as "
				 "its file says", vm->cfg->name, next, t.value[0]);
		nics[next++].allow_macs = t.value[0];
	}
	return add_nics(c, vm, nics, h->nic_count);
}

/*
 * Its disk is not in the file: the object in this store holds what was
 * written after the Save (or is another VM's), and a library disk here
 * lacks the VM's writes (its copy-on-write chunks stayed with it), under
 * RAM that caches them: a restore would corrupt the guest's file systems.
 */
static bool config_has_disk(const struct savefile_record *config)
{
	struct tlv t;

	return tlv_find(config->payload, config->size, API_TAG_STORE_DISK, &t) == TLV_OK ||
	       tlv_find(config->payload, config->size, API_TAG_DISK, &t) == TLV_OK;
}

static int refuse_disk(struct call *c)
{
	return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the VM has a disk, which "
		    "the file does not carry (docs/savefile.md)");
}

/*
 * An import refused from its first chunk, before anything is taken: what
 * the file's header says must fit this hypervisor (RAM and the file in
 * free memory, every adapter's network), and a configuration record
 * there (vm_save.c writes it next) must name no disk.
 */
static int import_refused_early(struct call *c, const uint8_t *start, size_t n,
				uint64_t file_pages, const char *network)
{
	struct savefile_header h;
	struct savefile_error err;
	struct savefile_record config;

	if (!savefile_read_header(start, n, &h, &err))
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file is refused: "
			    "%s", err.text);
	if (savefile_read_config(start, n, &config) && config_has_disk(&config))
		return refuse_disk(c);
	uint64_t needed = h.ram_bytes + file_pages * PAGE_SIZE;
	uint64_t free = boot->host_pages->free_pages * PAGE_SIZE;
	if (needed > free)
		return fail(c, API_E_NO_RESOURCES, "ImportVirtualMachine: the VM needs %llu KiB "
			    "(%llu MiB of RAM and its file), %llu KiB are free",
			    (unsigned long long)(needed / 1024),
			    (unsigned long long)(h.ram_bytes >> 20),
			    (unsigned long long)(free / 1024));
	for (unsigned i = 0; i < h.nic_count; i++) {
		const char *net = saved_nic_network(&h, i, network);
		if (net[0] && network_find(net) < 0)
			return fail(c, API_E_NOT_FOUND, "ImportVirtualMachine: adapter %u's network "
				    "'%s' does not exist here (name one that does with --network)",
				    i, net);
	}
	return 0;
}

/*
 * A whole save file in host pages made a VM named name: the file checked
 * whole, its configuration record made into a CreateVirtualMachine of that
 * name, its adapters added, and the file handed to the new VM, which is
 * then Saved. An import from the line (from_store false) cannot carry a
 * store disk; a state the store kept across a reboot can, as it is the
 * same store. On success the VM owns the file's pages.
 */
static int saved_vm_create(struct call *c, const char *name, const struct vm_saved *file,
			   bool from_store, const char *network)
{
	struct savefile_reader r;
	struct savefile_error err;
	struct savefile_record rec;

	if (!savefile_open(&r, (const uint8_t *)(uintptr_t)file->base, file->bytes, &err))
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file is refused: "
			    "%s", err.text);
	bool found = false;
	while (!found && savefile_next(&r, &rec))
		found = rec.type == SAVEFILE_CONFIG;
	if (!found)
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file has no "
			    "configuration record");

	/* Its own name, not the file's; no adapters (the header's are added after), no autostart. */
	uint8_t request[PROTO_MAX_PAYLOAD];
	struct tlv_writer w;
	struct tlv_reader tr;
	struct tlv t;
	uint64_t memory = 0;
	tlv_writer_init(&w, request, sizeof(request));
	tlv_put_str(&w, API_TAG_VM, name);
	tlv_reader_init(&tr, rec.payload, rec.size);
	while (tlv_next(&tr, &t))
		if (t.tag != API_TAG_VM && t.tag != API_TAG_NIC_SPEC && t.tag != API_TAG_AUTOSTART &&
		    t.tag != API_TAG_ALLOW_MACS)
			tlv_put(&w, t.tag, t.value, t.len);
	/* A file from before the agent's port had none: the VM must match its device records. */
	if (tlv_find(rec.payload, rec.size, API_TAG_GUEST_AGENT, &t) != TLV_OK)
		tlv_put_u8(&w, API_TAG_GUEST_AGENT, 0);
	if (!from_store && config_has_disk(&rec))
		return refuse_disk(c);
	tlv_get_u64(request, w.len, API_TAG_MEMORY, &memory);
	if (!tlv_writer_ok(&w) || tr.malformed || memory != r.walk.header.ram_bytes)
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the configuration "
			    "record does not match the file");

	const uint8_t *req = c->req;
	size_t len = c->len;
	c->req = request;
	c->len = w.len;
	c->boot_files_may_be_absent = true;
	int rc = create_vm(c);
	c->boot_files_may_be_absent = false;
	c->req = req;
	c->len = len;
	if (rc)
		return rc;
	struct vm *vm = vm_named(name);
	if (add_saved_nics(c, vm, &r.walk.header, &rec, network)) {
		vm_delete(vm);
		return -1;
	}
	struct vm_saved saved = *file;
	saved.saved_at = r.walk.header.saved_at;
	saved.in_store = from_store;
	vm_adopt_saved_state(vm, &saved);
	if (!from_store) {
		log_info("vm '%s': imported, Saved: %llu KiB (saved as '%s')", vm->cfg->name,
			 (unsigned long long)(file->bytes / 1024), r.walk.header.name);
		vm_save_persist(vm);
	}
	/* The answer: the whole file taken, and the VM as it is now (create_vm's said TurnedOff). */
	c->w.len = 0;
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, file->bytes);
	put_vm_id(c, vm);
	return 0;
}

int import_vm(struct call *c)
{
	const uint16_t rq = API_REQ_IMPORT_VIRTUAL_MACHINE;
	char name[API_NAME_MAX + 1], network[API_NAME_MAX + 1] = "";
	uint64_t size, offset;
	const uint8_t *data;
	size_t n;

	if (need_str(c, rq, API_TAG_VM, name, sizeof(name)))
		return -1;
	struct tlv t;
	if (tlv_find(c->req, c->len, API_TAG_NET, &t) == TLV_OK &&
	    need_str(c, rq, API_TAG_NET, network, sizeof(network)))
		return -1;
	if (tlv_get_u64(c->req, c->len, API_TAG_SAVED_SIZE, &size) != TLV_OK ||
	    tlv_get_u64(c->req, c->len, API_TAG_OFFSET, &offset) != TLV_OK ||
	    tlv_get_bytes(c->req, c->len, API_TAG_DATA, &data, &n) != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: needs saved_size, "
			    "offset and data");
	if (offset == 0) {
		if (vm_named(name))
			return fail(c, API_E_ALREADY_EXISTS, "ImportVirtualMachine: a VM named '%s' "
				    "exists", name);
		/* One refused at boot: the admin decides about it (Startup, or vmm-store delete). */
		if (store_host_has_saved(name))
			return fail(c, API_E_ALREADY_EXISTS, "ImportVirtualMachine: the store keeps "
				    "a saved state of '%s' that was not taken at boot", name);
		if (size < SAVEFILE_PREFIX_SIZE || size > SAVEFILE_RAM_MAX)
			return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: %llu bytes "
				    "cannot be a save file", (unsigned long long)size);
		import_drop();
		uint64_t pages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
		if (import_refused_early(c, data, n, pages, network))
			return -1;
		if (page_alloc_alloc(boot->host_pages, pages, 1, &import.base))
			return fail(c, API_E_NO_RESOURCES, "ImportVirtualMachine: no memory for "
				    "%llu KiB", (unsigned long long)(size / 1024));
		import.pages = pages;
		import.size = size;
		fmt_snprintf(import.name, sizeof(import.name), "%s", name);
		fmt_snprintf(import.network, sizeof(import.network), "%s", network);
		log_info("vm '%s': import of %llu KiB begins", name,
			 (unsigned long long)(size / 1024));
	} else if (!import.pages || strcmp(import.name, name) || import.size != size) {
		fail(c, API_E_INVALID_STATE, "ImportVirtualMachine: no import of '%s' (%llu bytes) "
		     "under way: begin at offset 0", name, (unsigned long long)size);
		tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, 0);
		return -1;
	}
	/* In order; a chunk sent again (the answer was lost) is taken as already there. */
	if (offset > import.received || n > import.size - offset) {
		fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: %zu bytes at %llu do not "
		     "follow the %llu received of %llu", n, (unsigned long long)offset,
		     (unsigned long long)import.received, (unsigned long long)import.size);
		tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, import.received);
		return -1;
	}
	memcpy((uint8_t *)(uintptr_t)import.base + offset, data, n);
	if (offset + n > import.received)
		import.received = offset + n;
	import.last_chunk_ns = clock_ns();
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, import.received);
	if (import.received < import.size)
		return 0;
	const struct vm_saved file = { .base = import.base, .pages = import.pages,
				       .bytes = import.size };
	if (saved_vm_create(c, import.name, &file, false, import.network)) {
		import_drop();
		return -1;
	}
	memset(&import, 0, sizeof(import)); /* the VM owns the pages now */
	return 0;
}

/*
 * Why a configured VM may not take a saved state: another RAM size, or
 * another disk than the one the state was saved against (the guest's RAM
 * holds that disk's caches). NULL when it may.
 */
static const char *config_mismatch(const struct vm *vm, struct savefile_reader *r)
{
	struct savefile_record rec;
	struct tlv t;
	char disk[API_NAME_MAX + 1] = "";

	if (r->walk.header.ram_bytes != vm->boot->ram_bytes)
		return "its RAM size is not the configuration's";
	while (savefile_next(r, &rec))
		if (rec.type == SAVEFILE_CONFIG) {
			if (tlv_find(rec.payload, rec.size, API_TAG_DISK, &t) == TLV_OK)
				return "it was saved with a RAM-copy disk";
			tlv_get_str(rec.payload, rec.size, API_TAG_STORE_DISK, disk, sizeof(disk));
			break;
		}
	if (vm->cfg->disk[0] || strcmp(disk, vm->cfg->store_disk))
		return "its disk is not the configuration's";
	return NULL;
}

/*
 * One saved state the store kept across a host reboot made its VM's
 * again: a VM of the configuration takes it if it is TurnedOff and of the
 * file's RAM size; one that was created through the API is created again
 * from the file, as an import is. Refused, the state stays in the store
 * untouched (the next Save of that VM replaces it).
 */
static void adopt_stored_state(const char *name, uint64_t bytes)
{
	struct vm_saved file = { .bytes = bytes, .in_store = true };
	struct savefile_reader r;
	struct savefile_error err;
	char why[160];
	struct vm *vm = vm_named(name);

	if (bytes < SAVEFILE_PREFIX_SIZE || bytes > SAVEFILE_RAM_MAX) {
		log_err("vm '%s': its saved state in the store (%llu bytes) cannot be a save file; "
			"left there", name, (unsigned long long)bytes);
		return;
	}
	file.pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	if (page_alloc_alloc(boot->host_pages, file.pages, 1, &file.base)) {
		log_err("vm '%s': no memory for its saved state (%llu KiB); left in the store",
			name, (unsigned long long)(bytes / 1024));
		return;
	}
	if (store_host_read_saved(name, (void *)(uintptr_t)file.base, bytes, why, sizeof(why))) {
		log_err("vm '%s': its saved state is not read: %s; left in the store", name, why);
		page_alloc_free(boot->host_pages, file.base, file.pages);
		return;
	}
	if (vm) {
		const char *refusal = !savefile_open(&r, (const uint8_t *)(uintptr_t)file.base,
						     bytes, &err) ? err.text
								  : config_mismatch(vm, &r);
		if (!refusal)
			file.saved_at = r.walk.header.saved_at;
		if (refusal || vm_adopt_saved_state(vm, &file)) {
			vm->stored_state_refused = true;
			log_err("vm '%s': its saved state in the store is not taken (%s); left there, "
				"and the VM is not started: Startup boots it afresh and drops that "
				"state", name, refusal ? refusal : "the VM is not TurnedOff");
			page_alloc_free(boot->host_pages, file.base, file.pages);
			return;
		}
	} else {
		uint8_t scratch[PROTO_MAX_PAYLOAD];
		struct call c = { 0 };
		struct tlv t;
		tlv_writer_init(&c.w, scratch, sizeof(scratch));
		if (saved_vm_create(&c, name, &file, true, "")) {
			bool said = tlv_find(scratch, c.w.len, API_TAG_MESSAGE, &t) == TLV_OK;
			log_err("vm '%s': its saved state in the store does not make a VM again: "
				"%.*s; left there", name, said ? (int)t.len : 0,
				said ? (const char *)t.value : "");
			page_alloc_free(boot->host_pages, file.base, file.pages);
			return;
		}
	}
	log_info("vm '%s': Saved, from the store: %llu KiB saved at %llu (Startup restores it)",
		 name, (unsigned long long)(bytes / 1024),
		 (unsigned long long)vm_named(name)->saved.saved_at);
}

void control_saved_init(const struct boot_info *bi)
{
	char name[API_NAME_MAX + 1];
	uint64_t bytes;

	boot = bi;
	for (unsigned i = 0; store_host_saved_at(i, name, sizeof(name), &bytes); i++)
		adopt_stored_state(name, bytes);
}
