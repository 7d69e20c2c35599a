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

restore-premap-room is not a failure: a task finds no room to lay its
memory out before it forks (restore/premap.c), and the restorer fills it
as before, unshared. cow_fork restored so must run and report the
sharing lost; restored normally, it passes.
"""

import ctypes
import hashlib
import os
import signal
import time

import pytest

from test_bad_images import SUMS, alive, dumped_source, pristine_restores
from zdtm_runner import read_text

STAGES = ["restore-images", "restore-prepared", "restore-forked", "restore-mem-before", "restore-mem-after",
          "restore-blob-end", "restore-sigreturn"]


@pytest.fixture(scope="module")
def source(request):
    yield from dumped_source(request, "fork_tree")


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.iterdir()) if p.is_file() and p.name != "restore.log"}


@pytest.mark.parametrize("stage", STAGES)
def test_restore_fault(source, stage, monkeypatch):
    d = source.copy()
    before = digest(d)
    assert SUMS in before
    monkeypatch.setenv("AMBER_FAULT", stage)
    rc, log, out = source.restore(d)
    monkeypatch.delenv("AMBER_FAULT")
    bad = []
    if rc == 0:
        bad.append("restore succeeded")
    elif rc == "timeout" or rc < 0 or rc >= 128:
        bad.append(f"amber died or hung ({rc})")
    if f"fault injected at stage {stage}" not in log:
        bad.append("the log does not name the stage")
    # what the user is told about the tasks matches what happened to them
    outcome = ("nothing was restored" if stage == "restore-images"
               else "before any task was created" if stage == "restore-prepared"
               else "every task it created was killed")
    if outcome not in log:
        bad.append(f"the log does not say '{outcome}'")
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
