/* calibrate.c -- cnp_calibrate() (canopy/calibrate.h): the chips through
 * the model in fp32 with the engine observing every convolution's input,
 * then a copy of the model with those ranges as canopy.int8. One step
 * function each: options, the output check, the chips, the copy. */
#define _GNU_SOURCE
#include "config.h"
#include "canopy/calibrate.h"
#include "eval/eval.h"
#include "pipeline/batcher.h"

#include <cpl_string.h>
#include <json.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------ */

/* The options that take a value. */
static const char *const VALUED[] = {"-m", "--model", "--write-model", "--threads", "--batch",
                                     "--max-chips", NULL};

/* One of VALUED with its value v. 1 ok, 0 error. */
static int parse_valued(cnp_ctx *ctx, cnp_calibrate_options *o, const char *a, const char *v)
{
    int k;
    if (!strcmp(a, "-m") || !strcmp(a, "--model"))
        return cnp_str_replace(ctx, &o->model, v);
    if (!strcmp(a, "--write-model"))
        return cnp_str_replace(ctx, &o->write_model, v);
    if (!strcmp(a, "--threads"))
        return cnp_parse_int(ctx, a, v, 1, 1024, &o->threads);
    if (!strcmp(a, "--batch"))
        return cnp_parse_int(ctx, a, v, 1, CNP_CALIBRATE_MAX_BATCH, &o->batch);
    if (!strcmp(a, "--max-chips")) {
        if (!cnp_parse_int(ctx, a, v, 1, INT_MAX, &k))
            return 0;
        o->max_chips = k;
        return 1;
    }
    return !cnp_error(ctx, CNP_ERR_INTERNAL, "option '%s' has no parser", a);
}

/* The model is the first argument unless -m named it; the rest are chips. */
static int take_model(cnp_ctx *ctx, cnp_calibrate_options *o, char **args)
{
    char **chips = args;
    if (!o->model) {
        if (!args || !args[0])
            return !cnp_error(ctx, CNP_ERR_USAGE, "no model given: canopy calibrate MODEL.onnx "
                              "--write-model OUT.onnx CHIP...");
        if (!cnp_str_replace(ctx, &o->model, args[0]))
            return 0;
        chips = args + 1;
    }
    if (!o->write_model)
        return !cnp_error(ctx, CNP_ERR_USAGE, "--write-model OUT.onnx is required: the "
                          "calibrated copy of %s", o->model);
    if (!chips || !chips[0])
        return !cnp_error(ctx, CNP_ERR_USAGE, "no chips given: name chip files or @LIST after "
                          "the model");
    o->inputs = CSLDuplicate(chips);
    return o->inputs != NULL || !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
}

cnp_calibrate_options *cnp_calibrate_options_new(int argc, char **argv, cnp_ctx *ctx)
{
    cnp_calibrate_options *o = cnp_calloc(ctx, 1, sizeof *o, "calibrate options");
    char **args = NULL;
    int i, rc = 1, only_args = 0;

    if (!o)
        return NULL;
    o->batch = CNP_CALIBRATE_DEFAULT_BATCH;
    for (i = 0; i < argc && rc == 1; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (only_args || a[0] != '-' || !a[1]) {
            args = CSLAddString(args, a);
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->help = 1;
            CSLDestroy(args);
            return o;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (CSLFindString((CSLConstList)VALUED, a) < 0) {
            rc = !cnp_error(ctx, CNP_ERR_USAGE, "unknown option '%s'", a);
        } else {
            rc = v ? parse_valued(ctx, o, a, argv[++i])
                   : !cnp_error(ctx, CNP_ERR_USAGE, "%s needs a value", a);
        }
    }
    if (rc == 1 && argc > 0)
        rc = take_model(ctx, o, args);
    CSLDestroy(args);
    if (rc != 1) {
        cnp_calibrate_options_free(o);
        return NULL;
    }
    return o;
}

void cnp_calibrate_options_free(cnp_calibrate_options *o)
{
    if (!o)
        return;
    free(o->model);
    free(o->write_model);
    CSLDestroy(o->inputs);
    free(o);
}

void cnp_calibrate_result_free(cnp_calibrate_result *r)
{
    if (!r)
        return;
    free(r->message);
    CSLDestroy(r->errors);
    free(r->int8_json);
    free(r);
}

/* ---- the run -------------------------------------------------------------- */

typedef struct calib_run {
    const cnp_calibrate_options *o;
    cnp_progress_fn progress;
    void *user;
    cnp_calibrate_result *r;
    cnp_model *model;
    char **paths;              /* CSL: every chip listed */
    char **chosen;             /* (selected) views into paths */
} calib_run;

/* Step 1: the copy may be written (not the model itself, a writable
 * folder), checked before the long run. */
static cnp_status check_output(cnp_ctx *ctx, const cnp_calibrate_options *o)
{
    struct stat a, b;
    if (stat(o->write_model, &b) == 0) {
        if (S_ISDIR(b.st_mode))
            return cnp_error(ctx, CNP_ERR_USAGE, "--write-model %s is a folder; give the file "
                             "name of the calibrated copy", o->write_model);
        if (stat(o->model, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return cnp_error(ctx, CNP_ERR_USAGE, "--write-model %s is the model itself; canopy "
                             "calibrate writes a copy and leaves %s as it is: give another file "
                             "name", o->write_model, o->model);
    }
    return cnp_check_writable(ctx, "the calibrated model", o->write_model);
}

/* Step 2: the chips to run, at most max_chips of them spread evenly over
 * the list (the first, and every listed/max_chips-th after it). */
static cnp_status choose_chips(cnp_ctx *ctx, calib_run *e)
{
    const long listed = e->r->listed, max = e->o->max_chips;
    const long k = max > 0 && max < listed ? max : listed;

    e->chosen = cnp_calloc(ctx, (size_t)k + 1, sizeof *e->chosen, "the chip list");
    if (!e->chosen)
        return CNP_ERR_NOMEM;
    for (long i = 0; i < k; i++)
        e->chosen[i] = e->paths[(long long)i * listed / k];
    e->r->selected = k;
    return CNP_OK;
}

static void on_chip(void *user, long i, const float *probs, const float *probs_tta,
                    const cnp_ctx *err)
{
    calib_run *e = user;
    (void)i;
    (void)probs_tta;
    if (probs) {
        e->r->n++;
        return;
    }
    e->r->errors = CSLAddString(e->r->errors, err->msg[0] ? err->msg
                                                          : cnp_status_name(err->status));
    e->r->n_failed++;
}

static int on_batch(double done, const char *msg, void *user)
{
    calib_run *e = user;
    long seen = e->r->n + e->r->n_failed;
    char text[64];
    (void)msg;
    snprintf(text, sizeof text, "%ld of %ld chips", seen, e->r->selected);
    return !e->progress || e->progress(done, text, e->user);
}

/* Step 3: the model, prepared in fp32, observing, over the chosen chips. */
static cnp_status run_chips(cnp_ctx *ctx, calib_run *e)
{
    const cnp_calibrate_options *o = e->o;
    const cnp_model_meta *meta;
    const long n = e->r->selected;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : nc > 0 ? (int)nc : 1;
    int batch = o->batch > 0 ? o->batch : CNP_CALIBRATE_DEFAULT_BATCH;
    cnp_model_info info;
    cnp_chip_spec spec;
    cnp_batcher b;
    cnp_chip_job job;
    cnp_status st;
    char text[4200];

    /* the BLAS self-test, once per process, before any result is trusted */
    if ((st = cnp_blas_init(ctx)) != CNP_OK ||
        (st = cnp_model_load(ctx, o->model, &e->model)) != CNP_OK)
        return st;
    meta = cnp_model_meta_cget(e->model);
    if (batch > n)
        batch = (int)n;
    if ((st = cnp_model_prepare(ctx, e->model, &(cnp_prepare_options){
                                    .max_batch = batch, .height = meta->input_size,
                                    .width = meta->input_size, .n_threads = threads})) != CNP_OK ||
        (st = cnp_model_observe(ctx, e->model, 1)) != CNP_OK)
        return st;
    cnp_model_info_get(e->model, &info);
    e->r->n_conv = info.n_conv;
    snprintf(text, sizeof text, "calibrating on %ld chip%s with %s", n, n == 1 ? "" : "s",
             o->model);
    if (e->progress && !e->progress(0.0, text, e->user))
        return cnp_error(ctx, CNP_ERR_CANCELLED, "cancelled");
    cnp_batcher_chip_spec(&spec, meta);
    cnp_batcher_init(&b, e->model, batch);
    memset(&job, 0, sizeof job);
    job.spec = &spec;
    job.paths = (const char *const *)e->chosen;
    job.n = n;
    job.threads = threads;
    job.want_plain = 1;
    job.on_chip = on_chip;
    job.user = e;
    job.progress = on_batch;
    job.progress_user = e;
    if ((st = cnp_batcher_chips(ctx, &b, &job)) != CNP_OK)
        return st;
    if (e->r->n == 0 && n == 1)
        return cnp_error(ctx, CNP_ERR_IO, "the chip could not be read (see the message above); "
                         "nothing to calibrate on");
    if (e->r->n == 0)
        return cnp_error(ctx, CNP_ERR_IO, "none of the %ld chips could be read (see the "
                         "messages above); nothing to calibrate on", n);
    return CNP_OK;
}

/* Step 4: canopy.int8 from the observed ranges, into the copy. */
static cnp_status write_copy(cnp_ctx *ctx, calib_run *e)
{
    cnp_calibrate_result *r = e->r;
    json_object *o, *acts;

    if (!(r->int8_json = cnp_model_int8_json(ctx, e->model, r->n)))
        return ctx->status ? ctx->status : CNP_ERR_NOMEM;
    if ((o = json_tokener_parse(r->int8_json)) != NULL &&
        json_object_object_get_ex(o, "activations", &acts))
        r->n_tensors = (int)json_object_array_length(acts);
    json_object_put(o);
    return cnp_onnx_set_metadata(ctx, e->o->model, e->o->write_model, CNP_META_KEY_INT8,
                                 r->int8_json);
}

cnp_status cnp_calibrate(const cnp_calibrate_options *o, cnp_progress_fn progress, void *user,
                         cnp_calibrate_result **out)
{
    calib_run e;
    cnp_status st = CNP_OK;
    cnp_ctx ctx;
    double t0 = cnp_now();

    memset(&e, 0, sizeof e);
    cnp_ctx_clear(&ctx);
    e.o = o;
    e.progress = progress;
    e.user = user;
    *out = e.r = calloc(1, sizeof *e.r);
    if (!e.r)
        return CNP_ERR_NOMEM;
    if (!o->model || !o->model[0] || !o->write_model || !o->write_model[0]) {
        st = cnp_error(&ctx, CNP_ERR_USAGE, "a model and --write-model are required");
        goto cleanup;
    }
    cnp_chip_inputs_expand(o->inputs, &e.paths, &e.r->errors, &e.r->n_failed);
    e.r->listed = CSLCount(e.paths);
    if (e.r->listed == 0) {
        st = e.r->n_failed ? CNP_ERR_IO /* the lists' errors say it all */
                           : cnp_error(&ctx, CNP_ERR_USAGE, "no chips given");
        goto cleanup;
    }
    if ((st = check_output(&ctx, o)) != CNP_OK || (st = choose_chips(&ctx, &e)) != CNP_OK ||
        (st = run_chips(&ctx, &e)) != CNP_OK || (st = write_copy(&ctx, &e)) != CNP_OK)
        goto cleanup;
cleanup:
    e.r->status = st;
    e.r->message = strdup(st == CNP_OK || (e.r->listed == 0 && e.r->n_failed && !ctx.msg[0])
                              ? ""
                          : ctx.msg[0] ? ctx.msg : cnp_status_name(st));
    e.r->seconds = cnp_now() - t0;
    cnp_model_free(e.model);
    free(e.chosen);
    CSLDestroy(e.paths);
    return st;
}
