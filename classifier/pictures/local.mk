# classifier/pictures: quick-looks, STAC items and collections, the HTML report.
classifier_libcanopy_la_SOURCES += classifier/pictures/pictures.h \
	classifier/pictures/internal.h \
	classifier/pictures/quicklook.c classifier/pictures/draw.c \
	classifier/pictures/record.c classifier/pictures/stac.c \
	classifier/pictures/collection.c classifier/pictures/html.h \
	classifier/pictures/html.c classifier/pictures/page.c classifier/pictures/report.c
