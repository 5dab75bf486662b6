# base: status codes, error context, checked allocation, the atomic writer and
# file reader (files.c), private folders (private.c), the GDAL error bridge
# (gdal.c).
classifier_libcanopy_la_SOURCES += classifier/base/base.h classifier/base/base.c classifier/base/parse.c \
	classifier/base/files.c classifier/base/private.c classifier/base/gdal.h classifier/base/gdal.c
classifier_libcanopy_la_SOURCES += classifier/base/arith.h
