/* Fuzzes the tokenizer: random bytes are encoded by small built-in vocabularies (byte-level BPE
 * with each pre-tokenizer, with merge lists and tiktoken-style merges, and SentencePiece), with
 * and without special-token parsing; valid UTF-8 must survive the round trip exactly.  The same
 * bytes are also decoded as token ids by the streaming detokenizer, and parsed as a tiktoken file
 * and as a tokenizer.json.  Any crash, hang, sanitizer report or round-trip mismatch is a bug. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "hf/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#define N_TOK 5
static bn_tokenizer *toks[N_TOK];

static bool printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* The GPT-2 byte-to-unicode text of raw bytes. */
static size_t bytelevel(const char *raw, char *out)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        uint32_t cp = *p;
        if (!printable(*p)) {
            uint32_t k = 0;
            for (unsigned c = 0; c < *p; c++) k += !printable(c);
            cp = 256 + k;
        }
        o += bn_utf8_encode(cp, out + o);
    }
    out[o] = '\0';
    return o;
}

static char store[600][32];

static bn_tokenizer *make_bpe(bn_pretok pretok, bool tiktoken)
{
    static const char *words[] = {"ab", "abc", "th", "he", "the", " the", " t", "in", "ing", " ing", "12", "123",
                                  "\xC3\xA9", "caf\xC3\xA9", "  ", "\n\n"};
    static const char *merges_raw[][2] = {{"a", "b"}, {"ab", "c"},  {"t", "h"},  {"th", "e"},  {" ", "the"},
                                          {" ", "t"}, {"i", "n"},   {"in", "g"}, {" ", "ing"}, {"1", "2"},
                                          {"12", "3"}, {"\xC3", "\xA9"}, {"caf", "\xC3\xA9"}, {" ", " "},
                                          {"\n", "\n"}};
    bn_tok_str tokens[300];
    int32_t types[300];
    int n = 0;
    char raw[2] = {0, 0};
    for (int b = 0; b < 256; b++) {
        raw[0] = (char)b;
        size_t l;
        if (b == 0) l = bn_utf8_encode(256, store[n]); /* byte 0 */
        else l = bytelevel(raw, store[n]);
        tokens[n] = (bn_tok_str){store[n], l};
        types[n++] = BN_TOKTYPE_NORMAL;
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t l = bytelevel(words[i], store[n]);
        tokens[n] = (bn_tok_str){store[n], l};
        types[n++] = BN_TOKTYPE_NORMAL;
    }
    tokens[n] = (bn_tok_str){"<|eot_id|>", 10};
    types[n++] = BN_TOKTYPE_CONTROL;
    tokens[n] = (bn_tok_str){"<|x|>", 5};
    types[n++] = BN_TOKTYPE_CONTROL;
    tokens[n] = (bn_tok_str){"<user>", 6};
    types[n++] = BN_TOKTYPE_USER_DEFINED;
    bn_tok_str merges[32];
    size_t nm = 0;
    static char mstore[32][48];
    for (size_t i = 0; i < sizeof merges_raw / sizeof merges_raw[0]; i++) {
        size_t l = bytelevel(merges_raw[i][0], mstore[i]);
        mstore[i][l++] = ' ';
        l += bytelevel(merges_raw[i][1], mstore[i] + l);
        merges[nm++] = (bn_tok_str){mstore[i], l};
    }
    bn_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    d.kind = BN_TOK_BPE;
    d.n_vocab = n;
    d.tokens = tokens;
    d.types = types;
    d.merges = tiktoken ? NULL : merges;
    d.n_merges = tiktoken ? 0 : nm;
    d.merges_from_ids = tiktoken;
    d.pretok = pretok;
    d.ignore_merges = pretok == BN_PRETOK_LLAMA3;
    d.bos = n - 3;
    d.eos = d.unk = d.eot = d.eom = -1;
    d.add_bos = true;
    bn_tokenizer *t = NULL;
    if (bn_tokenizer_build(&d, &t) != BN_OK) abort();
    return t;
}

static bn_tokenizer *make_spm(void)
{
    static const char *pieces[] = {"\xE2\x96\x81", "\xE2\x96\x81" "a", "a", "b", "ab", "\xE2\x96\x81" "ab", "c",
                                   "abc", "\xC3\xA9", "\xE2\x96\x81\xE2\x96\x81"};
    bn_tok_str tokens[300];
    int32_t types[300];
    float scores[300];
    int n = 0;
    tokens[n] = (bn_tok_str){"<unk>", 5};
    types[n++] = BN_TOKTYPE_UNKNOWN;
    tokens[n] = (bn_tok_str){"<s>", 3};
    types[n++] = BN_TOKTYPE_CONTROL;
    tokens[n] = (bn_tok_str){"</s>", 4};
    types[n++] = BN_TOKTYPE_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(store[300 + b], sizeof store[0], "<0x%02X>", b);
        tokens[n] = (bn_tok_str){store[300 + b], 6};
        types[n++] = BN_TOKTYPE_BYTE;
    }
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        tokens[n] = (bn_tok_str){pieces[i], strlen(pieces[i])};
        types[n++] = BN_TOKTYPE_NORMAL;
    }
    for (int i = 0; i < n; i++) scores[i] = -(float)i;
    bn_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    d.kind = BN_TOK_SPM;
    d.n_vocab = n;
    d.tokens = tokens;
    d.types = types;
    d.scores = scores;
    d.bos = 1;
    d.eos = 2;
    d.unk = 0;
    d.eot = d.eom = -1;
    d.add_bos = true;
    d.add_space_prefix = true;
    bn_tokenizer *t = NULL;
    if (bn_tokenizer_build(&d, &t) != BN_OK) abort();
    return t;
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = bn_utf8_decode(s + i, n - i, &cp);
        if (cp & BN_UTF8_INVALID) return false;
        i += k;
    }
    return true;
}

static bool has_u2581(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return true;
    return false;
}

static void round_trip(const bn_tokenizer *t, const uint8_t *data, size_t size, bool special)
{
    int32_t *ids;
    size_t n;
    if (bn_tokenizer_encode(t, (const char *)data, size, true, special, &ids, &n) != BN_OK) abort();
    size_t step = bn_tokenizer_max_detok_len(t), cap = (n + 1) * step + 1, o = 0, k;
    char *out = malloc(cap);
    bn_detok d;
    bn_detok_init(&d, t, false);
    for (size_t i = 0; i < n; i++) {
        if (bn_detok_push(&d, ids[i], out + o, cap - o, &k) != BN_OK) abort();
        o += k;
    }
    if (bn_detok_flush(&d, out + o, cap - o, &k) != BN_OK) abort();
    o += k;
    /* SentencePiece writes spaces as U+2581, so a literal U+2581 in the input comes back as a space */
    bool exact = !special && valid_utf8(data, size) &&
                 !(bn_tokenizer_kind(t) == BN_TOK_SPM && has_u2581(data, size));
    if (exact && (o != size || memcmp(out, data, size) != 0)) abort();
    if (!valid_utf8((const uint8_t *)out, o)) abort(); /* the detokenizer only ever emits valid UTF-8 */
    free(out);
    bn_free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!toks[0]) {
        toks[0] = make_bpe(BN_PRETOK_LLAMA3, false);
        toks[1] = make_bpe(BN_PRETOK_GPT2, false);
        toks[2] = make_bpe(BN_PRETOK_DEFAULT, false);
        toks[3] = make_bpe(BN_PRETOK_LLAMA3, true);
        toks[4] = make_spm();
    }
    for (int i = 0; i < N_TOK; i++) {
        round_trip(toks[i], data, size, false);
        round_trip(toks[i], data, size, true);
    }

    /* the bytes as token ids (two bytes each), any of them possibly out of range */
    char out[4096];
    size_t k;
    for (int i = 0; i < N_TOK; i++) {
        bn_detok d;
        bn_detok_init(&d, toks[i], i & 1);
        for (size_t j = 0; j + 1 < size; j += 2) {
            int32_t id = (int32_t)(data[j] | (data[j + 1] << 8)) - 8;
            bn_status st = bn_detok_push(&d, id, out, sizeof out, &k);
            if (st != BN_OK && (id >= 0 && id < bn_tokenizer_n_vocab(toks[i]))) abort();
        }
        bn_detok_flush(&d, out, sizeof out, &k);
    }

    /* the bytes as vocabulary files */
    bn_tokenizer *t = NULL;
    if (bn_tiktoken_load_memory((const char *)data, size, BN_PRETOK_AUTO, &t) == BN_OK) round_trip(t, data, size, false);
    bn_tokenizer_free(t);
    if (bn_hf_tokenizer_load_memory((const char *)data, size, NULL, 0, BN_PRETOK_AUTO, &t) == BN_OK)
        round_trip(t, data, size, false);
    bn_tokenizer_free(t);
    return 0;
}
