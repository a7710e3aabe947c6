#!/usr/bin/env bash
# One management boot: Bochs with COM1 as a socket, tests/e2e/mgmt_client.py
# on the other end driving the line (it writes WORKDIR/serial.out). Prints
# the client's output (PASS/FAIL and BENCH lines); exits with its status.
# Bochs is stopped however the client ends (tools/run-bochs.sh cleans up).
#
# usage: tests/e2e/mgmt-boot.sh WORKDIR CONFIG
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
workdir=$1 config=$2
mkdir -p "$workdir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')
"$root/tools/run-bochs.sh" --workdir "$workdir" --config "$config" --serial-socket "$port" \
	--timeout 420 >"$workdir/run-bochs.out" 2>&1 &
bochs=$!
timeout 400 python3 "$root/tests/e2e/mgmt_client.py" "$port" "$workdir/serial.out"
rc=$?
kill "$bochs" 2>/dev/null
wait "$bochs" 2>/dev/null
exit $rc
