#!/usr/bin/env python3
# Build a hand-made PKRAM super block, stream and run list inside the pages
# of a tmpfs file, to test how the next kernel handles a corrupt tree.
#
#   pkram-craft.py craft FILE MODE   write FILE; print the crafted super block
#                                    pfn; remember the pfns in FILE.pfns
#   pkram-craft.py verify FILE       exit 1 if FILE's pages moved since
#
# MODE corrupt-stream: valid super block and run list (so the next kernel
#   reserves every page), one tree "tree" whose stream has a root, a file,
#   two folio records and then a bad record: the load must create the file,
#   take the two folios, hit the bad record, remove everything, mount empty
#   and give every page back.
# MODE bad-csum: the same with a wrong super block checksum: nothing may be
#   reserved.
#
# FILE must be in a tmpfs mounted with pkram=NAME that is then preserved, so
# that kexec_file_load() keeps the new kernel's segments off these pages;
# pass pkram=<printed pfn> (not /sys/kernel/pkram) to the next kernel.
# Layouts follow mm/pkram.c and mm/shmem.c of kernel/patches.
import ctypes
import mmap
import os
import struct
import sys

PAGE = 4096
HDR = struct.Struct("<QII")		# next_pfn, used, csum
PAYLOAD = PAGE - HDR.size
RUNS_PER_PAGE = PAYLOAD // 16
MAGIC, VERSION = 0x4D4152414B50, 1
DATA_PAGES = 4096			# 16 MiB that the next kernel must reserve
RUN_PAGES = (DATA_PAGES + 1 + 16) // RUNS_PER_PAGE + 1
NPAGES = 1 + 1 + RUN_PAGES + DATA_PAGES	# sb, stream, run pages, data
SHPK_ROOT, SHPK_FILE, SHPK_FOLIO = 1, 3, 4


def csum(b):
	m = (1 << 64) - 1
	h = 0xCBF29CE484222325
	n = len(b) // 8 * 8
	for (w,) in struct.iter_unpack("<Q", b[:n]):
		h = ((h ^ w) * 0x100000001B3) & m
		h ^= h >> 29
	for c in b[n:]:
		h = ((h ^ c) * 0x100000001B3) & m
	return (h ^ (h >> 32)) & 0xFFFFFFFF


def page(next_pfn, payload):
	assert len(payload) <= PAYLOAD
	return (HDR.pack(next_pfn, len(payload), csum(payload)) + payload).ljust(PAGE, b"\0")


def rec(typ, id_, parent, name, mode, size, nr_pages):
	# struct shmem_pkram_rec: id parent namelen mode uid gid, size, a/m/ctime,
	# a/m/ctime_ns pad, nr_pages
	return struct.pack("<I6IQqqq4IQ", typ, id_, parent, len(name), mode, 0, 0,
			   size, 1, 2, 3, 0, 0, 0, 0, nr_pages) + name


def pfns_of(mm, n):
	for i in range(n):			# fault every page in
		mm[i * PAGE]
	base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
	with open("/proc/self/pagemap", "rb") as f:
		f.seek(base // PAGE * 8)
		raw = f.read(n * 8)
	out = []
	for (e,) in struct.iter_unpack("<Q", raw):
		if not e >> 63:
			sys.exit("pkram-craft: page not present")
		out.append(e & ((1 << 55) - 1))
	if not all(out):
		sys.exit("pkram-craft: pagemap shows no pfns (not root?)")
	return out


def runs_of(pfns):
	runs = []
	for p in sorted(pfns):
		if runs and runs[-1][0] + runs[-1][1] == p:
			runs[-1][1] += 1
		else:
			runs.append([p, 1])
	return runs


def craft(path, mode):
	fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
	os.ftruncate(fd, NPAGES * PAGE)
	mm = mmap.mmap(fd, NPAGES * PAGE, mmap.MAP_SHARED)
	for i in range(NPAGES):			# allocate every page
		mm[i * PAGE:i * PAGE + 8] = struct.pack("<Q", 0x5A5A5A5A00000000 | i)
	pfn = pfns_of(mm, NPAGES)
	sb, stream, runp, data = pfn[0], pfn[1], pfn[2:2 + RUN_PAGES], pfn[2 + RUN_PAGES:]

	s = rec(SHPK_ROOT, 0, 0, b"", 0o40755, 0, 0)
	s += rec(SHPK_FILE, 1, 0, b"file", 0o100644, 2 * PAGE, 2)
	for i in range(2):			# order, nr, index, pfn
		s += struct.pack("<IIIQQ", SHPK_FOLIO, 0, 1, i, data[i])
	s += struct.pack("<I", 77)		# no such record type
	mm[PAGE:2 * PAGE] = page(0, s)

	runs = runs_of([stream] + runp + data)
	used = (len(runs) + RUNS_PER_PAGE - 1) // RUNS_PER_PAGE
	assert used <= RUN_PAGES
	for i in range(used):
		chunk = runs[i * RUNS_PER_PAGE:(i + 1) * RUNS_PER_PAGE]
		body = b"".join(struct.pack("<QQ", p, n) for p, n in chunk)
		nxt = runp[i + 1] if i + 1 < used else 0
		mm[(2 + i) * PAGE:(3 + i) * PAGE] = page(nxt, body)

	tree = b"tree".ljust(48, b"\0") + struct.pack("<QQQQ", stream, runp[0], len(runs),
						     sum(n for _, n in runs))
	hdr = struct.pack("<QIIII", MAGIC, VERSION, 0, 1, 0)
	sbp = bytearray((hdr + tree).ljust(PAGE, b"\0"))
	c = csum(bytes(sbp))
	if mode == "bad-csum":
		c ^= 1
	elif mode != "corrupt-stream":
		sys.exit("pkram-craft: unknown mode " + mode)
	sbp[12:16] = struct.pack("<I", c)
	mm[0:PAGE] = bytes(sbp)
	mm.flush()
	with open(path + ".pfns", "w") as f:
		f.write(" ".join(map(str, pfn)))
	print(sb)
	print("pkram-craft: %s: super block pfn %d, %d runs in %d run page(s), %d pages listed"
	      % (mode, sb, len(runs), used, sum(n for _, n in runs)), file=sys.stderr)


def verify(path):
	fd = os.open(path, os.O_RDONLY)
	# a private writable mapping of a read-only file: reads map the page
	# cache pages themselves, and ctypes can take its address
	mm = mmap.mmap(fd, NPAGES * PAGE, access=mmap.ACCESS_COPY)
	now = pfns_of(mm, NPAGES)
	with open(path + ".pfns") as f:
		before = list(map(int, f.read().split()))
	if now != before:
		sys.exit("pkram-craft: pages of %s moved before they were pinned" % path)


if __name__ == "__main__":
	if len(sys.argv) == 4 and sys.argv[1] == "craft":
		craft(sys.argv[2], sys.argv[3])
	elif len(sys.argv) == 3 and sys.argv[1] == "verify":
		verify(sys.argv[2])
	else:
		sys.exit(__doc__ or "usage: pkram-craft.py craft FILE MODE | verify FILE")
