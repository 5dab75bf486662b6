/* output.c -- what the alert state shows: alerts.tif (GFW date_conf
 * encoding) with its QGIS style, alerts.geojson, and a scene's
 * NAME.alerts.geojson of what it made new or changed.
 *
 * Regions: 4-connected cells of one label with the same first-detection
 * day and the same confidence (or, for a scene's changes, the same event),
 * so that every polygon's properties hold for all of it. Outlines come from
 * GDALPolygonize on a raster of region ids (valid polygons, holes kept); the
 * GeoJSON driver reprojects them to EPSG:4326 (RFC7946=YES). area_m2 is the
 * sum of the region's cells' geodesic areas on WGS 84 (PROJ's
 * geod_polygonarea of each cell's corners in lon/lat).
 */
#define _GNU_SOURCE
#include "alerts/internal.h"
#include "base/gdal.h"
#include "scene/date.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <geodesic.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

/* ---- cell areas --------------------------------------------------------- */

cnp_status al_cell_areas(cnp_ctx *ctx, const al_grid *g, double **areas)
{
    OGRSpatialReferenceH src = OSRNewSpatialReference(NULL), wgs = OSRNewSpatialReference(NULL);
    OGRCoordinateTransformationH ct = NULL;
    struct geod_geodesic gd;
    size_t cells = (size_t)g->cols * (size_t)g->rows;
    double *xs = NULL, *ys = NULL;
    cnp_status st = CNP_OK;
    int r, c, n = (g->cols + 1) * (g->rows + 1);

    *areas = cnp_calloc(ctx, cells, sizeof(double), "cell areas");
    xs = cnp_calloc(ctx, (size_t)n, sizeof(double), "cell corners");
    ys = cnp_calloc(ctx, (size_t)n, sizeof(double), "cell corners");
    if (!*areas || !xs || !ys) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    if (OSRImportFromWkt(src, (char **)&(const char *){ g->wkt }) != OGRERR_NONE ||
        OSRImportFromEPSG(wgs, 4326) != OGRERR_NONE) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "the alert grid's CRS is not understood by PROJ");
        goto cleanup;
    }
    OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
    ct = OCTNewCoordinateTransformation(src, wgs);
    for (r = 0; r <= g->rows; r++)
        for (c = 0; c <= g->cols; c++) {
            xs[r * (g->cols + 1) + c] = g->gt[0] + c * g->gt[1];
            ys[r * (g->cols + 1) + c] = g->gt[3] + r * g->gt[5];
        }
    if (!ct || !OCTTransform(ct, n, xs, ys, NULL)) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "the alert grid cannot be transformed to WGS 84 "
                       "longitude/latitude");
        goto cleanup;
    }
    geod_init(&gd, 6378137.0, 1.0 / 298.257223563);
    for (r = 0; r < g->rows; r++)
        for (c = 0; c < g->cols; c++) {
            int i0 = r * (g->cols + 1) + c, i1 = i0 + 1, i2 = i1 + g->cols + 1, i3 = i2 - 1;
            double lat[4] = { ys[i0], ys[i1], ys[i2], ys[i3] };
            double lon[4] = { xs[i0], xs[i1], xs[i2], xs[i3] };
            double a;
            geod_polygonarea(&gd, lat, lon, 4, &a, NULL);
            (*areas)[(size_t)r * (size_t)g->cols + (size_t)c] = fabs(a);
        }
cleanup:
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(src);
    OSRDestroySpatialReference(wgs);
    free(xs);
    free(ys);
    if (st != CNP_OK) {
        free(*areas);
        *areas = NULL;
    }
    return st;
}

/* ---- regions ------------------------------------------------------------ */

typedef struct region {
    int64_t key;
    int first_day, last_day, nobs, conf, confirmed;
    uint8_t event;
    long cells;
    double area;
    int *scenes;
    int n_scenes, cap_scenes;
} region;

typedef struct regions {
    int32_t *id;          /* (cells) region id, 0 none */
    size_t *queue;
    region *r;            /* (n + 1), 0 unused */
    int n;
} regions;

static void regions_free(regions *g)
{
    int i;
    for (i = 1; g->r && i <= g->n; i++)
        free(g->r[i].scenes);
    free(g->r);
    free(g->id);
    free(g->queue);
    memset(g, 0, sizeof *g);
}

static int add_scene(region *r, int k)
{
    int i;
    if (k < 0)
        return 1;
    for (i = 0; i < r->n_scenes; i++)
        if (r->scenes[i] == k)
            return 1;
    if (r->n_scenes == r->cap_scenes) {
        int cap = r->cap_scenes ? 2 * r->cap_scenes : 4;
        int *p = realloc(r->scenes, sizeof(int) * (size_t)cap);
        if (!p)
            return 0;
        r->scenes = p;
        r->cap_scenes = cap;
    }
    r->scenes[r->n_scenes++] = k;
    return 1;
}

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Key of cell i of label l: 0 = not part of any region. */
static int64_t cell_key(const al_timeline *tl, size_t i, int changes)
{
    const al_cell *x = &tl->cell[i];
    if (changes)
        return tl->event[i] ? (int64_t)tl->event_day[i] * 4 + tl->event[i] : 0;
    if (!x->active)
        return 0;
    return (int64_t)x->first_day * 4 + (x->confirmed ? 3 : x->conf == CNP_ALERT_HIGH ? 2 : 1);
}

/* Labels the 4-connected regions of label l with equal keys. */
static cnp_status find_regions(cnp_ctx *ctx, const al_state *s, const al_timeline *tl, int l,
                               int changes, const double *areas, regions *g)
{
    size_t cells = tl->cells, c, head, tail, base = (size_t)l * cells;
    int cols = s->grid.cols, rows = s->grid.rows;

    memset(g->id, 0, cells * sizeof *g->id);
    g->n = 0;
    for (c = 0; c < cells; c++) {
        int64_t key = cell_key(tl, base + c, changes);
        region *r, *grown;
        if (!key || g->id[c])
            continue;
        grown = realloc(g->r, sizeof *g->r * (size_t)(g->n + 2));
        if (!grown)
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory tracing alert regions");
        g->r = grown;
        g->n++;
        r = &g->r[g->n];
        memset(r, 0, sizeof *r);
        r->key = key;
        g->id[c] = g->n;
        head = tail = 0;
        g->queue[tail++] = c;
        while (head < tail) {
            size_t q = g->queue[head++];
            const al_cell *x = &tl->cell[base + q];
            int rr = (int)(q / (size_t)cols), cc = (int)(q % (size_t)cols), d;
            static const int dr[4] = { -1, 1, 0, 0 }, dc[4] = { 0, 0, -1, 1 };
            r->cells++;
            r->area += areas[q];
            if (r->cells == 1 || x->last_day > r->last_day)
                r->last_day = x->last_day;
            if (x->nobs > r->nobs)
                r->nobs = x->nobs;
            r->first_day = changes ? tl->event_day[base + q] : x->first_day;
            r->conf = x->conf;
            r->confirmed = x->confirmed;
            r->event = tl->event[base + q];
            if (!add_scene(r, x->first_scene) || !add_scene(r, x->confirm_scene))
                return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory tracing alert regions");
            for (d = 0; d < 4; d++) {
                int r2 = rr + dr[d], c2 = cc + dc[d];
                size_t t;
                if (r2 < 0 || r2 >= rows || c2 < 0 || c2 >= cols)
                    continue;
                t = (size_t)r2 * (size_t)cols + (size_t)c2;
                if (!g->id[t] && cell_key(tl, base + t, changes) == key) {
                    g->id[t] = g->n;
                    g->queue[tail++] = t;
                }
            }
        }
        qsort(r->scenes, (size_t)r->n_scenes, sizeof(int), cmp_int);
    }
    return CNP_OK;
}

/* ---- GeoJSON ------------------------------------------------------------ */

enum { F_LABEL, F_FIRST, F_LAST, F_CONF, F_DATECONF, F_OBS, F_AREA, F_SCENES, F_CHANGE };

static const char *confidence_name(const region *r)
{
    return r->confirmed ? "confirmed" : r->conf == CNP_ALERT_HIGH ? "high" : "unconfirmed";
}

static const char *event_name(int ev)
{
    return ev == AL_EV_NEW ? "new" : ev == AL_EV_CONFIRMED ? "confirmed"
           : ev == AL_EV_DISMISSED ? "dismissed" : "";
}

typedef struct gj {
    GDALDatasetH out, id_ds, mask_ds, vec_ds;
    OGRLayerH layer;
    OGRSpatialReferenceH srs;
    int changes;
    int n_features;
} gj;

static cnp_status gj_open(cnp_ctx *ctx, const al_state *s, const char *path, int changes, gj *j)
{
    static const char *const fields[] = { "label", "first_detected", "last_observed",
                                          "confidence", "date_conf", "observations", "area_m2",
                                          "scenes", "change" };
    static const OGRFieldType types[] = { OFTString, OFTString, OFTString, OFTString, OFTInteger,
                                          OFTInteger, OFTReal, OFTStringList, OFTString };
    char *lco[] = { "RFC7946=YES", "COORDINATE_PRECISION=7", NULL };
    GDALDriverH drv = GDALGetDriverByName("GeoJSON"), mem = GDALGetDriverByName("MEM");
    GDALDriverH vmem = GDALGetDriverByName("Memory");
    int i;

    memset(j, 0, sizeof *j);
    j->changes = changes;
    j->srs = OSRNewSpatialReference(s->grid.wkt);
    if (!drv || !mem || !vmem || !j->srs)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "GDAL lacks the GeoJSON, MEM or Memory driver, or "
                         "the alert grid's CRS is not understood");
    OSRSetAxisMappingStrategy(j->srs, OAMS_TRADITIONAL_GIS_ORDER);
    CPLErrorReset();
    j->out = GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, NULL);
    j->layer = j->out ? GDALDatasetCreateLayer(j->out, changes ? "alert_changes" : "alerts",
                                               j->srs, wkbPolygon, lco) : NULL;
    if (!j->layer)
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s (%s); check the folder", path,
                         cnp_gdal_msg());
    for (i = 0; i < (changes ? F_CHANGE + 1 : F_CHANGE); i++) {
        OGRFieldDefnH fd = OGR_Fld_Create(fields[i], types[i]);
        OGRErr e = OGR_L_CreateField(j->layer, fd, TRUE);
        OGR_Fld_Destroy(fd);
        if (e != OGRERR_NONE)
            return cnp_error(ctx, CNP_ERR_IO, "%s: cannot add field %s (%s)", path, fields[i],
                             cnp_gdal_msg());
    }
    j->id_ds = GDALCreate(mem, "", s->grid.cols, s->grid.rows, 1, GDT_Int32, NULL);
    j->mask_ds = GDALCreate(mem, "", s->grid.cols, s->grid.rows, 1, GDT_Byte, NULL);
    j->vec_ds = GDALCreate(vmem, "", 0, 0, 0, GDT_Unknown, NULL);
    if (!j->id_ds || !j->mask_ds || !j->vec_ds)
        return cnp_error(ctx, CNP_ERR_NOMEM, "cannot make in-memory rasters (%s)", cnp_gdal_msg());
    GDALSetGeoTransform(j->id_ds, (double *)s->grid.gt);
    GDALSetProjection(j->id_ds, s->grid.wkt);
    return CNP_OK;
}

/* Closes the file; returns CNP_OK only if everything was written. */
static cnp_status gj_close(cnp_ctx *ctx, gj *j, const char *path, cnp_status st)
{
    if (j->out) {
        CPLErrorReset();
        GDALClose(j->out);
        if (CPLGetLastErrorType() >= CE_Failure && st == CNP_OK)
            st = cnp_error(ctx, CNP_ERR_IO, "%s: writing failed (%s); check free space", path,
                           cnp_gdal_msg());
    }
    if (j->id_ds)
        GDALClose(j->id_ds);
    if (j->mask_ds)
        GDALClose(j->mask_ds);
    if (j->vec_ds)
        GDALClose(j->vec_ds);
    if (j->srs)
        OSRDestroySpatialReference(j->srs);
    memset(j, 0, sizeof *j);
    return st;
}

static void set_props(OGRFeatureH f, const al_state *s, const char *label, const region *r,
                      int changes)
{
    char d1[11], d2[11];
    char **ids = NULL;
    int i;

    cnp_date_format(r->first_day, d1);
    cnp_date_format(r->last_day, d2);
    OGR_F_SetFieldString(f, F_LABEL, label);
    OGR_F_SetFieldString(f, F_FIRST, d1);
    OGR_F_SetFieldString(f, F_LAST, d2);
    if (changes && r->event == AL_EV_DISMISSED)
        OGR_F_SetFieldString(f, F_CONF, "dismissed");
    else
        OGR_F_SetFieldString(f, F_CONF, confidence_name(r));
    if (!(changes && r->event == AL_EV_DISMISSED))
        OGR_F_SetFieldInteger(f, F_DATECONF, (r->confirmed ? CNP_ALERT_HIGH : r->conf) * 10000 +
                              (r->first_day - CNP_ALERTS_EPOCH_DAY));
    OGR_F_SetFieldInteger(f, F_OBS, r->nobs);
    OGR_F_SetFieldDouble(f, F_AREA, round(r->area * 100.0) / 100.0);
    for (i = 0; i < r->n_scenes; i++)
        ids = CSLAddString(ids, s->scenes[r->scenes[i]].id);
    OGR_F_SetFieldStringList(f, F_SCENES, ids ? ids : (char *[]){ NULL });
    CSLDestroy(ids);
    if (changes)
        OGR_F_SetFieldString(f, F_CHANGE, event_name(r->event));
}

/* Polygonizes the regions of one label into the output layer. */
static cnp_status gj_add(cnp_ctx *ctx, gj *j, const al_state *s, int l, const regions *g,
                         const char *path)
{
    GDALRasterBandH idb = GDALGetRasterBand(j->id_ds, 1), mb = GDALGetRasterBand(j->mask_ds, 1);
    int cols = s->grid.cols, rows = s->grid.rows;
    size_t cells = (size_t)cols * (size_t)rows, c;
    uint8_t *mask = NULL;
    OGRLayerH vl = NULL;
    OGRFeatureH f;
    OGRFieldDefnH fd;
    cnp_status st = CNP_OK;

    if (g->n == 0)
        return CNP_OK;
    mask = malloc(cells);
    if (!mask)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", path);
    for (c = 0; c < cells; c++)
        mask[c] = g->id[c] != 0;
    CPLErrorReset();
    if (GDALRasterIO(idb, GF_Write, 0, 0, cols, rows, g->id, cols, rows, GDT_Int32, 0, 0)
        != CE_None ||
        GDALRasterIO(mb, GF_Write, 0, 0, cols, rows, mask, cols, rows, GDT_Byte, 0, 0)
        != CE_None) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: in-memory raster write failed (%s)", path,
                       cnp_gdal_msg());
        goto cleanup;
    }
    vl = GDALDatasetCreateLayer(j->vec_ds, s->labels[l], NULL, wkbPolygon, NULL);
    fd = OGR_Fld_Create("id", OFTInteger);
    if (!vl || OGR_L_CreateField(vl, fd, TRUE) != OGRERR_NONE ||
        GDALPolygonize(idb, mb, vl, 0, NULL, NULL, NULL) != CE_None) {
        OGR_Fld_Destroy(fd);
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: tracing the %s alert regions failed (%s)",
                       path, s->labels[l], cnp_gdal_msg());
        goto cleanup;
    }
    OGR_Fld_Destroy(fd);
    OGR_L_ResetReading(vl);
    while ((f = OGR_L_GetNextFeature(vl)) != NULL && st == CNP_OK) {
        int id = OGR_F_GetFieldAsInteger(f, 0);
        OGRFeatureH o;
        if (id < 1 || id > g->n) {
            OGR_F_Destroy(f);
            continue;
        }
        o = OGR_F_Create(OGR_L_GetLayerDefn(j->layer));
        set_props(o, s, s->labels[l], &g->r[id], j->changes);
        OGR_F_SetGeometryDirectly(o, OGR_F_StealGeometry(f));
        if (OGR_L_CreateFeature(j->layer, o) != OGRERR_NONE)
            st = cnp_error(ctx, CNP_ERR_IO, "%s: writing a feature failed (%s)", path,
                           cnp_gdal_msg());
        else
            j->n_features++;
        OGR_F_Destroy(o);
        OGR_F_Destroy(f);
    }
cleanup:
    free(mask);
    return st;
}

/* Writes the GeoJSON of the state (changes = 0) or of the target scene's
 * events (changes = 1) to path, and/or counts the regions per event. */
static cnp_status write_geojson(cnp_ctx *ctx, const al_state *s, const al_timeline *tl,
                                const double *areas, const char *path, int changes,
                                cnp_alerts_result *r)
{
    cnp_status st = CNP_OK;
    regions g;
    gj j;
    int l, i;

    memset(&g, 0, sizeof g);
    memset(&j, 0, sizeof j);
    g.id = cnp_calloc(ctx, tl->cells, sizeof *g.id, "alert regions");
    g.queue = cnp_calloc(ctx, tl->cells, sizeof *g.queue, "alert regions");
    if (!g.id || !g.queue) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    if (path && (st = gj_open(ctx, s, path, changes, &j)) != CNP_OK)
        goto cleanup;
    for (l = 0; l < s->n_labels; l++) {
        if ((st = find_regions(ctx, s, tl, l, changes, areas, &g)) != CNP_OK)
            goto cleanup;
        for (i = 1; r && i <= g.n; i++) {
            if (g.r[i].event == AL_EV_NEW) {
                r->n_new++;
                r->area_new_m2 += g.r[i].area;
                if (CSLFindString(r->labels_new, s->labels[l]) < 0)
                    r->labels_new = CSLAddString(r->labels_new, s->labels[l]);
            } else if (g.r[i].event == AL_EV_CONFIRMED) {
                r->n_confirmed++;
            } else if (g.r[i].event == AL_EV_DISMISSED) {
                r->n_dismissed++;
            }
        }
        if (path && (st = gj_add(ctx, &j, s, l, &g, path)) != CNP_OK)
            goto cleanup;
        for (i = 1; g.r && i <= g.n; i++)
            free(g.r[i].scenes);
        free(g.r);
        g.r = NULL;
        g.n = 0;
    }
cleanup:
    if (path)
        st = gj_close(ctx, &j, path, st);
    regions_free(&g);
    return st;
}

/* The changes GeoJSON goes beside the scene's outputs, in a folder others
 * may write to: it goes through the atomic writer (base.h), so that a link
 * planted at its name is replaced, never followed, and no partial file is
 * ever left under that name. */
cnp_status al_write_changes(cnp_ctx *ctx, const al_state *s, const al_timeline *tl,
                            const double *areas, const char *path, cnp_alerts_result *r)
{
    cnp_status st;
    char *tmp;

    if (!path)
        return write_geojson(ctx, s, tl, areas, NULL, 1, r);
    tmp = cnp_atomic_begin(ctx, path);
    if (!tmp)
        return ctx && ctx->status ? ctx->status : CNP_ERR_IO;
    st = write_geojson(ctx, s, tl, areas, tmp, 1, r);
    if (st == CNP_OK)
        st = cnp_atomic_commit(ctx, tmp, path);
    else
        cnp_atomic_discard(tmp);
    free(tmp);
    return st;
}

/* ---- alerts.tif and its style ------------------------------------------- */

static cnp_status write_qml(cnp_ctx *ctx, const char *path, int band, int dmin, int dmax)
{
    /* Colour by date: light (older) to dark (recent) in GFW's pinks for
     * unconfirmed (2xxxx), yellow to red for high/confirmed (3xxxx). */
    FILE *f = fopen(path, "wx");
    int ok;
    if (!f)
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s; check the folder", path);
    if (dmax <= dmin)
        dmax = dmin + 1;
    fprintf(f, "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            "<qgis version=\"3.22\" styleCategories=\"AllStyleCategories\">\n"
            "  <pipe>\n"
            "    <rasterrenderer type=\"singlebandpseudocolor\" band=\"%d\" opacity=\"1\" "
            "alphaBand=\"-1\" classificationMin=\"%d\" classificationMax=\"%d\" "
            "nodataColor=\"\">\n"
            "      <rastershader>\n"
            "        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" "
            "clip=\"0\">\n", band, 20000 + dmin, 30000 + dmax);
    fprintf(f, "          <item alpha=\"255\" value=\"%d\" label=\"unconfirmed, oldest\" "
            "color=\"#f6d2e1\"/>\n", 20000 + dmin);
    fprintf(f, "          <item alpha=\"255\" value=\"%d\" label=\"unconfirmed, newest\" "
            "color=\"#dc6699\"/>\n", 20000 + dmax);
    fprintf(f, "          <item alpha=\"255\" value=\"%d\" label=\"high/confirmed, oldest\" "
            "color=\"#ffbad4\"/>\n", 30000 + dmin);
    fprintf(f, "          <item alpha=\"255\" value=\"%d\" label=\"high/confirmed, newest\" "
            "color=\"#c92a6d\"/>\n", 30000 + dmax);
    fprintf(f, "        </colorrampshader>\n"
            "      </rastershader>\n"
            "    </rasterrenderer>\n"
            "  </pipe>\n"
            "  <blendMode>0</blendMode>\n"
            "</qgis>\n");
    ok = !ferror(f);
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok)
        return cnp_error(ctx, CNP_ERR_IO, "%s: writing failed; check free space", path);
    return CNP_OK;
}

static cnp_status write_tif(cnp_ctx *ctx, const al_state *s, const al_timeline *tl,
                            const char *path, int *best_band, int *dmin, int *dmax)
{
    static const char *const co[] = { "COMPRESS=DEFLATE", "INTERLEAVE=BAND", NULL };
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    GDALDatasetH ds;
    uint16_t *v = malloc(tl->cells * sizeof *v);
    char gen[32];
    long best = -1;
    int l, ok = 1;
    size_t c;

    *dmin = 1 << 30;
    *dmax = -1;
    *best_band = 1;
    ds = drv && v ? GDALCreate(drv, path, s->grid.cols, s->grid.rows, s->n_labels, GDT_UInt16,
                               (char **)co) : NULL;
    if (!ds) {
        free(v);
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s (%s)", path, cnp_gdal_msg());
    }
    ok &= GDALSetGeoTransform(ds, (double *)s->grid.gt) == CE_None;
    ok &= GDALSetProjection(ds, s->grid.wkt) == CE_None;
    snprintf(gen, sizeof gen, "%ld", s->generation);
    ok &= GDALSetMetadataItem(ds, "CANOPY_ALERTS_GENERATION", gen, NULL) == CE_None;
    ok &= GDALSetMetadataItem(ds, "CANOPY_ALERTS_ENCODING", "0 = no alert; else C * 10000 + days "
                              "since 2014-12-31 of the first detection; C = 2 unconfirmed, "
                              "3 high or confirmed (GFW integrated alerts date_conf)", NULL)
          == CE_None;
    for (l = 0; l < s->n_labels; l++) {
        GDALRasterBandH h = GDALGetRasterBand(ds, l + 1);
        long n = 0;
        for (c = 0; c < tl->cells; c++) {
            const al_cell *x = &tl->cell[(size_t)l * tl->cells + c];
            int d = x->first_day - CNP_ALERTS_EPOCH_DAY;
            if (!x->active || d < 1 || d > 9999) {
                v[c] = 0;
                continue;
            }
            v[c] = (uint16_t)(x->conf * 10000 + d);
            n++;
            if (d < *dmin)
                *dmin = d;
            if (d > *dmax)
                *dmax = d;
        }
        if (n > best) {
            best = n;
            *best_band = l + 1;
        }
        GDALSetDescription(h, s->labels[l]);
        ok &= GDALSetRasterNoDataValue(h, 0) == CE_None;
        ok &= GDALRasterIO(h, GF_Write, 0, 0, s->grid.cols, s->grid.rows, v, s->grid.cols,
                           s->grid.rows, GDT_UInt16, 0, 0) == CE_None;
    }
    free(v);
    if (*dmax < 0)
        *dmin = *dmax = 0;
    if (ok)
        CPLErrorReset();
    GDALClose(ds);
    ok &= CPLGetLastErrorType() < CE_Failure;
    if (!ok)
        return cnp_error(ctx, CNP_ERR_IO, "%s: writing failed (%s); check free space", path,
                         cnp_gdal_msg());
    return CNP_OK;
}

cnp_status al_write_state_outputs(cnp_ctx *ctx, const al_state *s, const al_timeline *tl,
                                  const double *areas, const char *tmpdir)
{
    char *tif = al_join(ctx, tmpdir, "alerts.tif"), *qml = al_join(ctx, tmpdir, "alerts.qml");
    char *geo = al_join(ctx, tmpdir, "alerts.geojson");
    cnp_status st = CNP_ERR_NOMEM;
    int band, dmin, dmax;

    if (tif && qml && geo &&
        (st = write_tif(ctx, s, tl, tif, &band, &dmin, &dmax)) == CNP_OK &&
        (st = write_qml(ctx, qml, band, dmin, dmax)) == CNP_OK)
        st = write_geojson(ctx, s, tl, areas, geo, 0, NULL);
    free(tif);
    free(qml);
    free(geo);
    return st;
}
