/* ref.c -- naive reference kernels: the `_ref` twins of kernels.h.
 *
 * Direct loops written for clarity, not speed, with double accumulators.
 * tests/engine compares every optimised kernel with its twin here; nothing
 * in the forward pass calls these.
 */
#include "engine/kernels.h"

#include <math.h>
#include <stddef.h>

static float act_apply(double v, cnp_act act)
{
    if (act == CNP_ACT_RELU && v < 0.0)
        v = 0.0;
    return (float)v;
}

void cnp_conv2d_ref(float *y, const float *x, const float *w, const float *bias,
                    const float *residual, cnp_act act, const cnp_conv_shape *s)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const size_t xcols = (size_t)s->N * HW, ycols = (size_t)s->N * PQ;

    for (int k = 0; k < s->K; k++)
        for (int n = 0; n < s->N; n++)
            for (int p = 0; p < s->P; p++)
                for (int q = 0; q < s->Q; q++) {
                    const size_t yi = (size_t)k * ycols + (size_t)n * PQ + (size_t)p * s->Q + q;
                    double acc = bias ? (double)bias[k] : 0.0;
                    for (int c = 0; c < s->C; c++)
                        for (int r = 0; r < s->R; r++) {
                            const int ih = p * s->stride_h - s->pad_t + r * s->dil_h;
                            if (ih < 0 || ih >= s->H)
                                continue;
                            for (int t = 0; t < s->S; t++) {
                                const int iw = q * s->stride_w - s->pad_l + t * s->dil_w;
                                if (iw < 0 || iw >= s->W)
                                    continue;
                                acc += (double)w[(((size_t)k * s->C + c) * s->R + r) * s->S + t] *
                                       (double)x[(size_t)c * xcols + (size_t)n * HW +
                                                 (size_t)ih * s->W + iw];
                            }
                        }
                    if (residual)
                        acc += (double)residual[yi];
                    y[yi] = act_apply(acc, act);
                }
}

/* Visits the window of output (p, q); calls back nothing, just computes the
 * clipped bounds: [h0, h1) x [w0, w1) inside the image, and the number of
 * positions inside the padded image (for count_include_pad). */
static void pool_window(const cnp_pool_shape *s, int p, int q, int *h0, int *h1,
                        int *w0, int *w1, int *padded_count)
{
    const int hs = p * s->stride_h - s->pad_t, ws = q * s->stride_w - s->pad_l;
    int he = hs + s->R, we = ws + s->S;
    /* Window positions past the bottom/right padding (ceil mode) do not count. */
    const int hp_end = he < s->H + s->pad_b ? he : s->H + s->pad_b;
    const int wp_end = we < s->W + s->pad_r ? we : s->W + s->pad_r;
    *padded_count = (hp_end - hs) * (wp_end - ws);
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > s->H ? s->H : he;
    *w1 = we > s->W ? s->W : we;
}

void cnp_maxpool2d_ref(float *y, const float *x, const cnp_pool_shape *s)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;

    for (int c = 0; c < s->C; c++)
        for (int n = 0; n < s->N; n++) {
            const float *xp = x + ((size_t)c * s->N + n) * HW;
            float *yp = y + ((size_t)c * s->N + n) * PQ;
            for (int p = 0; p < s->P; p++)
                for (int q = 0; q < s->Q; q++) {
                    int h0, h1, w0, w1, cnt;
                    float m = -INFINITY;
                    pool_window(s, p, q, &h0, &h1, &w0, &w1, &cnt);
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                            if (xp[(size_t)h * s->W + w] > m || isnan(xp[(size_t)h * s->W + w]))
                                m = xp[(size_t)h * s->W + w];
                    yp[(size_t)p * s->Q + q] = m;
                }
        }
}

void cnp_avgpool2d_ref(float *y, const float *x, const cnp_pool_shape *s)
{
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;

    for (int c = 0; c < s->C; c++)
        for (int n = 0; n < s->N; n++) {
            const float *xp = x + ((size_t)c * s->N + n) * HW;
            float *yp = y + ((size_t)c * s->N + n) * PQ;
            for (int p = 0; p < s->P; p++)
                for (int q = 0; q < s->Q; q++) {
                    int h0, h1, w0, w1, cnt;
                    double sum = 0.0;
                    pool_window(s, p, q, &h0, &h1, &w0, &w1, &cnt);
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                            sum += xp[(size_t)h * s->W + w];
                    if (!s->count_include_pad)
                        cnt = (h1 - h0) * (w1 - w0);
                    yp[(size_t)p * s->Q + q] = cnt > 0 ? (float)(sum / cnt) : 0.0f;
                }
        }
}

void cnp_global_avgpool_ref(float *y, const float *x, int N, int C, int HW)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const float *xp = x + ((size_t)c * N + n) * (size_t)HW;
            double sum = 0.0;
            for (int i = 0; i < HW; i++)
                sum += xp[i];
            y[(size_t)n * C + c] = (float)(sum / HW);
        }
}

void cnp_global_maxpool_ref(float *y, const float *x, int N, int C, int HW)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const float *xp = x + ((size_t)c * N + n) * (size_t)HW;
            float m = -INFINITY;
            for (int i = 0; i < HW; i++)
                if (xp[i] > m || isnan(xp[i]))
                    m = xp[i];
            y[(size_t)n * C + c] = m;
        }
}

void cnp_linear_ref(float *y, const float *x, const float *w, const float *bias,
                    int N, int K, int M, cnp_act act)
{
    for (int n = 0; n < N; n++)
        for (int m = 0; m < M; m++) {
            double acc = bias ? (double)bias[m] : 0.0;
            for (int k = 0; k < K; k++)
                acc += (double)x[(size_t)n * K + k] * (double)w[(size_t)m * K + k];
            y[(size_t)n * M + m] = act_apply(acc, act);
        }
}
