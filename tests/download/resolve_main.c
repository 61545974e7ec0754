/* Test helper: prints what dl_resolve_model_ref() makes of argv[1] (as `bitnet run -m` will). */
#include <limits.h>
#include <stdio.h>

#include "download.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dl_resolve REF\n");
        return 2;
    }
    char path[PATH_MAX];
    int rc = dl_resolve_model_ref(argv[1], path, sizeof path);
    if (rc == DL_OK) printf("%s\n", path);
    return rc;
}
