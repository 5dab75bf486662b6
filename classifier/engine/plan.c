/* plan.c -- cnp_model_prepare: shapes at the planned input size, one
 * convolution plan per Conv (weights packed for the threads), and every
 * buffer the forward pass needs, in one slab.
 *
 * Activation buffers are shared by liveness: walking the live nodes in
 * order, a node's output takes a free buffer (the smallest that fits, else
 * the largest free one grown to fit, else a new one); inputs read for the
 * last time are freed after the node. Elementwise nodes (Relu, Sigmoid,
 * affine, Add) and convolutions with a residual write in place over an input
 * read for the last time. Flatten/Reshape of (N, F) rows and global pooling
 * of already pooled features share their input's buffer.
 */
#include "engine/graph.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_FLOATS 16 /* 64 bytes */

void cnp_model_unprepare(cnp_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->g.n_nodes; i++)
        if (m->g.nodes[i].op == CNP_OP_CONV) {
            cnp_conv_plan_free(m->g.nodes[i].u.conv.plan);
            m->g.nodes[i].u.conv.plan = NULL;
        }
    cnp_aligned_free(m->plan.slab);
    free(m->plan.bufs);
    free(m->plan.buf_floats);
    m->plan.slab = m->plan.scratch = m->plan.tta_in = m->plan.tta_acc = NULL;
    m->plan.bufs = NULL;
    m->plan.buf_floats = NULL;
    m->plan.n_bufs = 0;
    m->plan.scratch_floats = 0;
    m->plan.prepared = 0;
    m->plan.bf16 = 0;
    m->plan.int8 = 0;
    m->plan.n_int8 = 0;
}

const char *cnp_model_precision(const cnp_model *m)
{
    if (!m || !m->plan.prepared)
        return "fp32";
    return m->plan.n_int8 ? "int8" : m->plan.bf16 ? "bf16" : "fp32";
}

const char *cnp_model_isa(const cnp_model *m)
{
    return m && m->plan.prepared ? cnp_isa_name(m->plan.isa) : "none";
}

/* Whether node nd's output shares its input's buffer (no computation). */
static int is_alias_node(const cnp_model *m, const cnp_node *nd)
{
    const cnp_value *x = &m->g.values[nd->in[0]];
    switch (nd->op) {
    case CNP_OP_FLATTEN:
    case CNP_OP_GAVGPOOL:
    case CNP_OP_GMAXPOOL:
        return x->layout == CNP_LAYOUT_ROWS;
    default:
        return 0;
    }
}

static int is_shape_node(const cnp_node *nd)
{
    return nd->op == CNP_OP_SHAPE || nd->op == CNP_OP_GATHER || nd->op == CNP_OP_UNSQUEEZE ||
           nd->op == CNP_OP_SQUEEZE || nd->op == CNP_OP_ICONCAT;
}

static int root_of(const cnp_model *m, int v)
{
    while (m->g.values[v].alias >= 0)
        v = m->g.values[v].alias;
    return v;
}

typedef struct pool {
    size_t *size;
    int *busy;
    int n, cap;
} pool;

static int pool_take(cnp_ctx *ctx, pool *p, size_t need)
{
    int best = -1, largest = -1;
    for (int i = 0; i < p->n; i++) {
        if (p->busy[i])
            continue;
        if (p->size[i] >= need && (best < 0 || p->size[i] < p->size[best]))
            best = i;
        if (largest < 0 || p->size[i] > p->size[largest])
            largest = i;
    }
    if (best < 0 && largest >= 0) {
        best = largest;
        p->size[best] = need;
    }
    if (best < 0) {
        if (p->n == p->cap) {
            int cap = p->cap ? 2 * p->cap : 16;
            size_t *s = realloc(p->size, (size_t)cap * sizeof *s);
            int *b;
            if (s)
                p->size = s;
            b = s ? realloc(p->busy, (size_t)cap * sizeof *b) : NULL;
            if (!b) {
                cnp_error(ctx, CNP_ERR_NOMEM, "out of memory planning buffers");
                return -1;
            }
            p->busy = b;
            p->cap = cap;
        }
        best = p->n++;
        p->size[best] = need;
    }
    p->busy[best] = 1;
    return best;
}

/* Input k of node nd may be overwritten by its output. */
static int in_place_ok(const cnp_node *nd, int k)
{
    switch (nd->op) {
    case CNP_OP_RELU:
    case CNP_OP_SIGMOID:
    case CNP_OP_AFFINE:
        return k == 0;
    case CNP_OP_ADD:
        return k <= 1;
    case CNP_OP_CONV:
        return k == 1; /* the residual */
    default:
        return 0;
    }
}

static cnp_status plan_buffers(cnp_ctx *ctx, cnp_model *m)
{
    pool p = {NULL, NULL, 0, 0};
    cnp_status st = CNP_OK;
    int out_root;

    for (int v = 0; v < m->g.n_values; v++) {
        cnp_value *val = &m->g.values[v];
        val->alias = -1;
        val->buf = -1;
        val->last_use = -1;
        val->chip_floats = (size_t)val->C * (size_t)val->H * (size_t)val->W;
    }
    for (int i = 0; i < m->g.n_nodes; i++) {
        cnp_node *nd = &m->g.nodes[i];
        if (!nd->dead && is_alias_node(m, nd))
            m->g.values[nd->out].alias = nd->in[0];
    }
    for (int i = 0; i < m->g.n_nodes; i++) {
        const cnp_node *nd = &m->g.nodes[i];
        if (nd->dead || is_shape_node(nd))
            continue;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0 && m->g.values[nd->in[k]].kind == CNP_VAL_ACT)
                m->g.values[root_of(m, nd->in[k])].last_use = i;
    }
    out_root = root_of(m, m->g.output);
    m->g.values[out_root].last_use = INT_MAX;

    /* the converted input */
    {
        size_t need;
        if (!cnp_mul_size(m->g.values[m->g.input].chip_floats, (size_t)m->plan.max_batch, &need))
            goto too_large;
        if ((m->g.values[m->g.input].buf = pool_take(ctx, &p, need)) < 0)
            goto nomem;
    }
    for (int i = 0; i < m->g.n_nodes; i++) {
        cnp_node *nd = &m->g.nodes[i];
        cnp_value *o;
        int reuse = -1;
        size_t need;
        if (nd->dead || is_shape_node(nd))
            continue;
        o = &m->g.values[nd->out];
        if (o->alias >= 0) {
            o->buf = m->g.values[root_of(m, nd->out)].buf;
            continue;
        }
        if (!cnp_mul_size(o->chip_floats, (size_t)m->plan.max_batch, &need))
            goto too_large;
        for (int k = 0; k < nd->n_in && reuse < 0; k++) {
            int r;
            if (nd->in[k] < 0 || m->g.values[nd->in[k]].kind != CNP_VAL_ACT || !in_place_ok(nd, k))
                continue;
            r = root_of(m, nd->in[k]);
            if (nd->op == CNP_OP_CONV && r == root_of(m, nd->in[0]))
                continue; /* a convolution never writes over its input */
            if (m->g.values[r].last_use == i && p.size[m->g.values[r].buf] >= need)
                reuse = r;
        }
        if (reuse >= 0) {
            o->buf = m->g.values[reuse].buf;
            m->g.values[reuse].last_use = -2; /* handed over: not freed below */
        } else if ((o->buf = pool_take(ctx, &p, need)) < 0) {
            goto nomem;
        }
        for (int k = 0; k < nd->n_in; k++) {
            int r;
            if (nd->in[k] < 0 || m->g.values[nd->in[k]].kind != CNP_VAL_ACT)
                continue;
            r = root_of(m, nd->in[k]);
            if (m->g.values[r].last_use == i) {
                p.busy[m->g.values[r].buf] = 0;
                m->g.values[r].last_use = -2;
            }
        }
    }
    m->plan.n_bufs = p.n;
    m->plan.buf_floats = p.size;
    p.size = NULL;
    goto cleanup;
too_large:
    st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: activations of batch %d at %dx%d are too large",
                   m->g.path, m->plan.max_batch, m->plan.H, m->plan.W);
    goto cleanup;
nomem:
    st = ctx->status;
cleanup:
    free(p.size);
    free(p.busy);
    return st;
}

static size_t round_floats(size_t n)
{
    return cnp_round_up(n, ALIGN_FLOATS);
}

/* The options against the model: batch, size, fixed exports, TTA. */
static cnp_status check_options(cnp_ctx *ctx, const cnp_model *m, const cnp_prepare_options *o)
{
    const char *path = m->g.path;
    const int h = o->height, w = o->width;
    if (o->max_batch < 1 || o->max_batch > 1 << 20)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: batch size %d is outside 1..%d", path,
                         o->max_batch, 1 << 20);
    if (h < 32 || w < 32)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: an input of %dx%d pixels is smaller than the "
                         "32x32 canopy supports", path, w, h);
    if ((m->g.fixed_h && h != m->g.fixed_h) || (m->g.fixed_w && w != m->g.fixed_w))
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the model was exported for a fixed input of "
                         "%dx%d pixels, not %dx%d; use that size or export with dynamic height "
                         "and width axes", path, m->g.fixed_w ? m->g.fixed_w : w,
                         m->g.fixed_h ? m->g.fixed_h : h, w, h);
    if ((o->flags & CNP_PREPARE_TTA) && h != w)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: test-time augmentation needs square chips, not "
                         "%dx%d", path, w, h);
    if ((o->flags & CNP_PREPARE_INT8) && m->meta.n_int8 == 0)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: int8 needs the ranges of the model's "
                         "activations, and its metadata has no %s; run `canopy calibrate` on "
                         "sample chips first", path, CNP_META_KEY_INT8);
    return CNP_OK;
}

/* The calibrated range of the activation value v (canopy.int8); 0 when
 * the metadata has none for it. */
static int int8_range(const cnp_model *m, int v, float *xmin, float *xmax)
{
    const char *name = m->g.values[v].name;
    for (int i = 0; i < m->meta.n_int8; i++)
        if (name && !strcmp(m->meta.int8_names[i], name)) {
            *xmin = m->meta.int8_min[i];
            *xmax = m->meta.int8_max[i];
            return 1;
        }
    return 0;
}

/* One convolution plan per live Conv (weights packed for the threads),
 * and the largest scratch any of them needs. */
static cnp_status plan_convs(cnp_ctx *ctx, cnp_model *m)
{
    for (int i = 0; i < m->g.n_nodes; i++) {
        cnp_node *nd = &m->g.nodes[i];
        cnp_conv_opts co = {m->plan.ex.n_threads, m->plan.bf16, m->plan.algo, m->plan.isa,
                            m->plan.wino, 0, 0, 0};
        cnp_conv_shape s;
        size_t sc;
        if (nd->dead || nd->op != CNP_OP_CONV)
            continue;
        s = nd->u.conv.shape;
        s.N = m->plan.max_batch;
        co.int8 = m->plan.int8 && int8_range(m, nd->in[0], &co.xmin, &co.xmax);
        nd->u.conv.plan = cnp_conv_plan_new_opts(ctx, &s, nd->u.conv.w, nd->u.conv.bias, &co);
        if (!nd->u.conv.plan) {
            char nb[320];
            char msg[CNP_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", ctx->msg);
            cnp_ctx_clear(ctx);
            return cnp_error(ctx, CNP_ERR_NOMEM, "%s: %s: %s", m->g.path,
                             cnp_node_desc(nd, nb, sizeof nb), msg);
        }
        m->plan.n_int8 += cnp_conv_plan_int8(nd->u.conv.plan);
        sc = cnp_conv_plan_scratch_floats(nd->u.conv.plan);
        if (sc > m->plan.scratch_floats)
            m->plan.scratch_floats = sc;
    }
    return CNP_OK;
}

/* One slab: activation buffers, conv scratch, TTA buffers. */
static cnp_status alloc_slab(cnp_ctx *ctx, cnp_model *m)
{
    cnp_plan *pl = &m->plan;
    size_t total = 0, off = 0, tta_in = 0, tta_acc = 0;
    const int tta = (pl->flags & CNP_PREPARE_TTA) != 0;

    for (int b = 0; b < pl->n_bufs; b++)
        total += round_floats(pl->buf_floats[b]);
    total += round_floats(pl->scratch_floats);
    if (tta) {
        if (!cnp_mul_size(m->g.values[m->g.input].chip_floats, (size_t)pl->max_batch, &tta_in) ||
            !cnp_mul_size((size_t)m->g.n_out, (size_t)pl->max_batch, &tta_acc))
            return cnp_error(ctx, CNP_ERR_NOMEM, "%s: buffers for batch %d at %dx%d are too "
                             "large", m->g.path, pl->max_batch, pl->W, pl->H);
        total += round_floats(tta_in) + round_floats(tta_acc);
    }
    pl->bufs = cnp_calloc(ctx, (size_t)(pl->n_bufs ? pl->n_bufs : 1), sizeof *pl->bufs, "buffers");
    if (!pl->bufs)
        return ctx->status;
    pl->slab = cnp_aligned_alloc(ctx, total ? total : 1, sizeof(float), "activation buffers");
    if (!pl->slab) {
        char msg[CNP_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", ctx->msg);
        cnp_ctx_clear(ctx);
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: %s for batch %d at %dx%d; use a smaller --batch",
                         m->g.path, msg, pl->max_batch, pl->W, pl->H);
    }
    for (int b = 0; b < pl->n_bufs; b++) {
        pl->bufs[b] = pl->slab + off;
        off += round_floats(pl->buf_floats[b]);
    }
    pl->scratch = pl->slab + off;
    off += round_floats(pl->scratch_floats);
    if (tta) {
        pl->tta_in = pl->slab + off;
        off += round_floats(tta_in);
        pl->tta_acc = pl->slab + off;
    }
    return CNP_OK;
}

cnp_status cnp_model_prepare(cnp_ctx *ctx, cnp_model *m, const cnp_prepare_options *opt)
{
    cnp_status st;
    int n_threads;

    if (!m || !opt)
        return cnp_error(ctx, CNP_ERR_USAGE, "no model or options to prepare");
    cnp_model_unprepare(m);
    if ((st = check_options(ctx, m, opt)) != CNP_OK)
        return st;
    n_threads = opt->n_threads > 0 ? opt->n_threads : omp_get_num_procs();
    m->plan.max_batch = opt->max_batch;
    m->plan.H = opt->height;
    m->plan.W = opt->width;
    m->plan.ex = cnp_exec_make(n_threads, opt->algo, opt->isa);
    m->plan.algo = opt->algo;
    m->plan.wino = opt->wino;
    m->plan.isa = cnp_isa_for(opt->algo, opt->isa);
    m->plan.flags = opt->flags;
    m->plan.bf16 = (opt->flags & CNP_PREPARE_BF16) && m->plan.ex.avx512 &&
                   cnp_gemm_bf16_available();
    m->plan.int8 = (opt->flags & CNP_PREPARE_INT8) && m->plan.ex.avx512 &&
                   cnp_gemm_int8_available();
    if ((st = cnp_graph_shapes(ctx, m, opt->height, opt->width)) != CNP_OK)
        goto fail;
    m->plan.gflops = m->g.gflops;
    if ((st = plan_buffers(ctx, m)) != CNP_OK || (st = plan_convs(ctx, m)) != CNP_OK ||
        (st = alloc_slab(ctx, m)) != CNP_OK)
        goto fail;
    m->plan.prepared = 1;
    return CNP_OK;

fail:
    cnp_model_unprepare(m);
    {
        /* back to the metadata's size for cnp_model_info */
        cnp_ctx quiet;
        cnp_ctx_clear(&quiet);
        cnp_graph_shapes(&quiet, m, m->g.fixed_h ? m->g.fixed_h : m->meta.input_size,
                         m->g.fixed_w ? m->g.fixed_w : m->meta.input_size);
    }
    return st;
}
