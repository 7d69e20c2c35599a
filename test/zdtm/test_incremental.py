"""Incremental dumps beyond the suite's pre-dump and snaps modes (issue 4).

test_cleanup: pre-dump leaves amber's tracker (a WP_ASYNC userfaultfd) in
the tree; `amber pre-dump --cleanup` takes it out and the test still
passes: a tree that was pre-dumped and never dumped runs on normally.

test_broken_chain_refused: a final dump whose parent is gone (or a chain
that lacks pages) is refused before any process exists.

test_dedup: --auto-dedup and `amber dedup` shrink the parents, and the
chain still restores byte-exact (the test's own checksums).

test_page_server_without_parent: an incremental dump streamed to a page
server that keeps no parent image fails with the reason before its scan
and leaves the tree running; the same dump into a server started with
--prev-images-dir then goes through, still incremental (the suite's
page-server-pre-dump mode does that for every test).

test_predump_splice: pre-dump's default mode, copying the pages while the
tree is frozen, with mem_loop rewriting its memory all the time (the
suite's pre-dump and page-server-pre-dump modes use the read mode,
pre-dump-lazy the default).

test_restore_before_server_pages: the dumping side of a page-server dump
restored alone is refused, naming where the pages are; with the
server's files beside it, it restores.
"""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from test_zdtm import start, stop
from zdtm_runner import (MODES, PE_PARENT, ZDTM_DIR, Run, amber_path, guarded,
                         is_amber_tracker, kill_page_server,
                         pagemap_entries, proc_stat, read_text, start_page_server,
                         tracker_args)

PRE = MODES["pre-dump"]


def tracker_fds(pid):
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if is_amber_tracker(target, read_text(f"/proc/{pid}/fdinfo/{fd}")):
            fds.append(int(fd))
    return fds


def predump(run, k, *extra):
    args = ["-t", run.pid, "-D", f"pre{k}", *tracker_args(), *extra]
    if k > 1:
        args += ["--prev-images-dir", f"../pre{k - 1}"]
    run.amber("pre-dump", args, f"pre-dump-{k}.log")


def final_dump(run, parent, *extra):
    run.dump(*tracker_args(), "--prev-images-dir", parent, *extra)


def restore(run):
    run.amber("restore", ["-D", run.imgdir, "-d"], "restore.log")
    run.set_root(run.pid)


def pages_bytes(d):
    """Allocated bytes of the pages images (holes do not count)."""
    return sum(p.stat().st_blocks * 512 for p in d.glob("pages-*.img"))


def test_cleanup():
    run = Run("mem_loop", PRE)

    def body():
        start(run, ZDTM_DIR / "static" / "mem_loop")
        predump(run, 1)
        if "uffd-wp" in read_text(run.imgdir / "pre-dump-1.log") and \
                not tracker_fds(run.pid):
            pytest.fail("pre-dump left no tracker in the tree", pytrace=False)
        run.amber("pre-dump", ["-t", run.pid, "--cleanup"], "cleanup.log")
        left = tracker_fds(run.pid)
        if left:
            pytest.fail(f"tracker fds {left} still there after --cleanup",
                        pytrace=False)
        st = proc_stat(run.pid)
        if st is None or st[0] in "tT":
            pytest.fail(f"the tree is not running after --cleanup: {st}",
                        pytrace=False)
        stop(run)

    guarded(run, body)


def test_broken_chain_refused():
    run = Run("mem_loop", PRE)

    def body():
        start(run, ZDTM_DIR / "static" / "mem_loop")
        predump(run, 1)
        final_dump(run, "pre1")
        shutil.rmtree(run.imgdir / "pre1")
        out = subprocess.run(
            [str(amber_path()), "restore", "-D", str(run.imgdir), "-d"],
            capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            pytest.fail("a chain without its parent was restored",
                        pytrace=False)
        if "parent" not in out.stderr or "Error" not in out.stderr:
            pytest.fail(f"no clear message: {out.stderr!r}", pytrace=False)
        if proc_stat(run.pid) is not None:
            pytest.fail("a process exists after the refused restore",
                        pytrace=False)

    guarded(run, body)


def test_dedup():
    run = Run("inc_write", PRE)

    def body():
        start(run, ZDTM_DIR / "static" / "inc_write")
        predump(run, 1)
        before = pages_bytes(run.imgdir / "pre1")
        os.kill(run.pid, signal.SIGUSR1)
        wait_ack(run, 1)
        predump(run, 2, "--auto-dedup")
        os.kill(run.pid, signal.SIGUSR1)
        wait_ack(run, 2)
        final_dump(run, "pre2")
        run.amber("dedup", ["-D", run.imgdir], "dedup.log")
        after = pages_bytes(run.imgdir / "pre1")
        if not after < before:
            pytest.fail(f"--auto-dedup and dedup punched nothing out of pre1 ({before} -> "
                        f"{after} bytes)", pytrace=False)
        restore(run)
        stop(run)  # inc_write checks every page against its own sums

    guarded(run, body)


def wait_ack(run, k):
    deadline = time.monotonic() + 10
    while not (run.dir / f"iter-{k}").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"no ack of iteration {k}", pytrace=False)
        time.sleep(0.01)


def test_failed_dump_resets_chain():
    """A tracked dump that fails after its scan re-armed the tracker marks
    the chain below it, and the next dump saves every page again: the
    pages written before the failure must not be taken from the parent.
    uffd-wp re-arms as it scans; soft-dirty only at clear_refs, which a
    failed final dump never reached: its chain stays unmarked and the
    next dump stays incremental (and must still restore every page)."""
    run = Run("inc_write", PRE)

    def body():
        start(run, ZDTM_DIR / "static" / "inc_write")
        predump(run, 1)
        os.kill(run.pid, signal.SIGUSR1)
        wait_ack(run, 1)
        env = dict(os.environ, AMBER_FAULT="dump-mm")
        out = subprocess.run(
            [str(amber_path()), "dump", "-t", str(run.pid), "-D",
             str(run.imgdir), *tracker_args(), "--prev-images-dir", "pre1"],
            env=env, capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            pytest.fail("the injected fault did not fail the dump",
                        pytrace=False)
        soft_dirty = "memory tracker: soft-dirty" in read_text(run.imgdir / "pre-dump-1.log")
        marked = (run.imgdir / "pre1" / "amber.track-reset").exists()
        if marked == soft_dirty:
            pytest.fail(f"the parent was {'' if marked else 'not '}marked "
                        f"(tracker {'soft-dirty' if soft_dirty else 'uffd-wp'}): {out.stderr}",
                        pytrace=False)
        final_dump(run, "pre1")
        maps = list(run.imgdir.glob("pagemap-[0-9]*.img"))
        if not maps:
            pytest.fail("the dump wrote no pagemap", pytrace=False)
        from_parent = any(e.get(4, 0) & PE_PARENT or e.get(3) for m in maps
                          for e in pagemap_entries(m))
        if from_parent != soft_dirty:
            pytest.fail("pages were still taken from the marked parent" if from_parent else
                        "the chain soft-dirty left valid was not used", pytrace=False)
        restore(run)
        stop(run)  # inc_write checks every page, change 1 included

    guarded(run, body)


def test_page_server_without_parent():
    mode = MODES["page-server-pre-dump"]
    run = Run("anon_1m", mode)

    def body():
        start(run, ZDTM_DIR / "static" / "anon_1m")
        mode.streamed(run, "pre-dump", "pre1", "pre1", None)
        token = run.dir / "token"
        proc, port, log, out, f = start_page_server(run, run.dir / "ps" / "orphan", token,
                                                    name="orphan")
        run.logs.remove(log)  # it logs the broken-off transfer: expected
        cmd = [str(amber_path()), "dump", "-t", str(run.pid), "-D", str(run.imgdir),
               *tracker_args(), "--prev-images-dir", "pre1", "--page-server",
               "--address", "127.0.0.1", "--port", str(port), "--token-file", str(token)]
        try:
            res = subprocess.run(cmd, cwd=run.imgdir, capture_output=True, text=True,
                                 timeout=60)
        finally:
            kill_page_server(proc, f)
        if res.returncode == 0:
            pytest.fail("an incremental dump went to a server without its parent",
                        pytrace=False)
        if "keeps no parent image" not in res.stderr:
            pytest.fail(f"no clear message: {res.stderr!r}", pytrace=False)
        if not run.alive(run.pid):
            pytest.fail("the failed dump did not leave the tree running", pytrace=False)
        mode.checkpoint_final(run)
        # refused before the scan: the tracker did not move, the chain holds
        if not re.search(r" [1-9]\d* left there", read_text(run.imgdir / "img-dump.log")):
            pytest.fail("the dump after the refused one was not incremental",
                        pytrace=False)
        stop(run)

    guarded(run, body)


def test_restore_before_server_pages():
    mode = MODES["page-server-pre-dump"]
    run = Run("anon_1m", mode)

    def body():
        start(run, ZDTM_DIR / "static" / "anon_1m")
        pids = run.walk()
        mode.streamed(run, "dump", "img", run.imgdir, None)
        run.dumped(pids)
        res = subprocess.run([str(amber_path()), "restore", "-D", str(run.imgdir), "-d"],
                             capture_output=True, text=True, timeout=60)
        if res.returncode == 0 or "went to a page server" not in res.stderr:
            pytest.fail(f"restore without the server's pages: rc {res.returncode}, "
                        f"{res.stderr!r}", pytrace=False)
        if proc_stat(run.pid) is not None:
            pytest.fail("a process exists after the refused restore", pytrace=False)
        mode.take(run.dir / "ps" / "img", run.imgdir)
        restore(run)
        stop(run)

    guarded(run, body)


def test_predump_splice():
    run = Run("mem_loop", PRE)

    def body():
        start(run, ZDTM_DIR / "static" / "mem_loop")
        predump(run, 1, "--pre-dump-mode=splice")
        predump(run, 2, "--pre-dump-mode=splice")
        final_dump(run, "pre2")
        restore(run)
        stop(run)

    guarded(run, body)
