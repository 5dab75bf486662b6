/* onnx_parser.c -- the state the ONNX loader (onnx_load.c) and the
 * operator lowering (onnx_lower.c) share: value names -> value indices,
 * new values, node messages, initializers and Constant tensors as values.
 */
#include "engine/onnx_parse.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Names -> values                                                      */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static cnp_status map_grow(cnp_ctx *ctx, cnp_name_map *mp)
{
    size_t cap = mp->cap ? mp->cap * 2 : 256;
    int *slot = cnp_calloc(ctx, cap, sizeof *slot, "the name table");
    const char **key = cnp_calloc(ctx, cap, sizeof *key, "the name table");
    if (!slot || !key) {
        free(slot);
        free(key);
        return CNP_ERR_NOMEM;
    }
    for (size_t i = 0; i < mp->cap; i++) {
        if (!mp->slot[i])
            continue;
        size_t j = hash_str(mp->key[i]) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = mp->slot[i];
        key[j] = mp->key[i];
    }
    free(mp->slot);
    free(mp->key);
    mp->slot = slot;
    mp->key = key;
    mp->cap = cap;
    return CNP_OK;
}

int cnp_name_map_find(const cnp_name_map *mp, const char *name)
{
    if (!mp->cap)
        return -1;
    for (size_t j = hash_str(name) & (mp->cap - 1); mp->slot[j]; j = (j + 1) & (mp->cap - 1))
        if (!strcmp(mp->key[j], name))
            return mp->slot[j] - 1;
    return -1;
}

cnp_status cnp_name_map_put(cnp_ctx *ctx, cnp_name_map *mp, const char *name, int v)
{
    size_t j;
    if ((mp->used + 1) * 2 > mp->cap && map_grow(ctx, mp) != CNP_OK)
        return CNP_ERR_NOMEM;
    j = hash_str(name) & (mp->cap - 1);
    while (mp->slot[j] && strcmp(mp->key[j], name))
        j = (j + 1) & (mp->cap - 1);
    if (!mp->slot[j])
        mp->used++;
    mp->slot[j] = v + 1;
    mp->key[j] = name;
    return CNP_OK;
}

void cnp_name_map_free(cnp_name_map *mp)
{
    free(mp->slot);
    free(mp->key);
}

int cnp_value_add(cnp_ctx *ctx, cnp_model *m, const char *name)
{
    cnp_value *v;
    if (m->g.n_values == m->g.cap_values) {
        int cap = m->g.cap_values ? m->g.cap_values * 2 : 256;
        cnp_value *nv;
        if (cap > INT_MAX / 2 || !(nv = realloc(m->g.values, (size_t)cap * sizeof *nv))) {
            cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory for the value table", m->g.path);
            return -1;
        }
        m->g.values = nv;
        m->g.cap_values = cap;
    }
    v = &m->g.values[m->g.n_values];
    memset(v, 0, sizeof *v);
    v->name = cnp_arena_strdup(ctx, &m->g.arena, name);
    if (!v->name)
        return -1;
    v->producer = -1;
    v->alias = -1;
    v->buf = -1;
    v->last_use = -1;
    v->sym_rank = -1;
    return m->g.n_values++;
}

/* ------------------------------------------------------------------ */
/* Messages                                                              */

const char *cnp_onnx_node_name(const cnp_onnx_parser *ps, char *buf, size_t size)
{
    if (ps->node->name && ps->node->name[0])
        snprintf(buf, size, "node '%s' (%s)", ps->node->name, ps->node->op_type);
    else
        snprintf(buf, size, "node #%d (%s)", ps->node_index, ps->node->op_type);
    return buf;
}

cnp_status cnp_onnx_node_verror(cnp_onnx_parser *ps, cnp_status st, const char *fmt, va_list ap)
{
    char what[512], nb[320];
    vsnprintf(what, sizeof what, fmt, ap);
    return cnp_error(ps->ctx, st, "%s: %s: %s", ps->m->g.path,
                     cnp_onnx_node_name(ps, nb, sizeof nb), what);
}


/* ------------------------------------------------------------------ */
/* Tensors                                                               */

cnp_status cnp_onnx_load_tensor(cnp_onnx_parser *ps, const Onnx__TensorProto *t, cnp_value *v,
                                const char *what)
{
    cnp_ctx *ctx = ps->ctx;
    cnp_model *m = ps->m;
    cnp_onnx_tensor_info info;

    if (cnp_onnx_tensor_check(ctx, m->g.path, what, t, &info) != CNP_OK)
        return ctx->status;
    v->rank = info.rank;
    memcpy(v->dims, info.dims, sizeof v->dims);
    v->count = info.count;
    switch (info.kind) {
    case CNP_ONNX_T_FLOAT:
        v->f = cnp_arena_alloc(ctx, &m->g.arena, info.count, sizeof *v->f, what);
        if (!v->f)
            return CNP_ERR_NOMEM;
        cnp_onnx_tensor_floats(t, v->f);
        v->kind = CNP_VAL_FCONST;
        break;
    case CNP_ONNX_T_INT:
        v->i = cnp_arena_alloc(ctx, &m->g.arena, info.count, sizeof *v->i, what);
        if (!v->i)
            return CNP_ERR_NOMEM;
        cnp_onnx_tensor_ints(t, v->i);
        v->kind = CNP_VAL_ICONST;
        if (v->rank <= 1 && info.count <= CNP_MAX_RANK && (v->rank == 1 || info.count == 1)) {
            v->sym_rank = v->rank;
            v->n_sym = (int)info.count;
            for (size_t i = 0; i < info.count; i++) {
                v->sym[i].v = v->i[i];
                v->sym[i].batch = 0;
            }
        }
        break;
    default:
        /* bool, strings, ...: harmless unless a node needs the values */
        v->kind = CNP_VAL_UNDEF;
        break;
    }
    return CNP_OK;
}
