/*
 * vmm-agent: the project's guest agent, a Linux program in the guest. It
 * speaks the QEMU guest agent protocol (QGA) over a virtio-serial port,
 * with qemu-ga's command names, arguments and replies, so the management
 * side drives it as it would drive the stock qemu-guest-agent
 * (docs/guest-agent.md).
 *
 *   vmm-agent [-p PATH]   the port; by default the virtio port named
 *                         org.qemu.guest_agent.0
 *   vmm-agent --stdio     stdin and stdout instead (tests); ends at EOF
 *
 * Everything from the port is hostile: a request is at most REQUEST_MAX
 * bytes, parsed into a token array that cannot run short, and every
 * argument's type, length, handle and pid is checked before it is used.
 * One thread and one poll loop serve the port and the pipes of the
 * processes guest-exec started, so a chatty child never blocks on a full
 * pipe and the agent never waits for a child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/json.h"

#define VMM_AGENT_VERSION "vmm-agent 1.0"

#define PORT_NAME "org.qemu.guest_agent.0"
#define PORTS_DIR "/sys/class/virtio-ports"
#define PORT_FALLBACK "/dev/virtio-ports/" PORT_NAME

#define REQUEST_MAX (64 * 1024)
/* Every value but the last takes at least two bytes ("1,"): never short. */
#define REQUEST_TOKENS (REQUEST_MAX / 2 + 1)
/* Base64 in a request decodes to at most this much. */
#define INPUT_MAX (REQUEST_MAX / 4 * 3)
/* guest-exec-status with both streams full, in base64, and room to spare. */
#define REPLY_MAX (256 * 1024)
#define CAPTURE_MAX (64 * 1024)
#define FILE_READ_DEFAULT 4096
#define FILE_READ_MAX (48 * 1024)
#define PROCESSES_MAX 16
#define FILES_MAX 16
/* qemu-ga's first handle, so handles look as a host expects them. */
#define FILE_HANDLE_FIRST 1000
#define EXEC_STRINGS_MAX 1024
/* How much of a name from the request an error message repeats. */
#define QUOTE_MAX 64
#define ERROR_MAX 512
#define OS_VALUE_MAX 256
/* A stalled host gets this long to take a reply before it is dropped. */
#define WRITE_WAIT_MS 5000

#define SHUTDOWN "/sbin/shutdown"
#define SHUTDOWN_MESSAGE "hypervisor initiated shutdown"

/* ---- The stream: requests delimited as qemu-ga delimits them ---- */

/*
 * A request is one JSON value, delimited by its balanced braces (or
 * brackets) outside strings, with or without newlines; anything else at
 * the top level runs to the end of its line, as does a string broken by
 * a newline (never valid JSON). 0xFF, which UTF-8 text never holds,
 * drops whatever was read so far: guest-sync-delimited's resync.
 */
struct framer {
	char text[REQUEST_MAX];
	size_t len;
	size_t depth;           /* open braces and brackets */
	bool active;            /* inside a request */
	bool line;              /* not an object or array: ends at the newline */
	bool in_string, escaped;
	bool too_long;          /* past REQUEST_MAX: read to its end, not kept */
};

enum frame { FRAME_MORE, FRAME_DONE, FRAME_TOO_LONG };

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static enum frame frame_byte(struct framer *f, uint8_t c)
{
	enum frame r = FRAME_MORE;

	if (c == 0xff) {
		f->active = false;
		return FRAME_MORE;
	}
	if (!f->active) {
		if (is_space(c))
			return FRAME_MORE;
		f->active = true;
		f->line = c != '{' && c != '[';
		f->len = 0;
		f->depth = 0;
		f->in_string = f->escaped = f->too_long = false;
	}
	if (c == '\n' && (f->line || f->in_string)) {
		f->active = false;
		return f->too_long ? FRAME_MORE : FRAME_DONE;
	}
	if (f->len < sizeof(f->text)) {
		f->text[f->len++] = (char)c;
	} else if (!f->too_long) {
		f->too_long = true;
		r = FRAME_TOO_LONG;
	}
	if (f->line)
		return r;
	if (f->in_string) {
		if (f->escaped)
			f->escaped = false;
		else if (c == '\\')
			f->escaped = true;
		else if (c == '"')
			f->in_string = false;
	} else if (c == '"') {
		f->in_string = true;
	} else if (c == '{' || c == '[') {
		f->depth++;
	} else if ((c == '}' || c == ']') && --f->depth == 0) {
		f->active = false;
		return f->too_long ? r : FRAME_DONE;
	}
	return r;
}

/* ---- The channel ---- */

struct channel {
	const char *path;       /* -p, or NULL: look the port up */
	bool stdio;
	int in, out;
};

static struct channel chan;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Writes all of p, or drops the rest when the host does not take it in
 * WRITE_WAIT_MS (a port whose host side is closed blocks writes): the
 * host resynchronises with guest-sync-delimited anyway.
 */
static void write_all(const void *p, size_t n)
{
	const char *s = p;
	int64_t deadline = now_ms() + WRITE_WAIT_MS;

	while (n) {
		ssize_t k = write(chan.out, s, n);
		struct pollfd pfd = { .fd = chan.out, .events = POLLOUT };

		if (k > 0) {
			s += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || now_ms() >= deadline ||
		    poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			return;
	}
}

/* The /dev node of the virtio port named PORT_NAME, into path. */
static bool find_port(char *path, size_t cap)
{
	DIR *dir = opendir(PORTS_DIR);
	struct dirent *e;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (e = readdir(dir))) {
		char name_file[PATH_MAX], name[sizeof(PORT_NAME) + 1];
		ssize_t n, len = (ssize_t)strlen(PORT_NAME);
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(name_file, sizeof(name_file), PORTS_DIR "/%s/name", e->d_name);
		fd = open(name_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, name, sizeof(name));
		close(fd);
		/* The name, maybe with a newline after it. */
		found = n >= len && memcmp(name, PORT_NAME, (size_t)len) == 0 &&
			(n == len || (n == len + 1 && name[len] == '\n'));
		if (found)
			snprintf(path, cap, "/dev/%s", e->d_name);
	}
	closedir(dir);
	return found;
}

/* Opens the port, retrying every second: virtio_console may load later. */
static void open_port(void)
{
	bool said = false;

	for (;;) {
		char found[PATH_MAX];
		const char *path = chan.path;
		int fd;

		if (!path)
			path = find_port(found, sizeof(found)) ? found : PORT_FALLBACK;
		fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			chan.in = chan.out = fd;
			return;
		}
		if (!said) {
			fprintf(stderr, "vmm-agent: waiting for %s (%s)\n", path, strerror(errno));
			said = true;
		}
		sleep(1);
	}
}

/* ---- Requests and replies ---- */

struct call {
	const struct json_doc *doc;
	int args;               /* the arguments object, or -1 */
	int id;                 /* the request's "id" to echo, or -1 */
	struct json_writer *w;  /* the reply, at the value of "return" */
	bool delimited;         /* 0xFF before the reply (guest-sync-delimited) */
	char error[ERROR_MAX];  /* why the command failed */
};

/*
 * reply_frame[0] is the 0xFF of a delimited reply and the text follows it:
 * the reply goes out in one write, so one notification and one interrupt
 * each way, not two (the heartbeat's cost in an idle guest).
 */
static char reply_frame[1 + REPLY_MAX];
static char *const reply_text = reply_frame + 1;
/* An id string or a base64 argument, unescaped: never longer than the request. */
static char unescaped[REQUEST_MAX];

static __attribute__((format(printf, 2, 3))) bool fail(struct call *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return false;
}

/*
 * A string token as it was sent, for an error message: cut at QUOTE_MAX,
 * bytes past ASCII as '?', so that the reply stays UTF-8 whatever came.
 */
static const char *quoted(const struct json_doc *doc, int t)
{
	static char text[QUOTE_MAX + 1];
	const struct json_token *k = &doc->tok[t];
	size_t n = k->end - k->start;

	if (n > QUOTE_MAX)
		n = QUOTE_MAX;
	for (size_t i = 0; i < n; i++) {
		char ch = doc->text[k->start + i];

		text[i] = (unsigned char)ch < 0x80 ? ch : '?';
	}
	text[n] = '\0';
	return text;
}

static void put_cstring(struct json_writer *w, const char *s)
{
	json_put_string(w, s, strlen(s));
}

static void put_member(struct json_writer *w, const char *key, const char *value)
{
	json_key(w, key);
	put_cstring(w, value);
}

static void put_empty_object(struct json_writer *w)
{
	json_begin_object(w);
	json_end_object(w);
}

/* A reply's start when the request failed; the outer object stays open. */
static void begin_error(struct json_writer *w, const char *class, const char *desc)
{
	json_writer_init(w, reply_text, REPLY_MAX);
	json_begin_object(w);
	json_key(w, "error");
	json_begin_object(w);
	put_member(w, "class", class);
	put_member(w, "desc", desc);
	json_end_object(w);
}

/* Ends the reply: the id, the closing brace, the newline; sends it. */
static void send_reply(struct call *c)
{
	struct json_writer *w = c->w;

	if (c->id >= 0) {
		int64_t v;
		long n = json_string(c->doc, c->id, unescaped, sizeof(unescaped));

		json_key(w, "id");
		if (n >= 0)
			json_put_string(w, unescaped, (size_t)n);
		else if (json_int(c->doc, c->id, &v))
			json_put_int(w, v);
	}
	json_end_object(w);
	if (!json_writer_ok(w)) {
		/* An id too long to repeat: the host learns of the failure, not whose. */
		begin_error(w, "GenericError", "reply too long");
		json_end_object(w);
	}
	reply_frame[0] = (char)0xff;
	/* The writer keeps the byte after the text free for its NUL. */
	reply_text[w->len] = '\n';
	if (c->delimited)
		write_all(reply_frame, w->len + 2);
	else
		write_all(reply_text, w->len + 1);
}

static void send_error(struct call *c, const char *class, const char *desc)
{
	begin_error(c->w, class, desc);
	c->delimited = false;
	send_reply(c);
}

/*
 * Index of the entry of table (n entries, stride bytes apart, each
 * starting with its name; a NULL name ends it) named by the string at t,
 * or n: one search for commands, arguments, members and modes.
 */
static size_t lookup(const struct json_doc *doc, int t, const void *table, size_t n, size_t stride)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = *(const char *const *)((const char *)table + i * stride);

		if (!name)
			break;
		if (json_string_is(doc, t, name))
			return i;
	}
	return n;
}

#define LOOKUP(doc, t, table) \
	lookup(doc, t, table, sizeof(table) / sizeof((table)[0]), sizeof((table)[0]))

/* ---- Arguments ---- */

enum arg_type { ARG_INT, ARG_STRING, ARG_BOOL, ARG_STRINGS };

static const char *const arg_type_names[] = {
	[ARG_INT] = "integer",
	[ARG_STRING] = "string",
	[ARG_BOOL] = "boolean",
	[ARG_STRINGS] = "array of strings",
};

struct arg {
	const char *name;
	enum arg_type type;
	bool optional;
};

#define ARGS_MAX 5

struct command {
	const char *name;
	bool (*run)(struct call *c);
	bool silent;            /* no reply when it works (qemu-ga's success-response false) */
	struct arg args[ARGS_MAX];
};

static bool has_type(const struct json_doc *doc, int t, enum arg_type type)
{
	int64_t v;
	bool b;

	switch (type) {
	case ARG_INT:
		return json_int(doc, t, &v);
	case ARG_STRING:
		return doc->tok[t].type == JSON_STRING;
	case ARG_BOOL:
		return json_bool(doc, t, &b);
	case ARG_STRINGS:
		if (doc->tok[t].type != JSON_ARRAY)
			return false;
		/* Element by element along next: an index per element would be quadratic. */
		for (uint32_t i = 0, e = (uint32_t)t + 1; i < doc->tok[t].count;
		     i++, e = doc->tok[e].next)
			if (doc->tok[e].type != JSON_STRING)
				return false;
		return true;
	}
	return false;
}

/* Every argument known, given once, of its type; every mandatory one there. */
static bool check_args(struct call *c, const struct command *cmd)
{
	const struct json_doc *doc = c->doc;
	uint32_t members = c->args >= 0 ? doc->tok[c->args].count : 0;
	unsigned seen = 0;

	for (uint32_t m = 0, key = (uint32_t)c->args + 1; m < members;
	     m++, key = doc->tok[key + 1].next) {
		size_t i = LOOKUP(doc, (int)key, cmd->args);
		const struct arg *a = &cmd->args[i];

		if (i == ARGS_MAX)
			return fail(c, "Parameter '%s' is unexpected", quoted(doc, (int)key));
		if (seen & 1u << i)
			return fail(c, "Parameter '%s' is given twice", a->name);
		seen |= 1u << i;
		if (!has_type(doc, (int)key + 1, a->type))
			return fail(c, "Invalid parameter type for '%s', expected: %s", a->name,
				    arg_type_names[a->type]);
	}
	for (int i = 0; i < ARGS_MAX && cmd->args[i].name; i++)
		if (!cmd->args[i].optional && !(seen & 1u << i))
			return fail(c, "Parameter '%s' is missing", cmd->args[i].name);
	return true;
}

static int arg(const struct call *c, const char *name)
{
	return c->args < 0 ? -1 : json_get(c->doc, c->args, name);
}

/* Arguments are checked before a command runs: present means well typed. */
static int64_t arg_int(const struct call *c, const char *name, int64_t absent)
{
	int64_t v = absent;

	json_int(c->doc, arg(c, name), &v);
	return v;
}

static bool arg_bool(const struct call *c, const char *name, bool absent)
{
	bool v = absent;

	json_bool(c->doc, arg(c, name), &v);
	return v;
}

static bool arg_string(struct call *c, const char *name, char *buf, size_t cap)
{
	if (json_string(c->doc, arg(c, name), buf, cap) >= 0)
		return true;
	return fail(c, "Parameter '%s' is too long or holds a NUL", name);
}

/* A base64 argument, decoded; -1 when it is not base64. */
static long arg_base64(struct call *c, const char *name, uint8_t *out, size_t cap)
{
	/* Unescaped first: "\/" is how some encoders send '/'. */
	long n = json_string(c->doc, arg(c, name), unescaped, sizeof(unescaped));

	if (n >= 0)
		n = base64_decode(unescaped, (size_t)n, out, cap);
	if (n < 0)
		fail(c, "Parameter '%s' is not valid base64", name);
	return n;
}

/* ---- Commands: the protocol's own ---- */

static bool cmd_sync(struct call *c)
{
	json_put_int(c->w, arg_int(c, "id", 0));
	return true;
}

static bool cmd_sync_delimited(struct call *c)
{
	c->delimited = true;
	return cmd_sync(c);
}

static bool cmd_ping(struct call *c)
{
	put_empty_object(c->w);
	return true;
}

static bool cmd_info(struct call *c);

/* ---- Commands: the guest's identity and clock ---- */

/*
 * One value of os-release(5): shell-like, so "..." with backslash escapes,
 * '...' taken as it is, or a bare word. Returns false when it does not fit.
 */
static bool os_release_value(const char *s, const char *end, char *out, size_t cap)
{
	size_t n = 0;
	char quote = 0;

	if (s < end && (*s == '"' || *s == '\'')) {
		quote = *s++;
		while (end > s && end[-1] != quote)
			end--;
		if (end > s)
			end--;
	}
	for (; s < end; s++) {
		if (quote == '"' && *s == '\\' && end - s > 1)
			s++;
		if (n + 1 >= cap)
			return false;
		out[n++] = *s;
	}
	out[n] = '\0';
	return true;
}

static bool cmd_get_osinfo(struct call *c)
{
	static const struct {
		const char *key, *member;
	} fields[] = {
		{ "ID", "id" }, { "NAME", "name" }, { "PRETTY_NAME", "pretty-name" },
		{ "VERSION", "version" }, { "VERSION_ID", "version-id" },
		{ "VARIANT", "variant" }, { "VARIANT_ID", "variant-id" },
	};
	static char text[16384], values[sizeof(fields) / sizeof(fields[0])][OS_VALUE_MAX];
	struct utsname u;
	ssize_t len = -1;
	int fd;

	if (uname(&u) < 0)
		return fail(c, "uname: %s", strerror(errno));
	fd = open("/etc/os-release", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open("/usr/lib/os-release", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		len = read(fd, text, sizeof(text));
		close(fd);
	}
	memset(values, 0, sizeof(values));
	for (const char *line = text, *end = text + (len > 0 ? len : 0); line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		const char *eq;

		eol = eol ? eol : end;
		eq = memchr(line, '=', (size_t)(eol - line));
		for (size_t i = 0; eq && i < sizeof(fields) / sizeof(fields[0]); i++) {
			if ((size_t)(eq - line) == strlen(fields[i].key) &&
			    memcmp(line, fields[i].key, (size_t)(eq - line)) == 0 &&
			    !os_release_value(eq + 1, eol, values[i], OS_VALUE_MAX))
				values[i][0] = '\0';
		}
		line = eol < end ? eol + 1 : end;
	}

	json_begin_object(c->w);
	put_member(c->w, "kernel-release", u.release);
	put_member(c->w, "kernel-version", u.version);
	put_member(c->w, "machine", u.machine);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (values[i][0])
			put_member(c->w, fields[i].member, values[i]);
	json_end_object(c->w);
	return true;
}

static bool cmd_get_host_name(struct call *c)
{
	char name[HOST_NAME_MAX + 1] = { 0 };

	if (gethostname(name, sizeof(name) - 1) < 0)
		return fail(c, "gethostname: %s", strerror(errno));
	json_begin_object(c->w);
	put_member(c->w, "host-name", name);
	json_end_object(c->w);
	return true;
}

static bool cmd_get_time(struct call *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	json_put_int(c->w, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
	return true;
}

/* Without a time qemu-ga runs hwclock -s; that is left to the guest here. */
static bool cmd_set_time(struct call *c)
{
	int64_t ns = arg_int(c, "time", 0);
	struct timeval tv = { .tv_sec = ns / 1000000000, .tv_usec = ns % 1000000000 / 1000 };

	if (ns < 0)
		return fail(c, "Invalid parameter 'time'");
	if (arg(c, "time") >= 0 && settimeofday(&tv, NULL) < 0)
		return fail(c, "Failed to set time to guest: %s", strerror(errno));
	put_empty_object(c->w);
	return true;
}

/* ---- Processes ---- */

static int dev_null = -1;

/*
 * Starts argv[0] (searched in PATH) with envp (NULL: the agent's own
 * environment) and stdio[] as its descriptors 0-2. Returns the pid, or -1
 * with errno, also when exec failed: the child sends exec's errno through
 * a close-on-exec pipe, which a successful exec closes empty.
 */
static pid_t spawn(char *const argv[], char *const envp[], const int stdio[3])
{
	int report[2], err = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(report, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		/* The mask and ignored signals would outlive exec. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		for (int fd = 0; fd < 3; fd++)
			dup2(stdio[fd], fd);
		if (envp)
			execvpe(argv[0], argv, envp);
		else
			execvp(argv[0], argv);
		/* Should the report be lost, the parent sees exit status 127. */
		err = errno;
		n = write(report[1], &err, sizeof(err));
		_exit(127);
	}
	err = errno;
	close(report[1]);
	if (pid < 0) {
		close(report[0]);
		errno = err;
		return -1;
	}
	do
		n = read(report[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n > 0) {
		waitpid(pid, NULL, 0);
		errno = err;
		return -1;
	}
	return pid;
}

struct capture {
	int fd;                 /* the pipe's read end, -1 once at its end */
	size_t len;
	bool truncated;
	uint8_t data[CAPTURE_MAX];
};

struct process {
	pid_t pid;              /* 0: a free slot */
	bool reaped;
	int status;
	struct capture out, err;
	int in_fd;              /* input-data still to write, or -1 */
	size_t in_len, in_done;
	uint8_t in[INPUT_MAX];
};

static struct process processes[PROCESSES_MAX];
static char string_pool[REQUEST_MAX];
static char *exec_argv[EXEC_STRINGS_MAX + 2], *exec_envp[EXEC_STRINGS_MAX + 1];
static char b64_text[BASE64_ENCODED_LEN(CAPTURE_MAX) + 1];

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void forget(struct process *p)
{
	close_fd(&p->out.fd);
	close_fd(&p->err.fd);
	close_fd(&p->in_fd);
	p->pid = 0;
}

/*
 * The strings of array argument name into vec (NULL-terminated), unescaped
 * into string_pool from *used: it holds them all, as none is longer
 * unescaped than in the request.
 */
static bool arg_strings(struct call *c, const char *name, char **vec, size_t *count, size_t *used)
{
	int t = arg(c, name);

	for (uint32_t i = 0, e = (uint32_t)t + 1; t >= 0 && i < c->doc->tok[t].count;
	     i++, e = c->doc->tok[e].next) {
		long n;

		if (*count == EXEC_STRINGS_MAX)
			return fail(c, "Parameter '%s' has more than %d strings", name,
				    EXEC_STRINGS_MAX);
		n = json_string(c->doc, (int)e, string_pool + *used, sizeof(string_pool) - *used);
		if (n < 0)
			return fail(c, "Parameter '%s' holds a NUL", name);
		vec[(*count)++] = string_pool + *used;
		*used += (size_t)n + 1;
	}
	vec[*count] = NULL;
	return true;
}

static void start_capture(struct capture *cap, int fd)
{
	cap->fd = fd;
	cap->len = 0;
	cap->truncated = false;
}

/* A pipe whose end in the agent (end 0 or 1) does not block. */
static bool make_pipe(int fds[2], int agent_end)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return false;
	fcntl(fds[agent_end], F_SETFL, O_NONBLOCK);
	return true;
}

static bool cmd_exec(struct call *c)
{
	struct process *p = NULL;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, stdio[3];
	bool capture = arg_bool(c, "capture-output", false), has_input = arg(c, "input-data") >= 0;
	size_t argc = 1, envc = 0, used;
	long in_len = 0;
	pid_t pid;
	int error;

	for (int i = 0; i < PROCESSES_MAX && !p; i++)
		if (processes[i].pid == 0)
			p = &processes[i];
	if (!p)
		return fail(c, "at most %d processes: guest-exec-status forgets those that exited",
			    PROCESSES_MAX);
	if (!arg_string(c, "path", string_pool, PATH_MAX))
		return false;
	exec_argv[0] = string_pool;
	used = strlen(string_pool) + 1;
	if (!arg_strings(c, "arg", exec_argv, &argc, &used) ||
	    !arg_strings(c, "env", exec_envp, &envc, &used))
		return false;
	if (has_input && (in_len = arg_base64(c, "input-data", p->in, sizeof(p->in))) < 0)
		return false;

	if ((has_input && !make_pipe(in, 1)) ||
	    (capture && (!make_pipe(out, 0) || !make_pipe(err, 0)))) {
		error = errno;
		pid = -1;
	} else {
		stdio[0] = has_input ? in[0] : dev_null;
		stdio[1] = capture ? out[1] : dev_null;
		stdio[2] = capture ? err[1] : dev_null;
		pid = spawn(exec_argv, arg(c, "env") >= 0 ? exec_envp : NULL, stdio);
		error = errno;
	}
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	if (pid < 0) {
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&err[0]);
		return fail(c, "Failed to execute child process '%s': %s", exec_argv[0],
			    strerror(error));
	}
	p->pid = pid;
	p->reaped = false;
	start_capture(&p->out, out[0]);
	start_capture(&p->err, err[0]);
	p->in_fd = in[1];
	p->in_len = (size_t)in_len;
	p->in_done = 0;
	/* Nothing to write: the child sees the end of its input at once. */
	if (p->in_len == 0)
		close_fd(&p->in_fd);

	json_begin_object(c->w);
	json_key(c->w, "pid");
	json_put_int(c->w, pid);
	json_end_object(c->w);
	return true;
}

static void put_capture(struct json_writer *w, const char *data_key, const char *truncated_key,
			const struct capture *cap)
{
	if (cap->len == 0)
		return;
	json_key(w, data_key);
	json_put_string(w, b64_text, (size_t)base64_encode(cap->data, cap->len, b64_text,
								 sizeof(b64_text)));
	if (cap->truncated) {
		json_key(w, truncated_key);
		json_put_bool(w, true);
	}
}

static bool cmd_exec_status(struct call *c)
{
	int64_t pid = arg_int(c, "pid", 0);
	struct process *p = NULL;
	bool exited;

	for (int i = 0; i < PROCESSES_MAX && !p; i++)
		if (processes[i].pid > 0 && processes[i].pid == pid)
			p = &processes[i];
	if (!p)
		return fail(c, "Invalid parameter 'pid'");
	/* Until the pipes are at their end, output may still be on its way. */
	exited = p->reaped && p->out.fd < 0 && p->err.fd < 0;
	json_begin_object(c->w);
	json_key(c->w, "exited");
	json_put_bool(c->w, exited);
	if (exited) {
		if (WIFEXITED(p->status)) {
			json_key(c->w, "exitcode");
			json_put_int(c->w, WEXITSTATUS(p->status));
		} else if (WIFSIGNALED(p->status)) {
			json_key(c->w, "signal");
			json_put_int(c->w, WTERMSIG(p->status));
		}
		put_capture(c->w, "out-data", "out-truncated", &p->out);
		put_capture(c->w, "err-data", "err-truncated", &p->err);
		forget(p);
	}
	json_end_object(c->w);
	return true;
}

/*
 * Takes what a child wrote, one read per wakeup so that a child writing
 * without end cannot keep the port waiting; past CAPTURE_MAX it is read
 * and dropped, so the child goes on.
 */
static void drain(struct capture *cap)
{
	static uint8_t discard[CAPTURE_MAX];
	bool full = cap->len == CAPTURE_MAX;
	ssize_t n;

	do
		n = full ? read(cap->fd, discard, sizeof(discard))
			 : read(cap->fd, cap->data + cap->len, CAPTURE_MAX - cap->len);
	while (n < 0 && errno == EINTR);
	if (n > 0 && full)
		cap->truncated = true;
	else if (n > 0)
		cap->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		close_fd(&cap->fd);
}

static void feed_input(struct process *p)
{
	ssize_t n;

	do
		n = write(p->in_fd, p->in + p->in_done, p->in_len - p->in_done);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		p->in_done += (size_t)n;
	/* Done, or the child closed its input (EPIPE): either way no more. */
	if (p->in_done == p->in_len || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
		close_fd(&p->in_fd);
}

static void reap(void)
{
	for (int i = 0; i < PROCESSES_MAX; i++) {
		struct process *p = &processes[i];

		if (p->pid > 0 && !p->reaped && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
			p->reaped = true;
	}
}

/* ---- guest-shutdown ---- */

static bool cmd_shutdown(struct call *c)
{
	static const struct {
		const char *mode;
		const char *argv[6];
		int howto;
	} modes[] = {
		{ "powerdown", { SHUTDOWN, "-h", "-P", "+0", SHUTDOWN_MESSAGE }, RB_POWER_OFF },
		{ "halt", { SHUTDOWN, "-h", "-H", "+0", SHUTDOWN_MESSAGE }, RB_HALT_SYSTEM },
		{ "reboot", { SHUTDOWN, "-r", "+0", SHUTDOWN_MESSAGE }, RB_AUTOBOOT },
	};
	int t = arg(c, "mode"), stdio[3] = { dev_null, dev_null, dev_null }, status;
	size_t m = t < 0 ? 0 : LOOKUP(c->doc, t, modes);
	pid_t pid;

	if (m == sizeof(modes) / sizeof(modes[0]))
		return fail(c, "mode is invalid (valid values are: halt|powerdown|reboot)");
	if (access(SHUTDOWN, X_OK) == 0) {
		pid = spawn((char *const *)modes[m].argv, NULL, stdio);
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			return fail(c, "child process has failed to shutdown");
		return true;
	}
	/* No init to ask (a small initramfs): what init would do at the end. */
	sync();
	reboot(modes[m].howto);
	return fail(c, "failed to shut down: %s", strerror(errno));
}

/* ---- Files ---- */

struct open_file {
	int64_t handle;
	int fd;                 /* -1: a free slot */
};

static struct open_file files[FILES_MAX];
static int64_t next_handle = FILE_HANDLE_FIRST;
static uint8_t file_data[FILE_READ_MAX > INPUT_MAX ? FILE_READ_MAX : INPUT_MAX];

static struct open_file *file_arg(struct call *c)
{
	int64_t handle = arg_int(c, "handle", -1);

	for (int i = 0; i < FILES_MAX; i++)
		if (files[i].fd >= 0 && files[i].handle == handle)
			return &files[i];
	fail(c, "handle '%lld' has not been found", (long long)handle);
	return NULL;
}

static bool cmd_file_open(struct call *c)
{
	/* fopen(3)'s modes, as qemu-ga takes them. */
	static const struct {
		const char *mode;
		int flags;
	} modes[] = {
		{ "r", O_RDONLY }, { "rb", O_RDONLY },
		{ "w", O_WRONLY | O_CREAT | O_TRUNC }, { "wb", O_WRONLY | O_CREAT | O_TRUNC },
		{ "a", O_WRONLY | O_CREAT | O_APPEND }, { "ab", O_WRONLY | O_CREAT | O_APPEND },
		{ "r+", O_RDWR }, { "rb+", O_RDWR }, { "r+b", O_RDWR },
		{ "w+", O_RDWR | O_CREAT | O_TRUNC }, { "wb+", O_RDWR | O_CREAT | O_TRUNC },
		{ "w+b", O_RDWR | O_CREAT | O_TRUNC },
		{ "a+", O_RDWR | O_CREAT | O_APPEND }, { "ab+", O_RDWR | O_CREAT | O_APPEND },
		{ "a+b", O_RDWR | O_CREAT | O_APPEND },
	};
	static char path[PATH_MAX];
	int t = arg(c, "mode");
	size_t m = t < 0 ? 0 : LOOKUP(c->doc, t, modes);
	struct open_file *f = NULL;
	int fd;

	if (!arg_string(c, "path", path, sizeof(path)))
		return false;
	if (m == sizeof(modes) / sizeof(modes[0]))
		return fail(c, "invalid file open mode '%s'", quoted(c->doc, t));
	for (int i = 0; i < FILES_MAX && !f; i++)
		if (files[i].fd < 0)
			f = &files[i];
	if (!f)
		return fail(c, "at most %d open files", FILES_MAX);
	/* Non-blocking, as in qemu-ga: a FIFO must not stall the agent. */
	fd = open(path, modes[m].flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
	if (fd < 0)
		return fail(c, "failed to open file '%s' (mode: '%s'): %s", path, modes[m].mode,
			    strerror(errno));
	f->fd = fd;
	f->handle = next_handle++;
	json_put_int(c->w, f->handle);
	return true;
}

static bool cmd_file_close(struct call *c)
{
	struct open_file *f = file_arg(c);

	if (!f)
		return false;
	close_fd(&f->fd);
	put_empty_object(c->w);
	return true;
}

/* The agent keeps no buffer of its own: what was written is with the kernel. */
static bool cmd_file_flush(struct call *c)
{
	if (!file_arg(c))
		return false;
	put_empty_object(c->w);
	return true;
}

static bool cmd_file_read(struct call *c)
{
	struct open_file *f = file_arg(c);
	int64_t count = arg_int(c, "count", FILE_READ_DEFAULT);
	size_t done = 0;
	bool eof = false;

	if (!f)
		return false;
	if (count < 0)
		return fail(c, "value '%lld' is invalid for argument count", (long long)count);
	if (count > FILE_READ_MAX)
		count = FILE_READ_MAX;
	while (done < (size_t)count) {
		ssize_t n = read(f->fd, file_data + done, (size_t)count - done);

		if (n > 0) {
			done += (size_t)n;
		} else if (n == 0) {
			eof = true;
			break;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else if (errno != EINTR) {
			return fail(c, "failed to read file: %s", strerror(errno));
		}
	}
	json_begin_object(c->w);
	json_key(c->w, "count");
	json_put_int(c->w, (int64_t)done);
	json_key(c->w, "buf-b64");
	json_put_string(c->w, b64_text, (size_t)base64_encode(file_data, done, b64_text,
								 sizeof(b64_text)));
	json_key(c->w, "eof");
	json_put_bool(c->w, eof);
	json_end_object(c->w);
	return true;
}

static bool cmd_file_write(struct call *c)
{
	struct open_file *f = file_arg(c);
	long len = f ? arg_base64(c, "buf-b64", file_data, sizeof(file_data)) : -1;
	int64_t count = arg_int(c, "count", len);
	size_t done = 0;

	if (len < 0)
		return false;
	if (count < 0 || count > len)
		return fail(c, "value '%lld' is invalid for argument count", (long long)count);
	while (done < (size_t)count) {
		ssize_t n = write(f->fd, file_data + done, (size_t)count - done);

		if (n > 0)
			done += (size_t)n;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		else if (n < 0 && errno != EINTR)
			return fail(c, "failed to write to file: %s", strerror(errno));
	}
	json_begin_object(c->w);
	json_key(c->w, "count");
	json_put_int(c->w, (int64_t)done);
	json_key(c->w, "eof");
	json_put_bool(c->w, false);
	json_end_object(c->w);
	return true;
}

/* ---- The command table, in the order guest-info lists it ---- */

static const struct command commands[] = {
	{ .name = "guest-sync-delimited", .run = cmd_sync_delimited,
	  .args = { { "id", ARG_INT, false } } },
	{ .name = "guest-sync", .run = cmd_sync, .args = { { "id", ARG_INT, false } } },
	{ .name = "guest-ping", .run = cmd_ping },
	{ .name = "guest-info", .run = cmd_info },
	{ .name = "guest-get-osinfo", .run = cmd_get_osinfo },
	{ .name = "guest-get-host-name", .run = cmd_get_host_name },
	{ .name = "guest-get-time", .run = cmd_get_time },
	{ .name = "guest-set-time", .run = cmd_set_time, .args = { { "time", ARG_INT, true } } },
	{ .name = "guest-shutdown", .run = cmd_shutdown, .silent = true,
	  .args = { { "mode", ARG_STRING, true } } },
	{ .name = "guest-exec", .run = cmd_exec,
	  .args = { { "path", ARG_STRING, false }, { "arg", ARG_STRINGS, true },
		    { "env", ARG_STRINGS, true }, { "input-data", ARG_STRING, true },
		    { "capture-output", ARG_BOOL, true } } },
	{ .name = "guest-exec-status", .run = cmd_exec_status,
	  .args = { { "pid", ARG_INT, false } } },
	{ .name = "guest-file-open", .run = cmd_file_open,
	  .args = { { "path", ARG_STRING, false }, { "mode", ARG_STRING, true } } },
	{ .name = "guest-file-close", .run = cmd_file_close,
	  .args = { { "handle", ARG_INT, false } } },
	{ .name = "guest-file-read", .run = cmd_file_read,
	  .args = { { "handle", ARG_INT, false }, { "count", ARG_INT, true } } },
	{ .name = "guest-file-write", .run = cmd_file_write,
	  .args = { { "handle", ARG_INT, false }, { "buf-b64", ARG_STRING, false },
		    { "count", ARG_INT, true } } },
	{ .name = "guest-file-flush", .run = cmd_file_flush,
	  .args = { { "handle", ARG_INT, false } } },
};

#define COMMANDS (sizeof(commands) / sizeof(commands[0]))

static bool cmd_info(struct call *c)
{
	json_begin_object(c->w);
	put_member(c->w, "version", VMM_AGENT_VERSION);
	json_key(c->w, "supported_commands");
	json_begin_array(c->w);
	for (size_t i = 0; i < COMMANDS; i++) {
		json_begin_object(c->w);
		put_member(c->w, "name", commands[i].name);
		json_key(c->w, "enabled");
		json_put_bool(c->w, true);
		json_key(c->w, "success-response");
		json_put_bool(c->w, !commands[i].silent);
		json_end_object(c->w);
	}
	json_end_array(c->w);
	json_end_object(c->w);
	return true;
}

/* ---- Dispatch ---- */

static const char *parse_error(enum json_result r)
{
	switch (r) {
	case JSON_E_DEPTH:
		return "JSON parse error, nested too deeply";
	case JSON_E_TRAILING:
		return "JSON parse error, more after the request";
	default:
		return "JSON parse error";
	}
}

/* The request's members, as QMP allows them: execute, arguments, id. */
static bool check_request(struct call *c, int *execute)
{
	static const char *const members[] = { "execute", "arguments", "id" };
	const struct json_doc *doc = c->doc;
	uint32_t key = 1;
	unsigned seen = 0;

	*execute = json_get(doc, 0, "execute");
	c->args = json_get(doc, 0, "arguments");
	for (uint32_t m = 0; m < doc->tok[0].count; m++, key = doc->tok[key + 1].next) {
		size_t i = LOOKUP(doc, (int)key, members);

		if (i == sizeof(members) / sizeof(members[0]))
			return fail(c, "QMP input member '%s' is unexpected", quoted(doc, (int)key));
		if (seen & 1u << i)
			return fail(c, "QMP input member '%s' is given twice", members[i]);
		seen |= 1u << i;
	}
	if (*execute < 0)
		return fail(c, "QMP input lacks member 'execute'");
	if (doc->tok[*execute].type != JSON_STRING)
		return fail(c, "QMP input member 'execute' must be a string");
	if (c->args >= 0 && doc->tok[c->args].type != JSON_OBJECT)
		return fail(c, "QMP input member 'arguments' must be an object");
	return true;
}

static void handle_request(const char *text, size_t len)
{
	static struct json_token tokens[REQUEST_TOKENS];
	static struct json_writer w;
	struct json_doc doc;
	struct call c = { .doc = &doc, .args = -1, .id = -1, .w = &w };
	enum json_result r = json_parse(&doc, text, len, tokens, REQUEST_TOKENS);
	const struct command *cmd;
	int execute, id;
	int64_t v;

	if (r != JSON_OK) {
		send_error(&c, "GenericError", parse_error(r));
		return;
	}
	if (tokens[0].type != JSON_OBJECT) {
		send_error(&c, "GenericError", "QMP input must be a JSON object");
		return;
	}
	/* Echoed as it came; only what the writer can say again exactly. */
	id = json_get(&doc, 0, "id");
	if (id >= 0 && json_string(&doc, id, unescaped, sizeof(unescaped)) < 0 &&
	    !json_int(&doc, id, &v)) {
		send_error(&c, "GenericError",
			   "QMP input member 'id' must be a string or an integer");
		return;
	}
	c.id = id;
	if (!check_request(&c, &execute)) {
		send_error(&c, "GenericError", c.error);
		return;
	}
	cmd = &commands[LOOKUP(&doc, execute, commands)];
	if (cmd == commands + COMMANDS) {
		snprintf(c.error, sizeof(c.error), "The command %s has not been found",
			 quoted(&doc, execute));
		send_error(&c, "CommandNotFound", c.error);
		return;
	}
	if (!check_args(&c, cmd)) {
		send_error(&c, "GenericError", c.error);
		return;
	}
	json_writer_init(&w, reply_text, REPLY_MAX);
	json_begin_object(&w);
	json_key(&w, "return");
	if (!cmd->run(&c))
		send_error(&c, "GenericError", c.error);
	else if (!cmd->silent)
		send_reply(&c);
}

/* ---- The loop ---- */

static struct framer framer;

static void take_input(const uint8_t *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum frame r = frame_byte(&framer, data[i]);
		struct json_writer w;
		struct call c = { .id = -1, .w = &w };

		if (r == FRAME_DONE)
			handle_request(framer.text, framer.len);
		else if (r == FRAME_TOO_LONG)
			send_error(&c, "GenericError", "request too long");
	}
}

/* Only there to interrupt ppoll: the loop reaps. */
static void on_sigchld(int sig)
{
	(void)sig;
}

/*
 * Reads the port, returning false when it should rest a second: a port
 * whose host side is closed reads 0 at once, forever, until the host is
 * back.
 */
static bool read_port(void)
{
	static uint8_t buf[16384];
	ssize_t n = read(chan.in, buf, sizeof(buf));

	if (n > 0) {
		take_input(buf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (chan.stdio)
		exit(n == 0 ? 0 : 1);
	if (n == 0)
		return false;
	/* Gone (unplugged, module unloaded): wait for it to come back. */
	fprintf(stderr, "vmm-agent: reading the port: %s\n", strerror(errno));
	close(chan.in);
	open_port();
	return true;
}

static void serve(const sigset_t *unblocked)
{
	int64_t rest_until = 0;

	for (;;) {
		struct pollfd fds[3 * PROCESSES_MAX + 1];
		int *watched[3 * PROCESSES_MAX];
		struct process *owner[3 * PROCESSES_MAX];
		struct timespec pause;
		int64_t now = now_ms();
		bool resting = now < rest_until;
		nfds_t n = 0, children;
		int ready;

		for (int i = 0; i < PROCESSES_MAX; i++) {
			struct process *p = &processes[i];
			int *fd[3] = { &p->out.fd, &p->err.fd, &p->in_fd };

			for (int k = 0; p->pid > 0 && k < 3; k++) {
				if (*fd[k] < 0)
					continue;
				fds[n].fd = *fd[k];
				fds[n].events = k < 2 ? POLLIN : POLLOUT;
				watched[n] = fd[k];
				owner[n++] = p;
			}
		}
		children = n;
		if (resting) {
			pause.tv_sec = (rest_until - now) / 1000;
			pause.tv_nsec = (rest_until - now) % 1000 * 1000000;
		} else {
			fds[n++] = (struct pollfd){ .fd = chan.in, .events = POLLIN };
		}
		ready = ppoll(fds, n, resting ? &pause : NULL, unblocked);
		if (ready < 0 && errno != EINTR) {
			fprintf(stderr, "vmm-agent: poll: %s\n", strerror(errno));
			exit(1);
		}
		/* Interrupted (SIGCHLD), revents say nothing: only reap. */
		for (nfds_t i = 0; ready > 0 && i < children; i++) {
			struct process *p = owner[i];

			if (!fds[i].revents)
				continue;
			if (watched[i] == &p->in_fd)
				feed_input(p);
			else
				drain(watched[i] == &p->out.fd ? &p->out : &p->err);
		}
		/* Before the port's requests: guest-exec-status sees every exit so far. */
		reap();
		if (ready > 0 && !resting && fds[children].revents && !read_port())
			rest_until = now_ms() + 1000;
	}
}

/* Children get /dev/null for 0-2 by dup2: those numbers must not be the agent's pipes. */
static void keep_standard_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: vmm-agent [-p PATH | --stdio]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigchld };
	sigset_t chld, unblocked;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stdio") == 0)
			chan.stdio = true;
		else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
			chan.path = argv[++i];
		else
			usage();
	}
	if (chan.stdio && chan.path)
		usage();
	keep_standard_fds();
	dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < FILES_MAX; i++)
		files[i].fd = -1;

	/* A host that hangs up must not kill the agent with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGCHLD, &sa, NULL);
	/* SIGCHLD only inside ppoll: no exit goes unnoticed between checks. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &unblocked);
	sigdelset(&unblocked, SIGCHLD);

	if (chan.stdio) {
		chan.in = STDIN_FILENO;
		chan.out = STDOUT_FILENO;
	} else {
		open_port();
	}
	serve(&unblocked);
}
