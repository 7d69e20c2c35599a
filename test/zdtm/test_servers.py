"""Real servers from Debian, checked from outside across a checkpoint.

A server runs in its own session on 127.0.0.1 with a random high port;
a client fetches a file before the checkpoint and again after the restore
(no restart in between): both copies must match the file's checksum.
"""

import hashlib
import http.client
import json
import os
import random
import shutil
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


NODE_SERVER = r"""
const http = require('http');
const crypto = require('crypto');
// 16 MiB of state whose digest every reply carries, and a counter
const big = Buffer.alloc(16 << 20);
for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i * 2654435761 >>> 0, i);
const digest = crypto.createHash('sha256').update(big).digest('hex');
let requests = 0, ticks = 0;
setInterval(() => { ticks++; }, 20);
const server = http.createServer((req, res) => {
    requests++;
    const now = crypto.createHash('sha256').update(big).digest('hex');
    res.end(JSON.stringify({ requests, ticks, same: now === digest, digest }));
});
server.keepAliveTimeout = 600000;
server.listen(Number(process.argv[2]), '127.0.0.1');
"""


def need(program):
    path = shutil.which(program)
    if not path:
        pytest.skip(f"{program} is not installed (scripts/packages-test.txt has it)")
    return path


def test_node_keepalive(zdtm_mode):
    """A Node.js HTTP server (libuv: epoll, eventfds, a thread pool, 16 MiB
    of state): a keep-alive connection opened before the dump is used after
    the restore; the request counter and the timer's ticks go on."""
    node = need("node")
    zdtm_mode.preflight()
    run = Run("node_server", zdtm_mode, compare_state=False)

    def body():
        script = run.dir / "server.js"
        script.write_text(NODE_SERVER)
        port = random.randint(20000, 60000)
        with open(run.dir / "out", "wb") as out:
            run.popen = subprocess.Popen([node, str(script), str(port)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "out"]
        fetch(f"http://127.0.0.1:{port}/")  # up; request 1
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def ask():
            kept.request("GET", "/")
            return json.loads(kept.getresponse().read())

        before = ask()
        if before["requests"] != 2 or not before["same"]:
            pytest.fail(f"unexpected state before the checkpoint: {before}", pytrace=False)
        run.walk()
        zdtm_mode.checkpoint(run)  # the restored server runs detached
        try:
            after = ask()
            if after["requests"] != 3 or after["digest"] != before["digest"] or \
                    not after["same"] or after["ticks"] < before["ticks"]:
                pytest.fail(f"state after the restore {after}, before {before}",
                            pytrace=False)
            if not wait_until(lambda: ask()["ticks"] > after["ticks"], timeout=10):
                pytest.fail("the server's timer stopped", pytrace=False)
            if json.loads(fetch(f"http://127.0.0.1:{port}/"))["digest"] != before["digest"]:
                pytest.fail("a new connection gets other state", pytrace=False)
        finally:
            kept.close()
            run.kill_tree()

    guarded(run, body)


JAVA_SERVER = r"""
import java.io.*;
import java.net.*;
import java.util.concurrent.atomic.AtomicLong;

public class Server {
    static long[] heap;
    static long sum() { long s = 0; for (long v : heap) s += v; return s; }

    public static void main(String[] args) throws Exception {
        heap = new long[4 << 20]; // 32 MiB of the Java heap
        for (int i = 0; i < heap.length; i++) heap[i] = i * 2654435761L;
        final long want = sum();
        final AtomicLong requests = new AtomicLong();
        ServerSocket ss = new ServerSocket(Integer.parseInt(args[0]), 50,
                                           InetAddress.getByName("127.0.0.1"));
        while (true) {
            Socket s = ss.accept();
            new Thread(() -> {
                try (BufferedReader in = new BufferedReader(
                         new InputStreamReader(s.getInputStream()));
                     PrintWriter out = new PrintWriter(s.getOutputStream(), true)) {
                    for (String line; (line = in.readLine()) != null;)
                        out.println(requests.incrementAndGet() + " " + (sum() == want) +
                                    " " + want + " " + line);
                } catch (IOException e) {
                }
            }).start();
        }
    }
}
"""


def test_java_server(zdtm_mode):
    """A JVM (OpenJDK: ~20 threads, its GC, JIT code, 32 MiB of checked heap)
    serving a line protocol: a connection opened before the dump, its thread
    blocked in read, answers after the restore; so does a new one."""
    java, javac = need("java"), need("javac")
    zdtm_mode.preflight()
    run = Run("java_server", zdtm_mode, compare_state=False)

    def body():
        (run.dir / "Server.java").write_text(JAVA_SERVER)
        subprocess.run([javac, "-d", str(run.dir), str(run.dir / "Server.java")],
                       check=True, capture_output=True, timeout=120)
        port = random.randint(20000, 60000)
        with open(run.dir / "out", "wb") as out:
            run.popen = subprocess.Popen(
                [java, "-Xms64m", "-Xmx64m", "-XX:+UseSerialGC", "-cp", str(run.dir),
                 "Server", str(port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "out"]
        deadline = time.monotonic() + 60
        while True:
            try:
                kept = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        lines = kept.makefile("rw")

        def ask(f, word):
            f.write(word + "\n")
            f.flush()
            return f.readline().split()

        first = ask(lines, "before")
        if first[0] != "1" or first[1] != "true" or first[3] != "before":
            pytest.fail(f"unexpected reply before the checkpoint: {first}", pytrace=False)
        threads = int(read_status(run.pid, "Threads"))
        run.walk()
        zdtm_mode.checkpoint(run)  # the restored server runs detached
        try:
            after = ask(lines, "after")
            if after != ["2", "true", first[2], "after"]:
                pytest.fail(f"reply after the restore {after}, before {first}",
                            pytrace=False)
            if int(read_status(run.pid, "Threads")) < threads:
                pytest.fail("the JVM lost threads", pytrace=False)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sk:
                other = ask(sk.makefile("rw"), "new")
            if other != ["3", "true", first[2], "new"]:
                pytest.fail(f"a new connection got {other}", pytrace=False)
        finally:
            kept.close()
            run.kill_tree()

    guarded(run, body)


def read_status(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return line.split()[1]
    raise AssertionError(f"no {field} in /proc/{pid}/status")
