/*
 * A saved VM as one file over the line (docs/protocol.md, "Moving a VM"):
 * ExportSavedState reads a Saved VM's file in chunks by offset, so that a
 * dropped line resumes where it stopped; ImportVirtualMachine writes a
 * file in chunks into hypervisor memory and, with its last byte, checks
 * it whole and makes a Saved VM of it, which Startup restores. With
 * with_disk the exported file carries the VM's disk too, and an import of
 * such a file makes that disk a disk of this store.
 */
#include "vmm/control_internal.h"

#include "boot/boot_info.h"
#include "boot/config.h"
#include "lib/store.h"
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
 * An export with the disk keeps its file as long for a resumed export.
 */
#define TRANSFER_ABANDONED_NS (10ull * 60 * 1000000000)
static struct {
	char name[API_NAME_MAX + 1];
	char network[API_NAME_MAX + 1]; /* every adapter's network here; "" keeps the file's */
	char disk[API_NAME_MAX + 1];    /* the store disk a carried disk becomes */
	uint64_t base, pages, size, received;
	uint64_t last_chunk_ns;
} import;

/*
 * The file of the one export with its disk: the Saved VM's file, then the
 * disk's records, made at offset 0 and kept for the chunks after it, so
 * that a resumed export reads the same bytes (a Saved VM changes neither),
 * until its last chunk is read or no chunk came for TRANSFER_ABANDONED_NS.
 */
static struct carried_export {
	unsigned vm_id;
	uint64_t saved_at;
	struct vm_saved file;
	uint64_t last_chunk_ns;
} carried;

static void import_drop(void)
{
	if (import.pages)
		page_alloc_free(boot->host_pages, import.base, import.pages);
	memset(&import, 0, sizeof(import));
}

static void carried_drop(void)
{
	if (carried.file.pages)
		page_alloc_free(boot->host_pages, carried.file.base, carried.file.pages);
	memset(&carried, 0, sizeof(carried));
}

void control_saved_poll(void)
{
	uint64_t now = clock_ns();

	if (carried.file.pages && now - carried.last_chunk_ns >= TRANSFER_ABANDONED_NS)
		carried_drop();
	if (!import.pages || now - import.last_chunk_ns < TRANSFER_ABANDONED_NS)
		return;
	log_warn("vm '%s': import abandoned at %llu of %llu KiB (no chunk for %llu minutes), "
		 "its memory freed", import.name, (unsigned long long)(import.received / 1024),
		 (unsigned long long)(import.size / 1024),
		 (unsigned long long)(TRANSFER_ABANDONED_NS / 60000000000ull));
	import_drop();
}

/* A disk is read and written a piece at a time, each piece one run at most. */
#define DISK_PIECE SAVEFILE_SCRATCH_SIZE

/* Working memory of one copy of a file, in host pages: the stack stays small. */
struct copy_scratch {
	struct lz_workspace ws;
	uint8_t run[SAVEFILE_SCRATCH_SIZE];
	uint8_t piece[DISK_PIECE];
	uint8_t config[PROTO_MAX_PAYLOAD];
};
#define COPY_SCRATCH_PAGES ((sizeof(struct copy_scratch) + PAGE_SIZE - 1) / PAGE_SIZE)

static struct copy_scratch *scratch_alloc(void)
{
	uint64_t pa;

	return page_alloc_alloc(boot->host_pages, COPY_SCRATCH_PAGES, 1, &pa)
		       ? NULL : (struct copy_scratch *)(uintptr_t)pa;
}

static void scratch_free(struct copy_scratch *s)
{
	page_alloc_free(boot->host_pages, (uint64_t)(uintptr_t)s, COPY_SCRATCH_PAGES);
}

/* The disk's contents as the file's disk records, a piece at a time. */
static bool write_disk(struct savefile_writer *w, const struct disk *d, struct copy_scratch *s)
{
	lz_workspace_init(&s->ws);
	if (!savefile_write_disk(w, d->size))
		return false;
	for (uint64_t at = 0; at < d->size; at += DISK_PIECE) {
		uint64_t n = d->size - at < DISK_PIECE ? d->size - at : DISK_PIECE;
		uint64_t pages = (n + SAVEFILE_PAGE_SIZE - 1) / SAVEFILE_PAGE_SIZE;

		memset(s->piece + n, 0, pages * SAVEFILE_PAGE_SIZE - n);
		if (!disk_read(d, at, s->piece, n)) {
			fmt_snprintf(w->error.text, sizeof(w->error.text), "the disk cannot be read "
				     "at byte %llu", (unsigned long long)at);
			return false;
		}
		if (!savefile_write_disk_pages(w, s->piece, pages, &s->ws, s->run))
			return false;
	}
	return true;
}

/*
 * A configuration record rewritten for a copy of its file into out:
 * its length, 0 when it does not fit.
 */
typedef size_t (*config_edit)(const struct savefile_record *config, const void *ctx,
			      uint8_t *out, size_t cap);

/*
 * A copy of the save file from into new host pages: its records in order,
 * the configuration record as edit makes it, a disk it carries left out,
 * and then, given disk, that disk's contents. 0, or -1 having answered c.
 */
static int copy_file(struct call *c, const struct vm_saved *from, config_edit edit,
		     const void *edit_ctx, const struct disk *disk, struct copy_scratch *s,
		     struct vm_saved *to)
{
	const char *rq = request_name(c->request);
	struct savefile_reader r;
	struct savefile_error err;
	struct savefile_record rec;
	struct savefile_writer w;
	uint64_t base;

	if (!savefile_open(&r, (const uint8_t *)(uintptr_t)from->base, from->bytes, &err))
		return fail(c, API_E_INVALID_ARGUMENT, "%s: the file is refused: %s", rq, err.text);
	/* The copy leaves out a disk the file carries: no room for it, beside the file. */
	uint64_t left_out = 0;
	struct savefile_reader walk = r;
	while (savefile_next(&walk, &rec))
		if (rec.type == SAVEFILE_DISK || rec.type == SAVEFILE_DISK_RUN)
			left_out += SAVEFILE_RECORD_HEADER_SIZE + rec.size;
	uint64_t bound = from->bytes - left_out + sizeof(s->config) +
			 (disk ? savefile_disk_bound(disk->size) : 0);
	uint64_t pages = (bound + PAGE_SIZE - 1) / PAGE_SIZE;
	if (page_alloc_alloc(boot->host_pages, pages, 1, &base))
		return fail(c, API_E_NO_RESOURCES, "%s: no memory for a file of up to %llu KiB", rq,
			    (unsigned long long)(bound / 1024));
	struct savefile_buffer out = { (uint8_t *)(uintptr_t)base, bound, 0 };
	bool ok = savefile_writer_init(&w, savefile_buffer_sink, &out) &&
		  savefile_write_header(&w, &r.walk.header);
	while (ok && savefile_next(&r, &rec)) {
		if (rec.type == SAVEFILE_DISK || rec.type == SAVEFILE_DISK_RUN)
			continue;
		if (rec.type == SAVEFILE_CONFIG) {
			rec.size = (uint32_t)edit(&rec, edit_ctx, s->config, sizeof(s->config));
			rec.payload = s->config;
			if (!rec.size) {
				fmt_snprintf(w.error.text, sizeof(w.error.text), "its configuration "
					     "is malformed or does not fit %zu bytes",
					     sizeof(s->config));
				ok = false;
				break;
			}
		}
		ok = savefile_copy_record(&w, &rec);
	}
	if (!ok || (disk && !write_disk(&w, disk, s)) || !savefile_finish(&w)) {
		page_alloc_free(boot->host_pages, base, pages);
		return fail(c, API_E_INVALID_ARGUMENT, "%s: the file is not copied: %s", rq,
			    w.error.text);
	}
	uint64_t used = (out.size + PAGE_SIZE - 1) / PAGE_SIZE;
	if (used < pages)
		page_alloc_free(boot->host_pages, base + used * PAGE_SIZE, pages - used);
	*to = (struct vm_saved){ .base = base, .pages = used, .bytes = out.size,
				 .saved_at = from->saved_at };
	return 0;
}

/*
 * The configuration's tags into w (over out), but for the disk's: all of
 * them, or only disk_size; false for a malformed one, which no copy hides.
 */
static bool config_without_disk(const struct savefile_record *config, bool all,
				struct tlv_writer *w, uint8_t *out, size_t cap)
{
	struct tlv_reader r;
	struct tlv t;

	tlv_writer_init(w, out, cap);
	tlv_reader_init(&r, config->payload, config->size);
	while (tlv_next(&r, &t))
		if (t.tag != API_TAG_DISK_SIZE &&
		    (!all || (t.tag != API_TAG_DISK && t.tag != API_TAG_STORE_DISK)))
			tlv_put(w, t.tag, t.value, t.len);
	return !r.malformed;
}

/* An exported configuration says the disk is in the file, and its size, for an import's first chunk. */
static size_t config_with_disk_size(const struct savefile_record *config, const void *ctx,
				    uint8_t *out, size_t cap)
{
	struct tlv_writer w;

	if (!config_without_disk(config, false, &w, out, cap))
		return 0;
	tlv_put_u64(&w, API_TAG_DISK_SIZE, ((const struct disk *)ctx)->size);
	return tlv_writer_ok(&w) ? w.len : 0;
}

/*
 * The file of an export with the disk for this chunk: the one made for
 * this Saved VM, or, at offset 0 (a new export) or when there is none,
 * one made now. 0, or -1 having answered c.
 */
static int carried_file(struct call *c, const struct vm *vm, uint64_t offset)
{
	uint64_t started = clock_ns();
	struct copy_scratch *s;
	struct vm_saved file;

	if (!vm->disk.size)
		return fail(c, API_E_INVALID_ARGUMENT, "ExportSavedState: %s has no disk to carry",
			    vm->cfg->name);
	if (offset && carried.file.pages && carried.vm_id == vm->id &&
	    carried.saved_at == vm->saved.saved_at) {
		carried.last_chunk_ns = started;
		return 0;
	}
	carried_drop();
	if (!(s = scratch_alloc()))
		return fail(c, API_E_NO_RESOURCES, "ExportSavedState: no memory to read the disk in");
	int rc = copy_file(c, &vm->saved, config_with_disk_size, &vm->disk, &vm->disk, s, &file);
	scratch_free(s);
	if (rc)
		return -1;
	carried = (struct carried_export){ .vm_id = vm->id, .saved_at = vm->saved.saved_at, .file = file,
				     .last_chunk_ns = started };
	log_info("vm '%s': export with its disk: %llu KiB, the disk's %llu KiB with the saved "
		 "state's %llu KiB, made in %llu ms", vm->cfg->name,
		 (unsigned long long)(file.bytes / 1024), (unsigned long long)(vm->disk.size / 1024),
		 (unsigned long long)(vm->saved.bytes / 1024),
		 (unsigned long long)((clock_ns() - started) / 1000000));
	return 0;
}

int export_saved_state(struct call *c)
{
	const uint16_t rq = API_REQ_EXPORT_SAVED_STATE;
	uint64_t offset = 0;
	uint32_t max = CHUNK_MAX;
	uint8_t with_disk = 0;
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
	tlv_get_u8(c->req, c->len, API_TAG_WITH_DISK, &with_disk);
	if (max > CHUNK_MAX)
		max = CHUNK_MAX;
	if (with_disk && carried_file(c, vm, offset))
		return -1;
	const struct vm_saved *file = with_disk ? &carried.file : &vm->saved;
	if (offset > file->bytes)
		return fail(c, API_E_INVALID_ARGUMENT, "ExportSavedState: offset %llu is past the "
			    "file's %llu bytes", (unsigned long long)offset,
			    (unsigned long long)file->bytes);
	uint64_t n = file->bytes - offset < max ? file->bytes - offset : max;
	tlv_put_u64(&c->w, API_TAG_SAVED_SIZE, file->bytes);
	tlv_put_u64(&c->w, API_TAG_OFFSET, offset);
	tlv_put(&c->w, API_TAG_DATA, (const uint8_t *)(uintptr_t)(file->base + offset), (size_t)n);
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, offset + n);
	/* Its last chunk is in the answer: a retry of it makes the same file again. */
	if (with_disk && offset + n == file->bytes)
		carried_drop();
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
		    "the file does not carry (export it with --with-disk)");
}

/*
 * The store disk a disk of bytes the file carries becomes: the import's
 * own name for it, else the disk's name in the file (a store disk's),
 * else the VM's name here; one the store does not hold yet and has room
 * for.
 */
static int choose_import_disk(struct call *c, const struct savefile_record *config,
			      const char *vm_name, uint64_t bytes, char *out, size_t cap)
{
	struct tlv t;

	if (tlv_find(c->req, c->len, API_TAG_STORE_DISK, &t) == TLV_OK) {
		if (need_str(c, c->request, API_TAG_STORE_DISK, out, cap))
			return -1;
	} else if (tlv_get_str(config->payload, config->size, API_TAG_STORE_DISK, out, cap) !=
		   TLV_OK) {
		fmt_snprintf(out, cap, "%s", vm_name);
	}
	if (!store_name_valid(out))
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: '%s' is no store "
			    "name for its disk", out);
	switch (store_host_disk_state(out)) {
	case STORE_DISK_MISSING:
		if (bytes > store_host_free_bytes())
			return fail(c, API_E_NO_RESOURCES, "ImportVirtualMachine: its disk needs %llu "
				    "KiB, the store has %llu KiB free", (unsigned long long)(bytes / 1024),
				    (unsigned long long)(store_host_free_bytes() / 1024));
		return 0;
	case STORE_DISK_NO_STORE:
		return fail(c, API_E_NOT_SUPPORTED, "ImportVirtualMachine: the file carries the "
			    "VM's disk, and there is no store here to keep it (%s)",
			    store_host_status());
	default:
		return fail(c, API_E_ALREADY_EXISTS, "ImportVirtualMachine: the store holds a disk "
			    "'%s' already (name another with --disk)", out);
	}
}

/* A configuration whose disk is now the store disk ctx names. */
static size_t config_on_store_disk(const struct savefile_record *config, const void *ctx,
				   uint8_t *out, size_t cap)
{
	struct tlv_writer w;

	if (!config_without_disk(config, true, &w, out, cap))
		return 0;
	tlv_put_str(&w, API_TAG_STORE_DISK, ctx);
	return tlv_writer_ok(&w) ? w.len : 0;
}

/* A disk an import began is deleted when the import is refused; a store that keeps it says so. */
static void drop_imported_disk(const char *name)
{
	char why[160];

	if (store_host_delete_disk(name, why, sizeof(why)))
		log_err("store: disk '%s' of a refused import is not deleted: %s", name, why);
}

/* The disk runs of the file into the new store disk name, a piece at a time. */
static int write_carried_disk(struct call *c, const struct savefile_reader *file,
			      const char *name, struct copy_scratch *s)
{
	struct savefile_reader r = *file;
	struct savefile_record rec;
	struct savefile_error err = { "" };
	struct savefile_run run;
	uint64_t bytes = r.walk.disk_bytes;
	char why[160];
	int e;
	bool ok = true, decoded = true;

	if ((e = store_host_import_disk_begin(name, bytes, why, sizeof(why))))
		return store_refused(c, e, why);
	while (ok && savefile_next(&r, &rec)) {
		if (rec.type != SAVEFILE_DISK_RUN)
			continue;
		if (!savefile_memory_run(&rec, &run, &err))
			break;
		/* savefile_open held the runs inside the disk's whole pages; its bytes end before. */
		uint64_t at = run.gpa, end = at + (uint64_t)run.pages * SAVEFILE_PAGE_SIZE;
		end = end < bytes ? end : bytes;
		if (run.encoding == SAVEFILE_RUN_ZERO) {
			memset(s->piece, 0, sizeof(s->piece));
			for (uint64_t n; ok && at < end; at += n) {
				n = end - at < DISK_PIECE ? end - at : DISK_PIECE;
				ok = store_host_import_disk_write(name, at, s->piece, n);
			}
		} else {
			decoded = ok = savefile_run_decode(&run, s->piece,
							   (size_t)run.pages * SAVEFILE_PAGE_SIZE, &err);
			ok = ok && store_host_import_disk_write(name, at, s->piece, end - at);
		}
	}
	if (!ok || err.text[0] || (e = store_host_import_disk_end(name, why, sizeof(why)))) {
		drop_imported_disk(name);
		/* A run that does not decode is the file's fault; the rest the store's. */
		if (!decoded || err.text[0])
			return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: its disk is "
				    "refused: %s", err.text);
		return fail(c, API_E_INTERNAL, "ImportVirtualMachine: its disk '%s' is not "
			    "written: %s", name, e ? why : "the store's drive failed");
	}
	return 0;
}

/*
 * The disk a file carries made the store disk name, and the file copied
 * without it into *moved, its configuration naming that disk: what a Save
 * of the VM here would have written. 0, or -1 having answered c, with
 * neither the disk nor a copy left.
 */
static int take_carried_disk(struct call *c, const struct savefile_reader *r,
			     const struct vm_saved *file, const char *name, struct vm_saved *moved)
{
	struct copy_scratch *s = scratch_alloc();

	if (!s)
		return fail(c, API_E_NO_RESOURCES, "ImportVirtualMachine: no memory to write its "
			    "disk from");
	int rc = write_carried_disk(c, r, name, s);
	if (!rc && (rc = copy_file(c, file, config_on_store_disk, name, NULL, s, moved)))
		drop_imported_disk(name);
	scratch_free(s);
	return rc;
}

/*
 * An import refused from its first chunk, before anything is taken: what
 * the file's header says must fit this hypervisor (RAM and the file in
 * free memory, every adapter's network), and a configuration record
 * there (vm_save.c writes it next, the exporter keeps it there) must name
 * no disk, or one the file carries and this store has a name and room for,
 * chosen into disk. Best effort: a configuration that does not fit the
 * chunk is checked with the file's last chunk.
 */
static int import_refused_early(struct call *c, const uint8_t *start, size_t n,
				uint64_t file_pages, const char *network, const char *name,
				char *disk, size_t disk_cap)
{
	struct savefile_header h;
	struct savefile_error err;
	struct savefile_record config;

	if (!savefile_read_header(start, n, &h, &err))
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file is refused: "
			    "%s", err.text);
	if (savefile_read_config(start, n, &config) && config_has_disk(&config)) {
		uint64_t disk_size;
		if (tlv_get_u64(config.payload, config.size, API_TAG_DISK_SIZE, &disk_size) != TLV_OK)
			return refuse_disk(c);
		if (choose_import_disk(c, &config, name, disk_size, disk, disk_cap))
			return -1;
	}
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

/* The file opened (checked whole) and its configuration record found; 0, or -1 having answered c. */
static int open_with_config(struct call *c, const struct vm_saved *file,
			    struct savefile_reader *r, struct savefile_record *config)
{
	struct savefile_error err;

	if (!savefile_open(r, (const uint8_t *)(uintptr_t)file->base, file->bytes, &err))
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file is refused: "
			    "%s", err.text);
	struct savefile_reader walk = *r;
	while (savefile_next(&walk, config))
		if (config->type == SAVEFILE_CONFIG)
			return 0;
	return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file has no "
		    "configuration record");
}

/*
 * A whole save file in host pages made a VM named name: the file checked
 * whole, its configuration record made into a CreateVirtualMachine of that
 * name, its adapters added, and the file handed to the new VM, which is
 * then Saved. An import from the line (from_store false) brings a disk
 * only when the file carries it, which then becomes the store disk named
 * disk; a state the store kept across a reboot names a disk of the same
 * store. On success the VM owns the file's pages, or those of the copy
 * without the disk, the file's being freed.
 */
static int saved_vm_create(struct call *c, const char *name, const struct vm_saved *file,
			   bool from_store, const char *network, const char *disk)
{
	struct savefile_reader r;
	struct savefile_record rec;
	struct vm_saved moved = { 0 };
	const uint64_t received = file->bytes;
	char chosen[API_NAME_MAX + 1];

	if (open_with_config(c, file, &r, &rec))
		return -1;
	const uint64_t disk_bytes = r.walk.disk_bytes;
	if (!from_store && !config_has_disk(&rec) && disk_bytes)
		return fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the file carries a "
			    "disk its configuration does not name");
	if (!from_store && config_has_disk(&rec)) {
		if (!disk_bytes)
			return refuse_disk(c);
		/* Its first chunk did not hold the whole configuration: the disk's name now. */
		if (!disk[0] && choose_import_disk(c, &rec, name, disk_bytes, chosen, sizeof(chosen)))
			return -1;
		disk = disk[0] ? disk : chosen;
		if (take_carried_disk(c, &r, file, disk, &moved))
			return -1;
		if (open_with_config(c, &moved, &r, &rec))
			goto drop_moved;
	}

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
	tlv_get_u64(request, w.len, API_TAG_MEMORY, &memory);
	if (!tlv_writer_ok(&w) || tr.malformed || memory != r.walk.header.ram_bytes) {
		fail(c, API_E_INVALID_ARGUMENT, "ImportVirtualMachine: the configuration record "
		     "does not match the file");
		goto drop_moved;
	}

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
		goto drop_moved;
	struct vm *vm = vm_named(name);
	if (add_saved_nics(c, vm, &r.walk.header, &rec, network)) {
		vm_delete(vm);
		goto drop_moved;
	}
	if (moved.pages) {
		log_info("vm '%s': its disk imported as store disk '%s' (%llu KiB)", name, disk,
			 (unsigned long long)(disk_bytes / 1024));
		page_alloc_free(boot->host_pages, file->base, file->pages);
		file = &moved;
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
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, received);
	put_vm_id(c, vm);
	return 0;

drop_moved:
	if (moved.pages) {
		page_alloc_free(boot->host_pages, moved.base, moved.pages);
		drop_imported_disk(disk);
	}
	return -1;
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
		char disk[API_NAME_MAX + 1] = "";
		if (import_refused_early(c, data, n, pages, network, name, disk, sizeof(disk)))
			return -1;
		if (page_alloc_alloc(boot->host_pages, pages, 1, &import.base))
			return fail(c, API_E_NO_RESOURCES, "ImportVirtualMachine: no memory for "
				    "%llu KiB", (unsigned long long)(size / 1024));
		import.pages = pages;
		import.size = size;
		fmt_snprintf(import.name, sizeof(import.name), "%s", name);
		fmt_snprintf(import.network, sizeof(import.network), "%s", network);
		fmt_snprintf(import.disk, sizeof(import.disk), "%s", disk);
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
	if (saved_vm_create(c, import.name, &file, false, import.network, import.disk)) {
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
		if (saved_vm_create(&c, name, &file, true, "", "")) {
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
