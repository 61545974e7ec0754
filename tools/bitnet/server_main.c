/* bitnet-server: the same server as `bitnet serve`, as a program of its own. */
#include "cli.h"

int main(int argc, char **argv)
{
    return cmd_serve(argc, argv);
}
