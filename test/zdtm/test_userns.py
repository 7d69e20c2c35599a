"""A tree in a user namespace of its own (docs/namespaces.md, "User
namespaces").

static/userns, started by helpers/userns_exec as root of a namespace
mapping 0..65535 to 100000..165535, in the variants test_zdtm.py does not
run: with a pid namespace of its own owned by the user namespace (the test
is its init), and with setgroups denied; static/userns_net (its network
namespace owned by the user namespace) with such a pid namespace too, its
restored network namespace's owner and the root's CAP_NET_ADMIN there
checked from outside; every mode, the lazy ones too. Then what is refused: a nested
user namespace (at dump, naming the pid, the tree left running), a
namespace made before it, two processes in amber's pid namespace, a
network namespace owned by it but named external, a damaged userns
image (at restore, before any task), a lazy restore without a working
/dev/userfaultfd. A lazy restore whose task forks, mremaps and drops
pages while they are missing (test_userns_lazy_events); and runc's busybox
container in a user namespace, with and without a network namespace,
checkpointed by amber (or, without one, by CRIU 4.2) and restored by
amber.
"""

import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import test_zdtm
import zdtm_runner
from zdtm_runner import Run, amber_path, guarded, proc_stat, read_text

USERNS_EXEC = zdtm_runner.ZDTM_DIR / "helpers" / "userns_exec"
BINARY = zdtm_runner.ZDTM_DIR / "static" / "userns"
OUTER, COUNT = test_zdtm.USERNS_OUTER, test_zdtm.USERNS_COUNT

# name -> (userns_exec's flags, the test's options, the test)
VARIANTS = {"pid": (["--pid"], [], "userns"),
            "setgroups-deny": (["--deny-setgroups"], ["--setgroups=deny"], "userns"),
            # its network namespace owned by the user namespace (and its pid one)
            "net-pid": (["--pid", "--net"], [], "userns_net")}
CAP_NET_ADMIN = 12


def ns_ino(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


NS_GET_USERNS = 0xb701


def ns_owner(pid, kind):
    """The inode of the user namespace owning @pid's @kind namespace."""
    fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            return os.fstat(owner).st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)


def need_binaries(*more):
    for b in (USERNS_EXEC, BINARY, *more):
        if not os.access(b, os.X_OK):
            pytest.skip(f"{b} is not built (make -C test/zdtm)")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_userns_variant(zdtm_mode, variant):
    flags, extra, test = VARIANTS[variant]
    binary = zdtm_runner.ZDTM_DIR / "static" / test
    need_binaries(binary)
    zdtm_mode.preflight()
    # A new pid namespace gives the restored root another host pid: the
    # runner's state (by host pid) is not compared, the test checks its own.
    run = Run("userns_" + variant.replace("-", "_"), zdtm_mode, test=test,
              compare_state="--pid" not in flags)

    def body():
        test_zdtm.start(run, binary, test_zdtm.userns_prefix(*flags), extra, owner=OUTER)
        assert ns_ino(run.pid, "user") != ns_ino(os.getpid(), "user")
        own_pid = ns_ino(run.pid, "pid") != ns_ino(os.getpid(), "pid")
        assert own_pid == ("--pid" in flags)
        if "--net" in flags:
            assert ns_owner(run.pid, "net") == ns_ino(run.pid, "user")
        zdtm_mode.checkpoint(run)
        if "--net" in flags:
            check_net_owned(run.pid)
        if zdtm_mode.name != "nodump":
            assert [p.name for p in run.imgdir.glob("userns-*.img")], "no userns image"
        # From outside: the restored root is in a new user namespace with the map.
        assert read_text(f"/proc/{run.pid}/uid_map").split() == ["0", str(OUTER), str(COUNT)]
        assert read_text(f"/proc/{run.pid}/setgroups").strip() == \
            ("deny" if variant == "setgroups-deny" else "allow")
        test_zdtm.stop(run)

    guarded(run, body)


def check_net_owned(pid, net_admin=True):
    """@pid's network namespace is owned by its user namespace (not
    amber's), whose root holds CAP_NET_ADMIN over it: an address added to
    lo from inside that user namespace alone. @net_admin: @pid holds it
    (a container's process has the capabilities its config gives)."""
    assert ns_ino(pid, "net") != ns_ino(os.getpid(), "net")
    assert ns_owner(pid, "net") == ns_ino(pid, "user") != ns_ino(os.getpid(), "user")
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("CapEff:") and net_admin:
            assert int(line.split()[1], 16) & (1 << CAP_NET_ADMIN), line
    enter = ["nsenter", "-t", str(pid), "-U", "-n"]
    r = subprocess.run([*enter, "ip", "addr", "add", "192.0.2.7/32", "dev", "lo"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*enter, "ip", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                       text=True)
    assert "192.0.2.7/32" in r.stdout, r.stdout
    subprocess.run([*enter, "ip", "addr", "del", "192.0.2.7/32", "dev", "lo"], check=True)


def start_detached(argv):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(pred, what):
    deadline = time.monotonic() + 10
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def comm_is(pid, name):
    return read_text(f"/proc/{pid}/comm").strip() == name


def test_nested_userns_refused(tmp_path):
    """The root in a user namespace of its own, its child in one nested in it."""
    need_binaries()
    p = start_detached([str(USERNS_EXEC), str(OUTER), str(COUNT), "/bin/sh", "-c",
                        "unshare --user sleep 1000 & wait"])
    try:
        wait_for(lambda: comm_is(p.pid, "sh"), "userns_exec never exec'd sh")

        def nested_child():
            for c in read_text(f"/proc/{p.pid}/task/{p.pid}/children").split():
                try:
                    if comm_is(c, "sleep") and ns_ino(c, "user") != ns_ino(p.pid, "user"):
                        return int(c)
                except OSError:
                    pass
            return None
        child = wait_for(nested_child, "the child never entered a nested user namespace")
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           capture_output=True)
        text = log.read_text() if log.exists() else r.stderr.decode()
        assert r.returncode != 0, "the dump of a nested user namespace succeeded"
        assert f"process {child} is in a user namespace other than the tree root's" in text, \
            text
        for pid in (p.pid, child):
            st = proc_stat(pid)
            assert st is not None and st[0] in "SR", f"{pid} not running after the refusal"
            assert "TracerPid:\t0" in read_text(f"/proc/{pid}/status")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


# name -> (the tree under userns_exec or around it, its root's comm, the dump's message)
REFUSED = {
    # the network namespace of a user namespace nested in the tree's (left
    # running on its own), entered: neither the tree's nor amber's owns it
    "netns-of-another": (lambda ue: [*ue, "sh", "-c",
                                     "p=$(sh -c 'unshare --user --net sleep 1000 "
                                     ">/dev/null 2>&1 & echo $!'); sleep 0.3; "
                                     "exec nsenter --net=/proc/$p/ns/net sleep 1000"],
                         "sleep", "its network namespace is owned by another user namespace "
                         "than its own and amber's"),
    # made before the user namespace: the restore would make it inside
    "uts-outside": (lambda ue: ["unshare", "--uts", *ue, "sleep", "1000"], "sleep",
                    "its uts namespace is not owned by its user namespace"),
    # its child could not be given its pid from inside
    "two-in-host-pidns": (lambda ue: [*ue, "sh", "-c", "sleep 1000 & wait"], "sh",
                          "in amber's pid namespace, with 2 processes"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_userns_tree_refused(tmp_path, case):
    """What a tree in a user namespace of its own can't be restored as: refused
    at dump, named, the tree left running."""
    need_binaries()
    make, comm, message = REFUSED[case]
    p = start_detached(make([str(USERNS_EXEC), str(OUTER), str(COUNT)]))
    try:
        wait_for(lambda: comm_is(p.pid, comm), f"the tree never exec'd {comm}")
        if case == "two-in-host-pidns":
            wait_for(lambda: read_text(f"/proc/{p.pid}/task/{p.pid}/children").split(),
                     "sh never forked")
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-v4", "-o", str(log)], stdin=subprocess.DEVNULL,
                           capture_output=True)
        text = log.read_text() if log.exists() else r.stderr.decode()
        assert r.returncode != 0, f"the dump of {case} succeeded"
        assert f"process {p.pid}" in text and message in text, text
        st = proc_stat(p.pid)
        assert st is not None and st[0] in "SR", "not running after the refusal"
        assert "TracerPid:\t0" in read_text(f"/proc/{p.pid}/status")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_userns_owned_external_netns_refused(tmp_path):
    """A network namespace owned by the tree's user namespace but named
    external (the caller's, given again at restore, while the restore makes
    a new user namespace): refused at dump, the tree left running."""
    need_binaries()
    p = start_detached([str(USERNS_EXEC), str(OUTER), str(COUNT), "unshare", "--net", "sleep",
                        "1000"])
    try:
        wait_for(lambda: comm_is(p.pid, "sleep"), "the tree never exec'd sleep")
        imgdir = tmp_path / "img"
        imgdir.mkdir()
        log = imgdir / "dump.log"
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "--external", f"net[{ns_ino(p.pid, 'net')}]:extNet", "-v4", "-o",
                            str(log)], stdin=subprocess.DEVNULL, capture_output=True)
        text = log.read_text() if log.exists() else r.stderr.decode()
        assert r.returncode != 0, "the dump of an external netns owned by the userns succeeded"
        assert (f"process {p.pid}: its network namespace, named external, is owned by its "
                "user namespace") in text, text
        st = proc_stat(p.pid)
        assert st is not None and st[0] in "SR", "not running after the refusal"
        assert "TracerPid:\t0" in read_text(f"/proc/{p.pid}/status")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def dump_userns_sleep(imgdir, *inner):
    """A sleep in a user namespace of its own (under @inner, a command that
    execs it), dumped (it is gone): its pid."""
    imgdir.mkdir()
    p = start_detached([str(USERNS_EXEC), str(OUTER), str(COUNT), *inner, "sleep", "1000"])
    try:
        wait_for(lambda: comm_is(p.pid, "sleep"), "userns_exec never exec'd sleep")
        r = subprocess.run([str(amber_path()), "dump", "-t", str(p.pid), "-D", str(imgdir),
                            "-o", str(imgdir / "dump.log")], stdin=subprocess.DEVNULL)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.pid


@pytest.fixture(scope="module")
def userns_images(tmp_path_factory):
    """A sleep in a user namespace of its own, dumped (it is gone)."""
    need_binaries()
    imgdir = tmp_path_factory.mktemp("userns") / "img"
    return imgdir, dump_userns_sleep(imgdir)


@pytest.fixture(scope="module")
def userns_net_images(tmp_path_factory):
    """The same, in a network namespace owned by its user namespace."""
    need_binaries()
    imgdir = tmp_path_factory.mktemp("userns-net") / "img"
    return imgdir, dump_userns_sleep(imgdir, "unshare", "--net")


def extent(first, lower, count):
    return {"first": first, "lower_first": lower, "count": count}


# name -> (uid_map, the restore's message, run amber inside a user namespace
# mapping 0..65535 of its own to OUTER.. so that its own ids are 0..65535)
BAD_MAPS = {
    "overlap": ([extent(0, OUTER, 100), extent(50, OUTER + 1000, 100)],
                "uid_map extents 0 and 1 overlap", False),
    "overlap-lower": ([extent(0, OUTER, 100), extent(1000, OUTER + 50, 100)],
                      "uid_map extents 0 and 1 overlap", False),
    "too-many": ([extent(i * 10, OUTER + i * 10, 10) for i in range(341)],
                 "341 extents in the uid_map (1 to 340)", False),
    "none": ([], "0 extents in the uid_map", False),
    "past-last-id": ([extent(0, 4294967290, 100)], "is empty or past the last id", False),
    "not-amber's": ([extent(0, 60000, 10000)], "which amber's own user namespace does not have",
                    True),
}


@pytest.mark.parametrize("bad", sorted(BAD_MAPS))
def test_bad_userns_image_refused(userns_images, tmp_path, bad):
    """A damaged userns image: refused at load, before any task exists."""
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    from pycriu import images

    src, pid = userns_images
    uid_map, message, inside = BAD_MAPS[bad]
    # Run inside, amber must reach the images: a directory its root owns.
    top = Path(tempfile.mkdtemp(prefix="zdtm-userns-bad-")) if inside else tmp_path
    imgdir = top / "img"
    subprocess.run(["cp", "-a", str(src), str(imgdir)], check=True)
    if inside:
        os.chmod(top, 0o755)
        subprocess.run(["chown", "-R", f"{OUTER}:{OUTER}", str(imgdir)], check=True)
    (img,) = imgdir.glob("userns-*.img")
    with open(img, "rb") as f:
        data = images.load(f)
    if uid_map:
        data["entries"][0]["uid_map"] = uid_map
    else:  # pycriu can't write an empty repeated field: left out
        del data["entries"][0]["uid_map"]
    with open(img, "wb") as f:
        images.dump(data, f)
    (imgdir / "amber.sums").unlink()
    argv = [str(amber_path()), "restore", "-D", str(imgdir), "-d"]
    if inside:
        argv = [str(USERNS_EXEC), str(OUTER), str(COUNT), *argv]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    finally:
        if inside:
            shutil.rmtree(top)
    assert r.returncode != 0, f"a userns image with {bad} extents was restored"
    assert f"{img.name}: " in r.stderr and message in r.stderr, r.stderr
    assert "nothing was restored" in r.stderr, r.stderr
    assert proc_stat(pid) is None, "a task was created"


def set_owns_netns(img):
    """userns_entry.amber_owns_netns = true (field 1001, a varint: pycriu
    knows CRIU's fields only), appended to the image's one entry."""
    data = img.read_bytes()
    head = 8  # the two magics
    (size,) = struct.unpack_from("<I", data, head)
    entry = data[head + 4:head + 4 + size] + bytes([0xc8, 0x3e, 0x01])
    img.write_bytes(data[:head] + struct.pack("<I", len(entry)) + entry)


def test_userns_owns_missing_netns_refused(userns_images, tmp_path):
    """A userns image saying it owns the tree's network namespace, the tree
    without one of its own: refused at load, before any task exists."""
    src, pid = userns_images
    imgdir = tmp_path / "img"
    subprocess.run(["cp", "-a", str(src), str(imgdir)], check=True)
    (img,) = imgdir.glob("userns-*.img")
    set_owns_netns(img)
    (imgdir / "amber.sums").unlink()
    r = subprocess.run([str(amber_path()), "restore", "-D", str(imgdir), "-d"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert r.returncode != 0, "restored a tree without the network namespace its userns owns"
    assert (f"{img.name}: owner of the network namespace, but the tree has none of its own"
            in r.stderr), r.stderr
    assert "nothing was restored" in r.stderr, r.stderr
    assert proc_stat(pid) is None, "a task was created"


def test_userns_lazy_events():
    """mem_events as root of a user namespace of its own (and init of a pid
    namespace), restored lazily by a daemon that only answers faults: it
    forks, mremaps and MADV_DONTNEEDs while its pages are missing, so each
    uffd event, the fork above all (UFFD_FEATURE_EVENT_FORK, which amber
    asks for in the host's namespace for the uffd the task made from
    /dev/userfaultfd), must reach the daemon; the test checks its memory,
    its children theirs."""
    import test_lazy
    binary = zdtm_runner.ZDTM_DIR / "static" / "mem_events"
    need_binaries(binary)
    run = Run("userns_mem_events", zdtm_runner.MODES["lazy"], test="mem_events",
              compare_state=False)

    def body():
        test_zdtm.start(run, binary, test_zdtm.userns_prefix("--pid"), owner=OUTER)
        assert ns_ino(run.pid, "user") != ns_ino(os.getpid(), "user")
        run.dump()
        d = test_lazy.daemon(run, "lazy.log", "--no-prefetch")
        zdtm_runner.wait_lazy_socket(run.imgdir, d, 10)
        run.amber("restore", ["-D", run.imgdir, "-d", "--lazy-pages", "--lazy-socket",
                              run.imgdir / "lazy.sock", "--pidfile", zdtm_runner.PIDFILE],
                  "restore.log")
        run.pid = zdtm_runner.restored_root(run)
        run.set_root(run.pid)
        assert read_text(f"/proc/{run.pid}/uid_map").split() == ["0", str(OUTER), str(COUNT)]
        test_zdtm.stop(run)
        zdtm_runner.lazy_daemon_done(run, d, run.imgdir, "lazy.log")
        log = read_text(run.imgdir / "lazy.log")
        assert " forked mm " in log, "no fork event reached the daemon:\n" + log[-2000:]

    test_lazy.run_guarded(run, body)


@pytest.mark.parametrize("images", ["userns_images", "userns_net_images"])
def test_userns_lazy_without_device_refused(request, images, tmp_path):
    """--lazy-pages of a userns tree (owning its network namespace or not)
    where /dev/userfaultfd makes no uffd (/dev/null mounted over it, in a
    mount namespace of the restore's own): refused before any task, naming
    the device."""
    src, pid = request.getfixturevalue(images)
    if images == "userns_net_images":
        (img,) = src.glob("userns-*.img")
        assert bytes([0xc8, 0x3e, 0x01]) in img.read_bytes(), "amber_owns_netns not saved"
    imgdir = tmp_path / "img"
    subprocess.run(["cp", "-a", str(src), str(imgdir)], check=True)
    sock = imgdir / "lazy.sock"
    daemon = subprocess.Popen([str(amber_path()), "lazy-pages", "-D", str(imgdir), "--socket",
                               str(sock), "-o", str(imgdir / "lazy-pages.log")],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(sock.exists, "amber lazy-pages did not start listening")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            'mount --bind /dev/null /dev/userfaultfd && exec "$@"', "sh",
                            str(amber_path()), "restore", "-D", str(imgdir), "-d",
                            "--lazy-pages", "--lazy-socket", str(sock)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
    finally:
        daemon.kill()
        daemon.wait()
    assert r.returncode != 0, "a lazy restore of a userns tree went on without the device"
    assert ("--lazy-pages: the tree is in a user namespace of its own, where its tasks make "
            "their userfaultfd from /dev/userfaultfd") in r.stderr, r.stderr
    assert "nothing was restored" in r.stderr, r.stderr
    assert proc_stat(pid) is None, "a task was created"


def runc_userns_container(top, network):
    """test_runc.py's busybox container, in a user namespace of its own
    (0 -> OUTER, COUNT ids): its other namespaces are made in it by runc;
    @network: with a network namespace of its own (owned by it too)."""
    import test_runc

    test_runc.need_runc()
    c = test_runc.Container(top, "userns")
    cfg = json.loads((c.bundle / "config.json").read_text())
    lx = cfg["linux"]
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "network" or network]
    lx["namespaces"].append({"type": "user"})
    if not network:
        # sysfs is mounted only by the owner of the network namespace, the
        # host's here; the host's bound in would bring its own mounts
        # (cgroups) with it: no /sys.
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/sys")]
    lx["uidMappings"] = [{"containerID": 0, "hostID": OUTER, "size": COUNT}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": OUTER, "size": COUNT}]
    # A file owned by an id of the namespace (not root), on its tmpfs:
    # CAP_CHOWN (of the namespace) besides runc's default three.
    for caps in cfg["process"]["capabilities"].values():
        caps.append("CAP_CHOWN")
    lx_args = cfg["process"]["args"]
    lx_args[2] = ("echo owned > /tmp/owned; busybox chown 1000:1001 /tmp/owned; "
                  + lx_args[2])
    (c.bundle / "config.json").write_text(json.dumps(cfg))
    # The namespace's root must reach the bundle and own its rootfs (as
    # podman's is, shifted).
    os.chmod(top, 0o755)
    subprocess.run(["chown", "-R", f"{OUTER}:{OUTER}", str(c.bundle / "rootfs")], check=True)
    return c


def runc_userns_round_trip(dumper, restorer, network=False):
    """The container checkpointed by @dumper's runc --criu, restored by
    @restorer's; checked from outside. @network: with a network namespace
    of its own, owned by its user namespace."""
    top = Path(tempfile.mkdtemp(prefix="zdtm-runc-userns-"))
    c = runc_userns_container(top, network=network)
    try:
        c.run()
        c.wait_counter(5)
        pid, before = c.state()["pid"], c.counter()
        assert ns_ino(pid, "user") != ns_ino(os.getpid(), "user")
        if network:
            assert ns_owner(pid, "net") == ns_ino(pid, "user")
        owned = os.stat(f"/proc/{pid}/root/tmp/owned")
        assert (owned.st_uid, owned.st_gid) == (OUTER + 1000, OUTER + 1001)
        r = runc_cmd("--criu", dumper, "checkpoint", "--image-path", top / "img",
                     "--work-path", top / "work", c.cid)
        assert r.returncode == 0, f"{r.stderr}\n{read_text(top / 'work/dump.log')}"
        assert list((top / "img").glob("userns-*.img"))
        assert c.state() is None or c.state()["status"] != "running"
        r = runc_cmd("--criu", restorer, "restore", "-d", "--image-path", top / "img",
                     "--work-path", top / "work2", c.cid, cwd=c.bundle,
                     stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"{r.stderr}\n{read_text(top / 'work2/restore.log')}"
        st = c.state()
        assert st and st["status"] == "running", st
        new = st["pid"]
        assert read_text(f"/proc/{new}/uid_map").split() == ["0", str(OUTER), str(COUNT)]
        assert read_text(f"/proc/{new}/gid_map").split() == ["0", str(OUTER), str(COUNT)]
        assert "Uid:\t%d\t%d\t%d\t%d" % ((OUTER,) * 4) in read_text(f"/proc/{new}/status")
        # Its other namespaces are owned by its new user namespace.
        for kind in ("pid", "mnt", "ipc", "uts", *(["net"] if network else [])):
            assert ns_owner(new, kind) == ns_ino(new, "user"), kind
        if network:
            check_net_owned(new, net_admin=False)
            # its lo came back up, and its sysfs (mounted by the owner of the
            # network namespace) is the new namespace's
            r = runc_cmd("exec", c.cid, "cat", "/sys/class/net/lo/operstate")
            assert r.returncode == 0 and r.stdout.strip() == "unknown", r
        # Its tmpfs, made again: the marker, a file still owned by 1000:1001 inside.
        assert c.read("marker") == runc_marker()
        owned = os.stat(f"/proc/{new}/root/tmp/owned")
        assert (owned.st_uid, owned.st_gid) == (OUTER + 1000, OUTER + 1001)
        first = c.counter()
        assert first >= before, (first, before)
        c.wait_counter(first + 3)
        r = runc_cmd("exec", c.cid, "cat", "/tmp/owned")
        assert r.returncode == 0 and r.stdout.strip() == "owned", r
    finally:
        c.delete()
        shutil.rmtree(top, ignore_errors=True)


def test_runc_userns():
    """runc with a user namespace: checkpoint, restore, checked from outside."""
    runc_userns_round_trip(amber_path(), amber_path())


def test_runc_userns_net():
    """runc with a user namespace that owns the container's network
    namespace (runc's default namespaces, a user one added): checkpoint,
    restore, the owner and the root's CAP_NET_ADMIN checked from outside."""
    runc_userns_round_trip(amber_path(), amber_path(), network=True)


def test_runc_userns_criu_to_amber():
    """CRIU 4.2 checkpoints the container, amber restores it. (The other
    way fails in CRIU: docs/namespaces.md#user-namespaces.)"""
    import test_interop

    runc_userns_round_trip(test_interop.need_criu(), amber_path())


def runc_marker():
    import test_runc
    return test_runc.MARKER


def runc_cmd(*args, **kw):
    import test_runc
    return test_runc.runc(*args, **kw)
