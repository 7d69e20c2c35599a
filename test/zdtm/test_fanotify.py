"""fanotify from outside: bad images at restore.

Images of static/fanotify with a mark edited to name a missing file, a
path that is another inode now, a mark of the wrong kind or a relative
mount point are refused before any task is created; the untouched images
restore and the test passes. (test_refused.py: a mark on a whole file
system fails the dump, naming it.)
"""

import pytest

from test_bad_images import dumped_with_pb, edit_files_img, pristine_restores


@pytest.fixture(scope="module")
def groups(request):
    yield from dumped_with_pb(request, "fanotify")


def edit_mark(fn):
    def edit(fe):
        if fe.HasField("ffy"):
            for m in fe.ffy.mark:
                fn(m)
    return edit


def inode_path(path):
    def fn(m):
        if m.HasField("ie"):
            m.ie.f_handle.path = path
    return fn


def mount_path(path):
    def fn(m):
        if m.HasField("me"):
            m.me.path = path
    return fn


def inode_as_mount(m):
    if m.HasField("ie"):
        m.type = 2  # MOUNT, with no mount in it


BAD = {
    "marked file missing": (inode_path("/nonexistent/amber"), "gone or another inode"),
    "marked path another inode": (inode_path("/"), "gone or another inode"),
    "inode mark typed as a mount": (inode_as_mount, "malformed"),
    "relative mount point": (mount_path("tmp"), "malformed"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_mark_refused(groups, case):
    fn, want = BAD[case]
    d = groups.copy(sums=False)
    edit_files_img(d / "files.img", groups.pb, edit_mark(fn))
    bad = groups.problems(case, d, True, [want])
    assert not bad, "\n".join(bad)


def test_fanotify_pristine_restores(groups):
    pristine_restores(groups)
