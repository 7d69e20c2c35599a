#!/bin/bash
# In the guest, on our PKRAM kernel (test/vm/vmtest.sh, suite "kexec"):
# amber kexec carries a program across a kexec into BZIMAGE in memory.
#
#   bash test/vm/tests/kexec.sh BZIMAGE [MIB]
#
# Boot 1: a program holding MIB MiB (default 256) of checked memory and a
# counter (kexec-workload.py) starts; refusals first, each must leave it
# running with its memory intact and nothing preserved or mounted:
#   a file that is no kernel, a truncated bzImage, a bzImage the kernel
#   refuses (kexec_file_load, after the store was preserved), a failing
#   preserve (AMBER_FAULT);
# then amber kexec dumps it into the store "kx" and reboots into BZIMAGE.
# guest-init runs this script again in the new kernel (amber_boot is
# still 1: amber, not the harness, did the kexec); the phase file in
# $AMBER_VM_IO says where we are. Boot 2: an unknown store name is
# refused; a damaged store is refused with nothing created; repaired, the
# program is restored and must go on with its memory intact and its
# counter past the dump's. Then the same tree is dumped to and restored
# from a directory of the host, for comparison. Times are host mtimes of
# marker files in $AMBER_VM_IO (the host's clock; the guest's restarts).
# Then a second amber kexec into the store "kx2"; boot 3: lazy-pages
# --pkram kx2 and restore --pkram kx2 --lazy-pages.
set -u
K=${1:?bzImage}
MIB=${2:-256}
AMBER=$PWD/build/amber
WL=$PWD/test/vm/tests/kexec-workload.py
IO=${AMBER_VM_IO:?run me in test/vm/run}
NAME=kx
STORE=/run/amber/pkram/$NAME
REP=$IO/kexec-report
. "$(dirname "$0")/lib.sh"
mtime() { stat -c %.3Y "$1"; }

nothing_left() { # WHAT: no store mounted or preserved
	if grep -q " $STORE " /proc/self/mountinfo; then fail "$1: $STORE still mounted"
	elif [ "$(cat /sys/kernel/pkram)" != 0 ]; then fail "$1: /sys/kernel/pkram = $(cat /sys/kernel/pkram)"
	else pass "$1: nothing mounted or preserved"; fi
}

phase=$(cat "$IO/kexec-phase" 2>/dev/null || echo 1)
echo "kexec suite: phase $phase, kernel $(uname -r), cmdline: $(cat /proc/cmdline)"

if [ "$phase" = 1 ]; then
	[ -e /sys/kernel/pkram ] || { echo "FAIL no PKRAM in this kernel"; exit 1; }
	start_workload "$MIB"

	# a. not a kernel: refused before anything is frozen
	$AMBER kexec -t "$pid" --pkram $NAME --kernel /etc/passwd -o "$IO/kexec-a.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "not an x86 bzImage" "$IO/kexec-a.log" \
		&& pass "not a kernel: refused (rc 1, says why)" || fail "not a kernel: rc $rc"
	intact "not a kernel" "$pid" "$crc"
	nothing_left "not a kernel"

	# b. truncated: refused before anything is frozen (kexec_file_load
	# would take it, and the reboot would jump into garbage)
	head -c 65536 "$K" > /tmp/short-bzImage
	$AMBER kexec -t "$pid" --pkram $NAME --kernel /tmp/short-bzImage -o "$IO/kexec-b.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "is truncated" "$IO/kexec-b.log" \
		&& pass "truncated kernel: refused (rc 1, says why)" || fail "truncated kernel: rc $rc"
	intact "truncated kernel" "$pid" "$crc"
	nothing_left "truncated kernel"

	# c. a bzImage without XLF_KERNEL_64 passes amber's check; the kernel
	# refuses it after the store was preserved: undone, the tree resumes
	cp "$K" /tmp/bad-bzImage
	printf '\x00' | dd of=/tmp/bad-bzImage bs=1 seek=$((0x236)) conv=notrunc 2>/dev/null
	$AMBER kexec -t "$pid" --pkram $NAME --kernel /tmp/bad-bzImage -o "$IO/kexec-c.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "kexec_file_load of /tmp/bad-bzImage failed" "$IO/kexec-c.log" \
		&& grep -q "preserved, super block pfn" "$IO/kexec-c.log" \
		&& pass "kernel refused by kexec_file_load after the preserve: rc 1" \
		|| fail "kernel refused by kexec_file_load: rc $rc"
	intact "refused by kexec_file_load" "$pid" "$crc"
	nothing_left "refused by kexec_file_load"

	# d. the preserve fails
	AMBER_FAULT=kexec-preserve $AMBER kexec -t "$pid" --pkram $NAME --kernel "$K" \
		-o "$IO/kexec-d.log" -v4
	rc=$?
	[ $rc = 1 ] && pass "failed preserve: refused (rc 1)" || fail "failed preserve: rc $rc"
	intact "failed preserve" "$pid" "$crc"
	nothing_left "failed preserve"

	if [ $fails != 0 ]; then echo "kexec suite: $fails failure(s) before the kexec"; exit 1; fi
	r=$(ask "$pid"); cnt=${r%% *}
	echo "$pid $crc $cnt" > "$IO/kexec-expect"
	echo 2 > "$IO/kexec-phase"
	echo go > "$IO/kexec-t0"
	$AMBER kexec -t "$pid" --pkram $NAME --kernel "$K" --initrd "$IO/initrd.gz" \
		-o "$IO/kexec.log" -v4
	echo "FAIL amber kexec returned $? (see kexec.log):"
	tail -5 "$IO/kexec.log"
	echo done > "$IO/kexec-phase"
	exit 1
fi

if [ "$phase" = 2 ]; then
	echo up > "$IO/kexec-tb"
	echo done > "$IO/kexec-phase"   # whatever happens, no other round
	read -r pid crc cnt < "$IO/kexec-expect"
	grep -q "pkram=[1-9]" /proc/cmdline && grep -qw nokaslr /proc/cmdline \
		&& pass "the next kernel got pkram=PFN nokaslr" || fail "cmdline: $(cat /proc/cmdline)"
	[ "$(grep -o ' pkram=' /proc/cmdline | wc -l)" = 1 ] && pass "one pkram= only" \
		|| fail "several pkram= on the cmdline"

	# an unknown name: the tmpfs comes back empty, refused and unmounted
	$AMBER restore --pkram nosuch -d -o "$IO/restore-nosuch.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "is empty" "$IO/restore-nosuch.log" \
		&& ! grep -q " /run/amber/pkram/nosuch " /proc/self/mountinfo \
		&& pass "unknown store: refused, unmounted" || fail "unknown store: rc $rc"

	# damaged: mount the store ourselves, flip a byte of the pages
	mkdir -p "$STORE"
	mount -t tmpfs -o pkram=$NAME none "$STORE" || fail "mount the preserved store"
	ls -la "$STORE" | head -20
	pages=$(ls "$STORE"/pages-*.img | head -1)
	off=$(( $(stat -c %s "$pages") / 2 ))
	orig=$(dd if="$pages" bs=1 skip=$off count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
	printf "\\x$(printf %02x $(( 0x$orig ^ 0xff )))" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null
	$AMBER restore --pkram $NAME -d -o "$IO/restore-damaged.log" -v4
	rc=$?
	if [ $rc = 1 ] && grep -q "do not match their checksum" "$IO/restore-damaged.log" \
		&& ! kill -0 "$pid" 2>/dev/null && ! pgrep -f kexec-workload >/dev/null; then
		pass "damaged store: refused (checksum), nothing created"
	else
		fail "damaged store: rc $rc, pid $pid $(kill -0 "$pid" 2>/dev/null && echo exists)"
	fi
	printf "\\x$orig" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null

	echo go > "$IO/kexec-tr0"
	$AMBER restore --pkram $NAME -d -o "$IO/restore.log" -v4
	rc=$?
	echo done > "$IO/kexec-t1"
	[ $rc = 0 ] && pass "restore --pkram: rc 0" || { fail "restore --pkram: rc $rc"; tail -5 "$IO/restore.log"; }
	intact "after kexec" "$pid" "$crc"
	r=$(ask "$pid"); set -- $r
	[ "${1:-0}" -ge "$cnt" ] && pass "counter went on from the dump's ($cnt -> ${1:-})" \
		|| fail "counter ${1:-none} below the dump's $cnt"
	grep -q " $STORE " /proc/self/mountinfo && fail "store still mounted after the restore" \
		|| pass "store unmounted after the restore"
	# the same tree through a directory of the host (virtio-9p: the guest
	# has no block device), without the reboot, for comparison
	DISK=$IO/disk-img
	rm -rf "$DISK"; mkdir -p "$DISK"
	echo go > "$IO/disk-t0"
	$AMBER dump -t "$pid" -D "$DISK" -o "$IO/dump-disk.log" -v4
	rc1=$?
	echo go > "$IO/disk-t1"
	$AMBER restore -D "$DISK" -d -o "$IO/restore-disk.log" -v4
	rc2=$?
	echo done > "$IO/disk-t2"
	[ $rc1 = 0 ] && [ $rc2 = 0 ] && pass "dump + restore through the host directory" \
		|| fail "through the host directory: dump rc $rc1, restore rc $rc2"
	intact "through the host directory" "$pid" "$crc"
	rm -rf "$DISK"
	d() { printf '%.2f' "$(echo "$(mtime "$IO/$2") - $(mtime "$IO/$1")" | bc)"; }
	echo "FIGURES $MIB MiB: amber kexec call to the next kernel's guest-init $(d kexec-t0 kexec-tb) s," \
		"restore --pkram $(d kexec-tr0 kexec-t1) s, downtime without the refusal checks" \
		"$(echo "$(d kexec-t0 kexec-tb) + $(d kexec-tr0 kexec-t1)" | bc) s;" \
		"through the host directory: dump $(d disk-t0 disk-t1) s, restore $(d disk-t1 disk-t2) s"
	grep -h "written\|verified\|preserved\|loading\|rebooting" "$IO/kexec.log" | sed 's/^/  kexec.log: /'
	grep -h "found\|verified\|restored" "$IO/restore.log" | sed 's/^/  restore.log: /'
	grep -h "dumped" "$IO/dump-disk.log" | sed 's/^/  dump-disk.log: /'
	grep -h "restored" "$IO/restore-disk.log" | sed 's/^/  restore-disk.log: /'
	if [ $fails != 0 ]; then echo "kexec suite: $fails failure(s)"; exit 1; fi
	# a second kexec, into a store of another name, for a lazy restore
	echo 3 > "$IO/kexec-phase"
	$AMBER kexec -t "$pid" --pkram kx2 --kernel "$K" --initrd "$IO/initrd.gz" \
		-o "$IO/kexec2.log" -v4
	echo "FAIL second amber kexec returned $?:"
	tail -5 "$IO/kexec2.log"
	echo done > "$IO/kexec-phase"
	exit 1
fi

if [ "$phase" = 3 ]; then
	echo done > "$IO/kexec-phase"
	read -r pid crc cnt < "$IO/kexec-expect"
	$AMBER lazy-pages --pkram kx2 -o "$IO/lazy.log" -v4 &
	lpid=$!
	for _ in $(seq 300); do [ -S /run/amber/pkram/kx2/lazy-pages.socket ] && break; sleep 0.1; done
	$AMBER restore --pkram kx2 --lazy-pages -d -o "$IO/restore-lazy.log" -v4
	rc=$?
	[ $rc = 0 ] && pass "second kexec, restore --pkram --lazy-pages: rc 0" \
		|| { fail "restore --pkram --lazy-pages: rc $rc"; tail -5 "$IO/restore-lazy.log"; }
	wait $lpid
	rc=$?
	[ $rc = 0 ] && pass "lazy-pages --pkram: rc 0" || { fail "lazy-pages --pkram: rc $rc"; tail -5 "$IO/lazy.log"; }
	intact "after the second kexec, lazily" "$pid" "$crc"
	grep -h "found\|verified\|served\|pages" "$IO/lazy.log" | tail -3 | sed 's/^/  lazy.log: /'
	kill -9 "$pid" 2>/dev/null
	echo "kexec suite: $fails failure(s)"
	[ $fails = 0 ]
	exit
fi
echo "FAIL kexec suite: phase $phase (a kexec or boot went wrong before)"
exit 1
