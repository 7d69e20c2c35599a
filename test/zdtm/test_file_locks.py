"""File locks (--file-locks) from outside: refusals and bad images.

 - Without --file-locks a tree holding a lock fails the dump, naming the
   fd, the pid and the lock; the tree runs on untouched and passes.
 - Images of file_locks01 (POSIX locks of a parent and a child, a waiter)
   edited so that a lock makes no sense (a task not in the tree, an fd the
   task does not have, an unknown kind or type, a range out of bounds), or
   restored without --file-locks, are refused before any task is created.
   The untouched images restore and the test passes.
 - sqlite3 dumped inside a write transaction keeps its lock across the
   restore, then commits; the database is intact.
"""

import os
import subprocess
import time

import pytest

from test_bad_images import (amber_pb, dumped_source, pristine_restores,
                             rewrite_sums)
from test_zdtm import start, stop
from zdtm_runner import (MODES, Run, ZDTM_DIR, amber_path, amber_run, edit_image, guarded,
                         kill_pids, proc_stat, read_text, reap_all, sanitizer_env)


def test_dump_refuses_lock_without_option(tmp_path):
    run = Run("file-locks-refused", MODES["dump"], compare_state=False)

    def body():
        start(run, ZDTM_DIR / "static" / "file_locks01")
        imgdir = run.dir / "img"
        log = run.dir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(run.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=sanitizer_env(run.dir), timeout=60)
        text = read_text(log)
        assert r.returncode == 1, f"dump exited {r.returncode}"
        assert f"fd 3 of pid {run.pid}" in text and "POSIX" in text and \
            "--file-locks" in text, text
        for pid in run.walk():
            st = proc_stat(pid)
            assert st and st[0] in "SR", f"{pid} left in state {st}"
            assert "TracerPid:\t0" in read_text(f"/proc/{pid}/status")
        stop(run)

    guarded(run, body)


@pytest.fixture(scope="module")
def locks(request):
    yield from dumped_source(request, "file_locks01", ["--file-locks"])


def set_lock(i, **kw):
    def fn(entries):
        for k, v in kw.items():
            setattr(entries[i], k, v)
    return fn


BAD_LOCKS = {
    "pid not in the tree": (set_lock(0, pid=999999), "not a live task of the tree"),
    "fd the task lacks": (set_lock(0, fd=77), "which that task does not have"),
    "unknown kind": (set_lock(0, flag=3), "unknown kind"),
    "type 2": (set_lock(1, type=2), "neither read nor write"),
    "lease being broken to write": (set_lock(0, flag=8, type=4 | 1, start=0, len=0),
                                    "being broken to the type 0x1"),
    "lease being broken to type 3": (set_lock(0, flag=8, type=4 | 3, start=0, len=0),
                                     "being broken to the type 0x3"),
    "negative start": (set_lock(0, start=-5), "range"),
    "negative len": (set_lock(2, len=-1), "range"),
    "range past 2^63": (set_lock(0, start=(1 << 63) - 10, len=100), "range"),
    "flock with a range": (set_lock(0, flag=2), "range"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOCKS))
def test_bad_lock_refused(locks, case):
    fn, want = BAD_LOCKS[case]
    d = locks.copy()
    edit_image(d / "filelocks.img", amber_pb("file_lock_pb2").file_lock_entry, fn)
    rewrite_sums(d)
    bad = locks.problems(case, d, True, [want])
    assert not bad, "\n".join(bad)


def test_restore_without_option_refused(locks):
    d = locks.copy()
    args, locks.restore_args = locks.restore_args, []
    try:
        bad = locks.problems("no --file-locks", d, True, ["restore with --file-locks"])
    finally:
        locks.restore_args = args
    assert not bad, "\n".join(bad)


def test_locks_pristine_restores(locks):
    """Last: the untouched images restore and the test passes."""
    pristine_restores(locks)


# ---- a real program: sqlite3 holding a write transaction ------------------

SQLITE = "/usr/bin/sqlite3"
ROWS = 100


def sqlite(db, sql):
    return subprocess.run([SQLITE, "-batch", str(db), sql], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)


def wait_for(path, text, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while text not in read_text(path, ""):
        assert time.monotonic() < deadline, f"{path} never showed {text!r}: " \
            f"{read_text(path, '')!r}"
        time.sleep(0.01)


def feed(fifo, text):
    fd = os.open(fifo, os.O_WRONLY)  # sqlite3 holds a reader: does not block
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def test_sqlite3_transaction(tmp_path):
    """sqlite3 reads SQL from a FIFO it also holds open for writing (so it
    never sees EOF); it is dumped inside BEGIN EXCLUSIVE with a row
    inserted, its POSIX locks on the database saved with --file-locks.
    After the restore another sqlite3 finds the database locked; then
    the transaction goes on (one more row), commits, and the database is
    intact with both rows."""
    assert os.access(SQLITE, os.X_OK), "sqlite3 is missing: scripts/deps.sh installs it"
    db, fifo, out = tmp_path / "db", tmp_path / "cmds", tmp_path / "out"
    r = sqlite(db, "CREATE TABLE t(x INTEGER); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "
               f"SELECT i + 1 FROM c WHERE i < {ROWS}) INSERT INTO t SELECT i FROM c;")
    assert r.returncode == 0, r.stderr
    os.mkfifo(fifo)
    p = subprocess.Popen(["sh", "-c", f"exec 3<>cmds; exec {SQLITE} -batch db <cmds >out 2>&1"],
                         cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    restored = False
    try:
        deadline = time.monotonic() + 10
        while not read_text(f"/proc/{p.pid}/cmdline", "").startswith(SQLITE) or \
                not os.path.exists(f"/proc/{p.pid}/fd/0"):
            assert time.monotonic() < deadline, "sqlite3 did not start"
            time.sleep(0.01)
        feed(fifo, "BEGIN EXCLUSIVE;\nINSERT INTO t VALUES(1000);\nSELECT 'in-transaction';\n")
        wait_for(out, "in-transaction")
        r = sqlite(db, "SELECT count(*) FROM t")
        assert r.returncode != 0 and "locked" in r.stderr, (r.returncode, r.stdout, r.stderr)
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        r = amber_run(["dump", "-t", str(p.pid), "-D", str(imgdir), "--file-locks"],
                  imgdir / "dump.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait(10)
        # Nobody opens the database now: a reader would roll the hot journal back.
        r = amber_run(["restore", "-D", str(imgdir), "-d", "--file-locks"],
                  imgdir / "restore.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "restore.log")
        restored = True
        r = sqlite(db, "SELECT count(*) FROM t")
        assert r.returncode != 0 and "locked" in r.stderr, \
            f"the lock is gone after the restore: {r.returncode} {r.stdout} {r.stderr}"
        feed(fifo, "INSERT INTO t VALUES(1001);\nCOMMIT;\n"
                   "SELECT 'committed', count(*) FROM t;\n.quit\n")
        wait_for(out, "committed")
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{p.pid}/fd"):
            assert time.monotonic() < deadline, "sqlite3 did not quit"
            reap_all()
            time.sleep(0.01)
        restored = False
        assert f"committed|{ROWS + 2}" in read_text(out), read_text(out)
        r = sqlite(db, "PRAGMA integrity_check; SELECT count(*), sum(x >= 1000) FROM t;")
        assert r.returncode == 0 and r.stdout.split() == ["ok", f"{ROWS + 2}|2"], \
            (r.stdout, r.stderr)
    finally:
        if restored or p.poll() is None:
            kill_pids(p.pid)
        p.poll()
        reap_all()


