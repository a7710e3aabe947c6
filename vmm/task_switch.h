/*
 * The hardware task switch of protected mode (Intel SDM Vol. 3A, 8.3 "Task
 * Switching"), which VT-x hands to the hypervisor as a VM exit on every
 * attempt (SDM Vol. 3C 26.4.2, 28.2.1 table 28-2): a CALL or JMP to a TSS
 * or task gate, an IRET with EFLAGS.NT set, and an interrupt or exception
 * through a task gate (32-bit Linux takes #DF, and Windows NMI and #DF,
 * that way). Both TSS formats, the 32-bit one and the 16-bit one of the
 * 80286 (SDM 8.6), in either direction; a 32-bit task may start in
 * virtual-8086 mode (its TSS's EFLAGS.VM) or leave it through a task gate.
 *
 * Plain C over a register set and the guest's linear memory, unit-tested
 * on the host; the backend reads the exit, fills struct task_cpu, and
 * writes the result back (vmm/vmx/exit.c).
 */
#ifndef VMM_TASK_SWITCH_H
#define VMM_TASK_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virt.h"

/* What the task switch reads and writes of the CPU. */
struct task_cpu {
	uint32_t gpr[8]; /* EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI */
	uint32_t eip, eflags;
	uint64_t cr0, cr3;
	struct segment_state seg[SEG_COUNT]; /* attributes 0: unusable */
	uint64_t gdtr_base;
	uint32_t gdtr_limit;
	/*
	 * Out: the new TSS has its T bit set, so a debug exception with DR6.BT
	 * comes before the new task's first instruction (SDM 17.2.3, 8.2.1).
	 */
	bool debug_trap;
};

/* Why the switch happens: the encoding of the exit qualification's bits 31:30. */
enum task_switch_source {
	TASK_SWITCH_CALL = 0,
	TASK_SWITCH_IRET = 1,
	TASK_SWITCH_JMP = 2,
	TASK_SWITCH_GATE = 3, /* an interrupt or exception through a task gate in the IDT */
};

/*
 * The guest's linear memory (with its paging as task_cpu says, by the
 * caller): 0, or -1 with *pf_error set for a page fault at that address,
 * or -2 when the bytes are not guest RAM. Reads and writes of TSSs and
 * descriptor tables are supervisor accesses whatever the CPL (SDM Vol. 3A
 * 4.6); a write with user set is one the new task makes at CPL 3 (the
 * error code pushed on its stack).
 */
struct task_mem {
	void *ctx;
	int (*read)(void *ctx, const struct task_cpu *cpu, uint32_t linear, void *buf,
		    unsigned len, uint32_t *pf_error);
	int (*write)(void *ctx, const struct task_cpu *cpu, uint32_t linear, const void *buf,
		     unsigned len, bool user, uint32_t *pf_error);
};

enum task_switch_result {
	TASK_SWITCHED,      /* cpu holds the new task */
	TASK_SWITCH_FAULT,  /* deliver fault (in the task cpu now holds) */
	TASK_SWITCH_FAILED, /* not emulated or not guest RAM: why says which; end the VM */
};

struct task_switch_fault {
	unsigned vector;
	bool has_error_code;
	uint32_t error_code;
	uint32_t address; /* #PF: the linear address, for CR2 */
	const char *why;  /* TASK_SWITCH_FAILED */
};

/*
 * Switches from the task in TR to the one selector names. next_eip is
 * where the old task resumes (after a CALL, JMP or IRET, at the
 * instruction's end; for an event, where the event happened). For an
 * exception with an error code through a task gate, error_code (when
 * push_error_code) goes on the new task's stack, a word for a 16-bit
 * TSS. Faults found before the new task is committed leave cpu as it was
 * (SDM 8.3 step 4 and before); later ones are the new task's.
 */
enum task_switch_result task_switch(struct task_cpu *cpu, uint16_t selector,
				    enum task_switch_source source, uint32_t next_eip,
				    bool push_error_code, uint32_t error_code,
				    const struct task_mem *mem, struct task_switch_fault *fault);

/* The 32-bit TSS (SDM Vol. 3A, figure 8-2): byte offsets of what a switch touches. */
#define TSS32_LINK 0
#define TSS32_CR3 28
#define TSS32_EIP 32
#define TSS32_EFLAGS 36
#define TSS32_GPR 40 /* EAX..EDI, 4 bytes each */
#define TSS32_SEG 72 /* ES, CS, SS, DS, FS, GS, 4 bytes each */
#define TSS32_LDT 96
#define TSS32_T 100 /* bit 0: the debug trap flag */
#define TSS32_MIN_LIMIT 0x67

/*
 * The 16-bit TSS (SDM Vol. 3A 8.6, figure 8-10): 44 bytes of words, with
 * no CR3, FS, GS or T bit. SP0-SS2 (bytes 2-13) are the inner stacks.
 */
#define TSS16_LINK 0
#define TSS16_IP 14
#define TSS16_FLAGS 16
#define TSS16_GPR 18 /* AX..DI, 2 bytes each */
#define TSS16_SEG 34 /* ES, CS, SS, DS, 2 bytes each */
#define TSS16_LDT 42
#define TSS16_MIN_LIMIT 0x2b

#endif
