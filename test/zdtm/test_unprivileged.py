"""amber run by an ordinary user holding only CAP_CHECKPOINT_RESTORE.

The test and amber run as uid USER (setpriv: no groups, the capability in
the inheritable and ambient sets, so it survives the exec into amber); the
runner itself stays root to capture /proc and to reap.  What the kernel
lets such a user do, amber must do: seize its own tasks (no
PTRACE_O_SUSPEND_SECCOMP without seccomp), run remote syscalls (no setns),
restore with the saved pids (clone3 set_tid) and its own ids (no
setgroups/setresuid).  The images must be the user's, 0600 in a 0700
directory.  What needs more is refused with what is missing: a tree under
seccomp (CAP_SYS_ADMIN), another user's images (the ownership check),
lazy pages when vm.unprivileged_userfaultfd is 0.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_zdtm import start, stop
from zdtm_runner import (MODES, Run, amber_path, guarded, read_text,
                         sanitizer_env, tree_pids, wait_until)

STATIC = Path(__file__).resolve().parent / "static"
USER, OTHER = 61234, 61235
TESTS = ["anon_1m", "pipe_inflight", "file_offset", "threads_2", "unlinked_file",
         "file_map_private", "memfd", "unix_stream", "fork_tree", "pgid_session",
         "sigpending", "posix_timers", "file_map_shared", "anon_shared", "heap", "itimers",
         "epoll"]


def as_user(uid, cmd, caps=True, extra=()):
    """cmd as uid with CAP_CHECKPOINT_RESTORE (if caps) and the extra caps."""
    pre = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    if caps:
        names = ",".join("+" + c for c in ("checkpoint_restore", *extra))
        pre += [f"--inh-caps={names}", f"--ambient-caps={names}"]
    return pre + [str(c) for c in cmd]


class UserRun(Run):
    """A Run whose test and amber commands run as uid self.uid, amber with
    CAP_CHECKPOINT_RESTORE and the extra caps."""

    def __init__(self, name, mode, uid, extra=()):
        super().__init__(name, mode)
        self.uid = uid
        os.chown(self.dir, uid, uid)
        self.imgdir.mkdir(mode=0o700)
        os.chown(self.imgdir, uid, uid)
        self.extra = extra
        self.real = amber_path()  # before AMBER names the wrapper

    def wrapper(self):
        wrapper = self.dir / "amber-as-user"
        wrapper.write_text("#!/bin/sh\nexec " +
                           " ".join(as_user(self.uid, [self.real], extra=self.extra)) +
                           ' "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    def amber(self, action, args, log):
        # Run.amber() with setpriv in front: the same log checks.
        prev = os.environ.get("AMBER")
        os.environ["AMBER"] = str(self.wrapper())
        try:
            super().amber(action, args, log)
        finally:
            if prev is None:
                del os.environ["AMBER"]
            else:
                os.environ["AMBER"] = prev


def start_as(run, name):
    """test_zdtm.start() with the test run as run.uid, without capabilities."""
    wrapper = run.dir / "test-as-user"
    wrapper.write_text("#!/bin/sh\nexec " +
                       " ".join(as_user(run.uid, [STATIC / name], caps=False)) + ' "$@"\n')
    wrapper.chmod(0o755)
    start(run, wrapper)


def user_tmpdir(uid):
    """A fresh directory of uid's under ZDTM_TMPDIR (pytest's tmp_path sits
    in root's 0700 directory, out of the user's reach)."""
    d = Path(tempfile.mkdtemp(prefix="zdtm-unpriv-", dir=os.environ.get("ZDTM_TMPDIR") or None))
    os.chown(d, uid, uid)
    return d


def check_images(imgdir, uid):
    st = imgdir.stat()
    assert st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o700, \
        f"{imgdir}: uid {st.st_uid} mode {oct(st.st_mode)}"
    images = [f for f in imgdir.iterdir() if f.suffix == ".img" or f.name == "amber.sums"]
    assert len(images) > 5, images
    for f in images:
        st = f.stat()
        assert st.st_uid == uid, f"{f.name} is owned by uid {st.st_uid}, not {uid}"
        assert stat.S_IMODE(st.st_mode) == 0o600, f"{f.name} has mode {oct(st.st_mode)}"


@pytest.fixture(scope="module", autouse=True)
def need_setpriv():
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv (util-linux)")
    if os.geteuid() != 0:
        pytest.skip("the runner must be root (it switches users)")


@pytest.mark.parametrize("name", TESTS)
def test_unprivileged_dump_restore(name):
    run = UserRun(name, MODES["dump"], USER)

    def body():
        start_as(run, name)
        MODES["dump"].checkpoint(run)
        check_images(run.imgdir, USER)
        for pid in tree_pids(run.pid):
            uid = read_text(f"/proc/{pid}/status").split("Uid:")[1].split()[0]
            assert int(uid) == USER, f"restored task {pid} runs as uid {uid}"
        stop(run)

    guarded(run, body)


def amber_as(uid, args, cwd, caps=True):
    return subprocess.run(as_user(uid, [amber_path(), *args], caps), cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=sanitizer_env(cwd), timeout=120)


def test_unprivileged_flag():
    """CRIU's --unprivileged is accepted by dump and restore (with the
    capability it changes nothing: amber checks each step anyway)."""
    run = UserRun("pipe_inflight", MODES["dump"], USER)

    def body():
        start_as(run, "pipe_inflight")
        before = run.snapshot()
        r = amber_as(USER, ["dump", "-t", run.pid, "-D", run.imgdir, "--unprivileged"],
                     run.imgdir)
        assert r.returncode == 0, r.stderr
        run.reap_dumped()
        r = amber_as(USER, ["restore", "-D", run.imgdir, "-d", "--unprivileged",
                            "--pidfile", "restore.pid"], run.imgdir)
        assert r.returncode == 0, r.stderr
        run.set_root(int(read_text(run.imgdir / "restore.pid")))
        assert run.snapshot() == before
        stop(run)

    guarded(run, body)


def lazy_as_user(run):
    """MODES["lazy"].checkpoint(run) with every amber (the daemon too) as run.uid."""
    prev = os.environ.get("AMBER")
    os.environ["AMBER"] = str(run.wrapper())  # the daemon, started by the mode
    try:
        MODES["lazy"].checkpoint(run)
    finally:
        if prev is None:
            del os.environ["AMBER"]
        else:
            os.environ["AMBER"] = prev


def test_unprivileged_lazy_refused():
    """With CAP_CHECKPOINT_RESTORE alone a lazy restore is refused before
    any task exists, naming CAP_SYS_PTRACE: with vm.unprivileged_userfaultfd
    0 for userfaultfd() itself, with 1 for UFFD_FEATURE_EVENT_FORK (a fork
    before its pages arrive would see zeros without it). The same images
    then restore eagerly."""
    run = UserRun("anon_1m", MODES["dump"], USER)

    def body():
        start_as(run, "anon_1m")
        pid = run.pid
        MODES["dump"].dump(run)
        run.reap_dumped()
        r = amber_as(USER, ["restore", "-D", run.imgdir, "-d", "--lazy-pages",
                            "--lazy-socket", run.imgdir / "none.sock"], run.imgdir)
        assert r.returncode != 0, r.stderr
        assert "CAP_SYS_PTRACE" in r.stderr, r.stderr
        assert not Path(f"/proc/{pid}").exists(), "a task of the refused restore runs"
        MODES["dump"].restore(run)  # the same images restore eagerly
        run.set_root(int(read_text(run.imgdir / "restore.pid")))
        stop(run)

    guarded(run, body)


@pytest.mark.parametrize("name", ["anon_1m", "pipe_inflight", "threads_2"])
def test_unprivileged_lazy(name):
    """Lazy mode as the user holding CAP_SYS_PTRACE besides: the dump, the
    daemon and the restore run as USER and every page arrives."""
    run = UserRun(name, MODES["lazy"], USER, extra=("sys_ptrace",))

    def body():
        start_as(run, name)
        lazy_as_user(run)
        stop(run)

    guarded(run, body)


def test_other_users_images_refused():
    """USER's images, made readable and put in OTHER's directory: OTHER's
    restore is refused by the ownership check, nothing is created."""
    run = UserRun("pipe_inflight", MODES["dump"], USER)

    def body():
        start_as(run, "pipe_inflight")
        MODES["dump"].dump(run)
        run.reap_dumped()
        top = user_tmpdir(OTHER)
        theirs = top / "theirs"
        shutil.copytree(run.imgdir, theirs)  # keeps modes; owners below
        os.chown(theirs, OTHER, OTHER)
        for f in theirs.iterdir():
            os.chown(f, USER, USER)
            f.chmod(0o644)
        r = amber_as(OTHER, ["restore", "-D", theirs, "-d", "-v4", "-o", top / "r.log"], top)
        shutil.rmtree(top)
        assert r.returncode != 0
        assert f"owned by uid {USER}, not by the caller (uid {OTHER})" in r.stderr, r.stderr
        # USER's own restore of its images still works
        MODES["dump"].restore(run)
        run.set_root(int(read_text(run.imgdir / "restore.pid")))
        stop(run)

    guarded(run, body)


def test_unprivileged_seccomp_refused():
    """A task under seccomp (strict mode, as an ordinary user may set it)
    needs PTRACE_O_SUSPEND_SECCOMP, i.e. CAP_SYS_ADMIN: the dump is refused
    with that reason and the task runs on, untraced."""
    tmp = user_tmpdir(USER)
    code = ("import ctypes, os; ctypes.CDLL(None).prctl(22, 1, 0, 0, 0); "
            "os.write(1, b'in'); os.read(0, 1)")
    p = subprocess.Popen(as_user(USER, ["/usr/bin/python3", "-c", code], caps=False),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert p.stdout.read(2) == b"in"
        assert "Seccomp:\t1" in read_text(f"/proc/{p.pid}/status")
        r = amber_as(USER, ["dump", "-t", p.pid, "-D", tmp / "img"], tmp)
        assert r.returncode != 0
        assert "needs CAP_SYS_ADMIN" in r.stderr, r.stderr
        # let go: back asleep in read() (running for a moment after the detach)
        settled = lambda st: "TracerPid:\t0" in st and "State:\tS" in st
        for _ in range(200):
            status = read_text(f"/proc/{p.pid}/status")
            if settled(status):
                break
            time.sleep(0.01)
        assert settled(status), status
        assert p.poll() is None  # (strict mode can't even exit_group: it is killed below)
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tmp)


def test_unprivileged_tcp_refused():
    """A TCP connection needs CAP_NET_ADMIN twice over: for the network
    lock and for TCP_REPAIR. Each refusal names it; the task runs on.
    (Its stdio is /dev/null: a pipe or an unlinked file of root's could
    not be reopened by the user.)"""
    tmp = user_tmpdir(USER)
    ready, go = tmp / "ready", tmp / "go"
    code = ("import socket, os, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
            "s.listen(1); c = socket.create_connection(s.getsockname()); a, _ = s.accept(); "
            f"open('{ready}', 'w').close()\n"
            f"while not os.path.exists('{go}'): time.sleep(0.01)")
    p = subprocess.Popen(as_user(USER, ["/usr/bin/python3", "-c", code], caps=False),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(ready.exists, timeout=30)
        for extra, why in (([], "locking the network needs CAP_NET_ADMIN"),
                           (["--network-lock", "skip", "--tcp-established"],
                            "TCP_REPAIR (needs CAP_NET_ADMIN)")):
            r = amber_as(USER, ["dump", "-t", p.pid, "-D", tmp / "img", *extra], tmp)
            assert r.returncode != 0
            assert why in r.stderr, r.stderr
            assert "TracerPid:\t0" in read_text(f"/proc/{p.pid}/status")
        go.touch()
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tmp)


def test_without_capability_refused():
    """Without CAP_CHECKPOINT_RESTORE: --unprivileged (CRIU's) refuses at
    once; without the flag, the dump of a file mapping is refused at
    map_files and the restore at clone3 with a chosen pid, each naming the
    capability; the tree runs on after the dump, nothing is left after the
    restore."""
    run = UserRun("file_map_private", MODES["dump"], USER)

    def body():
        start_as(run, "file_map_private")
        for verb in (["dump", "-t", run.pid], ["restore", "-d"]):
            r = amber_as(USER, [*verb, "-D", run.imgdir, "--unprivileged"], run.imgdir,
                         caps=False)
            assert r.returncode != 0
            assert "--unprivileged needs CAP_CHECKPOINT_RESTORE" in r.stderr, r.stderr
        r = amber_as(USER, ["dump", "-t", run.pid, "-D", run.imgdir], run.imgdir, caps=False)
        assert r.returncode != 0
        assert "map_files needs CAP_CHECKPOINT_RESTORE" in r.stderr, r.stderr
        assert read_text(f"/proc/{run.pid}/status").count("TracerPid:\t0") == 1
        MODES["dump"].dump(run)  # with the capability
        run.reap_dumped()
        pid = run.pid
        r = amber_as(USER, ["restore", "-D", run.imgdir, "-d"], run.imgdir, caps=False)
        assert r.returncode != 0
        assert "a chosen pid needs CAP_CHECKPOINT_RESTORE" in r.stderr, r.stderr
        assert not Path(f"/proc/{pid}").exists()
        MODES["dump"].restore(run)
        run.set_root(int(read_text(run.imgdir / "restore.pid")))
        stop(run)

    guarded(run, body)


@pytest.mark.parametrize("what", ["pipe", "unlinked"])
def test_roots_file_refused(what):
    """A task of the user's holding a pipe root made (its stdin here) or an
    unlinked file of root's: the user can't reopen it through /proc, and
    the dump is refused naming its owner; the task runs on."""
    tmp = user_tmpdir(USER)
    ready, go = tmp / "ready", tmp / "go"
    code = (f"import os, time; open('{ready}', 'w').close()\n"
            f"while not os.path.exists('{go}'): time.sleep(0.01)")
    held = None
    if what == "unlinked":
        held = open(tmp / "roots", "w+")
        os.chmod(held.name, 0o600)
        os.unlink(held.name)
    p = subprocess.Popen(as_user(USER, ["/usr/bin/python3", "-c", code], caps=False),
                         stdin=subprocess.PIPE if what == "pipe" else held,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        assert wait_until(ready.exists, timeout=30)
        r = amber_as(USER, ["dump", "-t", p.pid, "-D", tmp / "img"], tmp)
        assert r.returncode != 0
        assert "it is uid 0's" in r.stderr and f"caller is uid {USER}" in r.stderr, r.stderr
        assert "TracerPid:\t0" in read_text(f"/proc/{p.pid}/status")
        go.touch()
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
        p.wait()
        if held:
            held.close()
        shutil.rmtree(tmp)


def test_seccomp_restore_refused():
    """A tree of the user's under seccomp, dumped by root and handed to the
    user: the user's restore is refused before any task exists, naming
    CAP_SYS_ADMIN (PTRACE_O_SUSPEND_SECCOMP)."""
    tmp = user_tmpdir(USER)
    img = tmp / "img"
    code = "import ctypes, os; ctypes.CDLL(None).prctl(22, 1, 0, 0, 0); os.read(0, 1)"
    p = subprocess.Popen(as_user(USER, ["/usr/bin/python3", "-c", code], caps=False),
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: "Seccomp:\t1" in read_text(f"/proc/{p.pid}/status"),
                          timeout=30)
        pid = p.pid
        r = subprocess.run([amber_path(), "dump", "-t", str(pid), "-D", str(img)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        p.wait(timeout=10)  # killed by the dump
        for f in [img, *img.iterdir()]:
            os.chown(f, USER, USER)
        r = amber_as(USER, ["restore", "-D", img, "-d"], tmp)
        assert r.returncode != 0
        assert "under seccomp" in r.stderr and "needs CAP_SYS_ADMIN" in r.stderr, r.stderr
        assert "clone3" not in r.stderr and not Path(f"/proc/{pid}").exists()
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tmp)
