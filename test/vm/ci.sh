#!/bin/bash
# CI for the kernel side (issue 3): build our kernel (Debian linux-source-6.12
# + kernel/patches) incrementally into a build directory outside the source
# tree, fetch and extract Debian's 6.12 kernel package, run every guest suite
# (test/vm/vmtest.sh), print a summary with timings, exit non-zero if anything
# failed.  Needs the packages of test/vm/packages.txt and kernel/packages.txt
# (bash scripts/deps.sh installs them).
#
#   test/vm/ci.sh
#
# Env: AMBER_KBUILD     kernel build dir (default /var/tmp/amber-kernel)
#      AMBER_VM_CACHE   Debian kernel cache (default /var/cache/amber-vm)
#      CI_LOG           logs (default /tmp/amber-ci)
#      CI_SERIES=1      also build every prefix of the series (check-series.sh)
#      CI_BENCH=1       also run bench/pkram/run
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
log=${CI_LOG:-/tmp/amber-ci}
rm -rf "$log"
mkdir -p "$log"
export AMBER_KBUILD=${AMBER_KBUILD:-/var/tmp/amber-kernel}
export VMTEST_LOG=$log/vmtest
summary=()
failed=0
t_all=$(date +%s)

# step NAME CMD...: run CMD, output to the terminal and $log/NAME.log
step() {
	local name=$1 t0 rc
	shift
	echo "=== ci: $name"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$log/$name.log"
	rc=${PIPESTATUS[0]}
	t0=$(( $(date +%s) - t0 ))
	if [ "$rc" = 0 ]; then
		summary+=("$(printf 'PASS %-14s %4ds' "$name" "$t0")")
	else
		summary+=("$(printf 'FAIL %-14s %4ds  rc=%s, log %s' "$name" "$t0" "$rc" "$log/$name.log")")
		failed=1
	fi
	return "$rc"
}

finish() {
	echo
	echo "=== ci summary (build dir $AMBER_KBUILD, logs $log)"
	printf '%s\n' "${summary[@]}"
	[ -f "$VMTEST_LOG/summary" ] && sed 's/^/     /' "$VMTEST_LOG/summary"
	echo "total $(( $(date +%s) - t_all ))s: $([ $failed = 0 ] && echo PASS || echo FAIL)"
	exit $failed
}

tools() {
	local miss=() c
	for c in qemu-system-x86_64 busybox kexec cpio gzip xz depmod file make gcc \
		 flex bison bc rsync python3 dpkg apt-get; do
		command -v $c >/dev/null || miss+=("$c")
	done
	[ -f /usr/src/linux-source-6.12.tar.xz ] || miss+=(/usr/src/linux-source-6.12.tar.xz)
	[ ${#miss[@]} = 0 ] || { echo "missing: ${miss[*]} (run: bash scripts/deps.sh)"; return 1; }
	echo "tools OK"
}

step tools tools || finish
step kernel-build kernel/build.sh || finish
K=$(tail -1 "$log/kernel-build.log")
[ -f "$K" ] || { summary+=("FAIL kernel-build: no bzImage"); failed=1; finish; }
step debian-kernel test/vm/get-debian-kernel.sh || finish
step vmtest env AMBER_KERNEL="$K" test/vm/vmtest.sh
if [ "${CI_SERIES:-0}" = 1 ]; then
	step check-series kernel/check-series.sh
fi
if [ "${CI_BENCH:-0}" = 1 ]; then
	step bench bench/pkram/run "$K"
fi
finish
