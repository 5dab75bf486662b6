/* test_gemm_bf16.c -- the bf16 GEMM (gemm_bf16.c, `--precision bf16`)
 * through bf16 convolution plans, against cnp_conv2d_ref (double
 * accumulation) on the same operands rounded to bf16 by this test; and
 * bf16 Winograd (winograd.c with cnp_gemm_rows_bf16) against Winograd
 * F(4x4, 3x3) in double on its bf16 operands (wino_ref below). GEMM: every
 * packing path of B (dense 1x1, same-shape 3x3, strided im2col, a 7x7
 * stem), odd inner dimensions (C*R*S = 27, 5, 261: a zero-padded last
 * pair, in one Kd block or the last of two), partial tiles (K not a
 * multiple of 8, columns not of 16 or 48), the row-split path (few
 * columns), bias, residual (separate and in place) and ReLU.
 *
 * Tolerance: |got - want| <= 1e-6 + 2e-6 * sum|terms|. Only the order of
 * the fp32 accumulation differs from the reference (measured at most 1e-7
 * relative here); a dropped or misplaced term, a wrong pairing of k, or a
 * B operand left unrounded exceeds it. The test also checks that the
 * result is NOT within that tolerance of the unrounded fp32 convolution:
 * a plan that silently ran fp32 fails.
 *
 * Winograd: the transformed weights U = G g G^T (double, then float, then
 * bf16 as the plan rounds them) and the transformed tiles V = B^T d B,
 * rounded to bf16, are the operands; the input is integers in [-40, 40],
 * so that V (integers up to 4000) is exact in fp32 and the engine and the
 * reference round the same V to bf16 (values over 256 do round). The
 * rest is fp32 accumulation and fp32 output transform, under the same
 * tolerance (sum|terms| through |A^T| |M| |A|; measured at most 3e-8
 * relative here). Cases:
 * both schedules (blocks, phased over two super-blocks), the
 * output-channel split, C over one 256-channel block of the GEMM, odd C
 * (a zero-padded pair), C and K not multiples
 * of 16, partial edge tiles, residual (separate and in place), ReLU.
 *
 * Exit 77 where the CPU has no AVX512_BF16.
 */
#include "engine/kernels.h"
#include "engine/engine.h"
#include "kernel_test.h"

#include <string.h>

#define ATOL 1e-6
#define RTOL 2e-6

typedef struct bf_case {
    const char *name;
    int N, C, H, W, K, R, S;
    int stride, pad;
    int residual;   /* 0 none, 1 separate buffer, 2 in place (y == residual) */
    int relu;
    int threads;
    const char *path;   /* expected cnp_conv_path() */
    int wino;           /* 1: Winograd forced, in bf16 (integer input) */
} bf_case;

static const bf_case cases[] = {
    {"1x1 dense, partial tiles", 2, 64, 9, 7, 20, 1, 1, 1, 0, 0, 1, 2, "gemm-bf16", 0},
    {"1x1 odd Kd=5, residual", 1, 5, 12, 12, 13, 1, 1, 1, 0, 1, 1, 1, "gemm-bf16", 0},
    {"3x3 same, odd Kd=27", 2, 3, 13, 11, 16, 3, 3, 1, 1, 0, 1, 2, "gemm-bf16", 0},
    {"3x3 same, Kd=261 in two blocks", 1, 29, 10, 10, 24, 3, 3, 1, 1, 1, 0, 2, "gemm-bf16", 0},
    {"3x3 same, in-place residual", 3, 16, 8, 9, 40, 3, 3, 1, 1, 2, 1, 2, "gemm-bf16", 0},
    {"3x3 stride 2 im2col", 2, 32, 15, 14, 24, 3, 3, 2, 1, 0, 1, 2, "gemm-bf16", 0},
    {"7x7 stride 2 stem", 1, 3, 38, 34, 16, 7, 7, 2, 3, 0, 1, 2, "gemm-bf16", 0},
    {"1x1 stride 2 projection", 3, 24, 16, 16, 36, 1, 1, 2, 0, 0, 0, 1, "gemm-bf16", 0},
    {"1x1 stride 2, few columns", 2, 24, 12, 12, 36, 1, 1, 2, 0, 0, 0, 2, "gemm-rows-bf16", 0},
    {"3x3 few columns: rows split", 1, 64, 4, 4, 64, 3, 3, 1, 1, 1, 1, 2, "gemm-rows-bf16", 0},
    {"wino blocks, bias, ReLU", 2, 16, 12, 12, 16, 3, 3, 1, 1, 0, 1, 2, "winograd-bf16", 1},
    {"wino odd C=5, K=20, edges, residual", 2, 5, 11, 9, 20, 3, 3, 1, 1, 1, 0, 2,
     "winograd-bf16", 1},
    {"wino C=29, K=24, in-place residual", 1, 29, 10, 13, 24, 3, 3, 1, 1, 2, 1, 1,
     "winograd-bf16", 1},
    {"wino K split (few tiles), C=64", 1, 64, 8, 8, 96, 3, 3, 1, 1, 1, 1, 2, "winograd-bf16", 1},
    {"wino C=301: two channel blocks", 2, 301, 9, 10, 40, 3, 3, 1, 1, 0, 1, 2, "winograd-bf16",
     1},
    {"wino phased, two super-blocks", 4, 96, 60, 60, 96, 3, 3, 1, 1, 0, 1, 2, "winograd-bf16",
     1},
};

/* fp32 -> nearest bf16 (ties to even), as a float: the operand the
 * kernel should have multiplied. Written independently of the engine. */
static float to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Winograd F(4x4, 3x3) in double on bf16 operands: want = act(A^T M A +
 * bias (+ res)) with M = sum_c U V, U = bf16(float(G g G^T)) and V =
 * bf16(B^T d B); mag: the same sums over absolute values (|A^T| |M| |A|
 * + |bias| + |res|). Written from the textbook matrices (Lavin & Gray),
 * not from the engine's transforms. */
static void wino_ref(float *want, float *mag, const float *x, const float *w, const float *bias,
                     const float *res, cnp_act act, const cnp_conv_shape *s)
{
    static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    static const double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                    {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                    {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
    static const double AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0},
                                    {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const size_t xcols = (size_t)s->N * HW, ycols = (size_t)s->N * PQ;
    double *u = malloc((size_t)s->K * s->C * 36 * sizeof *u);
    double *v = malloc((size_t)s->C * 36 * sizeof *v);
    if (!u || !v)
        exit(KT_HARD_ERROR);
    for (int k = 0; k < s->K; k++)
        for (int c = 0; c < s->C; c++) {
            const float *g = w + ((size_t)k * s->C + c) * 9;
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    double acc = 0.0;
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++)
                            acc += G[i][a] * g[a * 3 + b] * G[j][b];
                    u[((size_t)k * s->C + c) * 36 + i * 6 + j] = to_bf16((float)acc);
                }
        }
    for (int n = 0; n < s->N; n++)
        for (int th = 0; th < (s->P + 3) / 4; th++)
            for (int tw = 0; tw < (s->Q + 3) / 4; tw++) {
                for (int c = 0; c < s->C; c++) {
                    double d[6][6];
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            const int ih = th * 4 - s->pad_t + i, iw = tw * 4 - s->pad_l + j;
                            d[i][j] = ih < 0 || ih >= s->H || iw < 0 || iw >= s->W
                                          ? 0.0
                                          : x[(size_t)c * xcols + n * HW + (size_t)ih * s->W + iw];
                        }
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            double acc = 0.0;
                            for (int a = 0; a < 6; a++)
                                for (int b = 0; b < 6; b++)
                                    acc += BT[i][a] * d[a][b] * BT[j][b];
                            v[(size_t)c * 36 + i * 6 + j] = to_bf16((float)acc);
                        }
                }
                for (int k = 0; k < s->K; k++) {
                    double m[36] = {0}, ma[36] = {0};
                    for (int c = 0; c < s->C; c++)
                        for (int xi = 0; xi < 36; xi++) {
                            const double t = u[((size_t)k * s->C + c) * 36 + xi] *
                                             v[(size_t)c * 36 + xi];
                            m[xi] += t;
                            ma[xi] += fabs(t);
                        }
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) {
                            const int p = th * 4 + a, q = tw * 4 + b;
                            double y = 0.0, ya = 0.0;
                            if (p >= s->P || q >= s->Q)
                                continue;
                            for (int i = 0; i < 6; i++)
                                for (int j = 0; j < 6; j++) {
                                    const double f = AT[a][i] * AT[b][j];
                                    y += f * m[i * 6 + j];
                                    ya += fabs(f) * ma[i * 6 + j];
                                }
                            const size_t o = (size_t)k * ycols + n * PQ + (size_t)p * s->Q + q;
                            y += bias[k];
                            ya += fabs(bias[k]);
                            if (res) {
                                y += res[o];
                                ya += fabs(res[o]);
                            }
                            if (act == CNP_ACT_RELU && y < 0.0)
                                y = 0.0;
                            want[o] = (float)y;
                            mag[o] = (float)ya;
                        }
                }
            }
    free(u);
    free(v);
}

static int run_case(const bf_case *cc, kt_rng *rng)
{
    const cnp_conv_opts opts = {cc->threads, 1, cc->wino ? CNP_CONV_WINOGRAD : CNP_CONV_GEMM,
                                CNP_ISA_AUTO, CNP_WINO_BF16, 0, 0, 0};
    cnp_conv_shape s;
    cnp_conv_plan *plan;
    cnp_ctx ctx;
    size_t nx, nw, ny, crs;
    float *x, *w, *bias, *res, *y, *want, *fp32, *mag, *xb, *wb, *ax, *aw, *ab, *ar, *scratch;
    int ok = 1;
    const char *path;

    memset(&s, 0, sizeof s);
    s.N = cc->N, s.C = cc->C, s.H = cc->H, s.W = cc->W;
    s.K = cc->K, s.R = cc->R, s.S = cc->S;
    s.stride_h = s.stride_w = cc->stride;
    s.pad_t = s.pad_l = s.pad_b = s.pad_r = cc->pad;
    s.dil_h = s.dil_w = 1;
    if (!cnp_conv_shape_finish(&s)) {
        fprintf(stderr, "%s: bad shape\n", cc->name);
        return 0;
    }
    crs = (size_t)s.C * s.R * s.S;
    nx = (size_t)s.C * s.N * s.H * s.W;
    nw = (size_t)s.K * crs;
    ny = (size_t)s.K * s.N * s.P * s.Q;
    {
        /* operand, its bf16 rounding or |.|, outputs */
        float **xs[] = {&x, &xb, &ax}, **ws[] = {&w, &wb, &aw}, **ks[] = {&bias, &ab};
        float **ys[] = {&res, &ar, &y, &want, &fp32, &mag};
        for (size_t i = 0; i < 3; i++) {
            *xs[i] = kt_floats(nx);
            *ws[i] = kt_floats(nw);
        }
        for (size_t i = 0; i < 2; i++)
            *ks[i] = kt_floats((size_t)s.K);
        for (size_t i = 0; i < 6; i++)
            *ys[i] = kt_floats(ny);
    }
    kt_fill(rng, x, nx, 1.0f);
    if (cc->wino)
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)((int)(kt_next(rng) % 81) - 40);
    kt_fill(rng, w, nw, 1.0f / (float)crs);
    kt_fill(rng, bias, (size_t)s.K, 0.5f);
    kt_fill(rng, res, ny, 1.0f);
    for (size_t i = 0; i < nx; i++)
        xb[i] = to_bf16(x[i]);
    for (size_t i = 0; i < nw; i++)
        wb[i] = to_bf16(w[i]);
    kt_abs(ax, xb, nx);
    kt_abs(aw, wb, nw);
    kt_abs(ab, bias, (size_t)s.K);
    kt_abs(ar, res, ny);

    const cnp_act act = cc->relu ? CNP_ACT_RELU : CNP_ACT_NONE;
    const float *r = cc->residual ? res : NULL;
    if (cc->wino) {
        wino_ref(want, mag, x, w, bias, r, act, &s);
    } else {
        cnp_conv2d_ref(want, xb, wb, bias, r, act, &s);
        cnp_conv2d_ref(mag, ax, aw, ab, cc->residual ? ar : NULL, CNP_ACT_NONE, &s);
    }
    cnp_conv2d_ref(fp32, x, w, bias, r, act, &s);

    cnp_ctx_clear(&ctx);
    plan = cnp_conv_plan_new_opts(&ctx, &s, w, bias, &opts);
    if (!plan) {
        fprintf(stderr, "%s: cnp_conv_plan_new_opts failed: %s\n", cc->name, ctx.msg);
        exit(KT_HARD_ERROR);
    }
    path = cnp_conv_path(plan, s.N);
    if (strcmp(path, cc->path)) {
        fprintf(stderr, "FAIL %s: path %s, expected %s\n", cc->name, path, cc->path);
        ok = 0;
    }
    scratch = cnp_aligned_alloc(&ctx, cnp_conv_plan_scratch_floats(plan) + 16, sizeof(float),
                                "scratch");
    if (!scratch)
        exit(KT_HARD_ERROR);
    if (cc->residual == 2)
        memcpy(y, res, ny * sizeof *y);
    cnp_conv_run(plan, y, x, s.N, cc->residual == 2 ? y : r, act, scratch);
    if (!kt_close(cc->name, y, want, mag, ny, ATOL, RTOL))
        ok = 0;
    /* The rounding must show: bf16 operands move some outputs by far more
     * than the tolerance, relative to the exact fp32 convolution. */
    if (kt_count_off(y, fp32, mag, ny, ATOL, RTOL) == 0) {
        fprintf(stderr, "FAIL %s: the output matches the unrounded fp32 convolution: the "
                "plan did not run in bf16\n", cc->name);
        ok = 0;
    }
    if (ok)
        printf("ok   %-34s %-14s %5zu outputs, worst |got - want| / sum|terms| %.1e\n",
               cc->name, path, ny, kt_worst(y, want, mag, ny, ATOL));
    cnp_aligned_free(scratch);
    cnp_conv_plan_free(plan);
    free(x), free(xb), free(ax), free(w), free(wb), free(aw), free(bias), free(ab);
    free(res), free(ar), free(y), free(want), free(fp32), free(mag);
    return ok;
}

/* CNP_WINO_AUTO's rule (conv.c): bf16 Winograd from 32 input channels,
 * fp32 below; FP32 keeps every layer fp32. Returns 1 when it holds. */
static int check_wino_rule(void)
{
    static const struct { int C; cnp_wino_prec wino; const char *path; } want[] = {
        {16, CNP_WINO_AUTO, "winograd"}, {32, CNP_WINO_AUTO, "winograd-bf16"},
        {64, CNP_WINO_FP32, "winograd"}, {16, CNP_WINO_BF16, "winograd-bf16"}};
    int ok = 1;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cnp_conv_opts o = {2, 1, CNP_CONV_WINOGRAD, CNP_ISA_AUTO, want[i].wino, 0, 0, 0};
        cnp_conv_shape s = {.N = 1, .C = want[i].C, .H = 8, .W = 8, .K = 16, .R = 3, .S = 3,
                            .stride_h = 1, .stride_w = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1,
                            .pad_r = 1, .dil_h = 1, .dil_w = 1};
        float *w = kt_floats((size_t)s.K * s.C * 9);
        cnp_conv_plan *plan;
        cnp_ctx ctx;
        cnp_ctx_clear(&ctx);
        memset(w, 0, (size_t)s.K * s.C * 9 * sizeof *w);
        if (!cnp_conv_shape_finish(&s) || !(plan = cnp_conv_plan_new_opts(&ctx, &s, w, NULL, &o)))
            exit(KT_HARD_ERROR);
        if (strcmp(cnp_conv_path(plan, 1), want[i].path)) {
            fprintf(stderr, "FAIL Winograd precision rule: C=%d wino=%d runs %s, expected %s\n",
                    want[i].C, (int)want[i].wino, cnp_conv_path(plan, 1), want[i].path);
            ok = 0;
        }
        cnp_conv_plan_free(plan);
        free(w);
    }
    if (ok)
        printf("ok   Winograd precision: AUTO bf16 from 32 input channels, FP32 and BF16 forced\n");
    return ok;
}

int main(void)
{
    kt_rng rng = {20261129};
    int fails = 0;
    if (!cnp_engine_bf16_available()) {
        printf("SKIP: no AVX512_BF16 on this CPU\n");
        return KT_SKIP;
    }
    /* The GEMM path forced, then Winograd forced (in bf16). */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!run_case(&cases[i], &rng))
            fails++;
    if (!check_wino_rule())
        fails++;
    return fails ? KT_FAIL : KT_PASS;
}
