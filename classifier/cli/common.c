/* common.c -- helpers shared by the subcommands. */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "pipeline/pipeline.h"

#include <cpl_progress.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CNP_PKGDATADIR
#define CNP_PKGDATADIR "/usr/local/share/canopy"
#endif

const char *cnp_cli_default_model(void)
{
    const char *env = getenv("CANOPY_MODEL");
    if (env && *env)
        return env;
    return CNP_PKGDATADIR "/canopy-demo.onnx";
}

void cnp_cli_report(const char *cmd, const cnp_ctx *ctx)
{
    fprintf(stderr, "canopy %s: %s\n", cmd,
            ctx && ctx->msg[0] ? ctx->msg : cnp_status_name(ctx ? ctx->status : CNP_ERR_INTERNAL));
}

int cnp_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "canopy %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; try 'canopy %s --help'\n", cmd);
    return CNP_EXIT_USAGE;
}

int cnp_cli_options_failed(const char *cmd, const cnp_ctx *ctx)
{
    if (ctx && ctx->status == CNP_ERR_USAGE)
        return cnp_cli_usage_error(cmd, "%s", ctx->msg);
    cnp_cli_report(cmd, ctx);
    return CNP_EXIT_FAILURE;
}

int cnp_cli_parse_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out)
{
    cnp_ctx ctx;
    cnp_ctx_clear(&ctx);
    if (cnp_parse_int(&ctx, opt, s, lo, hi, out))
        return 1;
    cnp_cli_usage_error(cmd, "%s", ctx.msg);
    return 0;
}

int cnp_cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                         double *out)
{
    cnp_ctx ctx;
    cnp_ctx_clear(&ctx);
    if (cnp_parse_double(&ctx, opt, s, lo, hi, out))
        return 1;
    cnp_cli_usage_error(cmd, "%s", ctx.msg);
    return 0;
}

int cnp_cli_parse_precision(const char *cmd, const char *s, cnp_precision *p)
{
    if (cnp_precision_parse(s, p))
        return 1;
    cnp_cli_usage_error(cmd, "--precision expects fp32, bf16 or int8, got '%s'", s);
    return 0;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

void cnp_cli_precision_env(int *no_bf16, int *no_int8)
{
    *no_bf16 = env_set("CANOPY_NO_BF16");
    *no_int8 = env_set("CANOPY_NO_INT8");
}

const char *cnp_cli_precision_fallback(cnp_precision asked, const char *ran)
{
    int no_bf16, no_int8;
    cnp_cli_precision_env(&no_bf16, &no_int8);
    /* The CPU can (and CANOPY_NO_* does not pretend otherwise): the path
     * --isa or CANOPY_ISA chose has no such kernels. */
    if (asked == CNP_PRECISION_BF16 && strcmp(ran, "bf16") != 0)
        return !no_bf16 && cnp_engine_bf16_available()
                   ? "--precision bf16: bf16 runs on the AVX-512 path only, not on the one "
                     "--isa or CANOPY_ISA chose; running in fp32"
                   : "--precision bf16: this CPU has no AVX512_BF16; running in fp32";
    if (asked == CNP_PRECISION_INT8 && strcmp(ran, "int8") != 0)
        return !no_int8 && cnp_engine_int8_available()
                   ? "--precision int8: int8 runs on the AVX-512 path only, not on the one "
                     "--isa or CANOPY_ISA chose; running in fp32"
                   : "--precision int8: this CPU has no AVX512_VNNI; running in fp32";
    return NULL;
}


int cnp_cli_isa(const char *cmd, const char *value, cnp_isa *isa)
{
    const char *env = getenv("CANOPY_ISA");
    const char *s = value ? value : env && *env ? env : "auto";
    if (cnp_isa_parse(s, isa))
        return 1;
    cnp_cli_usage_error(cmd, "%s expects auto, avx512, avx2 or generic, got '%s'",
                        value ? "--isa" : "CANOPY_ISA", s);
    return 0;
}

int cnp_cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0)
        return atoi(env);
    return n > 0 ? (int)n : 1;
}

void cnp_cli_progress_init(cnp_cli_progress *p, const char *cmd, int quiet)
{
    p->cmd = cmd;
    p->quiet = quiet;
    p->tty = isatty(STDOUT_FILENO); /* GDALTermProgress writes to stdout */
    p->last_decile = 0;
}

int cnp_cli_progress_cb(double done, const char *msg, void *user)
{
    cnp_cli_progress *p = user;
    if (p->quiet)
        return 1;
    if (done <= 0.0 && msg && !p->tty)
        fprintf(stderr, "canopy %s: %s\n", p->cmd, msg);
    if (p->tty) {
        GDALTermProgress(done, NULL, NULL);
    } else {
        int d = (int)(done * 10.0 + 1e-9);
        if (d > p->last_decile) {
            p->last_decile = d;
            fprintf(stderr, "canopy %s: %d%% (%s)\n", p->cmd, d * 10, msg ? msg : "");
        }
    }
    return 1;
}
