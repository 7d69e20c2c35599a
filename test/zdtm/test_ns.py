"""A tree in namespaces of its own, checkpointed in every zdtm mode.

UTS, IPC and network namespaces: a shell loop started by `unshare --uts
--ipc --net` that set its own hostname and kernel.msgmax and brought its
lo up is checkpointed mid-way; checked from outside, it must go on
counting from where it was (every tick once, in order), report the saved
hostname and msgmax and have lo up with 127.0.0.1 in namespaces that are
not amber's, and the host's values must be untouched.

Pid namespace: the same loop, started by `unshare --pid --fork
--mount-proc` (and the UTS, IPC and network namespaces), with two
children: after the checkpoint its root is pid 1 of a pid namespace that
is not amber's, its children have their saved pids there, and the loop
reads /proc/1/comm (itself, through the proc of its own namespace) on
every tick. One image restored twice at once: two copies count side by
side, each the init of its own pid namespace.

Time namespace: helpers/clocks started by `unshare --time` with offsets
of a day and an hour prints its CLOCK_MONOTONIC and CLOCK_BOOTTIME: after
the checkpoint both go on from where they were (never back, no jump
longer than the checkpoint took), the offsets the saved ones less the
time the tree spent dumped.

Cgroup namespace: a bash loop made by `unshare --cgroup` in a cgroup v2
cgroup of the test's, its child in one below: after the checkpoint both
read in /proc/PID/cgroup what they read before, in a namespace not ours.

Refused: a task whose UTS namespace differs from its tree root's (nested
UTS namespaces) fails the dump naming it, and the tree runs on.
"""

import difflib
import os
import socket
import subprocess
import time

import pytest

import zdtm_runner
from zdtm_runner import (Run, amber_path, children, env_float, guarded, kill_pids, ns_pids,
                         proc_stat, read_text)

HOSTNAME = "amber-ns-test"
MSGMAX = 4321
TICKS = 80

LOOP = f"""
hostname {HOSTNAME} || exit 3
echo {MSGMAX} > /proc/sys/kernel/msgmax || exit 4
ip link set lo up || exit 5
for i in $(seq 1 {TICKS}); do
    echo "tick $i $(hostname) $(cat /proc/sys/kernel/msgmax)"
    sleep 0.05
done
echo done
"""


def ns_ino(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def uts_hostname(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def ipc_msgmax(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-i", "cat", "/proc/sys/kernel/msgmax"],
                       capture_output=True, text=True, check=True)
    return int(r.stdout)


def lo_addrs(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-br", "addr", "show", "lo"],
                       capture_output=True, text=True, check=True)
    return r.stdout.split()


def wait_lines(run, out, n):
    deadline = time.monotonic() + 60
    while out.read_text().count("\n") < n:
        if not run.alive(run.pid):
            pytest.fail("the loop ended before the checkpoint", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no progress within 60 s", pytrace=False)
        time.sleep(0.01)


def test_uts_ipc_net_namespaces(zdtm_mode):
    zdtm_mode.preflight()
    host = socket.gethostname()
    host_msgmax = read_text("/proc/sys/kernel/msgmax").strip()
    run = Run("uts_ns", zdtm_mode, compare_state=False)

    def body():
        out = run.dir / "out"
        with open(out, "wb") as f, open(run.dir / "err", "wb") as err:
            run.popen = subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "/bin/bash", "-c", LOOP],
                                         cwd=run.dir, stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=err, start_new_session=True)
        run.set_root(run.popen.pid)
        run.notes = [run.dir / "err"]
        wait_lines(run, out, 5)
        for kind in ("uts", "ipc", "net"):
            assert ns_ino(run.pid, kind) != ns_ino(os.getpid(), kind)
        run.walk()
        zdtm_mode.checkpoint(run)
        if zdtm_mode.name != "nodump":
            for img in ("utsns-*.img", "ipcns-var-*.img", "netdev-*.img"):
                if not list(run.imgdir.glob(img)):
                    pytest.fail(f"no {img} in the image", pytrace=False)
        # Seen from outside the restored tree: its own namespaces, saved values.
        for kind in ("uts", "ipc", "net"):
            assert ns_ino(run.pid, kind) != ns_ino(os.getpid(), kind)
        lo = lo_addrs(run.pid)
        assert lo[:2] == ["lo", "UNKNOWN"] and "127.0.0.1/8" in lo, lo
        assert uts_hostname(run.pid) == HOSTNAME
        assert ipc_msgmax(run.pid) == MSGMAX
        assert socket.gethostname() == host
        assert read_text("/proc/sys/kernel/msgmax").strip() == host_msgmax
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the loop did not finish", pytrace=False)
        want = "".join(f"tick {i} {HOSTNAME} {MSGMAX}\n" for i in range(1, TICKS + 1)) + "done\n"
        got = out.read_text()
        if got != want:
            pytest.fail(f"output differs from an uninterrupted run:\n{got[-400:]}",
                        pytrace=False)

    guarded(run, body)


PID_TICKS = 60

# Output to OUT (appended: two restored copies may share it). Children:
# two sleeps whose pids (in the namespace) are printed first.
PID_LOOP = f"""
exec >> "$OUT"
hostname {HOSTNAME} || exit 3
ip link set lo up || exit 5
sleep 1000 & A=$!
sleep 1000 & B=$!
echo "kids $A $B"
for i in $(seq 1 {PID_TICKS}); do
    read -r c < /proc/1/comm
    echo "tick $i $$ $c $(hostname)"
    sleep 0.05
done
kill $A $B
echo done
"""


def start_pid_ns_loop(run, out):
    """The loop as init of its own pid namespace: returns its host pid."""
    env = dict(os.environ, OUT=str(out))
    with open(run.dir / "err", "wb") as err:
        run.popen = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--uts", "--ipc", "--net",
             "setsid", "/bin/bash", "-c", PID_LOOP],
            cwd=run.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, env=env, start_new_session=True)
    run.notes = [run.dir / "err", out]
    deadline = time.monotonic() + 10
    while True:
        kids = children(run.popen.pid)
        if kids and ns_pids(kids[0])[-1:] == [1] and \
                read_text(f"/proc/{kids[0]}/comm").strip() == "bash":
            return kids[0]
        if run.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail("unshare never started the loop", pytrace=False)
        time.sleep(0.01)


def start_pid_ns_tree(run):
    """The loop as RUN's root, init of its own pid namespace, once it ticks:
    returns (its output file, its two children's pids in the namespace)."""
    out = run.dir / "out"
    out.touch()
    run.set_root(start_pid_ns_loop(run, out))
    wait_lines(run, out, 5)
    return out, [int(x) for x in out.read_text().splitlines()[0].split()[1:]]


def check_pid_ns(root, kids):
    """@root is init of a pid namespace not ours, its children the saved @kids."""
    assert ns_ino(root, "pid") != ns_ino(os.getpid(), "pid")
    assert ns_pids(root)[-1] == 1, ns_pids(root)
    inside = sorted(ns_pids(c)[-1] for c in children(root)
                    if read_text(f"/proc/{c}/cmdline").startswith("sleep\0" "1000"))
    assert inside == sorted(kids), (inside, kids)


def check_ticks(got, copies=1):
    """Every tick once per copy, each from pid 1 reading itself as bash."""
    lines = got.splitlines()
    ticks = [l for l in lines if l.startswith("tick ")]
    want = [f"tick {i} 1 bash {HOSTNAME}" for i in range(1, PID_TICKS + 1)]
    for w in want:
        n = ticks.count(w)
        # ticks before the checkpoint were written once, by the dumped tree
        if n not in (1, copies):
            pytest.fail(f"{w!r} {n} times, not 1 or {copies}:\n{got[-600:]}", pytrace=False)
    if [t for t in ticks if t not in want]:
        pytest.fail(f"unexpected lines:\n{got[-600:]}", pytrace=False)
    if ticks.count(want[-1]) != copies or lines.count("done") != copies:
        pytest.fail(f"not every copy finished:\n{got[-600:]}", pytrace=False)


def test_pid_namespace(zdtm_mode):
    zdtm_mode.preflight()
    run = Run("pid_ns", zdtm_mode, compare_state=False)

    def body():
        out, kids = start_pid_ns_tree(run)
        check_pid_ns(run.pid, kids)
        zdtm_mode.checkpoint(run)
        check_pid_ns(run.pid, kids)
        assert uts_hostname(run.pid) == HOSTNAME
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the loop did not finish", pytrace=False)
        check_ticks(out.read_text())

    guarded(run, body)


def test_pid_namespace_restored_twice(tmp_path):
    """One image, two copies at once: each its own pid namespace's init."""
    run = Run("pid_ns_twice", zdtm_runner.MODES["dump"], compare_state=False)
    roots = []

    def body():
        out, kids = start_pid_ns_tree(run)
        run.amber("dump", ["-t", run.pid, "-D", run.imgdir], "dump.log")
        if run.leftovers(10, run.walk() + [run.pid]):
            pytest.fail("the tree runs on after `amber dump`", pytrace=False)
        run.reap_dumped()
        for k in (1, 2):
            run.amber("restore", ["-D", run.imgdir, "-d", "--pidfile", f"root-{k}.pid"],
                      f"restore-{k}.log")
            roots.append(int(read_text(run.imgdir / f"root-{k}.pid")))
        assert roots[0] != roots[1]
        for r in roots:
            assert proc_stat(r) is not None and proc_stat(r)[0] not in "ZX"
            check_pid_ns(r, kids)
        assert ns_ino(roots[0], "pid") != ns_ino(roots[1], "pid")
        run.set_root(roots[0])
        deadline = time.monotonic() + env_float("ZDTM_TIMEOUT", 120)
        while any(proc_stat(r) and proc_stat(r)[0] not in "ZX" for r in roots):
            for r in roots:
                run.reap(r)
            if time.monotonic() > deadline:
                pytest.fail("the copies did not finish", pytrace=False)
            time.sleep(0.05)
        check_ticks(out.read_text(), copies=2)

    try:
        guarded(run, body)
    finally:
        kill_pids(*roots)  # the init's death takes its namespace with it



# Time namespace: helpers/clocks (its clocks printed every 50 ms, a child
# sleeping) started by `unshare --time` with offsets of a day and an hour.
TIME_TICKS = 80
MONO_OFF, BOOT_OFF = 86400, 3600
NS = 10**9


def timens_offsets(pid):
    """/proc/PID/timens_offsets in nanoseconds, by clock name."""
    out = {}
    for line in read_text(f"/proc/{pid}/timens_offsets").splitlines():
        name, sec, nsec = line.split()
        out[name] = int(sec) * NS + int(nsec)
    return out


def setsid_child_pid(run, out, launcher, child):
    """The pid of what `setsid -f` left running (@child, under @launcher,
    run.popen), from the "pid N" it writes first to @out."""
    run.notes = [run.dir / "err", out]
    if run.popen.wait(timeout=10):
        pytest.fail(f"{launcher} failed", pytrace=False)
    deadline = time.monotonic() + 10
    while not out.read_text().startswith("pid "):
        if time.monotonic() > deadline:
            pytest.fail(f"{child} never started", pytrace=False)
        time.sleep(0.01)
    return int(out.read_text().split()[1])


def start_time_ns(run, out):
    """helpers/clocks in a time namespace of its own, the leader of its
    session; `setsid -f` leaves it to us (a subreaper), not to unshare, so
    its pid is free once the dump ends it. Returns its pid."""
    helper = zdtm_runner.ZDTM_DIR / "helpers" / "clocks"
    if not os.access(helper, os.X_OK):
        pytest.skip(f"{helper} is not built (make -C test/zdtm)")
    with open(out, "wb") as f, open(run.dir / "err", "wb") as err:
        run.popen = subprocess.Popen(
            ["unshare", "--time", f"--monotonic={MONO_OFF}", f"--boottime={BOOT_OFF}",
             "--fork", "setsid", "-f", str(helper), str(TIME_TICKS), "50"],
            cwd=run.dir, stdin=subprocess.DEVNULL, stdout=f, stderr=err)
    return setsid_child_pid(run, out, "unshare", "helpers/clocks")


def check_time_ns(root):
    """@root and its child share a time namespace that is not ours."""
    assert ns_ino(root, "time") != ns_ino(os.getpid(), "time")
    assert ns_ino(root, "time_for_children") == ns_ino(root, "time")
    kids = children(root)
    assert len(kids) == 1 and ns_ino(kids[0], "time") == ns_ino(root, "time"), kids


def check_clock_ticks(got, slack_ns):
    """Every tick once, in order; both clocks go on, never back nor forward
    by more than @slack_ns between two ticks; BOOTTIME - MONOTONIC as it was."""
    lines = got.splitlines()
    ticks = [l.split() for l in lines if l.startswith("tick ")]
    if [int(t[1]) for t in ticks] != list(range(1, TIME_TICKS + 1)) or lines[-1] != "done":
        pytest.fail(f"ticks missing or repeated:\n{got[-600:]}", pytrace=False)
    mono = [int(t[2]) for t in ticks]
    boot = [int(t[3]) for t in ticks]
    assert mono[0] >= MONO_OFF * NS and boot[0] >= BOOT_OFF * NS, ticks[0]
    for clock, vals in (("monotonic", mono), ("boottime", boot)):
        steps = [b - a for a, b in zip(vals, vals[1:])]
        if min(steps) <= 0 or max(steps) > slack_ns:
            pytest.fail(f"{clock} steps from {min(steps)} to {max(steps)} ns (at most "
                        f"{slack_ns}):\n{got[-600:]}", pytrace=False)
    diffs = [b - m for m, b in zip(mono, boot)]
    assert max(diffs) - min(diffs) < NS // 10, (min(diffs), max(diffs))


def test_time_namespace(zdtm_mode):
    """The clocks go on from where they were: the time the tree spent
    dumped does not pass for it (as CRIU restores a time namespace)."""
    zdtm_mode.preflight()
    run = Run("time_ns", zdtm_mode, compare_state=False)

    def body():
        out = run.dir / "out"
        run.set_root(start_time_ns(run, out))
        wait_lines(run, out, 6)
        check_time_ns(run.pid)
        assert timens_offsets(run.pid) == {"monotonic": MONO_OFF * NS, "boottime": BOOT_OFF * NS}
        t0 = time.monotonic_ns()
        zdtm_mode.checkpoint(run)
        took = time.monotonic_ns() - t0
        if zdtm_mode.name != "nodump" and not list(run.imgdir.glob("timens-*.img")):
            pytest.fail("no timens-*.img in the image", pytrace=False)
        check_time_ns(run.pid)
        off = timens_offsets(run.pid)
        if zdtm_mode.name == "nodump":
            assert off == {"monotonic": MONO_OFF * NS, "boottime": BOOT_OFF * NS}, off
        else:
            # less by the time between the dump's reading and the restore's
            for name, want in (("monotonic", MONO_OFF), ("boottime", BOOT_OFF)):
                assert want * NS - took <= off[name] < want * NS, (name, off, took)
            skew = off["monotonic"] - off["boottime"] - (MONO_OFF - BOOT_OFF) * NS
            assert abs(skew) < NS // 10, off
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("helpers/clocks did not finish", pytrace=False)
        check_clock_ticks(out.read_text(), took + NS)

    guarded(run, body)


# Cgroup namespace: a loop made by `unshare --cgroup` in a cgroup v2 cgroup
# of the test's (the namespace's root), its child moved into a cgroup below;
# every tick prints both tasks' /proc/PID/cgroup as they see them.
CG_TICKS = 60
# No task is made per tick (a task that ends while amber freezes the tree
# fails the dump): builtins only, and a read that times out as the sleep.
CG_LOOP = """
sleep 1000 & K=$!
echo $K > "$CG/in/cgroup.procs" || exit 3
exec 3<> <(:)
echo "pid $$ kid $K"
for ((i = 1; i <= %d; i++)); do
    mapfile -t A < /proc/self/cgroup
    mapfile -t B < /proc/$K/cgroup
    echo "tick $i ${A[*]} | ${B[*]}"
    read -t 0.05 -u 3
done
kill $K
echo done
""" % CG_TICKS


def unified_mount():
    for line in read_text("/proc/self/mountinfo").splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            return fields[0].split()[4]
    return None


def v2_path(pid):
    return next((l[3:] for l in read_text(f"/proc/{pid}/cgroup").splitlines()
                 if l.startswith("0::")), None)


def test_cgroup_namespace(zdtm_mode):
    """The restored tree is in a cgroup namespace of its own rooted at the
    same cgroup: what it reads in /proc/PID/cgroup is what it read."""
    mnt = unified_mount()
    if mnt is None:
        pytest.skip("no cgroup v2 hierarchy here")
    zdtm_mode.preflight()
    run = Run("cgroup_ns", zdtm_mode, compare_state=False)
    name = f"amber-cgns-{zdtm_mode.name}-{os.getpid()}"
    cg = f"{mnt}/{name}"
    os.makedirs(f"{cg}/in")

    def body():
        out = run.dir / "out"
        with open(out, "wb") as f, open(run.dir / "err", "wb") as err:
            # setsid -f: the loop is left to us (a subreaper), not to unshare
            run.popen = subprocess.Popen(
                ["sh", "-c", 'echo $$ > "$CG/cgroup.procs" && exec unshare --cgroup --fork '
                 'setsid -f bash -c "$LOOP"'],
                env=dict(os.environ, CG=cg, LOOP=CG_LOOP), cwd=run.dir,
                stdin=subprocess.DEVNULL, stdout=f, stderr=err)
        run.set_root(setsid_child_pid(run, out, "unshare --cgroup", "the loop"))
        wait_lines(run, out, 6)

        def check():
            kids = [c for c in children(run.pid)  # not the ticks' subshells
                    if read_text(f"/proc/{c}/cmdline").startswith("sleep\0" "1000")]
            assert ns_ino(run.pid, "cgroup") != ns_ino(os.getpid(), "cgroup")
            assert len(kids) == 1 and ns_ino(kids[0], "cgroup") == ns_ino(run.pid, "cgroup")
            assert v2_path(run.pid) == f"/{name}" and v2_path(kids[0]) == f"/{name}/in", \
                (v2_path(run.pid), v2_path(kids[0]))
        check()
        zdtm_mode.checkpoint(run)
        if zdtm_mode.name != "nodump":
            from pycriu import images
            with open(run.imgdir / "cgroup.img", "rb") as f:
                sets = images.load(f)["entries"][0]["sets"]
            v2 = [m for s in sets for m in s["ctls"] if m["name"] == ""]
            assert {m.get("cgns_prefix") for m in v2} == {len(name) + 1}, v2
        check()
        if run.wait_gone([run.pid], env_float("ZDTM_TIMEOUT", 120)):
            pytest.fail("the loop did not finish", pytrace=False)
        lines = out.read_text().splitlines()
        ticks = [l.split(" ", 2) for l in lines if l.startswith("tick ")]
        if [int(t[1]) for t in ticks] != list(range(1, CG_TICKS + 1)) or lines[-1] != "done":
            pytest.fail(f"ticks missing or repeated:\n{lines[-8:]}", pytrace=False)
        views = {t[2] for t in ticks}
        assert len(views) == 1, views
        view = views.pop()
        assert " 0::/ |" in view and view.endswith(" 0::/in"), view

    try:
        guarded(run, body)
    finally:
        for d in (f"{cg}/in", cg):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


@pytest.mark.parametrize("direction", ["amber-criu", "criu-amber"])
def test_time_uts_criu_interop(tmp_path, direction):
    """A tree in its own UTS and time namespaces, dumped by one engine and
    restored by the other (CRIU 4.2): the hostname in a new UTS namespace
    (CRIU makes one only when the inventory's root_ids name another than
    the tasks'), the clocks going on in a new time namespace."""
    from test_interop import need_criu
    criu = need_criu()
    helper = zdtm_runner.ZDTM_DIR / "helpers" / "clocks"
    if not os.access(helper, os.X_OK):
        pytest.skip(f"{helper} is not built (make -C test/zdtm)")
    dumper, restorer = (amber_path(), criu) if direction == "amber-criu" else (criu, amber_path())
    out, img = tmp_path / "out", tmp_path / "img"
    img.mkdir(mode=0o700)
    with open(out, "wb") as f:
        subprocess.run(["unshare", "--uts", "--time", f"--monotonic={MONO_OFF}",
                        f"--boottime={BOOT_OFF}", "--fork", "setsid", "-f", "sh", "-c",
                        f"hostname {HOSTNAME} && exec {helper} {TIME_TICKS} 50"],
                       stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, check=True)
    pids = []
    try:
        deadline = time.monotonic() + 10
        while out.read_text().count("\n") < 6:
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.01)
        pids = [int(x) for x in out.read_text().split()[1:4:2]]
        t0 = time.monotonic_ns()
        r = subprocess.run([str(dumper), "dump", "-t", str(pids[0]), "-D", str(img), "-v4",
                            "-o", str(img / "dump.log")], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(img / "dump.log")[-2000:]
        deadline = time.monotonic() + 10
        while any(proc_stat(p) for p in pids):  # ours (a subreaper) once unshare left
            zdtm_runner.reap_all()
            assert time.monotonic() < deadline, "the dumped tree is still there"
            time.sleep(0.01)
        r = subprocess.run([str(restorer), "restore", "-D", str(img), "-d", "--pidfile",
                            str(img / "pid"), "-v4", "-o", str(img / "restore.log")],
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(img / "restore.log")[-2000:]
        took = time.monotonic_ns() - t0
        root = int(read_text(img / "pid"))
        assert root == pids[0]
        assert uts_hostname(root) == HOSTNAME and socket.gethostname() != HOSTNAME
        assert ns_ino(root, "uts") != ns_ino(os.getpid(), "uts")
        check_time_ns(root)
        off = timens_offsets(root)
        for name, want in (("monotonic", MONO_OFF), ("boottime", BOOT_OFF)):
            assert want * NS - took <= off[name] < want * NS, (name, off, took)
        deadline = time.monotonic() + env_float("ZDTM_TIMEOUT", 120)
        while proc_stat(root) and proc_stat(root)[0] not in "ZX":
            zdtm_runner.reap_all()
            assert time.monotonic() < deadline, "helpers/clocks did not finish"
            time.sleep(0.05)
        check_clock_ticks(out.read_text(), took + NS)
    finally:
        kill_pids(*pids)
        zdtm_runner.reap_all()

def test_nested_uts_refused(tmp_path):
    """The root in amber's UTS namespace, its child in one of its own."""
    p = subprocess.Popen(["/bin/sh", "-c", "unshare --uts sleep 1000 & wait"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        mine = ns_ino(os.getpid(), "uts")
        deadline = time.monotonic() + 10
        child = None
        while child is None and time.monotonic() < deadline:
            for c in read_text(f"/proc/{p.pid}/task/{p.pid}/children").split():
                try:
                    if read_text(f"/proc/{c}/comm").strip() == "sleep" and \
                            ns_ino(c, "uts") != mine:
                        child = int(c)
                except OSError:
                    pass
            time.sleep(0.01)
        assert child, "the child never entered a UTS namespace of its own"
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           capture_output=True)
        text = log.read_text() if log.exists() else r.stderr.decode()
        assert r.returncode != 0, "the dump of a nested UTS namespace succeeded"
        assert f"process {child} is in a uts namespace other than the tree root's" in text, text
        for pid in (p.pid, child):
            st = proc_stat(pid)
            assert st is not None and st[0] in "SR", f"{pid} not running after the refusal"
            assert "TracerPid:\t0" in read_text(f"/proc/{pid}/status")
    finally:
        os.killpg(p.pid, 9)
        p.wait()


def test_bad_utsns_image_refused(tmp_path):
    """A utsns image with a name the kernel can't take: refused before any task."""
    import sys
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    from pycriu import images

    p = subprocess.Popen(["unshare", "--uts", "sleep", "1000"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while read_text(f"/proc/{p.pid}/comm").strip() != "sleep":
            assert time.monotonic() < deadline, "unshare never exec'd sleep"
            time.sleep(0.01)
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-o", "dump.log"], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    (img,) = imgdir.glob("utsns-*.img")
    with open(img, "rb") as f:
        data = images.load(f)
    data["entries"][0]["nodename"] = "x" * 100
    with open(img, "wb") as f:
        images.dump(data, f)
    (imgdir / "amber.sums").unlink()
    r = subprocess.run([str(amber_path()), "restore", "-D", str(imgdir), "-d"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    log = r.stderr
    assert r.returncode != 0, "a 100-byte hostname was restored"
    assert f"{img.name}: a name longer than the kernel's 64 bytes" in log, log
    assert "nothing was restored" in log, log
    assert proc_stat(p.pid) is None, "a task was created"


# SysV IPC objects (static/ipc_sysv.c), in every mode: in an IPC namespace
# made by `unshare --ipc` (every object saved, made again with its id), and
# in amber's own (the attaches only: the segments stay where they are).
IPC_KEYS = [f"0x414d42{n:02x}" for n in range(1, 6)]
IPC_WHERE = {"own-ns": (["unshare", "--ipc"], ["--in-ns=1"]), "host-ns": ([], ["--host=1"]),
             # a live segment with the key of a removed one: the removed one's
             # attach is named /SYSV00000000 after restore (its key taken), so
             # the maps are not compared
             "own-ns-reused-key": (["unshare", "--ipc"], ["--in-ns=1", "--reuse-key=1"])}


def ipcs(pid=None, ours=False):
    """`ipcs` of the IPC namespace of @pid (amber's if None), per line,
    without the blank and header lines; @ours: only the test's keys (amber's
    namespace holds others' objects too)."""
    argv = (["nsenter", "-t", str(pid), "-i"] if pid else []) + ["ipcs"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    lines = [" ".join(line.split()) for line in out.splitlines()
             if line.strip() and not line.startswith(("---", "key "))]
    return [line for line in lines if not ours or line.split()[0] in IPC_KEYS]


def host_ipc_keys():
    return [line.split()[0] for line in ipcs(ours=True)]


def ipcrm_keys():
    for key in IPC_KEYS[:2]:
        subprocess.run(["ipcrm", "-M", key], capture_output=True)


@pytest.mark.parametrize("where", sorted(IPC_WHERE))
def test_ipc_sysv_objects(zdtm_mode, where):
    import test_zdtm

    binary = zdtm_runner.ZDTM_DIR / "static" / "ipc_sysv"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is not built (make -C test/zdtm)")
    zdtm_mode.preflight()
    prefix, extra = IPC_WHERE[where]
    if where == "host-ns":
        ipcrm_keys()  # a segment a killed run left behind
    assert not host_ipc_keys(), "amber's IPC namespace holds the test's keys already"
    run = Run("ipc_sysv_" + where.replace("-", "_"), zdtm_mode, test="ipc_sysv",
              compare_state=where != "own-ns-reused-key")

    def body():
        test_zdtm.start(run, binary, prefix, extra)
        own = ns_ino(run.pid, "ipc") != ns_ino(os.getpid(), "ipc")
        assert own == (where != "host-ns")
        before = ipcs(run.pid, ours=not own)
        keys = sorted(line.split()[0] for line in before)
        want = IPC_KEYS[:2] if not own else \
            ["0x00000000", "0x00000000", IPC_KEYS[0], IPC_KEYS[3], IPC_KEYS[4]] + \
            ([IPC_KEYS[2]] if where == "own-ns-reused-key" else [])
        assert keys == sorted(want), before
        zdtm_mode.checkpoint(run)
        if zdtm_mode.name != "nodump":
            saved = sorted(p.name.rsplit("-", 1)[0] for p in run.imgdir.glob("ipcns-*.img"))
            assert saved == (["ipcns-msg", "ipcns-sem", "ipcns-shm", "ipcns-var"]
                             if own else []), saved
        # From outside: the same objects, each once, with their ids, modes,
        # sizes, attach counts and data sizes; none leaked into amber's namespace.
        after = ipcs(run.pid, ours=not own)
        if sorted(after) != sorted(before):
            pytest.fail("ipcs differs after restore:\n" +
                        "\n".join(difflib.unified_diff(before, after, lineterm="")),
                        pytrace=False)
        if own:
            assert not host_ipc_keys(), ipcs()
        else:
            assert sorted(host_ipc_keys()) == IPC_KEYS[:2]
        test_zdtm.stop(run)
        assert not host_ipc_keys(), "the test's segments outlived it in amber's namespace"

    try:
        guarded(run, body)
    finally:
        if where == "host-ns":
            ipcrm_keys()


# POSIX message queues (static/posix_mqueue.c), in every mode: in an IPC
# namespace made by `unshare --ipc` (every queue saved with its messages,
# held or not, in ipcns-mqueue-*.img), and in amber's own (an external
# object: the descriptors reopen the queue by name, its messages never
# read; the queue outlives the dump in amber's namespace). In both, a
# queue unlinked while open is saved with its descriptors, made again and
# unlinked again.
MQ_WHERE = {"own-ns": (["unshare", "--ipc"], ["--in-ns=1"]), "host-ns": ([], ["--host=1"])}


def mq_names(pid=None):
    """The queues of the IPC namespace of @pid (amber's if None), as its
    own mqueue file system lists them (mounted in a private mount namespace)."""
    argv = (["nsenter", "-t", str(pid), "-i"] if pid else []) + \
        ["unshare", "--mount", "sh", "-c", "mount -t mqueue none /mnt && ls /mnt"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


@pytest.mark.parametrize("where", sorted(MQ_WHERE))
def test_posix_mqueue(zdtm_mode, where):
    import test_zdtm

    binary = zdtm_runner.ZDTM_DIR / "static" / "posix_mqueue"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is not built (make -C test/zdtm)")
    zdtm_mode.preflight()
    prefix, extra = MQ_WHERE[where]
    run = Run("posix_mqueue_" + where.replace("-", "_"), zdtm_mode, test="posix_mqueue")

    def body():
        test_zdtm.start(run, binary, prefix, extra)
        own = ns_ino(run.pid, "ipc") != ns_ino(os.getpid(), "ipc")
        assert own == (where == "own-ns")
        if own:
            assert mq_names(run.pid) == ["zdtm_mq_a", "zdtm_mq_b"]
        assert ("zdtm_mq_a" in mq_names()) == (not own)
        zdtm_mode.checkpoint(run)
        if zdtm_mode.name != "nodump":
            saved = sorted(p.name.rsplit("-", 1)[0] for p in run.imgdir.glob("ipcns-*.img"))
            assert ("ipcns-mqueue" in saved) == own, saved
        # the unlinked queue (zdtm_mq_c) was made again and unlinked again
        if own:
            assert mq_names(run.pid) == ["zdtm_mq_a", "zdtm_mq_b"]
            assert "zdtm_mq_a" not in mq_names(), "a queue leaked into amber's namespace"
        else:
            assert [n for n in mq_names() if n.startswith(("zdtm_mq", "amber-unlinked"))] == \
                ["zdtm_mq_a"], mq_names()
        test_zdtm.stop(run)

    try:
        guarded(run, body)
    finally:
        if where == "host-ns":
            subprocess.run(["unshare", "--mount", "sh", "-c",
                            "mount -t mqueue none /mnt && rm -f /mnt/zdtm_mq_a /mnt/zdtm_mq_c"])
