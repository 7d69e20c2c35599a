"""`amber restore` without -d exits with the restored root's status.

A restored program that exits 1 or 2 must make amber exit 1 or 2, with
nothing said about options; a root killed by signal N gives 128 + N; and
amber's own failure is 125 then (with -d it stays 1), so the two can't be
mixed up. The workload, helpers/exit_when, polls for a file and exits with
the code it was given, so the test picks the moment without racing the
restore.
"""

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from zdtm_runner import ZDTM_DIR, amber_path, sanitizer_env, sanitizer_reports

EXIT_WHEN = ZDTM_DIR / "helpers" / "exit_when"
TIMEOUT = 60


def amber(args, imgdir, log):
    return subprocess.run([str(amber_path())] + args + ["-v4", "-o", str(imgdir / log)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=sanitizer_env(imgdir),
                          timeout=TIMEOUT)


def dump_exit_when(tmp_path, code):
    """Starts exit_when, dumps it (killing it); returns (imgdir, trigger)."""
    trigger = tmp_path / "go"
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    p = subprocess.Popen([str(EXIT_WHEN), str(trigger), str(code)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        r = amber(["dump", "-t", str(p.pid), "-D", str(imgdir)], imgdir, "dump.log")
        assert r.returncode == 0, f"dump failed: {r.stderr.decode()}"
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    return imgdir, trigger


@pytest.mark.parametrize("code", [0, 1, 2, 3, 42, -signal.SIGKILL, -signal.SIGTERM])
def test_restore_passes_root_status(tmp_path, code):
    imgdir, trigger = dump_exit_when(tmp_path, code)
    restore = subprocess.Popen([str(amber_path()), "restore", "-D", str(imgdir), "-v4",
                                "-o", str(imgdir / "restore.log")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=sanitizer_env(imgdir),
                               start_new_session=True)
    trigger.touch()
    try:
        out, err = restore.communicate(timeout=TIMEOUT)
    finally:
        if restore.poll() is None:
            restore.kill()
            restore.wait()
    want = code if code >= 0 else 128 - code
    assert restore.returncode == want, \
        f"restored root ended with {code}, amber exited {restore.returncode}: {err.decode()}"
    assert b"bad options" not in err
    assert not sanitizer_reports(imgdir)


@pytest.mark.parametrize("detach,want", [(False, 125), (True, 1)])
def test_restore_own_failure_status(tmp_path, detach, want):
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    (imgdir / "inventory.img").write_bytes(b"not an image")
    r = amber(["restore", "-D", str(imgdir)] + (["-d"] if detach else []), imgdir,
              "restore.log")
    assert r.returncode == want, f"amber exited {r.returncode}: {r.stderr.decode()}"
    assert b"bad options" not in r.stderr


def test_bad_option_is_usage(tmp_path):
    r = subprocess.run([str(amber_path()), "restore", "--no-such-option"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 2
    assert b"bad options" in r.stderr


@pytest.mark.parametrize("reap", [True, False])
def test_restore_waits_for_zombie_pid(tmp_path, reap):
    """Right after a dump killed the tree, its pids may still be zombies
    that their parent has not reaped yet (`amber dump && amber restore`
    from a shell): the restore gives each such pid 2 s to be freed. Reaped
    after 0.5 s, the restore goes on; never reaped, it is refused, naming
    the zombie's parent, before anything is made."""
    trigger = tmp_path / "go"
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    p = subprocess.Popen([str(EXIT_WHEN), str(trigger), "0"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    reaper = None
    try:
        r = amber(["dump", "-t", str(p.pid), "-D", str(imgdir)], imgdir, "dump.log")
        assert r.returncode == 0, f"dump failed: {r.stderr.decode()}"
        # p is our zombie now: not waited for yet
        state = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "Z", state
        if reap:
            reaper = threading.Timer(0.5, p.wait)
            reaper.start()
        r = amber(["restore", "-D", str(imgdir), "-d"], imgdir, "restore.log")
        log = (imgdir / "restore.log").read_text()
        if reap:
            assert r.returncode == 0, log
            assert "restored 1 task(s)" in log, log
        else:
            assert r.returncode != 0, log
            assert f"pid {p.pid} is in use by a zombie its parent {os.getpid()} has not " \
                   "reaped" in log, log
            assert "nothing was restored" in log, log
    finally:
        if reaper:
            reaper.join()
        if p.returncode is None:
            p.wait()
        if reap:
            os.kill(p.pid, signal.SIGKILL)  # the restored one: reparented, not ours
