#!/usr/bin/env bash
# FAT12, FAT16 and FAT32 volumes for tests/unit/test_fat.c, made without
# root by mtools: each holds VMMSTORE.IMG in two pieces (copied into the
# hole a deleted file left and on after the file beside it) and, as
# VMMSTORE.REF, nothing but the expected bytes.
#
# usage: tests/unit/make_fat_images.sh OUTDIR
set -euo pipefail
out=$1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 3000 /dev/zero | tr '\0' 'a' >"$tmp/a"
head -c 5000 /dev/zero | tr '\0' 'b' >"$tmp/b"
head -c 3000 /dev/zero | tr '\0' 'c' >"$tmp/c"
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + i // 512) & 0xff for i in range(40000)))' \
	>"$out/vmmstore.ref"
for fat in 12 16 32; do
	img=$out/fat$fat.img
	case $fat in
	12) mb=1 ;;
	16) mb=16 ;;
	32) mb=40 ;;
	esac
	rm -f "$img"
	dd if=/dev/zero of="$img" bs=1M count=$mb status=none
	if [ $fat = 32 ]; then mformat -i "$img" -F -v TEST ::; else mformat -i "$img" -v TEST ::; fi
	mcopy -i "$img" "$tmp/a" ::/A.BIN
	mcopy -i "$img" "$tmp/b" ::/B.BIN
	mcopy -i "$img" "$tmp/c" ::/C.BIN
	mdel -i "$img" ::/B.BIN
	mcopy -i "$img" "$out/vmmstore.ref" ::/vmmstore.img
done
