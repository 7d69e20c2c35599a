"""pidfds from outside: refusals at dump and bad images at restore.

 - (test_refused.py) A pidfd of a process outside the dumped tree, or of
   a thread other than a leader (PIDFD_THREAD), fails the dump naming it.
 - Images of static/pidfd with a pidfd edited to name a pid that is not
   a task of the tree, or flags no pidfd has, are refused before any task
   is created; the untouched images restore and the test passes.
"""

import pytest

from test_bad_images import dumped_with_pb, edit_files_img, pristine_restores


@pytest.fixture(scope="module")
def pidfds(request):
    yield from dumped_with_pb(request, "pidfd")


def set_pidfd(**kw):
    def fn(fe):
        if fe.HasField("pidfd") and fe.pidfd.nspid != -1:
            for k, v in kw.items():
                setattr(fe.pidfd, k, v)
    return fn


BAD = {
    "pid not in the tree": (set_pidfd(nspid=999999), "not a task of the tree"),
    "pid 0": (set_pidfd(nspid=0), "not a task of the tree"),
    "flags O_APPEND": (set_pidfd(flags=0o2000), "flags"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_pidfd_refused(pidfds, case):
    fn, want = BAD[case]
    d = pidfds.copy(sums=False)
    edit_files_img(d / "files.img", pidfds.pb, fn)
    bad = pidfds.problems(case, d, True, [want])
    assert not bad, "\n".join(bad)


def test_pidfd_pristine_restores(pidfds):
    pristine_restores(pidfds)
