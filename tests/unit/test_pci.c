#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/pci.h"

static struct pci_bus bus;

/* What the guest's INTx pin and the config hooks saw. */
static struct {
	bool level;
	unsigned changes;
	unsigned reads, writes;
	unsigned offset, size;
} seen;

static void intx(void *ctx, bool level)
{
	assert_ptr_equal(ctx, &seen);
	seen.level = level;
	seen.changes++;
}

static void hook_read(void *ctx, unsigned offset, unsigned size)
{
	(void)ctx;
	seen.reads++;
	seen.offset = offset;
	seen.size = size;
}

static void hook_write(void *ctx, unsigned offset, unsigned size)
{
	(void)ctx;
	seen.writes++;
	seen.offset = offset;
	seen.size = size;
}

static const struct pci_function_ops hooks = { .config_read = hook_read,
					       .config_write = hook_write };

/* Device 1: a 64-bit 16 KiB BAR at 0-1 and a 32-bit 8 KiB prefetchable one at 2. */
static const struct pci_function_info test_function = {
	.vendor_id = 0x1af4,
	.device_id = 0x1042,
	.subsystem_vendor_id = 0x1af4,
	.subsystem_id = 0x1100,
	.revision = 1,
	.class_code = 0x018000,
	.interrupt_pin = PCI_INTERRUPT_PIN_INTA,
	.interrupt_line = 11,
	.bars = { [0] = { PCI_BAR_MEM64, false, 0x4000 }, [2] = { PCI_BAR_MEM32, true, 0x2000 } },
	.ops = &hooks,
	.intx = intx,
	.intx_ctx = &seen,
};

static int setup(void **state)
{
	(void)state;
	memset(&seen, 0, sizeof(seen));
	pci_init(&bus);
	return pci_add_function(&bus, &test_function) ? 0 : -1;
}

static uint32_t address(unsigned device, unsigned reg)
{
	return 0x80000000u | device << 11 | (reg & 0xfc);
}

/* Mechanism #1 as Linux's pci_conf1_read does it: address, then data at 0xcfc + (reg & 3). */
static uint32_t conf1_read(unsigned device, unsigned reg, unsigned size)
{
	pci_port_write(&bus, 0, 4, address(device, reg));
	return pci_port_read(&bus, (uint16_t)(4 + (reg & 3)), size);
}

static void conf1_write(unsigned device, unsigned reg, unsigned size, uint32_t value)
{
	pci_port_write(&bus, 0, 4, address(device, reg));
	pci_port_write(&bus, (uint16_t)(4 + (reg & 3)), size, value);
}

static void test_host_bridge(void **state)
{
	(void)state;
	assert_int_equal(conf1_read(0, PCI_VENDOR_ID, 4), 0x12378086);
	assert_int_equal(conf1_read(0, PCI_REVISION_ID, 4), 0x06000002);
	assert_int_equal(conf1_read(0, PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(conf1_read(0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	assert_int_equal(conf1_read(0, PCI_BAR0, 4), 0);
	/* A write to a bar that does not exist reads back zero: Linux sees no BAR. */
	conf1_write(0, PCI_BAR0, 4, 0xffffffff);
	assert_int_equal(conf1_read(0, PCI_BAR0, 4), 0);
}

static void test_byte_word_dword(void **state)
{
	(void)state;
	static const uint8_t id[4] = { 0xf4, 0x1a, 0x42, 0x10 };
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(conf1_read(1, i, 1), id[i]);
	assert_int_equal(conf1_read(1, 0, 2), 0x1af4);
	assert_int_equal(conf1_read(1, 2, 2), 0x1042);
	/* A word at 0xcfd lies inside the dword: bytes 1 and 2. */
	assert_int_equal(conf1_read(1, 1, 2), 0x421a);
	assert_int_equal(conf1_read(1, PCI_INTERRUPT_LINE, 2), 0x010b);
	assert_int_equal(conf1_read(1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
	/* Byte writes to the interrupt line leave the pin next to it alone. */
	conf1_write(1, PCI_INTERRUPT_LINE, 2, 0x0405);
	assert_int_equal(conf1_read(1, PCI_INTERRUPT_LINE, 2), 0x0105);
	conf1_write(1, PCI_LATENCY_TIMER, 1, 0x40);
	assert_int_equal(conf1_read(1, PCI_CACHE_LINE_SIZE, 4), 0x00004000);
}

static void test_address_register(void **state)
{
	(void)state;
	/* Reserved bits 30:24 and 1:0 do not stick. */
	pci_port_write(&bus, 0, 4, 0xffffffff);
	assert_int_equal(pci_port_read(&bus, 0, 4), 0x80fffffc);
	/* Linux's pci_check_type1(): a byte to 0xcfb is not CONFIG_ADDRESS. */
	pci_port_write(&bus, 0, 4, 0);
	pci_port_write(&bus, 3, 1, 0x01);
	assert_int_equal(pci_port_read(&bus, 0, 4), 0);
	pci_port_write(&bus, 0, 4, 0x80000000);
	assert_int_equal(pci_port_read(&bus, 0, 4), 0x80000000);
	/* With no chipset register there, byte and word reads float. */
	assert_int_equal(pci_port_read(&bus, 1, 1), 0xffffffff);
	assert_int_equal(pci_port_read(&bus, 2, 2), 0xffffffff);
}

static struct {
	uint16_t offset;
	unsigned size;
	uint32_t value;
	unsigned count;
} cf9;

static uint32_t cf9_read(void *ctx, uint16_t offset, unsigned size)
{
	(void)ctx;
	cf9.offset = offset;
	cf9.size = size;
	return 0x5a;
}

static void cf9_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)ctx;
	cf9.offset = offset;
	cf9.size = size;
	cf9.value = value;
	cf9.count++;
}

static void test_chipset_port_passthrough(void **state)
{
	(void)state;
	bus.chipset_port = (struct port_device){ .base = 0xcf9, .count = 1, .name = "rc",
						 .read = cf9_read, .write = cf9_write };
	pci_port_write(&bus, 0, 4, address(1, 0));
	pci_port_write(&bus, 1, 1, 0x06);
	assert_int_equal(cf9.count, 1);
	assert_int_equal(cf9.offset, 0);
	assert_int_equal(cf9.value, 0x06);
	assert_int_equal(pci_port_read(&bus, 1, 1), 0x5a);
	/* Neither the address register nor a word over 0xcf9 reach it. */
	assert_int_equal(pci_port_read(&bus, 0, 4), address(1, 0));
	pci_port_write(&bus, 0, 2, 0x0600);
	pci_port_write(&bus, 3, 1, 0x06);
	assert_int_equal(cf9.count, 1);
	assert_int_equal(pci_port_read(&bus, 0, 4), address(1, 0));
}

static void test_absent_functions(void **state)
{
	(void)state;
	/* Enable bit clear: CONFIG_DATA is plain I/O, nothing answers. */
	pci_port_write(&bus, 0, 4, address(1, 0) & ~0x80000000u);
	assert_int_equal(pci_port_read(&bus, 4, 4), 0xffffffff);
	pci_port_write(&bus, 4, 4, 0);
	assert_int_equal(conf1_read(1, 0, 4), 0x10421af4);
	/* Another bus, an unregistered device, function 1 of a present device, device 31. */
	pci_port_write(&bus, 0, 4, 0x80010000);
	assert_int_equal(pci_port_read(&bus, 4, 4), 0xffffffff);
	assert_int_equal(conf1_read(2, 0, 4), 0xffffffff);
	assert_int_equal(conf1_read(31, 0, 2), 0xffffffff);
	pci_port_write(&bus, 0, 4, address(1, 0) | 1u << 8);
	assert_int_equal(pci_port_read(&bus, 4, 4), 0xffffffff);
	pci_port_write(&bus, 6, 2, 0x1234); /* goes nowhere */
	assert_int_equal(conf1_read(1, 0, 4), 0x10421af4);
}

static void test_odd_port_accesses(void **state)
{
	(void)state;
	pci_port_write(&bus, 0, 4, address(1, 0));
	/* Straddling 0xcfb/0xcfc, or running past 0xcff: neither register. */
	assert_int_equal(pci_port_read(&bus, 3, 2), 0xffffffff);
	assert_int_equal(pci_port_read(&bus, 6, 4), 0xffffffff);
	pci_port_write(&bus, 3, 2, 0);
	pci_port_write(&bus, 5, 4, 0);
	assert_int_equal(pci_port_read(&bus, 0, 4), address(1, 0));
	assert_int_equal(conf1_read(1, 0, 4), 0x10421af4);
	/* The last byte of configuration space through 0xcff. */
	assert_int_equal(conf1_read(1, 0xff, 1), 0);
}

static void test_bar_sizing_64(void **state)
{
	(void)state;
	assert_int_equal(conf1_read(1, PCI_BAR0, 4), PCI_BAR_MEM_TYPE_64);
	/* Linux's __pci_read_base(): all ones to both halves, read the mask back. */
	conf1_write(1, PCI_BAR0, 4, 0xffffffff);
	conf1_write(1, PCI_BAR0 + 4, 4, 0xffffffff);
	assert_int_equal(conf1_read(1, PCI_BAR0, 4), 0xffffc000 | PCI_BAR_MEM_TYPE_64);
	assert_int_equal(conf1_read(1, PCI_BAR0 + 4, 4), 0xffffffff);
	conf1_write(1, PCI_BAR0, 4, 0x12345678);
	conf1_write(1, PCI_BAR0 + 4, 4, 0x9);
	assert_int_equal(conf1_read(1, PCI_BAR0, 4), 0x12344000 | PCI_BAR_MEM_TYPE_64);
	assert_int_equal(conf1_read(1, PCI_BAR0 + 4, 4), 0x9);
	/* The type bits are read-only even to a byte write. */
	conf1_write(1, PCI_BAR0, 1, 0x00);
	assert_int_equal(conf1_read(1, PCI_BAR0, 1), PCI_BAR_MEM_TYPE_64);
}

static void test_bar_sizing_32(void **state)
{
	(void)state;
	unsigned bar2 = PCI_BAR0 + 8;
	conf1_write(1, bar2, 4, 0xffffffff);
	assert_int_equal(conf1_read(1, bar2, 4), 0xffffe000 | PCI_BAR_MEM_PREFETCH);
	conf1_write(1, bar2, 4, 0xfebf3fff);
	assert_int_equal(conf1_read(1, bar2, 4), 0xfebf2000 | PCI_BAR_MEM_PREFETCH);
	/* Unimplemented BARs and the expansion ROM are hardwired to zero. */
	static const unsigned unimplemented[] = { PCI_BAR0 + 12, PCI_BAR0 + 16, PCI_BAR0 + 20,
						  0x30 };
	for (unsigned i = 0; i < 4; i++) {
		conf1_write(1, unimplemented[i], 4, 0xffffffff);
		assert_int_equal(conf1_read(1, unimplemented[i], 4), 0);
	}
}

static void program_bars(uint64_t bar0, uint32_t bar2)
{
	conf1_write(1, PCI_BAR0, 4, (uint32_t)bar0);
	conf1_write(1, PCI_BAR0 + 4, 4, (uint32_t)(bar0 >> 32));
	conf1_write(1, PCI_BAR0 + 8, 4, bar2);
}

static bool find(uint64_t gpa, unsigned *bar, uint64_t *offset)
{
	struct pci_function *fn = NULL;
	bool found = pci_mmio_find(&bus, gpa, &fn, bar, offset);
	if (found)
		assert_ptr_equal(fn, &bus.devices[1]);
	return found;
}

static void test_mmio_find_needs_memory_enable(void **state)
{
	(void)state;
	unsigned bar;
	uint64_t offset;

	program_bars(0x800000000ull, 0xfebf0000);
	assert_false(find(0x800000000ull, &bar, &offset));
	conf1_write(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(conf1_read(1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	assert_true(find(0x800000000ull + 0x3fff, &bar, &offset));
	assert_int_equal(bar, 0);
	assert_int_equal(offset, 0x3fff);
	assert_false(find(0x800000000ull + 0x4000, &bar, &offset));
	assert_false(find(0x7ffffffffull, &bar, &offset));
	assert_true(find(0xfebf1234, &bar, &offset));
	assert_int_equal(bar, 2);
	assert_int_equal(offset, 0x1234);
	/* The BAR's upper half alone moves it. */
	conf1_write(1, PCI_BAR0 + 4, 4, 0);
	assert_false(find(0x800000000ull, &bar, &offset));
	assert_true(find(0x1000, &bar, &offset));
	assert_int_equal(offset, 0x1000);
	conf1_write(1, PCI_COMMAND, 2, 0);
	assert_false(find(0xfebf1234, &bar, &offset));
	/* The host bridge's command register does not make it decode anything. */
	conf1_write(0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_false(find(0x1000, &bar, &offset));
}

static void test_hostile_bar_placement(void **state)
{
	(void)state;
	unsigned bar;
	uint64_t offset;
	struct pci_function *fn;

	assert_non_null(pci_add_function(&bus, &test_function));
	/* Top of the address space: no wrap-around. */
	program_bars(0xffffffffffffc000ull, 0xfffff000);
	conf1_write(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(find(0xffffffffffffffffull, &bar, &offset));
	assert_int_equal(offset, 0x3fff);
	assert_false(find(0, &bar, &offset));
	/* BAR 2 overlaps BAR 0's range: BAR 0 wins, every time. */
	program_bars(0xfebf0000, 0xfebf2000);
	assert_true(find(0xfebf2000, &bar, &offset));
	assert_int_equal(bar, 0);
	/* Device 2's BAR on top of device 1's: device 1 wins. */
	pci_port_write(&bus, 0, 4, address(2, PCI_BAR0));
	pci_port_write(&bus, 4, 4, 0xfebf0000);
	conf1_write(2, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(pci_mmio_find(&bus, 0xfebf0000, &fn, &bar, &offset));
	assert_ptr_equal(fn, &bus.devices[1]);
	/* Once device 1 stops decoding, device 2 answers. */
	conf1_write(1, PCI_COMMAND, 2, 0);
	assert_true(pci_mmio_find(&bus, 0xfebf0000, &fn, &bar, &offset));
	assert_ptr_equal(fn, &bus.devices[2]);
}

static void test_command_register_bits(void **state)
{
	(void)state;
	/* I/O space (no I/O BARs), SERR and the rest are hardwired to zero. */
	conf1_write(1, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(conf1_read(1, PCI_COMMAND, 2),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	/* Status is read-only here: writing ones clears nothing and sets nothing. */
	conf1_write(1, PCI_STATUS, 2, 0xffff);
	assert_int_equal(conf1_read(1, PCI_STATUS, 2), 0);
	conf1_write(1, PCI_VENDOR_ID, 4, 0);
	conf1_write(1, PCI_INTERRUPT_PIN, 1, 4);
	assert_int_equal(conf1_read(1, PCI_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(conf1_read(1, PCI_INTERRUPT_PIN, 1), PCI_INTERRUPT_PIN_INTA);
}

static void test_capability_chain(void **state)
{
	(void)state;
	struct pci_function *fn = &bus.devices[1];

	assert_int_equal(pci_add_capability(fn, PCI_CAP_ID_VNDR, 14), 0x40);
	assert_int_equal(pci_add_capability(fn, PCI_CAP_ID_MSIX, 12), 0x50);
	pci_config_set(fn, 0x52, 2, 0x1234);

	/* Linux's __pci_find_next_cap_ttl(). */
	assert_true(conf1_read(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned pos = conf1_read(1, PCI_CAPABILITY_LIST, 1), found = 0;
	uint8_t ids[4];
	for (unsigned ttl = 48; ttl && pos >= 0x40; ttl--) {
		pos &= ~3u;
		uint32_t header = conf1_read(1, pos, 2);
		assert_true(found < 4);
		ids[found++] = (uint8_t)header;
		if ((uint8_t)header == PCI_CAP_ID_MSIX)
			assert_int_equal(conf1_read(1, pos + 2, 2), 0x1234);
		pos = header >> 8;
	}
	assert_int_equal(found, 2);
	assert_int_equal(ids[0], PCI_CAP_ID_VNDR);
	assert_int_equal(ids[1], PCI_CAP_ID_MSIX);
	/* Capabilities are read-only until the owner opens bits. */
	conf1_write(1, 0x50, 4, 0);
	assert_int_equal(conf1_read(1, 0x50, 4), 0x12340011);
	pci_config_set_wmask(fn, 0x52, 2, 0xc000);
	conf1_write(1, 0x52, 2, 0xffff);
	assert_int_equal(conf1_read(1, 0x52, 2), 0xd234);
	/* Until configuration space is full. */
	assert_int_equal(pci_add_capability(fn, PCI_CAP_ID_VNDR, 0xa0), 0x5c);
	assert_int_equal(pci_add_capability(fn, PCI_CAP_ID_VNDR, 5), -1);
	assert_int_equal(pci_add_capability(fn, PCI_CAP_ID_VNDR, 1), -1);
	/* The host bridge has no list. */
	assert_int_equal(conf1_read(0, PCI_CAPABILITY_LIST, 1), 0);
}

static void test_config_bounds(void **state)
{
	(void)state;
	struct pci_function *fn = &bus.devices[1];

	assert_int_equal(pci_config_read(fn, 0xff, 2), 0xffffffff);
	assert_int_equal(pci_config_read(fn, 0x100, 1), 0xffffffff);
	assert_int_equal(pci_config_read(fn, 0x1000, 4), 0xffffffff);
	assert_int_equal(pci_config_read(fn, 0, 3), 0xffffffff);
	assert_int_equal(pci_config_read(fn, 0, 0), 0xffffffff);
	assert_int_equal(pci_config_get(fn, 0xfe, 4), 0xffffffff);
	unsigned writes = seen.writes;
	pci_config_write(fn, 0xfe, 4, 0);
	pci_config_write(fn, PCI_COMMAND, 8, 0xffffffff);
	pci_config_write(fn, 0xffffffffu, 2, 0);
	pci_config_set(fn, 0xffff, 4, 0);
	pci_config_set_wmask(fn, 0xfd, 4, 0xffffffff);
	assert_int_equal(seen.writes, writes);
	assert_int_equal(pci_config_read(fn, PCI_COMMAND, 2), 0);
	assert_int_equal(pci_config_read(fn, 0xfc, 4), 0);
}

static void test_config_hooks(void **state)
{
	(void)state;
	conf1_write(1, 0x41, 2, 0);
	assert_int_equal(seen.writes, 1);
	assert_int_equal(seen.offset, 0x41);
	assert_int_equal(seen.size, 2);
	conf1_read(1, 0x7c, 4);
	assert_int_equal(seen.reads, 1);
	assert_int_equal(seen.offset, 0x7c);
	assert_int_equal(seen.size, 4);
}

static void test_intx_and_disable_bit(void **state)
{
	(void)state;
	struct pci_function *fn = &bus.devices[1];

	pci_set_intx(fn, true);
	assert_true(seen.level);
	assert_int_equal(seen.changes, 1);
	assert_true(conf1_read(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_set_intx(fn, true); /* no new edge for a level already driven */
	assert_int_equal(seen.changes, 1);
	/* INTx disable drops the pin, the status bit still shows the request. */
	conf1_write(1, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	assert_false(seen.level);
	assert_true(conf1_read(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_set_intx(fn, false);
	pci_set_intx(fn, true);
	assert_int_equal(seen.changes, 2);
	conf1_write(1, PCI_COMMAND, 1, 0); /* low byte only: bit 10 stays */
	assert_int_equal(seen.changes, 2);
	conf1_write(1, PCI_COMMAND, 2, 0);
	assert_true(seen.level);
	pci_set_intx(fn, false);
	assert_false(seen.level);
	assert_false(conf1_read(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_int_equal(seen.changes, 4);
}

static void test_registration_limits(void **state)
{
	(void)state;
	struct pci_function_info bad = test_function;

	bad.bars[2].size = 0x3000;
	assert_null(pci_add_function(&bus, &bad));
	bad.bars[2].size = 0x800;
	assert_null(pci_add_function(&bus, &bad));
	bad.bars[2] = (struct pci_bar_info){ PCI_BAR_MEM32, false, 1ull << 32 };
	assert_null(pci_add_function(&bus, &bad));
	bad.bars[2] = (struct pci_bar_info){ PCI_BAR_NONE, false, 0 };
	bad.bars[1] = (struct pci_bar_info){ PCI_BAR_MEM32, false, 0x1000 };
	assert_null(pci_add_function(&bus, &bad)); /* BAR 1 is BAR 0's upper half */
	bad.bars[0].type = PCI_BAR_NONE;
	bad.bars[5] = (struct pci_bar_info){ PCI_BAR_MEM64, false, 0x1000 };
	assert_null(pci_add_function(&bus, &bad));
	bad.bars[5].type = (enum pci_bar_type)7;
	assert_null(pci_add_function(&bus, &bad));
	bad.bars[5] = (struct pci_bar_info){ PCI_BAR_MEM64, true, 1ull << 40 };
	bad.bars[4] = bad.bars[5];
	bad.bars[5].type = PCI_BAR_NONE;
	bad.bars[1].type = PCI_BAR_NONE;
	struct pci_function *fn = pci_add_function(&bus, &bad);
	assert_non_null(fn);
	pci_config_write(fn, PCI_BAR0 + 16, 4, 0xffffffff);
	pci_config_write(fn, PCI_BAR0 + 20, 4, 0xffffffff);
	assert_int_equal(pci_config_read(fn, PCI_BAR0 + 16, 4), 0xc);
	assert_int_equal(pci_config_read(fn, PCI_BAR0 + 20, 4), 0xffffff00);
	/* The bus holds PCI_MAX_DEVICES functions besides the host bridge. */
	while (bus.count <= PCI_MAX_DEVICES)
		assert_non_null(pci_add_function(&bus, &test_function));
	assert_null(pci_add_function(&bus, &test_function));
	assert_int_equal(conf1_read(PCI_MAX_DEVICES, 0, 4), 0x10421af4);
	assert_int_equal(conf1_read(PCI_MAX_DEVICES + 1, 0, 4), 0xffffffff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_host_bridge, setup),
		cmocka_unit_test_setup(test_byte_word_dword, setup),
		cmocka_unit_test_setup(test_address_register, setup),
		cmocka_unit_test_setup(test_chipset_port_passthrough, setup),
		cmocka_unit_test_setup(test_absent_functions, setup),
		cmocka_unit_test_setup(test_odd_port_accesses, setup),
		cmocka_unit_test_setup(test_bar_sizing_64, setup),
		cmocka_unit_test_setup(test_bar_sizing_32, setup),
		cmocka_unit_test_setup(test_mmio_find_needs_memory_enable, setup),
		cmocka_unit_test_setup(test_hostile_bar_placement, setup),
		cmocka_unit_test_setup(test_command_register_bits, setup),
		cmocka_unit_test_setup(test_capability_chain, setup),
		cmocka_unit_test_setup(test_config_bounds, setup),
		cmocka_unit_test_setup(test_config_hooks, setup),
		cmocka_unit_test_setup(test_intx_and_disable_bit, setup),
		cmocka_unit_test_setup(test_registration_limits, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
