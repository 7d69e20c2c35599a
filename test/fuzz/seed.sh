#!/bin/bash
# Rebuilds the seed corpora in test/fuzz/corpus/ from real dumps: a few
# zdtm tests are dumped (and restored) by build/amber through the zdtm
# runner, their image directories kept, packed (pack.py) and turned into
# per-harness seeds (gen_seeds.py, which also writes the protocol seeds).
# Needs root, `make` and `make -C test/zdtm` done.
#
#   test/fuzz/seed.sh [TEST...]     default: a handful of small tests
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(sighandler threads_2 anon_shared memfd)
tmp=$(mktemp -d /tmp/amber-seed.XXXXXX)
mkdir -p "$tmp/t"
trap 'rm -rf "$tmp"' EXIT

filter=$(printf ' or %s' "${tests[@]}")
filter=${filter# or }
ZDTM_KEEP=1 ZDTM_TMPDIR="$tmp" ZDTM_NO_BUILD=1 ZDTM_MODES=dump AMBER="$top/build/amber" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "$top/test/zdtm/test_zdtm.py" \
	-k "$filter" >"$tmp/pytest.log" || { tail -20 "$tmp/pytest.log"; exit 1; }

dumps=()
for t in "${tests[@]}"; do
	for d in "$tmp"/zdtm-dump-"$t"-*/img; do
		[ -d "$d" ] && dumps+=("$d")
	done
done
# The template fuzz_image edits one file of: the memfd test's dump (its
# set has shared memory and memfd images besides the usual ones).
for d in "${dumps[@]}"; do
	case "$d" in */zdtm-dump-memfd-*) /usr/bin/python3 "$here/pack.py" "$d" "$here/template.pack" ;; esac
done

# fuzz_files' templates: one dump per newer image type (ttys, TCP, netlink,
# locks, seccomp, namespaces, queues, epoll, inotify, ...), and a tree in
# its own pid, UTS, IPC and network namespaces (test_ns.py).
ftests=(pty_pair socket_tcp_half netlink file_locks01 seccomp unix_scm_rights epoll inotify
	fanotify timerfd signalfd pidfd posix_timers sockopts inet_udp fown)
filter=$(printf ' or %s' "${ftests[@]}")
ZDTM_KEEP=1 ZDTM_TMPDIR="$tmp/t" ZDTM_NO_BUILD=1 ZDTM_MODES=dump AMBER="$top/build/amber" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "$top/test/zdtm/test_zdtm.py" \
	-k "${filter# or }" >"$tmp/pytest-t.log" || { tail -20 "$tmp/pytest-t.log"; exit 1; }
ZDTM_KEEP=1 ZDTM_TMPDIR="$tmp/t" ZDTM_NO_BUILD=1 ZDTM_MODES=dump AMBER="$top/build/amber" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "$top/test/zdtm/test_ns.py" \
	-k "test_pid_namespace and not twice" >>"$tmp/pytest-t.log" || { tail -20 "$tmp/pytest-t.log"; exit 1; }
rm -f "$here"/templates/*.pack
mkdir -p "$here/templates"
for t in "${ftests[@]}" pid_ns; do
	for d in "$tmp"/t/zdtm-dump-"$t"-*/img; do
		[ -d "$d" ] && /usr/bin/python3 "$here/pack.py" "$d" "$here/templates/$t.pack"
	done
done
/usr/bin/python3 "$here/gen_seeds.py" "$here/corpus" "${dumps[@]}"
du -sh "$here"/corpus/*
