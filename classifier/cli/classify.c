/* classify.c -- `canopy classify` (being written). */
#include "cli/cli.h"
#include <stdio.h>
int cnp_cmd_classify(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "canopy classify: not built yet\n");
    return CNP_EXIT_FAILURE;
}
