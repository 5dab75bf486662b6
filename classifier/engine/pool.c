/* pool.c -- max and average pooling, global pooling (CNHW in).
 *
 * Parallel over the C*N image planes, one OpenMP region per call. Windows
 * are clipped to the image; padding never wins a max, and an average
 * counts the padded positions only with count_include_pad (positions past
 * the bottom/right padding, which ceil mode can produce, never count:
 * PyTorch's rule).
 */
#include "engine/kernels.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>

/* Below this many input values a call runs on one thread. */
#define POOL_PARALLEL_MIN 32768

static int threads_for(size_t work, int n_threads)
{
    if (n_threads <= 0)
        n_threads = omp_get_max_threads();
    return work < POOL_PARALLEL_MIN ? 1 : n_threads;
}

/* Output rows/columns whose window lies inside the image: [lo, hi). */
static void inner_range(int pad, int stride, int k, int in, int out, int *lo, int *hi)
{
    int a = (pad + stride - 1) / stride;
    int b = in + pad - k < 0 ? 0 : (in + pad - k) / stride + 1;
    if (b > out)
        b = out;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

static void maxpool_plane(float *yp, const float *xp, const cnp_pool_shape *s, int plo,
                          int phi, int qlo, int qhi)
{
    for (int p = 0; p < s->P; p++) {
        const int hs = p * s->stride_h - s->pad_t;
        const int h0 = hs < 0 ? 0 : hs, h1 = hs + s->R > s->H ? s->H : hs + s->R;
        const int inner_p = p >= plo && p < phi;
        for (int q = 0; q < s->Q; q++) {
            const int ws = q * s->stride_w - s->pad_l;
            float m = -INFINITY;
            if (inner_p && q >= qlo && q < qhi) {
                const float *w0 = xp + (size_t)hs * s->W + ws;
                for (int h = 0; h < s->R; h++, w0 += s->W)
                    for (int w = 0; w < s->S; w++)
                        if (w0[w] > m || isnan(w0[w]))
                            m = w0[w];
            } else {
                const int ww0 = ws < 0 ? 0 : ws, ww1 = ws + s->S > s->W ? s->W : ws + s->S;
                for (int h = h0; h < h1; h++)
                    for (int w = ww0; w < ww1; w++) {
                        const float v = xp[(size_t)h * s->W + w];
                        if (v > m || isnan(v))
                            m = v;
                    }
            }
            yp[(size_t)p * s->Q + q] = m;
        }
    }
}

void cnp_maxpool2d(float *y, const float *x, const cnp_pool_shape *s, int n_threads)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const long planes = (long)s->C * s->N;
    int plo, phi, qlo, qhi;

    inner_range(s->pad_t, s->stride_h, s->R, s->H, s->P, &plo, &phi);
    inner_range(s->pad_l, s->stride_w, s->S, s->W, s->Q, &qlo, &qhi);
#pragma omp parallel for schedule(static) num_threads(threads_for(planes * HW, n_threads))
    for (long i = 0; i < planes; i++)
        maxpool_plane(y + (size_t)i * PQ, x + (size_t)i * HW, s, plo, phi, qlo, qhi);
}

static void avgpool_plane(float *yp, const float *xp, const cnp_pool_shape *s)
{
    for (int p = 0; p < s->P; p++) {
        const int hs = p * s->stride_h - s->pad_t;
        const int he = hs + s->R;
        const int h0 = hs < 0 ? 0 : hs, h1 = he > s->H ? s->H : he;
        const int hpad = (he < s->H + s->pad_b ? he : s->H + s->pad_b) - hs;
        for (int q = 0; q < s->Q; q++) {
            const int ws = q * s->stride_w - s->pad_l;
            const int we = ws + s->S;
            const int w0 = ws < 0 ? 0 : ws, w1 = we > s->W ? s->W : we;
            const int wpad = (we < s->W + s->pad_r ? we : s->W + s->pad_r) - ws;
            const int cnt = s->count_include_pad ? hpad * wpad : (h1 - h0) * (w1 - w0);
            float sum = 0.0f;
            for (int h = h0; h < h1; h++) {
                const float *row = xp + (size_t)h * s->W;
                for (int w = w0; w < w1; w++)
                    sum += row[w];
            }
            yp[(size_t)p * s->Q + q] = cnt > 0 ? sum / (float)cnt : 0.0f;
        }
    }
}

void cnp_avgpool2d(float *y, const float *x, const cnp_pool_shape *s, int n_threads)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const long planes = (long)s->C * s->N;

#pragma omp parallel for schedule(static) num_threads(threads_for(planes * HW, n_threads))
    for (long i = 0; i < planes; i++)
        avgpool_plane(y + (size_t)i * PQ, x + (size_t)i * HW, s);
}

void cnp_global_avgpool(float *y, const float *x, int N, int C, int HW, int n_threads)
{
#pragma omp parallel for schedule(static) \
    num_threads(threads_for((size_t)N * C * HW, n_threads))
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((size_t)c * N + n) * (size_t)HW;
            /* Eight partial sums: vectorisable without reassociation flags,
             * and more accurate than one running sum. */
            float acc[8] = { 0 };
            float sum = 0.0f;
            int i = 0;
            for (; i + 8 <= HW; i += 8)
                for (int l = 0; l < 8; l++)
                    acc[l] += xp[i + l];
            for (; i < HW; i++)
                acc[i & 7] += xp[i];
            for (int l = 0; l < 8; l++)
                sum += acc[l];
            y[(size_t)n * C + c] = sum / (float)HW;
        }
}

void cnp_global_maxpool(float *y, const float *x, int N, int C, int HW, int n_threads)
{
#pragma omp parallel for schedule(static) \
    num_threads(threads_for((size_t)N * C * HW, n_threads))
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((size_t)c * N + n) * (size_t)HW;
            float m = -INFINITY;
            for (int i = 0; i < HW; i++)
                if (xp[i] > m || isnan(xp[i]))
                    m = xp[i];
            y[(size_t)n * C + c] = m;
        }
}
