/* batcher.c -- the one chip batcher (batcher.h). */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/batcher.h"
#include "pipeline/pipeline.h"

#include <cpl_string.h>

#include <stdlib.h>
#include <string.h>

void cnp_batcher_init(cnp_batcher *b, cnp_model *model, int max_batch)
{
    memset(b, 0, sizeof *b);
    b->model = model;
    b->max_batch = max_batch > 0 ? max_batch : 1;
    b->n_labels = cnp_model_meta_cget(model)->n_labels;
}

void cnp_batcher_chip_spec(cnp_chip_spec *spec, const cnp_model_meta *meta)
{
    spec->n_channels = meta->n_channels;
    spec->bands = meta->bands;
    spec->size = meta->input_size;
    spec->offset = 0.0;
    spec->scale = meta->scale;
    spec->mean = meta->mean;
    spec->std = meta->std;
}

cnp_status cnp_batcher_forward(cnp_ctx *ctx, cnp_batcher *b, const float *input, int n,
                               float *probs, int tta)
{
    const cnp_model_meta *meta = cnp_model_meta_cget(b->model);
    size_t chip = (size_t)meta->n_channels * (size_t)meta->input_size * meta->input_size;
    int i0, k;

    for (i0 = 0; i0 < n; i0 += k) {
        double t0 = cnp_now();
        cnp_status st;
        k = n - i0 < b->max_batch ? n - i0 : b->max_batch;
        st = tta ? cnp_model_forward_tta(ctx, b->model, input + (size_t)i0 * chip, k,
                                         probs + (size_t)i0 * b->n_labels)
                 : cnp_model_forward(ctx, b->model, input + (size_t)i0 * chip, k,
                                     probs + (size_t)i0 * b->n_labels);
        b->infer_s += cnp_now() - t0;
        if (st != CNP_OK)
            return st;
    }
    return CNP_OK;
}

/* Buffers of one batch of chip files. */
typedef struct chip_batch {
    float *input;              /* (max_batch, C, S, S) */
    float *probs, *probs_tta;  /* (max_batch, L) */
    long *index;               /* (max_batch) path index of each slot */
    unsigned char *ok;         /* (max_batch) */
    cnp_ctx *err;              /* (max_batch) */
} chip_batch;

static void chip_batch_free(chip_batch *cb)
{
    cnp_aligned_free(cb->input);
    free(cb->probs);
    free(cb->probs_tta);
    free(cb->index);
    free(cb->ok);
    free(cb->err);
}

static cnp_status chip_batch_alloc(cnp_ctx *ctx, chip_batch *cb, int max_batch, size_t chip,
                                   int L)
{
    size_t elems;
    memset(cb, 0, sizeof *cb);
    if (!cnp_mul_size(chip, (size_t)max_batch, &elems))
        return cnp_error(ctx, CNP_ERR_NOMEM, "the input batch size overflows");
    cb->input = cnp_aligned_alloc(ctx, elems, sizeof(float), "the input batch");
    cb->probs = cnp_calloc(ctx, (size_t)max_batch * (size_t)L, sizeof(float), "results");
    cb->probs_tta = cnp_calloc(ctx, (size_t)max_batch * (size_t)L, sizeof(float), "results");
    cb->index = cnp_calloc(ctx, (size_t)max_batch, sizeof(long), "the input batch");
    cb->ok = cnp_calloc(ctx, (size_t)max_batch, 1, "the input batch");
    cb->err = cnp_calloc(ctx, (size_t)max_batch, sizeof(cnp_ctx), "the input batch");
    if (!cb->input || !cb->probs || !cb->probs_tta || !cb->index || !cb->ok || !cb->err)
        return CNP_ERR_NOMEM;
    return CNP_OK;
}

/* Reads the batch's chips in parallel, packs the readable ones first. */
static int read_batch(chip_batch *cb, const cnp_chip_job *job, int nb, size_t chip)
{
    int j, k;
#pragma omp parallel for num_threads(job->threads > 0 ? job->threads : 1) schedule(dynamic, 1)
    for (j = 0; j < nb; j++) {
        cnp_ctx_clear(&cb->err[j]);
        cb->ok[j] = cnp_chip_read(&cb->err[j], job->paths[cb->index[j]], job->spec,
                                  cb->input + (size_t)j * chip) == CNP_OK;
    }
    for (j = 0, k = 0; j < nb; j++) {
        if (!cb->ok[j])
            continue;
        if (k != j)
            memmove(cb->input + (size_t)k * chip, cb->input + (size_t)j * chip,
                    chip * sizeof(float));
        k++;
    }
    return k;
}

cnp_status cnp_batcher_chips(cnp_ctx *ctx, cnp_batcher *b, const cnp_chip_job *job)
{
    const cnp_model_meta *meta = cnp_model_meta_cget(b->model);
    size_t chip = (size_t)meta->n_channels * (size_t)meta->input_size * meta->input_size;
    size_t L = (size_t)b->n_labels;
    cnp_status st;
    chip_batch cb;
    long r = 0;

    if ((st = chip_batch_alloc(ctx, &cb, b->max_batch, chip, b->n_labels)) != CNP_OK)
        goto cleanup;
    while (r < job->n) {
        int nb = 0, k, j, s;
        while (r < job->n && nb < b->max_batch) {
            if (job->paths[r])
                cb.index[nb++] = r;
            r++;
        }
        if (nb == 0)
            break;
        k = read_batch(&cb, job, nb, chip);
        if (k > 0 && ((job->want_plain &&
                       (st = cnp_batcher_forward(ctx, b, cb.input, k, cb.probs, 0)) != CNP_OK) ||
                      (job->want_tta &&
                       (st = cnp_batcher_forward(ctx, b, cb.input, k, cb.probs_tta, 1)) != CNP_OK)))
            goto cleanup;
        for (j = 0, s = 0; j < nb; j++) {
            if (!cb.ok[j]) {
                job->on_chip(job->user, cb.index[j], NULL, NULL, &cb.err[j]);
                continue;
            }
            job->on_chip(job->user, cb.index[j], job->want_plain ? cb.probs + (size_t)s * L : NULL,
                         job->want_tta ? cb.probs_tta + (size_t)s * L : NULL, NULL);
            s++;
        }
        if (job->progress && !job->progress((double)r / (double)job->n, NULL,
                                            job->progress_user)) {
            st = cnp_error(ctx, CNP_ERR_CANCELLED, "cancelled");
            goto cleanup;
        }
    }
    st = CNP_OK;
cleanup:
    chip_batch_free(&cb);
    return st;
}

void cnp_chip_inputs_expand(char *const *inputs, char ***paths, char ***errors, long *n_failed)
{
    for (int i = 0; inputs && inputs[i]; i++) {
        const char *a = inputs[i];
        cnp_ctx c;
        int n;
        if (a[0] != '@' || !a[1]) {
            *paths = CSLAddString(*paths, a);
            continue;
        }
        cnp_ctx_clear(&c);
        if (cnp_list_file_read(&c, a + 1, "chips", paths, &n) != CNP_OK) {
            *errors = CSLAddString(*errors, c.msg);
            (*n_failed)++;
        }
    }
}
