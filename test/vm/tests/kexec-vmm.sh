#!/bin/bash
# In the guest, on our PKRAM kernel (test/vm/vmtest.sh, suite "kexec-vmm"):
# a VMM-like program whose "guest RAM" is a file on a tmpfs mounted
# pkram=vmram, mapped shared, carried across a kexec by
# `amber kexec --preserve-mount`: the mapping is saved by reference (the
# store holds no copy of it) and found again in the next kernel.
#
#   bash test/vm/tests/kexec-vmm.sh BZIMAGE [MIB]
#
# Boot 1: kexec-workload.py MIB REPORT /run/vmram/guest-ram; refusals
# first, each leaving it running with its memory intact: a
# --preserve-mount that is no pkram= tmpfs (before anything is frozen), and
# a failure to preserve that tmpfs, which comes after the tree is gone
# (AMBER_FAULT=kexec-preserve-mount): the tree is restored in place.
# Then amber kexec --preserve-mount /run/vmram. Boot 2: restore --pkram:
# the tmpfs is mounted again at /run/vmram, the program maps the same file
# and goes on, its memory intact; the store's page images are a fraction
# of MIB.
set -u
K=${1:?bzImage}
MIB=${2:-128}
AMBER=$PWD/build/amber
WL=$PWD/test/vm/tests/kexec-workload.py
IO=${AMBER_VM_IO:?run me in test/vm/run}
RAM=/run/vmram
NAME=vm
STORE=/run/amber/pkram/$NAME
REP=$IO/vmm-report
. "$(dirname "$0")/lib.sh"
maps_file() { grep -q " $RAM/guest-ram$" /proc/$1/maps; }

phase=$(cat "$IO/vmm-phase" 2>/dev/null || echo 1)
echo "kexec-vmm suite: phase $phase, kernel $(uname -r)"

if [ "$phase" = 1 ]; then
	[ -e /sys/kernel/pkram ] || { echo "FAIL no PKRAM in this kernel"; exit 1; }
	echo 30000 > /proc/sys/kernel/ns_last_pid
	mkdir -p $RAM
	mount -t tmpfs -o pkram=vmram none $RAM || { echo "FAIL mount pkram=vmram"; exit 1; }
	setsid python3 "$WL" "$MIB" "$REP" $RAM/guest-ram </dev/null >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1200); do [ -s "$REP" ] && break; sleep 0.1; done
	read -r _ crc _ < "$REP" || { echo "FAIL workload did not start"; exit 1; }
	maps_file $pid && pass "the program maps $RAM/guest-ram shared" || fail "no guest-ram mapping"
	echo "workload pid $pid, $MIB MiB on $RAM, crc $crc"

	# a. not a pkram= tmpfs: refused before anything is frozen
	$AMBER kexec -t "$pid" --pkram $NAME --kernel "$K" --preserve-mount /tmp -o "$IO/vmm-a.log" -v4
	rc=$?
	[ $rc = 1 ] && grep -q "not the root of a tmpfs mounted with pkram=NAME" "$IO/vmm-a.log" \
		&& pass "--preserve-mount of no pkram= tmpfs: refused (rc 1)" || fail "not pkram: rc $rc"
	intact "not pkram" "$pid" "$crc"

	# b. the tmpfs cannot be preserved: that comes after the tree is gone,
	# so amber restores it in place from the store
	AMBER_FAULT=kexec-preserve-mount $AMBER kexec -t "$pid" --pkram $NAME --kernel "$K" \
		--preserve-mount $RAM -o "$IO/vmm-b.log" -v4
	rc=$?
	if [ $rc = 1 ] && grep -q "restored in place" "$IO/vmm-b.log" && maps_file $pid; then
		pass "preserve of the tree's tmpfs failed: rc 1, the tree restored in place"
	else
		fail "failed preserve-mount: rc $rc"; tail -5 "$IO/vmm-b.log"
	fi
	intact "restored in place" "$pid" "$crc"
	[ "$(cat /sys/kernel/pkram)" = 0 ] && pass "nothing preserved after it" \
		|| fail "/sys/kernel/pkram = $(cat /sys/kernel/pkram)"
	touch $RAM/rw-check && rm $RAM/rw-check && pass "$RAM is read-write again" \
		|| fail "$RAM stayed read-only"
	umount $STORE 2>/dev/null; rmdir $STORE 2>/dev/null

	if [ $fails != 0 ]; then echo "kexec-vmm suite: $fails failure(s) before the kexec"; exit 1; fi
	r=$(ask "$pid"); cnt=${r%% *}
	echo "$pid $crc $cnt" > "$IO/vmm-expect"
	echo 2 > "$IO/vmm-phase"
	$AMBER kexec -t "$pid" --pkram $NAME --kernel "$K" --initrd "$IO/initrd.gz" \
		--preserve-mount $RAM -o "$IO/vmm-kexec.log" -v4
	echo "FAIL amber kexec returned $? (see vmm-kexec.log):"
	tail -5 "$IO/vmm-kexec.log"
	echo done > "$IO/vmm-phase"
	exit 1
fi

if [ "$phase" = 2 ]; then
	echo done > "$IO/vmm-phase"
	read -r pid crc cnt < "$IO/vmm-expect"
	grep -q " $RAM " /proc/self/mountinfo && fail "$RAM mounted before the restore"
	# the guest RAM was not copied into the store: saved by reference
	mkdir -p $STORE
	mount -t tmpfs -o pkram=$NAME none $STORE || fail "mount the preserved store"
	kib=$(du -ck $STORE/pages-*.img | tail -1 | cut -f1)
	[ "$kib" -lt $((MIB * 1024 / 4)) ] && pass "the store's pages: $kib KiB for $MIB MiB of guest RAM" \
		|| fail "the store holds $kib KiB of pages: the guest RAM was copied"
	grep -q "^vmram $RAM$" $STORE/kexec-mounts && pass "kexec-mounts names vmram at $RAM" \
		|| fail "kexec-mounts: $(cat $STORE/kexec-mounts)"
	$AMBER restore --pkram $NAME -d -o "$IO/vmm-restore.log" -v4
	rc=$?
	[ $rc = 0 ] && pass "restore --pkram: rc 0" || { fail "restore --pkram: rc $rc"; tail -5 "$IO/vmm-restore.log"; }
	grep -q "the tree's tmpfs 'vmram' is back at $RAM" "$IO/vmm-restore.log" \
		&& pass "$RAM mounted again by the restore" || fail "no remount of $RAM in the log"
	maps_file $pid && pass "the restored program maps $RAM/guest-ram again" || fail "no guest-ram mapping"
	intact "after kexec" "$pid" "$crc"
	r=$(ask "$pid"); set -- $r
	[ "${1:-0}" -ge "$cnt" ] && pass "counter went on from the dump's ($cnt -> ${1:-})" \
		|| fail "counter ${1:-none} below the dump's $cnt"
	echo "kexec-vmm suite: $fails failure(s)"
	kill -9 "$pid" 2>/dev/null
	[ $fails = 0 ]
	exit
fi
echo "FAIL kexec-vmm suite: phase $phase (a kexec or boot went wrong before)"
exit 1
