/*
 * IVMVirtualServer's own requests and the session's: Hello, Goodbye,
 * GetHostInfo, SubscribeEvents (the subscription itself is the management
 * VM's; the hypervisor checks the console VM and says where events start).
 */
#include "vmm/control_internal.h"

#include "boot/boot_info.h"
#include "vmm/clock.h"
#include "vmm/mgmt.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/storage/store_host.h"
#include "vmm/vm.h"

/* The page pool and the configured VMs, for the host's memory figures. */
static const struct boot_info *boot;

void control_host_init(const struct boot_info *bi)
{
	boot = bi;
}

#define SOFTWARE "vmm " VMM_VERSION " (" VMM_GIT_REV ")"

int hello(struct call *c)
{
	tlv_put_u16(&c->w, API_TAG_API_VERSION, API_VERSION);
	tlv_put_str(&c->w, API_TAG_SOFTWARE, SOFTWARE);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
	return 0;
}

int goodbye(struct call *c)
{
	(void)c;
	return 0;
}

int host_info(struct call *c)
{
	const struct page_alloc *pa = boot->host_pages;
	uint64_t reserved = 0;

	/* Configured VMs' RAM was reserved from the firmware, outside the page pool. */
	for (unsigned i = 0; i < boot->config->vm_count; i++)
		reserved += boot->vms[i].ram_bytes;
	uint64_t total = pa->total_pages * PAGE_SIZE + reserved;
	uint64_t free = pa->free_pages * PAGE_SIZE;
	tlv_put_str(&c->w, API_TAG_SOFTWARE, SOFTWARE);
	tlv_put_u16(&c->w, API_TAG_API_VERSION, API_VERSION);
	/* The scheduler runs every vCPU on the boot CPU. */
	tlv_put_u32(&c->w, API_TAG_CPUS, 1);
	tlv_put_u64(&c->w, API_TAG_MEMORY_TOTAL, total);
	tlv_put_u64(&c->w, API_TAG_MEMORY_FREE, free);
	tlv_put_u64(&c->w, API_TAG_MEMORY_USED, total - free);
	tlv_put_u64(&c->w, API_TAG_UPTIME_MS, clock_ns() / 1000000);
	uint64_t now = clock_wallclock_ns();
	if (now)
		tlv_put_u64(&c->w, API_TAG_HOST_TIME_NS, now);
	tlv_put_u32(&c->w, API_TAG_VM_COUNT, vm_count());
	tlv_put_u32(&c->w, API_TAG_NET_COUNT, network_count());
	tlv_put_u32(&c->w, API_TAG_CONTROL_DENIED, mgmt_denied_total());
	tlv_put_str(&c->w, API_TAG_STORE, store_host_status());
	return 0;
}

int subscribe(struct call *c)
{
	char name[API_NAME_MAX + 1];

	if (tlv_get_str(c->req, c->len, API_TAG_CONSOLE_VM, name, sizeof(name)) == TLV_OK &&
	    !vm_named(name))
		return fail(c, API_E_NOT_FOUND, "SubscribeEvents: no VM named '%s'", name);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
	return 0;
}
