"""amber kexec on the host: what runs without a PKRAM kernel or a kexec.

The workflow itself (dump into a PKRAM store, kexec, restore --pkram) runs
in the guest suite test/vm/tests/kexec.sh. Here: option parsing; the
refusals that come before anything is frozen or preserved (a bad store
name, a file that is no kernel or a truncated one, a kernel without PKRAM),
each leaving the tree running with its memory intact and nothing mounted;
restore and lazy-pages --pkram refused on a kernel without PKRAM; and
`amber kexec --verify`, the store check, against a damaged image set on a
plain tmpfs. Every kexec here passes --no-reboot and the module skips on a
kernel with PKRAM, so that a mistake can never reboot the host.
"""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from zdtm_runner import amber_path, wait_until

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE.parent / "vm" / "tests" / "kexec-workload.py"
STORE_ROOT = Path("/run/amber/pkram")
MIB = 8

pytestmark = pytest.mark.skipif(
    os.path.exists("/sys/kernel/pkram"),
    reason="this kernel has PKRAM: the host tests must not be able to kexec it")


def amber(*args, env=None):
    return subprocess.run([amber_path(), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120,
                          env=env)


class Workload:
    def __init__(self, tmp):
        self.report = tmp / "report"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(WORKLOAD), str(MIB), str(self.report)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        assert wait_until(lambda: self.report.exists(), timeout=30), "workload did not start"
        self.crc = self.report.read_text().split()[1]

    def ask(self):
        self.report.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR1)
        assert wait_until(lambda: self.report.exists(), timeout=30), "no report"
        return self.report.read_text().split()

    def assert_intact(self):
        assert self.proc.poll() is None, "the tree is gone"
        c1, crc1, ok1, _ = self.ask()
        time.sleep(0.2)
        c2, crc2, ok2, _ = self.ask()
        assert (crc1, ok1, ok2) == (self.crc, "ok", "ok")
        assert int(c2) > int(c1), "the tree does not run"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def tmp():
    d = Path(tempfile.mkdtemp(prefix="amber-kexec-"))
    yield d
    if (d / "img").is_mount():
        subprocess.run(["umount", str(d / "img")], check=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def workload(tmp):
    w = Workload(tmp)
    yield w
    w.stop()


def debian_kernel():
    for p in glob.glob("/var/cache/amber-vm/*/boot/vmlinuz-*"):
        return p
    return None


def nothing_mounted(name):
    with open("/proc/self/mountinfo") as f:
        assert f" {STORE_ROOT / name} " not in f.read()
    assert not (STORE_ROOT / name).exists()


@pytest.mark.parametrize("args, want", [
    (["kexec"], "-t PID, --pkram NAME and --kernel BZIMAGE are required"),
    (["kexec", "-t", "1", "--pkram", "x"], "are required"),
    (["kexec", "-t", "1", "--kernel", "k"], "are required"),
    (["kexec", "-t", "1", "--pkram", "x", "--kernel", "k", "-D", "d"], "-D belongs to --verify"),
    (["kexec", "--verify"], "--verify takes -D DIR only"),
    (["kexec", "--verify", "-D", "d", "-t", "1"], "--verify takes -D DIR only"),
    (["kexec", "--verify", "-D", "d", "--prev-images-dir", "p"], "--verify takes -D DIR only"),
    (["dump", "-t", "1", "-D", "d", "--pkram", "x"], "--pkram belongs to pre-dump"),
    (["pre-dump", "-t", "1", "-D", "d", "--pkram", "x", "--page-server", "--address", "a",
      "--port", "1"], "--pkram takes no --page-server"),
    (["kexec", "-t", "1", "--pkram", "x", "--kernel", "k", "extra"], "unexpected argument"),
    (["kexec", "--no-such-option"], "bad options"),
    (["restore"], "-D DIR or --pkram NAME is required"),
    (["restore", "-D", "d", "--pkram", "x"], "-D DIR or --pkram NAME is required"),
    (["restore", "-D", "d", "--pkram-copy"], "--pkram-copy needs --pkram NAME"),
    (["lazy-pages", "-D", "d", "--pkram", "x"], "-D DIR or --pkram NAME is required"),
    (["lazy-pages", "--pkram", "x", "--page-server", "--address", "a", "--port", "1"],
     "--pkram serves a local store"),
])
def test_usage(args, want):
    r = amber(*args)
    assert r.returncode == 2, r.stdout
    assert want in r.stdout


def test_help_lists_kexec():
    r = amber("--help")
    assert r.returncode == 0 and "kexec -t PID --pkram NAME --kernel BZIMAGE" in r.stdout
    assert "restore -D DIR | --pkram NAME" in r.stdout


def refused(workload, tmp, name, kernel, want):
    r = amber("kexec", "-t", str(workload.pid), "--pkram", name, "--kernel", kernel,
              "--no-reboot", "-o", str(tmp / "kexec.log"), "-v4")
    assert r.returncode == 1, r.stdout
    assert want in (tmp / "kexec.log").read_text()
    workload.assert_intact()
    if name and "/" not in name and name != "..":
        nothing_mounted(name)


@pytest.mark.parametrize("name", ["a/b", "", "x" * 48, "..", "a b"])
def test_bad_store_name(workload, tmp, name):
    refused(workload, tmp, name, "/etc/passwd", "store name")


def test_not_a_kernel(workload, tmp):
    refused(workload, tmp, "amber-test", "/etc/passwd", "is not an x86 bzImage")


def test_missing_kernel(workload, tmp):
    refused(workload, tmp, "amber-test", str(tmp / "nothing"), "can't open the kernel")


def test_truncated_kernel(workload, tmp):
    k = debian_kernel()
    if not k:
        pytest.skip("no bzImage (test/vm/get-debian-kernel.sh fetches one)")
    short = tmp / "short"
    short.write_bytes(Path(k).read_bytes()[:1 << 16])
    refused(workload, tmp, "amber-test", str(short), "is truncated")


def test_bad_initrd(workload, tmp):
    k = debian_kernel()
    if not k:
        pytest.skip("no bzImage (test/vm/get-debian-kernel.sh fetches one)")
    r = amber("kexec", "-t", str(workload.pid), "--pkram", "amber-test", "--kernel", k,
              "--initrd", str(tmp / "nothing"), "--no-reboot")
    assert r.returncode == 1 and "can't read the initrd" in r.stdout
    workload.assert_intact()
    nothing_mounted("amber-test")


def test_no_pkram_in_this_kernel(workload, tmp):
    k = debian_kernel()
    if not k:
        pytest.skip("no bzImage (test/vm/get-debian-kernel.sh fetches one)")
    refused(workload, tmp, "amber-test", k, "this kernel has no PKRAM")


@pytest.mark.parametrize("what", ["plain-dir", "tmpfs-without-pkram", "missing"])
def test_preserve_mount_refused(workload, tmp, what):
    """--preserve-mount must name the root of a tmpfs mounted pkram=NAME:
    refused before anything is frozen (these checks come before PKRAM's)."""
    k = debian_kernel()
    if not k:
        pytest.skip("no bzImage (test/vm/get-debian-kernel.sh fetches one)")
    d = tmp / "ram"
    d.mkdir()
    want = "not the root of a tmpfs mounted with pkram=NAME"
    if what == "tmpfs-without-pkram":
        subprocess.run(["mount", "-t", "tmpfs", "none", str(d)], check=True)
    elif what == "missing":
        d = tmp / "nothing"
        want = "--preserve-mount " + str(d)
    try:
        r = amber("kexec", "-t", str(workload.pid), "--pkram", "amber-test", "--kernel", k,
                  "--preserve-mount", str(d), "--no-reboot", "-o", str(tmp / "kexec.log"), "-v4")
        assert r.returncode == 1, r.stdout
        assert want in (tmp / "kexec.log").read_text()
        workload.assert_intact()
        nothing_mounted("amber-test")
    finally:
        if what == "tmpfs-without-pkram":
            subprocess.run(["umount", str(d)], check=False)


def test_preserve_mount_usage():
    args = ["kexec", "-t", "1", "--pkram", "x", "--kernel", "k"]
    for i in range(9):
        args += ["--preserve-mount", f"/m{i}"]
    r = amber(*args)
    assert r.returncode == 2 and "at most 8 --preserve-mount" in r.stdout


@pytest.mark.parametrize("verb", [["restore", "-d"], ["restore"], ["lazy-pages"]])
def test_pkram_sources_refused_here(tmp, verb):
    r = amber(*verb, "--pkram", "amber-test")
    # restore without -d exits 125 when amber itself failed
    assert r.returncode == (125 if verb == ["restore"] else 1), r.stdout
    assert "this kernel has no PKRAM" in r.stdout
    nothing_mounted("amber-test")


def test_prev_images_dir_needs_the_store(workload, tmp):
    """--prev-images-dir: the store with the pre-dumps must be mounted
    already; refused before anything is frozen, nothing mounted."""
    k = debian_kernel()
    if not k:
        pytest.skip("no bzImage (test/vm/get-debian-kernel.sh fetches one)")
    r = amber("kexec", "-t", str(workload.pid), "--pkram", "amber-test", "--kernel", k,
              "--prev-images-dir", "pre1", "--no-reboot", "-o", str(tmp / "kexec.log"), "-v4")
    assert r.returncode == 1, r.stdout
    log = (tmp / "kexec.log").read_text()
    assert "no store 'amber-test' is mounted" in log
    assert "pstree: froze" not in log
    workload.assert_intact()
    nothing_mounted("amber-test")


@pytest.mark.parametrize("rel, want", [
    ("pre1", "this kernel has no PKRAM"),
    ("../pre1", "below the store's top"),
    ("/tmp/pre1", "below the store's top"),
    ("a/./b", "below the store's top"),
])
def test_pre_dump_into_a_store_refused_here(workload, tmp, rel, want):
    r = amber("pre-dump", "-t", str(workload.pid), "--pkram", "amber-test", "-D", rel,
              "-o", str(tmp / "pre.log"), "-v4")
    assert r.returncode == 1, r.stdout
    assert want in (tmp / "pre.log").read_text()
    workload.assert_intact()
    nothing_mounted("amber-test")


# ---- the store check, on a plain tmpfs ----

@pytest.fixture
def dumped(workload, tmp):
    img = tmp / "img"
    img.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(img)], check=True)
    r = amber("dump", "-t", str(workload.pid), "-D", str(img), "--leave-running")
    assert r.returncode == 0, r.stdout
    workload.assert_intact()
    return img


def damaged(src, tmp, how):
    d = tmp / "bad"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    how(d)
    return d


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xff]))


def pages_file(d):
    return sorted(d.glob("pages-*.img"), key=lambda p: p.stat().st_size)[-1]


def first_present_offset(d):
    """Offset in the biggest pages file well inside the data (not a zero page)."""
    return pages_file(d).stat().st_size // 2 + 123


DAMAGES = {
    "page-byte": (lambda d: flip(pages_file(d), first_present_offset(d)),
                  "do not match their checksum"),
    "core-byte": (lambda d: flip(next(d.glob("core-*.img")), 40), "fails its checksum"),
    "pages-truncated": (lambda d: os.truncate(pages_file(d), 4096), "truncated or corrupt"),
    "pages-missing": (lambda d: pages_file(d).unlink(), "damaged"),
    "no-sums": (lambda d: (d / "amber.sums").unlink(), "no amber.sums"),
    "sums-line": (lambda d: flip(d / "amber.sums", 20), "amber.sums"),
    "pagemap-missing": (lambda d: next(d.glob("pagemap-*.img")).unlink(), ""),
}


def test_verify_good(dumped):
    r = amber("kexec", "--verify", "-D", str(dumped), "-v3")
    assert r.returncode == 0, r.stdout
    assert "every page summed" in r.stdout


@pytest.mark.parametrize("kind", sorted(DAMAGES))
def test_verify_damaged(dumped, tmp, kind):
    how, want = DAMAGES[kind]
    bad = damaged(dumped, tmp, how)
    r = amber("kexec", "--verify", "-D", str(bad))
    assert r.returncode == 1, r.stdout
    assert want in r.stdout


def test_verify_not_a_dump(tmp):
    (tmp / "empty").mkdir()
    r = amber("kexec", "--verify", "-D", str(tmp / "empty"))
    assert r.returncode == 1 and "no amber.sums" in r.stdout


def test_verify_chain(workload, tmp):
    """kexec --verify checks each parent image too, as restore --pkram does
    over a chain of pre-dumps; a pre-dump is sealed with amber.sums."""
    img = tmp / "img"
    img.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(img)], check=True)
    r = amber("pre-dump", "-t", str(workload.pid), "-D", str(img / "pre1"), "--track-mem")
    assert r.returncode == 0, r.stdout
    assert (img / "pre1" / "amber.sums").exists()
    r = amber("dump", "-t", str(workload.pid), "-D", str(img / "top"), "--leave-running",
              "--prev-images-dir", "../pre1")
    assert r.returncode == 0, r.stdout
    workload.assert_intact()
    r = amber("kexec", "--verify", "-D", str(img / "top"), "-v3")
    assert r.returncode == 0, r.stdout
    assert "chain verified: the top and 1 parent" in r.stdout
    flip(pages_file(img / "pre1"), first_present_offset(img / "pre1"))
    r = amber("kexec", "--verify", "-D", str(img / "top"))
    assert r.returncode == 1, r.stdout
    assert "do not match their checksum" in r.stdout and "(layer 1) refused" in r.stdout
