"""cgroup v2 properties in cgroup.img and --manage-cgroups at restore
(docs/namespaces.md). Mode-independent: runs once, not per zdtm mode.

A sleep runs in SCRATCH/app, a cgroup with limits of its own and an empty
child app/idle; SCRATCH is a cgroup the test makes under the v2 mount and
removes. The limits are cgroup.max.descendants and cgroup.max.depth (every
v2 cgroup has them) and, where the memory, pids and cpu controllers are on
the v2 hierarchy, memory.max, pids.max and cpu.max: the "controllers" cases
skip, saying so, on a host whose controllers are bound to cgroup v1 (the
guest suite cgroup-props runs them on a pure v2 hierarchy).

  full:   the cgroups removed after the dump are made again, SCRATCH too,
          with the saved values; the task is in app
  soft:   an existing app keeps the values it has now
  strict: an existing app refuses the restore before any task or cgroup
          is made
  props:  a missing cgroup refuses the restore; existing ones get the
          saved values
  crit:   Debian's crit reads the image, the values in CRIU's layout
  damaged: a property name or cgroup name that walks out of the cgroup is
          refused at load, a value the kernel refuses fails the restore
          naming cgroup, property and value, and the cgroups made go
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_cgroups import amber, kill, restore, start_in, unified_mount, v2_path
from zdtm_runner import read_text, wait_until

CORE = {"cgroup.max.descendants": "7", "cgroup.max.depth": "3"}
CONTROLLERS = {"memory.max": "67108864", "pids.max": "77", "cpu.max": "50000 100000"}
CHANGED = {"cgroup.max.descendants": "5", "memory.max": "33554432", "pids.max": "33"}
IDLE = {"cgroup.max.depth": "1"}
CRIT = "/usr/bin/crit"


def controllers_here(mnt):
    have = (mnt / "cgroup.controllers").read_text().split()
    return [c for c in ("memory", "pids", "cpu") if c not in have]


def remove_tree(d):
    """@d and every cgroup below it, deepest first; a task still exiting
    keeps its cgroup busy for a moment."""
    if not d.exists():
        return
    for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        wait_until(lambda: try_rmdir(sub), timeout=10)
    wait_until(lambda: try_rmdir(d), timeout=10)


def try_rmdir(d):
    try:
        d.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


class Scratch:
    def __init__(self, mnt, kind, tmp_path):
        self.mnt = mnt
        self.name = f"amber-cgprops-{os.getpid()}-{kind}"
        self.top = mnt / self.name
        self.app = self.top / "app"
        self.idle = self.app / "idle"
        self.tmp = tmp_path
        self.limits = dict(CORE)
        if kind == "controllers":
            self.limits.update(CONTROLLERS)
        self.pids = []

    def make(self):
        self.app.mkdir(parents=True)
        if len(self.limits) > len(CORE):
            # the controllers for app: enabled in the root and in SCRATCH
            for d in (self.mnt, self.top):
                on = (d / "cgroup.subtree_control").read_text().split()
                for c in ("memory", "pids", "cpu"):
                    if c not in on:
                        (d / "cgroup.subtree_control").write_text(f"+{c}")
        self.idle.mkdir()
        self.set(self.app, self.limits)
        self.set(self.idle, IDLE)

    @staticmethod
    def set(d, values):
        for k, v in values.items():
            (d / k).write_text(v)

    def values(self, d, keys):
        return {k: (d / k).read_text().strip() for k in keys}

    def dump(self):
        pid = start_in(self.app)
        img = self.tmp / "img"
        img.mkdir()
        log = self.tmp / "dump.log"
        r = amber("dump", "-t", pid, "-D", img, log=log)
        os.waitpid(pid, 0)
        assert r.returncode == 0, read_text(log)
        self.pid = pid
        return img

    def restore(self, img, name, *extra):
        pid, path = restore(img, self.tmp, name, *extra)
        self.pids.append(pid)
        return pid, path

    def refused(self, img, name, *extra):
        log = self.tmp / f"{name}.log"
        r = amber("restore", "-D", img, "-d", *extra, log=log)
        text = read_text(log)
        assert r.returncode != 0, text
        assert "restored 1 task" not in text, text
        assert not Path(f"/proc/{self.pid}").exists() or \
            read_text(f"/proc/{self.pid}/comm").strip() != "sleep"
        return text

    def cleanup(self):
        for pid in self.pids:
            kill(pid)
        remove_tree(self.top)


@pytest.fixture(params=["core", "controllers"])
def scratch(request, tmp_path):
    mnt = unified_mount()
    if mnt is None:
        pytest.skip("no cgroup v2 hierarchy here")
    if request.param == "controllers":
        missing = controllers_here(mnt)
        if missing:
            pytest.skip(f"{', '.join(missing)} not on the cgroup v2 hierarchy at {mnt} "
                        "(bound to cgroup v1 here): the guest suite cgroup-props runs this")
    s = Scratch(mnt, request.param, tmp_path)
    try:
        s.make()
        yield s
    finally:
        s.cleanup()


def test_full_makes_cgroups_with_saved_values(scratch):
    s = scratch
    img = s.dump()
    remove_tree(s.top)
    assert not s.top.exists()
    pid, path = s.restore(img, "full", "--manage-cgroups=full")
    assert path == f"/{s.name}/app", path
    assert s.values(s.app, s.limits) == s.limits
    assert s.values(s.idle, IDLE) == IDLE


def test_soft_leaves_existing_values(scratch):
    s = scratch
    img = s.dump()
    changed = {k: v for k, v in CHANGED.items() if k in s.limits}
    s.set(s.app, changed)
    remove_tree(s.idle)
    pid, path = s.restore(img, "soft")
    assert path == f"/{s.name}/app", path
    assert s.values(s.app, changed) == changed
    # idle was made by this restore: it gets its values
    assert s.values(s.idle, IDLE) == IDLE


def test_strict_refuses_existing_before_any_task(scratch):
    s = scratch
    img = s.dump()
    remove_tree(s.idle)
    text = s.refused(img, "strict", "--manage-cgroups=strict")
    assert f"the cgroup {s.app} exists" in text, text
    assert not s.idle.exists(), "strict made a cgroup before refusing"


def test_props_needs_cgroups_and_sets_values(scratch):
    s = scratch
    img = s.dump()
    changed = {k: v for k, v in CHANGED.items() if k in s.limits}
    s.set(s.app, changed)
    remove_tree(s.idle)
    text = s.refused(img, "props-missing", "--manage-cgroups=props")
    assert f"the cgroup {s.idle} is missing" in text, text
    assert not s.idle.exists()
    s.idle.mkdir()
    pid, path = s.restore(img, "props", "--manage-cgroups=props")
    assert path == f"/{s.name}/app", path
    assert s.values(s.app, s.limits) == s.limits
    assert s.values(s.idle, IDLE) == IDLE


def crit(*args, **kw):
    return subprocess.run([CRIT, *map(str, args)], capture_output=True, text=True,
                          timeout=60, **kw)


def needs_crit():
    if not os.access(CRIT, os.X_OK):
        pytest.skip(f"no {CRIT} (Debian's criu package) to read the image with")


def v2_controller(doc):
    ctls = [c for c in doc["entries"][0].get("controllers", []) if c.get("cnames") == [""]]
    assert len(ctls) == 1, doc
    return ctls[0]


def test_crit_reads_properties(scratch):
    needs_crit()
    s = scratch
    img = s.dump()
    r = crit("decode", "-i", img / "cgroup.img", "--pretty")
    assert r.returncode == 0, r.stderr
    ctl = v2_controller(json.loads(r.stdout))
    head = [d for d in ctl["dirs"] if d["dir_name"] == f"{s.name}/app"]
    assert len(head) == 1, ctl["dirs"]
    props = {p["name"]: p["value"] for p in head[0]["properties"]}
    assert {k: props.get(k) for k in s.limits} == s.limits
    assert "cgroup.subtree_control" in props
    idle = [d for d in head[0].get("children", []) if d["dir_name"] == "idle"]
    assert len(idle) == 1, head[0]
    assert {p["name"]: p["value"] for p in idle[0]["properties"]}["cgroup.max.depth"] == "1"


def damage(img, tmp, edit):
    """cgroup.img through crit's JSON, @edit applied to the app cgroup's entry;
    amber.sums removed, as from a set CRIU made (it would refuse the edit)."""
    r = crit("decode", "-i", img / "cgroup.img")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ctl = v2_controller(doc)
    edit(ctl["dirs"][0])
    bad = tmp / "bad"
    shutil.copytree(img, bad)
    (bad / "amber.sums").unlink()
    (tmp / "cgroup.json").write_text(json.dumps(doc))
    r = crit("encode", "-i", tmp / "cgroup.json", "-o", bad / "cgroup.img")
    assert r.returncode == 0, r.stderr
    return bad


def set_prop(name, value):
    def edit(d):
        d["properties"][0]["name"] = name
        d["properties"][0]["value"] = value
    return edit


def test_damaged_properties_refused(scratch):
    needs_crit()
    s = scratch
    img = s.dump()

    bad = damage(img, s.tmp / "1", set_prop("../../../etc/x", "1"))
    text = s.refused(bad, "bad-name", "--manage-cgroups=full")
    assert 'property "../../../etc/x"' in text, text

    bad = damage(img, s.tmp / "2", lambda d: d.update(dir_name="../../etc"))
    text = s.refused(bad, "bad-dir", "--manage-cgroups=full")
    assert "is not one below its parent" in text, text

    def bad_child(d):
        d["children"][0]["dir_name"] = ".."
    bad = damage(img, s.tmp / "3", bad_child)
    text = s.refused(bad, "bad-child", "--manage-cgroups=full")
    assert 'the cgroup name ".."' in text, text

    # a value the kernel refuses: named, and the cgroups made are removed
    remove_tree(s.top)
    bad = damage(img, s.tmp / "4", set_prop("cgroup.max.depth", "lots"))
    text = s.refused(bad, "bad-value", "--manage-cgroups=full")
    assert f'can\'t set cgroup.max.depth of the cgroup {s.app} to "lots"' in text, text
    assert not s.app.exists(), "the cgroups made by a failed restore stay"


@pytest.mark.parametrize("dumper", ["amber", "criu"])
def test_criu_interop(scratch, dumper):
    """CRIU 4.2 restores amber's image with --manage-cgroups=full, and amber
    CRIU's: app and idle, removed after the dump, are made again with the
    saved values, and the task is in app. SCRATCH stays: CRIU enables no
    controller in a parent its image does not have. CRIU 4.2 saves v2's
    cgroup.* files only, not the controllers' (seen in the guest): from
    its image the cgroup.max.* values come back."""
    from test_interop import need_criu
    criu = need_criu()
    s = scratch
    if dumper == "amber":
        img = s.dump()
    else:
        pid = start_in(s.app)
        img = s.tmp / "img"
        img.mkdir()
        r = subprocess.run([str(criu), "dump", "-t", str(pid), "-D", str(img), "-v4",
                            "-o", str(s.tmp / "criu-dump.log")], cwd=img,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        os.waitpid(pid, 0)
        assert r.returncode == 0, read_text(s.tmp / "criu-dump.log")
        s.pid = pid
    remove_tree(s.app)
    if dumper == "amber":
        pidfile = s.tmp / "criu.pid"
        r = subprocess.run([str(criu), "restore", "-D", str(img), "-d", "--manage-cgroups=full",
                            "--pidfile", str(pidfile), "-v4", "-o", str(s.tmp / "criu.log")],
                           cwd=img, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        assert r.returncode == 0, read_text(s.tmp / "criu.log")
        pid = int(pidfile.read_text())
        s.pids.append(pid)
        path = v2_path(pid)
    else:
        pid, path = s.restore(img, "full", "--manage-cgroups=full")
    assert path == f"/{s.name}/app", path
    saved = s.limits if dumper == "amber" else CORE
    assert s.values(s.app, saved) == saved
    assert s.values(s.idle, IDLE) == IDLE
