# tests/install (see tests/local.mk): libcanopy installed into a temporary
# DESTDIR, its exported symbols, and a program built with pkg-config.
TESTS += tests/install/test_install.py
EXTRA_DIST += tests/install/test_install.py tests/install/consumer.c
