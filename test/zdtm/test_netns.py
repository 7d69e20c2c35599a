"""A tree in a network namespace of its own, as a container has it.

The tree is a Python service started by `unshare --net`: a veth whose
peer is in the test's (amber's) namespace on a bridge of the test,
IPv4 and IPv6 addresses on the veth, a default route and an extra route
through the bridge's address. It holds TCP listeners (IPv4, IPv6),
connections the host (this test) opened to each, a UDP socket and an abstract unix
listener, and echoes whatever each gets, prefixed with its kind.

Checked from outside: after `amber dump --tcp-established` and `amber
restore --tcp-established --external veth[eth0]:HOST@BRIDGE` (also with
--lazy-pages and `amber lazy-pages`, or through CRIU's RPC: `external`,
or `veths` and the test putting the host end on the bridge), the same
connection carries data both ways (the host never saw a reset), a new
connection to the listener and a UDP datagram are answered, the
abstract listener answers inside the namespace, and `ip -d link`, `ip
addr` and `ip route` read inside (nsenter) are as before. The images
are CRIU's: `ip addr/route showdump` reads ifaddr-, route- and
route6-ID.img, `crit decode` netdev-ID.img. A dump made
to fail (AMBER_FAULT) leaves the service running with its connection;
and the host's veth end is named as told and put on the bridge. An
amber killed while the tree is frozen leaves its lock inside the tree's
namespace (none in amber's): `amber net-unlock` run in amber's says
where it is, run inside (nsenter) removes it, and the connection works.

With CRIU 4.2 (test_interop.py's build, or $CRIU), one engine dumps the
service and the other restores it, both ways: the connection goes on
and the namespace reads as before.

Damaged ifaddr/route/route6 images (amber.sums removed, as in a
CRIU-made set) are refused at load, named, before any veth or task.

Every bridge, veth and namespace the tests make is removed, also on
failure.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys

import pytest

from zdtm_runner import amber_path, proc_stat, read_text, sanitizer_env, wait_until

TAG = os.getpid() % 100000
BRIDGE, HOST_END, INSIDE = f"ambr{TAG}", f"amvh{TAG}", "eth0"
HOST_ADDR, TREE_ADDR = "10.213.9.1", "10.213.9.2"
HOST_ADDR6, TREE_ADDR6 = "fd00:213:9::1", "fd00:213:9::2"
EXTRA_NET = "10.213.77.0/24"  # routed through the host: a route of the tree's own
PORT = 7300
PY = "/usr/bin/python3"

# Waits for its veth's addresses (the test configures them from outside), then serves.
SERVICE = r"""
import os, select, socket, time
addr = os.environ["TREE_ADDR"]
port = int(os.environ["PORT"])


def bound(make):
    try:
        return make()
    except OSError:
        return None


def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind((addr, port))
    except OSError:
        u.close()
        raise
    return u


l = l6 = u = None
while not (l and l6 and u):
    l = l or bound(lambda: socket.create_server((addr, port)))
    l6 = l6 or bound(lambda: socket.create_server((os.environ["TREE_ADDR6"], port),
                                                  family=socket.AF_INET6))
    u = u or bound(udp)
    time.sleep(0.02)
a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
a.bind("\0amber-netns-test")
a.listen()
open("/proc/self/comm", "w").write("netns-ready")
conns = []
while True:
    r, _, _ = select.select([l, l6, u, a] + conns, [], [])
    for s in r:
        if s in (l, l6, a):
            conns.append(s.accept()[0])
        elif s is u:
            d, peer = u.recvfrom(4096)
            u.sendto(b"udp:" + d, peer)
        else:
            d = s.recv(4096)
            if not d:
                conns.remove(s)
                s.close()
            else:
                s.sendall(b"tcp:" + d)
"""


def run(argv, check=True):
    r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))}: {r.stdout}")
    return r


def inside(pid, *argv, check=True):
    return run(["nsenter", f"--net=/proc/{pid}/ns/net", *argv], check=check)


def link_exists(name):
    return run(["ip", "link", "show", name], check=False).returncode == 0


def cleanup_links():
    for name in (HOST_END, BRIDGE):
        run(["ip", "link", "del", name], check=False)


@pytest.fixture
def bridge():
    for tool in ("ip", "nsenter", "unshare", "nft", "iptables"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (iproute2, util-linux, nftables, iptables)")
    cleanup_links()
    try:
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "addr", "add", f"{HOST_ADDR}/24", "dev", BRIDGE])
        run(["ip", "addr", "add", f"{HOST_ADDR6}/64", "dev", BRIDGE, "nodad"])
        run(["ip", "link", "set", BRIDGE, "up"])
        yield
    finally:
        cleanup_links()


def start_service(tmp_path):
    """The service in its namespace, wired to the bridge: its Popen (killed if wiring fails)."""
    env = dict(os.environ, TREE_ADDR=TREE_ADDR, TREE_ADDR6=TREE_ADDR6, PORT=str(PORT))
    p = subprocess.Popen(["unshare", "--net", PY, "-c", SERVICE], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=open(tmp_path / "service.err", "w"),
                         env=env, start_new_session=True)
    try:
        wire_service(p.pid, tmp_path)
    except BaseException:
        p.kill()
        p.wait()
        raise
    return p


def wire_service(pid, tmp_path):
    wait_until(lambda: read_text(f"/proc/{pid}/comm").strip() == "python3" and
               os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino,
               timeout=10)
    run(["ip", "link", "add", HOST_END, "type", "veth", "peer", "name", INSIDE, "netns", pid])
    run(["ip", "link", "set", HOST_END, "master", BRIDGE, "up"])
    inside(pid, "ip", "link", "set", "lo", "up")
    inside(pid, "ip", "link", "set", INSIDE, "mtu", "1400", "up")
    inside(pid, "ip", "addr", "add", f"{TREE_ADDR6}/64", "dev", INSIDE, "nodad")
    inside(pid, "ip", "addr", "add", f"{TREE_ADDR}/24", "dev", INSIDE)
    inside(pid, "ip", "route", "add", "default", "via", HOST_ADDR)
    inside(pid, "ip", "route", "add", EXTRA_NET, "via", HOST_ADDR, "metric", "7")
    inside(pid, "ip", "-6", "route", "add", "fd00:213:99::/64", "via", HOST_ADDR6)
    if not wait_until(lambda: read_text(f"/proc/{pid}/comm").strip() == "netns-ready",
                      timeout=30):
        pytest.fail(f"the service never listened: {read_text(tmp_path / 'service.err')}",
                    pytrace=False)


def net_state(pid):
    """What the namespace holds, read inside; names of amber's side left out."""
    out = []
    for argv in (["ip", "-d", "link", "show"], ["ip", "addr", "show"],
                 ["ip", "route", "show"], ["ip", "-6", "route", "show"]):
        text = inside(pid, *argv).stdout
        # the peer's ifindex and namespace id are amber's side: new at restore
        text = re.sub(r"@if\d+", "@ifN", text)
        text = re.sub(r"link-netnsid \d+", "link-netnsid N", text)
        # the kernel's own link-local address takes its DAD anew (tentative a while)
        text = re.sub(r" tentative", "", text)
        out.append(text)
    return "\n".join(out)


def echo(sock, text):
    sock.sendall(text.encode())
    want, got = b"tcp:" + text.encode(), b""
    sock.settimeout(60)
    while len(got) < len(want):
        d = sock.recv(4096)
        assert d, f"the connection closed after {got!r}"
        got += d
    assert got == want, got


def udp_echo(text):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        for _ in range(30):  # a datagram may meet a link not up yet: send again
            u.sendto(text.encode(), (TREE_ADDR, PORT))
            try:
                return u.recv(4096)
            except socket.timeout:
                continue
    return None


def abstract_echo(pid, text):
    prog = ("import socket\ns = socket.socket(socket.AF_UNIX)\n"
            "s.connect('\\0amber-netns-test')\n"
            f"s.sendall({text!r}.encode())\nprint(s.recv(100).decode())")
    return inside(pid, PY, "-c", prog).stdout.strip()


def amber(verb, args, imgdir, log, env=None, check=True):
    r = subprocess.run([str(amber_path()), verb, *map(str, args), "-D", str(imgdir), "-v4",
                        "-o", str(log)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120,
                       env=dict(sanitizer_env(imgdir), **(env or {})))
    if check:
        assert r.returncode == 0, f"amber {verb} exited {r.returncode}:\n{read_text(log)[-3000:]}"
    return r


def check_images(imgdir):
    """CRIU's images of the namespace, read by the tools that read CRIU's."""
    ns_id = next(f.name for f in imgdir.iterdir() if f.name.startswith("netdev-"))[7:-4]

    def showdump(argv, name):
        with open(imgdir / f"{name}-{ns_id}.img", "rb") as f:
            r = subprocess.run(argv, stdin=f, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
        assert r.returncode == 0, r.stdout
        return r.stdout

    assert TREE_ADDR in showdump(["ip", "addr", "showdump"], "ifaddr")
    assert TREE_ADDR6 in showdump(["ip", "addr", "showdump"], "ifaddr")
    assert EXTRA_NET in showdump(["ip", "route", "showdump"], "route")
    assert "fd00:213:99::/64" in showdump(["ip", "-6", "route", "showdump"], "route6")
    if shutil.which("crit"):
        nd = run(["crit", "decode", "-i", imgdir / f"netdev-{ns_id}.img"]).stdout
        assert '"VETH"' in nd and f'"{INSIDE}"' in nd and "peer_ifindex" in nd, nd


def kill_tree(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] in "SR"


def restore_cli(imgdir, how="cli"):
    veth = (["--veth-pair", f"{INSIDE}={HOST_END}@{BRIDGE}"] if how == "cli-veth-pair" else
            ["--external", f"veth[{INSIDE}]:{HOST_END}@{BRIDGE}"])
    amber("restore", ["-d", "--tcp-established", "--pidfile", imgdir / "root.pid", *veth],
          imgdir, imgdir / "restore.log")
    return int(read_text(imgdir / "root.pid"))


def restore_lazy(imgdir):
    """--lazy-pages: the memory comes from `amber lazy-pages` as it is touched."""
    sock, log = imgdir / "lazy.sock", imgdir / "lazy-pages.log"
    daemon = subprocess.Popen([str(amber_path()), "lazy-pages", "-D", str(imgdir), "--socket",
                               str(sock), "-v4", "-o", str(log)], cwd=imgdir,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=sanitizer_env(imgdir))
    try:
        if not wait_until(lambda: sock.exists() or daemon.poll() is not None, timeout=30) or \
                daemon.poll() is not None:
            pytest.fail("amber lazy-pages did not listen:\n" + read_text(log), pytrace=False)
        amber("restore", ["-d", "--tcp-established", "--lazy-pages", "--lazy-socket", sock,
                          "--pidfile", imgdir / "root.pid",
                          "--external", f"veth[{INSIDE}]:{HOST_END}@{BRIDGE}"],
              imgdir, imgdir / "restore.log")
        assert daemon.wait(timeout=120) == 0, read_text(log)[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    return int(read_text(imgdir / "root.pid"))


def restore_rpc(imgdir, how):
    """Through `amber swrk`, as runc or libcriu would: external or veths."""
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    try:
        from pycriu import rpc_pb2 as rpc
    except ImportError:
        pytest.skip("pycriu (Debian's criu package) is not installed")
    sk, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    err = open(imgdir / "swrk.err", "wb")
    proc = subprocess.Popen([str(amber_path()), "swrk", str(theirs.fileno())],
                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stderr=err)
    theirs.close()
    fd = os.open(imgdir, os.O_DIRECTORY)
    try:
        o = rpc.criu_opts(images_dir_fd=fd, log_level=4, log_file="rpc.log",
                          tcp_established=True)
        if how == "rpc-external":
            o.external.append(f"veth[{INSIDE}]:{HOST_END}@{BRIDGE}")
        else:
            o.veths.add(if_in=INSIDE, if_out=HOST_END)
        sk.send(rpc.criu_req(type=rpc.RESTORE, opts=o).SerializeToString())
        resp = rpc.criu_resp()
        resp.ParseFromString(sk.recv(1 << 20))
        assert resp.success, (resp.cr_errmsg, read_text(imgdir / "rpc.log")[-3000:])
        if how == "rpc-veths":  # no bridge in CRIU's veths: the caller puts it on one
            run(["ip", "link", "set", HOST_END, "master", BRIDGE])
        return resp.restore.pid
    finally:
        os.close(fd)
        sk.close()
        proc.wait(timeout=120)
        err.close()


@pytest.mark.parametrize("how", ["cli", "cli-iptables", "cli-veth-pair", "cli-lazy",
                                 "rpc-external", "rpc-veths"])
def test_veth_service_restored(bridge, tmp_path, how):
    p = start_service(tmp_path)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    restored = None
    try:
        before = net_state(p.pid)
        c = socket.create_connection((TREE_ADDR, PORT), timeout=10)
        echo(c, "before the dump")
        c6 = socket.create_connection((TREE_ADDR6, PORT), timeout=10)
        echo(c6, "v6 before the dump")
        assert udp_echo("u1") == b"udp:u1"
        assert abstract_echo(p.pid, "a1") == "tcp:a1"

        lock = ["--network-lock", "iptables"] if how == "cli-iptables" else []
        amber("dump", ["-t", p.pid, "--tcp-established", *lock], imgdir, imgdir / "dump.log")
        p.wait(30)
        check_images(imgdir)
        assert "tree-netns yes" in read_text(imgdir / "amber.netlock")
        # The dumped namespace goes with its veth, a moment after the tree.
        assert wait_until(lambda: not link_exists(HOST_END), timeout=30), "old veth stays"

        restored = (restore_lazy(imgdir) if how == "cli-lazy" else
                    restore_cli(imgdir, how) if how.startswith("cli") else
                    restore_rpc(imgdir, how))
        # the lock taken again inside, then removed: none left there
        tables = inside(restored, "nft", "list", "tables").stdout
        rules = inside(restored, "iptables", "-S").stdout
        assert "CRIU-" not in tables and "DROP" not in rules, (tables, rules)
        if how == "cli-iptables":
            assert "network locked again" in read_text(imgdir / "restore.log")
        assert alive(restored)
        assert os.stat(f"/proc/{restored}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        # amber's end: named as told, on the bridge, up
        master = run(["ip", "-o", "link", "show", HOST_END]).stdout
        assert f"master {BRIDGE}" in master and "state UP" in master, master

        echo(c, "after the restore")           # the same connection, both ways
        echo(c, "and once more")
        echo(c6, "v6 after the restore")       # and the IPv6 one
        c6.close()
        c2 = socket.create_connection((TREE_ADDR, PORT), timeout=10)
        echo(c2, "a new connection")           # the listener
        c2.close()
        assert udp_echo("u2") == b"udp:u2"     # the UDP socket
        assert abstract_echo(restored, "a2") == "tcp:a2"
        after = net_state(restored)
        assert after == before, f"before:\n{before}\nafter:\n{after}"
        c.close()
    finally:
        kill_tree(p.pid)
        p.wait()
        if restored:
            kill_tree(restored)


@pytest.mark.parametrize("stage", ["dump-core", "dump-end"])
def test_failed_dump_leaves_it_running(bridge, tmp_path, stage):
    """A dump made to fail after the lock: the service and its connection run on."""
    p = start_service(tmp_path)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    try:
        c = socket.create_connection((TREE_ADDR, PORT), timeout=10)
        echo(c, "before")
        r = amber("dump", ["-t", p.pid, "--tcp-established"], imgdir, imgdir / "dump.log",
                  env={"AMBER_FAULT": stage}, check=False)
        assert r.returncode != 0, "the injected fault did not fail the dump"
        assert "left running" in read_text(imgdir / "dump.log")
        assert alive(p.pid)
        echo(c, "after the failed dump")
        assert udp_echo("u") == b"udp:u"
        # no lock left inside
        tables = inside(p.pid, "nft", "list", "tables").stdout
        assert "CRIU-" not in tables, tables
        c.close()
    finally:
        kill_tree(p.pid)
        p.wait()


def test_leave_running(bridge, tmp_path):
    """--leave-running: the images are made, the service runs on, unlocked."""
    p = start_service(tmp_path)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    try:
        c = socket.create_connection((TREE_ADDR, PORT), timeout=10)
        echo(c, "before")
        amber("dump", ["-t", p.pid, "--tcp-established", "--leave-running"], imgdir,
              imgdir / "dump.log")
        assert alive(p.pid)
        echo(c, "after")
        assert not (imgdir / "amber.netlock").exists()  # unlocked, the record gone
        c.close()
    finally:
        kill_tree(p.pid)
        p.wait()


def criu_path():
    path = os.environ.get("CRIU", "/var/tmp/anchors/criu-4.2/criu/criu")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no CRIU 4.2 at {path} (scripts/deps.sh criu builds it; $CRIU names one)")
    return path


def criu(verb, args, imgdir, log):
    r = subprocess.run([criu_path(), verb, *map(str, args), "-D", str(imgdir), "-v4",
                        "-o", log], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, f"criu {verb}: {r.stdout}\n{read_text(imgdir / log)[-3000:]}"


@pytest.mark.parametrize("way", ["amber-criu", "criu-amber"])
def test_interop_criu(bridge, tmp_path, way):
    """One engine dumps the service, the other restores it: the connection goes on."""
    criu_path()
    p = start_service(tmp_path)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    restored = None
    try:
        before = net_state(p.pid)
        c = socket.create_connection((TREE_ADDR, PORT), timeout=10)
        echo(c, "before")
        if way == "amber-criu":
            amber("dump", ["-t", p.pid, "--tcp-established"], imgdir, imgdir / "dump.log")
        else:
            criu("dump", ["-t", p.pid, "--tcp-established"], imgdir, "dump.log")
        p.wait(30)
        assert wait_until(lambda: not link_exists(HOST_END), timeout=30), "old veth stays"
        ext = ["--external", f"veth[{INSIDE}]:{HOST_END}@{BRIDGE}"]
        if way == "amber-criu":
            criu("restore", ["-d", "--tcp-established", "--pidfile", imgdir / "root.pid",
                             *ext], imgdir, "restore.log")
            restored = int(read_text(imgdir / "root.pid"))
        else:
            restored = restore_cli(imgdir)
        assert alive(restored)
        echo(c, "after")
        assert udp_echo("u") == b"udp:u"
        assert abstract_echo(restored, "a") == "tcp:a"
        after = net_state(restored)
        assert after == before, f"before:\n{before}\nafter:\n{after}"
        c.close()
    finally:
        kill_tree(p.pid)
        p.wait()
        if restored:
            kill_tree(restored)


def test_refuses_veth_to_third_namespace(bridge, tmp_path):
    """A veth whose peer is in neither the tree's nor amber's namespace: refused, named."""
    third = f"amb-third{TAG}"
    p = subprocess.Popen(["unshare", "--net", "sleep", "1000"], stdin=subprocess.DEVNULL,
                         start_new_session=True)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    try:
        assert wait_until(lambda: read_text(f"/proc/{p.pid}/comm").strip() == "sleep")
        run(["ip", "netns", "add", third])
        run(["ip", "link", "add", HOST_END, "type", "veth", "peer", "name", INSIDE,
             "netns", p.pid])
        run(["ip", "link", "set", HOST_END, "netns", third])
        r = amber("dump", ["-t", p.pid], imgdir, imgdir / "dump.log", check=False)
        assert r.returncode == 1, f"dump exited {r.returncode}"
        log = read_text(imgdir / "dump.log")
        ino = os.stat(f"/proc/{p.pid}/ns/net").st_ino
        assert (f"process {p.pid}: its network namespace (net:[{ino}]) holds link {INSIDE}, "
                "a veth whose peer is in a third namespace") in log, log
        assert "left running" in log
        assert alive(p.pid)
        assert INSIDE in inside(p.pid, "ip", "link", "show").stdout
    finally:
        kill_tree(p.pid)
        p.wait()
        run(["ip", "netns", "del", third], check=False)


def test_killed_dump_lock_removed_inside(bridge, tmp_path):
    """amber killed with the tree frozen: the lock stays in the tree's namespace;
    net-unlock run in amber's namespace says where, run inside removes it."""
    p = start_service(tmp_path)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    dumper = None
    try:
        c = socket.create_connection((TREE_ADDR, PORT), timeout=10)
        echo(c, "before")
        env = dict(sanitizer_env(imgdir), AMBER_FAULT="dump-core:sleep")
        dumper = subprocess.Popen([str(amber_path()), "dump", "-t", str(p.pid), "-D",
                                   str(imgdir), "--tcp-established", "-v4", "-o",
                                   str(imgdir / "dump.log")], stdin=subprocess.DEVNULL, env=env)
        if not wait_until(lambda: "sleeping at stage dump-core" in
                          read_text(imgdir / "dump.log") or dumper.poll() is not None,
                          timeout=60) or dumper.poll() is not None:
            pytest.fail("amber did not stall:\n" + read_text(imgdir / "dump.log"),
                        pytrace=False)
        assert "CRIU-" in inside(p.pid, "nft", "list", "tables").stdout
        assert "CRIU-" not in run(["nft", "list", "tables"]).stdout  # not amber's
        dumper.kill()
        dumper.wait()
        assert "CRIU-" in inside(p.pid, "nft", "list", "tables").stdout  # left by the kill
        amber("net-unlock", [], imgdir, imgdir / "unlock-host.log")
        assert "in the tree's own network namespace" in read_text(imgdir / "unlock-host.log")
        assert "CRIU-" in inside(p.pid, "nft", "list", "tables").stdout
        r = inside(p.pid, amber_path(), "net-unlock", "-D", imgdir, "-v4", "-o",
                   imgdir / "unlock-inside.log", check=False)
        assert r.returncode == 0, read_text(imgdir / "unlock-inside.log")
        assert "CRIU-" not in inside(p.pid, "nft", "list", "tables").stdout
        assert alive(p.pid)
        echo(c, "after the unlock")
        c.close()
    finally:
        if dumper and dumper.poll() is None:
            dumper.kill()
            dumper.wait()
        kill_tree(p.pid)
        p.wait()


def cut_tail(data):
    return data[:-3]


def bad_magic(data):
    return b"\0\0\0\0" + data[4:]


def addr_msg_in_routes(data):
    # the first message's nlmsg_type (after the u32 magic and the u32 length) made RTM_NEWADDR
    return data[:8] + struct.pack("=H", 20) + data[10:]


DAMAGE = {"ifaddr-cut": ("ifaddr", cut_tail, "is malformed"),
          "route-magic": ("route", bad_magic, "not an iproute2 save"),
          "route6-type": ("route6", addr_msg_in_routes, "is malformed")}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_net_images_refused(bridge, tmp_path, case):
    """A damaged raw image (amber.sums removed, as in a CRIU-made set) is refused at
    load, named, before any link or task is made."""
    name, damage, reason = DAMAGE[case]
    p = start_service(tmp_path)
    imgdir = tmp_path / "img"
    imgdir.mkdir(mode=0o700)
    try:
        amber("dump", ["-t", p.pid, "--leave-running"], imgdir, imgdir / "dump.log")
        kill_tree(p.pid)
        p.wait()
        run(["ip", "link", "del", HOST_END], check=False)
        (imgdir / "amber.sums").unlink()
        img = next(f for f in imgdir.iterdir() if re.fullmatch(name + r"-\d+\.img", f.name))
        img.write_bytes(damage(img.read_bytes()))
        r = amber("restore", ["-d", "--external", f"veth[{INSIDE}]:{HOST_END}@{BRIDGE}"],
                  imgdir, imgdir / "restore.log", check=False)
        log = read_text(imgdir / "restore.log")
        assert r.returncode != 0, log
        assert f"{img.name}: " in log and reason in log, log
        assert "nothing was restored" in log, log
        assert not link_exists(HOST_END), "a veth was made for refused images"
    finally:
        kill_tree(p.pid)
        p.wait()
