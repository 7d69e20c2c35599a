#!/bin/sh
# In the guest (a kernel with CONFIG_MEM_SOFT_DIRTY): the zdtm suite in
# the incremental modes with the soft-dirty tracker (the host runs them
# all with uffd-wp). The whole suite in pre-dump and snaps, where the
# tracker decides what each image holds; in the two modes that only
# carry those images differently (pre-dump's chain restored lazily, and
# streamed through a page server) the inc_* tests, which change memory,
# maps, threads and children between iterations, and test_incremental.py:
# the whole suite there took 10 minutes of the guest's emulated CPU for
# what the host's uffd-wp runs already cover. Run from the repository root.
set -e
./build/amber check --feature soft-dirty
export AMBER="$PWD/build/amber" ZDTM_TRACKER=soft-dirty
ZDTM_MODES=pre-dump,snaps /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider \
	test/zdtm/test_zdtm.py test/zdtm/test_incremental.py
ZDTM_MODES=pre-dump-lazy,page-server-pre-dump exec /usr/bin/python3 -m pytest -q -rs \
	-p no:cacheprovider -k "inc_ or test_incremental" test/zdtm/test_zdtm.py \
	test/zdtm/test_incremental.py
