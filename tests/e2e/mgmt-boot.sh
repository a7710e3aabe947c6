#!/usr/bin/env bash
# The management boot (issue 7): Bochs with COM1 as a socket, a console
# server (tools/line-relay.py --share) on it that records the line in
# WORKDIR/serial.out and lets several clients use it at once. Every API
# call goes through the admin tool, build/vmmctl, with a background
# `vmmctl events --follow --json` whose output is held exactly against the
# state-change table of docs/protocol.md; then tests/e2e/mgmt_client.py
# takes the line alone for what a tool must not do (typing at the shell,
# noise, broken and duplicated frames) and the BENCH lines.
# Prints one "PASS name" / "FAIL name" per check, the client's output and
# a last line "mgmt-boot: N passed, N failed"; exits non-zero on a failure.
# Then the server loses its power: the emulator is killed with two VMs
# saved, and a second boot of the same disk finds them in the store and
# restores them (docs/store.md).
#
# usage: tests/e2e/mgmt-boot.sh WORKDIR CONFIG
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$1 config=$2
mkdir -p "$work"
work=$(cd "$work" && pwd)
serial=$work/serial.out sock=$work/line.sock out=$work/vmmctl
mkdir -p "$out"
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# The store the saved states go to (the configuration's store = \vmmstore.img),
# with a disk a VM carries to another store later (export --with-disk): 64
# KiB of zeros, 32 KiB that do not compress, 32 KiB of text, zeros to 256 KiB.
"$root/build/vmm-store" create --size 8M "$work/vmmstore.img" >/dev/null
python3 - "$work/seed.img" <<'PY'
import random, sys
r = random.Random(7)
text = b"a disk that moves with its VM\n" * 1200
data = bytes(65536) + bytes(r.getrandbits(8) for _ in range(32768)) + text[:32768]
open(sys.argv[1], "wb").write(data + bytes(262144 - len(data)))
PY
"$root/build/vmm-store" import "$work/vmmstore.img" seeded "$work/seed.img" >/dev/null
"$root/tools/run-bochs.sh" --workdir "$work" --config "$config" --extra "$work/vmmstore.img" \
	--console-server "$sock" --share-line --timeout 600 >"$work/run-bochs.out" 2>&1 &
bochs=$!
follower=
cleanup() {
	[ -n "$follower" ] && kill "$follower" 2>/dev/null
	kill "$bochs" 2>/dev/null
	wait "$bochs" 2>/dev/null
	# run-bochs.sh stops the emulator's process group; see it gone.
	local n=0
	while pgrep -f "$emulator/bochsrc" >/dev/null && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
}
emulator=$work
trap cleanup EXIT

vmmctl=$root/build/vmmctl
# The configuration's auth_key: every vmmctl below authenticates with it.
key_hex=$(sed -n 's/^auth_key *= *\([0-9a-fA-F]*\)$/\1/p' "$config")
echo "$key_hex" >"$work/key"
export VMMCTL_KEY_FILE=$work/key
ctl() { timeout 60 "$vmmctl" -c "unix:$sock" -t 5 -r 4 "$@"; }
# Exports and imports: tens of KiB at the line's pace, more under load.
xfer() { timeout 300 "$vmmctl" -c "unix:$sock" -t 5 -r 4 "$@"; }
# wait_for REGEX SECONDS: the serial output matches REGEX within SECONDS.
wait_for() {
	local deadline=$((SECONDS + $2))
	while ! grep -aEq -- "$1" "$serial" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		kill -0 $bochs 2>/dev/null || return 1
		sleep 1
	done
}

# run STEP ARGS...: `vmmctl --json ARGS`; stdout in $out/STEP.json, stderr in
# $out/STEP.err, the exit status in $rc.
run() {
	local step=$1
	shift
	ctl --json "$@" >"$out/$step.json" 2>"$out/$step.err"
	rc=$?
}
# holds STEP PYEXPR: the JSON that STEP printed satisfies PYEXPR (on d).
holds() {
	python3 - "$out/$1.json" "$2" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
why() { echo "rc $rc: $(head -c 300 "$out/$1.json" | tr '\n' ' ') $(head -c 200 "$out/$1.err" | tr '\n' ' ')"; }
# ok NAME STEP PYEXPR ARGS...: vmmctl ARGS exits 0 and its JSON satisfies PYEXPR.
ok() {
	local name=$1 step=$2 expr=$3
	shift 3
	run "$step" "$@"
	if [ $rc = 0 ] && holds "$step" "$expr"; then pass "$name"; else fail "$name ($(why "$step"))"; fi
}
# refused NAME STEP CODE ARGS...: vmmctl ARGS exits 1 (an API error), names
# CODE on stderr and in its JSON ({"error":{"name":CODE}}).
refused() {
	local name=$1 step=$2 code=$3
	shift 3
	run "$step" "$@"
	if [ $rc = 1 ] && grep -q "$code" "$out/$step.err" &&
		holds "$step" "d['error']['name'] == '$code'"; then
		pass "$name"
	else
		fail "$name ($(why "$step"))"
	fi
}

# --- the follower: vmmctl's own view of the state changes -----------------------
events=$out/events.jsonl mark=0
# events_are NAME STEP STATE...: since the last call, the follower printed
# exactly these VMStateChange events of web2, seq by seq, and the last one
# is the seq that STEP's answer carries (all of them came before it); the
# answer's state is the last event's, or $ANSWER_STATE (Save: its events end
# with TurnedOff, the VM is then Saved).
events_are() {
	local name=$1 answer=- deadline=$((SECONDS + 15))
	[ "$2" = - ] || answer=$out/$2.json
	shift 2
	while [ "$(wc -l <"$events")" -lt $((mark + $#)) ] && [ $SECONDS -lt $deadline ]; do
		sleep 0.5
	done
	sleep 1 # anything more would come now
	local got
	got=$(python3 - "$events" "$mark" "$answer" "$@" <<'PY'
import json, os, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
want = sys.argv[4:]
ev = [json.loads(l) for l in lines]
states = [e.get("state") for e in ev]
good = (states == want and all(e.get("event") == "VMStateChange" and e.get("vm") == "web2"
                               for e in ev))
seqs = [e.get("seq") for e in ev]
good = good and seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else good
if sys.argv[3] != "-" and want:
    answer = json.load(open(sys.argv[3]))
    good = (good and answer.get("seq") == seqs[-1]
            and answer.get("state") == (os.environ.get("ANSWER_STATE") or want[-1]))
print(("ok " if good else "bad ") + " ".join(map(str, states)))
PY
)
	mark=$(wc -l <"$events")
	case $got in
	"ok "*) pass "$name" ;;
	*) fail "$name (vmmctl events printed: ${got#bad })" ;;
	esac
}

# --- usage and connection errors: no line needed ----------------------------------
"$vmmctl" -c "unix:$sock" pause >"$out/usage.out" 2>&1
[ $? = 2 ] && pass "vmmctl: a missing argument is a usage error (exit 2)" ||
	fail "vmmctl: usage error ($(head -2 "$out/usage.out"))"
timeout 30 "$vmmctl" -c "unix:$work/nowhere.sock" -t 1 info >"$out/noconn.out" 2>&1
[ $? = 3 ] && pass "vmmctl: no line is a connection error (exit 3)" ||
	fail "vmmctl: connection error ($(head -2 "$out/noconn.out"))"

if wait_for "mgmt: '[a-z]+' is the management VM" 240 && [ -S "$sock" ]; then
	pass "vmmctl: the management VM is up and the line is served"
else
	fail "vmmctl: the management VM did not come up ($(tail -1 "$work/run-bochs.out"))"
	echo "mgmt-boot: $passed passed, $failed failed"
	exit 1
fi

# --- the server ---------------------------------------------------------------------
ok "vmmctl info: GetHostInfo (CPUs, memory, VM count)" info \
	"d['cpus'] == 1 and d['vm_count'] == 4 and d['memory_free'] > 0" info
ok "vmmctl events: the event cursor (SubscribeEvents)" seq "d['seq'] > 0" events
# exec:COMMAND: the line through a program's stdin and stdout, as a BMC's SOL client is.
timeout 60 "$vmmctl" -c "exec:python3 $root/tests/e2e/stdio_bridge.py $sock" -t 5 -r 4 --json \
	info >"$out/exec.json" 2>"$out/exec.err"
rc=$?
[ $rc = 0 ] && holds exec "d['vm_count'] == 4" &&
	pass "vmmctl -c exec:COMMAND: GetHostInfo through a program as the line" ||
	fail "vmmctl -c exec:COMMAND ($(why exec))"
wait_for "vm 'rogue': control hypercall [0-9]+ refused" 60
ok "vmmctl state: the rogue guest's control hypercalls were refused and counted" rogue \
	"d['control_denied'] >= 2" state rogue

# The guest additions' minimal library (tests/guests/lib/agent.h) in a
# freestanding guest, answering through the noise it writes before each sync.
if wait_for "\[agent\] agent: port org.qemu.guest_agent.0 open" 60; then
	pass "agent guest: the port org.qemu.guest_agent.0 opened through the control handshake"
else
	fail "agent guest: the port never opened ($(grep -a '\[agent\]' "$serial" | tail -1))"
fi
ok "vmmctl guest-additions: the freestanding agent, past 4 KiB of junk and a stale reply" \
	agent-additions "d['additions_version'] == 'vmm-test-agent 1.0'" guest-additions agent
ok "vmmctl guest-os: the freestanding agent's OS name" agent-os \
	"d['os_name'] == 'vmm test guest (freestanding) (kernel none)'" guest-os agent
refused "vmmctl guest-exec: a command the agent lacks is refused with its words" agent-exec \
	INTERNAL guest-exec agent true
if grep -q "no such command" "$out/agent-exec.err"; then
	pass "vmmctl guest-exec: the refusal quotes the agent (CommandNotFound's desc)"
else
	fail "vmmctl guest-exec: the agent's words ($(why agent-exec))"
fi
refused "vmmctl pause: the management VM cannot pause itself (PERMISSION_DENIED)" \
	pause-mgmt PERMISSION_DENIED pause mgmt

"$vmmctl" -c "unix:$sock" -v --json events --follow --vm web2 >"$events" 2>"$out/events.err" &
follower=$!
deadline=$((SECONDS + 30))
until grep -qs 'connected' "$out/events.err" || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
sleep 1 # its SubscribeEvents went out right after that Hello, ahead of any later frame

# --- a shared line: someone without the key beside authenticated clients ----------
# attack STEP: Hello, then DeleteVirtualMachine of echo unsigned and with a
# made-up session and MAC, from a client that sees the line but has no key.
attack() {
	python3 - "$sock" >"$out/$1.out" 2>&1 <<'PY'
import socket, struct, sys, time, zlib
sys.path.insert(0, "tools")
from cobs import cobs_encode, cobs_decode
def frame(fid, code, payload):
    raw = struct.pack("<BBBBIHH", 1, 1, 0, 0, fid, code, len(payload)) + payload
    return b"\0" + cobs_encode(raw + struct.pack("<I", zlib.crc32(raw))) + b"\0"
tlv = lambda tag, v: struct.pack("<BH", tag, len(v)) + v
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(1)
vm = tlv(0x20, b"echo")
forged = vm + tlv(0x0d, struct.pack("<I", 1)) + tlv(0x0e, struct.pack("<Q", 1 << 40)) + tlv(0x0f, bytes(16))
frames = [(0x5eed0001, 0x01, tlv(0x04, struct.pack("<H", 3))), (0x5eed0002, 0x12, vm), (0x5eed0003, 0x12, forged)]
for fid, code, p in frames:
    s.sendall(frame(fid, code, p))
buf, answers, deadline = b"", {}, time.time() + 30
while len(answers) < 3 and time.time() < deadline:
    try:
        buf += s.recv(4096)
    except socket.timeout:
        continue
    *chunks, buf = buf.split(b"\0")
    for c in chunks:
        raw = cobs_decode(c)
        if raw and len(raw) >= 16 and zlib.crc32(raw[:-4]) == struct.unpack("<I", raw[-4:])[0]:
            _, t, _, _, fid, code, n = struct.unpack_from("<BBBBIHH", raw)
            if fid in (0x5eed0001, 0x5eed0002, 0x5eed0003):
                err = struct.unpack_from("<H", raw, 15)[0] if t == 4 else 0
                answers[fid] = (t, err)
print(answers)
ok = answers.get(0x5eed0001, (0,))[0] == 2 and answers.get(0x5eed0002) == (4, 6) and answers.get(0x5eed0003) == (4, 6)
sys.exit(0 if ok else 1)
PY
}
still_there() { # NAME: echo still exists and runs
	ok "$1" "$2" "d['state'] == 'Running'" state echo
}
if (cd "$root" && attack attack-beside); then
	pass "auth: beside a following vmmctl, Hello + DeleteVirtualMachine without the key is refused"
else
	fail "auth: keyless DeleteVirtualMachine beside a session ($(tail -2 "$out/attack-beside.out" | tr '\n' ' '))"
fi
still_there "auth: the keyless delete changed nothing" attack-beside-state
# An admin's tool killed without Goodbye leaves nothing usable behind.
"$vmmctl" -c "unix:$sock" events --follow >/dev/null 2>"$out/killed.err" &
killed=$!
deadline=$((SECONDS + 30))
until grep -qs 'connected' "$out/killed.err" 2>/dev/null || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
kill -KILL $killed 2>/dev/null
wait $killed 2>/dev/null
if (cd "$root" && attack attack-after-kill); then
	pass "auth: after a vmmctl was killed without Goodbye, a keyless DeleteVirtualMachine is refused"
else
	fail "auth: keyless delete after a killed vmmctl ($(tail -2 "$out/attack-after-kill.out" | tr '\n' ' '))"
fi
still_there "auth: the keyless delete after the kill changed nothing" attack-after-kill-state
# Several authenticated clients at once, beside the follower.
for i in 1 2 3; do ctl --json info >"$out/parallel-$i.json" 2>"$out/parallel-$i.err" & done
wait_rc=0
for job in $(jobs -p); do [ "$job" = "$follower" ] || [ "$job" = "$bochs" ] || wait "$job" || wait_rc=1; done
if [ $wait_rc = 0 ] && holds parallel-1 "d['cpus'] == 1" && holds parallel-2 "d['cpus'] == 1" &&
	holds parallel-3 "d['cpus'] == 1"; then
	pass "auth: three vmmctl at once, each with its own session, beside the follower"
else
	fail "auth: three vmmctl at once ($(cat "$out"/parallel-*.err | head -c 300 | tr '\n' ' '))"
fi
VMMCTL_KEY_FILE= "$vmmctl" -c "unix:$sock" state echo >"$out/nokey.out" 2>&1
[ $? != 0 ] && grep -q 'requires authentication' "$out/nokey.out" &&
	pass "vmmctl: without a key it says the line requires authentication" ||
	fail "vmmctl: without a key ($(head -c 200 "$out/nokey.out"))"

# networks
ok "vmmctl net-create: CreateVirtualNetwork" net-create "d['mtu'] == 9000" net-create net2 --mtu 9000
refused "vmmctl net-create: a second net2 is ALREADY_EXISTS" net-create-2 ALREADY_EXISTS net-create net2
ok "vmmctl net-list: ListVirtualNetworks" net-list \
	"{'lan', 'net2'} <= {n['net'] for n in d['networks']}" net-list
ok "vmmctl dhcp-set: SetDhcpSettings" dhcp-set \
	"d['dhcp_enabled'] in (1, True) and d['dhcp_range'] == ['10.0.0.10', '10.0.0.99']" \
	dhcp-set lan --enabled on --range 10.0.0.10-10.0.0.99 --netmask 255.255.255.0
ok "vmmctl dhcp-get: GetDhcpSettings shows the change" dhcp-get \
	"d['dhcp_enabled'] in (1, True) and d['dhcp_range'] == ['10.0.0.10', '10.0.0.99']" dhcp-get lan
ok "vmmctl net-stats: GetStatistics (the configured adapter attached)" net-stats \
	"d['nic_count'] == 1 and d['rx_frames'] == 0" net-stats lan
ok "vmmctl leases: GetLeases (empty)" leases "d.get('leases', []) == []" leases lan

# a VM created at run time from the image library
refused "vmmctl create: an image outside the library is NOT_FOUND" create-bad NOT_FOUND \
	create web2 --memory 4M --image /guests/nothere.bin
ok "vmmctl create: CreateVirtualMachine (TurnedOff)" create "d['state'] == 'TurnedOff'" \
	create web2 --memory 4M --image /guests/echo.bin --nic net2
refused "vmmctl create: a second web2 is ALREADY_EXISTS" create-2 ALREADY_EXISTS \
	create web2 --memory 4M --image /guests/echo.bin
ok "vmmctl list: ListVirtualMachines" list \
	"[v['vm'] for v in d['vms']] == ['mgmt', 'echo', 'rogue', 'agent', 'web2']" list
ok "vmmctl find: FindVirtualMachine" find "d['vm_id'] > 0 and d['state'] == 'TurnedOff'" find web2
refused "vmmctl pause: Pause of a turned-off VM is INVALID_STATE" pause-off INVALID_STATE pause web2
if holds pause-off "d['error']['state'] == 'TurnedOff'" && grep -q 'state: TurnedOff' "$out/pause-off.err"; then
	pass "vmmctl pause: the INVALID_STATE error carries the state (TurnedOff)"
else
	fail "vmmctl pause: the error's state ($(why pause-off))"
fi
refused "vmmctl save: Save of a turned-off VM is INVALID_STATE" save-off INVALID_STATE save web2
refused "vmmctl resume: Resume of a turned-off VM is INVALID_STATE" resume-off INVALID_STATE resume web2
refused "vmmctl reset: Reset of a turned-off VM is INVALID_STATE" reset-off INVALID_STATE reset web2
refused "vmmctl turnoff: TurnOff of a turned-off VM is INVALID_STATE" turnoff-off INVALID_STATE turnoff web2
events_are "vmmctl events: refused operations change nothing (no event)" -

t0=$(date +%s%N)
ok "vmmctl start: Startup answers Running" start "d['state'] == 'Running'" start web2
startup_ms=$((($(date +%s%N) - t0) / 1000000))
events_are "vmmctl events: Startup is TurningOn, Running, then its answer" start TurningOn Running
refused "vmmctl start: Startup of a running VM is INVALID_STATE" start-2 INVALID_STATE start web2
refused "vmmctl resume: Resume of a running VM is INVALID_STATE" resume-run INVALID_STATE resume web2
ok "vmmctl wait: a running VM is Running" wait "d['state'] == 'Running'" wait web2 Running --max-wait 20

refused "vmmctl nic-add: AddNetworkAdapter while running is INVALID_STATE" nic-add INVALID_STATE nic-add web2
ok "vmmctl nic-list: ListNetworkAdapters (on net2)" nic-list "d['nics'][0]['net'] == 'net2'" nic-list web2
ok "vmmctl nic-attach: AttachToVirtualNetwork" nic-attach "True" nic-attach web2 0 lan
ok "vmmctl net-adapters: web2's adapter moved to lan" net-adapters \
	"'web2' in [n.get('vm') for n in d['nics']]" net-adapters lan
ok "vmmctl nic-mac: GetMacAddress" nic-mac \
	"__import__('re').fullmatch('([0-9a-f]{2}:){5}[0-9a-f]{2}', d['mac'].lower()) is not None" nic-mac web2 0
ok "vmmctl nic-detach: DetachFromVirtualNetwork" nic-detach "True" nic-detach web2 0
ok "vmmctl net-show: lan's adapters without web2 again" net-show \
	"'web2' not in __import__('json').dumps(d)" net-show lan

# console: output history and input to the guest's COM1
console_has() { # STEP TEXT [VM]: VM's (web2's) console --dump shows TEXT within 30 s
	local deadline=$((SECONDS + 30))
	while :; do
		ctl console "${3:-web2}" --dump >"$out/$1.out" 2>"$out/$1.err" &&
			grep -q "$2" "$out/$1.out" && return 0
		[ $SECONDS -lt $deadline ] || return 1
		sleep 1
	done
}
if console_has console-1 'echo: ready'; then
	pass "vmmctl console --dump: ConsoleRead returns the guest's output"
else
	fail "vmmctl console --dump: no 'echo: ready' ($(tail -c 200 "$out/console-1.out"))"
fi
ctl console web2 --send 'hi there\r' >"$out/console-send.out" 2>&1 &&
	pass "vmmctl console --send: ConsoleWrite accepted" ||
	fail "vmmctl console --send ($(tail -1 "$out/console-send.out"))"
if console_has console-2 'echo: hi there'; then
	pass "vmmctl console: the guest read the input (echo: hi there)"
else
	fail "vmmctl console: no 'echo: hi there' ($(tail -c 200 "$out/console-2.out"))"
fi
ok "vmmctl console --dump --json: the output as data" console-json \
	"'echo: hi there' in d['data']" console web2 --dump

# Guest time stands still while a VM is paused (docs/time.md). The guest's
# clock ("echo: clock MS", from its TSC) is read between two GetStates, whose
# vm_uptime_ms is the host's time; two more GetStates while paused bound a
# stretch of host time the guest must not see.
# guest_clock_ms N: the MS of web2's Nth "echo: clock MS" line (within 30 s).
guest_clock_ms() { # N [VM]: the Nth "echo: clock" of VM (web2)
	local deadline=$((SECONDS + 30)) ms
	while :; do
		ctl console "${2:-web2}" --dump >"$out/clock.out" 2>&1
		ms=$(grep -ao 'echo: clock [0-9]*' "$out/clock.out" | sed -n "$1s/.* //p")
		[ -n "$ms" ] && echo "$ms" && return 0
		[ $SECONDS -lt $deadline ] || return 1
		sleep 1
	done
}
uptime_ms() { # STEP: its vm_uptime_ms, 0 when it has none
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["vm_uptime_ms"])' \
		"$out/$1.json" 2>/dev/null || echo 0
}
run clock-host-before state web2
ctl console web2 --send 'clock\r' >/dev/null 2>&1
clock_before=$(guest_clock_ms 1)
ok "vmmctl pause: Pause answers Paused" pause "d['state'] == 'Paused'" pause web2
events_are "vmmctl events: Pause is Paused, then its answer" pause Paused
ok "vmmctl state: GetState shows Paused" state-paused \
	"d['state'] == 'Paused' and d['vm_uptime_ms'] >= 0" state web2
refused "vmmctl pause: a second Pause is INVALID_STATE" pause-2 INVALID_STATE pause web2
sleep 3
run state-paused-late state web2
ok "vmmctl resume: Resume answers Running" resume "d['state'] == 'Running'" resume web2
events_are "vmmctl events: Resume is Running, then its answer" resume Running
ctl console web2 --send 'clock\r' >/dev/null 2>&1
clock_after=$(guest_clock_ms 2)
run clock-host-after state web2
host_ms=$(($(uptime_ms clock-host-after) - $(uptime_ms clock-host-before)))
paused_ms=$(($(uptime_ms state-paused-late) - $(uptime_ms state-paused)))
guest_ms=$((clock_after - clock_before))
# Whole ms on both sides, and CPUID 15H's rate in kHz: a few ms of slack.
if [ -n "$clock_before" ] && [ -n "$clock_after" ] && [ $paused_ms -gt 0 ] &&
	[ $guest_ms -ge 0 ] && [ $guest_ms -le $((host_ms - paused_ms + 3)) ]; then
	pass "guest time: stood still while paused (guest ${guest_ms} ms, host ${host_ms} ms, ${paused_ms} ms of it seen paused)"
else
	fail "guest time: guest ${guest_ms} ms, host ${host_ms} ms, ${paused_ms} ms seen paused (clock '$clock_before' '$clock_after')"
fi
ok "vmmctl reset: Reset answers Running" reset "d['state'] == 'Running'" reset web2
events_are "vmmctl events: Reset is TurningOff, DeleteMachine, TurningOn, Running" reset \
	TurningOff DeleteMachine TurningOn Running

# Save, and Startup from the saved state (docs/savefile.md): the echo guest goes
# on where it stopped, with its TSC going on from the saved value; it is not
# booted again ("echo: ready" is not printed again).
ctl console web2 --send 'before save\r' >/dev/null 2>&1
console_has save-1 'echo: before save' || fail "save: the echo guest did not answer before Save"
ctl console web2 --send 'clock\r' >/dev/null 2>&1
clock_saved=$(guest_clock_ms 3)
ready_before=$(grep -ac 'echo: ready' "$out/clock.out")
ok "vmmctl save: Save answers Saved" save "d['state'] == 'Saved'" save web2
ANSWER_STATE=Saved events_are "vmmctl events: Save is Saving, TurningOff, DeleteMachine, TurnedOff" save \
	Saving TurningOff DeleteMachine TurnedOff
ok "vmmctl state: a saved VM reports its saved size and time" state-saved \
	"d['state'] == 'Saved' and 0 < d['saved_size'] < 4 << 20 and d['saved_at'] > 1600000000" \
	state web2
grep -a "vm 'web2': state saved" "$serial" | tail -1 | sed 's/^/  /'
refused "vmmctl delete: a saved VM is kept until its state is discarded (INVALID_STATE)" \
	delete-saved INVALID_STATE delete web2
refused "vmmctl pause: Pause of a saved VM is INVALID_STATE" pause-saved INVALID_STATE pause web2
ok "vmmctl start: Startup of a saved VM answers Running" restore "d['state'] == 'Running'" start web2
events_are "vmmctl events: Startup from Saved is TurningOn, Restoring, Running" restore \
	TurningOn Restoring Running
ctl console web2 --send 'after restore\r' >/dev/null 2>&1
if console_has save-2 'echo: after restore'; then
	pass "restore: the echo guest answers after Startup from its saved state"
else
	fail "restore: no 'echo: after restore' ($(tail -c 200 "$out/save-2.out"))"
fi
# The YMM/ZMM and k registers the echo guest filled at start came back with
# the rest of the vCPU (vCPU record version 3, docs/savefile.md).
ctl console web2 --send 'vectors\r' >/dev/null 2>&1
if console_has save-vectors 'echo: vectors intact'; then
	pass "restore: the echo guest's vector registers kept their values"
else
	fail "restore: the echo guest's vector registers ($(grep -a 'echo: vectors' "$out/save-vectors.out" | tail -1))"
fi
ctl console web2 --send 'clock\r' >/dev/null 2>&1
clock_restored=$(guest_clock_ms 4)
ready_after=$(grep -ac 'echo: ready' "$out/clock.out")
if [ -n "$clock_saved" ] && [ -n "$clock_restored" ] && [ "$clock_restored" -ge "$clock_saved" ] &&
	[ "$ready_after" = "$ready_before" ]; then
	pass "restore: the guest went on, not booted again (clock ${clock_saved} -> ${clock_restored} ms, 'echo: ready' ${ready_after} times)"
else
	fail "restore: clock '$clock_saved' -> '$clock_restored', 'echo: ready' $ready_before -> $ready_after"
fi
ok "vmmctl save: Save of a restored VM" save-2 "d['state'] == 'Saved'" save web2
ok "vmmctl discard: DiscardSavedState answers TurnedOff" discard "d['state'] == 'TurnedOff'" \
	discard web2
events_are "vmmctl events: Save, then Discard is TurnedOff" discard \
	Saving TurningOff DeleteMachine TurnedOff TurnedOff
refused "vmmctl discard: Discard without a saved state is INVALID_STATE" discard-2 INVALID_STATE \
	discard web2
ok "vmmctl start: after Discard, Startup boots afresh" start-fresh "d['state'] == 'Running'" \
	start web2
events_are "vmmctl events: a fresh Startup is TurningOn, Running" start-fresh TurningOn Running
refused "vmmctl guest-heartbeat: GetHeartbeat without an agent in the guest is NO_ADDITIONS" heartbeat \
	NO_ADDITIONS guest-heartbeat web2
refused "vmmctl delete: DeleteVirtualMachine of a running VM is INVALID_STATE" delete-run INVALID_STATE delete web2
events_are "vmmctl events: refused operations on a running VM change nothing" -
# Human output too: "VM: State" (docs/vmmctl.md).
ctl turnoff web2 >"$out/turnoff.out" 2>&1
rc=$?
if [ $rc = 0 ] && [ "$(cat "$out/turnoff.out")" = "web2: TurnedOff" ]; then
	pass "vmmctl turnoff: TurnOff prints 'web2: TurnedOff'"
else
	fail "vmmctl turnoff (rc $rc: $(head -c 200 "$out/turnoff.out"))"
fi
events_are "vmmctl events: TurnOff is TurningOff, DeleteMachine, TurnedOff" - \
	TurningOff DeleteMachine TurnedOff
# The same from a paused VM: Pause, then TurnOff.
ctl start web2 >/dev/null 2>&1 && ctl pause web2 >/dev/null 2>&1
events_are "vmmctl events: Startup and Pause again" - TurningOn Running Paused
ok "vmmctl turnoff: TurnOff of a paused VM answers TurnedOff" turnoff-paused \
	"d['state'] == 'TurnedOff'" turnoff web2 --reason e2e
events_are "vmmctl events: TurnOff of a paused VM is TurningOff, DeleteMachine, TurnedOff" \
	turnoff-paused TurningOff DeleteMachine TurnedOff

kill -INT "$follower" 2>/dev/null
wait "$follower"
frc=$?
follower=
python3 - "$events" <<'PY' >"$out/events.check" 2>&1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
want = ("TurningOn Running Paused Running TurningOff DeleteMachine TurningOn Running "
        "Saving TurningOff DeleteMachine TurnedOff TurningOn Restoring Running "
        "Saving TurningOff DeleteMachine TurnedOff TurnedOff TurningOn Running "
        "TurningOff DeleteMachine TurnedOff TurningOn Running Paused "
        "TurningOff DeleteMachine TurnedOff").split()
got = [e.get("state") for e in ev]
seqs = [e["seq"] for e in ev]
print(got)
sys.exit(0 if got == want and all(e["event"] == "VMStateChange" for e in ev)
         and seqs == sorted(set(seqs)) else 1)
PY
if [ $? = 0 ] && [ $frc = 0 ]; then
	pass "vmmctl events --follow: the whole run is the table's sequences, nothing lost (exit 0 on Ctrl-C)"
else
	fail "vmmctl events --follow: whole run (exit $frc: $(cat "$out/events.check"))"
fi

# Moving a VM (docs/savefile.md): web2 is saved and exported into a file on
# this host, deleted, and imported again as web3, which goes on where web2
# stopped (no new "echo: ready"; it answers typed lines at once).
ctl nic-attach web2 0 lan >/dev/null 2>&1
ctl start web2 >/dev/null 2>&1
# 32 KiB that do not compress in its RAM: a file that takes seconds on the line.
ctl console web2 --send 'fill\r' >/dev/null 2>&1
console_has move-fill 'echo: fill 32768' || fail "move: web2 did not fill its RAM"
ctl console web2 --send 'before move\r' >/dev/null 2>&1
console_has move-1 'echo: before move' || fail "move: web2 did not answer before Save"
ctl console web2 --send 'count\r' >/dev/null 2>&1
console_has move-count 'echo: count [0-9]' || fail "move: web2 did not count before Save"
count_before=$(grep -ao 'echo: count [0-9]*' "$out/move-count.out" | tail -1 | awk '{print $3}')
ok "vmmctl save: web2 saved to be moved" move-save "d['state'] == 'Saved'" save web2
run move-state state web2
saved_size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["saved_size"])' \
	"$out/move-state.json" 2>/dev/null)
rm -f "$out/web2.vmsave" "$out/web2.vmsave.part"
xfer export web2 "$out/web2.vmsave" >"$out/export.out" 2>&1
rc=$?
if [ $rc = 0 ] && [ -n "$saved_size" ] && [ "$(stat -c %s "$out/web2.vmsave" 2>/dev/null)" = "$saved_size" ]; then
	pass "vmmctl export: the saved web2 as one file on the admin host ($(cat "$out/export.out"))"
	# Guest RAM moved per second against the emulated line's 11520 bytes/s.
	sed -n 's/.* in \([0-9.]*\) s$/\1/p' "$out/export.out" |
		awk '$1 > 0 { printf "BENCH export_vs_line_ratio %.1f x\n", 4 * 1048576 / $1 / 11520; done = 1 }
		     END { if (!done) print "BENCH export_vs_line_ratio nan x" }'
else
	echo "BENCH export_vs_line_ratio nan x"
	fail "vmmctl export (rc $rc, saved_size ${saved_size:-?}: $(tail -c 300 "$out/export.out"))"
fi
# A line that dropped mid-export left FILE.part: the next export goes on from
# its end, and the whole is checked before it takes FILE's name; a .part that
# is not the start of this file is caught by that check and removed.
head -c 5000 "$out/web2.vmsave" >"$out/again.vmsave.part"
xfer export web2 "$out/again.vmsave" >"$out/export-again.out" 2>&1
rc=$?
if [ $rc = 0 ] && cmp -s "$out/web2.vmsave" "$out/again.vmsave" && [ ! -e "$out/again.vmsave.part" ]; then
	pass "vmmctl export: a transfer cut at 5000 bytes goes on from there to the same file"
else
	fail "vmmctl export after a cut (rc $rc: $(tail -c 200 "$out/export-again.out"))"
fi
head -c 5000 /dev/urandom >"$out/junk.vmsave.part"
xfer export web2 "$out/junk.vmsave" >"$out/export-junk.out" 2>&1
rc=$?
if [ $rc = 4 ] && [ ! -e "$out/junk.vmsave" ] && [ ! -e "$out/junk.vmsave.part" ] &&
	grep -q 'not a whole save file' "$out/export-junk.out"; then
	pass "vmmctl export: a .part that is not this file's start is refused and removed"
else
	fail "vmmctl export over a foreign .part (rc $rc: $(tail -c 200 "$out/export-junk.out"))"
fi
# A file damaged on its way is refused by the tool before anything is sent.
python3 - "$out/web2.vmsave" "$out/bad.vmsave" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[len(b) // 2] ^= 0x40
open(sys.argv[2], 'wb').write(b)
PY
xfer import "$out/bad.vmsave" --name web4 >"$out/import-bad.out" 2>&1
rc=$?
if [ $rc = 2 ] && grep -q 'not a whole save file' "$out/import-bad.out"; then
	pass "vmmctl import: a damaged file is refused by the tool ($(head -c 160 "$out/import-bad.out"))"
else
	fail "vmmctl import of a damaged file (rc $rc: $(tail -c 200 "$out/import-bad.out"))"
fi
ok "vmmctl discard: web2's state dropped before it is deleted" move-discard \
	"d['state'] == 'TurnedOff'" discard web2
ok "vmmctl delete: DeleteVirtualMachine" delete "True" delete web2
refused "vmmctl find: the deleted web2 is NOT_FOUND" find-gone NOT_FOUND find web2
xfer import "$out/web2.vmsave" --name web3 >"$out/import.out" 2>&1
rc=$?
if [ $rc = 0 ]; then
	pass "vmmctl import: the file is web3 ($(cat "$out/import.out"))"
else
	fail "vmmctl import (rc $rc: $(tail -c 300 "$out/import.out"))"
fi
ok "vmmctl state: the imported web3 is Saved, its file whole" import-state \
	"d['state'] == 'Saved' and d['saved_size'] == ${saved_size:-0}" state web3
ok "vmmctl start: web3 restores from the imported file" import-start "d['state'] == 'Running'" \
	start web3
ctl console web3 --send 'moved\r' >/dev/null 2>&1
# Its console history came in the file: web2's last lines, then web3's own.
if console_has web3 'echo: moved' web3 && grep -q 'echo: before move' "$out/web3.out" &&
	! sed -n '/echo: before move/,$p' "$out/web3.out" | grep -q 'echo: ready'; then
	pass "move: web3 goes on where web2 stopped (web2's history, then 'moved'; not booted again)"
else
	fail "move: web3's console ($(tail -c 200 "$out/web3.out"))"
fi
ctl console web3 --send 'vectors\r' >/dev/null 2>&1
if console_has web3-vectors 'echo: vectors intact' web3; then
	pass "move: web3's vector registers are web2's"
else
	fail "move: web3's vector registers ($(grep -a 'echo: vectors' "$out/web3-vectors.out" | tail -1))"
fi
ctl turnoff web3 >/dev/null 2>&1
ok "vmmctl delete: the moved web3" delete-web3 "True" delete web3
ok "vmmctl net-delete: DeleteVirtualNetwork" net-delete "True" net-delete net2
ok "vmmctl list: back to the configured VMs" list-end \
	"[v['vm'] for v in d['vms']] == ['mgmt', 'echo', 'rogue', 'agent']" list
# By now the management VM has pinged the agent guest for minutes.
ok "vmmctl guest-heartbeat: the freestanding agent is heartbeating" agent-beat \
	"d['heartbeating'] in (1, True) and d['heartbeat_percent'] > 0" guest-heartbeat agent

# The life of a VM gives every page back (vm_create, vm_delete): 20 lives, every
# fifth one started and turned off, with an adapter and pool RAM, then the
# free memory GetHostInfo reports is where it was, and a subscriber saw each
# deletion as one Invalid event.
lives=20
"$vmmctl" -c "unix:$sock" --json events --follow --vm life >"$out/life-events.jsonl" \
	2>"$out/life-events.err" &
follower=$!
sleep 2 # its SubscribeEvents goes out before the first Create
run life-free-before info
life_ok=true
for i in $(seq $lives); do
	ctl create life --memory 4M --image /guests/echo.bin --nic lan >/dev/null 2>"$out/life.err" ||
		{ life_ok=false; break; }
	if [ $((i % 5)) = 0 ]; then
		ctl start life >/dev/null 2>>"$out/life.err" && ctl turnoff life >/dev/null 2>>"$out/life.err" ||
			{ life_ok=false; break; }
	fi
	ctl delete life >/dev/null 2>>"$out/life.err" || { life_ok=false; break; }
done
run life-free-after info
if $life_ok && python3 - "$out/life-free-before.json" "$out/life-free-after.json" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
print("life: memory_free %d bytes before, %d after" % (before["memory_free"], after["memory_free"]))
sys.exit(0 if before["memory_free"] == after["memory_free"] and after["vm_count"] == 4 else 1)
PY
then
	pass "vmmctl create/delete: $lives VM lives give every page back (GetHostInfo memory_free)"
else
	fail "vmmctl create/delete: $lives lives ($(head -c 300 "$out/life.err") $(cat "$out"/life-free-*.json | tr '\n' ' '))"
fi
sleep 1
kill -INT "$follower" 2>/dev/null
wait "$follower"
follower=
deleted=$(grep -c '"state": *"Invalid"' "$out/life-events.jsonl")
[ "$deleted" = $lives ] && pass "vmmctl events: each deletion is one Invalid event" ||
	fail "vmmctl events: $deleted Invalid events for $lives deletions"

# Round trips of the tool itself (process start, Hello, GetState, Goodbye).
times=()
for i in 1 2 3 4 5; do
	t0=$(date +%s%N)
	ctl state echo >/dev/null 2>&1
	times+=($((($(date +%s%N) - t0) / 1000000)))
done
echo "BENCH vmmctl_state_ms $(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p) ms"
echo "BENCH vmmctl_startup_ms $startup_ms ms"

# --- the line below the tool: tests/e2e/mgmt_client.py alone on it -----------------
timeout 300 python3 "$root/tests/e2e/mgmt_client.py" "$sock" "$key_hex" >"$work/client.out" 2>&1
crc=$?
cat "$work/client.out"
grep -aq '^mgmt-client: [0-9]* passed, 0 failed' "$work/client.out" && [ $crc = 0 ] ||
	failed=$((failed + 1))

# --- disks made through the API (CreateVirtualHardDisk, docs/store.md) --------------
# disk_ready NAME: disk-list shows NAME made (ready_percent 100) within 60 s.
disk_ready() {
	local deadline=$((SECONDS + 60))
	until run disk-list disk-list && holds disk-list \
		"any(x['store_disk'] == '$1' and x['ready_percent'] == 100 for x in d['disks'])"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 1
	done
}
ok "vmmctl disk-create: CreateVirtualHardDisk answers at once, the disk being made" \
	disk-create "d['store_disk'] == 'data1' and d['disk_size'] == 1 << 20" \
	disk-create data1 --size 1M
disk_ready data1 && pass "vmmctl disk-list: data1 made (zeroed, 100%)" ||
	fail "vmmctl disk-list: data1 ($(why disk-list))"
ok "vmmctl disk-create: a second disk, blank, that no VM will write" disk-create-2 \
	"d['store_disk'] == 'blank'" disk-create blank --size 256K
disk_ready blank && pass "vmmctl disk-list: blank made" || fail "vmmctl disk-list: blank ($(why disk-list))"
ok "vmmctl create: a VM whose disk is the new store disk" disk-vm "d['state'] == 'TurnedOff'" \
	create pd --memory 4M --image /guests/echo.bin --store_disk data1
ok "vmmctl disk-list: data1 is pd's" disk-owner \
	"[x.get('vm') for x in d['disks'] if x['store_disk'] == 'data1'] == ['pd']" disk-list
refused "vmmctl disk-delete: a VM's disk is kept (INVALID_STATE)" disk-delete-taken \
	INVALID_STATE disk-delete data1
ok "vmmctl start: pd starts with the new disk" disk-vm-start "d['state'] == 'Running'" start pd
ctl turnoff pd >/dev/null 2>&1
ok "vmmctl delete: pd" disk-vm-delete "True" delete pd
ok "vmmctl disk-delete: DeleteVirtualHardDisk of a disk no VM has" disk-delete "True" \
	disk-delete data1
refused "vmmctl disk-delete: a disk not in the store is NOT_FOUND" disk-delete-none NOT_FOUND \
	disk-delete data1

# --- a VM moved with its disk (vmmctl export --with-disk, docs/savefile.md) ---------
# mover's disk is the store disk seeded; its export carries that disk, and
# the import makes it a disk of the store again, under the name --disk gives.
ok "vmmctl create: mover, whose disk is the store disk seeded" mover-create \
	"d['state'] == 'TurnedOff'" create mover --memory 4M --image /guests/echo.bin --store_disk seeded
ctl start mover >/dev/null 2>&1
ctl console mover --send 'before carry\r' >/dev/null 2>&1
console_has mover-1 'echo: before carry' mover || fail "carry: mover did not answer before Save"
ok "vmmctl save: mover" mover-save "d['state'] == 'Saved'" save mover
run mover-saved state mover
mover_saved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["saved_size"])' \
	"$out/mover-saved.json" 2>/dev/null)
xfer export mover "$out/mover.vmsave" --with-disk >"$out/export-disk.out" 2>&1
rc=$?
carried_size=$(stat -c %s "$out/mover.vmsave" 2>/dev/null || echo 0)
# The 32 KiB that do not compress are in the file, the zeros are not.
if [ $rc = 0 ] && [ -n "$mover_saved" ] && [ "$carried_size" -gt $((mover_saved + 32768)) ] &&
	[ "$carried_size" -lt $((mover_saved + 131072)) ]; then
	pass "vmmctl export --with-disk: the saved state ($mover_saved bytes) and the 256-KiB disk in $carried_size bytes ($(cat "$out/export-disk.out"))"
else
	fail "vmmctl export --with-disk (rc $rc, saved ${mover_saved:-?}, file $carried_size: $(tail -c 300 "$out/export-disk.out"))"
fi
xfer import "$out/mover.vmsave" --name mover2 >"$out/import-disk-taken.out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "holds a disk 'seeded' already (name another with --disk)" \
	"$out/import-disk-taken.out"; then
	pass "vmmctl import: a carried disk does not take the name of a disk the store holds"
else
	fail "vmmctl import over seeded (rc $rc: $(tail -c 300 "$out/import-disk-taken.out"))"
fi
xfer import "$out/mover.vmsave" --name mover2 --disk carried >"$out/import-disk.out" 2>&1
rc=$?
[ $rc = 0 ] && pass "vmmctl import --disk: mover2 with its disk as store disk carried ($(cat "$out/import-disk.out"))" ||
	fail "vmmctl import --disk (rc $rc: $(tail -c 300 "$out/import-disk.out"))"
ok "vmmctl disk-list: carried, 256 KiB, is mover2's" carried-list \
	"[(x['disk_size'], x.get('vm')) for x in d['disks'] if x['store_disk'] == 'carried'] == [(262144, 'mover2')]" \
	disk-list
ok "vmmctl start: mover2 restores from the carried state" mover2-start "d['state'] == 'Running'" \
	start mover2
ctl console mover2 --send 'carried\r' >/dev/null 2>&1
if console_has mover2-1 'echo: carried' mover2 && grep -q 'echo: before carry' "$out/mover2-1.out" &&
	! sed -n '/echo: before carry/,$p' "$out/mover2-1.out" | grep -q 'echo: ready'; then
	pass "carry: mover2 goes on where mover stopped (its history, then 'carried')"
else
	fail "carry: mover2's console ($(tail -c 200 "$out/mover2-1.out"))"
fi
ctl turnoff mover2 >/dev/null 2>&1
ctl discard mover >/dev/null 2>&1
ok "vmmctl delete: mover and mover2; their disks stay in the store" carry-delete \
	"True" delete mover
ctl delete mover2 >/dev/null 2>&1

# --- a power cut with saved VMs, and the boot after it ------------------------------
# keep (created through the API) and echo (the configuration's) are saved
# into the store; the emulator is then killed, no shutdown of any kind.
ok "vmmctl create: keep, to be saved across a power cut" keep-create "d['state'] == 'TurnedOff'" \
	create keep --memory 4M --image /guests/echo.bin --nic lan
ctl start keep >/dev/null 2>&1
console_has keep-ready 'echo: ready' keep || fail "reboot: keep did not start"
ctl console keep --send 'clock\r' >/dev/null 2>&1
keep_clock=$(guest_clock_ms 1 keep)
ok "vmmctl save: keep's saved state is in the store" keep-save \
	"d['state'] == 'Saved'" save keep
ok "vmmctl state: a saved VM says its state outlives a host reboot (saved_in_store)" keep-saved \
	"d['state'] == 'Saved' and d['saved_in_store'] in (1, True)" state keep
ok "vmmctl save: echo (of the configuration) saved too" echo-save "d['state'] == 'Saved'" save echo
grep -a "saved state kept in the store" "$serial" | tail -2 | sed 's/^/  /'
pkill -KILL -f "$work/bochsrc"
wait "$bochs" 2>/dev/null
cp "$work/disk.img" "$work/disk-after-cut.img"

# The same disk boots again: the store's saved states are the VMs' again.
# boot_another DIR CHECK RUN-BOCHS-ARGS...: a further Bochs in DIR; CHECK
# passes when its management VM serves the line. emulator, serial, sock and
# bochs are this one's from then on.
boot_another() {
	local dir=$1 check=$2
	shift 2
	emulator=$dir serial=$dir/serial.out sock=$dir/line.sock
	mkdir -p "$emulator"
	"$root/tools/run-bochs.sh" --workdir "$emulator" "$@" --console-server "$sock" \
		--share-line >"$emulator/run-bochs.out" 2>&1 &
	bochs=$!
	if wait_for "mgmt: '[a-z]+' is the management VM" 240 && [ -S "$sock" ]; then
		pass "$check"
	else
		fail "$check: the management VM did not come up ($(tail -1 "$emulator/run-bochs.out"))"
	fi
}
boot_another "$work/reboot" "reboot: the hypervisor came up again on the same disk" \
	--disk "$work/disk-after-cut.img" --timeout 300
if grep -aq "vm 'keep': Saved, from the store" "$serial" &&
	grep -aq "vm 'echo': Saved, from the store" "$serial"; then
	pass "reboot: both saved states were found in the store"
else
	fail "reboot: saved states in the store ($(grep -a "from the store\|saved state" "$serial" | head -3 | tr '\n' ' '))"
fi
# echo starts by itself (autostart): from its saved state, not afresh.
if wait_for "vm 'echo': Running" 60 && grep -aq "vm 'echo': Restoring" "$serial"; then
	pass "reboot: echo (autostart) was restored, not booted"
else
	fail "reboot: echo ($(grep -a "vm 'echo'" "$serial" | tr '\n' ' '))"
fi
ok "vmmctl state: keep, created through the API before the cut, is Saved" keep-back \
	"d['state'] == 'Saved' and d['saved_in_store'] in (1, True)" state keep
ok "vmmctl start: keep restores after the power cut" keep-restore "d['state'] == 'Running'" \
	start keep
ctl console keep --send 'clock\r' >/dev/null 2>&1
keep_clock_after=$(guest_clock_ms 2 keep)
ready=$(grep -ac 'echo: ready' "$out/clock.out")
if [ -n "$keep_clock" ] && [ -n "$keep_clock_after" ] && [ "$keep_clock_after" -ge "$keep_clock" ] &&
	[ "$ready" = 1 ]; then
	pass "reboot: keep went on where it stopped (clock ${keep_clock} -> ${keep_clock_after} ms, 'echo: ready' once)"
else
	fail "reboot: keep's clock '$keep_clock' -> '$keep_clock_after', 'echo: ready' $ready times"
fi
ctl console echo --send 'after the cut\r' >/dev/null 2>&1
console_has echo-after 'echo: after the cut' echo &&
	pass "reboot: echo answers on its console after its restore" ||
	fail "reboot: echo's console ($(tail -c 200 "$out/echo-after.out"))"
# A restored state leaves the store: a later boot must not go back to it.
ctl turnoff keep >/dev/null 2>&1
pkill -KILL -f "$emulator/bochsrc"
wait "$bochs" 2>/dev/null
mcopy -o -i "$emulator/disk.img" ::/vmmstore.img "$work/store-after.img" 2>/dev/null
"$root/build/vmm-store" list "$work/store-after.img" >"$work/store-after.list" 2>&1
if [ -s "$work/store-after.list" ] && ! grep -q 'vsv' "$work/store-after.list"; then
	pass "reboot: the restored states left the store ($(head -1 "$work/store-after.list"))"
else
	fail "reboot: the store after the restores ($(tr '\n' ' ' <"$work/store-after.list"))"
fi
# The disk made through the API lies where saved states were (first fit): zeros all the same.
rm -f "$work/blank.img"
if "$root/build/vmm-store" export "$work/store-after.img" blank "$work/blank.img" >/dev/null &&
	[ "$(stat -c %s "$work/blank.img")" = 262144 ] && ! tr -d '\0' <"$work/blank.img" | grep -q .; then
	pass "new store disk: blank holds 256 KiB of zeros, nothing of what its blocks held"
else
	fail "new store disk: blank is not zeros ($(od -A d -t x1 "$work/blank.img" 2>/dev/null | head -2 | tr '\n' ' '))"
fi

# The disk mover2 was imported with holds the bytes seeded held before boot.
rm -f "$work/carried.img"
if "$root/build/vmm-store" export "$work/store-after.img" carried "$work/carried.img" >/dev/null &&
	cmp -s "$work/carried.img" "$work/seed.img"; then
	pass "carry: the store disk made by the import holds the exported disk's 256 KiB, byte for byte"
else
	fail "carry: carried is not seeded's bytes ($(cmp "$work/carried.img" "$work/seed.img" 2>&1 | head -1))"
fi

# --- another hypervisor: web2 moves there ------------------------------------------
# A second instance, booted from a disk of its own with its own key, no
# store and one network, backbone: web2's file (saved on the first, its
# adapter on lan) is imported there and web2 counts on.
pkill -KILL -f "$emulator/bochsrc"
wait "$bochs" 2>/dev/null
second_config=$root/tests/e2e/configs/mgmt-second.conf
sed -n 's/^auth_key *= *\([0-9a-fA-F]*\)$/\1/p' "$second_config" >"$work/key-second"
export VMMCTL_KEY_FILE=$work/key-second
boot_another "$work/second" "second: another hypervisor instance is up (its own disk and key)" \
	--config "$second_config" --timeout 400
only_mgmt() { # STEP: the second hypervisor has no VM but its management VM
	run "$1" list && holds "$1" "[v['vm'] for v in d['vms']] == ['mgmt']"
}
# Its adapter's network (lan) is not here: refused at the first chunk.
xfer import "$out/web2.vmsave" >"$out/second-nonet.out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "network 'lan' does not exist here" "$out/second-nonet.out" &&
	grep -q -- '--network' "$out/second-nonet.out" && only_mgmt second-list-1; then
	pass "second: an import onto a network it lacks is refused at once, nothing made ($(head -c 160 "$out/second-nonet.out"))"
else
	fail "second: import without lan (rc $rc: $(tail -c 200 "$out/second-nonet.out"))"
fi
# A file with its disk needs a store to put the disk in: this one has none.
xfer import "$out/mover.vmsave" >"$out/second-nostore.out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "no store here" "$out/second-nostore.out" && only_mgmt second-list-0; then
	pass "second: an import with a disk where there is no store is refused at once, nothing made"
else
	fail "second: import with a disk, no store (rc $rc: $(tail -c 200 "$out/second-nostore.out"))"
fi
# The line drops mid-transfer (the tool killed once the hypervisor took
# the first chunk): no VM is half there; the next import --resume goes on
# from what the hypervisor received.
size=$(stat -c %s "$out/web2.vmsave")
"$vmmctl" -c "unix:$sock" -t 5 -r 4 import "$out/web2.vmsave" --network backbone \
	>"$out/second-cut.out" 2>&1 &
importer=$!
wait_for "vm 'web2': import of [0-9]+ KiB begins" 60
kill -KILL $importer 2>/dev/null
wait $importer
rc=$?
if [ $rc = 137 ] && only_mgmt second-list-2; then
	pass "second: an import whose line dropped leaves no VM behind"
else
	fail "second: the cut import (rc $rc, $(why second-list-2))"
fi
xfer import "$out/web2.vmsave" --network backbone --resume >"$out/second-import.out" 2>&1
rc=$?
from=$(sed -n 's/.*going on from byte \([0-9]*\).*/\1/p' "$out/second-import.out")
if [ $rc = 0 ] && [ -n "$from" ] && [ "$from" -gt 0 ] && [ "$from" -lt "$size" ]; then
	pass "second: import --resume went on from byte $from of $size ($(tail -1 "$out/second-import.out"))"
else
	fail "second: import --resume (rc $rc, from '${from:-}' of $size: $(tail -c 200 "$out/second-import.out"))"
fi
ok "second: web2 is Saved here, its file whole" second-state \
	"d['state'] == 'Saved' and d['saved_size'] == $size" state web2
ok "second: its adapter is on backbone (--network)" second-net "'web2' in __import__('json').dumps(d)" \
	net-show backbone
# Its image is not in this hypervisor's library: only the saved state runs here.
refused "second: a second import of web2 is ALREADY_EXISTS" second-again ALREADY_EXISTS \
	import "$out/web2.vmsave" --network backbone
ok "second: web2 starts from the moved state" second-start "d['state'] == 'Running'" start web2
ctl console web2 --send 'count\r' >/dev/null 2>&1
if [ -n "$count_before" ] && console_has second-count "echo: count $((count_before + 1))"; then
	pass "second: web2's count goes on here ($count_before on the first, $((count_before + 1)) here)"
else
	fail "second: web2's count (was ${count_before:-none}: $(grep -a 'echo: count' "$out/second-count.out" | tail -1))"
fi
if grep -q 'echo: before move' "$out/second-count.out" &&
	! sed -n '/echo: before move/,$p' "$out/second-count.out" | grep -q 'echo: ready'; then
	pass "second: web2's console history came along, and it was not booted again"
else
	fail "second: web2's history ($(tail -c 200 "$out/second-count.out"))"
fi
# A fresh start would need the image: refused, saying so.
ctl turnoff web2 >/dev/null 2>&1
run second-fresh start web2
if [ $rc = 1 ] && grep -q "not in this hypervisor's image library" "$out/second-fresh.err"; then
	pass "second: a fresh start without the image here is refused ($(head -c 200 "$out/second-fresh.err"))"
else
	fail "second: a fresh start without the image ($(why second-fresh))"
fi

echo "mgmt-boot: $passed passed, $failed failed"
exit $((failed > 0))
