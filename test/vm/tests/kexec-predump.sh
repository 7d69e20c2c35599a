#!/bin/bash
# In the guest, on our PKRAM kernel (test/vm/vmtest.sh, suite "kexec-predump"):
# amber kexec over a chain of pre-dumps in the store, so that the final
# dump (the tree frozen) saves only what was written since the last one.
#
#   bash test/vm/tests/kexec-predump.sh BZIMAGE [MIB]
#
# Boot 1: a program holding MIB MiB (default 64) of checked memory
# (kexec-workload.py). For comparison, a full dump of it into a plain
# tmpfs (--leave-running). Then, while it runs: pre-dump pre1 into the
# store "kp" (soft-dirty), change the first eighth of its memory (SIGHUP),
# pre-dump pre2 (--prev-images-dir ../pre1), change the second eighth.
# Refusals, each before the freeze, the tree running on intact, nothing
# preserved and the pre-dumps as they were: a parent outside the store; a
# parent whose images do not match its amber.sums. One failure while
# frozen (the preserve, AMBER_FAULT): the chain unfolded again and the
# final dump's files gone. Then amber kexec --prev-images-dir pre2.
# Boot 2: every layer checked (a flipped byte of the oldest layer's pages
# refused, then repaired); restore --pkram; the memory matches the crc
# taken after both changes (the first eighth from pre2, the second from
# the final dump, the rest from pre1), the counter goes on, every page
# moved out of the store (no copy), from all three layers.
set -u
K=${1:?bzImage}
MIB=${2:-64}
AMBER=$PWD/build/amber
WL=$PWD/test/vm/tests/kexec-workload.py
IO=${AMBER_VM_IO:?run me in test/vm/run}
NAME=kp
STORE=/run/amber/pkram/$NAME
REP=$IO/predump-report
. "$(dirname "$0")/lib.sh"
# amber's log lines start with "(seconds since it started)": LOG FROM TO
log_at() { grep -m1 "$2" "$1" | sed -n 's/^(\s*\([0-9.]*\)).*/\1/p'; }
span() { local a b; a=$(log_at "$1" "$2") b=$(log_at "$1" "$3")
	[ -n "$a" ] && [ -n "$b" ] && printf '%.2f' "$(echo "$b - $a" | bc)"; }
pages_kb() { du -ck "$@" 2>/dev/null | tail -1 | cut -f1; }

store_as_before() { # WHAT: still mounted read-write, pre-dumps there, top empty, nothing preserved
	local top
	top=$(find "$STORE" -maxdepth 1 ! -type d | wc -l)
	if ! grep -q " $STORE .* rw" /proc/self/mountinfo; then fail "$1: store not mounted read-write"
	elif [ "$(cat /sys/kernel/pkram)" != 0 ]; then fail "$1: /sys/kernel/pkram = $(cat /sys/kernel/pkram)"
	elif [ "$top" != 0 ]; then fail "$1: $top file(s) left in the store's top"
	elif [ "$(readlink "$STORE/pre2/parent")" != ../pre1 ] || [ ! -f "$STORE/pre1/amber.sums" ]; then
		fail "$1: the pre-dumps changed: $(ls -l "$STORE" "$STORE/pre2" | tr '\n' ' ')"
	else pass "$1: nothing preserved, the pre-dumps as they were"; fi
}

phase=$(cat "$IO/predump-phase" 2>/dev/null || echo 1)
echo "kexec-predump suite: phase $phase, kernel $(uname -r)"

if [ "$phase" = 1 ]; then
	[ -e /sys/kernel/pkram ] || { echo "FAIL no PKRAM in this kernel"; exit 1; }
	start_workload "$MIB"
	crc0=$crc

	# the same tree's full dump into a plain tmpfs, for comparison
	FULL=/tmp/full
	mkdir -p $FULL && mount -t tmpfs none $FULL
	$AMBER dump -t "$pid" -D $FULL -R -o "$IO/predump-full.log" -v4
	rc=$?
	full_s=$(span "$IO/predump-full.log" "froze" "dumped")
	full_kb=$(pages_kb $FULL/pages-*.img)
	[ $rc = 0 ] && pass "full dump into a tmpfs (-R): ${full_s:-?} s, $full_kb kB of pages" \
		|| fail "full dump: rc $rc"
	umount $FULL
	intact "after the full dump" "$pid" "$crc0"

	# the chain, while it runs
	$AMBER pre-dump -t "$pid" --pkram $NAME -D pre1 --track-mem=soft-dirty \
		-o "$IO/predump-pre1.log" -v4
	rc=$?
	[ $rc = 0 ] && [ -f "$STORE/pre1/amber.sums" ] && pass "pre-dump pre1 into the store (sealed)" \
		|| { fail "pre-dump pre1: rc $rc"; tail -5 "$IO/predump-pre1.log"; }
	kill -HUP "$pid"; sleep 2
	$AMBER pre-dump -t "$pid" --pkram $NAME -D pre2 --prev-images-dir ../pre1 \
		--track-mem=soft-dirty -o "$IO/predump-pre2.log" -v4
	rc=$?
	[ $rc = 0 ] && [ "$(readlink "$STORE/pre2/parent")" = ../pre1 ] \
		&& pass "pre-dump pre2 over pre1" || { fail "pre-dump pre2: rc $rc"; tail -5 "$IO/predump-pre2.log"; }
	kill -HUP "$pid"; sleep 2
	r=$(ask "$pid"); set -- $r
	crc=${2:-none}
	[ "$crc" != "$crc0" ] && pass "two eighths changed since pre1 (crc $crc0 -> $crc)" \
		|| fail "the memory did not change ($r)"
	echo "pages: pre1 $(pages_kb "$STORE"/pre1/pages-*.img) kB, pre2 $(pages_kb "$STORE"/pre2/pages-*.img) kB"

	# a. a parent outside the store: refused before the freeze
	cp -a "$STORE/pre1" /run/amber/pkram/outside
	$AMBER kexec -t "$pid" --pkram $NAME --prev-images-dir ../outside --kernel "$K" \
		-o "$IO/predump-a.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "outside the store" "$IO/predump-a.log" && ! grep -q "pstree: froze" "$IO/predump-a.log" \
		&& pass "a parent outside the store: refused before the freeze (rc 1, says why)" \
		|| { fail "a parent outside the store: rc $rc"; tail -3 "$IO/predump-a.log"; }
	intact "parent outside the store" "$pid" "$crc"
	store_as_before "parent outside the store"
	rm -rf /run/amber/pkram/outside

	# b. a parent whose images do not match its amber.sums
	mm=$(ls "$STORE"/pre1/mm-*.img | head -1)
	cp "$mm" /tmp/mm.orig
	printf '\x5a' | dd of="$mm" bs=1 seek=40 conv=notrunc 2>/dev/null
	$AMBER kexec -t "$pid" --pkram $NAME --prev-images-dir pre2 --kernel "$K" \
		-o "$IO/predump-b.log" -v4
	rc=$?
	cp /tmp/mm.orig "$mm"
	[ $rc = 1 ] && grep -q "do not match" "$IO/predump-b.log" && grep -q "pre1 refused" "$IO/predump-b.log" \
		&& ! grep -q "pstree: froze" "$IO/predump-b.log" \
		&& pass "a damaged parent: refused before the freeze (rc 1, names it)" \
		|| { fail "a damaged parent: rc $rc"; tail -3 "$IO/predump-b.log"; }
	intact "damaged parent" "$pid" "$crc"
	store_as_before "damaged parent"

	# c. the preserve fails while frozen: the chain folded, then unfolded
	AMBER_FAULT=kexec-preserve $AMBER kexec -t "$pid" --pkram $NAME --prev-images-dir pre2 \
		--kernel "$K" -o "$IO/predump-c.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "folded under the top" "$IO/predump-c.log" && grep -q "unfolded" "$IO/predump-c.log" \
		&& pass "a failed preserve over the chain: rc 1, folded and unfolded" \
		|| { fail "a failed preserve: rc $rc"; tail -3 "$IO/predump-c.log"; }
	intact "failed preserve" "$pid" "$crc"
	store_as_before "failed preserve"

	if [ $fails != 0 ]; then echo "kexec-predump suite: $fails failure(s) before the kexec"; exit 1; fi
	r=$(ask "$pid"); cnt=${r%% *}
	echo "$pid $crc $cnt $full_s $full_kb" > "$IO/predump-expect"
	echo 2 > "$IO/predump-phase"
	$AMBER kexec -t "$pid" --pkram $NAME --prev-images-dir pre2 --kernel "$K" \
		--initrd "$IO/initrd.gz" -o "$IO/predump-kexec.log" -v4
	echo "FAIL amber kexec returned $? (see predump-kexec.log):"
	tail -5 "$IO/predump-kexec.log"
	echo done > "$IO/predump-phase"
	exit 1
fi
[ "$phase" = 2 ] || exit 0
echo done > "$IO/predump-phase"   # whatever happens, no other round
read -r pid crc cnt full_s full_kb < "$IO/predump-expect"
KL=$IO/predump-kexec.log
grep -h "parent image\|folded\|every image written\|preserved\|pages written\|dumped" "$KL" \
	| sed 's/^/  kexec.log: /'

# the store as the kernel gave it back: the chain folded into directories
mkdir -p "$STORE"
mount -t tmpfs -o pkram=$NAME none "$STORE" || { echo "FAIL mount the preserved store"; exit 1; }
find "$STORE" -type l | grep -q . && fail "symlinks in the preserved store" \
	|| pass "the store came back with no symlink"
[ -f "$STORE/parent/amber.sums" ] && [ -f "$STORE/parent/parent/amber.sums" ] \
	&& [ ! -e "$STORE/parent/parent/parent" ] && pass "the chain came back: top, parent, parent/parent" \
	|| fail "the chain: $(find "$STORE" -maxdepth 3 -type d | tr '\n' ' ')"
top_kb=$(pages_kb "$STORE"/pages-*.img) p1_kb=$(pages_kb "$STORE"/parent/pages-*.img)
p2_kb=$(pages_kb "$STORE"/parent/parent/pages-*.img)
echo "pages: top (final dump) $top_kb kB, parent (pre2) $p1_kb kB, parent/parent (pre1) $p2_kb kB"
[ "$top_kb" -lt $((MIB * 1024 / 2)) ] && pass "the final dump saved $top_kb kB (of $MIB MiB)" \
	|| fail "the final dump saved $top_kb kB: not incremental"

# the oldest layer damaged: refused with nothing created, then repaired
pages=$(ls "$STORE"/parent/parent/pages-*.img | head -1)
off=$(( $(stat -c %s "$pages") / 2 ))
orig=$(dd if="$pages" bs=1 skip=$off count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
printf "\\x$(printf %02x $(( 0x$orig ^ 0xff )))" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null
$AMBER restore --pkram $NAME -d -o "$IO/predump-damaged.log" -v4
rc=$?
[ $rc = 1 ] && grep -q "do not match their checksum" "$IO/predump-damaged.log" \
	&& grep -q "layer 2) refused" "$IO/predump-damaged.log" && ! kill -0 "$pid" 2>/dev/null \
	&& pass "a damaged parent layer after the kexec: refused, nothing created" \
	|| { fail "damaged parent layer: rc $rc"; tail -3 "$IO/predump-damaged.log"; }
printf "\\x$orig" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null

$AMBER restore --pkram $NAME -d -o "$IO/predump-restore.log" -v4
rc=$?
[ $rc = 0 ] && pass "restore --pkram over the chain: rc 0" \
	|| { fail "restore --pkram: rc $rc"; tail -5 "$IO/predump-restore.log"; }
grep -q "chain verified: the top and 2 parent" "$IO/predump-restore.log" \
	&& pass "every layer checked (amber.sums and every page)" || fail "the chain was not verified"
intact "after the kexec over the chain" "$pid" "$crc"
r=$(ask "$pid"); set -- $r
[ "${1:-0}" -gt "$cnt" ] && pass "counter went on from the dump's ($cnt -> ${1:-})" \
	|| fail "counter ${1:-none} not past the dump's $cnt"
RL=$IO/predump-restore.log
grep -h "pages moved from the store" "$RL" | sed 's/^/  /'
moved=$(grep -h "pages moved from the store" "$RL" | sed 's/.*: \([0-9]*\) pages moved.*/\1/' | awk '{n += $1} END {print n + 0}')
copied=$(grep -h "pages moved from the store" "$RL" | sed 's/.* \([0-9]*\) copied.*/\1/' | awk '{n += $1} END {print n + 0}')
[ "$moved" -ge $((MIB * 256)) ] && [ "$copied" = 0 ] \
	&& pass "every layer's pages moved in place: $moved moved, $copied copied" \
	|| fail "moved $moved, copied $copied (want >= $((MIB * 256)), 0)"
grep -q " $STORE " /proc/self/mountinfo && fail "store still mounted after the restore" \
	|| pass "store unmounted after the restore"

fin_s=$(span "$KL" "froze" "every image written")
rst_s=$(grep -h "restored" "$RL" | tail -1 | sed -n 's/^(\s*\([0-9.]*\)).*/\1/p')
chk_s=$(span "$RL" "found at" "chain verified")
echo "FIGURES $MIB MiB: final dump (frozen) over the chain ${fin_s:-?} s, $top_kb kB of pages;" \
	"full dump into a tmpfs ${full_s:-?} s, $full_kb kB; restore --pkram over 3 layers ${rst_s:-?} s" \
	"(of which the check of every layer's pages ${chk_s:-?} s)" \
	"($moved pages moved, $copied copied)"
if [ $fails != 0 ]; then echo "kexec-predump suite: $fails failure(s)"; exit 1; fi
exit 0
