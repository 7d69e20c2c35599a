#!/bin/bash
# PKRAM selftest, run in the guest by test/vm/run with three kexecs:
#   boot 1: failure cases, fill and preserve trees, pass pkram=PFN on
#   boot 2: verify every file (content, size, mode, owner, times), huge pages
#           kept huge; then hand-make (pkram-craft.py) a super block and run
#           list that are valid and a stream that is corrupt after a file and
#           two folios, and pass that on
#   boot 3: every page of it was reserved; the mount is empty; every page
#           comes back; then hand-make a super block with a bad checksum
#   boot 4: boot goes on, nothing reserved, the mount is empty
set -u
IO=${AMBER_VM_IO:?run me through test/vm/run}
BOOT=${AMBER_VM_BOOT:?}
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
# free memory, kB: MemFree counts only the buddy allocator's pages; pages
# freed in a burst (an umount) park on the per-CPU lists first, whose high
# mark auto-tunes up to several MiB per CPU, so count those too (zoneinfo)
pcpfree() { awk -v kb=$(( $(getconf PAGESIZE) / 1024 )) '$1 == "count:" {n += $2} END {print n * kb}' /proc/zoneinfo; }
memfree() { echo $(( $(awk '/^MemFree:/ {print $2}' /proc/meminfo) + $(pcpfree) )); }
memtotal() { awk '/^MemTotal:/ {print $2}' /proc/meminfo; }
shmem() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }
shmemhuge() { awk '/^ShmemHugePages:/ {print $2}' /proc/meminfo; }
manifest() { # DIR -> sha256 of files, then metadata of every entry (ns times)
	# (checksums first: reading updates atime under relatime, once)
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort > /tmp/list &&
	 find . -type f | LC_ALL=C sort | xargs -r -d '\n' sha256sum &&
	 (echo .; cat /tmp/list) | xargs -d '\n' stat -c '%n %F mode=%a uid=%u gid=%g size=%s blocks=%b atime=%.9X mtime=%.9Y ctime=%.9Z' | sed '/ directory /s/ blocks=[0-9]*//')
}
P=/tmp/pk H=/tmp/pkh G=/tmp/pkg
mkdir -p $P $H $G
here=$(dirname "$0")
# MODE: hand-make a tree (pkram-craft.py) in the pages of a file of a tmpfs
# that is really preserved, so that kexec_file_load() keeps the next
# kernel's segments off them; hand its super block to the next kernel
craft() {
	local mode=$1 sbpfn
	mount -t tmpfs -o pkram=guard,huge=never none $G || return 1
	sbpfn=$(python3 "$here/pkram-craft.py" craft $G/pages "$mode") || return 1
	mount -o remount,preserve,ro $G || return 1
	python3 "$here/pkram-craft.py" verify $G/pages || return 1
	echo "pkram=$sbpfn" > $IO/next-cmdline
}

case $BOOT in
1)
	echo "== boot 1: $(uname -r)"
	check "sysfs shows no super block yet" [ "$(cat /sys/kernel/pkram)" = 0 ]
	# free memory goes back to baseline after unmount without preserve
	fill() { mount -t tmpfs -o pkram=scratch none $P; dd if=/dev/zero of=$P/big bs=1M count=256 status=none; umount $P; }
	fill	# warm up: binaries, slabs
	sync; echo 3 > /proc/sys/vm/drop_caches; base=$(memfree) bpcp=$(pcpfree) sbase=$(shmem)
	fill
	sync; echo 3 > /proc/sys/vm/drop_caches; after=$(memfree) apcp=$(pcpfree) safter=$(shmem)
	echo "free before ${base} kB, after 256 MiB tmpfs + umount ${after} kB (of them on per-CPU lists ${bpcp} -> ${apcp} kB); Shmem ${sbase} -> ${safter} kB"
	check "memory back to baseline after umount without preserve" [ $((base - after)) -lt 16384 -a $((safter - sbase)) -lt 1024 ]

	# preserve refused for unsupported file types; tmpfs stays rw
	for kind in fifo symlink hardlink; do
		mount -t tmpfs -o pkram=bad none $P
		echo data > $P/file
		case $kind in
		fifo) mkfifo $P/d-fifo;;
		symlink) ln -s file $P/d-symlink;;
		hardlink) ln $P/file $P/d-hardlink;;
		esac
		if mount -o remount,preserve,ro $P 2>/tmp/err; then
			fail "preserve refused with a $kind"
		else
			pass "preserve refused with a $kind: $(tr '\n' ' ' </tmp/err)"
		fi
		# the reason, naming the entry, is in the kernel log
		check "refusal message names d-$kind" sh -c "dmesg | grep -q 'pkram: cannot preserve d-$kind: '"
		check "still writable after refused preserve ($kind)" sh -c "echo x > $P/again"
		umount $P
	done
	check "refused preserve left no super block" [ "$(cat /sys/kernel/pkram)" = 0 ]
	if mount -t tmpfs -o pkram=x none $P && ! mount -o remount,preserve $P 2>/dev/null; then
		pass "preserve without ro refused"
	else fail "preserve without ro refused"; fi
	umount $P
	! mount -t tmpfs -o preserve none $P 2>/dev/null && pass "preserve refused at first mount" || { fail "preserve refused at first mount"; umount $P; }

	# remount rw after preserve drops the saved tree
	mount -t tmpfs -o pkram=cancel none $P; echo x > $P/f
	mount -o remount,preserve,ro $P; p1=$(cat /sys/kernel/pkram)
	mount -o remount,rw $P; p2=$(cat /sys/kernel/pkram)
	check "remount rw drops the saved tree (sysfs $p1 -> $p2)" [ "$p1" != 0 -a "$p2" = 0 ]
	umount $P

	# the tree
	mount -t tmpfs -o pkram=tree,size=1200M none $P
	: > $P/empty
	head -c 1 /dev/urandom > $P/one
	head -c 1M /dev/urandom > $P/onemeg
	head -c 4097 /dev/urandom > $P/odd
	t0=$(date +%s)
	head -c 512M /dev/urandom > $P/big512
	echo "wrote 512 MiB in $(( $(date +%s) - t0 ))s"
	truncate -s 100M $P/sparse
	printf 'middle' | dd of=$P/sparse bs=1 seek=50000000 conv=notrunc status=none
	printf 'end' | dd of=$P/sparse bs=1 seek=104857597 conv=notrunc status=none
	fallocate -l 1M $P/fallocated 2>/dev/null || truncate -s 1M $P/fallocated
	mkdir -p $P/a/b/c/d/e $P/emptydir "$P/with space"
	head -c 12345 /dev/urandom > $P/a/b/c/d/e/deep
	echo hello > "$P/with space/f"
	chmod 0600 $P/one; chmod 0751 $P/a/b; chmod 4755 $P/odd; chmod 0700 $P/emptydir
	chown 1234:5678 $P/onemeg $P/a/b/c
	touch -d '2001-02-03 04:05:06.789' $P/empty
	touch -d '1999-12-31 23:59:59' $P/a/b/c/d
	touch -a -d '2010-01-01 00:00:01.5' $P/a/b/c/d/e/deep
	chmod 0711 $P
	# huge pages
	mount -t tmpfs -o pkram=huge,huge=always none $H
	h0=$(shmemhuge)
	head -c 64M /dev/urandom > $H/huge
	echo small > $H/small
	h1=$(shmemhuge)
	echo "ShmemHugePages: $h0 -> $h1 kB"
	check "huge=always file uses huge pages" [ $((h1 - h0)) -ge 60000 ]
	# a tree nobody will load in the next kernel; big, so that preserved
	# pages are all over memory
	orphan_mb=$(( $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) / 1024 - 1100 ))
	mkdir -p /tmp/orphan; mount -t tmpfs -o pkram=orphan,size=$((orphan_mb + 16))M none /tmp/orphan
	head -c ${orphan_mb}M /dev/zero > /tmp/orphan/f; mount -o remount,preserve,ro /tmp/orphan
	echo $((orphan_mb * 1024)) > $IO/orphan.kb
	echo "orphan tree: $orphan_mb MiB"
	manifest $P > $IO/manifest.tree
	manifest $H > $IO/manifest.huge
	echo $((h1 - h0)) > $IO/huge.kb
	t0=$(date +%s%N)
	check "remount,preserve,ro tree" mount -o remount,preserve,ro $P
	t1=$(date +%s%N)
	check "remount,preserve,ro huge" mount -o remount,preserve,ro $H
	echo "preserve of the tree took $(( (t1 - t0) / 1000000 )) ms"
	check "preserved tree is read-only" sh -c "! touch $P/new 2>/dev/null"
	pfn=$(cat /sys/kernel/pkram)
	check "sysfs shows super block pfn ($pfn)" [ "$pfn" != 0 ]
	dmesg | grep -i pkram
	# kexec_file_load must place segments clear of preserved memory: a
	# 320 MiB initrd cannot fit at the top of RAM without overlapping it
	head -c 320M /dev/zero > /tmp/big.initrd
	k=$(sed -n 1p $IO/kexec-list)	# the kernel test/vm/run will kexec next
	if [ -n "$k" ] && kexec -s -l "$k" --initrd=/tmp/big.initrd --command-line=x; then
		dmesg | grep 'clear of preserved memory' | tail -3
		check "kexec_file_load skipped preserved memory" sh -c "dmesg | grep -q 'clear of preserved memory'"
		kexec -u
	else
		fail "kexec_file_load with a 320 MiB initrd"
	fi
	rm /tmp/big.initrd
	memtotal > $IO/memtotal.1
	echo "pkram=$pfn" > $IO/next-cmdline
	;;
2)
	echo "== boot 2: $(uname -r) $(grep -o 'pkram=[0-9]*' /proc/cmdline)"
	dmesg | grep -i pkram
	m0=$(memtotal)
	t0=$(date +%s%N)
	mount -t tmpfs -o pkram=tree none $P	# default size: half of RAM once loaded
	t1=$(date +%s%N)
	df -k $P | tail -1
	echo "load of the tree took $(( (t1 - t0) / 1000000 )) ms"
	h0=$(shmemhuge)
	mount -t tmpfs -o pkram=huge,huge=always none $H
	h1=$(shmemhuge)
	manifest $P > /tmp/m.tree
	manifest $H > /tmp/m.huge
	if diff $IO/manifest.tree /tmp/m.tree; then pass "tree identical after kexec ($(wc -l < /tmp/m.tree) lines: names, types, modes, owners, sizes, times, sha256)"; else fail "tree identical after kexec"; fi
	if diff $IO/manifest.huge /tmp/m.huge; then pass "huge tree identical after kexec"; else fail "huge tree identical after kexec"; fi
	echo "ShmemHugePages: $h0 -> $h1 kB"
	check "huge pages preserved as huge pages" [ $((h1 - h0)) -ge "$(cat $IO/huge.kb)" ]
	check "sparse file still sparse" [ "$(du -k $P/sparse | cut -f1)" -lt 1024 ]
	check "restored tmpfs writable" sh -c "echo more >> $P/one && rm $P/onemeg && mkdir $P/newdir"
	if mount -t tmpfs -o pkram=tree none /mnt; then
		check "second mount of a loaded name is empty" [ -z "$(ls -A /mnt)" ]
		umount /mnt
	else
		fail "second mount of a loaded name"
	fi
	umount $P $H
	m1=$(memtotal)
	echo 0 > /sys/kernel/pkram	# drop the orphan tree
	m2=$(memtotal)
	echo "MemTotal before loading $m0 kB, after loading tree+huge $m1 kB, after dropping orphan $m2 kB"
	ok=$(cat $IO/orphan.kb)
	check "unloaded tree stays reserved until dropped ($ok kB)" [ $((m2 - m1)) -ge $ok -a $((m2 - m1)) -lt $((ok + ok / 20 + 4096)) ]
	echo "MemTotal boot 1 $(cat $IO/memtotal.1) kB, boot 2 $(memtotal) kB"
	check "MemTotal back to boot 1's" [ $(( $(cat $IO/memtotal.1) - $(memtotal) )) -lt 4096 ]
	# next: a valid super block and run list, a corrupt stream
	memtotal > $IO/memtotal.2
	check "hand-made tree with a corrupt stream" craft corrupt-stream
	;;
3)
	echo "== boot 3: $(uname -r) $(grep -o 'pkram=[0-9]*' /proc/cmdline)"
	dmesg | grep -i pkram
	check "hand-made super block accepted" sh -c "dmesg | grep -q 'super block at pfn .*: 1 tree(s)'"
	m0=$(memtotal)
	echo "MemTotal boot 2 $(cat $IO/memtotal.2) kB, boot 3 before mount $m0 kB"
	# 4096 data pages + stream + run pages are reserved until the load
	check "its pages are reserved" [ $(( $(cat $IO/memtotal.2) - m0 )) -ge 16384 ]
	if mount -t tmpfs -o pkram=tree none $P; then
		dmesg | grep 'tmpfs: pkram' | tail -2
		check "corrupt stream reported" sh -c "dmesg | grep -q \"pkram: 'tree' is corrupt\""
		check "mount with a corrupt stream is empty" [ -z "$(ls -A $P)" ]
		check "tmpfs with a corrupt stream is usable" sh -c "echo x > $P/x && rm $P/x"
		umount $P
	else
		fail "mount with a corrupt stream"
	fi
	m1=$(memtotal)
	echo "MemTotal after the failed load $m1 kB (+$((m1 - m0)) kB)"
	check "every page of the corrupt tree returned" [ $((m1 - m0)) -ge 16400 ]
	check "MemTotal back to boot 2's" [ $(( $(cat $IO/memtotal.2) - m1 )) -lt 4096 ]
	check "sysfs: nothing preserved for the next boot" [ "$(cat /sys/kernel/pkram)" = 0 ]
	memtotal > $IO/memtotal.3
	check "hand-made super block with a bad checksum" craft bad-csum
	;;
4)
	echo "== boot 4: $(uname -r) $(grep -o 'pkram=[0-9]*' /proc/cmdline)"
	dmesg | grep -i pkram
	check "bad super block reported" sh -c "dmesg | grep -q 'no valid super block'"
	mount -t tmpfs -o pkram=tree none $P
	check "mount with a bad super block is empty" [ -z "$(ls -A $P)" ]
	umount $P
	echo "MemTotal boot 3 $(cat $IO/memtotal.3) kB, boot 4 $(memtotal) kB"
	check "nothing reserved" [ $(( $(cat $IO/memtotal.3) - $(memtotal) )) -lt 4096 ]
	;;
*)
	fail "unexpected boot $BOOT"
	;;
esac
echo "boot $BOOT: $fails failure(s)"
exit $((fails > 0))
