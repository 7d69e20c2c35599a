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
/usr/bin/python3 "$here/gen_seeds.py" "$here/corpus" "${dumps[@]}"
du -sh "$here"/corpus/*
