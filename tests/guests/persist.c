/*
 * A test guest on a store disk (docs/store.md): it reads sector 0 of its
 * virtio-blk disk, counts this boot in it, writes it back, FLUSHes and
 * reads it again, and says which boot of the disk this is. Two boots of
 * one store (tests/e2e/run.sh) must count 1, then 2: what a VM wrote and
 * flushed survived the host's restart.
 */
#include "guest.h"
#include "virtio_pci.h"

#include <string.h>

#define F_FLUSH (1ULL << 9)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define S_OK 0
#define QSIZE 8
#define MAGIC "VMMBOOTS"
#define UPCALL_VECTOR 0x40
#define WAIT_NAPS 100000

static struct {
	_Alignas(16) struct virtq_desc desc[QSIZE];
	_Alignas(4) volatile uint16_t avail[2 + QSIZE];
	_Alignas(4) volatile uint32_t used[1 + 2 * QSIZE];      /* flags, idx; id, len pairs */
} q;
static _Alignas(16) uint8_t header[16];
static _Alignas(512) uint8_t sector[512];
/* The "bench" run's requests: 16 KiB each, as a file system writes a stream. */
static _Alignas(4096) uint8_t chunk[16 * 1024];
static volatile uint8_t status;
static uint64_t notify;
static uint16_t avail_idx;

static void on_upcall(void)
{
}

/* One request, polled to its end: header, data (unless FLUSH), the status byte. */
static uint8_t request_of(uint32_t type, uint64_t lba, uint8_t *data, uint32_t len)
{
	unsigned n = 0;

	memset(header, 0, sizeof(header));
	memcpy(header, &type, 4);
	memcpy(header + 8, &lba, 8);
	q.desc[n] = (struct virtq_desc){ (uint64_t)(uintptr_t)header, 16, VIRTQ_DESC_F_NEXT, 1 };
	n++;
	if (type != T_FLUSH) {
		q.desc[n] = (struct virtq_desc){ (uint64_t)(uintptr_t)data, len,
			VIRTQ_DESC_F_NEXT | (type == T_IN ? VIRTQ_DESC_F_WRITE : 0), 2 };
		n++;
	}
	q.desc[n] = (struct virtq_desc){ (uint64_t)(uintptr_t)&status, 1, VIRTQ_DESC_F_WRITE, 0 };
	status = 0xee;
	q.avail[2 + avail_idx % QSIZE] = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q.avail[1] = ++avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmio_write16(notify, 0);
	for (unsigned naps = 0; (uint16_t)(q.used[0] >> 16) != avail_idx; naps++) {
		/* The device still owns the buffers: nothing more is sent. */
		if (naps == WAIT_NAPS) {
			check(false, "persist: the disk answers within its wait");
			guest_exit();
		}
		guest_nap(200000);
	}
	/* The used entry before what the device wrote (2.6.14). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (q.used[1 + 2 * ((avail_idx - 1) % QSIZE)] != 0)
		return 0xfe;
	return status;
}

static uint8_t request(uint32_t type, uint64_t lba)
{
	return request_of(type, lba, sector, sizeof(sector));
}

/*
 * The rest of the disk written in 16-KiB requests and flushed, timed on
 * the TSC: the guest's side of store_write_ratio.
 */
static void sequential_writes(const struct vpci_dev *d)
{
	uint64_t sectors = mmio_read32(d->device) | (uint64_t)mmio_read32(d->device + 4) << 32;
	uint64_t first = 8, bytes = 0, t0 = rdtsc();

	for (uint64_t lba = first; lba + sizeof(chunk) / 512 <= sectors; lba += sizeof(chunk) / 512) {
		chunk[0] = (uint8_t)lba;
		if (!check(request_of(T_OUT, lba, chunk, sizeof(chunk)) == S_OK,
			   "persist: a 16-KiB write"))
			return;
		bytes += sizeof(chunk);
	}
	check(request(T_FLUSH, 0) == S_OK, "persist: the stream flushed");
	uint64_t us = (rdtsc() - t0) * 1000000 / tsc_hz();
	put("persist: sequential writes ");
	put_u64(bytes / 1024);
	put(" KiB in ");
	put_u64(us);
	put(" us\n");
}

int main(void)
{
	struct vpci_dev d;
	uint32_t boots = 0;

	set_irq_handler(UPCALL_VECTOR, on_upcall);
	vmcall(HC_SET_UPCALL_VECTOR, UPCALL_VECTOR, 0, 0);
	if (!check(vpci_find(VIRTIO_PCI_BLK, &d), "persist: a virtio-blk disk on PCI") ||
	    !check(vpci_start(&d, VIRTIO_F_VERSION_1 | F_FLUSH) &&
		   vpci_queue(&d, 0, QSIZE, (uint64_t)(uintptr_t)q.desc,
			      (uint64_t)(uintptr_t)q.avail, (uint64_t)(uintptr_t)q.used, &notify) &&
		   vpci_driver_ok(&d), "persist: the disk set up with FLUSH"))
		return 0;
	if (!check(request(T_IN, 0) == S_OK, "persist: sector 0 read"))
		return 0;
	if (!memcmp(sector, MAGIC, 8))
		memcpy(&boots, sector + 8, 4);
	boots++;
	memset(sector, 0, sizeof(sector));
	memcpy(sector, MAGIC, 8);
	memcpy(sector + 8, &boots, 4);
	check(request(T_OUT, 0) == S_OK, "persist: sector 0 written");
	check(request(T_FLUSH, 0) == S_OK, "persist: FLUSH done");
	memset(sector, 0, sizeof(sector));
	check(request(T_IN, 0) == S_OK && !memcmp(sector, MAGIC, 8) && !memcmp(sector + 8, &boots, 4),
	      "persist: sector 0 reads back as written");
	put("persist: boot ");
	put_u64(boots);
	put(" of this disk, counted, flushed\n");
	if (streq(guest_cmdline, "bench"))
		sequential_writes(&d);
	return 0;
}
