"""A tree whose children come and go while it is frozen.

A python loop forks children that exit at once, their parent either
ignoring SIGCHLD (the kernel reaps each child the moment it exits) or
reaping them with waitpid(). A child can exit, or be reaped, between the
walk that lists it and its seize: it is saved as a zombie or left out,
never a failed dump. Twenty dumps with --leave-running must all succeed,
then a dump that kills the tree and its restore, which must go on forking.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zdtm_runner import (amber_path, read_text, reap_all, sanitizer_env, sanitizer_reports,
                         set_subreaper, wait_until)

CHURN = r"""
import os, signal, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
n = 0
while True:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    if sys.argv[1] == "reap":
        time.sleep(0.0005)
        os.waitpid(pid, 0)
    n += 1
    if n % 200 == 0:
        with open(sys.argv[2] + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(sys.argv[2] + ".tmp", sys.argv[2])
"""

DUMPS = 20


def forks(path):
    try:
        return int(read_text(path) or 0)
    except ValueError:
        return 0


def amber(logdir, *args):
    return subprocess.run([amber_path(), *args], capture_output=True, text=True, timeout=120,
                          env=sanitizer_env(logdir))


@pytest.mark.parametrize("children", ["ignore", "reap"])
def test_churning_children(tmp_path, children):
    assert set_subreaper()
    counter = tmp_path / "forks"
    proc = subprocess.Popen([sys.executable, "-c", CHURN, children, str(counter)],
                            start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = proc.pid
    try:
        assert wait_until(lambda: forks(counter) > 0), "the loop never forked"
        failed = []
        for i in range(DUMPS):
            d = tmp_path / f"snap{i}"
            d.mkdir()
            r = amber(tmp_path, "dump", "-t", str(pid), "-D", str(d), "--leave-running",
                      "-o", str(d / "dump.log"))
            if r.returncode:
                failed.append(f"dump {i}: {r.stderr.strip()}: "
                              + " | ".join(l for l in read_text(d / "dump.log").splitlines()
                                           if "Error" in l))
        assert not failed, "\n".join(failed)
        assert proc.poll() is None, "the loop died under the dumps"

        d = tmp_path / "final"
        d.mkdir()
        r = amber(tmp_path, "dump", "-t", str(pid), "-D", str(d), "-o", str(d / "dump.log"))
        assert r.returncode == 0, read_text(d / "dump.log")[-2000:]
        proc.wait(timeout=30)
        reap_all()  # its killed children, now ours
        before = forks(counter)
        r = amber(tmp_path, "restore", "-D", str(d), "-d", "-o", str(d / "restore.log"))
        assert r.returncode == 0, read_text(d / "restore.log")[-2000:]
        assert wait_until(lambda: forks(counter) > before + 400, timeout=30), \
            f"the restored loop does not go on forking ({before} -> {forks(counter)})"
        assert not sanitizer_reports(tmp_path), "\n".join(sanitizer_reports(tmp_path))
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait()
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or
                   read_text(f"/proc/{pid}/stat").split(") ")[-1][:1] == "Z", timeout=10)
        reap_all()
