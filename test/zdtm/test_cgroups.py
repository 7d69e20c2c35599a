"""cgroup membership (cgroup.img) and --manage-cgroups / --cgroup-root /
--freeze-cgroup on the command line (docs/namespaces.md). Mode-independent:
runs once, not per zdtm mode.

A sleep in a cgroup v2 cgroup of its own is dumped, then restored: by
default into the cgroup it was in, with --cgroup-root into another one
(made if missing), with --manage-cgroups=ignore into amber's.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from zdtm_runner import amber_path, read_text, wait_until


def unified_mount():
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            return Path(fields[0].split()[4])
    return None


def v2_path(pid):
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


@pytest.fixture
def cgroups(tmp_path):
    mnt = unified_mount()
    if mnt is None:
        pytest.skip("no cgroup v2 hierarchy")
    made = []

    def make(name):
        d = mnt / name
        made.append(d)
        d.mkdir(exist_ok=True)
        return d
    yield mnt, make
    for d in reversed(made):
        for _ in range(50):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)  # its tasks are still being reaped


def amber(*args, log):
    return subprocess.run([str(amber_path()), *map(str, args), "-v4", "-o", str(log)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def start_in(cg):
    """A sleep, moved into @cg before it execs."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        (cg / "cgroup.procs").write_text(str(os.getpid()))
        os.setsid()
        os.close(wr)
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.execvp("sleep", ["sleep", "1000"])
    os.close(wr)
    os.read(rd, 1)
    os.close(rd)
    wait_until(lambda: read_text(f"/proc/{pid}/comm").strip() == "sleep")
    return pid


def dumped_sleep(cg, tmp_path):
    """The images of a sleep dumped from the cgroup @cg (it is gone after)."""
    pid = start_in(cg)
    img = tmp_path / "img"
    img.mkdir()
    r = amber("dump", "-t", pid, "-D", img, log=tmp_path / "dump.log")
    os.waitpid(pid, 0)
    assert r.returncode == 0, read_text(tmp_path / "dump.log")
    return img


def restore(img, tmp_path, name, *extra):
    pidfile = tmp_path / f"{name}.pid"
    log = tmp_path / f"{name}.log"
    r = amber("restore", "-D", img, "-d", "--pidfile", pidfile, *extra, log=log)
    assert r.returncode == 0, read_text(log)
    pid = int(pidfile.read_text())
    return pid, v2_path(pid)


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def test_cgroup_membership(cgroups, tmp_path):
    mnt, make = cgroups
    name = f"amber-cg-{os.getpid()}"
    cg = make(name)
    img = dumped_sleep(cg, tmp_path)
    assert (img / "cgroup.img").exists()

    pid, path = restore(img, tmp_path, "soft")
    kill(pid)
    assert path == f"/{name}", path

    other = f"{name}-other"
    make(other)
    pid, path = restore(img, tmp_path, "root", "--manage-cgroups=full", "--cgroup-root",
                        f"/{other}")
    kill(pid)
    assert path == f"/{other}", path

    mine = v2_path(os.getpid())
    pid, path = restore(img, tmp_path, "ignore", "--manage-cgroups=ignore")
    kill(pid)
    assert path == mine, path


@pytest.mark.parametrize("stage", ["restore-prepared", "restore-sigreturn"])
def test_failed_restore_removes_cgroups_it_made(cgroups, tmp_path, stage):
    """A restore that fails before any task (restore-prepared) or after every
    task was made and put in its cgroup (restore-sigreturn) removes the
    cgroups it made: --cgroup-root's, its parents too; one that existed stays."""
    mnt, make = cgroups
    name = f"amber-cg-fail-{os.getpid()}"
    cg = make(name)
    img = dumped_sleep(cg, tmp_path)

    kept = make(f"{name}-kept")
    new_root = kept / "made" / "deeper"
    log = tmp_path / "restore.log"
    env = dict(os.environ, AMBER_FAULT=stage)
    r = subprocess.run([str(amber_path()), "restore", "-D", str(img), "-d", "-v4", "-o",
                        str(log), "--cgroup-root", f"/{kept.name}/made/deeper"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode != 0, read_text(log)
    text = read_text(log)
    assert f"made the cgroup {new_root}" in text, text
    assert f"removed the cgroup {kept / 'made'} it made" in text, text
    if stage == "restore-sigreturn":
        assert "every task it created was killed" in text, text
    else:
        assert "before any task was created" in text, text
    assert not (kept / "made").exists(), text
    assert kept.is_dir()


def test_cgroup_path_outside_refused(cgroups, tmp_path):
    """--cgroup-root with a ".." component is refused before any task is made."""
    mnt, make = cgroups
    cg = make(f"amber-cg-bad-{os.getpid()}")
    img = dumped_sleep(cg, tmp_path)
    log = tmp_path / "restore.log"
    r = amber("restore", "-D", img, "-d", "--cgroup-root", "/x/../../etc", log=log)
    assert r.returncode != 0
    assert "not a cgroup path" in read_text(log)
    assert "restored 1 task" not in read_text(log)


def test_freeze_cgroup(cgroups, tmp_path):
    """--freeze-cgroup: the tree's cgroup is frozen while amber seizes it and
    thawed after; a dump with --leave-running leaves it running, thawed."""
    mnt, make = cgroups
    cg = make(f"amber-cg-frz-{os.getpid()}")
    pid = start_in(cg)
    try:
        img = tmp_path / "img"
        img.mkdir()
        log = tmp_path / "dump.log"
        r = amber("dump", "-t", pid, "-D", img, "--leave-running", "--freeze-cgroup", cg,
                  log=log)
        assert r.returncode == 0, read_text(log)
        assert "froze the cgroup" in read_text(log), read_text(log)
        assert (cg / "cgroup.freeze").read_text().strip() == "0"
        assert read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] in "SR"
    finally:
        kill(pid)


def test_freeze_cgroup_outsider_refused(cgroups, tmp_path):
    """A process of the frozen cgroup outside the tree would be lost: refused."""
    mnt, make = cgroups
    cg = make(f"amber-cg-out-{os.getpid()}")
    pid, other = start_in(cg), start_in(cg)
    try:
        img = tmp_path / "img"
        img.mkdir()
        log = tmp_path / "dump.log"
        r = amber("dump", "-t", pid, "-D", img, "--freeze-cgroup", cg, log=log)
        assert r.returncode != 0
        assert f"process {other}" in read_text(log) and "not in the tree" in read_text(log)
        assert (cg / "cgroup.freeze").read_text().strip() == "0"
    finally:
        kill(pid)
        kill(other)
