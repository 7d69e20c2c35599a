"""Real servers from Debian, checked from outside across a checkpoint.

A server runs in its own session on 127.0.0.1 with a random high port;
a client fetches a file before the checkpoint and again after the restore
(no restart in between): both copies must match the file's checksum.
"""

import hashlib
import random
import subprocess
import time
import urllib.request

import pytest

from zdtm_runner import Run, guarded


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
