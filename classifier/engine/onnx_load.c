/* onnx_load.c -- ONNX file -> canopy's model: reading the file, unpacking
 * it (onnx/read.c), initializers, the graph's inputs and outputs, each node
 * lowered (onnx_lower.c), then fusion (graph.c), the reference shape pass
 * and the metadata (onnx/meta.c).
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

typedef cnp_onnx_parser parser;

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
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the graph input '%s' is not a tensor", m->g.path,
                         vi->name);
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph input '%s' is %s; canopy feeds "
                         "float32 images", m->g.path, vi->name, cnp_onnx_dtype_name(tt->elem_type));
    sh = tt->shape;
    if (!sh || sh->n_dim != 4)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the graph input '%s' has %s; canopy expects "
                         "images (N, C, H, W)", m->g.path, vi->name,
                         sh ? "another number of dimensions than 4" : "no shape");
    for (int i = 0; i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[i];
        known[i] = dm && dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i] = known[i] ? dm->dim_value : 0;
        if (known[i] && (d[i] < 1 || d[i] > CNP_ONNX_MAX_DIM))
            return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the graph input '%s' has dimension %d = "
                             "%lld", m->g.path, vi->name, i, (long long)d[i]);
    }
    if (!known[1])
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the graph input '%s' does not fix the number "
                         "of channels (dimension 1)", m->g.path, vi->name);
    m->g.in_C = (int)d[1];
    m->g.fixed_batch = known[0] ? (int)d[0] : 0;
    m->g.fixed_h = known[2] ? (int)d[2] : 0;
    m->g.fixed_w = known[3] ? (int)d[3] : 0;
    v = cnp_value_add(ctx, m, vi->name);
    if (v < 0)
        return ctx->status;
    m->g.values[v].kind = CNP_VAL_ACT;
    m->g.input = v;
    m->g.input_name = m->g.values[v].name;
    return cnp_name_map_put(ctx, &ps->names, m->g.values[v].name, v);
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
            return cnp_error(ctx, CNP_ERR_NOMEM, "%s: the weights are too large", m->g.path);
        bytes += b;
    }
    if (cnp_arena_reserve(ctx, &m->g.arena, bytes) != CNP_OK)
        return ctx->status;

    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        char what[320];
        int v;
        if (!t->name || !t->name[0])
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: initializer #%zu has no name; the file is "
                             "corrupt", m->g.path, i);
        if (cnp_name_map_find(&ps->names, t->name) >= 0)
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: initializer '%s' is defined twice",
                             m->g.path, t->name);
        snprintf(what, sizeof what, "initializer '%.256s'", t->name);
        v = cnp_value_add(ctx, m, t->name);
        if (v < 0 || cnp_onnx_load_tensor(ps, t, &m->g.values[v], what) != CNP_OK ||
            cnp_name_map_put(ctx, &ps->names, m->g.values[v].name, v) != CNP_OK)
            return ctx->status;
    }
    if (g->n_sparse_initializer)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: sparse initializers are not supported; "
                         "export the model with dense weights", m->g.path);

    m->g.input = -1;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        int known;
        if (!vi->name || !vi->name[0])
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: graph input #%zu has no name", m->g.path, i);
        known = cnp_name_map_find(&ps->names, vi->name);
        if (known >= 0 && m->g.values[known].kind != CNP_VAL_ACT)
            continue; /* an initializer listed as an input (IR < 4) */
        if (++n_inputs > 1)
            return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph has more than one input "
                             "('%s', '%s'); canopy runs image classifiers with one input",
                             m->g.path, m->g.input_name, vi->name);
        if (read_input(ps, vi) != CNP_OK)
            return ctx->status;
    }
    if (m->g.input < 0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the graph has no input", m->g.path);

    if (g->n_node > (size_t)INT_MAX / 2)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: too many nodes", m->g.path);
    m->g.n_onnx_nodes = (int)g->n_node;
    m->g.nodes = cnp_calloc(ctx, g->n_node ? g->n_node : 1, sizeof *m->g.nodes, "the node table");
    m->g.ops = cnp_calloc(ctx, g->n_node ? g->n_node : 1, sizeof *m->g.ops, "the operator table");
    if (!m->g.nodes || !m->g.ops)
        return ctx->status;
    for (size_t i = 0; i < g->n_node; i++) {
        ps->node = g->node[i];
        ps->node_index = (int)i;
        if (cnp_onnx_lower_node(ps) != CNP_OK)
            return ctx->status;
    }

    if (g->n_output != 1)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph has %zu outputs; canopy expects "
                         "one, the per-label scores (N, labels)", m->g.path, g->n_output);
    if (!g->output[0]->name || (out = cnp_name_map_find(&ps->names, g->output[0]->name)) < 0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the graph output '%s' is not produced by any "
                         "node", m->g.path, g->output[0]->name ? g->output[0]->name : "");
    if (m->g.values[out].kind != CNP_VAL_ACT || out == m->g.input)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the graph output '%s' is not computed "
                         "from the image", m->g.path, g->output[0]->name);
    m->g.output = out;
    m->g.output_name = cnp_arena_strdup(ctx, &m->g.arena, g->output[0]->name);
    return m->g.output_name ? CNP_OK : ctx->status;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Every tensor canopy.int8 names is an activation of this graph (ranges
 * measured on another model would quantise the wrong layers). */
static cnp_status check_int8_names(cnp_ctx *ctx, const cnp_model *m)
{
    for (int i = 0; i < m->meta.n_int8; i++) {
        int v;
        for (v = 0; v < m->g.n_values; v++)
            if (m->g.values[v].kind == CNP_VAL_ACT &&
                !strcmp(m->g.values[v].name, m->meta.int8_names[i]))
                break;
        if (v == m->g.n_values)
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: metadata '%s': tensor '%.60s' is not an "
                             "activation of this model; run `canopy calibrate` on this model "
                             "again, or remove the key", m->g.path, CNP_META_KEY_INT8,
                             m->meta.int8_names[i]);
    }
    return CNP_OK;
}

/* Shapes at a reference size (any works: it gives the output count), then
 * the metadata, then shapes again at the metadata's size. */
static cnp_status read_meta(cnp_ctx *ctx, cnp_model *m, const Onnx__ModelProto *pb)
{
    cnp_meta_params mp;
    cnp_status st;
    char nm[256];
    const char *b = base_name(m->g.path), *dot = strrchr(b, '.');
    size_t len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    int ref;

    memset(&mp, 0, sizeof mp);
    if ((st = cnp_meta_props_get(ctx, pb, &mp.props)) != CNP_OK)
        return st;
    snprintf(nm, sizeof nm, "%.*s", (int)(len < 255 ? len : 255), b);
    mp.file = m->g.path;
    mp.fixed_size = m->g.fixed_h && m->g.fixed_w && m->g.fixed_h == m->g.fixed_w ? m->g.fixed_h : 0;
    mp.n_channels = m->g.in_C;
    mp.default_name = nm;
    ref = cnp_meta_peek_input_size(&mp.props);
    if (ref < 32)
        ref = CNP_META_DEFAULT_SIZE;
    st = cnp_graph_shapes(ctx, m, m->g.fixed_h ? m->g.fixed_h : ref,
                          m->g.fixed_w ? m->g.fixed_w : ref);
    if (st != CNP_OK)
        goto cleanup;
    mp.n_outputs = m->g.n_out;
    if ((st = cnp_meta_parse(ctx, &mp, &m->meta)) != CNP_OK ||
        (st = check_int8_names(ctx, m)) != CNP_OK)
        goto cleanup;
    if (!m->g.fixed_h && m->meta.input_size != ref) {
        st = cnp_graph_shapes(ctx, m, m->meta.input_size, m->meta.input_size);
        if (st != CNP_OK)
            goto cleanup;
    }
    m->g.gflops_meta = m->g.gflops;
cleanup:
    cnp_meta_props_release(&mp.props);
    return st;
}

cnp_status cnp_model_load_buffer(cnp_ctx *ctx, const void *data, size_t size, const char *name,
                                 cnp_model **out)
{
    cnp_status st = CNP_OK;
    cnp_model *m = NULL;
    Onnx__ModelProto *pb = NULL;
    cnp_onnx_header hdr;
    parser ps;

    memset(&ps, 0, sizeof ps);
    *out = NULL;
    if (!name)
        name = "model";
    m = cnp_calloc(ctx, 1, sizeof *m, "a model");
    if (!m)
        return CNP_ERR_NOMEM;
    m->g.input = m->g.output = -1;
    m->g.path = cnp_arena_strdup(ctx, &m->g.arena, name);
    if (!m->g.path) {
        st = ctx->status;
        goto cleanup;
    }
    if ((st = cnp_onnx_unpack(ctx, data, size, name, &pb, &hdr)) != CNP_OK)
        goto cleanup;
    m->g.opset = hdr.opset;
    m->g.ir_version = hdr.ir_version;
    if (!(m->g.producer = cnp_arena_strdup(ctx, &m->g.arena, hdr.producer))) {
        st = ctx->status;
        goto cleanup;
    }
    ps.ctx = ctx;
    ps.m = m;
    if ((st = parse_graph(&ps, pb)) != CNP_OK || (st = cnp_graph_fuse(ctx, m)) != CNP_OK ||
        (st = read_meta(ctx, m, pb)) != CNP_OK || (st = cnp_model_describe(ctx, m)) != CNP_OK)
        goto cleanup;
    *out = m;
    m = NULL;
cleanup:
    cnp_name_map_free(&ps.names);
    cnp_onnx_free(pb);
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
    cnp_meta_clear(&m->meta);
    free(m->prof.node_s);
    cnp_model_observe(NULL, m, 0);
    free(m->g.values);
    free(m->g.nodes);
    free(m->g.ops);
    free(m->g.op_names);
    free(m->g.op_counts);
    cnp_arena_release(&m->g.arena);
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

