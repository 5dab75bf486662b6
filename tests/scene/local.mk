# tests/scene (see tests/local.mk).

# canopy classify: the tiler alone (driver + checks), then the whole command.
check_PROGRAMS += tests/scene/test_classify_tiler
tests_scene_test_classify_tiler_SOURCES = tests/scene/test_classify_tiler.c tests/lib/tiler_dump.c \
	tests/lib/tiler_dump.h
tests_scene_test_classify_tiler_LDADD = $(CNP_LIBS)
TESTS += tests/scene/test_classify_tiler.py tests/scene/test_classify_utm.py \
	tests/scene/test_classify_crs.py tests/scene/test_classify_masks.py \
	tests/scene/test_classify_batch.py tests/scene/test_classify_big.py \
	tests/scene/test_classify_formats.py tests/scene/test_classify_precision.py
EXTRA_DIST += tests/scene/test_classify_tiler.py tests/scene/test_classify_utm.py \
	tests/scene/test_classify_crs.py tests/scene/test_classify_masks.py \
	tests/scene/test_classify_batch.py tests/scene/test_classify_big.py \
	tests/scene/test_classify_formats.py tests/scene/test_classify_lib.py \
	tests/scene/test_classify_precision.py

# Writers alone: the C self-test, then its outputs on synthetic grids checked
# with GDAL/OGR, libtiff and scipy (tests/scene/test_writers_check.py).
check_PROGRAMS += tests/scene/test_writers
TESTS += tests/scene/test_writers tests/scene/test_writers_check.py
tests_scene_test_writers_SOURCES = tests/scene/test_writers.c
tests_scene_test_writers_LDADD = $(CNP_LIBS)
EXTRA_DIST += tests/scene/test_writers_check.py

# scripts/make-demo-data: scenes, truth and chips read back with GDAL.
TESTS += tests/scene/test_demo_data.py
EXTRA_DIST += tests/scene/test_demo_data.py

# The tiler's chip resampling against its double-precision _ref twin (C, on
# random data); tests/scene/test_classify_tiler.py checks chips against GDAL.
check_PROGRAMS += tests/scene/test_resample
TESTS += tests/scene/test_resample
tests_scene_test_resample_SOURCES = tests/scene/test_resample.c tests/engine/kernel_test.h
tests_scene_test_resample_LDADD = $(CNP_LIBS)
