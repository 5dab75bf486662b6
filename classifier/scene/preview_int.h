/* preview_int.h -- the tiler's side of the preview (preview.c): an
 * accumulator the reader threads add the rows they read to, turned into a
 * cnp_preview (scene.h) when every strip has been read. */
#ifndef CNP_PREVIEW_INT_H
#define CNP_PREVIEW_INT_H

#include "scene/scene.h"

#include <gdal.h>
#include <pthread.h>

/* The whole canvas, shared by the readers: sums and counts of the valid
 * pixels under each canvas pixel (counts as floats: exact up to 2^24
 * scene pixels under one canvas pixel). Rows are added under `lock`, one
 * canvas row at a time. */
typedef struct cnp_preview_acc {
    int width, height;         /* the scene */
    int cw, ch, n_planes;      /* the canvas */
    int *xbin;                 /* (width) canvas column of each scene column */
    float *sum;                /* (n_planes + 1, ch, cw): sums, then counts */
    pthread_mutex_t lock;
    int have_lock;
} cnp_preview_acc;

/* One reader's row buffer: the rows of one canvas row summed pixel by
 * pixel before they are binned into the canvas. */
typedef struct cnp_preview_rows {
    int cap;                   /* pixels per plane */
    float *sum;                /* (n_planes + 1, cap): planes, then counts */
} cnp_preview_rows;

/* A scene window as read: n_planes planes of `type` (Byte, UInt16 or
 * Float32) at `data`, `plane` elements apart, rows `row` elements long,
 * whose first element is scene pixel (x0, y0); ok (row elements per row)
 * 1 where the pixel is valid. Float32 values where ok is 0 are ignored
 * (they may be NaN). */
typedef struct cnp_preview_window {
    const void *data;
    GDALDataType type;
    size_t plane;
    int row;
    int x0, y0;
    const unsigned char *ok;
} cnp_preview_window;

/* A canvas of cw x ch for a width x height scene with n_planes planes,
 * zero (large pages, faulted in as rows are added). Free with
 * cnp_preview_acc_free (also after a failure). */
cnp_status cnp_preview_acc_init(cnp_ctx *ctx, cnp_preview_acc *a, int width, int height,
                                int cw, int ch, int n_planes);
void cnp_preview_acc_free(cnp_preview_acc *a);

/* A row buffer for windows up to `cap` pixels wide. Free with
 * cnp_preview_rows_free. */
cnp_status cnp_preview_rows_init(cnp_ctx *ctx, cnp_preview_rows *r, int n_planes, int cap);
void cnp_preview_rows_free(cnp_preview_rows *r);

/* Adds scene pixels [x0, x1) x [y0, y1) of window w to the canvas, using
 * r as scratch (x1 - x0 <= r->cap). Each scene pixel must be added once
 * over the whole scene. Safe from several threads at once, each with its
 * own r. */
void cnp_preview_acc_add(cnp_preview_acc *a, cnp_preview_rows *r, const cnp_preview_window *w,
                         int x0, int x1, int y0, int y1);

/* The means: a new preview the caller frees with cnp_preview_free, which
 * takes over a's sums (a can only be freed after); NULL with a message when
 * out of memory. Once. */
cnp_status cnp_preview_acc_finish(cnp_ctx *ctx, cnp_preview_acc *a, cnp_preview **out);

#endif
