# tests/engine (see tests/local.mk).

# Kernels against their naive `_ref` twins on random data; the BLAS self-test.
CNP_ENGINE_KERNEL_TESTS = tests/engine/test_conv tests/engine/test_pool \
	tests/engine/test_dense tests/engine/test_blas tests/engine/test_gemm_bf16 \
	tests/engine/test_gemm_int8
check_PROGRAMS += $(CNP_ENGINE_KERNEL_TESTS) tests/engine/bench_kernels
TESTS += $(CNP_ENGINE_KERNEL_TESTS)
tests_engine_test_conv_SOURCES = tests/engine/test_conv.c tests/engine/kernel_test.h
tests_engine_test_conv_LDADD = $(CNP_LIBS)
tests_engine_test_pool_SOURCES = tests/engine/test_pool.c tests/engine/kernel_test.h
tests_engine_test_pool_LDADD = $(CNP_LIBS)
tests_engine_test_dense_SOURCES = tests/engine/test_dense.c tests/engine/kernel_test.h
tests_engine_test_dense_LDADD = $(CNP_LIBS)
tests_engine_test_gemm_bf16_SOURCES = tests/engine/test_gemm_bf16.c tests/engine/kernel_test.h
tests_engine_test_gemm_bf16_LDADD = $(CNP_LIBS)
tests_engine_test_gemm_int8_SOURCES = tests/engine/test_gemm_int8.c tests/engine/kernel_test.h
tests_engine_test_gemm_int8_LDADD = $(CNP_LIBS)
tests_engine_test_blas_SOURCES = tests/engine/test_blas.c
tests_engine_test_blas_LDADD = $(CNP_LIBS)
# The `_ref` kernels and every convolution path against PyTorch, through a
# small driver program.
check_PROGRAMS += tests/engine/kernel_driver
TESTS += tests/engine/test_kernels_torch.py
EXTRA_DIST += tests/engine/test_kernels_torch.py
tests_engine_kernel_driver_SOURCES = tests/engine/kernel_driver.c
tests_engine_kernel_driver_LDADD = $(CNP_LIBS)
# The library compiles for aarch64 (the x86 kernels guarded out); needs
# gcc-aarch64-linux-gnu (scripts/install-deps).
TESTS += tests/engine/test_portable.sh
EXTRA_DIST += tests/engine/test_portable.sh
# Micro-benchmark (built by `make check`, not run by it):
#   tests/engine/bench_kernels [--threads N] [--batch N] [--size PX]
tests_engine_bench_kernels_SOURCES = tests/engine/bench_kernels.c
tests_engine_bench_kernels_LDADD = $(CNP_LIBS)
tests_engine_bench_kernels_LDFLAGS = -static
