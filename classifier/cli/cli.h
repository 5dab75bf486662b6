/* cli.h -- the canopy command line: one function per subcommand, shared
 * helpers. The only code in canopy that prints to stdout or exits.
 *
 * Exit status (documented in README and --help):
 *   0  success (every scene/chip processed)
 *   1  a failure in the data: unreadable or invalid model, scene or chip
 *      (the others of a batch are still processed)
 *   2  usage error (bad option or argument)
 */
#ifndef CNP_CLI_H
#define CNP_CLI_H

#include "base/base.h"
#include "engine/engine.h"
#include "scene/scene.h"

enum { CNP_EXIT_OK = 0, CNP_EXIT_FAILURE = 1, CNP_EXIT_USAGE = 2 };

/* Subcommands: argv[0] is the subcommand name; each returns an exit status. */
int cnp_cmd_info(int argc, char **argv);
int cnp_cmd_predict(int argc, char **argv);
int cnp_cmd_classify(int argc, char **argv);
int cnp_cmd_evaluate(int argc, char **argv);
int cnp_cmd_bench(int argc, char **argv);
int cnp_cmd_alerts(int argc, char **argv);
int cnp_cmd_report(int argc, char **argv);
int cnp_cmd_calibrate(int argc, char **argv);

/* Path of the default model: $CANOPY_MODEL if set, else the demo model
 * installed under pkgdatadir. Static or environment string: do not free. */
const char *cnp_cli_default_model(void);

/* Prints "canopy <cmd>: <message>" for a failed ctx to stderr. */
void cnp_cli_report(const char *cmd, const cnp_ctx *ctx);

/* Prints a usage error ("canopy <cmd>: <msg>; try 'canopy <cmd> --help'")
 * and returns CNP_EXIT_USAGE. */
int cnp_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports a failed cnp_<cmd>_options_new() from its ctx: a CNP_ERR_USAGE
 * status as a usage error (pointing to --help), any other as a failure
 * ("canopy <cmd>: <msg>"). Returns the exit status: CNP_EXIT_USAGE or
 * CNP_EXIT_FAILURE. */
int cnp_cli_options_failed(const char *cmd, const cnp_ctx *ctx);

/* Parses a positive int option value; returns 0 and prints a usage error on
 * failure. */
int cnp_cli_parse_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out);
int cnp_cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* Parses a --precision value, "fp32", "bf16" or "int8", into *p; returns
 * 0 and prints a usage error for anything else. */
int cnp_cli_parse_precision(const char *cmd, const char *s, cnp_precision *p);

/* The options' no_bf16 and no_int8: 1 when the environment sets
 * CANOPY_NO_BF16 (CANOPY_NO_INT8) to anything but "0", so that tests
 * check the fp32 fallback on any CPU. */
void cnp_cli_precision_env(int *no_bf16, int *no_int8);
/* The one line that says a run is fp32 although `asked` was asked for
 * (`ran`: what the result says ran), or NULL when it ran as asked. Static
 * string. */
const char *cnp_cli_precision_fallback(cnp_precision asked, const char *ran);

/* The vector code asked for: `value` (an --isa argument, or NULL when
 * none was given), else the environment's CANOPY_ISA, else CNP_ISA_AUTO;
 * "auto", "avx512", "avx2" or "generic". Returns 0 and prints a usage
 * error for any other name. The library never reads CANOPY_ISA. */
int cnp_cli_isa(const char *cmd, const char *value, cnp_isa *isa);

/* Number of threads: --threads N or all cores. */
int cnp_cli_default_threads(void);

/* Progress of a chip command (evaluate, calibrate), a cnp_progress_fn
 * with a cnp_cli_progress as user: GDAL's terminal progress on a TTY;
 * else the first call's message ("canopy CMD: MSG") and a plain line per
 * 10 % on stderr (cron logs); nothing when quiet. */
typedef struct cnp_cli_progress {
    const char *cmd;
    int quiet, tty, last_decile;
} cnp_cli_progress;

void cnp_cli_progress_init(cnp_cli_progress *p, const char *cmd, int quiet);
int cnp_cli_progress_cb(double done, const char *msg, void *user);

#endif
