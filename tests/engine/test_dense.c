/* test_dense.c -- linear against cnp_linear_ref (with and without bias and
 * ReLU, batch 1 and odd batches, one thread and split over M), and the
 * elementwise kernels (affine, add(+ReLU), ReLU, sigmoid including large
 * |x|, infinities and NaN, NCHW -> CNHW) against direct double-precision
 * formulas written here.
 */
#include "engine/kernels.h"
#include "kernel_test.h"

#include <string.h>

static int run_linear(kt_rng *rng, int N, int K, int M, int with_bias, cnp_act act,
                      int threads, cnp_isa isa)
{
    const cnp_exec ex = cnp_exec_make(threads, CNP_CONV_AUTO, isa);
    float *x = kt_floats((size_t)N * K), *w = kt_floats((size_t)M * K), *b = kt_floats(M);
    float *ax = kt_floats((size_t)N * K), *aw = kt_floats((size_t)M * K), *ab = kt_floats(M);
    float *y = kt_floats((size_t)N * M), *want = kt_floats((size_t)N * M);
    float *mag = kt_floats((size_t)N * M);
    char what[128];
    int ok;
    kt_fill(rng, x, (size_t)N * K, 1.0f);
    kt_fill(rng, w, (size_t)M * K, 0.1f);
    kt_fill(rng, b, M, 1.0f);
    kt_abs(ax, x, (size_t)N * K);
    kt_abs(aw, w, (size_t)M * K);
    kt_abs(ab, b, M);
    for (size_t i = 0; i < (size_t)N * M; i++)
        y[i] = NAN;
    cnp_linear_ref(want, x, w, with_bias ? b : NULL, N, K, M, act);
    cnp_linear_ref(mag, ax, aw, with_bias ? ab : NULL, N, K, M, CNP_ACT_NONE);
    cnp_linear(y, x, w, with_bias ? b : NULL, N, K, M, act, &ex);
    snprintf(what, sizeof what, "linear N=%d K=%d M=%d bias=%d relu=%d threads=%d isa=%s", N, K,
             M, with_bias, act == CNP_ACT_RELU, threads, cnp_isa_name(isa));
    ok = kt_close(what, y, want, mag, (size_t)N * M, 1e-6, 1e-5);
    if (ok)
        printf("ok %s\n", what);
    free(x); free(w); free(b); free(ax); free(aw); free(ab); free(y); free(want); free(mag);
    return ok;
}

static int test_affine(kt_rng *rng)
{
    const int N = 3, F = 1029;
    float *x = kt_floats((size_t)N * F), *y = kt_floats((size_t)N * F);
    float *want = kt_floats((size_t)N * F), *sc = kt_floats(F), *sh = kt_floats(F);
    int ok;
    kt_fill(rng, x, (size_t)N * F, 4.0f);
    kt_fill(rng, sc, F, 2.0f);
    kt_fill(rng, sh, F, 1.0f);
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++)
            want[(size_t)n * F + f] = (float)((double)x[(size_t)n * F + f] * sc[f] + sh[f]);
    cnp_affine_rows(y, x, sc, sh, N, F);
    ok = kt_close("affine_rows", y, want, NULL, (size_t)N * F, 1e-6, 1e-6);
    /* In place. */
    cnp_affine_rows(x, x, sc, sh, N, F);
    ok = kt_close("affine_rows in place", x, want, NULL, (size_t)N * F, 1e-6, 1e-6) && ok;
    if (ok)
        printf("ok affine_rows\n");
    free(x); free(y); free(want); free(sc); free(sh);
    return ok;
}

static int test_eltwise(kt_rng *rng, size_t n)
{
    float *a = kt_floats(n), *b = kt_floats(n), *y = kt_floats(n), *want = kt_floats(n);
    char what[80];
    int ok = 1;
    kt_fill(rng, a, n, 5.0f);
    kt_fill(rng, b, n, 5.0f);

    for (size_t i = 0; i < n; i++)
        want[i] = a[i] + b[i];
    cnp_add(y, a, b, n, CNP_ACT_NONE);
    snprintf(what, sizeof what, "add n=%zu", n);
    ok = kt_close(what, y, want, NULL, n, 0.0, 0.0) && ok;

    for (size_t i = 0; i < n; i++)
        want[i] = a[i] + b[i] > 0 ? a[i] + b[i] : 0.0f;
    memcpy(y, a, n * sizeof *y);
    cnp_add(y, y, b, n, CNP_ACT_RELU);      /* y aliases a */
    snprintf(what, sizeof what, "add+relu in place n=%zu", n);
    ok = kt_close(what, y, want, NULL, n, 0.0, 0.0) && ok;

    for (size_t i = 0; i < n; i++)
        want[i] = a[i] > 0 ? a[i] : 0.0f;
    cnp_relu(y, a, n);
    snprintf(what, sizeof what, "relu n=%zu", n);
    ok = kt_close(what, y, want, NULL, n, 0.0, 0.0) && ok;

    for (size_t i = 0; i < n; i++)
        want[i] = (float)(1.0 / (1.0 + exp(-(double)a[i])));
    cnp_sigmoid(y, a, n);
    snprintf(what, sizeof what, "sigmoid n=%zu", n);
    ok = kt_close(what, y, want, NULL, n, 1e-7, 1e-6) && ok;
    if (ok)
        printf("ok elementwise n=%zu\n", n);
    free(a); free(b); free(y); free(want);
    return ok;
}

/* Large |x|: no overflow, no NaN from inf/inf, tiny tails kept. */
static int test_sigmoid_extremes(void)
{
    static const float x[] = { 0.0f, 1e-8f, -1e-8f, 20.0f, -20.0f, 88.0f, -88.0f, 89.0f,
                               -89.0f, 100.0f, -100.0f, -103.0f, 1e30f, -1e30f, INFINITY,
                               -INFINITY, 3.4e38f, -3.4e38f };
    const size_t n = sizeof x / sizeof x[0];
    float y[sizeof x / sizeof x[0]], want[sizeof x / sizeof x[0]], nan_in = NAN, nan_out = 0;
    int ok;
    for (size_t i = 0; i < n; i++)
        want[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    cnp_sigmoid(y, x, n);
    /* Relative tolerance matters in the tails: e^-100 is ~3.7e-44; atol is
     * one step between float denormals. */
    ok = kt_close("sigmoid extremes", y, want, NULL, n, 1.5e-45, 1e-6);
    cnp_sigmoid(&nan_out, &nan_in, 1);
    if (!isnan(nan_out)) {
        fprintf(stderr, "FAIL sigmoid(NaN) = %g, want NaN\n", nan_out);
        ok = 0;
    }
    if (ok)
        printf("ok sigmoid extremes\n");
    return ok;
}

static int test_nchw_to_cnhw(kt_rng *rng)
{
    const int N = 3, C = 5, HW = 37;
    const size_t total = (size_t)N * C * HW;
    float *x = kt_floats(total), *y = kt_floats(total), *want = kt_floats(total);
    int ok;
    kt_fill(rng, x, total, 1.0f);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                want[((size_t)c * N + n) * HW + i] = x[((size_t)n * C + c) * HW + i];
    cnp_nchw_to_cnhw(y, x, N, C, HW);
    ok = kt_close("nchw_to_cnhw", y, want, NULL, total, 0.0, 0.0);
    if (ok)
        printf("ok nchw_to_cnhw\n");
    free(x); free(y); free(want);
    return ok;
}

int main(void)
{
    kt_rng rng = { 4242u };
    int failed = 0;
    /* Every vector path the CPU has (AVX2 and generic: OpenBLAS). */
    for (cnp_isa isa = CNP_ISA_AVX512; isa <= CNP_ISA_GENERIC; isa++) {
        if (cnp_isa_resolve(isa) != isa) {
            printf("# linear on %s: not on this CPU\n", cnp_isa_name(isa));
            continue;
        }
        failed += !run_linear(&rng, 1, 2048, 17, 1, CNP_ACT_NONE, 2, isa);
        failed += !run_linear(&rng, 3, 4096, 512, 1, CNP_ACT_RELU, 2, isa);
        failed += !run_linear(&rng, 5, 1000, 1000, 0, CNP_ACT_NONE, 3, isa);
        failed += !run_linear(&rng, 1, 512, 1000, 1, CNP_ACT_RELU, 1, isa);
        failed += !run_linear(&rng, 2, 7, 3, 0, CNP_ACT_RELU, 2, isa);
        failed += !run_linear(&rng, 4, 1037, 33, 1, CNP_ACT_RELU, 2, isa);
        failed += !run_linear(&rng, 3, 33, 9, 1, CNP_ACT_NONE, 1, isa);
    }
    failed += !test_affine(&rng);
    failed += !test_eltwise(&rng, 1001);
    failed += !test_eltwise(&rng, 300007);
    failed += !test_sigmoid_extremes();
    failed += !test_nchw_to_cnhw(&rng);
    if (failed) {
        fprintf(stderr, "%d dense/elementwise checks failed\n", failed);
        return KT_FAIL;
    }
    return KT_PASS;
}
