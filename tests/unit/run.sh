#!/usr/bin/env bash
# Runs every cmocka test binary given and totals the results in one
# "N passed, N failed" line. Exits non-zero if any test failed or a binary
# crashed.
set -u
passed=0 failed=0 broken=0
for bin in "$@"; do
	out=$("$bin" 2>&1)
	rc=$?
	echo "$out"
	p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' | tail -1)
	f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' | tail -1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if [ $rc -ne 0 ] && [ -z "$f" ]; then
		echo "unit: $bin exited with status $rc" >&2
		broken=$((broken + 1))
	fi
done
echo "unit: $passed passed, $((failed + broken)) failed"
[ $failed -eq 0 ] && [ $broken -eq 0 ]
