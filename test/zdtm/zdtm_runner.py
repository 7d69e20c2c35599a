"""Helpers of the zdtm runner: processes, state capture, modes.

A *run* is one test program in one temp directory.  A *mode* decides what
happens to the running tree between start and SIGTERM (nothing, a dump and
restore, ...).  Both the zdtm tests (test_zdtm.py) and the real programs
(test_programs.py) use them.  Environment:

  AMBER              amber binary (default: <repo>/build/amber)
  ZDTM_MODES         comma-separated modes (default: dump)
  ZDTM_TMPDIR        where the per-test directories go (default: $TMPDIR)
  ZDTM_KEEP=1        keep the per-test directories even on success
  ZDTM_TIMEOUT       seconds to wait for a result after SIGTERM (default 60)
  ZDTM_AMBER_TIMEOUT seconds one amber command may take (default 300)
"""

import ctypes
import difflib
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ZDTM_DIR = Path(__file__).resolve().parent
REPO = ZDTM_DIR.parent.parent
STATUS_KEYS = ("Name", "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd",
               "CapAmb", "NoNewPrivs", "Umask")
THREAD_KEYS = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
PIDFILE = "restore.pid"  # `amber restore --pidfile`, in the image directory
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def env_float(name, default):
    return float(os.environ.get(name, default))


def amber_path():
    # absolute: amber runs in the image directory (AMBER=build/asan/amber works)
    return Path(os.environ.get("AMBER", REPO / "build" / "amber")).absolute()


SANITIZER_LOG = "sanitizer"


def sanitizer_env(logdir):
    """The environment for an amber command: ASAN reports go to
    LOGDIR/sanitizer.PID, also those of the tasks amber forks for a restore
    (their stderr is soon the restored tree's, which nobody checks).
    GCC's libubsan ignores log_path: its reports stay on stderr (amber's
    output, checked), and as recovery is off a UBSan error in a restoring
    task kills it, which fails the restore."""
    env = dict(os.environ)
    opts = [o for o in env.get("ASAN_OPTIONS", "").split(":") if o]
    env["ASAN_OPTIONS"] = ":".join(opts + [f"log_path={logdir}/{SANITIZER_LOG}"])
    return env


def amber_run(args, log, envdir):
    """`amber ARGS -v4 -o LOG` (60 s at most), its stdout and stderr
    together in .stdout, under the sanitizer environment of ENVDIR."""
    return subprocess.run([str(amber_path()), *args, "-v4", "-o", str(log)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=sanitizer_env(envdir), timeout=60)


def sanitizer_reports(logdir):
    """The lines of every sanitizer report written under logdir."""
    lines = []
    for path in sorted(Path(logdir).glob(f"{SANITIZER_LOG}.*")):
        lines += [f"{path.name}: {l}" for l in read_text(path).splitlines()]
    return lines


def set_subreaper():
    """Orphans of our tests (the daemonized test, restored trees) become our
    children, so we can reap them and read their exit status."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def kill_pids(*pids):
    """SIGKILLs each pid given (none: skipped); one already gone is fine."""
    for pid in pids:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def kill_groups(*pids):
    """SIGKILLs the process group of each pid given (none: skipped)."""
    for pid in pids:
        if pid:
            try:
                os.killpg(pid, 9)
            except OSError:
                pass


def reap_all():
    """Reap every exited child (call only when no Popen is pending)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def read_text(path, default=""):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return default


def read_counter(read):
    """The count a container's shell loop keeps in its /tmp/counter, as
    read("counter") returns that file (runc's and podman's tests)."""
    for _ in range(50):
        try:
            v = read("counter")
            if v:
                return int(v)
        except (OSError, ValueError):
            pass
        time.sleep(0.02)  # caught between the truncate and the write
    raise AssertionError("no counter")


def wait_until(pred, timeout=10.0, interval=0.01):
    """Polls pred() until it returns a true value or `timeout` seconds have
    passed; returns its last value. For waiting on a state instead of a
    fixed sleep: the caller asserts on what it returns."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


PE_PARENT = 1  # pagemap_entry.flags (src/image/magic.h)


def _varint(buf, pos):
    val = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        val |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return val, pos


def pagemap_entries(path):
    """The entries of a pagemap image, each {field number: value} (all of
    pagemap_entry's fields are varints): 1 vaddr, 2 nr_pages, 3 in_parent,
    4 flags, 1000 amber's checksum. The head (pages_id) is left out."""
    data = Path(path).read_bytes()
    pos, msgs = 8, []  # two magics
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        msg, fields, at = data[pos + 4:pos + 4 + n], {}, 0
        while at < len(msg):
            key, at = _varint(msg, at)
            fields[key >> 3], at = _varint(msg, at)
        msgs.append(fields)
        pos += 4 + n
    return msgs[1:]


def edit_image(path, new_entry, fn, head=8):
    """Calls fn(entries) on the messages of image PATH (each parsed into
    NEW_ENTRY(), after HEAD bytes of magic) and writes them back."""
    data = Path(path).read_bytes()
    entries, off = [], head
    while off < len(data):
        n = struct.unpack_from("<I", data, off)[0]
        e = new_entry()
        e.ParseFromString(data[off + 4:off + 4 + n])
        entries.append(e)
        off += 4 + n
    fn(entries)
    out = bytearray(data[:head])
    for e in entries:
        blob = e.SerializeToString()
        out += struct.pack("<I", len(blob)) + blob
    Path(path).write_bytes(bytes(out))


def tail(path, lines=40):
    text = read_text(path, None)
    if text is None:
        return f"--- {path}: (missing)\n"
    body = "\n".join(text.splitlines()[-lines:]) or "(empty)"
    return f"--- {path} (last {lines} lines):\n{body}\n"


def proc_stat(pid):
    """(state, ppid, pgid, sid, starttime) of pid, or None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = data[data.rindex(")") + 2:].split()
    return f[0], int(f[1]), int(f[2]), int(f[3]), int(f[19])


def ns_pids(pid):
    """The NSpid line of a task: its pid in each pid namespace, outermost first."""
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def children(pid):
    """The children of PID's main thread."""
    return [int(c) for c in read_text(f"/proc/{pid}/task/{pid}/children").split()]


def tree_pids(root):
    """Pids of the tree rooted at root, walking /proc/PID/task/*/children."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        if proc_stat(pid) is None or pid in pids:
            continue
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            kids = read_text(task / "children").split()
            todo.extend(int(k) for k in kids)
    return sorted(pids)


class Numbering:
    """Maps kernel object numbers (pipe:[123]) to first-seen indexes, so
    two captures compare equal when the sharing structure is the same."""

    def __init__(self):
        self.seen = {}

    def __call__(self, kind, num):
        return self.seen.setdefault((kind, num), len(self.seen))


FD_OBJ_RE = re.compile(r"^(pipe|socket|anon_inode|net):\[(\d+)\]$")


UFFD_FEATURE_WP_ASYNC = 1 << 15


def is_amber_tracker(target, fdinfo):
    """amber's incremental-dump tracker (a WP_ASYNC userfaultfd) lives in
    the tree between dumps; it is amber's, not the test's state."""
    if target != "anon_inode:[userfaultfd]":
        return False
    m = re.search(r"^API:\s*[0-9a-f]+:([0-9a-f]+):", fdinfo, re.M)
    return bool(m) and int(m[1], 16) & UFFD_FEATURE_WP_ASYNC != 0


def capture_fds(pid, numbering):
    out = []
    fds = Path(f"/proc/{pid}/fd")
    for fd in sorted(fds.iterdir(), key=lambda p: int(p.name)):
        try:
            target = os.readlink(fd)
            info = (fds.parent / "fdinfo" / fd.name).read_text()
        except OSError:
            continue
        if is_amber_tracker(target, info):
            continue
        m = FD_OBJ_RE.match(target)
        if m:
            target = f"{m[1]}:[#{numbering(m[1], m[2])}]"
        fields = dict(line.split(":", 1) for line in info.splitlines()
                      if ":" in line)
        out.append(f"fd {fd.name} -> {target} pos={fields['pos'].strip()} "
                   f"flags={fields['flags'].strip()}")
    return out


def capture_maps(pid, numbering):
    """VMAs as (start, end, perms, offset, name), adjacent anonymous VMAs
    with equal perms merged: the kernel merges such VMAs when they are
    mapped again at restore, which changes nothing a process can see.
    A mapped socket (a packet ring) is named by its first-seen index, as
    in the fd table."""
    vmas = []
    for line in read_text(f"/proc/{pid}/maps").splitlines():
        parts = line.split(None, 5)
        rng, perms, offset = parts[0], parts[1], parts[2]
        start, end = (int(x, 16) for x in rng.split("-"))
        name = parts[5].strip() if len(parts) > 5 else ""
        m = FD_OBJ_RE.match(name)
        if m:
            name = f"{m[1]}:[#{numbering(m[1], m[2])}]"
        file_backed = name.startswith("/") and \
            not name.startswith(("/dev/zero (deleted)", "/SYSV"))
        off = offset if file_backed else "-"
        prev = vmas[-1] if vmas else None
        if prev and not file_backed and not name.startswith("[") and \
                prev[1] == start and prev[2] == perms and prev[4] == name:
            prev[1] = end
            continue
        vmas.append([start, end, perms, off, name])
    return [f"{s:x}-{e:x} {p} {o} {n}" for s, e, p, o, n in vmas]


def status_lines(path, keys):
    out = []
    for line in read_text(path).splitlines():
        key = line.split(":", 1)[0]
        if key in keys:
            out.append(" ".join(line.split()))
    return out


def capture(root):
    """The state of a tree as sorted, comparable text lines."""
    numbering, lines = Numbering(), []
    for pid in tree_pids(root):
        st = proc_stat(pid)
        if st is None:
            continue
        p = f"pid {pid}"
        lines.append(f"{p} state={'zombie' if st[0] == 'Z' else 'live'}"
                     f" ppid={'-' if pid == root else st[1]}"
                     f" pgid={st[2]} sid={st[3]}")
        lines += [f"{p} {s}" for s in
                  status_lines(f"/proc/{pid}/status", STATUS_KEYS)]
        if st[0] == "Z":
            continue
        for tid in sorted(int(t.name) for t in
                          Path(f"/proc/{pid}/task").iterdir()):
            lines.append(f"{p} tid {tid}")
            lines += [f"{p} tid {tid} {s}" for s in status_lines(
                f"/proc/{pid}/task/{tid}/status", THREAD_KEYS)]
        lines += [f"{p} map {m}" for m in capture_maps(pid, numbering)]
        lines += [f"{p} {f}" for f in capture_fds(pid, numbering)]
    return lines


def settled_diff(before, snapshot, tries=40):
    """state_diff() against a restored tree, given a little while to settle:
    a task restored inside sigwait() shows the signal blocked (SigBlk)
    until it is scheduled and re-enters the call, which unblocks it for
    the wait; a mismatch is read again before it counts."""
    for _ in range(tries):
        diff = state_diff(before, snapshot())
        if not diff:
            return diff
        time.sleep(0.05)
    return diff


def state_diff(before, after):
    if before == after:
        return None
    return "\n".join(difflib.unified_diff(before, after, "before dump",
                                          "after restore", lineterm="", n=2))


# Options a test needs on dump, pre-dump and restore (as CRIU's .desc
# "opts"), by the test's name prefix.
TEST_AMBER_OPTS = {"file_locks": ["--file-locks"], "socket_tcp": ["--tcp-established"],
                   "userns_net": ["--tcp-established"],
                   "shell_job": ["--shell-job"],
                   "nginx_server": ["--tcp-established"],
                   "redis_server": ["--tcp-established"],
                   "postgres_server": ["--tcp-established"],
                   "node_server": ["--tcp-established"],
                   "java_server": ["--tcp-established"]}


# RLIMIT_NOFILE (soft and hard) amber runs under, by the test's name: the
# task's own limit, as a runtime with one limit for all or a machine whose
# hard limit is the task's would run it (the restore must fit in it).
TEST_AMBER_NOFILE = {"socket_tcp_nofile": 1024}


def amber_limits(name):
    """A preexec_fn setting @name's RLIMIT_NOFILE for amber, or None."""
    nofile = TEST_AMBER_NOFILE.get(name)
    if nofile is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def amber_opts_for(name, action):
    if action not in ("dump", "pre-dump", "restore"):
        return []
    return [o for prefix, opts in TEST_AMBER_OPTS.items()
            if name.startswith(prefix) for o in opts]


class Run:
    """One test program in its own directory; knows its tree and amber."""

    def __init__(self, name, mode, compare_state=True, test=None):
        base = os.environ.get("ZDTM_TMPDIR") or tempfile.gettempdir()
        self.name, self.mode = name, mode
        self.test = test or name  # the test program, whose options amber gets
        self.dir = Path(tempfile.mkdtemp(prefix=f"zdtm-{mode.name}-{name}-",
                                         dir=base))
        self.imgdir = self.dir / "img"
        self.compare_state = compare_state
        self.pid = None          # root of the tree
        self.root_start = None   # its start time: guards against pid reuse
        self.popen = None        # set when the root is our direct child
        self.amber_stdin = None  # amber restore's stdin (a terminal for --shell-job)
        self.known_pids = set()  # every pid ever seen in the tree
        self.known_start = {}    # pid -> its start time when a walk saw it
        self.exit_status = {}    # pid -> wait status, when we reaped it
        self.logs = []           # amber logs and outputs, for diagnostics
        self.notes = []          # files worth showing on failure
        self.action_args = {}    # action -> extra amber arguments (restore: --root)

    # -- processes ---------------------------------------------------
    def reap(self, pid):
        if self.popen is not None and self.popen.pid == pid and \
                self.popen.returncode is None:
            if self.popen.poll() is not None:
                self.exit_status[pid] = self.popen.returncode
            return
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if got == pid:
            self.exit_status[pid] = os.waitstatus_to_exitcode(status)

    def alive(self, pid):
        self.reap(pid)
        st = proc_stat(pid)
        return st is not None and st[0] not in "ZX"

    def wait_gone(self, pids, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = [p for p in pids if self.alive(p)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.01)

    def set_root(self, pid):
        """The tree's root is pid, as it runs now (after start or restore)."""
        self.pid = pid
        # a restored root has the dumped one's pid, whose wait status
        # (-9, reaped by reap_dumped) is not the restored task's
        self.exit_status.pop(pid, None)
        st = proc_stat(pid)
        self.root_start = st[4] if st else None
        self.walk()

    def ours(self, pid):
        """pid is a live task of our tree, not a reused pid: every task of
        a test is in the session the root leads, and started after it."""
        st = proc_stat(pid)
        return st is not None and st[0] not in "ZX" and \
            self.root_start is not None and st[3] == self.pid and \
            st[4] >= self.root_start

    def walk(self):
        pids = tree_pids(self.pid) if self.ours(self.pid) else []
        self.known_pids.update(pids)
        for pid in pids:
            st = proc_stat(pid)
            if st is not None:
                self.known_start[pid] = st[4]
        return pids

    def reap_dumped(self):
        """Reap the dumped tree's dead tasks that were reparented to us,
        also those born after our last walk (a shell forks all the time):
        their pids stay taken until reaped, and a restore needs them.
        Only zombies of the root's session: never a pending Popen's."""
        sid = self.pid
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            for kid in read_text(task / "children").split():
                st = proc_stat(int(kid))
                if st and st[0] == "Z" and st[3] == sid and \
                        (self.popen is None or self.popen.pid != int(kid)):
                    self.known_pids.add(int(kid))
                    self.reap(int(kid))

    def leftovers(self, timeout, pids=None):
        """Tasks of our tree (of pids) still running after timeout seconds."""
        pids = self.known_pids if pids is None else pids
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids:
                self.reap(pid)
            left = sorted(p for p in pids if self.ours(p))
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.01)

    def dumped(self, pids):
        """After a dump of PIDS (walked before it): the tree must be gone,
        and the dumped tasks' wait statuses are forgotten (a restore brings
        their pids back)."""
        if self.leftovers(10, pids):
            pytest.fail("the tree survived the dump", pytrace=False)
        for pid in pids:
            self.exit_status.pop(pid, None)

    def dump(self, *extra):
        """`amber dump -t ROOT -D IMG EXTRA` into dump.log; see dumped()."""
        pids = self.walk()
        self.amber("dump", ["-t", self.pid, "-D", self.imgdir, *extra], "dump.log")
        self.dumped(pids)

    def kill_tree(self):
        """SIGKILL every task of our tree (and nothing else). A task a
        walk found is ours also when it made a session of its own (setsid
        in pty tests) and outlived the root, which ours() would not take:
        the same pid with the same start time is the same task."""
        pids = set(self.walk()) | self.known_pids
        for pid in pids:
            st = proc_stat(pid)
            if self.ours(pid) or (st is not None and st[0] not in "ZX" and
                                  self.known_start.get(pid) == st[4]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.leftovers(5)
        if self.popen is not None and self.popen.returncode is None:
            self.popen.kill()
            self.popen.wait()

    def snapshot(self):
        self.walk()
        return capture(self.pid)

    # -- amber -------------------------------------------------------
    def amber(self, action, args, log):
        """Run `amber ACTION ARGS -v4 -o LOG` in the image dir (so LOG is the
        same file whether amber takes -o relative to cwd or to -D)."""
        amber = amber_path()
        if not (amber.is_file() and os.access(amber, os.X_OK)):
            pytest.fail(f"amber binary {amber} does not exist or is not "
                        f"executable: build it or set AMBER=", pytrace=False)
        self.imgdir.mkdir(mode=0o700, exist_ok=True)
        cmd = [str(amber), action, *map(str, args), *map(str, self.action_args.get(action, ())),
               *amber_opts_for(self.test, action), "-v4", "-o", log]
        out = self.imgdir / f"{Path(log).stem}.out"
        self.logs += [self.imgdir / log, out]
        with open(out, "wb") as f:
            try:
                stdin = self.amber_stdin if action == "restore" else None
                rc = subprocess.run(cmd, cwd=self.imgdir,
                                    stdin=subprocess.DEVNULL if stdin is None else stdin,
                                    stdout=f, stderr=subprocess.STDOUT,
                                    env=sanitizer_env(self.imgdir),
                                    preexec_fn=amber_limits(self.test),
                                    timeout=env_float("ZDTM_AMBER_TIMEOUT", 300)
                                    ).returncode
            except subprocess.TimeoutExpired:
                pytest.fail(f"{' '.join(cmd)}: timed out", pytrace=False)
        self.check_log(self.imgdir / log, out)
        if rc != 0:
            pytest.fail(f"{' '.join(cmd)}: exit status {rc}", pytrace=False)

    @staticmethod
    def check_log(log, out):
        if not log.is_file():
            pytest.fail(f"amber wrote no log at {log}", pytrace=False)
        bad = [l for l in read_text(log).splitlines() if "Error" in l]
        bad += [l for l in read_text(out).splitlines() if SANITIZER_RE.search(l)]
        bad += sanitizer_reports(log.parent)
        if bad:
            pytest.fail(f"amber reported errors in {log.name}:\n" +
                        "\n".join(bad[:20]), pytrace=False)

    # -- diagnostics and cleanup -------------------------------------
    def diagnostics(self):
        parts = [f"test directory: {self.dir}"]
        notes = [p for p in self.notes if Path(p).exists()]
        if self.notes and not notes:
            parts.append("(the test wrote no output file)")
        for path in notes:
            parts.append(tail(path, 60))
        for path in self.logs:
            parts.append(tail(path, 40))
        return "\n".join(parts)

    def finish(self, ok):
        if ok and os.environ.get("ZDTM_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def guarded(run, body):
    """Run body(); on any failure kill the tree and attach diagnostics."""
    error = None
    try:
        body()
    except pytest.skip.Exception:
        run.kill_tree()
        run.finish(True)
        reap_all()
        raise
    except BaseException as e:  # noqa: B036 - includes pytest's Failed
        error = e.msg if isinstance(e, pytest.fail.Exception) else repr(e)
        if isinstance(e, KeyboardInterrupt):
            run.kill_tree()
            raise
    if error is None:
        run.finish(True)
        reap_all()
        return
    run.kill_tree()
    run.finish(False)
    reap_all()
    pytest.fail(f"{run.name} [{run.mode.name}]: {error}\n\n"
                f"{run.diagnostics()}", pytrace=False)


# -- modes ---------------------------------------------------------------
class Mode:
    """What happens to a running tree between its start and SIGTERM.

    A new mode is a subclass registered in MODES; override checkpoint()
    (or, for dump variants, dump()/restore())."""

    name = "?"

    def preflight(self):
        """Fail (or skip) before a test starts if the mode cannot run."""

    def checkpoint(self, run):
        raise NotImplementedError


class NoDump(Mode):
    """No checkpoint at all: start, SIGTERM, check.  It checks the tests
    themselves, including that the state the dump mode compares is stable
    while a test waits (two captures 0.1 s apart must be equal)."""

    name = "nodump"

    def checkpoint(self, run):
        before = run.snapshot() if run.compare_state else None
        time.sleep(0.1)
        if before is not None:
            diff = state_diff(before, run.snapshot())
            if diff:
                pytest.fail(f"state changed while the test waited:\n{diff}",
                            pytrace=False)


class Dump(Mode):
    """Dump (which kills the tree), restore detached, compare the state."""

    name = "dump"

    def preflight(self):
        amber = amber_path()
        if not (amber.is_file() and os.access(amber, os.X_OK)):
            pytest.fail(f"amber binary {amber} does not exist or is not "
                        f"executable: build it or set AMBER=", pytrace=False)

    def dump(self, run):
        run.amber("dump", ["-t", run.pid, "-D", run.imgdir], "dump.log")

    def restore(self, run):
        run.amber("restore", ["-D", run.imgdir, "-d", "--pidfile", PIDFILE], "restore.log")

    def checkpoint(self, run):
        before = run.snapshot() if run.compare_state else None
        pids = run.walk()
        self.dump(run)
        left = run.leftovers(10, pids)
        if left:
            pytest.fail(f"tasks {left} still run after `amber dump` "
                        f"(it should kill the tree)", pytrace=False)
        run.reap_dumped()
        for pid in pids:  # statuses of the dumped tasks, not the restored
            run.exit_status.pop(pid, None)
        (run.imgdir / PIDFILE).unlink(missing_ok=True)
        self.restore(run)
        # A tree with its own pid namespace comes back with new host pids.
        run.pid = restored_root(run)
        if not run.alive(run.pid):
            pytest.fail(f"root task {run.pid} is not running after "
                        f"`amber restore -d`", pytrace=False)
        run.set_root(run.pid)
        if before is not None:
            diff = settled_diff(before, run.snapshot)
            if diff:
                pytest.fail(f"state differs after restore:\n{diff}",
                            pytrace=False)


def restored_root(run):
    """The restored root's pid, from `amber restore --pidfile` (run in the
    image directory)."""
    try:
        return int(read_text(run.imgdir / PIDFILE))
    except ValueError:
        pytest.fail(f"`amber restore` wrote no pid to {PIDFILE}", pytrace=False)


def tracker_args():
    """--track-mem=KIND for the incremental modes (ZDTM_TRACKER, default
    auto: soft-dirty where the kernel has it, else uffd-wp)."""
    return [f"--track-mem={os.environ.get('ZDTM_TRACKER', 'auto')}"]


def between_iterations(run, k):
    """Tests named inc_* change their state between iterations: SIGUSR1,
    then wait until they have created iter-K (see lib/zdtm.h)."""
    if not run.name.startswith("inc_"):
        return
    os.kill(run.pid, signal.SIGUSR1)
    ack = run.dir / f"iter-{k}"
    deadline = time.monotonic() + 10
    while not ack.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the test did not acknowledge iteration {k}",
                        pytrace=False)
        time.sleep(0.01)


class PreDump(Dump):
    """N pre-dumps of the running tree (each the parent of the next), then
    a dump that writes only what changed since the last, then restore."""

    name = "pre-dump"
    iterations = 2
    # pre-dump and page-server-pre-dump read the pages from the running
    # tree; pre-dump-lazy copies them while it is frozen (the default)
    predump_mode = "read"

    def checkpoint(self, run):
        for k in range(1, self.iterations + 1):
            args = ["-t", run.pid, "-D", f"pre{k}", *tracker_args(),
                    f"--pre-dump-mode={self.predump_mode}"]
            if k > 1:
                args += ["--prev-images-dir", f"../pre{k - 1}"]
            run.amber("pre-dump", args, f"pre-dump-{k}.log")
            if not run.alive(run.pid):
                pytest.fail("the tree died after pre-dump", pytrace=False)
            between_iterations(run, k)
        super().checkpoint(run)

    def dump(self, run):
        run.amber("dump", ["-t", run.pid, "-D", run.imgdir, *tracker_args(),
                           "--prev-images-dir", f"pre{self.iterations}"],
                  "dump.log")


class Snaps(PreDump):
    """Dumps that leave the tree running (restore points), each tracked
    against the previous, then the last one; restore from it."""

    name = "snaps"

    def checkpoint(self, run):
        for k in range(1, self.iterations + 1):
            args = ["-t", run.pid, "-D", f"snap{k}", "--leave-running",
                    *tracker_args()]
            if k > 1:
                args += ["--prev-images-dir", f"../snap{k - 1}"]
            run.amber("dump", args, f"snap-{k}.log")
            if not run.alive(run.pid):
                pytest.fail("the tree died after dump --leave-running",
                            pytrace=False)
            between_iterations(run, k)
        Dump.checkpoint(self, run)

    def dump(self, run):
        run.amber("dump", ["-t", run.pid, "-D", run.imgdir, *tracker_args(),
                           "--prev-images-dir", f"snap{self.iterations}"],
                  "dump.log")


class Lazy(Dump):
    """Dump as usual; restore with --lazy-pages against `amber lazy-pages`
    started on the same images.  The daemon must deliver every page and
    exit 0 with an error-free log before the state is compared (private
    anonymous memory arrives through userfaultfd; the rest is eager)."""

    name = "lazy"

    def restore(self, run):
        self.lazy_restore(run, run.imgdir, [])

    @staticmethod
    def lazy_restore(run, imgdir, daemon_args):
        sock = imgdir / "lazy.sock"
        log, out = imgdir / "lazy-pages.log", imgdir / "lazy-pages.out"
        run.logs += [log, out]
        with open(out, "wb") as f:
            daemon = subprocess.Popen(
                [str(amber_path()), "lazy-pages", "-D", str(imgdir),
                 "--socket", str(sock), *map(str, daemon_args), "-v4", "-o", str(log)],
                cwd=imgdir, stdin=subprocess.DEVNULL, stdout=f,
                stderr=subprocess.STDOUT, env=sanitizer_env(imgdir))
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                if daemon.poll() is not None or time.monotonic() > deadline:
                    run.check_log(log, out)
                    pytest.fail("amber lazy-pages did not start listening",
                                pytrace=False)
                time.sleep(0.005)
            run.amber("restore", ["-D", imgdir, "-d", "--lazy-pages",
                                  "--lazy-socket", sock, "--pidfile", PIDFILE],
                      "restore.log")
            rc = daemon.wait(timeout=env_float("ZDTM_AMBER_TIMEOUT", 300))
        except subprocess.TimeoutExpired:
            pytest.fail("amber lazy-pages did not finish delivering pages",
                        pytrace=False)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
                # its keeper (own session, same argv) waits for a restore
                # that will not come: it goes too
                subprocess.run(["pkill", "-KILL", "-f", "--", f"--socket {sock} "],
                               check=False)
        run.check_log(log, out)
        if rc != 0:
            pytest.fail(f"amber lazy-pages: exit status {rc}", pytrace=False)


class PreDumpLazy(PreDump):
    """The pre-dump chain of pre-dump mode, restored lazily: the daemon
    serves each page from the newest image of the chain that holds it."""

    name = "pre-dump-lazy"
    predump_mode = "splice"

    def restore(self, run):
        Lazy.lazy_restore(run, run.imgdir, [])


# -- lazy restores driven step by step (test_lazy.py, test_remote_lazy.py) --
def kill_procs(procs):
    """SIGKILL and wait for the processes of PROCS still running; empties it."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    procs.clear()


def wait_lazy_socket(imgdir, proc, timeout):
    """IMGDIR/lazy.sock, once the daemon PROC listens on it."""
    sock = imgdir / "lazy.sock"
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("amber lazy-pages did not start", pytrace=False)
        time.sleep(0.005)
    return sock


def restore_lazily(run, imgdir, log="restore.log"):
    """`amber restore -d --lazy-pages` of IMGDIR through its lazy.sock."""
    run.amber("restore", ["-D", imgdir, "-d", "--lazy-pages",
                          "--lazy-socket", imgdir / "lazy.sock"], log)
    run.set_root(run.pid)


def lazy_daemon_done(run, proc, logdir, log):
    """The daemon PROC (logging to LOGDIR/LOG) must exit 0, its log clean."""
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{log}: the daemon did not finish", pytrace=False)
    run.check_log(logdir / log, logdir / (log + ".out"))
    if rc:
        pytest.fail(f"{log}: exit status {rc}", pytrace=False)


def assert_waiting_for_page(run):
    """The test must be asleep on a missing page, not done and not dead."""
    wchan = f"/proc/{run.pid}/wchan"
    wait_until(lambda: (run.dir / "test.out").exists() or
               read_text(wchan) == "handle_userfault", timeout=10)
    if (run.dir / "test.out").exists():
        pytest.fail("the test finished without its pages: it read something "
                    "other than its memory", pytrace=False)
    wchan = read_text(wchan)
    if wchan != "handle_userfault":
        pytest.fail(f"the test is not waiting for a page (wchan {wchan!r})",
                    pytrace=False)


def flip_pages_byte(imgdir):
    """Flip a bit in the middle of the largest pages image of IMGDIR."""
    pages = sorted(imgdir.glob("pages-*.img"), key=lambda p: p.stat().st_size)[-1]
    with open(pages, "r+b") as f:
        f.seek(pages.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))


def start_page_server(run, srvdir, token, extra=(), name="page-server"):
    """`amber page-server --port 0` on localhost, token-authenticated,
    logging to NAME.log; returns (process, port, log, out, out file)."""
    log = run.dir / f"{name}.log"
    out = run.dir / f"{name}.out"
    run.logs += [log, out]
    cmd = [str(amber_path()), "page-server", "--address", "127.0.0.1",
           "--port", "0", "-D", str(srvdir), "--token-file", str(token),
           *extra, "-v4", "-o", str(log)]
    f = open(out, "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=f, env=sanitizer_env(run.dir))
    line = proc.stdout.readline().decode(errors="replace")
    m = re.search(r":(\d+) \(", line)
    if not m:
        proc.kill()
        proc.wait()
        f.close()
        pytest.fail(f"page server did not start: {line!r}", pytrace=False)
    return proc, int(m.group(1)), log, out, f


def shipped_images(run):
    """What a post-copy migration ships: RUN's images without any pages
    file, in RUN.dir/dst."""
    dst = run.dir / "dst"
    dst.mkdir(mode=0o700)
    for p in run.imgdir.iterdir():
        # amber.netlock: the lock this host's restore removes
        if p.is_file() and not p.name.startswith("pages-") and \
                (p.suffix == ".img" or p.name in ("amber.sums", "amber.netlock")):
            shutil.copy2(p, dst / p.name)
    return dst


def make_token(run):
    token = run.dir / "token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(24).hex().encode() + b"\n")
    os.close(fd)
    return token


def kill_page_server(proc, f):
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    f.close()


def stop_page_server(run, proc, log, out, f, what):
    """The server must exit 0 on its own (after the client's CLOSE)."""
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    kill_page_server(proc, f)
    if rc is None:
        pytest.fail(f"page server still runs after {what}", pytrace=False)
    run.check_log(log, out)
    if rc != 0:
        pytest.fail(f"page server exit status {rc}", pytrace=False)


class RemoteLazy(Lazy):
    """Post-copy migration on one machine: dump as usual into IMG (the
    source side), serve it with `amber page-server --lazy-pages` on
    localhost (token-authenticated), copy every image but the pages files
    into DST (the destination side), and restore from DST with `amber
    lazy-pages --page-server` fetching every page over TCP: the eager ones
    (file-backed, shared, memfd) before the restore, the rest on fault
    and by prefetch.  The daemon and then the server must exit 0, and DST
    must never hold a pages file."""

    name = "remote-lazy"

    def restore(self, run):
        dst = shipped_images(run)
        token = make_token(run)
        proc, port, log, out, f = start_page_server(run, run.imgdir, token,
                                                    ["--lazy-pages"])
        try:
            self.lazy_restore(run, dst, ["--page-server", "--address", "127.0.0.1",
                                         "--port", port, "--token-file", token])
        except BaseException:
            kill_page_server(proc, f)
            raise
        stop_page_server(run, proc, log, out, f, "post-copy")
        local = sorted(p.name for p in dst.glob("pages-*.img"))
        if local:
            pytest.fail(f"page images appeared on the destination: {local}",
                        pytrace=False)


class PageServer(Dump):
    """Dump with the pages streamed to `amber page-server` on localhost
    (token-authenticated), which writes them into its own directory; those
    files are then put beside the other images and the tree restored.  The
    dump's own directory must hold no page images."""

    name = "page-server"

    def dump(self, run):
        srvdir = run.dir / "ps"
        token = make_token(run)
        proc, port, log, out, f = start_page_server(run, srvdir, token)
        try:
            run.amber("dump", ["-t", run.pid, "-D", run.imgdir, "--page-server",
                               "--address", "127.0.0.1", "--port", port,
                               "--token-file", token], "dump.log")
        except BaseException:
            kill_page_server(proc, f)
            raise
        stop_page_server(run, proc, log, out, f, "the dump")
        local = sorted(p.name for p in run.imgdir.glob("page*.img"))
        if local:
            pytest.fail(f"page images written locally: {local}", pytrace=False)
        for p in srvdir.iterdir():
            if p.stat().st_mode & 0o077:
                pytest.fail(f"{p} is not 0600", pytrace=False)
            shutil.copy2(p, run.imgdir / p.name)


class PageServerPreDump(PreDump):
    """Iterative pre-copy migration on one machine: every pre-dump and the
    final dump stream their pages to `amber page-server` (token-auth),
    one server per iteration into PS/preK, each started with
    --prev-images-dir ../preK-1 and the final one into PS/img against the
    last; the dump sends only what changed (PE_PARENT runs for the rest).
    No page image may appear on the dumping side (it keeps
    sent-pagemap-PID.img, what it sent); the servers' files are then put
    beside the other images and the chain restored."""

    name = "page-server-pre-dump"

    def streamed(self, run, action, srv, local, parent, extra=()):
        token = make_token(run) if not (run.dir / "token").exists() else run.dir / "token"
        sargs = ["--prev-images-dir", f"../{parent}"] if parent else []
        proc, port, log, out, f = start_page_server(run, run.dir / "ps" / srv, token, sargs,
                                                    f"page-server-{srv}")
        args = ["-t", run.pid, "-D", local, *tracker_args(), "--page-server",
                "--address", "127.0.0.1", "--port", port, "--token-file", token, *extra]
        try:
            run.amber(action, args, f"{srv}-{action}.log")
        except BaseException:
            kill_page_server(proc, f)
            raise
        stop_page_server(run, proc, log, out, f, action)

    def checkpoint(self, run):
        for k in range(1, self.iterations + 1):
            parent = f"pre{k - 1}" if k > 1 else None
            extra = ["--prev-images-dir", f"../{parent}"] if parent else []
            extra.append(f"--pre-dump-mode={self.predump_mode}")
            self.streamed(run, "pre-dump", f"pre{k}", f"pre{k}", parent, extra)
            if not run.alive(run.pid):
                pytest.fail("the tree died after pre-dump", pytrace=False)
            between_iterations(run, k)
        Dump.checkpoint(self, run)

    def checkpoint_final(self, run, iterations=1):
        """The final dump and restore after @iterations pre-dumps done by hand."""
        self.iterations = iterations
        try:
            Dump.checkpoint(self, run)
        finally:
            del self.iterations  # the class's count again

    def dump(self, run):
        last = f"pre{self.iterations}"
        self.streamed(run, "dump", "img", run.imgdir, last,
                      ["--prev-images-dir", last])
        local = sorted(str(p.relative_to(run.imgdir))
                       for p in run.imgdir.rglob("page*.img"))
        if local:
            pytest.fail(f"page images written on the dumping side: {local}",
                        pytrace=False)
        for k in range(1, self.iterations + 1):
            self.take(run.dir / "ps" / f"pre{k}", run.imgdir / f"pre{k}")
        self.take(run.dir / "ps" / "img", run.imgdir)

    @staticmethod
    def take(srvdir, dst):
        for p in srvdir.iterdir():
            if p.is_symlink():
                continue  # the server's parent link; dst has its own
            if p.stat().st_mode & 0o077:
                pytest.fail(f"{p} is not 0600", pytrace=False)
            shutil.copy2(p, dst / p.name)


MODES = {m.name: m for m in (NoDump(), Dump(), PreDump(), Snaps(), Lazy(),
                              PreDumpLazy(), RemoteLazy(), PageServer(),
                              PageServerPreDump())}


def discover_tests():
    """Every built test binary in static/: executable, no suffix."""
    tests = []
    for path in sorted((ZDTM_DIR / "static").iterdir()):
        if path.is_file() and "." not in path.name and \
                os.access(path, os.X_OK):
            tests.append(path)
    return tests


def selected_modes(option=None):
    names = (option or os.environ.get("ZDTM_MODES") or "dump").split(",")
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise pytest.UsageError(f"unknown zdtm mode(s) {unknown}; "
                                f"known: {', '.join(MODES)}")
    return [MODES[n] for n in names]
