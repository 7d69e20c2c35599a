#!/bin/bash
# Dumps a real process with amber and decodes every image it wrote with
# Debian's crit. pages-*.img is raw page data by the format (CRIU's too):
# crit has nothing to decode there, so it is checked for size only.
set -euo pipefail
amber=$(realpath "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"; kill -9 $pid 2>/dev/null || true' EXIT
cd "$dir"
setsid python3 -c 'import time; x = bytearray(8 << 20)
for i in range(0, len(x), 4096): x[i] = 1
time.sleep(60)' </dev/null >out 2>&1 &
pid=$!
sleep 0.5
"$amber" dump -t $pid -D img --leave-running -v4 -o dump.log
n=0
for f in img/*.img; do
	case $f in */pages-*) [ -s "$f" ] || { echo "empty $f"; exit 1; }; continue ;; esac
	crit decode -i "$f" >/dev/null || { echo "crit can't decode $f"; exit 1; }
	n=$((n + 1))
done
perm=$(stat -c %a img/pstree.img)
[ "$perm" = 600 ] || { echo "images are mode $perm, want 600"; exit 1; }
kill -0 $pid || { echo "--leave-running: process died"; exit 1; }
echo "crit decoded all $n images amber wrote (mode 600); the process still runs"
