/* gemm_int8.c -- the int8 variant of canopy's GEMM (`--precision int8`):
 * weights quantised to int8 per output channel (symmetric), activations
 * to u8 with a calibrated scale and zero point, products summed in int32
 * by vpdpbusd, on CPUs with AVX512_VNNI (checked at run time).
 *
 * vpdpbusd multiplies quads: lane j of the int32 accumulator gets
 * sum over t < 4 of u8 b[4j + t] * s8 a[4j + t]. So the inner dimension is
 * taken four k at a time, as gemm_bf16.c takes it two at a time:
 *   - A (weights, packed once by cnp_gemm_a_pack_int8) holds, per 8-row
 *     panel and k quad, the 8 rows' (k .. k+3) int8 weights as 32-bit
 *     words, which the micro-kernel broadcasts;
 *   - B (activations) is packed in fp32 by gemm.c's packers, then each
 *     quad of packed rows is quantised and interleaved, so that lane j of
 *     a vector holds column j's quad (cnp_gemm_b_to_u8).
 * A tile row's int32 sums are converted to fp32 and multiplied by the
 * row's scale (s_x * s_w[row]) before gemm_tile.h's epilogue; the zero
 * point's share of the sum (qz * sum of the row's weights, times the
 * scale) is a constant per row, which conv.c folds into the bias.
 * The sums are exact: |u8 * s8| <= 255 * 127, so 2^31 is reached only
 * past 66000 terms (ResNets have at most 4608).
 */
#include "engine/gemm_tile.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cnp_gemm_int8_available(void)
{
#if CNP_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

void cnp_quant_params(float xmin, float xmax, float *scale, float *zero)
{
    float s;
    if (xmin > 0.0f)
        xmin = 0.0f;
    if (xmax < 0.0f)
        xmax = 0.0f;
    s = (xmax - xmin) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s))   /* an activation that is always 0 */
        s = 1.0f;
    *scale = s;
    *zero = nearbyintf(-xmin / s) + 0.0f;   /* never -0 */
    if (*zero > 255.0f)
        *zero = 255.0f;
}

/* Per-row weights: q = round(w / s_w), s_w = max|w| / 127 (1 for a row of
 * zeros). */
static float row_scale(const float *w, int Kd)
{
    float mx = 0.0f;
    for (int k = 0; k < Kd; k++)
        if (fabsf(w[k]) > mx)
            mx = fabsf(w[k]);
    return mx > 0.0f ? mx / 127.0f : 1.0f;
}

static int8_t quant_w(float w, float inv)
{
    float q = nearbyintf(w * inv);
    return (int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
}

cnp_status cnp_gemm_a_fill_int8(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, size_t lda,
                                float xmin, float xmax)
{
    const size_t mp = cnp_round_up((size_t)pa->M, MR);
    size_t total;
    float sx, zx;
    int8_t *q;

    if (!cnp_mul_size(mp, cnp_round_up((size_t)pa->Kd, 4) / 4, &total))
        return cnp_error(ctx, CNP_ERR_NOMEM, "packed weights of %d x %d too large", pa->M,
                         pa->Kd);
    pa->a4 = cnp_aligned_alloc(ctx, total, sizeof *pa->a4, "int8 convolution weights");
    pa->qmul = cnp_aligned_alloc(ctx, mp, sizeof *pa->qmul, "int8 scales");
    pa->qsum = cnp_aligned_alloc(ctx, mp, sizeof *pa->qsum, "int8 weight sums");
    q = malloc((size_t)pa->Kd);
    if (!pa->a4 || !pa->qmul || !pa->qsum || !q) {
        free(q);
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory packing int8 weights");
    }
    cnp_quant_params(xmin, xmax, &sx, &zx);
    pa->qinv = 1.0f / sx;
    pa->qz = zx;
    memset(pa->a4, 0, total * sizeof *pa->a4);
    for (size_t row = 0; row < mp; row++) {
        int32_t sum = 0;
        float sw = 1.0f;
        if (row < (size_t)pa->M) {
            const float *ar = a + row * lda;
            sw = row_scale(ar, pa->Kd);
            for (int k = 0; k < pa->Kd; k++) {
                q[k] = quant_w(ar[k], 1.0f / sw);
                sum += q[k];
            }
            /* kc is a multiple of 4, so every block starts at a whole
             * quad: block k0 at k0 / 4 quads per padded row. */
            for (int k0 = 0; k0 < pa->Kd; k0 += pa->kc) {
                const int kcur = pa->Kd - k0 < pa->kc ? pa->Kd - k0 : pa->kc;
                const int kq = (kcur + 3) / 4;
                uint32_t *pan = pa->a4 + (size_t)k0 / 4 * mp + row / MR * MR * (size_t)kq;
                for (int k = 0; k < kcur; k++)
                    pan[(size_t)(k / 4) * MR + row % MR] |=
                        (uint32_t)(uint8_t)q[k0 + k] << (8 * (k % 4));
            }
        }
        pa->qmul[row] = sx * sw;
        pa->qsum[row] = sum;
    }
    free(q);
    return CNP_OK;
}

#if CNP_X86       /* the kernels (gemm.c calls them on AVX-512 only) */

#define TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* The quantiser: u8 = round(x / s) clamped to [-qz, 255 - qz] (integers,
 * so clamping before rounding is the same), then + qz; NaN goes to 0. */
typedef struct quant {
    __m512 inv, lo, hi;
    __m512i z;
} quant;

static inline __attribute__((always_inline)) TARGET_VNNI quant quant_make(float qinv, float qz)
{
    quant q;
    q.inv = _mm512_set1_ps(qinv);
    q.lo = _mm512_set1_ps(-qz);
    q.hi = _mm512_set1_ps(255.0f - qz);
    q.z = _mm512_set1_epi32((int)qz);
    return q;
}

/* 16 columns of row r of a quad, quantised, in byte r of each lane. */
static inline __attribute__((always_inline)) TARGET_VNNI __m512i quant_row(const quant *q,
                                                                           __m512 x, int r)
{
    const __m512 y = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, q->inv), q->lo), q->hi);
    return _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(y), q->z), 8 * r);
}

TARGET_VNNI void cnp_gemm_pack_b_u8_dense(uint32_t *dst, const float *src, size_t lds, int k0,
                                          int kc, size_t j0, int w, float qinv, float qz)
{
    const int kq = (kc + 3) / 4;
    const quant qu = quant_make(qinv, qz);
    for (int k = 0; k < kq; k++) {
        const int rows = kc - 4 * k < 4 ? kc - 4 * k : 4;
        const float *s[4];
        for (int r = 0; r < 4; r++) {
            s[r] = src + (size_t)(k0 + 4 * k + (r < rows ? r : 0)) * lds + j0;
            /* the next quad's rows: far apart, short, not caught by the
             * hardware prefetchers */
            if (4 * (k + 1) + r < kc)
                for (int i = 0; i < w; i += 16)
                    _mm_prefetch((const char *)(s[r] + 4 * lds + i), _MM_HINT_T0);
        }
        for (int d0 = 0; d0 < w; d0 += NR) {
            const int wp = w - d0 < NR ? w - d0 : NR;
            const int ldd = (int)cnp_round_up((size_t)wp, 16);
            uint32_t *d = dst + (size_t)d0 * kq + (size_t)k * ldd;
            for (int t = 0; t < ldd; t += 16) {
                const __mmask16 m = lane_mask(0, w - d0 - t);
                __m512i word = _mm512_setzero_si512();
                for (int r = 0; r < rows; r++)
                    word = _mm512_or_si512(
                        word, quant_row(&qu, _mm512_maskz_loadu_ps(m, s[r] + d0 + t), r));
                _mm512_store_si512((void *)(d + t), word);
            }
        }
    }
}

TARGET_VNNI void cnp_gemm_b_to_u8(uint32_t *dst, const float *src, int kc, int w, float qinv,
                                  float qz)
{
    const int kq = (kc + 3) / 4;
    const quant qu = quant_make(qinv, qz);
    for (int jp = 0; jp * NR < w; jp++) {
        const int wp = w - jp * NR < NR ? w - jp * NR : NR;
        const int ldd = (int)cnp_round_up((size_t)wp, 16);
        const float *s = src + (size_t)jp * NR * kc;
        uint32_t *d = dst + (size_t)jp * NR * kq;
        for (int k = 0; k < kq; k++) {
            const int rows = kc - 4 * k < 4 ? kc - 4 * k : 4;
            for (int t = 0; t < ldd; t += 16) {
                __m512i word = _mm512_setzero_si512();
                for (int r = 0; r < rows; r++)
                    word = _mm512_or_si512(
                        word, quant_row(&qu, _mm512_load_ps(s + (size_t)(4 * k + r) * ldd + t), r));
                _mm512_store_si512((void *)(d + (size_t)k * ldd + t), word);
            }
        }
    }
}

/* One 8 x (16 * NV) tile: per k quad, NV vectors of B quads and one
 * broadcast A quad per row. */
static inline __attribute__((always_inline)) TARGET_VNNI void
int8_body(const ukr_args *g, const int NV)
{
    __m512i acc[MR][3];
    const uint32_t *a = g->a2, *b = g->b2;
    const int kq = (g->kc + 3) / 4;

#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm512_setzero_si512();

    for (int k = 0; k < kq; k++) {
        __m512i bv[3];
        /* 8 quads of A per k: one cache line every 2 k. */
        if (g->pf && !(k & 1))
            _mm_prefetch((const char *)((const uint32_t *)g->pf + (size_t)k * MR), _MM_HINT_T1);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_load_si512((const void *)(b + 16 * v));
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512i ai = _mm512_set1_epi32((int)a[i]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], bv[v], ai);
        }
        a += MR;
        b += 16 * NV;
    }

#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        if (i < g->mr) {
            const __m512 m = _mm512_set1_ps(g->qmul[i]);
            __m512 f[3];
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                f[v] = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][v]), m);
            ukr_store_row(g, i, f, NV);
        }
}

static TARGET_VNNI void int8_8x48(const ukr_args *g) { int8_body(g, 3); }
static TARGET_VNNI void int8_8x32(const ukr_args *g) { int8_body(g, 2); }
static TARGET_VNNI void int8_8x16(const ukr_args *g) { int8_body(g, 1); }

void cnp_gemm_int8_tile(const ukr_args *g, int nv)
{
    if (nv == 3)
        int8_8x48(g);
    else if (nv == 2)
        int8_8x32(g);
    else
        int8_8x16(g);
}

#endif
