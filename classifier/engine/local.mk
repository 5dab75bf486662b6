# engine: ONNX models -> fused CPU graph -> forward pass. No GDAL here.

# onnx.proto (libonnx-dev, or --with-onnx-proto) compiled by protoc-c.
# One rule makes both files; the header depends on the source so that a
# parallel make runs protoc-c once.
classifier/engine/onnx.pb-c.h: classifier/engine/onnx.pb-c.c
	@test -f $@ || { rm -f classifier/engine/onnx.pb-c.c; $(MAKE) $(AM_MAKEFLAGS) classifier/engine/onnx.pb-c.c; }
classifier/engine/onnx.pb-c.c: $(ONNX_PROTO)
	$(AM_V_GEN)$(MKDIR_P) classifier/engine/proto.tmp && \
	cp $(ONNX_PROTO) classifier/engine/proto.tmp/onnx.proto && \
	$(PROTOC_C) --proto_path=classifier/engine/proto.tmp \
		--c_out=classifier/engine/proto.tmp onnx.proto && \
	mv classifier/engine/proto.tmp/onnx.pb-c.c classifier/engine/onnx.pb-c.c && \
	mv classifier/engine/proto.tmp/onnx.pb-c.h classifier/engine/onnx.pb-c.h && \
	rm -rf classifier/engine/proto.tmp
BUILT_SOURCES += classifier/engine/onnx.pb-c.c classifier/engine/onnx.pb-c.h
CLEANFILES += classifier/engine/onnx.pb-c.c classifier/engine/onnx.pb-c.h
nodist_classifier_libcanopy_la_SOURCES += classifier/engine/onnx.pb-c.c classifier/engine/onnx.pb-c.h

# Model loading, metadata, graph building/fusion, planning and execution.
CNP_ENGINE_GRAPH_SOURCES = classifier/engine/graph.h classifier/engine/onnx_parse.h \
	classifier/engine/onnx_load.c classifier/engine/onnx_lower.c \
	classifier/engine/meta.c classifier/engine/graph.c classifier/engine/plan.c \
	classifier/engine/forward.c classifier/engine/tta.c classifier/engine/info.c \
	classifier/engine/profile.c
# Kernels, their naive references, BLAS selection.
CNP_ENGINE_KERNEL_SOURCES = classifier/engine/conv.c classifier/engine/pool.c \
	classifier/engine/dense.c classifier/engine/ref.c classifier/engine/blas.c \
	classifier/engine/gemm.c classifier/engine/gemm_bf16.c classifier/engine/gemm_tile.h \
	classifier/engine/winograd.c

classifier_libcanopy_la_SOURCES += classifier/engine/engine.h classifier/engine/kernels.h \
	classifier/engine/avx512.h \
	$(CNP_ENGINE_GRAPH_SOURCES) $(CNP_ENGINE_KERNEL_SOURCES)
