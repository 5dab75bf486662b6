/* winograd.c -- 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"):
 * 36 multiplies per 4x4 output tile and channel pair instead of 144.
 *
 *   U = G g G^T     weights, 6x6 per (k, c), transformed and packed at plan
 *                   time in double precision
 *   V = B^T d B     input tiles (6x6, overlapping by 2), per call
 *   M = U . V       36 GEMMs (tiles, C) x (C, K) on canopy's GEMM
 *   Y = A^T M A     output tiles (4x4), + bias, + residual, ReLU, stored
 *
 * Two schedules, in one OpenMP region either way:
 *   blocks  (U fits in L2): threads take blocks of tiles small enough that
 *           a block's V and M stay in L2 too, and run all three steps on
 *           each (or, with too few tiles, split the output channels);
 *   phases  (larger U): all threads transform the input tiles, then share
 *           out the 36 GEMMs, so that each U matrix is streamed once per
 *           call (per super-block of tiles), then transform the output.
 * Work is handed out dynamically, so that a thread the OS preempts (a
 * busy shared machine) does not hold the others up for long.
 * Everything is vectorised over 16 channels:
 * the input rows a tile row needs are transposed once into a small
 * channel-interleaved band, so that every tile's 6x6 x 16 channels are 36
 * vector loads; the output is transposed back per tile. A block's V and M
 * are sized to stay in the core's L2 where the channel counts allow.
 * Compiled for AVX-512F with target attributes; conv.c only plans it where
 * the CPU has it. The same schedules run winograd_avx2.c's transforms
 * (through the plan's wino_kernels) on CPUs with AVX2 + FMA only.
 * bf16 (a bf16 plan on AVX512_BF16, as conv.c chooses per layer): U
 * is converted to bf16 pairs once here, the input transform rounds V to
 * bf16 as it stores it (winograd_tile.h's layout), and the 36 GEMMs run
 * gemm_bf16.c's micro-kernel (cnp_gemm_rows_bf16) into fp32 M; the
 * output transform, bias, residual and ReLU stay fp32. Same schedules,
 * with V taking half the scratch.
 */
#include "engine/winograd_tile.h"
#include "engine/avx512.h"
#include "engine/gemm_tile.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#define WINO_L2_BUDGET (768u * 1024u)   /* bytes of V + M per block */
#define WINO_MIN_BLOCK 16       /* tiles */
#define WINO_MAX_BLOCK 128      /* tiles */
#define WINO_U_L2 (1024u * 1024u)       /* larger U: the phased schedule */
#define WINO_PHASE_BYTES (16u * 1024u * 1024u)  /* V + M per super-block */
#define WINO_CHUNK 16           /* tiles per work item of a phase */

int cnp_wino_eligible(const cnp_conv_shape *s)
{
    return s->R == 3 && s->S == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 &&
           s->dil_w == 1;
}

int cnp_wino_tiles(const cnp_wino *w, int n)
{
    return n * w->TH * w->TW;
}

void cnp_wino_free(cnp_wino *w)
{
    if (!w)
        return;
    cnp_aligned_free(w->u);
    cnp_aligned_free(w->u2);
    free(w);
}

/* Phased: V and M of a super-block, shared, then each thread's band. */
static size_t phased_shared(const cnp_wino *w)
{
    return cnp_round_up((size_t)XI * w->tsb * (w->vs + w->Ks), 16);
}

size_t cnp_wino_scratch_floats(const cnp_wino *w)
{
    if (w->phased)
        return phased_shared(w) + (size_t)w->n_threads * 6 * w->xw * 16;
    return w->slice * (size_t)w->n_threads;
}

static const wino_kernels avx512_kernels, avx512_bf16_kernels;  /* the transforms' section */

cnp_wino *cnp_wino_new(cnp_ctx *ctx, const cnp_conv_shape *s, const float *wts, int n_threads,
                       cnp_isa isa, int bf16)
{
    /* G (6x3) of F(4x4, 3x3). */
    static const double G[6][3] = {
        { 1.0 / 4, 0, 0 },
        { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
        { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
        { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
        { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
        { 0, 0, 1 },
    };
    cnp_wino *w = NULL;
    float *tmp = NULL;          /* XI x (C, K) before packing */
    size_t ck, total, per_tile;

    w = cnp_calloc(ctx, 1, sizeof *w, "a Winograd plan");
    if (!w)
        goto fail;
    w->s = *s;
    w->n_threads = n_threads;
    w->isa = isa;
    w->bf16 = bf16 && isa == CNP_ISA_AVX512;
    w->kr = isa == CNP_ISA_AVX2 ? &cnp_wino_avx2_kernels
            : w->bf16           ? &avx512_bf16_kernels
                                : &avx512_kernels;
    w->TH = (s->P + 3) / 4;
    w->TW = (s->Q + 3) / 4;
    w->Cs = (int)cnp_round_up((size_t)s->C, 16);
    w->Ks = (int)cnp_round_up((size_t)s->K, 16);
    w->vs = w->bf16 ? w->Cs / 2 : w->Cs;
    w->xw = (int)cnp_round_up((size_t)w->TW * 4 + 2, 16);
    per_tile = (size_t)XI * (w->vs + w->Ks) * sizeof(float);
    w->tb = (int)(WINO_L2_BUDGET / per_tile) / 8 * 8;
    if (w->tb < WINO_MIN_BLOCK)
        w->tb = WINO_MIN_BLOCK;
    if (w->tb > WINO_MAX_BLOCK)
        w->tb = WINO_MAX_BLOCK;
    w->slice = cnp_round_up((size_t)XI * w->tb * (w->vs + w->Ks) + (size_t)6 * w->xw * 16, 16);
    w->phased = (size_t)XI * s->C * s->K * sizeof(float) > WINO_U_L2;
    w->tsb = (int)(WINO_PHASE_BYTES / per_tile) / 8 * 8;
    if (w->tsb < w->tb)
        w->tsb = w->tb;
    if (w->tsb > s->N * w->TH * w->TW)
        w->tsb = (int)cnp_round_up((size_t)s->N * w->TH * w->TW, 8);

    /* Weights: U[xi][c][k] = (G g[k][c] G^T)[xi], in double. */
    ck = (size_t)s->C * s->K;
    w->u_stride = cnp_gemm_bpanel_floats(s->C, s->K);
    if (!cnp_mul_size(ck, XI, &total) || !cnp_mul_size(w->u_stride, XI, &total)) {
        cnp_error(ctx, CNP_ERR_NOMEM, "Winograd weights for %d x %d channels too large", s->C,
                  s->K);
        goto fail;
    }
    tmp = cnp_aligned_alloc(ctx, ck * XI, sizeof *tmp, "Winograd weight transform");
    w->u = cnp_aligned_alloc(ctx, total, sizeof *w->u, "Winograd weights");
    if (!tmp || !w->u)
        goto fail;
    for (int k = 0; k < s->K; k++)
        for (int c = 0; c < s->C; c++) {
            const float *g = wts + ((size_t)k * s->C + c) * 9;
            double gg[6][3], u[6][6];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++)
                    gg[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] +
                               G[i][2] * g[2 * 3 + j];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                    u[i][j] = gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2];
            for (int xi = 0; xi < XI; xi++)
                tmp[(size_t)xi * ck + (size_t)c * s->K + k] = (float)u[xi / 6][xi % 6];
        }
    for (int xi = 0; xi < XI; xi++)
        cnp_gemm_bpanel_pack(w->u + (size_t)xi * w->u_stride, tmp + (size_t)xi * ck,
                             (size_t)s->K, s->C, s->K);
#if CNP_X86
    if (w->bf16) {
        /* The packed panels as bf16 pairs; the fp32 ones go. */
        const size_t pairs = cnp_gemm_bpanel_pairs(s->C, s->K);
        w->u2 = cnp_aligned_alloc(ctx, pairs * XI, sizeof *w->u2, "bf16 Winograd weights");
        if (!w->u2)
            goto fail;
        for (int xi = 0; xi < XI; xi++)
            cnp_gemm_b_to_bf16(w->u2 + (size_t)xi * pairs, w->u + (size_t)xi * w->u_stride,
                               s->C, s->K);
        cnp_aligned_free(w->u);
        w->u = NULL;
        w->u_stride = pairs;
    }
#endif
    cnp_aligned_free(tmp);
    return w;

fail:
    cnp_aligned_free(tmp);
    cnp_wino_free(w);
    return NULL;
}

/* ---- the transforms, on AVX-512F ------------------------------------- */

#if CNP_X86

#define WV __m512
#define WTARGET TARGET_AVX512
#define WINLINE static inline __attribute__((always_inline)) TARGET_AVX512

WINLINE __m512 wv_zero(void)
{
    return _mm512_setzero_ps();
}

WINLINE __m512 wv_add(__m512 a, __m512 b)
{
    return _mm512_add_ps(a, b);
}

WINLINE __m512 wv_sub(__m512 a, __m512 b)
{
    return _mm512_sub_ps(a, b);
}

WINLINE __m512 wv_fma(float a, __m512 b, __m512 c)
{
    return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c);
}

WINLINE __m512 wv_load(const float *p)
{
    return _mm512_load_ps(p);
}

WINLINE void wv_store(float *p, __m512 v)
{
    _mm512_store_ps(p, v);
}

WINLINE __m512 wv_mask_load(const float *p, ptrdiff_t off, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, wino_at(p, off));
}

WINLINE void wv_mask_store(float *p, ptrdiff_t off, __mmask16 m, __m512 v)
{
    _mm512_mask_storeu_ps((float *)wino_at(p, off), m, v);
}

WINLINE __m512 wv_relu(__m512 v)
{
    return _mm512_max_ps(_mm512_setzero_ps(), v);    /* keeps NaN */
}

/* In-place transpose of 16 rows of 16 floats. */
WINLINE void wv_transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + j], 128-bit lane L: element 4L + j of rows 4i .. 4i + 3 */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        const __m512 w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        r[j] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        r[4 + j] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

/* Channel i of four tiles: a 4x4 transpose of their 128-bit lanes. */
WINLINE void wv_tiles4(const __m512 o[4][16], int i, __m512 row[4])
{
    const __m512 t0 = _mm512_shuffle_f32x4(o[0][i], o[1][i], 0x44);
    const __m512 t1 = _mm512_shuffle_f32x4(o[0][i], o[1][i], 0xEE);
    const __m512 t2 = _mm512_shuffle_f32x4(o[2][i], o[3][i], 0x44);
    const __m512 t3 = _mm512_shuffle_f32x4(o[2][i], o[3][i], 0xEE);
    row[0] = _mm512_shuffle_f32x4(t0, t2, 0x88);
    row[1] = _mm512_shuffle_f32x4(t0, t2, 0xDD);
    row[2] = _mm512_shuffle_f32x4(t1, t3, 0x88);
    row[3] = _mm512_shuffle_f32x4(t1, t3, 0xDD);
}

#include "engine/winograd_xform.h"

static const wino_kernels avx512_kernels = {band_load, input_tile, output_tile, output_tiles4};

/* input_tile for bf16 plans: V's 16 channels rounded to bf16 (nearest
 * even), 32 bytes. */
static TARGET_BF16 void input_tile_bf16(float *V, size_t vstride, const float *xt, int xw,
                                        int j0)
{
    __m512 v[XI];
    sandwich(xt + (size_t)j0 * 16, (size_t)xw * 16, 16, bt6, 6, v);
#pragma GCC unroll 36
    for (int xi = 0; xi < XI; xi++)
        _mm256_storeu_si256((__m256i *)(V + (size_t)xi * vstride),
                            (__m256i)_mm512_cvtneps_pbh(v[xi]));
}

static const wino_kernels avx512_bf16_kernels = {band_load, input_tile_bf16, output_tile,
                                                 output_tiles4};

#else   /* not x86: never planned (conv.c plans Winograd on AVX-512 or AVX2 only) */

static const wino_kernels avx512_kernels = {NULL, NULL, NULL, NULL};
static const wino_kernels avx512_bf16_kernels = {NULL, NULL, NULL, NULL};

#endif

/* ---- blocks of tiles ---------------------------------------------------- */


/* Tiles [t0, t0 + count) of the call: V[xi][t - t0][c] for all c (V's
 * xi planes vstride floats apart, its rows w->vs). */
static void input_block(const wino_call *cl, float *V, size_t vstride, float *xt, int t0,
                        int count)
{
    const cnp_wino *w = cl->w;
    const cnp_conv_shape *s = &w->s;
    const int per_img = w->TH * w->TW;
    int t = t0;
    while (t < t0 + count) {
        /* A segment: tiles of one tile row. */
        const int img = t / per_img, th = t % per_img / w->TW, tw0 = t % w->TW;
        int tw1 = w->TW;
        if (tw1 - tw0 > t0 + count - t)
            tw1 = tw0 + (t0 + count - t);
        for (int c0 = 0; c0 < s->C; c0 += 16) {
            const int cw = s->C - c0 < 16 ? s->C - c0 : 16;
            w->kr->band_load(xt, w->xw, cl, img, th * 4 - s->pad_t, tw0 * 4 - s->pad_l,
                      (tw1 - tw0) * 4 + 2, c0, cw);
            for (int tw = tw0; tw < tw1; tw++)
                w->kr->input_tile(V + (size_t)(t + tw - tw0 - t0) * w->vs +
                                      (size_t)c0 * w->vs / w->Cs,
                                  vstride, xt, w->xw, (tw - tw0) * 4);
        }
        t += tw1 - tw0;
    }
}

/* Tiles [t, t + count) (their M rows from M on, Ks apart): groups of four
 * where they fit, else one by one. */
static void output_tiles(const wino_call *cl, const float *M, size_t mstride, int t, int count,
                         int k0, int k1)
{
    const cnp_wino *w = cl->w;
    const int per_img = w->TH * w->TW;
    for (int j = 0; j < count;) {
        const int tt = t + j, tw = tt % w->TW, th = tt % per_img / w->TW;
        const int four = j + 4 <= count && tw + 4 <= w->TW && (tw + 4) * 4 <= w->s.Q &&
                         (th + 1) * 4 <= w->s.P;
        for (int k = k0; k < k1; k += 16) {
            const int kw = k1 - k < 16 ? k1 - k : 16;
            if (four)
                w->kr->output_tiles4(cl, M + (size_t)j * w->Ks + k, mstride, tt, k, kw);
            else
                w->kr->output_tile(cl, M + (size_t)j * w->Ks + k, mstride, tt, k, kw);
        }
        j += four ? 4 : 1;
    }
}

/* M's plane xi, columns [k0, k1) = V's plane xi (rows tiles) x U[xi]:
 * fp32, or bf16 with fp32 M. */
static void xi_gemm(const cnp_wino *w, float *M, const float *V, int xi, int rows, int k0,
                    int k1)
{
    if (w->bf16)
        cnp_gemm_rows_bf16(M, (size_t)w->Ks, (const uint32_t *)(const void *)V, (size_t)w->vs,
                           rows, w->u2 + (size_t)xi * w->u_stride, w->s.C, w->s.K, k0, k1, 0);
    else
        cnp_gemm_rows(M, (size_t)w->Ks, V, (size_t)w->Cs, rows, w->u + (size_t)xi * w->u_stride,
                      w->s.C, w->s.K, k0, k1, 0, w->isa);
}

static void run_block(const wino_call *cl, float *V, float *M, float *xt, int t0, int count,
                      int k0, int k1)
{
    const cnp_wino *w = cl->w;
    const size_t vstride = (size_t)w->tb * w->vs, mstride = (size_t)w->tb * w->Ks;
    input_block(cl, V, vstride, xt, t0, count);
    for (int xi = 0; xi < XI; xi++)
        xi_gemm(w, M + xi * mstride, V + xi * vstride, xi, count, k0, k1);
    output_tiles(cl, M, mstride, t0, count, k0, k1);
}

/* The phased schedule (inside the caller's parallel region). */
static void run_phased(const wino_call *cl, int T, float *scratch)
{
    const cnp_wino *w = cl->w;
    float *V = scratch, *M = scratch + (size_t)XI * w->tsb * w->vs;
    float *xt = scratch + phased_shared(w) + (size_t)omp_get_thread_num() * 6 * w->xw * 16;
    const size_t vstride = (size_t)w->tsb * w->vs, mstride = (size_t)w->tsb * w->Ks;

    for (int s0 = 0; s0 < T; s0 += w->tsb) {
        const int cnt = T - s0 < w->tsb ? T - s0 : w->tsb;
        /* Chunks of WINO_CHUNK tiles, smaller (whole fours) when that
         * leaves a thread without work: a small layer at batch 1. */
        int chunk = (int)cnp_round_up((size_t)(cnt + 2 * w->n_threads - 1) / (2 * w->n_threads), 4);
        if (chunk > WINO_CHUNK)
            chunk = WINO_CHUNK;
        const int chunks = (cnt + chunk - 1) / chunk;
#pragma omp for schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            const int t0 = ch * chunk;
            input_block(cl, V + (size_t)t0 * w->vs, vstride, xt, s0 + t0,
                        cnt - t0 < chunk ? cnt - t0 : chunk);
        }
#pragma omp for schedule(dynamic, 1)
        for (int xi = 0; xi < XI; xi++)
            xi_gemm(w, M + xi * mstride, V + xi * vstride, xi, cnt, 0, w->s.K);
#pragma omp for schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            const int t0 = ch * chunk;
            output_tiles(cl, M + (size_t)t0 * w->Ks, mstride, s0 + t0,
                         cnt - t0 < chunk ? cnt - t0 : chunk, 0, w->s.K);
        }
    }
}

void cnp_wino_run(const cnp_wino *w, float *y, const float *x, int n, const float *bias,
                  const float *residual, cnp_act act, float *scratch)
{
    const int T = cnp_wino_tiles(w, n), nt = w->n_threads;
    const int K = w->s.K;
    wino_call cl;
    int tb, nblocks, ksplit;

    cl.w = w;
    cl.y = y;
    cl.x = x;
    cl.n = n;
    cl.bias = bias;
    cl.residual = residual;
    cl.act = act;
    if (w->phased) {
#pragma omp parallel num_threads(nt)
        run_phased(&cl, T, scratch);
        return;
    }
    /* Blocks: no larger than the plan's, and enough for every thread. */
    tb = (int)cnp_round_up((size_t)(T + nt - 1) / nt, 8);
    if (tb > w->tb)
        tb = w->tb;
    nblocks = (T + tb - 1) / tb;
    /* Too few blocks to go round: split the output channels instead, in
     * whole 48-wide GEMM panels. */
    ksplit = nblocks < nt && K >= 96;

#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), tn = omp_get_num_threads();
        float *V = scratch + w->slice * (size_t)t;
        float *M = V + (size_t)XI * w->tb * w->vs;
        float *xt = M + (size_t)XI * w->tb * w->Ks;
        if (!ksplit) {
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nblocks; b++) {
                const int t0 = b * tb;
                run_block(&cl, V, M, xt, t0, T - t0 < tb ? T - t0 : tb, 0, K);
            }
        } else {
            const int panels = (K + 47) / 48;
            const int k0 = panels * t / tn * 48;
            int k1 = panels * (t + 1) / tn * 48;
            if (k1 > K)
                k1 = K;
            for (int t0 = 0; k1 > k0 && t0 < T; t0 += tb)
                run_block(&cl, V, M, xt, t0, T - t0 < tb ? T - t0 : tb, k0, k1);
        }
    }
}
