/* graph.c -- the model's arena, load-time fusion and the shape pass.
 *
 * Fusion (once, at load):
 *   Conv -> BatchNormalization      BN folded into the weights and bias
 *   Conv -> Add(other) [-> Relu]    the other operand becomes the conv's
 *                                   residual (cnp_conv_run adds it)
 *   Conv/Gemm/Add -> Relu           activation of the producer
 *   BatchNormalization -> Gemm      BN (on features) folded into the weights
 *   Gemm/MatMul -> Add(constant)    the constant becomes the bias
 *   ... -> Sigmoid (graph output)   removed; the executor applies the
 *                                   sigmoid to every model's logits
 * then nodes whose results are not needed are dropped.
 *
 * The shape pass walks the live nodes at a given input size: activation
 * dimensions, shape arithmetic (Shape/Gather/Unsqueeze/Concat with the batch
 * as a symbol), every check that depends on sizes, and GFLOPs per chip.
 */
#include "engine/graph.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Arena                                                                 */

struct cnp_arena_block {
    cnp_arena_block *next;
    size_t size, used;
    unsigned char *data;        /* from cnp_aligned_alloc */
};

#define ARENA_MIN_BLOCK ((size_t)64 << 10)

/* cnp_aligned_alloc: large blocks are fresh zero pages advised for huge
 * pages, touched only when the weights are copied in. */
static cnp_arena_block *block_new(cnp_ctx *ctx, size_t size)
{
    cnp_arena_block *b = cnp_calloc(ctx, 1, sizeof *b, "the model's memory");
    if (!b)
        return NULL;
    b->data = cnp_aligned_alloc(ctx, size, 1, "the model's memory");
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->size = size;
    return b;
}

cnp_status cnp_arena_reserve(cnp_ctx *ctx, cnp_arena *a, size_t bytes)
{
    cnp_arena_block *b;
    if (bytes == 0)
        return CNP_OK;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0)
        return cnp_error(ctx, CNP_ERR_NOMEM, "the model is too large");
    if (!(b = block_new(ctx, bytes)))
        return CNP_ERR_NOMEM;
    b->next = a->head;
    a->head = b;
    a->total += bytes;
    return CNP_OK;
}

void *cnp_arena_alloc(cnp_ctx *ctx, cnp_arena *a, size_t n, size_t size, const char *what)
{
    size_t bytes;
    void *p;
    if (!cnp_mul_size(n ? n : 1, size ? size : 1, &bytes) || bytes > SIZE_MAX - 64) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory allocating %s (%zu x %zu bytes)", what, n,
                  size);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    if (!a->head || a->head->size - a->head->used < bytes) {
        /* a fresh block; the reserved slab, if any, stays at the head only
         * while allocations fit into it */
        cnp_arena_block *b = block_new(ctx, bytes > ARENA_MIN_BLOCK ? bytes : ARENA_MIN_BLOCK);
        if (!b) {
            cnp_error(ctx, CNP_ERR_NOMEM, "out of memory allocating %s (%zu bytes)", what, bytes);
            return NULL;
        }
        if (a->head && bytes > ARENA_MIN_BLOCK) {
            /* keep allocating small things from the current head */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
        a->total += b->size;
        b->used = bytes;
        return b->data;
    }
    /* blocks are zeroed when made and each byte is handed out once */
    p = a->head->data + a->head->used;
    a->head->used += bytes;
    return p;
}

char *cnp_arena_strdup(cnp_ctx *ctx, cnp_arena *a, const char *s)
{
    size_t len = strlen(s ? s : "");
    char *d = cnp_arena_alloc(ctx, a, len + 1, 1, "a string");
    if (d && len)
        memcpy(d, s, len);
    return d;
}

void cnp_arena_release(cnp_arena *a)
{
    cnp_arena_block *b = a->head;
    while (b) {
        cnp_arena_block *next = b->next;
        cnp_aligned_free(b->data);
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ------------------------------------------------------------------ */
/* Messages                                                              */

const char *cnp_node_desc(const cnp_node *nd, char *buf, size_t size)
{
    if (nd->name[0] == '#')
        snprintf(buf, size, "node %s (%s)", nd->name, nd->onnx_op);
    else
        snprintf(buf, size, "node '%s' (%s)", nd->name, nd->onnx_op);
    return buf;
}

static cnp_status shape_error(cnp_ctx *ctx, const cnp_model *m, const cnp_node *nd,
                              cnp_status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static cnp_status shape_error(cnp_ctx *ctx, const cnp_model *m, const cnp_node *nd,
                              cnp_status st, const char *fmt, ...)
{
    char what[600], nb[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cnp_error(ctx, st, "%s: %s: %s", m->g.path, cnp_node_desc(nd, nb, sizeof nb), what);
}

/* ------------------------------------------------------------------ */
/* Fusion                                                                */

static void count_uses(cnp_model *m)
{
    for (int v = 0; v < m->g.n_values; v++)
        m->g.values[v].n_uses = 0;
    for (int i = 0; i < m->g.n_nodes; i++) {
        const cnp_node *nd = &m->g.nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0)
                m->g.values[nd->in[k]].n_uses++;
    }
    if (m->g.output >= 0)
        m->g.values[m->g.output].n_uses++;
}

/* The live node producing v, when v is read only once (by the caller's
 * node) and is not the graph output; else NULL. */
static cnp_node *sole_producer(cnp_model *m, int v, cnp_op op)
{
    const cnp_value *val;
    cnp_node *p;
    if (v < 0)
        return NULL;
    val = &m->g.values[v];
    if (val->kind != CNP_VAL_ACT || val->producer < 0 || val->n_uses != 1 || v == m->g.output)
        return NULL;
    p = &m->g.nodes[val->producer];
    return !p->dead && p->op == op && p->out == v ? p : NULL;
}

/* Moves node p's output to value v (the output of the node fused away). */
static void take_output(cnp_model *m, cnp_node *p, int v)
{
    m->g.values[v].producer = (int)(p - m->g.nodes);
    p->out = v;
}

static cnp_status fold_bn_conv(cnp_ctx *ctx, cnp_model *m, cnp_node *c, const cnp_node *bn)
{
    cnp_conv_op *cv = &c->u.conv;
    const cnp_affine_op *a = &bn->u.aff;
    size_t crs = (size_t)cv->C * cv->R * cv->S;
    float *w = cv->w, *b;

    if (a->F != cv->K)
        return CNP_OK; /* the shape pass reports the mismatch */
    if (!cv->w_own && m->g.values[cv->wval].n_refs == 1) {
        cv->w_own = 1; /* read by this conv only: fold in place */
    } else if (!cv->w_own) {
        w = cnp_arena_alloc(ctx, &m->g.arena, (size_t)cv->K * crs, sizeof *w, "folded weights");
        if (!w)
            return CNP_ERR_NOMEM;
        memcpy(w, cv->w, (size_t)cv->K * crs * sizeof *w);
        cv->w = w;
        cv->w_own = 1;
    }
    b = cnp_arena_alloc(ctx, &m->g.arena, (size_t)cv->K, sizeof *b, "folded bias");
    if (!b)
        return CNP_ERR_NOMEM;
    for (int k = 0; k < cv->K; k++) {
        float *wk = w + (size_t)k * crs;
        for (size_t j = 0; j < crs; j++)
            wk[j] *= a->scale[k];
        b[k] = (cv->bias ? cv->bias[k] : 0.0f) * a->scale[k] + a->shift[k];
    }
    cv->bias = b;
    cv->n_bn++;
    m->g.n_fused_bn++;
    return CNP_OK;
}

static cnp_status fold_bn_linear(cnp_ctx *ctx, cnp_model *m, cnp_node *g, const cnp_node *bn)
{
    cnp_linear_op *l = &g->u.lin;
    const cnp_affine_op *a = &bn->u.aff;
    float *b;
    if (a->F != l->K)
        return CNP_OK;
    b = cnp_arena_alloc(ctx, &m->g.arena, (size_t)l->M, sizeof *b, "folded bias");
    if (!b)
        return CNP_ERR_NOMEM;
    for (int i = 0; i < l->M; i++) {
        float *wi = l->w + (size_t)i * l->K;
        double acc = l->bias ? l->bias[i] : 0.0;
        for (int k = 0; k < l->K; k++) {
            acc += (double)wi[k] * a->shift[k];
            wi[k] *= a->scale[k];
        }
        b[i] = (float)acc;
    }
    l->bias = b;
    l->n_bn++;
    m->g.n_fused_bn++;
    return CNP_OK;
}

/* Add(linear output, constant (M) or (1, M) or scalar) -> bias. */
static int bias_fits(const cnp_value *c, int M)
{
    if (c->count == 1)
        return 1;
    if (c->count != (size_t)M)
        return 0;
    return c->rank == 1 || (c->rank == 2 && c->dims[0] == 1);
}

static cnp_status fold_add_linear(cnp_ctx *ctx, cnp_model *m, cnp_node *g, const cnp_value *c)
{
    cnp_linear_op *l = &g->u.lin;
    float *b = cnp_arena_alloc(ctx, &m->g.arena, (size_t)l->M, sizeof *b, "bias");
    if (!b)
        return CNP_ERR_NOMEM;
    for (int i = 0; i < l->M; i++)
        b[i] = (l->bias ? l->bias[i] : 0.0f) + c->f[c->count == 1 ? 0 : i];
    l->bias = b;
    return CNP_OK;
}

static int is_bn(const cnp_node *nd)
{
    return nd->op == CNP_OP_AFFINE && !strcmp(nd->onnx_op, "BatchNormalization");
}

/* Add(+Relu) of a convolution's output: fused into the convolution that
 * runs last, so that the other operand is ready. */
static void fuse_add(cnp_model *m, cnp_node *nd)
{
    cnp_node *best = NULL, *p;
    int other = -1;
    for (int k = 0; k < 2; k++) {
        int o = nd->in[1 - k], op_prod;
        p = sole_producer(m, nd->in[k], CNP_OP_CONV);
        if (!p || p->u.conv.residual >= 0 || p->act != CNP_ACT_NONE || nd->in[0] == nd->in[1])
            continue;
        op_prod = m->g.values[o].producer;
        if (op_prod >= (int)(p - m->g.nodes))
            continue;
        if (!best || p > best) {
            best = p;
            other = o;
        }
    }
    if (best) {
        best->u.conv.residual = other;
        best->in[1] = other;
        take_output(m, best, nd->out);
        nd->dead = 1;
        m->g.n_fused_add++;
    }
}

/* Folds node nd into its producer where it can: BatchNormalization into a
 * Conv, Add into a Conv, Relu into Conv/Linear/Add, BatchNorm1d into the
 * following Linear, a constant Add into a Linear's bias. */
static cnp_status fuse_node(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    cnp_node *p;
    if (is_bn(nd) && (p = sole_producer(m, nd->in[0], CNP_OP_CONV)) &&
        p->u.conv.residual < 0 && p->act == CNP_ACT_NONE && nd->u.aff.F == p->u.conv.K) {
        if (fold_bn_conv(ctx, m, p, nd) != CNP_OK)
            return ctx->status;
        take_output(m, p, nd->out);
        nd->dead = 1;
    } else if (nd->op == CNP_OP_ADD) {
        fuse_add(m, nd);
    } else if (nd->op == CNP_OP_RELU) {
        int x = nd->in[0];
        p = sole_producer(m, x, CNP_OP_CONV);
        if (!p)
            p = sole_producer(m, x, CNP_OP_LINEAR);
        if (!p)
            p = sole_producer(m, x, CNP_OP_ADD);
        if (p && p->act == CNP_ACT_NONE) {
            p->act = CNP_ACT_RELU;
            take_output(m, p, nd->out);
            nd->dead = 1;
        }
    } else if (nd->op == CNP_OP_LINEAR) {
        p = sole_producer(m, nd->in[0], CNP_OP_AFFINE);
        if (p && is_bn(p) && p->u.aff.F == nd->u.lin.K) {
            if (fold_bn_linear(ctx, m, nd, p) != CNP_OK)
                return ctx->status;
            nd->in[0] = p->in[0];
            p->dead = 1;
            count_uses(m);
        }
    } else if (nd->op == CNP_OP_AFFINE && !is_bn(nd)) {
        p = sole_producer(m, nd->in[0], CNP_OP_LINEAR);
        if (p && p->act == CNP_ACT_NONE && bias_fits(&m->g.values[nd->in[1]], p->u.lin.M)) {
            if (fold_add_linear(ctx, m, p, &m->g.values[nd->in[1]]) != CNP_OK)
                return ctx->status;
            take_output(m, p, nd->out);
            nd->dead = 1;
        }
    }
    return CNP_OK;
}

/* The live node that produces the graph's output, or NULL. */
static cnp_node *output_producer(cnp_model *m)
{
    const int pr = m->g.values[m->g.output].producer;
    return pr >= 0 && !m->g.nodes[pr].dead ? &m->g.nodes[pr] : NULL;
}

/* Marks dead every node the output does not need. */
static cnp_status prune(cnp_ctx *ctx, cnp_model *m)
{
    unsigned char *needed = cnp_calloc(ctx, (size_t)m->g.n_values, 1, "liveness");
    if (!needed)
        return CNP_ERR_NOMEM;
    needed[m->g.output] = 1;
    for (int i = m->g.n_nodes - 1; i >= 0; i--) {
        cnp_node *nd = &m->g.nodes[i];
        if (nd->dead)
            continue;
        if (nd->out < 0 || !needed[nd->out]) {
            nd->dead = 1;
            continue;
        }
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0)
                needed[nd->in[k]] = 1;
    }
    free(needed);
    count_uses(m);
    return CNP_OK;
}

/* Convolutions, dense layers, parameters, pooling kinds of the live graph. */
static void count_stats(cnp_model *m)
{
    m->g.n_conv = m->g.n_linear = 0;
    m->g.n_params = 0;
    for (int i = 0; i < m->g.n_nodes; i++) {
        const cnp_node *nd = &m->g.nodes[i];
        if (nd->dead)
            continue;
        if (nd->op == CNP_OP_CONV) {
            const cnp_conv_op *c = &nd->u.conv;
            m->g.n_conv++;
            m->g.n_params += (size_t)c->K * c->C * c->R * c->S + (c->bias ? (size_t)c->K : 0);
        } else if (nd->op == CNP_OP_LINEAR) {
            m->g.n_linear++;
            m->g.n_params += (size_t)nd->u.lin.M * nd->u.lin.K + (nd->u.lin.bias ? nd->u.lin.M : 0);
        } else if (nd->op == CNP_OP_AFFINE) {
            m->g.n_params += 2 * (size_t)nd->u.aff.F;
        }
        if (nd->op == CNP_OP_GMAXPOOL)
            m->g.has_gmp = 1;
        if (nd->op == CNP_OP_GAVGPOOL)
            m->g.has_gap = 1;
        if (nd->op == CNP_OP_CONCAT)
            m->g.has_concat = 1;
    }
}

cnp_status cnp_graph_fuse(cnp_ctx *ctx, cnp_model *m)
{
    cnp_node *p;

    count_uses(m);
    for (int i = 0; i < m->g.n_nodes; i++)
        if (!m->g.nodes[i].dead && fuse_node(ctx, m, &m->g.nodes[i]) != CNP_OK)
            return ctx->status;

    /* a final Sigmoid: the executor applies it to the logits */
    p = output_producer(m);
    if (p && p->op == CNP_OP_SIGMOID) {
        m->g.ends_in_sigmoid = 1;
        count_uses(m);
        if (m->g.values[p->in[0]].n_uses == 1 && m->g.values[p->in[0]].kind == CNP_VAL_ACT &&
            p->in[0] != m->g.input) {
            m->g.output = p->in[0];
            p->dead = 1;
        }
    }
    if (m->g.output == m->g.input)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: the model computes nothing from its input",
                         m->g.path);
    p = output_producer(m);
    m->g.apply_sigmoid = !(p && p->op == CNP_OP_SIGMOID);
    if (prune(ctx, m) != CNP_OK)
        return ctx->status;
    count_stats(m);
    return CNP_OK;
}

/* ------------------------------------------------------------------ */
/* Shape pass                                                            */

static int norm_axis(int64_t a, int rank)
{
    if (a < 0)
        a += rank;
    return a >= 0 && a < rank ? (int)a : -1;
}

/* Activation dims as a list [N, C, H, W] or [N, F]. */
static int act_dims(const cnp_value *v, cnp_symint *d)
{
    memset(d, 0, 4 * sizeof *d);
    d[0].batch = 1;
    d[1].v = v->C;
    if (v->act_rank == 2)
        return 2;
    d[2].v = v->H;
    d[3].v = v->W;
    return 4;
}

static void set_act(cnp_value *v, cnp_layout layout, int rank, int C, int H, int W)
{
    v->layout = layout;
    v->act_rank = rank;
    v->C = C;
    v->H = H;
    v->W = W;
}

static int same_shape(const cnp_value *a, const cnp_value *b)
{
    return a->layout == b->layout && a->act_rank == b->act_rank && a->C == b->C && a->H == b->H &&
           a->W == b->W;
}

static const char *dims_str(const cnp_value *v, char *buf, size_t size)
{
    if (v->act_rank == 2)
        snprintf(buf, size, "(N, %d)", v->C);
    else
        snprintf(buf, size, "(N, %d, %d, %d)", v->C, v->H, v->W);
    return buf;
}

/* Pooling output size, PyTorch/ONNX rules (ceil_mode drops a window that
 * would start in the padding). 0 when the window does not fit. */
static int pool_out(int in, int pad0, int pad1, int k, int s, int ceil_mode)
{
    long eff = (long)in + pad0 + pad1 - k, o;
    if (eff < 0)
        return 0;
    o = ceil_mode ? (eff + s - 1) / s + 1 : eff / s + 1;
    if (ceil_mode && (o - 1) * s >= (long)in + pad0)
        o--;
    return o >= 1 && o <= INT_MAX ? (int)o : 0;
}

static cnp_status shape_conv(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    cnp_conv_op *c = &nd->u.conv;
    const cnp_value *x = &m->g.values[nd->in[0]];
    cnp_conv_shape *s = &c->shape;
    char db[96];

    if (x->layout != CNP_LAYOUT_CNHW || x->act_rank != 4)
        return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "a convolution on %s features after "
                           "pooling is not supported", dims_str(x, db, sizeof db));
    if (x->C != c->C) {
        if (nd->in[0] == m->g.input)
            return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "the model's input declares %d channels "
                               "but its first convolution expects %d; export the model again",
                               x->C, c->C);
        return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "the weights expect %d input channels, the "
                           "input has %d", c->C, x->C);
    }
    memset(s, 0, sizeof *s);
    s->N = 1;
    s->C = c->C;
    s->H = x->H;
    s->W = x->W;
    s->K = c->K;
    s->R = c->R;
    s->S = c->S;
    s->stride_h = c->stride_h;
    s->stride_w = c->stride_w;
    s->pad_t = c->pad_t;
    s->pad_l = c->pad_l;
    s->pad_b = c->pad_b;
    s->pad_r = c->pad_r;
    s->dil_h = c->dil_h;
    s->dil_w = c->dil_w;
    if (!cnp_conv_shape_finish(s))
        return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "its input of %dx%d pixels is too small for "
                           "the %dx%d kernel (model input %dx%d); use a larger input size",
                           x->H, x->W, c->R, c->S, m->g.values[m->g.input].H,
                           m->g.values[m->g.input].W);
    if (c->residual >= 0) {
        const cnp_value *r = &m->g.values[c->residual];
        if (r->layout != CNP_LAYOUT_CNHW || r->act_rank != 4 || r->C != c->K || r->H != s->P ||
            r->W != s->Q)
            return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "Add of %s and (N, %d, %d, %d): the "
                               "shapes differ", dims_str(r, db, sizeof db), c->K, s->P, s->Q);
    }
    set_act(&m->g.values[nd->out], CNP_LAYOUT_CNHW, 4, c->K, s->P, s->Q);
    m->g.gflops += 2e-9 * c->K * (double)c->C * c->R * c->S * s->P * (double)s->Q;
    return CNP_OK;
}

static cnp_status shape_pool(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    cnp_pool_op *p = &nd->u.pool;
    const cnp_value *x = &m->g.values[nd->in[0]];
    cnp_pool_shape *s = &p->shape;
    char db[96];

    if (x->layout != CNP_LAYOUT_CNHW || x->act_rank != 4)
        return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "pooling of %s features is not "
                           "supported", dims_str(x, db, sizeof db));
    memset(s, 0, sizeof *s);
    s->N = 1;
    s->C = x->C;
    s->H = x->H;
    s->W = x->W;
    s->R = p->R;
    s->S = p->S;
    s->stride_h = p->stride_h;
    s->stride_w = p->stride_w;
    s->pad_t = p->pad_t;
    s->pad_l = p->pad_l;
    s->pad_b = p->pad_b;
    s->pad_r = p->pad_r;
    s->count_include_pad = p->count_include_pad;
    s->P = pool_out(x->H, p->pad_t, p->pad_b, p->R, p->stride_h, p->ceil_mode);
    s->Q = pool_out(x->W, p->pad_l, p->pad_r, p->S, p->stride_w, p->ceil_mode);
    if (!s->P || !s->Q)
        return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "its input of %dx%d pixels is smaller than "
                           "the %dx%d window (model input %dx%d); use a larger input size",
                           x->H, x->W, p->R, p->S, m->g.values[m->g.input].H,
                           m->g.values[m->g.input].W);
    set_act(&m->g.values[nd->out], CNP_LAYOUT_CNHW, 4, x->C, s->P, s->Q);
    return CNP_OK;
}

static cnp_status shape_global(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    const cnp_value *x = &m->g.values[nd->in[0]];
    const cnp_axes_op *ax = &nd->u.ax;
    int seen[4] = {0, 0, 0, 0};
    char db[96];

    if (x->act_rank != 4)
        return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "global pooling of %s features is "
                           "not supported", dims_str(x, db, sizeof db));
    for (int i = 0; i < ax->n_axes; i++) {
        int a = norm_axis(ax->axes[i], 4);
        if (a < 0)
            return shape_error(ctx, m, nd, CNP_ERR_FORMAT, "axis %lld is out of range",
                               (long long)ax->axes[i]);
        seen[a]++;
    }
    if (!(ax->n_axes == 2 && seen[2] == 1 && seen[3] == 1))
        return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "only reductions over the two spatial "
                           "axes (2, 3) are supported");
    set_act(&m->g.values[nd->out], CNP_LAYOUT_ROWS, ax->keepdims ? 4 : 2, x->C, 1, 1);
    return CNP_OK;
}

static cnp_status shape_affine(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    const cnp_value *x = &m->g.values[nd->in[0]];
    int F = nd->u.aff.F;
    char db[96];

    if (F != 1 && F != x->C)
        return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "%d parameters for %s features", F,
                           dims_str(x, db, sizeof db));
    if (nd->in[1] >= 0 && F > 1) {
        /* Add of a constant: it must broadcast along the channel axis */
        const cnp_value *c = &m->g.values[nd->in[1]];
        int ok;
        if (x->act_rank == 2)
            ok = c->rank == 1 || (c->rank == 2 && c->dims[0] == 1);
        else
            ok = (c->rank == 3 && c->dims[1] == 1 && c->dims[2] == 1) ||
                 (c->rank == 4 && c->dims[0] == 1 && c->dims[2] == 1 && c->dims[3] == 1);
        if (!ok)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "the constant '%s' does not "
                               "broadcast per channel over %s", c->name,
                               dims_str(x, db, sizeof db));
    }
    set_act(&m->g.values[nd->out], x->layout, x->act_rank, x->C, x->H, x->W);
    return CNP_OK;
}

static cnp_status shape_concat(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    const cnp_value *x0 = &m->g.values[nd->in[0]];
    long C = 0;
    char db[96], db2[96];

    if (norm_axis(nd->u.ax.axis, x0->act_rank) != 1)
        return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "concatenation on axis %d (canopy "
                           "concatenates channels, axis 1)", nd->u.ax.axis);
    for (int k = 0; k < nd->n_in; k++) {
        const cnp_value *x = &m->g.values[nd->in[k]];
        if (x->layout != x0->layout || x->act_rank != x0->act_rank || x->H != x0->H ||
            x->W != x0->W)
            return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "inputs %s and %s do not concatenate",
                               dims_str(x0, db, sizeof db), dims_str(x, db2, sizeof db2));
        C += x->C;
        if (C > INT_MAX / 16)
            return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "too many channels");
    }
    set_act(&m->g.values[nd->out], x0->layout, x0->act_rank, (int)C, x0->H, x0->W);
    return CNP_OK;
}

static cnp_status shape_flatten(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    const cnp_value *x = &m->g.values[nd->in[0]];
    size_t T = (size_t)x->C * (size_t)x->H * (size_t)x->W;
    char db[96];

    if (T > INT_MAX / 16)
        return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "%s is too large to flatten",
                           dims_str(x, db, sizeof db));
    if (nd->u.ax.axis != -100) {
        if (norm_axis(nd->u.ax.axis, x->act_rank) != 1)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "Flatten on axis %d (canopy "
                               "flattens each chip, axis 1)", nd->u.ax.axis);
    } else {
        const cnp_value *t = &m->g.values[nd->in[1]];
        const cnp_symint *e = t->sym;
        int ok0, ok1;
        if (t->sym_rank != 1 || t->n_sym != 2)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "only a reshape to (N, -1) is "
                               "supported (the target has %d dimensions)",
                               t->sym_rank == 1 ? t->n_sym : t->sym_rank);
        ok0 = e[0].batch || (!e[0].batch && e[0].v == 0) ||
              (!e[0].batch && m->g.fixed_batch && e[0].v == m->g.fixed_batch) ||
              (!e[0].batch && e[0].v == -1 && !e[1].batch && e[1].v == (int64_t)T);
        ok1 = !e[1].batch && (e[1].v == (int64_t)T || (e[1].v == -1 && !(e[0].v == -1 &&
                                                                       !e[0].batch)) ||
                              (e[1].v == 0 && (size_t)x->C == T));
        if (!ok0 || !ok1)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "a reshape of %s to (%s%lld, "
                               "%s%lld) is not supported; canopy reshapes to (N, -1)",
                               dims_str(x, db, sizeof db), e[0].batch ? "N" : "",
                               e[0].batch ? 0LL : (long long)e[0].v, e[1].batch ? "N" : "",
                               e[1].batch ? 0LL : (long long)e[1].v);
    }
    set_act(&m->g.values[nd->out], CNP_LAYOUT_ROWS, 2, (int)T, 1, 1);
    return CNP_OK;
}

static cnp_status shape_linear(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    const cnp_value *x = &m->g.values[nd->in[0]];
    char db[96];
    if (x->act_rank != 2 || x->C != nd->u.lin.K)
        return shape_error(ctx, m, nd, CNP_ERR_SHAPE, "the weights expect (N, %d) features, the "
                           "input is %s", nd->u.lin.K, dims_str(x, db, sizeof db));
    set_act(&m->g.values[nd->out], CNP_LAYOUT_ROWS, 2, nd->u.lin.M, 1, 1);
    m->g.gflops += 2e-9 * nd->u.lin.K * (double)nd->u.lin.M;
    return CNP_OK;
}

static cnp_status shape_ints(cnp_ctx *ctx, cnp_model *m, cnp_node *nd)
{
    cnp_value *o = &m->g.values[nd->out];
    const cnp_value *x = &m->g.values[nd->in[0]];
    const cnp_axes_op *ax = &nd->u.ax;

    o->sym_rank = 1;
    o->n_sym = 0;
    switch (nd->op) {
    case CNP_OP_SHAPE: {
        cnp_symint d[4];
        int r = act_dims(x, d);
        int64_t s = ax->start, e = ax->has_end ? ax->end : r;
        if (s < 0)
            s += r;
        if (e < 0)
            e += r;
        s = s < 0 ? 0 : s > r ? r : s;
        e = e < 0 ? 0 : e > r ? r : e;
        for (int64_t i = s; i < e; i++)
            o->sym[o->n_sym++] = d[i];
        break;
    }
    case CNP_OP_GATHER: {
        const cnp_value *idx = &m->g.values[nd->in[1]];
        if (x->sym_rank != 1)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "Gather on a shape that canopy "
                               "cannot follow");
        o->sym_rank = idx->sym_rank;
        for (int i = 0; i < idx->n_sym; i++) {
            int64_t k = idx->sym[i].v;
            if (k < 0)
                k += x->n_sym;
            if (k < 0 || k >= x->n_sym)
                return shape_error(ctx, m, nd, CNP_ERR_FORMAT, "index %lld is out of range for a "
                                   "shape of %d values", (long long)idx->sym[i].v, x->n_sym);
            o->sym[o->n_sym++] = x->sym[k];
        }
        break;
    }
    case CNP_OP_UNSQUEEZE:
        if (x->sym_rank != 0 || ax->n_axes != 1 || norm_axis(ax->axes[0], 1) != 0)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "only a scalar unsqueezed on axis "
                               "0 is supported here");
        o->sym[o->n_sym++] = x->sym[0];
        break;
    case CNP_OP_SQUEEZE:
        if (x->sym_rank != 1 || x->n_sym != 1 ||
            (ax->n_axes > 0 && (ax->n_axes != 1 || norm_axis(ax->axes[0], 1) != 0)))
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "only a one-element list squeezed "
                               "on axis 0 is supported here");
        o->sym_rank = 0;
        o->sym[o->n_sym++] = x->sym[0];
        break;
    default: /* ICONCAT */
        if (norm_axis(ax->axis, 1) != 0)
            return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "axis %d on a list", ax->axis);
        for (int k = 0; k < nd->n_in; k++) {
            const cnp_value *v = &m->g.values[nd->in[k]];
            if (v->sym_rank != 1)
                return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "input '%s' is not a short "
                                   "list canopy can follow", v->name);
            if (o->n_sym + v->n_sym > CNP_MAX_RANK)
                return shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "the list is too long");
            for (int i = 0; i < v->n_sym; i++)
                o->sym[o->n_sym++] = v->sym[i];
        }
        break;
    }
    return CNP_OK;
}

cnp_status cnp_graph_shapes(cnp_ctx *ctx, cnp_model *m, int H, int W)
{
    cnp_value *in = &m->g.values[m->g.input], *out;
    char db[96], db2[96];
    cnp_status st = CNP_OK;

    m->g.gflops = 0;
    set_act(in, CNP_LAYOUT_CNHW, 4, m->g.in_C, H, W);
    for (int i = 0; i < m->g.n_nodes && st == CNP_OK; i++) {
        cnp_node *nd = &m->g.nodes[i];
        const cnp_value *x;
        if (nd->dead)
            continue;
        x = &m->g.values[nd->in[0]];
        switch (nd->op) {
        case CNP_OP_CONV:
            st = shape_conv(ctx, m, nd);
            break;
        case CNP_OP_MAXPOOL:
        case CNP_OP_AVGPOOL:
            st = shape_pool(ctx, m, nd);
            break;
        case CNP_OP_GAVGPOOL:
        case CNP_OP_GMAXPOOL:
            st = shape_global(ctx, m, nd);
            break;
        case CNP_OP_AFFINE:
            st = shape_affine(ctx, m, nd);
            break;
        case CNP_OP_ADD:
            if (!same_shape(x, &m->g.values[nd->in[1]]))
                st = shape_error(ctx, m, nd, CNP_ERR_UNSUPPORTED, "Add of %s and %s: canopy adds "
                                 "tensors of the same shape", dims_str(x, db, sizeof db),
                                 dims_str(&m->g.values[nd->in[1]], db2, sizeof db2));
            else
                set_act(&m->g.values[nd->out], x->layout, x->act_rank, x->C, x->H, x->W);
            break;
        case CNP_OP_RELU:
        case CNP_OP_SIGMOID:
            set_act(&m->g.values[nd->out], x->layout, x->act_rank, x->C, x->H, x->W);
            break;
        case CNP_OP_CONCAT:
            st = shape_concat(ctx, m, nd);
            break;
        case CNP_OP_FLATTEN:
            st = shape_flatten(ctx, m, nd);
            break;
        case CNP_OP_LINEAR:
            st = shape_linear(ctx, m, nd);
            break;
        default:
            st = shape_ints(ctx, m, nd);
            break;
        }
        if (st == CNP_OK && m->g.values[nd->out].kind == CNP_VAL_ACT) {
            const cnp_value *o = &m->g.values[nd->out];
            size_t f;
            if (!cnp_mul_size((size_t)o->C * (size_t)o->H, (size_t)o->W, &f) || f > INT_MAX / 16)
                st = shape_error(ctx, m, nd, CNP_ERR_SHAPE, "its output %s is too large",
                                 dims_str(o, db, sizeof db));
        }
    }
    if (st != CNP_OK)
        return st;
    out = &m->g.values[m->g.output];
    if (out->act_rank != 2)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the output '%s' is %s; canopy expects per-label "
                         "scores (N, labels)", m->g.path, m->g.output_name,
                         dims_str(out, db, sizeof db));
    if (m->meta.n_labels && out->C != m->meta.n_labels)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the output has %d values per chip at %dx%d but "
                         "%d labels", m->g.path, out->C, H, W, m->meta.n_labels);
    m->g.n_out = out->C;
    return CNP_OK;
}
