#!/usr/bin/python3
"""The host half of bench/pkram/downtime's -live variants: one redis client
connection that is meant to outlive a kernel update of the guest.

live-client.py PORT TOKEN RESULT

Connects to 127.0.0.1:PORT (test/vm/run --hostfwd PORT:6379 forwards it to
the guest's redis) until a PING answers, then waits, holding the connection
and sending nothing, until a guest's io directory (/tmp/amber-vm.*) holds
dt-live-go with TOKEN in it: the guest's redis was restored in the next
kernel. Then, on the same socket, PING and GET check:key. RESULT gets one
line: "kept PONG VALUE" or "lost WHY", and the times (host clock) of the
first PONG, of the go and of the answers. It then holds the connection
(the guest looks for it in CLIENT LIST) until it is killed.
"""
import glob
import socket
import sys
import time

port, token, result = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.time()


def say(line):
    with open(result, "w") as f:
        f.write(line + "\n")


def reply(s):
    """One RESP reply: a simple string, an error or a bulk string."""
    buf = b""
    while b"\r\n" not in buf:
        b = s.recv(4096)
        if not b:
            raise ConnectionError("closed by the peer")
        buf += b
    head, rest = buf.split(b"\r\n", 1)
    if head[:1] in (b"+", b"-"):
        return head.decode()
    if head[:1] == b"$":
        n = int(head[1:])
        if n < 0:
            return "(nil)"
        while len(rest) < n + 2:
            b = s.recv(4096)
            if not b:
                raise ConnectionError("closed by the peer")
            rest += b
        return rest[:n].decode()
    return head.decode()


s, last = None, "nothing"
while time.time() - t0 < 900:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"PING\r\n")
        last = reply(s)
        if last == "+PONG":
            break
    except OSError as e:
        last = f"{type(e).__name__}: {e}"
    if s:
        s.close()
        s = None
    time.sleep(1)
if not s:
    say(f"lost: no PONG in 900 s (last: {last})")
    sys.exit(1)
t_pong = time.time()
s.settimeout(None)

t_go = None
while time.time() - t_pong < 1800 and t_go is None:
    for f in glob.glob("/tmp/amber-vm.*/dt-live-go"):
        try:
            if open(f).read().strip() == token:
                t_go = time.time()
        except OSError:
            pass
    time.sleep(0.2)
if t_go is None:
    say("lost: no go from the guest in 1800 s")
    sys.exit(1)
s.settimeout(60)
try:
    s.sendall(b"PING\r\n")
    r1 = reply(s)
    t_r1 = time.time()
    s.sendall(b"GET check:key\r\n")
    r2 = reply(s)
except OSError as e:
    say(f"lost: {type(e).__name__}: {e} (go at +{t_go - t_pong:.1f} s after the first PONG)")
    sys.exit(1)
say(f"{'kept' if r1 == '+PONG' else 'lost'} {r1.lstrip('+')} {r2} "
    f"(the same socket: first PONG, {t_go - t_pong:.1f} s later the go, PONG {t_r1 - t_go:.2f} s after it)")
# the guest looks for this connection in CLIENT LIST now: hold it until
# the bench ends us (it does once the guest is done)
time.sleep(600)
sys.exit(0 if r1 == "+PONG" else 1)
