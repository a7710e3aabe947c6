/*
 * The watchdog timer of the Intel 6300ESB I/O controller hub (PCI
 * 8086:25ab), as Linux's i6300esb driver and QEMU's model program it:
 * two stages counted down from 20-bit preloads at the PCI clock over 2^15
 * (about 1 kHz) or 2^5, restarted by a reload; when the second stage runs
 * out the watchdog resets the machine and says so in the reload
 * register's TIMEOUT bit. Writes to the timers and the reload register
 * take effect only after the unlock sequence 0x80, 0x86 to the reload
 * register. The first stage's interrupt is not modelled (Linux disables
 * it: interrupt type 3).
 *
 * Plain C over guest time in ns, no hardware access; the platform
 * (vmm/platform.c) wires it to PCI, its timers and a VM reset.
 */
#ifndef DEVICES_I6300ESB_H
#define DEVICES_I6300ESB_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

#define I6300ESB_VENDOR_ID 0x8086
#define I6300ESB_DEVICE_ID 0x25ab
#define I6300ESB_CLASS 0x088000        /* base system peripheral, other */

/* PCI configuration registers. */
#define I6300ESB_CONFIG_REG 0x60       /* 16 bits */
#define I6300ESB_LOCK_REG 0x68         /* 8 bits */
#define I6300ESB_CONFIG_FREQ 0x04      /* 1: the PCI clock over 2^5, 0: over 2^15 */
#define I6300ESB_CONFIG_NO_REBOOT 0x20 /* 1: WDT_OUTPUT off, the second stage resets nothing */
#define I6300ESB_CONFIG_WRITABLE 0x0027
#define I6300ESB_LOCK_LOCKED 0x01      /* until reset: ENABLE can no longer change */
#define I6300ESB_LOCK_ENABLE 0x02
#define I6300ESB_LOCK_FREE_RUN 0x04    /* 1: free-running, never resets */
#define I6300ESB_LOCK_WRITABLE 0x07

/* BAR 0 registers. */
#define I6300ESB_BAR_SIZE 0x1000
#define I6300ESB_TIMER1 0x00
#define I6300ESB_TIMER2 0x04
#define I6300ESB_GINTSR 0x08
#define I6300ESB_RELOAD 0x0c
#define I6300ESB_RELOAD_KICK 0x100
#define I6300ESB_RELOAD_TIMEOUT 0x200
#define I6300ESB_UNLOCK1 0x80
#define I6300ESB_UNLOCK2 0x86
#define I6300ESB_PRELOAD_MASK 0xfffffu

/* 33 MHz: 30 ns a PCI clock, as QEMU counts it. */
#define I6300ESB_PCI_CLOCK_NS 30

struct i6300esb {
	uint16_t config;        /* I6300ESB_CONFIG_REG */
	uint8_t lock;           /* I6300ESB_LOCK_REG */
	uint8_t unlock;         /* 0, 1 after UNLOCK1, 2 after UNLOCK2 */
	uint32_t preload[2];    /* of stage 1 and 2 */
	uint8_t stage;          /* 1 or 2 while counting, 0 stopped */
	uint64_t deadline_ns;   /* guest time the stage runs out */
	bool timed_out;         /* the RELOAD register's TIMEOUT bit */
};

extern const struct devstate_desc i6300esb_state_desc;

/* Power-on state; timed_out says whether the watchdog caused the reset. */
void i6300esb_init(struct i6300esb *w, bool timed_out);

/* The configuration registers, after the guest wrote them (PCI config). */
void i6300esb_config_write(struct i6300esb *w, uint16_t config, uint8_t lock, uint64_t now_ns);

uint32_t i6300esb_read(const struct i6300esb *w, uint64_t offset, unsigned size);
void i6300esb_write(struct i6300esb *w, uint64_t offset, unsigned size, uint32_t value,
		    uint64_t now_ns);

/*
 * Counts to now_ns. True when the second stage ran out with the reset
 * output on: the machine must reset now (the TIMEOUT bit is set).
 */
bool i6300esb_run(struct i6300esb *w, uint64_t now_ns);

/* Guest time of the next stage end, 0 when stopped. */
uint64_t i6300esb_next_event(const struct i6300esb *w);

#endif
