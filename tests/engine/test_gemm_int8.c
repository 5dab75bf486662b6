/* test_gemm_int8.c -- the int8 GEMM (gemm_int8.c, `--precision int8`)
 * through int8 convolution plans, against cnp_conv2d_ref (double
 * accumulation) on the same operands quantised and dequantised by this
 * test: weights symmetric per output channel (s_w = max|w| / 127, q =
 * round(w / s_w)), activations u8 with the scale and zero point of the
 * calibrated range (kernels.h, cnp_quant_params: s = (max - min) / 255,
 * z = round(-min / s), q = clamp(round(x / s) + z, 0, 255)), x' = (q - z) s.
 *
 * Cases: every packing path of B (dense 1x1, same-shape 3x3, strided
 * im2col, a 7x7 stem), inner dimensions that end in a partial quad (5,
 * 27, 147, and 261 in two Kd blocks), partial tiles (K not a multiple of
 * 8, columns not of 16 or 48), the row-split path (few columns), bias,
 * residual (separate and in place), ReLU; inputs that are >= 0 (after a
 * ReLU: zero point 0) and signed ones (zero point > 0, which the plan's
 * bias must take off again, padding included), and a range narrower than
 * the data (clipped activations). A 3x3 stride-1 plan that takes bf16
 * Winograd at its planned batch (on CPUs with bf16) runs the int8 GEMM,
 * with the zero point's bias, at a small one.
 *
 * Tolerance: |got - want| <= 1e-6 + 4e-6 * (sum|w' x'| + z s sum|w'| +
 * |bias| + |residual|). The int32 sums are exact; what differs from the
 * reference is their conversion to fp32, one multiply and the zero
 * point's share cancelled in fp32 (hence the z s sum|w'| term). A
 * wrongly quantised operand (off by one step), a misplaced k or a wrong
 * zero-point correction exceeds it. The test also checks that the result
 * is NOT within that tolerance of the unquantised fp32 convolution: a plan
 * that silently ran fp32 fails.
 *
 * Exit 77 where the CPU has no AVX512_VNNI.
 */
#include "engine/kernels.h"
#include "engine/engine.h"
#include "kernel_test.h"

#include <string.h>

#define ATOL 1e-6
#define RTOL 4e-6

typedef struct q_case {
    const char *name;
    int N, C, H, W, K, R, S;
    int stride, pad;
    int residual;   /* 0 none, 1 separate buffer, 2 in place (y == residual) */
    int relu;
    int threads;
    int sign;       /* 0: x >= 0; 1: x signed */
    float narrow;   /* calibrated range = narrow * the data's range (clipping when < 1) */
    cnp_conv_algo algo;
    const char *path;   /* expected cnp_conv_path() */
    int plan_n;         /* the plan's largest batch (0: N, the batch run) */
} q_case;

static const q_case cases[] = {
    {"1x1 dense, partial tiles", 2, 64, 9, 7, 20, 1, 1, 1, 0, 0, 1, 2, 0, 1, CNP_CONV_GEMM,
     "gemm-int8", 0},
    {"1x1 Kd=5, residual, signed", 1, 5, 12, 12, 13, 1, 1, 1, 0, 1, 1, 1, 1, 1, CNP_CONV_GEMM,
     "gemm-int8", 0},
    {"3x3 same, Kd=27, signed (padding)", 2, 3, 13, 11, 16, 3, 3, 1, 1, 0, 1, 2, 1, 1,
     CNP_CONV_GEMM, "gemm-int8", 0},
    {"3x3 same, Kd=261 in two blocks", 1, 29, 10, 10, 24, 3, 3, 1, 1, 1, 0, 2, 0, 1,
     CNP_CONV_GEMM, "gemm-int8", 0},
    {"3x3 same, in-place residual", 3, 16, 8, 9, 40, 3, 3, 1, 1, 2, 1, 2, 0, 1, CNP_CONV_GEMM,
     "gemm-int8", 0},
    {"3x3 stride 2 im2col, clipped", 2, 32, 15, 14, 24, 3, 3, 2, 1, 0, 1, 2, 0, 0.6f,
     CNP_CONV_GEMM, "gemm-int8", 0},
    {"7x7 stride 2 stem, signed", 1, 3, 38, 34, 16, 7, 7, 2, 3, 0, 1, 2, 1, 1, CNP_CONV_GEMM,
     "gemm-int8", 0},
    {"1x1 stride 2 projection", 3, 24, 16, 16, 36, 1, 1, 2, 0, 0, 0, 1, 0, 1, CNP_CONV_GEMM,
     "gemm-int8", 0},
    {"1x1 stride 2, few columns", 2, 24, 12, 12, 36, 1, 1, 2, 0, 0, 0, 2, 0, 1, CNP_CONV_GEMM,
     "gemm-rows-int8", 0},
    {"3x3 few columns: rows split", 1, 64, 4, 4, 64, 3, 3, 1, 1, 1, 1, 2, 1, 0.8f,
     CNP_CONV_GEMM, "gemm-rows-int8", 0},
    /* Planned for 4 (Winograd's size: bf16 Winograd where the CPU has
     * bf16), run at 1: the int8 GEMM, with its own bias. */
    {"3x3 auto, small batch of a Winograd plan", 1, 32, 12, 12, 32, 3, 3, 1, 1, 1, 1, 2, 1, 1,
     CNP_CONV_AUTO, "gemm-rows-int8", 4},
};

/* The quantised-then-dequantised operands, computed here from the
 * documented rules (not by the engine's code). */
static void quant_x(float *xq, const float *x, size_t n, float lo, float hi, float *s_out,
                    float *z_out)
{
    const float sf = (hi - lo) / 255.0f;   /* the documented formula, in float */
    float z, inv;
    z = nearbyintf(-lo / sf) + 0.0f;
    inv = 1.0f / sf;
    for (size_t i = 0; i < n; i++) {
        float q = nearbyintf(x[i] * inv);
        if (q < -z)
            q = -z;
        if (q > 255.0f - z)
            q = 255.0f - z;
        xq[i] = q * sf;     /* (q + z - z) s */
    }
    *s_out = sf;
    *z_out = z;
}

static void quant_w(float *wq, float *rowabs, const float *w, int K, size_t crs)
{
    for (int k = 0; k < K; k++) {
        const float *wr = w + (size_t)k * crs;
        float mx = 0.0f, sw, inv;
        double sum = 0.0;
        for (size_t i = 0; i < crs; i++)
            mx = fabsf(wr[i]) > mx ? fabsf(wr[i]) : mx;
        sw = mx > 0.0f ? mx / 127.0f : 1.0f;
        inv = 1.0f / sw;
        for (size_t i = 0; i < crs; i++) {
            float q = nearbyintf(wr[i] * inv);
            q = q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q;
            wq[(size_t)k * crs + i] = q * sw;
            sum += fabs((double)q * sw);
        }
        rowabs[k] = (float)sum;
    }
}

static int run_case(const q_case *cc, kt_rng *rng)
{
    cnp_conv_opts opts = {cc->threads, 0, cc->algo, CNP_ISA_AUTO, CNP_WINO_AUTO, 1, 0, 0};
    cnp_conv_shape s;
    cnp_conv_plan *plan;
    cnp_ctx ctx;
    size_t nx, nw, ny, crs, pq;
    float *x, *w, *bias, *res, *y, *want, *fp32, *mag, *xq, *wq, *ax, *aw, *ab, *ar, *rowabs;
    float *scratch, lo = 0.0f, hi = 0.0f, sx, zx;
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
    pq = (size_t)s.N * s.P * s.Q;
    ny = (size_t)s.K * pq;
    x = kt_floats(nx), xq = kt_floats(nx), ax = kt_floats(nx);
    w = kt_floats(nw), wq = kt_floats(nw), aw = kt_floats(nw);
    bias = kt_floats((size_t)s.K), ab = kt_floats((size_t)s.K), rowabs = kt_floats((size_t)s.K);
    res = kt_floats(ny), ar = kt_floats(ny), y = kt_floats(ny), want = kt_floats(ny);
    fp32 = kt_floats(ny), mag = kt_floats(ny);

    kt_fill(rng, x, nx, 2.0f);
    if (!cc->sign)
        for (size_t i = 0; i < nx; i++)
            x[i] = fabsf(x[i]);
    for (size_t i = 0; i < nx; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    lo *= cc->narrow;
    hi *= cc->narrow;
    kt_fill(rng, w, nw, 1.0f / (float)crs);
    kt_fill(rng, bias, (size_t)s.K, 0.5f);
    kt_fill(rng, res, ny, 1.0f);
    quant_x(xq, x, nx, lo, hi, &sx, &zx);
    quant_w(wq, rowabs, w, s.K, crs);
    kt_abs(ax, xq, nx);
    kt_abs(aw, wq, nw);
    kt_abs(ab, bias, (size_t)s.K);
    kt_abs(ar, res, ny);

    const cnp_act act = cc->relu ? CNP_ACT_RELU : CNP_ACT_NONE;
    const float *r = cc->residual ? res : NULL;
    cnp_conv2d_ref(want, xq, wq, bias, r, act, &s);
    cnp_conv2d_ref(mag, ax, aw, ab, cc->residual ? ar : NULL, CNP_ACT_NONE, &s);
    for (int k = 0; k < s.K; k++)
        for (size_t j = 0; j < pq; j++)
            mag[(size_t)k * pq + j] += zx * sx * rowabs[k];
    cnp_conv2d_ref(fp32, x, w, bias, r, act, &s);

    cnp_ctx_clear(&ctx);
    opts.xmin = lo;
    opts.xmax = hi;
    s.N = cc->plan_n ? cc->plan_n : cc->N;
    plan = cnp_conv_plan_new_opts(&ctx, &s, w, bias, &opts);
    s.N = cc->N;
    if (!plan) {
        fprintf(stderr, "%s: cnp_conv_plan_new_opts failed: %s\n", cc->name, ctx.msg);
        exit(KT_HARD_ERROR);
    }
    path = cnp_conv_path(plan, s.N);
    if (strcmp(path, cc->path) || !cnp_conv_plan_int8(plan)) {
        fprintf(stderr, "FAIL %s: path %s, expected %s\n", cc->name, path, cc->path);
        ok = 0;
    }
    scratch = cnp_aligned_alloc(&ctx, cnp_conv_plan_scratch_floats(plan) + 16, sizeof(float),
                                "scratch");
    if (!scratch)
        exit(KT_HARD_ERROR);
    if (cc->residual == 2)
        memcpy(y, res, ny * sizeof *y);
    if (cc->plan_n) {
        /* At its planned size the plan runs bf16 Winograd where the CPU
         * has bf16, else the int8 GEMM. */
        const char *big = cnp_conv_path(plan, cc->plan_n);
        const char *want_big = cnp_engine_bf16_available() ? "winograd-bf16" : "gemm-int8";
        if (strcmp(big, want_big)) {
            fprintf(stderr, "FAIL %s: at batch %d path %s, expected %s\n", cc->name,
                    cc->plan_n, big, want_big);
            ok = 0;
        }
    }
    cnp_conv_run(plan, y, x, s.N, cc->residual == 2 ? y : r, act, scratch);
    if (!kt_close(cc->name, y, want, mag, ny, ATOL, RTOL))
        ok = 0;
    /* The quantisation must show against the exact fp32 convolution. */
    if (kt_count_off(y, fp32, mag, ny, ATOL, RTOL) == 0) {
        fprintf(stderr, "FAIL %s: the output matches the unquantised fp32 convolution: "
                "the plan did not run in int8\n", cc->name);
        ok = 0;
    }
    if (ok)
        printf("ok   %-36s %-15s z=%3.0f %5zu outputs, worst |got - want| / mag %.1e\n",
               cc->name, path, zx, ny, kt_worst(y, want, mag, ny, ATOL));
    cnp_aligned_free(scratch);
    cnp_conv_plan_free(plan);
    free(x), free(xq), free(ax), free(w), free(wq), free(aw), free(bias), free(ab);
    free(rowabs), free(res), free(ar), free(y), free(want), free(fp32), free(mag);
    return ok;
}

int main(void)
{
    kt_rng rng = {20261206};
    int fails = 0;
    if (!cnp_engine_int8_available()) {
        printf("SKIP: no AVX512_VNNI on this CPU\n");
        return KT_SKIP;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!run_case(&cases[i], &rng))
            fails++;
    return fails ? KT_FAIL : KT_PASS;
}
