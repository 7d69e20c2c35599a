"""A unix dgram socket connected to a socket outside the dumped tree.

The peer is this pytest process's own socket, bound to a path. Without
--ext-unix-sk the dump must fail naming the socket and its peer, and the
process run on; with it, the peer is saved by name, a restore without the
option is refused, and one with it connects to the same path again: a
message sent after the restore arrives here.
"""

import os
import signal
import socket
import subprocess
import time

from zdtm_runner import amber_run, kill_pids, proc_stat, read_text, reap_all

CHILD = """
import os, signal, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(sys.argv[1])
s.send(b"before")
signal.signal(signal.SIGUSR1, lambda *a: s.send(b"after " + s.getpeername().encode()))
while True:
    time.sleep(0.05)
"""



def test_ext_unix_sk(tmp_path):
    path = str(tmp_path / "outside.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(10)
    p = subprocess.Popen(["/usr/bin/python3", "-c", CHILD, path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    restored = None
    try:
        assert srv.recv(64) == b"before"
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        r = amber_run(["dump", "-t", str(p.pid), "-D", str(imgdir)], tmp_path / "refused.log",
                  imgdir)
        text = read_text(tmp_path / "refused.log")
        assert r.returncode == 1, text
        assert "outside the dumped tree" in text and "--ext-unix-sk" in text, text
        assert f"of pid {p.pid}" in text, text
        assert p.poll() is None and proc_stat(p.pid)[0] in "SR"

        r = amber_run(["dump", "--ext-unix-sk", "-t", str(p.pid), "-D", str(imgdir)],
                  imgdir / "dump.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait(10)
        r = amber_run(["restore", "-D", str(imgdir), "-d"], imgdir / "norestore.log", imgdir)
        text = read_text(imgdir / "norestore.log")
        assert r.returncode != 0 and "--ext-unix-sk" in text, text
        r = amber_run(["restore", "--ext-unix-sk", "-D", str(imgdir), "-d"],
                  imgdir / "restore.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "restore.log")
        restored = p.pid
        os.kill(restored, signal.SIGUSR1)
        assert srv.recv(512) == b"after " + path.encode()
    finally:
        kill_pids(p.pid, restored)
        time.sleep(0.1)
        reap_all()
        srv.close()


UNACCEPTED = """
import socket, sys, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(sys.argv[1] + "/l.sock")
l.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1] + "/l.sock")
c.send(b"sent before accept")
open(sys.argv[1] + "/ready", "w").close()
while True:
    time.sleep(0.05)
"""

CREDS = """
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1] + "/d.sock")
open(sys.argv[1] + "/ready", "w").close()
while True:
    time.sleep(0.05)
"""


def test_dump_refuses(tmp_path):
    """What cannot be restored right fails the dump, naming the fd, the pid
    and the reason, and the process runs on: data sent on a connection not
    yet accepted, and a queued message whose sender (SCM_CREDENTIALS) is
    outside the tree."""
    for script, reason in ((UNACCEPTED, "has not accepted yet"),
                           (CREDS, "not a task of the dumped tree")):
        for f in tmp_path.glob("*"):
            if f.is_file() or f.is_socket():
                f.unlink()
        p = subprocess.Popen(["/usr/bin/python3", "-c", script, str(tmp_path)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            if script is CREDS:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.sendto(b"from outside", str(tmp_path / "d.sock"))
            imgdir = tmp_path / f"img-{p.pid}"
            imgdir.mkdir(mode=0o700)
            r = amber_run(["dump", "-t", str(p.pid), "-D", str(imgdir)], imgdir / "dump.log",
                      imgdir)
            text = read_text(imgdir / "dump.log")
            assert r.returncode == 1, text
            assert reason in text and f"of pid {p.pid}" in text, text
            time.sleep(0.1)
            assert p.poll() is None and proc_stat(p.pid)[0] in "SR"
        finally:
            p.kill()
            p.wait(10)
