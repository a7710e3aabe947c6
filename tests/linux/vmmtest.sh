# Sourced by /init and by every interactive shell (ENV): helpers for the
# commands the end-to-end test types on the console.

# Uptime in centiseconds, for timing inside the guest (/proc/uptime has two decimals).
centis() { read -r up _ </proc/uptime; echo $((${up%.*} * 100 + 1${up#*.} - 100)); }

# check NAME COMMAND...: runs COMMAND and reports "RESULT NAME ok" or
# "RESULT NAME failed", a line the typed command itself never contains (the
# console echoes what is typed, so a marker written in it would match).
check() {
	n=$1
	shift
	if "$@" >/dev/null 2>&1; then echo "RESULT $n ok"; else echo "RESULT $n failed"; fi
}

# reach IP: one ping answered within five tries (a neighbour entry that
# failed while a link was down makes the first sends fail at once).
reach() {
	for _ in 1 2 3 4 5; do
		ping -c 1 -W 2 "$1" && return 0
		sleep 1
	done
	return 1
}

# The md5 of the disk region the init writes (1 MiB after the first MiB),
# read from the device, not from the page cache.
region_md5() {
	echo 3 >/proc/sys/vm/drop_caches
	dd if=/dev/vda bs=64k skip=16 count=16 2>/dev/null | md5sum | sed 's/ .*//'
}
