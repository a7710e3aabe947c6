/*
 * The save file codec (docs/savefile.md). The reader and the writer hold
 * every record to the same rules (struct savefile_walk and the check_*
 * functions below), so a file this writer accepts is one the reader
 * accepts, and the writer refuses what the reader would.
 */
#include "vmm/savefile.h"

#include <stdarg.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/fmt.h"
#include "lib/le.h"

static const uint8_t savefile_magic[SAVEFILE_MAGIC_SIZE] = { 'V', 'M', 'M', 'S', 'A', 'V', 'E', 0x1a };

#define FOOTER_SIZE 16u /* file length u64, record count u32, stream checksum u32 */
#define DEVICE_HEADER_MIN (1u + 1u + 2u + 4u) /* name length, name, version, length */
/* Bytes of a record header the checksum covers: type, flags, length. */
#define RECORD_CHECKED_HEADER 8u
#define DESCRIPTION_MAX 48u

/* Header fields: a tag (bit 15: must understand), a length, the value. */
#define TAG_MUST_UNDERSTAND 0x8000u
enum header_tag {
	TAG_NAME = 1,
	TAG_RAM_BYTES,
	TAG_BOOT_MODE,
	TAG_VCPUS,
	TAG_CPU_FEATURES,
	TAG_NIC,
	TAG_SAVED_AT,
	TAG_COUNT
};

struct header_field {
	const char *name;
	uint16_t min_size, max_size;
	bool required;
	bool repeats;
};

static const struct header_field header_fields[TAG_COUNT] = {
	[TAG_NAME] = { "name", 1, SAVEFILE_NAME_MAX - 1, true, false },
	[TAG_RAM_BYTES] = { "ram_bytes", 8, 8, true, false },
	[TAG_BOOT_MODE] = { "boot_mode", 1, 1, true, false },
	[TAG_VCPUS] = { "vcpus", 4, 4, true, false },
	[TAG_CPU_FEATURES] = { "cpu_features", 8, 8, true, false },
	/* The network's name may be empty: the adapter is detached. */
	[TAG_NIC] = { "nic", 6, 6 + SAVEFILE_NAME_MAX - 1, false, true },
	[TAG_SAVED_AT] = { "saved_at", 8, 8, false, false },
};

/* A header's largest encoding: every field at its longest, NICs included. */
#define HEADER_FIELD_OVERHEAD 4u
#define HEADER_MAX                                                                    \
	(HEADER_FIELD_OVERHEAD * (TAG_COUNT - 1 + SAVEFILE_NICS_MAX) + SAVEFILE_NAME_MAX + \
	 8u + 1u + 4u + 8u + 8u + SAVEFILE_NICS_MAX * (6u + SAVEFILE_NAME_MAX))

static const char *const cpu_feature_names[SAVEFILE_CPU_FEATURE_COUNT] = {
	[SAVEFILE_CPU_SSE3] = "sse3",
	[SAVEFILE_CPU_PCLMULQDQ] = "pclmulqdq",
	[SAVEFILE_CPU_SSSE3] = "ssse3",
	[SAVEFILE_CPU_CX16] = "cx16",
	[SAVEFILE_CPU_SSE4_1] = "sse4_1",
	[SAVEFILE_CPU_SSE4_2] = "sse4_2",
	[SAVEFILE_CPU_MOVBE] = "movbe",
	[SAVEFILE_CPU_POPCNT] = "popcnt",
	[SAVEFILE_CPU_AES] = "aes",
	[SAVEFILE_CPU_RDRAND] = "rdrand",
	[SAVEFILE_CPU_FSGSBASE] = "fsgsbase",
	[SAVEFILE_CPU_BMI1] = "bmi1",
	[SAVEFILE_CPU_SMEP] = "smep",
	[SAVEFILE_CPU_BMI2] = "bmi2",
	[SAVEFILE_CPU_ERMS] = "erms",
	[SAVEFILE_CPU_ADX] = "adx",
	[SAVEFILE_CPU_SMAP] = "smap",
	[SAVEFILE_CPU_CLFLUSHOPT] = "clflushopt",
	[SAVEFILE_CPU_LZCNT] = "lzcnt",
	[SAVEFILE_CPU_PAGE1GB] = "page1gb",
	[SAVEFILE_CPU_NX] = "nx",
	[SAVEFILE_CPU_XSAVE] = "xsave",
	[SAVEFILE_CPU_AVX] = "avx",
	[SAVEFILE_CPU_FMA] = "fma",
	[SAVEFILE_CPU_F16C] = "f16c",
	[SAVEFILE_CPU_AVX2] = "avx2",
	[SAVEFILE_CPU_AVX512F] = "avx512f",
	[SAVEFILE_CPU_AVX512DQ] = "avx512dq",
	[SAVEFILE_CPU_AVX512CD] = "avx512cd",
	[SAVEFILE_CPU_AVX512BW] = "avx512bw",
	[SAVEFILE_CPU_AVX512VL] = "avx512vl",
	[SAVEFILE_CPU_XSAVEOPT] = "xsaveopt",
	[SAVEFILE_CPU_XSAVEC] = "xsavec",
	[SAVEFILE_CPU_XSAVES] = "xsaves",
	[SAVEFILE_CPU_SPEC_CTRL] = "spec_ctrl",
	[SAVEFILE_CPU_STIBP] = "stibp",
	[SAVEFILE_CPU_SSBD] = "ssbd",
	[SAVEFILE_CPU_L1D_FLUSH] = "flush_l1d",
	[SAVEFILE_CPU_ARCH_CAPABILITIES] = "arch_capabilities",
};

_Static_assert(SAVEFILE_CPU_FEATURE_COUNT <= 64, "CPU features are a 64-bit set");
_Static_assert(SAVEFILE_VCPUS_MAX <= 64, "vcpus_seen is a 64-bit set");
_Static_assert(SAVEFILE_RUN_HEADER_SIZE + LZ_COMPRESS_BOUND(LZ_BLOCK_MAX) <= SAVEFILE_RECORD_MAX,
	       "a memory run fits in a record");
_Static_assert(SAVEFILE_PAGE_SIZE * SAVEFILE_RUN_PAGES_MAX == LZ_BLOCK_MAX,
	       "a run is one LZ block");

__attribute__((format(printf, 2, 3))) static bool fail(struct savefile_error *err,
							const char *format, ...)
{
	va_list args;

	va_start(args, format);
	fmt_vsnprintf(err->text, sizeof(err->text), format, args);
	va_end(args);
	return false;
}

const char *savefile_cpu_feature_name(unsigned bit)
{
	return bit < SAVEFILE_CPU_FEATURE_COUNT ? cpu_feature_names[bit] : NULL;
}

bool savefile_cpu_supported(uint64_t needed, uint64_t host_features, struct savefile_error *err)
{
	uint64_t missing = needed & ~host_features;

	for (unsigned bit = 0; bit < 64; bit++) {
		const char *name = savefile_cpu_feature_name(bit);

		if (!(missing >> bit & 1))
			continue;
		if (name)
			return fail(err, "the saved state relies on CPU feature '%s', which this host lacks",
				    name);
		return fail(err, "the saved state relies on CPU feature bit %u, unknown to this build",
			    bit);
	}
	return true;
}

/* Names the byte as something a message may quote: printable, no quote. */
static bool name_char(uint8_t c)
{
	return c > ' ' && c < 0x7f && c != '\'';
}

/* The length of s, or max when s has no NUL in its first max bytes. */
static size_t bounded_length(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

static bool printable_name(const uint8_t *p, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (!name_char(p[i]))
			return false;
	return true;
}

static const char *type_name(uint16_t type)
{
	switch (type) {
	case SAVEFILE_HEADER:
		return "header";
	case SAVEFILE_VCPU:
		return "vcpu";
	case SAVEFILE_DEVICE:
		return "device";
	case SAVEFILE_MEMORY:
		return "memory";
	case SAVEFILE_CONSOLE:
		return "console";
	case SAVEFILE_CONFIG:
		return "config";
	case SAVEFILE_DISK:
		return "disk";
	case SAVEFILE_DISK_RUN:
		return "disk run";
	case SAVEFILE_FOOTER:
		return "footer";
	}
	return NULL;
}

/*
 * "record 5 (device 'pit')" for messages: the device name is quoted when
 * the bytes available hold a plausible one, whether or not the record
 * later turns out to be damaged (it says where to look).
 */
static void describe(char *out, uint32_t index, uint16_t type, const uint8_t *payload,
		     size_t available)
{
	const char *name = type_name(type);

	if (type == SAVEFILE_DEVICE && available >= 1 && payload[0] >= 1 &&
	    payload[0] <= SAVEFILE_DEVICE_NAME_MAX && available - 1 >= payload[0] &&
	    printable_name(payload + 1, payload[0]))
		fmt_snprintf(out, DESCRIPTION_MAX, "record %u (device '%.*s')", index,
			     (int)payload[0], (const char *)payload + 1);
	else if (name)
		fmt_snprintf(out, DESCRIPTION_MAX, "record %u (%s)", index, name);
	else
		fmt_snprintf(out, DESCRIPTION_MAX, "record %u (type 0x%04x)", index, type);
}

/* ------------------------------------------------------------ record rules */

static bool parse_header(const uint8_t *p, size_t size, struct savefile_header *h,
			 struct savefile_error *err)
{
	unsigned seen = 0;
	size_t pos = 0;

	memset(h, 0, sizeof(*h));
	while (pos < size) {
		uint16_t tag, len, id;
		const uint8_t *v;

		if (size - pos < HEADER_FIELD_OVERHEAD)
			return fail(err, "header: field at byte %zu is cut short", pos);
		tag = (uint16_t)le_get(p + pos, 2);
		len = (uint16_t)le_get(p + pos + 2, 2);
		v = p + pos + HEADER_FIELD_OVERHEAD;
		if (len > size - pos - HEADER_FIELD_OVERHEAD)
			return fail(err, "header: field 0x%04x runs past the record", tag);
		pos += HEADER_FIELD_OVERHEAD + len;
		id = tag & ~TAG_MUST_UNDERSTAND;
		if (id == 0 || id >= TAG_COUNT) {
			if (tag & TAG_MUST_UNDERSTAND)
				return fail(err, "header: must-understand field 0x%04x unknown", tag);
			continue;
		}
		if (len < header_fields[id].min_size || len > header_fields[id].max_size)
			return fail(err, "header: field '%s' is %u bytes, not %u..%u",
				    header_fields[id].name, len, header_fields[id].min_size,
				    header_fields[id].max_size);
		if ((seen >> id & 1) && !header_fields[id].repeats)
			return fail(err, "header: field '%s' appears twice", header_fields[id].name);
		seen |= 1u << id;
		switch ((enum header_tag)id) {
		case TAG_NAME:
			if (!printable_name(v, len))
				return fail(err, "header: the VM name has a character names may not have");
			memcpy(h->name, v, len);
			break;
		case TAG_RAM_BYTES:
			h->ram_bytes = le_get(v, 8);
			if (h->ram_bytes == 0 || h->ram_bytes > SAVEFILE_RAM_MAX ||
			    h->ram_bytes % SAVEFILE_PAGE_SIZE)
				return fail(err, "header: RAM size %llu is not a whole number of pages "
						 "up to %llu",
					    (unsigned long long)h->ram_bytes,
					    (unsigned long long)SAVEFILE_RAM_MAX);
			break;
		case TAG_BOOT_MODE:
			if (v[0] > SAVEFILE_BOOT_LINUX)
				return fail(err, "header: boot mode %u unknown", v[0]);
			h->boot_mode = (enum savefile_boot_mode)v[0];
			break;
		case TAG_VCPUS:
			h->vcpus = (uint32_t)le_get(v, 4);
			if (h->vcpus == 0 || h->vcpus > SAVEFILE_VCPUS_MAX)
				return fail(err, "header: %u vCPUs, not 1..%u", h->vcpus,
					    SAVEFILE_VCPUS_MAX);
			break;
		case TAG_CPU_FEATURES:
			h->cpu_features = le_get(v, 8);
			for (unsigned bit = SAVEFILE_CPU_FEATURE_COUNT; bit < 64; bit++)
				if (h->cpu_features >> bit & 1)
					return fail(err, "header: CPU feature bit %u is unknown to this "
							 "build", bit);
			break;
		case TAG_NIC:
			if (h->nic_count == SAVEFILE_NICS_MAX)
				return fail(err, "header: more than %u NICs", SAVEFILE_NICS_MAX);
			if (!printable_name(v + 6, len - 6u))
				return fail(err, "header: NIC %u's network name has a character names "
						 "may not have", h->nic_count);
			memcpy(h->nics[h->nic_count].mac, v, 6);
			memcpy(h->nics[h->nic_count].network, v + 6, len - 6u);
			h->nic_count++;
			break;
		case TAG_SAVED_AT:
			h->saved_at = le_get(v, 8);
			break;
		case TAG_COUNT:
			break;
		}
	}
	for (unsigned id = 1; id < TAG_COUNT; id++)
		if (header_fields[id].required && !(seen >> id & 1))
			return fail(err, "header: the '%s' field is missing", header_fields[id].name);
	return true;
}

static bool check_vcpu(struct savefile_walk *walk, const char *what, uint32_t index,
		       struct savefile_error *err)
{
	if (index >= walk->header.vcpus)
		return fail(err, "%s: vCPU %u, but the VM has %u", what, index, walk->header.vcpus);
	if (walk->vcpus_seen >> index & 1)
		return fail(err, "%s: a second record for vCPU %u", what, index);
	walk->vcpus_seen |= 1ull << index;
	return true;
}

/* A device record's payload is one record of docs/devices.md: name, version, length, state. */
static bool check_device(struct savefile_walk *walk, const char *what, const uint8_t *p,
			 size_t size, struct savefile_error *err)
{
	size_t name_len, state_len;

	if (size < DEVICE_HEADER_MIN || p[0] == 0 || p[0] > SAVEFILE_DEVICE_NAME_MAX ||
	    size - DEVICE_HEADER_MIN < (size_t)p[0] - 1 || !printable_name(p + 1, p[0]))
		return fail(err, "%s: not a device state record (docs/devices.md)", what);
	name_len = p[0];
	state_len = le_get(p + 1 + name_len + 2, 4);
	if (state_len != size - (name_len + DEVICE_HEADER_MIN - 1))
		return fail(err, "%s: device state of %zu bytes in a record with room for %zu", what,
			    state_len, size - (name_len + DEVICE_HEADER_MIN - 1));
	for (unsigned i = 0; i < walk->devices; i++)
		if (strlen(walk->device_names[i]) == name_len &&
		    memcmp(walk->device_names[i], p + 1, name_len) == 0)
			return fail(err, "%s: a second record for this device", what);
	if (walk->devices == SAVEFILE_DEVICES_MAX)
		return fail(err, "%s: more than %u devices", what, SAVEFILE_DEVICES_MAX);
	memcpy(walk->device_names[walk->devices], p + 1, name_len);
	walk->device_names[walk->devices][name_len] = '\0';
	walk->devices++;
	return true;
}

/* A carried disk's whole pages: its runs cover them, the last one's tail zero. */
static uint64_t disk_run_bytes(uint64_t disk_bytes)
{
	return (disk_bytes + SAVEFILE_PAGE_SIZE - 1) / SAVEFILE_PAGE_SIZE * SAVEFILE_PAGE_SIZE;
}

/* Where runs of a record type go: RAM from GPA 0, or the carried disk from offset 0. */
struct run_space {
	const char *at;      /* "GPA", "disk offset" */
	const char *of;      /* "RAM", "the disk" */
	uint64_t size;
	uint64_t *next;
};

static struct run_space run_space(struct savefile_walk *walk, uint16_t type)
{
	if (type == SAVEFILE_DISK_RUN)
		return (struct run_space){ "disk offset", "the disk",
					   disk_run_bytes(walk->disk_bytes), &walk->next_disk };
	return (struct run_space){ "GPA", "RAM", walk->header.ram_bytes, &walk->next_gpa };
}

static bool check_run(struct savefile_walk *walk, uint16_t type, const char *what,
		      const struct savefile_run *run, struct savefile_error *err)
{
	struct run_space space = run_space(walk, type);
	uint64_t run_bytes = (uint64_t)run->pages * SAVEFILE_PAGE_SIZE;
	size_t expected_min = 0, expected_max = 0;

	if (type == SAVEFILE_DISK_RUN && !walk->disk_bytes)
		return fail(err, "%s: a disk run without a disk record before it", what);
	if (run->encoding != SAVEFILE_RUN_ZERO && run->pages > SAVEFILE_RUN_PAGES_MAX)
		return fail(err, "%s: a data run of %u pages (at most %u)", what, run->pages,
			    SAVEFILE_RUN_PAGES_MAX);
	if (run->gpa != *space.next)
		return fail(err, "%s: run at %s 0x%llx, expected 0x%llx (runs go in order, no gaps)",
			    what, space.at, (unsigned long long)run->gpa,
			    (unsigned long long)*space.next);
	if (run->pages == 0 || run_bytes > space.size - run->gpa)
		return fail(err, "%s: run of %u pages at %s 0x%llx does not fit in %llu bytes of %s",
			    what, run->pages, space.at, (unsigned long long)run->gpa,
			    (unsigned long long)space.size, space.of);
	switch (run->encoding) {
	case SAVEFILE_RUN_ZERO:
		break;
	case SAVEFILE_RUN_RAW:
		expected_min = expected_max = (size_t)run_bytes;
		break;
	case SAVEFILE_RUN_LZ:
		expected_min = 1;
		expected_max = LZ_COMPRESS_BOUND((size_t)run_bytes);
		break;
	}
	if (run->data_size < expected_min || run->data_size > expected_max)
		return fail(err, "%s: %u bytes of data for %u pages", what, run->data_size,
			    run->pages);
	*space.next += run_bytes;
	return true;
}

static bool check_disk(struct savefile_walk *walk, const char *what, const uint8_t *p,
		       size_t size, struct savefile_error *err)
{
	if (walk->disk_bytes)
		return fail(err, "%s: a second disk", what);
	if (size != 8)
		return fail(err, "%s: %zu bytes, not a disk size's 8", what, size);
	uint64_t bytes = le_get(p, 8);
	if (bytes < SAVEFILE_DISK_SECTOR || bytes > SAVEFILE_DISK_MAX || bytes % SAVEFILE_DISK_SECTOR)
		return fail(err, "%s: a disk of %llu bytes (whole %u-byte sectors, at most %llu)",
			    what, (unsigned long long)bytes, SAVEFILE_DISK_SECTOR,
			    (unsigned long long)SAVEFILE_DISK_MAX);
	walk->disk_bytes = bytes;
	return true;
}

static bool parse_run(const char *what, const uint8_t *p, size_t size, struct savefile_run *run,
		      struct savefile_error *err)
{
	if (size < SAVEFILE_RUN_HEADER_SIZE)
		return fail(err, "%s: %zu bytes, shorter than a run header", what, size);
	if (p[12] > SAVEFILE_RUN_LZ)
		return fail(err, "%s: run encoding %u unknown", what, p[12]);
	if (p[13] | p[14] | p[15])
		return fail(err, "%s: reserved run header bytes are not zero", what);
	run->gpa = le_get(p, 8);
	run->pages = (uint32_t)le_get(p + 8, 4);
	run->encoding = (enum savefile_run_encoding)p[12];
	run->data = p + SAVEFILE_RUN_HEADER_SIZE;
	run->data_size = (uint32_t)(size - SAVEFILE_RUN_HEADER_SIZE);
	return true;
}

static bool check_flags(const char *what, uint16_t flags, struct savefile_error *err)
{
	if (flags & ~SAVEFILE_FLAG_MUST_UNDERSTAND)
		return fail(err, "%s: unknown flags 0x%04x", what, flags);
	return true;
}

/*
 * The rules for one record before the footer, by type; unknown types by
 * their flag. The header comes first and only first.
 */
static bool check_record(struct savefile_walk *walk, uint16_t type, uint16_t flags,
			 const uint8_t *p, size_t size, struct savefile_error *err)
{
	char what[DESCRIPTION_MAX];
	struct savefile_run run;

	describe(what, walk->index, type, p, size);
	if (!check_flags(what, flags, err))
		return false;
	if (walk->index == 0 && type != SAVEFILE_HEADER)
		return fail(err, "%s: the first record must be the header", what);
	switch (type) {
	case SAVEFILE_HEADER:
		if (walk->index != 0)
			return fail(err, "%s: a second header", what);
		return parse_header(p, size, &walk->header, err);
	case SAVEFILE_VCPU:
		if (size < 4)
			return fail(err, "%s: %zu bytes, too short for a vCPU index", what, size);
		return check_vcpu(walk, what, (uint32_t)le_get(p, 4), err);
	case SAVEFILE_DEVICE:
		return check_device(walk, what, p, size, err);
	case SAVEFILE_MEMORY:
	case SAVEFILE_DISK_RUN:
		return parse_run(what, p, size, &run, err) && check_run(walk, type, what, &run, err);
	case SAVEFILE_DISK:
		return check_disk(walk, what, p, size, err);
	case SAVEFILE_CONSOLE:
		if (walk->console_seen)
			return fail(err, "%s: a second console history", what);
		walk->console_seen = true;
		return true;
	case SAVEFILE_CONFIG:
		if (walk->config_seen)
			return fail(err, "%s: a second configuration", what);
		walk->config_seen = true;
		return true;
	case SAVEFILE_FOOTER:
		return fail(err, "%s: a footer is written by savefile_finish", what);
	}
	if (flags & SAVEFILE_FLAG_MUST_UNDERSTAND)
		return fail(err, "must-understand record type 0x%04x unknown (record %u)", type,
			    walk->index);
	return true;
}

/* What a complete file must hold, checked at its footer. */
static bool check_complete(const struct savefile_walk *walk, struct savefile_error *err)
{
	if (walk->next_gpa != walk->header.ram_bytes)
		return fail(err, "memory runs cover %llu of %llu bytes of RAM",
			    (unsigned long long)walk->next_gpa,
			    (unsigned long long)walk->header.ram_bytes);
	if (walk->next_disk != disk_run_bytes(walk->disk_bytes))
		return fail(err, "disk runs cover %llu of the disk's %llu bytes",
			    (unsigned long long)walk->next_disk,
			    (unsigned long long)disk_run_bytes(walk->disk_bytes));
	for (uint32_t i = 0; i < walk->header.vcpus; i++)
		if (!(walk->vcpus_seen >> i & 1))
			return fail(err, "vCPU %u has no record", i);
	return true;
}

/* ------------------------------------------------------------------ writer */

static bool emit(struct savefile_writer *w, const uint8_t *data, size_t size)
{
	if (size == 0)
		return true;
	if (!w->sink(w->sink_ctx, data, size)) {
		w->failed = true;
		return fail(&w->error, "the sink refused %zu bytes at offset %llu", size,
			    (unsigned long long)w->offset);
	}
	w->stream_crc = crc32c(w->stream_crc, data, size);
	w->offset += size;
	return true;
}

/* One record whose payload is head followed by body (either may be empty). */
static bool emit_record(struct savefile_writer *w, uint16_t type, uint16_t flags,
			const uint8_t *head, size_t head_size, const uint8_t *body,
			size_t body_size)
{
	uint8_t header[SAVEFILE_RECORD_HEADER_SIZE];
	uint32_t crc;

	if (w->walk.index == UINT32_MAX) {
		w->failed = true;
		return fail(&w->error, "more than %u records", UINT32_MAX - 1);
	}
	le_put(header, type, 2);
	le_put(header + 2, flags, 2);
	le_put(header + 4, head_size + body_size, 4);
	crc = crc32c(CRC32C_INIT, header, RECORD_CHECKED_HEADER);
	crc = crc32c(crc, head, head_size);
	crc = crc32c(crc, body, body_size);
	le_put(header + RECORD_CHECKED_HEADER, crc, 4);
	if (!emit(w, header, sizeof(header)) || !emit(w, head, head_size) ||
	    !emit(w, body, body_size))
		return false;
	w->walk.index++;
	return true;
}

/* Whether the writer may take a record after the header. */
static bool writer_ready(struct savefile_writer *w)
{
	if (w->failed)
		return false;
	if (w->stage != SAVEFILE_WANT_RECORDS) {
		w->failed = true;
		return fail(&w->error, w->stage == SAVEFILE_WANT_HEADER ?
					       "the header must be the first record" :
					       "the file is already finished");
	}
	return true;
}

/* Refuses what the reader would refuse; a refusal stops the writer. */
static bool writer_check(struct savefile_writer *w, bool ok)
{
	if (!ok)
		w->failed = true;
	return ok;
}

bool savefile_writer_init(struct savefile_writer *w, savefile_sink sink, void *sink_ctx)
{
	uint8_t prefix[SAVEFILE_PREFIX_SIZE] = { 0 };

	memset(w, 0, sizeof(*w));
	w->sink = sink;
	w->sink_ctx = sink_ctx;
	w->stream_crc = CRC32C_INIT;
	memcpy(prefix, savefile_magic, SAVEFILE_MAGIC_SIZE);
	le_put(prefix + SAVEFILE_MAGIC_SIZE, SAVEFILE_VERSION, 2);
	return emit(w, prefix, sizeof(prefix));
}

static void put_field(uint8_t *out, size_t *pos, uint16_t tag, const void *value, size_t size)
{
	le_put(out + *pos, tag, 2);
	le_put(out + *pos + 2, size, 2);
	memcpy(out + *pos + HEADER_FIELD_OVERHEAD, value, size);
	*pos += HEADER_FIELD_OVERHEAD + size;
}

static void put_number_field(uint8_t *out, size_t *pos, uint16_t tag, uint64_t value,
			     size_t width)
{
	uint8_t bytes[8];

	le_put(bytes, value, width);
	put_field(out, pos, tag, bytes, width);
}

bool savefile_write_header(struct savefile_writer *w, const struct savefile_header *h)
{
	uint8_t out[HEADER_MAX];
	uint8_t boot_mode = (uint8_t)h->boot_mode;
	size_t pos = 0;

	if (w->failed)
		return false;
	if (w->stage != SAVEFILE_WANT_HEADER) {
		w->failed = true;
		return fail(&w->error, "the header is written once, first");
	}
	/* Lengths are bounded before they are copied; parse_header checks the rest. */
	if (bounded_length(h->name, SAVEFILE_NAME_MAX) == SAVEFILE_NAME_MAX ||
	    h->nic_count > SAVEFILE_NICS_MAX)
		return writer_check(w, fail(&w->error, "header: name or NIC count out of range"));
	for (unsigned i = 0; i < h->nic_count; i++)
		if (bounded_length(h->nics[i].network, SAVEFILE_NAME_MAX) == SAVEFILE_NAME_MAX)
			return writer_check(w, fail(&w->error, "header: NIC %u's network name is too "
								 "long", i));
	put_field(out, &pos, TAG_NAME | TAG_MUST_UNDERSTAND, h->name, strlen(h->name));
	put_number_field(out, &pos, TAG_RAM_BYTES | TAG_MUST_UNDERSTAND, h->ram_bytes, 8);
	put_field(out, &pos, TAG_BOOT_MODE | TAG_MUST_UNDERSTAND, &boot_mode, 1);
	put_number_field(out, &pos, TAG_VCPUS | TAG_MUST_UNDERSTAND, h->vcpus, 4);
	put_number_field(out, &pos, TAG_CPU_FEATURES | TAG_MUST_UNDERSTAND, h->cpu_features, 8);
	for (unsigned i = 0; i < h->nic_count; i++) {
		uint8_t nic[6 + SAVEFILE_NAME_MAX];
		size_t len = strlen(h->nics[i].network);

		memcpy(nic, h->nics[i].mac, 6);
		memcpy(nic + 6, h->nics[i].network, len);
		put_field(out, &pos, TAG_NIC | TAG_MUST_UNDERSTAND, nic, 6 + len);
	}
	/* Only informative: a reader may ignore when the state was saved. */
	put_number_field(out, &pos, TAG_SAVED_AT, h->saved_at, 8);
	if (!writer_check(w, check_record(&w->walk, SAVEFILE_HEADER, SAVEFILE_FLAG_MUST_UNDERSTAND,
					  out, pos, &w->error)))
		return false;
	w->stage = SAVEFILE_WANT_RECORDS;
	return emit_record(w, SAVEFILE_HEADER, SAVEFILE_FLAG_MUST_UNDERSTAND, out, pos, NULL, 0);
}

bool savefile_write_vcpu(struct savefile_writer *w, uint32_t index, const uint8_t *state,
			 size_t size)
{
	uint8_t head[4];

	le_put(head, index, 4);
	return writer_ready(w) &&
	       writer_check(w, size <= SAVEFILE_RECORD_MAX - sizeof(head) ||
				       fail(&w->error, "vCPU %u: %zu bytes of state is too much",
					    index, size)) &&
	       writer_check(w, check_vcpu(&w->walk, "vcpu", index, &w->error)) &&
	       emit_record(w, SAVEFILE_VCPU, SAVEFILE_FLAG_MUST_UNDERSTAND, head, sizeof(head),
			   state, size);
}

bool savefile_write_device(struct savefile_writer *w, const uint8_t *devstate_record, size_t size)
{
	return savefile_write_record(w, SAVEFILE_DEVICE, SAVEFILE_FLAG_MUST_UNDERSTAND,
				     devstate_record, size);
}

bool savefile_write_record(struct savefile_writer *w, uint16_t type, uint16_t flags,
			   const uint8_t *payload, size_t size)
{
	if (!writer_ready(w))
		return false;
	if (size > SAVEFILE_RECORD_MAX || type == SAVEFILE_MEMORY || type == SAVEFILE_DISK_RUN)
		return writer_check(w, fail(&w->error, "record type 0x%04x of %zu bytes: use the "
						       "type's own call, up to %u bytes",
					    type, size, SAVEFILE_RECORD_MAX));
	return writer_check(w, check_record(&w->walk, type, flags, payload, size, &w->error)) &&
	       emit_record(w, type, flags, payload, size, NULL, 0);
}

bool savefile_copy_record(struct savefile_writer *w, const struct savefile_record *rec)
{
	/* A run is copied as it is: its encoding was chosen, and checked, where it was written. */
	return writer_ready(w) &&
	       writer_check(w, check_record(&w->walk, rec->type, rec->flags, rec->payload,
					    rec->size, &w->error)) &&
	       emit_record(w, rec->type, rec->flags, rec->payload, rec->size, NULL, 0);
}

bool savefile_write_disk(struct savefile_writer *w, uint64_t bytes)
{
	uint8_t size[8];

	le_put(size, bytes, 8);
	return savefile_write_record(w, SAVEFILE_DISK, SAVEFILE_FLAG_MUST_UNDERSTAND, size,
				     sizeof(size));
}

static bool page_is_zero(const uint8_t *page)
{
	uint64_t any = 0;

	/* Eight bytes a load: every page of RAM passes here, twice on a Save. */
	for (size_t i = 0; i < SAVEFILE_PAGE_SIZE; i += sizeof(any)) {
		uint64_t v;
		memcpy(&v, page + i, sizeof(v));
		any |= v;
	}
	return any == 0;
}

uint64_t savefile_memory_bound(const uint8_t *pages, uint64_t page_count)
{
	uint64_t data = 0;

	for (uint64_t p = 0; p < page_count; p++)
		data += !page_is_zero(pages + p * SAVEFILE_PAGE_SIZE);
	return data * SAVEFILE_PAGE_SIZE +
	       (2 * data + 2) * (SAVEFILE_RUN_HEADER_SIZE + SAVEFILE_RECORD_HEADER_SIZE);
}

uint64_t savefile_disk_bound(uint64_t bytes)
{
	uint64_t pages = disk_run_bytes(bytes) / SAVEFILE_PAGE_SIZE;

	return SAVEFILE_RECORD_HEADER_SIZE + 8 + pages * SAVEFILE_PAGE_SIZE +
	       (2 * pages + 2) * (SAVEFILE_RUN_HEADER_SIZE + SAVEFILE_RECORD_HEADER_SIZE);
}

static bool write_run(struct savefile_writer *w, uint16_t type, const struct savefile_run *run)
{
	uint8_t head[SAVEFILE_RUN_HEADER_SIZE] = { 0 };

	le_put(head, run->gpa, 8);
	le_put(head + 8, run->pages, 4);
	head[12] = (uint8_t)run->encoding;
	return writer_check(w, check_run(&w->walk, type, type_name(type), run, &w->error)) &&
	       emit_record(w, type, SAVEFILE_FLAG_MUST_UNDERSTAND, head, sizeof(head), run->data,
			   run->data_size);
}

/* Pages as runs of a record type (memory or disk) from where that type's runs are. */
static bool write_pages(struct savefile_writer *w, uint16_t type, const uint8_t *pages,
			uint64_t page_count, struct lz_workspace *ws, uint8_t *scratch)
{
	uint64_t done = 0;

	if (!writer_ready(w))
		return false;
	while (done < page_count) {
		const uint8_t *first = pages + done * SAVEFILE_PAGE_SIZE;
		bool zero = page_is_zero(first);
		uint32_t limit = zero ? UINT32_MAX : SAVEFILE_RUN_PAGES_MAX;
		struct savefile_run run = { .gpa = *run_space(&w->walk, type).next, .pages = 1 };

		while (run.pages < limit && done + run.pages < page_count &&
		       page_is_zero(first + (size_t)run.pages * SAVEFILE_PAGE_SIZE) == zero)
			run.pages++;
		if (zero) {
			run.encoding = SAVEFILE_RUN_ZERO;
		} else {
			size_t raw = (size_t)run.pages * SAVEFILE_PAGE_SIZE;
			/* Compressed only when it saves a byte; raw otherwise. */
			size_t packed = lz_compress(ws, first, raw, scratch, raw - 1);

			run.encoding = packed ? SAVEFILE_RUN_LZ : SAVEFILE_RUN_RAW;
			run.data = packed ? scratch : first;
			run.data_size = (uint32_t)(packed ? packed : raw);
		}
		if (!write_run(w, type, &run))
			return false;
		done += run.pages;
	}
	return true;
}

bool savefile_write_memory(struct savefile_writer *w, const uint8_t *pages, uint64_t page_count,
			   struct lz_workspace *ws, uint8_t *scratch)
{
	return write_pages(w, SAVEFILE_MEMORY, pages, page_count, ws, scratch);
}

bool savefile_write_disk_pages(struct savefile_writer *w, const uint8_t *pages,
			       uint64_t page_count, struct lz_workspace *ws, uint8_t *scratch)
{
	return write_pages(w, SAVEFILE_DISK_RUN, pages, page_count, ws, scratch);
}

bool savefile_finish(struct savefile_writer *w)
{
	uint8_t footer[FOOTER_SIZE];

	if (!writer_ready(w) || !writer_check(w, check_complete(&w->walk, &w->error)))
		return false;
	le_put(footer, w->offset + SAVEFILE_RECORD_HEADER_SIZE + FOOTER_SIZE, 8);
	le_put(footer + 8, w->walk.index, 4);
	le_put(footer + 12, w->stream_crc, 4);
	if (!emit_record(w, SAVEFILE_FOOTER, SAVEFILE_FLAG_MUST_UNDERSTAND, footer, sizeof(footer),
			 NULL, 0))
		return false;
	w->stage = SAVEFILE_FINISHED;
	return true;
}

bool savefile_buffer_sink(void *buffer, const uint8_t *data, size_t size)
{
	struct savefile_buffer *b = buffer;

	if (size > b->capacity - b->size)
		return false;
	memcpy(b->data + b->size, data, size);
	b->size += size;
	return true;
}

/* ------------------------------------------------------------------ reader */

static bool check_prefix(const uint8_t *file, size_t size, struct savefile_error *err)
{
	size_t magic_bytes = size < SAVEFILE_MAGIC_SIZE ? size : SAVEFILE_MAGIC_SIZE;
	uint16_t version, reserved;

	if (size == 0 || memcmp(file, savefile_magic, magic_bytes) != 0)
		return fail(err, "not a vmm save file");
	if (size < SAVEFILE_PREFIX_SIZE)
		return fail(err, "truncated: %zu bytes, no footer", size);
	version = (uint16_t)le_get(file + SAVEFILE_MAGIC_SIZE, 2);
	reserved = (uint16_t)le_get(file + SAVEFILE_MAGIC_SIZE + 2, 2);
	if (version == 0)
		return fail(err, "format version 0 is not valid");
	if (version > SAVEFILE_VERSION)
		return fail(err, "format version %u is newer than this build's %u", version,
			    SAVEFILE_VERSION);
	if (reserved)
		return fail(err, "reserved prefix field is 0x%04x, not 0", reserved);
	return true;
}

static bool check_footer(const struct savefile_walk *walk, const uint8_t *file, size_t size,
			 size_t at, uint32_t stream_crc, const uint8_t *p, uint32_t len,
			 struct savefile_error *err)
{
	size_t end = at + SAVEFILE_RECORD_HEADER_SIZE + len;

	if (len != FOOTER_SIZE)
		return fail(err, "footer: %u bytes, not %u", len, FOOTER_SIZE);
	if (end < size) {
		if (size - end >= 2 && le_get(file + end, 2) == SAVEFILE_FOOTER)
			return fail(err, "a duplicate footer at offset %zu", end);
		return fail(err, "%zu bytes of data after the footer", size - end);
	}
	if (le_get(p, 8) != end)
		return fail(err, "footer: the file is %zu bytes, the footer says %llu", end,
			    (unsigned long long)le_get(p, 8));
	if (le_get(p + 8, 4) != walk->index)
		return fail(err, "footer: %u records before it, the footer says %u", walk->index,
			    (uint32_t)le_get(p + 8, 4));
	if (le_get(p + 12, 4) != stream_crc)
		return fail(err, "footer: the checksum over the stream does not match");
	return check_complete(walk, err);
}

/* The record whose frame header is at h, as the header says (nothing checked). */
static struct savefile_record frame_at(const uint8_t *h, uint32_t index)
{
	return (struct savefile_record){ .index = index, .type = (uint16_t)le_get(h, 2),
					 .flags = (uint16_t)le_get(h + 2, 2),
					 .payload = h + SAVEFILE_RECORD_HEADER_SIZE,
					 .size = (uint32_t)le_get(h + 4, 4) };
}

/* Where the record after the header starts; the header record is whole in the file. */
static size_t after_header(const uint8_t *file)
{
	return SAVEFILE_PREFIX_SIZE + SAVEFILE_RECORD_HEADER_SIZE +
	       le_get(file + SAVEFILE_PREFIX_SIZE + 4, 4);
}

/*
 * One record as it lies at pos, its length and checksum checked, and named
 * for messages; with the CRC of its payload alone, from which the stream's
 * is made without reading the payload again (crc32c_combine).
 */
struct framed_record {
	struct savefile_record r;
	char what[DESCRIPTION_MAX];
	uint32_t payload_crc;
};

static bool record_at(const uint8_t *file, size_t size, size_t pos, uint32_t index,
		      struct framed_record *rec, struct savefile_error *err)
{
	const uint8_t *h = file + pos;
	size_t left = size - pos;

	if (left < SAVEFILE_RECORD_HEADER_SIZE)
		return fail(err, "truncated: %zu bytes where record %u should start, no footer", left,
			    index);
	/* 2^32 empty records are 48 GiB: a file of RAM's size could hold them. */
	if (index == UINT32_MAX)
		return fail(err, "more than %u records", UINT32_MAX - 1);
	/* Only now: a pointer past the file's end is undefined even unread. */
	rec->r = frame_at(h, index);
	uint32_t len = rec->r.size;
	left -= SAVEFILE_RECORD_HEADER_SIZE;
	describe(rec->what, index, rec->r.type, rec->r.payload, left < len ? left : len);
	if (len > SAVEFILE_RECORD_MAX)
		return fail(err, "%s: length %u exceeds the limit of %u", rec->what, len,
			    SAVEFILE_RECORD_MAX);
	if (len > left)
		return fail(err, "truncated: %s is %u bytes, %zu left, no footer", rec->what, len,
			    left);
	rec->payload_crc = crc32c(CRC32C_INIT, rec->r.payload, len);
	if (crc32c_combine(crc32c(CRC32C_INIT, h, RECORD_CHECKED_HEADER), rec->payload_crc, len) !=
	    le_get(h + RECORD_CHECKED_HEADER, 4))
		return fail(err, "%s: checksum mismatch", rec->what);
	return true;
}

bool savefile_read_header(const uint8_t *start, size_t size, struct savefile_header *h,
			  struct savefile_error *err)
{
	struct savefile_walk walk;
	struct framed_record rec;

	memset(&walk, 0, sizeof(walk));
	if (!check_prefix(start, size, err) ||
	    !record_at(start, size, SAVEFILE_PREFIX_SIZE, 0, &rec, err) ||
	    !check_record(&walk, rec.r.type, rec.r.flags, rec.r.payload, rec.r.size, err))
		return false;
	*h = walk.header;
	return true;
}

bool savefile_read_config(const uint8_t *start, size_t size, struct savefile_record *config)
{
	struct framed_record rec;
	struct savefile_error err;

	/* The header record is whole here: savefile_read_header said so. */
	size_t pos = after_header(start);
	if (pos > size || !record_at(start, size, pos, 1, &rec, &err) ||
	    rec.r.type != SAVEFILE_CONFIG)
		return false;
	*config = rec.r;
	return true;
}

bool savefile_open(struct savefile_reader *r, const uint8_t *file, size_t size,
		   struct savefile_error *err)
{
	struct savefile_walk *walk = &r->walk;
	size_t pos = SAVEFILE_PREFIX_SIZE;

	memset(r, 0, sizeof(*r));
	if (!check_prefix(file, size, err))
		return false;
	/* Over every byte before the footer: the prefix, then each record as it is checked. */
	uint32_t stream_crc = crc32c(CRC32C_INIT, file, SAVEFILE_PREFIX_SIZE);
	for (;;) {
		struct framed_record rec;

		if (!record_at(file, size, pos, walk->index, &rec, err))
			return false;
		if (rec.r.type == SAVEFILE_FOOTER && walk->index > 0) {
			if (!check_flags(rec.what, rec.r.flags, err) ||
			    !check_footer(walk, file, size, pos, stream_crc, rec.r.payload, rec.r.size,
					  err))
				return false;
			r->footer_offset = pos;
			break;
		}
		if (!check_record(walk, rec.r.type, rec.r.flags, rec.r.payload, rec.r.size, err))
			return false;
		stream_crc = crc32c_combine(crc32c(stream_crc, file + pos, SAVEFILE_RECORD_HEADER_SIZE),
					    rec.payload_crc, rec.r.size);
		pos += SAVEFILE_RECORD_HEADER_SIZE + rec.r.size;
		walk->index++;
	}
	r->file = file;
	r->size = size;
	r->next_index = 1;
	/* savefile_next() starts after the header, which r->walk.header holds. */
	r->next = after_header(file);
	return true;
}

bool savefile_next(struct savefile_reader *r, struct savefile_record *rec)
{
	while (r->next < r->footer_offset) {
		*rec = frame_at(r->file + r->next, r->next_index++);
		r->next += SAVEFILE_RECORD_HEADER_SIZE + rec->size;
		if (type_name(rec->type))
			return true;
	}
	return false;
}

bool savefile_memory_run(const struct savefile_record *rec, struct savefile_run *run,
			 struct savefile_error *err)
{
	return parse_run(rec->type == SAVEFILE_DISK_RUN ? "disk run" : "memory", rec->payload,
			 rec->size, run, err);
}

bool savefile_run_decode(const struct savefile_run *run, uint8_t *out, size_t out_size,
			 struct savefile_error *err)
{
	enum lz_status st;

	if (out_size != (uint64_t)run->pages * SAVEFILE_PAGE_SIZE)
		return fail(err, "run at 0x%llx: %u pages, not %zu bytes",
			    (unsigned long long)run->gpa, run->pages, out_size);
	switch (run->encoding) {
	case SAVEFILE_RUN_ZERO:
		memset(out, 0, out_size);
		return true;
	case SAVEFILE_RUN_RAW:
		if (run->data_size != out_size)
			break;
		memcpy(out, run->data, out_size);
		return true;
	case SAVEFILE_RUN_LZ:
		st = lz_decompress(run->data, run->data_size, out, out_size);
		if (st == LZ_OK)
			return true;
		return fail(err, "run at 0x%llx: %s", (unsigned long long)run->gpa,
			    lz_status_text(st));
	}
	return fail(err, "run at 0x%llx: %u bytes of data for %u pages",
		    (unsigned long long)run->gpa, run->data_size, run->pages);
}
