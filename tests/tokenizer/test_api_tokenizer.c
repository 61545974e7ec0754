/* The public tokenizer API: loading each file kind, tokenize with a small buffer, detokenize,
 * the streaming detokenizer, and bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "tok_test_util.h"

static void test_load_kinds(void **state)
{
    (void)state;
    const char *paths[] = {TOK_DATA "tokenizer.json", TOK_DATA "tokenizer.model", GGUF_DATA "ggml-vocab-gpt-2.gguf",
                           GGUF_DATA "ggml-vocab-llama-spm.gguf"};
    const int32_t n_vocab[] = {128256, 128256, 50257, 32000};
    for (size_t i = 0; i < 4; i++) {
        bitnet_tokenizer *t;
        assert_int_equal(bitnet_tokenizer_load(paths[i], BITNET_PRETOK_AUTO, &t), BITNET_OK);
        assert_int_equal(bitnet_tokenizer_n_vocab(t), n_vocab[i]);
        bitnet_tokenizer_free(t);
    }
    bitnet_tokenizer *t = (bitnet_tokenizer *)1;
    assert_int_equal(bitnet_tokenizer_load(TOK_DATA "missing.json", BITNET_PRETOK_AUTO, &t), BITNET_ERR_IO);
    assert_null(t);
    assert_int_equal(bitnet_tokenizer_load(TOK_DATA "PROVENANCE.md", BITNET_PRETOK_AUTO, &t), BITNET_ERR_FORMAT);
    assert_true(strlen(bitnet_last_error()) > 0);
    assert_int_equal(bitnet_tokenizer_load(TOK_DATA "tokenizer.json", (bitnet_pretokenizer)9, &t),
                     BITNET_ERR_INVALID_ARG);
    assert_int_equal(bitnet_tokenizer_load(NULL, BITNET_PRETOK_AUTO, &t), BITNET_ERR_INVALID_ARG);
    bitnet_tokenizer_free(NULL);
}

static void test_tokenize_detokenize(void **state)
{
    (void)state;
    bitnet_tokenizer *t;
    assert_int_equal(bitnet_tokenizer_load(TOK_DATA "tokenizer.json", BITNET_PRETOK_AUTO, &t), BITNET_OK);
    assert_int_equal(bitnet_tokenizer_bos(t), 128000);
    assert_int_equal(bitnet_tokenizer_eos(t), 128001);
    assert_int_equal(bitnet_tokenizer_eot(t), 128009);
    assert_true(bitnet_tokenizer_is_eog(t, 128009));
    assert_false(bitnet_tokenizer_is_eog(t, 0));
    const char *s = "User: How are you?<|eot_id|>Assistant: ";
    bitnet_token ids[32];
    size_t n;
    /* the transformers 2B-4T test's ids (without its doubled BOS) */
    const bitnet_token want[] = {128000, 1502, 25, 2650, 527, 499, 30, 128009, 72803, 25, 220};
    assert_int_equal(bitnet_tokenize(t, s, strlen(s), BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, ids, 32,
                                     &n),
                     BITNET_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(ids, want, sizeof want);
    /* too small: BITNET_ERR_RANGE with the full count, the first cap ids written */
    memset(ids, 0, sizeof ids);
    assert_int_equal(bitnet_tokenize(t, s, strlen(s), BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, ids, 3,
                                     &n),
                     BITNET_ERR_RANGE);
    assert_int_equal(n, 11);
    assert_memory_equal(ids, want, 3 * sizeof *ids);
    assert_int_equal(ids[3], 0);
    /* NO_BOS wins; no flags: no BOS either */
    assert_int_equal(bitnet_tokenize(t, "Hi", 2, BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_NO_BOS, ids, 32, &n),
                     BITNET_OK);
    assert_int_not_equal(ids[0], 128000);
    assert_int_equal(bitnet_tokenize(t, "Hi", 2, 0, ids, 32, &n), BITNET_OK);
    assert_int_not_equal(ids[0], 128000);

    char *text = bitnet_detokenize(t, want, 11, false);
    assert_string_equal(text, "User: How are you?Assistant: ");
    bitnet_free_string(text);
    text = bitnet_detokenize(t, want, 11, true);
    assert_string_equal(text, "<|begin_of_text|>User: How are you?<|eot_id|>Assistant: ");
    bitnet_free_string(text);
    text = bitnet_detokenize(t, NULL, 0, false);
    assert_string_equal(text, "");
    bitnet_free_string(text);
    const bitnet_token bad[] = {9906, 999999};
    assert_null(bitnet_detokenize(t, bad, 2, false));
    assert_int_equal(bitnet_tokenize(NULL, "x", 1, 0, ids, 32, &n), BITNET_ERR_INVALID_ARG);
    assert_int_equal(bitnet_tokenize(t, "x", 1, 0, NULL, 32, &n), BITNET_ERR_INVALID_ARG);

    const char *b;
    size_t bl;
    assert_int_equal(bitnet_token_bytes(t, 1917, false, &b, &bl), BITNET_OK);
    assert_int_equal(bl, 6);
    assert_memory_equal(b, " world", 6);
    assert_int_equal(bitnet_token_bytes(t, 128256, false, &b, &bl), BITNET_ERR_RANGE);

    /* streaming: "é" split over two byte tokens; 256 bytes of room always suffice */
    bitnet_detokenizer *d;
    assert_int_equal(bitnet_detokenizer_init(t, false, &d), BITNET_OK);
    bitnet_token e1, e2;
    assert_int_equal(bitnet_tokenize(t, "\xC3", 1, 0, &e1, 1, &n), BITNET_OK);
    assert_int_equal(bitnet_tokenize(t, "\xA9", 1, 0, &e2, 1, &n), BITNET_OK);
    char out[256];
    size_t len;
    assert_int_equal(bitnet_detokenizer_push(d, e1, out, sizeof out, &len), BITNET_OK);
    assert_int_equal(len, 0);
    assert_int_equal(bitnet_detokenizer_push(d, e2, out, sizeof out, &len), BITNET_OK);
    assert_int_equal(len, 2);
    assert_int_equal(bitnet_detokenizer_push(d, e1, out, sizeof out, &len), BITNET_OK);
    assert_int_equal(bitnet_detokenizer_flush(d, out, sizeof out, &len), BITNET_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    assert_int_equal(bitnet_detokenizer_push(NULL, e1, out, sizeof out, &len), BITNET_ERR_INVALID_ARG);
    bitnet_detokenizer_free(d);
    bitnet_detokenizer_free(NULL);
    assert_int_equal(bitnet_detokenizer_init(NULL, false, &d), BITNET_ERR_INVALID_ARG);
    bitnet_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_kinds),
        cmocka_unit_test(test_tokenize_detokenize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
