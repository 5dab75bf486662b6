/* classify.c -- `canopy classify`: whole georeferenced scenes -> chip-grid
 * probabilities and masks, GeoJSON markers and a run manifest per scene.
 *
 * Wires the scene tiler (scene.h), the engine (engine.h) and the writers
 * (writers.h): options and scene lists, progress, exit status. */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "scene/scene.h"
#include "writers/writers.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CMD "classify"
#define MAX_BATCH 32
#define MAX_CHANNELS 64
/* GDAL's block cache when the user sets none: enough for a strip of the
 * widest scenes, small enough that memory does not grow with the scene. */
#define DEFAULT_CACHE_BYTES ((GIntBig)256 << 20)

typedef struct options {
    const char *model;
    const char *outdir;
    int chip, stride;
    int n_bands;
    int bands[MAX_CHANNELS];
    int have_range;
    double range_lo, range_hi;
    cnp_gsd_mode gsd_mode;
    double gsd_m;
    int gsd_given;
    double min_valid;
    char **thresholds;         /* CSL of LABEL=P */
    const char *markers;       /* comma list, "none", or NULL (the model's) */
    int tta;
    int threads;
    int bf16;                  /* --precision bf16 */
    int float_probs;
    int split_masks;
    int lossy_probs;           /* --lossy-probs */
    cnp_raster_format format;
    char **co;                 /* CSL of NAME=VALUE */
    char **config;             /* CSL of KEY=VALUE */
    int quiet;
    int progress;              /* --progress: GDAL's progress even without a terminal */
    char **scenes;             /* CSL of arguments: files, folders, @lists */
} options;

/* State shared by the scenes of one call. */
typedef struct batch {
    const options *o;
    cnp_model *model;
    cnp_model_meta *meta;
    char model_sha[65];
    double offset, scale;
    int bands[MAX_CHANNELS];
    int threads;
    int progress_tty;
    int scene_i, n_scenes;     /* 1-based scene in progress, scenes in the batch */
    int last_tick;             /* progress ticks printed for this scene (0..40), -1 none */
    char **names;              /* CSL: scene names already classified */
    char **name_paths;         /* CSL: their paths, same order */
    float *batch_probs;        /* (MAX_BATCH, n_labels) */
} batch;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

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
"  (and .qml styles for QGIS). Every file is written under a temporary name and\n"
"renamed when complete; a scene that fails leaves none of its outputs. A scene\n"
"whose manifest shows the same inputs, model and parameters is skipped (\"up to\n"
"date\").\n"
"\n"
"SCENE is any raster GDAL reads (GeoTIFF, COG, VRT, JP2, /vsicurl/, /vsizip/),\n"
"any data type, any CRS (north-up), a folder (every raster in it), or @LIST\n"
"(a text file of scenes, one per line, '#' comments; relative paths are taken\n"
"from the current folder).\n"
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
"  --scale-range A,B     raw value v -> (v - A) / (B - A) before the model's\n"
"                        mean/std (e.g. 0,3000 for Sentinel-2 L2A reflectance;\n"
"                        default: the model's canopy.scale)\n"
"  --gsd M|native        read chips at M metres per pixel (default: the model's\n"
"                        canopy.gsd_m; without one, the scene's own resolution);\n"
"                        native reads at the scene's resolution. Within 1% of the\n"
"                        target counts as equal; more than 4x finer or coarser is\n"
"                        refused.\n"
"  --min-valid F         skip chips with less than this share of valid pixels\n"
"                        (not nodata, alpha 0 or masked; default 0.5)\n"
"  --threshold LABEL=P   decision threshold for a label (repeatable)\n"
"  --markers LIST        marker labels written to GeoJSON, comma-separated, or\n"
"                        'none' (default: the model's)\n"
"  --tta                 average over the 8 rotations/flips of each chip\n"
"  --threads N           inference threads (default: all cores)\n"
"  --precision P         fp32 (default) or bf16: convolutions in bf16 with fp32\n"
"                        accumulation on CPUs with AVX512_BF16 (fp32 with a\n"
"                        message elsewhere); recorded in the manifest\n"
"  --probs-type T        Byte (0..254, scale 1/255; default) or Float32\n"
"  --split-masks         also write OUTDIR/NAME.masks/LABEL.tif, one per label\n"
"  -of GTiff|COG         raster format (default GTiff)\n"
"  -co NAME=VALUE        creation option for the rasters (repeatable); lossy ones\n"
"                        (COMPRESS=JPEG, WEBP, LERC with MAX_Z_ERROR > 0, ...) are\n"
"                        refused: the masks must match the GeoJSON\n"
"  --lossy-probs         accept lossy -co for the probabilities only (the masks\n"
"                        stay lossless); recorded in the manifest\n"
"  --config KEY VALUE    GDAL configuration option (repeatable)\n"
"  --progress            GDAL's progress even when stdout is not a terminal (for\n"
"                        the QGIS plugin and other programs that read it)\n"
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

/* ------------------------------------------------------------- options */

static int parse_int_list(const char *opt, const char *s, int *v, int max, int *n)
{
    char **parts = CSLTokenizeString2(s, ",", 0);
    int i, k = CSLCount(parts), ok = k >= 1 && k <= max;
    for (i = 0; ok && i < k; i++)
        ok = cnp_cli_parse_int(CMD, opt, parts[i], 1, 65535, &v[i]);
    if (!ok && !(k >= 1 && k <= max))
        cnp_cli_usage_error(CMD, "%s expects 1 to %d comma-separated band numbers, got '%s'",
                            opt, max, s);
    *n = k;
    CSLDestroy(parts);
    return ok;
}

/* Returns CNP_EXIT_OK, or an exit status to return (help printed, usage). */
static int parse_options(int argc, char **argv, options *o)
{
    int i;

    memset(o, 0, sizeof *o);
    o->chip = 256;
    o->min_valid = 0.5;
    o->gsd_mode = CNP_GSD_MODEL;
    o->threads = cnp_cli_default_threads();
    o->format = CNP_FORMAT_GTIFF;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL, *eq;
        char name[64];
        int takes = 1;

        if (a[0] != '-' || !strcmp(a, "-")) {
            o->scenes = CSLAddString(o->scenes, a);
            continue;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                o->scenes = CSLAddString(o->scenes, argv[i]);
            break;
        }
        /* --name=value */
        snprintf(name, sizeof name, "%s", a);
        eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof name) {
            name[eq - a] = '\0';
            v = eq + 1;
        }
        if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
            print_help(stdout);
            return -1;
        }
        if (!strcmp(name, "-q") || !strcmp(name, "--quiet") || !strcmp(name, "--tta") ||
            !strcmp(name, "--split-masks") || !strcmp(name, "--progress") ||
            !strcmp(name, "--lossy-probs"))
            takes = 0;
        if (takes && !v && !strcmp(name, "--config")) {
            if (i + 2 >= argc)
                return cnp_cli_usage_error(CMD, "--config expects KEY VALUE");
            CPLSetConfigOption(argv[i + 1], argv[i + 2]);
            o->config = CSLSetNameValue(o->config, argv[i + 1], argv[i + 2]);
            i += 2;
            continue;
        }
        if (takes && !v) {
            if (i + 1 >= argc)
                return cnp_cli_usage_error(CMD, "%s expects a value", name);
            v = argv[++i];
        } else if (!takes && v) {
            return cnp_cli_usage_error(CMD, "%s takes no value", name);
        }

        if (!strcmp(name, "-q") || !strcmp(name, "--quiet"))
            o->quiet = 1;
        else if (!strcmp(name, "--tta"))
            o->tta = 1;
        else if (!strcmp(name, "--split-masks"))
            o->split_masks = 1;
        else if (!strcmp(name, "--lossy-probs"))
            o->lossy_probs = 1;
        else if (!strcmp(name, "--progress"))
            o->progress = 1;
        else if (!strcmp(name, "-m") || !strcmp(name, "--model"))
            o->model = v;
        else if (!strcmp(name, "-o") || !strcmp(name, "--output"))
            o->outdir = v;
        else if (!strcmp(name, "--chip")) {
            if (!cnp_cli_parse_int(CMD, name, v, 8, 65536, &o->chip))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(name, "--stride")) {
            if (!cnp_cli_parse_int(CMD, name, v, 1, 65536, &o->stride))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(name, "--bands")) {
            if (!parse_int_list(name, v, o->bands, MAX_CHANNELS, &o->n_bands))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(name, "--scale-range")) {
            char **parts = CSLTokenizeString2(v, ",", 0);
            int ok = CSLCount(parts) == 2 &&
                     cnp_cli_parse_double(CMD, name, parts[0], -1e300, 1e300, &o->range_lo) &&
                     cnp_cli_parse_double(CMD, name, parts[1], -1e300, 1e300, &o->range_hi);
            CSLDestroy(parts);
            if (!ok || !(o->range_hi > o->range_lo))
                return cnp_cli_usage_error(CMD, "--scale-range expects MIN,MAX with MIN < MAX "
                                           "(e.g. 0,3000), got '%s'", v);
            o->have_range = 1;
        } else if (!strcmp(name, "--gsd")) {
            o->gsd_given = 1;
            if (!strcasecmp(v, "native")) {
                o->gsd_mode = CNP_GSD_NATIVE;
            } else {
                if (!cnp_cli_parse_double(CMD, name, v, 1e-3, 1e6, &o->gsd_m))
                    return CNP_EXIT_USAGE;
                o->gsd_mode = CNP_GSD_USER;
            }
        } else if (!strcmp(name, "--min-valid")) {
            if (!cnp_cli_parse_double(CMD, name, v, 0.0, 1.0, &o->min_valid))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(name, "--threshold")) {
            const char *e = strchr(v, '=');
            double p;
            if (!e || e == v)
                return cnp_cli_usage_error(CMD, "--threshold expects LABEL=P, got '%s'", v);
            if (!cnp_cli_parse_double(CMD, name, e + 1, 0.0, 1.0, &p))
                return CNP_EXIT_USAGE;
            o->thresholds = CSLAddString(o->thresholds, v);
        } else if (!strcmp(name, "--markers")) {
            o->markers = v;
        } else if (!strcmp(name, "--precision")) {
            if (!cnp_cli_parse_precision(CMD, v, &o->bf16))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(name, "--threads")) {
            if (!cnp_cli_parse_int(CMD, name, v, 1, 1024, &o->threads))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(name, "--probs-type")) {
            if (!strcasecmp(v, "Byte"))
                o->float_probs = 0;
            else if (!strcasecmp(v, "Float32"))
                o->float_probs = 1;
            else
                return cnp_cli_usage_error(CMD, "--probs-type expects Byte or Float32, got '%s'", v);
        } else if (!strcmp(name, "-of")) {
            if (!strcasecmp(v, "GTiff"))
                o->format = CNP_FORMAT_GTIFF;
            else if (!strcasecmp(v, "COG"))
                o->format = CNP_FORMAT_COG;
            else
                return cnp_cli_usage_error(CMD, "-of expects GTiff or COG, got '%s'", v);
        } else if (!strcmp(name, "-co")) {
            if (!strchr(v, '=') || v[0] == '=')
                return cnp_cli_usage_error(CMD, "-co expects NAME=VALUE, got '%s'", v);
            o->co = CSLAddString(o->co, v);
        } else {
            return cnp_cli_usage_error(CMD, "unknown option '%s'", a);
        }
    }
    if (!o->outdir)
        return cnp_cli_usage_error(CMD, "no output folder; give one with -o OUTDIR");
    if (!o->scenes)
        return cnp_cli_usage_error(CMD, "no scene given");
    if (o->stride == 0)
        o->stride = o->chip;
    if (o->stride > o->chip)
        return cnp_cli_usage_error(CMD, "--stride %d is larger than --chip %d and would leave "
                                   "gaps between chips", o->stride, o->chip);
    if (!o->model)
        o->model = cnp_cli_default_model();
    return CNP_EXIT_OK;
}

static void options_free(options *o)
{
    CSLDestroy(o->thresholds);
    CSLDestroy(o->co);
    CSLDestroy(o->config);
    CSLDestroy(o->scenes);
}

/* --------------------------------------------------------- scene lists */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* Files in a folder that are not rasters to classify: canopy's own outputs
 * and GDAL's side files. */
static int skip_in_folder(const char *name)
{
    static const char *const skip[] = {
        ".probs.tif", ".masks.tif", ".markers.geojson", ".manifest.json", ".qml", ".aux.xml",
        ".ovr", ".msk", ".json", ".geojson", ".csv", ".txt", ".md", ".xml", ".prj", ".tfw",
        ".wld", ".log", NULL
    };
    int i;
    if (name[0] == '.')
        return 1;
    for (i = 0; skip[i]; i++)
        if (has_suffix(name, skip[i]))
            return 1;
    return 0;
}

static int looks_raster(const char *name)
{
    static const char *const ext[] = {".tif", ".tiff", ".vrt", ".jp2", ".img", ".ntf", NULL};
    int i;
    for (i = 0; ext[i]; i++)
        if (has_suffix(name, ext[i]))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the rasters of a folder, sorted. */
static cnp_status add_folder(cnp_ctx *ctx, const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **found = NULL;
    int i, n;

    if (!d)
        return cnp_error(ctx, CNP_ERR_IO, "cannot list the folder %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        const char *path;
        struct stat sb;
        GDALDriverH drv;
        if (skip_in_folder(e->d_name))
            continue;
        path = CPLFormFilename(dir, e->d_name, NULL);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        CPLPushErrorHandler(CPLQuietErrorHandler);
        drv = GDALIdentifyDriverEx(path, GDAL_OF_RASTER, NULL, NULL);
        CPLPopErrorHandler();
        if (drv || looks_raster(e->d_name))
            found = CSLAddString(found, path);
    }
    closedir(d);
    n = CSLCount(found);
    if (n > 1)
        qsort(found, (size_t)n, sizeof *found, cmp_str);
    if (n == 0) {
        CSLDestroy(found);
        return cnp_error(ctx, CNP_ERR_IO, "the folder %s holds no raster to classify", dir);
    }
    for (i = 0; i < n; i++)
        *out = CSLAddString(*out, found[i]);
    CSLDestroy(found);
    return CNP_OK;
}

/* Appends the scenes of an @list file. */
static cnp_status add_list(cnp_ctx *ctx, const char *list, char ***out)
{
    FILE *f = fopen(list, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0;

    if (!f)
        return cnp_error(ctx, CNP_ERR_IO, "cannot read the scene list %s: %s", list,
                         strerror(errno));
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *s = line, *end = line + len;
        while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        *out = CSLAddString(*out, s);
        n++;
    }
    free(line);
    if (ferror(f)) {
        fclose(f);
        return cnp_error(ctx, CNP_ERR_IO, "reading the scene list %s failed", list);
    }
    fclose(f);
    if (n == 0)
        return cnp_error(ctx, CNP_ERR_IO, "the scene list %s names no scene", list);
    return CNP_OK;
}

/* ------------------------------------------------------ output folder */

static cnp_status make_outdir(cnp_ctx *ctx, const char *dir)
{
    char *p = cnp_strdup(ctx, dir), *s, probe[64], *path = NULL;
    cnp_status st = CNP_OK;
    struct stat sb;
    size_t len;
    int fd;

    if (!p)
        return CNP_ERR_NOMEM;
    for (s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            st = cnp_error(ctx, CNP_ERR_IO, "cannot create the output folder %s: %s; choose a "
                           "writable -o folder", dir, strerror(errno));
            goto cleanup;
        }
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        st = cnp_error(ctx, CNP_ERR_IO, "cannot create the output folder %s: %s; choose a "
                       "writable -o folder", dir, strerror(errno));
        goto cleanup;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = cnp_error(ctx, CNP_ERR_IO, "the output %s is not a folder; choose a folder for -o",
                       dir);
        goto cleanup;
    }
    /* Probe: a file can be created there (permissions, read-only mounts). */
    snprintf(probe, sizeof probe, "/.canopy-probe-%ld", (long)getpid());
    len = strlen(dir) + strlen(probe) + 1;
    path = malloc(len);
    if (!path) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    snprintf(path, len, "%s%s", dir, probe);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write to the output folder %s: %s; choose a "
                       "writable -o folder", dir, strerror(errno));
        goto cleanup;
    }
    close(fd);
    unlink(path);
cleanup:
    free(path);
    free(p);
    return st;
}

/* "DIR/NAME.SUFFIX" (caller frees). */
static char *out_path(cnp_ctx *ctx, const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (!p) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/* Every output a scene may have: the final files and the split folder. */
typedef struct outputs {
    char *probs, *probs_qml, *masks, *masks_qml, *markers, *manifest, *split_dir;
} outputs;

static void outputs_free(outputs *w)
{
    free(w->probs);
    free(w->probs_qml);
    free(w->masks);
    free(w->masks_qml);
    free(w->markers);
    free(w->manifest);
    free(w->split_dir);
}

static cnp_status outputs_init(cnp_ctx *ctx, const char *dir, const char *name, outputs *w)
{
    memset(w, 0, sizeof *w);
    w->probs = out_path(ctx, dir, name, ".probs.tif");
    w->probs_qml = out_path(ctx, dir, name, ".probs.qml");
    w->masks = out_path(ctx, dir, name, ".masks.tif");
    w->masks_qml = out_path(ctx, dir, name, ".masks.qml");
    w->markers = out_path(ctx, dir, name, ".markers.geojson");
    w->manifest = out_path(ctx, dir, name, ".manifest.json");
    w->split_dir = out_path(ctx, dir, name, ".masks");
    if (!w->probs || !w->probs_qml || !w->masks || !w->masks_qml || !w->markers ||
        !w->manifest || !w->split_dir)
        return CNP_ERR_NOMEM;
    return CNP_OK;
}

/* The files in the split folder (sorted, full paths) appended to *list. */
static void list_split(const char *dir, char ***list)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **found = NULL;
    int i, n;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            found = CSLAddString(found, CPLFormFilename(dir, e->d_name, NULL));
    closedir(d);
    n = CSLCount(found);
    if (n > 1)
        qsort(found, (size_t)n, sizeof *found, cmp_str);
    for (i = 0; i < n; i++)
        *list = CSLAddString(*list, found[i]);
    CSLDestroy(found);
}

/* Removes a scene's outputs (a failed scene leaves none of them). The
 * manifest goes first, so that an interrupted removal is never "up to date". */
static void outputs_remove(const outputs *w, const cnp_model_meta *meta)
{
    int i;
    unlink(w->manifest);
    unlink(w->probs);
    unlink(w->probs_qml);
    unlink(w->masks);
    unlink(w->masks_qml);
    unlink(w->markers);
    for (i = 0; meta && i < meta->n_labels; i++) {
        unlink(CPLFormFilename(w->split_dir, meta->labels[i], "tif"));
        unlink(CPLFormFilename(w->split_dir, meta->labels[i], "qml"));
    }
    rmdir(w->split_dir);
}

/* ------------------------------------------------------------- a scene */

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

/* The scene's name: its base name without extension (CPLGetBasename copies
 * into a rotating buffer; the caller frees the copy). */
static char *scene_name(cnp_ctx *ctx, const char *path)
{
    const char *b = CPLGetBasename(path);
    return cnp_strdup(ctx, b && *b ? b : "scene");
}

/* GDAL's terminal progress ("0...10...20...100 - done.", a tick per 2.5 %)
 * with its state in the batch: GDALTermProgress keeps it in statics that it
 * resets only past 97.5 %, so after a scene that failed part way the next
 * scene's line would start at the old tick. */
static void term_progress(batch *b, double done)
{
    int tick = done >= 1.0 ? 40 : done > 0.0 ? (int)(done * 40.0) : 0, was = b->last_tick;
    while (b->last_tick < tick) {
        b->last_tick++;
        if (b->last_tick % 4 == 0)
            printf("%d", b->last_tick / 4 * 10);
        else
            putchar('.');
    }
    if (tick == 40 && was < 40)
        printf(" - done.\n");
    fflush(stdout);
}

/* user: the batch when progress is printed, else NULL. */
static int progress_cb(double done, const char *msg, void *user)
{
    (void)msg;
    if (user)
        term_progress(user, done);
    return !interrupted;
}

/* Runs the model over the tiler's strips into probs (rows, cols, L). */
static cnp_status classify_strips(cnp_ctx *ctx, batch *b, cnp_tiler *t, float *probs,
                                  int **partial_cells, long *n_partial, double *infer_s)
{
    const cnp_tiler_info *in = cnp_tiler_info_get(t);
    const cnp_model_meta *meta = b->meta;
    size_t chip_floats = (size_t)meta->n_channels * (size_t)in->input_size * in->input_size;
    size_t L = (size_t)meta->n_labels;
    long cap = 0;
    const cnp_strip *s;
    cnp_status st;

    *infer_s = 0;
    *n_partial = 0;
    for (;;) {
        int i0, n, i, k;
        if ((st = cnp_tiler_next_strip(ctx, t, &s)) != CNP_OK)
            return st;
        if (!s)
            break;
        for (i0 = 0; i0 < s->n_chips; i0 += n) {
            double t0 = cnp_now();
            n = s->n_chips - i0 < MAX_BATCH ? s->n_chips - i0 : MAX_BATCH;
            if (b->o->tta)
                st = cnp_model_forward_tta(ctx, b->model, s->input + (size_t)i0 * chip_floats, n,
                                           b->batch_probs);
            else
                st = cnp_model_forward(ctx, b->model, s->input + (size_t)i0 * chip_floats, n,
                                       b->batch_probs);
            *infer_s += cnp_now() - t0;
            if (st != CNP_OK)
                return st;
            for (i = 0; i < n; i++) {
                size_t cell = (size_t)s->row * in->cols + s->cols[i0 + i];
                for (k = 0; k < (int)L; k++)
                    probs[cell * L + k] = b->batch_probs[(size_t)i * L + k];
                if (s->partial[i0 + i]) {
                    if (*n_partial == cap) {
                        long nc = cap ? 2 * cap : 256;
                        int *p = realloc(*partial_cells, (size_t)nc * 2 * sizeof(int));
                        if (!p)
                            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
                        *partial_cells = p;
                        cap = nc;
                    }
                    (*partial_cells)[2 * *n_partial] = s->row;
                    (*partial_cells)[2 * *n_partial + 1] = s->cols[i0 + i];
                    (*n_partial)++;
                }
            }
        }
        if (!progress_cb((double)(s->index + 1) / in->n_strips, NULL,
                         b->progress_tty ? (void *)b : NULL))
            return cnp_error(ctx, CNP_ERR_CANCELLED, "%s: interrupted; no output was written",
                             in->path);
    }
    return CNP_OK;
}

/* Classifies one scene. *skipped = 1 when it was up to date. */
static cnp_status classify_scene(cnp_ctx *ctx, batch *b, const char *path, int *skipped)
{
    const options *o = b->o;
    cnp_model_meta *meta = b->meta;
    cnp_status st = CNP_OK;
    cnp_tiler_params tp;
    cnp_tiler *t = NULL;
    const cnp_tiler_info *in;
    cnp_tiler_stats ts;
    cnp_manifest *man = NULL;
    cnp_run_params rp;
    cnp_run_results rr;
    outputs w;
    char *name = NULL, run_utc[32], **written = NULL;
    float *probs = NULL;
    long *positives = NULL, n_partial = 0;
    int *partial_cells = NULL, up_to_date = 0, n_features = 0, started = 0, i;
    size_t cells, n, c;
    double t_start = cnp_now(), t_open, t_hash, infer_s = 0, t_write0, t_write;

    *skipped = 0;
    memset(&w, 0, sizeof w);
    utc_now(run_utc, sizeof run_utc);
    name = scene_name(ctx, path);
    if (!name)
        return CNP_ERR_NOMEM;
    i = CSLFindString(b->names, name);
    if (i >= 0) {
        st = cnp_error(ctx, CNP_ERR_USAGE, "%s: its outputs would replace those of %s (both are "
                       "named %s); classify them into different -o folders", path,
                       b->name_paths[i], name);
        goto cleanup;
    }
    b->names = CSLAddString(b->names, name);
    b->name_paths = CSLAddString(b->name_paths, path);
    if ((st = outputs_init(ctx, o->outdir, name, &w)) != CNP_OK)
        goto cleanup;

    memset(&tp, 0, sizeof tp);
    tp.spec.n_channels = meta->n_channels;
    tp.spec.bands = b->bands;
    tp.spec.size = meta->input_size;
    tp.spec.offset = b->offset;
    tp.spec.scale = b->scale;
    tp.spec.mean = meta->mean;
    tp.spec.std = meta->std;
    tp.chip = o->chip;
    tp.stride = o->stride;
    tp.gsd_mode = o->gsd_mode;
    tp.gsd_m = o->gsd_mode == CNP_GSD_USER ? o->gsd_m : meta->gsd_m;
    tp.max_gsd_ratio = 4.0;
    tp.min_valid = o->min_valid;
    tp.strip_chips = MAX_BATCH;
    if ((st = cnp_tiler_open(ctx, path, &tp, &t)) != CNP_OK)
        goto cleanup;
    in = cnp_tiler_info_get(t);
    t_open = cnp_now();

    memset(&rp, 0, sizeof rp);
    rp.model_path = o->model;
    rp.model_sha256 = b->model_sha;
    rp.chip = o->chip;
    rp.stride = o->stride;
    rp.input_size = meta->input_size;
    rp.n_channels = meta->n_channels;
    rp.bands = b->bands;
    rp.offset = b->offset;
    rp.scale = b->scale;
    rp.mean = meta->mean;
    rp.std = meta->std;
    rp.gsd_mode = o->gsd_mode == CNP_GSD_NATIVE ? "native"
                  : o->gsd_mode == CNP_GSD_USER ? "user" : "model";
    rp.gsd_m = in->gsd_m;
    rp.min_valid = o->min_valid;
    rp.n_labels = meta->n_labels;
    rp.labels = (const char *const *)meta->labels;
    rp.thresholds = meta->thresholds;
    rp.is_marker = meta->is_marker;
    rp.tta = o->tta;
    rp.precision = cnp_model_precision(b->model);
    rp.float_probs = o->float_probs;
    rp.split_masks = o->split_masks;
    rp.lossy_probs = o->lossy_probs;
    rp.format = o->format == CNP_FORMAT_COG ? "COG" : "GTiff";
    rp.creation_options = (const char *const *)o->co;
    rp.config = (const char *const *)o->config;
    if ((st = cnp_manifest_new(ctx, in->files, &rp, &man)) != CNP_OK)
        goto cleanup;
    t_hash = cnp_now();
    if ((st = cnp_manifest_up_to_date(ctx, man, w.manifest, &up_to_date)) != CNP_OK)
        goto cleanup;
    if (up_to_date) {
        *skipped = 1;
        if (!o->quiet)
            printf("%s: up to date (%s)\n", path, w.manifest);
        goto cleanup;
    }

    /* From here on, the scene's old outputs are stale. */
    started = 1;
    outputs_remove(&w, meta);
    if (!cnp_mul_size((size_t)in->rows, (size_t)in->cols, &cells) ||
        !cnp_mul_size(cells, (size_t)meta->n_labels, &n)) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: the chip grid is too large", path);
        goto cleanup;
    }
    probs = cnp_calloc(ctx, n, sizeof(float), "the chip grid");
    positives = cnp_calloc(ctx, (size_t)meta->n_labels, sizeof(long), "label counts");
    if (!probs || !positives) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (c = 0; c < n; c++)
        probs[c] = NAN;
    if (b->progress_tty && !o->quiet) {
        if (b->n_scenes > 1)
            printf("[%d/%d] ", b->scene_i, b->n_scenes);
        printf("%s: ", path);
        b->last_tick = -1;
        term_progress(b, 0.0);
    }
    st = classify_strips(ctx, b, t, probs, &partial_cells, &n_partial, &infer_s);
    if (st != CNP_OK) {
        if (b->progress_tty && !o->quiet)
            printf("\n");
        goto cleanup;
    }
    cnp_tiler_stats_get(t, &ts);
    if (ts.chips == 0) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: no chip has %g%% or more valid pixels (the "
                       "scene is all nodata, transparent or masked: %s); nothing to classify. "
                       "Check its nodata value, or lower --min-valid", path,
                       100.0 * o->min_valid, in->mask_kind);
        goto cleanup;
    }
    for (c = 0; c < cells; c++) {
        int k;
        for (k = 0; k < meta->n_labels; k++) {
            float p = probs[c * meta->n_labels + k];
            if (!isnan(p) && p >= meta->thresholds[k])
                positives[k]++;
        }
    }

    {
        cnp_grid grid;
        cnp_result res;
        cnp_raster_options ro;
        cnp_markers_info mi;
        long dropped = 0;
        memset(&grid, 0, sizeof grid);
        grid.cols = in->cols;
        grid.rows = in->rows;
        memcpy(grid.gt, in->grid_gt, sizeof grid.gt);
        grid.crs_wkt = in->crs_wkt;
        grid.has_clip = 1;
        {   /* the scene's footprint (north-up: the tiler refuses rotation) */
            double x1 = in->scene_gt[0] + in->scene_gt[1] * in->width;
            double y1 = in->scene_gt[3] + in->scene_gt[5] * in->height;
            grid.clip[0] = fmin(in->scene_gt[0], x1);
            grid.clip[1] = fmin(in->scene_gt[3], y1);
            grid.clip[2] = fmax(in->scene_gt[0], x1);
            grid.clip[3] = fmax(in->scene_gt[3], y1);
        }
        res.n_labels = meta->n_labels;
        res.labels = (const char *const *)meta->labels;
        res.thresholds = meta->thresholds;
        res.is_marker = meta->is_marker;
        res.probs = probs;
        ro.format = o->format;
        ro.float_probs = o->float_probs;
        ro.creation_options = (const char *const *)o->co;
        ro.lossy_probs = o->lossy_probs;
        mi.scene = name;
        mi.model = meta->name;
        mi.run_utc = run_utc;
        mi.n_dropped = &dropped;
        if (interrupted) {
            st = cnp_error(ctx, CNP_ERR_CANCELLED, "%s: interrupted; no output was written", path);
            goto cleanup;
        }
        t_write0 = cnp_now();
        if ((st = cnp_write_probs(ctx, w.probs, &grid, &res, &ro)) != CNP_OK ||
            (st = cnp_write_masks(ctx, w.masks, o->split_masks ? w.split_dir : NULL, &grid, &res,
                                  &ro)) != CNP_OK ||
            (st = cnp_write_markers(ctx, w.markers, &grid, &res, &mi, &n_features)) != CNP_OK)
            goto cleanup;
        if (dropped > 0)
            fprintf(stderr, "canopy %s: warning: %s: %ld marker chip%s left out of %s: %s "
                    "corner has no longitude/latitude (off the globe, or outside the scene "
                    "CRS's area of use); the masks still hold %s\n", CMD, path, dropped,
                    dropped == 1 ? "" : "s", w.markers, dropped == 1 ? "its" : "a",
                    dropped == 1 ? "it" : "them");
    }
    t_write = cnp_now();

    written = CSLAddString(written, w.probs);
    if (exists(w.probs_qml))
        written = CSLAddString(written, w.probs_qml);
    written = CSLAddString(written, w.masks);
    if (exists(w.masks_qml))
        written = CSLAddString(written, w.masks_qml);
    written = CSLAddString(written, w.markers);
    if (o->split_masks)
        list_split(w.split_dir, &written);

    memset(&rr, 0, sizeof rr);
    rr.scene_id = name;
    rr.model_name = meta->name;
    rr.model_version = meta->version;
    rr.run_utc = run_utc;
    rr.rows = in->rows;
    rr.cols = in->cols;
    rr.grid_gt = in->grid_gt;
    rr.pixel_m = in->pixel_m;
    rr.chip_px = in->chip_px;
    rr.stride_px = in->stride_px;
    rr.resampling = in->resampling;
    rr.mask_kind = in->mask_kind;
    rr.classified = ts.chips;
    rr.partial = n_partial;
    rr.skipped = (long)cells - ts.chips;
    rr.partial_cells = partial_cells;
    rr.positives = positives;
    rr.marker_features = n_features;
    rr.outputs = (const char *const *)written;
    rr.threads = b->threads;
    rr.open_s = t_open - t_start;
    rr.hash_s = t_hash - t_open;
    rr.read_s = ts.read_s;
    rr.read_cpu_s = ts.read_cpu_s;
    rr.wait_s = ts.wait_s;
    rr.infer_s = infer_s;
    rr.write_s = t_write - t_write0;
    rr.total_s = cnp_now() - t_start;
    if ((st = cnp_manifest_write(ctx, man, &rr, w.manifest)) != CNP_OK)
        goto cleanup;

    if (!o->quiet) {
        int k, first = 1;
        printf("%s: %ld chips (%ld partial, %ld not classified) in %.1f s, %.1f chips/s "
               "(inference alone %.1f chips/s); %d marker region%s; positive chips:",
               path, ts.chips, n_partial, (long)cells - ts.chips, rr.total_s,
               ts.chips / (rr.total_s > 0 ? rr.total_s : 1),
               infer_s > 0 ? ts.chips / infer_s : 0.0, n_features, n_features == 1 ? "" : "s");
        for (k = 0; k < meta->n_labels; k++) {
            if (!positives[k])
                continue;
            printf("%s %s %ld", first ? "" : ",", meta->labels[k], positives[k]);
            first = 0;
        }
        printf("%s -> %s/%s.*\n", first ? " none" : "", o->outdir, name);
    }
cleanup:
    fflush(stdout);
    if (st != CNP_OK && started)
        outputs_remove(&w, meta);
    cnp_manifest_free(man);
    cnp_tiler_close(t);
    outputs_free(&w);
    CSLDestroy(written);
    free(partial_cells);
    free(positives);
    free(probs);
    free(name);
    return st;
}

/* ------------------------------------------------------------ the model */

/* Applies --bands, --scale-range, --threshold, --markers to the model's
 * metadata. Returns CNP_EXIT_OK or CNP_EXIT_USAGE (message printed). */
static int apply_overrides(batch *b, const options *o)
{
    cnp_model_meta *meta = b->meta;
    int i, k;

    if (meta->n_channels > MAX_CHANNELS)
        return cnp_cli_usage_error(CMD, "%s: the model takes %d channels, more than canopy "
                                   "classify handles (%d)", o->model, meta->n_channels,
                                   MAX_CHANNELS);
    if (o->n_bands) {
        if (o->n_bands != meta->n_channels)
            return cnp_cli_usage_error(CMD, "--bands lists %d band%s but the model takes %d "
                                       "channels", o->n_bands, o->n_bands == 1 ? "" : "s",
                                       meta->n_channels);
        memcpy(b->bands, o->bands, sizeof(int) * (size_t)o->n_bands);
    } else {
        memcpy(b->bands, meta->bands, sizeof(int) * (size_t)meta->n_channels);
    }
    if (o->have_range) {
        b->offset = o->range_lo;
        b->scale = 1.0 / (o->range_hi - o->range_lo);
    } else {
        b->offset = 0.0;
        b->scale = meta->scale;
    }
    for (i = 0; o->thresholds && o->thresholds[i]; i++) {
        const char *eq = strchr(o->thresholds[i], '=');
        size_t len = (size_t)(eq - o->thresholds[i]);
        for (k = 0; k < meta->n_labels; k++)
            if (strlen(meta->labels[k]) == len && !strncmp(meta->labels[k], o->thresholds[i], len))
                break;
        if (k == meta->n_labels)
            return cnp_cli_usage_error(CMD, "--threshold %s: the model has no label '%.*s'",
                                       o->thresholds[i], (int)len, o->thresholds[i]);
        meta->thresholds[k] = (float)CPLAtof(eq + 1);
    }
    if (o->markers) {
        char **list = NULL;
        if (strcasecmp(o->markers, "none") != 0)
            list = CSLTokenizeString2(o->markers, ",", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES);
        for (i = 0; list && list[i]; i++) {
            if (CSLFindString((CSLConstList)meta->labels, list[i]) < 0) {
                int rc = cnp_cli_usage_error(CMD, "--markers: the model has no label '%s'",
                                             list[i]);
                CSLDestroy(list);
                return rc;
            }
        }
        for (k = 0; k < meta->n_labels; k++)
            meta->is_marker[k] = list && CSLFindString(list, meta->labels[k]) >= 0;
        CSLDestroy(list);
    }
    return CNP_EXIT_OK;
}

int cnp_cmd_classify(int argc, char **argv)
{
    options o;
    batch b;
    cnp_ctx ctx;
    char **scenes = NULL;
    int rc, i, failed = 0, done = 0, up = 0;
    struct sigaction sa, old_int, old_term;

    memset(&b, 0, sizeof b);
    rc = parse_options(argc, argv, &o);
    if (rc != CNP_EXIT_OK) {
        options_free(&o);
        return rc < 0 ? CNP_EXIT_OK : rc;
    }
    {
        /* Lossy -co: a usage error now, not after classifying. */
        cnp_raster_options ro = { o.format, o.float_probs, (const char *const *)o.co,
                                  o.lossy_probs };
        cnp_ctx_clear(&ctx);
        if (cnp_raster_options_check(&ctx, &ro) != CNP_OK) {
            cnp_cli_report(CMD, &ctx);
            options_free(&o);
            return CNP_EXIT_USAGE;
        }
    }
    b.o = &o;
    b.threads = o.threads;
    b.progress_tty = !o.quiet && (o.progress || isatty(STDOUT_FILENO));
    cnp_gdal_init();
    if (!CPLGetConfigOption("GDAL_CACHEMAX", NULL))
        GDALSetCacheMax64(DEFAULT_CACHE_BYTES);

    /* The model first: without it nothing can be done. */
    cnp_ctx_clear(&ctx);
    if (cnp_model_load(&ctx, o.model, &b.model) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    b.meta = cnp_model_meta_get(b.model);
    if ((rc = apply_overrides(&b, &o)) != CNP_EXIT_OK)
        goto cleanup;
    if (cnp_model_prepare(&ctx, b.model, MAX_BATCH, b.meta->input_size, b.meta->input_size,
                          o.threads,
                          (o.tta ? CNP_PREPARE_TTA : 0) | cnp_cli_precision_flags(o.bf16)) !=
            CNP_OK ||
        cnp_sha256_file(&ctx, o.model, b.model_sha) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    b.batch_probs = cnp_calloc(&ctx, (size_t)MAX_BATCH * (size_t)b.meta->n_labels, sizeof(float),
                               "probabilities");
    if (!b.batch_probs) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    if (make_outdir(&ctx, o.outdir) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }

    /* Scenes: files, folders, @lists. A bad folder or list is a failure of
     * its own; the rest still run. */
    for (i = 0; o.scenes[i]; i++) {
        const char *a = o.scenes[i];
        struct stat sb;
        cnp_ctx_clear(&ctx);
        if (a[0] == '@') {
            if (add_list(&ctx, a + 1, &scenes) != CNP_OK) {
                cnp_cli_report(CMD, &ctx);
                failed++;
            }
        } else if (stat(a, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (add_folder(&ctx, a, &scenes) != CNP_OK) {
                cnp_cli_report(CMD, &ctx);
                failed++;
            }
        } else {
            scenes = CSLAddString(scenes, a);
        }
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    b.n_scenes = CSLCount(scenes);
    for (i = 0; scenes && scenes[i] && !interrupted; i++) {
        int skipped = 0;
        cnp_ctx_clear(&ctx);
        b.scene_i = i + 1;
        if (classify_scene(&ctx, &b, scenes[i], &skipped) != CNP_OK) {
            cnp_cli_report(CMD, &ctx);
            failed++;
        } else if (skipped) {
            up++;
        } else {
            done++;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (interrupted) {
        fprintf(stderr, "canopy %s: interrupted after %d scene%s; the scene in progress left no "
                "outputs\n", CMD, done, done == 1 ? "" : "s");
        failed++;
    }
    if (!o.quiet && CSLCount(scenes) > 1)
        printf("canopy %s: %d scene%s classified, %d up to date, %d failed\n", CMD, done,
               done == 1 ? "" : "s", up, failed);
    rc = failed ? CNP_EXIT_FAILURE : CNP_EXIT_OK;
cleanup:
    fflush(stdout);
    free(b.batch_probs);
    CSLDestroy(b.names);
    CSLDestroy(b.name_paths);
    CSLDestroy(scenes);
    cnp_model_free(b.model);
    options_free(&o);
    if (interrupted) {
        int sig = interrupted;
        signal(sig, SIG_DFL);
        raise(sig);
    }
    return rc;
}
