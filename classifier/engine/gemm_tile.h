/* gemm_tile.h -- what gemm.c and gemm_bf16.c share (internal to
 * classifier/engine): the tile geometry, a micro-kernel's arguments, the
 * epilogue applied as a tile is stored, and the packing of B.
 *
 * The fp32 micro-kernels (gemm.c) and the bf16 ones (gemm_bf16.c) differ
 * only in how they multiply; what they store, and from which packed B,
 * is the same code, so that both paths give the same epilogue (bias,
 * residual, ReLU) bit for bit.
 */
#ifndef CNP_ENGINE_GEMM_TILE_H
#define CNP_ENGINE_GEMM_TILE_H

#include "engine/kernels.h"
#include "engine/avx512.h"

#include <stddef.h>
#include <stdint.h>

#define MR 8            /* rows per A panel */
#define NR 48           /* columns per B micro-panel (3 zmm) */
#define GEMM_NB 480     /* largest column block of packed B */

typedef struct ukr_args {
    int kc;
    const float *a;         /* first 8-row panel [kc][8]; more panels follow at +8*kc;
                             * or, strided, row 0 of an unpacked A (rows lda apart) */
    size_t lda;
    const float *b;         /* [kc][16 * nv] */
    const uint32_t *a2;     /* bf16: A panel [kc/2][8] bf16 pairs (k, k+1); or, strided,
                             * row 0 of unpacked rows of pairs (lda pairs apart) */
    const uint32_t *b2;     /* bf16: B micro-panel [kc/2][16 * nv] bf16 pairs;
                             * int8 (a2, b2): [kc/4][8] int8 weight quads, [kc/4][16 * nv]
                             * u8 activation quads */
    const float *qmul;      /* int8: the tile rows' scales (int32 sum -> fp32) */
    float *c;               /* tile origin */
    size_t ldc;
    int mr;                 /* valid rows */
    uint16_t last;          /* valid lanes of the last vector (a __mmask16) */
    int load_c;             /* accumulate onto C */
    int finish;             /* apply the epilogue */
    const float *bias;      /* at the tile's first row, or NULL */
    const float *res;       /* residual at the tile origin (ld ldc), or NULL */
    int relu;
    const void *pf;         /* A of the next call, fetched as this one runs, or NULL */
} ukr_args;

#if CNP_X86
/* Stores row `row` of a tile (NV vectors acc) to C: + C when load_c, then,
 * when finish, + bias + residual and ReLU. */
static inline __attribute__((always_inline)) TARGET_AVX512 void
ukr_store_row(const ukr_args *g, int row, const __m512 *acc, const int NV)
{
    float *crow = g->c + (size_t)row * g->ldc;
    const float *rrow = g->res ? g->res + (size_t)row * g->ldc : NULL;
    const __m512 bias = g->finish && g->bias ? _mm512_set1_ps(g->bias[row])
                                             : _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) {
        const __mmask16 m = v == NV - 1 ? g->last : (__mmask16)0xFFFF;
        __m512 x = acc[v];
        if (g->load_c)
            x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, crow + 16 * v));
        if (g->finish) {
            x = _mm512_add_ps(x, bias);
            if (rrow)
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, rrow + 16 * v));
            /* max(0, x) keeps NaN, as PyTorch's ReLU does */
            if (g->relu)
                x = _mm512_max_ps(_mm512_setzero_ps(), x);
        }
        _mm512_mask_storeu_ps(crow + 16 * v, m, x);
    }
}
#endif

#if CNP_X86
/* Rows of B further ahead than this are prefetched while one is packed:
 * the rows are far apart (a whole activation plane), too short for the
 * hardware prefetchers to catch on. */
#define CNP_PREFETCH_ROWS 6

/* Fetches the n floats from p into L1. */
static inline __attribute__((always_inline)) void cnp_prefetch_span(const float *p, int n)
{
    for (int i = 0; i < n; i += 16)
        _mm_prefetch((const char *)(p + i), _MM_HINT_T0);
    _mm_prefetch((const char *)(p + n - 1), _MM_HINT_T0);
}
#endif

/* The packed block: micro-panel jp (columns 48 jp ..) starts at
 * jp * 48 * kc floats; its rows are 48 floats apart, or, for a last
 * narrower panel, its width rounded up to 16 (*ldd). Offset of row k of
 * the panel holding block column d. */
static inline size_t cnp_gemm_panel_row(int d, int w, int kc, int k, int *ldd)
{
    const int jp = d / NR, wp = w - jp * NR < NR ? w - jp * NR : NR;
    *ldd = (int)cnp_round_up((size_t)wp, 16);
    return (size_t)jp * NR * kc + (size_t)k * *ldd;
}

/* A run of output columns inside one output row and one micro-panel:
 * image img, row p, columns q0 .. q0 + len - 1, at block column d0; its
 * first row of packed B at dst + dbase, the next rows ldd further. */
typedef struct cnp_gemm_run_span {
    int img, p, q0, len, d0, ldd;
    size_t dbase;
    size_t xbase;       /* img * H * W */
} cnp_gemm_run_span;

#define MAX_RUNS (GEMM_NB + GEMM_NB / NR)

/* gemm.c: splits block columns [j0, j0 + w) of the convolution s's output
 * into runs (at most MAX_RUNS) along output rows and micro-panels, into
 * the caller's runs; returns how many. */
int cnp_gemm_split_runs(cnp_gemm_run_span *runs, const cnp_conv_shape *s, size_t j0, int w,
                        int kc);

#if CNP_X86
/* As im2col packing enters channel cn of src (a convolution), fetches the
 * input rows the runs will read from it. Inline: called out of line, it
 * cost the AVX-512 path 3 % of ResNet-50 (119 -> 116 images/s). */
static inline __attribute__((always_inline)) void
cnp_gemm_prefetch_channel(const cnp_gemm_b *src, const cnp_gemm_run_span *runs, int nruns, int cn)
{
    const cnp_conv_shape *s = src->conv;
    const size_t HW = (size_t)s->H * s->W;
    const float *xc;
    if (cn >= s->C)
        return;
    xc = src->x + (size_t)cn * (size_t)src->n * HW;
    for (int ri = 0; ri < nruns; ri++) {
        const cnp_gemm_run_span *ru = &runs[ri];
        const int q0 = ru->q0 * s->stride_w - s->pad_l;
        const int q1 = (ru->q0 + ru->len - 1) * s->stride_w + (s->S - 1) * s->dil_w - s->pad_l;
        const int lo = q0 < 0 ? 0 : q0, hi = q1 >= s->W ? s->W - 1 : q1;
        if (ri > 0 && ru->p == runs[ri - 1].p && ru->img == runs[ri - 1].img)
            continue;       /* same input rows as the run before */
        for (int rr = 0; rr < s->R && hi >= lo; rr++) {
            const int ih = ru->p * s->stride_h - s->pad_t + rr * s->dil_h;
            if (ih >= 0 && ih < s->H)
                cnp_prefetch_span(xc + ru->xbase + (size_t)ih * s->W + lo, hi - lo + 1);
        }
    }
}
#endif

/* gemm.c: packs rows [k0, k0 + kc) and columns [j0, j0 + w) of B into
 * dst (fp32): micro-panel jp at jp * 48 * kc floats, rows 48 floats apart
 * (a last narrower panel: its width rounded up to 16, zero-filled). */
void cnp_gemm_pack_b(float *dst, const cnp_gemm_b *src, int k0, int kc, size_t j0, int w);

/* gemm_bf16.c: A (M, Kd) as bf16 pairs into a new pa->a2 (round to
 * nearest even), same blocks and panels as cnp_gemm_a_pack() with k
 * paired; an odd last k of a block is paired with a zero. pa's geometry
 * (M, Kd, kc, nb) must already be set; kc is even. */
cnp_status cnp_gemm_a_fill_bf16(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, size_t lda);

/* gemm_bf16.c: the packed fp32 block src (kc rows, w columns, as
 * cnp_gemm_pack_b() lays it out) as bf16 pairs in dst: micro-panel jp at
 * jp * 48 * ceil(kc/2) pairs, [k/2][its width][2]; an odd last row is
 * paired with zeros. */
void cnp_gemm_b_to_bf16(uint32_t *dst, const float *src, int kc, int w);

/* gemm_bf16.c: one 8 x (16 * nv) tile from g->a2 (packed, or with
 * g->lda != 0 unpacked rows of pairs lda apart) and g->b2 (g->kc rounded
 * up to even), stored through ukr_store_row(). */
void cnp_gemm_bf16_tile(const ukr_args *g, int nv);

/* gemm_int8.c: A (M, Kd) as int8 quads into new pa->a4, pa->qmul and
 * pa->qsum (cnp_gemm_a_pack_int8), same blocks and panels as
 * cnp_gemm_a_pack() with k in quads (zeros pad a last partial quad); B's
 * quantisation (pa->qinv, pa->qz) from the activation range [xmin, xmax].
 * pa's geometry must already be set; kc is a multiple of 4. */
cnp_status cnp_gemm_a_fill_int8(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, size_t lda,
                                float xmin, float xmax);

/* gemm_int8.c: the packed fp32 block src (kc rows, w columns, as
 * cnp_gemm_pack_b() lays it out) quantised, u8 = clamp(round(x * qinv) +
 * qz, 0, 255), as quads in dst: micro-panel jp at jp * 48 * ceil(kc/4)
 * words, [k/4][its width]; rows past kc are zeros. */
void cnp_gemm_b_to_u8(uint32_t *dst, const float *src, int kc, int w, float qinv, float qz);

/* gemm_int8.c: the same from a dense B (ld lds: rows [k0, k0 + kc),
 * columns [j0, j0 + w)) straight into quads, without the fp32 block
 * (1x1 convolutions). */
void cnp_gemm_pack_b_u8_dense(uint32_t *dst, const float *src, size_t lds, int k0, int kc,
                              size_t j0, int w, float qinv, float qz);

/* gemm_int8.c: one 8 x (16 * nv) tile from the quads g->a2 and g->b2
 * (g->kc rounded up to 4), each row's int32 sums times g->qmul[row],
 * stored through ukr_store_row(). */
void cnp_gemm_int8_tile(const ukr_args *g, int nv);

/* gemm_avx2.c: the same packing of B as cnp_gemm_pack_b() in code that
 * needs no AVX-512 (plain C, compiled for AVX2). */
void cnp_gemm_pack_b_avx2(float *dst, const cnp_gemm_b *src, int k0, int kc, size_t j0, int w);

/* gemm_avx2.c: one tile of g->mr <= 8 rows x (16 * nv) columns (the
 * valid ones: g->last of the last 16) from the same packed A (or, with
 * g->lda != 0, unpacked rows lda apart) and B as the AVX-512 kernels,
 * with AVX2 + FMA: the same products in the same order,
 * and the same epilogue, so its results equal theirs bit for bit. */
void cnp_gemm_avx2_tile(const ukr_args *g, int nv);

#endif
