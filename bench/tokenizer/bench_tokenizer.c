/* Tokenizer benchmark (one thread):
 *   - loading the Llama-3 vocabulary (128256 tokens, 280147 merges) from GGUF (target < 100 ms),
 *     from tokenizer.json and from tiktoken;
 *   - tokenizing WikiText-2's test split with it (target >= 10 MB/s).
 * The GGUF is built from tokenizer.json first (keyed like the official BitNet 2B-4T file).
 *
 *   bench_tokenizer [WIKI_TEXT [TOKENIZER_JSON]]       (defaults: ../shared/data, tests/data) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/mem.h"
#include "gguf/gguf.h"
#include "hf/hf_tokenizer.h"
#include "llama3_gguf.h"
#include "tok_test_util.h"
#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: on a busy machine wall time includes waiting for a core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define REPS 7

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_tokenizer: %s: %s\n", what, bn_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *wiki = argc > 1 ? argv[1] : BENCH_WIKI;
    const char *json_path = argc > 2 ? argv[2] : BENCH_TOKENIZER_JSON;
    size_t text_len = 0, json_len = 0;
    char *text = tu_read_file(wiki, &text_len);
    char *json = tu_read_file(json_path, &json_len);
    if (!text || !json) {
        fprintf(stderr, "bench_tokenizer: cannot read %s or %s\n", wiki, json_path);
        return 1;
    }
    char gguf_path[] = "/tmp/bench-llama3-vocab-XXXXXX";
    int fd = mkstemp(gguf_path);
    if (fd < 0) return 1;
    close(fd);
    if (llama3_gguf_write(json, json_len, gguf_path) != BN_OK) return fail("writing the Llama-3 GGUF");
    free(json);

    double t[REPS], c[REPS];
    bn_tokenizer *tok = NULL;
    for (int r = 0; r < REPS; r++) {
        double t0 = now(), c0 = cpu_now();
        bn_gguf *g;
        if (bn_gguf_open(gguf_path, &g) != BN_OK) return fail("opening the GGUF");
        bn_tokenizer *x;
        if (bn_tokenizer_load_gguf(g, BN_PRETOK_AUTO, &x) != BN_OK) return fail("loading from GGUF");
        bn_gguf_free(g);
        t[r] = now() - t0;
        c[r] = cpu_now() - c0;
        if (tok) bn_tokenizer_free(x);
        else tok = x;
    }
    if (!getenv("BENCH_KEEP_GGUF")) unlink(gguf_path);
    else printf("kept %s\n", gguf_path);
    double med = median(t, REPS), cmed = median(c, REPS);
    printf("load Llama-3 vocabulary from GGUF (%d tokens): median %.1f ms (cpu %.1f ms), best %.1f ms  "
           "(target < 100 ms)\n",
           (int)bn_tokenizer_n_vocab(tok), med * 1e3, cmed * 1e3, t[0] * 1e3);

    for (int r = 0; r < 3; r++) {
        double t0 = now();
        bn_tokenizer *x;
        if (bn_hf_tokenizer_load(json_path, BN_PRETOK_AUTO, &x) != BN_OK) return fail("loading tokenizer.json");
        t[r] = now() - t0;
        bn_tokenizer_free(x);
    }
    printf("load tokenizer.json: median %.1f ms\n", median(t, 3) * 1e3);
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        bn_tokenizer *x;
        if (bn_tiktoken_load(BENCH_TIKTOKEN, BN_PRETOK_AUTO, &x) != BN_OK) return fail("loading tokenizer.model");
        t[r] = now() - t0;
        bn_tokenizer_free(x);
    }
    printf("load tiktoken tokenizer.model: median %.1f ms\n", median(t, 3) * 1e3);

    size_t n_ids = 0;
    for (int r = 0; r < REPS; r++) {
        int32_t *ids;
        double t0 = now(), c0 = cpu_now();
        if (bn_tokenizer_encode(tok, text, text_len, true, false, &ids, &n_ids) != BN_OK) return fail("encoding");
        t[r] = now() - t0;
        c[r] = cpu_now() - c0;
        bn_free(ids);
    }
    med = median(t, REPS);
    cmed = median(c, REPS);
    printf("tokenize %s (%.2f MB, %zu tokens): median %.1f ms = %.1f MB/s (cpu %.1f MB/s), best %.1f MB/s  "
           "(target >= 10 MB/s)\n",
           wiki, (double)text_len / 1e6, n_ids, med * 1e3, (double)text_len / med / 1e6,
           (double)text_len / cmed / 1e6, (double)text_len / t[0] / 1e6);
    bn_tokenizer_free(tok);
    free(text);
    return 0;
}
