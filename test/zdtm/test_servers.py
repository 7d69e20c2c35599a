"""Real servers from Debian, checked from outside across a checkpoint.

A server runs in its own session on 127.0.0.1 with a random high port;
a client fetches a file before the checkpoint and again after the restore
(no restart in between): both copies must match the file's checksum.
"""

import hashlib
import http.client
import os
import random
import socket
import subprocess
import time
import urllib.request

import pytest

from zdtm_runner import Run, guarded, tree_pids, wait_until


def fetch(url, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_http_server(zdtm_mode):
    zdtm_mode.preflight()
    run = Run("http_server", zdtm_mode, compare_state=False)

    def body():
        www = run.dir / "www"
        www.mkdir()
        data = random.Random(7).randbytes(3 << 20)
        (www / "blob").write_bytes(data)
        want = hashlib.sha256(data).hexdigest()
        port = random.randint(20000, 60000)
        with open(run.dir / "out", "wb") as out, open(run.dir / "err", "wb") as err:
            run.popen = subprocess.Popen(
                ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1",
                 str(port)], cwd=www, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "err"]
        url = f"http://127.0.0.1:{port}/blob"
        if hashlib.sha256(fetch(url)).hexdigest() != want:
            pytest.fail("wrong file before the checkpoint", pytrace=False)
        run.walk()
        zdtm_mode.checkpoint(run)  # the restored server runs detached
        try:
            if hashlib.sha256(fetch(url)).hexdigest() != want:
                pytest.fail("wrong file after the restore", pytrace=False)
        finally:
            run.kill_tree()

    guarded(run, body)


class Resp:
    """A RESP client on one TCP connection, kept open across the checkpoint."""

    def __init__(self, port):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sk = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sk.recv(65536)
            if not d:
                raise ConnectionError("redis closed the connection")
            self.buf += d
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind in (b"+", b":"):
            return rest
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                d = self.sk.recv(65536)
                if not d:
                    raise ConnectionError("redis closed the connection")
                self.buf += d
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        raise RuntimeError(f"unexpected reply {line!r}")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sk.sendall(out)
        return self._reply()


def test_redis_connection_kept(zdtm_mode):
    """redis-server holding a dataset; a client connection opened before the
    dump is used after the restore without reconnecting (--tcp-established)."""
    zdtm_mode.preflight()
    run = Run("redis_server", zdtm_mode, compare_state=False)

    def body():
        port = random.randint(20000, 60000)
        with open(run.dir / "out", "wb") as out:
            run.popen = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(run.dir),
                 "--logfile", str(run.dir / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "redis.log"]
        c = Resp(port)
        rnd = random.Random(11)
        values = {f"key:{i}": rnd.randbytes(rnd.randint(1, 4096)) for i in range(2000)}
        for k, v in values.items():
            c.cmd("SET", k, v)
        c.cmd("RPUSH", "list", *range(100))
        # a reply left unread in the connection across the checkpoint
        c.sk.sendall(b"*2\r\n$3\r\nGET\r\n$6\r\nkey:42\r\n")
        time.sleep(0.2)
        run.walk()
        zdtm_mode.checkpoint(run)  # the restored server runs detached
        try:
            if c._reply() != values["key:42"]:
                pytest.fail("the reply queued at the checkpoint is wrong", pytrace=False)
            for k in rnd.sample(sorted(values), 200):
                if c.cmd("GET", k) != values[k]:
                    pytest.fail(f"{k} differs after the restore", pytrace=False)
            if int(c.cmd("DBSIZE")) != len(values) + 1 or int(c.cmd("LLEN", "list")) != 100:
                pytest.fail("the dataset's size changed", pytrace=False)
            c.cmd("SET", "after", "restore")
            if Resp(port).cmd("GET", "after") != b"restore":
                pytest.fail("a new client does not see the old client's write",
                            pytrace=False)
        finally:
            c.sk.close()
            run.kill_tree()

    guarded(run, body)


NGINX_CONF = """
daemon off;
master_process on;
worker_processes 2;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_timeout 600;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
    }}
}}
"""


def test_nginx_keepalive(zdtm_mode):
    """nginx, a master and two workers running as www-data: a file fetched
    before and after the restore on one keep-alive connection, and on new
    ones (--tcp-established)."""
    zdtm_mode.preflight()
    run = Run("nginx_server", zdtm_mode, compare_state=False)

    def body():
        (run.dir / "www").mkdir()
        (run.dir / "tmp").mkdir()
        os.chmod(run.dir, 0o755)
        data = random.Random(5).randbytes(1 << 20)
        (run.dir / "www" / "blob").write_bytes(data)
        os.chmod(run.dir / "www" / "blob", 0o644)
        os.chmod(run.dir / "www", 0o755)
        port = random.randint(20000, 60000)
        conf = run.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=run.dir, port=port))
        with open(run.dir / "out", "wb") as out:
            run.popen = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run.dir)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "error.log"]
        url = f"http://127.0.0.1:{port}/blob"
        if fetch(url) != data:
            pytest.fail("wrong file before the checkpoint", pytrace=False)
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        kept.request("GET", "/blob")
        if kept.getresponse().read() != data:
            pytest.fail("wrong file on the kept connection", pytrace=False)
        if not wait_until(lambda: len(tree_pids(run.pid)) == 3, timeout=10):
            pytest.fail(f"nginx has {len(tree_pids(run.pid))} processes, not 3",
                        pytrace=False)
        run.walk()
        zdtm_mode.checkpoint(run)  # the restored server runs detached
        try:
            kept.request("GET", "/blob")
            if kept.getresponse().read() != data:
                pytest.fail("wrong file on the kept connection after the restore",
                            pytrace=False)
            for _ in range(4):
                if fetch(url) != data:
                    pytest.fail("wrong file after the restore", pytrace=False)
        finally:
            kept.close()
            run.kill_tree()

    guarded(run, body)
