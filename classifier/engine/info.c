/* info.c -- what `canopy info` says about a model: the architecture guessed
 * from the fused graph, the operator census, sizes and GFLOPs.
 */
#include "engine/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ResNets: a stem convolution, then residual blocks of 2 (basic) or 3
 * (bottleneck) convolutions, a 1x1 projection in front of some stages, one
 * linear layer at the end; depth = 1 + convs in blocks + 1. */
static void describe_body(const cnp_model *m, char *buf, size_t size)
{
    int adds = m->g.n_add_total;
    if (adds > 0 && m->g.n_conv > 1) {
        int k = (m->g.n_conv - 1) / adds, proj = m->g.n_conv - 1 - k * adds;
        if ((k == 2 || k == 3) && proj >= 0 && proj <= 8) {
            int depth = 1 + k * adds + 1;
            int known = depth == 18 || depth == 34 || depth == 50 || depth == 101 || depth == 152;
            snprintf(buf, size, "%s-%d (%d conv, %d %s blocks)", known ? "ResNet" : "ResNet-like",
                     depth, m->g.n_conv, adds, k == 2 ? "basic" : "bottleneck");
            return;
        }
        snprintf(buf, size, "residual network (%d conv, %d residual adds)", m->g.n_conv, adds);
        return;
    }
    snprintf(buf, size, "convolutional network (%d conv)", m->g.n_conv);
}

static void describe_head(const cnp_model *m, char *buf, size_t size)
{
    if (m->g.has_gmp && m->g.has_gap && m->g.has_concat)
        snprintf(buf, size, "fastai head (concat pooling, %d linear)", m->g.n_linear);
    else if (m->g.has_gap && m->g.n_linear == 1)
        snprintf(buf, size, "torchvision head (average pooling, linear)");
    else
        snprintf(buf, size, "head of %d linear", m->g.n_linear);
}

cnp_status cnp_model_describe(cnp_ctx *ctx, cnp_model *m)
{
    char body[160], head[160], all[360];
    describe_body(m, body, sizeof body);
    describe_head(m, head, sizeof head);
    snprintf(all, sizeof all, "%s + %s%s", body, head,
             m->g.ends_in_sigmoid ? ", sigmoid in the graph" : "");
    m->g.arch = cnp_arena_strdup(ctx, &m->g.arena, all);
    m->g.op_names = cnp_calloc(ctx, (size_t)(m->g.n_ops ? m->g.n_ops : 1), sizeof *m->g.op_names,
                               "info");
    m->g.op_counts = cnp_calloc(ctx, (size_t)(m->g.n_ops ? m->g.n_ops : 1), sizeof *m->g.op_counts,
                                "info");
    if (!m->g.arch || !m->g.op_names || !m->g.op_counts)
        return CNP_ERR_NOMEM;
    for (int i = 0; i < m->g.n_ops; i++) {
        m->g.op_names[i] = m->g.ops[i].name;
        m->g.op_counts[i] = m->g.ops[i].count;
    }
    return CNP_OK;
}

void cnp_model_info_get(const cnp_model *m, cnp_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->path = m->g.path;
    info->arch = m->g.arch;
    info->opset = m->g.opset;
    info->producer = m->g.producer;
    info->input_name = m->g.input_name;
    info->output_name = m->g.output_name;
    info->n_nodes = m->g.n_onnx_nodes;
    info->n_ops = m->g.n_ops;
    info->op_names = m->g.op_names;
    info->op_counts = m->g.op_counts;
    info->n_conv = m->g.n_conv;
    info->n_fused_bn = m->g.n_fused_bn;
    info->n_fused_add = m->g.n_fused_add;
    info->n_params = m->g.n_params;
    info->gflops = m->plan.prepared ? m->plan.gflops : m->g.gflops_meta;
}
