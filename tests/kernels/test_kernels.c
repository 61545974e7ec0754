/* Tests of src/kernels: the reference matmul against a naive double-precision computation of the
 * same quantised math, every SIMD implementation against the reference (bit for bit), worst-case
 * integer ranges, threading, dispatch and bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "common/mem.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "quant/quant.h"

#define BN_TEST_SEED 2024
#include "../support/test_rand.h"

static const uint32_t all_types[] = BN_TEST_KERNEL_TYPES;
#define N_TYPES (sizeof all_types / sizeof all_types[0])

/* Random weights of a type (valid ternary codes only). */
static int g_any_bytes; /* make_weights: TQ1_0/TQ2_0 code bytes of any value (as in a corrupt file) */

static void *make_weights(uint32_t type, int64_t rows, int64_t K)
{
    size_t nb;
    assert_true(bn_type_tensor_nbytes(type, K, rows * K, &nb));
    uint8_t *p = malloc(nb);
    int64_t n = rows * K;
    if (g_any_bytes && (type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0)) {
        size_t bsz = type == BN_TYPE_TQ1_0 ? 54 : 66;
        for (size_t i = 0; i < nb; i++) p[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb / bsz; b++) memcpy(p + b * bsz + bsz - 2, &(uint16_t){0x3800}, 2); /* d = 0.5 */
        return p;
    }
    if (type == BN_TYPE_I2_S || type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0) {
        int8_t *t = malloc((size_t)n);
        float *sc = malloc(sizeof(float) * (size_t)(n / 128 + 1));
        for (int64_t i = 0; i < n; i++) t[i] = (int8_t)((int)(rnd() % 3) - 1);
        for (int64_t b = 0; b < n / 128 + 1; b++) sc[b] = 0.01f + (float)(rnd() % 1000) / 1000.0f;
        assert_int_equal(bn_ternary_encode(type, t, sc, n, p), BN_OK);
        free(t);
        free(sc);
    } else if (type == BN_TYPE_F32 || type == BN_TYPE_F16 || type == BN_TYPE_BF16 || type == BN_TYPE_Q6_K) {
        /* Q6_K weights come from the encoder, so its output is what the kernels are checked on */
        float *f = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) f[i] = rndf() * 0.1f;
        assert_int_equal(bn_quantize(type, f, rows, K, p), BN_OK);
        free(f);
    } else {
        for (size_t i = 0; i < nb; i++) p[i] = (uint8_t)rnd();
        /* Q8_0: keep the fp16 block scales finite and modest */
        for (size_t b = 0; b < nb / 34; b++) {
            uint16_t h = bn_fp32_to_fp16(0.001f + (float)(rnd() % 100) / 10000.0f);
            memcpy(p + b * 34, &h, 2);
        }
    }
    return p;
}

static float *make_input(int64_t n_tok, int64_t K)
{
    float *x = malloc(sizeof(float) * (size_t)(n_tok * K));
    for (int64_t i = 0; i < n_tok * K; i++) x[i] = rndf() * (1.0f + (float)(i % 7));
    return x;
}

/* The activation value the kernel sees, from the prepared buffer. */
static double act_value(const bn_act_view *v, bn_act_format f, int64_t t, int64_t k)
{
    int64_t K = v->cols;
    switch (f) {
    case BN_ACT_I8_ROW: return (double)v->q[t * K + k] / (double)v->d[t];
    case BN_ACT_Q8_K: return (double)v->q[t * K + k] * (double)v->d[t * (K / 256) + k / 256];
    case BN_ACT_Q8_0: return (double)v->q[t * K + k] * (double)v->d[t * (K / 32) + k / 32];
    case BN_ACT_F16: return bn_fp16_to_fp32(v->h[t * K + k]);
    case BN_ACT_BF16: return bn_bf16_to_fp32(v->h[t * K + k]);
    default: return v->x[t * K + k];
    }
}

/* y by the naive route: dequantise the weight row, multiply with the activation values in double. */
static void naive(const bn_weight *w, const bn_act *a, double *y, double *mag)
{
    bn_act_view v;
    bn_act_view_get(a, &v);
    float *row = malloc(sizeof(float) * (size_t)w->cols);
    for (int64_t r = 0; r < w->rows; r++) {
        assert_int_equal(bn_dequantize_row(w->type, w->data, w->cols, r, w->scale, row), BN_OK);
        for (int64_t t = 0; t < a->n_tok; t++) {
            double s = 0, m = 0;
            for (int64_t k = 0; k < w->cols; k++) {
                double p = (double)row[k] * act_value(&v, a->format, t, k);
                s += p;
                m += fabs(p);
            }
            y[t * w->rows + r] = s;
            mag[t * w->rows + r] = m;
        }
    }
    free(row);
}

static void test_reference_matches_naive(void **state)
{
    (void)state;
    assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = all_types[ti];
        int64_t K = col_multiple(type) * (type == BN_TYPE_I2_S ? 5 : 3), rows = 7, n_tok = 3;
        if (col_multiple(type) == 1) K = 99; /* float types: any K, with a tail after the 32-lane part */
        void *wd = make_weights(type, rows, K);
        float *x = make_input(n_tok, K);
        bn_weight w;
        assert_int_equal(bn_weight_init(&w, type, wd, rows, K), BN_OK);
        bn_act a;
        bn_act_init(&a);
        assert_int_equal(bn_act_quantize(&a, bn_weight_act_format(&w), x, n_tok, K, NULL), BN_OK);
        float *y = malloc(sizeof(float) * (size_t)(rows * n_tok));
        double *yn = malloc(sizeof(double) * (size_t)(rows * n_tok)), *mag = malloc(sizeof(double) * (size_t)(rows * n_tok));
        assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_OK);
        naive(&w, &a, yn, mag);
        for (int64_t i = 0; i < rows * n_tok; i++) {
            double tol = 1e-6 * mag[i] + 1e-30;
            if (fabs((double)y[i] - yn[i]) > tol) {
                fprintf(stderr, "%s: y[%lld] = %.9g, naive %.9g\n", bn_type_name(type), (long long)i, y[i], yn[i]);
                fail();
            }
        }
        bn_act_free(&a);
        bn_weight_free(&w);
        free(wd), free(x), free(y), free(yn), free(mag);
    }
}

static void test_i2s_exact_formula(void **state)
{
    (void)state;
    /* y = ((float)acc - (float)sum) / s * scale, in float, with acc = sum(code * q) */
    assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
    const int64_t K = 256, rows = 3;
    void *wd = make_weights(BN_TYPE_I2_S, rows, K);
    float *x = make_input(1, K);
    bn_weight w;
    assert_int_equal(bn_weight_init(&w, BN_TYPE_I2_S, wd, rows, K), BN_OK);
    bn_act a;
    bn_act_init(&a);
    assert_int_equal(bn_act_quantize(&a, BN_ACT_I8_ROW, x, 1, K, NULL), BN_OK);
    int8_t q[256];
    int32_t sum;
    float s = bn_quantize_act_i8(x, K, q, &sum);
    float y[3];
    assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_OK);
    for (int r = 0; r < rows; r++) {
        int32_t acc = 0;
        for (int k = 0; k < K; k++) acc += bn_i2s_code(wd, r * K + k) * q[k];
        float e = ((float)acc - (float)sum) / s * w.scale;
        assert_true(memcmp(&e, &y[r], 4) == 0);
    }
    bn_act_free(&a);
    free(wd), free(x);
}

/* Runs one product on the implementation k and on the reference; they must agree bit for bit. */
static void compare_impl(bn_kernel_impl k, uint32_t type, int64_t rows, int64_t K, int64_t n_tok, bn_threadpool *pool,
                         void (*poke)(bn_act *a))
{
    void *wd = make_weights(type, rows, K);
    float *x = make_input(n_tok, K);
    bn_weight w;
    assert_int_equal(bn_weight_init(&w, type, wd, rows, K), BN_OK);
    bn_act a;
    bn_act_init(&a);
    assert_int_equal(bn_act_quantize(&a, bn_weight_act_format(&w), x, n_tok, K, pool), BN_OK);
    if (poke) poke(&a);
    float *y0 = malloc(sizeof(float) * (size_t)(rows * n_tok)), *y1 = malloc(sizeof(float) * (size_t)(rows * n_tok));
    assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
    assert_int_equal(bn_matmul(&w, &a, y0, NULL), BN_OK);
    assert_int_equal(bn_kernels_force(k), BN_OK);
    /* the file layout, then (where the implementation has one) the repacked layout */
    for (int packed = 0; packed < 2; packed++) {
        if (packed) {
            size_t bytes;
            assert_int_equal(bn_weight_repack(&w, pool, &bytes), BN_OK);
            if (!bytes) break;
            size_t rb = (size_t)(type == BN_TYPE_I2_S ? K / 4 : K / 256 * (type == BN_TYPE_TQ1_0 ? 54 : 66));
            assert_true((type == BN_TYPE_I2_S || type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0) &&
                        bytes == (size_t)rows * rb && bytes == bn_weight_repack_size(&w));
        }
        assert_int_equal(bn_matmul(&w, &a, y1, pool), BN_OK);
        for (int64_t i = 0; i < rows * n_tok; i++)
            if (memcmp(&y0[i], &y1[i], 4) != 0) {
                fprintf(stderr, "%s %s%s rows %lld K %lld n_tok %lld: y[%lld] = %.9g, reference %.9g\n",
                        bn_kernel_impl_name(k), bn_type_name(type), packed ? " (repacked)" : "", (long long)rows,
                        (long long)K, (long long)n_tok, (long long)i, y1[i], y0[i]);
                fail();
            }
    }
    bn_act_free(&a);
    bn_weight_free(&w);
    free(wd), free(x), free(y0), free(y1);
}

static void test_impls_equal_reference(void **state)
{
    (void)state;
    bn_threadpool *pool;
    assert_int_equal(bn_threadpool_init(&pool, 2), BN_OK);
    for (int k = BN_KERNEL_AVX2; k <= BN_KERNEL_WASM; k++) {
        if (!bn_kernel_impl_available((bn_kernel_impl)k)) continue;
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            uint32_t type = all_types[ti];
            int64_t m = col_multiple(type);
            /* random shapes: odd row counts, K from one block up to 16384, 1 to 9 tokens */
            for (int rep = 0; rep < 6; rep++) {
                int64_t rows = 1 + (int64_t)(rnd() % 37);
                int64_t K = m == 1 ? 1 + (int64_t)(rnd() % 700) : m * (1 + (int64_t)(rnd() % (2048 / m + 1)));
                int64_t n_tok = rep < 2 ? 1 : 1 + (int64_t)(rnd() % 9);
                compare_impl((bn_kernel_impl)k, type, rows, K, n_tok, rep & 1 ? pool : NULL, NULL);
            }
            compare_impl((bn_kernel_impl)k, type, 5, 16384, 1, NULL, NULL);
            compare_impl((bn_kernel_impl)k, type, 3, 16384, 5, pool, NULL);
            if (m <= 128) compare_impl((bn_kernel_impl)k, type, 9, 128, 17, pool, NULL);
            /* repacked layouts: one block per row, groups of four or sixteen and the rows after
             * them, every token count of a tile, and batches longer than a kernel's token tile */
            compare_impl((bn_kernel_impl)k, type, 4, m, 1, NULL, NULL);
            compare_impl((bn_kernel_impl)k, type, 7, 2 * m, 1, pool, NULL);
            compare_impl((bn_kernel_impl)k, type, 13, 3 * m, 37, pool, NULL);
            compare_impl((bn_kernel_impl)k, type, 6, 1024 > m ? 1024 : m, 3, NULL, NULL);
            compare_impl((bn_kernel_impl)k, type, 16, m, 1, NULL, NULL);
            for (int64_t t = 2; t <= 9; t++) compare_impl((bn_kernel_impl)k, type, 35, 2 * m, t, t & 1 ? pool : NULL, NULL);
            compare_impl((bn_kernel_impl)k, type, 64, 10 * m, 1, pool, NULL);
            /* more rows than a GEMM row tile, a row cut into block ranges with an odd last block */
            compare_impl((bn_kernel_impl)k, type, 150, 25 * m, 11, pool, NULL);
        }
    }
    bn_threadpool_free(pool);
    bn_kernels_force(BN_KERNEL_REF);
}

/* TQ bytes that no encoder writes (TQ2_0 code 3, TQ1_0 bytes 243..255 and fifth qh trits) decode
 * as the reference decodes them, in every layout (TQ1_0 repacked with and without the VBMI
 * re-encoding): all 256 byte values occur. */
static void test_tq_any_bytes(void **state)
{
    (void)state;
    g_any_bytes = 1;
    for (int vbmi = 0; vbmi < 2; vbmi++) {
        bn_kernels_tq1_vbmi_override(vbmi);
        for (int k = BN_KERNEL_AVX2; k <= BN_KERNEL_WASM; k++) {
            if (!bn_kernel_impl_available((bn_kernel_impl)k)) continue;
            for (int tq1 = 0; tq1 < 2; tq1++) {
                uint32_t type = tq1 ? BN_TYPE_TQ1_0 : BN_TYPE_TQ2_0;
                compare_impl((bn_kernel_impl)k, type, 21, 2048, 1, NULL, NULL);
                compare_impl((bn_kernel_impl)k, type, 21, 768, 6, NULL, NULL);
            }
        }
    }
    bn_kernels_tq1_vbmi_override(-1);
    g_any_bytes = 0;
    bn_kernels_force(BN_KERNEL_REF);
}

/* The file's trit n of a TQ1_0 byte, as the reference decodes it. */
static int tq1_ref_trit(uint8_t q, int n)
{
    for (int i = 0; i < n; i++) q = (uint8_t)(q * 3);
    return (q * 3) >> 8;
}

/* The VBMI re-encoding (kernels_impl.h): every file byte's code gives back its five trits through
 * the lookup windows, so all 243 patterns (the bytes an encoder writes, ceil(v * 256 / 243)) and
 * the 13 others decode exactly; and the windows are the ones the kernel reads. */
static void test_tq1_vbmi_code(void **state)
{
    (void)state;
    uint8_t enc[256];
    bn_tq1v_encoder(enc);
    for (int q = 0; q < 256; q++) {
        const uint8_t e = enc[q];
        const int idx[5] = {e & 0x7f, e & 0x7f, e >> 1, e >> 1, (e & 1) | ((e >> 1) & 0x7e)};
        for (int n = 0; n < 5; n++) {
            assert_true(idx[n] < 128);
            int v = bn_tq1v_lut[n][idx[n]];
            assert_true(v == 0 || v == 64 || v == 128);
            if (v / 64 != tq1_ref_trit((uint8_t)q, n)) {
                fprintf(stderr, "byte %d (code %d): trit %d decodes %d, reference %d\n", q, e, n, v / 64,
                        tq1_ref_trit((uint8_t)q, n));
                fail();
            }
        }
    }
    int seen[256] = {0};
    for (int v = 0; v < 243; v++) { /* the encoder's bytes hold the 243 patterns: distinct codes */
        int q = (v * 256 + 242) / 243, p = 0;
        for (int n = 0; n < 5; n++) p = 3 * p + tq1_ref_trit((uint8_t)q, n);
        assert_int_equal(p, v);
        assert_int_equal(seen[enc[q]]++, 0);
    }
}

/* With VBMI the repacked TQ1_0 copy holds the codes (the layout's qs bytes mapped through the
 * encoder), qh, the scales and the rows after the last group as without it; products on both
 * equal the reference's bits, for odd row counts, one block, and a batch. */
static void test_tq1_vbmi_layout(void **state)
{
    (void)state;
    const bn_cpu_features *f = bn_cpu_features_get();
    const int has = f->avx512vbmi && bn_kernel_impl_available(BN_KERNEL_AVX512);
    /* never with another implementation active, even when asked for (they read the file's bytes) */
    for (int k = 0; k <= BN_KERNEL_WASM; k++) {
        if (k == BN_KERNEL_AVX512 || !bn_kernel_impl_available((bn_kernel_impl)k)) continue;
        assert_int_equal(bn_kernels_force((bn_kernel_impl)k), BN_OK);
        bn_kernels_tq1_vbmi_override(1);
        assert_int_equal(bn_kernels_tq1_vbmi(), 0);
        bn_kernels_tq1_vbmi_override(-1);
        assert_int_equal(bn_kernels_tq1_vbmi(), 0);
    }
    if (!has) {
        bn_kernels_force(BN_KERNEL_REF);
        return; /* nothing re-encoded on this CPU (the other tests cover it) */
    }
    assert_int_equal(bn_kernels_force(BN_KERNEL_AVX512), BN_OK);
    assert_int_equal(bn_kernels_tq1_vbmi(), 1);
    uint8_t enc[256];
    bn_tq1v_encoder(enc);
    const int64_t G = bn_kernels_tq_group(), rows = G + 3, K = 512, rb = K / 256 * 54;
    assert_true(G == 4 || G == 16);
    void *wd = make_weights(BN_TYPE_TQ1_0, rows, K);
    bn_weight w0, w1;
    size_t bytes;
    assert_int_equal(bn_weight_init(&w0, BN_TYPE_TQ1_0, wd, rows, K), BN_OK);
    assert_int_equal(bn_weight_init(&w1, BN_TYPE_TQ1_0, wd, rows, K), BN_OK);
    bn_kernels_tq1_vbmi_override(0);
    assert_int_equal(bn_kernels_tq1_vbmi(), 0);
    assert_int_equal(bn_weight_repack(&w0, NULL, &bytes), BN_OK);
    bn_kernels_tq1_vbmi_override(1);
    assert_int_equal(bn_kernels_tq1_vbmi(), 1);
    assert_int_equal(bn_weight_repack(&w1, NULL, &bytes), BN_OK);
    assert_int_equal(bytes, (size_t)(rows * rb));
    const uint8_t *p0 = bn_weight_packed(&w0), *p1 = bn_weight_packed(&w1);
    int differ = 0;
    for (int64_t i = 0; i < rows * rb; i++) {
        const int64_t in_group = i < G * rb, k = i % (G * 54);
        uint8_t want = in_group && k < G * 48 ? enc[p0[i]] : p0[i];
        assert_int_equal(p1[i], want);
        differ += p1[i] != p0[i];
    }
    assert_true(differ > 0);
    bn_kernels_tq1_vbmi_override(-1);
    bn_weight_free(&w0);
    bn_weight_free(&w1);
    free(wd);
    for (int vbmi = 0; vbmi < 2; vbmi++) {
        bn_kernels_tq1_vbmi_override(vbmi);
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 4, 256, 1, NULL, NULL);
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 9, 256, 1, NULL, NULL);
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 11, 2560, 1, NULL, NULL);
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 13, 768, 19, NULL, NULL);
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 3, 512, 2, NULL, NULL); /* no full group */
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 16, 256, 1, NULL, NULL);
        compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 37, 2560, 1, NULL, NULL);
        for (int64_t t = 2; t <= 9; t++) compare_impl(BN_KERNEL_AVX512, BN_TYPE_TQ1_0, 35, 768, t, NULL, NULL);
    }
    bn_kernels_tq1_vbmi_override(-1);
    bn_kernels_force(BN_KERNEL_REF);
}

/* Worst cases for the integer sums: every activation at an extreme of int8. */
static int g_fill;
static void poke_extreme(bn_act *a)
{
    bn_act_view v;
    bn_act_view_get(a, &v);
    int8_t *q = (int8_t *)v.q;
    int64_t n = v.n_tok * v.cols;
    for (int64_t i = 0; i < n; i++) q[i] = (int8_t)(g_fill == 2 ? (i & 1 ? 127 : -128) : g_fill);
    if (a->format == BN_ACT_I8_ROW)
        for (int64_t t = 0; t < v.n_tok; t++) {
            int32_t s = 0;
            for (int64_t k = 0; k < v.cols; k++) s += q[t * v.cols + k];
            ((int32_t *)v.sum)[t] = s;
            if (v.qp) bn_act_i8_reorder(q + t * v.cols, (int8_t *)v.qp + t * v.cols, v.cols);
        }
    if (a->format == BN_ACT_Q8_K) {
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
}

static void *all_plus_one(uint32_t type, int64_t rows, int64_t K)
{
    int64_t n = rows * K;
    int8_t *t = malloc((size_t)n);
    float *sc = malloc(sizeof(float) * (size_t)(n / 128 + 1)); /* a scale per block, whatever the type */
    for (int64_t i = 0; i < n / 128 + 1; i++) sc[i] = 1.0f;
    memset(t, 1, (size_t)n);
    size_t nb;
    assert_true(bn_type_tensor_nbytes(type, K, n, &nb));
    void *p = malloc(nb);
    assert_int_equal(bn_ternary_encode(type, t, sc, n, p), BN_OK);
    free(t);
    free(sc);
    return p;
}

static void test_worst_case_sums(void **state)
{
    (void)state;
    const uint32_t tt[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    const int64_t Ks[4] = {1024, 6912, 16384, 65536}; /* 1024: the I2_S x16 layout (kernels_impl.h) */
    for (int fill = 0; fill < 3; fill++) {
        g_fill = fill == 0 ? -128 : fill == 1 ? 127 : 2;
        for (int ti = 0; ti < 3; ti++)
            for (int ki = 0; ki < 4; ki++) {
                /* a group of sixteen rows (four groups of four) for the repacked layouts, and one more;
                 * four tokens, so that every small-batch path runs */
                int64_t K = Ks[ki], rows = 17, n_tok = 4;
                void *wd = all_plus_one(tt[ti], rows, K);
                float *x = make_input(n_tok, K);
                bn_weight w;
                assert_int_equal(bn_weight_init(&w, tt[ti], wd, rows, K), BN_OK);
                bn_act a;
                bn_act_init(&a);
                assert_int_equal(bn_act_quantize(&a, bn_weight_act_format(&w), x, n_tok, K, NULL), BN_OK);
                poke_extreme(&a);
                bn_act_view v;
                bn_act_view_get(&a, &v);
                float *y = malloc(sizeof(float) * (size_t)(rows * n_tok));
                for (int k = 0; k <= BN_KERNEL_WASM; k++) {
                    if (!bn_kernel_impl_available((bn_kernel_impl)k)) continue;
                    assert_int_equal(bn_kernels_force((bn_kernel_impl)k), BN_OK);
                    /* a fresh copy per implementation: the TQ1_0 encoding of a copy depends on it */
                    bn_weight_free(&w);
                    assert_int_equal(bn_weight_init(&w, tt[ti], wd, rows, K), BN_OK);
                    size_t packed;
                    assert_int_equal(bn_weight_repack(&w, NULL, &packed), BN_OK); /* where k reads a repacked layout */
                    for (int gemv = 0; gemv < 2; gemv++) {
                    /* n_tok tokens at once, then one token (the GEMV path) */
                    assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_OK);
                    if (gemv) {
                        bn_act one;
                        bn_act_init(&one);
                        assert_int_equal(bn_act_quantize(&one, bn_weight_act_format(&w), x, 1, K, NULL), BN_OK);
                        poke_extreme(&one);
                        assert_int_equal(bn_matmul(&w, &one, y, NULL), BN_OK);
                        bn_act_free(&one);
                    }
                    for (int64_t t = 0; t < (gemv ? 1 : n_tok); t++) {
                        /* exact: every weight +1, so the sum is sum(q) (I2_S: 2*sum - sum) */
                        int64_t qs = 0;
                        for (int64_t kk = 0; kk < K; kk++) qs += v.q[t * K + kk];
                        float e;
                        if (tt[ti] == BN_TYPE_I2_S) {
                            e = ((float)(2 * qs) - (float)qs) / v.d[t] * w.scale;
                        } else {
                            float s = 0;
                            for (int64_t b = 0; b < K / 256; b++) {
                                int32_t bs = 0;
                                for (int l = 0; l < 256; l++) bs += v.q[t * K + b * 256 + l];
                                s += (float)bs * (v.d[t * (K / 256) + b] * 1.0f);
                            }
                            e = s;
                        }
                        for (int64_t r = 0; r < rows; r++)
                            if (memcmp(&e, &y[t * rows + r], 4) != 0) {
                                fprintf(stderr, "%s %s K %lld fill %d row %lld: %.9g expected %.9g\n",
                                        bn_kernel_impl_name((bn_kernel_impl)k), bn_type_name(tt[ti]), (long long)K, g_fill,
                                        (long long)r, y[t * rows + r], e);
                                fail();
                            }
                    }
                    }
                }
                bn_weight_free(&w);
                bn_act_free(&a);
                free(wd), free(x), free(y);
            }
    }
    bn_kernels_force(BN_KERNEL_REF);
}

static void test_threads_same_result(void **state)
{
    (void)state;
    bn_threadpool *pool;
    assert_int_equal(bn_threadpool_init(&pool, 3), BN_OK);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = all_types[ti];
        int64_t K = col_multiple(type) == 1 ? 160 : 512, rows = 101, n_tok = 4;
        void *wd = make_weights(type, rows, K);
        float *x = make_input(n_tok, K);
        bn_weight w;
        assert_int_equal(bn_weight_init(&w, type, wd, rows, K), BN_OK);
        bn_act a, a2;
        bn_act_init(&a);
        bn_act_init(&a2);
        assert_int_equal(bn_act_quantize(&a, bn_weight_act_format(&w), x, n_tok, K, NULL), BN_OK);
        assert_int_equal(bn_act_quantize(&a2, bn_weight_act_format(&w), x, n_tok, K, pool), BN_OK);
        float *y0 = malloc(sizeof(float) * (size_t)(rows * n_tok)), *y1 = malloc(sizeof(float) * (size_t)(rows * n_tok));
        for (int k = 0; k <= BN_KERNEL_WASM; k++) {
            if (!bn_kernel_impl_available((bn_kernel_impl)k)) continue;
            bn_kernels_force((bn_kernel_impl)k);
            assert_int_equal(bn_matmul(&w, &a, y0, NULL), BN_OK);
            assert_int_equal(bn_matmul(&w, &a2, y1, pool), BN_OK);
            assert_memory_equal(y0, y1, sizeof(float) * (size_t)(rows * n_tok));
        }
        bn_act_free(&a);
        bn_act_free(&a2);
        free(wd), free(x), free(y0), free(y1);
    }
    bn_threadpool_free(pool);
    bn_kernels_force(BN_KERNEL_REF);
}

/* Several products in one job (Q, K, V) give what each gives alone, whatever the row counts. */
static void test_matmul_multi(void **state)
{
    (void)state;
    bn_threadpool *pool;
    assert_int_equal(bn_threadpool_init(&pool, 3), BN_OK);
    const int64_t K = 2048, n_tok = 2, rows[3] = {66, 9, 17}; /* enough work to use the pool */
    bn_weight w[3];
    void *wd[3];
    float *ys[3], *y1[3];
    for (int i = 0; i < 3; i++) {
        wd[i] = make_weights(BN_TYPE_I2_S, rows[i], K);
        assert_int_equal(bn_weight_init(&w[i], BN_TYPE_I2_S, wd[i], rows[i], K), BN_OK);
        ys[i] = malloc(sizeof(float) * (size_t)(rows[i] * n_tok));
        y1[i] = malloc(sizeof(float) * (size_t)(rows[i] * n_tok));
    }
    float *x = make_input(n_tok, K);
    const bn_weight *wp[3] = {&w[0], &w[1], &w[2]};
    for (int k = 0; k <= BN_KERNEL_WASM; k++) {
        if (!bn_kernel_impl_available((bn_kernel_impl)k)) continue;
        bn_kernels_force((bn_kernel_impl)k);
        for (int nt = 1; nt <= n_tok; nt++) { /* GEMV and GEMM paths */
            bn_act a;
            bn_act_init(&a);
            assert_int_equal(bn_act_quantize(&a, BN_ACT_I8_ROW, x, nt, K, NULL), BN_OK);
            for (int i = 0; i < 3; i++) assert_int_equal(bn_matmul(&w[i], &a, y1[i], NULL), BN_OK);
            assert_int_equal(bn_matmul_multi(wp, 3, &a, ys, pool), BN_OK);
            for (int i = 0; i < 3; i++) assert_memory_equal(ys[i], y1[i], sizeof(float) * (size_t)(rows[i] * nt));
            assert_int_equal(bn_matmul_multi(wp, 0, &a, ys, pool), BN_ERR_INVALID_ARG);
            assert_int_equal(bn_matmul_multi(wp, BN_MATMUL_MAX + 1, &a, ys, pool), BN_ERR_INVALID_ARG);
            bn_act_free(&a);
        }
    }
    for (int i = 0; i < 3; i++) {
        bn_weight_free(&w[i]);
        free(wd[i]), free(ys[i]), free(y1[i]);
    }
    free(x);
    bn_threadpool_free(pool);
    bn_kernels_force(BN_KERNEL_REF);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint8_t buf[4096] = {0};
    bn_weight w;
    assert_int_equal(bn_weight_init(&w, BN_TYPE_I2_S, buf, 2, 100), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "multiple of 128"));
    assert_int_equal(bn_weight_init(&w, BN_TYPE_TQ2_0, buf, 2, 128), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_weight_init(&w, BN_TYPE_Q4_0, buf, 2, 32), BN_ERR_UNSUPPORTED);
    assert_int_equal(bn_weight_init(&w, BN_TYPE_F16, NULL, 2, 32), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_weight_init(&w, BN_TYPE_F16, buf, 0, 32), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_weight_init(&w, BN_TYPE_F16, buf, INT64_MAX / 2, 1 << 20), BN_ERR_RANGE);
    assert_int_equal(bn_weight_init(&w, BN_TYPE_F16, buf, 4, 64), BN_OK);
    float x[256] = {0}, y[16];
    bn_act a;
    bn_act_init(&a);
    assert_int_equal(bn_act_quantize(&a, BN_ACT_Q8_K, x, 1, 100, NULL), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_act_quantize(&a, (bn_act_format)77, x, 1, 64, NULL), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_ERR_INVALID_ARG); /* never prepared (format F32, cols 0) */
    assert_int_equal(bn_act_quantize(&a, BN_ACT_I8_ROW, x, 1, 128, NULL), BN_OK);
    assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_ERR_INVALID_ARG); /* wrong format */
    assert_int_equal(bn_act_quantize(&a, BN_ACT_F16, x, 1, 32, NULL), BN_OK);
    assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_ERR_INVALID_ARG); /* wrong K */
    assert_int_equal(bn_act_quantize(&a, BN_ACT_F16, x, 1, 64, NULL), BN_OK);
    assert_int_equal(bn_matmul(&w, &a, y, NULL), BN_OK);
    assert_int_equal(bn_matmul(&w, &a, NULL, NULL), BN_ERR_INVALID_ARG);
    bn_act_free(&a);
}

/* I8_ROW activations prepared by each implementation (q, the reordered qp, scale and sum) are the
 * reference's bytes: random rows, an all-zero row (the 1e-5 floor), tiny values, exact ties of
 * the rounding (max |x| = 127 makes the scale 1), rows holding NaN and infinities. */
static void test_act_i8_impls_equal_reference(void **state)
{
    (void)state;
    enum { T = 7, K = 640 };
    float *x = malloc(sizeof(float) * T * K);
    for (int i = 0; i < T * K; i++) x[i] = rndf() * 3.0f;
    for (int k = 0; k < K; k++) {
        x[1 * K + k] = 0.0f;
        x[2 * K + k] = rndf() * 1e-7f;
        x[3 * K + k] = (float)((int)(rnd() % 254) - 127) + 0.5f;
    }
    x[3 * K + 5] = 127.0f;
    x[4 * K + 9] = NAN;
    x[5 * K + 3] = INFINITY;
    x[6 * K + 100] = -INFINITY;
    x[6 * K + 7] = NAN;
    for (int n_tok = 1; n_tok <= T; n_tok += T - 1) {
        bn_act ref, got;
        bn_act_init(&ref);
        bn_act_init(&got);
        assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
        assert_int_equal(bn_act_quantize(&ref, BN_ACT_I8_ROW, x + (T - n_tok) * K, n_tok, K, NULL), BN_OK);
        bn_act_view rv, gv;
        bn_act_view_get(&ref, &rv);
        for (int k = BN_KERNEL_AVX2; k <= BN_KERNEL_WASM; k++) {
            if (bn_kernels_force((bn_kernel_impl)k) != BN_OK) continue;
            assert_int_equal(bn_act_quantize(&got, BN_ACT_I8_ROW, x + (T - n_tok) * K, n_tok, K, NULL), BN_OK);
            bn_act_view_get(&got, &gv);
            assert_memory_equal(rv.q, gv.q, (size_t)n_tok * K);
            if (n_tok > 1) assert_memory_equal(rv.qp, gv.qp, (size_t)n_tok * K);
            assert_memory_equal(rv.d, gv.d, sizeof(float) * (size_t)n_tok);
            assert_memory_equal(rv.sum, gv.sum, sizeof(int32_t) * (size_t)n_tok);
        }
        bn_act_free(&ref);
        bn_act_free(&got);
    }
    /* the tie row: q is x rounded half to even */
    bn_act a;
    bn_act_init(&a);
    assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
    assert_int_equal(bn_act_quantize(&a, BN_ACT_I8_ROW, x + 3 * K, 1, K, NULL), BN_OK);
    bn_act_view v;
    bn_act_view_get(&a, &v);
    assert_true(v.d[0] == 1.0f);
    for (int k = 0; k < K; k++) assert_int_equal(v.q[k], (int)nearbyintf(x[3 * K + k]));
    bn_act_free(&a);
    free(x);
}

static void test_dispatch(void **state)
{
    (void)state;
    const bn_cpu_features *f = bn_cpu_features_get();
    assert_non_null(f);
    assert_true(bn_cpu_features_get() == f);
    assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
    assert_int_equal(bn_kernels_active(), BN_KERNEL_REF);
#if defined(__x86_64__)
    assert_int_equal(bn_kernels_force(BN_KERNEL_NEON), BN_ERR_UNSUPPORTED);
    if (f->avx2 && f->fma && f->f16c) {
        assert_int_equal(bn_kernels_force(BN_KERNEL_AVX2), BN_OK);
        assert_int_equal(bn_kernels_active(), BN_KERNEL_AVX2);
    }
#endif
    assert_int_equal(bn_kernels_force((bn_kernel_impl)99), BN_ERR_INVALID_ARG);
    assert_string_equal(bn_kernel_impl_name(BN_KERNEL_AVX512), "avx512");
    bn_kernels_force(BN_KERNEL_REF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_reference_matches_naive),
        cmocka_unit_test(test_i2s_exact_formula),
        cmocka_unit_test(test_impls_equal_reference),
        cmocka_unit_test(test_act_i8_impls_equal_reference),
        cmocka_unit_test(test_tq_any_bytes),
        cmocka_unit_test(test_tq1_vbmi_code),
        cmocka_unit_test(test_tq1_vbmi_layout),
        cmocka_unit_test(test_worst_case_sums),
        cmocka_unit_test(test_threads_same_result),
        cmocka_unit_test(test_matmul_multi),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
