/* profile.c -- per-node timing of the forward pass, for finding where a
 * model's time goes (`canopy bench --profile`). Off by default: the
 * executor then reads one NULL pointer per node.
 */
#include "engine/graph.h"
#include "engine/kernels.h"

#include <stdlib.h>
#include <string.h>

cnp_status cnp_model_profile(cnp_ctx *ctx, cnp_model *m, int on)
{
    free(m->prof.node_s);
    m->prof.node_s = NULL;
    m->prof.passes = 0;
    if (!on)
        return CNP_OK;
    m->prof.node_s = cnp_calloc(ctx, (size_t)(m->g.n_nodes > 0 ? m->g.n_nodes : 1),
                                sizeof *m->prof.node_s, "the profile");
    return m->prof.node_s ? CNP_OK : CNP_ERR_NOMEM;
}

/* Floating-point work of node nd for one chip, in GFLOP (0 if none worth
 * counting). */
static double node_gflop(const cnp_node *nd)
{
    if (nd->op == CNP_OP_CONV) {
        const cnp_conv_shape *s = &nd->u.conv.shape;
        return 2e-9 * s->K * (double)s->C * s->R * s->S * s->P * (double)s->Q;
    }
    if (nd->op == CNP_OP_LINEAR)
        return 2e-9 * nd->u.lin.K * (double)nd->u.lin.M;
    return 0;
}

void cnp_model_profile_print(const cnp_model *m, FILE *f)
{
    double total = 0;
    const double passes = m->prof.passes > 0 ? (double)m->prof.passes : 1.0;
    const int n = m->prof.batch > 0 ? m->prof.batch : 1;

    if (!m->prof.node_s)
        return;
    for (int i = 0; i < m->g.n_nodes; i++)
        total += m->prof.node_s[i];
    fprintf(f, "# %ld passes of batch %d; ms per pass\n", m->prof.passes, n);
    fprintf(f, "%-4s %-10s %-28s %-14s %9s %8s %6s\n", "node", "op", "shape", "path", "ms",
            "GFLOP/s", "share");
    for (int i = 0; i < m->g.n_nodes; i++) {
        const cnp_node *nd = &m->g.nodes[i];
        const cnp_value *x = &m->g.values[nd->in[0] >= 0 ? nd->in[0] : nd->out];
        const cnp_value *y = &m->g.values[nd->out];
        const double s = m->prof.node_s[i] / passes;
        const double gf = node_gflop(nd) * n;
        char shape[64];
        const char *path = "";
        if (nd->dead || m->prof.node_s[i] == 0)
            continue;
        if (nd->op == CNP_OP_CONV) {
            const cnp_conv_shape *c = &nd->u.conv.shape;
            snprintf(shape, sizeof shape, "%dx%dx%d %dx%d/%d -> %dx%dx%d", c->C, c->H, c->W,
                     c->R, c->S, c->stride_h, c->K, c->P, c->Q);
            path = cnp_conv_path(nd->u.conv.plan, n);
        } else {
            snprintf(shape, sizeof shape, "%dx%dx%d -> %dx%dx%d", x->C, x->H, x->W, y->C, y->H,
                     y->W);
        }
        fprintf(f, "%-4d %-10s %-28s %-14s %9.3f %8.1f %5.1f%%\n", i, nd->onnx_op, shape, path,
                1e3 * s, gf > 0 ? gf / s : 0.0, 100.0 * m->prof.node_s[i] / total);
    }
    fprintf(f, "total %.3f ms per pass\n", 1e3 * total / passes);
}
