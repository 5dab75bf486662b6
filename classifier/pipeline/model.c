/* model.c -- cnp_classify_model: a model loaded, overridden by the options
 * and prepared for classifying scenes. */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/pipeline.h"
#include "writers/writers.h"

#include <cpl_conv.h>
#include <cpl_string.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static cnp_status apply_bands(cnp_ctx *ctx, cnp_classify_model *m)
{
    const cnp_classify_options *o = m->o;
    const cnp_model_meta *meta = m->meta;

    if (meta->n_channels > CNP_CLASSIFY_MAX_CHANNELS)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: the model takes %d channels, more than canopy "
                         "classify handles (%d)", o->model, meta->n_channels,
                         CNP_CLASSIFY_MAX_CHANNELS);
    if (o->n_bands) {
        if (o->n_bands != meta->n_channels)
            return cnp_error(ctx, CNP_ERR_USAGE, "--bands lists %d band%s but the model takes "
                             "%d channels", o->n_bands, o->n_bands == 1 ? "" : "s",
                             meta->n_channels);
        memcpy(m->bands, o->bands, sizeof(int) * (size_t)o->n_bands);
    } else {
        memcpy(m->bands, meta->bands, sizeof(int) * (size_t)meta->n_channels);
    }
    if (o->have_range) {
        m->offset = o->range_lo;
        m->scale = 1.0 / (o->range_hi - o->range_lo);
    } else {
        m->offset = 0.0;
        m->scale = meta->scale;
    }
    return CNP_OK;
}

static cnp_status apply_labels(cnp_ctx *ctx, cnp_classify_model *m)
{
    const cnp_classify_options *o = m->o;
    cnp_model_meta *meta = m->meta;
    char **list = NULL;
    int i, k;

    for (i = 0; o->thresholds && o->thresholds[i]; i++) {
        const char *eq = strchr(o->thresholds[i], '=');
        size_t len = eq ? (size_t)(eq - o->thresholds[i]) : 0;
        for (k = 0; eq && k < meta->n_labels; k++)
            if (strlen(meta->labels[k]) == len && !strncmp(meta->labels[k], o->thresholds[i], len))
                break;
        if (!eq || k == meta->n_labels)
            return cnp_error(ctx, CNP_ERR_USAGE, "--threshold %s: the model has no label '%.*s'",
                             o->thresholds[i], (int)len, o->thresholds[i]);
        meta->thresholds[k] = (float)CPLAtof(eq + 1);
    }
    if (!o->markers)
        return CNP_OK;
    if (strcasecmp(o->markers, "none") != 0)
        list = CSLTokenizeString2(o->markers, ",", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES);
    for (i = 0; list && list[i]; i++) {
        if (CSLFindString((CSLConstList)meta->labels, list[i]) < 0) {
            cnp_error(ctx, CNP_ERR_USAGE, "--markers: the model has no label '%s'", list[i]);
            CSLDestroy(list);
            return CNP_ERR_USAGE;
        }
    }
    for (k = 0; k < meta->n_labels; k++)
        meta->is_marker[k] = list && CSLFindString(list, meta->labels[k]) >= 0;
    CSLDestroy(list);
    return CNP_OK;
}

static int all_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

cnp_status cnp_classify_model_load(cnp_ctx *ctx, const cnp_classify_options *o,
                                   cnp_classify_model **out)
{
    cnp_classify_model *m;
    cnp_status st;
    unsigned flags;

    *out = NULL;
    if (!o->model || !*o->model)
        return cnp_error(ctx, CNP_ERR_USAGE, "no model; give one with -m MODEL");
    if (!(m = cnp_calloc(ctx, 1, sizeof *m, "the classify model")))
        return CNP_ERR_NOMEM;
    m->o = o;
    m->threads = o->threads > 0 ? o->threads : all_cores();
    /* the BLAS self-test, once per process, before any result is trusted */
    if ((st = cnp_blas_init(ctx)) != CNP_OK ||
        (st = cnp_model_load(ctx, o->model, &m->model)) != CNP_OK)
        goto cleanup;
    m->meta = cnp_model_meta_get(m->model);
    if ((st = apply_bands(ctx, m)) != CNP_OK || (st = apply_labels(ctx, m)) != CNP_OK)
        goto cleanup;
    flags = (o->tta ? CNP_PREPARE_TTA : 0) |
            cnp_precision_flags(o->precision, o->no_bf16, o->no_int8);
    if ((st = cnp_model_prepare(ctx, m->model, &(cnp_prepare_options){
                                    .max_batch = CNP_CLASSIFY_MAX_BATCH,
                                    .height = m->meta->input_size,
                                    .width = m->meta->input_size, .n_threads = m->threads,
                                    .flags = flags})) != CNP_OK ||
        (st = cnp_sha256_file(ctx, o->model, m->sha256)) != CNP_OK)
        goto cleanup;
    m->batch_probs = cnp_calloc(ctx, (size_t)CNP_CLASSIFY_MAX_BATCH * (size_t)m->meta->n_labels,
                                sizeof(float), "probabilities");
    if (!m->batch_probs) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    cnp_batcher_init(&m->batcher, m->model, CNP_CLASSIFY_MAX_BATCH);
    *out = m;
    m = NULL;
cleanup:
    cnp_classify_model_free(m);
    return st;
}

void cnp_classify_model_free(cnp_classify_model *m)
{
    if (!m)
        return;
    free(m->batch_probs);
    CSLDestroy(m->names);
    CSLDestroy(m->name_paths);
    cnp_model_free(m->model);
    free(m);
}

const char *cnp_classify_model_precision(const cnp_classify_model *m)
{
    return cnp_model_precision(m->model);
}

unsigned cnp_precision_flags(cnp_precision p, int no_bf16, int no_int8)
{
    if (p == CNP_PRECISION_BF16 && !no_bf16 && cnp_engine_bf16_available())
        return CNP_PREPARE_BF16;
    /* The engine runs int8 only where the CPU has it, but refuses an
     * uncalibrated model on every CPU: the flag goes whenever int8 is asked. */
    if (p == CNP_PRECISION_INT8 && !no_int8)
        return CNP_PREPARE_INT8;
    return 0;
}
