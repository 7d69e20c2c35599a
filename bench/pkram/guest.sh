#!/bin/bash
# In-guest half of bench/pkram/run: boot 1 fills and preserves 1 GiB twice
# (4 KiB pages, huge pages) and times a plain copy of the same bytes; boot 2
# times the loads and the same copy again. Results go to $AMBER_VM_IO/bench.*.
set -eu
IO=${AMBER_VM_IO:?} BOOT=${AMBER_VM_BOOT:?}
SIZE_MB=${PKRAM_BENCH_MB:-1024}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
mkdir -p /tmp/b4k /tmp/b2m /tmp/copy
# cost of running mount(8) itself (exec under emulation dominates small numbers)
mount_overhead() {
	local best= i t0 d
	mkdir -p /tmp/nop
	for i in 1 2 3; do
		t0=$(ms); mount -t tmpfs none /tmp/nop; mount -o remount,ro /tmp/nop; d=$(( ($(ms) - t0) / 2 ))
		umount /tmp/nop
		[ -z "$best" ] || [ $d -lt $best ] && best=$d
	done
	echo $best
}
mount_overhead > $IO/bench.nop.$BOOT
echo "one mount(8) call with nothing to do: $(cat $IO/bench.nop.$BOOT) ms"
if [ "$BOOT" = 1 ]; then
	mount -t tmpfs -o pkram=b4k,huge=never,size=2G none /tmp/b4k
	mount -t tmpfs -o pkram=b2m,huge=always,size=2G none /tmp/b2m
	for k in b4k b2m; do
		dd if=/dev/urandom of=/tmp/$k/data bs=1M count=$SIZE_MB status=none
		grep -E '^(Shmem|ShmemHugePages):' /proc/meminfo | tr -s ' ' | tr '\n' ' '; echo
		# copy the same bytes within the guest, to a tmpfs with the same
		# page size, twice, keep the best
		mount -t tmpfs -o size=2G,huge=$([ $k = b2m ] && echo always || echo never) none /tmp/copy
		best=
		for i in 1 2; do
			t0=$(ms); cp /tmp/$k/data /tmp/copy/data; t1=$(ms); rm /tmp/copy/data
			d=$((t1 - t0)); [ -z "$best" ] || [ $d -lt $best ] && best=$d
		done
		umount /tmp/copy
		echo $best > $IO/bench.copy.$k
		sha256sum /tmp/$k/data | cut -d' ' -f1 > $IO/bench.sum.$k
		t0=$(ms); mount -o remount,preserve,ro /tmp/$k; t1=$(ms)
		echo $((t1 - t0)) > $IO/bench.save.$k
		dmesg | sed -n "s/.*pkram: preserved '$k': .* in \([0-9]*\) us/\1/p" | tail -1 > $IO/bench.ksave.$k
		echo "$k: copy ${best} ms, save $((t1 - t0)) ms"
	done
	dmesg | grep -i pkram
	echo "pkram=$(cat /sys/kernel/pkram)" > $IO/next-cmdline
else
	for k in b4k b2m; do
		t0=$(ms); mount -t tmpfs -o pkram=$k,size=2G none /tmp/$k; t1=$(ms)
		echo $((t1 - t0)) > $IO/bench.load.$k
		dmesg | sed -n "s/.*pkram: loaded '$k': .* in \([0-9]*\) us/\1/p" | tail -1 > $IO/bench.kload.$k
		echo "$k: load $((t1 - t0)) ms"
	done
	grep -E '^(Shmem|ShmemHugePages):' /proc/meminfo | tr -s ' ' | tr '\n' ' '; echo
	for k in b4k b2m; do
		s=$(sha256sum /tmp/$k/data | cut -d' ' -f1)
		[ "$s" = "$(cat $IO/bench.sum.$k)" ] || { echo "FAIL $k checksum"; exit 1; }
	done
	echo "checksums OK"
	# the same copy again in this boot: the emulated guest's speed varies
	# with host load, so each phase is also compared with its own boot's copy
	for k in b4k b2m; do
		mount -t tmpfs -o size=2G,huge=$([ $k = b2m ] && echo always || echo never) none /tmp/copy
		best=
		for i in 1 2; do
			t0=$(ms); cp /tmp/$k/data /tmp/copy/data; t1=$(ms); rm /tmp/copy/data
			d=$((t1 - t0)); [ -z "$best" ] || [ $d -lt $best ] && best=$d
		done
		umount /tmp/copy
		echo $best > $IO/bench.copy2.$k
		echo "$k: copy in boot 2 ${best} ms"
	done
	dmesg | grep -i pkram
fi
