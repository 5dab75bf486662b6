/* preview.c -- the scene small, from the rows the tiler reads: each canvas
 * pixel the mean of the valid scene pixels whose centres fall in its
 * footprint (scene.h). The readers sum a canvas row's scene rows pixel by
 * pixel in their own buffers (vectorised), then bin those sums into the
 * shared canvas under a lock, once per canvas row and strip. */
#include "scene/preview_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cnp_preview_canvas(int w, int h, int size, int *cw, int *ch)
{
    if (w >= h) {
        *cw = size;
        *ch = (int)fmax(1.0, floor((double)size * h / w + 0.5));
    } else {
        *ch = size;
        *cw = (int)fmax(1.0, floor((double)size * w / h + 0.5));
    }
}

int cnp_overview_for(GDALRasterBandH b, int w, int cw, double *factor)
{
    int i, n = GDALGetOverviewCount(b), level = 0, best_w = w;
    for (i = 0; i < n; i++) {
        GDALRasterBandH o = GDALGetOverview(b, i);
        int ow = o ? GDALGetRasterBandXSize(o) : 0;
        if (ow >= cw && ow < best_w) {
            best_w = ow;
            level = i + 1;
        }
    }
    *factor = (double)best_w / cw;
    return level;
}

void cnp_preview_free(cnp_preview *p)
{
    if (!p)
        return;
    cnp_aligned_free(p->planes);
    cnp_aligned_free(p->valid);
    free(p);
}

/* The canvas index (of n) of scene pixel i (of total) by its centre. */
static int bin_of(int i, int total, int n)
{
    int b = (int)(((double)i + 0.5) * n / total);
    return b < n ? b : n - 1;
}

cnp_status cnp_preview_acc_init(cnp_ctx *ctx, cnp_preview_acc *a, int width, int height,
                                int cw, int ch, int n_planes)
{
    size_t cells = (size_t)cw * (size_t)ch;
    int x;

    memset(a, 0, sizeof *a);
    a->width = width;
    a->height = height;
    a->cw = cw;
    a->ch = ch;
    a->n_planes = n_planes;
    a->xbin = cnp_calloc(ctx, (size_t)width, sizeof *a->xbin, "the preview");
    /* Zeroed large pages (cnp_aligned_alloc): a 4 KiB page fault for each
     * piece of a 1024 x 1024 canvas would cost more than the sums. */
    a->sum = cnp_aligned_alloc(ctx, cells * (size_t)(n_planes + 1), sizeof *a->sum,
                               "the preview");
    if (!a->xbin || !a->sum)
        return CNP_ERR_NOMEM;
    for (x = 0; x < width; x++)
        a->xbin[x] = bin_of(x, width, cw);
    if (pthread_mutex_init(&a->lock, NULL) != 0)
        return cnp_error(ctx, CNP_ERR_NOMEM, "cannot create the preview's lock");
    a->have_lock = 1;
    return CNP_OK;
}

void cnp_preview_acc_free(cnp_preview_acc *a)
{
    if (a->have_lock)
        pthread_mutex_destroy(&a->lock);
    free(a->xbin);
    cnp_aligned_free(a->sum);
    memset(a, 0, sizeof *a);
}

cnp_status cnp_preview_rows_init(cnp_ctx *ctx, cnp_preview_rows *r, int n_planes, int cap)
{
    r->cap = cap;
    r->sum = cnp_aligned_alloc(ctx, (size_t)(n_planes + 1) * (size_t)cap, sizeof(float),
                               "the preview's row buffer");
    return r->sum ? CNP_OK : CNP_ERR_NOMEM; /* zeroed */
}

void cnp_preview_rows_free(cnp_preview_rows *r)
{
    cnp_aligned_free(r->sum);
    r->sum = NULL;
    r->cap = 0;
}

/* Adds scene row y, pixels [x0, x0 + n), to the row buffer. Sums of a few
 * dozen rows of integers up to 65535 stay exact in float. */
CNP_VECTOR_CLONES
static void add_row(const cnp_preview_window *w, int n_planes, cnp_preview_rows *r, int x0,
                    int n, int y)
{
    size_t off = (size_t)(y - w->y0) * (size_t)w->row + (size_t)(x0 - w->x0);
    const unsigned char *restrict ok = w->ok + off;
    float *restrict cnt = r->sum + (size_t)n_planes * (size_t)r->cap;
    int k, i;

#pragma omp simd
    for (i = 0; i < n; i++)
        cnt[i] += (float)ok[i];
    for (k = 0; k < n_planes; k++) {
        float *restrict s = r->sum + (size_t)k * (size_t)r->cap;
        size_t at = (size_t)k * w->plane + off;
        if (w->type == GDT_Byte) {
            const unsigned char *restrict q = (const unsigned char *)w->data + at;
#pragma omp simd
            for (i = 0; i < n; i++)
                s[i] += (float)q[i] * (float)ok[i];
        } else if (w->type == GDT_UInt16) {
            const unsigned short *restrict q = (const unsigned short *)w->data + at;
#pragma omp simd
            for (i = 0; i < n; i++)
                s[i] += (float)q[i] * (float)ok[i];
        } else {
            const float *restrict q = (const float *)w->data + at;
#pragma omp simd
            for (i = 0; i < n; i++)
                s[i] += ok[i] ? q[i] : 0.0f;
        }
    }
}

/* Bins the row buffer (scene pixels [x0, x0 + n)) into canvas row cy and
 * clears it: each plane, then the counts (plane n_planes of both). A
 * canvas pixel gets a sum from each strip under it (one or two), rounded
 * to float once each. */
static void flush_rows(cnp_preview_acc *a, cnp_preview_rows *r, int cy, int x0, int n)
{
    const int *xbin = a->xbin + x0;
    int k, i, j;

    pthread_mutex_lock(&a->lock);
    for (k = 0; k <= a->n_planes; k++) {
        const float *s = r->sum + (size_t)k * (size_t)r->cap;
        float *srow = a->sum + ((size_t)k * (size_t)a->ch + (size_t)cy) * (size_t)a->cw;
        for (i = 0; i < n;) {
            int cx = xbin[i];
            double v = 0.0;
            for (j = i; j < n && xbin[j] == cx; j++)
                v += s[j];
            srow[cx] += (float)v;
            i = j;
        }
    }
    pthread_mutex_unlock(&a->lock);
    for (k = 0; k <= a->n_planes; k++)
        memset(r->sum + (size_t)k * (size_t)r->cap, 0, (size_t)n * sizeof(float));
}

void cnp_preview_acc_add(cnp_preview_acc *a, cnp_preview_rows *r, const cnp_preview_window *w,
                         int x0, int x1, int y0, int y1)
{
    int n = x1 - x0, y, cy;

    if (n <= 0 || y1 <= y0)
        return;
    cy = bin_of(y0, a->height, a->ch);
    for (y = y0; y < y1; y++) {
        int b = bin_of(y, a->height, a->ch);
        if (b != cy) {
            flush_rows(a, r, cy, x0, n);
            cy = b;
        }
        add_row(w, a->n_planes, r, x0, n, y);
    }
    flush_rows(a, r, cy, x0, n);
}

cnp_status cnp_preview_acc_finish(cnp_ctx *ctx, cnp_preview_acc *a, cnp_preview **out)
{
    size_t cells = (size_t)a->cw * (size_t)a->ch, i;
    cnp_preview *p;
    int k;

    *out = NULL;
    p = cnp_calloc(ctx, 1, sizeof *p, "the preview");
    if (!p)
        return CNP_ERR_NOMEM;
    p->width = a->cw;
    p->height = a->ch;
    p->n_planes = a->n_planes;
    p->valid = cnp_aligned_alloc(ctx, cells, 1, "the preview");
    if (!p->valid) {
        cnp_preview_free(p);
        return CNP_ERR_NOMEM;
    }
    /* The sums become the means in place: the preview takes them (and
     * the counts after them). */
    for (i = 0; i < cells; i++) {
        float c = a->sum[(size_t)a->n_planes * cells + i];
        p->valid[i] = c > 0.0f;
        for (k = 0; k < a->n_planes && c > 0.0f; k++)
            a->sum[(size_t)k * cells + i] /= c;
    }
    p->planes = a->sum;
    a->sum = NULL;
    *out = p;
    return CNP_OK;
}
