#!/usr/bin/env bash
# One command: install what is missing, build, and boot the default demo
# (configs/demo.conf: the management VM, two Debian Linux guests and two
# test guests on one virtual network) in Bochs. The hypervisor's serial
# line shows in this terminal; the admin tool reaches the management VM
# through a console server on build/demo/line.sock. Ctrl-C ends it.
#
#   tools/demo.sh [CONFIG]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/install-deps.sh
make -j2 image
tools/mk-linux-guest.sh build/linux
work=$root/build/demo
mkdir -p "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')
: >"$work/serial.out"
tools/run-bochs.sh --config "${1:-configs/demo.conf}" --workdir "$work" --serial-socket "$port" \
	--megs 512 --timeout "${DEMO_TIMEOUT:-3600}" --extra build/linux/vmlinuz \
	--extra build/linux/initrd.img --extra build/linux/disk.img >"$work/run-bochs.out" 2>&1 &
bochs=$!
python3 tools/line-relay.py "$port" "$work/serial.out" "$work/line.sock" &
relay=$!
trap 'kill $bochs $relay 2>/dev/null; wait $bochs $relay 2>/dev/null' EXIT
cat <<EOF
demo: booting in Bochs (the Linux guests reach their shells after a few minutes).
demo: in another terminal:
  build/vmmctl -c unix:$work/line.sock list
  build/vmmctl -c unix:$work/line.sock console web1      (Ctrl-] leaves)
  build/vmmctl -c unix:$work/line.sock net-show lan
demo: the serial line follows (Ctrl-C ends the demo)
EOF
tail -n +1 -f "$work/serial.out" --pid="$bochs"
