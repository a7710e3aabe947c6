#!/usr/bin/env bash
# Linux benchmarks, both boots in one run: the same kernel, initramfs and
# command line booted under the hypervisor and directly in Bochs (OVMF
# starts it either way), wall-clock seconds from Bochs start to the guest's
# "vmmtest: ready"; and the guest's own dd figures for its virtio disk.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
linux=$root/build/linux
cmdline="console=ttyS0,115200 quiet"
"$root/tools/mk-linux-guest.sh" "$linux" >/dev/null

vmm=$("$root/tools/run-bochs.sh" --workdir "$out/linux-vmm" --config "$root/tests/bench/linux.conf" \
	--megs 384 --extra "$linux/vmlinuz" --extra "$linux/initrd.img" --extra "$linux/disk.img" \
	--until 'vmmtest: ready|PANIC|nothing left to run' --timeout 900 |
	sed -n 's/^matched after \([0-9.]*\) s$/\1/p')
grep -aq 'vmmtest: ready' "$out/linux-vmm/serial.out" || vmm=""
bare=$("$root/tests/bench/linux_bare.sh" "$linux" "$out/linux-bare" "$cmdline")
echo "BENCH linux_boot_vmm_s ${vmm:-nan} s"
echo "BENCH linux_boot_bare_s ${bare:-nan} s"
if [ -n "$vmm" ] && [ -n "$bare" ]; then
	echo "BENCH linux_boot_ratio $(awk -v a="$vmm" -v b="$bare" 'BEGIN { printf "%.2f", a / b }') x"
else
	echo "BENCH linux_boot_ratio nan x"
fi
rate() { # KIND: KB/s from "vmmtest: blk-KIND N KB in M cs"
	grep -aoE "vmmtest: blk-$1 [0-9]+ KB in [0-9]+ cs" "$out/linux-vmm/serial.out" |
		awk '{ if ($6 > 0) printf "%d", $3 * 100 / $6; else print "nan" }'
}
echo "BENCH virtio_blk_read_kbps $(rate read) KB/s"
echo "BENCH virtio_blk_write_kbps $(rate write) KB/s"
