"""Post-copy with a page server that fails mid-session leaves nothing behind.

The page server (`page-server --lazy-pages`) gets AMBER_FAULT=ps-drop@N
(it shuts the connection down at its Nth read) or ps-recv-eio@N (the Nth
read fails with EIO), src/pageserver/conn.c.  The N here hit the
handshake and the eager fetches, before any task exists.  The restore
must fail: no task of the tree may be left, no amber process (restore,
lazy daemon, keeper) may outlive it, the page server keeps listening for
a retry (the test then kills it), the server's log names the stage, and the dump's images stay byte for byte
as they were.  The same images then restore over the network and the
test passes.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_zdtm import start, stop
from zdtm_runner import (MODES, Run, amber_path, kill_page_server, make_token, read_text,
                         reap_all, sanitizer_env, start_page_server, wait_until)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "bench" / "soak"))
from soak import amber_procs  # noqa: E402

# early messages: the handshake and the eager fetches, before any task
# exists.  A fault once the tree runs leaves it to the keeper, waiting for
# `lazy-pages --resume` (docs/lazy.md): by design, not covered here.
FAULTS = ["ps-drop@1", "ps-drop@4", "ps-recv-eio@1", "ps-recv-eio@3"]


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.iterdir()) if p.is_file() and p.suffix in (".img", ".sums")}


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def dumped(request):
    run = Run("lazy-faults-mem_loop", MODES["dump"], compare_state=False)
    start(run, Path(__file__).resolve().parent / "static" / "mem_loop")
    pids = run.walk()
    MODES["dump"].dump(run)
    run.leftovers(10, pids)
    run.reap_dumped()
    for pid in pids:
        run.exit_status.pop(pid, None)
    yield run, pids
    run.kill_tree()
    reap_all()
    run.finish(not request.session.testsfailed)


def failed_lazy_restore(run, fault, k):
    """One post-copy restore against a faulty server; what is wrong."""
    dst = run.dir / f"dst-{k}"
    dst.mkdir(mode=0o700)
    for p in run.imgdir.iterdir():
        if p.is_file() and not p.name.startswith("pages-") and \
                (p.suffix == ".img" or p.name == "amber.sums"):
            shutil.copy2(p, dst / p.name)
    token = make_token(run)
    os.environ["AMBER_FAULT"] = fault
    try:
        proc, port, slog, _, f = start_page_server(run, run.imgdir, token, ["--lazy-pages"],
                                                   name=f"ps-{k}")
    finally:
        del os.environ["AMBER_FAULT"]
    sock, dlog = dst / "lazy.sock", dst / "lazy-pages.log"
    daemon = subprocess.Popen(
        [str(amber_path()), "lazy-pages", "-D", str(dst), "--socket", str(sock),
         "--page-server", "--address", "127.0.0.1", "--port", str(port),
         "--token-file", str(token), "-v4", "-o", str(dlog)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=sanitizer_env(dst))
    rst = None
    if wait_until(lambda: sock.exists() or daemon.poll() is not None, timeout=30) and \
            sock.exists():
        rst = subprocess.run([str(amber_path()), "restore", "-D", str(dst), "-d",
                              "--lazy-pages", "--lazy-socket", str(sock), "-v4",
                              "-o", str(dst / "restore.log")], stdin=subprocess.DEVNULL,
                             capture_output=True, env=sanitizer_env(dst), timeout=60)
    bad = []
    try:
        drc = daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        drc = None
        bad.append("the lazy daemon did not exit")
    # a failed session is not the end: the server listens for a retry
    if proc.poll() is not None:
        bad.append(f"the page server exited ({proc.returncode}) on a failed session")
    kill_page_server(proc, f)
    token.unlink()
    if f"fault injected at stage {fault.split('@')[0]}" not in read_text(slog):
        bad.append("the server's log does not name the stage")
    restored_ok = rst is not None and rst.returncode == 0
    if restored_ok and drc == 0:
        bad.append("restore and daemon both succeeded")
    # a tree already running when the pages stopped coming must be killed
    if not wait_until(lambda: not any(alive(p) for p in run.known_pids), timeout=30):
        bad.append(f"tree task(s) {[p for p in run.known_pids if alive(p)]} left")
    reap_all()
    if not wait_until(lambda: not amber_procs(), timeout=30):
        bad.append(f"amber process(es) {amber_procs()} left")
    return bad, drc, read_text(dlog)


@pytest.mark.parametrize("fault", FAULTS)
def test_server_fault(dumped, fault):
    run, pids = dumped
    before = digest(run.imgdir)
    bad, drc, dlog = failed_lazy_restore(run, fault, FAULTS.index(fault))
    if digest(run.imgdir) != before:
        bad.append("the images changed")
    tail = "\n".join(dlog.splitlines()[-8:])
    assert not bad, f"{fault}: {'; '.join(bad)} (daemon exit {drc})\n{tail}"


def test_restore_after_faults(dumped):
    """Last: a clean post-copy restore of the same images passes."""
    run, _ = dumped
    MODES["remote-lazy"].restore(run)
    run.set_root(run.pid)
    stop(run)
