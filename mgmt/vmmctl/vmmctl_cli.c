/*
 * vmmctl's command line: global options, the subcommands (one per API
 * request, named like xl/virsh), and the translation of a subcommand's
 * arguments into the shell's words, so that the request and its TLV
 * payload come from the one command table of mgmt/vm/shell.c
 * (shell_parse_argv): the shell, the tool and the server cannot disagree
 * on what an argument means.
 *
 *	vmmctl create web --memory 64M --image /guests/web.bin --nic lan
 *	  -> shell words: vm create name=web memory=64M image=/guests/web.bin nic=lan
 */
#include <stdlib.h>
#include <string.h>

#include "mgmt/vmmctl/vmmctl.h"

#define S(a, b) { a, b }

const struct vmmctl_sub vmmctl_subs[] = {
	/* IVMVirtualServer */
	{ "info", "host-info", S("host", "info"), VK_REQUEST, "",
	  "Hypervisor version, CPUs, memory, uptime, VM and network counts" },
	{ "list", "ls", S("vm", "list"), VK_REQUEST, "", "All VMs and their states" },
	{ "find", NULL, S("vm", "find"), VK_REQUEST, "VM", "Look a VM up by name" },
	{ "create", NULL, S("vm", "create"), VK_REQUEST,
	  "VM --memory SIZE --image PATH [--boot real|long|linux] [--load ADDR] [--entry ADDR] "
	  "[--cmdline TEXT] [--initrd PATH] [--disk PATH] [--nic NET[,mac=MAC]]... [--autostart] "
	  "[--guest_agent on|off] [--watchdog none|i6300esb] [--free_page_reporting on|off] "
	  "[--on_heartbeat_loss none|reset|turnoff] "
	  "[--heartbeat_grace SECONDS]",
	  "Create a VM (turned off unless --autostart)" },
	{ "delete", "destroy", S("vm", "delete"), VK_REQUEST, "VM", "Delete a turned-off VM" },
	{ "disk-create", NULL, S("disk", "create"), VK_REQUEST, "DISK --size SIZE",
	  "Make a disk in the store (zeroed in the background: disk-list shows how far)" },
	{ "disk-list", NULL, S("disk", "list"), VK_REQUEST, "",
	  "Disks in the store: size, how far made, which VM has each" },
	{ "disk-delete", NULL, S("disk", "delete"), VK_REQUEST, "DISK",
	  "Delete a disk of the store that no VM has" },
	{ "net-create", NULL, S("net", "create"), VK_REQUEST, "NET [--mtu N]",
	  "Create a virtual network" },
	{ "net-delete", NULL, S("net", "delete"), VK_REQUEST, "NET",
	  "Delete a virtual network (detaches its adapters)" },
	{ "net-list", NULL, S("net", "list"), VK_REQUEST, "", "All virtual networks" },
	{ "events", NULL, S(NULL, NULL), VK_EVENTS, "[--follow] [--count N] [--vm VM]",
	  "Event cursor; with --follow, stream VM state changes until interrupted" },
	{ "wait", NULL, S(NULL, NULL), VK_WAIT, "VM STATE [--max-wait SECONDS]",
	  "Wait until VM is in STATE (e.g. Running, TurnedOff)" },
	/* IVMVirtualMachine */
	{ "state", "show", S("vm", "info"), VK_REQUEST, "VM",
	  "State, memory, uptime, adapters, image of a VM" },
	{ "start", "startup", S("vm", "startup"), VK_STATE_OP, "VM",
	  "Start a turned-off VM, or restore a saved one" },
	{ "turnoff", "poweroff", S("vm", "turnoff"), VK_STATE_OP, "VM [--reason TEXT]",
	  "Power a VM off without asking the guest" },
	{ "reset", NULL, S("vm", "reset"), VK_STATE_OP, "VM", "Reset a running or paused VM" },
	{ "save", NULL, S("vm", "save"), VK_STATE_OP, "VM", "Save a VM's state and turn it off" },
	{ "export", NULL, S(NULL, NULL), VK_EXPORT, "VM FILE [--with-disk]",
	  "Copy a saved VM (configuration and state) into FILE on this host" },
	{ "import", NULL, S(NULL, NULL), VK_IMPORT,
	  "FILE [--name NAME] [--network NET] [--disk NAME] [--resume]",
	  "Make a saved VM of FILE (an export); start then restores it" },
	{ "discard", NULL, S("vm", "discard"), VK_STATE_OP, "VM",
	  "Drop a saved VM's state (it is then TurnedOff)" },
	{ "pause", NULL, S("vm", "pause"), VK_STATE_OP, "VM", "Pause a running VM" },
	{ "resume", NULL, S("vm", "resume"), VK_STATE_OP, "VM", "Resume a paused VM" },
	{ "nic-add", NULL, S("nic", "add"), VK_REQUEST, "VM [--mac MAC]",
	  "Add a network adapter (MAC generated unless given)" },
	{ "nic-remove", NULL, S("nic", "remove"), VK_REQUEST, "VM NIC",
	  "Remove network adapter NIC (0..3) of a turned-off VM" },
	{ "nic-list", NULL, S("nic", "list"), VK_REQUEST, "VM", "Network adapters of a VM" },
	{ "nic-mac", NULL, S("nic", "mac"), VK_REQUEST, "VM NIC", "MAC address of an adapter" },
	{ "nic-attach", NULL, S("nic", "attach"), VK_REQUEST, "VM NIC NET",
	  "Connect an adapter to a virtual network" },
	{ "nic-detach", NULL, S("nic", "detach"), VK_REQUEST, "VM NIC",
	  "Disconnect an adapter from its network" },
	{ "console", NULL, S(NULL, NULL), VK_CONSOLE,
	  "VM [--dump [--raw]] [--send TEXT] [--escape ^X]",
	  "Attach to a VM's serial console (Ctrl-] leaves), dump its buffer, or type text" },
	/* IVMVirtualNetwork, IVMDHCPVirtualNetworkServer */
	{ "net-show", NULL, S(NULL, NULL), VK_NET_SHOW, "NET",
	  "A network: statistics, attached adapters and DHCP settings" },
	{ "net-stats", NULL, S("net", "stats"), VK_REQUEST, "NET",
	  "Traffic statistics of a network" },
	{ "net-adapters", NULL, S("net", "adapters"), VK_REQUEST, "NET",
	  "Adapters attached to a network" },
	{ "dhcp-get", NULL, S("net", "dhcp"), VK_REQUEST, "NET", "DHCP settings of a network" },
	{ "dhcp-set", NULL, S("net", "dhcp"), VK_DHCP_SET,
	  "NET [--enabled on|off] [--range IP-IP] [--netmask IP] [--gateway IP] "
	  "[--dns IP[,IP...]] [--lease SECONDS]",
	  "Change the DHCP settings given (all or nothing); prints the result" },
	{ "leases", NULL, S("net", "leases"), VK_REQUEST, "NET", "DHCP leases of a network" },
	/* IVMGuestOS */
	{ "guest-heartbeat", NULL, S("guest", "heartbeat"), VK_REQUEST, "VM",
	  "Is the guest OS alive, can it shut down" },
	{ "guest-shutdown", "shutdown", S("guest", "shutdown"), VK_REQUEST, "VM",
	  "Ask the guest OS to shut down" },
	{ "guest-os", NULL, S("guest", "os"), VK_REQUEST, "VM", "Name of the guest OS" },
	{ "guest-additions", NULL, S("guest", "additions"), VK_REQUEST, "VM",
	  "Version of the guest additions" },
	{ "guest-install", NULL, S("guest", "install"), VK_REQUEST, "VM",
	  "Install the guest additions" },
	{ "guest-timesync", NULL, S("guest", "timesync"), VK_REQUEST, "VM [on|off]",
	  "Show or set host time synchronisation" },
	{ "guest-exec", NULL, S("guest", "exec"), VK_REQUEST, "VM COMMAND [--timeout_ms N]",
	  "Run a program in the guest OS" },
	{ "guest-set", NULL, S("guest", "set"), VK_REQUEST, "VM PARAMETER VALUE",
	  "Set a parameter in the guest OS" },
	/* Offline */
	{ "auth-answer", NULL, S(NULL, NULL), VK_AUTH_ANSWER, "NONCE-HEX --key-file FILE",
	  "Compute the answer to a shell 'auth challenge' (no connection)" },
	{ "help", NULL, S(NULL, NULL), VK_HELP, "[SUBCOMMAND]", "This help, or a subcommand's" },
};

const size_t vmmctl_sub_count = sizeof(vmmctl_subs) / sizeof(vmmctl_subs[0]);

const struct vmmctl_sub *vmmctl_find_sub(const char *name)
{
	for (size_t i = 0; i < vmmctl_sub_count; i++) {
		const struct vmmctl_sub *s = &vmmctl_subs[i];

		if (strcmp(s->name, name) == 0 || (s->alias && strcmp(s->alias, name) == 0))
			return s;
	}
	return NULL;
}

static const struct shell_command *shell_of(const struct vmmctl_sub *s)
{
	if (!s->shell[0])
		return NULL;
	for (size_t i = 0; i < shell_command_count; i++) {
		const struct shell_command *c = &shell_commands[i];

		if (strcmp(c->words[0], s->shell[0]) == 0 && c->words[1] &&
		    strcmp(c->words[1], s->shell[1]) == 0)
			return c;
	}
	return NULL;
}

static const char *type_placeholder(uint8_t tag)
{
	enum api_type type = API_T_LIST;

	api_tag_type(tag, &type);
	switch (type) {
	case API_T_BOOL:
		return "[on|off]";
	case API_T_SIZE:
		return "SIZE";
	case API_T_NAME:
		return "NAME";
	case API_T_MAC:
		return "MAC";
	case API_T_IPV4:
		return "IP";
	case API_T_IPV4_RANGE:
		return "IP-IP";
	case API_T_IPV4_LIST:
		return "IP[,IP...]";
	case API_T_HEX:
		return "HEX";
	case API_T_STR:
	case API_T_BYTES:
		return "TEXT";
	default:
		return "N";
	}
}

void vmmctl_usage(FILE *f)
{
	fprintf(f,
		"usage: vmmctl [options] SUBCOMMAND [arguments]\n"
		"Administers the vmm hypervisor over its management line (docs/vmmctl.md).\n\n"
		"options (also accepted after the subcommand):\n"
		"  -c, --connect TARGET  /dev/ttyS0, /dev/ttyUSB0, /dev/pts/N, tcp:HOST:PORT,\n"
		"                        unix:PATH, exec:COMMAND (default: $VMMCTL_CONNECT)\n"
		"  -b, --baud N          serial speed (default 115200; 8N1, raw)\n"
		"  -k, --key-file FILE   authentication key, hex (default: $VMMCTL_KEY_FILE)\n"
		"  -t, --timeout SEC     answer timeout per attempt (default: 1 s, 5 s for slow calls)\n"
		"  -r, --retries N       resends after a timeout (default 3)\n"
		"  -j, --json            JSON output for scripts\n"
		"  -l, --show-log        show the hypervisor's log text on stderr\n"
		"  -v, --verbose         session details on stderr\n"
		"  -h, --help            help (also: vmmctl SUBCOMMAND --help)\n"
		"  -V, --version         version\n\n"
		"subcommands:\n");
	for (size_t i = 0; i < vmmctl_sub_count; i++) {
		const struct vmmctl_sub *s = &vmmctl_subs[i];
		char name[40];

		snprintf(name, sizeof(name), "%s%s%s%s", s->name, s->alias ? " (" : "",
			 s->alias ? s->alias : "", s->alias ? ")" : "");
		fprintf(f, "  %-24s %s\n", name, s->summary);
	}
	fprintf(f, "\nexit codes: 0 ok, 1 error answered by the hypervisor, 2 usage,\n"
		   "3 connection or timeout, 4 protocol error\n");
}

/* Options of the tool's own subcommands, for help. */
static const struct {
	enum vmmctl_kind kind;
	const char *text;
} local_help[] = {
	{ VK_EVENTS, "  -f, --follow         stream events until interrupted (one JSON object\n"
		     "                       per line with --json); reconnects if the line drops\n"
		     "  --count N            stop after N events\n"
		     "  --vm VM              only events of VM\n" },
	{ VK_WAIT, "  --max-wait SECONDS   give up after this long (exit 3); default: forever\n"
		   "  STATE                a state name (TurnedOff, Running, Paused, Saved, ...)\n"
		   "                       or number\n" },
	{ VK_CONSOLE, "  (no option)          interactive: raw terminal, keys go to the VM,\n"
		      "                       Ctrl-] leaves; reconnects if the line drops\n"
		      "  --dump               print the buffered output and exit\n"
		      "  --raw                with --dump: bytes as they are (default: control\n"
		      "                       characters other than CR, LF, TAB escaped)\n"
		      "  --send TEXT          type TEXT into the console (\\n \\r \\t \\\\ \\xHH)\n"
		      "  --escape ^X          another escape key (^A..^_)\n" },
	{ VK_EXPORT, "  FILE                 written as FILE.part, renamed when complete and\n"
		     "                       checked; a FILE.part left by a dropped line is\n"
		     "                       continued\n"
		     "  --with-disk          the VM's disk goes into FILE too (zero pages take\n"
		     "                       no space, the rest is compressed), so that the VM\n"
		     "                       can be imported where its disk is not\n" },
	{ VK_IMPORT, "  --name NAME          the VM's name here (default: its name in FILE)\n"
		     "  --network NET        its adapters on NET here (default: networks of the\n"
		     "                       names in FILE)\n"
		     "  --disk NAME          the store disk a disk carried by FILE becomes\n"
		     "                       (default: its name in FILE, else the VM's name)\n"
		     "  --resume             go on with an import the line dropped\n" },
	{ VK_AUTH_ANSWER, "  -k, --key-file FILE  the key (hex)\n" },
};

void vmmctl_sub_help(FILE *f, const struct vmmctl_sub *s)
{
	const struct shell_command *c = shell_of(s);

	fprintf(f, "usage: vmmctl %s%s%s\n%s", s->name, *s->usage ? " " : "", s->usage, s->summary);
	if (c)
		fprintf(f, " (request %s%s%s)", api_request_name(c->request),
			c->query ? ", or without options " : "",
			c->query ? api_request_name(c->query) : "");
	fputc('\n', f);
	if (s->alias)
		fprintf(f, "alias: %s\n", s->alias);
	if (c) {
		bool header = false;

		for (const struct shell_arg *a = c->args; a < c->args + SHELL_CMD_ARGS && a->name;
		     a++) {
			char opt[48];

			if (a->flags & SHELL_ARG_POSITIONAL)
				continue;
			if (!header) {
				fprintf(f, "options:\n");
				header = true;
			}
			snprintf(opt, sizeof(opt), "--%s %s", a->name, type_placeholder(a->tag));
			fprintf(f, "  %-24s %s%s%s\n", opt, api_tag_name(a->tag),
				a->flags & SHELL_ARG_REQUIRED ? ", required" : "",
				a->flags & SHELL_ARG_REPEAT ? ", may be repeated" : "");
		}
	}
	for (size_t i = 0; i < sizeof(local_help) / sizeof(local_help[0]); i++)
		if (local_help[i].kind == s->kind)
			fprintf(f, "options:\n%s", local_help[i].text);
	fprintf(f, "global options: -c TARGET, -b BAUD, -k KEYFILE, -t SEC, -r N, -j, -l, -v "
		   "(vmmctl --help)\n");
}

/* ---- Parsing ---- */

static int usage_error(struct vmmctl_parsed *p, const char *fmt, const char *a, const char *b)
{
	snprintf(p->error, sizeof(p->error), fmt, a ? a : "", b ? b : "");
	return VMMCTL_EXIT_USAGE;
}

static bool parse_seconds(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0) || v > 86400)
		return false;
	*ms = (int)(v * 1000 + 0.5);
	if (*ms == 0)
		*ms = 1;
	return true;
}

static bool parse_long(const char *s, long min, long max, long *v)
{
	char *end;

	*v = strtol(s, &end, 10);
	return end != s && !*end && *v >= min && *v <= max;
}

static bool is_bool_word(const char *s)
{
	static const char *const words[] = { "on", "off", "yes", "no", "true", "false", "1", "0" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

/*
 * A global option at argv[*i]: 1 consumed (with its value), 0 not a
 * global option, -1 error.
 */
static int global_option(struct vmmctl_parsed *p, int argc, char **argv, int *i)
{
	struct vmmctl_opts *o = &p->opts;
	const char *arg = argv[*i], *value = NULL, *eq;
	char name[32];
	size_t n;
	long v;
	static const struct {
		char short_name;
		const char *name;
		bool has_value;
	} table[] = {
		{ 'c', "connect", true }, { 'b', "baud", true },     { 'k', "key-file", true },
		{ 't', "timeout", true }, { 'r', "retries", true },  { 'j', "json", false },
		{ 'l', "show-log", false }, { 'v', "verbose", false }, { 'h', "help", false },
		{ 'V', "version", false },
	};
	int k = -1;

	if (arg[0] != '-' || arg[1] == '\0')
		return 0;
	if (arg[1] != '-') {
		if (arg[2] != '\0')
			return 0;
		for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++)
			if (table[t].short_name == arg[1])
				k = (int)t;
	} else {
		eq = strchr(arg + 2, '=');
		n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if (n >= sizeof(name))
			return 0;
		memcpy(name, arg + 2, n);
		name[n] = '\0';
		for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++)
			if (strcmp(table[t].name, name) == 0)
				k = (int)t;
		if (k >= 0 && eq) {
			if (!table[k].has_value)
				return usage_error(p, "option --%s takes no value%s", name, NULL), -1;
			value = eq + 1;
		}
	}
	if (k < 0)
		return 0;
	if (table[k].has_value && !value) {
		if (*i + 1 >= argc)
			return usage_error(p, "option %s needs a value%s", arg, NULL), -1;
		value = argv[++*i];
	}
	switch (table[k].short_name) {
	case 'c':
		o->connect = value;
		break;
	case 'b':
		if (!parse_long(value, 1, 4000000, &v) || !vmmctl_baud_valid((int)v))
			return usage_error(p, "--baud: '%s' is not one of 9600 19200 38400 57600 "
					      "115200 230400 460800 921600%s", value, NULL), -1;
		o->baud = (int)v;
		break;
	case 'k':
		o->key_file = value;
		break;
	case 't':
		if (!parse_seconds(value, &o->timeout_ms))
			return usage_error(p, "--timeout: '%s' is not a number of seconds (0.001..86400)%s",
					   value, NULL), -1;
		break;
	case 'r':
		if (!parse_long(value, 0, 100, &v))
			return usage_error(p, "--retries: '%s' is not a number 0..100%s", value, NULL),
			       -1;
		o->retries = (int)v;
		break;
	case 'j':
		o->json = true;
		break;
	case 'l':
		o->show_log = true;
		break;
	case 'v':
		o->verbose = true;
		break;
	case 'h':
		o->help = true;
		break;
	case 'V':
		o->version = true;
		break;
	}
	return 1;
}

/* "^]" or "^a": the control key; a single character as is. */
static bool parse_escape(const char *s, uint8_t *key)
{
	if (s[0] == '^' && s[1] && !s[2]) {
		char c = s[1];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < '@' || c > '_')
			return false;
		*key = (uint8_t)(c & 0x1f);
		return true;
	}
	return false;
}

/* Options of the tool's own subcommands: 1 consumed, 0 not one, -1 error. */
static int local_option(struct vmmctl_parsed *p, int argc, char **argv, int *i)
{
	struct vmmctl_local *l = &p->local;
	enum vmmctl_kind kind = p->sub->kind;
	const char *arg = argv[*i];
	char name[32];
	const char *value = NULL, *eq = strchr(arg, '=');
	size_t n;
	long v;

	if (strncmp(arg, "--", 2) != 0) {
		if (kind == VK_EVENTS && strcmp(arg, "-f") == 0) {
			l->follow = true;
			return 1;
		}
		return 0;
	}
	n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
	if (n >= sizeof(name))
		return 0;
	memcpy(name, arg + 2, n);
	name[n] = '\0';
	if (eq)
		value = eq + 1;

#define FLAG(k, s, field)                                                                  \
	if (kind == (k) && strcmp(name, s) == 0) {                                         \
		if (value)                                                                 \
			return usage_error(p, "option --%s takes no value%s", name, NULL), -1; \
		l->field = true;                                                           \
		return 1;                                                                  \
	}
#define VALUE(k, s)                                                                        \
	(kind == (k) && strcmp(name, s) == 0 &&                                            \
	 (value || (*i + 1 < argc && (value = argv[++*i]))))

	FLAG(VK_EVENTS, "follow", follow);
	FLAG(VK_CONSOLE, "dump", dump);
	FLAG(VK_CONSOLE, "raw", raw);
	FLAG(VK_IMPORT, "resume", resume);
	FLAG(VK_EXPORT, "with-disk", with_disk);
	if (VALUE(VK_IMPORT, "disk")) {
		l->disk = value;
		return 1;
	}
	if (VALUE(VK_IMPORT, "name")) {
		l->vm = value;
		return 1;
	}
	if (VALUE(VK_IMPORT, "network")) {
		l->network = value;
		return 1;
	}
	if (VALUE(VK_EVENTS, "count")) {
		if (!parse_long(value, 1, 1000000000L, &v))
			return usage_error(p, "--count: '%s' is not a positive number%s", value, NULL),
			       -1;
		l->count = v;
		return 1;
	}
	if (VALUE(VK_EVENTS, "vm")) {
		l->vm = value;
		return 1;
	}
	if (VALUE(VK_WAIT, "max-wait")) {
		if (!parse_seconds(value, &l->wait_ms))
			return usage_error(p, "--max-wait: '%s' is not a number of seconds%s", value,
					   NULL), -1;
		return 1;
	}
	if (VALUE(VK_CONSOLE, "send")) {
		l->send = value;
		return 1;
	}
	if (VALUE(VK_CONSOLE, "escape")) {
		if (!parse_escape(value, &l->escape))
			return usage_error(p, "--escape: '%s' is not a control key such as ^] or ^A%s",
					   value, NULL), -1;
		return 1;
	}
#undef FLAG
#undef VALUE
	return 0;
}

/* Rewrites the shell's message for the tool: "vm create: x (try 'help vm create')". */
static void shell_error(struct vmmctl_parsed *p, const struct shell_command *c)
{
	char prefix[40], msg[SHELL_ERROR_MAX];
	const char *m = p->cmd.error, *try;
	size_t n;

	snprintf(prefix, sizeof(prefix), "%s %s: ", c->words[0], c->words[1] ? c->words[1] : "");
	if (strncmp(m, prefix, strlen(prefix)) == 0)
		m += strlen(prefix);
	try = strstr(m, " (try 'help");
	n = try ? (size_t)(try - m) : strlen(m);
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, m, n);
	msg[n] = '\0';
	snprintf(p->error, sizeof(p->error), "%s: %s (try 'vmmctl %s --help')", p->sub->name, msg,
		 p->sub->name);
}

static bool add_word(struct vmmctl_parsed *p, char words[][SHELL_WORD_MAX + 48], int *count,
		     const char *key, const char *value)
{
	if (*count >= SHELL_WORDS_MAX) {
		usage_error(p, "too many arguments%s%s", NULL, NULL);
		return false;
	}
	if (strlen(value) > SHELL_WORD_MAX) {
		snprintf(p->error, sizeof(p->error), "%s: --%s: value longer than %d characters",
			 p->sub->name, key, SHELL_WORD_MAX);
		return false;
	}
	snprintf(words[(*count)++], SHELL_WORD_MAX + 48, "%s=%s", key, value);
	return true;
}

/* Builds the request of a shell-backed subcommand from its positionals and options. */
static int build_request(struct vmmctl_parsed *p, const struct shell_command *c, int argc,
			 char **argv, int first)
{
	static char words[SHELL_WORDS_MAX][SHELL_WORD_MAX + 48];
	const char *ptrs[SHELL_WORDS_MAX];
	uint32_t given = 0;
	int count = 0;
	bool only_positional = false;

	snprintf(words[count++], sizeof(words[0]), "%s", c->words[0]);
	snprintf(words[count++], sizeof(words[0]), "%s", c->words[1]);

	for (int i = first; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_positional && strcmp(arg, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
			int g = global_option(p, argc, argv, &i);

			if (g < 0)
				return VMMCTL_EXIT_USAGE;
			if (g > 0)
				continue;
			if (arg[1] != '-')
				return usage_error(p, "%s: unknown option '%s'", p->sub->name, arg);

			/* --name[=value], --no-name for a boolean */
			char name[32];
			const char *eq = strchr(arg + 2, '='), *value = NULL;
			size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
			const struct shell_arg *a = NULL;
			bool negated = false;

			if (n == 0 || n >= sizeof(name))
				return usage_error(p, "%s: unknown option '%s'", p->sub->name, arg);
			memcpy(name, arg + 2, n);
			name[n] = '\0';
			for (const struct shell_arg *s = c->args;
			     s < c->args + SHELL_CMD_ARGS && s->name && !a; s++)
				if (strcmp(s->name, name) == 0)
					a = s;
			if (!a && strncmp(name, "no-", 3) == 0) {
				for (const struct shell_arg *s = c->args;
				     s < c->args + SHELL_CMD_ARGS && s->name && !a; s++)
					if (strcmp(s->name, name + 3) == 0)
						a = s;
				negated = a != NULL;
			}
			enum api_type type = API_T_LIST;

			if (a)
				api_tag_type(a->tag, &type);
			if (!a || (negated && type != API_T_BOOL))
				return usage_error(p, "%s: unknown option '%s'", p->sub->name, arg);
			if (eq) {
				value = eq + 1;
				if (negated)
					return usage_error(p, "%s: '%s' takes no value", p->sub->name,
							   arg);
			} else if (type == API_T_BOOL) {
				if (negated)
					value = "off";
				else if (i + 1 < argc && is_bool_word(argv[i + 1]))
					value = argv[++i];
				else
					value = "on";
			} else {
				if (i + 1 >= argc)
					return usage_error(p, "%s: option %s needs a value", p->sub->name,
							   arg);
				value = argv[++i];
			}
			given |= 1u << (a - c->args);
			if (!add_word(p, words, &count, a->name, value))
				return VMMCTL_EXIT_USAGE;
			continue;
		}
		/* A bare word: the next positional argument not given as an option. */
		const struct shell_arg *a = NULL;

		for (const struct shell_arg *s = c->args;
		     s < c->args + SHELL_CMD_ARGS && s->name && !a; s++)
			if ((s->flags & SHELL_ARG_POSITIONAL) && !(given & (1u << (s - c->args))))
				a = s;
		if (!a)
			return usage_error(p, "%s: unexpected argument '%s'", p->sub->name, arg);
		given |= 1u << (a - c->args);
		if (!add_word(p, words, &count, a->name, arg))
			return VMMCTL_EXIT_USAGE;
	}
	if (p->opts.help)
		return VMMCTL_EXIT_OK;
	for (int i = 0; i < count; i++)
		ptrs[i] = words[i];
	if (shell_parse_argv(&p->cmd, count, ptrs) != SHELL_OK) {
		shell_error(p, c);
		return VMMCTL_EXIT_USAGE;
	}
	if (p->sub->kind == VK_DHCP_SET && p->cmd.request != API_REQ_SET_DHCP_SETTINGS)
		return usage_error(p, "%s: nothing to change (try 'vmmctl %s --help'; dhcp-get shows "
				      "the settings)", p->sub->name, p->sub->name);
	return VMMCTL_EXIT_OK;
}

/* Positionals and options of the tool's own subcommands. */
static int parse_local(struct vmmctl_parsed *p, int argc, char **argv, int first)
{
	const char *pos[3];
	unsigned npos = 0, max = 0;
	bool only_positional = false;

	switch (p->sub->kind) {
	case VK_WAIT:
	case VK_EXPORT:
		max = 2;
		break;
	case VK_IMPORT:
	case VK_CONSOLE:
	case VK_NET_SHOW:
	case VK_AUTH_ANSWER:
	case VK_HELP:
		max = 1;
		break;
	default:
		break;
	}
	for (int i = first; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_positional && strcmp(arg, "--") == 0) {
			only_positional = true;
			continue;
		}
		if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
			int r = global_option(p, argc, argv, &i);

			if (r == 0)
				r = local_option(p, argc, argv, &i);
			if (r < 0)
				return VMMCTL_EXIT_USAGE;
			if (r == 0)
				return usage_error(p, "%s: unknown option '%s'", p->sub->name, arg);
			continue;
		}
		if (npos >= max)
			return usage_error(p, "%s: unexpected argument '%s'", p->sub->name, arg);
		pos[npos++] = arg;
	}
	if (p->opts.help)
		return VMMCTL_EXIT_OK;
	switch (p->sub->kind) {
	case VK_WAIT: {
		uint8_t st;

		if (npos < 2)
			return usage_error(p, "wait: needs VM and STATE (try 'vmmctl wait --help')%s%s",
					   NULL, NULL);
		if (!vmmctl_state_parse(pos[1], &st))
			return usage_error(p, "wait: '%s' is not a VM state (TurnedOff, Running, "
					      "Paused, Saved, ... or a number)%s", pos[1], NULL);
		p->local.vm = pos[0];
		p->local.state = pos[1];
		break;
	}
	case VK_CONSOLE:
		if (npos < 1)
			return usage_error(p, "console: needs a VM (try 'vmmctl console --help')%s%s",
					   NULL, NULL);
		p->local.vm = pos[0];
		if (p->local.dump && p->local.send)
			return usage_error(p, "console: --dump and --send are separate uses%s%s", NULL,
					   NULL);
		if (p->local.raw && !p->local.dump)
			return usage_error(p, "console: --raw goes with --dump%s%s", NULL, NULL);
		break;
	case VK_EXPORT:
		if (npos < 2)
			return usage_error(p, "export: needs VM and FILE (try 'vmmctl export --help')%s%s",
					   NULL, NULL);
		p->local.vm = pos[0];
		p->local.file = pos[1];
		break;
	case VK_IMPORT:
		if (npos < 1)
			return usage_error(p, "import: needs FILE (try 'vmmctl import --help')%s%s", NULL,
					   NULL);
		p->local.file = pos[0];
		break;
	case VK_NET_SHOW:
		if (npos < 1)
			return usage_error(p, "net-show: needs a network name%s%s", NULL, NULL);
		p->local.vm = pos[0];
		break;
	case VK_AUTH_ANSWER:
		if (npos < 1)
			return usage_error(p, "auth-answer: needs the nonce in hex%s%s", NULL, NULL);
		p->local.nonce = pos[0];
		break;
	case VK_HELP:
		if (npos == 1) {
			const struct vmmctl_sub *s = vmmctl_find_sub(pos[0]);

			if (!s)
				return usage_error(p, "help: no subcommand '%s'%s", pos[0], NULL);
			p->sub = s;
			p->sub_help = true;
		} else {
			p->opts.help = true;
			p->sub = NULL;
		}
		break;
	default:
		break;
	}
	/* Names are checked here too, before anything goes on the line. */
	if (p->local.vm && !api_value_valid(API_T_NAME, (const uint8_t *)p->local.vm,
					    strlen(p->local.vm)))
		return usage_error(p, "'%s' is not a name (1 to 31 of A-Z a-z 0-9 _ . -)%s",
				   p->local.vm, NULL);
	return VMMCTL_EXIT_OK;
}

int vmmctl_parse(struct vmmctl_parsed *p, int argc, char **argv,
		 const char *(*getenv_fn)(const char *))
{
	int i = 1;

	memset(&p->opts, 0, sizeof(p->opts));
	memset(&p->local, 0, sizeof(p->local));
	p->sub = NULL;
	p->sub_help = false;
	p->error[0] = '\0';
	p->opts.baud = 115200;
	p->opts.retries = VMMCTL_RETRIES;
	p->local.wait_ms = -1;
	p->local.escape = 0x1d; /* Ctrl-] */
	if (getenv_fn) {
		p->opts.connect = getenv_fn("VMMCTL_CONNECT");
		p->opts.key_file = getenv_fn("VMMCTL_KEY_FILE");
	}

	/* Global options before the subcommand. */
	for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		int r = global_option(p, argc, argv, &i);

		if (r < 0)
			return VMMCTL_EXIT_USAGE;
		if (r == 0)
			return usage_error(p, "unknown option '%s' (try 'vmmctl --help')%s", argv[i],
					   NULL);
	}
	if (i >= argc) {
		if (p->opts.help || p->opts.version)
			return VMMCTL_EXIT_OK;
		return usage_error(p, "no subcommand (try 'vmmctl --help')%s%s", NULL, NULL);
	}
	p->sub = vmmctl_find_sub(argv[i]);
	if (!p->sub)
		return usage_error(p, "unknown subcommand '%s' (try 'vmmctl --help')%s", argv[i],
				   NULL);
	i++;

	const struct shell_command *c = shell_of(p->sub);
	int rc = c ? build_request(p, c, argc, argv, i) : parse_local(p, argc, argv, i);

	if (rc == VMMCTL_EXIT_OK && p->opts.help && p->sub) {
		p->sub_help = true;
		p->opts.help = false;
	}
	return rc;
}
