/* internal.h -- shared inside classifier/pictures/ only. */
#ifndef CNP_PICTURES_INTERNAL_H
#define CNP_PICTURES_INTERNAL_H

#include <cairo.h>
#include <json-c/json.h>
#include <ogr_srs_api.h>

#include "pictures/html.h"
#include "pictures/pictures.h"

typedef struct cnp_draw_stats {
    int regions, alerts;
} cnp_draw_stats;

/* Draws marker and alert outlines, the title, legend and scale bar on the
 * quick-look surface whose geotransform (scene CRS srs, may be NULL: no
 * outlines or scale bar) is gt. *panels receives "x,y,w,h;..." of the
 * panels drawn (caller frees). */
cnp_status cnp_draw_overlays(cnp_ctx *ctx, cairo_surface_t *s, const cnp_quicklook_params *p,
                             OGRSpatialReferenceH srs, const double gt[6], char **panels,
                             cnp_draw_stats *stats);

/* Reads a small JSON file (at most max_bytes) with json-c. NULL with the
 * error in ctx. Caller puts the object. */
json_object *cnp_json_read_file(cnp_ctx *ctx, const char *path, size_t max_bytes);

/* Serialises obj (pretty, slashes unescaped) to path atomically. */
cnp_status cnp_json_write_file(cnp_ctx *ctx, const char *path, json_object *obj);

/* outdir/NAME+suffix, caller frees (NULL when out of memory). */
char *cnp_join_name(const char *dir, const char *name, const char *suffix);

/* 1 when path is an existing regular file. */
int cnp_is_file(const char *path);

/* Scene footprint in EPSG:4326: bbox[4] and a closed ring of 4*per_side+1
 * lon/lat points (caller frees *ring, 2 doubles a point); also the scene's
 * size, geotransform and CRS (*srs: caller destroys, NULL without CRS). */
typedef struct cnp_footprint {
    int width, height;
    double gt[6];
    double bbox[4];
    double *ring;
    int n_ring;
    OGRSpatialReferenceH srs;
} cnp_footprint;
cnp_status cnp_footprint_get(cnp_ctx *ctx, const char *scene, int per_side, cnp_footprint *f);
void cnp_footprint_free(cnp_footprint *f);

/* A failure record outdir/NAME.failed.json as a record (failed = 1);
 * CNP_ERR_FORMAT when the file is not one. Caller frees *out. */
cnp_status cnp_failure_read(cnp_ctx *ctx, const char *outdir, const char *name,
                            cnp_scene_record **out);

/* The report page into b: rec (n, in page order), links to outputs through
 * rel (the relative folder from the page to outdir). */
void cnp_report_html(cnp_buf *b, const cnp_report_options *o, cnp_scene_record *const *rec,
                     int n, const char *rel, const cnp_report_summary *sum);

/* Building JSON with one failure flag (stac.c): add and push take v (NULL,
 * or an object or array they cannot take, clears *ok and v is put). */
void cnp_json_add(json_object *o, const char *key, json_object *v, int *ok);
void cnp_json_push(json_object *a, json_object *v, int *ok);

/* A longitude or latitude: a number printed with 7 decimals (about 1 cm). */
json_object *cnp_json_deg(double v);

/* A STAC link {rel, href, type[, title]} (title NULL: none). */
json_object *cnp_stac_link(const char *rel, const char *href, const char *type,
                           const char *title, int *ok);

/* The absolute path of `path` (its folder resolved), percent-encoded as a
 * URL path: a STAC document's "self" href. NULL when the folder cannot be
 * resolved (or out of memory). Caller frees. */
char *cnp_stac_absolute_href(const char *path);

/* The STAC Collection of an output folder at `path`, linking the Items of
 * rec that exist, its extent their union. */
cnp_status cnp_stac_collection_write(cnp_ctx *ctx, const char *path, const char *id,
                                     const cnp_report_options *o, cnp_scene_record *const *rec,
                                     int n);

#endif
