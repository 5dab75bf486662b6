# tests/eval (see tests/local.mk): `canopy evaluate` and classifier/eval.
# eval-probe drives the library from the Python tests.
check_PROGRAMS += tests/eval/eval-probe
tests_eval_eval_probe_SOURCES = tests/eval/eval-probe.c
tests_eval_eval_probe_LDADD = $(CNP_LIBS)
TESTS += tests/eval/test_labels.py tests/eval/test_metrics.py tests/eval/test_write_model.py \
	tests/eval/test_evaluate.py tests/eval/test_evaluate_demo.py
EXTRA_DIST += tests/eval/test_labels.py tests/eval/test_metrics.py \
	tests/eval/test_write_model.py tests/eval/test_evaluate.py tests/eval/test_evaluate_demo.py \
	tests/eval/evaltest.py tests/eval/data/README.md tests/eval/data/train_v2_excerpt.csv
