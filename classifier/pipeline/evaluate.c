/* evaluate.c -- cnp_evaluate() (canopy/evaluate.h): labels, images, the
 * chips through the batcher, scores, threshold optimisation, the model
 * copy and the report, one step function each. */
#define _GNU_SOURCE
#include "config.h"
#include "canopy/evaluate.h"
#include "eval/eval.h"
#include "pipeline/batcher.h"
#include "pipeline/pipeline.h"

#include <cpl_string.h>
#include <json.h>

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------ */

static int parse_num(cnp_ctx *ctx, cnp_evaluate_options *o, const char *a, const char *v)
{
    char *end;
    double d;
    long n;
    if (!strcmp(a, "--seed")) {
        errno = 0;
        o->seed = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' || o->seed > INT64_MAX)
            return !cnp_error(ctx, CNP_ERR_USAGE, "--seed expects a whole number from 0 to "
                              "%lld, got '%s'", (long long)INT64_MAX, v);
        return 1;
    }
    if (!strcmp(a, "--split")) {
        errno = 0;
        d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d) || d < 0.0 || d > 1.0)
            return !cnp_error(ctx, CNP_ERR_USAGE, "%s expects a number from %g to %g, got '%s'",
                              a, 0.0, 1.0, v);
        if (!(d > 0.0 && d < 1.0))
            return !cnp_error(ctx, CNP_ERR_USAGE, "--split expects a fraction between 0 and 1 "
                              "(exclusive), got '%s'", v);
        o->split = d;
        return 1;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    {
        int hi = !strcmp(a, "--batch") ? 4096 : 1024;
        if (errno || end == v || *end || n < 1 || n > hi)
            return !cnp_error(ctx, CNP_ERR_USAGE, "%s expects a whole number from %d to %d, got "
                              "'%s'", a, 1, hi, v);
    }
    *(!strcmp(a, "--batch") ? &o->batch : &o->threads) = (int)n;
    return 1;
}

/* An option taking a value v. 1 ok, 0 error, -1 not one of these. */
static int parse_valued(cnp_ctx *ctx, cnp_evaluate_options *o, const char *a, const char *v)
{
    if (!strcmp(a, "-m") || !strcmp(a, "--model"))
        return cnp_str_replace(ctx, &o->model, v);
    if (!strcmp(a, "--labels"))
        return cnp_str_replace(ctx, &o->labels, v);
    if (!strcmp(a, "--images"))
        return cnp_str_replace(ctx, &o->images, v);
    if (!strcmp(a, "--write-model"))
        return cnp_str_replace(ctx, &o->write_model, v);
    if (!strcmp(a, "--report"))
        return cnp_str_replace(ctx, &o->report, v);
    if (!strcmp(a, "--ext")) {
        const char *e = v[0] == '.' ? v + 1 : v;
        if (!e[0] || strchr(e, '/'))
            return !cnp_error(ctx, CNP_ERR_USAGE, "--ext expects an extension such as jpg or "
                              "tif, got '%s'", v);
        return cnp_str_replace(ctx, &o->ext, e);
    }
    if (!strcmp(a, "--precision"))
        return cnp_parse_precision(ctx, v, &o->precision);
    if (!strcmp(a, "--split") || !strcmp(a, "--seed") || !strcmp(a, "--threads") ||
        !strcmp(a, "--batch"))
        return parse_num(ctx, o, a, v);
    return -1;
}

static int check_options(cnp_ctx *ctx, const cnp_evaluate_options *o)
{
    if (!o->labels || !o->images)
        return !cnp_error(ctx, CNP_ERR_USAGE, "--labels CSV and --images DIR are required");
    if (o->split > 0.0 && !o->optimize)
        return !cnp_error(ctx, CNP_ERR_USAGE, "--split holds out chips for "
                          "--optimize-thresholds; add that option");
    if (o->write_model && !o->optimize)
        return !cnp_error(ctx, CNP_ERR_USAGE, "--write-model writes optimised thresholds; add "
                          "--optimize-thresholds");
    return 1;
}

cnp_evaluate_options *cnp_evaluate_options_new(int argc, char **argv, cnp_ctx *ctx)
{
    cnp_evaluate_options *o = cnp_calloc(ctx, 1, sizeof *o, "evaluate options");
    int i, rc = 1;

    if (!o)
        return NULL;
    o->batch = 16;
    if (!(o->ext = cnp_strdup(ctx, "jpg")))
        rc = 0;
    for (i = 0; i < argc && rc == 1; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = 1;
            return o;
        } else if (!strcmp(a, "--tta")) {
            o->tta = 1;
        } else if (!strcmp(a, "--optimize-thresholds") || !strcmp(a, "--optimise-thresholds")) {
            o->optimize = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (a[0] != '-') {
            rc = !cnp_error(ctx, CNP_ERR_USAGE, "unexpected argument '%s' (the chips are given "
                            "with --labels and --images)", a);
        } else if (parse_valued(ctx, o, a, "x") == -1) {
            rc = !cnp_error(ctx, CNP_ERR_USAGE, "unknown option '%s'", a);
        } else if (!v) {
            rc = !cnp_error(ctx, CNP_ERR_USAGE, "%s needs a value", a);
        } else {
            rc = parse_valued(ctx, o, a, v);
            i++;
        }
    }
    if (rc == 1 && argc > 0)
        rc = check_options(ctx, o);
    if (rc != 1) {
        cnp_evaluate_options_free(o);
        return NULL;
    }
    return o;
}

void cnp_evaluate_options_free(cnp_evaluate_options *o)
{
    if (!o)
        return;
    free(o->model);
    free(o->labels);
    free(o->images);
    free(o->ext);
    free(o->write_model);
    free(o->report);
    free(o);
}

void cnp_evaluate_result_free(cnp_evaluate_result *r)
{
    if (!r)
        return;
    free(r->message);
    free(r->model_name);
    free(r->model_version);
    CSLDestroy(r->labels);
    free(r->thresholds);
    CSLDestroy(r->unknown_names);
    free(r->unknown_counts);
    free(r->first_missing);
    free(r->scores);
    free(r->scores_tta);
    free(r->thresholds_after);
    free(r->scores_after);
    free(r->thresholds_json);
    free(r);
}

/* ---- the run -------------------------------------------------------------- */

typedef struct eval_run {
    const cnp_evaluate_options *o;
    cnp_progress_fn progress;
    cnp_message_fn messages;
    void *user;
    cnp_evaluate_result *r;
    cnp_model *model;
    const cnp_model_meta *meta;
    cnp_label_table *table;
    int L;
    char **paths;              /* (table->n_rows) image path or NULL if missing */
    int *chip_row;             /* (n) table row of each scored chip */
    unsigned char *truth;      /* (n, L) */
    float *probs, *probs_tta;  /* (n, L) */
    cnp_label_metrics *lm, *lm_tta, *lm_after; /* (L) */
    int *fit, *held;
} eval_run;

static void say(eval_run *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(eval_run *e, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) >= 0 && e->messages)
        e->messages(msg, e->user);
    va_end(ap);
    free(msg);
}

static void note_table(eval_run *e)
{
    const cnp_label_table *t = e->table;
    char *line = NULL, *more;
    int i;
    if (t->n_duplicates)
        say(e, "%s: %d repeated image name%s (first at line %d); the first line of each name "
            "counts%s", e->o->labels, t->n_duplicates, t->n_duplicates == 1 ? "" : "s",
            t->duplicate_line,
            t->n_duplicates_conflicting ? ", though some repeats have other tags" : "");
    if (!t->n_unknown_tags)
        return;
    if (asprintf(&line, "%s: %ld tag%s on %d line%s not among the model's labels, ignored:",
                 e->o->labels, t->n_unknown_tags, t->n_unknown_tags == 1 ? "" : "s",
                 t->n_unknown_rows, t->n_unknown_rows == 1 ? "" : "s") < 0)
        return;
    for (i = 0; line && i < t->n_unknown_names && i < 10; i++) {
        if (asprintf(&more, "%s %s (%ld)", line, t->unknown_names[i], t->unknown_counts[i]) < 0)
            more = NULL;
        free(line);
        line = more;
    }
    if (line)
        say(e, "%s%s", line, t->n_unknown_names > 10 ? " ..." : "");
    free(line);
}

/* Step 1: the model and the label file. */
static cnp_status read_labels(cnp_ctx *ctx, eval_run *e)
{
    const cnp_evaluate_options *o = e->o;
    size_t k, cells, known = 0;
    cnp_status st;

    if ((st = cnp_blas_init(ctx)) != CNP_OK || (st = cnp_model_load(ctx, o->model, &e->model)))
        return st;
    e->meta = cnp_model_meta_cget(e->model);
    e->L = e->meta->n_labels;
    if ((st = cnp_label_table_read(ctx, o->labels, (const char *const *)e->meta->labels, e->L,
                                   &e->table)) != CNP_OK)
        return st;
    note_table(e);
    cells = (size_t)e->table->n_rows * (size_t)e->L;
    for (k = 0; k < cells; k++)
        known += e->table->truth[k];
    if (known == 0 && e->table->n_unknown_tags > 0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: none of its tags is a label of %s (e.g. '%s' "
                         "is not among '%s'%s); use the model these labels were made for",
                         o->labels, o->model, e->table->unknown_names[0], e->meta->labels[0],
                         e->L > 1 ? ", ..." : "");
    return CNP_OK;
}

/* Step 2: which images exist. */
static cnp_status find_images(cnp_ctx *ctx, eval_run *e)
{
    const cnp_evaluate_options *o = e->o;
    cnp_evaluate_result *r = e->r;
    struct stat sb;
    long i;

    r->listed = e->table->n_rows;
    if (!(e->paths = cnp_calloc(ctx, (size_t)r->listed + 1, sizeof *e->paths, "image paths")))
        return CNP_ERR_NOMEM;
    {
        int bad = stat(o->images, &sb) != 0;
        if (bad || !S_ISDIR(sb.st_mode))
            return cnp_error(ctx, CNP_ERR_IO, "%s: not a folder (%s); --images names the folder "
                             "holding NAME.%s for each line of %s", o->images,
                             bad ? strerror(errno) : "a file", o->ext, o->labels);
    }
    for (i = 0; i < r->listed; i++) {
        char *p;
        if (asprintf(&p, "%s/%s.%s", o->images, e->table->names[i], o->ext) < 0)
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory for image paths");
        if (stat(p, &sb) != 0 || S_ISDIR(sb.st_mode)) {
            r->missing++;
            if (!r->first_missing)
                r->first_missing = strdup(e->table->names[i]);
            free(p);
            continue;
        }
        e->paths[i] = p;
    }
    if (r->missing == r->listed)
        return cnp_error(ctx, CNP_ERR_IO, "%s: none of the %ld images listed in %s is there "
                         "(e.g. %s/%s.%s); check --images and --ext", o->images, r->listed,
                         o->labels, o->images, e->table->names[0], o->ext);
    if (r->missing)
        say(e, "%ld of the %ld images listed in %s %s not in %s (e.g. %s.%s); scoring the %ld "
            "found", r->missing, r->listed, o->labels, r->missing == 1 ? "is" : "are",
            o->images, r->first_missing ? r->first_missing : "", o->ext,
            r->listed - r->missing);
    return CNP_OK;
}

static void on_chip(void *user, long row, const float *p, const float *p_tta, const cnp_ctx *err)
{
    eval_run *e = user;
    size_t at = (size_t)e->r->n * (size_t)e->L;
    if (!p) {
        if (e->messages)
            e->messages(err->msg[0] ? err->msg : cnp_status_name(err->status), e->user);
        e->r->unreadable++;
        return;
    }
    e->chip_row[e->r->n] = (int)row;
    memcpy(e->probs + at, p, (size_t)e->L * sizeof *p);
    if (p_tta)
        memcpy(e->probs_tta + at, p_tta, (size_t)e->L * sizeof *p);
    e->r->n++;
}

static int on_batch(double done, const char *msg, void *user)
{
    eval_run *e = user;
    long total = e->r->listed - e->r->missing;
    char text[64];
    (void)done;
    (void)msg;
    snprintf(text, sizeof text, "%ld of %ld chips", e->r->n + e->r->unreadable, total);
    return !e->progress || e->progress((double)(e->r->n + e->r->unreadable) / (double)total,
                                       text, e->user);
}

/* Step 3: every image through the model (plain, and TTA when asked). */
static cnp_status run_chips(cnp_ctx *ctx, eval_run *e)
{
    const cnp_evaluate_options *o = e->o;
    const cnp_model_meta *meta = e->meta;
    size_t n = (size_t)e->r->listed, elems;
    cnp_chip_spec spec;
    cnp_batcher b;
    cnp_chip_job job;
    cnp_status st;
    char text[4200];
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : nc > 0 ? (int)nc : 1;

    st = cnp_model_prepare(ctx, e->model, &(cnp_prepare_options){
                               .max_batch = o->batch, .height = meta->input_size,
                               .width = meta->input_size, .n_threads = threads,
                               .flags = (o->tta ? CNP_PREPARE_TTA : 0) |
                                        cnp_precision_flags(o->precision, o->no_bf16,
                                                            o->no_int8)});
    if (st != CNP_OK)
        return st;
    if (!cnp_mul_size((size_t)meta->n_channels * (size_t)meta->input_size,
                      (size_t)meta->input_size * (size_t)o->batch, &elems))
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: input size overflows", o->model);
    e->chip_row = cnp_calloc(ctx, n, sizeof *e->chip_row, "results");
    e->truth = cnp_calloc(ctx, n * (size_t)e->L, 1, "results");
    e->probs = cnp_calloc(ctx, n * (size_t)e->L, sizeof *e->probs, "results");
    if (o->tta)
        e->probs_tta = cnp_calloc(ctx, n * (size_t)e->L, sizeof *e->probs, "results");
    if (!e->chip_row || !e->truth || !e->probs || (o->tta && !e->probs_tta))
        return CNP_ERR_NOMEM;
    cnp_batcher_chip_spec(&spec, meta);
    snprintf(text, sizeof text, "scoring %ld chips with %s", e->r->listed - e->r->missing,
             o->model);
    if (e->progress && !e->progress(0.0, text, e->user))
        return cnp_error(ctx, CNP_ERR_CANCELLED, "cancelled");
    memset(&job, 0, sizeof job);
    job.spec = &spec;
    job.paths = (const char *const *)e->paths;
    job.n = e->r->listed;
    job.threads = threads;
    job.want_plain = 1;
    job.want_tta = o->tta;
    job.on_chip = on_chip;
    job.user = e;
    job.progress = on_batch;
    job.progress_user = e;
    cnp_batcher_init(&b, e->model, o->batch);
    if ((st = cnp_batcher_chips(ctx, &b, &job)) != CNP_OK)
        return st;
    if (e->r->n == 0)
        return cnp_error(ctx, CNP_ERR_IO, "none of the %ld images found in %s could be read; "
                         "nothing to score", e->r->listed - e->r->missing, o->images);
    for (n = 0; n < (size_t)e->r->n; n++)
        memcpy(e->truth + n * (size_t)e->L,
               e->table->truth + (size_t)e->chip_row[n] * (size_t)e->L, (size_t)e->L);
    return CNP_OK;
}


static void copy_scores(cnp_label_score *dst, const cnp_label_metrics *m, int L)
{
    int l;
    for (l = 0; l < L; l++) {
        dst[l].support = m[l].support;
        dst[l].predicted = m[l].predicted;
        dst[l].tp = m[l].tp;
        dst[l].precision = m[l].precision;
        dst[l].recall = m[l].recall;
        dst[l].f2 = m[l].f2;
    }
}

/* Step 4: scores at the model's thresholds (and with TTA). */
static cnp_status score(cnp_ctx *ctx, eval_run *e)
{
    cnp_evaluate_result *r = e->r;
    const float *thr = e->meta->thresholds;
    cnp_sample_scores sc;
    int L = e->L, n = (int)r->n;

    e->lm = cnp_calloc(ctx, (size_t)L, sizeof *e->lm, "scores");
    e->lm_tta = cnp_calloc(ctx, (size_t)L, sizeof *e->lm, "scores");
    e->lm_after = cnp_calloc(ctx, (size_t)L, sizeof *e->lm, "scores");
    r->scores = cnp_calloc(ctx, (size_t)L, sizeof *r->scores, "scores");
    r->scores_tta = cnp_calloc(ctx, (size_t)L, sizeof *r->scores, "scores");
    r->scores_after = cnp_calloc(ctx, (size_t)L, sizeof *r->scores, "scores");
    r->thresholds_after = cnp_calloc(ctx, (size_t)L, sizeof(float), "thresholds");
    if (!e->lm || !e->lm_tta || !e->lm_after || !r->scores || !r->scores_tta ||
        !r->scores_after || !r->thresholds_after)
        return CNP_ERR_NOMEM;
    sc = cnp_scores_samples(e->truth, e->probs, L, thr, NULL, n);
    r->f2 = sc.f2;
    r->precision_samples = sc.precision;
    r->recall_samples = sc.recall;
    cnp_scores_labels(e->truth, e->probs, L, thr, NULL, n, e->lm);
    copy_scores(r->scores, e->lm, L);
    if (e->o->tta) {
        sc = cnp_scores_samples(e->truth, e->probs_tta, L, thr, NULL, n);
        r->f2_tta = sc.f2;
        r->precision_samples_tta = sc.precision;
        r->recall_samples_tta = sc.recall;
        cnp_scores_labels(e->truth, e->probs_tta, L, thr, NULL, n, e->lm_tta);
        copy_scores(r->scores_tta, e->lm_tta, L);
    }
    return CNP_OK;
}

/* Step 5: thresholds optimised (on the fitted part), the model copy. */
static cnp_status optimize(cnp_ctx *ctx, eval_run *e)
{
    const cnp_evaluate_options *o = e->o;
    cnp_evaluate_result *r = e->r;
    const cnp_threshold_grid grid = CNP_THRESHOLD_GRID_DEFAULT;
    const float *pp = o->tta ? e->probs_tta : e->probs, *thr0 = e->meta->thresholds;
    float *thr = r->thresholds_after;
    int L = e->L;
    cnp_status st;

    memcpy(thr, thr0, (size_t)L * sizeof *thr);
    if (o->split > 0.0) {
        if ((st = cnp_split_rows(ctx, (int)r->n, o->split, (uint64_t)o->seed, &e->fit,
                                 &r->n_fit, &e->held, &r->n_heldout)) != CNP_OK)
            return st;
    } else {
        r->n_fit = (int)r->n;
    }
    cnp_threshold_result opt;
    if ((st = cnp_thresholds_optimize(ctx, &(cnp_threshold_data){e->truth, pp, L, e->fit, r->n_fit},
                                      &grid, thr, &opt)) != CNP_OK)
        return st;
    r->f2_before = opt.f2_before;
    r->f2_after = opt.f2_after;
    r->passes = opt.n_passes;
    if (e->held) {
        r->f2_heldout_before = cnp_scores_samples(e->truth, pp, L, thr0, e->held,
                                                  r->n_heldout).f2;
        r->f2_heldout_after = cnp_scores_samples(e->truth, pp, L, thr, e->held,
                                                 r->n_heldout).f2;
        cnp_scores_labels(e->truth, pp, L, thr, e->held, r->n_heldout, e->lm_after);
    } else {
        cnp_scores_labels(e->truth, pp, L, thr, NULL, r->n_fit, e->lm_after);
    }
    copy_scores(r->scores_after, e->lm_after, L);
    if (!o->write_model)
        return CNP_OK;
    r->thresholds_json = cnp_thresholds_json(ctx, thr, L);
    if (!r->thresholds_json)
        return ctx->status ? ctx->status : CNP_ERR_NOMEM;
    return cnp_onnx_set_metadata(ctx, o->model, o->write_model, "canopy.thresholds",
                                 r->thresholds_json);
}

/* ---- the report ----------------------------------------------------------- */

/* A threshold as JSON: the number in its shortest exact form (0.14, not
 * 0.14000000059604645). */
static json_object *threshold_json(float t)
{
    char buf[32];
    return json_object_new_double_s((double)t, cnp_float_text(buf, sizeof buf, t));
}

static json_object *labels_json(const eval_run *e, const cnp_label_metrics *m, const float *thr)
{
    json_object *o = json_object_new_object();
    int l;
    for (l = 0; l < e->L; l++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "support", json_object_new_int(m[l].support));
        json_object_object_add(x, "precision", json_object_new_double(m[l].precision));
        json_object_object_add(x, "recall", json_object_new_double(m[l].recall));
        json_object_object_add(x, "f2", json_object_new_double(m[l].f2));
        json_object_object_add(x, "threshold", threshold_json(thr[l]));
        json_object_object_add(o, e->meta->labels[l], x);
    }
    return o;
}

static json_object *thresholds_json(const eval_run *e, const float *thr)
{
    json_object *o = json_object_new_object();
    int l;
    for (l = 0; l < e->L; l++)
        json_object_object_add(o, e->meta->labels[l], threshold_json(thr[l]));
    return o;
}

static void add(json_object *o, const char *key, json_object *v)
{
    json_object_object_add(o, key, v);
}

static json_object *report_inputs(const eval_run *e)
{
    const cnp_evaluate_options *o = e->o;
    const cnp_label_table *t = e->table;
    json_object *rep = json_object_new_object(), *x, *names;
    int i;
    add(rep, "model", json_object_new_string(o->model));
    add(rep, "model_name", json_object_new_string(e->meta->name));
    add(rep, "model_version", json_object_new_string(e->meta->version));
    add(rep, "labels_file", json_object_new_string(o->labels));
    add(rep, "images", json_object_new_string(o->images));
    add(rep, "ext", json_object_new_string(o->ext));
    add(rep, "n", json_object_new_int64(e->r->n));
    add(rep, "rows", json_object_new_int(t->n_records));
    add(rep, "duplicates", json_object_new_int(t->n_duplicates));
    add(rep, "duplicates_conflicting", json_object_new_int(t->n_duplicates_conflicting));
    x = json_object_new_object();
    add(x, "count", json_object_new_int64(t->n_unknown_tags));
    add(x, "lines", json_object_new_int(t->n_unknown_rows));
    names = json_object_new_object();
    for (i = 0; i < t->n_unknown_names; i++)
        add(names, t->unknown_names[i], json_object_new_int64(t->unknown_counts[i]));
    add(x, "names", names);
    add(rep, "unknown_tags", x);
    add(rep, "missing_images", json_object_new_int64(e->r->missing));
    add(rep, "unreadable_images", json_object_new_int64(e->r->unreadable));
    return rep;
}

static void report_optimize(const eval_run *e, json_object *rep)
{
    const cnp_evaluate_options *o = e->o;
    const cnp_evaluate_result *r = e->r;
    const cnp_threshold_grid grid = CNP_THRESHOLD_GRID_DEFAULT;
    json_object *g = json_object_new_object();
    add(rep, "optimized_on", json_object_new_string(o->tta ? "tta" : "plain"));
    add(g, "lo", json_object_new_double(grid.lo));
    add(g, "hi", json_object_new_double(grid.hi));
    add(g, "step", json_object_new_double(grid.step));
    add(rep, "grid", g);
    add(rep, "passes", json_object_new_int(r->passes));
    add(rep, "n_fit", json_object_new_int(r->n_fit));
    add(rep, "f2_before", json_object_new_double(r->f2_before));
    add(rep, "f2_after", json_object_new_double(r->f2_after));
    if (e->held) {
        add(rep, "split", json_object_new_double(o->split));
        add(rep, "seed", json_object_new_int64((int64_t)o->seed));
        add(rep, "n_heldout", json_object_new_int(r->n_heldout));
        add(rep, "f2_heldout_before", json_object_new_double(r->f2_heldout_before));
        add(rep, "f2_heldout_after", json_object_new_double(r->f2_heldout_after));
    }
    add(rep, "thresholds_before", thresholds_json(e, e->meta->thresholds));
    add(rep, "thresholds_after", thresholds_json(e, r->thresholds_after));
    add(rep, "labels_after", labels_json(e, e->lm_after, r->thresholds_after));
    add(rep, "labels_after_on", json_object_new_string(e->held ? "heldout" : "fit"));
    if (o->write_model)
        add(rep, "written_model", json_object_new_string(o->write_model));
}

/* Step 6: the JSON report, written atomically. */
static cnp_status write_report(cnp_ctx *ctx, eval_run *e, double t0)
{
    const cnp_evaluate_options *o = e->o;
    const cnp_evaluate_result *r = e->r;
    json_object *rep = report_inputs(e);
    cnp_status st = CNP_OK;
    const char *s;
    char *buf = NULL;

    add(rep, "zero_division", json_object_new_int(0));
    add(rep, "f2", json_object_new_double(r->f2));
    add(rep, "precision_samples", json_object_new_double(r->precision_samples));
    add(rep, "recall_samples", json_object_new_double(r->recall_samples));
    add(rep, "labels", labels_json(e, e->lm, e->meta->thresholds));
    add(rep, "tta", json_object_new_boolean(o->tta));
    add(rep, "precision", json_object_new_string(cnp_model_precision(e->model)));
    if (o->tta) {
        add(rep, "f2_tta", json_object_new_double(r->f2_tta));
        add(rep, "precision_samples_tta", json_object_new_double(r->precision_samples_tta));
        add(rep, "recall_samples_tta", json_object_new_double(r->recall_samples_tta));
        add(rep, "labels_tta", labels_json(e, e->lm_tta, e->meta->thresholds));
    }
    if (o->optimize)
        report_optimize(e, rep);
    add(rep, "seconds", json_object_new_double(cnp_now() - t0));
    s = json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY |
                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s || asprintf(&buf, "%s\n", s) < 0) {
        buf = NULL;
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory writing the report", o->report);
    } else {
        st = cnp_atomic_write(ctx, o->report, buf, strlen(buf));
    }
    free(buf);
    json_object_put(rep);
    return st;
}

/* The result's copies of the model's and the label file's facts. */
static cnp_status result_facts(cnp_ctx *ctx, eval_run *e)
{
    cnp_evaluate_result *r = e->r;
    const cnp_label_table *t = e->table;
    int i;
    r->model_name = strdup(e->meta->name);
    r->model_version = strdup(e->meta->version);
    r->precision = cnp_model_precision(e->model);
    r->thresholds_defaulted = (e->meta->defaulted & CNP_META_DEF_THRESHOLDS) != 0;
    r->n_labels = e->L;
    r->labels = CSLDuplicate(e->meta->labels);
    r->thresholds = cnp_calloc(ctx, (size_t)e->L, sizeof(float), "thresholds");
    r->rows = t->n_rows;
    r->records = t->n_records;
    r->duplicates = t->n_duplicates;
    r->duplicates_conflicting = t->n_duplicates_conflicting;
    r->duplicate_line = t->duplicate_line;
    r->unknown_tags = t->n_unknown_tags;
    r->unknown_rows = t->n_unknown_rows;
    r->n_unknown_names = t->n_unknown_names;
    r->unknown_counts = cnp_calloc(ctx, (size_t)t->n_unknown_names + 1, sizeof(long), "tags");
    for (i = 0; i < t->n_unknown_names; i++)
        r->unknown_names = CSLAddString(r->unknown_names, t->unknown_names[i]);
    if (!r->model_name || !r->model_version || !r->labels || !r->thresholds ||
        !r->unknown_counts || (t->n_unknown_names && !r->unknown_names))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    memcpy(r->thresholds, e->meta->thresholds, sizeof(float) * (size_t)e->L);
    for (i = 0; i < t->n_unknown_names; i++)
        r->unknown_counts[i] = t->unknown_counts[i];
    return CNP_OK;
}

static void eval_run_free(eval_run *e)
{
    long i;
    for (i = 0; e->paths && e->table && i < e->table->n_rows; i++)
        free(e->paths[i]);
    free(e->paths);
    free(e->chip_row);
    free(e->truth);
    free(e->probs);
    free(e->probs_tta);
    free(e->lm);
    free(e->lm_tta);
    free(e->lm_after);
    free(e->fit);
    free(e->held);
    cnp_label_table_free(e->table);
    cnp_model_free(e->model);
}

cnp_status cnp_evaluate(const cnp_evaluate_options *o, cnp_progress_fn progress,
                        cnp_message_fn messages, void *user, cnp_evaluate_result **out)
{
    eval_run e;
    cnp_ctx ctx;
    cnp_status st = CNP_OK;
    double t0 = cnp_now();

    memset(&e, 0, sizeof e);
    cnp_ctx_clear(&ctx);
    e.o = o;
    e.progress = progress;
    e.messages = messages;
    e.user = user;
    *out = e.r = calloc(1, sizeof *e.r);
    if (!e.r)
        return CNP_ERR_NOMEM;
    if ((o->report && (st = cnp_check_writable(&ctx, "the report", o->report)) != CNP_OK) ||
        (o->write_model && (st = cnp_check_writable(&ctx, "the model", o->write_model)) != CNP_OK))
        goto cleanup;
    if ((st = read_labels(&ctx, &e)) != CNP_OK || (st = find_images(&ctx, &e)) != CNP_OK ||
        (st = run_chips(&ctx, &e)) != CNP_OK || (st = score(&ctx, &e)) != CNP_OK ||
        (o->optimize && (st = optimize(&ctx, &e)) != CNP_OK) ||
        (st = result_facts(&ctx, &e)) != CNP_OK ||
        (o->report && (st = write_report(&ctx, &e, t0)) != CNP_OK))
        goto cleanup;
cleanup:
    e.r->status = st;
    e.r->message = strdup(st == CNP_OK ? "" : ctx.msg[0] ? ctx.msg : cnp_status_name(st));
    e.r->seconds = cnp_now() - t0;
    eval_run_free(&e);
    return st;
}
