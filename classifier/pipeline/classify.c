/* classify.c -- cnp_classify_scene(): one scene through the pipeline,
 * tiler -> model -> writers -> manifest, as a sequence of steps:
 *
 *   scene_open       the product (scene/product.h: dataset, bands, radiometry,
 *                    quality mask, name), output paths, the tiler (chip grid)
 *   scene_identity   the run's identity; up to date -> skipped, stop
 *   scene_classify   every strip through the model
 *   scene_write      probabilities, masks (+ split), markers GeoJSON, written
 *                    in the scene's private folder in -o (base/private.c),
 *                    as everything up to the manifest
 *   scene_pictures   (after scene_alerts, below) quick-look (+ world file,
 *                    .aux.xml) with the new alerts outlined, and the STAC
 *                    Item; listed in the manifest (not with --no-quicklook)
 *   scene_manifest   NAME.manifest.json, written last: it makes the scene
 *                    "up to date"
 *   scene_commit     the previous run's outputs that are not replaced
 *                    removed (only those its manifest lists), the staged
 *                    files renamed into place, the manifest last: a process
 *                    killed before leaves only its private folder, which a
 *                    later run removes
 *   scene_alerts     with --alerts DIR: the scene added to the alert state at
 *                    its acquisition date (scene_open resolves the date; a
 *                    scene without one fails there, before any work), its
 *                    NAME.alerts.geojson (output "alerts"); before the
 *                    manifest, which records the date and the alerts line;
 *                    also for a scene skipped as up to date (the update is
 *                    idempotent), so that a state made later gets it
 *   scene_summary    the result's counts and its line for people
 *
 * Any failure or cancellation after scene_identity removes every output of
 * the scene (those its manifest lists) and the private folder. A scene with
 * no chip to classify (all nodata, smaller than one chip) is done, with a
 * warning: masks of 255, no feature, the manifest saying why. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/pictures.h"
#include "pipeline/pipeline.h"
#include "alerts/alerts.h"
#include "scene/date.h"
#include "scene/scene.h"
#include "scene/product.h"
#include "writers/writers.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <json-c/json.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* One scene in progress. */
typedef struct scene_run {
    const cnp_classify_options *o;
    cnp_classify_model *m;
    const char *path;
    cnp_progress_fn progress;
    void *user;
    cnp_classify_result *res;
    cnp_product *pr;           /* what is read and how */
    char *product_json;        /* its manifest record, NULL for a plain raster */
    char *name;
    char run_utc[32];
    cnp_scene_outputs w;       /* the outputs' final names */
    char *stage;               /* the scene's private folder in -o */
    cnp_scene_outputs ws;      /* the outputs as written, in stage */
    cnp_tiler *t;
    const cnp_tiler_info *in;
    cnp_tiler_stats ts;
    cnp_preview *preview;      /* the scene small as read, for the quick-look */
    cnp_manifest *man;
    size_t cells;
    float *probs;              /* (rows, cols, L); NaN = not classified */
    long *positives;           /* (L) */
    int *partial_cells;        /* (n_partial, 2) */
    long n_partial;
    int n_features;
    long n_dropped;            /* marker chips left out of the GeoJSON */
    char **written;            /* CSL: files written, for the manifest */
    int started;               /* past the up-to-date check: a failure removes the
                                  scene's outputs */
    double t_start, t_open, t_hash, t_write0, t_write, infer_s;
    cnp_scene_date date;       /* acquisition date (source NONE: unknown) */
    const char *none_why;      /* no chip classified: why (static), else NULL */
} scene_run;

static void utc_now(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "unknown");
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int keep_going(scene_run *s, double done, const char *msg)
{
    return !s->progress || s->progress(done, msg, s->user);
}

static cnp_status cancelled(cnp_ctx *ctx, const scene_run *s)
{
    return cnp_error(ctx, CNP_ERR_CANCELLED, "%s: interrupted; no output was written", s->path);
}

static void tiler_params(const scene_run *s, cnp_tiler_params *tp)
{
    const cnp_model_meta *meta = s->m->meta;
    memset(tp, 0, sizeof *tp);
    tp->spec.n_channels = meta->n_channels;
    tp->spec.bands = s->pr->bands;
    tp->spec.size = meta->input_size;
    tp->spec.offset = s->m->offset;
    tp->spec.scale = s->m->scale;
    tp->spec.mean = meta->mean;
    tp->spec.std = meta->std;
    tp->chip = s->o->chip;
    tp->stride = s->o->stride > 0 ? s->o->stride : s->o->chip;
    tp->gsd_mode = (cnp_gsd_mode)s->o->gsd_mode;
    tp->gsd_m = s->o->gsd_mode == CNP_CLASSIFY_GSD_USER ? s->o->gsd_m : meta->gsd_m;
    tp->max_gsd_ratio = 4.0;
    tp->min_valid = s->o->min_valid;
    tp->strip_chips = CNP_CLASSIFY_MAX_BATCH;
    tp->readers = s->m->threads; /* the engine's team reads between batches */
    tp->rad_add = s->pr->rad_add;
    tp->rad_gain = s->pr->rad_gain;
    tp->have_nodata = s->pr->have_nodata;
    tp->nodata = s->pr->nodata;
    tp->qmask = s->pr->has_qmask ? &s->pr->qmask : NULL;
    /* The quick-look drawn from the pixels read: the scene is decoded once. */
    tp->preview_size = s->o->no_quicklook ? 0 : CNP_QUICKLOOK_SIZE;
}

/* Opens the scene as a product for the model and the options; its warnings
 * go to the result. */
static cnp_status product_open(cnp_ctx *ctx, scene_run *s)
{
    const cnp_classify_options *o = s->o;
    const cnp_model_meta *meta = s->m->meta;
    cnp_product_params pp;
    cnp_status st;

    memset(&pp, 0, sizeof pp);
    pp.n_channels = meta->n_channels;
    pp.bands = s->m->bands;
    pp.names = (const char *const *)meta->band_names;
    pp.bands_given = o->n_bands > 0;
    pp.mask_mode = (cnp_mask_mode)o->mask_mode;
    pp.mask_file = o->mask_file;
    pp.scl_unusable = o->have_scl_unusable ? o->scl_unusable : NULL;
    pp.trained_on = meta->trained_on;
    pp.model_name = meta->name;
    pp.model_scale = s->m->scale;
    pp.scale_range_given = o->have_range;
    pp.scale_range_hi = o->range_hi;
    if ((st = cnp_product_open(ctx, s->path, &pp, &s->pr)) != CNP_OK)
        return st;
    if (s->pr->warnings && !(s->res->warnings = CSLDuplicate(s->pr->warnings)))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if ((s->pr->kind != CNP_PRODUCT_RASTER || s->pr->has_qmask) &&
        !(s->product_json = cnp_product_json(s->pr)))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    return CNP_OK;
}

/* Step 1: the scene's name (unique in the run), output paths, chip grid. */
static cnp_status scene_open(cnp_ctx *ctx, scene_run *s)
{
    cnp_tiler_params tp;
    cnp_status st;
    int i;

    if ((st = product_open(ctx, s)) != CNP_OK)
        return st;
    s->name = strdup(s->pr->name);
    if (!s->name || !(s->res->name = strdup(s->name)))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    i = CSLFindString(s->m->names, s->name);
    if (i >= 0)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: its outputs would replace those of %s (both "
                         "are named %s); classify them into different -o folders", s->path,
                         s->m->name_paths[i], s->name);
    s->m->names = CSLAddString(s->m->names, s->name);
    s->m->name_paths = CSLAddString(s->m->name_paths, s->path);
    if ((st = cnp_scene_outputs_init(ctx, s->o->outdir, s->name, &s->w)) != CNP_OK)
        return st;
    if (s->o->split_masks) { /* before any work: a link, two labels as one file */
        char **names = cnp_split_names(ctx, s->w.split_dir,
                                       (const char *const *)s->m->meta->labels,
                                       s->m->meta->n_labels);
        if (!names)
            return ctx->status;
        CSLDestroy(names);
        if ((st = cnp_scene_outputs_check_split(ctx, &s->w)) != CNP_OK)
            return st;
    }
    if ((st = cnp_scene_date_get(ctx, s->path, s->o->date, &s->date)) != CNP_OK)
        return st;
    if (s->date.source) {
        if (!(s->res->date = strdup(s->date.iso)))
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        s->res->date_source = cnp_date_source_name(s->date.source);
    } else if (s->o->alerts_dir) {
        return cnp_date_missing_error(ctx, s->path);
    }
    tiler_params(s, &tp);
    if ((st = cnp_tiler_open(ctx, s->pr->dataset, &tp, &s->t)) != CNP_OK)
        return st;
    s->in = cnp_tiler_info_get(s->t);
    s->t_open = cnp_now();
    return CNP_OK;
}

static void run_params(const scene_run *s, cnp_run_params *rp)
{
    const cnp_classify_options *o = s->o;
    const cnp_model_meta *meta = s->m->meta;
    memset(rp, 0, sizeof *rp);
    rp->model_path = o->model;
    rp->model_sha256 = s->m->sha256;
    rp->chip = o->chip;
    rp->stride = o->stride > 0 ? o->stride : o->chip;
    rp->input_size = meta->input_size;
    rp->n_channels = meta->n_channels;
    rp->bands = s->pr->bands;
    rp->offset = s->m->offset;
    rp->scale = s->m->scale;
    rp->mean = meta->mean;
    rp->std = meta->std;
    rp->gsd_mode = o->gsd_mode == CNP_CLASSIFY_GSD_NATIVE ? "native"
                   : o->gsd_mode == CNP_CLASSIFY_GSD_USER ? "user" : "model";
    rp->gsd_m = s->in->gsd_m;
    rp->min_valid = o->min_valid;
    rp->n_labels = meta->n_labels;
    rp->labels = (const char *const *)meta->labels;
    rp->thresholds = meta->thresholds;
    rp->is_marker = meta->is_marker;
    rp->tta = o->tta;
    rp->precision = cnp_model_precision(s->m->model);
    rp->float_probs = o->float_probs;
    rp->split_masks = o->split_masks;
    rp->lossy_probs = o->lossy_probs;
    rp->format = o->format == CNP_CLASSIFY_COG ? "COG" : "GTiff";
    rp->creation_options = (const char *const *)o->creation_options;
    rp->config = (const char *const *)o->config;
    rp->product_json = s->product_json;
}

/* Step 2: the run's identity; *up_to_date when the manifest matches it. */
static cnp_status scene_identity(cnp_ctx *ctx, scene_run *s, int *up_to_date)
{
    cnp_run_params rp;
    cnp_status st;

    run_params(s, &rp);
    if ((st = cnp_manifest_new(ctx, s->in->files, &rp, &s->man)) != CNP_OK)
        return st;
    s->t_hash = cnp_now();
    return cnp_manifest_up_to_date(ctx, s->man, s->w.manifest, up_to_date);
}

static cnp_status note_partial(cnp_ctx *ctx, scene_run *s, long *cap, int row, int col)
{
    if (s->n_partial == *cap) {
        long nc = *cap ? 2 * *cap : 256;
        int *p = realloc(s->partial_cells, (size_t)nc * 2 * sizeof(int));
        if (!p)
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        s->partial_cells = p;
        *cap = nc;
    }
    s->partial_cells[2 * s->n_partial] = row;
    s->partial_cells[2 * s->n_partial + 1] = col;
    s->n_partial++;
    return CNP_OK;
}

/* Runs the model over the tiler's strips into s->probs (the batcher). */
static cnp_status classify_strips(cnp_ctx *ctx, scene_run *s)
{
    const cnp_tiler_info *in = s->in;
    const cnp_model_meta *meta = s->m->meta;
    size_t chip_floats = (size_t)meta->n_channels * (size_t)in->input_size * in->input_size;
    size_t L = (size_t)meta->n_labels;
    float *bp = s->m->batch_probs;
    double infer0 = s->m->batcher.infer_s;
    long cap = 0;
    const cnp_strip *strip;
    cnp_status st;

    for (;;) {
        int i0, n, i;
        if ((st = cnp_tiler_next_strip(ctx, s->t, &strip)) != CNP_OK)
            break;
        if (!strip)
            break;
        for (i0 = 0; st == CNP_OK && i0 < strip->n_chips; i0 += n) {
            n = strip->n_chips - i0 < CNP_CLASSIFY_MAX_BATCH ? strip->n_chips - i0
                                                              : CNP_CLASSIFY_MAX_BATCH;
            st = cnp_batcher_forward(ctx, &s->m->batcher, strip->input + (size_t)i0 * chip_floats,
                                     n, bp, s->o->tta);
            for (i = 0; st == CNP_OK && i < n; i++) {
                size_t cell = (size_t)strip->row * in->cols + strip->cols[i0 + i];
                memcpy(s->probs + cell * L, bp + (size_t)i * L, L * sizeof(float));
                if (strip->partial[i0 + i])
                    st = note_partial(ctx, s, &cap, strip->row, strip->cols[i0 + i]);
            }
        }
        if (st != CNP_OK)
            break;
        if (!keep_going(s, (double)(strip->index + 1) / in->n_strips, NULL)) {
            st = cancelled(ctx, s);
            break;
        }
    }
    s->infer_s = s->m->batcher.infer_s - infer0;
    return st;
}

/* Why a scene has no chip to classify: smaller than one chip, or all
 * nodata. A warning for the result (caller frees), and *why for the
 * manifest (static). */
static char *nothing_classified(const scene_run *s, const char **why)
{
    const cnp_tiler_info *in = s->in;
    char *w = NULL;
    int rc;
    if (in->width < in->chip_px[0] || in->height < in->chip_px[1]) {
        *why = "smaller than one chip";
        rc = asprintf(&w, "%s: the scene (%d x %d pixels) is smaller than one chip (%.0f x %.0f "
                      "pixels): nothing classified; its masks hold 255 (not classified) and its "
                      "GeoJSON no feature. Use a smaller --chip (and a model trained for it) to "
                      "classify it", s->path, in->width, in->height, in->chip_px[0],
                      in->chip_px[1]);
    } else {
        *why = "all nodata";
        rc = asprintf(&w, "%s: no chip has %g%% or more valid pixels (the scene is all nodata, "
                      "transparent or masked: %s): nothing classified; its masks hold 255 (not "
                      "classified) and its GeoJSON no feature. Check its nodata value, or lower "
                      "--min-valid", s->path, 100.0 * s->o->min_valid, in->mask_kind);
    }
    return rc < 0 ? NULL : w;
}

/* Step 3: every chip is classified, positives counted. */
static cnp_status scene_classify(cnp_ctx *ctx, scene_run *s)
{
    const cnp_model_meta *meta = s->m->meta;
    size_t n, c;
    cnp_status st;
    int k;

    s->started = 1;
    if (!cnp_mul_size((size_t)s->in->rows, (size_t)s->in->cols, &s->cells) ||
        !cnp_mul_size(s->cells, (size_t)meta->n_labels, &n))
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: the chip grid is too large", s->path);
    s->probs = cnp_calloc(ctx, n, sizeof(float), "the chip grid");
    s->positives = cnp_calloc(ctx, (size_t)meta->n_labels, sizeof(long), "label counts");
    if (!s->probs || !s->positives)
        return CNP_ERR_NOMEM;
    for (c = 0; c < n; c++)
        s->probs[c] = NAN;
    if (!keep_going(s, 0.0, NULL))
        return cancelled(ctx, s);
    if ((st = classify_strips(ctx, s)) != CNP_OK ||
        (st = cnp_tiler_preview(ctx, s->t, &s->preview)) != CNP_OK)
        return st;
    cnp_tiler_stats_get(s->t, &s->ts);
    /* All obscured is an observation of clouds; none classified at all is a
     * scene done, with a warning (not a failure retried every night). */
    if (s->ts.chips == 0 && s->ts.obscured == 0) {
        char *w = nothing_classified(s, &s->none_why);
        if (!w)
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        s->res->warnings = CSLAddString(s->res->warnings, w);
        free(w);
    }
    for (c = 0; c < s->cells; c++) {
        for (k = 0; k < meta->n_labels; k++) {
            float p = s->probs[c * meta->n_labels + k];
            if (!isnan(p) && p >= meta->thresholds[k])
                s->positives[k]++;
        }
    }
    return CNP_OK;
}

static void scene_grid(const scene_run *s, cnp_grid *grid)
{
    const cnp_tiler_info *in = s->in;
    double x1 = in->scene_gt[0] + in->scene_gt[1] * in->width;
    double y1 = in->scene_gt[3] + in->scene_gt[5] * in->height;
    memset(grid, 0, sizeof *grid);
    grid->cols = in->cols;
    grid->rows = in->rows;
    memcpy(grid->gt, in->grid_gt, sizeof grid->gt);
    grid->crs_wkt = in->crs_wkt;
    /* the scene's footprint (north-up: the tiler refuses rotation) */
    grid->has_clip = 1;
    grid->clip[0] = fmin(in->scene_gt[0], x1);
    grid->clip[1] = fmin(in->scene_gt[3], y1);
    grid->clip[2] = fmax(in->scene_gt[0], x1);
    grid->clip[3] = fmax(in->scene_gt[3], y1);
}

/* Step 4: the rasters and the GeoJSON; the list of files written. */
static cnp_status scene_write(cnp_ctx *ctx, scene_run *s)
{
    const cnp_model_meta *meta = s->m->meta;
    const cnp_classify_options *o = s->o;
    cnp_grid grid;
    cnp_result res;
    cnp_raster_options ro;
    cnp_markers_info mi;
    cnp_status st;

    /* Everything is written in the scene's private folder, then moved into
     * place with the manifest last (scene_commit). */
    if (!(s->stage = cnp_private_dir_new(ctx, s->o->outdir, s->w.manifest)))
        return ctx->status;
    if ((st = cnp_scene_outputs_init(ctx, s->stage, s->name, &s->ws)) != CNP_OK)
        return st;
    scene_grid(s, &grid);
    res.n_labels = meta->n_labels;
    res.labels = (const char *const *)meta->labels;
    res.thresholds = meta->thresholds;
    res.is_marker = meta->is_marker;
    res.probs = s->probs;
    ro.format = o->format == CNP_CLASSIFY_COG ? CNP_FORMAT_COG : CNP_FORMAT_GTIFF;
    ro.float_probs = o->float_probs;
    ro.creation_options = (const char *const *)o->creation_options;
    ro.lossy_probs = o->lossy_probs;
    mi.scene = s->name;
    mi.model = meta->name;
    mi.run_utc = s->run_utc;
    mi.n_dropped = &s->n_dropped;
    s->t_write0 = cnp_now();
    if (!keep_going(s, 1.0, "writing probabilities"))
        return cancelled(ctx, s);
    if ((st = cnp_write_probs(ctx, s->ws.probs, &grid, &res, &ro)) != CNP_OK)
        return st;
    if (!keep_going(s, 1.0, "writing masks"))
        return cancelled(ctx, s);
    if ((st = cnp_write_masks(ctx, s->ws.masks, o->split_masks ? s->ws.split_dir : NULL, &grid,
                              &res, &ro)) != CNP_OK)
        return st;
    if (!keep_going(s, 1.0, "writing markers"))
        return cancelled(ctx, s);
    if ((st = cnp_write_markers(ctx, s->ws.markers, &grid, &res, &mi, &s->n_features)) != CNP_OK)
        return st;
    s->t_write = cnp_now();

    s->written = CSLAddString(s->written, s->ws.probs);
    if (exists(s->ws.probs_qml))
        s->written = CSLAddString(s->written, s->ws.probs_qml);
    s->written = CSLAddString(s->written, s->ws.masks);
    if (exists(s->ws.masks_qml))
        s->written = CSLAddString(s->written, s->ws.masks_qml);
    s->written = CSLAddString(s->written, s->ws.markers);
    if (o->split_masks)
        cnp_scene_outputs_list_split(s->ws.split_dir, &s->written);
    if (!keep_going(s, 1.0, "writing the manifest"))
        return cancelled(ctx, s);
    return CNP_OK;
}

/* Step 4b: NAME.quicklook.png (+ .pgw, .aux.xml) and NAME.stac.json,
 * appended to s->written so that the manifest lists them. */
static cnp_status scene_pictures(cnp_ctx *ctx, scene_run *s)
{
    const cnp_model_meta *meta = s->m->meta;
    const char **labels = NULL;
    long *counts = NULL;
    cnp_quicklook_params q;
    cnp_stac_item_params sp;
    char *collection = NULL;
    cnp_status st = CNP_OK;
    int k, n = 0;

    if (s->o->no_quicklook)
        return CNP_OK;
    if (!keep_going(s, 1.0, "writing the quick-look"))
        return cancelled(ctx, s);
    labels = calloc((size_t)meta->n_labels + 1, sizeof *labels);
    counts = calloc((size_t)meta->n_labels + 1, sizeof *counts);
    collection = cnp_stac_collection_id(ctx, s->o->outdir);
    if (!labels || !counts || !collection) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (k = 0; k < meta->n_labels; k++) {
        if (!meta->is_marker[k])
            continue;
        labels[n] = meta->labels[k];
        counts[n++] = s->positives[k];
    }
    memset(&q, 0, sizeof q);
    /* The dataset the tiler read (a product's subdataset, not the .SAFE
     * folder) and the bands resolved in it. */
    q.scene = s->pr ? s->pr->dataset : s->path;
    q.n_bands = meta->n_channels;
    q.bands = s->pr ? s->pr->bands : s->m->bands;
    q.markers = s->ws.markers;
    q.alerts = cnp_classify_result_output(s->res, "alerts") ? s->ws.alerts : NULL;
    q.name = s->name;
    q.date = s->res->date;
    q.model = meta->name;
    q.n_labels = n;
    q.labels = labels;
    q.counts = counts;
    q.size = CNP_QUICKLOOK_SIZE;
    q.preview = s->preview;
    if ((st = cnp_quicklook_write(ctx, s->ws.quicklook, &q, NULL)) != CNP_OK)
        goto cleanup;
    s->written = CSLAddString(s->written, s->ws.quicklook);
    s->written = CSLAddString(s->written, s->ws.quicklook_pgw);
    s->written = CSLAddString(s->written, s->ws.quicklook_aux);
    memset(&sp, 0, sizeof sp);
    sp.scene = s->pr ? s->pr->dataset : s->path;
    sp.name = s->name;
    sp.date = s->res->date;
    sp.run_utc = s->run_utc;
    sp.model = meta->name;
    sp.collection = collection;
    sp.probs = s->ws.probs;
    sp.masks = s->ws.masks;
    sp.markers = s->ws.markers;
    sp.quicklook = s->ws.quicklook;
    sp.manifest = s->ws.manifest;
    sp.alerts = q.alerts;
    sp.n_labels = n;
    sp.labels = labels;
    sp.counts = counts;
    if ((st = cnp_stac_item_write(ctx, s->ws.stac, &sp)) != CNP_OK)
        goto cleanup;
    s->written = CSLAddString(s->written, s->ws.stac);
cleanup:
    free(collection);
    free(labels);
    free(counts);
    return st;
}

/* With --record-failures, a scene that failed leaves NAME.failed.json for
 * `canopy report`; one that succeeds (or is up to date) removes it (only a
 * file that is such a record). An interrupted scene, or one whose name is
 * another scene's, records nothing. Best effort: the scene's own error is
 * what counts. */
static void scene_record_outcome(const scene_run *s, const cnp_ctx *ctx, cnp_status st)
{
    static const char *const kinds[] = {"ok", "usage", "io", "format", "unsupported", "shape",
                                        "nomem", "cancelled", "internal"};
    char *name = NULL;

    if (!s->o->outdir)
        return;
    if (st == CNP_OK) {
        if (s->name)
            cnp_failure_remove(s->o->outdir, s->name);
        return;
    }
    if (!s->o->record_failures || st == CNP_ERR_CANCELLED ||
        (unsigned)st >= sizeof kinds / sizeof kinds[0])
        return;
    /* Named and its outputs known: that name. Not yet named (the product
     * could not be opened): the file's name. Named but no outputs: the name
     * is another scene's, whose record this must not replace. */
    if (s->name && s->w.manifest)
        name = strdup(s->name);
    else if (!s->name)
        name = cnp_classify_scene_name(s->path);
    if (name)
        (void)cnp_failure_write(NULL, s->o->outdir, name, s->path, kinds[st], ctx->msg);
    free(name);
}

/* Step: with --alerts DIR, the scene's probabilities added to the alert
 * state (canopy/alerts: lock, atomic, idempotent); its changes beside the
 * outputs as NAME.alerts.geojson. The probabilities are read from, and the
 * changes written to, `at`: the staged outputs of a classified scene, the
 * final ones of a scene up to date. */
static cnp_status scene_alerts(cnp_ctx *ctx, scene_run *s, const cnp_scene_outputs *at)
{
    cnp_alerts_options ao;
    cnp_alerts_scene sc;
    cnp_alerts_result *ar = NULL;
    cnp_classify_result *r = s->res;
    cnp_status st;

    if (!s->o->alerts_dir)
        return CNP_OK;
    memset(&ao, 0, sizeof ao);
    ao.dir = s->o->alerts_dir;
    ao.grid_ref = s->o->alerts_grid;
    ao.baseline = s->o->alerts_baseline;
    ao.high = s->o->alerts_high;
    ao.dismiss = s->o->alerts_dismiss;
    memset(&sc, 0, sizeof sc);
    sc.probs_path = at->probs;
    sc.scene_id = s->name;
    sc.day = s->date.day;
    sc.changes_path = at->alerts;
    st = cnp_alerts_update(ctx, &ao, &sc, &ar);
    if (st == CNP_OK) {
        r->alerts = 1;
        r->alerts_new = ar->n_new;
        r->alerts_confirmed = ar->n_confirmed;
        r->alerts_dismissed = ar->n_dismissed;
        r->alerts_area_m2 = ar->area_new_m2;
        r->alerts_labels_new = ar->labels_new;
        ar->labels_new = NULL;
        r->alerts_summary = ar->summary;
        ar->summary = NULL;
        r->alerts_state = ar->state_dir;
        ar->state_dir = NULL;
        if (ar->changes_path && (!cnp_classify_result_add_output(r, "alerts", s->w.alerts) ||
                                 (at != &s->w &&
                                  !(s->written = CSLAddString(s->written, ar->changes_path)))))
            st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    cnp_alerts_result_free(ar);
    return st;
}

/* Step 5: the manifest, staged last. */
static cnp_status scene_manifest(cnp_ctx *ctx, scene_run *s)
{
    const cnp_model_meta *meta = s->m->meta;
    const cnp_tiler_info *in = s->in;
    cnp_run_results rr;

    memset(&rr, 0, sizeof rr);
    rr.scene_id = s->name;
    rr.model_name = meta->name;
    rr.model_version = meta->version;
    rr.run_utc = s->run_utc;
    rr.rows = in->rows;
    rr.cols = in->cols;
    rr.grid_gt = in->grid_gt;
    rr.pixel_m = in->pixel_m;
    rr.chip_px = in->chip_px;
    rr.stride_px = in->stride_px;
    rr.resampling = in->resampling;
    rr.mask_kind = in->mask_kind;
    rr.classified = s->ts.chips;
    rr.partial = s->n_partial;
    rr.skipped = (long)s->cells - s->ts.chips;
    rr.obscured = s->ts.obscured;
    rr.partial_cells = s->partial_cells;
    rr.positives = s->positives;
    rr.marker_features = s->n_features;
    rr.outputs = (const char *const *)s->written;
    rr.date = s->res->date;
    rr.date_source = s->res->date_source;
    rr.alerts_summary = s->res->alerts_summary;
    rr.alerts_state = s->res->alerts_state;
    rr.threads = s->m->threads;
    rr.open_s = s->res->open_s = s->t_open - s->t_start;
    rr.hash_s = s->res->hash_s = s->t_hash - s->t_open;
    rr.read_s = s->res->read_s = s->ts.read_s;
    rr.read_cpu_s = s->ts.read_cpu_s;
    rr.wait_s = s->res->wait_s = s->ts.wait_s;
    rr.infer_s = s->res->infer_s = s->infer_s;
    rr.write_s = s->res->write_s = s->t_write - s->t_write0;
    rr.total_s = s->res->total_s = cnp_now() - s->t_start;
    rr.none_classified = s->none_why;
    return cnp_manifest_write(ctx, s->man, &rr, s->ws.manifest);
}

/* Step 6: the staged outputs into place, the manifest last. */
static cnp_status scene_commit(cnp_ctx *ctx, scene_run *s)
{
    char **staged = CSLDuplicate(s->written);
    cnp_status st;
    staged = CSLAddString(staged, s->ws.manifest);
    st = cnp_scene_outputs_commit(ctx, &s->w, s->stage, (const char *const *)staged);
    CSLDestroy(staged);
    return st;
}

static int result_outputs(scene_run *s)
{
    cnp_classify_result *r = s->res;
    int ok = cnp_classify_result_add_output(r, "probs", s->w.probs) &&
             cnp_classify_result_add_output(r, "masks", s->w.masks) &&
             cnp_classify_result_add_output(r, "markers", s->w.markers) &&
             cnp_classify_result_add_output(r, "manifest", s->w.manifest);
    if (ok && s->o->split_masks)
        ok = cnp_classify_result_add_output(r, "split_masks", s->w.split_dir);
    if (ok && !s->o->no_quicklook && exists(s->w.quicklook))
        ok = cnp_classify_result_add_output(r, "quicklook", s->w.quicklook);
    if (ok && !s->o->no_quicklook && exists(s->w.stac))
        ok = cnp_classify_result_add_output(r, "stac", s->w.stac);
    return ok;
}

static int result_labels(scene_run *s, const long *positives)
{
    const cnp_model_meta *meta = s->m->meta;
    cnp_classify_result *r = s->res;
    int k;
    r->n_labels = meta->n_labels;
    r->labels = CSLDuplicate(meta->labels);
    r->positives = calloc((size_t)meta->n_labels + 1, sizeof(long));
    if (!r->labels || !r->positives)
        return 0;
    for (k = 0; positives && k < meta->n_labels; k++)
        r->positives[k] = positives[k];
    return 1;
}

/* Step 7: the result's counts and its line for people. */
static cnp_status scene_summary(cnp_ctx *ctx, scene_run *s)
{
    cnp_classify_result *r = s->res;
    const cnp_model_meta *meta = s->m->meta;
    char *line = NULL, *more;
    int k, first = 1, ok;

    r->chips_total = (long)s->cells;
    r->chips_classified = s->ts.chips;
    r->chips_obscured = s->ts.obscured;
    r->chips_nodata = (long)s->cells - s->ts.chips - s->ts.obscured;
    r->chips_partial = s->n_partial;
    r->marker_features = s->n_features;
    r->marker_chips_dropped = s->n_dropped;
    if (!result_outputs(s) || !result_labels(s, s->positives))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (s->n_dropped > 0 &&
        asprintf(&r->warning, "%s: %ld marker chip%s left out of %s: %s corner has no "
                 "longitude/latitude (off the globe, or outside the scene CRS's area of use); "
                 "the masks still hold %s", s->path, s->n_dropped, s->n_dropped == 1 ? "" : "s",
                 s->w.markers, s->n_dropped == 1 ? "its" : "a",
                 s->n_dropped == 1 ? "it" : "them") < 0) {
        r->warning = NULL;
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    ok = asprintf(&line, "%s: %ld chips (%ld partial, %ld not classified%s) in %.1f s, %.1f "
                  "chips/s (inference alone %.1f chips/s); %d marker region%s; positive chips:",
                  s->path, s->ts.chips, s->n_partial, r->chips_nodata + r->chips_obscured,
                  s->pr->has_qmask ? CPLSPrintf(", of which %ld obscured by %s",
                                                r->chips_obscured, s->pr->qmask.kind) : "",
                  r->total_s,
                  s->ts.chips / (r->total_s > 0 ? r->total_s : 1),
                  s->infer_s > 0 ? s->ts.chips / s->infer_s : 0.0, s->n_features,
                  s->n_features == 1 ? "" : "s") >= 0;
    for (k = 0; ok && k < meta->n_labels; k++) {
        if (!s->positives[k])
            continue;
        ok = asprintf(&more, "%s%s %s %ld", line, first ? "" : ",", meta->labels[k],
                      s->positives[k]) >= 0;
        free(line);
        line = ok ? more : NULL;
        first = 0;
    }
    if (ok) {
        ok = asprintf(&more, "%s%s -> %s/%s.*", line, first ? " none" : "", s->o->outdir,
                      s->name) >= 0;
        free(line);
        line = ok ? more : NULL;
    }
    if (!ok)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    r->summary = line;
    return CNP_OK;
}

/* A skipped scene: counts as its manifest records them. */
static cnp_status skipped_summary(cnp_ctx *ctx, scene_run *s)
{
    cnp_classify_result *r = s->res;
    json_object *root = json_object_from_file(s->w.manifest), *chips, *v, *pos;
    int k;

    r->skipped = 1;
    r->reason = "up to date";
    if (!result_outputs(s) || !result_labels(s, NULL) ||
        asprintf(&r->summary, "%s: up to date (%s)", s->path, s->w.manifest) < 0) {
        r->summary = NULL;
        json_object_put(root);
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    if (root && json_object_object_get_ex(root, "chips", &chips)) {
        if (json_object_object_get_ex(chips, "cells", &v))
            r->chips_total = (long)json_object_get_int64(v);
        if (json_object_object_get_ex(chips, "classified", &v))
            r->chips_classified = (long)json_object_get_int64(v);
        if (json_object_object_get_ex(chips, "partial", &v))
            r->chips_partial = (long)json_object_get_int64(v);
        if (json_object_object_get_ex(chips, "obscured", &v))
            r->chips_obscured = (long)json_object_get_int64(v);
        r->chips_nodata = r->chips_total - r->chips_classified - r->chips_obscured;
    }
    if (root && json_object_object_get_ex(root, "marker_features", &v))
        r->marker_features = json_object_get_int(v);
    if (root && json_object_object_get_ex(root, "positive_chips", &pos))
        for (k = 0; k < r->n_labels; k++)
            if (json_object_object_get_ex(pos, r->labels[k], &v))
                r->positives[k] = (long)json_object_get_int64(v);
    json_object_put(root);
    return CNP_OK;
}

static void scene_run_free(scene_run *s)
{
    cnp_manifest_free(s->man);
    cnp_tiler_close(s->t);
    cnp_preview_free(s->preview);
    cnp_product_free(s->pr); /* after the tiler: it may own the mask the tiler read */
    free(s->product_json);
    cnp_scene_outputs_free(&s->w);
    cnp_scene_outputs_free(&s->ws);
    cnp_private_dir_remove(s->stage); /* empty after a commit */
    free(s->stage);
    CSLDestroy(s->written);
    free(s->partial_cells);
    free(s->positives);
    free(s->probs);
    free(s->name);
}

cnp_status cnp_classify_scene(const cnp_classify_options *o, cnp_classify_model *m,
                              const char *path, cnp_progress_fn progress, void *user,
                              cnp_classify_result **out)
{
    cnp_ctx ctx;
    scene_run s;
    cnp_status st;
    int up_to_date = 0;

    memset(&s, 0, sizeof s);
    cnp_ctx_clear(&ctx);
    s.o = o;
    s.m = m;
    s.path = path;
    s.progress = progress;
    s.user = user;
    s.t_start = cnp_now();
    utc_now(s.run_utc, sizeof s.run_utc);
    *out = s.res = cnp_classify_result_new(path);
    if (!s.res)
        return CNP_ERR_NOMEM;
    if ((st = scene_open(&ctx, &s)) != CNP_OK ||
        (st = scene_identity(&ctx, &s, &up_to_date)) != CNP_OK)
        goto cleanup;
    if (up_to_date) {
        if ((st = skipped_summary(&ctx, &s)) == CNP_OK)
            st = scene_alerts(&ctx, &s, &s.w);
        goto cleanup;
    }
    /* From here on, the scene's old outputs are stale. */
    if ((st = scene_classify(&ctx, &s)) != CNP_OK || (st = scene_write(&ctx, &s)) != CNP_OK ||
        (st = scene_alerts(&ctx, &s, &s.ws)) != CNP_OK ||
        (st = scene_pictures(&ctx, &s)) != CNP_OK || (st = scene_manifest(&ctx, &s)) != CNP_OK ||
        (st = scene_commit(&ctx, &s)) != CNP_OK)
        goto cleanup;
    st = scene_summary(&ctx, &s);
cleanup:
    if (st != CNP_OK && s.started)
        cnp_scene_outputs_remove_listed(&s.w, NULL);
    scene_record_outcome(&s, &ctx, st);
    s.res->status = st;
    if (st != CNP_OK) {
        char *msg = strdup(ctx.msg[0] ? ctx.msg : cnp_status_name(st));
        if (msg) {
            free(s.res->message);
            s.res->message = msg;
        }
    }
    scene_run_free(&s);
    return st;
}
