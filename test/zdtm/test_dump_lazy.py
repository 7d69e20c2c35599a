"""`amber dump --lazy-pages`: post-copy straight out of the frozen tree.

The tree is test_ns's loop as init of its own pid namespace (so a copy
can be restored on this same machine while the dumped tree still holds
its pids). The dump writes the images without the private anonymous
pages and serves them, from the frozen tree, to `amber lazy-pages
--page-server` on the restoring side, which gets a copy of the images
without any pages file (as a migration ships them). Checked from
outside: the restored copy is init of a new pid namespace with the
saved children and finishes the loop, every tick once; the dump exits 0
only after the daemon fetched every page, and the dumped tree is gone.

A dump stopped while it serves (SIGTERM) fails and leaves the tree
running: it finishes the loop itself. Images of a lazy dump restore only
through the daemon: a plain restore is refused, naming the reason.
"""

import re
import signal
import subprocess
import time

import pytest

import zdtm_runner
from test_ns import check_pid_ns, check_ticks, start_pid_ns_tree
from zdtm_runner import (PIDFILE, Run, amber_path, env_float, guarded, kill_pids, make_token,
                         proc_stat, read_text, sanitizer_env, shipped_images)


def frozen(pid):
    """Stopped by the dump, or a zombie the frozen tree has not reaped yet
    (the loop's `sleep 0.05` children exit all the time)."""
    st = proc_stat(pid)
    return st is not None and st[0] in "tTZ"


def start_lazy_dump(run, token):
    """`amber dump --lazy-pages --port 0`: returns (process, port)."""
    log = run.dir / "dump.log"
    out = run.dir / "dump.err"
    run.logs += [log, out]
    proc = subprocess.Popen(
        [str(amber_path()), "dump", "-t", str(run.pid), "-D", str(run.imgdir),
         "--lazy-pages", "--address", "127.0.0.1", "--port", "0", "--token-file", str(token),
         "-v4", "-o", str(log)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(out, "wb"),
        env=sanitizer_env(run.dir))
    line = proc.stdout.readline().decode(errors="replace")
    m = re.search(r"serving lazy pages on [^:]*:(\d+)", line)
    if not m:
        proc.kill()
        proc.wait()
        pytest.fail(f"dump --lazy-pages did not start serving: {line!r}\n"
                    f"{read_text(log)[-3000:]}", pytrace=False)
    return proc, int(m.group(1))


def test_dump_lazy_pages(tmp_path):
    run = Run("dump_lazy", zdtm_runner.MODES["dump"], compare_state=False)
    copy = []

    def body():
        out, kids = start_pid_ns_tree(run)
        token = make_token(run)
        run.imgdir.mkdir(mode=0o700, exist_ok=True)
        dump, port = start_lazy_dump(run, token)
        # walked once frozen: the loop's short-lived `sleep 0.05` children
        # come and go before the freeze
        tree = run.walk() + [run.pid]
        try:
            # frozen while it serves, its pages in no file
            assert all(frozen(p) for p in tree), [proc_stat(p) for p in tree]
            pm = read_text(run.dir / "dump.log")
            assert re.search(r"pages \((\d+) of them left lazy\)", pm), pm[-2000:]
            assert any(int(n) > 0 for n in re.findall(r"\((\d+) of them left lazy\)", pm))
            dst = shipped_images(run)
            zdtm_runner.RemoteLazy.lazy_restore(
                run, dst, ["--page-server", "--address", "127.0.0.1", "--port", port,
                           "--token-file", token])
            rc = dump.wait(timeout=env_float("ZDTM_AMBER_TIMEOUT", 300))
        finally:
            if dump.poll() is None:
                dump.kill()
                dump.wait()
        assert rc == 0, read_text(run.dir / "dump.log")[-3000:]
        assert "every page was fetched" in read_text(run.dir / "dump.log")
        root = int(read_text(run.imgdir / PIDFILE))
        copy.append(root)
        if run.leftovers(10, tree):
            pytest.fail("the dumped tree runs on after its pages were fetched",
                        pytrace=False)
        run.reap_dumped()
        check_pid_ns(root, kids)
        lz = read_text(dst / "lazy-pages.log")
        assert re.search(r"[1-9]\d* pages", lz), lz[-2000:]
        run.set_root(root)
        if run.wait_gone([root], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the restored loop did not finish", pytrace=False)
        check_ticks(out.read_text())

    try:
        guarded(run, body)
    finally:
        kill_pids(*copy)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_dump_lazy_pages_stopped(tmp_path, sig):
    """SIGTERM while serving: the dump fails, the tree runs on as it was.
    SIGKILL: the same, and its page server goes with it."""
    run = Run("dump_lazy_stopped", zdtm_runner.MODES["dump"], compare_state=False)

    def body():
        out, _ = start_pid_ns_tree(run)
        run.imgdir.mkdir(mode=0o700, exist_ok=True)
        dump, _ = start_lazy_dump(run, make_token(run))
        tree = run.walk() + [run.pid]  # once frozen, as above
        assert all(frozen(p) for p in tree)
        # the images ship no pages: a restore without the daemon is refused
        r = subprocess.run([str(amber_path()), "restore", "-D", str(run.imgdir), "-d"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "--lazy-pages" in r.stdout + r.stderr, r
        dump.send_signal(sig)
        rc = dump.wait(timeout=60)
        assert rc != 0
        if sig == signal.SIGTERM:
            log = read_text(run.dir / "dump.log")
            assert "left running" in log, log[-2000:]
        left = lambda: subprocess.run(["pgrep", "-f", f"-D {run.imgdir} --lazy-pages"],
                                      capture_output=True).returncode == 0
        deadline = time.monotonic() + 10
        while left() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left(), "the dump's page server outlived it"
        deadline = time.monotonic() + 10
        while any(frozen(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(frozen(p) for p in tree), [proc_stat(p) for p in tree]
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the tree did not finish its loop", pytrace=False)
        check_ticks(out.read_text())

    guarded(run, body)
