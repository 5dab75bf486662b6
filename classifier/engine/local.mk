# engine: ONNX models -> fused CPU graph -> forward pass. No GDAL here.

# Model loading (over onnx/), graph building/fusion, planning and execution.
CNP_ENGINE_GRAPH_SOURCES = classifier/engine/graph.h classifier/engine/onnx_parse.h \
	classifier/engine/onnx_parser.c classifier/engine/onnx_load.c \
	classifier/engine/onnx_lower.c classifier/engine/graph.c classifier/engine/plan.c \
	classifier/engine/forward.c classifier/engine/tta.c classifier/engine/info.c \
	classifier/engine/profile.c classifier/engine/observe.c
# Kernels, their naive references, BLAS selection.
CNP_ENGINE_KERNEL_SOURCES = classifier/engine/conv.c classifier/engine/pool.c \
	classifier/engine/dense.c classifier/engine/ref.c classifier/engine/blas.c \
	classifier/engine/gemm.c classifier/engine/gemm_avx2.c classifier/engine/gemm_bf16.c \
	classifier/engine/gemm_int8.c classifier/engine/gemm_tile.h \
	classifier/engine/winograd.c classifier/engine/winograd_avx2.c \
	classifier/engine/winograd_tile.h classifier/engine/winograd_xform.h

classifier_libcanopy_la_SOURCES += classifier/engine/engine.h classifier/engine/kernels.h \
	classifier/engine/avx512.h \
	$(CNP_ENGINE_GRAPH_SOURCES) $(CNP_ENGINE_KERNEL_SOURCES)
