/*
 * Parser of the boot configuration; the format is described in config.h.
 * It runs inside the UEFI application as well as in host tests, so it uses
 * only freestanding headers, the string functions lib/string.c provides and
 * lib/fmt. The text is never modified and never read past len: everything
 * works on (pointer, length) spans of it.
 */
#include "boot/config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/fmt.h"
#include "lib/store.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KIB 1024ULL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define LINE_CHARS_MAX 255
/* Values echoed in messages are cut here so the rest of the message fits. */
#define SHOWN_MAX 40

struct span {
	const char *s;
	size_t n;
};

static struct span span_sub(struct span v, size_t from, size_t to)
{
	return (struct span){ v.s + from, to - from };
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static struct span trim(struct span v)
{
	while (v.n && is_blank(v.s[0])) {
		v.s++;
		v.n--;
	}
	while (v.n && is_blank(v.s[v.n - 1]))
		v.n--;
	return v;
}

/* Index of the first c in v, or v.n if there is none. */
static size_t find(struct span v, char c)
{
	size_t i = 0;

	while (i < v.n && v.s[i] != c)
		i++;
	return i;
}

static bool span_is(struct span v, const char *word)
{
	return strlen(word) == v.n && !memcmp(v.s, word, v.n);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

struct parser;

struct key {
	const char *name;
	int (*set)(struct parser *p, const struct key *k, struct span v);
	unsigned max_count; /* how often one section may give it */
};

struct section_type {
	const char *type;
	bool named;
	int (*open)(struct parser *p, struct span name);
	int (*close)(struct parser *p); /* NULL: nothing to check */
	const struct key *keys;
	size_t key_count;
};

/* Closing a [vm] looks up where some of its keys were given, by index. */
enum vm_key {
	VM_KEY_MEMORY,
	VM_KEY_IMAGE,
	VM_KEY_BOOT,
	VM_KEY_LOAD,
	VM_KEY_ENTRY,
	VM_KEY_CMDLINE,
	VM_KEY_INITRD,
	VM_KEY_DISK,
	VM_KEY_STORE_DISK,
	VM_KEY_NIC,
	VM_KEY_AUTOSTART,
	VM_KEY_ROLE,
	VM_KEY_AUTH_KEY,
	VM_KEY_GUEST_AGENT,
	VM_KEY_TIME_SYNC,
	VM_KEY_WATCHDOG,
	VM_KEY_FREE_PAGE_REPORTING,
	VM_KEY_ON_HEARTBEAT_LOSS,
	VM_KEY_HEARTBEAT_GRACE,
	VM_KEY_COUNT,
};

/* [vm] has the most keys; the other sections are checked against it below. */
#define SECTION_KEYS_MAX VM_KEY_COUNT

struct parser {
	struct config *cfg;
	struct cfg_diag *diag;
	unsigned line;
	const struct section_type *sec;        /* NULL before the first header */
	char label[48];                        /* "[vm web]", for messages */
	unsigned key_count[SECTION_KEYS_MAX];  /* per key of sec: times given */
	unsigned key_line[SECTION_KEYS_MAX];   /* per key of sec: line first given */
	unsigned hypervisor_line;              /* 0 until [hypervisor] is seen */
	/* A nic's network may be defined later, so it is checked at the end. */
	unsigned nic_line[CFG_MAX_VMS][CFG_MAX_NICS];
	char shown[SHOWN_MAX + 1];             /* show()'s copy */
};

/*
 * A span of the text as a string, for a message: a NUL-terminated copy, cut
 * at SHOWN_MAX. Spans are not terminated, and lib/fmt's "%.*s" looks at the
 * byte after the precision, which may lie past the end of the text.
 * One buffer: at most one show() per message.
 */
static const char *show(struct parser *p, struct span v)
{
	size_t n = v.n < SHOWN_MAX ? v.n : SHOWN_MAX;

	memcpy(p->shown, v.s, n);
	p->shown[n] = '\0';
	return p->shown;
}

static void set_diag(struct parser *p, unsigned line, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void set_diag(struct parser *p, unsigned line, const char *format, ...)
{
	va_list ap;

	p->diag->line = line;
	va_start(ap, format);
	fmt_vsnprintf(p->diag->message, sizeof(p->diag->message), format, ap);
	va_end(ap);
}

/*
 * Reports an error and is -1. A macro, so that the compiler sees the -1:
 * outputs that error paths leave unset are then not taken for uses of
 * uninitialized variables at -O2.
 */
#define fail(p, line, ...) (set_diag((p), (line), __VA_ARGS__), -1)

static int bad_value(struct parser *p, const struct key *k, struct span v,
		     const char *expected)
{
	return fail(p, p->line, "bad value '%s' for '%s' in %s: expected %s", show(p, v),
		    k->name, p->label, expected);
}

struct word {
	const char *name; /* lowercase: input is matched case-insensitively */
	unsigned value;
};

static const struct word log_levels[] = {
	{ "error", LOG_ERROR },
	{ "warn", LOG_WARN },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

static const struct word boot_modes[] = {
	{ "real", VM_BOOT_REAL },
	{ "long", VM_BOOT_LONG },
	{ "linux", VM_BOOT_LINUX },
};

static const struct word selftests[] = {
	{ "none", CFG_SELFTEST_NONE },
	{ "exception", CFG_SELFTEST_EXCEPTION },
	{ "nmi", CFG_SELFTEST_NMI },
	{ "store", CFG_SELFTEST_STORE },
	{ "store-stress", CFG_SELFTEST_STORE_STRESS },
};

/* Matched as words, so that a refused rate is answered with the whole list. */
static const struct word bauds[] = {
	{ "9600", 9600 },
	{ "19200", 19200 },
	{ "38400", 38400 },
	{ "57600", 57600 },
	{ "115200", 115200 },
};

static const struct word com_ports[] = {
	{ "com1", 0x3f8 },
	{ "com2", 0x2f8 },
	{ "com3", 0x3e8 },
	{ "com4", 0x2e8 },
};

static const struct word booleans[] = {
	{ "yes", true },
	{ "no", false },
	{ "true", true },
	{ "false", false },
	{ "on", true },
	{ "off", false },
	{ "1", true },
	{ "0", false },
};

/* Each with the power of two it multiplies by; "" is plain bytes. */
static const struct word watchdogs[] = {
	{ "none", CFG_WATCHDOG_NONE },
	{ "i6300esb", CFG_WATCHDOG_I6300ESB },
};

static const struct word heartbeat_actions[] = {
	{ "none", CFG_HEARTBEAT_NONE },
	{ "reset", CFG_HEARTBEAT_RESET },
	{ "turnoff", CFG_HEARTBEAT_TURN_OFF },
};

static const struct word roles[] = {
	{ "guest", CFG_ROLE_GUEST },
	{ "management", CFG_ROLE_MANAGEMENT },
};

static const struct word size_suffixes[] = {
	{ "", 0 },
	{ "k", 10 },
	{ "kib", 10 },
	{ "m", 20 },
	{ "mib", 20 },
	{ "g", 30 },
	{ "gib", 30 },
};

static bool find_word(const struct word *words, size_t count, struct span v,
		      unsigned *value)
{
	for (size_t i = 0; i < count; i++) {
		const char *w = words[i].name;
		size_t j = 0;

		while (j < v.n && w[j] && lower(v.s[j]) == w[j])
			j++;
		if (j == v.n && !w[j]) {
			*value = words[i].value;
			return true;
		}
	}
	return false;
}

static int get_word(struct parser *p, const struct key *k, struct span v,
		    const struct word *words, size_t count, unsigned *value)
{
	char expected[96];
	size_t used = 0;

	if (find_word(words, count, v, value))
		return 0;
	expected[0] = '\0';
	for (size_t i = 0; i < count && used < sizeof(expected); i++) {
		const char *sep = !i ? "" : i + 1 < count ? ", " : " or ";

		used += (size_t)fmt_snprintf(expected + used, sizeof(expected) - used, "%s%s",
					     sep, words[i].name);
	}
	return bad_value(p, k, v, expected);
}

/* yes/no, true/false, on/off. */
static int get_boolean(struct parser *p, const struct key *k, struct span v, bool *value)
{
	unsigned on;

	if (get_word(p, k, v, booleans, ARRAY_SIZE(booleans), &on))
		return -1;
	*value = on;
	return 0;
}

enum num { NUM_OK, NUM_BAD, NUM_OVERFLOW };

/* Reads the leading decimal digits of v; *used says how many there were. */
static enum num scan_decimal(struct span v, uint64_t *out, size_t *used)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < v.n && v.s[i] >= '0' && v.s[i] <= '9'; i++) {
		unsigned d = (unsigned)(v.s[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return NUM_OVERFLOW;
		x = x * 10 + d;
	}
	*out = x;
	*used = i;
	return NUM_OK;
}

/* Decimal, or hexadecimal after 0x. */
static enum num parse_number(struct span v, uint64_t *out)
{
	size_t used;
	enum num st;

	if (v.n > 2 && v.s[0] == '0' && lower(v.s[1]) == 'x') {
		uint64_t x = 0;

		for (size_t i = 2; i < v.n; i++) {
			int d = fmt_hex_digit(v.s[i]);

			if (d < 0)
				return NUM_BAD;
			if (x > UINT64_MAX >> 4)
				return NUM_OVERFLOW;
			x = x << 4 | (unsigned)d;
		}
		*out = x;
		return NUM_OK;
	}
	st = scan_decimal(v, out, &used);
	if (st == NUM_OK && (!used || used != v.n))
		return NUM_BAD;
	return st;
}

static enum num parse_size(struct span v, uint64_t *out)
{
	uint64_t x;
	size_t used;
	unsigned shift;
	enum num st = scan_decimal(v, &x, &used);

	if (st != NUM_OK)
		return st;
	if (!used || !find_word(size_suffixes, ARRAY_SIZE(size_suffixes),
				span_sub(v, used, v.n), &shift))
		return NUM_BAD;
	if (x > UINT64_MAX >> shift)
		return NUM_OVERFLOW;
	*out = x << shift;
	return NUM_OK;
}

struct number_rule {
	enum num (*parse)(struct span v, uint64_t *out);
	const char *syntax; /* what a value looks like */
	uint64_t min, max;
	const char *range;  /* min..max as an operator would write them */
	uint64_t align;
	const char *align_text;
};

static const struct number_rule heap_rule = {
	.parse = parse_size, .syntax = "a size such as 16M",
	.min = MIB, .max = GIB, .range = "1 MiB..1 GiB",
	.align = 4 * KIB, .align_text = "4 KiB",
};

static const struct number_rule memory_rule = {
	.parse = parse_size, .syntax = "a size such as 64M",
	.min = MIB, .max = 64 * GIB, .range = "1 MiB..64 GiB",
	.align = MIB, .align_text = "1 MiB",
};

/* A 16550 decodes eight consecutive ports, and all must lie below 0x10000. */
static const struct number_rule port_rule = {
	.parse = parse_number, .syntax = "com1..com4 or an I/O port number",
	.min = 1, .max = 0xfff8, .range = "0x1..0xfff8", .align = 1,
};

static const struct number_rule heartbeat_grace_rule = {
	.parse = parse_number, .syntax = "a number of seconds",
	.min = CFG_HEARTBEAT_GRACE_MIN_S, .max = CFG_HEARTBEAT_GRACE_MAX_S, .range = "15..3600",
	.align = 1,
};

/* 68 is the least MTU IPv4 requires every link to carry. */
static const struct number_rule mtu_rule = {
	.parse = parse_number, .syntax = "a number",
	.min = 68, .max = 9000, .range = "68..9000", .align = 1,
};

/* The upper bound, the VM's memory, is only known once its section ends. */
static const struct number_rule address_rule = {
	.parse = parse_number, .syntax = "an address, decimal or 0x-prefixed hex",
	.min = 0, .max = UINT64_MAX, .range = "a 64-bit address", .align = 1,
};

static int get_number(struct parser *p, const struct key *k, struct span v,
		      const struct number_rule *r, uint64_t *out)
{
	enum num st = r->parse(v, out);

	if (st == NUM_BAD)
		return bad_value(p, k, v, r->syntax);
	if (st == NUM_OVERFLOW || *out < r->min || *out > r->max)
		return fail(p, p->line, "'%s' in %s is out of range: %s (expected %s)",
			    k->name, p->label, show(p, v), r->range);
	if (*out % r->align)
		return fail(p, p->line, "'%s' in %s must be a multiple of %s: %s", k->name,
			    p->label, r->align_text, show(p, v));
	return 0;
}

static int get_text(struct parser *p, const struct key *k, struct span v, char *dst,
		    size_t size)
{
	if (v.n >= size)
		return fail(p, p->line, "'%s' in %s is longer than %zu characters", k->name,
			    p->label, size - 1);
	memcpy(dst, v.s, v.n);
	dst[v.n] = '\0';
	return 0;
}

static int get_path(struct parser *p, const struct key *k, struct span v, char *dst)
{
	if (get_text(p, k, v, dst, CFG_PATH_MAX))
		return -1;
	for (size_t i = 0; i < v.n; i++) {
		/* The loader widens each byte to a CHAR16; only ASCII survives that. */
		if ((unsigned char)dst[i] > 0x7e)
			return fail(p, p->line, "path for '%s' in %s must be printable ASCII",
				    k->name, p->label);
		if (dst[i] == '/')
			dst[i] = '\\';
	}
	if (dst[0] != '\\')
		return fail(p, p->line, "path for '%s' in %s must be absolute: %s", k->name,
			    p->label, show(p, v));
	return 0;
}

static bool valid_name(struct span v)
{
	if (!v.n || v.n >= CFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < v.n; i++) {
		char c = lower(v.s[i]);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Only for names valid_name() accepted, which always fit. */
static void copy_name(char *dst, struct span name)
{
	memcpy(dst, name.s, name.n);
	dst[name.n] = '\0';
}

static const struct cfg_vm *find_vm(const struct config *c, struct span name)
{
	for (unsigned i = 0; i < c->vm_count; i++)
		if (span_is(name, c->vms[i].name))
			return &c->vms[i];
	return NULL;
}

static const struct cfg_network *find_network(const struct config *c, struct span name)
{
	for (unsigned i = 0; i < c->network_count; i++)
		if (span_is(name, c->networks[i].name))
			return &c->networks[i];
	return NULL;
}

static struct cfg_vm *current_vm(struct parser *p)
{
	return &p->cfg->vms[p->cfg->vm_count - 1];
}

static int set_log_level(struct parser *p, const struct key *k, struct span v)
{
	unsigned level;

	if (get_word(p, k, v, log_levels, ARRAY_SIZE(log_levels), &level))
		return -1;
	p->cfg->hv.log_level = level;
	return 0;
}

static int set_serial(struct parser *p, const struct key *k, struct span v)
{
	unsigned com;
	uint64_t port;

	if (find_word(com_ports, ARRAY_SIZE(com_ports), v, &com))
		port = com;
	else if (get_number(p, k, v, &port_rule, &port))
		return -1;
	p->cfg->hv.serial_port = (uint16_t)port;
	return 0;
}

static int set_baud(struct parser *p, const struct key *k, struct span v)
{
	unsigned baud;

	if (get_word(p, k, v, bauds, ARRAY_SIZE(bauds), &baud))
		return -1;
	p->cfg->hv.baud = baud;
	return 0;
}

static int set_heap(struct parser *p, const struct key *k, struct span v)
{
	return get_number(p, k, v, &heap_rule, &p->cfg->hv.heap_bytes);
}

static int set_additions(struct parser *p, const struct key *k, struct span v)
{
	return get_path(p, k, v, p->cfg->hv.additions);
}

static int set_store(struct parser *p, const struct key *k, struct span v)
{
	if (v.n == strlen(CFG_STORE_PARTITION) && !memcmp(v.s, CFG_STORE_PARTITION, v.n)) {
		memcpy(p->cfg->hv.store, CFG_STORE_PARTITION, sizeof(CFG_STORE_PARTITION));
		return 0;
	}
	return get_path(p, k, v, p->cfg->hv.store);
}

static int set_selftest(struct parser *p, const struct key *k, struct span v)
{
	unsigned selftest;

	if (get_word(p, k, v, selftests, ARRAY_SIZE(selftests), &selftest))
		return -1;
	p->cfg->hv.selftest = selftest;
	return 0;
}

static int set_xsave_compacted(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &p->cfg->hv.xsave_compacted);
}

static int set_speculation_defences(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &p->cfg->hv.speculation_defences);
}

static int set_apic_virtualization(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &p->cfg->hv.apic_virtualization);
}

static int set_mtu(struct parser *p, const struct key *k, struct span v)
{
	uint64_t mtu;

	if (get_number(p, k, v, &mtu_rule, &mtu))
		return -1;
	p->cfg->networks[p->cfg->network_count - 1].mtu = (uint32_t)mtu;
	return 0;
}

static int set_dhcp(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &p->cfg->networks[p->cfg->network_count - 1].dhcp);
}

static int set_memory(struct parser *p, const struct key *k, struct span v)
{
	return get_number(p, k, v, &memory_rule, &current_vm(p)->memory_bytes);
}

static int set_image(struct parser *p, const struct key *k, struct span v)
{
	return get_path(p, k, v, current_vm(p)->image);
}

static int set_boot(struct parser *p, const struct key *k, struct span v)
{
	unsigned mode;

	if (get_word(p, k, v, boot_modes, ARRAY_SIZE(boot_modes), &mode))
		return -1;
	current_vm(p)->boot = mode;
	return 0;
}

static int set_load(struct parser *p, const struct key *k, struct span v)
{
	struct cfg_vm *vm = current_vm(p);

	vm->load_set = true;
	return get_number(p, k, v, &address_rule, &vm->load);
}

static int set_entry(struct parser *p, const struct key *k, struct span v)
{
	struct cfg_vm *vm = current_vm(p);

	vm->entry_set = true;
	return get_number(p, k, v, &address_rule, &vm->entry);
}

static int set_cmdline(struct parser *p, const struct key *k, struct span v)
{
	return get_text(p, k, v, current_vm(p)->cmdline, CFG_CMDLINE_MAX);
}

static int set_initrd(struct parser *p, const struct key *k, struct span v)
{
	return get_path(p, k, v, current_vm(p)->initrd);
}

static int set_disk(struct parser *p, const struct key *k, struct span v)
{
	return get_path(p, k, v, current_vm(p)->disk);
}

static int set_store_disk(struct parser *p, const struct key *k, struct span v)
{
	char *dst = current_vm(p)->store_disk;

	if (get_text(p, k, v, dst, CFG_NAME_MAX))
		return -1;
	if (!store_name_valid(dst))
		return fail(p, p->line, "'store_disk' in %s is a store object's name: 1 to %u of "
			    "A-Z a-z 0-9 . _ -, not first . or -", p->label, STORE_NAME_MAX);
	return 0;
}

bool config_parse_mac(const char *s, size_t n, uint8_t mac[6])
{
	if (n != 17)
		return false;
	for (size_t i = 0; i < 6; i++, s += 3) {
		int hi = fmt_hex_digit(s[0]), lo = fmt_hex_digit(s[1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* The "mac=..." option of a nic value, for the nic about to be added. */
static int get_mac(struct parser *p, struct span mac, struct cfg_nic *nic)
{
	static const uint8_t zero[6];
	const struct config *c = p->cfg;

	if (!config_parse_mac(mac.s, mac.n, nic->mac))
		return fail(p, p->line, "bad value '%s' for 'nic' in %s: expected a MAC such as "
			    "02:00:00:00:00:01", show(p, mac), p->label);
	if (nic->mac[0] & 1)
		return fail(p, p->line, "MAC %s in %s is multicast: a NIC needs a unicast "
			    "address", show(p, mac), p->label);
	if (!memcmp(nic->mac, zero, sizeof(zero)))
		return fail(p, p->line, "MAC %s in %s is all zeros", show(p, mac), p->label);
	/* Two NICs with one address would confuse every switch they meet. */
	for (unsigned i = 0; i < c->vm_count; i++) {
		for (unsigned j = 0; j < c->vms[i].nic_count; j++) {
			const struct cfg_nic *other = &c->vms[i].nics[j];

			if (other->mac_set && !memcmp(other->mac, nic->mac, sizeof(nic->mac)))
				return fail(p, p->line, "MAC %s in %s is already used on line %u",
					    show(p, mac), p->label, p->nic_line[i][j]);
		}
	}
	nic->mac_set = true;
	return 0;
}

/* The "allow_macs=N" option: source addresses the adapter may use besides its own. */
static int get_allow_macs(struct parser *p, struct span n, struct cfg_nic *nic)
{
	uint64_t v;

	if (parse_number(n, &v) != NUM_OK || v > CFG_ALLOW_MACS_MAX)
		return fail(p, p->line, "bad value '%s' for 'allow_macs' of 'nic' in %s: expected "
			    "0..%u", show(p, n), p->label, CFG_ALLOW_MACS_MAX);
	nic->allow_macs = (unsigned)v;
	return 0;
}

/* NETWORK[,mac=XX:XX:XX:XX:XX:XX][,allow_macs=N], each option at most once. */
static int set_nic(struct parser *p, const struct key *k, struct span v)
{
	static const char *const expected =
		"NETWORK, then optionally ,mac=XX:XX:XX:XX:XX:XX and ,allow_macs=N";
	struct cfg_vm *vm = current_vm(p);
	struct cfg_nic *nic = &vm->nics[vm->nic_count];
	size_t comma = find(v, ',');
	struct span network = trim(span_sub(v, 0, comma));
	bool allow_set = false;

	if (!valid_name(network))
		return bad_value(p, k, v, expected);
	copy_name(nic->network, network);
	while (comma < v.n) {
		struct span rest = span_sub(v, comma + 1, v.n);
		size_t next = find(rest, ',');
		struct span option = trim(span_sub(rest, 0, next));
		size_t eq = find(option, '=');
		struct span name = span_sub(option, 0, eq);
		struct span value = span_sub(option, eq < option.n ? eq + 1 : eq, option.n);

		if (name.n == 3 && !memcmp(name.s, "mac", 3) && eq < option.n && !nic->mac_set) {
			if (get_mac(p, value, nic))
				return -1;
		} else if (name.n == 10 && !memcmp(name.s, "allow_macs", 10) && eq < option.n &&
			   !allow_set) {
			if (get_allow_macs(p, value, nic))
				return -1;
			allow_set = true;
		} else {
			return bad_value(p, k, option, "mac=XX:XX:XX:XX:XX:XX or allow_macs=N "
					 "after a ',', each at most once");
		}
		comma += 1 + next;
	}
	p->nic_line[p->cfg->vm_count - 1][vm->nic_count++] = p->line;
	return 0;
}

static int set_autostart(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &current_vm(p)->autostart);
}

static int set_guest_agent(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &current_vm(p)->guest_agent);
}

static int set_time_sync(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &current_vm(p)->time_sync);
}

static int set_free_page_reporting(struct parser *p, const struct key *k, struct span v)
{
	return get_boolean(p, k, v, &current_vm(p)->free_page_reporting);
}

static int set_watchdog(struct parser *p, const struct key *k, struct span v)
{
	unsigned w;

	if (get_word(p, k, v, watchdogs, ARRAY_SIZE(watchdogs), &w))
		return -1;
	current_vm(p)->watchdog = (enum cfg_watchdog)w;
	return 0;
}

static int set_on_heartbeat_loss(struct parser *p, const struct key *k, struct span v)
{
	unsigned action;

	if (get_word(p, k, v, heartbeat_actions, ARRAY_SIZE(heartbeat_actions), &action))
		return -1;
	current_vm(p)->on_heartbeat_loss = (enum cfg_heartbeat_action)action;
	return 0;
}

static int set_heartbeat_grace(struct parser *p, const struct key *k, struct span v)
{
	uint64_t s;

	if (get_number(p, k, v, &heartbeat_grace_rule, &s))
		return -1;
	current_vm(p)->heartbeat_grace_s = (uint32_t)s;
	return 0;
}

static int set_role(struct parser *p, const struct key *k, struct span v)
{
	unsigned role;

	if (get_word(p, k, v, roles, ARRAY_SIZE(roles), &role))
		return -1;
	current_vm(p)->role = (enum cfg_role)role;
	return 0;
}

/* The management line's HMAC-SHA256 key, as hex digits (docs/protocol.md). */
static int set_auth_key(struct parser *p, const struct key *k, struct span v)
{
	struct cfg_vm *vm = current_vm(p);

	if (v.n % 2 || v.n < 2 * CFG_AUTH_KEY_MIN || v.n > 2 * CFG_AUTH_KEY_MAX)
		return bad_value(p, k, v, "32 to 128 hex digits (a 16- to 64-byte key)");
	for (size_t i = 0; i < v.n; i += 2) {
		int hi = fmt_hex_digit(v.s[i]), lo = fmt_hex_digit(v.s[i + 1]);
		if (hi < 0 || lo < 0)
			return bad_value(p, k, v, "32 to 128 hex digits (a 16- to 64-byte key)");
		vm->auth_key[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	vm->auth_key_len = (unsigned)(v.n / 2);
	return 0;
}

static const struct key hypervisor_keys[] = {
	{ "log_level", set_log_level, 1 },
	{ "serial", set_serial, 1 },
	{ "baud", set_baud, 1 },
	{ "heap", set_heap, 1 },
	{ "additions", set_additions, 1 },
	{ "store", set_store, 1 },
	{ "selftest", set_selftest, 1 },
	{ "xsave_compacted", set_xsave_compacted, 1 },
	{ "speculation_defences", set_speculation_defences, 1 },
	{ "apic_virtualization", set_apic_virtualization, 1 },
};

static const struct key network_keys[] = {
	{ "mtu", set_mtu, 1 },
	{ "dhcp", set_dhcp, 1 },
};

static const struct key vm_keys[VM_KEY_COUNT] = {
	[VM_KEY_MEMORY] = { "memory", set_memory, 1 },
	[VM_KEY_IMAGE] = { "image", set_image, 1 },
	[VM_KEY_BOOT] = { "boot", set_boot, 1 },
	[VM_KEY_LOAD] = { "load", set_load, 1 },
	[VM_KEY_ENTRY] = { "entry", set_entry, 1 },
	[VM_KEY_CMDLINE] = { "cmdline", set_cmdline, 1 },
	[VM_KEY_INITRD] = { "initrd", set_initrd, 1 },
	[VM_KEY_DISK] = { "disk", set_disk, 1 },
	[VM_KEY_STORE_DISK] = { "store_disk", set_store_disk, 1 },
	[VM_KEY_NIC] = { "nic", set_nic, CFG_MAX_NICS },
	[VM_KEY_AUTOSTART] = { "autostart", set_autostart, 1 },
	[VM_KEY_ROLE] = { "role", set_role, 1 },
	[VM_KEY_AUTH_KEY] = { "auth_key", set_auth_key, 1 },
	[VM_KEY_GUEST_AGENT] = { "guest_agent", set_guest_agent, 1 },
	[VM_KEY_TIME_SYNC] = { "time_sync", set_time_sync, 1 },
	[VM_KEY_WATCHDOG] = { "watchdog", set_watchdog, 1 },
	[VM_KEY_FREE_PAGE_REPORTING] = { "free_page_reporting", set_free_page_reporting, 1 },
	[VM_KEY_ON_HEARTBEAT_LOSS] = { "on_heartbeat_loss", set_on_heartbeat_loss, 1 },
	[VM_KEY_HEARTBEAT_GRACE] = { "heartbeat_grace", set_heartbeat_grace, 1 },
};

_Static_assert(ARRAY_SIZE(hypervisor_keys) <= SECTION_KEYS_MAX, "[hypervisor] keys");
_Static_assert(ARRAY_SIZE(network_keys) <= SECTION_KEYS_MAX, "[network] keys");

static int hypervisor_open(struct parser *p, struct span name)
{
	(void)name; /* always empty: [hypervisor] takes none */
	if (p->hypervisor_line)
		return fail(p, p->line, "[hypervisor] given twice (first on line %u)",
			    p->hypervisor_line);
	p->hypervisor_line = p->line;
	return 0;
}

/*
 * Checks the name of a new [vm] or [network]: its spelling, that no other
 * section of the type has it (dup_line: where one does, else 0), and that
 * there is room for one more.
 */
static int check_new_name(struct parser *p, struct span name, unsigned dup_line,
			  unsigned count, unsigned max)
{
	if (!valid_name(name))
		return fail(p, p->line, "bad name '%s' for [%s]: expected 1..%u of "
			    "A-Z a-z 0-9 _ . -", show(p, name), p->sec->type,
			    CFG_NAME_MAX - 1);
	if (dup_line)
		return fail(p, p->line, "duplicate [%s %s] (first on line %u)", p->sec->type,
			    show(p, name), dup_line);
	if (count == max)
		return fail(p, p->line, "too many [%s] sections (at most %u)", p->sec->type,
			    max);
	return 0;
}

static int network_open(struct parser *p, struct span name)
{
	struct config *c = p->cfg;
	const struct cfg_network *dup = find_network(c, name);
	struct cfg_network *net;

	if (check_new_name(p, name, dup ? dup->line : 0, c->network_count, CFG_MAX_NETWORKS))
		return -1;
	net = &c->networks[c->network_count++];
	copy_name(net->name, name);
	net->line = p->line;
	net->mtu = 1500;
	return 0;
}

static int vm_open(struct parser *p, struct span name)
{
	struct config *c = p->cfg;
	const struct cfg_vm *dup = find_vm(c, name);
	struct cfg_vm *vm;

	if (check_new_name(p, name, dup ? dup->line : 0, c->vm_count, CFG_MAX_VMS))
		return -1;
	vm = &c->vms[c->vm_count++];
	copy_name(vm->name, name);
	vm->line = p->line;
	vm->boot = VM_BOOT_LONG;
	vm->autostart = true;
	vm->guest_agent = true;
	vm->time_sync = true;
	vm->heartbeat_grace_s = CFG_HEARTBEAT_GRACE_DEFAULT_S;
	return 0;
}

/* The guest's code is placed at or entered through this address: it must be RAM. */
static int check_in_ram(struct parser *p, const struct cfg_vm *vm, enum vm_key key,
			bool set, uint64_t address)
{
	if (!set || address < vm->memory_bytes)
		return 0;
	return fail(p, p->key_line[key], "'%s' 0x%llx in %s lies beyond its %llu MiB of memory",
		    vm_keys[key].name, (unsigned long long)address, p->label,
		    (unsigned long long)(vm->memory_bytes / MIB));
}

static int vm_close(struct parser *p)
{
	const struct cfg_vm *vm = current_vm(p);

	/* Both are always nonzero once given: memory >= 1 MiB, image not empty. */
	if (!vm->memory_bytes)
		return fail(p, vm->line, "%s has no 'memory'", p->label);
	if (!vm->image[0])
		return fail(p, vm->line, "%s has no 'image'", p->label);
	if (check_in_ram(p, vm, VM_KEY_LOAD, vm->load_set, vm->load))
		return -1;
	if (vm->disk[0] && vm->store_disk[0])
		return fail(p, p->key_line[VM_KEY_STORE_DISK], "%s has both 'disk' and "
			    "'store_disk': a VM has one disk", p->label);
	if (vm->auth_key_len && vm->role != CFG_ROLE_MANAGEMENT)
		return fail(p, p->key_line[VM_KEY_AUTH_KEY], "'auth_key' in %s needs "
			    "'role = management'", p->label);
	/* One VM owns the serial line; a second would fight it for the bytes. */
	for (const struct cfg_vm *other = p->cfg->vms; other < vm; other++)
		if (vm->role == CFG_ROLE_MANAGEMENT && other->role == CFG_ROLE_MANAGEMENT)
			return fail(p, p->key_line[VM_KEY_ROLE], "%s: '%s' is already the "
				    "management VM (line %u)", p->label, other->name, other->line);
	return check_in_ram(p, vm, VM_KEY_ENTRY, vm->entry_set, vm->entry);
}

static const struct section_type sections[] = {
	{ "hypervisor", false, hypervisor_open, NULL, hypervisor_keys,
	  ARRAY_SIZE(hypervisor_keys) },
	{ "network", true, network_open, NULL, network_keys, ARRAY_SIZE(network_keys) },
	{ "vm", true, vm_open, vm_close, vm_keys, ARRAY_SIZE(vm_keys) },
};

static int close_section(struct parser *p)
{
	return p->sec && p->sec->close ? p->sec->close(p) : 0;
}

static int parse_header(struct parser *p, struct span line)
{
	size_t end = find(line, ']');
	const struct section_type *sec = NULL;
	struct span rest, inner, type, name;
	size_t type_len = 0;

	/* Whatever this header turns out to be, the section before it is over. */
	if (close_section(p))
		return -1;
	if (end == line.n)
		return fail(p, p->line, "missing ']' in section header");
	rest = trim(span_sub(line, end + 1, line.n));
	if (rest.n && rest.s[0] != '#')
		return fail(p, p->line, "unexpected '%s' after section header", show(p, rest));
	inner = trim(span_sub(line, 1, end));
	while (type_len < inner.n && !is_blank(inner.s[type_len]))
		type_len++;
	type = span_sub(inner, 0, type_len);
	name = trim(span_sub(inner, type_len, inner.n));
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (span_is(type, sections[i].type))
			sec = &sections[i];
	if (!sec)
		return fail(p, p->line, "unknown section type '%s'", show(p, type));
	if (sec->named && !name.n)
		return fail(p, p->line, "[%s] needs a name", sec->type);
	if (!sec->named && name.n)
		return fail(p, p->line, "[%s] takes no name", sec->type);

	p->sec = sec;
	memset(p->key_count, 0, sizeof(p->key_count));
	memset(p->key_line, 0, sizeof(p->key_line));
	if (sec->open(p, name))
		return -1;
	fmt_snprintf(p->label, sizeof(p->label), "[%s%s%s]", sec->type, name.n ? " " : "",
		     show(p, name));
	return 0;
}

/* The value after '=': quoted, or running up to a comment; never empty. */
static int get_value(struct parser *p, const struct key *k, struct span raw,
		     struct span *value)
{
	struct span v = trim(raw);

	if (v.n && v.s[0] == '"') {
		size_t end = 1 + find(span_sub(v, 1, v.n), '"');
		struct span rest;

		if (end == v.n)
			return fail(p, p->line, "unterminated quote in value of '%s' in %s",
				    k->name, p->label);
		rest = trim(span_sub(v, end + 1, v.n));
		if (rest.n && rest.s[0] != '#')
			return fail(p, p->line, "unexpected '%s' after quoted value of '%s' in %s",
				    show(p, rest), k->name, p->label);
		v = span_sub(v, 1, end);
	} else {
		v = trim(span_sub(v, 0, find(v, '#')));
	}
	if (!v.n)
		return fail(p, p->line, "empty value for '%s' in %s", k->name, p->label);
	*value = v;
	return 0;
}

static int parse_key(struct parser *p, struct span line)
{
	size_t eq = find(line, '=');
	size_t hash = find(line, '#');
	const struct key *k;
	struct span key, value;
	size_t i;

	if (eq == line.n || hash < eq) {
		struct span text = trim(span_sub(line, 0, hash));

		return fail(p, p->line, "missing '=' in '%s'", show(p, text));
	}
	key = trim(span_sub(line, 0, eq));
	if (!key.n)
		return fail(p, p->line, "missing key before '='");
	if (!p->sec)
		return fail(p, p->line, "key '%s' before any section", show(p, key));
	for (i = 0; i < p->sec->key_count; i++)
		if (span_is(key, p->sec->keys[i].name))
			break;
	if (i == p->sec->key_count)
		return fail(p, p->line, "unknown key '%s' in %s", show(p, key), p->label);
	k = &p->sec->keys[i];
	if (p->key_count[i] == k->max_count) {
		if (k->max_count == 1)
			return fail(p, p->line, "'%s' given twice in %s (first on line %u)",
				    k->name, p->label, p->key_line[i]);
		return fail(p, p->line, "more than %u '%s' in %s", k->max_count, k->name,
			    p->label);
	}
	if (get_value(p, k, span_sub(line, eq + 1, line.n), &value) || k->set(p, k, value))
		return -1;
	if (!p->key_count[i]++)
		p->key_line[i] = p->line;
	return 0;
}

static int parse_line(struct parser *p, struct span line)
{
	line = trim(line);
	if (!line.n || line.s[0] == '#')
		return 0;
	if (line.s[0] == '[')
		return parse_header(p, line);
	return parse_key(p, line);
}

/*
 * Finds the end of the line that starts at s (rest bytes left in the text)
 * and checks its characters. *n: its length without the line end; *next:
 * where the following line starts.
 */
static int scan_line(struct parser *p, const char *s, size_t rest, size_t *n, size_t *next)
{
	size_t i;

	for (i = 0; i < rest && s[i] != '\n'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' && i + 1 < rest && s[i + 1] == '\n')
			break;
		if (i == LINE_CHARS_MAX)
			return fail(p, p->line, "line longer than %u characters", LINE_CHARS_MAX);
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(p, p->line, "control character 0x%02x in config", c);
	}
	*n = i;
	*next = i == rest ? i : s[i] == '\r' ? i + 2 : i + 1;
	return 0;
}

/* Checks that need the whole file: a [network] may follow the VMs using it. */
static int finish(struct parser *p)
{
	const struct config *c = p->cfg;

	if (close_section(p))
		return -1;
	/* The store's self-test runs without VMs (on a machine without VT-x it must). */
	if (!c->vm_count && !cfg_selftest_of_store(c->hv.selftest))
		return fail(p, 0, "no [vm] section: nothing to run");
	for (unsigned i = 0; i < c->vm_count; i++) {
		for (unsigned j = 0; j < c->vms[i].nic_count; j++) {
			const char *network = c->vms[i].nics[j].network;

			if (!find_network(c, (struct span){ network, strlen(network) }))
				return fail(p, p->nic_line[i][j], "'nic' in [vm %s] names undefined "
					    "network '%s'", c->vms[i].name, network);
		}
	}
	return 0;
}

int config_parse(const char *text, size_t len, struct config *out, struct cfg_diag *diag)
{
	struct parser p = { .cfg = out, .diag = diag };
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	out->hv.log_level = LOG_INFO;
	out->hv.serial_port = 0x3f8;
	out->hv.baud = 115200;
	out->hv.heap_bytes = 16 * MIB;
	out->hv.selftest = CFG_SELFTEST_NONE;
	out->hv.xsave_compacted = true;
	out->hv.speculation_defences = true;
	out->hv.apic_virtualization = true;
	memset(diag, 0, sizeof(*diag));
	if (len > CFG_TEXT_MAX)
		return fail(&p, 0, "config is %zu bytes, more than the %u allowed", len,
			    (unsigned)CFG_TEXT_MAX);
	while (pos < len) {
		size_t n, next;

		p.line++;
		if (scan_line(&p, text + pos, len - pos, &n, &next) ||
		    parse_line(&p, (struct span){ text + pos, n }))
			return -1;
		pos += next;
	}
	return finish(&p);
}

/* A word's name in its table, or "unknown". */
static const char *word_name(const struct word *words, size_t n, unsigned value)
{
	for (size_t i = 0; i < n; i++)
		if (words[i].value == value)
			return words[i].name;
	return "unknown";
}

/* The value of a word named exactly (lowercase, as the API spells it); false: none. */
static bool word_value(const struct word *words, size_t n, const char *name, unsigned *value)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(words[i].name, name)) {
			*value = words[i].value;
			return true;
		}
	return false;
}

const char *config_boot_mode_name(enum vm_boot_mode mode)
{
	return word_name(boot_modes, ARRAY_SIZE(boot_modes), (unsigned)mode);
}

const char *config_heartbeat_action_name(enum cfg_heartbeat_action action)
{
	return word_name(heartbeat_actions, ARRAY_SIZE(heartbeat_actions), (unsigned)action);
}

bool config_heartbeat_action_parse(const char *name, enum cfg_heartbeat_action *action)
{
	unsigned v;

	if (!word_value(heartbeat_actions, ARRAY_SIZE(heartbeat_actions), name, &v))
		return false;
	*action = (enum cfg_heartbeat_action)v;
	return true;
}

const char *config_watchdog_name(enum cfg_watchdog watchdog)
{
	return word_name(watchdogs, ARRAY_SIZE(watchdogs), (unsigned)watchdog);
}

bool config_watchdog_parse(const char *name, enum cfg_watchdog *watchdog)
{
	unsigned v;

	if (!word_value(watchdogs, ARRAY_SIZE(watchdogs), name, &v))
		return false;
	*watchdog = (enum cfg_watchdog)v;
	return true;
}
