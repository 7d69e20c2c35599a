"""State amber cannot save yet fails the dump, naming it; the tree runs on.

A process in a namespace of its own (here: uts) would otherwise be restored
into amber's namespaces, and a POSIX timer would be dropped. Each must
make `amber dump` fail with the process and the reason in the log, and
leave the process running (not stopped, not traced).
"""

import subprocess
import time

import pytest

from zdtm_runner import ZDTM_DIR, amber_path, proc_stat, read_text, sanitizer_env

POSIX_TIMER = ZDTM_DIR / "helpers" / "posix_timer"


def wait_for_exec(pid, comm, timeout=10):
    """The child has exec'd @comm (unshare execs sleep in place)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_text(f"/proc/{pid}/comm").strip() == comm:
            return
        time.sleep(0.01)
    pytest.fail(f"{pid} never became {comm}")


CASES = {
    "uts-namespace": (["unshare", "--uts", "sleep", "1000"], "sleep",
                      "own uts namespace"),
    "posix-timer": ([str(POSIX_TIMER)], "posix_timer", "POSIX timer"),
    # A mount namespace whose mounts differ from amber's (a private tmpfs).
    "mnt-namespace": (["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       "mount -t tmpfs none /mnt && exec sleep 1000"], "sleep",
                      "own mnt namespace"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dump_refuses(tmp_path, case):
    argv, comm, reason = CASES[case]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_exec(p.pid, comm)
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=sanitizer_env(imgdir), timeout=60)
        assert r.returncode == 1, f"dump exited {r.returncode}"
        text = read_text(log)
        assert f"process {p.pid}" in text and reason in text, text
        assert p.poll() is None, "the process died"
        st = proc_stat(p.pid)
        assert st and st[0] in "SR", f"process left in state {st}"
        status = read_text(f"/proc/{p.pid}/status")
        assert "TracerPid:\t0" in status
    finally:
        p.kill()
        p.wait()
