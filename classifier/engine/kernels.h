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
 * with `n_threads` threads and call OpenBLAS single-threaded inside it.
 */
#ifndef CNP_ENGINE_KERNELS_H
#define CNP_ENGINE_KERNELS_H

#include <stddef.h>
#include "base/base.h"

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

/* Computes P and Q; returns 0 when they would be < 1. */
int cnp_conv_shape_finish(cnp_conv_shape *s);

/* A convolution with its weights packed for the fast path. N in the shape
 * is the largest batch the plan serves. */
typedef struct cnp_conv_plan cnp_conv_plan;

/* Copies/packs w (K, C, R, S) and bias (K, or NULL for zero) for up to
 * `n_threads` threads. Returns a new plan the caller frees with
 * cnp_conv_plan_free(), or NULL with ctx set. */
cnp_conv_plan *cnp_conv_plan_new(cnp_ctx *ctx, const cnp_conv_shape *s,
                                 const float *w, const float *bias, int n_threads);
void cnp_conv_plan_free(cnp_conv_plan *p);

/* Floats of scratch cnp_conv_run() needs at batch <= the plan's N. */
size_t cnp_conv_plan_scratch_floats(const cnp_conv_plan *p);

/* y (K, n*P*Q) = act(conv(x (C, n*H*W)) + bias [+ residual (K, n*P*Q)]).
 * residual may be NULL. scratch: cnp_conv_plan_scratch_floats() floats,
 * 64-byte aligned, owned by the caller. y must not alias x; it may alias
 * residual. */
void cnp_conv_run(const cnp_conv_plan *p, float *y, const float *x, int n,
                  const float *residual, cnp_act act, float *scratch);

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

/* y (C, N*P*Q) from x (C, N*H*W). Padding never wins a max. */
void cnp_maxpool2d(float *y, const float *x, const cnp_pool_shape *s, int n_threads);
void cnp_maxpool2d_ref(float *y, const float *x, const cnp_pool_shape *s);
void cnp_avgpool2d(float *y, const float *x, const cnp_pool_shape *s, int n_threads);
void cnp_avgpool2d_ref(float *y, const float *x, const cnp_pool_shape *s);

/* Global pooling: y (N, C) row-major from x (C, N*HW). */
void cnp_global_avgpool(float *y, const float *x, int N, int C, int HW, int n_threads);
void cnp_global_avgpool_ref(float *y, const float *x, int N, int C, int HW);
void cnp_global_maxpool(float *y, const float *x, int N, int C, int HW, int n_threads);
void cnp_global_maxpool_ref(float *y, const float *x, int N, int C, int HW);

/* Dense layer: y (N, M) = act(x (N, K) * W^T + bias), W (M, K) row-major
 * (ONNX Gemm with transB = 1, i.e. PyTorch Linear). bias may be NULL. */
void cnp_linear(float *y, const float *x, const float *w, const float *bias,
                int N, int K, int M, cnp_act act, int n_threads);
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

#endif
