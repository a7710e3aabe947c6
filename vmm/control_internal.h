/*
 * What the files of the management API share (vmm/control.h is the
 * outside's view): the call being executed, the helpers that answer it,
 * and the handlers that control.c's table of request types names. Only
 * control*.c include it.
 */
#ifndef VMM_CONTROL_INTERNAL_H
#define VMM_CONTROL_INTERNAL_H

#include "abi/api.h"
#include "mgmt/proto.h"
#include "vmm/control.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct boot_info;
struct cfg_nic;
struct vm;

/*
 * A handler's result besides 0 (answered) and non-zero (failed, the error
 * frame is written; fail() returns the positive enum api_error): it waits
 * (call_wait) and the dispatcher runs it again later.
 */
#define CALL_PENDING (-2)

/* One request: its payload, the answer being written, the error if any. */
struct call {
	const struct control_caller *caller;
	uint16_t request;
	const uint8_t *req;
	size_t len;
	struct tlv_writer w;
	uint16_t error; /* enum api_error */
	bool waiting;           /* call_wait said yes once: this is a later try */
	uint64_t wait_until_ns; /* when waiting ends, by clock_ns() */
	/*
	 * CreateVirtualMachine for an import: an image or initrd this library
	 * lacks is no refusal, as the saved state restores without them (a
	 * fresh start of the VM is refused instead, guest_boot_prepare).
	 */
	bool boot_files_may_be_absent;
};

/* --- control.c: answering -------------------------------------------------- */

int fail(struct call *c, enum api_error e, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
const char *request_name(uint16_t request);
/* A required string-like tag; INVALID_ARGUMENT names it when it is missing. */
int need_str(struct call *c, uint16_t request, uint8_t tag, char *out, size_t cap);
/* A paged list of `total` entries (control.c says how). */
int put_paged(struct call *c, unsigned total, void (*put)(struct call *, unsigned));
/*
 * Lets the handler answer later instead of refusing now, for at most
 * wait_ms from its first try: true when the dispatcher will run it again
 * (the handler then returns CALL_PENDING without answering), false when it
 * must answer now (the wait is over, or every pending slot is taken).
 * Until it answers, the handler must change nothing.
 */
bool call_wait(struct call *c, uint32_t wait_ms);

/* --- control_host.c -------------------------------------------------------- */

void control_host_init(const struct boot_info *bi);
int hello(struct call *c);
int goodbye(struct call *c);
int host_info(struct call *c);
int subscribe(struct call *c);

/* --- control_vm.c ---------------------------------------------------------- */

void control_vm_init(const struct boot_info *bi);
/* Uptime starts at TurningOn; the last reason is kept for GetState. */
void control_vm_follow_events(void);
struct vm *vm_named(const char *name);
/* The `vm` tag of the request, which must name an existing VM. */
int need_vm(struct call *c, uint16_t request, struct vm **vm);
/* vm_id, vm and state: how an answer names a VM. */
void put_vm_id(struct call *c, const struct vm *vm);
int create_vm(struct call *c);
int delete_vm(struct call *c);
int list_vms(struct call *c);
int find_vm(struct call *c);
int get_state(struct call *c);
int startup_vm(struct call *c);
int turn_off_vm(struct call *c);
int reset_vm(struct call *c);
int save_vm(struct call *c);
int discard_saved_state(struct call *c);
int pause_vm(struct call *c);
int resume_vm(struct call *c);
/* IVMGuestOS */
int guest_os(struct call *c);
int sync_time_setting(struct call *c);
int install_additions(struct call *c);

/* --- control_network.c ----------------------------------------------------- */

void control_network_init(const struct boot_info *bi);
/* One nic_spec tag of CreateVirtualMachine into nic. */
int parse_nic_spec(struct call *c, const struct tlv *t, struct cfg_nic *nic);
int add_nics(struct call *c, const struct vm *vm, const struct cfg_nic *nics, unsigned count);
int create_net(struct call *c);
int delete_net(struct call *c);
int list_nets(struct call *c);
int add_nic(struct call *c);
int remove_nic(struct call *c);
int list_nics(struct call *c);
int get_mac(struct call *c);
int attach_nic(struct call *c);
int detach_nic(struct call *c);
int get_adapters(struct call *c);
int get_statistics(struct call *c);
int get_dhcp(struct call *c);
int set_dhcp(struct call *c);
int get_leases(struct call *c);

/* --- control_console.c ----------------------------------------------------- */

/* Queued console input to the Running guests' UARTs, as much as they take. */
void console_input_feed(void);
/* A VM that turned off never reads what was typed for its last run. */
void console_input_discard(unsigned vm_id);
int console_read(struct call *c);
int console_write(struct call *c);

/* --- control_disk.c -------------------------------------------------------- */

int create_disk(struct call *c);
int list_disks(struct call *c);
int delete_disk(struct call *c);
/* A store_host error (enum store_host_error) as the API's: the request's name and the store's words. */
int store_refused(struct call *c, int e, const char *why);

/* --- control_saved.c ------------------------------------------------------- */

void control_saved_init(const struct boot_info *bi);
/*
 * Steps of a transfer's disk; an import no chunk has come for in
 * TRANSFER_ABANDONED_NS is dropped, its memory freed, as is an export's
 * file with its disk.
 */
void control_saved_poll(void);
int export_saved_state(struct call *c);
int import_vm(struct call *c);

#endif
