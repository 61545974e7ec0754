#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "cli.h"

int cli_fail(const char *what)
{
    fprintf(stderr, "bitnet: %s: %s\n", what, bitnet_last_error());
    return 1;
}

bool cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "bitnet: %s expects an integer in %ld..%ld, got '%s'\n", opt, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || v != v) {
        fprintf(stderr, "bitnet: %s expects a number, got '%s'\n", opt, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "bitnet: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (f != stdin) fclose(f);
    if (!buf) {
        fprintf(stderr, "bitnet: out of memory reading '%s'\n", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

const char *cli_default_model(void)
{
    static char found[PATH_MAX];
    static const char *rel[] = {
        "/../share/bitnet/models/bitnet-kjv-tiny.gguf", /* installed: <prefix>/bin/bitnet */
        "/../models/bitnet-kjv-tiny.gguf",              /* build folder inside the source tree */
        "/../../models/bitnet-kjv-tiny.gguf",
        "/../../../models/bitnet-kjv-tiny.gguf",
    };
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            char cand[PATH_MAX];
            snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
            if (access(cand, R_OK) == 0 && realpath(cand, found)) return found;
        }
    }
    if (access("models/bitnet-kjv-tiny.gguf", R_OK) == 0 && realpath("models/bitnet-kjv-tiny.gguf", found))
        return found;
    return NULL;
}

bool cli_write_file_atomic(const char *path, const void *data, size_t len)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return false;
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd >= 0) { /* mkstemp makes 0600; give the file the usual mode */
        mode_t um = umask(0);
        umask(um);
        (void)fchmod(fd, 0666 & ~um);
    }
    if (fd < 0) {
        fprintf(stderr, "bitnet: cannot create a file beside '%s': %s\n", path, strerror(errno));
        free(tmp);
        return false;
    }
    const char *p = data;
    size_t left = len;
    bool ok = true;
    while (left > 0 && ok) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = false;
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    if (ok && fsync(fd) != 0) ok = false;
    if (close(fd) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        fprintf(stderr, "bitnet: cannot write '%s': %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool cli_parse_head(const char *s, uint32_t *type)
{
    if (!strcmp(s, "q8_0")) *type = 8;
    else if (!strcmp(s, "q6_k")) *type = 14;
    else if (!strcmp(s, "keep")) *type = 0;
    else {
        fprintf(stderr, "bitnet: --head expects q8_0, q6_k or keep, got '%s'\n", s);
        return false;
    }
    return true;
}

bool cli_parse_kv(const char *s, bitnet_kv_type *kv_type)
{
    if (!strcmp(s, "f16")) *kv_type = BITNET_KV_F16;
    else if (!strcmp(s, "f32")) *kv_type = BITNET_KV_F32;
    else {
        fprintf(stderr, "bitnet: --kv expects f16 or f32, got '%s'\n", s);
        return false;
    }
    return true;
}
