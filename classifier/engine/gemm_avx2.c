/* gemm_avx2.c -- canopy's fp32 GEMM on CPUs with AVX2 + FMA but no
 * AVX-512 (AMD Zen 2/3, Intel client cores): the micro-kernel and the
 * packing of B, compiled for AVX2 with target attributes and chosen at
 * run time (a plan whose cnp_gemm_a has isa CNP_ISA_AVX2).
 *
 * It shares gemm.c's blocked loop and its packing layouts: A in 8-row
 * panels, B in 48-column micro-panels. Sixteen ymm registers hold a
 * 4 x 24 block of C (12 accumulators, 3 B vectors, 1 broadcast), so an
 * 8 x 48 tile is four such blocks: both row halves of a 24-column half
 * in turn, so that the B half-panel (kc x 24) is read twice from L1.
 * Each output is the same chain of FMAs in k order as on AVX-512, and the
 * epilogue adds C, bias and residual and takes max(0, x) in the same
 * order: the two paths agree bit for bit.
 *
 * What is read from memory is fetched ahead in software, as gemm.c does:
 * the rows of B being packed, the next channel's input rows (im2col), the
 * next A panel (and, in gemm.c, the tile's rows of C and residual). On
 * layers whose input is not in cache (bench_kernels) the 1x1 convolutions
 * with 256 input channels gain 20 %, the strided ones 8 %.
 */
#include "engine/gemm_tile.h"

#include <string.h>

#if CNP_X86

#include <immintrin.h>

#define TARGET_AVX2 __attribute__((target("avx2,fma")))

/* A block's first pass over its B half-panel (from L2) fetches the rows
 * this far ahead into L1; the second pass finds them there. */
#define B_AHEAD 8

int cnp_gemm_avx2_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Lanes [0, n) of 8 (n clipped to 0..8) as a maskload/maskstore mask. */
static inline __attribute__((always_inline)) TARGET_AVX2 __m256i head_mask(int n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

static inline __attribute__((always_inline)) TARGET_AVX2 __m256 load_n(const float *p, int n)
{
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, head_mask(n));
}

/* Row `row` of the block: NV vectors from column c0, of which `cols`
 * (counted from c0) are valid; the epilogue of ukr_store_row(). */
static inline __attribute__((always_inline)) TARGET_AVX2 void
store_row(const ukr_args *g, int row, int c0, int cols, const __m256 *acc, const int NV)
{
    float *crow = g->c + (size_t)row * g->ldc + c0;
    const float *rrow = g->res ? g->res + (size_t)row * g->ldc + c0 : NULL;
    const __m256 bias = g->finish && g->bias ? _mm256_set1_ps(g->bias[row])
                                             : _mm256_setzero_ps();
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) {
        const int n = cols - 8 * v;
        __m256 x = acc[v];
        if (n <= 0)
            break;
        if (g->load_c)
            x = _mm256_add_ps(x, load_n(crow + 8 * v, n));
        if (g->finish) {
            x = _mm256_add_ps(x, bias);
            if (rrow)
                x = _mm256_add_ps(x, load_n(rrow + 8 * v, n));
            /* max(0, x) keeps NaN, as PyTorch's ReLU does */
            if (g->relu)
                x = _mm256_max_ps(_mm256_setzero_ps(), x);
        }
        if (n >= 8)
            _mm256_storeu_ps(crow + 8 * v, x);
        else
            _mm256_maskstore_ps(crow + 8 * v, head_mask(n), x);
    }
}

/* Rows [r0, r0 + 4) (those below g->mr) x NV vectors from column c0 of
 * the tile; B rows ldb floats apart. A: the packed panel, or (STRIDED)
 * rows of an unpacked A g->lda apart. pfa: the A panel of a later call,
 * fetched into L2 a line per two k as this one runs (gemm.c's PF_CALLS),
 * or NULL; pfb: fetch B's rows B_AHEAD ahead (first pass over them). */
static inline __attribute__((always_inline)) TARGET_AVX2 void
block_4xnv(const ukr_args *g, int r0, int c0, int cols, int ldb, const float *pfa, int pfb,
           const int NV, const int STRIDED)
{
    __m256 acc[4][3];
    const float *a = g->a + r0, *b = g->b + c0;
    const float *ar[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {   /* rows past mr read row r0, unused */
        ar[i] = g->a + (size_t)(r0 + i < g->mr ? r0 + i : r0) * g->lda;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (int k = 0; k < g->kc; k++) {
        __m256 bv[3];
        if (pfb) {
            _mm_prefetch((const char *)(b + B_AHEAD * (size_t)ldb), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + B_AHEAD * (size_t)ldb + 16), _MM_HINT_T0);
        }
        if (pfa && !(k & 1))
            _mm_prefetch((const char *)(pfa + (size_t)k * MR), _MM_HINT_T1);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = _mm256_load_ps(b + 8 * v);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m256 ai = _mm256_broadcast_ss(STRIDED ? ar[i] + k : a + i);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        b += ldb;
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        if (r0 + i < g->mr)
            store_row(g, r0 + i, c0, cols, acc[i], NV);
}

typedef void (*block_fn)(const ukr_args *g, int r0, int c0, int cols, int ldb, const float *pfa,
                         int pfb);

/* The four instances: 24 or 16 columns, packed or strided A. */
#define BLOCK_FN(name, nv, strided)                                                        \
    static TARGET_AVX2 void name(const ukr_args *g, int r0, int c0, int cols, int ldb,      \
                                 const float *pfa, int pfb)                                 \
    {                                                                                      \
        block_4xnv(g, r0, c0, cols, ldb, pfa, pfb, nv, strided);                           \
    }
BLOCK_FN(block_4x24, 3, 0)
BLOCK_FN(block_4x16, 2, 0)
BLOCK_FN(block_s4x24, 3, 1)
BLOCK_FN(block_s4x16, 2, 1)
#undef BLOCK_FN

void cnp_gemm_avx2_tile(const ukr_args *g, int nv)
{
    const int ldb = 16 * nv;
    const int cols = 16 * (nv - 1) + __builtin_popcount(g->last);
    /* 48 columns: two halves of 24; 32: two of 16; 16: one. A strided
     * (lda != 0) for Winograd's GEMMs, packed otherwise. */
    const int half = nv == 3 ? 24 : 16;
    const block_fn fn = g->lda ? (half == 24 ? block_s4x24 : block_s4x16)
                               : (half == 24 ? block_4x24 : block_4x16);
    for (int c0 = 0; c0 < ldb && c0 < cols; c0 += half)
        for (int r0 = 0; r0 < g->mr; r0 += 4)
            fn(g, r0, c0, cols - c0, ldb, r0 == 0 && c0 == 0 ? (const float *)g->pf : NULL,
               r0 == 0);
}

/* d[u] = row[2 (q0 + u) + off_w] for u while 16 floats from the input
 * column stay below W; returns how many it copied (a multiple of 8), the
 * rest is the caller's. */
static TARGET_AVX2 int copy_stride2(float *d, const float *row, int q0, int n, int off_w, int W)
{
    int u = 0;
    for (; u + 8 <= n && 2 * (q0 + u) + off_w + 16 <= W; u += 8) {
        const float *from = row + 2 * (q0 + u) + off_w;
        const __m256 lo = _mm256_loadu_ps(from), hi = _mm256_loadu_ps(from + 8);
        /* [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6] -> lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6 */
        const __m256 ev = _mm256_shuffle_ps(lo, hi, 0x88);
        _mm256_storeu_ps(d + u, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev),
                                                                       0xD8)));
    }
    return u;
}

/* ---- B packing ------------------------------------------------------------ */

/* Dense source: rows [k0, k0 + kc) of src (ld lds), columns [j0, j0 + w),
 * 8 floats at a time (the panel's columns past w zero). */
static TARGET_AVX2 void pack_dense_v(float *dst, const float *src, size_t lds, int k0, int kc,
                                     size_t j0, int w)
{
    for (int k = 0; k < CNP_PREFETCH_ROWS && k < kc; k++)
        cnp_prefetch_span(src + (size_t)(k0 + k) * lds + j0, w);
    for (int k = 0; k < kc; k++) {
        const float *s = src + (size_t)(k0 + k) * lds + j0;
        if (k + CNP_PREFETCH_ROWS < kc)
            cnp_prefetch_span(s + CNP_PREFETCH_ROWS * lds, w);
        for (int d0 = 0; d0 < w; d0 += NR) {
            int ldd;
            float *d = dst + cnp_gemm_panel_row(d0, w, kc, k, &ldd);
            for (int t = 0; t < ldd; t += 8)
                _mm256_storeu_ps(d + t, load_n(s + d0 + t, w - d0 - t));
        }
    }
}

/* One run of row k of im2col: input row `row` (W floats, or NULL:
 * outside the image), output columns q of the run read
 * row[q * sw + off_w] where q is in [qa, qb), zero elsewhere. */
static void pack_run(float *d, const float *row, const cnp_gemm_run_span *ru, int sw, int off_w,
                     int qa, int qb, int W)
{
    int q = ru->q0;
    const int qe = ru->q0 + ru->len;
    if (!row) {
        memset(d, 0, (size_t)ru->len * sizeof *d);
        return;
    }
    for (; q < qe && q < qa; q++)
        d[q - ru->q0] = 0.0f;
    if (sw == 2 && q < qb)
        q += copy_stride2(d + (q - ru->q0), row, q, (qb < qe ? qb : qe) - q, off_w, W);
    if (sw == 1)
        for (; q < qe && q < qb; q++)
            d[q - ru->q0] = row[q + off_w];
    else
        for (; q < qe && q < qb; q++)
            d[q - ru->q0] = row[q * sw + off_w];
    for (; q < qe; q++)
        d[q - ru->q0] = 0.0f;
}

/* im2col source: rows [k0, k0 + kc) of im2col(x), output columns
 * [j0, j0 + w), row by row. */
static void pack_im2col_c(float *dst, const cnp_gemm_b *src, int k0, int kc, size_t j0, int w)
{
    const cnp_conv_shape *s = src->conv;
    const size_t xcols = (size_t)src->n * s->H * s->W;
    const int sw = s->stride_w;
    cnp_gemm_run_span runs[MAX_RUNS];
    const int nruns = cnp_gemm_split_runs(runs, s, j0, w, kc);
    int c = k0 / (s->R * s->S), r = k0 / s->S % s->R, t = k0 % s->S;

    for (int k = 0; k < kc; k++) {
        const int off_w = t * s->dil_w - s->pad_l, off_h = r * s->dil_h - s->pad_t;
        const float *xc = src->x + (size_t)c * xcols;
        int qa, qb;
        if (k == 0 || (r == 0 && t == 0))
            cnp_gemm_prefetch_channel(src, runs, nruns, k == 0 ? c : c + 1);
        cnp_im2col_span(s, off_w, &qa, &qb);
        for (int ri = 0; ri < nruns; ri++) {
            const cnp_gemm_run_span *ru = &runs[ri];
            const int ih = ru->p * s->stride_h + off_h;
            const float *row = ih < 0 || ih >= s->H ? NULL : xc + ru->xbase + (size_t)ih * s->W;
            pack_run(dst + ru->dbase + (size_t)k * ru->ldd, row, ru, sw, off_w, qa, qb, s->W);
        }
        if (w % 16) {
            int ldd;
            float *d = dst + cnp_gemm_panel_row(w - 1, w, kc, k, &ldd) + (w - 1) % NR + 1;
            memset(d, 0, (size_t)(16 - w % 16) * sizeof *d);
        }
        t++;
        cnp_carry(&t, &r, &c, s->S, s->R);
    }
}

void cnp_gemm_pack_b_avx2(float *dst, const cnp_gemm_b *src, int k0, int kc, size_t j0, int w)
{
    if (src->conv)
        pack_im2col_c(dst, src, k0, kc, j0, w);
    else
        pack_dense_v(dst, src->x, src->ld, k0, kc, j0, w);
}

#else   /* not x86: never chosen */

int cnp_gemm_avx2_available(void)
{
    return 0;
}

#endif
