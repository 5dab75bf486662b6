# tests/batch (see tests/local.mk): scripts/canopy-nightly (cron),
# canopy-parallel (GNU Parallel over ssh) and canopy-slurm (a job array), with
# the sshd and the one-node Slurm cluster the tests bring up themselves on
# 127.0.0.1 (tests/batch/services.py).
TESTS += tests/batch/test_nightly.py tests/batch/test_parallel.py tests/batch/test_slurm.py \
	tests/batch/test_shellcheck.py
EXTRA_DIST += tests/batch/test_nightly.py tests/batch/test_parallel.py \
	tests/batch/test_slurm.py tests/batch/test_shellcheck.py tests/batch/batchlib.py \
	tests/batch/services.py
