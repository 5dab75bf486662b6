/* consumer.c -- a program built against the installed libcanopy with
 * `pkg-config --cflags --libs canopy` (tests/install/test_install.py):
 *
 *   consumer MODEL OUTDIR SCENE [cancel]
 *
 * classifies SCENE through the public API only and prints the result object
 * as KEY=VALUE lines for the test to compare with the manifest; with
 * "cancel" its progress callback cancels at the first strip. Exit 0 when
 * the library returned what was asked for, 1 otherwise. */
#include <canopy/canopy.h>

#include <stdio.h>
#include <string.h>

typedef struct {
    int calls, cancel;
    double last;
} progress_state;

static int progress(double done, const char *msg, void *user)
{
    progress_state *p = user;
    (void)msg;
    if (done < p->last)
        fprintf(stderr, "progress went back: %g after %g\n", done, p->last);
    p->last = done;
    p->calls++;
    return !(p->cancel && done > 0.0);
}

int main(int argc, char **argv)
{
    char *args[] = {"-m", NULL, "-o", NULL, "--chip", "32", "--threads", "1", NULL};
    cnp_classify_options *o = NULL;
    cnp_classify_model *m = NULL;
    cnp_classify_result *r = NULL;
    progress_state ps = {0, 0, 0.0};
    cnp_ctx ctx;
    cnp_status st;
    int rc = 1, k;

    if (argc < 4)
        return 2;
    ps.cancel = argc > 4 && !strcmp(argv[4], "cancel");
    args[1] = argv[1];
    args[3] = argv[2];
    args[8] = argv[3];
    cnp_ctx_clear(&ctx);
    printf("version=%s\n", cnp_version());
    o = cnp_classify_options_new(9, args, &ctx);
    if (!o || cnp_classify_model_load(&ctx, o, &m) != CNP_OK ||
        cnp_classify_outdir_make(&ctx, o) != CNP_OK) {
        fprintf(stderr, "consumer: %s\n", ctx.msg);
        goto cleanup;
    }
    st = cnp_classify_scene(o, m, argv[3], progress, &ps, &r);
    if (!r)
        goto cleanup;
    printf("status=%s\nskipped=%d\nname=%s\nmessage=%s\n", cnp_status_code(st), r->skipped,
           r->name ? r->name : "", r->message);
    printf("total=%ld\nclassified=%ld\nnodata=%ld\nobscured=%ld\npartial=%ld\n",
           r->chips_total, r->chips_classified, r->chips_nodata, r->chips_obscured,
           r->chips_partial);
    for (k = 0; k < r->n_labels; k++)
        printf("positive.%s=%ld\n", r->labels[k], r->positives[k]);
    for (k = 0; k < r->n_outputs; k++)
        printf("output.%s=%s\n", r->outputs[k].kind, r->outputs[k].path);
    printf("progress_calls=%d\nprecision=%s\n", ps.calls, cnp_classify_model_precision(m));
    rc = (st == (ps.cancel ? CNP_ERR_CANCELLED : CNP_OK) && r->status == st) ? 0 : 1;
cleanup:
    cnp_classify_result_free(r);
    cnp_classify_model_free(m);
    cnp_classify_options_free(o);
    return rc;
}
