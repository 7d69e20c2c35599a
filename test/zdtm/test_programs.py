"""Real programs from Debian, checkpointed mid-way (in the dump mode).

Each program runs twice in the same test: a reference run left alone and
a subject run that the mode checkpoints once it has made some progress.
Both must exit 0 with byte-identical output.  Each runs in its own session
with stdin/stdout/stderr on files of its own directory.
"""

import random
import subprocess
import time
from pathlib import Path

import pytest

from zdtm_runner import Run, env_float, guarded

PY_CODE = r"""
import hashlib
M = (1 << 521) - 1  # a Mersenne prime: big-integer state in the heap
h, acc = b"amber", 1
for i in range(1, 4_000_001):
    h = hashlib.sha256(h).digest()
    acc = (acc * 6364136223846793005 + int.from_bytes(h, "big")) % M
    if i % 40_000 == 0:
        print(i, h.hex(), acc % 10**30, flush=True)
print("done", len(str(acc)))
"""

BASH_CODE = """
for ((i = 1; i <= 100; i++)); do
    echo "tick $i $((i * i))"
    sleep 0.05
done
echo done
"""

# asyncio's event loop is an epoll (with a socketpair to wake itself): an
# echo server and a client on a unix socketpair, paced by asyncio timers.
ASYNCIO_CODE = r"""
import asyncio, hashlib, socket

async def serve(reader, writer):
    while line := await reader.readline():
        writer.write(hashlib.sha256(line).hexdigest().encode() + b"\n")
        await writer.drain()
    writer.close()

async def main():
    a, b = socket.socketpair()
    server = asyncio.create_task(serve(*await asyncio.open_unix_connection(sock=a)))
    reader, writer = await asyncio.open_unix_connection(sock=b)
    for i in range(1, 151):
        writer.write(b"round %d\n" % i)
        print(i, (await reader.readline()).decode().strip(), flush=True)
        await asyncio.sleep(0.02)
    writer.close()
    await server
    print("done")

asyncio.run(main())
"""


# multiprocessing: a Pool of 3 workers, a Queue (a pipe and POSIX named
# semaphores: sem_open() maps a /dev/shm file under a temporary name it
# then unlinks, the inode staying linked as the semaphore's name) and a
# Manager (a server process on a unix socket bound in /tmp), started by
# the method given: fork, or spawn (fresh interpreters, the semaphores
# reopened by name).
MP_CODE = r"""
import multiprocessing as mp, sys, time

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    q, m = mp.Queue(), mp.Manager()
    d = m.dict()
    with mp.Pool(3) as pool:
        for i in range(1, 121):
            # a builtin: spawn's workers unpickle it by name
            r = pool.starmap(pow, [(x, 2) for x in range(i, i + 50)])
            d[i % 7] = sum(r)
            q.put(i)
            print(i, sum(r), q.get(), sorted(d.items())[:3], flush=True)
            time.sleep(0.02)
    m.shutdown()
    print("done")
"""


def make_xz_input(path, size=112 << 20):
    """Deterministic pseudo-random text: compressible, so xz is not too slow."""
    r = random.Random(20240601)
    words = [r.randbytes(r.randint(2, 9)).hex().encode() for _ in range(4096)]
    with open(path, "wb") as f:
        written = 0
        while written < size:
            line = b" ".join(r.choices(words, k=4096)) + b"\n"
            f.write(line)
            written += len(line)


class Program:
    def __init__(self, argv, progress, stdin=None, prepare=None):
        self.argv = argv          # command line
        self.progress = progress  # output bytes before the checkpoint
        self.stdin = stdin        # input file name in the test dir
        self.prepare = prepare    # prepare(path of stdin)


PROGRAMS = {
    "python3": Program(["/usr/bin/python3", "-c", PY_CODE], progress=2000),
    "bash_loop": Program(["/bin/bash", "-c", BASH_CODE], progress=150),
    "asyncio": Program(["/usr/bin/python3", "-c", ASYNCIO_CODE], progress=1500),
    "mp_fork": Program(["/usr/bin/python3", "-c", MP_CODE, "fork"], progress=1500),
    "mp_spawn": Program(["/usr/bin/python3", "-c", MP_CODE, "spawn"], progress=1500),
    "xz": Program(["/usr/bin/xz", "-T1", "-1", "-c"], progress=4 << 20,
                  stdin="input.dat", prepare=make_xz_input),
}


def spawn(prog, workdir, stdin_path):
    workdir.mkdir()
    stdin = open(stdin_path, "rb") if stdin_path else \
        open("/dev/null", "rb")
    with stdin, open(workdir / "out", "wb") as out, \
            open(workdir / "err", "wb") as err:
        return subprocess.Popen(prog.argv, cwd=workdir, stdin=stdin,
                                stdout=out, stderr=err,
                                start_new_session=True)


def wait_progress(run, out, nbytes):
    deadline = time.monotonic() + 60
    while out.stat().st_size < nbytes:
        if not run.alive(run.pid):
            pytest.fail("the program ended before the checkpoint: give it "
                        "more work", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no progress within 60 s", pytrace=False)
        time.sleep(0.01)


def wait_exit(run, timeout):
    if run.wait_gone([run.pid], timeout):
        pytest.fail(f"the program did not finish within {timeout} s",
                    pytrace=False)
    return run.exit_status.get(run.pid)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program(name, zdtm_mode):
    prog = PROGRAMS[name]
    if not Path(prog.argv[0]).exists():
        pytest.skip(f"{prog.argv[0]} is not installed (Debian package)")
    zdtm_mode.preflight()
    run = Run(name, zdtm_mode, compare_state=False)

    def body():
        stdin = run.dir / prog.stdin if prog.stdin else None
        if prog.prepare:
            prog.prepare(stdin)
        ref = spawn(prog, run.dir / "reference", stdin)
        run.popen = spawn(prog, run.dir / "subject", stdin)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "subject" / "err", run.dir / "reference" / "err"]
        try:
            wait_progress(run, run.dir / "subject" / "out", prog.progress)
            run.walk()
            zdtm_mode.checkpoint(run)
            status = wait_exit(run, env_float("ZDTM_TIMEOUT", 120))
            ref_status = ref.wait(timeout=env_float("ZDTM_TIMEOUT", 120))
        finally:
            if ref.poll() is None:
                ref.kill()
                ref.wait()
        if ref_status != 0:
            pytest.fail(f"the reference run exited with {ref_status}",
                        pytrace=False)
        if status not in (None, 0):
            pytest.fail(f"the checkpointed run exited with {status}",
                        pytrace=False)
        for f in ("out", "err"):
            a = (run.dir / "reference" / f).read_bytes()
            b = (run.dir / "subject" / f).read_bytes()
            if a != b:
                pytest.fail(f"std{f} differs from the uninterrupted run "
                            f"({len(b)} vs {len(a)} bytes)", pytrace=False)

    guarded(run, body)
