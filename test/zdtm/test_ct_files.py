"""Files a container makes among its own mounts, checkpointed in every
zdtm mode (docs/namespaces.md): unix sockets bound to a path, FIFOs and
a pty pair of the container's own devpts.

helpers/ct_files (static) is started by `unshare -m`, pivot_root's into a
directory of its own with a tmpfs on /run, a proc and a devpts instance
on /dev/pts, sets up what its PARTS name (see its header) and waits for
/run/check. The restore gets the directory as --root. After it (or right
away in nodump), the test makes /run/check through /proc/PID/root; the
helper checks names, owners, modes, queued data, that the sockets still
connect and the FIFO and pty still carry data, and writes /run/result.
"""

import subprocess
import time
from pathlib import Path

import pytest

from zdtm_runner import ZDTM_DIR, Run, guarded, read_text

HELPER = ZDTM_DIR / "helpers" / "ct_files"


def start(run, parts):
    root = run.dir / "root"
    for d in ("proc", "old", "run", "dev/pts"):
        (root / d).mkdir(parents=True)
    (root / "ct_files").write_bytes(HELPER.read_bytes())
    (root / "ct_files").chmod(0o755)
    run.popen = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", str(root / "ct_files"),
         str(root), parts],
        cwd=run.dir, stdin=subprocess.DEVNULL, stdout=open(run.dir / "out", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    run.notes = [run.dir / "out"]
    run.set_root(run.popen.pid)
    run.action_args = {"restore": ["--root", root]}
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{run.pid}/root/run/ready").exists():
        if run.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ct_files did not start: {read_text(run.dir / 'out')}",
                        pytrace=False)
        time.sleep(0.02)


def check(run):
    """Makes /run/check in the (restored) tree; its verdict."""
    Path(f"/proc/{run.pid}/root/run/check").write_text("")
    result = Path(f"/proc/{run.pid}/root/run/result")
    deadline = time.monotonic() + 20
    while True:
        try:
            got = result.read_text()
            break
        except FileNotFoundError:
            pass
        if not run.alive(run.pid):
            pytest.fail("ct_files ended without a result", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("ct_files gave no result", pytrace=False)
        time.sleep(0.02)
    Path(f"/proc/{run.pid}/root/run/done").write_text("")
    if got != "PASS":
        pytest.fail(got, pytrace=False)
    if run.wait_gone([run.pid], 10):
        pytest.fail("ct_files did not exit after its check", pytrace=False)


@pytest.mark.parametrize("parts", ["unix", "fifo", "pty", "unix,fifo,pty", "fifo,pty,epoll"])
def test_ct_files(zdtm_mode, parts):
    if not HELPER.exists():
        pytest.fail(f"{HELPER} is not built: make -C test/zdtm", pytrace=False)
    zdtm_mode.preflight()
    run = Run(f"ct_files_{parts.replace(',', '+')}", zdtm_mode, compare_state=False)

    def body():
        start(run, parts)
        zdtm_mode.checkpoint(run)
        check(run)

    guarded(run, body)
