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
cat <<EOF
demo: booting in Bochs (the Linux guests reach their shells after a few minutes).
demo: in another terminal:
  build/vmmctl -c unix:$work/line.sock list
  build/vmmctl -c unix:$work/line.sock console web1      (Ctrl-] leaves)
  build/vmmctl -c unix:$work/line.sock net-show lan
  build/vmmctl -c unix:$work/line.sock guest-exec web1 'uname -a'   (through its guest agent)
EOF
exec tools/run-bochs.sh --config "${1:-configs/demo.conf}" --workdir "$work" \
	--console-server "$work/line.sock" --interactive --megs 512 \
	--timeout "${DEMO_TIMEOUT:-3600}" --extra build/linux/vmlinuz \
	--extra build/linux/initrd.img --extra build/linux/disk.img \
	--extra build/additions/additions.img
