#!/usr/bin/env bash
# One command: install what is missing, build, and boot the default demo in
# Bochs with the hypervisor's serial console in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
make -j2 image
exec tools/run-bochs.sh --config "${1:-configs/demo.conf}" --interactive --timeout "${DEMO_TIMEOUT:-3600}"
