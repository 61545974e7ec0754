/* Graph ops: SIMD paths equal the scalar reference bit for bit, and each op matches its formula. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

static float frand(void) { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

static void test_attention_dots_simd_equals_ref(void **state)
{
    (void)state;
    srand(3);
    for (int n = 1; n <= 300; n += 7) {
        uint16_t *a = malloc((size_t)n * 2);
        float *b = malloc((size_t)n * 4), *y1 = malloc((size_t)n * 4), *y2 = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++) {
            a[i] = bn_fp32_to_fp16(frand() * 4);
            b[i] = frand();
            y1[i] = y2[i] = frand();
        }
        assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
        float ref = bn_dot_f16_f32(a, b, n);
        bn_axpy_f16(y1, 0.37f, a, n);
        /* the best implementation this CPU has */
        for (int k = BN_KERNEL_AVX512; k >= BN_KERNEL_AVX2; k--)
            if (bn_kernels_force((bn_kernel_impl)k) == BN_OK) break;
        float simd = bn_dot_f16_f32(a, b, n);
        bn_axpy_f16(y2, 0.37f, a, n);
        assert_memory_equal(&ref, &simd, sizeof ref);
        assert_memory_equal(y1, y2, (size_t)n * 4);
        double exact = 0;
        for (int i = 0; i < n; i++) exact += (double)bn_fp16_to_fp32(a[i]) * b[i];
        assert_true(fabs(exact - ref) < 1e-4 * (1 + fabs(exact)));
        free(a), free(b), free(y1), free(y2);
    }
}

/* Attention over many positions at once gives, bit for bit, what one call per position gives
 * (with the reference and with the best SIMD implementation), for head sizes with and without
 * tails and any number of positions. */
static void test_attention_many_positions(void **state)
{
    (void)state;
    srand(5);
    const int hds[3] = {128, 64, 100}, stride = 300;
    for (int hi = 0; hi < 3; hi++)
        for (int n = 1; n <= 13; n++) {
            const int hd = hds[hi];
            uint16_t *k = malloc((size_t)n * stride * 2), *v = malloc((size_t)n * stride * 2);
            float q[128], p[13], want[13], got[13], o_want[128], o_got[128];
            for (int i = 0; i < n * stride; i++) {
                k[i] = bn_fp32_to_fp16(frand() * 4);
                v[i] = bn_fp32_to_fp16(frand() * 4);
            }
            for (int i = 0; i < hd; i++) q[i] = bn_fp16_to_fp32(bn_fp32_to_fp16(frand())); /* f16 values (ops.h) */
            for (int j = 0; j < n; j++) p[j] = frand();
            for (int impl = 0; impl < 2; impl++) {
                if (impl == 0) assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
                else
                    for (int kk = BN_KERNEL_AVX512; kk >= BN_KERNEL_AVX2; kk--)
                        if (bn_kernels_force((bn_kernel_impl)kk) == BN_OK) break;
                for (int j = 0; j < n; j++) want[j] = bn_dot_f16_f32(k + (size_t)j * stride, q, hd);
                memset(o_want, 0, sizeof o_want);
                for (int j = 0; j < n; j++) bn_axpy_f16(o_want, p[j], v + (size_t)j * stride, hd);
                bn_attn_dots_f16(k, stride, q, hd, n, got);
                bn_attn_values_f16(o_got, p, v, stride, hd, n);
                assert_memory_equal(want, got, (size_t)n * sizeof(float));
                assert_memory_equal(o_want, o_got, (size_t)hd * sizeof(float));
            }
            free(k), free(v);
        }
    bn_kernels_force(BN_KERNEL_REF);
}

/* Several queries sharing keys and values (grouped-query attention) give each query's one-query
 * bits: G from 1 to 6 (groups of 4, 2 and 1 inside), head sizes with and without tails, any
 * number of positions, with the reference and the best SIMD implementation. */
static void test_attention_grouped_queries(void **state)
{
    (void)state;
    srand(17);
    const int hds[4] = {128, 64, 100, 12}, stride = 300;
    for (int hi = 0; hi < 4; hi++)
        for (int G = 1; G <= 6; G++)
            for (int n = 1; n <= 37; n += (n < 9 ? 1 : 14)) {
                const int hd = hds[hi];
                uint16_t *k = malloc((size_t)n * stride * 2), *v = malloc((size_t)n * stride * 2);
                float q[6 * 128], p[6 * 37], want[6 * 37], got[6 * 37], o_want[6 * 128], o_got[6 * 128];
                for (int i = 0; i < n * stride; i++) {
                    k[i] = bn_fp32_to_fp16(frand() * 4);
                    v[i] = bn_fp32_to_fp16(frand() * 4);
                }
                for (int i = 0; i < G * hd; i++) q[i] = bn_fp16_to_fp32(bn_fp32_to_fp16(frand()));
                for (int i = 0; i < G * n; i++) p[i] = frand();
                for (int impl = 0; impl < 2; impl++) {
                    if (impl == 0) assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
                    else
                        for (int kk = BN_KERNEL_AVX512; kk >= BN_KERNEL_AVX2; kk--)
                            if (bn_kernels_force((bn_kernel_impl)kk) == BN_OK) break;
                    for (int g = 0; g < G; g++) {
                        bn_attn_dots_f16(k, stride, q + g * hd, hd, n, want + g * n);
                        bn_attn_values_f16(o_want + g * hd, p + g * n, v, stride, hd, n);
                    }
                    bn_attn_dots_f16_gq(k, stride, q, (size_t)hd, G, hd, n, got, (size_t)n);
                    bn_attn_values_f16_gq(o_got, (size_t)hd, p, (size_t)n, G, v, stride, hd, n);
                    assert_memory_equal(want, got, (size_t)(G * n) * sizeof(float));
                    assert_memory_equal(o_want, o_got, (size_t)(G * hd) * sizeof(float));
                }
                free(k), free(v);
            }
    bn_kernels_force(BN_KERNEL_REF);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    float x[5] = {1, -2, 3, -4, 5}, w[5] = {1, 2, 1, 0.5f, 1}, y[5];
    bn_rmsnorm(y, x, w, 5, 1e-5f);
    double rms = sqrt((1 + 4 + 9 + 16 + 25) / 5.0 + 1e-5);
    for (int i = 0; i < 5; i++) assert_true(fabs(y[i] - x[i] / rms * w[i]) < 1e-6);
    bn_rmsnorm(x, x, NULL, 5, 1e-5f); /* in place, no weight */
    assert_true(fabs(x[4] - 5 / rms) < 1e-6);
}

/* The sum of squares goes in the documented order (ops.c): eight lanes of every eighth element, in
 * double, then ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)), with every kernel implementation this CPU has;
 * values over many magnitudes make another order show in the bits. */
/* x = {2^30, 8, 2^18, 8, 0, 8, 0, 8}: squares 2^60, 64, 2^36, ...  Added one by one, each 64 is
 * below half an ulp of 2^60 and lost; the lanes' tree adds the four 64s first (256, kept), which
 * moves the mean past a float rounding boundary.  Computes the norm of this x both ways. */
static void rmsnorm_order_case(float x[8], float lanes[8], float serial[8])
{
    const float v[8] = {1073741824.0f, 8, 262144.0f, 8, 0, 8, 0, 8};
    double l[8], ser = 0.0;
    for (int i = 0; i < 8; i++) {
        x[i] = v[i];
        l[i] = (double)(v[i] * v[i]);
        ser += l[i];
    }
    const double tree = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    const float st = 1.0f / sqrtf((float)(tree / 8.0) + 1e-6f), ss = 1.0f / sqrtf((float)(ser / 8.0) + 1e-6f);
    for (int i = 0; i < 8; i++) lanes[i] = x[i] * st, serial[i] = x[i] * ss;
}

static void test_rmsnorm_order(void **state)
{
    (void)state;
    float x8[8], lanes[8], serial[8], y8[8];
    rmsnorm_order_case(x8, lanes, serial);
    assert_memory_not_equal(lanes, serial, sizeof lanes); /* the case tells the orders apart */
    for (int ki = BN_KERNEL_REF; ki <= BN_KERNEL_AVX512; ki++) {
        if (bn_kernels_force((bn_kernel_impl)ki) != BN_OK) continue;
        bn_rmsnorm(y8, x8, NULL, 8, 1e-6f);
        assert_memory_equal(lanes, y8, sizeof y8);
    }
    /* many such cases: 2^30 and 2^18 at random places among small values (squares 0, 16, 64, 256),
     * so the mean sits at a float midpoint plus what the grouping kept of the small squares */
    srand(9);
    const float small[4] = {0.0f, 4.0f, 8.0f, 16.0f};
    int sensitive = 0;
    for (int trial = 0; trial < 20000; trial++) {
        float x[40], want[40], y[40];
        const int n = 8;
        for (int i = 0; i < n; i++) x[i] = small[rand() % 4] * (rand() % 2 ? 1.0f : -1.0f);
        const int i30 = rand() % n, i18 = (i30 + 1 + rand() % (n - 1)) % n;
        x[i30] = 1073741824.0f;
        x[i18] = 262144.0f;
        double l[8] = {0}, ser = 0.0;
        for (int i = 0; i < n; i++) {
            l[i % 8] += (double)(x[i] * x[i]);
            ser += (double)(x[i] * x[i]);
        }
        const double tree = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
        const float mt = (float)(tree / (double)n), ms = (float)(ser / (double)n);
        sensitive += mt != ms;
        const float sc = 1.0f / sqrtf(mt + 1e-6f);
        for (int i = 0; i < n; i++) want[i] = x[i] * sc;
        for (int ki = BN_KERNEL_REF; ki <= BN_KERNEL_AVX512; ki++) {
            if (bn_kernels_force((bn_kernel_impl)ki) != BN_OK) continue;
            bn_rmsnorm(y, x, NULL, n, 1e-6f);
            assert_memory_equal(want, y, sizeof(float) * (size_t)n);
        }
    }
    assert_true(sensitive > 500); /* the means of many cases depend on the order */
    bn_kernels_force(BN_KERNEL_REF);
    srand(5);
    const int ns[] = {1, 7, 8, 9, 256, 777};
    for (int k = 0; k < 6; k++) {
        const int n = ns[k];
        float x[777], w[777], y[777], want[777];
        for (int i = 0; i < n; i++) x[i] = frand() * powf(10.0f, (float)(rand() % 13 - 6)), w[i] = frand();
        double l[8] = {0};
        for (int i = 0; i < n; i++) l[i % 8] += (double)(x[i] * x[i]);
        const double sum = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
        const float scale = 1.0f / sqrtf((float)(sum / (double)n) + 1e-6f);
        for (int i = 0; i < n; i++) want[i] = (x[i] * scale) * w[i];
        for (int ki = BN_KERNEL_REF; ki <= BN_KERNEL_AVX512; ki++) { /* scalar and SIMD sums */
            if (bn_kernels_force((bn_kernel_impl)ki) != BN_OK) continue;
            bn_rmsnorm(y, x, w, n, 1e-6f);
            assert_memory_equal(want, y, sizeof(float) * (size_t)n);
        }
        bn_kernels_force(BN_KERNEL_REF);
    }
}

/* Several rows at once give each row's bn_rmsnorm bits, for any row count (groups of four and a
 * remainder), in place or not, with values spanning many magnitudes (where the order of the
 * additions would show). */
static void test_rmsnorm_rows(void **state)
{
    (void)state;
    srand(11);
    const int n = 777;
    for (int rows = 1; rows <= 9; rows++) {
        float *x = malloc(sizeof(float) * (size_t)(rows * n)), *y = malloc(sizeof(float) * (size_t)(rows * n));
        float *want = malloc(sizeof(float) * (size_t)(rows * n)), w[777];
        for (int i = 0; i < rows * n; i++) x[i] = frand() * powf(10.0f, (float)(rand() % 13 - 6));
        for (int i = 0; i < n; i++) w[i] = frand();
        for (int r = 0; r < rows; r++) bn_rmsnorm(want + r * n, x + r * n, w, n, 1e-6f);
        bn_rmsnorm_rows(y, x, w, n, rows, 1e-6f);
        assert_memory_equal(want, y, sizeof(float) * (size_t)(rows * n));
        bn_rmsnorm_rows(x, x, w, n, rows, 1e-6f); /* in place */
        assert_memory_equal(want, x, sizeof(float) * (size_t)(rows * n));
        free(x), free(y), free(want);
    }
}

/* The hardware fp16 conversions give the portable conversion's bits: ties, values that round
 * to a subnormal or to zero, overflow to infinity, infinities; NaN stays NaN. */
static void test_f16_conversions_simd_equal_ref(void **state)
{
    (void)state;
    srand(13);
    enum { N = 4099 };
    float *x = malloc(sizeof(float) * N), *r1 = malloc(sizeof(float) * N), *r2 = malloc(sizeof(float) * N);
    uint16_t *h1 = malloc(2 * N), *h2 = malloc(2 * N);
    for (int i = 0; i < N; i++) {
        uint32_t bits = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
        switch (i % 6) {
        case 0: x[i] = frand() * powf(2.0f, (float)(rand() % 60 - 30)); break;
        case 1: x[i] = bn_fp16_to_fp32((uint16_t)rand()) + bn_fp16_to_fp32(1) * 0.5f; break; /* near ties */
        case 2: x[i] = frand() * 1e-7f; break; /* subnormal halves */
        case 3: x[i] = frand() * 70000.0f; break; /* overflow */
        case 4: memcpy(&x[i], &bits, 4); break; /* any bits, NaNs included */
        default: x[i] = (float)(rand() % 2049) + 0.5f; break; /* exact ties at 11 bits */
        }
    }
    x[0] = INFINITY, x[1] = -INFINITY, x[2] = -0.0f, x[3] = 65519.0f, x[4] = 65520.0f;
    for (int impl = 0; impl < 2; impl++) {
        if (impl == 0) assert_int_equal(bn_kernels_force(BN_KERNEL_REF), BN_OK);
        else
            for (int kk = BN_KERNEL_AVX512; kk >= BN_KERNEL_AVX2; kk--)
                if (bn_kernels_force((bn_kernel_impl)kk) == BN_OK) break;
        memcpy(impl ? r2 : r1, x, sizeof(float) * N);
        bn_round_f16(impl ? r2 : r1, N);
        bn_to_f16(impl ? h2 : h1, x, N);
    }
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            assert_true(isnan(r1[i]) && isnan(r2[i]));
            assert_true((h1[i] & 0x7c00) == 0x7c00 && (h1[i] & 0x3ff) && (h2[i] & 0x7c00) == 0x7c00 && (h2[i] & 0x3ff));
            continue;
        }
        assert_int_equal(h1[i], h2[i]);
        assert_memory_equal(&r1[i], &r2[i], 4);
        assert_int_equal(h1[i], bn_fp32_to_fp16(x[i]));
    }
    bn_kernels_force(BN_KERNEL_REF);
    free(x), free(r1), free(r2), free(h1), free(h2);
}

static void test_rope(void **state)
{
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    memcpy(y, x, sizeof x);
    bn_rope(y, 8, 8, 0, 10000.0f, 1); /* position 0: identity */
    assert_memory_equal(x, y, sizeof x);
    /* neox: pair (i, i+4) rotated by pos * base^(-2i/8) */
    memcpy(y, x, sizeof x);
    bn_rope(y, 8, 8, 3, 10000.0f, 1);
    for (int i = 0; i < 4; i++) {
        double th = 3 * pow(10000.0, -2.0 * i / 8);
        assert_true(fabs(y[i] - (x[i] * cos(th) - x[i + 4] * sin(th))) < 1e-4);
        assert_true(fabs(y[i + 4] - (x[i] * sin(th) + x[i + 4] * cos(th))) < 1e-4);
    }
    /* norm mode: adjacent pairs */
    memcpy(y, x, sizeof x);
    bn_rope(y, 8, 8, 3, 10000.0f, 0);
    for (int i = 0; i < 4; i++) {
        double th = 3 * pow(10000.0, -2.0 * i / 8);
        assert_true(fabs(y[2 * i] - (x[2 * i] * cos(th) - x[2 * i + 1] * sin(th))) < 1e-4);
    }
    /* norms are preserved */
    double n0 = 0, n1 = 0;
    for (int i = 0; i < 8; i++) n0 += x[i] * x[i], n1 += y[i] * y[i];
    assert_true(fabs(n0 - n1) < 1e-3);
}

/* bn_exp: within 1 ulp of exp over [-87, 88], exactly 1 at 0, 0 below -87, NaN kept. */
static void test_exp_fixed(void **state)
{
    (void)state;
    double worst = 0.0;
    for (int i = 0; i <= 1750000; i++) {
        float x = -87.0f + (float)i * 1e-4f;
        double want = exp((double)x), got = (double)bn_exp(x);
        double ulp = (double)nextafterf((float)want, INFINITY) - (double)(float)want;
        double err = fabs(got - want) / ulp;
        if (err > worst) worst = err;
    }
    assert_true(worst <= 1.0);
    assert_true(bn_exp(0.0f) == 1.0f);
    assert_true(bn_exp(-87.5f) == 0.0f && bn_exp(-INFINITY) == 0.0f);
    assert_true(isnan(bn_exp(NAN)));
}

/* softmax: bn_exp of (x * scale - max), the sum in the documented lane order, for lengths around
 * the lane count, with every kernel implementation this CPU has (the exps have a SIMD path). */
static void test_softmax_order(void **state)
{
    (void)state;
    srand(3);
    const int ns[] = {1, 5, 8, 13, 64, 301};
    for (int k = 0; k < 6; k++) {
        const int n = ns[k];
        float x[301], want[301];
        for (int i = 0; i < n; i++) x[i] = want[i] = frand() * 800.0f; /* scaled: down to -100 below the max */
        float max = -INFINITY;
        for (int i = 0; i < n; i++) {
            want[i] *= 0.125f;
            if (want[i] > max) max = want[i];
        }
        double l[8] = {0};
        for (int i = 0; i < n; i++) {
            want[i] = bn_exp(want[i] - max);
            l[i % 8] += (double)want[i];
        }
        const float inv = (float)(1.0 / (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))));
        for (int i = 0; i < n; i++) want[i] *= inv;
        float x0[301];
        memcpy(x0, x, sizeof(float) * (size_t)n);
        for (int ki = BN_KERNEL_REF; ki <= BN_KERNEL_AVX512; ki++) { /* the scalar and SIMD exps */
            if (bn_kernels_force((bn_kernel_impl)ki) != BN_OK) continue;
            memcpy(x, x0, sizeof(float) * (size_t)n);
            bn_softmax(x, n, 0.125f);
            assert_memory_equal(want, x, sizeof(float) * (size_t)n);
        }
        bn_kernels_force(BN_KERNEL_REF);
    }
}

static void test_softmax_and_activations(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 1000};
    bn_softmax(x, 4, 1.0f); /* large values must not overflow */
    assert_true(fabs(x[3] - 1.0f) < 1e-6 && x[0] >= 0);
    float y[3] = {0, 0, 0};
    bn_softmax(y, 3, 0.5f);
    for (int i = 0; i < 3; i++) assert_true(fabs(y[i] - 1.0f / 3) < 1e-6);
    float g[3] = {-1, 2, 3}, u[3] = {5, 0.5f, -1};
    bn_relu2_mul(g, u, 3);
    assert_true(g[0] == 0 && g[1] == 2.0f && g[2] == -9.0f);
    float g2[2] = {0, 1}, u2[2] = {1, 2};
    bn_silu_mul(g2, u2, 2);
    assert_true(g2[0] == 0 && fabs(g2[1] - 2.0 / (1 + exp(-1.0))) < 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_dots_simd_equals_ref),
        cmocka_unit_test(test_attention_many_positions),
        cmocka_unit_test(test_attention_grouped_queries),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rmsnorm_rows), cmocka_unit_test(test_rmsnorm_order),
        cmocka_unit_test(test_f16_conversions_simd_equal_ref),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_softmax_and_activations), cmocka_unit_test(test_exp_fixed),
        cmocka_unit_test(test_softmax_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
