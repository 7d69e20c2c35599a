"""A tree whose mount namespace has an overlayfs root, checkpointed in
every zdtm mode (docs/namespaces.md).

The root is an overlay made in /tmp from busybox-static: the lower layer
holds busybox and /data/lines (a file of numbered lines), the upper and
work directories are the host's. A busybox shell that pivot_root'ed into
it keeps a tick counter in a shell variable (memory), holds /data/lines
open for reading (a lower-layer file: its offset is state) and /data/log
open for appending (made in the upper layer after the tree started, and
written on every tick), and writes "tick I LINE" with the I-th line read
from /data/lines. A second overlay on /vol (its layers the host's too)
gets "tick I" in /vol/log. The dump does not save the overlays' files:
the restore mounts each again with its saved lowerdir/upperdir/workdir,
the root's on --root (an empty directory by then: the tree's namespace,
and its mounts, died with it). The logs in the host's upper directories
must then go on from where they were, every tick once and each with its
own line, in a tree whose root and /vol are overlays again.

Refused: the same image restored while the upper directory is missing
fails before any task is created, naming the mount and the path; an
overlay mounted with relative layer paths (the kernel shows them as
given, relative to a cwd amber can't know) fails the dump, naming it,
and the tree runs on.
"""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from test_bad_images import rewrite
from zdtm_runner import (Run, amber_path, env_float, guarded, kill_groups, proc_stat, read_text,
                         reap_all, wait_until)

BUSYBOX = Path("/bin/busybox")
TICKS = 100
LINES = TICKS + 20

# Run by busybox sh inside the overlay root, fds 0-2 closed (amber's
# /dev/null is not in the tree's mounts).
LOOP = f"""
mount -t proc proc /proc || exit 3
umount -l /old || exit 4
exec 0<&- 1>&- 2>&-
exec 4</data/lines 3>>/data/log 5>>/vol/log
{{pre}}
i=0
while [ $i -lt {TICKS} ]; do
    i=$((i+1))
    read -r l <&4
    echo "tick $i $l" >&3
    echo "tick $i" >&5
    sleep 0.05
done
echo done >&3
"""


def need_overlay():
    if not BUSYBOX.exists():
        pytest.skip("busybox-static missing (scripts/packages-test.txt)")
    if "\toverlay\n" not in read_text("/proc/filesystems"):
        pytest.skip("the kernel has no overlayfs")


def make_layers(base):
    """lower (busybox, /data/lines), upper, work and the mountpoint."""
    lower = base / "lower"
    for d in ("bin", "proc", "old", "data", "vol", "cg1"):
        (lower / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, lower / "bin/busybox")
    for c in ("sh", "sleep", "mount", "umount", "rm"):
        (lower / "bin" / c).symlink_to("busybox")
    (lower / "data/lines").write_text("".join(f"line-{k}\n" for k in range(1, LINES + 1)))
    for d in ("upper", "work", "root", "vol-lower", "vol-upper", "vol-work"):
        (base / d).mkdir()
    return lower, base / "upper", base / "work", base / "root"


def start_tree(base, stdout=subprocess.DEVNULL, vol=None, pre=":"):
    """The loop in a mount namespace of its own whose root is the overlay
    (@pre: shell commands it runs first, once its fds are open)."""
    lower, upper, work, root = make_layers(base)
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    vol = vol or f"lowerdir={base}/vol-lower,upperdir={base}/vol-upper,workdir={base}/vol-work"
    script = (f"mount -t overlay amber-ovl -o {opts} {root} && "
              f"mount -t overlay amber-vol -o {vol} {root}/vol && cd {root} && "
              f"/bin/busybox pivot_root . old && exec /bin/busybox chroot . /bin/sh -c "
              f"'{LOOP.format(pre=pre)}'")
    return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=base), upper / "data/log", root


def session_gone(sid, timeout=10):
    """Every task of the dumped tree's session reaped (its pids free for
    the restore): they die as zombies reparented to pytest, a subreaper."""
    def gone():
        reap_all()
        return not any(st and st[3] == sid for st in
                       (proc_stat(int(d.name)) for d in Path("/proc").iterdir()
                        if d.name.isdigit()))
    return wait_until(gone, timeout)


def ticks(log):
    return [ln.split() for ln in read_text(log).splitlines() if ln.startswith("tick ")]


def wait_started(p, log):
    """Until the loop of tree @p has ticked three times into @log."""
    deadline = time.monotonic() + 10
    while len(ticks(log)) < 3:
        assert p.poll() is None and time.monotonic() < deadline, "the loop did not start"
        time.sleep(0.02)


def wait_ticks(run, log, n, timeout=30):
    deadline = time.monotonic() + timeout
    while len(ticks(log)) < n:
        if not run.alive(run.pid):
            pytest.fail(f"the loop ended before tick {n}: {read_text(log)[-300:]}",
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"no tick {n} within {timeout} s", pytrace=False)
        time.sleep(0.02)


def root_mount(pid):
    """The fields after " - " of the root mount in @pid's mountinfo."""
    for line in read_text(f"/proc/{pid}/mountinfo").splitlines():
        f = line.split()
        if f[4] == "/":
            return f[f.index("-") + 1:]
    return None


def test_overlay_root(zdtm_mode):
    need_overlay()
    zdtm_mode.preflight()
    run = Run("overlay_root", zdtm_mode, compare_state=False)

    def body():
        run.popen, log, root = start_tree(run.dir, open(run.dir / "out", "wb"))
        run.notes = [run.dir / "out", log]
        run.set_root(run.popen.pid)
        run.action_args = {"restore": ["--root", root]}
        wait_ticks(run, log, 5)
        assert root_mount(run.pid)[0] == "overlay", root_mount(run.pid)
        zdtm_mode.checkpoint(run)
        at_dump = len(ticks(log))
        if zdtm_mode.name != "nodump":
            mnts = list(run.imgdir.glob("mountpoints-*.img"))
            assert mnts, "no mountpoints-*.img in the image"
            # Mounted in the tree's namespace: none of its overlays is ours.
            ours = [ln for ln in read_text("/proc/self/mountinfo").splitlines()
                    if ln.split()[4].startswith(str(run.dir))]
            assert not ours, ours
            opts = root_mount(run.pid)
            assert opts[0] == "overlay" and f"upperdir={log.parents[1]}" in opts[2], opts
            vol = [ln for ln in read_text(f"/proc/{run.pid}/mountinfo").splitlines()
                   if ln.split()[4] == "/vol"]
            assert len(vol) == 1 and f" - overlay amber-vol rw,lowerdir={run.dir}/vol-lower," \
                in vol[0], vol
        # Writes after the restore land in the host's upper directory.
        wait_ticks(run, log, at_dump + 5)
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the loop did not finish", pytrace=False)
        got = read_text(log)
        want = "".join(f"tick {i} line-{i}\n" for i in range(1, TICKS + 1)) + "done\n"
        if got != want:
            pytest.fail(f"the log differs from an uninterrupted run:\n{got[-400:]}",
                        pytrace=False)
        got = read_text(run.dir / "vol-upper/log")
        if got != "".join(f"tick {i}\n" for i in range(1, TICKS + 1)):
            pytest.fail(f"/vol/log differs from an uninterrupted run:\n{got[-400:]}",
                        pytrace=False)

    guarded(run, body)


CG1_NAME = "amber_zdtm"


def cgroup_v1_lines(pid):
    return [ln for ln in read_text(f"/proc/{pid}/mountinfo").splitlines()
            if " - cgroup " in ln and ln.split()[4] == "/cg1"]


def test_overlay_root_cgroup_v1(zdtm_mode):
    """A cgroup v1 mount in the tree's mount namespace (a named hierarchy,
    so that any host with cgroup v1 has one to give): mounted again."""
    need_overlay()
    zdtm_mode.preflight()
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            f"mount -t cgroup -o none,name={CG1_NAME} cgroup /mnt"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"this kernel mounts no cgroup v1 hierarchy: {probe.stderr.strip()}")
    run = Run("overlay_cgroup_v1", zdtm_mode, compare_state=False)

    def body():
        run.popen, log, root = start_tree(
            run.dir, open(run.dir / "out", "wb"),
            pre=f"mount -t cgroup -o none,name={CG1_NAME} cgroup /cg1 || exit 5")
        run.notes = [run.dir / "out", log]
        run.set_root(run.popen.pid)
        run.action_args = {"restore": ["--root", root]}
        wait_ticks(run, log, 5)
        before = cgroup_v1_lines(run.pid)
        assert len(before) == 1 and f"name={CG1_NAME}" in before[0], before
        zdtm_mode.checkpoint(run)
        after = cgroup_v1_lines(run.pid)
        assert len(after) == 1 and after[0].split(" - ")[1] == before[0].split(" - ")[1], \
            (before, after)
        at_dump = len(ticks(log))
        wait_ticks(run, log, at_dump + 5)
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the loop did not finish", pytrace=False)

    guarded(run, body)


def test_overlay_missing_upper_refused(tmp_path):
    """The restore refuses an overlay whose upper directory is gone, before
    any task is created, naming the mount and the path, and an image
    rewritten to name a relative one; put back, the image restores."""
    need_overlay()
    amber = str(amber_path())
    p, log, root = start_tree(tmp_path)
    restored = None
    try:
        wait_started(p, log)
        img = tmp_path / "img"
        img.mkdir()
        r = subprocess.run([amber, "dump", "-t", str(p.pid), "-D", str(img), "-v4", "-o",
                            str(tmp_path / "dump.log")], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(tmp_path / "dump.log")
        p.wait(timeout=10)
        assert session_gone(p.pid), "the dumped tree did not die"
        upper = tmp_path / "upper"
        upper.rename(tmp_path / "upper.away")
        rlog = tmp_path / "restore.log"
        restore = [amber, "restore", "-D", str(img), "-d", "--root", str(root),
                   "--pidfile", str(tmp_path / "pid"), "-v4", "-o", str(rlog)]
        r = subprocess.run(restore, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        text = read_text(rlog)
        assert r.returncode != 0, text
        assert "overlay mount" in text and f"on /: its upperdir {upper} is missing" in text, text
        assert not (tmp_path / "pid").exists()
        # Refused while loading the images: no task was made (each premaps first).
        assert "mnt: mountpoints-" in text and "premap" not in text, text
        (tmp_path / "upper.away").rename(upper)
        # A damaged image: a relative layer path is refused at load too.
        bad = tmp_path / "img-relative"
        shutil.copytree(img, bad)
        (bad / "amber.sums").unlink()
        rewrite(next(bad.glob("mountpoints-*.img")), lambda entries: entries[0].update(
            options=entries[0]["options"].replace(f"upperdir={upper}", "upperdir=upper")))
        r = subprocess.run([amber, "restore", "-D", str(bad), *restore[4:]],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        text = read_text(rlog)
        assert r.returncode != 0, text
        assert "on /: its upperdir upper is not an absolute path" in text, text
        assert "premap" not in text and not (tmp_path / "pid").exists(), text
        r = subprocess.run(restore, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(rlog)
        restored = int(read_text(tmp_path / "pid"))
        n = len(ticks(log))
        deadline = time.monotonic() + 10
        while len(ticks(log)) < n + 3:
            assert time.monotonic() < deadline, "the restored loop does not tick"
            time.sleep(0.05)
    finally:
        kill_groups(restored, p.pid)
        p.wait()
        reap_all()


def refused_tree_runs_on(tmp_path, want, **tree):
    """Starts the tree (start_tree's @tree), dumps it: the dump must fail
    saying each of @want, and the tree tick on."""
    p, log, root = start_tree(tmp_path, **tree)
    try:
        wait_started(p, log)
        img = tmp_path / "img"
        img.mkdir()
        dlog = tmp_path / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(img), "-v4",
                            "-o", str(dlog)], stdin=subprocess.DEVNULL)
        text = read_text(dlog)
        assert r.returncode != 0, text
        for w in want:
            assert w.format(pid=p.pid) in text, text
        n = len(ticks(log))
        deadline = time.monotonic() + 10
        while len(ticks(log)) < n + 3:
            assert p.poll() is None and time.monotonic() < deadline, "the tree stopped"
            time.sleep(0.05)
    finally:
        kill_groups(p.pid)
        p.wait()
        reap_all()


def test_overlay_relative_layers_refused(tmp_path):
    need_overlay()
    vol = "lowerdir=vol-lower,upperdir=vol-upper,workdir=vol-work"
    refused_tree_runs_on(tmp_path, ["process {pid}: overlay mount ",
                                    " on /vol: its lowerdir vol-lower is not an absolute path"],
                         vol=vol)


def test_overlay_unlinked_file_refused(tmp_path):
    """A file the tree holds open on its overlay root after unlinking it:
    amber's ghost files are made among its own mounts, not a container's,
    so the dump refuses it, naming it, and the tree runs on."""
    need_overlay()
    refused_tree_runs_on(tmp_path, ["is an unlinked file: not supported yet in a tree restored "
                                    "with a mount namespace of its own"],
                         pre="exec 6>/data/gone; echo x >&6; rm /data/gone")
