"""A tree in a network namespace that is not its own but its caller's.

runc and podman make a container's network namespace themselves (netavark
or CNI wire it) and name it by path; runc then dumps with `--external
net[INODE]:extRootNetNS` and restores with `--inherit-fd
fd[N]:extRootNetNS`, N an fd of the namespace the engine made for the
restore. Here the test is the engine: `ip netns add` makes the
namespace, a veth on a bridge of the test wires it, and test_netns.py's
service (TCP listeners, UDP, an abstract unix listener) runs in it
through nsenter, with a connection the test (the host) opened.

Checked from outside: the dump saves the namespace as netns-ID.img with
the key alone (`crit decode` reads it; no netdev, ifaddr or route
images); the restore puts the tree in the namespace given by fd (its
inode read from /proc), the same connection carries data both ways, and
no lock is left inside. Restored into the very namespace the dump locked
(kept), and into a new one the engine made and wired again (its host end
brought up once the restore returned: an engine's window between wiring
and the restore is docs/limitations.md's), by amber's CLI and through
`amber swrk` with runc's `external` and `inherit_fd`. Refused: a restore
without the namespace's fd, or with an fd that is not a network
namespace (before any task), and a dump naming another namespace's
inode (the service runs on with its connection).
"""

import os
import shutil
import socket
import subprocess
import sys

import pytest

from test_netns import (BRIDGE, HOST_ADDR, HOST_END, INSIDE, PORT, PY, SERVICE, TREE_ADDR,
                        TREE_ADDR6, alive, amber, bridge, echo, kill_tree, run)  # noqa: F401
from zdtm_runner import amber_path, read_text, wait_until

NETNS = f"amber-ext-{os.getpid() % 100000}"
KEY = "extRootNetNS"


def netns_path():
    return f"/run/netns/{NETNS}"


def make_netns(host_up=True):
    """The engine's side: a named namespace, its veth on the bridge, addresses."""
    run(["ip", "netns", "del", NETNS], check=False)
    run(["ip", "netns", "add", NETNS])
    run(["ip", "link", "add", HOST_END, "type", "veth", "peer", "name", INSIDE, "netns", NETNS])
    run(["ip", "link", "set", HOST_END, "master", BRIDGE] + (["up"] if host_up else []))
    ns = ["ip", "-n", NETNS]
    run(ns + ["link", "set", "lo", "up"])
    run(ns + ["link", "set", INSIDE, "up"])
    run(ns + ["addr", "add", f"{TREE_ADDR6}/64", "dev", INSIDE, "nodad"])
    run(ns + ["addr", "add", f"{TREE_ADDR}/24", "dev", INSIDE])
    run(ns + ["route", "add", "default", "via", HOST_ADDR])


def drop_netns():
    run(["ip", "netns", "del", NETNS], check=False)
    run(["ip", "link", "del", HOST_END], check=False)


@pytest.fixture
def ext_netns(bridge):  # noqa: F811
    make_netns()
    try:
        yield
    finally:
        drop_netns()


def start_service(tmp_path):
    env = dict(os.environ, TREE_ADDR=TREE_ADDR, TREE_ADDR6=TREE_ADDR6, PORT=str(PORT))
    p = subprocess.Popen(["nsenter", f"--net={netns_path()}", PY, "-c", SERVICE],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path / "service.err", "w"), env=env,
                         start_new_session=True)
    if not wait_until(lambda: read_text(f"/proc/{p.pid}/comm").strip() == "netns-ready",
                      timeout=30):
        p.kill()
        p.wait()
        pytest.fail(f"the service never listened: {read_text(tmp_path / 'service.err')}",
                    pytrace=False)
    return p


def connect():
    c = socket.create_connection((TREE_ADDR, PORT), timeout=30)
    echo(c, "before")
    return c


def ino(path):
    return os.stat(path).st_ino


def lock_tables():
    return [line for line in run(["ip", "netns", "exec", NETNS, "nft", "list", "tables"],
                                 check=False).stdout.splitlines() if "CRIU-" in line]


def check_images(imgdir):
    names = sorted(p.name for p in imgdir.iterdir())
    assert not [n for n in names if n.startswith(("netdev-", "ifaddr-", "route"))], names
    ns_imgs = [n for n in names if n.startswith("netns-")]
    assert len(ns_imgs) == 1, names
    if shutil.which("crit"):
        out = run(["crit", "decode", "-i", imgdir / ns_imgs[0]]).stdout
        assert f'"ext_key": "{KEY}"' in out, out


def rpc_call(imgdir, req_type, fill, pass_fds=()):
    """One request to `amber swrk`, as runc sends it; the response."""
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    try:
        from pycriu import rpc_pb2 as rpc
    except ImportError:
        pytest.skip("pycriu (Debian's criu package) is not installed")
    sk, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    err = open(imgdir / f"swrk-{req_type}.err", "wb")
    proc = subprocess.Popen([str(amber_path()), "swrk", str(theirs.fileno())],
                            pass_fds=[theirs.fileno(), *pass_fds], stdin=subprocess.DEVNULL,
                            stderr=err)
    theirs.close()
    fd = os.open(imgdir, os.O_DIRECTORY)
    try:
        o = rpc.criu_opts(images_dir_fd=fd, log_level=4, log_file=f"rpc-{req_type}.log",
                          tcp_established=True)
        fill(o)
        sk.send(rpc.criu_req(type=getattr(rpc, req_type), opts=o).SerializeToString())
        resp = rpc.criu_resp()
        resp.ParseFromString(sk.recv(1 << 20))
        return resp
    finally:
        os.close(fd)
        sk.close()
        proc.wait(timeout=120)
        err.close()


def dump(imgdir, pid, how, ns_ino):
    if how.startswith("rpc"):
        def fill(o):
            o.pid = pid
            o.external.append(f"net[{ns_ino}]:{KEY}")
        resp = rpc_call(imgdir, "DUMP", fill)
        assert resp.success, (resp.cr_errmsg, read_text(imgdir / "rpc-DUMP.log")[-3000:])
    else:
        amber("dump", ["-t", pid, "--tcp-established", "--external", f"net[{ns_ino}]:{KEY}"],
              imgdir, imgdir / "dump.log")


def restore(imgdir, how):
    fd = os.open(netns_path(), os.O_RDONLY)
    try:
        if how.startswith("rpc"):
            def fill(o):
                o.inherit_fd.add(key=KEY, fd=fd)
            resp = rpc_call(imgdir, "RESTORE", fill, pass_fds=[fd])
            assert resp.success, (resp.cr_errmsg,
                                  read_text(imgdir / "rpc-RESTORE.log")[-3000:])
            return resp.restore.pid
        r = subprocess.run([str(amber_path()), "restore", "-D", str(imgdir), "-d", "-v4",
                            "-o", str(imgdir / "restore.log"), "--tcp-established",
                            "--pidfile", str(imgdir / "root.pid"),
                            "--inherit-fd", f"fd[{fd}]:{KEY}"], pass_fds=[fd],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, read_text(imgdir / "restore.log")[-3000:]
        return int(read_text(imgdir / "root.pid"))
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["cli-same", "cli-new", "rpc-new"])
def test_external_netns_restored(ext_netns, tmp_path, how):
    p = start_service(tmp_path)
    pid, root = p.pid, None
    imgdir = tmp_path / "img"
    imgdir.mkdir()
    try:
        c = connect()
        dump(imgdir, pid, how, ino(netns_path()))
        p.wait(timeout=30)
        check_images(imgdir)
        if how.endswith("new"):
            # the engine's new namespace, wired as before, reachable once restored
            drop_netns()
            make_netns(host_up=False)
        root = restore(imgdir, how)
        if how.endswith("new"):
            run(["ip", "link", "set", HOST_END, "up"])
        assert root == pid
        assert ino(f"/proc/{root}/ns/net") == ino(netns_path())
        echo(c, "after")
        c.close()
        c = connect()  # the listener too
        c.close()
        assert not lock_tables(), lock_tables()
    finally:
        kill_tree(root or pid)


def test_external_netns_refused(ext_netns, tmp_path):
    p = start_service(tmp_path)
    pid = p.pid
    imgdir = tmp_path / "img"
    imgdir.mkdir()
    try:
        c = connect()
        # an inode that is not the tree's namespace: refused, the service runs on
        r = amber("dump", ["-t", pid, "--tcp-established", "--external",
                           f"net[{ino('/proc/self/ns/net')}]:{KEY}"], imgdir,
                  imgdir / "bad-dump.log", check=False)
        assert r.returncode, "a dump naming another namespace succeeded"
        assert "names no network namespace of the tree" in read_text(imgdir / "bad-dump.log")
        assert alive(pid)
        echo(c, "still")
        for f in imgdir.iterdir():
            f.unlink()
        dump(imgdir, pid, "cli", ino(netns_path()))
        p.wait(timeout=30)
        # no fd for the key, then an fd that is no network namespace
        for extra, want in (([], f"--inherit-fd fd[N]:{KEY}"),
                            (["--inherit-fd", f"fd[0]:{KEY}"], "is not a network namespace")):
            r = subprocess.run([str(amber_path()), "restore", "-D", str(imgdir), "-d",
                                "--tcp-established", "-v4", "-o", str(imgdir / "bad.log"),
                                *extra], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=120)
            log = read_text(imgdir / "bad.log")
            assert r.returncode and want in log, log[-2000:]
            assert "nothing was restored" in log, log[-2000:]
            assert not alive(pid)
        restore(imgdir, "cli")
        echo(c, "after")
    finally:
        kill_tree(pid)
