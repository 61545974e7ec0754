/* Resolving -m arguments: the bundled model, local paths, and hf: references (downloaded once). */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "download.h"

const char *cli_model_path(const char *ref)
{
    static char path[PATH_MAX];
    if (!ref) {
        const char *d = cli_default_model();
        if (!d) fprintf(stderr, "bitnet: no model given (-m) and the bundled model was not found\n");
        return d;
    }
    if (!dl_is_model_ref(ref)) return ref;
    if (dl_resolve_model_ref(ref, path, sizeof path) != 0) return NULL; /* it printed why */
    return path;
}
