#include "devices/virtio_pci.h"

#include <stddef.h>
#include <string.h>

/* struct virtio_pci_cap and its cfg_type values (virtio 1.1 4.1.4). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CAP_PCI_CFG 5
#define CAP_LEN 2
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_SIZE 16
#define NOTIFY_CAP_MULTIPLIER 16 /* struct virtio_pci_notify_cap */
#define NOTIFY_CAP_SIZE 20
#define PCI_CFG_CAP_DATA 16 /* struct virtio_pci_cfg_cap */
#define PCI_CFG_CAP_SIZE 20

/* MSI-X capability and table (PCI 3.0 6.8.2). */
#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_PBA 8
#define MSIX_CAP_SIZE 12
#define MSIX_ENABLE 0x8000
#define MSIX_FUNCTION_MASK 0x4000
#define MSIX_ENTRY_SIZE 16
#define MSIX_ADDRESS_LO 0
#define MSIX_ADDRESS_HI 1
#define MSIX_DATA 2
#define MSIX_CONTROL_WORD 3
#define MSIX_VECTOR_MASKED 1
#define MSIX_PBA_SIZE 8

_Static_assert(3 * CAP_SIZE + NOTIFY_CAP_SIZE + PCI_CFG_CAP_SIZE + MSIX_CAP_SIZE <= 256 - 0x40,
	       "the capabilities fit in configuration space");
_Static_assert(VIRTIO_PCI_MSIX_VECTORS <= 32, "the pending bits fit msix_pending");

/* struct virtio_pci_common_cfg (4.1.4.3). */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_NUMQ 0x12
#define COMMON_STATUS 0x14
#define COMMON_CFGGENERATION 0x15
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_DESCHI 0x24
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_AVAILHI 0x2c
#define COMMON_Q_USEDLO 0x30
#define COMMON_Q_USEDHI 0x34
#define COMMON_SIZE 0x38

#define ISR_QUEUE 1
#define ISR_CONFIG 2

enum region { REGION_NONE, REGION_COMMON, REGION_ISR, REGION_DEVICE, REGION_NOTIFY,
	      REGION_MSIX_TABLE, REGION_MSIX_PBA };

static void update_intx(struct virtio_pci *vp);

static uint16_t msix_control(const struct virtio_pci *vp)
{
	return (uint16_t)pci_config_get(vp->pci, vp->msix_cap + MSIX_CONTROL, 2);
}

static bool msix_enabled(const struct virtio_pci *vp)
{
	return msix_control(vp) & MSIX_ENABLE;
}

/* A masked vector's message waits as a pending bit until unmasked (6.8.3.4). */
static void msix_send(struct virtio_pci *vp, unsigned vector)
{
	const uint32_t *entry = vp->msix_table[vector];

	if ((msix_control(vp) & MSIX_FUNCTION_MASK) ||
	    (entry[MSIX_CONTROL_WORD] & MSIX_VECTOR_MASKED)) {
		vp->msix_pending |= 1u << vector;
		return;
	}
	vp->msix_pending &= ~(1u << vector);
	vp->irq.msi(vp->irq.ctx, (uint64_t)entry[MSIX_ADDRESS_HI] << 32 | entry[MSIX_ADDRESS_LO],
		    entry[MSIX_DATA]);
}

/* After an unmask or enable: pending messages whose vector is now open go out. */
static void msix_flush(struct virtio_pci *vp)
{
	if (!msix_enabled(vp))
		return;
	for (unsigned v = 0; v < vp->msix_vectors; v++)
		if (vp->msix_pending & (1u << v))
			msix_send(vp, v);
}

static void raise_interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	bool msix = msix_enabled(vp);

	/*
	 * 4.1.4.5.1: the configuration bit is set in either mode, the queue
	 * bit only without MSI-X. With MSI-X enabled the function must not
	 * use INTx (PCI 3.0 6.8.2), so a NO_VECTOR source stays silent.
	 */
	if (!msix || isr_bit == ISR_CONFIG) {
		vp->dev->isr |= isr_bit;
		update_intx(vp);
	}
	if (msix && vector < vp->msix_vectors)
		msix_send(vp, vector);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	struct virtio_device *dev = vp->dev;

	dev->config_generation++;
	/* Also after NEEDS_RESET, which the driver learns of this way (2.1.2). */
	if (dev->status & VIRTIO_STATUS_DRIVER_OK)
		raise_interrupt(vp, dev->config_msix_vector, ISR_CONFIG);
}

static void interrupt(struct virtio_device *dev, unsigned queue)
{
	struct virtio_pci *vp = dev->interrupt_ctx;

	if (queue == VIRTIO_INTERRUPT_CONFIG) {
		virtio_pci_config_changed(vp);
		return;
	}
	/* No used buffer notifications before DRIVER_OK (2.1.2). */
	if (queue < dev->num_queues && virtio_device_ready(dev))
		raise_interrupt(vp, dev->queues[queue].msix_vector, ISR_QUEUE);
}

/*
 * INTx is the OR of the ISR bits while MSI-X is off (4.1.4.5.1); the PCI
 * layer applies command bit 10.
 */
static void update_intx(struct virtio_pci *vp)
{
	pci_set_intx(vp->pci, vp->dev->isr && !msix_enabled(vp));
}

static void transport_reset(struct virtio_pci *vp)
{
	struct virtio_device *dev = vp->dev;

	virtio_transport_fields_reset(dev);
	vp->device_feature_select = vp->driver_feature_select = 0;
	vp->queue_select = 0;
	vp->msix_pending = 0;
	update_intx(vp);
}

/* 3.1.1 step 5: only a subset of what was offered, and VERSION_1 (6.1), is accepted. */
static bool features_acceptable(const struct virtio_device *dev)
{
	return !(dev->driver_features & ~dev->device_features) &&
	       (dev->driver_features & (1ull << VIRTIO_F_VERSION_1));
}

static void write_status(struct virtio_pci *vp, uint8_t value)
{
	struct virtio_device *dev = vp->dev;
	uint8_t old = dev->status, status;

	if (!value) {
		dev->ops->reset(dev);
		transport_reset(vp);
		return;
	}
	/*
	 * The driver must not clear bits (2.1.1), so a write only adds them;
	 * NEEDS_RESET is the device's to set. FEATURES_OK sticks only for an
	 * acceptable feature set (3.1.1), and DRIVER_OK only after it: the
	 * device models may rely on negotiated features once DRIVER_OK is set.
	 */
	status = (uint8_t)(old | (value & ~VIRTIO_STATUS_NEEDS_RESET));
	if (!(old & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(dev))
		status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	if (!(status & VIRTIO_STATUS_FEATURES_OK))
		status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	dev->status = status;
}

static void write_driver_features(struct virtio_pci *vp, uint32_t value)
{
	struct virtio_device *dev = vp->dev;

	/* Frozen once FEATURES_OK was accepted: the device has acted on them. */
	if (dev->status & VIRTIO_STATUS_FEATURES_OK)
		return;
	if (vp->driver_feature_select == 0)
		dev->driver_features = (dev->driver_features & ~0xffffffffull) | value;
	else if (vp->driver_feature_select == 1)
		dev->driver_features = (dev->driver_features & 0xffffffffull) | (uint64_t)value << 32;
}

/* 4.1.5.1.2: a vector the device cannot map reads back as NO_VECTOR. */
static uint16_t checked_vector(const struct virtio_pci *vp, uint32_t vector)
{
	return vector < vp->msix_vectors ? (uint16_t)vector : VIRTIO_MSI_NO_VECTOR;
}

/* A queue the driver set up wrongly stays disabled, which it reads back. */
static void enable_queue(struct virtio_pci *vp, struct virtq_config *q)
{
	if (virtio_queue_usable(vp->dev, q))
		q->enabled = true;
}

static struct virtq_config *selected_queue(struct virtio_pci *vp)
{
	return vp->queue_select < vp->dev->num_queues ? &vp->dev->queues[vp->queue_select] : NULL;
}

/* The 64-bit ring address that common configuration offset off is one half of. */
static uint64_t *ring_address(struct virtq_config *q, unsigned off)
{
	uint64_t *const rings[] = { &q->desc, &q->driver, &q->device };
	return rings[(off - COMMON_Q_DESCLO) / 8];
}

#define HALF_SHIFT(off) (((off) & 4) ? 32 : 0)

/* 4.1.3.1: each field is accessed at its own width; anything else reads 0 and writes nothing. */
static unsigned common_width(unsigned off)
{
	switch (off) {
	case COMMON_STATUS:
	case COMMON_CFGGENERATION:
		return 1;
	case COMMON_MSIX:
	case COMMON_NUMQ:
	case COMMON_Q_SELECT:
	case COMMON_Q_SIZE:
	case COMMON_Q_MSIX:
	case COMMON_Q_ENABLE:
	case COMMON_Q_NOFF:
		return 2;
	default:
		return off < COMMON_SIZE && off % 4 == 0 ? 4 : 0;
	}
}

static uint32_t feature_half(uint64_t features, uint32_t select)
{
	return select < 2 ? (uint32_t)(features >> (32 * select)) : 0;
}

static uint32_t common_read(struct virtio_pci *vp, unsigned off)
{
	const struct virtio_device *dev = vp->dev;
	struct virtq_config *q = selected_queue(vp);

	switch (off) {
	case COMMON_DFSELECT:
		return vp->device_feature_select;
	case COMMON_DF:
		return feature_half(dev->device_features, vp->device_feature_select);
	case COMMON_GFSELECT:
		return vp->driver_feature_select;
	case COMMON_GF:
		return feature_half(dev->driver_features, vp->driver_feature_select);
	case COMMON_MSIX:
		return dev->config_msix_vector;
	case COMMON_NUMQ:
		return dev->num_queues;
	case COMMON_STATUS:
		return dev->status;
	case COMMON_CFGGENERATION:
		return (uint8_t)dev->config_generation;
	case COMMON_Q_SELECT:
		return vp->queue_select;
	}
	/* A queue that does not exist reads size 0, "unavailable" (4.1.4.3). */
	if (!q)
		return 0;
	switch (off) {
	case COMMON_Q_SIZE:
		return q->size;
	case COMMON_Q_MSIX:
		return q->msix_vector;
	case COMMON_Q_ENABLE:
		return q->enabled;
	case COMMON_Q_NOFF:
		return vp->queue_select;
	default:
		return (uint32_t)(*ring_address(q, off) >> HALF_SHIFT(off));
	}
}

static void common_write(struct virtio_pci *vp, unsigned off, uint32_t value)
{
	struct virtio_device *dev = vp->dev;
	struct virtq_config *q = selected_queue(vp);

	switch (off) {
	case COMMON_DFSELECT:
		vp->device_feature_select = value;
		return;
	case COMMON_GFSELECT:
		vp->driver_feature_select = value;
		return;
	case COMMON_GF:
		write_driver_features(vp, value);
		return;
	case COMMON_MSIX:
		dev->config_msix_vector = checked_vector(vp, value);
		return;
	case COMMON_STATUS:
		write_status(vp, (uint8_t)value);
		return;
	case COMMON_Q_SELECT:
		vp->queue_select = (uint16_t)value;
		return;
	}
	if (!q)
		return;
	switch (off) {
	case COMMON_Q_MSIX:
		q->msix_vector = checked_vector(vp, value);
		return;
	case COMMON_Q_ENABLE:
		/* 1.1 has no way back short of a reset: writing 0 is ignored. */
		if (value == 1 && !q->enabled)
			enable_queue(vp, q);
		return;
	}
	/* Size and rings are frozen while a device model may be walking them. */
	if (q->enabled)
		return;
	if (off == COMMON_Q_SIZE) {
		q->size = (uint16_t)value;
	} else if (off >= COMMON_Q_DESCLO) {
		uint64_t *address = ring_address(q, off);
		unsigned shift = HALF_SHIFT(off);
		*address = (*address & ~(0xffffffffull << shift)) | (uint64_t)value << shift;
	}
}

static void notify(struct virtio_pci *vp, unsigned off)
{
	struct virtio_device *dev = vp->dev;
	unsigned queue = off / VIRTIO_PCI_NOTIFY_MULTIPLIER;

	/* queue_notify_off is the queue index: each queue owns one slot (4.1.4.4). */
	if (off % VIRTIO_PCI_NOTIFY_MULTIPLIER || !dev->queues[queue].enabled ||
	    !virtio_device_ready(dev))
		return;
	dev->ops->queue_notify(dev, queue);
}

static uint8_t isr_read(struct virtio_pci *vp)
{
	uint8_t isr = vp->dev->isr;

	/* Reading clears the ISR and with it the INTx request (4.1.4.5). */
	vp->dev->isr = 0;
	update_intx(vp);
	return isr;
}

static void msix_table_write(struct virtio_pci *vp, unsigned off, uint32_t value)
{
	/* Address bits 1:0 and vector control bits 31:1 are reserved (6.8.2.6-9). */
	static const uint32_t writable[4] = { 0xfffffffc, 0xffffffff, 0xffffffff,
					      MSIX_VECTOR_MASKED };
	unsigned word = off % MSIX_ENTRY_SIZE / 4;

	vp->msix_table[off / MSIX_ENTRY_SIZE][word] = value & writable[word];
	if (word == MSIX_CONTROL_WORD)
		msix_flush(vp);
}

/* The structure holding BAR bytes [offset, offset + size), with *rel the offset inside it. */
static enum region find_region(const struct virtio_pci *vp, uint64_t offset, unsigned size,
			       unsigned *rel)
{
	const struct virtio_device *dev = vp->dev;
	const uint32_t spans[][2] = {
		[REGION_COMMON] = { VIRTIO_PCI_COMMON_OFFSET, COMMON_SIZE },
		[REGION_ISR] = { VIRTIO_PCI_ISR_OFFSET, 1 },
		[REGION_DEVICE] = { VIRTIO_PCI_DEVICE_OFFSET, dev->config_size },
		[REGION_NOTIFY] = { VIRTIO_PCI_NOTIFY_OFFSET,
				    dev->num_queues * VIRTIO_PCI_NOTIFY_MULTIPLIER },
		[REGION_MSIX_TABLE] = { VIRTIO_PCI_MSIX_TABLE_OFFSET,
					vp->msix_vectors * MSIX_ENTRY_SIZE },
		[REGION_MSIX_PBA] = { VIRTIO_PCI_MSIX_PBA_OFFSET, MSIX_PBA_SIZE },
	};

	for (unsigned r = REGION_COMMON; r <= REGION_MSIX_PBA; r++) {
		uint64_t start = spans[r][0], length = spans[r][1];
		if (offset >= start && offset - start < length && size <= length - (offset - start)) {
			*rel = (unsigned)(offset - start);
			return r;
		}
	}
	return REGION_NONE;
}

/* MSI-X structures take dword accesses only (6.8.2); others have no defined effect. */
static bool dword_access(unsigned rel, unsigned size)
{
	return size == 4 && rel % 4 == 0;
}

/* Everything not backed by a register reads 0. */
static uint32_t region_read(struct virtio_pci *vp, uint64_t offset, unsigned size)
{
	unsigned rel;

	if (size != 1 && size != 2 && size != 4)
		return 0;
	switch (find_region(vp, offset, size, &rel)) {
	case REGION_COMMON:
		return size == common_width(rel) ? common_read(vp, rel) : 0;
	case REGION_ISR:
		return isr_read(vp);
	case REGION_DEVICE:
		return vp->dev->ops->config_read(vp->dev, rel, size);
	case REGION_MSIX_TABLE:
		return dword_access(rel, size)
			       ? vp->msix_table[rel / MSIX_ENTRY_SIZE][rel % MSIX_ENTRY_SIZE / 4]
			       : 0;
	case REGION_MSIX_PBA:
		return dword_access(rel, size) && rel == 0 ? vp->msix_pending : 0;
	default:
		return 0;
	}
}

static void region_write(struct virtio_pci *vp, uint64_t offset, unsigned size, uint32_t value)
{
	unsigned rel;

	if (size != 1 && size != 2 && size != 4)
		return;
	switch (find_region(vp, offset, size, &rel)) {
	case REGION_COMMON:
		if (size == common_width(rel))
			common_write(vp, rel, value);
		return;
	case REGION_DEVICE:
		vp->dev->ops->config_write(vp->dev, rel, size, value);
		return;
	case REGION_NOTIFY:
		notify(vp, rel);
		return;
	case REGION_MSIX_TABLE:
		if (dword_access(rel, size))
			msix_table_write(vp, rel, value);
		return;
	default:
		return; /* the ISR and the pending bits are read-only */
	}
}

/* A quadword access is two dword accesses, low half first. */
static uint64_t bar_read(void *ctx, unsigned bar, uint64_t offset, unsigned size)
{
	(void)bar;
	if (size == 8)
		return region_read(ctx, offset, 4) | (uint64_t)region_read(ctx, offset + 4, 4) << 32;
	return region_read(ctx, offset, size);
}

static void bar_write(void *ctx, unsigned bar, uint64_t offset, unsigned size, uint64_t value)
{
	(void)bar;
	if (size == 8) {
		region_write(ctx, offset, 4, (uint32_t)value);
		region_write(ctx, offset + 4, 4, (uint32_t)(value >> 32));
		return;
	}
	region_write(ctx, offset, size, (uint32_t)value);
}

static bool overlaps(unsigned offset, unsigned size, unsigned start, unsigned length)
{
	return offset < start + length && start < offset + size;
}

/*
 * The BAR window the PCI_CFG capability selects (4.1.4.7), or false when
 * the driver programmed one with no defined meaning: another BAR, a length
 * other than 1, 2 or 4, or an offset not aligned to it.
 */
static bool pci_cfg_window(const struct virtio_pci *vp, uint32_t *offset, unsigned *length)
{
	const struct pci_function *fn = vp->pci;
	unsigned cap = vp->pci_cfg_cap;

	*offset = pci_config_get(fn, cap + CAP_OFFSET, 4);
	*length = pci_config_get(fn, cap + CAP_LENGTH, 4);
	return pci_config_get(fn, cap + CAP_BAR, 1) == VIRTIO_PCI_BAR &&
	       (*length == 1 || *length == 2 || *length == 4) && *offset % *length == 0;
}

/* 4.1.4.7.2: reading pci_cfg_data first reads the window into it. */
static void config_read(void *ctx, unsigned offset, unsigned size)
{
	struct virtio_pci *vp = ctx;
	unsigned data = vp->pci_cfg_cap + PCI_CFG_CAP_DATA, length;
	uint32_t window;

	if (overlaps(offset, size, data, 4) && pci_cfg_window(vp, &window, &length))
		pci_config_set(vp->pci, data, length, region_read(vp, window, length));
}

static void config_write(void *ctx, unsigned offset, unsigned size)
{
	struct virtio_pci *vp = ctx;
	unsigned data = vp->pci_cfg_cap + PCI_CFG_CAP_DATA, length;
	uint32_t window;

	/* MSI-X enable takes the pin off INTx; enable or unmask releases pending messages. */
	if (overlaps(offset, size, vp->msix_cap + MSIX_CONTROL, 2)) {
		update_intx(vp);
		msix_flush(vp);
	}
	/* 4.1.4.7.2: writing pci_cfg_data writes its first length bytes to the window. */
	if (overlaps(offset, size, data, 4) && pci_cfg_window(vp, &window, &length))
		region_write(vp, window, length, pci_config_get(vp->pci, data, length));
}

static const struct pci_function_ops pci_ops = {
	.config_read = config_read,
	.config_write = config_write,
	.bar_read = bar_read,
	.bar_write = bar_write,
};

static unsigned add_virtio_cap(struct pci_function *fn, uint8_t type, unsigned cap_len,
			       uint32_t offset, uint32_t length)
{
	/* Fits by the static assertion above: the list starts empty. */
	unsigned cap = (unsigned)pci_add_capability(fn, PCI_CAP_ID_VNDR, cap_len);

	pci_config_set(fn, cap + CAP_LEN, 1, cap_len);
	pci_config_set(fn, cap + CAP_CFG_TYPE, 1, type);
	pci_config_set(fn, cap + CAP_BAR, 1, VIRTIO_PCI_BAR);
	pci_config_set(fn, cap + CAP_OFFSET, 4, offset);
	pci_config_set(fn, cap + CAP_LENGTH, 4, length);
	return cap;
}

static void add_capabilities(struct virtio_pci *vp)
{
	struct pci_function *fn = vp->pci;
	const struct virtio_device *dev = vp->dev;
	unsigned cap;

	/* Linux takes the first capability of each cfg_type (4.1.4.1). */
	add_virtio_cap(fn, CAP_COMMON, CAP_SIZE, VIRTIO_PCI_COMMON_OFFSET, COMMON_SIZE);
	cap = add_virtio_cap(fn, CAP_NOTIFY, NOTIFY_CAP_SIZE, VIRTIO_PCI_NOTIFY_OFFSET,
			     dev->num_queues * VIRTIO_PCI_NOTIFY_MULTIPLIER);
	pci_config_set(fn, cap + NOTIFY_CAP_MULTIPLIER, 4, VIRTIO_PCI_NOTIFY_MULTIPLIER);
	add_virtio_cap(fn, CAP_ISR, CAP_SIZE, VIRTIO_PCI_ISR_OFFSET, 1);
	add_virtio_cap(fn, CAP_DEVICE, CAP_SIZE, VIRTIO_PCI_DEVICE_OFFSET, dev->config_size);

	/* The driver programs bar, offset and length, then moves data through pci_cfg_data. */
	cap = add_virtio_cap(fn, CAP_PCI_CFG, PCI_CFG_CAP_SIZE, 0, 0);
	pci_config_set_wmask(fn, cap + CAP_BAR, 1, 0xff);
	pci_config_set_wmask(fn, cap + CAP_OFFSET, 4, 0xffffffff);
	pci_config_set_wmask(fn, cap + CAP_LENGTH, 4, 0xffffffff);
	pci_config_set_wmask(fn, cap + PCI_CFG_CAP_DATA, 4, 0xffffffff);
	vp->pci_cfg_cap = (uint8_t)cap;

	cap = (unsigned)pci_add_capability(fn, PCI_CAP_ID_MSIX, MSIX_CAP_SIZE);
	pci_config_set(fn, cap + MSIX_CONTROL, 2, vp->msix_vectors - 1);
	pci_config_set(fn, cap + MSIX_TABLE, 4, VIRTIO_PCI_MSIX_TABLE_OFFSET | VIRTIO_PCI_BAR);
	pci_config_set(fn, cap + MSIX_PBA, 4, VIRTIO_PCI_MSIX_PBA_OFFSET | VIRTIO_PCI_BAR);
	pci_config_set_wmask(fn, cap + MSIX_CONTROL, 2, MSIX_ENABLE | MSIX_FUNCTION_MASK);
	vp->msix_cap = (uint8_t)cap;
}

/* Every vector starts masked (6.8.2.9), with no message programmed. */
static void msix_table_reset(struct virtio_pci *vp)
{
	memset(vp->msix_table, 0, sizeof(vp->msix_table));
	for (unsigned v = 0; v < VIRTIO_PCI_MSIX_VECTORS; v++)
		vp->msix_table[v][MSIX_CONTROL_WORD] = MSIX_VECTOR_MASKED;
}

static bool device_supported(const struct virtio_device *dev)
{
	const struct virtio_device_ops *ops = dev->ops;
	unsigned max = dev->queue_max_size;

	return dev->num_queues && dev->num_queues <= VIRTIO_MAX_QUEUES && max && max <= VIRTQ_MAX_SIZE &&
	       !(max & (max - 1)) && dev->config_size <= VIRTIO_PCI_DEVICE_MAX && ops &&
	       ops->config_read && ops->config_write && ops->queue_notify && ops->reset;
}

/* Class codes only label the function; the driver binds by vendor id. */
static uint32_t class_code(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return 0x020000; /* Ethernet controller */
	case VIRTIO_ID_BLOCK:
		return 0x018000; /* other mass storage controller */
	default:
		return 0xff0000; /* no class fits */
	}
}

int virtio_pci_init(struct virtio_pci *vp, struct pci_bus *bus, struct virtio_device *dev,
		    uint8_t interrupt_line, const struct virtio_pci_irq *irq)
{
	uint16_t pci_id = (uint16_t)(VIRTIO_PCI_DEVICE_ID_BASE + dev->device_id);
	/*
	 * Modern-only, so revision 1 and a subsystem id of 0x40 or above
	 * (4.1.2.1): the device id serves.
	 */
	const struct pci_function_info info = {
		.vendor_id = VIRTIO_PCI_VENDOR_ID,
		.device_id = pci_id,
		.subsystem_vendor_id = VIRTIO_PCI_VENDOR_ID,
		.subsystem_id = pci_id,
		.revision = VIRTIO_PCI_REVISION,
		.class_code = class_code(dev->device_id),
		.interrupt_pin = PCI_INTERRUPT_PIN_INTA,
		.interrupt_line = interrupt_line,
		.bars = { [VIRTIO_PCI_BAR] = { PCI_BAR_MEM64, false, VIRTIO_PCI_BAR_SIZE } },
		.ops = &pci_ops,
		.ctx = vp,
		.intx = irq->intx,
		.intx_ctx = irq->ctx,
	};

	if (!irq->msi || !device_supported(dev))
		return -1;
	memset(vp, 0, sizeof(*vp));
	vp->pci = pci_add_function(bus, &info);
	if (!vp->pci)
		return -1;
	vp->dev = dev;
	vp->irq = *irq;
	vp->msix_vectors = dev->num_queues + 1;
	msix_table_reset(vp);
	add_capabilities(vp);
	dev->interrupt = interrupt;
	dev->interrupt_ctx = vp;
	transport_reset(vp);
	return 0;
}

/* --- Device state ---------------------------------------------------------- */

static void virtio_pci_state_reset(void *state)
{
	struct virtio_pci *vp = state;

	vp->device_feature_select = vp->driver_feature_select = 0;
	vp->queue_select = 0;
	vp->msix_pending = 0;
	msix_table_reset(vp);
}

/*
 * msix_table_write keeps only the writable bits, and find_region never
 * reaches a vector at or past msix_vectors: those stay as reset left them.
 */
static bool virtio_pci_state_check(const void *state, const void *live, const char *device,
				   struct devstate_error *err)
{
	static const uint32_t writable[4] = { 0xfffffffc, 0xffffffff, 0xffffffff,
					      MSIX_VECTOR_MASKED };
	const struct virtio_pci *vp = state;

	(void)live;
	for (unsigned v = 0; v < VIRTIO_PCI_MSIX_VECTORS; v++) {
		for (unsigned w = 0; w < 4; w++) {
			uint32_t word = vp->msix_table[v][w];
			uint32_t unused = w == MSIX_CONTROL_WORD ? MSIX_VECTOR_MASKED : 0;
			if (v < vp->msix_vectors ? word & ~writable[w] : word != unused)
				return devstate_refuse(err, device, "msix_table[]", 4 * v + w,
						       "= 0x%x: vector %u of %u, word %u", word, v,
						       vp->msix_vectors, w);
		}
	}
	if (vp->msix_pending >> vp->msix_vectors)
		return devstate_refuse(err, device, "msix_pending", 0,
				       "= 0x%x names a vector past %u", vp->msix_pending,
				       vp->msix_vectors - 1);
	return true;
}

_Static_assert(sizeof(((struct virtio_pci *)0)->msix_table) == VIRTIO_PCI_MSIX_VECTORS * 16,
	       "msix_table[] is described as 4 words per vector");

static const struct devstate_field virtio_pci_fields[] = {
	DEVSTATE_FIELD(struct virtio_pci, device_feature_select, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct virtio_pci, driver_feature_select, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct virtio_pci, queue_select, DEVSTATE_U16, 0, 0xffff, 1),
	/* Vector v's word w (address low, address high, data, control) is element 4 v + w. */
	{ "msix_table[]", DEVSTATE_U32, offsetof(struct virtio_pci, msix_table),
	  VIRTIO_PCI_MSIX_VECTORS * 4, 4, 1, 0, UINT32_MAX },
	DEVSTATE_FIELD(struct virtio_pci, msix_pending, DEVSTATE_U32, 0, UINT32_MAX, 1),
};

const struct devstate_desc virtio_pci_state_desc =
	DEVSTATE_DESC(struct virtio_pci, "virtio_pci", 1, virtio_pci_fields,
		      virtio_pci_state_reset, virtio_pci_state_check);
