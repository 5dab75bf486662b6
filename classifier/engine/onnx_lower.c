/* onnx_lower.c -- ONNX operators -> cnp_node: attributes read and checked,
 * weights checked against the operator, BatchNormalization turned into a
 * per-channel affine, Gemm/MatMul weights into (M, K), Constant and
 * Transpose of constants folded, Identity and Dropout turned into aliases.
 * Anything else is an error naming the operator and the node.
 */
#include "engine/onnx_parse.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef cnp_onnx_parser parser;

/* One row of the operator table (at the end of the file): the ONNX
 * operator, the function that lowers it, and what that function is told. */
typedef struct lowering lowering;
typedef cnp_status (*lower_fn)(parser *ps, const lowering *e);
struct lowering {
    const char *op;     /* ONNX op_type (static: nodes keep it) */
    lower_fn fn;
    cnp_op kind;        /* node made, for functions that serve several (else unused) */
    int arg;            /* function-specific variant (see each function) */
    int aside;          /* listed apart in the message (folded cases only) */
};

static cnp_status node_error(parser *ps, cnp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cnp_status node_error(parser *ps, cnp_status st, const char *fmt, ...)
{
    va_list ap;
    cnp_status r;
    va_start(ap, fmt);
    r = cnp_onnx_node_verror(ps, st, fmt, ap);
    va_end(ap);
    return r;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                            */

static const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static cnp_status attr_int(parser *ps, const char *name, int64_t def, int64_t lo, int64_t hi,
                           int64_t *out)
{
    const Onnx__AttributeProto *a = attr_find(ps->node, name);
    *out = def;
    if (!a)
        return CNP_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return node_error(ps, CNP_ERR_FORMAT, "attribute %s is not an integer", name);
    if (a->i < lo || a->i > hi)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "attribute %s = %lld is outside %lld..%lld",
                          name, (long long)a->i, (long long)lo, (long long)hi);
    *out = a->i;
    return CNP_OK;
}

static cnp_status attr_float(parser *ps, const char *name, float def, float *out)
{
    const Onnx__AttributeProto *a = attr_find(ps->node, name);
    *out = def;
    if (!a)
        return CNP_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return node_error(ps, CNP_ERR_FORMAT, "attribute %s is not a float", name);
    if (!isfinite(a->f))
        return node_error(ps, CNP_ERR_FORMAT, "attribute %s is not a finite number", name);
    *out = a->f;
    return CNP_OK;
}

/* Exactly `n` ints (or absent: *found = 0), each in lo..hi. */
static cnp_status attr_ints(parser *ps, const char *name, size_t n, int64_t lo, int64_t hi,
                            int *out, int *found)
{
    const Onnx__AttributeProto *a = attr_find(ps->node, name);
    *found = 0;
    if (!a)
        return CNP_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return node_error(ps, CNP_ERR_FORMAT, "attribute %s is not a list of integers", name);
    if (a->n_ints != n)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "attribute %s has %zu values, canopy handles "
                          "%zu (2-D images only)", name, a->n_ints, n);
    for (size_t i = 0; i < n; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "attribute %s has value %lld outside "
                              "%lld..%lld", name, (long long)a->ints[i], (long long)lo,
                              (long long)hi);
        out[i] = (int)a->ints[i];
    }
    *found = 1;
    return CNP_OK;
}

/* auto_pad must be NOTSET (explicit pads) or VALID (no padding). */
static cnp_status attr_auto_pad(parser *ps, int *valid)
{
    const Onnx__AttributeProto *a = attr_find(ps->node, "auto_pad");
    *valid = 0;
    if (!a || !a->has_s || a->s.len == 0)
        return CNP_OK;
    if (a->s.len == 6 && !memcmp(a->s.data, "NOTSET", 6))
        return CNP_OK;
    if (a->s.len == 5 && !memcmp(a->s.data, "VALID", 5)) {
        *valid = 1;
        return CNP_OK;
    }
    return node_error(ps, CNP_ERR_UNSUPPORTED, "auto_pad '%.*s' is not supported (export with "
                      "explicit pads, as torch.onnx.export does)",
                      (int)(a->s.len > 32 ? 32 : a->s.len), (const char *)a->s.data);
}

/* Axes from an attribute (opset < 13/18) or a constant input. */
static cnp_status axes_get(parser *ps, const char *attr, int input_index, cnp_axes_op *ax)
{
    const Onnx__AttributeProto *a = attr_find(ps->node, attr);
    ax->n_axes = 0;
    if (a) {
        if (a->n_ints > CNP_MAX_RANK)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "too many axes (%zu)", a->n_ints);
        for (size_t i = 0; i < a->n_ints; i++)
            ax->axes[i] = a->ints[i];
        ax->n_axes = (int)a->n_ints;
        return CNP_OK;
    }
    if ((int)ps->node->n_input > input_index && ps->node->input[input_index][0]) {
        int v = cnp_name_map_find(&ps->names, ps->node->input[input_index]);
        const cnp_value *val = v >= 0 ? &ps->m->g.values[v] : NULL;
        if (!val || val->kind != CNP_VAL_ICONST || val->rank > 1 || val->count > CNP_MAX_RANK)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "the axes must be a constant list of at "
                              "most %d integers", CNP_MAX_RANK);
        for (size_t i = 0; i < val->count; i++)
            ax->axes[i] = val->i[i];
        ax->n_axes = (int)val->count;
    }
    return CNP_OK;
}

/* ------------------------------------------------------------------ */
/* Lowering                                                              */

/* Resolves input i of the current node: value index, -1 when omitted.
 * Undefined names are an error. */
static cnp_status input_of(parser *ps, size_t i, int *out)
{
    const char *name;
    int v;
    *out = -1;
    if (i >= ps->node->n_input || !ps->node->input[i][0])
        return CNP_OK;
    name = ps->node->input[i];
    v = cnp_name_map_find(&ps->names, name);
    if (v < 0)
        return node_error(ps, CNP_ERR_FORMAT, "input '%s' is not produced by any earlier node "
                          "(the graph is not in topological order or the file is corrupt)", name);
    if (ps->m->g.values[v].kind == CNP_VAL_UNDEF)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "input '%s' is an optional output canopy does "
                          "not compute or a tensor of a data type canopy does not read", name);
    ps->m->g.values[v].n_refs++;
    *out = v;
    return CNP_OK;
}

/* Defines the node's output i as a new value of the given kind. */
static cnp_status define_output(parser *ps, size_t i, cnp_val_kind kind, int producer, int *out)
{
    const char *name;
    int v;
    *out = -1;
    if (i >= ps->node->n_output || !ps->node->output[i][0])
        return i == 0 ? node_error(ps, CNP_ERR_FORMAT, "the node has no output") : CNP_OK;
    name = ps->node->output[i];
    if (cnp_name_map_find(&ps->names, name) >= 0)
        return node_error(ps, CNP_ERR_FORMAT, "output '%s' is produced twice", name);
    v = cnp_value_add(ps->ctx, ps->m, name);
    if (v < 0)
        return ps->ctx->status;
    ps->m->g.values[v].kind = kind;
    ps->m->g.values[v].producer = producer;
    if (cnp_name_map_put(ps->ctx, &ps->names, ps->m->g.values[v].name, v) != CNP_OK)
        return CNP_ERR_NOMEM;
    *out = v;
    return CNP_OK;
}

/* Extra outputs (BatchNormalization's running statistics, MaxPool's
 * indices, Dropout's mask) are named but never computed. */
static cnp_status define_unused_outputs(parser *ps, size_t from)
{
    int v;
    for (size_t i = from; i < ps->node->n_output; i++)
        if (ps->node->output[i][0] && define_output(ps, i, CNP_VAL_UNDEF, -1, &v) != CNP_OK)
            return ps->ctx->status;
    return CNP_OK;
}

static cnp_status alias_output(parser *ps, int v)
{
    const char *name;
    if (ps->node->n_output < 1 || !ps->node->output[0][0])
        return node_error(ps, CNP_ERR_FORMAT, "the node has no output");
    name = ps->node->output[0];
    if (cnp_name_map_find(&ps->names, name) >= 0)
        return node_error(ps, CNP_ERR_FORMAT, "output '%s' is produced twice", name);
    {
        char *key = cnp_arena_strdup(ps->ctx, &ps->m->g.arena, name);
        if (!key || cnp_name_map_put(ps->ctx, &ps->names, key, v) != CNP_OK)
            return ps->ctx->status;
    }
    return define_unused_outputs(ps, 1);
}

static cnp_node *new_node(parser *ps, cnp_op op, const char *onnx_op, int n_in)
{
    cnp_model *m = ps->m;
    cnp_node *nd = &m->g.nodes[m->g.n_nodes];
    char nb[64];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->onnx_op = onnx_op;
    nd->out = -1;
    if (ps->node->name && ps->node->name[0]) {
        nd->name = cnp_arena_strdup(ps->ctx, &m->g.arena, ps->node->name);
    } else {
        snprintf(nb, sizeof nb, "#%d", ps->node_index);
        nd->name = cnp_arena_strdup(ps->ctx, &m->g.arena, nb);
    }
    nd->n_in = n_in;
    nd->in = cnp_arena_alloc(ps->ctx, &m->g.arena, (size_t)(n_in > 0 ? n_in : 1), sizeof *nd->in,
                             "node inputs");
    if (!nd->name || !nd->in)
        return NULL;
    for (int i = 0; i < n_in; i++)
        nd->in[i] = -1;
    m->g.n_nodes++;
    return nd;
}

static int is_act(const cnp_model *m, int v)
{
    return v >= 0 && m->g.values[v].kind == CNP_VAL_ACT;
}

static int is_int(const cnp_model *m, int v)
{
    return v >= 0 &&
           (m->g.values[v].kind == CNP_VAL_SHAPE || m->g.values[v].kind == CNP_VAL_ICONST);
}

static cnp_status need_act(parser *ps, int v, const char *what)
{
    if (is_act(ps->m, v))
        return CNP_OK;
    if (v < 0)
        return node_error(ps, CNP_ERR_FORMAT, "%s is missing", what);
    return node_error(ps, CNP_ERR_UNSUPPORTED, "%s '%s' is a constant or a shape, canopy expects "
                      "an image activation here", what, ps->m->g.values[v].name);
}

static cnp_status need_fconst(parser *ps, int v, const char *what, int rank, size_t count)
{
    const cnp_value *val;
    if (v < 0)
        return node_error(ps, CNP_ERR_FORMAT, "%s is missing", what);
    val = &ps->m->g.values[v];
    if (val->kind != CNP_VAL_FCONST)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "%s '%s' must be a float32 initializer "
                          "(weights computed at run time are not supported)", what, val->name);
    if (rank >= 0 && val->rank != rank && !(rank == 1 && val->count == count))
        return node_error(ps, CNP_ERR_SHAPE, "%s '%s' has %d dimensions, expected %d", what,
                          val->name, val->rank, rank);
    if (count && val->count != count)
        return node_error(ps, CNP_ERR_SHAPE, "%s '%s' has %zu values, expected %zu", what,
                          val->name, val->count, count);
    return CNP_OK;
}

/* Node output 0 as an activation produced by the new node. */
static cnp_status act_output(parser *ps, cnp_node *nd)
{
    return define_output(ps, 0, CNP_VAL_ACT, ps->m->g.n_nodes - 1, &nd->out);
}

static int dim_ok(int64_t d)
{
    return d >= 1 && d <= CNP_ONNX_MAX_DIM;
}

static cnp_status lower_conv(parser *ps, const lowering *e)
{
    (void)e;
    cnp_model *m = ps->m;
    int x, w, b, found, valid, v2[2], v4[4];
    int64_t group;
    cnp_node *nd;
    cnp_conv_op *c;
    const cnp_value *wv;

    if (input_of(ps, 0, &x) || input_of(ps, 1, &w) || input_of(ps, 2, &b))
        return ps->ctx->status;
    if (need_act(ps, x, "the input") || need_fconst(ps, w, "the weight", 4, 0))
        return ps->ctx->status;
    wv = &m->g.values[w];
    if (!dim_ok(wv->dims[0]) || !dim_ok(wv->dims[1]) || wv->dims[2] < 1 ||
        wv->dims[2] > CNP_ONNX_MAX_WINDOW || wv->dims[3] < 1 || wv->dims[3] > CNP_ONNX_MAX_WINDOW)
        return node_error(ps, CNP_ERR_SHAPE, "weight '%s' has unusable dimensions", wv->name);
    if (attr_int(ps, "group", 1, 1, INT_MAX, &group))
        return ps->ctx->status;
    if (group != 1)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "grouped convolution (group = %lld) is not "
                          "supported; canopy runs plain ResNets", (long long)group);
    if (b >= 0 && need_fconst(ps, b, "the bias", 1, (size_t)wv->dims[0]))
        return ps->ctx->status;
    if (!(nd = new_node(ps, CNP_OP_CONV, "Conv", 2)))
        return ps->ctx->status;
    nd->in[0] = x;
    nd->in[1] = -1; /* residual, set by fusion */
    c = &nd->u.conv;
    c->K = (int)wv->dims[0];
    c->C = (int)wv->dims[1];
    c->R = (int)wv->dims[2];
    c->S = (int)wv->dims[3];
    c->w = wv->f;
    c->wval = w;
    c->bias = b >= 0 ? m->g.values[b].f : NULL;
    c->residual = -1;
    c->stride_h = c->stride_w = c->dil_h = c->dil_w = 1;
    if (attr_ints(ps, "kernel_shape", 2, 1, CNP_ONNX_MAX_WINDOW, v2, &found))
        return ps->ctx->status;
    if (found && (v2[0] != c->R || v2[1] != c->S))
        return node_error(ps, CNP_ERR_SHAPE, "kernel_shape %dx%d does not match the weight's "
                          "%dx%d", v2[0], v2[1], c->R, c->S);
    if (attr_ints(ps, "strides", 2, 1, CNP_ONNX_MAX_WINDOW, v2, &found))
        return ps->ctx->status;
    if (found) {
        c->stride_h = v2[0];
        c->stride_w = v2[1];
    }
    if (attr_ints(ps, "dilations", 2, 1, CNP_ONNX_MAX_WINDOW, v2, &found))
        return ps->ctx->status;
    if (found) {
        c->dil_h = v2[0];
        c->dil_w = v2[1];
    }
    if (attr_ints(ps, "pads", 4, 0, CNP_ONNX_MAX_WINDOW, v4, &found) || attr_auto_pad(ps, &valid))
        return ps->ctx->status;
    if (found && !valid) {
        c->pad_t = v4[0];
        c->pad_l = v4[1];
        c->pad_b = v4[2];
        c->pad_r = v4[3];
    }
    /* the weights stay in the arena; fusion copies them when shared */
    return act_output(ps, nd);
}

static cnp_status lower_pool(parser *ps, const lowering *e)
{
    const cnp_op op = e->kind;
    const char *onnx_op = e->op;
    int x, found, valid, v2[2], v4[4];
    int64_t ceil_mode, cip, storage;
    cnp_node *nd;
    cnp_pool_op *p;

    if (input_of(ps, 0, &x) || need_act(ps, x, "the input"))
        return ps->ctx->status;
    if (!(nd = new_node(ps, op, onnx_op, 1)))
        return ps->ctx->status;
    nd->in[0] = x;
    p = &nd->u.pool;
    p->stride_h = p->stride_w = 1;
    if (attr_ints(ps, "kernel_shape", 2, 1, CNP_ONNX_MAX_WINDOW, v2, &found))
        return ps->ctx->status;
    if (!found)
        return node_error(ps, CNP_ERR_FORMAT, "kernel_shape is missing (2-D pooling expected)");
    p->R = v2[0];
    p->S = v2[1];
    if (attr_ints(ps, "strides", 2, 1, CNP_ONNX_MAX_WINDOW, v2, &found))
        return ps->ctx->status;
    if (found) {
        p->stride_h = v2[0];
        p->stride_w = v2[1];
    }
    if (attr_ints(ps, "dilations", 2, 1, 1, v2, &found))
        return ps->ctx->status;
    if (attr_ints(ps, "pads", 4, 0, CNP_ONNX_MAX_WINDOW, v4, &found) || attr_auto_pad(ps, &valid))
        return ps->ctx->status;
    if (found && !valid) {
        p->pad_t = v4[0];
        p->pad_l = v4[1];
        p->pad_b = v4[2];
        p->pad_r = v4[3];
    }
    if (p->pad_t >= p->R || p->pad_b >= p->R || p->pad_l >= p->S || p->pad_r >= p->S)
        return node_error(ps, CNP_ERR_FORMAT, "pads must be smaller than the %dx%d window",
                          p->R, p->S);
    if (attr_int(ps, "ceil_mode", 0, 0, 1, &ceil_mode) ||
        attr_int(ps, "count_include_pad", 0, 0, 1, &cip) ||
        attr_int(ps, "storage_order", 0, 0, 0, &storage))
        return ps->ctx->status;
    p->ceil_mode = (int)ceil_mode;
    p->count_include_pad = (int)cip;
    if (act_output(ps, nd))
        return ps->ctx->status;
    if (ps->node->n_output > 1 && ps->node->output[1][0])
        return define_unused_outputs(ps, 1);
    return CNP_OK;
}

static cnp_status lower_global_pool(parser *ps, const lowering *e)
{
    const cnp_op op = e->kind;
    const char *onnx_op = e->op;
    const int reduce = e->arg; /* ReduceMean/ReduceMax: axes checked */
    int x;
    int64_t keep = 1, noop = 0;
    cnp_node *nd;
    if (input_of(ps, 0, &x) || need_act(ps, x, "the input"))
        return ps->ctx->status;
    if (!(nd = new_node(ps, op, onnx_op, 1)))
        return ps->ctx->status;
    nd->in[0] = x;
    if (reduce) {
        if (axes_get(ps, "axes", 1, &nd->u.ax) || attr_int(ps, "keepdims", 1, 0, 1, &keep) ||
            attr_int(ps, "noop_with_empty_axes", 0, 0, 1, &noop))
            return ps->ctx->status;
        if (nd->u.ax.n_axes == 0 && noop)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "a reduction without axes is not "
                              "supported");
        nd->u.ax.keepdims = (int)keep;
    } else {
        nd->u.ax.n_axes = 2;
        nd->u.ax.axes[0] = 2;
        nd->u.ax.axes[1] = 3;
        nd->u.ax.keepdims = 1;
    }
    return act_output(ps, nd);
}

static cnp_status lower_batchnorm(parser *ps, const lowering *e)
{
    (void)e;
    cnp_model *m = ps->m;
    int x, sc, bi, mu, var;
    int64_t training;
    float eps;
    size_t C;
    cnp_node *nd;

    if (input_of(ps, 0, &x) || input_of(ps, 1, &sc) || input_of(ps, 2, &bi) ||
        input_of(ps, 3, &mu) || input_of(ps, 4, &var))
        return ps->ctx->status;
    if (need_act(ps, x, "the input") || need_fconst(ps, sc, "the scale", 1, 0))
        return ps->ctx->status;
    C = m->g.values[sc].count;
    if (C < 1 || C > CNP_ONNX_MAX_DIM)
        return node_error(ps, CNP_ERR_SHAPE, "the scale has %zu values", C);
    if (need_fconst(ps, bi, "the bias", 1, C) || need_fconst(ps, mu, "the mean", 1, C) ||
        need_fconst(ps, var, "the variance", 1, C))
        return ps->ctx->status;
    if (attr_float(ps, "epsilon", 1e-5f, &eps) ||
        attr_int(ps, "training_mode", 0, 0, 1, &training))
        return ps->ctx->status;
    if (training)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "the model was exported in training mode; "
                          "export it with model.eval()");
    if (!(nd = new_node(ps, CNP_OP_AFFINE, "BatchNormalization", 2)))
        return ps->ctx->status;
    nd->in[0] = x;
    nd->u.aff.F = (int)C;
    nd->u.aff.scale = cnp_arena_alloc(ps->ctx, &m->g.arena, C, sizeof(float), "BatchNormalization");
    nd->u.aff.shift = cnp_arena_alloc(ps->ctx, &m->g.arena, C, sizeof(float), "BatchNormalization");
    if (!nd->u.aff.scale || !nd->u.aff.shift)
        return ps->ctx->status;
    for (size_t c = 0; c < C; c++) {
        double v = (double)m->g.values[var].f[c] + (double)eps;
        double s;
        if (!(v > 0.0) || !isfinite(v))
            return node_error(ps, CNP_ERR_FORMAT, "variance %g + epsilon %g of channel %zu is "
                              "not positive", (double)m->g.values[var].f[c], (double)eps, c);
        s = (double)m->g.values[sc].f[c] / sqrt(v);
        nd->u.aff.scale[c] = (float)s;
        nd->u.aff.shift[c] =
            (float)((double)m->g.values[bi].f[c] - (double)m->g.values[mu].f[c] * s);
    }
    if (act_output(ps, nd))
        return ps->ctx->status;
    return define_unused_outputs(ps, 1);
}

static cnp_status lower_add(parser *ps, const lowering *e)
{
    (void)e;
    cnp_model *m = ps->m;
    int a, b;
    cnp_node *nd;
    if (input_of(ps, 0, &a) || input_of(ps, 1, &b))
        return ps->ctx->status;
    if (a < 0 || b < 0)
        return node_error(ps, CNP_ERR_FORMAT, "Add needs two inputs");
    if (is_act(m, a) && is_act(m, b)) {
        if (!(nd = new_node(ps, CNP_OP_ADD, "Add", 2)))
            return ps->ctx->status;
        nd->in[0] = a;
        nd->in[1] = b;
        m->g.n_add_total++;
        return act_output(ps, nd);
    }
    if (!is_act(m, a) && is_act(m, b)) {
        int t = a;
        a = b;
        b = t;
    }
    if (!is_act(m, a) || m->g.values[b].kind != CNP_VAL_FCONST)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "Add is supported between activations or of "
                          "a float constant to an activation");
    if (m->g.values[b].count < 1 || m->g.values[b].count > CNP_ONNX_MAX_DIM)
        return node_error(ps, CNP_ERR_SHAPE, "the constant '%s' has %zu values",
                          m->g.values[b].name, m->g.values[b].count);
    if (!(nd = new_node(ps, CNP_OP_AFFINE, "Add", 2)))
        return ps->ctx->status;
    nd->in[0] = a;
    nd->in[1] = b; /* kept for the broadcast check of the shape pass */
    nd->u.aff.F = (int)m->g.values[b].count;
    nd->u.aff.shift = m->g.values[b].f;
    nd->u.aff.scale = cnp_arena_alloc(ps->ctx, &m->g.arena, m->g.values[b].count, sizeof(float),
                                      "Add");
    if (!nd->u.aff.scale)
        return ps->ctx->status;
    for (size_t i = 0; i < m->g.values[b].count; i++)
        nd->u.aff.scale[i] = 1.0f;
    return act_output(ps, nd);
}

/* Gemm (transA = 0) and MatMul by a constant: weights to (M, K). */
static cnp_status lower_linear(parser *ps, const lowering *e)
{
    const int gemm = e->arg; /* Gemm (1) or MatMul (0) */
    cnp_model *m = ps->m;
    int a, bw, bc;
    int64_t trans_a = 0, trans_b = 0;
    float alpha = 1.0f, beta = 1.0f;
    const cnp_value *B;
    size_t K, M;
    cnp_node *nd;
    cnp_linear_op *l;

    if (input_of(ps, 0, &a) || input_of(ps, 1, &bw) || input_of(ps, 2, &bc))
        return ps->ctx->status;
    if (need_act(ps, a, "the input"))
        return ps->ctx->status;
    if (bw >= 0 && is_act(m, bw))
        return node_error(ps, CNP_ERR_UNSUPPORTED, "a product of two activations is not "
                          "supported (the second operand must be a weight)");
    if (need_fconst(ps, bw, "the weight", 2, 0))
        return ps->ctx->status;
    if (gemm && (attr_int(ps, "transA", 0, 0, 1, &trans_a) ||
                 attr_int(ps, "transB", 0, 0, 1, &trans_b) || attr_float(ps, "alpha", 1, &alpha) ||
                 attr_float(ps, "beta", 1, &beta)))
        return ps->ctx->status;
    if (trans_a)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "transA = 1 is not supported");
    B = &m->g.values[bw];
    K = (size_t)(trans_b ? B->dims[1] : B->dims[0]);
    M = (size_t)(trans_b ? B->dims[0] : B->dims[1]);
    if (K < 1 || M < 1 || K > CNP_ONNX_MAX_DIM || M > CNP_ONNX_MAX_DIM)
        return node_error(ps, CNP_ERR_SHAPE, "the weight '%s' has unusable dimensions", B->name);
    if (!gemm && bc >= 0)
        return node_error(ps, CNP_ERR_FORMAT, "MatMul takes two inputs");
    if (bc >= 0) {
        if (m->g.values[bc].kind != CNP_VAL_FCONST)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "the bias must be a float32 initializer");
        if (m->g.values[bc].count != M && m->g.values[bc].count != 1)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "the bias '%s' has %zu values; canopy "
                              "handles one per output (%zu) or one for all",
                              m->g.values[bc].name, m->g.values[bc].count, M);
    }
    if (!(nd = new_node(ps, CNP_OP_LINEAR, gemm ? "Gemm" : "MatMul", 1)))
        return ps->ctx->status;
    nd->in[0] = a;
    l = &nd->u.lin;
    l->K = (int)K;
    l->M = (int)M;
    l->w = cnp_arena_alloc(ps->ctx, &m->g.arena, K * M, sizeof(float), "linear weights");
    if (!l->w)
        return ps->ctx->status;
    for (size_t i = 0; i < M; i++)
        for (size_t k = 0; k < K; k++)
            l->w[i * K + k] = alpha * (trans_b ? B->f[i * K + k] : B->f[k * M + i]);
    if (bc >= 0 && beta != 0.0f) {
        const cnp_value *Cv = &m->g.values[bc];
        l->bias = cnp_arena_alloc(ps->ctx, &m->g.arena, M, sizeof(float), "linear bias");
        if (!l->bias)
            return ps->ctx->status;
        for (size_t i = 0; i < M; i++)
            l->bias[i] = beta * Cv->f[Cv->count == 1 ? 0 : i];
    }
    return act_output(ps, nd);
}

static cnp_status lower_concat(parser *ps, const lowering *e)
{
    (void)e;
    cnp_model *m = ps->m;
    int64_t axis;
    int n = (int)ps->node->n_input, acts = 0, ints = 0;
    cnp_node *nd;

    if (n < 1 || n > 4096)
        return node_error(ps, CNP_ERR_FORMAT, "Concat has %d inputs", n);
    if (attr_int(ps, "axis", 0, -CNP_MAX_RANK, CNP_MAX_RANK - 1, &axis))
        return ps->ctx->status;
    if (!attr_find(ps->node, "axis"))
        return node_error(ps, CNP_ERR_FORMAT, "the axis attribute is missing");
    if (!(nd = new_node(ps, CNP_OP_CONCAT, "Concat", n)))
        return ps->ctx->status;
    for (int i = 0; i < n; i++) {
        if (input_of(ps, (size_t)i, &nd->in[i]))
            return ps->ctx->status;
        if (nd->in[i] < 0)
            return node_error(ps, CNP_ERR_FORMAT, "input %d is empty", i);
        acts += is_act(m, nd->in[i]);
        ints += is_int(m, nd->in[i]);
    }
    nd->u.ax.axis = (int)axis;
    if (acts == n)
        return act_output(ps, nd);
    if (ints == n) {
        nd->op = CNP_OP_ICONCAT;
        return define_output(ps, 0, CNP_VAL_SHAPE, m->g.n_nodes - 1, &nd->out);
    }
    return node_error(ps, CNP_ERR_UNSUPPORTED, "Concat of activations with constants or shapes "
                      "is not supported");
}

static cnp_status lower_flatten(parser *ps, const lowering *e)
{
    const int reshape = e->arg; /* Reshape (1) or Flatten (0) */
    int x, shape;
    int64_t axis, allowzero;
    cnp_node *nd;
    if (input_of(ps, 0, &x) || need_act(ps, x, "the input"))
        return ps->ctx->status;
    if (!(nd = new_node(ps, CNP_OP_FLATTEN, reshape ? "Reshape" : "Flatten", 2)))
        return ps->ctx->status;
    nd->in[0] = x;
    if (reshape) {
        if (input_of(ps, 1, &shape))
            return ps->ctx->status;
        if (!is_int(ps->m, shape))
            return node_error(ps, CNP_ERR_UNSUPPORTED, "the target shape must be computed from "
                              "constants and shapes");
        if (attr_int(ps, "allowzero", 0, 0, 1, &allowzero))
            return ps->ctx->status;
        if (allowzero)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "allowzero = 1 is not supported");
        nd->in[1] = shape;
        nd->u.ax.axis = -100; /* Reshape: target from in[1] */
    } else {
        if (attr_int(ps, "axis", 1, -CNP_MAX_RANK, CNP_MAX_RANK, &axis))
            return ps->ctx->status;
        nd->u.ax.axis = (int)axis;
    }
    return act_output(ps, nd);
}

/* Shape, Gather, Unsqueeze, Squeeze on shape tensors. */
static cnp_status lower_shape_op(parser *ps, const lowering *e)
{
    const cnp_op op = e->kind;
    const char *onnx_op = e->op;
    cnp_model *m = ps->m;
    int x, idx;
    int64_t v;
    cnp_node *nd;

    if (input_of(ps, 0, &x))
        return ps->ctx->status;
    if (x < 0)
        return node_error(ps, CNP_ERR_FORMAT, "the input is missing");
    if (op == CNP_OP_SHAPE) {
        if (!is_act(m, x))
            return node_error(ps, CNP_ERR_UNSUPPORTED, "Shape of a constant or shape tensor is "
                              "not supported");
    } else if (!is_int(m, x)) {
        return node_error(ps, CNP_ERR_UNSUPPORTED, "%s on activations is not supported (only on "
                          "shape tensors, as exports of Flatten/Reshape use it)", onnx_op);
    }
    if (!(nd = new_node(ps, op, onnx_op, 2)))
        return ps->ctx->status;
    nd->in[0] = x;
    switch (op) {
    case CNP_OP_SHAPE:
        if (attr_int(ps, "start", 0, -CNP_MAX_RANK, CNP_MAX_RANK, &v))
            return ps->ctx->status;
        nd->u.ax.start = v;
        if (attr_find(ps->node, "end")) {
            if (attr_int(ps, "end", 0, -CNP_MAX_RANK, CNP_MAX_RANK, &v))
                return ps->ctx->status;
            nd->u.ax.end = v;
            nd->u.ax.has_end = 1;
        }
        break;
    case CNP_OP_GATHER:
        if (input_of(ps, 1, &idx))
            return ps->ctx->status;
        if (idx < 0 || m->g.values[idx].kind != CNP_VAL_ICONST || m->g.values[idx].sym_rank < 0)
            return node_error(ps, CNP_ERR_UNSUPPORTED, "the indices must be a constant scalar or "
                              "short list");
        nd->in[1] = idx;
        if (attr_int(ps, "axis", 0, 0, 0, &v))
            return ps->ctx->status;
        break;
    default: /* Unsqueeze, Squeeze */
        if (axes_get(ps, "axes", 1, &nd->u.ax))
            return ps->ctx->status;
        break;
    }
    return define_output(ps, 0, CNP_VAL_SHAPE, m->g.n_nodes - 1, &nd->out);
}

/* Constant: the value becomes a constant tensor, no node. */
static cnp_status lower_constant(parser *ps, const lowering *e)
{
    (void)e;
    cnp_model *m = ps->m;
    const Onnx__NodeProto *n = ps->node;
    const Onnx__AttributeProto *a;
    int v;
    cnp_value *val;

    if (n->n_attribute != 1 || !n->attribute[0]->name)
        return node_error(ps, CNP_ERR_FORMAT, "Constant needs exactly one value attribute");
    a = n->attribute[0];
    if (define_output(ps, 0, CNP_VAL_UNDEF, -1, &v))
        return ps->ctx->status;
    val = &m->g.values[v];
    if (!strcmp(a->name, "value")) {
        char what[320], nb[300];
        if (!a->t)
            return node_error(ps, CNP_ERR_FORMAT, "the value tensor is missing");
        snprintf(what, sizeof what, "the value of %s", cnp_onnx_node_name(ps, nb, sizeof nb));
        return cnp_onnx_load_tensor(ps, a->t, val, what);
    }
    if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_floats")) {
        int one = a->name[11] == '\0';
        size_t cnt = one ? 1 : a->n_floats;
        val->f = cnp_arena_alloc(ps->ctx, &m->g.arena, cnt ? cnt : 1, sizeof(float), "a constant");
        if (!val->f)
            return ps->ctx->status;
        for (size_t i = 0; i < cnt; i++)
            val->f[i] = one ? a->f : a->floats[i];
        val->kind = CNP_VAL_FCONST;
        val->rank = one ? 0 : 1;
        val->dims[0] = (int64_t)cnt;
        val->count = cnt;
        return CNP_OK;
    }
    if (!strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints")) {
        int one = a->name[9] == '\0';
        size_t cnt = one ? 1 : a->n_ints;
        val->i = cnp_arena_alloc(ps->ctx, &m->g.arena, cnt ? cnt : 1, sizeof(int64_t),
                                 "a constant");
        if (!val->i)
            return ps->ctx->status;
        for (size_t i = 0; i < cnt; i++)
            val->i[i] = one ? a->i : a->ints[i];
        val->kind = CNP_VAL_ICONST;
        val->rank = one ? 0 : 1;
        val->dims[0] = (int64_t)cnt;
        val->count = cnt;
        if (cnt <= CNP_MAX_RANK) {
            val->sym_rank = val->rank;
            val->n_sym = (int)cnt;
            for (size_t i = 0; i < cnt; i++)
                val->sym[i].v = val->i[i];
        }
        return CNP_OK;
    }
    return node_error(ps, CNP_ERR_UNSUPPORTED, "Constant attribute %s is not supported", a->name);
}

/* Transpose of a 2-D float constant (weights of a Linear without bias in an
 * export without constant folding): folded at load. */
static cnp_status lower_transpose(parser *ps, const lowering *e)
{
    (void)e;
    cnp_model *m = ps->m;
    const Onnx__AttributeProto *perm = attr_find(ps->node, "perm");
    const cnp_value *x;
    cnp_value *y;
    int xv, v, swap = 1;
    size_t R, C;

    if (input_of(ps, 0, &xv))
        return ps->ctx->status;
    if (xv < 0 || m->g.values[xv].kind != CNP_VAL_FCONST || m->g.values[xv].rank != 2)
        return node_error(ps, CNP_ERR_UNSUPPORTED, "Transpose is supported on 2-D constant "
                          "weights only (canopy runs ResNet-family classifiers)");
    if (perm) {
        if (perm->n_ints != 2 || !((perm->ints[0] == 1 && perm->ints[1] == 0) ||
                                   (perm->ints[0] == 0 && perm->ints[1] == 1)))
            return node_error(ps, CNP_ERR_FORMAT, "perm is not a permutation of (0, 1)");
        swap = perm->ints[0] == 1;
    }
    if (define_output(ps, 0, CNP_VAL_FCONST, -1, &v))
        return ps->ctx->status;
    x = &m->g.values[xv];
    y = &m->g.values[v];
    R = (size_t)x->dims[0];
    C = (size_t)x->dims[1];
    y->rank = 2;
    y->dims[0] = swap ? x->dims[1] : x->dims[0];
    y->dims[1] = swap ? x->dims[0] : x->dims[1];
    y->count = x->count;
    y->f = cnp_arena_alloc(ps->ctx, &m->g.arena, x->count, sizeof *y->f, "a transposed constant");
    if (!y->f)
        return ps->ctx->status;
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++)
            y->f[swap ? j * R + i : i * C + j] = x->f[i * C + j];
    return CNP_OK;
}

static cnp_status count_op(parser *ps, const char *op)
{
    cnp_model *m = ps->m;
    for (int i = 0; i < m->g.n_ops; i++)
        if (!strcmp(m->g.ops[i].name, op)) {
            m->g.ops[i].count++;
            return CNP_OK;
        }
    m->g.ops[m->g.n_ops].name = cnp_arena_strdup(ps->ctx, &m->g.arena, op);
    if (!m->g.ops[m->g.n_ops].name)
        return CNP_ERR_NOMEM;
    m->g.ops[m->g.n_ops++].count = 1;
    return CNP_OK;
}

/* Relu, Sigmoid: elementwise on an activation. */
static cnp_status lower_unary(parser *ps, const lowering *e)
{
    int x;
    cnp_node *nd;
    if (input_of(ps, 0, &x) || need_act(ps, x, "the input"))
        return ps->ctx->status;
    if (!(nd = new_node(ps, e->kind, e->op, 1)))
        return ps->ctx->status;
    nd->in[0] = x;
    return act_output(ps, nd);
}

/* Identity, Dropout (inference): the output is another name of the input. */
static cnp_status lower_alias(parser *ps, const lowering *e)
{
    int x;
    (void)e;
    if (input_of(ps, 0, &x))
        return ps->ctx->status;
    if (x < 0)
        return node_error(ps, CNP_ERR_FORMAT, "the input is missing");
    ps->m->g.values[x].n_refs--; /* the alias's readers count instead */
    return alias_output(ps, x);
}

/* The operators canopy runs, in the order the error message lists them. */
static const lowering LOWERINGS[] = {
    {"Conv", lower_conv, CNP_OP_CONV, 0, 0},
    {"BatchNormalization", lower_batchnorm, CNP_OP_AFFINE, 0, 0},
    {"Relu", lower_unary, CNP_OP_RELU, 0, 0},
    {"MaxPool", lower_pool, CNP_OP_MAXPOOL, 0, 0},
    {"AveragePool", lower_pool, CNP_OP_AVGPOOL, 0, 0},
    {"GlobalAveragePool", lower_global_pool, CNP_OP_GAVGPOOL, 0, 0},
    {"GlobalMaxPool", lower_global_pool, CNP_OP_GMAXPOOL, 0, 0},
    {"ReduceMean", lower_global_pool, CNP_OP_GAVGPOOL, 1, 0},
    {"ReduceMax", lower_global_pool, CNP_OP_GMAXPOOL, 1, 0},
    {"Add", lower_add, CNP_OP_ADD, 0, 0},
    {"Concat", lower_concat, CNP_OP_CONCAT, 0, 0},
    {"Flatten", lower_flatten, CNP_OP_FLATTEN, 0, 0},
    {"Reshape", lower_flatten, CNP_OP_FLATTEN, 1, 0},
    {"Gemm", lower_linear, CNP_OP_LINEAR, 1, 0},
    {"MatMul", lower_linear, CNP_OP_LINEAR, 0, 0},
    {"Sigmoid", lower_unary, CNP_OP_SIGMOID, 0, 0},
    {"Dropout", lower_alias, CNP_OP_FLATTEN, 0, 0},
    {"Identity", lower_alias, CNP_OP_FLATTEN, 0, 0},
    {"Constant", lower_constant, CNP_OP_SHAPE, 0, 0},
    {"Shape", lower_shape_op, CNP_OP_SHAPE, 0, 0},
    {"Gather", lower_shape_op, CNP_OP_GATHER, 0, 0},
    {"Unsqueeze", lower_shape_op, CNP_OP_UNSQUEEZE, 0, 0},
    {"Squeeze", lower_shape_op, CNP_OP_SQUEEZE, 0, 0},
    {"Transpose", lower_transpose, CNP_OP_SHAPE, 0, 1},
};
#define N_LOWERINGS (sizeof LOWERINGS / sizeof LOWERINGS[0])

/* "Conv, BatchNormalization, ..., Squeeze (Transpose of constant weights)"
 * from the table, into buf. Returns buf. */
static const char *supported_ops(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int aside = 0; aside <= 1; aside++)
        for (size_t i = 0; i < N_LOWERINGS; i++) {
            const lowering *e = &LOWERINGS[i];
            int w;
            if (e->aside != aside)
                continue;
            w = snprintf(buf + len, size - len, "%s%s%s", !aside && len ? ", " : "",
                         aside ? " (" : "", e->op);
            if (w < 0 || (size_t)w >= size - len)
                return buf;
            len += (size_t)w;
            if (aside)
                len += (size_t)snprintf(buf + len, size - len, " of constant weights)");
            if (len >= size)
                return buf;
        }
    return buf;
}

cnp_status cnp_onnx_lower_node(cnp_onnx_parser *ps)
{
    const Onnx__NodeProto *n = ps->node;
    const char *op = n->op_type;
    char supported[512];

    if (!op || !op[0])
        return node_error(ps, CNP_ERR_FORMAT, "the node has no operator type");
    if (count_op(ps, op))
        return ps->ctx->status;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return node_error(ps, CNP_ERR_UNSUPPORTED, "operator %s of domain '%s' is not supported "
                          "(canopy runs standard ONNX operators: %s)", op, n->domain,
                          supported_ops(supported, sizeof supported));
    for (size_t i = 0; i < N_LOWERINGS; i++)
        if (!strcmp(op, LOWERINGS[i].op))
            return LOWERINGS[i].fn(ps, &LOWERINGS[i]);
    return node_error(ps, CNP_ERR_UNSUPPORTED, "operator %s is not supported; canopy runs "
                      "ResNet-family classifiers made of %s", op,
                      supported_ops(supported, sizeof supported));
}
