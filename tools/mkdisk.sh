#!/usr/bin/env bash
# Builds a FAT boot disk for the hypervisor:
#   \EFI\BOOT\BOOTX64.EFI   the hypervisor (the removable-media boot path,
#                          so firmware boots it without a boot entry)
#   \vmm.conf              the configuration (VMM_CONFIG_DEST=/EFI/BOOT/vmm.conf
#                          puts it next to the application instead)
#   \guests\*.bin          the test guests
# usage: tools/mkdisk.sh DISK.img CONFIG [EXTRA_FILE...]   (extras go to \)
set -euo pipefail
disk=$1 config=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}

# 65 cylinders x 16 heads x 63 sectors (the geometry bochsrc declares), 32 MiB.
sectors=$((65 * 16 * 63))
rm -f "$disk"
dd if=/dev/zero of="$disk" bs=512 count=$sectors status=none
mformat -i "$disk" -v VMMBOOT ::
mmd -i "$disk" ::/EFI ::/EFI/BOOT ::/guests
mcopy -i "$disk" "$build/vmm.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$disk" "$config" "::${VMM_CONFIG_DEST:-/vmm.conf}"
for g in "$build"/guests/*.bin; do
	mcopy -i "$disk" "$g" ::/guests/
done
for f in "$@"; do
	mcopy -i "$disk" "$f" ::/
done
