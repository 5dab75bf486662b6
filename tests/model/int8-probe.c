/* int8-probe -- runs a calibrated model with every convolution on canopy's
 * int8 GEMM (no bf16 Winograd), for tests/model/test_int8.py, which
 * compares the probabilities with PyTorch quantising the same operands:
 *
 *   int8-probe MODEL SIZE N CHIPS.f32 OUT.f32
 *
 * CHIPS.f32 holds N normalised chips (N, C, SIZE, SIZE) as raw float32;
 * OUT.f32, a new file (never an existing one or a symbolic link), gets the
 * probabilities (N, labels) as raw float32. Prints
 * "precision=P" (as cnp_model_precision says). Exit 0 on
 * success, 1 on an error (message on stderr), 2 bad arguments, 77 when
 * the CPU has no AVX512_VNNI.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    cnp_ctx ctx;
    cnp_model *m = NULL;
    const cnp_model_meta *meta;
    float *x = NULL, *p = NULL;
    FILE *f;
    int size, n, fd, rc = 1;
    size_t nx;

    if (argc != 6 || (size = atoi(argv[2])) < 32 || (n = atoi(argv[3])) < 1)
        return 2;
    if (!cnp_engine_int8_available())
        return 77;
    cnp_ctx_clear(&ctx);
    if (cnp_blas_init(&ctx) != CNP_OK || cnp_model_load(&ctx, argv[1], &m) != CNP_OK)
        goto out;
    meta = cnp_model_meta_cget(m);
    if (cnp_model_prepare(&ctx, m, &(cnp_prepare_options){.max_batch = n, .height = size,
                                                          .width = size, .n_threads = 2,
                                                          .flags = CNP_PREPARE_INT8,
                                                          .algo = CNP_CONV_GEMM}) != CNP_OK)
        goto out;
    nx = (size_t)n * meta->n_channels * size * size;
    x = malloc(nx * sizeof *x);
    p = malloc((size_t)n * meta->n_labels * sizeof *p);
    if (!x || !p || !(f = fopen(argv[4], "rb"))) {
        fprintf(stderr, "int8-probe: cannot read %s\n", argv[4]);
        goto out;
    }
    if (fread(x, sizeof *x, nx, f) != nx) {
        fprintf(stderr, "int8-probe: %s holds fewer than %zu floats\n", argv[4], nx);
        fclose(f);
        goto out;
    }
    fclose(f);
    if (cnp_model_forward(&ctx, m, x, n, p) != CNP_OK)
        goto out;
    fd = open(argv[5], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        fprintf(stderr, "int8-probe: cannot create %s (it must not exist)\n", argv[5]);
        if (fd >= 0)
            close(fd);
        goto out;
    }
    if (fwrite(p, sizeof *p, (size_t)n * meta->n_labels, f) != (size_t)n * meta->n_labels ||
        fclose(f) != 0) {
        fprintf(stderr, "int8-probe: cannot write %s\n", argv[5]);
        goto out;
    }
    printf("precision=%s\n", cnp_model_precision(m));
    rc = 0;
out:
    if (rc && ctx.status != CNP_OK)
        fprintf(stderr, "int8-probe: %s\n", ctx.msg);
    free(x);
    free(p);
    cnp_model_free(m);
    return rc;
}
