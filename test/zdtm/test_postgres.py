"""PostgreSQL 15 from Debian, checked from outside across a checkpoint.

The postmaster and its workers run as `postgres` (a user other than
amber's: their limits are read from /proc, not with prlimit, which root
without CAP_SYS_RESOURCE may not call on them). A psql client outside the
tree holds a TCP connection with a temporary table and an open write
transaction across the dump and restore (--tcp-established); after it the
same backend answers on that connection, commits, and a new connection
sees the rows. The postmaster's System V interlock segment (the key in
postmaster.pid) is still there, attached again at the same address if it
was attached (PostgreSQL 15 here creates it and detaches: nattch 0, its
shared memory being an anonymous shared mapping), and a clean shutdown
and a second start find the database intact.
"""

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from zdtm_runner import Run, guarded, tree_pids, wait_until

PGBIN = Path("/usr/lib/postgresql/15/bin")


class Psql:
    """One psql session on a pipe: each query's rows, up to a marker."""

    def __init__(self, port, log):
        self.p = subprocess.Popen(
            [str(PGBIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             "-X", "-At", "-v", "ON_ERROR_STOP=0", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        self.n = 0

    def query(self, sql):
        self.n += 1
        mark = f"--end {self.n}--"
        self.p.stdin.write(f"{sql}\n\\echo '{mark}'\n")
        self.p.stdin.flush()
        rows = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                pytest.fail(f"psql ended during {sql!r} (status {self.p.poll()})",
                            pytrace=False)
            line = line.rstrip("\n")
            if line == mark:
                return rows
            rows.append(line)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def pg(*args, **kw):
    return subprocess.run([str(PGBIN / args[0]), *args[1:]], user="postgres",
                          group="postgres", extra_groups=[], capture_output=True,
                          text=True, timeout=120, **kw)


def sysv_segment(key):
    """/proc/sysvipc/shm's line for @key: (shmid, nattch), or None."""
    for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[0]) == key:
            return int(f[1]), int(f[6])
    return None


def sysv_attach(pid, key):
    """The address where @pid has the SysV segment of @key attached, or None."""
    name = f"/SYSV{key:08x}"
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if line.endswith(name):
            return line.split()[0]
    return None


def test_postgres_transaction_kept(zdtm_mode):
    if not (PGBIN / "postgres").exists():
        pytest.skip("no PostgreSQL 15 (postgresql-15, scripts/packages-test.txt)")
    zdtm_mode.preflight()
    run = Run("postgres_server", zdtm_mode, compare_state=False)
    clients = []

    def body():
        os.chmod(run.dir, 0o755)  # postgres reaches its data through it
        data, sock = run.dir / "data", run.dir / "sock"
        for d in (data, sock):
            d.mkdir()
            shutil.chown(d, "postgres", "postgres")
        r = pg("initdb", "-D", str(data), "-A", "trust", "--no-sync", cwd="/tmp")
        assert r.returncode == 0, r.stdout + r.stderr
        port = random.randint(20000, 60000)
        log = run.dir / "postgres.log"
        run.notes = [log]
        with open(log, "wb") as out:
            run.popen = subprocess.Popen(
                [str(PGBIN / "postgres"), "-D", str(data), "-k", str(sock), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                user="postgres", group="postgres", extra_groups=[], cwd="/tmp",
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        run.set_root(run.popen.pid)
        ready = lambda: pg("pg_isready", "-h", "127.0.0.1", "-p", str(port)).returncode == 0
        if not wait_until(ready, timeout=60):
            pytest.fail("postgres did not start", pytrace=False)
        key = int((data / "postmaster.pid").read_text().splitlines()[6].split()[0])
        seg, at = sysv_segment(key), sysv_attach(run.pid, key)
        assert seg, f"no SysV segment of key {key}"

        c = Psql(port, open(run.dir / "psql.err", "w"))
        clients.append(c)
        c.query("CREATE TABLE t (id int PRIMARY KEY, v text);")
        c.query("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 10000) i;")
        backend = c.query("SELECT pg_backend_pid();")
        c.query("CREATE TEMP TABLE s (v int); INSERT INTO s VALUES (7);")
        c.query("BEGIN; INSERT INTO t VALUES (10001, 'in flight');")
        locked = c.query("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' "
                         "AND pid = pg_backend_pid();")
        assert locked == ["1"], locked
        run.walk()
        if not wait_until(lambda: len(tree_pids(run.pid)) >= 6, timeout=10):
            pytest.fail(f"postgres has {len(tree_pids(run.pid))} processes", pytrace=False)
        zdtm_mode.checkpoint(run)  # the restored server runs detached

        assert sysv_segment(key) and sysv_segment(key)[0] == seg[0], "the interlock segment is gone"
        assert sysv_attach(run.pid, key) == at, "the interlock segment's attach moved"
        # the same backend, its session and transaction, on the same connection
        assert c.query("SELECT pg_backend_pid();") == backend
        assert c.query("SELECT v FROM s;") == ["7"]
        assert c.query("SELECT v FROM t WHERE id = 10001;") == ["in flight"]
        c.query("INSERT INTO t VALUES (10002, 'after restore'); COMMIT;")
        other = Psql(port, open(run.dir / "psql2.err", "w"))
        clients.append(other)
        sums = other.query("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM t;")
        want = c.query("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM t;")
        assert sums == want and sums[0].startswith("10002|"), (sums, want)

        # a clean shutdown, and the database as committed on the next start
        for cl in clients:
            cl.close()
        r = pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop", cwd="/tmp")
        assert r.returncode == 0, r.stdout + r.stderr
        if run.wait_gone([run.pid], 60):
            pytest.fail("the restored postmaster did not stop", pytrace=False)
        text = log.read_text(errors="replace")
        assert not re.search(r"PANIC|server process .* was terminated", text), text[-3000:]
        r = pg("pg_ctl", "-D", str(data), "-l", str(data / "second.log"), "-w",
               "-o", f"-k {sock} -p {port} -c listen_addresses=127.0.0.1", "start", cwd="/tmp")
        assert r.returncode == 0, r.stdout + r.stderr
        try:
            again = Psql(port, open(run.dir / "psql3.err", "w"))
            clients.append(again)
            assert again.query("SELECT count(*) FROM t WHERE id > 10000;") == ["2"]
            again.close()
        finally:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", cwd="/tmp")

    try:
        guarded(run, body)
    finally:
        for cl in clients:
            if cl.p.poll() is None:
                cl.p.kill()
                cl.p.wait()
        run.kill_tree()
