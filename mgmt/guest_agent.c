#include "mgmt/guest_agent.h"

#include <string.h>

void agent_stream_init(struct agent_stream *s, uint8_t *buf, size_t cap)
{
	*s = (struct agent_stream){ .buf = buf, .cap = cap };
}

void agent_stream_expect_sync(struct agent_stream *s)
{
	agent_stream_next(s);
	s->synced = false;
}

void agent_stream_next(struct agent_stream *s)
{
	s->len = 0;
	s->depth = 0;
	s->in_string = s->escape = s->overflow = false;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Tracks nesting through strings so braces inside them do not count:
 * the message ends where its outermost object closes, whatever follows.
 */
static void scan(struct agent_stream *s, uint8_t c)
{
	if (s->in_string) {
		if (s->escape)
			s->escape = false;
		else if (c == '\\')
			s->escape = true;
		else if (c == '"')
			s->in_string = false;
		return;
	}
	if (c == '"')
		s->in_string = true;
	else if (c == '{' || c == '[')
		s->depth++;
	else if (c == '}' || c == ']')
		s->depth--;
}

size_t agent_stream_feed(struct agent_stream *s, const uint8_t *in, size_t n, bool *complete)
{
	size_t i = 0;

	*complete = false;
	while (i < n) {
		uint8_t c = in[i++];
		if (c == AGENT_SYNC_BYTE) {
			/* The agent's answer to a sync starts here; a half message before it is noise. */
			s->skipped += s->len;
			agent_stream_next(s);
			s->synced = true;
			continue;
		}
		if (!s->synced || (s->depth == 0 && c != '{')) {
			s->skipped += !is_space(c) || !s->synced;
			continue;
		}
		if (s->len < s->cap)
			s->buf[s->len++] = c;
		else
			s->overflow = true;
		scan(s, c);
		if (s->depth == 0) {
			*complete = true;
			break;
		}
	}
	return i;
}

enum agent_reply agent_reply_read(struct json_doc *doc, const uint8_t *msg, size_t len,
				  struct json_token *tok, int *value, char *error, size_t error_cap)
{
	int e;

	if (error_cap)
		error[0] = '\0';
	if (json_parse(doc, (const char *)msg, len, tok, AGENT_REPLY_TOKENS) != JSON_OK ||
	    tok[0].type != JSON_OBJECT)
		return AGENT_REPLY_MALFORMED;
	*value = json_get(doc, 0, "return");
	if (*value >= 0)
		return AGENT_REPLY_RETURN;
	e = json_get(doc, 0, "error");
	if (e < 0 || doc->tok[e].type != JSON_OBJECT)
		return AGENT_REPLY_MALFORMED;
	/* "desc" says what went wrong; "class" only when there is no desc. */
	if (json_string(doc, json_get(doc, e, "desc"), error, error_cap) < 0 &&
	    json_string(doc, json_get(doc, e, "class"), error, error_cap) < 0 && error_cap)
		error[0] = '\0';
	return AGENT_REPLY_ERROR;
}

void agent_request_begin(struct json_writer *w, char *buf, size_t cap, const char *command)
{
	json_writer_init(w, buf, cap);
	json_begin_object(w);
	json_key(w, "execute");
	json_put_string(w, command, strlen(command));
	json_key(w, "arguments");
	json_begin_object(w);
}

size_t agent_request_end(struct json_writer *w)
{
	json_end_object(w);
	json_end_object(w);
	if (!json_writer_ok(w) || w->len + 2 > w->cap)
		return 0;
	w->buf[w->len++] = '\n';
	w->buf[w->len] = '\0';
	return w->len;
}
