/* evaluate.c -- `canopy evaluate` (being written). */
#include "cli/cli.h"
#include <stdio.h>
int cnp_cmd_evaluate(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "canopy evaluate: not built yet\n");
    return CNP_EXIT_FAILURE;
}
