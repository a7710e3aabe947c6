#include "vmm/insn_decode.h"

#include "x86/cpu.h"

#include <string.h>

#define REG_RAX 0
#define REG_RCX 1
#define REG_RSP 4
#define REG_RBP 5
#define REG_RSI 6
#define REG_RDI 7

/* REX bits (SDM Vol. 2A, 2.2.1). */
#define REX_W 0x08
#define REX_R 0x04
#define REX_B 0x01

#define MODRM_MOD(m) ((m) >> 6)
#define MODRM_REG(m) (((m) >> 3) & 7)
#define MODRM_RM(m) ((m) & 7)
#define MOD_REGISTER 3

struct cursor {
	const uint8_t *bytes;
	size_t avail;
	size_t pos;
};

/*
 * The byte at the cursor. Running out of the guest's bytes is distinct from
 * going past 15: only the latter is the instruction's fault (#GP).
 */
static int next_byte(struct cursor *c, uint8_t *b)
{
	if (c->pos >= INSN_MAX_LEN)
		return INSN_ERR_TOO_LONG;
	if (c->pos >= c->avail)
		return INSN_ERR_TRUNCATED;
	*b = c->bytes[c->pos++];
	return INSN_OK;
}

/* A little-endian field of n bytes, sign-extended to 64 bits. */
static int next_signed(struct cursor *c, unsigned n, uint64_t *value)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t b;
		int rc = next_byte(c, &b);
		if (rc)
			return rc;
		v |= (uint64_t)b << (8 * i);
	}
	if (n < 8 && (v >> (8 * n - 1)) & 1)
		v |= ~0ULL << (8 * n);
	*value = v;
	return INSN_OK;
}

static int skip(struct cursor *c, unsigned n)
{
	uint64_t ignored;

	return next_signed(c, n, &ignored);
}

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

enum insn_mode insn_mode_of(bool efer_lma, bool cs_l, bool cs_d)
{
	if (efer_lma && cs_l)
		return INSN_MODE_64;
	return cs_d ? INSN_MODE_32 : INSN_MODE_16;
}

struct prefixes {
	uint8_t rex;       /* 0 when absent (or cancelled by a later legacy prefix) */
	bool opsize;       /* 66 */
	bool addrsize;     /* 67 */
	bool rep;          /* F2 or F3 */
	bool lock;
	int seg;           /* override, or -1 */
};

/*
 * Legacy prefixes in any order and number, then at most one REX that must
 * come last: a REX followed by a legacy prefix is ignored (SDM Vol. 2A,
 * 2.2.1). In 64-bit mode the ES/CS/SS/DS overrides are null prefixes
 * (SDM Vol. 1, 3.3.7.1). Leaves the cursor on the opcode.
 */
static int read_prefixes(struct cursor *c, enum insn_mode mode, struct prefixes *p)
{
	memset(p, 0, sizeof(*p));
	p->seg = -1;
	for (;;) {
		uint8_t b;
		int rc = next_byte(c, &b);
		if (rc)
			return rc;
		switch (b) {
		case 0x66:
			p->opsize = true;
			break;
		case 0x67:
			p->addrsize = true;
			break;
		case 0xf0:
			p->lock = true;
			break;
		case 0xf2:
		case 0xf3:
			p->rep = true;
			break;
		case 0x26:
		case 0x2e:
		case 0x36:
		case 0x3e:
			if (mode != INSN_MODE_64)
				p->seg = (b >> 3) & 3; /* ES 26, CS 2E, SS 36, DS 3E */
			break;
		case 0x64:
			p->seg = INSN_SEG_FS;
			break;
		case 0x65:
			p->seg = INSN_SEG_GS;
			break;
		default:
			if (mode == INSN_MODE_64 && (b & 0xf0) == 0x40) {
				p->rex = b;
				continue;
			}
			c->pos--;
			return INSN_OK;
		}
		p->rex = 0;
	}
}

/*
 * Consumes ModRM, SIB and displacement (SDM Vol. 2A, 2.1.5 and 2.2.1.6)
 * and records the register field and the default segment of the memory
 * operand: SS when the base is rBP or rSP, DS otherwise (SDM Vol. 1,
 * 3.7.5). The effective address itself is not needed: the EPT violation
 * reports where the access went.
 */
static int read_modrm(struct cursor *c, unsigned addr_size, uint8_t rex, uint8_t *modrm,
		      enum insn_seg *seg)
{
	int rc = next_byte(c, modrm);
	if (rc)
		return rc;
	unsigned mod = MODRM_MOD(*modrm), rm = MODRM_RM(*modrm);

	*seg = INSN_SEG_DS;
	if (mod == MOD_REGISTER)
		return INSN_OK;
	if (addr_size == 2) {
		/* [bp+si], [bp+di], [bp+disp] */
		if (rm == 2 || rm == 3 || (rm == 6 && mod != 0))
			*seg = INSN_SEG_SS;
		if (mod == 0)
			return rm == 6 ? skip(c, 2) : INSN_OK;
		return skip(c, mod == 1 ? 1 : 2);
	}

	unsigned base = rm;
	if (rm == 4) {
		uint8_t sib;
		rc = next_byte(c, &sib);
		if (rc)
			return rc;
		base = sib & 7;
	}
	/* mod 0 with base 5 is disp32 alone (RIP-relative without SIB in 64-bit mode). */
	if (mod == 0 && base == 5)
		return skip(c, 4);
	if (!(rex & REX_B) && (base == REG_RSP || base == REG_RBP))
		*seg = INSN_SEG_SS;
	return mod == 0 ? INSN_OK : skip(c, mod == 1 ? 1 : 4);
}

/*
 * A byte register 4-7 is AH/CH/DH/BH unless any REX prefix is present
 * (then SPL/BPL/SIL/DIL).
 */
static void set_reg_operand(struct insn *in, unsigned reg, uint8_t rex)
{
	if (in->reg_size == 1 && !rex && reg >= 4 && reg < 8) {
		in->reg = (uint8_t)(reg - 4);
		in->reg_high8 = true;
	} else {
		in->reg = (uint8_t)reg;
	}
}

static int read_imm(struct cursor *c, struct insn *in, unsigned bytes)
{
	int rc = next_signed(c, bytes, &in->imm);

	in->imm &= size_mask(in->size);
	in->has_imm = true;
	return rc;
}

/* The full-size immediate: imm16 or imm32, which REX.W sign-extends. */
static unsigned imm_bytes(unsigned size)
{
	return size == 2 ? 2 : 4;
}

static bool is_arith(enum insn_op op)
{
	return op <= INSN_OP_CMP;
}

static enum insn_dir direction(const struct insn *in)
{
	switch (in->op) {
	case INSN_OP_LOAD:
	case INSN_OP_CMP:
	case INSN_OP_TEST:
		return INSN_DIR_READ;
	case INSN_OP_STORE:
	case INSN_OP_STOS:
		return INSN_DIR_WRITE;
	case INSN_OP_MOVS:
		return INSN_DIR_COPY;
	case INSN_OP_XCHG:
		return INSN_DIR_RMW;
	default:
		return in->reg_is_dst ? INSN_DIR_READ : INSN_DIR_RMW;
	}
}

/* SDM Vol. 2A, 2.1.1 and "LOCK": only read-modify-write of memory. */
static bool lock_allowed(const struct insn *in)
{
	return in->op == INSN_OP_XCHG ||
	       (is_arith(in->op) && in->op != INSN_OP_CMP && !in->reg_is_dst);
}

/*
 * An opcode has_modrm_table_entry() accepts: sets op, sizes, the register
 * operand and the immediate. Bit 0 of these opcodes clear means a byte
 * operand (the w bit, SDM Vol. 2D, appendix B).
 */
static int decode_modrm_insn(struct cursor *c, const struct prefixes *p, uint8_t opcode,
			     bool two_byte, unsigned opsize, struct insn *in)
{
	bool byte_op = !(opcode & 1);
	uint8_t modrm;
	int rc;

	in->size = in->reg_size = (uint8_t)(byte_op ? 1 : opsize);
	if (two_byte) {
		/* 0F B6/B7 MOVZX, 0F BE/BF MOVSX: byte or word source. */
		in->op = INSN_OP_LOAD;
		in->ext = (opcode & 8) ? INSN_EXT_SIGN : INSN_EXT_ZERO;
		in->size = byte_op ? 1 : 2;
		in->reg_size = (uint8_t)opsize;
		in->reg_is_dst = true;
	} else if (opcode < 0x40) {
		in->op = (enum insn_op)(opcode >> 3);
		in->reg_is_dst = opcode & 2;
	} else if (opcode == 0x63) {
		/* MOVSXD: a doubleword source, sign-extended with REX.W. */
		in->op = INSN_OP_LOAD;
		in->ext = INSN_EXT_SIGN;
		in->reg_size = (uint8_t)opsize;
		in->size = (uint8_t)(opsize > 4 ? 4 : opsize);
		in->reg_is_dst = true;
	} else if (opcode == 0x84 || opcode == 0x85) {
		in->op = INSN_OP_TEST;
	} else if (opcode == 0x86 || opcode == 0x87) {
		in->op = INSN_OP_XCHG;
	} else if (opcode >= 0x88 && opcode <= 0x8b) {
		in->reg_is_dst = opcode & 2;
		in->op = in->reg_is_dst ? INSN_OP_LOAD : INSN_OP_STORE;
	}
	/* 80/81/83, C6/C7 and F6/F7 take their operation from ModRM.reg. */

	rc = read_modrm(c, in->addr_size, p->rex, &modrm, &in->seg);
	if (rc)
		return rc;
	unsigned reg = MODRM_REG(modrm) | ((p->rex & REX_R) ? 8 : 0);

	switch (two_byte ? 0 : opcode) {
	case 0x80:
	case 0x81:
	case 0x83:
		in->op = (enum insn_op)MODRM_REG(modrm);
		rc = read_imm(c, in, opcode == 0x81 ? imm_bytes(in->size) : 1);
		break;
	case 0xc6:
	case 0xc7:
		if (MODRM_REG(modrm) != 0)
			return INSN_ERR_UNSUPPORTED; /* XABORT/XBEGIN and undefined */
		in->op = INSN_OP_STORE;
		rc = read_imm(c, in, byte_op ? 1 : imm_bytes(in->size));
		break;
	case 0xf6:
	case 0xf7:
		if (MODRM_REG(modrm) != 0)
			return INSN_ERR_UNSUPPORTED; /* NOT, NEG, MUL, DIV... */
		in->op = INSN_OP_TEST;
		rc = read_imm(c, in, byte_op ? 1 : imm_bytes(in->size));
		break;
	default:
		set_reg_operand(in, reg, p->rex);
		break;
	}
	if (rc)
		return rc;
	/* A register-only form never touches memory, so it cannot be the one that faulted. */
	return MODRM_MOD(modrm) == MOD_REGISTER ? INSN_ERR_UNSUPPORTED : INSN_OK;
}

static bool has_modrm_table_entry(uint8_t opcode, bool two_byte, enum insn_mode mode)
{
	if (two_byte)
		return opcode == 0xb6 || opcode == 0xb7 || opcode == 0xbe || opcode == 0xbf;
	if (opcode < 0x40)
		return (opcode & 7) < 4; /* 04/05... are AL/rAX with an immediate, 0F/26/27... others */
	/* 63 is ARPL outside 64-bit mode. */
	return (opcode == 0x63 && mode == INSN_MODE_64) || opcode == 0x80 || opcode == 0x81 ||
	       opcode == 0x83 || (opcode >= 0x84 && opcode <= 0x8b) || opcode == 0xc6 ||
	       opcode == 0xc7 || opcode == 0xf6 || opcode == 0xf7;
}

int insn_decode(const uint8_t *bytes, size_t avail, enum insn_mode mode, struct insn *out)
{
	struct cursor c = { bytes, avail, 0 };
	struct prefixes p;
	struct insn in;
	uint8_t opcode;
	bool two_byte = false;
	int rc;

	memset(&in, 0, sizeof(in));
	rc = read_prefixes(&c, mode, &p);
	if (rc)
		return rc;
	rc = next_byte(&c, &opcode);
	if (rc)
		return rc;
	if (opcode == 0x0f) {
		two_byte = true;
		rc = next_byte(&c, &opcode);
		if (rc)
			return rc;
	}

	/* SDM Vol. 1, 3.6 and Vol. 2A, 2.2.1.2: operand and address sizes. */
	unsigned opsize = mode == INSN_MODE_16 ? 2 : 4;
	if (p.rex & REX_W)
		opsize = 8;
	else if (p.opsize)
		opsize ^= 6; /* 2 <-> 4 */
	in.addr_size = (uint8_t)mode;
	if (p.addrsize)
		in.addr_size = mode == INSN_MODE_64 ? 4 : (uint8_t)(mode ^ 6);

	if (has_modrm_table_entry(opcode, two_byte, mode)) {
		rc = decode_modrm_insn(&c, &p, opcode, two_byte, opsize, &in);
		if (rc)
			return rc;
	} else if (!two_byte && opcode >= 0xa0 && opcode <= 0xa3) {
		/* MOV AL/rAX <-> moffs: an address-size offset, no ModRM. */
		in.size = in.reg_size = (uint8_t)((opcode & 1) ? opsize : 1);
		in.op = (opcode & 2) ? INSN_OP_STORE : INSN_OP_LOAD;
		in.reg_is_dst = !(opcode & 2);
		in.seg = INSN_SEG_DS;
		rc = skip(&c, in.addr_size);
		if (rc)
			return rc;
	} else if (!two_byte && (opcode == 0xa4 || opcode == 0xa5 || opcode == 0xaa ||
				 opcode == 0xab)) {
		in.size = in.reg_size = (uint8_t)((opcode & 1) ? opsize : 1);
		in.op = opcode >= 0xaa ? INSN_OP_STOS : INSN_OP_MOVS;
		/* F2 is REPNE only for CMPS/SCAS; on these it repeats like F3. */
		in.rep = p.rep;
		/* STOS stores from rAX to ES:rDI, which no override changes. */
		in.seg = in.op == INSN_OP_STOS ? INSN_SEG_ES : INSN_SEG_DS;
	} else {
		return INSN_ERR_UNSUPPORTED;
	}

	if (p.seg >= 0 && in.op != INSN_OP_STOS)
		in.seg = (enum insn_seg)p.seg;
	in.lock = p.lock;
	if (in.lock && !lock_allowed(&in))
		return INSN_ERR_UD;
	in.dir = direction(&in);
	in.len = (uint8_t)c.pos;
	*out = in;
	return INSN_OK;
}

/* ---------------------------------------------------------------- emulation */

static uint64_t get_reg(const uint64_t gpr[16], unsigned reg, bool high8, unsigned size)
{
	if (high8)
		return (gpr[reg] >> 8) & 0xff;
	return gpr[reg] & size_mask(size);
}

/*
 * SDM Vol. 1, 3.4.1.1: a 32-bit result is zero-extended to 64 bits; 8- and
 * 16-bit results leave the rest of the register alone.
 */
static void set_reg(uint64_t gpr[16], unsigned reg, bool high8, unsigned size, uint64_t value)
{
	if (high8)
		gpr[reg] = (gpr[reg] & ~0xff00ULL) | (value & 0xff) << 8;
	else if (size >= 4)
		gpr[reg] = value & size_mask(size);
	else
		gpr[reg] = (gpr[reg] & ~size_mask(size)) | (value & size_mask(size));
}

static uint64_t sign_extend(uint64_t value, unsigned size)
{
	uint64_t sign = 1ULL << (8 * size - 1);

	value &= size_mask(size);
	return (value ^ sign) - sign;
}

/* PF reflects the low byte only: set when it has an even number of ones. */
static bool even_parity(uint64_t value)
{
	uint8_t v = (uint8_t)value;

	v ^= v >> 4;
	v ^= v >> 2;
	v ^= v >> 1;
	return !(v & 1);
}

/*
 * dst op src at the given size, with the flags each instruction's page in
 * SDM Vol. 2 defines. AND/OR/XOR/TEST leave AF undefined; it is cleared, as
 * processors do in practice (and as Bochs models it).
 */
static uint64_t alu(enum insn_op op, unsigned size, uint64_t dst, uint64_t src, uint64_t *rflags)
{
	uint64_t mask = size_mask(size), sign = 1ULL << (8 * size - 1);
	uint64_t a = dst & mask, b = src & mask, r, flags = 0;
	uint64_t carry_in = *rflags & RFLAGS_CF;

	switch (op) {
	case INSN_OP_ADD:
	case INSN_OP_ADC: {
		uint64_t c = op == INSN_OP_ADC ? carry_in : 0;
		r = (a + b + c) & mask;
		if (r < a || (c && r == a))
			flags |= RFLAGS_CF;
		if ((a ^ r) & (b ^ r) & sign)
			flags |= RFLAGS_OF;
		flags |= (a ^ b ^ r) & RFLAGS_AF;
		break;
	}
	case INSN_OP_SUB:
	case INSN_OP_SBB:
	case INSN_OP_CMP: {
		uint64_t c = op == INSN_OP_SBB ? carry_in : 0;
		r = (a - b - c) & mask;
		if (a < b || (c && a == b))
			flags |= RFLAGS_CF;
		if ((a ^ b) & (a ^ r) & sign)
			flags |= RFLAGS_OF;
		flags |= (a ^ b ^ r) & RFLAGS_AF;
		break;
	}
	case INSN_OP_OR:
		r = a | b;
		break;
	case INSN_OP_XOR:
		r = a ^ b;
		break;
	default: /* AND, TEST */
		r = a & b;
		break;
	}
	if (!r)
		flags |= RFLAGS_ZF;
	if (r & sign)
		flags |= RFLAGS_SF;
	if (even_parity(r))
		flags |= RFLAGS_PF;
	*rflags = (*rflags & ~RFLAGS_STATUS) | flags;
	return r;
}

static int mmio_read(const struct insn_bus *bus, uint64_t gpa, unsigned size, uint64_t *value)
{
	if (bus->mmio_read(bus->ctx, gpa, size, value))
		return INSN_ERR_BUS;
	*value &= size_mask(size);
	return INSN_OK;
}

static int mmio_write(const struct insn_bus *bus, uint64_t gpa, unsigned size, uint64_t value)
{
	return bus->mmio_write(bus->ctx, gpa, size, value & size_mask(size)) ? INSN_ERR_BUS : INSN_OK;
}

static int emulate_arith(const struct insn *in, const struct insn_bus *bus, uint64_t gpa,
			 uint64_t gpr[16], uint64_t *rflags)
{
	uint64_t mem, other, flags = *rflags, result;
	int rc = mmio_read(bus, gpa, in->size, &mem);

	if (rc)
		return rc;
	other = in->has_imm ? in->imm : get_reg(gpr, in->reg, in->reg_high8, in->size);
	if (in->reg_is_dst) {
		result = alu(in->op, in->size, other, mem, &flags);
		if (in->op != INSN_OP_CMP)
			set_reg(gpr, in->reg, in->reg_high8, in->size, result);
	} else {
		result = alu(in->op, in->size, mem, other, &flags);
		if (in->op != INSN_OP_CMP && in->op != INSN_OP_TEST) {
			rc = mmio_write(bus, gpa, in->size, result);
			if (rc)
				return rc;
		}
	}
	*rflags = flags;
	return INSN_OK;
}

/*
 * One element of STOS or MOVS (SDM Vol. 2B "STOS", Vol. 2B "MOVS"): rSI and
 * rDI step by the element size, backwards with DF; rCX counts down with
 * REP. All three are the address-size part of the register.
 */
static int emulate_string(const struct insn *in, const struct insn_bus *bus, uint64_t gpa,
			  bool fault_write, uint64_t gpr[16], uint64_t rflags)
{
	unsigned as = in->addr_size;
	uint64_t count = gpr[REG_RCX] & size_mask(as);
	uint64_t step = (rflags & RFLAGS_DF) ? -(uint64_t)in->size : in->size;
	uint64_t value;
	int rc;

	if (in->rep && count == 0)
		return INSN_OK; /* nothing to do; cannot have faulted, but harmless */
	if (in->op == INSN_OP_STOS) {
		rc = mmio_write(bus, gpa, in->size, get_reg(gpr, REG_RAX, false, in->size));
	} else if (fault_write) {
		/* The destination is the device; the source is elsewhere. */
		rc = INSN_ERR_BUS;
		if (!bus->mem_read(bus->ctx, in->seg, gpr[REG_RSI] & size_mask(as), in->size,
				   &value))
			rc = mmio_write(bus, gpa, in->size, value);
	} else {
		rc = mmio_read(bus, gpa, in->size, &value);
		if (!rc && bus->mem_write(bus->ctx, INSN_SEG_ES, gpr[REG_RDI] & size_mask(as),
					  in->size, value))
			rc = INSN_ERR_BUS;
	}
	if (rc)
		return rc;

	set_reg(gpr, REG_RDI, false, as, gpr[REG_RDI] + step);
	if (in->op == INSN_OP_MOVS)
		set_reg(gpr, REG_RSI, false, as, gpr[REG_RSI] + step);
	if (!in->rep)
		return INSN_OK;
	set_reg(gpr, REG_RCX, false, as, count - 1);
	return count - 1 ? INSN_AGAIN : INSN_OK;
}

/* Whether the instruction makes the access the EPT violation reported. */
static bool matches_fault(const struct insn *in, bool fault_write)
{
	switch (in->dir) {
	case INSN_DIR_READ:
		return !fault_write;
	case INSN_DIR_WRITE:
		return fault_write;
	default:
		return true;
	}
}

int insn_emulate(const struct insn *in, const struct insn_bus *bus, uint64_t gpa,
		 bool fault_write, uint64_t gpr[16], uint64_t *rflags)
{
	uint64_t value;
	int rc;

	if (!matches_fault(in, fault_write))
		return INSN_ERR_MISMATCH;
	switch (in->op) {
	case INSN_OP_LOAD:
		rc = mmio_read(bus, gpa, in->size, &value);
		if (rc)
			return rc;
		if (in->ext == INSN_EXT_SIGN)
			value = sign_extend(value, in->size);
		set_reg(gpr, in->reg, in->reg_high8, in->reg_size, value);
		return INSN_OK;
	case INSN_OP_STORE:
		value = in->has_imm ? in->imm : get_reg(gpr, in->reg, in->reg_high8, in->size);
		return mmio_write(bus, gpa, in->size, value);
	case INSN_OP_XCHG:
		rc = mmio_read(bus, gpa, in->size, &value);
		if (!rc)
			rc = mmio_write(bus, gpa, in->size,
					get_reg(gpr, in->reg, in->reg_high8, in->size));
		if (!rc)
			set_reg(gpr, in->reg, in->reg_high8, in->size, value);
		return rc;
	case INSN_OP_STOS:
	case INSN_OP_MOVS:
		return emulate_string(in, bus, gpa, fault_write, gpr, *rflags);
	default:
		return emulate_arith(in, bus, gpa, gpr, rflags);
	}
}
