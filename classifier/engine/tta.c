/* tta.c -- D4 test-time augmentation: each square chip is seen in its 8
 * orientations (4 rotations by 90 degrees, each with and without a
 * transpose), and the per-label probabilities are averaged. Uses the
 * buffers planned with CNP_PREPARE_TTA; allocates nothing.
 */
#include "engine/graph.h"

#include <string.h>

/* dst (n, C, S, S) = orientation t of src: transpose when t >= 4, then
 * rotate by (t % 4) * 90 degrees counter-clockwise. */
static void orient(float *dst, const float *src, int n, int C, int S, int t, int n_threads)
{
    const int rot = t % 4, tr = t >= 4;
    const size_t plane = (size_t)S * S;
    const long planes = (long)n * C;

#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (long p = 0; p < planes; p++) {
        const float *s = src + (size_t)p * plane;
        float *d = dst + (size_t)p * plane;
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                int a, b;       /* source of d[i][j] after the rotation */
                switch (rot) {
                case 0: a = i; b = j; break;
                case 1: a = j; b = S - 1 - i; break;
                case 2: a = S - 1 - i; b = S - 1 - j; break;
                default: a = S - 1 - j; b = i; break;
                }
                d[(size_t)i * S + j] = tr ? s[(size_t)b * S + a] : s[(size_t)a * S + b];
            }
    }
}

cnp_status cnp_model_forward_tta(cnp_ctx *ctx, cnp_model *m, const float *input, int n,
                                 float *probs)
{
    size_t cnt;
    cnp_status st;

    if (!m || !input || !probs)
        return cnp_error(ctx, CNP_ERR_USAGE, "cnp_model_forward_tta: missing model or buffer");
    if (!m->plan.prepared || !(m->plan.flags & CNP_PREPARE_TTA))
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: cnp_model_prepare() was not called with "
                         "CNP_PREPARE_TTA", m->g.path);
    if (n < 1 || n > m->plan.max_batch)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: a batch of %d chips, the plan serves 1 to %d",
                         m->g.path, n, m->plan.max_batch);
    cnt = (size_t)n * m->g.n_out;
    memset(m->plan.tta_acc, 0, cnt * sizeof *m->plan.tta_acc);
    for (int t = 0; t < 8; t++) {
        const float *x = input;
        if (t > 0) {
            orient(m->plan.tta_in, input, n, m->g.in_C, m->plan.H, t, m->plan.ex.n_threads);
            x = m->plan.tta_in;
        }
        if ((st = cnp_forward_run(ctx, m, x, n, probs)) != CNP_OK)
            return st;
        for (size_t i = 0; i < cnt; i++)
            m->plan.tta_acc[i] += probs[i];
    }
    for (size_t i = 0; i < cnt; i++)
        probs[i] = m->plan.tta_acc[i] / 8.0f;
    return CNP_OK;
}
