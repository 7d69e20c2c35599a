#!/usr/bin/python3
"""A program holding checked memory state, for the kexec guest suite.

kexec-workload.py MIB REPORT: fills MIB MiB with random data, each page
tagged with its own offset (so a page restored at the wrong place is
seen), keeps its crc32 and a counter that a loop increments. On SIGUSR1
it writes "COUNTER CRC ok|BAD MIB" to REPORT (renamed into place): BAD if
the memory no longer matches the crc taken at start. It writes the report
once when ready. It holds no file open, so it restores anywhere the same
paths exist. SIGUSR2 writes the same report without the check (a quick
"are you answering").

SIGHUP changes one eighth of the memory (the first eighth, then the next,
...) to new random data, tagged the same way, takes the crc again and
writes the report: so a pre-dump before it and a dump after hold
different bytes there (kexec-predump.sh).

With KEXEC_WL_HOT_MIB=N in the environment, the loop keeps rewriting the
first N MiB with their own contents (256 KiB a turn), so that those pages
are written again and again while the crc stays the same: a working set,
for an incremental dump to find (bench/pkram/downtime).

kexec-workload.py MIB REPORT FILE: the MIB MiB are a file mapped shared
instead (a VMM's guest RAM on a tmpfs): the fd is closed once mapped.
"""
import mmap
import os
import select
import signal
import struct
import sys
import zlib

mib = int(sys.argv[1])
report = sys.argv[2]
seed = os.urandom(1 << 20)
if len(sys.argv) > 3:
    fd = os.open(sys.argv[3], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, mib << 20)
    buf = mmap.mmap(fd, mib << 20, mmap.MAP_SHARED)
    os.close(fd)
    for off in range(0, mib << 20, 1 << 20):
        buf[off:off + (1 << 20)] = seed
else:
    buf = bytearray(seed) * mib
for off in range(0, len(buf), 4096):
    struct.pack_into("Q", buf, off, off ^ 0x616d626572)
crc = zlib.crc32(buf)
counter = 0


def write_report(check):
    ok = "ok" if not check or zlib.crc32(buf) == crc else "BAD"
    tmp = report + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{counter} {crc} {ok} {mib}\n")
    os.rename(tmp, report)


changes = 0


def change():
    global crc, changes
    part = max(len(buf) // 8 // 4096, 1) * 4096
    off = (changes * part) % len(buf)
    end = min(off + part, len(buf))
    new = os.urandom(1 << 20)
    for at in range(off, end, 1 << 20):
        n = min(1 << 20, end - at)
        buf[at:at + n] = new[:n]
    for at in range(off, end, 4096):
        struct.pack_into("Q", buf, at, at ^ 0x616d626572)
    changes += 1
    crc = zlib.crc32(buf)
    write_report(False)


signal.signal(signal.SIGHUP, lambda s, f: change())
signal.signal(signal.SIGUSR1, lambda s, f: write_report(True))
signal.signal(signal.SIGUSR2, lambda s, f: write_report(False))
hot = min(int(os.environ.get("KEXEC_WL_HOT_MIB", "0")), mib) << 20
step = 256 << 10
pos = 0
write_report(False)
# not time.sleep(): it waits for an absolute CLOCK_MONOTONIC deadline,
# and the monotonic clock starts again from zero in the next kernel
while True:
    counter += 1
    if hot:
        buf[pos:pos + step] = buf[pos:pos + step]
        pos = (pos + step) % hot
    select.select([], [], [], 0.005)
