#!/bin/bash
# In the guest, on our PKRAM kernel (test/vm/vmtest.sh, suite "kexec-nocopy"):
# restore --pkram moves the pages out of the store (TMPFS_IOC_MOVE_TO_ANON,
# kernel/patches/0010) instead of copying them. Measured against the
# copying restore (--pkram-copy) of the same image in the same guest.
#
#   bash test/vm/tests/kexec-nocopy.sh BZIMAGE [MIB]
#
# Boot 1: a program holding MIB MiB (default 1024) of checked memory
# (kexec-workload.py) is carried by amber kexec into the store "nc".
# Boot 2: the store is mounted and bound at a second place, so that it
# outlives the copying restore's unmount; restore --pkram-copy, checked,
# killed; the store bound back; restore --pkram (moved), checked: memory
# intact, counter going on, no page copied, the memory in use the image
# once, the process's memory anonymous; then a second dump of the
# restored tree (into a plain tmpfs) and a restore from it.
set -u
K=${1:?bzImage}
MIB=${2:-1024}
AMBER=$PWD/build/amber
WL=$PWD/test/vm/tests/kexec-workload.py
IO=${AMBER_VM_IO:?run me in test/vm/run}
NAME=nc
STORE=/run/amber/pkram/$NAME
KEEP=/tmp/nc-keep
REP=$IO/nocopy-report
ASK_TRIES=900 # 1 GiB to checksum under TCG
. "$(dirname "$0")/lib.sh"
now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$2 - $1" | bc)"; }
used_kb() { awk '/^MemTotal:/ {t=$2} /^MemFree:/ {f=$2} END {print t - f}' /proc/meminfo; }
shmem_kb() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }

gone() { # PID: killed and reaped by its parent (init)
	kill -9 "$1" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	return 1
}
settle() { sync; echo 3 > /proc/sys/vm/drop_caches; sleep 1; }

phase=$(cat "$IO/nocopy-phase" 2>/dev/null || echo 1)
echo "kexec-nocopy suite: phase $phase, kernel $(uname -r)"

if [ "$phase" = 1 ]; then
	[ -e /sys/kernel/pkram ] || { echo "FAIL no PKRAM in this kernel"; exit 1; }
	start_workload "$MIB" 3000
	echo "$pid $crc $cnt" > "$IO/nocopy-expect"
	echo 2 > "$IO/nocopy-phase"
	$AMBER kexec -t "$pid" --pkram $NAME --kernel "$K" --initrd "$IO/initrd.gz" \
		-o "$IO/nocopy-kexec.log" -v4
	echo "FAIL amber kexec returned $? (see nocopy-kexec.log):"
	tail -5 "$IO/nocopy-kexec.log"
	echo done > "$IO/nocopy-phase"
	exit 1
fi
[ "$phase" = 2 ] || exit 0
echo done > "$IO/nocopy-phase"   # whatever happens, no other round
read -r pid crc cnt < "$IO/nocopy-expect"

mkdir -p "$STORE" "$KEEP"
mount -t tmpfs -o pkram=$NAME none "$STORE" || { echo "FAIL mount the preserved store"; exit 1; }
mount --bind "$STORE" "$KEEP" || { echo "FAIL bind the store"; exit 1; }
pages=$(ls "$KEEP"/pages-*.img | head -1)	# $STORE goes with the restore's unmount
echo "store: $(du -sk "$STORE" | cut -f1) kB, pages $(stat -c %s "$pages") B"
settle; u0=$(used_kb) s0=$(shmem_kb)

# the copying restore
t0=$(now)
$AMBER restore --pkram $NAME --pkram-copy -d -o "$IO/nocopy-copy.log" -v4
rc=$?
t1=$(now)
[ $rc = 0 ] && pass "restore --pkram --pkram-copy: rc 0" || { fail "copying restore: rc $rc"; tail -5 "$IO/nocopy-copy.log"; }
grep -q "pages moved from the store" "$IO/nocopy-copy.log" \
	&& fail "--pkram-copy moved pages" || pass "--pkram-copy copied"
intact "copied restore" "$pid" "$crc"
settle; u1=$(used_kb) s1=$(shmem_kb)
gone "$pid" || fail "the copied tree does not die"
[ -s "$pages" ] && [ "$(stat -c %b "$pages")" -gt 0 ] && pass "the store kept its pages after the copying restore" \
	|| fail "the store lost its pages after the copying restore"

# the moving restore, same image, same guest
mkdir -p "$STORE"
mountpoint -q "$STORE" || mount --bind "$KEEP" "$STORE" || fail "bind the store back"
settle; u2=$(used_kb)
t2=$(now)
$AMBER restore --pkram $NAME -d -o "$IO/nocopy-move.log" -v4
rc=$?
t3=$(now)
if [ $rc = 0 ]; then pass "restore --pkram (moving): rc 0"
else fail "moving restore: rc $rc"; tail -5 "$IO/nocopy-move.log"; umount "$KEEP"; exit 1; fi
grep -h "pages moved from the store" "$IO/nocopy-move.log" | sed 's/^/  /'
moved=$(grep -h "pages moved from the store" "$IO/nocopy-move.log" | sed 's/.*: \([0-9]*\) pages moved.*/\1/' | awk '{n += $1} END {print n + 0}')
copied=$(grep -h "pages moved from the store" "$IO/nocopy-move.log" | sed 's/.* \([0-9]*\) copied.*/\1/' | awk '{n += $1} END {print n + 0}')
[ "$moved" -ge $((MIB * 256)) ] && [ "$copied" = 0 ] && pass "moved $moved pages, copied $copied" \
	|| fail "moved $moved pages, copied $copied (want >= $((MIB * 256)), 0)"
intact "moved restore" "$pid" "$crc"
r=$(ask "$pid"); set -- $r
[ -n "${1:-}" ] && [ "$1" -gt "$cnt" ] && pass "counter went on from the dump's ($cnt -> ${1:-})" \
	|| fail "counter ${1:-none} below the dump's $cnt"
settle; u3=$(used_kb) s3=$(shmem_kb)
echo "memory in use (MemTotal - MemFree): store loaded $u0 kB; after the copying restore $u1 kB" \
	"(Shmem $s0 -> $s1 kB); before the moving restore $u2 kB, after $u3 kB (Shmem $s3 kB)"
# the image once: the moving restore adds (almost) nothing, the copy adds the image
[ $((u3 - u2)) -lt $((MIB * 1024 / 8)) ] && pass "moving restore: memory in use +$(( (u3 - u2) / 1024 )) MiB (image once)" \
	|| fail "moving restore: memory in use +$(( (u3 - u2) / 1024 )) MiB"
[ $((u1 - u0)) -gt $((MIB * 1024 * 7 / 8)) ] && pass "copying restore: memory in use +$(( (u1 - u0) / 1024 )) MiB (image twice)" \
	|| fail "copying restore: memory in use +$(( (u1 - u0) / 1024 )) MiB"
[ $((s0 - s3)) -gt $((MIB * 1024 * 7 / 8)) ] && pass "Shmem down by the image after the move ($s0 -> $s3 kB)" \
	|| fail "Shmem $s0 -> $s3 kB"
anon=$(awk '/^Anonymous:/ {print $2}' /proc/$pid/smaps_rollup)
[ "${anon:-0}" -ge $((MIB * 1024)) ] && pass "the restored process's memory is anonymous ($anon kB)" \
	|| fail "Anonymous $anon kB in smaps_rollup"
grep -q "pages-.*img\|$STORE\|$KEEP" /proc/$pid/maps && fail "the process maps the store: $(grep -m1 pages- /proc/$pid/maps)" \
	|| pass "no mapping of the store in /proc/PID/maps"
grep -q " $STORE " /proc/self/mountinfo && fail "store still mounted after the restore" \
	|| pass "store unmounted after the restore"
cut -d' ' -f1,2,6 /proc/$pid/maps | awk '{print "  maps: " $0}' | head -12

# a second dump of the moved tree, and a restore from it
D2=/tmp/nc-dump2
mkdir -p $D2 && mount -t tmpfs none $D2
$AMBER dump -t "$pid" -D $D2 -o "$IO/nocopy-dump2.log" -v4
rc1=$?
p2=$(du -sk $D2 | cut -f1)
$AMBER restore -D $D2 -d -o "$IO/nocopy-restore2.log" -v4
rc2=$?
[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$p2" -ge $((MIB * 1024)) ] \
	&& pass "second dump of the moved tree ($p2 kB) and its restore" \
	|| fail "second dump rc $rc1 ($p2 kB), restore rc $rc2"
intact "after the second dump and restore" "$pid" "$crc"
gone "$pid"
umount $D2 "$KEEP"

c=$(secs "$t0" "$t1") m=$(secs "$t2" "$t3")
# the fill alone: from the premap area's layout to the pages being in
grep -h "restored\|verified\|premap area\|pages premapped\|pages moved" "$IO/nocopy-copy.log" | sed 's/^/  copy.log: /'
grep -h "restored\|verified\|premap area\|pages premapped\|pages moved" "$IO/nocopy-move.log" | sed 's/^/  move.log: /'
echo "FIGURES $MIB MiB: restore --pkram-copy $c s, restore --pkram (move) $m s," \
	"ratio $(echo "scale=3; $m / $c" | bc)"
if [ $fails != 0 ]; then echo "kexec-nocopy suite: $fails failure(s)"; exit 1; fi
exit 0
