#!/usr/bin/env bash
# Benchmarks. Each figure is one line: BENCH <name> <value> <unit>.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${BENCH_DIR:-$root/build/bench}
mkdir -p "$out"

echo "BENCH vmm_image_bytes $(stat -c %s build/vmm.efi) bytes"

# Seconds from Bochs start to the VMXON report, host wall clock (OVMF boot
# included), with the demo configuration.
t=$(tools/run-bochs.sh --workdir "$out/boot" --config tests/e2e/configs/boot-path.conf \
	--until 'vmx: VMXON ok' --timeout 300 | sed -n 's/^matched after \([0-9.]*\) s$/\1/p')
echo "BENCH boot_to_vmxon_s ${t:-nan} s"

# One 64-MiB guest: its CPUID round trip as it measured it (Bochs: TSC ticks
# are emulated instructions) and the hypervisor memory the VM costs.
tools/run-bochs.sh --workdir "$out/exit" --config tests/bench/bench.conf \
	--until 'nothing left to run|PANIC' --timeout 300 >/dev/null
serial=$out/exit/serial.out
grep -ao 'BENCH cpuid_exit_tsc [0-9]* ticks' "$serial" || echo "BENCH cpuid_exit_tsc nan ticks"
grep -ao 'BENCH cpuid_exit_root_instr [0-9]* instr' "$serial" || echo "BENCH cpuid_exit_root_instr nan instr"
overhead=$(grep -ao "vm 'bench': 64 MiB RAM, [0-9]* bytes of hypervisor memory" "$serial" |
	sed -n 's/.*RAM, \([0-9]*\) bytes.*/\1/p')
echo "BENCH per_vm_overhead_bytes ${overhead:-nan} bytes"
# The same exit with speculation_defences = off: the cost of the defences
# a CPU like Bochs' (no eIBRS) needs on every exit.
tools/run-bochs.sh --workdir "$out/exit-undefended" --config tests/bench/bench-undefended.conf \
	--until 'nothing left to run|PANIC' --timeout 300 >/dev/null
grep -ao 'BENCH cpuid_exit_root_instr [0-9]* instr' "$out/exit-undefended/serial.out" |
	sed 's/root_instr/root_instr_undefended/' ||
	echo "BENCH cpuid_exit_root_instr_undefended nan instr"

# The store (docs/store.md), on Bochs' ATA disk in one boot: a guest's
# sequential 16-KiB writes to its store disk (through virtio-blk, the
# store's extents and the driver, flushed at the end) against the raw
# driver's writes of the store self-test (flushed too), and the time of
# one metadata commit, both on the hypervisor's clock.
build/vmm-store create --size 2M "$out/vmmstore.img" >/dev/null
head -c 524288 /dev/zero >"$out/pdisk.img"
build/vmm-store import "$out/vmmstore.img" pdisk "$out/pdisk.img" >/dev/null
rm -rf "$out/store"
tools/run-bochs.sh --workdir "$out/store" --config tests/bench/store.conf \
	--extra "$out/vmmstore.img" --until 'nothing left to run|PANIC' --timeout 300 >/dev/null
grep -aoE '(raw writes|sequential writes) [0-9]+ KiB in [0-9]+ us|a commit in [0-9]+ us' \
	"$out/store/serial.out" | awk '
	/^raw/ { raw = $3 / $6 } /^sequential/ { guest = $3 / $6 } /^a commit/ { commit = $4 }
	END {
		if (raw && guest) printf "BENCH store_write_ratio %.2f x\n", guest / raw
		else print "BENCH store_write_ratio nan x"
		if (commit) printf "BENCH store_commit_ms %.2f ms\n", commit / 1000
		else print "BENCH store_commit_ms nan ms"
	}'

# Fairness: a counting guest's rate (iterations per TSC tick, the
# hypervisor's clock) beside a guest storming its timers and halting, over
# its rate alone (tests/guests/count.c, storm.c). fairness_ratio is the
# HC_SET_TIMER(past) storm, fairness_ratio_lapic the local APIC timer one
# (periodic, initial count 1, divide by 1).
tools/run-bochs.sh --workdir "$out/fairness" --config tests/bench/fairness.conf \
	--until 'nothing left to run|PANIC' --timeout 900 >/dev/null
fairness() { # STORM-PHASE: the ratio for the windows inside that phase
	grep -aoE '(count|storm): [a-z0-9-]* ?[0-9]+ [0-9]+ [0-9]+' "$out/fairness/serial.out" |
		awk -v phase="$1" '
		$1 == "storm:" { from[$2] = $3; to[$2] = $4 }
		$1 == "count:" { n++; wf[n] = $2; wt[n] = $3; wc[n] = $4 }
		END {
			first = from["set-timer-past"]; f = from[phase]; t = to[phase]
			for (i = 1; i <= n; i++) {
				if (wt[i] <= first) { alone_n += wc[i]; alone_t += wt[i] - wf[i] }
				if (wf[i] >= f && wt[i] <= t) { storm_n += wc[i]; storm_t += wt[i] - wf[i] }
			}
			if (!first || !alone_n || !storm_t) { print "nan"; exit }
			printf "%.3f\n", (storm_n / storm_t) / (alone_n / alone_t)
		}'
}
echo "BENCH fairness_ratio $(fairness set-timer-past) x"
echo "BENCH fairness_ratio_lapic $(fairness lapic-periodic-1) x"

# How late a guest's local APIC TSC-deadline timer reaches it at most while
# ten busy guests share the CPU, by the hypervisor's clock: from the
# deadline to the interrupt's delivery (tests/guests/deadline.c, busy.c).
# Goal: under one 10-ms slice.
tools/run-bochs.sh --workdir "$out/timer-latency" --config tests/bench/timer-latency.conf \
	--until "vm 'deadline': TurnedOff|PANIC" --timeout 600 >/dev/null
late=$(grep -ao "vm 'deadline': ran .*TSC-deadline interrupts [0-9]* us late at most" \
	"$out/timer-latency/serial.out" | sed -n 's/.*interrupts \([0-9]*\) us late.*/\1/p')
echo "BENCH guest_timer_latency_max_us ${late:-nan} us"

# How much of the time the host had nothing to run its CPU spent halted
# (issue 17): one guest that sleeps in HLT between TSC-deadline timers
# (tests/bench/idle.conf); the hypervisor reports it when nothing is left.
tools/run-bochs.sh --workdir "$out/idle" --config tests/bench/idle.conf \
	--until 'nothing left to run|PANIC' --timeout 300 >/dev/null
halted=$(grep -ao 'sched: idle [0-9]* us, the CPU halted for [0-9]* us of it ([0-9]*%)' \
	"$out/idle/serial.out" | sed -n 's/.*(\([0-9]*\)%)/\1/p')
echo "BENCH host_idle_halted_pct ${halted:-nan} %"

# The longest single virtio-blk notification handling (hypervisor's TSC
# clock, in Bochs one tick per instruction) while a hostile driver fills
# its ring with 256 copies of one whole-disk read, then of one largest
# valid read, on a 16-MiB disk (tests/guests/blk_flood.c).
head -c 16777216 /dev/zero >"$out/flood-16m.img"
tools/run-bochs.sh --workdir "$out/blk-flood" --config tests/bench/blk-flood.conf \
	--extra "$out/flood-16m.img" --until 'nothing left to run|PANIC' --timeout 600 >/dev/null
notify=$(grep -ao "vm 'blk-flood': virtio-blk: longest notification [0-9]* us" \
	"$out/blk-flood/serial.out" | sed -n 's/.*notification \([0-9]*\) us/\1/p')
echo "BENCH blk_notify_max_us ${notify:-nan} us"

# The management line in Bochs at 115200 baud: bytes of a GetState request
# and its answer, their round trip (host wall clock, Bochs' speed included),
# one VMStateChange event, a Startup round trip, and an export's guest RAM
# a second against the line's rate.
tests/e2e/mgmt-boot.sh "$out/mgmt" tests/e2e/configs/mgmt.conf >"$out/mgmt.client" 2>&1
for b in mgmt_state_query_bytes mgmt_state_query_ms mgmt_event_bytes mgmt_startup_ms \
	export_vs_line_ratio; do
	grep -a "^BENCH $b " "$out/mgmt.client" || echo "BENCH $b nan"
done

# Linux under the hypervisor and without it, and its virtio disk.
tests/bench/linux.sh "$out"
# The Linux e2e boot's figures: a 512-KiB TCP transfer between two guests
# on one network against the same over loopback in one, the TSC rate the
# guests detected, an idle guest's exits, and the guest agent's round trip
# and heartbeat cost, and the Save and Startup-from-saved of lin2.
tests/e2e/linux-boot.sh "$out/linux-net" tests/e2e/configs/linux.conf >"$out/linux-net.out" 2>&1 || true
for b in guest_to_guest_kbps:KB/s guest_to_guest_exits_per_kb:exits/KB loopback_kbps:KB/s \
	guest_to_guest_stream_kbps:KB/s net_vs_loopback_ratio:x \
	guest_tsc_error_ppm:ppm guest_wallclock_drift_s_per_h:s/h \
	idle_linux_exits_per_s:exits/s heartbeat_exits_per_s:exits/s \
	agent_ping_ms:ms agent_ping_vs_state_ratio:x \
	save_ratio_idle_linux:x save_s_linux:s save_longest_step_ms:ms restore_s_linux:s \
	restore_ram_loaded_s_linux:s; do
	grep -a "^BENCH ${b%%:*} " "$out/linux-net.out" || echo "BENCH ${b%%:*} nan ${b#*:}"
done
