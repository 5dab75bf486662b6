/* test_blas.c -- the GEMM back end: the start-up self-test passes with this
 * machine's OpenBLAS kernels, OpenBLAS is left single-threaded, the info
 * strings say what OpenBLAS itself reports and how the core was chosen,
 * and cnp_blas_preferred_coretype() respects a user's OPENBLAS_CORETYPE.
 * OpenBLAS reads OPENBLAS_CORETYPE when it loads, so the same checks run
 * again in child processes of this program started with the variable
 * unset (autodetection) and as canopy's re-execution sets it (SkylakeX
 * kernels, where the CPU has AVX-512).
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"
#include "engine/kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs this program again (argv0 --child) with OPENBLAS_CORETYPE set to
 * `core` (NULL: unset) and CANOPY_BLAS_REEXEC set when `reexec`; returns
 * its exit status, or 99 when it cannot run. */
static int run_child(const char *argv0, const char *core, int reexec)
{
    pid_t pid = fork();
    int status;
    if (pid < 0)
        return 99;
    if (pid == 0) {
        char *args[3];
        args[0] = (char *)argv0;
        args[1] = (char *)"--child";
        args[2] = NULL;
        if (core)
            setenv("OPENBLAS_CORETYPE", core, 1);
        else
            unsetenv("OPENBLAS_CORETYPE");
        if (reexec)
            setenv("CANOPY_BLAS_REEXEC", "1", 1);
        else
            unsetenv("CANOPY_BLAS_REEXEC");
        execv("/proc/self/exe", args);
        _exit(99);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 99;
    return WEXITSTATUS(status);
}

static int checks(void)
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
    pref = cnp_blas_preferred_coretype(env);
    if (env && *env && pref) {
        fprintf(stderr, "FAIL preferred core %s although OPENBLAS_CORETYPE=%s is set\n", pref,
                env);
        failed++;
    }
    if (!(env && *env)) {
        /* Autodetected: an AVX2/AVX-512 core needs nothing; on a fallback
         * core an AVX-512 CPU should get SkylakeX. */
        static const char *const good[] = { "SkylakeX", "Cooperlake", "SapphireRapids",
                                             "Haswell", "Zen" };
        int is_good = 0;
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
            is_good |= !strcasecmp(bi.core, good[i]);
        __builtin_cpu_init();
        if (is_good && pref) {
            fprintf(stderr, "FAIL preferred core %s although OpenBLAS runs %s\n", pref, bi.core);
            failed++;
        }
        if (!is_good && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
            (!pref || strcmp(pref, "SkylakeX") != 0)) {
            fprintf(stderr, "FAIL OpenBLAS fell back to %s on an AVX-512 CPU, preferred core %s\n",
                    bi.core, pref ? pref : "(none)");
            failed++;
        }
    }
    if (pref && strcmp(pref, "SkylakeX") != 0 && strcmp(pref, "Haswell") != 0) {
        fprintf(stderr, "FAIL preferred core '%s' is not one canopy chooses\n", pref);
        failed++;
    }
    if (env && *env && getenv("CANOPY_BLAS_REEXEC") && strcasecmp(bi.core, env) != 0) {
        fprintf(stderr, "FAIL re-executed with OPENBLAS_CORETYPE=%s but OpenBLAS runs %s\n", env,
                bi.core);
        failed++;
    }
    printf("%s core %s (%s), self-test %s, preferred core %s\n", bi.library, bi.core,
           bi.selected, bi.selftest_ok == 1 ? "passed" : "failed", pref ? pref : "(none)");
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int rc;
    if (argc > 1 && !strcmp(argv[1], "--child"))
        return checks();
    rc = checks();
    if (rc == 0) {
        printf("# OPENBLAS_CORETYPE unset:\n");
        fflush(stdout);
        rc = run_child(argv[0], NULL, 0);
    }
    if (rc == 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
            printf("# as canopy re-executes itself on this CPU:\n");
            fflush(stdout);
            rc = run_child(argv[0], "SkylakeX", 1);
        }
    }
    return rc;
}
