/* bitnet bench: prompt-processing and generation speed, like llama-bench (its JSON uses
 * llama-bench's field names so existing tooling reads it), plus load time, peak RSS, bytes read
 * per generated token and the share of the machine's read bandwidth that generation reaches. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bitnet.h"
#include "cli.h"

#define MAX_LIST 16

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: bitnet bench [-m MODEL] [options]\n\n"
               "Measures prompt processing (pp) and generation (tg) tokens/s with random token ids.\n\n"
               "  -m, --model PATH     GGUF model (default: the bundled model)\n"
               "  -p, --n-prompt LIST  prompt lengths, comma-separated; 0 skips (default 512)\n"
               "  -n, --n-gen LIST     generated tokens, comma-separated; 0 skips (default 128)\n"
               "  -d, --n-depth LIST   tokens already in the context when each test starts,\n"
               "                       comma-separated (default 0; filled untimed, as llama-bench -d)\n"
               "  -t, --threads LIST   thread counts, comma-separated (default: physical cores)\n"
               "  -r, --repetitions N  repetitions of each test (default 5)\n"
               "      --kv f16|f32     KV cache precision (default f16)\n"
               "      --head q8_0|q6_k requantise the output head at load (fewer bytes per token)\n"
               "      --no-repack      keep ternary weights in the file's layout (see bitnet info --system)\n"
               "      --no-bandwidth   skip measuring the machine's read bandwidth\n"
               "  -o, --output FMT     md (default), json or csv\n"
               "  -h, --help           this help\n");
}

static int parse_list(const char *opt, const char *s, long lo, long hi, long *out)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_LIST || !cli_parse_int(opt, tok, lo, hi, &out[n])) {
            free(copy);
            return -1;
        }
        n++;
    }
    free(copy);
    return n;
}

/* ---- machine read bandwidth: a STREAM-like sum over a buffer much larger than the caches ---- */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_job;

static void *bw_worker(void *arg)
{
    bw_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {
        s0 += j->p[i];
        s1 += j->p[i + 1];
        s2 += j->p[i + 2];
        s3 += j->p[i + 3];
    }
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double read_bandwidth(int threads)
{
    const size_t bytes = (size_t)512 << 20;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        bw_job jobs[64];
        size_t per = bytes / 8 / (size_t)threads;
        double t0 = cli_now();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (bw_job){buf + per * (size_t)t, per, 0};
            pthread_create(&th[t], NULL, bw_worker, &jobs[t]);
        }
        uint64_t sink = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            sink += jobs[t].sum;
        }
        double dt = cli_now() - t0;
        if (sink == 42) fprintf(stderr, " "); /* keeps the sum alive */
        double gbs = (double)bytes / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    free(buf);
    return best;
}

/* The read bandwidth for each thread count, measured in a child process before the model is
 * loaded: the 512 MiB buffer then counts neither in the peak RSS reported nor against the model's
 * pages.  (The process has no threads yet, so fork is safe.)  0 where it could not be measured. */
static void measure_bandwidths(const long *threads, int n, double *out)
{
    for (int i = 0; i < n; i++) out[i] = 0;
    int fd[2];
    if (pipe(fd) != 0) return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        for (int i = 0; i < n; i++) {
            double b = read_bandwidth((int)threads[i]);
            if (write(fd[1], &b, sizeof b) != (ssize_t)sizeof b) break;
        }
        _exit(0);
    }
    close(fd[1]);
    for (int i = 0; i < n; i++)
        if (read(fd[0], &out[i], sizeof out[i]) != (ssize_t)sizeof out[i]) {
            out[i] = 0;
            break;
        }
    close(fd[0]);
    waitpid(pid, NULL, 0);
}

typedef struct {
    int n_prompt, n_gen, n_depth, threads;
    double avg_ts, stddev_ts, bw_gbs;
    double samples[64];
    int n_samples;
} record;

static void stats(record *r)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < r->n_samples; i++) s += r->samples[i];
    r->avg_ts = s / r->n_samples;
    for (int i = 0; i < r->n_samples; i++) s2 += (r->samples[i] - r->avg_ts) * (r->samples[i] - r->avg_ts);
    r->stddev_ts = r->n_samples > 1 ? sqrt(s2 / (r->n_samples - 1)) : 0;
}

static bitnet_token rand_token(uint64_t *state, int n_vocab)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (bitnet_token)((*state >> 33) % (uint64_t)n_vocab);
}

/* Fills the context with `depth` random tokens (untimed); each repetition then starts from there. */
static bool fill_depth(bitnet_context *c, int n_vocab, int depth)
{
    uint64_t rng = 777;
    bitnet_context_truncate(c, 0);
    if (depth == 0) return true;
    bitnet_token *ids = malloc((size_t)depth * sizeof *ids);
    if (!ids) return false;
    for (int i = 0; i < depth; i++) ids[i] = rand_token(&rng, n_vocab);
    bool ok = bitnet_eval(c, ids, depth, false) == BITNET_OK;
    free(ids);
    return ok;
}

/* One repetition from the filled depth: either n_prompt tokens in one eval or n_gen single steps. */
static bool run_test(bitnet_context *c, int n_vocab, int depth, int n_prompt, int n_gen, double *tps)
{
    uint64_t rng = 12345;
    if (bitnet_context_truncate(c, depth) != BITNET_OK) return false;
    if (n_prompt > 0) {
        bitnet_token *ids = malloc((size_t)n_prompt * sizeof *ids);
        if (!ids) return false;
        for (int i = 0; i < n_prompt; i++) ids[i] = rand_token(&rng, n_vocab);
        double t0 = cli_now();
        bool ok = bitnet_eval(c, ids, n_prompt, false) == BITNET_OK;
        *tps = n_prompt / (cli_now() - t0);
        free(ids);
        return ok;
    }
    bitnet_token t = rand_token(&rng, n_vocab);
    if (bitnet_eval(c, &t, 1, false) != BITNET_OK) return false; /* warm the cache path */
    double t0 = cli_now();
    for (int i = 0; i < n_gen; i++) {
        t = rand_token(&rng, n_vocab);
        if (bitnet_eval(c, &t, 1, false) != BITNET_OK) return false;
    }
    *tps = n_gen / (cli_now() - t0);
    return true;
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL, *fmt = "md";
    long prompts[MAX_LIST] = {512}, gens[MAX_LIST] = {128}, depths[MAX_LIST] = {0}, threads[MAX_LIST] = {0}, reps = 5;
    int n_p = 1, n_g = 1, n_d = 1, n_t = 1;
    bool measure_bw = true;
    bitnet_kv_type kv = BITNET_KV_F16;
    bitnet_model_params mp;
    bitnet_model_params_default(&mp);
    mp.repack = BITNET_REPACK_AT_LOAD; /* steady speed from the first repetition */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-bandwidth")) {
            measure_bw = false;
            continue;
        }
        if (!strcmp(a, "--no-repack")) {
            mp.repack = BITNET_REPACK_OFF;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bitnet: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if ((n_p = parse_list(a, v, 0, 1 << 16, prompts)) < 0) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if ((n_g = parse_list(a, v, 0, 1 << 16, gens)) < 0) return 2;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--n-depth")) {
            if ((n_d = parse_list(a, v, 0, 1 << 20, depths)) < 0) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if ((n_t = parse_list(a, v, 1, 256, threads)) < 0) return 2;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!cli_parse_int(a, v, 1, 64, &reps)) return 2;
        } else if (!strcmp(a, "--head")) {
            if (!cli_parse_head(v, &mp.head_type)) return 2;
        } else if (!strcmp(a, "--kv")) {
            if (!cli_parse_kv(v, &kv)) return 2;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (strcmp(v, "md") && strcmp(v, "json") && strcmp(v, "csv")) {
                fprintf(stderr, "bitnet: --output expects md, json or csv\n");
                return 2;
            }
            fmt = v;
        } else {
            fprintf(stderr, "bitnet: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!(model = cli_model_path(model))) return 1;
    bitnet_system_info sys;
    bitnet_system_info_get(&sys);
    if (threads[0] == 0) threads[0] = sys.n_cores_physical;

    double bws[MAX_LIST];
    if (measure_bw) measure_bandwidths(threads, n_t, bws);
    double t0 = cli_now();
    bitnet_model *m;
    if (bitnet_model_load(model, &mp, &m) != BITNET_OK) return cli_fail("loading the model");
    double load_s = cli_now() - t0;
    bitnet_model_info info;
    bitnet_model_info_get(m, &info);

    record *recs = calloc((size_t)n_t * (size_t)(n_p + n_g) * (size_t)n_d, sizeof *recs);
    if (!recs) {
        bitnet_model_free(m);
        return cli_fail("allocating");
    }
    int n_rec = 0;
    int rc = 0;
    for (int ti = 0; ti < n_t && rc == 0; ti++) {
        double bw = measure_bw ? bws[ti] : 0;
        long max_ctx = 1, max_depth = 0;
        for (int i = 0; i < n_p; i++) max_ctx = prompts[i] > max_ctx ? prompts[i] : max_ctx;
        for (int i = 0; i < n_g; i++) max_ctx = gens[i] + 1 > max_ctx ? gens[i] + 1 : max_ctx;
        for (int i = 0; i < n_d; i++) max_depth = depths[i] > max_depth ? depths[i] : max_depth;
        max_ctx += max_depth;
        bitnet_context_params cp;
        bitnet_context_params_default(&cp);
        cp.n_threads = (int)threads[ti];
        cp.n_ctx = (int)max_ctx;
        cp.kv_type = kv;
        bitnet_context *c;
        if (bitnet_context_init(m, &cp, &c) != BITNET_OK) {
            rc = cli_fail("creating a context");
            break;
        }
        for (int di = 0; di < n_d && rc == 0; di++) {
            const int depth = (int)depths[di];
            if (!fill_depth(c, info.n_vocab, depth)) {
                rc = cli_fail("filling the context");
                break;
            }
            for (int kind = 0; kind < 2 && rc == 0; kind++) {
                int count = kind ? n_g : n_p;
                for (int i = 0; i < count && rc == 0; i++) {
                    int np = kind ? 0 : (int)prompts[i], ng = kind ? (int)gens[i] : 0;
                    if (np == 0 && ng == 0) continue;
                    record *r = &recs[n_rec++];
                    r->n_prompt = np;
                    r->n_gen = ng;
                    r->n_depth = depth;
                    r->threads = (int)threads[ti];
                    r->bw_gbs = bw;
                    double warm;
                    run_test(c, info.n_vocab, depth, np, ng > 8 ? 8 : ng, &warm); /* warm-up, not counted */
                    for (long rep = 0; rep < reps; rep++) {
                        if (!run_test(c, info.n_vocab, depth, np, ng, &r->samples[r->n_samples++])) {
                            rc = cli_fail("evaluating");
                            break;
                        }
                    }
                    stats(r);
                }
            }
        }
        bitnet_context_free(c);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0;
    double bytes_per_tok = (double)info.bytes_per_token;

    const char *kvs = kv == BITNET_KV_F16 ? "f16" : "f32";
    if (!strcmp(fmt, "json")) {
        printf("[\n");
        for (int i = 0; i < n_rec; i++) {
            record *r = &recs[i];
            printf("  {\"build_commit\": \"bitnet.c-%s\", \"cpu_info\": \"%s\", \"backends\": \"CPU\", \"model_filename\": "
                   "\"%s\", \"model_type\": \"%s\", \"model_size\": %llu, \"model_n_params\": %llu, \"n_threads\": %d, "
                   "\"type_k\": \"%s\", \"type_v\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, \"avg_ts\": %.6f, "
                   "\"stddev_ts\": %.6f, \"samples_ts\": [",
                   bitnet_version(), sys.kernels, model, info.arch, (unsigned long long)info.weight_bytes,
                   (unsigned long long)info.n_params, r->threads, kvs, kvs, r->n_prompt, r->n_gen, r->n_depth, r->avg_ts,
                   r->stddev_ts);
            for (int k = 0; k < r->n_samples; k++) printf(k ? ", %.6f" : "%.6f", r->samples[k]);
            printf("], \"load_s\": %.4f, \"peak_rss_mib\": %.1f, \"bytes_per_token\": %.0f, \"read_bw_gbs\": %.3f", load_s,
                   rss_mib, bytes_per_tok, r->bw_gbs);
            if (r->n_gen && r->bw_gbs > 0)
                printf(", \"roofline\": %.4f", r->avg_ts * bytes_per_tok / (r->bw_gbs * 1e9));
            printf("}%s\n", i + 1 < n_rec ? "," : "");
        }
        printf("]\n");
    } else if (!strcmp(fmt, "csv")) {
        printf("model_filename,n_threads,n_prompt,n_gen,avg_ts,stddev_ts,load_s,peak_rss_mib,bytes_per_token,read_bw_gbs,"
               "n_depth\n");
        for (int i = 0; i < n_rec; i++)
            printf("%s,%d,%d,%d,%.4f,%.4f,%.4f,%.1f,%.0f,%.3f,%d\n", model, recs[i].threads, recs[i].n_prompt,
                   recs[i].n_gen, recs[i].avg_ts, recs[i].stddev_ts, load_s, rss_mib, bytes_per_tok, recs[i].bw_gbs,
                   recs[i].n_depth);
    } else {
        printf("model: %s (%s, %.1f MiB of weights, %.2f G params) · kernels: %s · load %.2f s · peak RSS %.0f MiB",
               model, info.arch, info.weight_bytes / 1048576.0, info.n_params / 1e9, sys.kernels, load_s, rss_mib);
        if (info.repacked_bytes) printf(" · ternary weights repacked at load (in the load time): %.1f MiB", info.repacked_bytes / 1048576.0);
        printf("\n\n");
        printf("| threads | test | t/s | read BW GB/s | roofline |\n|---:|---|---:|---:|---:|\n");
        for (int i = 0; i < n_rec; i++) {
            record *r = &recs[i];
            char test[32], roof[32] = "";
            int len = r->n_prompt ? snprintf(test, sizeof test, "pp%d", r->n_prompt) : snprintf(test, sizeof test, "tg%d", r->n_gen);
            if (r->n_depth && len > 0 && (size_t)len < sizeof test)
                snprintf(test + len, sizeof test - (size_t)len, " @ d%d", r->n_depth);
            if (r->n_gen && r->bw_gbs > 0)
                snprintf(roof, sizeof roof, "%.0f%%", 100 * r->avg_ts * bytes_per_tok / (r->bw_gbs * 1e9));
            printf("| %d | %s | %.2f ± %.2f | %.1f | %s |\n", r->threads, test, r->avg_ts, r->stddev_ts, r->bw_gbs, roof);
        }
        printf("\nweight bytes read per generated token: %.0f (every layer and the output head)\n", bytes_per_tok);
    }
    free(recs);
    bitnet_model_free(m);
    return rc;
}
