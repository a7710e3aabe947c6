# Shared by tools/run-bochs.sh and tools/run-qemu.sh (sourced, not run).
#
# emulator_start LOG CMD...   starts CMD in a new process group (setsid), so
#                             the emulator and every helper it spawns can be
#                             killed together; the group id is kept in
#                             emulator_pgid.
# emulator_wait SERIAL REGEX  waits while the emulator runs; with a REGEX,
#                             returns 0 as soon as SERIAL matches it and
#                             prints "matched after S s", else returns 1
#                             when the emulator ends. Without a REGEX it
#                             waits for the end and returns 0.
# emulator_stop               SIGTERM, then SIGKILL, to the whole group
#                             (Bochs ignores SIGTERM while a guest runs).
emulator_pgid=""
emulator_started=""

emulator_start() {
	local log=$1
	shift
	emulator_started=$(date +%s.%N)
	setsid "$@" </dev/null >"$log" 2>&1 &
	emulator_pgid=$!
	# Its end is ours to report; keep bash from announcing the kill.
	disown "$emulator_pgid"
}

emulator_wait() {
	local serial=$1 until=$2
	while kill -0 "$emulator_pgid" 2>/dev/null; do
		if [ -n "$until" ] && grep -aEq -- "$until" "$serial"; then
			awk -v a="$emulator_started" -v b="$(date +%s.%N)" \
				'BEGIN { printf "matched after %.1f s\n", b - a }'
			return 0
		fi
		sleep 0.5
	done
	if [ -n "$until" ]; then
		# The last output may have landed as the emulator ended.
		grep -aEq -- "$until" "$serial" && return 0
		echo "no match for '$until' before the emulator ended (serial: $serial)" >&2
		return 1
	fi
	return 0
}

emulator_stop() {
	[ -n "$emulator_pgid" ] || return 0
	kill -TERM -- "-$emulator_pgid" 2>/dev/null || true
	for _ in 1 2 3 4 5; do
		kill -0 -- "-$emulator_pgid" 2>/dev/null || { emulator_pgid=""; return 0; }
		sleep 0.2
	done
	kill -KILL -- "-$emulator_pgid" 2>/dev/null || true
	emulator_pgid=""
}
