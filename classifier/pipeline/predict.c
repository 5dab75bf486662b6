/* predict.c -- cnp_predict(): chip files -> probabilities (canopy/predict.h). */
#define _GNU_SOURCE
#include "config.h"
#include "canopy/predict.h"
#include "pipeline/batcher.h"
#include "pipeline/pipeline.h"

#include <cpl_string.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An option at argv[*i] (with its value). 1 go on, 0 error, 2 help. */
static int parse_opt(cnp_ctx *ctx, cnp_predict_options *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
        return 2;
    if (!strcmp(a, "--probs") || !strcmp(a, "--tta")) {
        *(a[2] == 'p' ? &o->probs : &o->tta) = 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            return !cnp_error(ctx, CNP_ERR_USAGE, "%s needs a model file", a);
        if (!strcmp(a, "--threads") || !strcmp(a, "--batch"))
            return !cnp_error(ctx, CNP_ERR_USAGE, "%s needs a number", a);
        if (!strcmp(a, "--precision"))
            return !cnp_error(ctx, CNP_ERR_USAGE, "--precision needs fp32, bf16 or int8");
        return !cnp_error(ctx, CNP_ERR_USAGE, "unknown option '%s'", a);
    }
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        free(o->model);
        return (o->model = strdup(argv[++*i])) != NULL ||
               !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(a, "--threads"))
        return cnp_parse_int(ctx, a, argv[++*i], 1, 1024, &o->threads);
    if (!strcmp(a, "--batch"))
        return cnp_parse_int(ctx, a, argv[++*i], 1, CNP_PREDICT_MAX_BATCH, &o->batch);
    if (!strcmp(a, "--precision"))
        return cnp_parse_precision(ctx, argv[++*i], &o->precision);
    return !cnp_error(ctx, CNP_ERR_USAGE, "unknown option '%s'", a);
}

cnp_predict_options *cnp_predict_options_new(int argc, char **argv, cnp_ctx *ctx)
{
    cnp_predict_options *o = cnp_calloc(ctx, 1, sizeof *o, "predict options");
    int i, rc = 1, only_args = 0;

    if (!o)
        return NULL;
    o->batch = CNP_PREDICT_DEFAULT_BATCH;
    for (i = 0; i < argc && rc == 1; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1])
            o->inputs = CSLAddString(o->inputs, a);
        else if (!strcmp(a, "--"))
            only_args = 1;
        else
            rc = parse_opt(ctx, o, argc, argv, &i);
    }
    if (rc == 2) {
        o->help = 1;
        return o;
    }
    if (rc == 1 && argc > 0 && !o->inputs)
        rc = !cnp_error(ctx, CNP_ERR_USAGE, "no chips given");
    if (rc != 1) {
        cnp_predict_options_free(o);
        return NULL;
    }
    return o;
}

void cnp_predict_options_free(cnp_predict_options *o)
{
    if (!o)
        return;
    free(o->model);
    CSLDestroy(o->inputs);
    free(o);
}

void cnp_predict_result_free(cnp_predict_result *r)
{
    if (!r)
        return;
    free(r->message);
    CSLDestroy(r->labels);
    free(r->thresholds);
    CSLDestroy(r->names);
    free(r->probs);
    CSLDestroy(r->errors);
    free(r);
}

/* Base name without directory and extension. */
static char *image_name(const char *path)
{
    const char *b = strrchr(path, '/'), *dot;
    b = b ? b + 1 : path;
    dot = strrchr(b, '.');
    return strndup(b, dot && dot != b ? (size_t)(dot - b) : strlen(b));
}

typedef struct sink {
    cnp_predict_result *r;
    char **paths;
} sink;

static void on_chip(void *user, long i, const float *probs, const float *probs_tta,
                    const cnp_ctx *err)
{
    sink *s = user;
    cnp_predict_result *r = s->r;
    const float *p = probs_tta ? probs_tta : probs;
    char *nm;
    if (!p) {
        r->errors = CSLAddString(r->errors, err->msg[0] ? err->msg : cnp_status_name(err->status));
        r->n_failed++;
        return;
    }
    nm = image_name(s->paths[i]);
    r->names = CSLAddString(r->names, nm ? nm : "");
    free(nm);
    memcpy(r->probs + (size_t)r->n * (size_t)r->n_labels, p, sizeof *p * (size_t)r->n_labels);
    r->n++;
}

static cnp_status run_chips(cnp_ctx *ctx, const cnp_predict_options *o, cnp_model *m,
                            char **paths, long n, cnp_progress_fn progress, void *user,
                            cnp_predict_result *r)
{
    const cnp_model_meta *meta = cnp_model_meta_cget(m);
    int batch = o->batch > 0 ? o->batch : CNP_PREDICT_DEFAULT_BATCH;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : nc > 0 ? (int)nc : 1;
    cnp_chip_spec spec;
    cnp_batcher b;
    cnp_chip_job job;
    sink s = {r, paths};
    cnp_status st;

    if (batch > n)
        batch = (int)n;
    st = cnp_model_prepare(ctx, m, &(cnp_prepare_options){
                               .max_batch = batch, .height = meta->input_size,
                               .width = meta->input_size, .n_threads = threads,
                               .flags = (o->tta ? CNP_PREPARE_TTA : 0) |
                                        cnp_precision_flags(o->precision, o->no_bf16,
                                                            o->no_int8)});
    if (st != CNP_OK)
        return st;
    r->precision = cnp_model_precision(m);
    r->labels = CSLDuplicate(meta->labels);
    r->thresholds = cnp_calloc(ctx, (size_t)meta->n_labels, sizeof(float), "thresholds");
    r->probs = cnp_calloc(ctx, (size_t)n * (size_t)meta->n_labels, sizeof(float), "results");
    if (!r->labels || !r->thresholds || !r->probs)
        return CNP_ERR_NOMEM;
    r->n_labels = meta->n_labels;
    memcpy(r->thresholds, meta->thresholds, sizeof(float) * (size_t)meta->n_labels);
    cnp_batcher_chip_spec(&spec, meta);
    cnp_batcher_init(&b, m, batch);
    memset(&job, 0, sizeof job);
    job.spec = &spec;
    job.paths = (const char *const *)paths;
    job.n = n;
    job.threads = threads;
    job.want_plain = !o->tta;
    job.want_tta = o->tta;
    job.on_chip = on_chip;
    job.user = &s;
    job.progress = progress;
    job.progress_user = user;
    return cnp_batcher_chips(ctx, &b, &job);
}

cnp_status cnp_predict(const cnp_predict_options *o, cnp_progress_fn progress, void *user,
                       cnp_predict_result **out)
{
    cnp_predict_result *r = calloc(1, sizeof *r);
    cnp_model *m = NULL;
    char **paths = NULL;
    cnp_status st;
    cnp_ctx ctx;
    long n;

    *out = r;
    if (!r)
        return CNP_ERR_NOMEM;
    cnp_ctx_clear(&ctx);
    cnp_chip_inputs_expand(o->inputs, &paths, &r->errors, &r->n_failed);
    n = CSLCount(paths);
    if (n == 0 && r->n_failed) {
        st = CNP_ERR_IO; /* the lists' errors say it all */
        goto cleanup;
    }
    if (n == 0) {
        st = cnp_error(&ctx, CNP_ERR_USAGE, "no chips given");
        goto cleanup;
    }
    /* the BLAS self-test, once per process, before any result is trusted */
    if ((st = cnp_blas_init(&ctx)) != CNP_OK || (st = cnp_model_load(&ctx, o->model, &m)) != CNP_OK)
        goto cleanup;
    st = run_chips(&ctx, o, m, paths, n, progress, user, r);
cleanup:
    r->status = st;
    r->message = strdup(st == CNP_OK || (n == 0 && r->n_failed) ? ""
                        : ctx.msg[0] ? ctx.msg : cnp_status_name(st));
    cnp_model_free(m);
    CSLDestroy(paths);
    return st;
}
