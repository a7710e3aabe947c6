/*
 * A test guest with the guest additions' minimal library
 * (tests/guests/lib/agent.h): it opens the agent port and answers the
 * management VM's calls and heartbeat pings until it is turned off. With
 * "noise" on its command line it writes junk and a stale reply before
 * every sync answer, as a confused agent would; the host must skip them.
 */
#include "guest.h"
#include "agent.h"

int main(void)
{
	struct agent_identity id = {
		.os_name = "vmm test guest (freestanding)",
		.kernel_release = "none",
		.noise = streq(guest_cmdline, "noise") ? 4096 : 0,
	};

	if (!agent_start(&id))
		return 0;
	put("agent: port org.qemu.guest_agent.0 open\n");
	for (;;) {
		agent_serve();
		guest_nap(2000000);
	}
}
