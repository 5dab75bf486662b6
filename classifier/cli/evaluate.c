/* evaluate.c -- `canopy evaluate`: a model on labelled chips (the Kaggle
 * train_v2.csv layout) -> sample-averaged F2, per-label precision, recall
 * and F2, optionally with test-time augmentation, per-label thresholds
 * optimised on (part of) the chips and written back into a copy of the
 * model. */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "pipeline/batcher.h"
#include "engine/engine.h"
#include "eval/eval.h"
#include "scene/scene.h"

#include <cpl_progress.h>
#include <errno.h>
#include <json.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "evaluate"

static void print_help(FILE *f)
{
    fputs(
"Usage: canopy evaluate [-m MODEL] --labels CSV --images DIR [--ext EXT]\n"
"                       [--tta] [--optimize-thresholds [--split F [--seed N]]\n"
"                       [--write-model OUT.onnx]] [--report REPORT.json]\n"
"                       [--threads N] [--batch N] [--precision fp32|bf16] [-q]\n"
"\n"
"Runs a model on labelled image chips and measures how well it does.\n"
"\n"
"Input, the Kaggle \"Planet: Understanding the Amazon from Space\" layout:\n"
"  --labels CSV      header 'image_name,tags', then one line per image, tags\n"
"                    separated by spaces (train_v2.csv). CRLF, quoted fields and\n"
"                    blank lines are fine. Images missing from DIR, tags the model\n"
"                    does not have (ignored) and repeated names (the first line\n"
"                    counts) are counted and reported.\n"
"  --images DIR      the chips, DIR/NAME.EXT, any image GDAL reads, resampled to\n"
"                    the model's input size\n"
"  --ext EXT         file extension of the chips (default jpg; e.g. tif)\n"
"  -m, --model FILE  ONNX model with canopy metadata (default: $CANOPY_MODEL or\n"
"                    the installed demo model)\n"
"\n"
"Output (stdout): the number of chips, the sample-averaged F2 (beta = 2) at the\n"
"model's thresholds, and per label: support, precision, recall, F2, threshold.\n"
"A label counts as predicted when its probability >= its threshold. Scores follow\n"
"scikit-learn (fbeta_score(beta=2, average='samples') and average=None with the\n"
"default zero_division): a chip without a correctly predicted label scores F2 = 0,\n"
"including a chip with no true and no predicted label; a label never predicted\n"
"has precision 0, a label that never occurs has recall 0.\n"
"\n"
"Options:\n"
"  --tta             also score the mean probabilities over the 8 rotations and\n"
"                    flips of each chip (9x the compute); reported beside the plain\n"
"                    scores, and used for --optimize-thresholds\n"
"  --optimize-thresholds\n"
"                    per-label thresholds that maximise the sample-averaged F2:\n"
"                    coordinate ascent over the labels on the grid 0.01..0.99 step\n"
"                    0.01, repeated until a pass changes nothing; reports the F2\n"
"                    before and after\n"
"  --split F         fit the thresholds on a random (1 - F) of the chips and report\n"
"                    the F2 before and after on the held-out fraction F (0 < F < 1)\n"
"  --seed N          seed of the split (default 0): same chips and seed, same split\n"
"  --write-model OUT write a copy of the model with the optimised thresholds in its\n"
"                    canopy.thresholds metadata; every other byte is unchanged\n"
"  --report FILE     the same results as JSON (keys n, f2, labels, and f2_tta,\n"
"                    f2_before, f2_after, f2_heldout_before, f2_heldout_after,\n"
"                    thresholds_after ... where they apply)\n"
"  --threads N       threads (default: all cores)\n"
"  --batch N         chips per forward pass (default 16)\n"
"  --precision P     fp32 (default) or bf16: convolutions in bf16 with fp32\n"
"                    accumulation on CPUs with AVX512_BF16 (fp32 with a message\n"
"                    elsewhere); the report's key precision says which ran\n"
"  -q, --quiet       no progress\n"
"\n"
"Exit status: 0 success; 1 the model or the label file could not be used, no chip\n"
"was left to score, or some chips could not be read (they are reported; the\n"
"others are scored and written); 2 usage error.\n",
        f);
}

typedef struct options {
    const char *model, *labels, *images, *ext;
    const char *write_model, *report;
    double split;
    unsigned long long seed;
    int tta, optimize, threads, batch, quiet;
    int bf16;                   /* --precision bf16 */
} options;

/* Returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    int i;
    memset(o, 0, sizeof *o);
    o->model = cnp_cli_default_model();
    o->ext = "jpg";
    o->batch = 16;
    o->threads = cnp_cli_default_threads();
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                          \
    do {                                                                      \
        if (!v)                                                               \
            return cnp_cli_usage_error(CMD, "%s needs a value", a);           \
        i++;                                                                  \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(stdout);
            return CNP_EXIT_OK;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEED_VALUE();
            o->model = v;
        } else if (!strcmp(a, "--labels")) {
            NEED_VALUE();
            o->labels = v;
        } else if (!strcmp(a, "--images")) {
            NEED_VALUE();
            o->images = v;
        } else if (!strcmp(a, "--ext")) {
            NEED_VALUE();
            o->ext = v[0] == '.' ? v + 1 : v;
            if (!o->ext[0] || strchr(o->ext, '/'))
                return cnp_cli_usage_error(CMD, "--ext expects an extension such as jpg or "
                                           "tif, got '%s'", v);
        } else if (!strcmp(a, "--split")) {
            NEED_VALUE();
            if (!cnp_cli_parse_double(CMD, a, v, 0.0, 1.0, &o->split))
                return CNP_EXIT_USAGE;
            if (!(o->split > 0.0 && o->split < 1.0))
                return cnp_cli_usage_error(CMD, "--split expects a fraction between 0 and 1 "
                                           "(exclusive), got '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            NEED_VALUE();
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-' || o->seed > INT64_MAX)
                return cnp_cli_usage_error(CMD, "--seed expects a whole number from 0 to %lld, "
                                           "got '%s'", (long long)INT64_MAX, v);
        } else if (!strcmp(a, "--tta")) {
            o->tta = 1;
        } else if (!strcmp(a, "--optimize-thresholds") || !strcmp(a, "--optimise-thresholds")) {
            o->optimize = 1;
        } else if (!strcmp(a, "--write-model")) {
            NEED_VALUE();
            o->write_model = v;
        } else if (!strcmp(a, "--report")) {
            NEED_VALUE();
            o->report = v;
        } else if (!strcmp(a, "--threads")) {
            NEED_VALUE();
            if (!cnp_cli_parse_int(CMD, a, v, 1, 1024, &o->threads))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(a, "--precision")) {
            NEED_VALUE();
            if (!cnp_cli_parse_precision(CMD, v, &o->bf16))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            NEED_VALUE();
            if (!cnp_cli_parse_int(CMD, a, v, 1, 4096, &o->batch))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (a[0] == '-') {
            return cnp_cli_usage_error(CMD, "unknown option '%s'", a);
        } else {
            return cnp_cli_usage_error(CMD, "unexpected argument '%s' (the chips are given "
                                       "with --labels and --images)", a);
        }
#undef NEED_VALUE
    }
    if (!o->labels || !o->images)
        return cnp_cli_usage_error(CMD, "--labels CSV and --images DIR are required");
    if (o->split > 0.0 && !o->optimize)
        return cnp_cli_usage_error(CMD, "--split holds out chips for --optimize-thresholds; "
                                   "add that option");
    if (o->write_model && !o->optimize)
        return cnp_cli_usage_error(CMD, "--write-model writes optimised thresholds; add "
                                   "--optimize-thresholds");
    return -1;
}

/* Whether the folder of `path` lets us create files: checked before the
 * long run rather than after it. */
static int check_writable(const char *what, const char *path)
{
    char *copy = strdup(path);
    const char *dir;
    int ok;
    if (!copy) {
        fprintf(stderr, "canopy %s: out of memory\n", CMD);
        return 0;
    }
    dir = dirname(copy);
    ok = access(dir, W_OK | X_OK) == 0;
    if (!ok)
        fprintf(stderr, "canopy %s: %s: cannot write %s there (%s); choose a writable folder\n",
                CMD, path, what, strerror(errno));
    free(copy);
    return ok;
}

/* Progress: GDAL's terminal progress on a TTY, a plain line per 10 % when
 * not (cron logs), nothing with -q. */
typedef struct progress {
    int quiet, tty, last_decile;
    long total;
} progress;

static void progress_update(progress *p, long done)
{
    double f;
    if (p->quiet || p->total <= 0)
        return;
    f = (double)done / (double)p->total;
    if (p->tty) {
        GDALTermProgress(f, NULL, NULL);
    } else {
        int d = (int)(f * 10.0 + 1e-9);
        if (d > p->last_decile) {
            p->last_decile = d;
            fprintf(stderr, "canopy %s: %d%% (%ld of %ld chips)\n", CMD, d * 10, done, p->total);
        }
    }
}

/* ---- JSON and text output ------------------------------------------------ */

/* A threshold as JSON: the number in its shortest exact form (0.14, not
 * 0.14000000059604645). */
static json_object *threshold_json(float t)
{
    char buf[32];
    return json_object_new_double_s((double)t, cnp_float_text(buf, sizeof buf, t));
}

static json_object *labels_json(const cnp_model_meta *meta, const cnp_label_metrics *m,
                                const float *thr)
{
    json_object *o = json_object_new_object();
    int l;
    for (l = 0; l < meta->n_labels; l++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "support", json_object_new_int(m[l].support));
        json_object_object_add(x, "precision", json_object_new_double(m[l].precision));
        json_object_object_add(x, "recall", json_object_new_double(m[l].recall));
        json_object_object_add(x, "f2", json_object_new_double(m[l].f2));
        json_object_object_add(x, "threshold", threshold_json(thr[l]));
        json_object_object_add(o, meta->labels[l], x);
    }
    return o;
}

static json_object *thresholds_json(const cnp_model_meta *meta, const float *thr)
{
    json_object *o = json_object_new_object();
    int l;
    for (l = 0; l < meta->n_labels; l++)
        json_object_object_add(o, meta->labels[l], threshold_json(thr[l]));
    return o;
}

static void print_table(const cnp_model_meta *meta, const cnp_label_metrics *m, const float *thr,
                        const float *thr_before)
{
    int l, w = 5;
    for (l = 0; l < meta->n_labels; l++) {
        int n = (int)strlen(meta->labels[l]);
        if (n > w)
            w = n;
    }
    printf("  %-*s %8s %9s %8s %8s %9s%s\n", w, "label", "support", "precision", "recall", "F2",
           "threshold", thr_before ? "  (was)" : "");
    for (l = 0; l < meta->n_labels; l++) {
        printf("  %-*s %8d %9.4f %8.4f %8.4f %9.4g", w, meta->labels[l], m[l].support,
               m[l].precision, m[l].recall, m[l].f2, (double)thr[l]);
        if (thr_before)
            printf("  (%.4g)", (double)thr_before[l]);
        putchar('\n');
    }
}

/* ---- the run ------------------------------------------------------------- */

/* Results of the chips as the batcher hands them back, in order. */
typedef struct eval_sink {
    int L;
    int *chip_row;             /* (n) table row of each scored chip */
    float *probs, *probs_tta;  /* (n, L) */
    long n, n_unreadable;
    progress *prog;
} eval_sink;

static void on_chip(void *user, long row, const float *p, const float *p_tta, const cnp_ctx *err)
{
    eval_sink *es = user;
    if (!p) {
        cnp_cli_report(CMD, err);
        es->n_unreadable++;
        return;
    }
    es->chip_row[es->n] = (int)row;
    memcpy(es->probs + (size_t)es->n * (size_t)es->L, p, (size_t)es->L * sizeof *p);
    if (p_tta)
        memcpy(es->probs_tta + (size_t)es->n * (size_t)es->L, p_tta, (size_t)es->L * sizeof *p);
    es->n++;
}

static int on_batch(double done, const char *msg, void *user)
{
    eval_sink *es = user;
    (void)done;
    (void)msg;
    progress_update(es->prog, es->n + es->n_unreadable);
    return 1;
}

int cnp_cmd_evaluate(int argc, char **argv)
{
    options o;
    cnp_ctx ctx;
    cnp_model *model = NULL;
    const cnp_model_meta *meta;
    cnp_label_table *table = NULL;
    cnp_chip_spec spec;
    char **paths = NULL;            /* (table->n_rows) image path or NULL if missing */
    int *chip_row = NULL;           /* (n) table row of each scored chip */
    unsigned char *truth = NULL;    /* (n, L) */
    float *probs = NULL, *probs_tta = NULL; /* (n, L) */
    cnp_batcher batcher;
    cnp_chip_job job;
    eval_sink sink;
    cnp_label_metrics *lm = NULL, *lm_tta = NULL, *lm_after = NULL; /* (L) */
    float *thr = NULL;              /* (L) optimised thresholds */
    int *fit = NULL, *held = NULL, n_fit = 0, n_held = 0;
    char *thr_json = NULL;
    json_object *rep = NULL;
    progress prog;
    size_t chip_elems, batch_elems;
    long n_listed, n_missing = 0, n_unreadable = 0, n = 0, r;
    int rc, L, i, passes = 0;
    double t0 = cnp_now(), f2_before = 0, f2_after = 0, f2_h_before = 0, f2_h_after = 0;
    cnp_sample_scores sc = { 0, 0, 0 }, sc_tta = { 0, 0, 0 };
    const char *first_missing = NULL;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = CNP_EXIT_FAILURE;
    cnp_ctx_clear(&ctx);
    if ((o.report && !check_writable("the report", o.report)) ||
        (o.write_model && !check_writable("the model", o.write_model)))
        goto cleanup;

    if (cnp_blas_init(&ctx) != CNP_OK || cnp_model_load(&ctx, o.model, &model) != CNP_OK)
        goto fail;
    meta = cnp_model_meta_cget(model);
    L = meta->n_labels;

    if (cnp_label_table_read(&ctx, o.labels, (const char *const *)meta->labels, L, &table) !=
        CNP_OK)
        goto fail;
    if (table->n_duplicates)
        fprintf(stderr, "canopy %s: %s: %d repeated image name%s (first at line %d); the first "
                "line of each name counts%s\n", CMD, o.labels, table->n_duplicates,
                table->n_duplicates == 1 ? "" : "s", table->duplicate_line,
                table->n_duplicates_conflicting ? ", though some repeats have other tags" : "");
    if (table->n_unknown_tags) {
        fprintf(stderr, "canopy %s: %s: %ld tag%s on %d line%s not among the model's labels, "
                "ignored:", CMD, o.labels, table->n_unknown_tags,
                table->n_unknown_tags == 1 ? "" : "s", table->n_unknown_rows,
                table->n_unknown_rows == 1 ? "" : "s");
        for (i = 0; i < table->n_unknown_names && i < 10; i++)
            fprintf(stderr, " %s (%ld)", table->unknown_names[i], table->unknown_counts[i]);
        fprintf(stderr, "%s\n", table->n_unknown_names > 10 ? " ..." : "");
    }

    {
        size_t k, cells = (size_t)table->n_rows * (size_t)L, known = 0;
        for (k = 0; k < cells; k++)
            known += table->truth[k];
        if (known == 0 && table->n_unknown_tags > 0) {
            cnp_error(&ctx, CNP_ERR_FORMAT, "%s: none of its tags is a label of %s (e.g. '%s' "
                      "is not among '%s'%s); use the model these labels were made for",
                      o.labels, o.model, table->unknown_names[0], meta->labels[0],
                      L > 1 ? ", ..." : "");
            goto fail;
        }
    }

    /* Which images exist. */
    n_listed = table->n_rows;
    paths = cnp_calloc(&ctx, (size_t)n_listed, sizeof *paths, "image paths");
    if (!paths)
        goto fail;
    {
        struct stat sb;
        int bad = stat(o.images, &sb) != 0;
        if (bad || !S_ISDIR(sb.st_mode)) {
            cnp_error(&ctx, CNP_ERR_IO, "%s: not a folder (%s); --images names the folder "
                      "holding NAME.%s for each line of %s", o.images,
                      bad ? strerror(errno) : "a file", o.ext, o.labels);
            goto fail;
        }
    }
    for (r = 0; r < n_listed; r++) {
        struct stat sb;
        char *p;
        if (asprintf(&p, "%s/%s.%s", o.images, table->names[r], o.ext) < 0) {
            cnp_error(&ctx, CNP_ERR_NOMEM, "out of memory for image paths");
            goto fail;
        }
        if (stat(p, &sb) != 0 || S_ISDIR(sb.st_mode)) {
            n_missing++;
            if (!first_missing)
                first_missing = table->names[r];
            free(p);
            continue;
        }
        paths[r] = p;
    }
    if (n_missing == n_listed) {
        cnp_error(&ctx, CNP_ERR_IO, "%s: none of the %ld images listed in %s is there (e.g. "
                  "%s/%s.%s); check --images and --ext", o.images, n_listed, o.labels, o.images,
                  table->names[0], o.ext);
        goto fail;
    }
    if (n_missing)
        fprintf(stderr, "canopy %s: %ld of the %ld images listed in %s %s not in %s (e.g. "
                "%s.%s); scoring the %ld found\n", CMD, n_missing, n_listed, o.labels,
                n_missing == 1 ? "is" : "are", o.images, first_missing, o.ext,
                n_listed - n_missing);

    /* Model and buffers. */
    if (cnp_model_prepare(&ctx, model, o.batch, meta->input_size, meta->input_size, o.threads,
                          (o.tta ? CNP_PREPARE_TTA : 0) | cnp_cli_precision_flags(o.bf16)) !=
        CNP_OK)
        goto fail;
    cnp_cli_chip_spec(&spec, meta);
    if (!cnp_mul_size((size_t)meta->n_channels, (size_t)meta->input_size, &chip_elems) ||
        !cnp_mul_size(chip_elems, (size_t)meta->input_size, &chip_elems) ||
        !cnp_mul_size(chip_elems, (size_t)o.batch, &batch_elems)) {
        cnp_error(&ctx, CNP_ERR_NOMEM, "%s: input size overflows", o.model);
        goto fail;
    }
    chip_row = cnp_calloc(&ctx, (size_t)n_listed, sizeof *chip_row, "results");
    truth = cnp_calloc(&ctx, (size_t)n_listed * (size_t)L, 1, "results");
    probs = cnp_calloc(&ctx, (size_t)n_listed * (size_t)L, sizeof *probs, "results");
    if (o.tta)
        probs_tta = cnp_calloc(&ctx, (size_t)n_listed * (size_t)L, sizeof *probs, "results");
    if (!chip_row || !truth || !probs || (o.tta && !probs_tta))
        goto fail;

    prog.quiet = o.quiet;
    prog.tty = isatty(STDOUT_FILENO); /* GDALTermProgress writes to stdout */
    prog.last_decile = 0;
    prog.total = n_listed - n_missing;
    if (!o.quiet && !prog.tty)
        fprintf(stderr, "canopy %s: scoring %ld chips with %s\n", CMD, prog.total, o.model);
    progress_update(&prog, 0);

    memset(&sink, 0, sizeof sink);
    sink.L = L;
    sink.chip_row = chip_row;
    sink.probs = probs;
    sink.probs_tta = probs_tta;
    sink.prog = &prog;
    memset(&job, 0, sizeof job);
    job.spec = &spec;
    job.paths = (const char *const *)paths;
    job.n = n_listed;
    job.threads = o.threads;
    job.want_plain = 1;
    job.want_tta = o.tta;
    job.on_chip = on_chip;
    job.user = &sink;
    job.progress = on_batch;
    job.progress_user = &sink;
    cnp_batcher_init(&batcher, model, o.batch);
    if (cnp_batcher_chips(&ctx, &batcher, &job) != CNP_OK)
        goto fail;
    n = sink.n;
    n_unreadable = sink.n_unreadable;
    if (n == 0) {
        cnp_error(&ctx, CNP_ERR_IO, "none of the %ld images found in %s could be read; nothing "
                  "to score", prog.total, o.images);
        goto fail;
    }
    for (i = 0; i < n; i++)
        memcpy(truth + (size_t)i * (size_t)L, table->truth + (size_t)chip_row[i] * (size_t)L,
               (size_t)L);

    /* Scores. */
    lm = cnp_calloc(&ctx, (size_t)L, sizeof *lm, "scores");
    lm_tta = cnp_calloc(&ctx, (size_t)L, sizeof *lm, "scores");
    lm_after = cnp_calloc(&ctx, (size_t)L, sizeof *lm, "scores");
    thr = cnp_calloc(&ctx, (size_t)L, sizeof *thr, "thresholds");
    if (!lm || !lm_tta || !lm_after || !thr)
        goto fail;
    sc = cnp_scores_samples(truth, probs, L, meta->thresholds, NULL, (int)n);
    cnp_scores_labels(truth, probs, L, meta->thresholds, NULL, (int)n, lm);
    if (o.tta) {
        sc_tta = cnp_scores_samples(truth, probs_tta, L, meta->thresholds, NULL, (int)n);
        cnp_scores_labels(truth, probs_tta, L, meta->thresholds, NULL, (int)n, lm_tta);
    }
    if (o.optimize) {
        const cnp_threshold_grid grid = CNP_THRESHOLD_GRID_DEFAULT;
        const float *pp = o.tta ? probs_tta : probs;
        memcpy(thr, meta->thresholds, (size_t)L * sizeof *thr);
        if (o.split > 0.0) {
            if (cnp_split_rows(&ctx, (int)n, o.split, (uint64_t)o.seed, &fit, &n_fit, &held,
                               &n_held) != CNP_OK)
                goto fail;
        } else {
            n_fit = (int)n;
        }
        if (cnp_thresholds_optimize(&ctx, truth, pp, L, fit, n_fit, &grid, thr, &f2_before,
                                    &f2_after, &passes) != CNP_OK)
            goto fail;
        if (held) {
            f2_h_before = cnp_scores_samples(truth, pp, L, meta->thresholds, held, n_held).f2;
            f2_h_after = cnp_scores_samples(truth, pp, L, thr, held, n_held).f2;
            cnp_scores_labels(truth, pp, L, thr, held, n_held, lm_after);
        } else {
            cnp_scores_labels(truth, pp, L, thr, NULL, n_fit, lm_after);
        }
        if (o.write_model) {
            thr_json = cnp_thresholds_json(&ctx, thr, L);
            if (!thr_json || cnp_onnx_set_metadata(&ctx, o.model, o.write_model,
                                                   "canopy.thresholds", thr_json) != CNP_OK)
                goto fail;
        }
    }

    /* Report. */
    if (o.report) {
        json_object *x;
        const char *s;
        rep = json_object_new_object();
        json_object_object_add(rep, "model", json_object_new_string(o.model));
        json_object_object_add(rep, "model_name", json_object_new_string(meta->name));
        json_object_object_add(rep, "model_version", json_object_new_string(meta->version));
        json_object_object_add(rep, "labels_file", json_object_new_string(o.labels));
        json_object_object_add(rep, "images", json_object_new_string(o.images));
        json_object_object_add(rep, "ext", json_object_new_string(o.ext));
        json_object_object_add(rep, "n", json_object_new_int64(n));
        json_object_object_add(rep, "rows", json_object_new_int(table->n_records));
        json_object_object_add(rep, "duplicates", json_object_new_int(table->n_duplicates));
        json_object_object_add(rep, "duplicates_conflicting",
                               json_object_new_int(table->n_duplicates_conflicting));
        x = json_object_new_object();
        json_object_object_add(x, "count", json_object_new_int64(table->n_unknown_tags));
        json_object_object_add(x, "lines", json_object_new_int(table->n_unknown_rows));
        {
            json_object *names = json_object_new_object();
            for (i = 0; i < table->n_unknown_names; i++)
                json_object_object_add(names, table->unknown_names[i],
                                       json_object_new_int64(table->unknown_counts[i]));
            json_object_object_add(x, "names", names);
        }
        json_object_object_add(rep, "unknown_tags", x);
        json_object_object_add(rep, "missing_images", json_object_new_int64(n_missing));
        json_object_object_add(rep, "unreadable_images", json_object_new_int64(n_unreadable));
        json_object_object_add(rep, "zero_division", json_object_new_int(0));
        json_object_object_add(rep, "f2", json_object_new_double(sc.f2));
        json_object_object_add(rep, "precision_samples", json_object_new_double(sc.precision));
        json_object_object_add(rep, "recall_samples", json_object_new_double(sc.recall));
        json_object_object_add(rep, "labels", labels_json(meta, lm, meta->thresholds));
        json_object_object_add(rep, "tta", json_object_new_boolean(o.tta));
        json_object_object_add(rep, "precision",
                               json_object_new_string(cnp_model_precision(model)));
        if (o.tta) {
            json_object_object_add(rep, "f2_tta", json_object_new_double(sc_tta.f2));
            json_object_object_add(rep, "precision_samples_tta",
                                   json_object_new_double(sc_tta.precision));
            json_object_object_add(rep, "recall_samples_tta",
                                   json_object_new_double(sc_tta.recall));
            json_object_object_add(rep, "labels_tta",
                                   labels_json(meta, lm_tta, meta->thresholds));
        }
        if (o.optimize) {
            json_object *g = json_object_new_object();
            const cnp_threshold_grid grid = CNP_THRESHOLD_GRID_DEFAULT;
            json_object_object_add(rep, "optimized_on",
                                   json_object_new_string(o.tta ? "tta" : "plain"));
            json_object_object_add(g, "lo", json_object_new_double(grid.lo));
            json_object_object_add(g, "hi", json_object_new_double(grid.hi));
            json_object_object_add(g, "step", json_object_new_double(grid.step));
            json_object_object_add(rep, "grid", g);
            json_object_object_add(rep, "passes", json_object_new_int(passes));
            json_object_object_add(rep, "n_fit", json_object_new_int(n_fit));
            json_object_object_add(rep, "f2_before", json_object_new_double(f2_before));
            json_object_object_add(rep, "f2_after", json_object_new_double(f2_after));
            if (held) {
                json_object_object_add(rep, "split", json_object_new_double(o.split));
                json_object_object_add(rep, "seed", json_object_new_int64((int64_t)o.seed));
                json_object_object_add(rep, "n_heldout", json_object_new_int(n_held));
                json_object_object_add(rep, "f2_heldout_before",
                                       json_object_new_double(f2_h_before));
                json_object_object_add(rep, "f2_heldout_after",
                                       json_object_new_double(f2_h_after));
            }
            json_object_object_add(rep, "thresholds_before",
                                   thresholds_json(meta, meta->thresholds));
            json_object_object_add(rep, "thresholds_after", thresholds_json(meta, thr));
            json_object_object_add(rep, "labels_after", labels_json(meta, lm_after, thr));
            json_object_object_add(rep, "labels_after_on",
                                   json_object_new_string(held ? "heldout" : "fit"));
            if (o.write_model)
                json_object_object_add(rep, "written_model",
                                       json_object_new_string(o.write_model));
        }
        json_object_object_add(rep, "seconds", json_object_new_double(cnp_now() - t0));
        s = json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY |
                                                JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s) {
            cnp_error(&ctx, CNP_ERR_NOMEM, "%s: out of memory writing the report", o.report);
            goto fail;
        }
        {
            size_t len = strlen(s);
            char *buf = malloc(len + 2);
            cnp_status st;
            if (!buf) {
                cnp_error(&ctx, CNP_ERR_NOMEM, "%s: out of memory writing the report", o.report);
                goto fail;
            }
            memcpy(buf, s, len);
            buf[len] = '\n';
            st = cnp_atomic_write(&ctx, o.report, buf, len + 1);
            free(buf);
            if (st != CNP_OK)
                goto fail;
        }
    }

    /* Text. */
    printf("model      %s (%s%s%s)\n", o.model, meta->name, meta->version[0] ? " " : "",
           meta->version);
    printf("labels     %s: %d images listed", o.labels, table->n_rows);
    if (table->n_duplicates)
        printf(", %d repeated names dropped", table->n_duplicates);
    if (table->n_unknown_tags)
        printf(", %ld unknown tags ignored", table->n_unknown_tags);
    printf("\nimages     %s/NAME.%s: %ld found, %ld missing, %ld unreadable\n", o.images, o.ext,
           n_listed - n_missing, n_missing, n_unreadable);
    {
        double secs = cnp_now() - t0;
        printf("chips      %ld  (%.1f s, %.1f chips/s%s)\n", n, secs, secs > 0 ? n / secs : 0.0,
               o.tta ? ", each also with TTA" : "");
    }
    printf("F2         %.4f  (sample-averaged, beta 2, at the model's thresholds%s)\n", sc.f2,
           (meta->defaulted & CNP_META_DEF_THRESHOLDS) ? ": 0.2, the file gives none" : "");
    if (o.tta)
        printf("F2 TTA     %.4f  (mean probabilities over the 8 rotations/flips)\n", sc_tta.f2);
    printf("\nper label%s:\n", o.tta ? " (without TTA)" : "");
    print_table(meta, lm, meta->thresholds, NULL);
    if (o.tta) {
        printf("\nper label with TTA:\n");
        print_table(meta, lm_tta, meta->thresholds, NULL);
    }
    if (o.optimize) {
        printf("\nthreshold optimisation: sample-averaged F2%s, grid 0.01..0.99 step 0.01, "
               "coordinate ascent, %d pass%s\n", o.tta ? " of the TTA probabilities" : "",
               passes, passes == 1 ? "" : "es");
        printf("  fitted on %d chips: F2 %.4f -> %.4f\n", n_fit, f2_before, f2_after);
        if (held)
            printf("  held out  %d chips: F2 %.4f -> %.4f  (--split %g --seed %llu)\n", n_held,
                   f2_h_before, f2_h_after, o.split, o.seed);
        printf("\nper label at the new thresholds (%s chips):\n", held ? "held-out" : "fitted");
        print_table(meta, lm_after, thr, meta->thresholds);
        if (o.write_model)
            printf("\nwrote %s (canopy.thresholds = %s)\n", o.write_model, thr_json);
    }
    if (fflush(stdout) != 0) {
        cnp_error(&ctx, CNP_ERR_IO, "writing the results to stdout failed (%s)",
                  strerror(errno));
        goto fail;
    }
    rc = n_unreadable ? CNP_EXIT_FAILURE : CNP_EXIT_OK;
    if (n_unreadable)
        fprintf(stderr, "canopy %s: %ld chip%s could not be read (see above); scored the other "
                "%ld\n", CMD, n_unreadable, n_unreadable == 1 ? "" : "s", n);
    goto cleanup;
fail:
    cnp_cli_report(CMD, &ctx);
    rc = CNP_EXIT_FAILURE;
cleanup:
    if (paths)
        for (r = 0; r < (table ? table->n_rows : 0); r++)
            free(paths[r]);
    free(paths);
    free(chip_row);
    free(truth);
    free(probs);
    free(probs_tta);
    free(lm);
    free(lm_tta);
    free(lm_after);
    free(thr);
    free(fit);
    free(held);
    free(thr_json);
    if (rep)
        json_object_put(rep);
    cnp_label_table_free(table);
    cnp_model_free(model);
    return rc;
}
