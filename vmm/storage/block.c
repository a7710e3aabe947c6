/* What the store's disk drivers share: waits by the TSC, their controller's PCI function. */
#include "vmm/storage/block.h"

#include "lib/fmt.h"
#include "x86/cpu.h"
#include "x86/pci.h"

#include <stdarg.h>
#include <string.h>

uint64_t block_deadline(const struct block_dma *dma, uint64_t ms)
{
	return rdtsc() + ms * dma->ticks_per_ms;
}

bool block_expired(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) > 0;
}

bool block_mmio_wait(const volatile uint32_t *reg, uint32_t mask, uint32_t want,
		     uint64_t deadline)
{
	for (;;) {
		if ((*reg & mask) == want)
			return true;
		if (block_expired(deadline))
			return (*reg & mask) == want;
		cpu_relax();
	}
}

static struct pci_address pci_of(const struct boot_store *where)
{
	return (struct pci_address){ where->pci_bus, where->pci_device, where->pci_function };
}

void block_pci_enable(const struct boot_store *where, bool io, bool bus_master)
{
	struct pci_address a = pci_of(where);
	uint32_t command = pci_read32(a, PCI_COMMAND) & 0xffff & ~PCI_COMMAND_BUS_MASTER;

	command |= PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE | (io ? PCI_COMMAND_IO : 0) |
		   (bus_master ? PCI_COMMAND_BUS_MASTER : 0);
	/* The upper half is STATUS, whose error bits a write of 1 would clear: 0 leaves them. */
	pci_write32(a, PCI_COMMAND, command);
}

volatile uint8_t *block_pci_mmio(const struct boot_store *where, unsigned n, uint64_t bytes,
				 const struct block_dma *dma, char *why, size_t why_size)
{
	struct pci_address a = pci_of(where);
	uint32_t low = pci_read32(a, PCI_BAR0 + 4 * n);
	uint64_t base = pci_bar(a, n);

	if ((low & 1) || !base) {
		fmt_snprintf(why, why_size, "the controller's BAR%u is no assigned memory BAR", n);
		return NULL;
	}
	/*
	 * A 64-bit BAR may lie above the 1:1 map of RAM and the 4-GiB hole:
	 * mapped then, where 4-level paging has canonical addresses 1:1 (below
	 * 2^47, SDM 4.5).
	 */
	if (base + bytes > (UINT64_C(1) << 47)) {
		fmt_snprintf(why, why_size, "the controller's registers at 0x%llx lie above what "
			     "4-level paging maps 1:1", (unsigned long long)base);
		return NULL;
	}
	if (base + bytes > dma->identity_map_top && dma->map_mmio(base, bytes)) {
		fmt_snprintf(why, why_size, "the controller's registers at 0x%llx cannot be mapped",
			     (unsigned long long)base);
		return NULL;
	}
	return (volatile uint8_t *)(uintptr_t)base;
}

void block_trim_string(const char *in, size_t n, char *out, size_t out_size)
{
	size_t len = 0;

	while (len < n && in[len])
		len++;
	while (len && in[len - 1] == ' ')
		len--;
	while (len && in[0] == ' ') {
		in++;
		len--;
	}
	if (len >= out_size)
		len = out_size - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = in[i] >= 0x20 && in[i] <= 0x7e ? in[i] : '?';
	out[len] = '\0';
}

bool block_failed(char *why, size_t why_size, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	fmt_vsnprintf(why, why_size, format, ap);
	va_end(ap);
	return false;
}

static bool transfer(const struct block_io *io, bool write, uint64_t lba, uint32_t count,
		     uint8_t *at)
{
	if (lba > io->sectors || count > io->sectors - lba)
		return block_failed(io->why, io->why_size, "%s: sectors %llu+%u lie beyond the "
				    "disk's %llu", io->driver, (unsigned long long)lba, count,
				    (unsigned long long)io->sectors);
	for (uint32_t n; count; lba += n, count -= n, at += (size_t)n * BLOCK_SECTOR) {
		n = count < io->max_sectors ? count : io->max_sectors;
		if (write)
			memcpy(io->bounce, at, (size_t)n * BLOCK_SECTOR);
		if (!io->command(io->ctx, write, lba, n))
			return false;
		if (!write)
			memcpy(at, io->bounce, (size_t)n * BLOCK_SECTOR);
	}
	return true;
}

bool block_io_read(void *ctx, uint64_t lba, uint32_t count, void *buf)
{
	return transfer(ctx, false, lba, count, buf);
}

bool block_io_write(void *ctx, uint64_t lba, uint32_t count, const void *buf)
{
	/* The buffer is only read: the cast serves the shared loop. */
	return transfer(ctx, true, lba, count, (uint8_t *)(uintptr_t)buf);
}
