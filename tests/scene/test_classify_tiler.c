/* test_classify_tiler.c -- drives the scene tiler alone (no model) for
 * tests/scene/test_classify_tiler.py: lays out the chip grid of a scene,
 * reads every strip and dumps what the engine would receive.
 *
 *   test_classify_tiler SCENE OUT.f32 [--chip N] [--stride N] [--size S]
 *       [--bands 1,2,3] [--offset A] [--scale X] [--mean a,b,c] [--std a,b,c]
 *       [--gsd M|native] [--min-valid F] [--strip-chips N] [--readers N]
 *       [--preview SIZE]
 *
 * Prints one JSON object (grid, geometry, per-cell valid fractions, chips
 * in reading order with their partial flag) to stdout and writes the chips'
 * normalised input, (n_chips, C, S, S) float32 in reading order, to OUT.f32.
 * With --preview, the tiler's preview of that size: "preview": [width,
 * height, planes] (null when the tiler declined) and, in OUT.f32.preview,
 * its planes then its validity as float32.
 * Exit 0 on success, 1 with the tiler's message on stderr otherwise.
 */
#include "scene/scene.h"
#include "../lib/tiler_dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_list(const char *s, double *v, int max)
{
    int n = 0;
    char *end;
    while (*s && n < max) {
        v[n++] = strtod(s, &end);
        if (end == s)
            return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* The preview (if any) to OUT.f32.preview, its size to stdout. */
static cnp_status write_preview(cnp_ctx *ctx, cnp_tiler *t, const char *out)
{
    cnp_preview *pv = NULL;
    char path[4096];
    size_t n, i;
    FILE *f;
    cnp_status st = cnp_tiler_preview(ctx, t, &pv);

    if (st != CNP_OK)
        return st;
    if (!pv) {
        printf(",\n \"preview\": null");
        return CNP_OK;
    }
    n = (size_t)pv->width * (size_t)pv->height;
    snprintf(path, sizeof path, "%s.preview", out);
    f = fopen(path, "wb");
    if (!f || fwrite(pv->planes, sizeof(float), n * (size_t)pv->n_planes, f) !=
                  n * (size_t)pv->n_planes)
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s", path);
    for (i = 0; st == CNP_OK && i < n; i++) {
        float v = pv->valid[i];
        if (fwrite(&v, sizeof v, 1, f) != 1)
            st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s", path);
    }
    if (f && fclose(f) != 0 && st == CNP_OK)
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s", path);
    printf(",\n \"preview\": [%d, %d, %d]", pv->width, pv->height, pv->n_planes);
    cnp_preview_free(pv);
    return st;
}

int main(int argc, char **argv)
{
    cnp_tiler_params p;
    cnp_tiler *t = NULL;
    cnp_ctx ctx;
    const cnp_tiler_info *in;
    cnp_tiler_stats stats;
    int bands[TDUMP_MAXC] = {1, 2, 3};
    float mean[TDUMP_MAXC], std[TDUMP_MAXC];
    double v[TDUMP_MAXC];
    float *cells = NULL;
    int C = 3, i, n, rc = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SCENE OUT.f32 [options]\n", argv[0]);
        return 2;
    }
    tdump_params_init(&p, 256, 1.0 / 255.0, mean, std);
    for (i = 3; i + 1 < argc; i += 2) {
        const char *o = argv[i], *a = argv[i + 1];
        if (!strcmp(o, "--chip"))
            p.chip = atoi(a);
        else if (!strcmp(o, "--stride"))
            p.stride = atoi(a);
        else if (!strcmp(o, "--size"))
            p.spec.size = atoi(a);
        else if (!strcmp(o, "--offset"))
            p.spec.offset = atof(a);
        else if (!strcmp(o, "--scale"))
            p.spec.scale = atof(a);
        else if (!strcmp(o, "--min-valid"))
            p.min_valid = atof(a);
        else if (!strcmp(o, "--strip-chips"))
            p.strip_chips = atoi(a);
        else if (!strcmp(o, "--readers"))
            p.readers = atoi(a);
        else if (!strcmp(o, "--preview"))
            p.preview_size = atoi(a);
        else if (!strcmp(o, "--gsd")) {
            if (!strcmp(a, "native"))
                p.gsd_mode = CNP_GSD_NATIVE;
            else {
                p.gsd_mode = CNP_GSD_USER;
                p.gsd_m = atof(a);
            }
        } else if (!strcmp(o, "--bands")) {
            C = parse_list(a, v, TDUMP_MAXC);
            for (n = 0; n < C; n++)
                bands[n] = (int)v[n];
        } else if (!strcmp(o, "--mean")) {
            n = parse_list(a, v, TDUMP_MAXC);
            for (n = n - 1; n >= 0; n--)
                mean[n] = (float)v[n];
        } else if (!strcmp(o, "--std")) {
            n = parse_list(a, v, TDUMP_MAXC);
            for (n = n - 1; n >= 0; n--)
                std[n] = (float)v[n];
        } else {
            fprintf(stderr, "unknown option %s\n", o);
            return 2;
        }
    }
    if (C < 1) {
        fprintf(stderr, "bad --bands\n");
        return 2;
    }
    if (p.stride <= 0)
        p.stride = p.chip;
    p.spec.n_channels = C;
    p.spec.bands = bands;

    cnp_ctx_clear(&ctx);
    if (cnp_tiler_open(&ctx, argv[1], &p, &t) != CNP_OK)
        goto cleanup;
    in = cnp_tiler_info_get(t);
    printf("{\"rows\": %d, \"cols\": %d, \"width\": %d, \"height\": %d, \"n_strips\": %d,\n",
           in->rows, in->cols, in->width, in->height, in->n_strips);
    printf(" \"grid_gt\": [%.17g, %.17g, %.17g, %.17g, %.17g, %.17g],\n", in->grid_gt[0],
           in->grid_gt[1], in->grid_gt[2], in->grid_gt[3], in->grid_gt[4], in->grid_gt[5]);
    printf(" \"pixel_m\": [%.17g, %.17g], \"chip_px\": [%.17g, %.17g], "
           "\"stride_px\": [%.17g, %.17g], \"gsd_m\": %.17g,\n", in->pixel_m[0], in->pixel_m[1],
           in->chip_px[0], in->chip_px[1], in->stride_px[0], in->stride_px[1], in->gsd_m);
    printf(" \"resampling\": \"%s\", \"mask_kind\": \"%s\", \"input_size\": %d,\n",
           in->resampling, in->mask_kind, in->input_size);
    printf(" \"chips\": [");
    if (tdump_strips(&ctx, t, C, argv[2], &cells) != CNP_OK)
        goto cleanup;
    printf("],\n \"valid\": [");
    for (i = 0; i < in->rows * in->cols; i++)
        printf("%s%.9g", i ? ", " : "", (double)cells[3 * i]);
    printf("]");
    if (write_preview(&ctx, t, argv[2]) != CNP_OK)
        goto cleanup;
    cnp_tiler_stats_get(t, &stats);
    printf(",\n \"stats\": {\"chips\": %ld, \"partial\": %ld, \"skipped\": %ld}}\n",
           stats.chips, stats.partial, stats.skipped);
    rc = 0;
cleanup:
    if (rc)
        fprintf(stderr, "test_classify_tiler: %s\n", ctx.msg);
    free(cells);
    cnp_tiler_close(t);
    return rc;
}
