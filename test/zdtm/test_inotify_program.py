"""inotifywait -m from Debian's inotify-tools, checked from outside."""

import os
import subprocess

from test_file_locks import wait_for
from zdtm_runner import amber_run, kill_pids, read_text, reap_all


INOTIFYWAIT = "/usr/bin/inotifywait"


def test_inotifywait_monitor(tmp_path):
    """inotifywait -m watching a directory reports a file created before
    the dump and, after the restore, one created then (its inotify watch
    restored by path)."""
    assert os.access(INOTIFYWAIT, os.X_OK), \
        "inotifywait is missing: scripts/deps.sh installs inotify-tools"
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()
    with open(out, "wb") as f:
        p = subprocess.Popen([INOTIFYWAIT, "-m", "-e", "create", "--format", "%e %f",
                              str(watched)], stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
    restored = False
    try:
        wait_for(out, "Watches established")
        (watched / "before").touch()
        wait_for(out, "CREATE before")
        imgdir = tmp_path / "img"
        imgdir.mkdir(mode=0o700)
        r = amber_run(["dump", "-t", str(p.pid), "-D", str(imgdir)], imgdir / "dump.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "dump.log")
        p.wait(10)
        r = amber_run(["restore", "-D", str(imgdir), "-d"], imgdir / "restore.log", imgdir)
        assert r.returncode == 0, read_text(imgdir / "restore.log")
        restored = True
        (watched / "after").touch()
        wait_for(out, "CREATE after")
        assert read_text(out).count("CREATE before") == 1, read_text(out)
    finally:
        if restored or p.poll() is None:
            kill_pids(p.pid)
        p.poll()
        reap_all()
