/*
 * Descriptor-table layouts for the hypervisor's own GDT, TSS and IDT
 * (Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors", 7.2.3 "TSS Descriptor in
 * 64-bit mode", 7.7 "Task Management in 64-bit Mode", 6.14.1 "64-Bit Mode
 * IDT").
 */
#ifndef X86_SEGMENT_H
#define X86_SEGMENT_H

#include <stdint.h>

struct segment_descriptor {
	uint16_t limit_low;
	uint16_t base_low;
	uint8_t base_mid;
	uint8_t access;      /* P, DPL, S, type */
	uint8_t limit_flags; /* G, D/B, L, AVL, limit[19:16] */
	uint8_t base_high;
} __attribute__((packed));
_Static_assert(sizeof(struct segment_descriptor) == 8, "SDM 3.4.5");

/* In 64-bit mode system descriptors (TSS, LDT) take two GDT slots. */
struct system_descriptor {
	struct segment_descriptor low;
	uint32_t base_upper;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct system_descriptor) == 16, "SDM 7.2.3");

#define SEG_ACCESS_PRESENT 0x80
#define SEG_ACCESS_CODE_DATA 0x10 /* S=1 */
#define SEG_ACCESS_CODE_READ 0x0a /* execute/read */
#define SEG_ACCESS_DATA_WRITE 0x02 /* read/write */
#define SEG_ACCESS_TSS_AVAILABLE 0x09
#define SEG_FLAG_LONG_MODE 0x20 /* L */
#define SEG_FLAG_DB 0x40
#define SEG_FLAG_GRANULARITY_4K 0x80

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7]; /* ist[0] is IST1 */
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64) == 104, "SDM 7.7 figure 7-11");

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;       /* bits 2:0 */
	uint8_t type_attr; /* P, DPL, type */
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "SDM 6.14.1 figure 6-8");

#define IDT_GATE_INTERRUPT 0x8e /* P=1, DPL=0, 64-bit interrupt gate */

/* Segment registers, in the order of the VMX guest-state fields (SDM B.1.2). */
enum x86_segment { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR, SEG_COUNT };

/*
 * Descriptor attributes as a 16-bit value: descriptor bits 40-47 and 52-55
 * (SDM 3.4.5) at bits 0-7 and 12-15. VMX access rights use this layout.
 */
#define SEG_ATTR_TYPE_DATA_RW_ACCESSED 0x3
#define SEG_ATTR_TYPE_CODE_RX_ACCESSED 0xb
#define SEG_ATTR_TYPE_LDT 0x2
#define SEG_ATTR_TYPE_TSS_BUSY 0xb
#define SEG_ATTR_S (1U << 4)
#define SEG_ATTR_DPL_SHIFT 5
#define SEG_ATTR_DPL_MASK (3U << SEG_ATTR_DPL_SHIFT)
#define SEG_ATTR_PRESENT (1U << 7)
#define SEG_ATTR_LONG (1U << 13)
#define SEG_ATTR_DB (1U << 14)
#define SEG_ATTR_GRANULARITY (1U << 15)

/* The operand of LGDT/LIDT in 64-bit mode. */
struct descriptor_table_register {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));
_Static_assert(sizeof(struct descriptor_table_register) == 10, "SDM 3.5.1");

#endif
