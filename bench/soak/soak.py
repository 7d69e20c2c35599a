#!/usr/bin/python3
"""Soak: many dump/restore cycles of one memory workload, looking for leaks.

    bench/soak/soak.py [--cycles N] [--lazy-every K] [--workload NAME]

A zdtm workload (default mem_loop: 16 MiB rewritten and verified all the
time) is dumped and restored N times (default 1000); every K-th cycle
(default 10) restores through `amber lazy-pages`, alternately from local
images and from `amber page-server --lazy-pages` over TCP, as the zdtm
lazy and remote-lazy modes do.  Every restore checks amber.sums and every
page's checksum; at the end the workload checks its own memory (PASS).

Printed: the target's fd count and RSS at the start and the end, the
machine's allocated file handles, the time per cycle, and any amber
process (dump, restore, lazy daemon and keeper, page server) still alive
after a cycle, which would be a leak: each of them serves one session.
Exit status 0 only if the workload passed, its fd count is unchanged and
no amber process outlived its cycle.  Needs root and a built tree (make,
make tests); AMBER= picks the binary.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "test" / "zdtm"))

from test_zdtm import start, stop  # noqa: E402
from zdtm_runner import (MODES, Run, amber_path, reap_all, set_subreaper,  # noqa: E402
                         wait_until)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def file_handles():
    return int(Path("/proc/sys/fs/file-nr").read_text().split()[0])


def amber_procs():
    """pids of live processes running our amber binary."""
    exe, found = str(amber_path().resolve()), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.readlink(d / "exe") == exe and \
                    (d / "stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX":
                found.append(int(d.name))
        except OSError:
            pass
    return found


def figures(pid):
    return {"fds": fd_count(pid), "rss_kb": rss_kb(pid), "file_handles": file_handles()}


def soak(cycles, lazy_every, workload, out=print):
    """Runs the soak; returns (ok, report lines)."""
    set_subreaper()
    run = Run(f"soak-{workload}", MODES["dump"], compare_state=False)
    start(run, REPO / "test" / "zdtm" / "static" / workload)
    first = figures(run.pid)
    problems, kinds = [], {"dump": 0, "lazy": 0, "remote-lazy": 0}
    t0 = time.monotonic()
    for k in range(1, cycles + 1):
        kind = "dump"
        if lazy_every and k % lazy_every == 0:
            kind = "lazy" if (k // lazy_every) % 2 else "remote-lazy"
        old = run.imgdir
        run.imgdir = run.dir / f"img-{k}"
        run.logs = []
        MODES[kind].checkpoint(run)
        kinds[kind] += 1
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(run.dir / "dst", ignore_errors=True)
        for f in ("token", "page-server.log", "page-server.out"):
            (run.dir / f).unlink(missing_ok=True)
        # the lazy keeper (its own session) exits just after the daemon
        if not wait_until(lambda: not amber_procs(), timeout=10):
            problems.append(f"cycle {k} ({kind}): amber process(es) {amber_procs()} "
                            f"still alive 10 s after it")
        reap_all()
        if k % 100 == 0 or k == cycles:
            f = figures(run.pid)
            out(f"cycle {k}: fds {f['fds']} rss {f['rss_kb']} kB "
                f"file handles {f['file_handles']}")
    secs = time.monotonic() - t0
    last = figures(run.pid)
    stop(run)  # the workload checks its memory: PASS or pytest.fail
    report = [
        f"cycles: {cycles} ({kinds['dump']} dump, {kinds['lazy']} lazy, "
        f"{kinds['remote-lazy']} remote-lazy), {secs:.1f} s, "
        f"{secs / max(cycles, 1) * 1e3:.1f} ms per cycle",
        f"target fds: {first['fds']} -> {last['fds']}",
        f"target rss: {first['rss_kb']} -> {last['rss_kb']} kB",
        f"file handles (whole machine): {first['file_handles']} -> {last['file_handles']}",
        f"amber processes left after a cycle: {len(problems)}",
        "workload: PASS (its memory verified)",
    ]
    if last["fds"] != first["fds"]:
        problems.append(f"target fd count {first['fds']} -> {last['fds']}")
    run.finish(not problems)
    return not problems, report + problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--lazy-every", type=int, default=10)
    ap.add_argument("--workload", default="mem_loop")
    a = ap.parse_args()
    ok, lines = soak(a.cycles, a.lazy_every, a.workload)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
