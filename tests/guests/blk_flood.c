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

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc
#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_BLK_DEVICE 0x1042
#define PCI_STATUS_CAPS 0x10
#define PCI_CAP_VNDR 0x09

/* virtio_pci_cap cfg_type (4.1.4) and the common configuration (4.1.4.3). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_DEVICE 4
#define DFSELECT 0x00
#define GFSELECT 0x08
#define GF 0x0c
#define STATUS 0x14
#define Q_SELECT 0x16
#define Q_SIZE 0x18
#define Q_ENABLE 0x1c
#define Q_NOFF 0x1e
#define Q_DESC 0x20
#define Q_AVAIL 0x28
#define Q_USED 0x30

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_INDIRECT (1u << 28)   /* bit 28 */
#define F_VERSION_1 1u          /* bit 32: bit 0 of the high half */
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12

#define QSIZE 256
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_INDIRECT 4
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

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static uint32_t pci_read(unsigned dev, unsigned off)
{
	outl(PCI_ADDR, 0x80000000u | dev << 11 | (off & 0xfc));
	return inl(PCI_DATA);
}

/* MMIO through the emulator: plain MOVs, one access each. */
static void mmio_write8(uint64_t a, uint8_t v)
{
	__asm__ volatile("movb %1, (%0)" : : "r"(a), "q"(v) : "memory");
}

static void mmio_write16(uint64_t a, uint16_t v)
{
	__asm__ volatile("movw %1, (%0)" : : "r"(a), "r"(v) : "memory");
}

static void mmio_write32(uint64_t a, uint32_t v)
{
	__asm__ volatile("movl %1, (%0)" : : "r"(a), "r"(v) : "memory");
}

static uint16_t mmio_read16(uint64_t a)
{
	uint16_t v;
	__asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static uint32_t mmio_read32(uint64_t a)
{
	uint32_t v;
	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static uint8_t mmio_read8(uint64_t a)
{
	uint8_t v;
	__asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory");
	return v;
}

static void mmio_write64(uint64_t a, uint64_t v)
{
	mmio_write32(a, (uint32_t)v);
	mmio_write32(a + 4, (uint32_t)(v >> 32));
}

static volatile uint16_t *const avail = (volatile uint16_t *)AVAIL_RING;
static volatile uint16_t *const used = (volatile uint16_t *)USED_RING;
static volatile uint8_t *const status_byte = (volatile uint8_t *)STATUS_BYTE;

/* The device: its BAR and where its structures are. */
struct blk {
	uint64_t common, notify, device;
	uint16_t avail_idx;
};

static void on_upcall(void)
{
}

/* One HLT: the hypervisor runs a scheduler pass, the timer wakes us. */
static void one_pass(void)
{
	vmcall(HC_SET_TIMER, rdtsc() + 20000, 0, 0);
	__asm__ volatile("sti; hlt; cli");
}

static bool find(struct blk *b)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		uint32_t id = pci_read(dev, 0);
		if ((id & 0xffff) != VIRTIO_VENDOR || id >> 16 != VIRTIO_BLK_DEVICE)
			continue;
		uint64_t bar = (pci_read(dev, 0x10) & ~0xfu) | (uint64_t)pci_read(dev, 0x14) << 32;
		if (!(pci_read(dev, 0x04) >> 16 & PCI_STATUS_CAPS))
			return false;
		uint32_t notify_mult = 0, notify_off = 0;
		for (unsigned cap = pci_read(dev, 0x34) & 0xfc; cap; cap = pci_read(dev, cap) >> 8 & 0xfc) {
			uint32_t head = pci_read(dev, cap);
			if ((head & 0xff) != PCI_CAP_VNDR)
				continue;
			uint32_t offset = pci_read(dev, cap + 8);
			switch (head >> 24) {
			case CAP_COMMON:
				b->common = bar + offset;
				break;
			case CAP_NOTIFY:
				notify_off = offset;
				notify_mult = pci_read(dev, cap + 16);
				break;
			case CAP_DEVICE:
				b->device = bar + offset;
				break;
			}
		}
		b->notify = bar + notify_off;
		/* Queue 0's slot: queue_notify_off times the multiplier (4.1.4.4). */
		mmio_write16(b->common + Q_SELECT, 0);
		b->notify += (uint64_t)mmio_read16(b->common + Q_NOFF) * notify_mult;
		return b->common && b->device;
	}
	return false;
}

static bool setup(struct blk *b)
{
	mmio_write8(b->common + STATUS, 0);
	mmio_write8(b->common + STATUS, S_ACK | S_DRIVER);
	mmio_write32(b->common + GFSELECT, 0);
	mmio_write32(b->common + GF, F_INDIRECT);
	mmio_write32(b->common + GFSELECT, 1);
	mmio_write32(b->common + GF, F_VERSION_1);
	mmio_write8(b->common + STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(mmio_read8(b->common + STATUS) & S_FEATURES_OK))
		return false;
	mmio_write16(b->common + Q_SELECT, 0);
	mmio_write16(b->common + Q_SIZE, QSIZE);
	mmio_write64(b->common + Q_DESC, DESC_TABLE);
	mmio_write64(b->common + Q_AVAIL, AVAIL_RING);
	mmio_write64(b->common + Q_USED, USED_RING);
	mmio_write16(b->common + Q_ENABLE, 1);
	mmio_write8(b->common + STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return mmio_read8(b->common + STATUS) & S_DRIVER_OK;
}

/*
 * The indirect table: the header, `segments` data segments of seg bytes
 * each (all over the same buffer), the status byte.
 */
static void build_chain(unsigned segments, uint32_t seg)
{
	volatile struct desc *t = (volatile struct desc *)INDIRECT;
	volatile uint32_t *hdr = (volatile uint32_t *)HEADER;
	volatile struct desc *d = (volatile struct desc *)DESC_TABLE;

	hdr[0] = BLK_T_IN;
	hdr[1] = 0;
	hdr[2] = hdr[3] = 0;            /* sector 0 */
	t[0] = (struct desc){ HEADER, 16, DESC_F_NEXT, 1 };
	for (unsigned i = 1; i <= segments; i++)
		t[i] = (struct desc){ DATA, seg, DESC_F_WRITE | DESC_F_NEXT, (uint16_t)(i + 1) };
	t[segments + 1] = (struct desc){ STATUS_BYTE, 1, DESC_F_WRITE, 0 };
	d[0] = (struct desc){ INDIRECT, 16 * (segments + 2), DESC_F_INDIRECT, 0 };
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
		one_pass();
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
	if (!check(find(&b), "blk-flood: virtio-blk found on PCI") ||
	    !check(setup(&b), "blk-flood: queue 0 set up, DRIVER_OK"))
		return 0;
	uint64_t disk = (uint64_t)mmio_read32(b.device + CFG_CAPACITY) * 512;
	uint32_t size_max = mmio_read32(b.device + CFG_SIZE_MAX);
	uint32_t seg_max = mmio_read32(b.device + CFG_SEG_MAX);
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
