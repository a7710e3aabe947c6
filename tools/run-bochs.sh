#!/usr/bin/env bash
# Boots the hypervisor in Bochs (VT-x + EPT emulation, OVMF firmware).
#
# usage: tools/run-bochs.sh --config FILE [--workdir DIR] [--timeout SEC]
#                           [--until REGEX] [--megs N] [--interactive]
#                           [--extra FILE]... [--config-dest PATH]
#                           [--console-server SOCKET [--share-line]]
#       tools/run-bochs.sh --disk IMAGE ...   (boots a ready FAT disk instead,
#                           e.g. a kernel without the hypervisor; IMAGE is copied)
#
# The serial port (COM1) is captured in WORKDIR/serial.out (without
# --workdir, in a temporary directory removed at the end). With --until the
# run ends as soon as the serial output matches REGEX (extended regex) and
# prints "matched after S s" (seconds since Bochs started); otherwise it
# ends at the timeout. --interactive shows the serial console here until
# Ctrl-C. With --console-server, COM1 is a two-way line instead: Bochs
# listens on a free localhost port (and waits for its peer before it
# boots), and the console server tools/line-relay.py is that peer: it
# writes serial.out and lends the line to one client at a time on the Unix
# socket SOCKET (vmmctl -c unix:SOCKET), or to all at once with
# --share-line (line-relay.py --share).
# Whatever happens, Bochs and its helpers are killed and the disk lock is
# removed. The emulated clock never runs ahead of the real one (clock:
# sync=slowdown): the hypervisor halts when idle, and Bochs would otherwise
# skip through the halt, so that its timeouts, the management VM's session
# expiry among them, would pass faster than the admin tool's, as no real
# server's do.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config="" disk="" workdir="" timeout=120 until="" megs=256 interactive=0 extras=()
console_socket="" relay_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--config) config=$2; shift 2 ;;
	--disk) disk=$2; shift 2 ;;
	--workdir) workdir=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--until) until=$2; shift 2 ;;
	--megs) megs=$2; shift 2 ;;
	--extra) extras+=("$2"); shift 2 ;;
	--config-dest) export VMM_CONFIG_DEST=$2; shift 2 ;;
	--interactive) interactive=1; shift ;;
	--console-server) console_socket=$2; shift 2 ;;
	--share-line) relay_args+=(--share); shift ;;
	*) echo "run-bochs: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$config$disk" ] || { echo "run-bochs: --config FILE or --disk IMAGE is required" >&2; exit 2; }
ovmf=${OVMF:-/usr/share/ovmf/OVMF.fd}
[ -r "$ovmf" ] || { echo "run-bochs: firmware $ovmf not found (apt-get install ovmf)" >&2; exit 2; }
auto_workdir=0
if [ -z "$workdir" ]; then
	workdir=$(mktemp -d /tmp/vmm-bochs.XXXXXX)
	auto_workdir=1
fi
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)

if [ -n "$disk" ]; then
	cp "$disk" "$workdir/disk.img"
else
	"$root/tools/mkdisk.sh" "$workdir/disk.img" "$config" "${extras[@]}"
fi
rm -f "$workdir/serial.out" "$workdir/bochs.log" "$workdir/disk.img.lock"
com1="com1: enabled=1, mode=file, dev=$workdir/serial.out"
if [ -n "$console_socket" ]; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')
	com1="com1: enabled=1, mode=socket-server, dev=localhost:$port"
fi
cat >"$workdir/bochsrc" <<RC
megs: $megs
romimage: file=$ovmf, address=0xffe00000
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=corei7_skylake_x, count=1, ips=200000000
clock: sync=slowdown
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=disk, path=$workdir/disk.img, mode=flat, cylinders=65, heads=16, spt=63
boot: disk
$com1
display_library: term
log: $workdir/bochs.log
panic: action=report
error: action=report
RC
echo c >"$workdir/cont.rc"

. "$root/tools/emulator-lib.sh"
relay=""
cleanup() {
	emulator_stop
	# script(1) runs Bochs in a session of its own, out of reach of the
	# group kill: end it by its configuration file, and only then drop its lock.
	pkill -KILL -f "$workdir/bochsrc" 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pgrep -f "$workdir/bochsrc" >/dev/null || break
		sleep 0.2
	done
	# The relay ends by itself when Bochs' end closes its socket: a failed
	# kill must not end this cleanup (set -e) before the lock goes.
	[ -z "$relay" ] || { kill "$relay" 2>/dev/null || true; wait "$relay" 2>/dev/null || true; }
	rm -f "$workdir/disk.img.lock"
	# A directory we made ourselves is only scratch space.
	[ "$auto_workdir" = 0 ] || rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

touch "$workdir/serial.out"
# The term display needs a terminal: script(1) gives Bochs a pseudo-terminal.
emulator_start "$workdir/display.out" timeout -k 5 "$timeout" script -qfec \
	"bochs -q -f $workdir/bochsrc -rc $workdir/cont.rc" /dev/null
if [ -n "$console_socket" ]; then
	python3 "$root/tools/line-relay.py" "${relay_args[@]}" "$port" "$workdir/serial.out" \
		"$console_socket" 2>"$workdir/relay.err" &
	relay=$!
fi

if [ "$interactive" = 1 ]; then
	echo "run-bochs: serial console of the hypervisor follows (Ctrl-C ends the run)"
	tail -n +1 -f "$workdir/serial.out" --pid="$emulator_pgid"
	exit 0
fi
emulator_wait "$workdir/serial.out" "$until"
