#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "devices/device_table.h"
#include "tests/unit/devstate_machine.h"

#define NOW_NS 5000000000ULL
#define PROBE_MAX 512

/*
 * Every described device, as a test subject, in the order of struct
 * machine: how to drive it somewhere non-trivial through its guest-facing
 * API, and probe it (reads whose answers must survive save and load).
 */
struct subject {
	const struct devstate_desc *desc;
	void (*drive)(void *state);
	/* Writes what the guest would read into out (at most PROBE_MAX bytes); may change the device. */
	size_t (*probe)(void *state, uint8_t *out);
};

static unsigned tx_bytes;
static void count_tx(void *ctx, uint8_t byte)
{
	(void)ctx;
	(void)byte;
	tx_bytes++;
}

static bool accept_all(void *ctx, uint8_t vector, bool level, uint8_t dest, uint8_t dest_mode,
		       uint8_t delivery_mode)
{
	(void)ctx, (void)vector, (void)level, (void)dest, (void)dest_mode, (void)delivery_mode;
	return true;
}

static void pic_drive(void *s)
{
	struct pic *pic = s;
	static const uint8_t init[2][4] = { { 0x11, 0x20, 0x04, 0x01 }, { 0x11, 0x28, 0x02, 0x03 } };

	for (unsigned c = 0; c < 2; c++) {
		pic_write(pic, c, 0, init[c][0]);
		for (unsigned i = 1; i < 4; i++)
			pic_write(pic, c, 1, init[c][i]);
	}
	pic_write(pic, 0, 1, 0xb8);
	pic_write(pic, 1, 1, 0x00);
	pic_elcr_write(pic, 1, 0x0c);
	pic_set_irq(pic, 0, true);
	pic_set_irq(pic, 11, true);
	pic_acknowledge(pic);
	pic_write(pic, 0, 0, 0x0b); /* OCW3: read ISR */
	pic_set_irq(pic, 1, true);
	pic_write(pic, 1, 0, 0x19); /* ICW1 again: the slave waits for ICW2 */
}
static size_t pic_probe(void *s, uint8_t *out)
{
	struct pic *pic = s;
	size_t n = 0;

	out[n++] = (uint8_t)pic_pending(pic);
	for (unsigned c = 0; c < 2; c++) {
		out[n++] = pic_read(pic, c, 0);
		out[n++] = pic_read(pic, c, 1);
		out[n++] = pic_elcr_read(pic, c);
	}
	out[n++] = pic_acknowledge(pic);
	pic_write(pic, 1, 1, 0x70); /* the slave's ICW2 */
	out[n++] = pic_read(pic, 0, 0);
	return n;
}

static void rtc_drive(void *s)
{
	struct rtc *rtc = s;
	static const uint8_t writes[][2] = {
		{ 0x0b, 0x06 }, /* binary, 24 h */
		{ 0x04, 13 },   /* hours */
		{ 0x09, 31 },   /* year */
		{ 0x0a, 0x26 }, /* register A */
		{ 0x40, 0x5a }, /* NVRAM */
		{ 0x7f, 0xa5 },
		{ 0x08, 2 },    /* month */
	};

	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		rtc_write(rtc, 0, writes[i][0], NOW_NS);
		rtc_write(rtc, 1, writes[i][1], NOW_NS);
	}
}
static size_t rtc_probe(void *s, uint8_t *out)
{
	struct rtc *rtc = s;
	static const uint8_t regs[] = { 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
					0x32, 0x40, 0x7f };
	size_t n = 0;

	out[n++] = rtc_read(rtc, 1, NOW_NS); /* the register the guest left selected */
	for (size_t i = 0; i < sizeof(regs); i++) {
		rtc_write(rtc, 0, regs[i], NOW_NS);
		out[n++] = rtc_read(rtc, 1, NOW_NS);
	}
	return n;
}

static void vuart_drive(void *s)
{
	struct vuart *u = s;

	vuart_write(u, 3, 0x83); /* DLAB */
	vuart_write(u, 0, 0x0c);
	vuart_write(u, 1, 0x01);
	vuart_write(u, 3, 0x03);
	vuart_write(u, 2, 0x01);
	vuart_write(u, 1, 0x07);
	vuart_write(u, 4, 0x1b); /* loopback, OUT2 */
	for (uint8_t b = 'a'; b < 'a' + 18; b++)
		vuart_write(u, 0, b); /* two overrun the FIFO */
	vuart_read(u, 0);
	vuart_read(u, 0);
	vuart_write(u, 0, 'z');
	vuart_write(u, 7, 0x42);
}
static size_t vuart_probe(void *s, uint8_t *out)
{
	struct vuart *u = s;
	size_t n = 0;

	out[n++] = vuart_irq_line(u);
	for (unsigned reg = 1; reg < 8; reg++)
		out[n++] = vuart_read(u, reg);
	for (unsigned i = 0; i < 17; i++)
		out[n++] = vuart_read(u, 0);
	return n;
}

static void ioapic_select_write(struct ioapic *io, uint32_t reg, uint32_t value)
{
	ioapic_mmio_write(io, IOAPIC_REGSEL, 4, reg);
	ioapic_mmio_write(io, IOAPIC_IOWIN, 4, value);
}
static void ioapic_drive(void *s)
{
	struct ioapic *io = s;

	ioapic_select_write(io, 0x10 + 2 * 9, 0x8031); /* level, vector 0x31 */
	ioapic_select_write(io, 0x11 + 2 * 9, 0x03000000);
	ioapic_select_write(io, 0x10 + 2 * 4, 0x2034); /* edge, active low */
	ioapic_set_irq(io, 9, true); /* delivered: Remote IRR */
	ioapic_set_irq(io, 4, true);
	ioapic_mmio_write(io, IOAPIC_REGSEL, 4, 0x10 + 2 * 9);
}
static size_t ioapic_probe(void *s, uint8_t *out)
{
	struct ioapic *io = s;
	size_t n = 0;
	uint32_t v = ioapic_mmio_read(io, IOAPIC_IOWIN, 4);

	memcpy(out + n, &v, 4);
	n += 4;
	ioapic_eoi(io, 0x31); /* still asserted: delivered again */
	for (uint32_t reg = 0; reg < 0x10 + 2 * 10; reg += 2) {
		ioapic_mmio_write(io, IOAPIC_REGSEL, 4, reg);
		v = ioapic_mmio_read(io, IOAPIC_IOWIN, 4);
		memcpy(out + n, &v, 4);
		n += 4;
	}
	return n;
}

static void acpi_pm_drive(void *s)
{
	struct acpi_pm *pm = s;

	acpi_pm_write(pm, 2, 2, 0x0121);
	acpi_pm_write(pm, 4, 2, 0x0c01); /* SLP_TYP 3 without SLP_EN */
}
static size_t acpi_pm_probe(void *s, uint8_t *out)
{
	uint32_t v = acpi_pm_read(s, 0, 4, NOW_NS);
	uint32_t c = acpi_pm_read(s, 4, 2, NOW_NS);

	memcpy(out, &v, 4);
	memcpy(out + 4, &c, 4);
	return 8;
}

static void pit_drive(void *s)
{
	struct pit *pit = s;
	const uint64_t t = 1000000000ULL;

	pit_write(pit, 3, 0x34, t); /* counter 0: LSB then MSB, rate generator */
	pit_write(pit, 0, 0xa9, t);
	pit_write(pit, 0, 0x04, t); /* 1193: 1 ms */
	pit_write(pit, 3, 0x96, t); /* counter 2: LSB only, square wave */
	pit_write(pit, 2, 0x80, t);
	pit_port_b_write(pit, 0x03, t); /* gate 2 high, speaker data */
	pit_write(pit, 3, 0x70, t); /* counter 1: LSB then MSB, mode 0 ... */
	pit_write(pit, 1, 0x34, t); /* ... only the LSB written */
	pit_irq0_due(pit, t + 1500000);
	pit_write(pit, 3, 0x00, t + 1700000); /* latch counter 0 */
	pit_read(pit, 0, t + 1800000);          /* its LSB */
	pit_port_b_write(pit, 0x00, t + 2000000); /* gate 2 falls: counting pauses */
}
static size_t pit_probe(void *s, uint8_t *out)
{
	struct pit *pit = s;
	uint64_t next = pit_next_irq0_ns(pit, NOW_NS);
	size_t n = 0;

	memcpy(out, &next, 8);
	n += 8;
	out[n++] = pit_irq0_due(pit, NOW_NS);
	out[n++] = pit_port_b_read(pit, NOW_NS);
	for (unsigned c = 0; c < 3; c++) {
		out[n++] = pit_read(pit, c, NOW_NS);
		out[n++] = pit_read(pit, c, NOW_NS);
	}
	pit_write(pit, 1, 0x12, NOW_NS); /* counter 1's MSB completes the count */
	out[n++] = pit_read(pit, 1, NOW_NS + 1000000);
	return n;
}

static void lapic_write(struct lapic *l, unsigned reg, uint32_t value, uint64_t now)
{
	lapic_mmio_write(l, reg, 4, value, now, now * 2);
}
static void lapic_drive(void *s)
{
	struct lapic *l = s;
	const uint64_t t = 1000000000ULL;

	lapic_write(l, 0x080, 0x20, t);         /* TPR */
	lapic_write(l, 0x0d0, 0x03000000, t);   /* LDR */
	lapic_write(l, 0x0e0, 0x0fffffff, t);   /* DFR: cluster model */
	lapic_write(l, 0x370, 0x0000000f, t);   /* LVT error: vector 15, legal to write */
	lapic_write(l, 0x3e0, 0x3, t);          /* divide by 16 */
	lapic_write(l, 0x320, 0x00020040, t);   /* LVT timer: periodic, vector 0x40 */
	lapic_write(l, 0x380, 100000, t);       /* 16 ms */
	lapic_accept(l, 0x51, true);
	lapic_accept(l, 0x61, false);
	lapic_acknowledge(l, 0);                   /* 0x61 in service */
	lapic_accept(l, 0x31, false);
	lapic_write(l, 0x310, 0x01000000, t);
	lapic_write(l, 0x300, 0x00004005, t);   /* fixed IPI, vector 5: send illegal vector */
	lapic_write(l, 0x280, 0, t);            /* ESR latches it */
	lapic_mmio_read(l, 0x040, 4, t);        /* reserved: illegal register, pending */
	lapic_timer_run(l, t + 40000000, (t + 40000000) * 2);
}
static size_t lapic_probe(void *s, uint8_t *out)
{
	static const uint16_t regs[] = { 0x080, 0x090, 0x0a0, 0x0d0, 0x0e0, 0x0f0, 0x280, 0x300,
					 0x310, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x2f0,
					 0x380, 0x390, 0x3e0 };
	struct lapic *l = s;
	uint64_t v = 0;
	size_t n = 0;

	/* ISR, TMR, IRR */
	for (unsigned reg = 0x100; reg < 0x280; reg += 0x10) {
		uint32_t x = lapic_mmio_read(l, reg, 4, NOW_NS);
		memcpy(out + n, &x, 4);
		n += 4;
	}
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		uint32_t x = lapic_mmio_read(l, regs[i], 4, NOW_NS);
		memcpy(out + n, &x, 4);
		n += 4;
	}
	out[n++] = lapic_timer_run(l, NOW_NS, NOW_NS * 2);
	v = lapic_next_event_ns(l, NOW_NS, NOW_NS * 2);
	memcpy(out + n, &v, 8);
	n += 8;
	lapic_msr_read(l, LAPIC_MSR_APIC_BASE, &v, NOW_NS);
	memcpy(out + n, &v, 8);
	n += 8;
	lapic_write(l, 0x0b0, 0, NOW_NS); /* EOI of 0x61 */
	out[n++] = (uint8_t)lapic_pending(l);
	out[n++] = lapic_acknowledge(l, 0);
	return n;
}

static struct pci_bus *bus_of(void *state)
{
	return (struct pci_bus *)((uint8_t *)state - offsetof(struct pci_bus, state));
}
static void pci_bus_drive(void *s)
{
	pci_port_write(bus_of(s), 0, 4, 0xff00081b); /* device 1, BAR1; bits 30:24 and 1:0 drop */
}
static size_t pci_bus_probe(void *s, uint8_t *out)
{
	uint32_t v = pci_port_read(bus_of(s), 0, 4);

	memcpy(out, &v, 4);
	return 4;
}

/* The offset of fn's first capability with this id, or 0. */
static unsigned find_capability(struct pci_function *fn, uint8_t id)
{
	for (unsigned cap = pci_config_read(fn, PCI_CAPABILITY_LIST, 1); cap;
	     cap = pci_config_read(fn, cap + 1, 1)) {
		if (pci_config_read(fn, cap, 1) == id)
			return cap;
	}
	return 0;
}

/* What firmware and a driver write: BAR sizing and placement, command, line, MSI-X. */
static void pci_function_drive(void *s)
{
	struct pci_function *fn = s;
	unsigned msix = find_capability(fn, PCI_CAP_ID_MSIX);
	unsigned vendor = find_capability(fn, PCI_CAP_ID_VNDR);

	pci_config_write(fn, PCI_BAR0, 4, 0xffffffff);
	pci_config_write(fn, PCI_BAR0, 4, 0xfebf0000);
	pci_config_write(fn, PCI_BAR0 + 4, 4, 0x1);
	pci_config_write(fn, PCI_COMMAND, 2, 0xffff);
	pci_config_write(fn, PCI_CACHE_LINE_SIZE, 2, 0x4010);
	pci_config_write(fn, PCI_INTERRUPT_LINE, 1, 5);
	if (msix)
		pci_config_write(fn, msix + 2, 2, 0xc000); /* enable, function mask */
	/* The virtio capabilities come first; the PCI_CFG one is the fifth. */
	for (unsigned n = 1; vendor && n < 5; n++)
		vendor = pci_config_read(fn, vendor + 1, 1);
	if (vendor)
		pci_config_write(fn, vendor + 12, 4, 4); /* PCI_CFG window length */
	pci_set_intx(fn, true);
}
static size_t pci_function_probe(void *s, uint8_t *out)
{
	struct pci_function *fn = s;
	size_t n = 0;

	for (unsigned off = 0; off < PCI_CONFIG_SIZE; off += 4) {
		uint32_t v = pci_config_read(fn, off, 4);
		memcpy(out + n, &v, 4);
		n += 4;
	}
	out[n++] = fn->intx_out;
	return n;
}

/* The test's driver: the BAR of the function a virtio device sits on. */
#define COMMON_DFSELECT 0x00
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_DESC 0x20
#define COMMON_Q_AVAIL 0x28
#define COMMON_Q_USED 0x30
#define QUEUE_SIZE 8

static void bar_write(struct virtio_pci *vp, uint64_t offset, unsigned size, uint64_t value)
{
	vp->pci->ops->bar_write(vp, VIRTIO_PCI_BAR, offset, size, value);
}
static uint32_t bar_read(struct virtio_pci *vp, uint64_t offset, unsigned size)
{
	return (uint32_t)vp->pci->ops->bar_read(vp, VIRTIO_PCI_BAR, offset, size);
}

static void virtio_pci_drive(void *s)
{
	struct virtio_pci *vp = s;

	bar_write(vp, VIRTIO_PCI_MSIX_TABLE_OFFSET + 16, 4, 0xfee00000);
	bar_write(vp, VIRTIO_PCI_MSIX_TABLE_OFFSET + 24, 4, 0x41);
	bar_write(vp, VIRTIO_PCI_MSIX_TABLE_OFFSET + 28, 4, 0); /* vector 1 unmasked */
	bar_write(vp, VIRTIO_PCI_MSIX_TABLE_OFFSET + 32, 4, 0xfee00003); /* bits 1:0 drop */
	bar_write(vp, COMMON_DFSELECT, 4, 1);
	bar_write(vp, COMMON_GFSELECT, 4, 7);
	bar_write(vp, COMMON_Q_SELECT, 2, 1);
	vp->dev->interrupt(vp->dev, VIRTIO_INTERRUPT_CONFIG); /* no DRIVER_OK: nothing pending */
}
static size_t virtio_pci_probe(void *s, uint8_t *out)
{
	struct virtio_pci *vp = s;
	size_t n = 0;

	for (unsigned off = 0; off < 0x38; off += 4) {
		uint32_t v = bar_read(vp, off, off == 0x14 ? 1 : 4);
		memcpy(out + n, &v, 4);
		n += 4;
	}
	for (unsigned off = 0; off < 16 * vp->msix_vectors; off += 4) {
		uint32_t v = bar_read(vp, VIRTIO_PCI_MSIX_TABLE_OFFSET + off, 4);
		memcpy(out + n, &v, 4);
		n += 4;
	}
	uint32_t pending = bar_read(vp, VIRTIO_PCI_MSIX_PBA_OFFSET, 4);
	memcpy(out + n, &pending, 4);
	return n + 4;
}

static void ram_put(uint64_t gpa, uint64_t value, unsigned size)
{
	memcpy(machine_ram + gpa, &value, size); /* little-endian host */
}

/* Status through FEATURES_OK with VERSION_1 and what else was asked. */
static void virtio_negotiate(struct virtio_pci *vp, uint64_t features)
{
	bar_write(vp, COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	bar_write(vp, COMMON_GFSELECT, 4, 0);
	bar_write(vp, COMMON_GF, 4, (uint32_t)features);
	bar_write(vp, COMMON_GFSELECT, 4, 1);
	bar_write(vp, COMMON_GF, 4, (uint32_t)(features >> 32) | 1);
	bar_write(vp, COMMON_STATUS, 1, VIRTIO_STATUS_FEATURES_OK);
	bar_write(vp, COMMON_MSIX, 2, 0);
}

/* Queue q of QUEUE_SIZE entries at ring, enabled, on MSI-X vector q + 1. */
static void virtio_queue(struct virtio_pci *vp, unsigned q, uint64_t ring)
{
	bar_write(vp, COMMON_Q_SELECT, 2, q);
	bar_write(vp, COMMON_Q_SIZE, 2, QUEUE_SIZE);
	bar_write(vp, COMMON_Q_MSIX, 2, q + 1);
	bar_write(vp, COMMON_Q_DESC, 8, ring);
	bar_write(vp, COMMON_Q_AVAIL, 8, ring + 0x100);
	bar_write(vp, COMMON_Q_USED, 8, ring + 0x200);
	bar_write(vp, COMMON_Q_ENABLE, 2, 1);
}

struct segment {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

/*
 * One chain in queue q at ring, from descriptor 0, in avail slot `slot`
 * (written whole, so that posting it again changes nothing); then
 * DRIVER_OK and the notification.
 */
static void virtio_post(struct virtio_pci *vp, unsigned q, uint64_t ring, const struct segment *seg,
			unsigned n, uint16_t slot)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
					    (seg[i].writable ? VIRTQ_DESC_F_WRITE : 0));
		ram_put(ring + 16 * i, seg[i].gpa, 8);
		ram_put(ring + 16 * i + 8, seg[i].len, 4);
		ram_put(ring + 16 * i + 12, flags, 2);
		ram_put(ring + 16 * i + 14, i + 1, 2);
	}
	ram_put(ring + 0x100 + 4 + 2 * slot, 0, 2); /* head 0 */
	ram_put(ring + 0x100 + 2, slot + 1u, 2);    /* idx */
	bar_write(vp, COMMON_STATUS, 1, VIRTIO_STATUS_DRIVER_OK);
	bar_write(vp, VIRTIO_PCI_NOTIFY_OFFSET + VIRTIO_PCI_NOTIFY_MULTIPLIER * q, 2, q);
}

#define BLK_RING 0x1000
#define NET_RING 0x8000
#define NET_TX_RING (NET_RING + 0x1000)

static const struct segment get_id[] = {
	{ BLK_RING + 0x400, 16, false },
	{ BLK_RING + 0x500, VIRTIO_BLK_ID_BYTES, true },
	{ BLK_RING + 0x600, 1, true },
};
static const struct segment frame[] = { { NET_RING + 0x400, 12 + 60, false } };

/* A GET_ID request served: the queue's indices move, the used ring interrupts. */
static void virtio_blk_drive(void *s)
{
	struct virtio_blk *blk = s;
	struct virtio_pci *vp = blk->dev.interrupt_ctx;

	virtio_negotiate(vp, 0);
	virtio_queue(vp, 0, BLK_RING);
	ram_put(BLK_RING + 0x400, VIRTIO_BLK_T_GET_ID, 4);
	virtio_post(vp, 0, BLK_RING, get_id, 3, 0);
	virtio_blk_new_pass(blk);
}

static size_t put_u32(uint8_t *out, uint32_t v)
{
	memcpy(out, &v, 4);
	return 4;
}

/*
 * The device's side of the common configuration and the queues as the
 * driver reads them, then the next chain on queue q served: where the
 * device takes it from and where it returns it (the used ring's index and
 * slot) follow from the saved indices.
 */
static size_t virtio_device_probe(struct virtio_pci *vp, uint8_t *out, unsigned q, uint64_t ring,
				  const struct segment *seg, unsigned n_seg)
{
	size_t n = 0;

	out[n++] = (uint8_t)bar_read(vp, COMMON_STATUS, 1);
	for (unsigned half = 0; half < 2; half++) {
		bar_write(vp, COMMON_GFSELECT, 4, half);
		n += put_u32(out + n, bar_read(vp, COMMON_GF, 4));
	}
	for (unsigned i = 0; i < vp->dev->num_queues; i++) {
		bar_write(vp, COMMON_Q_SELECT, 2, i);
		for (unsigned off = COMMON_Q_SIZE; off < COMMON_Q_DESC; off += 2)
			n += put_u32(out + n, bar_read(vp, off, 2));
		for (unsigned off = COMMON_Q_DESC; off < 0x38; off += 4)
			n += put_u32(out + n, bar_read(vp, off, 4));
	}
	out[n++] = (uint8_t)bar_read(vp, VIRTIO_PCI_ISR_OFFSET, 1);
	virtio_post(vp, q, ring, seg, n_seg, 1);
	return n;
}

static size_t used_ring(uint64_t ring, uint8_t *out)
{
	size_t n = 0;

	for (unsigned off = 0x200; off < 0x200 + 4 + 8 * 2; off += 4) {
		uint32_t v;
		memcpy(&v, machine_ram + ring + off, 4);
		n += put_u32(out + n, v);
	}
	return n;
}

static size_t virtio_blk_probe(void *s, uint8_t *out)
{
	struct virtio_blk *blk = s;
	size_t n = virtio_device_probe(blk->dev.interrupt_ctx, out, 0, BLK_RING, get_id, 3);

	virtio_blk_new_pass(blk);
	return n + used_ring(BLK_RING, out + n);
}

/* A frame sent on the transmit queue; the receive queue set up and empty. */
static void virtio_net_drive(void *s)
{
	struct virtio_net *net = s;
	struct virtio_pci *vp = net->dev.interrupt_ctx;

	virtio_negotiate(vp, 1ULL << VIRTIO_NET_F_MAC);
	virtio_queue(vp, VIRTIO_NET_RXQ, NET_RING);
	virtio_queue(vp, VIRTIO_NET_TXQ, NET_TX_RING);
	virtio_post(vp, VIRTIO_NET_TXQ, NET_TX_RING, frame, 1, 0);
	virtio_net_new_pass(net);
}
static size_t virtio_net_probe(void *s, uint8_t *out)
{
	struct virtio_net *net = s;
	size_t n = virtio_device_probe(net->dev.interrupt_ctx, out, VIRTIO_NET_TXQ, NET_TX_RING,
				       frame, 1);

	virtio_net_new_pass(net);
	return n + used_ring(NET_TX_RING, out + n);
}

#define AGENT_RING 0xa000
#define AGENT_TX_RING (AGENT_RING + 0x1000)
static const struct segment control_msg[] = { { AGENT_RING + 0x400, VIRTIO_CONSOLE_CONTROL_SIZE,
						false } };

/* DEVICE_READY sent on the control queue, no control buffer posted: DEVICE_ADD is owed. */
static void virtio_console_drive(void *s)
{
	struct virtio_console *con = s;
	struct virtio_pci *vp = con->dev.interrupt_ctx;

	virtio_negotiate(vp, 1ULL << VIRTIO_CONSOLE_F_MULTIPORT);
	virtio_queue(vp, VIRTIO_CONSOLE_CTRL_RXQ, AGENT_RING);
	virtio_queue(vp, VIRTIO_CONSOLE_CTRL_TXQ, AGENT_TX_RING);
	ram_put(AGENT_RING + 0x400, 0xffffffffu, 4);
	ram_put(AGENT_RING + 0x404, VIRTIO_CONSOLE_DEVICE_READY, 2);
	ram_put(AGENT_RING + 0x406, 1, 2);
	virtio_post(vp, VIRTIO_CONSOLE_CTRL_TXQ, AGENT_TX_RING, control_msg, 1, 0);
}
/* The same message again: taken from the next slot; what is owed stays owed. */
static size_t virtio_console_probe(void *s, uint8_t *out)
{
	struct virtio_console *con = s;
	size_t n = virtio_device_probe(con->dev.interrupt_ctx, out, VIRTIO_CONSOLE_CTRL_TXQ,
				       AGENT_TX_RING, control_msg, 1);

	out[n++] = con->control_due;
	out[n++] = con->driver_ready;
	return n + used_ring(AGENT_TX_RING, out + n);
}

/* Armed with a 1-s heartbeat as Linux's driver does it, the first stage under way. */
static void i6300esb_drive(void *s)
{
	struct i6300esb *w = s;

	i6300esb_config_write(w, 0x0003, 0, 0);
	for (unsigned t = 0; t < 2; t++) {
		i6300esb_write(w, I6300ESB_RELOAD, 2, I6300ESB_UNLOCK1, 0);
		i6300esb_write(w, I6300ESB_RELOAD, 2, I6300ESB_UNLOCK2, 0);
		i6300esb_write(w, t ? I6300ESB_TIMER2 : I6300ESB_TIMER1, 4, 1 << 9, 0);
	}
	i6300esb_config_write(w, 0x0003, I6300ESB_LOCK_ENABLE, 1000);
	i6300esb_run(w, 600000000);
}
/* When the stages end and what the guest reads: both follow from the saved counts. */
static size_t i6300esb_probe(void *s, uint8_t *out)
{
	struct i6300esb *w = s;
	size_t n = put_u32(out, (uint32_t)i6300esb_next_event(w));

	out[n++] = i6300esb_run(w, 2000000000);
	return n + put_u32(out + n, i6300esb_read(w, I6300ESB_RELOAD, 2));
}

#define BALLOON_RING 0xc000
static const struct segment free_pages[] = { { BALLOON_RING + 0x400, 0x100, true } };

/* A report served (its bytes zeroed), `actual` written, a second report posted. */
static void virtio_balloon_drive(void *s)
{
	struct virtio_balloon *b = s;
	struct virtio_pci *vp = b->dev.interrupt_ctx;

	virtio_negotiate(vp, 1ULL << VIRTIO_BALLOON_F_REPORTING);
	virtio_queue(vp, VIRTIO_BALLOON_REPORTQ, BALLOON_RING);
	bar_write(vp, VIRTIO_PCI_DEVICE_OFFSET + 4, 4, 0x1234);
	virtio_post(vp, VIRTIO_BALLOON_REPORTQ, BALLOON_RING, free_pages, 1, 0);
	virtio_balloon_new_pass(b);
}
/* The next report goes back in the next used slot; `actual` reads as written. */
static size_t virtio_balloon_probe(void *s, uint8_t *out)
{
	struct virtio_balloon *b = s;
	size_t n = virtio_device_probe(b->dev.interrupt_ctx, out, VIRTIO_BALLOON_REPORTQ,
				       BALLOON_RING, free_pages, 1);

	n += put_u32(out + n, bar_read(b->dev.interrupt_ctx, VIRTIO_PCI_DEVICE_OFFSET + 4, 4));
	return n + used_ring(BALLOON_RING, out + n);
}

static const struct subject subjects[] = {
	{ &pic_state_desc, pic_drive, pic_probe },
	{ &rtc_state_desc, rtc_drive, rtc_probe },
	{ &vuart_state_desc, vuart_drive, vuart_probe },
	{ &ioapic_state_desc, ioapic_drive, ioapic_probe },
	{ &acpi_pm_state_desc, acpi_pm_drive, acpi_pm_probe },
	{ &pit_state_desc, pit_drive, pit_probe },
	{ &lapic_state_desc, lapic_drive, lapic_probe },
	{ &pci_bus_state_desc, pci_bus_drive, pci_bus_probe },
	{ &pci_function_state_desc, pci_function_drive, pci_function_probe },
	{ &pci_function_state_desc, pci_function_drive, pci_function_probe },
	{ &pci_function_state_desc, pci_function_drive, pci_function_probe },
	{ &virtio_pci_state_desc, virtio_pci_drive, virtio_pci_probe },
	{ &virtio_pci_state_desc, virtio_pci_drive, virtio_pci_probe },
	{ &virtio_blk_state_desc, virtio_blk_drive, virtio_blk_probe },
	{ &virtio_net_state_desc, virtio_net_drive, virtio_net_probe },
	{ &pci_function_state_desc, pci_function_drive, pci_function_probe },
	{ &virtio_pci_state_desc, virtio_pci_drive, virtio_pci_probe },
	{ &virtio_console_state_desc, virtio_console_drive, virtio_console_probe },
	{ &i6300esb_state_desc, i6300esb_drive, i6300esb_probe },
	{ &pci_function_state_desc, pci_function_drive, pci_function_probe },
	{ &virtio_pci_state_desc, virtio_pci_drive, virtio_pci_probe },
	{ &virtio_balloon_state_desc, virtio_balloon_drive, virtio_balloon_probe },
};
#define SUBJECTS (sizeof(subjects) / sizeof(subjects[0]))
_Static_assert(SUBJECTS == MACHINE_DEVICES, "a subject for every device of the machine");

/* Two sets of devices: the one saved from, the one loaded into. */
static struct machine a, b;

static void power_on(struct machine *m)
{
	machine_power_on(m, count_tx, accept_all);
}

static void instances(struct machine *m, struct devstate_instance *out)
{
	machine_instances(m, out);
	for (unsigned i = 0; i < SUBJECTS; i++)
		assert_ptr_equal(out[i].desc, subjects[i].desc);
}

static void *state_of(struct machine *m, unsigned i)
{
	struct devstate_instance devs[MACHINE_DEVICES];

	instances(m, devs);
	return devs[i].state;
}

static unsigned width(enum devstate_type t)
{
	return DEVSTATE_TYPE_SIZE(t);
}

static uint64_t element(const void *state, const struct devstate_field *f, unsigned e)
{
	uint64_t v = 0;

	/* Little-endian host: the low bytes of v. */
	memcpy(&v, (const uint8_t *)state + f->offset + (size_t)e * f->stride, width(f->type));
	return v;
}

static bool fields_differ(const struct devstate_desc *d, const void *x, const void *y)
{
	for (unsigned i = 0; i < d->field_count; i++) {
		for (unsigned e = 0; e < d->fields[i].count; e++) {
			if (element(x, &d->fields[i], e) != element(y, &d->fields[i], e))
				return true;
		}
	}
	return false;
}

static void assert_fields_equal(const struct devstate_desc *d, const void *x, const void *y)
{
	for (unsigned i = 0; i < d->field_count; i++) {
		const struct devstate_field *f = &d->fields[i];
		for (unsigned e = 0; e < f->count; e++) {
			if (element(x, f, e) != element(y, f, e))
				fail_msg("%s: %s element %u: %llu != %llu", d->name, f->name, e,
					 (unsigned long long)element(x, f, e),
					 (unsigned long long)element(y, f, e));
		}
	}
}

static size_t save(struct machine *m, uint8_t *buf, size_t cap)
{
	struct devstate_instance devs[SUBJECTS];

	instances(m, devs);
	size_t n = devstate_save(devs, SUBJECTS, buf, cap);
	assert_int_equal(n, devstate_saved_size(devs, SUBJECTS));
	return n;
}

static bool load(struct machine *m, const uint8_t *buf, size_t len, struct devstate_error *err)
{
	struct devstate_instance devs[SUBJECTS];

	instances(m, devs);
	return devstate_load(devs, SUBJECTS, buf, len, err);
}

static void test_table_rows_are_sound(void **state)
{
	(void)state;
	for (unsigned r = 0; r < device_table_count; r++) {
		const struct devstate_desc *d = device_table[r];
		bool tested = false;

		for (unsigned i = 0; i < SUBJECTS; i++)
			tested |= subjects[i].desc == d;
		if (!tested)
			fail_msg("%s has no test subject", d->name);
		assert_in_range(strlen(d->name), 1, DEVSTATE_NAME_MAX);
		for (unsigned o = 0; o < r; o++)
			assert_string_not_equal(d->name, device_table[o]->name);
		assert_true(d->version >= 1);
		assert_non_null(d->reset);
		for (unsigned i = 0; i < d->field_count; i++) {
			const struct devstate_field *f = &d->fields[i];
			uint64_t type_max = width(f->type) == 8 ? UINT64_MAX :
					    (1ULL << (8 * width(f->type))) - 1;

			assert_in_range(f->since, 1, d->version);
			assert_true(f->min <= f->max && f->max <= type_max);
			if (f->type == DEVSTATE_BOOL)
				assert_true(f->max <= 1);
			assert_true(f->count >= 1);
			assert_true(f->offset + (size_t)(f->count - 1) * f->stride + width(f->type) <=
				    d->size);
		}
	}
}

static void test_reset_every_device(void **state)
{
	(void)state;
	power_on(&a);
	power_on(&b);
	for (unsigned i = 0; i < SUBJECTS; i++) {
		subjects[i].drive(state_of(&a, i));
		if (!fields_differ(subjects[i].desc, state_of(&a, i), state_of(&b, i)))
			fail_msg("subject %u (%s): driving it changed nothing", i, subjects[i].desc->name);
		subjects[i].desc->reset(state_of(&a, i));
		assert_fields_equal(subjects[i].desc, state_of(&a, i), state_of(&b, i));
	}
	/* The wiring is not the device's to reset. */
	assert_ptr_equal(a.vuart.tx, count_tx);
	assert_ptr_equal(a.ioapic.deliver, accept_all);
	assert_int_equal(a.rtc.host_epoch_s, MACHINE_EPOCH);
	assert_int_equal(a.lapic.cfg.bus_hz, MACHINE_LAPIC_BUS_HZ);
	assert_int_equal(a.lapic.cfg.phys_addr_bits, 39);
	assert_ptr_equal(a.lapic.ctx, &a);
}

static void test_save_load_every_device(void **state)
{
	(void)state;
	static uint8_t buf[4096], again[4096];
	struct devstate_error err = { "" };

	power_on(&a);
	power_on(&b);
	for (unsigned i = 0; i < SUBJECTS; i++)
		subjects[i].drive(state_of(&a, i));
	/* The drivers got as far as the devices' work. */
	assert_int_equal(a.blk.vq.used_idx, 1);
	assert_int_equal(a.net.vq[VIRTIO_NET_TXQ].used_idx, 1);
	assert_true(virtio_device_ready(&a.blk.dev) && virtio_device_ready(&a.net.dev));
	assert_int_equal(a.virtio[0].msix_table[1][2], 0x41);
	assert_int_equal(pci_config_get(&a.pci.devices[1], PCI_BAR0, 4), 0xfebf0004);
	assert_int_equal(a.pci.state.address, 0x80000818);
	/* The I/O APIC's reset keeps its ID: a guest-written one is saved. */
	ioapic_select_write(&a.ioapic, 0x00, 0x05000000);
	size_t n = save(&a, buf, sizeof(buf));
	struct devstate_instance devs[SUBJECTS];
	instances(&a, devs);
	assert_int_equal(devstate_save(devs, SUBJECTS, buf, n - 1), 0);
	if (!load(&b, buf, n, &err))
		fail_msg("%s", err.text);
	for (unsigned i = 0; i < SUBJECTS; i++)
		assert_fields_equal(subjects[i].desc, state_of(&a, i), state_of(&b, i));
	assert_int_equal(save(&b, again, sizeof(again)), n);
	assert_memory_equal(buf, again, n);
	for (unsigned i = 0; i < SUBJECTS; i++) {
		uint8_t pa[PROBE_MAX], pb[PROBE_MAX];
		size_t la = subjects[i].probe(state_of(&a, i), pa);
		size_t lb = subjects[i].probe(state_of(&b, i), pb);
		assert_int_equal(la, lb);
		assert_memory_equal(pa, pb, la);
	}
	assert_ptr_equal(b.vuart.tx, count_tx);
	assert_ptr_equal(b.ioapic.deliver, accept_all);
}

/* Refused: false, the expected text, and not one byte of any device changed. */
static void assert_refused(const uint8_t *buf, size_t len, const char *expected)
{
	struct devstate_error err = { "" };
	struct machine before;

	power_on(&b);
	subjects[0].drive(&b.pic);
	memcpy(&before, &b, sizeof(b));
	if (load(&b, buf, len, &err))
		fail_msg("loaded, expected \"%s\"", expected);
	if (!strstr(err.text, expected))
		fail_msg("\"%s\" does not say \"%s\"", err.text, expected);
	assert_memory_equal(&before, &b, sizeof(b));
}

static void test_truncated_at_every_length(void **state)
{
	(void)state;
	static uint8_t buf[4096];
	size_t ends[SUBJECTS], end = 0;
	struct devstate_error err;

	struct devstate_instance devs[SUBJECTS];

	power_on(&a);
	instances(&a, devs);
	for (unsigned i = 0; i < SUBJECTS; i++) {
		subjects[i].drive(devs[i].state);
		end += devstate_saved_size(&devs[i], 1);
		ends[i] = end;
	}
	size_t n = save(&a, buf, sizeof(buf));
	unsigned next = 0;
	for (size_t len = 0; len < n; len++) {
		if (len == 0 || len == ends[next]) {
			/* Whole records: those devices load, the others keep their state. */
			next += len != 0;
			power_on(&b);
			assert_true(load(&b, buf, len, &err));
			for (unsigned i = 0; i < next; i++)
				assert_fields_equal(subjects[i].desc, state_of(&a, i), state_of(&b, i));
			continue;
		}
		assert_refused(buf, len, "truncated");
	}
}

/* Where element e of field f of the first record starts in a save of the subjects. */
static size_t element_at(unsigned subject, const struct devstate_field *field, unsigned e)
{
	struct devstate_instance devs[SUBJECTS];
	size_t at = 0;

	instances(&a, devs);
	for (unsigned i = 0; i < subject; i++)
		at += devstate_saved_size(&devs[i], 1);
	const struct devstate_desc *d = subjects[subject].desc;
	at += 1 + strlen(devs[subject].name ? devs[subject].name : d->name) + 2 + 4;
	for (const struct devstate_field *f = d->fields; f != field; f++)
		at += (size_t)f->count * width(f->type);
	return at + (size_t)e * width(field->type);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_every_out_of_range_field_refused(void **state)
{
	(void)state;
	static uint8_t buf[4096], bad[4096];
	char expected[DEVSTATE_ERROR_MAX];
	unsigned refused = 0;

	struct devstate_instance devs[SUBJECTS];

	power_on(&a);
	instances(&a, devs);
	size_t n = save(&a, buf, sizeof(buf));
	for (unsigned s = 0; s < SUBJECTS; s++) {
		const struct devstate_desc *d = subjects[s].desc;
		const char *name = devs[s].name ? devs[s].name : d->name;
		for (unsigned i = 0; i < d->field_count; i++) {
			const struct devstate_field *f = &d->fields[i];
			unsigned w = width(f->type);
			uint64_t type_max = w == 8 ? UINT64_MAX : (1ULL << (8 * w)) - 1;
			/* The first and the last element, just past each end of the range. */
			for (unsigned e = 0; e < f->count; e += f->count - 1) {
				uint64_t outside[2] = { f->min - 1, f->max + 1 };
				bool exists[2] = { f->min > 0, f->max < type_max };
				for (unsigned k = 0; k < 2; k++) {
					if (!exists[k])
						continue;
					memcpy(bad, buf, n);
					put_le(bad + element_at(s, f, e), outside[k], w);
					const char *br = strstr(f->name, "[]");
					if (br)
						snprintf(expected, sizeof(expected),
							 "%s: field %.*s[%u]%s = %llu out of range",
							 name, (int)(br - f->name), f->name, e, br + 2,
							 (unsigned long long)outside[k]);
					else
						snprintf(expected, sizeof(expected),
							 "%s: field %s = %llu out of range", name,
							 f->name, (unsigned long long)outside[k]);
					assert_refused(bad, n, expected);
					refused++;
				}
				if (f->count == 1)
					break;
			}
		}
	}
	/*
	 * At least the PIC's init_step and vector_base on both chips, the RTC's
	 * index and reg_a, the UART's ier, mcr, rx_head and rx_count, the I/O
	 * APIC's id and lines, and every bool.
	 */
	assert_true(refused >= 20);
}

static unsigned subject_of(const struct devstate_desc *d)
{
	for (unsigned i = 0; i < SUBJECTS; i++) {
		if (subjects[i].desc == d)
			return i;
	}
	fail_msg("%s is no subject", d->name);
	return 0;
}

/* Where element e of the field named name of device d is in a save of the subjects. */
static size_t field_at(const struct devstate_desc *d, const char *name, unsigned e)
{
	for (unsigned i = 0; i < d->field_count; i++) {
		if (strcmp(d->fields[i].name, name) == 0)
			return element_at(subject_of(d), &d->fields[i], e);
	}
	fail_msg("%s has no field %s", d->name, name);
	return 0;
}

/* A copy of buf with element e of a field replaced by value, refused with expected. */
static void assert_field_refused(const uint8_t *buf, size_t n, const struct devstate_desc *d,
				 const char *field, unsigned e, uint64_t value, unsigned width,
				 const char *expected)
{
	static uint8_t bad[4096];

	memcpy(bad, buf, n);
	put_le(bad + field_at(d, field, e), value, width);
	assert_refused(bad, n, expected);
}

static void test_the_issue_examples(void **state)
{
	(void)state;
	static uint8_t buf[4096], bad[4096];

	power_on(&a);
	size_t n = save(&a, buf, sizeof(buf));
	assert_field_refused(buf, n, &pit_state_desc, "c[].mode", 2, 6, 1,
			     "pit: field c[2].mode = 6 out of range 0..5");
	assert_field_refused(buf, n, &ioapic_state_desc, "lines", 0, 1U << 24, 4,
			     "ioapic: field lines = 16777216 out of range 0..16777215");
	assert_field_refused(buf, n, &lapic_state_desc, "regs.irr[]", 0, 1U << 15, 4,
			     "lapic: field regs.irr[0] = 0x8000 sets vector 15, below 16");
	assert_field_refused(buf, n, &lapic_state_desc, "regs.isr[]", 0, 1U << 3, 4,
			     "lapic: field regs.isr[0] = 0x8 sets vector 3, below 16");
	/* pic: 2-byte name "pic" header, then irr, isr, imr, vector_base, elcr, lines, init_step. */
	memcpy(bad, buf, n);
	bad[1 + 3 + 6 + 6 * 2 + 1] = 7;
	assert_refused(bad, n, "pic: field chip[1].init_step = 7 out of range 0..4");
	memcpy(bad, buf, n);
	bad[1 + 3 + 6 + 3 * 2] = 0x21;
	assert_refused(bad, n, "pic: field chip[0].vector_base = 0x21 has bits 2:0 set");
}

/* Cross-field checks: a value in its field's range the model still cannot hold. */
static void test_checks_refuse(void **state)
{
	(void)state;
	static uint8_t buf[4096], bad[4096];

	power_on(&a);
	size_t n = save(&a, buf, sizeof(buf));
	const struct devstate_field *offset_s = &rtc_state_desc.fields[3];
	const struct devstate_field *redir = &ioapic_state_desc.fields[3];
	const struct devstate_field *control = &acpi_pm_state_desc.fields[2];
	assert_string_equal(offset_s->name, "offset_s");
	assert_string_equal(redir->name, "redir[]");
	assert_string_equal(control->name, "pm1_control");

	memcpy(bad, buf, n);
	put_le(bad + element_at(1, offset_s, 0), (uint64_t)-(int64_t)(MACHINE_EPOCH + 1), 8);
	assert_refused(bad, n, "rtc: field offset_s = -1700000001 puts the clock outside 1970..9999");
	memcpy(bad, buf, n);
	put_le(bad + element_at(1, offset_s, 0), 1ULL << 62, 8);
	assert_refused(bad, n, "rtc: field offset_s = 4611686018427387904");

	memcpy(bad, buf, n);
	put_le(bad + element_at(3, redir, 5), IOAPIC_REDIR_MASKED | 1ULL << 12, 8);
	assert_refused(bad, n, "ioapic: field redir[5] = 0x11000 sets reserved bits 0x1000");
	memcpy(bad, buf, n);
	put_le(bad + element_at(3, redir, 23), IOAPIC_REDIR_REMOTE_IRR | 0x30, 8);
	assert_refused(bad, n, "ioapic: field redir[23] = 0x4030 has Remote IRR on an entry no EOI ends");

	memcpy(bad, buf, n);
	put_le(bad + element_at(4, control, 0), 0, 2);
	assert_refused(bad, n, "acpi_pm: field pm1_control = 0x0 needs SCI_EN set");
	put_le(bad + element_at(4, control, 0), ACPI_PM1_CNT_SCI_EN | ACPI_PM1_CNT_SLP_EN, 2);
	assert_refused(bad, n, "acpi_pm: field pm1_control = 0x2001");

	assert_field_refused(buf, n, &pit_state_desc, "c[].mode", 1, 4, 1,
			     "pit: field c[1].mode = 4 is stored as mode 0 by this model");
	assert_field_refused(buf, n, &pit_state_desc, "c[].gate", 0, 0, 1,
			     "pit: field c[0].gate = 0 on a counter whose gate is tied high");

	static const struct {
		const struct devstate_desc *desc;
		const char *field;
		unsigned element;
		uint64_t value;
		unsigned width;
		const char *expected;
	} cases[] = {
		{ &lapic_state_desc, "apic_base", 0, LAPIC_DEFAULT_BASE | LAPIC_BASE_BSP | LAPIC_BASE_EXTD, 8,
		  "lapic: field apic_base = 0xfee00500 has x2APIC mode" },
		{ &lapic_state_desc, "apic_base", 0, 1ULL << 39 | LAPIC_BASE_BSP, 8,
		  "lapic: field apic_base = 0x8000000100 sets reserved bits" },
		{ &lapic_state_desc, "apic_base", 0, LAPIC_DEFAULT_BASE | LAPIC_BASE_EN, 8,
		  "lapic: field apic_base = 0xfee00800 lacks the BSP bit" },
		{ &lapic_state_desc, "regs.tmr[]", 0, 1U << 0, 4,
		  "lapic: field regs.tmr[0] = 0x1 sets vector 0, below 16" },
		{ &lapic_state_desc, "regs.irr[]", 3, 1U << 2, 4,
		  "lapic: field regs.irr_nonzero = 0 disagrees with regs.irr" },
		{ &lapic_state_desc, "regs.ldr", 0, 0x01000001, 4,
		  "lapic: field regs.ldr = 0x1000001 is not an xAPIC logical ID" },
		{ &lapic_state_desc, "regs.dfr", 0, 0xf0000001, 4,
		  "lapic: field regs.dfr = 0xf0000001 sets bits 27:0" },
		{ &lapic_state_desc, "regs.esr_pending", 0, 0x10, 4,
		  "lapic: field regs.esr = 0x0 (pending 0x10) holds an error" },
		{ &lapic_state_desc, "regs.icr_low", 0, 0x1000, 4,
		  "lapic: field regs.icr_low = 0x1000 sets reserved bits" },
		{ &lapic_state_desc, "regs.icr_high", 0, 0x01000001, 4,
		  "lapic: field regs.icr_high = 0x1000001 sets bits 23:0 outside x2APIC" },
		{ &lapic_state_desc, "regs.lvt[]", LAPIC_LVT_ERROR, 0x700 | 0x30, 4,
		  "lapic: field regs.lvt[5] = 0x730 sets bits this entry does not have" },
		{ &lapic_state_desc, "regs.timer_divide", 0, 0x4, 4,
		  "lapic: field regs.timer_divide = 0x4 sets bit 2" },
		{ &lapic_state_desc, "regs.tsc_deadline", 0, 1000, 8,
		  "lapic: field regs.tsc_deadline is armed outside its timer mode" },
		/* Software-disabled (SVR bit 8 clear) with LINT0 left unmasked by lapic_init. */
		{ &lapic_state_desc, "regs.svr", 0, 0xff, 4,
		  "lapic: field regs.lvt[3] = 0x8700 is unmasked in a software-disabled APIC" },
		{ &pci_bus_state_desc, "address", 0, 0x01000000, 4,
		  "pci: field address = 0x1000000 sets bits 30:24 or 1:0" },
		{ &pci_function_state_desc, "command", 0, PCI_COMMAND_MEMORY | 0x1, 2,
		  "pci0: field command changes bits 0x1 of configuration byte 0x4, which registration" },
		{ &pci_function_state_desc, "status", 0, PCI_STATUS_CAP_LIST, 2,
		  "pci0: field status changes bits 0x10 of configuration byte 0x6" },
		{ &pci_function_state_desc, "bar[]", 2, 0x1000, 4,
		  "pci0: field bar[2] changes bits 0x10 of configuration byte 0x19" },
		{ &pci_function_state_desc, "capabilities[]", 0, 0x11, 1,
		  "pci0: field capabilities[0] changes bits 0x11 of configuration byte 0x40" },
		{ &pci_function_state_desc, "intx_out", 0, 1, 1,
		  "pci0: field intx_out = 1 disagrees with status and command" },
		{ &virtio_pci_state_desc, "msix_table[]", 4, 0xfee00001, 4,
		  "virtio_pci1: field msix_table[4] = 0xfee00001: vector 1 of 2, word 0" },
		{ &virtio_pci_state_desc, "msix_table[]", 4 * 3 + 3, 0, 4,
		  "virtio_pci1: field msix_table[15] = 0x0: vector 3 of 2, word 3" },
		{ &virtio_pci_state_desc, "msix_pending", 0, 4, 4,
		  "virtio_pci1: field msix_pending = 0x4 names a vector past 1" },
		{ &virtio_blk_state_desc, "dev.status", 0, 0x10, 1,
		  "virtio_blk: field dev.status = 0x10 sets undefined bits" },
		{ &virtio_blk_state_desc, "dev.status", 0, VIRTIO_STATUS_DRIVER_OK, 1,
		  "virtio_blk: field dev.status = 0x4 has DRIVER_OK without FEATURES_OK" },
		{ &virtio_blk_state_desc, "dev.status", 0, VIRTIO_STATUS_FEATURES_OK, 1,
		  "virtio_blk: field dev.driver_features = 0x0 accepted, but offered were 0x" },
		{ &virtio_blk_state_desc, "dev.config_msix_vector", 0, 2, 2,
		  "virtio_blk: field dev.config_msix_vector = 2, the transport maps 0..1" },
		{ &virtio_blk_state_desc, "dev.queues[].desc", 1, 0x1000, 8,
		  "virtio_blk: field dev.queues[1] is set up, the device has 1 queues" },
		{ &virtio_blk_state_desc, "dev.queues[].msix_vector", 0, 5, 2,
		  "virtio_blk: field dev.queues[0].msix_vector = 5, the transport maps 0..1" },
		{ &virtio_blk_state_desc, "dev.queues[].enabled", 0, 1, 1,
		  "virtio_blk: field dev.queues[0].enabled on a queue of size 256 at 0x0/0x0/0x0 that" },
		{ &virtio_net_state_desc, "dev.queues[].msix_vector", 1, 3, 2,
		  "virtio_net0: field dev.queues[1].msix_vector = 3, the transport maps 0..2" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_field_refused(buf, n, cases[i].desc, cases[i].field, cases[i].element,
				     cases[i].value, cases[i].width, cases[i].expected);

	/* In TSC-deadline mode it is the initial count that may not be armed. */
	const struct devstate_desc *l = &lapic_state_desc;
	const uint32_t tsc_mode = LAPIC_LVT_MASKED | 2U << 17 | 0x40;
	memcpy(bad, buf, n);
	put_le(bad + field_at(l, "regs.lvt[]", LAPIC_LVT_TIMER), tsc_mode, 4);
	put_le(bad + field_at(l, "regs.tsc_deadline", 0), 1000, 8);
	struct devstate_error err;
	power_on(&b);
	assert_true(load(&b, bad, n, &err));
	assert_int_equal(b.lapic.regs.tsc_deadline, 1000);
	put_le(bad + field_at(l, "regs.timer_initial", 0), 5, 4);
	assert_refused(bad, n, "lapic: field regs.timer_initial is armed outside its timer mode");
}

static void test_bad_headers_refused(void **state)
{
	(void)state;
	static uint8_t buf[4096], bad[4096];
	size_t n;

	power_on(&a);
	n = save(&a, buf, sizeof(buf));

	memcpy(bad, buf, n);
	memcpy(bad + 1, "dma", 3);
	assert_refused(bad, n, "devstate: unknown device 'dma'");
	memcpy(bad, buf, n);
	bad[0] = 0;
	assert_refused(bad, n, "name length 0 not 1..16");
	bad[0] = DEVSTATE_NAME_MAX + 1;
	assert_refused(bad, n, "name length 17 not 1..16");

	memcpy(bad, buf, n);
	bad[1 + 3] = 2; /* pic version 2 */
	assert_refused(bad, n, "pic: version 2 unknown, this build reads 1..1");
	bad[1 + 3] = 0;
	assert_refused(bad, n, "pic: version 0 unknown");

	memcpy(bad, buf, n);
	bad[1 + 3 + 2] = 23;
	assert_refused(bad, n, "pic: payload of 23 bytes, version 1 has 22");
	memcpy(bad, buf, n);
	bad[1 + 3 + 5] = 0x80; /* a length near 2^32 */
	assert_refused(bad, n, "pic: payload of 2147483670 bytes");

	/* Two devices a record could name. */
	struct devstate_instance twins[2] = { { &pic_state_desc, &a.pic, NULL },
					      { &pit_state_desc, &a.pit, "pic" } };
	struct devstate_error err;
	assert_false(devstate_load(twins, 2, buf, 0, &err));
	assert_string_equal(err.text, "devstate: two devices named 'pic'");

	/* A second pic record; the first alone would have changed the PIC. */
	struct devstate_instance pic_only = { &pic_state_desc, &a.pic, NULL };
	size_t pic_len = devstate_saved_size(&pic_only, 1);
	pic_drive(&a.pic);
	pic_write(&a.pic, 0, 1, 0x55); /* unlike the PIC assert_refused() loads into */
	assert_int_equal(devstate_save(&pic_only, 1, bad, sizeof(bad)), pic_len);
	memcpy(bad + pic_len, bad, pic_len);
	assert_refused(bad, 2 * pic_len, "pic: a second record");

	/* A valid PIC record followed by a refused RTC record changes nothing. */
	memcpy(bad + pic_len, buf + pic_len, n - pic_len);
	bad[pic_len + 1 + 3 + 6] = 0x80; /* rtc index */
	assert_refused(bad, n, "rtc: field index = 128 out of range 0..127");
}

/* A device whose version 2 added a field: records of version 1 still load. */
struct demo {
	uint8_t mode;
	uint16_t divisor; /* since version 2 */
	uint32_t counts[2];
	void *wiring;
};

static void demo_reset(void *state)
{
	struct demo *d = state;

	d->mode = 1;
	d->divisor = 0x1234;
	d->counts[0] = d->counts[1] = 0;
}

static const struct devstate_field demo_fields[] = {
	DEVSTATE_FIELD(struct demo, mode, DEVSTATE_U8, 0, 5, 1),
	DEVSTATE_FIELD(struct demo, divisor, DEVSTATE_U16, 1, 0xffff, 2),
	DEVSTATE_ARRAY(struct demo, counts, DEVSTATE_U32, 0, 1000, 1),
};
static const struct devstate_desc demo_desc =
	DEVSTATE_DESC(struct demo, "demo", 2, demo_fields, demo_reset, NULL);

static void test_older_version_loads_with_reset_values(void **state)
{
	(void)state;
	struct demo live = { 4, 7, { 9, 9 }, &live };
	struct devstate_instance dev = { &demo_desc, &live, NULL };
	struct devstate_error err = { "" };
	/* Version 1: mode 3, counts 10 and 1000. */
	uint8_t v1[] = { 4, 'd', 'e', 'm', 'o', 1, 0, 9, 0, 0, 0,
			 3, 10, 0, 0, 0, 0xe8, 3, 0, 0 };
	uint8_t v2[sizeof(v1) + 2];

	if (!devstate_load(&dev, 1, v1, sizeof(v1), &err))
		fail_msg("%s", err.text);
	assert_int_equal(live.mode, 3);
	assert_int_equal(live.divisor, 0x1234);
	assert_int_equal(live.counts[0], 10);
	assert_int_equal(live.counts[1], 1000);
	assert_ptr_equal(live.wiring, &live);

	/* This build writes version 2, with the field. */
	live.divisor = 0xbeef;
	assert_int_equal(devstate_save(&dev, 1, v2, sizeof(v2)), sizeof(v2));
	assert_int_equal(v2[5], 2);
	assert_int_equal(v2[7], 11);
	assert_int_equal(v2[12], 0xef);
	assert_int_equal(v2[13], 0xbe);
	live.divisor = 0;
	assert_true(devstate_load(&dev, 1, v2, sizeof(v2), &err));
	assert_int_equal(live.divisor, 0xbeef);

	/* A version 1 record with version 2's length is refused. */
	v2[5] = 1;
	assert_false(devstate_load(&dev, 1, v2, sizeof(v2), &err));
	assert_string_equal(err.text, "demo: payload of 11 bytes, version 1 has 9");
	v1[16] = 0xe9; /* counts[1] = 1001 */
	assert_false(devstate_load(&dev, 1, v1, sizeof(v1), &err));
	assert_string_equal(err.text, "demo: field counts[1] = 1001 out of range 0..1000");
	assert_int_equal(live.counts[1], 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_rows_are_sound),
		cmocka_unit_test(test_reset_every_device),
		cmocka_unit_test(test_save_load_every_device),
		cmocka_unit_test(test_truncated_at_every_length),
		cmocka_unit_test(test_every_out_of_range_field_refused),
		cmocka_unit_test(test_the_issue_examples),
		cmocka_unit_test(test_checks_refuse),
		cmocka_unit_test(test_bad_headers_refused),
		cmocka_unit_test(test_older_version_loads_with_reset_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
