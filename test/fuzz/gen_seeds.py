#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the harnesses whose inputs are not image
directories (and the image harnesses' seeds from packed dumps).

    gen_seeds.py CORPUS_DIR [DUMP_DIR...]

DUMP_DIRs are image directories of real dumps (seed.sh makes them); the
protocol seeds are built here from lazy_proto.h and proto.h.
"""
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PE_PARENT, PE_PRESENT = 1, 4


def put(corpus, harness, name, data):
    d = os.path.join(corpus, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pack(dump, flags=None, only=None):
    args = [sys.executable, os.path.join(HERE, "pack.py")]
    if flags is not None:
        args += ["--flags", str(flags)]
    if only:
        args += ["--only", ",".join(only)]
    return subprocess.run(args + [dump], check=True, stdout=subprocess.PIPE).stdout


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(fields):
    """fields: [(number, int)] as varints."""
    return b"".join(varint(num << 3) + varint(v) for num, v in fields)


def entry(msg):
    return struct.pack("<I", len(msg)) + msg


PAGEMAP_MAGIC = (0x54123737, 0x56084025)


def pagemap(pages_id, ents):
    out = struct.pack("<II", *PAGEMAP_MAGIC) + entry(pb([(1, pages_id)]))
    for vaddr, nr, flags in ents:
        out += entry(pb([(1, vaddr), (2, nr), (4, flags)]))
    return out


def record(name, data):
    n = name.encode()
    return bytes([len(n)]) + n + struct.pack("<I", len(data)) + data


def chain_seed():
    """A three-layer incremental chain of pid 1 (no mm: one VMA over everything)."""
    top = pagemap(3, [(0x10000, 2, PE_PRESENT), (0x12000, 2, PE_PARENT), (0x20000, 4, PE_PARENT)])
    mid = pagemap(2, [(0x12000, 1, PE_PRESENT), (0x13000, 1, PE_PARENT), (0x20000, 2, PE_PRESENT)])
    old = pagemap(1, [(0x10000, 8, PE_PRESENT), (0x20000, 8, PE_PRESENT)])
    size = lambda n: struct.pack("<Q", n * 4096)
    return (record("pagemap-1.img", top) + record("pages-3.img", size(2)) +
            record("parent/pagemap-1.img", mid) + record("parent/pages-2.img", size(3)) +
            record("parent/parent/pagemap-1.img", old) +
            record("parent/parent/pages-1.img", size(16)))


def ps_hdr(cmd, nr, vaddr, dst, flags=0, wide=False):
    if wide:
        return struct.pack("<IIQQQ", cmd | flags << 16, 0, nr, vaddr, dst)
    return struct.pack("<IIQQ", cmd | flags << 16, nr, vaddr, dst)


def pageserver_seeds(corpus):
    dst = 100 << 8 | 1
    for wide in (False, True):
        recv = (ps_hdr(4, 0, 0, dst, wide=wide) +
                ps_hdr(6, 1, 0x10000, dst, PE_PRESENT, wide) + bytes(range(256)) * 16 +
                ps_hdr(6, 2, 0x30000, dst, PE_PARENT, wide) +
                ps_hdr(2, 1, 0x32000, dst, wide=wide) +
                ps_hdr(5, 0, 0, 7 << 8 | 2, wide=wide) +
                ps_hdr(4, 0, 0, 7 << 8 | 2, wide=wide) +
                ps_hdr(2, 1, 0, 7 << 8 | 2, wide=wide) +
                ps_hdr(0x1023, 0, 0, 0, wide=wide))
        lazy = (ps_hdr(7, 4, 0x10000, 100, wide=wide) + ps_hdr(7, 1, 0x21000, 100, wide=wide) +
                ps_hdr(7, 1, 0x50000, 100, wide=wide) +
                ps_hdr(7, 2, 0, 7, 0x8000, wide) + ps_hdr(7, 1, 0x4000, 7, 0x8000, wide) +
                ps_hdr(7, 1, 0, 99, wide=wide) + ps_hdr(0x1023, 0, 0, 0, wide=wide))
        w = "32" if wide else "24"
        for mode in ((0, 2) if not wide else (0,)):
            put(corpus, "pageserver", f"recv-{w}-{mode}", bytes([mode]) + recv)
            put(corpus, "pageserver", f"lazy-{w}-{mode}", bytes([mode | 1]) + lazy)


def ps_client_seeds(corpus):
    """fuzz_ps_client: a server's replies. Dump side: PARENT's int32, the
    task's OPEN2 byte, the shmem's, CLOSE's int32. Lazy side (1 page per
    GET): task 0x10000, shmem 0x1000, task 0x12000, shmem 0x3000, CLOSE."""
    i32 = lambda v: struct.pack("<i", v)
    put(corpus, "ps_client", "dump", b"\0" + i32(0) + b"\0" + b"\0" + i32(0))
    put(corpus, "ps_client", "dump-parent", b"\0" + i32(1) + b"\1" + b"\0" + i32(0))
    put(corpus, "ps_client", "dump-refused", b"\0" + i32(0) + b"\0" + b"\0" + i32(-5))
    page = bytes(range(256)) * 16
    gets = [(0x10000, 100), (0x1000, 7), (0x12000, 100), (0x3000, 7)]
    ok = b"".join(ps_hdr(6, 1, va, dst, PE_PRESENT) + page for va, dst in gets)
    put(corpus, "ps_client", "lazy", b"\1" + ok + i32(0))
    mixed = (ps_hdr(6, 0, 0x10000, 100) + ps_hdr(0x1100, 0, 0x1000, 2) +
             ps_hdr(6, 1, 0x12000, 100, PE_PRESENT) + page + ps_hdr(6, 0, 0x3000, 7) + i32(0))
    put(corpus, "ps_client", "lazy-holes-errors", b"\1" + mixed)
    four = b"".join(ps_hdr(6, 2, va, dst, PE_PRESENT) + page * 2 +
                    ps_hdr(6, 2, va + 0x2000, dst, PE_PRESENT) + page * 2 for va, dst in gets)
    put(corpus, "ps_client", "lazy-4-partial", bytes([1 | 3 << 1]) + four + i32(0))


def token_seeds(corpus):
    put(corpus, "token", "server-wrong", b"\0AMBRPS01" + bytes(32))
    put(corpus, "token", "server-right", b"\1" + bytes(40))
    put(corpus, "token", "server-nomagic", b"\1CRIU" + bytes(36))
    put(corpus, "token", "client", b"\2AMBRPS01" + bytes(range(32)) + struct.pack("<i", 0))
    put(corpus, "token", "client-refused", b"\2AMBRPS01" + bytes(32) + struct.pack("<i", -13))
    put(corpus, "token", "file", b"\3fuzzing-token-0123456789abcdef\n")


LAZY_MAGIC = 0x4C5A5931


def lz(type_, id_=0, pid=0, a=0, b=0, c=0, ranges=()):
    m = struct.pack("<IIIiQQQII", LAZY_MAGIC, type_, id_, pid, a, b, c, len(ranges), 0)
    return m + b"".join(struct.pack("<QQ", s, e) for s, e in ranges)


def lrec(ctl, msg):
    return bytes([ctl]) + struct.pack("<H", len(msg)) + msg


def lazy_seeds(corpus):
    (HELLO_RESTORE, HELLO_DAEMON, TASK, RESTORE_DONE, FORK, REMAP, REMOVE, UNMAP, GONE,
     REPLAY_END, DONE, ASK_PAGES, PAGES, PAGES_END) = range(1, 15)
    ranges = [(0x10000, 0x30000), (0x40000, 0x42000)]
    keeper = (lrec(0, lz(ASK_PAGES)) + lrec(0, lz(HELLO_RESTORE)) +
              lrec(4, lz(TASK, pid=1000, ranges=ranges)) +
              lrec(5, lz(FORK, 0x80000000, a=1)) + lrec(1, lz(REMAP, 1, a=0x10000, b=0x50000, c=0x2000)) +
              lrec(1, lz(REMOVE, 1, a=0x12000, b=0x14000)) + lrec(1, lz(UNMAP, 1, a=0x40000, b=0x42000)) +
              lrec(1, lz(GONE, 0x80000000)) + lrec(1, lz(DONE)))
    resume = (lrec(0, lz(HELLO_RESTORE)) + lrec(4, lz(TASK, pid=1000, ranges=ranges)) +
              lrec(0, lz(HELLO_DAEMON)))
    daemon = (lrec(6, lz(TASK, 1, 1000, ranges=ranges)) + lrec(6, lz(FORK, 0x80000000, a=1)) +
              lrec(2, lz(REMAP, 1, a=0x10000, b=0x60000, c=0x4000)) +
              lrec(2, lz(REMOVE, 0x80000000, a=0x12000, b=0x20000)) +
              lrec(2, lz(UNMAP, 1, a=0x40000, b=0x41000)) + lrec(2, lz(GONE, 1)) +
              lrec(2, lz(RESTORE_DONE)) + lrec(2, lz(REPLAY_END)))
    put(corpus, "lazy_msg", "keeper", keeper)
    put(corpus, "lazy_msg", "keeper-resume", resume)
    put(corpus, "lazy_msg", "daemon", daemon)


def lazy_client_seeds(corpus):
    """fuzz_lazy_client: the keeper's replies to LZ_ASK_PAGES. ctl: 1 a
    memfd of (ctl >> 2) & 3 pages, 2 an eventfd, 3 two memfds at once; the
    harness's pagemaps want pages-1.img of 1 page, pages-2.img of 2."""
    PAGES, PAGES_END, TASK = 13, 14, 3
    put(corpus, "lazy_client", "none", lrec(0, lz(PAGES_END)))
    put(corpus, "lazy_client", "one", lrec(1 | 1 << 2, lz(PAGES, a=1)) + lrec(0, lz(PAGES_END, a=1)))
    put(corpus, "lazy_client", "two", lrec(1 | 1 << 2, lz(PAGES, a=1)) +
        lrec(1 | 2 << 2, lz(PAGES, a=2)) + lrec(0, lz(PAGES_END, a=2)))
    put(corpus, "lazy_client", "wrong-size", lrec(1 | 3 << 2, lz(PAGES, a=1)) +
        lrec(1, lz(PAGES, a=2)) + lrec(0, lz(PAGES_END, a=2)))
    put(corpus, "lazy_client", "miscount", lrec(1 | 1 << 2, lz(PAGES, a=1)) + lrec(0, lz(PAGES_END, a=2)))
    put(corpus, "lazy_client", "eventfd", lrec(2, lz(PAGES, a=1)) + lrec(0, lz(PAGES_END, a=1)))
    put(corpus, "lazy_client", "two-fds", lrec(3 | 1 << 2, lz(PAGES, a=1)) + lrec(0, lz(PAGES_END, a=1)))
    put(corpus, "lazy_client", "end-with-fd", lrec(1, lz(PAGES_END)))
    put(corpus, "lazy_client", "unexpected", lrec(1, lz(TASK, 1, 1000, ranges=[(0x10000, 0x20000)])))
    put(corpus, "lazy_client", "hangup", lrec(1 | 1 << 2, lz(PAGES, a=1)))


def unpack(template):
    """A packed set's files: name -> contents."""
    data = open(template, "rb").read()
    at, files = 0, {}
    while at < len(data):
        nl = data[at]
        name = data[at + 1:at + 1 + nl].decode()
        (ln,) = struct.unpack_from("<I", data, at + 1 + nl)
        files[name] = data[at + 5 + nl:at + 5 + nl + ln]
        at += 5 + nl + ln
    return files


def image_seeds(corpus, template):
    """One seed per file of the template: its own contents (fuzz_image's names, sorted)."""
    files = unpack(template)
    names = sorted(n for n in files if not n.startswith("pages-") and n != "amber.sums")
    for i, n in enumerate(names):
        put(corpus, "image", n, bytes([i]) + files[n])


def files_seeds(corpus, tdir):
    """fuzz_files: one seed per file of every template, as the harness numbers them."""
    packs = sorted(n for n in os.listdir(tdir) if n.endswith(".pack"))
    for t, p in enumerate(packs):
        files = unpack(os.path.join(tdir, p))
        names = sorted(n for n in files if not n.startswith("pages-") and n != "amber.sums")
        for i, n in enumerate(names):
            put(corpus, "files", f"{p[:-5]}-{n}", bytes([t, i]) + files[n])
            # entry mode: each of the first entries' messages on its own
            for k, msg in enumerate(entries(n, files[n])[:4]):
                put(corpus, "files", f"{p[:-5]}-{n}-e{k}", bytes([t | 0x80, i, k]) + msg)


def entries(name, data):
    """The length-framed messages of an image, as fuzz_files walks them."""
    pos, out = (4 if name == "inventory.img" else 8), []
    while pos + 4 <= len(data):
        (ln,) = struct.unpack_from("<I", data, pos)
        if ln > len(data) - pos - 4:
            break
        out.append(data[pos + 4:pos + 4 + ln])
        pos += 4 + ln
    return out


def main():
    corpus, dumps = sys.argv[1], sys.argv[2:]
    pageserver_seeds(corpus)
    token_seeds(corpus)
    ps_client_seeds(corpus)
    lazy_seeds(corpus)
    lazy_client_seeds(corpus)
    put(corpus, "pagemap", "chain", b"\0" + chain_seed())
    image_seeds(corpus, os.path.join(HERE, "template.pack"))
    files_seeds(corpus, os.path.join(HERE, "templates"))
    for d in dumps:
        test = os.path.basename(os.path.dirname(d.rstrip("/"))).split("-")[2]
        put(corpus, "load", test, pack(d, 1))
        if test == "memfd":
            put(corpus, "load", test + "-lazy", pack(d, 3))
        pm = [n for n in os.listdir(d) if n.startswith(("pagemap-", "pages-", "mm-"))]
        put(corpus, "pagemap", test, pack(d, 1, pm))
        if test in ("sighandler", "memfd"):
            # amber.sums version 2; corpus/sums/{sighandler,memfd} are
            # version 1 lists of older dumps, kept for that path
            put(corpus, "sums", test + "-v2", pack(d, 0))


if __name__ == "__main__":
    main()
