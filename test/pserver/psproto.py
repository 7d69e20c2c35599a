"""A page-server client written from the protocol description, not from
amber's C code: CRIU's page-xfer.c wire format (see src/pageserver/proto.h for
the facts and their source) and amber's token handshake
(src/pageserver/conn.h).

Used by test_pserver.py to act as a CRIU dump client, a lazy-pages client
and a hostile client."""

import hashlib
import hmac
import re
import socket
import struct
import time
from pathlib import Path

PS_IOV_ADD, PS_IOV_HOLE, PS_IOV_OPEN, PS_IOV_OPEN2 = 1, 2, 3, 4
PS_IOV_PARENT, PS_IOV_ADD_F, PS_IOV_GET = 5, 6, 7
PS_IOV_CLOSE, PS_IOV_FORCE_CLOSE = 0x1023, 0x1024
PS_IOV_ERR = 0x1100  # amber's error reply
PE_PARENT, PE_LAZY, PE_PRESENT = 1, 2, 4
PS_TYPE_PID, PS_TYPE_SHMEM = 1, 2
PS_GET_SHMEM = 0x8000  # amber's GET flag: dst_id is a shmid, vaddr an offset
PAGE = 4096
# amber's local backend cuts present runs into entries of this many pages
# (src/mem/xfer.h; not part of the protocol, read here so the two agree)
ENTRY_PAGES = int(re.search(r"#define XFER_ENTRY_PAGES (\d+)",
                            (Path(__file__).resolve().parents[2] / "src" / "mem" / "xfer.h")
                            .read_text()).group(1))

AUTH_MAGIC = b"AMBRPS01"
AUTH_CONTEXT = b"amber-ps-auth-v1"


def wait_until(pred, timeout=10.0, interval=0.01):
    """Polls pred() until it returns a true value or `timeout` seconds have
    passed; returns its last value. For waiting on a state instead of a
    fixed sleep: the caller asserts on what it returns."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def split_entries(vaddr, nr, flags):
    """The (vaddr, nr_pages, flags) entries amber writes for one present run."""
    out = []
    for done in range(0, nr, ENTRY_PAGES):
        out.append((vaddr + done * PAGE, min(ENTRY_PAGES, nr - done), flags))
    return out


def dst(type_, ident):
    return (ident << 8) | type_


def pack(cmd, nr=0, vaddr=0, dst_id=0, flags=0, wire=24):
    word = ((flags << 16) | cmd) & 0xffffffff
    if wire == 32:
        return struct.pack("<IIQQQ", word, 0, nr & (2**64 - 1), vaddr & (2**64 - 1),
                           dst_id & (2**64 - 1))
    return struct.pack("<IIQQ", word, nr & 0xffffffff, vaddr & (2**64 - 1),
                       dst_id & (2**64 - 1))


def unpack(data, wire=24):
    if wire == 32:
        word, _, nr, vaddr, dst_id = struct.unpack("<IIQQQ", data)
    else:
        word, nr, vaddr, dst_id = struct.unpack("<IIQQ", data)
    return {"cmd": word & 0xffff, "flags": word >> 16, "nr": nr, "vaddr": vaddr,
            "dst": dst_id}


class Client:
    def __init__(self, port, host="127.0.0.1", wire=24, timeout=20):
        self.wire = wire
        self.sk = socket.create_connection((host, port), timeout=timeout)

    def close(self):
        self.sk.close()

    def send(self, data):
        self.sk.sendall(data)

    def recv(self, n):
        """Exactly n bytes, or fewer if the server closed the connection."""
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sk.recv(n - len(buf))
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        return buf

    def at_eof(self):
        try:
            return self.sk.recv(1) == b""
        except ConnectionResetError:
            return True

    def auth(self, token):
        chal = self.recv(len(AUTH_MAGIC) + 32)
        assert chal[:len(AUTH_MAGIC)] == AUTH_MAGIC, chal
        mac = hmac.new(token, chal[len(AUTH_MAGIC):] + AUTH_CONTEXT, hashlib.sha256)
        self.send(AUTH_MAGIC + mac.digest())
        return struct.unpack("<i", self.recv(4))[0]

    def req(self, cmd, nr=0, vaddr=0, dst_id=0, flags=0):
        self.send(pack(cmd, nr, vaddr, dst_id, flags, self.wire))

    def reply(self):
        data = self.recv(self.wire)
        return unpack(data, self.wire) if len(data) == self.wire else None

    def open2(self, dst_id):
        self.req(PS_IOV_OPEN2, dst_id=dst_id)
        return self.recv(1)

    def add(self, dst_id, vaddr, data, flags=PE_PRESENT):
        self.req(PS_IOV_ADD_F, len(data) // PAGE, vaddr, dst_id, flags)
        self.send(data)

    def close_xfer(self):
        self.req(PS_IOV_CLOSE)
        got = self.recv(4)
        return struct.unpack("<i", got)[0] if len(got) == 4 else None

    def get(self, pid, vaddr, nr, flags=0):
        """(reply header, data)."""
        self.req(PS_IOV_GET, nr, vaddr, pid, flags)
        rep = self.reply()
        data = b""
        if rep and rep["cmd"] == PS_IOV_ADD_F and rep["nr"]:
            data = self.recv(rep["nr"] * PAGE)
        return rep, data

    def get_shmem(self, shmid, off, nr):
        """(reply header, data) of the shmem object shmid at offset off."""
        return self.get(shmid, off, nr, PS_GET_SHMEM)


def read_varint(buf, pos):
    val = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        val |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return val, pos


def decode_fields(msg):
    """Varint fields of one protobuf message: {field number: value}."""
    out, pos = {}, 0
    while pos < len(msg):
        key, pos = read_varint(msg, pos)
        if key & 7 != 0:
            raise ValueError(f"unexpected wire type in {key}")
        out[key >> 3], pos = read_varint(msg, pos)
    return out


def read_pagemap(path):
    """(pages_id, [entry fields...]) of a pagemap image."""
    data = open(path, "rb").read()
    pos, msgs = 8, []  # two magics
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        msgs.append(decode_fields(data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return msgs[0][1], msgs[1:]
