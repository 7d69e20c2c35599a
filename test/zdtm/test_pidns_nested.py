"""Pid namespaces nested below the dumped tree's root's (docs/namespaces.md).

A real program: `unshare --pid --fork --mount-proc sh` (the tree's root,
init of its own pid namespace, with a proc of it on /proc) runs
`unshare --pid --fork sh -c "sleep & sleep & wait"`: the inner sh is
init of a namespace nested one level below, the second unshare's
pid_for_children is that namespace. Checked from outside, before the
dump and after the restore: every task's NSpid below amber's level (its
pid in the root's namespace and in the nested one), its name and its
parent, and the pids the root's /proc lists.

Refusals (the tree left running): a proc of the nested namespace on the
tree's /proc, a zombie in a nested namespace, a task whose children's
pid namespace (unshare without a living init) is dying, and a pidfd or
a file owner (F_SETOWN) held by a nested task. Damaged pstree
images (levels and pid counts that disagree, a pid out of range, an
inner namespace without its init) are refused before any task exists.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import zdtm_runner
from test_bad_images import amber_pb, rewrite_sums
from zdtm_runner import (Run, amber_path, children, edit_image, guarded, ns_pids, proc_stat,
                         read_text)

INNER = 'unshare --pid --fork /bin/sh -c "sleep 1000 & sleep 1000 & wait"'


def tree(root):
    """(name, NSpid below amber's level, parent's NSpid below it) of each task."""
    out, todo = [], [(root, None)]
    while todo:
        pid, parent = todo.pop()
        mine = ns_pids(pid)[1:]
        out.append((read_text(f"/proc/{pid}/comm").strip(), tuple(mine),
                    tuple(ns_pids(parent)[1:]) if parent else ()))
        todo += [(c, pid) for c in children(pid)]
    return sorted(out)


def root_proc_pids(root):
    """The pids the tree's own /proc (a proc of the root's namespace) lists."""
    return sorted(int(e) for e in os.listdir(f"/proc/{root}/root/proc") if e.isdigit())


def start(run):
    """The outer sh, init of its own pid namespace, once the sleeps run."""
    run.popen = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", f"{INNER} & wait"],
        cwd=run.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        kids = children(run.popen.pid)
        if kids:
            names = [n for n, _, _ in tree(kids[0])]
            if names.count("sleep") == 2:
                return kids[0]
        if run.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail("unshare never started the sleeps", pytrace=False)
        time.sleep(0.01)


def children_ns_is_inner(root):
    """The nested unshare's pid_for_children is its child's (the nested init's) namespace."""
    unshare = next(c for c in children(root) if read_text(f"/proc/{c}/comm").strip() == "unshare")
    init = children(unshare)[0]
    return (os.stat(f"/proc/{unshare}/ns/pid_for_children").st_ino ==
            os.stat(f"/proc/{init}/ns/pid").st_ino != os.stat(f"/proc/{unshare}/ns/pid").st_ino)


def check_shape(t):
    """Two pid namespace levels below amber's; the nested init is sh, pid 1."""
    levels = sorted(len(p) for _, p, _ in t)
    assert levels == [1, 1, 2, 2, 2], t
    inits = [(n, p) for n, p, _ in t if p[-1] == 1]
    assert sorted(n for n, _ in inits) == ["sh", "sh"], t


def test_unshare_nested(zdtm_mode):
    zdtm_mode.preflight()
    run = Run("pidns_nested_unshare", zdtm_mode, compare_state=False)

    def body():
        run.set_root(start(run))
        before, procs = tree(run.pid), root_proc_pids(run.pid)
        check_shape(before)
        assert children_ns_is_inner(run.pid)
        zdtm_mode.checkpoint(run)
        after = tree(run.pid)
        assert after == before, f"before {before}\nafter  {after}"
        assert children_ns_is_inner(run.pid), "unshare's pid_for_children was not restored"
        assert root_proc_pids(run.pid) == procs
        os.kill(run.pid, signal.SIGKILL)  # the init's death ends both namespaces
        if run.wait_gone([run.pid], 10):
            pytest.fail("the restored tree did not die with its init", pytrace=False)

    guarded(run, body)


def dump_refused(tmp_path, root, want):
    imgdir = tmp_path / "img"
    imgdir.mkdir()
    log = imgdir / "dump.log"
    r = subprocess.run([str(amber_path()), "dump", "-t", str(root), "-D", str(imgdir), "-v4",
                        "-o", str(log)], stdin=subprocess.DEVNULL, capture_output=True)
    text = log.read_text() if log.exists() else r.stderr.decode()
    assert r.returncode != 0, f"the dump succeeded:\n{text[-2000:]}"
    assert want in text, text[-2000:]
    st = proc_stat(root)
    assert st is not None and st[0] in "SR", f"{root} not running after the refusal"
    assert "TracerPid:\t0" in read_text(f"/proc/{root}/status")


def spawn(argv):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(what, fn, timeout=10):
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} never happened", pytrace=False)
        time.sleep(0.01)


def stop(p):
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    zdtm_runner.reap_all()


def test_nested_proc_refused(tmp_path):
    """`unshare --pid --fork --mount-proc` dumped from unshare itself (in amber's pid
    namespace, a mount namespace of its own): its /proc shows the nested namespace."""
    p = spawn(["unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c",
               "sleep 1000 & sleep 1000 & wait"])
    try:
        wait_for("the nested init", lambda: children(p.pid) and
                 ns_pids(children(p.pid)[0])[-1:] == [1])
        dump_refused(tmp_path, p.pid, "shows the nested pid namespace")
    finally:
        stop(p)


def test_nested_zombie_refused(tmp_path):
    """sleep, init of a nested namespace, never reaps its child: a zombie there."""
    p = spawn(["unshare", "--pid", "--fork", "/bin/sh", "-c", "/bin/true & exec sleep 1000"])
    try:
        def zombie():
            kids = children(p.pid)
            return kids and any(proc_stat(z) and proc_stat(z)[0] == "Z" for z in children(kids[0]))
        wait_for("the zombie", zombie)
        dump_refused(tmp_path, p.pid, "is a zombie in a nested pid namespace")
    finally:
        stop(p)


def test_dying_children_ns_refused(tmp_path):
    """unshare --pid without --fork: the first child is the init, it exits, the
    namespace is dying and the shell's pid_for_children still names it."""
    p = spawn(["unshare", "--pid", "/bin/sh", "-c", "/bin/true; exec sleep 1000"])
    try:
        wait_for("the exec of sleep", lambda: read_text(f"/proc/{p.pid}/comm").strip() == "sleep")
        dump_refused(tmp_path, p.pid, "whose init is not in the tree")
    finally:
        stop(p)


NESTED_FDS = {
    "pidfd": ("p = os.pidfd_open(os.getpid())", "is a pidfd"),
    "owner": ("s = socket.socket(); fcntl.fcntl(s, fcntl.F_SETOWN, os.getpid())",
              "has an owner (F_SETOWN"),
}


@pytest.mark.parametrize("kind", sorted(NESTED_FDS))
def test_nested_fd_refused(tmp_path, kind):
    """A pidfd or a file owner in a nested task names a pid of its own namespace."""
    code, want = NESTED_FDS[kind]
    p = spawn(["unshare", "--pid", "--fork", "/usr/bin/python3", "-c",
               f"import fcntl, os, socket, time; {code}; open('{tmp_path}/ready', 'w'); "
               "time.sleep(1000)"])
    try:
        wait_for("the nested python", lambda: (tmp_path / "ready").exists())
        dump_refused(tmp_path, p.pid, want)
    finally:
        stop(p)


def nested_init(entries):
    return next(e for e in entries if e.amber_pidns_level and e.amber_pidns_tids[-1] == 1)


def wrong_level(entries):
    nested_init(entries).amber_pidns_level = 2


def pid_out_of_range(entries):
    nested_init(entries).amber_pidns_tids[0] = 1 << 23


def init_missing(entries):
    nested_init(entries).amber_pidns_tids[0] = 7


DAMAGE = [("level count", wrong_level, "want"), ("pid out of range", pid_out_of_range,
                                                  "out of range"),
          ("init missing", init_missing, "whose init is missing")]


@pytest.fixture(scope="module")
def nested_images(tmp_path_factory):
    """One dump of the unshare tree, pristine."""
    run = Run("pidns_nested_images", zdtm_runner.MODES["dump"], compare_state=False)
    imgdir = tmp_path_factory.mktemp("pidns_nested") / "img"
    imgdir.mkdir()
    try:
        root = start(run)
        subprocess.run([str(amber_path()), "dump", "-t", str(root), "-D", str(imgdir), "-v4",
                        "-o", str(imgdir / "dump.log")], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True)
    finally:
        stop(run.popen)
    return imgdir


@pytest.mark.parametrize("what,fn,want", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_pstree_refused(nested_images, tmp_path, what, fn, want):
    d = tmp_path / "img"
    shutil.copytree(nested_images, d)
    (d / "dump.log").unlink()
    edit_image(d / "pstree.img", amber_pb("pstree_pb2").pstree_entry, fn)
    rewrite_sums(d)
    log = d / "restore.log"
    before = set(children(os.getpid()))
    r = subprocess.run([str(amber_path()), "restore", "-D", str(d), "-d", "-v4", "-o", str(log)],
                       stdin=subprocess.DEVNULL, capture_output=True)
    text = log.read_text()
    assert r.returncode > 0, f"{what}: restored:\n{text[-2000:]}"
    assert want in text, text[-2000:]
    assert "premap" not in text, f"{what}: a task was created:\n{text[-2000:]}"
    assert set(children(os.getpid())) <= before
