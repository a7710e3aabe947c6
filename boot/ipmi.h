/*
 * The BMC's watchdog (IPMI 2.0, chapter 27), which firmware may leave
 * armed so that a server whose OS never comes up is reset: the hypervisor
 * finds the BMC (SMBIOS type 38), asks whether the timer runs, and stops
 * it, saying which at boot. Message building and parsing here, plain C;
 * the KCS transfer (IPMI 2.0, 9.15) in boot/ipmi_kcs.c.
 */
#ifndef BOOT_IPMI_H
#define BOOT_IPMI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPMI_NETFN_APP 0x06
#define IPMI_CMD_RESET_WATCHDOG 0x22
#define IPMI_CMD_SET_WATCHDOG 0x24
#define IPMI_CMD_GET_WATCHDOG 0x25
#define IPMI_MESSAGE_MAX 32

struct ipmi_watchdog {
	uint8_t use;        /* timer use: bits 2:0 the user, bit 6 running, bit 7 don't log */
	uint8_t actions;    /* bits 2:0 timeout action, 6:4 pre-timeout interrupt */
	uint8_t pretimeout; /* seconds */
	uint8_t expiration_flags;
	uint16_t initial_ds, present_ds; /* countdowns, 100-ms units */
};

#define IPMI_WATCHDOG_RUNNING (1U << 6)

/* A request: NetFn/LUN, command, data. Returns its length. */
size_t ipmi_request(uint8_t netfn, uint8_t cmd, const uint8_t *data, size_t n,
		    uint8_t out[IPMI_MESSAGE_MAX]);

/*
 * A Get Watchdog Timer response (NetFn/LUN, command, completion code,
 * 8 bytes): false with *why unless it is that, complete and successful.
 */
bool ipmi_parse_watchdog(const uint8_t *response, size_t n, struct ipmi_watchdog *out,
			 const char **why);

/*
 * The Set Watchdog Timer request that stops the timer w describes and
 * keeps the rest as it was (byte 1 bit 6 clear: "stop timer", 27.6).
 */
size_t ipmi_stop_watchdog_request(const struct ipmi_watchdog *w, uint8_t out[IPMI_MESSAGE_MAX]);

/* A Set Watchdog Timer response: true if it says done. */
bool ipmi_response_ok(const uint8_t *response, size_t n, uint8_t cmd);

/* The timeout action's name: none, hard reset, power down, power cycle. */
const char *ipmi_watchdog_action(const struct ipmi_watchdog *w);

#endif
