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

import fcntl
import os
import shutil
import signal
import stat
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

from test_zdtm import start, stop
from zdtm_runner import (MODES, SANITIZER_RE, Run, amber_path, read_text,
                         reap_all, sanitizer_env, sanitizer_reports, tail)

SOURCES = ["anon_shared", "pipe_inflight", "memfd", "inet_udp", "ipc_sysv", "posix_mqueue"]
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
        self.restore_args = []  # options the images need (--file-locks)

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
                                *self.restore_args, "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=sanitizer_env(imgdir), timeout=TIMEOUT)
            rc, out = r.returncode, r.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, out = "timeout", ""
        self.new_children = children_of_us() - before
        return rc, read_text(log), out

    def restored_here(self, pid):
        """A task of a restore's tree: a child of ours or of another dumped
        pid, not an unrelated process that got a dumped pid again (pids wrap
        at 32768 on a busy machine)."""
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        return ppid == os.getpid() or ppid in self.pids

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
            running = [p for p in self.pids if alive(p) and self.restored_here(p)]
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


def flip(offset, mask=0x5a):
    def fn(data):
        data[offset] ^= mask
        return data
    return fn


def magic_len(name):
    if name.startswith("pages-") or not name.endswith(".img"):
        return 0
    return 4 if name == "inventory.img" else 8


@pytest.fixture(scope="module", params=SOURCES)
def source(request):
    """Start the test, dump it into a directory amber creates, check modes."""
    yield from dumped_source(request, request.param)


@pytest.fixture(scope="module")
def unix_source(request):
    yield from dumped_source(request, "unix_listen")


def dumped_source(request, name, dump_args=(), prefix=(), tag="", owner=None):
    binary = Path(__file__).resolve().parent / "static" / name
    if not amber_path().is_file():
        pytest.fail(f"no amber binary at {amber_path()}", pytrace=False)
    run = Run(f"bad-images-{name}{tag}", MODES["dump"], compare_state=False)
    start(run, binary, prefix, owner=owner)
    pids = run.walk()
    imgdir = run.dir / "img"
    r = subprocess.run([str(amber_path()), "dump", "-t", str(run.pid), "-D", str(imgdir),
                        *dump_args, "-v4", "-o", str(run.dir / "dump.log")], stdin=subprocess.DEVNULL,
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
    src.restore_args = [a for a in dump_args if a in ("--file-locks", "--tcp-established")]
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
        # (an image of its header only, an empty ipcns-msg, has no entry to flip)
        for off in sorted(o for o in {m, m + 4, (m + size) // 2, size - 1} if o < size):
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


def test_sums_version(source):
    """A dump writes amber.sums version 2, exactly as docs/images.md
    computes it (rewrite_sums() gives the same file byte for byte)."""
    d = source.copy()
    written = (d / SUMS).read_text()
    assert written.startswith("amber-sums 2\n"), written.splitlines()[0]
    rewrite_sums(d)
    assert (d / SUMS).read_text() == written
    shutil.rmtree(d)


def test_sums_v1_checked(source):
    """An older dump's amber.sums (version 1, FNV-1a 64) is still checked:
    a flipped byte in an image, or in the list, is refused."""
    bad = []
    img = sorted(f for f in source.files if f.startswith("core-"))[0]
    d = source.copy()
    rewrite_sums(d, version=1)
    damage_file(d / img, flip((d / img).stat().st_size // 2))
    bad += source.problems(f"version 1: {img} flipped", d, True, ["checksum"])
    d = source.copy()
    rewrite_sums(d, version=1)
    damage_file(d / SUMS, flip(20))
    bad += source.problems(f"version 1: {SUMS} flipped", d, True, [SUMS])
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
        # bit 7 of byte 31 of a page: the bit amber_csum's version 1 missed
        for off in (31, size - 4096 + 31):
            d = source.copy()
            damage_file(d / f, flip(off, 0x80))
            bad += source.problems(f"{f}: top bit of byte {off} flipped", d, True,
                                   ["checksum"])
    assert not bad, "\n".join(bad)


def page_sum(data, seed, version):
    """A pagemap entry's sum of its pages (docs/images.md): version 1 is
    field amber_csum (older builds), version 2 field amber_csum2."""
    w = struct.unpack(f"<{len(data) // 8}Q", data)  # whole pages: no tail
    a, b, c, d = seed, 0, 0, 0
    for i in range(0, len(w), 4):
        a = (a + w[i]) & M64
        b = (b + (a ^ w[i + 1])) & M64
        c = (c + w[i + 2]) & M64
        d = (d + (c ^ w[i + 3])) & M64
    if version == 1:
        return a ^ (b * 31 & M64) ^ (c * 0x100000001b3 & M64) ^ (d << 1 & M64) ^ len(data)
    h = mix64(a)
    for lane in (b, c, d, len(data)):
        h = mix64(h ^ lane)
    return h


def rewrite_page_sums(imgdir, to_version):
    """Checks every amber_csum2 of imgdir's pagemaps against page_sum();
    with to_version 1, puts the version 1 sum in field amber_csum in its
    place, as an older build wrote it. Returns the entries checked."""
    pb = amber_pb("pagemap_pb2")
    checked = 0
    for p in sorted(imgdir.glob("pagemap-*.img")):
        raw = p.read_bytes()
        out, pos, head, off = [raw[:8]], 8, None, 0
        while pos < len(raw):
            n = int.from_bytes(raw[pos:pos + 4], "little")
            body = raw[pos + 4:pos + 4 + n]
            pos += 4 + n
            if head is None:
                head = pb.pagemap_head()
                head.ParseFromString(body)
                pages = (imgdir / f"pages-{head.pages_id}.img").read_bytes()
                out.append(n.to_bytes(4, "little") + body)
                continue
            e = pb.pagemap_entry()
            e.ParseFromString(body)
            if e.flags & 4:  # PE_PRESENT
                data = pages[off:off + e.nr_pages * 4096]
                off += e.nr_pages * 4096
                assert e.HasField("amber_csum2") and not e.HasField("amber_csum"), \
                    f"{p.name} {e.vaddr:#x}: not version 2 only"
                assert e.amber_csum2 == page_sum(data, e.vaddr, 2), \
                    f"{p.name} {e.vaddr:#x}: amber_csum2 is not as documented"
                checked += 1
                if to_version == 1:
                    e.ClearField("amber_csum2")
                    e.amber_csum = page_sum(data, e.vaddr, 1)
                    body = e.SerializeToString()
            out.append(len(body).to_bytes(4, "little") + body)
        p.write_bytes(b"".join(out))
    rewrite_sums(imgdir)
    return checked


def test_page_sums_older_build(source):
    """A dump writes each run's sum as amber_csum2, as docs/images.md
    computes it. An older build's dump (the version 1 sum in field
    amber_csum) still restores, and a flipped byte in it is refused."""
    d = source.copy()
    if not rewrite_page_sums(d, 2):
        shutil.rmtree(d)
        pytest.skip(f"{source.name}: no page data")
    shutil.rmtree(d)
    d = source.copy()
    rewrite_page_sums(d, 1)
    rc, log, _ = source.restore(d)
    source.cleanup()
    bad = [] if rc == 0 else [f"older build's page sums: restore failed ({rc}):\n{log[-2000:]}"]
    pages = sorted(f for f in source.files if f.startswith("pages-"))
    d = source.copy()
    rewrite_page_sums(d, 1)
    damage_file(d / pages[0], flip(100))
    bad += source.problems(f"older build's page sums, {pages[0]} flipped", d, True,
                           ["checksum"])
    assert not bad, "\n".join(bad)


AMBER_PB_DIR = None


def amber_pb(module):
    """A module of amber's own .proto files compiled for Python (pycriu's
    lack amber's fields). pycriu's modules register the same file names
    in protobuf's default pool, so amber's are built into a pool of their
    own (amber_pool.POOL): both can be loaded in one pytest process."""
    import atexit
    import importlib
    import shutil
    import sys
    import tempfile
    global AMBER_PB_DIR
    if AMBER_PB_DIR is None:
        out = Path(tempfile.mkdtemp(prefix="amber-pyproto."))
        atexit.register(shutil.rmtree, out, True)
        proto = Path(__file__).resolve().parents[2] / "proto"
        subprocess.run(["protoc", f"--proto_path={proto}", f"--python_out={out}",
                        *map(str, proto.glob("*.proto"))], check=True)
        (out / "amber_pool.py").write_text(
            "from google.protobuf import descriptor_pool\n"
            "POOL = descriptor_pool.DescriptorPool()\n")
        # pycriu puts its own X_pb2 modules on sys.path: ours are amber_X_pb2.
        for gen in out.glob("*_pb2.py"):
            text = gen.read_text().replace("_descriptor_pool.Default()",
                                           "__import__('amber_pool').POOL")
            text = re.sub(r"^import (\w+_pb2) as", r"import amber_\1 as", text,
                          flags=re.M)
            (out / f"amber_{gen.name}").write_text(text)
            gen.unlink()
        sys.path.insert(0, str(out))
        AMBER_PB_DIR = out
    return importlib.import_module("amber_" + module)


def rewrite(path, fn):
    """Decodes a protobuf image with pycriu, lets fn change its entries,
    encodes it again."""
    import pycriu
    with open(path, "rb") as f:
        img = pycriu.images.load(f)
    fn(img["entries"])
    with open(path, "wb") as f:
        pycriu.images.dump(img, f)


def test_ids_disagree(source):
    """ids-PID.img (where CRIU 4.x reads a task's ids) naming other objects
    than the copy in core-PID.img is refused by the loader (no sums)."""
    ids = [f for f in source.files if f.startswith("ids-")]
    assert ids, f"amber wrote no ids-PID.img: {source.files}"
    bad = []

    def other_files(entries):
        entries[0]["files_id"] += 1000

    for f in ids:
        d = source.copy(sums=False)
        rewrite(d / f, other_files)
        bad += source.problems(f"{f}: files_id changed (no sums)", d, True,
                               ["name different objects"])
    assert not bad, "\n".join(bad)


def first_usk(entries, pred=lambda u: True):
    return next(e["usk"] for e in entries if "usk" in e and pred(e["usk"]))


def set_usk(field, value, pred=lambda u: True):
    def fn(entries):
        first_usk(entries, pred)[field] = value
    return fn


def set_queue(field, value):
    def fn(entries):
        entries[0][field] = value
    return fn


UNIX_CASES = [
    ("sk-queues.img", "queue for a missing socket", set_queue("id_for", 99999), "sk-queues.img"),
    ("sk-queues.img", "oversized queue entry", set_queue("length", 1 << 31), "sk-queues.img"),
    ("files.img", "unknown socket type", set_usk("type", 9), "unknown type"),
    ("files.img", "unknown socket state", set_usk("state", 5), "unknown state"),
    ("files.img", "name too long", set_usk("name", "x" * 200), "longer than sun_path"),
    ("files.img", "listener without a name",
     set_usk("name", "", lambda u: u["state"] == 10), "listens, but"),
    ("files.img", "peer missing", set_usk("peer", 12345, lambda u: u["peer"]), "peer"),
    ("sk-queues.img", "a file in flight missing",
     set_queue("scm", [{"type": 1, "rights": [99999]}]), "missing from files.img"),
    ("sk-queues.img", "unknown control message",
     set_queue("scm", [{"type": 7, "rights": [1]}]), "control data"),
]


@pytest.mark.parametrize("img,what,fn,want", UNIX_CASES, ids=[c[1] for c in UNIX_CASES])
def test_unix_semantic(unix_source, img, what, fn, want):
    """Well-framed unix socket images that make no sense are refused by the
    loader (amber.sums removed, so its checksum does not refuse them first)
    before any task is created."""
    d = unix_source.copy(sums=False)
    rewrite(d / img, fn)
    bad = unix_source.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def ipc_source(request):
    yield from dumped_source(request, "ipc_sysv")


VMA_AREA_SYSVIPC = 1 << 10


def set_sysv_vma(field, value):
    def fn(entries):
        vma = next(v for v in entries[0]["vmas"] if v["status"] & VMA_AREA_SYSVIPC)
        vma[field] = value
    return fn


def more_messages(entries):
    entries[0]["qnum"] += 1


IPC_CASES = [
    ("mm", "attach of a segment not saved", set_sysv_vma("shmid", 424242),
     "is not in the tree's ipcns-shm image"),
    ("mm", "attach beyond its segment", set_sysv_vma("pgoff", 1 << 20), "is beyond"),
    ("ipcns-msg", "a queue with a message missing", more_messages,
     "its messages are short or corrupt"),
]


@pytest.mark.parametrize("img,what,fn,want", IPC_CASES, ids=[c[1] for c in IPC_CASES])
def test_ipc_semantic(ipc_source, img, what, fn, want):
    """Well-framed SysV images that make no sense are refused by the loader
    (no amber.sums) before any task or namespace is created."""
    d = ipc_source.copy(sums=False)
    name = next(f for f in ipc_source.files if f.startswith(img + "-"))
    rewrite(d / name, fn)
    bad = ipc_source.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


def test_ipc_pristine_restores(ipc_source):
    pristine_restores(ipc_source)


def pristine_restores(src):
    """The untouched images restore, cleanly, and the test passes."""
    d = src.copy()
    rc, log, out = src.restore(d)
    assert rc == 0, f"pristine restore failed ({rc}):\n{tail(d / 'restore.log')}"
    assert not SANITIZER_RE.search(out + log), out
    assert not sanitizer_reports(d), sanitizer_reports(d)
    src.run.set_root(src.root)
    stop(src.run)


def test_unix_pristine_restores(unix_source):
    pristine_restores(unix_source)


def test_pristine_restores(source):
    """Last: the untouched images restore and the test passes."""
    pristine_restores(source)


# ------------------------------------------------- values out of range
#
# Well-formed images (amber.sums rewritten to match) whose task state has
# a value the kernel would refuse or that cannot be: the loader must
# refuse them before any task is created, naming the reason.

FNV_OFFSET, FNV_PRIME = 0xcbf29ce484222325, 0x100000001b3
M64 = 0xffffffffffffffff


def fnv1a(h, data):
    """amber.sums version 1's checksum (older dumps)."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & M64
    return h


def mix64(x):
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def img_sum(data):
    """amber.sums version 2's checksum, as docs/images.md gives it."""
    n = len(data)
    data = data + bytes(-n % 8)
    w = struct.unpack(f"<{len(data) // 8}Q", data)
    a, b, c, d = 0x616d6265722d7332, 0, 0, 0
    whole = len(w) // 4 * 4
    for i in range(0, whole, 4):
        a = (a + w[i]) & M64
        b = (b + (a ^ w[i + 1])) & M64
        c = (c + w[i + 2]) & M64
        d = (d + (c ^ w[i + 3])) & M64
    for x in w[whole:]:
        a = (a + x * 0x9e3779b97f4a7c15) & M64
    h = mix64(a)
    for lane in (b, c, d, n):
        h = mix64(h ^ lane)
    return h


def rewrite_sums(imgdir, version=2):
    """amber.sums for the images of imgdir as they are now, in the given version."""
    def csum(data):
        return fnv1a(FNV_OFFSET, data) if version == 1 else img_sum(data)

    lines = [f"amber-sums {version}\n"]
    for p in sorted(imgdir.iterdir()):
        if p.name.endswith(".img") and not p.name.startswith("pages-"):
            data = p.read_bytes()
            lines.append(f"{csum(data):016x} {len(data)} {p.name}\n")
    total = csum("".join(lines).encode())
    (imgdir / SUMS).write_text("".join(lines) + f"end {total:016x}\n")


@pytest.fixture(scope="module")
def core_pb2():
    """amber's core.proto compiled for Python."""
    return amber_pb("core_pb2")


@pytest.fixture(scope="module")
def timers_source(request):
    """posix_timers dumped: a leader with POSIX timers and a second thread."""
    yield from dumped_source(request, "posix_timers")


def edit_core(core_pb2, path, fn):
    """Applies fn to the core_entry of core-N.img (magic: 8 bytes, one entry)."""
    data = path.read_bytes()
    n = int.from_bytes(data[8:12], "little")
    core = core_pb2.core_entry()
    core.ParseFromString(data[12:12 + n])
    fn(core)
    body = core.SerializeToString()
    path.write_bytes(data[:8] + len(body).to_bytes(4, "little") + body + data[12 + n:])


def set_timer(i, **kw):
    def fn(core):
        for k, v in kw.items():
            setattr(core.tc.timers.posix[i], k, v)
    return fn


def set_thread(**kw):
    def fn(core):
        for k, v in kw.items():
            if k == "amber_cpu_affinity":
                core.thread_core.amber_cpu_affinity = v
            else:
                setattr(core.thread_core, k, v)
    return fn


def set_task(**kw):
    def fn(core):
        for k, v in kw.items():
            setattr(core.tc, k, v)
    return fn


def dup_timer_id(core):
    core.tc.timers.posix[1].it_id = core.tc.timers.posix[0].it_id


BAD_VALUES = {
    "timer id twice": (dup_timer_id, "twice"),
    "timer id negative": (set_timer(0, it_id=0x80000000), "out of range"),
    "timer clock MONOTONIC_RAW": (set_timer(0, clock_id=4), "bad clock"),
    "timer clock 12": (set_timer(0, clock_id=12), "bad clock"),
    "timer signal 65": (set_timer(0, si_signo=65), "bad signal"),
    "timer notify 3": (set_timer(0, it_sigev_notify=3), "bad sigev_notify"),
    "timer thread elsewhere": (set_timer(0, it_sigev_notify=4, notify_thread_id=1),
                               "not a thread"),
    "timer nsec 1e9": (set_timer(0, vnsec=1000000000), "bad time"),
    "sched policy 6": (set_thread(sched_policy=6), "scheduling policy"),
    "sched policy 1 prio 0": (set_thread(sched_policy=1, sched_prio=0), "RT priority"),
    "sched prio 5 for OTHER": (set_thread(sched_policy=0, sched_prio=5), "RT priority"),
    "nice 20": (set_thread(sched_nice=20), "bad nice"),
    "affinity empty": (set_thread(amber_cpu_affinity=b"\0" * 8), "empty CPU affinity"),
    "affinity 3 bytes": (set_thread(amber_cpu_affinity=b"\1\0\0"), "CPU affinity of"),
    "seccomp filter missing": (set_thread(seccomp_mode=2, seccomp_filter=0), "seccomp.img has"),
    "task state 7": (set_task(task_state=7), "bad task state"),
    "stopped by SIGKILL": (set_task(task_state=3, stop_signo=9), "not a stop signal"),
    "oom_score_adj 1001": (set_task(oom_score_adj=1001), "oom_score_adj"),
    "membarrier command 1": (set_task(membarrier_registration_mask=1), "unknown commands"),
}


def test_bad_values(timers_source, core_pb2):
    src = timers_source
    leader = src.root
    cores = sorted(f for f in src.files if f.startswith("core-"))
    assert len(cores) == 2, cores
    bad = []
    for what, (fn, want) in sorted(BAD_VALUES.items()):
        d = src.copy()
        edit_core(core_pb2, d / f"core-{leader}.img", fn)
        rewrite_sums(d)
        bad += src.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


def test_values_pristine_restores(timers_source, core_pb2):
    """The same edit machinery with no change restores and passes, its
    amber.sums in version 1 as an older amber wrote it (still accepted)."""
    d = timers_source.copy()
    edit_core(core_pb2, d / f"core-{timers_source.root}.img", lambda core: None)
    rewrite_sums(d, version=1)
    rc, log, out = timers_source.restore(d)
    assert rc == 0, f"restore failed ({rc}):\n{tail(d / 'restore.log')}"
    timers_source.run.set_root(timers_source.root)
    stop(timers_source.run)
# ---- values out of range in files.img (eventfd, timerfd, epoll) ----------
#
# The epoll test's images hold an eventfd, a timerfd and epolls. Each case
# re-encodes one entry of files.img with a value no dump would write, and
# removes amber.sums (which would refuse any change first): the loader's own
# checks must refuse it, before any task exists.

FILES_MAGIC_LEN = 8


def edit_entries(path, entry_cls, fn):
    """Calls fn(list of entry_cls) on the entries of image path (magic: 8
    bytes, then length-prefixed entries without payloads), writes them back."""
    import struct
    data = path.read_bytes()
    entries, off = [], FILES_MAGIC_LEN
    while off < len(data):
        n = struct.unpack_from("<I", data, off)[0]
        e = entry_cls()
        e.ParseFromString(data[off + 4:off + 4 + n])
        entries.append(e)
        off += 4 + n
    fn(entries)
    out = bytearray(data[:FILES_MAGIC_LEN])
    for e in entries:
        blob = e.SerializeToString()
        out += struct.pack("<I", len(blob)) + blob
    path.write_bytes(bytes(out))


def edit_files_img(path, fdinfo_pb2, fn):
    """Calls fn(file_entry) on every entry of files.img and writes it back."""
    edit_entries(path, fdinfo_pb2.file_entry, lambda entries: [fn(e) for e in entries])


def dumped_with_pb(request, name):
    """dumped_source(), with amber's fdinfo module to edit files.img."""
    for src in dumped_source(request, name):
        src.pb = amber_pb("fdinfo_pb2")
        yield src


def files_img_refused(src, case):
    """files.img edited by case's fn (no sums) must be refused with want."""
    what, fn, want = case
    d = src.copy(sums=False)
    edit_files_img(d / "files.img", src.pb, fn)
    bad = src.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def objects(request):
    yield from dumped_with_pb(request, "epoll")


@pytest.fixture(scope="module")
def watches(request):
    yield from dumped_with_pb(request, "inotify")


def set_timer(**kw):
    def fn(fe):
        if fe.HasField("tfd"):
            for k, v in kw.items():
                setattr(fe.tfd, k, v)
    return fn


def set_first_target(fid):
    def fn(fe):
        if fe.HasField("epfd") and len(fe.epfd.tfd):
            fe.epfd.tfd[0].amber_file_id = fid
    return fn


def criu_made(fe):
    """As CRIU writes it: no amber_file_id, targets by fd number only."""
    if fe.HasField("epfd"):
        for t in fe.epfd.tfd:
            t.ClearField("amber_file_id")


def set_counter(v):
    def fn(fe):
        if fe.HasField("efd"):
            fe.efd.counter = v
    return fn


OUT_OF_RANGE = [
    ("timer value 2^63 s", set_timer(vsec=1 << 63), "time out of range"),
    ("timer value 1e9 ns", set_timer(vnsec=10**9), "time out of range"),
    ("timer interval 2^62 s", set_timer(isec=1 << 62), "time out of range"),
    ("unknown clock 99", set_timer(clockid=99), "unknown clock"),
    ("epoll target file 9999", set_first_target(9999), "not in files.img"),
    ("eventfd counter 2^64-1", set_counter((1 << 64) - 1), "out of range"),
    # The closed target (fd 40) has no fd by its number in any task: CRIU's
    # way of finding targets cannot restore it, and amber must say so.
    ("epoll targets by fd number only", criu_made, "no task holding it has target fd 40"),
]


@pytest.mark.parametrize("case", OUT_OF_RANGE, ids=[c[0] for c in OUT_OF_RANGE])
def test_objects_out_of_range(objects, case):
    files_img_refused(objects, case)


def test_objects_pristine_restores(objects):
    pristine_restores(objects)


def set_watch(**kw):
    def fn(fe):
        if fe.HasField("ify"):
            for k, v in kw.items():
                if k == "path":
                    fe.ify.wd[0].f_handle.ClearField("path")
                else:
                    setattr(fe.ify.wd[0], k, v)
    return fn


BAD_WATCHES = [
    ("inotify wd 0", set_watch(wd=0), "malformed"),
    ("inotify wd 2^21", set_watch(wd=1 << 21), "malformed"),
    ("inotify watch without a path", set_watch(path=None), "has no path"),
    ("inotify watch on another inode", set_watch(i_ino=1), "another inode"),
]


@pytest.mark.parametrize("case", BAD_WATCHES, ids=[c[0] for c in BAD_WATCHES])
def test_watches_out_of_range(watches, case):
    files_img_refused(watches, case)


def test_watches_pristine_restores(watches):
    pristine_restores(watches)


@pytest.fixture(scope="module")
def inet_source(request):
    yield from dumped_source(request, "inet_udp")


def test_bad_inet_entry(inet_source):
    """An inet socket of an unknown family or state, or with an address of
    the wrong length, is refused by the loader (no sums: crit re-encodes)."""
    import json
    source = inet_source
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


@pytest.fixture(scope="module")
def tcp_source(request):
    yield from dumped_source(request, "socket_tcp", ["--tcp-established"])


def set_stream(field, value):
    def fn(entries):
        entries[0][field] = value
    return fn


def drop_extra(entries):
    entries[0]["extra"]["inq"] = ""  # inq_len bytes promised, none there


TCP_CASES = [
    ("queue longer than the file", drop_extra, ["truncated", "tcp-stream"]),
    ("receive queue of 1 GiB", set_stream("inq_len", 1 << 30), ["tcp-stream"]),
    ("unsent part beyond the send queue", set_stream("unsq_len", 1 << 20), ["tcp-stream"]),
    ("window scale 15", set_stream("snd_wscale", 15), ["tcp-stream"]),
    ("MSS 0", set_stream("mss_clamp", 0), ["tcp-stream"]),
    ("unknown option bits", set_stream("opt_mask", 0x80), ["tcp-stream"]),
]


@pytest.mark.parametrize("what,fn,want", TCP_CASES, ids=[c[0] for c in TCP_CASES])
def test_tcp_stream_semantic(tcp_source, what, fn, want):
    """A TCP connection's stream image that makes no sense is refused at
    load, before any task or socket exists (no sums: crit re-encodes)."""
    d = tcp_source.copy(sums=False)
    victim = sorted(d.glob("tcp-stream-*.img"))[0]
    rewrite(victim, fn)
    bad = tcp_source.problems(f"{victim.name}: {what}", d, True, want)
    assert not bad, "\n".join(bad)


def test_tcp_stream_checked_as_loaded(tcp_source):
    """tcp-stream images are checked against amber.sums as they are loaded
    (read once, not twice): a flipped byte anywhere, a truncated or a
    missing one is still refused before any task exists."""
    bad = []
    victim = sorted(tcp_source.imgdir.glob("tcp-stream-*.img"))[0].name
    size = (tcp_source.imgdir / victim).stat().st_size
    m = magic_len(victim)
    for off in sorted({m, m + 4, (m + size) // 2, size - 1}):
        d = tcp_source.copy()
        damage_file(d / victim, flip(off))
        bad += tcp_source.problems(f"{victim}: byte {off} flipped", d, True,
                                   ["checksum", "malformed"])
    d = tcp_source.copy()
    damage_file(d / victim, lambda data: data[:-1])
    bad += tcp_source.problems(f"{victim}: last byte cut", d, True,
                               ["truncated", "checksum", "malformed"])
    d = tcp_source.copy()
    damage_file(d / victim, lambda data: data + bytes(1 << 20))
    bad += tcp_source.problems(f"{victim}: 1 MiB appended", d, True, ["truncated or corrupt"])
    d = tcp_source.copy()
    (d / victim).unlink()
    bad += tcp_source.problems(f"{victim} removed", d, True, ["tcp-stream"])
    assert not bad, "\n".join(bad)


def test_tcp_needs_option(tcp_source):
    """Images holding connections are refused without --tcp-established
    (or --tcp-close), naming the option."""
    d = tcp_source.copy()
    args, tcp_source.restore_args = tcp_source.restore_args, []
    try:
        bad = tcp_source.problems("no --tcp-established", d, True, ["--tcp-established"])
    finally:
        tcp_source.restore_args = args
    assert not bad, "\n".join(bad)


def test_tcp_close(tcp_source):
    """--tcp-close: the tree comes back, its connections as closed sockets
    (no established connection of its own); the listeners listen again."""
    d = tcp_source.copy()
    args, tcp_source.restore_args = tcp_source.restore_args, ["--tcp-close"]
    try:
        rc, log, out = tcp_source.restore(d)
        assert rc == 0, f"restore with --tcp-close failed ({rc}):\n{tail(d / 'restore.log')}"
        ss = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True).stdout
        mine = [l for l in ss.splitlines() if f"pid={tcp_source.root}," in l]
        assert mine and all(l.split()[0] == "LISTEN" for l in mine), ss
        assert len(mine) == 3, mine
        socks = [p for p in Path(f"/proc/{tcp_source.root}/fd").iterdir()
                 if os.readlink(p).startswith("socket:")]
        assert len(socks) == 9, socks  # 3 listeners, 6 closed ends
    finally:
        tcp_source.restore_args = args
        tcp_source.cleanup()


def test_tcp_pristine_restores(tcp_source):
    """Last: the untouched images restore and the test passes."""
    pristine_restores(tcp_source)


@pytest.fixture(scope="module")
def pty_source(request):
    yield from dumped_source(request, "pty_pair")


PTY_CASES = [
    ("pty index 2^20", "tty-info.img",
     lambda es: es[0]["pty"].update(index=1 << 20), "malformed"),
    ("termios with 40 control chars", "tty-info.img",
     lambda es: es[0]["termios"].update(c_cc=[0] * 40), "malformed"),
    ("tty info repeated", "tty-info.img", lambda es: es.append(dict(es[0])), "repeated"),
    ("queued data for no pty", "tty-data.img",
     lambda es: es[0].update(tty_id=99999), "tty-data.img"),
]


@pytest.mark.parametrize("case", PTY_CASES, ids=[c[0] for c in PTY_CASES])
def test_pty_semantic(pty_source, case):
    """Well-framed tty images that make no sense are refused by the loader
    before any task is created."""
    what, img, fn, want = case
    d = pty_source.copy(sums=False)
    rewrite(d / img, fn)
    bad = pty_source.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


def test_pty_index_taken(pty_source):
    """A pty whose /dev/pts/N is taken on this host is refused before any
    task is created (the tasks know the name)."""
    import json
    info = json.loads(subprocess.run(["crit", "decode", "-i",
                                      str(pty_source.imgdir / "tty-info.img")],
                                     check=True, capture_output=True).stdout)
    top = max(e["pty"]["index"] for e in info["entries"] if e.get("pty"))
    held = []
    try:
        while True:
            fd = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
            held.append(fd)
            if len(held) > top + 64:
                break
            n = struct.unpack("I", fcntl.ioctl(fd, 0x80045430, b"\0" * 4))[0]  # TIOCGPTN
            if n >= top:
                break
        bad = pty_source.problems("pty index taken", pty_source.copy(), True, ["is taken"])
    finally:
        for fd in held:
            os.close(fd)
    assert not bad, "\n".join(bad)


def test_pty_pristine_restores(pty_source):
    pristine_restores(pty_source)


@pytest.fixture(scope="module")
def vt_source(request):
    """tty_vt dumped: /dev/tty0 and /dev/tty1 held, tty1 a session's terminal
    (skipped with the test's reason where no VT can be opened)."""
    yield from dumped_source(request, "tty_vt")


def set_tty_info(**fields):
    def fn(entries):
        entries[0].update(fields)
    return fn


def set_dev_path(old, new):
    def fn(entries):
        for e in entries:
            if e.get("reg", {}).get("name") == old:
                e["reg"]["name"] = new
    return fn


def drop_regf_ids(entries):
    for e in entries:
        if "tty" in e:
            e["tty"].pop("regf_id", None)


VT_CASES = [
    ("VT minor 64", "tty-info.img", set_tty_info(rdev=(4 << 8) | 64),
     "not a virtual terminal"),
    ("VT major 5", "tty-info.img", set_tty_info(rdev=(5 << 8) | 3), "not a virtual terminal"),
    ("console naming a VT", "tty-info.img", set_tty_info(type="CONSOLE"), "not the console"),
    ("VT with pty data", "tty-info.img", set_tty_info(pty={"index": 1}), "not a virtual"),
    ("session leader not in the images", "tty-info.img", set_tty_info(sid=99999),
     "not in the images"),
    ("device missing", "files.img", set_dev_path("/dev/tty0", "/dev/amber-no-such-vt"),
     "missing here"),
    ("path of another device", "files.img", set_dev_path("/dev/tty0", "/dev/null"),
     "another file here"),
    ("no path entry", "files.img", drop_regf_ids, "no path entry"),
]


@pytest.mark.parametrize("case", VT_CASES, ids=[c[0] for c in VT_CASES])
def test_tty_dev_semantic(vt_source, case):
    """A console or VT entry naming a device that is not one, a device
    missing here, or a session whose leader is not in the images is
    refused by the loader before any task is created."""
    what, img, fn, want = case
    d = vt_source.copy(sums=False)
    rewrite(d / img, fn)
    bad = vt_source.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


def test_tty_dev_pristine_restores(vt_source):
    pristine_restores(vt_source)


def test_mount_outside_root(tmp_path):
    """A mount image naming a mountpoint outside the container's root (a
    ".." component) is refused when the images are loaded: no task is
    created and nothing is mounted or made, inside the root or out."""
    import test_runc
    test_runc.need_runc()
    c = test_runc.Container(tmp_path, "badmnt")
    try:
        c.run()
        c.checkpoint(tmp_path / "img", tmp_path / "work")
    finally:
        c.delete()
    img = tmp_path / "img"
    (img / SUMS).unlink()
    mnts = next(img.glob("mountpoints-*.img"))

    def escape(entries):
        # The first after the root mount: the order a restore checks them in.
        entries[1]["mountpoint"] = "/proc/../../amber-escape"
    rewrite(mnts, escape)
    root = tmp_path / "root"
    root.mkdir()
    log = tmp_path / "restore.log"
    r = subprocess.run([str(amber_path()), "restore", "-D", str(img), "-d", "--root", str(root),
                        "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    text = read_text(log)
    assert r.returncode != 0, text
    assert "a path outside the container's root" in text and "amber-escape" in text, text
    assert "in the tree's pid namespace" not in text, text  # no task was made
    assert not list(root.iterdir())
    assert not (tmp_path / "amber-escape").exists() and not Path("/amber-escape").exists()


def test_mount_bind_through_symlink_stays_inside(tmp_path):
    """A bind whose source is reached through a symlink in a restored tmpfs
    (here /tmp/esc -> /etc, added to the image as a bind of the /tmp tmpfs's
    /esc on /mnt) is resolved inside the container's root: the host's /etc
    never shows in the container."""
    import test_runc
    test_runc.need_runc()
    c = test_runc.Container(tmp_path, "symmnt", setup="ln -s /etc /tmp/esc; ")
    try:
        c.run()
        c.checkpoint(tmp_path / "img", tmp_path / "work")
    finally:
        c.delete()
    img = tmp_path / "img"
    (img / SUMS).unlink()
    (c.bundle / "rootfs/mnt").mkdir()
    (c.bundle / "rootfs/etc").mkdir()
    (c.bundle / "rootfs/etc/inside").write_text("container's own /etc\n")

    def bind_esc(entries):
        tmp = next(e for e in entries if e["mountpoint"] == "/tmp")
        e = dict(tmp, mnt_id=max(x["mnt_id"] for x in entries) + 1, root="/esc",
                 mountpoint="/mnt")
        entries.append(e)
    rewrite(next(img.glob("mountpoints-*.img")), bind_esc)
    r = test_runc.runc("--criu", amber_path(), "restore", "-d", "--image-path", img,
                       "--work-path", tmp_path / "work2", c.cid, cwd=c.bundle,
                       stdin=subprocess.DEVNULL)
    try:
        log = read_text(tmp_path / "work2/restore.log")
        if r.returncode == 0:
            pid = c.state()["pid"]
            seen = sorted(os.listdir(f"/proc/{pid}/root/mnt"))
            assert seen == ["inside"], (seen, log)
        else:
            assert "esc" in log, log
    finally:
        c.delete()


# ------------------------------------------------- packet sockets
#
# packet_sock_mmap dumped: a packet socket with an rx and a tx ring mapped
# in one socket VMA. A packet_sock_entry, or the VMA of its rings, that
# makes no sense, or an interface missing here, is refused at load: no
# socket is made, no task forked.

@pytest.fixture(scope="module")
def packet_source(request):
    yield from dumped_with_pb(request, "packet_sock_mmap")


def set_psk(**kw):
    def fn(fe):
        if fe.HasField("psk"):
            for k, v in kw.items():
                if k in ("rx_ring", "tx_ring"):
                    for f, x in v.items():
                        setattr(getattr(fe.psk, k), f, x)
                elif k == "mclist":
                    m = fe.psk.mclist.add()
                    m.index, m.type, m.addr = v
                else:
                    setattr(fe.psk, k, v)
    return fn


PACKET_CASES = [
    ("SOCK_PACKET type", set_psk(type=10), "malformed"),
    ("TPACKET version 7", set_psk(version=7), "malformed"),
    ("protocol above 16 bits", set_psk(protocol=1 << 16), "malformed"),
    ("rx ring of 0 blocks", set_psk(rx_ring={"block_nr": 0}), "malformed"),
    ("membership of type 9", set_psk(mclist=(1, 9, b"")), "malformed"),
    ("membership address of 40 bytes", set_psk(mclist=(1, 0, b"x" * 40)), "malformed"),
    ("bound to a missing interface", set_psk(ifindex=99999), "interface 99999 is missing"),
    ("membership on a missing interface", set_psk(mclist=(99998, 1, b"")),
     "interface 99998 is missing"),
    ("rings larger than their mapping", set_psk(rx_ring={"block_nr": 8, "frame_nr": 16}),
     "does not match packet socket"),
]


@pytest.mark.parametrize("case", PACKET_CASES, ids=[c[0] for c in PACKET_CASES])
def test_packet_semantic(packet_source, case):
    files_img_refused(packet_source, case)


def test_packet_vma_names_another_file(packet_source):
    """The socket VMA's shmid must name a packet socket in files.img."""
    def fn(entries):
        for v in entries[0]["vmas"]:
            if v["status"] & (1 << 11):  # VMA_AREA_SOCKET
                v["shmid"] = 1
    d = packet_source.copy(sums=False)
    victim = sorted(d.glob("mm-*.img"))[0]
    rewrite(victim, fn)
    bad = packet_source.problems("socket VMA naming file 1", d, True, ["not a packet socket"])
    assert not bad, "\n".join(bad)


def test_packet_pristine_restores(packet_source):
    pristine_restores(packet_source)


# ------------------------------------------------- AIO rings
#
# aio_ring dumped: two AIO contexts, each an aio_ring_entry in mm-PID.img
# naming its VMA_AREA_AIORING VMA. A ring that does not match its VMA, or
# a ring VMA without its entry, is refused at load.

@pytest.fixture(scope="module")
def aio_source(request):
    yield from dumped_source(request, "aio_ring")


def set_aio(**kw):
    def fn(entries):
        for k, v in kw.items():
            entries[0]["aios"][0][k] = v
    return fn


def drop_aio(entries):
    del entries[0]["aios"][0]


AIO_CASES = [
    ("ring naming no VMA", set_aio(id=0x10000), "does not match its VMA"),
    ("ring longer than its VMA", set_aio(ring_len=64 * 4096), "does not match its VMA"),
    ("nr_req for a larger ring", set_aio(nr_req=100000), "does not match its VMA"),
    ("ring VMA without its entry", drop_aio, "AIO ring VMAs for"),
]


@pytest.mark.parametrize("what,fn,want", AIO_CASES, ids=[c[0] for c in AIO_CASES])
def test_aio_semantic(aio_source, what, fn, want):
    d = aio_source.copy(sums=False)
    rewrite(d / f"mm-{aio_source.root}.img", fn)
    bad = aio_source.problems(f"mm.img: {what}", d, True, [want])
    assert not bad, "\n".join(bad)


def test_aio_pristine_restores(aio_source):
    pristine_restores(aio_source)


# ------------------------------------------------- UDP queues
#
# inet_udp_queue dumped: datagrams queued in UDP sockets, in sk-queues.img
# with their senders (sk_packet_entry.addr). A sender of the wrong family
# or size, or none, is refused at load.

@pytest.fixture(scope="module")
def udpq_source(request):
    for src in dumped_source(request, "inet_udp_queue"):
        src.pb = amber_pb("sk_packet_pb2")
        yield src


def edit_sk_queues(path, pb, fn):
    """Calls fn(sk_packet_entry) on the first entry of sk-queues.img."""
    data = path.read_bytes()
    out, off, first = bytearray(data[:FILES_MAGIC_LEN]), FILES_MAGIC_LEN, True
    while off < len(data):
        n = struct.unpack_from("<I", data, off)[0]
        pe = pb.sk_packet_entry()
        pe.ParseFromString(data[off + 4:off + 4 + n])
        payload = data[off + 4 + n:off + 4 + n + pe.length]
        off += 4 + n + pe.length
        if first:
            fn(pe)
            first = False
        blob = pe.SerializeToString()
        out += struct.pack("<I", len(blob)) + blob + payload
    path.write_bytes(bytes(out))


def set_addr(value):
    def fn(pe):
        if value is None:
            pe.ClearField("addr")
        else:
            pe.addr = value
    return fn


UDPQ_CASES = [
    ("sender of another family", set_addr(struct.pack("<H", 10) + bytes(26)), "malformed"),
    ("sender address of 40 bytes", set_addr(struct.pack("<H", 2) + bytes(38)),
     "bad control data"),
    ("no sender (as CRIU would write it)", set_addr(None), "malformed"),
]


@pytest.mark.parametrize("what,fn,want", UDPQ_CASES, ids=[c[0] for c in UDPQ_CASES])
def test_udp_queue_semantic(udpq_source, what, fn, want):
    d = udpq_source.copy(sums=False)
    edit_sk_queues(d / "sk-queues.img", udpq_source.pb, fn)
    bad = udpq_source.problems(f"sk-queues.img: {what}", d, True, [want])
    assert not bad, "\n".join(bad)


def test_udp_queue_pristine_restores(udpq_source):
    pristine_restores(udpq_source)


@pytest.fixture(scope="module")
def timens_source(request):
    """A sleeping test in a time namespace of its own (unshare execs the
    launcher, whose daemon stays in it)."""
    yield from dumped_source(request, "sleeping", prefix=[
        "unshare", "--time", "--monotonic=86400", "--boottime=3600", "--fork"], tag="-timens")


def set_clock(clock, field, value):
    def fn(entries):
        entries[0][clock][field] = value
    return fn


TIMENS_CASES = [
    ("monotonic beyond the kernel's range", set_clock("monotonic", "tv_sec", 1 << 62)),
    ("boottime nanoseconds of a second or more", set_clock("boottime", "tv_nsec", 10**9)),
]


@pytest.mark.parametrize("what,fn", TIMENS_CASES, ids=[c[0] for c in TIMENS_CASES])
def test_timens_semantic(timens_source, what, fn):
    """A timens image whose clocks the kernel can't give is refused by the
    loader (no amber.sums) before any task or namespace is made."""
    d = timens_source.copy(sums=False)
    name = next(f for f in timens_source.files if f.startswith("timens-"))
    rewrite(d / name, fn)
    bad = timens_source.problems(what, d, True, ["a clock the kernel can't give"])
    assert not bad, "\n".join(bad)


def test_timens_pristine_restores(timens_source):
    pristine_restores(timens_source)


@pytest.fixture(scope="module")
def cgns_source(request):
    """A sleeping test in a cgroup namespace of its own (cgroup.img's
    members carry its root as cgns_prefix)."""
    yield from dumped_source(request, "sleeping", prefix=["unshare", "--cgroup", "--fork"],
                             tag="-cgns")


def set_cgns_prefix(value):
    def fn(entries):
        entries[0]["sets"][0]["ctls"][0]["cgns_prefix"] = value
    return fn


def test_cgns_prefix_beyond_path(cgns_source):
    """A cgroup namespace root longer than the cgroup's path is refused by
    the loader (no amber.sums) before any task or namespace is made."""
    d = cgns_source.copy(sums=False)
    rewrite(d / "cgroup.img", set_cgns_prefix(1000))
    bad = cgns_source.problems("cgns_prefix beyond its path", d, True,
                               ["cgns_prefix 1000 is not a part of its cgroup"])
    assert not bad, "\n".join(bad)


def test_cgns_pristine_restores(cgns_source):
    pristine_restores(cgns_source)


@pytest.fixture(scope="module")
def mq_source(request):
    """static/posix_mqueue in an IPC namespace of its own: ipcns-mqueue
    (amber's own image, which pycriu can't read) and descriptors in files.img."""
    yield from dumped_with_pb(request, "posix_mqueue")


def edit_mqueues(path, fn):
    """Calls fn(list of mqueue_entry) on ipcns-mqueue-ID.img and writes it back."""
    edit_entries(path, amber_pb("mqueue_pb2").mqueue_entry, fn)


def set_mq(**kw):
    def fn(entries):
        for k, v in kw.items():
            setattr(entries[0], k, v)
    return fn


def long_message(entries):
    entries[-1].msgs[0].data = b"x" * (entries[-1].msgsize + 1)


def queue_twice(entries):
    entries.append(entries[0])


MQ_CASES = [
    ("msgsize 0", set_mq(msgsize=0), "a size out of the kernel's bounds"),
    ("a name with a slash", set_mq(name="/a/b"), "a bad name"),
    ("a mode beyond 07777", set_mq(mode=0o170000), "a bad mode"),
    ("a message longer than msgsize", long_message, "a message out of its bounds"),
    ("a queue twice", queue_twice, "is there twice"),
]


@pytest.mark.parametrize("case", MQ_CASES, ids=[c[0] for c in MQ_CASES])
def test_mqueue_semantic(mq_source, case):
    """A POSIX queue the kernel could not hold is refused by the loader (no
    amber.sums) before any task or namespace is made."""
    what, fn, want = case
    d = mq_source.copy(sums=False)
    name = next(f for f in mq_source.files if f.startswith("ipcns-mqueue-"))
    edit_mqueues(d / name, fn)
    bad = mq_source.problems(what, d, True, [want])
    assert not bad, "\n".join(bad)


def set_mq_file(**kw):
    def fn(fe):
        if fe.HasField("amber_mq"):
            for k, v in kw.items():
                setattr(fe.amber_mq, k, v)
    return fn


MQ_FILE_CASES = [
    ("a descriptor with a bad name", set_mq_file(name="mq"), "has a bad name or flags"),
    ("a descriptor with O_APPEND", set_mq_file(flags=0o2002), "has a bad name or flags"),
    ("a descriptor of amber's namespace", set_mq_file(external=True),
     "is of amber's IPC namespace"),
    ("an unlinked queue not saved", set_mq_file(ghost_id=4242),
     "names unlinked queue 4242, which is not there"),
]


@pytest.mark.parametrize("case", MQ_FILE_CASES, ids=[c[0] for c in MQ_FILE_CASES])
def test_mqueue_file_refused(mq_source, case):
    files_img_refused(mq_source, case)


def test_mqueue_pristine_restores(mq_source):
    pristine_restores(mq_source)


# ------------------------------------------------- unlinked files
# unlinked_file dumped: one ghost-file-ID.img (the file's 256 KiB whole,
# after its ghost_file_entry) named by remap-fpath.img. CRIU writes a file
# of 12 KiB or more in chunks (ghost_chunk_entry, then that many bytes);
# amber reads both. Chunks out of order, past the file's size or past the
# image's end, and remaps amber does not restore, are refused at load.

@pytest.fixture(scope="module")
def ghost_source(request):
    yield from dumped_source(request, "unlinked_file")


def ghost_image(imgdir):
    """(path, header bytes, ghost_file_entry, contents) of the one ghost."""
    import pycriu
    path, = imgdir.glob("ghost-file-*.img")
    data = path.read_bytes()
    n, = struct.unpack_from("<I", data, 8)
    ge = pycriu.images.pb.ghost_file_entry()
    ge.ParseFromString(data[12:12 + n])
    return path, data[:8], ge, data[12 + n:]


def write_chunked(imgdir, chunks, size=None, tail=b""):
    """The ghost rewritten as CRIU writes it: chunks of (offset, length) of
    the saved contents, the rest a hole; @tail appended raw."""
    import pycriu
    path, head, ge, content = ghost_image(imgdir)
    ge.chunks = True
    ge.size = len(content) if size is None else size
    out = bytearray(head)
    blob = ge.SerializeToString()
    out += struct.pack("<I", len(blob)) + blob
    for off, ln in chunks:
        ce = pycriu.images.pb.ghost_chunk_entry(off=off, len=ln)
        blob = ce.SerializeToString()
        out += struct.pack("<I", len(blob)) + blob + content[off:off + ln]
    path.write_bytes(bytes(out) + tail)
    return content


def test_ghost_chunked_restores(ghost_source):
    """A chunked ghost, its holes zeros (the test's own check would fail
    on them): the contents restored chunk by chunk; here the whole file in
    three chunks so the test program passes."""
    d = ghost_source.copy(sums=False)
    content = write_chunked(d, [(0, 4096), (4096, 100000), (104096, 262144 - 104096)])
    assert len(content) == 262144
    bad = ghost_source.problems("chunked ghost", d, False)
    assert not bad, "\n".join(bad)


def test_ghost_without_size_restores(ghost_source):
    """CRIU's ghost of a small file: no size, the contents to the image's end."""
    d = ghost_source.copy(sums=False)
    path, head, ge, content = ghost_image(d)
    ge.ClearField("size")
    blob = ge.SerializeToString()
    path.write_bytes(head + struct.pack("<I", len(blob)) + blob + content)
    bad = ghost_source.problems("ghost without a size", d, False)
    assert not bad, "\n".join(bad)


GHOST_CASES = [
    ("chunk past the file's size", lambda d: write_chunked(d, [(0, 4096)], size=1024),
     "past the file's"),
    ("chunks out of order", lambda d: write_chunked(d, [(8192, 4096), (0, 4096)]),
     "out of order"),
    ("overlapping chunks", lambda d: write_chunked(d, [(0, 8192), (4096, 8192)]),
     "out of order"),
    ("chunk past the image's end", lambda d: write_chunked(
        d, [(0, 4096)], tail=struct.pack("<I", 6) + bytes([8, 0x80, 0x20, 16, 0x80, 0x20])),
     "past the image's end"),
]


@pytest.mark.parametrize("what,fn,want", GHOST_CASES, ids=[c[0] for c in GHOST_CASES])
def test_ghost_chunks_refused(ghost_source, what, fn, want):
    d = ghost_source.copy(sums=False)
    fn(d)
    bad = ghost_source.problems(f"ghost-file: {what}", d, True, [want])
    assert not bad, "\n".join(bad)


def set_remap(**kw):
    def fn(entries):
        entries[0].update(kw)
    return fn


REMAP_CASES = [
    ("a linked remap", set_remap(remap_type="LINKED"), "through a link"),
    ("a /proc remap", set_remap(remap_type="PROCFS"), "dead task's /proc"),
    ("a remap of no file", set_remap(orig_id=4242), "no regular file"),
    ("a missing ghost", set_remap(remap_id=4242), "ghost-file-1092.img"),
]


@pytest.mark.parametrize("what,fn,want", REMAP_CASES, ids=[c[0] for c in REMAP_CASES])
def test_remap_refused(ghost_source, what, fn, want):
    d = ghost_source.copy(sums=False)
    rewrite(d / "remap-fpath.img", fn)
    bad = ghost_source.problems(f"remap-fpath.img: {what}", d, True, [want])
    assert not bad, "\n".join(bad)


def test_ghost_pristine_restores(ghost_source):
    pristine_restores(ghost_source)
