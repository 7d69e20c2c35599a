#!/bin/bash
# Run the guest suites (make vmtest). Needs: qemu-system-x86, busybox-static,
# kexec-tools (test/vm/packages.txt) and our kernel (kernel/build.sh).
# Env: AMBER_KERNEL (bzImage; default: build it with kernel/build.sh),
#      VMTEST_ONLY (space-separated suite names to run).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
log=${VMTEST_LOG:-/tmp/amber-vmtest}
rm -f "$log"/*.log "$log/summary"
mkdir -p "$log"
results=()
failed=0

deb=$("$here/get-debian-kernel.sh") || { echo "vmtest: cannot get Debian's kernel" >&2; exit 1; }
DK=$(echo "$deb" | sed -n 1p) DM=$(echo "$deb" | sed -n 2p)
K=${AMBER_KERNEL:-}
if [ -z "$K" ]; then
	K=$("$top/kernel/build.sh" | tail -1) || { echo "vmtest: kernel build failed" >&2; exit 1; }
fi

suite() { # NAME ARGS... (test/vm/run arguments)
	local name=$1; shift
	if [ -n "${VMTEST_ONLY:-}" ] && ! [[ " $VMTEST_ONLY " == *" $name "* ]]; then return; fi
	echo "=== $name"
	local t0=$(date +%s) rc
	"$here/run" "$@" 2>&1 | tee "$log/$name.log"
	rc=${PIPESTATUS[0]}
	local dt=$(( $(date +%s) - t0 ))
	if [ $rc = 0 ]; then results+=("PASS $name (${dt}s)"); else results+=("FAIL $name (rc=$rc, ${dt}s, log $log/$name.log)"); failed=1; fi
}

suite debian-soft-dirty --kernel "$DK" --modules "$DM" -- python3 test/vm/tests/soft-dirty.py
suite debian-kexec --kernel "$DK" --modules "$DM" --kexec-into "$K" --kexec-into "$DK,$DM" -- \
	sh -c 'echo "boot $AMBER_VM_BOOT: $(uname -r)"; python3 test/vm/tests/soft-dirty.py'
suite pkram --kernel "$K" --kexec-into "$K" --kexec-into "$K" --kexec-into "$K" -- kernel/selftests/pkram.sh
# the incremental zdtm modes with soft-dirty (needs build/amber and the tests: make)
suite debian-zdtm-soft-dirty --kernel "$DK" --modules "$DM" -- test/vm/tests/zdtm-soft-dirty.sh

# the PASS/FAIL lines the selftests print, in the summary too
for f in "$log"/*.log; do
	n=$(grep -c '^PASS ' "$f"); m=$(grep -c '^FAIL ' "$f")
	[ $((n + m)) = 0 ] || results+=("  $(basename "$f" .log): $n checks passed, $m failed")
done
echo
echo "=== vmtest summary"
printf '%s\n' "${results[@]}" | tee "$log/summary"
exit $failed
