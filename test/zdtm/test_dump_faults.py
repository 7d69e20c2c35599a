"""A failed dump leaves the tree as it was.

AMBER_FAULT=<stage> makes `amber dump` fail at that stage (src/base/fault.c).
Afterwards amber must have exited non-zero with the reason, and the tree
must run on untouched: every task alive, no thread traced or stopped
(TracerPid 0, State not t/T), the same maps, fds and status lines as
before (no scratch mapping left behind), and mem_loop, which rewrites and
verifies 16 MiB all the time, still making progress.  A second dump must
then succeed and the restored test PASS (posix_mqueue: with every message
of its queues, which a failed dump read and put back).

AMBER_FAULT=<stage>:sleep stalls amber with the tree frozen; SIGKILLing it
there, at every stage, must leave the tree running too: with PTRACE_SEIZE the tracer's
death detaches every thread and no group-stop is left behind.
"""

import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_zdtm import start, stop
from zdtm_runner import (MODES, Run, amber_path, capture, guarded, proc_stat,
                         read_text, sanitizer_env, sanitizer_reports, state_diff,
                         amber_opts_for, tree_pids, wait_until)

STATIC = Path(__file__).resolve().parent / "static"
DUMP = MODES["dump"]


def cpu_ticks(pid):
    f = read_text(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
    return int(f[11]) + int(f[12]) if len(f) > 12 else -1


def live(pids):
    """pids that are not zombies (fork_tree keeps one on purpose)."""
    return [p for p in pids if (proc_stat(p) or "Z")[0] != "Z"]


def thread_problems(pids):
    """Threads of pids that are traced, stopped or gone."""
    bad = []
    for pid in pids:
        st = proc_stat(pid)
        if st is None or st[0] in "ZX":
            bad.append(f"task {pid} is gone")
            continue
        for task in Path(f"/proc/{pid}/task").iterdir():
            status = dict(line.split(":", 1) for line in
                          read_text(task / "status").splitlines() if ":" in line)
            tracer = status.get("TracerPid", "").strip()
            state = status.get("State", "").split()
            if tracer != "0":
                bad.append(f"thread {task.name} is traced by {tracer}")
            if state and state[0] in "tT":
                bad.append(f"thread {task.name} is stopped ({state[0]})")
    return bad


def on_tmpfs(path):
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                          text=True).stdout.strip() in ("tmpfs", "ramfs")


def amber_dump(run, logname, fault, args=()):
    """Runs `amber dump` with AMBER_FAULT=fault; returns the Popen."""
    run.imgdir.mkdir(mode=0o700, exist_ok=True)
    env = sanitizer_env(run.imgdir)
    env["AMBER_FAULT"] = fault
    log = run.imgdir / logname
    run.logs.append(log)
    return subprocess.Popen([str(amber_path()), "dump", "-t", str(run.pid), "-D",
                             str(run.imgdir), *args, "-v4", "-o", str(log)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)


def check_untouched(run, pids, before, busy):
    """The tree runs on exactly as before the failed dump."""
    # a SIGKILLed tracer's threads are detached by the kernel, not at once
    if not wait_until(lambda: not thread_problems(pids), timeout=5):
        pytest.fail("after the failed dump: " + "; ".join(thread_problems(pids)),
                    pytrace=False)
    if busy:
        ticks = cpu_ticks(run.pid)
        if not wait_until(lambda: cpu_ticks(run.pid) > ticks, timeout=5):
            pytest.fail("the tree makes no progress after the failed dump",
                        pytrace=False)
    diff = state_diff(before, capture(run.pid))
    if diff:
        pytest.fail(f"the failed dump changed the tree:\n{diff}", pytrace=False)
    if sorted(live(tree_pids(run.pid))) != sorted(pids):
        pytest.fail("the tree's tasks changed after the failed dump", pytrace=False)


def finish_with_good_dump(run):
    """A plain dump now succeeds, the restore works and the test PASSes."""
    for f in run.imgdir.glob("*"):
        if f.suffix == ".img" or f.name == "amber.sums":
            f.unlink()
    DUMP.checkpoint(run)
    stop(run)


# every stage, in the order a dump reaches them; image-enospc is the first
# image write failing as on a full disk
STAGES = ["dump-frozen", "dump-core", "dump-files", "dump-mm", "image-enospc",
          "dump-pages", "dump-end"]
CASES = [("mem_loop", s) for s in STAGES] + \
        [("threads_16", "dump-mm"), ("fork_tree", "dump-core"), ("fork_tree", "dump-end"),
         ("pty_pair", "dump-pages"), ("pty_pair", "dump-end"),
         ("packet_sock", "dump-end"), ("packet_sock_mmap", "dump-mm"),
         ("packet_sock_mmap", "dump-end"), ("socket_tcp_syn_sent", "dump-end"),
         ("inet_udp_queue", "dump-end"),
         # tcp-stream images are fsynced together at the end, on a disk
         # (not tmpfs: there is nothing to sync)
         ("socket_tcp", "image-sync"),
         # a queue's messages are taken and sent back at once: a failure in
         # between (dump-mqueue) or later (dump-end) leaves them all there,
         # in order, which the test checks after the good dump's restore
         ("posix_mqueue", "dump-mqueue"), ("posix_mqueue", "dump-end")]


@pytest.mark.parametrize("name,stage", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_fault(name, stage):
    run = Run(f"fault-{stage}-{name}", DUMP, test=name)
    if stage == "image-sync" and on_tmpfs(run.dir):
        run.finish(True)
        pytest.skip(f"images on tmpfs ({run.dir}): amber syncs nothing there")

    def body():
        start(run, STATIC / name)
        pids = live(run.walk())
        before = capture(run.pid)
        p = amber_dump(run, "fault.log", stage, amber_opts_for(name, "dump"))
        out = p.communicate(timeout=120)[0].decode(errors="replace")
        log = read_text(run.imgdir / "fault.log")
        if p.returncode <= 0 or p.returncode >= 128:
            pytest.fail(f"amber dump with AMBER_FAULT={stage} exited "
                        f"{p.returncode}, want a failure status", pytrace=False)
        if f"fault injected at stage {stage}" not in log or \
                "dump failed" not in log + out:
            pytest.fail(f"no message about the failure in the log:\n{log[-2000:]}",
                        pytrace=False)
        san = sanitizer_reports(run.imgdir)
        if san:
            pytest.fail("sanitizer: " + "\n".join(san[:20]), pytrace=False)
        check_untouched(run, pids, before, name == "mem_loop")
        finish_with_good_dump(run)

    guarded(run, body)


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_mid_dump(stage):
    run = Run(f"fault-sigkill-{stage}-mem_loop", DUMP)

    def body():
        start(run, STATIC / "mem_loop")
        pids = live(run.walk())
        before = capture(run.pid)
        p = amber_dump(run, "killed.log", f"{stage}:sleep")
        deadline = time.monotonic() + 60
        while f"sleeping at stage {stage}" not in read_text(run.imgdir / "killed.log"):
            if p.poll() is not None or time.monotonic() > deadline:
                p.kill()
                pytest.fail(f"amber did not reach the {stage} stage", pytrace=False)
            time.sleep(0.01)
        frozen = thread_problems(pids)
        if not any("traced" in b for b in frozen):
            pytest.fail("the tree is not frozen while amber sleeps", pytrace=False)
        p.send_signal(signal.SIGKILL)
        p.wait()
        check_untouched(run, pids, before, True)
        finish_with_good_dump(run)

    guarded(run, body)
