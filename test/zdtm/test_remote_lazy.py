"""Post-copy beyond the suite's `remote-lazy` mode (issue 5, items 2, 3, 5).

The source side is the dump in IMG, served by `amber page-server
--lazy-pages` on localhost with a token; the destination side is DST, a
copy of every image but the pages files, restored with `amber lazy-pages
--page-server` fetching every page over TCP.

test_remote_daemon_killed: kill -9 the daemon while anon_64m checks its
memory; the test waits in the kernel, the server keeps listening, and
`amber lazy-pages --resume --page-server` reconnects and finishes: the
test's own checksum of every page must pass.

test_remote_server_killed: kill -9 the page server instead; the daemon
exits non-zero (the keeper keeps the faults waiting), a new server on the
same images and a resumed daemon finish the job.

test_remote_bad_token: a daemon with the wrong token is refused by the
server before any page moves; nothing listens, the server goes on.

test_remote_corrupt_page: a flipped byte in the source's pages file: the
page is never delivered, the task is killed, the daemon exits non-zero.

test_remote_events_race_prefetch: lazy_race (DONTNEED, fork, mremap at the
prefetch cursor) against a daemon prefetching from the page server.
"""

import os
import signal
import subprocess
import time

import pytest

from test_lazy import RACE_TRIES, events_raced
from test_zdtm import start, stop
from zdtm_runner import (MODES, ZDTM_DIR, Run, amber_path, assert_waiting_for_page,
                         flip_pages_byte, guarded, kill_page_server, kill_procs,
                         lazy_daemon_done, make_token, read_text, restore_lazily,
                         shipped_images, start_page_server, wait_lazy_socket)

MODE = MODES["remote-lazy"]
PROCS = []  # killed when a test fails, so nothing waits forever


def run_guarded(run, body):
    try:
        guarded(run, body)
    finally:
        kill_procs(PROCS)
        subprocess.run(["pkill", "-KILL", "-f", "--", f"--socket {run.dir}/dst/lazy.sock "],
                       check=False)


def dump_and_ship(run):
    """Dump into IMG; ship all but the pages files into DST."""
    run.dump()
    return shipped_images(run)


def server(run, token):
    proc, port, log, out, f = start_page_server(run, run.imgdir, token, ["--lazy-pages"])
    PROCS.append(proc)
    return proc, port, f


def daemon(run, dst, log, port, token, *extra):
    sock = dst / "lazy.sock"
    out = open(dst / (log + ".out"), "wb")
    run.logs += [dst / log, dst / (log + ".out")]
    d = subprocess.Popen(
        [str(amber_path()), "lazy-pages", "-D", str(dst), "--socket", str(sock),
         "--page-server", "--address", "127.0.0.1", "--port", str(port),
         "--token-file", str(token), "-v4", "-o", str(dst / log), *extra],
        cwd=dst, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    PROCS.append(d)
    return d


def server_exits_clean(proc, f):
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    kill_page_server(proc, f)
    if rc != 0:
        pytest.fail(f"page server: exit status {rc} after the daemon's CLOSE",
                    pytrace=False)


def postcopy(run, test, log, *daemon_args):
    """Start TEST, dump and ship it, serve IMG, start a daemon on DST and
    restore: the tree runs with its pages on the server. Returns (dst,
    token, server, port, server output file, daemon)."""
    start(run, ZDTM_DIR / "static" / test)
    dst = dump_and_ship(run)
    token = make_token(run)
    srv, port, f = server(run, token)
    d = daemon(run, dst, log, port, token, *daemon_args)
    wait_lazy_socket(dst, d, 30)
    restore_lazily(run, dst)
    return dst, token, srv, port, f, d


def test_remote_daemon_killed():
    run = Run("anon_64m", MODE)

    def body():
        dst, token, srv, port, f, first = postcopy(run, "anon_64m", "lazy1.log",
                                                   "--no-prefetch")
        os.kill(run.pid, signal.SIGTERM)  # the test now reads every page
        time.sleep(0.05)
        first.kill()
        first.wait()
        served = read_text(dst / "lazy1.log")
        assert_waiting_for_page(run)
        if srv.poll() is not None:
            pytest.fail("the page server exited when the daemon died", pytrace=False)
        second = daemon(run, dst, "lazy2.log", port, token, "--resume")
        lazy_daemon_done(run, second, dst, "lazy2.log")
        if "complete" in served:
            pytest.fail("the first daemon finished before it was killed",
                        pytrace=False)
        stop(run)  # PASS: anon_64m's checksum of every page matched
        server_exits_clean(srv, f)

    run_guarded(run, body)


def test_remote_server_killed():
    run = Run("anon_64m", MODE)

    def body():
        dst, token, srv, port, f, first = postcopy(run, "anon_64m", "lazy1.log",
                                                   "--no-prefetch")
        os.kill(run.pid, signal.SIGTERM)
        time.sleep(0.05)
        kill_page_server(srv, f)
        try:
            rc = first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the daemon did not notice the page server is gone",
                        pytrace=False)
        log = read_text(dst / "lazy1.log")
        if rc == 0 or "connection lost" not in log or "--resume" not in log:
            pytest.fail(f"the daemon should fail and point at --resume (exit {rc})",
                        pytrace=False)
        assert_waiting_for_page(run)
        (run.dir / "page-server.log").rename(run.dir / "page-server1.log")
        srv2, port2, f2 = server(run, token)
        second = daemon(run, dst, "lazy2.log", port2, token, "--resume")
        lazy_daemon_done(run, second, dst, "lazy2.log")
        stop(run)
        server_exits_clean(srv2, f2)

    run_guarded(run, body)


def test_remote_bad_token():
    run = Run("anon_1m", MODE)

    def body():
        start(run, ZDTM_DIR / "static" / "anon_1m")
        dst = dump_and_ship(run)
        token = make_token(run)
        srv, port, f = server(run, token)
        wrong = run.dir / "wrong-token"
        fd = os.open(wrong, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(24).hex().encode())
        os.close(fd)
        d = daemon(run, dst, "lazy.log", port, wrong)
        if d.wait(timeout=60) == 0:
            pytest.fail("a daemon with the wrong token was served", pytrace=False)
        if (dst / "lazy.sock").exists():
            pytest.fail("the refused daemon listened for a restore", pytrace=False)
        if "wrong token" not in read_text(run.dir / "page-server.log"):
            pytest.fail("the server logged no authentication failure", pytrace=False)
        if srv.poll() is not None:
            pytest.fail("the page server exited after refusing a client", pytrace=False)
        # the real client still gets in: restore and finish
        good = daemon(run, dst, "lazy2.log", port, token)
        wait_lazy_socket(dst, good, 30)
        restore_lazily(run, dst)
        lazy_daemon_done(run, good, dst, "lazy2.log")
        stop(run)
        server_exits_clean(srv, f)

    run_guarded(run, body)


def test_remote_corrupt_page():
    run = Run("anon_1m", MODE)

    def body():
        start(run, ZDTM_DIR / "static" / "anon_1m")
        dst = dump_and_ship(run)
        flip_pages_byte(run.imgdir)
        token = make_token(run)
        srv, port, f = server(run, token)
        d = daemon(run, dst, "lazy.log", port, token)
        wait_lazy_socket(dst, d, 30)
        restore_lazily(run, dst)
        rc = d.wait(timeout=60)
        kill_page_server(srv, f)
        log = read_text(dst / "lazy.log")
        if rc == 0 or "corrupt" not in log or "killing the task" not in log:
            pytest.fail(f"the daemon did not refuse the corrupt page (exit {rc})",
                        pytrace=False)
        deadline = time.monotonic() + 10
        while run.alive(run.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if run.alive(run.pid):
            pytest.fail("the task runs on without its corrupt page", pytrace=False)
        if (run.dir / "test.out").exists() and \
                "PASS" in read_text(run.dir / "test.out"):
            pytest.fail("the test passed on a corrupt page", pytrace=False)

    run_guarded(run, body)


def test_remote_copy_span_over_vmas():
    """lazy_span splits a run into three VMAs by mprotect (no event) and
    faults at its start. Pages from the page server come in checksummed
    runs: the first fault of a run delivers the rest of it, a span over
    the three VMAs that the kernel refuses whole (ENOENT). The pages must
    still arrive, not be taken as unmapped. --no-prefetch: nothing
    delivers them before the fault."""
    run = Run("lazy_span", MODE)

    def body():
        dst, token, srv, port, f, d = postcopy(run, "lazy_span", "lazy.log", "--no-prefetch")
        stop(run)  # PASS: every page held its data
        lazy_daemon_done(run, d, dst, "lazy.log")
        server_exits_clean(srv, f)

    run_guarded(run, body)


def test_remote_events_race_prefetch():
    for _ in range(RACE_TRIES):
        run, raced = Run("lazy_race", MODE), []

        def body():
            dst, token, srv, port, f, d = postcopy(run, "lazy_race", "lazy.log")
            stop(run)  # PASS: every check of the test held
            raced.append(events_raced(run))
            lazy_daemon_done(run, d, dst, "lazy.log")
            server_exits_clean(srv, f)

        run_guarded(run, body)
        if raced[0]:
            return
    pytest.fail(f"no event met the prefetch in {RACE_TRIES} tries (it was done first)",
                pytrace=False)
