"""Migration between two network namespaces joined by a veth pair: the page
server runs in namespace A (10.77.0.1), the dumped tree and `amber dump`
in namespace B (10.77.0.2). The pages cross the veth; the tree is restored
in B from the local images plus the server's. Then the same images are
served lazily from A and fetched from B with the GET client.

test_postcopy_across_veth: post-copy the other way round. A bash tree in
A is dumped in A and served by `amber page-server --lazy-pages` there; B
gets the images without the pages files and restores with `amber
lazy-pages --page-server` fetching every page over the veth; the restored
bash, woken, prints the checksum of the 13 MiB it held.

test_precopy_across_veth: iterative pre-copy, B to A: a pre-dump, then
the final dump against it, each into its own page server in A; only the
changed pages cross the second time."""

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_pserver import PS_GET, Server, amber, token_file
import psproto as P

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2")


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def netns():
    a, b = f"amber-ps-a{os.getpid()}", f"amber-ps-b{os.getpid()}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", "vpsa", "netns", a, "type", "veth", "peer", "name", "vpsb",
           "netns", b)
    except subprocess.CalledProcessError as e:
        for n in (a, b):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        pytest.skip(f"can't make namespaces and a veth pair: {e.stderr.decode().strip()}")
    for ns, dev, ip in ((a, "vpsa", "10.77.0.1/24"), (b, "vpsb", "10.77.0.2/24")):
        sh("ip", "-n", ns, "addr", "add", ip, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    yield a, b
    for n in (a, b):
        subprocess.run(["ip", "netns", "del", n], capture_output=True)


def rx_bytes(ns, dev):
    return int(subprocess.run(["ip", "netns", "exec", ns, "cat",
                               f"/sys/class/net/{dev}/statistics/rx_bytes"],
                              capture_output=True, text=True, check=True).stdout)


class NsServer(Server):
    """Server, but started inside a namespace on the veth address."""

    def __init__(self, tmp, ns, dir_, *args, name="ps"):
        self.dir = Path(dir_)
        self.log = tmp / f"{name}.log"
        self.err = open(tmp / f"{name}.err", "wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, amber(), "page-server", "--address", "10.77.0.1",
             "--port", "0", "-D", str(dir_), *map(str, args), "-v4", "-o", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err)
        line = self.proc.stdout.readline().decode()
        assert ":" in line, line
        self.port = int(line.split(":")[1].split()[0])


class Md5Tree:
    """bash in namespace NS holding the digits of 1..1500000 (about 13 MiB
    once bash has them), then sleeping; woken (its sleep killed) it writes
    the md5 of what it holds to sum.txt."""

    WANT = hashlib.md5("".join(str(i) for i in range(1, 1500001)).encode()).hexdigest()

    def __init__(self, tmp_path, ns):
        self.out, self.summ = tmp_path / "tree.out", tmp_path / "sum.txt"
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "bash", "-c",
                 'x=$(seq 1 1500000 | tr -d "\\n"); echo ready; sleep 1000; '
                 f'printf %s "$x" | md5sum > {self.summ}'],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.pid = self.proc.pid  # ip netns exec execs the command: same pid
        for _ in range(3000):
            if self.out.read_bytes() == b"ready\n":
                break
            time.sleep(0.01)
        if self.out.read_bytes() != b"ready\n":
            self.kill()
            pytest.fail(f"the bash tree did not start: {self.out.read_bytes()!r}")
        # bash forks its sleep after the echo
        self.kids = P.wait_until(self.children, timeout=10)

    def children(self):
        return Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()

    def dumped(self):
        """The dump killed it: reap it, and wait until its child is gone too."""
        self.proc.wait(timeout=10)
        for _ in range(500):
            if not any(Path(f"/proc/{k}").exists() for k in self.kids):
                break
            time.sleep(0.01)

    def check_restored(self, ns):
        """Restored inside NS; woken, it prints the checksum it must."""
        assert os.stat(f"/proc/{self.pid}/ns/net").st_ino == \
            os.stat(f"/run/netns/{ns}").st_ino
        kids = self.children()
        assert kids
        os.kill(int(kids[0]), signal.SIGKILL)  # bash goes on: prints its checksum
        for _ in range(1000):
            if self.summ.exists() and self.summ.read_text().strip():
                break
            time.sleep(0.01)
        assert self.summ.read_text().split()[0] == self.WANT

    def kill(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_migrate_across_veth(tmp_path, netns):
    a, b = netns
    tok = token_file(tmp_path)
    srv = tmp_path / "srv"
    img = tmp_path / "img"
    s = NsServer(tmp_path, a, srv, "--token-file", tok)
    # the tree, in B: a shell holding 16 MiB of data, and its sleeping child
    tree = subprocess.Popen(
        ["ip", "netns", "exec", b, "bash", "-c",
         'x=$(head -c 16000000 /dev/zero | tr "\\0" a); echo ready; sleep 1000; echo ${#x}'],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
    pid = None
    try:
        assert tree.stdout.readline() == b"ready\n"
        pid = tree.pid  # ip netns exec execs the command: same pid
        # bash forks its sleep after the echo
        kids = P.wait_until(
            lambda: Path(f"/proc/{pid}/task/{pid}/children").read_text().split(), timeout=10)
        assert kids
        rx0 = rx_bytes(a, "vpsa")
        r = subprocess.run(["ip", "netns", "exec", b, amber(), "dump", "-t", str(pid),
                            "-D", str(img), "--page-server", "--address", "10.77.0.1",
                            "--port", str(s.port), "--token-file", str(tok), "-v4",
                            "-o", str(tmp_path / "dump.log")], capture_output=True, text=True)
        assert r.returncode == 0, (tmp_path / "dump.log").read_text()
        tree.wait(timeout=10)
        for _ in range(500):  # the killed child must be reaped before restore
            if not any(Path(f"/proc/{k}").exists() for k in kids):
                break
            time.sleep(0.01)
        assert s.wait() == 0, s.logtext()
        pages = sorted(srv.glob("pages-*.img"))
        size = sum(p.stat().st_size for p in pages)
        assert size >= 16 << 20, pages
        crossed = rx_bytes(a, "vpsa") - rx0
        assert crossed >= size, (crossed, size)
        assert not list(img.glob("page*.img"))
        for p in srv.iterdir():
            shutil.copy2(p, img / p.name)
        r = subprocess.run(["ip", "netns", "exec", b, amber(), "restore", "-D", str(img),
                            "-d", "-v4", "-o", str(tmp_path / "restore.log")],
                           capture_output=True, text=True)
        assert r.returncode == 0, (tmp_path / "restore.log").read_text()
        P.wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split()[2] in "SR",
                     timeout=5)
        st = Path(f"/proc/{pid}/stat").read_text().split()
        assert st[2] in "SR", st
        # restored inside B, like the tree it replaces
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{b}").st_ino
    finally:
        s.stop()
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # post-copy's transport: serve the images from A, fetch from B
    (entries_id, entries) = P.read_pagemap(img / f"pagemap-{pid}.img")
    big = max(entries, key=lambda e: e[2])
    off = sum(e[2] for e in entries[:entries.index(big)]) * P.PAGE
    want = (img / f"pages-{entries_id}.img").read_bytes()[off:off + big[2] * P.PAGE]
    s = NsServer(tmp_path, a, img, "--lazy-pages", "--token-file", tok, name="lazy")
    try:
        r = subprocess.run(["ip", "netns", "exec", b, str(PS_GET), "-T", str(tok), "10.77.0.1",
                            str(s.port), f"{pid}:{big[1]:x}:{big[2]}"], capture_output=True)
        assert r.returncode == 0 and r.stdout == want, r.stderr
        assert s.wait() == 0
    finally:
        s.stop()


def test_postcopy_across_veth(tmp_path, netns):
    a, b = netns
    tok = token_file(tmp_path)
    img, dst = tmp_path / "img", tmp_path / "dst"
    tree = Md5Tree(tmp_path, a)
    pid = tree.pid
    procs = []
    try:
        r = subprocess.run(["ip", "netns", "exec", a, amber(), "dump", "-t", str(pid),
                            "-D", str(img), "-v4", "-o", str(tmp_path / "dump.log")],
                           capture_output=True, text=True)
        assert r.returncode == 0, (tmp_path / "dump.log").read_text()
        tree.dumped()
        dst.mkdir(mode=0o700)
        for p in img.iterdir():
            if not p.name.startswith("pages-") and (p.suffix == ".img" or
                                                    p.name == "amber.sums"):
                shutil.copy2(p, dst / p.name)
        size = sum(p.stat().st_size for p in img.glob("pages-*.img"))
        assert size >= 13 << 20
        s = NsServer(tmp_path, a, img, "--lazy-pages", "--token-file", tok, name="lazy")
        procs.append(s)
        rx0 = rx_bytes(b, "vpsb")
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", b, amber(), "lazy-pages", "-D", str(dst),
             "--page-server", "--address", "10.77.0.1", "--port", str(s.port),
             "--token-file", str(tok), "-v4", "-o", str(tmp_path / "lazy.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(3000):
            if (dst / "lazy-pages.socket").exists() or daemon.poll() is not None:
                break
            time.sleep(0.01)
        assert daemon.poll() is None, (tmp_path / "lazy.log").read_text()
        r = subprocess.run(["ip", "netns", "exec", b, amber(), "restore", "-D", str(dst),
                            "-d", "--lazy-pages", "-v4", "-o", str(tmp_path / "restore.log")],
                           capture_output=True, text=True)
        assert r.returncode == 0, (tmp_path / "restore.log").read_text()
        assert daemon.wait(timeout=120) == 0, (tmp_path / "lazy.log").read_text()
        assert s.wait() == 0, s.logtext()  # the daemon's CLOSE ends it
        assert rx_bytes(b, "vpsb") - rx0 >= size  # every page crossed the veth
        assert not list(dst.glob("pages-*.img"))
        assert "Error" not in (tmp_path / "lazy.log").read_text()
        tree.check_restored(b)
    finally:
        for p in procs:
            p.stop()
        tree.kill()


def test_precopy_across_veth(tmp_path, netns):
    """Iterative pre-copy migration: a bash tree in B holding 13 MiB is
    pre-dumped into a page server in A (every page crosses), then dumped
    into a second server in A whose parent is the first: only what changed
    crosses. B keeps no page image; the chain, put together from both sides,
    restores in B, and the woken bash prints the checksum of its data."""
    a, b = netns
    tok = token_file(tmp_path)
    local, srv = tmp_path / "local", tmp_path / "srv"
    tree = Md5Tree(tmp_path, b)
    pid = tree.pid
    procs = []

    def streamed(action, k, *extra):
        sargs = ["--prev-images-dir", f"../{k - 1}"] if k > 1 else []
        s = NsServer(tmp_path, a, srv / str(k), "--token-file", tok, *sargs, name=f"ps{k}")
        procs.append(s)
        rx0 = rx_bytes(a, "vpsa")
        r = subprocess.run(["ip", "netns", "exec", b, amber(), action, "-t", str(pid),
                            "-D", str(local / str(k)), "--track-mem", "--page-server",
                            "--address", "10.77.0.1", "--port", str(s.port),
                            "--token-file", str(tok), *extra, "-v4",
                            "-o", str(tmp_path / f"{action}{k}.log")],
                           capture_output=True, text=True)
        assert r.returncode == 0, (tmp_path / f"{action}{k}.log").read_text()
        assert s.wait() == 0, s.logtext()
        return rx_bytes(a, "vpsa") - rx0

    try:
        first = streamed("pre-dump", 1)
        assert first >= 13 << 20, first
        last = streamed("dump", 2, "--prev-images-dir", "../1")
        assert last < first // 8, (first, last)  # only what changed
        tree.dumped()
        assert not list(local.rglob("page*.img"))
        for k in (1, 2):
            for p in (srv / str(k)).iterdir():
                if not p.is_symlink():
                    shutil.copy2(p, local / str(k) / p.name)
        r = subprocess.run(["ip", "netns", "exec", b, amber(), "restore", "-D",
                            str(local / "2"), "-d", "-v4", "-o",
                            str(tmp_path / "restore.log")], capture_output=True, text=True)
        assert r.returncode == 0, (tmp_path / "restore.log").read_text()
        tree.check_restored(b)
    finally:
        for p in procs:
            p.stop()
        tree.kill()
