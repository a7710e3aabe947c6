#include "devices/devstate.h"

#include "lib/fmt.h"
#include "lib/le.h"

#include <stdarg.h>
#include <string.h>

/* Decoding goes into a copy of the device, so a refused record changes nothing. */
union scratch {
	uint64_t align;
	uint8_t bytes[DEVSTATE_MAX_STATE];
};

static unsigned width(enum devstate_type type)
{
	return DEVSTATE_TYPE_SIZE(type);
}

static size_t payload_size(const struct devstate_desc *d, unsigned version)
{
	size_t n = 0;

	for (unsigned i = 0; i < d->field_count; i++) {
		const struct devstate_field *f = &d->fields[i];
		if (f->since <= version)
			n += (size_t)f->count * width(f->type);
	}
	return n;
}

static const char *record_name(const struct devstate_instance *dev)
{
	return dev->name ? dev->name : dev->desc->name;
}

static size_t record_size(const struct devstate_instance *dev)
{
	return 1 + strlen(record_name(dev)) + 2 + 4 + payload_size(dev->desc, dev->desc->version);
}

/* Element i of f in the structure, as the member's own integer type. */
static uint64_t load_element(const void *state, const struct devstate_field *f, unsigned i)
{
	const uint8_t *p = (const uint8_t *)state + f->offset + (size_t)i * f->stride;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	switch (f->type) {
	case DEVSTATE_U16: memcpy(&u16, p, 2); return u16;
	case DEVSTATE_U32: memcpy(&u32, p, 4); return u32;
	case DEVSTATE_U64: memcpy(&u64, p, 8); return u64;
	default: memcpy(&u8, p, 1); return u8;
	}
}

static void store_element(void *state, const struct devstate_field *f, unsigned i, uint64_t v)
{
	uint8_t *p = (uint8_t *)state + f->offset + (size_t)i * f->stride;
	uint8_t u8 = (uint8_t)v;
	uint16_t u16 = (uint16_t)v;
	uint32_t u32 = (uint32_t)v;

	switch (f->type) {
	case DEVSTATE_U16: memcpy(p, &u16, 2); break;
	case DEVSTATE_U32: memcpy(p, &u32, 4); break;
	case DEVSTATE_U64: memcpy(p, &v, 8); break;
	default: memcpy(p, &u8, 1); break;
	}
}

size_t devstate_saved_size(const struct devstate_instance *devs, unsigned count)
{
	size_t n = 0;

	for (unsigned i = 0; i < count; i++)
		n += record_size(&devs[i]);
	return n;
}

size_t devstate_save(const struct devstate_instance *devs, unsigned count, uint8_t *out,
		     size_t cap)
{
	if (devstate_saved_size(devs, count) > cap)
		return 0;
	uint8_t *p = out;
	for (unsigned d = 0; d < count; d++) {
		const struct devstate_desc *desc = devs[d].desc;
		const char *name = record_name(&devs[d]);
		size_t name_len = strlen(name);

		*p++ = (uint8_t)name_len;
		memcpy(p, name, name_len);
		p += name_len;
		le_put(p, desc->version, 2);
		le_put(p + 2, payload_size(desc, desc->version), 4);
		p += 6;
		for (unsigned i = 0; i < desc->field_count; i++) {
			const struct devstate_field *f = &desc->fields[i];
			for (unsigned e = 0; e < f->count; e++) {
				le_put(p, load_element(devs[d].state, f, e), width(f->type));
				p += width(f->type);
			}
		}
	}
	return (size_t)(p - out);
}

/* Where the "[]" that takes an element's index is in a field's name, or NULL. */
static const char *index_brackets(const char *field)
{
	for (; *field; field++) {
		if (field[0] == '[' && field[1] == ']')
			return field;
	}
	return NULL;
}

static int vrefuse(struct devstate_error *err, const char *device, const char *field,
		   unsigned index, const char *format, va_list args)
{
	const char *brackets = index_brackets(field);
	int n;

	if (brackets)
		n = fmt_snprintf(err->text, sizeof(err->text), "%s: field %.*s[%u]%s ", device,
				 (int)(brackets - field), field, index, brackets + 2);
	else
		n = fmt_snprintf(err->text, sizeof(err->text), "%s: field %s ", device, field);
	if (n >= 0 && (size_t)n < sizeof(err->text))
		fmt_vsnprintf(err->text + n, sizeof(err->text) - (size_t)n, format, args);
	return n;
}

bool devstate_refuse(struct devstate_error *err, const char *device, const char *field,
		     unsigned index, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vrefuse(err, device, field, index, format, args);
	va_end(args);
	return false;
}

/* A bounded cursor over the input. */
struct reader {
	const uint8_t *in;
	size_t len, pos;
};

static bool take(struct reader *r, size_t n, const uint8_t **p, const char *device,
		 const char *what, struct devstate_error *err)
{
	if (r->len - r->pos < n) {
		fmt_snprintf(err->text, sizeof(err->text),
			     "%s: record truncated at byte %zu: %s needs %zu bytes, %zu left", device,
			     r->pos, what, n, r->len - r->pos);
		return false;
	}
	*p = r->in + r->pos;
	r->pos += n;
	return true;
}

/* The name of a record, printable whatever the input holds. */
static void printable(char *out, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = name[i] >= 0x20 && name[i] < 0x7f && name[i] != '\'' ? (char)name[i] : '?';
	out[len] = '\0';
}

static int find_device(const struct devstate_instance *devs, unsigned count, const uint8_t *name,
		       size_t len)
{
	for (unsigned d = 0; d < count; d++) {
		const char *record = record_name(&devs[d]);
		if (strlen(record) == len && memcmp(record, name, len) == 0)
			return (int)d;
	}
	return -1;
}

/* Every field of state within its range; name is the record's, for err. */
static bool check_ranges(const struct devstate_desc *desc, const void *state, const char *name,
			 struct devstate_error *err)
{
	for (unsigned i = 0; i < desc->field_count; i++) {
		const struct devstate_field *f = &desc->fields[i];
		for (unsigned e = 0; e < f->count; e++) {
			uint64_t v = load_element(state, f, e);
			if (v < f->min || v > f->max)
				return devstate_refuse(err, name, f->name, e,
						       "= %llu out of range %llu..%llu",
						       (unsigned long long)v,
						       (unsigned long long)f->min,
						       (unsigned long long)f->max);
		}
	}
	return true;
}

bool devstate_check(const struct devstate_desc *desc, const void *state,
		    struct devstate_error *err)
{
	/* Nothing live to compare with: the state is its own reference. */
	return check_ranges(desc, state, desc->name, err) &&
	       (!desc->check || desc->check(state, state, desc->name, err));
}

/*
 * Decodes the payload of a record of this version over scratch, then checks
 * every value (the fields the version lacks keep their reset values).
 */
static bool decode_fields(const struct devstate_instance *dev, unsigned version, const uint8_t *p,
			  void *scratch, struct devstate_error *err)
{
	const struct devstate_desc *desc = dev->desc;
	const char *name = record_name(dev);

	for (unsigned i = 0; i < desc->field_count; i++) {
		const struct devstate_field *f = &desc->fields[i];
		if (f->since > version)
			continue;
		for (unsigned e = 0; e < f->count; e++) {
			store_element(scratch, f, e, le_get(p, width(f->type)));
			p += width(f->type);
		}
	}
	return check_ranges(desc, scratch, name, err) &&
	       (!desc->check || desc->check(scratch, dev->state, name, err));
}

/*
 * One record from r into scratch (a copy of the live device, reset, then
 * overwritten by the record). *which is the device it names.
 */
static bool decode_record(const struct devstate_instance *devs, unsigned count, struct reader *r,
			  union scratch *scratch, unsigned *which, struct devstate_error *err)
{
	const uint8_t *p;
	char name[DEVSTATE_NAME_MAX + 1];

	if (!take(r, 1, &p, "devstate", "the name length", err))
		return false;
	size_t name_len = *p;
	if (name_len == 0 || name_len > DEVSTATE_NAME_MAX) {
		fmt_snprintf(err->text, sizeof(err->text),
			     "devstate: record at byte %zu: name length %zu not 1..%u", r->pos - 1,
			     name_len, DEVSTATE_NAME_MAX);
		return false;
	}
	if (!take(r, name_len, &p, "devstate", "the name", err))
		return false;
	int d = find_device(devs, count, p, name_len);
	if (d < 0) {
		printable(name, p, name_len);
		fmt_snprintf(err->text, sizeof(err->text), "devstate: unknown device '%s'", name);
		return false;
	}
	const struct devstate_desc *desc = devs[d].desc;
	const char *device = record_name(&devs[d]);
	if (!take(r, 6, &p, device, "the version and length", err))
		return false;
	unsigned version = (unsigned)le_get(p, 2);
	uint64_t len = le_get(p + 2, 4);
	if (version == 0 || version > desc->version) {
		fmt_snprintf(err->text, sizeof(err->text),
			     "%s: version %u unknown, this build reads 1..%u", device, version,
			     desc->version);
		return false;
	}
	if (len != payload_size(desc, version)) {
		fmt_snprintf(err->text, sizeof(err->text),
			     "%s: payload of %llu bytes, version %u has %zu", device,
			     (unsigned long long)len, version, payload_size(desc, version));
		return false;
	}
	if (!take(r, (size_t)len, &p, device, "the payload", err))
		return false;
	memcpy(scratch->bytes, devs[d].state, desc->size);
	desc->reset(scratch->bytes);
	*which = (unsigned)d;
	return decode_fields(&devs[d], version, p, scratch->bytes, err);
}

/* Every record in turn; with apply, each decoded device replaces the live one. */
static bool walk_records(const struct devstate_instance *devs, unsigned count, const uint8_t *in,
			 size_t len, bool apply, struct devstate_error *err)
{
	struct reader r = { in, len, 0 };
	union scratch scratch;
	uint64_t seen = 0;
	unsigned d;

	_Static_assert(DEVSTATE_MAX_DEVICES <= 64, "seen is a 64-bit set");
	while (r.pos < r.len) {
		if (!decode_record(devs, count, &r, &scratch, &d, err))
			return false;
		if (seen & 1ULL << d) {
			fmt_snprintf(err->text, sizeof(err->text), "%s: a second record",
				     record_name(&devs[d]));
			return false;
		}
		seen |= 1ULL << d;
		if (apply)
			memcpy(devs[d].state, scratch.bytes, devs[d].desc->size);
	}
	return true;
}

bool devstate_load(const struct devstate_instance *devs, unsigned count, const uint8_t *in,
		   size_t len, struct devstate_error *err)
{
	if (count > DEVSTATE_MAX_DEVICES) {
		fmt_snprintf(err->text, sizeof(err->text), "devstate: %u devices, at most %u",
			     count, DEVSTATE_MAX_DEVICES);
		return false;
	}
	for (unsigned d = 0; d < count; d++) {
		for (unsigned o = 0; o < d; o++) {
			if (strcmp(record_name(&devs[o]), record_name(&devs[d])) == 0) {
				fmt_snprintf(err->text, sizeof(err->text),
					     "devstate: two devices named '%s'", record_name(&devs[d]));
				return false;
			}
		}
	}
	/* All records are checked before the first device changes. */
	return walk_records(devs, count, in, len, false, err) &&
	       walk_records(devs, count, in, len, true, err);
}
