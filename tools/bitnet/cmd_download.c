/* Placeholder until this subcommand lands (see the issue that owns it). */
#include <stdio.h>

#include "cli.h"

int cmd_download(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "bitnet: '%s' is not implemented yet\n", argv[0]);
    return 2;
}
