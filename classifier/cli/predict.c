/* predict.c -- `canopy predict` (being written). */
#include "cli/cli.h"
#include <stdio.h>
int cnp_cmd_predict(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "canopy predict: not built yet\n");
    return CNP_EXIT_FAILURE;
}
