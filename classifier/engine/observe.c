/* observe.c -- int8 calibration: the range of each activation a
 * convolution reads, recorded over forward passes (cnp_model_observe), and
 * the canopy.int8 metadata value made from it (cnp_model_int8_json; the
 * schema is parsed back by onnx/meta.c). Off by default: the executor then
 * reads one NULL pointer per convolution.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/graph.h"

#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many floats a scan is not worth waking the team. */
#define PARALLEL_MIN 32768

cnp_status cnp_model_observe(cnp_ctx *ctx, cnp_model *m, int on)
{
    cnp_observe *o = &m->obs;
    const size_t nv = (size_t)(m->g.n_values > 0 ? m->g.n_values : 1);

    free(o->vmin);
    free(o->vmax);
    free(o->pass_seen);
    memset(o, 0, sizeof *o);
    if (!on)
        return CNP_OK;
    o->vmin = cnp_calloc(ctx, nv, sizeof *o->vmin, "the calibration ranges");
    o->vmax = cnp_calloc(ctx, nv, sizeof *o->vmax, "the calibration ranges");
    o->pass_seen = cnp_calloc(ctx, nv, sizeof *o->pass_seen, "the calibration ranges");
    if (!o->vmin || !o->vmax || !o->pass_seen) {
        cnp_model_observe(ctx, m, 0);
        return CNP_ERR_NOMEM;
    }
    for (size_t v = 0; v < nv; v++) {
        o->vmin[v] = INFINITY;
        o->vmax[v] = -INFINITY;
    }
    return CNP_OK;
}

void cnp_observe_pass(cnp_model *m)
{
    m->obs.passes++;
}

void cnp_observe_value(cnp_model *m, int v, const float *x, int n)
{
    cnp_observe *o = &m->obs;
    const cnp_value *val = &m->g.values[v];
    const size_t cnt = (size_t)n * (size_t)val->C * (size_t)val->H * (size_t)val->W;
    const int nt = m->plan.ex.n_threads > 0 ? m->plan.ex.n_threads : 1;
    float lo = o->vmin[v], hi = o->vmax[v];

    if (o->pass_seen[v] == o->passes)
        return; /* another convolution read it in this pass */
    o->pass_seen[v] = o->passes;
    /* NaN compares false and so never enters the range */
#pragma omp parallel for simd num_threads(nt) if (cnt >= PARALLEL_MIN) schedule(static) \
    reduction(min : lo) reduction(max : hi)
    for (size_t i = 0; i < cnt; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    o->vmin[v] = lo;
    o->vmax[v] = hi;
}

/* A float as a JSON number in the shortest text that reads back exactly. */
static json_object *number(float f)
{
    char buf[32];
    return json_object_new_double_s((double)f, cnp_float_text(buf, sizeof buf, f));
}

/* {"tensor": NAME, "min": LO, "max": HI}, NULL when out of memory. */
static json_object *entry(const char *name, float lo, float hi)
{
    json_object *e = json_object_new_object(), *t = json_object_new_string(name);
    json_object *a = number(lo), *b = number(hi);
    if (!e || !t || !a || !b) {
        json_object_put(e);
        json_object_put(t);
        json_object_put(a);
        json_object_put(b);
        return NULL;
    }
    json_object_object_add(e, "tensor", t);
    json_object_object_add(e, "min", a);
    json_object_object_add(e, "max", b);
    return e;
}

/* Appends the range of every value a live convolution reads, once each, in
 * node order. */
static cnp_status add_ranges(cnp_ctx *ctx, const cnp_model *m, json_object *arr)
{
    unsigned char *done = cnp_calloc(ctx, (size_t)m->g.n_values, 1, "the calibration ranges");
    cnp_status st = CNP_OK;

    if (!done)
        return CNP_ERR_NOMEM;
    for (int i = 0; i < m->g.n_nodes && st == CNP_OK; i++) {
        const cnp_node *nd = &m->g.nodes[i];
        const int v = nd->op == CNP_OP_CONV && !nd->dead ? nd->in[0] : -1;
        float lo, hi;
        json_object *e;
        if (v < 0 || done[v])
            continue;
        done[v] = 1;
        lo = m->obs.vmin[v];
        hi = m->obs.vmax[v];
        if (m->obs.pass_seen[v] == 0) {
            st = cnp_error(ctx, CNP_ERR_USAGE, "%s: activation '%s' was never computed while "
                           "observing", m->g.path, m->g.values[v].name);
        } else if (!isfinite(lo) || !isfinite(hi)) {
            st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: activation '%s' reached %g on the "
                           "calibration chips: the model overflows in fp32 and cannot be "
                           "quantised", m->g.path, m->g.values[v].name,
                           (double)(isfinite(lo) ? hi : lo));
        } else if (!(e = entry(m->g.values[v].name, lo < 0.0f ? lo : 0.0f,
                               hi > 0.0f ? hi : 0.0f)) ||
                   json_object_array_add(arr, e) != 0) {
            st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory for the calibration ranges");
        }
    }
    free(done);
    return st;
}

char *cnp_model_int8_json(cnp_ctx *ctx, const cnp_model *m, long chips)
{
    json_object *root = NULL, *arr = NULL, *x;
    const char *s;
    char *out = NULL;

    if (!m->obs.vmin || m->obs.passes == 0) {
        cnp_error(ctx, CNP_ERR_USAGE, "%s: no forward pass was observed; turn observation on "
                  "(cnp_model_observe) and run the calibration chips first", m->g.path);
        return NULL;
    }
    if (chips < 1) {
        cnp_error(ctx, CNP_ERR_USAGE, "%s: calibration over %ld chips", m->g.path, chips);
        return NULL;
    }
    if (!(root = json_object_new_object()) || !(arr = json_object_new_array()))
        goto oom;
    if (!(x = json_object_new_int(1)) || json_object_object_add(root, "version", x) != 0 ||
        !(x = json_object_new_int64(chips)) || json_object_object_add(root, "chips", x) != 0)
        goto oom;
    if (add_ranges(ctx, m, arr) != CNP_OK)
        goto cleanup;
    json_object_object_add(root, "activations", arr);
    arr = NULL;
    s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s || !(out = strdup(s)))
        goto oom;
    goto cleanup;
oom:
    cnp_error(ctx, CNP_ERR_NOMEM, "out of memory for the calibration ranges");
cleanup:
    json_object_put(arr);
    json_object_put(root);
    return out;
}
