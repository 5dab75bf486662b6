/* pictures.h -- results people look at: a georeferenced quick-look PNG per
 * scene (quicklook.c), a STAC 1.0 Item per scene and a Collection per output
 * folder (stac.c), a small failure record for scenes that failed
 * (record.c), and one self-contained HTML page for an output folder
 * (report.c, html.c).
 *
 * The scene pipeline calls cnp_quicklook_write() and cnp_stac_item_write()
 * after its writers (before the manifest, which lists them among the
 * outputs), and cnp_failure_write() when a scene fails. `canopy report`
 * calls cnp_report_write(). Each also works alone from a finished output
 * folder: cnp_scene_record_read() rebuilds what they need from a manifest.
 *
 * Every file goes through base's atomic writer (cnp_atomic_*: a private
 * temporary folder beside it, renamed into place when complete); strings read from files (scene names, labels, messages) are
 * never used to build a path other than NAME.<suffix> in the output folder.
 */
#ifndef CNP_PICTURES_H
#define CNP_PICTURES_H

#include "base/base.h"
#include "scene/scene.h"

/* ---------------------------------------------------------------- palette */

/* The colour of a marker label: Paul Tol's colour-blind-safe "muted" scheme
 * (9 colours). The ten default marker labels have fixed colours, so a label
 * looks the same in every scene and report; any other label takes the
 * colour of its position `index` in the marker list, and from the tenth
 * such label on the outline is also dashed (*dashed = 1). rgb[] in 0..255. */
void cnp_label_style(const char *label, int index, unsigned char rgb[3], int *dashed);

/* ------------------------------------------------------------- quick-look */

/* The longest side of the quick-look classify writes. */
#define CNP_QUICKLOOK_SIZE 1024

/* What a quick-look shows. All borrowed; every pointer but scene and name
 * may be NULL (0 for counts). */
typedef struct cnp_quicklook_params {
    const char *scene;         /* the scene, any raster GDAL reads */
    int n_bands;               /* the model's bands (1-based scene bands); the */
    const int *bands;          /* first three are red, green, blue, one is grey;
                                  0 bands: 1,2,3 (or 1 for one-band scenes) */
    const char *markers;       /* NAME.markers.geojson (EPSG:4326), outlined */
    const char *alerts;        /* NAME.alerts.geojson: new alerts outlined */
    const char *name;          /* scene name (title) */
    const char *date;          /* acquisition date "YYYY-MM-DD" */
    const char *model;         /* model name */
    int n_labels;              /* marker labels, legend order (palette index) */
    const char *const *labels;
    const long *counts;        /* (n_labels) positive chips per label, or NULL */
    int size;                  /* longest side in pixels (0: CNP_QUICKLOOK_SIZE) */
    /* The scene's pixels as the tiler read them (cnp_tiler_preview, a
     * box filter), used instead of reading the scene again when its size
     * and planes are the quick-look's; NULL: read the scene. Borrowed. */
    const cnp_preview *preview;
} cnp_quicklook_params;

/* What was written. */
typedef struct cnp_quicklook_info {
    int width, height;         /* PNG size in pixels */
    double gt[6];              /* its GDAL geotransform (scene CRS) */
    int overview;              /* overview level read (0: full resolution) */
    int n_regions;             /* marker features drawn */
    int n_alerts;              /* new-alert features drawn */
    double seconds;
} cnp_quicklook_info;

/* Writes `path` (NAME.quicklook.png): the scene's bands contrast-stretched
 * (2-98 % of the valid pixels per band), longest side p->size (the other in
 * proportion, at least 1): p->preview when it fits (the pixels classify
 * read, averaged), else read through the scene's overviews or a decimated
 * read (GDAL's BILINEAR, an anti-aliasing filter when it reduces, when the
 * level read is at most 8x the output, else NEAREST); nodata/mask pixels
 * grey; each marker label's regions
 * outlined in its colour over a contrasting halo, new alerts outlined in
 * black and white dashes; panels with the name, date and model (top left),
 * the legend (label colour, positive chips or regions; the corner with the
 * fewest outlines) and a scale bar (geodesic length at the scene centre, in
 * m or km). Beside it: `path` minus ".png" + ".pgw" (world file) and
 * `path`.aux.xml (CRS, geotransform, CANOPY_QUICKLOOK_PANELS = the panel
 * rectangles "x,y,w,h;..."), so QGIS opens it in place. The scene must be
 * north-up. info may be NULL. On failure nothing is left under the three
 * final names (an older quick-look there is kept). */
cnp_status cnp_quicklook_write(cnp_ctx *ctx, const char *path, const cnp_quicklook_params *p,
                               cnp_quicklook_info *info);

/* ------------------------------------------------------------------- STAC */

/* One scene's outputs as a STAC Item. All borrowed; NULL members are left
 * out (assets) or written as documented. */
typedef struct cnp_stac_item_params {
    const char *scene;         /* the scene (footprint, CRS, grid) */
    const char *name;          /* Item id: the scene name */
    const char *date;          /* "YYYY-MM-DD" acquisition date, or NULL */
    const char *run_utc;       /* ISO 8601 UTC time of the run ("created") */
    const char *model;         /* model name (canopy:model) */
    const char *collection;    /* collection id (cnp_stac_collection_id) */
    /* Output files: paths as written; assets carry their base names (relative
     * hrefs: the Item sits beside them). */
    const char *probs, *masks, *markers, *quicklook, *manifest, *alerts;
    int n_labels;              /* marker labels and their positive chips */
    const char *const *labels;
    const long *counts;
} cnp_stac_item_params;

/* Writes `path` (NAME.stac.json): a STAC 1.0.0 Item with the projection
 * extension (v1.1.0): proj:epsg (null with proj:wkt2 when the CRS has no
 * EPSG code), proj:shape, proj:transform and proj:bbox of the scene grid in
 * the properties, and of the chip grid on the probs and masks assets;
 * geometry and bbox in EPSG:4326 from the scene footprint, edges densified
 * (16 points per side) and transformed with OSR/PROJ; datetime: null with
 * start_datetime/end_datetime spanning the acquisition day when the date is
 * known, else the run time (and canopy:datetime_source says which);
 * "created" = run time; assets with roles and media types; links self
 * (absolute path), root, parent and collection ("./collection.json"). */
cnp_status cnp_stac_item_write(cnp_ctx *ctx, const char *path, const cnp_stac_item_params *p);

/* The collection id of an output folder: "canopy-" + the folder's base name
 * (of its real path) with characters other than letters, digits, '-', '_'
 * and '.' replaced by '_'. Caller frees. */
char *cnp_stac_collection_id(cnp_ctx *ctx, const char *outdir);

/* ------------------------------------------------------- failure records */

/* NAME.failed.json in outdir: a failed scene has no manifest, so the
 * pipeline records {"canopy_failure": 1, "scene", "name", "status",
 * "message", "time", "canopy"} for the report. cnp_failure_remove() deletes
 * it (only a file that parses as such a record) when the scene succeeds. */
cnp_status cnp_failure_write(cnp_ctx *ctx, const char *outdir, const char *name,
                             const char *scene, const char *status, const char *message);
void cnp_failure_remove(const char *outdir, const char *name);

/* ---------------------------------------------- a scene's record (manifest) */

typedef struct cnp_scene_record {
    char *name;                /* scene name (from the manifest file name) */
    char *scene;               /* scene path (first input), NULL when failed */
    int failed;                /* 1: from NAME.failed.json or a scene_error event */
    char *status, *message;    /* the failure ("io", ...), NULL when ok */
    char *date;                /* "YYYY-MM-DD" or NULL */
    char *run_utc;             /* run time (or failure time) */
    char *model;               /* model name */
    int n_bands;
    int bands[16];
    long cells, classified, skipped, partial;
    double seconds;
    int n_labels;              /* marker labels */
    char **labels;             /* (n_labels) */
    long *counts;              /* (n_labels) positive chips */
    int marker_features;
    long alerts_new;           /* -1: no monitoring */
    char *alerts_summary;
    /* Final paths of outputs that exist (NULL otherwise). */
    char *probs, *masks, *markers, *manifest, *quicklook, *stac, *alerts, *record;
} cnp_scene_record;

/* Reads outdir/NAME.manifest.json (a finished scene) into a new record the
 * caller frees with cnp_scene_record_free(). A manifest that is not one of
 * canopy's is CNP_ERR_FORMAT naming it. */
cnp_status cnp_scene_record_read(cnp_ctx *ctx, const char *outdir, const char *name,
                                 cnp_scene_record **out);
void cnp_scene_record_free(cnp_scene_record *r);

/* The quick-look and STAC parameters of a record (pointers into r). */
void cnp_scene_record_quicklook(const cnp_scene_record *r, cnp_quicklook_params *q);
void cnp_scene_record_stac(const cnp_scene_record *r, const char *collection,
                           cnp_stac_item_params *s);

/* ----------------------------------------------------------------- report */

typedef struct cnp_report_options {
    const char *outdir;        /* canopy's output folder */
    const char *html;          /* report path (NULL: outdir/report.html) */
    int inline_images;         /* 1: quick-looks as data: URIs */
    int fill;                  /* 1: make missing quick-looks and STAC items */
    const char *const *events; /* NULL-terminated JSONL event logs, or NULL */
    const char *license;       /* collection license (NULL: "proprietary") */
    const char *title;         /* page title (NULL: "canopy report: DIR") */
} cnp_report_options;

typedef struct cnp_report_summary {
    int scenes, ok, failed, filled;
    long chips;
    double seconds;
    int alerts_new;
} cnp_report_summary;

/* Reads every NAME.manifest.json and NAME.failed.json of o->outdir (and
 * scene_error events of the logs), makes missing quick-looks and Items when
 * o->fill, writes outdir/collection.json (STAC Collection linking the
 * Items) and the HTML page. Scenes with failures, then new alerts, come
 * first. A scene whose files cannot be read is reported on the page, not an
 * error; a folder with no scene at all is CNP_ERR_IO. sum may be NULL;
 * warnings (files made, files skipped) go to warn(msg, user) when given. */
cnp_status cnp_report_write(cnp_ctx *ctx, const cnp_report_options *o, cnp_report_summary *sum,
                            void (*warn)(const char *msg, void *user), void *user);

#endif
