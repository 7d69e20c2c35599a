#!/bin/bash
# Check the layering of src/ from the objects' symbols: which object
# calls into which (an undefined symbol of one defined by another).
# Fails on a dependency cycle between subsystem folders, on a folder that
# reaches up past the allowed order, and on a cycle between two files.
#
#   bash scripts/layers.sh [BUILD_DIR]     (make layers)
set -euo pipefail
b=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$b/src"

# The allowed order, lowest first: a folder may use those before it.
order=(base image mem files net pageserver restore dump lazy kexec api rpc cli)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The objects of today's sources only (a removed file's .o may linger).
for c in $(cd "$top/src" && ls */*.c | sort); do
	o=${c%.c}.o
	[ -f "$o" ] || { echo "layers: $b/src/$o missing: build first" >&2; exit 1; }
	nm --defined-only -g "$o" | awk -v o="$o" 'NF == 3 { print $3, o }' >>"$tmp/def"
	nm -u "$o" | awk -v o="$o" '{ print $2, o }' >>"$tmp/use"
done
sort -u "$tmp/def" -o "$tmp/def"
sort -u "$tmp/use" -o "$tmp/use"
# object -> object edges
join "$tmp/use" "$tmp/def" | awk '$2 != $3 { print $2, $3 }' | sort -u >"$tmp/edges"

rc=0
rank() { local i; for i in "${!order[@]}"; do [ "${order[$i]}" = "$1" ] && echo "$i" && return; done; echo 99; }

# Folder edges: each must point down the order.
awk '{ split($1, a, "/"); split($2, b, "/"); if (a[1] != b[1]) print a[1], b[1] }' "$tmp/edges" |
	sort -u >"$tmp/dirs"
while read -r from to; do
	if [ "$(rank "$from")" -le "$(rank "$to")" ]; then
		echo "layers: $from -> $to reaches up:" >&2
		awk -v f="$from/" -v t="$to/" 'index($1, f) == 1 && index($2, t) == 1' "$tmp/edges" |
			while read -r x y; do
				syms=$(join <(nm -u "$x" | awk '{print $2}' | sort) \
					    <(nm --defined-only -g "$y" | awk 'NF == 3 {print $3}' | sort) | tr '\n' ' ')
				echo "  $x -> $y: $syms" >&2
			done
		rc=1
	fi
done <"$tmp/dirs"

# File cycles: tsort names every loop it meets.
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/tsort"; then
	echo "layers: dependency cycle between files:" >&2
	grep -v 'input contains a loop' "$tmp/tsort" | sed 's/^tsort: /  /' >&2
	rc=1
fi

if [ $rc = 0 ]; then
	echo "layers: $(wc -l <"$tmp/edges") file dependencies, no cycle; folders in order: ${order[*]}"
fi
exit $rc
