#!/bin/bash
# Dumps a real process with amber and decodes every image it wrote with
# Debian's crit. pages-*.img is raw page data by the format (CRIU's too):
# crit has nothing to decode there, so it is checked for size only.
set -euo pipefail
amber=$(realpath "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"; kill -9 $pid 2>/dev/null || true' EXIT
cd "$dir"
# Besides memory, one of each anonymous-inode file amber saves (an
# eventfd, a signalfd, an armed timerfd, an epoll watching them, an
# inotify watching the working directory) and inet sockets: a TCP
# listener (v4, dual-stack v6), UDP bound and connected.
setsid python3 -c 'import ctypes, os, select, socket, time
x = bytearray(8 << 20)
for i in range(0, len(x), 4096): x[i] = 1
libc = ctypes.CDLL(None, use_errno=True)
efd = os.eventfd(5)
mask = ctypes.c_uint64(1 << 9)
sfd = libc.signalfd(-1, ctypes.byref(mask), 0)
tfd = libc.timerfd_create(1, 0)
its = (ctypes.c_long * 4)(100, 0, 100, 0)
assert sfd >= 0 and tfd >= 0 and libc.timerfd_settime(tfd, 0, its, None) == 0
ep = select.epoll()
ep.register(efd, select.EPOLLIN)
ep.register(tfd, select.EPOLLIN | select.EPOLLET)
ino = libc.inotify_init1(0)
assert ino >= 0 and libc.inotify_add_watch(ino, b".", 0x100) == 1
l4 = socket.create_server(("127.0.0.1", 0), backlog=7)
l6 = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); c.connect(("::1", 9))
open("ready", "w").close()
time.sleep(60)' </dev/null >out 2>&1 &
pid=$!
for _ in $(seq 100); do [ -e ready ] && break; sleep 0.05; done
"$amber" dump -t $pid -D img --leave-running -v4 -o dump.log
n=0
for f in img/*.img; do
	case $f in */pages-*) [ -s "$f" ] || { echo "empty $f"; exit 1; }; continue ;; esac
	crit decode -i "$f" >/dev/null || { echo "crit can't decode $f"; exit 1; }
	n=$((n + 1))
done
for t in EVENTFD SIGNALFD TIMERFD EVENTPOLL INOTIFY; do
	crit decode -i img/files.img | grep -q "\"$t\"" || { echo "files.img has no $t"; exit 1; }
done
nsk=$(crit decode -i img/files.img | grep -o '"type": "INETSK"' | wc -l)
[ "$nsk" = 4 ] || { echo "files.img holds $nsk inet sockets, want 4"; exit 1; }
crit decode -i img/files.img | grep -q '"backlog": 7,' ||
	{ echo "the listener's backlog of 7 is not in files.img"; exit 1; }
# CRIU 4.x reads a task's ids from ids-PID.img; the inventory's root_ids
# are the dumper's own, which CRIU's restore needs to differ from the root's.
ids=$(crit decode -i img/ids-$pid.img)
echo "$ids" | grep -q '"files_id": [1-9]' || { echo "ids-$pid.img has no files_id"; exit 1; }
crit decode -i img/inventory.img | grep -q '"files_id": 0' ||
	{ echo "inventory.img: root_ids are not the dumper's (files_id 0)"; exit 1; }
perm=$(stat -c %a img/pstree.img)
[ "$perm" = 600 ] || { echo "images are mode $perm, want 600"; exit 1; }
kill -0 $pid || { echo "--leave-running: process died"; exit 1; }
echo "crit decoded all $n images amber wrote (mode 600, $nsk inet sockets); the process still runs"
