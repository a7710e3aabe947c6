#include "devices/acpi_pm.h"

/* PM1 status bits are write-one-to-clear (ACPI 6.4, 4.8.3.1.1). */
#define PM_TMR_MASK 0xffffffu

void acpi_pm_init(struct acpi_pm *pm)
{
	*pm = (struct acpi_pm){ .pm1_control = ACPI_PM1_CNT_SCI_EN };
}

static uint32_t pm_timer(uint64_t now_ns)
{
	/* Split so that the product cannot overflow for centuries of uptime. */
	uint64_t ticks = now_ns / 1000000000ULL * ACPI_PM_TIMER_HZ +
			 now_ns % 1000000000ULL * ACPI_PM_TIMER_HZ / 1000000000ULL;
	return (uint32_t)(ticks & PM_TMR_MASK);
}

/* The 12 bytes as one little-endian register file, read at any width. */
static uint8_t pm_byte(const struct acpi_pm *pm, unsigned offset, uint64_t now_ns)
{
	uint32_t word;

	switch (offset / 4) {
	case 0:
		word = pm->pm1_status | (uint32_t)pm->pm1_enable << 16;
		break;
	case 1:
		word = pm->pm1_control;
		break;
	default:
		word = pm_timer(now_ns);
		break;
	}
	return (uint8_t)(word >> (8 * (offset % 4)));
}

uint32_t acpi_pm_read(const struct acpi_pm *pm, uint16_t offset, unsigned size, uint64_t now_ns)
{
	uint32_t value = 0;

	for (unsigned i = 0; i < size && offset + i < ACPI_PM_PORTS; i++)
		value |= (uint32_t)pm_byte(pm, offset + i, now_ns) << (8 * i);
	return value;
}

static enum acpi_pm_request write_control(struct acpi_pm *pm, uint16_t value)
{
	/* SCI_EN stays set: there is no legacy (SMI) mode to return to. */
	pm->pm1_control = (uint16_t)((value & ~ACPI_PM1_CNT_SLP_EN) | ACPI_PM1_CNT_SCI_EN);
	if (!(value & ACPI_PM1_CNT_SLP_EN))
		return ACPI_PM_NONE;
	unsigned type = (value & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;
	return type == ACPI_SLP_TYP_S5 ? ACPI_PM_POWER_OFF : ACPI_PM_SLEEP_REFUSED;
}

enum acpi_pm_request acpi_pm_write(struct acpi_pm *pm, uint16_t offset, unsigned size,
				   uint32_t value)
{
	enum acpi_pm_request request = ACPI_PM_NONE;

	for (unsigned i = 0; i < size && offset + i < ACPI_PM_PORTS; i++) {
		unsigned at = offset + i;
		uint8_t byte = (uint8_t)(value >> (8 * i));
		unsigned shift = 8 * (at % 2);

		if (at < 2) {
			pm->pm1_status &= (uint16_t)~(byte << shift);
		} else if (at < 4) {
			pm->pm1_enable = (uint16_t)((pm->pm1_enable & ~(0xff << shift)) | byte << shift);
		} else if (at < 6) {
			/* SLP_EN sits in the high byte: act once that byte is written. */
			uint16_t control = (uint16_t)((pm->pm1_control & ~(0xff << shift)) | byte << shift);
			if (at == 5 || size == 1)
				request = write_control(pm, control);
			else
				pm->pm1_control = control;
		}
		/* The timer (8..11) is read-only; 6..7 are reserved. */
	}
	return request;
}

static void acpi_pm_state_reset(void *state)
{
	acpi_pm_init(state);
}

/* PM1 control as write_control leaves it: SCI_EN set, SLP_EN (write-only) clear. */
static bool acpi_pm_state_check(const void *state, const void *live, const char *device,
                                struct devstate_error *err)
{
	(void)live;
	const struct acpi_pm *pm = state;

	if (!(pm->pm1_control & ACPI_PM1_CNT_SCI_EN) || (pm->pm1_control & ACPI_PM1_CNT_SLP_EN))
		return devstate_refuse(err, device, "pm1_control", 0,
				       "= 0x%x needs SCI_EN set and SLP_EN clear", pm->pm1_control);
	return true;
}

static const struct devstate_field acpi_pm_fields[] = {
	DEVSTATE_FIELD(struct acpi_pm, pm1_status, DEVSTATE_U16, 0, 0xffff, 1),
	DEVSTATE_FIELD(struct acpi_pm, pm1_enable, DEVSTATE_U16, 0, 0xffff, 1),
	DEVSTATE_FIELD(struct acpi_pm, pm1_control, DEVSTATE_U16, 0, 0xffff, 1),
};

const struct devstate_desc acpi_pm_state_desc = DEVSTATE_DESC(
	struct acpi_pm, "acpi_pm", 1, acpi_pm_fields, acpi_pm_state_reset, acpi_pm_state_check);
