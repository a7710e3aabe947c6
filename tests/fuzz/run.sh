#!/usr/bin/env bash
# Builds the fuzzers (libFuzzer, ASan and UBSan) into build/fuzz/ and runs
# each for SECONDS (default 60) on a copy of its seed corpus, so the
# corpus in the repository only changes when someone regenerates it
# (tests/fuzz/make_corpus.sh). Exits non-zero if a fuzzer does not build
# or finds a crash; the reproducer is left as build/fuzz/crash-<name>-*.
#
#   tests/fuzz/run.sh [SECONDS]
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
secs=${1:-60}
out=build/fuzz
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null; then
	echo "fuzz: $cc not found (apt-get install -y clang)" >&2
	exit 1
fi
mkdir -p "$out"

# name, the longest input worth trying, sources beyond the harness
fuzzers=(
	"dhcp 4096 vnet/dhcp.c lib/fmt.c"
	"switch 32768 vnet/switch.c vnet/dhcp.c lib/fmt.c"
	"proto 4096 mgmt/proto.c mgmt/session.c mgmt/sha256.c"
	"shell 4096 mgmt/vm/shell.c mgmt/proto.c lib/fmt.c"
	"insn 32 vmm/insn_decode.c"
	"virtq 65536 devices/virtqueue.c devices/virtio_blk.c devices/disk.c devices/virtio_net.c devices/devstate.c lib/fmt.c"
	"devstate 4096 devices/devstate.c devices/pic.c devices/rtc.c devices/vuart.c devices/ioapic.c devices/acpi_pm.c devices/pit.c devices/lapic.c devices/pci.c devices/virtio_pci.c devices/virtqueue.c devices/virtio_blk.c devices/virtio_net.c devices/virtio_console.c devices/virtio_balloon.c devices/i6300esb.c devices/disk.c lib/fmt.c lib/calendar.c"
	"lz 65536 lib/lz.c"
	"savefile 65536 vmm/savefile.c lib/lz.c lib/crc32c.c lib/fmt.c"
	"json 4096 lib/json.c lib/fmt.c lib/base64.c"
	"agent 4096 mgmt/guest_agent.c lib/json.c lib/fmt.c"
	"console 16384 devices/virtio_console.c devices/virtqueue.c devices/devstate.c lib/fmt.c"
	"store 65536 lib/store.c lib/crc32c.c lib/fmt.c"
)

status=0
for entry in "${fuzzers[@]}"; do
	read -r name max_len srcs <<<"$entry"
	bin=$out/fuzz_$name
	# shellcheck disable=SC2086
	if ! "$cc" -std=c11 -g -O1 -Wall -Wextra -Werror \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I. -Iinclude "tests/fuzz/fuzz_$name.c" $srcs -o "$bin"; then
		echo "fuzz $name: build failed" >&2
		status=1
		continue
	fi
	rm -rf "$out/corpus_$name"
	cp -r "tests/fuzz/corpus/$name" "$out/corpus_$name"
	log=$out/$name.log
	if "$bin" -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$out/crash-$name-" "$out/corpus_$name" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
		echo "fuzz $name: ${runs:-?} runs in ${secs} s, ${cov:-cov: ?}, no crash"
	else
		echo "fuzz $name: crash (log: $log)" >&2
		tail -n 40 "$log" >&2
		status=1
	fi
done
exit $status
