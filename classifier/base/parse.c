/* parse.c -- numbers from the command line, for every command's options. */
#include "base/base.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int cnp_parse_int(cnp_ctx *ctx, const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cnp_error(ctx, CNP_ERR_USAGE, "%s expects a whole number from %d to %d, got '%s'", opt,
                  lo, hi, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int cnp_parse_double(cnp_ctx *ctx, const char *opt, const char *s, double lo, double hi,
                     double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        cnp_error(ctx, CNP_ERR_USAGE, "%s expects a number from %g to %g, got '%s'", opt, lo, hi,
                  s);
        return 0;
    }
    *out = v;
    return 1;
}

int cnp_parse_precision(cnp_ctx *ctx, const char *s, cnp_precision *out)
{
    if (cnp_precision_parse(s, out))
        return 1;
    cnp_error(ctx, CNP_ERR_USAGE, "--precision expects fp32, bf16 or int8, got '%s'", s);
    return 0;
}
