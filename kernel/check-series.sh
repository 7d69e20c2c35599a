#!/bin/bash
# Build the kernel once per prefix of the patch series (1, 1-2, ...), each in
# the same separate build dir, to check that every patch builds on its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${AMBER_KBUILD_SERIES:-/var/tmp/amber-kernel-series}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
for p in "$here"/patches/*.patch; do
	n=$((n + 1)); cp "$p" "$tmp/"
	t0=$(date +%s)
	if AMBER_KBUILD=$B AMBER_KPATCHES=$tmp "$here/build.sh" > "$tmp/log.$n" 2>&1; then
		w=$(grep -c 'warning:' "$tmp/log.$n" || true)
		echo "OK   $(basename "$p") ($(( $(date +%s) - t0 ))s, $w warning lines)"
	else
		echo "FAIL $(basename "$p")"; tail -30 "$tmp/log.$n"; exit 1
	fi
done
