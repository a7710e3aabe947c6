#!/usr/bin/env bash
# End-to-end tests: boot the real image and assert on what it prints.
#
# Each boot runs in its own work directory under $E2E_DIR (default
# build/e2e) with a timeout; the boots run concurrently (Bochs is
# single-threaded) and the checks follow. Ends with "N passed, N failed".
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${E2E_DIR:-$root/build/e2e}
rm -rf "$out"
mkdir -p "$out"
cd "$root"

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# expect NAME BOOT REGEX: the boot's serial output matches REGEX.
expect() {
	if grep -aEq -- "$3" "$out/$2/serial.out" 2>/dev/null; then
		pass "$1"
	else
		fail "$1 (no match for /$3/ in $out/$2/serial.out)"
	fi
}
# expect_not NAME BOOT REGEX: nothing in the serial output matches REGEX.
expect_not() {
	if grep -aEq -- "$3" "$out/$2/serial.out" 2>/dev/null; then
		fail "$1 (unexpected /$3/ in $out/$2/serial.out)"
	else
		pass "$1"
	fi
}
# expect_order NAME BOOT REGEX...: lines matching the REGEXes appear in
# this order (each one searched for after the line the previous one matched).
expect_order() {
	local name=$1 boot=$2 line=0 n
	shift 2
	for re in "$@"; do
		n=$(tail -n +$((line + 1)) "$out/$boot/serial.out" 2>/dev/null |
			grep -aEn -- "$re" | head -1 | cut -d: -f1)
		if [ -z "$n" ]; then
			fail "$name (/$re/ missing or out of order)"
			return
		fi
		line=$((line + n))
	done
	pass "$name"
}

boot_bochs() { # NAME CONFIG UNTIL [where the config goes on the disk [RUN-BOCHS ARG...]]
	local name=$1 config=$2 until=$3 dest=${4:-/vmm.conf}
	shift 3
	[ $# -gt 0 ] && shift
	tools/run-bochs.sh --workdir "$out/$name" --config "$config" --until "$until" \
		--config-dest "$dest" --timeout 300 "$@" >"$out/$name.run" 2>&1
	echo $? >"$out/$name.rc"
}
# The store's second boot: the guests boot's disk, the store as it left it,
# with a configuration of one small VM (the store self-test reads back what
# the first boot wrote, as after a server's restart).
reboot_store() {
	mkdir -p "$out/reboot"
	cp "$out/guests/disk.img" "$out/reboot-disk.img"
	mcopy -o -i "$out/reboot-disk.img" tests/e2e/configs/store-reboot.conf ::/vmm.conf
	tools/run-bochs.sh --workdir "$out/reboot" --disk "$out/reboot-disk.img" --until "$halted" \
		--timeout 300 >"$out/reboot.run" 2>&1
	echo $? >"$out/reboot.rc"
}
boot_qemu() { # NAME CONFIG UNTIL [QEMU ARG...]
	local name=$1 config=$2 until=$3 args=()
	shift 3
	for a in "$@"; do args+=(--qemu-arg "$a"); done
	tools/run-qemu.sh --workdir "$out/$name" --config "$config" --until "$until" \
		--timeout 120 ${args[@]+"${args[@]}"} >"$out/$name.run" 2>&1
	echo $? >"$out/$name.rc"
}

# The store's self-test on QEMU's AHCI, NVMe and virtio-blk disks: no VT-x
# there, so the hypervisor takes the machine for it alone; each disk is
# booted twice, the second boot reading what the first one wrote.
store_qemu() {
	mkdir -p "$out/qemu-store"
	build/vmm-store create --size 1M "$out/qemu-store/vmmstore.img" >/dev/null
	for bus in ahci nvme virtio; do
		tools/run-qemu.sh --workdir "$out/store-$bus" --config tests/e2e/configs/store-qemu.conf \
			--extra "$out/qemu-store/vmmstore.img" --disk-bus $bus --until "$halted" \
			--timeout 120 >"$out/store-$bus.run" 2>&1
		echo $? >"$out/store-$bus.rc"
		tools/run-qemu.sh --workdir "$out/store-$bus-again" --disk "$out/store-$bus/disk.img" \
			--disk-bus $bus --until "$halted" --timeout 120 >"$out/store-$bus-again.run" 2>&1
		echo $? >"$out/store-$bus-again.rc"
	done
	# The server case: the store is a GPT partition of its own (on NVMe here).
	tools/run-qemu.sh --workdir "$out/store-gpt" --config tests/e2e/configs/store-partition.conf \
		--store-partition --disk-bus nvme --until "$halted" --timeout 120 \
		>"$out/store-gpt.run" 2>&1
	echo $? >"$out/store-gpt.rc"
	tools/run-qemu.sh --workdir "$out/store-gpt-again" --disk "$out/store-gpt/disk.img" \
		--disk-bus nvme --until "$halted" --timeout 120 >"$out/store-gpt-again.run" 2>&1
	echo $? >"$out/store-gpt-again.rc"
}

# A power cut in the middle of a stream of data writes and commits
# (store-stress.conf): the emulator is killed at a random commit; then the
# same disk boots with the plain store self-test, which must open the store.
stress_store() {
	mkdir -p "$out/stress-store"
	build/vmm-store create --size 1M "$out/stress-store/vmmstore.img" >/dev/null
	echo $((RANDOM % 40 + 8)) >"$out/stress-cut-at"
	tools/run-bochs.sh --workdir "$out/stress" --config tests/e2e/configs/store-stress.conf \
		--extra "$out/stress-store/vmmstore.img" \
		--until "store stress: stress-$(cat "$out/stress-cut-at") committed" \
		--timeout 300 >"$out/stress.run" 2>&1
	echo $? >"$out/stress.rc"
	cp "$out/stress/disk.img" "$out/stress-cut.img"
	mcopy -o -i "$out/stress-cut.img" tests/e2e/configs/store-qemu.conf ::/vmm.conf
	tools/run-bochs.sh --workdir "$out/stress-again" --disk "$out/stress-cut.img" \
		--until "$halted" --timeout 300 >"$out/stress-again.run" 2>&1
	echo $? >"$out/stress-again.rc"
}

halted='system halted|returning to the firmware|nothing left to run'
echo "e2e: booting (Bochs: demo, guests, bad-vms, bad-syntax, selftest, mgmt; QEMU: no-vtx)"
# The Linux boot takes minutes: it runs beside all the others, which go in
# groups (a group's boots at once, waited for by their own pids).
tests/e2e/linux-boot.sh "$out/linux" tests/e2e/configs/linux.conf >"$out/linux.client" 2>&1 &
linux_boot=$!
group=()
boot_bochs demo tests/e2e/configs/boot-path.conf "$halted" &
group+=($!)
# The store the guests boot writes to (docs/store.md): 1 MiB, with the
# persist guest's disk of 64 KiB of zeros.
build/vmm-store create --size 1M "$out/vmmstore.img" >/dev/null
head -c 65536 /dev/zero >"$out/pdisk.img"
build/vmm-store import "$out/vmmstore.img" pdisk "$out/pdisk.img" >/dev/null
boot_bochs guests tests/e2e/configs/guests.conf "$halted" /vmm.conf --extra "$out/vmmstore.img" &
group+=($!)
wait "${group[@]}"
group=()
boot_bochs bad-vms tests/e2e/configs/bad-vms.conf "$halted" &
group+=($!)
boot_bochs bad-syntax tests/e2e/configs/bad-syntax.conf "$halted" &
group+=($!)
stress_store &
group+=($!)
wait "${group[@]}"
group=()
boot_bochs selftest tests/e2e/configs/selftest-exception.conf "$halted" \
	/EFI/BOOT/vmm.conf &
group+=($!)
reboot_store &
group+=($!)
# With a BMC (QEMU's simulated one, over KCS, described by SMBIOS type 38).
boot_qemu no-vtx tests/e2e/configs/boot-path.conf "$halted" \
	-device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0 &
group+=($!)
store_qemu &
group+=($!)
wait "${group[@]}"
# The management boot ends when its client is done with the line.
tests/e2e/mgmt-boot.sh "$out/mgmt" tests/e2e/configs/mgmt.conf >"$out/mgmt.client" 2>&1
echo $? >"$out/mgmt.rc"
wait $linux_boot

for b in demo guests bad-vms bad-syntax selftest no-vtx reboot stress stress-again store-ahci store-ahci-again \
	store-nvme store-nvme-again store-virtio store-virtio-again store-gpt store-gpt-again; do
	if [ "$(cat "$out/$b.rc")" = 0 ]; then
		pass "$b: boot ended with a final message"
	else
		fail "$b: boot did not end ($(tail -1 "$out/$b.run"))"
	fi
done

# --- demo: the whole boot path up to VMXON -------------------------------
# OVMF under Bochs publishes no ACPI tables (it expects QEMU's fw_cfg), so
# the machine is described from the hardware; QEMU below checks the MADT.
expect_order "demo: boot phases in order" demo \
	'vmm [0-9.]+ \(.*\) starting: UEFI' \
	'acpi: the firmware publishes no ACPI tables; describing this CPU alone' \
	'acpi: \(no tables\) rev 0: 1 CPU\(s\), local APIC at 0xfee00000, 1 I/O APIC' \
	'cpu: VT-x with EPT and unrestricted guest present' \
	'config \\vmm.conf: 4 VM\(s\), 1 network\(s\)' \
	"vm 'alpha': 32 MiB RAM at 0x[0-9a-f]+, image 65536 bytes" \
	"vm 'gamma': 32 MiB RAM" \
	'taking over the machine: exiting boot services' \
	'boot services exited \([0-9]+ attempt\(s\)\); memory map: [0-9]+ ranges' \
	'hand-over done: own GDT, TSS, IDT and stack' \
	'memory: [0-9]+ MiB free .* 100 MiB reserved for 4 configured VM' \
	'vmx: IA32_FEATURE_CONTROL was unlocked: enabled VMX outside SMX and locked it' \
	'vmx: capabilities: EPT=yes' \
	'vmx: VMXON ok: VMX root operation on CPU 0' \
	"vm 'alpha': TurningOn" \
	"vm 'alpha': Running" \
	'sched: nothing left to run'
expect "demo: I/O APIC reported" demo 'acpi: I/O APIC id [0-9]+ at 0xfec00000, GSI base 0'
expect "demo: the firmware's interrupt sources are masked at the hand-over" demo \
	'hand-over: firmware leftovers: masked the 8259s, [1-9][0-9]* redirection entries of 1 I/O APIC\(s\), [4-7] local APIC LVTs; (no other CPU|the other CPUs sent INIT)'
expect_order "demo: an NMI in root mode is counted, and the guests run after it" demo \
	'selftest: this CPU sends itself an NMI' \
	'host NMI in root mode: 1 so far; the last one from LINT1 or an IPI' \
	'\[gamma\]'
expect "demo: capability report complete, APIC virtualization turned off" demo \
	'EPT=yes \(2M=yes 1G=yes A/D=yes INVEPT=yes\) VPID=yes \(INVVPID=yes\) unrestricted-guest=yes preemption-timer=yes \(TSC/1\) APIC-virtualization=no'
expect_order "demo: interrupts, priorities and EOIs with the local APIC emulated" demo \
	"vm 'delta': Running" '\[delta\] PASS nmi: ' '\[delta\] PASS irq: a level-triggered' \
	'\[delta\] PASS x2apic: left through the disabled state' \
	'\[delta\] conform: [1-9][0-9]* passed, 0 failed' "vm 'delta': TurnedOff \\(guest exited with status 0\\)"
expect "guests: APIC virtualization is used where the CPU has it" guests \
	'vmx: capabilities: .* APIC-virtualization=yes'
expect "demo: guest RAM is 2-MiB aligned" demo "vm 'beta': 32 MiB RAM at 0x[0-9a-f]*[02468ace]00000,"
expect "demo: real-mode guest ran" demo '\[alpha\] PASS hello: real mode from the reset vector'
expect "demo: long-mode guest ran" demo '\[beta\] PASS cpuid: VMX hidden'
expect "demo: spinning guest was preempted by the timer" demo \
	"vm 'gamma': ran [0-9]+ slice\\(s\\), [0-9]+ exit\\(s\\), preempted [1-9][0-9]* time"
expect_not "demo: no panic, no error, no FAIL" demo 'PANIC|ERROR|FAIL'

# --- guests: fifteen VMs on one CPU, five of them hostile --------------------
for g in hello hello64 cpuid busy timer pic-pit; do
	expect_order "guests: $g ran, passed and exited with the event sequence" guests \
		"vm '$g': TurningOn" "vm '$g': Running" "\\[$g\\] (PASS |busy: done)" \
		"vm '$g': TurningOff" "vm '$g': DeleteMachine" \
		"vm '$g': TurnedOff \\(guest exited with status 0\\)"
done
for check in 'cpuid: VMX hidden from the guest' 'cpuid: hypervisor-present bit set' \
	'cpuid: hypervisor leaf 0x40000000 carries the signature' \
	'vmcall: unknown call returns ENOSYS' 'msr: IA32_VMX_BASIC is #GP' \
	'msr: PAT round-trips' 'msr: LSTAR round-trips' 'msr: KERNEL_GS_BASE round-trips' \
	'msr: IA32_FEATURE_CONTROL is not writable' "msr: a TSC write sets the guest's TSC"; do
	expect "guests: $check" guests "\\[cpuid\\] PASS $check"
done
# The conformance guest counts its own checks; any FAIL line names the rule.
# Its areas run as two VMs (tests/e2e/configs/guests.conf).
for c in "conform:modes:x2apic" "conform-b:xsave:step"; do
	IFS=: read -r vm first last <<<"$c"
	expect_order "guests: $vm ran its checks ($first to $last) and exited with status 0" guests \
		"vm '$vm': Running" "\\[$vm\\] PASS $first: " "\\[$vm\\] PASS $last: " \
		"\\[$vm\\] conform: [1-9][0-9]* passed, 0 failed" \
		"vm '$vm': TurnedOff \\(guest exited with status 0\\)"
	expect_not "guests: $vm: no check failed" guests "\\[$vm\\] FAIL"
done
expect "guests: conform's vector registers outlived every check beside busy's" guests \
	'\[conform-b\] PASS xsave: (ZMM0-31 and k0-7|YMM0-15) kept their values'
expect "guests: busy's vector registers kept their values across its slices" guests \
	'\[busy\] PASS busy: its vector registers kept their values across every slice'
for a in attack attack-read attack-triple attack-mmio; do
	for check in 'unassigned ports read as all ones' 'RDMSR of a VMX MSR is #GP' \
		'WRMSR of an unknown MSR is #GP' 'non-canonical LSTAR is #GP' 'VMXON is #UD' \
		'unknown hypercall refused' 'hypercall buffer past RAM refused' \
		'control hypercalls refused to a guest'; do
		expect "guests: $a: $check" guests "\\[$a\\] PASS attack: $check"
	done
done
expect "guests: attack's control hypercall refused and logged" guests \
	"vm 'attack': control hypercall 4 refused: not the management VM \\(1 attempt"
expect "guests: attack ended by its write outside RAM" guests \
	"vm 'attack': TurnedOff \\(write at guest-physical 0x[0-9a-f]+, outside its memory"
expect "guests: attack-read ended by its read outside RAM" guests \
	"vm 'attack-read': TurnedOff \\(read at guest-physical 0x[0-9a-f]+, outside its memory"
expect "guests: attack-mmio: the I/O APIC answers through the MMIO emulator" guests \
	'\[attack-mmio\] PASS attack: the I/O APIC version reads through MMIO'
expect "guests: attack-mmio ended by an MMIO instruction not emulated" guests \
	"vm 'attack-mmio': TurnedOff \\(MMIO at guest-physical 0xfec00000 by an instruction the hypervisor does not emulate \\(0f ba"
expect "guests: attack-triple ended by its triple fault" guests \
	"vm 'attack-triple': TurnedOff \\(triple fault at RIP 0x[0-9a-f]+\\)"
expect "guests: the spinning guest outlived the attackers" guests \
	"vm 'busy': ran [0-9]+ slice\\(s\\), [0-9]+ exit\\(s\\), preempted [1-9][0-9]* time"
expect_order "guests: others finished while busy spun" guests \
	'\[busy\] busy: spinning' "vm 'attack-triple': TurnedOff" \
	'\[busy\] busy: done; other guests ran [1-9][0-9]* time'
expect "guests: hello64: output through the virtual COM1" guests \
	'\[hello64\] hello64: this line came through the virtual 16550 on COM1'
for check in 'COM1 answers the loopback probe' \
	'long mode with paging at the entry point' 'CR4.VMXE reads as clear' \
	'RDI holds the RAM size'; do
	expect "guests: hello64: $check" guests "\\[hello64\\] PASS hello64: $check"
done
expect "guests: hello64: RDI and RSI carry its RAM size and command line" guests \
	'\[hello64\] hello64: RAM 4 MiB, command line "hello from the config"'
for check in 'refused before an upcall vector is set' 'an exception vector is refused' \
	'HLT woken by the timer upcall' 'nothing delivered while RFLAGS.IF is clear' \
	'delivered through the interrupt window at STI' 'a cancelled timer stays silent'; do
	expect "guests: timer: $check" guests "\\[timer\\] PASS timer: $check"
done
# The guest's CMOS clock follows the host's (a run across midnight may see yesterday).
today=$(date -u +%F) yesterday=$(date -u -d yesterday +%F)
expect "guests: pic-pit: the CMOS clock shows the host's date" guests \
	"\\[pic-pit\\] rtc: ($today|$yesterday) [0-9]{2}:[0-9]{2}:[0-9]{2}"
for check in 'rtc: BCD, 24-hour, valid RAM' 'pic: the mask reads back' \
	'pit: counter 2 reached terminal count \(port 0x61 bit 5\)' \
	'pit: IRQ 0 delivered through the PIC while halted' \
	'pit: the periodic rate agrees with the one-shot' 'pic: a masked IRQ 0 is not delivered'; do
	expect "guests: pic-pit: $check" guests "\\[pic-pit\\] PASS $check"
done
expect_order "guests: reboot: the Reset event sequence, then the guest again" guests \
	"vm 'reboot': Running" '\[reboot\] reboot: first boot, resetting through port 0xcf9' \
	"vm 'reboot': TurningOff" "vm 'reboot': DeleteMachine" "vm 'reboot': TurningOn" \
	"vm 'reboot': Running \\(reset by the guest \\(port 0xcf9\\)\\)" \
	'\[reboot\] PASS reboot: came back after the reset with its CMOS mark' \
	"vm 'reboot': TurnedOff \\(guest exited with status 0\\)"
# blk-flood: 256 ring entries, one notification, several times over; the
# device serves a budget and leaves the rest to later passes (the time
# itself is a benchmark, tests/bench/run.sh, not asserted here).
for check in 'virtio-blk found on PCI' 'queue 0 set up, DRIVER_OK' \
	'the device bounds a request by size_max and seg_max' \
	'one notification leaves the ring.s rest pending' 'later passes complete every request' \
	'the requests have the expected status'; do
	expect "guests: blk-flood: $check" guests "\\[blk-flood\\] PASS blk-flood: $check"
done
expect_order "guests: blk-flood: bounded, reported when it turned off" guests \
	"vm 'blk-flood': TurningOff" \
	"vm 'blk-flood': virtio-blk: longest notification [0-9]+ us, longest pass [0-9]+ us; 768 request\\(s\\) too large refused" \
	"vm 'blk-flood': TurnedOff \\(guest exited with status 0\\)"
expect "guests: all fifteen ended" guests 'sched: nothing left to run \(0 VM\(s\) halted, 15 not running\)'
expect_not "guests: no guest FAIL, no panic" guests 'FAIL|PANIC|ERROR'

# --- bad-vms: every problem reported, nothing taken over ---------------------
expect "bad-vms: missing image named" bad-vms \
	"vm 'missing': cannot read image '\\\\guests\\\\does-not-exist.bin' from the boot volume: not found"
expect "bad-vms: too little memory named" bad-vms \
	"vm 'huge': cannot reserve 1024 MiB of RAM: the largest free block is [0-9]+ MiB"
expect "bad-vms: summary" bad-vms '2 problem\(s\) with the configured VMs; nothing was started'
expect "bad-vms: control back to the firmware" bad-vms 'configuration error; returning to the firmware'
expect_not "bad-vms: machine not taken over" bad-vms 'exiting boot services|PANIC'

# --- bad-syntax: a config error names file, line and key ---------------------
expect "bad-syntax: line and key named" bad-syntax \
	"config \\\\vmm.conf line 6: unknown key 'memroy' in \[vm web\]"
expect_not "bad-syntax: machine not taken over" bad-syntax 'exiting boot services|PANIC'

# --- selftest: an exception in the hypervisor reaches the panic path ---------
expect "selftest: the config next to the application is found" selftest \
	'config \\EFI\\BOOT\\vmm.conf: 1 VM\(s\)'
expect_order "selftest: panic report in order" selftest \
	'vmx: VMXON ok' \
	"selftest: writing to the hypervisor's own code at 0x" \
	'PANIC: exception in the hypervisor: vector 14 \(#PF page fault\), error code 0x3' \
	'RIP=[0-9a-f]{16} RFLAGS=' \
	'RAX=[0-9a-f]{16}' \
	'CR0=[0-9a-f]{16} CR2=' \
	'faulting instruction at 0x[0-9a-f]{16}  vmm.so\+0x[0-9a-f]+' \
	'backtrace:' \
	'^.*  0x[0-9a-f]{16}  vmm.so\+0x' \
	'system halted'

# W^X: the write faulted on exactly the code address the self-test chose.
code=$(grep -ao "selftest: writing to the hypervisor's own code at 0x[0-9a-f]*" \
	"$out/selftest/serial.out" | sed 's/.*0x//')
expect "selftest: the fault is the write to code (CR2 = ${code:-?})" selftest \
	"CR2=0*${code:-none} "

# --- no-vtx: QEMU's software CPU has no VT-x; its OVMF has ACPI tables -------
expect "no-vtx: MADT parsed (2 CPUs, I/O APIC, overrides, 8259s)" no-vtx \
	'acpi: BOCHS +rev 2: 2 CPU\(s\), local APIC at 0xfee00000, 1 I/O APIC\(s\), 5 interrupt override\(s\), dual 8259'
expect "no-vtx: says VT-x is missing" no-vtx 'has no Intel VT-x \(CPUID.1:ECX.VMX=0\)'
expect "no-vtx: asks the BMC found in SMBIOS for its watchdog over KCS" no-vtx \
	'ipmi: BMC at KCS 0xca2: watchdog not running'
expect "no-vtx: finds q35's TCO watchdog (ICH9 LPC) and leaves it halted" no-vtx \
	'tco: TCO watchdog at 0x660 (was running .*: halted|already halted)'
expect "no-vtx: times the TSC against the ACPI PM timer, with its error" no-vtx \
	'clock: TSC at [0-9]+ Hz by the ACPI PM timer, within [0-9]+ ppm'
expect "no-vtx: returns to the firmware" no-vtx \
	'the hypervisor cannot run on this machine; returning to the firmware'

# --- mgmt: the management VM on a two-way COM1, driven through vmmctl ---------
# Each of the boot's checks is one check here (tests/e2e/mgmt-boot.sh: every
# API call through build/vmmctl, then tests/e2e/mgmt_client.py below the tool).
while read -r verdict name; do
	if [ "$verdict" = PASS ]; then pass "mgmt: $name"; else fail "mgmt: $name"; fi
done < <(grep -aE '^(PASS|FAIL) ' "$out/mgmt.client")
if grep -aq '^mgmt-client: [0-9]* passed, 0 failed' "$out/mgmt.client" &&
	grep -aq '^mgmt-boot: [0-9]* passed, 0 failed' "$out/mgmt.client"; then
	pass "mgmt: vmmctl and the client drove the line to the end"
else
	fail "mgmt: the management boot did not finish ($(tail -1 "$out/mgmt.client"))"
fi
expect_order "mgmt: the management VM starts first and owns the line" mgmt \
	"vm 'mgmt': Running" "vm 'echo': TurningOn" "mgmt: 'mgmt' is the management VM"
expect "mgmt: the rogue guest's control hypercall is logged" mgmt \
	"vm 'rogue': control hypercall 4 refused: not the management VM"
expect "mgmt: the rogue guest saw HC_EPERM" mgmt \
	'\[rogue\] PASS attack: control hypercalls refused to a guest'
expect "mgmt: log lines go on between frames" mgmt "vm 'web2': TurnedOff"
# The line also carries frames: an exported VM's memory holds the echo
# guest's own "PASS FAIL" strings. Errors and guest failures are log lines.
expect_not "mgmt: no panic, no error, no FAIL" mgmt 'PANIC|\] ERROR |\] [A-Z]+ +\[[^]]*\] FAIL'

# --- the store: written through the hypervisor's ATA driver (by bus-master DMA), kept on the disk ---
expect_order "store: located on the boot disk, opened by DMA, self-tested (a committed object)" guests \
	"store '\\\\vmmstore.img': 1024 KiB in [0-9]+ piece\\(s\\) from sector [0-9]+ of the ATA primary master drive" \
	"store: '\\\\vmmstore.img' on '.*' \\(the ATA primary master drive \\(bus-master DMA\\), [0-9]+ MiB\\): generation 2, 1 object\\(s\\)" \
	'store selftest: 64 KiB written, flushed, committed \(generation 3\) and read back'
expect_order "store: the persist guest's store disk counts its first boot" guests \
	"vm 'persist': 4 MiB RAM, [0-9]+ bytes of hypervisor memory .*its 64-KiB disk is store object 'pdisk'" \
	'\[persist\] PASS persist: sector 0 reads back as written' \
	'\[persist\] persist: boot 1 of this disk, counted, flushed' \
	"vm 'persist': TurnedOff \(guest exited with status 0\)"
rm -f "$out/store-after.img" "$out/store-selftest.bin"
if mcopy -i "$out/guests/disk.img" ::/vmmstore.img "$out/store-after.img" 2>/dev/null &&
	build/vmm-store list "$out/store-after.img" >"$out/store-list.out" 2>&1 &&
	grep -q 'generation 3, 1 MiB, 856 KiB free, 2 object' "$out/store-list.out" &&
	build/vmm-store export "$out/store-after.img" selftest "$out/store-selftest.bin" &&
	python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if len(d) == 65536 and all(b == (i * 7 + (i >> 12) + 0x5a) & 0xff for i, b in enumerate(d)) else 1)' \
		"$out/store-selftest.bin"; then
	pass "store: vmm-store reads the committed generation and the object's pattern from the disk image"
else
	fail "store: the disk image after the boot ($(tail -2 "$out/store-list.out" 2>/dev/null | tr '\n' ' '))"
fi
expect "store: a second boot of that disk reads the object back" reboot \
	'store selftest: the 64 KiB a previous boot wrote read back intact'
expect "store: the persist guest's disk kept the first boot's count across the restart" reboot \
	'\[persist\] persist: boot 2 of this disk, counted, flushed'
# The power cut in the middle of the stream: every commit logged before the
# cut is on the disk (a line goes out only after its commit), every object
# there holds its bytes, and the hypervisor opens the store again.
logged=$(grep -aoE 'store stress: stress-[0-9]+ (committed|deleted) \(generation [0-9]+\)' \
	"$out/stress/serial.out" | tail -1 | grep -oE '[0-9]+\)$' | tr -d ')')
rm -f "$out"/stress-store.img*
if mcopy -i "$out/stress/disk.img" ::/vmmstore.img "$out/stress-store.img" 2>/dev/null &&
	build/vmm-store list "$out/stress-store.img" >"$out/stress-list.out" 2>&1 &&
	python3 - "$out/stress-store.img" "$out/stress-list.out" "${logged:-0}" <<'PY'
import re, subprocess, sys
store, listing, logged = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3])
generation = int(re.search(r"generation (\d+)", listing).group(1))
names = re.findall(r"^\s+(stress-\d+)\s", listing, re.M)
print("stress: cut after generation %d was logged; the store is at %d with %s"
      % (logged, generation, " ".join(names)))
ok = logged > 0 and generation >= logged and names
for name in names:
    i = int(name.split("-")[1])
    subprocess.run(["build/vmm-store", "export", store, name, store + "." + name], check=True,
                   stdout=subprocess.DEVNULL)
    data = open(store + "." + name, "rb").read()
    ok = ok and len(data) == 16384 and all(
        b == (i * 31 + k * 7 + (k >> 9)) & 0xff for k, b in enumerate(data))
sys.exit(0 if ok else 1)
PY
then
	pass "store: a power cut amid writes and commits leaves every logged commit, each object whole ($(sed -n 's/.*generation \([0-9]*\),.*/generation \1/p' "$out/stress-list.out"), cut at stress-$(cat "$out/stress-cut-at"))"
else
	fail "store: after the cut amid writes and commits (logged ${logged:-none}; $(head -3 "$out/stress-list.out" 2>/dev/null | tr '\n' ' '))"
fi
expect_order "store: the boot after the cut opens the store and commits on it" stress-again \
	"store: '\\\\vmmstore.img' on '.*' \\(.*\\): generation [0-9]+, [0-9]+ object" \
	'store selftest: 64 KiB written, flushed, committed \(generation [0-9]+\) and read back'

# QEMU (no VT-x): the same self-test through the AHCI, NVMe and virtio-blk drivers.
for bus in ahci nvme virtio; do
	case $bus in
	ahci) where='SATA port 0 of AHCI 00:1f\.2' ;;
	nvme) where='namespace 1 of NVMe [0-9a-f]{2}:[0-9a-f]{2}\.[0-7]' ;;
	virtio) where='virtio-blk [0-9a-f]{2}:[0-9a-f]{2}\.[0-7]' ;;
	esac
	expect_order "store on $bus (QEMU, no VT-x): found, driven, written, flushed, committed, read back" \
		"store-$bus" 'selftest = store: taking over this machine for the store.s self-test alone' \
		"store '\\\\vmmstore.img': 1024 KiB in [0-9]+ piece\\(s\\) from sector [0-9]+ of $where" \
		"store: '\\\\vmmstore.img' on '.*' \\($where.*\\): generation 1, 0 object" \
		'store selftest: 64 KiB written, flushed, committed \(generation 2\) and read back' \
		'store selftest: over; without VT-x no VM runs: system halted'
	expect "store on $bus (QEMU): a second boot of the disk reads the object back" "store-$bus-again" \
		'store selftest: the 64 KiB a previous boot wrote read back intact'
done
expect_order "store on a GPT partition of its type (QEMU, NVMe): found, opened, self-tested" \
	store-gpt "store 'partition': [0-9]+ KiB in 1 piece\\(s\\) from sector 55296 of namespace 1 of NVMe" \
	"store: 'partition' on '.*' \\(.*\\): generation 1, 0 object" \
	'store selftest: 64 KiB written, flushed, committed \(generation 2\) and read back'
expect "store on a GPT partition: a second boot reads the object back" store-gpt-again \
	'store selftest: the 64 KiB a previous boot wrote read back intact'
rm -f "$out/store-rebooted.img" "$out/pdisk-after.img"
if mcopy -i "$out/reboot/disk.img" ::/vmmstore.img "$out/store-rebooted.img" 2>/dev/null &&
	build/vmm-store export "$out/store-rebooted.img" pdisk "$out/pdisk-after.img" &&
	python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if d[:8] == b"VMMBOOTS" and int.from_bytes(d[8:12], "little") == 2 else 1)' \
		"$out/pdisk-after.img"; then
	pass "store: vmm-store finds the count 2 in the disk object after both boots"
else
	fail "store: the disk object after both boots ($(head -c 16 "$out/pdisk-after.img" 2>/dev/null | od -c | head -1))"
fi
expect_not "store: the second boot has no error" reboot 'PANIC|ERROR|FAIL'

# --- hygiene: no emulator left behind, no lock files -----------------------------
if pgrep -f "$out/.*/bochsrc" >/dev/null || pgrep -f "$out/.*/vars.fd" >/dev/null; then
	fail "cleanup: emulator processes left running"
else
	pass "cleanup: no emulator processes left"
fi
if ls "$out"/*/*.lock >/dev/null 2>&1; then
	fail "cleanup: lock files left in $out"
else
	pass "cleanup: no lock files left"
fi

# --- linux: three Debian kernels, their disks and network, through vmmctl ---
# Each of the driver's checks is one check here (tests/e2e/linux-boot.sh).
while read -r verdict name; do
	if [ "$verdict" = PASS ]; then pass "$name"; else fail "$name"; fi
done < <(grep -aE '^(PASS|FAIL) ' "$out/linux.client")
grep -aq '^PASS linux: no panic' "$out/linux.client" || fail "linux: the Linux boot did not finish ($(tail -1 "$out/linux.client"))"

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
