/* winograd_avx2.c -- the input and output transforms of Winograd's
 * F(4x4, 3x3) (winograd.c) on CPUs with AVX2 + FMA but no AVX-512:
 * winograd_xform.h's transforms over this file's vector primitives.
 *
 * A vector of 16 channels is a pair of ymm registers (v16), a 16 x 16
 * transpose four 8 x 8 ones, a lane mask a pair of vmaskmov masks (whose
 * masked-off lanes are never read or written, as with AVX-512 masks).
 * winograd.c's schedules call the transforms through the plan's
 * wino_kernels, and its GEMMs take gemm_avx2.c's kernels (cnp_gemm_rows
 * with CNP_ISA_AVX2).
 */
#include "engine/winograd_tile.h"

#if CNP_X86

#include "engine/avx512.h"      /* lane_mask(): plain integer code */

#include <immintrin.h>

#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define WINLINE static inline __attribute__((always_inline)) TARGET_AVX2
#define INLINE WINLINE
#define WV v16
#define WTARGET TARGET_AVX2

typedef struct v16 {
    __m256 lo, hi;              /* lanes 0-7, 8-15 */
} v16;

INLINE v16 wv_add(v16 a, v16 b)
{
    return (v16){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
}

INLINE v16 wv_sub(v16 a, v16 b)
{
    return (v16){_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)};
}

/* a * b + c, fused. */
INLINE v16 wv_fma(float a, v16 b, v16 c)
{
    const __m256 s = _mm256_set1_ps(a);
    return (v16){_mm256_fmadd_ps(s, b.lo, c.lo), _mm256_fmadd_ps(s, b.hi, c.hi)};
}

INLINE v16 wv_zero(void)
{
    return (v16){_mm256_setzero_ps(), _mm256_setzero_ps()};
}

INLINE v16 wv_load(const float *p)
{
    return (v16){_mm256_load_ps(p), _mm256_load_ps(p + 8)};
}

INLINE void wv_store(float *p, v16 v)
{
    _mm256_store_ps(p, v.lo);
    _mm256_store_ps(p + 8, v.hi);
}

/* The 16-lane mask m as two vmaskmov masks. */
INLINE void mask_pair(__mmask16 m, __m256i *lo, __m256i *hi)
{
    const __m256i bl = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i bh = _mm256_slli_epi32(bl, 8);
    const __m256i mm = _mm256_set1_epi32((int)m);
    *lo = _mm256_cmpeq_epi32(_mm256_and_si256(mm, bl), bl);
    *hi = _mm256_cmpeq_epi32(_mm256_and_si256(mm, bh), bh);
}

/* 16 floats at p + off (wino_at), lanes m; the others zero, not read. */
INLINE v16 wv_mask_load(const float *p, ptrdiff_t off, __mmask16 m)
{
    __m256i lo, hi;
    if (m == 0xFFFF)
        return (v16){_mm256_loadu_ps(wino_at(p, off)), _mm256_loadu_ps(wino_at(p, off + 8))};
    mask_pair(m, &lo, &hi);
    return (v16){_mm256_maskload_ps(wino_at(p, off), lo),
                 _mm256_maskload_ps(wino_at(p, off + 8), hi)};
}

INLINE void wv_mask_store(float *p, ptrdiff_t off, __mmask16 m, v16 v)
{
    __m256i lo, hi;
    if (m == 0xFFFF) {
        _mm256_storeu_ps((float *)wino_at(p, off), v.lo);
        _mm256_storeu_ps((float *)wino_at(p, off + 8), v.hi);
        return;
    }
    mask_pair(m, &lo, &hi);
    _mm256_maskstore_ps((float *)wino_at(p, off), lo, v.lo);
    _mm256_maskstore_ps((float *)wino_at(p, off + 8), hi, v.hi);
}

/* In-place transpose of 8 rows of 8 floats. */
INLINE void transpose8(__m256 *r0, __m256 *r1, __m256 *r2, __m256 *r3, __m256 *r4, __m256 *r5,
                       __m256 *r6, __m256 *r7)
{
    const __m256 t0 = _mm256_unpacklo_ps(*r0, *r1), t1 = _mm256_unpackhi_ps(*r0, *r1);
    const __m256 t2 = _mm256_unpacklo_ps(*r2, *r3), t3 = _mm256_unpackhi_ps(*r2, *r3);
    const __m256 t4 = _mm256_unpacklo_ps(*r4, *r5), t5 = _mm256_unpackhi_ps(*r4, *r5);
    const __m256 t6 = _mm256_unpacklo_ps(*r6, *r7), t7 = _mm256_unpackhi_ps(*r6, *r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    *r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
    *r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
    *r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
    *r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
    *r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
    *r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
    *r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
    *r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* In-place transpose of 16 rows of 16 floats: four 8 x 8 blocks, the
 * off-diagonal ones swapped. */
INLINE void wv_transpose16(v16 r[16])
{
    __m256 a[8], b[8], c[8], d[8];      /* rows 0-7 lo, hi; rows 8-15 lo, hi */
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[i] = r[i].lo;
        b[i] = r[i].hi;
        c[i] = r[8 + i].lo;
        d[i] = r[8 + i].hi;
    }
    transpose8(&a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7]);
    transpose8(&b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7]);
    transpose8(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]);
    transpose8(&d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7]);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        r[j] = (v16){a[j], c[j]};
        r[8 + j] = (v16){b[j], d[j]};
    }
}

INLINE v16 wv_relu(v16 v)
{
    const __m256 z = _mm256_setzero_ps();
    return (v16){_mm256_max_ps(z, v.lo), _mm256_max_ps(z, v.hi)};
}

/* Channel i of four tiles: rows 0 and 1 are the low halves, 2 and 3 the
 * high halves, of each tile's vector, side by side. */
INLINE void wv_tiles4(const v16 o[4][16], int i, v16 row[4])
{
    const v16 a = o[0][i], b = o[1][i], c = o[2][i], d = o[3][i];
#define LANES(x, y, sel) _mm256_permute2f128_ps(x, y, sel)
    row[0] = (v16){LANES(a.lo, b.lo, 0x20), LANES(c.lo, d.lo, 0x20)};
    row[1] = (v16){LANES(a.lo, b.lo, 0x31), LANES(c.lo, d.lo, 0x31)};
    row[2] = (v16){LANES(a.hi, b.hi, 0x20), LANES(c.hi, d.hi, 0x20)};
    row[3] = (v16){LANES(a.hi, b.hi, 0x31), LANES(c.hi, d.hi, 0x31)};
#undef LANES
}

#include "engine/winograd_xform.h"

const wino_kernels cnp_wino_avx2_kernels = {band_load, input_tile, output_tile, output_tiles4};

#else   /* not x86: never chosen (cnp_gemm_avx2_available() is 0) */

const wino_kernels cnp_wino_avx2_kernels = {NULL, NULL, NULL, NULL};

#endif
