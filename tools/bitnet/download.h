/* Downloads one file of a Hugging Face repository: resumable (NAME.part + Range), verified
 * (SHA-256), atomic (fsync + rename), revalidated with its ETag.  Tool code: it prints its
 * messages on stderr and uses libcurl and libcrypto, which the library never does.
 * docs/download.md describes the behaviour and the files it leaves in the cache. */
#ifndef BITNET_TOOL_DOWNLOAD_H
#define BITNET_TOOL_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results; the values are `bitnet download`'s exit codes. */
enum {
    DL_OK = 0,
    DL_EFAIL = 1,          /* anything else: not found, local I/O error, bad server reply */
    DL_EUSAGE = 2,         /* bad option or hostile/invalid repository, file or revision name */
    DL_ENOSPACE = 10,      /* disk full or file size limit; the .part is kept */
    DL_EAUTH = 11,         /* 401/403/407 */
    DL_ERATE = 12,         /* still 429 after the retries */
    DL_ESHA = 13,          /* SHA-256 mismatch; nothing is left under the final name */
    DL_ENET = 14,          /* network or server failure after the retries */
    DL_EINTR = 130,        /* SIGINT/SIGTERM; the .part is kept for resuming */
};

#define DL_DEFAULT_REPO "microsoft/bitnet-b1.58-2B-4T-gguf"
#define DL_DEFAULT_FILE "ggml-model-i2_s.gguf"
#define DL_DEFAULT_REV "main"
#define DL_DEFAULT_BASE_URL "https://huggingface.co"

typedef struct dl_request {
    const char *repo;     /* "OWNER/NAME" or "NAME"; NULL: DL_DEFAULT_REPO */
    const char *file;     /* path in the repository, '/'-separated; NULL: DL_DEFAULT_FILE */
    const char *rev;      /* branch, tag or commit; NULL: DL_DEFAULT_REV */
    const char *sha256;   /* expected SHA-256 (64 hex digits) or NULL */
    const char *out_dir;  /* NULL: the cache, CACHE/OWNER--NAME/REV/ */
    const char *base_url; /* NULL: $HF_ENDPOINT, else DL_DEFAULT_BASE_URL */
    bool progress;        /* draw a progress bar (only when stderr is a terminal) */
    bool verbose;         /* print each request and response on stderr */
    bool offline_ok;      /* an existing final file is returned without contacting the server */
} dl_request;

/* Downloads (or revalidates) the file and writes its local path into path_out.  Returns DL_OK or
 * one of the codes above after printing a message on stderr. */
int dl_fetch(const dl_request *req, char *path_out, size_t cap);

/* True if `ref` is a model reference "hf:OWNER/NAME[@REV]/FILE". */
bool dl_is_model_ref(const char *ref);

/* For `bitnet run -m REF`: a plain path is copied to path_out unchanged; "hf:OWNER/NAME[@REV]/FILE"
 * is resolved to the cached file, downloaded on first use (a cached copy is used as it is, without
 * contacting the server).  The server is $HF_ENDPOINT, else https://huggingface.co.  Returns DL_OK
 * or a DL_E* code after printing a message on stderr. */
int dl_resolve_model_ref(const char *ref, char *path_out, size_t cap);

/* ---- pieces exposed for the unit tests ---------------------------------------------------- */

/* Validation of names that become paths: each returns NULL if acceptable, else why not. */
const char *dl_check_repo(const char *repo);
const char *dl_check_file(const char *file);
const char *dl_check_rev(const char *rev);
/* Percent-encodes every byte outside [A-Za-z0-9._~-]; '/' is kept when keep_slash.  False if
 * it does not fit. */
bool dl_percent_encode(const char *s, bool keep_slash, char *out, size_t cap);
/* The cache root: $BITNET_CACHE, else $XDG_CACHE_HOME/bitnet (absolute only), else $HOME/.cache/bitnet. */
bool dl_cache_root(char *out, size_t cap);
/* "bytes START-END/TOTAL" -> values; TOTAL "*" gives total = -1.  "bytes * /TOTAL" (416) gives
 * start = end = -1.  False if malformed. */
bool dl_parse_content_range(const char *s, int64_t *start, int64_t *end, int64_t *total);
/* Retry-After as delta-seconds or an HTTP date -> milliseconds from now (>= 0), or -1 if absent
 * or malformed. */
long dl_parse_retry_after(const char *s, long now_s);
/* Strips W/ and quotes; true (and the lowercase digest in out[65]) if what is left is 64 hex. */
bool dl_etag_sha256(const char *etag, char out[65]);
/* Splits "hf:OWNER/NAME[@REV]/FILE"; false (with *why) if malformed. */
bool dl_parse_model_ref(const char *ref, char *repo, size_t repo_cap, char *rev, size_t rev_cap,
                        char *file, size_t file_cap, const char **why);
/* Lowercase hex SHA-256 of a file's contents; false on I/O error. */
bool dl_sha256_file(int fd, char out[65]);

#endif
