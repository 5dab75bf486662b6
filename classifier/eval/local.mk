# eval: label files, multi-label metrics, threshold optimisation, ONNX
# metadata rewrite (`canopy evaluate`). No GDAL, no engine.
classifier_libcanopy_la_SOURCES += classifier/eval/eval.h classifier/eval/labels.c \
	classifier/eval/metrics.c classifier/eval/onnx_meta.c
