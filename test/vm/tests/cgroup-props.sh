#!/bin/sh
# In the guest (Debian's 6.12, nothing bound to cgroup v1): cgroup v2 with
# every controller on it, where test_cgroup_props.py's "controllers" cases
# (memory.max, pids.max, cpu.max through dump and --manage-cgroups) run;
# the host binds those controllers to v1. Run from the repository root.
set -e
mkdir -p /sys/fs/cgroup
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
echo "cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
export AMBER="$PWD/build/amber" ZDTM_NO_BUILD=1
exec /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider test/zdtm/test_cgroup_props.py \
	test/zdtm/test_cgroups.py
