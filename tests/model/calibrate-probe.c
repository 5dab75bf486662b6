/* calibrate-probe -- drives int8 calibration from tests/model/test_calibrate.py,
 * which compares what it prints with PyTorch:
 *
 *   calibrate-probe lib MODEL OUT [--cancel] CHIP...
 *       cnp_calibrate() through the public API (canopy/calibrate.h): the
 *       result object as KEY=VALUE lines, and what the progress callback
 *       saw (with --cancel it cancels at its first call);
 *   calibrate-probe engine MODEL SIZE A.f32 NA B.f32 NB
 *       the engine's observation (engine.h): NA chips of A observed, then
 *       observation restarted and NB chips of B observed in a model
 *       prepared for max(NA, NB) chips; prints the statuses of the calls
 *       that must fail and the canopy.int8 value of B alone. A.f32 and
 *       B.f32 hold normalised chips (n, C, SIZE, SIZE) as raw float32.
 *
 * Exit 0 when the calls behaved as documented, 1 otherwise (message on
 * stderr), 2 bad arguments.
 */
#define _GNU_SOURCE
#include "canopy/calibrate.h"
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    int calls, cancel, backwards;
    double last;
    char first_msg[256];
} seen;

static int progress(double done, const char *msg, void *user)
{
    seen *s = user;
    if (s->calls == 0)
        snprintf(s->first_msg, sizeof s->first_msg, "%s", msg ? msg : "");
    if (done < s->last)
        s->backwards = 1;
    s->last = done;
    s->calls++;
    return !s->cancel;
}

static int cmd_lib(int argc, char **argv)
{
    seen s = {0, 0, 0, 0.0, ""};
    cnp_calibrate_options *o;
    cnp_calibrate_result *r = NULL;
    char **args;
    cnp_ctx ctx;
    int i, n = 0, rc;

    if (argc < 5)
        return 2;
    args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    args[n++] = argv[2];
    args[n++] = "--write-model";
    args[n++] = argv[3];
    args[n++] = "--batch";
    args[n++] = "3";
    for (i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--cancel"))
            s.cancel = 1;
        else
            args[n++] = argv[i];
    }
    cnp_ctx_clear(&ctx);
    o = cnp_calibrate_options_new(n, args, &ctx);
    if (!o) {
        fprintf(stderr, "calibrate-probe: %s\n", ctx.msg);
        free(args);
        return 1;
    }
    cnp_calibrate(o, progress, &s, &r);
    rc = r ? 0 : 1;
    if (r) {
        printf("status=%s\nmessage=%s\nlisted=%ld\nselected=%ld\nn=%ld\nn_failed=%ld\n"
               "n_conv=%d\nn_tensors=%d\njson=%s\n", cnp_status_code(r->status), r->message,
               r->listed, r->selected, r->n, r->n_failed, r->n_conv, r->n_tensors,
               r->int8_json ? r->int8_json : "");
        for (i = 0; r->errors && r->errors[i]; i++)
            printf("error=%s\n", r->errors[i]);
    }
    printf("progress_calls=%d\nprogress_last=%g\nprogress_backwards=%d\nprogress_first=%s\n",
           s.calls, s.last, s.backwards, s.first_msg);
    cnp_calibrate_result_free(r);
    cnp_calibrate_options_free(o);
    free(args);
    return rc;
}

/* n chips of (C, S, S) floats from a raw file; NULL on error. */
static float *read_chips(const char *path, size_t floats)
{
    FILE *f = fopen(path, "rb");
    float *x = malloc(floats * sizeof *x);
    int ok = f && x && fread(x, sizeof *x, floats, f) == floats;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "calibrate-probe: cannot read %zu floats from %s\n", floats, path);
        free(x);
        return NULL;
    }
    return x;
}

/* Prints "WHAT=status" of a cnp_model_int8_json call that must fail with
 * `want`; 1 when it did not. */
static int must_fail(const char *what, cnp_model *m, cnp_status want)
{
    cnp_ctx ctx;
    char *s;
    cnp_ctx_clear(&ctx);
    s = cnp_model_int8_json(&ctx, m, 1);
    printf("%s=%s\n", what, s ? "ok" : cnp_status_code(ctx.status));
    if (s || ctx.status != want) {
        fprintf(stderr, "calibrate-probe: %s: expected %s, got %s (%s)\n", what,
                cnp_status_code(want), s ? "a string" : cnp_status_code(ctx.status), ctx.msg);
        free(s);
        return 1;
    }
    return 0;
}

static int cmd_engine(int argc, char **argv)
{
    cnp_model *m = NULL;
    float *a = NULL, *b = NULL, *probs = NULL;
    char *json = NULL;
    cnp_ctx ctx;
    int size, na, nb, C, bad = 0, rc = 1;
    size_t chip;

    if (argc != 8)
        return 2;
    size = atoi(argv[3]);
    na = atoi(argv[5]);
    nb = atoi(argv[7]);
    if (size < 32 || na < 1 || nb < 1)
        return 2;
    cnp_ctx_clear(&ctx);
    if (cnp_blas_init(&ctx) != CNP_OK || cnp_model_load(&ctx, argv[2], &m) != CNP_OK)
        goto cleanup;
    C = cnp_model_meta_cget(m)->n_channels;
    chip = (size_t)C * (size_t)size * (size_t)size;
    if (!(a = read_chips(argv[4], chip * (size_t)na)) ||
        !(b = read_chips(argv[6], chip * (size_t)nb)) ||
        !(probs = calloc((size_t)(na > nb ? na : nb) * (size_t)cnp_model_meta_cget(m)->n_labels,
                         sizeof *probs)))
        goto cleanup;
    if (cnp_model_prepare(&ctx, m, &(cnp_prepare_options){.max_batch = na > nb ? na : nb,
                                                           .height = size, .width = size,
                                                           .n_threads = 2}) != CNP_OK)
        goto cleanup;
    bad |= must_fail("never_on", m, CNP_ERR_USAGE);
    if (cnp_model_observe(&ctx, m, 1) != CNP_OK)
        goto cleanup;
    bad |= must_fail("no_pass", m, CNP_ERR_USAGE);
    if (cnp_model_forward(&ctx, m, a, na, probs) != CNP_OK || cnp_model_observe(&ctx, m, 0))
        goto cleanup;
    bad |= must_fail("off", m, CNP_ERR_USAGE);
    if (cnp_model_observe(&ctx, m, 1) != CNP_OK ||
        cnp_model_forward(&ctx, m, b, nb, probs) != CNP_OK ||
        !(json = cnp_model_int8_json(&ctx, m, nb)))
        goto cleanup;
    printf("json=%s\n", json);
    rc = bad;
cleanup:
    if (ctx.status != CNP_OK)
        fprintf(stderr, "calibrate-probe: %s\n", ctx.msg);
    free(json);
    free(a);
    free(b);
    free(probs);
    cnp_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "lib"))
        return cmd_lib(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "engine"))
        return cmd_engine(argc, argv);
    fprintf(stderr, "usage: calibrate-probe lib|engine ...\n");
    return 2;
}
