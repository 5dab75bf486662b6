/* test_blas.c -- the GEMM back end: the start-up self-test passes with this
 * machine's OpenBLAS kernels, OpenBLAS is left single-threaded, the info
 * strings say what OpenBLAS itself reports and how the core was chosen,
 * and cnp_blas_preferred_coretype() respects a user's OPENBLAS_CORETYPE.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"
#include "engine/kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    cnp_ctx ctx;
    cnp_blas_info bi;
    const char *env = getenv("OPENBLAS_CORETYPE");
    const char *pref;
    char want[256];
    int failed = 0;

    cnp_ctx_clear(&ctx);
    cnp_blas_info_get(&bi);
    if (bi.selftest_ok != -1) {
        fprintf(stderr, "FAIL selftest_ok = %d before cnp_blas_init, want -1\n", bi.selftest_ok);
        failed++;
    }
    if (cnp_blas_init(&ctx) != CNP_OK) {
        fprintf(stderr, "FAIL cnp_blas_init: %s\n", ctx.msg);
        return 1;
    }
    /* A second call is cheap and agrees. */
    if (cnp_blas_init(&ctx) != CNP_OK || ctx.status != CNP_OK) {
        fprintf(stderr, "FAIL second cnp_blas_init: %s\n", ctx.msg);
        failed++;
    }
    cnp_blas_info_get(&bi);
    if (bi.selftest_ok != 1) {
        fprintf(stderr, "FAIL selftest_ok = %d after a passing init\n", bi.selftest_ok);
        failed++;
    }
    if (openblas_get_num_threads() != 1) {
        fprintf(stderr, "FAIL OpenBLAS has %d threads after cnp_blas_init, want 1\n",
                openblas_get_num_threads());
        failed++;
    }
    if (!bi.core || strcmp(bi.core, openblas_get_corename()) != 0 || !bi.library ||
        strcmp(bi.library, openblas_get_config()) != 0) {
        fprintf(stderr, "FAIL info does not repeat OpenBLAS: core '%s', library '%s'\n",
                bi.core ? bi.core : "(null)", bi.library ? bi.library : "(null)");
        failed++;
    }
    if (env && *env && getenv("CANOPY_BLAS_REEXEC"))
        snprintf(want, sizeof want,
                 "re-executed with OPENBLAS_CORETYPE=%s (canopy's choice for this CPU)", env);
    else if (env && *env)
        snprintf(want, sizeof want, "OPENBLAS_CORETYPE=%s set in the environment", env);
    else
        snprintf(want, sizeof want, "autodetected by OpenBLAS");
    if (!bi.selected || strcmp(bi.selected, want) != 0) {
        fprintf(stderr, "FAIL selected = '%s', want '%s'\n", bi.selected ? bi.selected : "(null)",
                want);
        failed++;
    }
    pref = cnp_blas_preferred_coretype();
    if (env && *env && pref) {
        fprintf(stderr, "FAIL preferred core %s although OPENBLAS_CORETYPE=%s is set\n", pref,
                env);
        failed++;
    }
    if (pref && strcmp(pref, "SkylakeX") != 0 && strcmp(pref, "Haswell") != 0) {
        fprintf(stderr, "FAIL preferred core '%s' is not one canopy chooses\n", pref);
        failed++;
    }
    printf("%s core %s (%s), self-test %s, preferred core %s\n", bi.library, bi.core,
           bi.selected, bi.selftest_ok == 1 ? "passed" : "failed", pref ? pref : "(none)");
    return failed ? 1 : 0;
}
