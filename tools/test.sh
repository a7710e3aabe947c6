#!/usr/bin/env bash
# One command: install what is missing, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
make -j2 image
make check-layers
make unit
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
make e2e
