#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtio_pci.h"

#define BAR_ADDRESS 0xfe000000ull
#define LINE 11
#define RAM_SIZE 0x100000
#define MSI_ADDRESS 0xfee00000u

/* Common configuration offsets as the Linux driver names them (virtio 1.1 4.1.4.3). */
#define DFSELECT 0x00
#define DF 0x04
#define GFSELECT 0x08
#define GF 0x0c
#define MSIX_CONFIG 0x10
#define NUM_QUEUES 0x12
#define STATUS 0x14
#define GENERATION 0x15
#define Q_SELECT 0x16
#define Q_SIZE 0x18
#define Q_MSIX 0x1a
#define Q_ENABLE 0x1c
#define Q_NOTIFY_OFF 0x1e
#define Q_DESC 0x20
#define Q_DRIVER 0x28
#define Q_DEVICE 0x30

#define OFFERED (1ull << VIRTIO_F_VERSION_1 | 1ull << 6 | 1ull << 9)

/* A tiny device model: 8 bytes of configuration, counts what the transport calls. */
static struct fake {
	struct virtio_device dev;
	uint8_t config[8];
	unsigned notified[VIRTIO_MAX_QUEUES];
	unsigned resets;
	unsigned config_calls;
} fake;

static struct {
	unsigned count;
	uint64_t address;
	uint32_t data;
	bool intx;
	unsigned intx_changes;
} irq_seen;

static uint8_t ram[RAM_SIZE];
static struct pci_bus bus;
static struct virtio_pci vp;

static uint32_t fake_config_read(struct virtio_device *dev, uint32_t offset, unsigned size)
{
	struct fake *f = dev->ctx;
	uint32_t value = 0;

	assert_true(offset + size <= sizeof(f->config));
	f->config_calls++;
	memcpy(&value, &f->config[offset], size);
	return value;
}

static void fake_config_write(struct virtio_device *dev, uint32_t offset, unsigned size,
			      uint32_t value)
{
	struct fake *f = dev->ctx;

	assert_true(offset + size <= sizeof(f->config));
	f->config_calls++;
	memcpy(&f->config[offset], &value, size);
}

static void fake_notify(struct virtio_device *dev, unsigned queue)
{
	struct fake *f = dev->ctx;

	assert_true(queue < dev->num_queues);
	assert_true(dev->queues[queue].enabled);
	f->notified[queue]++;
}

static void fake_reset(struct virtio_device *dev)
{
	((struct fake *)dev->ctx)->resets++;
}

static const struct virtio_device_ops fake_ops = {
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.queue_notify = fake_notify,
	.reset = fake_reset,
};

static void msi(void *ctx, uint64_t address, uint32_t data)
{
	assert_ptr_equal(ctx, &irq_seen);
	irq_seen.count++;
	irq_seen.address = address;
	irq_seen.data = data;
}

static void intx(void *ctx, bool level)
{
	assert_ptr_equal(ctx, &irq_seen);
	irq_seen.intx = level;
	irq_seen.intx_changes++;
}

static const struct virtio_pci_irq irq = { .msi = msi, .intx = intx, .ctx = &irq_seen };

static void fake_init(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.dev = (struct virtio_device){
		.device_id = VIRTIO_ID_BLOCK,
		.device_features = OFFERED,
		.num_queues = 2,
		.queue_max_size = 256,
		.config_size = sizeof(fake.config),
		.ops = &fake_ops,
		.ctx = &fake,
		.mem = { ram, sizeof(ram) },
	};
	memcpy(fake.config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
}

/* Configuration space through mechanism #1; the virtio function is device 1. */
static uint32_t cfg_read(unsigned reg, unsigned size)
{
	pci_port_write(&bus, 0, 4, 0x80000800u | (reg & 0xfc));
	return pci_port_read(&bus, (uint16_t)(4 + (reg & 3)), size);
}

static void cfg_write(unsigned reg, unsigned size, uint32_t value)
{
	pci_port_write(&bus, 0, 4, 0x80000800u | (reg & 0xfc));
	pci_port_write(&bus, (uint16_t)(4 + (reg & 3)), size, value);
}

/* The hypervisor's EPT-violation path. */
static uint64_t mmio_read(uint64_t offset, unsigned size)
{
	struct pci_function *fn;
	unsigned bar;
	uint64_t rel;

	assert_true(pci_mmio_find(&bus, BAR_ADDRESS + offset, &fn, &bar, &rel));
	return fn->ops->bar_read(fn->ctx, bar, rel, size);
}

static void mmio_write(uint64_t offset, unsigned size, uint64_t value)
{
	struct pci_function *fn;
	unsigned bar;
	uint64_t rel;

	assert_true(pci_mmio_find(&bus, BAR_ADDRESS + offset, &fn, &bar, &rel));
	fn->ops->bar_write(fn->ctx, bar, rel, size, value);
}

static uint32_t common_read(unsigned off, unsigned size)
{
	return (uint32_t)mmio_read(VIRTIO_PCI_COMMON_OFFSET + off, size);
}

static void common_write(unsigned off, unsigned size, uint32_t value)
{
	mmio_write(VIRTIO_PCI_COMMON_OFFSET + off, size, value);
}

/* What firmware would do: place the BAR and turn on decoding. */
static int setup(void **state)
{
	(void)state;
	memset(&irq_seen, 0, sizeof(irq_seen));
	fake_init();
	pci_init(&bus);
	if (virtio_pci_init(&vp, &bus, &fake.dev, LINE, &irq))
		return -1;
	cfg_write(PCI_BAR0, 4, (uint32_t)BAR_ADDRESS);
	cfg_write(PCI_BAR0 + 4, 4, (uint32_t)(BAR_ADDRESS >> 32));
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	return 0;
}

/* Linux's virtio_dev_probe up to FEATURES_OK; returns the status read back. */
static uint8_t negotiate(uint64_t features)
{
	common_write(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	common_write(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	common_write(GFSELECT, 4, 0);
	common_write(GF, 4, (uint32_t)features);
	common_write(GFSELECT, 4, 1);
	common_write(GF, 4, (uint32_t)(features >> 32));
	common_write(STATUS, 1,
		     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return (uint8_t)common_read(STATUS, 1);
}

/* Rings for queue q inside RAM, each part aligned as 2.6 asks. */
static void setup_queue(unsigned q, uint16_t size)
{
	uint64_t base = 0x10000 + q * 0x4000ull;

	common_write(Q_SELECT, 2, q);
	common_write(Q_SIZE, 2, size);
	common_write(Q_DESC, 4, (uint32_t)base);
	common_write(Q_DESC + 4, 4, 0);
	common_write(Q_DRIVER, 4, (uint32_t)(base + 0x1000));
	common_write(Q_DRIVER + 4, 4, 0);
	common_write(Q_DEVICE, 4, (uint32_t)(base + 0x2000));
	common_write(Q_DEVICE + 4, 4, 0);
	common_write(Q_ENABLE, 2, 1);
}

/* A driver that got all the way to DRIVER_OK with both queues live. */
static void bring_up(void)
{
	assert_true(negotiate(OFFERED) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(0, 128);
	setup_queue(1, 256);
	common_write(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_device_ready(&fake.dev));
}

static void test_identity(void **state)
{
	(void)state;
	assert_int_equal(cfg_read(PCI_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(cfg_read(PCI_REVISION_ID, 4), 0x01800001);
	assert_int_equal(cfg_read(PCI_SUBSYSTEM_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(cfg_read(PCI_INTERRUPT_LINE, 2), 0x0100 | LINE);
	assert_int_equal(cfg_read(PCI_HEADER_TYPE, 1), 0);
	/* 64-bit, not prefetchable, 16 KiB. */
	cfg_write(PCI_BAR0, 4, 0xffffffff);
	assert_int_equal(cfg_read(PCI_BAR0, 4), 0xffffc004);
	assert_ptr_equal(fake.dev.interrupt_ctx, &vp);
	assert_int_equal(fake.dev.config_msix_vector, VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(fake.dev.queues[1].size, 256);
}

/* Linux's virtio_pci_find_capability() and vp_modern_probe(). */
static unsigned find_virtio_cap(uint8_t cfg_type)
{
	unsigned pos = cfg_read(PCI_CAPABILITY_LIST, 1);
	for (unsigned ttl = 48; ttl && pos >= 0x40; ttl--) {
		uint32_t header = cfg_read(pos, 2);
		if ((uint8_t)header == PCI_CAP_ID_VNDR && cfg_read(pos + 3, 1) == cfg_type)
			return pos;
		pos = (header >> 8) & ~3u;
	}
	return 0;
}

static void test_capabilities(void **state)
{
	(void)state;
	static const struct {
		uint8_t type;
		uint8_t cap_len;
		uint32_t offset, length;
	} expect[] = {
		{ 1, 16, VIRTIO_PCI_COMMON_OFFSET, 0x38 },
		{ 2, 20, VIRTIO_PCI_NOTIFY_OFFSET, 2 * VIRTIO_PCI_NOTIFY_MULTIPLIER },
		{ 3, 16, VIRTIO_PCI_ISR_OFFSET, 1 },
		{ 4, 16, VIRTIO_PCI_DEVICE_OFFSET, 8 },
		{ 5, 20, 0, 0 },
	};

	assert_true(cfg_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (unsigned i = 0; i < 5; i++) {
		unsigned cap = find_virtio_cap(expect[i].type);
		assert_int_not_equal(cap, 0);
		assert_int_equal(cap % 4, 0);
		assert_int_equal(cfg_read(cap + 2, 1), expect[i].cap_len);
		assert_int_equal(cfg_read(cap + 4, 1), VIRTIO_PCI_BAR);
		assert_int_equal(cfg_read(cap + 8, 4), expect[i].offset);
		assert_int_equal(cfg_read(cap + 12, 4), expect[i].length);
		/* The structure lies inside the BAR. */
		assert_true(expect[i].offset + expect[i].length <= VIRTIO_PCI_BAR_SIZE);
	}
	assert_int_equal(cfg_read(find_virtio_cap(2) + 16, 4), VIRTIO_PCI_NOTIFY_MULTIPLIER);
	/* MSI-X: num_queues + 1 vectors, table and PBA in BAR 0. */
	unsigned msix = vp.msix_cap;
	assert_int_equal(cfg_read(msix, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cfg_read(msix + 2, 2), 2);
	assert_int_equal(cfg_read(msix + 4, 4), VIRTIO_PCI_MSIX_TABLE_OFFSET);
	assert_int_equal(cfg_read(msix + 8, 4), VIRTIO_PCI_MSIX_PBA_OFFSET);
	/* Read-only fields stay put. */
	cfg_write(find_virtio_cap(1) + 8, 4, 0x100);
	assert_int_equal(cfg_read(find_virtio_cap(1) + 8, 4), 0);
	cfg_write(msix + 2, 2, 0xffff);
	assert_int_equal(cfg_read(msix + 2, 2), 0xc002);
}

static void test_feature_negotiation(void **state)
{
	(void)state;
	common_write(DFSELECT, 4, 0);
	assert_int_equal(common_read(DF, 4), (uint32_t)OFFERED);
	common_write(DFSELECT, 4, 1);
	assert_int_equal(common_read(DF, 4), OFFERED >> 32);
	common_write(DFSELECT, 4, 2);
	assert_int_equal(common_read(DF, 4), 0);
	assert_int_equal(common_read(DFSELECT, 4), 2);

	uint64_t subset = 1ull << VIRTIO_F_VERSION_1 | 1ull << 9;
	uint8_t status = negotiate(subset);
	assert_true(status & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(fake.dev.driver_features, subset);
	common_write(GFSELECT, 4, 0);
	assert_int_equal(common_read(GF, 4), 1u << 9);
	/* Frozen once accepted. */
	common_write(GF, 4, 1u << 6);
	assert_int_equal(fake.dev.driver_features, subset);
	/* Writes add bits: clearing without a reset does not happen. */
	common_write(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(common_read(STATUS, 1), status);
	/* The driver cannot claim NEEDS_RESET. */
	common_write(STATUS, 1, status | VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(common_read(STATUS, 1), status);
}

static void test_feature_negotiation_refused(void **state)
{
	(void)state;
	/* A feature never offered. */
	assert_false(negotiate(OFFERED | 1ull << 0) & VIRTIO_STATUS_FEATURES_OK);
	/* A driver that can still change its mind gets another try. */
	assert_true(negotiate(OFFERED) & VIRTIO_STATUS_FEATURES_OK);
	common_write(STATUS, 1, 0);
	/* No VERSION_1: a legacy driver on a modern-only device. */
	assert_false(negotiate(1ull << 6) & VIRTIO_STATUS_FEATURES_OK);
	/* A driver that goes on to DRIVER_OK anyway is not ready. */
	common_write(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(common_read(STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_false(virtio_device_ready(&fake.dev));
	/* Feature selectors past the two words do nothing. */
	common_write(GFSELECT, 4, 7);
	assert_int_equal(common_read(GFSELECT, 4), 7);
	common_write(GF, 4, 0xffffffff);
	assert_int_equal(fake.dev.driver_features, 1ull << 6);
	assert_int_equal(common_read(GF, 4), 0);
}

static void test_queue_setup(void **state)
{
	(void)state;
	assert_int_equal(common_read(NUM_QUEUES, 2), 2);
	common_write(Q_SELECT, 2, 1);
	assert_int_equal(common_read(Q_SIZE, 2), 256);
	assert_int_equal(common_read(Q_NOTIFY_OFF, 2), 1);
	assert_int_equal(common_read(Q_ENABLE, 2), 0);
	negotiate(OFFERED);
	setup_queue(1, 64);
	const struct virtq_config *q = &fake.dev.queues[1];
	assert_true(q->enabled);
	assert_int_equal(q->size, 64);
	assert_int_equal(q->desc, 0x14000);
	assert_int_equal(q->driver, 0x15000);
	assert_int_equal(q->device, 0x16000);
	assert_int_equal(common_read(Q_ENABLE, 2), 1);
	assert_int_equal(common_read(Q_DRIVER, 4), 0x15000);
	assert_int_equal(common_read(Q_DRIVER + 4, 4), 0);
	/* Once enabled, size and rings are frozen; writing 0 does not disable. */
	common_write(Q_SIZE, 2, 32);
	common_write(Q_DESC, 4, 0x20000);
	common_write(Q_ENABLE, 2, 0);
	assert_true(q->enabled);
	assert_int_equal(q->size, 64);
	assert_int_equal(q->desc, 0x14000);
	assert_false(fake.dev.queues[0].enabled);
	/* A quadword write programs both halves. */
	common_write(Q_SELECT, 2, 0);
	mmio_write(VIRTIO_PCI_COMMON_OFFSET + Q_DESC, 8, 0x123450);
	assert_int_equal(fake.dev.queues[0].desc, 0x123450);
	assert_int_equal(mmio_read(VIRTIO_PCI_COMMON_OFFSET + Q_DESC, 8), 0x123450);
}

/* A queue programmed with one bad value stays disabled. */
static void expect_refused(uint16_t size, uint64_t desc, uint64_t driver, uint64_t device)
{
	common_write(Q_SELECT, 2, 0);
	common_write(Q_SIZE, 2, size);
	common_write(Q_DESC, 4, (uint32_t)desc);
	common_write(Q_DESC + 4, 4, (uint32_t)(desc >> 32));
	common_write(Q_DRIVER, 4, (uint32_t)driver);
	common_write(Q_DRIVER + 4, 4, (uint32_t)(driver >> 32));
	common_write(Q_DEVICE, 4, (uint32_t)device);
	common_write(Q_DEVICE + 4, 4, (uint32_t)(device >> 32));
	common_write(Q_ENABLE, 2, 1);
	assert_int_equal(common_read(Q_ENABLE, 2), 0);
	assert_false(fake.dev.queues[0].enabled);
}

static void test_queue_enable_refused(void **state)
{
	(void)state;
	/* Before FEATURES_OK, even a good layout. */
	expect_refused(128, 0x10000, 0x11000, 0x12000);
	negotiate(OFFERED);
	expect_refused(0, 0x10000, 0x11000, 0x12000);
	expect_refused(100, 0x10000, 0x11000, 0x12000);
	expect_refused(512, 0x10000, 0x11000, 0x12000);
	expect_refused(0x8000, 0x10000, 0x11000, 0x12000);
	/* Misaligned parts. */
	expect_refused(128, 0x10008, 0x11000, 0x12000);
	expect_refused(128, 0x10000, 0x11001, 0x12000);
	expect_refused(128, 0x10000, 0x11000, 0x12002);
	/* Parts reaching past RAM, at its very end, and wrapping the address space. */
	expect_refused(128, RAM_SIZE - 0x400, 0x11000, 0x12000);
	expect_refused(128, 0x10000, RAM_SIZE - 0x100, 0x12000);
	expect_refused(128, 0x10000, 0x11000, RAM_SIZE - 0x400);
	expect_refused(128, 0xfffffffffffff000ull, 0x11000, 0x12000);
	expect_refused(128, 0x10000, 0x11000, 0xfffffffffffffff0ull);
	expect_refused(128, 0x10000, 0x11000, 1ull << 40);
	/* The largest queue ending exactly at the end of RAM is fine. */
	common_write(Q_SIZE, 2, 256);
	common_write(Q_DESC, 4, RAM_SIZE - 0x1000);
	common_write(Q_DESC + 4, 4, 0);
	common_write(Q_DRIVER, 4, RAM_SIZE - 0x2000);
	common_write(Q_DRIVER + 4, 4, 0);
	common_write(Q_DEVICE, 4, RAM_SIZE - 0x3000);
	common_write(Q_DEVICE + 4, 4, 0);
	common_write(Q_ENABLE, 2, 1);
	assert_true(fake.dev.queues[0].enabled);
}

static void test_queue_select_out_of_range(void **state)
{
	(void)state;
	negotiate(OFFERED);
	static const uint16_t selects[] = { 2, 3, VIRTIO_MAX_QUEUES, 0x8000, 0xffff };
	for (unsigned i = 0; i < 5; i++) {
		common_write(Q_SELECT, 2, selects[i]);
		assert_int_equal(common_read(Q_SELECT, 2), selects[i]);
		assert_int_equal(common_read(Q_SIZE, 2), 0);
		common_write(Q_SIZE, 2, 16);
		common_write(Q_DESC, 4, 0x10000);
		common_write(Q_MSIX, 2, 0);
		common_write(Q_ENABLE, 2, 1);
		assert_int_equal(common_read(Q_SIZE, 2), 0);
		assert_int_equal(common_read(Q_ENABLE, 2), 0);
		assert_int_equal(common_read(Q_DESC, 4), 0);
	}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		assert_false(fake.dev.queues[q].enabled);
		assert_int_equal(fake.dev.queues[q].desc, 0);
	}
}

static void test_notify(void **state)
{
	(void)state;
	uint64_t notify = VIRTIO_PCI_NOTIFY_OFFSET;

	negotiate(OFFERED);
	setup_queue(0, 128);
	/* Not ready yet: nothing reaches the device. */
	mmio_write(notify, 2, 0);
	assert_int_equal(fake.notified[0], 0);
	common_write(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	/* Linux's vp_notify(): the queue index, 16 bits, at notify_off * multiplier. */
	mmio_write(notify + common_read(Q_NOTIFY_OFF, 2) * VIRTIO_PCI_NOTIFY_MULTIPLIER, 2, 0);
	assert_int_equal(fake.notified[0], 1);
	mmio_write(notify, 4, 0x12340000); /* NOTIFICATION_DATA style: still queue 0 */
	assert_int_equal(fake.notified[0], 2);
	/* Queue 1 was never enabled; offsets between slots or past them are nothing. */
	mmio_write(notify + 4, 2, 1);
	mmio_write(notify + 2, 2, 0);
	mmio_write(notify + 8, 2, 2);
	mmio_write(notify + 0x400, 2, 0);
	assert_int_equal(fake.notified[0], 2);
	assert_int_equal(fake.notified[1], 0);
	assert_int_equal(mmio_read(notify, 2), 0);
	/* A failed device takes no more notifications. */
	common_write(STATUS, 1, VIRTIO_STATUS_FAILED);
	mmio_write(notify, 2, 0);
	assert_int_equal(fake.notified[0], 2);
}

static void test_reset(void **state)
{
	(void)state;
	bring_up();
	common_write(MSIX_CONFIG, 2, 0);
	common_write(Q_SELECT, 2, 1);
	common_write(Q_MSIX, 2, 2);
	fake.dev.interrupt(&fake.dev, 0);
	assert_true(irq_seen.intx);

	common_write(STATUS, 1, 0);
	assert_int_equal(fake.resets, 1);
	assert_int_equal(common_read(STATUS, 1), 0);
	assert_int_equal(fake.dev.driver_features, 0);
	assert_int_equal(fake.dev.isr, 0);
	assert_false(irq_seen.intx);
	assert_int_equal(common_read(MSIX_CONFIG, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(common_read(Q_SELECT, 2), 0);
	for (unsigned q = 0; q < 2; q++) {
		assert_false(fake.dev.queues[q].enabled);
		assert_int_equal(fake.dev.queues[q].size, 256);
		assert_int_equal(fake.dev.queues[q].desc, 0);
		assert_int_equal(fake.dev.queues[q].msix_vector, VIRTIO_MSI_NO_VECTOR);
	}
	/* And the device can be brought up again. */
	bring_up();
}

static void test_isr_and_intx(void **state)
{
	(void)state;
	uint64_t isr = VIRTIO_PCI_ISR_OFFSET;

	/* Before DRIVER_OK a device may not interrupt. */
	fake.dev.interrupt(&fake.dev, 0);
	assert_int_equal(fake.dev.isr, 0);
	bring_up();
	fake.dev.interrupt(&fake.dev, 0);
	fake.dev.interrupt(&fake.dev, 1);
	assert_true(irq_seen.intx);
	assert_int_equal(irq_seen.intx_changes, 1);
	assert_true(cfg_read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* Level-triggered: it stays up until the ISR is read, which clears it. */
	assert_int_equal(mmio_read(isr, 4), 0); /* a dword read is no ISR read */
	assert_true(irq_seen.intx);
	assert_int_equal(mmio_read(isr, 1), 1);
	assert_false(irq_seen.intx);
	assert_false(cfg_read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_int_equal(mmio_read(isr, 1), 0);
	/* INTx disable keeps the pin down; the ISR still records the cause. */
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	fake.dev.interrupt(&fake.dev, 1);
	assert_false(irq_seen.intx);
	assert_true(cfg_read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(irq_seen.intx);
	assert_int_equal(mmio_read(isr, 1), 1);
	assert_false(irq_seen.intx);
	/* Queues that do not exist raise nothing. */
	fake.dev.interrupt(&fake.dev, 2);
	fake.dev.interrupt(&fake.dev, 0xfffe);
	assert_int_equal(fake.dev.isr, 0);
	assert_int_equal(irq_seen.count, 0);
}

static void test_config_change_and_device_config(void **state)
{
	(void)state;
	uint64_t device = VIRTIO_PCI_DEVICE_OFFSET;

	/* The generation moves even before DRIVER_OK, but nothing is raised. */
	fake.dev.interrupt(&fake.dev, VIRTIO_INTERRUPT_CONFIG);
	assert_int_equal(common_read(GENERATION, 1), 1);
	assert_int_equal(fake.dev.isr, 0);
	bring_up();
	virtio_pci_config_changed(&vp);
	assert_int_equal(common_read(GENERATION, 1), 2);
	assert_true(irq_seen.intx);
	assert_int_equal(mmio_read(VIRTIO_PCI_ISR_OFFSET, 1), 2);
	/* A device that needs a reset still gets its config interrupt out (2.1.2). */
	fake.dev.status |= VIRTIO_STATUS_NEEDS_RESET;
	fake.dev.interrupt(&fake.dev, VIRTIO_INTERRUPT_CONFIG);
	assert_int_equal(mmio_read(VIRTIO_PCI_ISR_OFFSET, 1), 2);

	assert_int_equal(mmio_read(device, 4), 0x04030201);
	assert_int_equal(mmio_read(device + 6, 2), 0x0807);
	assert_int_equal(mmio_read(device + 7, 1), 0x08);
	assert_int_equal(mmio_read(device, 8), 0x0807060504030201ull);
	mmio_write(device + 2, 2, 0xbeef);
	assert_int_equal(fake.config[2], 0xef);
	assert_int_equal(fake.config[3], 0xbe);
	/* Past config_size nothing reaches the device model. */
	unsigned calls = fake.config_calls;
	assert_int_equal(mmio_read(device + 6, 4), 0);
	assert_int_equal(mmio_read(device + 8, 1), 0);
	assert_int_equal(mmio_read(device + 0x3ff, 1), 0);
	mmio_write(device + 7, 2, 0xffff);
	mmio_write(device + 0x100, 4, 0);
	assert_int_equal(mmio_read(device, 3), 0);
	assert_int_equal(fake.config_calls, calls);
}

/* Linux's msix_program_entry(): address, data, then unmask. */
static void program_vector(unsigned v, uint32_t data)
{
	uint64_t entry = VIRTIO_PCI_MSIX_TABLE_OFFSET + 16 * v;
	mmio_write(entry, 4, MSI_ADDRESS);
	mmio_write(entry + 4, 4, 0);
	mmio_write(entry + 8, 4, data);
	mmio_write(entry + 12, 4, 0);
}

static void enable_msix(uint16_t extra)
{
	cfg_write(vp.msix_cap + 2, 2, 0x8000 | extra);
}

static void test_msix_delivery(void **state)
{
	(void)state;
	bring_up();
	/* Every vector starts masked. */
	for (unsigned v = 0; v < 3; v++)
		assert_int_equal(mmio_read(VIRTIO_PCI_MSIX_TABLE_OFFSET + 16 * v + 12, 4), 1);
	enable_msix(0);
	program_vector(0, 0x41);
	program_vector(1, 0x42);
	assert_int_equal(mmio_read(VIRTIO_PCI_MSIX_TABLE_OFFSET + 16, 8), MSI_ADDRESS);
	common_write(MSIX_CONFIG, 2, 0);
	assert_int_equal(common_read(MSIX_CONFIG, 2), 0);
	common_write(Q_SELECT, 2, 0);
	common_write(Q_MSIX, 2, 1);
	assert_int_equal(common_read(Q_MSIX, 2), 1);
	assert_int_equal(fake.dev.queues[0].msix_vector, 1);

	fake.dev.interrupt(&fake.dev, 0);
	assert_int_equal(irq_seen.count, 1);
	assert_int_equal(irq_seen.address, MSI_ADDRESS);
	assert_int_equal(irq_seen.data, 0x42);
	/* No INTx and no ISR queue bit with MSI-X. */
	assert_false(irq_seen.intx);
	assert_int_equal(fake.dev.isr, 0);
	/* The config vector; the ISR config bit is set all the same (4.1.4.5.1). */
	fake.dev.interrupt(&fake.dev, VIRTIO_INTERRUPT_CONFIG);
	assert_int_equal(irq_seen.count, 2);
	assert_int_equal(irq_seen.data, 0x41);
	assert_int_equal(fake.dev.isr, 2);
	assert_false(irq_seen.intx);
	/* A queue with NO_VECTOR stays silent. */
	fake.dev.interrupt(&fake.dev, 1);
	assert_int_equal(irq_seen.count, 2);
	assert_false(irq_seen.intx);
	/* Disabling MSI-X hands the leftover ISR to INTx (4.1.4.5.1). */
	cfg_write(vp.msix_cap + 2, 2, 0);
	assert_true(irq_seen.intx);
}

static void test_msix_masking_and_pending(void **state)
{
	(void)state;
	uint64_t pba = VIRTIO_PCI_MSIX_PBA_OFFSET;
	uint64_t control1 = VIRTIO_PCI_MSIX_TABLE_OFFSET + 16 + 12;

	bring_up();
	enable_msix(0);
	program_vector(1, 0x42);
	common_write(Q_SELECT, 2, 0);
	common_write(Q_MSIX, 2, 1);

	/* Per-vector mask: the message waits as a pending bit. */
	mmio_write(control1, 4, 1);
	fake.dev.interrupt(&fake.dev, 0);
	assert_int_equal(irq_seen.count, 0);
	assert_int_equal(mmio_read(pba, 4), 2);
	assert_int_equal(mmio_read(pba, 8), 2);
	mmio_write(pba, 4, 0); /* the PBA is read-only */
	assert_int_equal(mmio_read(pba, 4), 2);
	mmio_write(control1, 4, 0xfffffffe); /* reserved bits only: unmasks */
	assert_int_equal(mmio_read(control1, 4), 0);
	assert_int_equal(irq_seen.count, 1);
	assert_int_equal(irq_seen.data, 0x42);
	assert_int_equal(mmio_read(pba, 4), 0);

	/* Function mask: the same, released when the function mask clears. */
	enable_msix(0x4000);
	fake.dev.interrupt(&fake.dev, 0);
	fake.dev.interrupt(&fake.dev, 0);
	assert_int_equal(irq_seen.count, 1);
	assert_int_equal(mmio_read(pba, 4), 2);
	enable_msix(0);
	assert_int_equal(irq_seen.count, 2); /* one pending bit, one message */
	assert_int_equal(mmio_read(pba, 4), 0);

	/* Unmasking a vector with nothing pending sends nothing. */
	mmio_write(control1, 4, 1);
	mmio_write(control1, 4, 0);
	assert_int_equal(irq_seen.count, 2);
	/* Pending bits die with a device reset. */
	mmio_write(control1, 4, 1);
	fake.dev.interrupt(&fake.dev, 0);
	common_write(STATUS, 1, 0);
	assert_int_equal(mmio_read(pba, 4), 0);
	mmio_write(control1, 4, 0);
	assert_int_equal(irq_seen.count, 2);
}

static void test_msix_hostile(void **state)
{
	(void)state;
	uint64_t table = VIRTIO_PCI_MSIX_TABLE_OFFSET;

	bring_up();
	/* Vectors past the table read back NO_VECTOR (4.1.5.1.2). */
	common_write(MSIX_CONFIG, 2, 3);
	assert_int_equal(common_read(MSIX_CONFIG, 2), VIRTIO_MSI_NO_VECTOR);
	common_write(Q_SELECT, 2, 1);
	common_write(Q_MSIX, 2, 0xfffe);
	assert_int_equal(common_read(Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* Sub-dword and misaligned table accesses, entries past the table. */
	mmio_write(table, 1, 0xff);
	mmio_write(table + 2, 4, 0xffffffff);
	mmio_write(table + 48, 4, 0xffffffff);
	assert_int_equal(mmio_read(table, 4), 0);
	assert_int_equal(mmio_read(table, 2), 0);
	assert_int_equal(mmio_read(table + 48, 4), 0);
	/* Address bits 1:0 are reserved. */
	mmio_write(table, 4, MSI_ADDRESS | 3);
	assert_int_equal(mmio_read(table, 4), MSI_ADDRESS);
	/* MSI-X table entries programmed but not enabled: INTx as before. */
	program_vector(1, 0x42);
	common_write(Q_SELECT, 2, 0);
	common_write(Q_MSIX, 2, 1);
	fake.dev.interrupt(&fake.dev, 0);
	assert_int_equal(irq_seen.count, 0);
	assert_true(irq_seen.intx);
	/* Enabling MSI-X takes the pin down at once. */
	enable_msix(0);
	assert_false(irq_seen.intx);
}

static void test_common_config_hostile(void **state)
{
	(void)state;
	/* Wrong widths: nothing happens, reads are 0. */
	assert_int_equal(common_read(NUM_QUEUES, 4), 0);
	assert_int_equal(common_read(DF, 2), 0);
	assert_int_equal(common_read(STATUS, 2), 0);
	assert_int_equal(common_read(GENERATION, 2), 0);
	common_write(STATUS, 4, VIRTIO_STATUS_ACKNOWLEDGE);
	common_write(Q_SELECT, 1, 1);
	common_write(Q_SELECT - 1, 2, 0xffff);
	assert_int_equal(common_read(STATUS, 1), 0);
	assert_int_equal(common_read(Q_SELECT, 2), 0);
	/* Read-only fields. */
	common_write(NUM_QUEUES, 2, 9);
	common_write(DF, 4, 0);
	common_write(GENERATION, 1, 9);
	common_write(Q_NOTIFY_OFF, 2, 9);
	assert_int_equal(common_read(NUM_QUEUES, 2), 2);
	assert_int_equal(common_read(GENERATION, 1), 0);
	assert_int_equal(common_read(Q_NOTIFY_OFF, 2), 0);
	/* Past the structure, between structures, odd sizes. */
	assert_int_equal(common_read(0x38, 4), 0);
	assert_int_equal(common_read(0x36, 4), 0);
	assert_int_equal(mmio_read(0x0400, 4), 0);
	assert_int_equal(mmio_read(0x3ffc, 4), 0);
	assert_int_equal(mmio_read(0x3fff, 1), 0);
	assert_int_equal(mmio_read(0, 0), 0);
	assert_int_equal(mmio_read(0, 16), 0);
	mmio_write(0x0400, 4, 0xffffffff);
	mmio_write(VIRTIO_PCI_ISR_OFFSET, 1, 3);
	mmio_write(0x14, 3, 0xffffff);
	mmio_write(0x3ffc, 8, ~0ull); /* an access straddling the end of the BAR */
	assert_int_equal(fake.dev.isr, 0);
	assert_int_equal(common_read(STATUS, 1), 0);
	/* The driver asks for a huge queue, then a tiny legal one. */
	negotiate(OFFERED);
	common_write(Q_SIZE, 2, 0xffff);
	assert_int_equal(common_read(Q_SIZE, 2), 0xffff);
	common_write(Q_ENABLE, 2, 1);
	assert_false(fake.dev.queues[0].enabled);
	setup_queue(0, 1);
	assert_true(fake.dev.queues[0].enabled);
	/* Queue enable values other than 1 are ignored. */
	setup_queue(1, 16);
	common_write(Q_SELECT, 2, 1);
	assert_true(fake.dev.queues[1].enabled);
	common_write(STATUS, 1, 0);
	negotiate(OFFERED);
	common_write(Q_SELECT, 2, 1);
	common_write(Q_SIZE, 2, 16);
	common_write(Q_ENABLE, 2, 2);
	assert_false(fake.dev.queues[1].enabled);
}

/* The PCI_CFG window (4.1.4.7) as a firmware driver without MMIO would use it. */
static void window(unsigned bar, uint32_t offset, uint32_t length)
{
	unsigned cap = find_virtio_cap(5);
	cfg_write(cap + 4, 1, bar);
	cfg_write(cap + 8, 4, offset);
	cfg_write(cap + 12, 4, length);
}

static void test_pci_cfg_access(void **state)
{
	(void)state;
	unsigned data = find_virtio_cap(5) + 16;

	/* Works with memory decoding off: it goes through configuration space. */
	cfg_write(PCI_COMMAND, 2, 0);
	window(0, VIRTIO_PCI_COMMON_OFFSET + NUM_QUEUES, 2);
	assert_int_equal(cfg_read(data, 2), 2);
	window(0, VIRTIO_PCI_COMMON_OFFSET + STATUS, 1);
	cfg_write(data, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(fake.dev.status, VIRTIO_STATUS_ACKNOWLEDGE);
	window(0, VIRTIO_PCI_DEVICE_OFFSET + 4, 4);
	assert_int_equal(cfg_read(data, 4), 0x08070605);
	cfg_write(data, 4, 0xa1b2c3d4);
	assert_int_equal(fake.config[4], 0xd4);
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	bring_up();
	fake.dev.interrupt(&fake.dev, 0);
	window(0, VIRTIO_PCI_ISR_OFFSET, 1);
	assert_int_equal(cfg_read(data, 1), 1);
	assert_false(irq_seen.intx);
	window(0, VIRTIO_PCI_NOTIFY_OFFSET + 4, 2);
	cfg_write(data, 2, 1);
	assert_int_equal(fake.notified[1], 1);

	/* Windows with no defined meaning move nothing. */
	unsigned calls = fake.config_calls;
	window(1, VIRTIO_PCI_DEVICE_OFFSET, 4);
	cfg_write(data, 4, 0);
	window(0, VIRTIO_PCI_DEVICE_OFFSET + 2, 4);
	cfg_write(data, 4, 0);
	window(0, VIRTIO_PCI_DEVICE_OFFSET, 3);
	cfg_write(data, 4, 0);
	window(0, VIRTIO_PCI_DEVICE_OFFSET, 8);
	assert_int_equal(cfg_read(data, 4), 0);
	window(0, 0xfffffffc, 4);
	cfg_write(data, 4, 0);
	assert_int_equal(cfg_read(data, 4), 0);
	assert_int_equal(fake.config_calls, calls);
	assert_int_equal(fake.config[4], 0xd4);
}

static void test_init_rejects(void **state)
{
	(void)state;
	struct virtio_pci other;
	struct virtio_device bad;
	struct virtio_pci_irq no_msi = irq;

	no_msi.msi = NULL;
	assert_int_equal(virtio_pci_init(&other, &bus, &fake.dev, LINE, &no_msi), -1);
	bad = fake.dev;
	bad.num_queues = VIRTIO_MAX_QUEUES + 1;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	bad.num_queues = 0;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	bad = fake.dev;
	bad.queue_max_size = 100;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	bad.queue_max_size = 512;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	bad = fake.dev;
	bad.config_size = VIRTIO_PCI_DEVICE_MAX + 1;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	struct virtio_device_ops ops = fake_ops;
	ops.reset = NULL;
	bad = fake.dev;
	bad.ops = &ops;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	assert_int_equal(bus.count, 2);
	/* A full bus. */
	while (bus.count <= PCI_MAX_DEVICES) {
		bad = fake.dev;
		assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), 0);
	}
	bad = fake.dev;
	assert_int_equal(virtio_pci_init(&other, &bus, &bad, LINE, &irq), -1);
	/* A net device: its own id and class, its MSI-X table sized to its queues. */
	struct pci_bus bus2;
	pci_init(&bus2);
	bad = fake.dev;
	bad.device_id = VIRTIO_ID_NET;
	bad.num_queues = VIRTIO_MAX_QUEUES;
	assert_int_equal(virtio_pci_init(&other, &bus2, &bad, LINE, &irq), 0);
	assert_int_equal(pci_config_get(other.pci, PCI_DEVICE_ID, 2), 0x1041);
	assert_int_equal(pci_config_get(other.pci, PCI_CLASS_PROG, 3), 0x020000);
	assert_int_equal(pci_config_get(other.pci, other.msix_cap + 2, 2), VIRTIO_MAX_QUEUES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_identity, setup),
		cmocka_unit_test_setup(test_capabilities, setup),
		cmocka_unit_test_setup(test_feature_negotiation, setup),
		cmocka_unit_test_setup(test_feature_negotiation_refused, setup),
		cmocka_unit_test_setup(test_queue_setup, setup),
		cmocka_unit_test_setup(test_queue_enable_refused, setup),
		cmocka_unit_test_setup(test_queue_select_out_of_range, setup),
		cmocka_unit_test_setup(test_notify, setup),
		cmocka_unit_test_setup(test_reset, setup),
		cmocka_unit_test_setup(test_isr_and_intx, setup),
		cmocka_unit_test_setup(test_config_change_and_device_config, setup),
		cmocka_unit_test_setup(test_msix_delivery, setup),
		cmocka_unit_test_setup(test_msix_masking_and_pending, setup),
		cmocka_unit_test_setup(test_msix_hostile, setup),
		cmocka_unit_test_setup(test_common_config_hostile, setup),
		cmocka_unit_test_setup(test_pci_cfg_access, setup),
		cmocka_unit_test_setup(test_init_rejects, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
