"""A restore that fails at any stage leaves nothing behind.

AMBER_FAULT=<stage> (src/base/fault.c) makes `amber restore` fail there:
after the images are read (restore-images), with cgroups, shared memory
and shared files made but no task yet (restore-prepared), in each task after it forked
its children (restore-forked), in the restorer blob before the memory is
laid out and after it (restore-mem-before, restore-mem-after, the blob has
no libc: it reports on the status pipe and exits the task), at the blob's
end once the status pipe is closed (restore-blob-end: seen only as a
death) and before the final sigreturns (restore-sigreturn).

Each must: exit non-zero with an error naming the stage, leave no task
of the tree (by pid) and no child of ours running, and leave the images
byte for byte as they were.  After all of them the same images restore
and the test passes.

The same stages and three of a lazy restore of a tree in a user namespace
of its own (fork_tree as init of a pid namespace there, restored
--lazy-pages from a daemon of each restore's own): restore-uffd-new (in
a task, as if USERFAULTFD_IOC_NEW on /dev/userfaultfd failed),
restore-uffd-getfd and restore-uffd-api (amber, at the task's stop, as
if pidfd_getfd of its uffd or the UFFDIO_API failed).  Each must fail
as above and leave no process of ours (tree, daemon, keeper; the daemon
waits for a retry only after restore-images, by design) nor any
userfaultfd; then the same images restore lazily and the test passes.

restore-premap-room is not a failure: a task finds no room to lay its
memory out before it forks (restore/premap.c), and the restorer fills it
as before, unshared. cow_fork restored so must run and report the
sharing lost; restored normally, it passes.
"""

import ctypes
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_bad_images import SUMS, alive, dumped_source, pristine_restores
from test_zdtm import USERNS_OUTER, stop, userns_prefix
from zdtm_runner import ZDTM_DIR, amber_path, read_text, reap_all, sanitizer_env, wait_until

STAGES = ["restore-images", "restore-prepared", "restore-forked", "restore-mem-before", "restore-mem-after",
          "restore-blob-end", "restore-sigreturn"]


@pytest.fixture(scope="module")
def source(request):
    yield from dumped_source(request, "fork_tree")


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.iterdir()) if p.is_file() and p.name != "restore.log"}


def failed_at(stage, rc, log):
    """What is wrong with a restore that the fault at @stage should have
    failed cleanly: its exit code and what its log tells the user about
    the stage and the tasks (it must match what happened to them)."""
    bad = []
    if rc == 0:
        bad.append("restore succeeded")
    elif rc == "timeout" or rc < 0 or rc >= 128:
        bad.append(f"amber died or hung ({rc})")
    if f"fault injected at stage {stage}" not in log:
        bad.append("the log does not name the stage")
    outcome = ("nothing was restored" if stage == "restore-images"
               else "before any task was created" if stage == "restore-prepared"
               else "every task it created was killed")
    if outcome not in log:
        bad.append(f"the log does not say '{outcome}'")
    return bad


@pytest.mark.parametrize("stage", STAGES)
def test_restore_fault(source, stage, monkeypatch):
    d = source.copy()
    before = digest(d)
    assert SUMS in before
    monkeypatch.setenv("AMBER_FAULT", stage)
    rc, log, out = source.restore(d)
    monkeypatch.delenv("AMBER_FAULT")
    bad = failed_at(stage, rc, log)
    running = [p for p in source.pids if alive(p)]
    if running:
        bad.append(f"task(s) {running} of the tree still exist")
    left = [p for p in source.new_children if alive(p)]
    if left:
        bad.append(f"left child process(es) {left}")
    if digest(d) != before:
        bad.append("the images changed")
    source.cleanup()
    assert not bad, f"{stage}: {'; '.join(bad)}\n" + "\n".join(log.splitlines()[-10:])


def test_restore_after_faults(source):
    """Last: the same images restore and the test passes."""
    pristine_restores(source)


@pytest.fixture(scope="module")
def cow_source(request):
    yield from dumped_source(request, "cow_fork")


def test_premap_no_room(cow_source, monkeypatch):
    d = cow_source.copy()
    outfile = cow_source.run.dir / "test.out"
    # the test's open result file, which its end renames: put back for the second restore
    inprogress = outfile.with_name("test.out.inprogress")
    saved = inprogress.read_bytes()
    monkeypatch.setenv("AMBER_FAULT", "restore-premap-room")
    rc, log, out = cow_source.restore(d)
    monkeypatch.delenv("AMBER_FAULT")
    assert rc == 0, f"restore failed ({rc}):\n{log[-3000:]}"
    assert "will not share its pages" in log, log[-3000:]
    os.kill(cow_source.root, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while "FAIL" not in read_text(outfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    last = (read_text(outfile).splitlines() or [""])[-1]
    cow_source.cleanup()
    assert "sharing lost" in last, f"cow_fork said {last!r}"
    outfile.unlink()
    inprogress.write_bytes(saved)
    pristine_restores(cow_source)


ADDR_NO_RANDOMIZE = 0x0040000


@pytest.fixture
def no_aslr():
    """Children exec'd meanwhile get the same layout: amber's free space
    then lies where the test's own big VMA was."""
    libc = ctypes.CDLL(None, use_errno=True)
    old = libc.personality(0xffffffff)
    libc.personality(old | ADDR_NO_RANDOMIZE)
    yield
    libc.personality(old)


def test_premap_apart_from_saved_vmas(request, no_aslr):
    """The premap area must not overlap the VMAs it holds: mremap refuses
    an overlapping move (EINVAL), which once failed anon_1g at random."""
    gen = dumped_source(request, "anon_64m")
    src = next(gen)
    try:
        pristine_restores(src)
    finally:
        next(gen, None)


# ------------------------------------------- lazy, in a user namespace
#
# fork_tree as init of a pid namespace in a user namespace of its own,
# restored --lazy-pages: each task makes its uffd from /dev/userfaultfd
# and stops (restore-uffd-new: as if that failed), amber takes it with
# pidfd_getfd (restore-uffd-getfd) and does its UFFDIO_API
# (restore-uffd-api), src/restore/restore.c give_uffd_features().

UFFD_STAGES = ["restore-uffd-new", "restore-uffd-getfd", "restore-uffd-api"]


@pytest.fixture(scope="module")
def userns_source(request):
    if not os.access(ZDTM_DIR / "helpers" / "userns_exec", os.X_OK):
        pytest.skip("helpers/userns_exec is not built (make -C test/zdtm)")
    if not os.path.exists("/dev/userfaultfd"):
        pytest.skip("no /dev/userfaultfd (Linux 6.1+): no lazy restore in a user namespace")
    yield from dumped_source(request, "fork_tree", prefix=userns_prefix("--pid"),
                             tag="-userns", owner=USERNS_OUTER)


def ours():
    """Live processes of this run: our amber binary (restore, daemon,
    keeper, a task killed before its blob) or a zdtm test of this tree."""
    exe, zdtm, found = str(amber_path().resolve()), str(ZDTM_DIR) + "/", []
    for d in Path("/proc").iterdir():
        try:
            e = os.readlink(d / "exe") if d.name.isdigit() else ""
            if (e == exe or e.startswith(zdtm)) and alive(int(d.name)):
                found.append(int(d.name))
        except OSError:
            pass
    return found


def uffd_holders(pids):
    held = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[userfaultfd]":
                    held.append(pid)
                    break
            except OSError:
                pass
    return held


def lazy_restore(source, d, *extra):
    """`amber restore --lazy-pages` of @d from a daemon of its own, its
    socket and log beside @d: (daemon, exit status, log text)."""
    side = d.with_name(d.name + "-lazy")
    side.mkdir()
    sock = side / "lazy.sock"
    daemon = subprocess.Popen([str(amber_path()), "lazy-pages", "-D", str(d), "--socket",
                               str(sock), "-v4", "-o", str(side / "lazy.log")],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=sanitizer_env(side))
    if not wait_until(lambda: sock.exists() or daemon.poll() is not None, timeout=30) or \
            not sock.exists():
        daemon.kill()
        daemon.wait()
        pytest.fail("amber lazy-pages did not start", pytrace=False)
    source.restore_args = ["--lazy-pages", "--lazy-socket", str(sock), *extra]
    try:
        rc, log, _ = source.restore(d)
    finally:
        source.restore_args = []
    return daemon, rc, log


@pytest.mark.parametrize("stage", STAGES + UFFD_STAGES)
def test_userns_lazy_restore_fault(userns_source, stage, monkeypatch):
    source = userns_source
    d = source.copy()
    before = digest(d)
    monkeypatch.setenv("AMBER_FAULT", stage)
    daemon, rc, log = lazy_restore(source, d)
    monkeypatch.delenv("AMBER_FAULT")
    bad = failed_at(stage, rc, log)
    if stage == "restore-images":
        # never introduced to the daemon, which waits for another restore
        time.sleep(0.2)
        if daemon.poll() is not None:
            bad.append(f"the lazy daemon exited ({daemon.returncode})")
        daemon.kill()
    try:
        daemon.wait(timeout=30)  # once introduced, no mm came: nothing to serve
    except subprocess.TimeoutExpired:
        bad.append("the lazy daemon did not exit")
    reap_all()
    if stage == "restore-images":
        if uffd_holders(ours()):
            bad.append("a userfaultfd was made")
        for pid in ours():  # the daemon's keeper, by design left for a retry
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not ours(), timeout=30)
    left = ours()
    if left:
        bad.append(f"process(es) {left} left")
    held = uffd_holders(left)
    if held:
        bad.append(f"userfaultfd(s) left in {held}")
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    reap_all()
    if digest(d) != before:
        bad.append("the images changed")
    assert not bad, f"{stage}: {'; '.join(bad)}\n" + "\n".join(log.splitlines()[-10:])


def test_userns_lazy_restore_after_faults(userns_source):
    """Last: the same images restore lazily and the test passes."""
    source = userns_source
    d = source.copy()
    pidfile = d.with_name(d.name + ".pid")
    daemon, rc, log = lazy_restore(source, d, "--pidfile", str(pidfile))
    assert rc == 0, f"restore failed ({rc}):\n" + "\n".join(log.splitlines()[-10:])
    source.run.set_root(int(read_text(pidfile)))
    stop(source.run)
    assert daemon.wait(timeout=60) == 0, "the lazy daemon failed"
