"""pytest glue for the zdtm suite: options, build, parametrization."""

import os
import subprocess

import pytest

import zdtm_runner


def pytest_addoption(parser):
    parser.addoption("--zdtm-modes", default=None,
                     help="comma-separated zdtm modes (overrides ZDTM_MODES; "
                          f"known: {', '.join(zdtm_runner.MODES)})")


def pytest_configure(config):
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
