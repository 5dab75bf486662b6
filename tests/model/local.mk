# tests/model (see tests/local.mk).
# PyTorch side: export-onnx and parity of canopy predict with PyTorch.
TESTS += tests/model/test_export.py tests/model/test_parity.py tests/model/test_parity_deep.py
EXTRA_DIST += tests/model/test_export.py tests/model/test_parity.py \
	tests/model/test_parity_deep.py tests/model/parity.py
# --precision bf16 against PyTorch, its fp32 fallback, the option's handling.
TESTS += tests/model/test_bf16.py
EXTRA_DIST += tests/model/test_bf16.py
# --precision int8 on a model `canopy calibrate` wrote, against PyTorch, its
# fp32 fallback, an uncalibrated model refused.
# int8-probe runs every convolution on the int8 GEMM, against PyTorch
# quantising the same operands.
TESTS += tests/model/test_int8.py
EXTRA_DIST += tests/model/test_int8.py
check_PROGRAMS += tests/model/int8-probe
tests_model_int8_probe_SOURCES = tests/model/int8-probe.c
tests_model_int8_probe_LDADD = $(CNP_LIBS)

# Model loading: bad models, metadata, uncommon graph paths and TTA against
# PyTorch (tests/lib/tinymodels.py builds the models with PyTorch and the
# onnx package).
TESTS += tests/model/test_bad_models.py tests/model/test_meta.py tests/model/test_graph.py
EXTRA_DIST += tests/model/test_bad_models.py tests/model/test_meta.py tests/model/test_graph.py

# int8 calibration (`canopy calibrate`, the engine's observation, canopy.int8)
# against PyTorch forward hooks; calibrate-probe drives the library and the
# engine from the test.
check_PROGRAMS += tests/model/calibrate-probe
tests_model_calibrate_probe_SOURCES = tests/model/calibrate-probe.c
tests_model_calibrate_probe_LDADD = $(CNP_LIBS)
TESTS += tests/model/test_calibrate.py
EXTRA_DIST += tests/model/test_calibrate.py
