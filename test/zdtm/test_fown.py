"""File owners from outside: bad images at restore.

Images of static/fown whose file owner (F_SETOWN) or signal (F_SETSIG)
is edited to a pid that is not a task of the tree, an unknown kind of
owner or a signal past 64 are refused before any task is created; the
untouched images restore and the test passes. (test_refused.py: an owner
outside the tree fails the dump, naming it.)
"""

import pytest

from test_bad_images import dumped_with_pb, edit_files_img, pristine_restores


@pytest.fixture(scope="module")
def owners(request):
    yield from dumped_with_pb(request, "fown")


def set_fown(**kw):
    def fn(fe):
        sub = fe.pipe if fe.HasField("pipe") else fe.efd if fe.HasField("efd") else None
        if sub is not None and sub.fown.pid:
            for k, v in kw.items():
                setattr(sub.fown, k, v)
    return fn


BAD = {
    "owner not in the tree": (set_fown(pid=999999), "not a task of the tree"),
    "owner kind 3": (set_fown(pid_type=3), "not an owner"),
    "signal 65": (set_fown(signum=65), "signal 65"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_owner_refused(owners, case):
    fn, want = BAD[case]
    d = owners.copy(sums=False)
    edit_files_img(d / "files.img", owners.pb, fn)
    bad = owners.problems(case, d, True, [want])
    assert not bad, "\n".join(bad)


def test_fown_pristine_restores(owners):
    pristine_restores(owners)
