"""Damaged image sets: `amber restore` must refuse them cleanly.

A real tree (a zdtm test) is dumped once per source test; every case
copies the pristine images, damages the copy (truncation, flipped bytes,
a wrong magic, a missing file, page runs beyond the pages file) and runs
`amber restore -d` on it.  A refusal must be: a non-zero exit (not a
signal), an error message in the log, no sanitizer report, no task with a
dumped pid afterwards and no new child of ours left behind.  Everything
but the page data is covered by amber.sums and so refused before any
process is created; page data is covered by the per-run checksums, which
the restorer checks as the pages land, before restored code runs.

The same damage is also tried with amber.sums removed (a CRIU-made set has
none): truncations and wrong magics must still be refused by the loader's
own checks, and no damage may crash amber.  The pristine copy must restore
and the test then PASS, so the refusals are due to the damage alone.
"""

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from test_zdtm import start, stop
from zdtm_runner import (MODES, SANITIZER_RE, Run, amber_path, read_text,
                         reap_all, sanitizer_env, sanitizer_reports, tail)

SOURCES = ["anon_shared", "pipe_inflight", "memfd", "inet_udp"]
SUMS = "amber.sums"
TIMEOUT = 60


def children_of_us():
    kids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        kids.update(int(k) for k in read_text(task / "children").split())
    return kids


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


class Source:
    """One dumped tree and its pristine images."""

    def __init__(self, name, run, imgdir, pids):
        self.name, self.run, self.imgdir, self.pids = name, run, imgdir, pids
        self.root = run.pid
        self.files = sorted(p.name for p in imgdir.iterdir())
        self.nr_case = 0

    def copy(self, sums=True):
        self.nr_case += 1
        dst = self.run.dir / f"case{self.nr_case}"
        shutil.copytree(self.imgdir, dst)
        if not sums:
            (dst / SUMS).unlink()
        return dst

    def restore(self, imgdir):
        """amber restore -d on imgdir: (exit status, log text, output)."""
        log = imgdir / "restore.log"
        before = children_of_us()
        try:
            r = subprocess.run([str(amber_path()), "restore", "-D", str(imgdir), "-d",
                                "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=sanitizer_env(imgdir), timeout=TIMEOUT)
            rc, out = r.returncode, r.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, out = "timeout", ""
        self.new_children = children_of_us() - before
        return rc, read_text(log), out

    def cleanup(self):
        """Kill whatever a (wrongly) successful restore left running."""
        for pid in self.pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        while any(alive(p) for p in self.pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.01)
        reap_all()

    def problems(self, what, imgdir, must_refuse, want=None):
        """Restores imgdir; returns what is wrong with the outcome."""
        rc, log, out = self.restore(imgdir)
        bad = []
        if rc == "timeout":
            bad.append("timed out")
        elif rc < 0 or rc >= 128:
            bad.append(f"amber died of a signal (status {rc})")
        san = [line for line in (out + log).splitlines() if SANITIZER_RE.search(line)]
        san += sanitizer_reports(imgdir)
        if san:
            bad.append("sanitizer: " + san[0])
        if must_refuse:
            errors = [line for line in log.splitlines() if "Error" in line]
            if rc == 0:
                bad.append("restore succeeded")
            elif not errors:
                bad.append("refused without an error message in the log")
            elif want and not any(w in line for line in errors for w in want):
                bad.append(f"refused, but not for {want}: {errors[0]}")
            running = [p for p in self.pids if alive(p)]
            if running:
                bad.append(f"dumped pid(s) {running} exist after the refusal")
            left = [p for p in self.new_children if alive(p)]
            if left:
                bad.append(f"left child process(es) {left}")
        self.cleanup()
        if bad:
            return [f"{what}: {'; '.join(bad)}\n{tail(imgdir / 'restore.log', 8)}"]
        shutil.rmtree(imgdir, ignore_errors=True)
        return []


def damage_file(path, fn):
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(fn(data)))


def flip(offset):
    def fn(data):
        data[offset] ^= 0x5a
        return data
    return fn


def magic_len(name):
    if name.startswith("pages-") or not name.endswith(".img"):
        return 0
    return 4 if name == "inventory.img" else 8


@pytest.fixture(scope="module", params=SOURCES)
def source(request):
    """Start the test, dump it into a directory amber creates, check modes."""
    name = request.param
    binary = Path(__file__).resolve().parent / "static" / name
    if not amber_path().is_file():
        pytest.fail(f"no amber binary at {amber_path()}", pytrace=False)
    run = Run(f"bad-images-{name}", MODES["dump"], compare_state=False)
    start(run, binary)
    pids = run.walk()
    imgdir = run.dir / "img"
    r = subprocess.run([str(amber_path()), "dump", "-t", str(run.pid), "-D", str(imgdir),
                        "-v4", "-o", str(run.dir / "dump.log")], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=sanitizer_env(run.dir), timeout=TIMEOUT)
    if r.returncode or run.leftovers(10, pids) or sanitizer_reports(run.dir):
        run.kill_tree()
        pytest.fail(f"dump of {name} failed ({r.returncode}):\n{r.stdout.decode()}\n"
                    f"{tail(run.dir / 'dump.log')}", pytrace=False)
    for pid in pids:
        run.exit_status.pop(pid, None)
    reap_all()
    src = Source(name, run, imgdir, pids)
    yield src
    src.cleanup()
    run.finish(not request.session.testsfailed)


def test_modes(source):
    mode = stat.S_IMODE(source.imgdir.stat().st_mode)
    bad = [] if mode == 0o700 else [f"image dir is {mode:o}, want 700"]
    for f in source.files:
        m = stat.S_IMODE((source.imgdir / f).stat().st_mode)
        if m != 0o600:
            bad.append(f"{f} is {m:o}, want 600")
    assert not bad, "\n".join(bad)
    assert SUMS in source.files


def cut_points(name, size):
    """Offsets to truncate at: inside the magic, inside the first entry's
    header, one byte short.  Never at an entry boundary, where a shorter
    list of entries would still be well formed."""
    m = magic_len(name)
    if name == SUMS:
        return sorted({0, 5, size // 2, size - 1})
    if m == 0:
        return sorted({0, size // 2 + 1, size - 1})
    return sorted({0, m // 2, m + 2, size - 1})


def test_truncated(source):
    bad = []
    for f in source.files:
        size = (source.imgdir / f).stat().st_size
        for cut in cut_points(f, size):
            for sums in (True, False) if f != SUMS else (True,):
                d = source.copy(sums)
                os.truncate(d / f, cut)
                bad += source.problems(f"{f} cut to {cut} bytes"
                                       f"{'' if sums else ' (no sums)'}", d, True)
    assert not bad, "\n".join(bad)


def test_bad_magic(source):
    bad = []
    for f in source.files:
        m = magic_len(f)
        for off in range(0, m, 4):
            for sums in (True, False):
                d = source.copy(sums)
                damage_file(d / f, flip(off + 1))
                bad += source.problems(f"{f}: magic word at {off} changed"
                                       f"{'' if sums else ' (no sums)'}", d, True)
    assert not bad, "\n".join(bad)


def test_missing_file(source):
    bad = []
    for f in source.files:
        if f == SUMS:
            continue
        d = source.copy()
        (d / f).unlink()
        bad += source.problems(f"{f} removed", d, True)
    assert not bad, "\n".join(bad)


def test_flipped_bytes(source):
    """Flipped bytes in the protobuf images are refused by amber.sums before
    any process exists; without it amber must at least not crash."""
    bad = []
    for f in source.files:
        if f.startswith("pages-") or not f.endswith(".img"):
            continue
        size = (source.imgdir / f).stat().st_size
        m = magic_len(f)
        for off in sorted({m, m + 4, (m + size) // 2, size - 1}):
            for sums in (True, False):
                d = source.copy(sums)
                damage_file(d / f, flip(off))
                bad += source.problems(f"{f}: byte {off} flipped"
                                       f"{'' if sums else ' (no sums)'}", d, sums,
                                       ["checksum"] if sums else None)
    assert not bad, "\n".join(bad)


def test_sums_damaged(source):
    bad = []
    size = (source.imgdir / SUMS).stat().st_size
    for off in (0, 20, size // 2, size - 3):
        d = source.copy()
        damage_file(d / SUMS, flip(off))
        bad += source.problems(f"{SUMS}: byte {off} flipped", d, True)
    assert not bad, "\n".join(bad)


def test_pages_beyond_file(source):
    """Pagemap runs that reach past the end of the pages file (the pages
    file lost its last page, or gained one) are refused by the loader."""
    bad = []
    pages = [f for f in source.files if f.startswith("pages-")]
    assert pages
    for f in pages:
        for delta in (-4096, 4096):
            d = source.copy()
            size = (d / f).stat().st_size
            if delta < 0:
                os.truncate(d / f, max(size + delta, 0))
            else:
                with open(d / f, "ab") as fh:
                    fh.write(b"\0" * delta)
            bad += source.problems(f"{f}: {delta:+d} bytes", d, True, [f])
    assert not bad, "\n".join(bad)


def test_page_checksum(source):
    """A flipped byte in the page data is caught by its run's checksum
    before the restored code runs: the restore fails and nothing of the
    tree is left."""
    bad = []
    for f in (f for f in source.files if f.startswith("pages-")):
        size = (source.imgdir / f).stat().st_size
        for off in (0, size // 2 + 7, size - 1):
            d = source.copy()
            damage_file(d / f, flip(off))
            bad += source.problems(f"{f}: byte {off} flipped", d, True, ["checksum"])
    assert not bad, "\n".join(bad)


def test_pristine_restores(source):
    """Last: the untouched images restore and the test passes."""
    d = source.copy()
    rc, log, out = source.restore(d)
    assert rc == 0, f"pristine restore failed ({rc}):\n{tail(d / 'restore.log')}"
    assert not SANITIZER_RE.search(out + log), out
    assert not sanitizer_reports(d), sanitizer_reports(d)
    source.run.set_root(source.root)
    stop(source.run)


def test_bad_inet_entry(source):
    """An inet socket of an unknown family or state, or with an address of
    the wrong length, is refused by the loader (no sums: crit re-encodes)."""
    import json
    if source.name != "inet_udp":
        pytest.skip("only the inet_udp images hold inet sockets")
    bad = []
    changes = {"family": ("family", 99), "state": ("state", 12),
               "address": ("src_addr", ["1.2.3.4", "5.6.7.8"])}
    for what, (field, value) in changes.items():
        d = source.copy(False)
        img = json.loads(subprocess.run(["crit", "decode", "-i", str(d / "files.img")],
                                        check=True, capture_output=True).stdout)
        for e in img["entries"]:
            if e.get("isk"):
                e["isk"][field] = value
                break
        subprocess.run(["crit", "encode", "-o", str(d / "files.img")], check=True,
                       input=json.dumps(img).encode(), capture_output=True)
        bad += source.problems(f"files.img: inet socket with bad {what}", d, True)
    assert not bad, "\n".join(bad)
