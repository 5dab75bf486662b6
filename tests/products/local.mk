# tests/products: Sentinel-2 and PlanetScope products made by the tests
# (fixtures.py) read through cnp_product_open + the tiler (product_dump) and
# through canopy classify.
check_PROGRAMS += tests/products/product_dump
tests_products_product_dump_SOURCES = tests/products/product_dump.c tests/lib/tiler_dump.c \
	tests/lib/tiler_dump.h
tests_products_product_dump_LDADD = $(CNP_LIBS)
TESTS += tests/products/test_s2_bands.py tests/products/test_s2_masks.py \
	tests/products/test_planet.py tests/products/test_classify_products.py
EXTRA_DIST += tests/products/fixtures.py tests/products/test_s2_bands.py \
	tests/products/test_s2_masks.py tests/products/test_planet.py \
	tests/products/test_classify_products.py
