/* forward.c -- the executor: runs the live nodes in order on buffers planned
 * by cnp_model_prepare. Allocates nothing; the kernels (kernels.h) do the
 * arithmetic, this file only moves data between layouts.
 */
#include "engine/graph.h"

#include <omp.h>
#include <string.h>

static float *buf_of(const cnp_model *m, int v)
{
    return m->plan.bufs[m->g.values[v].buf];
}

/* y (C, n*HW) = x * scale[c] + shift[c] per channel (CNHW), or per feature
 * on rows (N, F); F == 1 broadcasts. y may alias x. */
static void affine(const cnp_model *m, const cnp_node *nd, float *y, const float *x, int n)
{
    const cnp_value *v = &m->g.values[nd->in[0]];
    const cnp_affine_op *a = &nd->u.aff;
    if (v->layout == CNP_LAYOUT_ROWS && a->F == v->C) {
        cnp_affine_rows(y, x, a->scale, a->shift, n, v->C);
    } else if (v->layout == CNP_LAYOUT_ROWS) {
        size_t cnt = (size_t)n * v->C;
        for (size_t i = 0; i < cnt; i++)
            y[i] = x[i] * a->scale[0] + a->shift[0];
    } else {
        size_t plane = (size_t)n * v->H * v->W;
        for (int c = 0; c < v->C; c++) {
            const float s = a->scale[a->F == 1 ? 0 : c], t = a->shift[a->F == 1 ? 0 : c];
            const float *xc = x + (size_t)c * plane;
            float *yc = y + (size_t)c * plane;
            for (size_t i = 0; i < plane; i++)
                yc[i] = xc[i] * s + t;
        }
    }
}

static void concat(const cnp_model *m, const cnp_node *nd, float *y, int n)
{
    const cnp_value *o = &m->g.values[nd->out];
    if (o->layout == CNP_LAYOUT_ROWS) {
        size_t off = 0;
        for (int k = 0; k < nd->n_in; k++) {
            const cnp_value *v = &m->g.values[nd->in[k]];
            const float *x = buf_of(m, nd->in[k]);
            for (int i = 0; i < n; i++)
                memcpy(y + (size_t)i * o->C + off, x + (size_t)i * v->C, (size_t)v->C * sizeof *y);
            off += (size_t)v->C;
        }
    } else {
        /* CNHW: the channel planes of each input follow each other */
        size_t off = 0;
        for (int k = 0; k < nd->n_in; k++) {
            const cnp_value *v = &m->g.values[nd->in[k]];
            size_t cnt = (size_t)v->C * n * v->H * v->W;
            memcpy(y + off, buf_of(m, nd->in[k]), cnt * sizeof *y);
            off += cnt;
        }
    }
}

/* y (n, C*H*W) row-major from x (C, n*H*W). */
static void flatten(const cnp_value *v, float *y, const float *x, int n)
{
    size_t hw = (size_t)v->H * v->W, F = (size_t)v->C * hw;
    for (int c = 0; c < v->C; c++)
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * F + (size_t)c * hw, x + ((size_t)c * n + (size_t)i) * hw,
                   hw * sizeof *y);
}

cnp_status cnp_forward_run(cnp_ctx *ctx, cnp_model *m, const float *input, int n, float *probs)
{
    const int nt = m->plan.ex.n_threads;
    const cnp_value *iv = &m->g.values[m->g.input];

    double t_prev = m->prof.node_s ? omp_get_wtime() : 0;

    cnp_nchw_to_cnhw(buf_of(m, m->g.input), input, n, iv->C, iv->H * iv->W);
    if (m->obs.vmin)
        cnp_observe_pass(m);
    if (m->prof.node_s) {
        m->prof.passes++;
        m->prof.batch = n;
    }
    for (int i = 0; i < m->g.n_nodes; i++) {
        const cnp_node *nd = &m->g.nodes[i];
        const cnp_value *xv, *ov;
        const float *x;
        float *y;
        if (m->prof.node_s && i > 0 && !m->g.nodes[i - 1].dead) {
            const double t = omp_get_wtime();
            m->prof.node_s[i - 1] += t - t_prev;
            t_prev = t;
        }
        if (nd->dead)
            continue;
        switch (nd->op) {
        case CNP_OP_SHAPE:
        case CNP_OP_GATHER:
        case CNP_OP_UNSQUEEZE:
        case CNP_OP_SQUEEZE:
        case CNP_OP_ICONCAT:
            continue;
        default:
            break;
        }
        xv = &m->g.values[nd->in[0]];
        ov = &m->g.values[nd->out];
        x = buf_of(m, nd->in[0]);
        y = buf_of(m, nd->out);
        switch (nd->op) {
        case CNP_OP_CONV:
            if (m->obs.vmin)
                cnp_observe_value(m, nd->in[0], x, n);
            cnp_conv_run(nd->u.conv.plan, y, x, n,
                         nd->u.conv.residual >= 0 ? buf_of(m, nd->u.conv.residual) : NULL,
                         nd->act, m->plan.scratch);
            break;
        case CNP_OP_MAXPOOL:
        case CNP_OP_AVGPOOL: {
            cnp_pool_shape s = nd->u.pool.shape;
            s.N = n;
            if (nd->op == CNP_OP_MAXPOOL)
                cnp_maxpool2d(y, x, &s, &m->plan.ex);
            else
                cnp_avgpool2d(y, x, &s, &m->plan.ex);
            break;
        }
        case CNP_OP_GAVGPOOL:
            if (xv->layout == CNP_LAYOUT_CNHW)
                cnp_global_avgpool(y, x, n, xv->C, xv->H * xv->W, nt);
            break;
        case CNP_OP_GMAXPOOL:
            if (xv->layout == CNP_LAYOUT_CNHW)
                cnp_global_maxpool(y, x, n, xv->C, xv->H * xv->W, nt);
            break;
        case CNP_OP_AFFINE:
            affine(m, nd, y, x, n);
            break;
        case CNP_OP_ADD:
            cnp_add(y, x, buf_of(m, nd->in[1]), (size_t)n * ov->chip_floats, nd->act);
            break;
        case CNP_OP_RELU:
            cnp_relu(y, x, (size_t)n * ov->chip_floats);
            break;
        case CNP_OP_SIGMOID:
            cnp_sigmoid(y, x, (size_t)n * ov->chip_floats);
            break;
        case CNP_OP_CONCAT:
            concat(m, nd, y, n);
            break;
        case CNP_OP_FLATTEN:
            if (xv->layout == CNP_LAYOUT_CNHW)
                flatten(xv, y, x, n);
            break;
        case CNP_OP_LINEAR:
            cnp_linear(y, x, nd->u.lin.w, nd->u.lin.bias, n, nd->u.lin.K, nd->u.lin.M, nd->act,
                       &m->plan.ex);
            break;
        default:
            return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: node %s: no executor for this node",
                             m->g.path, nd->name);
        }
    }
    if (m->prof.node_s && m->g.n_nodes > 0 && !m->g.nodes[m->g.n_nodes - 1].dead)
        m->prof.node_s[m->g.n_nodes - 1] += omp_get_wtime() - t_prev;
    if (m->g.apply_sigmoid)
        cnp_sigmoid(probs, buf_of(m, m->g.output), (size_t)n * m->g.n_out);
    else
        memcpy(probs, buf_of(m, m->g.output), (size_t)n * m->g.n_out * sizeof *probs);
    return CNP_OK;
}

cnp_status cnp_model_forward(cnp_ctx *ctx, cnp_model *m, const float *input, int n, float *probs)
{
    if (!m || !input || !probs)
        return cnp_error(ctx, CNP_ERR_USAGE, "cnp_model_forward: missing model or buffer");
    if (!m->plan.prepared)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: cnp_model_prepare() was not called", m->g.path);
    if (n < 1 || n > m->plan.max_batch)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: a batch of %d chips, the plan serves 1 to %d",
                         m->g.path, n, m->plan.max_batch);
    return cnp_forward_run(ctx, m, input, n, probs);
}
