/* Continuous-batching benchmark below the server: decode tokens/s of bitnet_eval_multi with
 * B sequences per pass (B = 1 is a plain single-token eval), for each thread count.  Separates
 * what the engine gains from batching from what the HTTP server adds (bench/server/run.sh).
 *
 *   bench_batch [MODEL] [-t LIST] [-b LIST] [-s LIST] [-n TOKENS] [-r REPS]
 *   (threads 0: one per physical core, as `bitnet serve -t 0`; -s: how a pass's work is shared
 *   among the threads, any of auto, rows, sequences (bitnet_batch_split); defaults: the bundled
 *   model, threads 1,2, batches 1,2,4,8, split auto, 128 tokens per sequence, best of 5 runs: the
 *   best run is the least disturbed by other work on a shared machine) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Comma-separated values in [lo, 64]. */
static int parse_list(const char *s, int *out, int max, int lo)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < lo || v > 64) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static const char *const split_names[3] = {"auto", "rows", "sequences"};

/* Comma-separated names of split_names. */
static int parse_splits(const char *s, bitnet_batch_split *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        size_t len = strcspn(s, ",");
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strlen(split_names[i]) == len && !strncmp(s, split_names[i], len)) found = i;
        if (found < 0) return -1;
        out[n++] = (bitnet_batch_split)found;
        s += len;
        if (*s == ',') s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *path = BENCH_MODEL;
    int threads[8] = {1, 2}, n_threads = 2, batches[8] = {1, 2, 4, 8}, n_batches = 4, n_gen = 128, reps = 5;
    bitnet_batch_split splits[3] = {BITNET_BATCH_SPLIT_AUTO};
    int n_splits = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) n_threads = parse_list(argv[++i], threads, 8, 0);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) n_batches = parse_list(argv[++i], batches, 8, 1);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) n_splits = parse_splits(argv[++i], splits, 3);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (argv[i][0] != '-') path = argv[i];
        else n_threads = -1;
    }
    if (n_threads < 1 || n_batches < 1 || n_splits < 1 || n_gen < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_batch [MODEL] [-t LIST] [-b LIST] [-s auto,rows,sequences] [-n TOKENS] [-r REPS]\n");
        return 2;
    }
    bitnet_model *m;
    if (bitnet_model_load(path, NULL, &m) != BITNET_OK) {
        fprintf(stderr, "bench_batch: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_model_info info;
    bitnet_model_info_get(m, &info);
    bitnet_system_info sys;
    if (bitnet_system_info_get(&sys) != BITNET_OK) sys.n_cores_physical = 0;
    printf("%s: decode tokens/s with B sequences per pass (best of %d)\n| threads | split | B | tokens/s | per pass |\n"
           "|---:|---|---:|---:|---:|\n", path, reps);
    int rc = 0;
    for (int ti = 0; ti < n_threads && !rc; ti++) {
        for (int si = 0; si < n_splits && !rc; si++)
        for (int bi = 0; bi < n_batches && !rc; bi++) {
            const int B = batches[bi];
            bitnet_context *ctx[64];
            bitnet_token tok[64];
            bitnet_context_params cp;
            bitnet_context_params_default(&cp);
            cp.n_ctx = n_gen + 8;
            cp.n_threads = threads[ti];
            cp.batch_split = splits[si];
            for (int b = 0; b < B; b++)
                if (bitnet_context_init(m, &cp, &ctx[b]) != BITNET_OK) {
                    fprintf(stderr, "bench_batch: %s\n", bitnet_last_error());
                    return 1;
                }
            double best = 1e30;
            for (int rep = 0; rep < reps && !rc; rep++) {
                for (int b = 0; b < B; b++) {
                    bitnet_context_truncate(ctx[b], 0);
                    tok[b] = (bitnet_token)((7 + 13 * b) % info.n_vocab);
                }
                double t0 = now();
                for (int g = 0; g < n_gen && !rc; g++) {
                    if (bitnet_eval_multi(ctx, tok, B) != BITNET_OK) {
                        fprintf(stderr, "bench_batch: %s\n", bitnet_last_error());
                        rc = 1;
                    }
                    for (int b = 0; b < B; b++) tok[b] = (bitnet_token)((tok[b] * 31 + g) % info.n_vocab);
                }
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            printf("| %d | %s | %d | %.0f | %.1f us |\n", threads[ti] ? threads[ti] : sys.n_cores_physical,
                   split_names[splits[si]], B, (double)B * n_gen / best, best / n_gen * 1e6);
            for (int b = 0; b < B; b++) bitnet_context_free(ctx[b]);
        }
    }
    bitnet_model_free(m);
    return rc;
}
