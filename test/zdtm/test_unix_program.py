"""A real program over unix sockets, checked from outside.

A python3 server listens on a relative path in its own directory, with
threads accepting and serving; a child it forked stays connected and
pings it every 20 ms. From outside (this process) we ask the server for
its ping count before the dump and after the restore, on new
connections: the count must go on from where it was, and keep growing
(the client connected before the dump still works).

A listener holding an accepted socket whose peer is gone (it shows the
listener's name): restored, the listener answers again.
"""

import os
import socket
import subprocess
import time

from zdtm_runner import amber_run, kill_pids, read_text, reap_all

SERVER = """
import os, socket, sys, threading, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind("srv.sock")
l.listen(8)
if os.fork() == 0:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("srv.sock")
    while True:
        s.sendall(b"ping")
        if s.recv(64) != b"pong":
            os._exit(3)
        time.sleep(0.02)
count = 0
def serve(c):
    global count
    with c:
        while d := c.recv(64):
            if d == b"ping":
                count += 1
                c.sendall(b"pong")
            else:
                c.sendall(str(count).encode())
def accept():
    while True:
        threading.Thread(target=serve, args=(l.accept()[0],), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
os.wait()
sys.exit(1)
"""


def ask(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"count")
        return int(s.recv(64))



def test_unix_server(tmp_path):
    path = str(tmp_path / "srv.sock")
    p = subprocess.Popen(["/usr/bin/python3", "-c", SERVER], cwd=tmp_path,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    pids = [p.pid]
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        before = ask(path)
        assert before > 0
        time.sleep(0.2)  # our connection closed on both ends before the dump
        pids += [int(c) for c in read_text(f"/proc/{p.pid}/task/{p.pid}/children").split()]
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        r = amber_run(["dump", "-t", str(p.pid), "-D", str(imgdir)], imgdir / "dump.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait(10)
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{x}") for x in pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.02)
        r = amber_run(["restore", "-D", str(imgdir), "-d"], imgdir / "restore.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "restore.log")
        after = ask(path)
        assert after >= before, (before, after)
        time.sleep(0.3)
        later = ask(path)
        assert later > after, f"the client connected before the dump stopped: {later}"
    finally:
        kill_pids(*pids)
        time.sleep(0.1)
        reap_all()


# Accepts one connection from a child that then closes its end, and keeps
# the accepted socket unread: an accepted socket whose peer is gone shows
# the listener's (abstract) name.
ORPHANED = """
import os, socket, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind("\\0amber-orphaned-accept")
l.listen(4)
if os.fork() == 0:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\\0amber-orphaned-accept")
    s.close()
    os._exit(0)
c, _ = l.accept()
os.wait()
open("/proc/self/comm", "w").write("orphan-ready")
while True:
    a, _ = l.accept()
    with a:
        a.sendall(b"still listening")
"""


def test_accepted_socket_peer_gone(tmp_path):
    """Its name is the listener's: the restore does not bind it again."""
    p = subprocess.Popen(["/usr/bin/python3", "-c", ORPHANED], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while read_text(f"/proc/{p.pid}/comm").strip() != "orphan-ready":
            assert time.monotonic() < deadline and p.poll() is None, "the server never got ready"
            time.sleep(0.01)
        img = tmp_path / "img"
        img.mkdir(mode=0o700)
        r = amber_run(["dump", "-t", str(p.pid), "-D", str(img)], img / "dump.log", img)
        assert r.returncode == 0, read_text(img / "dump.log")
        p.wait(30)
        r = amber_run(["restore", "-d", "-D", str(img)], img / "restore.log", img)
        assert r.returncode == 0, read_text(img / "restore.log")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect("\0amber-orphaned-accept")
        assert s.recv(64) == b"still listening"
        s.close()
    finally:
        kill_pids(p.pid)
        p.wait()
        reap_all()
