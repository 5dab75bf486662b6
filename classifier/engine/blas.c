/* blas.c -- the GEMM back end: OpenBLAS, single-threaded under canopy's
 * OpenMP, checked once at start-up, and the choice of its kernels.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"
#include "engine/kernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t single_once = PTHREAD_ONCE_INIT;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static int selftest_result = -1;            /* -1 not run, 0 failed, 1 passed */
static char selftest_msg[CNP_MSG_MAX];
static char selected_text[256];

static void set_single_thread(void)
{
    openblas_set_num_threads(1);
}

void cnp_blas_single_thread(void)
{
    pthread_once(&single_once, set_single_thread);
}

/* Deterministic values in [-1, 1) with a few exact zeros and larger
 * magnitudes, so that wrong indexing cannot cancel out. */
static float test_value(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((int)(*state >> 8) % 2001 - 1000) / 1000.0f;
}

/* One sgemm case: C = alpha op(A) op(B) + beta C with leading dimensions
 * larger than needed, compared with a double-precision loop.
 * Returns 1 when it matches, else 0 and fills `why`. */
static int selftest_case(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta,
                         enum CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                         float beta, char *why, size_t why_size)
{
    const int row = order == CblasRowMajor;
    /* op(A) is M x K, op(B) is K x N. Stored dimensions: */
    const int a_rows = row ? (ta == CblasNoTrans ? M : K) : (ta == CblasNoTrans ? K : M);
    const int a_cols = row ? (ta == CblasNoTrans ? K : M) : (ta == CblasNoTrans ? M : K);
    const int b_rows = row ? (tb == CblasNoTrans ? K : N) : (tb == CblasNoTrans ? N : K);
    const int b_cols = row ? (tb == CblasNoTrans ? N : K) : (tb == CblasNoTrans ? K : N);
    const int c_rows = row ? M : N, c_cols = row ? N : M;
    /* "rows" are the contiguous dimension's outer index: ld >= cols. */
    const int lda = a_cols + 3, ldb = b_cols + 5, ldc = c_cols + 7;
    float *a = NULL, *b = NULL, *c = NULL, *c0 = NULL;
    unsigned state = 12345u + (unsigned)(M * 7 + N * 11 + K * 13);
    int ok = 0;

    a = malloc(sizeof *a * (size_t)a_rows * lda);
    b = malloc(sizeof *b * (size_t)b_rows * ldb);
    c = malloc(sizeof *c * (size_t)c_rows * ldc);
    c0 = malloc(sizeof *c0 * (size_t)c_rows * ldc);
    if (!a || !b || !c || !c0) {
        snprintf(why, why_size, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < (size_t)a_rows * lda; i++)
        a[i] = test_value(&state);
    for (size_t i = 0; i < (size_t)b_rows * ldb; i++)
        b[i] = test_value(&state);
    for (size_t i = 0; i < (size_t)c_rows * ldc; i++)
        c0[i] = c[i] = test_value(&state);

    cblas_sgemm(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);

    ok = 1;
    for (int i = 0; i < M && ok; i++)
        for (int j = 0; j < N && ok; j++) {
            double acc = 0.0, mag = 0.0, got, want;
            size_t ci;
            for (int k = 0; k < K; k++) {
                /* Element (i, k) of op(A) and (k, j) of op(B). */
                size_t ai, bi;
                if (row) {
                    ai = ta == CblasNoTrans ? (size_t)i * lda + k : (size_t)k * lda + i;
                    bi = tb == CblasNoTrans ? (size_t)k * ldb + j : (size_t)j * ldb + k;
                } else {
                    ai = ta == CblasNoTrans ? (size_t)k * lda + i : (size_t)i * lda + k;
                    bi = tb == CblasNoTrans ? (size_t)j * ldb + k : (size_t)k * ldb + j;
                }
                acc += (double)a[ai] * (double)b[bi];
                mag += fabs((double)a[ai] * (double)b[bi]);
            }
            ci = row ? (size_t)i * ldc + j : (size_t)j * ldc + i;
            want = alpha * acc + beta * (double)c0[ci];
            got = c[ci];
            /* fp32 rounding stays far below 1e-4 of the magnitude sum; a
             * wrong kernel (a dropped or doubled term) does not. */
            if (!(fabs(got - want) <= 1e-4 * (fabs(alpha) * mag + fabs(beta * c0[ci])) + 1e-6)) {
                snprintf(why, why_size,
                         "%s-major %c%c sgemm %dx%dx%d: C[%d,%d] = %.8g, expected %.8g",
                         row ? "row" : "column", ta == CblasNoTrans ? 'N' : 'T',
                         tb == CblasNoTrans ? 'N' : 'T', M, N, K, i, j, got, want);
                ok = 0;
            }
        }
    /* Padding between rows must be left alone. */
    for (int i = 0; i < c_rows && ok; i++)
        for (int j = c_cols; j < ldc && ok; j++)
            if (c[(size_t)i * ldc + j] != c0[(size_t)i * ldc + j]) {
                snprintf(why, why_size, "sgemm %dx%dx%d wrote outside its output", M, N, K);
                ok = 0;
            }

cleanup:
    free(a);
    free(b);
    free(c);
    free(c0);
    return ok;
}

static void run_selftest(void)
{
    static const struct {
        enum CBLAS_ORDER order;
        enum CBLAS_TRANSPOSE ta, tb;
        int M, N, K;
        float alpha, beta;
    } cases[] = {
        { CblasRowMajor, CblasNoTrans, CblasNoTrans, 37, 53, 29, 1.0f, 0.0f },
        { CblasRowMajor, CblasTrans, CblasTrans, 64, 300, 577, 1.0f, 0.0f },
        { CblasRowMajor, CblasNoTrans, CblasTrans, 131, 17, 260, 0.5f, 1.0f },
        { CblasColMajor, CblasTrans, CblasNoTrans, 45, 97, 513, 1.0f, -0.25f },
        { CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1000, 3, 1.0f, 1.0f },
        { CblasRowMajor, CblasNoTrans, CblasNoTrans, 72, 100, 1152, 1.0f, 0.0f },
    };
    char why[512];

    cnp_blas_single_thread();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!selftest_case(cases[i].order, cases[i].ta, cases[i].tb, cases[i].M, cases[i].N,
                           cases[i].K, cases[i].alpha, cases[i].beta, why, sizeof why)) {
            const char *core = openblas_get_corename();
            const char *env = getenv("OPENBLAS_CORETYPE");
            snprintf(selftest_msg, sizeof selftest_msg,
                     "the BLAS self-test failed with OpenBLAS core %s%s%s%s: %s; "
                     "results would be wrong. Run with another set of kernels, e.g. "
                     "OPENBLAS_CORETYPE=Haswell (or Sandybridge, Nehalem), "
                     "or install another OpenBLAS build",
                     core ? core : "(unknown)", env ? " (OPENBLAS_CORETYPE=" : "",
                     env ? env : "", env ? ")" : "", why);
            selftest_result = 0;
            return;
        }
    selftest_result = 1;
}

cnp_status cnp_blas_init(cnp_ctx *ctx)
{
    pthread_once(&init_once, run_selftest);
    if (selftest_result != 1)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s", selftest_msg);
    return CNP_OK;
}

static void fill_selected(void)
{
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && *env && getenv("CANOPY_BLAS_REEXEC"))
        snprintf(selected_text, sizeof selected_text,
                 "re-executed with OPENBLAS_CORETYPE=%s (canopy's choice for this CPU)", env);
    else if (env && *env)
        snprintf(selected_text, sizeof selected_text,
                 "OPENBLAS_CORETYPE=%s set in the environment", env);
    else
        snprintf(selected_text, sizeof selected_text, "autodetected by OpenBLAS");
}

void cnp_blas_info_get(cnp_blas_info *info)
{
    const char *cfg = openblas_get_config();
    const char *core = openblas_get_corename();
    pthread_once(&info_once, fill_selected);
    info->library = cfg ? cfg : "OpenBLAS";
    info->core = core ? core : "unknown";
    info->selected = selected_text;
    info->selftest_ok = selftest_result;
    switch (cnp_isa_resolve(CNP_ISA_AUTO)) {
    case CNP_ISA_AVX512:
        info->conv = "avx512: canopy's AVX-512 GEMM (weights packed at load, fused "
                     "bias/residual/ReLU) and Winograd F(4x4,3x3) for 3x3 stride-1 layers; dense "
                     "layers: OpenBLAS, canopy's AVX-512 dot products at batches of 1-4 "
                     "(also: --isa avx2, generic)";
        break;
    case CNP_ISA_AVX2:
        info->conv = "avx2: canopy's AVX2+FMA GEMM (weights packed at load, fused "
                     "bias/residual/ReLU) and Winograd F(4x4,3x3) for 3x3 stride-1 layers; "
                     "dense layers: OpenBLAS (also: --isa generic)";
        break;
    default:
        info->conv = "generic: OpenBLAS sgemm on im2col blocks with a fused bias/residual/ReLU pass";
    }
    {
        static const char *const prec[2][2] = {
            /* [bf16][int8] */
            {"fp32; bf16 and int8 not available (no AVX512_BF16, no AVX512_VNNI: "
             "--precision bf16 and int8 run fp32)",
             "fp32 (default); int8 available (AVX512_VNNI: --precision int8); bf16 not "
             "(no AVX512_BF16: --precision bf16 runs fp32)"},
            {"fp32 (default); bf16 available (AVX512_BF16: --precision bf16); int8 not "
             "(no AVX512_VNNI: --precision int8 runs fp32)",
             "fp32 (default); bf16 available (AVX512_BF16: --precision bf16); int8 "
             "available (AVX512_VNNI: --precision int8)"}};
        info->bf16 = prec[cnp_engine_bf16_available()][cnp_engine_int8_available()];
    }
}

int cnp_engine_bf16_available(void)
{
    return cnp_gemm_available() && cnp_gemm_bf16_available();
}

int cnp_engine_int8_available(void)
{
    return cnp_gemm_available() && cnp_gemm_int8_available();
}

#if CNP_X86

/* Cores whose sgemm kernels use AVX2/FMA or AVX-512: nothing to gain. */
static int core_is_good(const char *core)
{
    static const char *const good[] = {
        "SkylakeX", "Cooperlake", "SapphireRapids", "Haswell", "Zen",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!strcasecmp(core, good[i]))
            return 1;
    return 0;
}

const char *cnp_blas_preferred_coretype(const char *user_coretype)
{
    const char *core;
    if (user_coretype && *user_coretype)
        return NULL;
    core = openblas_get_corename();
    if (!core || core_is_good(core))
        return NULL;
    /* OpenBLAS fell back to older kernels (Prescott, Core2, Nehalem,
     * Sandybridge, Atom, ...) on a CPU it did not recognise. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}

#else   /* OPENBLAS_CORETYPE names x86 cores only */

const char *cnp_blas_preferred_coretype(const char *user_coretype)
{
    return NULL;
}

#endif
