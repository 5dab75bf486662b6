# tests/cli (see tests/local.mk).

# canopy classify --progress (what the QGIS plugin reads).
TESTS += tests/cli/test_classify_progress.py
EXTRA_DIST += tests/cli/test_classify_progress.py

# canopy classify --progress=jsonl and --list: the v1 event stream contract.
TESTS += tests/cli/test_classify_jsonl.py
EXTRA_DIST += tests/cli/test_classify_jsonl.py

# No output written through a link planted in the output folder (old
# temporary names, final names), for classify and evaluate --write-model.
TESTS += tests/cli/test_output_links.py
EXTRA_DIST += tests/cli/test_output_links.py
