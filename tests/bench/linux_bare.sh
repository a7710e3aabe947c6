#!/usr/bin/env bash
# The reference for linux_init_ratio: the same kernel and initramfs booted
# in Bochs without the hypervisor (OVMF's shell runs a startup.nsh that
# starts the EFI-stub kernel), until the guest's "vmmtest: ready" line in
# WORKDIR/run/serial.out.
#   tests/bench/linux_bare.sh LINUX_DIR WORKDIR CMDLINE
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
linux=$1 work=$2 cmdline=$3
mkdir -p "$work"
img=$work/bare.img
dd if=/dev/zero of="$img" bs=512 count=$((65 * 16 * 63)) status=none
mformat -i "$img" -v BARE ::
mcopy -i "$img" "$linux/vmlinuz" ::/vmlinuz.efi
mcopy -i "$img" "$linux/initrd.img" ::/initrd.img
printf '\\vmlinuz.efi %s initrd=\\initrd.img\r\n' "$cmdline" >"$work/startup.nsh"
mcopy -i "$img" "$work/startup.nsh" ::/startup.nsh
"$root/tools/run-bochs.sh" --disk "$img" --workdir "$work/run" --megs 512 \
	--until 'vmmtest: ready' --timeout 600 | sed -n 's/^matched after \([0-9.]*\) s$/\1/p'
