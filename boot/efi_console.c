#include "boot/efi.h"
#include "vmm/log.h"

#define MAX_TEXT_SINKS 4
/* Characters converted per OutputString call. */
#define CHUNK 128

static SIMPLE_TEXT_OUTPUT_INTERFACE *sinks[MAX_TEXT_SINKS];
static unsigned sink_count;

static int path_has_uart(EFI_DEVICE_PATH *node)
{
	/* A bounded walk: a broken path must not hang the boot. */
	for (unsigned i = 0; i < 64; i++) {
		if (DevicePathType(node) == END_DEVICE_PATH_TYPE)
			return 0;
		if (DevicePathType(node) == MESSAGING_DEVICE_PATH &&
		    DevicePathSubType(node) == MSG_UART_DP)
			return 1;
		unsigned len = DevicePathNodeLength(node);
		if (len < sizeof(EFI_DEVICE_PATH))
			return 0;
		node = (EFI_DEVICE_PATH *)((uint8_t *)node + len);
	}
	return 0;
}

static void write_to_sinks(const char *line)
{
	CHAR16 buf[CHUNK + 2];

	while (*line) {
		unsigned n = 0;
		while (*line && n < CHUNK) {
			/* UEFI text consoles need CR LF. */
			if (*line == '\n')
				buf[n++] = L'\r';
			buf[n++] = (CHAR16)(unsigned char)*line++;
		}
		buf[n] = 0;
		for (unsigned i = 0; i < sink_count; i++)
			sinks[i]->OutputString(sinks[i], buf);
	}
}

void efi_console_attach_log(void)
{
	EFI_GUID text_out_guid = EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL_GUID;
	EFI_GUID device_path_guid = EFI_DEVICE_PATH_PROTOCOL_GUID;
	EFI_HANDLE *handles = NULL;
	UINTN count = 0;

	/*
	 * Every physical console has its own handle with a device path; the
	 * firmware's console splitter (ConOut) has none and is skipped, which is
	 * what lets us leave out the consoles that are serial terminals.
	 */
	if (efi_bs->LocateHandleBuffer(ByProtocol, &text_out_guid, NULL, &count,
				       &handles) != EFI_SUCCESS)
		return;
	for (UINTN i = 0; i < count && sink_count < MAX_TEXT_SINKS; i++) {
		EFI_DEVICE_PATH *path;
		SIMPLE_TEXT_OUTPUT_INTERFACE *out;

		if (efi_bs->HandleProtocol(handles[i], &device_path_guid, (void **)&path) !=
		    EFI_SUCCESS)
			continue;
		if (path_has_uart(path))
			continue;
		if (efi_bs->HandleProtocol(handles[i], &text_out_guid, (void **)&out) ==
		    EFI_SUCCESS)
			sinks[sink_count++] = out;
	}
	efi_bs->FreePool(handles);
	if (sink_count)
		log_set_firmware_sink(write_to_sinks);
}

void efi_console_detach_log(void)
{
	log_set_firmware_sink(NULL);
	sink_count = 0;
}
