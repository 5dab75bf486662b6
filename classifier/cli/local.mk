# cli: the `canopy` program.
bin_PROGRAMS += canopy
canopy_SOURCES = classifier/cli/cli.h classifier/cli/main.c classifier/cli/common.c \
	classifier/cli/events.h classifier/cli/events.c \
	classifier/cli/info.c classifier/cli/predict.c \
	classifier/cli/classify.c classifier/cli/evaluate.c \
	classifier/cli/bench.c
canopy_LDADD = $(CNP_LIBS)
