/* info.c -- `canopy info` (being written). */
#include "cli/cli.h"
#include <stdio.h>
int cnp_cmd_info(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "canopy info: not built yet\n");
    return CNP_EXIT_FAILURE;
}
