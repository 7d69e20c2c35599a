"""Terminals across a checkpoint, checked from outside.

- tmux: a tmux server and the shell in its pane (a pty pair inside the
  tree, the shell's controlling terminal): the shell keeps its variables,
  pid and /dev/pts name, and answers keys sent after the restore.
- --shell-job: a shell reading from a terminal whose master is outside the
  tree (held by this test) is restored on amber's own terminal and reads
  and answers there.
"""

import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from zdtm_runner import Run, guarded, proc_stat, wait_until


def tmux(sock, *args):
    return subprocess.run(["tmux", "-S", str(sock), *args], capture_output=True,
                          text=True, timeout=30)


def pane_has(sock, text, timeout=15.0):
    return wait_until(lambda: text in tmux(sock, "capture-pane", "-p").stdout,
                      timeout=timeout)


def tty_nr(pid):
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return int(fields[4])


def test_tmux_session(zdtm_mode):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (scripts/deps.sh installs it)")
    zdtm_mode.preflight()
    run = Run("tmux_session", zdtm_mode, compare_state=False)
    sock = run.dir / "tmux.sock"

    def body():
        r = tmux(sock, "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30",
                 "bash --norc --noprofile")
        if r.returncode:
            pytest.fail(f"tmux new-session: {r.stderr}", pytrace=False)
        server = int(tmux(sock, "display", "-p", "#{pid}").stdout)
        shell = int(tmux(sock, "display", "-p", "#{pane_pid}").stdout)
        pts = tmux(sock, "display", "-p", "#{pane_tty}").stdout.strip()
        run.set_root(server)
        tmux(sock, "send-keys", "X=41; echo before-$X", "Enter")
        if not pane_has(sock, "before-41"):
            pytest.fail("the shell in tmux did not answer before the checkpoint",
                        pytrace=False)
        nr = tty_nr(shell)
        zdtm_mode.checkpoint(run)
        try:
            if proc_stat(shell) is None:
                pytest.fail(f"the pane's shell {shell} is not running after the restore",
                            pytrace=False)
            if tty_nr(shell) != nr:
                pytest.fail("the shell lost its controlling terminal", pytrace=False)
            if tmux(sock, "display", "-p", "#{pane_tty}").stdout.strip() != pts:
                pytest.fail(f"the pane's terminal is not {pts} any more", pytrace=False)
            tmux(sock, "send-keys", "echo after-$((X+1)) $$", "Enter")
            if not pane_has(sock, f"after-42 {shell}"):
                pytest.fail("the shell in tmux did not answer after the restore:\n" +
                            tmux(sock, "capture-pane", "-p").stdout, pytrace=False)
        finally:
            tmux(sock, "kill-server")
            run.kill_tree()
        if not wait_until(lambda: proc_stat(shell) is None or proc_stat(shell)[0] == "Z",
                          timeout=10):
            pytest.fail("the shell outlived its tmux server", pytrace=False)

    guarded(run, body)


def read_until(fd, text, timeout=15.0):
    buf = b""
    deadline = time.monotonic() + timeout
    while text not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        try:
            buf += os.read(fd, 4096)
        except OSError:
            break
    return buf


SHELL_LOOP = 'i=0; while read -r l; do i=$((i+1)); echo "got $l $i"; done'


def test_shell_job(zdtm_mode):
    zdtm_mode.preflight()
    run = Run("shell_job", zdtm_mode, compare_state=False)
    master, slave = pty.openpty()
    new_master, new_slave = pty.openpty()

    def body():
        run.popen = subprocess.Popen(["bash", "--norc", "--noprofile", "-c", SHELL_LOOP],
                                     stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        run.set_root(run.popen.pid)
        os.write(master, b"one\n")
        if b"got one 1" not in read_until(master, b"got one 1"):
            pytest.fail("the shell did not answer before the checkpoint", pytrace=False)
        # the restored shell gets amber's terminal: new_slave
        run.amber_stdin = new_slave
        zdtm_mode.checkpoint(run)
        # (nodump: nothing was restored, the shell is on its own terminal still)
        term = master if zdtm_mode.name == "nodump" else new_master
        try:
            os.write(term, b"two\n")
            out = read_until(term, b"got two 2")
            if b"got two 2" not in out:
                pytest.fail(f"the restored shell did not answer on amber's terminal: {out!r}",
                            pytrace=False)
        finally:
            run.kill_tree()

    try:
        guarded(run, body)
    finally:
        for fd in (master, slave, new_master, new_slave):
            os.close(fd)
