/* test_conv.c -- cnp_conv_run (plan + fast path) against cnp_conv2d_ref on
 * random data: 1x1 / 3x3 / 7x7 / rectangular kernels, stride 1 and 2,
 * asymmetric padding, dilation 1 and 2, batch 1 and 3, residual (separate
 * and in place) and ReLU on and off, a run batch n below the plan's N, the
 * row-split path (few columns) and the column-block path, 1 to 3 threads;
 * all of it on canopy's AVX-512 GEMM (where the CPU has it) and again on
 * the OpenBLAS path.
 *
 * Tolerance: |got - want| <= 1e-6 + rtol * sum|terms|, where sum|terms|
 * is the same convolution of |x|, |w|, |bias| (+ |residual|). rtol is
 * 1e-5 for the direct paths, whose fp32 rounding stays below 3e-7 here,
 * and 3e-5 for Winograd F(4x4, 3x3), whose transforms add error (up to
 * about 3e-6 here). One dropped or misplaced term (about sum|terms| /
 * (C*R*S)), or one wrong transform coefficient, exceeds either.
 */
#include "engine/kernels.h"
#include "engine/engine.h"
#include "kernel_test.h"

#include <string.h>

typedef struct conv_case {
    const char *name;
    int N, C, H, W, K, R, S;
    int sh, sw, pt, pl, pb, pr, dh, dw;
    int n;          /* batch run (<= N) */
    int residual;   /* 0 none, 1 separate buffer, 2 in place (y == residual) */
    int relu;
    int bias;
    int threads;
    int wino_only;  /* large: only on the Winograd pass */
} conv_case;

static const conv_case cases[] = {
    /* name                      N  C   H   W   K   R  S  sh sw pt pl pb pr dh dw  n res relu bias thr wino */
    { "1x1 direct",              3, 37, 11, 13, 45, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 3, 1, 1, 1, 2, 0 },
    { "1x1 direct n<N",          3, 37, 11, 13, 45, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 2, 1, 1, 2, 0 },
    { "1x1 direct row split",    1, 70, 3, 5, 130, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 0 },
    { "1x1 stride 2",            3, 33, 13, 9, 70, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2, 0, 0, 1, 2, 0 },
    { "3x3 pad 1 in place",      3, 19, 17, 15, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2, 1, 1, 2, 0 },
    { "3x3 stride 2",            3, 21, 16, 17, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 0, 1, 1, 3, 0 },
    { "7x7 stride 2 stem",       2, 3, 37, 41, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 2, 0, 1, 1, 2, 0 },
    { "3x3 dilation 2",          1, 13, 12, 19, 17, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 0, 1, 1, 0 },
    { "3x3 asymmetric",          3, 11, 14, 13, 29, 3, 3, 2, 1, 0, 2, 1, 0, 1, 2, 3, 0, 1, 1, 2, 0 },
    { "5x3 no bias",             2, 7, 15, 11, 9, 5, 3, 1, 2, 2, 1, 2, 1, 1, 1, 2, 0, 0, 0, 2, 0 },
    { "3x3 row split",           1, 64, 4, 4, 200, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0 },
    { "3x3 row split odd K",     3, 35, 3, 5, 77, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 2, 0 },
    { "3x3 many blocks",         2, 64, 32, 33, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 0 },
    { "3x3 many blocks n<N",     3, 64, 32, 33, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 3, 0 },
    { "3x3 pad beyond image",    2, 5, 2, 1, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 2, 1, 1, 1, 2, 0 },
    { "1x1 wide K",              1, 256, 8, 8, 1030, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 0 },
    { "3x3 deep C",              1, 300, 9, 7, 50, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0 },
    { "3x3 stride 3 dilation 2", 2, 6, 23, 29, 20, 3, 3, 3, 3, 1, 2, 0, 1, 2, 2, 2, 1, 1, 1, 2, 0 },
    { "3x3 stride 2 dilation 2", 3, 9, 21, 35, 27, 3, 3, 2, 2, 2, 1, 2, 3, 2, 2, 3, 2, 0, 1, 2, 0 },
    { "1x1 direct odd columns",  3, 70, 17, 19, 36, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 3, 2, 1, 1, 2, 0 },
    { "3x3 wide row split",      1, 40, 2, 9, 260, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 0 },
    /* Winograd's phased schedule over two super-blocks of tiles */
    { "3x3 625 tiles",           1, 96, 100, 100, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 1 },
};

/* Runs one case; returns 1 on pass. */
static int run_case(const conv_case *cc, kt_rng *rng, double rtol, cnp_conv_algo algo,
                    cnp_isa isa)
{
    const cnp_conv_opts opts = {cc->threads, 0, algo, isa, CNP_WINO_AUTO, 0, 0, 0};
    cnp_conv_shape s = { 0 }, sr;
    cnp_ctx ctx;
    cnp_conv_plan *plan = NULL;
    float *x = NULL, *w = NULL, *bias = NULL, *res = NULL, *y = NULL, *want = NULL;
    float *ax = NULL, *aw = NULL, *abias = NULL, *ares = NULL, *mag = NULL, *scratch = NULL;
    size_t xn, wn, yn, sf;
    int ok = 0;
    char what[160];

    cnp_ctx_clear(&ctx);
    s.N = cc->N; s.C = cc->C; s.H = cc->H; s.W = cc->W;
    s.K = cc->K; s.R = cc->R; s.S = cc->S;
    s.stride_h = cc->sh; s.stride_w = cc->sw;
    s.pad_t = cc->pt; s.pad_l = cc->pl; s.pad_b = cc->pb; s.pad_r = cc->pr;
    s.dil_h = cc->dh; s.dil_w = cc->dw;
    if (!cnp_conv_shape_finish(&s)) {
        fprintf(stderr, "%s: shape has no output\n", cc->name);
        exit(KT_HARD_ERROR);
    }
    sr = s;
    sr.N = cc->n;
    xn = (size_t)s.C * cc->n * s.H * s.W;
    wn = (size_t)s.K * s.C * s.R * s.S;
    yn = (size_t)s.K * cc->n * s.P * s.Q;
    x = kt_floats(xn);
    w = kt_floats(wn);
    bias = kt_floats(s.K);
    res = kt_floats(yn);
    y = kt_floats(yn);
    want = kt_floats(yn);
    ax = kt_floats(xn);
    aw = kt_floats(wn);
    abias = kt_floats(s.K);
    ares = kt_floats(yn);
    mag = kt_floats(yn);
    kt_fill(rng, x, xn, 1.0f);
    kt_fill(rng, w, wn, 0.5f);
    kt_fill(rng, bias, s.K, 0.5f);
    kt_fill(rng, res, yn, 1.0f);
    kt_abs(ax, x, xn);
    kt_abs(aw, w, wn);
    kt_abs(abias, bias, s.K);
    kt_abs(ares, res, yn);

    plan = cnp_conv_plan_new_opts(&ctx, &s, w, cc->bias ? bias : NULL, &opts);
    if (!plan) {
        fprintf(stderr, "%s: cnp_conv_plan_new failed: %s\n", cc->name, ctx.msg);
        exit(KT_HARD_ERROR);
    }
    /* The ISA asked for is the one that runs: an AVX2 plan says so. */
    if ((isa == CNP_ISA_AVX2) != (strstr(cnp_conv_path(plan, cc->n), "avx2") != NULL)) {
        fprintf(stderr, "%s: path %s for isa %s\n", cc->name, cnp_conv_path(plan, cc->n),
                cnp_isa_name(isa));
        exit(KT_HARD_ERROR);
    }
    sf = cnp_conv_plan_scratch_floats(plan);
    scratch = cnp_aligned_alloc(&ctx, sf ? sf : 1, sizeof(float), "scratch");
    if (!scratch) {
        fprintf(stderr, "%s: %s\n", cc->name, ctx.msg);
        exit(KT_HARD_ERROR);
    }
    /* Poison the scratch and the output: the kernel must overwrite both. */
    for (size_t i = 0; i < sf; i++)
        scratch[i] = NAN;
    for (size_t i = 0; i < yn; i++)
        y[i] = cc->residual == 2 ? res[i] : NAN;

    cnp_conv2d_ref(want, x, w, cc->bias ? bias : NULL, cc->residual ? res : NULL,
                   cc->relu ? CNP_ACT_RELU : CNP_ACT_NONE, &sr);
    cnp_conv2d_ref(mag, ax, aw, cc->bias ? abias : NULL, cc->residual ? ares : NULL,
                   CNP_ACT_NONE, &sr);
    cnp_conv_run(plan, y, x, cc->n, cc->residual == 1 ? res : cc->residual == 2 ? y : NULL,
                 cc->relu ? CNP_ACT_RELU : CNP_ACT_NONE, scratch);

    snprintf(what, sizeof what, "conv %s (N=%d n=%d C=%d %dx%d K=%d %dx%d s%d,%d p%d,%d,%d,%d "
             "d%d,%d -> %dx%d, %d threads)", cc->name, cc->N, cc->n, cc->C, cc->H, cc->W, cc->K,
             cc->R, cc->S, cc->sh, cc->sw, cc->pt, cc->pl, cc->pb, cc->pr, cc->dh, cc->dw, s.P,
             s.Q, cc->threads);
    ok = kt_close(what, y, want, mag, yn, 1e-6, rtol);
    {
        double worst = 0.0;
        for (size_t i = 0; i < yn; i++) {
            const double e = fabs((double)y[i] - want[i]) / (1e-30 + mag[i]);
            if (e > worst)
                worst = e;
        }
        printf("# max |err| / sum|terms| = %.2e\n", worst);
    }
    if (ok)
        printf("ok %s\n", what);

    cnp_conv_plan_free(plan);
    cnp_aligned_free(scratch);
    free(x); free(w); free(bias); free(res); free(y); free(want);
    free(ax); free(aw); free(abias); free(ares); free(mag);
    return ok;
}

static int test_shape_finish(void)
{
    cnp_conv_shape s = { 0 };
    int ok = 1;
    s.N = 1; s.C = 3; s.H = 224; s.W = 200; s.K = 64; s.R = 7; s.S = 7;
    s.stride_h = s.stride_w = 2; s.pad_t = s.pad_l = s.pad_b = s.pad_r = 3;
    s.dil_h = s.dil_w = 1;
    /* PyTorch: floor((224 + 6 - 7) / 2) + 1 = 112, floor((200 + 6 - 7) / 2) + 1 = 100 */
    if (!cnp_conv_shape_finish(&s) || s.P != 112 || s.Q != 100) {
        fprintf(stderr, "FAIL shape_finish 7x7/2: got %dx%d, want 112x100\n", s.P, s.Q);
        ok = 0;
    }
    s.H = 2; s.W = 2; s.R = 5; s.S = 5; s.pad_t = s.pad_l = s.pad_b = s.pad_r = 0;
    if (cnp_conv_shape_finish(&s)) {
        fprintf(stderr, "FAIL shape_finish accepted a 5x5 kernel on a 2x2 image\n");
        ok = 0;
    }
    s.H = 9; s.W = 9; s.R = 3; s.S = 3; s.dil_h = s.dil_w = 2; s.stride_h = s.stride_w = 1;
    /* 9 - 2*2 - 1 + 1 = 5 */
    if (!cnp_conv_shape_finish(&s) || s.P != 5 || s.Q != 5) {
        fprintf(stderr, "FAIL shape_finish dilation 2: got %dx%d, want 5x5\n", s.P, s.Q);
        ok = 0;
    }
    return ok;
}

static int test_bad_plan(void)
{
    cnp_conv_shape s = { 0 };
    cnp_ctx ctx;
    float w[9] = { 0 };
    cnp_ctx_clear(&ctx);
    s.N = 1; s.C = 1; s.H = 4; s.W = 4; s.K = 1; s.R = 3; s.S = 3;
    s.stride_h = s.stride_w = 1; s.dil_h = s.dil_w = 1;
    s.P = 7; s.Q = 2;   /* inconsistent with the geometry */
    if (cnp_conv_plan_new(&ctx, &s, w, NULL, 1) || ctx.status != CNP_ERR_SHAPE) {
        fprintf(stderr, "FAIL plan_new accepted an inconsistent output shape\n");
        return 0;
    }
    cnp_conv_plan_free(NULL);
    return 1;
}

/* Output of the path algo forces (canopy's GEMM or Winograd) on isa for s
 * with bias, residual and ReLU; a new array the caller frees. */
static float *path_output(const cnp_conv_shape *s, const float *x, const float *w,
                          const float *bias, const float *res, cnp_conv_algo algo, cnp_isa isa)
{
    const cnp_conv_opts opts = {2, 0, algo, isa, CNP_WINO_AUTO, 0, 0, 0};
    const size_t yn = (size_t)s->K * s->N * s->P * s->Q;
    cnp_ctx ctx;
    cnp_conv_plan *plan;
    float *y = kt_floats(yn), *scratch;
    cnp_ctx_clear(&ctx);
    plan = cnp_conv_plan_new_opts(&ctx, s, w, bias, &opts);
    scratch = plan ? cnp_aligned_alloc(&ctx, cnp_conv_plan_scratch_floats(plan) + 1,
                                       sizeof(float), "scratch") : NULL;
    if (!scratch) {
        fprintf(stderr, "path_output: %s\n", ctx.msg);
        exit(KT_HARD_ERROR);
    }
    if ((algo == CNP_CONV_WINOGRAD) != !strncmp(cnp_conv_path(plan, s->N), "winograd", 8)) {
        fprintf(stderr, "path_output: path %s for a forced %s\n", cnp_conv_path(plan, s->N),
                algo == CNP_CONV_WINOGRAD ? "Winograd" : "GEMM");
        exit(KT_HARD_ERROR);
    }
    cnp_conv_run(plan, y, x, s->N, res, CNP_ACT_RELU, scratch);
    cnp_aligned_free(scratch);
    cnp_conv_plan_free(plan);
    return y;
}

/* The AVX2 kernels compute the same FMA chains and the same epilogue as
 * the AVX-512 ones: equal bits, NaN (kept by ReLU) included, on canopy's
 * GEMM (a 3x3 stride-2 layer) and on Winograd (3x3 stride 1). */
static int test_avx2_bits(kt_rng *rng, cnp_conv_algo algo, int stride)
{
    cnp_conv_shape s = { 0 };
    float *x, *w, *bias, *res, *a, *b;
    size_t xn, yn;
    int ok;

    s.N = 2; s.C = 19; s.H = 17; s.W = 15; s.K = 23; s.R = 3; s.S = 3;
    s.stride_h = s.stride_w = stride; s.pad_t = s.pad_l = s.pad_b = s.pad_r = 1;
    s.dil_h = s.dil_w = 1;
    if (!cnp_conv_shape_finish(&s))
        exit(KT_HARD_ERROR);
    xn = (size_t)s.C * s.N * s.H * s.W;
    yn = (size_t)s.K * s.N * s.P * s.Q;
    x = kt_floats(xn); w = kt_floats((size_t)s.K * s.C * 9); bias = kt_floats(s.K);
    res = kt_floats(yn);
    kt_fill(rng, x, xn, 1.0f);
    kt_fill(rng, w, (size_t)s.K * s.C * 9, 0.5f);
    kt_fill(rng, bias, s.K, 0.5f);
    kt_fill(rng, res, yn, 1.0f);
    x[s.W + 3] = NAN;           /* spreads to the outputs whose window holds it */
    a = path_output(&s, x, w, bias, res, algo, CNP_ISA_AVX512);
    b = path_output(&s, x, w, bias, res, algo, CNP_ISA_AVX2);
    ok = memcmp(a, b, yn * sizeof *a) == 0;
    {
        size_t nans = 0;        /* the NaN must have reached some outputs */
        for (size_t i = 0; i < yn; i++)
            nans += isnan(a[i]) != 0;
        ok = ok && nans > 0 && nans < yn;
    }
    printf("%s AVX2 %s output bit-identical to AVX-512's (3x3/%d, bias, residual, ReLU, NaN)\n",
           ok ? "ok" : "FAIL", algo == CNP_CONV_WINOGRAD ? "Winograd" : "GEMM", stride);
    free(x); free(w); free(bias); free(res); free(a); free(b);
    return ok;
}

int main(void)
{
    kt_rng rng = { 20240611u };
    int failed = 0;
    if (!test_shape_finish())
        failed++;
    if (!test_bad_plan())
        failed++;
    /* Every path: Winograd (forced wherever a layer is eligible) and
     * canopy's GEMM, on AVX-512 and on AVX2 + FMA, then OpenBLAS; a path
     * is skipped only where the CPU lacks it. */
    for (int pass = 0; pass < 5; pass++) {
        static const cnp_conv_algo algos[5] = { CNP_CONV_WINOGRAD, CNP_CONV_GEMM,
                                                CNP_CONV_WINOGRAD, CNP_CONV_GEMM,
                                                CNP_CONV_OPENBLAS };
        static const cnp_isa isas[5] = { CNP_ISA_AVX512, CNP_ISA_AVX512, CNP_ISA_AVX2,
                                         CNP_ISA_AVX2, CNP_ISA_GENERIC };
        static const char *const names[5] = { "Winograd F(4x4, 3x3) where eligible, AVX-512",
                                               "canopy's AVX-512 GEMM",
                                               "Winograd F(4x4, 3x3) where eligible, AVX2 + FMA",
                                               "canopy's AVX2 + FMA GEMM",
                                               "OpenBLAS sgemm + im2col" };
        const int wino = algos[pass] == CNP_CONV_WINOGRAD;
        if (cnp_isa_resolve(isas[pass]) != isas[pass]) {
            printf("# %s: not on this CPU\n", names[pass]);
            continue;
        }
        printf("# %s\n", names[pass]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            if ((wino || !cases[i].wino_only) &&
                !run_case(&cases[i], &rng, wino ? 3e-5 : 1e-5, algos[pass], isas[pass]))
                failed++;
    }
    if (cnp_isa_resolve(CNP_ISA_AVX512) == CNP_ISA_AVX512 &&
        cnp_isa_resolve(CNP_ISA_AVX2) == CNP_ISA_AVX2) {
        failed += !test_avx2_bits(&rng, CNP_CONV_GEMM, 2);
        failed += !test_avx2_bits(&rng, CNP_CONV_WINOGRAD, 1);
    }
    if (failed) {
        fprintf(stderr, "%d conv checks failed\n", failed);
        return KT_FAIL;
    }
    return KT_PASS;
}
