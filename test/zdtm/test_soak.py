"""A short soak (bench/soak/soak.py): 20 dump/restore cycles of mem_loop,
every 5th through the lazy daemon (local, then from a page server).  No
amber process may outlive its cycle, the workload's fd count must not
change and its memory must verify (PASS).  `make soak` runs 1000."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "bench" / "soak"))

import soak  # noqa: E402


def test_soak_smoke():
    ok, lines = soak.soak(20, 5, "mem_loop")
    print("\n".join(lines))
    assert ok, "\n".join(lines)
