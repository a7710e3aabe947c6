#include "devices/disk.h"

#include <string.h>

uint64_t disk_chunk_count(uint64_t size)
{
	return size / DISK_CHUNK_SIZE + (size % DISK_CHUNK_SIZE != 0);
}

void disk_init(struct disk *d, const uint8_t *base, uint64_t size, uint8_t **table,
	       const struct disk_chunk_alloc *alloc)
{
	*d = (struct disk){ .base = base, .size = size, .chunks = table, .alloc = *alloc };
	for (uint64_t i = 0; i < disk_chunk_count(size); i++)
		table[i] = NULL;
}

void disk_init_medium(struct disk *d, uint64_t size, const struct disk_medium *medium)
{
	*d = (struct disk){ .medium = medium, .size = size };
}

bool disk_range_ok(const struct disk *d, uint64_t offset, uint64_t len)
{
	return offset <= d->size && len <= d->size - offset;
}

/* *len cut at the end of offset's chunk; returns the offset inside it. */
static uint64_t clip_to_chunk(uint64_t offset, uint64_t *len)
{
	uint64_t in_chunk = offset % DISK_CHUNK_SIZE;

	if (*len > DISK_CHUNK_SIZE - in_chunk)
		*len = DISK_CHUNK_SIZE - in_chunk;
	return in_chunk;
}

const uint8_t *disk_read_span(const struct disk *d, uint64_t offset, uint64_t *len)
{
	const uint8_t *chunk = d->chunks[offset / DISK_CHUNK_SIZE];
	uint64_t in_chunk = clip_to_chunk(offset, len);

	return chunk ? chunk + in_chunk : d->base + offset;
}

bool disk_read(const struct disk *d, uint64_t offset, void *buf, uint64_t len)
{
	uint8_t *out = buf;

	if (!disk_range_ok(d, offset, len))
		return false;
	if (d->medium)
		return d->medium->read(d->medium->ctx, offset, buf, len);
	while (len) {
		uint64_t n = len;
		const uint8_t *span = disk_read_span(d, offset, &n);

		memcpy(out, span, n);
		out += n;
		offset += n;
		len -= n;
	}
	return true;
}

int disk_prepare_write(struct disk *d, uint64_t offset, uint64_t len)
{
	if (!disk_range_ok(d, offset, len))
		return -1;
	if (!len)
		return 0;
	for (uint64_t i = offset / DISK_CHUNK_SIZE; i <= (offset + len - 1) / DISK_CHUNK_SIZE; i++) {
		if (d->chunks[i])
			continue;
		uint8_t *chunk = d->alloc.alloc(d->alloc.ctx);
		if (!chunk)
			return -1;
		/* The last chunk may lie partly past the disk's end. */
		uint64_t start = i * DISK_CHUNK_SIZE, n = d->size - start;
		if (n > DISK_CHUNK_SIZE)
			n = DISK_CHUNK_SIZE;
		memcpy(chunk, d->base + start, n);
		d->chunks[i] = chunk;
		d->chunks_written++;
	}
	return 0;
}

uint8_t *disk_write_span(struct disk *d, uint64_t offset, uint64_t *len)
{
	uint64_t in_chunk = clip_to_chunk(offset, len);

	return d->chunks[offset / DISK_CHUNK_SIZE] + in_chunk;
}

void disk_discard_writes(struct disk *d)
{
	/* A medium keeps what was written: that is what it is for. */
	if (d->medium)
		return;
	for (uint64_t i = 0; i < disk_chunk_count(d->size) && d->chunks_written; i++) {
		if (!d->chunks[i])
			continue;
		d->alloc.free(d->alloc.ctx, d->chunks[i]);
		d->chunks[i] = NULL;
		d->chunks_written--;
	}
}
