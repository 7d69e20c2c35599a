#!/bin/bash
# Download and extract Debian's 6.12 amd64-unsigned kernel image (idempotent).
# Prints two lines: the bzImage path and the modules directory (lib/modules/VER).
# Env: AMBER_VM_CACHE (default /var/cache/amber-vm), DEBIAN_KPKG (package name pattern).
set -euo pipefail
C=${AMBER_VM_CACHE:-/var/cache/amber-vm}
PKG=${DEBIAN_KPKG:-}
mkdir -p "$C"
if [ -z "$PKG" ]; then
	PKG=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9.]+\+deb12-amd64-unsigned$' 2>/dev/null | awk '{print $1}' | sort -V | tail -1)
	if [ -z "$PKG" ]; then
		# maybe only a cached extraction is available
		d=$(ls -d "$C"/linux-image-6.12.*-amd64-unsigned 2>/dev/null | sort -V | tail -1 || true)
		[ -n "$d" ] || { echo "no linux-image-6.12.*-amd64-unsigned in apt-cache (run apt-get update)" >&2; exit 1; }
		PKG=$(basename "$d")
	fi
fi
D=$C/$PKG
if [ ! -f "$D/.done" ]; then
	tmp=$(mktemp -d "$C/dl.XXXXXX")
	deb=$(ls /tmp/${PKG}_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		(cd "$tmp" && apt-get download "$PKG" >&2)
		deb=$(ls "$tmp"/${PKG}_*.deb | head -1)
	fi
	rm -rf "$D"; mkdir -p "$D"
	dpkg -x "$deb" "$D"
	rm -rf "$tmp"
	touch "$D/.done"
fi
ls "$D"/boot/vmlinuz-* | head -1
ls -d "$D"/lib/modules/* | head -1
