#!/usr/bin/env bash
# Writes the seed corpus of fuzz_virtq (tests/fuzz/corpus/virtq): a few
# small inputs in the format described at the top of fuzz_virtq.c, each a
# guest whose driver set up the queues properly and posted requests that
# reach the interesting paths (block reads, writes, GET_ID and FLUSH,
# indirect tables, transmit looped back into receive buffers, a received
# frame, a link change, a device reset, a descriptor loop). Run it again after changing
# that format.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/tests/fuzz/corpus}/virtq
mkdir -p "$out"

# Guest RAM layout of every seed: queues of 4 entries.
BLK_Q=0x000 RX_Q=0x100 TX_Q=0x200       # desc; avail at +0x40, used at +0x60
BLK_HDR=0x300 BLK_STATUS=0x380 BLK_DATA=0x400
TX_BUF=0x600 RX_BUF=0x700 TABLE=0x900
RAM_SIZE=0x980
NEXT=1 WRITE=2 INDIRECT=4

ram=$(mktemp)
trap 'rm -f "$ram"' EXIT

# Little-endian numbers as bytes.
le() {
	local v=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		printf "\\x$(printf %02x $((v >> 8 * i & 255)))"
	done
}

# poke OFFSET: writes stdin into the guest RAM at OFFSET.
poke() {
	dd of="$ram" bs=1 seek=$(($1)) conv=notrunc status=none
}

desc() {    # table index addr len flags next
	{ le "$3" 8; le "$4" 4; le "$5" 2; le "$6" 2; } | poke $(($1 + 16 * $2))
}

avail() {   # queue heads...: the avail ring with those heads, idx = their count
	local q=$1 i=0 h
	shift
	for h in "$@"; do
		le "$h" 2 | poke $((q + 0x40 + 4 + 2 * i))
		i=$((i + 1))
	done
	le $i 2 | poke $((q + 0x40 + 2))
}

blk_hdr() { # offset type sector
	{ le "$2" 4; le 0 4; le "$3" 8; } | poke "$1"
}

# A block request: header, data (device-writable unless OUT), status.
blk_request() {     # first-descriptor type sector data-len
	local d=$1 dflag=$WRITE
	[ "$2" -eq 1 ] && dflag=0
	blk_hdr $((BLK_HDR + 16 * d)) "$2" "$3"
	desc $BLK_Q "$d" $((BLK_HDR + 16 * d)) 16 $NEXT $((d + 1))
	desc $BLK_Q $((d + 1)) $BLK_DATA "$4" $((dflag | NEXT)) $((d + 2))
	desc $BLK_Q $((d + 2)) $((BLK_STATUS + d)) 1 $WRITE 0
}

# A transmit buffer: a zero header and a 60-byte broadcast frame.
tx_frame() {
	{ le 0 12; le $((0xffffffffffff)) 6; printf '\x02\x00\x00\x00\x00\x02\x88\xb5'; head -c 46 /dev/zero; } |
		poke $TX_BUF
	desc $TX_Q 0 $TX_BUF 72 0 0
	avail $TX_Q 0
}

rx_buffer() {
	desc $RX_Q 0 $RX_BUF 0x200 $WRITE 0
	avail $RX_Q 0
}

# write NAME CTL OPS FRAME_LEN: the header, then the guest RAM.
write() {
	local q
	{
		le "$2" 1
		le "$3" 1
		for q in $BLK_Q $RX_Q $TX_Q; do
			le 2 1; le "$q" 2; le $((q + 0x40)) 2; le $((q + 0x60)) 2
		done
		le "$4" 2
		cat "$ram"
	} >"$out/$1"
}

fresh() {
	head -c $((RAM_SIZE)) /dev/zero >"$ram"
}

# ops: four 2-bit operations, low first (0 blk, 1 tx, 2 rx, 3 link).
OPS_BLK=0x00 OPS_TX=0x55 OPS_RX=0xaa OPS_MIXED=0xe4

fresh; blk_request 0 0 2 1024; avail $BLK_Q 0; write blk_read 0 $OPS_BLK 0
fresh; blk_request 0 1 15 512; avail $BLK_Q 0; write blk_write 0 $OPS_BLK 0
# The driver resets the device after two notifications and starts it again.
fresh; blk_request 0 0 2 1024; avail $BLK_Q 0; write blk_reset 0x20 $OPS_BLK 0
fresh; blk_request 0 1 0 512; avail $BLK_Q 0; write blk_write_ro 0x08 $OPS_BLK 0
fresh; blk_hdr $BLK_HDR 4 0
desc $BLK_Q 0 $BLK_HDR 16 $NEXT 1
desc $BLK_Q 1 $BLK_STATUS 1 $WRITE 0
avail $BLK_Q 0; write blk_flush 0 $OPS_BLK 0
fresh; blk_request 0 8 0 20; avail $BLK_Q 0; write blk_get_id 0 $OPS_BLK 0

# The same read through an indirect table.
fresh; blk_hdr $BLK_HDR 0 3
desc $TABLE 0 $BLK_HDR 16 $NEXT 1
desc $TABLE 1 $BLK_DATA 512 $((WRITE | NEXT)) 2
desc $TABLE 2 $BLK_STATUS 1 $WRITE 0
desc $BLK_Q 0 $TABLE 48 $INDIRECT 0
avail $BLK_Q 0; write blk_indirect 0x01 $OPS_BLK 0

# A descriptor that chains to itself.
fresh; desc $BLK_Q 0 $BLK_HDR 16 $NEXT 0; avail $BLK_Q 0; write blk_loop 0 $OPS_BLK 0

fresh; tx_frame; rx_buffer; write net_loopback 0 $OPS_TX 0
fresh; tx_frame; rx_buffer; write net_rx 0 $OPS_RX 72
fresh; tx_frame; rx_buffer; blk_request 0 0 0 512; avail $BLK_Q 0
write mixed 0x03 $OPS_MIXED 72
