/* metrics.c -- multi-label scores (sklearn's conventions), per-label
 * threshold optimisation, the seeded split, the thresholds JSON. */
#include "eval/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW(rows, i) ((rows) ? (size_t)(rows)[i] : (size_t)(i))

double cnp_f2_counts(int tp, int fp, int fn)
{
    double p, r;
    if (tp <= 0)
        return 0.0;
    /* Same operations as sklearn's precision_recall_fscore_support. */
    p = (double)tp / (double)(tp + fp);
    r = (double)tp / (double)(tp + fn);
    return 5.0 * p * r / (4.0 * p + r);
}

cnp_sample_scores cnp_scores_samples(const unsigned char *truth, const float *probs, int n_labels,
                                     const float *thresholds, const int *rows, int n_rows)
{
    cnp_sample_scores s = { 0.0, 0.0, 0.0 };
    int i, l;
    if (n_rows <= 0)
        return s;
    for (i = 0; i < n_rows; i++) {
        size_t at = ROW(rows, i) * (size_t)n_labels;
        int tp = 0, fp = 0, fn = 0;
        for (l = 0; l < n_labels; l++) {
            int y = truth[at + l] != 0;
            int pred = probs[at + l] >= thresholds[l];
            tp += y && pred;
            fp += !y && pred;
            fn += y && !pred;
        }
        s.f2 += cnp_f2_counts(tp, fp, fn);
        if (tp + fp > 0)
            s.precision += (double)tp / (double)(tp + fp);
        if (tp + fn > 0)
            s.recall += (double)tp / (double)(tp + fn);
    }
    s.f2 /= n_rows;
    s.precision /= n_rows;
    s.recall /= n_rows;
    return s;
}

void cnp_scores_labels(const unsigned char *truth, const float *probs, int n_labels,
                       const float *thresholds, const int *rows, int n_rows,
                       cnp_label_metrics *out)
{
    int i, l;
    memset(out, 0, (size_t)n_labels * sizeof *out);
    for (i = 0; i < n_rows; i++) {
        size_t at = ROW(rows, i) * (size_t)n_labels;
        for (l = 0; l < n_labels; l++) {
            int y = truth[at + l] != 0;
            int pred = probs[at + l] >= thresholds[l];
            out[l].support += y;
            out[l].predicted += pred;
            out[l].tp += y && pred;
        }
    }
    for (l = 0; l < n_labels; l++) {
        cnp_label_metrics *m = &out[l];
        double p = m->predicted ? (double)m->tp / m->predicted : 0.0;
        double r = m->support ? (double)m->tp / m->support : 0.0;
        double d = 4.0 * p + r;
        m->precision = p;
        m->recall = r;
        m->f2 = d > 0.0 ? 5.0 * p * r / d : 0.0;
    }
}

/* Index of the first grid value > p (grid ascending): the number of grid
 * thresholds at which p counts as predicted. NaN: 0. */
static int grid_rank(const float *grid, int n_grid, float p)
{
    int lo = 0, hi = n_grid;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (grid[mid] <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The optimiser's working state: per-chip counts at the current
 * thresholds and per-label scratch. */
typedef struct opt_state {
    const cnp_threshold_data *d;
    const float *gv;        /* (n_grid) candidate thresholds */
    int n_grid;
    int *tp, *fp, *fn;      /* (n_rows) counts over all labels */
    int *rank;              /* (n_rows) grid values each chip's p reaches */
    unsigned char *was;     /* (n_rows) label predicted before the move */
    double *bucket;         /* (n_grid + 1) */
} opt_state;

/* Label l's best grid threshold with the others fixed: moves
 * thresholds[l] there and updates the counts when it gains; returns 1
 * when it moved. */
static int optimize_label(opt_state *o, int l, float *thresholds)
{
    const cnp_threshold_data *d = o->d;
    const int L = d->n_labels, n_rows = d->n_rows;
    double cur = 0.0, best = -HUGE_VAL, suffix = 0.0;
    int best_k = -1, i, k;

    memset(o->bucket, 0, ((size_t)o->n_grid + 1) * sizeof *o->bucket);
    /* With the other labels fixed, a chip scores pos when label l is
     * predicted and neg when not, so the total at threshold t is
     * sum(neg) + sum over chips with p >= t of (pos - neg): bucket
     * the differences by how many grid values p reaches. */
    for (i = 0; i < n_rows; i++) {
        size_t at = ROW(d->rows, i) * (size_t)L + (size_t)l;
        int y = d->truth[at] != 0;
        float p = d->probs[at];
        int pred = p >= thresholds[l];
        int btp = o->tp[i] - (y && pred), bfp = o->fp[i] - (!y && pred);
        int bfn = o->fn[i] - (y && !pred);
        double dd = cnp_f2_counts(btp + y, bfp + !y, bfn) - cnp_f2_counts(btp, bfp, bfn + y);
        o->was[i] = (unsigned char)pred;
        o->rank[i] = grid_rank(o->gv, o->n_grid, p);
        o->bucket[o->rank[i]] += dd;
        if (pred)
            cur += dd;
    }
    /* Candidate k predicts the chips of rank > k; scanning down
     * with ">=" makes the lowest of equal-scoring values win. */
    for (k = o->n_grid - 1; k >= 0; k--) {
        suffix += o->bucket[k + 1];
        if (suffix >= best) {
            best = suffix;
            best_k = k;
        }
    }
    /* Move only for a real gain, not for rounding noise. */
    if (best_k < 0 || !(best > cur + 1e-12 * n_rows))
        return 0;
    thresholds[l] = o->gv[best_k];
    for (i = 0; i < n_rows; i++) {
        size_t at = ROW(d->rows, i) * (size_t)L + (size_t)l;
        int y = d->truth[at] != 0;
        int now = o->rank[i] > best_k;
        o->tp[i] += (y && now) - (y && o->was[i]);
        o->fp[i] += (!y && now) - (!y && o->was[i]);
        o->fn[i] += (y && !now) - (y && !o->was[i]);
    }
    return 1;
}

cnp_status cnp_thresholds_optimize(cnp_ctx *ctx, const cnp_threshold_data *data,
                                   const cnp_threshold_grid *grid, float *thresholds,
                                   cnp_threshold_result *res)
{
    const unsigned char *truth = data->truth;
    const float *probs = data->probs;
    const int n_labels = data->n_labels, n_rows = data->n_rows;
    const int *rows = data->rows;
    cnp_status st = CNP_OK;
    opt_state o;
    float *gv = NULL;
    double span;
    int n_grid, pass, i, l, k, passes_done = 0;

    memset(&o, 0, sizeof o);
    if (n_rows < 1 || n_labels < 1)
        return cnp_error(ctx, CNP_ERR_USAGE, "threshold optimisation needs at least one chip "
                         "and one label");
    if (!grid || !(grid->step > 0.0) || !(grid->lo >= 0.0) || !(grid->hi <= 1.0) ||
        !(grid->lo <= grid->hi) || grid->max_passes < 1)
        return cnp_error(ctx, CNP_ERR_USAGE, "threshold grid: expected 0 <= lo <= hi <= 1, "
                         "step > 0 and at least one pass");
    span = (grid->hi - grid->lo) / grid->step;
    if (span > 99999.0)
        return cnp_error(ctx, CNP_ERR_USAGE, "threshold grid: more than 100000 values; use a "
                         "larger step");
    n_grid = (int)floor(span + 1e-9) + 1;

    o.d = data;
    o.n_grid = n_grid;
    o.tp = cnp_calloc(ctx, (size_t)n_rows, sizeof *o.tp, "threshold optimisation");
    o.fp = cnp_calloc(ctx, (size_t)n_rows, sizeof *o.fp, "threshold optimisation");
    o.fn = cnp_calloc(ctx, (size_t)n_rows, sizeof *o.fn, "threshold optimisation");
    o.rank = cnp_calloc(ctx, (size_t)n_rows, sizeof *o.rank, "threshold optimisation");
    o.was = cnp_calloc(ctx, (size_t)n_rows, 1, "threshold optimisation");
    o.bucket = cnp_calloc(ctx, (size_t)n_grid + 1, sizeof *o.bucket, "threshold optimisation");
    o.gv = gv = cnp_calloc(ctx, (size_t)n_grid, sizeof *gv, "threshold optimisation");
    if (!o.tp || !o.fp || !o.fn || !o.rank || !o.was || !o.bucket || !gv) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (k = 0; k < n_grid; k++)
        gv[k] = (float)(grid->lo + k * grid->step);

    /* Each chip's counts over all labels at the current thresholds. */
    for (i = 0; i < n_rows; i++) {
        size_t at = ROW(rows, i) * (size_t)n_labels;
        for (l = 0; l < n_labels; l++) {
            int y = truth[at + l] != 0;
            int pred = probs[at + l] >= thresholds[l];
            o.tp[i] += y && pred;
            o.fp[i] += !y && pred;
            o.fn[i] += y && !pred;
        }
    }
    if (res)
        res->f2_before = cnp_scores_samples(truth, probs, n_labels, thresholds, rows, n_rows).f2;
    for (pass = 0; pass < grid->max_passes; pass++) {
        int changed = 0;
        passes_done = pass + 1;
        for (l = 0; l < n_labels; l++)
            changed |= optimize_label(&o, l, thresholds);
        if (!changed)
            break;
    }
    if (res) {
        res->f2_after = cnp_scores_samples(truth, probs, n_labels, thresholds, rows, n_rows).f2;
        res->n_passes = passes_done;
    }
cleanup:
    free(o.tp);
    free(o.fp);
    free(o.fn);
    free(o.rank);
    free(o.was);
    free(o.bucket);
    free(gv);
    return st;
}

/* SplitMix64 (Steele, Lea, Flood 2014): a tiny generator with a fixed,
 * documented sequence, so a split is reproducible everywhere. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in 0..bound-1 (bound >= 1) by rejection: no modulo bias. */
static uint64_t uniform_below(uint64_t *state, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound, x;
    do
        x = splitmix64(state);
    while (x >= limit);
    return x % bound;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

cnp_status cnp_split_rows(cnp_ctx *ctx, int n, double fraction, uint64_t seed,
                          int **fit, int *n_fit, int **held, int *n_held)
{
    cnp_status st = CNP_OK;
    int *perm = NULL, *a = NULL, *b = NULL;
    int i, nh;
    uint64_t state = seed;

    *fit = *held = NULL;
    *n_fit = *n_held = 0;
    if (n < 2)
        return cnp_error(ctx, CNP_ERR_USAGE, "a split needs at least 2 chips, there %s %d",
                         n == 1 ? "is" : "are", n);
    if (!(fraction > 0.0 && fraction < 1.0))
        return cnp_error(ctx, CNP_ERR_USAGE, "the held-out fraction must be between 0 and 1 "
                         "(exclusive), got %g", fraction);
    nh = (int)lround(fraction * n);
    if (nh < 1)
        nh = 1;
    if (nh > n - 1)
        nh = n - 1;
    perm = cnp_calloc(ctx, (size_t)n, sizeof *perm, "the split");
    a = cnp_calloc(ctx, (size_t)(n - nh), sizeof *a, "the split");
    b = cnp_calloc(ctx, (size_t)nh, sizeof *b, "the split");
    if (!perm || !a || !b) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (i = 0; i < n; i++)
        perm[i] = i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)uniform_below(&state, (uint64_t)i + 1);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    memcpy(b, perm, (size_t)nh * sizeof *b);
    memcpy(a, perm + nh, (size_t)(n - nh) * sizeof *a);
    qsort(a, (size_t)(n - nh), sizeof *a, cmp_int);
    qsort(b, (size_t)nh, sizeof *b, cmp_int);
    *fit = a;
    *n_fit = n - nh;
    *held = b;
    *n_held = nh;
    a = b = NULL;
cleanup:
    free(perm);
    free(a);
    free(b);
    return st;
}

char *cnp_thresholds_json(cnp_ctx *ctx, const float *thresholds, int n)
{
    size_t cap, len = 0;
    char *s;
    int i;

    /* "[" + n * ("0.123456789" + ",") + "]": 20 bytes per value is plenty. */
    if (n < 0 || !cnp_mul_size((size_t)n, 20, &cap) || cap > ((size_t)-1) - 3) {
        cnp_error(ctx, CNP_ERR_NOMEM, "thresholds: size overflow");
        return NULL;
    }
    cap += 3;
    s = cnp_calloc(ctx, cap, 1, "the thresholds JSON");
    if (!s)
        return NULL;
    s[len++] = '[';
    for (i = 0; i < n; i++) {
        char buf[32];
        if (!isfinite(thresholds[i])) {
            cnp_error(ctx, CNP_ERR_USAGE, "threshold %d is not a finite number", i + 1);
            free(s);
            return NULL;
        }
        cnp_float_text(buf, sizeof buf, thresholds[i]);
        if (i)
            s[len++] = ',';
        memcpy(s + len, buf, strlen(buf));
        len += strlen(buf);
    }
    s[len++] = ']';
    s[len] = '\0';
    return s;
}
