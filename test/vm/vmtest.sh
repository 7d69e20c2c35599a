#!/bin/bash
# Run the guest suites (make vmtest). Needs: qemu-system-x86, busybox-static,
# kexec-tools (test/vm/packages.txt) and our kernel (kernel/build.sh).
# Env: AMBER_KERNEL (bzImage; default: build it with kernel/build.sh),
#      AMBER_KSRC (the kernel source tree whose
#      tools/testing/selftests/pkram the pkram and tmpfs-move suites run;
#      default: the src/ next to AMBER_KERNEL's out/ as kernel/build.sh
#      lays them out, else $AMBER_KBUILD/src),
#      VMTEST_ONLY (space-separated suite names to run).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
log=${VMTEST_LOG:-/tmp/amber-vmtest}
rm -f "$log"/*.log "$log"/*.try1.txt "$log/summary"
mkdir -p "$log"
results=()
failed=0

deb=$("$here/get-debian-kernel.sh") || { echo "vmtest: cannot get Debian's kernel" >&2; exit 1; }
DK=$(echo "$deb" | sed -n 1p) DM=$(echo "$deb" | sed -n 2p)
K=${AMBER_KERNEL:-}
if [ -z "$K" ]; then
	K=$("$top/kernel/build.sh" | tail -1) || { echo "vmtest: kernel build failed" >&2; exit 1; }
fi
# the PKRAM selftests come with the series (kernel/patches): run those of
# the source $K was built from, which the guest sees over 9p
KSRC=${AMBER_KSRC:-}
if [ -z "$KSRC" ]; then
	case $K in
	*/out/arch/x86/boot/bzImage) KSRC=${K%/out/arch/x86/boot/bzImage}/src;;
	*) KSRC=${AMBER_KBUILD:-/var/tmp/amber-kernel}/src;;
	esac
fi
KST=$KSRC/tools/testing/selftests/pkram

# run_suite NAME ARGS...: one boot sequence, console to $log/NAME.log
run_suite() {
	local name=$1; shift
	"$here/run" "$@" 2>&1 | tee "$log/$name.log"
	return "${PIPESTATUS[0]}"
}

suite() { # NAME ARGS... (test/vm/run arguments)
	local name=$1; shift
	if [ -n "${VMTEST_ONLY:-}" ] && ! [[ " $VMTEST_ONLY " == *" $name "* ]]; then return; fi
	echo "=== $name"
	case "$*" in
	*"$KST/"*) if [ ! -d "$KST" ]; then
		results+=("FAIL $name (no $KST: set AMBER_KSRC to the patched source of $K)")
		failed=1
		return
	fi;;
	esac
	local t0=$(date +%s) rc note=
	run_suite "$name" "$@"; rc=$?
	# 125 before the first boot reached guest-init: qemu died or the guest
	# kernel failed while booting with no pkram= (our patch idle), CMD
	# never ran, no verdict on it: boot once more, keeping the first console
	# log and saying so. A failure after CMD started is a verdict.
	if [ $rc = 125 ] && ! grep -q '^AMBER-VM: boot 1 kernel' "$log/$name.log"; then
		mv "$log/$name.log" "$log/$name.try1.txt"
		echo "vmtest: $name: the guest never reached guest-init (rc=125); its console ended:"
		tail -n 15 "$log/$name.try1.txt" | sed 's/^/    /'
		echo "vmtest: $name: booting once more"
		note="; 1st try rc=125, log $log/$name.try1.txt"
		run_suite "$name" "$@"; rc=$?
	fi
	local dt=$(( $(date +%s) - t0 ))
	if [ $rc = 0 ]; then
		results+=("PASS $name (${dt}s$note)")
	else
		results+=("FAIL $name (rc=$rc, ${dt}s, log $log/$name.log$note)")
		failed=1
		# the end of the console, so that a CI log's tail shows why
		while IFS= read -r l; do results+=("    | $l"); done < <(tail -n 8 "$log/$name.log")
	fi
}

suite debian-soft-dirty --kernel "$DK" --modules "$DM" -- python3 test/vm/tests/soft-dirty.py
suite debian-kexec --kernel "$DK" --modules "$DM" --kexec-into "$K" --kexec-into "$DK,$DM" -- \
	sh -c 'echo "boot $AMBER_VM_BOOT: $(uname -r)"; python3 test/vm/tests/soft-dirty.py'
# kselftest form: each boot prints a KTAP report
suite pkram --kernel "$K" --kexec-into "$K" --kexec-into "$K" --kexec-into "$K" -- bash "$KST/pkram.sh"
# TMPFS_IOC_MOVE_TO_ANON (kernel/patches/0010): file pages moved into
# private anonymous memory, also those of a tmpfs preserved across kexec
suite tmpfs-move --kernel "$K" --kexec-into "$K" -- bash "$KST/tmpfs-move.sh"
# amber kexec: a program carried across a kexec in a PKRAM store, and the
# refusals (amber does the kexec itself; needs build/amber)
suite kexec --kernel "$K" --timeout 1200 -- bash test/vm/tests/kexec.sh "$K"
# restore --pkram moving the pages out of the store against the copying
# restore of the same 1 GiB image (needs build/amber)
suite kexec-nocopy --kernel "$K" --timeout 1500 -- bash test/vm/tests/kexec-nocopy.sh "$K"
# amber kexec over a chain of pre-dumps in the store: the final dump saves
# what changed since, every layer goes across and is restored in place
suite kexec-predump --kernel "$K" --timeout 900 -- bash test/vm/tests/kexec-predump.sh "$K"
# a VMM-like program's guest RAM file on a pkram= tmpfs, across amber kexec
# --preserve-mount, saved by reference
suite kexec-vmm --kernel "$K" --timeout 900 -- bash test/vm/tests/kexec-vmm.sh "$K"
# stock CRIU (Debian's 3.17) with amber's plugin, across a kexec in a PKRAM
# store (needs build/criu-plugin/amber_criu.so)
suite criu-plugin --kernel "$K" --timeout 900 -- bash test/vm/tests/criu-plugin.sh "$K"
# amber's page server and stock CRIU (Debian's 3.17 works under 6.12), both
# ways, full and incremental (needs build/amber)
suite criu-interop --kernel "$DK" --modules "$DM" -- bash test/vm/tests/criu-interop.sh
# the incremental zdtm modes with soft-dirty (needs build/amber and the tests: make)
suite debian-zdtm-soft-dirty --kernel "$DK" --modules "$DM" -- test/vm/tests/zdtm-soft-dirty.sh
# cgroup v2 properties with the controllers the host binds to v1
suite debian-cgroup-props --kernel "$DK" --modules "$DM" -- test/vm/tests/cgroup-props.sh

# the PASS/FAIL lines the suites print (KTAP "ok N"/"not ok N" for the
# kselftests), in the summary too
for f in "$log"/*.log; do
	[ -f "$f" ] || continue
	n=$(grep -cE '^(PASS|ok [0-9]+) ' "$f"); m=$(grep -cE '^(FAIL|not ok [0-9]+) ' "$f")
	[ $((n + m)) = 0 ] || results+=("  $(basename "$f" .log): $n checks passed, $m failed")
done
echo
echo "=== vmtest summary"
printf '%s\n' "${results[@]}" | tee "$log/summary"
exit $failed
