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

/*
 * A disk a transfer carries is read or written in steps from
 * control_saved_poll, each as long as a Save's (SAVE_STEP_NS), so that the
 * VMs run meanwhile; a chunk asked for until the work is done is answered
 * BUSY, to be asked again after DISK_RETRY_MS (another VM's export, which
 * waits for a whole transfer, after EXPORT_TURN_RETRY_MS).
 */
#define DISK_RETRY_MS 200u
#define EXPORT_TURN_RETRY_MS 1000u
/* An export with its disk no chunk was asked of for this long gives way to another VM's. */
#define EXPORT_TURN_NS (60ull * 1000000000)

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

/*
 * A copy of a save file into new host pages: copy_begin writes its
 * records (the configuration as an edit makes it, a disk the file carries
 * left out) and, for a disk to carry, that disk's record; copy_disk_step
 * reads the disk into it; copy_end writes the footer.
 */
struct file_copy {
	struct savefile_writer w;
	struct savefile_buffer out;
	uint64_t base, pages;
	uint64_t disk_at, disk_size; /* the disk's bytes written so far, of disk_size (0: none) */
	uint64_t saved_at;
	struct copy_scratch *s;
};

enum import_disk_state {
	IMPORT_DISK_NONE,    /* none carried, or not begun */
	IMPORT_DISK_WRITING, /* in steps (import_disk_step) */
	IMPORT_DISK_WRITTEN, /* whole in the store, for the VM the import makes */
};

static struct {
	char name[API_NAME_MAX + 1];
	char network[API_NAME_MAX + 1]; /* every adapter's network here; "" keeps the file's */
	char disk[API_NAME_MAX + 1];    /* the store disk a carried disk becomes */
	uint64_t base, pages, size, received;
	uint64_t last_chunk_ns;
	/* The carried disk's writing: the runs left, a zero run under way, why it failed. */
	enum import_disk_state disk_state;
	struct savefile_reader disk_runs;
	uint64_t zero_at, zero_end, disk_done;
	struct copy_scratch *s;
	uint16_t failed_error;
	char failed[SAVEFILE_ERROR_MAX + 64];
} import;

/*
 * The file of the one export with its disk: the Saved VM's file, then the
 * disk's records, made in steps from the first chunk asked for and kept
 * for the chunks after it, so that a resumed export reads the same bytes
 * (a Saved VM changes neither), until its last chunk is read or no chunk
 * came for TRANSFER_ABANDONED_NS.
 */
static struct carried_export {
	unsigned vm_id;
	uint64_t saved_at;
	bool making;            /* its disk being read into copy */
	struct file_copy copy;
	struct vm_saved file;   /* once made */
	char failed[SAVEFILE_ERROR_MAX];
	uint64_t last_chunk_ns, started_ns;
} carried;

static struct copy_scratch *scratch_alloc(void)
{
	uint64_t pa;

	return page_alloc_alloc(boot->host_pages, COPY_SCRATCH_PAGES, 1, &pa)
		       ? NULL : (struct copy_scratch *)(uintptr_t)pa;
}

static void scratch_free(struct copy_scratch *s)
{
	if (s)
		page_alloc_free(boot->host_pages, (uint64_t)(uintptr_t)s, COPY_SCRATCH_PAGES);
}

static void copy_abort(struct file_copy *fc)
{
	if (fc->pages)
		page_alloc_free(boot->host_pages, fc->base, fc->pages);
	scratch_free(fc->s);
	memset(fc, 0, sizeof(*fc));
}

/* A disk an import began is deleted when the import is refused; a store that keeps it says so. */
static void drop_imported_disk(const char *name)
{
	char why[160];

	if (store_host_import_disk_drop(name, why, sizeof(why)))
		log_err("store: disk '%s' of a refused import is not deleted: %s", name, why);
}

static void import_drop(void)
{
	if (import.pages)
		page_alloc_free(boot->host_pages, import.base, import.pages);
	scratch_free(import.s);
	if (import.disk_state != IMPORT_DISK_NONE)
		drop_imported_disk(import.disk);
	memset(&import, 0, sizeof(import));
}

static void carried_drop(void)
{
	copy_abort(&carried.copy);
	if (carried.file.pages)
		page_alloc_free(boot->host_pages, carried.file.base, carried.file.pages);
	memset(&carried, 0, sizeof(carried));
}

static void carried_step(void);
static void import_disk_step(void);

bool control_steps_pending(void)
{
	return carried.making || import.disk_state == IMPORT_DISK_WRITING;
}

void control_saved_poll(void)
{
	uint64_t now = clock_ns();

	carried_step();
	import_disk_step();
	if ((carried.file.pages || carried.making || carried.failed[0]) &&
	    now - carried.last_chunk_ns >= TRANSFER_ABANDONED_NS)
		carried_drop();
	if (!import.pages || now - import.last_chunk_ns < TRANSFER_ABANDONED_NS)
		return;
	log_warn("vm '%s': import abandoned at %llu of %llu KiB (no chunk for %llu minutes), "
		 "its memory freed", import.name, (unsigned long long)(import.received / 1024),
		 (unsigned long long)(import.size / 1024),
		 (unsigned long long)(TRANSFER_ABANDONED_NS / 60000000000ull));
	import_drop();
}

/* A chunk asked for while a carried disk's work goes on: ask again soon. */
static int busy(struct call *c, const char *what, uint64_t done, uint64_t total)
{
	fail(c, API_E_BUSY, "%s: its disk is being %s: %llu of %llu KiB", request_name(c->request),
	     what, (unsigned long long)(done / 1024), (unsigned long long)(total / 1024));
	tlv_put_u32(&c->w, API_TAG_RETRY_AFTER_MS, DISK_RETRY_MS);
	return -1;
}

/*
 * A configuration record rewritten for a copy of its file into out:
 * its length, 0 when it does not fit.
 */
typedef size_t (*config_edit)(const struct savefile_record *config, const void *ctx,
			      uint8_t *out, size_t cap);

/*
 * Begins a copy of the save file from (file_copy): room for it without a
 * disk it carries and with a disk of disk_size to carry (0: none), its
 * records written. 0, or -1 having answered c, nothing kept.
 */
static int copy_begin(struct call *c, const struct vm_saved *from, config_edit edit,
		      const void *edit_ctx, uint64_t disk_size, struct file_copy *fc)
{
	const char *rq = request_name(c->request);
	struct savefile_reader r;
	struct savefile_error err;
	struct savefile_record rec;

	memset(fc, 0, sizeof(*fc));
	if (!savefile_open(&r, (const uint8_t *)(uintptr_t)from->base, from->bytes, &err))
		return fail(c, API_E_INVALID_ARGUMENT, "%s: the file is refused: %s", rq, err.text);
	/* The copy leaves out a disk the file carries: no room for it, beside the file. */
	uint64_t left_out = 0;
	struct savefile_reader walk = r;
	while (savefile_next(&walk, &rec))
		if (rec.type == SAVEFILE_DISK || rec.type == SAVEFILE_DISK_RUN)
			left_out += SAVEFILE_RECORD_HEADER_SIZE + rec.size;
	uint64_t bound = from->bytes - left_out + PROTO_MAX_PAYLOAD +
			 (disk_size ? savefile_disk_bound(disk_size) : 0);
	fc->pages = (bound + PAGE_SIZE - 1) / PAGE_SIZE;
	if (!(fc->s = scratch_alloc()) ||
	    page_alloc_alloc(boot->host_pages, fc->pages, 1, &fc->base)) {
		fc->pages = 0;
		copy_abort(fc);
		return fail(c, API_E_NO_RESOURCES, "%s: no memory for a file of up to %llu KiB", rq,
			    (unsigned long long)(bound / 1024));
	}
	fc->out = (struct savefile_buffer){ (uint8_t *)(uintptr_t)fc->base, bound, 0 };
	fc->disk_size = disk_size;
	fc->saved_at = from->saved_at;
	bool ok = savefile_writer_init(&fc->w, savefile_buffer_sink, &fc->out) &&
		  savefile_write_header(&fc->w, &r.walk.header);
	while (ok && savefile_next(&r, &rec)) {
		if (rec.type == SAVEFILE_DISK || rec.type == SAVEFILE_DISK_RUN)
			continue;
		if (rec.type == SAVEFILE_CONFIG) {
			rec.size = (uint32_t)edit(&rec, edit_ctx, fc->s->config, sizeof(fc->s->config));
			rec.payload = fc->s->config;
			if (!rec.size) {
				fmt_snprintf(fc->w.error.text, sizeof(fc->w.error.text), "its "
					     "configuration is malformed or does not fit %zu bytes",
					     sizeof(fc->s->config));
				ok = false;
				break;
			}
		}
		ok = savefile_copy_record(&fc->w, &rec);
	}
	if (ok && disk_size) {
		lz_workspace_init(&fc->s->ws);
		ok = savefile_write_disk(&fc->w, disk_size);
	}
	if (!ok) {
		fail(c, API_E_INVALID_ARGUMENT, "%s: the file is not copied: %s", rq,
		     fc->w.error.text);
		copy_abort(fc);
		return -1;
	}
	return 0;
}

/*
 * Reads the disk d into the copy for about budget_ns, a piece at least:
 * 1 while some is left, 0 when it is all in, -1 when it fails (the
 * writer's error says why).
 */
static int copy_disk_step(struct file_copy *fc, const struct disk *d, uint64_t budget_ns)
{
	uint64_t started = clock_ns();
	struct copy_scratch *s = fc->s;

	do {
		if (fc->disk_at >= fc->disk_size)
			return 0;
		uint64_t n = fc->disk_size - fc->disk_at < DISK_PIECE ? fc->disk_size - fc->disk_at
								       : DISK_PIECE;
		uint64_t pages = (n + SAVEFILE_PAGE_SIZE - 1) / SAVEFILE_PAGE_SIZE;

		memset(s->piece + n, 0, pages * SAVEFILE_PAGE_SIZE - n);
		if (!disk_read(d, fc->disk_at, s->piece, n)) {
			fmt_snprintf(fc->w.error.text, sizeof(fc->w.error.text), "the disk cannot "
				     "be read at byte %llu", (unsigned long long)fc->disk_at);
			return -1;
		}
		if (!savefile_write_disk_pages(&fc->w, s->piece, pages, &s->ws, s->run))
			return -1;
		fc->disk_at += n;
	} while (clock_ns() - started < budget_ns);
	return fc->disk_at < fc->disk_size;
}

/* The copy's footer: its pages, the unused ones given back, become *to. 0, or -1 (the writer's error). */
static int copy_end(struct file_copy *fc, struct vm_saved *to)
{
	if (!savefile_finish(&fc->w))
		return -1;
	uint64_t used = (fc->out.size + PAGE_SIZE - 1) / PAGE_SIZE;
	if (used < fc->pages)
		page_alloc_free(boot->host_pages, fc->base + used * PAGE_SIZE, fc->pages - used);
	*to = (struct vm_saved){ .base = fc->base, .pages = used, .bytes = fc->out.size,
				 .saved_at = fc->saved_at };
	fc->pages = 0; /* *to's now */
	copy_abort(fc);
	return 0;
}

/* A whole copy without a disk to carry: copy_begin and copy_end at once. 0, or -1 having answered c. */
static int copy_file(struct call *c, const struct vm_saved *from, config_edit edit,
		     const void *edit_ctx, struct vm_saved *to)
{
	struct file_copy fc;

	if (copy_begin(c, from, edit, edit_ctx, 0, &fc))
		return -1;
	if (copy_end(&fc, to)) {
		fail(c, API_E_INVALID_ARGUMENT, "%s: the file is not copied: %s",
		     request_name(c->request), fc.w.error.text);
		copy_abort(&fc);
		return -1;
	}
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

/* The VM the export with its disk reads, while it is Saved with the same state; else NULL. */
static struct vm *carried_vm(void)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (vm->id == carried.vm_id)
			return vm->state == VM_STATE_SAVED && vm->saved.saved_at == carried.saved_at
				       ? vm : NULL;
	}
	return NULL;
}

/* A step of the export's disk reading (control_saved_poll). */
static void carried_step(void)
{
	if (!carried.making)
		return;
	struct vm *vm = carried_vm();
	if (!vm) {
		log_warn("store: the export with its disk stopped: its VM is no longer Saved");
		carried_drop();
		return;
	}
	int r = copy_disk_step(&carried.copy, &vm->disk, SAVE_STEP_NS);
	if (r > 0)
		return;
	carried.making = false;
	if (r == 0 && !copy_end(&carried.copy, &carried.file)) {
		log_info("vm '%s': export with its disk: %llu KiB, the disk's %llu KiB with the "
			 "saved state's %llu KiB, made in %llu ms", vm->cfg->name,
			 (unsigned long long)(carried.file.bytes / 1024),
			 (unsigned long long)(vm->disk.size / 1024),
			 (unsigned long long)(vm->saved.bytes / 1024),
			 (unsigned long long)((clock_ns() - carried.started_ns) / 1000000));
		return;
	}
	fmt_snprintf(carried.failed, sizeof(carried.failed), "%s", carried.copy.w.error.text);
	log_err("vm '%s': export with its disk failed: %s", vm->cfg->name, carried.failed);
	copy_abort(&carried.copy);
}

/*
 * The file of an export with the disk, for a chunk: the one made for
 * this Saved VM (0), or, the first time, one begun in steps, the chunk
 * answered BUSY until it is made. -1 having answered c.
 */
static int carried_ready(struct call *c, const struct vm *vm)
{
	if (!vm->disk.size)
		return fail(c, API_E_INVALID_ARGUMENT, "ExportSavedState: %s has no disk to carry",
			    vm->cfg->name);
	bool ours = carried.vm_id == vm->id && carried.saved_at == vm->saved.saved_at &&
		    (carried.making || carried.file.pages || carried.failed[0]);
	if (ours && carried.failed[0]) {
		fail(c, API_E_INTERNAL, "ExportSavedState: %s's disk was not read: %s",
		     vm->cfg->name, carried.failed);
		carried_drop();
		return -1;
	}
	/*
	 * One export with its disk at a time: another VM's, read or read
	 * from lately, is not dropped for this one, which waits its turn.
	 */
	if (!ours && (carried.making || carried.file.pages) &&
	    clock_ns() - carried.last_chunk_ns < EXPORT_TURN_NS) {
		fail(c, API_E_BUSY, "ExportSavedState: an export with its disk of another VM is "
		     "under way");
		tlv_put_u32(&c->w, API_TAG_RETRY_AFTER_MS, EXPORT_TURN_RETRY_MS);
		return -1;
	}
	carried.last_chunk_ns = clock_ns();
	if (ours && !carried.making)
		return 0;
	if (!ours) {
		carried_drop();
		if (copy_begin(c, &vm->saved, config_with_disk_size, &vm->disk, vm->disk.size,
			       &carried.copy))
			return -1;
		carried.vm_id = vm->id;
		carried.saved_at = vm->saved.saved_at;
		carried.making = true;
		carried.started_ns = carried.last_chunk_ns = clock_ns();
	}
	return busy(c, "read", carried.copy.disk_at, carried.copy.disk_size);
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
	if (with_disk && carried_ready(c, vm))
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

/*
 * A step of the import's disk writing (control_saved_poll): the file's
 * disk runs into the new store disk, a piece at a time, zeros written as
 * such (a new object's blocks are not zeroed), for about SAVE_STEP_NS.
 * At the last run the disk is committed; a failure deletes it and keeps
 * why for the chunk asked again.
 */
static void import_disk_step(void)
{
	struct savefile_error err = { "" };
	struct savefile_record rec;
	struct savefile_run run;
	uint64_t started = clock_ns(), bytes = import.disk_runs.walk.disk_bytes;
	uint8_t *piece = import.s ? import.s->piece : NULL;
	char why[160];

	if (import.disk_state != IMPORT_DISK_WRITING)
		return;
	do {
		if (import.zero_at < import.zero_end) {
			uint64_t n = import.zero_end - import.zero_at < DISK_PIECE
					     ? import.zero_end - import.zero_at : DISK_PIECE;
			if (!store_host_import_disk_write(import.disk, import.zero_at, piece, n))
				goto store_failed;
			import.zero_at += n;
			import.disk_done = import.zero_at;
			continue;
		}
		if (!savefile_next(&import.disk_runs, &rec)) {
			if (store_host_import_disk_end(import.disk, why, sizeof(why))) {
				fmt_snprintf(import.failed, sizeof(import.failed), "ImportVirtualMachine: "
					     "its disk '%s' is not written: %s", import.disk, why);
				import.failed_error = API_E_INTERNAL;
				break;
			}
			import.disk_state = IMPORT_DISK_WRITTEN;
			scratch_free(import.s);
			import.s = NULL;
			return;
		}
		if (rec.type != SAVEFILE_DISK_RUN)
			continue;
		/* savefile_open held the runs inside the disk's whole pages; its bytes end before. */
		if (!savefile_memory_run(&rec, &run, &err))
			goto refused;
		uint64_t at = run.gpa, end = at + (uint64_t)run.pages * SAVEFILE_PAGE_SIZE;
		/* Checked by savefile_open; checked again, as the piece's size depends on it. */
		if (at >= bytes || (run.encoding != SAVEFILE_RUN_ZERO &&
				    run.pages > DISK_PIECE / SAVEFILE_PAGE_SIZE)) {
			fmt_snprintf(err.text, sizeof(err.text), "a disk run at %llu does not fit",
				     (unsigned long long)at);
			goto refused;
		}
		end = end < bytes ? end : bytes;
		if (run.encoding == SAVEFILE_RUN_ZERO) {
			memset(piece, 0, DISK_PIECE);
			import.zero_at = at;
			import.zero_end = end;
			continue;
		}
		if (!savefile_run_decode(&run, piece, (size_t)run.pages * SAVEFILE_PAGE_SIZE, &err))
			goto refused;
		if (!store_host_import_disk_write(import.disk, at, piece, end - at))
			goto store_failed;
		import.disk_done = end;
	} while (clock_ns() - started < SAVE_STEP_NS);
	if (!import.failed[0])
		return;
	goto dropped;

store_failed:
	fmt_snprintf(import.failed, sizeof(import.failed), "ImportVirtualMachine: its disk '%s' "
		     "is not written: the store's drive failed", import.disk);
	import.failed_error = API_E_INTERNAL;
	goto dropped;
refused:
	/* A run that does not decode is the file's fault. */
	fmt_snprintf(import.failed, sizeof(import.failed), "ImportVirtualMachine: its disk is "
		     "refused: %s", err.text);
	import.failed_error = API_E_INVALID_ARGUMENT;
dropped:
	drop_imported_disk(import.disk);
	import.disk_state = IMPORT_DISK_NONE;
	scratch_free(import.s);
	import.s = NULL;
}

/*
 * The disk a line import's file carries, as the store disk import.disk:
 * 0 once written; else begun (its writing in steps), going on, or failed,
 * with c answered (BUSY while it goes on). r is the file, opened.
 */
static int carried_disk_written(struct call *c, const struct savefile_reader *r)
{
	char why[160];
	int e;

	if (import.failed[0]) {
		uint16_t error = import.failed_error;
		import.failed_error = 0;
		return fail(c, error, "%s", import.failed);
	}
	switch (import.disk_state) {
	case IMPORT_DISK_WRITTEN:
		return 0;
	case IMPORT_DISK_NONE:
		if (!(import.s = scratch_alloc()))
			return fail(c, API_E_NO_RESOURCES, "ImportVirtualMachine: no memory to write "
				    "its disk from");
		if ((e = store_host_import_disk_begin(import.disk, r->walk.disk_bytes, why,
						      sizeof(why)))) {
			scratch_free(import.s);
			import.s = NULL;
			return store_refused(c, e, why);
		}
		import.disk_runs = *r;
		import.zero_at = import.zero_end = import.disk_done = 0;
		import.disk_state = IMPORT_DISK_WRITING;
		break;
	case IMPORT_DISK_WRITING:
		break;
	}
	return busy(c, "written", import.disk_done, r->walk.disk_bytes);
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
#define IMPORT_PENDING (-2)
static int saved_vm_create(struct call *c, const char *name, const struct vm_saved *file,
			   bool from_store, const char *network)
{
	struct savefile_reader r;
	struct savefile_record rec;
	struct vm_saved moved = { 0 };
	const uint64_t received = file->bytes;

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
		if (!import.disk[0] && choose_import_disk(c, &rec, name, disk_bytes, import.disk,
							  sizeof(import.disk)))
			return -1;
		if (carried_disk_written(c, &r))
			return import.disk_state == IMPORT_DISK_WRITING ? IMPORT_PENDING : -1;
		if (copy_file(c, file, config_on_store_disk, import.disk, &moved) ||
		    open_with_config(c, &moved, &r, &rec))
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
		log_info("vm '%s': its disk imported as store disk '%s' (%llu KiB)", name,
			 import.disk, (unsigned long long)(disk_bytes / 1024));
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
	/* The disk it wrote goes with the import (import_drop). */
	if (moved.pages)
		page_alloc_free(boot->host_pages, moved.base, moved.pages);
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
	/*
	 * Only what is new is copied: the bytes received may be in use (the
	 * file checked whole, its disk's runs being read) and are not written
	 * again.
	 */
	if (offset + n > import.received) {
		uint64_t known = import.received - offset;
		memcpy((uint8_t *)(uintptr_t)import.base + import.received, data + known,
		       (size_t)(n - known));
		import.received = offset + n;
	}
	import.last_chunk_ns = clock_ns();
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, import.received);
	if (import.received < import.size)
		return 0;
	/* The file is whole and checked: while its disk is written, only ask again. */
	if (import.disk_state == IMPORT_DISK_WRITING)
		return busy(c, "written", import.disk_done, import.disk_runs.walk.disk_bytes);
	const struct vm_saved file = { .base = import.base, .pages = import.pages,
				       .bytes = import.size };
	int rc = saved_vm_create(c, import.name, &file, false, import.network);
	if (rc == IMPORT_PENDING)
		return -1; /* answered BUSY: its disk's writing goes on */
	if (rc) {
		import_drop();
		return -1;
	}
	memset(&import, 0, sizeof(import)); /* the VM owns the pages, and the disk, now */
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
