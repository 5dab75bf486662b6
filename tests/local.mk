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
	CNP_DEP_CFLAGS='$(GDAL_CFLAGS) $(PROJ_CFLAGS) $(TIFF_CFLAGS) $(JSONC_CFLAGS) $(PROTOBUFC_CFLAGS) $(CRYPTO_CFLAGS) $(CAIRO_CFLAGS) $(OPENBLAS_CFLAGS)'; export CNP_DEP_CFLAGS; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE; \
	PYTHONPATH='$(abs_top_srcdir)/tests:$(abs_top_srcdir)/tests/lib:$(abs_top_srcdir)/scripts'; export PYTHONPATH; \
	$(CNP_SANITIZER_ENV)
EXTRA_DIST += tests/canopytest.py
# Helpers shared by the tests (labels come from scripts/canopy_labels.py);
# tests/lib/tiler_dump.c, shared by the tiler drivers, is in their SOURCES.
EXTRA_DIST += tests/lib/tinymodels.py tests/lib/scenes.py tests/lib/onnxbytes.py

# ./configure --enable-sanitizers: every program the tests run (C tests, and
# canopy started by the python tests) reports to sanitizer-reports/ instead of
# stderr (so the tests' checks of messages are unchanged) and exits 86 on a
# report; scripts/check fails when that folder is not empty. Leak checking is
# on; tests/sanitizers/lsan.supp lists what is suppressed and why.
if CNP_SANITIZERS
CNP_SANITIZER_ENV = \
	mkdir -p '$(abs_top_builddir)/sanitizer-reports'; \
	CANOPY_SANITIZED=1; export CANOPY_SANITIZED; \
	ASAN_OPTIONS='detect_leaks=1:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$(abs_top_builddir)/sanitizer-reports/asan'; export ASAN_OPTIONS; \
	UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1:exitcode=86:log_path=$(abs_top_builddir)/sanitizer-reports/ubsan'; export UBSAN_OPTIONS; \
	LSAN_OPTIONS='exitcode=86:print_suppressions=0:suppressions=$(abs_top_srcdir)/tests/sanitizers/lsan.supp'; export LSAN_OPTIONS;
endif
EXTRA_DIST += tests/sanitizers/lsan.supp

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
include tests/fuzz/local.mk
include tests/security/local.mk
