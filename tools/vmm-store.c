/*
 * vmm-store: the store's admin tool (docs/store.md). It creates a store
 * in a container file (preallocated, for the boot volume) or on a
 * partition, lists it, and moves disk images in and out. Every change is
 * a commit of lib/store.c: the data is written and flushed first, then
 * the metadata, so a tool killed halfway leaves the store as it was.
 *
 *   vmm-store create [--size SIZE] STORE     SIZE: bytes, or with K, M, G
 *   vmm-store list STORE
 *   vmm-store import STORE NAME IMAGE        a disk image into the store
 *   vmm-store export STORE NAME IMAGE        an object out into a file
 *   vmm-store delete STORE NAME
 *
 * Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage.
 */
#define _GNU_SOURCE
#include "lib/store.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h>
#endif

#define CHUNK (1024 * 1024)

static const char *prog = "vmm-store";

struct file_dev {
	int fd;
};

static bool dev_read(void *ctx, uint64_t block, uint32_t count, void *buf)
{
	size_t n = (size_t)count * STORE_BLOCK;

	return pread(((struct file_dev *)ctx)->fd, buf, n, (off_t)(block * STORE_BLOCK)) ==
	       (ssize_t)n;
}

static bool dev_write(void *ctx, uint64_t block, uint32_t count, const void *buf)
{
	size_t n = (size_t)count * STORE_BLOCK;

	return pwrite(((struct file_dev *)ctx)->fd, buf, n, (off_t)(block * STORE_BLOCK)) ==
	       (ssize_t)n;
}

static bool dev_flush(void *ctx)
{
	return fsync(((struct file_dev *)ctx)->fd) == 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: %s create [--size SIZE] STORE\n"
			"       %s list STORE\n"
			"       %s import STORE NAME IMAGE\n"
			"       %s export STORE NAME IMAGE\n"
			"       %s delete STORE NAME\n", prog, prog, prog, prog, prog);
	return 2;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* "64M" and the like; false when it is not a size. */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned shift = 0;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return false;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	}
	if (*end || v > UINT64_MAX >> shift)
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

/* The size of a regular file or a block device. */
static bool size_of(int fd, uint64_t *bytes, bool *is_device)
{
	struct stat st;

	if (fstat(fd, &st))
		return false;
	*is_device = S_ISBLK(st.st_mode);
#ifdef BLKGETSIZE64
	if (*is_device)
		return ioctl(fd, BLKGETSIZE64, bytes) == 0;
#endif
	*bytes = (uint64_t)st.st_size;
	return S_ISREG(st.st_mode);
}

static const char *kind_name(uint32_t kind)
{
	return kind == STORE_DISK ? "disk" : kind == STORE_SAVED_STATE ? "saved-state"
	       : kind == STORE_NEW_DISK ? "disk-being-made" : "?";
}

/* A line of progress on a terminal, rewritten in place: bytes, rate, time left. */
static void progress(const char *what, uint64_t done, uint64_t total, const struct timespec *t0)
{
	struct timespec now;

	if (!isatty(STDERR_FILENO))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double s = (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
	double rate = s > 0 ? (double)done / s : 0;
	fprintf(stderr, "\r%s: %" PRIu64 " of %" PRIu64 " MiB, %.1f MiB/s, %.0f s left   ", what,
		done >> 20, total >> 20, rate / (1 << 20),
		rate > 0 ? (double)(total - done) / rate : 0.0);
	if (done == total)
		fputc('\n', stderr);
}

static int open_store(const char *path, int flags, struct file_dev *fd, struct store_dev *dev,
		      struct store *s)
{
	char why[256], note[256];
	uint64_t bytes;
	bool is_device;

	fd->fd = open(path, flags | O_CLOEXEC);
	if (fd->fd < 0)
		return fail("%s: %s", path, strerror(errno));
	if (!size_of(fd->fd, &bytes, &is_device))
		return fail("%s: neither a file nor a block device", path);
	*dev = (struct store_dev){ fd, bytes / STORE_BLOCK, dev_read, dev_write, dev_flush };
	if (store_open(s, dev, note, sizeof(note), why, sizeof(why)) != STORE_OK)
		return fail("%s: not a usable store: %s", path, why);
	if (note[0])
		fprintf(stderr, "%s: %s: %s\n", prog, path, note);
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	uint64_t size = 0, bytes;
	uint8_t uuid[16];
	char why[256];
	bool is_device;
	struct file_dev fd;
	struct store_dev dev;
	struct store s;

	if (argc == 4 && !strcmp(argv[1], "--size")) {
		if (!parse_size(argv[2], &size))
			return fail("'%s' is not a size (bytes, or with K, M, G, T)", argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2)
		return usage();
	const char *path = argv[1];
	/* A file is made here and never overwritten; a device is taken whole. */
	fd.fd = open(path, O_RDWR | O_CLOEXEC | (size ? O_CREAT | O_EXCL : 0), 0644);
	if (fd.fd < 0)
		return fail("%s: %s%s", path, strerror(errno),
			    errno == EEXIST ? " (a store is created in a new file)" :
			    errno == ENOENT && !size ? " (a new file needs --size)" : "");
	if (size) {
		/* Preallocated: the hypervisor resolves the file to sectors once, at boot. */
		int e = posix_fallocate(fd.fd, 0, (off_t)size);
		if (e) {
			unlink(path);
			return fail("%s: cannot reserve %" PRIu64 " bytes: %s", path, size,
				    strerror(e));
		}
	}
	if (!size_of(fd.fd, &bytes, &is_device))
		return fail("%s: neither a file nor a block device", path);
	if (!size && !is_device)
		return fail("%s: an existing file is not made a store; give --size for a new one",
			    path);
	if (getrandom(uuid, sizeof(uuid), 0) != (ssize_t)sizeof(uuid))
		return fail("no random bytes for the store's uuid: %s", strerror(errno));
	dev = (struct store_dev){ &fd, bytes / STORE_BLOCK, dev_read, dev_write, dev_flush };
	if (store_format(&s, &dev, uuid, why, sizeof(why)) != STORE_OK) {
		if (size)
			unlink(path);
		return fail("%s: %s", path, why);
	}
	printf("%s: a store of %" PRIu64 " MiB, %" PRIu64 " KiB free\n", path,
	       dev.blocks * STORE_BLOCK >> 20, store_free_blocks(&s) * (STORE_BLOCK / 1024));
	return close(fd.fd) ? fail("%s: %s", path, strerror(errno)) : 0;
}

static int cmd_list(int argc, char **argv)
{
	struct file_dev fd;
	struct store_dev dev;
	static struct store s;
	int rc;

	if (argc != 2)
		return usage();
	if ((rc = open_store(argv[1], O_RDONLY, &fd, &dev, &s)))
		return rc;
	printf("store %s: generation %" PRIu64 ", %" PRIu64 " MiB, %" PRIu64 " KiB free, "
	       "%u object(s)\n", argv[1], s.super.generation, s.super.total_blocks * STORE_BLOCK >> 20,
	       store_free_blocks(&s) * (STORE_BLOCK / 1024), s.table.count);
	for (uint32_t i = 0; i < s.table.count; i++) {
		const struct store_object *o = &s.table.object[i];
		printf("  %-31s %-11s %12" PRIu64 " bytes, %u extent(s)\n", o->name,
		       kind_name(o->kind), o->bytes, o->extent_count);
	}
	close(fd.fd);
	return 0;
}

/* Copies bytes between the image file and object o, one way or the other. */
static int copy(const struct file_dev *store, const struct store_object *o, int image,
		bool into_store, const char *what)
{
	static uint8_t buf[CHUNK];
	struct timespec t0;
	uint64_t block, run;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t at = 0; at < o->bytes;) {
		if (!store_map(o, at, &block, &run))
			return fail("object '%s' does not cover byte %" PRIu64, o->name, at);
		uint64_t n = run * STORE_BLOCK < CHUNK ? run * STORE_BLOCK : CHUNK;
		uint64_t take = o->bytes - at < n ? o->bytes - at : n;
		/* Whole blocks to the store: the last one's tail is zeros. */
		size_t io = (size_t)((take + STORE_BLOCK - 1) / STORE_BLOCK * STORE_BLOCK);
		off_t where = (off_t)(block * STORE_BLOCK);
		if (into_store) {
			memset(buf + take, 0, io - take);
			if (pread(image, buf, take, (off_t)at) != (ssize_t)take)
				return fail("reading the image at %" PRIu64 ": %s", at,
					    errno ? strerror(errno) : "short read");
			if (pwrite(store->fd, buf, io, where) != (ssize_t)io)
				return fail("writing the store: %s", strerror(errno));
		} else {
			if (pread(store->fd, buf, io, where) != (ssize_t)io)
				return fail("reading the store: %s", strerror(errno));
			if (pwrite(image, buf, take, (off_t)at) != (ssize_t)take)
				return fail("writing the image: %s", strerror(errno));
		}
		at += take;
		progress(what, at, o->bytes, &t0);
	}
	return 0;
}

static int cmd_import(int argc, char **argv)
{
	struct file_dev fd;
	struct store_dev dev;
	static struct store s;
	struct store_object o;
	char why[256];
	uint64_t bytes;
	bool is_device;
	int rc, image;

	if (argc != 4)
		return usage();
	image = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (image < 0)
		return fail("%s: %s", argv[3], strerror(errno));
	if (!size_of(image, &bytes, &is_device) || !bytes)
		return fail("%s: not a disk image with a size", argv[3]);
	if ((rc = open_store(argv[1], O_RDWR, &fd, &dev, &s)))
		return rc;
	if (store_allocate(&s, argv[2], STORE_DISK, bytes, (uint64_t)time(NULL), &o, why,
			   sizeof(why)) != STORE_OK)
		return fail("%s: %s", argv[1], why);
	/* The data first, flushed; then the commit that makes it an object. */
	if ((rc = copy(&fd, &o, image, true, "import")))
		return rc;
	if (fsync(fd.fd))
		return fail("%s: %s", argv[1], strerror(errno));
	if (store_commit_add(&s, &o, why, sizeof(why)) != STORE_OK)
		return fail("%s: %s", argv[1], why);
	printf("%s: '%s' imported, %" PRIu64 " bytes in %u extent(s)\n", argv[1], o.name, o.bytes,
	       o.extent_count);
	close(image);
	return close(fd.fd) ? fail("%s: %s", argv[1], strerror(errno)) : 0;
}

static int cmd_export(int argc, char **argv)
{
	struct file_dev fd;
	struct store_dev dev;
	static struct store s;
	int rc, image;

	if (argc != 4)
		return usage();
	if ((rc = open_store(argv[1], O_RDONLY, &fd, &dev, &s)))
		return rc;
	const struct store_object *o = store_find(&s, argv[2]);
	if (!o)
		return fail("%s: the store holds no '%s'", argv[1], argv[2]);
	image = open(argv[3], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (image < 0)
		return fail("%s: %s", argv[3], strerror(errno));
	if ((rc = copy(&fd, o, image, false, "export")) || (fsync(image) && (rc = 1))) {
		unlink(argv[3]);
		return rc;
	}
	close(fd.fd);
	return close(image) ? fail("%s: %s", argv[3], strerror(errno)) : 0;
}

static int cmd_delete(int argc, char **argv)
{
	struct file_dev fd;
	struct store_dev dev;
	static struct store s;
	char why[256];
	int rc;

	if (argc != 3)
		return usage();
	if ((rc = open_store(argv[1], O_RDWR, &fd, &dev, &s)))
		return rc;
	if (store_commit_delete(&s, argv[2], why, sizeof(why)) != STORE_OK)
		return fail("%s: %s", argv[1], why);
	return close(fd.fd) ? fail("%s: %s", argv[1], strerror(errno)) : 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} commands[] = {
		{ "create", cmd_create }, { "list", cmd_list }, { "import", cmd_import },
		{ "export", cmd_export }, { "delete", cmd_delete },
	};

	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	return usage();
}
