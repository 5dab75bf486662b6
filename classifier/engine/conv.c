/* conv.c -- convolution plans and their dispatch:
 * y (K, n*P*Q) = act(W (K, C*R*S) x im2col(x) + bias [+ residual]).
 *
 * Three paths, chosen per plan (and, for Winograd, per call by size):
 *   - Winograd F(4x4, 3x3) (winograd.c) for 3x3 stride-1 layers with
 *     enough 4x4 output tiles per thread;
 *   - canopy's GEMM (gemm.c) on AVX-512F CPUs (gemm_avx2.c's kernels, and
 *     winograd_avx2.c's transforms, on AVX2 + FMA ones or when the plan
 *     asks for CNP_ISA_AVX2): weights packed at plan time,
 *     im2col fused into the packing of B, bias/residual/ReLU applied as the
 *     micro-kernel stores each tile; the threads take column chunks, or
 *     share out the K rows when the columns are few (layer4 at batch 1);
 *   - elsewhere OpenBLAS (single-threaded sgemm per thread): the n*P*Q
 *     columns are cut into blocks whose im2col panel (C*R*S, nb) and output
 *     (K, nb) stay in L2; each thread builds its block's panel in its slice
 *     of the caller's scratch, calls sgemm and applies the epilogue while
 *     the block is hot; with few columns the threads build one shared panel
 *     and split the K rows.
 * A 1x1 stride-1 unpadded convolution is a plain GEMM on x: no im2col.
 * A bf16 plan (cnp_conv_opts.bf16) packs its weights as bf16 for
 * canopy's GEMM; its Winograd path, where it has one, runs its 36 GEMMs
 * in bf16 too from CONV_WINO_BF16_MIN_C input channels (or as
 * cnp_conv_opts.wino forces), else in fp32. An int8 plan
 * (cnp_conv_opts.int8) runs canopy's GEMM in int8; where it has a
 * Winograd path (only on CPUs with bf16) that is bf16 Winograd, as in a
 * bf16 plan: int8 Winograd would need the transforms' wider range in 8
 * bits.
 * One OpenMP region per call on every path.
 */
#include "engine/kernels.h"
#include "engine/engine.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Target bytes of one block's working set (im2col panel + output) in L2. */
#define CONV_L2_BUDGET (1536u * 1024u)
#define CONV_MIN_BLOCK 64      /* columns */
#define CONV_MAX_BLOCK 1024    /* columns */
/* Fewer columns per thread than this: split the K rows instead. */
#define CONV_KSPLIT_COLS 128
/* canopy's GEMM: fewer columns per thread than this, split the rows. */
#define CONV_GEMM_MIN_COLS 96
/* Winograd from this many 4x4 output tiles per call and thread: below
 * it, streaming its weights (4x the direct ones) costs more than the
 * multiplies it saves (measured: ResNet 512-channel 4x4 layers). */
#define CONV_WINO_TILES_PER_THREAD 7
/* bf16 plans: Winograd in bf16 from this many input channels. Measured
 * (bf16 against fp32 Winograd, alternated, batch 32, 2 threads): 1.2-1.5x
 * faster at 32-512 channels, 0.96-1.08x at 16 (the transforms, fp32 either
 * way, dominate), where fp32 keeps its accuracy for nothing. */
#define CONV_WINO_BF16_MIN_C 32

struct cnp_conv_plan {
    cnp_conv_shape s;       /* s.N: the largest batch served */
    int n_threads;
    int direct;             /* 1x1, stride 1, unpadded: x is the B operand */
    size_t crs;             /* C*R*S, the GEMM inner dimension */
    float *w;               /* (K, C*R*S) row-major */
    float *bias;            /* (K), zeros when the model has none */
    int block;              /* largest column block */
    size_t slice;           /* floats of scratch per thread (64-byte multiple) */
    size_t scratch;         /* floats of scratch in all */
    int use_gemm;           /* canopy's GEMM (else OpenBLAS) */
    cnp_isa isa;            /* what runs: AVX512, AVX2 (fp32 only) or GENERIC */
    int bf16;               /* its weights are bf16 (gemm_bf16.c) */
    int int8;               /* its GEMM's weights are int8 (gemm_int8.c) */
    float *qbias;           /* int8: bias less the zero point's share, for the GEMM */
    cnp_gemm_a pa;          /* weights packed for it */
    cnp_wino *wino;         /* Winograd plan, or NULL */
    int wino_bf16;          /* its GEMMs in bf16 */
    int wino_min_tiles;     /* use it from this many tiles per call */
};

int cnp_conv_shape_finish(cnp_conv_shape *s)
{
    long eh, ew;
    if (s->stride_h < 1 || s->stride_w < 1 || s->dil_h < 1 || s->dil_w < 1 || s->R < 1 ||
        s->S < 1 || s->pad_t < 0 || s->pad_l < 0 || s->pad_b < 0 || s->pad_r < 0)
        return 0;
    eh = (long)s->H + s->pad_t + s->pad_b - (long)s->dil_h * (s->R - 1) - 1;
    ew = (long)s->W + s->pad_l + s->pad_r - (long)s->dil_w * (s->S - 1) - 1;
    if (eh < 0 || ew < 0)
        return 0;
    s->P = (int)(eh / s->stride_h + 1);
    s->Q = (int)(ew / s->stride_w + 1);
    return s->P >= 1 && s->Q >= 1;
}


void cnp_conv_plan_free(cnp_conv_plan *p)
{
    if (!p)
        return;
    cnp_aligned_free(p->w);
    cnp_aligned_free(p->bias);
    cnp_aligned_free(p->qbias);
    cnp_gemm_a_release(&p->pa);
    cnp_wino_free(p->wino);
    free(p);
}

int cnp_wino_prec_parse(const char *s, cnp_wino_prec *out)
{
    static const char *const names[] = {"auto", "fp32", "bf16"};   /* in cnp_wino_prec's order */
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (cnp_wino_prec)i;
            return 1;
        }
    return 0;
}

cnp_conv_plan *cnp_conv_plan_new(cnp_ctx *ctx, const cnp_conv_shape *s, const float *w,
                                 const float *bias, int n_threads)
{
    cnp_conv_opts o = {n_threads, 0, CNP_CONV_AUTO, CNP_ISA_AUTO, CNP_WINO_AUTO, 0, 0, 0};
    return cnp_conv_plan_new_opts(ctx, s, w, bias, &o);
}

cnp_conv_plan *cnp_conv_plan_new_opts(cnp_ctx *ctx, const cnp_conv_shape *s, const float *w,
                                      const float *bias, const cnp_conv_opts *o)
{
    cnp_conv_plan *p = NULL;
    cnp_conv_shape chk = *s;
    size_t crs, kcrs, cols, panel, shared;
    const cnp_conv_algo algo = o->algo;
    const int n_threads = o->n_threads;

    if (s->N < 1 || s->C < 1 || s->H < 1 || s->W < 1 || s->K < 1 || !cnp_conv_shape_finish(&chk) ||
        chk.P != s->P || chk.Q != s->Q) {
        cnp_error(ctx, CNP_ERR_SHAPE,
                  "convolution %dx%d on (%d, %d, %d, %d) -> %d channels: inconsistent shape",
                  s->R, s->S, s->N, s->C, s->H, s->W, s->K);
        goto fail;
    }
    if (!cnp_mul_size((size_t)s->C * s->R, (size_t)s->S, &crs) ||
        !cnp_mul_size(crs, (size_t)s->K, &kcrs) ||
        !cnp_mul_size((size_t)s->N * s->P, (size_t)s->Q, &cols) || cols > INT_MAX ||
        crs > INT_MAX || (size_t)s->N * s->H * (size_t)s->W > INT_MAX) {
        cnp_error(ctx, CNP_ERR_NOMEM, "convolution %dx%d with %d -> %d channels on %d x %dx%d: "
                  "too large", s->R, s->S, s->C, s->K, s->N, s->H, s->W);
        goto fail;
    }
    cnp_blas_single_thread();
    p = cnp_calloc(ctx, 1, sizeof *p, "a convolution plan");
    if (!p)
        goto fail;
    p->s = *s;
    p->n_threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    p->crs = crs;
    p->direct = s->R == 1 && s->S == 1 && s->stride_h == 1 && s->stride_w == 1 &&
                s->pad_t == 0 && s->pad_l == 0 && s->pad_b == 0 && s->pad_r == 0;
    p->w = cnp_aligned_alloc(ctx, kcrs, sizeof *p->w, "convolution weights");
    p->bias = cnp_aligned_alloc(ctx, (size_t)s->K, sizeof *p->bias, "convolution bias");
    if (!p->w || !p->bias)
        goto fail;
    memcpy(p->w, w, kcrs * sizeof *p->w);
    if (bias)
        memcpy(p->bias, bias, (size_t)s->K * sizeof *p->bias);

    p->isa = cnp_isa_for(algo, o->isa);
    p->use_gemm = p->isa != CNP_ISA_GENERIC;
    p->int8 = o->int8 && p->isa == CNP_ISA_AVX512 && cnp_gemm_int8_available();
    p->bf16 = !p->int8 && o->bf16 && p->isa == CNP_ISA_AVX512 && cnp_gemm_bf16_available();
    if (p->use_gemm) {
        cnp_status st;
        if (p->int8)
            st = cnp_gemm_a_pack_int8(ctx, &p->pa, p->w, s->K, (int)crs, crs, o->xmin, o->xmax);
        else
            st = (p->bf16 ? cnp_gemm_a_pack_bf16 : cnp_gemm_a_pack)(ctx, &p->pa, p->w, s->K,
                                                                    (int)crs, crs);
        if (st != CNP_OK)
            goto fail;
        /* int8: sum(w_q * (x_q + qz)) counts qz * sum(w_q) too; the GEMM's
         * bias takes it off. */
        if (p->int8) {
            p->qbias = cnp_aligned_alloc(ctx, (size_t)s->K, sizeof *p->qbias, "int8 bias");
            if (!p->qbias)
                goto fail;
            for (int k = 0; k < s->K; k++)
                p->qbias[k] = p->bias[k] - p->pa.qz * (float)p->pa.qsum[k] * p->pa.qmul[k];
        }
        p->pa.isa = p->isa;
        p->slice = cnp_round_up(cnp_gemm_pack_floats(&p->pa), 16);
        if (!cnp_mul_size(p->slice, (size_t)p->n_threads, &p->scratch)) {
            cnp_error(ctx, CNP_ERR_NOMEM, "convolution scratch too large");
            goto fail;
        }
        /* Winograd where it pays: enough tiles at the largest batch. */
        p->wino_min_tiles = algo == CNP_CONV_WINOGRAD ? 1
                                                      : CONV_WINO_TILES_PER_THREAD * p->n_threads;
        /* An int8 plan takes Winograd too, in bf16 where the CPU has it
         * (the int8 GEMM, 4x the multiplies, measured 0.5-0.65x as fast
         * as bf16 Winograd on ResNet-50's 3x3 layers and no faster than
         * fp32 Winograd), at small batches its int8 GEMM. */
        if (algo != CNP_CONV_GEMM && cnp_wino_eligible(s) &&
            (!p->int8 || cnp_gemm_bf16_available()) &&
            s->N * ((s->P + 3) / 4) * ((s->Q + 3) / 4) >= p->wino_min_tiles) {
            const int bf16_plan = p->bf16 || p->int8;
            p->wino_bf16 = bf16_plan && (o->wino == CNP_WINO_BF16 ||
                                         (o->wino == CNP_WINO_AUTO &&
                                          s->C >= CONV_WINO_BF16_MIN_C));
            p->wino = cnp_wino_new(ctx, s, p->w, p->n_threads, p->isa, p->wino_bf16);
            if (!p->wino)
                goto fail;
            if (cnp_wino_scratch_floats(p->wino) > p->scratch)
                p->scratch = cnp_wino_scratch_floats(p->wino);
        }
        /* The packed copies are all the fast paths read. */
        cnp_aligned_free(p->w);
        p->w = NULL;
        return p;
    }

    /* Column block: panel (crs, nb) plus output (K, nb) within the budget. */
    {
        size_t per_col = (p->direct ? 0 : crs) + (size_t)s->K;
        size_t nb = CONV_L2_BUDGET / (sizeof(float) * per_col);
        nb = nb / 16 * 16;
        if (nb < CONV_MIN_BLOCK)
            nb = CONV_MIN_BLOCK;
        if (nb > CONV_MAX_BLOCK)
            nb = CONV_MAX_BLOCK;
        p->block = (int)nb;
    }
    if (p->direct) {
        p->slice = 0;
        p->scratch = 0;
    } else {
        /* Per-thread panels, or one shared panel when the rows are split. */
        if (!cnp_mul_size(crs, (size_t)p->block, &panel)) {
            cnp_error(ctx, CNP_ERR_NOMEM, "convolution scratch too large");
            goto fail;
        }
        p->slice = cnp_round_up(panel, 16);
        shared = (size_t)p->n_threads * CONV_KSPLIT_COLS;
        if (shared > cols)
            shared = cols;
        if (!cnp_mul_size(crs, shared, &shared) ||
            !cnp_mul_size(p->slice, (size_t)p->n_threads, &p->scratch)) {
            cnp_error(ctx, CNP_ERR_NOMEM, "convolution scratch too large");
            goto fail;
        }
        if (shared > p->scratch)
            p->scratch = shared;
    }
    return p;

fail:
    cnp_conv_plan_free(p);
    return NULL;
}

int cnp_conv_plan_int8(const cnp_conv_plan *p)
{
    return p->int8;
}

size_t cnp_conv_plan_scratch_floats(const cnp_conv_plan *p)
{
    return p->scratch;
}

/* col (rows [row0, row1) of C*R*S, ld ldcol) = columns [j0, j0 + nb) of
 * im2col(x) for a batch of n. */
static void im2col(float *col, size_t ldcol, const float *x, const cnp_conv_shape *s, int n,
                   size_t j0, size_t nb, size_t row0, size_t row1)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const size_t xcols = (size_t)n * HW;
    const size_t RS = (size_t)s->R * s->S;
    const int sw = s->stride_w;

    for (size_t row = row0; row < row1; row++) {
        const int c = (int)(row / RS), r = (int)(row % RS / s->S), t = (int)(row % s->S);
        const int off_w = t * s->dil_w - s->pad_l;      /* iw = q * sw + off_w */
        const int off_h = r * s->dil_h - s->pad_t;      /* ih = p * sh + off_h */
        int qa, qb;     /* output columns q in [qa, qb) read inside the image */
        const float *xc = x + (size_t)c * xcols;
        float *dst = col + (row - row0) * ldcol;
        const size_t rem = j0 % PQ;
        int img = (int)(j0 / PQ);
        int p = (int)(rem / s->Q), q = (int)(rem % s->Q);
        size_t j = 0;

        cnp_im2col_span(s, off_w, &qa, &qb);
        if (qb > s->Q)
            qb = s->Q;
        if (qa > qb)
            qa = qb;
        while (j < nb) {
            int len = s->Q - q;
            const int ih = p * s->stride_h + off_h;
            float *d = dst + j;
            if ((size_t)len > nb - j)
                len = (int)(nb - j);
            if (ih < 0 || ih >= s->H) {
                memset(d, 0, (size_t)len * sizeof *d);
            } else {
                const float *src = xc + img * HW + (size_t)ih * s->W;
                const int e = q + len;
                const int lo = qa > q ? (qa < e ? qa : e) : q;
                const int hi = qb < e ? (qb > lo ? qb : lo) : e;
                if (lo > q)
                    memset(d, 0, (size_t)(lo - q) * sizeof *d);
                if (hi <= lo) {
                    /* nothing inside the image */
                } else if (sw == 1) {
                    memcpy(d + (lo - q), src + lo + off_w, (size_t)(hi - lo) * sizeof *d);
                } else {
                    for (int qq = lo; qq < hi; qq++)
                        d[qq - q] = src[qq * sw + off_w];
                }
                if (e > hi)
                    memset(d + (hi - q), 0, (size_t)(e - hi) * sizeof *d);
            }
            j += (size_t)len;
            q += len;
            cnp_carry(&q, &p, &img, s->Q, s->P);
        }
    }
}

/* y rows [k0, k1), columns [j0, j0 + nb) (ld ldy) += bias, + residual
 * (same ld, NULL when already accumulated), then act. */
static void epilogue(float *y, const float *res, const float *bias, size_t ldy, int k0,
                     int k1, size_t j0, size_t nb, cnp_act act)
{
    for (int k = k0; k < k1; k++) {
        float *yr = y + (size_t)k * ldy + j0;
        const float b = bias[k];
        if (res) {
            const float *rr = res + (size_t)k * ldy + j0;
            for (size_t j = 0; j < nb; j++)
                yr[j] = yr[j] + b + rr[j];
        } else {
            for (size_t j = 0; j < nb; j++)
                yr[j] = yr[j] + b;
        }
        if (act == CNP_ACT_RELU)
            for (size_t j = 0; j < nb; j++)
                yr[j] = yr[j] < 0.0f ? 0.0f : yr[j];
    }
}

/* Rows [k0, k1) of y over columns [j0, j0 + nb): sgemm on the B panel
 * (ld ldb), then the epilogue. */
static void gemm_block(const cnp_conv_plan *p, float *y, size_t ldy, const float *b,
                       size_t ldb, int k0, int k1, size_t j0, size_t nb,
                       const float *residual, cnp_act act)
{
    const int in_place = residual == y;
    if (k1 <= k0 || nb == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k1 - k0, (int)nb, (int)p->crs,
                1.0f, p->w + (size_t)k0 * p->crs, (int)p->crs, b, (int)ldb,
                in_place ? 1.0f : 0.0f, y + (size_t)k0 * ldy + j0, (int)ldy);
    epilogue(y, in_place ? NULL : residual, p->bias, ldy, k0, k1, j0, nb, act);
}

/* canopy's GEMM splits the rows between the threads, not the columns,
 * when there are too few columns for every thread. */
static int gemm_by_rows(const cnp_conv_plan *p, size_t cols, int nt)
{
    return cols < (size_t)nt * CONV_GEMM_MIN_COLS && p->s.K >= 16 * nt;
}

/* OpenBLAS path: few columns, the threads share one panel and split K. */
static int blas_by_rows(const cnp_conv_plan *p, size_t cols, int nt)
{
    return cols < (size_t)nt * CONV_KSPLIT_COLS && p->s.K >= 32 * nt;
}

static int use_wino(const cnp_conv_plan *p, int n)
{
    return p->wino && cnp_wino_tiles(p->wino, n) >= p->wino_min_tiles;
}

const char *cnp_conv_path(const cnp_conv_plan *p, int n)
{
    const size_t cols = (size_t)n * p->s.P * p->s.Q;
    if (use_wino(p, n))
        return p->isa == CNP_ISA_AVX2 ? "winograd-avx2"
               : p->wino_bf16         ? "winograd-bf16"
                                      : "winograd";
    if (p->use_gemm) {
        /* [by rows][fp32, bf16, avx2, int8]; a bf16 or int8 plan always runs canopy's GEMM */
        static const char *const names[2][4] = {
            {"gemm", "gemm-bf16", "gemm-avx2", "gemm-int8"},
            {"gemm-rows", "gemm-rows-bf16", "gemm-rows-avx2", "gemm-rows-int8"}};
        const int kind = p->int8 ? 3 : p->isa == CNP_ISA_AVX2 ? 2 : p->bf16;
        return names[gemm_by_rows(p, cols, p->n_threads)][kind];
    }
    return blas_by_rows(p, cols, p->n_threads) ? "openblas-rows" : "openblas";
}

/* The AVX-512 path: every thread packs its own B blocks and runs the
 * blocked GEMM on column chunks it takes as it goes (so that a thread the
 * OS preempts holds the others up for one chunk at most), or, when the
 * columns are few, on its share of the rows. */
static void run_gemm(const cnp_conv_plan *p, float *y, const float *x, int n,
                     const float *residual, cnp_act act, float *scratch)
{
    const cnp_conv_shape *s = &p->s;
    const size_t cols = (size_t)n * s->P * s->Q;
    const int nt = p->n_threads;
    cnp_gemm_b src;
    cnp_gemm_epi e;

    src.x = x;
    src.ld = cols;
    src.conv = p->direct ? NULL : s;
    src.n = n;
    e.bias = p->int8 ? p->qbias : p->bias;
    e.residual = residual == y ? NULL : residual;
    e.accumulate = residual != NULL && residual == y;
    e.act = act;

    /* Chunks: one L2 block of columns, smaller if that leaves fewer than
     * two per thread, whole 48-column micro-panels. */
    size_t chunk = (size_t)p->pa.nb, nchunks;
    if (nt > 1 && chunk * 2 * (size_t)nt > cols)
        chunk = cnp_round_up(cnp_div_up(cols, 2 * (size_t)nt), 48);
    nchunks = cnp_div_up(cols, chunk);

#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), tn = omp_get_num_threads();
        float *pack = scratch + p->slice * (size_t)t;
        if (!gemm_by_rows(p, cols, tn)) {
#pragma omp for schedule(dynamic, 1)
            for (size_t ch = 0; ch < nchunks; ch++) {
                const size_t c0 = ch * chunk;
                cnp_gemm_run(&p->pa, &src, y, cols, 0, s->K, c0,
                             cols - c0 < chunk ? cols - c0 : chunk, &e, pack);
            }
        } else {
            /* Rows in whole 8-row panels per thread. */
            const int panels = (s->K + 7) / 8;
            const int m0 = panels * t / tn * 8;
            int m1 = panels * (t + 1) / tn * 8;
            if (m1 > s->K)
                m1 = s->K;
            if (m1 > m0)
                cnp_gemm_run(&p->pa, &src, y, cols, m0, m1, 0, cols, &e, pack);
        }
    }
}

void cnp_conv_run(const cnp_conv_plan *p, float *y, const float *x, int n,
                  const float *residual, cnp_act act, float *scratch)
{
    const cnp_conv_shape *s = &p->s;
    const size_t cols = (size_t)n * s->P * s->Q;
    const int nt = p->n_threads;
    size_t nblocks, nb;

    assert(n >= 1 && n <= s->N);
    assert(p->direct || p->use_gemm || scratch);
    if (use_wino(p, n)) {
        cnp_wino_run(p->wino, y, x, n, p->bias, residual, act, scratch);
        return;
    }
    if (p->use_gemm) {
        run_gemm(p, y, x, n, residual, act, scratch);
        return;
    }

    if (blas_by_rows(p, cols, nt)) {
        /* Few columns: split the K rows, one shared panel. */
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), tn = omp_get_num_threads();
            const size_t rows = p->crs;
            const float *b = x;
            int k0, k1;
            if (!p->direct) {
                const size_t r0 = rows * t / tn, r1 = rows * (t + 1) / tn;
                im2col(scratch + r0 * cols, cols, x, s, n, 0, cols, r0, r1);
                b = scratch;
#pragma omp barrier
            }
            k0 = (int)(cnp_round_up((size_t)s->K * t / tn, 16));
            k1 = t + 1 == tn ? s->K : (int)(cnp_round_up((size_t)s->K * (t + 1) / tn, 16));
            if (k0 > s->K)
                k0 = s->K;
            if (k1 > s->K)
                k1 = s->K;
            gemm_block(p, y, cols, b, cols, k0, k1, 0, cols, residual, act);
        }
        return;
    }

    /* Column blocks: a multiple of the thread count, equal sizes. */
    nblocks = cnp_div_up(cols, (size_t)p->block);
    nblocks = cnp_round_up(nblocks, (size_t)nt);
    nb = cnp_round_up(cnp_div_up(cols, nblocks), 16);
    nblocks = cnp_div_up(cols, nb);

#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        float *panel = p->direct ? NULL : scratch + p->slice * (size_t)t;
#pragma omp for schedule(static)
        for (size_t bi = 0; bi < nblocks; bi++) {
            const size_t j0 = bi * nb;
            const size_t len = cols - j0 < nb ? cols - j0 : nb;
            if (p->direct) {
                gemm_block(p, y, cols, x + j0, cols, 0, s->K, j0, len, residual, act);
            } else {
                im2col(panel, len, x, s, n, j0, len, 0, p->crs);
                gemm_block(p, y, cols, panel, len, 0, s->K, j0, len, residual, act);
            }
        }
    }
}
