/* Kernel benchmark on BitNet-b1.58-2B-4T's shapes: GEMV time and effective GB/s of weight bytes
 * read, GEMM tokens/s for a 128-token batch, at 1 and 2 threads, next to this machine's read
 * bandwidth measured by the same program.
 *
 *   bench_kernels [--quick] [--hot] [--file-layout] [--reps N] [--types I2_S,TQ2_0,TQ1_0] [--heads F16,Q8_0,Q6_K] [--threads 1,2]
 *
 * Weights are replicated until they exceed the last-level cache (512 MiB in all, 128 MiB with
 * --quick) and the copies are used in turn, so a GEMV reads from memory as in a forward pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fp16.h"
#include "common/mem.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "quant/quant.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t rng = 1;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* ---- read bandwidth: each thread sums its part of a large buffer ---- */

typedef struct {
    const uint64_t *buf;
    size_t n;
    uint64_t sink[64];
} bw_task;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t o[4];
    _mm256_storeu_si256((__m256i *)o, s);
    return o[0] + o[1] + o[2] + o[3];
}
#endif

static uint64_t sum_plain(const uint64_t *p, size_t n)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    return a + b + c + d;
}

static void bw_run(void *arg, int ith, int nth)
{
    bw_task *T = arg;
    long lo, hi;
    bn_split_range((long)T->n, ith, nth, 64, &lo, &hi);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx2")) {
        T->sink[ith % 64] += sum_avx2(T->buf + lo, (size_t)(hi - lo));
        return;
    }
#endif
    T->sink[ith % 64] += sum_plain(T->buf + lo, (size_t)(hi - lo));
}

static double read_bandwidth(bn_threadpool *pool, size_t bytes)
{
    uint64_t *buf = bn_aligned_alloc(bytes, 64);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i;
    bw_task T = {buf, bytes / 8, {0}};
    bn_threadpool_run(pool, bw_run, &T); /* warm up */
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now();
        bn_threadpool_run(pool, bw_run, &T);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    bn_aligned_free(buf);
    return (double)bytes / best / 1e9;
}

/* ---- matmul timing ---- */

typedef struct {
    const char *name;
    int64_t rows, cols;
} shape;

static void *make_weight(uint32_t type, int64_t rows, int64_t cols, size_t *nbytes)
{
    bn_type_tensor_nbytes(type, cols, rows * cols, nbytes);
    uint8_t *p = bn_aligned_alloc(*nbytes, 64);
    if (!p) return NULL;
    int64_t n = rows * cols;
    if (type == BN_TYPE_I2_S || type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0) {
        int8_t *t = malloc((size_t)n);
        float *sc = malloc(sizeof(float) * (size_t)(n / 128 + 1));
        for (int64_t i = 0; i < n; i++) t[i] = (int8_t)((int)(rnd() % 3) - 1);
        for (int64_t i = 0; i < n / 128 + 1; i++) sc[i] = 0.02f;
        bn_ternary_encode(type, t, sc, n, p);
        free(t);
        free(sc);
    } else if (type == BN_TYPE_Q8_0 || type == BN_TYPE_Q6_K) {
        size_t rbytes = *nbytes / (size_t)rows;
        float *row = malloc(sizeof(float) * (size_t)cols);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t k = 0; k < cols; k++) row[k] = (float)(rnd() % 2001) * 1e-5f - 0.01f;
            bn_quantize(type, row, 1, cols, p + (size_t)r * rbytes);
        }
        free(row);
    } else {
        for (size_t i = 0; i < *nbytes / 2; i++) {
            uint16_t h = type == BN_TYPE_BF16 ? bn_fp32_to_bf16((float)(rnd() % 2001) * 1e-5f - 0.01f)
                                              : bn_fp32_to_fp16((float)(rnd() % 2001) * 1e-5f - 0.01f);
            memcpy(p + 2 * i, &h, 2);
        }
    }
    return p;
}

typedef struct {
    double gemv_us, gemv_gbs, gemm_tok_s, gemv_tok_s;
} result;

static int g_hot;      /* --hot: one copy, so the weights stay in cache (compute speed, not memory) */
static int g_reps = 3; /* --reps N: timed runs per figure, the best counts */
static int g_file_layout; /* --file-layout: no repacking (I2_S as stored in the file) */

static result bench_shape(uint32_t type, const shape *s, bn_threadpool *pool, int quick, int gemm_tokens)
{
    result res = {0, 0, 0, 0};
    size_t nb;
    void *w0 = make_weight(type, s->rows, s->cols, &nb);
    if (!w0) return res;
    /* enough copies to defeat the caches (--quick: 128 MiB, still far beyond a 32 MiB L3) */
    int copies = (int)(((quick ? 128u : 512u) << 20) / nb) + 1;
    if (copies > 256) copies = 256;
    if (g_hot) copies = 1;
    void **ws = calloc((size_t)copies, sizeof *ws);
    bn_weight *w = calloc((size_t)copies, sizeof *w);
    ws[0] = w0;
    for (int c = 1; c < copies; c++) {
        ws[c] = bn_aligned_alloc(nb, 64);
        memcpy(ws[c], w0, nb);
    }
    for (int c = 0; c < copies; c++) {
        bn_weight_init(&w[c], type, ws[c], s->rows, s->cols);
        size_t packed;
        if (!g_file_layout) bn_weight_repack(&w[c], pool, &packed); /* as the engine does at load */
    }
    int64_t nt = gemm_tokens;
    float *x = malloc(sizeof(float) * (size_t)(nt * s->cols));
    float *y = malloc(sizeof(float) * (size_t)(nt * s->rows));
    for (int64_t i = 0; i < nt * s->cols; i++) x[i] = (float)(rnd() % 2001) * 1e-3f - 1.0f;
    bn_act a1, an;
    bn_act_init(&a1);
    bn_act_init(&an);
    bn_act_format fmt = bn_weight_act_format(&w[0]);
    bn_act_quantize(&a1, fmt, x, 1, s->cols, pool);
    bn_act_quantize(&an, fmt, x, nt, s->cols, pool);

    /* GEMV: timed runs of ~0.15 s (at least one pass over the copies); the best of g_reps runs
     * counts, so a machine shared with other work still shows what the kernel can do */
    for (int c = 0; c < copies; c++) bn_matmul(&w[c], &a1, y, pool);
    double target = quick ? 0.08 : 0.15, best = 1e30;
    int next = 0;
    for (int rep = 0; rep < g_reps; rep++) {
        int iters = 0;
        double t0 = now();
        while (now() - t0 < target || iters < copies) {
            bn_matmul(&w[next], &a1, y, pool);
            next = (next + 1) % copies;
            iters++;
        }
        double dt = (now() - t0) / iters;
        if (dt < best) best = dt;
    }
    res.gemv_us = best * 1e6;
    res.gemv_gbs = (double)nb / best / 1e9;
    res.gemv_tok_s = 1.0 / best;

    /* GEMM: n tokens at once, best of g_reps runs */
    if (nt > 1) {
        bn_matmul(&w[0], &an, y, pool);
        double bestg = 1e30;
        for (int rep = 0; rep < g_reps; rep++) {
            int it = 0;
            double t0 = now();
            while (now() - t0 < target || it < 2) {
                bn_matmul(&w[next], &an, y, pool);
                next = (next + 1) % copies;
                it++;
            }
            double dg = (now() - t0) / it;
            if (dg < bestg) bestg = dg;
        }
        res.gemm_tok_s = (double)nt / bestg;
    }
    bn_act_free(&a1);
    bn_act_free(&an);
    for (int c = 0; c < copies; c++) {
        bn_weight_free(&w[c]);
        bn_aligned_free(ws[c]);
    }
    free(ws), free(w), free(x), free(y);
    return res;
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *types_arg = "I2_S,TQ2_0,TQ1_0", *heads_arg = "F16";
    const char *threads_arg = "1,2";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--hot")) g_hot = 1;
        else if (!strcmp(argv[i], "--file-layout")) g_file_layout = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) g_reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types_arg = argv[++i];
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) heads_arg = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads_arg = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--hot] [--file-layout] [--reps N] [--types I2_S,TQ2_0,TQ1_0] [--heads F16,Q8_0,Q6_K] [--threads 1,2]\n", argv[0]);
            return 2;
        }
    }
    const shape shapes[] = {
        {"attn_q/attn_output 2560x2560", 2560, 2560},
        {"attn_k/attn_v 640x2560", 640, 2560},
        {"ffn_gate/ffn_up 6912x2560", 6912, 2560},
        {"ffn_down 2560x6912", 2560, 6912},
    };
    const shape head = {"output head 128256x2560", 128256, 2560};
    printf("kernels: %s; best of %d runs per figure\n\n", bn_kernel_impl_name(bn_kernels_active()), g_reps);
    int threads[8], n_threads = 0;
    for (const char *p = threads_arg; *p && n_threads < 8;) {
        threads[n_threads++] = atoi(p);
        const char *c = strchr(p, ',');
        if (!c) break;
        p = c + 1;
    }
    for (int ti = 0; ti < n_threads; ti++) {
        int nth = threads[ti];
        bn_threadpool *pool;
        if (bn_threadpool_init(&pool, nth) != BN_OK) return 1;
        double bw = read_bandwidth(pool, quick ? (256u << 20) : (1024u << 20));
        printf("## %d thread%s: read bandwidth %.2f GB/s\n\n", nth, nth > 1 ? "s" : "", bw);
        printf("| type | shape | GEMV us | GEMV GB/s | read bw now GB/s | %% of read bw | GEMM-128 tok/s | GEMV tok/s | GEMM speed-up/token |\n");
        printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        const char *tp = types_arg;
        while (*tp) {
            uint32_t type = 0;
            if (!strncmp(tp, "I2_S", 4)) type = BN_TYPE_I2_S;
            else if (!strncmp(tp, "TQ2_0", 5)) type = BN_TYPE_TQ2_0;
            else if (!strncmp(tp, "TQ1_0", 5)) type = BN_TYPE_TQ1_0;
            if (type)
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                    result r = bench_shape(type, &shapes[si], pool, quick, 128);
                    /* the read bandwidth again, right after: other work on the machine varies */
                    double bw_now = read_bandwidth(pool, 256u << 20);
                    printf("| %s | %s | %.1f | %.2f | %.2f | %.0f%% | %.0f | %.0f | %.1fx |\n", bn_type_name(type),
                           shapes[si].name, r.gemv_us, r.gemv_gbs, bw_now, 100.0 * r.gemv_gbs / bw_now, r.gemm_tok_s,
                           r.gemv_tok_s, r.gemm_tok_s / r.gemv_tok_s);
                    fflush(stdout);
                }
            const char *c = strchr(tp, ',');
            if (!c) break;
            tp = c + 1;
        }
        for (const char *hp = heads_arg; *hp;) {
            uint32_t type = !strncmp(hp, "Q8_0", 4) ? BN_TYPE_Q8_0 : !strncmp(hp, "Q6_K", 4) ? BN_TYPE_Q6_K : BN_TYPE_F16;
            result r = bench_shape(type, &head, pool, quick, quick ? 8 : 32);
            double bw_now = read_bandwidth(pool, 256u << 20);
            printf("| %s | %s | %.1f | %.2f | %.2f | %.0f%% | %.1f | %.1f | %.1fx |\n", bn_type_name(type), head.name,
                   r.gemv_us, r.gemv_gbs, bw_now, 100.0 * r.gemv_gbs / bw_now, r.gemm_tok_s, r.gemv_tok_s,
                   r.gemm_tok_s / r.gemv_tok_s);
            fflush(stdout);
            const char *c = strchr(hp, ',');
            if (!c) break;
            hp = c + 1;
        }
        printf("\n");
        bn_threadpool_free(pool);
    }
    printf("(head GEMM rows: %d tokens per call.)\n", quick ? 8 : 32);
    return 0;
}
