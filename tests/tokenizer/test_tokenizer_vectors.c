/* The llama.cpp tokenizer vectors (no BOS, special text not parsed): every case must give exactly
 * the expected ids and decode back to its input.  Llama-3 is checked through tokenizer.json and
 * BitNet's tiktoken tokenizer.model; GPT-2 and Llama-2 SentencePiece through their GGUF files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/mem.h"
#include "gguf/gguf.h"
#include "hf/hf_tokenizer.h"
#include "tok_test_util.h"
#include "tokenizer/tokenizer.h"

static char *detok_all(const bn_tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t cap = 64 + n * (3 * bn_tokenizer_max_piece_len(t) + 24), o = 0;
    char *buf = malloc(cap);
    bn_detok d;
    bn_detok_init(&d, t, false);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        assert_int_equal(bn_detok_push(&d, ids[i], buf + o, cap - o, &k), BN_OK);
        o += k;
    }
    size_t k;
    assert_int_equal(bn_detok_flush(&d, buf + o, cap - o, &k), BN_OK);
    o += k;
    *len = o;
    return buf;
}

/* Runs every case; returns how many matched (and asserts all did, printing the first miss). */
static void run_cases(const bn_tokenizer *t, const char *name)
{
    tu_cases cs;
    assert_int_equal(tu_load_cases(name, &cs), 46);
    size_t ok = 0;
    for (size_t i = 0; i < cs.n; i++) {
        const tu_case *c = &cs.c[i];
        int32_t *ids;
        size_t n;
        assert_int_equal(bn_tokenizer_encode(t, c->text, c->len, false, false, &ids, &n), BN_OK);
        bool same = n == c->n_ids && memcmp(ids, c->ids, n * sizeof *ids) == 0;
        if (!same) {
            fprintf(stderr, "%s case %zu \"%s\": got", name, i, c->text);
            for (size_t k = 0; k < n; k++) fprintf(stderr, " %d", (int)ids[k]);
            fprintf(stderr, "\n  expected");
            for (size_t k = 0; k < c->n_ids; k++) fprintf(stderr, " %d", (int)c->ids[k]);
            fprintf(stderr, "\n");
        }
        ok += same;
        size_t dl;
        char *back = detok_all(t, ids, n, &dl);
        if (dl != c->len || memcmp(back, c->text, dl) != 0) {
            fprintf(stderr, "%s case %zu: round trip gave \"%.*s\"\n", name, i, (int)dl, back);
            fail();
        }
        free(back);
        bn_free(ids);
    }
    fprintf(stderr, "%s: %zu/%zu cases match\n", name, ok, cs.n);
    assert_int_equal(ok, cs.n);
    tu_free_cases(&cs);
}

static void test_llama_bpe_tokenizer_json(void **state)
{
    (void)state;
    bn_tokenizer *t;
    assert_int_equal(bn_hf_tokenizer_load(TOK_DATA "tokenizer.json", BN_PRETOK_AUTO, &t), BN_OK);
    assert_int_equal(bn_tokenizer_n_vocab(t), 128256);
    assert_int_equal(bn_tokenizer_pretok(t), BN_PRETOK_LLAMA3);
    assert_true(bn_tokenizer_is_llama3(t));
    assert_int_equal(bn_tokenizer_bos(t), 128000);
    assert_int_equal(bn_tokenizer_eos(t), 128001);
    assert_int_equal(bn_tokenizer_eot(t), 128009);
    assert_true(bn_tokenizer_add_bos(t));
    run_cases(t, "ggml-vocab-llama-bpe.gguf");
    bn_tokenizer_free(t);
}

static void test_llama_bpe_tiktoken(void **state)
{
    (void)state;
    bn_tokenizer *t;
    assert_int_equal(bn_tiktoken_load(TOK_DATA "tokenizer.model", BN_PRETOK_AUTO, &t), BN_OK);
    assert_int_equal(bn_tokenizer_n_vocab(t), 128256);
    assert_true(bn_tokenizer_is_llama3(t));
    assert_int_equal(bn_tokenizer_eot(t), 128009);
    run_cases(t, "ggml-vocab-llama-bpe.gguf");
    bn_tokenizer_free(t);
}

static bn_tokenizer *load_gguf_tok(const char *path, bn_pretok pretok)
{
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(path, &g), BN_OK);
    bn_tokenizer *t;
    bn_status st = bn_tokenizer_load_gguf(g, pretok, &t);
    if (st != BN_OK) fprintf(stderr, "%s\n", bn_last_error());
    assert_int_equal(st, BN_OK);
    bn_gguf_free(g); /* the tokenizer keeps copies */
    return t;
}

static void test_gpt2_gguf(void **state)
{
    (void)state;
    bn_tokenizer *t = load_gguf_tok(GGUF_DATA "ggml-vocab-gpt-2.gguf", BN_PRETOK_AUTO);
    assert_int_equal(bn_tokenizer_kind(t), BN_TOK_BPE);
    assert_int_equal(bn_tokenizer_pretok(t), BN_PRETOK_GPT2);
    assert_false(bn_tokenizer_add_bos(t));
    assert_true(bn_tokenizer_is_eog(t, 50256));
    run_cases(t, "ggml-vocab-gpt-2.gguf");
    bn_tokenizer_free(t);
}

static void test_llama_spm_gguf(void **state)
{
    (void)state;
    bn_tokenizer *t = load_gguf_tok(GGUF_DATA "ggml-vocab-llama-spm.gguf", BN_PRETOK_AUTO);
    assert_int_equal(bn_tokenizer_kind(t), BN_TOK_SPM);
    assert_int_equal(bn_tokenizer_bos(t), 1);
    assert_int_equal(bn_tokenizer_eos(t), 2);
    assert_int_equal(bn_tokenizer_unk(t), 0);
    assert_true(bn_tokenizer_add_bos(t));
    run_cases(t, "ggml-vocab-llama-spm.gguf");
    bn_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_bpe_tokenizer_json),
        cmocka_unit_test(test_llama_bpe_tiktoken),
        cmocka_unit_test(test_gpt2_gguf),
        cmocka_unit_test(test_llama_spm_gguf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
