"""The network lock (--network-lock), checked from outside.

The dumped tree (a Python client) and amber run in network namespace A;
the peer (a Python server driven through its stdin) runs in namespace B,
across a veth pair. The tree echoes whatever the peer sends.

While a dump is stalled (AMBER_FAULT=dump-core:sleep, the tree frozen),
the lock must be in place (the nftables table, or the iptables rules) and
the peer's segments dropped, not rejected: the peer retransmits and its
connection stays ESTABLISHED. A failed dump (each fault stage) removes
the lock itself; a SIGKILLed amber leaves it, and `amber net-unlock` or a
(failing) restore of the same directory removes it; each time the
connection then works again: the peer's data comes back echoed. skip
takes no lock, and a tree without connections gets no table.

The successful paths dump the connection with --tcp-established: the
lock stays until the restore has put the connection back, and the peer,
which never saw a reset, talks to the restored tree. A tree that closed
its side while a rule in B drops its FIN (FIN_WAIT1, or LAST_ACK after
the peer's FIN) is saved; restored, it sends the FIN again and the peer
reads the data and the end of stream.
"""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from zdtm_runner import amber_path, read_text, sanitizer_env, sanitizer_reports, wait_until

NS_A, NS_B = f"amb-nl{os.getpid()}a", f"amb-nl{os.getpid()}b"
ADDR_A, ADDR_B = "10.213.7.1", "10.213.7.2"
ADDR6_A, ADDR6_B = "fd00:213:7::1", "fd00:213:7::2"
# where the tree connects to, and where the peer listens
TARGETS = {"4": (ADDR_B, ADDR_B), "6": (ADDR6_B, ADDR6_B),
           "mapped": ("::ffff:" + ADDR_B, ADDR_B)}
TCP_ESTABLISHED = 1

TREE = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
while True:
    d = c.recv(4096)
    if not d:
        break
    c.sendall(d)
"""

# Closes its side once the peer says go (a byte) or is done (its FIN);
# the FIN then meets the peer's drop rule: FIN_WAIT1 or LAST_ACK.
TREE_FIN = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.recv(16)
c.sendall(b"fin-data")
c.shutdown(socket.SHUT_WR)
open("/proc/self/comm", "w").write("fin-sent")
while True:
    time.sleep(1000)
"""

# Commands on stdin, one JSON line back for each: "send TEXT", "shut", "info".
PEER = """
import json, socket, struct, sys
l = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 0))
l.listen()
print(l.getsockname()[1], flush=True)
s, _ = l.accept()
s.setblocking(False)
got, err = b"", ""
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\\n").partition(" ")
    if cmd == "send":
        s.send(arg.encode())
    if cmd == "shut":
        s.shutdown(socket.SHUT_WR)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                err = err or "closed"
                break
            got += d
    except BlockingIOError:
        pass
    except OSError as e:
        err = err or str(e)
    ti = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    print(json.dumps({"state": ti[0], "unacked": struct.unpack_from("I", ti, 24)[0],
                      "retrans": struct.unpack_from("I", ti, 100)[0],
                      "got": got.decode(errors="replace"), "err": err}), flush=True)
"""


def ns_cmd(ns, *argv):
    return ["nsenter", f"--net=/run/netns/{ns}", *map(str, argv)]


def run(argv, check=True):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {r.stdout}")
    return r


@pytest.fixture(scope="module")
def netns():
    for tool in ("ip", "nsenter", "nft", "iptables", "iptables-save"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (iproute2, util-linux, nftables, iptables)")
    va, vb = f"anl{os.getpid() % 100000}a", f"anl{os.getpid() % 100000}b"
    try:
        run(["ip", "netns", "add", NS_A])
        run(["ip", "netns", "add", NS_B])
        run(["ip", "link", "add", va, "netns", NS_A, "type", "veth", "peer", "name", vb,
             "netns", NS_B])
        for ns, dev, addr, addr6 in ((NS_A, va, ADDR_A, ADDR6_A), (NS_B, vb, ADDR_B, ADDR6_B)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev])
            run(["ip", "-n", ns, "addr", "add", f"{addr6}/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        yield
    finally:
        for ns in (NS_A, NS_B):
            run(["ip", "netns", "del", ns], check=False)


class Peer:
    def __init__(self, addr):
        self.p = subprocess.Popen(ns_cmd(NS_B, "/usr/bin/python3", "-c", PEER, addr),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.p.stdout.readline())

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline()
        if not reply:
            pytest.fail("the peer died", pytrace=False)
        return json.loads(reply)

    def info(self):
        return self.cmd("info")


class Conn:
    """The peer in B, and the tree in A connected to it (the tree echoes)."""

    def __init__(self, program=TREE, connect=True, family="4"):
        target, listen = TARGETS[family]
        self.peer = Peer(listen) if connect else None
        args = [target, self.peer.port] if connect else []
        self.tree = subprocess.Popen(ns_cmd(NS_A, "/usr/bin/python3", "-c", program, *args),
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if connect:
            self.peer.info()  # returns once the connection is accepted

    def works(self, text):
        """The connection carries @text to the tree and back."""
        self.peer.cmd(f"send {text}")
        info = wait_until(lambda: (lambda i: i if text in i["got"] or i["err"] else None)(
            self.peer.info()), timeout=60, interval=0.1)
        assert info and text in info["got"] and not info["err"], info
        assert info["state"] == TCP_ESTABLISHED, info

    def close(self):
        for p in (self.tree, self.peer and self.peer.p):
            if p and p.poll() is None:
                p.kill()
            if p:
                p.wait()


@pytest.fixture
def conn(netns):
    c = Conn()
    yield c
    c.close()


def lock_state(port):
    """The lock's traces in A: CRIU tables and the rules naming @port."""
    tables = [l for l in run(ns_cmd(NS_A, "nft", "list", "tables")).stdout.splitlines()
              if "CRIU-" in l]
    rules = []
    for tool in ("iptables", "ip6tables"):
        rules += [l for l in run(ns_cmd(NS_A, tool, "-S")).stdout.splitlines()
                  if "DROP" in l and str(port) in l]
    return tables, rules


def assert_locked(method, port):
    tables, rules = lock_state(port)
    if method == "nftables":
        assert len(tables) == 1 and not rules, (tables, rules)
    else:
        assert not tables and len(rules) == 2, (tables, rules)


def assert_unlocked(port, imgdir):
    assert lock_state(port) == ([], []), lock_state(port)
    assert not (imgdir / "amber.netlock").exists()


def amber_cmd(imgdir, args, log):
    return ns_cmd(NS_A, amber_path(), *args, "-v4", "-o", imgdir / log)


def amber(imgdir, args, log, fault=None):
    env = sanitizer_env(imgdir)
    if fault:
        env["AMBER_FAULT"] = fault
    r = subprocess.run(amber_cmd(imgdir, args, log), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env, timeout=120)
    return r, read_text(imgdir / log) + r.stdout


def stalled_dump(imgdir, pid, extra):
    """An `amber dump` stopped with the tree frozen and the lock taken."""
    env = sanitizer_env(imgdir)
    env["AMBER_FAULT"] = "dump-core:sleep"
    p = subprocess.Popen(amber_cmd(imgdir, ["dump", "-t", pid, "-D", imgdir, *extra],
                                   "stalled.log"),
                         stdin=subprocess.DEVNULL, env=env)
    if not wait_until(lambda: "sleeping at stage dump-core" in
                      read_text(imgdir / "stalled.log") or p.poll() is not None, timeout=60):
        p.kill()
    if p.poll() is not None:
        pytest.fail("amber did not stall at dump-core:\n" + read_text(imgdir / "stalled.log"),
                    pytrace=False)
    return p


def kill_amber(p):
    p.send_signal(signal.SIGKILL)
    p.wait()


def assert_dropped(peer):
    """The peer's segment is retransmitted, never acknowledged, never reset."""
    peer.cmd("send held")
    info = wait_until(lambda: (lambda i: i if i["retrans"] >= 1 or i["err"] else None)(
        peer.info()), timeout=60, interval=0.05)
    assert info and not info["err"], info
    assert info["state"] == TCP_ESTABLISHED and info["unacked"] >= 1, info


def no_sanitizer_reports(imgdir):
    san = sanitizer_reports(imgdir)
    assert not san, "\n".join(san[:20])


@pytest.fixture
def imgdir(tmp_path):
    d = tmp_path / "img"
    d.mkdir(mode=0o700)
    return d


STALLED = [("nftables", "4"), ("iptables", "4"), ("nftables", "6"), ("iptables", "6"),
           ("nftables", "mapped"), ("iptables", "mapped")]


@pytest.fixture
def conn_family(netns, request):
    c = Conn(family=request.param)
    yield c
    c.close()


@pytest.mark.parametrize("method,conn_family", STALLED, ids=[f"{m}-ipv{f}" for m, f in STALLED],
                         indirect=["conn_family"])
def test_stalled_dump_then_net_unlock(conn_family, imgdir, method):
    conn = conn_family
    p = stalled_dump(imgdir, conn.tree.pid, ["--network-lock", method])
    try:
        assert_locked(method, conn.peer.port)
        assert (imgdir / "amber.netlock").exists()
        assert_dropped(conn.peer)
    finally:
        kill_amber(p)
    assert_locked(method, conn.peer.port)  # a killed amber leaves it
    r, log = amber(imgdir, ["net-unlock", "-D", imgdir], "unlock.log")
    assert r.returncode == 0, log
    assert f"network unlocked ({method}, 1 connection(s))" in log, log
    assert_unlocked(conn.peer.port, imgdir)
    conn.works("after-unlock")
    no_sanitizer_reports(imgdir)


def test_sigkill_then_failed_restore_unlocks(conn, imgdir):
    p = stalled_dump(imgdir, conn.tree.pid, [])
    kill_amber(p)
    assert_locked("nftables", conn.peer.port)
    r, log = amber(imgdir, ["restore", "-d", "-D", imgdir], "restore.log")
    assert r.returncode != 0 and "refused" in log, log
    assert_unlocked(conn.peer.port, imgdir)
    conn.works("after-restore")


def test_next_dump_into_dir_removes_stale_lock(conn, imgdir):
    p = stalled_dump(imgdir, conn.tree.pid, ["--network-lock", "iptables"])
    kill_amber(p)
    assert_locked("iptables", conn.peer.port)
    # the images are being replaced: the old lock goes, the new one is nftables
    r, log = amber(imgdir, ["dump", "-t", conn.tree.pid, "-D", imgdir], "dump.log",
                   fault="dump-core")
    assert r.returncode == 1, log
    assert "of an earlier dump into this directory" in log, log
    assert "network locked (nftables, 1 connection(s))" in log, log
    assert_unlocked(conn.peer.port, imgdir)
    conn.works("after-second-dump")


FAULTS = [("dump-core", "nftables"), ("dump-core", "iptables"), ("dump-mm", "nftables"),
          ("dump-end", "nftables")]


@pytest.mark.parametrize("stage,method", FAULTS, ids=[f"{s}-{m}" for s, m in FAULTS])
def test_failed_dump_unlocks(conn, imgdir, stage, method):
    r, log = amber(imgdir, ["dump", "-t", conn.tree.pid, "-D", imgdir, "--network-lock",
                            method, "--tcp-established"], "dump.log", fault=stage)
    assert r.returncode == 1 and "dump failed" in log, log
    assert f"fault injected at stage {stage}" in log, log
    assert f"network locked ({method}, 1 connection(s))" in log, log
    assert_unlocked(conn.peer.port, imgdir)
    # the connection left repair mode before the tree ran again
    conn.works("after-failure")
    no_sanitizer_reports(imgdir)


def test_skip_takes_no_lock(conn, imgdir):
    p = stalled_dump(imgdir, conn.tree.pid, ["--network-lock", "skip"])
    try:
        assert lock_state(conn.peer.port) == ([], [])
        assert not (imgdir / "amber.netlock").exists()
        # no lock: the frozen tree's kernel still acknowledges the peer's data
        conn.peer.cmd("send unlocked")
        info = wait_until(lambda: (lambda i: i if i["unacked"] == 0 else None)(
            conn.peer.info()), timeout=30, interval=0.05)
        assert info and info["state"] == TCP_ESTABLISHED, info
    finally:
        kill_amber(p)
    conn.works("after-skip")


LISTENER = """
import socket, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
while True:
    time.sleep(1)
"""


def fd_links(pid):
    """What @pid's fds point at now; one closed while we look is skipped
    (the interpreter opens and closes files as it starts)."""
    links = []
    for f in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(os.readlink(f))
        except FileNotFoundError:
            pass
    return links


def test_no_connection_no_table(netns, imgdir):
    c = Conn(LISTENER, connect=False)
    try:
        wait_until(lambda: "socket:" in " ".join(fd_links(c.tree.pid)), timeout=30)
        p = stalled_dump(imgdir, c.tree.pid, ["--network-lock", "nftables"])
        try:
            assert lock_state(0)[0] == []
            assert not (imgdir / "amber.netlock").exists()
            assert "no TCP connection in the tree" in read_text(imgdir / "stalled.log")
        finally:
            kill_amber(p)
    finally:
        c.close()


def dump_established(imgdir, pid, extra):
    args = ["dump", "-t", pid, "-D", imgdir, "--tcp-established", *extra]
    r, log = amber(imgdir, args, "dump.log")
    assert r.returncode == 0, log


def test_dump_keeps_lock_restore_removes(conn, imgdir):
    dump_established(imgdir, conn.tree.pid, [])
    conn.tree.wait(30)
    assert_locked("nftables", conn.peer.port)
    assert_dropped(conn.peer)
    r, log = amber(imgdir, ["restore", "-d", "-D", imgdir, "--tcp-established"],
                   "restore.log")
    try:
        assert r.returncode == 0, log
        assert_unlocked(conn.peer.port, imgdir)
        conn.works("after-restore")
        no_sanitizer_reports(imgdir)
    finally:
        if r.returncode == 0:
            os.kill(conn.tree.pid, signal.SIGKILL)


def test_leave_running_unlocks(conn, imgdir):
    dump_established(imgdir, conn.tree.pid, ["--leave-running"])
    assert conn.tree.poll() is None
    assert_unlocked(conn.peer.port, imgdir)
    conn.works("after-leave-running")


@pytest.mark.parametrize("record", [
    "amber-netlock 1\nmethod nftables\nrun-id 0123\nnetns 1\nboot-id ab\nconn 4 1.2.3 1 1.2.3.4 2\n",
    "amber-netlock 1\nmethod pf\nrun-id 0123\nnetns 1\nboot-id ab\n",
    "amber-netlock 2\n",
    "amber-netlock 1\nmethod iptables\n"], ids=["address", "method", "version", "missing"])
def test_bad_record_refused(imgdir, record):
    (imgdir / "amber.netlock").write_text(record)
    for verb in (["restore", "-d"], ["net-unlock"]):
        r = subprocess.run([str(amber_path()), *verb, "-D", str(imgdir)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60,
                           env=sanitizer_env(imgdir))
        assert r.returncode not in (0, 2) and "amber.netlock" in r.stdout, r.stdout
    no_sanitizer_reports(imgdir)


def tree_states(port):
    """The TCP states (ss names) of the connections in A to @port."""
    out = run(ns_cmd(NS_A, "ss", "-Htan")).stdout.splitlines()
    return [l.split()[0] for l in out if l.split()[4:5] and l.split()[4].endswith(f":{port}")]


@pytest.mark.parametrize("case", ["fin-wait-1", "last-ack"])
def test_unacknowledged_fin(netns, imgdir, case):
    """The tree's FIN is dropped by the peer's namespace (the peer's FIN
    was not, for LAST_ACK): the dump saves the connection with its FIN
    unacknowledged; after the restore, the rule gone, the FIN is sent
    again and the peer reads the data, then the end of stream. The
    restored end then sits in FIN_WAIT2 (the peer's FIN counted, not
    replayed: docs/limitations.md)."""
    c = Conn(program=TREE_FIN)
    restored = False
    try:
        port = c.peer.port
        run(ns_cmd(NS_B, "nft", "add table inet ambfin"))
        run(ns_cmd(NS_B, "nft", "add chain inet ambfin in { type filter hook input priority 0; }"))
        run(ns_cmd(NS_B, "nft", f"add rule inet ambfin in tcp dport {port} "
                   "tcp flags & fin == fin drop"))
        c.peer.cmd("send g" if case == "fin-wait-1" else "shut")
        assert wait_until(lambda: tree_states(port) == [case.upper()], timeout=30), \
            tree_states(port)
        assert "fin-data" in c.peer.info()["got"]
        dump_established(imgdir, c.tree.pid, [])
        c.tree.wait(30)
        dump_log = read_text(imgdir / "dump.log")
        saved = {"fin-wait-1": "(FIN_WAIT1)", "last-ack": "(LAST_ACK)"}[case]
        assert saved in dump_log, dump_log
        run(ns_cmd(NS_B, "nft", "delete table inet ambfin"))
        r, log = amber(imgdir, ["restore", "-d", "-D", imgdir, "--tcp-established"],
                       "restore.log")
        assert r.returncode == 0, log
        restored = True
        info = wait_until(lambda: (lambda i: i if i["err"] else None)(c.peer.info()),
                          timeout=60, interval=0.1)
        assert info and info["err"] == "closed" and info["got"] == "fin-data", info
        assert wait_until(lambda: tree_states(port) == ["FIN-WAIT-2"], timeout=30), \
            tree_states(port)
        no_sanitizer_reports(imgdir)
    finally:
        run(ns_cmd(NS_B, "nft", "delete table inet ambfin"), check=False)
        if restored:
            os.kill(c.tree.pid, signal.SIGKILL)
        c.close()
