/*
 * The save file: a VM as one byte stream (docs/savefile.md). A prefix
 * (magic, format version), a header record (name, configuration, RAM
 * size, the CPU features the state relies on), typed records (vCPUs,
 * devices, memory runs, console history), and a footer that commits the
 * stream. Every number is little-endian.
 *
 * The writer streams: records go out through a sink callback in the
 * order they are written, so the hypervisor can send a file to memory or
 * to the line in chunks. The reader takes the whole file in memory and
 * validates all of it in savefile_open() before a caller sees a record,
 * so a bad file is refused before anything is restored; every refusal
 * names what is wrong. Decoding a memory run's pages checks them again.
 *
 * Plain C, no hardware access: built into the image and the host tests.
 */
#ifndef VMM_SAVEFILE_H
#define VMM_SAVEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lz.h"

#define SAVEFILE_VERSION 1u
#define SAVEFILE_MAGIC_SIZE 8u
#define SAVEFILE_PREFIX_SIZE 12u        /* magic, version, reserved */
#define SAVEFILE_RECORD_HEADER_SIZE 12u /* type, flags, length, checksum */
/* The largest record payload: a memory run's worst case, with room. */
#define SAVEFILE_RECORD_MAX (128u * 1024u)

#define SAVEFILE_FLAG_MUST_UNDERSTAND 0x0001u

enum savefile_record_type {
	SAVEFILE_HEADER = 0x0001,
	SAVEFILE_VCPU = 0x0002,
	SAVEFILE_DEVICE = 0x0003,
	SAVEFILE_MEMORY = 0x0004,
	SAVEFILE_CONSOLE = 0x0005,
	/*
	 * The VM's configuration as the management API's CreateVirtualMachine
	 * tags (include/abi/api.h), for a hypervisor that imports the file;
	 * not must-understand: a restore does without it.
	 */
	SAVEFILE_CONFIG = 0x0006,
	/*
	 * The VM's disk, carried by a move (`vmmctl export --with-disk`): its
	 * size, then its contents as runs like memory's, at byte offsets on
	 * the disk. Must-understand: a VM without its disk is not the VM.
	 */
	SAVEFILE_DISK = 0x0007,
	SAVEFILE_DISK_RUN = 0x0008,
	SAVEFILE_FOOTER = 0xffff,
};

/* The header's limits follow the configuration's (boot/config.h). */
#define SAVEFILE_NAME_MAX 32u /* bytes incl. NUL: names are 1..31 characters */
#define SAVEFILE_NICS_MAX 4u
#define SAVEFILE_VCPUS_MAX 64u
#define SAVEFILE_PAGE_SIZE 4096u
#define SAVEFILE_RAM_MAX (64ull << 30)
/* Pages in one compressed or raw run: one LZ block, 64 KiB. */
#define SAVEFILE_RUN_PAGES_MAX (LZ_BLOCK_MAX / SAVEFILE_PAGE_SIZE)
#define SAVEFILE_RUN_HEADER_SIZE 16u
#define SAVEFILE_DEVICES_MAX 40u
#define SAVEFILE_DEVICE_NAME_MAX 16u /* as devices/devstate.h's DEVSTATE_NAME_MAX */
/* A carried disk: whole 512-byte sectors, up to 2 TiB; its runs cover it in whole pages. */
#define SAVEFILE_DISK_SECTOR 512u
#define SAVEFILE_DISK_MAX (2ull << 40)

enum savefile_boot_mode { SAVEFILE_BOOT_REAL, SAVEFILE_BOOT_LONG, SAVEFILE_BOOT_LINUX };

/*
 * The CPU features a saved state may rely on: what the CPUID policy and
 * the XSAVE components offered can show a guest (vmm/cpuid_policy.c,
 * vmm/xstate.c). The bit numbers are part of the
 * format: append, never renumber.
 */
enum savefile_cpu_feature {
	SAVEFILE_CPU_SSE3,
	SAVEFILE_CPU_PCLMULQDQ,
	SAVEFILE_CPU_SSSE3,
	SAVEFILE_CPU_CX16,
	SAVEFILE_CPU_SSE4_1,
	SAVEFILE_CPU_SSE4_2,
	SAVEFILE_CPU_MOVBE,
	SAVEFILE_CPU_POPCNT,
	SAVEFILE_CPU_AES,
	SAVEFILE_CPU_RDRAND,
	SAVEFILE_CPU_FSGSBASE,
	SAVEFILE_CPU_BMI1,
	SAVEFILE_CPU_SMEP,
	SAVEFILE_CPU_BMI2,
	SAVEFILE_CPU_ERMS,
	SAVEFILE_CPU_ADX,
	SAVEFILE_CPU_SMAP,
	SAVEFILE_CPU_CLFLUSHOPT,
	SAVEFILE_CPU_LZCNT,
	SAVEFILE_CPU_PAGE1GB,
	SAVEFILE_CPU_NX,
	SAVEFILE_CPU_XSAVE,
	SAVEFILE_CPU_AVX,
	SAVEFILE_CPU_FMA,
	SAVEFILE_CPU_F16C,
	SAVEFILE_CPU_AVX2,
	SAVEFILE_CPU_AVX512F,
	SAVEFILE_CPU_AVX512DQ,
	SAVEFILE_CPU_AVX512CD,
	SAVEFILE_CPU_AVX512BW,
	SAVEFILE_CPU_AVX512VL,
	SAVEFILE_CPU_XSAVEOPT,
	SAVEFILE_CPU_XSAVEC,
	SAVEFILE_CPU_XSAVES,
	SAVEFILE_CPU_SPEC_CTRL,
	SAVEFILE_CPU_STIBP,
	SAVEFILE_CPU_SSBD,
	SAVEFILE_CPU_L1D_FLUSH,
	SAVEFILE_CPU_ARCH_CAPABILITIES,
	SAVEFILE_CPU_FEATURE_COUNT
};

struct savefile_nic {
	uint8_t mac[6];
	char network[SAVEFILE_NAME_MAX];
};

struct savefile_header {
	char name[SAVEFILE_NAME_MAX];
	uint64_t ram_bytes; /* a whole number of pages, 1..SAVEFILE_RAM_MAX */
	enum savefile_boot_mode boot_mode;
	uint32_t vcpus;     /* 1..SAVEFILE_VCPUS_MAX */
	uint64_t cpu_features; /* bit (1 << enum savefile_cpu_feature) */
	uint64_t saved_at;  /* seconds since 1970 (UTC), 0 when unknown */
	unsigned nic_count;
	struct savefile_nic nics[SAVEFILE_NICS_MAX];
};

#define SAVEFILE_ERROR_MAX 160u

struct savefile_error {
	char text[SAVEFILE_ERROR_MAX];
};

/* "sse4_2"; NULL for a bit this build does not name. */
const char *savefile_cpu_feature_name(unsigned bit);

/*
 * Whether a host with the features host_features can run a state that
 * relies on needed; when not, err names the first feature missing.
 */
bool savefile_cpu_supported(uint64_t needed, uint64_t host_features, struct savefile_error *err);

/* ------------------------------------------------------------------ writer */

/* Takes the next size bytes of the file; false stops the writer. */
typedef bool (*savefile_sink)(void *ctx, const uint8_t *data, size_t size);

enum savefile_writer_stage { SAVEFILE_WANT_HEADER, SAVEFILE_WANT_RECORDS, SAVEFILE_FINISHED };

/*
 * What the records so far have established, kept by the reader and the
 * writer alike: both hold each record to the same rules.
 */
struct savefile_walk {
	struct savefile_header header;
	uint32_t index;      /* of the next record */
	uint64_t next_gpa;   /* where the next memory run must start */
	uint64_t disk_bytes; /* the disk record's size; 0: no disk carried */
	uint64_t next_disk;  /* where the next disk run must start */
	uint64_t vcpus_seen; /* bit per vCPU index */
	unsigned devices;
	char device_names[SAVEFILE_DEVICES_MAX][SAVEFILE_DEVICE_NAME_MAX + 1];
	bool console_seen;
	bool config_seen;
};

struct savefile_writer {
	savefile_sink sink;
	void *sink_ctx;
	enum savefile_writer_stage stage;
	bool failed;            /* the sink refused or a record was refused */
	uint64_t offset;        /* bytes handed to the sink */
	uint32_t stream_crc;    /* over every byte handed to the sink */
	struct savefile_walk walk;
	struct savefile_error error; /* why the writer stopped */
};

/* Starts a file: writes the prefix. */
bool savefile_writer_init(struct savefile_writer *w, savefile_sink sink, void *sink_ctx);

/* The first record; h is checked as a reader would check it. */
bool savefile_write_header(struct savefile_writer *w, const struct savefile_header *h);

/* A vCPU's state (its layout is the vCPU code's): index < the header's vcpus. */
bool savefile_write_vcpu(struct savefile_writer *w, uint32_t index, const uint8_t *state,
			 size_t size);

/* One device record in the format of docs/devices.md (devstate_save's output). */
bool savefile_write_device(struct savefile_writer *w, const uint8_t *devstate_record, size_t size);

/*
 * A record of another file (savefile_next's), unchanged: the rules a
 * reader applies, here to the new file. Not the header or the footer:
 * the writer writes those itself.
 */
struct savefile_record;
bool savefile_copy_record(struct savefile_writer *w, const struct savefile_record *rec);

/* Any other record (console history, a later type); flags as on the wire. */
bool savefile_write_record(struct savefile_writer *w, uint16_t type, uint16_t flags,
			   const uint8_t *payload, size_t size);

/*
 * Guest memory from next GPA on: page_count pages at pages. Zero pages
 * become zero runs; the others runs of up to SAVEFILE_RUN_PAGES_MAX
 * pages, compressed when that saves space. Called for consecutive pieces
 * of RAM until all of it, from GPA 0 to the header's RAM size, is written.
 * ws and scratch (SAVEFILE_SCRATCH_SIZE bytes) are the caller's, so the
 * hypervisor's stack stays small.
 */
#define SAVEFILE_SCRATCH_SIZE LZ_BLOCK_MAX
bool savefile_write_memory(struct savefile_writer *w, const uint8_t *pages, uint64_t page_count,
			   struct lz_workspace *ws, uint8_t *scratch);

/*
 * A disk carried by the file: the disk record of its size in bytes (whole
 * sectors), then its contents from offset 0 with savefile_write_disk_pages,
 * pieces as savefile_write_memory's, the last page's bytes past the size
 * zero, until its whole pages are written.
 */
bool savefile_write_disk(struct savefile_writer *w, uint64_t bytes);
bool savefile_write_disk_pages(struct savefile_writer *w, const uint8_t *pages,
			       uint64_t page_count, struct lz_workspace *ws, uint8_t *scratch);

/*
 * The most savefile_write_memory() can write for these pages: every page
 * that is not zero stored raw (a run is stored raw when compressing would
 * not save), and a run and a record header for each and for each zero
 * stretch between them. Reads the pages once; compresses nothing.
 */
uint64_t savefile_memory_bound(const uint8_t *pages, uint64_t page_count);

/*
 * The most savefile_write_disk() and its pages can write for a disk of
 * bytes, read nowhere: every page stored raw.
 */
uint64_t savefile_disk_bound(uint64_t bytes);

/* The footer: refused unless the memory runs covered all RAM (and the disk runs the disk). */
bool savefile_finish(struct savefile_writer *w);

/* A sink into a caller buffer. */
struct savefile_buffer {
	uint8_t *data;
	size_t capacity;
	size_t size;
};
bool savefile_buffer_sink(void *buffer, const uint8_t *data, size_t size);

/* ------------------------------------------------------------------ reader */

struct savefile_record {
	uint32_t index; /* in the file: the header is record 0 */
	uint16_t type;
	uint16_t flags;
	const uint8_t *payload;
	uint32_t size;
};

enum savefile_run_encoding { SAVEFILE_RUN_ZERO, SAVEFILE_RUN_RAW, SAVEFILE_RUN_LZ };

/* A memory or disk run record's run, as savefile_memory_run() reads it. */
struct savefile_run {
	uint64_t gpa;        /* a disk run's: its byte offset on the disk */
	uint32_t pages;
	enum savefile_run_encoding encoding;
	const uint8_t *data; /* raw or compressed bytes; none for zero runs */
	uint32_t data_size;
};

struct savefile_reader {
	const uint8_t *file;
	size_t size;
	size_t footer_offset;
	size_t next;        /* offset of the record savefile_next() looks at */
	uint32_t next_index;
	struct savefile_walk walk; /* walk.header: the file's header */
};

/*
 * Validates the whole file: prefix, every record's length, checksum and
 * contents this build understands, the order of records, the memory runs
 * against the RAM size, and the footer. On success the header is in
 * r->walk.header and savefile_next() walks the records.
 */
bool savefile_open(struct savefile_reader *r, const uint8_t *file, size_t size,
		   struct savefile_error *err);

/*
 * The header of a file of which only the start is at hand (an import's
 * first chunk): the prefix and the header record, checked as
 * savefile_open checks them. Nothing after the header is looked at.
 */
bool savefile_read_header(const uint8_t *start, size_t size, struct savefile_header *h,
			  struct savefile_error *err);

/*
 * After savefile_read_header accepted start: the configuration record,
 * when it is the next record and lies whole (its checksum right) in the
 * size bytes at hand, as vm_save.c writes it; false otherwise.
 */
bool savefile_read_config(const uint8_t *start, size_t size, struct savefile_record *config);

/*
 * The next record after the header that this build knows (skippable
 * unknown ones are passed over); false at the footer.
 */
bool savefile_next(struct savefile_reader *r, struct savefile_record *rec);

/*
 * A memory or disk run record's run (savefile_open has checked it; this
 * checks its layout again).
 */
bool savefile_memory_run(const struct savefile_record *rec, struct savefile_run *run,
			 struct savefile_error *err);

/*
 * Writes a run's pages into out (run->pages * SAVEFILE_PAGE_SIZE bytes):
 * zeros, a copy, or the decompressed data, which must come out exactly
 * that size.
 */
bool savefile_run_decode(const struct savefile_run *run, uint8_t *out, size_t out_size,
			 struct savefile_error *err);

#endif
