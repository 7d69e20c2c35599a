"""Files planted in an image directory are refused, not followed.

Images may come from another machine or sit in a directory someone else
can write.  amber opens every image (reading and writing, amber.sums and
pages-*.img included) with O_NOFOLLOW and refuses what is not a regular
file of its own: a symlink, a hard link (st_nlink > 1), a fifo, or a file
owned by neither the caller nor root (src/image/image.c,
img_file_open()).

Restore: each planting must be refused before any task is created, with an
error naming the image, nothing left running (Source.problems() of
test_bad_images), with and without amber.sums, so the open itself refuses
and not only the checksum.  Dump: a symlink or hard link planted where an
image will be written must fail the dump without writing through it (the
target keeps its contents), and the tree runs on.  Images amber writes
are 0600, even over an existing 0644 file.
"""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from test_bad_images import SUMS, TIMEOUT, dumped_source
from test_zdtm import start
from zdtm_runner import MODES, Run, amber_path, reap_all, sanitizer_env, tail

# an image of each kind: the first read, a per-task one, raw pages, the sums
TARGETS = ["inventory.img", "pstree.img", "core-{pid}.img", "pages-1.img", SUMS]
FOREIGN_UID = 65534


@pytest.fixture(scope="module")
def source(request):
    yield from dumped_source(request, "anon_shared")


def targets(src):
    names = [t.format(pid=src.root) for t in TARGETS]
    missing = [n for n in names if n not in src.files]
    assert not missing, f"the dump has no {missing}: {src.files}"
    return names


def plant_symlink(d, name, outside):
    shutil.copy2(d / name, outside)
    (d / name).unlink()
    os.symlink(outside, d / name)


def plant_hardlink(d, name, outside):
    os.link(d / name, outside)


def plant_foreign(d, name, outside):
    os.chown(d / name, FOREIGN_UID, FOREIGN_UID)


def plant_fifo(d, name, outside):
    (d / name).unlink()
    os.mkfifo(d / name, 0o600)


PLANTS = {
    "symlink": (plant_symlink, "symlink"),
    "hardlink": (plant_hardlink, "hard links"),
    "foreign-owner": (plant_foreign, "owned by uid"),
    "fifo": (plant_fifo, "not a regular file"),
}


@pytest.mark.parametrize("kind", sorted(PLANTS))
def test_restore_refuses(source, kind):
    plant, want = PLANTS[kind]
    bad = []
    for name in targets(source):
        for sums in (True, False) if name != SUMS else (True,):
            d = source.copy(sums)
            outside = source.run.dir / f"outside-{source.nr_case}"
            plant(d, name, outside)
            bad += source.problems(f"{name} planted as {kind}"
                                   f"{'' if sums else ' (no sums)'}", d, True, [name])
            log = (d / "restore.log").read_text() if d.exists() else ""
            if d.exists() and want not in log:
                bad.append(f"{name} as {kind}: the log does not say '{want}'")
            if outside.exists():
                outside.unlink()
    assert not bad, "\n".join(bad)


def test_pristine_restores_after(source):
    """The refusals are due to the plantings: an untouched copy restores."""
    d = source.copy()
    assert not source.problems("pristine copy", d, False)


@pytest.fixture
def live_tree(request):
    run = Run("image-safety-dump", MODES["dump"], compare_state=False)
    start(run, Path(__file__).resolve().parent / "static" / "anon_shared")
    yield run
    run.kill_tree()
    reap_all()
    run.finish(not request.session.testsfailed)


def dump(run, imgdir):
    r = subprocess.run([str(amber_path()), "dump", "-t", str(run.pid), "-D", str(imgdir),
                        "-v4", "-o", str(run.dir / "dump.log"), "--leave-running"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=sanitizer_env(run.dir), timeout=TIMEOUT)
    return r.returncode, (run.dir / "dump.log").read_text(errors="replace")


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_dump_does_not_write_through(live_tree, kind):
    run = live_tree
    imgdir = run.dir / f"img-{kind}"
    imgdir.mkdir(mode=0o700)
    victim = run.dir / "victim"
    victim.write_bytes(b"must stay as it is\n")
    if kind == "symlink":
        os.symlink(victim, imgdir / "pstree.img")
    else:
        os.link(victim, imgdir / "pstree.img")
    rc, log = dump(run, imgdir)
    assert rc != 0, "dump succeeded through a planted " + kind
    assert "pstree.img" in log and "refused" in log, tail(run.dir / "dump.log", 8)
    assert victim.read_bytes() == b"must stay as it is\n", "the dump wrote through it"
    assert os.kill(run.pid, 0) is None  # the tree runs on


def test_dump_modes(live_tree):
    run = live_tree
    imgdir = run.dir / "img-modes"
    imgdir.mkdir(mode=0o700)
    (imgdir / "pstree.img").write_bytes(b"old")
    os.chmod(imgdir / "pstree.img", 0o644)
    old = os.umask(0)
    try:
        rc, log = dump(run, imgdir)
    finally:
        os.umask(old)
    assert rc == 0, log[-2000:]
    wrong = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in imgdir.iterdir()
             if f.is_file() and f.suffix in (".img", ".sums")
             and stat.S_IMODE(f.stat().st_mode) != 0o600}
    assert not wrong, f"images not 0600: {wrong}"
