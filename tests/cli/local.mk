# tests/cli (see tests/local.mk).

# canopy classify --progress (what the QGIS plugin reads).
TESTS += tests/cli/test_classify_progress.py
EXTRA_DIST += tests/cli/test_classify_progress.py
