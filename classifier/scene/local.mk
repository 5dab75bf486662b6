# scene: GDAL reading (chips, chip grid, masks, strips).
classifier_libcanopy_la_SOURCES += classifier/scene/scene.h classifier/scene/chip.c \
	classifier/scene/tiler.c
