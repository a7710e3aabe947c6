#include "devices/pci.h"

#include <stddef.h>
#include <string.h>

/* CONFIG_ADDRESS fields (PCI 3.0 3.2.2.3.2). */
#define ADDRESS_ENABLE 0x80000000u
/* Bits 30:24 are reserved and 1:0 read as zero: they do not stick. */
#define ADDRESS_WRITABLE 0x80fffffcu
#define ADDRESS_BUS(a) (((a) >> 16) & 0xff)
#define ADDRESS_DEVICE(a) (((a) >> 11) & 0x1f)
#define ADDRESS_FUNCTION(a) (((a) >> 8) & 0x7)
#define ADDRESS_REGISTER(a) ((a) & 0xfc)
#define CONFIG_DATA_OFFSET 4

#define ALL_ONES 0xffffffffu
#define MIN_BAR_SIZE 0x1000u
/* Capabilities live after the 64-byte predefined header (PCI 3.0 6.7). */
#define CAP_START 0x40
#define BAR_FLAGS 0xf

static const struct pci_function_info host_bridge = {
	.vendor_id = 0x8086,
	.device_id = 0x1237, /* 82441FX PMC, the 440FX host bridge */
	.revision = 0x02,
	.class_code = 0x060000,
};

uint32_t pci_config_get(const struct pci_function *fn, unsigned offset, unsigned size)
{
	uint32_t value = 0;

	if (offset >= PCI_CONFIG_SIZE || size > 4 || size > PCI_CONFIG_SIZE - offset)
		return ALL_ONES;
	for (unsigned i = 0; i < size; i++)
		value |= (uint32_t)fn->config[offset + i] << (8 * i);
	return value;
}

/* Stores size little-endian bytes of value at offset in one of fn's byte arrays. */
static void put_bytes(uint8_t *array, unsigned offset, unsigned size, uint32_t value)
{
	if (offset >= PCI_CONFIG_SIZE || size > 4 || size > PCI_CONFIG_SIZE - offset)
		return;
	for (unsigned i = 0; i < size; i++)
		array[offset + i] = (uint8_t)(value >> (8 * i));
}

void pci_config_set(struct pci_function *fn, unsigned offset, unsigned size, uint32_t value)
{
	put_bytes(fn->config, offset, size, value);
}

void pci_config_set_wmask(struct pci_function *fn, unsigned offset, unsigned size,
			  uint32_t mask)
{
	put_bytes(fn->wmask, offset, size, mask);
}

static bool bars_valid(const struct pci_bar_info *bars)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t size = bars[i].size, limit;

		switch (bars[i].type) {
		case PCI_BAR_NONE:
			continue;
		case PCI_BAR_MEM32:
			limit = 1ull << 31;
			break;
		case PCI_BAR_MEM64:
			/* The upper half of the address takes the next BAR register. */
			if (i + 1 == PCI_NUM_BARS || bars[i + 1].type != PCI_BAR_NONE)
				return false;
			limit = 1ull << 63;
			break;
		default:
			return false;
		}
		if (size < MIN_BAR_SIZE || size > limit || (size & (size - 1)))
			return false;
	}
	return true;
}

/*
 * BAR sizing (PCI 3.0 6.2.5.1) falls out of the write mask: address bits
 * below the size and the type bits are read-only, so writing all ones
 * reads back the size mask with the type bits.
 */
static void setup_bar(struct pci_function *fn, unsigned i, const struct pci_bar_info *bar)
{
	unsigned reg = PCI_BAR0 + 4 * i;
	uint64_t mask = ~(bar->size - 1);
	uint32_t flags = bar->prefetchable ? PCI_BAR_MEM_PREFETCH : 0;

	fn->bar_size[i] = bar->size;
	if (bar->type == PCI_BAR_MEM64) {
		flags |= PCI_BAR_MEM_TYPE_64;
		pci_config_set_wmask(fn, reg + 4, 4, (uint32_t)(mask >> 32));
	}
	pci_config_set(fn, reg, 4, flags);
	pci_config_set_wmask(fn, reg, 4, (uint32_t)mask & ~BAR_FLAGS);
}

static void setup_function(struct pci_function *fn, const struct pci_function_info *info)
{
	memset(fn, 0, sizeof(*fn));
	pci_config_set(fn, PCI_VENDOR_ID, 2, info->vendor_id);
	pci_config_set(fn, PCI_DEVICE_ID, 2, info->device_id);
	pci_config_set(fn, PCI_REVISION_ID, 4, info->class_code << 8 | info->revision);
	pci_config_set(fn, PCI_SUBSYSTEM_VENDOR_ID, 2, info->subsystem_vendor_id);
	pci_config_set(fn, PCI_SUBSYSTEM_ID, 2, info->subsystem_id);
	pci_config_set(fn, PCI_INTERRUPT_PIN, 1, info->interrupt_pin);
	pci_config_set(fn, PCI_INTERRUPT_LINE, 1, info->interrupt_line);
	fn->interrupt_line_at_reset = info->interrupt_line;
	/*
	 * No I/O BARs, so the I/O space enable bit is hardwired to zero. Cache
	 * line size, latency timer and interrupt line are plain storage to the
	 * function (6.2.4); the line does not route anything.
	 */
	pci_config_set_wmask(fn, PCI_COMMAND, 2,
			     PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	pci_config_set_wmask(fn, PCI_CACHE_LINE_SIZE, 2, 0xffff);
	pci_config_set_wmask(fn, PCI_INTERRUPT_LINE, 1, 0xff);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (info->bars[i].type != PCI_BAR_NONE)
			setup_bar(fn, i, &info->bars[i]);
	fn->cap_free = CAP_START;
	fn->ops = info->ops;
	fn->ctx = info->ctx;
	fn->intx = info->intx;
	fn->intx_ctx = info->intx_ctx;
}

void pci_init(struct pci_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	setup_function(&bus->devices[0], &host_bridge);
	bus->count = 1;
}

struct pci_function *pci_add_function(struct pci_bus *bus, const struct pci_function_info *info)
{
	if (bus->count > PCI_MAX_DEVICES || !bars_valid(info->bars))
		return NULL;
	struct pci_function *fn = &bus->devices[bus->count++];
	setup_function(fn, info);
	return fn;
}

int pci_add_capability(struct pci_function *fn, uint8_t id, unsigned len)
{
	unsigned offset = fn->cap_free;

	if (len < 2 || len > PCI_CONFIG_SIZE - offset)
		return -1;
	pci_config_set(fn, offset, 2, id);
	/* Linux walks from the pointer at 0x34 through each next pointer (6.7). */
	if (fn->last_cap)
		pci_config_set(fn, fn->last_cap + 1u, 1, offset);
	else
		pci_config_set(fn, PCI_CAPABILITY_LIST, 1, offset);
	pci_config_set(fn, PCI_STATUS, 2, pci_config_get(fn, PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
	fn->last_cap = (uint8_t)offset;
	/* Capabilities are dword aligned: the bottom two pointer bits are reserved. */
	fn->cap_free = (uint16_t)((offset + len + 3) & ~3u);
	return (int)offset;
}

static void update_intx_pin(struct pci_function *fn)
{
	bool out = (pci_config_get(fn, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT) &&
		   !(pci_config_get(fn, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);

	if (out == fn->intx_out || !fn->intx)
		return;
	fn->intx_out = out;
	fn->intx(fn->intx_ctx, out);
}

void pci_set_intx(struct pci_function *fn, bool level)
{
	uint32_t status = pci_config_get(fn, PCI_STATUS, 2);

	status = level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
	pci_config_set(fn, PCI_STATUS, 2, status);
	update_intx_pin(fn);
}

static bool guest_access_ok(unsigned offset, unsigned size)
{
	return (size == 1 || size == 2 || size == 4) && offset < PCI_CONFIG_SIZE &&
	       size <= PCI_CONFIG_SIZE - offset;
}

uint32_t pci_config_read(struct pci_function *fn, unsigned offset, unsigned size)
{
	if (!guest_access_ok(offset, size))
		return ALL_ONES;
	if (fn->ops && fn->ops->config_read)
		fn->ops->config_read(fn->ctx, offset, size);
	return pci_config_get(fn, offset, size);
}

void pci_config_write(struct pci_function *fn, unsigned offset, unsigned size, uint32_t value)
{
	if (!guest_access_ok(offset, size))
		return;
	for (unsigned i = 0; i < size; i++) {
		uint8_t mask = fn->wmask[offset + i], byte = (uint8_t)(value >> (8 * i));
		fn->config[offset + i] = (uint8_t)((fn->config[offset + i] & ~mask) | (byte & mask));
	}
	/* Command bit 10 gates the pin whichever way it moves (6.2.2). */
	if (offset < PCI_COMMAND + 2 && offset + size > PCI_COMMAND)
		update_intx_pin(fn);
	if (fn->ops && fn->ops->config_write)
		fn->ops->config_write(fn->ctx, offset, size);
}

static uint64_t bar_base(const struct pci_function *fn, unsigned bar)
{
	uint32_t low = pci_config_get(fn, PCI_BAR0 + 4 * bar, 4);
	uint64_t base = low & ~(uint32_t)BAR_FLAGS;

	if (low & PCI_BAR_MEM_TYPE_64)
		base |= (uint64_t)pci_config_get(fn, PCI_BAR0 + 4 * (bar + 1), 4) << 32;
	return base;
}

bool pci_mmio_find(struct pci_bus *bus, uint64_t gpa, struct pci_function **fn, unsigned *bar,
		   uint64_t *offset)
{
	for (unsigned d = 0; d < bus->count; d++) {
		struct pci_function *f = &bus->devices[d];

		if (!(pci_config_get(f, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
			continue;
		for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
			uint64_t base = bar_base(f, b);
			/* One unsigned compare, correct even for a BAR at the top of memory. */
			if (f->bar_size[b] && gpa - base < f->bar_size[b]) {
				*fn = f;
				*bar = b;
				*offset = gpa - base;
				return true;
			}
		}
	}
	return false;
}

/* The function CONFIG_ADDRESS selects, or NULL: nothing answers, reads float to all ones. */
static struct pci_function *addressed(struct pci_bus *bus)
{
	uint32_t a = bus->state.address;

	/* Only function 0 of each device exists: header type bit 7 says single-function. */
	if (!(a & ADDRESS_ENABLE) || ADDRESS_BUS(a) || ADDRESS_FUNCTION(a) ||
	    ADDRESS_DEVICE(a) >= bus->count)
		return NULL;
	return &bus->devices[ADDRESS_DEVICE(a)];
}

/* The chipset register that a byte or word access to 0xcf8-0xcfb reaches, or NULL. */
static const struct port_device *chipset_port(const struct pci_bus *bus, uint16_t offset,
					      unsigned size)
{
	const struct port_device *d = &bus->chipset_port;
	uint32_t port = PCI_CONFIG_PORT + offset;

	if (port < d->base || port + size > (uint32_t)d->base + d->count)
		return NULL;
	return d;
}

static uint16_t chipset_offset(const struct port_device *d, uint16_t offset)
{
	return (uint16_t)(PCI_CONFIG_PORT + offset - d->base);
}

uint32_t pci_port_read(void *ctx, uint16_t offset, unsigned size)
{
	struct pci_bus *bus = ctx;

	if (offset == 0 && size == 4)
		return bus->state.address;
	if (offset + size <= CONFIG_DATA_OFFSET) {
		const struct port_device *d = chipset_port(bus, offset, size);
		return d && d->read ? d->read(d->ctx, chipset_offset(d, offset), size) : ALL_ONES;
	}
	struct pci_function *fn = addressed(bus);
	/* Accesses straddling the two registers, or past 0xcff, reach neither. */
	if (!fn || offset < CONFIG_DATA_OFFSET || offset + size > PCI_CONFIG_PORTS)
		return ALL_ONES;
	return pci_config_read(fn, ADDRESS_REGISTER(bus->state.address) + offset - CONFIG_DATA_OFFSET,
			       size);
}

void pci_port_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	struct pci_bus *bus = ctx;

	if (offset == 0 && size == 4) {
		bus->state.address = value & ADDRESS_WRITABLE;
		return;
	}
	if (offset + size <= CONFIG_DATA_OFFSET) {
		const struct port_device *d = chipset_port(bus, offset, size);
		if (d && d->write)
			d->write(d->ctx, chipset_offset(d, offset), size, value);
		return;
	}
	struct pci_function *fn = addressed(bus);
	if (!fn || offset < CONFIG_DATA_OFFSET || offset + size > PCI_CONFIG_PORTS)
		return;
	pci_config_write(fn, ADDRESS_REGISTER(bus->state.address) + offset - CONFIG_DATA_OFFSET, size,
			 value);
}

/* --- Device state ---------------------------------------------------------- */

static void pci_bus_state_reset(void *state)
{
	struct pci_bus_state *bus = state;

	bus->address = 0;
}

static bool pci_bus_state_check(const void *state, const void *live, const char *device,
				struct devstate_error *err)
{
	const struct pci_bus_state *bus = state;

	(void)live;
	if (bus->address & ~ADDRESS_WRITABLE)
		return devstate_refuse(err, device, "address", 0, "= 0x%x sets bits 30:24 or 1:0",
				       bus->address);
	return true;
}

static const struct devstate_field pci_bus_fields[] = {
	DEVSTATE_FIELD(struct pci_bus_state, address, DEVSTATE_U32, 0, UINT32_MAX, 1),
};

const struct devstate_desc pci_bus_state_desc = DEVSTATE_DESC(
	struct pci_bus_state, "pci", 1, pci_bus_fields, pci_bus_state_reset, pci_bus_state_check);

/* Every writable bit at its power-on value: zero, but for the line registration chose. */
static void pci_function_state_reset(void *state)
{
	struct pci_function *fn = state;

	for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++)
		fn->config[i] &= (uint8_t)~fn->wmask[i];
	pci_config_set(fn, PCI_STATUS, 2, pci_config_get(fn, PCI_STATUS, 2) & ~PCI_STATUS_INTERRUPT);
	pci_config_set(fn, PCI_INTERRUPT_LINE, 1, fn->interrupt_line_at_reset);
	fn->intx_out = false;
}

/* The described field a configuration byte belongs to, and the element. */
static const char *config_field(unsigned offset, unsigned *element)
{
	*element = 0;
	if (offset >= CAP_START) {
		*element = offset - CAP_START;
		return "capabilities[]";
	}
	if (offset >= PCI_BAR0 && offset < PCI_BAR0 + 4 * PCI_NUM_BARS) {
		*element = (offset - PCI_BAR0) / 4;
		return "bar[]";
	}
	return offset < PCI_STATUS ? "command" : "status";
}

/*
 * Only bits a guest write or the device's interrupt can change may differ
 * from the live function: the rest is what registration fixed.
 */
static bool pci_function_state_check(const void *state, const void *live, const char *device,
				     struct devstate_error *err)
{
	const struct pci_function *fn = state, *was = live;

	for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++) {
		uint8_t changeable = fn->wmask[i];
		if (i == PCI_STATUS)
			changeable |= PCI_STATUS_INTERRUPT;
		uint8_t fixed = (uint8_t)((fn->config[i] ^ was->config[i]) & ~changeable);
		if (fixed) {
			unsigned element;
			const char *field = config_field(i, &element);
			return devstate_refuse(err, device, field, element,
					       "changes bits 0x%x of configuration byte 0x%x, "
					       "which registration fixed",
					       fixed, i);
		}
	}
	bool out = (pci_config_get(fn, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT) &&
		   !(pci_config_get(fn, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);
	if (fn->intx_out != (out && fn->intx))
		return devstate_refuse(err, device, "intx_out", 0,
				       "= %d disagrees with status and command", fn->intx_out);
	return true;
}

/* A register inside a function's configuration bytes, described at its offset there. */
#define CONFIG_FIELD(name, type, offset, count) \
	{ name, type, offsetof(struct pci_function, config) + (offset), count, \
	  DEVSTATE_TYPE_SIZE(type), 1, 0, \
	  (type) == DEVSTATE_U8 ? 0xff : (type) == DEVSTATE_U16 ? 0xffff : UINT32_MAX }

static const struct devstate_field pci_function_fields[] = {
	CONFIG_FIELD("command", DEVSTATE_U16, PCI_COMMAND, 1),
	CONFIG_FIELD("status", DEVSTATE_U16, PCI_STATUS, 1),
	CONFIG_FIELD("cache_line_size", DEVSTATE_U8, PCI_CACHE_LINE_SIZE, 1),
	CONFIG_FIELD("latency_timer", DEVSTATE_U8, PCI_LATENCY_TIMER, 1),
	CONFIG_FIELD("bar[]", DEVSTATE_U32, PCI_BAR0, PCI_NUM_BARS),
	CONFIG_FIELD("interrupt_line", DEVSTATE_U8, PCI_INTERRUPT_LINE, 1),
	CONFIG_FIELD("capabilities[]", DEVSTATE_U8, CAP_START, PCI_CONFIG_SIZE - CAP_START),
	DEVSTATE_FIELD(struct pci_function, intx_out, DEVSTATE_BOOL, 0, 1, 1),
};

const struct devstate_desc pci_function_state_desc =
	DEVSTATE_DESC(struct pci_function, "pci_function", 1, pci_function_fields,
		      pci_function_state_reset, pci_function_state_check);
