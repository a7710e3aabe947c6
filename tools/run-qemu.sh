#!/usr/bin/env bash
# Boots the hypervisor image in QEMU's software CPU (no VT-x) with OVMF.
# Used to test the loader and the "no VT-x" path.
#
# usage: tools/run-qemu.sh --config FILE [--workdir DIR] [--timeout SEC]
#                          [--until REGEX]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config="" workdir="" timeout=60 until=""
while [ $# -gt 0 ]; do
	case $1 in
	--config) config=$2; shift 2 ;;
	--workdir) workdir=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--until) until=$2; shift 2 ;;
	*) echo "run-qemu: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$config" ] || { echo "run-qemu: --config FILE is required" >&2; exit 2; }
code=/usr/share/OVMF/OVMF_CODE.fd vars=/usr/share/OVMF/OVMF_VARS.fd
[ -r "$code" ] || { echo "run-qemu: $code not found (apt-get install ovmf)" >&2; exit 2; }
auto_workdir=0
if [ -z "$workdir" ]; then
	workdir=$(mktemp -d /tmp/vmm-qemu.XXXXXX)
	auto_workdir=1
fi
mkdir -p "$workdir"
"$root/tools/mkdisk.sh" "$workdir/disk.img" "$config"
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
	qemu-system-x86_64 -cpu max -smp 2 -m 256 -machine q35 \
	-drive if=pflash,format=raw,readonly=on,file="$code" \
	-drive if=pflash,format=raw,file="$workdir/vars.fd" \
	-drive format=raw,file="$workdir/disk.img" \
	-serial file:"$workdir/serial.out" -display none -monitor none -no-reboot
emulator_wait "$workdir/serial.out" "$until"
