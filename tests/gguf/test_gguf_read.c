/* Tests of the GGUF reader: real files (llama.cpp vocabularies, stories260K, the synthetic BitNet
 * reference models), typed getters, and malformed input of every kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "gguf/gguf.h"
#include "gguf_bytes.h"

#define DATA BITNET_TEST_DATA

static bool str_eq(bn_gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static void assert_str(bn_gguf_str s, const char *c)
{
    if (!str_eq(s, c)) fail_msg("got '%.*s', expected '%s'", (int)s.len, s.ptr, c);
}

static void assert_error_contains(const char *needle)
{
    if (!strstr(bn_last_error(), needle)) fail_msg("error '%s' lacks '%s'", bn_last_error(), needle);
}

/* Heap held by a reader stays within its documented bound. */
static void assert_heap_bound(const bn_gguf *g)
{
    assert_true(bn_gguf_heap_bytes(g) <= 5 * bn_gguf_file_size(g) + 1024);
}

static bn_gguf *open_ok(const char *path)
{
    bn_gguf *g = NULL;
    bn_status st = bn_gguf_open(path, &g);
    if (st) fail_msg("%s: %s", path, bn_last_error());
    assert_non_null(g);
    assert_heap_bound(g);
    return g;
}

static bn_status open_bytes(const gb *b, bn_gguf **g) { return bn_gguf_open_memory(b->p, b->n, g); }

static void expect_fail(const gb *b, bn_status want, const char *msg)
{
    bn_gguf *g = (bn_gguf *)1;
    bn_status st = open_bytes(b, &g);
    if (st == BN_OK) fail_msg("opened a bad file (expected '%s')", msg);
    assert_null(g);
    if (st != want) fail_msg("status %d, expected %d (%s)", st, want, bn_last_error());
    assert_error_contains(msg);
}

/* ---- real files ---------------------------------------------------------------------------- */

static void test_vocab_llama_spm(void **state)
{
    (void)state;
    bn_gguf *g = open_ok(DATA "/gguf/ggml-vocab-llama-spm.gguf");
    assert_int_equal(bn_gguf_version(g), 3);
    assert_int_equal(bn_gguf_n_tensors(g), 0);
    assert_int_equal(bn_gguf_alignment(g), 32);
    assert_int_equal(bn_gguf_n_kv(g), 22);
    const bn_gguf_value *tok = bn_gguf_get(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->type, BN_GGUF_ARRAY);
    assert_int_equal(tok->v.arr.elem_type, BN_GGUF_STRING);
    assert_int_equal(tok->v.arr.n, 32000);
    bn_gguf_str s;
    assert_int_equal(bn_gguf_arr_str(tok, 0, &s), BN_OK);
    assert_str(s, "<unk>");
    assert_int_equal(bn_gguf_arr_str(tok, 1, &s), BN_OK);
    assert_str(s, "<s>");
    assert_int_equal(bn_gguf_arr_str(tok, 3, &s), BN_OK);
    assert_str(s, "<0x00>");
    assert_int_equal(bn_gguf_arr_str(tok, 31999, &s), BN_OK);
    assert_str(s, "\xe7\xbb\x99"); /* 给 */
    assert_int_equal(bn_gguf_arr_str(tok, 32000, &s), BN_ERR_RANGE);
    assert_null(bn_gguf_arr_data(tok)); /* strings are not packed scalars */

    const bn_gguf_value *scores = bn_gguf_get(g, "tokenizer.ggml.scores");
    assert_non_null(scores);
    assert_int_equal(scores->v.arr.elem_type, BN_GGUF_F32);
    assert_int_equal(scores->v.arr.n, 32000);
    const uint8_t *sp = bn_gguf_arr_data(scores);
    assert_non_null(sp);
    float f;
    memcpy(&f, sp + 300 * 4, 4);
    assert_true(f == -41.0f);
    bn_gguf_value e;
    assert_int_equal(bn_gguf_arr_value(scores, 300, &e), BN_OK);
    assert_int_equal(e.type, BN_GGUF_F32);
    assert_true(e.v.f == -41.0);
    assert_int_equal(bn_gguf_arr_str(scores, 0, &s), BN_ERR_FORMAT);

    const bn_gguf_value *tt = bn_gguf_get(g, "tokenizer.ggml.token_type");
    assert_int_equal(tt->v.arr.elem_type, BN_GGUF_I32);
    assert_int_equal(tt->v.arr.n, 32000);
    assert_int_equal(bn_gguf_arr_value(tt, 0, &e), BN_OK);
    assert_int_equal(e.v.i, 2); /* unknown */
    assert_int_equal(bn_gguf_arr_value(tt, 1, &e), BN_OK);
    assert_int_equal(e.v.i, 3); /* control */

    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u), BN_OK);
    assert_int_equal(u, 1);
    bool b;
    assert_int_equal(bn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), BN_OK);
    assert_true(b);
    assert_int_equal(bn_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b), BN_OK);
    assert_false(b);
    assert_int_equal(bn_gguf_get_str(g, "tokenizer.ggml.model", &s), BN_OK);
    assert_str(s, "llama");
    bn_gguf_free(g);
}

static void test_vocab_gpt2(void **state)
{
    (void)state;
    bn_gguf *g = open_ok(DATA "/gguf/ggml-vocab-gpt-2.gguf");
    const bn_gguf_value *tok = bn_gguf_get(g, "tokenizer.ggml.tokens");
    const bn_gguf_value *merges = bn_gguf_get(g, "tokenizer.ggml.merges");
    assert_non_null(tok);
    assert_non_null(merges);
    assert_int_equal(tok->v.arr.n, 50257);
    assert_int_equal(merges->v.arr.n, 50000);
    assert_null(bn_gguf_get(g, "tokenizer.ggml.scores"));
    bn_gguf_str s;
    assert_int_equal(bn_gguf_arr_str(tok, 50256, &s), BN_OK);
    assert_str(s, "<|endoftext|>");
    assert_int_equal(bn_gguf_arr_str(merges, 0, &s), BN_OK);
    assert_str(s, "\xc4\xa0 t");
    assert_int_equal(bn_gguf_arr_str(merges, 49999, &s), BN_OK);
    assert_str(s, "\xc4\xa0g azed");
    /* every element reads back and lies inside the file */
    const char *lo = bn_gguf_file_data(g), *hi = lo + bn_gguf_file_size(g);
    for (uint64_t j = 0; j < merges->v.arr.n; j++) {
        assert_int_equal(bn_gguf_arr_str(merges, j, &s), BN_OK);
        assert_true(s.ptr >= lo && s.ptr + s.len <= hi && s.len >= 3);
    }
    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u), BN_OK);
    assert_int_equal(u, 50256);
    assert_int_equal(bn_gguf_get_str(g, "tokenizer.ggml.pre", &s), BN_OK);
    assert_str(s, "gpt-2");
    bn_gguf_free(g);
}

static void test_stories260k(void **state)
{
    (void)state;
    bn_gguf *g = open_ok(DATA "/gguf/stories260K.gguf");
    assert_int_equal(bn_gguf_n_tensors(g), 48);
    assert_int_equal(bn_gguf_alignment(g), 32);
    assert_null(bn_gguf_get(g, "general.alignment"));
    for (int64_t i = 0; i < 48; i++) {
        const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
        assert_int_equal(t->type, BN_TYPE_F32);
        assert_true(t->sized);
        assert_int_equal(t->nbytes, (size_t)t->n_elem * 4);
        assert_int_equal(((const uint8_t *)t->data - (const uint8_t *)bn_gguf_file_data(g)) % 32, 0);
    }
    assert_null(bn_gguf_tensor_at(g, 48));
    const bn_gguf_tensor *e = bn_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(e);
    assert_int_equal(e->n_dims, 2);
    assert_int_equal(e->ne[0], 64);
    assert_int_equal(e->ne[1], 512);
    assert_int_equal(e->ne[2], 1);
    assert_int_equal(e->offset, 0);
    assert_ptr_equal(e->data, (const uint8_t *)bn_gguf_file_data(g) + bn_gguf_data_offset(g));
    const bn_gguf_tensor *d = bn_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    assert_non_null(d);
    assert_int_equal(d->ne[0], 172);
    assert_int_equal(d->ne[1], 64);
    const bn_gguf_tensor *n = bn_gguf_find_tensor(g, "output_norm.weight");
    assert_int_equal(n->n_dims, 1);
    assert_int_equal(n->ne[0], 64);
    assert_null(bn_gguf_find_tensor(g, "blk.5.ffn_down.weight"));
    assert_null(bn_gguf_find_tensor(g, "token_embd.weigh"));
    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g, "llama.attention.head_count_kv", &u), BN_OK);
    assert_int_equal(u, 4);
    float eps;
    assert_int_equal(bn_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps), BN_OK);
    assert_true(eps == 1e-5f);
    /* u32 0xffffffff fits a u32 but is what the file says, not -1 */
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &u), BN_OK);
    assert_int_equal(u, 0xffffffffu);
    bn_gguf_free(g);
}

typedef struct {
    const char *dir;
    uint32_t weight_type;
    size_t q_bytes; /* bytes of blk.0.attn_q.weight (256 x 256) */
    uint32_t embd_type;
} ref_case;

static void check_reference(const ref_case *c)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reference/%s", DATA, c->dir);
    bn_gguf *g = open_ok(path);
    assert_int_equal(bn_gguf_n_tensors(g), 24);
    bn_gguf_str s;
    assert_int_equal(bn_gguf_get_str(g, "general.architecture", &s), BN_OK);
    assert_str(s, "bitnet-b1.58");
    const bn_gguf_tensor *e = bn_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(e);
    assert_int_equal(e->type, c->embd_type);
    assert_int_equal(e->ne[0], 256);
    assert_int_equal(e->ne[1], 512);
    assert_null(bn_gguf_find_tensor(g, "output.weight")); /* tied */
    static const char *const lin[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    static const int64_t ne0[] = {256, 256, 256, 256, 256, 256, 768};
    static const int64_t ne1[] = {256, 128, 128, 256, 768, 768, 256};
    for (int l = 0; l < 2; l++) {
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, lin[k]);
            const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
            if (!t) fail_msg("%s: missing %s", c->dir, name);
            assert_int_equal(t->type, c->weight_type);
            assert_int_equal(t->ne[0], ne0[k]);
            assert_int_equal(t->ne[1], ne1[k]);
            size_t nb;
            assert_true(bn_type_tensor_nbytes(t->type, t->ne[0], t->n_elem, &nb));
            assert_int_equal(t->nbytes, nb);
        }
        static const char *const norms[] = {"attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"};
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, norms[k]);
            const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
            assert_non_null(t);
            assert_int_equal(t->type, BN_TYPE_F32);
            assert_int_equal(t->ne[0], k == 3 ? 768 : 256);
        }
    }
    assert_int_equal(bn_gguf_find_tensor(g, "blk.0.attn_q.weight")->nbytes, c->q_bytes);
    bn_gguf_free(g);
}

static void test_reference_models(void **state)
{
    (void)state;
    static const ref_case cases[] = {
        {"V1/model.gguf", BN_TYPE_I2_S, 256 * 256 / 4 + 32, BN_TYPE_F16},
        {"V1-TQ1_0/model.gguf", BN_TYPE_TQ1_0, 256 * 54, BN_TYPE_F16},
        {"V1-TQ2_0/model.gguf", BN_TYPE_TQ2_0, 256 * 66, BN_TYPE_F16},
        {"V1/unquantized-f32.gguf", BN_TYPE_F32, 256 * 256 * 4, BN_TYPE_F32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_reference(&cases[i]);

    /* the I2_S scale sits right after the packed codes: a positive float (sqrt(1.5/256)) */
    bn_gguf *g = open_ok(DATA "/reference/V1/model.gguf");
    uint32_t ft;
    assert_int_equal(bn_gguf_get_u32(g, "general.file_type", &ft), BN_OK);
    assert_int_equal(ft, 40);
    const bn_gguf_tensor *q = bn_gguf_find_tensor(g, "blk.0.attn_q.weight");
    float scale;
    memcpy(&scale, (const uint8_t *)q->data + 256 * 256 / 4, 4);
    assert_float_equal(scale, 0.0765466f, 1e-6);
    bn_gguf_free(g);
}

/* ---- getters ------------------------------------------------------------------------------- */

static void test_getters(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 2, 0, 8);
    gb_key(&b, "neg", 5);  /* i32 -5 */
    gb_u32(&b, (uint32_t)-5);
    gb_key(&b, "big", 10); /* u64 2^40 */
    gb_u64(&b, 1ull << 40);
    gb_key(&b, "huge", 10); /* u64 > INT64_MAX */
    gb_u64(&b, 1ull << 63);
    gb_key(&b, "f64", 12);
    uint64_t d;
    double dv = 2.5;
    memcpy(&d, &dv, 8);
    gb_u64(&b, d);
    gb_key(&b, "i8", 1);
    gb_u8(&b, 0x80);
    gb_key(&b, "u16", 2);
    gb_u16(&b, 65535);
    gb_kv_str(&b, "s", "text");
    gb_key(&b, "t", 7);
    gb_u8(&b, 1);
    bn_gguf *g;
    assert_int_equal(open_bytes(&b, &g), BN_OK);
    assert_int_equal(bn_gguf_version(g), 2);
    uint32_t u;
    int64_t i;
    float f;
    bool bo;
    bn_gguf_str s;
    assert_int_equal(bn_gguf_get_u32(g, "neg", &u), BN_ERR_FORMAT);
    assert_error_contains("neg");
    assert_int_equal(bn_gguf_get_i64(g, "neg", &i), BN_OK);
    assert_int_equal(i, -5);
    assert_int_equal(bn_gguf_get_u32(g, "big", &u), BN_ERR_FORMAT);
    assert_int_equal(bn_gguf_get_i64(g, "big", &i), BN_OK);
    assert_int_equal(i, 1ll << 40);
    assert_int_equal(bn_gguf_get_i64(g, "huge", &i), BN_ERR_FORMAT);
    assert_int_equal(bn_gguf_get_f32(g, "f64", &f), BN_OK);
    assert_true(f == 2.5f);
    assert_int_equal(bn_gguf_get_f32(g, "neg", &f), BN_OK);
    assert_true(f == -5.0f);
    assert_int_equal(bn_gguf_get_i64(g, "i8", &i), BN_OK);
    assert_int_equal(i, -128);
    assert_int_equal(bn_gguf_get_u32(g, "u16", &u), BN_OK);
    assert_int_equal(u, 65535);
    assert_int_equal(bn_gguf_get_u32(g, "s", &u), BN_ERR_FORMAT);
    assert_error_contains("has type string");
    assert_int_equal(bn_gguf_get_str(g, "s", &s), BN_OK);
    assert_str(s, "text");
    assert_int_equal(bn_gguf_get_str(g, "t", &s), BN_ERR_FORMAT);
    assert_int_equal(bn_gguf_get_bool(g, "t", &bo), BN_OK);
    assert_true(bo);
    assert_int_equal(bn_gguf_get_bool(g, "u16", &bo), BN_ERR_FORMAT);
    assert_int_equal(bn_gguf_get_f32(g, "s", &f), BN_ERR_FORMAT);
    assert_int_equal(bn_gguf_get_u32(g, "absent.key", &u), BN_ERR_NOT_FOUND);
    assert_error_contains("absent.key");
    assert_int_equal(bn_gguf_find_key(g, "absent"), -1);
    assert_int_equal(bn_gguf_find_key(g, "t"), 7);
    assert_str(bn_gguf_kv_key(g, 3), "f64");
    assert_null(bn_gguf_kv_value(g, 8));
    assert_null(bn_gguf_kv_value(g, -1));
    bn_gguf_free(g);
    gb_free(&b);
}

/* Nested arrays: an array of two arrays of strings and an array of arrays of arrays. */
static void test_nested_arrays(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 2);
    gb_key(&b, "nest", 9);
    gb_u32(&b, 9);
    gb_u64(&b, 2);
    gb_u32(&b, 8); /* [0]: strings */
    gb_u64(&b, 2);
    gb_str(&b, "x");
    gb_str(&b, "yz");
    gb_u32(&b, 4); /* [1]: u32 */
    gb_u64(&b, 3);
    gb_u32(&b, 10);
    gb_u32(&b, 20);
    gb_u32(&b, 30);
    gb_key(&b, "deep", 9);
    gb_u32(&b, 9);
    gb_u64(&b, 1);
    gb_u32(&b, 9);
    gb_u64(&b, 1);
    gb_u32(&b, 7); /* bools */
    gb_u64(&b, 2);
    gb_u8(&b, 1);
    gb_u8(&b, 0);
    bn_gguf *g;
    assert_int_equal(open_bytes(&b, &g), BN_OK);
    const bn_gguf_value *n = bn_gguf_get(g, "nest");
    assert_int_equal(n->v.arr.elem_type, BN_GGUF_ARRAY);
    assert_int_equal(n->v.arr.n, 2);
    assert_null(bn_gguf_arr_data(n));
    bn_gguf_value a0, a1, e;
    assert_int_equal(bn_gguf_arr_value(n, 0, &a0), BN_OK);
    assert_int_equal(a0.type, BN_GGUF_ARRAY);
    assert_int_equal(a0.v.arr.elem_type, BN_GGUF_STRING);
    assert_int_equal(a0.v.arr.n, 2);
    bn_gguf_str s;
    assert_int_equal(bn_gguf_arr_str(&a0, 1, &s), BN_OK);
    assert_str(s, "yz");
    assert_int_equal(bn_gguf_arr_value(n, 1, &a1), BN_OK);
    assert_int_equal(a1.v.arr.elem_type, BN_GGUF_U32);
    assert_int_equal(bn_gguf_arr_value(&a1, 2, &e), BN_OK);
    assert_int_equal(e.v.u, 30);
    assert_int_equal(bn_gguf_arr_value(n, 2, &e), BN_ERR_RANGE);
    const bn_gguf_value *dp = bn_gguf_get(g, "deep");
    assert_int_equal(bn_gguf_arr_value(dp, 0, &a0), BN_OK);
    assert_int_equal(bn_gguf_arr_value(&a0, 0, &a1), BN_OK);
    assert_int_equal(a1.v.arr.elem_type, BN_GGUF_BOOL);
    assert_int_equal(bn_gguf_arr_value(&a1, 0, &e), BN_OK);
    assert_int_equal(e.v.u, 1);
    assert_int_equal(bn_gguf_arr_value(&a1, 1, &e), BN_OK);
    assert_int_equal(e.v.u, 0);
    /* a scalar is not an array */
    assert_int_equal(bn_gguf_arr_value(&e, 0, &a0), BN_ERR_INVALID_ARG);
    bn_gguf_free(g);
    gb_free(&b);
}

/* ---- malformed input ----------------------------------------------------------------------- */

static void test_small_model_valid(void **state)
{
    (void)state;
    gb b = {0};
    gb_small_model(&b);
    bn_gguf *g;
    assert_int_equal(open_bytes(&b, &g), BN_OK);
    assert_int_equal(bn_gguf_alignment(g), 16);
    const bn_gguf_tensor *v = bn_gguf_find_tensor(g, "v");
    assert_non_null(v);
    assert_int_equal(v->type, BN_TYPE_F16);
    assert_int_equal(v->nbytes, 16);
    assert_int_equal(bn_gguf_data_offset(g) + 32 + 16, b.n);
    assert_int_equal(*(const uint8_t *)v->data, (uint8_t)(32 * 7 + 1));
    bn_gguf_free(g);
    gb_free(&b);
}

static void test_every_truncation_fails(void **state)
{
    (void)state;
    gb b = {0};
    gb_small_model(&b);
    for (size_t n = 0; n < b.n; n++) {
        bn_gguf *g = (bn_gguf *)1;
        bn_error_clear();
        bn_status st = bn_gguf_open_memory(b.p, n, &g);
        if (st == BN_OK) fail_msg("truncation to %zu bytes opened", n);
        assert_null(g);
        assert_true(strlen(bn_last_error()) > 0);
        assert_true(strstr(bn_last_error(), "byte") != NULL);
    }
    /* the same on a real model: every cut in its header, and a sample of cuts in its data */
    FILE *f = fopen(DATA "/reference/V1/model.gguf", "rb");
    assert_non_null(f);
    static uint8_t buf[700000];
    size_t size = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(size, 682016);
    for (size_t n = 0; n < size; n += n < 13000 ? 1 : 997) {
        bn_gguf *g = (bn_gguf *)1;
        if (bn_gguf_open_memory(buf, n, &g) == BN_OK) fail_msg("V1 cut to %zu bytes opened", n);
        assert_null(g);
    }
    gb_free(&b);
}

/* Random byte changes in the metadata and tensor infos: an error or a file whose every tensor
 * lies inside the buffer; never a crash (ASan/UBSan builds check that part). */
static void test_random_header_flips(void **state)
{
    (void)state;
    FILE *f = fopen(DATA "/reference/V1/model.gguf", "rb");
    assert_non_null(f);
    static uint8_t orig[700000], buf[700000];
    size_t size = fread(orig, 1, sizeof orig, f);
    fclose(f);
    const size_t header = 12896;
    uint32_t rng = 12345;
    int failed = 0, opened = 0;
    for (int it = 0; it < 4000; it++) {
        memcpy(buf, orig, header);
        memcpy(buf + header, orig + header, 64);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t pos = (rng >> 8) % header;
            rng = rng * 1664525u + 1013904223u;
            buf[pos] = it % 3 == 0 ? (uint8_t)(buf[pos] ^ (1u << ((rng >> 24) & 7))) : (uint8_t)(rng >> 24);
        }
        bn_gguf *g = NULL;
        bn_status st = bn_gguf_open_memory(buf, size, &g);
        if (st) {
            assert_null(g);
            assert_true(strlen(bn_last_error()) > 0);
            failed++;
            continue;
        }
        opened++;
        assert_heap_bound(g);
        for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
            const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
            const uint8_t *d = t->data;
            assert_true(d >= buf && d + t->nbytes <= buf + size);
        }
        bn_gguf_free(g);
    }
    /* both outcomes occur: flips in string bytes are harmless, in counts fatal */
    assert_true(failed > 100);
    assert_true(opened > 100);
}

static void test_bad_header(void **state)
{
    (void)state;
    gb b = {0};
    expect_fail(&b, BN_ERR_FORMAT, "truncated: magic");
    gb_raw(&b, "GGUX", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    gb_u64(&b, 0);
    expect_fail(&b, BN_ERR_FORMAT, "bad magic");
    gb_free(&b);
    gb_header(&b, 1, 0, 0);
    expect_fail(&b, BN_ERR_UNSUPPORTED, "version 1");
    gb_free(&b);
    gb_header(&b, 4, 0, 0);
    expect_fail(&b, BN_ERR_FORMAT, "unknown GGUF version 4");
    gb_free(&b);
    gb_header(&b, 3u << 24, 0, 0);
    expect_fail(&b, BN_ERR_UNSUPPORTED, "big-endian");
    gb_free(&b);
    /* a minimal valid file: header only */
    gb_header(&b, 3, 0, 0);
    bn_gguf *g;
    assert_int_equal(open_bytes(&b, &g), BN_OK);
    assert_int_equal(bn_gguf_n_kv(g), 0);
    assert_int_equal(bn_gguf_data_offset(g), 24);
    bn_gguf_free(g);
    gb_free(&b);
}

static void test_absurd_counts(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, UINT64_MAX);
    expect_fail(&b, BN_ERR_FORMAT, "metadata key count 18446744073709551615");
    gb_free(&b);
    gb_header(&b, 3, 1ull << 62, 0);
    expect_fail(&b, BN_ERR_FORMAT, "tensor count");
    gb_free(&b);
    /* string length beyond the file, and one that would wrap a pointer */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, UINT64_MAX);
    gb_raw(&b, "abcdefghijklmnop", 16);
    expect_fail(&b, BN_ERR_FORMAT, "key length 18446744073709551615 exceeds");
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 8);
    gb_u64(&b, 1000);
    gb_raw(&b, "short", 5);
    expect_fail(&b, BN_ERR_FORMAT, "metadata key 0 'k', at byte 37: string value length 1000 exceeds");
    gb_free(&b);
    /* array counts: huge, and multiplied by the element size past 2^64 */
    static const uint32_t types[] = {0, 4, 10, 8, 9};
    for (size_t k = 0; k < 5; k++) {
        gb_header(&b, 3, 0, 1);
        gb_key(&b, "arr", 9);
        gb_u32(&b, types[k]);
        gb_u64(&b, (1ull << 62) + 1);
        gb_u64(&b, 0);
        expect_fail(&b, BN_ERR_FORMAT, "needs at least");
        gb_free(&b);
    }
    /* a string array whose strings claim more than remains */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "arr", 9);
    gb_u32(&b, 8);
    gb_u64(&b, 2);
    gb_str(&b, "ok");
    gb_u64(&b, 1u << 30);
    expect_fail(&b, BN_ERR_FORMAT, "'arr' element 1");
    gb_free(&b);
    /* nesting deeper than allowed: each level an array of one array */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "deep", 9);
    for (int d = 0; d < 20; d++) {
        gb_u32(&b, 9);
        gb_u64(&b, 1);
    }
    gb_u32(&b, 0);
    gb_u64(&b, 0);
    expect_fail(&b, BN_ERR_FORMAT, "nested deeper");
    gb_free(&b);
    /* dimensions whose product overflows, one that is negative as int64 */
    gb_header(&b, 3, 1, 0);
    uint64_t ne[4] = {1ull << 32, 1ull << 32, 1, 1};
    gb_tensor(&b, "t", 4, ne, 0, 0);
    expect_fail(&b, BN_ERR_FORMAT, "product of the dimensions overflows");
    gb_free(&b);
    gb_header(&b, 3, 1, 0);
    uint64_t neg[1] = {1ull << 63};
    gb_tensor(&b, "t", 1, neg, 0, 0);
    expect_fail(&b, BN_ERR_FORMAT, "dimension 0 is 9223372036854775808");
    gb_free(&b);
    /* product fits int64 but the byte size does not fit size_t (F32: 4 bytes each) */
    gb_header(&b, 3, 1, 0);
    uint64_t big[2] = {1ull << 31, 1ull << 31};
    gb_tensor(&b, "t", 2, big, 0, 0);
    gb_pad(&b, 32);
    expect_fail(&b, BN_ERR_FORMAT, "");
    gb_free(&b);
    gb_header(&b, 3, 1, 0);
    uint64_t ones[5] = {1, 1, 1, 1, 1};
    gb_tensor(&b, "t", 5, ones, 0, 0);
    expect_fail(&b, BN_ERR_FORMAT, "5 dimensions");
    gb_free(&b);
}

static void test_bad_values(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 13);
    gb_u32(&b, 0);
    expect_fail(&b, BN_ERR_FORMAT, "unknown value type 13");
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 9);
    gb_u32(&b, 77);
    gb_u64(&b, 0);
    expect_fail(&b, BN_ERR_FORMAT, "unknown array element type 77");
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 7);
    gb_u8(&b, 2);
    expect_fail(&b, BN_ERR_FORMAT, "bool value 2");
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 9);
    gb_u32(&b, 7);
    gb_u64(&b, 3);
    gb_u8(&b, 0);
    gb_u8(&b, 1);
    gb_u8(&b, 9);
    expect_fail(&b, BN_ERR_FORMAT, "element 2");
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "", 4);
    gb_u32(&b, 0);
    expect_fail(&b, BN_ERR_FORMAT, "empty key");
    gb_free(&b);
    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "same", 1);
    gb_kv_u32(&b, "same", 2);
    expect_fail(&b, BN_ERR_FORMAT, "metadata key 1 'same', at byte 44: duplicate key (also key 0)");
    gb_free(&b);
    /* a key with control bytes is quoted safely in the message */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "a\n\x01", 13);
    gb_u32(&b, 0);
    expect_fail(&b, BN_ERR_FORMAT, "'a\\x0a\\x01'");
    gb_free(&b);
    /* alignment: wrong type, zero, not a power of two */
    for (int k = 0; k < 3; k++) {
        gb_header(&b, 3, 0, 1);
        if (k == 0) {
            gb_key(&b, "general.alignment", 10);
            gb_u64(&b, 32);
        } else {
            gb_kv_u32(&b, "general.alignment", k == 1 ? 0 : 48);
        }
        expect_fail(&b, BN_ERR_FORMAT, k == 0 ? "must be u32" : "power of two");
        gb_free(&b);
    }
}

static void add_tensor_file(gb *b, uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t off, size_t data)
{
    gb_header(b, 3, 1, 0);
    gb_tensor(b, "t", n_dims, ne, type, off);
    gb_pad(b, 32);
    for (size_t i = 0; i < data; i++) gb_u8(b, 0);
}

static void test_bad_tensors(void **state)
{
    (void)state;
    gb b = {0};
    uint64_t ne[2] = {256, 2};
    add_tensor_file(&b, 40, ne, 2, 0, 4096);
    expect_fail(&b, BN_ERR_FORMAT, "unknown tensor type id 40");
    gb_free(&b);
    add_tensor_file(&b, 0xffffffffu, ne, 2, 0, 4096);
    expect_fail(&b, BN_ERR_FORMAT, "unknown tensor type id 4294967295");
    gb_free(&b);
    uint64_t odd[1] = {100};
    add_tensor_file(&b, BN_TYPE_Q8_0, odd, 1, 0, 4096);
    expect_fail(&b, BN_ERR_FORMAT, "row length 100 is not a multiple of the Q8_0 block size 32");
    gb_free(&b);
    add_tensor_file(&b, BN_TYPE_F32, ne, 2, 16, 4096);
    expect_fail(&b, BN_ERR_FORMAT, "not a multiple of the alignment 32");
    gb_free(&b);
    add_tensor_file(&b, BN_TYPE_F32, ne, 2, 0, 256 * 2 * 4 - 1);
    expect_fail(&b, BN_ERR_FORMAT, "runs past the end of the file");
    gb_free(&b);
    add_tensor_file(&b, BN_TYPE_F32, ne, 2, 1ull << 60, 2048);
    expect_fail(&b, BN_ERR_FORMAT, "past the end of the file");
    gb_free(&b);
    /* data section itself missing */
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 2, ne, 0, 0);
    expect_fail(&b, BN_ERR_FORMAT, "data section would start");
    gb_free(&b);
    /* duplicate names and overlapping data */
    for (int k = 0; k < 2; k++) {
        gb_header(&b, 3, 2, 0);
        uint64_t n1[1] = {8};
        gb_tensor(&b, "a", 1, n1, 0, 0);
        gb_tensor(&b, k == 0 ? "a" : "b", 1, n1, 0, k == 0 ? 32 : 0);
        gb_pad(&b, 32);
        for (int i = 0; i < 64; i++) gb_u8(&b, 0);
        expect_fail(&b, BN_ERR_FORMAT, k == 0 ? "tensor 1 'a', at byte 57: duplicate tensor name (also tensor 0)" : "overlaps tensor 1 'b'");
        gb_free(&b);
    }
    /* zero-sized tensors are fine, I2_S gets its 32-byte tail */
    uint64_t z[2] = {0, 5};
    add_tensor_file(&b, BN_TYPE_F32, z, 2, 0, 0);
    bn_gguf *g;
    assert_int_equal(open_bytes(&b, &g), BN_OK);
    assert_int_equal(bn_gguf_tensor_at(g, 0)->nbytes, 0);
    assert_int_equal(bn_gguf_tensor_at(g, 0)->n_elem, 0);
    bn_gguf_free(g);
    gb_free(&b);
    uint64_t i2[2] = {128, 3};
    add_tensor_file(&b, BN_TYPE_I2_S, i2, 2, 0, 128 * 3 / 4 + 31);
    expect_fail(&b, BN_ERR_FORMAT, "data of 128 bytes");
    gb_free(&b);
}

/* TL1/TL2 cannot be sized: refused for computing, accepted for inspection with sized = false. */
static void test_unsized_types(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 2, 0);
    uint64_t ne[2] = {256, 4};
    gb_tensor(&b, "blk.0.attn_q.weight", 2, ne, BN_TYPE_TL2, 0);
    gb_tensor(&b, "blk.0.attn_q.weight_scale", 1, ne, BN_TYPE_F32, 320);
    gb_pad(&b, 32);
    for (int i = 0; i < 320 + 1024; i++) gb_u8(&b, 0);
    expect_fail(&b, BN_ERR_UNSUPPORTED, "tensor type TL2 has no byte size");
    bn_gguf *g;
    assert_int_equal(bn_gguf_open_memory_ex(b.p, b.n, BN_GGUF_ALLOW_UNSIZED, &g), BN_OK);
    const bn_gguf_tensor *t = bn_gguf_tensor_at(g, 0);
    assert_false(t->sized);
    assert_int_equal(t->type, BN_TYPE_TL2);
    assert_int_equal(t->nbytes, 320); /* its span, up to the next tensor */
    assert_true(bn_gguf_tensor_at(g, 1)->sized);
    bn_gguf_free(g);
    gb_free(&b);
}

/* Many tiny keys and tensors: the worst case for bookkeeping per file byte. */
static void test_heap_bound(void **state)
{
    (void)state;
    gb b = {0};
    const int n = 5000;
    gb_header(&b, 3, (uint64_t)n, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        char k[8];
        snprintf(k, sizeof k, "%c%c", 33 + i % 90, 33 + i / 90);
        gb_key(&b, k, 0);
        gb_u8(&b, 1);
    }
    for (int i = 0; i < n; i++) {
        char k[8];
        snprintf(k, sizeof k, "%c%c", 33 + i % 90, 33 + i / 90);
        gb_tensor(&b, k, 0, NULL, 0, (uint64_t)i * 32);
    }
    gb_pad(&b, 32);
    for (int i = 0; i < n * 32; i++) gb_u8(&b, 0);
    bn_gguf *g;
    assert_int_equal(open_bytes(&b, &g), BN_OK);
    assert_int_equal(bn_gguf_n_tensors(g), n);
    assert_int_equal(bn_gguf_tensor_at(g, 7)->n_elem, 1);
    assert_heap_bound(g);
    bn_gguf_free(g);
    gb_free(&b);
}

/* Beyond the file's own size, bookkeeping is capped: millions of tiny keys are refused before
 * anything is allocated for them (5.5 million one-byte keys: an 83 MB file). */
static void test_bookkeeping_limit(void **state)
{
    (void)state;
    const uint64_t n = 5500000;
    const size_t one = 8 + 2 + 4 + 1; /* key length, key "ab", type, u8 value */
    size_t size = 24 + (size_t)n * one;
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    gb b = {0};
    gb_header(&b, 3, 0, n);
    memcpy(buf, b.p, 24);
    gb_free(&b);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *q = buf + 24 + i * one;
        memset(q, 0, 8);
        q[0] = 2;
        q[8] = 'a';
        q[9] = 'b';
        memset(q + 10, 0, 4); /* type 0: u8 */
        q[14] = 7;
    }
    bn_gguf *g = NULL;
    bn_status st = bn_gguf_open_memory(buf, size, &g);
    if (st != BN_ERR_UNSUPPORTED) print_error("%s\n", bn_last_error());
    assert_int_equal(st, BN_ERR_UNSUPPORTED);
    assert_null(g);
    assert_non_null(strstr(bn_last_error(), "MiB limit"));
    free(buf);
}

static void test_open_errors(void **state)
{
    (void)state;
    bn_gguf *g = (bn_gguf *)1;
    assert_int_equal(bn_gguf_open(DATA "/gguf/does-not-exist.gguf", &g), BN_ERR_IO);
    assert_null(g);
    assert_error_contains("does-not-exist.gguf");
    /* the path prefixes format errors too */
    assert_int_equal(bn_gguf_open(DATA "/gguf/PROVENANCE.md", &g), BN_ERR_FORMAT);
    assert_error_contains("PROVENANCE.md: header, at byte 0: bad magic");
    assert_int_equal(bn_gguf_open(NULL, &g), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_open_memory(NULL, 10, &g), BN_ERR_INVALID_ARG);
    bn_gguf_free(NULL);
    assert_string_equal(bn_gguf_vtype_name(BN_GGUF_F64), "f64");
    assert_string_equal(bn_gguf_vtype_name((bn_gguf_vtype)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_llama_spm),
        cmocka_unit_test(test_vocab_gpt2),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_reference_models),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_small_model_valid),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_random_header_flips),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_absurd_counts),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_unsized_types),
        cmocka_unit_test(test_heap_bound),
        cmocka_unit_test(test_bookkeeping_limit),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
