#!/bin/sh
# In the guest (a kernel with CONFIG_MEM_SOFT_DIRTY): the incremental zdtm
# modes with the soft-dirty tracker. The inc_* tests change their memory,
# maps, threads and children between iterations; a few plain tests check
# the chain on quieter trees. Run from the repository root.
set -e
./build/amber check --feature soft-dirty
export AMBER="$PWD/build/amber" ZDTM_MODES=pre-dump,snaps ZDTM_TRACKER=soft-dirty
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider test/zdtm/test_zdtm.py \
	-k 'inc_ or mem_loop or anon_64m or fork_tree or threads_16 or heap or mprotect'
