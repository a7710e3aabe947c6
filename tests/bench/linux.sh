#!/usr/bin/env bash
# Linux benchmarks, both boots in one run: the same kernel, initramfs and
# command line booted under the hypervisor, alone on it, and directly in
# Bochs (OVMF starts it either way). The figure is the kernel's own: the
# printk time of "Run /init", which counts from kernel entry on the
# kernel's calibrated TSC, so neither the firmware's file loading nor the
# wall clock of the emulator enters it. And the guest's own dd figures for
# its virtio disk.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
linux=$root/build/linux
cmdline="console=ttyS0,115200 quiet"
"$root/tools/mk-linux-guest.sh" "$linux" >/dev/null

"$root/tools/run-bochs.sh" --workdir "$out/linux-vmm" --config "$root/tests/bench/linux.conf" \
	--megs 384 --extra "$linux/vmlinuz" --extra "$linux/initrd.img" --extra "$linux/disk.img" \
	--until 'vmmtest: ready|PANIC|nothing left to run' --timeout 900 >/dev/null || true
# Bochs' CPUID describes a 3.5-GHz part (leaf 15H's ratio with leaf 16H's
# base frequency) whose TSC ticks at the emulated instruction rate; booted
# bare, the kernel would believe the former and its clock would run 17
# times slow. Under the hypervisor it
# takes the rate from leaf 15H. Bare, it is given the rate the hypervisor
# measured in the same Bochs (tsc_early_khz), the only difference in the
# command line.
tsc_khz=$(grep -aoE 'TSC at [0-9]+\.[0-9]{3} MHz' "$out/linux-vmm/serial.out" | head -1 | tr -dc '0-9')
"$root/tests/bench/linux_bare.sh" "$linux" "$out/linux-bare" \
	"$cmdline${tsc_khz:+ tsc_early_khz=$tsc_khz}" >/dev/null || true
init_s() { # the printk time of "Run /init" in a boot's serial log
	grep -aoE 'vmmtest: dmesg \[ *[0-9]+\.[0-9]+\] Run /init' "$1" 2>/dev/null | head -1 |
		sed 's/.*\[ *//; s/\].*//'
}
vmm=$(init_s "$out/linux-vmm/serial.out")
bare=$(init_s "$out/linux-bare/run/serial.out")
echo "BENCH linux_init_vmm_s ${vmm:-nan} s"
echo "BENCH linux_init_bare_s ${bare:-nan} s"
if [ -n "$vmm" ] && [ -n "$bare" ]; then
	echo "BENCH linux_init_ratio $(awk -v a="$vmm" -v b="$bare" 'BEGIN { printf "%.2f", a / b }') x"
else
	echo "BENCH linux_init_ratio nan x"
fi
rate() { # KIND: KB/s from "vmmtest: blk-KIND N KB in M cs"
	grep -aoE "vmmtest: blk-$1 [0-9]+ KB in [0-9]+ cs" "$out/linux-vmm/serial.out" |
		awk '{ if ($6 > 0) printf "%d", $3 * 100 / $6; else print "nan" }'
}
echo "BENCH virtio_blk_read_kbps $(rate read) KB/s"
echo "BENCH virtio_blk_write_kbps $(rate write) KB/s"
