/* Times the WebAssembly SIMD128 kernels against the reference on one thread, for the figures in
 * docs/performance.md (not a test: CTest does not run it).  After `ctest -R test_kernels_wasm`:
 *   node --experimental-wasi-unstable-preview1 tests/wasm/run_wasi.mjs \
 *        <build>/tests/wasm/wasm32/build/bench_kernels_wasm.wasm [rows K]
 * Default shape 2560 x 2560 (BitNet b1.58 2B-4T's attention projections); GEMV is 1 token, GEMM 16. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fp16.h"
#include "kernels/kernels.h"
#include "quant/quant.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ms per product: the best of 5 timed runs, each repeating the product for at least 0.1 s */
static double time_ms(const bn_weight *w, const bn_act *a, float *y)
{
    double best = 1e30;
    bn_matmul(w, a, y, NULL);
    for (int run = 0; run < 5; run++) {
        int reps = 0;
        double t0 = now(), t;
        do {
            bn_matmul(w, a, y, NULL);
            reps++;
        } while ((t = now() - t0) < 0.1);
        if (t / reps < best) best = t / reps;
    }
    return best * 1e3;
}

int main(int argc, char **argv)
{
    int64_t rows = argc > 2 ? atoll(argv[1]) : 2560, K = argc > 2 ? atoll(argv[2]) : 2560;
    if (rows < 1 || K < 256 || K % 256) {
        fprintf(stderr, "usage: %s [rows K]   (K a multiple of 256)\n", argv[0]);
        return 2;
    }
    const uint32_t types[] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0, BN_TYPE_Q8_0,
                              BN_TYPE_Q6_K, BN_TYPE_F16,   BN_TYPE_BF16,  BN_TYPE_F32};
    const int64_t n = rows * K;
    float *f = malloc(sizeof(float) * (size_t)n), *sc = malloc(sizeof(float) * (size_t)(n / 128 + 1));
    int8_t *t = malloc((size_t)n);
    float *x = malloc(sizeof(float) * (size_t)(16 * K)), *y = malloc(sizeof(float) * (size_t)(16 * rows));
    if (!f || !sc || !t || !x || !y) return 1;
    uint32_t s = 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        t[i] = (int8_t)((int)(s >> 30) % 3 - 1);
    }
    for (int64_t i = 0; i < n / 128 + 1; i++) sc[i] = 1.0f;
    for (int64_t i = 0; i < 16 * K; i++) x[i] = f[i % n];
    printf("%lld x %lld, 1 thread, ms per product\n\n", (long long)rows, (long long)K);
    printf("| type | GEMV ref | GEMV wasm | speed-up | GEMM-16 ref | GEMM-16 wasm | speed-up |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        size_t nb;
        if (!bn_type_tensor_nbytes(type, K, n, &nb)) return 1;
        void *wd = malloc(nb);
        if (!wd) return 1;
        bn_status st = type == BN_TYPE_I2_S || type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0
                           ? bn_ternary_encode(type, t, sc, n, wd)
                           : bn_quantize(type, f, rows, K, wd);
        bn_weight w;
        if (st != BN_OK || bn_weight_init(&w, type, wd, rows, K) != BN_OK) {
            printf("| %s | (not encodable here) |\n", bn_type_name(type));
            free(wd);
            continue;
        }
        double ms[2][2];
        for (int g = 0; g < 2; g++) {
            bn_act a;
            bn_act_init(&a);
            if (bn_act_quantize(&a, bn_weight_act_format(&w), x, g ? 16 : 1, K, NULL) != BN_OK) return 1;
            for (int impl = 0; impl < 2; impl++) {
                if (bn_kernels_force(impl ? BN_KERNEL_WASM : BN_KERNEL_REF) != BN_OK) return 1;
                ms[g][impl] = time_ms(&w, &a, y);
            }
            bn_act_free(&a);
        }
        printf("| %s | %.3f | %.3f | %.1f× | %.2f | %.2f | %.1f× |\n", bn_type_name(type), ms[0][0], ms[0][1],
               ms[0][0] / ms[0][1], ms[1][0], ms[1][1], ms[1][0] / ms[1][1]);
        bn_weight_free(&w);
        free(wd);
    }
    free(f), free(sc), free(t), free(x), free(y);
    return 0;
}
