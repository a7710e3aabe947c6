/*
 * A namespace of an NVMe controller (NVM Express Base 1.4), polled: the
 * controller is reset and set up with an admin queue pair and one I/O
 * queue pair of the driver's own, and each command runs to its completion
 * before the next. Data goes through a bounce buffer whose pages a fixed
 * PRP list names. Namespaces other than the store's are never read or
 * written. A command that times out leaves the controller dead: it would
 * need a reset that the store cannot safely do under a half-done write.
 */
#include "vmm/storage/block.h"

#include "lib/fmt.h"
#include "x86/cpu.h"

#include <string.h>

/* Controller registers (3.1). */
#define REG_CAP 0x00
#define REG_CC 0x14
#define REG_CSTS 0x1c
#define REG_AQA 0x24
#define REG_ASQ 0x28
#define REG_ACQ 0x30
#define REG_DOORBELLS 0x1000

#define CAP_MQES(cap) ((uint32_t)((cap) & 0xffff))
#define CAP_TO_500MS(cap) ((uint32_t)(((cap) >> 24) & 0xff))
#define CAP_DSTRD(cap) ((uint32_t)(((cap) >> 32) & 0xf))
#define CAP_CSS_NVM(cap) (((cap) >> 37) & 1)
#define CAP_MPSMIN(cap) ((uint32_t)(((cap) >> 48) & 0xf))
#define CC_EN (1u << 0)
#define CC_IOSQES_64 (6u << 16)
#define CC_IOCQES_16 (4u << 20)
#define CSTS_RDY (1u << 0)
#define CSTS_CFS (1u << 1)

#define OP_ADMIN_CREATE_SQ 0x01
#define OP_ADMIN_CREATE_CQ 0x05
#define OP_ADMIN_IDENTIFY 0x06
#define OP_ADMIN_SET_FEATURES 0x09
#define FEATURE_NUMBER_OF_QUEUES 0x07
#define OP_FLUSH 0x00
#define OP_WRITE 0x01
#define OP_READ 0x02
#define IDENTIFY_NAMESPACE 0
#define IDENTIFY_CONTROLLER 1

#define PAGE 4096u
#define QUEUE_ENTRIES 16u
#define BOUNCE_BYTES (64 * 1024)
#define COMMAND_TIMEOUT_MS 30000

struct command {
	uint32_t cdw0;                  /* opcode, command identifier */
	uint32_t nsid;
	uint64_t reserved;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct command) == 64, "NVMe 4.2");

struct completion {
	uint32_t dw0, dw1;
	uint16_t sq_head, sq_id;
	uint16_t cid;
	uint16_t status;                /* bit 0: phase tag; then SC, SCT, CRD, M, DNR */
};
_Static_assert(sizeof(struct completion) == 16, "NVMe 4.6");

struct queue {
	struct command *sq;
	volatile struct completion *cq;
	volatile uint32_t *sq_tail_doorbell, *cq_head_doorbell;
	uint16_t tail, head, cid;
	uint16_t phase;
};

static struct nvme {
	const struct block_dma *dma;
	volatile uint8_t *regs;
	struct queue admin, io_queue;
	uint8_t *bounce;
	uint64_t *prp_list;             /* the bounce buffer's pages after the first */
	uint32_t max_bytes;             /* per command: the bounce buffer, or MDTS if less */
	uint32_t nsid;
	uint64_t sectors;
	struct block_io io;
	bool dead;
	char why[128];
} nvme;

static uint32_t rd32(struct nvme *n, unsigned reg)
{
	return *(volatile uint32_t *)(n->regs + reg);
}

static void wr32(struct nvme *n, unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(n->regs + reg) = v;
}

/* 64-bit registers as two dwords, low first (3.1: the host may access them so). */
static uint64_t rd64(struct nvme *n, unsigned reg)
{
	return rd32(n, reg) | (uint64_t)rd32(n, reg + 4) << 32;
}

static void wr64(struct nvme *n, unsigned reg, uint64_t v)
{
	wr32(n, reg, (uint32_t)v);
	wr32(n, reg + 4, (uint32_t)(v >> 32));
}

/*
 * One command on queue q, waited for: its status (0: success), or -1
 * after a timeout, which leaves the controller dead.
 */
static int run(struct nvme *n, struct queue *q, struct command c, const char *what)
{
	if (n->dead)
		return -1;
	c.cdw0 |= (uint32_t)++q->cid << 16;
	q->sq[q->tail] = c;
	q->tail = (uint16_t)((q->tail + 1) % QUEUE_ENTRIES);
	/* The entry in memory before the doorbell (x86 keeps stores in order). */
	__asm__ volatile("" ::: "memory");
	*q->sq_tail_doorbell = q->tail;

	volatile struct completion *e = &q->cq[q->head];
	uint64_t deadline = block_deadline(n->dma, COMMAND_TIMEOUT_MS);
	while ((e->status & 1) != q->phase) {
		if (block_expired(deadline)) {
			n->dead = true;
			block_failed(n->why, sizeof(n->why), "NVMe: %s timed out (CSTS %08x); the "
				     "controller is dead until the next boot", what,
				     rd32(n, REG_CSTS));
			return -1;
		}
		cpu_relax();
	}
	block_dma_barrier();
	uint16_t status = e->status >> 1;
	if (++q->head == QUEUE_ENTRIES) {
		q->head = 0;
		q->phase ^= 1;
	}
	*q->cq_head_doorbell = q->head;
	if (status)
		block_failed(n->why, sizeof(n->why), "NVMe: %s failed (status type %u, code "
			     "0x%02x)", what, status >> 8 & 7, status & 0xff);
	return status;
}

/* PRP entries for the first len bytes of the bounce buffer (4.3). */
static void set_prps(struct nvme *n, struct command *c, uint32_t len)
{
	c->prp1 = (uint64_t)(uintptr_t)n->bounce;
	if (len > 2 * PAGE)
		c->prp2 = (uint64_t)(uintptr_t)n->prp_list;
	else if (len > PAGE)
		c->prp2 = c->prp1 + PAGE;
}

static bool data_command(void *ctx, bool write, uint64_t lba, uint32_t sectors)
{
	struct nvme *n = ctx;
	struct command c = { .cdw0 = write ? OP_WRITE : OP_READ, .nsid = n->nsid,
			     .cdw10 = (uint32_t)lba, .cdw11 = (uint32_t)(lba >> 32),
			     .cdw12 = sectors - 1 };

	set_prps(n, &c, sectors * BLOCK_SECTOR);
	return run(n, &n->io_queue, c, write ? "a write" : "a read") == 0;
}

static bool disk_flush(void *ctx)
{
	struct nvme *n = ((struct block_io *)ctx)->ctx;

	return run(n, &n->io_queue, (struct command){ .cdw0 = OP_FLUSH, .nsid = n->nsid }, "a flush") ==
	       0;
}

static void queue_init(struct nvme *n, struct queue *q, unsigned id, void *sq, void *cq,
		       uint32_t stride)
{
	*q = (struct queue){ .sq = sq, .cq = cq, .phase = 1 };
	q->sq_tail_doorbell = (volatile uint32_t *)(n->regs + REG_DOORBELLS + (2 * id) * stride);
	q->cq_head_doorbell = (volatile uint32_t *)(n->regs + REG_DOORBELLS +
						    (2 * id + 1) * stride);
}

/* 7.6.1: CC.EN to 0 and CSTS.RDY following it, within CAP.TO. */
static bool controller_set(struct nvme *n, bool enable, uint32_t cc, uint64_t cap)
{
	uint32_t timeout_ms = (CAP_TO_500MS(cap) ? CAP_TO_500MS(cap) : 1) * 500;

	wr32(n, REG_CC, enable ? cc | CC_EN : rd32(n, REG_CC) & ~CC_EN);
	uint64_t deadline = block_deadline(n->dma, timeout_ms);
	while ((rd32(n, REG_CSTS) & CSTS_RDY) != (enable ? CSTS_RDY : 0)) {
		if ((rd32(n, REG_CSTS) & CSTS_CFS) && enable)
			return block_failed(n->why, sizeof(n->why), "NVMe: the controller "
					    "reports a fatal status (CSTS %08x)",
					    rd32(n, REG_CSTS));
		if (block_expired(deadline))
			return block_failed(n->why, sizeof(n->why), "NVMe: the controller did "
					    "not %s in %u ms (CSTS %08x)",
					    enable ? "become ready" : "stop", timeout_ms,
					    rd32(n, REG_CSTS));
		cpu_relax();
	}
	return true;
}

/* The namespace's size and its LBA format, which must be 512-byte sectors. */
static bool identify(struct nvme *n, char *model, size_t model_size)
{
	uint8_t *page = n->bounce;
	struct command c = { .cdw0 = OP_ADMIN_IDENTIFY, .cdw10 = IDENTIFY_CONTROLLER };

	set_prps(n, &c, PAGE);
	if (run(n, &n->admin, c, "Identify Controller"))
		return false;
	/* Figure 251: MN at bytes 24-63, MDTS at 77 (a power of two of the minimum page). */
	block_trim_string((const char *)page + 24, 40, model, model_size);
	uint8_t mdts = page[77];
	if (mdts && mdts < 16 && (PAGE << mdts) < n->max_bytes)
		n->max_bytes = PAGE << mdts;

	c = (struct command){ .cdw0 = OP_ADMIN_IDENTIFY, .nsid = n->nsid,
			      .cdw10 = IDENTIFY_NAMESPACE };
	set_prps(n, &c, PAGE);
	if (run(n, &n->admin, c, "Identify Namespace"))
		return false;
	/* Figure 249: NSZE at 0, FLBAS at 26, the LBA formats from 128 (LBADS in bits 23:16). */
	uint64_t size = 0;
	for (unsigned i = 0; i < 8; i++)
		size |= (uint64_t)page[i] << (8 * i);
	unsigned format = page[26] & 0xf, lbads = page[128 + 4 * format + 2];
	unsigned metadata = page[128 + 4 * format] | page[128 + 4 * format + 1] << 8;
	if (!size)
		return block_failed(n->why, sizeof(n->why), "NVMe: namespace %u is inactive "
				    "(size 0)", n->nsid);
	/* Metadata would go where no PRP or MPTR of this driver points (Figure 245, 8.2). */
	if (metadata)
		return block_failed(n->why, sizeof(n->why), "NVMe: namespace %u is formatted with "
				    "%u bytes of metadata a sector; the store needs none", n->nsid,
				    metadata);
	if (lbads != 9)
		return block_failed(n->why, sizeof(n->why), "NVMe: namespace %u has %u-byte "
				    "sectors; the store needs 512", n->nsid,
				    lbads < 32 ? 1u << lbads : 0);
	n->sectors = size;
	return true;
}

bool nvme_disk_open(const struct boot_store *where, const struct block_dma *dma,
		    struct block_disk *disk, char *why, size_t why_size)
{
	struct nvme *n = &nvme;

	*n = (struct nvme){ .dma = dma, .nsid = where->nvme_namespace, .max_bytes = BOUNCE_BYTES };
	block_pci_enable(where, false, false);
	if (!(n->regs = block_pci_mmio(where, 0, REG_DOORBELLS, dma, why, why_size)))
		return false;
	uint64_t cap = rd64(n, REG_CAP);
	uint32_t stride = 4u << CAP_DSTRD(cap);
	/*
	 * Reset before bus mastering is back: the firmware's queues lie in
	 * memory that is the hypervisor's now. Then the doorbells of queues 0
	 * and 1, wherever the stride puts them.
	 */
	if (!controller_set(n, false, 0, cap)) {
		fmt_snprintf(why, why_size, "%s", n->why);
		return false;
	}
	if (!block_pci_mmio(where, 0, REG_DOORBELLS + 4 * stride, dma, why, why_size))
		return false;
	if (!CAP_CSS_NVM(cap) || CAP_MPSMIN(cap) != 0 || CAP_MQES(cap) + 1 < QUEUE_ENTRIES) {
		fmt_snprintf(why, why_size, "NVMe: the controller does not take the NVM command "
			     "set with 4-KiB pages and %u-entry queues (CAP %016llx)",
			     QUEUE_ENTRIES, (unsigned long long)cap);
		return false;
	}
	block_pci_enable(where, false, true);
	/* Pages: admin SQ and CQ, I/O SQ and CQ, the PRP list, then the bounce buffer. */
	uint8_t *mem = dma->alloc(dma->ctx, 5, false);
	n->bounce = dma->alloc(dma->ctx, BOUNCE_BYTES / PAGE, false);
	if (!mem || !n->bounce) {
		fmt_snprintf(why, why_size, "NVMe: no DMA memory");
		return false;
	}
	n->prp_list = (uint64_t *)(mem + 4 * PAGE);
	for (unsigned i = 1; i < BOUNCE_BYTES / PAGE; i++)
		n->prp_list[i - 1] = (uint64_t)(uintptr_t)n->bounce + i * PAGE;

	queue_init(n, &n->admin, 0, mem, mem + PAGE, stride);
	queue_init(n, &n->io_queue, 1, mem + 2 * PAGE, mem + 3 * PAGE, stride);
	wr32(n, REG_AQA, (QUEUE_ENTRIES - 1) << 16 | (QUEUE_ENTRIES - 1));
	wr64(n, REG_ASQ, (uint64_t)(uintptr_t)n->admin.sq);
	wr64(n, REG_ACQ, (uint64_t)(uintptr_t)n->admin.cq);
	if (!controller_set(n, true, CC_IOSQES_64 | CC_IOCQES_16, cap))
		goto fail;
	/* 7.6.1: one I/O queue pair asked for (0-based counts), then created. */
	struct command c = { .cdw0 = OP_ADMIN_SET_FEATURES, .cdw10 = FEATURE_NUMBER_OF_QUEUES };
	if (run(n, &n->admin, c, "Set Features (Number of Queues)"))
		goto fail;
	/* 5.3 and 5.4: the I/O completion queue first, physically contiguous, no interrupts. */
	c = (struct command){ .cdw0 = OP_ADMIN_CREATE_CQ, .prp1 = (uint64_t)(uintptr_t)n->io_queue.cq,
			     .cdw10 = (QUEUE_ENTRIES - 1) << 16 | 1, .cdw11 = 1 };
	if (run(n, &n->admin, c, "Create I/O Completion Queue"))
		goto fail;
	c = (struct command){ .cdw0 = OP_ADMIN_CREATE_SQ, .prp1 = (uint64_t)(uintptr_t)n->io_queue.sq,
			      .cdw10 = (QUEUE_ENTRIES - 1) << 16 | 1, .cdw11 = 1u << 16 | 1 };
	if (run(n, &n->admin, c, "Create I/O Submission Queue"))
		goto fail;
	*disk = (struct block_disk){ .ctx = &n->io, .logical_per_physical = 1, .why = n->why,
				     .read = block_io_read, .write = block_io_write,
				     .flush = disk_flush };
	if (!identify(n, disk->model, sizeof(disk->model)))
		goto fail;
	disk->sectors = n->sectors;
	n->io = (struct block_io){ n, "NVMe", n->sectors, n->bounce, n->max_bytes / BLOCK_SECTOR,
				   n->why, sizeof(n->why), data_command };
	fmt_snprintf(disk->where, sizeof(disk->where), "namespace %u of NVMe %02x:%02x.%u",
		     n->nsid, where->pci_bus, where->pci_device, where->pci_function);
	return true;
fail:
	fmt_snprintf(why, why_size, "%s", n->why);
	return false;
}
