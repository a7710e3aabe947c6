/*
 * Where the management line is: a serial device or pty (termios raw 8N1),
 * tcp:HOST:PORT (Bochs com1 socket mode, QEMU -serial tcp:..., a console
 * server), unix:PATH (QEMU -serial unix:...,server) or exec:COMMAND (a
 * program that is the line: a BMC's serial-over-LAN client, a console
 * server's client). And the user's terminal in raw mode for `console`,
 * restored on every way out.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* cfmakeraw, CRTSCTS, the higher baud rates */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "lib/fmt.h"
#include "mgmt/vmmctl/vmmctl.h"

static const struct {
	int baud;
	speed_t speed;
} bauds[] = {
	{ 9600, B9600 },     { 19200, B19200 },   { 38400, B38400 },
	{ 57600, B57600 },   { 115200, B115200 }, { 230400, B230400 },
	{ 460800, B460800 }, { 921600, B921600 },
};

bool vmmctl_baud_valid(int baud)
{
	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++)
		if (bauds[i].baud == baud)
			return true;
	return false;
}

static int fail(char *err, size_t cap, const char *what, const char *target)
{
	snprintf(err, cap, "%s %s: %s", what, target, strerror(errno));
	return -1;
}

static bool set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

static int open_serial(const char *path, int baud, char *err, size_t cap)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	struct termios t;

	if (fd < 0)
		return fail(err, cap, "cannot open", path);
	if (isatty(fd)) {
		speed_t speed = B115200;

		for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++)
			if (bauds[i].baud == baud)
				speed = bauds[i].speed;
		if (tcgetattr(fd, &t) != 0) {
			fail(err, cap, "cannot read the settings of", path);
			close(fd);
			return -1;
		}
		/* Raw 8N1, no flow control, no modem control lines. */
		cfmakeraw(&t);
		t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CRTSCTS);
		t.c_cflag |= CS8 | CREAD | CLOCAL;
		t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		cfsetispeed(&t, speed);
		cfsetospeed(&t, speed);
		if (tcsetattr(fd, TCSANOW, &t) != 0) {
			fail(err, cap, "cannot configure", path);
			close(fd);
			return -1;
		}
		tcflush(fd, TCIFLUSH);
	}
	return fd;
}

/* connect() with a timeout on a non-blocking socket. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (!set_nonblock(fd))
		return -1;
	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	int rc = poll(&pfd, 1, timeout_ms);

	if (rc == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		return -1;
	if (soerr) {
		errno = soerr;
		return -1;
	}
	return 0;
}

static int open_tcp(const char *spec, int timeout_ms, char *err, size_t cap)
{
	char host[256];
	const char *port, *h = spec;
	size_t hl;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, gai;

	/* HOST:PORT, [v6]:PORT */
	if (*h == '[') {
		const char *close = strchr(h, ']');

		if (!close || close[1] != ':') {
			snprintf(err, cap, "bad target 'tcp:%s' (tcp:HOST:PORT, tcp:[V6]:PORT)", spec);
			return -1;
		}
		hl = (size_t)(close - h - 1);
		h++;
		port = close + 2;
	} else {
		port = strrchr(h, ':');
		if (!port) {
			snprintf(err, cap, "bad target 'tcp:%s' (tcp:HOST:PORT)", spec);
			return -1;
		}
		hl = (size_t)(port - h);
		port++;
	}
	if (hl == 0 || hl >= sizeof(host) || !*port) {
		snprintf(err, cap, "bad target 'tcp:%s' (tcp:HOST:PORT)", spec);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		snprintf(err, cap, "cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	errno = ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0)
			break;
		int e = errno;

		close(fd);
		fd = -1;
		errno = e;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		char t[300];

		snprintf(t, sizeof(t), "tcp:%s", spec);
		return fail(err, cap, "cannot connect to", t);
	}
	return fd;
}

static int open_unix(const char *path, int timeout_ms, char *err, size_t cap)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, cap, "bad target 'unix:%s' (unix:PATH, at most %zu characters)",
			 path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, cap, "cannot create a socket for", path);
	if (connect_timeout(fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms) != 0) {
		int e = errno;

		char t[sizeof(sa.sun_path) + 8];

		close(fd);
		errno = e;
		snprintf(t, sizeof(t), "unix:%s", path);
		return fail(err, cap, "cannot connect to", t);
	}
	return fd;
}

/*
 * exec:COMMAND: `sh -c COMMAND` with its stdin and stdout on one end of a
 * socket pair (its stderr stays the user's, so its own errors show). The
 * command runs in a grandchild that init adopts, so vmmctl, which
 * reconnects and exits on its own schedule, never leaves a zombie; the
 * command sees end of file on its stdin when vmmctl closes the line.
 */
static int open_exec(const char *command, char *err, size_t cap)
{
	int sv[2];

	if (!*command) {
		snprintf(err, cap, "bad target 'exec:' (exec:COMMAND)");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return fail(err, cap, "cannot create a socket pair for", command);
	pid_t child = fork();
	if (child < 0) {
		close(sv[0]);
		close(sv[1]);
		return fail(err, cap, "cannot start", command);
	}
	if (child == 0) {
		if (fork() != 0)
			_exit(0);
		/* dup2 clears FD_CLOEXEC on the copies; sv[] close at exec. */
		if (dup2(sv[1], STDIN_FILENO) < 0 || dup2(sv[1], STDOUT_FILENO) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (!set_nonblock(sv[0])) {
		close(sv[0]);
		return fail(err, cap, "cannot configure the line to", command);
	}
	return sv[0];
}

int vmmctl_open(const char *target, int baud, int timeout_ms, char *err, size_t errcap)
{
	if (!target || !*target) {
		snprintf(err, errcap, "no line given: -c TARGET or VMMCTL_CONNECT");
		return -1;
	}
	if (strncmp(target, "tcp:", 4) == 0)
		return open_tcp(target + 4, timeout_ms, err, errcap);
	if (strncmp(target, "unix:", 5) == 0)
		return open_unix(target + 5, timeout_ms, err, errcap);
	if (strncmp(target, "exec:", 5) == 0)
		return open_exec(target + 5, err, errcap);
	if (strncmp(target, "file:", 5) == 0)
		target += 5;
	return open_serial(target, baud, err, errcap);
}

/* ---- The user's terminal ---- */

static struct termios saved_tty;
static int saved_fd = -1;

void vmmctl_tty_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved_tty);
		saved_fd = -1;
	}
}

bool vmmctl_tty_raw(int fd)
{
	struct termios t;
	static bool registered;

	if (tcgetattr(fd, &saved_tty) != 0)
		return false;
	t = saved_tty;
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSAFLUSH, &t) != 0)
		return false;
	saved_fd = fd;
	if (!registered) {
		atexit(vmmctl_tty_restore);
		registered = true;
	}
	return true;
}

/* ---- Keys ---- */

bool vmmctl_parse_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;

		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ':')
			continue;
		v = fmt_hex_digit((unsigned char)*s);
		if (v < 0)
			return false;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			return false;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	*len = n;
	return hi < 0;
}

int vmmctl_read_key(const char *path, uint8_t *key, size_t cap, size_t *len, char *err,
		    size_t errcap)
{
	char text[4 * VMMCTL_KEY_MAX + 64];
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errcap, "cannot read key file %s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, text + n, sizeof(text) - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(text) - 1)
			break;
	}
	close(fd);
	text[n] = '\0';
	if (n == sizeof(text) - 1 || strlen(text) != n ||
	    !vmmctl_parse_hex(text, key, cap, len) || *len < 16 || *len > VMMCTL_KEY_MAX) {
		snprintf(err, errcap,
			 "key file %s: expected 16 to %d bytes written as hex digits "
			 "(such as the output of 'openssl rand -hex 32')",
			 path, VMMCTL_KEY_MAX);
		memset(text, 0, sizeof(text));
		return -1;
	}
	memset(text, 0, sizeof(text));
	return 0;
}
