#include "vmm/lazy_restore.h"

#include "lib/fmt.h"
#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/savefile.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "vmm/vm_save.h"
#include "x86/paging.h"

#include <string.h>

/* Pages of a zero run loaded at once: as many as a data run holds at most. */
#define ZERO_WINDOW_PAGES SAVEFILE_RUN_PAGES_MAX
_Static_assert((ZERO_WINDOW_PAGES & (ZERO_WINDOW_PAGES - 1)) == 0, "windows are aligned");

struct lazy_restore {
	struct vm_saved file;  /* pages 0 until lazy_restore_own_file */
	uint64_t self_pages;   /* this structure, its runs and its bitmap */
	uint64_t ram_pages;
	uint64_t pending;      /* pages not loaded yet */
	uint64_t cursor;       /* the background's next page: every one before it is loaded */
	bool hidden;           /* RAM hidden from nested paging: pages are shown once loaded */
	uint32_t run_count, runs_added;
	/* Where the loading went: the guest's first touches, the hypervisor's and devices', the rest. */
	uint64_t guest_loads, host_loads, background_loads;
	uint64_t started_ns;
	/* Why a run did not decode ("" while every one did): the VM ends for it. */
	char failure[VM_REASON_MAX];
	struct savefile_run *runs; /* in GPA order */
	uint64_t *pending_bits;    /* a bit per page, set while it is pending */
};

static uint64_t bitmap_words(uint64_t ram_pages)
{
	return (ram_pages + 63) / 64;
}

struct lazy_restore *lazy_restore_create(struct vm *vm, uint32_t run_count)
{
	uint64_t ram_pages = vm->boot->ram_bytes / PAGE_SIZE;
	uint64_t bytes = sizeof(struct lazy_restore) + (uint64_t)run_count * sizeof(struct savefile_run) +
			 bitmap_words(ram_pages) * sizeof(uint64_t);
	uint64_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE, pa;

	if (!run_count || page_alloc_alloc(vm->pages, pages, 1, &pa))
		return NULL;
	struct lazy_restore *l = (struct lazy_restore *)(uintptr_t)pa;
	*l = (struct lazy_restore){
		.self_pages = pages,
		.ram_pages = ram_pages,
		.pending = ram_pages,
		.run_count = run_count,
		.runs = (struct savefile_run *)(l + 1),
	};
	l->pending_bits = (uint64_t *)(l->runs + run_count);
	memset(l->pending_bits, 0xff, bitmap_words(ram_pages) * sizeof(uint64_t));
	if (ram_pages % 64)
		l->pending_bits[ram_pages / 64] = (1ull << (ram_pages % 64)) - 1;
	return l;
}

void lazy_restore_add_run(struct lazy_restore *l, const struct savefile_run *run)
{
	if (l->runs_added < l->run_count)
		l->runs[l->runs_added++] = *run;
}

void lazy_restore_free(struct vm *vm, struct lazy_restore *l)
{
	if (l->file.pages)
		page_alloc_free(vm->pages, l->file.base, l->file.pages);
	page_alloc_free(vm->pages, (uint64_t)(uintptr_t)l, l->self_pages);
}

static bool is_pending(const struct lazy_restore *l, uint64_t page)
{
	return l->pending_bits[page / 64] & (1ull << (page % 64));
}

/* The run holding page: the last one starting at or before it (they cover RAM, in order). */
static const struct savefile_run *run_of(const struct lazy_restore *l, uint64_t page)
{
	uint32_t lo = 0, hi = l->runs_added;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (l->runs[mid].gpa / PAGE_SIZE <= page)
			lo = mid;
		else
			hi = mid;
	}
	return &l->runs[lo];
}

/*
 * Loads the window holding page (pending): a data run whole, or the
 * aligned 16 pages of a zero run around it. A run that does not decode
 * leaves its pages zero, loaded, and false with the reason.
 */
static bool load_window(struct vm *vm, struct lazy_restore *l, uint64_t page,
			struct savefile_error *err)
{
	const struct savefile_run *run = run_of(l, page);
	uint64_t first = run->gpa / PAGE_SIZE, end = first + run->pages;
	uint8_t *ram = (uint8_t *)(uintptr_t)vm->boot->ram_base;
	bool decoded = true;

	if (run->encoding == SAVEFILE_RUN_ZERO) {
		uint64_t window = page & ~(uint64_t)(ZERO_WINDOW_PAGES - 1);
		if (first < window)
			first = window;
		if (end > window + ZERO_WINDOW_PAGES)
			end = window + ZERO_WINDOW_PAGES;
		memset(ram + first * PAGE_SIZE, 0, (end - first) * PAGE_SIZE);
	} else if (!savefile_run_decode(run, ram + first * PAGE_SIZE,
					(size_t)run->pages * PAGE_SIZE, err)) {
		memset(ram + first * PAGE_SIZE, 0, (end - first) * PAGE_SIZE);
		decoded = false;
	}
	for (uint64_t p = first; p < end; p++)
		if (is_pending(l, p)) {
			l->pending_bits[p / 64] &= ~(1ull << (p % 64));
			l->pending--;
		}
	if (l->hidden)
		virt_ram_show(vm, first * PAGE_SIZE, (end - first) * PAGE_SIZE);
	return decoded;
}

/*
 * While the VM runs, a run that does not decode ends it: its RAM is not
 * what was saved. Its exit stops at once (vm_request_end: every exit that
 * reads guest RAM returns to the scheduler when an end is pending); a VM touched
 * from elsewhere ends at the background's next step, before it runs again
 * (lazy_restore_poll), and a Save of it fails (lazy_restore_failure).
 */
static void load_or_end(struct vm *vm, struct lazy_restore *l, uint64_t page)
{
	struct savefile_error err;

	if (load_window(vm, l, page, &err))
		return;
	if (!l->failure[0])
		fmt_snprintf(l->failure, sizeof(l->failure), "its saved RAM does not decode: %s",
			     err.text);
	vm_request_end(vm, "%s", l->failure);
}

const char *lazy_restore_failure(const struct vm *vm)
{
	return vm->lazy && vm->lazy->failure[0] ? vm->lazy->failure : NULL;
}

/* The first pending page in [from, end), end <= ram_pages; end when there is none. */
static uint64_t next_pending(const struct lazy_restore *l, uint64_t from, uint64_t end)
{
	for (uint64_t word = from / 64; word * 64 < end; word++) {
		uint64_t bits = l->pending_bits[word];
		if (word == from / 64)
			bits &= ~0ull << (from % 64);
		if (bits) {
			uint64_t page = word * 64 + (uint64_t)__builtin_ctzll(bits);
			return page < end ? page : end;
		}
	}
	return end;
}

int lazy_restore_start(struct vm *vm, struct lazy_restore *l, char *why, size_t why_size)
{
	struct savefile_error err;

	l->started_ns = clock_ns();
	if (!virt_ram_hide(vm)) {
		l->hidden = true;
		vm->lazy = l;
		return 0;
	}
	/* RAM stays mapped: loaded whole, now, as a restore did before it could wait. */
	log_warn("vm '%s': no memory to hide its RAM until it is loaded: loading it whole first",
		 vm->cfg->name);
	for (uint64_t page = next_pending(l, 0, l->ram_pages); page < l->ram_pages;
	     page = next_pending(l, page + 1, l->ram_pages))
		if (!load_window(vm, l, page, &err)) {
			fmt_snprintf(why, why_size, "memory: %s", err.text);
			lazy_restore_free(vm, l);
			return -1;
		}
	lazy_restore_free(vm, l);
	return 0;
}

void lazy_restore_own_file(struct vm *vm, const struct vm_saved *file)
{
	vm->lazy->file = *file;
}

void lazy_restore_drop(struct vm *vm)
{
	struct lazy_restore *l = vm->lazy;

	if (!l)
		return;
	vm->lazy = NULL;
	virt_ram_show_all(vm);
	lazy_restore_free(vm, l);
}

void lazy_restore_load(struct vm *vm, uint64_t gpa, uint64_t len)
{
	struct lazy_restore *l = vm->lazy;

	if (!l || !l->pending || !len || gpa >= vm->boot->ram_bytes)
		return;
	/* Clamped to RAM, and pending pages found a bitmap word at a time. */
	uint64_t end = len > vm->boot->ram_bytes - gpa ? l->ram_pages
						       : (gpa + len - 1) / PAGE_SIZE + 1;
	for (uint64_t page = next_pending(l, gpa / PAGE_SIZE, end); page < end;
	     page = next_pending(l, page + 1, end)) {
		l->host_loads++;
		load_or_end(vm, l, page);
	}
}

bool lazy_restore_fault(struct vm *vm, uint64_t gpa)
{
	struct lazy_restore *l = vm->lazy;
	uint64_t page = gpa / PAGE_SIZE;

	if (!l)
		return false;
	/* Loaded already: the access raced a show it did not see yet (SDM 28.3.3.4); retried. */
	if (is_pending(l, page)) {
		l->guest_loads++;
		load_or_end(vm, l, page);
	}
	return true;
}

/* The last page is in: RAM mapped whole again, the file and the bookkeeping given back. */
static void finish(struct vm *vm, struct lazy_restore *l)
{
	log_info("vm '%s': RAM loaded from its saved state %llu ms after Running: %llu window(s) "
		 "on the guest's first touch, %llu on the hypervisor's or a device's, %llu in the "
		 "background", vm->cfg->name,
		 (unsigned long long)((clock_ns() - l->started_ns) / 1000000),
		 (unsigned long long)l->guest_loads, (unsigned long long)l->host_loads,
		 (unsigned long long)l->background_loads);
	lazy_restore_drop(vm);
}

bool lazy_restore_poll(uint64_t budget_ns)
{
	bool more = false;

	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		struct lazy_restore *l = vm->lazy;
		if (!l)
			continue;
		uint64_t start = clock_ns();
		while (!l->failure[0]) {
			l->cursor = next_pending(l, l->cursor, l->ram_pages);
			if (l->cursor == l->ram_pages)
				break;
			l->background_loads++;
			load_or_end(vm, l, l->cursor);
			if (clock_ns() - start >= budget_ns)
				break;
		}
		/*
		 * Not another slice on RAM that is not the guest's, Paused or not.
		 * A Save under way fails on it first (vm_save_step), then the VM
		 * ends here.
		 */
		if (l->failure[0]) {
			if (vm->state != VM_STATE_SAVING) {
				char why[VM_REASON_MAX];
				fmt_snprintf(why, sizeof(why), "%s", l->failure);
				vm_control(vm, VM_OP_GUEST_END, why); /* drops l */
			}
		} else if (l->pending) {
			more = true;
		} else {
			finish(vm, l);
		}
	}
	return more;
}
