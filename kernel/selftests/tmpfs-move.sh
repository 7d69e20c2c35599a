#!/bin/bash
# TMPFS_IOC_MOVE_TO_ANON selftest (kernel/patches/0005), run in the guest by
# test/vm/run with one kexec:
#   boot 1: tmpfs-move.c's checks on a plain and a huge=always tmpfs (moved
#           contents, hole left, smaps Anonymous, fork + COW, MADV_DONTNEED,
#           the refusals, Shmem going down); then fill a file on a pkram=
#           tmpfs, preserve it and pass pkram=PFN on
#   boot 2: move that preserved file's pages and check them the same way
set -u
IO=${AMBER_VM_IO:?run me through test/vm/run}
BOOT=${AMBER_VM_BOOT:?}
here=$(cd "$(dirname "$0")" && pwd)
bin=/tmp/tmpfs-move
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
run() { "$@" || fails=$((fails + 1)); }
cc -O2 -Wall -o $bin "$here/tmpfs-move.c" || { echo "FAIL cannot build tmpfs-move.c"; exit 1; }
P=/tmp/mvp T=/tmp/mvt H=/tmp/mvh
mkdir -p $P $T $H
case $BOOT in
1)
	echo "== boot 1: $(uname -r)"
	mount -t tmpfs none $T && mount -t tmpfs -o huge=always none $H || { echo "FAIL mount"; exit 1; }
	run $bin checks $T $H
	umount $T $H
	mount -t tmpfs -o pkram=mv none $P || { echo "FAIL mount pkram=mv"; exit 1; }
	$bin fill $P/pages 64 11 || fail "fill the preserved file"
	if mount -o remount,preserve,ro $P; then pass "preserve"; else fail "preserve"; fi
	echo "pkram=$(cat /sys/kernel/pkram)" > $IO/next-cmdline
	;;
2)
	echo "== boot 2: $(uname -r)"
	mount -t tmpfs -o pkram=mv none $P || { echo "FAIL mount pkram=mv after kexec"; exit 1; }
	shmem0=$(awk '/^Shmem:/ {print $2}' /proc/meminfo)
	run $bin preserved $P/pages 11
	shmem1=$(awk '/^Shmem:/ {print $2}' /proc/meminfo)
	echo "Shmem before the move ${shmem0} kB, after ${shmem1} kB"
	if [ $((shmem0 - shmem1)) -ge $((63 * 1024)) ]; then pass "preserved: Shmem down by the moved 64 MiB"
	else fail "preserved: Shmem down by the moved 64 MiB"; fi
	umount $P
	;;
esac
exit $((fails > 0))
