/* result.c -- cnp_classify_result: what cnp_classify_scene() did. */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/pipeline.h"

#include <cpl_string.h>

#include <stdlib.h>
#include <string.h>

cnp_classify_result *cnp_classify_result_new(const char *path)
{
    cnp_classify_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->scene = strdup(path ? path : "");
    r->message = strdup("");
    if (!r->scene || !r->message) {
        cnp_classify_result_free(r);
        return NULL;
    }
    return r;
}

int cnp_classify_result_add_output(cnp_classify_result *r, const char *kind, const char *path)
{
    cnp_output *o = realloc(r->outputs, sizeof *o * (size_t)(r->n_outputs + 1));
    if (!o)
        return 0;
    r->outputs = o;
    o[r->n_outputs].kind = strdup(kind);
    o[r->n_outputs].path = strdup(path);
    if (!o[r->n_outputs].kind || !o[r->n_outputs].path) {
        free(o[r->n_outputs].kind);
        free(o[r->n_outputs].path);
        return 0;
    }
    r->n_outputs++;
    return 1;
}

const char *cnp_classify_result_output(const cnp_classify_result *r, const char *kind)
{
    int i;
    for (i = 0; r && i < r->n_outputs; i++)
        if (!strcmp(r->outputs[i].kind, kind))
            return r->outputs[i].path;
    return NULL;
}

void cnp_classify_result_free(cnp_classify_result *r)
{
    int i;
    if (!r)
        return;
    for (i = 0; i < r->n_outputs; i++) {
        free(r->outputs[i].kind);
        free(r->outputs[i].path);
    }
    free(r->outputs);
    free(r->message);
    free(r->scene);
    free(r->name);
    free(r->date);
    CSLDestroy(r->alerts_labels_new);
    free(r->alerts_summary);
    free(r->alerts_state);
    CSLDestroy(r->labels);
    free(r->positives);
    free(r->summary);
    CSLDestroy(r->warnings);
    free(r->warning);
    free(r);
}
