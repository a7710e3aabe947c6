#!/usr/bin/env bash
# Opt-in: the guests e2e boot nested in QEMU/KVM on an Intel host with
# nested VMX (kvm_intel nested=1), the closest this project gets to a real
# server without one. Not run in CI: these machines have no usable VT-x.
# Prints a PASS or FAIL line per check and "N passed, N failed".
#
# usage: tools/test-kvm.sh [WORKDIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/build/kvm}
make -C "$root" -s image >/dev/null || exit 1
rm -rf "$work"
"$root/tools/run-qemu.sh" --kvm --workdir "$work" --config "$root/tests/e2e/configs/guests.conf" \
	--until 'nothing left to run|PANIC' --timeout 600 || exit 2
serial=$work/serial.out
passed=0 failed=0
check() { # NAME REGEX
	if grep -aEq -- "$2" "$serial"; then
		echo "PASS $1"; passed=$((passed + 1))
	else
		echo "FAIL $1"; failed=$((failed + 1))
	fi
}
check "kvm: VMXON on a nested VT-x" 'vmx: VMXON ok'
check "kvm: the TSC rate came from the CPU or a timer" 'clock: TSC at [0-9]+ Hz'
check "kvm: every bug's defence reported" 'speculation: [0-9]+ of [0-9]+ known bugs apply|speculation: CPUID'
check "kvm: conform ran clean" '\[conform\] conform: [0-9]+ passed, 0 failed'
check "kvm: conform-b ran clean" '\[conform-b\] conform: [0-9]+ passed, 0 failed'
check "kvm: every VM ended" 'sched: nothing left to run'
if grep -aq 'PANIC' "$serial"; then
	echo "FAIL kvm: the hypervisor panicked"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
