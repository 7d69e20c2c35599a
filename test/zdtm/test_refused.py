"""State amber cannot save yet fails the dump, naming it; the tree runs on.

A process in a user namespace with no maps has ids that mean nothing there
(one with its maps is saved: test_userns.py); one in a pid namespace nested
below the tree root's would be restored into the root's (a root that is
init of its own pid namespace is saved: test_ns.py). Each must make
`amber dump` fail with the process and the reason in the log, and leave
the process running (not stopped, not traced). POSIX timers, refused once, are now saved: the same helper (ids
0 and 2) dumps and restores with its timers, their ids set by the kernel's
PR_TIMER_CREATE_RESTORE_IDS or, with AMBER_FAULT=restore-timer-ids, by
counting as on older kernels (static/posix_timers tests the timers in
full).
"""

import os
import signal
import subprocess
import time

import pytest

from zdtm_runner import ZDTM_DIR, amber_path, proc_stat, read_text, sanitizer_env

POSIX_TIMER = ZDTM_DIR / "helpers" / "posix_timer"
PY = "/usr/bin/python3"
# A client connected to a listener of the same process that never accepts it.
IN_FLIGHT = ("import socket, time\n"
             "l = socket.create_server(('127.0.0.1', 0))\n"
             "c = socket.create_connection(l.getsockname())\n"
             "time.sleep(1000)")


def nr_sockets(pid):
    try:
        return sum(os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:")
                   for n in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def has_anon(pid, kind):
    try:
        return any(kind in os.readlink(f"/proc/{pid}/fd/{n}")
                   for n in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def wait_for_exec(pid, comm, timeout=10):
    """The child has exec'd @comm (unshare execs sleep in place); with
    "COMM:N", it also holds N sockets; with "COMM@KIND", an fd whose link
    names KIND (anon_inode:[KIND])."""
    comm, _, anon = comm.partition("@")
    comm, _, socks = comm.partition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (read_text(f"/proc/{pid}/comm").strip() == comm and
                nr_sockets(pid) >= int(socks or 0) and (not anon or has_anon(pid, anon))):
            return
        time.sleep(0.01)
    pytest.fail(f"{pid} never became {comm}")


def anon_fd(make):
    """python3 making one fd with ctypes (@make sets fd), then sleeping."""
    return [PY, "-c", "import ctypes, os, sys, time\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.syscall.restype = ctypes.c_long\n" + make + "\n"
            "if fd < 0: sys.exit(ctypes.get_errno())\n"
            "time.sleep(1000)"]


CASES = {
    "user-namespace-unmapped": (["unshare", "--user", "sleep", "1000"], "sleep",
                                "user namespace with no uid or gid map written"),
    # unshare(CLONE_NEWTIME) without a fork or an exec: only its children-to-be
    # are in the new time namespace (one the tree is in is saved: test_ns.py).
    "time-for-children": ([PY, "-c", "import ctypes, time\n"
                           "assert ctypes.CDLL(None).unshare(0x80) == 0\n"
                           "open('/proc/self/comm', 'w').write('timens-kids')\n"
                           "time.sleep(1000)"], "timens-kids",
                          "made a time namespace for its children other than its own"),
    # A SysV segment of amber's IPC namespace, attached but removed: it would
    # die with the tree (in an IPC namespace of its own it is saved: test_ns.py).
    "ipc-host-shm-removed": ([PY, "-c", "import ctypes, time\n"
                              "libc = ctypes.CDLL(None, use_errno=True)\n"
                              "libc.shmat.restype = ctypes.c_void_p\n"
                              "i = libc.shmget(0, 4096, 0o1600)\n"
                              "assert i >= 0 and libc.shmat(i, None, 0) not in (None, 2**64 - 1)\n"
                              "assert libc.shmctl(i, 0, None) == 0\n"
                              "open('/proc/self/comm', 'w').write('shm-removed')\n"
                              "time.sleep(1000)"], "shm-removed",
                             "is marked for removal (IPC_RMID) in amber's IPC namespace"),
    # A network namespace of its own is saved with its loopback and veths to
    # amber's namespace (test_netns.py): not a veth pair inside, nor other links.
    "net-veth-inside": (["unshare", "--net", "sh", "-c",
                         "ip link add amb0 type veth peer name amb1 && exec sleep 1000"],
                        "sleep", "a veth whose peer is in the same namespace"),
    "net-bridge": (["unshare", "--net", "sh", "-c",
                    "ip link add amb0 type bridge && exec sleep 1000"], "sleep",
                   "holds link amb0, of type bridge"),
    # POSIX message queues are saved (test_ns.py), even unlinked ones, but
    # not an mq_notify() registration (SIGEV_SIGNAL, SIGUSR1: its
    # sigev_value can't be read back).
    "ipc-posix-mqueue-notify": (["unshare", "--ipc", PY, "-c", "import ctypes, os, time\n"
                                 "rt = ctypes.CDLL('librt.so.1', use_errno=True)\n"
                                 "q = rt.mq_open(b'/amber-mq', os.O_CREAT | os.O_RDWR, 0o600, None)\n"
                                 "ev = ctypes.create_string_buffer(bytes(8) + (10).to_bytes(4, 'little')"
                                 " + bytes(52))\n"
                                 "assert q >= 0 and rt.mq_notify(q, ev) == 0\n"
                                 "open('/proc/self/comm', 'w').write('mq-ready')\n"
                                 "time.sleep(1000)"], "mq-ready",
                                "queue /amber-mq of the IPC namespace of"),
    # ... also on a queue unlinked while open, in amber's namespace.
    "ipc-posix-mqueue-unlinked-notify": ([PY, "-c", "import ctypes, os, time\n"
                                          "rt = ctypes.CDLL('librt.so.1', use_errno=True)\n"
                                          "q = rt.mq_open(b'/amber-mq-fd', os.O_CREAT | os.O_RDWR,"
                                          " 0o600, None)\n"
                                          "ev = ctypes.create_string_buffer(bytes(8) + "
                                          "(10).to_bytes(4, 'little') + bytes(52))\n"
                                          "assert q >= 0 and rt.mq_notify(q, ev) == 0\n"
                                          "assert rt.mq_unlink(b'/amber-mq-fd') == 0\n"
                                          "open('/proc/self/comm', 'w').write('mq-fd-ready')\n"
                                          "time.sleep(1000)"], "mq-fd-ready",
                                         "unlinked queue /amber-mq-fd (deleted) has an mq_notify()"),
    # A mount namespace of its own holding mounts amber cannot make again (the
    # host's copies: devtmpfs, cgroup v1, disks): each is named, with the way out.
    "mnt-namespace": (["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       "mount -t tmpfs none /mnt && exec sleep 1000"], "sleep",
                      "name it external"),
    # A file unlinked while its inode stays linked in another directory:
    # the name amber would reopen is gone (one in the same directory is
    # found: static/linked_elsewhere).
    "unlinked-linked-elsewhere": ([PY, "-c", "import os, tempfile, time\n"
                                   "d = tempfile.mkdtemp()\n"
                                   "os.mkdir(d + '/sub')\n"
                                   "f = open(d + '/a', 'w')\n"
                                   "os.link(d + '/a', d + '/sub/b')\n"
                                   "os.unlink(d + '/a')\n"
                                   "open('/proc/self/comm', 'w').write('linked-else')\n"
                                   "time.sleep(1000)"], "linked-else",
                                  "still linked under a name amber can't find"),
    # Sockets amber does not save yet: named with fd, kind and pid.
    "tcp-established": ([PY, "-c", "import socket, time\n"
                         "l = socket.create_server(('127.0.0.1', 0))\n"
                         "c = socket.create_connection(l.getsockname())\n"
                         "a, _ = l.accept()\ntime.sleep(1000)"], "python3:3",
                        "established TCP socket"),
    # A connection in a listener's accept queue: no fd reaches it (as CRIU).
    "tcp-in-flight": ([PY, "-c", IN_FLIGHT], "python3:2", "not accepted yet (in flight)"),
    # A connection its peer closed (CLOSE_WAIT), without --tcp-established.
    "tcp-close-wait": ([PY, "-c", "import socket, time\n"
                        "l = socket.create_server(('127.0.0.1', 0))\n"
                        "c = socket.create_connection(l.getsockname())\n"
                        "a, _ = l.accept()\na.close()\ntime.sleep(1000)"], "python3:2",
                       "CLOSE_WAIT TCP socket (needs --tcp-established)"),
    # A connection in a handshake (SYN_SENT) without --tcp-established: its SYN
    # is dropped, the listener's accept queue (backlog 0) being full. Its fd
    # comes first, so it is named.
    "tcp-syn-sent": ([PY, "-c", "import socket, time\n"
                      "c = socket.socket()\n"
                      "l = socket.create_server(('127.0.0.1', 0), backlog=0)\n"
                      "f = socket.create_connection(l.getsockname())\n"
                      "c.setblocking(False)\nc.connect_ex(l.getsockname())\n"
                      "open('/proc/self/comm', 'w').write('syn-sent')\n"
                      "time.sleep(1000)"], "syn-sent:3",
                     "SYN_SENT TCP socket (needs --tcp-established)"),
    # A raw socket's queued packet (its own, protocol 253) cannot be forged alone.
    "raw-queued": ([PY, "-c", "import socket, time\n"
                    "r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)\n"
                    "r.sendto(b'x', ('127.0.0.1', 0))\n"
                    "r.recv(64, socket.MSG_PEEK)\n"
                    "open('/proc/self/comm', 'w').write('raw-ready')\n"
                    "time.sleep(1000)"], "raw-ready:1", "raw socket with queued datagrams"),
    # A ping socket's queued echo reply: read only by emptying the socket. In a
    # network namespace of its own (loopback only, saved), where root may ping.
    "ping-queued": (["unshare", "--net", "sh", "-c",
                     "ip link set lo up && "
                     "echo '0 0' > /proc/sys/net/ipv4/ping_group_range && exec " + PY +
                     " -c \"import socket, time\n"
                     "p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)\n"
                     "p.sendto(b'\\x08\\0\\0\\0\\0\\0\\0\\0ping', ('127.0.0.1', 0))\n"
                     "p.recv(64, socket.MSG_PEEK)\n"
                     "open('/proc/self/comm', 'w').write('ping-ready')\n"
                     "time.sleep(1000)\""], "ping-ready:1",
                    "ICMP ping socket with queued replies"),
    # A UDP socket of a SO_REUSEPORT group with a datagram queued: a forged
    # one could land in another socket of the group.
    "udp-reuseport-queued": ([PY, "-c", "import socket, time\n"
                              "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                              "u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
                              "u.bind(('127.0.0.1', 0))\n"
                              "u.sendto(b'x', u.getsockname())\n"
                              "u.recv(64, socket.MSG_PEEK)\n"
                              "open('/proc/self/comm', 'w').write('udp-ready')\n"
                              "time.sleep(1000)"], "udp-ready:1",
                             "SO_REUSEPORT and datagrams queued"),
    # Packet sockets are saved, but not the obsolete SOCK_PACKET kind.
    "packet-socket": ([PY, "-c", "import socket, time\n"
                       "s = socket.socket(socket.AF_PACKET, 10)\n"
                       "time.sleep(1000)"], "python3:1", "SOCK_PACKET"),
    # A netlink reply the task has not read yet.
    "netlink-queued": ([PY, "-c", "import socket, struct, time\n"
                        "s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\n"
                        "s.send(struct.pack('=LHHLLBxxx', 20, 18, 0x301, 1, 0, 0))\n"
                        "s.recv(1, socket.MSG_PEEK)\n"
                        "open('/proc/self/comm', 'w').write('nl-ready')\n"
                        "time.sleep(1000)"], "nl-ready:1", "has messages queued"),
    # Anonymous-inode fds amber does not save: named with fd, kind and pid.
    "io_uring": (anon_fd("params = ctypes.create_string_buffer(120)\n"
                         "fd = libc.syscall(425, 8, params)"), "python3@io_uring", "io_uring"),
    "userfaultfd": (anon_fd("fd = libc.syscall(323, os.O_CLOEXEC)"), "python3@userfaultfd",
                    "userfaultfd of the task's own"),
    "perf_event": (anon_fd("attr = bytearray(128)\n"
                           "attr[0:4] = (1).to_bytes(4, 'little')\n"   # PERF_TYPE_SOFTWARE
                           "attr[4:8] = (128).to_bytes(4, 'little')\n"  # size
                           "attr[40] = 1\n"                             # disabled
                           "buf = ctypes.create_string_buffer(bytes(attr))\n"
                           "fd = libc.syscall(298, buf, 0, -1, -1, 0)"), "python3@perf_event",
                   "perf_event"),
    "bpf-map": (anon_fd("attr = bytearray(128)\n"
                        "attr[0:16] = b''.join(v.to_bytes(4, 'little') for v in (2, 4, 8, 1))\n"
                        "buf = ctypes.create_string_buffer(bytes(attr))\n"
                        "fd = libc.syscall(321, 0, buf, 128)"), "python3@bpf-map", "bpf-map"),
    # fanotify is saved, but not a mark on a whole file system (no room in CRIU's format).
    "fanotify-fs-mark": (anon_fd("fd = libc.fanotify_init(0, 0)\n"
                                 "if libc.fanotify_mark(fd, 0x101, 2, -100, b'/tmp'): fd = -1\n"
                                 "mark = os.eventfd(0) if fd >= 0 else -1"),
                         "python3@eventfd", "FAN_MARK_FILESYSTEM"),
    # pidfds of a process outside the tree, of a thread (made after the fds).
    "pidfd-outside": ([PY, "-c", "import os, time\nfd = os.pidfd_open(1)\ntime.sleep(1000)"],
                      "python3@pidfd", "outside the dumped tree"),
    "pidfd-thread": ([PY, "-c", "import ctypes, os, threading, time\n"
                      "libc = ctypes.CDLL(None)\n"
                      "t = threading.Thread(target=time.sleep, args=(1000,), daemon=True)\n"
                      "t.start()\n"
                      "fd = libc.syscall(434, t.native_id, os.O_EXCL)\n"
                      "time.sleep(1000)"], "python3@pidfd", "PIDFD_THREAD"),
    # A pidfd of a live process shared by two tasks: each opens its own at restore.
    "pidfd-shared": ([PY, "-c", "import ctypes, os, time\nfd = os.pidfd_open(os.getpid())\n"
                      "if os.fork() == 0:\n"
                      "    ctypes.CDLL(None).prctl(1, 9)\n"  # PR_SET_PDEATHSIG, SIGKILL
                      "    time.sleep(1000)\n"
                      "mark = os.eventfd(0)\ntime.sleep(1000)"], "python3@eventfd",
                     "pidfd shared with"),
    # A file owner (F_SETOWN) outside the tree: init.
    "fown-outside": ([PY, "-c", "import fcntl, os, time\nr, w = os.pipe()\n"
                      "fcntl.fcntl(r, fcntl.F_SETOWN, 1)\nmark = os.eventfd(0)\n"
                      "time.sleep(1000)"], "python3@eventfd", "outside the dumped tree"),
    # A deleted directory as the cwd or as an open fd: nothing to reopen.
    "deleted-dir-cwd": (["sh", "-c", "d=$(mktemp -d) && cd $d && rmdir $d && exec sleep 1000"],
                        "sleep", "unlinked"),
    "deleted-dir-fd": ([PY, "-c", "import os, tempfile, time\n"
                        "d = tempfile.mkdtemp()\nfd = os.open(d, os.O_RDONLY)\n"
                        "os.rmdir(d)\ntime.sleep(1000)"], "python3@(deleted)", "unlinked"),
}


def test_skip_in_flight(tmp_path):
    """--skip-in-flight: the dump drops the connection waiting in the
    accept queue, says so, and the tree restores with its listener."""
    p = subprocess.Popen([PY, "-c", IN_FLIGHT], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    try:
        wait_for_exec(p.pid, "python3:2")
        for verb in (["dump", "-t", str(p.pid), "--tcp-established", "--skip-in-flight"],
                     ["restore", "-d", "--tcp-established"]):
            log = imgdir / f"{verb[0]}.log"
            r = subprocess.run([str(amber_path()), *verb, "-D", str(imgdir), "-v4", "-o",
                                str(log)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=sanitizer_env(imgdir),
                               timeout=60)
            assert r.returncode == 0, read_text(log)
            if verb[0] == "dump":
                p.wait(30)
                assert "1 connection(s) not accepted yet are dropped" in read_text(log)
        assert nr_sockets(p.pid) == 2
        st = proc_stat(p.pid)
        assert st and st[0] in "SR", f"restored process in state {st}"
    finally:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.kill()
        p.wait()


@pytest.mark.parametrize("case", sorted(CASES))
def test_dump_refuses(tmp_path, case):
    argv, comm, reason = CASES[case]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_exec(p.pid, comm)
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=sanitizer_env(imgdir), timeout=60)
        assert r.returncode == 1, f"dump exited {r.returncode}"
        text = read_text(log)
        assert (f"process {p.pid}" in text or f"of pid {p.pid}" in text or
                f"/proc/{p.pid}/" in text) and reason in text, text
        assert p.poll() is None, "the process died"
        st = proc_stat(p.pid)
        assert st and st[0] in "SR", f"process left in state {st}"
        status = read_text(f"/proc/{p.pid}/status")
        assert "TracerPid:\t0" in status
    finally:
        p.kill()
        p.wait()


# A session leader with the console or a VT as its controlling terminal,
# its child (the dumped task) holding the device too.
CTTY_KID = ("import fcntl, os, sys, termios, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)\n"
            "try:\n"
            "    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)\n"
            "except OSError as e:\n"
            "    print(f'TIOCSCTTY: {e}', flush=True)\n"
            "    sys.exit(3)\n"
            "if os.fork() == 0:\n"
            "    open('/proc/self/comm', 'w').write('ctty-kid')\n"
            "    time.sleep(1000)\n"
            "os.wait()\n")


@pytest.mark.parametrize("dev", ["/dev/console", "/dev/tty1"])
def test_ctty_session_outside_refused(tmp_path, dev):
    """The console or a VT whose session's leader is outside the dumped
    tree (a task under a shell on the console): refused, naming the
    session, the task running on (CRIU refuses it too, or, with
    --shell-job, restores a VT as the shell's terminal)."""
    p = subprocess.Popen([PY, "-c", CTTY_KID, dev], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        kid = None
        while kid is None and time.monotonic() < deadline:
            if p.poll() is not None:
                pytest.skip(f"{dev} as a controlling terminal: {p.stdout.read().decode()}")
            kids = read_text(f"/proc/{p.pid}/task/{p.pid}/children").split()
            if kids and read_text(f"/proc/{kids[0]}/comm").strip() == "ctty-kid":
                kid = int(kids[0])
            time.sleep(0.01)
        assert kid, "the child did not start"
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(kid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=sanitizer_env(imgdir), timeout=60)
        assert r.returncode == 1, f"dump exited {r.returncode}"
        text = read_text(log)
        assert f"of pid {kid}" in text and \
            f"controlling terminal of session {p.pid} whose leader is outside" in text, text
        st = proc_stat(kid)
        assert st and st[0] in "SR", f"process left in state {st}"
    finally:
        p.kill()
        p.wait()


# A sleep in a pid namespace below the root's: under a root in amber's, and
# under a root that is init of its own (saved alone, test_ns.py).
NESTED_PID = {
    "in-amber-ns": ["sh", "-c", "unshare --pid --fork sleep 1000 & wait"],
    "in-own-ns": ["unshare", "--pid", "--fork", "--mount-proc", "setsid", "sh", "-c",
                  "unshare --pid --fork sleep 1000 & wait"],
}


def find_sleep(pid, deadline):
    """The first `sleep` below @pid, once there."""
    while time.monotonic() < deadline:
        todo = [pid]
        while todo:
            p = todo.pop()
            if p != pid and read_text(f"/proc/{p}/comm").strip() == "sleep":
                return p
            todo += [int(c) for c in read_text(f"/proc/{p}/task/{p}/children").split()]
        time.sleep(0.01)
    pytest.fail("no sleep appeared")


# Nested pid namespaces are saved since cceadc2 (test_pidns_nested.py).
def test_pid_ns_without_its_init_refused(tmp_path):
    """A root in a pid namespace of its own but not its init: refused."""
    p = subprocess.Popen(["unshare", "--pid", "--fork", "sh", "-c", "sleep 1000 & wait"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        sleep = find_sleep(p.pid, time.monotonic() + 10)
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(sleep), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=sanitizer_env(imgdir), timeout=60)
        assert r.returncode == 1, f"dump exited {r.returncode}"
        text = read_text(log)
        assert f"process {sleep} is pid 2 of its own pid namespace, not its init" in text, text
        st = proc_stat(sleep)
        assert st and st[0] in "SR", f"{sleep} left in state {st}"
        assert "TracerPid:\t0" in read_text(f"/proc/{sleep}/status")
    finally:
        kids = read_text(f"/proc/{p.pid}/task/{p.pid}/children").split()
        for k in kids:  # the namespace's init, in its own process group still
            os.kill(int(k), signal.SIGKILL)
        p.kill()
        p.wait()


@pytest.mark.parametrize("ids", ["restore-ids", "by-count"])
def test_posix_timer_saved(tmp_path, ids):
    p = subprocess.Popen([str(POSIX_TIMER)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    restored = False
    try:
        wait_for_exec(p.pid, "posix_timer")
        deadline = time.monotonic() + 10
        while read_text(f"/proc/{p.pid}/timers").count("ID:") < 2:
            assert time.monotonic() < deadline, "no timer created"
            time.sleep(0.01)
        timers = read_text(f"/proc/{p.pid}/timers")
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        for verb, args in (("dump", ["-t", str(p.pid)]), ("restore", ["-d"])):
            env = sanitizer_env(imgdir)
            if verb == "restore" and ids == "by-count":
                env["AMBER_FAULT"] = "restore-timer-ids"
            r = subprocess.run([str(amber_path()), verb, "-D", str(imgdir), *args, "-v4",
                                "-o", str(imgdir / f"{verb}.log")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, timeout=60)
            assert r.returncode == 0, read_text(imgdir / f"{verb}.log")
            if verb == "dump":
                p.wait()
        restored = True
        assert read_text(f"/proc/{p.pid}/timers") == timers
        assert ("by counting" in read_text(imgdir / "restore.log")) == (ids == "by-count")
    finally:
        if restored:
            os.kill(p.pid, signal.SIGKILL)
            for _ in range(100):  # reparented to us (the subreaper) or gone
                try:
                    if os.waitpid(p.pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    break
                time.sleep(0.01)
        else:
            p.kill()
            p.wait()
