/* The WebAssembly SIMD128 kernels (src/kernels/kernels_wasm.c) against the scalar reference, bit
 * for bit, built for wasm32-wasi and run under Node (wasm_node.sh).  cmocka has no wasm32 build,
 * so this is a plain program: each failed check prints what differed, and the exit status is the
 * number of failures (capped), 0 when all pass.
 *
 *   test_kernels_wasm.wasm [--expect-active NAME] [--dispatch-only]
 * --expect-active: the implementation the dispatcher must pick by itself (BITNET_KERNELS decides
 * it, or the build: on wasm32 with SIMD128, wasm); --dispatch-only stops after that check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "quant/quant.h"

#if !defined(__wasm_simd128__)
#error "this test is built for wasm32 with SIMD128 (cmake/wasm32-wasi.cmake)"
#endif

static int g_failures;
static long g_checks;

#define CHECK(cond, ...)                                                                            \
    do {                                                                                            \
        g_checks++;                                                                                 \
        if (!(cond)) {                                                                              \
            g_failures++;                                                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                    \
            fprintf(stderr, __VA_ARGS__);                                                           \
            fputc('\n', stderr);                                                                    \
        }                                                                                           \
    } while (0)
/* For setup steps whose failure makes the rest meaningless. */
#define REQUIRE(cond)                                                                               \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "FATAL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, bn_last_error());  \
            exit(100);                                                                              \
        }                                                                                           \
    } while (0)

#define BN_TEST_SEED 4242
#include "../support/test_rand.h"

static const uint32_t all_types[] = BN_TEST_KERNEL_TYPES;
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static size_t type_nbytes(uint32_t type, int64_t rows, int64_t K)
{
    size_t nb;
    REQUIRE(bn_type_tensor_nbytes(type, K, rows * K, &nb));
    return nb;
}

static void put_f16(uint8_t *p, float f)
{
    uint16_t h = bn_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* How weights are made: from the encoders (valid data), or raw random bytes where every bit
 * pattern is legal for the kernel (corrupt ternary codes 3, TQ1_0 bytes above 242, any Q6_K scale,
 * fp16/bf16 subnormals and extremes), with the float scales kept finite. */
enum { W_ENCODED, W_RAW };

static void *make_weights(uint32_t type, int64_t rows, int64_t K, int how)
{
    size_t nb = type_nbytes(type, rows, K);
    uint8_t *p = malloc(nb);
    REQUIRE(p);
    int64_t n = rows * K;
    if (how == W_RAW) {
        for (size_t i = 0; i < nb; i++) p[i] = (uint8_t)rnd();
        switch (type) {
        case BN_TYPE_I2_S: {
            float s = 0.5f + (float)(rnd() % 1000) / 1000.0f;
            memcpy(p + n / 4, &s, 4);
            break;
        }
        case BN_TYPE_TQ2_0:
        case BN_TYPE_TQ1_0:
        case BN_TYPE_Q6_K: {
            size_t bsz = type == BN_TYPE_TQ2_0 ? 66 : type == BN_TYPE_TQ1_0 ? 54 : 210;
            for (size_t b = 0; b < nb / bsz; b++) put_f16(p + b * bsz + bsz - 2, 0.001f + (float)(rnd() % 1000) / 1e5f);
            break;
        }
        case BN_TYPE_Q8_0:
            for (size_t b = 0; b < nb / 34; b++) put_f16(p + b * 34, 0.001f + (float)(rnd() % 100) / 1e4f);
            break;
        case BN_TYPE_F16:
        case BN_TYPE_BF16: {
            /* any finite value: subnormals, zeros of both signs, the largest magnitudes */
            uint16_t *h = (uint16_t *)(void *)p, expmask = type == BN_TYPE_F16 ? 0x7c00 : 0x7f80;
            for (int64_t i = 0; i < n; i++)
                if ((h[i] & expmask) == expmask) h[i] &= (uint16_t)~0x4000; /* clear the top exponent bit */
            break;
        }
        case BN_TYPE_F32: {
            /* wide exponents (2^-40 .. 2^40) so the fused steps round in every way */
            float *f = (float *)(void *)p;
            for (int64_t i = 0; i < n; i++) f[i] = ldexpf(rndf(), (int)(rnd() % 81) - 40);
            break;
        }
        default: break;
        }
        return p;
    }
    if (type == BN_TYPE_I2_S || type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0) {
        int8_t *t = malloc((size_t)n);
        float *sc = malloc(sizeof(float) * (size_t)(n / 128 + 1));
        REQUIRE(t && sc);
        for (int64_t i = 0; i < n; i++) t[i] = (int8_t)((int)(rnd() % 3) - 1);
        for (int64_t b = 0; b < n / 128 + 1; b++) sc[b] = 0.01f + (float)(rnd() % 1000) / 1000.0f;
        REQUIRE(bn_ternary_encode(type, t, sc, n, p) == BN_OK);
        free(t);
        free(sc);
    } else if (type == BN_TYPE_Q8_0) {
        for (size_t i = 0; i < nb; i++) p[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb / 34; b++) put_f16(p + b * 34, 0.001f + (float)(rnd() % 100) / 1e4f);
    } else {
        float *f = malloc(sizeof(float) * (size_t)n);
        REQUIRE(f);
        for (int64_t i = 0; i < n; i++) f[i] = rndf() * 0.1f;
        REQUIRE(bn_quantize(type, f, rows, K, p) == BN_OK);
        free(f);
    }
    return p;
}

static float *make_input(int64_t n_tok, int64_t K)
{
    float *x = malloc(sizeof(float) * (size_t)(n_tok * K));
    REQUIRE(x);
    for (int64_t i = 0; i < n_tok * K; i++) x[i] = rndf() * (1.0f + (float)(i % 7));
    return x;
}

/* Equal bits, or both NaN (WebAssembly leaves a NaN's sign and payload to the engine). */
static int same_float(float a, float b) { return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)); }

/* The product on the reference, then on the wasm table: through bn_matmul (all rows) and through
 * the table's function called directly on two row ranges split at a random row (as threads would
 * split it). */
static void compare_one(const char *what, const bn_weight *w, const bn_act *a)
{
    const int64_t n = w->rows * a->n_tok;
    float *y0 = malloc(sizeof(float) * (size_t)n), *y1 = malloc(sizeof(float) * (size_t)n);
    float *y2 = malloc(sizeof(float) * (size_t)n);
    REQUIRE(y0 && y1 && y2);
    REQUIRE(bn_kernels_force(BN_KERNEL_REF) == BN_OK);
    REQUIRE(bn_matmul(w, a, y0, NULL) == BN_OK);
    REQUIRE(bn_kernels_force(BN_KERNEL_WASM) == BN_OK);
    REQUIRE(bn_matmul(w, a, y1, NULL) == BN_OK);
    bn_act_view v;
    bn_act_view_get(a, &v);
    bn_mm_fn fn = bn_kernel_table_get(BN_KERNEL_WASM)->mm[w->type];
    if (!fn) { /* test_table_covered reports it */
        free(y0), free(y1), free(y2);
        return;
    }
    int64_t split = (int64_t)(rnd() % (uint32_t)(w->rows + 1));
    for (int64_t i = 0; i < n; i++) y2[i] = -12345.0f;
    if (split > 0) fn(w, &v, y2, 0, split);
    if (split < w->rows) fn(w, &v, y2, split, w->rows);
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 3; i++) {
        if (!same_float(y0[i], y1[i]) || !same_float(y0[i], y2[i])) {
            CHECK(0, "%s: %s %lld x %lld, %lld tokens: y[%lld] = %.9g (rows split at %lld: %.9g), reference %.9g", what,
                  bn_type_name(w->type), (long long)w->rows, (long long)w->cols, (long long)a->n_tok, (long long)i,
                  y1[i], (long long)split, y2[i], y0[i]);
            bad++;
        }
    }
    g_checks++;
    free(y0), free(y1), free(y2);
}

static void compare_shape(const char *what, uint32_t type, int64_t rows, int64_t K, int64_t n_tok, int how)
{
    void *wd = make_weights(type, rows, K, how);
    float *x = make_input(n_tok, K);
    bn_weight w;
    REQUIRE(bn_weight_init(&w, type, wd, rows, K) == BN_OK);
    bn_act a;
    bn_act_init(&a);
    REQUIRE(bn_act_quantize(&a, bn_weight_act_format(&w), x, n_tok, K, NULL) == BN_OK);
    compare_one(what, &w, &a);
    bn_act_free(&a);
    bn_weight_free(&w);
    free(wd), free(x);
}

/* Every entry of the wasm table is one of the types tested here, and each of those has one. */
static void test_table_covered(void)
{
    const bn_kernel_table *tab = bn_kernel_table_get(BN_KERNEL_WASM);
    CHECK(tab != &bn_kernels_ref, "the wasm table is not compiled in");
    for (uint32_t t = 0; t < BN_TYPE_COUNT; t++) {
        int listed = 0;
        for (size_t i = 0; i < N_TYPES; i++) listed |= all_types[i] == t;
        CHECK(!tab->mm[t] || listed, "wasm table has a kernel for %s that this test does not cover", bn_type_name(t));
        CHECK(tab->mm[t] || !listed, "wasm table has no kernel for %s", bn_type_name(t));
    }
}

static void test_random_shapes(void)
{
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = all_types[ti];
        int64_t m = col_multiple(type);
        /* odd and even row counts, K from one block up to 2048 + a block, 1 to 13 tokens (GEMV,
         * then GEMM with every remainder of the 4-token groups) */
        for (int rep = 0; rep < 24; rep++) {
            int64_t rows = 1 + (int64_t)(rnd() % 37);
            int64_t K = m == 1 ? 1 + (int64_t)(rnd() % 700) : m * (1 + (int64_t)(rnd() % (2048 / m + 1)));
            int64_t n_tok = rep < 4 ? 1 : 1 + (int64_t)(rnd() % 13);
            compare_shape("random", type, rows, K, n_tok, rep & 1 ? W_RAW : W_ENCODED);
        }
        compare_shape("smallest K", type, 3, m == 1 ? 1 : m, 5, W_ENCODED);
        compare_shape("K 16384 GEMV", type, 5, 16384, 1, W_RAW);
        compare_shape("K 16384 GEMM", type, 3, 16384, 6, W_ENCODED);
        compare_shape("many rows", type, 131, m == 1 ? 160 : 512, 2, W_RAW);
        compare_shape("2B-4T's K", type, 7, 6912, 4, W_ENCODED);
        if (m == 1)
            for (int64_t K = 29; K <= 35; K++) compare_shape("float tails", type, 3, K, 2, W_RAW);
    }
}

/* Worst cases for the integer sums: every weight at its largest code (ternary +1, or 3 as a
 * corrupt file may hold), every activation at an extreme of int8, at the model's K = 6912 and
 * beyond.  Every q is set to fill (-128 or 127; 2: -128 and 127 in turn), and the activation sums
 * to match. */
static void poke_extreme(bn_act *a, int fill)
{
    bn_act_view v;
    bn_act_view_get(a, &v);
    int8_t *q = (int8_t *)v.q;
    int64_t n = v.n_tok * v.cols;
    for (int64_t i = 0; i < n; i++) q[i] = (int8_t)(fill == 2 ? (i & 1 ? 127 : -128) : fill);
    if (a->format == BN_ACT_I8_ROW)
        for (int64_t t = 0; t < v.n_tok; t++) {
            int32_t s = 0;
            for (int64_t k = 0; k < v.cols; k++) s += q[t * v.cols + k];
            ((int32_t *)v.sum)[t] = s;
        }
    if (a->format == BN_ACT_Q8_K)
        for (int64_t b = 0; b < n / 256; b++) {
            int32_t s = 0;
            for (int j = 0; j < 16; j++) {
                int s16 = 0;
                for (int l = 0; l < 16; l++) s16 += q[b * 256 + j * 16 + l];
                ((int16_t *)v.bsums)[b * 16 + j] = (int16_t)s16;
                s += s16;
            }
            ((int32_t *)v.sum)[b] = s;
        }
}

static void *extreme_weights(uint32_t type, int64_t rows, int64_t K, int code3)
{
    int64_t n = rows * K;
    size_t nb = type_nbytes(type, rows, K);
    uint8_t *p = malloc(nb);
    REQUIRE(p);
    if (type == BN_TYPE_Q8_0 || type == BN_TYPE_Q6_K) {
        /* Q8_0: every weight -128; Q6_K: every value 0 (-32 after the offset), every scale -128 */
        memset(p, type == BN_TYPE_Q8_0 ? 0x80 : 0, nb);
        size_t bsz = type == BN_TYPE_Q8_0 ? 34 : 210;
        for (size_t b = 0; b < nb / bsz; b++) {
            if (type == BN_TYPE_Q6_K) memset(p + b * bsz + 192, 0x80, 16);
            put_f16(p + b * bsz + (type == BN_TYPE_Q8_0 ? 0 : bsz - 2), 1.0f);
        }
        return p;
    }
    if (code3 && type != BN_TYPE_TQ1_0) {
        /* every 2-bit code 3 (value +2) */
        memset(p, 0xff, nb);
        if (type == BN_TYPE_I2_S) {
            float s = 1.0f;
            memcpy(p + n / 4, &s, 4);
        } else {
            for (size_t b = 0; b < nb / 66; b++) put_f16(p + b * 66 + 64, 1.0f);
        }
        return p;
    }
    if (code3) {
        /* TQ1_0: byte 0xff gives the largest trits the format can hold */
        memset(p, 0xff, nb);
        for (size_t b = 0; b < nb / 54; b++) put_f16(p + b * 54 + 52, 1.0f);
        return p;
    }
    int8_t *t = malloc((size_t)n);
    float *sc = malloc(sizeof(float) * (size_t)(n / 128 + 1));
    REQUIRE(t && sc);
    memset(t, 1, (size_t)n);
    for (int64_t i = 0; i < n / 128 + 1; i++) sc[i] = 1.0f;
    REQUIRE(bn_ternary_encode(type, t, sc, n, p) == BN_OK);
    free(t), free(sc);
    return p;
}

static void worst_case_one(uint32_t type, int64_t K, int fill, int code3)
{
    const int64_t rows = 3, n_tok = 5;
    void *wd = extreme_weights(type, rows, K, code3);
    float *x = make_input(n_tok, K);
    bn_weight w;
    REQUIRE(bn_weight_init(&w, type, wd, rows, K) == BN_OK);
    bn_act a;
    bn_act_init(&a);
    REQUIRE(bn_act_quantize(&a, bn_weight_act_format(&w), x, n_tok, K, NULL) == BN_OK);
    poke_extreme(&a, fill);
    char what[64];
    snprintf(what, sizeof what, "worst case (q %s%s)", fill == 2 ? "-128/127" : fill < 0 ? "-128" : "127",
             code3 ? ", code 3" : "");
    compare_one(what, &w, &a);
    if (type == BN_TYPE_I2_S && !code3) {
        /* and the exact value: every weight +1, so acc = 2 * sum(q) */
        bn_act_view v;
        bn_act_view_get(&a, &v);
        float y[3 * 5];
        REQUIRE(bn_matmul(&w, &a, y, NULL) == BN_OK);
        for (int64_t t = 0; t < n_tok; t++) {
            int64_t qs = 0;
            for (int64_t k = 0; k < K; k++) qs += v.q[t * K + k];
            float e = ((float)(2 * qs) - (float)qs) / v.d[t] * w.scale;
            CHECK(same_float(e, y[t * rows]), "I2_S worst case K %lld: %.9g, expected %.9g", (long long)K, y[t * rows],
                  e);
        }
    }
    bn_act_free(&a);
    free(wd), free(x);
}

static void test_worst_case_sums(void)
{
    const uint32_t types[] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0, BN_TYPE_Q8_0, BN_TYPE_Q6_K};
    const int64_t Ks[] = {6912, 16384, 65536};
    const int fills[] = {-128, 127, 2 /* alternating */};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int has_code3 = types[ti] != BN_TYPE_Q8_0 && types[ti] != BN_TYPE_Q6_K;
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
            for (size_t fi = 0; fi < sizeof fills / sizeof fills[0]; fi++)
                for (int code3 = 0; code3 <= has_code3; code3++) worst_case_one(types[ti], Ks[ki], fills[fi], code3);
    }
}

/* The F32 kernel's fused multiply-add, emulated in f64 lanes, on the cases where rounding twice
 * (to double, then to float) goes wrong: the exact a*b + c lies a quarter of a double unit or less
 * from a float tie, on the side away from the tie's even neighbour.
 *   c = 1 + 2^-23, a*b = 2^-24 - 2^-54: just below the tie 1 + 3*2^-24, so 1 + 2^-23 (rounding
 *     twice gives 1 + 2^-22, the even neighbour); and the same negated.
 *   c = 1, a*b = 2^-24 + 2^-60: just above the tie 1 + 2^-24, so 1 + 2^-23 (twice gives 1).
 * The first step of every lane is c * 1 + 0 (exact), the second a * b + c; all 32 lanes take the
 * same steps, so y = 32 * lane value, exactly. */
static void test_f32_fused_rounding(void)
{
    const struct {
        float c, a, b, lane;
    } cases[] = {
        {1.0f + 0x1p-23f, 1.0f - 0x1p-15f, 0x1p-24f * (1.0f + 0x1p-15f), 1.0f + 0x1p-23f},
        {-(1.0f + 0x1p-23f), 1.0f - 0x1p-15f, -0x1p-24f * (1.0f + 0x1p-15f), -(1.0f + 0x1p-23f)},
        {1.0f, 1.0f + 0x1p-12f, 0x1p-24f * (1.0f - 0x1p-12f + 0x1p-24f), 1.0f + 0x1p-23f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int64_t K = 64;
        float wv[64], xv[64];
        for (int l = 0; l < 32; l++) {
            wv[l] = cases[ci].c;
            xv[l] = 1.0f;
            wv[32 + l] = cases[ci].a;
            xv[32 + l] = cases[ci].b;
        }
        bn_weight w;
        REQUIRE(bn_weight_init(&w, BN_TYPE_F32, wv, 1, K) == BN_OK);
        bn_act act;
        bn_act_init(&act);
        REQUIRE(bn_act_quantize(&act, BN_ACT_F32, xv, 1, K, NULL) == BN_OK);
        float y_ref, y_wasm;
        REQUIRE(bn_kernels_force(BN_KERNEL_REF) == BN_OK);
        REQUIRE(bn_matmul(&w, &act, &y_ref, NULL) == BN_OK);
        REQUIRE(bn_kernels_force(BN_KERNEL_WASM) == BN_OK);
        REQUIRE(bn_matmul(&w, &act, &y_wasm, NULL) == BN_OK);
        const float expect = 32.0f * cases[ci].lane;
        /* the double rounding the case is built to catch, so the case tests something */
        volatile double twice = (double)cases[ci].a * (double)cases[ci].b + (double)cases[ci].c;
        CHECK((float)twice != cases[ci].lane, "case %zu does not tell a fused step from a double-rounded one", ci);
        CHECK(same_float(y_wasm, expect), "F32 fused case %zu: wasm %.9g, expected %.9g", ci, y_wasm, expect);
        /* The reference calls libc's fmaf, which C defines as rounded once; Debian 12's wasi-libc
         * rounds twice in some of these cases.  The kernel follows the definition (and the
         * reference on other targets), so a reference that differs here is the libc's fault. */
        if (!same_float(y_ref, expect))
            printf("note: this libc's fmaf rounds twice (case %zu: %a, correctly rounded %a); the reference F32 "
                   "kernel inherits it, the wasm kernel does not\n",
                   ci, y_ref / 32.0f, expect / 32.0f);
        bn_act_free(&act);
    }
}

/* fp16 weights holding infinities and NaNs: the SIMD conversion's special-value path. */
static void test_f16_specials(void)
{
    const int64_t rows = 4, K = 64;
    uint16_t wv[4 * 64];
    for (int64_t i = 0; i < rows * K; i++) wv[i] = bn_fp32_to_fp16(rndf());
    wv[3] = 0x7c00;             /* +inf */
    wv[K + 40] = 0xfc00;        /* -inf */
    wv[2 * K + 7] = 0x7e01;     /* NaN */
    wv[3 * K + 1] = 0x0001;     /* the smallest subnormal */
    wv[3 * K + 2] = 0x83ff;     /* the largest negative subnormal */
    float x[64];
    for (int k = 0; k < K; k++) x[k] = rndf();
    bn_weight w;
    REQUIRE(bn_weight_init(&w, BN_TYPE_F16, wv, rows, K) == BN_OK);
    bn_act a;
    bn_act_init(&a);
    REQUIRE(bn_act_quantize(&a, BN_ACT_F16, x, 1, K, NULL) == BN_OK);
    compare_one("fp16 specials", &w, &a);
    bn_act_free(&a);
}

/* The dispatcher's own choice, before anything is forced. */
static void test_dispatch(const char *expect)
{
    const char *got = bn_kernel_impl_name(bn_kernels_active());
    CHECK(strcmp(got, expect) == 0, "active kernels %s, expected %s", got, expect);
    CHECK(bn_cpu_features_get()->wasm_simd == 1, "wasm_simd feature not reported");
    CHECK(bn_kernel_impl_available(BN_KERNEL_WASM), "wasm kernels not available");
    CHECK(!bn_kernel_impl_available(BN_KERNEL_AVX2) && !bn_kernel_impl_available(BN_KERNEL_NEON),
          "a native implementation claims to be available on wasm32");
    CHECK(bn_kernels_force(BN_KERNEL_AVX2) == BN_ERR_UNSUPPORTED, "forcing avx2 on wasm32 did not fail");
    CHECK(bn_kernels_force(BN_KERNEL_WASM) == BN_OK, "forcing wasm failed");
    CHECK(bn_kernels_active() == BN_KERNEL_WASM, "forced wasm is not active");
}

int main(int argc, char **argv)
{
    const char *expect = "wasm";
    int dispatch_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect-active") == 0 && i + 1 < argc) expect = argv[++i];
        else if (strcmp(argv[i], "--dispatch-only") == 0) dispatch_only = 1;
        else {
            fprintf(stderr, "usage: %s [--expect-active NAME] [--dispatch-only]\n", argv[0]);
            return 2;
        }
    }
    test_dispatch(expect);
    if (!dispatch_only) {
        test_table_covered();
        test_random_shapes();
        test_worst_case_sums();
        test_f32_fused_rounding();
        test_f16_specials();
    }
    printf("%s: %ld checks, %d failed\n", g_failures ? "FAILED" : "PASSED", g_checks, g_failures);
    return g_failures ? (g_failures < 99 ? g_failures : 99) : 0;
}
