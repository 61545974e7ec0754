/* The formats against files bitnet.cpp and llama.cpp wrote (tests/data/reference, see PROVENANCE.md):
 * decoding the I2_S, TQ2_0 and TQ1_0 tensors gives exactly the ternary values and scales the
 * unquantized file holds (every linear weight is scale * t with scale = sqrt(1.5/K)), and our
 * quantizers applied to the unquantized file reproduce the quantized files' bytes. */
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
#include "gguf/gguf.h"
#include "quant/quant.h"

#define REF BITNET_TEST_DATA "/reference/"

typedef struct files {
    bn_gguf *f32, *i2s, *tq1, *tq2;
} files;

static int setup(void **state)
{
    files *f = calloc(1, sizeof *f);
    if (bn_gguf_open(REF "V1/unquantized-f32.gguf", &f->f32) || bn_gguf_open(REF "V1/model.gguf", &f->i2s) ||
        bn_gguf_open(REF "V1-TQ1_0/model.gguf", &f->tq1) || bn_gguf_open(REF "V1-TQ2_0/model.gguf", &f->tq2)) {
        fprintf(stderr, "cannot open reference files: %s\n", bn_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    files *f = *state;
    bn_gguf_free(f->f32);
    bn_gguf_free(f->i2s);
    bn_gguf_free(f->tq1);
    bn_gguf_free(f->tq2);
    free(f);
    return 0;
}

static const bn_gguf_tensor *twin(bn_gguf *g, const bn_gguf_tensor *t)
{
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
    const bn_gguf_tensor *u = bn_gguf_find_tensor(g, name);
    assert_non_null(u);
    assert_int_equal(u->n_elem, t->n_elem);
    assert_int_equal(u->ne[0], t->ne[0]);
    return u;
}

/* Checks that the F32 tensor is scale * t exactly with one scale, and returns that scale. */
static float f32_ternary(const bn_gguf_tensor *u, const int8_t *t)
{
    const float *w = u->data;
    float scale = 0;
    for (int64_t i = 0; i < u->n_elem; i++)
        if (w[i] != 0) scale = fabsf(w[i]);
    assert_true(scale > 0);
    /* the README: scale = sqrt(1.5 / K) */
    assert_true(fabsf(scale - sqrtf(1.5f / (float)u->ne[0])) <= 2e-7f * scale);
    for (int64_t i = 0; i < u->n_elem; i++) assert_true(w[i] == scale * (float)t[i]);
    return scale;
}

static void test_i2s_decodes_to_unquantized(void **state)
{
    files *f = *state;
    int n_i2s = 0;
    for (int64_t i = 0; i < bn_gguf_n_tensors(f->i2s); i++) {
        const bn_gguf_tensor *t = bn_gguf_tensor_at(f->i2s, i);
        if (t->type != BN_TYPE_I2_S) continue;
        n_i2s++;
        const bn_gguf_tensor *u = twin(f->f32, t);
        assert_int_equal(u->type, BN_TYPE_F32);
        int8_t *tv = malloc((size_t)t->n_elem);
        float scale;
        assert_int_equal(bn_ternary_decode(BN_TYPE_I2_S, t->data, t->n_elem, tv, &scale), BN_OK);
        assert_true(scale == f32_ternary(u, tv));
        /* the dequantiser gives the unquantized weights bit for bit */
        float *deq = malloc(sizeof(float) * (size_t)t->n_elem);
        assert_int_equal(bn_dequantize(BN_TYPE_I2_S, t->data, t->n_elem, deq), BN_OK);
        assert_memory_equal(deq, u->data, sizeof(float) * (size_t)t->n_elem);
        /* our quantizer reproduces bitnet.cpp's bytes (packed codes and scale; not the 28-byte tail) */
        uint8_t *mine = malloc(t->nbytes);
        assert_int_equal(bn_quantize(BN_TYPE_I2_S, u->data, t->n_elem / t->ne[0], t->ne[0], mine), BN_OK);
        assert_memory_equal(mine, t->data, (size_t)(t->n_elem / 4) + 4);
        free(tv), free(deq), free(mine);
    }
    assert_int_equal(n_i2s, 14); /* 2 layers x 7 projections */
}

static void check_tq(bn_gguf *tq, bn_gguf *f32, uint32_t type)
{
    int n = 0;
    for (int64_t i = 0; i < bn_gguf_n_tensors(tq); i++) {
        const bn_gguf_tensor *t = bn_gguf_tensor_at(tq, i);
        if (t->type != type) continue;
        n++;
        const bn_gguf_tensor *u = twin(f32, t);
        int8_t *tv = malloc((size_t)t->n_elem);
        float *sc = malloc(sizeof(float) * (size_t)(t->n_elem / 256));
        assert_int_equal(bn_ternary_decode(type, t->data, t->n_elem, tv, sc), BN_OK);
        float scale = f32_ternary(u, tv);
        /* each block's d is the block's absmax in fp16 */
        float d16 = bn_fp16_to_fp32(bn_fp32_to_fp16(scale));
        for (int64_t b = 0; b < t->n_elem / 256; b++) {
            int any = 0;
            for (int e = 0; e < 256; e++) any |= tv[b * 256 + e] != 0;
            assert_true(sc[b] == (any ? d16 : 0.0f));
        }
        /* ggml's quantizer, as ours, gives the same bytes */
        uint8_t *mine = malloc(t->nbytes);
        assert_int_equal(bn_quantize(type, u->data, t->n_elem / t->ne[0], t->ne[0], mine), BN_OK);
        assert_memory_equal(mine, t->data, t->nbytes);
        free(tv), free(sc), free(mine);
    }
    assert_int_equal(n, 14);
}

static void test_tq2_decodes_to_unquantized(void **state)
{
    files *f = *state;
    check_tq(f->tq2, f->f32, BN_TYPE_TQ2_0);
}

static void test_tq1_decodes_to_unquantized(void **state)
{
    files *f = *state;
    check_tq(f->tq1, f->f32, BN_TYPE_TQ1_0);
}

static void test_f16_embedding(void **state)
{
    /* the F16 token embedding is the F32 file's embedding rounded to fp16 (nearest even), and
     * decoding widens it exactly */
    files *f = *state;
    const bn_gguf_tensor *e = bn_gguf_find_tensor(f->i2s, "token_embd.weight");
    assert_non_null(e);
    assert_int_equal(e->type, BN_TYPE_F16);
    const bn_gguf_tensor *u = twin(f->f32, e);
    float *deq = malloc(sizeof(float) * (size_t)e->n_elem);
    assert_int_equal(bn_dequantize(BN_TYPE_F16, e->data, e->n_elem, deq), BN_OK);
    assert_int_equal(u->type, BN_TYPE_F32);
    const float *w = u->data;
    const uint8_t *h = e->data;
    for (int64_t i = 0; i < e->n_elem; i++) {
        uint16_t hv;
        memcpy(&hv, h + 2 * i, 2);
        assert_int_equal(bn_fp32_to_fp16(w[i]), hv);
        assert_true(deq[i] == bn_fp16_to_fp32(hv));
    }
    free(deq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i2s_decodes_to_unquantized),
        cmocka_unit_test(test_tq2_decodes_to_unquantized),
        cmocka_unit_test(test_tq1_decodes_to_unquantized),
        cmocka_unit_test(test_f16_embedding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
