/*
 * The guest additions' minimal library for the freestanding test guests
 * (docs/guest-agent.md): a polled virtio-console driver for the port
 * org.qemu.guest_agent.0 (the multiport control handshake of virtio 1.1
 * 5.3.6.2) and an agent that answers the calls the heartbeat and the
 * GuestOS object need (guest-sync-delimited, guest-sync, guest-ping,
 * guest-info, guest-get-osinfo), one request a line, as the management VM
 * writes them. Anything else is answered CommandNotFound.
 */
#ifndef GUEST_AGENT_H
#define GUEST_AGENT_H

#include <stdbool.h>
#include <stddef.h>

struct agent_identity {
	const char *os_name;            /* guest-get-osinfo's name and pretty-name */
	const char *kernel_release;
	/*
	 * Bytes of noise (junk and an unsolicited reply) before each
	 * guest-sync-delimited answer, as a late or confused agent writes
	 * them: the host must skip them. 0: none.
	 */
	size_t noise;
};

/*
 * Finds the console, sets it up and opens the port, waiting (bounded)
 * for the device's announcements. False, with a line on the test console
 * saying why, when it cannot.
 */
bool agent_start(const struct agent_identity *id);

/* Answers every whole request that arrived; never waits for the host. */
void agent_serve(void);

#endif
