"""A tree in namespaces of its own, checkpointed in every zdtm mode.

UTS, IPC and network namespaces: a shell loop started by `unshare --uts
--ipc --net` that set its own hostname and kernel.msgmax and brought its
lo up is checkpointed mid-way; checked from outside, it must go on
counting from where it was (every tick once, in order), report the saved
hostname and msgmax and have lo up with 127.0.0.1 in namespaces that are
not amber's, and the host's values must be untouched. (Restoring one image twice at once needs a pid
namespace, not built yet: see docs/namespaces.md.)

Refused: a task whose UTS namespace differs from its tree root's (nested
UTS namespaces) fails the dump naming it, and the tree runs on.
"""

import os
import socket
import subprocess
import time

import pytest

from zdtm_runner import Run, amber_path, env_float, guarded, proc_stat, read_text

HOSTNAME = "amber-ns-test"
MSGMAX = 4321
TICKS = 80

LOOP = f"""
hostname {HOSTNAME} || exit 3
echo {MSGMAX} > /proc/sys/kernel/msgmax || exit 4
ip link set lo up || exit 5
for i in $(seq 1 {TICKS}); do
    echo "tick $i $(hostname) $(cat /proc/sys/kernel/msgmax)"
    sleep 0.05
done
echo done
"""


def ns_ino(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def uts_hostname(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def ipc_msgmax(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-i", "cat", "/proc/sys/kernel/msgmax"],
                       capture_output=True, text=True, check=True)
    return int(r.stdout)


def lo_addrs(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-br", "addr", "show", "lo"],
                       capture_output=True, text=True, check=True)
    return r.stdout.split()


def wait_lines(run, out, n):
    deadline = time.monotonic() + 60
    while out.read_text().count("\n") < n:
        if not run.alive(run.pid):
            pytest.fail("the loop ended before the checkpoint", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no progress within 60 s", pytrace=False)
        time.sleep(0.01)


def test_uts_ipc_net_namespaces(zdtm_mode):
    zdtm_mode.preflight()
    host = socket.gethostname()
    host_msgmax = read_text("/proc/sys/kernel/msgmax").strip()
    run = Run("uts_ns", zdtm_mode, compare_state=False)

    def body():
        out = run.dir / "out"
        with open(out, "wb") as f, open(run.dir / "err", "wb") as err:
            run.popen = subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "/bin/bash", "-c", LOOP],
                                         cwd=run.dir, stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=err, start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "err"]
        wait_lines(run, out, 5)
        for kind in ("uts", "ipc", "net"):
            assert ns_ino(run.pid, kind) != ns_ino(os.getpid(), kind)
        run.walk()
        zdtm_mode.checkpoint(run)
        if zdtm_mode.name != "nodump":
            for img in ("utsns-*.img", "ipcns-var-*.img", "netdev-*.img"):
                if not list(run.imgdir.glob(img)):
                    pytest.fail(f"no {img} in the image", pytrace=False)
        # Seen from outside the restored tree: its own namespaces, saved values.
        for kind in ("uts", "ipc", "net"):
            assert ns_ino(run.pid, kind) != ns_ino(os.getpid(), kind)
        lo = lo_addrs(run.pid)
        assert lo[:2] == ["lo", "UNKNOWN"] and "127.0.0.1/8" in lo, lo
        assert uts_hostname(run.pid) == HOSTNAME
        assert ipc_msgmax(run.pid) == MSGMAX
        assert socket.gethostname() == host
        assert read_text("/proc/sys/kernel/msgmax").strip() == host_msgmax
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the loop did not finish", pytrace=False)
        want = "".join(f"tick {i} {HOSTNAME} {MSGMAX}\n" for i in range(1, TICKS + 1)) + "done\n"
        got = out.read_text()
        if got != want:
            pytest.fail(f"output differs from an uninterrupted run:\n{got[-400:]}",
                        pytrace=False)

    guarded(run, body)


def test_nested_uts_refused(tmp_path):
    """The root in amber's UTS namespace, its child in one of its own."""
    p = subprocess.Popen(["/bin/sh", "-c", "unshare --uts sleep 1000 & wait"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        mine = ns_ino(os.getpid(), "uts")
        deadline = time.monotonic() + 10
        child = None
        while child is None and time.monotonic() < deadline:
            for c in read_text(f"/proc/{p.pid}/task/{p.pid}/children").split():
                try:
                    if read_text(f"/proc/{c}/comm").strip() == "sleep" and \
                            ns_ino(c, "uts") != mine:
                        child = int(c)
                except OSError:
                    pass
            time.sleep(0.01)
        assert child, "the child never entered a UTS namespace of its own"
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           capture_output=True)
        text = log.read_text() if log.exists() else r.stderr.decode()
        assert r.returncode != 0, "the dump of a nested UTS namespace succeeded"
        assert f"process {child} is in a uts namespace other than the tree root's" in text, text
        for pid in (p.pid, child):
            st = proc_stat(pid)
            assert st is not None and st[0] in "SR", f"{pid} not running after the refusal"
            assert "TracerPid:\t0" in read_text(f"/proc/{pid}/status")
    finally:
        os.killpg(p.pid, 9)
        p.wait()


def test_bad_utsns_image_refused(tmp_path):
    """A utsns image with a name the kernel can't take: refused before any task."""
    import sys
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    from pycriu import images

    p = subprocess.Popen(["unshare", "--uts", "sleep", "1000"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while read_text(f"/proc/{p.pid}/comm").strip() != "sleep":
            assert time.monotonic() < deadline, "unshare never exec'd sleep"
            time.sleep(0.01)
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-o", "dump.log"], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    (img,) = imgdir.glob("utsns-*.img")
    with open(img, "rb") as f:
        data = images.load(f)
    data["entries"][0]["nodename"] = "x" * 100
    with open(img, "wb") as f:
        images.dump(data, f)
    (imgdir / "amber.sums").unlink()
    r = subprocess.run([str(amber_path()), "restore", "-D", str(imgdir), "-d"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    log = r.stderr
    assert r.returncode != 0, "a 100-byte hostname was restored"
    assert f"{img.name}: a name longer than the kernel's 64 bytes" in log, log
    assert "nothing was restored" in log, log
    assert proc_stat(p.pid) is None, "a task was created"
