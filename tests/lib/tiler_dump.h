/* tiler_dump.h -- what the tests' tiler drivers share
 * (tests/scene/test_classify_tiler, tests/products/product_dump): the
 * tiler parameters they start from, and reading every strip of a scene
 * into the chips' input file and the grid's cell values. */
#ifndef CNP_TESTS_TILER_DUMP_H
#define CNP_TESTS_TILER_DUMP_H

#include "scene/scene.h"

#define TDUMP_MAXC 16 /* channels at most */

/* The drivers' starting parameters: chips of `chip` pixels read into
 * inputs of the same size, scale `scale`, stride 0 (the caller sets it to
 * the chip when its options leave it 0), native GSD at most 4x off the
 * target, min_valid 0.5; spec.mean and spec.std point to mean[TDUMP_MAXC]
 * and std[TDUMP_MAXC], filled with 0 and 1. */
void tdump_params_init(cnp_tiler_params *p, int chip, double scale, float *mean, float *std);

/* Reads every strip of t. Prints the chips in reading order as
 * "[row, col, partial]" items separated by ", " (the body of a JSON
 * array), writes their input, (n, C, S, S) float32, to the file out_path,
 * and returns in *cells (caller frees) per grid cell, rows * cols * 3
 * floats: its valid fraction, usable fraction and obscured flag. CNP_OK,
 * or the tiler's or the write's error in ctx. */
cnp_status tdump_strips(cnp_ctx *ctx, cnp_tiler *t, int C, const char *out_path, float **cells);

#endif
