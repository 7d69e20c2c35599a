#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Packs an image directory into the harnesses' image-set format (common.h).

    pack.py [--flags N] [--only NAME,...] DIR [OUT]

Every *.img and amber.sums of DIR (and of DIR/parent/..., as a chain lays
them out) is packed; pages-N.img as an 8-byte sparse-size record, so the
pack stays small. --flags prepends one flags byte (fuzz_load's). Writes
to OUT or stdout.
"""
import os
import struct
import sys


def records(top, rel=""):
    here = os.path.join(top, rel)
    for name in sorted(os.listdir(here)):
        path = os.path.join(here, name)
        if name == "parent" and os.path.isdir(path):
            yield from records(top, os.path.join(rel, "parent"))
            continue
        if not (name.endswith(".img") or name == "amber.sums") or not os.path.isfile(path):
            continue
        if name.startswith("pages-"):
            data = struct.pack("<Q", os.path.getsize(path))
        else:
            with open(path, "rb") as f:
                data = f.read()
        yield os.path.join(rel, name), data


def main():
    args = sys.argv[1:]
    flags, only = None, None
    while args and args[0].startswith("--"):
        if args[0] == "--flags":
            flags = int(args[1], 0)
        elif args[0] == "--only":
            only = set(args[1].split(","))
        args = args[2:]
    out = bytearray()
    if flags is not None:
        out.append(flags)
    for name, data in records(args[0]):
        if only and os.path.basename(name) not in only:
            continue
        n = name.encode()
        out += bytes([len(n)]) + n + struct.pack("<I", len(data)) + data
    if len(args) > 1:
        with open(args[1], "wb") as f:
            f.write(out)
    else:
        sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
