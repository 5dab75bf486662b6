/* observe.c -- one scene's probabilities mapped onto the alert grid with
 * GDAL's warper, and written as an observation raster (alerts.h). */
#define _POSIX_C_SOURCE 200809L
#include "alerts/internal.h"
#include "base/gdal.h"
#include "scene/date.h"
#include "scene/scene.h" /* cnp_gdal_init */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdalwarper.h>
#include <ogr_srs_api.h>

#define DST_NODATA (-1.0)

static GDALDatasetH open_raster(cnp_ctx *ctx, const char *path, const char *what)
{
    GDALDatasetH ds;
    cnp_gdal_init();
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds)
        cnp_error(ctx, CNP_ERR_IO, "%s: cannot open the %s (%s); check the path", path, what,
                  cnp_gdal_msg());
    return ds;
}

cnp_status al_grid_from_raster(cnp_ctx *ctx, const char *path, al_grid *g)
{
    GDALDatasetH ds = open_raster(ctx, path, "raster");
    const char *wkt;
    cnp_status st = CNP_OK;

    memset(g, 0, sizeof *g);
    if (!ds)
        return CNP_ERR_IO;
    wkt = GDALGetProjectionRef(ds);
    if (GDALGetGeoTransform(ds, g->gt) != CE_None || !wkt || !*wkt) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: no georeferencing (geotransform and CRS); an "
                       "alert grid needs both", path);
    } else if (g->gt[2] != 0.0 || g->gt[4] != 0.0 || g->gt[1] <= 0.0 || g->gt[5] >= 0.0) {
        st = cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: a rotated or flipped grid; an alert grid "
                       "must be north-up", path);
    } else {
        g->cols = GDALGetRasterXSize(ds);
        g->rows = GDALGetRasterYSize(ds);
        g->wkt = cnp_strdup(ctx, wkt);
        if (!g->wkt)
            st = CNP_ERR_NOMEM;
    }
    GDALClose(ds);
    return st;
}

cnp_status al_markers_of(cnp_ctx *ctx, const char *probs, char ***labels)
{
    GDALDatasetH ds = open_raster(ctx, probs, "probabilities raster");
    const char *m;
    cnp_status st = CNP_OK;

    *labels = NULL;
    if (!ds)
        return CNP_ERR_IO;
    m = GDALGetMetadataItem(ds, "CANOPY_MARKERS", NULL);
    if (m)
        *labels = CSLTokenizeString2(m, ",", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES);
    if (!*labels || !**labels) {
        CSLDestroy(*labels);
        *labels = NULL;
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: no marker labels (CANOPY_MARKERS) in its "
                       "metadata; give the probabilities raster canopy classify wrote "
                       "(NAME.probs.tif)", probs);
    }
    GDALClose(ds);
    return st;
}

/* Band (1-based) of `label` in ds by description or CANOPY_LABEL; 0 none. */
static int find_band(GDALDatasetH ds, const char *label)
{
    int b, n = GDALGetRasterCount(ds);
    for (b = 1; b <= n; b++) {
        GDALRasterBandH h = GDALGetRasterBand(ds, b);
        const char *d = GDALGetDescription(h), *m = GDALGetMetadataItem(h, "CANOPY_LABEL", NULL);
        if ((d && !strcmp(d, label)) || (m && !strcmp(m, label)))
            return b;
    }
    return 0;
}

/* Bands to warp: tracked labels first, then the obscuring labels present. */
typedef struct sel {
    int n, n_tracked;
    int bands[128];
    double thr[128];
    double scale[128], offset[128];
} sel;

static cnp_status select_bands(cnp_ctx *ctx, const al_state *s, GDALDatasetH ds,
                               const char *probs, sel *b)
{
    char **obsc = CSLTokenizeString2(s->obscured ? s->obscured : "", ",",
                                     CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES);
    int i, k;
    cnp_status st = CNP_OK;

    memset(b, 0, sizeof *b);
    for (i = 0; i < s->n_labels + CSLCount(obsc) && b->n < 128; i++) {
        const char *lab = i < s->n_labels ? s->labels[i] : obsc[i - s->n_labels];
        int band = find_band(ds, lab);
        GDALRasterBandH h;
        const char *t;
        int ok;
        if (!band) {
            if (i < s->n_labels) {
                st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: no band for label '%s', which this alert "
                               "state tracks; classify the scene with a model that has it (or "
                               "use another state folder)", probs, lab);
                break;
            }
            continue;
        }
        h = GDALGetRasterBand(ds, band);
        k = b->n++;
        b->bands[k] = band;
        t = GDALGetMetadataItem(h, "CANOPY_THRESHOLD", NULL);
        b->thr[k] = t ? CPLAtof(t) : 0.5;
        b->scale[k] = GDALGetRasterScale(h, &ok);
        if (!ok || b->scale[k] == 1.0)
            b->scale[k] = GDALGetRasterDataType(h) == GDT_Byte ? 1.0 / 255.0 : 1.0;
        b->offset[k] = GDALGetRasterOffset(h, &ok);
        if (!ok)
            b->offset[k] = 0.0;
        if (i < s->n_labels)
            b->n_tracked = b->n;
    }
    CSLDestroy(obsc);
    return st;
}

/* The selected bands of src into dst as they are, nodata as DST_NODATA. */
static cnp_status copy_bands(cnp_ctx *ctx, const al_state *s, GDALDatasetH src, GDALDatasetH dst,
                             const struct sel *b, const char *probs, GDALDatasetH *out)
{
    size_t cells = (size_t)s->grid.cols * (size_t)s->grid.rows, c;
    float *v = cnp_calloc(ctx, cells, sizeof(float), "a band");
    int i, ok = v != NULL;
    for (i = 0; ok && i < b->n; i++) {
        GDALRasterBandH h = GDALGetRasterBand(src, b->bands[i]);
        int has;
        double nd = GDALGetRasterNoDataValue(h, &has);
        ok = GDALRasterIO(h, GF_Read, 0, 0, s->grid.cols, s->grid.rows, v, s->grid.cols,
                          s->grid.rows, GDT_Float32, 0, 0) == CE_None;
        for (c = 0; ok && c < cells; c++)
            if (has && (v[c] == (float)nd || (isnan(nd) && isnan(v[c]))))
                v[c] = (float)DST_NODATA;
        ok = ok && GDALRasterIO(GDALGetRasterBand(dst, i + 1), GF_Write, 0, 0, s->grid.cols,
                                s->grid.rows, v, s->grid.cols, s->grid.rows, GDT_Float32, 0, 0)
                   == CE_None;
    }
    free(v);
    if (!ok) {
        GDALClose(dst);
        return ctx->status ? ctx->status
                           : cnp_error(ctx, CNP_ERR_IO, "%s: reading its bands failed (%s)", probs,
                                       cnp_gdal_msg());
    }
    *out = dst;
    return CNP_OK;
}

/* 1 when src lies exactly on the grid (same size, geotransform and CRS):
 * the common case of scenes of one footprint, read without a warp. */
static int same_grid(GDALDatasetH src, const al_state *s)
{
    double gt[6];
    const char *wkt = GDALGetProjectionRef(src);
    OGRSpatialReferenceH a, b;
    int i, same;
    if (GDALGetRasterXSize(src) != s->grid.cols || GDALGetRasterYSize(src) != s->grid.rows ||
        GDALGetGeoTransform(src, gt) != CE_None || !wkt || !*wkt)
        return 0;
    for (i = 0; i < 6; i++)
        if (fabs(gt[i] - s->grid.gt[i]) > 1e-9 * (fabs(s->grid.gt[i]) + 1.0))
            return 0;
    if (!strcmp(wkt, s->grid.wkt))
        return 1;
    a = OSRNewSpatialReference(wkt);
    b = OSRNewSpatialReference(s->grid.wkt);
    same = a && b && OSRIsSame(a, b);
    OSRDestroySpatialReference(a);
    OSRDestroySpatialReference(b);
    return same;
}

/* Warps the selected bands of src onto the grid (Float32 MEM, DST_NODATA
 * where nothing maps); on the grid already, copies them. */
static cnp_status warp(cnp_ctx *ctx, const al_state *s, GDALDatasetH src, const sel *b,
                       const char *probs, GDALDatasetH *out)
{
    GDALDriverH mem = GDALGetDriverByName("MEM");
    GDALDatasetH dst = NULL;
    GDALWarpOptions *wo = NULL;
    cnp_status st = CNP_OK;
    int i;

    *out = NULL;
    dst = mem ? GDALCreate(mem, "", s->grid.cols, s->grid.rows, b->n, GDT_Float32, NULL) : NULL;
    if (!dst)
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: cannot make the in-memory grid (%s)", probs,
                         cnp_gdal_msg());
    GDALSetGeoTransform(dst, (double *)s->grid.gt);
    GDALSetProjection(dst, s->grid.wkt);
    if (same_grid(src, s))
        return copy_bands(ctx, s, src, dst, b, probs, out);
    wo = GDALCreateWarpOptions();
    wo->nBandCount = b->n;
    wo->panSrcBands = CPLMalloc(sizeof(int) * (size_t)b->n);
    wo->panDstBands = CPLMalloc(sizeof(int) * (size_t)b->n);
    wo->padfDstNoDataReal = CPLMalloc(sizeof(double) * (size_t)b->n);
    wo->padfSrcNoDataReal = CPLMalloc(sizeof(double) * (size_t)b->n);
    for (i = 0; i < b->n; i++) {
        int has;
        double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(src, b->bands[i]), &has);
        wo->panSrcBands[i] = b->bands[i];
        wo->panDstBands[i] = i + 1;
        wo->padfDstNoDataReal[i] = DST_NODATA;
        /* without a nodata value every source pixel is data */
        wo->padfSrcNoDataReal[i] = has ? nd : DST_NODATA;
        GDALSetRasterNoDataValue(GDALGetRasterBand(dst, i + 1), DST_NODATA);
    }
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "UNIFIED_SRC_NODATA", "NO");
    CPLErrorReset();
    if (GDALReprojectImage(src, NULL, dst, NULL, GRA_NearestNeighbour, 0.0, 0.0, NULL, NULL, wo)
        != CE_None)
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: mapping it onto the alert grid failed (%s)",
                       probs, cnp_gdal_msg());
    GDALDestroyWarpOptions(wo);
    if (st != CNP_OK) {
        GDALClose(dst);
        return st;
    }
    *out = dst;
    return CNP_OK;
}

/* The observation bytes (n_labels + 1, cells) from the warped grid. */
static cnp_status to_obs(cnp_ctx *ctx, const al_state *s, GDALDatasetH w, const sel *b,
                         const char *probs, uint8_t *v)
{
    size_t cells = (size_t)s->grid.cols * (size_t)s->grid.rows, c;
    float *p = cnp_calloc(ctx, cells * (size_t)b->n, sizeof(float), "the warped grid");
    uint8_t *status = v + (size_t)s->n_labels * cells;
    long n_clear = 0, n_seen = 0;
    int i;

    if (!p)
        return CNP_ERR_NOMEM;
    for (i = 0; i < b->n; i++) {
        if (GDALRasterIO(GDALGetRasterBand(w, i + 1), GF_Read, 0, 0, s->grid.cols, s->grid.rows,
                         p + (size_t)i * cells, s->grid.cols, s->grid.rows, GDT_Float32, 0, 0)
            != CE_None) {
            free(p);
            return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: reading the warped grid failed (%s)",
                             probs, cnp_gdal_msg());
        }
    }
    for (c = 0; c < cells; c++) {
        int seen = 1, obscured = 0;
        for (i = 0; i < b->n; i++) {
            float raw = p[(size_t)i * cells + c];
            double q = raw * b->scale[i] + b->offset[i];
            if (raw == (float)DST_NODATA || isnan(raw)) {
                if (i < b->n_tracked)
                    seen = 0;
                continue;
            }
            if (i >= b->n_tracked && q >= b->thr[i])
                obscured = 1;
        }
        status[c] = !seen ? AL_ST_NONE : obscured ? AL_ST_OBSCURED : AL_ST_CLEAR;
        n_seen += seen;
        n_clear += status[c] == AL_ST_CLEAR;
        for (i = 0; i < s->n_labels; i++) {
            double q = p[(size_t)i * cells + c] * b->scale[i] + b->offset[i];
            long qv = lround(q * 255.0);
            v[(size_t)i * cells + c] = status[c] != AL_ST_CLEAR ? AL_NODATA
                                       : (uint8_t)(qv < 0 ? 0 : qv > 254 ? 254 : qv);
        }
    }
    free(p);
    if (n_seen == 0)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: no classified chip of this scene falls on the "
                         "alert grid; is it a scene of another area? Use another state folder, "
                         "or a larger grid (--alerts-grid REF.tif) for a new state", probs);
    return CNP_OK;
}

static cnp_status write_obs(cnp_ctx *ctx, const al_state *s, const sel *b, const uint8_t *v,
                            const char *scene_id, int day, const char *out_path)
{
    static const char *const co[] = { "COMPRESS=DEFLATE", "INTERLEAVE=BAND", NULL };
    GDALDriverH gt = GDALGetDriverByName("GTiff");
    GDALDatasetH ds;
    size_t cells = (size_t)s->grid.cols * (size_t)s->grid.rows;
    cnp_status st = CNP_OK;
    char day_s[11], buf[32];
    int i, ok = 1;

    CPLErrorReset();
    ds = gt ? GDALCreate(gt, out_path, s->grid.cols, s->grid.rows, s->n_labels + 1, GDT_Byte,
                         (char **)co) : NULL;
    if (!ds)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot write the observation (%s)", out_path,
                         cnp_gdal_msg());
    ok &= GDALSetGeoTransform(ds, (double *)s->grid.gt) == CE_None;
    ok &= GDALSetProjection(ds, s->grid.wkt) == CE_None;
    ok &= GDALSetMetadataItem(ds, "CANOPY_SCENE", scene_id, NULL) == CE_None;
    cnp_date_format(day, day_s);
    ok &= GDALSetMetadataItem(ds, "CANOPY_DATE", day_s, NULL) == CE_None;
    for (i = 0; i <= s->n_labels; i++) {
        GDALRasterBandH h = GDALGetRasterBand(ds, i + 1);
        ok &= GDALRasterIO(h, GF_Write, 0, 0, s->grid.cols, s->grid.rows,
                           (void *)(v + (size_t)i * cells), s->grid.cols, s->grid.rows, GDT_Byte,
                           0, 0) == CE_None;
        if (i < s->n_labels) {
            GDALSetDescription(h, s->labels[i]);
            snprintf(buf, sizeof buf, "%.9g", b->thr[i]);
            ok &= GDALSetMetadataItem(h, "CANOPY_THRESHOLD", buf, NULL) == CE_None;
            ok &= GDALSetRasterNoDataValue(h, AL_NODATA) == CE_None;
            ok &= GDALSetRasterScale(h, 1.0 / 255.0) == CE_None;
        } else {
            GDALSetDescription(h, "status");
            ok &= GDALSetMetadataItem(h, "CANOPY_VALUES", "0=not classified,1=clear,2=obscured",
                                      NULL) == CE_None;
        }
    }
    if (ok)
        CPLErrorReset();
    GDALClose(ds);
    ok &= CPLGetLastErrorType() < CE_Failure;
    if (!ok)
        st = cnp_error(ctx, CNP_ERR_IO, "%s: writing the observation failed (%s); check free "
                       "space", out_path, cnp_gdal_msg());
    return st;
}

cnp_status al_observe(cnp_ctx *ctx, const al_state *s, const char *probs, const char *scene_id,
                      int day, const char *out_path)
{
    cnp_status st;
    GDALDatasetH src = open_raster(ctx, probs, "probabilities raster"), w = NULL;
    uint8_t *v = NULL;
    sel b;

    if (!src)
        return CNP_ERR_IO;
    if ((st = select_bands(ctx, s, src, probs, &b)) != CNP_OK ||
        (st = warp(ctx, s, src, &b, probs, &w)) != CNP_OK)
        goto cleanup;
    v = cnp_calloc(ctx, (size_t)s->grid.cols * (size_t)s->grid.rows,
                   (size_t)s->n_labels + 1, "an observation");
    if (!v) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    if ((st = to_obs(ctx, s, w, &b, probs, v)) != CNP_OK)
        goto cleanup;
    st = write_obs(ctx, s, &b, v, scene_id, day, out_path);
cleanup:
    free(v);
    if (w)
        GDALClose(w);
    GDALClose(src);
    return st;
}
