/*
 * The store's container file on the boot volume, resolved to the sectors
 * of its disk before ExitBootServices (docs/store.md): the FAT is read
 * through the volume's Block I/O protocol (boot/fat.c), and the disk is
 * named by the volume's device path: the ATA channel and drive, and the
 * partition's first sector (none: the volume is the whole disk). After the
 * hand-over the hypervisor reaches those sectors with its own driver and
 * never writes the FAT.
 */
#include "boot/efi.h"
#include "boot/store_locate.h"

#include "lib/fmt.h"
#include "lib/le.h"
#include "vmm/log.h"
#include "x86/cpu.h"

#include <string.h>

/* UEFI 2.10, 10.3.4.21: not in gnu-efi's headers. */
#define MSG_NVME_NAMESPACE_DP 0x17

struct volume_reader {
	EFI_BLOCK_IO *io;
};

static bool read_volume(void *ctx, uint64_t sector, uint32_t count, void *buf)
{
	struct volume_reader *r = ctx;

	return r->io->ReadBlocks(r->io, r->io->Media->MediaId, sector,
				 (UINTN)count * FAT_SECTOR, buf) == EFI_SUCCESS;
}

/*
 * The disk under the volume from its device path (UEFI 2.10, 10.3): an
 * Ata() node names channel and drive; a HardDrive() node the partition's
 * first sector. false, with why, for a disk this hypervisor cannot drive.
 */
/*
 * The controller's programming interface (PCI class 01h subclass 01h): a
 * channel in native mode has its ports in BARs, not at the legacy
 * addresses this driver uses (PCI IDE Controller Specification 1.0, 2).
 */
static bool legacy_channel(unsigned device, unsigned function, unsigned channel, char *why,
			   size_t n)
{
	outl(0xcf8, 0x80000000u | device << 11 | function << 8 | 0x08);
	uint32_t class = inl(0xcfc);

	if ((class >> 16) != 0x0101) {
		fmt_snprintf(why, n, "the boot disk's controller (PCI 00:%02x.%u, class %06x) is "
			     "not an IDE controller", device, function, class >> 8);
		return false;
	}
	if (class >> 8 & (channel ? 0x04 : 0x01)) {
		fmt_snprintf(why, n, "the boot disk's IDE channel runs in PCI native mode: no "
			     "driver for it yet");
		return false;
	}
	return true;
}

static bool disk_of(EFI_DEVICE_PATH *path, struct boot_store *s, uint64_t *partition_start,
		    char *why, size_t n)
{
	bool ata = false;
	unsigned pci_nodes = 0, pci_device = 0, pci_function = 0;

	*partition_start = 0;
	for (unsigned i = 0; i < 32 && DevicePathType(path) != END_DEVICE_PATH_TYPE; i++) {
		const uint8_t *node = (const uint8_t *)path;
		unsigned len = DevicePathNodeLength(path);
		if (len < 4)
			break;
		/* PciRoot(UID): only the first root bridge's bus is known to be bus 0. */
		if (DevicePathType(path) == ACPI_DEVICE_PATH && DevicePathSubType(path) == ACPI_DP &&
		    len >= 12 && le_get(node + 8, 4) != 0) {
			fmt_snprintf(why, n, "the boot disk is under PCI root bridge %u: no driver for "
				     "it there yet", (unsigned)le_get(node + 8, 4));
			return false;
		}
		if (DevicePathType(path) == HARDWARE_DEVICE_PATH &&
		    DevicePathSubType(path) == HW_PCI_DP && len >= 6) {
			pci_nodes++;
			pci_function = node[4];
			pci_device = node[5];
		}
		if (DevicePathType(path) == MESSAGING_DEVICE_PATH) {
			/* Fields by their byte offsets: device path nodes are packed. */
			if (DevicePathSubType(path) == MSG_ATAPI_DP && len >= 8) {
				ata = true;
				s->ata_channel = node[4] ? 1 : 0;
				s->ata_slave = node[5] != 0;
			} else if (DevicePathSubType(path) == MSG_SATA_DP) {
				fmt_snprintf(why, n, "the boot disk is on a SATA (AHCI) port: no driver "
					     "for it yet");
				return false;
			} else if (DevicePathSubType(path) == MSG_NVME_NAMESPACE_DP) {
				fmt_snprintf(why, n, "the boot disk is an NVMe namespace: no driver "
					     "for it yet");
				return false;
			}
		}
		if (DevicePathType(path) == MEDIA_DEVICE_PATH &&
		    DevicePathSubType(path) == MEDIA_HARDDRIVE_DP && len >= 24)
			*partition_start = le_get(node + 8, 8);
		path = (EFI_DEVICE_PATH *)((uint8_t *)path + len);
	}
	if (!ata) {
		fmt_snprintf(why, n, "the boot disk is on no ATA channel (its device path names "
			     "none): no driver for it yet");
		return false;
	}
	/* On the root bus its configuration space is known without the firmware's bus numbers. */
	if (pci_nodes != 1) {
		fmt_snprintf(why, n, "the boot disk's controller is behind a PCI bridge: no driver "
			     "for it there yet");
		return false;
	}
	if (!legacy_channel(pci_device & 31, pci_function & 7, s->ata_channel, why, n))
		return false;
	s->bus = BOOT_STORE_ATA;
	return true;
}

void store_locate(EFI_HANDLE image, const char *path, struct boot_store *out)
{
	EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
	EFI_GUID block_io_guid = EFI_BLOCK_IO_PROTOCOL_GUID;
	EFI_GUID device_path_guid = EFI_DEVICE_PATH_PROTOCOL_GUID;
	EFI_LOADED_IMAGE *loaded;
	EFI_DEVICE_PATH *device_path;
	struct volume_reader r;
	struct boot_store s = { 0 };
	uint64_t partition_start;
	char why[160];

	*out = (struct boot_store){ 0 };
	/* A root file, '\' and an 8.3 name: the FAT walk looks there only. */
	const char *name = path[0] == '\\' ? path + 1 : path;
	bool in_root = true;
	for (const char *c = name; *c; c++)
		in_root &= *c != '\\' && *c != '/';
	if (efi_bs->HandleProtocol(image, &loaded_image_guid, (void **)&loaded) != EFI_SUCCESS ||
	    efi_bs->HandleProtocol(loaded->DeviceHandle, &block_io_guid, (void **)&r.io) !=
		    EFI_SUCCESS ||
	    efi_bs->HandleProtocol(loaded->DeviceHandle, &device_path_guid,
				   (void **)&device_path) != EFI_SUCCESS) {
		log_warn("store '%s': the boot volume offers no Block I/O or device path; "
			 "running without a store", path);
		return;
	}
	if (r.io->Media->BlockSize != FAT_SECTOR) {
		log_warn("store '%s': the boot volume's blocks are %u bytes, not 512; running "
			 "without a store", path, r.io->Media->BlockSize);
		return;
	}
	if (!in_root || !disk_of(device_path, &s, &partition_start, why, sizeof(why)) ||
	    fat_map_file(read_volume, &r, r.io->Media->LastBlock + 1, name, &s.map, why,
			 sizeof(why))) {
		if (!in_root)
			fmt_snprintf(why, sizeof(why), "the store file lies in the root directory");
		log_warn("store '%s': %s; running without a store", path, why);
		return;
	}
	for (uint32_t i = 0; i < s.map.count; i++)
		s.map.extent[i].sector += partition_start;
	s.bytes = s.map.bytes;
	log_info("store '%s': %llu KiB in %u piece(s) from sector %llu of the ATA %s %s drive",
		 path, (unsigned long long)(s.bytes / 1024), s.map.count,
		 (unsigned long long)s.map.extent[0].sector,
		 s.ata_channel ? "secondary" : "primary", s.ata_slave ? "slave" : "master");
	*out = s;
}
