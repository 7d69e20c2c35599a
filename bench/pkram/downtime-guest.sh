#!/bin/bash
# In-guest half of bench/pkram/downtime: one variant, one guest boot
# sequence. Boot 1 starts the service, fills it, (pre-dumps,) freezes and
# dumps it, and kexecs; the next kernel runs this script again (the phase
# file in $AMBER_VM_IO says where we are), restores the service and waits
# until it answers.
#
# Env: DT_STORE   pkram: amber kexec into the PKRAM store, restore --pkram
#                 disk:  amber dump to an ext4 on the virtio disk (/dev/vda at /run/dt-disk),
#                        sync, kexec (kexec-tools), amber restore from it
#      DT_SERVICE python: kexec-workload.py holding DT_MIB MiB of checked
#                        pages and a 64 MiB working set it keeps writing
#                 redis: redis-server holding about DT_MIB MiB of data
#      DT_PRE     1: a pre-dump while the service runs, the final dump saves
#                 only what changed since (soft-dirty). With pkram the
#                 pre-dump goes into the store (pre-dump --pkram dt -D pre)
#                 and amber kexec takes it as its parent (--prev-images-dir).
#      DT_LIVE    1 (redis over the disk, Debian's kernel): a client on the
#                 host holds one connection through QEMU's user-mode network
#                 (test/vm/run --hostfwd, bench/pkram/live-client.py);
#                 the dump saves it (--tcp-established, network lock), the
#                 next boot locks port $PORT itself until the restore ran,
#                 then writes dt-live-go (holding DT_LIVE_TOKEN) and checks
#                 that the same client sends on the same connection
#      DT_KERNEL  the kernel to kexec into (the one running)
#      DT_MIB     (512)
# Times are host mtimes of marker files in $AMBER_VM_IO (the guest's clock
# restarts with each kernel) and amber's log timestamps; results go to
# $AMBER_VM_IO/dt-result as NAME=VALUE lines.
set -u
AMBER=$PWD/build/amber
WL=$PWD/test/vm/tests/kexec-workload.py
IO=${AMBER_VM_IO:?run me in test/vm/run}
STORE=${DT_STORE:?} SERVICE=${DT_SERVICE:?} PRE=${DT_PRE:-0} K=${DT_KERNEL:?} MIB=${DT_MIB:-512}
LIVE=${DT_LIVE:-0}
REP=$IO/dt-report
RES=$IO/dt-result
DISK=/run/dt-disk   # / is the host's, read-only
PORT=6379
say() { echo "downtime: $*"; }
die() { echo "FAIL $*"; echo done > "$IO/dt-phase"; exit 1; }
mark() { echo x > "$IO/dt-$1"; }
mt() { stat -c %.3Y "$IO/dt-$1"; }
since() { echo "$(mt "$2") - $(mt "$1")" | bc; }   # seconds from marker $1 to $2
result() { echo "$1=$2" >> "$RES"; say "$1 = $2"; }
# seconds since amber's start of the first log line matching $2 in log $1
logt() { sed -n "/$2/{s/^(\([0-9]*\.[0-9]*\)).*/\1/p;q}" "$1"; }
rcli() { redis-cli -p $PORT "$@"; }

mount_disk() {
	modprobe virtio_blk && modprobe ext4 || die "modprobe virtio_blk ext4"
	for _ in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
	mkdir -p $DISK
	mount -t ext4 /dev/vda $DISK || die "mount /dev/vda"
}

# the NIC of test/vm/run --hostfwd, at the address QEMU's user-mode network
# forwards to; with a lock first (boot 2): until the restore, a packet of
# the host's connection would meet no socket and be answered by a reset
net_up() {
	if [ "${1:-}" = locked ]; then
		nft -f - <<-EOF || die "nft: the boot's own lock on port $PORT"
		table inet dt-live {
			chain in { type filter hook input priority -10; tcp dport $PORT drop; }
		}
		EOF
	fi
	modprobe virtio_net || die "modprobe virtio_net"
	for _ in $(seq 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
	ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
		ip route add default via 10.0.2.2 || die "eth0 up"
}
# the host client's connection in CLIENT LIST: "id=N addr=10.0.2.2:P ... cmd=C"
live_client() { rcli client list | tr -d '\r' | grep " addr=10.0.2.2:" | head -1; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; }

# ask the python service for a report; USR1: with the crc check, USR2: without
ask() {
	rm -f "$REP"
	kill -"$2" "$1" 2>/dev/null || return 0
	for _ in $(seq 600); do [ -s "$REP" ] && break; sleep 0.05; done
	cat "$REP" 2>/dev/null
}

start_service() {
	case $SERVICE in
	python)
		rm -f "$REP"
		KEXEC_WL_HOT_MIB=64 setsid python3 "$WL" "$MIB" "$REP" </dev/null >/dev/null 2>&1 &
		pid=$!
		for _ in $(seq 2400); do [ -s "$REP" ] && break; sleep 0.1; done
		read -r _ crc _ < "$REP" || die "the python service did not start"
		;;
	redis)
		# no file open that the next kernel lacks: no log, no rdb, cwd /
		# the host's client comes from 10.0.2.2: not local, so without a
		# password redis answers it -DENIED unless protected mode is off
		bind="127.0.0.1 --protected-mode yes"
		[ "$LIVE" = 1 ] && bind="127.0.0.1 10.0.2.15 --protected-mode no"
		setsid redis-server --port $PORT --bind $bind --save '' --appendonly no \
			--dir / --logfile '' --enable-debug-command yes </dev/null >/dev/null 2>&1 &
		pid=$!
		for _ in $(seq 600); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
		[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server did not start"
		# 1 KiB values: about 1.2 KiB of used_memory a key
		rcli debug populate $((MIB * 1024 * 1024 / 1200)) key 1024 >/dev/null
		check=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
		rcli set check:key "$check" >/dev/null
		say "redis used_memory $(rcli info memory | sed -n 's/^used_memory_human:\(.*\)\r/\1/p'), $(rcli dbsize) keys"
		;;
	esac
	grep -E '^(VmRSS|VmSwap)' /proc/$pid/status | tr -s '\t ' ' ' | tr '\n' ' '; echo
}

# the state to check after the restore, taken right before the freeze
record_state() {
	case $SERVICE in
	python) r=$(ask "$pid" USR2); echo "$pid $crc ${r%% *}" > "$IO/dt-expect";;
	redis) echo "$pid $check $(rcli debug digest)" > "$IO/dt-expect";;
	esac
	if [ "$LIVE" = 1 ]; then
		# the host client's connection, there before the freeze
		local end=$((SECONDS + 180))
		while [ $SECONDS -lt $end ]; do c=$(live_client); [ -n "$c" ] && break; sleep 0.5; done
		[ -n "$c" ] || die "no client connection from the host in 180 s ($(ip -br addr show eth0); $(rcli client list | wc -l) clients)"
		echo "$c" | field id > "$IO/dt-live-id"
		say "live client before the freeze: $(echo "$c" | cut -d' ' -f1-4) cmd=$(echo "$c" | field cmd)"
	fi
}

# after the restore: the host client PINGs and GETs on the connection it
# held across the kexec (it waits for dt-live-go); redis sees the same id
live_check() {
	local id c
	id=$(cat "$IO/dt-live-id")
	local end=$((SECONDS + 90))
	echo "$DT_LIVE_TOKEN" > "$IO/dt-live-go"
	while [ $SECONDS -lt $end ]; do
		c=$(rcli client list | tr -d '\r' | grep "^id=$id " | head -1)
		[ "$(echo "$c" | field cmd)" = get ] && break
		sleep 0.5
	done
	if [ "$(echo "$c" | field cmd)" = get ]; then
		result live_conn kept
		say "live client after the restore: $(echo "$c" | cut -d' ' -f1-4) cmd=get (same id $id, age $(echo "$c" | field age) s)"
	else
		result live_conn lost
		say "live client: connection id $id not used after the restore (clients: $(live_client))"
	fi
}

# between the pre-dump and the final dump: the service works
work_after_predump() {
	case $SERVICE in
	python) sleep 5;;   # its loop rewrites its 64 MiB working set
	redis) # 20000 SETs of 1 KiB over the populated keys' names
		redis-benchmark -p $PORT -t set -n 20000 -r $((MIB * 1024 * 1024 / 1200)) -d 1024 -q \
			| tr '\r' '\n' | tail -1;;
	esac
}

# after the restore: until the service answers, then its whole state
wait_answer() {
	read -r pid want cnt_or_digest < "$IO/dt-expect"
	case $SERVICE in
	python)
		for _ in $(seq 1200); do
			r=$(ask "$pid" USR2); set -- $r
			[ $# = 4 ] && [ "$1" -ge "$cnt_or_digest" ] && break
			sleep 0.05
		done
		mark answered
		[ $# = 4 ] || die "the restored python service does not answer"
		r=$(ask "$pid" USR1); set -- $r
		[ "$2" = "$want" ] && [ "$3" = ok ] || die "python state after the restore: '$r' (crc $want)"
		sleep 0.3; r2=$(ask "$pid" USR2)
		[ "${r2%% *}" -gt "$1" ] || die "counter stuck at $1"
		say "python: $MIB MiB intact (crc $2), counter $cnt_or_digest at the dump -> $1 -> ${r2%% *}"
		;;
	redis)
		# the client connections of boot 1 were in the old kernel: a new one
		for _ in $(seq 1200); do
			[ "$(rcli ping 2>/dev/null)" = PONG ] && g=$(rcli get check:key) && [ "$g" = "$want" ] && break
			sleep 0.05
		done
		mark answered
		[ "${g:-}" = "$want" ] || die "redis after the restore: GET check:key '${g:-}' (want $want)"
		d=$(rcli debug digest)
		[ "$d" = "$cnt_or_digest" ] || die "redis DEBUG DIGEST $d, was $cnt_or_digest"
		say "redis: PING and GET check:key answer, DEBUG DIGEST as at the dump ($d), $(rcli dbsize) keys"
		;;
	esac
}

phase=$(cat "$IO/dt-phase" 2>/dev/null || echo 1)
say "$STORE $SERVICE pre=$PRE ${MIB} MiB, phase $phase, kernel $(uname -r), $(nproc) cpus, $(free -m | awk '/Mem:/{print $2}') MiB"

if [ "$phase" = 1 ]; then
	: > "$RES"
	echo 30000 > /proc/sys/kernel/ns_last_pid   # far from the next boot's pids
	[ $STORE = disk ] && mount_disk
	[ "$LIVE" = 1 ] && net_up
	start_service
	say "service pid $pid"
	prev=() D=$DISK/img tcp=()
	[ "$LIVE" = 1 ] && tcp=(--tcp-established)
	[ $STORE = disk ] && { rm -rf $D; mkdir -p $D; }
	if [ "$PRE" = 1 ]; then
		if [ $STORE = disk ]; then
			mark pre0
			$AMBER pre-dump -t $pid -D $D/pre --track-mem=soft-dirty -o "$IO/dt-predump.log" -v4 \
				|| die "pre-dump"
			mark pre1
			sync
			result predump_s "$(since pre0 pre1)"
			work_after_predump
			prev=(--track-mem=soft-dirty --prev-images-dir ../pre)
		else
			# the pre-dump into the store, the final dump over it
			mark pre0
			$AMBER pre-dump -t $pid --pkram dt -D pre --track-mem=soft-dirty \
				-o "$IO/dt-predump.log" -v4 || die "pre-dump into the store"
			mark pre1
			result predump_s "$(since pre0 pre1)"
			work_after_predump
			prev=(--prev-images-dir pre)
		fi
	fi
	record_state
	echo 2 > "$IO/dt-phase"
	if [ $STORE = pkram ]; then
		mark t0
		$AMBER kexec -t $pid --pkram dt "${prev[@]}" "${tcp[@]}" --kernel "$K" --initrd "$IO/initrd.gz" \
			-o "$IO/dt-kexec.log" -v4
		die "amber kexec returned $? ($(tail -3 "$IO/dt-kexec.log"))"
	fi
	mark t0
	$AMBER dump -t $pid -D $D/final "${prev[@]}" "${tcp[@]}" -o "$IO/dt-dump.log" -v4 || die "dump to the disk"
	mark t1
	sync
	kexec -s -l "$K" --initrd="$IO/initrd.gz" --command-line="$(cat /proc/cmdline)" || die "kexec -l"
	mark t2
	result final_MiB "$(du -sm $D/final | cut -f1)"
	umount $DISK
	kexec -e
	die "kexec -e returned"
fi

if [ "$phase" = 2 ]; then
	mark tb
	tcp=()
	[ "$LIVE" = 1 ] && tcp=(--tcp-established)
	echo done > "$IO/dt-phase"
	if [ $STORE = pkram ]; then
		if [ "$PRE" = 1 ]; then
			# the final dump's pages (the store's top) and the pre-dump's
			# (its parent once folded); restore --pkram uses the mount
			mkdir -p /run/amber/pkram/dt
			mount -t tmpfs -o pkram=dt none /run/amber/pkram/dt || die "mount the store"
			result final_MiB "$(du -cm /run/amber/pkram/dt/pages-*.img | tail -1 | cut -f1)"
			result parent_MiB "$(du -cm /run/amber/pkram/dt/parent/pages-*.img | tail -1 | cut -f1)"
		fi
		mark tr0
		$AMBER restore --pkram dt -d -o "$IO/dt-restore.log" -v4 || die "restore --pkram"
		wait_answer
		d=$(logt "$IO/dt-kexec.log" "every image written")
		# the last timestamped line: the kernel loaded (the "rebooting"
		# message itself has no timestamp)
		r=$(sed -n 's/^(\([0-9]*\.[0-9]*\)).*/\1/p' "$IO/dt-kexec.log" | tail -1)
		result final_dump_s "$d"
		result ready_s "$(echo "$r - $d" | bc)"
		result boot_s "$(echo "$(since t0 tr0) - $r" | bc)"
	else
		mount_disk
		[ "$LIVE" = 1 ] && net_up locked
		mark tr0
		$AMBER restore -D $DISK/img/final -d "${tcp[@]}" -o "$IO/dt-restore.log" -v4 \
			|| die "restore from the disk"
		[ "$LIVE" = 1 ] && nft delete table inet dt-live
		wait_answer
		[ "$LIVE" = 1 ] && live_check
		result final_dump_s "$(since t0 t1)"
		result ready_s "$(since t1 t2)"
		# up to the restore command: a booted system with its disk mounted
		result boot_s "$(since t2 tr0)"
		result mount_s "$(since tb tr0)"
	fi
	result restore_s "$(since tr0 answered)"
	result amber_restore_s "$(logt "$IO/dt-restore.log" "restore: restored")"
	result downtime_s "$(since t0 answered)"
	grep -h "dumped\|written\|preserved\|rebooting" "$IO"/dt-kexec.log "$IO"/dt-dump.log 2>/dev/null | sed 's/^/  dump: /'
	grep -h "found\|verified\|moved\|restored" "$IO/dt-restore.log" | sed 's/^/  restore: /'
	case $SERVICE in python) kill -9 $pid;; redis) rcli shutdown nosave >/dev/null 2>&1;; esac
	exit 0
fi
die "phase $phase (a kexec or boot went wrong before)"
