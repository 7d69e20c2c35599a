"""CRIU's RPC: `amber swrk FD` driven as libcriu and runc drive criu.

The test is the caller: a SOCK_SEQPACKET socketpair, one end passed to
`amber swrk 3`, requests built with pycriu's rpc_pb2 (CRIU's own
definitions, so this also checks amber's proto/rpc.proto on the wire).
A zdtm program (mem_loop: checksummed memory it keeps verifying) is
dumped and restored through the RPC and must report PASS afterwards.
"""

import array
import errno
import fcntl
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, "/usr/lib/python3/dist-packages")
from pycriu import images  # noqa: E402
from pycriu import rpc_pb2 as rpc  # noqa: E402

from zdtm_runner import (amber_path, pagemap_entries, read_text, reap_all, set_subreaper,
                         wait_until)

STATIC = Path(__file__).parent / "static"


class Swrk:
    """One `amber swrk` and the caller's end of its socket."""

    def __init__(self, tmp):
        self.sk, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.err = open(tmp / "swrk.err", "wb")
        self.proc = subprocess.Popen([str(amber_path()), "swrk", str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL, stderr=self.err)
        theirs.close()
        self.notified = []
        self.fds = []  # passed with notifications (orphan-pts-master)

    def raw(self, data):
        self.sk.send(data)
        resp = rpc.criu_resp()
        resp.ParseFromString(self.sk.recv(1 << 20))
        return resp

    def call(self, req, notify_ok=True, fail_script=None):
        """Send @req; answer NOTIFYs (recording their order) until the reply;
        the hook @fail_script, if any, answers that it failed."""
        self.sk.send(req.SerializeToString())
        while True:
            resp = rpc.criu_resp()
            data, anc, _, _ = self.sk.recvmsg(1 << 20, socket.CMSG_SPACE(16))
            resp.ParseFromString(data)
            for level, kind, fds in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    self.fds += array.array("i", fds[:len(fds) - len(fds) % 4])
            if resp.type != rpc.NOTIFY:
                return resp
            self.notified.append(resp.notify.script)
            ok = notify_ok and resp.notify.script != fail_script
            ack = rpc.criu_req(type=rpc.NOTIFY, notify_success=ok)
            self.sk.send(ack.SerializeToString())

    def close(self):
        self.sk.close()
        rc = self.proc.wait(timeout=120)
        self.err.close()
        return rc


@pytest.fixture
def swrk(tmp_path):
    set_subreaper()
    s = Swrk(tmp_path)
    yield s
    if s.proc.poll() is None:
        assert s.close() == 0, read_text(tmp_path / "swrk.err")
    reap_all()


def start_mem_loop(d):
    binary = STATIC / "mem_loop"
    if not binary.exists():
        pytest.fail(f"{binary} missing: run make tests", pytrace=False)
    pidfile, outfile = d / "test.pid", d / "test.out"
    rc = subprocess.call([str(binary), f"--pidfile={pidfile}", f"--outfile={outfile}"],
                         cwd=d, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert rc == 0
    return int(pidfile.read_text())


def finish(d, pid):
    os.kill(pid, signal.SIGTERM)
    out = d / "test.out"
    assert wait_until(lambda: "PASS" in read_text(out) or "FAIL" in read_text(out), 60)
    assert read_text(out).splitlines()[-1] == "PASS", read_text(out)
    reap_all()


def opts_for(imgdir_fd, **kw):
    return rpc.criu_opts(images_dir_fd=imgdir_fd, log_level=4, log_file="rpc.log", **kw)


def test_version_check_features(swrk):
    r = swrk.call(rpc.criu_req(type=rpc.VERSION))
    assert r.success and r.type == rpc.VERSION
    # runc 1.1 asks for CRIU >= 3.0 (major * 10000 + minor * 100 + sublevel)
    v = r.version
    assert v.major_number * 10000 + v.minor_number * 100 + v.sublevel >= 30000
    r = swrk.call(rpc.criu_req(type=rpc.CHECK))
    assert r.success, r.cr_errmsg
    feats = rpc.criu_features(mem_track=True, lazy_pages=True, pidfd_store=True)
    r = swrk.call(rpc.criu_req(type=rpc.FEATURE_CHECK, features=feats))
    assert r.success
    assert r.features.HasField("mem_track") and r.features.HasField("lazy_pages")
    assert r.features.pidfd_store is False
    check = subprocess.run([str(amber_path()), "check"], capture_output=True, text=True).stdout
    assert r.features.lazy_pages == bool("\nuffd-events      yes" in check)


def test_malformed_requests(swrk):
    cases = [b"\xff\xff\xff\xff garbage",                      # not protobuf
             rpc.criu_req(type=rpc.DUMP).SerializeToString()[:1],  # truncated
             b"\x08\x63",                                        # type 99
             b"\x08\x01\xf8\xff\x03\x01",                        # unknown field
             rpc.criu_req(type=rpc.DUMP).SerializeToString(),    # no opts
             rpc.criu_req(type=rpc.CPUINFO_DUMP).SerializeToString(),
             b"\x08\x01\x12\xff\xff\xff\xff\x0f",                  # opts of 4 GiB
             b"\x00" * 150000]                                   # over 128 KiB
    for data in cases:
        r = swrk.raw(data)
        assert not r.success and r.cr_errno > 0 and r.cr_errmsg, data[:16]
        if len(data) > 128 << 10:
            assert r.cr_errno == errno.E2BIG and "more than amber reads" in r.cr_errmsg
    assert swrk.call(rpc.criu_req(type=rpc.VERSION)).success  # still serving


def test_unsupported_option_named(swrk, tmp_path):
    fd = os.open(tmp_path, os.O_DIRECTORY)
    try:
        o = opts_for(fd, pid=os.getpid(), auto_ext_mnt=True)
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=o))
        assert not r.success and "auto_ext_mnt" in r.cr_errmsg
        o = opts_for(fd, rst_sibling=True, auto_ext_mnt=True)
        r = swrk.call(rpc.criu_req(type=rpc.RESTORE, opts=o))
        assert not r.success and "auto_ext_mnt" in r.cr_errmsg
        assert "rst_sibling" not in r.cr_errmsg  # runc's, accepted
        # Only the network namespace may be left to the caller (as CRIU).
        o = opts_for(fd, pid=os.getpid(), empty_ns=0x20000000)
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=o))
        assert not r.success and "empty_ns" in r.cr_errmsg
        # An external that is not a mount.
        o = opts_for(fd, pid=os.getpid(), external=["dev[abc]:def"])
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=o))
        assert not r.success and "mnt[KEY]:VAL" in r.cr_errmsg
    finally:
        os.close(fd)


def test_dump_restore(swrk, tmp_path):
    pid = start_mem_loop(tmp_path)
    img = tmp_path / "img"
    img.mkdir()
    fd = os.open(img, os.O_DIRECTORY)
    try:
        o = opts_for(fd, pid=pid, notify_scripts=True, leave_running=False)
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=o))
        assert r.success, (r.cr_errmsg, read_text(img / "rpc.log")[-2000:])
        assert swrk.notified == ["pre-dump", "post-dump"]
        assert wait_until(lambda: not Path(f"/proc/{pid}").exists() or
                          "Z" in read_text(f"/proc/{pid}/stat").split(")")[1][:3], 10)
        reap_all()
        swrk.notified.clear()
        o = opts_for(fd, notify_scripts=True)
        r = swrk.call(rpc.criu_req(type=rpc.RESTORE, opts=o))
        assert r.success, (r.cr_errmsg, read_text(img / "rpc.log")[-2000:])
        assert r.restore.pid == pid
        assert swrk.notified == ["pre-restore", "setup-namespaces", "post-restore",
                                 "post-resume"]
    finally:
        os.close(fd)
    assert swrk.close() == 0
    finish(tmp_path, pid)


def test_setup_namespaces_refused_kills_tree(swrk, tmp_path):
    """A failed setup-namespaces hook (runc's prestart hooks) fails the
    restore before the tree runs: every restored task is gone."""
    pid = start_mem_loop(tmp_path)
    img = tmp_path / "img"
    img.mkdir()
    fd = os.open(img, os.O_DIRECTORY)
    try:
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=opts_for(fd, pid=pid)))
        assert r.success, r.cr_errmsg
        assert wait_until(lambda: not Path(f"/proc/{pid}").exists() or
                          "Z" in read_text(f"/proc/{pid}/stat").split(")")[1][:3], 10)
        reap_all()
        r = swrk.call(rpc.criu_req(type=rpc.RESTORE, opts=opts_for(fd, notify_scripts=True)),
                      fail_script="setup-namespaces")
        assert not r.success and "setup-namespaces" in r.cr_errmsg, r.cr_errmsg
        assert swrk.notified == ["pre-restore", "setup-namespaces"]
        reap_all()
        assert not Path(f"/proc/{pid}").exists() or \
            "Z" in read_text(f"/proc/{pid}/stat").split(")")[1][:3]
    finally:
        os.close(fd)


def test_pre_dump_then_dump(swrk, tmp_path):
    pid = start_mem_loop(tmp_path)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    fd1 = os.open(tmp_path / "1", os.O_DIRECTORY)
    fd2 = os.open(tmp_path / "2", os.O_DIRECTORY)
    try:
        r = swrk.call(rpc.criu_req(type=rpc.PRE_DUMP,
                                   opts=opts_for(fd1, pid=pid, track_mem=True)))
        assert r.success, (r.cr_errmsg, read_text(tmp_path / "1/rpc.log")[-2000:])
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=opts_for(
            fd2, pid=pid, track_mem=True, parent_img="../1")))
        assert r.success, (r.cr_errmsg, read_text(tmp_path / "2/rpc.log")[-2000:])
        # the final dump leans on the pre-dump: pages marked PE_PARENT (1)
        entries = [e for f in (tmp_path / "2").glob("pagemap-*.img")
                   for e in pagemap_entries(f)]
        assert any(e.get(4, 0) & 1 or e.get(3) for e in entries), entries[:5]
        reap_all()
        r = swrk.call(rpc.criu_req(type=rpc.RESTORE, opts=opts_for(fd2)))
        assert r.success, (r.cr_errmsg, read_text(tmp_path / "2/rpc.log")[-2000:])
        assert r.restore.pid == pid
    finally:
        os.close(fd1)
        os.close(fd2)
    assert swrk.close() == 0
    finish(tmp_path, pid)


def test_notify_refused_stops_dump(swrk, tmp_path):
    pid = start_mem_loop(tmp_path)
    fd = os.open(tmp_path, os.O_DIRECTORY)
    try:
        o = opts_for(fd, pid=pid, notify_scripts=True)
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=o), notify_ok=False)
        assert not r.success and "pre-dump" in r.cr_errmsg
        assert swrk.notified == ["pre-dump"]
    finally:
        os.close(fd)
    finish(tmp_path, pid)  # untouched: still running


def test_page_server(tmp_path):
    """PAGE_SERVER starts a page server; a DUMP through a second swrk sends
    its pages there (opts.ps); the tree restores from the server's side."""
    set_subreaper()
    pid = start_mem_loop(tmp_path)
    dst, src = tmp_path / "dst", tmp_path / "src"
    dst.mkdir()
    src.mkdir()
    server, client = Swrk(dst), Swrk(src)
    dfd, sfd = os.open(dst, os.O_DIRECTORY), os.open(src, os.O_DIRECTORY)
    try:
        r = server.call(rpc.criu_req(type=rpc.PAGE_SERVER, opts=opts_for(
            dfd, ps=rpc.criu_page_server_info(address="127.0.0.1", port=0))))
        assert r.success, r.cr_errmsg
        assert r.ps.port > 0 and r.ps.pid > 0
        r = client.call(rpc.criu_req(type=rpc.DUMP, opts=opts_for(
            sfd, pid=pid, ps=rpc.criu_page_server_info(address="127.0.0.1", port=r.ps.port))))
        assert r.success, (r.cr_errmsg, read_text(src / "rpc.log")[-2000:])
        assert not list(src.glob("pages-*.img")) and list(dst.glob("pages-*.img"))
        for f in src.glob("*.img"):
            if not (dst / f.name).exists():
                (dst / f.name).write_bytes(f.read_bytes())
        if (src / "amber.sums").exists() and not (dst / "amber.sums").exists():
            (dst / "amber.sums").write_bytes((src / "amber.sums").read_bytes())
        reap_all()
        r = client.call(rpc.criu_req(type=rpc.RESTORE, opts=opts_for(dfd)))
        assert r.success, (r.cr_errmsg, read_text(dst / "rpc.log")[-2000:])
        assert r.restore.pid == pid
    finally:
        os.close(dfd)
        os.close(sfd)
        assert client.close() == 0 and server.close() == 0
    finish(tmp_path, pid)


def test_service_peer_creds(tmp_path):
    """amber service: root is served; another uid is refused (closed)."""
    set_subreaper()
    sockdir = Path(tempfile.mkdtemp(prefix="amber-rpc-", dir="/tmp"))
    os.chmod(sockdir, 0o755)  # reachable by the other uid below
    path = sockdir / "rpc.sock"
    proc = subprocess.Popen([str(amber_path()), "service", "--address", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"listening" in proc.stdout.readline()
        assert (path.stat().st_mode & 0o777) == 0o600
        sk = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sk.connect(str(path))
        sk.send(rpc.criu_req(type=rpc.VERSION).SerializeToString())
        r = rpc.criu_resp()
        r.ParseFromString(sk.recv(4096))
        assert r.success and r.version.major_number >= 3
        # inherit_fd would name the service's own fds: swrk only
        fd = os.open(tmp_path, os.O_DIRECTORY)
        o = opts_for(fd)
        o.inherit_fd.add(key="pipe:[1]", fd=0)
        sk.send(rpc.criu_req(type=rpc.RESTORE, opts=o).SerializeToString())
        r = rpc.criu_resp()
        r.ParseFromString(sk.recv(4096))
        os.close(fd)
        assert not r.success and "swrk only" in r.cr_errmsg, r.cr_errmsg
        sk.close()
        os.chmod(path, 0o666)  # so that only the credential check stands
        rd, wr = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(rd)
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(str(path))
                s.send(rpc.criu_req(type=rpc.VERSION).SerializeToString())
                got = s.recv(4096)
                os.write(wr, b"served" if got else b"closed")
            except OSError as e:
                os.write(wr, f"error {e}".encode())
            os._exit(0)
        os.close(wr)
        what = os.read(rd, 100)
        os.waitpid(child, 0)
        # closed before or after its request arrived: EOF, EPIPE or ECONNRESET
        assert what == b"closed" or what.startswith((b"error [Errno 32]",
                                                     b"error [Errno 104]")), what
        assert b"refused a caller" in proc.stderr.read1(4096)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)


# runc driving amber through a checkpoint and restore: test_runc.py.


def start_on_pty():
    """A shell in a session of its own whose terminal is a pty whose master
    the test holds (as a container engine holds its container's)."""
    master, slave = os.openpty()

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(["/bin/sh", "-c",
                          'n=0; while read l; do n=$((n+1)); echo "got$n:$l"; done'],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=ctty)
    os.close(slave)
    return p.pid, master


def pty_talk(master, line, want, timeout=10):
    """Types @line into the terminal; what comes back once it has @want."""
    os.write(master, line.encode() + b"\n")
    out, deadline = b"", time.time() + timeout
    while want.encode() not in out and time.time() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            out += os.read(master, 4096)
    return out


def test_orphan_pts_master(swrk, tmp_path):
    """A tree on a pty whose master is the caller's: dumped with
    orphan_pts_master, restored with it and notify_scripts: amber makes a
    new pair and passes its master in the orphan-pts-master notification
    (SCM_RIGHTS), between setup-namespaces and post-restore. Typed into it,
    a line reaches the restored shell, whose count goes on. Without
    notify_scripts (no way to hand the master over) the images are
    refused before anything is restored."""
    pid, master = start_on_pty()
    img = tmp_path / "img"
    img.mkdir()
    fd = os.open(img, os.O_DIRECTORY)
    try:
        assert b"got1:a" in pty_talk(master, "a", "got1:a")
        r = swrk.call(rpc.criu_req(type=rpc.DUMP, opts=opts_for(fd, pid=pid)))
        assert not r.success and "outside the tree" in read_text(img / "rpc.log")
        assert b"got2:b" in pty_talk(master, "b", "got2:b")  # still running
        r = swrk.call(rpc.criu_req(type=rpc.DUMP,
                                   opts=opts_for(fd, pid=pid, orphan_pts_master=True)))
        assert r.success, (r.cr_errmsg, read_text(img / "rpc.log")[-2000:])
        os.close(master)
        assert wait_until(lambda: not Path(f"/proc/{pid}").exists() or
                          "Z" in read_text(f"/proc/{pid}/stat").split(")")[1][:3], 10)
        reap_all()
        # damaged: the slave's settings gone (a hung-up terminal's entry)
        bad = tmp_path / "bad"
        shutil.copytree(img, bad)
        with open(bad / "tty-info.img", "rb") as f:
            ti = images.load(f)
        for e in ti["entries"]:
            e.pop("termios", None)
        with open(bad / "tty-info.img", "wb") as f:
            images.dump(ti, f)
        (bad / "amber.sums").unlink(missing_ok=True)
        bfd = os.open(bad, os.O_DIRECTORY)
        try:
            r = swrk.call(rpc.criu_req(type=rpc.RESTORE, opts=opts_for(
                bfd, orphan_pts_master=True, notify_scripts=True)))
        finally:
            os.close(bfd)
        assert not r.success and "has no settings saved" in read_text(bad / "rpc.log"), \
            read_text(bad / "rpc.log")[-2000:]
        assert "orphan-pts-master" not in swrk.notified and not swrk.fds
        assert not Path(f"/proc/{pid}").exists()
        swrk.notified.clear()
        r = swrk.call(rpc.criu_req(type=rpc.RESTORE,
                                   opts=opts_for(fd, orphan_pts_master=True)))
        assert not r.success and "orphan_pts_master with notify_scripts" in r.cr_errmsg + \
            read_text(img / "rpc.log"), r.cr_errmsg
        assert not Path(f"/proc/{pid}").exists()
        r = swrk.call(rpc.criu_req(type=rpc.RESTORE, opts=opts_for(
            fd, orphan_pts_master=True, notify_scripts=True)))
        assert r.success, (r.cr_errmsg, read_text(img / "rpc.log")[-2000:])
        assert swrk.notified == ["pre-restore", "setup-namespaces", "orphan-pts-master",
                                 "post-restore", "post-resume"]
        assert len(swrk.fds) == 1
        master = swrk.fds[0]
        assert b"got3:c" in pty_talk(master, "c", "got3:c")
        stat = read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
        assert int(stat[3]) == pid and int(stat[5]) == pid, stat  # session, foreground
    finally:
        os.close(fd)
        os.kill(pid, signal.SIGKILL)
        os.close(master)
        reap_all()
