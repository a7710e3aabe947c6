#include "boot/vm_loader.h"

#include "vmm/log.h"
#include "vmm/page_alloc.h"

#define MIB (1024ULL * 1024)
/* EPT maps guest RAM with 2-MiB pages where host and guest alignment agree. */
#define GUEST_RAM_ALIGN (2 * MIB)

static int reserve_ram(const struct cfg_vm *vm, struct boot_vm *out)
{
	uint64_t pages = vm->memory_bytes / PAGE_SIZE;
	uint64_t slack = GUEST_RAM_ALIGN / PAGE_SIZE - 1;
	EFI_PHYSICAL_ADDRESS base = 0;

	/* Over-allocate, then give back what lies outside the aligned block. */
	EFI_STATUS st = efi_bs->AllocatePages(AllocateAnyPages, EfiLoaderData,
					      pages + slack, &base);
	if (st != EFI_SUCCESS) {
		uint64_t total, largest;
		efi_free_memory(&total, &largest);
		log_err("vm '%s': cannot reserve %llu MiB of RAM: the largest free "
			"block is %llu MiB (%llu MiB free in all)",
			vm->name, (unsigned long long)(vm->memory_bytes / MIB),
			(unsigned long long)(largest / MIB),
			(unsigned long long)(total / MIB));
		return -1;
	}
	uint64_t aligned = (base + GUEST_RAM_ALIGN - 1) & ~(GUEST_RAM_ALIGN - 1);
	uint64_t head = (aligned - base) / PAGE_SIZE;
	if (head)
		efi_bs->FreePages(base, head);
	if (slack - head)
		efi_bs->FreePages(aligned + pages * PAGE_SIZE, slack - head);
	out->ram_base = aligned;
	out->ram_bytes = vm->memory_bytes;
	return 0;
}

/* Disk images are not bounded by guest RAM, only by what the host has. */
#define DISK_IMAGE_MAX (64 * 1024 * MIB)

static int load_file(EFI_FILE_HANDLE root, const struct cfg_vm *vm, const char *what,
		     const char *path, uint64_t max_size, struct boot_file *out)
{
	EFI_STATUS st = efi_read_file(root, path, max_size, out);

	if (st == EFI_BAD_BUFFER_SIZE) {
		log_err("vm '%s': %s '%s' does not fit in the VM's %llu MiB of RAM",
			vm->name, what, path, (unsigned long long)(vm->memory_bytes / MIB));
		return -1;
	}
	if (st != EFI_SUCCESS) {
		log_err("vm '%s': cannot read %s '%s' from the boot volume: %s",
			vm->name, what, path, efi_status_name(st));
		return -1;
	}
	if (!out->size) {
		log_err("vm '%s': %s '%s' is empty", vm->name, what, path);
		return -1;
	}
	return 0;
}

static void release(struct boot_vm *v)
{
	efi_free_file(&v->image);
	efi_free_file(&v->initrd);
	efi_free_file(&v->disk);
	if (v->ram_bytes)
		efi_bs->FreePages(v->ram_base, v->ram_bytes / PAGE_SIZE);
	*v = (struct boot_vm){ 0 };
}

unsigned vm_loader_load_all(EFI_FILE_HANDLE root, const struct config *cfg,
			    struct boot_vm *vms)
{
	unsigned problems = 0;

	/* Keep going after a problem: the operator fixes them all in one go. */
	for (unsigned i = 0; i < cfg->vm_count; i++) {
		const struct cfg_vm *vm = &cfg->vms[i];
		struct boot_vm *v = &vms[i];
		unsigned before = problems;

		*v = (struct boot_vm){ 0 };
		if (load_file(root, vm, "image", vm->image, vm->memory_bytes, &v->image))
			problems++;
		if (vm->initrd[0] &&
		    load_file(root, vm, "initrd", vm->initrd, vm->memory_bytes, &v->initrd))
			problems++;
		if (vm->disk[0] &&
		    load_file(root, vm, "disk", vm->disk, DISK_IMAGE_MAX, &v->disk))
			problems++;
		if (reserve_ram(vm, v))
			problems++;
		if (problems == before)
			log_info("vm '%s': %llu MiB RAM at 0x%llx, image %llu bytes%s%s",
				 vm->name, (unsigned long long)(vm->memory_bytes / MIB),
				 (unsigned long long)v->ram_base,
				 (unsigned long long)v->image.size,
				 v->initrd.size ? ", initrd" : "", v->disk.size ? ", disk" : "");
	}
	if (problems) {
		for (unsigned i = 0; i < cfg->vm_count; i++)
			release(&vms[i]);
	}
	return problems;
}
