/*
 * Disks in the store through the API (docs/store.md, "Disks made through
 * the API"): CreateVirtualHardDisk answers at once with the disk being
 * made (zeroed in the background, vmm/storage/store_host.c), which
 * ListVirtualHardDisks follows to 100%; a VM names it as its store_disk.
 */
#include "vmm/control_internal.h"

#include "lib/store.h"
#include "vmm/storage/store_host.h"
#include "vmm/vm.h"

int store_refused(struct call *c, int e, const char *why)
{
	static const uint16_t api[] = {
		[STORE_HOST_NO_STORE] = API_E_NOT_SUPPORTED,
		[STORE_HOST_EXISTS] = API_E_ALREADY_EXISTS,
		[STORE_HOST_NO_SPACE] = API_E_NO_RESOURCES,
		[STORE_HOST_INVALID] = API_E_INVALID_ARGUMENT,
		[STORE_HOST_NOT_FOUND] = API_E_NOT_FOUND,
		[STORE_HOST_TAKEN] = API_E_INVALID_STATE,
		[STORE_HOST_BUSY] = API_E_BUSY,
	};

	return fail(c, api[e], "%s: %s", request_name(c->request), why);
}

int create_disk(struct call *c)
{
	char name[API_NAME_MAX + 1], why[160];
	uint64_t bytes;
	int e;

	if (need_str(c, c->request, API_TAG_STORE_DISK, name, sizeof(name)))
		return -1;
	if (tlv_get_u64(c->req, c->len, API_TAG_DISK_SIZE, &bytes) != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualHardDisk: missing disk_size");
	if (!store_name_valid(name))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualHardDisk: '%s' is no store "
			    "name (1 to %u of A-Z a-z 0-9 . _ -, not first . or -)", name,
			    STORE_NAME_MAX);
	if ((e = store_host_create_disk(name, bytes, why, sizeof(why))))
		return store_refused(c, e, why);
	tlv_put_str(&c->w, API_TAG_STORE_DISK, name);
	tlv_put_u64(&c->w, API_TAG_DISK_SIZE, bytes);
	tlv_put_u8(&c->w, API_TAG_DISK_READY_PCT, 0);
	return 0;
}

static void put_disk_entry(struct call *c, unsigned i)
{
	struct store_host_disk d;

	if (!store_host_disk_at(i, &d))
		return;
	size_t list = tlv_list_begin(&c->w, API_TAG_DISK_ENTRY);
	tlv_put_str(&c->w, API_TAG_STORE_DISK, d.name);
	tlv_put_u64(&c->w, API_TAG_DISK_SIZE, d.bytes);
	tlv_put_u8(&c->w, API_TAG_DISK_READY_PCT, (uint8_t)d.ready_percent);
	for (unsigned k = 0; d.vm_id >= 0 && k < vm_count(); k++)
		if (vm_by_index(k)->id == (unsigned)d.vm_id)
			tlv_put_str(&c->w, API_TAG_VM, vm_by_index(k)->cfg->name);
	tlv_list_end(&c->w, list);
}

int list_disks(struct call *c)
{
	return put_paged(c, STORE_OBJECTS_MAX, put_disk_entry);
}

int delete_disk(struct call *c)
{
	char name[API_NAME_MAX + 1], why[160];
	int e;

	if (need_str(c, c->request, API_TAG_STORE_DISK, name, sizeof(name)))
		return -1;
	if ((e = store_host_delete_disk(name, why, sizeof(why))))
		return store_refused(c, e, why);
	tlv_put_str(&c->w, API_TAG_STORE_DISK, name);
	return 0;
}
