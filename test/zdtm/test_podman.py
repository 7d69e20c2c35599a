"""podman with runc, and amber installed as the `criu` they find on PATH
(docs/rpc.md#podman): `podman container checkpoint` / `restore`,
`--export` / `--import` (also as a copy beside the original),
`--leave-running`, `-P` / `--with-previous`, `--print-stats`; a terminal
container (`run -t`). Also `--inherit-fd` and `--version` without podman.

Offline: the image is `podman import`ed from a busybox-static rootfs.
podman's storage, run and tmp directories and its network config live
in a temporary directory (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), with
`--network none` and vfs storage (overlay storage, podman's default, for
one test); outside it only runc's state directory
(/run/runc, its entries removed) and podman's blob cache
(/var/lib/containers/cache) are touched. A shell keeps a counter in a shell
variable (memory), writes it to a file on a tmpfs /tmp next to a marker
written once, and prints it to stdout (conmon's pipe, podman's log).
From outside: the restored container's counter goes on from the saved
value, the tmpfs holds the saved marker and not what was written after
the checkpoint, and its output reaches podman's log again (the new
pipes runc hands over as inherit_fd). Mode-independent: runs once.
"""

import json
import os
import select
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from zdtm_runner import (amber_path, kill_groups, read_counter, read_text, reap_all,
                         wait_until)

PODMAN = shutil.which("podman")
RUNC = shutil.which("runc")
BUSYBOX = Path("/bin/busybox")
MARKER = "amber-marker 0123456789"
IMAGE = "localhost/amber-busybox:test"
# fd 3: a file of a bind-mounted host directory (runc names it as ext_mnt)
LOOP = (f"exec 3</data/volume-file; echo '{MARKER}' > /tmp/marker; i=0; "
        "while true; do i=$((i+1)); echo $i > /tmp/counter; echo out $i; sleep 0.05; done")


class Podman:
    """podman confined to a directory of its own, amber as its criu."""

    def __init__(self, top: Path, driver: str = "vfs"):
        self.top = top
        (top / "bin").mkdir(parents=True)
        self.volume = top / "volume"
        self.volume.mkdir()
        (self.volume / "volume-file").write_text(MARKER + "\n")
        # runc (and go-criu in podman) exec "criu" from PATH.
        (top / "bin/criu").symlink_to(amber_path())
        (top / "containers.conf").write_text(f"""
[containers]
# runc can't raise the hard limits podman asks for by default without
# CAP_SYS_RESOURCE, which a CI sandbox may lack.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "{top}/tmp"
image_copy_tmp_dir = "{top}/tmp"
volume_path = "{top}/root/volumes"
[network]
network_config_dir = "{top}/net"
""")
        (top / "storage.conf").write_text(f"""
[storage]
driver = "{driver}"
runroot = "{top}/runroot"
graphroot = "{top}/root"
""")
        self.env = dict(os.environ,
                        CONTAINERS_CONF=str(top / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(top / "storage.conf"),
                        PATH=f"{top}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}")

    def run(self, *args, check=True, timeout=120):
        r = subprocess.run([PODMAN, *map(str, args)], env=self.env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=timeout)
        if check:
            assert r.returncode == 0, f"podman {' '.join(map(str, args))}: {r.stdout}{r.stderr}"
        return r

    def make_image(self):
        rootfs = self.top / "rootfs"
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc"):
            (rootfs / d).mkdir(parents=True)
        shutil.copy(BUSYBOX, rootfs / "bin/busybox")
        for c in ("sh", "sleep", "cat", "echo"):
            (rootfs / "bin" / c).symlink_to("busybox")
        tar = self.top / "rootfs.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        self.run("import", tar, IMAGE)

    def cleanup(self):
        self.run("rm", "-af", "-t", "0", check=False)
        self.run("rmi", "-af", check=False)
        # what podman left mounted under its directories (shm of a failed run)
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            mp = line.split()[4]
            if mp.startswith(str(self.top) + "/"):
                subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(self.top, ignore_errors=True)


def podman_with(tmp_path_factory, driver):
    if not PODMAN or not RUNC or not BUSYBOX.exists():
        pytest.skip("podman, runc or busybox-static missing (scripts/packages-test.txt)")
    p = Podman(tmp_path_factory.mktemp("podman") / "top", driver)
    try:
        p.make_image()
        yield p
    finally:
        p.cleanup()
        reap_all()  # conmons whose parent exited: pytest is a subreaper


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    yield from podman_with(tmp_path_factory, "vfs")


@pytest.fixture(scope="module")
def podman_overlay(tmp_path_factory):
    """podman's default storage driver: each container's root an overlay."""
    if "\toverlay\n" not in read_text("/proc/filesystems"):
        pytest.skip("the kernel has no overlayfs")
    yield from podman_with(tmp_path_factory, "overlay")


class Container:
    def __init__(self, pm: Podman, name: str):
        self.pm = pm
        self.name = f"amber-{name}-{os.getpid()}"
        self.loop = LOOP

    def start(self):
        self.pm.run("run", "-d", "--name", self.name, "--network", "none", "--tmpfs", "/tmp",
                    "-v", f"{self.pm.volume}:/data:ro", IMAGE, "/bin/sh", "-c", self.loop)
        self.wait_counter(3)

    def inspect(self):
        r = self.pm.run("inspect", "--format", "json", self.name, check=False)
        return json.loads(r.stdout)[0] if r.returncode == 0 else None

    def pid(self):
        st = self.inspect()
        assert st and st["State"]["Status"] == "running", st and st["State"]
        return st["State"]["Pid"]

    def read(self, name):
        return (Path("/proc") / str(self.pid()) / "root/tmp" / name).read_text().strip()

    def counter(self):
        return read_counter(self.read)

    def wait_counter(self, above):
        assert wait_until(lambda: self.counter() > above, 20), f"counter stuck at {above}"

    def checkpoint(self, *extra):
        return self.pm.run("container", "checkpoint", *extra, self.name)

    def restore(self, *extra):
        return self.pm.run("container", "restore", *extra, self.name)

    def checkpoint_dir(self):
        return Path(self.inspect()["StaticDir"]) / "checkpoint"

    def remove(self):
        self.pm.run("rm", "-f", "-t", "0", self.name, check=False)


@pytest.fixture
def container(podman, request):
    c = Container(podman, request.node.name.replace("test_", "")[:20])
    try:
        yield c
    finally:
        c.remove()


def check_restored(c, before):
    """Running again from the checkpoint: counter, tmpfs, stdout."""
    assert c.inspect()["State"]["Status"] == "running"
    assert c.read("marker") == MARKER
    # written into the tmpfs after the checkpoint: not in the restored one
    assert not (Path("/proc") / str(c.pid()) / "root/tmp/after").exists()
    # the open file on the volume: the host's file again, bound in at /data
    fd3 = Path("/proc") / str(c.pid()) / "fd/3"
    assert os.readlink(fd3) == "/data/volume-file", os.readlink(fd3)
    assert os.stat(fd3).st_ino == os.stat(c.pm.volume / "volume-file").st_ino
    first = c.counter()
    assert first >= before, (first, before)  # not restarted from 1
    c.wait_counter(first + 3)
    # its stdout is conmon's new pipe: the lines reach podman's log
    want = f"out {first + 3}"
    assert wait_until(lambda: want in c.pm.run("logs", c.name).stdout.split("\n"), 20), want


def mark_after(c):
    """A file on the tmpfs written once the checkpoint is taken."""
    (Path("/proc") / str(c.pid()) / "root/tmp/after").write_text("after\n")


def test_podman_checkpoint_restore(container):
    c = container
    c.start()
    pid, before = c.pid(), c.counter()
    c.checkpoint()
    assert c.inspect()["State"]["Status"] == "exited"
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10)
    # amber's images (its checksums), not another criu's
    assert (c.checkpoint_dir() / "amber.sums").exists()
    c.restore()
    check_restored(c, before)


def link_exists(name):
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_podman_bridge_network_tcp(podman):
    """podman's default network: netavark wires a namespace of podman's on
    its bridge; runc names it external (net[INODE]:extRootNetNS) at the
    checkpoint and hands the new one over (inherit_fd) at the restore. A
    TCP connection the host opened to the container's echo server (busybox
    nc running cat) carries data again after `--tcp-established` both
    ways, the container keeping its address. The host side is idle
    across the checkpoint (all acknowledged): a retransmission in the
    moment between netavark's wiring and amber's lock would be reset."""
    bridge_was_there = link_exists("podman0")
    name = f"amber-bridge-{os.getpid()}"
    try:
        podman.run("run", "-d", "--name", name, "--network", "bridge", IMAGE, "/bin/busybox",
                   "nc", "-l", "-p", "7000", "-e", "/bin/busybox", "cat")
        st = json.loads(podman.run("inspect", "--format", "json", name).stdout)[0]
        addr, pid = st["NetworkSettings"]["IPAddress"], st["State"]["Pid"]
        assert addr, st["NetworkSettings"]
        assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        sk = None
        for _ in range(100):  # nc listens a moment after the container runs
            try:
                sk = socket.create_connection((addr, 7000), timeout=30)
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        assert sk, f"nothing listens on {addr}:7000"
        with sk:
            sk.sendall(b"before\n")
            assert sk.recv(100) == b"before\n"
            podman.run("container", "checkpoint", "--tcp-established", name)
            ckpt = Path(json.loads(podman.run("inspect", "--format", "json", name).stdout)[0]
                        ["StaticDir"]) / "checkpoint"
            assert list(ckpt.glob("netns-*.img")), sorted(p.name for p in ckpt.iterdir())
            podman.run("container", "restore", "--tcp-established", name)
            st = json.loads(podman.run("inspect", "--format", "json", name).stdout)[0]
            assert st["State"]["Status"] == "running", st["State"]
            assert st["NetworkSettings"]["IPAddress"] == addr
            sk.sendall(b"after\n")
            assert sk.recv(100) == b"after\n"
    finally:
        podman.run("rm", "-f", "-t", "0", name, check=False)
        if not bridge_was_there and link_exists("podman0"):
            subprocess.run(["ip", "link", "del", "podman0"], check=False)


def test_podman_overlay_checkpoint_restore(podman_overlay):
    """With the overlay driver the container's root is an overlay podman
    mounts again before the restore; the shell's writes to it land in the
    container's upper directory after the restore, every tick once."""
    c = Container(podman_overlay, "overlay")
    c.loop = LOOP.replace("echo out $i;", "echo out $i; echo $i >&4;").replace(
        "exec 3<", "exec 4>>/ovl-log 3<")
    try:
        c.start()
        root = (Path("/proc") / str(c.pid()) / "mountinfo").read_text().splitlines()[0]
        assert root.split()[4] == "/" and " - overlay overlay " in root, root
        upper = Path(c.inspect()["GraphDriver"]["Data"]["UpperDir"])
        c.wait_counter(3)
        before = c.counter()
        c.checkpoint()
        at_dump = len((upper / "ovl-log").read_text().split())
        c.restore()
        check_restored(c, before)
        ticks = [int(t) for t in (upper / "ovl-log").read_text().split()]
        assert len(ticks) > at_dump + 2, (at_dump, ticks[-5:])
        assert ticks == list(range(1, len(ticks) + 1)), ticks
    finally:
        c.remove()


def test_podman_export_import(container, tmp_path):
    """--export with --print-stats (amber's stats-dump in the archive),
    the container removed, then restore --import."""
    c = container
    c.start()
    before = c.counter()
    archive = tmp_path / "ct.tar.gz"
    r = c.checkpoint("--export", archive, "--compress", "gzip", "--print-stats")
    stats = json.loads(r.stdout)["container_statistics"][0]["criu_statistics"]
    assert stats["pages_written"] > 0 and stats["frozen_time"] > 0, stats
    with tarfile.open(archive) as t:
        names = t.getnames()
    assert "stats-dump" in names and "checkpoint/amber.sums" in names, names
    c.remove()
    assert c.inspect() is None
    r = c.pm.run("container", "restore", "--import", archive, "--print-stats")
    stats = json.loads(r.stdout)["container_statistics"][0]["criu_statistics"]
    assert stats["restore_time"] > 0, stats
    check_restored(c, before)


def test_podman_import_as_copy(container, tmp_path):
    """--leave-running --export, then --import under another name while
    the original runs on: two containers, each counting in its own pid
    namespace and tmpfs, the copy from the checkpoint."""
    c = container
    c.start()
    before = c.counter()
    archive = tmp_path / "ct.tar.gz"
    c.checkpoint("--leave-running", "--export", archive, "--compress", "gzip")
    mark_after(c)
    copy = Container(c.pm, "copy")
    try:
        c.pm.run("container", "restore", "--import", archive, "-n", copy.name)
        check_restored(copy, before)
        assert copy.pid() != c.pid()
        assert (Path("/proc") / str(c.pid()) / "root/tmp/after").exists()
        c.wait_counter(c.counter() + 3)  # the original runs on
    finally:
        copy.remove()


def test_podman_leave_running(container, tmp_path):
    """--leave-running: the container counts on; stopped, then restored,
    it is the checkpoint's again (its tmpfs as it was then)."""
    c = container
    c.start()
    pid, before = c.pid(), c.counter()
    c.checkpoint("--leave-running")
    assert c.pid() == pid
    mark_after(c)
    c.wait_counter(c.counter() + 3)
    c.pm.run("stop", "-t", "0", c.name)
    c.restore()
    check_restored(c, before)


def test_podman_terminal(container):
    """podman run -t: the container's pty master is conmon's, outside the
    tree. runc checkpoints it with orphan_pts_master; at restore amber
    makes a new pair in the container's devpts and runc hands the master
    to conmon (its console socket): what the restored shell writes to its
    terminal reaches podman's log again, the counter goes on."""
    c = container
    c.pm.run("run", "-d", "-t", "--name", c.name, "--network", "none", "--tmpfs", "/tmp",
             "-v", f"{c.pm.volume}:/data:ro", IMAGE, "/bin/sh", "-c", LOOP)
    c.wait_counter(3)
    pid, before = c.pid(), c.counter()
    assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/pts/0"
    c.checkpoint()
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10)
    c.restore()
    check_restored(c, before)
    pid = c.pid()
    assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/pts/0"
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[3]) == pid and int(stat[4]) == 136 << 8, stat  # its terminal again


def attach_talk(c, line, want, timeout=20):
    """`podman attach` on a pty of the test's: types @line, reads until @want."""
    master, slave = os.openpty()
    p = subprocess.Popen([PODMAN, "attach", "--sig-proxy=false", c.name], env=c.pm.env,
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out, deadline = b"", time.time() + timeout
    try:
        time.sleep(1)  # attached once conmon's attach socket is open
        os.write(master, line.encode() + b"\r")
        while want.encode() not in out and time.time() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
    finally:
        p.kill()  # the attach only: the container runs on (--sig-proxy=false)
        p.wait()
        os.close(master)
    return out.decode(errors="replace")


def test_podman_terminal_input(container):
    """podman run -dit: after the restore, a line typed through `podman
    attach` reaches the shell on the new terminal, whose count goes on."""
    c = container
    c.pm.run("run", "-dit", "--name", c.name, "--network", "none", IMAGE, "/bin/sh", "-c",
             'n=0; while read l; do n=$((n+1)); echo "got$n:$l"; done')
    assert "got1:a" in attach_talk(c, "a", "got1:a")
    pid = c.pid()
    c.checkpoint()
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10)
    c.restore()
    out = attach_talk(c, "b", "got2:b")
    assert "got2:b" in out, out


def test_podman_pre_checkpoint(container):
    """podman's pre-checkpoint (runc --pre-dump), then a checkpoint on top
    of it (runc --parent-path), then a restore from the chain."""
    c = container
    c.start()
    pid = c.pid()
    r = c.checkpoint("-P", "--print-stats")
    stats = json.loads(r.stdout)["container_statistics"][0]["criu_statistics"]
    assert stats["pages_written"] > 0, stats  # a pre-dump writes stats-dump too
    assert c.pid() == pid  # a pre-dump leaves it running
    c.wait_counter(c.counter() + 3)
    before = c.counter()
    c.checkpoint("--with-previous")
    assert (c.checkpoint_dir() / "parent").is_symlink()
    c.restore()
    check_restored(c, before)


def read_lines(fd, timeout=10):
    """Whole lines that arrive on pipe @fd within @timeout seconds (at least one)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    return buf.decode().split("\n")[:-1]


def test_inherit_fd_cli(tmp_path):
    """Without podman: `amber restore --inherit-fd fd[N]:pipe:[INO]` gives
    the restored loop the caller's pipe for its stdout (whose reader was
    outside the tree); the read end for a saved write end is refused."""
    p = subprocess.Popen(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    old = p.stdout.fileno()
    ino = os.fstat(old).st_ino
    restored = None
    r_new, w_new = os.pipe()
    try:
        seen = []
        while len(seen) < 10:  # a counter far from 1
            more = read_lines(old)
            assert more, "the loop writes nothing"
            seen += more
        img = tmp_path / "img"
        img.mkdir()
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(img), "-v4",
                            "-o", str(tmp_path / "dump.log")], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(tmp_path / "dump.log")
        p.wait(timeout=10)
        reap_all()  # its sleep, reparented to pytest (a subreaper): the pid is free again
        # what it wrote until the dump: its writers are gone, EOF follows
        rest = b""
        while chunk := os.read(old, 65536):
            rest += chunk
        last = int((seen + rest.decode().split())[-1])
        # the read end where the saved file is the write end: refused at load
        r = subprocess.run([str(amber_path()), "restore", "-D", str(img), "-d",
                            "--inherit-fd", f"fd[{r_new}]:pipe:[{ino}]", "-o",
                            str(tmp_path / "bad.log")], stdin=subprocess.DEVNULL,
                           pass_fds=(r_new,))
        assert r.returncode != 0
        assert "a read end, file" in read_text(tmp_path / "bad.log"), read_text(tmp_path / "bad.log")
        r = subprocess.run([str(amber_path()), "restore", "-D", str(img), "-d",
                            "--inherit-fd", f"fd[{w_new}]:pipe:[{ino}]", "--pidfile",
                            str(tmp_path / "pid"), "-v4", "-o", str(tmp_path / "rst.log")],
                           stdin=subprocess.DEVNULL, pass_fds=(w_new,))
        assert r.returncode == 0, read_text(tmp_path / "rst.log")
        restored = int((tmp_path / "pid").read_text())
        os.close(w_new)
        w_new = -1
        lines = read_lines(r_new)
        assert lines and int(lines[0]) >= last, (lines, last)  # not from 1
        # counting on, from where it was
        more = read_lines(r_new)
        assert more and int(more[-1]) > int(lines[0]), (lines, more)
        # the restored loop's stdout is the caller's pipe
        assert os.stat(f"/proc/{restored}/fd/1").st_ino == os.fstat(r_new).st_ino
    finally:
        kill_groups(restored, p.pid)
        if p.poll() is None:
            p.kill()
        p.wait()
        os.close(r_new)
        if w_new >= 0:
            os.close(w_new)
        reap_all()


def test_criu_version(tmp_path):
    """amber installed as `criu` answers `criu --version` as CRIU does
    (tools parse "Version: MAJOR.MINOR" from its first line)."""
    (tmp_path / "criu").symlink_to(amber_path())
    r = subprocess.run([str(tmp_path / "criu"), "--version"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    major, minor = first.removeprefix("Version: ").split(".")
    assert first.startswith("Version: ") and (int(major), int(minor)) >= (3, 16), first
