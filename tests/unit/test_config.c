/*
 * Unit tests of the boot configuration parser: one valid file using every
 * key, the defaults, the limits that are still accepted, and then one or
 * more cases per class of error, each checked for its return value, line
 * and the words of its message an operator would act on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "boot/config.h"

/* Too big for a test's stack frame under the sanitizers' redzones. */
static struct config cfg;
static struct cfg_diag diag;
static char text[CFG_TEXT_MAX + 2];

/* The smallest complete VM, for tests about something else. */
#define VM_A "[vm a]\nmemory = 64M\nimage = /a.bin\n"

static int parse_len(const char *s, size_t len)
{
	return config_parse(s, len, &cfg, &diag);
}

static int parse(const char *s)
{
	return parse_len(s, strlen(s));
}

static void parse_ok(const char *s)
{
	if (parse(s) != 0)
		fail_msg("refused, line %u: %s\n--- config ---\n%s", diag.line, diag.message, s);
}

static void check_error_len(const char *s, size_t len, unsigned line, const char *fragment)
{
	int rc = parse_len(s, len);

	if (rc != -1 || diag.line != line || !strstr(diag.message, fragment))
		fail_msg("want -1, line %u, \"%s\"; got %d, line %u, \"%s\"\n--- config ---\n%.*s",
			 line, fragment, rc, diag.line, diag.message, (int)len, s);
}

static void check_error(const char *s, unsigned line, const char *fragment)
{
	check_error_len(s, strlen(s), line, fragment);
}

/* Checks one value of one key in VM_A's section (the value lands on line 4). */
static void check_vm_value(const char *key, const char *value, const char *fragment)
{
	snprintf(text, sizeof(text), VM_A "%s = %s\n", key, value);
	check_error(text, 4, fragment);
}

static void check_hypervisor_value(const char *key, const char *value, const char *fragment)
{
	snprintf(text, sizeof(text), "[hypervisor]\n%s = %s\n" VM_A, key, value);
	check_error(text, 2, fragment);
}

/* Parses VM_A with memory replaced by the given size. */
static uint64_t vm_memory(const char *size)
{
	snprintf(text, sizeof(text), "[vm a]\nmemory = %s\nimage = /a\n", size);
	parse_ok(text);
	return cfg.vms[0].memory_bytes;
}

static void test_full_config(void **state)
{
	/* CRLF throughout, comments, quotes, and no newline at the very end. */
	static const char full[] =
		"# every key there is\r\n"
		"[hypervisor]\r\n"
		"log_level = debug\r\n"
		"serial = com2   # the second UART\r\n"
		"baud = 57600\r\n"
		"heap = 32MiB\r\n"
		"selftest = exception\r\n"
		"xsave_compacted = off\r\n"
		"apic_virtualization = off\r\n"
		"store = \\vmmstore.img\r\n"
		"[vm web]  # front end\r\n"
		"\tmemory\t=\t1G\t\r\n"
		"image = /guests/web.bin\r\n"
		"boot = linux\r\n"
		"load = 0x100000\r\n"
		"entry = 1048592\r\n"
		"cmdline = \"console=ttyS0 root=/dev/vda # not a comment\"  # a comment\r\n"
		"initrd = \"/guests/web initrd.img\"\r\n"
		"disk = /guests/web.disk\r\n"
		"nic = lan,mac=02:00:00:00:00:0A\r\n"
		"nic = wan\r\n"
		"autostart = no\r\n"
		"[ network  lan ]\r\n"
		"mtu = 9000\r\n"
		"dhcp = on\r\n"
		"[network wan]";
	const struct cfg_vm *vm = &cfg.vms[0];
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x0a };

	(void)state;
	parse_ok(full);
	assert_int_equal(cfg.hv.log_level, LOG_DEBUG);
	assert_int_equal(cfg.hv.serial_port, 0x2f8);
	assert_int_equal(cfg.hv.baud, 57600);
	assert_int_equal(cfg.hv.heap_bytes, 32ULL << 20);
	assert_int_equal(cfg.hv.selftest, CFG_SELFTEST_EXCEPTION);
	assert_string_equal(cfg.hv.store, "\\vmmstore.img");
	assert_false(cfg.hv.xsave_compacted);
	assert_false(cfg.hv.apic_virtualization);

	assert_int_equal(cfg.vm_count, 1);
	assert_string_equal(vm->name, "web");
	assert_int_equal(vm->line, 11);
	assert_int_equal(vm->memory_bytes, 1ULL << 30);
	assert_string_equal(vm->image, "\\guests\\web.bin");
	assert_int_equal(vm->boot, VM_BOOT_LINUX);
	assert_true(vm->load_set);
	assert_int_equal(vm->load, 0x100000);
	assert_true(vm->entry_set);
	assert_int_equal(vm->entry, 0x100010);
	assert_string_equal(vm->cmdline, "console=ttyS0 root=/dev/vda # not a comment");
	assert_string_equal(vm->initrd, "\\guests\\web initrd.img");
	assert_string_equal(vm->disk, "\\guests\\web.disk");
	assert_int_equal(vm->nic_count, 2);
	assert_string_equal(vm->nics[0].network, "lan");
	assert_true(vm->nics[0].mac_set);
	assert_memory_equal(vm->nics[0].mac, mac, sizeof(mac));
	assert_string_equal(vm->nics[1].network, "wan");
	assert_false(vm->nics[1].mac_set);
	assert_false(vm->autostart);

	assert_int_equal(cfg.network_count, 2);
	assert_string_equal(cfg.networks[0].name, "lan");
	assert_int_equal(cfg.networks[0].line, 23);
	assert_int_equal(cfg.networks[0].mtu, 9000);
	assert_true(cfg.networks[0].dhcp);
	assert_string_equal(cfg.networks[1].name, "wan");
	assert_int_equal(cfg.networks[1].mtu, 1500);
	assert_false(cfg.networks[1].dhcp);

	assert_int_equal(diag.line, 0);
	assert_string_equal(diag.message, "");
}

static void test_defaults(void **state)
{
	const struct cfg_vm *vm = &cfg.vms[0];

	(void)state;
	parse_ok(VM_A "[network lan]\n");
	assert_int_equal(cfg.hv.log_level, LOG_INFO);
	assert_int_equal(cfg.hv.serial_port, 0x3f8);
	assert_int_equal(cfg.hv.baud, 115200);
	assert_int_equal(cfg.hv.heap_bytes, 16ULL << 20);
	assert_int_equal(cfg.hv.selftest, CFG_SELFTEST_NONE);
	assert_true(cfg.hv.xsave_compacted);
	assert_true(cfg.hv.apic_virtualization);
	assert_int_equal(vm->boot, VM_BOOT_LONG);
	assert_false(vm->load_set);
	assert_false(vm->entry_set);
	assert_string_equal(vm->cmdline, "");
	assert_string_equal(vm->initrd, "");
	assert_string_equal(vm->disk, "");
	assert_int_equal(vm->nic_count, 0);
	assert_true(vm->autostart);
	assert_true(vm->guest_agent);
	assert_int_equal(vm->on_heartbeat_loss, CFG_HEARTBEAT_NONE);
	assert_int_equal(vm->heartbeat_grace_s, CFG_HEARTBEAT_GRACE_DEFAULT_S);
	assert_int_equal(cfg.networks[0].mtu, 1500);
}

static void test_guest_agent_keys(void **state)
{
	(void)state;
	parse_ok(VM_A "guest_agent = off\non_heartbeat_loss = TurnOff\nheartbeat_grace = 90\n");
	assert_false(cfg.vms[0].guest_agent);
	assert_int_equal(cfg.vms[0].on_heartbeat_loss, CFG_HEARTBEAT_TURN_OFF);
	assert_int_equal(cfg.vms[0].heartbeat_grace_s, 90);
	assert_string_equal(config_heartbeat_action_name(CFG_HEARTBEAT_RESET), "reset");
	enum cfg_heartbeat_action a;
	assert_true(config_heartbeat_action_parse("turnoff", &a));
	assert_int_equal(a, CFG_HEARTBEAT_TURN_OFF);
	assert_false(config_heartbeat_action_parse("reboot", &a));
	check_vm_value("on_heartbeat_loss", "reboot", "expected none, reset or turnoff");
	check_vm_value("heartbeat_grace", "14", "out of range: 14 (expected 15..3600)");
	check_vm_value("heartbeat_grace", "3601", "out of range");
	check_vm_value("guest_agent", "maybe", "expected yes, no, true, false, on, off, 1 or 0");
	parse_ok(VM_A "watchdog = i6300esb\n");
	assert_int_equal(cfg.vms[0].watchdog, CFG_WATCHDOG_I6300ESB);
	assert_string_equal(config_watchdog_name(CFG_WATCHDOG_I6300ESB), "i6300esb");
	check_vm_value("watchdog", "ib700", "expected none or i6300esb");
	assert_false(cfg.vms[0].free_page_reporting);
	parse_ok(VM_A "free_page_reporting = yes\n");
	assert_true(cfg.vms[0].free_page_reporting);
}

static void test_output_fully_overwritten(void **state)
{
	(void)state;
	memset(&cfg, 0xa5, sizeof(cfg));
	memset(&diag, 0xa5, sizeof(diag));
	parse_ok(VM_A);
	assert_int_equal(cfg.vm_count, 1);
	assert_int_equal(cfg.network_count, 0);
	assert_int_equal(cfg.vms[0].nics[0].mac_set, false);
	assert_int_equal(cfg.vms[1].memory_bytes, 0);
	assert_string_equal(cfg.vms[1].name, "");
	assert_int_equal(diag.line, 0);
	assert_string_equal(diag.message, "");
}

static void test_boot_mode_names(void **state)
{
	(void)state;
	assert_string_equal(config_boot_mode_name(VM_BOOT_REAL), "real");
	assert_string_equal(config_boot_mode_name(VM_BOOT_LONG), "long");
	assert_string_equal(config_boot_mode_name(VM_BOOT_LINUX), "linux");
	parse_ok(VM_A "boot = REAL\n");
	assert_int_equal(cfg.vms[0].boot, VM_BOOT_REAL);
}

static void test_size_suffixes(void **state)
{
	(void)state;
	assert_int_equal(vm_memory("1048576"), 1ULL << 20);
	assert_int_equal(vm_memory("2048K"), 2ULL << 20);
	assert_int_equal(vm_memory("3072KiB"), 3ULL << 20);
	assert_int_equal(vm_memory("4096kib"), 4ULL << 20);
	assert_int_equal(vm_memory("5m"), 5ULL << 20);
	assert_int_equal(vm_memory("6MIB"), 6ULL << 20);
	assert_int_equal(vm_memory("2g"), 2ULL << 30);
	assert_int_equal(vm_memory("3GiB"), 3ULL << 30);
	assert_int_equal(vm_memory("\"8M\""), 8ULL << 20);
}

static void test_booleans(void **state)
{
	static const struct {
		const char *word;
		bool value;
	} cases[] = {
		{ "yes", true }, { "no", false }, { "true", true }, { "false", false },
		{ "on", true },	 { "off", false }, { "1", true },   { "0", false },
		{ "YES", true }, { "Off", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), VM_A "autostart = %s\n", cases[i].word);
		parse_ok(text);
		assert_int_equal(cfg.vms[0].autostart, cases[i].value);
	}
}

static void test_serial_ports(void **state)
{
	static const struct {
		const char *value;
		uint16_t port;
	} cases[] = {
		{ "com1", 0x3f8 }, { "com2", 0x2f8 }, { "com3", 0x3e8 }, { "COM4", 0x2e8 },
		{ "0x2f8", 0x2f8 }, { "1016", 0x3f8 }, { "0x1", 1 },	  { "0xFFF8", 0xfff8 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[hypervisor]\nserial = %s\n" VM_A, cases[i].value);
		parse_ok(text);
		assert_int_equal(cfg.hv.serial_port, cases[i].port);
	}
}

static void test_paths_and_text(void **state)
{
	(void)state;
	parse_ok("[vm a]\nmemory = 64M\nimage = \\efi\\a.bin\ndisk = /x/y/z\n"
		 "cmdline = a=\"b c\" d\n");
	assert_string_equal(cfg.vms[0].image, "\\efi\\a.bin");
	assert_string_equal(cfg.vms[0].disk, "\\x\\y\\z");
	/* A '"' inside an unquoted value is an ordinary character. */
	assert_string_equal(cfg.vms[0].cmdline, "a=\"b c\" d");
}

/* Everything exactly at its limit is still accepted. */
static void test_limits_accepted(void **state)
{
	char name[CFG_NAME_MAX];
	size_t n = 0;

	(void)state;
	assert_int_equal(vm_memory("1M"), 1ULL << 20);
	assert_int_equal(vm_memory("64G"), 64ULL << 30);

	parse_ok("[hypervisor]\nheap = 1G\n[network a]\nmtu = 68\n[network b]\nmtu = 9000\n"
		 "[vm a]\nmemory = 2M\nimage = /a\nload = 0x1fffff\nentry = 2097151\n");
	assert_int_equal(cfg.hv.heap_bytes, 1ULL << 30);
	assert_int_equal(cfg.networks[0].mtu, 68);
	assert_int_equal(cfg.networks[1].mtu, 9000);
	assert_int_equal(cfg.vms[0].load, 0x1fffff);

	memset(name, 'n', CFG_NAME_MAX - 1);
	name[CFG_NAME_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "[vm %s]\nmemory = 1M\nimage = /a\n", name);
	parse_ok(text);
	assert_string_equal(cfg.vms[0].name, name);

	/* A 255-character line, the longest there may be. */
	n = (size_t)snprintf(text, sizeof(text), VM_A "#");
	memset(text + n, 'c', 254);
	strcpy(text + n + 254, "\n");
	parse_ok(text);

	n = 0;
	for (unsigned i = 0; i < CFG_MAX_NETWORKS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[network n%u]\n", i);
	for (unsigned i = 0; i < CFG_MAX_VMS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "[vm v%u]\nmemory = 1M\nimage = /v\nnic = n0\nnic = n1\n"
				      "nic = n2\nnic = n3,mac=02:00:00:00:00:%02x\n", i, i);
	parse_ok(text);
	assert_int_equal(cfg.vm_count, CFG_MAX_VMS);
	assert_int_equal(cfg.network_count, CFG_MAX_NETWORKS);
	assert_int_equal(cfg.vms[CFG_MAX_VMS - 1].nic_count, CFG_MAX_NICS);
}

static void test_empty_file(void **state)
{
	(void)state;
	check_error("", 0, "no [vm] section");
	check_error_len(NULL, 0, 0, "no [vm] section");
}

static void test_only_comments(void **state)
{
	(void)state;
	check_error("# nothing\n\n   # at all\r\n\t\n", 0, "no [vm] section");
}

static void test_no_vm(void **state)
{
	(void)state;
	check_error("[hypervisor]\nlog_level = warn\n[network lan]\n", 0, "no [vm] section");
	check_error("[hypervisor]\nselftest = nmi\n", 0, "no [vm] section");
	/* The store's self-tests need no VM: a machine without VT-x runs them alone. */
	parse_ok("[hypervisor]\nstore = \\vmmstore.img\nselftest = store\n");
	assert_int_equal(cfg.vm_count, 0);
	parse_ok("[hypervisor]\nstore = \\vmmstore.img\nselftest = store-stress\n");
	assert_int_equal(cfg.hv.selftest, CFG_SELFTEST_STORE_STRESS);
}

static void test_text_too_large(void **state)
{
	(void)state;
	memset(text, '\n', CFG_TEXT_MAX + 1);
	check_error_len(text, CFG_TEXT_MAX + 1, 0, "more than the 65536 allowed");
	/* Exactly at the limit it is only blank lines. */
	check_error_len(text, CFG_TEXT_MAX, 0, "no [vm] section");
}

static void test_truncated_header(void **state)
{
	(void)state;
	check_error(VM_A "[vm we", 4, "missing ']' in section header");
}

static void test_truncated_quote(void **state)
{
	(void)state;
	check_error(VM_A "cmdline = \"console=tty", 4,
		    "unterminated quote in value of 'cmdline' in [vm a]");
}

static void test_unknown_key(void **state)
{
	(void)state;
	check_error("[vm web]\r\n# typo below\r\nmemroy = 64M\r\n", 3,
		    "unknown key 'memroy' in [vm web]");
	check_error("[hypervisor]\nmtu = 1500\n" VM_A, 2, "unknown key 'mtu' in [hypervisor]");
	check_error("[network lan]\nmemory = 1M\n" VM_A, 2,
		    "unknown key 'memory' in [network lan]");
	/* Keys are case-sensitive. */
	check_error("[vm a]\nMemory = 1M\n", 2, "unknown key 'Memory'");
}

static void test_unknown_key_message_bounded(void **state)
{
	char key[200];

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(text, sizeof(text), "[vm a]\n%s = 1\n", key);
	check_error(text, 2, "in [vm a]");
	assert_true(strlen(diag.message) < sizeof(diag.message));
}

static void test_unknown_section(void **state)
{
	(void)state;
	check_error(VM_A "[vmm b]\n", 4, "unknown section type 'vmm'");
	check_error("[VM a]\n", 1, "unknown section type 'VM'");
	check_error("[]\n", 1, "unknown section type ''");
}

static void test_junk_after_header(void **state)
{
	(void)state;
	check_error("[vm a] x\n", 1, "unexpected 'x' after section header");
	check_error("[vm a]]\n", 1, "unexpected ']' after section header");
}

static void test_key_before_section(void **state)
{
	(void)state;
	check_error("# preamble\nmemory = 64M\n" VM_A, 2, "key 'memory' before any section");
}

static void test_missing_equals(void **state)
{
	(void)state;
	check_error(VM_A "autostart yes\n", 4, "missing '=' in 'autostart yes'");
	check_error(VM_A "autostart # = yes\n", 4, "missing '=' in 'autostart'");
}

static void test_empty_key(void **state)
{
	(void)state;
	check_error(VM_A "  = 5\n", 4, "missing key before '='");
}

static void test_empty_value(void **state)
{
	(void)state;
	check_vm_value("cmdline", "# only a comment", "empty value for 'cmdline' in [vm a]");
	check_vm_value("cmdline", "\"\"", "empty value for 'cmdline' in [vm a]");
	check_error(VM_A "disk =\r\n", 4, "empty value for 'disk' in [vm a]");
}

static void test_junk_after_quote(void **state)
{
	(void)state;
	check_vm_value("disk", "\"/d\" x", "unexpected 'x' after quoted value of 'disk'");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	check_error(VM_A "memory = 32M\n", 4, "'memory' given twice in [vm a] (first on line 2)");
	check_error("[hypervisor]\nbaud = 9600\nbaud = 9600\n" VM_A, 3,
		    "'baud' given twice in [hypervisor] (first on line 2)");
}

static void test_too_many_nics(void **state)
{
	(void)state;
	check_error("[network n]\n" VM_A "nic = n\nnic = n\nnic = n\nnic = n\nnic = n\n", 9,
		    "more than 4 'nic' in [vm a]");
}

static void test_hypervisor_twice(void **state)
{
	(void)state;
	check_error("[hypervisor]\n" VM_A "[hypervisor]\n", 5,
		    "[hypervisor] given twice (first on line 1)");
}

static void test_section_names(void **state)
{
	char name[CFG_NAME_MAX + 1];

	(void)state;
	check_error("[hypervisor main]\n", 1, "[hypervisor] takes no name");
	check_error(VM_A "[vm]\n", 4, "[vm] needs a name");
	check_error("[network]\n", 1, "[network] needs a name");
	check_error("[vm a b]\n", 1, "bad name 'a b' for [vm]");
	check_error("[vm a/b]\n", 1, "bad name 'a/b' for [vm]");
	memset(name, 'n', CFG_NAME_MAX);
	name[CFG_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "[network %s]\n", name);
	check_error(text, 1, "bad name 'nnnn");
}

static void test_duplicate_names(void **state)
{
	(void)state;
	check_error(VM_A "[vm b]\nmemory = 1M\nimage = /b\n[vm a]\n", 7,
		    "duplicate [vm a] (first on line 1)");
	check_error("[network lan]\n[network wan]\n[network lan]\n", 3,
		    "duplicate [network lan] (first on line 1)");
	/* VMs and networks have a namespace each. */
	parse_ok("[network a]\n" VM_A "nic = a\n");
}

static void test_too_many_vms(void **state)
{
	size_t n = 0;

	(void)state;
	for (unsigned i = 0; i <= CFG_MAX_VMS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[vm v%u]\nmemory = 1M\nimage = /v\n",
				      i);
	check_error(text, 3 * CFG_MAX_VMS + 1, "too many [vm] sections (at most 16)");
}

static void test_too_many_networks(void **state)
{
	size_t n = 0;

	(void)state;
	for (unsigned i = 0; i <= CFG_MAX_NETWORKS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[network n%u]\n", i);
	check_error(text, CFG_MAX_NETWORKS + 1, "too many [network] sections (at most 8)");
}

static void test_memory_zero(void **state)
{
	(void)state;
	check_error("[vm a]\nmemory = 0\n", 2, "'memory' in [vm a] is out of range: 0");
	check_error("[vm a]\nmemory = 0M\n", 2, "out of range");
}

static void test_memory_absurd(void **state)
{
	(void)state;
	check_error("[vm a]\nmemory = 999999G\n", 2,
		    "out of range: 999999G (expected 1 MiB..64 GiB)");
	check_error("[vm a]\nmemory = 65G\n", 2, "out of range");
	check_error("[vm a]\nmemory = 1023K\n", 2, "out of range");
}

static void test_memory_fraction(void **state)
{
	(void)state;
	check_error("[vm a]\nmemory = 1.5M\n", 2, "bad value '1.5M' for 'memory' in [vm a]");
}

static void test_memory_not_whole_mib(void **state)
{
	(void)state;
	/* 65 MiB and one byte. */
	check_error("[vm a]\nmemory = 68157441\n", 2, "must be a multiple of 1 MiB");
	check_error("[vm a]\nmemory = 1536K\n", 2,
		    "'memory' in [vm a] must be a multiple of 1 MiB");
}

static void test_size_overflow(void **state)
{
	(void)state;
	check_error("[vm a]\nmemory = 99999999999999999999\n", 2, "out of range");
	/* Fits in 64 bits as a number, no longer once multiplied. */
	check_error("[vm a]\nmemory = 18446744073709551615G\n", 2, "out of range");
	check_error("[vm a]\nmemory = 17179869184G\n", 2, "out of range");
}

static void test_size_junk(void **state)
{
	static const char *const junk[] = {
		"64MB", "64 M", "-1M", "+64M", "M", "0x100000", "64Mi",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(text, sizeof(text), "[vm a]\nmemory = %s\n", junk[i]);
		check_error(text, 2, "bad value");
		assert_non_null(strstr(diag.message, "expected a size"));
	}
}

static void test_missing_image(void **state)
{
	(void)state;
	check_error("[vm web]\nmemory = 64M\n[network lan]\n", 1, "[vm web] has no 'image'");
	check_error(VM_A "\n\n[vm last]\nmemory = 64M", 6, "[vm last] has no 'image'");
}

static void test_missing_memory(void **state)
{
	(void)state;
	check_error("[vm web]\nimage = /web\n", 1, "[vm web] has no 'memory'");
}

static void test_address_beyond_memory(void **state)
{
	(void)state;
	check_error("[vm a]\nload = 0x4000000\nmemory = 64M\nimage = /a\n", 2,
		    "'load' 0x4000000 in [vm a] lies beyond its 64 MiB of memory");
	check_error(VM_A "entry = 67108864\n[vm b]\n", 4, "'entry' 0x4000000 in [vm a]");
}

static void test_address_junk(void **state)
{
	(void)state;
	check_vm_value("load", "0x", "bad value '0x' for 'load'");
	check_vm_value("load", "0x1g", "bad value '0x1g'");
	check_vm_value("entry", "1M", "bad value '1M' for 'entry'");
	check_vm_value("entry", "-1", "bad value '-1'");
	check_vm_value("load", "0x10000000000000000", "'load' in [vm a] is out of range");
	check_vm_value("load", "18446744073709551616", "out of range");
}

static void test_nic_undefined_network(void **state)
{
	(void)state;
	check_error("[network lan]\n" VM_A "nic = lan\nnic = wan\n[network other]\n", 6,
		    "'nic' in [vm a] names undefined network 'wan'");
}

static void test_bad_mac(void **state)
{
	static const char *const bad[] = {
		"02:00:00:00:00",    "02-00-00-00-00-01", "02:00:00:00:00:0g",
		"02:00:00:00:00:011", "2:00:00:00:00:01", "02:00:00:00:00:01:",
	};

	char value[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(value, sizeof(value), "lan,mac=%s", bad[i]);
		check_vm_value("nic", value, "expected a MAC such as");
	}
	check_vm_value("nic", "lan,mac=", "bad value '' for 'nic'");
	check_vm_value("nic", "lan,hw=02:00:00:00:00:01", "expected mac=XX:XX:XX:XX:XX:XX");
	check_vm_value("nic", "lan,", "bad value '' for 'nic'");
}

/* allow_macs: port security's allowance for a bridging guest, alone or after the MAC. */
static void test_nic_allow_macs(void **state)
{
	(void)state;
	parse_ok("[network lan]\n" VM_A "nic = lan,mac=02:00:00:00:00:01, allow_macs=4\n"
		 "nic = lan,allow_macs=0x20\nnic = lan\nnic = lan,allow_macs=2,mac=02:00:00:00:00:02\n");
	assert_int_equal(cfg.vms[0].nics[0].allow_macs, 4);
	assert_true(cfg.vms[0].nics[0].mac_set);
	assert_int_equal(cfg.vms[0].nics[1].allow_macs, CFG_ALLOW_MACS_MAX);
	assert_false(cfg.vms[0].nics[1].mac_set);
	assert_int_equal(cfg.vms[0].nics[2].allow_macs, 0);
	assert_int_equal(cfg.vms[0].nics[3].allow_macs, 2);
	assert_true(cfg.vms[0].nics[3].mac_set);
	check_vm_value("nic", "lan,allow_macs=33", "bad value '33' for 'allow_macs' of 'nic' in "
		       "[vm a]: expected 0..32");
	check_vm_value("nic", "lan,allow_macs=", "expected 0..32");
	check_vm_value("nic", "lan,allow_macs=-1", "expected 0..32");
	check_vm_value("nic", "lan,allow_macs", "expected mac=XX:XX:XX:XX:XX:XX or allow_macs=N");
	check_vm_value("nic", "lan,allow_macs=1,allow_macs=2", "each at most once");
	check_vm_value("nic", "lan,mac=02:00:00:00:00:01,mac=02:00:00:00:00:03",
		       "each at most once");
}

static void test_unusable_mac(void **state)
{
	(void)state;
	check_vm_value("nic", "lan,mac=01:00:5e:00:00:01",
		       "MAC 01:00:5e:00:00:01 in [vm a] is multicast");
	check_vm_value("nic", "lan,mac=ff:ff:ff:ff:ff:ff", "is multicast");
	check_vm_value("nic", "lan,mac=00:00:00:00:00:00", "is all zeros");
}

static void test_duplicate_mac(void **state)
{
	(void)state;
	check_error("[network lan]\n" VM_A "nic = lan,mac=02:00:00:00:00:01\n"
		    "[vm b]\nmemory = 1M\nimage = /b\nnic = lan , mac=02:00:00:00:00:01\n",
		    9, "MAC 02:00:00:00:00:01 in [vm b] is already used on line 5");
	check_error(VM_A "nic = lan,mac=02:00:00:00:00:01\nnic = wan,mac=02:00:00:00:00:01\n", 5,
		    "already used on line 4");
}

static void test_bad_nic_network(void **state)
{
	(void)state;
	check_vm_value("nic", ",mac=02:00:00:00:00:01",
		       "bad value ',mac=02:00:00:00:00:01' for 'nic'");
	check_vm_value("nic", "la n", "bad value 'la n' for 'nic'");
}

static void test_management_role(void **state)
{
	(void)state;
	parse_ok(VM_A "role = management\nauth_key = 000102030405060708090a0b0c0d0e0F\n"
		 "[vm b]\nmemory = 1M\nimage = /b\nrole = guest\n");
	assert_int_equal(cfg.vms[0].role, CFG_ROLE_MANAGEMENT);
	assert_int_equal(cfg.vms[0].auth_key_len, 16);
	assert_int_equal(cfg.vms[0].auth_key[15], 0x0f);
	assert_int_equal(cfg.vms[1].role, CFG_ROLE_GUEST);
	assert_int_equal(cfg.vms[1].auth_key_len, 0);
	parse_ok(VM_A);
	assert_int_equal(cfg.vms[0].role, CFG_ROLE_GUEST);
}

static void test_bad_management(void **state)
{
	(void)state;
	check_vm_value("role", "admin", "bad value 'admin' for 'role'");
	check_vm_value("auth_key", "0011", "32 to 128 hex digits");
	check_vm_value("auth_key", "000102030405060708090a0b0c0d0e0g", "32 to 128 hex digits");
	check_error(VM_A "auth_key = 000102030405060708090a0b0c0d0e0f\n[vm b]\n", 4,
		    "'auth_key' in [vm a] needs 'role = management'");
	check_error(VM_A "role = management\n[vm b]\nmemory = 1M\nimage = /b\n"
		    "role = management\n", 8, "[vm b]: 'a' is already the management VM (line 1)");
}

static void test_nul_byte(void **state)
{
	static const char nul[] = "[vm a]\nmem\0ory = 64M\nimage = /a\n";

	(void)state;
	check_error_len(nul, sizeof(nul) - 1, 2, "control character 0x00 in config");
}

static void test_control_characters(void **state)
{
	(void)state;
	check_error(VM_A "cmdline = \"a\033b\"\n", 4, "control character 0x1b in config");
	check_error(VM_A "# \177\n", 4, "control character 0x7f");
	check_error(VM_A "boot = long\rautostart = no\n", 4, "control character 0x0d");
	/* A CR is only a line end together with the LF after it. */
	check_error(VM_A "\r", 4, "control character 0x0d");
}

static void test_overlong_line(void **state)
{
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), VM_A "cmdline = ");
	memset(text + n, 'x', 300);
	strcpy(text + n + 300, "\r\n");
	check_error(text, 4, "line longer than 255 characters");

	/* 256 characters, then CRLF. */
	n = (size_t)snprintf(text, sizeof(text), "#");
	memset(text + n, 'c', 255);
	strcpy(text + n + 255, "\r\n" VM_A);
	check_error(text, 1, "line longer than 255 characters");
}

static void test_bad_words(void **state)
{
	(void)state;
	check_hypervisor_value("log_level", "verbose",
			       "bad value 'verbose' for 'log_level' in [hypervisor]: expected "
			       "error, warn, info or debug");
	check_hypervisor_value("selftest", "panic",
			       "expected none, exception, nmi, store or store-stress");
	check_hypervisor_value("xsave_compacted", "maybe", "bad value 'maybe' for 'xsave_compacted'");
	check_hypervisor_value("apic_virtualization", "1.5",
			       "bad value '1.5' for 'apic_virtualization'");
	check_hypervisor_value("baud", "9601", "expected 9600, 19200, 38400, 57600 or 115200");
	check_hypervisor_value("baud", "0x2580", "bad value '0x2580' for 'baud'");
	check_vm_value("boot", "protected", "bad value 'protected' for 'boot' in [vm a]: expected "
					    "real, long or linux");
	check_vm_value("autostart", "maybe", "expected yes, no, true, false, on, off, 1 or 0");
}

static void test_bad_serial(void **state)
{
	(void)state;
	check_hypervisor_value("serial", "com5",
			       "bad value 'com5' for 'serial' in [hypervisor]: expected com1..com4 "
			       "or an I/O port number");
	check_hypervisor_value("serial", "0", "'serial' in [hypervisor] is out of range: 0");
	check_hypervisor_value("serial", "0xfff9", "out of range: 0xfff9 (expected 0x1..0xfff8)");
}

static void test_bad_heap(void **state)
{
	(void)state;
	check_hypervisor_value("heap", "512K", "'heap' in [hypervisor] is out of range");
	check_hypervisor_value("heap", "2G", "expected 1 MiB..1 GiB");
	check_hypervisor_value("heap", "1025K", "must be a multiple of 4 KiB");
	check_hypervisor_value("heap", "lots", "bad value 'lots' for 'heap'");
}

static void test_bad_mtu(void **state)
{
	(void)state;
	check_error(VM_A "[network lan]\nmtu = 67\n", 5,
		    "'mtu' in [network lan] is out of range: 67");
	check_error("[network lan]\nmtu = 9001\n", 2, "out of range");
	check_error("[network lan]\nmtu = 1.5k\n", 2, "bad value '1.5k' for 'mtu'");
}

static void test_bad_paths(void **state)
{
	char path[CFG_PATH_MAX + 1];

	(void)state;
	check_vm_value("initrd", "initrd.img", "path for 'initrd' in [vm a] must be absolute");
	check_vm_value("disk", "\" /a\"", "must be absolute");
	check_vm_value("disk", "/caf\303\251",
		       "path for 'disk' in [vm a] must be printable ASCII");

	path[0] = '/';
	memset(path + 1, 'p', CFG_PATH_MAX - 1);
	path[CFG_PATH_MAX] = '\0';
	check_vm_value("disk", path, "'disk' in [vm a] is longer than 127 characters");
	/* One shorter fits. */
	path[CFG_PATH_MAX - 1] = '\0';
	snprintf(text, sizeof(text), VM_A "disk = %s\n", path);
	parse_ok(text);
	assert_int_equal(strlen(cfg.vms[0].disk), CFG_PATH_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_management_role),
		cmocka_unit_test(test_bad_management),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_output_fully_overwritten),
		cmocka_unit_test(test_guest_agent_keys),
		cmocka_unit_test(test_boot_mode_names),
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_serial_ports),
		cmocka_unit_test(test_paths_and_text),
		cmocka_unit_test(test_limits_accepted),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_only_comments),
		cmocka_unit_test(test_no_vm),
		cmocka_unit_test(test_text_too_large),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_truncated_quote),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_key_message_bounded),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_junk_after_header),
		cmocka_unit_test(test_key_before_section),
		cmocka_unit_test(test_missing_equals),
		cmocka_unit_test(test_empty_key),
		cmocka_unit_test(test_empty_value),
		cmocka_unit_test(test_junk_after_quote),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_too_many_nics),
		cmocka_unit_test(test_hypervisor_twice),
		cmocka_unit_test(test_section_names),
		cmocka_unit_test(test_duplicate_names),
		cmocka_unit_test(test_too_many_vms),
		cmocka_unit_test(test_too_many_networks),
		cmocka_unit_test(test_memory_zero),
		cmocka_unit_test(test_memory_absurd),
		cmocka_unit_test(test_memory_fraction),
		cmocka_unit_test(test_memory_not_whole_mib),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_size_junk),
		cmocka_unit_test(test_missing_image),
		cmocka_unit_test(test_missing_memory),
		cmocka_unit_test(test_address_beyond_memory),
		cmocka_unit_test(test_address_junk),
		cmocka_unit_test(test_nic_undefined_network),
		cmocka_unit_test(test_bad_mac),
		cmocka_unit_test(test_nic_allow_macs),
		cmocka_unit_test(test_unusable_mac),
		cmocka_unit_test(test_duplicate_mac),
		cmocka_unit_test(test_bad_nic_network),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_bad_words),
		cmocka_unit_test(test_bad_serial),
		cmocka_unit_test(test_bad_heap),
		cmocka_unit_test(test_bad_mtu),
		cmocka_unit_test(test_bad_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
