/* bitnet download: fetch one file of a Hugging Face repository into the cache (download.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

#include "cli.h"
#include "download.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet download [--id REPO] [--file NAME] [--rev REV] [--sha256 HEX] [--out DIR]\n"
            "                       [--base-url URL] [--no-progress] [--verbose]\n"
            "\n"
            "Downloads one file of a Hugging Face repository and prints its local path.  An interrupted\n"
            "download resumes from NAME.part; a finished file is checked against its SHA-256 before it\n"
            "appears under its name; a cached file is revalidated with its ETag (not downloaded again).\n"
            "\n"
            "options:\n"
            "  --id REPO       repository OWNER/NAME (default " DL_DEFAULT_REPO ")\n"
            "  --file NAME     file in the repository; may contain '/', never '..' or a leading '/'\n"
            "                  (default " DL_DEFAULT_FILE ")\n"
            "  --rev REV       branch, tag or commit (default " DL_DEFAULT_REV ")\n"
            "  --sha256 HEX    expected SHA-256; without it the server's X-Linked-Etag or ETag is used\n"
            "                  when that is a SHA-256, else the file is not verified\n"
            "  --out DIR       save as DIR/NAME instead of CACHE/OWNER--NAME/REV/NAME\n"
            "  --base-url URL  server; files come from URL/REPO/resolve/REV/NAME\n"
            "                  (default $HF_ENDPOINT, else " DL_DEFAULT_BASE_URL ")\n"
            "  --no-progress   no progress bar (it is drawn on stderr only when that is a terminal)\n"
            "  --verbose       print each request, response and the file's SHA-256\n"
            "  -h, --help      this text\n"
            "\n"
            "environment:\n"
            "  HF_TOKEN              sent as 'Authorization: Bearer', only to the first URL's scheme,\n"
            "                        host and port (never to another host after a redirect)\n"
            "  BITNET_CACHE          cache folder (else $XDG_CACHE_HOME/bitnet, else ~/.cache/bitnet)\n"
            "  HTTPS_PROXY, HTTP_PROXY, NO_PROXY   proxies\n"
            "  BITNET_DL_RETRIES     retries after a transient failure (default 5)\n"
            "  BITNET_DL_BACKOFF_MS  first retry delay, doubling up to 30 s (default 1000); a 429 or 503\n"
            "                        response's Retry-After is used instead when present\n"
            "  BITNET_DL_STALL_S     seconds without data before a transfer counts as failed (default 60)\n"
            "\n"
            "exit status:\n"
            "  0 success   1 other failure (e.g. not found)   2 bad usage or file name   10 no space\n"
            "  11 authentication   12 rate limited   13 SHA-256 mismatch   14 network\n"
            "  130 interrupted (the .part is kept; run the same command again to resume)\n");
}

int cmd_download(int argc, char **argv)
{
    dl_request req = {.progress = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-progress")) {
            req.progress = false;
            continue;
        }
        if (!strcmp(a, "--verbose")) {
            req.verbose = true;
            continue;
        }
        static const char *valued[] = {"--id", "--file", "--rev", "--sha256", "--out", "--base-url"};
        const char **dst[] = {&req.repo, &req.file, &req.rev, &req.sha256, &req.out_dir, &req.base_url};
        size_t k = 0, nv = sizeof valued / sizeof valued[0];
        const char *val = NULL;
        for (; k < nv; k++) {
            size_t n = strlen(valued[k]);
            if (!strncmp(a, valued[k], n) && a[n] == '=') {
                val = a + n + 1;
                break;
            }
            if (!strcmp(a, valued[k])) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "bitnet: %s needs a value\n", a);
                    return 2;
                }
                val = argv[++i];
                break;
            }
        }
        if (k == nv) {
            fprintf(stderr, "bitnet: download: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        *dst[k] = val;
    }
    if (req.out_dir && !*req.out_dir) {
        fprintf(stderr, "bitnet: --out needs a folder\n");
        return 2;
    }
    char path[PATH_MAX];
    int rc = dl_fetch(&req, path, sizeof path);
    if (rc == DL_OK) printf("%s\n", path);
    return rc;
}
