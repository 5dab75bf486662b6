# cli: the `canopy` program.
bin_PROGRAMS += canopy
canopy_SOURCES = classifier/cli/cli.h classifier/cli/main.c classifier/cli/common.c \
	classifier/cli/events.h classifier/cli/events.c \
	classifier/cli/info.c classifier/cli/predict.c \
	classifier/cli/classify.c classifier/cli/evaluate.c classifier/cli/calibrate.c \
	classifier/cli/bench.c classifier/cli/alerts.c classifier/cli/report.c
canopy_LDADD = $(CNP_LIBS)
# The program links libcanopy's static archive (libtool builds its objects
# without -fPIC for it): the engine runs exactly as fast as before the
# library was shared; programs of others link the installed shared library.
canopy_LDFLAGS = -static
