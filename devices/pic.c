#include "devices/pic.h"

#include <string.h>

/* ICW1/OCW2/OCW3 bits (8259A data sheet, "Programming the 8259A"). */
#define ICW1 0x10
#define ICW1_IC4 0x01
#define ICW1_SNGL 0x02
#define ICW1_LTIM 0x08
#define ICW4_AEOI 0x02
#define OCW3 0x08
#define OCW3_READ 0x02
#define OCW3_READ_ISR 0x01
#define OCW2_EOI 0x20
#define OCW2_SPECIFIC 0x40
#define OCW2_LEVEL_MASK 0x07
#define SPURIOUS_IRQ 7

void pic_init(struct pic *pic)
{
	memset(pic, 0, sizeof(*pic));
	/* Until a guest initialises them, both chips have every input masked. */
	pic->chip[0].imr = pic->chip[1].imr = 0xff;
}

/* The highest-priority unmasked request above everything in service, or -1. */
static int chip_pending(const struct pic_chip *c)
{
	uint8_t requests = c->irr & ~c->imr;

	/* Checked before every VM entry: make the common case cheap. */
	if (!requests)
		return -1;
	for (int irq = 0; irq < 8; irq++) {
		if (c->isr & (1U << irq))
			return -1; /* fully nested: lower priorities wait */
		if (requests & (1U << irq))
			return irq;
	}
	return -1;
}

/* The slave's INT output is the master's IRQ 2 input. */
static void update_cascade(struct pic *pic)
{
	pic_set_irq(pic, PIC_CASCADE_IRQ, chip_pending(&pic->chip[1]) >= 0);
}

static void chip_set_line(struct pic_chip *c, unsigned line, bool level)
{
	uint8_t bit = (uint8_t)(1U << line);
	bool was = c->lines & bit;

	c->lines = level ? c->lines | bit : c->lines & ~bit;
	if (c->elcr & bit) {
		/* Level mode: the request follows the line. */
		c->irr = level ? c->irr | bit : c->irr & ~bit;
	} else if (level && !was) {
		/* Edge mode: a rising edge latches a request... */
		c->irr |= bit;
	} else if (!level) {
		/*
		 * ...which the data sheet requires to be held until the first
		 * INTA; one withdrawn before that is no request at all.
		 */
		c->irr &= ~bit;
	}
}

void pic_set_irq(struct pic *pic, unsigned irq, bool level)
{
	if (irq >= 16)
		return;
	chip_set_line(&pic->chip[irq / 8], irq % 8, level);
	if (irq >= 8)
		update_cascade(pic);
}

int pic_pending(const struct pic *pic)
{
	const struct pic_chip *m = &pic->chip[0];
	int irq = chip_pending(m);

	if (irq < 0)
		return -1;
	if (irq == PIC_CASCADE_IRQ && !m->single) {
		int slave = chip_pending(&pic->chip[1]);
		if (slave >= 0)
			return pic->chip[1].vector_base + slave;
	}
	return m->vector_base + irq;
}

/* INTA on one chip: IRR to ISR for the request being answered. */
static uint8_t chip_acknowledge(struct pic_chip *c)
{
	int irq = chip_pending(c);

	if (irq < 0)
		return (uint8_t)(c->vector_base + SPURIOUS_IRQ);
	uint8_t bit = (uint8_t)(1U << irq);
	/* An edge request is consumed; a level request stays while the line is high. */
	if (!(c->elcr & bit))
		c->irr &= ~bit;
	if (!c->auto_eoi)
		c->isr |= bit;
	return (uint8_t)(c->vector_base + irq);
}

uint8_t pic_acknowledge(struct pic *pic)
{
	struct pic_chip *m = &pic->chip[0];

	if (chip_pending(m) == PIC_CASCADE_IRQ && !m->single) {
		chip_acknowledge(m);
		uint8_t vector = chip_acknowledge(&pic->chip[1]);
		update_cascade(pic);
		return vector;
	}
	return chip_acknowledge(m);
}

static void end_of_interrupt(struct pic_chip *c, uint8_t ocw2)
{
	if (ocw2 & OCW2_SPECIFIC) {
		c->isr &= (uint8_t)~(1U << (ocw2 & OCW2_LEVEL_MASK));
		return;
	}
	/* Non-specific: the highest-priority request in service ends. */
	for (int irq = 0; irq < 8; irq++) {
		if (c->isr & (1U << irq)) {
			c->isr &= (uint8_t)~(1U << irq);
			return;
		}
	}
}

static void write_command(struct pic_chip *c, uint8_t value)
{
	if (value & ICW1) {
		/* ICW1 restarts initialisation: everything but the ELCR is reset. */
		c->irr = c->isr = c->imr = 0;
		c->lines = 0;
		c->auto_eoi = false;
		c->read_isr = false;
		c->icw4_needed = value & ICW1_IC4;
		c->single = value & ICW1_SNGL;
		/* LTIM sets all inputs level-triggered; PCs use the ELCR instead. */
		if (value & ICW1_LTIM)
			c->elcr = 0xff;
		c->init_step = 2;
		return;
	}
	if (value & OCW3) {
		if (value & OCW3_READ)
			c->read_isr = value & OCW3_READ_ISR;
		return;
	}
	if (value & OCW2_EOI)
		end_of_interrupt(c, value);
}

static void write_data(struct pic_chip *c, uint8_t value)
{
	switch (c->init_step) {
	case 2:
		c->vector_base = value & 0xf8;
		c->init_step = c->single ? (c->icw4_needed ? 4 : 0) : 3;
		break;
	case 3:
		/* ICW3 (cascade wiring) is fixed on a PC: master IRQ 2, slave id 2. */
		c->init_step = c->icw4_needed ? 4 : 0;
		break;
	case 4:
		c->auto_eoi = value & ICW4_AEOI;
		c->init_step = 0;
		break;
	default:
		c->imr = value; /* OCW1 */
		break;
	}
}

uint8_t pic_read(struct pic *pic, unsigned chip, unsigned port)
{
	const struct pic_chip *c = &pic->chip[chip & 1];

	if (port & 1)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

void pic_write(struct pic *pic, unsigned chip, unsigned port, uint8_t value)
{
	struct pic_chip *c = &pic->chip[chip & 1];

	if (port & 1)
		write_data(c, value);
	else
		write_command(c, value);
	if ((chip & 1) == 1)
		update_cascade(pic);
}

uint8_t pic_elcr_read(const struct pic *pic, unsigned chip)
{
	return pic->chip[chip & 1].elcr;
}

void pic_elcr_write(struct pic *pic, unsigned chip, uint8_t value)
{
	/*
	 * IRQ 0, 1, 2, 8 and 13 are always edge-triggered on the PIIX
	 * (the timer, keyboard, cascade, RTC and FPU lines).
	 */
	static const uint8_t writable[2] = { 0xf8, 0xde };
	pic->chip[chip & 1].elcr = value & writable[chip & 1];
}

static void pic_state_reset(void *state)
{
	pic_init(state);
}

/* The vector is ICW2's top five bits plus the IRQ: the low three stay clear. */
static bool pic_state_check(const void *state, const void *live, const char *device,
                            struct devstate_error *err)
{
	(void)live;
	const struct pic *pic = state;

	for (unsigned i = 0; i < 2; i++) {
		if (pic->chip[i].vector_base & 7)
			return devstate_refuse(err, device, "chip[].vector_base", i,
					       "= 0x%x has bits 2:0 set", pic->chip[i].vector_base);
	}
	return true;
}

/* init_step: 0 ready, 2..4 the ICW expected next (write_data's cases). */
static const struct devstate_field pic_fields[] = {
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, irr, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, isr, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, imr, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, vector_base, DEVSTATE_U8, 0, 0xf8, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, elcr, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, lines, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, init_step, DEVSTATE_U8, 0, 4, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, icw4_needed, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, single, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, auto_eoi, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pic, chip, read_isr, DEVSTATE_BOOL, 0, 1, 1),
};

const struct devstate_desc pic_state_desc =
	DEVSTATE_DESC(struct pic, "pic", 1, pic_fields, pic_state_reset, pic_state_check);
