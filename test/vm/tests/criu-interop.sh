#!/bin/bash
# In the guest (Debian's 6.12, where Debian's criu 3.17 works): amber's page
# server and stock CRIU, both ways, plus CRIU's iterative pre-copy into
# amber's servers. Run from the repository root (needs build/amber).
#
#   1. criu dump --page-server  -> amber page-server;   criu restore
#   2. amber dump --page-server -> criu page-server;    amber restore
#   3. criu pre-dump --track-mem, then criu dump --prev-images-dir, each into
#      its own amber page-server (the second with --prev-images-dir);
#      only the changed pages go the second time; criu restore
#   4. the same with amber dumping into criu page-servers; amber restore
# Each restored tree is a bash that, woken, writes the md5 of the 2 MB it
# holds: it must match.
set -u
AMBER=$PWD/build/amber
W=$(mktemp -d /tmp/interop.XXXXXX)
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
for m in tun veth nf_tables inet_diag unix_diag netlink_diag packet_diag tcp_diag udp_diag; do
	modprobe -q $m 2>/dev/null || true
done
criu check >$W/criu-check 2>&1 || { echo "criu check:"; tail -5 $W/criu-check; }
want=$(seq 1 300000 | tr -d '\n' | md5sum | cut -d' ' -f1)

# tree NAME: starts the bash, prints its pid once it holds its data
tree() {
	local d=$W/$1
	mkdir -p $d
	setsid bash -c "x=\$(seq 1 300000 | tr -d '\n'); echo ready > $d/ready; sleep 1000; printf %s \"\$x\" | md5sum > $d/sum" \
		</dev/null >$d/out 2>&1 &
	local pid=$!
	for _ in $(seq 500); do [ -e $d/ready ] && break; sleep 0.02; done
	sleep 0.2
	echo $pid
}
# check NAME PID: wake the restored bash (kill its sleep), compare the md5
check() {
	local d=$W/$1 kid
	kid=$(cat /proc/$2/task/$2/children 2>/dev/null | cut -d' ' -f1)
	[ -n "$kid" ] || { fail "$1: no restored tree"; return; }
	kill -9 $kid
	for _ in $(seq 500); do [ -s $d/sum ] && break; sleep 0.02; done
	if [ "$(cut -d' ' -f1 $d/sum 2>/dev/null)" = "$want" ]; then pass "$1: restored, data intact"
	else fail "$1: checksum $(cat $d/sum 2>/dev/null) want $want"; fi
}
# server DIR ARGS...: amber page-server on a free port; sets SPID, SPORT
server() {
	local dir=$1; shift
	coproc SRV { exec $AMBER page-server --address 127.0.0.1 --port 0 -D "$dir" "$@" -v4 -o "$dir.log"; }
	SPID=$SRV_PID
	local line; read -r line <&"${SRV[0]}"
	SPORT=$(echo "$line" | sed -n 's/.*:\([0-9]*\) (.*/\1/p')
}
waitsrv() { wait $SPID; }
copy_in() { for f in "$1"/*; do [ -L "$f" ] || cp "$f" "$2/"; done; }
bytes() { du -bc "$@" | tail -1 | cut -f1; }
# chain_in WHO DIR: DIR/srv1 and srv2 got a pre-dump and a dump against
# it; the dump must have sent only what changed; put both beside DIR/1, 2
chain_in() {
	local full inc
	full=$(bytes $2/srv1/pages-*.img) inc=$(bytes $2/srv2/pages-*.img)
	echo "$1 pre-dump sent $full bytes of pages, the dump $inc"
	[ "$inc" -lt $((full / 4)) ] && pass "$1 dump sent only what changed" \
		|| fail "$1 dump sent $inc of $full bytes"
	copy_in $2/srv1 $2/1
	copy_in $2/srv2 $2/2
}

# 1. CRIU client, amber server
pid=$(tree c2a)
server $W/c2a/srv
criu dump -t $pid -D $W/c2a --page-server --address 127.0.0.1 --port $SPORT -v4 -o dump.log \
	&& pass "criu dump into amber page-server" || { fail "criu dump into amber page-server"; tail -5 $W/c2a/dump.log; }
waitsrv && pass "amber page-server exit 0 after criu's dump" || fail "amber page-server status"
copy_in $W/c2a/srv $W/c2a
criu restore -D $W/c2a -d -v4 -o restore.log && check c2a $pid || { fail "criu restore"; tail -5 $W/c2a/restore.log; }
kill -9 $pid 2>/dev/null

# 2. amber client, CRIU server
pid=$(tree a2c)
mkdir -p $W/a2c/srv
port=27419
criu page-server -D $W/a2c/srv --address 127.0.0.1 --port $port -v4 -o $W/a2c/ps.log &
cps=$!
for _ in $(seq 100); do grep -q "Waiting for" $W/a2c/ps.log 2>/dev/null && break; sleep 0.05; done
$AMBER dump -t $pid -D $W/a2c --page-server --address 127.0.0.1 --port $port -v4 -o $W/a2c/dump.log \
	&& pass "amber dump into criu page-server" || { fail "amber dump into criu page-server"; tail -5 $W/a2c/dump.log; }
wait $cps && pass "criu page-server exit 0 after amber's dump" || fail "criu page-server status"
copy_in $W/a2c/srv $W/a2c
$AMBER restore -D $W/a2c -d -v4 -o $W/a2c/restore.log && check a2c $pid || { fail "amber restore"; tail -5 $W/a2c/restore.log; }
kill -9 $pid 2>/dev/null

# 3. CRIU iterative pre-copy into amber servers
pid=$(tree inc)
mkdir -p $W/inc/1 $W/inc/2
server $W/inc/srv1
criu pre-dump -t $pid -D $W/inc/1 --track-mem --page-server --address 127.0.0.1 --port $SPORT \
	-v4 -o pre.log && pass "criu pre-dump into amber page-server" || { fail "criu pre-dump"; tail -5 $W/inc/1/pre.log; }
waitsrv || fail "amber page-server (pre-dump) status"
server $W/inc/srv2 --prev-images-dir ../srv1
criu dump -t $pid -D $W/inc/2 --track-mem --prev-images-dir ../1 --page-server --address 127.0.0.1 \
	--port $SPORT -v4 -o dump.log && pass "criu dump against the pre-dump into amber page-server" \
	|| { fail "criu incremental dump"; tail -5 $W/inc/2/dump.log; }
waitsrv || fail "amber page-server (dump) status"
chain_in "CRIU's" $W/inc
criu restore -D $W/inc/2 -d -v4 -o restore.log && check inc $pid || { fail "criu restore of the chain"; tail -5 $W/inc/2/restore.log; }
kill -9 $pid 2>/dev/null

# 4. amber's iterative pre-copy into CRIU's servers (criu page-server
#    --prev-images-dir makes the parent link, as amber's does)
pid=$(tree ainc)
crit_srv() { # DIR PORT [PREV]: criu page-server, waits until it listens
	local args=(-D "$1" --address 127.0.0.1 --port $2)
	[ -n "${3:-}" ] && args+=(--prev-images-dir "$3")
	mkdir -p "$1"
	criu page-server "${args[@]}" -v4 -o "$1.log" &
	cps=$!
	for _ in $(seq 100); do grep -q "Waiting for" "$1.log" 2>/dev/null && break; sleep 0.05; done
}
crit_srv $W/ainc/srv1 27420
$AMBER pre-dump -t $pid -D $W/ainc/1 --track-mem --page-server --address 127.0.0.1 --port 27420 \
	-v4 -o $W/ainc/pre.log && pass "amber pre-dump into criu page-server" || { fail "amber pre-dump"; tail -5 $W/ainc/pre.log; }
wait $cps || fail "criu page-server (pre-dump) status"
crit_srv $W/ainc/srv2 27421 ../srv1
$AMBER dump -t $pid -D $W/ainc/2 --track-mem --prev-images-dir ../1 --page-server --address 127.0.0.1 \
	--port 27421 -v4 -o $W/ainc/dump.log && pass "amber dump against the pre-dump into criu page-server" \
	|| { fail "amber incremental dump into criu"; tail -5 $W/ainc/dump.log; }
wait $cps || fail "criu page-server (dump) status"
chain_in "amber's" $W/ainc
$AMBER restore -D $W/ainc/2 -d -v4 -o $W/ainc/restore.log && check ainc $pid \
	|| { fail "amber restore of the chain"; tail -5 $W/ainc/restore.log; }
kill -9 $pid 2>/dev/null

echo "criu-interop: $fails failure(s)"
[ $fails = 0 ]
