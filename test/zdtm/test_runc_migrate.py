"""Container migration through runc with amber as its criu, on one host.

Pre-copy: `runc checkpoint --page-server ADDR:PORT` sends the pages to an
`amber page-server` (the destination) and writes the other images where
runc says; the two halves put together restore the container.

Post-copy: `runc checkpoint --lazy-pages --page-server ADDR:PORT
--status-fd FD` leaves the container frozen and serves its memory; once
the status fd says it is ready, the destination runs `amber lazy-pages
--page-server` on a copy of the images without pages and `runc restore
--lazy-pages` under another container id (runc's pid namespace lets the
copy run while the frozen source still holds its pids). The checkpoint
returns once every page was fetched; the source is then gone and the
copy goes on counting from where the source was.
"""

import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from test_runc import RUNC, Container, alive, need_runc, runc
from zdtm_runner import amber_path, read_text, wait_until


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counter_of(pid):
    v = (f"/proc/{pid}/root/tmp/counter")
    for _ in range(50):
        try:
            return int(open(v).read().strip())
        except (OSError, ValueError):
            time.sleep(0.02)
    raise AssertionError("no counter")


@pytest.fixture
def container(tmp_path):
    need_runc()
    c = Container(tmp_path, "migrate")
    try:
        yield c
    finally:
        c.delete()


def test_runc_page_server_migration(container, tmp_path):
    c = container
    c.run()
    c.wait_counter(3)
    dst = tmp_path / "dst"
    dst.mkdir()
    port = free_port()
    ps = subprocess.Popen([str(amber_path()), "page-server", "-D", str(dst), "--address",
                           "127.0.0.1", "--port", str(port), "-v4", "-o",
                           str(tmp_path / "ps.log")], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    try:
        assert ps.stdout.readline(), "page server did not start"
        before = c.counter()
        c.checkpoint(tmp_path / "img", tmp_path / "work", "--page-server",
                     f"127.0.0.1:{port}")
        assert ps.wait(timeout=60) == 0, read_text(tmp_path / "ps.log")[-2000:]
    finally:
        if ps.poll() is None:
            ps.kill()
            ps.wait()
    # the pages went to the page server, not into runc's image path
    assert not list((tmp_path / "img").glob("pages-*.img"))
    assert list(dst.glob("pages-*.img"))
    for p in (tmp_path / "img").iterdir():
        if p.is_file() and not (dst / p.name).exists():
            shutil.copy2(p, dst / p.name)
    c.restore(dst, tmp_path / "work2")
    assert c.counter() >= before
    c.wait_counter(c.counter() + 3)


def test_runc_lazy_migration(container, tmp_path):
    c = container
    c.run()
    c.wait_counter(3)
    src_pid = c.state()["pid"]
    port = free_port()
    r_fd, w_fd = os.pipe()
    work = tmp_path / "work"
    ck = subprocess.Popen(
        [RUNC, "--criu", str(amber_path()), "checkpoint", "--image-path", str(tmp_path / "img"),
         "--work-path", str(work), "--lazy-pages", "--page-server", f"127.0.0.1:{port}",
         "--status-fd", str(w_fd), c.cid],
        pass_fds=(w_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    os.close(w_fd)
    other = c.cid + "-lazy"
    daemon = None
    try:
        ready = os.read(r_fd, 1)
        assert ready == b"\0", (ready, ck.poll(), read_text(work / "dump.log")[-3000:])
        # frozen while it serves
        assert open(f"/proc/{src_pid}/stat").read().rsplit(")", 1)[1].split()[0] in "tT"
        before = counter_of(src_pid)
        dst = tmp_path / "dst"
        dst.mkdir()
        for p in (tmp_path / "img").iterdir():
            if p.is_file() and not p.name.startswith("pages-"):
                shutil.copy2(p, dst / p.name)
        # the default socket, in the directory runc's restore works in (as CRIU's)
        sock = dst / "lazy-pages.socket"
        daemon = subprocess.Popen(
            [str(amber_path()), "lazy-pages", "-D", str(dst), "--page-server", "--address", "127.0.0.1", "--port", str(port), "-v4", "-o",
             str(tmp_path / "lazy-pages.log")], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(sock.exists, 30), read_text(tmp_path / "lazy-pages.log")[-2000:]
        r = runc("--criu", amber_path(), "restore", "-d", "--lazy-pages", "--image-path", dst,
                 "--work-path", dst, other, cwd=c.bundle, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr + read_text(dst / "restore.log")
        assert daemon.wait(timeout=120) == 0, read_text(tmp_path / "lazy-pages.log")[-3000:]
        out, err = ck.communicate(timeout=120)
        assert ck.returncode == 0, err + read_text(work / "dump.log")[-3000:]
        assert "every page was fetched" in read_text(work / "dump.log")
        assert wait_until(lambda: not alive(src_pid), 10), "the source runs on"
        st = runc("state", other)
        assert st.returncode == 0, st.stderr
        pid = json.loads(st.stdout)["pid"]
        assert counter_of(pid) >= before
        assert wait_until(lambda: counter_of(pid) > before + 3, 10)
        assert open(f"/proc/{pid}/root/tmp/marker").read().startswith("amber-marker")
    finally:
        os.close(r_fd)
        for p in (ck, daemon):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        runc("delete", "-f", other)
