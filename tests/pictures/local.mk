# tests/pictures (see tests/local.mk): quick-look, STAC, report.

# pictures-probe: drives the pictures module alone on a finished output folder.
check_PROGRAMS += tests/pictures/pictures-probe
tests_pictures_pictures_probe_SOURCES = tests/pictures/pictures-probe.c
tests_pictures_pictures_probe_LDADD = $(CNP_LIBS)

TESTS += tests/pictures/test_quicklook.py
EXTRA_DIST += tests/pictures/pictest.py tests/pictures/test_quicklook.py
TESTS += tests/pictures/test_stac.py
EXTRA_DIST += tests/pictures/test_stac.py
TESTS += tests/pictures/test_report.py
EXTRA_DIST += tests/pictures/test_report.py
TESTS += tests/pictures/test_classify_pictures.py
EXTRA_DIST += tests/pictures/test_classify_pictures.py
