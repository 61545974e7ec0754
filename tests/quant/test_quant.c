/* Tests of src/quant: layouts bit by bit, round trips, conversions, activation quantisation, and
 * bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "quant/quant.h"

#define BN_TEST_SEED 12345
#include "../support/test_rand.h"

static size_t nbytes(uint32_t type, int64_t ne0, int64_t n)
{
    size_t s = 0;
    assert_true(bn_type_tensor_nbytes(type, ne0, n, &s));
    return s;
}

static void test_i2s_layout(void **state)
{
    (void)state;
    /* one block: element e set to +1 (code 2) and every other to 0 (code 1) */
    int8_t t[128];
    float scale = 0.5f;
    uint8_t buf[32 + 32];
    for (int e = 0; e < 128; e += 37) {
        memset(t, 0, sizeof t);
        t[e] = 1;
        assert_int_equal(bn_ternary_encode(BN_TYPE_I2_S, t, &scale, 128, buf), BN_OK);
        for (int j = 0; j < 32; j++) {
            uint8_t expect = 0x55; /* all codes 1 */
            if (j == e % 32) {
                int shift = 6 - 2 * (e / 32);
                expect = (uint8_t)((expect & ~(3 << shift)) | (2 << shift));
            }
            assert_int_equal(buf[j], expect);
        }
        float s;
        memcpy(&s, buf + 32, 4);
        assert_true(s == 0.5f);
        assert_true(bn_i2s_scale(buf, 128) == 0.5f);
        for (int i = 1; i < 8; i++) assert_int_equal(buf[32 + 4 * i], 0); /* tail zeroed */
    }
}

static void test_tq2_layout(void **state)
{
    (void)state;
    int8_t t[256];
    float d = 2.0f;
    uint8_t blk[66];
    memset(t, 0, sizeof t);
    t[0] = -1;   /* half 0, byte 0, bits 0-1: code 0 */
    t[33] = 1;   /* half 0, byte 1, bits 2-3: code 2 */
    t[128 + 127] = 1; /* half 1, byte 31, bits 6-7 */
    assert_int_equal(bn_ternary_encode(BN_TYPE_TQ2_0, t, &d, 256, blk), BN_OK);
    assert_int_equal(blk[0], 0x54);
    assert_int_equal(blk[1], 0x59);
    assert_int_equal(blk[32 + 31], 0x95);
    assert_int_equal(blk[5], 0x55);
    uint16_t h;
    memcpy(&h, blk + 64, 2);
    assert_int_equal(h, 0x4000);
}

static void test_tq1_every_group(void **state)
{
    (void)state;
    /* every 5-trit group (and 4-trit group in qh) survives encode -> trit decode */
    int8_t t[256];
    float d = 1.0f;
    uint8_t blk[54];
    for (int v = 0; v < 243; v++) {
        int x = v;
        for (int n = 4; n >= 0; n--) {
            int tr = x % 3 - 1;
            x /= 3;
            /* group m = 0 of each section gets the value v; the rest follow a pattern */
            t[0 + 32 * n] = (int8_t)tr;
            t[160 + 16 * n] = (int8_t)tr;
            if (n < 4) t[240 + 4 * n] = (int8_t)tr;
        }
        for (int e = 0; e < 256; e++)
            if (e % 32 != 0 && !(e >= 160 && e < 240 && (e - 160) % 16 == 0) && !(e >= 240 && (e - 240) % 4 == 0))
                t[e] = (int8_t)((e + v) % 3 - 1);
        assert_int_equal(bn_ternary_encode(BN_TYPE_TQ1_0, t, &d, 256, blk), BN_OK);
        for (int e = 0; e < 256; e++) assert_int_equal(bn_tq1_trit(blk, e) - 1, t[e]);
    }
    /* the ggml byte for trits (2,1,0,2,1) = 2*81+27+0+6+1 = 196 -> ceil(196*256/243) = 207 */
    memset(t, 0, sizeof t);
    t[0] = 1, t[32] = 0, t[64] = -1, t[96] = 1, t[128] = 0;
    assert_int_equal(bn_ternary_encode(BN_TYPE_TQ1_0, t, &d, 256, blk), BN_OK);
    assert_int_equal(blk[0], 207);
}

static void random_ternary(int8_t *t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) t[i] = (int8_t)((int)(rnd() % 3) - 1);
}

static void test_ternary_roundtrip_and_conversion(void **state)
{
    (void)state;
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ1_0, BN_TYPE_TQ2_0};
    const int64_t ne0 = 512, rows = 3, n = ne0 * rows;
    int8_t *t = malloc(n), *t2 = malloc(n);
    float *sc = malloc(sizeof(float) * (n / 256)), *sc2 = malloc(sizeof(float) * (n / 256));
    float *deq = malloc(sizeof(float) * n);
    random_ternary(t, n);
    /* one scale for every block so I2_S can hold it exactly; fp16-representable */
    for (int64_t b = 0; b < n / 256; b++) sc[b] = 0.0625f;
    for (int i = 0; i < 3; i++) {
        uint32_t ty = types[i];
        size_t nb = nbytes(ty, ne0, n);
        uint8_t *p = calloc(1, nb), *p2 = calloc(1, nb);
        assert_int_equal(bn_ternary_encode(ty, t, sc, n, p), BN_OK);
        assert_int_equal(bn_ternary_decode(ty, p, n, t2, sc2), BN_OK);
        assert_memory_equal(t, t2, n);
        assert_true(sc2[0] == 0.0625f);
        /* quantize(dequantize(x)) == x byte for byte (the I2_S tail: scale then zeros) */
        assert_int_equal(bn_dequantize(ty, p, n, deq), BN_OK);
        for (int64_t k = 0; k < n; k++) assert_true(deq[k] == 0.0625f * t[k]);
        assert_int_equal(bn_quantize(ty, deq, rows, ne0, p2), BN_OK);
        assert_memory_equal(p, p2, nb);
        /* row access agrees with the whole-tensor decode */
        float row[512];
        assert_int_equal(bn_dequantize_row(ty, p, ne0, 2, ty == BN_TYPE_I2_S ? bn_i2s_scale(p, n) : 1.0f, row), BN_OK);
        assert_memory_equal(row, deq + 2 * ne0, sizeof row);
        /* convert to each other ternary type and back: every value preserved */
        for (int j = 0; j < 3; j++) {
            uint32_t tj = types[j];
            uint8_t *q = calloc(1, nbytes(tj, ne0, n));
            assert_int_equal(bn_ternary_encode(tj, t2, sc2, n, q), BN_OK);
            memset(t2, 9, n);
            assert_int_equal(bn_ternary_decode(tj, q, n, t2, sc2), BN_OK);
            assert_memory_equal(t, t2, n);
            free(q);
        }
        free(p);
        free(p2);
    }
    free(t), free(t2), free(sc), free(sc2), free(deq);
}

static void test_tq_per_block_scales(void **state)
{
    (void)state;
    /* TQ formats: quantize takes each block's absmax as d (fp16) and lroundf(x/d) as the code */
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = (i % 3 - 1) * (i < 256 ? 0.25f : 3.0f);
    x[7] = 0.1f;  /* 0.1/0.25 = 0.4 -> 0 */
    x[8] = -0.2f; /* -0.8 -> -1 */
    uint8_t b1[2 * 54], b2[2 * 66];
    int8_t t[512];
    float sc[2];
    assert_int_equal(bn_quantize(BN_TYPE_TQ1_0, x, 1, 512, b1), BN_OK);
    assert_int_equal(bn_quantize(BN_TYPE_TQ2_0, x, 1, 512, b2), BN_OK);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(bn_ternary_decode(k ? BN_TYPE_TQ2_0 : BN_TYPE_TQ1_0, k ? (void *)b2 : (void *)b1, 512, t, sc),
                         BN_OK);
        assert_true(sc[0] == 0.25f && sc[1] == 3.0f);
        assert_int_equal(t[7], 0);
        assert_int_equal(t[8], -1);
        assert_int_equal(t[9], -1);
        assert_int_equal(t[302], 1);
    }
}

static void test_i2s_quantizer_rules(void **state)
{
    (void)state;
    /* bitnet.cpp: scale = max|w|; |w| < 1e-6 -> 0; else the sign (not a rounding of w/scale) */
    float x[128];
    for (int i = 0; i < 128; i++) x[i] = 0.0f;
    x[0] = 0.75f;
    x[1] = -0.01f;    /* small but above 1e-6: -1 */
    x[2] = 5e-7f;     /* below 1e-6: 0 */
    x[3] = -0.75f;
    uint8_t buf[64];
    int8_t t[128];
    float s;
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 1, 128, buf), BN_OK);
    assert_int_equal(bn_ternary_decode(BN_TYPE_I2_S, buf, 128, t, &s), BN_OK);
    assert_true(s == 0.75f);
    assert_int_equal(t[0], 1);
    assert_int_equal(t[1], -1);
    assert_int_equal(t[2], 0);
    assert_int_equal(t[3], -1);
    assert_int_equal(t[4], 0);
}

static void test_decode_rejects_code3(void **state)
{
    (void)state;
    uint8_t buf[64] = {0};
    memset(buf, 0x55, 32);
    buf[5] = 0x57; /* element 96+5 has code 3 */
    int8_t t[128];
    float s;
    assert_int_equal(bn_ternary_decode(BN_TYPE_I2_S, buf, 128, t, &s), BN_ERR_FORMAT);
    assert_non_null(strstr(bn_last_error(), "code 3"));
    /* dequantize follows bitnet.cpp: code 3 reads as 0 */
    float f[128];
    memcpy(buf + 32, &(float){1.0f}, 4);
    assert_int_equal(bn_dequantize(BN_TYPE_I2_S, buf, 128, f), BN_OK);
    assert_true(f[101] == 0.0f);
    uint8_t tq[66] = {0};
    tq[3] = 0x03;
    float sc[1];
    int8_t t2[256];
    assert_int_equal(bn_ternary_decode(BN_TYPE_TQ2_0, tq, 256, t2, sc), BN_ERR_FORMAT);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float x[256] = {0};
    uint8_t buf[1024] = {0};
    int8_t t[256] = {0};
    float s = 1.0f;
    assert_int_equal(bn_dequantize(BN_TYPE_Q4_0, buf, 32, x), BN_ERR_UNSUPPORTED);
    assert_int_equal(bn_dequantize(BN_TYPE_TQ2_0, buf, 100, x), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_dequantize(BN_TYPE_I2_S, buf, 64, x), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_dequantize(BN_TYPE_F32, NULL, 4, x), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_dequantize(999, buf, 4, x), BN_ERR_UNSUPPORTED);
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, x, 1, 33, buf), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_F16, x, 1, 0, buf), BN_ERR_INVALID_ARG);
    t[17] = 2;
    assert_int_equal(bn_ternary_encode(BN_TYPE_TQ2_0, t, &s, 256, buf), BN_ERR_INVALID_ARG);
    t[17] = 0;
    assert_int_equal(bn_ternary_encode(BN_TYPE_F16, t, &s, 256, buf), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_ternary_decode(BN_TYPE_Q8_0, buf, 256, t, &s), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_dequantize_row(BN_TYPE_F16, buf, 4, -1, 1.0f, x), BN_ERR_INVALID_ARG);
}

static void test_float_types(void **state)
{
    (void)state;
    float x[64], y[64];
    uint8_t buf[256];
    for (int i = 0; i < 64; i++) x[i] = rndf() * 10;
    assert_int_equal(bn_quantize(BN_TYPE_F16, x, 2, 32, buf), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_F16, buf, 64, y), BN_OK);
    for (int i = 0; i < 64; i++) assert_true(y[i] == bn_fp16_to_fp32(bn_fp32_to_fp16(x[i])));
    assert_int_equal(bn_quantize(BN_TYPE_BF16, x, 2, 32, buf), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_BF16, buf, 64, y), BN_OK);
    for (int i = 0; i < 64; i++) assert_true(y[i] == bn_bf16_to_fp32(bn_fp32_to_bf16(x[i])));
    assert_int_equal(bn_quantize(BN_TYPE_F32, x, 1, 64, buf), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_F32, buf, 64, y), BN_OK);
    assert_memory_equal(x, y, sizeof x);
    /* Q8_0: d = amax/127 in fp16, q = roundf(x/d); error at most d/2 (+ fp16 rounding of d) */
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, x, 2, 32, buf), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_Q8_0, buf, 64, y), BN_OK);
    for (int b = 0; b < 2; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        for (int j = 0; j < 32; j++) assert_true(fabsf(y[b * 32 + j] - x[b * 32 + j]) <= amax / 127 * 0.51f + amax * 1e-3f);
    }
    /* quantize(dequantize) is stable for Q8_0 */
    uint8_t buf2[256];
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, y, 2, 32, buf2), BN_OK);
    assert_memory_equal(buf, buf2, 68);
}

static void test_q6_K_dequant(void **state)
{
    (void)state;
    /* build a block from chosen 6-bit values and scales, then decode it */
    uint8_t blk[210];
    memset(blk, 0, sizeof blk);
    int v[256];
    for (int i = 0; i < 256; i++) v[i] = (int)(rnd() % 64);
    for (int h = 0; h < 2; h++) /* two halves of 128 elements: ql 64 bytes, qh 32 bytes each */
        for (int l = 0; l < 32; l++) {
            int a = v[h * 128 + l], b = v[h * 128 + l + 32], c = v[h * 128 + l + 64], e = v[h * 128 + l + 96];
            blk[h * 64 + l] = (uint8_t)((a & 15) | ((c & 15) << 4));
            blk[h * 64 + l + 32] = (uint8_t)((b & 15) | ((e & 15) << 4));
            blk[128 + h * 32 + l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
        }
    for (int j = 0; j < 16; j++) blk[192 + j] = (uint8_t)(int8_t)(j - 8);
    uint16_t d = bn_fp32_to_fp16(0.5f);
    memcpy(blk + 208, &d, 2);
    float y[256];
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, blk, 256, y), BN_OK);
    for (int i = 0; i < 256; i++) {
        int sc = (i / 16) - 8; /* scale index = element / 16 */
        assert_true(y[i] == 0.5f * (float)sc * (float)(v[i] - 32));
    }
}

/* Standard normal samples (Box-Muller over the test's generator). */
static float gauss(void)
{
    double u = ((double)(rnd() & 0xffffff) + 1.0) / 16777217.0, v = (double)(rnd() & 0xffffff) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static double rel_rmse(const float *x, const float *y, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    return sqrt(e / s);
}

static void test_q6_K_encode(void **state)
{
    (void)state;
    enum { R = 16, C = 512, N = R * C };
    size_t nb = nbytes(BN_TYPE_Q6_K, C, N);
    assert_int_equal(nb, (size_t)N / 256 * 210);
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N), *y2 = malloc(sizeof(float) * N);
    uint8_t *q = malloc(nb), *q2 = malloc(nb);
    /* Gaussian rows of different magnitudes, with exact zeros sprinkled in */
    for (int64_t i = 0; i < N; i++) x[i] = (i % 37 == 5) ? 0.0f : gauss() * (0.01f + (float)(i / C));
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, R, C, q), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, q, N, y), BN_OK);
    double e = rel_rmse(x, y, N);
    print_message("Q6_K relative RMSE on Gaussian data: %.4f%%\n", 100 * e);
    assert_true(e < 0.02);
    for (int64_t i = 0; i < N; i++)
        if (x[i] == 0.0f) assert_true(y[i] == 0.0f);
    /* row by row, each row's error is small too (the scales follow each block's magnitude) */
    for (int r = 0; r < R; r++) assert_true(rel_rmse(x + r * C, y + r * C, C) < 0.02);
    /* dequantize_row reads the same rows */
    float row[C];
    assert_int_equal(bn_dequantize_row(BN_TYPE_Q6_K, q, C, 3, 1.0f, row), BN_OK);
    assert_memory_equal(row, y + 3 * C, sizeof row);

    /* encode -> decode -> encode reproduces the decoded values (the decoded data lies on a grid the
     * encoder finds again) */
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, y, R, C, q2), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, q2, N, y2), BN_OK);
    print_message("Q6_K re-encode drift: %.3g\n", rel_rmse(y, y2, N));
    assert_true(rel_rmse(y, y2, N) < 1e-3);
    /* and is then a fixed point */
    uint8_t *q3 = malloc(nb);
    float *y3 = malloc(sizeof(float) * N);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, y2, R, C, q3), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, q3, N, y3), BN_OK);
    assert_true(rel_rmse(y2, y3, N) < 1e-3);

    /* an all-zero block: d = 0, every scale 0, every code 32 (zero) */
    memset(x, 0, sizeof(float) * 256);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 256, q), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, q, 256, y), BN_OK);
    for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    for (int i = 0; i < 192; i++) assert_int_equal(q[i], i < 128 ? 0x00 : 0xAA); /* code 32 = 0b10'0000 */
    for (int i = 192; i < 210; i++) assert_int_equal(q[i], 0);

    /* constant blocks, both signs, and a block whose halves differ in sign and size */
    const float consts[3] = {0.37f, -2.5f, 1e-3f};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 256; i++) x[i] = consts[k];
        assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 256, q), BN_OK);
        assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, q, 256, y), BN_OK);
        /* d = |c|/4096 is an fp16 subnormal for c = 1e-3: the int8 scales take up its rounding */
        for (int i = 0; i < 256; i++) assert_true(fabsf(y[i] - consts[k]) <= fabsf(consts[k]) * (k == 2 ? 4e-3f : 1e-3f));
    }
    for (int i = 0; i < 256; i++) x[i] = i < 128 ? 4.0f : -0.25f;
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 256, q), BN_OK);
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, q, 256, y), BN_OK);
    for (int i = 0; i < 256; i++) assert_true(fabsf(y[i] - x[i]) <= fabsf(x[i]) * 2e-2f);

    /* bad shapes and values are refused */
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 128, q), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 2, 100, q), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 0, q), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, -1, 256, q), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, NULL, 1, 256, q), BN_ERR_INVALID_ARG);
    x[77] = NAN;
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 256, q), BN_ERR_RANGE);
    x[77] = INFINITY;
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 256, q), BN_ERR_RANGE);
    x[77] = 1e12f; /* d = 1e12/32/128 does not fit fp16 */
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 1, 256, q), BN_ERR_RANGE);
    assert_non_null(strstr(bn_last_error(), "fp16"));
    free(x);
    free(y);
    free(y2);
    free(y3);
    free(q);
    free(q2);
    free(q3);
}

/* The encoder inverts the decoder's layout: a block built code by code (as in test_q6_K_dequant)
 * and decoded encodes back to the same bytes. */
static void test_q6_K_encode_layout(void **state)
{
    (void)state;
    uint8_t blk[210], out[210];
    memset(blk, 0, sizeof blk);
    int v[256];
    for (int i = 0; i < 256; i++) v[i] = (int)(rnd() % 64);
    for (int j = 0; j < 16; j++) v[16 * j + (int)(rnd() % 16)] = 0; /* every sub-block reaches -32 */
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            int a = v[h * 128 + l], b = v[h * 128 + l + 32], c = v[h * 128 + l + 64], e = v[h * 128 + l + 96];
            blk[h * 64 + l] = (uint8_t)((a & 15) | ((c & 15) << 4));
            blk[h * 64 + l + 32] = (uint8_t)((b & 15) | ((e & 15) << 4));
            blk[128 + h * 32 + l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
        }
    /* scales with the largest magnitude -128 (the encoder's normal form), none zero */
    for (int j = 0; j < 16; j++) blk[192 + j] = (uint8_t)(int8_t)(j == 5 ? -128 : (j % 2 ? 1 : -1) * (20 + 6 * j));
    uint16_t d = bn_fp32_to_fp16(0.0078125f);
    memcpy(blk + 208, &d, 2);
    float y[256];
    assert_int_equal(bn_dequantize(BN_TYPE_Q6_K, blk, 256, y), BN_OK);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, y, 1, 256, out), BN_OK);
    assert_memory_equal(out, blk, sizeof blk);
}

static void test_act_i8(void **state)
{
    (void)state;
    float x[8] = {1.0f, -2.0f, 0.5f, 0.0f, 2.0f, -1.0f, 0.25f, 1.5f};
    int8_t q[8];
    int32_t sum;
    float s = bn_quantize_act_i8(x, 8, q, &sum);
    assert_true(s == (float)(127.0 / 2.0));
    /* 63.5 -> 64 (half to even), -127, 31.75 -> 32, 0, 127, -63.5 -> -64, 15.875 -> 16, 95.25 -> 95 */
    const int8_t expect[8] = {64, -127, 32, 0, 127, -64, 16, 95};
    assert_memory_equal(q, expect, 8);
    assert_int_equal(sum, 64 - 127 + 32 + 127 - 64 + 16 + 95);
    /* all zero: the floor 1e-5 keeps s finite */
    float z[4] = {0};
    s = bn_quantize_act_i8(z, 4, q, &sum);
    assert_true(s == (float)(127.0 / 0.00001));
    assert_int_equal(sum, 0);
    /* tie at 2.5 rounds to 2: 2.5 = x*s with s = 127/127 */
    float t[2] = {127.0f, 2.5f};
    bn_quantize_act_i8(t, 2, q, &sum);
    assert_int_equal(q[1], 2);
}

static void test_act_q8_K(void **state)
{
    (void)state;
    float x[512];
    int8_t q[512];
    float d[2];
    int32_t bs[2];
    int16_t bs16[32];
    for (int i = 0; i < 512; i++) x[i] = rndf();
    x[10] = 3.0f; /* block 0: positive max -> negative iscale */
    x[300] = -4.0f;
    bn_quantize_act_q8_K(x, 512, q, d, bs, bs16);
    float is0 = -127.f / 3.0f, is1 = -127.f / -4.0f;
    assert_true(d[0] == 1.0f / is0 && d[0] < 0);
    assert_true(d[1] == 1.0f / is1 && d[1] > 0);
    assert_int_equal(q[10], -127);
    assert_int_equal(q[300], -127); /* the largest-magnitude element always maps to -127 */
    for (int b = 0; b < 2; b++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            int s16 = 0;
            for (int l = 0; l < 16; l++) s16 += q[b * 256 + j * 16 + l];
            assert_int_equal(bs16[b * 16 + j], s16);
            s += s16;
        }
        assert_int_equal(bs[b], s);
        for (int j = 0; j < 256; j++) {
            float v = (b ? is1 : is0) * x[b * 256 + j];
            assert_true(fabsf((float)q[b * 256 + j] - v) <= 0.5f);
            assert_true(q[b * 256 + j] != -128);
        }
    }
    for (int i = 0; i < 256; i++) x[i] = 0;
    bn_quantize_act_q8_K(x, 256, q, d, NULL, NULL);
    assert_true(d[0] == 0.0f);
    for (int i = 0; i < 256; i++) assert_int_equal(q[i], 0);
}

static void test_act_q8_0(void **state)
{
    (void)state;
    float x[64];
    int8_t q[64];
    float d[2];
    for (int i = 0; i < 64; i++) x[i] = rndf();
    x[5] = -2.0f;
    bn_quantize_act_q8_0(x, 64, q, d);
    assert_true(d[0] == bn_fp16_to_fp32(bn_fp32_to_fp16(2.0f / 127.f)));
    assert_int_equal(q[5], -127);
    for (int i = 0; i < 32; i++) assert_true(fabsf(q[i] - x[i] * (127.f / 2.0f)) <= 0.5f);
}

static void test_absmean(void **state)
{
    (void)state;
    float w[6] = {0.1f, -0.2f, 0.3f, -0.05f, 0.0f, 0.25f};
    int8_t t[6];
    float s = bn_ternarize_absmean(w, 6, t);
    assert_true(fabsf(s - 0.15f) < 1e-7f);
    /* w/s = 0.667, -1.33, 2, -0.333, 0, 1.667 */
    const int8_t e[6] = {1, -1, 1, 0, 0, 1};
    assert_memory_equal(t, e, 6);
    float z[3] = {0};
    s = bn_ternarize_absmean(z, 3, t);
    assert_true(s == 1e-5f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i2s_layout),
        cmocka_unit_test(test_tq2_layout),
        cmocka_unit_test(test_tq1_every_group),
        cmocka_unit_test(test_ternary_roundtrip_and_conversion),
        cmocka_unit_test(test_tq_per_block_scales),
        cmocka_unit_test(test_i2s_quantizer_rules),
        cmocka_unit_test(test_decode_rejects_code3),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_float_types),
        cmocka_unit_test(test_q6_K_dequant),
        cmocka_unit_test(test_q6_K_encode),
        cmocka_unit_test(test_q6_K_encode_layout),
        cmocka_unit_test(test_act_i8),
        cmocka_unit_test(test_act_q8_K),
        cmocka_unit_test(test_act_q8_0),
        cmocka_unit_test(test_absmean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
