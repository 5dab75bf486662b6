/* product_dump.c -- opens a product (cnp_product_open) and reads it with
 * the tiler, for the tests of tests/products/: what canopy would feed the
 * model, without a model.
 *
 *   product_dump PRODUCT OUT.f32 [--names red,green,blue | --bands 1,2,3]
 *       [--user-bands] [--chip N] [--size S] [--scale X] [--offset A]
 *       [--min-valid F] [--mask FILE|none] [--scl-unusable 0,1,3]
 *       [--trained-on WHAT] [--scale-range-hi B] [--model-gsd M]
 *
 * Prints one JSON object: the product (cnp_product_json), its name and
 * warnings, the grid, each cell's valid and usable fractions and obscured
 * flag, the chips in reading order; writes the chips' input, (n, C, S, S)
 * float32, to OUT.f32. Mean 0 and std 1, so that with --scale 1 the input
 * is the product's reflectance itself. Exit 0, or 1 with the message. */
#define _POSIX_C_SOURCE 200809L
#include "scene/product.h"
#include "../lib/tiler_dump.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int split(const char *s, char **out, int max)
{
    int n = 0;
    char *copy = strdup(s), *tok, *save = NULL;
    for (tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = strdup(tok);
    free(copy);
    return n;
}

/* The options after PRODUCT OUT.f32 into pp, tp, names (with --names),
 * bands and *C; 0, or 2 for an unknown option. */
static int parse_options(int argc, char **argv, cnp_product_params *pp, cnp_tiler_params *tp,
                         char **names, int *bands, int *C, int *have_names, unsigned char *scl)
{
    char *tok[TDUMP_MAXC];
    int i, n;

    for (i = 3; i < argc; i++) {
        const char *o = argv[i], *a = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(o, "--user-bands")) {
            pp->bands_given = 1;
            continue;
        }
        i++;
        if (!strcmp(o, "--names")) {
            *C = split(a, names, TDUMP_MAXC);
            *have_names = 1;
        } else if (!strcmp(o, "--bands")) {
            *C = split(a, tok, TDUMP_MAXC);
            for (n = 0; n < *C; n++) {
                bands[n] = atoi(tok[n]);
                free(tok[n]);
            }
        } else if (!strcmp(o, "--chip"))
            tp->chip = atoi(a);
        else if (!strcmp(o, "--size"))
            tp->spec.size = atoi(a);
        else if (!strcmp(o, "--scale"))
            tp->spec.scale = atof(a);
        else if (!strcmp(o, "--offset"))
            tp->spec.offset = atof(a);
        else if (!strcmp(o, "--min-valid"))
            tp->min_valid = atof(a);
        else if (!strcmp(o, "--mask")) {
            pp->mask_mode = strcmp(a, "none") ? CNP_MASK_FILE : CNP_MASK_NONE;
            pp->mask_file = a;
        } else if (!strcmp(o, "--scl-unusable")) {
            memset(scl, 0, CNP_SCL_CLASSES);
            n = split(a, tok, TDUMP_MAXC);
            while (n-- > 0) {
                scl[atoi(tok[n]) % CNP_SCL_CLASSES] = 1;
                free(tok[n]);
            }
            pp->scl_unusable = scl;
        } else if (!strcmp(o, "--trained-on"))
            pp->trained_on = a;
        else if (!strcmp(o, "--scale-range-hi")) {
            pp->scale_range_given = 1;
            pp->scale_range_hi = atof(a);
        } else if (!strcmp(o, "--model-gsd")) {
            tp->gsd_mode = CNP_GSD_USER;
            tp->gsd_m = atof(a);
        } else {
            fprintf(stderr, "unknown option %s\n", o);
            return 2;
        }
    }
    for (n = *have_names ? 0 : *C; n < *C; n++)
        bands[n] = n + 1;
    return 0;
}

int main(int argc, char **argv)
{
    cnp_product_params pp;
    cnp_tiler_params tp;
    cnp_product *pr = NULL;
    cnp_tiler *t = NULL;
    cnp_ctx ctx;
    const cnp_tiler_info *in;
    cnp_tiler_stats stats;
    char *names[TDUMP_MAXC], *pj = NULL;
    int bands[TDUMP_MAXC] = {1, 2, 3}, C = 3, have_names = 0, i, rc = 1;
    unsigned char scl[CNP_SCL_CLASSES];
    float mean[TDUMP_MAXC], std[TDUMP_MAXC];
    float *cells = NULL;

    if (argc < 3) {
        fprintf(stderr, "usage: %s PRODUCT OUT.f32 [options]\n", argv[0]);
        return 2;
    }
    memset(&pp, 0, sizeof pp);
    tdump_params_init(&tp, 16, 1.0, mean, std);
    if (parse_options(argc, argv, &pp, &tp, names, bands, &C, &have_names, scl) != 0)
        return 2;
    pp.n_channels = C;
    pp.bands = bands;
    pp.names = have_names ? (const char *const *)names : NULL;
    pp.model_name = "test-model";
    if (tp.stride <= 0)
        tp.stride = tp.chip;

    cnp_ctx_clear(&ctx);
    if (cnp_product_open(&ctx, argv[1], &pp, &pr) != CNP_OK)
        goto cleanup;
    tp.spec.n_channels = C;
    tp.spec.bands = pr->bands;
    tp.rad_add = pr->rad_add;
    tp.rad_gain = pr->rad_gain;
    tp.have_nodata = pr->have_nodata;
    tp.nodata = pr->nodata;
    tp.qmask = pr->has_qmask ? &pr->qmask : NULL;
    if (cnp_tiler_open(&ctx, pr->dataset, &tp, &t) != CNP_OK)
        goto cleanup;
    in = cnp_tiler_info_get(t);
    pj = cnp_product_json(pr);
    if (!pj) {
        cnp_error(&ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    printf("{\"product\": %s,\n \"name\": \"%s\", \"warnings\": [", pj, pr->name);
    for (i = 0; pr->warnings && pr->warnings[i]; i++) {
        json_object *w = json_object_new_string(pr->warnings[i]);
        printf("%s%s", i ? ", " : "", json_object_to_json_string(w));
        json_object_put(w);
    }
    printf("],\n \"rows\": %d, \"cols\": %d, \"width\": %d, \"height\": %d, "
           "\"qmask_kind\": \"%s\", \"mask_kind\": \"%s\",\n \"chips\": [", in->rows, in->cols,
           in->width, in->height, in->qmask_kind ? in->qmask_kind : "", in->mask_kind);
    if (tdump_strips(&ctx, t, C, argv[2], &cells) != CNP_OK)
        goto cleanup;
    printf("],\n \"cells\": [");
    for (i = 0; i < in->rows * in->cols; i++)
        printf("%s[%.9g, %.9g, %d]", i ? ", " : "", (double)cells[3 * i],
               (double)cells[3 * i + 1], (int)cells[3 * i + 2]);
    cnp_tiler_stats_get(t, &stats);
    printf("],\n \"stats\": {\"chips\": %ld, \"partial\": %ld, \"skipped\": %ld, "
           "\"obscured\": %ld}}\n", stats.chips, stats.partial, stats.skipped, stats.obscured);
    rc = 0;
cleanup:
    if (rc)
        fprintf(stderr, "product_dump: %s\n", ctx.msg);
    for (i = 0; have_names && i < C; i++)
        free(names[i]);
    free(pj);
    free(cells);
    cnp_tiler_close(t);
    cnp_product_free(pr);
    return rc;
}
