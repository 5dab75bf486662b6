/* dense.c -- linear (Gemm) layers, per-feature affine, elementwise ops and
 * the input layout change.
 *
 * The elementwise kernels take no thread count: they run on
 * omp_get_max_threads() threads when the tensor is large enough to gain
 * from it, else on the calling thread.
 */
#include "engine/kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Below this many values an elementwise call stays on one thread. */
#define ELTWISE_PARALLEL_MIN 65536
/* Below this many weights a linear layer runs on one thread. */
#define LINEAR_PARALLEL_MIN 65536

static int eltwise_threads(size_t n)
{
    return n < ELTWISE_PARALLEL_MIN ? 1 : omp_get_max_threads();
}

void cnp_linear(float *y, const float *x, const float *w, const float *bias, int N, int K,
                int M, cnp_act act, const cnp_exec *ex)
{
    int nt = ex->n_threads > 0 ? ex->n_threads : omp_get_max_threads();
    /* A few chips: canopy's dot-product kernel streams W at memory speed;
     * OpenBLAS's sgemm reached half of it there (ResNet-50's fastai head,
     * 4096 -> 512 at batch 1: 0.9 ms). */
    const int small = N <= CNP_GEMM_SMALL_N && ex->avx512;
    if ((size_t)M * K < LINEAR_PARALLEL_MIN || M < 32)
        nt = 1;
    cnp_blas_single_thread();
    /* Each thread owns a slice of the M outputs and streams only its rows
     * of W: at small N the layer is bound by reading the weights. */
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), tn = omp_get_num_threads();
        int m0 = (int)((long)M * t / tn), m1 = (int)((long)M * (t + 1) / tn);
        /* Whole cache lines of y per thread where possible. */
        if (t > 0)
            m0 = (m0 + 15) / 16 * 16;
        if (t + 1 < tn)
            m1 = (m1 + 15) / 16 * 16;
        if (m0 > M)
            m0 = M;
        if (m1 > M)
            m1 = M;
        if (m1 > m0) {
            if (small)
                cnp_gemm_small_n(y, (size_t)M, x, w, N, K, m0, m1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, m1 - m0, K, 1.0f, x, K,
                            w + (size_t)m0 * K, K, 0.0f, y + m0, M);
            for (int n = 0; n < N; n++) {
                float *yr = y + (size_t)n * M;
                if (bias)
                    for (int m = m0; m < m1; m++)
                        yr[m] += bias[m];
                if (act == CNP_ACT_RELU)
                    for (int m = m0; m < m1; m++)
                        yr[m] = yr[m] < 0.0f ? 0.0f : yr[m];
            }
        }
    }
}

void cnp_affine_rows(float *y, const float *x, const float *scale, const float *shift, int N,
                     int F)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * F;
        float *yr = y + (size_t)n * F;
        for (int f = 0; f < F; f++)
            yr[f] = xr[f] * scale[f] + shift[f];
    }
}

void cnp_add(float *y, const float *a, const float *b, size_t n, cnp_act act)
{
    if (act == CNP_ACT_RELU) {
#pragma omp parallel for schedule(static) num_threads(eltwise_threads(n))
        for (size_t i = 0; i < n; i++) {
            const float v = a[i] + b[i];
            y[i] = v < 0.0f ? 0.0f : v;
        }
    } else {
#pragma omp parallel for schedule(static) num_threads(eltwise_threads(n))
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    }
}

/* ReLU keeps NaN, as PyTorch does: v < 0 ? 0 : v. */
void cnp_relu(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) num_threads(eltwise_threads(n))
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* 1 / (1 + e^-x) without overflow: for x < 0 use e^x / (1 + e^x), so that
 * the exponential is always of a non-positive number. NaN stays NaN. */
void cnp_sigmoid(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) num_threads(eltwise_threads(n))
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            const float e = expf(v);
            y[i] = e / (1.0f + e);
        }
    }
}

void cnp_nchw_to_cnhw(float *y, const float *x, int N, int C, int HW)
{
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static) \
    num_threads(eltwise_threads((size_t)planes * (size_t)HW))
    for (long i = 0; i < planes; i++) {
        const long n = i / C, c = i % C;
        memcpy(y + ((size_t)c * N + (size_t)n) * (size_t)HW, x + (size_t)i * HW,
               (size_t)HW * sizeof *y);
    }
}
