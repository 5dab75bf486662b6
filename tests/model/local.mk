# tests/model (see tests/local.mk).
# PyTorch side: export-onnx and parity of canopy predict with PyTorch.
TESTS += tests/model/test_export.py tests/model/test_parity.py tests/model/test_parity_deep.py
EXTRA_DIST += tests/model/test_export.py tests/model/test_parity.py \
	tests/model/test_parity_deep.py tests/model/parity.py
# --precision bf16 against PyTorch, its fp32 fallback, the option's handling.
TESTS += tests/model/test_bf16.py
EXTRA_DIST += tests/model/test_bf16.py

# Model loading: bad models, metadata, uncommon graph paths and TTA against
# PyTorch (tests/lib/tinymodels.py builds the models with PyTorch and the
# onnx package).
TESTS += tests/model/test_bad_models.py tests/model/test_meta.py tests/model/test_graph.py
EXTRA_DIST += tests/model/test_bad_models.py tests/model/test_meta.py tests/model/test_graph.py

# Fuzz targets for the model loader and the metadata parser, replayed over
# their saved inputs (tests/fuzz/corpus/*) by `make check`.
check_PROGRAMS += tests/fuzz/fuzz_model_replay tests/fuzz/fuzz_meta_replay
tests_fuzz_fuzz_model_replay_SOURCES = tests/fuzz/fuzz_model.c tests/fuzz/replay.c
tests_fuzz_fuzz_model_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-DCNP_FUZZ_CORPUS='"tests/fuzz/corpus/model"'
tests_fuzz_fuzz_model_replay_LDADD = $(CNP_LIBS)
tests_fuzz_fuzz_meta_replay_SOURCES = tests/fuzz/fuzz_meta.c tests/fuzz/replay.c
tests_fuzz_fuzz_meta_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-DCNP_FUZZ_CORPUS='"tests/fuzz/corpus/meta"'
tests_fuzz_fuzz_meta_replay_LDADD = $(CNP_LIBS)
TESTS += tests/fuzz/fuzz_model_replay tests/fuzz/fuzz_meta_replay
EXTRA_DIST += tests/fuzz/README tests/fuzz/corpus
