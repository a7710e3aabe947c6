#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/insn_decode.h"
#include "x86/cpu.h"

/* Encodings below are from GNU as (objdump -d), as Linux 6.1 emits them. */

#define RFLAGS_FIXED 0x2ULL
#define GPA 0xfee00300ULL

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

struct fake_bus {
	uint64_t read_value;  /* what MMIO and memory reads return */
	int reads, writes, mem_reads, mem_writes;
	uint64_t write_gpa, write_value, read_gpa;
	unsigned write_size, read_size;
	enum insn_seg mem_seg;
	uint64_t mem_offset, mem_value;
	bool fail_read, fail_write;
};

static struct fake_bus fb;
static uint64_t gpr[16];
static uint64_t rflags;

static int fake_mmio_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *value)
{
	struct fake_bus *b = ctx;
	b->reads++;
	b->read_gpa = gpa;
	b->read_size = size;
	*value = b->read_value;
	return b->fail_read ? -1 : 0;
}

static int fake_mmio_write(void *ctx, uint64_t gpa, unsigned size, uint64_t value)
{
	struct fake_bus *b = ctx;
	b->writes++;
	b->write_gpa = gpa;
	b->write_size = size;
	b->write_value = value;
	return b->fail_write ? -1 : 0;
}

static int fake_mem_read(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size,
			 uint64_t *value)
{
	struct fake_bus *b = ctx;
	(void)size;
	b->mem_reads++;
	b->mem_seg = seg;
	b->mem_offset = offset;
	*value = b->read_value;
	return 0;
}

static int fake_mem_write(void *ctx, enum insn_seg seg, uint64_t offset, unsigned size,
			  uint64_t value)
{
	struct fake_bus *b = ctx;
	(void)size;
	b->mem_writes++;
	b->mem_seg = seg;
	b->mem_offset = offset;
	b->mem_value = value;
	return 0;
}

static const struct insn_bus bus = {
	&fb, fake_mmio_read, fake_mmio_write, fake_mem_read, fake_mem_write,
};

static int setup(void **state)
{
	(void)state;
	memset(&fb, 0, sizeof(fb));
	for (unsigned i = 0; i < 16; i++)
		gpr[i] = 0x1111111111111111ULL * (i + 1);
	rflags = RFLAGS_FIXED;
	return 0;
}

static struct insn decode_ok(const uint8_t *bytes, size_t n, enum insn_mode mode, unsigned len)
{
	struct insn in;
	assert_int_equal(insn_decode(bytes, n, mode, &in), INSN_OK);
	assert_int_equal(in.len, len);
	return in;
}

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
#define DECODE(mode, len, ...) decode_ok(BYTES(__VA_ARGS__), mode, len)

static int decode_err(const uint8_t *bytes, size_t n, enum insn_mode mode)
{
	struct insn in;
	return insn_decode(bytes, n, mode, &in);
}

#define DECODE_ERR(mode, ...) decode_err(BYTES(__VA_ARGS__), mode)

/* Decodes and runs one instruction against the fake bus. */
static int run(const struct insn *in, bool fault_write)
{
	return insn_emulate(in, &bus, GPA, fault_write, gpr, &rflags);
}

/* ---------------------------------------------------------------- decoding */

static void test_linux_writel_readl(void **state)
{
	(void)state;
	struct insn in = DECODE(INSN_MODE_64, 2, 0x89, 0x02); /* mov %eax,(%rdx) */
	assert_int_equal(in.op, INSN_OP_STORE);
	assert_int_equal(in.dir, INSN_DIR_WRITE);
	assert_int_equal(in.size, 4);
	assert_int_equal(in.reg, RAX);
	assert_false(in.has_imm);
	assert_int_equal(in.addr_size, 8);
	assert_int_equal(in.seg, INSN_SEG_DS);

	in = DECODE(INSN_MODE_64, 4, 0x44, 0x8b, 0x4f, 0x20); /* mov 0x20(%rdi),%r9d */
	assert_int_equal(in.op, INSN_OP_LOAD);
	assert_int_equal(in.dir, INSN_DIR_READ);
	assert_int_equal(in.reg, R9);
	assert_int_equal(in.size, 4);
	assert_true(in.reg_is_dst);

	in = DECODE(INSN_MODE_64, 5, 0x4c, 0x89, 0x54, 0xce, 0x08); /* mov %r10,0x8(%rsi,%rcx,8) */
	assert_int_equal(in.size, 8);
	assert_int_equal(in.reg, R10);
}

static void test_immediates_and_rip_relative(void **state)
{
	(void)state;
	/* movl $0x12345678,0x100(%rip) */
	struct insn in = DECODE(INSN_MODE_64, 10, 0xc7, 0x05, 0x00, 0x01, 0x00, 0x00, 0x78, 0x56,
				0x34, 0x12);
	assert_int_equal(in.op, INSN_OP_STORE);
	assert_true(in.has_imm);
	assert_int_equal(in.imm, 0x12345678);
	assert_int_equal(in.size, 4);

	in = DECODE(INSN_MODE_64, 5, 0x66, 0xc7, 0x00, 0xef, 0xbe); /* movw $0xbeef,(%rax) */
	assert_int_equal(in.size, 2);
	assert_int_equal(in.imm, 0xbeef);

	/* movq $-1,0x0(%r13): imm32 sign-extended; r13 as base is not SS-relative. */
	in = DECODE(INSN_MODE_64, 8, 0x49, 0xc7, 0x45, 0x00, 0xff, 0xff, 0xff, 0xff);
	assert_int_equal(in.size, 8);
	assert_int_equal(in.imm, UINT64_MAX);
	assert_int_equal(in.seg, INSN_SEG_DS);

	/* andl $0xfffffff0,(%rdx): imm8 sign-extended to the operand size. */
	in = DECODE(INSN_MODE_64, 3, 0x83, 0x22, 0xf0);
	assert_int_equal(in.op, INSN_OP_AND);
	assert_int_equal(in.dir, INSN_DIR_RMW);
	assert_int_equal(in.imm, 0xfffffff0);

	/* lock orl $0x100,0x300(%rax) */
	in = DECODE(INSN_MODE_64, 11, 0xf0, 0x81, 0x88, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00,
		    0x00);
	assert_int_equal(in.op, INSN_OP_OR);
	assert_true(in.lock);
	assert_int_equal(in.imm, 0x100);

	in = DECODE(INSN_MODE_64, 3, 0x80, 0x38, 0x05); /* cmpb $0x5,(%rax) */
	assert_int_equal(in.op, INSN_OP_CMP);
	assert_int_equal(in.dir, INSN_DIR_READ);
	assert_int_equal(in.size, 1);

	in = DECODE(INSN_MODE_64, 3, 0xf6, 0x00, 0x80); /* testb $0x80,(%rax) */
	assert_int_equal(in.op, INSN_OP_TEST);
	assert_int_equal(in.imm, 0x80);
}

static void test_byte_registers(void **state)
{
	(void)state;
	struct insn in = DECODE(INSN_MODE_64, 2, 0x88, 0x22); /* mov %ah,(%rdx) */
	assert_int_equal(in.reg, RAX);
	assert_true(in.reg_high8);

	in = DECODE(INSN_MODE_64, 3, 0x40, 0x88, 0x32); /* mov %sil,(%rdx): REX, no high byte */
	assert_int_equal(in.reg, RSI);
	assert_false(in.reg_high8);

	in = DECODE(INSN_MODE_64, 2, 0x8a, 0x3b); /* mov (%rbx),%bh */
	assert_int_equal(in.op, INSN_OP_LOAD);
	assert_int_equal(in.reg, RBX);
	assert_true(in.reg_high8);

	/* movzbl 0x30(%rax),%ecx: the register is 32-bit, never a high byte. */
	in = DECODE(INSN_MODE_64, 4, 0x0f, 0xb6, 0x48, 0x30);
	assert_int_equal(in.reg, RCX);
	assert_false(in.reg_high8);
	assert_int_equal(in.size, 1);
	assert_int_equal(in.reg_size, 4);
	assert_int_equal(in.ext, INSN_EXT_ZERO);
}

static void test_extending_loads(void **state)
{
	(void)state;
	struct insn in = DECODE(INSN_MODE_64, 4, 0x4c, 0x0f, 0xb7, 0x00); /* movzwq (%rax),%r8 */
	assert_int_equal(in.reg, R8);
	assert_int_equal(in.size, 2);
	assert_int_equal(in.reg_size, 8);

	in = DECODE(INSN_MODE_64, 4, 0x66, 0x0f, 0xbe, 0x10); /* movsbw (%rax),%dx */
	assert_int_equal(in.reg, RDX);
	assert_int_equal(in.size, 1);
	assert_int_equal(in.reg_size, 2);
	assert_int_equal(in.ext, INSN_EXT_SIGN);

	in = DECODE(INSN_MODE_64, 3, 0x4c, 0x63, 0x18); /* movslq (%rax),%r11 */
	assert_int_equal(in.reg, R11);
	assert_int_equal(in.size, 4);
	assert_int_equal(in.reg_size, 8);
	assert_int_equal(in.ext, INSN_EXT_SIGN);
}

static void test_string_instructions(void **state)
{
	(void)state;
	struct insn in = DECODE(INSN_MODE_64, 2, 0xf3, 0xab); /* rep stos %eax,%es:(%rdi) */
	assert_int_equal(in.op, INSN_OP_STOS);
	assert_true(in.rep);
	assert_int_equal(in.size, 4);
	assert_int_equal(in.seg, INSN_SEG_ES);
	assert_int_equal(in.dir, INSN_DIR_WRITE);

	in = DECODE(INSN_MODE_64, 2, 0xf3, 0xa4); /* rep movsb */
	assert_int_equal(in.op, INSN_OP_MOVS);
	assert_int_equal(in.dir, INSN_DIR_COPY);
	assert_int_equal(in.size, 1);

	in = DECODE(INSN_MODE_64, 3, 0x64, 0x48, 0xa5); /* movsq %fs:(%rsi),%es:(%rdi) */
	assert_int_equal(in.seg, INSN_SEG_FS);
	assert_int_equal(in.size, 8);
	assert_false(in.rep);

	in = DECODE(INSN_MODE_64, 2, 0x64, 0xaa); /* stos ignores overrides: always ES */
	assert_int_equal(in.seg, INSN_SEG_ES);
}

static void test_moffs_and_address_size(void **state)
{
	(void)state;
	/* movabs 0x1122334455667788,%eax: an 8-byte offset in 64-bit mode. */
	struct insn in = DECODE(INSN_MODE_64, 9, 0xa1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22,
				0x11);
	assert_int_equal(in.op, INSN_OP_LOAD);
	assert_int_equal(in.reg, RAX);
	assert_int_equal(in.size, 4);

	in = DECODE(INSN_MODE_64, 10, 0x48, 0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11);
	assert_int_equal(in.op, INSN_OP_STORE);
	assert_int_equal(in.size, 8);

	in = DECODE(INSN_MODE_64, 6, 0x67, 0xa1, 0x00, 0x00, 0xe0, 0xfe); /* addr32: 4-byte offset */
	assert_int_equal(in.addr_size, 4);

	in = DECODE(INSN_MODE_64, 3, 0x67, 0x8b, 0x08); /* mov (%eax),%ecx */
	assert_int_equal(in.addr_size, 4);

	in = DECODE(INSN_MODE_64, 3, 0x64, 0x8b, 0x00); /* mov %fs:(%rax),%eax */
	assert_int_equal(in.seg, INSN_SEG_FS);

	in = DECODE(INSN_MODE_64, 3, 0x29, 0x45, 0x00); /* sub %eax,0x0(%rbp) */
	assert_int_equal(in.op, INSN_OP_SUB);
	assert_int_equal(in.seg, INSN_SEG_SS);
	assert_int_equal(in.dir, INSN_DIR_RMW);

	/* 3E (DS) is a null prefix in 64-bit mode: still SS for rbp. */
	in = DECODE(INSN_MODE_64, 4, 0x3e, 0x8b, 0x45, 0x00);
	assert_int_equal(in.seg, INSN_SEG_SS);

	in = DECODE(INSN_MODE_64, 4, 0x4c, 0x13, 0x24, 0x24); /* adc (%rsp),%r12 */
	assert_int_equal(in.op, INSN_OP_ADC);
	assert_int_equal(in.reg, R12);
	assert_true(in.reg_is_dst);
	assert_int_equal(in.dir, INSN_DIR_READ);
	assert_int_equal(in.seg, INSN_SEG_SS);

	in = DECODE(INSN_MODE_64, 4, 0x66, 0x44, 0x85, 0x03); /* test %r8w,(%rbx) */
	assert_int_equal(in.op, INSN_OP_TEST);
	assert_int_equal(in.size, 2);
	assert_int_equal(in.reg, R8);

	in = DECODE(INSN_MODE_64, 3, 0x48, 0x87, 0x03); /* xchg %rax,(%rbx) */
	assert_int_equal(in.op, INSN_OP_XCHG);
	assert_int_equal(in.dir, INSN_DIR_RMW);
}

static void test_32_and_16_bit_code(void **state)
{
	(void)state;
	assert_int_equal(insn_mode_of(true, true, false), INSN_MODE_64);
	assert_int_equal(insn_mode_of(true, false, true), INSN_MODE_32); /* compatibility mode */
	assert_int_equal(insn_mode_of(false, true, false), INSN_MODE_16);

	struct insn in = DECODE(INSN_MODE_32, 2, 0x89, 0x02);
	assert_int_equal(in.size, 4);
	assert_int_equal(in.addr_size, 4);
	/* movw $0x1,0x12345678: disp32 is absolute outside 64-bit mode. */
	in = DECODE(INSN_MODE_32, 9, 0x66, 0xc7, 0x05, 0x78, 0x56, 0x34, 0x12, 0x01, 0x00);
	assert_int_equal(in.size, 2);
	assert_int_equal(in.imm, 1);
	in = DECODE(INSN_MODE_32, 3, 0x8b, 0x45, 0x10); /* mov 0x10(%ebp),%eax */
	assert_int_equal(in.seg, INSN_SEG_SS);
	in = DECODE(INSN_MODE_32, 3, 0x26, 0x8b, 0x00); /* ES override counts here */
	assert_int_equal(in.seg, INSN_SEG_ES);

	in = DECODE(INSN_MODE_16, 2, 0x89, 0x07); /* mov %ax,(%bx) */
	assert_int_equal(in.size, 2);
	assert_int_equal(in.addr_size, 2);
	/* movl $0x11223344,(%bx,%si) */
	in = DECODE(INSN_MODE_16, 7, 0x66, 0xc7, 0x00, 0x44, 0x33, 0x22, 0x11);
	assert_int_equal(in.size, 4);
	assert_int_equal(in.imm, 0x11223344);
	in = DECODE(INSN_MODE_16, 3, 0x67, 0x89, 0x00); /* addr32 mov %ax,(%eax) */
	assert_int_equal(in.addr_size, 4);
	in = DECODE(INSN_MODE_16, 3, 0xa0, 0x34, 0x12); /* mov 0x1234,%al */
	assert_int_equal(in.size, 1);
	in = DECODE(INSN_MODE_16, 4, 0x89, 0x06, 0x34, 0x12); /* mov %ax,0x1234: disp16 */
	assert_int_equal(in.seg, INSN_SEG_DS);
	in = DECODE(INSN_MODE_16, 3, 0x8b, 0x46, 0x02); /* mov 0x2(%bp),%ax */
	assert_int_equal(in.seg, INSN_SEG_SS);
	/* [bx+si+disp16] with a 32-bit address prefix becomes SIB + disp32. */
	in = DECODE(INSN_MODE_16, 8, 0x67, 0x89, 0x84, 0x24, 0x00, 0x00, 0x00, 0x00);
	assert_int_equal(in.seg, INSN_SEG_SS);
}

static void test_rex_rules(void **state)
{
	(void)state;
	/* A REX followed by a legacy prefix is ignored: mov %ax,(%rdx). */
	struct insn in = DECODE(INSN_MODE_64, 4, 0x48, 0x66, 0x89, 0x02);
	assert_int_equal(in.size, 2);
	/* REX.W wins over 66. */
	in = DECODE(INSN_MODE_64, 4, 0x66, 0x48, 0x89, 0x02);
	assert_int_equal(in.size, 8);
	/* A dropped REX brings back the high-byte registers. */
	in = DECODE(INSN_MODE_64, 4, 0x40, 0x2e, 0x88, 0x22);
	assert_true(in.reg_high8);
	/* 0x48 is DEC EAX outside 64-bit mode. */
	assert_int_equal(DECODE_ERR(INSN_MODE_32, 0x48, 0x89, 0x02), INSN_ERR_UNSUPPORTED);
	/* 63 is ARPL outside 64-bit mode. */
	assert_int_equal(DECODE_ERR(INSN_MODE_32, 0x63, 0x02), INSN_ERR_UNSUPPORTED);
}

static void test_length_limits(void **state)
{
	(void)state;
	/* 5 null prefixes + a 10-byte movl: exactly 15 bytes is valid. */
	DECODE(INSN_MODE_64, 15, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0xc7, 0x05, 0, 0, 0, 0, 1, 2, 3, 4);
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0xc7, 0x05, 0,
				    0, 0, 0, 1, 2, 3, 4),
			 INSN_ERR_TOO_LONG);
	/* Only prefixes, more than 15 given: too long, not truncated. */
	uint8_t many[32];
	memset(many, 0x66, sizeof(many));
	assert_int_equal(decode_err(many, sizeof(many), INSN_MODE_64), INSN_ERR_TOO_LONG);
	/* Fewer bytes than the instruction needs: truncated, at every cut. */
	static const uint8_t movl[] = { 0xc7, 0x05, 0x00, 0x01, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12 };
	for (size_t n = 0; n < sizeof(movl); n++)
		assert_int_equal(decode_err(movl, n, INSN_MODE_64), INSN_ERR_TRUNCATED);
	static const uint8_t sib[] = { 0x4c, 0x89, 0x54, 0xce, 0x08 };
	for (size_t n = 0; n < sizeof(sib); n++)
		assert_int_equal(decode_err(sib, n, INSN_MODE_64), INSN_ERR_TRUNCATED);
}

static void test_refused_encodings(void **state)
{
	(void)state;
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xf0, 0x89, 0x02), INSN_ERR_UD); /* lock mov */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xf0, 0x80, 0x38, 0x05), INSN_ERR_UD); /* lock cmp */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xf0, 0x85, 0x03), INSN_ERR_UD); /* lock test */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xf0, 0x03, 0x02), INSN_ERR_UD); /* lock add to reg */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xf0, 0xab), INSN_ERR_UD); /* lock stos */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0x89, 0xc0), INSN_ERR_UNSUPPORTED); /* reg form */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0x81, 0xc0, 1, 0, 0, 0), INSN_ERR_UNSUPPORTED);
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0x0f, 0x0b), INSN_ERR_UNSUPPORTED); /* ud2 */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xff, 0x00), INSN_ERR_UNSUPPORTED); /* incl */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xc7, 0x08, 0, 0, 0, 0), INSN_ERR_UNSUPPORTED);
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xf7, 0x10), INSN_ERR_UNSUPPORTED); /* notl */
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0x05, 1, 0, 0, 0), INSN_ERR_UNSUPPORTED);
	assert_int_equal(DECODE_ERR(INSN_MODE_64, 0xac), INSN_ERR_UNSUPPORTED); /* lods */
	/* lock xchg and lock add to memory are fine. */
	DECODE(INSN_MODE_64, 4, 0xf0, 0x48, 0x87, 0x03);
	DECODE(INSN_MODE_64, 2 + 1, 0xf0, 0x01, 0x02);
}

/* ---------------------------------------------------------------- emulation */

static void test_store_and_load_semantics(void **state)
{
	(void)state;
	gpr[RAX] = 0xdeadbeefcafef00dULL;
	struct insn in = DECODE(INSN_MODE_64, 2, 0x89, 0x02);
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.write_gpa, GPA);
	assert_int_equal(fb.write_size, 4);
	assert_int_equal(fb.write_value, 0xcafef00d);

	/* A 32-bit load zero-extends; the read's upper garbage is dropped. */
	fb.read_value = 0xffffffff80000001ULL;
	in = DECODE(INSN_MODE_64, 4, 0x44, 0x8b, 0x4f, 0x20);
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[R9], 0x80000001);

	/* 16-bit and 8-bit loads keep the rest of the register. */
	fb.read_value = 0xabcd;
	in = DECODE(INSN_MODE_64, 3, 0x66, 0x8b, 0x02); /* mov (%rdx),%ax */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[RAX], 0xdeadbeefcafeabcdULL);
	in = DECODE(INSN_MODE_64, 2, 0x8a, 0x3b); /* mov (%rbx),%bh */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[RBX], 0x444444444444cd44ULL);

	in = DECODE(INSN_MODE_64, 2, 0x88, 0x22); /* mov %ah,(%rdx) */
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.write_size, 1);
	assert_int_equal(fb.write_value, 0xab);
	in = DECODE(INSN_MODE_64, 3, 0x40, 0x88, 0x32); /* mov %sil,(%rdx) */
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.write_value, 0x77);

	in = DECODE(INSN_MODE_64, 8, 0x49, 0xc7, 0x45, 0x00, 0xff, 0xff, 0xff, 0xff);
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.write_size, 8);
	assert_int_equal(fb.write_value, UINT64_MAX);

	in = DECODE(INSN_MODE_64, 10, 0x48, 0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11);
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.write_value, 0xdeadbeefcafeabcdULL);
	assert_int_equal(rflags, RFLAGS_FIXED); /* moves leave the flags alone */
}

static void test_extension_semantics(void **state)
{
	(void)state;
	fb.read_value = 0xff;
	struct insn in = DECODE(INSN_MODE_64, 4, 0x0f, 0xb6, 0x48, 0x30); /* movzbl -> %ecx */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[RCX], 0xff);

	fb.read_value = 0x80;
	in = DECODE(INSN_MODE_64, 4, 0x66, 0x0f, 0xbe, 0x10); /* movsbw -> %dx */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[RDX], 0x333333333333ff80ULL);

	fb.read_value = 0x80000000;
	in = DECODE(INSN_MODE_64, 3, 0x4c, 0x63, 0x18); /* movslq -> %r11 */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[R11], 0xffffffff80000000ULL);

	fb.read_value = 0xfffe8001;
	in = DECODE(INSN_MODE_64, 4, 0x4c, 0x0f, 0xb7, 0x00); /* movzwq -> %r8 */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(fb.read_size, 2);
	assert_int_equal(gpr[R8], 0x8001);
	in = DECODE(INSN_MODE_64, 4, 0x48, 0x0f, 0xbf, 0x00); /* movswq -> %rax */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[RAX], 0xffffffffffff8001ULL);
}

static void test_read_modify_write(void **state)
{
	(void)state;
	fb.read_value = 0x1;
	struct insn in = DECODE(INSN_MODE_64, 11, 0xf0, 0x81, 0x88, 0x00, 0x03, 0x00, 0x00, 0x00,
				0x01, 0x00, 0x00);
	rflags |= RFLAGS_CF | RFLAGS_OF | RFLAGS_ZF;
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(fb.reads, 1);
	assert_int_equal(fb.write_value, 0x101);
	assert_int_equal(rflags, RFLAGS_FIXED); /* OR clears CF/OF; 0x01 has odd parity */

	fb.read_value = 0x1f;
	in = DECODE(INSN_MODE_64, 3, 0x83, 0x22, 0xf0); /* andl $-16 */
	assert_int_equal(run(&in, true), INSN_OK); /* a write fault is fine for RMW */
	assert_int_equal(fb.write_value, 0x10);

	/* sub %eax,(%rbp): 5 - 7 borrows */
	gpr[RAX] = 7;
	fb.read_value = 5;
	in = DECODE(INSN_MODE_64, 3, 0x29, 0x45, 0x00);
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(fb.write_value, 0xfffffffe);
	assert_int_equal(rflags & RFLAGS_STATUS, RFLAGS_CF | RFLAGS_SF | RFLAGS_AF);

	/* adc (%rsp),%r12 with CF set: into the register, memory untouched. */
	int writes = fb.writes;
	gpr[R12] = UINT64_MAX;
	fb.read_value = 0;
	in = DECODE(INSN_MODE_64, 4, 0x4c, 0x13, 0x24, 0x24);
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(gpr[R12], 0);
	assert_int_equal(rflags & RFLAGS_STATUS, RFLAGS_CF | RFLAGS_ZF | RFLAGS_PF | RFLAGS_AF);
	assert_int_equal(fb.writes, writes);

	/* xchg %rax,(%rbx) */
	gpr[RAX] = 0x1234;
	fb.read_value = 0x5678;
	in = DECODE(INSN_MODE_64, 3, 0x48, 0x87, 0x03);
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(fb.write_value, 0x1234);
	assert_int_equal(gpr[RAX], 0x5678);
}

static void test_compare_and_test_only_set_flags(void **state)
{
	(void)state;
	fb.read_value = 5;
	struct insn in = DECODE(INSN_MODE_64, 3, 0x80, 0x38, 0x05); /* cmpb $5 */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(rflags & RFLAGS_STATUS, RFLAGS_ZF | RFLAGS_PF);
	fb.read_value = 3;
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(rflags & RFLAGS_STATUS, RFLAGS_CF | RFLAGS_SF | RFLAGS_AF); /* 3 - 5 = 0xfe */

	/* cmp (%rdx),%ecx is ecx - mem. */
	gpr[RCX] = 10;
	fb.read_value = 3;
	in = DECODE(INSN_MODE_64, 2, 0x3b, 0x0a);
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(rflags & RFLAGS_STATUS, 0); /* 7 */
	assert_int_equal(gpr[RCX], 10);

	fb.read_value = 0x80;
	in = DECODE(INSN_MODE_64, 3, 0xf6, 0x00, 0x80); /* testb $0x80 */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(rflags & RFLAGS_STATUS, RFLAGS_SF);
	assert_int_equal(fb.writes, 0);
	assert_int_equal(rflags & ~RFLAGS_STATUS, RFLAGS_FIXED);
}

static void test_rep_stos_one_iteration_per_call(void **state)
{
	(void)state;
	struct insn in = DECODE(INSN_MODE_64, 2, 0xf3, 0xab);
	gpr[RAX] = 0x1122334455667788ULL;
	gpr[RCX] = 2;
	gpr[RDI] = 0x1000;
	assert_int_equal(run(&in, true), INSN_AGAIN);
	assert_int_equal(fb.write_value, 0x55667788);
	assert_int_equal(gpr[RCX], 1);
	assert_int_equal(gpr[RDI], 0x1004);
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(gpr[RCX], 0);
	assert_int_equal(gpr[RDI], 0x1008);
	/* A zero count does nothing. */
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.writes, 2);

	/* DF set: backwards. */
	rflags |= RFLAGS_DF;
	gpr[RCX] = 5;
	assert_int_equal(run(&in, true), INSN_AGAIN);
	assert_int_equal(gpr[RDI], 0x1004);

	/* addr32: ECX/EDI, wrapping at 4 GiB and zero-extended. */
	rflags &= ~RFLAGS_DF;
	in = DECODE(INSN_MODE_64, 3, 0x67, 0xf3, 0xab);
	gpr[RCX] = 0xffffffff00000001ULL;
	gpr[RDI] = 0x12345678fffffffcULL;
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(gpr[RCX], 0);
	assert_int_equal(gpr[RDI], 0);

	/* 16-bit code: CX/DI, the upper bits kept. */
	in = DECODE(INSN_MODE_16, 2, 0xf3, 0xab); /* rep stosw */
	gpr[RCX] = 0xaaaa000000000003ULL;
	gpr[RDI] = 0xbbbb00000000fffeULL;
	assert_int_equal(run(&in, true), INSN_AGAIN);
	assert_int_equal(fb.write_size, 2);
	assert_int_equal(gpr[RCX], 0xaaaa000000000002ULL);
	assert_int_equal(gpr[RDI], 0xbbbb000000000000ULL);

	/* Without REP: one store, rDI moves, rCX untouched. */
	in = DECODE(INSN_MODE_64, 1, 0xaa);
	gpr[RCX] = 9;
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(gpr[RCX], 9);
}

static void test_movs_to_and_from_mmio(void **state)
{
	(void)state;
	struct insn in = DECODE(INSN_MODE_64, 3, 0xf3, 0x48, 0xa5); /* rep movsq */
	gpr[RCX] = 2;
	gpr[RSI] = 0x2000;
	gpr[RDI] = 0x3000;
	fb.read_value = 0x0102030405060708ULL;
	/* memcpy_toio: the write faulted, the source is RAM. */
	assert_int_equal(run(&in, true), INSN_AGAIN);
	assert_int_equal(fb.mem_reads, 1);
	assert_int_equal(fb.mem_seg, INSN_SEG_DS);
	assert_int_equal(fb.mem_offset, 0x2000);
	assert_int_equal(fb.write_gpa, GPA);
	assert_int_equal(fb.write_value, 0x0102030405060708ULL);
	assert_int_equal(gpr[RSI], 0x2008);
	assert_int_equal(gpr[RDI], 0x3008);
	/* memcpy_fromio: the read faulted, the destination is ES:rDI. */
	assert_int_equal(run(&in, false), INSN_OK);
	assert_int_equal(fb.reads, 1);
	assert_int_equal(fb.mem_writes, 1);
	assert_int_equal(fb.mem_seg, INSN_SEG_ES);
	assert_int_equal(fb.mem_offset, 0x3008);
	assert_int_equal(fb.mem_value, 0x0102030405060708ULL);
	assert_int_equal(gpr[RCX], 0);

	in = DECODE(INSN_MODE_64, 2, 0x65, 0xa4); /* movsb %gs:(%rsi) */
	assert_int_equal(run(&in, true), INSN_OK);
	assert_int_equal(fb.mem_seg, INSN_SEG_GS);
}

static void test_errors_leave_state_alone(void **state)
{
	(void)state;
	uint64_t before[16];
	memcpy(before, gpr, sizeof(before));

	/* A load cannot cause a write fault: the bytes changed since the exit. */
	struct insn in = DECODE(INSN_MODE_64, 4, 0x44, 0x8b, 0x4f, 0x20);
	assert_int_equal(run(&in, true), INSN_ERR_MISMATCH);
	in = DECODE(INSN_MODE_64, 2, 0x89, 0x02);
	assert_int_equal(run(&in, false), INSN_ERR_MISMATCH);
	assert_int_equal(fb.reads + fb.writes, 0);

	/* The write of a read-modify-write fails after its read succeeded. */
	fb.fail_write = true;
	in = DECODE(INSN_MODE_64, 3, 0x48, 0x87, 0x03); /* xchg */
	assert_int_equal(run(&in, false), INSN_ERR_BUS);
	in = DECODE(INSN_MODE_64, 3, 0x29, 0x45, 0x00); /* sub: flags untouched too */
	assert_int_equal(run(&in, false), INSN_ERR_BUS);
	in = DECODE(INSN_MODE_64, 2, 0xf3, 0xab);
	gpr[RCX] = 4;
	before[RCX] = 4;
	assert_int_equal(run(&in, true), INSN_ERR_BUS);
	fb.fail_read = true;
	in = DECODE(INSN_MODE_64, 4, 0x44, 0x8b, 0x4f, 0x20);
	assert_int_equal(run(&in, false), INSN_ERR_BUS);
	in = DECODE(INSN_MODE_64, 2, 0xf3, 0xa5);
	assert_int_equal(run(&in, false), INSN_ERR_BUS);
	assert_memory_equal(before, gpr, sizeof(before));
	assert_int_equal(rflags, RFLAGS_FIXED);
}

/*
 * Flags against the host CPU itself: for every arithmetic operation and
 * size, `op $imm, mem` through the emulator and the same operation run
 * natively must agree on the result and on CF/PF/AF/ZF/SF/OF.
 */
#define HOST_OP(mnem, type, a, b, fl)                                                   \
	do {                                                                            \
		type x_ = (type)(a), y_ = (type)(b);                                    \
		__asm__ volatile("sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t" mnem       \
				 " %[y], %[x]\n\tpushfq\n\tpop %[f]\n\tadd $128, %%rsp"  \
				 : [x] "+r"(x_), [f] "+r"(fl)                            \
				 : [y] "r"(y_)                                           \
				 : "cc", "memory");                                      \
		(a) = x_;                                                               \
	} while (0)

#define HOST_SIZES(mnem, size, a, b, fl)                                                \
	do {                                                                            \
		switch (size) {                                                         \
		case 1: HOST_OP(mnem "b", uint8_t, a, b, fl); break;                    \
		case 2: HOST_OP(mnem "w", uint16_t, a, b, fl); break;                   \
		case 4: HOST_OP(mnem "l", uint32_t, a, b, fl); break;                   \
		default: HOST_OP(mnem "q", uint64_t, a, b, fl); break;                  \
		}                                                                       \
	} while (0)

static uint64_t host_alu(enum insn_op op, unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
	switch (op) {
	case INSN_OP_ADD: HOST_SIZES("add", size, a, b, *fl); break;
	case INSN_OP_OR: HOST_SIZES("or", size, a, b, *fl); break;
	case INSN_OP_ADC: HOST_SIZES("adc", size, a, b, *fl); break;
	case INSN_OP_SBB: HOST_SIZES("sbb", size, a, b, *fl); break;
	case INSN_OP_AND: HOST_SIZES("and", size, a, b, *fl); break;
	case INSN_OP_SUB: HOST_SIZES("sub", size, a, b, *fl); break;
	case INSN_OP_XOR: HOST_SIZES("xor", size, a, b, *fl); break;
	case INSN_OP_CMP: HOST_SIZES("cmp", size, a, b, *fl); break;
	default: HOST_SIZES("test", size, a, b, *fl); break;
	}
	return a;
}

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_flags_match_the_cpu(void **state)
{
	(void)state;
	static const uint64_t edges[] = { 0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
					  0x7fffffff, 0x80000000, 0xffffffff, 0x8000000000000000ULL,
					  0x7fffffffffffffffULL, UINT64_MAX, 0x0f, 0x10 };
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	const size_t n_edges = sizeof(edges) / sizeof(edges[0]);
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	for (unsigned op = INSN_OP_ADD; op <= INSN_OP_TEST; op++) {
		for (unsigned s = 0; s < 4; s++) {
			for (unsigned i = 0; i < 600; i++) {
				unsigned size = sizes[s];
				uint64_t mask = size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
				uint64_t a = i < n_edges * n_edges ? edges[i % n_edges] : next_random(&seed);
				uint64_t b = i < n_edges * n_edges ? edges[i / n_edges] : next_random(&seed);
				uint64_t fl_in = RFLAGS_FIXED | (next_random(&seed) & RFLAGS_STATUS);
				struct insn in = { .op = (enum insn_op)op, .size = (uint8_t)size,
						   .has_imm = true, .imm = b & mask };
				in.dir = op == INSN_OP_CMP || op == INSN_OP_TEST ? INSN_DIR_READ
										  : INSN_DIR_RMW;

				uint64_t host_fl = fl_in;
				uint64_t want = host_alu((enum insn_op)op, size, a, b, &host_fl) & mask;
				fb.read_value = a;
				fb.write_value = a & mask;
				rflags = fl_in;
				assert_int_equal(run(&in, false), INSN_OK);
				assert_int_equal(rflags, host_fl & (RFLAGS_STATUS | RFLAGS_FIXED));
				assert_int_equal(fb.write_value, want);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_linux_writel_readl, setup),
		cmocka_unit_test_setup(test_immediates_and_rip_relative, setup),
		cmocka_unit_test_setup(test_byte_registers, setup),
		cmocka_unit_test_setup(test_extending_loads, setup),
		cmocka_unit_test_setup(test_string_instructions, setup),
		cmocka_unit_test_setup(test_moffs_and_address_size, setup),
		cmocka_unit_test_setup(test_32_and_16_bit_code, setup),
		cmocka_unit_test_setup(test_rex_rules, setup),
		cmocka_unit_test_setup(test_length_limits, setup),
		cmocka_unit_test_setup(test_refused_encodings, setup),
		cmocka_unit_test_setup(test_store_and_load_semantics, setup),
		cmocka_unit_test_setup(test_extension_semantics, setup),
		cmocka_unit_test_setup(test_read_modify_write, setup),
		cmocka_unit_test_setup(test_compare_and_test_only_set_flags, setup),
		cmocka_unit_test_setup(test_rep_stos_one_iteration_per_call, setup),
		cmocka_unit_test_setup(test_movs_to_and_from_mmio, setup),
		cmocka_unit_test_setup(test_errors_leave_state_alone, setup),
		cmocka_unit_test_setup(test_flags_match_the_cpu, setup),
	};
	return cmocka_run_group_tests_name("insn_decode", tests, NULL, NULL);
}
