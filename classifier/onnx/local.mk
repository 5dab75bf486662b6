# onnx: the ONNX wire format (protobuf-c) and canopy's metadata schema,
# shared by the engine and eval. No GDAL, no engine.

# onnx.proto (libonnx-dev, or --with-onnx-proto) compiled by protoc-c.
# One rule makes both files; the header depends on the source so that a
# parallel make runs protoc-c once.
classifier/onnx/onnx.pb-c.h: classifier/onnx/onnx.pb-c.c
	@test -f $@ || { rm -f classifier/onnx/onnx.pb-c.c; $(MAKE) $(AM_MAKEFLAGS) classifier/onnx/onnx.pb-c.c; }
classifier/onnx/onnx.pb-c.c: $(ONNX_PROTO)
	$(AM_V_GEN)$(MKDIR_P) classifier/onnx/proto.tmp && \
	cp $(ONNX_PROTO) classifier/onnx/proto.tmp/onnx.proto && \
	$(PROTOC_C) --proto_path=classifier/onnx/proto.tmp \
		--c_out=classifier/onnx/proto.tmp onnx.proto && \
	mv classifier/onnx/proto.tmp/onnx.pb-c.c classifier/onnx/onnx.pb-c.c && \
	mv classifier/onnx/proto.tmp/onnx.pb-c.h classifier/onnx/onnx.pb-c.h && \
	rm -rf classifier/onnx/proto.tmp
BUILT_SOURCES += classifier/onnx/onnx.pb-c.c classifier/onnx/onnx.pb-c.h
CLEANFILES += classifier/onnx/onnx.pb-c.c classifier/onnx/onnx.pb-c.h
nodist_classifier_libcanopy_la_SOURCES += classifier/onnx/onnx.pb-c.c classifier/onnx/onnx.pb-c.h

classifier_libcanopy_la_SOURCES += classifier/onnx/onnx.h classifier/onnx/read.c \
	classifier/onnx/tensor.c classifier/onnx/write.c classifier/onnx/meta.c
