/* tiler_dump.c -- the tests' tiler drivers' shared part (tiler_dump.h). */
#include "tiler_dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tdump_params_init(cnp_tiler_params *p, int chip, double scale, float *mean, float *std)
{
    int c;
    memset(p, 0, sizeof *p);
    p->chip = chip;
    p->spec.size = chip;
    p->spec.scale = scale;
    p->gsd_mode = CNP_GSD_NATIVE;
    p->max_gsd_ratio = 4.0;
    p->min_valid = 0.5;
    for (c = 0; c < TDUMP_MAXC; c++) {
        mean[c] = 0.0f;
        std[c] = 1.0f;
    }
    p->spec.mean = mean;
    p->spec.std = std;
}

cnp_status tdump_strips(cnp_ctx *ctx, cnp_tiler *t, int C, const char *out_path, float **cells)
{
    const cnp_tiler_info *in = cnp_tiler_info_get(t);
    size_t chip_floats = (size_t)C * (size_t)in->input_size * (size_t)in->input_size;
    FILE *f = fopen(out_path, "wb");
    const cnp_strip *s;
    cnp_status st = CNP_OK;
    int i, first = 1;

    *cells = calloc((size_t)in->rows * (size_t)in->cols * 3, sizeof(float));
    if (!f || !*cells) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot write", out_path);
        goto cleanup;
    }
    for (;;) {
        if ((st = cnp_tiler_next_strip(ctx, t, &s)) != CNP_OK || !s)
            break;
        for (i = 0; i < s->n_cols; i++) {
            float *cell = *cells + 3 * ((size_t)s->row * in->cols + s->col0 + i);
            cell[0] = s->valid[i];
            cell[1] = s->usable[i];
            cell[2] = s->obscured[i];
        }
        for (i = 0; i < s->n_chips; i++) {
            printf("%s[%d, %d, %d]", first ? "" : ", ", s->row, s->cols[i], s->partial[i]);
            first = 0;
        }
        if (s->n_chips && fwrite(s->input, sizeof(float), chip_floats * s->n_chips, f) !=
                              chip_floats * (size_t)s->n_chips) {
            st = cnp_error(ctx, CNP_ERR_IO, "%s: write failed", out_path);
            break;
        }
    }
cleanup:
    if (f && fclose(f) != 0 && st == CNP_OK)
        st = cnp_error(ctx, CNP_ERR_IO, "%s: write failed", out_path);
    return st;
}
