/* kernels.h -- the engine's compute kernels (internal to classifier/engine).
 *
 * Layouts:
 *   4-D activations are stored CNHW: (C, N*H*W), one contiguous plane of
 *   N*H*W values per channel, so that a batch folds into the GEMM N
 *   dimension and a 1x1 stride-1 convolution is a plain GEMM.
 *   2-D activations (after global pooling / Flatten) are (N, F) row-major.
 *
 * Every optimised kernel has a naive `_ref` twin with the same contract;
 * tests/engine compares them on random data. Kernels take the output first,
 * then inputs, then a shape struct. Parallel kernels open one OpenMP region
 * with `n_threads` threads; inside it they run canopy's AVX-512 kernels
 * (gemm.c, winograd.c) where the CPU has AVX-512F, else OpenBLAS sgemm
 * single-threaded.
 */
#ifndef CNP_ENGINE_KERNELS_H
#define CNP_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "base/arith.h"
#include "base/base.h"
#include "engine/engine.h"

typedef enum { CNP_ACT_NONE = 0, CNP_ACT_RELU = 1 } cnp_act;

/* Convolution geometry (groups = 1). P, Q are the output height and width,
 * computed by the caller (cnp_conv_shape_finish). */
typedef struct cnp_conv_shape {
    int N, C, H, W;             /* input: C channels of N images H x W */
    int K, R, S;                /* K output channels, R x S kernel */
    int stride_h, stride_w;
    int pad_t, pad_l, pad_b, pad_r;
    int dil_h, dil_w;
    int P, Q;                   /* output height, width */
} cnp_conv_shape;

/* The odometer of im2col's walks: *a reached A carries into *b, which
 * carries at B into *c: (q, p, image) over output positions, (s, r, c)
 * over rows of im2col. */
static inline void cnp_carry(int *a, int *b, int *c, int A, int B)
{
    if (*a == A) {
        *a = 0;
        if (++*b == B) {
            *b = 0;
            ++*c;
        }
    }
}

/* Output columns q in [*qa, *qb) read inside the image for the im2col
 * row whose window column is off_w: iw = q * stride_w + off_w. */
static inline void cnp_im2col_span(const struct cnp_conv_shape *s, int off_w, int *qa, int *qb)
{
    const int sw = s->stride_w;
    *qa = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
    *qb = s->W - 1 - off_w < 0 ? 0 : (s->W - 1 - off_w) / sw + 1;
}

/* 1 where canopy's vector kernels (AVX-512, AVX2 + FMA: gemm*.c, pool.c,
 * winograd*.c) are compiled; elsewhere the engine runs OpenBLAS and plain
 * C, and cnp_isa_resolve() is always CNP_ISA_GENERIC. */
#if defined(__x86_64__) || defined(__i386__)
#define CNP_X86 1
#else
#define CNP_X86 0
#endif

/* Computes P and Q; returns 0 when they would be < 1. */
int cnp_conv_shape_finish(cnp_conv_shape *s);

/* A convolution with its weights packed for the fast path. N in the shape
 * is the largest batch the plan serves. */
typedef struct cnp_conv_plan cnp_conv_plan;

/* Copies/packs w (K, C, R, S) and bias (K, or NULL for zero) for up to
 * `n_threads` threads, fp32, kernels chosen automatically. Returns a new
 * plan the caller frees with cnp_conv_plan_free(), or NULL with ctx set. */
cnp_conv_plan *cnp_conv_plan_new(cnp_ctx *ctx, const cnp_conv_shape *s,
                                 const float *w, const float *bias, int n_threads);

/* How a convolution is planned. */
typedef struct cnp_conv_opts {
    int n_threads;          /* <= 0: all cores */
    int bf16;               /* 1: canopy's GEMM in bf16 (weights rounded to bf16
                             * here, activations as they are packed, fp32
                             * accumulation and epilogue) where
                             * cnp_gemm_bf16_available(), and Winograd's GEMMs
                             * as wino says; otherwise fp32 */
    cnp_conv_algo algo;     /* CNP_CONV_AUTO, or a path forced (engine.h) */
    cnp_isa isa;            /* CNP_ISA_AUTO or the vector code asked for (engine.h);
                             * bf16 only on AVX512 */
    cnp_wino_prec wino;     /* bf16 plans: Winograd's precision (engine.h);
                             * CNP_WINO_AUTO (0): conv.c's measured rule */
    int int8;               /* 1: canopy's GEMM in int8 (cnp_gemm_a_pack_int8) with the
                             * input range [xmin, xmax], where cnp_gemm_int8_available()
                             * and isa is AVX512; takes precedence over bf16. Its
                             * Winograd path: bf16 Winograd where the CPU has bf16
                             * (as wino says), else none */
    float xmin, xmax;       /* int8: the range of x the calibration saw */
} cnp_conv_opts;

/* Same as cnp_conv_plan_new() with the options in o. */
cnp_conv_plan *cnp_conv_plan_new_opts(cnp_ctx *ctx, const cnp_conv_shape *s, const float *w,
                                      const float *bias, const cnp_conv_opts *o);
void cnp_conv_plan_free(cnp_conv_plan *p);

/* Floats of scratch cnp_conv_run() needs at batch <= the plan's N. */
size_t cnp_conv_plan_scratch_floats(const cnp_conv_plan *p);

/* y (K, n*P*Q) = act(conv(x (C, n*H*W)) + bias [+ residual (K, n*P*Q)]).
 * residual may be NULL. scratch: cnp_conv_plan_scratch_floats() floats,
 * 64-byte aligned, owned by the caller. y must not alias x; it may alias
 * residual. */
void cnp_conv_run(const cnp_conv_plan *p, float *y, const float *x, int n,
                  const float *residual, cnp_act act, float *scratch);

/* Which kernel cnp_conv_run() takes at batch n: "winograd", "gemm"
 * (column chunks), "gemm-rows" (rows split between threads), each with
 * "-bf16" where it runs in bf16 (a bf16 plan's GEMM always; its Winograd
 * as cnp_conv_opts.wino chose), "-int8" (an int8 plan's GEMM) or "-avx2"
 * for an AVX2 plan, or "openblas", "openblas-rows". Static string. */
const char *cnp_conv_path(const cnp_conv_plan *p, int n);

/* 1 when the plan's GEMM runs in int8. */
int cnp_conv_plan_int8(const cnp_conv_plan *p);

/* Naive reference: direct loops, same layouts and semantics, N = s->N. */
void cnp_conv2d_ref(float *y, const float *x, const float *w, const float *bias,
                    const float *residual, cnp_act act, const cnp_conv_shape *s);

/* Pooling geometry; P, Q computed by the caller (ceil_mode included). */
typedef struct cnp_pool_shape {
    int N, C, H, W;
    int R, S;
    int stride_h, stride_w;
    int pad_t, pad_l, pad_b, pad_r;
    int P, Q;
    int count_include_pad;      /* AveragePool only */
} cnp_pool_shape;

/* How a pooling or dense kernel call runs: its threads, and whether it may
 * take canopy's AVX-512 code (cnp_exec_make: isa resolves to AVX512 and
 * the plan did not force CNP_CONV_OPENBLAS, which stands for a CPU
 * without it). Set by cnp_model_prepare() from its options; tests make
 * their own. */
typedef struct cnp_exec {
    int n_threads;          /* <= 0: all cores */
    int avx512;             /* 1: AVX-512 kernels allowed */
    int avx2;               /* 1: the AVX2 + FMA kernels (the AVX2 path) */
} cnp_exec;
cnp_exec cnp_exec_make(int n_threads, cnp_conv_algo algo, cnp_isa isa);

/* y (C, N*P*Q) from x (C, N*H*W). Padding never wins a max. */
void cnp_maxpool2d(float *y, const float *x, const cnp_pool_shape *s, const cnp_exec *ex);
void cnp_maxpool2d_ref(float *y, const float *x, const cnp_pool_shape *s);
void cnp_avgpool2d(float *y, const float *x, const cnp_pool_shape *s, const cnp_exec *ex);
void cnp_avgpool2d_ref(float *y, const float *x, const cnp_pool_shape *s);

/* Global pooling: y (N, C) row-major from x (C, N*HW). */
void cnp_global_avgpool(float *y, const float *x, int N, int C, int HW, int n_threads);
void cnp_global_avgpool_ref(float *y, const float *x, int N, int C, int HW);
void cnp_global_maxpool(float *y, const float *x, int N, int C, int HW, int n_threads);
void cnp_global_maxpool_ref(float *y, const float *x, int N, int C, int HW);

/* Dense layer: y (N, M) = act(x (N, K) * W^T + bias), W (M, K) row-major
 * (ONNX Gemm with transB = 1, i.e. PyTorch Linear). bias may be NULL. */
void cnp_linear(float *y, const float *x, const float *w, const float *bias,
                int N, int K, int M, cnp_act act, const cnp_exec *ex);
void cnp_linear_ref(float *y, const float *x, const float *w, const float *bias,
                    int N, int K, int M, cnp_act act);

/* Per-feature affine on (N, F) rows: y[n,f] = x[n,f] * scale[f] + shift[f]
 * (BatchNorm1d at inference). y may alias x. */
void cnp_affine_rows(float *y, const float *x, const float *scale, const float *shift,
                     int N, int F);

/* Elementwise, y may alias inputs. */
void cnp_add(float *y, const float *a, const float *b, size_t n, cnp_act act);
void cnp_relu(float *y, const float *x, size_t n);
void cnp_sigmoid(float *y, const float *x, size_t n);

/* NCHW <-> CNHW for the model's input: y (C, N*H*W) from x (N, C, H*W). */
void cnp_nchw_to_cnhw(float *y, const float *x, int N, int C, int HW);

/* ---- Internals shared by conv.c, winograd.c and gemm.c ---------------- */

/* canopy's own GEMM (gemm.c): AVX-512F micro-kernels with weights packed
 * at plan time; OpenBLAS is the fallback on other CPUs. */
int cnp_gemm_available(void);   /* 1 when this CPU runs it */
/* 1 when this CPU runs the AVX2 + FMA variant (gemm_avx2.c). */
int cnp_gemm_avx2_available(void);


/* A (M, Kd) packed for the micro-kernels. Owned by its plan. */
typedef struct cnp_gemm_a {
    int M, Kd;
    int kc;          /* inner-dimension block (a multiple of 4) */
    int nb;          /* column block (a multiple of 48) */
    float *data;     /* round_up(M, 8) x Kd floats, 64-byte aligned; NULL for bf16 */
    uint32_t *a2;    /* bf16: round_up(M, 8) x round_up(Kd, 2) / 2 bf16 pairs; else NULL */
    uint32_t *a4;    /* int8: round_up(M, 8) x round_up(Kd, 4) / 4 words, each the int8
                      * weights of k .. k+3; else NULL */
    float *qmul;     /* int8: (round_up(M, 8)) s_x * s_w[row], int32 sums -> fp32 */
    int32_t *qsum;   /* int8: (round_up(M, 8)) sum of each row's int8 weights */
    float qinv, qz;  /* int8: B's quantisation, 1 / s_x and the zero point */
    cnp_isa isa;     /* the kernels cnp_gemm_run() takes: AVX512 (as packed), or AVX2
                      * (fp32 only, same layout) set by the plan after packing */
} cnp_gemm_a;

/* Packs a (M, Kd), row stride lda. CNP_OK or an error in ctx. Release with
 * cnp_gemm_a_release() (NULL data is fine). */
cnp_status cnp_gemm_a_pack(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, int M, int Kd,
                           size_t lda);
/* Same, the weights rounded to bf16 (nearest even) for the bf16 kernels
 * (gemm_bf16.c): cnp_gemm_run() then converts B to bf16 as it packs it and
 * accumulates the products in fp32 (vdpbf16ps). Only where
 * cnp_gemm_bf16_available(). */
cnp_status cnp_gemm_a_pack_bf16(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, int M, int Kd,
                                size_t lda);
/* Same, quantised for the int8 kernels (gemm_int8.c): each row of
 * weights symmetric int8 (scale max|w| / 127), and B, as cnp_gemm_run()
 * packs it, u8 with cnp_quant_params(xmin, xmax); the int32 sums are
 * multiplied by pa->qmul[row]. What the zero point adds to a row,
 * pa->qz * pa->qsum[row] * pa->qmul[row], is the caller's to subtract
 * (conv.c folds it into the bias). Only where cnp_gemm_int8_available(). */
cnp_status cnp_gemm_a_pack_int8(cnp_ctx *ctx, cnp_gemm_a *pa, const float *a, int M, int Kd,
                                size_t lda, float xmin, float xmax);
void cnp_gemm_a_release(cnp_gemm_a *pa);

/* 1 when this CPU runs the int8 kernels: AVX512_VNNI (and the AVX-512F/BW
 * they build on). */
int cnp_gemm_int8_available(void);
/* The u8 quantisation of activations in [xmin, xmax] (widened to hold 0):
 * scale = (xmax - xmin) / 255 (1 when that is 0), zero = round(-xmin /
 * scale), so that q = clamp(round(x / scale) + zero, 0, 255) holds 0
 * exactly (as zero). */
void cnp_quant_params(float xmin, float xmax, float *scale, float *zero);

/* 1 when this CPU runs the bf16 kernels: AVX512_BF16 (and the AVX-512F/BW
 * they build on). */
int cnp_gemm_bf16_available(void);

/* Floats of per-thread packing buffer cnp_gemm_run() needs (64-byte aligned). */
size_t cnp_gemm_pack_floats(const cnp_gemm_a *pa);

/* Where B (Kd, cols) comes from: a dense matrix x with row stride ld
 * (conv == NULL), or im2col of x (C, n*H*W) for the convolution conv. */
typedef struct cnp_gemm_b {
    const float *x;
    size_t ld;
    const cnp_conv_shape *conv;
    int n;
} cnp_gemm_b;

/* What happens to each C tile as it is stored: C (+ C when accumulate)
 * + bias[row] (+ residual, same ld as C, at C's origin), then act. */
typedef struct cnp_gemm_epi {
    const float *bias;       /* (M) or NULL */
    const float *residual;   /* or NULL; must not be C itself (use accumulate) */
    cnp_act act;
    int accumulate;
} cnp_gemm_epi;

/* Single-threaded: C rows [m0, m1) (m0 a multiple of 8), columns
 * [j0, j0 + ncols), ld ldc, = A x B with the epilogue. pack: this
 * thread's cnp_gemm_pack_floats() buffer. */
void cnp_gemm_run(const cnp_gemm_a *pa, const cnp_gemm_b *src, float *c, size_t ldc, int m0,
                  int m1, size_t j0, size_t ncols, const cnp_gemm_epi *e, float *pack);

/* Winograd's GEMMs: C (rows, columns [n0, n1)) (+)= A (rows, Kd), unpacked
 * with row stride lda, x B (Kd, N) packed once by cnp_gemm_bpanel_pack()
 * into cnp_gemm_bpanel_floats() floats (64-byte aligned). n0 is a multiple
 * of 48 and n1 is N or a multiple of 48. isa: AVX512 or AVX2, the
 * micro-kernels to use. */
size_t cnp_gemm_bpanel_floats(int Kd, int N);
void cnp_gemm_bpanel_pack(float *dst, const float *b, size_t ldb, int Kd, int N);
void cnp_gemm_rows(float *c, size_t ldc, const float *a, size_t lda, int rows, const float *bp,
                   int Kd, int N, int n0, int n1, int accumulate, cnp_isa isa);
/* The same in bf16 (gemm_bf16.c's micro-kernel, fp32 accumulation; only
 * where cnp_gemm_bf16_available()): A rows of ceil(Kd/2) bf16 pairs
 * (channels k, k+1; a zero pads an odd Kd), lda pairs apart; B a
 * cnp_gemm_bpanel_pack() panel as pairs, converted by cnp_gemm_b_to_bf16()
 * with kc = Kd into cnp_gemm_bpanel_pairs() words. */
size_t cnp_gemm_bpanel_pairs(int Kd, int N);
void cnp_gemm_rows_bf16(float *c, size_t ldc, const uint32_t *a, size_t lda, int rows,
                        const uint32_t *bp, int Kd, int N, int n0, int n1, int accumulate);

/* Dense layers at small batches (gemm.c, AVX-512F): y[n][m] (row stride
 * ldy) = dot(w[m], x[n]) for rows m in [m0, m1) of w (M, K) row-major and
 * the N <= CNP_GEMM_SMALL_N rows of x (N, K). No bias, no activation. */
#define CNP_GEMM_SMALL_N 4
void cnp_gemm_small_n(float *y, size_t ldy, const float *x, const float *w, int N, int K,
                      int m0, int m1);

/* Winograd F(4x4, 3x3) for 3x3 stride-1 dilation-1 convolutions
 * (winograd.c on AVX-512F, winograd_avx2.c's transforms on AVX2 + FMA).
 * A plan of its own inside a cnp_conv_plan. */
typedef struct cnp_wino cnp_wino;
int cnp_wino_eligible(const cnp_conv_shape *s);     /* the shape; not the CPU */
/* w (K, C, 3, 3), for isa AVX512 or AVX2 (which the CPU must have); with
 * bf16 (AVX512 only, and the CPU must have AVX512_BF16) the transformed
 * weights and input tiles are rounded to bf16 and their products summed
 * in fp32 (cnp_gemm_rows_bf16). A new plan the caller frees with
 * cnp_wino_free(), or NULL with ctx set. */
cnp_wino *cnp_wino_new(cnp_ctx *ctx, const cnp_conv_shape *s, const float *w, int n_threads,
                       cnp_isa isa, int bf16);
void cnp_wino_free(cnp_wino *w);
size_t cnp_wino_scratch_floats(const cnp_wino *w);
int cnp_wino_tiles(const cnp_wino *w, int n);   /* 4x4 output tiles at batch n */
/* Same contract as cnp_conv_run(); bias (K) or NULL. */
void cnp_wino_run(const cnp_wino *w, float *y, const float *x, int n, const float *bias,
                  const float *residual, cnp_act act, float *scratch);

/* Sets OpenBLAS to one thread, once per process (cnp_blas_init() does it
 * too): every kernel calls sgemm from inside its own OpenMP region. */
void cnp_blas_single_thread(void);

#endif
