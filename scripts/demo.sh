#!/bin/bash
# make demo: checkpoint a running process with amber, restore it, and show
# that it goes on where it stopped with its memory intact. Run as root,
# after make (which builds build/amber and build/demo_workload).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
amber=$top/build/amber
workload=$top/build/demo_workload

die() { echo "demo: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "amber needs root (ptrace and clone3 with chosen pids)"
[ -x "$amber" ] && [ -x "$workload" ] || die "run make first"

dir=$(mktemp -d /tmp/amber-demo.XXXXXX)
log=$dir/workload.log
pid=
cleanup() {
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

ns() { date +%s%N; }
secs() { awk -v n="$1" 'BEGIN { printf "%.2f s", n / 1e9 }'; }
lines() { [ -f "$log" ] && wc -l <"$log" || echo 0; }
wait_lines() { # wait_lines N: until the log has N lines (20 s at most)
	local i
	for i in $(seq 200); do
		grep -q MISMATCH "$log" && die "the workload found its memory changed"
		[ "$(lines)" -ge "$1" ] && return 0
		[ -d "/proc/$pid" ] || die "the workload (pid $pid) died"
		sleep 0.1
	done
	die "the workload wrote no new line for 20 s"
}
show() { sed -n "$1,$2p" "$log" | sed 's/^/    | /'; }
gone() {
	local i
	for i in $(seq 200); do [ -d "/proc/$1" ] || return 0; sleep 0.05; done
	return 1
}
counter() { sed -n "$1s/^counter *\([0-9]*\) .*/\1/p" "$log"; }

echo "1. Start a workload that keeps changing 256 MiB of memory. Each line of its"
echo "   log: a counter, the checksum of its memory, and whether the memory still"
echo "   matches the checksum it keeps up to date as it writes."
pid=$("$workload" "$log")
echo "   pid $pid, log $log"
wait_lines 3
show 1 3

echo
echo "2. Checkpoint it: amber dump -t $pid -D $dir/img"
t0=$(ns)
"$amber" dump -t "$pid" -D "$dir/img" -o "$dir/dump.log" ||
	die "amber dump failed: $(tail -3 "$dir/dump.log")"
t1=$(ns)
gone "$pid" || die "pid $pid is still running after the dump"
before=$(lines)
last=$(counter "$before")
echo "   done in $(secs $((t1 - t0))), image $(du -sm "$dir/img" | cut -f1) MiB."
echo "   pid $pid is gone (a dump ends the process); its last line was:"
show "$before" "$before"

echo
echo "3. Restore it from the image: amber restore -D $dir/img -d"
t0=$(ns)
"$amber" restore -D "$dir/img" -d -o "$dir/restore.log" ||
	die "amber restore failed: $(tail -3 "$dir/restore.log")"
t1=$(ns)
[ -d "/proc/$pid" ] || die "no process $pid after the restore"
echo "   done in $(secs $((t1 - t0))); pid $pid runs again and goes on writing:"
wait_lines $((before + 3))
show $((before + 1)) $((before + 3))

next=$(counter $((before + 1)))
grep -q MISMATCH "$log" && die "the workload found its memory changed"
[ "$next" = $((last + 1)) ] || die "the counter went from $last to $next"
echo
echo "It went on from counter $last to $next, and its memory matched its checksum"
echo "on every line. Stopping it (pid $pid) and removing $dir."
kill -9 "$pid"
gone "$pid" || die "pid $pid did not stop"
pid=
