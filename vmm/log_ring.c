#include "vmm/log_ring.h"

_Static_assert((LOG_RING_SIZE & (LOG_RING_SIZE - 1)) == 0, "indexes wrap with a mask");
_Static_assert(LOG_RING_LINE_RESERVE < LOG_RING_SIZE / 2, "the log keeps most of the ring");

static bool put(struct log_ring *r, const char *s, size_t len, enum log_ring_kind kind)
{
	size_t limit = kind == LOG_RING_LOG ? LOG_RING_SIZE - LOG_RING_LINE_RESERVE : LOG_RING_SIZE;
	size_t used = (size_t)(r->head - r->tail);
	size_t need = len;

	if (kind != LOG_RING_LINE_FRAME)
		for (size_t i = 0; i < len; i++)
			need += s[i] == '\n';
	/* The management line may have filled the ring past a log line's limit. */
	if (used > limit || need > limit - used)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (kind != LOG_RING_LINE_FRAME && c == '\n')
			r->buf[r->head++ & (LOG_RING_SIZE - 1)] = '\r';
		/* 0x00 delimits frames (docs/protocol.md): text must not carry it. */
		if (kind == LOG_RING_LINE_TEXT && c == '\0')
			c = '?';
		r->buf[r->head++ & (LOG_RING_SIZE - 1)] = c;
	}
	return true;
}

static size_t take(struct log_ring *r, char *out, size_t max)
{
	size_t n = 0;

	while (n < max && r->tail != r->head)
		out[n++] = r->buf[r->tail++ & (LOG_RING_SIZE - 1)];
	return n;
}

bool log_ring_put(struct log_ring *r, const char *s, size_t len, enum log_ring_kind kind)
{
	spin_lock(&r->lock);
	bool queued = put(r, s, len, kind);
	spin_unlock(&r->lock);
	return queued;
}

size_t log_ring_take(struct log_ring *r, char *out, size_t max)
{
	spin_lock(&r->lock);
	size_t n = take(r, out, max);
	spin_unlock(&r->lock);
	return n;
}
