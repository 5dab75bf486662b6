/* gemm.c -- canopy's own single-threaded GEMM for the convolutions, on
 * AVX-512F (compiled for it with target attributes, chosen at run time).
 *
 * C (M, cols) = A (M, Kd) x B (Kd, cols) [+ C] + bias, + residual, ReLU:
 *   - A (the weights) is packed once, at plan time, into panels of 8 rows:
 *     [Kd block][8-row panel][k][8], so that the micro-kernel broadcasts
 *     eight consecutive floats per k.
 *   - B is packed per call into micro-panels of 48 columns ([k][48], 64-byte
 *     aligned rows), straight from the source: a dense matrix (1x1
 *     convolutions, Winograd) or the im2col view of a convolution input,
 *     which never exists as a whole.
 *   - The micro-kernel keeps an 8 x 48 tile of C in 24 zmm accumulators
 *     (Goto/BLIS register blocking) and applies the epilogue (bias,
 *     residual, ReLU) as it stores the tile, while it is in registers.
 * Blocking: a Kd block of A's 8-row panel (8 x kc) stays in L1 while the
 * packed B block (kc x nb) stays in L2; every core works on its own
 * columns (or rows) with its own B buffer.
 * A packed as bf16 (cnp_gemm_a_pack_bf16) runs the same loop with
 * gemm_bf16.c's micro-kernel: each packed B block is converted to bf16
 * pairs before the tiles that use it.
 */
#include "engine/gemm_tile.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Blocking: kc floats of the inner dimension; nb columns of B, at most
 * GEMM_NB (gemm_tile.h), fewer when a block of C (M x nb) and of packed B (kc x nb)
 * would not fit GEMM_L2 together (a core's L2 is 1-2 MB). */
#define GEMM_KC 256
#define GEMM_NB_MIN 96
#define GEMM_L2 (640u * 1024u)


int cnp_gemm_available(void)
{
#if CNP_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

cnp_exec cnp_exec_make(int n_threads, cnp_conv_algo algo, cnp_isa isa)
{
    cnp_exec ex;
    ex.n_threads = n_threads;
    ex.avx512 = cnp_isa_for(algo, isa) == CNP_ISA_AVX512;
    ex.avx2 = cnp_isa_for(algo, isa) == CNP_ISA_AVX2;
    return ex;
}

cnp_isa cnp_isa_resolve(cnp_isa want)
{
    if (want == CNP_ISA_AUTO)
        return cnp_gemm_available() ? CNP_ISA_AVX512
               : cnp_gemm_avx2_available() ? CNP_ISA_AVX2 : CNP_ISA_GENERIC;
    if ((want == CNP_ISA_AVX512 && !cnp_gemm_available()) ||
        (want == CNP_ISA_AVX2 && !cnp_gemm_avx2_available()))
        return CNP_ISA_GENERIC;
    return want;
}

cnp_isa cnp_isa_for(cnp_conv_algo algo, cnp_isa want)
{
    return algo == CNP_CONV_OPENBLAS ? CNP_ISA_GENERIC : cnp_isa_resolve(want);
}

static const char *const isa_names[] = {"auto", "avx512", "avx2", "generic"};

const char *cnp_isa_name(cnp_isa isa)
{
    return (unsigned)isa < 4 ? isa_names[isa] : "?";
}

int cnp_isa_parse(const char *s, cnp_isa *out)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, isa_names[i])) {
            *out = (cnp_isa)i;
            return 1;
        }
    return 0;
}


/* ---- A: packing at plan time ------------------------------------------ */

/* The blocking of a (M, Kd) GEMM, fp32 or bf16 alike. */
static cnp_status a_geometry(cnp_ctx *ctx, cnp_gemm_a *pa, int M, int Kd)
{
    int nkc;
    memset(pa, 0, sizeof *pa);
    pa->isa = CNP_ISA_AVX512;
    if (M < 1 || Kd < 1)
        return cnp_error(ctx, CNP_ERR_SHAPE, "GEMM of %d x %d weights", M, Kd);
    nkc = (Kd + GEMM_KC - 1) / GEMM_KC;
    pa->M = M;
    pa->Kd = Kd;
    pa->kc = (int)cnp_round_up((size_t)((Kd + nkc - 1) / nkc), 4);
    pa->nb = (int)(GEMM_L2 / (sizeof(float) * ((size_t)pa->kc + (size_t)M))) / NR * NR;
    if (pa->nb > GEMM_NB)
        pa->nb = GEMM_NB;
    if (pa->nb < GEMM_NB_MIN)
        pa->nb = GEMM_NB_MIN;
    return CNP_OK;
}

cnp_status cnp_gemm_a_pack_bf16(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, int M, int Kd,
                                size_t lda)
{
    if (a_geometry(ctx, pa, M, Kd) != CNP_OK)
        return ctx->status;
    return cnp_gemm_a_fill_bf16(ctx, pa, a, lda);
}

cnp_status cnp_gemm_a_pack_int8(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, int M, int Kd,
                                size_t lda, float xmin, float xmax)
{
    if (a_geometry(ctx, pa, M, Kd) != CNP_OK)
        return ctx->status;
    return cnp_gemm_a_fill_int8(ctx, pa, a, lda, xmin, xmax);
}

cnp_status cnp_gemm_a_pack(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, int M, int Kd,
                           size_t lda)
{
    size_t mp = cnp_round_up((size_t)M, MR), total;
    if (a_geometry(ctx, pa, M, Kd) != CNP_OK)
        return ctx->status;
    if (!cnp_mul_size(mp, (size_t)Kd, &total))
        return cnp_error(ctx, CNP_ERR_NOMEM, "packed weights of %d x %d too large", M, Kd);
    pa->data = cnp_aligned_alloc(ctx, total, sizeof(float), "packed convolution weights");
    if (!pa->data)
        return CNP_ERR_NOMEM;
    for (int k0 = 0; k0 < Kd; k0 += pa->kc) {
        const int kcur = Kd - k0 < pa->kc ? Kd - k0 : pa->kc;
        float *blk = pa->data + (size_t)k0 * mp;
        for (size_t ip = 0; ip < mp / MR; ip++) {
            float *pan = blk + ip * MR * (size_t)kcur;
            for (int k = 0; k < kcur; k++)
                for (int i = 0; i < MR; i++) {
                    const size_t row = ip * MR + (size_t)i;
                    pan[(size_t)k * MR + i] = row < (size_t)M ? a[row * lda + (size_t)(k0 + k)]
                                                              : 0.0f;
                }
        }
    }
    return CNP_OK;
}

void cnp_gemm_a_release(cnp_gemm_a *pa)
{
    if (!pa)
        return;
    cnp_aligned_free(pa->data);
    cnp_aligned_free(pa->a2);
    cnp_aligned_free(pa->a4);
    cnp_aligned_free(pa->qmul);
    cnp_aligned_free(pa->qsum);
    pa->data = NULL;
    pa->a2 = pa->a4 = NULL;
    pa->qmul = NULL;
    pa->qsum = NULL;
}

/* bf16 (int8): the fp32 block is converted into bf16 pairs (u8 quads)
 * after it, at this offset (64-byte aligned). */
static size_t pairs_offset(const cnp_gemm_a *pa)
{
    return cnp_round_up((size_t)pa->kc * (size_t)pa->nb, 16);
}

size_t cnp_gemm_pack_floats(const cnp_gemm_a *pa)
{
    if (pa->a2)
        return pairs_offset(pa) + (size_t)pa->kc / 2 * (size_t)pa->nb;
    if (pa->a4)
        return pairs_offset(pa) + (size_t)pa->kc / 4 * (size_t)pa->nb;
    return (size_t)pa->kc * (size_t)pa->nb;
}

/* ---- B: run splitting and Winograd's panels (no vector code) ---------- */

int cnp_gemm_split_runs(cnp_gemm_run_span *runs, const cnp_conv_shape *s, size_t j0, int w,
                        int kc)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const size_t rem = j0 % PQ;
    int img = (int)(j0 / PQ), p = (int)(rem / s->Q), q = (int)(rem % s->Q), d = 0, nruns = 0;
    while (d < w) {
        int len = s->Q - q;
        if (len > w - d)
            len = w - d;
        if (len > NR - d % NR)
            len = NR - d % NR;
        runs[nruns].img = img;
        runs[nruns].p = p;
        runs[nruns].q0 = q;
        runs[nruns].len = len;
        runs[nruns].d0 = d;
        runs[nruns].dbase = cnp_gemm_panel_row(d, w, kc, 0, &runs[nruns].ldd) + (size_t)(d % NR);
        runs[nruns].xbase = (size_t)img * HW;
        nruns++;
        d += len;
        q += len;
        cnp_carry(&q, &p, &img, s->Q, s->P);
    }
    return nruns;
}

size_t cnp_gemm_bpanel_floats(int Kd, int N)
{
    return (size_t)Kd * cnp_round_up((size_t)N, 16);
}

size_t cnp_gemm_bpanel_pairs(int Kd, int N)
{
    return ((size_t)Kd + 1) / 2 * cnp_round_up((size_t)N, 16);
}

void cnp_gemm_bpanel_pack(float *dst, const float *b, size_t ldb, int Kd, int N)
{
    for (int jp = 0; jp * NR < N; jp++) {
        const int wp = N - jp * NR < NR ? N - jp * NR : NR;
        const int ldd = (int)cnp_round_up((size_t)wp, 16);
        float *pan = dst + (size_t)jp * NR * Kd;
        for (int k = 0; k < Kd; k++)
            for (int j = 0; j < ldd; j++)
                pan[(size_t)k * ldd + j] = j < wp ? b[(size_t)k * ldb + (size_t)jp * NR + j] : 0.0f;
    }
}

#if CNP_X86       /* the rest: AVX-512 code */

/* The weights (A) of the call PF_CALLS ahead are fetched into L2 while a
 * micro-kernel runs. With few columns (small batches, late layers) every
 * A panel serves one call, so the weights stream from memory at the
 * kernel's pace; the hardware prefetchers alone kept that at ~10 GB/s
 * (measured: ResNet-50 layer4 at batch 1, 70-90 GFLOP/s -> 120-130). */
#define PF_CALLS 2

/* ---- micro-kernels ------------------------------------------------------ */

/* One tile of (8 * NP) rows x (16 * NV) columns; NP panels of A, or
 * (STRIDED, NP = 1) eight rows of an unpacked A. */
static inline __attribute__((always_inline)) TARGET_AVX512 void
ukr_body(const ukr_args *g, const int NP, const int NV, const int STRIDED)
{
    __m512 acc[3][8][3];
    const float *a = g->a, *b = g->b;
    const size_t pstride = (size_t)MR * g->kc;
    const float *ar[8];

    if (STRIDED)
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)    /* rows past mr read row 0, unused */
            ar[i] = g->a + (size_t)(i < g->mr ? i : 0) * g->lda;

#pragma GCC unroll 3
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[p][i][v] = _mm512_setzero_ps();

    for (int k = 0; k < g->kc; k++) {
        __m512 bv[3];
        if (!STRIDED && g->pf) {
            /* 8 NP floats of A per k: one 64-byte line every second k
             * for one panel, one and a half lines per k for three. */
            const float *f = (const float *)g->pf + (size_t)k * MR * NP;
            if (NP == 1) {
                if (!(k & 1))
                    _mm_prefetch((const char *)f, _MM_HINT_T1);
            } else {
                _mm_prefetch((const char *)f, _MM_HINT_T1);
                _mm_prefetch((const char *)(f + 16), _MM_HINT_T1);
            }
        }
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++)
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                const __m512 ai = _mm512_set1_ps(STRIDED ? ar[i][k] : a[p * pstride + i]);
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++)
                    acc[p][i][v] = _mm512_fmadd_ps(ai, bv[v], acc[p][i][v]);
            }
        a += MR;
        b += 16 * NV;
    }

#pragma GCC unroll 3
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
            if (p * MR + i < g->mr)
                ukr_store_row(g, p * MR + i, acc[p][i], NV);
}

static TARGET_AVX512 void ukr_8x48(const ukr_args *g) { ukr_body(g, 1, 3, 0); }
static TARGET_AVX512 void ukr_8x32(const ukr_args *g) { ukr_body(g, 1, 2, 0); }
static TARGET_AVX512 void ukr_8x16(const ukr_args *g) { ukr_body(g, 1, 1, 0); }
static TARGET_AVX512 void ukr_24x16(const ukr_args *g) { ukr_body(g, 3, 1, 0); }
static TARGET_AVX512 void ukr_s8x48(const ukr_args *g) { ukr_body(g, 1, 3, 1); }
static TARGET_AVX512 void ukr_s8x32(const ukr_args *g) { ukr_body(g, 1, 2, 1); }
static TARGET_AVX512 void ukr_s8x16(const ukr_args *g) { ukr_body(g, 1, 1, 1); }

/* ---- B packing ---------------------------------------------------------- */


/* Dense source: rows [k0, k0 + kc) of src (ld lds), columns [j0, j0 + w),
 * row by row so that the reads stream. */
static TARGET_AVX512 void pack_dense(float *dst, const float *src, size_t lds, int k0, int kc,
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
            for (int t = 0; t < ldd; t += 16) {
                const __mmask16 m = lane_mask(0, w - d0 - t);
                _mm512_store_ps(d + t, _mm512_maskz_loadu_ps(m, s + d0 + t));
            }
        }
    }
}

/* im2col source: rows [k0, k0 + kc) of im2col(x), output columns
 * [j0, j0 + w), row by row. */
/* Largest kernel side the "same"-shape packer takes. */
#define SAME_MAX_RS 11

/* 1 for stride-1 convolutions whose output has the input's shape
 * (padding (R-1)*dil in total each way, e.g. 3x3 pad 1): then output
 * column j and input position j are the same index, and row (c, r, s) of
 * im2col is the input plane shifted by (r*dil - pad_t)*W + s*dil - pad_l,
 * masked where the window leaves the image. */
static int same_shape(const cnp_conv_shape *s)
{
    return s->stride_h == 1 && s->stride_w == 1 && s->P == s->H && s->Q == s->W &&
           s->R <= SAME_MAX_RS && s->S <= SAME_MAX_RS;
}

static TARGET_AVX512 void pack_same(float *dst, const cnp_gemm_b *src, int k0, int kc,
                                    size_t j0, int w)
{
    const cnp_conv_shape *s = src->conv;
    const size_t HW = (size_t)s->H * s->W, xcols = (size_t)src->n * HW;
    const int nvec = (w + 15) / 16;
    /* Per 16-column vector: lanes whose window row r / column t is inside
     * the image, and where it lands in the packed block. */
    __mmask16 rmask[GEMM_NB / 16][SAME_MAX_RS], cmask[GEMM_NB / 16][SAME_MAX_RS];
    size_t doff[GEMM_NB / 16];
    int dld[GEMM_NB / 16];
    int c, r, t;

    for (int v = 0; v < nvec; v++) {
        const int d = v * 16;
        doff[v] = cnp_gemm_panel_row(d, w, kc, 0, &dld[v]) + (size_t)(d % NR);
        for (int i = 0; i < s->R; i++)
            rmask[v][i] = 0;
        for (int i = 0; i < s->S; i++)
            cmask[v][i] = 0;
        for (int l = 0; l < 16 && d + l < w; l++) {
            const size_t j = j0 + (size_t)(d + l);
            const int p = (int)(j % HW / (size_t)s->W), q = (int)(j % (size_t)s->W);
            for (int i = 0; i < s->R; i++) {
                const int ih = p + i * s->dil_h - s->pad_t;
                if (ih >= 0 && ih < s->H)
                    rmask[v][i] |= (__mmask16)(1u << l);
            }
            for (int i = 0; i < s->S; i++) {
                const int iw = q + i * s->dil_w - s->pad_l;
                if (iw >= 0 && iw < s->W)
                    cmask[v][i] |= (__mmask16)(1u << l);
            }
        }
    }
    c = k0 / (s->R * s->S);
    r = k0 / s->S % s->R;
    t = k0 % s->S;
    for (int k = 0; k < kc; k++) {
        const ptrdiff_t shift = (ptrdiff_t)(r * s->dil_h - s->pad_t) * s->W +
                                (t * s->dil_w - s->pad_l);
        const float *from = src->x + (size_t)c * xcols + j0;
        if (k == 0 || (r == 0 && t == 0))
            cnp_prefetch_span(from + (k == 0 ? 0 : xcols) - s->W, w + 2 * s->W);
        for (int v = 0; v < nvec; v++) {
            /* Masked-off lanes are not read: the address may leave x. */
            const float *a = (const float *)((uintptr_t)from +
                                             (uintptr_t)((ptrdiff_t)(v * 16) + shift) * 4);
            _mm512_storeu_ps(dst + doff[v] + (size_t)k * dld[v],
                             _mm512_maskz_loadu_ps(rmask[v][r] & cmask[v][t], a));
        }
        t++;
        cnp_carry(&t, &r, &c, s->S, s->R);
    }
}

/* Packs the im2col view of a strided or padded convolution input into B
 * micro-panels. Longer than the usual limit on purpose: the per-row
 * window set-up, the masked vector copy and the scalar edge loop share
 * their state in registers on the convolutions' hottest packing path. */
static TARGET_AVX512 void pack_im2col(float *dst, const cnp_gemm_b *src, int k0, int kc,
                                      size_t j0, int w)
{
    const cnp_conv_shape *s = src->conv;
    const size_t HW = (size_t)s->H * s->W;
    const size_t xcols = (size_t)src->n * HW;
    const int sw = s->stride_w;
    cnp_gemm_run_span runs[MAX_RUNS];
    int nruns;
    int c, r, t;

    nruns = cnp_gemm_split_runs(runs, s, j0, w, kc);
    c = k0 / (s->R * s->S);
    r = k0 / s->S % s->R;
    t = k0 % s->S;
    for (int k = 0; k < kc; k++) {
        const int off_w = t * s->dil_w - s->pad_l;       /* iw = q * sw + off_w */
        if (k == 0 || (r == 0 && t == 0))
            cnp_gemm_prefetch_channel(src, runs, nruns, k == 0 ? c : c + 1);
        const int off_h = r * s->dil_h - s->pad_t;       /* ih = p * sh + off_h */
        int qa, qb;     /* output columns q in [qa, qb) read inside the image */
        cnp_im2col_span(s, off_w, &qa, &qb);
        const float *xc = src->x + (size_t)c * xcols;

        /* Every run stores all its lanes (zeros where the window leaves
         * the image); then the padding of a narrow last panel. */
        for (int ri = 0; ri < nruns; ri++) {
            const cnp_gemm_run_span *ru = &runs[ri];
            const int ih = ru->p * s->stride_h + off_h;
            const float *row;
            float *d = dst + ru->dbase + (size_t)k * ru->ldd;
            if (ih < 0 || ih >= s->H) {
                for (int u = 0; u < ru->len; u += 16)
                    _mm512_mask_storeu_ps(d + u, lane_mask(0, ru->len - u), _mm512_setzero_ps());
                continue;
            }
            row = xc + ru->xbase + (size_t)ih * s->W;
            if (sw == 1) {
                for (int u = 0; u < ru->len; u += 16) {
                    const int q = ru->q0 + u;
                    const __mmask16 st = lane_mask(0, ru->len - u);
                    const __mmask16 ld = st & lane_mask(qa - q, qb - q);
                    /* Masked-off lanes are not read, so the address may
                     * start before the row. */
                    const float *from = (const float *)((uintptr_t)row +
                                                        (intptr_t)(q + off_w) * 4);
                    _mm512_mask_storeu_ps(d + u, st, _mm512_maskz_loadu_ps(ld, from));
                }
            } else if (sw == 2) {
                const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12,
                                                       10, 8, 6, 4, 2, 0);
                for (int u = 0; u < ru->len; u += 16) {
                    const int q = ru->q0 + u;
                    const int iw0 = q * 2 + off_w;      /* input column of lane 0 */
                    const __mmask16 st = lane_mask(0, ru->len - u);
                    const __mmask16 ok = st & lane_mask(qa - q, qb - q);
                    const __mmask16 m0 = lane_mask(-iw0, s->W - iw0);
                    const __mmask16 m1 = lane_mask(-iw0 - 16, s->W - iw0 - 16);
                    const float *from = (const float *)((uintptr_t)row + (intptr_t)iw0 * 4);
                    const __m512 lo = _mm512_maskz_loadu_ps(m0, from);
                    const __m512 hi = _mm512_maskz_loadu_ps(m1, from + 16);
                    const __m512 v = _mm512_maskz_permutex2var_ps(ok, lo, evens, hi);
                    _mm512_mask_storeu_ps(d + u, st, v);
                }
            } else {
                for (int q = ru->q0; q < ru->q0 + ru->len; q++)
                    d[q - ru->q0] = q >= qa && q < qb ? row[q * sw + off_w] : 0.0f;
            }
        }
        if (w % 16) {
            int ldd;
            float *d = dst + cnp_gemm_panel_row(w - 1, w, kc, k, &ldd) + (w - 1) % NR + 1;
            _mm512_mask_storeu_ps(d, lane_mask(0, 16 - w % 16), _mm512_setzero_ps());
        }
        t++;
        cnp_carry(&t, &r, &c, s->S, s->R);
    }
}

void cnp_gemm_pack_b(float *dst, const cnp_gemm_b *src, int k0, int kc, size_t j0, int w)
{
    if (src->conv && same_shape(src->conv))
        pack_same(dst, src, k0, kc, j0, w);
    else if (src->conv)
        pack_im2col(dst, src, k0, kc, j0, w);
    else
        pack_dense(dst, src->x, src->ld, k0, kc, j0, w);
}

/* ---- the blocked loop --------------------------------------------------- */

/* Fetches the rows of C (and of the residual) the tile g (wp columns)
 * will read or write, far apart in memory, while its k loop runs. On the
 * AVX2 path the epilogue waited on them: 15 % of the 4 x 24 block's
 * samples (ResNet-50, 128 px, batch 32), 6 % with this. The AVX-512
 * path measured the same with and without it (126-128 images/s), so only
 * the AVX2 path asks for it. */
static void prefetch_tile_c(const ukr_args *g, int wp)
{
    if (!g->load_c && !g->finish)
        return;
    for (int r = 0; r < g->mr; r++) {
        cnp_prefetch_span(g->c + (size_t)r * g->ldc, wp);
        if (g->finish && g->res)
            cnp_prefetch_span(g->res + (size_t)r * g->ldc, wp);
    }
}

void cnp_gemm_run(const cnp_gemm_a *pa, const cnp_gemm_b *src, float *c, size_t ldc, int m0,
                  int m1, size_t j0, size_t ncols, const cnp_gemm_epi *e, float *pack)
{
    const size_t mp = cnp_round_up((size_t)pa->M, MR);
    const int ip0 = m0 / MR, ip1 = (m1 + MR - 1) / MR;
    /* bf16 (int8): B converted to pairs (quads) after its fp32 packing. */
    const int int8 = pa->a4 != NULL;
    uint32_t *pairs = pa->a2 || int8 ? (uint32_t *)(pack + pairs_offset(pa)) : NULL;
    const int kw = int8 ? 4 : 2;       /* k per 32-bit word */
    const int avx2 = pa->isa == CNP_ISA_AVX2;

    const size_t nb = (size_t)pa->nb;
    for (size_t jb = j0; jb < j0 + ncols; jb += nb) {
        const int w = (int)(j0 + ncols - jb < nb ? j0 + ncols - jb : nb);
        const int npan = (w + NR - 1) / NR;
        for (int k0 = 0; k0 < pa->Kd; k0 += pa->kc) {
            const int kcur = pa->Kd - k0 < pa->kc ? pa->Kd - k0 : pa->kc;
            const int first = k0 == 0, last = k0 + kcur >= pa->Kd;
            const int kpair = (kcur + kw - 1) / kw;     /* words per column */
            const float *ablk = pairs ? NULL : pa->data + (size_t)k0 * mp;
            const uint32_t *ablk2 = !pairs ? NULL
                                    : int8 ? pa->a4 + (size_t)k0 / 4 * mp
                                           : pa->a2 + (size_t)k0 / 2 * mp;

            /* Pack this block of B: micro-panels of NR (the last one
             * narrower, 16-column granular). */
            if (int8 && !src->conv) {
                cnp_gemm_pack_b_u8_dense(pairs, src->x, src->ld, k0, kcur, jb, w, pa->qinv,
                                         pa->qz);
            } else {
                (avx2 ? cnp_gemm_pack_b_avx2 : cnp_gemm_pack_b)(pack, src, k0, kcur, jb, w);
                if (int8)
                    cnp_gemm_b_to_u8(pairs, pack, kcur, w, pa->qinv, pa->qz);
            }
            if (pairs && !int8)
                cnp_gemm_b_to_bf16(pairs, pack, kcur, w);
            for (int ip = ip0; ip < ip1;) {
                const int rows_left = m1 - ip * MR;
                /* One 16-column panel: 24 rows per call (fp32 only). */
                const int wide = !pairs && !avx2 && npan == 1 && w <= 16 && rows_left >= 3 * MR;
                for (int jp = 0; jp < npan; jp++) {
                    const int wp = w - jp * NR < NR ? w - jp * NR : NR;
                    const int nv = (wp + 15) / 16;
                    ukr_args g;
                    g.kc = kcur;
                    g.lda = 0;
                    g.a = pairs ? NULL : ablk + (size_t)ip * MR * kcur;
                    g.b = pairs ? NULL : pack + (size_t)jp * NR * kcur;
                    g.a2 = pairs ? ablk2 + (size_t)ip * MR * kpair : NULL;
                    g.b2 = pairs ? pairs + (size_t)jp * NR * kpair : NULL;
                    g.c = c + (size_t)ip * MR * ldc + jb + (size_t)jp * NR;
                    g.ldc = ldc;
                    g.last = lane_mask(0, wp - (nv - 1) * 16);
                    g.load_c = !first || e->accumulate;
                    g.finish = last;
                    g.qmul = int8 ? pa->qmul + (size_t)ip * MR : NULL;
                    g.bias = e->bias ? e->bias + (size_t)ip * MR : NULL;
                    g.res = e->residual ? e->residual + (size_t)ip * MR * ldc + jb +
                                              (size_t)jp * NR : NULL;
                    g.relu = e->act == CNP_ACT_RELU;
                    /* The last call on this A panel fetches a later one
                     * (past the end of the block it fetches the next
                     * block's, or nothing: a prefetch never faults). */
                    g.pf = jp != npan - 1 ? NULL
                           : pairs ? (const void *)(g.a2 + (size_t)PF_CALLS * MR * kpair)
                                   : (const void *)(g.a + (size_t)PF_CALLS * (wide ? 3 : 1) *
                                                              MR * kcur);
                    g.mr = wide ? 3 * MR : rows_left < MR ? rows_left : MR;
                    if (avx2)
                        prefetch_tile_c(&g, wp);
                    if (pairs || avx2) {
                        if (int8)
                            cnp_gemm_int8_tile(&g, nv);
                        else
                            (avx2 ? cnp_gemm_avx2_tile : cnp_gemm_bf16_tile)(&g, nv);
                    } else if (wide) {
                        ukr_24x16(&g);
                    } else {
                        if (nv == 3)
                            ukr_8x48(&g);
                        else if (nv == 2)
                            ukr_8x32(&g);
                        else
                            ukr_8x16(&g);
                    }
                }
                ip += wide ? 3 : 1;
            }
        }
    }
}

/* ---- B packed at plan time, A unpacked (Winograd) ----------------------- */

/* The operands of one of Winograd's GEMMs: fp32 (a, bp) or bf16 pairs
 * (a2, bp2; lda then counts pairs). */
typedef struct rows_ops {
    const float *a, *bp;
    const uint32_t *a2, *bp2;
    size_t lda;
} rows_ops;

static void rows_loop(float *c, size_t ldc, const rows_ops *o, int rows, int Kd, int N, int n0,
                      int n1, int accumulate, cnp_isa isa)
{
    /* A B micro-panel (kc x 48) stays in L1 while the rows stream past:
     * 24 KB either way, bf16 pairs taking half the bytes (256 measured
     * 1.15-1.3x faster than 128 on ResNet's 256- and 512-channel layers,
     * no slower below). */
    const int kc_max = o->a2 ? 256 : 128;
    const int bf16 = o->a2 != NULL;
    const size_t kp_all = ((size_t)Kd + 1) / 2;     /* bf16: pairs per panel row */
    for (int k0 = 0; k0 < Kd; k0 += kc_max) {
        const int kcur = Kd - k0 < kc_max ? Kd - k0 : kc_max;
        for (int jp = n0 / NR; jp * NR < n1; jp++) {
            const int wp = (n1 - jp * NR < NR ? n1 - jp * NR : NR);
            const int ldd = (int)cnp_round_up((size_t)(N - jp * NR < NR ? N - jp * NR : NR), 16);
            const int nv = (wp + 15) / 16;
            for (int r = 0; r < rows; r += MR) {
                ukr_args g;
                g.kc = kcur;
                g.lda = o->lda;
                g.a = bf16 ? NULL : o->a + (size_t)r * o->lda + k0;
                g.b = bf16 ? NULL : o->bp + (size_t)jp * NR * Kd + (size_t)k0 * ldd;
                /* kc_max is even: every block starts at a whole pair */
                g.a2 = bf16 ? o->a2 + (size_t)r * o->lda + k0 / 2 : NULL;
                g.b2 = bf16 ? o->bp2 + (size_t)jp * NR * kp_all + (size_t)(k0 / 2) * ldd : NULL;
                g.c = c + (size_t)r * ldc + (size_t)jp * NR;
                g.ldc = ldc;
                g.mr = rows - r < MR ? rows - r : MR;
                g.last = lane_mask(0, wp - (nv - 1) * 16);
                g.load_c = k0 > 0 || accumulate;
                g.finish = 0;
                g.bias = NULL;
                g.res = NULL;
                g.relu = 0;
                g.pf = NULL;
                g.qmul = NULL;
                /* The kernel's width is the packed panel's row stride:
                 * n1 at a panel boundary (or N) makes them agree. */
                assert(ldd == 16 * nv);
                if (bf16)
                    cnp_gemm_bf16_tile(&g, nv);
                else if (isa == CNP_ISA_AVX2)
                    cnp_gemm_avx2_tile(&g, nv);
                else if (nv == 3)
                    ukr_s8x48(&g);
                else if (nv == 2)
                    ukr_s8x32(&g);
                else
                    ukr_s8x16(&g);
            }
        }
    }
}

void cnp_gemm_rows(float *c, size_t ldc, const float *a, size_t lda, int rows, const float *bp,
                   int Kd, int N, int n0, int n1, int accumulate, cnp_isa isa)
{
    const rows_ops o = {a, bp, NULL, NULL, lda};
    rows_loop(c, ldc, &o, rows, Kd, N, n0, n1, accumulate, isa);
}

void cnp_gemm_rows_bf16(float *c, size_t ldc, const uint32_t *a, size_t lda, int rows,
                        const uint32_t *bp, int Kd, int N, int n0, int n1, int accumulate)
{
    const rows_ops o = {NULL, NULL, a, bp, lda};
    rows_loop(c, ldc, &o, rows, Kd, N, n0, n1, accumulate, CNP_ISA_AVX512);
}

/* ---- dense layers at small batches ------------------------------------- */

/* Rows of W per step: four streams of weights at once. */
#define SMALLN_ROWS 4

/* y[n][m] (ld ldy) = dot(w[m], x[n]) for m in [m0, m1), n < N. W is read
 * once, row after row, with the rows a step ahead prefetched: at N <= 4 the
 * layer streams its weights and does little else. */
static inline __attribute__((always_inline)) TARGET_AVX512 void
smalln_rows(float *y, size_t ldy, const float *x, const float *w, int K, int m, int rows,
            const int N)
{
    __m512 acc[SMALLN_ROWS][CNP_GEMM_SMALL_N];
    const float *wr[SMALLN_ROWS];
    for (int r = 0; r < SMALLN_ROWS; r++) {
        wr[r] = w + (size_t)(m + (r < rows ? r : 0)) * K;
        for (int n = 0; n < N; n++)
            acc[r][n] = _mm512_setzero_ps();
    }
    for (int k = 0; k < K; k += 16) {
        const __mmask16 mk = lane_mask(0, K - k);
        __m512 xv[CNP_GEMM_SMALL_N];
        for (int n = 0; n < N; n++)
            xv[n] = _mm512_maskz_loadu_ps(mk, x + (size_t)n * K + k);
        for (int r = 0; r < SMALLN_ROWS; r++) {
            const __m512 wv = _mm512_maskz_loadu_ps(mk, wr[r] + k);
            _mm_prefetch((const char *)(wr[r] + (size_t)SMALLN_ROWS * K + k), _MM_HINT_T0);
            for (int n = 0; n < N; n++)
                acc[r][n] = _mm512_fmadd_ps(wv, xv[n], acc[r][n]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int n = 0; n < N; n++)
            y[(size_t)n * ldy + (size_t)(m + r)] = _mm512_reduce_add_ps(acc[r][n]);
}

static TARGET_AVX512 void smalln_1(float *y, size_t ldy, const float *x, const float *w, int K,
                                   int m, int rows)
{
    smalln_rows(y, ldy, x, w, K, m, rows, 1);
}

static TARGET_AVX512 void smalln_2(float *y, size_t ldy, const float *x, const float *w, int K,
                                   int m, int rows)
{
    smalln_rows(y, ldy, x, w, K, m, rows, 2);
}

static TARGET_AVX512 void smalln_4(float *y, size_t ldy, const float *x, const float *w, int K,
                                   int m, int rows)
{
    smalln_rows(y, ldy, x, w, K, m, rows, 4);
}

void cnp_gemm_small_n(float *y, size_t ldy, const float *x, const float *w, int N, int K,
                      int m0, int m1)
{
    assert(N >= 1 && N <= CNP_GEMM_SMALL_N);
    for (int n0 = 0; n0 < N;) {
        const int nn = N - n0 >= 4 ? 4 : N - n0 >= 2 ? 2 : 1;
        for (int m = m0; m < m1; m += SMALLN_ROWS) {
            const int rows = m1 - m < SMALLN_ROWS ? m1 - m : SMALLN_ROWS;
            float *yn = y + (size_t)n0 * ldy;
            const float *xn = x + (size_t)n0 * K;
            if (nn == 4)
                smalln_4(yn, ldy, xn, w, K, m, rows);
            else if (nn == 2)
                smalln_2(yn, ldy, xn, w, K, m, rows);
            else
                smalln_1(yn, ldy, xn, w, K, m, rows);
        }
        n0 += nn;
    }
}

#else   /* not x86: conv.c and dense.c never plan canopy's GEMM (cnp_isa_resolve() is
         * GENERIC: OpenBLAS), so these are never called. */

void cnp_gemm_pack_b(float *dst, const cnp_gemm_b *src, int k0, int kc, size_t j0, int w)
{
    abort();
}

void cnp_gemm_run(const cnp_gemm_a *pa, const cnp_gemm_b *src, float *c, size_t ldc, int m0,
                  int m1, size_t j0, size_t ncols, const cnp_gemm_epi *e, float *pack)
{
    abort();
}

void cnp_gemm_rows(float *c, size_t ldc, const float *a, size_t lda, int rows, const float *bp,
                   int Kd, int N, int n0, int n1, int accumulate, cnp_isa isa)
{
    abort();
}

void cnp_gemm_rows_bf16(float *c, size_t ldc, const uint32_t *a, size_t lda, int rows,
                        const uint32_t *bp, int Kd, int N, int n0, int n1, int accumulate)
{
    abort();
}

void cnp_gemm_small_n(float *y, size_t ldy, const float *x, const float *w, int N, int K,
                      int m0, int m1)
{
    abort();
}

#endif
