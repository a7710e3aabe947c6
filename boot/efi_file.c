#include "boot/efi.h"

#include "vmm/page_alloc.h"

#include <string.h>

EFI_STATUS efi_open_boot_volume(EFI_HANDLE image, EFI_FILE_HANDLE *root)
{
	EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
	EFI_GUID fs_guid = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
	EFI_LOADED_IMAGE *loaded;
	EFI_FILE_IO_INTERFACE *fs;
	EFI_STATUS st;

	st = efi_bs->HandleProtocol(image, &loaded_image_guid, (void **)&loaded);
	if (st != EFI_SUCCESS)
		return st;
	st = efi_bs->HandleProtocol(loaded->DeviceHandle, &fs_guid, (void **)&fs);
	if (st != EFI_SUCCESS)
		return st;
	return fs->OpenVolume(fs, root);
}

int efi_app_directory(EFI_HANDLE image, char *dir, size_t size)
{
	EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
	EFI_LOADED_IMAGE *loaded;
	size_t n = 0, last_separator = 0;

	if (efi_bs->HandleProtocol(image, &loaded_image_guid, (void **)&loaded) != EFI_SUCCESS ||
	    !loaded->FilePath)
		return -1;
	/*
	 * The file path is one or more media file-path nodes (UEFI spec 10.3.5.4)
	 * whose names concatenate; a bounded walk, ASCII names only.
	 */
	EFI_DEVICE_PATH *node = loaded->FilePath;
	for (unsigned i = 0; i < 16 && DevicePathType(node) != END_DEVICE_PATH_TYPE; i++) {
		unsigned len = DevicePathNodeLength(node);
		if (len < sizeof(EFI_DEVICE_PATH))
			return -1;
		if (DevicePathType(node) == MEDIA_DEVICE_PATH &&
		    DevicePathSubType(node) == MEDIA_FILEPATH_DP) {
			const CHAR16 *name = ((FILEPATH_DEVICE_PATH *)node)->PathName;
			size_t chars = (len - SIZE_OF_FILEPATH_DEVICE_PATH) / sizeof(CHAR16);
			for (size_t c = 0; c < chars && name[c]; c++) {
				if (name[c] >= 0x80 || n + 1 >= size)
					return -1;
				if (name[c] == L'\\' || name[c] == L'/')
					last_separator = n;
				dir[n++] = name[c] == L'/' ? '\\' : (char)name[c];
			}
		}
		node = (EFI_DEVICE_PATH *)((uint8_t *)node + len);
	}
	if (!n)
		return -1;
	dir[last_separator] = '\0'; /* "" when the application sits in the root */
	return 0;
}

static EFI_STATUS file_size(EFI_FILE_HANDLE file, uint64_t *size)
{
	EFI_GUID info_guid = EFI_FILE_INFO_ID;
	/* EFI_FILE_INFO is followed by the file name; leave room for a long one. */
	union {
		EFI_FILE_INFO info;
		uint8_t bytes[sizeof(EFI_FILE_INFO) + 512];
	} buf;
	UINTN len = sizeof(buf);
	EFI_STATUS st = file->GetInfo(file, &info_guid, &len, &buf);

	if (st != EFI_SUCCESS)
		return st;
	if (buf.info.Attribute & EFI_FILE_DIRECTORY)
		return EFI_NOT_FOUND;
	*size = buf.info.FileSize;
	return EFI_SUCCESS;
}

EFI_STATUS efi_read_file(EFI_FILE_HANDLE root, const char *path, uint64_t max_size,
			 struct boot_file *out)
{
	CHAR16 wpath[256];
	EFI_FILE_HANDLE file;
	EFI_STATUS st;
	size_t n = strlen(path);

	*out = (struct boot_file){ 0 };
	if (n >= sizeof(wpath) / sizeof(wpath[0]))
		return EFI_INVALID_PARAMETER;
	for (size_t i = 0; i <= n; i++)
		wpath[i] = (CHAR16)(unsigned char)path[i];

	st = root->Open(root, &file, wpath, EFI_FILE_MODE_READ, 0);
	if (st != EFI_SUCCESS)
		return st;

	uint64_t size = 0;
	st = file_size(file, &size);
	if (st == EFI_SUCCESS && size > max_size)
		st = EFI_BAD_BUFFER_SIZE;
	if (st == EFI_SUCCESS && size) {
		EFI_PHYSICAL_ADDRESS base = 0;
		uint64_t pages = (size + PAGE_SIZE - 1) / PAGE_SIZE;

		st = efi_bs->AllocatePages(AllocateAnyPages, EfiLoaderData, pages, &base);
		if (st == EFI_SUCCESS) {
			UINTN len = size;
			st = file->Read(file, &len, (void *)(uintptr_t)base);
			/* A short read would leave the image silently truncated. */
			if (st == EFI_SUCCESS && len != size)
				st = EFI_END_OF_FILE;
			if (st == EFI_SUCCESS)
				*out = (struct boot_file){ .base = base, .size = size, .pages = pages };
			else
				efi_bs->FreePages(base, pages);
		}
	}
	file->Close(file);
	return st;
}

void efi_free_file(struct boot_file *blob)
{
	if (blob->pages)
		efi_bs->FreePages(blob->base, blob->pages);
	*blob = (struct boot_file){ 0 };
}

const char *efi_status_name(EFI_STATUS st)
{
	switch (st) {
	case EFI_SUCCESS: return "success";
	case EFI_NOT_FOUND: return "not found";
	case EFI_OUT_OF_RESOURCES: return "out of resources";
	case EFI_BAD_BUFFER_SIZE: return "too large";
	case EFI_INVALID_PARAMETER: return "invalid parameter";
	case EFI_DEVICE_ERROR: return "device error";
	case EFI_VOLUME_CORRUPTED: return "volume corrupted";
	case EFI_ACCESS_DENIED: return "access denied";
	case EFI_UNSUPPORTED: return "unsupported";
	case EFI_END_OF_FILE: return "short read";
	case EFI_NO_MEDIA: return "no media";
	default: return "firmware error";
	}
}
