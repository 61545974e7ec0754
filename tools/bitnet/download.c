/* Resumable, verified, atomic downloads (see download.h and docs/download.md).
 *
 * One download, under an exclusive lock on NAME.lock:
 *   1. A cached NAME with a NAME.meta sidecar is revalidated: its ETag goes out as If-None-Match,
 *      and a 304 (or a first response carrying the same ETag) means it is current.
 *   2. Otherwise data is appended to NAME.part; a non-empty .part is continued with a Range
 *      request whose Content-Range must match exactly, or the .part starts again from zero.
 *   3. Redirects are followed by hand so that the token only goes to the first URL's origin.
 *   4. Transient failures are retried (Retry-After for 429/503, else capped exponential backoff).
 *   5. The complete .part is fsynced, its SHA-256 checked, and only then renamed to NAME.
 * Every file is opened relative to the destination folder's descriptor, by names validated
 * here, so nothing from the command line or the server can reach outside that folder. */
#include "download.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "bitnet.h"

#define DL_MAX_HOPS 10
#define DL_ETAG_MAX 256
#define DL_URL_MAX 8192
#define DL_NAME_MAX 200      /* per path component, leaving room for ".part.meta.tmp" */
#define DL_FILE_MAX 1024
#define DL_REV_MAX 80        /* percent-encoded it stays under NAME_MAX */
#define DL_BACKOFF_CAP_MS 30000L
#define DL_RETRY_AFTER_CAP_MS 300000L

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    g_interrupted = sig;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bitnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- names -------------------------------------------------------------------------------- */

static bool is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

const char *dl_check_repo(const char *repo)
{
    if (!repo || !*repo) return "the repository name is empty";
    if (strlen(repo) > 2 * 96 + 1) return "the repository name is too long";
    if (strstr(repo, "--") || strstr(repo, ".."))
        return "repository names may not contain '--' or '..'";
    int slashes = 0;
    for (const char *p = repo; *p; p++) {
        if (*p == '/') {
            slashes++;
            continue;
        }
        if (!is_name_char((unsigned char)*p))
            return "repository names use only letters, digits, '-', '_', '.' and one '/'";
    }
    if (slashes > 1) return "expected OWNER/NAME";
    /* each part: not empty, no leading or trailing '-' or '.' */
    const char *part = repo;
    for (;;) {
        const char *end = strchr(part, '/');
        size_t n = end ? (size_t)(end - part) : strlen(part);
        if (n == 0) return "expected OWNER/NAME";
        if (n > 96) return "the repository name is too long";
        if (part[0] == '-' || part[0] == '.' || part[n - 1] == '-' || part[n - 1] == '.')
            return "repository names may not start or end with '-' or '.'";
        if (!end) break;
        part = end + 1;
    }
    return NULL;
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

const char *dl_check_file(const char *file)
{
    if (!file || !*file) return "the file name is empty";
    if (file[0] == '/') return "absolute file names are not allowed";
    if (strlen(file) > DL_FILE_MAX) return "the file name is too long";
    for (const unsigned char *p = (const unsigned char *)file; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return "file names may not contain control characters or '\\'";
    const char *part = file;
    for (;;) {
        const char *end = strchr(part, '/');
        size_t n = end ? (size_t)(end - part) : strlen(part);
        if (n == 0) return "file names may not contain empty parts ('//' or a trailing '/')";
        if ((n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.'))
            return "file names may not contain '.' or '..' parts";
        if (n > DL_NAME_MAX) return "a part of the file name is too long";
        if (!end) {
            static const char *reserved[] = {".part", ".lock", ".meta", ".tmp"};
            for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
                if (has_suffix(part, n, reserved[i]))
                    return "file names ending in .part, .lock, .meta or .tmp are reserved for the downloader";
            break;
        }
        part = end + 1;
    }
    return NULL;
}

const char *dl_check_rev(const char *rev)
{
    if (!rev || !*rev) return "the revision is empty";
    if (strlen(rev) > DL_REV_MAX) return "the revision is too long";
    if (!strcmp(rev, ".") || !strcmp(rev, "..")) return "the revision may not be '.' or '..'";
    for (const unsigned char *p = (const unsigned char *)rev; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return "the revision may not contain control characters";
    return NULL;
}

bool dl_percent_encode(const char *s, bool keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_name_char(*p) || *p == '~' || (keep_slash && *p == '/')) {
            if (o + 1 >= cap) return false;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= cap) return false;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= cap) return false;
    out[o] = '\0';
    return true;
}

bool dl_cache_root(char *out, size_t cap)
{
    const char *v = getenv("BITNET_CACHE");
    int n;
    if (v && *v) {
        n = snprintf(out, cap, "%s", v);
    } else if ((v = getenv("XDG_CACHE_HOME")) && v[0] == '/') { /* XDG: relative values are ignored */
        n = snprintf(out, cap, "%s/bitnet", v);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home || !*home) return false;
        n = snprintf(out, cap, "%s/.cache/bitnet", home);
    }
    return n > 0 && (size_t)n < cap;
}

/* ---- header values ------------------------------------------------------------------------ */

static bool parse_u63(const char **pp, int64_t *out)
{
    const char *p = *pp;
    if (*p < '0' || *p > '9') return false;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    *pp = p;
    *out = v;
    return true;
}

bool dl_parse_content_range(const char *s, int64_t *start, int64_t *end, int64_t *total)
{
    if (!s) return false;
    while (*s == ' ' || *s == '\t') s++;
    if (strncasecmp(s, "bytes", 5)) return false;
    s += 5;
    if (*s != ' ') return false;
    while (*s == ' ') s++;
    int64_t a = -1, b = -1, t = -1;
    if (*s == '*') {
        s++;
    } else {
        if (!parse_u63(&s, &a) || *s++ != '-' || !parse_u63(&s, &b) || b < a) return false;
    }
    if (*s++ != '/') return false;
    if (*s == '*') {
        s++;
        if (a < 0) return false; /* "*" / "*" says nothing */
    } else if (!parse_u63(&s, &t) || (a >= 0 && b >= t)) {
        return false;
    }
    while (*s == ' ' || *s == '\t') s++;
    if (*s) return false;
    *start = a;
    *end = b;
    *total = t;
    return true;
}

long dl_parse_retry_after(const char *s, long now_s)
{
    if (!s) return -1;
    while (*s == ' ') s++;
    if (!*s) return -1;
    if (*s >= '0' && *s <= '9') {
        int64_t v;
        if (!parse_u63(&s, &v)) return -1;
        while (*s == ' ') s++;
        if (*s) return -1;
        return v > 86400 ? 86400000L : (long)v * 1000L;
    }
    time_t t = curl_getdate(s, NULL);
    if (t == (time_t)-1) return -1;
    long d = (long)(t - now_s);
    if (d < 0) d = 0;
    return d > 86400 ? 86400000L : d * 1000L;
}

bool dl_etag_sha256(const char *etag, char out[65])
{
    if (!etag) return false;
    if (!strncmp(etag, "W/", 2)) etag += 2;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    if (n != 64) return false;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)etag[i])) return false;
        out[i] = (char)tolower((unsigned char)etag[i]);
    }
    out[64] = '\0';
    return true;
}

static bool copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap) return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

bool dl_is_model_ref(const char *ref)
{
    return ref && !strncmp(ref, "hf:", 3);
}

bool dl_parse_model_ref(const char *ref, char *repo, size_t repo_cap, char *rev, size_t rev_cap,
                        char *file, size_t file_cap, const char **why)
{
    *why = "expected hf:OWNER/NAME[@REV]/FILE";
    if (!dl_is_model_ref(ref)) return false;
    const char *s = ref + 3;
    const char *s1 = strchr(s, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!s1 || !s2 || !s2[1]) return false;
    const char *at = memchr(s1 + 1, '@', (size_t)(s2 - s1 - 1));
    const char *repo_end = at ? at : s2;
    if (!copy_str(repo, repo_cap, s, (size_t)(repo_end - s))) return false;
    if (at) {
        if (!copy_str(rev, rev_cap, at + 1, (size_t)(s2 - at - 1))) return false;
    } else if (!copy_str(rev, rev_cap, DL_DEFAULT_REV, strlen(DL_DEFAULT_REV))) {
        return false;
    }
    if (!copy_str(file, file_cap, s2 + 1, strlen(s2 + 1))) return false;
    if ((*why = dl_check_repo(repo)) || (*why = dl_check_rev(rev)) || (*why = dl_check_file(file))) return false;
    *why = NULL;
    return true;
}

bool dl_sha256_file(int fd, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    bool ok = ctx && buf && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    off_t off = 0;
    while (ok) {
        ssize_t n = pread(fd, buf, 1 << 20, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ok = false;
        if (n <= 0) break;
        ok = EVP_DigestUpdate(ctx, buf, (size_t)n) == 1;
        off += n;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    if (ok)
        for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return ok;
}

/* ---- the download ------------------------------------------------------------------------- */

typedef struct dl_meta {
    char etag[DL_ETAG_MAX];
    char sha256[65];
    int64_t size;
} dl_meta;

typedef enum { TRY_DONE, TRY_UP_TO_DATE, TRY_RESTART, TRY_RETRY, TRY_FATAL } try_result;

typedef struct dl_job {
    const dl_request *req;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    char url0[DL_URL_MAX];
    char origin0[512];
    const char *token;
    int dirfd, lock_fd, part_fd;
    char name[DL_NAME_MAX + 1], part_name[DL_NAME_MAX + 16], lock_name[DL_NAME_MAX + 16];
    char meta_name[DL_NAME_MAX + 16], part_meta_name[DL_NAME_MAX + 16];
    char final_path[PATH_MAX];
    char user_sha[65];

    bool revalidating;      /* the final file exists with metadata: send If-None-Match */
    dl_meta meta;           /* the final file's */
    char part_etag[DL_ETAG_MAX];
    int64_t part_size;      /* bytes in the .part */
    bool resumed;           /* the .part holds data from an earlier transfer */

    /* per try */
    bool ident_seen;
    char ident_etag[DL_ETAG_MAX]; /* X-Linked-Etag or ETag of the first response carrying one */
    char linked_sha[65], etag_sha[65];
    int64_t expect_total;   /* file size announced for the body being received; -1 unknown */

    /* per response */
    long status;
    int64_t content_length;
    char etag[DL_ETAG_MAX], linked_etag[DL_ETAG_MAX];
    char content_range[128], retry_after[128], error_message[256];
    bool body_ok;           /* a 200/206 accepted: its body goes to the .part */

    /* set inside callbacks to stop the transfer */
    bool up_to_date, range_mismatch, no_space;
    int io_errno;
    char why[700];

    /* progress */
    bool progress, drawn;
    double t_start, t_drawn;
    int64_t size_at_start;
} dl_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *human(double b, char *buf, size_t cap)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
    return buf;
}

static void progress_draw(dl_job *j, bool final)
{
    double t = now_s();
    if (!final && t - j->t_drawn < 0.2) return;
    j->t_drawn = t;
    double el = t - j->t_start;
    double rate = el > 0.05 ? (double)(j->part_size - j->size_at_start) / el : 0;
    char a[32], b[32], r[32], line[160];
    if (j->expect_total > 0) {
        double frac = (double)j->part_size / (double)j->expect_total;
        if (frac > 1) frac = 1;
        char bar[26];
        int fill = (int)(frac * 24);
        for (int i = 0; i < 24; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[24] = '\0';
        char eta[32] = "--:--";
        if (rate > 0) {
            long s = (long)((double)(j->expect_total - j->part_size) / rate);
            if (s < 360000) snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
        }
        snprintf(line, sizeof line, "[%s] %5.1f%%  %s / %s  %s/s  ETA %s", bar, frac * 100,
                 human((double)j->part_size, a, sizeof a), human((double)j->expect_total, b, sizeof b),
                 human(rate, r, sizeof r), eta);
    } else {
        snprintf(line, sizeof line, "%s  %s/s", human((double)j->part_size, a, sizeof a), human(rate, r, sizeof r));
    }
    fprintf(stderr, "\r%-78s", line);
    j->drawn = true;
    if (final) {
        fputc('\n', stderr);
        j->drawn = false;
    }
    fflush(stderr);
}

static void progress_end(dl_job *j)
{
    if (j->drawn) progress_draw(j, true);
}

/* ---- sidecar files -------------------------------------------------------------------------- */

static bool meta_read(dl_job *j, const char *name, dl_meta *m)
{
    memset(m, 0, sizeof *m);
    m->size = -1;
    int fd = openat(j->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (!next) return false; /* a torn file: every line ends with '\n' */
        *next++ = '\0';
        char *val = strchr(line, ' ');
        if (!val) continue;
        *val++ = '\0';
        if (!strcmp(line, "etag")) snprintf(m->etag, sizeof m->etag, "%s", val);
        else if (!strcmp(line, "sha256") && strlen(val) == 64) memcpy(m->sha256, val, 65);
        else if (!strcmp(line, "size")) {
            const char *p = val;
            if (!parse_u63(&p, &m->size) || *p) m->size = -1;
        }
    }
    return true;
}

/* Writes NAME.tmp, fsyncs it and renames it over NAME. */
static bool meta_write(dl_job *j, const char *name, const dl_meta *m)
{
    char tmp[DL_NAME_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "etag %s\nsha256 %s\nsize %" PRId64 "\nurl %.600s\n", m->etag, m->sha256,
                     m->size, j->url0);
    bool ok = n > 0 && (size_t)n < sizeof buf && write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok) ok = renameat(j->dirfd, tmp, j->dirfd, name) == 0;
    if (!ok) unlinkat(j->dirfd, tmp, 0);
    return ok;
}

static void set_part_etag(dl_job *j, const char *etag)
{
    if (!strcmp(j->part_etag, etag)) return;
    snprintf(j->part_etag, sizeof j->part_etag, "%s", etag);
    if (!*etag) {
        unlinkat(j->dirfd, j->part_meta_name, 0);
        return;
    }
    dl_meta m = {.size = -1};
    snprintf(m.etag, sizeof m.etag, "%s", etag);
    meta_write(j, j->part_meta_name, &m); /* best effort: without it a resume merely skips If-Range */
}

static bool truncate_part(dl_job *j)
{
    if (ftruncate(j->part_fd, 0) != 0 || lseek(j->part_fd, 0, SEEK_SET) != 0) {
        j->io_errno = errno;
        return false;
    }
    j->part_size = 0;
    j->resumed = false;
    return true;
}

/* ---- curl callbacks ------------------------------------------------------------------------ */

static void store_header(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v);
}

/* Called once a response's headers are complete; false stops the transfer. */
static bool on_headers_done(dl_job *j)
{
    const char *id = j->linked_etag[0] ? j->linked_etag : j->etag;
    if (!j->ident_seen && id[0]) {
        j->ident_seen = true;
        snprintf(j->ident_etag, sizeof j->ident_etag, "%s", id);
        if (j->revalidating && j->status != 304 && !strcmp(id, j->meta.etag)) {
            j->up_to_date = true;
            return false;
        }
    }
    char sha[65];
    if (!j->linked_sha[0] && dl_etag_sha256(j->linked_etag, sha)) memcpy(j->linked_sha, sha, 65);
    if (!j->etag_sha[0] && dl_etag_sha256(j->etag, sha)) memcpy(j->etag_sha, sha, 65);

    if (j->status == 200) {
        if (j->part_size > 0) {
            if (j->req->verbose) say("the server sent the whole file; starting again from zero");
            if (!truncate_part(j)) return false;
        }
        j->expect_total = j->content_length;
    } else if (j->status == 206) {
        int64_t a, b, t;
        if (!dl_parse_content_range(j->content_range, &a, &b, &t) || a != j->part_size || t < 0 || b != t - 1 ||
            (j->content_length >= 0 && j->content_length != b - a + 1)) {
            snprintf(j->why, sizeof j->why, "Content-Range '%s' does not continue the %" PRId64 " bytes held",
                     j->content_range, j->part_size);
            j->range_mismatch = true;
            return false;
        }
        if (j->part_etag[0] && j->etag[0] && strcmp(j->part_etag, j->etag)) {
            snprintf(j->why, sizeof j->why, "the file changed on the server (ETag %s, was %s)", j->etag,
                     j->part_etag);
            j->range_mismatch = true;
            return false;
        }
        j->expect_total = t;
        if (a > 0) j->resumed = true;
    } else {
        return true; /* redirects and errors: their bodies are dropped */
    }
    if (j->status == 200 || j->etag[0]) set_part_etag(j, j->etag); /* the .part's version, for If-Range */
    int64_t need = j->expect_total - j->part_size;
    struct statvfs sv;
    if (need > 0 && fstatvfs(j->part_fd, &sv) == 0 && sv.f_blocks > 0 &&
        (double)sv.f_bavail * (double)sv.f_frsize < (double)need) {
        char h1[32], h2[32];
        snprintf(j->why, sizeof j->why, "%s more is needed, %s is free", human((double)need, h1, sizeof h1),
                 human((double)sv.f_bavail * (double)sv.f_frsize, h2, sizeof h2));
        j->no_space = true;
        return false;
    }
    j->body_ok = true;
    j->t_start = now_s();
    j->size_at_start = j->part_size;
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    dl_job *j = ud;
    size_t len = size * nitems;
    char line[1024];
    size_t n = len < sizeof line ? len : sizeof line - 1;
    memcpy(line, buf, n);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    line[n] = '\0';

    if (!strncmp(line, "HTTP/", 5)) { /* a new response (after 1xx, or the next hop) */
        const char *sp = strchr(line, ' ');
        j->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        j->content_length = -1;
        j->etag[0] = j->linked_etag[0] = j->content_range[0] = j->retry_after[0] = j->error_message[0] = '\0';
        j->body_ok = false;
        return len;
    }
    if (n == 0) {
        if (j->status >= 200 && !on_headers_done(j)) return 0;
        return len;
    }
    char *colon = strchr(line, ':');
    if (!colon) return len;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t vn = strlen(v);
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) v[--vn] = '\0';
    if (!strcasecmp(line, "etag")) store_header(j->etag, sizeof j->etag, v);
    else if (!strcasecmp(line, "x-linked-etag")) store_header(j->linked_etag, sizeof j->linked_etag, v);
    else if (!strcasecmp(line, "content-range")) store_header(j->content_range, sizeof j->content_range, v);
    else if (!strcasecmp(line, "retry-after")) store_header(j->retry_after, sizeof j->retry_after, v);
    else if (!strcasecmp(line, "x-error-message")) store_header(j->error_message, sizeof j->error_message, v);
    else if (!strcasecmp(line, "content-length")) {
        const char *p = v;
        if (!parse_u63(&p, &j->content_length) || *p) j->content_length = -1;
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    dl_job *j = ud;
    size_t len = size * nmemb;
    if (!j->body_ok) return len;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(j->part_fd, p + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG) {
                j->no_space = true;
                snprintf(j->why, sizeof j->why, "%s", strerror(errno));
            } else {
                j->io_errno = errno;
            }
            return 0;
        }
        off += (size_t)w;
        j->part_size += w;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    dl_job *j = ud;
    if (g_interrupted) return 1;
    if (j->progress && j->body_ok) progress_draw(j, false);
    return 0;
}

/* ---- one request ----------------------------------------------------------------------------- */

/* "scheme://host:port", lowercase; false if the URL is not http(s). */
static bool url_origin(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) ok = !strcasecmp(scheme, "http") || !strcasecmp(scheme, "https");
    if (ok) {
        int n = snprintf(out, cap, "%s://%s:%s", scheme, host, port);
        ok = n > 0 && (size_t)n < cap;
        for (char *c = out; ok && *c; c++) *c = (char)tolower((unsigned char)*c);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

static CURLcode perform_hop(dl_job *j, const char *url, bool send_token)
{
    struct curl_slist *hdr = NULL, *t;
    char buf[DL_ETAG_MAX + 64];
    bool ok = true;
#define ADD_HEADER(...)                                               \
    do {                                                              \
        snprintf(buf, sizeof buf, __VA_ARGS__);                       \
        if (!(t = curl_slist_append(hdr, buf))) ok = false;           \
        else hdr = t;                                                 \
    } while (0)
    if (send_token && j->token) {
        size_t n = strlen(j->token) + 32;
        char *auth = malloc(n);
        if (auth) {
            snprintf(auth, n, "Authorization: Bearer %s", j->token);
            if ((t = curl_slist_append(hdr, auth))) hdr = t;
            else ok = false;
            free(auth);
        } else {
            ok = false;
        }
    }
    if (j->part_size > 0) {
        ADD_HEADER("Range: bytes=%" PRId64 "-", j->part_size);
        if (j->part_etag[0] && strncmp(j->part_etag, "W/", 2)) ADD_HEADER("If-Range: %s", j->part_etag);
    }
    if (j->revalidating) ADD_HEADER("If-None-Match: %s", j->meta.etag);
#undef ADD_HEADER
    if (!ok) {
        curl_slist_free_all(hdr);
        return CURLE_OUT_OF_MEMORY;
    }
    /* curl reads http_proxy (lowercase only) for http URLs; HTTP_PROXY is honoured too. */
    const char *proxy = NULL;
    if (!strncasecmp(url, "http://", 7) && !getenv("http_proxy")) proxy = getenv("HTTP_PROXY");
    curl_easy_setopt(j->curl, CURLOPT_PROXY, proxy && *proxy ? proxy : NULL);
    curl_easy_setopt(j->curl, CURLOPT_URL, url);
    curl_easy_setopt(j->curl, CURLOPT_HTTPHEADER, hdr);
    if (j->req->verbose)
        say("GET %s%s%s", url, send_token && j->token ? " (with token)" : "", j->part_size > 0 ? " (resuming)" : "");
    j->status = 0;
    j->body_ok = false;
    j->errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(j->curl);
    curl_easy_setopt(j->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    if (j->req->verbose && j->status) say("  -> HTTP %ld", j->status);
    return rc;
}

/* One attempt from the first URL through its redirects.  *code is the exit code for TRY_FATAL
 * and TRY_RETRY; *wait_ms a server-requested delay (or -1). */
static try_result one_try(dl_job *j, int *code, long *wait_ms)
{
    struct stat st;
    if (fstat(j->part_fd, &st) != 0) {
        say("%s.part: %s", j->final_path, strerror(errno));
        *code = DL_EFAIL;
        return TRY_FATAL;
    }
    j->part_size = st.st_size;
    if (lseek(j->part_fd, 0, SEEK_END) < 0) {
        *code = DL_EFAIL;
        return TRY_FATAL;
    }
    j->ident_seen = false;
    j->linked_sha[0] = j->etag_sha[0] = '\0';
    j->expect_total = -1;
    j->up_to_date = j->range_mismatch = j->no_space = false;
    j->io_errno = 0;
    j->why[0] = '\0';
    *wait_ms = -1;

    char *url = malloc(DL_URL_MAX);
    if (!url) {
        *code = DL_EFAIL;
        return TRY_FATAL;
    }
    snprintf(url, DL_URL_MAX, "%s", j->url0);
    try_result res = TRY_FATAL;
    *code = DL_ENET;
    for (int hop = 0;; hop++) {
        if (hop > DL_MAX_HOPS) {
            say("more than %d redirects from %s", DL_MAX_HOPS, j->url0);
            break;
        }
        char origin[512];
        if (!url_origin(url, origin, sizeof origin)) {
            say("refusing to follow a redirect to '%s'", url);
            *code = DL_EFAIL;
            break;
        }
        CURLcode rc = perform_hop(j, url, !strcmp(origin, j->origin0));
        progress_end(j);
        if (g_interrupted) {
            *code = DL_EINTR;
            break;
        }
        if (j->up_to_date) {
            res = TRY_UP_TO_DATE;
            break;
        }
        if (j->no_space) {
            say("no space for %s: %s", j->final_path, j->why);
            *code = DL_ENOSPACE;
            break;
        }
        if (j->io_errno) {
            say("cannot write %s.part: %s", j->final_path, strerror(j->io_errno));
            *code = DL_EFAIL;
            break;
        }
        if (j->range_mismatch) {
            say("%s; restarting the download from zero", j->why);
            res = TRY_RESTART;
            break;
        }
        if (rc != CURLE_OK) {
            say("%s: %s", url, j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
            res = TRY_RETRY;
            break;
        }
        long st_code = j->status;
        if (st_code == 200 || st_code == 206) {
            if (j->expect_total >= 0 && j->part_size != j->expect_total) {
                say("%s: transfer ended after %" PRId64 " of %" PRId64 " bytes", url, j->part_size, j->expect_total);
                res = TRY_RETRY;
            } else {
                res = TRY_DONE;
            }
            break;
        }
        if (st_code == 304) {
            if (j->revalidating) {
                res = TRY_UP_TO_DATE;
            } else {
                say("%s: unexpected 304 Not Modified", url);
                *code = DL_EFAIL;
            }
            break;
        }
        if (st_code == 301 || st_code == 302 || st_code == 303 || st_code == 307 || st_code == 308) {
            char *loc = NULL;
            if (curl_easy_getinfo(j->curl, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || !loc ||
                strlen(loc) >= DL_URL_MAX) {
                say("%s: HTTP %ld without a usable Location", url, st_code);
                *code = DL_EFAIL;
                break;
            }
            snprintf(url, DL_URL_MAX, "%s", loc);
            continue;
        }
        const char *detail = j->error_message[0] ? j->error_message : NULL;
        if (st_code == 401 || st_code == 403 || st_code == 407) {
            say("%s: HTTP %ld, access denied%s%s%s", url, st_code, detail ? " (" : "", detail ? detail : "",
                detail ? ")" : "");
            if (!j->token && st_code != 407) say("a gated or private repository needs HF_TOKEN");
            *code = DL_EAUTH;
        } else if (st_code == 404 || st_code == 410) {
            say("%s: HTTP %ld, not found (check --id, --file and --rev)", url, st_code);
            *code = DL_EFAIL;
        } else if (st_code == 416) {
            int64_t a, b, t;
            if (dl_parse_content_range(j->content_range, &a, &b, &t) && a < 0 && t > 0 && t == j->part_size) {
                j->expect_total = t; /* the .part was already complete */
                j->resumed = true;
                res = TRY_DONE;
            } else {
                snprintf(j->why, sizeof j->why, "the server refused the range");
                say("%s: HTTP 416; restarting the download from zero", url);
                res = TRY_RESTART;
            }
        } else if (st_code == 429 || st_code == 503 || st_code == 408 || st_code == 500 || st_code == 502 ||
                   st_code == 504) {
            if (st_code == 429 || st_code == 503) *wait_ms = dl_parse_retry_after(j->retry_after, (long)time(NULL));
            say("%s: HTTP %ld%s%s%s", url, st_code, st_code == 429 ? " (rate limited)" : "", detail ? ": " : "",
                detail ? detail : "");
            *code = st_code == 429 ? DL_ERATE : DL_ENET;
            res = TRY_RETRY;
        } else {
            say("%s: HTTP %ld%s%s", url, st_code, detail ? ": " : "", detail ? detail : "");
            *code = DL_EFAIL;
        }
        break;
    }
    free(url);
    return res;
}

static long env_long(const char *name, long def, long lo, long hi)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end || errno || x < lo || x > hi) {
        say("ignoring %s='%s' (expected %ld..%ld)", name, v, lo, hi);
        return def;
    }
    return x;
}

static bool sleep_ms(long ms)
{
    while (ms > 0 && !g_interrupted) {
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !g_interrupted;
}

/* ---- locking -------------------------------------------------------------------------------- */

/* Takes the exclusive lock on NAME.lock, waiting for another holder.  The lock file is removed by
 * its holder on release, so after locking check that the name still refers to the locked file. */
static int lock_acquire(dl_job *j)
{
    bool told = false;
    for (;;) {
        int fd = openat(j->dirfd, j->lock_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            say("cannot create %s.lock: %s", j->final_path, strerror(errno));
            return errno == ENOSPC || errno == EDQUOT ? DL_ENOSPACE : DL_EFAIL;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK) {
                say("cannot lock %s.lock: %s", j->final_path, strerror(errno));
                close(fd);
                return DL_EFAIL;
            }
            if (!told) say("waiting for another download of %s to finish", j->final_path);
            told = true;
            while (flock(fd, LOCK_EX) != 0) {
                if (errno != EINTR || g_interrupted) {
                    if (!g_interrupted) say("cannot lock %s.lock: %s", j->final_path, strerror(errno));
                    close(fd);
                    return g_interrupted ? DL_EINTR : DL_EFAIL;
                }
            }
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && fstatat(j->dirfd, j->lock_name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            j->lock_fd = fd;
            return DL_OK;
        }
        close(fd); /* released and removed meanwhile: take the new one */
    }
}

static void lock_release(dl_job *j)
{
    if (j->lock_fd < 0) return;
    unlinkat(j->dirfd, j->lock_name, 0);
    close(j->lock_fd);
    j->lock_fd = -1;
}

/* ---- folders -------------------------------------------------------------------------------- */

static bool mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return false;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

/* Opens root/sub (sub '/'-separated, validated), creating folders; no symbolic link inside root
 * is followed. */
static int open_dest(const char *root, const char *sub)
{
    if (!mkdir_p(root)) return -1;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char part[DL_NAME_MAX + 1];
    for (const char *p = sub; fd >= 0 && *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > DL_NAME_MAX) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        if (mkdirat(fd, part, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = nfd;
        p = end ? end + 1 : p + n;
    }
    return fd;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

/* ---- dl_fetch ------------------------------------------------------------------------------- */

static int setup(dl_job *j, const dl_request *req, char *path_out, size_t cap)
{
    const char *repo = req->repo ? req->repo : DL_DEFAULT_REPO;
    const char *file = req->file ? req->file : DL_DEFAULT_FILE;
    const char *rev = req->rev ? req->rev : DL_DEFAULT_REV;
    const char *why;
    if ((why = dl_check_repo(repo))) return say("--id '%s': %s", repo, why), DL_EUSAGE;
    if ((why = dl_check_file(file))) return say("--file '%s': %s", file, why), DL_EUSAGE;
    if ((why = dl_check_rev(rev))) return say("--rev '%s': %s", rev, why), DL_EUSAGE;
    if (req->sha256) {
        if (!is_hex64(req->sha256)) return say("--sha256 expects 64 hex digits"), DL_EUSAGE;
        for (int i = 0; i < 65; i++) j->user_sha[i] = (char)tolower((unsigned char)req->sha256[i]);
    }
    const char *base = req->base_url;
    if (!base || !*base) base = getenv("HF_ENDPOINT");
    if (!base || !*base) base = DL_DEFAULT_BASE_URL;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/') bl--;
    if (strncasecmp(base, "http://", 7) && strncasecmp(base, "https://", 8))
        return say("base URL '%s' must start with http:// or https://", base), DL_EUSAGE;
    j->token = getenv("HF_TOKEN");
    if (j->token && !*j->token) j->token = NULL;
    if (j->token)
        for (const unsigned char *p = (const unsigned char *)j->token; *p; p++)
            if (*p < 0x21 || *p == 0x7f) return say("HF_TOKEN contains spaces or control characters"), DL_EUSAGE;

    char rev_enc[DL_REV_MAX * 3 + 1], file_enc[DL_FILE_MAX * 3 + 1];
    if (!dl_percent_encode(rev, false, rev_enc, sizeof rev_enc) ||
        !dl_percent_encode(file, true, file_enc, sizeof file_enc))
        return say("name too long"), DL_EUSAGE;
    int n = snprintf(j->url0, sizeof j->url0, "%.*s/%s/resolve/%s/%s", (int)bl, base, repo, rev_enc, file_enc);
    if (n < 0 || (size_t)n >= sizeof j->url0 || !url_origin(j->url0, j->origin0, sizeof j->origin0))
        return say("bad base URL '%s'", base), DL_EUSAGE;

    /* destination: root/sub/name */
    char root[PATH_MAX], sub[PATH_MAX];
    if (req->out_dir) {
        if (snprintf(root, sizeof root, "%s", req->out_dir) >= (int)sizeof root) return say("--out too long"), DL_EUSAGE;
        sub[0] = '\0';
    } else {
        if (!dl_cache_root(root, sizeof root)) return say("no cache folder: set BITNET_CACHE or HOME"), DL_EFAIL;
        char repo_dir[256];
        snprintf(repo_dir, sizeof repo_dir, "%s", repo);
        char *slash = strchr(repo_dir, '/');
        if (slash) { /* OWNER--NAME: '--' never occurs in a valid name, so this is unambiguous */
            memmove(slash + 2, slash + 1, strlen(slash + 1) + 1);
            slash[0] = slash[1] = '-';
        }
        snprintf(sub, sizeof sub, "%s/%s/", repo_dir, rev_enc);
    }
    const char *base_name = strrchr(file, '/');
    base_name = base_name ? base_name + 1 : file;
    size_t sl = strlen(sub);
    if (sl + (size_t)(base_name - file) + 1 > sizeof sub) return say("name too long"), DL_EUSAGE;
    memcpy(sub + sl, file, (size_t)(base_name - file));
    sub[sl + (size_t)(base_name - file)] = '\0';
    snprintf(j->name, sizeof j->name, "%s", base_name);
    snprintf(j->part_name, sizeof j->part_name, "%s.part", base_name);
    snprintf(j->lock_name, sizeof j->lock_name, "%s.lock", base_name);
    snprintf(j->meta_name, sizeof j->meta_name, "%s.meta", base_name);
    snprintf(j->part_meta_name, sizeof j->part_meta_name, "%s.part.meta", base_name);
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/') root[--rl] = '\0';
    n = snprintf(j->final_path, sizeof j->final_path, "%s/%s%s", root, sub, base_name);
    if (n < 0 || (size_t)n >= sizeof j->final_path || (size_t)n >= cap) return say("path too long"), DL_EUSAGE;
    memcpy(path_out, j->final_path, (size_t)n + 1);

    j->dirfd = open_dest(root, sub);
    if (j->dirfd < 0) {
        say("cannot create the folder for %s: %s", j->final_path, strerror(errno));
        return errno == ENOSPC || errno == EDQUOT ? DL_ENOSPACE : DL_EFAIL;
    }
    return DL_OK;
}

/* fsync, verify, rename: the only way a file appears under its final name. */
static int commit(dl_job *j, bool *retry_fresh)
{
    *retry_fresh = false;
    if (fsync(j->part_fd) != 0) {
        int e = errno;
        say("cannot write %s.part: %s", j->final_path, strerror(e));
        return e == ENOSPC || e == EDQUOT || e == EFBIG ? DL_ENOSPACE : DL_EFAIL;
    }
    char sha[65];
    if (!dl_sha256_file(j->part_fd, sha)) {
        say("cannot read %s.part: %s", j->final_path, strerror(errno));
        return DL_EFAIL;
    }
    const char *expected = j->user_sha[0] ? j->user_sha : j->linked_sha[0] ? j->linked_sha
                         : j->etag_sha[0]  ? j->etag_sha
                                           : NULL;
    if (expected && strcmp(sha, expected)) {
        if (j->resumed) { /* data from an earlier transfer may be at fault: one fresh try */
            say("SHA-256 mismatch after resuming; downloading %s again from zero", j->final_path);
            *retry_fresh = true;
            return truncate_part(j) ? DL_OK : DL_EFAIL;
        }
        say("SHA-256 mismatch for %s: got %s, expected %s", j->final_path, sha, expected);
        truncate_part(j); /* removed on the way out */
        return DL_ESHA;
    }
    if (j->req->verbose) say("SHA-256 %s%s", sha, expected ? " (verified)" : " (no checksum to verify against)");
    unlinkat(j->dirfd, j->meta_name, 0); /* no stale metadata may ever describe the new file */
    if (renameat(j->dirfd, j->part_name, j->dirfd, j->name) != 0) {
        say("cannot rename %s.part: %s", j->final_path, strerror(errno));
        return DL_EFAIL;
    }
    fsync(j->dirfd);
    dl_meta m = {.size = j->part_size};
    snprintf(m.etag, sizeof m.etag, "%s", j->ident_etag);
    memcpy(m.sha256, sha, 65);
    if (!meta_write(j, j->meta_name, &m)) say("warning: cannot write %s.meta; the next run downloads again", j->final_path);
    unlinkat(j->dirfd, j->part_meta_name, 0);
    j->part_size = 0;
    close(j->part_fd);
    j->part_fd = -1;
    return DL_OK;
}

static int run_job(dl_job *j)
{
    int rc = lock_acquire(j);
    if (rc) return rc;

    struct stat st;
    if (fstatat(j->dirfd, j->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        meta_read(j, j->meta_name, &j->meta) && j->meta.etag[0] && j->meta.size == (int64_t)st.st_size &&
        (!j->user_sha[0] || !strcmp(j->user_sha, j->meta.sha256)))
        j->revalidating = true;
    dl_meta pm;
    if (meta_read(j, j->part_meta_name, &pm)) snprintf(j->part_etag, sizeof j->part_etag, "%s", pm.etag);
    j->part_fd = openat(j->dirfd, j->part_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (j->part_fd < 0) {
        int e = errno;
        say("cannot open %s.part: %s", j->final_path, strerror(e));
        return e == ENOSPC || e == EDQUOT ? DL_ENOSPACE : DL_EFAIL;
    }
    if (fstat(j->part_fd, &st) == 0 && st.st_size > 0) j->resumed = true;

    j->curl = curl_easy_init();
    if (!j->curl) return say("cannot initialise libcurl"), DL_EFAIL;
    CURL *c = j->curl;
    char ua[64];
    snprintf(ua, sizeof ua, "bitnet/%s", bitnet_version());
    curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* by hand: the token must not follow */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer is a transient error */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, env_long("BITNET_DL_STALL_S", 60, 1, 3600));
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, j);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

    long retries = env_long("BITNET_DL_RETRIES", 5, 0, 1000);
    long backoff = env_long("BITNET_DL_BACKOFF_MS", 1000, 0, 3600000);
    long attempt = 0;
    int64_t best = 0;
    bool fresh_retry_used = false;
    for (;;) {
        if (g_interrupted) return DL_EINTR;
        int code = DL_ENET;
        long wait_ms = -1;
        try_result r = one_try(j, &code, &wait_ms);
        if (r == TRY_FATAL) return code;
        if (r == TRY_UP_TO_DATE) {
            if (j->req->verbose) say("%s is up to date", j->final_path);
            truncate_part(j); /* a stale .part is useless now; removed on the way out */
            return DL_OK;
        }
        if (r == TRY_DONE) {
            bool again;
            rc = commit(j, &again);
            if (rc || !again) return rc;
            if (fresh_retry_used) return DL_ESHA;
            fresh_retry_used = true;
            continue;
        }
        if (j->part_size > best) { /* progress was made: the retry budget starts again */
            best = j->part_size;
            attempt = 0;
        }
        if (++attempt > retries) {
            if (retries > 0) say("giving up after %ld retries", retries);
            return r == TRY_RESTART ? DL_ENET : code;
        }
        if (r == TRY_RESTART) {
            if (!truncate_part(j)) return say("cannot truncate %s.part: %s", j->final_path, strerror(j->io_errno)), DL_EFAIL;
            set_part_etag(j, "");
            continue;
        }
        long delay;
        if (wait_ms >= 0) {
            delay = wait_ms > DL_RETRY_AFTER_CAP_MS ? DL_RETRY_AFTER_CAP_MS : wait_ms;
        } else {
            delay = backoff;
            for (long i = 1; i < attempt && delay < DL_BACKOFF_CAP_MS; i++) delay *= 2;
            if (delay > DL_BACKOFF_CAP_MS && backoff <= DL_BACKOFF_CAP_MS) delay = DL_BACKOFF_CAP_MS;
        }
        say("retrying in %.1f s (retry %ld of %ld)", (double)delay / 1000.0, attempt, retries);
        if (!sleep_ms(delay)) return DL_EINTR;
    }
}

int dl_fetch(const dl_request *req, char *path_out, size_t cap)
{
    dl_job *j = calloc(1, sizeof *j);
    if (!j) return say("out of memory"), DL_EFAIL;
    j->req = req;
    j->dirfd = j->lock_fd = j->part_fd = -1;
    j->progress = req->progress && isatty(STDERR_FILENO);
    int rc = setup(j, req, path_out, cap);
    if (rc == DL_OK && req->offline_ok) {
        struct stat st;
        if (fstatat(j->dirfd, j->name, &st, 0) == 0 && S_ISREG(st.st_mode)) {
            close(j->dirfd);
            free(j);
            return DL_OK;
        }
    }
    if (rc != DL_OK) {
        if (j->dirfd >= 0) close(j->dirfd);
        free(j);
        return rc;
    }

    /* Ctrl-C and SIGTERM stop the transfer cleanly; a write past RLIMIT_FSIZE must fail with
     * EFBIG rather than kill the process; a closed connection must not raise SIGPIPE. */
    struct sigaction sa, old_int, old_term, old_xfsz, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &sa, &old_xfsz);
    sigaction(SIGPIPE, &sa, &old_pipe);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    rc = run_job(j);
    if (rc == DL_EINTR) {
        say("interrupted; run the same command again to resume");
    }

    if (j->curl) curl_easy_cleanup(j->curl);
    curl_global_cleanup();
    if (j->part_fd >= 0) {
        struct stat st;
        bool empty = fstat(j->part_fd, &st) == 0 && st.st_size == 0;
        if (!empty) fsync(j->part_fd); /* keep what we have for the next run */
        close(j->part_fd);
        if (empty) {
            unlinkat(j->dirfd, j->part_name, 0);
            unlinkat(j->dirfd, j->part_meta_name, 0);
        }
    }
    lock_release(j);
    close(j->dirfd);
    free(j);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGXFSZ, &old_xfsz, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    return rc;
}

int dl_resolve_model_ref(const char *ref, char *path_out, size_t cap)
{
    if (!dl_is_model_ref(ref)) {
        if (!ref || strlen(ref) >= cap) return say("model path too long"), DL_EUSAGE;
        memcpy(path_out, ref, strlen(ref) + 1);
        return DL_OK;
    }
    char repo[256], rev[DL_REV_MAX + 1], file[DL_FILE_MAX + 1];
    const char *why;
    if (!dl_parse_model_ref(ref, repo, sizeof repo, rev, sizeof rev, file, sizeof file, &why))
        return say("model '%s': %s", ref, why), DL_EUSAGE;
    dl_request req = {.repo = repo, .file = file, .rev = rev, .progress = true, .offline_ok = true};
    return dl_fetch(&req, path_out, cap);
}
