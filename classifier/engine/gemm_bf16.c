/* gemm_bf16.c -- the bf16 variant of canopy's GEMM (`--precision bf16`):
 * weights and activations rounded to bf16, products accumulated in fp32
 * by vdpbf16ps, on CPUs with AVX512_BF16 (checked at run time).
 *
 * vdpbf16ps multiplies pairs: lane j of the accumulator gets
 * a[2j] * b[2j] + a[2j+1] * b[2j+1]. So the inner dimension is taken two
 * k at a time:
 *   - A (weights, packed once by cnp_gemm_a_fill_bf16) holds, per 8-row
 *     panel and k pair, the 8 rows' (k, k+1) bf16 pairs as 32-bit words,
 *     which the micro-kernel broadcasts;
 *   - B (activations) is packed in fp32 by gemm.c's packers, then each
 *     pair of packed rows (k, k+1) is converted and interleaved, so that
 *     lane j of a vector holds column j's pair.
 * The conversion is a pass over a block that is in L2 anyway, and it lets
 * one set of packers (dense, same-shape, strided im2col) serve both
 * precisions. The epilogue is gemm_tile.h's, as in fp32.
 * Winograd's GEMMs (cnp_gemm_rows_bf16) run the same micro-kernel with
 * the roles of the packing swapped: its B (the transformed weights) is
 * converted by cnp_gemm_b_to_bf16() once at plan time, and its A (the
 * transformed input tiles) comes unpacked, rows of bf16 channel pairs
 * written by the input transform, read with a row stride.
 * On this kind of CPU (AMD Zen 5) vdpbf16ps does twice the multiplies of
 * vfmadd231ps per cycle; on Intel Sapphire/Emerald Rapids it does not
 * (see BENCHMARKS.md).
 */
#include "engine/gemm_tile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cnp_gemm_bf16_available(void)
{
#if CNP_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}


/* fp32 -> bf16 bits as vcvtne2ps2bf16 does it: round to nearest even,
 * denormals to zero (the instruction's DAZ), NaN kept quiet. */
static uint32_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (u >> 16) | 0x40u;
    if ((u & 0x7F800000u) == 0)
        return (u >> 16) & 0x8000u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}


cnp_status cnp_gemm_a_fill_bf16(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, size_t lda)
{
    const size_t mp = cnp_round_up((size_t)pa->M, MR);
    size_t total;
    if (!cnp_mul_size(mp, cnp_round_up((size_t)pa->Kd, 2) / 2, &total))
        return cnp_error(ctx, CNP_ERR_NOMEM, "packed weights of %d x %d too large", pa->M,
                         pa->Kd);
    pa->a2 = cnp_aligned_alloc(ctx, total, sizeof *pa->a2, "bf16 convolution weights");
    if (!pa->a2)
        return CNP_ERR_NOMEM;
    /* kc is even, so every block starts at an even k: block k0 at k0 / 2
     * pairs per padded row. */
    for (int k0 = 0; k0 < pa->Kd; k0 += pa->kc) {
        const int kcur = pa->Kd - k0 < pa->kc ? pa->Kd - k0 : pa->kc;
        const int kp = (kcur + 1) / 2;
        uint32_t *blk = pa->a2 + (size_t)k0 / 2 * mp;
        for (size_t ip = 0; ip < mp / MR; ip++) {
            uint32_t *pan = blk + ip * MR * (size_t)kp;
            for (int k = 0; k < kp; k++)
                for (int i = 0; i < MR; i++) {
                    const size_t row = ip * MR + (size_t)i;
                    const float *ar = a + row * lda + (size_t)(k0 + 2 * k);
                    uint32_t pair = 0;
                    if (row < (size_t)pa->M)
                        pair = bf16_bits(ar[0]) |
                               (2 * k + 1 < kcur ? bf16_bits(ar[1]) << 16 : 0u);
                    pan[(size_t)k * MR + i] = pair;
                }
        }
    }
    return CNP_OK;
}

#if CNP_X86       /* the kernels (gemm.c calls them on AVX-512 only) */

TARGET_BF16 void cnp_gemm_b_to_bf16(uint32_t *dst, const float *src, int kc, int w)
{
    const int kp = (kc + 1) / 2;
    /* 16-bit lane 2j <- j (row k), 2j + 1 <- 16 + j (row k + 1). */
    const __m512i inter = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
        23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int jp = 0; jp * NR < w; jp++) {
        const int wp = w - jp * NR < NR ? w - jp * NR : NR;
        const int ldd = (int)cnp_round_up((size_t)wp, 16);
        const float *s = src + (size_t)jp * NR * kc;
        uint32_t *d = dst + (size_t)jp * NR * kp;
        for (int k = 0; k < kp; k++) {
            const float *lo = s + (size_t)(2 * k) * ldd;
            const int has_hi = 2 * k + 1 < kc;
            for (int t = 0; t < ldd; t += 16) {
                const __m512 l = _mm512_load_ps(lo + t);
                const __m512 h = has_hi ? _mm512_load_ps(lo + ldd + t) : _mm512_setzero_ps();
                const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(h, l);
                _mm512_store_si512((void *)(d + (size_t)k * ldd + t),
                                   _mm512_permutexvar_epi16(inter, both));
            }
        }
    }
}

/* One 8 x (16 * NV) tile: per k pair, NV vectors of B pairs and one
 * broadcast A pair per row; A a packed panel, or (STRIDED) eight rows of
 * pairs g->lda pairs apart (Winograd's transformed tiles). */
static inline __attribute__((always_inline)) TARGET_BF16 void
bf16_body(const ukr_args *g, const int NV, const int STRIDED)
{
    __m512 acc[MR][3];
    const uint32_t *a = g->a2, *b = g->b2;
    const uint32_t *ar[MR];
    const int kp = (g->kc + 1) / 2;

    if (STRIDED)
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)    /* rows past mr read row 0, unused */
            ar[i] = g->a2 + (size_t)(i < g->mr ? i : 0) * g->lda;

#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm512_setzero_ps();

    for (int k = 0; k < kp; k++) {
        __m512i bv[3];
        /* 8 pairs of A per k: one cache line every 2 k. */
        if (!STRIDED && g->pf && !(k & 1))
            _mm_prefetch((const char *)((const uint32_t *)g->pf + (size_t)k * MR), _MM_HINT_T1);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_load_si512((const void *)(b + 16 * v));
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512i ai = _mm512_set1_epi32((int)(STRIDED ? ar[i][k] : a[i]));
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_dpbf16_ps(acc[i][v], (__m512bh)ai, (__m512bh)bv[v]);
        }
        a += MR;
        b += 16 * NV;
    }

#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        if (i < g->mr)
            ukr_store_row(g, i, acc[i], NV);
}

static TARGET_BF16 void bf16_8x48(const ukr_args *g) { bf16_body(g, 3, 0); }
static TARGET_BF16 void bf16_8x32(const ukr_args *g) { bf16_body(g, 2, 0); }
static TARGET_BF16 void bf16_8x16(const ukr_args *g) { bf16_body(g, 1, 0); }
static TARGET_BF16 void bf16_s8x48(const ukr_args *g) { bf16_body(g, 3, 1); }
static TARGET_BF16 void bf16_s8x32(const ukr_args *g) { bf16_body(g, 2, 1); }
static TARGET_BF16 void bf16_s8x16(const ukr_args *g) { bf16_body(g, 1, 1); }

void cnp_gemm_bf16_tile(const ukr_args *g, int nv)
{
    if (g->lda)     /* rows of an unpacked A (Winograd's V) */
        nv == 3 ? bf16_s8x48(g) : nv == 2 ? bf16_s8x32(g) : bf16_s8x16(g);
    else
        nv == 3 ? bf16_8x48(g) : nv == 2 ? bf16_8x32(g) : bf16_8x16(g);
}

#endif
