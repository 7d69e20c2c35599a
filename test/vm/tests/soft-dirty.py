#!/usr/bin/python3
# Soft-dirty round trip: clear_refs 4 clears bit 55 of pagemap, a write sets it.
import mmap, os, struct, sys
PAGE = os.sysconf("SC_PAGE_SIZE")
def sd(addr):
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // PAGE * 8)
        return (struct.unpack("<Q", f.read(8))[0] >> 55) & 1
def clear():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("4")
n = 4
m = mmap.mmap(-1, n * PAGE)
import ctypes
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
for i in range(n):
    m[i * PAGE] = 1
before = [sd(base + i * PAGE) for i in range(n)]
clear()
after_clear = [sd(base + i * PAGE) for i in range(n)]
m[1 * PAGE] = 2
m[3 * PAGE] = 2
after_write = [sd(base + i * PAGE) for i in range(n)]
print("soft-dirty: written", before, "cleared", after_clear, "rewritten", after_write)
ok = before == [1] * n and after_clear == [0] * n and after_write == [0, 1, 0, 1]
print("PASS soft-dirty" if ok else "FAIL soft-dirty")
sys.exit(0 if ok else 1)
