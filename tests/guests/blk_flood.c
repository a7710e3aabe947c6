/*
 * A hostile virtio-blk driver (issue 19, finding 4): it finds its disk on
 * PCI (configuration mechanism #1, ports 0xcf8/0xcfc), sets queue 0 up as
 * a modern driver would (virtio 1.1 3.1.1, 4.1.4.3) and then fills all 256
 * entries of the available ring with one indirect chain before a single
 * notification, several times over:
 *   - a read of the whole disk in up to 254 data segments, more than a
 *     request may carry (size_max x seg_max): each must be answered IOERR;
 *   - a read of the largest request allowed: each must be answered OK.
 * Before the device bounded its work, one such notification copied up to
 * 256 x the disk in one exit. Now the notification must return with most
 * of the ring still waiting, and the rest must complete in later
 * scheduler passes: the guest HLTs on its paravirtual timer between looks
 * at used->idx, which gives the hypervisor those passes.
 */
#include "guest.h"
#include "virtio_pci.h"

#define F_INDIRECT (1ULL << 28)
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12

#define QSIZE 256
#define BLK_T_IN 0
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define ROUNDS 3
#define UPCALL_VECTOR 0x40

/* Guest memory of the queue: rings, one indirect table, header, status, data. */
#define RING_BASE 0x200000ULL
#define DESC_TABLE (RING_BASE)
#define AVAIL_RING (RING_BASE + 16 * QSIZE)
#define USED_RING (RING_BASE + 0x2000)
#define INDIRECT (RING_BASE + 0x5000)
#define HEADER (RING_BASE + 0x6000)
#define STATUS_BYTE (RING_BASE + 0x6100)
#define DATA (RING_BASE + 0x10000)

static volatile uint16_t *const avail = (volatile uint16_t *)AVAIL_RING;
static volatile uint16_t *const used = (volatile uint16_t *)USED_RING;
static volatile uint8_t *const status_byte = (volatile uint8_t *)STATUS_BYTE;

struct blk {
	struct vpci_dev dev;
	uint64_t notify;
	uint16_t avail_idx;
};

static void on_upcall(void)
{
}

static bool setup(struct blk *b)
{
	return vpci_start(&b->dev, F_INDIRECT | VIRTIO_F_VERSION_1) &&
	       vpci_queue(&b->dev, 0, QSIZE, DESC_TABLE, AVAIL_RING, USED_RING, &b->notify) &&
	       vpci_driver_ok(&b->dev);
}

/*
 * The indirect table: the header, `segments` data segments of seg bytes
 * each (all over the same buffer), the status byte.
 */
static void build_chain(unsigned segments, uint32_t seg)
{
	volatile struct virtq_desc *t = (volatile struct virtq_desc *)INDIRECT;
	volatile uint32_t *hdr = (volatile uint32_t *)HEADER;
	volatile struct virtq_desc *d = (volatile struct virtq_desc *)DESC_TABLE;

	hdr[0] = BLK_T_IN;
	hdr[1] = 0;
	hdr[2] = hdr[3] = 0;            /* sector 0 */
	t[0] = (struct virtq_desc){ HEADER, 16, VIRTQ_DESC_F_NEXT, 1 };
	for (unsigned i = 1; i <= segments; i++)
		t[i] = (struct virtq_desc){ DATA, seg, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1) };
	t[segments + 1] = (struct virtq_desc){ STATUS_BYTE, 1, VIRTQ_DESC_F_WRITE, 0 };
	d[0] = (struct virtq_desc){ INDIRECT, 16 * (segments + 2), VIRTQ_DESC_F_INDIRECT, 0 };
}

/*
 * Posts the chain in every ring entry and notifies once. Returns how many
 * the device had served when the notification returned; waits (one
 * scheduler pass per HLT) until all are. *passes: the HLTs it took.
 */
static unsigned flood(struct blk *b, unsigned *passes)
{
	uint16_t start = used[1];

	/* Polled: no interrupts, the PIC and I/O APIC stay untouched. */
	avail[0] = 1;           /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	for (unsigned i = 0; i < QSIZE; i++)
		avail[2 + i] = 0;
	b->avail_idx = (uint16_t)(b->avail_idx + QSIZE);
	__asm__ volatile("" : : : "memory");
	avail[1] = b->avail_idx;
	*status_byte = 0xee;
	mmio_write16(b->notify, 0);
	unsigned at_return = (uint16_t)(used[1] - start);
	for (*passes = 0; used[1] != b->avail_idx && *passes < 100000; ++*passes)
		guest_nap(20000);
	return at_return;
}

static void round_of(struct blk *b, const char *what, uint8_t expect)
{
	unsigned passes, at_return = flood(b, &passes);

	put("blk-flood: ");
	put(what);
	put(": ");
	put_u64(at_return);
	put(" of 256 served by the notification, the rest in ");
	put_u64(passes);
	put(" pass(es)\n");
	check(at_return < QSIZE, "blk-flood: one notification leaves the ring's rest pending");
	check(used[1] == b->avail_idx, "blk-flood: later passes complete every request");
	check(*status_byte == expect, "blk-flood: the requests have the expected status");
}

int main(void)
{
	struct blk b = { 0 };

	set_irq_handler(UPCALL_VECTOR, on_upcall);
	vmcall(HC_SET_UPCALL_VECTOR, UPCALL_VECTOR, 0, 0);
	if (!check(vpci_find(VIRTIO_PCI_BLK, &b.dev), "blk-flood: virtio-blk found on PCI") ||
	    !check(setup(&b), "blk-flood: queue 0 set up, DRIVER_OK"))
		return 0;
	uint64_t disk = (uint64_t)mmio_read32(b.dev.device + CFG_CAPACITY) * 512;
	uint32_t size_max = mmio_read32(b.dev.device + CFG_SIZE_MAX);
	uint32_t seg_max = mmio_read32(b.dev.device + CFG_SEG_MAX);
	uint64_t largest = (uint64_t)size_max * seg_max;
	/* The whole disk (as far as whole sectors per segment go) in up to 254 segments. */
	unsigned segments = disk / 512 < 254 ? (unsigned)(disk / 512) : 254;
	uint32_t seg = segments ? (uint32_t)(disk / segments / 512 * 512) : 0;
	if (!check((uint64_t)segments * seg > largest && DATA + seg <= guest_ram_bytes,
		   "blk-flood: a disk larger than the largest request, RAM for a segment"))
		return 0;

	/* More than a request may move: answered IOERR, nothing copied. */
	build_chain(segments, seg);
	for (unsigned r = 0; r < ROUNDS; r++)
		round_of(&b, "whole-disk reads", BLK_S_IOERR);
	if (!check(largest && seg_max <= 254 && DATA + size_max <= guest_ram_bytes,
		   "blk-flood: the device bounds a request by size_max and seg_max"))
		return 0;
	/* The largest request: seg_max segments of size_max. */
	build_chain(seg_max, size_max);
	for (unsigned r = 0; r < ROUNDS; r++)
		round_of(&b, "largest reads", BLK_S_OK);
	return 0;
}
