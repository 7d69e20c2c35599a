#!/bin/bash
# Install every Debian package that amber's build, tests, demo and
# benchmarks need. Idempotent: does nothing when all are present.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
	build-essential pkg-config
	criu
	protobuf-c-compiler libprotobuf-c-dev
	protobuf-compiler python3-protobuf
	libgnutls28-dev gnutls-bin
	python3 python3-pytest
	xz-utils iproute2 util-linux procps
)

# Packages that the VM harness and the kernel build ask for.
for f in "$here/test/vm/packages.txt" "$here/kernel/packages.txt"; do
	[ -f "$f" ] || continue
	while read -r p _; do
		case "$p" in ''|'#'*) continue ;; esac
		pkgs+=("$p")
	done <"$f"
done

missing=()
for p in "${pkgs[@]}"; do
	case "$p" in '#'*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
