# scene: GDAL reading (chips, chip grid, masks, strips), acquisition dates.
classifier_libcanopy_la_SOURCES += classifier/scene/scene.h classifier/scene/chip.c \
	classifier/scene/tiler.c classifier/scene/resample.c \
	classifier/scene/preview_int.h classifier/scene/preview.c \
	classifier/scene/date.h classifier/scene/date.c
# Products as scenes: Sentinel-2 and PlanetScope (product.h).
classifier_libcanopy_la_SOURCES += classifier/scene/product.h classifier/scene/product_int.h \
	classifier/scene/products.c classifier/scene/bands.c classifier/scene/radiometry.c \
	classifier/scene/qmask.c
