"""The page server's limits against clients that hold it or bloat it.

The server serves one client at a time (the next ones wait, accepted, at
most `--max-connections` open in all; past that a new one is reset at
once), so one that stays silent or trickles its bytes must be dropped:
`--timeout SECONDS` bounds each read and, once a message has begun, the
whole message (conn.c, ps_conn_recv()).  A client announcing a huge run is
refused from its header, before any buffer is sized from it.  The tests
use a 2 s timeout; the client's sleeps only pace it, nothing is asserted
about how long anything took.
"""

import select
import subprocess
import time

import pytest

import psproto as P
from test_pserver import (PID, amber, check_dump_dir, rest_of_dump, send_dump,  # noqa: F401
                          servers)

TIMEOUT = 2


def dropped(c):
    """True when the server closed the connection (whatever it said first)."""
    r, _, _ = select.select([c.sk], [], [], 0)
    if not r:
        return False
    try:
        while c.sk.recv(4096):
            pass
    except (ConnectionResetError, BlockingIOError):
        pass
    return True


def test_slowloris_dropped(tmp_path, servers):
    """One header byte per second, each read well inside the timeout: the
    header as a whole is not, so the client is dropped long before its 24
    bytes are in; then a normal client is served."""
    s = servers(tmp_path / "img", "--timeout", TIMEOUT)
    c = P.Client(s.port)
    frame = P.pack(P.PS_IOV_OPEN2, dst_id=P.dst(P.PS_TYPE_PID, PID))
    sent = 0
    for b in frame:
        if dropped(c):
            break
        try:
            c.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        time.sleep(TIMEOUT / 2)
    else:
        P.wait_until(lambda: dropped(c), timeout=30)
    assert sent < len(frame), f"all {len(frame)} bytes trickled in and it was not dropped"
    c.close()
    assert P.wait_until(lambda: "too slow" in s.logtext(), timeout=30), s.logtext()
    assert s.alive(), s.stderr()
    good = P.Client(s.port)
    assert send_dump(good) == 0
    good.close()
    assert s.wait() == 0
    check_dump_dir(tmp_path / "img")


def test_idle_client_dropped_next_served(tmp_path, servers):
    """A client that connects and says nothing holds the server only until
    the timeout; a second client, queued behind it, is then served."""
    s = servers(tmp_path / "img", "--timeout", TIMEOUT)
    idle = P.Client(s.port)
    queued = P.Client(s.port, timeout=60)
    assert send_dump(queued) == 0  # waits in the backlog until idle is dropped
    queued.close()
    assert P.wait_until(lambda: dropped(idle), timeout=30)
    idle.close()
    assert s.wait() == 0
    assert "Connection timed out" in s.logtext() or "timed out" in s.logtext(), s.logtext()
    check_dump_dir(tmp_path / "img")


def vm_hwm_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


@pytest.mark.parametrize("wire,nr", [(24, (1 << 20) + 1), (24, (1 << 32) - 1),
                                     (32, 1 << 40), (32, (1 << 64) - 1)])
def test_huge_run_refused_without_allocation(tmp_path, servers, wire, nr):
    """A run of nr pages announced with present data: refused from the
    header (E2BIG), the server's peak RSS does not grow by the announced
    size, and it takes a good dump afterwards."""
    s = servers(tmp_path / "img", "--timeout", TIMEOUT)
    before = vm_hwm_kb(s.proc.pid)
    c = P.Client(s.port, wire=wire)
    assert c.open2(P.dst(P.PS_TYPE_PID, PID)) == b"\0"
    c.req(P.PS_IOV_ADD_F, nr, 0x400000, P.dst(P.PS_TYPE_PID, PID), P.PE_PRESENT)
    c.send(b"\xaa" * P.PAGE)
    rep = c.reply()
    assert rep is not None and rep["cmd"] == P.PS_IOV_ERR, rep
    assert rep["dst"] in (7, 34), rep  # E2BIG, or ERANGE for a run past the address space
    c.close()
    after = vm_hwm_kb(s.proc.pid)
    assert after - before < 64 << 10, f"peak RSS grew from {before} to {after} kB"
    good = P.Client(s.port)
    assert send_dump(good) == 0
    good.close()
    assert s.wait() == 0


@pytest.mark.parametrize("bad", ["0", "-1", "x", "86401"])
def test_timeout_option_checked(tmp_path, bad):
    r = subprocess.run([amber(), "page-server", "--port", "0", "-D", str(tmp_path),
                        "--timeout", bad], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "--timeout" in (r.stdout + r.stderr), r


def reset(c, timeout=10):
    """True when the server reset (refused) the connection within timeout."""
    c.sk.settimeout(timeout)
    try:
        c.sk.recv(1)  # data or a clean EOF: not a refusal
        return False
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def connect(port):
    """A Client, or None if the server reset it before connect() returned."""
    try:
        return P.Client(port)
    except ConnectionResetError:
        return None


def refused(c, timeout=10):
    return c is None or reset(c, timeout)


def test_connections_capped(tmp_path, servers):
    """--max-connections 3: a client in the middle of its dump, then five
    more connections: two wait their turn, the other three are reset at
    once and logged; the first client's dump goes on and completes."""
    s = servers(tmp_path / "img", "--max-connections", 3, "--timeout", 30)
    first = P.Client(s.port)
    assert first.open2(P.dst(P.PS_TYPE_PID, PID)) == b"\0"  # being served
    extra = [connect(s.port) for _ in range(5)]
    assert [refused(c) for c in extra[2:]] == [True] * 3
    assert [refused(c, timeout=0.5) for c in extra[:2]] == [False] * 2, "a waiting one was reset"
    assert P.wait_until(lambda: s.logtext().count("connection refused: 3 open already") == 3,
                        timeout=10), s.logtext()
    assert rest_of_dump(first) == 0
    first.close()
    assert s.wait() == 0
    check_dump_dir(tmp_path / "img")
    for c in extra:
        if c:
            c.close()


def test_connection_flood_logged_briefly(tmp_path, servers):
    """--max-connections 1 and 200 connections while one is served: every
    one is reset, the log names only the first ten, the dump completes."""
    s = servers(tmp_path / "img", "--max-connections", 1, "--timeout", 30)
    first = P.Client(s.port)
    assert first.open2(P.dst(P.PS_TYPE_PID, PID)) == b"\0"
    for _ in range(200):
        c = connect(s.port)
        assert refused(c), "a connection past the cap was not reset"
        if c:
            c.close()
    assert rest_of_dump(first) == 0
    first.close()
    assert s.wait() == 0
    assert s.logtext().count("connection refused") == 10, s.logtext()
    check_dump_dir(tmp_path / "img")


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1025"])
def test_max_connections_option_checked(tmp_path, bad):
    r = subprocess.run([amber(), "page-server", "--port", "0", "-D", str(tmp_path),
                        "--max-connections", bad], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "--max-connections" in (r.stdout + r.stderr), r
