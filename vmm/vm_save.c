#include "vmm/vm_save.h"

#include "devices/devstate.h"
#include "abi/api.h"
#include "lib/fmt.h"
#include "mgmt/proto.h"
#include "vmm/clock.h"
#include "vmm/cpuid_policy.h"
#include "vmm/lazy_restore.h"
#include "vmm/log.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/savefile.h"
#include "vmm/storage/store_host.h"
#include "vmm/vcpu_state.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "x86/cpu.h"
#include "x86/paging.h"

#include <string.h>

/*
 * What the hypervisor itself keeps of a VM, as a record beside the
 * devices': the guest time and TSC at the moment of Save (Restore goes on
 * from there, docs/time.md) and the paravirtual interface's state
 * (include/abi/hypercall.h): the upcall vector, an upcall not yet
 * delivered and the timer deadline on the guest's TSC.
 */
struct saved_vm {
	uint64_t ns, tsc;
	uint64_t timer_deadline;
	uint8_t upcall_vector;
	uint8_t upcall_pending;
};

#define FIRST_UPCALL_VECTOR 32

static const struct devstate_field saved_vm_fields[] = {
	DEVSTATE_FIELD(struct saved_vm, ns, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct saved_vm, tsc, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct saved_vm, timer_deadline, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct saved_vm, upcall_vector, DEVSTATE_U8, 0, 255, 1),
	DEVSTATE_FIELD(struct saved_vm, upcall_pending, DEVSTATE_U8, 0, 1, 1),
};

static void saved_vm_reset(void *state)
{
	memset(state, 0, sizeof(struct saved_vm));
}

/* As HC_SET_UPCALL_VECTOR and HC_SET_TIMER would have left them. */
static bool saved_vm_check(const void *state, const void *live, const char *device,
			   struct devstate_error *err)
{
	const struct saved_vm *v = state;

	(void)live;
	if (v->upcall_vector && v->upcall_vector < FIRST_UPCALL_VECTOR)
		return devstate_refuse(err, device, "upcall_vector", 0, "= %u: below %u",
				       v->upcall_vector, FIRST_UPCALL_VECTOR);
	if (!v->upcall_vector && (v->upcall_pending || v->timer_deadline))
		return devstate_refuse(err, device, "upcall_vector", 0,
				       "= 0 with an upcall or a timer pending");
	return true;
}

static const struct devstate_desc saved_vm_desc = DEVSTATE_DESC(
	struct saved_vm, "vm", 1, saved_vm_fields, saved_vm_reset, saved_vm_check);

/* Record names of the devices a VM has several of (devices/devstate.h). */
static const char *const pci_names[] = { "pci0", "pci1", "pci2", "pci3",
					 "pci4", "pci5", "pci6", "pci7", "pci8" };
static const char *const virtio_names[] = { "virtio_pci0", "virtio_pci1", "virtio_pci2",
					    "virtio_pci3", "virtio_pci4", "virtio_pci5", "virtio_pci6" };
static const char *const net_names[] = { "virtio_net0", "virtio_net1", "virtio_net2",
					 "virtio_net3" };
_Static_assert(sizeof(pci_names) / sizeof(pci_names[0]) == 1 + PCI_MAX_DEVICES, "a name per function");
_Static_assert(sizeof(virtio_names) / sizeof(virtio_names[0]) == PLATFORM_VIRTIO_MAX,
	       "a name per transport");
_Static_assert(sizeof(net_names) / sizeof(net_names[0]) == CFG_MAX_NICS, "a name per adapter");

/*
 * The fixed eight, the host bridge and every PCI function (pci_add_function
 * refuses more), the transports, the five device models (disk, agent port,
 * additions drive, watchdog, balloon), the adapters and the hypervisor's own
 * record: every instance vm_devices() can list, so its callers' arrays hold
 * them.
 */
#define VM_DEVICES_MAX (8 + 1 + PCI_MAX_DEVICES + PLATFORM_VIRTIO_MAX + 5 + CFG_MAX_NICS + 1)
_Static_assert(VM_DEVICES_MAX <= SAVEFILE_DEVICES_MAX && VM_DEVICES_MAX <= DEVSTATE_MAX_DEVICES,
	       "a VM's devices fit one save file");

/*
 * Every device of the VM whose state is data (devices/device_table.c),
 * and the hypervisor's own record of it; the wiring a cold start builds decides which
 * PCI functions, transports and adapters exist, so Save and Restore of
 * one configuration list the same devices.
 */
static unsigned vm_devices(struct vm *vm, struct saved_vm *own, struct devstate_instance *out)
{
	struct platform *p = &vm->platform;
	unsigned n = 0;

	out[n++] = (struct devstate_instance){ &pic_state_desc, &vm->pic, NULL };
	out[n++] = (struct devstate_instance){ &rtc_state_desc, &vm->rtc, NULL };
	out[n++] = (struct devstate_instance){ &vuart_state_desc, &vm->com1, NULL };
	out[n++] = (struct devstate_instance){ &pit_state_desc, &vm->pit, NULL };
	out[n++] = (struct devstate_instance){ &ioapic_state_desc, &p->ioapic, NULL };
	out[n++] = (struct devstate_instance){ &acpi_pm_state_desc, &p->pm, NULL };
	out[n++] = (struct devstate_instance){ &lapic_state_desc, &p->lapic, NULL };
	out[n++] = (struct devstate_instance){ &pci_bus_state_desc, &p->pci.state, NULL };
	for (unsigned i = 0; i < p->pci.count; i++)
		out[n++] = (struct devstate_instance){ &pci_function_state_desc, &p->pci.devices[i],
						       pci_names[i] };
	for (unsigned i = 0; i < p->virtio_count; i++)
		out[n++] = (struct devstate_instance){ &virtio_pci_state_desc, &p->virtio[i],
						       virtio_names[i] };
	if (p->blk_pci)
		out[n++] = (struct devstate_instance){ &virtio_blk_state_desc, &p->blk, NULL };
	if (p->agent_present)
		out[n++] = (struct devstate_instance){ &virtio_console_state_desc, &p->agent, NULL };
	if (p->watchdog_pci)
		out[n++] = (struct devstate_instance){ &i6300esb_state_desc, &p->watchdog, NULL };
	if (p->balloon_present)
		out[n++] = (struct devstate_instance){ &virtio_balloon_state_desc, &p->balloon,
						       NULL };
	/* Restored empty, like a drive after a power cut: the medium is not state. */
	if (p->additions_present)
		out[n++] = (struct devstate_instance){ &virtio_blk_state_desc, &p->additions,
						       "virtio_blk1" };
	for (unsigned i = 0; i < p->net_count; i++)
		out[n++] = (struct devstate_instance){ &virtio_net_state_desc, &p->net[i],
						       net_names[i] };
	out[n++] = (struct devstate_instance){ &saved_vm_desc, own, NULL };
	return n;
}

uint64_t vm_save_cpu_features(void)
{
	static const struct {
		uint32_t leaf;
		uint8_t reg; /* 0 EBX, 1 ECX, 2 EDX, 3 EAX of subleaf 1 */
		uint8_t bit;
		uint8_t feature;
	} map[] = {
		{ 1, 1, 0, SAVEFILE_CPU_SSE3 },        { 1, 1, 1, SAVEFILE_CPU_PCLMULQDQ },
		{ 1, 1, 9, SAVEFILE_CPU_SSSE3 },       { 1, 1, 13, SAVEFILE_CPU_CX16 },
		{ 1, 1, 19, SAVEFILE_CPU_SSE4_1 },     { 1, 1, 20, SAVEFILE_CPU_SSE4_2 },
		{ 1, 1, 22, SAVEFILE_CPU_MOVBE },      { 1, 1, 23, SAVEFILE_CPU_POPCNT },
		{ 1, 1, 25, SAVEFILE_CPU_AES },        { 1, 1, 30, SAVEFILE_CPU_RDRAND },
		{ 7, 0, 0, SAVEFILE_CPU_FSGSBASE },    { 7, 0, 3, SAVEFILE_CPU_BMI1 },
		{ 7, 0, 7, SAVEFILE_CPU_SMEP },        { 7, 0, 8, SAVEFILE_CPU_BMI2 },
		{ 7, 0, 9, SAVEFILE_CPU_ERMS },        { 7, 0, 19, SAVEFILE_CPU_ADX },
		{ 7, 0, 20, SAVEFILE_CPU_SMAP },       { 7, 0, 23, SAVEFILE_CPU_CLFLUSHOPT },
		{ 0x80000001, 1, 5, SAVEFILE_CPU_LZCNT },
		{ 0x80000001, 2, 26, SAVEFILE_CPU_PAGE1GB },
		{ 0x80000001, 2, 20, SAVEFILE_CPU_NX },
		{ 1, 1, 26, SAVEFILE_CPU_XSAVE },      { 1, 1, 28, SAVEFILE_CPU_AVX },
		{ 1, 1, 12, SAVEFILE_CPU_FMA },        { 1, 1, 29, SAVEFILE_CPU_F16C },
		{ 7, 0, 5, SAVEFILE_CPU_AVX2 },        { 7, 0, 16, SAVEFILE_CPU_AVX512F },
		{ 7, 0, 17, SAVEFILE_CPU_AVX512DQ },   { 7, 0, 28, SAVEFILE_CPU_AVX512CD },
		{ 7, 0, 30, SAVEFILE_CPU_AVX512BW },   { 7, 0, 31, SAVEFILE_CPU_AVX512VL },
		{ 0xd, 3, 0, SAVEFILE_CPU_XSAVEOPT },  { 0xd, 3, 1, SAVEFILE_CPU_XSAVEC },
		{ 0xd, 3, 3, SAVEFILE_CPU_XSAVES },
		{ 7, 2, 26, SAVEFILE_CPU_SPEC_CTRL },  { 7, 2, 27, SAVEFILE_CPU_STIBP },
		{ 7, 2, 31, SAVEFILE_CPU_SSBD },       { 7, 2, 28, SAVEFILE_CPU_L1D_FLUSH },
		{ 7, 2, 29, SAVEFILE_CPU_ARCH_CAPABILITIES },
	};
	uint32_t max_basic = cpuid(0, 0).eax, max_ext = cpuid(0x80000000, 0).eax;
	uint64_t features = 0;

	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		uint32_t leaf = map[i].leaf;
		if (leaf > (leaf & 0x80000000 ? max_ext : max_basic))
			continue;
		/*
		 * What a guest is shown, not what the host has: the policy and
		 * the XSAVE components offered decide.
		 */
		uint32_t subleaf = map[i].reg == 3 ? 1 : 0;
		struct cpuid_regs h = cpuid(leaf, subleaf);
		struct cpuid_result host = { h.eax, h.ebx, h.ecx, h.edx };
		struct cpuid_result r = xstate_cpuid(xstate_host_layout(), leaf, subleaf, host,
						     cpuid_policy(leaf, subleaf, host), XSTATE_X87,
						     false);
		const uint32_t regs[] = { r.ebx, r.ecx, r.edx, r.eax };
		uint32_t reg = regs[map[i].reg];
		if (reg >> map[i].bit & 1)
			features |= 1ULL << map[i].feature;
	}
	return features;
}

static enum savefile_boot_mode boot_mode(enum vm_boot_mode mode)
{
	return mode == VM_BOOT_REAL ? SAVEFILE_BOOT_REAL :
	       mode == VM_BOOT_LINUX ? SAVEFILE_BOOT_LINUX : SAVEFILE_BOOT_LONG;
}

/*
 * The header holds every adapter a VM can have, so encode_config's walk
 * of the adapters gives one allow_macs per header adapter, in its order.
 */
_Static_assert(SAVEFILE_NICS_MAX == CFG_MAX_NICS, "the header holds every adapter");

static void fill_header(const struct vm *vm, struct savefile_header *h)
{
	*h = (struct savefile_header){
		.ram_bytes = vm->boot->ram_bytes,
		.boot_mode = boot_mode(vm->cfg->boot),
		.vcpus = 1,
		.cpu_features = vm_save_cpu_features(),
		.saved_at = clock_wallclock_s(),
	};
	fmt_snprintf(h->name, sizeof(h->name), "%s", vm->cfg->name);
	for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
		const struct nic_info *nic = nic_get(vm->id, i);
		if (!nic || !nic->present)
			continue;
		struct savefile_nic *out = &h->nics[h->nic_count++];
		memcpy(out->mac, nic->mac, sizeof(out->mac));
		const struct vnet_switch *sw = nic->net >= 0 ? network_get((unsigned)nic->net) : NULL;
		if (sw)
			fmt_snprintf(out->network, sizeof(out->network), "%s", sw->name);
	}
}

/*
 * The configuration record: the CreateVirtualMachine tags that make this
 * VM (docs/savefile.md), for a hypervisor that imports the file. Its
 * adapters are the header's; what the header does not hold of them, the
 * further source MACs each may send with, follows as one `allow_macs`
 * per adapter, in the header's order.
 */
static size_t encode_config(const struct vm *vm, uint8_t *out, size_t cap)
{
	const struct cfg_vm *cfg = vm->cfg;
	struct tlv_writer w;

	tlv_writer_init(&w, out, cap);
	tlv_put_str(&w, API_TAG_VM, cfg->name);
	tlv_put_u64(&w, API_TAG_MEMORY, cfg->memory_bytes);
	tlv_put_str(&w, API_TAG_IMAGE, cfg->image);
	tlv_put_str(&w, API_TAG_BOOT, config_boot_mode_name(cfg->boot));
	if (cfg->load_set)
		tlv_put_u64(&w, API_TAG_LOAD, cfg->load);
	if (cfg->entry_set)
		tlv_put_u64(&w, API_TAG_ENTRY, cfg->entry);
	if (cfg->cmdline[0])
		tlv_put_str(&w, API_TAG_CMDLINE, cfg->cmdline);
	if (cfg->initrd[0])
		tlv_put_str(&w, API_TAG_INITRD, cfg->initrd);
	if (cfg->disk[0])
		tlv_put_str(&w, API_TAG_DISK, cfg->disk);
	if (cfg->store_disk[0])
		tlv_put_str(&w, API_TAG_STORE_DISK, cfg->store_disk);
	tlv_put_u8(&w, API_TAG_GUEST_AGENT, cfg->guest_agent);
	tlv_put_u8(&w, API_TAG_TIME_SYNC, cfg->time_sync);
	if (cfg->watchdog != CFG_WATCHDOG_NONE)
		tlv_put_str(&w, API_TAG_WATCHDOG, config_watchdog_name(cfg->watchdog));
	if (cfg->free_page_reporting)
		tlv_put_u8(&w, API_TAG_FREE_PAGE_REPORTING, 1);
	tlv_put_str(&w, API_TAG_ON_HEARTBEAT_LOSS, config_heartbeat_action_name(cfg->on_heartbeat_loss));
	tlv_put_u32(&w, API_TAG_HEARTBEAT_GRACE_S, cfg->heartbeat_grace_s);
	for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
		const struct nic_info *nic = nic_get(vm->id, i);
		if (nic && nic->present)
			tlv_put_u8(&w, API_TAG_ALLOW_MACS, (uint8_t)nic->allow_macs);
	}
	return tlv_writer_ok(&w) ? w.len : 0;
}

/* Working memory of one Save: the LZ workspace, a run's scratch, one record. */
struct save_scratch {
	struct lz_workspace ws;
	uint8_t run[SAVEFILE_SCRATCH_SIZE];
	uint8_t record[DEVSTATE_HEADER_MAX + DEVSTATE_MAX_STATE];
	uint8_t console[CONSOLE_RING_SIZE];
};
#define SAVE_SCRATCH_PAGES ((sizeof(struct save_scratch) + PAGE_SIZE - 1) / PAGE_SIZE)

/*
 * What Save captures at once, the instant the guest stops: the header,
 * the configuration, the vCPU and every device, in that order; RAM and
 * the console history follow in steps (vm_save_step).
 */
static bool write_prefix(struct vm *vm, struct savefile_writer *w, struct save_scratch *s,
			 const struct savefile_header *h, const struct vcpu_state *cpu,
			 struct saved_vm *own)
{
	struct devstate_instance devs[VM_DEVICES_MAX];
	unsigned count = vm_devices(vm, own, devs);
	const struct devstate_instance cpu_record = { &vcpu_state_desc, (void *)cpu, NULL };

	if (!savefile_write_header(w, h))
		return false;
	size_t len = encode_config(vm, s->record, sizeof(s->record));
	if (!len || !savefile_write_record(w, SAVEFILE_CONFIG, 0, s->record, len))
		return false;
	len = devstate_save(&cpu_record, 1, s->record, sizeof(s->record));
	if (!len || !savefile_write_vcpu(w, 0, s->record, len))
		return false;
	for (unsigned i = 0; i < count; i++) {
		len = devstate_save(&devs[i], 1, s->record, sizeof(s->record));
		if (!len || !savefile_write_device(w, s->record, len))
			return false;
	}
	return true;
}

/*
 * Room for the records besides RAM: the prefix (header, configuration,
 * vCPU, devices), the console history and the footer.
 */
#define SAVE_RECORDS_ROOM (64 * 1024)

/*
 * RAM goes a piece at a time: a step's smallest work (256 KiB: well under
 * a millisecond on a server, a few in Bochs), and the unit its file's
 * size is bounded in (savefile_memory_bound of each piece, as runs do not
 * span pieces: a zero run costs a record every piece, 28 bytes in 256 KiB).
 */
#define SAVE_PIECE_PAGES 64u

/*
 * A Save under way, in host pages of its own. The prefix is written into
 * the job's buffer at once; RAM, which cannot change while the VM is
 * Saving, is first scanned for the file's size, then the file is taken,
 * the prefix copied in, and RAM compressed into it.
 */
struct save_job {
	struct save_scratch s;
	uint8_t prefix[SAVE_RECORDS_ROOM];
	struct savefile_writer w;
	struct savefile_buffer file;   /* the writer's sink: prefix, then the file */
	uint64_t file_pa, file_pages;  /* 0 until the scan is over */
	uint64_t scanned, bound;       /* pages scanned, the file's bound so far */
	uint64_t written;              /* pages written */
	uint64_t saved_at;
	uint64_t started_ns, steps, longest_step_ns;
};
#define SAVE_JOB_PAGES ((sizeof(struct save_job) + PAGE_SIZE - 1) / PAGE_SIZE)

static void free_saved_pages(struct vm *vm)
{
	if (vm->saved.pages)
		page_alloc_free(vm->pages, vm->saved.base, vm->saved.pages);
	vm->saved = (struct vm_saved){ 0 };
}

static void free_job(struct vm *vm)
{
	struct save_job *job = vm->save_job;

	if (job->file_pages)
		page_alloc_free(vm->pages, job->file_pa, job->file_pages);
	page_alloc_free(vm->pages, (uint64_t)(uintptr_t)job, SAVE_JOB_PAGES);
	vm->save_job = NULL;
}

void vm_save_abandon(struct vm *vm)
{
	if (vm->save_job)
		free_job(vm);
}

int vm_save_begin(struct vm *vm, char *why, size_t why_size)
{
	uint64_t job_pa;
	struct savefile_header h;
	struct vcpu_state cpu;
	struct vm_time now = vm_now(vm);
	const struct vcpu *v = &vm->vcpu;
	struct saved_vm own = { .ns = now.ns, .tsc = now.tsc, .timer_deadline = v->timer_deadline,
				.upcall_vector = v->upcall_vector,
				.upcall_pending = v->upcall_pending };

	if (page_alloc_alloc(vm->pages, SAVE_JOB_PAGES, 1, &job_pa)) {
		fmt_snprintf(why, why_size, "no memory to compress the state in");
		return VM_CONTROL_NO_MEMORY;
	}
	struct save_job *job = (struct save_job *)(uintptr_t)job_pa;
	/* The job's pages come as they were left: its counters and the compressor start clear. */
	memset(&job->w, 0, sizeof(*job) - offsetof(struct save_job, w));
	lz_workspace_init(&job->s.ws);
	fill_header(vm, &h);
	virt_vcpu_get_state(&vm->vcpu, &cpu);
	job->file = (struct savefile_buffer){ job->prefix, sizeof(job->prefix), 0 };
	job->saved_at = h.saved_at;
	job->started_ns = clock_ns();
	vm->save_job = job;
	savefile_writer_init(&job->w, savefile_buffer_sink, &job->file);
	if (!write_prefix(vm, &job->w, &job->s, &h, &cpu, &own)) {
		fmt_snprintf(why, why_size, "the state does not encode: %s", job->w.error.text);
		free_job(vm);
		return -1;
	}
	return 0;
}

/* One piece of the scan for the file's bound; at its end the file is taken, the prefix in it. */
static int scan_piece(struct vm *vm, struct save_job *job, uint64_t total, char *why,
		      size_t why_size)
{
	uint64_t n = total - job->scanned < SAVE_PIECE_PAGES ? total - job->scanned
							       : SAVE_PIECE_PAGES;
	const uint8_t *piece = vm_gpa_to_host(vm, job->scanned * PAGE_SIZE, n * PAGE_SIZE);

	job->bound += savefile_memory_bound(piece, n);
	job->scanned += n;
	if (job->scanned < total)
		return 0;
	uint64_t bound = job->bound + SAVE_RECORDS_ROOM;
	job->file_pages = (bound + PAGE_SIZE - 1) / PAGE_SIZE;
	if (page_alloc_alloc(vm->pages, job->file_pages, 1, &job->file_pa)) {
		job->file_pages = 0;
		fmt_snprintf(why, why_size, "no memory for a save file of up to %llu KiB",
			     (unsigned long long)(bound / 1024));
		return -1;
	}
	memcpy((void *)(uintptr_t)job->file_pa, job->prefix, job->file.size);
	job->file.data = (uint8_t *)(uintptr_t)job->file_pa;
	job->file.capacity = bound;
	return 0;
}

/* The console history and the footer after RAM; the file, trimmed, becomes the VM's saved state. */
static int finish(struct vm *vm, struct save_job *job, char *why, size_t why_size)
{
	struct save_scratch *s = &job->s;
	/* The history the ring still holds, oldest first: a VM made anew from the file shows it. */
	uint64_t from = vm->console.written > CONSOLE_RING_SIZE
				? vm->console.written - CONSOLE_RING_SIZE : 0;
	size_t len = console_ring_read(&vm->console, &from, s->console, sizeof(s->console));

	if ((len && !savefile_write_record(&job->w, SAVEFILE_CONSOLE, 0, s->console, len)) ||
	    !savefile_finish(&job->w)) {
		fmt_snprintf(why, why_size, "the state does not encode: %s", job->w.error.text);
		return -1;
	}
	uint64_t pages = (job->file.size + PAGE_SIZE - 1) / PAGE_SIZE;
	if (pages < job->file_pages)
		page_alloc_free(vm->pages, job->file_pa + pages * PAGE_SIZE, job->file_pages - pages);
	job->file_pages = 0; /* the VM's now */
	/* The older file's copy in the store is replaced by vm_save_persist(). */
	free_saved_pages(vm);
	vm->saved = (struct vm_saved){ .base = job->file_pa, .pages = pages,
				       .bytes = job->file.size, .saved_at = job->saved_at };
	log_info("vm '%s': state saved: %llu KiB for %llu MiB of RAM, in %llu ms (%llu steps, "
		 "the longest %llu us)", vm->cfg->name, (unsigned long long)(job->file.size / 1024),
		 (unsigned long long)(vm->boot->ram_bytes >> 20),
		 (unsigned long long)((clock_ns() - job->started_ns) / 1000000),
		 (unsigned long long)job->steps,
		 (unsigned long long)(job->longest_step_ns / 1000));
	if (vm->platform.balloon_present)
		log_info("vm '%s': free page reporting: %llu report(s), %llu MiB cleared since "
			 "power-on", vm->cfg->name,
			 (unsigned long long)vm->platform.balloon.stats.reports,
			 (unsigned long long)(vm->platform.balloon.stats.cleared_bytes >> 20));
	vm_save_persist(vm);
	return 0;
}

/* RAM a restore could not load is zeros, not the guest's: no file of it (-1, why). */
static int ram_unloadable(const struct vm *vm, char *why, size_t why_size)
{
	const char *failure = lazy_restore_failure(vm);

	if (!failure)
		return 0;
	fmt_snprintf(why, why_size, "%s", failure);
	return -1;
}

enum vm_save_progress vm_save_step(struct vm *vm, uint64_t budget_ns, char *why,
				   size_t why_size)
{
	struct save_job *job = vm->save_job;
	uint64_t total = vm->boot->ram_bytes / PAGE_SIZE, started = clock_ns(), took;
	int rc = 0;

	do {
		rc = ram_unloadable(vm, why, why_size);
		if (rc)
			break;
		if (job->scanned < total) {
			rc = scan_piece(vm, job, total, why, why_size);
			continue;
		}
		uint64_t n = total - job->written < SAVE_PIECE_PAGES ? total - job->written
								     : SAVE_PIECE_PAGES;
		if (!savefile_write_memory(&job->w,
					   vm_gpa_to_host(vm, job->written * PAGE_SIZE, n * PAGE_SIZE), n,
					   &job->s.ws, job->s.run)) {
			fmt_snprintf(why, why_size, "the state does not encode: %s",
				     job->w.error.text);
			rc = -1;
		}
		job->written += n;
	} while (!rc && job->written < total && clock_ns() - started < budget_ns);
	if (!rc)
		rc = ram_unloadable(vm, why, why_size);
	took = clock_ns() - started;
	job->steps++;
	job->longest_step_ns = took > job->longest_step_ns ? took : job->longest_step_ns;
	if (!rc && job->written < total)
		return VM_SAVE_MORE;
	if (!rc)
		rc = finish(vm, job, why, why_size);
	free_job(vm);
	return rc ? VM_SAVE_FAILED : VM_SAVE_DONE;
}

/*
 * The records of an opened file into the VM: RAM's runs into lazy (or,
 * without it, decoded as they come), the vCPU into cpu, the devices at
 * the end and together (devstate_load changes no device unless every
 * record passes). A failure half-way leaves a VM that does not run and
 * the file as it was.
 */
static int load_records(struct vm *vm, struct savefile_reader *r, struct lazy_restore *lazy,
			struct vcpu_state *cpu, struct saved_vm *own, uint8_t *device_records,
			size_t capacity, char *why, size_t why_size)
{
	struct devstate_instance devs[VM_DEVICES_MAX];
	unsigned count = vm_devices(vm, own, devs);
	const struct devstate_instance cpu_record = { &vcpu_state_desc, cpu, NULL };
	struct savefile_record rec;
	struct savefile_error err;
	struct devstate_error derr;
	struct savefile_run run;
	size_t used = 0;

	while (savefile_next(r, &rec)) {
		switch (rec.type) {
		case SAVEFILE_VCPU:
			/* After the 4-byte index (savefile_open checked it is there): the record. */
			if (!devstate_load(&cpu_record, 1, rec.payload + 4, rec.size - 4, &derr)) {
				fmt_snprintf(why, why_size, "vCPU: %s", derr.text);
				return -1;
			}
			break;
		case SAVEFILE_DEVICE:
			if (rec.size > capacity - used) {
				fmt_snprintf(why, why_size, "device records exceed %zu bytes", capacity);
				return -1;
			}
			memcpy(device_records + used, rec.payload, rec.size);
			used += rec.size;
			break;
		case SAVEFILE_MEMORY:
			/* savefile_open held every run inside the header's RAM size, the VM's. */
			if (!savefile_memory_run(&rec, &run, &err)) {
				fmt_snprintf(why, why_size, "memory: %s", err.text);
				return -1;
			}
			if (lazy) {
				lazy_restore_add_run(lazy, &run);
				break;
			}
			uint64_t bytes = (uint64_t)run.pages * SAVEFILE_PAGE_SIZE;
			if (!savefile_run_decode(&run, vm_gpa_to_host(vm, run.gpa, bytes), bytes, &err)) {
				fmt_snprintf(why, why_size, "memory: %s", err.text);
				return -1;
			}
			break;
		case SAVEFILE_CONSOLE:
			/*
			 * A VM that kept its history while Saved has it already;
			 * one made anew (an import, a host reboot) has none.
			 */
			if (!vm->console.written)
				console_ring_write(&vm->console, rec.payload, rec.size);
			break;
		default:
			break;
		}
	}
	if (!devstate_load(devs, count, device_records, used, &derr)) {
		fmt_snprintf(why, why_size, "%s", derr.text);
		return -1;
	}
	return 0;
}

/*
 * After a restore the VM may sit behind another switch port (a move) or
 * have been away long enough for the switch to forget it: each attached
 * adapter announces its MAC with a broadcast RARP, as QEMU's self-announce
 * does, so that switches learn where it is without waiting for the guest
 * to send (docs/savefile.md).
 */
#define ETHERTYPE_RARP 0x8035
#define RARP_REQUEST_REVERSE 3
#define ETH_MIN_FRAME 60

static void announce_adapters(const struct vm *vm)
{
	for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
		const struct nic_info *nic = nic_get(vm->id, i);
		uint8_t f[ETH_MIN_FRAME] = { 0 };
		if (!nic || !nic->present || nic->net < 0)
			continue;
		memset(f, 0xff, 6);                       /* to every port */
		memcpy(f + 6, nic->mac, 6);
		f[12] = ETHERTYPE_RARP >> 8;
		f[13] = ETHERTYPE_RARP & 0xff;
		f[15] = 1;                                /* Ethernet */
		f[16] = 0x08;                             /* IPv4 */
		f[18] = 6;
		f[19] = 4;
		f[21] = RARP_REQUEST_REVERSE;
		memcpy(f + 22, nic->mac, 6);              /* sender's hardware address */
		memcpy(f + 32, nic->mac, 6);              /* target's: the same, as RFC 903 asks */
		nic_transmit(vm->id, i, f, sizeof(f));
	}
}

/* The memory run records of an opened file, walked on a copy of the reader. */
static uint32_t memory_runs(const struct savefile_reader *r)
{
	struct savefile_reader walk = *r;
	struct savefile_record rec;
	uint32_t runs = 0;

	while (savefile_next(&walk, &rec))
		runs += rec.type == SAVEFILE_MEMORY;
	return runs;
}

int vm_save_restore(struct vm *vm, char *why, size_t why_size)
{
	uint64_t started = clock_ns(), scratch_pa;
	struct savefile_reader r;
	struct savefile_error err;
	struct vcpu_state cpu;
	struct saved_vm own = { 0 };
	struct devstate_error derr;

	if (!vm->saved.pages) {
		fmt_snprintf(why, why_size, "there is no saved state");
		return -1;
	}
	if (!savefile_open(&r, (const uint8_t *)(uintptr_t)vm->saved.base, vm->saved.bytes, &err)) {
		fmt_snprintf(why, why_size, "the saved state is damaged: %s", err.text);
		return -1;
	}
	uint64_t checked = clock_ns();
	if (r.walk.header.ram_bytes != vm->boot->ram_bytes) {
		fmt_snprintf(why, why_size, "the saved state has %llu MiB of RAM, the VM %llu MiB",
			     (unsigned long long)(r.walk.header.ram_bytes >> 20),
			     (unsigned long long)(vm->boot->ram_bytes >> 20));
		return -1;
	}
	if (r.walk.header.vcpus != 1) {
		fmt_snprintf(why, why_size, "the saved state has %u vCPUs, the VM 1",
			     r.walk.header.vcpus);
		return -1;
	}
	if (!savefile_cpu_supported(r.walk.header.cpu_features, vm_save_cpu_features(), &err)) {
		fmt_snprintf(why, why_size, "%s", err.text);
		return -1;
	}
	if (page_alloc_alloc(vm->pages, SAVE_SCRATCH_PAGES, 1, &scratch_pa)) {
		fmt_snprintf(why, why_size, "no memory to restore the state with");
		return -1;
	}
	struct save_scratch *s = (struct save_scratch *)(uintptr_t)scratch_pa;
	/* RAM waits until it is needed; without memory to index its runs, it is decoded now. */
	struct lazy_restore *lazy = lazy_restore_create(vm, memory_runs(&r));
	vcpu_state_power_on(&cpu);
	int rc = load_records(vm, &r, lazy, &cpu, &own, s->run, sizeof(s->run), why, why_size);
	uint64_t loaded = clock_ns();
	page_alloc_free(vm->pages, scratch_pa, SAVE_SCRATCH_PAGES);
	if (!rc && virt_vcpu_set_state(&vm->vcpu, &cpu, &derr)) {
		fmt_snprintf(why, why_size, "vCPU: %s", derr.text);
		rc = -1;
	}
	if (rc) {
		if (lazy)
			lazy_restore_free(vm, lazy);
		return -1;
	}
	if (lazy && lazy_restore_start(vm, lazy, why, why_size))
		return -1;
	vm_clock_load(&vm->clock, rdtsc(), own.ns, own.tsc);
	announce_adapters(vm);
	vm->vcpu.upcall_vector = own.upcall_vector;
	vm->vcpu.upcall_pending = own.upcall_pending;
	vm->vcpu.timer_deadline = own.timer_deadline;
	/* Where a restore's time goes: the file's checks, then the devices loaded (and RAM indexed). */
	log_info("vm '%s': state restored from %llu KiB, in %llu ms (the file checked in %llu ms, "
		 "its records loaded in %llu ms; RAM %s)", vm->cfg->name,
		 (unsigned long long)(vm->saved.bytes / 1024),
		 (unsigned long long)((clock_ns() - started) / 1000000),
		 (unsigned long long)((checked - started) / 1000000),
		 (unsigned long long)((loaded - checked) / 1000000),
		 vm->lazy ? "loaded as it is needed" : "decoded whole");
	return 0;
}

void vm_save_persist(struct vm *vm)
{
	char why[160];
	uint64_t started = clock_ns();

	/* Its disk's writes are in host RAM too: a state kept without them would lie. */
	if (vm->cfg->disk[0])
		fmt_snprintf(why, sizeof(why), "its disk is a RAM copy of '%s', whose writes a "
			     "host reboot loses too", vm->cfg->disk);
	else
		vm->saved.in_store = !store_host_keep_saved(vm->cfg->name,
							    (const void *)(uintptr_t)vm->saved.base,
							    vm->saved.bytes, vm->saved.saved_at, why,
							    sizeof(why));
	if (vm->saved.in_store)
		log_info("vm '%s': saved state kept in the store (%llu KiB in %llu ms)",
			 vm->cfg->name, (unsigned long long)(vm->saved.bytes / 1024),
			 (unsigned long long)((clock_ns() - started) / 1000000));
	else
		log_warn("vm '%s': saved state in host memory only, lost at a host reboot: %s",
			 vm->cfg->name, why);
}

void vm_save_discard(struct vm *vm)
{
	free_saved_pages(vm);
}

void vm_save_restored(struct vm *vm)
{
	if (vm->lazy) {
		lazy_restore_own_file(vm, &vm->saved);
		vm->saved = (struct vm_saved){ 0 };
	} else {
		free_saved_pages(vm);
	}
}
