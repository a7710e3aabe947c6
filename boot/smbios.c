#include "boot/smbios.h"

#include "boot/acpi.h"

#include <string.h>

#define TYPE_IPMI_DEVICE 38
#define TYPE_END_OF_TABLE 127
#define HEADER_LENGTH 4
/* Type 38 (7.39): interface type at 4, base address at 8, its modifier at 16. */
#define IPMI_MIN_LENGTH 0x10
#define IPMI_MODIFIER_LENGTH 0x11
#define IPMI_BASE_IO 1ULL
#define IPMI_MODIFIER_LSB (1U << 4)
#define IPMI_MODIFIER_SPACING_SHIFT 6

bool smbios_table(const void *entry_point, uint64_t *table, uint32_t *length, const char **why)
{
	const uint8_t *ep = entry_point;

	if (!memcmp(ep, "_SM3_", 5)) {
		/* 3.x (5.2.2): length at 6, maximum table size at 0x0c, address at 0x10. */
		uint32_t size;
		if (ep[6] < 0x18 || acpi_byte_sum(ep, ep[6])) {
			*why = "SMBIOS 3 entry point checksum or length wrong";
			return false;
		}
		memcpy(&size, ep + 0x0c, 4);
		memcpy(table, ep + 0x10, 8);
		*length = size;
	} else if (!memcmp(ep, "_SM_", 4)) {
		/* 2.1 (5.2.1): length at 5; "_DMI_" at 0x10, table length 0x16, address 0x18. */
		uint16_t size;
		uint32_t address;
		if (ep[5] < 0x1f || acpi_byte_sum(ep, ep[5]) || memcmp(ep + 0x10, "_DMI_", 5) ||
		    acpi_byte_sum(ep + 0x10, 0x0f)) {
			*why = "SMBIOS 2 entry point checksum or length wrong";
			return false;
		}
		memcpy(&size, ep + 0x16, 2);
		memcpy(&address, ep + 0x18, 4);
		*table = address;
		*length = size;
	} else {
		*why = "no SMBIOS entry point anchor";
		return false;
	}
	if (!*table || !*length || *length > SMBIOS_TABLE_MAX) {
		*why = "SMBIOS table address or length out of range";
		return false;
	}
	return true;
}

/* The offset of the structure after the one at off: past its strings' double NUL. */
static uint32_t next_structure(const uint8_t *t, uint32_t length, uint32_t off)
{
	uint32_t at = off + t[off + 1];

	while (at + 1 < length && (t[at] || t[at + 1]))
		at++;
	return at + 2;
}

bool smbios_find_ipmi(const uint8_t *table, uint32_t length, struct ipmi_device *out)
{
	for (uint32_t off = 0; off <= length && length - off >= HEADER_LENGTH;) {
		const uint8_t *s = table + off;
		if (s[1] < HEADER_LENGTH || s[1] > length - off || s[0] == TYPE_END_OF_TABLE)
			return false;
		if (s[0] == TYPE_IPMI_DEVICE && s[1] >= IPMI_MIN_LENGTH) {
			uint64_t base;
			memcpy(&base, s + 8, 8);
			uint8_t modifier = s[1] >= IPMI_MODIFIER_LENGTH ? s[0x10] : 0;
			static const unsigned spacings[4] = { 1, 4, 16, 0 };
			unsigned spacing = spacings[modifier >> IPMI_MODIFIER_SPACING_SHIFT];
			if (!spacing)
				return false;
			*out = (struct ipmi_device){
				.type = s[4],
				.io = base & IPMI_BASE_IO,
				/* Bit 0 is the space flag; the address's own comes from the modifier. */
				.address = (base & ~1ULL) | ((modifier & IPMI_MODIFIER_LSB) ? 1 : 0),
				.spacing = spacing,
			};
			return true;
		}
		off = next_structure(table, length, off);
	}
	return false;
}
