#!/usr/bin/env bash
# Boots the hypervisor image in QEMU with OVMF: in its software CPU (no
# VT-x), to test the loader and the "no VT-x" path; or, with --kvm, nested
# in KVM on an Intel host with nested VMX (tools/test-kvm.sh).
#
# usage: tools/run-qemu.sh --config FILE [--workdir DIR] [--timeout SEC]
#                          [--until REGEX] [--kvm] [--qemu-arg ARG]...
#                          [--extra FILE]... [--disk-bus ahci|nvme|virtio]
#                          [--store-partition]
#       tools/run-qemu.sh --disk IMAGE ...   (boots a ready FAT disk, copied)
#
# The boot disk hangs on q35's AHCI controller (ICH9), an NVMe controller or
# a virtio-blk device (--disk-bus; AHCI by default), as a server's would;
# with --store-partition it is a GPT disk with a store partition
# (tools/mkdisk.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config="" disk="" workdir="" timeout=60 until="" kvm=0 extra=() extras=() bus=ahci mkdisk=()
while [ $# -gt 0 ]; do
	case $1 in
	--config) config=$2; shift 2 ;;
	--workdir) workdir=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--until) until=$2; shift 2 ;;
	--kvm) kvm=1; shift ;;
	--qemu-arg) extra+=("$2"); shift 2 ;;
	--extra) extras+=("$2"); shift 2 ;;
	--disk) disk=$2; shift 2 ;;
	--disk-bus) bus=$2; shift 2 ;;
	--store-partition) mkdisk=(--store-partition); shift ;;
	*) echo "run-qemu: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$config$disk" ] || { echo "run-qemu: --config FILE or --disk IMAGE is required" >&2; exit 2; }
cpu=(-cpu max -smp 2 -m 256)
if [ "$kvm" = 1 ]; then
	[ -w /dev/kvm ] || { echo "run-qemu: --kvm needs /dev/kvm (an Intel host with VT-x)" >&2; exit 2; }
	nested=$(cat /sys/module/kvm_intel/parameters/nested 2>/dev/null || echo N)
	case $nested in
	Y | y | 1) ;;
	*) echo "run-qemu: --kvm needs nested VMX (kvm_intel nested=1)" >&2; exit 2 ;;
	esac
	cpu=(-enable-kvm -cpu host,+vmx -smp 1 -m 1G)
fi
code=/usr/share/OVMF/OVMF_CODE.fd vars=/usr/share/OVMF/OVMF_VARS.fd
[ -r "$code" ] || { echo "run-qemu: $code not found (apt-get install ovmf)" >&2; exit 2; }
auto_workdir=0
if [ -z "$workdir" ]; then
	workdir=$(mktemp -d /tmp/vmm-qemu.XXXXXX)
	auto_workdir=1
fi
mkdir -p "$workdir"
if [ -n "$disk" ]; then
	cp "$disk" "$workdir/disk.img"
else
	"$root/tools/mkdisk.sh" ${mkdisk[@]+"${mkdisk[@]}"} "$workdir/disk.img" "$config" \
		${extras[@]+"${extras[@]}"}
fi
boot_disk=format=raw,file=$workdir/disk.img
case $bus in
ahci) drive=(-drive "$boot_disk") ;; # if=ide: q35's ICH9 AHCI controller
nvme) drive=(-drive "if=none,id=boot,$boot_disk" -device nvme,drive=boot,serial=vmm-boot) ;;
virtio) drive=(-drive "if=virtio,$boot_disk") ;;
*) echo "run-qemu: --disk-bus is ahci, nvme or virtio" >&2; exit 2 ;;
esac
cp "$vars" "$workdir/vars.fd"
rm -f "$workdir/serial.out"
touch "$workdir/serial.out"

. "$root/tools/emulator-lib.sh"
cleanup() {
	emulator_stop
	[ "$auto_workdir" = 0 ] || rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

emulator_start "$workdir/qemu.out" timeout -k 5 "$timeout" \
	qemu-system-x86_64 "${cpu[@]}" -machine q35 \
	-drive if=pflash,format=raw,readonly=on,file="$code" \
	-drive if=pflash,format=raw,file="$workdir/vars.fd" \
	"${drive[@]}" \
	-serial file:"$workdir/serial.out" -display none -monitor none -no-reboot \
	${extra[@]+"${extra[@]}"}
emulator_wait "$workdir/serial.out" "$until"
