#!/bin/bash
# Install the Debian packages amber needs. Idempotent: does nothing when
# all are present. The lists, one package per line:
#   scripts/packages-build.txt   building amber (make)
#   scripts/packages-test.txt    tests, demo, benchmarks
#   test/vm/packages.txt         the QEMU guest suites
#   kernel/packages.txt          building the PKRAM kernel
#
#   deps.sh [build|test|all]     (default all; make deps)
#   deps.sh criu                 build CRIU 4.2 (test/zdtm/test_interop.py) with
#                                ../shared/anchors/build-criu.sh beside the checkout,
#                                once, into /var/tmp/anchors; print its path
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}

if [ "$what" = criu ]; then
	builder=$here/../shared/anchors/build-criu.sh
	if [ ! -f "$builder" ]; then
		echo "deps.sh: no $builder: CRIU 4.2 not built, the interop tests will skip" >&2
		exit 0
	fi
	bash "$builder" | tail -n 1
	exit 0
fi

case "$what" in
build) lists=(scripts/packages-build.txt) ;;
test) lists=(scripts/packages-build.txt scripts/packages-test.txt) ;;
all) lists=(scripts/packages-build.txt scripts/packages-test.txt test/vm/packages.txt
	    kernel/packages.txt) ;;
*) echo "usage: deps.sh [build|test|all]" >&2; exit 2 ;;
esac

pkgs=()
for f in "${lists[@]}"; do
	while read -r p _; do
		case "$p" in ''|'#'*) continue ;; esac
		pkgs+=("$p")
	done <"$here/$f"
done

missing=()
for p in "${pkgs[@]}"; do
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
