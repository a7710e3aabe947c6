#include "boot/ipmi.h"

#include <string.h>

#define IPMI_RESPONSE_NETFN(netfn) ((netfn) + 1)
#define IPMI_GET_WATCHDOG_DATA 8

size_t ipmi_request(uint8_t netfn, uint8_t cmd, const uint8_t *data, size_t n,
		    uint8_t out[IPMI_MESSAGE_MAX])
{
	if (n > IPMI_MESSAGE_MAX - 2)
		n = IPMI_MESSAGE_MAX - 2;
	out[0] = (uint8_t)(netfn << 2); /* LUN 0 */
	out[1] = cmd;
	if (n)
		memcpy(out + 2, data, n);
	return n + 2;
}

bool ipmi_response_ok(const uint8_t *response, size_t n, uint8_t cmd)
{
	return n >= 3 && response[0] >> 2 == IPMI_RESPONSE_NETFN(IPMI_NETFN_APP) &&
	       response[1] == cmd && response[2] == 0;
}

bool ipmi_parse_watchdog(const uint8_t *r, size_t n, struct ipmi_watchdog *out, const char **why)
{
	if (n >= 3 && r[0] >> 2 == IPMI_RESPONSE_NETFN(IPMI_NETFN_APP) &&
	    r[1] == IPMI_CMD_GET_WATCHDOG && r[2]) {
		*why = "the BMC refused Get Watchdog Timer";
		return false;
	}
	if (!ipmi_response_ok(r, n, IPMI_CMD_GET_WATCHDOG) || n < 3 + IPMI_GET_WATCHDOG_DATA) {
		*why = "a malformed Get Watchdog Timer response";
		return false;
	}
	const uint8_t *d = r + 3;
	*out = (struct ipmi_watchdog){
		.use = d[0],
		.actions = d[1],
		.pretimeout = d[2],
		.expiration_flags = d[3],
		.initial_ds = (uint16_t)(d[4] | d[5] << 8),
		.present_ds = (uint16_t)(d[6] | d[7] << 8),
	};
	return true;
}

size_t ipmi_stop_watchdog_request(const struct ipmi_watchdog *w, uint8_t out[IPMI_MESSAGE_MAX])
{
	/*
	 * Byte 1: the same timer use with "don't stop" clear, which stops it;
	 * byte 4 clears no expiration flags; the countdown is kept.
	 */
	const uint8_t data[6] = {
		(uint8_t)(w->use & ~IPMI_WATCHDOG_RUNNING), w->actions, w->pretimeout, 0,
		(uint8_t)w->initial_ds, (uint8_t)(w->initial_ds >> 8),
	};

	return ipmi_request(IPMI_NETFN_APP, IPMI_CMD_SET_WATCHDOG, data, sizeof(data), out);
}

const char *ipmi_watchdog_action(const struct ipmi_watchdog *w)
{
	static const char *const actions[] = { "no action", "a hard reset", "a power down",
					       "a power cycle" };
	unsigned a = w->actions & 7;

	return a < 4 ? actions[a] : "a reserved action";
}
