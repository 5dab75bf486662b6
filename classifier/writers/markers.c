/* markers.c -- NAME.markers.geojson: every 8-connected region of positive
 * chips of a marker label as one RFC 7946 feature in EPSG:4326.
 *
 * Regions are labelled here, so that each one's chips, maximum and mean
 * probability are known exactly. Outlines come from GDALPolygonize on an
 * in-memory raster of 4-connected component ids masked by the positive
 * chips; the components of one 8-connected region become one feature
 * (a MultiPolygon when diagonal neighbours join them). This gives valid
 * OGC geometry directly: GDAL 3.6's 8CONNECTED=8 mode traces diagonal
 * joins as self-touching rings, whose GEOS MakeValid repair took over 20 s
 * on a noisy 300 x 200 grid. Polygons are densified in the scene CRS and
 * handed to OGR's GeoJSON driver with the scene CRS as layer CRS and
 * RFC7946=YES: the driver reprojects to EPSG:4326 (lon, lat) through PROJ,
 * splits at the antimeridian, closes polygons over a pole and orders rings
 * counter-clockwise.
 *
 * area_m2 is the geodesic area on the WGS 84 ellipsoid: the densified
 * polygon is reprojected to EPSG:4326 and measured with PROJ's geodesic
 * polygon area (geod_polygonarea, Karney's algorithm), holes subtracted.
 * (OGR_G_GeodesicArea only arrived in GDAL 3.9.) In a geographic scene CRS
 * the outline's edges are meridians and parallels, and a parallel is not a
 * geodesic (a region spanning the globe's width would be measured along
 * great circles over the pole): there the area is exact on the CRS's
 * ellipsoid, summing over edges (dlon x the area from the equator to the
 * edge's latitude per radian of longitude), which also holds for a region
 * covering the whole world.
 */
#define _POSIX_C_SOURCE 200809L
#include "writers/writers.h"
#include "base/gdal.h"
#include "scene/scene.h" /* cnp_gdal_init */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <geodesic.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

/* Outline edges are straight in the scene CRS, but RFC 7946 readers draw
 * straight lines in longitude and latitude. Before reprojection each edge
 * is halved until the lon/lat chord of every piece passes within
 * DENSIFY_TOL_M of the true edge at its midpoint (at most 2^DENSIFY_DEPTH
 * pieces): long edges near a pole get many vertices, UTM chips none. */
#define DENSIFY_TOL_M 0.01
#define DENSIFY_DEPTH 12
#define METRES_PER_DEGREE 111320.0
#define RAD_PER_DEGREE (3.14159265358979323846 / 180.0)

enum { F_LABEL, F_MAX, F_MEAN, F_CHIPS, F_AREA, F_SCENE, F_MODEL, F_RUN, F_COUNT };

typedef struct region {
    float max;
    double sum;
    int chips;
    OGRGeometryH geom; /* in the scene CRS */
} region;

/* Everything one call holds; freed by markers_free. */
typedef struct markers_job {
    const char *path;
    const cnp_grid *grid;
    const cnp_result *res;
    const cnp_markers_info *info;
    size_t cells;
    unsigned char *pos;  /* (rows, cols) 1 = positive chip of the current label */
    int32_t *ids;        /* (rows, cols) 8-connected region id, 0 = none */
    int32_t *comps;      /* (rows, cols) 4-connected component id, 0 = none */
    int32_t *comp_region; /* (n_comps + 1) region of each component */
    size_t *queue;       /* (rows * cols) flood-fill queue */
    region *regions;     /* (n_regions + 1), index 0 unused */
    int n_regions, n_comps;
    OGRSpatialReferenceH scene_srs, wgs84;
    OGRCoordinateTransformationH to_wgs84;
    GDALDatasetH id_ds, mask_ds, vec_ds, out;
    OGRLayerH out_layer;
    struct geod_geodesic geod;
    int geographic;      /* the scene CRS is lon/lat: area from parallels/meridians */
    double rad_per_unit; /* its angular unit in radians */
    double a, e2;        /* its ellipsoid: semi-major axis (m), eccentricity squared */
    unsigned char *off;  /* (rows, cols) 1 = a corner has no lon/lat; NULL when none */
    long n_dropped;      /* positive chips left out: not transformable to EPSG:4326 */
    int n_features;
} markers_job;

/* ---- regions ------------------------------------------------------------ */

/* Connected components of the positive cells into ids (8- or 4-connected),
 * numbered 1.. in raster order of their first cell; returns their number. */
static int label_cells(markers_job *j, int32_t *ids, int eight)
{
    int cols = j->grid->cols, rows = j->grid->rows, k = 0;
    size_t s, head, tail;

    memset(ids, 0, j->cells * sizeof *ids);
    for (s = 0; s < j->cells; s++) {
        if (!j->pos[s] || ids[s])
            continue;
        k++;
        ids[s] = k;
        head = tail = 0;
        j->queue[tail++] = s;
        while (head < tail) {
            size_t c = j->queue[head++];
            int r = (int)(c / (size_t)cols), q = (int)(c % (size_t)cols), dr, dc;
            for (dr = -1; dr <= 1; dr++) {
                for (dc = -1; dc <= 1; dc++) {
                    int rr = r + dr, qq = q + dc;
                    size_t t;
                    if ((!eight && dr != 0 && dc != 0) ||
                        rr < 0 || rr >= rows || qq < 0 || qq >= cols)
                        continue;
                    t = (size_t)rr * (size_t)cols + (size_t)qq;
                    if (j->pos[t] && !ids[t]) {
                        ids[t] = k;
                        j->queue[tail++] = t;
                    }
                }
            }
        }
    }
    return k;
}

static void free_regions(markers_job *j)
{
    int i;
    for (i = 0; j->regions && i <= j->n_regions; i++)
        if (j->regions[i].geom)
            OGR_G_DestroyGeometry(j->regions[i].geom);
    free(j->regions);
    free(j->comp_region);
    j->regions = NULL;
    j->comp_region = NULL;
    j->n_regions = j->n_comps = 0;
}

/* Polygonizes the current components; each region's geom becomes the
 * Polygon of its one component or the MultiPolygon of several. */
static cnp_status trace_regions(cnp_ctx *ctx, markers_job *j, const char *label)
{
    cnp_status st = CNP_OK;
    GDALRasterBandH idb = GDALGetRasterBand(j->id_ds, 1);
    GDALRasterBandH mb = GDALGetRasterBand(j->mask_ds, 1);
    int cols = j->grid->cols, rows = j->grid->rows, i;
    OGRLayerH vl = NULL;
    OGRFieldDefnH fd;
    OGRFeatureH f;

    cnp_gdal_reset();
    if (GDALRasterIO(idb, GF_Write, 0, 0, cols, rows, j->comps, cols, rows, GDT_Int32, 0, 0)
        != CE_None ||
        GDALRasterIO(mb, GF_Write, 0, 0, cols, rows, j->pos, cols, rows, GDT_Byte, 0, 0)
        != CE_None) {
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: storing the %s regions in memory failed "
                         "(%s)", j->path, label, cnp_gdal_msg());
    }
    vl = GDALDatasetCreateLayer(j->vec_ds, "regions", NULL, wkbPolygon, NULL);
    if (!vl)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: cannot make an in-memory layer (%s)",
                         j->path, cnp_gdal_msg());
    fd = OGR_Fld_Create("id", OFTInteger);
    if (OGR_L_CreateField(vl, fd, TRUE) != OGRERR_NONE) {
        OGR_Fld_Destroy(fd);
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: cannot make an in-memory field (%s)",
                       j->path, cnp_gdal_msg());
        goto cleanup;
    }
    OGR_Fld_Destroy(fd);
    cnp_gdal_reset();
    if (GDALPolygonize(idb, mb, vl, 0, NULL, NULL, NULL) != CE_None) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: tracing the %s regions failed (%s)", j->path,
                       label, cnp_gdal_msg());
        goto cleanup;
    }
    OGR_L_ResetReading(vl);
    while ((f = OGR_L_GetNextFeature(vl)) != NULL) {
        int comp = OGR_F_GetFieldAsInteger(f, 0);
        OGRGeometryH g = OGR_F_StealGeometry(f), *slot;
        OGR_F_Destroy(f);
        if (!g)
            continue;
        if (comp < 1 || comp > j->n_comps ||
            wkbFlatten(OGR_G_GetGeometryType(g)) != wkbPolygon) {
            OGR_G_DestroyGeometry(g);
            continue;
        }
        slot = &j->regions[j->comp_region[comp]].geom;
        if (!*slot) {
            *slot = g;
            continue;
        }
        if (wkbFlatten(OGR_G_GetGeometryType(*slot)) == wkbPolygon) {
            OGRGeometryH m = OGR_G_CreateGeometry(wkbMultiPolygon);
            if (!m || OGR_G_AddGeometryDirectly(m, *slot) != OGRERR_NONE) {
                OGR_G_DestroyGeometry(g);
                if (m)
                    OGR_G_DestroyGeometry(m);
                st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory joining a %s region",
                               j->path, label);
                goto cleanup;
            }
            *slot = m;
        }
        if (OGR_G_AddGeometryDirectly(*slot, g) != OGRERR_NONE) {
            OGR_G_DestroyGeometry(g);
            st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory joining a %s region",
                           j->path, label);
            goto cleanup;
        }
    }
    for (i = 1; i <= j->n_regions; i++)
        if (!j->regions[i].geom) {
            st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: region %d of %s has no outline after "
                           "GDALPolygonize", j->path, i, label);
            goto cleanup;
        }
cleanup:
    GDALDatasetDeleteLayer(j->vec_ds, 0);
    return st;
}

/* ---- geometry ----------------------------------------------------------- */

/* Area (m^2) between the equator and latitude phi (radians) over one radian
 * of longitude on the ellipsoid (a, e2): the integral of the area element
 * a^2 (1 - e2) cos(phi) / (1 - e2 sin^2(phi))^2. */
static double lune_area(const markers_job *j, double phi)
{
    double s = sin(phi), e = sqrt(j->e2), b2 = j->a * j->a * (1.0 - j->e2);
    if (e < 1e-12)
        return j->a * j->a * s;
    return 0.5 * b2 * (s / (1.0 - j->e2 * s * s) + atanh(e * s) / e);
}

/* Area (m^2) of a ring in the scene's lon/lat units whose edges are
 * meridians or parallels (exact; a sloped edge is taken at its mean). */
static double ring_area_lonlat(const markers_job *j, OGRGeometryH ring)
{
    int n = OGR_G_GetPointCount(ring), i;
    double k = j->rad_per_unit, sum = 0.0;
    for (i = 0; i + 1 < n; i++) {
        double dl = (OGR_G_GetX(ring, i + 1) - OGR_G_GetX(ring, i)) * k;
        double p0 = fmax(-90.0 * RAD_PER_DEGREE, fmin(90.0 * RAD_PER_DEGREE, OGR_G_GetY(ring, i) * k));
        double p1 = fmax(-90.0 * RAD_PER_DEGREE, fmin(90.0 * RAD_PER_DEGREE, OGR_G_GetY(ring, i + 1) * k));
        sum += dl * 0.5 * (lune_area(j, p0) + lune_area(j, p1));
    }
    return fabs(sum);
}

/* Area (m^2) of a ring: in the scene CRS's lon/lat when it is geographic,
 * else geodesic over the ring in WGS 84 (lon, lat); absolute value. */
static int ring_area(const markers_job *j, OGRGeometryH ring, double *out)
{
    const struct geod_geodesic *gd = &j->geod;
    int n = OGR_G_GetPointCount(ring), i;
    double *lat, *lon, a = 0.0;
    *out = 0.0;
    if (n < 3)
        return 1;
    if (j->geographic) {
        *out = ring_area_lonlat(j, ring);
        return 1;
    }
    lat = malloc((size_t)n * sizeof *lat);
    lon = malloc((size_t)n * sizeof *lon);
    if (!lat || !lon) {
        free(lat);
        free(lon);
        return 0;
    }
    for (i = 0; i < n; i++) {
        lon[i] = OGR_G_GetX(ring, i);
        lat[i] = OGR_G_GetY(ring, i);
    }
    geod_polygonarea(gd, lat, lon, n, &a, NULL);
    *out = fabs(a);
    free(lat);
    free(lon);
    return 1;
}

/* Sum over polygons of |exterior| - sum |holes|; g in the scene CRS when it
 * is geographic, else in WGS 84 (lon, lat). */
static int geodesic_area(const markers_job *j, OGRGeometryH g, double *out)
{
    OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));
    double total = 0.0, a;
    int i, k;
    *out = 0.0;
    if (t == wkbMultiPolygon || t == wkbGeometryCollection) {
        for (i = 0; i < OGR_G_GetGeometryCount(g); i++) {
            if (!geodesic_area(j, OGR_G_GetGeometryRef(g, i), &a))
                return 0;
            total += a;
        }
    } else if (t == wkbPolygon) {
        for (k = 0; k < OGR_G_GetGeometryCount(g); k++) {
            if (!ring_area(j, OGR_G_GetGeometryRef(g, k), &a))
                return 0;
            total += k == 0 ? a : -a;
        }
    }
    *out = total;
    return 1;
}

/* ---- densification ------------------------------------------------------ */

static int to_lonlat(OGRCoordinateTransformationH ct, double x, double y, double ll[2])
{
    double z = 0.0;
    int ok = 0;
    if (!OCTTransformEx(ct, 1, &x, &y, &z, &ok) || !ok || !isfinite(x) || !isfinite(y))
        return 0;
    ll[0] = x;
    ll[1] = y;
    return 1;
}

/* Longitude b moved by whole turns to within 180 degrees of a. */
static double near_lon(double a, double b)
{
    while (b - a > 180.0)
        b -= 360.0;
    while (b - a < -180.0)
        b += 360.0;
    return b;
}

/* Appends to `ring` the points strictly between a and b (scene CRS, with
 * their lon/lat la, lb) that keep the lon/lat chord on the true edge. */
static void densify_edge(OGRCoordinateTransformationH ct, OGRGeometryH ring, const double a[2],
                         const double la[2], const double b[2], const double lb[2], int depth)
{
    double m[2], lm[2], lbn, cx, cy, dev;
    if (depth >= DENSIFY_DEPTH || fabs(la[1]) >= 90.0 - 1e-9 || fabs(lb[1]) >= 90.0 - 1e-9)
        return; /* a pole has no longitude: leave that edge to the writer */
    m[0] = 0.5 * (a[0] + b[0]);
    m[1] = 0.5 * (a[1] + b[1]);
    if (!to_lonlat(ct, m[0], m[1], lm))
        return;
    lbn = near_lon(la[0], lb[0]);
    cx = (near_lon(la[0], 0.5 * (la[0] + lbn)) - near_lon(la[0], lm[0])) *
         cos(lm[1] * RAD_PER_DEGREE);
    cy = 0.5 * (la[1] + lb[1]) - lm[1];
    dev = hypot(cx, cy) * METRES_PER_DEGREE;
    if (dev <= DENSIFY_TOL_M)
        return;
    densify_edge(ct, ring, a, la, m, lm, depth + 1);
    OGR_G_AddPoint_2D(ring, m[0], m[1]);
    densify_edge(ct, ring, m, lm, b, lb, depth + 1);
}

/* A densified copy of a ring; NULL when out of memory or when a vertex
 * cannot be reprojected. */
static OGRGeometryH densify_ring(OGRCoordinateTransformationH ct, OGRGeometryH ring)
{
    OGRGeometryH out = OGR_G_CreateGeometry(wkbLinearRing);
    int n = OGR_G_GetPointCount(ring), i;
    double a[2], la[2], b[2], lb[2];

    if (!out || n < 1)
        return out;
    a[0] = OGR_G_GetX(ring, 0);
    a[1] = OGR_G_GetY(ring, 0);
    if (!to_lonlat(ct, a[0], a[1], la))
        goto fail;
    OGR_G_AddPoint_2D(out, a[0], a[1]);
    for (i = 1; i < n; i++) {
        b[0] = OGR_G_GetX(ring, i);
        b[1] = OGR_G_GetY(ring, i);
        if (!to_lonlat(ct, b[0], b[1], lb))
            goto fail;
        densify_edge(ct, out, a, la, b, lb, 0);
        OGR_G_AddPoint_2D(out, b[0], b[1]);
        memcpy(a, b, sizeof a);
        memcpy(la, lb, sizeof la);
    }
    return out;
fail:
    OGR_G_DestroyGeometry(out);
    return NULL;
}

/* A densified copy of a Polygon or MultiPolygon, or NULL. */
static OGRGeometryH densify(OGRCoordinateTransformationH ct, OGRGeometryH g)
{
    OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));
    OGRGeometryH out = OGR_G_CreateGeometry(t);
    int i;
    if (!out)
        return NULL;
    for (i = 0; i < OGR_G_GetGeometryCount(g); i++) {
        OGRGeometryH part = OGR_G_GetGeometryRef(g, i);
        OGRGeometryH d = t == wkbPolygon ? densify_ring(ct, part) : densify(ct, part);
        if (!d || OGR_G_AddGeometryDirectly(out, d) != OGRERR_NONE) {
            if (d)
                OGR_G_DestroyGeometry(d);
            OGR_G_DestroyGeometry(out);
            return NULL;
        }
    }
    return out;
}

static double round6(double v)
{
    return round(v * 1e6) / 1e6;
}

/* Valid, densified outline of region `id`, its area, and one feature. */
/* The part of a region inside the scene's footprint (partial edge cells
 * run past it): OGR's intersection with the clip rectangle. New geometry
 * owned by the caller, NULL on failure. */
static OGRGeometryH clip_to_scene(const cnp_grid *grid, OGRGeometryH g)
{
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    OGRGeometryH rect = OGR_G_CreateGeometry(wkbPolygon);
    OGRGeometryH out = NULL;
    const double *c = grid->clip;

    if (ring && rect) {
        OGR_G_AddPoint_2D(ring, c[0], c[1]);
        OGR_G_AddPoint_2D(ring, c[2], c[1]);
        OGR_G_AddPoint_2D(ring, c[2], c[3]);
        OGR_G_AddPoint_2D(ring, c[0], c[3]);
        OGR_G_AddPoint_2D(ring, c[0], c[1]);
        if (OGR_G_AddGeometryDirectly(rect, ring) == OGRERR_NONE) {
            ring = NULL;
            cnp_gdal_reset();
            out = OGR_G_Intersection(g, rect);
        }
    }
    if (ring)
        OGR_G_DestroyGeometry(ring);
    if (rect)
        OGR_G_DestroyGeometry(rect);
    if (out && OGR_G_IsEmpty(out)) {
        OGR_G_DestroyGeometry(out);
        out = NULL;
    }
    return out;
}

static cnp_status write_region(cnp_ctx *ctx, markers_job *j, const char *label, int id)
{
    cnp_status st = CNP_OK;
    region *r = &j->regions[id];
    OGRGeometryH g = r->geom, ll = NULL;
    OGRFeatureH f = NULL;
    double area = 0.0;

    r->geom = NULL;
    if (j->grid->has_clip) {
        OGRGeometryH clipped = clip_to_scene(j->grid, g);
        if (!clipped) {
            st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: clipping a %s region to the scene failed "
                           "(%s)", j->path, label, cnp_gdal_msg());
            goto cleanup;
        }
        OGR_G_DestroyGeometry(g);
        g = clipped;
    }
    cnp_gdal_reset();
    ll = densify(j->to_wgs84, g);
    if (ll) {
        OGR_G_DestroyGeometry(g);
        g = ll;
        ll = OGR_G_Clone(g);
    }
    if (!ll || OGR_G_Transform(ll, j->to_wgs84) != OGRERR_NONE) {
        /* Corners all have a lon/lat (find_off_globe), an edge between them
         * does not: leave the region out, counted for the warning. */
        j->n_dropped += r->chips;
        goto cleanup;
    }
    if (!geodesic_area(j, j->geographic ? g : ll, &area)) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory measuring a %s region", j->path,
                       label);
        goto cleanup;
    }
    f = OGR_F_Create(OGR_L_GetLayerDefn(j->out_layer));
    if (!f) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory for a feature", j->path);
        goto cleanup;
    }
    OGR_F_SetFieldString(f, F_LABEL, label);
    OGR_F_SetFieldDouble(f, F_MAX, round6((double)r->max));
    OGR_F_SetFieldDouble(f, F_MEAN, round6(r->sum / (double)r->chips));
    OGR_F_SetFieldInteger(f, F_CHIPS, r->chips);
    OGR_F_SetFieldDouble(f, F_AREA, round(area * 100.0) / 100.0);
    if (j->info && j->info->scene)
        OGR_F_SetFieldString(f, F_SCENE, j->info->scene);
    else
        OGR_F_SetFieldNull(f, F_SCENE);
    if (j->info && j->info->model)
        OGR_F_SetFieldString(f, F_MODEL, j->info->model);
    else
        OGR_F_SetFieldNull(f, F_MODEL);
    if (j->info && j->info->run_utc)
        OGR_F_SetFieldString(f, F_RUN, j->info->run_utc);
    else
        OGR_F_SetFieldNull(f, F_RUN);
    cnp_gdal_reset();
    if (OGR_F_SetGeometryDirectly(f, g) != OGRERR_NONE) {
        g = NULL;
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: cannot attach a %s outline (%s)", j->path,
                       label, cnp_gdal_msg());
        goto cleanup;
    }
    g = NULL;
    cnp_gdal_reset();
    if (OGR_L_CreateFeature(j->out_layer, f) != OGRERR_NONE) {
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: a %s region failed (%s); check the "
                       "scene's georeferencing and free space in the output folder", j->path,
                       label, cnp_gdal_msg());
        goto cleanup;
    }
    j->n_features++;
cleanup:
    if (f)
        OGR_F_Destroy(f);
    if (g)
        OGR_G_DestroyGeometry(g);
    if (ll)
        OGR_G_DestroyGeometry(ll);
    return st;
}

/* All regions of label l. */
static cnp_status write_label(cnp_ctx *ctx, markers_job *j, int l)
{
    cnp_status st = CNP_OK;
    const cnp_result *res = j->res;
    const char *label = res->labels[l];
    size_t i, nl = (size_t)res->n_labels;
    int any = 0, id;

    for (i = 0; i < j->cells; i++) {
        float p = res->probs[i * nl + (size_t)l];
        j->pos[i] = !isnan(p) && p >= res->thresholds[l];
        if (j->pos[i] && j->off && j->off[i]) {
            j->pos[i] = 0;
            j->n_dropped++;
        }
        any |= j->pos[i];
    }
    if (!any)
        return CNP_OK;
    j->n_regions = label_cells(j, j->ids, 1);
    j->n_comps = label_cells(j, j->comps, 0);
    j->regions = cnp_calloc(ctx, (size_t)j->n_regions + 1, sizeof *j->regions, "the regions");
    j->comp_region = cnp_calloc(ctx, (size_t)j->n_comps + 1, sizeof *j->comp_region,
                                "the components");
    if (!j->regions || !j->comp_region) {
        free_regions(j);
        return CNP_ERR_NOMEM;
    }
    for (i = 0; i < j->cells; i++)
        if (j->comps[i])
            j->comp_region[j->comps[i]] = j->ids[i];
    for (i = 0; i < j->cells; i++) {
        region *r;
        float p;
        if (!j->ids[i])
            continue;
        r = &j->regions[j->ids[i]];
        p = res->probs[i * nl + (size_t)l];
        if (r->chips == 0 || p > r->max)
            r->max = p;
        r->sum += (double)p;
        r->chips++;
    }
    st = trace_regions(ctx, j, label);
    for (id = 1; st == CNP_OK && id <= j->n_regions; id++)
        st = write_region(ctx, j, label, id);
    free_regions(j);
    return st;
}

/* ---- set-up ------------------------------------------------------------- */

/* Marks in j->off the cells with a corner that has no lon/lat (a
 * geostationary scene's corners off the globe, a polar one past its area of
 * use): their chips are left out of the GeoJSON, the rest is written.
 * Corners are taken on the scene's footprint (clip), one grid row at a
 * time. j->off stays NULL when every corner transforms. */
static cnp_status find_off_globe(cnp_ctx *ctx, markers_job *j)
{
    const cnp_grid *g = j->grid;
    size_t n = (size_t)g->cols + 1;
    double *x = cnp_calloc(ctx, n, sizeof *x, "grid corners");
    double *y = x ? cnp_calloc(ctx, n, sizeof *y, "grid corners") : NULL;
    double *z = y ? cnp_calloc(ctx, n, sizeof *z, "grid corners") : NULL;
    int *ok = z ? cnp_calloc(ctx, 2 * n, sizeof *ok, "grid corners") : NULL;
    cnp_status st = ok ? CNP_OK : CNP_ERR_NOMEM;

    for (int r = 0; st == CNP_OK && r <= g->rows; r++) {
        int *cur = ok + (size_t)(r % 2) * n, *prev = ok + (size_t)((r + 1) % 2) * n;
        for (size_t c = 0; c < n; c++) {
            x[c] = g->gt[0] + g->gt[1] * (double)c + g->gt[2] * r;
            y[c] = g->gt[3] + g->gt[4] * (double)c + g->gt[5] * r;
            if (g->has_clip) {
                x[c] = fmax(g->clip[0], fmin(g->clip[2], x[c]));
                y[c] = fmax(g->clip[1], fmin(g->clip[3], y[c]));
            }
            z[c] = 0.0;
            cur[c] = 0;
        }
        cnp_gdal_reset();
        OCTTransformEx(j->to_wgs84, (int)n, x, y, z, cur);
        for (size_t c = 0; c < n; c++)
            cur[c] = cur[c] && isfinite(x[c]) && isfinite(y[c]);
        for (size_t c = 0; r > 0 && c + 1 < n; c++) {
            if (cur[c] && cur[c + 1] && prev[c] && prev[c + 1])
                continue;
            if (!j->off && !(j->off = cnp_calloc(ctx, j->cells, 1, "off-globe cells"))) {
                st = CNP_ERR_NOMEM;
                break;
            }
            j->off[(size_t)(r - 1) * (size_t)g->cols + c] = 1;
        }
    }
    free(x);
    free(y);
    free(z);
    free(ok);
    return st;
}

static cnp_status make_srs(cnp_ctx *ctx, markers_job *j)
{
    const char *wkt = j->grid->crs_wkt;
    if (!wkt || !*wkt)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the scene has no coordinate reference "
                         "system, so markers cannot be placed on the map; georeference the "
                         "scene (e.g. gdal_translate -a_srs)", j->path);
    j->scene_srs = OSRNewSpatialReference(NULL);
    j->wgs84 = OSRNewSpatialReference(NULL);
    if (!j->scene_srs || !j->wgs84)
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory for CRS objects", j->path);
    cnp_gdal_reset();
    if (OSRSetFromUserInput(j->scene_srs, wkt) != OGRERR_NONE)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the scene's CRS cannot be read (%s); check "
                         "the scene's georeferencing", j->path, cnp_gdal_msg());
    if (OSRImportFromEPSG(j->wgs84, 4326) != OGRERR_NONE)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: EPSG:4326 is unknown to PROJ (%s); check "
                         "the PROJ installation (proj.db)", j->path, cnp_gdal_msg());
    OSRSetAxisMappingStrategy(j->scene_srs, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(j->wgs84, OAMS_TRADITIONAL_GIS_ORDER);
    if (OSRIsGeographic(j->scene_srs)) {
        OGRErr e1 = OGRERR_NONE, e2 = OGRERR_NONE;
        double invf;
        j->a = OSRGetSemiMajor(j->scene_srs, &e1);
        invf = OSRGetInvFlattening(j->scene_srs, &e2);
        j->rad_per_unit = OSRGetAngularUnits(j->scene_srs, NULL);
        j->e2 = invf > 0 ? (2.0 - 1.0 / invf) / invf : 0.0;
        j->geographic = e1 == OGRERR_NONE && e2 == OGRERR_NONE && j->a > 0 &&
                        j->rad_per_unit > 0;
    }
    cnp_gdal_reset();
    j->to_wgs84 = OCTNewCoordinateTransformation(j->scene_srs, j->wgs84);
    if (!j->to_wgs84)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: PROJ has no way from the scene's CRS to "
                         "EPSG:4326 (%s); reproject the scene first (gdalwarp -t_srs)", j->path,
                         cnp_gdal_msg());
    return CNP_OK;
}

static cnp_status make_work(cnp_ctx *ctx, markers_job *j)
{
    GDALDriverH mem = GDALGetDriverByName("MEM"), vmem = GDALGetDriverByName("Memory");
    const cnp_grid *g = j->grid;
    double gt[6];

    j->pos = cnp_calloc(ctx, j->cells, 1, "the marker mask");
    j->ids = j->pos ? cnp_calloc(ctx, j->cells, sizeof *j->ids, "region ids") : NULL;
    j->comps = j->ids ? cnp_calloc(ctx, j->cells, sizeof *j->comps, "component ids") : NULL;
    j->queue = j->comps ? cnp_calloc(ctx, j->cells, sizeof *j->queue, "a flood-fill queue")
                        : NULL;
    if (!j->queue)
        return CNP_ERR_NOMEM;
    if (!mem || !vmem)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: GDAL lacks its MEM or Memory driver; "
                         "check the GDAL installation", j->path);
    memcpy(gt, g->gt, sizeof gt);
    cnp_gdal_reset();
    j->id_ds = GDALCreate(mem, "", g->cols, g->rows, 1, GDT_Int32, NULL);
    j->mask_ds = GDALCreate(mem, "", g->cols, g->rows, 1, GDT_Byte, NULL);
    j->vec_ds = GDALCreate(vmem, "", 0, 0, 0, GDT_Unknown, NULL);
    if (!j->id_ds || !j->mask_ds || !j->vec_ds ||
        GDALSetGeoTransform(j->id_ds, gt) != CE_None ||
        GDALSetGeoTransform(j->mask_ds, gt) != CE_None)
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: cannot hold the chip grid in memory (%s)",
                         j->path, cnp_gdal_msg());
    geod_init(&j->geod, 6378137.0, 1.0 / 298.257223563);
    return CNP_OK;
}

static cnp_status open_output(cnp_ctx *ctx, markers_job *j, const char *tmp)
{
    static const struct { const char *name; OGRFieldType type; } fields[F_COUNT] = {
        { "label", OFTString }, { "max_prob", OFTReal }, { "mean_prob", OFTReal },
        { "chips", OFTInteger }, { "area_m2", OFTReal }, { "scene", OFTString },
        { "model", OFTString }, { "run_utc", OFTString },
    };
    char *lco[] = { "RFC7946=YES", "COORDINATE_PRECISION=7", "SIGNIFICANT_FIGURES=15", NULL };
    GDALDriverH drv = GDALGetDriverByName("GeoJSON");
    int i;

    if (!drv)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: this GDAL has no GeoJSON driver; check "
                         "the GDAL installation", j->path);
    cnp_gdal_reset();
    errno = 0;
    j->out = GDALCreate(drv, tmp, 0, 0, 0, GDT_Unknown, NULL);
    if (!j->out) {
        int e = errno;
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", j->path, cnp_gdal_msg(),
                         cnp_write_advice(e));
    }
    j->out_layer = GDALDatasetCreateLayer(j->out, "markers", j->scene_srs, wkbUnknown, lco);
    if (!j->out_layer)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "cannot write %s: %s; check the scene's "
                         "georeferencing", j->path, cnp_gdal_msg());
    for (i = 0; i < F_COUNT; i++) {
        OGRFieldDefnH fd = OGR_Fld_Create(fields[i].name, fields[i].type);
        OGRErr e = OGR_L_CreateField(j->out_layer, fd, TRUE);
        OGR_Fld_Destroy(fd);
        if (e != OGRERR_NONE)
            return cnp_error(ctx, CNP_ERR_INTERNAL, "cannot write %s: adding field %s failed "
                             "(%s)", j->path, fields[i].name, cnp_gdal_msg());
    }
    return CNP_OK;
}

/* Re-reads the closed temporary: GeoJSON is streamed out without checking
 * every write, so a full disk would otherwise pass unnoticed. */
static cnp_status verify_output(cnp_ctx *ctx, markers_job *j, const char *tmp)
{
    const char *const drivers[] = { "GeoJSON", NULL };
    GDALDatasetH ds;
    OGRLayerH lyr;
    GIntBig n = -1;

    cnp_gdal_reset();
    ds = GDALOpenEx(tmp, GDAL_OF_VECTOR | GDAL_OF_READONLY, drivers, NULL, NULL);
    if (ds && GDALDatasetGetLayerCount(ds) == 1 && (lyr = GDALDatasetGetLayer(ds, 0)) != NULL)
        n = OGR_L_GetFeatureCount(lyr, TRUE);
    if (ds)
        GDALClose(ds);
    if (n != j->n_features)
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s: the file written does not read back "
                         "(%s); check free space in the output folder", j->path,
                         ds ? "wrong feature count" : cnp_gdal_msg());
    return CNP_OK;
}

static void markers_free(markers_job *j)
{
    free_regions(j);
    if (j->out)
        GDALClose(j->out);
    if (j->vec_ds)
        GDALClose(j->vec_ds);
    if (j->id_ds)
        GDALClose(j->id_ds);
    if (j->mask_ds)
        GDALClose(j->mask_ds);
    if (j->to_wgs84)
        OCTDestroyCoordinateTransformation(j->to_wgs84);
    if (j->scene_srs)
        OSRDestroySpatialReference(j->scene_srs);
    if (j->wgs84)
        OSRDestroySpatialReference(j->wgs84);
    free(j->pos);
    free(j->off);
    free(j->ids);
    free(j->comps);
    free(j->queue);
}

cnp_status cnp_write_markers(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                             const cnp_result *res, const cnp_markers_info *info,
                             int *n_features)
{
    cnp_status st;
    markers_job j;
    char *tmp = NULL;
    const char *saved = NULL;
    char *saved_copy = NULL;
    int l, had_pam;

    if (n_features)
        *n_features = 0;
    st = cnp_result_check(ctx, path, grid, res);
    if (st != CNP_OK)
        return st;
    memset(&j, 0, sizeof j);
    j.path = path;
    j.grid = grid;
    j.res = res;
    j.info = info;
    j.cells = (size_t)grid->cols * (size_t)grid->rows;

    cnp_gdal_init();
    saved = CPLGetThreadLocalConfigOption("GDAL_PAM_ENABLED", NULL);
    saved_copy = saved ? strdup(saved) : NULL;
    had_pam = saved_copy != NULL;
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
    cnp_gdal_quiet_begin();

    st = make_srs(ctx, &j);
    if (st == CNP_OK)
        st = make_work(ctx, &j);
    if (st == CNP_OK)
        st = find_off_globe(ctx, &j);
    if (st != CNP_OK)
        goto cleanup;
    tmp = cnp_atomic_begin(ctx, path);
    if (!tmp) {
        st = ctx ? ctx->status : CNP_ERR_IO;
        goto cleanup;
    }
    st = open_output(ctx, &j, tmp);
    for (l = 0; st == CNP_OK && l < res->n_labels; l++)
        if (res->is_marker && res->is_marker[l])
            st = write_label(ctx, &j, l);
    if (st != CNP_OK)
        goto cleanup;
    cnp_gdal_reset();
    GDALClose(j.out);
    j.out = NULL;
    if (CPLGetLastErrorType() == CE_Failure) {
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; check free space in the output "
                       "folder", path, cnp_gdal_msg());
        goto cleanup;
    }
    st = verify_output(ctx, &j, tmp);
    if (st == CNP_OK)
        st = cnp_atomic_commit(ctx, tmp, path);
    if (st == CNP_OK && n_features)
        *n_features = j.n_features;
    if (st == CNP_OK && info && info->n_dropped)
        *info->n_dropped = j.n_dropped;
cleanup:
    markers_free(&j);
    if (st != CNP_OK && tmp)
        cnp_atomic_discard(tmp);
    free(tmp);
    cnp_gdal_quiet_end();
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", had_pam ? saved_copy : NULL);
    free(saved_copy);
    return st;
}
