/* onnx_load.c -- ONNX file -> canopy's model: reading the file, protobuf-c
 * parsing, tensors, the graph's inputs and outputs, then (through
 * onnx_lower.c, graph.c and meta.c) lowering, fusion, the reference shape
 * pass and the metadata.
 *
 * Everything read from the file is checked before use: dimensions are
 * non-negative and multiplied with overflow checks, data lengths match the
 * dimensions, names resolve to values produced earlier. A failure names the
 * file, the node or tensor and what to do.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/onnx_parse.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest model file read (protobuf's own limit is 2 GiB). */
#define MAX_MODEL_BYTES ((size_t)2 << 30)

#define OPSET_MIN 11
#define OPSET_MAX 17

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
    if (m->n_values == m->cap_values) {
        int cap = m->cap_values ? m->cap_values * 2 : 256;
        cnp_value *nv;
        if (cap > INT_MAX / 2 || !(nv = realloc(m->values, (size_t)cap * sizeof *nv))) {
            cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory for the value table", m->path);
            return -1;
        }
        m->values = nv;
        m->cap_values = cap;
    }
    v = &m->values[m->n_values];
    memset(v, 0, sizeof *v);
    v->name = cnp_arena_strdup(ctx, &m->arena, name);
    if (!v->name)
        return -1;
    v->producer = -1;
    v->alias = -1;
    v->buf = -1;
    v->last_use = -1;
    v->sym_rank = -1;
    return m->n_values++;
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
    return cnp_error(ps->ctx, st, "%s: %s: %s", ps->m->path, cnp_onnx_node_name(ps, nb, sizeof nb),
                     what);
}

typedef cnp_onnx_parser parser;


/* ------------------------------------------------------------------ */
/* Tensors                                                               */

static const char *dtype_name(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return "float32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return "uint8";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return "int8";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return "uint16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return "int16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return "int32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return "int64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: return "string";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return "bool";
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return "float16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return "float64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return "bfloat16";
    default: return "another type";
    }
}

static void rd_le32(const uint8_t *p, size_t i, float *f)
{
    uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                 (uint32_t)p[4 * i + 3] << 24;
    memcpy(f, &u, sizeof *f);
}

static int64_t rd_le64(const uint8_t *p, size_t i)
{
    uint64_t u = 0;
    for (int b = 7; b >= 0; b--)
        u = u << 8 | p[8 * i + (size_t)b];
    return (int64_t)u;
}

/* Fills value v (already named) from tensor t. Unsupported data types
 * leave v UNDEF (an error only if a node needs it); malformed data is an
 * error. `what` names the tensor in messages ("initializer 'w'"). */
cnp_status cnp_onnx_load_tensor(cnp_onnx_parser *ps, const Onnx__TensorProto *t, cnp_value *v,
                                const char *what)
{
    cnp_ctx *ctx = ps->ctx;
    cnp_model *m = ps->m;
    size_t count = 1;
    int raw = t->has_raw_data || t->raw_data.len > 0;

    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        t->n_external_data > 0)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED,
                         "%s: %s keeps its data in an external file, which canopy does not read; "
                         "save the model as one file (onnx.save(model, path, "
                         "save_as_external_data=False), possible below 2 GB)", m->path, what);
    if (t->segment)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: %s is a segmented tensor, which canopy "
                         "does not read; export the model again", m->path, what);
    if (t->n_dims > CNP_MAX_RANK)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: %s has %zu dimensions (canopy reads at "
                         "most %d)", m->path, what, t->n_dims, CNP_MAX_RANK);
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || (uint64_t)t->dims[d] > SIZE_MAX ||
            !cnp_mul_size(count, (size_t)t->dims[d], &count))
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: %s has an invalid dimension %lld; the file "
                             "is corrupt", m->path, what, (long long)t->dims[d]);
        v->dims[d] = t->dims[d];
    }
    v->rank = (int)t->n_dims;
    v->count = count;

    switch (t->has_data_type ? t->data_type : 0) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
        int dbl = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
        size_t elem = dbl ? 8 : 4, have = raw ? t->raw_data.len / elem
                                          : dbl ? t->n_double_data : t->n_float_data;
        if ((raw && t->raw_data.len % elem) || have != count)
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: %s has %zu values for %zu elements; "
                             "the file is truncated or corrupt", m->path, what, have, count);
        v->f = cnp_arena_alloc(ctx, &m->arena, count, sizeof *v->f, what);
        if (!v->f)
            return CNP_ERR_NOMEM;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (raw && !dbl) { /* ONNX stores raw data little-endian, as this host */
            memcpy(v->f, t->raw_data.data, count * sizeof *v->f);
            count = 0;
        }
#endif
        for (size_t i = 0; i < count; i++) {
            if (raw && !dbl) {
                rd_le32(t->raw_data.data, i, &v->f[i]);
            } else if (raw) {
                int64_t b = rd_le64(t->raw_data.data, i);
                double d;
                memcpy(&d, &b, sizeof d);
                v->f[i] = (float)d;
            } else {
                v->f[i] = dbl ? (float)t->double_data[i] : t->float_data[i];
            }
        }
        v->kind = CNP_VAL_FCONST;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
        int i32 = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
        size_t elem = i32 ? 4 : 8, have = raw ? t->raw_data.len / elem
                                          : i32 ? t->n_int32_data : t->n_int64_data;
        if ((raw && t->raw_data.len % elem) || have != count)
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: %s has %zu values for %zu elements; "
                             "the file is truncated or corrupt", m->path, what, have, count);
        v->i = cnp_arena_alloc(ctx, &m->arena, count, sizeof *v->i, what);
        if (!v->i)
            return CNP_ERR_NOMEM;
        for (size_t i = 0; i < count; i++) {
            if (raw && i32) {
                const uint8_t *p = t->raw_data.data + 4 * i;
                v->i[i] = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                    (uint32_t)p[3] << 24);
            } else if (raw) {
                v->i[i] = rd_le64(t->raw_data.data, i);
            } else {
                v->i[i] = i32 ? t->int32_data[i] : t->int64_data[i];
            }
        }
        v->kind = CNP_VAL_ICONST;
        if (v->rank <= 1 && count <= CNP_MAX_RANK && (v->rank == 1 || count == 1)) {
            v->sym_rank = v->rank;
            v->n_sym = (int)count;
            for (size_t i = 0; i < count; i++) {
                v->sym[i].v = v->i[i];
                v->sym[i].batch = 0;
            }
        }
        break;
    }
    default:
        /* bool, strings, ...: harmless unless a node needs the values */
        v->kind = CNP_VAL_UNDEF;
        break;
    }
    return CNP_OK;
}

/* ------------------------------------------------------------------ */
/* Graph                                                                 */

static cnp_status read_input(parser *ps, const Onnx__ValueInfoProto *vi)
{
    cnp_ctx *ctx = ps->ctx;
    cnp_model *m = ps->m;
    const Onnx__TypeProto__Tensor *tt;
    const Onnx__TensorShapeProto *sh;
    int64_t d[4];
    int known[4], v;

    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !(tt = vi->type->tensor_type))
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the graph input '%s' is not a tensor", m->path,
                         vi->name);
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph input '%s' is %s; canopy feeds "
                         "float32 images", m->path, vi->name, dtype_name(tt->elem_type));
    sh = tt->shape;
    if (!sh || sh->n_dim != 4)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the graph input '%s' has %s; canopy expects "
                         "images (N, C, H, W)", m->path, vi->name,
                         sh ? "another number of dimensions than 4" : "no shape");
    for (int i = 0; i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[i];
        known[i] = dm && dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i] = known[i] ? dm->dim_value : 0;
        if (known[i] && (d[i] < 1 || d[i] > CNP_ONNX_MAX_DIM))
            return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the graph input '%s' has dimension %d = "
                             "%lld", m->path, vi->name, i, (long long)d[i]);
    }
    if (!known[1])
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the graph input '%s' does not fix the number "
                         "of channels (dimension 1)", m->path, vi->name);
    m->in_C = (int)d[1];
    m->fixed_batch = known[0] ? (int)d[0] : 0;
    m->fixed_h = known[2] ? (int)d[2] : 0;
    m->fixed_w = known[3] ? (int)d[3] : 0;
    v = cnp_value_add(ctx, m, vi->name);
    if (v < 0)
        return ctx->status;
    m->values[v].kind = CNP_VAL_ACT;
    m->input = v;
    m->input_name = m->values[v].name;
    return cnp_name_map_put(ctx, &ps->names, m->values[v].name, v);
}

static cnp_status parse_graph(parser *ps, const Onnx__ModelProto *pb)
{
    cnp_ctx *ctx = ps->ctx;
    cnp_model *m = ps->m;
    const Onnx__GraphProto *g = pb->graph;
    size_t bytes = 0, n_inputs = 0;
    int out;

    /* one slab for the weights */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        size_t b = t->raw_data.len + 8 * (t->n_float_data + t->n_int64_data + t->n_double_data +
                                          t->n_int32_data) + 64;
        if (b < t->raw_data.len || bytes + b < bytes)
            return cnp_error(ctx, CNP_ERR_NOMEM, "%s: the weights are too large", m->path);
        bytes += b;
    }
    if (cnp_arena_reserve(ctx, &m->arena, bytes) != CNP_OK)
        return ctx->status;

    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        char what[320];
        int v;
        if (!t->name || !t->name[0])
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: initializer #%zu has no name; the file is "
                             "corrupt", m->path, i);
        if (cnp_name_map_find(&ps->names, t->name) >= 0)
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: initializer '%s' is defined twice",
                             m->path, t->name);
        snprintf(what, sizeof what, "initializer '%.256s'", t->name);
        v = cnp_value_add(ctx, m, t->name);
        if (v < 0 || cnp_onnx_load_tensor(ps, t, &m->values[v], what) != CNP_OK ||
            cnp_name_map_put(ctx, &ps->names, m->values[v].name, v) != CNP_OK)
            return ctx->status;
    }
    if (g->n_sparse_initializer)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: sparse initializers are not supported; "
                         "export the model with dense weights", m->path);

    m->input = -1;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        int known;
        if (!vi->name || !vi->name[0])
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: graph input #%zu has no name", m->path, i);
        known = cnp_name_map_find(&ps->names, vi->name);
        if (known >= 0 && m->values[known].kind != CNP_VAL_ACT)
            continue; /* an initializer listed as an input (IR < 4) */
        if (++n_inputs > 1)
            return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph has more than one input "
                             "('%s', '%s'); canopy runs image classifiers with one input",
                             m->path, m->input_name, vi->name);
        if (read_input(ps, vi) != CNP_OK)
            return ctx->status;
    }
    if (m->input < 0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the graph has no input", m->path);

    if (g->n_node > (size_t)INT_MAX / 2)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: too many nodes", m->path);
    m->n_onnx_nodes = (int)g->n_node;
    m->nodes = cnp_calloc(ctx, g->n_node ? g->n_node : 1, sizeof *m->nodes, "the node table");
    m->ops = cnp_calloc(ctx, g->n_node ? g->n_node : 1, sizeof *m->ops, "the operator table");
    if (!m->nodes || !m->ops)
        return ctx->status;
    for (size_t i = 0; i < g->n_node; i++) {
        ps->node = g->node[i];
        ps->node_index = (int)i;
        if (cnp_onnx_lower_node(ps) != CNP_OK)
            return ctx->status;
    }

    if (g->n_output != 1)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph has %zu outputs; canopy expects "
                         "one, the per-label scores (N, labels)", m->path, g->n_output);
    if (!g->output[0]->name || (out = cnp_name_map_find(&ps->names, g->output[0]->name)) < 0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the graph output '%s' is not produced by any "
                         "node", m->path, g->output[0]->name ? g->output[0]->name : "");
    if (m->values[out].kind != CNP_VAL_ACT || out == m->input)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph output '%s' is not computed "
                         "from the image", m->path, g->output[0]->name);
    m->output = out;
    m->output_name = cnp_arena_strdup(ctx, &m->arena, g->output[0]->name);
    return m->output_name ? CNP_OK : ctx->status;
}

static cnp_status check_header(cnp_ctx *ctx, cnp_model *m, const Onnx__ModelProto *pb)
{
    int found = 0;
    if (!pb->graph)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: not an ONNX model (no graph); export the model "
                         "with torch.onnx.export", m->path);
    for (size_t i = 0; i < pb->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = pb->opset_import[i];
        if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) {
            if (!o->has_version || o->version < 1 || o->version > 1000)
                return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the opset version is invalid", m->path);
            m->opset = (int)o->version;
            found = 1;
        }
    }
    if (!found)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the model declares no ONNX opset; the file is "
                         "corrupt or not an ONNX model", m->path);
    if (m->opset < OPSET_MIN || m->opset > OPSET_MAX)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: opset %d is not supported (canopy reads "
                         "opsets %d to %d); export again with torch.onnx.export(..., "
                         "opset_version=%d)", m->path, m->opset, OPSET_MIN, OPSET_MAX, OPSET_MAX);
    m->ir_version = pb->has_ir_version ? pb->ir_version : 0;
    {
        char prod[256];
        snprintf(prod, sizeof prod, "%.120s%s%.120s", pb->producer_name ? pb->producer_name : "",
                 pb->producer_version && pb->producer_version[0] ? " " : "",
                 pb->producer_version ? pb->producer_version : "");
        m->producer = cnp_arena_strdup(ctx, &m->arena, prod[0] ? prod : "unknown");
    }
    return m->producer ? CNP_OK : ctx->status;
}

static cnp_status read_meta(cnp_ctx *ctx, cnp_model *m, const Onnx__ModelProto *pb)
{
    const char **keys = NULL, **vals = NULL;
    size_t n = pb->n_metadata_props;
    cnp_status st = CNP_OK;
    int ref, fixed;

    keys = cnp_calloc(ctx, n ? n : 1, sizeof *keys, "metadata");
    vals = cnp_calloc(ctx, n ? n : 1, sizeof *vals, "metadata");
    if (!keys || !vals) {
        st = ctx->status;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = pb->metadata_props[i]->key ? pb->metadata_props[i]->key : "";
        vals[i] = pb->metadata_props[i]->value ? pb->metadata_props[i]->value : "";
    }
    /* Shapes at a reference size (any works: it gives the output count),
     * then the metadata, then shapes again at the metadata's size. */
    fixed = m->fixed_h && m->fixed_w && m->fixed_h == m->fixed_w ? m->fixed_h : 0;
    ref = cnp_meta_peek_input_size(keys, vals, n);
    if (ref < 32)
        ref = CNP_META_DEFAULT_SIZE;
    st = cnp_graph_shapes(ctx, m, m->fixed_h ? m->fixed_h : ref, m->fixed_w ? m->fixed_w : ref);
    if (st != CNP_OK)
        goto cleanup;
    st = cnp_meta_parse(ctx, &m->arena, m->path, keys, vals, n, m->n_out, m->in_C, fixed,
                        &m->meta);
    if (st != CNP_OK)
        goto cleanup;
    if (!m->fixed_h && m->meta.input_size != ref) {
        st = cnp_graph_shapes(ctx, m, m->meta.input_size, m->meta.input_size);
        if (st != CNP_OK)
            goto cleanup;
    }
    m->gflops_meta = m->gflops;
cleanup:
    free(keys);
    free(vals);
    return st;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

cnp_status cnp_model_load_buffer(cnp_ctx *ctx, const void *data, size_t size, const char *name,
                                 cnp_model **out)
{
    cnp_status st = CNP_OK;
    cnp_model *m = NULL;
    Onnx__ModelProto *pb = NULL;
    parser ps;

    memset(&ps, 0, sizeof ps);
    *out = NULL;
    if (!name)
        name = "model";
    m = cnp_calloc(ctx, 1, sizeof *m, "a model");
    if (!m)
        return CNP_ERR_NOMEM;
    m->input = m->output = -1;
    m->path = cnp_arena_strdup(ctx, &m->arena, name);
    if (!m->path) {
        st = ctx->status;
        goto cleanup;
    }
    if (size == 0) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: the file is empty; export the model again",
                       name);
        goto cleanup;
    }
    pb = onnx__model_proto__unpack(NULL, size, data);
    if (!pb) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: not an ONNX model, or a truncated or corrupt one "
                       "(the protobuf does not parse); export it again with torch.onnx.export",
                       name);
        goto cleanup;
    }
    ps.ctx = ctx;
    ps.m = m;
    if ((st = check_header(ctx, m, pb)) != CNP_OK || (st = parse_graph(&ps, pb)) != CNP_OK ||
        (st = cnp_graph_fuse(ctx, m)) != CNP_OK || (st = read_meta(ctx, m, pb)) != CNP_OK)
        goto cleanup;
    if (!m->meta.name || !m->meta.name[0]) {
        char nm[256];
        const char *b = base_name(name), *dot = strrchr(b, '.');
        size_t len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
        snprintf(nm, sizeof nm, "%.*s", (int)(len < 255 ? len : 255), b);
        m->meta.name = cnp_arena_strdup(ctx, &m->arena, nm);
        if (!m->meta.name) {
            st = ctx->status;
            goto cleanup;
        }
    }
    if ((st = cnp_model_describe(ctx, m)) != CNP_OK || (st = cnp_blas_init(ctx)) != CNP_OK)
        goto cleanup;
    *out = m;
    m = NULL;
cleanup:
    cnp_name_map_free(&ps.names);
    if (pb)
        onnx__model_proto__free_unpacked(pb, NULL);
    cnp_model_free(m);
    return st;
}

cnp_status cnp_model_load(cnp_ctx *ctx, const char *path, cnp_model **out)
{
    cnp_status st = CNP_OK;
    int fd = -1;
    void *map = MAP_FAILED;
    unsigned char *buf = NULL;
    struct stat sb;
    size_t size;

    *out = NULL;
    if (!path || !path[0])
        return cnp_error(ctx, CNP_ERR_USAGE, "no model file given");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot open the model: %s", path, strerror(errno));
        goto cleanup;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: not a regular file; give the path of an .onnx model",
                       path);
        goto cleanup;
    }
    if ((unsigned long long)sb.st_size > MAX_MODEL_BYTES) {
        st = cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the model is larger than 2 GiB, which ONNX "
                       "files cannot be without external data", path);
        goto cleanup;
    }
    size = (size_t)sb.st_size;
    if (size == 0) {
        st = cnp_model_load_buffer(ctx, "", 0, path, out);
        goto cleanup;
    }
    /* mapped: the protobuf parser copies what it keeps */
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
        st = cnp_model_load_buffer(ctx, map, size, path, out);
        goto cleanup;
    }
    buf = malloc(size);
    if (!buf) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory reading the model (%zu bytes)",
                       path, size);
        goto cleanup;
    }
    for (size_t got = 0; got < size;) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            st = cnp_error(ctx, CNP_ERR_IO, "%s: could not read the model: %s", path,
                           r < 0 ? strerror(errno) : "the file shrank while reading");
            goto cleanup;
        }
        got += (size_t)r;
    }
    st = cnp_model_load_buffer(ctx, buf, size, path, out);
cleanup:
    if (map != MAP_FAILED)
        munmap(map, size);
    if (fd >= 0)
        close(fd);
    free(buf);
    return st;
}

void cnp_model_free(cnp_model *m)
{
    if (!m)
        return;
    cnp_model_unprepare(m);
    free(m->prof_s);
    free(m->values);
    free(m->nodes);
    free(m->ops);
    free(m->op_names);
    free(m->op_counts);
    cnp_arena_release(&m->arena);
    free(m);
}

cnp_model_meta *cnp_model_meta_get(cnp_model *m)
{
    return &m->meta;
}

const cnp_model_meta *cnp_model_meta_cget(const cnp_model *m)
{
    return &m->meta;
}

