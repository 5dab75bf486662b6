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
    int adds = m->n_add_total;
    if (adds > 0 && m->n_conv > 1) {
        int k = (m->n_conv - 1) / adds, proj = m->n_conv - 1 - k * adds;
        if ((k == 2 || k == 3) && proj >= 0 && proj <= 8) {
            int depth = 1 + k * adds + 1;
            int known = depth == 18 || depth == 34 || depth == 50 || depth == 101 || depth == 152;
            snprintf(buf, size, "%s-%d (%d conv, %d %s blocks)", known ? "ResNet" : "ResNet-like",
                     depth, m->n_conv, adds, k == 2 ? "basic" : "bottleneck");
            return;
        }
        snprintf(buf, size, "residual network (%d conv, %d residual adds)", m->n_conv, adds);
        return;
    }
    snprintf(buf, size, "convolutional network (%d conv)", m->n_conv);
}

static void describe_head(const cnp_model *m, char *buf, size_t size)
{
    if (m->has_gmp && m->has_gap && m->has_concat)
        snprintf(buf, size, "fastai head (concat pooling, %d linear)", m->n_linear);
    else if (m->has_gap && m->n_linear == 1)
        snprintf(buf, size, "torchvision head (average pooling, linear)");
    else
        snprintf(buf, size, "head of %d linear", m->n_linear);
}

cnp_status cnp_model_describe(cnp_ctx *ctx, cnp_model *m)
{
    char body[160], head[160], all[360];
    describe_body(m, body, sizeof body);
    describe_head(m, head, sizeof head);
    snprintf(all, sizeof all, "%s + %s%s", body, head,
             m->ends_in_sigmoid ? ", sigmoid in the graph" : "");
    m->arch = cnp_arena_strdup(ctx, &m->arena, all);
    m->op_names = cnp_calloc(ctx, (size_t)(m->n_ops ? m->n_ops : 1), sizeof *m->op_names, "info");
    m->op_counts = cnp_calloc(ctx, (size_t)(m->n_ops ? m->n_ops : 1), sizeof *m->op_counts,
                              "info");
    if (!m->arch || !m->op_names || !m->op_counts)
        return CNP_ERR_NOMEM;
    for (int i = 0; i < m->n_ops; i++) {
        m->op_names[i] = m->ops[i].name;
        m->op_counts[i] = m->ops[i].count;
    }
    return CNP_OK;
}

void cnp_model_info_get(const cnp_model *m, cnp_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->path = m->path;
    info->arch = m->arch;
    info->opset = m->opset;
    info->producer = m->producer;
    info->input_name = m->input_name;
    info->output_name = m->output_name;
    info->n_nodes = m->n_onnx_nodes;
    info->n_ops = m->n_ops;
    info->op_names = m->op_names;
    info->op_counts = m->op_counts;
    info->n_conv = m->n_conv;
    info->n_fused_bn = m->n_fused_bn;
    info->n_fused_add = m->n_fused_add;
    info->n_params = m->n_params;
    info->gflops = m->prepared ? m->gflops_planned : m->gflops_meta;
}
