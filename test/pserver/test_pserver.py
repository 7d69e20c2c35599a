"""The page server against clients that speak the protocol per its spec
(psproto.py), the C GET client (build/pserver/ps_get), and hostile ones.

  AMBER   amber binary (default: <repo>/build/amber)
"""

import errno
import os
import random
import re
import signal
import stat
import struct
import subprocess
from pathlib import Path

import pytest

import psproto as P

REPO = Path(__file__).resolve().parent.parent.parent
PS_GET = REPO / "build" / "pserver" / "ps_get"
PAGE = P.PAGE


def amber():
    return os.environ.get("AMBER", str(REPO / "build" / "amber"))


class Server:
    """`amber page-server` on 127.0.0.1, an ephemeral port."""

    def __init__(self, tmp, dir_, *args, name="ps"):
        self.dir = Path(dir_)
        self.log = tmp / f"{name}.log"
        self.err = open(tmp / f"{name}.err", "wb")
        self.proc = subprocess.Popen(
            [amber(), "page-server", "--address", "127.0.0.1", "--port", "0",
             "-D", str(dir_), *map(str, args), "-v4", "-o", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err)
        line = self.proc.stdout.readline().decode()
        m = re.search(r":(\d+) \(", line)
        assert m, f"no listening line: {line!r} {self.stderr()}"
        self.port = int(m.group(1))

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        return Path(self.err.name).read_text(errors="replace")

    def logtext(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=20):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        assert "Sanitizer" not in self.stderr()


@pytest.fixture
def servers(tmp_path):
    started = []

    def start(dir_, *args, **kw):
        s = Server(tmp_path, dir_, *args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def token_file(tmp_path, name="token", secret=None, mode=0o600):
    path = tmp_path / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, (secret or os.urandom(24).hex()).encode() + b"\n")
    os.close(fd)
    os.chmod(path, mode)
    return path


def pages(nr, seed):
    return random.Random(seed).randbytes(nr * PAGE)


PID = 4242
# (vaddr, data): one run longer than an image entry (64 pages), to be split.
RUNS = [(0x400000, pages(3, 1)), (0x7f0000000000, pages(600, 2)),
        (0x7f0000300000, pages(1, 3))]
SHM = [(0, pages(2, 4))]


def send_dump(c):
    """The dump side, as CRIU's page_xfer does it; returns CLOSE's status."""
    assert c.open2(P.dst(P.PS_TYPE_PID, PID)) == b"\0"  # no parent
    return rest_of_dump(c)


def rest_of_dump(c):
    """send_dump() after its first OPEN2."""
    c.req(P.PS_IOV_PARENT, dst_id=P.dst(P.PS_TYPE_PID, PID))
    assert struct.unpack("<i", c.recv(4))[0] == 0
    for vaddr, data in RUNS:
        c.add(P.dst(P.PS_TYPE_PID, PID), vaddr, data)
    # a lazy run: a pagemap entry, no data on the wire
    c.req(P.PS_IOV_ADD_F, 4, 0x7f0000400000, P.dst(P.PS_TYPE_PID, PID), P.PE_LAZY)
    assert c.open2(P.dst(P.PS_TYPE_SHMEM, 77)) == b"\0"
    for vaddr, data in SHM:
        c.add(P.dst(P.PS_TYPE_SHMEM, 77), vaddr, data)
    return c.close_xfer()


def check_dump_dir(d):
    names = sorted(p.name for p in d.iterdir())
    assert names == ["pagemap-4242.img", "pagemap-shmem-77.img", "pages-65537.img",
                     "pages-65538.img"], names
    for p in d.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    pid_, entries = P.read_pagemap(d / "pagemap-4242.img")
    assert pid_ == 65537
    got = [(e[1], e[2], e.get(4)) for e in entries]
    assert got == [(0x400000, 3, P.PE_PRESENT),
                   *P.split_entries(0x7f0000000000, 600, P.PE_PRESENT),
                   (0x7f0000300000, 1, P.PE_PRESENT), (0x7f0000400000, 4, P.PE_LAZY)]
    assert all(1001 in e for e in entries[:-1]), "checksums (version 2) missing"
    data = (d / "pages-65537.img").read_bytes()
    assert data == b"".join(r[1] for r in RUNS)
    assert (d / "pages-65538.img").read_bytes() == SHM[0][1]


@pytest.mark.parametrize("wire", [24, 32])
def test_receive_dump(tmp_path, servers, wire):
    """A CRIU-style dump client (either header layout) fills the directory
    with the images a local dump would write; crit reads them."""
    s = servers(tmp_path / "img")
    c = P.Client(s.port, wire=wire)
    assert send_dump(c) == 0
    c.close()
    assert s.wait() == 0
    assert "unauthenticated" in s.stderr()
    check_dump_dir(tmp_path / "img")
    out = subprocess.run(["crit", "decode", "-i", str(tmp_path / "img/pagemap-4242.img")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and '"pages_id": 65537' in out.stdout, out.stderr


def ps_get(port, *reqs, opts=()):
    r = subprocess.run([str(PS_GET), *opts, "127.0.0.1", str(port), *reqs],
                       capture_output=True, timeout=30)
    results = [int(l.split()[3]) for l in r.stderr.decode().splitlines()
               if re.match(r"^\d+ [0-9a-f]+ \d+ -?\d+$", l)]
    return r.returncode, results, r.stdout, r.stderr.decode()


def make_dump(tmp_path, servers):
    s = servers(tmp_path / "img", name="recv")
    c = P.Client(s.port)
    assert send_dump(c) == 0
    c.close()
    assert s.wait() == 0
    return tmp_path / "img"


def test_lazy_get_with_c_client(tmp_path, servers):
    """ps_client_get_pages: data, partial replies across entries, holes
    (-ENOENT, zero-filled), a pid not in the dump (-ESRCH)."""
    d = make_dump(tmp_path, servers)
    s = servers(d, "--lazy-pages", name="lazy")
    big = RUNS[1]
    rc, res, out, err = ps_get(
        s.port, f"{PID}:400000:3", f"{PID}:7f0000000000:600", f"{PID}:7f0000001000:2",
        f"{PID}:3ff000:2", f"{PID}:7f0000300000:1", "999:400000:1")
    assert rc == 0, err
    assert res == [0, 0, 0, -errno.ENOENT, 0, -errno.ESRCH], err
    want = RUNS[0][1] + big[1] + big[1][PAGE:3 * PAGE] + bytes(PAGE) + RUNS[0][1][:PAGE] \
        + RUNS[2][1]
    assert out == want
    # ps_client_close sent CLOSE: the lazy server's session is complete
    assert s.wait() == 0


SHMID = 77  # send_dump's shmem object


def test_lazy_get_shmem_with_c_client(tmp_path, servers):
    """ps_client_get_shmem_pages: a shmem object's pages by offset, holes
    in and past it (-ENOENT, zero-filled), a shmid not in the dump and a pid
    taken for a shmid (-ESRCH), and plain GETs still answered alongside."""
    d = make_dump(tmp_path, servers)
    s = servers(d, "--lazy-pages", name="lazy")
    shm = SHM[0][1]
    rc, res, out, err = ps_get(
        s.port, f"s{SHMID}:0:2", f"s{SHMID}:1000:1", f"s{SHMID}:0:3", f"s{SHMID}:100000:1",
        "s78:0:1", f"s{PID}:400000:1", f"{SHMID}:0:1", f"{PID}:400000:1")
    assert rc == 0, err
    assert res == [0, 0, -errno.ENOENT, -errno.ENOENT, -errno.ESRCH, -errno.ESRCH,
                   -errno.ESRCH, 0], err
    assert out == shm + shm[PAGE:] + shm + bytes(PAGE) + bytes(PAGE) + RUNS[0][1][:PAGE]
    assert s.wait() == 0
    log = s.logtext()
    assert "serving shmem 77: 1 runs from pages-65538.img" in log
    assert "GET for shmem 78: not in this dump" in log


def test_lazy_bad_requests(tmp_path, servers):
    """Malformed GETs get an error reply and the session goes on."""
    d = make_dump(tmp_path, servers)
    s = servers(d, "--lazy-pages", name="lazy")
    c = P.Client(s.port)
    cases = [
        ((P.PS_IOV_GET, 1, 0x400001, PID), errno.ERANGE),        # unaligned
        ((P.PS_IOV_GET, 1, 1 << 47, PID), errno.ERANGE),         # beyond user space
        ((P.PS_IOV_GET, 0, 0x400000, PID), errno.E2BIG),         # zero pages
        ((P.PS_IOV_GET, 0xffffffff, 0x400000, PID), errno.E2BIG),  # huge
        ((P.PS_IOV_GET, 1, 0x400000, 0), errno.ESRCH),           # pid 0
        ((P.PS_IOV_GET, 1, 0x400000, 1 << 40), errno.ESRCH),     # pid out of range
        ((P.PS_IOV_GET, 1, 0x400000, 31337), errno.ESRCH),       # not in the dump
        ((0x77, 1, 0x400000, PID), errno.EINVAL),                # unknown command
        ((P.PS_IOV_ADD_F, 1, 0x400000, PID), errno.EINVAL),      # not in lazy mode
    ]
    for (cmd, nr, vaddr, dst_id), err in cases:
        c.req(cmd, nr, vaddr, dst_id)
        rep = c.reply()
        assert rep and rep["cmd"] == P.PS_IOV_ERR and rep["dst"] == err, (cmd, rep)
        assert rep["vaddr"] == vaddr
    rep, data = c.get(PID, 0x400000, 3)
    assert rep["cmd"] == P.PS_IOV_ADD_F and rep["flags"] == P.PE_PRESENT
    assert data == RUNS[0][1]
    # GET flags: PS_GET_SHMEM alone is known; its requests are checked alike
    S = P.PS_GET_SHMEM
    flag_cases = [
        ((0x4000, 1, 0x400000, PID), errno.EINVAL),    # a flag nobody defined
        ((P.PE_PRESENT, 1, 0x400000, PID), errno.EINVAL),  # PE_* mean nothing on GET
        ((S | 0x1, 1, 0, SHMID), errno.EINVAL),        # ours, and an unknown one
        ((0xffff, 1, 0, SHMID), errno.EINVAL),
        ((S, 1, 0x123, SHMID), errno.ERANGE),          # unaligned offset
        ((S, 1, 1 << 47, SHMID), errno.ERANGE),        # offset out of range
        ((S, 0, 0, SHMID), errno.E2BIG),               # zero pages
        ((S, (1 << 20) + 1, 0, SHMID), errno.E2BIG),   # too many
        ((S, 1, 0, 0), errno.ESRCH),                   # shmid 0 (none in this dump)
        ((S, 1, 0, 78), errno.ESRCH),                  # not in the dump
        ((S, 1, 0, PID), errno.ESRCH),                 # a pid is no shmid...
        ((0, 1, 0, SHMID), errno.ESRCH),               # ... nor a shmid a pid
    ]
    for (flags, nr, vaddr, dst_id), err in flag_cases:
        rep, _ = c.get(dst_id, vaddr, nr, flags)
        assert rep and rep["cmd"] == P.PS_IOV_ERR and rep["dst"] == err, (flags, rep)
        assert rep["vaddr"] == vaddr
    rep, data = c.get_shmem(SHMID, PAGE, 5)   # at most what is there
    assert rep["cmd"] == P.PS_IOV_ADD_F and rep["nr"] == 1 and data == SHM[0][1][PAGE:]
    rep, data = c.get_shmem(SHMID, 2 * PAGE, 1)  # past the object: a hole
    assert rep["cmd"] == P.PS_IOV_ADD_F and rep["nr"] == 0 and rep["flags"] == 0
    rep, data = c.get(PID, 0x400000, 3)
    assert data == RUNS[0][1]
    assert s.alive()
    c.close()
    log = s.logtext()
    assert "not a user page address" in log and "not in this dump" in log
    assert "only GET and CLOSE" in log
    assert "GET with unknown flags 0x4000" in log and "GET with unknown flags 0x8001" in log
    assert "not a page offset in a shmem object" in log
    assert "GET for pid 0: out of range" in log  # a shmem id may be 0 (SysV)


def test_lazy_detects_corruption(tmp_path, servers):
    d = make_dump(tmp_path, servers)
    p = d / "pages-65537.img"
    data = bytearray(p.read_bytes())
    data[3 * PAGE + 100] ^= 0xff  # in the 600-page run's first entry
    p.write_bytes(bytes(data))
    s = servers(d, "--lazy-pages", name="lazy")
    c = P.Client(s.port)
    rep, _ = c.get(PID, 0x7f0000000000, 1)
    assert rep["cmd"] == P.PS_IOV_ERR and rep["dst"] == errno.EBADMSG
    rep, data = c.get(PID, 0x400000, 1)  # other entries still served
    assert data == RUNS[0][1][:PAGE]
    c.close()
    assert "fail their checksum" in s.logtext()


def test_lazy_detects_shmem_corruption(tmp_path, servers):
    """A shmem object's pages are checksummed like a task's: a flipped bit
    is refused (every time, not only the first), the tasks still served."""
    d = make_dump(tmp_path, servers)
    p = d / "pages-65538.img"
    data = bytearray(p.read_bytes())
    data[PAGE + 7] ^= 0x10
    p.write_bytes(bytes(data))
    s = servers(d, "--lazy-pages", name="lazy")
    rc, res, out, err = ps_get(s.port, f"s{SHMID}:0:1", f"{PID}:400000:1", f"s{SHMID}:1000:1")
    assert rc == 0 and res == [-errno.EBADMSG, 0, -errno.EBADMSG], err
    assert out == RUNS[0][1][:PAGE]
    assert s.wait() == 0
    assert "shmem 77: pages at 0 (+2 pages) fail their checksum" in s.logtext()


def expect_err(c, err):
    rep = c.reply()
    assert rep is not None and rep["cmd"] == P.PS_IOV_ERR and rep["dst"] == err, rep
    assert c.at_eof()


def test_receive_bad_requests(tmp_path, servers):
    """Each malformed request: an error reply, a log line, the connection
    dropped; the server survives and then takes a good dump; nothing is
    written outside its directory."""
    s = servers(tmp_path / "img")
    pid_dst = P.dst(P.PS_TYPE_PID, PID)
    cases = [
        (P.pack(0x99), errno.EINVAL),
        (P.pack(P.PS_IOV_GET, 1, 0x400000, PID), errno.EINVAL),
        (P.pack(P.PS_IOV_OPEN2, dst_id=(5 << 8) | 9), errno.EINVAL),  # unknown type
        (P.pack(P.PS_IOV_OPEN2, dst_id=P.dst(P.PS_TYPE_PID, 0)), errno.ERANGE),
        (P.pack(P.PS_IOV_OPEN2, dst_id=P.dst(P.PS_TYPE_PID, 1 << 40)), errno.ERANGE),
        (P.pack(P.PS_IOV_ADD_F, 0, 0x400000, pid_dst, P.PE_PRESENT), errno.E2BIG),
        (P.pack(P.PS_IOV_ADD_F, 0xffffffff, 0x400000, pid_dst, P.PE_PRESENT), errno.E2BIG),
        (P.pack(P.PS_IOV_ADD_F, 1, 0x400123, pid_dst, P.PE_PRESENT), errno.ERANGE),
        (P.pack(P.PS_IOV_ADD_F, 2, (1 << 47) - PAGE, pid_dst, P.PE_PRESENT), errno.ERANGE),
        (P.pack(P.PS_IOV_ADD_F, 1, 0x400000, pid_dst, 0x80), errno.EINVAL),
        (P.pack(P.PS_IOV_ADD_F, 1, 0x400000, pid_dst, P.PE_LAZY) +
         P.pack(P.PS_IOV_ADD_F, 1, 0x3ff000, pid_dst, P.PE_LAZY), errno.EINVAL),  # descending
        (P.pack(P.PS_IOV_OPEN, dst_id=pid_dst) +
         P.pack(P.PS_IOV_OPEN, dst_id=P.dst(P.PS_TYPE_SHMEM, 1)) +
         P.pack(P.PS_IOV_ADD_F, 1, 0x400000, pid_dst, P.PE_LAZY), errno.EEXIST),  # reopen
    ]
    for data, err in cases:
        c = P.Client(s.port)
        c.send(data)
        expect_err(c, err)
        c.close()
        assert s.alive()
    # short read: announce 2 pages, send one, hang up
    c = P.Client(s.port)
    c.send(P.pack(P.PS_IOV_ADD_F, 2, 0x400000, pid_dst, P.PE_PRESENT) + bytes(PAGE))
    c.close()
    # garbage shorter than a header
    c = P.Client(s.port)
    c.send(b"\x01\x02\x03")
    c.close()
    # one session at a time: each dropped client ends one, then it listens on
    dropped = len(cases) + 2
    P.wait_until(lambda: not s.alive() or
                 s.logtext().count("; still listening") >= dropped)
    assert s.alive()
    assert s.logtext().count("; still listening") == dropped
    c = P.Client(s.port)
    assert send_dump(c) == 0
    c.close()
    assert s.wait() == 0
    log = s.logtext()
    for msg in ("unknown or unexpected command", "unknown pagemap type",
                "out of range", "not a user address range", "unknown pagemap flags",
                "overlaps or precedes", "short page data", "opened a second time"):
        assert msg in log, msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "ps.err", "ps.log"]


def test_token_auth(tmp_path, servers):
    tok = token_file(tmp_path, secret="correct horse battery staple")
    s = servers(tmp_path / "img", "--token-file", tok)
    assert "unauthenticated" not in s.stderr()
    # a stock CRIU client: starts with OPEN2, gets a challenge it ignores
    c = P.Client(s.port)
    c.send(P.pack(P.PS_IOV_OPEN2, dst_id=P.dst(P.PS_TYPE_PID, PID)) + bytes(24))
    chal = c.recv(40)
    assert chal.startswith(P.AUTH_MAGIC)
    assert struct.unpack("<i", c.recv(4))[0] == -errno.EACCES
    assert c.at_eof()
    c.close()
    # the wrong token
    c = P.Client(s.port)
    assert c.auth(b"correct horse battery stapler") == -errno.EACCES
    assert c.at_eof()
    c.close()
    # silence, then hang up
    c = P.Client(s.port)
    c.close()
    assert s.alive()
    assert list((tmp_path / "img").iterdir()) == []
    c = P.Client(s.port)
    assert c.auth(b"correct horse battery staple") == 0
    assert send_dump(c) == 0
    c.close()
    assert s.wait() == 0
    check_dump_dir(tmp_path / "img")
    log = s.logtext()
    assert "did not authenticate" in log and "wrong token: refused" in log


def test_token_file_checks(tmp_path):
    """A token file others can read, or a short one, stops the server."""
    for mode, secret in ((0o644, "x" * 32), (0o600, "short")):
        tok = token_file(tmp_path, secret=secret, mode=mode)
        r = subprocess.run([amber(), "page-server", "--port", "0", "-D",
                            str(tmp_path / "img"), "--token-file", str(tok)],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0
        assert "readable by its owner only" in r.stderr or "shorter than" in r.stderr


def test_lazy_token_c_client(tmp_path, servers):
    d = make_dump(tmp_path, servers)
    tok = token_file(tmp_path)
    bad = token_file(tmp_path, "bad")
    s = servers(d, "--lazy-pages", "--token-file", tok, name="lazy")
    rc, res, _, err = ps_get(s.port, f"{PID}:400000:1", opts=("-T", str(bad)))
    assert rc == 3 and re.search(r"^connect (-\d+) ", err, re.M), err
    assert int(re.search(r"^connect (-\d+) ", err, re.M).group(1)) == -errno.EACCES, err
    # no token: the server's challenge is no page-server reply
    rc, res, out, err = ps_get(s.port, f"{PID}:400000:1")
    assert res == [-errno.EPROTO] and out == b"", err
    rc, res, out, err = ps_get(s.port, f"{PID}:400000:1", opts=("-T", str(tok)))
    assert rc == 0 and res == [0] and out == RUNS[0][1][:PAGE], err
    assert s.wait() == 0
    log = s.logtext()
    assert "wrong token: refused" in log and "no authentication reply" in log


def random_frame(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(24)
    cmd = rng.choice([P.PS_IOV_GET, P.PS_IOV_GET, P.PS_IOV_ADD, P.PS_IOV_HOLE,
                      P.PS_IOV_OPEN, P.PS_IOV_OPEN2, P.PS_IOV_PARENT, P.PS_IOV_ADD_F,
                      rng.randrange(0x10000)])
    nr = rng.choice([0, 1, 2, 511, 512, 1 << 20, (1 << 20) + 1, rng.randrange(1 << 32)])
    vaddr = rng.choice([0, 0x400000, 0x400001, 0x7f0000000000, 1 << 47, (1 << 64) - PAGE,
                        rng.randrange(1 << 64)])
    dst_id = rng.choice([PID, 0, 31337, P.dst(P.PS_TYPE_PID, PID), 1 << 63, SHMID,
                         rng.randrange(1 << 64)])
    # mostly flags a GET may carry, so that the lazy server gets past them
    flags = rng.choice([0, P.PS_GET_SHMEM, rng.randrange(1 << 16)])
    return P.pack(cmd, nr, vaddr, dst_id, flags)


def test_fuzz_lazy(tmp_path, servers):
    """3000 random frames on one lazy session: one reply each, no crash."""
    d = make_dump(tmp_path, servers)
    s = servers(d, "--lazy-pages", name="lazy")
    rng = random.Random(5)
    c = P.Client(s.port)
    seen = {}
    for i in range(3000):
        frame = random_frame(rng)
        if P.unpack(frame)["cmd"] in (P.PS_IOV_CLOSE, P.PS_IOV_FORCE_CLOSE):
            continue
        c.send(frame)
        rep = c.reply()
        assert rep is not None, f"no reply to frame {i}: {frame.hex()}"
        if rep["cmd"] == P.PS_IOV_ADD_F and rep["nr"]:
            c.recv(rep["nr"] * PAGE)
        key = "err" if rep["cmd"] == P.PS_IOV_ERR else "pages" if rep["nr"] else "hole"
        seen[key] = seen.get(key, 0) + 1
    rep, data = c.get(PID, 0x400000, 3)
    assert data == RUNS[0][1]
    assert s.alive()
    c.close()
    assert seen.get("err", 0) > 2000, seen
    assert seen.get("pages") and seen.get("hole"), seen  # some got past the checks


def test_fuzz_receive(tmp_path, servers):
    """600 connections of random frames and bytes into a receiving server:
    it drops each, writes nothing outside its directory, then takes a dump.
    They come faster than it parses them: room for all of them to wait, so
    that every one is parsed (the default cap would reset most)."""
    s = servers(tmp_path / "img", "--max-connections", 1024)
    rng = random.Random(7)
    frames = 0
    for i in range(600):
        c = P.Client(s.port, timeout=10)
        data = b"".join(random_frame(rng) for _ in range(rng.randrange(1, 5)))
        frames += len(data) // 24
        if rng.randrange(3) == 0:
            data += rng.randbytes(rng.randrange(1, 300))
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.close()
    P.wait_until(lambda: not s.alive() or s.logtext().count("; still listening") >= 600,
                 timeout=60)
    assert s.alive()
    assert s.logtext().count("; still listening") == 600
    assert frames > 1000
    c = P.Client(s.port)
    assert send_dump(c) == 0
    c.close()
    assert s.wait() == 0
    outside = sorted(p.name for p in tmp_path.iterdir())
    assert outside == ["img", "ps.err", "ps.log"], outside
    for p in (tmp_path / "img").iterdir():
        assert p.name.startswith(("pagemap-", "pages-")) and p.is_file()
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_receive_old_commands(tmp_path, servers):
    """What older CRIUs send: OPEN (no reply), ADD (data), HOLE (a PE_PARENT
    entry, into a server that has the parent image), ADD without OPEN, and
    FORCE_CLOSE."""
    d1, d2 = P.dst(P.PS_TYPE_PID, 11), (12 << 8) | 11  # 11: a 1.3..3.0 type number
    parent = servers(tmp_path / "parent", name="parent")
    c = P.Client(parent.port)
    c.open2(d1)
    c.add(d1, 0x2000000, pages(3, 8))
    assert c.close_xfer() == 0
    c.close()
    assert parent.wait() == 0
    s = servers(tmp_path / "img", "--prev-images-dir", "../parent")
    c = P.Client(s.port)
    c.req(P.PS_IOV_OPEN, dst_id=d1)
    c.req(P.PS_IOV_ADD, 2, 0x1000000, d1)
    c.send(pages(2, 9))
    c.req(P.PS_IOV_HOLE, 3, 0x2000000, d1)
    c.req(P.PS_IOV_ADD, 1, 0x3000000, d2)
    c.send(pages(1, 10))
    c.req(P.PS_IOV_FORCE_CLOSE)
    assert struct.unpack("<i", c.recv(4))[0] == 0
    c.close()
    assert s.wait() == 0
    _, e11 = P.read_pagemap(tmp_path / "img/pagemap-11.img")
    assert [(e[1], e[2], e[4]) for e in e11] == [(0x1000000, 2, P.PE_PRESENT),
                                                 (0x2000000, 3, P.PE_PARENT)]
    _, e12 = P.read_pagemap(tmp_path / "img/pagemap-12.img")
    assert [(e[1], e[2], e[4]) for e in e12] == [(0x3000000, 1, P.PE_PRESENT)]
    assert (tmp_path / "img/pages-65537.img").read_bytes() == pages(2, 9)
    assert (tmp_path / "img/pages-65538.img").read_bytes() == pages(1, 10)


def test_lazy_get_32_byte_layout(tmp_path, servers):
    d = make_dump(tmp_path, servers)
    s = servers(d, "--lazy-pages", name="lazy")
    c = P.Client(s.port, wire=32)
    rep, data = c.get(PID, 0x7f0000000000 + PAGE, 2)
    assert rep["cmd"] == P.PS_IOV_ADD_F and rep["nr"] == 2
    assert data == RUNS[1][1][PAGE:3 * PAGE]
    rep, data = c.get_shmem(SHMID, 0, 2)
    assert rep["cmd"] == P.PS_IOV_ADD_F and rep["nr"] == 2 and data == SHM[0][1]
    assert c.close_xfer() == 0
    assert s.wait() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="dump needs root")
def test_dump_fails_when_server_hangs_up(tmp_path):
    """A page server that goes away mid-dump fails the dump, and the tree
    goes on running as it was."""
    import socket
    import threading

    lsk = socket.create_server(("127.0.0.1", 0))
    port = lsk.getsockname()[1]

    def flaky_server():
        c, _ = lsk.accept()
        c.recv(24)              # OPEN2
        c.sendall(b"\0")        # no parent
        c.recv(24 + PAGE)       # a little of the data
        c.close()

    t = threading.Thread(target=flaky_server)
    t.start()
    tree = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        r = subprocess.run([amber(), "dump", "-t", str(tree.pid), "-D", str(tmp_path / "img"),
                            "--page-server", "--address", "127.0.0.1", "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
        t.join(10)
        assert r.returncode != 0
        assert "the tree was left running" in r.stderr
        state = lambda: Path(f"/proc/{tree.pid}/stat").read_text().split()[2]
        P.wait_until(lambda: state() in "SR", timeout=5)
        assert tree.poll() is None
        assert state() in "SR"
    finally:
        tree.kill()
        tree.wait()
        lsk.close()


def test_receive_incremental(tmp_path, servers):
    """An incremental dump into a server with a parent image: OPEN2 and
    PARENT say which pagemaps the parent has, PE_PARENT runs (ADD_F with no
    data, as CRIU sends them) are recorded for those; a PE_PARENT run for a
    pagemap with no parent, pages the parent's pagemap lacks, or into a
    server with no parent at all, is refused with ENOENT and a log line,
    and the server goes on."""
    first = servers(tmp_path / "1", name="ps1")
    c = P.Client(first.port)
    c.open2(P.dst(P.PS_TYPE_PID, PID))
    for vaddr, data in RUNS:
        c.add(P.dst(P.PS_TYPE_PID, PID), vaddr, data)
    assert c.close_xfer() == 0
    c.close()
    assert first.wait() == 0

    s = servers(tmp_path / "2", "--prev-images-dir", "../1", name="ps2")
    assert os.readlink(tmp_path / "2" / "parent") == "../1"
    pid_dst, shm_dst = P.dst(P.PS_TYPE_PID, PID), P.dst(P.PS_TYPE_SHMEM, 99)
    c = P.Client(s.port)
    c.req(P.PS_IOV_PARENT, dst_id=shm_dst)
    assert struct.unpack("<i", c.recv(4))[0] == 0
    assert c.open2(shm_dst) == b"\0"  # the parent has no shmem 99
    c.req(P.PS_IOV_ADD_F, 1, 0, shm_dst, P.PE_PARENT)
    expect_err(c, errno.ENOENT)
    c.close()
    c = P.Client(s.port)  # a run the parent's pagemap does not cover
    assert c.open2(pid_dst) == b"\1"
    c.req(P.PS_IOV_ADD_F, 4, 0x7f00002ff000, pid_dst, P.PE_PARENT)
    expect_err(c, errno.ENOENT)
    c.close()
    c = P.Client(s.port)
    c.req(P.PS_IOV_PARENT, dst_id=pid_dst)
    assert struct.unpack("<i", c.recv(4))[0] == 1
    assert c.open2(pid_dst) == b"\1"
    c.req(P.PS_IOV_ADD_F, 3, 0x400000, pid_dst, P.PE_PARENT)
    c.add(pid_dst, 0x7f0000000000, RUNS[1][1][:2 * PAGE])
    c.req(P.PS_IOV_HOLE, 598, 0x7f0000002000, pid_dst)
    assert c.close_xfer() == 0
    c.close()
    assert s.wait() == 0
    _, entries = P.read_pagemap(tmp_path / "2" / "pagemap-4242.img")
    assert [(e[1], e[2], e.get(4)) for e in entries] == [
        (0x400000, 3, P.PE_PARENT), (0x7f0000000000, 2, P.PE_PRESENT),
        (0x7f0000002000, 598, P.PE_PARENT)]
    pages_id, _ = P.read_pagemap(tmp_path / "2" / "pagemap-4242.img")
    assert (tmp_path / "2" / f"pages-{pages_id}.img").read_bytes() == \
        RUNS[1][1][:2 * PAGE]
    assert "no parent pagemap here" in s.logtext()
    assert "the parent's pagemap lacks some of it" in s.logtext()

    orphan = servers(tmp_path / "3", name="ps3")
    c = P.Client(orphan.port)
    assert c.open2(pid_dst) == b"\0"
    c.req(P.PS_IOV_ADD_F, 1, 0x400000, pid_dst, P.PE_PARENT)
    expect_err(c, errno.ENOENT)
    c.close()
    assert orphan.alive()
