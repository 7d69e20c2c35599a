"""amber's plugin for stock CRIU (criu-plugin/), with CRIU 4.2 on this host.

The plugin seals a CRIU dump or pre-dump with amber.sums (pages included)
and checks it when CRIU restores, before anything is forked: a flipped
byte in the pages or in a core image, or a missing image, is refused
naming the file, and the dumped program does not come back; the intact
set restores and the program goes on. The PKRAM side (a store that came
back empty or unsealed after kexec, Debian's criu 3.17) is the guest
suite test/vm/tests/criu-plugin.sh.

Mode-independent: runs once, in the main zdtm pass (not the ASAN one:
the plugin is no part of the amber binary).
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_DIR = os.path.join(ROOT, "build", "criu-plugin")
# make zdtm passes CRIU= (scripts/deps.sh criu), as for test_interop.py
CRIU = os.environ.get("CRIU") or "/var/tmp/anchors/criu-4.2/criu/criu"

pytestmark = pytest.mark.skipif("/asan/" in os.environ.get("AMBER", ""),
                                reason="the plugin is no part of the amber binary: main pass only")


def need_tools():
    if not os.access(CRIU, os.X_OK):
        pytest.skip(f"CRIU 4.2 not built at {CRIU} (../shared/anchors/build-criu.sh; "
                    "scripts/deps.sh criu builds it)")
    if not os.path.exists(os.path.join(PLUGIN_DIR, "amber_criu.so")):
        pytest.fail("build/criu-plugin/amber_criu.so missing: make plugin")


class Counter:
    """A shell loop writing a growing counter to a file, alone in its session."""

    def __init__(self, tmp):
        self.out = tmp / "count"
        p = subprocess.Popen(
            ["setsid", "sh", "-c",
             f'i=0; while :; do i=$((i+1)); echo $i > {self.out}; sleep 0.05; done'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.popen = p
        self.pid = p.pid
        for _ in range(200):
            if self.value() > 2:
                break
            time.sleep(0.05)

    def value(self):
        try:
            return int(self.out.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def alive(self):
        """Running (a zombie of the dumped original does not count)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def kill(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def criu(*args, log):
    return subprocess.run([CRIU, *args, "--libdir", PLUGIN_DIR, "-v4", "-o", str(log)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def dump(tmp, c, name="img", extra=()):
    d = tmp / name
    d.mkdir()
    r = criu("dump", "-t", str(c.pid), "-D", str(d), *extra, log=tmp / f"{name}-dump.log")
    log = (tmp / f"{name}-dump.log").read_text()
    assert r.returncode == 0, log[-2000:]
    assert 'Plugin "amber"' in log and "image set sealed in amber.sums" in log
    reap_zombies([int(n[5:-4]) for n in os.listdir(d) if re.match(r"core-\d+\.img$", n)])
    return d


def reap_zombies(pids):
    """The dumped tree's pids must be free for the restore: the runner is a
    child subreaper, so the killed shell and its orphaned sleep end as its
    zombies."""
    for _ in range(200):
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not any(os.path.exists(f"/proc/{pid}") for pid in pids):
            return
        time.sleep(0.01)
    raise AssertionError(f"dumped pids {pids} still exist")


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))


def restore_refused(tmp, d, why, c):
    log = tmp / "refused.log"
    r = criu("restore", "-D", str(d), "-d", log=log)
    text = log.read_text()
    assert r.returncode != 0, "a damaged set was restored"
    assert why in text, text[-2000:]
    assert "restore refused, nothing created" in text
    assert not c.alive(), f"pid {c.pid} exists after a refused restore"


def test_seal_lists_every_image(tmp_path):
    need_tools()
    c = Counter(tmp_path)
    try:
        d = dump(tmp_path, c)
        sums = (d / "amber.sums").read_text().splitlines()
        listed = {line.split()[-1] for line in sums[1:-1]}
        on_disk = {f for f in os.listdir(d) if f.endswith(".img")}
        assert listed == on_disk, (listed ^ on_disk)
        assert any(n.startswith("pages-") for n in listed)
        assert sums[0] == "amber-sums 2" and sums[-1].startswith("end ")
        assert (os.stat(d / "amber.sums").st_mode & 0o777) == 0o600
    finally:
        c.kill()


@pytest.mark.parametrize("damage", ["pages", "core", "missing", "sums"])
def test_damaged_set_refused_then_intact_restores(tmp_path, damage):
    need_tools()
    c = Counter(tmp_path)
    try:
        d = dump(tmp_path, c)
        assert not c.alive()
        before = c.value()
        good = tmp_path / "good"
        shutil.copytree(d, good)
        if damage == "pages":
            pages = sorted(f for f in os.listdir(d) if f.startswith("pages-"))[0]
            flip(d / pages, os.path.getsize(d / pages) // 2)
            restore_refused(tmp_path, d, f"image {pages} fails its checksum", c)
        elif damage == "core":
            core = f"core-{c.pid}.img"
            flip(d / core, os.path.getsize(d / core) - 3)
            restore_refused(tmp_path, d, f"image {core}", c)
        elif damage == "missing":
            os.unlink(d / f"mm-{c.pid}.img")
            restore_refused(tmp_path, d, f"image mm-{c.pid}.img is missing", c)
        else:
            with open(d / "amber.sums", "r+") as f:
                text = f.read()
                f.seek(0)
                f.write(text.replace("inventory.img", "inventorz.img"))
            restore_refused(tmp_path, d, "amber.sums is corrupt", c)
        assert c.value() == before, "the refused restore ran the program"
        log = tmp_path / "good.log"
        r = criu("restore", "-D", str(good), "-d", log=log)
        text = log.read_text()
        assert r.returncode == 0, text[-2000:]
        assert "image set matches amber.sums" in text
        for _ in range(100):
            if c.value() > before + 2:
                break
            time.sleep(0.05)
        assert c.alive() and c.value() > before + 2, "the restored program does not go on"
    finally:
        c.kill()


def test_pre_dump_chain_sealed(tmp_path):
    """criu pre-dump then dump --prev-images-dir: both sealed, the final restores."""
    need_tools()
    r = subprocess.run([CRIU, "check", "--feature", "mem_dirty_track"], capture_output=True,
                       text=True)
    if r.returncode:
        pytest.skip("CRIU's pre-dump needs soft-dirty, which this kernel lacks "
                    f"({(r.stdout + r.stderr).strip()[-200:]})")
    c = Counter(tmp_path)
    try:
        pre = tmp_path / "pre"
        pre.mkdir()
        r = criu("pre-dump", "-t", str(c.pid), "-D", str(pre), log=tmp_path / "pre.log")
        assert r.returncode == 0, (tmp_path / "pre.log").read_text()[-2000:]
        d = dump(tmp_path, c, extra=("--prev-images-dir", "../pre", "--track-mem"))
        # CRIU calls no plugin hook after a pre-dump: the dump seals its parents
        assert " pages-1.img" in (pre / "amber.sums").read_text()
        before = c.value()
        log = tmp_path / "final.log"
        r = criu("restore", "-D", str(d), "-d", log=log)
        assert r.returncode == 0, log.read_text()[-2000:]
        for _ in range(100):
            if c.value() > before + 2:
                break
            time.sleep(0.05)
        assert c.value() > before + 2
    finally:
        c.kill()
