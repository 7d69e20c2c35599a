#!/bin/sh
# In the guest (a kernel with CONFIG_MEM_SOFT_DIRTY): the whole zdtm suite
# in the incremental modes (pre-dump, snaps, pre-dump's chain restored
# lazily and streamed through a page server) with the soft-dirty tracker
# (the host runs them with uffd-wp).
# The inc_* tests change memory, maps, threads and children between
# iterations. Run from the repository root.
set -e
./build/amber check --feature soft-dirty
export AMBER="$PWD/build/amber" ZDTM_MODES=pre-dump,snaps,pre-dump-lazy,page-server-pre-dump ZDTM_TRACKER=soft-dirty
exec /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider test/zdtm/test_zdtm.py \
	test/zdtm/test_incremental.py
