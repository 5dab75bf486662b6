/* test_pool.c -- max/average pooling and global pooling against their
 * `_ref` twins on random data: ResNet's 3x3/2 pad-1 max pool, ceil-mode
 * shapes whose last window runs past the padding, asymmetric padding,
 * count_include_pad on and off, batch 1 and 3, odd sizes, 1 to 3 threads;
 * the max pool both vectorised (AVX-512, where the CPU has it) and plain C.
 * Also a few values worked out by hand, so that the references themselves
 * are pinned down.
 */
#include "engine/kernels.h"
#include "kernel_test.h"

#include <string.h>

typedef struct pool_case {
    const char *name;
    int N, C, H, W, R, S, sh, sw, pt, pl, pb, pr;
    int ceil_mode;
    int count_include_pad;
    int threads;
} pool_case;

static const pool_case cases[] = {
    /* name                  N  C   H   W  R  S sh sw pt pl pb pr ceil incl thr */
    { "3x3/2 pad 1",         3, 17, 37, 41, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 2 },
    { "3x3/2 pad 1 large",   2, 64, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 2 },
    { "2x2/2 odd ceil",      1, 9, 13, 11, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 2 },
    { "3x3/2 ceil pad 1",    3, 5, 10, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3 },
    { "3x3/2 ceil excl",     3, 5, 10, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 1 },
    { "asymmetric",          2, 7, 9, 14, 3, 2, 1, 2, 0, 1, 2, 0, 0, 1, 2 },
    { "asymmetric excl",     2, 7, 9, 14, 3, 2, 1, 2, 0, 1, 2, 0, 0, 0, 2 },
    { "4x4 global-like",     3, 33, 4, 4, 4, 4, 1, 1, 0, 0, 0, 0, 0, 1, 2 },
    { "1x1/2 subsample",     1, 8, 7, 9, 1, 1, 2, 2, 0, 0, 0, 0, 0, 1, 2 },
};

/* Output size as PyTorch computes it: floor or ceil of (in + pads - k) /
 * stride + 1; in ceil mode a last window must start inside the image or
 * the leading padding. */
static int out_size(int in, int k, int stride, int pa, int pb, int ceil_mode)
{
    int span = in + pa + pb - k;
    int o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pa)
        o--;
    return o;
}

static int run_case(const pool_case *pc, kt_rng *rng, int is_max, cnp_conv_algo algo,
                    cnp_isa isa)
{
    const cnp_exec ex = cnp_exec_make(pc->threads, algo, isa);
    cnp_pool_shape s = { 0 };
    float *x, *y, *want;
    size_t xn, yn;
    int ok;
    char what[160];

    s.N = pc->N; s.C = pc->C; s.H = pc->H; s.W = pc->W; s.R = pc->R; s.S = pc->S;
    s.stride_h = pc->sh; s.stride_w = pc->sw;
    s.pad_t = pc->pt; s.pad_l = pc->pl; s.pad_b = pc->pb; s.pad_r = pc->pr;
    s.count_include_pad = pc->count_include_pad;
    s.P = out_size(s.H, s.R, s.stride_h, s.pad_t, s.pad_b, pc->ceil_mode);
    s.Q = out_size(s.W, s.S, s.stride_w, s.pad_l, s.pad_r, pc->ceil_mode);
    xn = (size_t)s.C * s.N * s.H * s.W;
    yn = (size_t)s.C * s.N * s.P * s.Q;
    x = kt_floats(xn);
    y = kt_floats(yn);
    want = kt_floats(yn);
    /* Negative values everywhere in one channel: padding must not win. */
    kt_fill(rng, x, xn, 1.0f);
    for (size_t i = 0; i < (size_t)s.N * s.H * s.W; i++)
        x[i] = -1.0f - fabsf(x[i]);
    for (size_t i = 0; i < yn; i++)
        y[i] = NAN;
    /* A few NaN past channel 0: a max must keep them (as PyTorch does). */
    if (is_max)
        for (size_t i = (size_t)s.N * s.H * s.W; i < xn; i += 97)
            x[i] = NAN;
    if (is_max) {
        cnp_maxpool2d_ref(want, x, &s);
        cnp_maxpool2d(y, x, &s, &ex);
    } else {
        cnp_avgpool2d_ref(want, x, &s);
        cnp_avgpool2d(y, x, &s, &ex);
    }
    snprintf(what, sizeof what, "%s %s (N=%d C=%d %dx%d k%dx%d s%d,%d p%d,%d,%d,%d -> %dx%d)",
             is_max ? "maxpool" : "avgpool", pc->name, s.N, s.C, s.H, s.W, s.R, s.S,
             s.stride_h, s.stride_w, s.pad_t, s.pad_l, s.pad_b, s.pad_r, s.P, s.Q);
    ok = kt_close(what, y, want, NULL, yn, is_max ? 0.0 : 1e-6, is_max ? 0.0 : 1e-6);
    if (ok && is_max) {
        /* Padding never wins: channel 0 is all below -1. */
        for (size_t i = 0; i < (size_t)s.N * s.P * s.Q && ok; i++)
            if (!(y[i] <= -1.0f)) {
                fprintf(stderr, "FAIL %s: a padded zero won the max (%g)\n", what, y[i]);
                ok = 0;
            }
    }
    if (ok)
        printf("ok %s\n", what);
    free(x);
    free(y);
    free(want);
    return ok;
}

static int run_global(kt_rng *rng, int N, int C, int HW, int threads)
{
    const size_t xn = (size_t)C * N * HW, yn = (size_t)N * C;
    float *x = kt_floats(xn), *y = kt_floats(yn), *want = kt_floats(yn);
    char what[96];
    int ok;
    kt_fill(rng, x, xn, 3.0f);
    cnp_global_avgpool_ref(want, x, N, C, HW);
    cnp_global_avgpool(y, x, N, C, HW, threads);
    snprintf(what, sizeof what, "global avgpool N=%d C=%d HW=%d", N, C, HW);
    ok = kt_close(what, y, want, NULL, yn, 1e-6, 1e-6);
    cnp_global_maxpool_ref(want, x, N, C, HW);
    cnp_global_maxpool(y, x, N, C, HW, threads);
    snprintf(what, sizeof what, "global maxpool N=%d C=%d HW=%d", N, C, HW);
    ok = kt_close(what, y, want, NULL, yn, 0.0, 0.0) && ok;
    /* A NaN anywhere in a plane makes its max NaN (PyTorch's max
     * propagates it); the other planes keep their values. */
    x[(size_t)HW / 2] = NAN;
    x[xn - 1] = NAN;
    cnp_global_maxpool(y, x, N, C, HW, threads);
    if (!isnan(y[0]) || !isnan(y[yn - 1]) || (yn > 2 && y[yn / 2] != want[yn / 2])) {
        fprintf(stderr, "FAIL global maxpool NaN N=%d C=%d HW=%d: %g %g\n", N, C, HW, y[0],
                y[yn - 1]);
        ok = 0;
    }
    if (ok)
        printf("ok global pools N=%d C=%d HW=%d\n", N, C, HW);
    free(x);
    free(y);
    free(want);
    return ok;
}

/* Hand-worked values: a 1x1x3x3 image 1..9. */
static int test_by_hand(void)
{
    static const float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    cnp_pool_shape s = { 0 };
    const cnp_exec ex = cnp_exec_make(1, CNP_CONV_AUTO, CNP_ISA_AUTO);
    float y[4], g[2];
    int ok = 1;
    s.N = 1; s.C = 1; s.H = 3; s.W = 3; s.R = 2; s.S = 2; s.stride_h = s.stride_w = 2;
    s.pad_t = s.pad_l = s.pad_b = s.pad_r = 1; s.P = 2; s.Q = 2;
    /* Windows (pad 1, 2x2, stride 2): {1}, {2,3}, {4,7}, {5,6,8,9}. */
    cnp_maxpool2d(y, x, &s, &ex);
    if (y[0] != 1 || y[1] != 3 || y[2] != 7 || y[3] != 9) {
        fprintf(stderr, "FAIL maxpool by hand: %g %g %g %g\n", y[0], y[1], y[2], y[3]);
        ok = 0;
    }
    s.count_include_pad = 0;
    cnp_avgpool2d(y, x, &s, &ex);
    if (y[0] != 1 || y[1] != 2.5f || y[2] != 5.5f || y[3] != 7) {
        fprintf(stderr, "FAIL avgpool excl by hand: %g %g %g %g\n", y[0], y[1], y[2], y[3]);
        ok = 0;
    }
    s.count_include_pad = 1;
    cnp_avgpool2d(y, x, &s, &ex);
    if (y[0] != 0.25f || y[1] != 1.25f || y[2] != 2.75f || y[3] != 7) {
        fprintf(stderr, "FAIL avgpool incl by hand: %g %g %g %g\n", y[0], y[1], y[2], y[3]);
        ok = 0;
    }
    cnp_global_avgpool(g, x, 1, 1, 9, 1);
    cnp_global_maxpool(g + 1, x, 1, 1, 9, 1);
    if (g[0] != 5 || g[1] != 9) {
        fprintf(stderr, "FAIL global pools by hand: %g %g\n", g[0], g[1]);
        ok = 0;
    }
    return ok;
}

int main(void)
{
    kt_rng rng = { 77u };
    int failed = 0;
    if (!test_by_hand())
        failed++;
    /* The AVX-512 and AVX2 max pools (where the CPU has them), then plain C. */
    for (int pass = 0; pass < 3; pass++) {
        static const char *const names[] = {"AVX-512", "AVX2", "plain C"};
        if ((pass == 0 && !cnp_gemm_available()) || (pass == 1 && !cnp_gemm_avx2_available()))
            continue;
        const cnp_conv_algo algo = pass < 2 ? CNP_CONV_AUTO : CNP_CONV_OPENBLAS;
        const cnp_isa isa = pass == 1 ? CNP_ISA_AVX2 : CNP_ISA_AUTO;
        printf("# %s\n", names[pass]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            failed += !run_case(&cases[i], &rng, 1, algo, isa);
            failed += !run_case(&cases[i], &rng, 0, algo, isa);
        }
    }
    failed += !run_global(&rng, 3, 70, 49, 2);
    failed += !run_global(&rng, 1, 2048, 16, 2);
    failed += !run_global(&rng, 2, 5, 1, 1);
    failed += !run_global(&rng, 4, 512, 64, 3);
    if (failed) {
        fprintf(stderr, "%d pooling checks failed\n", failed);
        return KT_FAIL;
    }
    return KT_PASS;
}
