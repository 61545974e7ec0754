/* Tokenizer behaviour: pre-tokenizer splits, Llama-3 through GGUF (auto and bitnet.cpp's default
 * splitting), tiktoken vs tokenizer.json, special tokens, BOS, streaming detokenization, random
 * round trips, and bad inputs to every loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "common/error.h"
#include "common/mem.h"
#include "gguf/gguf.h"
#include "hf/hf_tokenizer.h"
#include "llama3_gguf.h"
#include "tok_test_util.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

/* Loaded once: they take a while. */
static bn_tokenizer *g_json, *g_tik, *g_gpt2, *g_spm;

static int setup(void **state)
{
    (void)state;
    if (bn_hf_tokenizer_load(TOK_DATA "tokenizer.json", BN_PRETOK_AUTO, &g_json) != BN_OK) return -1;
    if (bn_tiktoken_load(TOK_DATA "tokenizer.model", BN_PRETOK_AUTO, &g_tik) != BN_OK) return -1;
    bn_gguf *g;
    if (bn_gguf_open(GGUF_DATA "ggml-vocab-gpt-2.gguf", &g) != BN_OK) return -1;
    bn_status st = bn_tokenizer_load_gguf(g, BN_PRETOK_AUTO, &g_gpt2);
    bn_gguf_free(g);
    if (st != BN_OK || bn_gguf_open(GGUF_DATA "ggml-vocab-llama-spm.gguf", &g) != BN_OK) return -1;
    st = bn_tokenizer_load_gguf(g, BN_PRETOK_AUTO, &g_spm);
    bn_gguf_free(g);
    return st == BN_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bn_tokenizer_free(g_json);
    bn_tokenizer_free(g_tik);
    bn_tokenizer_free(g_gpt2);
    bn_tokenizer_free(g_spm);
    return 0;
}

/* ---- pre-tokenizers ---- */

typedef struct split_out {
    const char *text;
    const bn_cps *cps;
    char buf[512];
    size_t n;
} split_out;

static bn_status on_piece(void *user, size_t a, size_t b)
{
    split_out *o = user;
    if (o->n) o->buf[o->n++] = '|';
    size_t s = o->cps->off[a], e = o->cps->off[b];
    memcpy(o->buf + o->n, o->text + s, e - s);
    o->n += e - s;
    o->buf[o->n] = '\0';
    return BN_OK;
}

/* The pieces of text joined by '|'. */
static const char *split(bn_pretok kind, const char *text, split_out *o)
{
    size_t n = strlen(text);
    bn_cps c;
    c.cp = malloc((n + 1) * sizeof *c.cp);
    c.fl = malloc(n + 1);
    c.off = malloc((n + 1) * sizeof *c.off);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = bn_utf8_decode((const unsigned char *)text + i, n - i, &cp);
        c.cp[k] = cp;
        c.fl[k] = (uint8_t)((cp & BN_UTF8_INVALID) ? BN_UCD_SYMBOL : bn_ucd_flags(cp));
        c.off[k++] = (uint32_t)i;
        i += len;
    }
    c.off[k] = (uint32_t)n;
    c.n = k;
    memset(o, 0, sizeof *o);
    o->text = text;
    o->cps = &c;
    assert_int_equal(bn_pretok_split(kind, &c, on_piece, o), BN_OK);
    free(c.cp);
    free(c.fl);
    free(c.off);
    return o->buf;
}

static void test_pretok_llama3(void **state)
{
    (void)state;
    split_out o;
    assert_string_equal(split(BN_PRETOK_LLAMA3, "Hello world", &o), "Hello| world");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "I'm I'M we'll", &o), "I|'m| I|'M| we|'ll");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "it\xC5\xBF", &o), "it\xC5\xBF"); /* ſ is a letter */
    assert_string_equal(split(BN_PRETOK_LLAMA3, "'\xC5\xBF", &o), "'\xC5\xBF");   /* folds to 's */
    assert_string_equal(split(BN_PRETOK_LLAMA3, "12345", &o), "123|45");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "  hi", &o), " | hi");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "a   b", &o), "a|  | b");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "a\n\nb", &o), "a|\n\n|b");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "x  \n y", &o), "x|  \n| y");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "hi!!\n\nyo", &o), "hi|!!\n\n|yo");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "$100 end   ", &o), "$|100| end|   ");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "\xCE\xA9\xE2\x89\x88\xC3\xA7", &o), "\xCE\xA9|\xE2\x89\x88\xC3\xA7");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "\xFF\xFE" "ab", &o), "\xFF\xFE|ab");
    assert_string_equal(split(BN_PRETOK_LLAMA3, "\xE3\x80\x80x", &o), "\xE3\x80\x80x"); /* U+3000 then letter */
}

static void test_pretok_gpt2(void **state)
{
    (void)state;
    split_out o;
    assert_string_equal(split(BN_PRETOK_GPT2, "I'M I'm", &o), "I|'|M| I|'m");
    assert_string_equal(split(BN_PRETOK_GPT2, "12345 678", &o), "12345| 678");
    assert_string_equal(split(BN_PRETOK_GPT2, "a   b", &o), "a|  | b");
    assert_string_equal(split(BN_PRETOK_GPT2, "hi!!\n\nyo", &o), "hi|!!|\n|\n|yo");
    assert_string_equal(split(BN_PRETOK_GPT2, " !? x", &o), " !?| x");
}

static void test_pretok_default(void **state)
{
    (void)state;
    split_out o;
    assert_string_equal(split(BN_PRETOK_DEFAULT, "a (b)", &o), "a| |(|b|)");
    assert_string_equal(split(BN_PRETOK_DEFAULT, "1234567", &o), "123|456|7");
    assert_string_equal(split(BN_PRETOK_DEFAULT, "x1234", &o), "x|123|4");
    assert_string_equal(split(BN_PRETOK_DEFAULT, "hello, world", &o), "hello|,| world");
    assert_string_equal(split(BN_PRETOK_DEFAULT, "a+=b", &o), "a|+=|b");
}

static void test_unicode_tables(void **state)
{
    (void)state;
    assert_int_equal(bn_ucd_flags('A'), BN_UCD_LETTER);
    assert_int_equal(bn_ucd_flags('7'), BN_UCD_NUMBER);
    assert_int_equal(bn_ucd_flags(' '), BN_UCD_SPACE | BN_UCD_SEPARATOR);
    assert_int_equal(bn_ucd_flags('\n'), BN_UCD_SPACE | BN_UCD_OTHER);
    assert_int_equal(bn_ucd_flags(0x1F), BN_UCD_OTHER); /* a control, not White_Space */
    assert_int_equal(bn_ucd_flags(0x4E00), BN_UCD_LETTER); /* inside a First/Last range */
    assert_int_equal(bn_ucd_flags(0xBD), BN_UCD_NUMBER);   /* ½ */
    assert_int_equal(bn_ucd_flags(0x3000), BN_UCD_SPACE | BN_UCD_SEPARATOR);
    assert_int_equal(bn_ucd_flags(0x0301), BN_UCD_MARK);
    assert_int_equal(bn_ucd_flags(0x1F999), BN_UCD_SYMBOL); /* 🦙 */
    assert_int_equal(bn_ucd_flags(0x0378), 0);              /* unassigned */
    assert_int_equal(bn_ucd_flags(0x110000), 0);
    assert_int_equal(bn_ucd_fold_ascii('S'), 's');
    assert_int_equal(bn_ucd_fold_ascii(0x17F), 's');
    assert_int_equal(bn_ucd_fold_ascii(0xE9), 0xE9);
    /* UTF-8: overlong, surrogate and out-of-range forms are single invalid bytes */
    uint32_t cp;
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xC0\x80", 2, &cp), 1);
    assert_true(cp & BN_UTF8_INVALID);
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp), 1);
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xF4\x90\x80\x80", 4, &cp), 1);
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xF0\x9F\xA6\x99", 4, &cp), 4);
    assert_int_equal(cp, 0x1F999);
}

/* ---- Llama-3 from GGUF ---- */

static char g_gguf_path[512];

static const char *llama3_gguf(void)
{
    if (g_gguf_path[0]) return g_gguf_path;
    snprintf(g_gguf_path, sizeof g_gguf_path, BITNET_BINARY_DIR "/tests/tokenizer/llama3-vocab-%d.gguf", (int)getpid());
    size_t len = 0;
    char *json = tu_read_file(TOK_DATA "tokenizer.json", &len);
    assert_non_null(json);
    assert_int_equal(llama3_gguf_write(json, len, g_gguf_path), BN_OK);
    free(json);
    return g_gguf_path;
}

static bn_tokenizer *load_gguf(const char *path, bn_pretok p)
{
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(path, &g), BN_OK);
    bn_tokenizer *t = NULL;
    bn_status st = bn_tokenizer_load_gguf(g, p, &t);
    bn_gguf_free(g);
    if (st != BN_OK) fprintf(stderr, "%s\n", bn_last_error());
    assert_int_equal(st, BN_OK);
    return t;
}

static void encode_ok(const bn_tokenizer *t, const char *s, bool bos, bool special, int32_t *out, size_t *n)
{
    int32_t *ids;
    assert_int_equal(bn_tokenizer_encode(t, s, strlen(s), bos, special, &ids, n), BN_OK);
    memcpy(out, ids, *n * sizeof *ids);
    bn_free(ids);
}

static void check_cases(const bn_tokenizer *t, const char *name, size_t *differ)
{
    tu_cases cs;
    assert_int_equal(tu_load_cases(name, &cs), 46);
    *differ = 0;
    for (size_t i = 0; i < cs.n; i++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(bn_tokenizer_encode(t, cs.c[i].text, cs.c[i].len, false, false, &ids, &n), BN_OK);
        if (n != cs.c[i].n_ids || memcmp(ids, cs.c[i].ids, n * 4) != 0) (*differ)++;
        bn_free(ids);
    }
    tu_free_cases(&cs);
}

static void test_llama3_gguf_auto(void **state)
{
    (void)state;
    bn_tokenizer *t = load_gguf(llama3_gguf(), BN_PRETOK_AUTO);
    assert_int_equal(bn_tokenizer_pretok(t), BN_PRETOK_LLAMA3); /* no tokenizer.ggml.pre, Llama-3 vocabulary */
    assert_true(bn_tokenizer_is_llama3(t));
    assert_int_equal(bn_tokenizer_bos(t), 128000);
    assert_int_equal(bn_tokenizer_eos(t), 128001);
    assert_int_equal(bn_tokenizer_eot(t), 128009);
    assert_true(bn_tokenizer_add_bos(t));
    assert_true(bn_tokenizer_is_eog(t, 128001));
    assert_true(bn_tokenizer_is_eog(t, 128009));
    assert_false(bn_tokenizer_is_eog(t, 128000));
    assert_false(bn_tokenizer_is_eog(t, 9906));
    size_t differ;
    check_cases(t, "ggml-vocab-llama-bpe.gguf", &differ);
    assert_int_equal(differ, 0);
    bn_tokenizer_free(t);
}

static void test_llama3_gguf_default(void **state)
{
    (void)state;
    bn_tokenizer *t = load_gguf(llama3_gguf(), BN_PRETOK_DEFAULT);
    assert_int_equal(bn_tokenizer_pretok(t), BN_PRETOK_DEFAULT);
    /* bitnet.cpp's fallback splits " (" apart where Llama-3 keeps it together */
    int32_t got[16], want[16];
    size_t n, nw = 0;
    encode_ok(t, "a (b)", false, false, got, &n);
    const char *pieces[] = {"a", " ", "(", "b", ")"};
    for (size_t i = 0; i < 5; i++) want[nw++] = bn_tokenizer_find(t, pieces[i], strlen(pieces[i]));
    assert_int_equal(n, nw);
    assert_memory_equal(got, want, n * 4);
    encode_ok(g_json, "a (b)", false, false, got, &n);
    assert_int_equal(n, 4);
    assert_int_equal(got[1], bn_tokenizer_find(t, " (", 2));
    size_t differ;
    check_cases(t, "ggml-vocab-llama-bpe.gguf", &differ);
    assert_true(differ > 0);
    bn_tokenizer_free(t);
    unlink(llama3_gguf());
}

/* ---- both Llama-3 loaders agree ---- */

static void test_tiktoken_matches_json(void **state)
{
    (void)state;
    assert_int_equal(bn_tokenizer_n_vocab(g_tik), bn_tokenizer_n_vocab(g_json));
    for (int32_t id = 0; id < bn_tokenizer_n_vocab(g_json); id++) {
        const char *a, *b;
        size_t la, lb;
        assert_int_equal(bn_tokenizer_token_bytes(g_json, id, true, &a, &la), BN_OK);
        assert_int_equal(bn_tokenizer_token_bytes(g_tik, id, true, &b, &lb), BN_OK);
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "token %d differs\n", (int)id);
            fail();
        }
        assert_int_equal(bn_tokenizer_token_type(g_json, id), bn_tokenizer_token_type(g_tik, id));
    }
    const char *names[] = {"ggml-vocab-llama-bpe.gguf", "ggml-vocab-gpt-2.gguf"};
    for (size_t f = 0; f < 2; f++) {
        tu_cases cs;
        assert_int_equal(tu_load_cases(names[f], &cs), 46);
        for (size_t i = 0; i < cs.n; i++) {
            int32_t *x, *y;
            size_t nx, ny;
            assert_int_equal(bn_tokenizer_encode(g_json, cs.c[i].text, cs.c[i].len, true, true, &x, &nx), BN_OK);
            assert_int_equal(bn_tokenizer_encode(g_tik, cs.c[i].text, cs.c[i].len, true, true, &y, &ny), BN_OK);
            assert_int_equal(nx, ny);
            assert_memory_equal(x, y, nx * 4);
            bn_free(x);
            bn_free(y);
        }
        tu_free_cases(&cs);
    }
}

/* ---- special tokens and BOS ---- */

static void test_special_tokens(void **state)
{
    (void)state;
    int32_t ids[64];
    size_t n;
    const char *s = "Hi<|eot_id|>";
    encode_ok(g_json, s, false, true, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 128009);
    encode_ok(g_json, s, false, false, ids, &n);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(bn_tokenizer_token_type(g_json, ids[i]), BN_TOKTYPE_CONTROL);
    /* longest match: <|end_of_text|> is not cut at a shorter special */
    encode_ok(g_json, "<|end_of_text|><|begin_of_text|>", true, true, ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 128000);
    assert_int_equal(ids[1], 128001);
    assert_int_equal(ids[2], 128000);
    assert_int_equal(bn_tokenizer_find(g_json, "<|eot_id|>", 10), 128009);
    assert_int_equal(bn_tokenizer_find(g_json, "Hello", 5), 9906);
    assert_int_equal(bn_tokenizer_find(g_json, "no such token at all", 20), -1);
    /* SentencePiece: a special token starts a new fragment, which gets the space prefix */
    encode_ok(g_spm, "Hello</s>world", true, true, ids, &n);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[2], 2);
    int32_t w[8];
    size_t nw;
    encode_ok(g_spm, "world", false, false, w, &nw);
    assert_int_equal(n, 3 + nw);
    assert_memory_equal(ids + 3, w, nw * 4);
    /* BOS only when asked and when the vocabulary has one */
    encode_ok(g_gpt2, "x", true, false, ids, &n);
    assert_int_equal(ids[0], 50256);
    encode_ok(g_gpt2, "", true, false, ids, &n);
    assert_int_equal(n, 1);
    encode_ok(g_gpt2, "", false, false, ids, &n);
    assert_int_equal(n, 0);
}

/* ---- detokenizer ---- */

static void test_detok_streaming(void **state)
{
    (void)state;
    /* "é" (C3 A9) as two byte tokens: nothing until the second arrives */
    bn_detok d;
    char out[512];
    size_t n;
    bn_detok_init(&d, g_json, false);
    int32_t c3 = g_json->byte_tok[0xC3], a9 = g_json->byte_tok[0xA9];
    assert_int_equal(bn_detok_push(&d, c3, out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bn_detok_push(&d, a9, out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\xC3\xA9", 2);
    /* an interrupted sequence is one U+FFFD, then the interrupting text */
    assert_int_equal(bn_detok_push(&d, c3, out, sizeof out, &n), BN_OK);
    assert_int_equal(bn_detok_push(&d, bn_tokenizer_find(g_json, "Hello", 5), out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "\xEF\xBF\xBDHello", 8);
    /* a lone continuation byte is U+FFFD; a dangling start is flushed as U+FFFD */
    assert_int_equal(bn_detok_push(&d, a9, out, sizeof out, &n), BN_OK);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    assert_int_equal(bn_detok_push(&d, g_json->byte_tok[0xF0], out, sizeof out, &n), BN_OK);
    assert_int_equal(bn_detok_push(&d, g_json->byte_tok[0x9F], out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bn_detok_flush(&d, out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 3);
    assert_int_equal(bn_detok_flush(&d, out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 0);
    /* too small a buffer: BN_ERR_RANGE and nothing consumed */
    int32_t hello = bn_tokenizer_find(g_json, " Hello", 6);
    assert_int_equal(bn_detok_push(&d, hello, out, 3, &n), BN_ERR_RANGE);
    assert_int_equal(bn_detok_push(&d, hello, out, 6, &n), BN_OK);
    assert_memory_equal(out, " Hello", 6);
    /* control tokens: hidden unless asked */
    assert_int_equal(bn_detok_push(&d, 128009, out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 0);
    bn_detok_init(&d, g_json, true);
    assert_int_equal(bn_detok_push(&d, 128009, out, sizeof out, &n), BN_OK);
    assert_memory_equal(out, "<|eot_id|>", 10);
    assert_int_equal(bn_detok_push(&d, -1, out, sizeof out, &n), BN_ERR_RANGE);
    assert_int_equal(bn_detok_push(&d, 128256, out, sizeof out, &n), BN_ERR_RANGE);
    /* SentencePiece: the first text piece loses the prefix space, BOS does not count */
    bn_detok_init(&d, g_spm, false);
    assert_int_equal(bn_detok_push(&d, 1, out, sizeof out, &n), BN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bn_detok_push(&d, 15043, out, sizeof out, &n), BN_OK); /* "▁Hello" */
    assert_memory_equal(out, "Hello", n);
    assert_int_equal(bn_detok_push(&d, 15043, out, sizeof out, &n), BN_OK);
    assert_memory_equal(out, " Hello", n);
    /* every vocabulary's bound holds and is within the public API's 256 */
    assert_true(bn_tokenizer_max_detok_len(g_json) <= 256);
    assert_true(bn_tokenizer_max_detok_len(g_gpt2) <= 256);
    assert_true(bn_tokenizer_max_detok_len(g_spm) <= 256);
    for (int32_t id = 0; id < bn_tokenizer_n_vocab(g_gpt2); id++) {
        bn_detok_init(&d, g_gpt2, true);
        assert_int_equal(bn_detok_push(&d, g_gpt2->byte_tok[0xE2], out, sizeof out, &n), BN_OK);
        assert_int_equal(bn_detok_push(&d, id, out, bn_tokenizer_max_detok_len(g_gpt2), &n), BN_OK);
    }
}

/* ---- round trips on random text ---- */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static size_t random_utf8(char *out, size_t max_cps)
{
    static const uint32_t ranges[][2] = {{0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x17F}, {0x370, 0x3FF}, {0x400, 0x4FF},
                                         {0x600, 0x6FF}, {0x900, 0x97F}, {0x3000, 0x30FF}, {0x4E00, 0x4FFF},
                                         {0xAC00, 0xAD00}, {0x1F300, 0x1F9FF}, {0x20, 0x20}, {0x30, 0x39}};
    size_t n = rnd() % max_cps, o = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *r = ranges[rnd() % (sizeof ranges / sizeof ranges[0])];
        uint32_t cp = r[0] + rnd() % (r[1] - r[0] + 1);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
        o += bn_utf8_encode(cp, out + o);
    }
    return o;
}

static void round_trip(const bn_tokenizer *t, const char *s, size_t len)
{
    int32_t *ids;
    size_t n;
    assert_int_equal(bn_tokenizer_encode(t, s, len, false, false, &ids, &n), BN_OK);
    char *buf = malloc(len * 4 + 64);
    size_t o = 0, k;
    bn_detok d;
    bn_detok_init(&d, t, false);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(bn_detok_push(&d, ids[i], buf + o, len * 4 + 64 - o, &k), BN_OK);
        o += k;
    }
    assert_int_equal(bn_detok_flush(&d, buf + o, len * 4 + 64 - o, &k), BN_OK);
    o += k;
    if (o != len || memcmp(buf, s, len) != 0) {
        fprintf(stderr, "round trip failed for \"%.*s\" -> \"%.*s\"\n", (int)len, s, (int)o, buf);
        fail();
    }
    free(buf);
    bn_free(ids);
}

static void test_round_trip_random(void **state)
{
    (void)state;
    char s[1024];
    const bn_tokenizer *ts[] = {g_json, g_tik, g_gpt2, g_spm};
    for (int i = 0; i < 300; i++) {
        size_t len = random_utf8(s, 200);
        for (size_t k = 0; k < 4; k++) round_trip(ts[k], s, len);
    }
    /* byte-level BPE keeps even invalid UTF-8 exactly (the detokenizer would show U+FFFD, so
     * compare the token bytes) */
    const char bad[] = "ok\xFF\xC3(\xED\xA0\x80 \xF4\x90";
    int32_t *ids;
    size_t n;
    assert_int_equal(bn_tokenizer_encode(g_json, bad, sizeof bad - 1, false, false, &ids, &n), BN_OK);
    char cat[64];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b;
        size_t bl;
        assert_int_equal(bn_tokenizer_token_bytes(g_json, ids[i], false, &b, &bl), BN_OK);
        memcpy(cat + o, b, bl);
        o += bl;
    }
    assert_int_equal(o, sizeof bad - 1);
    assert_memory_equal(cat, bad, o);
    bn_free(ids);
}

/* ---- bad inputs ---- */

static void test_bad_arguments(void **state)
{
    (void)state;
    int32_t *ids;
    size_t n;
    const char *b;
    size_t bl;
    assert_int_equal(bn_tokenizer_encode(NULL, "x", 1, false, false, &ids, &n), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_tokenizer_encode(g_json, NULL, 1, false, false, &ids, &n), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_tokenizer_encode(g_json, "x", 1, false, false, NULL, &n), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_tokenizer_encode(g_json, NULL, 0, false, false, &ids, &n), BN_OK);
    assert_int_equal(n, 0);
    bn_free(ids);
    assert_int_equal(bn_tokenizer_token_bytes(g_json, 128256, false, &b, &bl), BN_ERR_RANGE);
    assert_int_equal(bn_tokenizer_token_bytes(g_json, -5, false, &b, &bl), BN_ERR_RANGE);
    assert_int_equal(bn_tokenizer_find(g_json, NULL, 3), -1);
    assert_null(bn_tokenizer_token_text(g_json, 1 << 20, &bl));
    bn_tokenizer *t;
    assert_int_equal(bn_tokenizer_build(NULL, &t), BN_ERR_INVALID_ARG);
    bn_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    bn_tok_str toks[2] = {{"a", 1}, {"b", 1}};
    d.tokens = toks;
    d.n_vocab = 2;
    d.kind = BN_TOK_BPE;
    d.pretok = BN_PRETOK_AUTO;
    d.bos = d.eos = d.unk = d.eot = d.eom = -1;
    assert_int_equal(bn_tokenizer_build(&d, &t), BN_ERR_INVALID_ARG); /* unresolved pre-tokenizer */
    d.pretok = BN_PRETOK_GPT2;
    assert_int_equal(bn_tokenizer_build(&d, &t), BN_ERR_FORMAT); /* byte-level without all 256 bytes */
    assert_non_null(strstr(bn_last_error(), "byte"));
    d.kind = BN_TOK_SPM;
    d.eos = 7;
    assert_int_equal(bn_tokenizer_build(&d, &t), BN_ERR_FORMAT); /* id outside the vocabulary */
    d.eos = -1;
    assert_int_equal(bn_tokenizer_build(&d, &t), BN_OK);
    /* a SentencePiece vocabulary without byte tokens or <unk> cannot encode "c": an error, not
     * silence */
    assert_int_equal(bn_tokenizer_encode(t, "c", 1, false, false, &ids, &n), BN_ERR_FORMAT);
    bn_tokenizer_free(t);
}

static void test_bad_tiktoken(void **state)
{
    (void)state;
    bn_tokenizer *t;
    const char *bad[] = {"", "YQ==\n", "YQ== x\n", "!!!! 0\n", "YQ== 0\nYg== 0\n", "YQ== 0\nYg== 5\n",
                         "YQ== 99999999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bn_tiktoken_load_memory(bad[i], strlen(bad[i]), BN_PRETOK_AUTO, &t), BN_ERR_FORMAT);
        assert_null(t);
    }
    assert_int_equal(bn_tiktoken_load(TOK_DATA "no-such-file", BN_PRETOK_AUTO, &t), BN_ERR_IO);
    /* a small valid file without all bytes: the byte-level check catches it */
    assert_int_equal(bn_tiktoken_load_memory("YQ== 0\r\nYg== 1\n", 15, BN_PRETOK_AUTO, &t), BN_ERR_FORMAT);
}

static void test_bad_tokenizer_json(void **state)
{
    (void)state;
    bn_tokenizer *t;
    struct {
        const char *json;
        bn_status st;
    } cases[] = {
        {"not json", BN_ERR_FORMAT},
        {"{}", BN_ERR_FORMAT},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", BN_ERR_UNSUPPORTED},
        {"{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{}}}", BN_ERR_UNSUPPORTED},
        {"{\"normalizer\":{\"type\":\"NFC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", BN_ERR_UNSUPPORTED},
        {"{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}",
         BN_ERR_UNSUPPORTED},
        {"{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
         "\"\\\\w+\"},\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\",\"use_regex\":false}]},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}",
         BN_ERR_UNSUPPORTED},
        {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}",
         BN_ERR_FORMAT},
        {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}}}",
         BN_ERR_FORMAT},
        {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},"
         "\"merges\":[7]}}",
         BN_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_status st = bn_hf_tokenizer_load_memory(cases[i].json, strlen(cases[i].json), NULL, 0, BN_PRETOK_AUTO, &t);
        if (st != cases[i].st) fprintf(stderr, "case %zu: %s\n", i, bn_last_error());
        assert_int_equal(st, cases[i].st);
        assert_null(t);
    }
}

/* A GGUF with the given tokenizer keys; returns its path. */
static const char *write_gguf(const char *model, const char *pre, int64_t eos)
{
    static char path[512];
    snprintf(path, sizeof path, BITNET_BINARY_DIR "/tests/tokenizer/bad-%d.gguf", (int)getpid());
    bn_gguf_writer *w;
    assert_int_equal(bn_gguf_writer_init(&w), BN_OK);
    const char *tokens[256];
    char store[256][3];
    for (int b = 0; b < 256; b++) { /* all 256 GPT-2 byte characters */
        uint32_t cp = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE ? (uint32_t)b : 0;
        if (!cp) {
            int k = 0;
            for (int c = 0; c < b; c++)
                if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) k++;
            cp = 256 + (uint32_t)k;
        }
        size_t l = bn_utf8_encode(cp, store[b]);
        store[b][l] = '\0';
        tokens[b] = store[b];
    }
    if (model) assert_int_equal(bn_gguf_writer_set_str(w, "tokenizer.ggml.model", model), BN_OK);
    if (pre) assert_int_equal(bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre), BN_OK);
    assert_int_equal(bn_gguf_writer_set_array(w, "tokenizer.ggml.tokens", BN_GGUF_STRING, tokens, 256), BN_OK);
    const char *merges[] = {"a b"};
    assert_int_equal(bn_gguf_writer_set_array(w, "tokenizer.ggml.merges", BN_GGUF_STRING, merges, 1), BN_OK);
    if (eos >= 0) assert_int_equal(bn_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos), BN_OK);
    assert_int_equal(bn_gguf_writer_write(w, path), BN_OK);
    bn_gguf_writer_free(w);
    return path;
}

static bn_status try_gguf(const char *path, bn_pretok p, bn_tokenizer **t)
{
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(path, &g), BN_OK);
    bn_status st = bn_tokenizer_load_gguf(g, p, t);
    bn_gguf_free(g);
    unlink(path);
    return st;
}

static void test_bad_gguf(void **state)
{
    (void)state;
    bn_tokenizer *t;
    assert_int_equal(try_gguf(write_gguf(NULL, NULL, -1), BN_PRETOK_AUTO, &t), BN_ERR_NOT_FOUND);
    assert_non_null(strstr(bn_last_error(), "tokenizer.ggml.model"));
    assert_int_equal(try_gguf(write_gguf("bert", NULL, -1), BN_PRETOK_AUTO, &t), BN_ERR_UNSUPPORTED);
    assert_int_equal(try_gguf(write_gguf("gpt2", "qwen2", -1), BN_PRETOK_AUTO, &t), BN_ERR_UNSUPPORTED);
    assert_non_null(strstr(bn_last_error(), "qwen2"));
    assert_int_equal(try_gguf(write_gguf("gpt2", "qwen2", -1), BN_PRETOK_GPT2, &t), BN_OK); /* overridden */
    assert_int_equal(bn_tokenizer_pretok(t), BN_PRETOK_GPT2);
    assert_false(bn_tokenizer_is_llama3(t));
    bn_tokenizer_free(t);
    assert_int_equal(try_gguf(write_gguf("gpt2", NULL, -1), BN_PRETOK_AUTO, &t), BN_OK);
    assert_int_equal(bn_tokenizer_pretok(t), BN_PRETOK_DEFAULT); /* not Llama-3: llama.cpp's fallback */
    assert_int_equal(bn_tokenizer_bos(t), -1);
    bn_tokenizer_free(t);
    assert_int_equal(try_gguf(write_gguf("gpt2", NULL, 999), BN_PRETOK_AUTO, &t), BN_ERR_FORMAT);
    assert_int_equal(try_gguf(write_gguf("gpt2", NULL, 0xFFFFFFFFll), BN_PRETOK_AUTO, &t), BN_OK); /* = none */
    assert_int_equal(bn_tokenizer_eos(t), -1);
    bn_tokenizer_free(t);
    assert_int_equal(bn_tokenizer_load_gguf(NULL, BN_PRETOK_AUTO, &t), BN_ERR_INVALID_ARG);
}

/* stories260K: a 512-token SentencePiece vocabulary inside a model GGUF */
static void test_stories260k(void **state)
{
    (void)state;
    bn_tokenizer *t = load_gguf(GGUF_DATA "stories260K.gguf", BN_PRETOK_AUTO);
    assert_int_equal(bn_tokenizer_kind(t), BN_TOK_SPM);
    assert_int_equal(bn_tokenizer_n_vocab(t), 512);
    assert_int_equal(bn_tokenizer_bos(t), 1);
    assert_true(bn_tokenizer_is_eog(t, 2));
    const char *text = "Once upon a time, there was a little girl named Lily.";
    int32_t ids[128];
    size_t n;
    encode_ok(t, text, true, false, ids, &n);
    assert_int_equal(ids[0], 1);
    assert_true(n > 10 && n < 60);
    round_trip(t, text, strlen(text));
    const char *b;
    size_t bl;
    assert_int_equal(bn_tokenizer_token_bytes(t, 1, true, &b, &bl), BN_OK);
    assert_int_equal(bl, 3);
    assert_memory_equal(b, "<s>", 3);
    assert_int_equal(bn_tokenizer_token_bytes(t, 1, false, &b, &bl), BN_OK);
    assert_int_equal(bl, 0);
    bn_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretok_llama3),    cmocka_unit_test(test_pretok_gpt2),
        cmocka_unit_test(test_pretok_default),   cmocka_unit_test(test_unicode_tables),
        cmocka_unit_test(test_llama3_gguf_auto), cmocka_unit_test(test_llama3_gguf_default),
        cmocka_unit_test(test_tiktoken_matches_json), cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_detok_streaming),  cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_bad_arguments),    cmocka_unit_test(test_bad_tiktoken),
        cmocka_unit_test(test_bad_tokenizer_json), cmocka_unit_test(test_bad_gguf),
        cmocka_unit_test(test_stories260k),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
