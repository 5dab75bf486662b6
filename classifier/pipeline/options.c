/* options.c -- cnp_classify_options: defaults, setters, and canopy
 * classify's command-line arguments parsed into them. */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/pipeline.h"
#include "scene/date.h"
#include "writers/writers.h"

#include <cpl_string.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int parse_int_list(cnp_ctx *ctx, const char *opt, const char *s, int *v, int max, int *n)
{
    char **parts = CSLTokenizeString2(s, ",", 0);
    int i, k = CSLCount(parts), ok = k >= 1 && k <= max;
    for (i = 0; ok && i < k; i++)
        ok = cnp_parse_int(ctx, opt, parts[i], 1, 65535, &v[i]);
    if (!ok && !(k >= 1 && k <= max))
        cnp_error(ctx, CNP_ERR_USAGE, "%s expects 1 to %d comma-separated band numbers, got '%s'",
                  opt, max, s);
    *n = k;
    CSLDestroy(parts);
    return ok;
}

static int set_str(char **field, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return 0;
    free(*field);
    *field = d;
    return 1;
}

cnp_classify_options *cnp_classify_options_defaults(cnp_ctx *ctx)
{
    cnp_classify_options *o = cnp_calloc(ctx, 1, sizeof *o, "classify options");
    if (!o)
        return NULL;
    o->chip = 256;
    o->min_valid = 0.5;
    o->gsd_mode = CNP_CLASSIFY_GSD_MODEL;
    o->format = CNP_CLASSIFY_GTIFF;
    return o;
}

/* Options that take no value. */
static const char *const flags[] = {"-q", "--quiet", "--tta", "--split-masks", "--progress",
                                    "--list", "--no-quicklook", "--record-failures",
                                    "--lossy-probs", NULL};
/* The options that take a value (parse_one, and --config KEY VALUE). */
static const char *const valued[] = {"-m", "--model", "-o", "--output", "--chip", "--stride",
                                     "--bands", "--scale-range", "--gsd", "--min-valid",
                                     "--threshold", "--markers", "--threads", "--precision",
                                     "--probs-type", "-of", "-co", "--alerts", "--alerts-grid",
                                     "--alerts-baseline", "--alerts-dismiss", "--alerts-high",
                                     "--date", "--mask", "--scl-unusable", "--config", NULL};

static int in_list(const char *name, const char *const *list)
{
    int i;
    for (i = 0; list[i]; i++)
        if (!strcmp(name, list[i]))
            return 1;
    return 0;
}

static int is_flag(const char *name)
{
    return in_list(name, flags);
}

/* 0, with the error: a as an unknown option; a file of that name (a scene
 * named "-x.tif") gets the way to give it. */
static int unknown_option(cnp_ctx *ctx, const char *a)
{
    if (access(a, F_OK) == 0)
        return !cnp_error(ctx, CNP_ERR_USAGE, "unknown option '%s'; to classify the file of "
                          "that name, give it as ./%s or after '--'", a, a);
    return !cnp_error(ctx, CNP_ERR_USAGE, "unknown option '%s'", a);
}

static int parse_flag(cnp_classify_options *o, const char *name)
{
    if (!strcmp(name, "-q") || !strcmp(name, "--quiet"))
        o->quiet = 1;
    else if (!strcmp(name, "--tta"))
        o->tta = 1;
    else if (!strcmp(name, "--split-masks"))
        o->split_masks = 1;
    else if (!strcmp(name, "--lossy-probs"))
        o->lossy_probs = 1;
    else if (!strcmp(name, "--progress"))
        o->progress = CNP_PROGRESS_TERM;
    else if (!strcmp(name, "--list"))
        o->list_only = 1;
    else if (!strcmp(name, "--no-quicklook"))
        o->no_quicklook = 1;
    else if (!strcmp(name, "--record-failures"))
        o->record_failures = 1;
    else
        return 0;
    return 1;
}

static int parse_scale_range(cnp_ctx *ctx, cnp_classify_options *o, const char *name,
                             const char *v)
{
    char **parts = CSLTokenizeString2(v, ",", 0);
    int ok = CSLCount(parts) == 2 &&
             cnp_parse_double(ctx, name, parts[0], -1e300, 1e300, &o->range_lo) &&
             cnp_parse_double(ctx, name, parts[1], -1e300, 1e300, &o->range_hi);
    CSLDestroy(parts);
    if (!ok || !(o->range_hi > o->range_lo)) {
        cnp_error(ctx, CNP_ERR_USAGE, "--scale-range expects MIN,MAX with MIN < MAX (e.g. "
                  "0,3000), got '%s'", v);
        return 0;
    }
    o->have_range = 1;
    return 1;
}

static int parse_enum(cnp_ctx *ctx, cnp_classify_options *o, const char *name, const char *v)
{
    if (!strcmp(name, "--probs-type")) {
        if (!strcasecmp(v, "Byte") || !strcasecmp(v, "Float32")) {
            o->float_probs = !strcasecmp(v, "Float32");
            return 1;
        }
        cnp_error(ctx, CNP_ERR_USAGE, "--probs-type expects Byte or Float32, got '%s'", v);
        return 0;
    }
    if (!strcmp(name, "-of")) {
        if (!strcasecmp(v, "GTiff") || !strcasecmp(v, "COG")) {
            o->format = !strcasecmp(v, "COG") ? CNP_CLASSIFY_COG : CNP_CLASSIFY_GTIFF;
            return 1;
        }
        cnp_error(ctx, CNP_ERR_USAGE, "-of expects GTiff or COG, got '%s'", v);
        return 0;
    }
    /* --precision */
    return cnp_parse_precision(ctx, v, &o->precision);
}

/* --scl-unusable: SCL classes 0..11, comma-separated. */
static int parse_scl_classes(cnp_ctx *ctx, cnp_classify_options *o, const char *name,
                             const char *v)
{
    char **parts = CSLTokenizeString2(v, ",", 0);
    int k, cls, ok = CSLCount(parts) > 0;
    memset(o->scl_unusable, 0, sizeof o->scl_unusable);
    for (k = 0; ok && parts[k]; k++) {
        ok = cnp_parse_int(ctx, name, parts[k], 0, CNP_CLASSIFY_SCL_CLASSES - 1, &cls);
        if (ok)
            o->scl_unusable[cls] = 1;
    }
    CSLDestroy(parts);
    if (!ok && ctx->status == CNP_OK)
        cnp_error(ctx, CNP_ERR_USAGE, "%s expects SCL classes 0 to 11, e.g. 0,1,3,8,9,10", name);
    o->have_scl_unusable = ok;
    return ok;
}

/* One option with its value v. 1 on success, 0 with the error in ctx. */
static int parse_one(cnp_ctx *ctx, cnp_classify_options *o, const char *name, const char *v)
{
    if (!strcmp(name, "-m") || !strcmp(name, "--model"))
        return set_str(&o->model, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (!strcmp(name, "-o") || !strcmp(name, "--output"))
        return set_str(&o->outdir, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (!strcmp(name, "--chip"))
        return cnp_parse_int(ctx, name, v, 8, 65536, &o->chip);
    if (!strcmp(name, "--stride"))
        return cnp_parse_int(ctx, name, v, 1, 65536, &o->stride);
    if (!strcmp(name, "--bands"))
        return parse_int_list(ctx, name, v, o->bands, CNP_CLASSIFY_MAX_CHANNELS, &o->n_bands);
    if (!strcmp(name, "--scale-range"))
        return parse_scale_range(ctx, o, name, v);
    if (!strcmp(name, "--gsd")) {
        if (!strcasecmp(v, "native")) {
            o->gsd_mode = CNP_CLASSIFY_GSD_NATIVE;
            return 1;
        }
        o->gsd_mode = CNP_CLASSIFY_GSD_USER;
        return cnp_parse_double(ctx, name, v, 1e-3, 1e6, &o->gsd_m);
    }
    if (!strcmp(name, "--min-valid"))
        return cnp_parse_double(ctx, name, v, 0.0, 1.0, &o->min_valid);
    if (!strcmp(name, "--threshold")) {
        const char *e = strchr(v, '=');
        double p;
        if (!e || e == v)
            return !cnp_error(ctx, CNP_ERR_USAGE, "--threshold expects LABEL=P, got '%s'", v);
        if (!cnp_parse_double(ctx, name, e + 1, 0.0, 1.0, &p))
            return 0;
        o->thresholds = CSLAddString(o->thresholds, v);
        return 1;
    }
    if (!strcmp(name, "--markers"))
        return set_str(&o->markers, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (!strcmp(name, "--threads"))
        return cnp_parse_int(ctx, name, v, 1, 1024, &o->threads);
    if (!strcmp(name, "--precision") || !strcmp(name, "--probs-type") || !strcmp(name, "-of"))
        return parse_enum(ctx, o, name, v);
    if (!strcmp(name, "-co")) {
        if (!strchr(v, '=') || v[0] == '=')
            return !cnp_error(ctx, CNP_ERR_USAGE, "-co expects NAME=VALUE, got '%s'", v);
        o->creation_options = CSLAddString(o->creation_options, v);
        return 1;
    }
    if (!strcmp(name, "--alerts"))
        return set_str(&o->alerts_dir, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (!strcmp(name, "--alerts-grid"))
        return set_str(&o->alerts_grid, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (!strcmp(name, "--alerts-baseline"))
        return cnp_parse_int(ctx, name, v, 1, 1000, &o->alerts_baseline);
    if (!strcmp(name, "--alerts-dismiss"))
        return cnp_parse_int(ctx, name, v, 1, 1000, &o->alerts_dismiss);
    if (!strcmp(name, "--alerts-high"))
        return cnp_parse_double(ctx, name, v, 1e-6, 1.0, &o->alerts_high);
    if (!strcmp(name, "--date")) {
        int day;
        if (!cnp_date_parse(v, &day))
            return !cnp_error(ctx, CNP_ERR_USAGE, "--date expects YYYY-MM-DD, got '%s'", v);
        return set_str(&o->date, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(name, "--mask")) {
        o->mask_mode = strcasecmp(v, "none") ? CNP_CLASSIFY_MASK_FILE : CNP_CLASSIFY_MASK_NONE;
        return set_str(&o->mask_file, v) || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(name, "--scl-unusable"))
        return parse_scl_classes(ctx, o, name, v);
    /* Extension point: options of later steps go here. */
    return -1;
}

/* Checks of the whole command line. */
static int check_all(cnp_ctx *ctx, cnp_classify_options *o)
{
    if (!o->outdir)
        return !cnp_error(ctx, CNP_ERR_USAGE, "no output folder; give one with -o OUTDIR");
    if (!o->inputs)
        return !cnp_error(ctx, CNP_ERR_USAGE, "no scene given");
    if (o->stride == 0)
        o->stride = o->chip;
    if (o->stride > o->chip)
        return !cnp_error(ctx, CNP_ERR_USAGE, "--stride %d is larger than --chip %d and would "
                          "leave gaps between chips", o->stride, o->chip);
    if (!o->alerts_dir && (o->alerts_grid || o->alerts_baseline || o->alerts_high ||
                           o->alerts_dismiss))
        return !cnp_error(ctx, CNP_ERR_USAGE, "--alerts-grid, --alerts-baseline, --alerts-high "
                          "and --alerts-dismiss need --alerts DIR");
    {   /* -co against the driver, lossy ones refused: now, not after classifying */
        cnp_raster_options ro = { o->format == CNP_CLASSIFY_COG ? CNP_FORMAT_COG
                                                                : CNP_FORMAT_GTIFF,
                                  o->float_probs, (const char *const *)o->creation_options,
                                  o->lossy_probs };
        if (cnp_raster_options_check(ctx, &ro) != CNP_OK)
            return 0;
    }
    return 1;
}

/* argv[*i] is an option: parses it (and its value). 1 go on, 0 error, 2 help. */
static int parse_arg(cnp_ctx *ctx, cnp_classify_options *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v = NULL, *eq;
    char name[64];
    int takes, rc;

    snprintf(name, sizeof name, "%s", a);
    eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    if (eq && (size_t)(eq - a) < sizeof name) {
        name[eq - a] = '\0';
        v = eq + 1;
    }
    if (!strcmp(name, "-h") || !strcmp(name, "--help"))
        return 2;
    if (!is_flag(name) && !in_list(name, valued))
        return unknown_option(ctx, a);
    takes = !is_flag(name);
    if (!takes && v && !strcmp(name, "--progress") && !strcmp(v, "jsonl")) {
        o->progress = CNP_PROGRESS_JSONL;
        return 1;
    }
    if (takes && !v && !strcmp(name, "--config")) {
        if (*i + 2 >= argc)
            return !cnp_error(ctx, CNP_ERR_USAGE, "--config expects KEY VALUE");
        o->config = CSLSetNameValue(o->config, argv[*i + 1], argv[*i + 2]);
        *i += 2;
        return 1;
    }
    if (takes && !v) {
        if (*i + 1 >= argc)
            return !cnp_error(ctx, CNP_ERR_USAGE, "%s expects a value", name);
        v = argv[++*i];
    } else if (!takes && v) {
        if (!strcmp(name, "--progress"))
            return !cnp_error(ctx, CNP_ERR_USAGE, "--progress takes no value (or =jsonl for "
                              "the JSONL event stream)");
        return !cnp_error(ctx, CNP_ERR_USAGE, "%s takes no value", name);
    }
    if (!takes)
        return parse_flag(o, name);
    rc = parse_one(ctx, o, name, v);
    if (rc < 0)
        return unknown_option(ctx, a);
    return rc;
}

cnp_classify_options *cnp_classify_options_new(int argc, char **argv, cnp_ctx *ctx)
{
    cnp_classify_options *o = cnp_classify_options_defaults(ctx);
    int i, rc = 1;

    if (!o)
        return NULL;
    for (i = 0; i < argc && rc == 1; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !strcmp(a, "-")) {
            o->inputs = CSLAddString(o->inputs, a);
        } else if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                o->inputs = CSLAddString(o->inputs, argv[i]);
        } else {
            rc = parse_arg(ctx, o, argc, argv, &i);
        }
    }
    if (rc == 2) {
        o->help = 1;
        return o;
    }
    if (rc == 1 && argc > 0)
        rc = check_all(ctx, o);
    if (rc != 1) {
        cnp_classify_options_free(o);
        return NULL;
    }
    return o;
}

void cnp_classify_options_free(cnp_classify_options *o)
{
    if (!o)
        return;
    free(o->model);
    free(o->outdir);
    free(o->markers);
    free(o->mask_file);
    CSLDestroy(o->thresholds);
    CSLDestroy(o->creation_options);
    CSLDestroy(o->config);
    CSLDestroy(o->inputs);
    free(o->alerts_dir);
    free(o->alerts_grid);
    free(o->date);
    free(o);
}

cnp_status cnp_classify_options_set_model(cnp_ctx *ctx, cnp_classify_options *o,
                                          const char *path)
{
    if (!set_str(&o->model, path))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    return CNP_OK;
}

cnp_status cnp_classify_options_set_outdir(cnp_ctx *ctx, cnp_classify_options *o,
                                           const char *dir)
{
    if (!set_str(&o->outdir, dir))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    return CNP_OK;
}

cnp_status cnp_classify_options_add_input(cnp_ctx *ctx, cnp_classify_options *o,
                                          const char *input)
{
    o->inputs = CSLAddString(o->inputs, input);
    if (!o->inputs)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    return CNP_OK;
}
