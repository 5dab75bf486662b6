/* test_resample.c -- the tiler's chip resampling (classifier/scene/resample.c)
 * against its double-precision _ref twin on random data: chips shrunk and
 * grown, whole-pixel and fractional windows, inside a larger strip buffer.
 * GDAL's own result is the reference of tests/scene/test_classify_tiler.py
 * (test_resampled_like_gdal).
 * Prints the fast kernel's time per 3 x 256^2 -> 128^2 chip (information).
 *
 *   test_resample
 */
#include "scene/scene.h"
#include "../engine/kernel_test.h"

#include <string.h>
#include <time.h>

typedef struct rcase {
    double off[2], size[2]; /* window inside the chip's whole pixels */
    int S;
} rcase;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One case: a strip buffer of random values, the chip at (3, 2) in it. */
static int run_case(kt_rng *rng, const rcase *rc, int timed)
{
    cnp_ctx ctx;
    cnp_resample_axis ax, ay;
    const int C = 3, S = rc->S;
    int w = (int)ceil(rc->off[0] + rc->size[0]), h = (int)ceil(rc->off[1] + rc->size[1]);
    int ld = w + 9, rows = h + 5, ok = 1, i, n;
    size_t plane = (size_t)ld * rows;
    float *src = kt_floats(plane * C), *got = kt_floats((size_t)C * S * S);
    float *want = kt_floats((size_t)C * S * S), *tmp = kt_floats((size_t)S * (w + 1));
    const float *chip = src + 2 * ld + 3;
    char what[128];

    cnp_ctx_clear(&ctx);
    kt_fill(rng, src, plane * C, 3.0f);
    if (cnp_resample_axis_init(&ctx, &ax, S, cnp_resample_taps(rc->size[0], S)) != CNP_OK ||
        cnp_resample_axis_init(&ctx, &ay, S, cnp_resample_taps(rc->size[1], S)) != CNP_OK) {
        fprintf(stderr, "%s\n", ctx.msg);
        exit(KT_HARD_ERROR);
    }
    cnp_resample_axis_set(&ax, rc->off[0], rc->size[0], w);
    cnp_resample_axis_set(&ay, rc->off[1], rc->size[1], h);
    const cnp_resample_shape sh = {.C = C, .w = w, .ld = ld, .plane = plane, .x = &ax, .y = &ay};
    const cnp_resample_ref_shape rs = {.C = C, .S = S, .w = w, .h = h, .ld = ld, .plane = plane,
                                       .off = {rc->off[0], rc->off[1]},
                                       .size = {rc->size[0], rc->size[1]}};
    cnp_resample_chip(got, chip, tmp, &sh);
    cnp_resample_chip_ref(want, chip, &rs);
    snprintf(what, sizeof what, "%.3g+%.4g x %.3g+%.4g -> %d", rc->off[0], rc->size[0],
             rc->off[1], rc->size[1], S);
    /* Values up to 3: float sums of at most ~10 taps. */
    ok = kt_close(what, got, want, NULL, (size_t)C * S * S, 1e-5, 1e-5);
    if (ok && timed) {
        double t0 = now_s();
        n = 200;
        for (i = 0; i < n; i++)
            cnp_resample_chip(got, chip, tmp, &sh);
        printf("# %s: %.1f us per chip\n", what, 1e6 * (now_s() - t0) / n);
    }
    cnp_resample_axis_free(&ax);
    cnp_resample_axis_free(&ay);
    free(src);
    free(got);
    free(want);
    free(tmp);
    return ok;
}

int main(void)
{
    static const rcase cases[] = {
        {{0, 0}, {256, 256}, 128},          /* the benchmark: native 256 px -> 128 */
        {{0, 0}, {96, 96}, 32},             /* shrunk 3x */
        {{0, 0}, {64, 64}, 160},            /* grown 2.5x */
        {{0.25, 0.6}, {95.5, 96.3}, 32},    /* fractional windows */
        {{0.5, 0.1}, {40.2, 39.9}, 64},     /* fractional, grown */
        {{0.9, 0.3}, {511.7, 383.2}, 128},  /* 4x and 3x */
        {{0.2, 0.7}, {1.5, 2.2}, 8},        /* a chip smaller than the kernel */
        {{0, 0}, {7, 5}, 3},                /* odd ratios */
        {{0, 0}, {512, 300}, 128},          /* 4x (a step the code does not name) */
        {{0, 0}, {128, 128}, 128},          /* 1x */
    };
    kt_rng rng = {42};
    int ok = 1;
    size_t k;

    for (k = 0; k < sizeof cases / sizeof cases[0]; k++)
        ok &= run_case(&rng, &cases[k], k == 0);
    printf("%s: %zu resampling cases against the double-precision reference\n",
           ok ? "ok" : "FAILED", sizeof cases / sizeof cases[0]);
    return ok ? KT_PASS : KT_FAIL;
}
