#!/bin/bash
# The second half of make test: the QEMU guest suites (make vm-ci: one
# emulated CPU, mostly waiting on the guest) run beside the host suites
# (make zdtm, then make zdtm-asan) instead of after them, which saves
# their whole time on a 2-core machine. The guests run niced so the host
# tests, which wait on timeouts of their own, get the CPU first. Every
# part runs to its end; the exit status is non-zero if any failed.
#
#   scripts/test-beside.sh MAKE BUILD_DIR
set -uo pipefail
make=${1:-make}
log=${2:-build}/vm-ci.log

mkdir -p "$(dirname "$log")"
echo "=== make vm-ci runs beside the host suites, its output in $log"
setsid nice -n 10 $make vm-ci >"$log" 2>&1 &
vm=$!
# make test is killed: so are the guests (their own process group).
trap 'kill -- -$vm 2>/dev/null; kill $vm 2>/dev/null' EXIT

failed=()
$make zdtm || failed+=(zdtm)
$make zdtm-asan || failed+=(zdtm-asan)

echo "=== waiting for make vm-ci (started beside)"
wait $vm
rc=$?
trap - EXIT
if [ $rc = 0 ]; then
	# ci.sh's summary: from its header to the end.
	sed -n '/^=== ci summary/,$p' "$log"
	grep -q '^SKIP' "$log" && grep '^SKIP' "$log"
else
	failed+=(vm-ci)
	echo "=== make vm-ci failed (exit $rc); the last 150 lines of $log:"
	tail -n 150 "$log"
fi
if [ ${#failed[@]} -gt 0 ]; then
	echo "=== make test: FAILED: ${failed[*]}"
	exit 1
fi
echo "=== make test: every part passed"
