/*
 * Boot configuration: the file \vmm.conf on the boot volume says which VMs
 * to run and how the hypervisor itself behaves. The file is read before the
 * machine is taken over and is untrusted input: the parser bounds every
 * length and every number, and stops at the first problem with a line
 * number and a message that names the offending key, section or value.
 *
 * Format
 * ------
 * Text, at most CFG_TEXT_MAX bytes. Lines end with LF or CRLF; the last one
 * may lack it. A line holds at most 255 characters. Control characters
 * (including NUL and DEL) are refused anywhere except tab, and CR directly
 * before LF. Spaces and tabs around headers, keys and values are ignored.
 * '#' starts a comment that runs to the end of the line, except inside a
 * quoted value.
 *
 *   [hypervisor]                 at most once
 *   log_level = info             error | warn | info | debug
 *   serial    = com1             com1..com4, or an I/O port 0x1..0xfff8
 *   baud      = 115200           9600 | 19200 | 38400 | 57600 | 115200
 *   heap      = 16M              1 MiB..1 GiB, a multiple of 4 KiB
 *   selftest  = none             none | exception | nmi | store
 *   xsave_compacted = on         on | off: off hides XSAVEC and XSAVES from guests
 *   speculation_defences = on    on | off: off drops the host's own (vmm/speculation.h)
 *   apic_virtualization = on     on | off: off emulates every guest local APIC access even
 *                                where the CPU could deliver their interrupts itself
 *   additions = \additions.img   the guest additions' disk image (InstallAdditions)
 *   store     = \vmmstore.img    the store's container file (docs/store.md): an 8.3 name
 *                                in the boot volume's root
 *
 *   [network NAME]               at most CFG_MAX_NETWORKS
 *   mtu       = 1500             68..9000 (the switch's jumbo-frame limit)
 *   dhcp      = off              on: its DHCP server hands out 192.168.(100+i).10-99
 *
 *   [vm NAME]                    at least one, at most CFG_MAX_VMS
 *   memory    = 64M              required: 1 MiB..64 GiB, whole MiB
 *   image     = /guests/a.bin    required: a path
 *   boot      = long             real | long | linux
 *   load      = 0x100000         guest-physical address, below memory
 *   entry     = 0x100000         guest-physical address, below memory
 *   cmdline   = "console=ttyS0"  up to 255 characters
 *   initrd    = /guests/a.img    a path
 *   disk      = /guests/a.disk   a path
 *   store_disk = web1            a disk object of the store instead (docs/store.md)
 *   nic       = lan,mac=02:00:00:00:00:01   up to CFG_MAX_NICS times
 *               lan,allow_macs=4            a bridge: 4 more source MACs
 *   autostart = yes              a boolean
 *   guest_agent = yes            a boolean: the guest agent's virtio-console
 *                                port (docs/guest-agent.md)
 *   time_sync = yes              a boolean: the guest agent keeps the guest's
 *                                clock on the host's
 *   watchdog  = none             none | i6300esb: an emulated watchdog that
 *                                resets the VM when the guest stops feeding it
 *   free_page_reporting = no     a boolean: a virtio-balloon through which
 *                                the guest reports free pages, which the
 *                                hypervisor zeroes (a smaller save file)
 *   on_heartbeat_loss = none     none | reset | turnoff: what happens to a VM
 *                                whose agent stopped answering
 *   heartbeat_grace = 30         seconds of silence first: 15..3600
 *   role      = guest            guest | management: the management VM owns
 *                                the serial line and may use the control
 *                                hypercalls (at most one VM)
 *   auth_key  = 00112233...      management VM only: 32..128 hex digits, the
 *                                HMAC-SHA256 key of the line's authentication
 *
 * Section types and keys are lowercase and case-sensitive. A NAME is 1..31
 * of A-Z a-z 0-9 _ . - and unique among sections of its type (a VM and a
 * network may share one). Every key is given at most once per section,
 * except nic.
 *
 * A value that starts with '"' ends at the next '"' (no escapes) and may
 * then hold spaces and '#'; only a comment may follow it. Any other value
 * ends at '#' or the end of the line, and a '"' inside it is literal.
 * Empty values are refused.
 *
 * Words (levels, modes, com ports, booleans) are case-insensitive.
 * Booleans: yes/no, true/false, on/off, 1/0.
 * Sizes: a decimal number of bytes, optionally followed directly (no space)
 * by K, KiB, M, MiB, G or GiB, all binary multiples.
 * Numbers and addresses: decimal, or hexadecimal with a 0x prefix.
 * Paths: 1..127 printable ASCII characters, absolute; '/' may be used and is
 * turned into the UEFI separator '\'.
 * NICs: the name of a [network], defined anywhere in the file, optionally
 * followed by ",mac=" and six ':'-separated hex pairs; the MAC must be
 * unicast, not all zeros, and configured only once in the file. Then,
 * optionally, ",allow_macs=N" (0..CFG_ALLOW_MACS_MAX, default 0): the
 * number of source MAC addresses besides its own that the adapter may
 * send with, for a guest that bridges nested VMs onto the network; the
 * switch drops frames from any other source (port security, vnet/switch.h).
 */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/log.h"

#define CFG_MAX_VMS 16
#define CFG_MAX_NETWORKS 8
#define CFG_MAX_NICS 4           /* per VM */
#define CFG_NAME_MAX 32          /* bytes incl. NUL: names are 1..31 chars */
#define CFG_PATH_MAX 128         /* bytes incl. NUL */
#define CFG_CMDLINE_MAX 256      /* bytes incl. NUL */
#define CFG_TEXT_MAX (64 * 1024) /* larger files are refused */

enum vm_boot_mode { VM_BOOT_REAL, VM_BOOT_LONG, VM_BOOT_LINUX };
enum cfg_role { CFG_ROLE_GUEST, CFG_ROLE_MANAGEMENT };
/* An emulated watchdog device (docs/guest-agent.md). */
enum cfg_watchdog { CFG_WATCHDOG_NONE, CFG_WATCHDOG_I6300ESB };
/* What the management VM does when a guest agent stops answering (docs/guest-agent.md). */
enum cfg_heartbeat_action { CFG_HEARTBEAT_NONE, CFG_HEARTBEAT_RESET, CFG_HEARTBEAT_TURN_OFF };
#define CFG_HEARTBEAT_GRACE_DEFAULT_S 30
#define CFG_HEARTBEAT_GRACE_MIN_S 15   /* three missed pings, 5 s apart */
#define CFG_HEARTBEAT_GRACE_MAX_S 3600

#define CFG_AUTH_KEY_MIN 16
#define CFG_AUTH_KEY_MAX 64

/* Source addresses an adapter may use besides its own (a bridging guest's). */
#define CFG_ALLOW_MACS_MAX 32

struct cfg_nic {
	char network[CFG_NAME_MAX];
	uint8_t mac[6];
	bool mac_set;
	unsigned allow_macs;            /* 0..CFG_ALLOW_MACS_MAX, default 0 */
};

struct cfg_vm {
	char name[CFG_NAME_MAX];
	unsigned line;                  /* line of its [vm NAME] header, for messages */
	uint64_t memory_bytes;          /* required */
	char image[CFG_PATH_MAX];       /* required */
	enum vm_boot_mode boot;         /* default VM_BOOT_LONG */
	bool load_set;
	uint64_t load;                  /* optional guest-physical load address */
	bool entry_set;
	uint64_t entry;                 /* optional guest-physical entry point */
	char cmdline[CFG_CMDLINE_MAX];  /* optional, "" if absent */
	char initrd[CFG_PATH_MAX];      /* optional, "" if absent */
	char disk[CFG_PATH_MAX];        /* optional, "" if absent */
	char store_disk[CFG_NAME_MAX];  /* a store object as the disk (docs/store.md); "" if none */
	struct cfg_nic nics[CFG_MAX_NICS];
	unsigned nic_count;
	bool autostart;                 /* default true */
	bool guest_agent;               /* the agent's virtio-console port; default true */
	bool time_sync;                 /* its agent keeps the guest's clock on the host's; default true */
	enum cfg_watchdog watchdog;     /* default none */
	bool free_page_reporting;       /* virtio-balloon, free page reporting; default false */
	enum cfg_heartbeat_action on_heartbeat_loss; /* default none */
	uint32_t heartbeat_grace_s;     /* silence before it acts; default 30 */
	enum cfg_role role;             /* default guest */
	uint8_t auth_key[CFG_AUTH_KEY_MAX];
	unsigned auth_key_len;          /* 0: no authentication */
};

struct cfg_network {
	char name[CFG_NAME_MAX];
	unsigned line;
	uint32_t mtu;                   /* default 1500 */
	bool dhcp;                      /* its DHCP server starts on; default off */
};

/* store = partition: the GPT partition of the store's type, on whichever disk holds it. */
#define CFG_STORE_PARTITION "partition"

enum cfg_selftest { CFG_SELFTEST_NONE, CFG_SELFTEST_EXCEPTION, CFG_SELFTEST_NMI,
		    CFG_SELFTEST_STORE, CFG_SELFTEST_STORE_STRESS };

/* The store's self-tests: they need no VM, and run without VT-x (docs/store.md). */
static inline bool cfg_selftest_of_store(enum cfg_selftest s)
{
	return s == CFG_SELFTEST_STORE || s == CFG_SELFTEST_STORE_STRESS;
}

struct cfg_hypervisor {
	enum log_level log_level;       /* default LOG_INFO */
	uint16_t serial_port;           /* I/O port of the 16550, default 0x3f8 */
	uint32_t baud;                  /* default 115200 */
	uint64_t heap_bytes;            /* default 16 MiB */
	enum cfg_selftest selftest;     /* default none */
	bool xsave_compacted;           /* guests get XSAVEC/XSAVES where the CPU has them; default on */
	bool speculation_defences;      /* the host defends itself (vmm/speculation.h); default on */
	bool apic_virtualization;       /* VT-x APIC virtualization where the CPU has it; default on */
	char additions[CFG_PATH_MAX];   /* the guest additions' disk image; "" if none */
	char store[CFG_PATH_MAX];       /* the store's container file; "" if none */
};

struct config {
	struct cfg_hypervisor hv;
	struct cfg_vm vms[CFG_MAX_VMS];
	unsigned vm_count;
	struct cfg_network networks[CFG_MAX_NETWORKS];
	unsigned network_count;
};

struct cfg_diag {
	unsigned line;                  /* 0: not tied to a line */
	char message[160];
};

/*
 * Parses text[0..len) into *out (fully overwritten, defaults applied).
 * Returns 0 on success; on the first error returns -1 and fills *diag
 * with the line number and a message that names the offending
 * key/section/value. After an error *out holds no usable configuration.
 */
int config_parse(const char *text, size_t len, struct config *out, struct cfg_diag *diag);

/* Human-readable name of a boot mode ("real", "long", "linux"). */
const char *config_boot_mode_name(enum vm_boot_mode mode);
/* "none", "reset", "turnoff"; and back (false: no such action). */
const char *config_heartbeat_action_name(enum cfg_heartbeat_action action);
bool config_heartbeat_action_parse(const char *name, enum cfg_heartbeat_action *action);
/* "none", "i6300esb"; and back. */
const char *config_watchdog_name(enum cfg_watchdog watchdog);
bool config_watchdog_parse(const char *name, enum cfg_watchdog *watchdog);

/*
 * Parses s[0..n) as XX:XX:XX:XX:XX:XX (hex digits in either case) into
 * mac, as a NIC's mac= option gives it; false when it is not one.
 */
bool config_parse_mac(const char *s, size_t n, uint8_t mac[6]);

#endif
