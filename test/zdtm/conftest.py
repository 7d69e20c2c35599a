"""pytest glue for the zdtm suite: options, build, parametrization."""

import os
import subprocess

import pytest

import zdtm_runner


def pytest_addoption(parser):
    parser.addoption("--zdtm-modes", default=None,
                     help="comma-separated zdtm modes (overrides ZDTM_MODES; "
                          f"known: {', '.join(zdtm_runner.MODES)})")


# Huge pages for static/hugetlb (a dumped and a restored copy may overlap
# in the snapshot modes); the machine's setting comes back at the end.
HUGEPAGES = "/proc/sys/vm/nr_hugepages"
WANT_HUGEPAGES = 16
saved_hugepages = None


def reserve_hugepages():
    global saved_hugepages
    try:
        with open(HUGEPAGES) as f:
            have = int(f.read())
        if have < WANT_HUGEPAGES:
            with open(HUGEPAGES, "w") as f:
                f.write(str(WANT_HUGEPAGES))
            saved_hugepages = have
    except OSError as e:
        print(f"zdtm: can't reserve huge pages ({e}): static/hugetlb will skip")


def pytest_unconfigure(config):
    if saved_hugepages is not None:
        with open(HUGEPAGES, "w") as f:
            f.write(str(saved_hugepages))


def pytest_configure(config):
    reserve_hugepages()
    if not zdtm_runner.set_subreaper():
        print("zdtm: warning: cannot become a child subreaper; exit status "
              "of restored trees will not be checked")
    if os.environ.get("ZDTM_NO_BUILD") != "1":
        r = subprocess.run(["make", "-s", "-C", str(zdtm_runner.ZDTM_DIR)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode:
            pytest.exit(f"building the zdtm tests failed:\n{r.stdout}", 2)


def pytest_generate_tests(metafunc):
    if "zdtm_test" in metafunc.fixturenames:
        tests = zdtm_runner.discover_tests()
        if not tests:
            raise pytest.UsageError("no zdtm test binaries: make -C test/zdtm")
        metafunc.parametrize("zdtm_test", tests, ids=[t.name for t in tests])
    if "zdtm_mode" in metafunc.fixturenames:
        modes = zdtm_runner.selected_modes(
            metafunc.config.getoption("--zdtm-modes"))
        metafunc.parametrize("zdtm_mode", modes, ids=[m.name for m in modes])
