# Tests: automake's parallel harness. Exit 0 pass, 77 skip, 99 hard error.
TEST_EXTENSIONS = .py .sh
PY_LOG_COMPILER = $(PYTHON3)
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	CANOPY='$(abs_top_builddir)/canopy'; export CANOPY; \
	CANOPY_SRCDIR='$(abs_top_srcdir)'; export CANOPY_SRCDIR; \
	CANOPY_BUILDDIR='$(abs_top_builddir)'; export CANOPY_BUILDDIR; \
	CANOPY_MODEL='$(abs_top_srcdir)/data/canopy-demo.onnx'; export CANOPY_MODEL; \
	PYTHON3='$(PYTHON3)'; export PYTHON3; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE; \
	PYTHONPATH='$(abs_top_srcdir)/tests:$(abs_top_srcdir)/tests/lib:$(abs_top_srcdir)/scripts'; export PYTHONPATH;
EXTRA_DIST += tests/canopytest.py
# Helpers shared by the tests (labels come from scripts/canopy_labels.py).
EXTRA_DIST += tests/lib/tinymodels.py tests/lib/scenes.py

include tests/engine/local.mk
include tests/model/local.mk
include tests/scene/local.mk
include tests/eval/local.mk
include tests/cli/local.mk
include tests/plugin/local.mk
include tests/batch/local.mk
include tests/alerts/local.mk
include tests/install/local.mk
include tests/products/local.mk
include tests/pictures/local.mk
