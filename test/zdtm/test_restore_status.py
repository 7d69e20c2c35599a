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
