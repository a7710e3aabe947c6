#include "boot/efi.h"

EFI_STATUS efi_get_memory_map(struct efi_raw_map *m)
{
	for (;;) {
		UINTN size = m->capacity;
		EFI_STATUS st = efi_bs->GetMemoryMap(&size, (EFI_MEMORY_DESCRIPTOR *)m->buf,
						     &m->key, &m->desc_size,
						     &m->desc_version);
		if (st == EFI_SUCCESS) {
			m->size = size;
			return st;
		}
		if (st != EFI_BUFFER_TOO_SMALL)
			return st;
		if (m->buf)
			efi_bs->FreePool(m->buf);
		/*
		 * Allocating the bigger buffer can itself split a free range and
		 * add descriptors, so ask for generous slack (UEFI spec 7.2,
		 * GetMemoryMap()).
		 */
		m->capacity = size + 16 * (m->desc_size ? m->desc_size : 64);
		st = efi_bs->AllocatePool(EfiLoaderData, m->capacity, (void **)&m->buf);
		if (st != EFI_SUCCESS) {
			m->buf = NULL;
			m->capacity = 0;
			return st;
		}
	}
}

void efi_free_memory(uint64_t *total_bytes, uint64_t *largest_bytes)
{
	struct efi_raw_map m = { 0 };

	*total_bytes = 0;
	*largest_bytes = 0;
	if (efi_get_memory_map(&m) != EFI_SUCCESS)
		return;
	for (UINTN off = 0; off + m.desc_size <= m.size; off += m.desc_size) {
		const EFI_MEMORY_DESCRIPTOR *d = (const void *)(m.buf + off);
		if (d->Type != EfiConventionalMemory)
			continue;
		uint64_t bytes = d->NumberOfPages * EFI_PAGE_SIZE;
		*total_bytes += bytes;
		if (bytes > *largest_bytes)
			*largest_bytes = bytes;
	}
	efi_bs->FreePool(m.buf);
}
