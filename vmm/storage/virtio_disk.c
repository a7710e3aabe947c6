/*
 * A virtio-blk PCI device through its legacy interface (virtio 1.2, 4.1.4.8
 * and 2.7: the I/O BAR's registers, a split virtqueue at a page frame the
 * driver writes), polled: the disk of QEMU/KVM guests, where a nested
 * hypervisor finds its boot disk. One request at a time in descriptors
 * 0-2, data through a bounce buffer. The device is reset and set up anew;
 * FLUSH is used when offered (without it the device writes through, 5.2.6.2).
 * A request that does not complete in time leaves the disk dead.
 */
#include "vmm/storage/block.h"

#include "lib/fmt.h"
#include "x86/cpu.h"
#include "x86/pci.h"

#include <string.h>

/* Legacy registers (4.1.4.8), from the I/O BAR. */
#define REG_HOST_FEATURES 0x00
#define REG_GUEST_FEATURES 0x04
#define REG_QUEUE_PFN 0x08
#define REG_QUEUE_NUM 0x0c
#define REG_QUEUE_SEL 0x0e
#define REG_QUEUE_NOTIFY 0x10
#define REG_STATUS 0x12
#define REG_CONFIG 0x14                 /* with MSI-X off: it is turned off below */

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FAILED 0x80

#define F_RO (1u << 5)
#define F_FLUSH (1u << 9)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define ID_BYTES 20

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1

#define PCI_CAP_MSIX 0x11
#define MSIX_ENABLE (1u << 31)          /* Message Control bit 15, in the capability's dword */

#define PAGE 4096u
#define BOUNCE_BYTES (64 * 1024)
#define REQUEST_TIMEOUT_MS 30000

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
_Static_assert(sizeof(struct desc) == 16, "virtio 2.7.5");

struct request_header {
	uint32_t type, reserved;
	uint64_t sector;
};
_Static_assert(sizeof(struct request_header) == 16, "virtio 5.2.6");

static struct virtio_disk {
	const struct block_dma *dma;
	uint16_t port;                  /* the I/O BAR */
	uint16_t size;                  /* the queue's entries, fixed by the device */
	struct desc *desc;
	volatile uint16_t *avail;       /* flags, idx, ring[size] */
	volatile uint16_t *used;        /* flags, idx, then {id, len} pairs */
	uint16_t avail_idx, used_idx;
	struct request_header *header;
	volatile uint8_t *status;
	uint8_t *bounce;
	uint64_t sectors;
	struct block_io io;
	bool flush, dead;
	char why[128];
} vdisk;

/*
 * One request: the header, len bytes of the bounce buffer (in: the device
 * writes them), the status byte. Waits for the used ring to move.
 */
static bool request(struct virtio_disk *v, uint32_t type, uint64_t sector, uint32_t len,
		    const char *what)
{
	if (v->dead)
		return false;
	*v->header = (struct request_header){ .type = type, .sector = sector };
	*v->status = 0xff;
	/* Header, data (none for a flush), status: descriptors 0, 1, 2. */
	v->desc[0] = (struct desc){ (uint64_t)(uintptr_t)v->header, sizeof(*v->header),
				    DESC_F_NEXT, len ? 1 : 2 };
	v->desc[1] = (struct desc){ (uint64_t)(uintptr_t)v->bounce, len,
				    (uint16_t)(DESC_F_NEXT | (type == T_OUT ? 0 : DESC_F_WRITE)), 2 };
	v->desc[2] = (struct desc){ (uint64_t)(uintptr_t)v->status, 1, DESC_F_WRITE, 0 };
	v->avail[2 + v->avail_idx % v->size] = 0;
	/* The descriptors and ring entry before the index, the index before the notify (2.7.13). */
	__asm__ volatile("" ::: "memory");
	v->avail[1] = ++v->avail_idx;
	__asm__ volatile("mfence" ::: "memory");
	outw((uint16_t)(v->port + REG_QUEUE_NOTIFY), 0);

	uint64_t deadline = block_deadline(v->dma, REQUEST_TIMEOUT_MS);
	while (v->used[1] == v->used_idx) {
		if (block_expired(deadline)) {
			v->dead = true;
			return block_failed(v->why, sizeof(v->why), "virtio-blk: %s timed out; "
					    "the disk is dead until the next boot", what);
		}
		cpu_relax();
	}
	block_dma_barrier();
	v->used_idx++;
	if (*v->status)
		return block_failed(v->why, sizeof(v->why), "virtio-blk: %s failed (status %u: "
				    "%s)", what, *v->status,
				    *v->status == 1 ? "I/O error" : "unsupported");
	return true;
}

static bool data_command(void *ctx, bool write, uint64_t lba, uint32_t sectors)
{
	return request(ctx, write ? T_OUT : T_IN, lba, sectors * BLOCK_SECTOR,
		       write ? "a write" : "a read");
}

static bool disk_flush(void *ctx)
{
	struct virtio_disk *v = ((struct block_io *)ctx)->ctx;

	return !v->flush || request(v, T_FLUSH, 0, 0, "a flush");
}

/* With MSI-X on, the legacy device configuration moves by 4 bytes (4.1.4.8): off it goes. */
static void msix_off(struct pci_address a)
{
	if (!(pci_read32(a, PCI_COMMAND) & PCI_STATUS_CAPABILITIES))
		return;
	for (unsigned at = pci_read32(a, PCI_CAPABILITIES) & 0xfc, n = 0; at && n < 48; n++) {
		uint32_t cap = pci_read32(a, at);
		if ((cap & 0xff) == PCI_CAP_MSIX && (cap & MSIX_ENABLE))
			pci_write32(a, at, cap & ~MSIX_ENABLE);
		at = cap >> 8 & 0xfc;
	}
}

/* 2.7.2: the legacy split queue's layout, the used ring on the next 4-KiB boundary. */
static uint64_t queue_bytes(uint16_t size)
{
	uint64_t head = 16u * size + 2u * (3u + size);

	return ((head + PAGE - 1) & ~(uint64_t)(PAGE - 1)) + 2u * 3u + 8u * size;
}

bool virtio_disk_open(const struct boot_store *where, const struct block_dma *dma,
		      struct block_disk *disk, char *why, size_t why_size)
{
	struct virtio_disk *v = &vdisk;
	struct pci_address a = { where->pci_bus, where->pci_device, where->pci_function };
	uint32_t bar0 = pci_read32(a, PCI_BAR0);

	*v = (struct virtio_disk){ .dma = dma };
	if (!(bar0 & 1)) {
		fmt_snprintf(why, why_size, "virtio-blk: the device has no legacy I/O BAR (a "
			     "modern-only device): no driver for it yet");
		return false;
	}
	v->port = (uint16_t)(bar0 & ~3u);
	/* Bus mastering off until the reset: the firmware's rings lie in the hypervisor's memory. */
	block_pci_enable(where, true, false);
	msix_off(a);
	/* 3.1.1: reset, acknowledge, driver; the features; the queue; DRIVER_OK. */
	outb((uint16_t)(v->port + REG_STATUS), 0);
	uint64_t deadline = block_deadline(dma, 1000);
	while (inb((uint16_t)(v->port + REG_STATUS)) && !block_expired(deadline))
		cpu_relax();
	block_pci_enable(where, true, true);
	outb((uint16_t)(v->port + REG_STATUS), STATUS_ACKNOWLEDGE);
	outb((uint16_t)(v->port + REG_STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER);
	uint32_t features = inl((uint16_t)(v->port + REG_HOST_FEATURES));
	if (features & F_RO) {
		outb((uint16_t)(v->port + REG_STATUS), STATUS_FAILED);
		fmt_snprintf(why, why_size, "virtio-blk: the disk is read-only");
		return false;
	}
	v->flush = features & F_FLUSH;
	outl((uint16_t)(v->port + REG_GUEST_FEATURES), features & F_FLUSH);
	outw((uint16_t)(v->port + REG_QUEUE_SEL), 0);
	v->size = inw((uint16_t)(v->port + REG_QUEUE_NUM));
	if (!v->size || v->size > 32768) {
		fmt_snprintf(why, why_size, "virtio-blk: the device offers no usable queue (%u "
			     "entries)", v->size);
		return false;
	}
	uint8_t *ring = dma->alloc(dma->ctx, (queue_bytes(v->size) + PAGE - 1) / PAGE, false);
	uint8_t *small = dma->alloc(dma->ctx, 1, false);
	v->bounce = dma->alloc(dma->ctx, BOUNCE_BYTES / PAGE, false);
	/* The legacy queue address is a 32-bit page frame number. */
	if (!ring || !small || !v->bounce || (uint64_t)(uintptr_t)ring >> 44) {
		fmt_snprintf(why, why_size, "virtio-blk: no DMA memory for its queue");
		return false;
	}
	v->desc = (struct desc *)ring;
	v->avail = (volatile uint16_t *)(ring + 16u * v->size);
	v->used = (volatile uint16_t *)(ring + queue_bytes(v->size) - (2u * 3u + 8u * v->size));
	v->avail[0] = AVAIL_F_NO_INTERRUPT;
	v->header = (struct request_header *)small;
	v->status = small + sizeof(struct request_header);
	outl((uint16_t)(v->port + REG_QUEUE_PFN), (uint32_t)((uint64_t)(uintptr_t)ring / PAGE));
	outb((uint16_t)(v->port + REG_STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);

	/* 5.2.4: capacity in 512-byte sectors, whatever the block size. */
	v->sectors = inl((uint16_t)(v->port + REG_CONFIG)) |
		     (uint64_t)inl((uint16_t)(v->port + REG_CONFIG + 4)) << 32;
	v->io = (struct block_io){ v, "virtio-blk", v->sectors, v->bounce,
				   BOUNCE_BYTES / BLOCK_SECTOR, v->why, sizeof(v->why), data_command };
	*disk = (struct block_disk){ .ctx = &v->io, .sectors = v->sectors,
				     .logical_per_physical = 1, .why = v->why, .read = block_io_read,
				     .write = block_io_write, .flush = disk_flush };
	/* Its serial (GET_ID, 5.2.6.4), where the device answers it. */
	memset(v->bounce, 0, ID_BYTES);
	char serial[ID_BYTES + 1] = "";
	if (request(v, T_GET_ID, 0, ID_BYTES, "GET_ID"))
		block_trim_string((const char *)v->bounce, ID_BYTES, serial, sizeof(serial));
	else
		v->why[0] = '\0';
	fmt_snprintf(disk->model, sizeof(disk->model), "virtio-blk%s%s", serial[0] ? " " : "",
		     serial);
	fmt_snprintf(disk->where, sizeof(disk->where), "virtio-blk %02x:%02x.%u%s",
		     where->pci_bus, where->pci_device, where->pci_function,
		     v->flush ? "" : " (no FLUSH: writes through)");
	return !v->dead;
}
