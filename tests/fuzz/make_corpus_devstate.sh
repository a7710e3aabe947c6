#!/usr/bin/env bash
# Writes the seed corpus of fuzz_devstate (tests/fuzz/corpus/devstate):
# device state records in the format of docs/devices.md, for every device
# of the table at power-on, and each device in a busy state (a programmed
# PIC pair with requests in service, a clock set years ahead, a UART with
# a full FIFO that wraps, an I/O APIC with a level entry awaiting its EOI).
# Run it again after changing a device's descriptor.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/tests/fuzz/corpus}/devstate
mkdir -p "$out"
rm -f "$out"/*

# Little-endian numbers as bytes: le VALUE WIDTH.
le() {
	local v=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		printf "\\x$(printf %02x $((v >> 8 * i & 255)))"
	done
}

# record NAME VERSION: the header, then the payload from stdin.
record() {
	local payload
	payload=$(mktemp)
	cat >"$payload"
	le ${#1} 1
	printf %s "$1"
	le "$2" 2
	le "$(stat -c %s "$payload")" 4
	cat "$payload"
	rm -f "$payload"
}

bytes() {   # each argument one byte
	local x
	for x in "$@"; do le "$x" 1; done
}

zeros() {
	head -c "$1" /dev/zero
}

# each field for chip 0, then for chip 1: irr isr imr vector_base elcr lines init_step icw4 single aeoi read_isr
pic() { bytes "$@" | record pic 1; }
pic_reset() { pic 0 0 0 0 0xff 0xff 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0; }
pic_busy() { pic 0x03 0x08 0x01 0x08 0xb8 0x00 0x20 0x28 0 0x0c 0x03 0x08 0 2 1 1 0 0 1 0 1 0; }

# index reg_a reg_b offset_s nvram[128]
rtc() { { bytes "$1" "$2" "$3"; le "$4" 8; zeros 126; bytes "$5" "$6"; } | record rtc 1; }
rtc_reset() { rtc 0 0x26 0x02 0 0 0; }
rtc_busy() { rtc 0x7f 0x26 0x06 315360000 0x5a 0xa5; }

# ier lcr mcr scr dll dlm fifo_enabled thre_pending rx[16] rx_head rx_count overrun
vuart() {
	{ bytes "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8"; printf 0123456789abcdef
	  le "$9" 4; le "${10}" 4; bytes "${11}"; } | record vuart 1
}
vuart_reset() { vuart 0 0 0 0 0 0 0 0 0 0 0; }
vuart_busy() { vuart 0x07 0x03 0x1b 0x42 0x0c 0x00 1 1 15 16 1; }

# id regsel lines redir[24]
ioapic() {
	{ bytes "$1" "$2"; le "$3" 4; le "$4" 8; le "$5" 8
	  for ((i = 2; i < 24; i++)); do le 0x10000 8; done; } | record ioapic 1
}
ioapic_reset() { ioapic 1 0 0 0x10000 0x10000; }
ioapic_busy() { ioapic 5 0x12 0x3 0x0300000000000000 $((0x8000 | 0x4000 | 0x31)); }

# pm1_status pm1_enable pm1_control
acpi_pm() { { le "$1" 2; le "$2" 2; le "$3" 2; } | record acpi_pm 1; }

u16s() { local x; for x in "$@"; do le "$x" 2; done; }
u32s() { local x; for x in "$@"; do le "$x" 4; done; }
u64s() { local x; for x in "$@"; do le "$x" 8; done; }

# each field for counters 0, 1, 2: mode access write_msb_next read_msb_next
# latched latch pending_lsb reload armed gate start_ns paused_ticks; then
# speaker_data irq_ticks_seen irq_quiet_until_ns
pit_reset() {
	{ bytes 0 0 0 3 3 3 0 0 0 0 0 0 0 0 0; u16s 0 0 0 0 0 0
	  u32s 0x10000 0x10000 0x10000; bytes 0 0 0 1 1 0; u64s 0 0 0 0 0 0
	  bytes 0; u64s 0 0; } | record pit 1
}
pit_busy() {
	{ bytes 2 0 3 3 3 1 0 1 0 1 0 0 1 0 0; u16s 0x4a5 0 0 0 0x34 0
	  u32s 1193 0x10000 0x80; bytes 1 0 1 1 1 0; u64s 1000000000 0 1000000000 0 0 1193
	  bytes 1; u64s 1 1001600000; } | record pit 1
}

# apic_base tpr ldr dfr svr irr[8] isr[8] tmr[8] irr_nonzero esr esr_pending
# icr_low icr_high lvt[7] timer_initial timer_divide tsc_deadline
# timer_start_ns timer_base_ticks timer_expiries timer_fired_ns
lapic() {   # apic_base ldr svr irr[2] isr[3] tmr[2] lvt_timer initial divide deadline expiries fired
	{ u64s "$1"; u32s 0x20 "$2" 0xffffffff "$3"; shift
	  u32s 0 0 "$3" 0 0 0 0 0; u32s 0 0 0 "$4" 0 0 0 0; u32s 0 0 "$5" 0 0 0 0 0
	  bytes $(( $3 != 0 )); u32s 0x20 0x80 0x4005 0x01000000
	  u32s "$6" 0x10000 0x10000 0x8700 0x8400 0x1000f 0x10000; u32s "$7" "$8"
	  u64s "$9" 1000000000 0 "${10}" "${11}"; } | record lapic 1
}
lapic_reset() {
	{ u64s 0xfee00900; u32s 0 0 0xffffffff 0x1ff; zeros 96; bytes 0; u32s 0 0 0 0
	  u32s 0x10000 0x10000 0x10000 0x8700 0x8400 0x10000 0x10000; u32s 0 0
	  u64s 0 0 0 0 0; } | record lapic 1
}
lapic_periodic() { lapic 0xfee00900 0x03000000 0x1ff 0x00020000 0x2 0x00020000 0x20040 100000 3 0 2 1040000000; }
lapic_deadline() { lapic 0xfee00d00 0x1 0x1ff 0 0x2 0 0x40050 0 0 4000000000 0 0; }

{ pic_reset; rtc_reset; vuart_reset; ioapic_reset; acpi_pm 0 0 1; pit_reset; lapic_reset; } \
	>"$out/power_on"
pic_busy >"$out/pic"
rtc_busy >"$out/rtc"
vuart_busy >"$out/vuart"
ioapic_busy >"$out/ioapic"
acpi_pm 0 0x0121 0x0c01 >"$out/acpi_pm"
pit_busy >"$out/pit"
lapic_periodic >"$out/lapic"
lapic_deadline >"$out/lapic_x2apic_deadline"
{ acpi_pm 0 0 1; vuart_busy; pic_busy; lapic_periodic; pit_busy; } >"$out/some"

du -cb "$out" | tail -1
