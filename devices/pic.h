/*
 * Model of the PC's two cascaded 8259A programmable interrupt controllers
 * (Intel 8259A data sheet): master at ports 0x20-0x21 (IRQ 0-7), slave at
 * 0xa0-0xa1 (IRQ 8-15) on the master's IRQ 2, plus the PIIX edge/level
 * control registers (ELCR) at 0x4d0-0x4d1. Modelled: the ICW1-4
 * initialisation sequence, the mask (OCW1), specific and non-specific EOI
 * (OCW2), reading IRR or ISR (OCW3), automatic EOI, edge and level
 * triggering, fixed priority with IRQ 0 highest, spurious IRQ 7/15.
 * Not modelled (no PC guest relies on them): rotation, special mask,
 * poll mode, special fully nested mode, buffered mode.
 * Plain C, no hardware access.
 */
#ifndef DEVICES_PIC_H
#define DEVICES_PIC_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t vector_base; /* ICW2, top five bits */
	uint8_t elcr;        /* 1: level-triggered input */
	uint8_t lines;       /* current input levels, for edge detection */
	uint8_t init_step;   /* 0: ready; 2-4: expecting ICW2..ICW4 */
	bool icw4_needed;
	bool single;         /* ICW1.SNGL: no cascade */
	bool auto_eoi;
	bool read_isr;       /* OCW3: the command port reads ISR, not IRR */
};

struct pic {
	struct pic_chip chip[2]; /* [0] master, [1] slave */
};

#define PIC_MASTER_PORT 0x20
#define PIC_SLAVE_PORT 0xa0
#define PIC_ELCR_PORT 0x4d0
#define PIC_CASCADE_IRQ 2

void pic_init(struct pic *pic);

/* The whole structure is device state (devstate.h). */
extern const struct devstate_desc pic_state_desc;

/* Port access; chip 0/1, port 0 (command) or 1 (data). */
uint8_t pic_read(struct pic *pic, unsigned chip, unsigned port);
void pic_write(struct pic *pic, unsigned chip, unsigned port, uint8_t value);
uint8_t pic_elcr_read(const struct pic *pic, unsigned chip);
void pic_elcr_write(struct pic *pic, unsigned chip, uint8_t value);

/* A device drives interrupt line irq (0-15) to level. */
void pic_set_irq(struct pic *pic, unsigned irq, bool level);

/*
 * Cheap test before every VM entry: false means pic_pending() is -1
 * (the slave's requests reach the master as IRQ 2).
 */
static inline bool pic_may_interrupt(const struct pic *pic)
{
	return pic->chip[0].irr & ~pic->chip[0].imr;
}

/* The vector the PICs present to the CPU, or -1 when INTR is low. */
int pic_pending(const struct pic *pic);

/*
 * The CPU's interrupt acknowledge: the pending request moves from IRR to
 * ISR (unless automatic EOI) and its vector is returned. With nothing
 * pending the 8259A answers with its spurious IRQ 7 vector.
 */
uint8_t pic_acknowledge(struct pic *pic);

#endif
