/*
 * The save file codec (vmm/savefile.c, docs/savefile.md): files written
 * and read back, zero pages taking no space, and every refusal of the
 * reader: truncation at every byte, every single bit flipped, foreign
 * files, newer versions, unknown records, bad lengths, a second footer,
 * data after it. Each refusal's message is checked for what it names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "tests/unit/savefile_reseal.h"
#include "vmm/savefile.h"

#define PAGE SAVEFILE_PAGE_SIZE
#define FILE_MAX (4u << 20)
#define RAM_MAX_TEST (1u << 20)

static uint8_t file[FILE_MAX], copy[FILE_MAX], ram[RAM_MAX_TEST], restored[RAM_MAX_TEST];
static uint8_t scratch[SAVEFILE_SCRATCH_SIZE];
static struct lz_workspace ws;
static struct savefile_buffer buf;
static struct savefile_writer w;
static struct savefile_reader r;
static struct savefile_error err;
static uint32_t rng = 99;

/* A state record of docs/devices.md: name "pit", version 2, four bytes. */
static const uint8_t pit_record[] = { 3, 'p', 'i', 't', 2, 0, 4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef };
static const uint8_t vcpu_state[] = "rip=0xfff0 rsp=0x7c00";
static const uint8_t console_text[] = "login: ";

static uint8_t random_byte(void)
{
	rng = rng * 1103515245u + 12345u;
	return (uint8_t)(rng >> 16);
}

static struct savefile_header test_header(uint64_t ram_bytes)
{
	struct savefile_header h = {
		.name = "web",
		.ram_bytes = ram_bytes,
		.boot_mode = SAVEFILE_BOOT_LINUX,
		.vcpus = 1,
		.cpu_features = 1u << SAVEFILE_CPU_SSE4_2 | 1u << SAVEFILE_CPU_NX,
		.saved_at = 1798761600,
		.nic_count = 2,
		.nics = { { { 2, 0, 0, 0, 0, 1 }, "lan" }, { { 2, 0, 0, 0, 0, 2 }, "dmz" } },
	};
	return h;
}

static void start(uint64_t ram_bytes)
{
	struct savefile_header h = test_header(ram_bytes);

	buf = (struct savefile_buffer){ .data = file, .capacity = sizeof(file) };
	lz_workspace_init(&ws);
	assert_true(savefile_writer_init(&w, savefile_buffer_sink, &buf));
	assert_true(savefile_write_header(&w, &h));
}

/* A file of the VM whose RAM is ram[0..pages): vCPU, device, console, memory. */
static size_t write_file(uint64_t pages)
{
	start(pages * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, sizeof(vcpu_state)));
	assert_true(savefile_write_device(&w, pit_record, sizeof(pit_record)));
	assert_true(savefile_write_record(&w, SAVEFILE_CONSOLE, 0, console_text,
					  sizeof(console_text) - 1));
	assert_true(savefile_write_memory(&w, ram, pages, &ws, scratch));
	assert_true(savefile_finish(&w));
	return buf.size;
}

/* The small file of the exhaustive tests: a zero page, a text page, two zero pages. */
static size_t write_small_file(void)
{
	memset(ram, 0, 4 * PAGE);
	for (size_t i = 0; i < PAGE; i++)
		ram[PAGE + i] = "Linux version 6.1 "[i % 18];
	return write_file(4);
}

/* Offset of record index (the header is 0). */
static size_t record_offset(const uint8_t *f, unsigned index)
{
	size_t pos = SAVEFILE_PREFIX_SIZE;

	while (index--)
		pos += SAVEFILE_RECORD_HEADER_SIZE + le_get(f + pos + 4, 4);
	return pos;
}

static void refused(const uint8_t *f, size_t size, const char *expected)
{
	memset(&err, 0, sizeof(err));
	assert_false(savefile_open(&r, f, size, &err));
	if (!strstr(err.text, expected))
		fail_msg("expected '%s' in '%s'", expected, err.text);
}

static void test_round_trip(void **state)
{
	size_t size, pages = 64;
	struct savefile_record rec;
	struct savefile_run run;
	uint64_t gpa = 0;
	unsigned kinds = 0;

	(void)state;
	/* Zero, random, text and page-table-like pages in a repeating mix. */
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PAGE; i++)
			ram[p * PAGE + i] = p % 4 == 0 ? 0 : p % 4 == 1 ? random_byte() :
					    p % 4 == 2 ? (uint8_t)"GNU C Library "[i % 14] :
							 (uint8_t)(i % 8 == 0 ? p : 0);
	size = write_file(pages);
	assert_true(savefile_open(&r, file, size, &err));
	assert_string_equal(r.walk.header.name, "web");
	assert_int_equal(r.walk.header.ram_bytes, pages * PAGE);
	assert_int_equal(r.walk.header.boot_mode, SAVEFILE_BOOT_LINUX);
	assert_int_equal(r.walk.header.vcpus, 1);
	assert_int_equal(r.walk.header.cpu_features, 1u << SAVEFILE_CPU_SSE4_2 | 1u << SAVEFILE_CPU_NX);
	assert_int_equal(r.walk.header.saved_at, 1798761600);
	assert_int_equal(r.walk.header.nic_count, 2);
	assert_string_equal(r.walk.header.nics[1].network, "dmz");
	assert_memory_equal(r.walk.header.nics[1].mac, ((uint8_t[]){ 2, 0, 0, 0, 0, 2 }), 6);

	assert_true(savefile_next(&r, &rec));
	assert_int_equal(rec.type, SAVEFILE_VCPU);
	assert_int_equal(rec.index, 1);
	assert_int_equal(le_get(rec.payload, 4), 0);
	assert_memory_equal(rec.payload + 4, vcpu_state, sizeof(vcpu_state));
	assert_true(savefile_next(&r, &rec));
	assert_int_equal(rec.type, SAVEFILE_DEVICE);
	assert_memory_equal(rec.payload, pit_record, sizeof(pit_record));
	assert_true(savefile_next(&r, &rec));
	assert_int_equal(rec.type, SAVEFILE_CONSOLE);
	assert_memory_equal(rec.payload, console_text, rec.size);
	memset(restored, 0xaa, sizeof(restored));
	while (savefile_next(&r, &rec)) {
		assert_int_equal(rec.type, SAVEFILE_MEMORY);
		assert_true(savefile_memory_run(&rec, &run, &err));
		assert_int_equal(run.gpa, gpa);
		kinds |= 1u << run.encoding;
		assert_true(savefile_run_decode(&run, restored + run.gpa, run.pages * PAGE, &err));
		gpa += run.pages * PAGE;
	}
	assert_int_equal(gpa, pages * PAGE);
	assert_memory_equal(restored, ram, pages * PAGE);
	/* Random pages alone do not compress, text does; both follow zero pages. */
	assert_int_equal(kinds, 1u << SAVEFILE_RUN_ZERO | 1u << SAVEFILE_RUN_LZ);
	assert_false(savefile_next(&r, &rec));
}

/* Random pages that do not compress are stored raw, and come back. */
static void test_incompressible_is_raw(void **state)
{
	struct savefile_record rec;
	struct savefile_run run;
	size_t size;

	(void)state;
	for (size_t i = 0; i < 20 * PAGE; i++)
		ram[i] = random_byte();
	size = write_file(20);
	assert_true(savefile_open(&r, file, size, &err));
	memset(restored, 0, 20 * PAGE);
	while (savefile_next(&r, &rec)) {
		if (rec.type != SAVEFILE_MEMORY)
			continue;
		assert_true(savefile_memory_run(&rec, &run, &err));
		assert_int_equal(run.encoding, SAVEFILE_RUN_RAW);
		assert_true(run.pages <= SAVEFILE_RUN_PAGES_MAX);
		assert_true(savefile_run_decode(&run, restored + run.gpa, run.pages * PAGE, &err));
	}
	assert_memory_equal(restored, ram, 20 * PAGE);
	/* The decoder insists on the run's own size. */
	assert_false(savefile_run_decode(&run, restored, PAGE, &err));
	assert_non_null(strstr(err.text, "pages, not 4096 bytes"));
}

/*
 * savefile_memory_bound is never short of what the writer writes, for the
 * worst layout (data and zero pages alternating, none compressible) and a
 * mix, and is exact about the data: the raw pages are all in it.
 */
static void test_memory_bound(void **state)
{
	static const unsigned layouts = 3, pages = 64;

	(void)state;
	for (unsigned layout = 0; layout < layouts; layout++) {
		for (unsigned p = 0; p < pages; p++)
			for (size_t i = 0; i < PAGE; i++)
				ram[p * PAGE + i] = layout == 0 ? (p % 2 ? random_byte() : 0) :
						    layout == 1 ? random_byte() :
						    (p % 5 == 0 ? 0 : (uint8_t)(i % 7));
		uint64_t bound = savefile_memory_bound(ram, pages);
		start(pages * PAGE);
		assert_true(savefile_write_vcpu(&w, 0, vcpu_state, sizeof(vcpu_state)));
		uint64_t before = w.offset;
		assert_true(savefile_write_memory(&w, ram, pages, &ws, scratch));
		assert_true(w.offset - before <= bound);
		if (layout == 1)
			assert_true(bound - (w.offset - before) <
				    (2 * pages + 2) * (SAVEFILE_RUN_HEADER_SIZE +
						       SAVEFILE_RECORD_HEADER_SIZE));
	}
	assert_int_equal(savefile_memory_bound(ram, 0),
			 2 * (SAVEFILE_RUN_HEADER_SIZE + SAVEFILE_RECORD_HEADER_SIZE));
}

/* 256 MiB of zero RAM is a few records: zero runs carry no data. */
static void test_zero_pages_take_no_space(void **state)
{
	static const uint8_t zero_chunk[64 * PAGE];
	struct savefile_record rec;
	struct savefile_run run;
	uint64_t pages = (256u << 20) / PAGE;

	(void)state;
	start(pages * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, sizeof(vcpu_state)));
	for (uint64_t done = 0; done < pages; done += 64)
		assert_true(savefile_write_memory(&w, zero_chunk, 64, &ws, scratch));
	assert_true(savefile_finish(&w));
	assert_true(buf.size < 4096 * 28);
	assert_true(savefile_open(&r, file, buf.size, &err));
	assert_true(savefile_next(&r, &rec));
	assert_true(savefile_next(&r, &rec));
	assert_true(savefile_memory_run(&rec, &run, &err));
	assert_int_equal(run.encoding, SAVEFILE_RUN_ZERO);
	assert_int_equal(run.pages, 64);
	assert_int_equal(rec.size, SAVEFILE_RUN_HEADER_SIZE);
	/* One call with all the pages: one run. */
	start(8 * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, sizeof(vcpu_state)));
	assert_true(savefile_write_memory(&w, zero_chunk, 8, &ws, scratch));
	assert_true(savefile_finish(&w));
	assert_true(savefile_open(&r, file, buf.size, &err));
	assert_true(savefile_next(&r, &rec));
	assert_true(savefile_next(&r, &rec));
	assert_true(savefile_memory_run(&rec, &run, &err));
	assert_int_equal(run.pages, 8);
	assert_false(savefile_next(&r, &rec));
}

static void test_truncated_at_every_byte(void **state)
{
	size_t size;

	(void)state;
	size = write_small_file();
	assert_true(savefile_open(&r, file, size, &err));
	refused(file, 0, "not a vmm save file");
	for (size_t cut = 1; cut < size; cut++)
		refused(file, cut, "truncated");
	refused(file, size - 1, "truncated: record 7 (footer) is 16 bytes, 15 left, no footer");
	refused(file, record_offset(file, 2), "truncated: 0 bytes where record 2 should start");
}

static void test_every_bit_flipped(void **state)
{
	size_t size;

	(void)state;
	size = write_small_file();
	memcpy(copy, file, size);
	for (size_t bit = 0; bit < size * 8; bit++) {
		size_t at = bit / 8;
		const char *expected = at < 8 ? "not a vmm save file" :
				       at < 10 ? "format version" :
				       at < 12 ? "reserved prefix field" : "record ";

		copy[at] ^= (uint8_t)(1u << bit % 8);
		refused(copy, size, expected);
		copy[at] = file[at];
	}
	/* A device's damage names the device. */
	copy[record_offset(file, 2) + SAVEFILE_RECORD_HEADER_SIZE + 12] ^= 1;
	refused(copy, size, "record 2 (device 'pit'): checksum mismatch");
}

/* An import's first chunk: the header alone is read and checked, nothing after it. */
static void test_header_from_the_start(void **state)
{
	struct savefile_header h;
	size_t size, header_end;

	(void)state;
	size = write_small_file();
	assert_true(savefile_open(&r, file, size, &err));
	header_end = record_offset(file, 1);
	assert_true(savefile_read_header(file, header_end, &h, &err));
	assert_memory_equal(&h, &r.walk.header, sizeof(h));
	assert_true(savefile_read_header(file, size, &h, &err));
	assert_false(savefile_read_header(file, header_end - 1, &h, &err));
	assert_non_null(strstr(err.text, "truncated"));
	memcpy(copy, file, size);
	copy[header_end - 1] ^= 1;
	assert_false(savefile_read_header(copy, size, &h, &err));
	assert_non_null(strstr(err.text, "checksum mismatch"));
	assert_false(savefile_read_header((const uint8_t *)"hello", 5, &h, &err));
	assert_non_null(strstr(err.text, "not a vmm save file"));
	/* A file that does not begin with its header is refused as savefile_open refuses it. */
	assert_false(savefile_read_header(file, SAVEFILE_PREFIX_SIZE, &h, &err));

	/* The configuration record, when it comes next and lies whole in what is at hand. */
	struct savefile_record config;
	assert_false(savefile_read_config(file, size, &config)); /* a vCPU record comes next */
	start(4 * PAGE);
	assert_true(savefile_write_record(&w, SAVEFILE_CONFIG, 0, (const uint8_t *)"cfg", 3));
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, sizeof(vcpu_state)));
	memset(ram, 0, 4 * PAGE);
	assert_true(savefile_write_memory(&w, ram, 4, &ws, scratch));
	assert_true(savefile_finish(&w));
	size = buf.size;
	size_t config_end = record_offset(file, 2);
	assert_true(savefile_read_config(file, config_end, &config));
	assert_int_equal(config.type, SAVEFILE_CONFIG);
	assert_int_equal(config.size, 3);
	assert_memory_equal(config.payload, "cfg", 3);
	assert_false(savefile_read_config(file, config_end - 1, &config));
	assert_false(savefile_read_config(file, record_offset(file, 1), &config));
	memcpy(copy, file, size);
	copy[config_end - 1] ^= 1;
	assert_false(savefile_read_config(copy, size, &config));
}

static void test_foreign_and_newer_files(void **state)
{
	static const char elf[] = "\x7f" "ELF\2\1\1\0\0\0\0\0\0\0\0\0";
	size_t size;

	(void)state;
	refused((const uint8_t *)"hello, world\n", 13, "not a vmm save file");
	refused((const uint8_t *)elf, sizeof(elf), "not a vmm save file");
	refused((const uint8_t *)"VMM", 3, "truncated");
	size = write_small_file();
	file[8] = 3;
	refused(file, size, "format version 3 is newer than this build's 1");
	file[8] = 0;
	refused(file, size, "format version 0 is not valid");
}

static void test_unknown_records(void **state)
{
	static const uint8_t extra[] = "a later build's notes";
	struct savefile_record rec;
	size_t size, at;

	(void)state;
	memset(ram, 0, PAGE);
	start(PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, sizeof(vcpu_state)));
	/* The writer refuses what the reader could not read. */
	assert_true(savefile_write_record(&w, 0x42, 0, extra, sizeof(extra)));
	assert_true(savefile_write_memory(&w, ram, 1, &ws, scratch));
	assert_true(savefile_finish(&w));
	size = buf.size;
	/* Skippable: accepted, and savefile_next passes over it. */
	assert_true(savefile_open(&r, file, size, &err));
	assert_true(savefile_next(&r, &rec));
	assert_int_equal(rec.type, SAVEFILE_VCPU);
	assert_true(savefile_next(&r, &rec));
	assert_int_equal(rec.type, SAVEFILE_MEMORY);
	assert_int_equal(rec.index, 3);
	/* Must understand: refused, naming the type. */
	at = record_offset(file, 2);
	file[at + 2] = SAVEFILE_FLAG_MUST_UNDERSTAND;
	savefile_reseal(file, size, false);
	refused(file, size, "must-understand record type 0x0042 unknown (record 2)");
	file[at + 2] = 0x04;
	savefile_reseal(file, size, false);
	refused(file, size, "record 2 (type 0x0042): unknown flags 0x0004");

	/* Reserved flags on the header and the footer, a footer first. */
	size = write_small_file();
	file[SAVEFILE_PREFIX_SIZE + 3] = 0x80;
	savefile_reseal(file, size, false);
	refused(file, size, "record 0 (header): unknown flags 0x8001");
	file[SAVEFILE_PREFIX_SIZE + 3] = 0;
	at = record_offset(file, 7);
	file[at + 2] = 0x03;
	savefile_reseal(file, size, false);
	refused(file, size, "record 7 (footer): unknown flags 0x0003");
	file[at + 2] = SAVEFILE_FLAG_MUST_UNDERSTAND;
	savefile_reseal(file, size, false);
	memmove(file + SAVEFILE_PREFIX_SIZE, file + at, size - at);
	refused(file, SAVEFILE_PREFIX_SIZE + size - at, "record 0 (footer): the first record must be the header");

	start(PAGE);
	assert_false(savefile_write_record(&w, 0x42, SAVEFILE_FLAG_MUST_UNDERSTAND, extra, 3));
	assert_string_equal(w.error.text, "must-understand record type 0x0042 unknown (record 1)");
}

static void test_bad_lengths(void **state)
{
	size_t size, at;

	(void)state;
	size = write_small_file();
	memcpy(copy, file, size);
	/* A length beyond any record. */
	at = record_offset(copy, 1);
	le_put(copy + at + 4, SAVEFILE_RECORD_MAX + 1, 4);
	refused(copy, size, "record 1 (vcpu): length 131073 exceeds the limit of 131072");
	/* One byte longer: the next record is misread from a byte too far. */
	le_put(copy + at + 4, le_get(file + at + 4, 4) + 1, 4);
	savefile_reseal(copy, size, false);
	refused(copy, size, "record 2 (type 0x0100): length");
	/* A device record whose state length disagrees with the record's. */
	memcpy(copy, file, size);
	at = record_offset(copy, 2) + SAVEFILE_RECORD_HEADER_SIZE;
	copy[at + 6] = 5;
	savefile_reseal(copy, size, false);
	refused(copy, size, "record 2 (device 'pit'): device state of 5 bytes in a record with room for 4");
	/* A footer of the wrong size. */
	memcpy(copy, file, size);
	at = record_offset(copy, 7);
	le_put(copy + at + 4, 15, 4);
	savefile_reseal(copy, size - 1, false);
	refused(copy, size - 1, "footer: 15 bytes, not 16");
	/* A compressed run said to be raw: its data is not a page. */
	memcpy(copy, file, size);
	at = record_offset(copy, 5) + SAVEFILE_RECORD_HEADER_SIZE;
	copy[at + 12] = SAVEFILE_RUN_RAW;
	savefile_reseal(copy, size, false);
	refused(copy, size, "bytes of data for 1 pages");
	/* A run one page longer than it was: the next one overlaps it. */
	memcpy(copy, file, size);
	copy[at + 8] = 2;
	savefile_reseal(copy, size, false);
	refused(copy, size, "record 6 (memory): run at GPA 0x2000, expected 0x3000");
	/* A run beyond the RAM. */
	copy[at + 8] = 4;
	savefile_reseal(copy, size, false);
	refused(copy, size, "record 5 (memory): run of 4 pages at GPA 0x1000 does not fit in 16384 bytes of RAM");
}

static void test_after_the_footer(void **state)
{
	size_t size, footer;

	(void)state;
	size = write_small_file();
	footer = record_offset(file, 7);
	memcpy(file + size, file + footer, size - footer);
	refused(file, size + (size - footer), "a duplicate footer at offset");
	memcpy(file + size, "xyz", 3);
	refused(file, size + 3, "3 bytes of data after the footer");
	/* The footer's count and length are its own. */
	le_put(file + footer + SAVEFILE_RECORD_HEADER_SIZE + 8, 8, 4);
	savefile_reseal(file, size, false);
	refused(file, size, "footer: 7 records before it, the footer says 8");
	le_put(file + footer + SAVEFILE_RECORD_HEADER_SIZE + 8, 7, 4);
	le_put(file + footer + SAVEFILE_RECORD_HEADER_SIZE, 1, 8);
	savefile_reseal(file, size, false);
	refused(file, size, "the footer says 1");
}

/* Compressed data with good checksums but a bad block: open accepts, decode refuses. */
static void test_hostile_memory_run(void **state)
{
	struct savefile_record rec;
	struct savefile_run run;
	size_t size, at;

	(void)state;
	size = write_small_file();
	at = record_offset(file, 5) + SAVEFILE_RECORD_HEADER_SIZE + SAVEFILE_RUN_HEADER_SIZE;
	/* The first sequence's token: 15 literals and more, then a match back 0. */
	file[at + 1] = 0x20;
	savefile_reseal(file, size, false);
	assert_true(savefile_open(&r, file, size, &err));
	while (savefile_next(&r, &rec) && rec.type != SAVEFILE_MEMORY)
		;
	while (savefile_memory_run(&rec, &run, &err) && run.encoding != SAVEFILE_RUN_LZ)
		assert_true(savefile_next(&r, &rec));
	assert_false(savefile_run_decode(&run, restored, run.pages * PAGE, &err));
	assert_non_null(strstr(err.text, "run at 0x1000: "));
}

static void test_header_rules(void **state)
{
	struct savefile_header h = test_header(PAGE);
	size_t size, at;

	(void)state;
	buf = (struct savefile_buffer){ .data = file, .capacity = sizeof(file) };
	assert_true(savefile_writer_init(&w, savefile_buffer_sink, &buf));
	h.ram_bytes = PAGE + 1;
	assert_false(savefile_write_header(&w, &h));
	assert_non_null(strstr(w.error.text, "RAM size 4097 is not a whole number of pages"));

	h = test_header(PAGE);
	h.cpu_features |= 1ull << 63;
	assert_true(savefile_writer_init(&w, savefile_buffer_sink, &buf));
	assert_false(savefile_write_header(&w, &h));
	assert_string_equal(w.error.text, "header: CPU feature bit 63 is unknown to this build");

	h = test_header(PAGE);
	strcpy(h.nics[0].network, "l an");
	assert_true(savefile_writer_init(&w, savefile_buffer_sink, &buf));
	assert_false(savefile_write_header(&w, &h));
	assert_non_null(strstr(w.error.text, "NIC 0's network name"));

	/* An unknown header field: skipped, or refused when it must be understood. */
	size = write_small_file();
	at = record_offset(file, 0) + SAVEFILE_RECORD_HEADER_SIZE;
	le_put(file + at, 0x0077, 2); /* the name field, now of an unknown tag */
	savefile_reseal(file, size, false);
	refused(file, size, "header: the 'name' field is missing");
	le_put(file + at, 0x8077, 2);
	savefile_reseal(file, size, false);
	refused(file, size, "header: must-understand field 0x8077 unknown");
	/* A later, optional field after all the required ones: read past. */
	size = write_small_file();
	le_put(file + at + le_get(file + record_offset(file, 0) + 4, 4) - 12, 0x0077, 2);
	savefile_reseal(file, size, false);
	assert_true(savefile_open(&r, file, size, &err));
	assert_int_equal(r.walk.header.saved_at, 0);
}

static void test_writer_rules(void **state)
{
	uint8_t small[40];
	struct savefile_buffer tiny = { .data = small, .capacity = sizeof(small) };

	(void)state;
	memset(ram, 0, 2 * PAGE);
	buf = (struct savefile_buffer){ .data = file, .capacity = sizeof(file) };
	assert_true(savefile_writer_init(&w, savefile_buffer_sink, &buf));
	assert_false(savefile_write_vcpu(&w, 0, vcpu_state, 4));
	assert_string_equal(w.error.text, "the header must be the first record");

	start(2 * PAGE);
	assert_false(savefile_write_vcpu(&w, 1, vcpu_state, 4));
	assert_string_equal(w.error.text, "vcpu: vCPU 1, but the VM has 1");
	assert_false(savefile_finish(&w)); /* a refusal stops the writer */

	start(2 * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, 4));
	assert_false(savefile_write_vcpu(&w, 0, vcpu_state, 4));
	assert_string_equal(w.error.text, "vcpu: a second record for vCPU 0");

	start(2 * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, 4));
	assert_true(savefile_write_device(&w, pit_record, sizeof(pit_record)));
	assert_false(savefile_write_device(&w, pit_record, sizeof(pit_record)));
	assert_string_equal(w.error.text, "record 3 (device 'pit'): a second record for this device");

	start(2 * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, 4));
	assert_true(savefile_write_memory(&w, ram, 1, &ws, scratch));
	assert_false(savefile_finish(&w));
	assert_string_equal(w.error.text, "memory runs cover 4096 of 8192 bytes of RAM");

	start(2 * PAGE);
	assert_true(savefile_write_memory(&w, ram, 2, &ws, scratch));
	assert_false(savefile_write_memory(&w, ram, 1, &ws, scratch));
	assert_non_null(strstr(w.error.text, "does not fit in 8192 bytes of RAM"));

	start(2 * PAGE);
	assert_true(savefile_write_memory(&w, ram, 2, &ws, scratch));
	assert_false(savefile_finish(&w));
	assert_string_equal(w.error.text, "vCPU 0 has no record");

	start(2 * PAGE);
	assert_true(savefile_write_vcpu(&w, 0, vcpu_state, 4));
	assert_true(savefile_write_memory(&w, ram, 2, &ws, scratch));
	assert_true(savefile_finish(&w));
	assert_false(savefile_write_record(&w, SAVEFILE_CONSOLE, 0, console_text, 3));
	assert_string_equal(w.error.text, "the file is already finished");

	/* A sink that fills up stops the writer. */
	assert_true(savefile_writer_init(&w, savefile_buffer_sink, &tiny));
	{
		struct savefile_header h = test_header(PAGE);

		assert_false(savefile_write_header(&w, &h));
	}
	assert_non_null(strstr(w.error.text, "the sink refused"));
	assert_true(tiny.size <= sizeof(small));
}

static uint8_t moved[FILE_MAX];
static struct savefile_buffer moved_buf;

/* A writer into moved with the file's records copied into it, footer not written. */
static void copy_into_moved(struct savefile_writer *mw, size_t size)
{
	struct savefile_record rec;

	moved_buf = (struct savefile_buffer){ .data = moved, .capacity = sizeof(moved) };
	assert_true(savefile_open(&r, file, size, &err));
	assert_true(savefile_writer_init(mw, savefile_buffer_sink, &moved_buf));
	assert_true(savefile_write_header(mw, &r.walk.header));
	while (savefile_next(&r, &rec))
		assert_true(savefile_copy_record(mw, &rec));
}

/*
 * A move with the disk (vmmctl export --with-disk): a file copied record
 * by record, then a disk of 5 sectors and a half-zero page written after
 * it, read back, and the disk records' rules.
 */
static void test_disk_carried(void **state)
{
	static uint8_t disk[3 * PAGE];
	struct savefile_writer mw;
	struct savefile_record rec;
	struct savefile_run run;
	uint64_t disk_bytes = 2 * PAGE + 5 * SAVEFILE_DISK_SECTOR, at = 0;
	size_t size;
	unsigned runs = 0;

	(void)state;
	size = write_small_file();
	memset(disk, 0, sizeof(disk));
	for (size_t i = 2 * PAGE; i < disk_bytes; i++)
		disk[i] = random_byte();
	lz_workspace_init(&ws);
	copy_into_moved(&mw, size);
	assert_true(savefile_write_disk(&mw, disk_bytes));
	assert_true(savefile_write_disk_pages(&mw, disk, 1, &ws, scratch));
	assert_true(savefile_write_disk_pages(&mw, disk + PAGE, 2, &ws, scratch));
	assert_true(savefile_finish(&mw));
	assert_true(moved_buf.size <= size + savefile_disk_bound(disk_bytes));

	assert_true(savefile_open(&r, moved, moved_buf.size, &err));
	assert_int_equal(r.walk.disk_bytes, disk_bytes);
	while (savefile_next(&r, &rec)) {
		if (rec.type != SAVEFILE_DISK_RUN)
			continue;
		assert_true(savefile_memory_run(&rec, &run, &err));
		assert_int_equal(run.gpa, at);
		if (run.encoding != SAVEFILE_RUN_ZERO)
			assert_true(savefile_run_decode(&run, restored, run.pages * PAGE, &err));
		else
			memset(restored, 0, run.pages * PAGE);
		assert_memory_equal(restored, disk + at, run.pages * PAGE);
		at += run.pages * PAGE;
		runs++;
	}
	assert_int_equal(at, 3 * PAGE);
	assert_int_equal(runs, 3); /* two zero pages, one a piece (runs do not span pieces), data */

	/* The footer wants the whole disk; runs want a disk record before them. */
	copy_into_moved(&mw, size);
	assert_false(savefile_write_disk_pages(&mw, disk, 1, &ws, scratch));
	assert_string_equal(mw.error.text, "disk run: a disk run without a disk record before it");

	copy_into_moved(&mw, size);
	assert_true(savefile_write_disk(&mw, disk_bytes));
	assert_true(savefile_write_disk_pages(&mw, disk, 2, &ws, scratch));
	assert_false(savefile_finish(&mw));
	assert_string_equal(mw.error.text, "disk runs cover 8192 of the disk's 12288 bytes");

	copy_into_moved(&mw, size);
	assert_false(savefile_write_disk(&mw, 1000));
	assert_non_null(strstr(mw.error.text, "a disk of 1000 bytes (whole 512-byte sectors"));

	copy_into_moved(&mw, size);
	assert_true(savefile_write_disk(&mw, PAGE));
	assert_false(savefile_write_disk(&mw, PAGE));
	assert_non_null(strstr(mw.error.text, "a second disk"));

	/* Runs go through their own calls, not as any record. */
	copy_into_moved(&mw, size);
	assert_false(savefile_write_record(&mw, SAVEFILE_DISK_RUN, 1, moved, 16));
}

static void test_cpu_features(void **state)
{
	uint64_t host = 1u << SAVEFILE_CPU_SSE4_2 | 1u << SAVEFILE_CPU_AES;

	(void)state;
	assert_true(savefile_cpu_supported(1u << SAVEFILE_CPU_AES, host, &err));
	assert_true(savefile_cpu_supported(0, 0, &err));
	assert_false(savefile_cpu_supported(1u << SAVEFILE_CPU_AES | 1u << SAVEFILE_CPU_BMI2, host,
					    &err));
	assert_string_equal(err.text,
			    "the saved state relies on CPU feature 'bmi2', which this host lacks");
	assert_false(savefile_cpu_supported(1ull << 40, host, &err));
	assert_non_null(strstr(err.text, "bit 40, unknown to this build"));
	for (unsigned bit = 0; bit < SAVEFILE_CPU_FEATURE_COUNT; bit++)
		assert_non_null(savefile_cpu_feature_name(bit));
	assert_null(savefile_cpu_feature_name(SAVEFILE_CPU_FEATURE_COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_incompressible_is_raw),
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_zero_pages_take_no_space),
		cmocka_unit_test(test_truncated_at_every_byte),
		cmocka_unit_test(test_every_bit_flipped),
		cmocka_unit_test(test_header_from_the_start),
		cmocka_unit_test(test_foreign_and_newer_files),
		cmocka_unit_test(test_unknown_records),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_after_the_footer),
		cmocka_unit_test(test_hostile_memory_run),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_writer_rules),
		cmocka_unit_test(test_disk_carried),
		cmocka_unit_test(test_cpu_features),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
