"""amber's own RLIMIT_NOFILE against the tree's limits (static/rlimits
tests that every saved limit comes back).

A restore holds the tree's files again as service fds above the tree's
highest fd: amber raises its soft limit to its hard one, so a tree of many
sockets restores from a shell's soft 1024. A saved hard limit above the
caller's can't be set again without CAP_SYS_RESOURCE (root may lack it):
the restore refuses it, naming it, before any task exists, and the same
images restore once the caller's limit allows them.
"""

import os
import signal
import subprocess
import time

import pytest

from zdtm_runner import amber_path, read_text

PY = "/usr/bin/python3"
PAIRS = 600
CAP_SYS_RESOURCE = 24
# 2 * PAIRS sockets: past a soft limit of 1024 once amber's service fds
# sit above them. Writes "ready" once they exist.
TREE = ("import resource, socket, sys, time\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))\n"
        f"pairs = [socket.socketpair() for _ in range({PAIRS})]\n"
        "print('ready', flush=True)\n"
        "time.sleep(1000)")


def nofile(pid):
    """(soft, hard) RLIMIT_NOFILE of @pid, from /proc/PID/limits."""
    for line in read_text(f"/proc/{pid}/limits").splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files limit for {pid}")


def amber(*args, limit=None):
    """amber ARGS, under `prlimit --nofile=LIMIT` when given."""
    pre = ["prlimit", f"--nofile={limit}"] if limit else []
    return subprocess.run([*pre, str(amber_path()), *map(str, args)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)


def start(argv):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True, text=True)
    return p


def dump(p, img):
    img.mkdir()
    r = amber("dump", "-t", p.pid, "-D", img, "-v4", "-o", img / "dump.log")
    assert r.returncode == 0, read_text(img / "dump.log")
    p.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{p.pid}") and time.monotonic() < deadline:
        time.sleep(0.01)


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_many_sockets_restore_from_soft_1024(tmp_path):
    """Restored under a soft limit of 1024, past which its service fds go."""
    p = start([PY, "-c", TREE])
    try:
        assert p.stdout.readline().strip() == "ready"
        saved = nofile(p.pid)
        dump(p, tmp_path / "img")
        r = amber("restore", "-d", "-D", tmp_path / "img", "-v4", "-o",
                  tmp_path / "img/restore.log", limit="1024:")
        assert r.returncode == 0, read_text(tmp_path / "img/restore.log")
        socks = [n for n in os.listdir(f"/proc/{p.pid}/fd")
                 if os.readlink(f"/proc/{p.pid}/fd/{n}").startswith("socket:")]
        assert len(socks) == 2 * PAIRS
        assert nofile(p.pid) == saved
    finally:
        kill(p.pid)


def test_hard_limit_above_callers_refused(tmp_path):
    """A hard limit the caller can't raise to: refused before any task exists."""
    eff = int(read_text("/proc/self/status").split("CapEff:")[1].split()[0], 16)
    if eff & (1 << CAP_SYS_RESOURCE):
        pytest.skip("this test runs with CAP_SYS_RESOURCE: any hard limit can be restored")
    p = start(["sleep", "1000"])
    try:
        saved = nofile(p.pid)
        assert saved[1] > 64, saved
        dump(p, tmp_path / "img")
        lower = saved[1] // 2
        r = amber("restore", "-d", "-D", tmp_path / "img", "-v4", "-o",
                  tmp_path / "img/restore.log", limit=f"{lower}:{lower}")
        log = read_text(tmp_path / "img/restore.log")
        assert r.returncode != 0, log
        assert (f"pid {p.pid} had a hard limit 7 of {saved[1]}, above the caller's {lower}: "
                "raising it needs CAP_SYS_RESOURCE") in log, log
        assert "nothing was restored" in log, log
        assert not os.path.exists(f"/proc/{p.pid}")
        # Nothing was made: the same images restore under the limit they need.
        r = amber("restore", "-d", "-D", tmp_path / "img", "-v4", "-o",
                  tmp_path / "img/restore2.log")
        assert r.returncode == 0, read_text(tmp_path / "img/restore2.log")
        assert nofile(p.pid) == saved
    finally:
        kill(p.pid)
