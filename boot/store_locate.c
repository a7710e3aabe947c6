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
#include <efigpt.h>
#include "boot/store_locate.h"

#include "lib/fmt.h"
#include "lib/le.h"
#include "lib/store.h"
#include "vmm/log.h"
#include "x86/pci.h"

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

/* UEFI 2.10, 10.3.4.6: Sata(HBA port, port multiplier port, LUN); 0xffff: no multiplier. */
#define SATA_NO_MULTIPLIER 0xffff
/* Virtio's PCI vendor, and virtio-blk's transitional and modern device IDs (virtio 1.2, 4.1.2). */
#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_BLK_TRANSITIONAL 0x1001
#define VIRTIO_BLK_MODERN 0x1042

/* The function's class code: base class, subclass and programming interface. */
static uint32_t class_of(struct pci_address a)
{
	return pci_read32(a, PCI_CLASS_REVISION) >> 8;
}

/*
 * An IDE controller's channel must run in compatibility mode (PCI IDE
 * Controller Specification 1.0, 2): in native mode its ports are in BARs,
 * not at the legacy addresses this driver uses.
 */
static bool legacy_channel(struct pci_address a, unsigned channel, char *why, size_t n)
{
	uint32_t class = class_of(a);

	if ((class >> 8) != 0x0101) {
		fmt_snprintf(why, n, "the boot disk's controller (PCI %02x:%02x.%u, class %06x) is "
			     "not an IDE controller", a.bus, a.device, a.function, class);
		return false;
	}
	if (class & (channel ? 0x04 : 0x01)) {
		fmt_snprintf(why, n, "the boot disk's IDE channel runs in PCI native mode: no "
			     "driver for it yet");
		return false;
	}
	return true;
}

/*
 * The boot disk's controller, as the firmware's PCI bus driver knows it:
 * the PCI I/O protocol on the device path's PCI device gives its segment,
 * bus, device and function, bridges and root bridges resolved (UEFI 2.10,
 * 14.4). Segment 0 only: configuration mechanism #1 reaches no other.
 */
static bool controller_of(EFI_DEVICE_PATH *path, struct pci_address *pci, char *why, size_t n)
{
	EFI_GUID pci_io_guid = EFI_PCI_IO_PROTOCOL_GUID;
	EFI_DEVICE_PATH *rest = path;
	EFI_HANDLE handle;
	EFI_PCI_IO_PROTOCOL *io;
	UINTN segment, bus, device, function;

	if (efi_bs->LocateDevicePath(&pci_io_guid, &rest, &handle) != EFI_SUCCESS ||
	    efi_bs->HandleProtocol(handle, &pci_io_guid, (void **)&io) != EFI_SUCCESS ||
	    io->GetLocation(io, &segment, &bus, &device, &function) != EFI_SUCCESS) {
		fmt_snprintf(why, n, "the boot disk's controller is no PCI device the firmware "
			     "names");
		return false;
	}
	if (segment != 0 || bus > 255 || device > 31 || function > 7) {
		fmt_snprintf(why, n, "the boot disk's controller is in PCI segment %llu: no driver "
			     "for it there yet", (unsigned long long)segment);
		return false;
	}
	*pci = (struct pci_address){ (uint8_t)bus, (uint8_t)device, (uint8_t)function };
	return true;
}

/*
 * The disk under the volume from its device path (UEFI 2.10, 10.3): an
 * Ata(), Sata() or NVMe() node names the disk behind the controller (a
 * virtio-blk disk is the PCI function itself), a HardDrive() node the
 * partition's first sector. The whole path is read, to its End node: a
 * partition missed would put the store at the wrong sectors. false, with
 * why, for a disk this hypervisor cannot drive.
 */
static bool disk_of(EFI_DEVICE_PATH *path, struct boot_store *s, uint64_t *partition_start,
		    char *why, size_t n)
{
	enum boot_store_bus bus = BOOT_STORE_NONE;
	struct pci_address pci;

	if (!controller_of(path, &pci, why, n))
		return false;
	*partition_start = 0;
	for (unsigned i = 0; DevicePathType(path) != END_DEVICE_PATH_TYPE; i++) {
		const uint8_t *node = (const uint8_t *)path;
		unsigned len = DevicePathNodeLength(path), type = DevicePathType(path),
			 sub = DevicePathSubType(path);
		if (len < 4 || i == 32) {
			fmt_snprintf(why, n, "the boot disk's device path does not read to its end");
			return false;
		}
		/* Fields by their byte offsets: device path nodes are packed. */
		if (type == MESSAGING_DEVICE_PATH && sub == MSG_ATAPI_DP && len >= 8) {
			bus = BOOT_STORE_ATA;
			s->ata_channel = node[4] ? 1 : 0;
			s->ata_slave = node[5] != 0;
		} else if (type == MESSAGING_DEVICE_PATH && sub == MSG_SATA_DP && len >= 10) {
			bus = BOOT_STORE_AHCI;
			s->sata_port = (uint16_t)le_get(node + 4, 2);
			if (le_get(node + 6, 2) != SATA_NO_MULTIPLIER) {
				fmt_snprintf(why, n, "the boot disk is behind a SATA port multiplier: "
					     "no driver for it yet");
				return false;
			}
		} else if (type == MESSAGING_DEVICE_PATH && sub == MSG_NVME_NAMESPACE_DP &&
			   len >= 8) {
			bus = BOOT_STORE_NVME;
			s->nvme_namespace = (uint32_t)le_get(node + 4, 4);
		}
		if (type == MEDIA_DEVICE_PATH && sub == MEDIA_HARDDRIVE_DP && len >= 24)
			*partition_start = le_get(node + 8, 8);
		path = (EFI_DEVICE_PATH *)((uint8_t *)path + len);
	}
	uint32_t id = pci_read32(pci, PCI_VENDOR_DEVICE), class = class_of(pci);
	if (bus == BOOT_STORE_NONE && (id & 0xffff) == VIRTIO_VENDOR &&
	    ((id >> 16) == VIRTIO_BLK_TRANSITIONAL || (id >> 16) == VIRTIO_BLK_MODERN))
		bus = BOOT_STORE_VIRTIO;
	s->pci_bus = pci.bus;
	s->pci_device = pci.device;
	s->pci_function = pci.function;
	switch (bus) {
	case BOOT_STORE_ATA:
		if (!legacy_channel(pci, s->ata_channel, why, n))
			return false;
		break;
	case BOOT_STORE_AHCI:
		/* Mass storage, SATA, AHCI 1.0 (PCI Code and ID Assignment 1.11, D.2). */
		if (class != 0x010601) {
			fmt_snprintf(why, n, "the boot disk's SATA controller (PCI %02x:%02x.%u, "
				     "class %06x) is not an AHCI one", pci.bus, pci.device,
				     pci.function, class);
			return false;
		}
		break;
	case BOOT_STORE_NVME:
		if (class != 0x010802) {
			fmt_snprintf(why, n, "the boot disk's controller (PCI %02x:%02x.%u, class "
				     "%06x) is not an NVMe one", pci.bus, pci.device, pci.function,
				     class);
			return false;
		}
		break;
	case BOOT_STORE_VIRTIO:
		break;
	case BOOT_STORE_NONE:
		fmt_snprintf(why, n, "the boot disk is on PCI %02x:%02x.%u (%04x:%04x, class %06x), "
			     "which is no ATA, AHCI, NVMe or virtio-blk controller", pci.bus,
			     pci.device, pci.function, id & 0xffff, id >> 16, class);
		return false;
	}
	s->bus = bus;
	return true;
}

/* For the log: "the ATA primary master drive", "SATA port 0 of AHCI 00:1f.2". */
static void describe(const struct boot_store *s, char *out, size_t n)
{
	switch (s->bus) {
	case BOOT_STORE_ATA:
		fmt_snprintf(out, n, "the ATA %s %s drive", s->ata_channel ? "secondary" : "primary",
			     s->ata_slave ? "slave" : "master");
		break;
	case BOOT_STORE_AHCI:
		fmt_snprintf(out, n, "SATA port %u of AHCI %02x:%02x.%u", s->sata_port, s->pci_bus,
			     s->pci_device, s->pci_function);
		break;
	case BOOT_STORE_NVME:
		fmt_snprintf(out, n, "namespace %u of NVMe %02x:%02x.%u", s->nvme_namespace,
			     s->pci_bus, s->pci_device, s->pci_function);
		break;
	default:
		fmt_snprintf(out, n, "virtio-blk %02x:%02x.%u", s->pci_bus, s->pci_device,
			     s->pci_function);
		break;
	}
}

/* UEFI 2.10, 13.18: EFI_PARTITION_INFO_PROTOCOL; not in gnu-efi's headers. */
#define PARTITION_INFO_GUID                                                               \
	{ 0x8cf2f62c, 0xbc9b, 0x4821, { 0x80, 0x8d, 0xec, 0x9e, 0xc4, 0x21, 0xa1, 0xa0 } }
#define PARTITION_TYPE_GPT 0x02

struct partition_info {
	UINT32 revision;
	UINT32 type;
	UINT8 system;
	UINT8 reserved[7];
	union {
		UINT8 mbr[16];
		EFI_PARTITION_ENTRY gpt;
	} info;
} __attribute__((packed));
_Static_assert(sizeof(EFI_PARTITION_ENTRY) == 128, "UEFI 2.10, 5.3.3");

/* STORE_GPT_TYPE as a GUID in memory (the first three fields little-endian). */
static const EFI_GUID store_type = { 0xc78ea6a6, 0x4a69, 0x4576,
				     { 0x97, 0xfd, 0x0f, 0xa7, 0x45, 0xdc, 0x6d, 0xb4 } };

/*
 * store = partition: the one GPT partition of the store's type on any
 * disk the firmware sees (its Partition Information protocol says the
 * type). The store is the whole partition, one extent; nothing but its
 * sectors is ever written.
 */
static bool locate_partition(struct boot_store *s, char *why, size_t n)
{
	EFI_GUID info_guid = PARTITION_INFO_GUID, block_io_guid = EFI_BLOCK_IO_PROTOCOL_GUID;
	EFI_GUID device_path_guid = EFI_DEVICE_PATH_PROTOCOL_GUID;
	EFI_HANDLE *handles, found = NULL;
	UINTN count = 0;
	unsigned matches = 0;
	struct partition_info *info;
	EFI_BLOCK_IO *io;
	EFI_DEVICE_PATH *path;
	uint64_t start;

	if (efi_bs->LocateHandleBuffer(ByProtocol, &info_guid, NULL, &count, &handles) !=
	    EFI_SUCCESS)
		count = 0;
	for (UINTN i = 0; i < count; i++)
		if (efi_bs->HandleProtocol(handles[i], &info_guid, (void **)&info) == EFI_SUCCESS &&
		    info->type == PARTITION_TYPE_GPT &&
		    !memcmp(&info->info.gpt.PartitionTypeGUID, &store_type, sizeof(store_type)) &&
		    !matches++)
			found = handles[i];
	if (count)
		efi_bs->FreePool(handles);
	if (!matches) {
		fmt_snprintf(why, n, "no GPT partition of the store's type " STORE_GPT_TYPE " (or "
			     "the firmware has no Partition Information protocol)");
		return false;
	}
	if (matches > 1) {
		fmt_snprintf(why, n, "%u GPT partitions are of the store's type " STORE_GPT_TYPE
			     ": which one is meant is not clear", matches);
		return false;
	}
	if (efi_bs->HandleProtocol(found, &block_io_guid, (void **)&io) != EFI_SUCCESS ||
	    efi_bs->HandleProtocol(found, &device_path_guid, (void **)&path) != EFI_SUCCESS ||
	    io->Media->BlockSize != FAT_SECTOR) {
		fmt_snprintf(why, n, "the store partition offers no Block I/O of 512-byte blocks "
			     "or no device path");
		return false;
	}
	if (!disk_of(path, s, &start, why, n))
		return false;
	s->map.count = 1;
	s->map.extent[0] = (struct fat_extent){ start, io->Media->LastBlock + 1 };
	s->map.bytes = (io->Media->LastBlock + 1) * FAT_SECTOR;
	return true;
}

/* store = \FILE: the container file in the boot volume's root, through the FAT. */
static bool locate_file(EFI_HANDLE image, const char *path, struct boot_store *s, char *why,
			size_t n)
{
	EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
	EFI_GUID block_io_guid = EFI_BLOCK_IO_PROTOCOL_GUID;
	EFI_GUID device_path_guid = EFI_DEVICE_PATH_PROTOCOL_GUID;
	EFI_LOADED_IMAGE *loaded;
	EFI_DEVICE_PATH *device_path;
	struct volume_reader r;
	uint64_t partition_start;

	/* A root file, '\' and an 8.3 name: the FAT walk looks there only. */
	const char *name = path[0] == '\\' ? path + 1 : path;
	for (const char *c = name; *c; c++)
		if (*c == '\\' || *c == '/') {
			fmt_snprintf(why, n, "the store file lies in the root directory");
			return false;
		}
	if (efi_bs->HandleProtocol(image, &loaded_image_guid, (void **)&loaded) != EFI_SUCCESS ||
	    efi_bs->HandleProtocol(loaded->DeviceHandle, &block_io_guid, (void **)&r.io) !=
		    EFI_SUCCESS ||
	    efi_bs->HandleProtocol(loaded->DeviceHandle, &device_path_guid,
				   (void **)&device_path) != EFI_SUCCESS) {
		fmt_snprintf(why, n, "the boot volume offers no Block I/O or device path");
		return false;
	}
	if (r.io->Media->BlockSize != FAT_SECTOR) {
		fmt_snprintf(why, n, "the boot volume's blocks are %u bytes, not 512",
			     r.io->Media->BlockSize);
		return false;
	}
	if (!disk_of(device_path, s, &partition_start, why, n) ||
	    fat_map_file(read_volume, &r, r.io->Media->LastBlock + 1, name, &s->map, why, n))
		return false;
	for (uint32_t i = 0; i < s->map.count; i++)
		s->map.extent[i].sector += partition_start;
	return true;
}

void store_locate(EFI_HANDLE image, const char *path, struct boot_store *out)
{
	struct boot_store s = { 0 };
	char why[160];

	*out = (struct boot_store){ 0 };
	if (!(strcmp(path, CFG_STORE_PARTITION) ? locate_file(image, path, &s, why, sizeof(why))
						: locate_partition(&s, why, sizeof(why)))) {
		log_warn("store '%s': %s; running without a store", path, why);
		return;
	}
	s.bytes = s.map.bytes;
	describe(&s, why, sizeof(why));
	log_info("store '%s': %llu KiB in %u piece(s) from sector %llu of %s", path,
		 (unsigned long long)(s.bytes / 1024), s.map.count,
		 (unsigned long long)s.map.extent[0].sector, why);
	*out = s;
}
