/*
 * The message catalogue of the management API: request types, event types,
 * TLV tags with their value types, and error codes. The framing that
 * carries them is in mgmt/proto.h; the byte-level description of every
 * message is docs/protocol.md. The management VM, the admin tool and the
 * human shell (mgmt/vm/shell.h) all use these numbers.
 *
 * Objects and methods follow Microsoft Virtual Server 2005's control API
 * (IVMVirtualServer, IVMVirtualMachine, IVMNetworkAdapter,
 * IVMVirtualNetwork with its DHCP server, IVMGuestOS); VM states on the
 * wire are the values of enum vm_state (include/abi/vm_state.h), which are
 * Virtual Server's VMVMState values.
 *
 * Every list is an X-macro so that a value, its enum name and its printable
 * name are written once: adding a request is one line, and the name tables
 * in mgmt/proto.c cannot drift from the enums.
 *
 * Numbers are never reused or renumbered: a value retired from the API
 * stays reserved (docs/protocol.md, "Versioning").
 */
#ifndef ABI_API_H
#define ABI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/vm_state.h"

/*
 * Version of the message catalogue (not of the framing, which is
 * PROTO_VERSION). Raised when requests, tags or errors are added; what a
 * peer of an older catalogue does not know it answers with
 * API_E_UNKNOWN_REQUEST or skips (unknown tags), so additions stay
 * compatible. Exchanged in Hello.
 */
#define API_VERSION 4

/*
 * Requests, grouped by the object they act on (high nibble). The response
 * (a RESPONSE frame on success, an ERROR frame otherwise) carries the same
 * code. X(enum suffix, code, name)
 */
#define API_REQUESTS(X)                                                    \
	/* Session: mode switch, authentication */                         \
	X(HELLO,                      0x01, "Hello")                       \
	X(GOODBYE,                    0x02, "Goodbye")                     \
	X(AUTH_CHALLENGE,             0x03, "AuthChallenge")               \
	X(AUTH_RESPONSE,              0x04, "AuthResponse")                \
	/* IVMVirtualServer */                                             \
	X(GET_HOST_INFO,              0x10, "GetHostInfo")                 \
	X(CREATE_VIRTUAL_MACHINE,     0x11, "CreateVirtualMachine")        \
	X(DELETE_VIRTUAL_MACHINE,     0x12, "DeleteVirtualMachine")        \
	X(LIST_VIRTUAL_MACHINES,      0x13, "ListVirtualMachines")         \
	X(FIND_VIRTUAL_MACHINE,       0x14, "FindVirtualMachine")          \
	X(CREATE_VIRTUAL_NETWORK,     0x15, "CreateVirtualNetwork")        \
	X(DELETE_VIRTUAL_NETWORK,     0x16, "DeleteVirtualNetwork")        \
	X(LIST_VIRTUAL_NETWORKS,      0x17, "ListVirtualNetworks")         \
	X(SUBSCRIBE_EVENTS,           0x18, "SubscribeEvents")             \
	X(IMPORT_VIRTUAL_MACHINE,     0x19, "ImportVirtualMachine")        \
	/* Disks in the store (docs/store.md): Virtual Server's CreateVirtualHardDisk */ \
	X(CREATE_VIRTUAL_HARD_DISK,   0x1a, "CreateVirtualHardDisk")       \
	X(LIST_VIRTUAL_HARD_DISKS,    0x1b, "ListVirtualHardDisks")        \
	X(DELETE_VIRTUAL_HARD_DISK,   0x1c, "DeleteVirtualHardDisk")       \
	/* IVMVirtualMachine */                                            \
	X(GET_STATE,                  0x20, "GetState")                    \
	X(STARTUP,                    0x21, "Startup")                     \
	X(TURN_OFF,                   0x22, "TurnOff")                     \
	X(RESET,                      0x23, "Reset")                       \
	X(SAVE,                       0x24, "Save")                        \
	X(PAUSE,                      0x25, "Pause")                       \
	X(RESUME,                     0x26, "Resume")                      \
	X(ADD_NETWORK_ADAPTER,        0x27, "AddNetworkAdapter")           \
	X(REMOVE_NETWORK_ADAPTER,     0x28, "RemoveNetworkAdapter")        \
	X(LIST_NETWORK_ADAPTERS,      0x29, "ListNetworkAdapters")         \
	X(CONSOLE_READ,               0x2a, "ConsoleRead")                 \
	X(CONSOLE_WRITE,              0x2b, "ConsoleWrite")                \
	X(DISCARD_SAVED_STATE,        0x2c, "DiscardSavedState")           \
	X(EXPORT_SAVED_STATE,         0x2d, "ExportSavedState")            \
	/* IVMNetworkAdapter */                                            \
	X(GET_MAC_ADDRESS,            0x30, "GetMacAddress")               \
	X(ATTACH_TO_VIRTUAL_NETWORK,  0x31, "AttachToVirtualNetwork")      \
	X(DETACH_FROM_VIRTUAL_NETWORK, 0x32, "DetachFromVirtualNetwork")   \
	/* IVMVirtualNetwork and its IVMDHCPVirtualNetworkServer */        \
	X(GET_ADAPTERS,               0x40, "GetAdapters")                 \
	X(GET_STATISTICS,             0x41, "GetStatistics")               \
	X(GET_DHCP_SETTINGS,          0x42, "GetDhcpSettings")             \
	X(SET_DHCP_SETTINGS,          0x43, "SetDhcpSettings")             \
	X(GET_LEASES,                 0x44, "GetLeases")                   \
	/* IVMGuestOS: answered by the management VM through the guest agent */ \
	X(GET_HEARTBEAT,              0x50, "GetHeartbeat")                \
	X(SHUTDOWN,                   0x51, "Shutdown")                    \
	X(GET_OS_NAME,                0x52, "GetOsName")                   \
	X(GET_ADDITIONS_VERSION,      0x53, "GetAdditionsVersion")         \
	X(SYNC_TIME,                  0x54, "SyncTime")                    \
	X(EXECUTE_COMMAND,            0x55, "ExecuteCommand")              \
	X(SET_PARAMETER,              0x56, "SetParameter")                \
	X(INSTALL_ADDITIONS,          0x57, "InstallAdditions")

#define API_ENUM_REQUEST(sym, code, name) API_REQ_##sym = code,
enum api_request {
	API_REQ_NONE = 0, /* never sent: "no request" in tables */
	API_REQUESTS(API_ENUM_REQUEST)
};
#undef API_ENUM_REQUEST

/* Asynchronous EVENT frames, sent to subscribers (SubscribeEvents). */
#define API_EVENTS(X)                                                      \
	/* IVMVirtualServerEvents::OnVMStateChange: one per state of a sequence */ \
	X(VM_STATE_CHANGE,            0x01, "VMStateChange")               \
	/* Output of the VM whose console the subscriber follows */       \
	X(CONSOLE_OUTPUT,             0x02, "ConsoleOutput")               \
	/* The subscriber fell behind the event ring: events were dropped */ \
	X(EVENTS_LOST,                0x03, "EventsLost")                  \
	/* A guest agent stopped answering (and what its policy did) */   \
	X(HEARTBEAT_LOST,             0x04, "HeartbeatLost")

/* 0 is not an event, nor a tag: a zeroed field never names one. */
#define API_ENUM_EVENT(sym, code, name) API_EVENT_##sym = code,
enum api_event {
	API_EVENTS(API_ENUM_EVENT)
};
#undef API_ENUM_EVENT

/*
 * How a TLV value is encoded. Integers are little-endian and exactly their
 * width; strings are bytes without a terminating NUL (no NUL inside).
 */
enum api_type {
	API_T_U8,         /* 1 byte */
	API_T_U16,        /* 2 bytes */
	API_T_U32,        /* 4 bytes */
	API_T_U64,        /* 8 bytes */
	API_T_BOOL,       /* 1 byte, 0 or 1 */
	API_T_SIZE,       /* 8 bytes, a byte count (the shell takes 64M, 1G, ...) */
	API_T_STR,        /* 0..API_STR_MAX bytes of printable ASCII */
	API_T_NAME,       /* 1..API_NAME_MAX bytes of A-Z a-z 0-9 _ . - */
	API_T_BYTES,      /* 0..PROTO_MAX_PAYLOAD opaque bytes (the shell takes text) */
	API_T_HEX,        /* opaque bytes the shell reads and prints as hex */
	API_T_MAC,        /* 6 bytes, transmission order */
	API_T_IPV4,       /* 4 bytes, network order */
	API_T_IPV4_RANGE, /* 8 bytes: first and last address, network order */
	API_T_IPV4_LIST,  /* 4 * (1..API_IPV4_LIST_MAX) bytes */
	API_T_LIST,       /* nested TLVs (one entry of a list) */
};

/* Same limits as the boot configuration (boot/config.h). */
#define API_NAME_MAX 31
#define API_STR_MAX 255
#define API_IPV4_LIST_MAX 4

/*
 * TLV tags. A tag means the same thing in every message it appears in.
 * X(enum suffix, tag, type, name)
 */
#define API_TAGS(X)                                                        \
	/* Common */                                                       \
	X(ERROR,             0x01, API_T_U16,        "error")              \
	X(MESSAGE,           0x02, API_T_STR,        "message")            \
	X(CURSOR,            0x03, API_T_U32,        "cursor")             \
	X(API_VERSION,       0x04, API_T_U16,        "api_version")        \
	X(SOFTWARE,          0x05, API_T_STR,        "software")           \
	X(RETRY_AFTER_MS,    0x06, API_T_U32,        "retry_after_ms")     \
	X(NONCE,             0x07, API_T_HEX,        "nonce")              \
	X(AUTH_MAC,          0x08, API_T_HEX,        "auth_mac")           \
	X(SEQ,               0x09, API_T_U64,        "seq")                \
	X(STATE_EVENTS,      0x0a, API_T_BOOL,       "state_events")       \
	X(CONSOLE_VM,        0x0b, API_T_NAME,       "console_vm")         \
	X(AUTH_REQUIRED,     0x0c, API_T_BOOL,       "auth_required")      \
	X(SESSION,           0x0d, API_T_U32,        "session")            \
	X(REQ_SEQ,           0x0e, API_T_U64,        "req_seq")            \
	X(REQ_MAC,           0x0f, API_T_HEX,        "req_mac")            \
	/* Host */                                                         \
	X(CPUS,              0x10, API_T_U32,        "cpus")               \
	X(MEMORY_TOTAL,      0x11, API_T_SIZE,       "memory_total")       \
	X(MEMORY_FREE,       0x12, API_T_SIZE,       "memory_free")        \
	X(MEMORY_USED,       0x13, API_T_SIZE,       "memory_used")        \
	X(UPTIME_MS,         0x14, API_T_U64,        "uptime_ms")          \
	X(VM_COUNT,          0x15, API_T_U32,        "vm_count")           \
	X(NET_COUNT,         0x16, API_T_U32,        "net_count")          \
	/* Control hypercalls refused to non-management VMs (host total, or per VM) */ \
	X(CONTROL_DENIED,    0x17, API_T_U32,        "control_denied")     \
	/* The host's wall clock: UTC ns since 1970 (absent: unknown) */   \
	X(HOST_TIME_NS,      0x18, API_T_U64,        "host_time_ns")       \
	/* The store of disks and saved states (docs/store.md), or why there is none */ \
	X(STORE,             0x19, API_T_STR,        "store")              \
	/* Virtual machine */                                              \
	X(VM,                0x20, API_T_NAME,       "vm")                 \
	X(VM_ID,             0x21, API_T_U32,        "vm_id")              \
	X(VM_ENTRY,          0x22, API_T_LIST,       "vm_entry")           \
	X(STATE,             0x23, API_T_U8,         "state")              \
	X(MEMORY,            0x24, API_T_SIZE,       "memory")             \
	X(IMAGE,             0x25, API_T_STR,        "image")              \
	X(BOOT,              0x26, API_T_STR,        "boot")               \
	X(LOAD,              0x27, API_T_U64,        "load")               \
	X(ENTRY,             0x28, API_T_U64,        "entry")              \
	X(CMDLINE,           0x29, API_T_STR,        "cmdline")            \
	X(INITRD,            0x2a, API_T_STR,        "initrd")             \
	X(DISK,              0x2b, API_T_STR,        "disk")               \
	X(AUTOSTART,         0x2c, API_T_BOOL,       "autostart")          \
	X(REASON,            0x2d, API_T_STR,        "reason")             \
	X(NIC_SPEC,          0x2e, API_T_STR,        "nic_spec")           \
	X(VM_UPTIME_MS,      0x2f, API_T_U64,        "vm_uptime_ms")       \
	/* Console */                                                      \
	X(OFFSET,            0x30, API_T_U64,        "offset")             \
	X(NEXT_OFFSET,       0x31, API_T_U64,        "next_offset")        \
	X(LOST,              0x32, API_T_U64,        "lost")               \
	X(DATA,              0x33, API_T_BYTES,      "data")               \
	X(MAX_BYTES,         0x34, API_T_U32,        "max_bytes")          \
	/* A VM's disk as a store object (docs/store.md) */                \
	X(STORE_DISK,        0x35, API_T_STR,        "store_disk")         \
	/* A Saved VM's state is in the store: it outlives a host reboot */ \
	X(SAVED_IN_STORE,    0x36, API_T_BOOL,       "saved_in_store")     \
	/* A disk of the store: its size, how much of it is made, one list entry */ \
	X(DISK_SIZE,         0x37, API_T_SIZE,       "disk_size")          \
	X(DISK_READY_PCT,    0x1a, API_T_U8,         "ready_percent")      \
	X(DISK_ENTRY,        0x3f, API_T_LIST,       "disk_entry")         \
	/* Saved state (GetState of a Saved VM) */                          \
	X(SAVED_SIZE,        0x38, API_T_SIZE,       "saved_size")         \
	X(SAVED_AT,          0x39, API_T_U64,        "saved_at")           \
	/* VM exits of its vCPU since the VM was created (GetState) */     \
	X(VM_EXITS,          0x3a, API_T_U64,        "exits")              \
	/* The VM has the guest agent's port (CreateVirtualMachine, default on) */ \
	X(GUEST_AGENT,       0x3b, API_T_BOOL,       "guest_agent")        \
	/* What the management VM does when the VM's agent stops answering */ \
	X(ON_HEARTBEAT_LOSS, 0x3c, API_T_STR,        "on_heartbeat_loss")  \
	X(HEARTBEAT_GRACE_S, 0x3d, API_T_U32,        "heartbeat_grace_s")  \
	/* An emulated watchdog device: none, i6300esb */                  \
	X(WATCHDOG,          0x3e, API_T_STR,        "watchdog")           \
	/* A virtio-balloon for free page reporting (default off) */       \
	X(FREE_PAGE_REPORTING, 0x1d, API_T_BOOL,     "free_page_reporting") \
	/* A save file's configuration: each adapter's further source MACs, in order */ \
	X(ALLOW_MACS,        0x1e, API_T_U8,         "allow_macs")         \
	/* ExportSavedState: the file carries the VM's disk (vmmctl export --with-disk) */ \
	X(WITH_DISK,         0x1f, API_T_BOOL,       "with_disk")          \
	/* Network adapter */                                              \
	X(NIC,               0x40, API_T_U8,         "nic")                \
	X(NIC_ENTRY,         0x41, API_T_LIST,       "nic_entry")          \
	X(MAC,               0x42, API_T_MAC,        "mac")                \
	X(NIC_COUNT,         0x43, API_T_U32,        "nic_count")          \
	/* Virtual network */                                              \
	X(NET,               0x50, API_T_NAME,       "net")                \
	X(NET_ENTRY,         0x51, API_T_LIST,       "net_entry")          \
	X(MTU,               0x52, API_T_U32,        "mtu")                \
	X(RX_FRAMES,         0x53, API_T_U64,        "rx_frames")          \
	X(RX_BYTES,          0x54, API_T_U64,        "rx_bytes")           \
	X(TX_FRAMES,         0x55, API_T_U64,        "tx_frames")          \
	X(TX_BYTES,          0x56, API_T_U64,        "tx_bytes")           \
	X(DROPS,             0x57, API_T_U64,        "drops")              \
	/* DHCP server */                                                  \
	X(DHCP_ENABLED,      0x60, API_T_BOOL,       "dhcp_enabled")       \
	X(DHCP_RANGE,        0x61, API_T_IPV4_RANGE, "dhcp_range")         \
	X(NETMASK,           0x62, API_T_IPV4,       "netmask")            \
	X(GATEWAY,           0x63, API_T_IPV4,       "gateway")            \
	X(DNS,               0x64, API_T_IPV4_LIST,  "dns")                \
	X(LEASE_TIME_S,      0x65, API_T_U32,        "lease_time_s")       \
	X(LEASE_ENTRY,       0x66, API_T_LIST,       "lease_entry")        \
	X(IP,                0x67, API_T_IPV4,       "ip")                 \
	X(EXPIRES_S,         0x68, API_T_U32,        "expires_s")          \
	X(HOSTNAME,          0x69, API_T_STR,        "hostname")           \
	/* Guest OS (IVMGuestOS) */                                        \
	X(HEARTBEATING,      0x70, API_T_BOOL,       "heartbeating")       \
	X(HEARTBEAT_PERCENT, 0x71, API_T_U8,         "heartbeat_percent")  \
	X(CAN_SHUTDOWN,      0x72, API_T_BOOL,       "can_shutdown")       \
	X(OS_NAME,           0x73, API_T_STR,        "os_name")            \
	X(ADDITIONS_VERSION, 0x74, API_T_STR,        "additions_version")  \
	X(TIME_SYNC,         0x75, API_T_BOOL,       "time_sync")          \
	X(COMMAND,           0x76, API_T_STR,        "command")            \
	X(PARAMETER,         0x77, API_T_STR,        "parameter")          \
	X(VALUE,             0x78, API_T_STR,        "value")              \
	/* ExecuteCommand: how the command ended and what it printed */   \
	X(EXIT_CODE,         0x79, API_T_U32,        "exit_code")          \
	X(SIGNAL,            0x7a, API_T_U32,        "signal")             \
	X(STDOUT,            0x7b, API_T_BYTES,      "stdout")             \
	X(STDERR,            0x7c, API_T_BYTES,      "stderr")             \
	X(TRUNCATED,         0x7d, API_T_BOOL,       "truncated")          \
	X(TIMEOUT_MS,        0x7e, API_T_U32,        "timeout_ms")         \
	/* GetHeartbeat: since the agent last answered (absent: never) */  \
	X(HEARTBEAT_AGE_MS,  0x7f, API_T_U64,        "heartbeat_age_ms")

#define API_ENUM_TAG(sym, tag, type, name) API_TAG_##sym = tag,
enum api_tag {
	API_TAGS(API_ENUM_TAG)
};
#undef API_ENUM_TAG

/*
 * Result of a request: OK travels as a RESPONSE frame, everything else as
 * an ERROR frame whose payload holds API_TAG_ERROR (and API_TAG_MESSAGE
 * with details). X(enum suffix, code, short human string)
 */
#define API_ERRORS(X)                                                      \
	X(OK,                0, "ok")                                      \
	X(INVALID_ARGUMENT,  1, "invalid argument")                        \
	X(NOT_FOUND,         2, "not found")                               \
	X(ALREADY_EXISTS,    3, "already exists")                          \
	/* The operation is not valid in the VM's state ("Pause a turned-off VM"); nothing changed */ \
	X(INVALID_STATE,     4, "invalid state transition")                \
	/* Part of the API, not implemented yet (Save, GuestOS): refused, never faked */ \
	X(NOT_SUPPORTED,     5, "not supported yet")                       \
	X(PERMISSION_DENIED, 6, "permission denied")                       \
	X(BUSY,              7, "busy, try again")                         \
	X(INTERNAL,          8, "internal error")                          \
	/* A CRC-valid frame the peer cannot use: bad type, malformed TLVs */ \
	X(BAD_FRAME,         9, "bad frame")                               \
	X(UNKNOWN_REQUEST,  10, "unknown request")                         \
	/* A limit was reached: VM or network count, memory, adapters */   \
	X(NO_RESOURCES,     11, "out of resources")                       \
	/* IVMGuestOS: no agent runs in the guest (docs/guest-agent.md) */ \
	X(NO_ADDITIONS,     12, "no guest additions")                     \
	/* The guest agent did not answer in time */                     \
	X(TIMED_OUT,        13, "timed out")

#define API_ENUM_ERROR(sym, code, name) API_E_##sym = code,
enum api_error {
	API_ERRORS(API_ENUM_ERROR)
};
#undef API_ENUM_ERROR

/*
 * Human shell escape: a text line with exactly this word, typed while the
 * line is in framed mode, brings the shell back (docs/protocol.md).
 */
#define API_SHELL_ESCAPE_LINE "shell"

/* Printable names: "Pause", "VMStateChange", "dhcp_range", "not found". */
const char *api_request_name(uint16_t request); /* NULL when unknown */
const char *api_event_name(uint16_t event);     /* NULL when unknown */
const char *api_tag_name(uint8_t tag);          /* NULL when unknown */
const char *api_error_name(uint16_t error);     /* "unknown error" when unknown */

/*
 * The IVMGuestOS requests the management VM answers only when the guest
 * agent has (docs/guest-agent.md): others go on meanwhile, and a client
 * waits longer for these.
 */
bool api_request_waits_for_agent(uint16_t request);

/* Value type of a known tag; false for an unknown tag (to be skipped). */
bool api_tag_type(uint8_t tag, enum api_type *type);

/*
 * Checks one value against its type (length, range, characters); nested
 * lists are checked recursively, to a bounded depth. Unknown tags are
 * valid (skipped by readers). True when a reader can use the payload.
 */
bool api_value_valid(enum api_type type, const uint8_t *value, size_t len);
bool api_payload_valid(const uint8_t *payload, size_t len);

#endif
