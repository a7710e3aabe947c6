#include "vmm/library.h"

#include <string.h>

static bool named(const char *configured, const char *want, const struct boot_file *file)
{
	return configured[0] && file->size && !strcmp(configured, want);
}

const struct boot_file *library_find(const struct config *cfg, const struct boot_vm *boot,
				     const char *path, enum library_kind kind)
{
	char want[CFG_PATH_MAX];
	size_t i;

	/* Paths are compared in the configuration's form: '/' is '\'. */
	for (i = 0; path[i] && i < sizeof(want) - 1; i++)
		want[i] = path[i] == '/' ? '\\' : path[i];
	want[i] = '\0';
	for (unsigned v = 0; v < cfg->vm_count; v++) {
		const struct cfg_vm *c = &cfg->vms[v];
		const struct boot_vm *b = &boot[v];
		if (kind == LIBRARY_DISK && named(c->disk, want, &b->disk))
			return &b->disk;
		if (kind == LIBRARY_BOOT_FILE && named(c->image, want, &b->image))
			return &b->image;
		if (kind == LIBRARY_BOOT_FILE && named(c->initrd, want, &b->initrd))
			return &b->initrd;
	}
	return NULL;
}
