"""Every zdtm test binary (static/) crossed with every selected mode.

A test is started as TEST --pidfile=PIDFILE --outfile=OUTFILE in its own
directory; the mode checkpoints the tree (or not); SIGTERM; the last line
of OUTFILE must be PASS.  See README.md.
"""

import os
import signal
import subprocess
import time

import pytest

from zdtm_runner import ZDTM_DIR, Run, env_float, guarded, read_text, tree_pids

# What a test needs from the machine.  Keep it honest: list only real
# requirements; the runner skips (with the reason) when one is missing.
NEEDS = {
    "fpu_avx": {"cpu": "avx"},
    "fpu_avx512": {"cpu": "avx512f"},
    "anon_1g": {"mem_mib": 3 * 1024},
}

# Tests whose /proc state (maps) changes all the time by design: the runner
# does not compare it; the test checks its own memory.
CHANGING_STATE = {
    "mem_churn": "unmaps, maps and mremaps its chunks without pause",
}

# Known races, not yet fixed: xfail without strict, so a pass is fine and a
# failure is reported as xfail (docs/limitations.md, "Stopped processes").
FLAKY = {("stopped", "snaps"): "seen once in the QEMU guest (soft-dirty, TCG): the "
         "child's SIGUSR2 handler had not run as expected after SIGCONT (exit 6); "
         "24 runs on the host passed, cause not found"}

# Tests started under a launcher: name -> (the command that execs the test,
# the uid and gid its directory must belong to, or None).  userns runs as
# root of a user namespace of its own mapping 0..65535 to 100000..165535.
USERNS_OUTER, USERNS_COUNT = 100000, 65536


def userns_prefix(*flags):
    return [str(ZDTM_DIR / "helpers" / "userns_exec"), *flags, str(USERNS_OUTER),
            str(USERNS_COUNT)]


# userns_net: the same, its network namespace owned by that user namespace.
LAUNCHED = {"userns": (userns_prefix(), USERNS_OUTER),
            "userns_net": (userns_prefix("--net"), USERNS_OUTER)}

# (test, mode) -> why the test cannot run in that mode.
EXCLUDE = {}

# (test, mode) -> a known bug, tracked in the README's "Not working yet".
# Strict: a test listed here that starts to pass fails the run, so the
# list cannot go stale.
KNOWN_BUGS = {}

# The page-server mode is a dump whose pages take another road: the same
# races and bugs apply to it.
for _table in (FLAKY, KNOWN_BUGS):
    _table.update({(t, "page-server"): why for (t, m), why in list(_table.items())
                   if m == "dump"})


def cpu_flags():
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def mem_available_mib():
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def check_needs(name, mode):
    if (name, mode.name) in EXCLUDE:
        pytest.skip(f"excluded in mode {mode.name}: {EXCLUDE[name, mode.name]}")
    need = NEEDS.get(name, {})
    if "cpu" in need and need["cpu"] not in cpu_flags():
        pytest.skip(f"the CPU lacks the '{need['cpu']}' flag")
    if "mem_mib" in need and mem_available_mib() < need["mem_mib"]:
        pytest.skip(f"needs {need['mem_mib']} MiB of available memory, "
                    f"have {mem_available_mib()}")


def start(run, binary, prefix=(), extra=(), owner=None):
    """Starts the test (under @prefix, a command that execs it, with the
    test's options @extra) and waits for its test_daemon(). @owner: the
    host uid (and gid) the test's directory is given to, for a test run
    as root of a user namespace that maps it."""
    pidfile, outfile = run.dir / "test.pid", run.dir / "test.out"
    if owner is not None:
        os.chown(run.dir, owner, owner)
    log = run.dir / "test.log"
    run.notes = [outfile, outfile.with_name("test.out.inprogress"), log]
    with open(log, "wb") as f:
        run.popen = subprocess.Popen(
            [*prefix, str(binary), f"--pidfile={pidfile}", f"--outfile={outfile}", *extra],
            cwd=run.dir, stdin=subprocess.DEVNULL, stdout=f,
            stderr=subprocess.STDOUT,
            # a test whose expectations differ by mode (cow_fork) reads it
            env=dict(os.environ, ZDTM_MODE=run.mode.name))
    run.set_root(run.popen.pid)
    try:
        rc = run.popen.wait(timeout=env_float("ZDTM_START_TIMEOUT", 60))
    except subprocess.TimeoutExpired:
        for pid in reversed(tree_pids(run.popen.pid)):  # not a session yet
            os.kill(pid, signal.SIGKILL)
        pytest.fail("the test did not call test_daemon() in time",
                    pytrace=False)
    if rc == 77:
        lines = read_text(outfile).splitlines() or ["SKIP: (no reason)"]
        pytest.skip(f"the test skipped itself: {lines[-1]}")
    if rc != 0 or not pidfile.is_file():
        pytest.fail(f"the test failed to start (launcher exit {rc})",
                    pytrace=False)
    run.set_root(int(pidfile.read_text()))


def stop(run):
    """SIGTERM the root; wait for the result, then for the tree to exit."""
    outfile = run.dir / "test.out"
    os.kill(run.pid, signal.SIGTERM)
    deadline = time.monotonic() + env_float("ZDTM_TIMEOUT", 60)
    gone_at = None
    while not outfile.exists():
        if gone_at is None and not run.alive(run.pid):
            gone_at = time.monotonic()
        if gone_at is not None and time.monotonic() - gone_at > 0.5:
            pytest.fail(f"the test died without a result (wait status "
                        f"{run.exit_status.get(run.pid, 'unknown')})",
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no result within ZDTM_TIMEOUT after SIGTERM",
                        pytrace=False)
        time.sleep(0.01)
    if run.wait_gone([run.pid], 10):
        pytest.fail("the test wrote its result but did not exit",
                    pytrace=False)
    lines = read_text(outfile).splitlines() or [""]
    last = lines[-1]
    if last.startswith("SKIP:"):
        pytest.skip(f"the test skipped itself: {last}")
    if last != "PASS":
        pytest.fail(f"result: {last!r}", pytrace=False)
    status = run.exit_status.get(run.pid)
    if status not in (None, 0):
        pytest.fail(f"PASS, but the test exited with status {status}",
                    pytrace=False)
    left = run.leftovers(5)
    if left:
        pytest.fail(f"tasks {left} of the tree still run after the test "
                    f"ended", pytrace=False)


def test_zdtm(zdtm_test, zdtm_mode, request):
    bug = KNOWN_BUGS.get((zdtm_test.name, zdtm_mode.name))
    if bug:
        request.applymarker(pytest.mark.xfail(reason=bug, strict=True))
    flaky = FLAKY.get((zdtm_test.name, zdtm_mode.name))
    if flaky:
        request.applymarker(pytest.mark.xfail(reason=flaky, strict=False))
    check_needs(zdtm_test.name, zdtm_mode)
    zdtm_mode.preflight()
    run = Run(zdtm_test.name, zdtm_mode,
              compare_state=zdtm_test.name not in CHANGING_STATE)

    def body():
        prefix, owner = LAUNCHED.get(zdtm_test.name, ((), None))
        start(run, zdtm_test, prefix, owner=owner)
        zdtm_mode.checkpoint(run)
        stop(run)

    guarded(run, body)
