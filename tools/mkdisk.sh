#!/usr/bin/env bash
# Builds a FAT boot disk for the hypervisor:
#   \EFI\BOOT\BOOTX64.EFI   the hypervisor (the removable-media boot path,
#                          so firmware boots it without a boot entry)
#   \vmm.conf              the configuration (VMM_CONFIG_DEST=/EFI/BOOT/vmm.conf
#                          puts it next to the application instead)
#   \guests\*.bin          the test guests
# usage: tools/mkdisk.sh [--store-partition] DISK.img CONFIG [EXTRA_FILE...]   (extras go to \)
#
# With --store-partition the disk is a server's: a GPT with the EFI system
# partition (the FAT above) and a store partition after it (the store's
# partition type, docs/store.md; an empty store made by vmm-store), for
# "store = partition". Without it, the FAT is the whole disk.
set -euo pipefail
store_partition=0
if [ "${1:-}" = --store-partition ]; then
	store_partition=1
	shift
fi
disk=$1 config=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}

# 65 cylinders x 16 heads x 63 sectors (the geometry bochsrc declares), 32 MiB.
sectors=$((65 * 16 * 63))
rm -f "$disk"
dd if=/dev/zero of="$disk" bs=512 count=$sectors status=none
fat=$disk
if [ $store_partition = 1 ]; then
	# 26 MiB of EFI system partition from 1 MiB, the store up to the backup GPT.
	esp_start=2048 esp_sectors=53248 store_start=55296
	store_sectors=$((sectors - 33 - store_start))
	"$root/tools/mkgpt.py" "$disk" esp:$esp_start:$esp_sectors:EFI \
		store:$store_start:$store_sectors:vmmstore
	fat=$disk.esp
	dd if=/dev/zero of="$fat" bs=512 count=$esp_sectors status=none
	rm -f "$disk.store"
	"$build/vmm-store" create --size $((store_sectors * 512)) "$disk.store" >/dev/null
	dd if="$disk.store" of="$disk" bs=512 seek=$store_start conv=notrunc status=none
	rm -f "$disk.store"
fi
mformat -i "$fat" -v VMMBOOT ::
mmd -i "$fat" ::/EFI ::/EFI/BOOT ::/guests
mcopy -i "$fat" "$build/vmm.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$fat" "$config" "::${VMM_CONFIG_DEST:-/vmm.conf}"
for g in "$build"/guests/*.bin; do
	mcopy -i "$fat" "$g" ::/guests/
done
for f in "$@"; do
	mcopy -i "$fat" "$f" ::/
done
if [ $store_partition = 1 ]; then
	dd if="$fat" of="$disk" bs=512 seek=$esp_start conv=notrunc status=none
	rm -f "$fat"
fi
