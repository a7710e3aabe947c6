#!/usr/bin/env bash
# Benchmarks. Each figure is one line: BENCH <name> <value> <unit>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${BENCH_DIR:-$root/build/bench}
mkdir -p "$out"

echo "BENCH vmm_image_bytes $(stat -c %s build/vmm.efi) bytes"

# Seconds from Bochs start to the VMXON report, host wall clock (Bochs runs
# at a fixed instruction rate, so this mostly measures emulated work).
t=$(tools/run-bochs.sh --workdir "$out/boot" --config configs/demo.conf \
	--until 'vmx: VMXON ok' --timeout 300 | sed -n 's/^matched after \([0-9.]*\) s$/\1/p')
echo "BENCH boot_to_vmxon_s ${t:-nan} s"
