# base: status codes, error context, checked allocation.
classifier_libcanopy_a_SOURCES += classifier/base/base.h classifier/base/base.c
classifier_libcanopy_a_SOURCES += classifier/base/arith.h
