/*
 * Device state codec: each device model describes its state structure
 * field by field (name, integer width, place in the structure, element
 * count, allowed range, the version that introduced it), so that a VM's
 * devices can be written as records in a fixed byte order and loaded back
 * by this or a newer build. The record format and the rules for writing a
 * descriptor are in docs/devices.md. Only device state is described:
 * wiring (callbacks, their contexts, the host's clock reference) stays
 * with the VM that owns the device and is never in a record.
 *
 * A record is hostile input: decoding is bounded by the input at every
 * step, checks every value against its field's range and the device's own
 * cross-field check, and changes no device unless every record passed.
 * Plain C, no hardware access.
 */
#ifndef DEVICES_DEVSTATE_H
#define DEVICES_DEVSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEVSTATE_NAME_MAX 16   /* bytes in a device name */
#define DEVSTATE_MAX_STATE 4096 /* bytes in a described structure (a vCPU: 3.1 KiB) */
#define DEVSTATE_MAX_DEVICES 40
#define DEVSTATE_ERROR_MAX 128
#define DEVSTATE_HEADER_MAX (1 + DEVSTATE_NAME_MAX + 2 + 4)

/* Each is stored little-endian in its width; a bool is one byte, 0 or 1. */
enum devstate_type { DEVSTATE_U8, DEVSTATE_U16, DEVSTATE_U32, DEVSTATE_U64, DEVSTATE_BOOL };

struct devstate_field {
	/* "irr", "rx[]" (an array), "chip[].irr" (a member of an array of structures) */
	const char *name;
	enum devstate_type type;
	uint16_t offset;   /* of element 0 in the structure */
	uint16_t count;    /* elements */
	uint16_t stride;   /* bytes from one element to the next */
	uint16_t since;    /* the version that introduced the field */
	uint64_t min, max; /* allowed range of every element */
};

struct devstate_error {
	char text[DEVSTATE_ERROR_MAX];
};

struct devstate_desc {
	const char *name;
	uint16_t version; /* what this build writes; it reads 1..version */
	uint16_t size;    /* of the structure */
	const struct devstate_field *fields;
	unsigned field_count;
	/*
	 * Puts the described fields into their reset state and leaves the
	 * wiring alone; a record of an older version loads over it, so the
	 * fields the record lacks keep their reset values.
	 */
	void (*reset)(void *state);
	/*
	 * Optional: rules the ranges cannot say (bit masks, one field bounding
	 * another), run on the decoded state; false refuses the record, with
	 * err filled by devstate_refuse() for this device's name. live is the
	 * device the record is for, unchanged: what its wiring or registration
	 * fixed in the same bytes as state (PCI's read-only bits) is compared
	 * against it.
	 */
	bool (*check)(const void *state, const void *live, const char *device,
		      struct devstate_error *err);
};

/*
 * A device of a VM: its descriptor, its live state and the name of its
 * record, which is unique among the devices of one save or load. name
 * NULL: the descriptor's; a model a VM has several of names each (pci1,
 * virtio_net0).
 */
struct devstate_instance {
	const struct devstate_desc *desc;
	void *state;
	const char *name;
};

/*
 * Field descriptors. The width of type must be the size of the member; a
 * mismatch is a compile error. An array's count and stride come from the
 * structure.
 */
#define DEVSTATE_TYPE_SIZE(type) \
	((type) == DEVSTATE_U16 ? 2 : (type) == DEVSTATE_U32 ? 4 : (type) == DEVSTATE_U64 ? 8 : 1)
#define DEVSTATE_SIZE_CHECKED(type, size) \
	(0 * sizeof(struct { \
		_Static_assert(DEVSTATE_TYPE_SIZE(type) == (size), \
			       "devstate: the field's type does not match the member's size"); \
		char c; \
	}) + (size))

#define DEVSTATE_FIELD(st, member, type, lo, hi, ver) \
	{ #member, type, offsetof(st, member), 1, \
	  DEVSTATE_SIZE_CHECKED(type, sizeof(((st *)0)->member)), ver, lo, hi }
#define DEVSTATE_ARRAY(st, member, type, lo, hi, ver) \
	{ #member "[]", type, offsetof(st, member), \
	  sizeof(((st *)0)->member) / sizeof(((st *)0)->member[0]), \
	  DEVSTATE_SIZE_CHECKED(type, sizeof(((st *)0)->member[0])), ver, lo, hi }
#define DEVSTATE_STRUCT_ARRAY(st, array, member, type, lo, hi, ver) \
	{ #array "[]." #member, type, offsetof(st, array[0].member), \
	  sizeof(((st *)0)->array) / sizeof(((st *)0)->array[0]), \
	  sizeof(((st *)0)->array[0]) + \
		  0 * DEVSTATE_SIZE_CHECKED(type, sizeof(((st *)0)->array[0].member)), \
	  ver, lo, hi }

/* The descriptor of structure st; its size is checked against the decoder's scratch. */
#define DEVSTATE_DESC(st, dev_name, ver, field_table, reset_fn, check_fn) \
	{ dev_name, ver, \
	  sizeof(struct { \
		_Static_assert(sizeof(st) <= DEVSTATE_MAX_STATE && _Alignof(st) <= 8, \
			       "devstate: the state does not fit the decoder's scratch"); \
		char c; \
	  }) * 0 + sizeof(st), \
	  field_table, sizeof(field_table) / sizeof(field_table[0]), reset_fn, check_fn }

/* Bytes devstate_save() writes for these devices. */
size_t devstate_saved_size(const struct devstate_instance *devs, unsigned count);

/*
 * Writes one record per device, in order, at the current version. Returns
 * the bytes written, or 0 if they do not fit in cap.
 */
size_t devstate_save(const struct devstate_instance *devs, unsigned count, uint8_t *out,
		     size_t cap);

/*
 * Loads a sequence of records into the devices they name. A device without
 * a record keeps its state. Refused (false, err says which device and
 * field, and no device changed): two devices of the same name, a truncated
 * record, an unknown device or one named twice, a version this build does
 * not know, a payload length that is not that version's, a value out of
 * range, a failed check.
 */
bool devstate_load(const struct devstate_instance *devs, unsigned count, const uint8_t *in,
		   size_t len, struct devstate_error *err);

/*
 * Checks a state in memory as devstate_load() checks a decoded one: every
 * field in its range, then the descriptor's check. For states that reach a
 * device by another way than a record.
 */
bool devstate_check(const struct devstate_desc *desc, const void *state,
		    struct devstate_error *err);

/*
 * For check callbacks: writes "device: field NAME " and the formatted rest
 * into err, NAME being field with index in its "[]", and returns false.
 */
bool devstate_refuse(struct devstate_error *err, const char *device, const char *field,
		     unsigned index, const char *format, ...)
	__attribute__((format(printf, 5, 6)));

#endif
