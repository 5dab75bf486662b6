/* resample.c -- a chip resized as an image of its own with GDAL's bilinear
 * resampling, without GDAL: the weights of GDAL's convolution resampler
 * (gcore/overview.cpp, GDALResampleChunk_Convolution, as reached through
 * GDALRasterBand::IRasterIOResampled on a MEM dataset holding the chip's
 * whole pixels), applied as two separable float passes. The double-precision
 * _ref twin follows GDAL's order (horizontal, then vertical, in double). */
#include "scene/scene.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* GDAL's bilinear kernel (a tent of radius 1). */
static double tent(double x)
{
    double a = fabs(x);
    return a <= 1.0 ? 1.0 - a : 0.0;
}

/* Source pixels and normalised weights of output pixel i: the source window
 * [off, off + size) of n_src pixels read at n_out pixels. GDAL centres
 * output pixel i at off + (i + 0.5) * size / n_out and, when shrinking,
 * widens the kernel by the ratio; the kernel is cut at the chip's edges
 * (the MEM dataset's extent) and its weights renormalised. Returns the
 * number of source pixels from *start (at most cnp_resample_taps()). */
static int axis_weights(double off, double size, int n_src, int n_out, int i, int *start,
                        double *w)
{
    const double ratio = size / n_out;
    const double sw = ratio <= 1.0 ? 1.0 : 1.0 / ratio; /* kernel scale */
    const double radius = 1.0 / sw;
    const double src = (i + 0.5) * ratio + off;
    int a = (int)floor(src - radius + 0.5), b = (int)(src + radius + 0.5), k;
    double sum = 0.0;

    if (a < 0)
        a = 0;
    if (b > n_src)
        b = n_src;
    for (k = a; k < b; k++) {
        w[k - a] = tent(sw * (k - src + 0.5));
        sum += w[k - a];
    }
    if (sum != 0.0)
        for (k = a; k < b; k++)
            w[k - a] /= sum;
    *start = a;
    return b > a ? b - a : 0;
}

int cnp_resample_taps(double size, int n_out)
{
    double ratio = size / n_out;
    double radius = ratio <= 1.0 ? 1.0 : ratio;
    return (int)ceil(2.0 * radius) + 2;
}

/* The longest run of outputs whose weights are the same and whose windows
 * move by the same step (the interior of a chip shrunk by a whole factor:
 * all but an output or two at each edge), and its non-zero taps; none
 * (u0 = u1) when shorter than 8. */
static void find_uniform(cnp_resample_axis *a)
{
    const size_t row = (size_t)a->used * sizeof(float);
    int i = 0, j, step, k;

    a->u0 = a->u1 = a->step = 0;
    while (i < a->n_out) {
        const float *wi = a->w + (size_t)i * a->taps;
        step = i + 1 < a->n_out ? a->start[i + 1] - a->start[i] : 0;
        for (j = i + 1; j < a->n_out && a->start[j] - a->start[j - 1] == step &&
                        !memcmp(a->w + (size_t)j * a->taps, wi, row);
             j++)
            ;
        if (step >= 1 && j - i >= 8 && j - i > a->u1 - a->u0) {
            a->u0 = i;
            a->u1 = j;
            a->step = step;
        }
        i = j;
    }
    if (a->u1 == a->u0)
        return;
    {
        const float *w = a->w + (size_t)a->u0 * a->taps;
        for (k = 0; k < a->used && w[k] == 0.0f; k++)
            ;
        a->k0 = k;
        for (k = a->used; k > a->k0 && w[k - 1] == 0.0f; k--)
            ;
        a->k1 = k;
    }
}

void cnp_resample_axis_set(cnp_resample_axis *a, double off, double size, int n_src)
{
    const double *w = a->wd;
    int i, k, n;

    /* Every output pixel reads `used` source pixels (its n weights, then
     * zeros): the window moves left at the chip's right edge so that it
     * stays inside the chip (n <= used <= n_src). */
    a->used = a->taps < n_src ? a->taps : n_src;
    for (i = 0; i < a->n_out; i++) {
        float *wi = a->w + (size_t)i * a->taps;
        int shift;
        n = axis_weights(off, size, n_src, a->n_out, i, &a->start[i], a->wd);
        shift = a->start[i] + a->used - n_src;
        if (shift < 0)
            shift = 0;
        a->start[i] -= shift;
        for (k = 0; k < a->used; k++)
            wi[k] = k >= shift && k - shift < n ? (float)w[k - shift] : 0.0f;
    }
    find_uniform(a);
}

cnp_status cnp_resample_axis_init(cnp_ctx *ctx, cnp_resample_axis *a, int n_out, int taps)
{
    memset(a, 0, sizeof *a);
    a->n_out = n_out;
    a->taps = taps;
    a->start = cnp_calloc(ctx, (size_t)n_out, sizeof(int), "resampling offsets");
    a->w = cnp_aligned_alloc(ctx, (size_t)n_out * (size_t)taps, sizeof(float),
                             "resampling weights");
    a->wd = cnp_calloc(ctx, (size_t)taps, sizeof(double), "resampling weights");
    return a->start && a->w && a->wd ? CNP_OK : CNP_ERR_NOMEM;
}

void cnp_resample_axis_free(cnp_resample_axis *a)
{
    free(a->start);
    free(a->wd);
    cnp_aligned_free(a->w);
    memset(a, 0, sizeof *a);
}

/* Outputs [j, j1) of one row: t (the row after the vertical pass) through
 * the x weights, four outputs at a time so that their sums run side by
 * side. */
static inline __attribute__((always_inline)) void
row_any(float *restrict o, const float *restrict t, const cnp_resample_axis *ax, int j, int j1)
{
    const int S = j1, tx = ax->taps, ux = ax->used;
    int k;

    for (; j + 4 <= S; j += 4) {
        const float *w0 = ax->w + (size_t)j * tx, *w1 = w0 + tx, *w2 = w1 + tx, *w3 = w2 + tx;
        const float *t0 = t + ax->start[j], *t1 = t + ax->start[j + 1];
        const float *t2 = t + ax->start[j + 2], *t3 = t + ax->start[j + 3];
        float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
        for (k = 0; k < ux; k++) {
            v0 += w0[k] * t0[k];
            v1 += w1[k] * t1[k];
            v2 += w2[k] * t2[k];
            v3 += w3[k] * t3[k];
        }
        o[j] = v0;
        o[j + 1] = v1;
        o[j + 2] = v2;
        o[j + 3] = v3;
    }
    for (; j < S; j++) {
        const float *wj = ax->w + (size_t)j * tx, *tj = t + ax->start[j];
        float v = 0.0f;
        for (k = 0; k < ux; k++)
            v += wj[k] * tj[k];
        o[j] = v;
    }
}

/* The uniform outputs [u0, u1): one tap at a time over all of them, as
 * vectors (strided loads; `step` a constant where inlined with one). The
 * sums run in the same order as row_any()'s, less the zero taps. */
static inline __attribute__((always_inline)) void
row_uniform(float *restrict o, const float *restrict t, const cnp_resample_axis *ax, int step)
{
    const float *w = ax->w + (size_t)ax->u0 * ax->taps;
    const float *base = t + ax->start[ax->u0];
    float *restrict out = o + ax->u0;
    const int n = ax->u1 - ax->u0;
    int j, k;

#pragma omp simd
    for (j = 0; j < n; j++)
        out[j] = 0.0f;
    for (k = ax->k0; k < ax->k1; k++) {
        const float wk = w[k];
        const float *restrict bk = base + k;
#pragma omp simd
        for (j = 0; j < n; j++)
            out[j] += wk * bk[(size_t)j * step];
    }
}

/* One output row. */
static inline __attribute__((always_inline)) void
resample_row(float *restrict o, const float *restrict t, const cnp_resample_axis *ax)
{
    if (ax->u1 == ax->u0) {
        row_any(o, t, ax, 0, ax->n_out);
        return;
    }
    row_any(o, t, ax, 0, ax->u0);
    if (ax->step == 1)
        row_uniform(o, t, ax, 1);
    else if (ax->step == 2)
        row_uniform(o, t, ax, 2);
    else
        row_uniform(o, t, ax, ax->step);
    row_any(o, t, ax, ax->u1, ax->n_out);
}

/* Rows first (contiguous, vectorised over the chip's width), then columns
 * on the S rows left: for a chip shrunk by 2, half the work of GDAL's
 * columns-first order. tmp holds (S, w) floats. */
CNP_VECTOR_CLONES
static void resample_chip(float *dst, const float *src, float *tmp, const cnp_resample_shape *sh)
{
    const cnp_resample_axis *ax = sh->x, *ay = sh->y;
    const int S = ax->n_out, Sy = ay->n_out, w = sh->w;
    const size_t ld = (size_t)sh->ld;
    int c, i, j, k;

    for (c = 0; c < sh->C; c++) {
        const float *s = src + (size_t)c * sh->plane;
        float *d = dst + (size_t)c * S * Sy;
        for (i = 0; i < Sy; i++) {
            const float *wy = ay->w + (size_t)i * ay->taps;
            float *restrict t = tmp + (size_t)i * w;
            const float *restrict s0;
            float w0;
            int k0 = 0;
            /* Rows of zero weight are skipped (their products add 0). */
            while (k0 + 1 < ay->used && wy[k0] == 0.0f)
                k0++;
            w0 = wy[k0];
            s0 = s + (size_t)(ay->start[i] + k0) * ld;
#pragma omp simd
            for (j = 0; j < w; j++)
                t[j] = w0 * s0[j];
            for (k = k0 + 1; k < ay->used; k++) {
                const float wk = wy[k];
                const float *restrict sk = s0 + (size_t)(k - k0) * ld;
                if (wk == 0.0f)
                    continue;
#pragma omp simd
                for (j = 0; j < w; j++)
                    t[j] += wk * sk[j];
            }
        }
        for (i = 0; i < Sy; i++)
            resample_row(d + (size_t)i * S, tmp + (size_t)i * w, ax);
    }
}

/* (Exported symbols are plain functions: libtool's export list leaves
 * GNU ifuncs out.) */
void cnp_resample_chip(float *dst, const float *src, float *tmp, const cnp_resample_shape *sh)
{
    resample_chip(dst, src, tmp, sh);
}

void cnp_resample_chip_ref(float *dst, const float *src, const cnp_resample_ref_shape *sh)
{
    double *wx, *wy, *h;
    int c, i, j, k, a, n;

    h = malloc((size_t)sh->h * (size_t)sh->S * sizeof(double));
    wx = malloc((size_t)cnp_resample_taps(sh->size[0], sh->S) * sizeof(double));
    wy = malloc((size_t)cnp_resample_taps(sh->size[1], sh->S) * sizeof(double));
    if (!h || !wx || !wy) {
        free(h);
        free(wx);
        free(wy);
        return;
    }
    for (c = 0; c < sh->C; c++) {
        const float *s = src + (size_t)c * sh->plane;
        /* Horizontal pass over every source row, in double. */
        for (j = 0; j < sh->S; j++) {
            n = axis_weights(sh->off[0], sh->size[0], sh->w, sh->S, j, &a, wx);
            for (i = 0; i < sh->h; i++) {
                double v = 0.0;
                for (k = 0; k < n; k++)
                    v += wx[k] * s[(size_t)i * sh->ld + a + k];
                h[(size_t)i * sh->S + j] = v;
            }
        }
        /* Vertical pass, rounded to float at the end. */
        for (i = 0; i < sh->S; i++) {
            n = axis_weights(sh->off[1], sh->size[1], sh->h, sh->S, i, &a, wy);
            for (j = 0; j < sh->S; j++) {
                double v = 0.0;
                for (k = 0; k < n; k++)
                    v += wy[k] * h[(size_t)(a + k) * sh->S + j];
                dst[(size_t)c * sh->S * sh->S + (size_t)i * sh->S + j] = (float)v;
            }
        }
    }
    free(h);
    free(wx);
    free(wy);
}
