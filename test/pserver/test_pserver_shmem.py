"""Post-copy's shared memory: a real dump of a task holding MAP_SHARED|
MAP_ANONYMOUS memory and a memfd (build/pserver/shm_holder), served by
`amber page-server --lazy-pages`, fetched by shmid and offset with amber's
PS_GET_SHMEM GET (ps_client_get_shmem_pages through build/pserver/ps_get,
and psproto.py). Every byte is checked against the pagemap-shmem/pages
images and against what the task wrote."""

import errno
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import psproto as P
from test_pserver import PS_GET, REPO, amber, ps_get, servers  # noqa: F401 (fixture)

PAGE = P.PAGE
HOLDER = REPO / "build" / "pserver" / "shm_holder"
ANON_PAGES, ANON_WRITTEN = 1024, list(range(600)) + [700]  # as shm_holder.c
MEMFD_PAGES, MEMFD_WRITTEN = 12, [0, 1, 6]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dump needs root")


def pattern(obj, page):
    """Page `page` of object `obj` (1: anonymous, 2: memfd), as shm_holder wrote it."""
    return struct.pack(f"<{PAGE // 8}Q", *((obj << 48 | page << 16 | w)
                                           for w in range(PAGE // 8)))


def expected(obj, written, first, nr):
    return b"".join(pattern(obj, p) if p in written else bytes(PAGE)
                    for p in range(first, first + nr))


def image_runs(d, shmid):
    """[(offset, data)] of pagemap-shmem-<shmid>.img, read from its pages file."""
    pages_id, entries = P.read_pagemap(d / f"pagemap-shmem-{shmid}.img")
    data = (d / f"pages-{pages_id}.img").read_bytes()
    runs, pos = [], 0
    for e in entries:
        assert e.get(4) == P.PE_PRESENT and 1001 in e, e  # data here, checksummed (version 2)
        runs.append((e[1], data[pos:pos + e[2] * PAGE]))
        pos += e[2] * PAGE
    assert pos == len(data)
    return runs


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """The images of one shm_holder, and (pid, anonymous shmid, memfd shmid)."""
    if not HOLDER.exists():
        subprocess.run(["make", "-s", "-C", str(REPO / "test" / "pserver")], check=True)
    tmp = tmp_path_factory.mktemp("shm")
    img = tmp / "img"
    task = subprocess.Popen([str(HOLDER)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        word, addr, fd = task.stdout.readline().decode().split()
        assert word == "ready"
        # shmids are the objects' inode numbers: the map's and the memfd's
        line = next(l for l in Path(f"/proc/{task.pid}/maps").read_text().splitlines()
                    if l.startswith(f"{addr}-"))
        anon_id = int(line.split()[4])
        memfd_id = os.stat(f"/proc/{task.pid}/fd/{fd}").st_ino
        r = subprocess.run([amber(), "dump", "-t", str(task.pid), "-D", str(img), "-v4",
                            "-o", str(tmp / "dump.log")], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, (tmp / "dump.log").read_text()
        task.wait(timeout=10)
    finally:
        if task.poll() is None:
            task.kill()
            task.wait()
        task.stdout.close()
    assert sorted(p.name for p in img.glob("pagemap-shmem-*.img")) == sorted(
        [f"pagemap-shmem-{anon_id}.img", f"pagemap-shmem-{memfd_id}.img"])
    return img, task.pid, anon_id, memfd_id


def test_shmem_pages_match_images(tmp_path, servers, dump):
    """Each image entry fetched whole equals its bytes in the pages file and
    what the task wrote; a GET across two entries is filled by partial
    replies; a hole and the pages past the object read as zeros (-ENOENT);
    a task's pages come on the same connection."""
    img, pid, anon_id, memfd_id = dump
    anon, memfd = image_runs(img, anon_id), image_runs(img, memfd_id)
    assert [(off, len(d) // PAGE) for off, d in anon] == \
        [(e[0], e[1]) for e in P.split_entries(0, 600, None)] + [(700 * PAGE, 1)]
    assert [(off, len(d) // PAGE) for off, d in memfd] == [(0, 2), (6 * PAGE, 1)]
    reqs, want = [], []
    for shmid, runs in ((anon_id, anon), (memfd_id, memfd)):
        for off, data in runs:
            reqs.append(f"s{shmid}:{off:x}:{len(data) // PAGE}")
            want.append((0, data))
    reqs += [f"s{anon_id}:0:{ANON_PAGES}", f"s{anon_id}:{601 * PAGE:x}:1",
             f"s{memfd_id}:0:{MEMFD_PAGES}", f"s{memfd_id}:{MEMFD_PAGES * PAGE:x}:2"]
    want += [(-errno.ENOENT, expected(1, ANON_WRITTEN, 0, ANON_PAGES)),
             (-errno.ENOENT, bytes(PAGE)),
             (-errno.ENOENT, expected(2, MEMFD_WRITTEN, 0, MEMFD_PAGES)),
             (-errno.ENOENT, bytes(2 * PAGE))]
    pid_id, pid_entries = P.read_pagemap(img / f"pagemap-{pid}.img")
    first = next(e for e in pid_entries if e.get(4) == P.PE_PRESENT)
    assert first is pid_entries[0]  # so its data starts the pages file
    reqs.append(f"{pid}:{first[1]:x}:{first[2]}")
    want.append((0, (img / f"pages-{pid_id}.img").read_bytes()[:first[2] * PAGE]))

    s = servers(img, "--lazy-pages", name="lazy")
    rc, res, out, err = ps_get(s.port, *reqs)
    assert rc == 0, err
    assert res == [w[0] for w in want], err
    assert out == b"".join(w[1] for w in want)
    # and the images hold what the task wrote
    assert b"".join(d for _, d in anon) == b"".join(pattern(1, p) for p in ANON_WRITTEN)
    assert b"".join(d for _, d in memfd) == b"".join(pattern(2, p) for p in MEMFD_WRITTEN)
    assert s.wait() == 0
    log = s.logtext()
    assert f"serving shmem {anon_id}: {len(anon)} runs" in log
    assert f"serving shmem {memfd_id}: 2 runs" in log


def test_shmem_unknown_ids_and_flags(tmp_path, servers, dump):
    """A shmid not in the dump: -ESRCH; a GET flag the server does not know
    gets an error reply and a log line, and the session goes on."""
    img, pid, anon_id, memfd_id = dump
    unknown = max(anon_id, memfd_id) + 1
    assert not (img / f"pagemap-shmem-{unknown}.img").exists()
    s = servers(img, "--lazy-pages", name="lazy")
    rc, res, out, err = ps_get(s.port, f"s{unknown}:0:1", f"s{memfd_id}:{6 * PAGE:x}:1")
    assert rc == 0 and res == [-errno.ESRCH, 0], err
    assert out == pattern(2, 6)
    assert s.wait() == 0  # ps_get's CLOSE ends the lazy server
    s = servers(img, "--lazy-pages", name="lazy2")
    c = P.Client(s.port)
    for flags in (0x4000, P.PS_GET_SHMEM | 0x2000, 0x0100):
        rep, _ = c.get(memfd_id, 0, 1, flags)
        assert rep["cmd"] == P.PS_IOV_ERR and rep["dst"] == errno.EINVAL, (flags, rep)
    rep, data = c.get_shmem(memfd_id, 0, 2)
    assert rep["cmd"] == P.PS_IOV_ADD_F and rep["nr"] == 2
    assert data == pattern(2, 0) + pattern(2, 1)
    rep, _ = c.get_shmem(unknown, 0, 1)
    assert rep["cmd"] == P.PS_IOV_ERR and rep["dst"] == errno.ESRCH
    assert c.close_xfer() == 0
    c.close()
    assert s.wait() == 0
    log = s.logtext()
    for flags in ("0x4000", "0xa000", "0x100"):
        assert f"GET with unknown flags {flags}" in log, flags
    assert f"GET for shmem {unknown}: not in this dump" in log


def test_shmem_corruption(tmp_path, servers, dump):
    """A flipped bit in a shmem object's pages: -EBADMSG for its entry, the
    other object and the task still served."""
    img, pid, anon_id, memfd_id = dump
    bad = tmp_path / "img"
    shutil.copytree(img, bad)
    pages_id, _ = P.read_pagemap(bad / f"pagemap-shmem-{memfd_id}.img")
    p = bad / f"pages-{pages_id}.img"
    data = bytearray(p.read_bytes())
    data[PAGE + 123] ^= 0x01  # in the first entry (pages 0-1)
    p.write_bytes(bytes(data))
    s = servers(bad, "--lazy-pages", name="lazy")
    rc, res, out, err = ps_get(s.port, f"s{memfd_id}:0:1", f"s{memfd_id}:{6 * PAGE:x}:1",
                               f"s{anon_id}:{700 * PAGE:x}:1", f"s{memfd_id}:1000:1")
    assert rc == 0 and res == [-errno.EBADMSG, 0, 0, -errno.EBADMSG], err
    assert out == pattern(2, 6) + pattern(1, 700)
    assert s.wait() == 0
    assert f"shmem {memfd_id}: pages at 0 (+2 pages) fail their checksum" in s.logtext()
