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
# moved out of the store (no copy), from all three layers. Then the lazy
# path over a chain: the restored program pre-dumped twice into a second
# store "kl" (two more eighths changed), amber kexec --prev-images-dir pre2.
# Boot 3: a flipped byte of the oldest layer refused by lazy-pages --pkram;
# lazy-pages --pkram kl + restore --pkram kl --lazy-pages: nothing moved
# out of the store while the daemon serves from it, the memory matches
# the crc after both changes, the daemon delivered every page, from each
# of the three layers, the counter goes on, the store unmounted at the end.
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
if [ "$phase" = 3 ]; then
	echo done > "$IO/predump-phase"
	read -r pid crc cnt < "$IO/predump-expect"
	LNAME=kl LSTORE=/run/amber/pkram/kl LL=$IO/predump-lazy.log RL=$IO/predump-restore-lazy.log
	mkdir -p "$LSTORE"
	mount -t tmpfs -o pkram=$LNAME none "$LSTORE" || { echo "FAIL mount the preserved store $LNAME"; exit 1; }
	[ -f "$LSTORE/parent/amber.sums" ] && [ -f "$LSTORE/parent/parent/amber.sums" ] \
		&& pass "lazy round: the chain came back folded (top, parent, parent/parent)" \
		|| fail "lazy round: the chain: $(find "$LSTORE" -maxdepth 3 -type d | tr '\n' ' ')"
	# the store seen through a bind mount: the daemon unmounts the store
	# itself once it is done, which may come before the checks below
	# (commands are slow under TCG); the bind keeps the same files in view
	VIEW=/tmp/kl-view
	mkdir -p $VIEW && mount --bind "$LSTORE" $VIEW || fail "lazy round: bind mount of the store"
	layer_kb() { echo "$(pages_kb $VIEW/pages-*.img)/$(pages_kb $VIEW/parent/pages-*.img)/$(pages_kb $VIEW/parent/parent/pages-*.img)"; }
	# what each layer's pages files hold: names, sizes, blocks, contents
	layer_sums() { (cd $VIEW && for f in pages-*.img parent/pages-*.img parent/parent/pages-*.img; do
		echo "$f $(stat -c '%s %b' "$f") $(sha1sum < "$f" | cut -c1-12)"; done); }
	kb0=$(layer_kb) sums0=$(layer_sums)
	echo "pages (top/parent/parent-parent): $kb0 kB"

	# the daemon refuses a damaged oldest layer before it serves anything
	# (at 3/4 of the file: in an eighth of the memory no newer layer
	# rewrote, so an entry the lazy view uses, which the daemon checks)
	pages=$(ls "$LSTORE"/parent/parent/pages-*.img | head -1)
	off=$(( $(stat -c %s "$pages") * 3 / 4 ))
	orig=$(dd if="$pages" bs=1 skip=$off count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
	printf "\\x$(printf %02x $(( 0x$orig ^ 0xff )))" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null
	timeout 300 $AMBER lazy-pages --pkram $LNAME -o "$IO/predump-lazy-damaged.log" -v4
	rc=$?
	printf "\\x$orig" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null
	[ $rc = 1 ] && grep -q "checksum mismatch in the pages image of a parent" "$IO/predump-lazy-damaged.log" \
		&& grep -q " $LSTORE " /proc/self/mountinfo && ! kill -0 "$pid" 2>/dev/null \
		&& pass "lazy round: a damaged oldest layer refused by lazy-pages --pkram (rc 1), the store kept" \
		|| { fail "lazy round: damaged layer: rc $rc"; tail -3 "$IO/predump-lazy-damaged.log"; }

	$AMBER lazy-pages --pkram $LNAME -o "$LL" -v4 &
	lpid=$!
	for _ in $(seq 600); do [ -S "$LSTORE/lazy-pages.socket" ] && break; sleep 0.1; done
	echo "pages once the daemon checked them: $(layer_kb) kB"
	$AMBER restore --pkram $LNAME --lazy-pages -d -o "$RL" -v4
	rc=$?
	[ $rc = 0 ] && pass "lazy round: restore --pkram --lazy-pages over the chain: rc 0" \
		|| { fail "lazy round: restore --pkram --lazy-pages: rc $rc"; tail -5 "$RL"; }
	intact "lazy round: after the kexec over the chain, lazily" "$pid" "$crc"
	wait $lpid
	rc=$?
	# a lazy restore copies (the daemon reads the pages files): neither
	# it nor the daemon takes anything out of the store
	kb1=$(layer_kb) sums1=$(layer_sums)
	[ "$sums1" = "$sums0" ] && ! grep -q "pages moved from the store" "$RL" \
		&& pass "lazy round: no page moved out of the store, every layer's pages as before ($kb1 kB)" \
		|| { fail "lazy round: the store changed: $kb0 -> $kb1 kB"
		     echo "before: $sums0" | tr '\n' ' '; echo; echo "after: $sums1" | tr '\n' ' '; echo; }
	umount $VIEW
	[ $rc = 0 ] && pass "lazy round: lazy-pages --pkram: rc 0" || { fail "lazy round: lazy-pages: rc $rc"; tail -5 "$LL"; }
	grep -h "pages to deliver\|lazy-pages: done" "$LL" | sed 's/^/  lazy.log: /'
	# every page to deliver, and from which layer; then what was delivered
	set -- $(grep -h "pages to deliver" "$LL" | sed -n 's/.* \([0-9]*\) pages to deliver (by layer: \([0-9]*\)\/\([0-9]*\)\/\([0-9]*\),.*/\1 \2 \3 \4/p' \
		| awk '{t += $1; a += $2; b += $3; c += $4} END {print t + 0, a + 0, b + 0, c + 0}')
	tot=$1 l0=$2 l1=$3 l2=$4
	# (a page "already present" was there by the other path first: not twice)
	got=$(sed -n 's/.* \([0-9]*\) pages by fault, \([0-9]*\) prefetched, .*/\1 \2/p' "$LL" \
		| awk '{print $1 + $2}')
	[ "$tot" -ge $((MIB * 256)) ] && [ "$l0" -gt 0 ] && [ "$l1" -gt 0 ] && [ "$l2" -gt 0 ] \
		&& [ $((l0 + l1 + l2)) = "$tot" ] && [ "${got:-0}" = "$tot" ] \
		&& pass "lazy round: the daemon delivered all $tot pages, from every layer (top $l0, pre2 $l1, pre1 $l2)" \
		|| fail "lazy round: to deliver $tot (layers $l0/$l1/$l2), delivered ${got:-?} (want >= $((MIB * 256)), all layers)"
	r=$(ask "$pid"); set -- $r
	[ "${1:-0}" -gt "$cnt" ] && pass "lazy round: counter went on from the dump's ($cnt -> ${1:-})" \
		|| fail "lazy round: counter ${1:-none} not past the dump's $cnt"
	grep -q " $LSTORE " /proc/self/mountinfo && fail "lazy round: store still mounted after the daemon" \
		|| pass "lazy round: store unmounted once every page was delivered"
	kill -9 "$pid" 2>/dev/null
	echo "kexec-predump suite: $fails failure(s)"
	[ $fails = 0 ]
	exit
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

# the lazy path over a chain: the restored tree pre-dumped twice into a
# second store, carried by amber kexec, restored lazily in boot 3
LNAME=kl LSTORE=/run/amber/pkram/kl
$AMBER pre-dump -t "$pid" --pkram $LNAME -D pre1 --track-mem=soft-dirty \
	-o "$IO/predump-lpre1.log" -v4 || { fail "lazy round: pre-dump pre1"; tail -5 "$IO/predump-lpre1.log"; }
kill -HUP "$pid"; sleep 2
$AMBER pre-dump -t "$pid" --pkram $LNAME -D pre2 --prev-images-dir ../pre1 --track-mem=soft-dirty \
	-o "$IO/predump-lpre2.log" -v4 || { fail "lazy round: pre-dump pre2"; tail -5 "$IO/predump-lpre2.log"; }
kill -HUP "$pid"; sleep 2
r=$(ask "$pid"); set -- $r
crc2=${2:-none} cnt2=${1:-0}
[ "$crc2" != "$crc" ] && [ "${3:-}" = ok ] && pass "lazy round: two pre-dumps into '$LNAME', two eighths changed ($crc -> $crc2)" \
	|| fail "lazy round: the memory did not change ($r)"
if [ $fails != 0 ]; then echo "kexec-predump suite: $fails failure(s)"; exit 1; fi
echo "$pid $crc2 $cnt2" > "$IO/predump-expect"
echo 3 > "$IO/predump-phase"
$AMBER kexec -t "$pid" --pkram $LNAME --prev-images-dir pre2 --kernel "$K" \
	--initrd "$IO/initrd.gz" -o "$IO/predump-kexec2.log" -v4
echo "FAIL second amber kexec returned $? (see predump-kexec2.log):"
tail -5 "$IO/predump-kexec2.log"
echo done > "$IO/predump-phase"
exit 1
