/*
 * Decoder and emulator of the x86 instructions a guest uses on emulated
 * MMIO pages (local APIC, I/O APIC, virtio-pci BARs): what Linux's
 * readX/writeX helpers, memcpy_toio/memset_io and the xAPIC driver emit.
 * EPT maps no device page, so such an access ends in an EPT violation that
 * reports the guest-physical address but not what the instruction wanted
 * (Intel SDM Vol. 3C, 28.3.3.2); the exit handler fetches the bytes at RIP
 * (vmm/guest_walk.h), decodes them here and carries the access out through
 * the device callbacks.
 *
 * Handled: MOV r/m<->reg (88-8B), MOV r/m,imm (C6/C7 /0), MOV moffs
 * (A0-A3), MOVZX/MOVSX (0F B6/B7/BE/BF), MOVSXD (63, 64-bit mode), the
 * arithmetic group ADD/OR/ADC/SBB/AND/SUB/XOR/CMP with reg or imm (00-3B,
 * 80/81/83), TEST (84/85, F6/F7 /0), XCHG (86/87), STOS (AA/AB) and MOVS
 * (A4/A5), with or without REP. Everything else, and every register-only
 * form (which cannot touch memory, so cannot have faulted), is refused
 * with an error code. The instruction bytes come from a hostile guest:
 * no input makes the decoder read past the bytes it was given.
 * Plain C, no hardware access.
 */
#ifndef VMM_INSN_DECODE_H
#define VMM_INSN_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SDM Vol. 2A, 2.3.11: longer instructions raise #GP. */
#define INSN_MAX_LEN 15

enum insn_status {
	INSN_OK = 0,
	/* insn_emulate: one iteration of a REP string instruction is done and
	 * more remain; RIP stays on the instruction. */
	INSN_AGAIN = 1,
	/* The instruction goes on past the bytes given (the fetch stopped at a
	 * page that faulted: inject that fault). */
	INSN_ERR_TRUNCATED = -1,
	/* Longer than 15 bytes: inject #GP(0). */
	INSN_ERR_TOO_LONG = -2,
	/* An encoding that raises #UD (LOCK on a non-RMW instruction). */
	INSN_ERR_UD = -3,
	/* A valid instruction this emulator does not handle. */
	INSN_ERR_UNSUPPORTED = -4,
	/* The instruction does not make the access that faulted (another vCPU
	 * rewrote its bytes after the exit): resume the guest to retry it. */
	INSN_ERR_MISMATCH = -5,
	/* A device or guest-memory callback failed. */
	INSN_ERR_BUS = -6,
};

/* Code-segment size: CS.L with EFER.LMA, else CS.D (SDM Vol. 3A, 5.2.1). */
enum insn_mode {
	INSN_MODE_16 = 2,
	INSN_MODE_32 = 4,
	INSN_MODE_64 = 8,
};

/* Segment registers in their encoding order (SDM Vol. 2A, 3.1.1.3). */
enum insn_seg {
	INSN_SEG_ES,
	INSN_SEG_CS,
	INSN_SEG_SS,
	INSN_SEG_DS,
	INSN_SEG_FS,
	INSN_SEG_GS,
};

/*
 * The first eight values are the arithmetic group in its encoding order
 * (opcode bits 5:3, or ModRM.reg of 80/81/83).
 */
enum insn_op {
	INSN_OP_ADD,
	INSN_OP_OR,
	INSN_OP_ADC,
	INSN_OP_SBB,
	INSN_OP_AND,
	INSN_OP_SUB,
	INSN_OP_XOR,
	INSN_OP_CMP,
	INSN_OP_TEST,
	INSN_OP_LOAD,  /* MOV/MOVZX/MOVSX/MOVSXD into a register */
	INSN_OP_STORE, /* MOV from a register or an immediate */
	INSN_OP_XCHG,
	INSN_OP_STOS,
	INSN_OP_MOVS,
};

enum insn_dir {
	INSN_DIR_READ,
	INSN_DIR_WRITE,
	INSN_DIR_RMW,
	INSN_DIR_COPY, /* MOVS: a read of one operand, a write of the other */
};

enum insn_ext {
	INSN_EXT_NONE,
	INSN_EXT_ZERO,
	INSN_EXT_SIGN,
};

struct insn {
	uint8_t len;       /* 1..15 */
	enum insn_op op;
	enum insn_dir dir;
	uint8_t size;      /* memory operand: 1, 2, 4 or 8 bytes */
	uint8_t reg_size;  /* register operand; wider than size for MOVZX/MOVSX/MOVSXD */
	uint8_t addr_size; /* 2, 4 or 8: counts and indexes of string instructions */
	/*
	 * The register operand (rAX for moffs, STOS, MOVS), 0-15 in encoding
	 * order. With reg_high8 it is AH/CH/DH/BH: bits 15:8 of gpr[reg],
	 * reg 0-3 (a byte register 4-7 without any REX prefix, SDM Vol. 2A,
	 * 3.7.2.1).
	 */
	uint8_t reg;
	bool reg_high8;
	bool has_imm;      /* the source is imm, not reg */
	bool reg_is_dst;   /* the register is the first operand (8A/8B, 02/03, 3A/3B...) */
	uint64_t imm;      /* sign-extended to size and truncated to it */
	enum insn_ext ext;
	bool rep;          /* F2 or F3 on a string instruction */
	bool lock;
	enum insn_seg seg; /* of the memory operand; the source for MOVS (destination is ES) */
};

enum insn_mode insn_mode_of(bool efer_lma, bool cs_l, bool cs_d);

/*
 * Decodes the instruction at the start of bytes[0..avail) (at most 15 are
 * looked at). Returns INSN_OK with *out filled, or a negative status.
 */
int insn_decode(const uint8_t *bytes, size_t avail, enum insn_mode mode, struct insn *out);

/*
 * What the emulator touches. Callbacks return 0 on success; anything else
 * fails the instruction with INSN_ERR_BUS. Values are little-endian in the
 * low `size` bytes; what a read returns above them is ignored.
 */
struct insn_bus {
	void *ctx;
	int (*mmio_read)(void *ctx, uint64_t gpa, unsigned size, uint64_t *value);
	int (*mmio_write)(void *ctx, uint64_t gpa, unsigned size, uint64_t value);
	/*
	 * The other operand of MOVS, which is not on the faulting page: an
	 * offset in segment seg (already truncated to the address size). The
	 * caller adds the segment base, translates it (guest_walk) and reads
	 * or writes guest RAM, or MMIO again when both sides are devices.
	 */
	int (*mem_read)(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size,
			uint64_t *value);
	int (*mem_write)(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size,
			 uint64_t value);
};

/*
 * Carries out a decoded instruction whose memory operand faulted at gpa;
 * fault_write is bit 1 of the EPT-violation exit qualification. gpr[] is in
 * encoding order (0 rax ... 15 r15); *rflags gets the arithmetic flags.
 *
 * REP STOS/MOVS do one iteration per call: the faulting address is only
 * known for the current element, and the next one may already be in RAM,
 * where the guest runs natively. rCX/rSI/rDI move as the hardware moves
 * them (by DF) and INSN_AGAIN asks the caller to resume the guest with RIP
 * unchanged, so that it re-executes the rest (and takes interrupts between
 * iterations as on hardware, SDM Vol. 2B "REP"). INSN_OK: the instruction
 * is complete, RIP advances by insn->len. On an error nothing in gpr or
 * rflags has changed.
 *
 * LOCK is carried out as a plain read then write: all vCPUs run on one
 * CPU (vmm/sched.c) and an exit is handled to its end before any guest
 * code runs again, so no other access can come between the two.
 */
int insn_emulate(const struct insn *insn, const struct insn_bus *bus, uint64_t gpa,
		 bool fault_write, uint64_t gpr[16], uint64_t *rflags);

#endif
