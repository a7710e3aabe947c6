/*
 * vmmctl: the admin tool of the vmm hypervisor (docs/vmmctl.md). main()
 * only wires the real world in: arguments, environment, the line, the
 * terminal, signals. Everything else is in the vmmctl_*.c modules, which
 * the unit tests drive directly.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* cfmakeraw, CRTSCTS, the higher baud rates */
#endif
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt/vmmctl/vmmctl.h"

static volatile int interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int connect_line(void *ctx, const struct vmmctl_opts *o)
{
	char err[512];
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	int fd = vmmctl_open(o->connect, o->baud, timeout, err, sizeof(err));

	(void)ctx;
	if (fd < 0)
		fprintf(stderr, "vmmctl: %s\n", err);
	return fd;
}

int main(int argc, char **argv)
{
	static struct vmmctl_parsed p;
	struct vmmctl_env env = { 0 };
	uint8_t key[VMMCTL_KEY_MAX];
	struct sigaction sa;
	int rc;

	if (vmmctl_parse(&p, argc, argv, env_get) != VMMCTL_EXIT_OK) {
		fprintf(stderr, "vmmctl: %s\n", p.error);
		return VMMCTL_EXIT_USAGE;
	}
	if (p.opts.version) {
		printf("vmmctl 0.1.0 (protocol framing %d, API %d)\n", PROTO_VERSION, API_VERSION);
		return VMMCTL_EXIT_OK;
	}
	if (p.sub_help) {
		vmmctl_sub_help(stdout, p.sub);
		return VMMCTL_EXIT_OK;
	}
	if (p.opts.help || !p.sub) {
		vmmctl_usage(stdout);
		return VMMCTL_EXIT_OK;
	}
	if (p.opts.key_file) {
		char err[512];
		size_t len;

		if (vmmctl_read_key(p.opts.key_file, key, sizeof(key), &len, err, sizeof(err)) != 0) {
			fprintf(stderr, "vmmctl: %s\n", err);
			return VMMCTL_EXIT_USAGE;
		}
		env.key = key;
		env.key_len = len;
	}
	if (p.sub->kind != VK_AUTH_ANSWER && !p.opts.connect) {
		fprintf(stderr, "vmmctl: no line given: -c TARGET or VMMCTL_CONNECT "
				"(/dev/ttyS0, tcp:HOST:PORT, unix:PATH)\n");
		return VMMCTL_EXIT_USAGE;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	env.out = stdout;
	env.err = stderr;
	env.interrupted = &interrupted;
	env.connect = connect_line;
	env.console_in = STDIN_FILENO;
	env.console_tty = isatty(STDIN_FILENO);
	env.progress_tty = isatty(STDERR_FILENO);
	rc = vmmctl_run(&p, &env);
	vmmctl_tty_restore();
	memset(key, 0, sizeof(key));
	return rc;
}
