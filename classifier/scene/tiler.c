/* tiler.c -- the chip grid over a georeferenced scene, read in rounds of
 * strips by the caller's OpenMP team between its batches (see scene.h for
 * the geometry, validity and reading rules). */
#define _POSIX_C_SOURCE 200809L
#include "scene/scene.h"
#include "scene/preview_int.h"
#include "base/gdal.h"

#include <gdal.h>
#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <geodesic.h>
#include <ogr_srs_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Budget for one reader's source buffer and for one slot of model input:
 * the tiler's memory stays below 2 x readers x this, whatever the scene. */
#define SEGMENT_BYTES ((size_t)32 << 20)
#define DEFAULT_STRIP_CHIPS 32
#define DEFAULT_READERS 2
#define MAX_READERS 8
#define MAX_MASKS 64
/* Scenes whose GSD is within this relative difference of the target are
 * read at their own resolution. */
#define GSD_SAME_TOL 0.01

/* A buffer for one strip segment: reader j fills slot j in each round. */
typedef struct slot {
    cnp_strip strip;
    cnp_status st;           /* of the read; its message in err */
    cnp_ctx err;
    float *valid;            /* (seg_cols) */
    float *usable;           /* (seg_cols) */
    unsigned char *obscured; /* (seg_cols) */
    int *cols;               /* (seg_cols) */
    unsigned char *partial;  /* (seg_cols) */
    float *input;            /* (seg_cols, C, S, S) */
} slot;

struct cnp_tiler;

/* A reader: its own handle on the scene (a GDAL dataset is used by one
 * thread at a time), its own buffers. In a round of N strips from k,
 * reader j reads strip k + j on a thread of the caller's team. */
typedef struct reader {
    struct cnp_tiler *t;
    int id;
    GDALDatasetH ds;         /* reader 0 borrows the tiler's */
    int n_masks;
    GDALRasterBandH masks[MAX_MASKS]; /* distinct mask bands of the bands read */
    float *raw;              /* (C, buf_h, buf_w) normalised source pixels */
    void *staged;            /* (C, buf_h, buf_w) source pixels as read, when
                                t->stage is not Float32 */
    unsigned char *ok;       /* (buf_h, buf_w) 1 = valid pixel */
    unsigned char *tmp;      /* (buf_h, buf_w) a mask band's values */
    unsigned char *use;      /* (buf_h, buf_w) 1 = valid and usable (quality mask) */
    unsigned char *qbuf;     /* (buf_h, buf_w) a quality mask band's values */
    GDALDatasetH qds;        /* the quality mask, own handle; NULL without one */
    cnp_resample_axis ax, ay; /* a chip's resampling weights along x, y */
    float *rtmp;             /* (S, chip width) resampling scratch */
    float *craw;             /* (C, chip rows, chip width) one chip's window
                                normalised, when t->chipwise and resampling */
    cnp_preview_rows pv;     /* its rows of the preview, before binning */
    int last_iy1;            /* end row of the last window it read (0: none) */
} reader;

struct cnp_tiler {
    cnp_tiler_info info;
    char *path;
    char *wkt;
    char **files;
    GDALDatasetH ds;

    /* What is read: channel c is band bands[c]; v -> (((v + rad_add[c]) *
     * rad_gain[c] - offset) * scale - mean[c]) / std[c] = v * na[c] - nb[c]. */
    int C, S;
    int *bands;              /* (C) */
    float *mean, *std;       /* (C) */
    float *na, *nb;          /* (C) */
    int have_nodata;         /* nodata for bands that declare none */
    double nodata;
    unsigned char *nd_override; /* (C) 1: the band has no nodata of its own */
    double min_valid;
    int have_qmask;
    cnp_qmask_spec qmask;
    char *qmask_path;
    double qmask_gt[6];
    int qmask_w, qmask_h;
    int resample;            /* 0: chips are copied pixel for pixel */
    int chipwise;            /* normalise each chip's window as it is cut (hot in
                                cache), not the whole segment first: integer
                                bands, chips side by side (stride >= chip) */
    int seg_cols, segs_per_row;
    int check_finite;        /* a band read is floating point (may hold NaN) */
    GDALDataType stage;      /* the type bands are read as: Byte or UInt16 when
                                every band read is one, else Float32 */

    int buf_w, buf_h;        /* capacity of a segment's source window */
    int block_h;             /* the tallest block of the bands read */
    int n_readers;
    reader readers[MAX_READERS];
    slot slots[MAX_READERS];

    int have_preview;        /* pv is being filled (preview_size asked, no overview) */
    cnp_preview_acc pv;

    int round0, round_n;     /* the strips read in the current round */
    int next_give;           /* next strip index handed out */
    double read_s, read_cpu_s, wait_s;
    long chips, partial, skipped, obscured;
};

/* ---------------------------------------------------------------- geometry */

/* Ground size in metres of one scene pixel along x and y at the scene
 * centre: geodesic distances on the CRS's ellipsoid between points a few
 * pixels apart, so that geographic CRSs (degrees) and projections with a
 * scale factor (Web Mercator) give true ground sizes. */
static cnp_status pixel_metres(cnp_ctx *ctx, cnp_tiler *t, OGRSpatialReferenceH srs)
{
    cnp_status st = CNP_OK;
    OGRSpatialReferenceH geog = NULL;
    OGRCoordinateTransformationH ct = NULL;
    const double *gt = t->info.scene_gt;
    double cx = t->info.width / 2.0, cy = t->info.height / 2.0;
    double h = 50.0, x[4], y[4], dx, dy, a, invf, f;
    struct geod_geodesic g;
    OGRErr err = OGRERR_NONE;
    int i;

    if (t->info.width / 4.0 < h)
        h = t->info.width / 4.0;
    if (t->info.height / 4.0 < h)
        h = t->info.height / 4.0;
    if (h < 0.5)
        h = 0.5;
    /* (cx - h, cy), (cx + h, cy), (cx, cy - h), (cx, cy + h) */
    for (i = 0; i < 4; i++) {
        double px = cx + (i == 0 ? -h : i == 1 ? h : 0);
        double py = cy + (i == 2 ? -h : i == 3 ? h : 0);
        x[i] = gt[0] + px * gt[1] + py * gt[2];
        y[i] = gt[3] + px * gt[4] + py * gt[5];
    }
    a = OSRGetSemiMajor(srs, &err);
    if (err != OGRERR_NONE || !(a > 0))
        a = 6378137.0;
    invf = OSRGetInvFlattening(srs, &err);
    f = (err == OGRERR_NONE && invf > 0) ? 1.0 / invf : 0.0;

    geog = OSRCloneGeogCS(srs);
    if (geog) {
        OSRSetAxisMappingStrategy(geog, OAMS_TRADITIONAL_GIS_ORDER);
        cnp_gdal_quiet_begin();
        ct = OCTNewCoordinateTransformation(srs, geog);
        cnp_gdal_quiet_end();
    }
    if (ct && OCTTransform(ct, 4, x, y, NULL)) {
        double s_x, s_y;
        for (i = 0; i < 4; i++) {
            if (!isfinite(x[i]) || !isfinite(y[i]) || fabs(y[i]) > 90.0) {
                ct = (OCTDestroyCoordinateTransformation(ct), NULL);
                break;
            }
        }
        if (ct) {
            geod_init(&g, a, f);
            geod_inverse(&g, y[0], x[0], y[1], x[1], &s_x, NULL, NULL);
            geod_inverse(&g, y[2], x[2], y[3], x[3], &s_y, NULL, NULL);
            dx = s_x / (2.0 * h);
            dy = s_y / (2.0 * h);
            if (dx > 0 && dy > 0 && isfinite(dx) && isfinite(dy)) {
                t->info.pixel_m[0] = dx;
                t->info.pixel_m[1] = dy;
                goto cleanup;
            }
        }
    }
    /* No transformation to the geographic CRS: a projected CRS's linear
     * unit is the best we know. */
    if (!OSRIsGeographic(srs)) {
        double u = OSRGetLinearUnits(srs, NULL);
        if (!(u > 0))
            u = 1.0;
        t->info.pixel_m[0] = fabs(gt[1]) * u;
        t->info.pixel_m[1] = fabs(gt[5]) * u;
        goto cleanup;
    }
    st = cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: cannot work out the ground size of a pixel "
                   "in its CRS (%s); reproject it with gdalwarp -t_srs to a UTM zone, or read "
                   "it at its own resolution with --gsd native", t->path, cnp_gdal_msg());
cleanup:
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    if (geog)
        OSRDestroySpatialReference(geog);
    return st;
}

/* Chip and stride in scene pixels, resampling, grid size and geotransform. */
static cnp_status lay_out_grid(cnp_ctx *ctx, cnp_tiler *t, const cnp_tiler_params *p)
{
    cnp_tiler_info *in = &t->info;
    double fx = 1.0, fy = 1.0, gsd = 0.0;
    double rows, cols;
    int k;

    if (p->gsd_mode != CNP_GSD_NATIVE && p->gsd_m > 0)
        gsd = p->gsd_m;
    if (gsd > 0) {
        double scene = sqrt(in->pixel_m[0] * in->pixel_m[1]);
        double rmax = p->max_gsd_ratio > 1 ? p->max_gsd_ratio : 4.0;
        for (k = 0; k < 2; k++) {
            double r = gsd / in->pixel_m[k];
            if (r > rmax || r < 1.0 / rmax)
                return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the scene's ground sampling "
                                 "distance (%.3g m) differs from the %s (%.3g m) by more than "
                                 "%gx; read it at its own resolution with --gsd native (or use a "
                                 "model trained near %.3g m)", t->path, scene,
                                 p->gsd_mode == CNP_GSD_USER ? "GSD asked for with --gsd"
                                                             : "model's training GSD",
                                 gsd, rmax, scene);
        }
        fx = gsd / in->pixel_m[0];
        fy = gsd / in->pixel_m[1];
        if (fabs(fx - 1.0) <= GSD_SAME_TOL && fabs(fy - 1.0) <= GSD_SAME_TOL)
            fx = fy = 1.0;
        in->gsd_m = gsd;
    }
    in->chip_px[0] = p->chip * fx;
    in->chip_px[1] = p->chip * fy;
    in->stride_px[0] = p->stride * fx;
    in->stride_px[1] = p->stride * fy;
    if (in->chip_px[0] < 1.0 || in->chip_px[1] < 1.0)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: a chip of %d pixels at %.3g m is less than "
                         "one scene pixel; use a larger --chip", t->path, p->chip, gsd);

    /* A tiny tolerance so that 1000 / (1000/3 * 3) does not become 2 rows. */
    cols = ceil(in->width / in->stride_px[0] - 1e-9);
    rows = ceil(in->height / in->stride_px[1] - 1e-9);
    if (cols < 1)
        cols = 1;
    if (rows < 1)
        rows = 1;
    if (cols * rows > (double)INT32_MAX / 64)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: %.0f x %.0f chips is too many; use a larger "
                         "--stride", t->path, cols, rows);
    in->cols = (int)cols;
    in->rows = (int)rows;
    in->grid_gt[0] = in->scene_gt[0];
    in->grid_gt[1] = in->scene_gt[1] * in->stride_px[0];
    in->grid_gt[2] = 0.0;
    in->grid_gt[3] = in->scene_gt[3];
    in->grid_gt[4] = 0.0;
    in->grid_gt[5] = in->scene_gt[5] * in->stride_px[1];

    t->resample = !(in->chip_px[0] == t->S && in->chip_px[1] == t->S &&
                    in->stride_px[0] == floor(in->stride_px[0]) &&
                    in->stride_px[1] == floor(in->stride_px[1]));
    if (!t->resample) {
        in->resampling = "none";
    } else {
        /* GDAL's bilinear (its kernel widens when shrinking): what canopy
         * predict, evaluate and the training scripts resize chips with
         * (resample.c computes the same without GDAL). */
        in->resampling = "bilinear";
    }
    return CNP_OK;
}

/* Segment width (chips per segment) and buffer sizes within the budget. */
static cnp_status plan_buffers(cnp_ctx *ctx, cnp_tiler *t, int strip_chips)
{
    cnp_tiler_info *in = &t->info;
    size_t chip_bytes, plane, n;
    double h = ceil(in->chip_px[1]) + 2.0;
    double wmax;
    int seg, s;

    if (strip_chips <= 0)
        strip_chips = DEFAULT_STRIP_CHIPS;
    seg = strip_chips < in->cols ? strip_chips : in->cols;
    /* Source buffer: C x h x w floats within the budget. */
    wmax = (double)SEGMENT_BYTES / (4.0 * t->C * h);
    t->chipwise = t->stage != GDT_Float32 && in->stride_px[0] >= in->chip_px[0];
    while (seg > 1 && (seg - 1) * in->stride_px[0] + in->chip_px[0] + 2.0 > wmax)
        seg--;
    /* Model input: seg x C x S x S floats within the budget. */
    chip_bytes = (size_t)t->C * (size_t)t->S * (size_t)t->S * sizeof(float);
    while (seg > 1 && (size_t)seg * chip_bytes > SEGMENT_BYTES)
        seg--;
    t->seg_cols = seg;
    t->segs_per_row = (in->cols + seg - 1) / seg;
    if ((double)t->segs_per_row * in->rows > INT32_MAX)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: too many chips; use a larger --stride", t->path);
    in->n_strips = t->segs_per_row * in->rows;

    t->buf_w = (int)ceil((seg - 1) * in->stride_px[0] + in->chip_px[0]) + 2;
    t->buf_h = (int)h;
    if (!cnp_mul_size((size_t)t->buf_w, (size_t)t->buf_h, &plane) ||
        !cnp_mul_size(plane, (size_t)t->C, &n))
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: strip buffer size overflows", t->path);
    for (s = 0; s < t->n_readers; s++) {
        reader *r = &t->readers[s];
        r->raw = cnp_aligned_alloc(ctx, n, sizeof(float), "the strip buffer");
        if (t->stage != GDT_Float32 &&
            !(r->staged = cnp_aligned_alloc(ctx, n, (size_t)GDALGetDataTypeSizeBytes(t->stage),
                                            "the strip buffer")))
            return CNP_ERR_NOMEM;
        r->ok = cnp_calloc(ctx, plane, 1, "the strip mask");
        r->tmp = cnp_calloc(ctx, plane, 1, "the strip mask");
        r->use = cnp_calloc(ctx, plane, 1, "the strip mask");
        r->qbuf = t->have_qmask ? cnp_calloc(ctx, plane, 1, "the quality mask") : NULL;
        if (!r->raw || !r->ok || !r->tmp || !r->use || (t->have_qmask && !r->qbuf))
            return CNP_ERR_NOMEM;
        if (t->resample) {
            cnp_status st;
            int cw = (int)ceil(in->chip_px[0]) + 1;
            if ((st = cnp_resample_axis_init(ctx, &r->ax, t->S,
                                             cnp_resample_taps(in->chip_px[0], t->S))) != CNP_OK ||
                (st = cnp_resample_axis_init(ctx, &r->ay, t->S,
                                             cnp_resample_taps(in->chip_px[1], t->S))) != CNP_OK)
                return st;
            r->rtmp = cnp_aligned_alloc(ctx, (size_t)t->S * (size_t)cw, sizeof(float),
                                        "the resampling scratch");
            if (!r->rtmp)
                return CNP_ERR_NOMEM;
            if (t->chipwise &&
                !(r->craw = cnp_aligned_alloc(ctx,
                                              (size_t)t->C * (size_t)cw *
                                                  ((size_t)ceil(in->chip_px[1]) + 1),
                                              sizeof(float), "the chip window")))
                return CNP_ERR_NOMEM;
        }
    }
    for (s = 0; s < t->n_readers; s++) {
        slot *sl = &t->slots[s];
        sl->valid = cnp_calloc(ctx, (size_t)seg, sizeof(float), "chip fractions");
        sl->usable = cnp_calloc(ctx, (size_t)seg, sizeof(float), "chip fractions");
        sl->obscured = cnp_calloc(ctx, (size_t)seg, 1, "chip flags");
        sl->cols = cnp_calloc(ctx, (size_t)seg, sizeof(int), "chip columns");
        sl->partial = cnp_calloc(ctx, (size_t)seg, 1, "chip flags");
        sl->input = cnp_aligned_alloc(ctx, (size_t)seg, chip_bytes, "model input chips");
        if (!sl->valid || !sl->usable || !sl->obscured || !sl->cols || !sl->partial ||
            !sl->input)
            return CNP_ERR_NOMEM;
    }
    return CNP_OK;
}

/* A reader's distinct mask bands of the bands read; for reader 0 also a
 * name for what they are. */
static void find_masks(cnp_tiler *t, reader *r)
{
    char kind[64];
    int has_nodata = 0, has_alpha = 0, has_mask = 0, c, k;

    r->n_masks = 0;
    for (c = 0; c < t->C; c++) {
        GDALRasterBandH b = GDALGetRasterBand(r->ds, t->bands[c]);
        int flags = GDALGetMaskFlags(b);
        GDALRasterBandH m;
        if (flags & GMF_ALL_VALID)
            continue;
        if (flags & GMF_NODATA)
            has_nodata = 1;
        else if (flags & GMF_ALPHA)
            has_alpha = 1;
        else
            has_mask = 1;
        m = GDALGetMaskBand(b);
        for (k = 0; k < r->n_masks; k++)
            if (r->masks[k] == m)
                break;
        if (k == r->n_masks && m && r->n_masks < MAX_MASKS)
            r->masks[r->n_masks++] = m;
    }
    if (r->id != 0)
        return;
    kind[0] = '\0';
    if (has_nodata)
        strcat(kind, "nodata");
    if (has_alpha)
        strcat(kind, kind[0] ? "+alpha" : "alpha");
    if (has_mask)
        strcat(kind, kind[0] ? "+mask" : "mask");
    t->info.mask_kind = cnp_strdup(NULL, kind[0] ? kind : "none");
}

/* The scene's geotransform into gt. A scene georeferenced only by ground
 * control points or RPCs has none (and some drivers then report GDAL's
 * default 0,1,0,0,0,1 as if it were one, which would put the scene at 0,0
 * with 1-unit pixels): refused, with the gdalwarp command that turns it into
 * the north-up grid canopy classifies on. */
static cnp_status read_geotransform(cnp_ctx *ctx, GDALDatasetH ds, const char *path,
                                    double gt[6])
{
    static const double identity[6] = {0, 1, 0, 0, 0, 1};
    char **rpc;
    int n_gcps;

    if (GDALGetGeoTransform(ds, gt) == CE_None && memcmp(gt, identity, sizeof identity) != 0)
        return CNP_OK;
    n_gcps = GDALGetGCPCount(ds);
    if (n_gcps > 0)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: georeferenced only by %d ground control "
                         "points (GCPs), not by a geotransform; warp it to a north-up grid "
                         "first: gdalwarp -tps %s warped.tif (thin plate spline; or -order 1, "
                         "2 or 3 for a polynomial fit), then classify warped.tif",
                         path, n_gcps, path);
    rpc = GDALGetMetadata(ds, "RPC");
    if (rpc && CSLFetchNameValue(rpc, "LINE_OFF"))
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: georeferenced only by rational "
                         "polynomial coefficients (RPCs), not by a geotransform; orthorectify "
                         "it first: gdalwarp -rpc -to RPC_DEM=dem.tif %s warped.tif (or "
                         "gdalwarp -rpc without a DEM), then classify warped.tif", path, path);
    return cnp_error(ctx, CNP_ERR_FORMAT, "%s: no georeferencing (no geotransform); canopy "
                     "classify needs a georeferenced scene: assign one with gdal_translate "
                     "-a_srs/-a_ullr, or use canopy predict for plain image chips", path);
}

/* Checks the caller's parameters (a usage error otherwise). */
static cnp_status check_params(cnp_ctx *ctx, const char *path, const cnp_tiler_params *p)
{
    int c;
    if (!p || p->spec.n_channels < 1 || p->spec.size < 1 || p->chip < 1 || p->stride < 1 ||
        p->stride > p->chip || !(p->min_valid >= 0 && p->min_valid <= 1) ||
        !(p->spec.scale != 0 && isfinite(p->spec.scale)))
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: invalid tiling parameters (chip %d, stride %d)",
                         path, p ? p->chip : 0, p ? p->stride : 0);
    if (p->spec.n_channels > MAX_MASKS)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the model reads %d channels; canopy "
                         "classify handles up to %d", path, p->spec.n_channels, MAX_MASKS);
    for (c = 0; c < p->spec.n_channels; c++) {
        if (!(p->spec.std[c] != 0.0f) || !isfinite(p->spec.std[c]))
            return cnp_error(ctx, CNP_ERR_USAGE, "%s: the standard deviation of channel %d is "
                             "%g; check the model's canopy.std", path, c + 1,
                             (double)p->spec.std[c]);
        if ((p->rad_gain && !(isfinite(p->rad_gain[c]) && p->rad_gain[c] != 0)) ||
            (p->rad_add && !isfinite(p->rad_add[c])))
            return cnp_error(ctx, CNP_ERR_USAGE, "%s: invalid radiometry for channel %d", path,
                             c + 1);
    }
    if (p->qmask && (!p->qmask->path || p->qmask->n_bands < 1 ||
                     p->qmask->n_bands > CNP_QMASK_MAX_BANDS))
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: invalid quality mask parameters", path);
    return CNP_OK;
}

/* A new tiler holding copies of the parameters it keeps, with each
 * channel's normalisation v -> v * na[c] - nb[c] folded from the product's
 * radiometry, the offset/scale and the model's mean/std. */
static cnp_status tiler_new(cnp_ctx *ctx, const char *path, const cnp_tiler_params *p,
                            cnp_tiler **out)
{
    cnp_tiler *t = cnp_calloc(ctx, 1, sizeof *t, "the tiler");
    size_t C = (size_t)p->spec.n_channels;
    int c;

    *out = t;
    if (!t)
        return CNP_ERR_NOMEM;
    t->C = p->spec.n_channels;
    t->S = p->spec.size;
    t->min_valid = p->min_valid;
    t->have_nodata = p->have_nodata;
    t->nodata = p->nodata;
    t->path = cnp_strdup(ctx, path);
    t->bands = cnp_calloc(ctx, C, sizeof(int), "band list");
    t->mean = cnp_calloc(ctx, C, sizeof(float), "channel means");
    t->std = cnp_calloc(ctx, C, sizeof(float), "channel deviations");
    t->na = cnp_calloc(ctx, C, sizeof(float), "channel scaling");
    t->nb = cnp_calloc(ctx, C, sizeof(float), "channel scaling");
    t->nd_override = cnp_calloc(ctx, C, 1, "channel flags");
    if (!t->path || !t->bands || !t->mean || !t->std || !t->na || !t->nb || !t->nd_override)
        return CNP_ERR_NOMEM;
    for (c = 0; c < t->C; c++) {
        double gain = p->rad_gain ? p->rad_gain[c] : 1.0, add = p->rad_add ? p->rad_add[c] : 0.0;
        double sc = p->spec.scale, off = p->spec.offset;
        t->bands[c] = p->spec.bands[c];
        t->mean[c] = p->spec.mean[c];
        t->std[c] = p->spec.std[c];
        t->na[c] = (float)(gain * sc / t->std[c]);
        t->nb[c] = (float)(((off - add * gain) * sc + t->mean[c]) / t->std[c]);
    }
    if (p->qmask) {
        t->have_qmask = 1;
        t->qmask = *p->qmask;
        t->qmask_path = cnp_strdup(ctx, p->qmask->path);
        if (!t->qmask_path)
            return CNP_ERR_NOMEM;
        t->qmask.path = t->qmask_path;
        t->info.qmask_kind = t->qmask.kind;
    }
    t->info.path = t->path;
    t->info.input_size = t->S;
    return CNP_OK;
}

static GDALDatasetH open_quiet(const char *path)
{
    GDALDatasetH ds;
    cnp_gdal_quiet_begin();
    ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL, NULL,
                    NULL);
    cnp_gdal_quiet_end();
    return ds;
}

/* Opens the scene; its size, geotransform (north-up) and CRS. */
static cnp_status open_scene(cnp_ctx *ctx, cnp_tiler *t, OGRSpatialReferenceH *srs)
{
    const char *path = t->path, *wkt;
    t->ds = open_quiet(path);
    if (!t->ds)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot open as a raster (%s); check that the file "
                         "exists, is complete and is an image GDAL reads", path, cnp_gdal_msg());
    t->info.width = GDALGetRasterXSize(t->ds);
    t->info.height = GDALGetRasterYSize(t->ds);
    t->info.n_bands = GDALGetRasterCount(t->ds);
    if (t->info.n_bands < 1 || t->info.width < 1 || t->info.height < 1)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: no raster bands to read; is it a vector or "
                         "a container of subdatasets? (gdalinfo lists them)", path);
    if (read_geotransform(ctx, t->ds, path, t->info.scene_gt) != CNP_OK)
        return ctx->status;
    if (t->info.scene_gt[2] != 0.0 || t->info.scene_gt[4] != 0.0)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: rotated or sheared geotransform "
                         "(%g, %g) is not supported; warp it to a north-up grid first, e.g. "
                         "gdalwarp %s north-up.tif", path, t->info.scene_gt[2],
                         t->info.scene_gt[4], path);
    if (!(t->info.scene_gt[1] != 0.0 && t->info.scene_gt[5] != 0.0))
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the geotransform has a zero pixel size; fix "
                         "its georeferencing (gdal_edit.py -a_ullr)", path);
    *srs = GDALGetSpatialRef(t->ds);
    wkt = GDALGetProjectionRef(t->ds);
    if (!*srs || !wkt || !*wkt)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: no coordinate reference system; assign the "
                         "right one with gdal_edit.py -a_srs EPSG:XXXX %s", path, path);
    t->wkt = cnp_strdup(ctx, wkt);
    if (!t->wkt)
        return CNP_ERR_NOMEM;
    t->info.crs_wkt = t->wkt;
    t->files = GDALGetFileList(t->ds);
    if (!t->files) /* /vsicurl/ and in-memory scenes may list nothing: record the path. */
        t->files = CSLAddString(NULL, path);
    t->info.files = (const char *const *)t->files;
    return CNP_OK;
}

/* The bands read exist and hold real numbers; which declare no nodata. */
static cnp_status check_bands(cnp_ctx *ctx, cnp_tiler *t)
{
    int c, nb = t->info.n_bands;
    t->stage = GDT_Byte;
    for (c = 0; c < t->C; c++) {
        GDALRasterBandH b;
        GDALDataType dt;
        int has_nd = 0;
        if (t->bands[c] < 1 || t->bands[c] > nb)
            return cnp_error(ctx, CNP_ERR_SHAPE, "%s: channel %d reads band %d but the scene has "
                             "%d band%s; choose its bands with --bands (e.g. --bands %s)", t->path,
                             c + 1, t->bands[c], nb, nb == 1 ? "" : "s",
                             nb >= 3 ? "3,2,1" : "1,1,1");
        b = GDALGetRasterBand(t->ds, t->bands[c]);
        dt = GDALGetRasterDataType(b);
        if (GDALDataTypeIsFloating(dt))
            t->check_finite = 1;
        if (GDALDataTypeIsComplex(dt))
            return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: band %d holds complex numbers; "
                             "convert it to amplitude first (gdal_translate -ot Float32 with a "
                             "VRT pixel function)", t->path, t->bands[c]);
        (void)GDALGetRasterNoDataValue(b, &has_nd);
        t->nd_override[c] = t->have_nodata && !has_nd;
        /* Integer bands are read as such and converted while normalising:
         * GDAL's own conversion to Float32 costs more than its decoding
         * of an uncompressed file. */
        if (dt != GDT_Byte && dt != GDT_UInt16)
            t->stage = GDT_Float32;
        else if (dt == GDT_UInt16 && t->stage == GDT_Byte)
            t->stage = GDT_UInt16;
    }
    return CNP_OK;
}

/* Opens the quality mask for reader r; for reader 0 also checks that it is
 * in the scene's CRS and covers the scene. */
static cnp_status open_qmask(cnp_ctx *ctx, cnp_tiler *t, reader *r, OGRSpatialReferenceH srs)
{
    const cnp_tiler_info *in = &t->info;
    OGRSpatialReferenceH msrs;
    double *g = t->qmask_gt, x0, x1, y0, y1, tol;
    int k;

    r->qds = open_quiet(t->qmask.path);
    if (!r->qds)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot open its %s quality mask %s (%s); give "
                         "another with --mask FILE, or --mask none to classify without one",
                         t->path, t->qmask.kind, t->qmask.path, cnp_gdal_msg());
    if (r->id != 0)
        return CNP_OK;
    t->qmask_w = GDALGetRasterXSize(r->qds);
    t->qmask_h = GDALGetRasterYSize(r->qds);
    for (k = 0; k < t->qmask.n_bands; k++)
        if (t->qmask.bands[k] < 1 || t->qmask.bands[k] > GDALGetRasterCount(r->qds))
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the quality mask %s has %d band%s, not "
                             "the %d canopy reads as %s", t->path, t->qmask.path,
                             GDALGetRasterCount(r->qds),
                             GDALGetRasterCount(r->qds) == 1 ? "" : "s", t->qmask.bands[k],
                             t->qmask.kind);
    msrs = GDALGetSpatialRef(r->qds);
    if (GDALGetGeoTransform(r->qds, g) != CE_None || g[2] != 0 || g[4] != 0 || g[1] == 0 ||
        g[5] == 0 || !msrs || !OSRIsSame(msrs, srs))
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: its quality mask %s is not georeferenced in "
                         "the scene's CRS (north-up); give a matching one with --mask FILE, or "
                         "--mask none", t->path, t->qmask.path);
    /* The scene's extent in mask pixels must lie inside the mask (half a
     * scene pixel of tolerance). */
    x0 = (in->scene_gt[0] - g[0]) / g[1];
    x1 = (in->scene_gt[0] + in->width * in->scene_gt[1] - g[0]) / g[1];
    y0 = (in->scene_gt[3] - g[3]) / g[5];
    y1 = (in->scene_gt[3] + in->height * in->scene_gt[5] - g[3]) / g[5];
    tol = 0.5 * fabs(in->scene_gt[1] / g[1]);
    if (fmin(x0, x1) < -tol || fmax(x0, x1) > t->qmask_w + tol || fmin(y0, y1) < -tol ||
        fmax(y0, y1) > t->qmask_h + tol)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: its quality mask %s does not cover the "
                         "scene; give the matching mask with --mask FILE, or --mask none",
                         t->path, t->qmask.path);
    return CNP_OK;
}

/* t->block_h: rows of the tallest block among the bands read. */
static void tallest_block(cnp_tiler *t)
{
    int c, bx, by;
    t->block_h = 1;
    for (c = 0; c < t->C; c++) {
        GDALGetBlockSize(GDALGetRasterBand(t->ds, t->bands[c]), &bx, &by);
        if (by > t->block_h)
            t->block_h = by;
    }
}

/* Reader handles on the scene (reader 0 borrows the tiler's), their
 * validity mask bands and quality mask handles. */
static cnp_status open_readers(cnp_ctx *ctx, cnp_tiler *t, int n, OGRSpatialReferenceH srs)
{
    cnp_status st;
    int c;
    t->n_readers = n > 0 ? n : DEFAULT_READERS;
    if (t->n_readers > MAX_READERS)
        t->n_readers = MAX_READERS;
    for (c = 0; c < t->n_readers; c++) {
        reader *r = &t->readers[c];
        r->t = t;
        r->id = c;
        r->ds = c == 0 ? t->ds : open_quiet(t->path);
        if (!r->ds)
            return cnp_error(ctx, CNP_ERR_IO, "%s: cannot open it a second time for reading "
                             "(%s)", t->path, cnp_gdal_msg());
        find_masks(t, r);
        if (c == 0)
            tallest_block(t);
        if (t->have_qmask && (st = open_qmask(ctx, t, r, srs)) != CNP_OK)
            return st;
    }
    if (!t->info.mask_kind)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    return CNP_OK;
}

/* The preview's canvas and buffers, unless none is asked for, the scene
 * is smaller than the canvas, or band 1 read has an overview at least as
 * large (cnp_tiler_preview). */
static cnp_status plan_preview(cnp_ctx *ctx, cnp_tiler *t, int size)
{
    const cnp_tiler_info *in = &t->info;
    cnp_status st;
    double factor;
    int cw, ch, i;

    if (size <= 0)
        return CNP_OK;
    cnp_preview_canvas(in->width, in->height, size, &cw, &ch);
    /* A canvas finer than the scene would have pixels no scene pixel
     * centre falls in: small scenes are left to the reader (cheap there). */
    if (cw > in->width || ch > in->height)
        return CNP_OK;
    if (cnp_overview_for(GDALGetRasterBand(t->ds, t->bands[0]), in->width, cw, &factor) > 0)
        return CNP_OK;
    if ((st = cnp_preview_acc_init(ctx, &t->pv, in->width, in->height, cw, ch,
                                   t->C >= 3 ? 3 : 1)) != CNP_OK)
        return st;
    for (i = 0; i < t->n_readers; i++)
        if ((st = cnp_preview_rows_init(ctx, &t->readers[i].pv, t->pv.n_planes, t->buf_w)) !=
            CNP_OK)
            return st;
    t->have_preview = 1;
    return CNP_OK;
}

cnp_status cnp_tiler_open(cnp_ctx *ctx, const char *path, const cnp_tiler_params *p,
                          cnp_tiler **out)
{
    cnp_status st;
    cnp_tiler *t = NULL;
    OGRSpatialReferenceH srs = NULL;

    *out = NULL;
    if ((st = check_params(ctx, path, p)) != CNP_OK)
        return st;
    cnp_gdal_init();
    /* GDAL sizes its block cache lazily on first use; do it here, before
     * the reader threads race to it. */
    (void)GDALGetCacheMax64();
    if ((st = tiler_new(ctx, path, p, &t)) != CNP_OK ||
        (st = open_scene(ctx, t, &srs)) != CNP_OK || (st = check_bands(ctx, t)) != CNP_OK ||
        (st = pixel_metres(ctx, t, srs)) != CNP_OK || (st = lay_out_grid(ctx, t, p)) != CNP_OK ||
        (st = open_readers(ctx, t, p->readers, srs)) != CNP_OK ||
        (st = plan_buffers(ctx, t, p->strip_chips)) != CNP_OK ||
        (st = plan_preview(ctx, t, p->preview_size)) != CNP_OK)
        goto cleanup;
    *out = t;
    t = NULL;
cleanup:
    cnp_tiler_close(t);
    return st;
}

const cnp_tiler_info *cnp_tiler_info_get(const cnp_tiler *t)
{
    return &t->info;
}

/* ---------------------------------------------------------------- reading */

/* 1 when GDAL knows that the window holds no data in a band whose missing
 * data reads as invalid: a band with a nodata value, or an alpha band or
 * stored mask (unwritten blocks read as 0). Sparse GeoTIFFs and VRT
 * mosaics over large empty areas are then not read at all. */
static int window_empty(const cnp_tiler *t, const reader *r, int x, int y, int w, int h)
{
    int c;
    for (c = 0; c < t->C; c++) {
        GDALRasterBandH b = GDALGetRasterBand(r->ds, t->bands[c]);
        int flags = GDALGetMaskFlags(b);
        GDALRasterBandH probe;
        if (flags & GMF_ALL_VALID)
            continue;
        probe = (flags & GMF_NODATA) ? b : GDALGetMaskBand(b);
        if (probe && GDALGetDataCoverageStatus(probe, x, y, w, h, 0, NULL) ==
                         GDAL_DATA_COVERAGE_STATUS_EMPTY)
            return 1;
    }
    return 0;
}

/* Pixels [x0, x0 + w) x [y0, y0 + h) of the segment buffer (bw wide,
 * channel planes `plane` apart) normalised from r->staged into dst (C, h,
 * w): v -> (v * na - nb) where usable, 0 (the mean) elsewhere. Integer
 * values are finite, so a product with use (0 or 1) masks them in a loop
 * that vectorises. Integer bands only; called per chip (chipwise: while
 * the values are hot in cache) or for the whole segment (normalise). */
CNP_VECTOR_CLONES
static void normalise_window(const cnp_tiler *t, const reader *r, size_t plane, int bw, int x0,
                             int y0, int w, int h, float *restrict dst)
{
    int c, y, x;
    for (c = 0; c < t->C; c++) {
        const float a = t->na[c];
        const float b = t->nb[c];
        for (y = 0; y < h; y++) {
            size_t at = (size_t)(y0 + y) * (size_t)bw + (size_t)x0;
            const unsigned char *restrict ok = r->use + at;
            float *restrict p = dst + ((size_t)c * (size_t)h + (size_t)y) * (size_t)w;
            if (t->stage == GDT_Byte) {
                const unsigned char *restrict q =
                    (const unsigned char *)r->staged + (size_t)c * plane + at;
#pragma omp simd
                for (x = 0; x < w; x++)
                    p[x] = ((float)q[x] * a - b) * (float)ok[x];
            } else {
                const unsigned short *restrict q =
                    (const unsigned short *)r->staged + (size_t)c * plane + at;
#pragma omp simd
                for (x = 0; x < w; x++)
                    p[x] = ((float)q[x] * a - b) * (float)ok[x];
            }
        }
    }
}

/* Resizes one chip to S x S as an image of its own (what canopy predict
 * does with a chip file): the chip's window in the strip buffer, starting
 * at (fx, fy) and chip_px wide, is resampled as an image covering its whole
 * pixels, with GDAL's bilinear weights (resample.c; a fractional window
 * when the chip does not cover whole pixels). The kernel never reaches past
 * the chip, so a chip's input does not depend on its neighbours. */
static void resize_chip(const cnp_tiler *t, reader *r, double fx, double fy, int bw,
                        size_t plane, float *dst)
{
    const cnp_tiler_info *in = &t->info;
    int x0 = (int)floor(fx), y0 = (int)floor(fy), h = (int)ceil(fy + in->chip_px[1]) - y0;
    cnp_resample_shape sh;

    sh.C = t->C;
    sh.w = (int)ceil(fx + in->chip_px[0]) - x0;
    sh.ld = bw;
    sh.plane = plane;
    sh.x = &r->ax;
    sh.y = &r->ay;
    cnp_resample_axis_set(&r->ax, fx - x0, in->chip_px[0], sh.w);
    cnp_resample_axis_set(&r->ay, fy - y0, in->chip_px[1], h);
    if (t->chipwise) {
        normalise_window(t, r, plane, bw, x0, y0, sh.w, h, r->craw);
        sh.ld = sh.w;
        sh.plane = (size_t)sh.w * (size_t)h;
        cnp_resample_chip(dst, r->craw, r->rtmp, &sh);
        return;
    }
    cnp_resample_chip(dst, r->raw + (size_t)y0 * bw + x0, r->rtmp, &sh);
}

/* r->use = r->ok and the quality mask over the scene window [ix0, ix1) x
 * [iy0, iy1) of a segment buffer whose origin is (bx0, by0) and width bw:
 * each mask band read with nearest-neighbour sampling onto the scene's
 * pixels (a fractional window in mask pixels), then the usable table. */
static cnp_status read_qmask(cnp_ctx *ctx, const cnp_tiler *t, reader *r, int bx0, int by0,
                             int bw, int ix0, int iy0, int ix1, int iy1)
{
    const double *sg = t->info.scene_gt, *g = t->qmask_gt;
    const cnp_qmask_spec *q = &t->qmask;
    int iw = ix1 - ix0, ih = iy1 - iy0, k, x, y, mx, my, mw, mh;
    size_t off = (size_t)(iy0 - by0) * bw + (size_t)(ix0 - bx0);
    GDALRasterIOExtraArg extra;
    double fx0 = (sg[0] + ix0 * sg[1] - g[0]) / g[1], fx1 = (sg[0] + ix1 * sg[1] - g[0]) / g[1];
    double fy0 = (sg[3] + iy0 * sg[5] - g[3]) / g[5], fy1 = (sg[3] + iy1 * sg[5] - g[3]) / g[5];

    /* Clamp to the mask (open_qmask checked coverage within half a pixel). */
    fx0 = fmax(0.0, fmin(fx0, t->qmask_w));
    fx1 = fmax(0.0, fmin(fx1, t->qmask_w));
    fy0 = fmax(0.0, fmin(fy0, t->qmask_h));
    fy1 = fmax(0.0, fmin(fy1, t->qmask_h));
    mx = (int)floor(fx0);
    my = (int)floor(fy0);
    mw = (int)ceil(fx1) - mx;
    mh = (int)ceil(fy1) - my;
    if (mw < 1 || mh < 1 || fx1 <= fx0 || fy1 <= fy0) {
        memset(r->use, 0, (size_t)t->buf_w * (size_t)t->buf_h);
        return CNP_OK;
    }
    INIT_RASTERIO_EXTRA_ARG(extra);
    extra.eResampleAlg = GRIORA_NearestNeighbour;
    extra.bFloatingPointWindowValidity = TRUE;
    extra.dfXOff = fx0;
    extra.dfYOff = fy0;
    extra.dfXSize = fx1 - fx0;
    extra.dfYSize = fy1 - fy0;
    memcpy(r->use, r->ok, (size_t)t->buf_w * (size_t)t->buf_h);
    for (y = iy0; y < iy1; y++) /* rule ANY: collect votes in tmp */
        memset(r->tmp + (size_t)(y - by0) * bw + (ix0 - bx0), 0, (size_t)iw);
    for (k = 0; k < q->n_bands; k++) {
        GDALRasterBandH b = GDALGetRasterBand(r->qds, q->bands[k]);
        cnp_gdal_reset();
        if (GDALRasterIOEx(b, GF_Read, mx, my, mw, mh, r->qbuf, iw, ih,
                           GDT_Byte, 1, iw, &extra) != CE_None)
            return cnp_error(ctx, CNP_ERR_IO, "%s: reading its %s quality mask %s failed (%s)",
                             t->path, q->kind, q->path, cnp_gdal_msg());
        for (y = 0; y < ih; y++) {
            unsigned char *use = r->use + off + (size_t)y * bw;
            unsigned char *vote = r->tmp + off + (size_t)y * bw;
            const unsigned char *v = r->qbuf + (size_t)y * iw;
            for (x = 0; x < iw; x++) {
                unsigned char u = q->usable[k][v[x]];
                if (q->rule == CNP_QMASK_ALL)
                    use[x] &= u;
                else
                    vote[x] |= u;
            }
        }
    }
    if (q->rule == CNP_QMASK_ANY)
        for (y = 0; y < ih; y++)
            for (x = 0; x < iw; x++)
                r->use[off + (size_t)y * bw + x] &= r->tmp[off + (size_t)y * bw + x];
    return CNP_OK;
}

/* A segment's source window: the buffer covers [bx0, bx0 + bw) x [by0, by0
 * + bh) in scene pixels (whole pixels around the chip windows), of which
 * [ix0, ix1) x [iy0, iy1) lies inside the scene; y0 is the strip's top. */
typedef struct window {
    int bx0, by0, bw, bh, ix0, iy0, ix1, iy1;
    size_t plane;
    double y0;
    int all_usable;          /* every pixel of the buffer is valid and usable */
} window;

/* Source value i of the strip buffer (channel-major) as a float. */
static float staged_value(const cnp_tiler *t, const reader *r, size_t i)
{
    switch (t->stage) {
    case GDT_Byte:
        return (float)((const unsigned char *)r->staged)[i];
    case GDT_UInt16:
        return (float)((const unsigned short *)r->staged)[i];
    default:
        return r->raw[i];
    }
}

/* Reads the bands read into r->raw (r->staged) and their validity into r->ok: inside
 * the scene, not masked by GDAL (nodata, alpha, mask band), not the
 * product's nodata value where the band has none, finite. */
static cnp_status read_valid(cnp_ctx *ctx, const cnp_tiler *t, reader *r, const window *w)
{
    int iw = w->ix1 - w->ix0, ih = w->iy1 - w->iy0, c, m, x, y;
    size_t off = (size_t)(w->iy0 - w->by0) * w->bw + (size_t)(w->ix0 - w->bx0), i;
    GSpacing sz = GDALGetDataTypeSizeBytes(t->stage);
    char *dst = t->stage == GDT_Float32 ? (char *)r->raw : (char *)r->staged;

    memset(r->ok, 0, w->plane);
    /* All bands in one call: GDAL then decodes each block of a
     * pixel-interleaved file once (band by band, it costs twice as much). */
    cnp_gdal_reset();
    if (GDALDatasetRasterIO(r->ds, GF_Read, w->ix0, w->iy0, iw, ih, dst + (size_t)sz * off, iw,
                            ih, t->stage, t->C, t->bands, sz, sz * w->bw,
                            sz * (GSpacing)w->plane) != CE_None)
        return cnp_error(ctx, CNP_ERR_IO, "%s: reading rows %d-%d failed (%s); the file may be "
                         "truncated or corrupt: check it with gdalinfo -checksum", t->path,
                         w->iy0, w->iy1 - 1, cnp_gdal_msg());
    for (y = w->iy0; y < w->iy1; y++)
        memset(r->ok + (size_t)(y - w->by0) * w->bw + (w->ix0 - w->bx0), 1, (size_t)iw);
    for (c = 0; c < t->C; c++) {
        const float nd = (float)t->nodata;
        if (!t->nd_override[c])
            continue;
        for (y = w->iy0; y < w->iy1; y++) {
            size_t row = (size_t)(y - w->by0) * w->bw - w->bx0;
            for (x = w->ix0; x < w->ix1; x++)
                if (staged_value(t, r, (size_t)c * w->plane + row + x) == nd)
                    r->ok[row + x] = 0;
        }
    }
    for (m = 0; m < r->n_masks; m++) {
        cnp_gdal_reset();
        if (GDALRasterIO(r->masks[m], GF_Read, w->ix0, w->iy0, iw, ih, r->tmp + off, iw, ih,
                         GDT_Byte, 1, w->bw) != CE_None)
            return cnp_error(ctx, CNP_ERR_IO, "%s: reading the validity mask, rows %d-%d failed "
                             "(%s); the file may be truncated or corrupt", t->path, w->iy0,
                             w->iy1 - 1, cnp_gdal_msg());
        for (y = w->iy0; y < w->iy1; y++) {
            size_t row = (size_t)(y - w->by0) * w->bw - w->bx0;
            for (x = w->ix0; x < w->ix1; x++)
                if (!r->tmp[row + x])
                    r->ok[row + x] = 0;
        }
    }
    /* NaN and infinities (floating-point bands only) are invalid. */
    for (c = 0; t->check_finite && c < t->C; c++) {
        const float *p = r->raw + (size_t)c * w->plane;
        for (i = 0; i < w->plane; i++)
            r->ok[i] &= (unsigned char)isfinite(p[i]);
    }
    return CNP_OK;
}

/* Normalises the whole segment buffer (bw x bh) into r->raw: integer
 * bands from r->staged (normalise_window); a Float32 buffer in place, may
 * hold NaN (or stale values outside the scene), so it is masked by a
 * select. Unusable pixels become 0 (the mean). */
static void normalise(const cnp_tiler *t, reader *r, int bw, int bh)
{
    const size_t plane = (size_t)bw * (size_t)bh;
    const unsigned char *restrict ok = r->use;
    int c;

    if (t->stage != GDT_Float32) {
        normalise_window(t, r, plane, bw, 0, 0, bw, bh, r->raw);
        return;
    }
    for (c = 0; c < t->C; c++) {
        float *restrict p = r->raw + (size_t)c * plane;
        const float a = t->na[c];
        const float b = t->nb[c];
        size_t i;
        for (i = 0; i < plane; i++) {
            float v = p[i] * a - b;
            p[i] = ok[i] ? v : 0.0f;
        }
    }
}

/* Each chip of the segment: its valid and usable fractions (pixel centres
 * under its window), nodata / obscured / classified, and the model input
 * of those classified. */
static void cut_chips(const cnp_tiler *t, reader *r, slot *sl, const window *w)
{
    const cnp_tiler_info *in = &t->info;
    cnp_strip *s = &sl->strip;
    size_t S2 = (size_t)t->S * (size_t)t->S;
    int j, c, x, y;

    for (j = 0; j < s->n_cols; j++) {
        double cx = (s->col0 + j) * in->stride_px[0];
        int xa = (int)ceil(cx - 0.5), xb = (int)ceil(cx + in->chip_px[0] - 0.5);
        int ya = (int)ceil(w->y0 - 0.5), yb = (int)ceil(w->y0 + in->chip_px[1] - 0.5);
        long total = (long)(xb - xa) * (long)(yb - ya), count = 0, usable = 0;
        double frac, ufrac;
        float *dst;
        if (w->all_usable)
            count = usable = total;
        for (y = ya; y < yb && !w->all_usable; y++) {
            const unsigned char *row = r->ok + (size_t)(y - w->by0) * w->bw;
            const unsigned char *urow = r->use + (size_t)(y - w->by0) * w->bw;
            for (x = xa; x < xb; x++) {
                count += row[x - w->bx0];
                usable += urow[x - w->bx0];
            }
        }
        frac = total > 0 ? (double)count / (double)total : 0.0;
        ufrac = total > 0 ? (double)usable / (double)total : 0.0;
        sl->valid[j] = (float)frac;
        sl->usable[j] = (float)ufrac;
        sl->obscured[j] = 0;
        if (count == 0 || frac < t->min_valid)
            continue;
        if (usable == 0 || ufrac < t->min_valid) {
            sl->obscured[j] = 1;
            continue;
        }
        sl->cols[s->n_chips] = s->col0 + j;
        sl->partial[s->n_chips] = usable < total;
        dst = sl->input + (size_t)s->n_chips * t->C * S2;
        if (!t->resample && t->chipwise) {
            normalise_window(t, r, w->plane, w->bw, (int)cx - w->bx0, (int)w->y0 - w->by0, t->S,
                             t->S, dst);
        } else if (!t->resample) {
            int ox = (int)cx - w->bx0, oy = (int)w->y0 - w->by0;
            for (c = 0; c < t->C; c++)
                for (y = 0; y < t->S; y++)
                    memcpy(dst + (size_t)c * S2 + (size_t)y * t->S,
                           r->raw + (size_t)c * w->plane + (size_t)(oy + y) * w->bw + ox,
                           (size_t)t->S * sizeof(float));
        } else {
            resize_chip(t, r, cx - w->bx0, w->y0 - w->by0, w->bw, w->plane, dst);
        }
        s->n_chips++;
    }
}

/* The scene pixels strip segment s owns (those whose centres are in its
 * grid cells, and up to the scene's edge in the last row or column: each
 * pixel in exactly one segment, inside its window as stride <= chip) into
 * the preview, as read (before normalise()). */
static void add_to_preview(cnp_tiler *t, reader *r, const cnp_strip *s, const window *w)
{
    const cnp_tiler_info *in = &t->info;
    cnp_preview_window pw;
    int x0 = (int)ceil(s->col0 * in->stride_px[0] - 0.5);
    int y0 = (int)ceil(s->row * in->stride_px[1] - 0.5);
    int x1 = s->col0 + s->n_cols >= in->cols
                 ? in->width
                 : (int)ceil((s->col0 + s->n_cols) * in->stride_px[0] - 0.5);
    int y1 = s->row + 1 >= in->rows ? in->height : (int)ceil((s->row + 1) * in->stride_px[1] - 0.5);

    pw.data = t->stage == GDT_Float32 ? (const void *)r->raw : (const void *)r->staged;
    pw.type = t->stage;
    pw.plane = w->plane;
    pw.row = w->bw;
    pw.x0 = w->bx0;
    pw.y0 = w->by0;
    pw.ok = r->ok;
    cnp_preview_acc_add(&t->pv, &r->pv, &pw, x0 > w->ix0 ? x0 : w->ix0, x1 < w->ix1 ? x1 : w->ix1,
                        y0 > w->iy0 ? y0 : w->iy0, y1 < w->iy1 ? y1 : w->iy1);
}

/* Reads strip segment k into slot sl (reader thread r). */
static cnp_status fill_strip(cnp_ctx *ctx, cnp_tiler *t, reader *r, int k, slot *sl)
{
    const cnp_tiler_info *in = &t->info;
    cnp_strip *s = &sl->strip;
    cnp_status st;
    double x0, x1, y1;
    window w;
    int j;

    s->index = k;
    s->row = k / t->segs_per_row;
    s->col0 = (k % t->segs_per_row) * t->seg_cols;
    s->n_cols = in->cols - s->col0 < t->seg_cols ? in->cols - s->col0 : t->seg_cols;
    s->n_chips = 0;
    s->valid = sl->valid;
    s->usable = sl->usable;
    s->obscured = sl->obscured;
    s->cols = sl->cols;
    s->partial = sl->partial;
    s->input = sl->input;

    /* The union of the segment's chip windows, in whole pixels. */
    x0 = s->col0 * in->stride_px[0];
    x1 = (s->col0 + s->n_cols - 1) * in->stride_px[0] + in->chip_px[0];
    w.y0 = s->row * in->stride_px[1];
    y1 = w.y0 + in->chip_px[1];
    w.bx0 = (int)floor(x0);
    w.by0 = (int)floor(w.y0);
    w.bw = (int)ceil(x1) - w.bx0;
    w.bh = (int)ceil(y1) - w.by0;
    if (w.bw > t->buf_w || w.bh > t->buf_h)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: strip %d needs %d x %d pixels, more than "
                         "planned (%d x %d)", t->path, k, w.bw, w.bh, t->buf_w, t->buf_h);
    w.plane = (size_t)w.bw * (size_t)w.bh;
    w.ix0 = w.bx0 > 0 ? w.bx0 : 0;
    w.iy0 = w.by0 > 0 ? w.by0 : 0;
    w.ix1 = w.bx0 + w.bw < in->width ? w.bx0 + w.bw : in->width;
    w.iy1 = w.by0 + w.bh < in->height ? w.by0 + w.bh : in->height;
    if (w.ix1 <= w.ix0 || w.iy1 <= w.iy0 ||
        window_empty(t, r, w.ix0, w.iy0, w.ix1 - w.ix0, w.iy1 - w.iy0)) {
        /* Nothing valid under this segment: no chip to classify. */
        for (j = 0; j < s->n_cols; j++) {
            sl->valid[j] = sl->usable[j] = 0.0f;
            sl->obscured[j] = 0;
        }
        return CNP_OK;
    }
    /* A reader's windows move down the scene. When this one starts below
     * every block row its handle has read, those blocks are done with:
     * dropping them from GDAL's cache lets the next blocks reuse their
     * memory instead of touching new pages until the cache limit (5 % of
     * RAM by default; page faults are dear in virtual machines). */
    if (r->last_iy1 > 0 && (r->last_iy1 - 1) / t->block_h < w.iy0 / t->block_h)
        GDALFlushCache(r->ds);
    r->last_iy1 = w.iy1;
    if ((st = read_valid(ctx, t, r, &w)) != CNP_OK)
        return st;
    if (t->have_preview)
        add_to_preview(t, r, s, &w);
    /* Inside the scene without masks, nodata or floats: no pixel to count. */
    w.all_usable = w.ix0 == w.bx0 && w.iy0 == w.by0 && w.ix1 == w.bx0 + w.bw &&
                   w.iy1 == w.by0 + w.bh && r->n_masks == 0 && !t->check_finite &&
                   !t->have_qmask && !memchr(t->nd_override, 1, (size_t)t->C);
    if (t->have_qmask) {
        if ((st = read_qmask(ctx, t, r, w.bx0, w.by0, w.bw, w.ix0, w.iy0, w.ix1, w.iy1)) !=
            CNP_OK)
            return st;
    } else {
        memcpy(r->use, r->ok, w.plane);
    }
    if (!t->chipwise)
        normalise(t, r, w.bw, w.bh);
    cut_chips(t, r, sl, &w);
    return CNP_OK;
}

/* CPU seconds of the calling thread. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads strip k into slot sl with reader r, on the calling thread; its
 * busy and CPU seconds added to *busy and *cpu. */
static void read_strip(cnp_tiler *t, reader *r, int k, slot *sl, double *busy, double *cpu)
{
    double t0 = cnp_now(), c0 = thread_cpu_s();

    cnp_gdal_quiet_begin();
    cnp_ctx_clear(&sl->err);
    sl->st = fill_strip(&sl->err, t, r, k, sl);
    cnp_gdal_quiet_end();
    *busy += cnp_now() - t0;
    *cpu += thread_cpu_s() - c0;
}

/* The next round: strips next_give .. + n_readers - 1, one per reader, read
 * side by side by the caller's OpenMP team (the engine's threads, idle
 * between batches: reading never preempts them at a barrier). */
static void read_round(cnp_tiler *t)
{
    double t0 = cnp_now(), busy = 0.0, cpu = 0.0;
    int i, n, j;

    t->round0 = t->next_give;
    n = t->info.n_strips - t->round0;
    t->round_n = n < t->n_readers ? n : t->n_readers;
    n = t->round_n;
#pragma omp parallel for num_threads(n) schedule(static, 1) reduction(+ : busy, cpu)
    for (i = 0; i < n; i++)
        read_strip(t, &t->readers[i], t->round0 + i, &t->slots[i], &busy, &cpu);
    t->wait_s += cnp_now() - t0;
    t->read_s += busy;
    t->read_cpu_s += cpu;
    for (i = 0; i < n; i++) {
        const cnp_strip *s = &t->slots[i].strip;
        if (t->slots[i].st != CNP_OK)
            break;
        t->chips += s->n_chips;
        t->skipped += s->n_cols - s->n_chips;
        for (j = 0; j < s->n_chips; j++)
            t->partial += s->partial[j];
        for (j = 0; j < s->n_cols; j++)
            t->obscured += s->obscured[j];
    }
}

cnp_status cnp_tiler_next_strip(cnp_ctx *ctx, cnp_tiler *t, const cnp_strip **out)
{
    const slot *sl;

    *out = NULL;
    if (t->next_give >= t->info.n_strips)
        return CNP_OK;
    if (t->next_give >= t->round0 + t->round_n)
        read_round(t);
    sl = &t->slots[t->next_give - t->round0];
    if (sl->st != CNP_OK) /* and again at every later call */
        return cnp_error(ctx, sl->st, "%s", sl->err.msg);
    t->next_give++;
    *out = &sl->strip;
    return CNP_OK;
}

cnp_status cnp_tiler_preview(cnp_ctx *ctx, cnp_tiler *t, cnp_preview **out)
{
    *out = NULL;
    if (!t->have_preview || t->next_give < t->info.n_strips || !t->pv.sum)
        return CNP_OK;
    return cnp_preview_acc_finish(ctx, &t->pv, out);
}

void cnp_tiler_stats_get(const cnp_tiler *t, cnp_tiler_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    stats->read_s = t->read_s;
    stats->read_cpu_s = t->read_cpu_s;
    stats->wait_s = t->wait_s;
    stats->chips = t->chips;
    stats->partial = t->partial;
    stats->skipped = t->skipped;
    stats->obscured = t->obscured;
}

void cnp_tiler_close(cnp_tiler *t)
{
    int s;
    if (!t)
        return;
    for (s = 0; s < MAX_READERS; s++) {
        reader *r = &t->readers[s];
        if (r->ds && r->ds != t->ds)
            GDALClose(r->ds);
        if (r->qds)
            GDALClose(r->qds);
        cnp_aligned_free(r->raw);
        cnp_aligned_free(r->staged);
        cnp_resample_axis_free(&r->ax);
        cnp_resample_axis_free(&r->ay);
        cnp_aligned_free(r->rtmp);
        cnp_aligned_free(r->craw);
        cnp_preview_rows_free(&r->pv);
        free(r->ok);
        free(r->tmp);
        free(r->use);
        free(r->qbuf);
    }
    if (t->ds)
        GDALClose(t->ds);
    for (s = 0; s < MAX_READERS; s++) {
        free(t->slots[s].valid);
        free(t->slots[s].usable);
        free(t->slots[s].obscured);
        free(t->slots[s].cols);
        free(t->slots[s].partial);
        cnp_aligned_free(t->slots[s].input);
    }
    cnp_preview_acc_free(&t->pv);
    free((char *)t->info.mask_kind);
    CSLDestroy(t->files);
    free(t->wkt);
    free(t->bands);
    free(t->mean);
    free(t->std);
    free(t->na);
    free(t->nb);
    free(t->nd_override);
    free(t->qmask_path);
    free(t->path);
    free(t);
}
