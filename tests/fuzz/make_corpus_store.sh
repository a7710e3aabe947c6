#!/usr/bin/env bash
# Writes the seed corpus of fuzz_store (tests/fuzz/corpus/store) with the
# real tool (build/vmm-store): stores of 16 blocks, empty, with objects,
# and after a delete (both slots then hold tables with objects). Run it
# again after changing the format.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/tests/fuzz/corpus}
tool=$root/build/vmm-store
make -C "$root" -s build/vmm-store
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/store"
rm -f "$out/store"/*
"$tool" create --size 64K "$out/store/empty" >/dev/null
head -c 5000 /dev/zero | tr '\0' 'a' >"$tmp/a"
head -c 4096 /dev/zero | tr '\0' 'b' >"$tmp/b"
"$tool" create --size 64K "$out/store/two" >/dev/null
"$tool" import "$out/store/two" alpha "$tmp/a" >/dev/null
"$tool" import "$out/store/two" beta "$tmp/b" >/dev/null
cp "$out/store/two" "$out/store/deleted"
"$tool" delete "$out/store/deleted" alpha
"$tool" import "$out/store/deleted" gamma "$tmp/a" >/dev/null
echo "store: $(ls "$out/store" | wc -l) seeds"
