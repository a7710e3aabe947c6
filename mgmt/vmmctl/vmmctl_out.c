/*
 * What vmmctl prints: JSON documents (always valid, whatever bytes the
 * server sent), tables and "key: value" lines for people with every string
 * from the line escaped, event lines, errors with their code names.
 * Rendering is driven by the tag types of include/abi/api.h, so a tag added to an
 * answer shows up without a change here.
 */
#include <stdlib.h>
#include <string.h>

#include "mgmt/vmmctl/vmmctl.h"

/* ---- JSON ---- */

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

static void json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
}

void json_begin(struct json *j, char open)
{
	json_sep(j);
	fputc(open, j->f);
	if (j->depth + 1 < sizeof(j->first) / sizeof(j->first[0]))
		j->depth++;
	j->first[j->depth] = true;
}

void json_end(struct json *j, char close)
{
	fputc(close, j->f);
	if (j->depth > 0)
		j->depth--;
}

void json_str(struct json *j, const uint8_t *s, size_t len)
{
	json_sep(j);
	fputc('"', j->f);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];

		switch (c) {
		case '"':
			fputs("\\\"", j->f);
			break;
		case '\\':
			fputs("\\\\", j->f);
			break;
		case '\n':
			fputs("\\n", j->f);
			break;
		case '\r':
			fputs("\\r", j->f);
			break;
		case '\t':
			fputs("\\t", j->f);
			break;
		default:
			/*
			 * Bytes above 0x7e as code points U+0080..U+00FF (Latin-1),
			 * so the document stays valid UTF-8 and a script gets the
			 * bytes back by encoding the string as Latin-1; DEL and
			 * controls escaped too.
			 */
			if (c < 0x20 || c >= 0x7f)
				fprintf(j->f, "\\u%04x", c);
			else
				fputc(c, j->f);
		}
	}
	fputc('"', j->f);
}

void json_key(struct json *j, const char *key)
{
	json_str(j, (const uint8_t *)key, strlen(key));
	fputc(':', j->f);
	j->after_key = true;
}

void json_cstr(struct json *j, const char *s)
{
	json_str(j, (const uint8_t *)s, strlen(s));
}

void json_uint(struct json *j, uint64_t v)
{
	json_sep(j);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_bool(struct json *j, bool v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
	json_sep(j);
	fputs("null", j->f);
}

/* ---- Safe text ---- */

void vmmctl_put_safe(FILE *f, const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\')
			fputs("\\\\", f);
		else if (s[i] >= 0x20 && s[i] <= 0x7e)
			fputc(s[i], f);
		else
			fprintf(f, "\\x%02x", s[i]);
	}
}

void vmmctl_safe(char *out, size_t cap, const uint8_t *s, size_t len)
{
	size_t o = 0;

	if (cap == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		char tmp[5];
		size_t n;

		if (s[i] == '\\')
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\\\");
		else if (s[i] >= 0x20 && s[i] <= 0x7e)
			n = (size_t)snprintf(tmp, sizeof(tmp), "%c", s[i]);
		else
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
		if (o + n + 1 > cap) {
			/* Does not fit: end with "..." where there is room. */
			if (cap >= 4) {
				size_t at = o + 4 <= cap ? o : cap - 4;

				memcpy(out + at, "...", 4);
				return;
			}
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
}

void vmmctl_put_console(FILE *f, const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];

		if (c == '\n' || c == '\r' || c == '\t' || (c >= 0x20 && c <= 0x7e))
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
}

/* ---- Names ---- */

static const char *const state_names[] = {
	[0] = "Invalid", /* the VM's deletion event (docs/protocol.md) */
	[1] = "TurnedOff", [2] = "Saved",     [3] = "TurningOn",     [4] = "Restoring",
	[5] = "Running",   [6] = "Paused",    [7] = "Saving",        [8] = "TurningOff",
	[9] = "MergingDrives", [10] = "DeleteMachine",
};

const char *vmmctl_state_name(uint8_t state)
{
	if (state < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[state];
	return NULL;
}

static bool equal_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a, y = *b;

		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return *a == *b;
}

bool vmmctl_state_parse(const char *s, uint8_t *state)
{
	unsigned v = 0;
	size_t i = 0;

	for (uint8_t k = 1; k < sizeof(state_names) / sizeof(state_names[0]); k++) {
		if (equal_nocase(s, state_names[k])) {
			*state = k;
			return true;
		}
	}
	for (; s[i] >= '0' && s[i] <= '9' && v <= 255; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (i == 0 || s[i] || v == 0 || v > 255)
		return false;
	*state = (uint8_t)v;
	return true;
}

#define ERROR_SYMBOL(sym, code, name) case code: return #sym;

const char *vmmctl_error_symbol(uint16_t code)
{
	switch (code) {
	API_ERRORS(ERROR_SYMBOL)
	}
	return NULL;
}

#undef ERROR_SYMBOL

/* ---- Values ---- */

/* The JSON key of a list: "vms" rather than "vm_entry". */
static const char *list_key(uint8_t tag)
{
	switch (tag) {
	case API_TAG_VM_ENTRY:
		return "vms";
	case API_TAG_NET_ENTRY:
		return "networks";
	case API_TAG_NIC_ENTRY:
		return "nics";
	case API_TAG_LEASE_ENTRY:
		return "leases";
	case API_TAG_DISK_ENTRY:
		return "disks";
	}
	return api_tag_name(tag);
}

static void ipv4_text(char *out, size_t cap, const uint8_t *v)
{
	snprintf(out, cap, "%u.%u.%u.%u", v[0], v[1], v[2], v[3]);
}

static uint64_t le(const uint8_t *v, size_t n)
{
	uint64_t x = 0;

	for (size_t i = 0; i < n && i < 8; i++)
		x |= (uint64_t)v[i] << (8 * i);
	return x;
}

static void size_text(char *out, size_t cap, uint64_t v)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	while (u < 3 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, cap, "%llu bytes", (unsigned long long)v);
	else
		snprintf(out, cap, "%llu %s", (unsigned long long)v, units[u]);
}

static void duration_text(char *out, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000, d = s / 86400;

	if (d)
		snprintf(out, cap, "%llud %02llu:%02llu:%02llu", (unsigned long long)d,
			 (unsigned long long)(s / 3600 % 24), (unsigned long long)(s / 60 % 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(out, cap, "%02llu:%02llu:%02llu.%03llu", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60),
			 (unsigned long long)(ms % 1000));
}

/* A value for people, escaped, at most cap - 1 characters. */
static void value_text(char *out, size_t cap, uint8_t tag, const uint8_t *v, size_t n)
{
	enum api_type type;
	char a[20], b[20];

	out[0] = '\0';
	if (!api_tag_type(tag, &type) || !api_value_valid(type, v, n)) {
		snprintf(out, cap, "?");
		return;
	}
	switch (type) {
	case API_T_U8:
	case API_T_U16:
	case API_T_U32:
	case API_T_U64:
		if (tag == API_TAG_STATE) {
			const char *name = vmmctl_state_name(v[0]);

			if (name)
				snprintf(out, cap, "%s", name);
			else
				snprintf(out, cap, "%u", v[0]);
		} else if (tag == API_TAG_UPTIME_MS || tag == API_TAG_VM_UPTIME_MS) {
			duration_text(out, cap, le(v, n));
		} else if (tag == API_TAG_EXPIRES_S || tag == API_TAG_LEASE_TIME_S) {
			snprintf(out, cap, "%llu s", (unsigned long long)le(v, n));
		} else if (tag == API_TAG_LOAD || tag == API_TAG_ENTRY) {
			snprintf(out, cap, "0x%llx", (unsigned long long)le(v, n));
		} else {
			snprintf(out, cap, "%llu", (unsigned long long)le(v, n));
		}
		return;
	case API_T_BOOL:
		snprintf(out, cap, "%s", v[0] ? "yes" : "no");
		return;
	case API_T_SIZE:
		size_text(out, cap, le(v, n));
		return;
	case API_T_STR:
	case API_T_NAME:
	case API_T_BYTES:
		vmmctl_safe(out, cap, v, n);
		return;
	case API_T_HEX: {
		size_t o = 0;

		for (size_t i = 0; i < n && o + 3 <= cap; i++)
			o += (size_t)snprintf(out + o, cap - o, "%02x", v[i]);
		return;
	}
	case API_T_MAC:
		snprintf(out, cap, "%02x:%02x:%02x:%02x:%02x:%02x", v[0], v[1], v[2], v[3], v[4],
			 v[5]);
		return;
	case API_T_IPV4:
		ipv4_text(out, cap, v);
		return;
	case API_T_IPV4_RANGE:
		ipv4_text(a, sizeof(a), v);
		ipv4_text(b, sizeof(b), v + 4);
		snprintf(out, cap, "%s-%s", a, b);
		return;
	case API_T_IPV4_LIST: {
		size_t o = 0;

		for (size_t i = 0; i + 4 <= n && o + 18 <= cap; i += 4) {
			ipv4_text(a, sizeof(a), v + i);
			o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", a);
		}
		return;
	}
	case API_T_LIST:
		snprintf(out, cap, "(list)");
		return;
	}
}

static void value_json(struct json *j, uint8_t tag, enum api_type type, const uint8_t *v,
		       size_t n)
{
	char a[20];

	switch (type) {
	case API_T_U8:
	case API_T_U16:
	case API_T_U32:
	case API_T_U64:
	case API_T_SIZE:
		json_uint(j, le(v, n));
		return;
	case API_T_BOOL:
		json_bool(j, v[0] != 0);
		return;
	case API_T_STR:
	case API_T_NAME:
	case API_T_BYTES:
		json_str(j, v, n);
		return;
	case API_T_HEX: {
		char hex[2 * PROTO_MAX_PAYLOAD + 1];
		size_t o = 0;

		for (size_t i = 0; i < n && o + 3 <= sizeof(hex); i++)
			o += (size_t)snprintf(hex + o, sizeof(hex) - o, "%02x", v[i]);
		hex[o] = '\0';
		json_cstr(j, hex);
		return;
	}
	case API_T_MAC:
	case API_T_IPV4:
		value_text(a, sizeof(a), tag, v, n);
		json_cstr(j, a);
		return;
	case API_T_IPV4_RANGE:
	case API_T_IPV4_LIST:
		json_begin(j, '[');
		for (size_t i = 0; i + 4 <= n; i += 4) {
			ipv4_text(a, sizeof(a), v + i);
			json_cstr(j, a);
		}
		json_end(j, ']');
		return;
	case API_T_LIST:
		json_null(j);
		return;
	}
}

/* Tags that repeat in a payload: lists and nic_spec. */
static bool repeats(uint8_t tag, enum api_type type)
{
	return type == API_T_LIST || tag == API_TAG_NIC_SPEC;
}

/* The known tags of a payload, valid values only, single-valued ones once. */
struct walk {
	struct tlv_reader r;
	uint8_t seen[32];
};

static void walk_init(struct walk *w, const uint8_t *p, size_t n)
{
	tlv_reader_init(&w->r, p, n);
	memset(w->seen, 0, sizeof(w->seen));
}

static bool walk_next(struct walk *w, struct tlv *t, enum api_type *type)
{
	while (tlv_next(&w->r, t)) {
		if (!api_tag_type(t->tag, type) || !api_value_valid(*type, t->value, t->len))
			continue; /* unknown tag (newer server) or a bad value: skipped */
		if (repeats(t->tag, *type))
			return true;
		if (w->seen[t->tag / 8] & (1u << (t->tag % 8)))
			continue; /* single-valued: the first one counts */
		w->seen[t->tag / 8] |= (uint8_t)(1u << (t->tag % 8));
		return true;
	}
	return false;
}

static void json_fields(struct json *j, const uint8_t *p, size_t n, uint8_t list_tag,
			unsigned depth);

static void json_list(struct json *j, const uint8_t *p, size_t n, uint8_t tag, unsigned depth)
{
	struct tlv_reader r;
	struct tlv t;

	json_key(j, list_key(tag));
	json_begin(j, '[');
	tlv_reader_init(&r, p, n);
	while (tlv_next(&r, &t)) {
		if (t.tag != tag)
			continue;
		json_begin(j, '{');
		if (depth < 2)
			json_fields(j, t.value, t.len, 0, depth + 1);
		json_end(j, '}');
	}
	json_end(j, ']');
}

/* The members of one object: scalars in order, then each list (and nic_spec) as an array. */
static void json_fields(struct json *j, const uint8_t *p, size_t n, uint8_t list_tag,
			unsigned depth)
{
	struct walk w;
	struct tlv t;
	enum api_type type;
	uint8_t lists[32] = { 0 };
	bool want_list = list_tag != 0;

	walk_init(&w, p, n);
	while (walk_next(&w, &t, &type)) {
		if (repeats(t.tag, type)) {
			lists[t.tag / 8] |= (uint8_t)(1u << (t.tag % 8));
			continue;
		}
		json_key(j, api_tag_name(t.tag));
		if (t.tag == API_TAG_STATE) {
			/* "state" is the name for scripts, "state_code" the number. */
			const char *name = vmmctl_state_name(t.value[0]);
			char num[24];

			snprintf(num, sizeof(num), "%u", t.value[0]);
			json_cstr(j, name ? name : num);
			json_key(j, "state_code");
		}
		value_json(j, t.tag, type, t.value, t.len);
	}
	if (want_list)
		lists[list_tag / 8] |= (uint8_t)(1u << (list_tag % 8));
	for (unsigned tag = 0; tag < 256; tag++) {
		if (!(lists[tag / 8] & (1u << (tag % 8))))
			continue;
		if (tag == API_TAG_NIC_SPEC) {
			struct tlv_reader r;

			json_key(j, "nic_spec");
			json_begin(j, '[');
			tlv_reader_init(&r, p, n);
			while (tlv_next(&r, &t))
				if (t.tag == API_TAG_NIC_SPEC &&
				    api_value_valid(API_T_STR, t.value, t.len))
					json_str(j, t.value, t.len);
			json_end(j, ']');
			continue;
		}
		json_list(j, p, n, (uint8_t)tag, depth);
	}
}

void vmmctl_json_fields(struct json *j, const uint8_t *tlvs, size_t len, uint8_t list_tag)
{
	json_fields(j, tlvs, len, list_tag, 0);
}

void vmmctl_render_json(FILE *f, const uint8_t *tlvs, size_t len)
{
	struct json j;

	json_init(&j, f);
	json_begin(&j, '{');
	json_fields(&j, tlvs, len, 0, 0);
	json_end(&j, '}');
	fputc('\n', f);
}

/* ---- For people ---- */

#define CELL_MAX 48
#define COLUMNS_MAX 16

static void label(char *out, size_t cap, uint8_t tag)
{
	const char *name = api_tag_name(tag);
	size_t i = 0;

	for (; name[i] && i + 1 < cap; i++)
		out[i] = name[i] == '_' ? ' ' : name[i];
	out[i] = '\0';
}

static void table(FILE *f, const uint8_t *p, size_t n, uint8_t tag)
{
	uint8_t cols[COLUMNS_MAX];
	size_t width[COLUMNS_MAX];
	unsigned ncols = 0, rows = 0;
	struct tlv_reader r;
	struct tlv e, t;
	char cell[CELL_MAX + 1];

	/* Columns: the tags of the entries, in the order they first appear. */
	tlv_reader_init(&r, p, n);
	while (tlv_next(&r, &e)) {
		struct walk w;
		enum api_type type;

		if (e.tag != tag)
			continue;
		rows++;
		walk_init(&w, e.value, e.len);
		while (walk_next(&w, &t, &type)) {
			unsigned k = 0;

			if (type == API_T_LIST)
				continue;
			while (k < ncols && cols[k] != t.tag)
				k++;
			if (k == ncols && ncols < COLUMNS_MAX) {
				cols[ncols] = t.tag;
				width[ncols] = strlen(api_tag_name(t.tag));
				ncols++;
			}
			if (k < ncols) {
				value_text(cell, sizeof(cell), t.tag, t.value, t.len);
				if (strlen(cell) > width[k])
					width[k] = strlen(cell);
			}
		}
	}
	if (rows == 0) {
		fprintf(f, "(no %s)\n", list_key(tag));
		return;
	}
	for (unsigned k = 0; k < ncols; k++) {
		const char *name = api_tag_name(cols[k]);

		for (size_t i = 0; name[i]; i++)
			fputc(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i], f);
		if (k + 1 < ncols)
			fprintf(f, "%*s", (int)(width[k] - strlen(name) + 2), "");
	}
	fputc('\n', f);
	tlv_reader_init(&r, p, n);
	while (tlv_next(&r, &e)) {
		if (e.tag != tag)
			continue;
		for (unsigned k = 0; k < ncols; k++) {
			struct walk w;
			enum api_type type;
			bool found = false;

			walk_init(&w, e.value, e.len);
			while (!found && walk_next(&w, &t, &type))
				found = t.tag == cols[k] && type != API_T_LIST;
			if (found)
				value_text(cell, sizeof(cell), t.tag, t.value, t.len);
			else
				snprintf(cell, sizeof(cell), "-");
			fputs(cell, f);
			if (k + 1 < ncols)
				fprintf(f, "%*s", (int)(width[k] - strlen(cell) + 2), "");
		}
		fputc('\n', f);
	}
}

static void human_fields(FILE *f, const uint8_t *p, size_t n, uint8_t list_tag)
{
	struct walk w;
	struct tlv t;
	enum api_type type;
	uint8_t lists[32] = { 0 };
	bool any = false;
	char name[40], value[2 * API_STR_MAX + 8];

	walk_init(&w, p, n);
	while (walk_next(&w, &t, &type)) {
		if (type == API_T_LIST) {
			lists[t.tag / 8] |= (uint8_t)(1u << (t.tag % 8));
			continue;
		}
		label(name, sizeof(name), t.tag);
		if (type == API_T_BYTES || t.tag == API_TAG_NIC_SPEC) {
			fprintf(f, "%-16s ", strcat(name, ":"));
			vmmctl_put_safe(f, t.value, t.len);
			fputc('\n', f);
		} else {
			value_text(value, sizeof(value), t.tag, t.value, t.len);
			fprintf(f, "%-16s %s\n", strcat(name, ":"), value);
		}
		any = true;
	}
	if (list_tag)
		lists[list_tag / 8] |= (uint8_t)(1u << (list_tag % 8));
	for (unsigned tag = 0; tag < 256; tag++) {
		if (!(lists[tag / 8] & (1u << (tag % 8))))
			continue;
		if (any)
			fputc('\n', f);
		table(f, p, n, (uint8_t)tag);
		any = true;
	}
}

void vmmctl_human_fields(FILE *f, const uint8_t *tlvs, size_t len, uint8_t list_tag)
{
	human_fields(f, tlvs, len, list_tag);
}

void vmmctl_render_human(FILE *f, const uint8_t *tlvs, size_t len)
{
	human_fields(f, tlvs, len, 0);
}

/* A list answer: the list is shown (empty) even when no entry came. */
void vmmctl_render_list(FILE *f, bool json, const uint8_t *tlvs, size_t len, uint8_t list_tag)
{
	if (json) {
		struct json j;

		json_init(&j, f);
		json_begin(&j, '{');
		json_fields(&j, tlvs, len, list_tag, 0);
		json_end(&j, '}');
		fputc('\n', f);
	} else {
		human_fields(f, tlvs, len, list_tag);
	}
}

bool vmmctl_merge_page(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *page,
		       size_t page_len, bool first)
{
	struct tlv_reader r;
	struct tlv t;

	tlv_reader_init(&r, page, page_len);
	while (tlv_next(&r, &t)) {
		enum api_type type;
		size_t need = TLV_HEADER_SIZE + t.len;
		bool list = api_tag_type(t.tag, &type) && type == API_T_LIST;

		if (t.tag == API_TAG_CURSOR || (!first && !list))
			continue;
		if (*len + need > VMMCTL_MERGED_MAX)
			return false;
		if (*len + need > *cap) {
			size_t ncap = *cap ? *cap : 4096;
			uint8_t *nb;

			while (ncap < *len + need)
				ncap *= 2;
			nb = realloc(*buf, ncap);
			if (!nb)
				return false;
			*buf = nb;
			*cap = ncap;
		}
		memcpy(*buf + *len, t.value - TLV_HEADER_SIZE, need);
		*len += need;
	}
	return !r.malformed;
}

/* ---- Events and errors ---- */

void vmmctl_print_event(FILE *f, bool json, const struct vmmctl_frame *ev)
{
	const uint8_t *p = ev->payload;
	size_t n = ev->length;
	const char *name = api_event_name(ev->code);
	char vm[2 * API_NAME_MAX + 8] = "?", reason[2 * API_STR_MAX + 8] = "";
	uint64_t seq = 0, offset = 0, lost = 0;
	uint8_t state = 0;
	struct tlv t;

	if (!api_payload_valid(p, n))
		n = 0; /* a broken event still shows as one, without its fields */
	if (json) {
		struct json j;

		json_init(&j, f);
		json_begin(&j, '{');
		json_key(&j, "event");
		if (name) {
			json_cstr(&j, name);
		} else {
			char num[16];

			snprintf(num, sizeof(num), "%u", ev->code);
			json_cstr(&j, num);
		}
		json_fields(&j, p, n, 0, 0);
		json_end(&j, '}');
		fputc('\n', f);
		fflush(f);
		return;
	}
	if (tlv_find(p, n, API_TAG_VM, &t) == TLV_OK)
		vmmctl_safe(vm, sizeof(vm), t.value, t.len);
	tlv_get_u64(p, n, API_TAG_SEQ, &seq);
	switch (ev->code) {
	case API_EVENT_VM_STATE_CHANGE: {
		const char *sn;

		tlv_get_u8(p, n, API_TAG_STATE, &state);
		sn = vmmctl_state_name(state);
		if (tlv_find(p, n, API_TAG_REASON, &t) == TLV_OK) {
			char safe[2 * API_STR_MAX + 4];

			vmmctl_safe(safe, sizeof(safe), t.value, t.len);
			snprintf(reason, sizeof(reason), " (%s)", safe);
		}
		if (sn)
			fprintf(f, "event %llu: %s %s%s\n", (unsigned long long)seq, vm, sn, reason);
		else
			fprintf(f, "event %llu: %s state %u%s\n", (unsigned long long)seq, vm, state,
				reason);
		break;
	}
	case API_EVENT_CONSOLE_OUTPUT: {
		const uint8_t *d = NULL;
		size_t dn = 0;

		tlv_get_u64(p, n, API_TAG_OFFSET, &offset);
		tlv_get_bytes(p, n, API_TAG_DATA, &d, &dn);
		fprintf(f, "console %s @%llu: ", vm, (unsigned long long)offset);
		vmmctl_put_safe(f, d, dn);
		fputc('\n', f);
		break;
	}
	case API_EVENT_EVENTS_LOST:
		tlv_get_u64(p, n, API_TAG_LOST, &lost);
		fprintf(f, "events lost: %llu from event %llu on (ask 'state' for the VMs you follow)\n",
			(unsigned long long)lost, (unsigned long long)seq);
		break;
	default:
		fprintf(f, "event 0x%04x:\n", ev->code);
		human_fields(f, p, n, 0);
		break;
	}
	fflush(f);
}

void vmmctl_print_api_error(FILE *out, FILE *err, bool json, const char *what,
			    const struct vmmctl_conn *c)
{
	const char *sym = vmmctl_error_symbol(c->err_code);
	const char *state = c->err_has_state ? vmmctl_state_name(c->err_state) : NULL;

	fprintf(err, "vmmctl: %s: ", what);
	if (sym)
		fprintf(err, "%s (%s)", sym, api_error_name(c->err_code));
	else
		fprintf(err, "unknown error %u", c->err_code);
	if (c->err_msg[0]) {
		fputs(": ", err);
		vmmctl_put_safe(err, (const uint8_t *)c->err_msg, strlen(c->err_msg));
	}
	if (c->err_has_state) {
		if (state)
			fprintf(err, " [state: %s]", state);
		else
			fprintf(err, " [state: %u]", c->err_state);
	}
	if (c->err_retry_after_ms)
		fprintf(err, " [retry after %u ms]", c->err_retry_after_ms);
	fputc('\n', err);
	if (json) {
		struct json j;

		json_init(&j, out);
		json_begin(&j, '{');
		json_key(&j, "error");
		json_begin(&j, '{');
		json_key(&j, "code");
		json_uint(&j, c->err_code);
		json_key(&j, "name");
		json_cstr(&j, sym ? sym : "UNKNOWN");
		json_key(&j, "description");
		json_cstr(&j, api_error_name(c->err_code));
		json_key(&j, "message");
		json_cstr(&j, c->err_msg);
		if (c->err_has_state) {
			json_key(&j, "state_code");
			json_uint(&j, c->err_state);
			json_key(&j, "state");
			json_cstr(&j, state ? state : "unknown");
		}
		if (c->err_retry_after_ms) {
			json_key(&j, "retry_after_ms");
			json_uint(&j, c->err_retry_after_ms);
		}
		json_end(&j, '}');
		json_end(&j, '}');
		fputc('\n', out);
	}
}
