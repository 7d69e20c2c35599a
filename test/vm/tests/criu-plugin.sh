#!/bin/bash
# In the guest, on our PKRAM kernel (test/vm/vmtest.sh, suite "criu-plugin"):
# stock CRIU (Debian's 3.17) with amber's plugin (criu-plugin/, built as
# build/criu-plugin/amber_criu.so) carries a program across a kexec in a
# PKRAM store.
#
#   bash test/vm/tests/criu-plugin.sh BZIMAGE
#
# Boot 1: a 32 MiB checked program (kexec-workload.py) is dumped by
# `criu dump --libdir` into a tmpfs mounted with pkram=cp; the plugin seals
# the set (amber.sums, pages included; a pre-dump chain before it, sealed
# by its final dump, left running); the store is preserved and this
# script kexecs into BZIMAGE itself (kexec-tools, pkram=PFN nokaslr).
# Boot 2 (guest-init runs the script again; the phase file says where we
# are): the store is mounted by name; a byte flipped in the pages is
# refused by the plugin naming the file, nothing created; the same set
# without its seal on another PKRAM store is refused; the intact set is
# restored by `criu restore --libdir` and the program goes on with its
# memory intact.
set -u
K=${1:?bzImage}
PLUGIN=$PWD/build/criu-plugin
WL=$PWD/test/vm/tests/kexec-workload.py
IO=${AMBER_VM_IO:?run me in test/vm/run}
STORE=/run/criu-plugin/cp
REP=$IO/cp-report
. "$(dirname "$0")/lib.sh"

phase=$(cat "$IO/cp-phase" 2>/dev/null || echo 1)
echo "criu-plugin suite: phase $phase, kernel $(uname -r), $(criu --version | head -1)"
[ -f "$PLUGIN/amber_criu.so" ] || { echo "FAIL no $PLUGIN/amber_criu.so (make plugin)"; exit 1; }

if [ "$phase" = 1 ]; then
	[ -e /sys/kernel/pkram ] || { echo "FAIL no PKRAM in this kernel"; exit 1; }
	echo 30000 > /proc/sys/kernel/ns_last_pid
	setsid python3 "$WL" 32 "$REP" </dev/null >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1200); do [ -s "$REP" ] && break; sleep 0.1; done
	read -r cnt crc _ < "$REP" || { echo "FAIL workload did not start"; exit 1; }
	echo "workload pid $pid, crc $crc"
	# a chain (soft-dirty is here, not on the CI host): CRIU calls no plugin
	# hook after a pre-dump, so the dump seals its parents; the program runs on
	mkdir -p /tmp/cp-chain/pre /tmp/cp-chain/final
	criu pre-dump -t "$pid" -D /tmp/cp-chain/pre --libdir "$PLUGIN" -W "$IO" -v4 -o "$IO/cp-pre.log"
	rc1=$?
	criu dump -t "$pid" -D /tmp/cp-chain/final --prev-images-dir ../pre --track-mem --leave-running \
		--libdir "$PLUGIN" -W "$IO" -v4 -o "$IO/cp-chain.log"
	rc2=$?
	if [ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q ' pages-1.img$' /tmp/cp-chain/pre/amber.sums \
		&& grep -q ' pages-1.img$' /tmp/cp-chain/final/amber.sums \
		&& grep -q "pre-dump 1 level(s) up sealed" "$IO/cp-chain.log"; then
		pass "pre-dump + dump --prev-images-dir: both sealed, pages listed"
	else
		fail "chain: pre-dump rc $rc1, dump rc $rc2"; tail -5 "$IO/cp-chain.log"
	fi
	mkdir -p "$STORE"
	mount -t tmpfs -o pkram=cp none "$STORE" || { echo "FAIL mount a pkram= tmpfs"; exit 1; }
	r=$(ask "$pid"); cnt=${r%% *}   # the counter just before the dump
	criu dump -t "$pid" -D "$STORE" --libdir "$PLUGIN" -W "$IO" -v4 -o "$IO/cp-dump.log"
	rc=$?
	[ $rc = 0 ] && pass "criu dump with the plugin: rc 0" || { fail "criu dump: rc $rc"; tail -5 "$IO/cp-dump.log"; }
	grep -q 'Plugin "amber"' "$IO/cp-dump.log" && grep -q "image set sealed" "$IO/cp-dump.log" \
		&& pass "the plugin was loaded and sealed the set" || fail "no seal in cp-dump.log"
	grep -q ' pages-1.img$' "$STORE/amber.sums" && grep -q ' inventory.img$' "$STORE/amber.sums" \
		&& pass "amber.sums lists the pages and the inventory" || fail "amber.sums: $(cat "$STORE/amber.sums")"
	kill -0 "$pid" 2>/dev/null && fail "the dumped program still runs"
	if [ $fails != 0 ]; then echo "criu-plugin suite: $fails failure(s) before the kexec"; exit 1; fi
	echo "$pid $crc $cnt" > "$IO/cp-expect"
	mount -o remount,preserve,ro "$STORE" || { echo "FAIL preserve the store"; exit 1; }
	pfn=$(cat /sys/kernel/pkram)
	cl=$(sed -e 's/ *\bpkram=[^ ]*//g; s/ *\bnokaslr\b//g; s/ *\bkaslr\b//g' /proc/cmdline)
	echo 2 > "$IO/cp-phase"
	kexec -s -l "$K" --initrd="$IO/initrd.gz" --command-line="$cl pkram=$pfn nokaslr" \
		|| { echo "FAIL kexec -l"; echo done > "$IO/cp-phase"; exit 1; }
	sync
	kexec -e
	echo "FAIL kexec -e returned $?"
	echo done > "$IO/cp-phase"
	exit 1
fi

if [ "$phase" = 2 ]; then
	echo done > "$IO/cp-phase"
	read -r pid crc cnt < "$IO/cp-expect"
	mkdir -p "$STORE"
	mount -t tmpfs -o pkram=cp none "$STORE" || fail "mount the preserved store"
	[ -s "$STORE/amber.sums" ] && pass "the store came back with its seal" || fail "store: $(ls "$STORE")"

	# a flipped byte in the pages: the plugin refuses before CRIU forks
	pages=$STORE/pages-1.img
	off=$(( $(stat -c %s "$pages") / 2 ))
	orig=$(dd if="$pages" bs=1 skip=$off count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
	printf "\\x$(printf %02x $(( 0x$orig ^ 0xff )))" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null
	criu restore -D "$STORE" --libdir "$PLUGIN" -d -W "$IO" -v4 -o "$IO/cp-restore-bad.log"
	rc=$?
	if [ $rc != 0 ] && grep -q "pages-1.img fails its checksum" "$IO/cp-restore-bad.log" \
		&& ! kill -0 "$pid" 2>/dev/null; then
		pass "damaged pages: refused naming pages-1.img, nothing created"
	else
		fail "damaged pages: rc $rc, pid $pid $(kill -0 "$pid" 2>/dev/null && echo exists)"
	fi
	printf "\\x$orig" | dd of="$pages" bs=1 seek=$off conv=notrunc 2>/dev/null

	# the same set without its seal, on a PKRAM store: refused
	other=/run/criu-plugin/unsealed
	mkdir -p "$other"
	mount -t tmpfs -o pkram=unsealed none "$other" && cp -a "$STORE"/*.img "$other"/
	criu restore -D "$other" --libdir "$PLUGIN" -d -W "$IO" -v4 -o "$IO/cp-restore-unsealed.log"
	rc=$?
	[ $rc != 0 ] && grep -q "not sealed by this plugin" "$IO/cp-restore-unsealed.log" \
		&& ! kill -0 "$pid" 2>/dev/null && pass "unsealed set on a PKRAM store: refused" \
		|| fail "unsealed set: rc $rc"
	umount "$other"

	criu restore -D "$STORE" --libdir "$PLUGIN" -d -W "$IO" -v4 -o "$IO/cp-restore.log"
	rc=$?
	[ $rc = 0 ] && grep -q "image set matches amber.sums" "$IO/cp-restore.log" \
		&& pass "criu restore with the plugin: checked and restored" \
		|| { fail "criu restore: rc $rc"; tail -5 "$IO/cp-restore.log"; }
	r1=$(ask "$pid"); sleep 0.3; r2=$(ask "$pid")
	set -- $r1 $r2
	if [ $# = 8 ] && [ "$2" = "$crc" ] && [ "$3" = ok ] && [ "$7" = ok ] && [ "$5" -gt "$1" ] \
		&& [ "$1" -ge "$cnt" ]; then
		pass "after kexec: running, memory intact, counter $cnt -> $1 -> $5"
	else
		fail "after kexec: report '$r1' '$r2' (want crc $crc, counter past $cnt)"
	fi
	kill -9 "$pid" 2>/dev/null
	umount "$STORE"
	echo "criu-plugin suite: $fails failure(s)"
	[ $fails = 0 ]
	exit
fi
echo "FAIL criu-plugin suite: phase $phase (a kexec or boot went wrong before)"
exit 1
