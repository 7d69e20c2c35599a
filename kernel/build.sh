#!/bin/bash
# Build amber's test kernel: Debian linux-source-6.12 + kernel/patches/*.patch
# + kernel/config fragment on top of tinyconfig. Incremental: the source tree
# is re-extracted only when the tarball or the patch series changes.
#   kernel/build.sh [-j N]      prints the bzImage path on the last line.
# Env: AMBER_KBUILD (default /var/tmp/amber-kernel), LINUX_TARBALL,
#      AMBER_KPATCHES (patch directory, default kernel/patches).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${AMBER_KBUILD:-/var/tmp/amber-kernel}
TAR=${LINUX_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
PATCHES=${AMBER_KPATCHES:-$here/patches}
J=$(nproc)
if [ "${1:-}" = -j ]; then J=$2; fi
[ -f "$TAR" ] || { echo "missing $TAR: apt-get install linux-source-6.12" >&2; exit 1; }
mkdir -p "$B"
SRC=$B/src OUT=$B/out
# stamp = tarball identity + patch series content
stamp=$( { stat -c '%s %Y' "$TAR"; cat "$PATCHES"/*.patch 2>/dev/null || true; } | sha256sum | cut -c1-16)
if [ "$(cat "$B/src.stamp" 2>/dev/null)" != "$stamp" ]; then
	echo ">> extracting $TAR" >&2
	rm -rf "$SRC.new"; mkdir -p "$SRC.new"
	tar -xf "$TAR" -C "$SRC.new" --strip-components=1
	for p in "$PATCHES"/*.patch; do
		[ -e "$p" ] || continue
		echo ">> applying $(basename "$p")" >&2
		patch -d "$SRC.new" -p1 -s --no-backup-if-mismatch < "$p"
	done
	# keep mtimes of unchanged files so the build stays incremental
	if [ -d "$SRC" ]; then
		rsync -a --checksum --delete "$SRC.new"/ "$SRC"/ 2>/dev/null || { rm -rf "$SRC"; mv "$SRC.new" "$SRC"; }
		rm -rf "$SRC.new"
	else
		mv "$SRC.new" "$SRC"
	fi
	echo "$stamp" > "$B/src.stamp"
fi
mkdir -p "$OUT"
cfgstamp=$(cat "$here/config" | sha256sum | cut -c1-16)
if [ "$(cat "$B/config.stamp" 2>/dev/null)" != "$cfgstamp" ] || [ ! -f "$OUT/.config" ]; then
	echo ">> configuring" >&2
	make -s -C "$SRC" O="$OUT" tinyconfig >&2
	"$SRC"/scripts/kconfig/merge_config.sh -m -O "$OUT" "$OUT/.config" "$here/config" >/dev/null
	make -s -C "$SRC" O="$OUT" olddefconfig >&2
	# report fragment options that did not stick
	while IFS= read -r l; do
		case "$l" in CONFIG_*=n) o=${l%%=*}; grep -q "^$o=" "$OUT/.config" && echo "warning: $o still set" >&2;;
		CONFIG_*=*) grep -qx "$l" "$OUT/.config" || echo "warning: $l not set" >&2;; esac
	done < "$here/config"
	echo "$cfgstamp" > "$B/config.stamp"
fi
start=$(date +%s)
make -C "$SRC" O="$OUT" -j"$J" bzImage >&2
echo ">> build took $(( $(date +%s) - start ))s" >&2
echo "$OUT/arch/x86/boot/bzImage"
