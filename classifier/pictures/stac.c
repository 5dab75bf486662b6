/* stac.c -- STAC 1.0.0 Items (one per scene, NAME.stac.json) with the
 * projection extension, and the footprint they share with the Collection
 * (report.c): the scene's outline in EPSG:4326 through OSR/PROJ. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/html.h"
#include "pictures/internal.h"
#include "base/gdal.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROJ_EXT "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
#define COLLECTION "./collection.json" /* beside every Item */

/* ----------------------------------------------------------- footprint */

void cnp_footprint_free(cnp_footprint *f)
{
    free(f->ring);
    if (f->srs)
        OSRDestroySpatialReference(f->srs);
    memset(f, 0, sizeof *f);
}

/* The outline in pixel space, counter-clockwise on the map (north-up):
 * top-left, down the left edge, along the bottom, up the right, along the
 * top back to the start. */
static void outline(const cnp_footprint *f, int per_side, double *x, double *y)
{
    int s, i, k = 0;
    for (s = 0; s < 4; s++) {
        for (i = 0; i < per_side; i++) {
            double t = (double)i / per_side, px, py;
            px = s == 0 ? 0 : s == 1 ? t * f->width : s == 2 ? f->width : (1 - t) * f->width;
            py = s == 0 ? t * f->height : s == 1 ? f->height : s == 2 ? (1 - t) * f->height : 0;
            x[k] = f->gt[0] + px * f->gt[1] + py * f->gt[2];
            y[k] = f->gt[3] + px * f->gt[4] + py * f->gt[5];
            k++;
        }
    }
    x[k] = x[0];
    y[k] = y[0];
}

/* The outline when part of it has no lon/lat (a geostationary full disk, a
 * polar scene whose corners are off the globe): the bounding box, as a
 * closed ring, of the points of a grid over the scene that transform. x and
 * y hold at least 5 points; *n becomes 5. An error when no point does. */
static cnp_status partial_outline(cnp_ctx *ctx, const char *scene,
                                  OGRCoordinateTransformationH ct, const cnp_footprint *f,
                                  int *n, double *x, double *y)
{
    enum { G = 65 };
    double gx[G], gy[G], b[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    int ok[G], i, j, any = 0;

    for (j = 0; j < G; j++) {
        for (i = 0; i < G; i++) {
            double px = f->width * (double)i / (G - 1), py = f->height * (double)j / (G - 1);
            gx[i] = f->gt[0] + px * f->gt[1] + py * f->gt[2];
            gy[i] = f->gt[3] + px * f->gt[4] + py * f->gt[5];
        }
        OCTTransformEx(ct, G, gx, gy, NULL, ok);
        for (i = 0; i < G; i++) {
            if (!ok[i] || !isfinite(gx[i]) || !isfinite(gy[i]))
                continue;
            b[0] = fmin(b[0], gx[i]);
            b[1] = fmin(b[1], gy[i]);
            b[2] = fmax(b[2], gx[i]);
            b[3] = fmax(b[3], gy[i]);
            any = 1;
        }
    }
    if (!any)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: no part of the scene can be transformed "
                         "to lon/lat", scene);
    x[0] = x[3] = x[4] = b[0];
    x[1] = x[2] = b[2];
    y[0] = y[1] = y[4] = b[1];
    y[2] = y[3] = b[3];
    *n = 5;
    return CNP_OK;
}

cnp_status cnp_footprint_get(cnp_ctx *ctx, const char *scene, int per_side, cnp_footprint *f)
{
    GDALDatasetH ds = GDALOpenEx(scene, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    OGRSpatialReferenceH wgs = NULL;
    OGRCoordinateTransformationH ct = NULL;
    double *x = NULL, *y = NULL;
    const char *wkt;
    cnp_status st = CNP_OK;
    int n = 4 * per_side + 1, i;

    memset(f, 0, sizeof *f);
    if (!ds)
        return cnp_error(ctx, CNP_ERR_IO, "cannot open the scene %s: %s", scene,
                         cnp_gdal_msg());
    f->width = GDALGetRasterXSize(ds);
    f->height = GDALGetRasterYSize(ds);
    wkt = GDALGetProjectionRef(ds);
    if (GDALGetGeoTransform(ds, f->gt) != CE_None || !wkt || !*wkt) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: the scene has no georeferencing (geotransform "
                       "and CRS); a STAC Item needs both", scene);
        goto cleanup;
    }
    f->srs = OSRNewSpatialReference(wkt);
    wgs = OSRNewSpatialReference(NULL);
    x = malloc(sizeof *x * (size_t)n);
    y = malloc(sizeof *y * (size_t)n);
    f->ring = malloc(sizeof *f->ring * 2 * (size_t)n);
    if (!f->srs || !wgs || !x || !y || !f->ring || OSRImportFromEPSG(wgs, 4326) != OGRERR_NONE) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory (or no EPSG:4326 in PROJ)", scene);
        goto cleanup;
    }
    OSRSetAxisMappingStrategy(f->srs, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
    ct = OCTNewCoordinateTransformation(f->srs, wgs);
    outline(f, per_side, x, y);
    if (!ct) {
        st = cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the scene's CRS cannot be transformed "
                       "to lon/lat: %s", scene, cnp_gdal_msg());
        goto cleanup;
    }
    if (!OCTTransform(ct, n, x, y, NULL) && (st = partial_outline(ctx, scene, ct, f, &n, x, y)))
        goto cleanup;
    f->bbox[0] = f->bbox[1] = INFINITY;
    f->bbox[2] = f->bbox[3] = -INFINITY;
    for (i = 0; i < n; i++) {
        f->ring[2 * i] = x[i];
        f->ring[2 * i + 1] = y[i];
        f->bbox[0] = fmin(f->bbox[0], x[i]);
        f->bbox[1] = fmin(f->bbox[1], y[i]);
        f->bbox[2] = fmax(f->bbox[2], x[i]);
        f->bbox[3] = fmax(f->bbox[3], y[i]);
    }
    f->n_ring = n;
cleanup:
    if (st != CNP_OK)
        cnp_footprint_free(f);
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    if (wgs)
        OSRDestroySpatialReference(wgs);
    free(x);
    free(y);
    GDALClose(ds);
    return st;
}

/* --------------------------------------------------------------- JSON */

static json_object *num(double v, int digits)
{
    char buf[40];
    if (!isfinite(v))
        return NULL;
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

json_object *cnp_json_deg(double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.7f", v);
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

void cnp_json_add(json_object *o, const char *key, json_object *v, int *ok)
{
    if (!o || !v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        *ok = 0;
    }
}

void cnp_json_push(json_object *a, json_object *v, int *ok)
{
    if (!a || !v || json_object_array_add(a, v) != 0) {
        json_object_put(v);
        *ok = 0;
    }
}

static json_object *str(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static json_object *bbox_json(const double b[4], int *ok)
{
    json_object *a = json_object_new_array();
    int i;
    for (i = 0; i < 4; i++)
        cnp_json_push(a, cnp_json_deg(b[i]), ok);
    return a;
}

static json_object *polygon_json(const cnp_footprint *f, int *ok)
{
    json_object *g = json_object_new_object(), *rings = json_object_new_array();
    json_object *ring = json_object_new_array();
    int i;
    cnp_json_add(g, "type", str("Polygon"), ok);
    for (i = 0; i < f->n_ring; i++) {
        json_object *pt = json_object_new_array();
        cnp_json_push(pt, cnp_json_deg(f->ring[2 * i]), ok);
        cnp_json_push(pt, cnp_json_deg(f->ring[2 * i + 1]), ok);
        cnp_json_push(ring, pt, ok);
    }
    cnp_json_push(rings, ring, ok);
    cnp_json_add(g, "coordinates", rings, ok);
    return g;
}

/* proj:epsg (or null + proj:wkt2), proj:shape, proj:transform, proj:bbox
 * of a raster grid; epsg/wkt only when with_crs. */
static void proj_fields(json_object *o, OGRSpatialReferenceH srs, int w, int h,
                        const double gt[6], int with_crs, int *ok)
{
    json_object *shape = json_object_new_array(), *tr = json_object_new_array();
    json_object *pb = json_object_new_array();
    double x1 = gt[0] + gt[1] * w, y1 = gt[3] + gt[5] * h;
    const double t[6] = {gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]};
    int i;

    if (with_crs && srs) {
        OGRSpatialReferenceH c = OSRClone(srs);
        const char *auth = NULL, *code = NULL;
        if (c && OSRAutoIdentifyEPSG(c) == OGRERR_NONE) {
            auth = OSRGetAuthorityName(c, NULL);
            code = OSRGetAuthorityCode(c, NULL);
        }
        if (auth && code && !strcmp(auth, "EPSG")) {
            cnp_json_add(o, "proj:epsg", json_object_new_int(atoi(code)), ok);
        } else {
            char *wkt = NULL;
            const char *opts[] = {"FORMAT=WKT2_2019", NULL};
            json_object_object_add(o, "proj:epsg", NULL);
            if (OSRExportToWktEx(srs, &wkt, opts) == OGRERR_NONE && wkt)
                cnp_json_add(o, "proj:wkt2", str(wkt), ok);
            CPLFree(wkt);
        }
        if (c)
            OSRDestroySpatialReference(c);
    }
    cnp_json_push(shape, json_object_new_int(h), ok);
    cnp_json_push(shape, json_object_new_int(w), ok);
    cnp_json_add(o, "proj:shape", shape, ok);
    for (i = 0; i < 6; i++)
        cnp_json_push(tr, num(t[i], 17), ok);
    cnp_json_add(o, "proj:transform", tr, ok);
    cnp_json_push(pb, num(fmin(gt[0], x1), 17), ok);
    cnp_json_push(pb, num(fmin(gt[3], y1), 17), ok);
    cnp_json_push(pb, num(fmax(gt[0], x1), 17), ok);
    cnp_json_push(pb, num(fmax(gt[3], y1), 17), ok);
    cnp_json_add(o, "proj:bbox", pb, ok);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* One asset {href "./FILE", type, roles, title}; raster grids get proj:*. */
static void asset(json_object *assets, const char *key, const char *path, const char *type,
                  const char *role, const char *title, int *ok)
{
    json_object *a, *roles;
    cnp_buf href = {0};
    if (!path)
        return;
    a = json_object_new_object();
    roles = json_object_new_array();
    cnp_html_href(&href, "", base_name(path));
    cnp_json_add(a, "href", href.failed ? NULL : str(href.data), ok);
    cnp_buf_free(&href);
    cnp_json_add(a, "type", str(type), ok);
    cnp_json_add(a, "title", str(title), ok);
    cnp_json_push(roles, str(role), ok);
    cnp_json_add(a, "roles", roles, ok);
    if (!strncmp(type, "image/tiff", 10)) {
        GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
        double gt[6];
        if (ds && GDALGetGeoTransform(ds, gt) == CE_None)
            proj_fields(a, NULL, GDALGetRasterXSize(ds), GDALGetRasterYSize(ds), gt, 0, ok);
        if (ds)
            GDALClose(ds);
    }
    cnp_json_add(assets, key, a, ok);
}

json_object *cnp_stac_link(const char *rel, const char *href, const char *type,
                           const char *title, int *ok)
{
    json_object *l = json_object_new_object();
    cnp_json_add(l, "rel", str(rel), ok);
    cnp_json_add(l, "href", str(href), ok);
    cnp_json_add(l, "type", str(type), ok);
    if (title)
        cnp_json_add(l, "title", str(title), ok);
    return l;
}

char *cnp_stac_absolute_href(const char *path)
{
    char *dir = strdup(path), *slash, *real, *out = NULL;
    cnp_buf b = {0};
    if (!dir)
        return NULL;
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    real = realpath(slash ? (*dir ? dir : "/") : ".", NULL);
    if (real) {
        cnp_url_encode(&b, real);
        cnp_buf_puts(&b, strcmp(real, "/") ? "/" : "");
        cnp_url_encode(&b, base_name(path));
        out = b.failed ? NULL : b.data;
        if (!out)
            cnp_buf_free(&b);
    }
    free(real);
    free(dir);
    return out;
}

static void item_properties(json_object *props, const cnp_stac_item_params *p,
                            const cnp_footprint *f, int *ok)
{
    char buf[64];
    int i;
    json_object *pos = json_object_new_object();

    if (p->date) {
        json_object_object_add(props, "datetime", NULL);
        snprintf(buf, sizeof buf, "%.10sT00:00:00Z", p->date);
        cnp_json_add(props, "start_datetime", str(buf), ok);
        snprintf(buf, sizeof buf, "%.10sT23:59:59Z", p->date);
        cnp_json_add(props, "end_datetime", str(buf), ok);
        cnp_json_add(props, "canopy:datetime_source", str("acquisition"), ok);
    } else {
        cnp_json_add(props, "datetime", str(p->run_utc), ok);
        cnp_json_add(props, "canopy:datetime_source", str("run"), ok);
    }
    if (p->run_utc)
        cnp_json_add(props, "created", str(p->run_utc), ok);
    cnp_json_add(props, "title", str(p->name), ok);
    proj_fields(props, f->srs, f->width, f->height, f->gt, 1, ok);
    if (p->model)
        cnp_json_add(props, "canopy:model", str(p->model), ok);
    for (i = 0; i < p->n_labels && p->labels; i++)
        cnp_json_add(pos, p->labels[i], json_object_new_int64(p->counts ? p->counts[i] : 0), ok);
    cnp_json_add(props, "canopy:positive_chips", pos, ok);
}

cnp_status cnp_stac_item_write(cnp_ctx *ctx, const char *path, const cnp_stac_item_params *p)
{
    cnp_footprint f;
    json_object *item = NULL, *props, *links, *assets, *ext;
    char *self = NULL;
    cnp_status st;
    int ok = 1;

    if (!p->scene || !p->name || (!p->date && !p->run_utc))
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: a STAC Item needs the scene, its name and a "
                         "date or run time", path);
    if ((st = cnp_footprint_get(ctx, p->scene, 16, &f)) != CNP_OK)
        return st;
    item = json_object_new_object();
    props = json_object_new_object();
    links = json_object_new_array();
    assets = json_object_new_object();
    ext = json_object_new_array();
    self = cnp_stac_absolute_href(path);
    cnp_json_add(item, "type", str("Feature"), &ok);
    cnp_json_add(item, "stac_version", str("1.0.0"), &ok);
    cnp_json_push(ext, str(PROJ_EXT), &ok);
    cnp_json_add(item, "stac_extensions", ext, &ok);
    cnp_json_add(item, "id", str(p->name), &ok);
    if (p->collection)
        cnp_json_add(item, "collection", str(p->collection), &ok);
    cnp_json_add(item, "geometry", polygon_json(&f, &ok), &ok);
    cnp_json_add(item, "bbox", bbox_json(f.bbox, &ok), &ok);
    item_properties(props, p, &f, &ok);
    cnp_json_add(item, "properties", props, &ok);
    cnp_json_push(links, cnp_stac_link("self", self ? self : path, "application/geo+json", NULL,
                                       &ok), &ok);
    cnp_json_push(links, cnp_stac_link("root", COLLECTION, "application/json", NULL, &ok), &ok);
    cnp_json_push(links, cnp_stac_link("parent", COLLECTION, "application/json", NULL, &ok), &ok);
    if (p->collection)
        cnp_json_push(links, cnp_stac_link("collection", COLLECTION, "application/json", NULL, &ok),
                      &ok);
    cnp_json_add(item, "links", links, &ok);
    asset(assets, "probs", p->probs, "image/tiff; application=geotiff", "data",
          "Probabilities per label (chip grid)", &ok);
    asset(assets, "masks", p->masks, "image/tiff; application=geotiff", "data",
          "Masks per label (chip grid)", &ok);
    asset(assets, "markers", p->markers, "application/geo+json", "data",
          "Deforestation markers", &ok);
    asset(assets, "alerts", p->alerts, "application/geo+json", "data", "New or changed alerts",
          &ok);
    asset(assets, "quicklook", p->quicklook, "image/png", "overview", "Quick-look", &ok);
    asset(assets, "manifest", p->manifest, "application/json", "metadata", "Run manifest", &ok);
    cnp_json_add(item, "assets", assets, &ok);
    if (!ok)
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", path);
    else
        st = cnp_json_write_file(ctx, path, item);
    json_object_put(item);
    free(self);
    cnp_footprint_free(&f);
    return st;
}

char *cnp_stac_collection_id(cnp_ctx *ctx, const char *outdir)
{
    char *real = realpath(outdir, NULL), *out;
    const char *b = real ? base_name(real) : base_name(outdir);
    size_t i, n;

    if (!*b)
        b = "outputs";
    n = strlen(b) + 8;
    out = malloc(n);
    if (!out) {
        free(real);
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(out, n, "canopy-%s", b);
    for (i = 7; out[i]; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            out[i] = '_';
    }
    free(real);
    return out;
}
