# classifier/writers: sources and data of this module (see the top-level Makefile.am).
classifier_libcanopy_la_SOURCES += classifier/writers/writers.h \
	classifier/writers/raster.c classifier/writers/markers.c classifier/writers/files.c
# Run manifest of canopy classify (scene pipeline).
classifier_libcanopy_la_SOURCES += classifier/writers/manifest.c
