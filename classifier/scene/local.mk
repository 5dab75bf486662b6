# scene: GDAL reading (chips, chip grid, masks, strips).
classifier_libcanopy_a_SOURCES += classifier/scene/scene.h classifier/scene/chip.c \
	classifier/scene/tiler.c \
	classifier/scene/date.h classifier/scene/date.c
