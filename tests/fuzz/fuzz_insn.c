/*
 * libFuzzer harness of the MMIO instruction decoder and emulator: the
 * bytes at a guest's RIP are whatever the guest wants them to be.
 *
 * Input: one control byte, then the instruction bytes (used in place, so
 * AddressSanitizer sees any read past them).
 * ctl bits 0-1: code size (0: 16-bit, 1: 32-bit, else 64-bit);
 * ctl bit 2:    the EPT violation was a write;
 * ctl bit 3:    RFLAGS.DF; bit 4: RFLAGS.CF;
 * ctl bit 5:    device reads fail; bit 6: device writes fail.
 * Checked: a decoded instruction is consistent (sizes, register index,
 * length within what was given, the same result from exactly its own
 * bytes, truncated from fewer); the emulator only touches the faulting
 * address at the decoded size, a failure changes no register, and a
 * success changes only the registers the instruction names. A violation
 * aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/insn_decode.h"
#include "x86/cpu.h"

#define CTL_MODE 0x03
#define CTL_WRITE 0x04
#define CTL_DF 0x08
#define CTL_CF 0x10
#define CTL_FAIL_READ 0x20
#define CTL_FAIL_WRITE 0x40
#define GPA 0xfec00010ULL
#define RCX 1
#define RSI 6
#define RDI 7

struct bus_state {
	const struct insn *insn;
	uint8_t ctl;
	uint64_t seed;
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static uint64_t value_for(struct bus_state *s)
{
	s->seed = s->seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return s->seed;
}

static int mmio_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *value)
{
	struct bus_state *s = ctx;
	check(gpa == GPA && size == s->insn->size);
	*value = value_for(s); /* garbage above size on purpose */
	return (s->ctl & CTL_FAIL_READ) ? -1 : 0;
}

static int mmio_write(void *ctx, uint64_t gpa, unsigned size, uint64_t value)
{
	struct bus_state *s = ctx;
	check(gpa == GPA && size == s->insn->size);
	check(size == 8 || value >> (8 * size) == 0);
	return (s->ctl & CTL_FAIL_WRITE) ? -1 : 0;
}

static int mem_read(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size, uint64_t *value)
{
	struct bus_state *s = ctx;
	check(s->insn->op == INSN_OP_MOVS && size == s->insn->size && seg <= INSN_SEG_GS);
	check(s->insn->addr_size == 8 || offset >> (8 * s->insn->addr_size) == 0);
	*value = value_for(s);
	return 0;
}

static int mem_write(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size, uint64_t value)
{
	struct bus_state *s = ctx;
	check(s->insn->op == INSN_OP_MOVS && size == s->insn->size && seg == INSN_SEG_ES);
	check(s->insn->addr_size == 8 || offset >> (8 * s->insn->addr_size) == 0);
	check(size == 8 || value >> (8 * size) == 0);
	return 0;
}

static bool valid_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

static void check_decoded(const struct insn *in, const uint8_t *bytes, size_t n,
			  enum insn_mode mode)
{
	struct insn again;

	check(in->len >= 1 && in->len <= INSN_MAX_LEN && in->len <= n);
	check(valid_size(in->size) && valid_size(in->reg_size) && in->reg_size >= in->size);
	check(in->addr_size == 2 || in->addr_size == 4 || in->addr_size == 8);
	check(in->reg < 16 && (!in->reg_high8 || (in->reg < 4 && in->reg_size == 1)));
	check(in->size == 8 || in->imm >> (8 * in->size) == 0);
	check(in->seg <= INSN_SEG_GS);
	check(insn_decode(bytes, in->len, mode, &again) == INSN_OK);
	check(memcmp(in, &again, sizeof(again)) == 0);
	check(insn_decode(bytes, in->len - 1u, mode, &again) == INSN_ERR_TRUNCATED);
}

/* The registers an instruction may write: its register operand and the string registers. */
static bool may_change(const struct insn *in, unsigned reg)
{
	if (in->op == INSN_OP_STOS || in->op == INSN_OP_MOVS)
		return reg == RDI || (reg == RSI && in->op == INSN_OP_MOVS) ||
		       (reg == RCX && in->rep);
	return reg == in->reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum insn_mode modes[4] = {
		INSN_MODE_16, INSN_MODE_32, INSN_MODE_64, INSN_MODE_64,
	};
	struct insn in;
	uint64_t gpr[16], before[16], rflags, rflags_before;

	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	enum insn_mode mode = modes[ctl & CTL_MODE];
	const uint8_t *bytes = data + 1;
	size_t n = size - 1;

	int rc = insn_decode(bytes, n, mode, &in);
	check(rc == INSN_OK || rc == INSN_ERR_TRUNCATED || rc == INSN_ERR_TOO_LONG ||
	      rc == INSN_ERR_UD || rc == INSN_ERR_UNSUPPORTED);
	if (rc != INSN_OK)
		return 0;
	check_decoded(&in, bytes, n, mode);

	struct bus_state s = { &in, ctl, size };
	const struct insn_bus bus = { &s, mmio_read, mmio_write, mem_read, mem_write };
	for (unsigned i = 0; i < 16; i++)
		gpr[i] = value_for(&s);
	gpr[RCX] &= 3; /* small counts, so that REP also ends */
	rflags = 0x2 | ((ctl & CTL_DF) ? RFLAGS_DF : 0) | ((ctl & CTL_CF) ? RFLAGS_CF : 0);
	memcpy(before, gpr, sizeof(before));
	rflags_before = rflags;

	rc = insn_emulate(&in, &bus, GPA, ctl & CTL_WRITE, gpr, &rflags);
	check(rc == INSN_OK || rc == INSN_AGAIN || rc == INSN_ERR_MISMATCH || rc == INSN_ERR_BUS);
	check(rc != INSN_AGAIN || in.rep);
	if (rc < 0) {
		check(memcmp(before, gpr, sizeof(before)) == 0 && rflags == rflags_before);
		return 0;
	}
	check((rflags & ~RFLAGS_STATUS) == (rflags_before & ~RFLAGS_STATUS));
	for (unsigned i = 0; i < 16; i++)
		check(gpr[i] == before[i] || may_change(&in, i));
	/* SDM Vol. 1, 3.4.1.1: a 32-bit register result is zero-extended. */
	if (in.op == INSN_OP_LOAD && in.reg_size == 4)
		check(gpr[in.reg] >> 32 == 0);
	return 0;
}
