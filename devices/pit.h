/*
 * Model of the 8254 programmable interval timer (Intel 8254 data sheet)
 * at ports 0x40-0x43, with the gate and output of counter 2 on port 0x61
 * bit 0 / bit 5 as on PCs (operating systems calibrate their TSC with it).
 * Time is passed in by the caller in nanoseconds; counters run at the PC's
 * 1.193182 MHz. Modes 0 (interrupt on terminal count), 2 (rate generator)
 * and 3 (square wave) are modelled, which is what PC operating systems
 * use; 1, 4 and 5 behave as mode 0. Binary counting only (BCD is ignored).
 * Plain C, no hardware access.
 */
#ifndef DEVICES_PIT_H
#define DEVICES_PIT_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

#define PIT_HZ 1193182ULL
#define PIT_BASE_PORT 0x40
#define PIT_PORT_B 0x61
/*
 * IRQ 0 rises at most once per 100 µs (10 kHz): a reload of 1 would raise
 * it every 838 ns and keep the host busy waking the guest. PC systems run
 * counter 0 at 18.2 Hz to 1 kHz.
 */
#define PIT_IRQ0_FLOOR_NS 100000ULL

struct pit_counter {
	uint8_t mode;
	uint8_t access;      /* 1: LSB, 2: MSB, 3: LSB then MSB */
	bool write_msb_next; /* LSB-then-MSB flip-flops */
	bool read_msb_next;
	bool latched;
	uint16_t latch;
	uint16_t pending_lsb;
	uint32_t reload;     /* 1..65536 (0 written means 65536) */
	bool armed;          /* a count was written since the mode was set */
	bool gate;
	uint64_t start_ns;   /* when counting (re)started with `reload` */
	uint64_t paused_ticks; /* counts already done when the gate fell */
};

struct pit {
	struct pit_counter c[3];
	bool speaker_data;   /* port 0x61 bit 1, kept for read-back */
	uint64_t irq_ticks_seen; /* counter 0 periods already turned into IRQ 0 */
	uint64_t irq_quiet_until_ns; /* no IRQ 0 before this (the floor) */
};

void pit_init(struct pit *pit);

/*
 * The whole structure is device state (devstate.h); its times are the
 * caller's clock (now_ns), so a record loads into a VM whose clock
 * continues the saved one.
 */
extern const struct devstate_desc pit_state_desc;

/* Ports 0x40-0x43 (offset 0-3). */
uint8_t pit_read(struct pit *pit, unsigned offset, uint64_t now_ns);
void pit_write(struct pit *pit, unsigned offset, uint8_t value, uint64_t now_ns);
/* Port 0x61. */
uint8_t pit_port_b_read(struct pit *pit, uint64_t now_ns);
void pit_port_b_write(struct pit *pit, uint8_t value, uint64_t now_ns);

/*
 * True when counter 0's output produced at least one rising edge (an IRQ 0
 * request) since the last call; several missed periods coalesce into one,
 * and edges within PIT_IRQ0_FLOOR_NS of the last request wait.
 */
bool pit_irq0_due(struct pit *pit, uint64_t now_ns);

/* When counter 0 next raises IRQ 0, or 0 when it will not. */
uint64_t pit_next_irq0_ns(const struct pit *pit, uint64_t now_ns);

#endif
