# pipeline: the scene pipeline as a library. Its public API is the installed
# headers of classifier/canopy/ (<canopy/canopy.h>).
canopyinclude_HEADERS += classifier/canopy/canopy.h classifier/canopy/status.h \
	classifier/canopy/classify.h classifier/canopy/predict.h classifier/canopy/evaluate.h \
	classifier/canopy/calibrate.h
classifier_libcanopy_la_SOURCES += classifier/pipeline/pipeline.h \
	classifier/pipeline/options.c classifier/pipeline/scenes.c \
	classifier/pipeline/model.c classifier/pipeline/outputs.c \
	classifier/pipeline/classify.c classifier/pipeline/result.c \
	classifier/pipeline/batcher.h classifier/pipeline/batcher.c \
	classifier/pipeline/predict.c classifier/pipeline/evaluate.c \
	classifier/pipeline/calibrate.c
