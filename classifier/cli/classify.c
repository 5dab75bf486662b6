/* classify.c -- `canopy classify`: argv -> cnp_classify_options, the
 * library's scene pipeline (canopy/classify.h) over each scene, progress
 * (GDAL's terminal ticks, or the JSONL event stream), summary lines and the
 * exit status. No pipeline logic here. */
#define _GNU_SOURCE
#include "config.h"
#include "canopy/classify.h"
#include "cli/cli.h"
#include "cli/events.h"
#include "engine/engine.h"
#include "scene/scene.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "classify"
/* GDAL's block cache when the user sets none: enough for a strip of the
 * widest scenes, small enough that memory does not grow with the scene. */
#define DEFAULT_CACHE_BYTES ((GIntBig)256 << 20)

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* How a run reports: the options' progress mode resolved. */
typedef struct report {
    int jsonl;                 /* the event stream on stdout */
    int ticks;                 /* GDAL's terminal progress on stdout */
    int quiet;
    FILE *human;               /* summary lines: stdout, or stderr with jsonl */
    /* the scene in progress */
    int index, count;
    const char *path;
    int last_tick;             /* ticks printed (0..40), -1 none */
    int line_open;             /* a tick line was started and not finished */
    int last_pct;              /* last JSONL progress percent, -1 none */
} report;

/* Over 120 lines: it is the help text, one string, not logic. */
static void print_help(FILE *f)
{
    fputs(
"Usage: canopy classify [-m MODEL] -o OUTDIR [OPTIONS] SCENE...\n"
"\n"
"Classifies whole georeferenced scenes chip by chip and writes, for each\n"
"scene NAME (its file name without extension), into OUTDIR:\n"
"  NAME.probs.tif         per-label probabilities on the chip grid (band per\n"
"                         label, nodata where a chip was not classified)\n"
"  NAME.masks.tif         1 where a label's probability >= its threshold\n"
"  NAME.markers.geojson   deforestation markers: one polygon per connected\n"
"                         region of positive chips per marker label (EPSG:4326)\n"
"  NAME.manifest.json     inputs (size, mtime, SHA-256), model hash, parameters,\n"
"                         per-label positive chips, timings, canopy version\n"
"  NAME.quicklook.png     the scene with the markers outlined, legend and scale\n"
"                         bar (georeferenced: .pgw and .aux.xml beside it)\n"
"  NAME.stac.json         STAC 1.0 Item of the scene's outputs\n"
"  NAME.failed.json       with --record-failures, for a scene that failed: its\n"
"                         error, for canopy report (removed when it succeeds)\n"
"  (and .qml styles for QGIS). A scene's files are written in a private folder\n"
"in OUTDIR and moved into place when all are complete, the manifest last; a\n"
"scene that fails, or a run killed, leaves none of its outputs (the next run\n"
"removes what a killed run left). A scene whose manifest shows the same inputs,\n"
"model and parameters is skipped (\"up to date\"). A scene with nothing to\n"
"classify (all nodata, smaller than one chip) is done with a warning.\n"
"\n"
"SCENE is any raster GDAL reads (GeoTIFF, COG, VRT, JP2, /vsicurl/, /vsizip/),\n"
"any data type, any CRS (north-up), a Sentinel-2 L1C/L2A product (its .SAFE\n"
"folder, its .zip or its MTD_MSIL*.xml; NAME is the product's name), a\n"
"PlanetScope scene file (..._AnalyticMS_SR.tif, _AnalyticMS.tif, _Visual.tif), a\n"
"folder (every raster and .SAFE product in it; UDM2 files are masks, not\n"
"scenes), or @LIST (a text file of scenes, one per line, '#' comments; relative\n"
"paths are taken from the current folder). A scene named -x.tif is given as\n"
"./-x.tif or after --.\n"
"\n"
"Products: the model's canopy.bands may name bands (\"red\", \"nir\", \"B04\"):\n"
"they are found by the product's band names, GDAL's colour interpretation or\n"
"band descriptions (Sentinel-2: the finest resolution holding them all, 10 m\n"
"for B2/B3/B4/B8). Values become reflectance before the model's own scaling:\n"
"Sentinel-2 (DN + BOA_ADD_OFFSET or RADIO_ADD_OFFSET) / QUANTIFICATION_VALUE\n"
"from the product metadata (offsets from processing baseline 04.00), PlanetScope\n"
"AnalyticMS_SR DN / 10000; --scale-range is then in reflectance (e.g. 0,0.3).\n"
"Quality masks mark pixels as unusable: Sentinel-2 L2A SCL, L1C MSK_CLASSI\n"
"(or, before baseline 04.00, the MSK_CLOUDS_B00.gml polygons rasterised),\n"
"the PlanetScope UDM2 beside the scene (<id>_3B_udm2.tif: usable where band 1\n"
"'clear' is 1). Chips with less than --min-valid usable pixels are \"obscured\":\n"
"not classified (nodata in the outputs) and counted apart in the summary, the\n"
"manifest and the event stream. canopy info MODEL SCENE shows how a scene is\n"
"read.\n"
"\n"
"Options:\n"
"  -m, --model MODEL     ONNX model (default: $CANOPY_MODEL, else the demo model)\n"
"  -o, --output OUTDIR   output folder (created when missing)\n"
"  --chip N              chip side in pixels at the model's GSD (default 256);\n"
"                        each chip is resized to the model input size on read\n"
"  --stride N            grid step in the same pixels (default: the chip; smaller\n"
"                        overlaps). The output grid has one cell per step.\n"
"  --bands LIST          scene bands fed to the model, e.g. 3,2,1 (default: the\n"
"                        model's canopy.bands)\n"
"  --scale-range A,B     value v -> (v - A) / (B - A) before the model's\n"
"                        mean/std (default: the model's canopy.scale); on a\n"
"                        product, v is reflectance (e.g. 0,0.3)\n"
"  --gsd M|native        read chips at M metres per pixel (default: the model's\n"
"                        canopy.gsd_m; without one, the scene's own resolution);\n"
"                        native reads at the scene's resolution. Within 1% of the\n"
"                        target counts as equal; more than 4x finer or coarser is\n"
"                        refused.\n"
"  --min-valid F         skip chips with less than this share of valid pixels\n"
"                        (not nodata, alpha 0 or masked; default 0.5), and, as\n"
"                        obscured, chips with less than this share of usable\n"
"                        pixels (valid and clear in the quality mask)\n"
"  --mask FILE|none      quality mask instead of the product's own: a UDM2 (8\n"
"                        bands) or a 1-band raster, 0 = unusable; none: no mask\n"
"  --scl-unusable LIST   Sentinel-2 SCL classes that are unusable (default\n"
"                        0,1,3,8,9,10: no data, saturated, cloud shadow, cloud\n"
"                        medium/high probability, thin cirrus)\n"
"  --threshold LABEL=P   decision threshold for a label (repeatable)\n"
"  --markers LIST        marker labels written to GeoJSON, comma-separated, or\n"
"                        'none' (default: the model's)\n"
"  --tta                 average over the 8 rotations/flips of each chip\n"
"  --threads N           inference threads (default: all cores)\n"
"  --precision P         fp32 (default); bf16: convolutions in bf16 with fp32\n"
"                        accumulation on CPUs with AVX512_BF16; int8: int8 on\n"
"                        CPUs with AVX512_VNNI, for a model `canopy calibrate`\n"
"                        wrote (fp32 with a message elsewhere); in the manifest\n"
"  --probs-type T        Byte (0..254, scale 1/255; default) or Float32\n"
"  --split-masks         also write OUTDIR/NAME.masks/LABEL.tif, one per label\n"
"  -of GTiff|COG         raster format (default GTiff)\n"
"  -co NAME=VALUE        creation option for the rasters (repeatable); lossy ones\n"
"                        (COMPRESS=JPEG, WEBP, LERC with MAX_Z_ERROR > 0, ...) are\n"
"                        refused: the masks must match the GeoJSON\n"
"  --lossy-probs         accept lossy -co for the probabilities only (the masks\n"
"                        stay lossless); recorded in the manifest\n"
"  --config KEY VALUE    GDAL configuration option (repeatable)\n"
"  --progress            GDAL's progress even when stdout is not a terminal\n"
"  --progress=jsonl      the JSONL event stream on stdout instead: one JSON\n"
"                        object per line, versioned (\"v\": 1; see the README),\n"
"                        for programs; messages for people stay on stderr\n"
"  --no-quicklook        write no quick-look and no STAC Item\n"
"  --record-failures     a scene that fails leaves NAME.failed.json (status and\n"
"                        message) for canopy report; without it, nothing\n"
"  --list                classify nothing: list the scenes the inputs expand to\n"
"                        (with --progress=jsonl as \"scene\" events)\n"
"  --alerts DIR          monitoring: add each scene to the alert state folder DIR\n"
"                        at its acquisition date (alerts of new markers over time,\n"
"                        see 'canopy alerts --help'); writes NAME.alerts.geojson\n"
"                        and prints one alerts line per scene on stderr\n"
"  --alerts-grid REF.tif grid of a new alert state (default: the first scene's)\n"
"  --alerts-baseline N   clear observations without a label before an alert (2)\n"
"  --alerts-high P       a new alert at probability >= P is high at once (0.9)\n"
"  --alerts-dismiss M    clear disagreements that dismiss an unconfirmed alert (2)\n"
"  --date YYYY-MM-DD     acquisition date of scenes whose metadata and file name\n"
"                        have none\n"
"  -q, --quiet           no progress and no summary lines\n"
"  -h, --help            this help\n"
"\n"
"Chips lie on a regular grid anchored at the scene's top-left pixel. Chips whose\n"
"size differs from the model's input (another --chip, or the scene's ground\n"
"sampling distance differs from the target) are resized alone, as canopy\n"
"predict resizes a chip file: GDAL's bilinear resampling, in floating point;\n"
"degrees are converted to metres at the scene centre. The last row and column\n"
"of chips may run past the scene: they are classified from their valid part\n"
"(the rest set to the channel mean) and listed as partial in the manifest. The\n"
"scene is read in strips by a reader thread while the previous strip is\n"
"classified, so memory does not grow with the scene. Without GDAL_CACHEMAX\n"
"(environment or --config), GDAL's block cache is limited to 256 MB.\n"
"\n"
"Progress: GDAL's 0...10...100 on a terminal (or with --progress), after the\n"
"scene's path and, in a batch, its number: \"[2/5] PATH: 0...10...100 - done.\";\n"
"one line per scene otherwise.\n"
"\n"
"Exit status: 0 every scene done (or up to date); 1 a model, scene or output\n"
"problem (the other scenes are still done); 2 usage error.\n", f);
}

/* GDAL's terminal progress ("0...10...20...100 - done.", a tick per 2.5 %)
 * with its state here: GDALTermProgress keeps it in statics that it resets
 * only past 97.5 %, so after a scene that failed part way the next scene's
 * line would start at the old tick. */
static void term_progress(report *r, double done)
{
    int tick = done >= 1.0 ? 40 : done > 0.0 ? (int)(done * 40.0) : 0, was = r->last_tick;
    if (!r->line_open && r->last_tick < 0) {
        if (r->count > 1)
            printf("[%d/%d] ", r->index, r->count);
        printf("%s: ", r->path);
        r->line_open = 1;
    }
    while (r->last_tick < tick) {
        r->last_tick++;
        if (r->last_tick % 4 == 0)
            printf("%d", r->last_tick / 4 * 10);
        else
            putchar('.');
    }
    if (tick == 40 && was < 40) {
        printf(" - done.\n");
        r->line_open = 0;
    }
    fflush(stdout);
}

/* The library's progress callback: ticks or JSONL events; cancels once a
 * signal came. */
static int progress_cb(double done, const char *msg, void *user)
{
    report *r = user;
    (void)msg;
    if (r->ticks)
        term_progress(r, done);
    if (r->jsonl) {
        int pct = (int)(done * 100.0);
        if (pct > r->last_pct) {
            r->last_pct = pct;
            cnp_ev_progress(r->index, r->path, done);
        }
    }
    return !interrupted;
}

static void report_init(report *r, const cnp_classify_options *o)
{
    memset(r, 0, sizeof *r);
    r->jsonl = o->progress == CNP_PROGRESS_JSONL;
    r->quiet = o->quiet;
    r->ticks = !r->jsonl && !o->quiet &&
               (o->progress == CNP_PROGRESS_TERM || isatty(STDOUT_FILENO));
    r->human = r->jsonl ? stderr : stdout;
}

/* A failure: the message on stderr and, in JSONL, as scene_error. */
static void report_error(const report *r, int index, const char *path, cnp_status st,
                         const char *msg)
{
    fprintf(stderr, "canopy %s: %s\n", CMD, msg && *msg ? msg : cnp_status_name(st));
    if (r->jsonl)
        cnp_ev_scene_error(index, path, st, msg && *msg ? msg : cnp_status_name(st));
}

/* A failure before any scene: run_error in JSONL, then the exit status. */
static int run_error(const report *r, const cnp_ctx *ctx, int rc)
{
    if (rc == CNP_EXIT_USAGE)
        cnp_cli_usage_error(CMD, "%s", ctx->msg);
    else
        cnp_cli_report(CMD, ctx);
    if (r->jsonl)
        cnp_ev_run_error(ctx->status, ctx->msg, rc);
    return rc;
}

/* --list: the inputs expanded, nothing classified. */
static int list_scenes(const report *r, const cnp_scene_list *l, double t0)
{
    int i;
    for (i = 0; i < l->n_errors; i++)
        report_error(r, 0, l->error_inputs[i], l->error_status[i], l->error_messages[i]);
    for (i = 0; i < l->n; i++) {
        if (r->jsonl)
            cnp_ev_scene(l->paths[i], l->names[i]);
        else
            printf("%s\n", l->paths[i]);
    }
    if (r->jsonl)
        cnp_ev_run_done(l->n, 0, 0, l->n_errors, cnp_now() - t0,
                        l->n_errors ? CNP_EXIT_FAILURE : CNP_EXIT_OK, 0);
    return l->n_errors ? CNP_EXIT_FAILURE : CNP_EXIT_OK;
}

/* Classifies scene i of the list; returns 0 failed, 1 done, 2 skipped. */
static int run_scene(report *r, const cnp_classify_options *o, cnp_classify_model *m,
                     const cnp_scene_list *l, int i)
{
    cnp_classify_result *res = NULL;
    double t0 = cnp_now();
    cnp_status st;
    int outcome;

    r->index = i + 1;
    r->count = l->n;
    r->path = l->paths[i];
    r->last_tick = -1;
    r->line_open = 0;
    r->last_pct = -1;
    if (r->jsonl)
        cnp_ev_scene_start(r->index, r->count, r->path, l->names[i]);
    st = cnp_classify_scene(o, m, l->paths[i], progress_cb, r, &res);
    if (r->line_open)
        printf("\n");
    for (int k = 0; res && res->warnings && res->warnings[k]; k++) {
        fprintf(stderr, "canopy %s: warning: %s\n", CMD, res->warnings[k]);
        if (r->jsonl)
            cnp_ev_warning(r->index, r->path, res->warnings[k]);
    }
    if (st != CNP_OK) {
        report_error(r, r->index, r->path, st, res ? res->message : NULL);
        outcome = 0;
    } else {
        if (res->warning) {
            fprintf(stderr, "canopy %s: warning: %s\n", CMD, res->warning);
            if (r->jsonl)
                cnp_ev_warning(r->index, r->path, res->warning);
        }
        if (!r->quiet && res->summary)
            fprintf(r->human, "%s\n", res->summary);
        if (!r->quiet && res->alerts && res->alerts_summary)
            fprintf(stderr, "%s (%s): alerts: %s\n", r->path, res->date ? res->date : "",
                    res->alerts_summary);
        if (r->jsonl)
            cnp_ev_scene_done(r->index, res, cnp_now() - t0);
        outcome = res->skipped ? 2 : 1;
    }
    fflush(stdout);
    cnp_classify_result_free(res);
    return outcome;
}

/* The model, the output folder, the scenes. Returns the exit status. */
static int run(report *r, cnp_classify_options *o, double t0)
{
    cnp_classify_model *m = NULL;
    cnp_scene_list *l = NULL;
    struct sigaction sa, old_int, old_term;
    int rc, i, failed = 0, done = 0, up = 0;
    cnp_ctx ctx;

    cnp_ctx_clear(&ctx);
    if (cnp_classify_model_load(&ctx, o, &m) != CNP_OK) {
        rc = run_error(r, &ctx, ctx.status == CNP_ERR_USAGE ? CNP_EXIT_USAGE : CNP_EXIT_FAILURE);
        goto cleanup;
    }
    if (cnp_cli_precision_fallback(o->precision, cnp_classify_model_precision(m))) {
        const char *w = cnp_cli_precision_fallback(o->precision, cnp_classify_model_precision(m));
        fprintf(stderr, "canopy: %s\n", w);
        if (r->jsonl)
            cnp_ev_warning(0, NULL, w);
    }
    if (cnp_classify_outdir_make(&ctx, o) != CNP_OK ||
        cnp_scene_list_new(&ctx, (const char *const *)o->inputs, &l) != CNP_OK) {
        rc = run_error(r, &ctx, CNP_EXIT_FAILURE);
        goto cleanup;
    }
    if (r->jsonl)
        cnp_ev_run_start(o->model, l->n, o->outdir, cnp_classify_model_precision(m));
    /* A bad folder or list is a failure of its own; the rest still run. */
    for (i = 0; i < l->n_errors; i++)
        report_error(r, 0, l->error_inputs[i], l->error_status[i], l->error_messages[i]);
    failed = l->n_errors;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    for (i = 0; i < l->n && !interrupted; i++) {
        int outcome = run_scene(r, o, m, l, i);
        failed += outcome == 0;
        done += outcome == 1;
        up += outcome == 2;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    rc = failed || interrupted ? CNP_EXIT_FAILURE : CNP_EXIT_OK;
    if (interrupted)
        fprintf(stderr, "canopy %s: interrupted after %d scene%s; the scene in progress left no "
                "outputs\n", CMD, done, done == 1 ? "" : "s");
    if (!r->quiet && l->n > 1)
        fprintf(r->human, "canopy %s: %d scene%s classified, %d up to date, %d failed\n", CMD,
                done, done == 1 ? "" : "s", up, failed + (interrupted != 0));
    if (r->jsonl)
        cnp_ev_run_done(l->n, done, up, failed, cnp_now() - t0, rc, interrupted != 0);
cleanup:
    fflush(stdout);
    cnp_scene_list_free(l);
    cnp_classify_model_free(m);
    return rc;
}

int cnp_cmd_classify(int argc, char **argv)
{
    cnp_classify_options *o;
    report r;
    cnp_ctx ctx;
    double t0 = cnp_now();
    int rc, i;

    cnp_ctx_clear(&ctx);
    o = cnp_classify_options_new(argc - 1, argv + 1, &ctx);
    if (!o) {
        cnp_classify_options tmp;
        memset(&tmp, 0, sizeof tmp);
        for (i = 1; i < argc; i++)   /* the stream asked for, even on a usage error */
            if (!strcmp(argv[i], "--progress=jsonl"))
                tmp.progress = CNP_PROGRESS_JSONL;
        report_init(&r, &tmp);
        return run_error(&r, &ctx, ctx.status == CNP_ERR_USAGE ? CNP_EXIT_USAGE
                                                                : CNP_EXIT_FAILURE);
    }
    cnp_cli_precision_env(&o->no_bf16, &o->no_int8);
    if (o->help) {
        print_help(stdout);
        cnp_classify_options_free(o);
        return CNP_EXIT_OK;
    }
    report_init(&r, o);
    /* Environment and GDAL settings: the program's business, not the library's. */
    if (!o->model && cnp_classify_options_set_model(&ctx, o, cnp_cli_default_model()) != CNP_OK)
        return run_error(&r, &ctx, CNP_EXIT_FAILURE);
    if (o->threads <= 0)
        o->threads = cnp_cli_default_threads();
    for (i = 0; o->config && o->config[i]; i++) {
        char *key = NULL;
        const char *value = CPLParseNameValue(o->config[i], &key);
        if (key)
            CPLSetConfigOption(key, value);
        CPLFree(key);
    }
    cnp_gdal_init();
    if (!CPLGetConfigOption("GDAL_CACHEMAX", NULL))
        GDALSetCacheMax64(DEFAULT_CACHE_BYTES);

    if (o->list_only) {
        cnp_scene_list *l = NULL;
        if (cnp_scene_list_new(&ctx, (const char *const *)o->inputs, &l) != CNP_OK)
            rc = run_error(&r, &ctx, CNP_EXIT_FAILURE);
        else
            rc = list_scenes(&r, l, t0);
        cnp_scene_list_free(l);
    } else {
        rc = run(&r, o, t0);
    }
    cnp_classify_options_free(o);
    if (interrupted) {
        int sig = interrupted;
        signal(sig, SIG_DFL);
        raise(sig);
    }
    return rc;
}
