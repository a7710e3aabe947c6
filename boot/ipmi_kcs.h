/* The KCS system interface to a BMC (IPMI 2.0, 9.15): boot/ipmi_kcs.c. */
#ifndef BOOT_IPMI_KCS_H
#define BOOT_IPMI_KCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Something answers at the status port (an absent one reads 0xff). */
bool ipmi_kcs_present(uint16_t base, unsigned spacing);

/*
 * Sends request[0, n) (n >= 2) and reads the response into response[0,
 * cap), *got bytes. Each wait lasts at most timeout_tsc TSC ticks. Returns
 * NULL, or why it failed (the interface is then aborted back to idle).
 */
const char *ipmi_kcs_transfer(uint16_t base, unsigned spacing, uint64_t timeout_tsc,
			      const uint8_t *request, size_t n, uint8_t *response, size_t cap,
			      size_t *got);

#endif
