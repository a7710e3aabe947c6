#!/usr/bin/env bash
# Writes the seed corpora of the two fuzzers (tests/fuzz/corpus/dhcp and
# tests/fuzz/corpus/switch): a few small inputs in the formats described at
# the top of fuzz_dhcp.c and fuzz_switch.c that reach the interesting
# states (a full DORA, renewal, release, decline, inform, exhaustion,
# option overload; learning, full and broken rings, detach, storms, DHCP
# through the switch). Run it again after changing those formats.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/tests/fuzz/corpus}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Writes the bytes given as numbers (decimal or 0x..).
b() {
	local x
	for x in "$@"; do
		printf "\\x$(printf %02x "$((x))")"
	done
}

zeros() {
	head -c "$1" /dev/zero
}

# 16-bit big-endian, 16-bit little-endian.
be16() { b $(($1 >> 8 & 255)) $(($1 & 255)); }
le16() { b $(($1 & 255)) $(($1 >> 8 & 255)); }

# RFC 1071 checksum of the 16-bit words given.
csum() {
	local s=0 w
	for w in "$@"; do s=$((s + w)); done
	while [ $((s >> 16)) -ne 0 ]; do s=$(((s & 0xffff) + (s >> 16))); done
	echo $((~s & 0xffff))
}

# ---------------------------------------------------------------- DHCP
# Record: ctl, little-endian length, bytes (from a file).
record() {
	local ctl=$1 file=$2
	b "$ctl"
	le16 "$(stat -c %s "$file")"
	cat "$file"
}

TEMPLATE=0x04
FIX=0x03
# ctl bits 5-7 move the clock: 2 is one second, 3 is 61 s, 5 an hour.
SECOND=$((2 << 5))
MINUTE=$((3 << 5))
HOUR=$((5 << 5))
TPL_BROADCAST=1
TPL_CIADDR=2
TPL_TO_SERVER=4
SERVER="10 0 0 1"

# A template record: client, flags, address choice, then options.
tpl() {
	local ctl=$1 client=$2 flags=$3 addr=$4
	shift 4
	b $client $flags $addr "$@" >"$tmp/tpl"
	record $((TEMPLATE | ctl)) "$tmp/tpl"
}

discover() { tpl "${2:-0}" "$1" $TPL_BROADCAST 0 53 1 1 255; }
select_req() { tpl 0 "$1" 0 0 53 1 3 50 4 10 0 0 "$2" 54 4 $SERVER 255; }

mkdir -p "$out/dhcp" "$out/switch"
rm -f "$out/dhcp"/* "$out/switch"/*

{ b 3; discover 0; select_req 0 10; } >"$out/dhcp/dora"
{ b 3; discover 0; select_req 0 10
  tpl $MINUTE 0 $((TPL_CIADDR | TPL_TO_SERVER)) 0 53 1 3 255
  tpl $HOUR 0 $TPL_CIADDR 0 53 1 3 255; } >"$out/dhcp/renew"
{ b 3; discover 0; select_req 0 10
  tpl $SECOND 0 $((TPL_CIADDR | TPL_TO_SERVER)) 0 53 1 7 54 4 $SERVER 255
  discover 1; discover 0; } >"$out/dhcp/release"
{ b 3; discover 0; select_req 0 10
  tpl 0 0 0 0 53 1 4 50 4 10 0 0 10 54 4 $SERVER 255
  discover 0; } >"$out/dhcp/decline"
{ b 3; tpl 0 2 $((TPL_CIADDR | TPL_TO_SERVER)) 5 53 1 8 255; } >"$out/dhcp/inform"
{ b 3; discover 0; select_req 0 10
  tpl $SECOND 0 0 0 53 1 3 50 4 10 0 0 11 255
  tpl 0 1 0 0 53 1 3 50 4 192 168 0 7 255; } >"$out/dhcp/init_reboot"
{ b 0; discover 0; select_req 0 10; discover 1; discover 2
  tpl 0 2 0 0 53 1 3 50 4 10 0 0 10 54 4 $SERVER 255; } >"$out/dhcp/exhaustion"
{ b 3; tpl 0 0 0 0 0 0 12 3 118 109 109 0 53 1 1 55 3 1 3 6 255
  tpl 0 1 0 0 53 1 1 53 1 1 255
  tpl 0 2 0 0 53 1 1 12 200 1; } >"$out/dhcp/options"

# A raw DISCOVER whose message type is in the 'file' field (option 52),
# sent with its checksum and lengths fixed up by the harness.
{
	b 0xff 0xff 0xff 0xff 0xff 0xff 2 0 0 0 1 3; be16 0x0800
	b 0x45 0; zeros 6; b 64 17; zeros 6; b 255 255 255 255
	be16 68; be16 67; zeros 4
	b 1 1 6 0 1 2 3 4; zeros 20; b 2 0 0 0 1 3; zeros 10; zeros 64
	b 53 1 1 255; zeros 124
	b 99 130 83 99 52 1 1 255
} >"$tmp/overload"
{ b 3; record $FIX "$tmp/overload"; } >"$out/dhcp/overload"

# An ARP request for the server's address.
{
	b 0xff 0xff 0xff 0xff 0xff 0xff 2 0 0 0 1 0; be16 0x0806
	be16 1; be16 0x0800; b 6 4; be16 1; b 2 0 0 0 1 0 10 0 0 10; zeros 6; b $SERVER
} >"$tmp/arp"
{ b 3; record 0 "$tmp/arp"; } >"$out/dhcp/arp"

# ---------------------------------------------------------------- switch
# Operations (see fuzz_switch.c). MAC choices: 0-5 adapters, 6 broadcast,
# 7 and 8 multicast, 9 zero, 10 the DHCP server; 0x80 attaches without one.
attach() { b 1 "$1" "$2" "$3"; }             # ring, slot choice, mac
detach() { b 2 "$1"; }
tick() { b 3 "$1"; le16 "$2"; }              # unit choice, count
consume() { b 4 "$@"; }                       # ring, mode, argument
link() { b 5 "$1" "$2"; }
dhcp() { b 6 "$1"; }
limits() { b 7; le16 "$1"; b "$2"; le16 "$3"; }   # pps, burst, ageing
# send port dst src type len, then len - 14 payload bytes
send() {
	b 0 "$1" "$2" "$3" "$4"; le16 "$5"
	if [ "$5" -gt 14 ]; then head -c $(($5 - 14)) /dev/zero | tr '\0' '\132'; fi
}
# Slot choices: 0 is 2 slots, 1 is 4, 2 is 8, 3 is 16.

{ attach 0 2 0; attach 1 2 1; attach 2 1 0x80
  send 0 1 0 0 64; send 1 6 1 0 60; send 2 0 11 0 100; send 0 11 0 0 64
  consume 1 0 4; consume 2 0 4; consume 0 2; } >"$out/switch/learn"
{ attach 0 0 0; attach 1 0 1
  send 0 1 0 0 64; send 0 1 0 0 64; send 0 1 0 0 64; send 0 1 0 0 64
  consume 1 0 1; send 0 1 0 0 64; consume 1 3 3; consume 1 0 4; } >"$out/switch/full"
{ attach 0 2 0; attach 1 2 1; send 0 1 0 0 64
  consume 1 1; b 0xef 0xbe 0xad 0xde; send 0 1 0 0 64
  consume 1 2; send 0 1 0 0 64; consume 1 0 3; } >"$out/switch/tamper"
{ attach 0 2 0x80; attach 1 2 0x80; attach 2 2 0x80
  send 1 6 1 0 60; detach 1; send 0 1 0 0 64; send 1 0 1 0 64
  attach 3 2 1; send 0 1 0 0 64; link 1 0; send 0 1 0 0 64; link 1 1; } >"$out/switch/detach"
{ attach 0 3 0; attach 1 3 1; attach 2 3 2; limits 10 2 1000
  for i in 1 2 3 4 5 6; do send 0 6 0 0 60; done
  send 1 2 1 0 1514; tick 2 2; send 0 7 0 0 60; consume 1 2; consume 2 2
  tick 3 1; send 1 2 1 0 64; } >"$out/switch/storm"
{ attach 0 2 0; attach 1 2 1
  send 0 1 0 0 13; send 0 1 0 0 1515; send 0 1 0 1 1518; send 0 1 7 0 64
  send 0 1 9 0 64; send 0 0 0 0 64; send 16 1 0 0 64; } >"$out/switch/bad_frames"

# A DISCOVER through the switch, with a valid IPv4 header checksum.
{
	dhcp 1; attach 0 2 0; attach 1 2 1
	b 0 0 6 0 2; le16 294
	b 0x45 0; be16 280; zeros 4; b 64 17
	be16 "$(csum 0x4500 280 0 0 0x4011 0 0 0 0xffff 0xffff)"; zeros 4; b 255 255 255 255
	be16 68; be16 67; be16 260; zeros 2
	b 1 1 6 0 1 2 3 4; zeros 20; b 2 0 0 0 2 0; zeros 10; zeros 192
	b 99 130 83 99 53 1 1 255; zeros 8
	consume 0 0 2
} >"$out/switch/dhcp"

du -cb "$out/dhcp" "$out/switch" | tail -1
