#!/bin/bash
# make bench: runs every bench/*/run, one after the other; fails if one does.
# bench/pkram/run and bench/pkram/downtime boot QEMU guests (kernel/build.sh's
# kernel; minutes, and about 40 for the downtime): they run only with
# BENCH_PKRAM=1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
failed=()
for run in "$here"/*/run; do
	[ -x "$run" ] || continue
	name=$(basename "$(dirname "$run")")
	if [ "$name" = pkram ] && [ "${BENCH_PKRAM:-0}" != 1 ]; then
		echo "== $name: skipped (needs a VM; BENCH_PKRAM=1 runs it)"
		continue
	fi
	echo "== $name"
	"$run" || failed+=("$name")
	if [ "$name" = pkram ]; then
		echo "== pkram/downtime"
		"$here/pkram/downtime" || failed+=(pkram/downtime)
	fi
done
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
