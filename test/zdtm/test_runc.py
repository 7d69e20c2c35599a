"""runc with amber as its criu: `runc --criu AMBER checkpoint` and
`runc restore -d` of a busybox container (docs/namespaces.md).

The bundle is made offline from busybox-static: a shell keeps a counter
in a shell variable (memory) and writes it to a file on a tmpfs /tmp, next
to a marker file written once. From outside, the restored container's
counter must go on from where it was and the marker must be intact: the
mount namespace (runc's tmpfs, proc, sysfs, devpts, mqueue, its external
bind mounts), the pid, UTS, IPC and network namespaces and the memory all
came back. Mode-independent: runs once, not per zdtm mode.
"""

import array
import json
import os
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from zdtm_runner import amber_path, kill_groups, read_counter, read_text, reap_all, wait_until

RUNC = shutil.which("runc")
BUSYBOX = Path("/bin/busybox")
MARKER = "amber-marker 0123456789"


def need_runc():
    if not RUNC or not BUSYBOX.exists():
        pytest.skip("runc or busybox-static missing (scripts/packages-test.txt)")


def alive(pid):
    """Running (not gone, not a zombie of ours: pytest is a subreaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def runc(*args, **kw):
    return subprocess.run([RUNC, *map(str, args)], capture_output=True, text=True, **kw)


class Container:
    """A detached busybox container made from busybox-static."""

    def __init__(self, tmp: Path, name: str, setup: str = "", tick: str = "",
                 overlay: bool = False):
        self.tmp = tmp
        self.bundle = tmp / "bundle"
        self.cid = f"amber-{name}-{os.getpid()}"
        self.overlay = None
        (self.bundle / "rootfs/bin").mkdir(parents=True)
        (self.bundle / "rootfs/tmp").mkdir()
        shutil.copy(BUSYBOX, self.bundle / "rootfs/bin/busybox")
        for c in ("sh", "sleep", "cat", "echo", "ln", "ls", "mkfifo"):
            (self.bundle / "rootfs/bin" / c).symlink_to("busybox")
        subprocess.check_call([RUNC, "spec"], cwd=self.bundle)
        cfg = json.loads((self.bundle / "config.json").read_text())
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = [
            "/bin/sh", "-c",
            f"{setup}echo '{MARKER}' > /tmp/marker; i=0; "
            f"while true; do i=$((i+1)); echo $i > /tmp/counter; {tick}sleep 0.05; done"]
        cfg["root"]["readonly"] = False
        cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid", "nodev", "mode=1777"]})
        # A volume: runc names it to amber as an external mount.
        self.volume = tmp / "volume"
        self.volume.mkdir()
        (self.volume / "data").write_text(MARKER + "\n")
        (self.bundle / "rootfs/data").mkdir()
        cfg["mounts"].append({"destination": "/data", "type": "bind",
                              "source": str(self.volume), "options": ["rbind", "ro"]})
        (self.bundle / "config.json").write_text(json.dumps(cfg))
        if overlay:
            self.mount_overlay()

    def mount_overlay(self):
        """The rootfs made the lower layer of an overlay mounted on the
        bundle's rootfs (as podman's overlay driver does), upper and work
        directories beside it."""
        lower, self.overlay = self.tmp / "lower", self.tmp / "upper"
        (self.bundle / "rootfs").rename(lower)
        for d in (self.bundle / "rootfs", self.overlay, self.tmp / "work"):
            d.mkdir()
        subprocess.check_call(["mount", "-t", "overlay", "amber-rootfs", "-o",
                               f"lowerdir={lower},upperdir={self.overlay},"
                               f"workdir={self.tmp / 'work'}", str(self.bundle / "rootfs")])

    def run(self):
        subprocess.check_call([RUNC, "run", "-d", self.cid], cwd=self.bundle,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        self.wait_counter(1)

    def state(self):
        r = runc("state", self.cid)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def read(self, name):
        st = self.state()
        assert st and st["status"] == "running", st
        return (Path("/proc") / str(st["pid"]) / "root/tmp" / name).read_text().strip()

    def counter(self):
        return read_counter(self.read)

    def wait_counter(self, above):
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.counter() > above:
                    return
            except AssertionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the counter did not pass {above}")

    def checkpoint(self, images, work, *extra):
        st = self.state()
        self.cgroups = (Path("/proc") / str(st["pid"]) / "cgroup").read_text()
        r = runc("--criu", amber_path(), "checkpoint", "--image-path", images,
                 "--work-path", work, *extra, self.cid)
        log = read_text(Path(work) / "dump.log")
        assert r.returncode == 0, f"{r.stderr}\n{log}"
        return log

    def restore(self, images, work, *extra):
        r = runc("--criu", amber_path(), "restore", "-d", "--image-path", images,
                 "--work-path", work, *extra, self.cid, cwd=self.bundle,
                 stdin=subprocess.DEVNULL)
        log = read_text(Path(work) / "restore.log")
        assert r.returncode == 0, f"{r.stderr}\n{log}"
        return log

    def checkpoint_refused(self, images, work, why):
        """The checkpoint fails, saying @why in its log; the container runs on."""
        pid = self.state()["pid"]
        r = runc("--criu", amber_path(), "checkpoint", "--image-path", images,
                 "--work-path", work, self.cid)
        log = read_text(Path(work) / "dump.log")
        assert r.returncode != 0
        assert why in log, log
        assert self.state()["status"] == "running" and self.state()["pid"] == pid
        self.wait_counter(self.counter() + 2)

    def delete(self):
        runc("delete", "-f", self.cid)
        if self.overlay:
            subprocess.run(["umount", str(self.bundle / "rootfs")])
            self.overlay = None


@pytest.fixture
def container(tmp_path):
    need_runc()
    c = Container(tmp_path, "runc")
    try:
        yield c
    finally:
        c.delete()


def check_restored(c, before):
    st = c.state()
    assert st and st["status"] == "running", st
    assert c.read("marker") == MARKER
    # It goes on from the saved value: not restarted from 1.
    first = c.counter()
    assert first >= before, (first, before)
    c.wait_counter(first + 3)
    # The container's own mounts, made again inside it.
    mounts = (Path("/proc") / str(st["pid"]) / "mountinfo").read_text()
    for mp in (" /proc ", " /dev ", " /dev/pts ", " /dev/mqueue ", " /sys ", " /tmp "):
        assert mp in mounts, mounts
    # Back in its cgroups (runc's, which amber's images name too).
    assert (Path("/proc") / str(st["pid"]) / "cgroup").read_text() == c.cgroups
    # runc can still reach into it; the volume is bound in again.
    r = runc("exec", c.cid, "cat", "/tmp/marker")
    assert r.returncode == 0 and r.stdout.strip() == MARKER, r
    r = runc("exec", c.cid, "cat", "/data/data")
    assert r.returncode == 0 and r.stdout.strip() == MARKER, r
    assert " /data ro," in mounts, mounts


def test_runc_checkpoint_restore(container, tmp_path):
    c = container
    c.run()
    c.wait_counter(5)
    pid, before = c.state()["pid"], c.counter()
    c.checkpoint(tmp_path / "img", tmp_path / "work")
    assert c.state() is None or c.state()["status"] != "running"
    assert not alive(pid)
    assert list((tmp_path / "img").glob("mountpoints-*.img"))
    assert list((tmp_path / "img").glob("tmpfs-dev-*.tar.gz.img"))
    c.restore(tmp_path / "img", tmp_path / "work2")
    check_restored(c, before)


def test_runc_overlay_rootfs(tmp_path):
    """The rootfs an overlay the caller mounted (podman's overlay driver):
    saved as the root mount, it is the one runc hands the restore, bound
    as it is; the container's writes to it go on into the upper directory
    after the restore, every tick once."""
    need_runc()
    c = Container(tmp_path, "runc-ovl", setup="exec 3>>/ovl-log; ", tick="echo $i >&3; ",
                  overlay=True)
    try:
        c.run()
        c.wait_counter(5)
        root = (Path("/proc") / str(c.state()["pid"]) / "mountinfo").read_text().splitlines()[0]
        assert root.split()[4] == "/" and " - overlay amber-rootfs " in root, root
        before = c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work-d")
        at_dump = len((c.overlay / "ovl-log").read_text().split())
        log = c.restore(tmp_path / "img", tmp_path / "work-r")
        assert "the root overlay is the one mounted on --root" in log, log
        check_restored(c, before)
        c.wait_counter(c.counter() + 3)
        ticks = [int(t) for t in (c.overlay / "ovl-log").read_text().split()]
        assert len(ticks) > at_dump + 2, (at_dump, ticks[-5:])
        assert ticks == list(range(1, len(ticks) + 1)), ticks
    finally:
        c.delete()


def test_runc_leave_running_then_restore(container, tmp_path):
    """--leave-running: the container goes on; killed, then restored from
    the images, it goes on from the saved counter."""
    c = container
    c.run()
    c.wait_counter(5)
    before = c.counter()
    c.checkpoint(tmp_path / "img", tmp_path / "work", "--leave-running")
    c.wait_counter(c.counter() + 2)  # still running
    c.delete()
    c.restore(tmp_path / "img", tmp_path / "work2")
    check_restored(c, before)


@pytest.mark.parametrize("mode", ["soft", "full", "strict"])
def test_runc_manage_cgroups_mode(container, tmp_path, mode):
    """runc checkpoint --manage-cgroups-mode reaches amber's dump (RPC
    manage_cgroups_mode), and the images restore through runc. (runc 1.1.5
    sent no manage_cgroups_mode in its RESTORE request here, with the flag
    given: amber's restore log has no such line; the restore then runs in
    amber's default, soft.)"""
    c = container
    c.run()
    c.wait_counter(3)
    before = c.counter()
    log = c.checkpoint(tmp_path / "img", tmp_path / "work", "--manage-cgroups-mode", mode)
    assert f"manage_cgroups_mode {mode}" in log, log
    c.restore(tmp_path / "img", tmp_path / "work2", "--manage-cgroups-mode", mode)
    check_restored(c, before)


def test_runc_pre_dump(container, tmp_path):
    """runc's iterative migration: --pre-dump, then a dump with --parent-path."""
    c = container
    c.run()
    c.wait_counter(3)
    c.checkpoint(tmp_path / "p1", tmp_path / "w1", "--pre-dump")
    assert c.state()["status"] == "running"
    c.wait_counter(c.counter() + 2)
    before = c.counter()
    c.checkpoint(tmp_path / "p2", tmp_path / "w2", "--parent-path", "../p1")
    assert (tmp_path / "p2/parent").is_symlink()
    c.restore(tmp_path / "p2", tmp_path / "w3")
    check_restored(c, before)


def test_runc_page_server(container, tmp_path):
    """runc checkpoint --page-server: the pages stream to `amber
    page-server` (runc has no token to give: unauthenticated, on
    localhost), which writes them into its own directory; put beside the
    other images, they restore the container."""
    c = container
    c.run()
    c.wait_counter(5)
    srv = tmp_path / "srv"
    srv.mkdir()
    ps = subprocess.Popen([str(amber_path()), "page-server", "--address", "127.0.0.1",
                           "--port", "0", "-D", str(srv), "-v4", "-o",
                           str(tmp_path / "ps.log")], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = ps.stdout.readline()
        port = line.rsplit(":", 1)[-1].split()[0] if ":" in line else ""
        assert port.isdigit(), f"page server did not start: {line!r}"
        before = c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work", "--page-server", f"127.0.0.1:{port}")
        assert ps.wait(timeout=60) == 0, read_text(tmp_path / "ps.log")[-2000:]
    finally:
        if ps.poll() is None:
            ps.kill()
            ps.wait()
    assert not list((tmp_path / "img").glob("pages-*.img")), "pages written locally"
    pages = list(srv.glob("pages-*.img"))
    assert pages, sorted(p.name for p in srv.iterdir())
    for p in srv.iterdir():
        shutil.copy2(p, tmp_path / "img" / p.name)
    c.restore(tmp_path / "img", tmp_path / "work2")
    check_restored(c, before)


def test_runc_restore_foreground(container, tmp_path):
    """`runc restore` without -d waits for the container: with rst_sibling
    the restored init is runc's child, and runc returns once it is killed."""
    c = container
    c.run()
    c.wait_counter(3)
    before = c.counter()
    c.checkpoint(tmp_path / "img", tmp_path / "work")
    p = subprocess.Popen([RUNC, "--criu", str(amber_path()), "restore", "--image-path",
                          str(tmp_path / "img"), "--work-path", str(tmp_path / "work2"), c.cid],
                         cwd=c.bundle, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 10
        while (c.state() or {}).get("status") != "running" and time.time() < deadline:
            assert p.poll() is None, p.stderr.read() + read_text(tmp_path / "work2/restore.log")
            time.sleep(0.05)
        check_restored(c, before)
        init = c.state()["pid"]
        ppid = int(Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid == p.pid, (ppid, p.pid)
        runc("kill", c.cid, "KILL")
        p.wait(timeout=10)  # runc returns once its child, the container, is gone
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_mount_ns_cli(tmp_path):
    """Without runc: a loop that pivot_root'ed into a busybox root with a
    tmpfs of its own, dumped with `amber dump` and restored with
    `amber restore --root`: it counts on in the new mount namespace, its
    tmpfs file back, amber's mounts untouched."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static missing (scripts/packages-test.txt)")
    root = tmp_path / "root"
    for d in ("bin", "tmp", "old", "proc"):
        (root / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin/busybox")
    for c in ("sh", "sleep", "umount", "mount"):
        (root / "bin" / c).symlink_to("busybox")
    # amber's /dev/null is not in its mounts: no fd may point outside them.
    loop = (f"mount -t proc proc /proc; umount -l /old; exec 0<&- 1>&- 2>&-; echo {MARKER} > /tmp/marker; i=0; "
            "while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done")
    p = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount --bind {root} {root} && mount -t tmpfs -o mode=1777 t {root}/tmp && "
         f"cd {root} && /bin/busybox pivot_root . old && "
         f"exec /bin/busybox chroot . /bin/sh -c '{loop}'"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    pid = p.pid

    def counter(pid):
        for _ in range(100):
            try:
                return int(Path(f"/proc/{pid}/root/tmp/counter").read_text())
            except (OSError, ValueError):
                time.sleep(0.02)
        raise AssertionError("no counter")
    restored = None
    try:
        deadline = time.time() + 10
        while True:
            assert p.poll() is None and time.time() < deadline, "the loop did not start"
            try:
                if counter(pid) > 3:
                    break
            except AssertionError:
                pass
            time.sleep(0.05)
        host_mounts = Path("/proc/self/mountinfo").read_text()
        img = tmp_path / "img"
        img.mkdir()
        log = tmp_path / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(pid), "-D", str(img),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(log)
        p.wait(timeout=10)
        reap_all()  # its sleep, reparented to pytest (a subreaper)
        assert not (root / "tmp/counter").exists()  # the tmpfs was the tree's alone
        log = tmp_path / "restore.log"
        r = subprocess.run([str(amber_path()), "restore", "-D", str(img), "-d", "--root",
                            str(root), "--pidfile", str(tmp_path / "pid"), "-v4", "-o",
                            str(log)], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(log)
        restored = int((tmp_path / "pid").read_text())
        first = counter(restored)
        assert first > 3
        deadline = time.time() + 10
        while counter(restored) < first + 3:
            assert time.time() < deadline, "the restored loop does not count"
            time.sleep(0.05)
        assert Path(f"/proc/{restored}/root/tmp/marker").read_text().strip() == MARKER
        mounts = Path(f"/proc/{restored}/mountinfo").read_text().splitlines()
        assert [m.split()[4] for m in mounts] == ["/", "/tmp", "/proc"], mounts
        assert Path("/proc/self/mountinfo").read_text() == host_mounts
    finally:
        kill_groups(restored, pid)
        for victim in (restored, pid):
            if victim:
                try:
                    os.kill(victim, 9)
                except OSError:
                    pass
        p.wait()
        reap_all()


def test_runc_shared_file_in_container(tmp_path):
    """A file on the container's tmpfs held open by the shell and its
    children (one open file, shared) is reopened in the container's
    mounts, not amber's: after the restore the shared fd still appends to
    the container's /tmp/log, and nothing appears at the host's."""
    need_runc()
    name = f"amber-shared-{os.getpid()}.log"
    host = Path("/tmp") / name
    assert not host.exists()
    c = Container(tmp_path, "shared", setup=f"exec 3>>/tmp/{name}; ")
    try:
        c.run()
        # The loop's sleep inherits fd 3: two tasks on one open file.
        cfg = json.loads((c.bundle / "config.json").read_text())
        assert "exec 3>>" in cfg["process"]["args"][2]
        c.wait_counter(3)
        before = c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        log = c.restore(tmp_path / "img", tmp_path / "work2")
        check_restored(c, before)
        pid = c.state()["pid"]
        fd3 = os.readlink(f"/proc/{pid}/fd/3")
        assert fd3 == f"/tmp/{name}", fd3
        # the container's file, on its tmpfs: the same inode as its /tmp/NAME
        st_fd = os.stat(f"/proc/{pid}/fd/3")
        st_in = os.stat(f"/proc/{pid}/root/tmp/{name}")
        assert (st_fd.st_dev, st_fd.st_ino) == (st_in.st_dev, st_in.st_ino), log
        assert not host.exists()
    finally:
        c.delete()
        if host.exists():
            host.unlink()


def test_runc_fifo_in_container(tmp_path):
    """A FIFO on the container's tmpfs, held open read-write by the shell
    and its children (one open file, shared), with data in it: the
    restore's root makes it again among the container's mounts, and the
    data is there to be read from inside after the restore."""
    need_runc()
    c = Container(tmp_path, "fifo", setup="mkfifo /tmp/f; exec 4<>/tmp/f; echo queued >&4; ")
    try:
        c.run()
        c.wait_counter(3)
        before = c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        c.restore(tmp_path / "img", tmp_path / "work2")
        check_restored(c, before)
        pid = c.state()["pid"]
        st_fd = os.stat(f"/proc/{pid}/fd/4")
        st_in = os.stat(f"/proc/{pid}/root/tmp/f")
        assert (st_fd.st_dev, st_fd.st_ino) == (st_in.st_dev, st_in.st_ino)
        r = runc("exec", c.cid, "sh", "-c", "read -r l < /tmp/f; echo got:$l", timeout=20)
        assert r.returncode == 0 and r.stdout.strip() == "got:queued", r
    finally:
        c.delete()


CT_FILES = Path(__file__).resolve().parent / "helpers" / "ct_files"


@pytest.mark.parametrize("parts", ["unix", "unix,fifo,pty"])
def test_runc_files_in_container(tmp_path, parts):
    """helpers/ct_files as a container's process (a tmpfs on /run): unix
    sockets bound to paths in the container (a listener with an accepted
    client and a queued one, data queued both ways, a dgram pair, a name
    unlinked since), a FIFO with data and a pty pair of the container's
    devpts (settings, data queued both ways), through `runc checkpoint`
    and `runc restore`; the helper checks them all afterwards, from
    inside."""
    need_runc()
    assert CT_FILES.exists(), f"{CT_FILES} is not built: make -C test/zdtm"
    c = Container(tmp_path, "ctfiles")
    shutil.copy(CT_FILES, c.bundle / "rootfs/ct_files")
    (c.bundle / "rootfs/run").mkdir()
    cfg = json.loads((c.bundle / "config.json").read_text())
    cfg["process"]["args"] = ["/ct_files", "-", parts]
    # runc's default set lacks them: the helper gives its socket an owner
    # other than root, then connects to it
    for caps in cfg["process"]["capabilities"].values():
        caps += ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]
    cfg["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "mode=755"]})
    (c.bundle / "config.json").write_text(json.dumps(cfg))

    def run_path(name):
        return Path(f"/proc/{c.state()['pid']}/root/run/{name}")
    try:
        subprocess.check_call([RUNC, "run", "-d", c.cid], cwd=c.bundle,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        assert wait_until(lambda: run_path("ready").exists(), 10), "ct_files did not start"
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        c.restore(tmp_path / "img", tmp_path / "work2")
        run_path("check").write_text("")
        assert wait_until(lambda: run_path("result").exists(), 20), "no result"
        assert run_path("result").read_text() == "PASS"
        run_path("done").write_text("")
    finally:
        c.delete()


def test_runc_restore_as_another_container(container, tmp_path):
    """Restored under another id, the container is in that id's cgroups
    (runc's cg_root: --cgroup-root takes the saved cgroup's place)."""
    c = container
    c.run()
    c.wait_counter(3)
    before = c.counter()
    c.checkpoint(tmp_path / "img", tmp_path / "work")
    other = c.cid + "-b"
    r = runc("--criu", amber_path(), "restore", "-d", "--image-path", tmp_path / "img",
             "--work-path", tmp_path / "work2", other, cwd=c.bundle, stdin=subprocess.DEVNULL)
    try:
        assert r.returncode == 0, r.stderr + read_text(tmp_path / "work2/restore.log")
        st = json.loads(runc("state", other).stdout)
        cg = (Path("/proc") / str(st["pid"]) / "cgroup").read_text()
        assert f"0::/{other}\n" in cg or f"/{other}\n" in cg, cg
        assert c.cid + "\n" not in cg, cg
        path = Path("/proc") / str(st["pid"]) / "root/tmp/counter"
        assert wait_until(lambda: (path.read_text().strip() or "0").isdigit() and
                          int(path.read_text().strip() or 0) > before, 10)
    finally:
        runc("delete", "-f", other)


def console_listener(path: Path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    s.settimeout(30)
    return s


def receive_master(listener):
    """The pty master runc sends to --console-socket (SCM_RIGHTS)."""
    conn, _ = listener.accept()
    with conn:
        _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4))
    fds = array.array("i")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:4])
    assert len(fds) == 1, anc
    return fds[0]


def talk(master, line, want, timeout=10):
    """Types @line into the terminal; what the container answers, once it has @want."""
    os.write(master, line.encode() + b"\n")
    out, deadline = b"", time.time() + timeout
    while time.time() < deadline and want.encode() not in out:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            out += os.read(master, 4096)
    return out.decode(errors="replace")


class TerminalContainer(Container):
    """terminal: true: runc gives the pty master to --console-socket. The
    init reads lines from its terminal and answers with a count it keeps
    in memory; a background loop keeps the counter file going."""

    def __init__(self, tmp: Path, name: str, setup: str = ""):
        super().__init__(tmp, name)
        cfg = json.loads((self.bundle / "config.json").read_text())
        cfg["process"]["terminal"] = True
        cfg["process"]["args"] = [
            "/bin/sh", "-c",
            f"{setup}echo '{MARKER}' > /tmp/marker; "
            "(i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done) & "
            'n=0; while read line; do n=$((n+1)); echo "got$n:$line"; done']
        (self.bundle / "config.json").write_text(json.dumps(cfg))
        self.master = -1

    def run(self):
        sock = self.tmp / "console1.sock"
        with console_listener(sock) as ls:
            p = subprocess.Popen([RUNC, "run", "-d", "--console-socket", str(sock), self.cid],
                                 cwd=self.bundle, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.master = receive_master(ls)
            assert p.wait(timeout=30) == 0
        self.wait_counter(1)

    def restore(self, images, work):
        sock = self.tmp / "console2.sock"
        with console_listener(sock) as ls:
            p = subprocess.Popen([RUNC, "--criu", amber_path(), "restore", "-d",
                                  "--console-socket", str(sock), "--image-path", str(images),
                                  "--work-path", str(work), self.cid],
                                 cwd=self.bundle, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                master = receive_master(ls)
            except OSError:
                p.kill()
                raise AssertionError(p.communicate()[1] +
                                     read_text(Path(work) / "restore.log"))
            _, err = p.communicate(timeout=30)
            assert p.returncode == 0, err + read_text(Path(work) / "restore.log")
        if self.master >= 0:
            os.close(self.master)
        self.master = master
        return read_text(Path(work) / "restore.log")

    def delete(self):
        super().delete()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def test_runc_terminal(tmp_path):
    """A container with a terminal (runc run --console-socket): the
    checkpoint saves its pty slave without the master (runc's, through
    orphan_pts_master), the restore makes a new pair in the container's
    devpts and hands the master to runc in an "orphan-pts-master"
    notification, which runc passes to the new console socket. Typing
    into that master reaches the restored shell, whose count goes on; the
    slave is its controlling terminal again, /dev/console bound to it."""
    need_runc()
    c = TerminalContainer(tmp_path, "tty")
    try:
        c.run()
        out = talk(c.master, "hello", "got1:hello")
        assert "got1:hello" in out, out
        c.wait_counter(3)
        pid, before = c.state()["pid"], c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        assert not alive(pid)
        c.restore(tmp_path / "img", tmp_path / "work2")
        check_restored(c, before)
        # the shell's count, in its memory, goes on through the new master
        out = talk(c.master, "again", "got2:again")
        assert "got2:again" in out, out
        out = talk(c.master, "more", "got3:more")
        assert "got3:more" in out, out
        init = c.state()["pid"]
        stat = Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()
        # session leader with /dev/pts/0 (136:0) as its terminal, in the foreground
        assert int(stat[3]) == init and int(stat[4]) == 136 << 8, stat
        assert int(stat[5]) == init, stat
        assert os.readlink(f"/proc/{init}/fd/0") == "/dev/pts/0"
        assert os.path.samestat(os.stat(f"/proc/{init}/fd/0"),
                                os.stat(f"/proc/{init}/root/dev/console"))
        assert " /dev/console " in Path(f"/proc/{init}/mountinfo").read_text()
    finally:
        c.delete()


def pty_index(pid, fd):
    """The index of the pty master @fd of @pid (its fdinfo's tty-index)."""
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("tty-index:"):
            return int(line.split()[1])
    raise AssertionError(f"fd {fd} of {pid} is not a pty master")


def test_runc_terminal_second_pty(tmp_path):
    """A terminal container whose shell also holds a pty master of its own
    (a second pair, in the container's devpts, next to runc's terminal):
    the restore makes both in the container's devpts again, the terminal
    at index 0, the shell's master at its own index, and the terminal
    keeps working."""
    need_runc()
    c = TerminalContainer(tmp_path, "tty2", setup="exec 5<>/dev/ptmx; ")
    try:
        c.run()
        out = talk(c.master, "hello", "got1:hello")
        assert "got1:hello" in out, out
        c.wait_counter(3)
        init, before = c.state()["pid"], c.counter()
        index = pty_index(init, 5)
        assert index == 1, index
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        log = c.restore(tmp_path / "img", tmp_path / "work2")
        assert f"/dev/pts/{index}: made in the tree's devpts" in log, log
        check_restored(c, before)
        out = talk(c.master, "again", "got2:again")
        assert "got2:again" in out, out
        init = c.state()["pid"]
        assert pty_index(init, 5) == index
        assert os.readlink(f"/proc/{init}/fd/0") == "/dev/pts/0"
        # the pair is the container's: its slave is there, on its devpts
        r = runc("exec", c.cid, "ls", f"/dev/pts/{index}")
        assert r.returncode == 0, r
    finally:
        c.delete()


def test_runc_host_pty_refused(tmp_path):
    """A container without a terminal of its own whose stdio is a pty of
    the host's (runc run -d hands its own stdio down): runc asks for
    orphan_pts_master, but that slave is on the host's devpts, which the
    container's restore could not make it on again. The checkpoint is
    refused, saying so, and the container runs on."""
    need_runc()
    c = Container(tmp_path, "hostpty")
    master, slave = os.openpty()
    try:
        subprocess.check_call([RUNC, "run", "-d", c.cid], cwd=c.bundle,
                              stdin=slave, stdout=slave, stderr=slave)
        c.wait_counter(3)
        pid = c.state()["pid"]
        assert os.readlink(f"/proc/{pid}/fd/0").startswith("/dev/pts/")
        c.checkpoint_refused(tmp_path / "img", tmp_path / "work",
                             "is not on a devpts mounted in the tree's mount namespace")
    finally:
        c.delete()
        os.close(master)
        os.close(slave)


def test_runc_terminal_pre_dump_leave_running(tmp_path):
    """A terminal container pre-dumped, then checkpointed with
    --leave-running: its terminal keeps working through the old master
    meanwhile; killed, it is restored from those images with a new one,
    the count in its memory going on from the checkpoint's."""
    need_runc()
    c = TerminalContainer(tmp_path, "ttylr")
    try:
        c.run()
        assert "got1:a" in talk(c.master, "a", "got1:a")
        c.checkpoint(tmp_path / "p1", tmp_path / "w1", "--pre-dump")
        assert "got2:b" in talk(c.master, "b", "got2:b")
        # read before the checkpoint: the container counts on after it
        # (--leave-running), and the restore goes on from the checkpoint's
        c.wait_counter(3)
        before = c.counter()
        c.checkpoint(tmp_path / "p2", tmp_path / "w2", "--leave-running",
                     "--parent-path", "../p1")
        assert "got3:c" in talk(c.master, "c", "got3:c")  # the old master, still its
        runc("delete", "-f", c.cid)
        c.restore(tmp_path / "p2", tmp_path / "w3")
        check_restored(c, before)
        assert "got3:d" in talk(c.master, "d", "got3:d")  # from the checkpoint's count
    finally:
        c.delete()


def memory_limit(pid):
    """The container's memory limit, from its memory cgroup: cgroup v2's
    memory.max where the controller is there, else v1's limit_in_bytes."""
    v1 = v2 = None
    for line in (Path("/proc") / str(pid) / "cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        if "memory" in ctls.split(","):
            v1 = path
        elif ctls == "":
            v2 = path
    if v1 is not None:
        return (Path("/sys/fs/cgroup/memory") / v1.lstrip("/") /
                "memory.limit_in_bytes").read_text().strip()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            mnt = Path(fields[0].split()[4])
            return (mnt / v2.lstrip("/") / "memory.max").read_text().strip()
    raise AssertionError("no memory cgroup")


def test_runc_memory_limit(tmp_path):
    """A container with a memory limit keeps it across checkpoint and
    restore (runc makes the cgroup again, amber's default soft mode leaves
    an existing cgroup's properties as they are)."""
    need_runc()
    limit = str(64 << 20)
    c = Container(tmp_path, "memlimit")
    cfg = json.loads((c.bundle / "config.json").read_text())
    cfg["linux"].setdefault("resources", {})["memory"] = {"limit": int(limit)}
    (c.bundle / "config.json").write_text(json.dumps(cfg))
    try:
        c.run()
        c.wait_counter(3)
        assert memory_limit(c.state()["pid"]) == limit
        before = c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        c.restore(tmp_path / "img", tmp_path / "work2")
        check_restored(c, before)
        assert memory_limit(c.state()["pid"]) == limit
    finally:
        c.delete()


TMUX = shutil.which("tmux")
# The pane's program: reads commands from its terminal and runs them (not
# an interactive busybox sh, which opens /dev/tty: refused, see
# docs/limitations.md).
PANE = 'while read -r l; do eval "$l"; done'


def test_runc_tmux(tmp_path):
    """tmux inside a container (the host's /usr bound read-only, /lib and
    /lib64 links into it, as an image would carry them): its server
    listens on /tmp/tmux-0/default, a unix socket of the container's
    tmpfs, and holds the pane's pty master, the pane's shell its slave,
    both of the container's devpts. After `runc checkpoint` and `runc
    restore`, `runc exec tmux capture-pane` still shows what was typed
    before, and a command typed after the restore (send-keys, through a
    new connection to the restored socket) runs in the pane's shell
    (a read loop: PANE)."""
    need_runc()
    if not TMUX or not TMUX.startswith("/usr/"):
        pytest.skip("tmux is not installed under /usr (scripts/packages-test.txt)")
    c = Container(tmp_path, "tmux")
    root = c.bundle / "rootfs"
    (root / "usr").mkdir()
    for name in ("lib", "lib64"):
        (root / name).symlink_to(f"usr/{name}")
    cfg = json.loads((c.bundle / "config.json").read_text())
    cfg["process"]["args"] = [
        "/bin/sh", "-c",
        f"tmux new-session -d -s main -x 100 -y 30 '{PANE}' || exit 1; "
        "while true; do sleep 0.1; done"]
    cfg["process"]["env"] = [e for e in cfg["process"]["env"] if not e.startswith("TERM=")]
    cfg["process"]["env"] += ["TERM=xterm", "SHELL=/bin/sh"]
    cfg["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                          "options": ["rbind", "ro"]})
    (c.bundle / "config.json").write_text(json.dumps(cfg))

    def tmux(*args):
        return runc("exec", c.cid, "tmux", *args, timeout=20)

    def pane_shows(text):
        def shown():
            r = tmux("capture-pane", "-p", "-t", "main")
            return r.returncode == 0 and text in r.stdout
        return wait_until(shown, 10, 0.1)
    try:
        subprocess.check_call([RUNC, "run", "-d", c.cid], cwd=c.bundle,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        assert wait_until(lambda: tmux("has-session", "-t", "main").returncode == 0, 10, 0.1), \
            tmux("has-session", "-t", "main")
        r = tmux("send-keys", "-t", "main", "echo before-$((6*7))", "Enter")
        assert r.returncode == 0, r
        assert pane_shows("before-42"), tmux("capture-pane", "-p", "-t", "main")
        c.checkpoint(tmp_path / "img", tmp_path / "work")
        log = c.restore(tmp_path / "img", tmp_path / "work2")
        assert "made in the tree's devpts" in log, log
        r = tmux("capture-pane", "-p", "-t", "main")
        assert r.returncode == 0 and "before-42" in r.stdout, r
        r = tmux("send-keys", "-t", "main", "echo after-$((7*6))", "Enter")
        assert r.returncode == 0, r
        assert pane_shows("after-42"), tmux("capture-pane", "-p", "-t", "main")
    finally:
        c.delete()
