/* Public API: tokenizers (standalone files and the model's), tokenize, detokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "common/error.h"
#include "common/mem.h"
#include "gguf/gguf.h"
#include "hf/hf_tokenizer.h"

_Static_assert((int)BITNET_PRETOK_AUTO == (int)BN_PRETOK_AUTO, "pretok mismatch");
_Static_assert((int)BITNET_PRETOK_LLAMA3 == (int)BN_PRETOK_LLAMA3, "pretok mismatch");
_Static_assert((int)BITNET_PRETOK_GPT2 == (int)BN_PRETOK_GPT2, "pretok mismatch");
_Static_assert((int)BITNET_PRETOK_DEFAULT == (int)BN_PRETOK_DEFAULT, "pretok mismatch");

/* What kind of file: GGUF by its magic, tokenizer.json by a leading '{', else tiktoken. */
typedef enum { FILE_GGUF, FILE_JSON, FILE_TIKTOKEN } file_kind;

static bn_status sniff(const char *path, file_kind *kind)
{
    FILE *f = fopen(path, "rb");
    if (!f) return bn_error(BN_ERR_IO, "cannot open %s", path);
    unsigned char head[64];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    *kind = FILE_TIKTOKEN;
    if (n >= 4 && memcmp(head, "GGUF", 4) == 0) {
        *kind = FILE_GGUF;
        return BN_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n') continue;
        if (head[i] == '{') *kind = FILE_JSON;
        break;
    }
    return BN_OK;
}

bitnet_status bitnet_tokenizer_load(const char *path, bitnet_pretokenizer pretok, bitnet_tokenizer **out)
{
    if (!out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_tokenizer_load: path is NULL");
    if ((int)pretok < BITNET_PRETOK_AUTO || (int)pretok > BITNET_PRETOK_DEFAULT)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "unknown pre-tokenizer option %d", (int)pretok);
    file_kind kind;
    bn_status st = sniff(path, &kind);
    if (st != BN_OK) return (bitnet_status)st;
    bn_tokenizer *tok = NULL;
    if (kind == FILE_GGUF) {
        bn_gguf *g;
        st = bn_gguf_open(path, &g);
        if (st == BN_OK) {
            st = bn_tokenizer_load_gguf(g, (bn_pretok)pretok, &tok);
            bn_gguf_free(g);
            if (st != BN_OK) bn_error_prefix(st, "%s: ", path);
        }
    } else if (kind == FILE_JSON) {
        st = bn_hf_tokenizer_load(path, (bn_pretok)pretok, &tok);
    } else {
        st = bn_tiktoken_load(path, (bn_pretok)pretok, &tok);
    }
    if (st != BN_OK) return (bitnet_status)st;
    bitnet_tokenizer *t = bn_malloc(sizeof *t);
    if (!t) {
        bn_tokenizer_free(tok);
        return BITNET_ERR_NOMEM;
    }
    t->tok = tok;
    t->owned = 1;
    *out = t;
    return BITNET_OK;
}

void bitnet_tokenizer_free(bitnet_tokenizer *t)
{
    if (!t || !t->owned) return; /* a model's tokenizer goes with the model */
    bn_tokenizer_free(t->tok);
    bn_free(t);
}

static bool valid(const bitnet_tokenizer *t) { return t && t->tok; }

bitnet_status bitnet_tokenize(const bitnet_tokenizer *t, const char *text, size_t len, int flags,
                              bitnet_token *tokens, size_t cap, size_t *n_tokens)
{
    if (n_tokens) *n_tokens = 0;
    if (!valid(t) || !n_tokens || (!text && len) || (!tokens && cap))
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_tokenize: NULL argument");
    bool add_bos = (flags & BITNET_TOKENIZE_ADD_BOS) && !(flags & BITNET_TOKENIZE_NO_BOS) && bn_tokenizer_add_bos(t->tok);
    int32_t *ids;
    size_t n;
    bn_status st = bn_tokenizer_encode(t->tok, text, len, add_bos, (flags & BITNET_TOKENIZE_PARSE_SPECIAL) != 0, &ids, &n);
    if (st != BN_OK) return (bitnet_status)st;
    memcpy(tokens, ids, (n < cap ? n : cap) * sizeof *ids);
    bn_free(ids);
    *n_tokens = n;
    if (n > cap) return (bitnet_status)bn_error(BN_ERR_RANGE, "%zu tokens do not fit in %zu", n, cap);
    return BITNET_OK;
}

bitnet_status bitnet_token_bytes(const bitnet_tokenizer *t, bitnet_token id, bool special, const char **bytes,
                                 size_t *len)
{
    if (!valid(t)) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_token_bytes: no tokenizer");
    return (bitnet_status)bn_tokenizer_token_bytes(t->tok, id, special, bytes, len);
}

char *bitnet_detokenize(const bitnet_tokenizer *t, const bitnet_token *ids, size_t n, bool special)
{
    if (!valid(t) || (!ids && n)) {
        bn_error(BN_ERR_INVALID_ARG, "bitnet_detokenize: NULL argument");
        return NULL;
    }
    size_t step = bn_tokenizer_max_detok_len(t->tok);
    size_t cap = step + 1, len = 0;
    char *buf = bn_malloc(cap);
    bn_detok d;
    bn_detok_init(&d, t->tok, special);
    for (size_t i = 0; buf && i <= n; i++) {
        if (cap - len < step + 1) {
            size_t nc;
            if (bn_mul_overflow(cap, 2, &nc) || bn_add_overflow(nc, step, &nc)) {
                bn_error(BN_ERR_NOMEM, "detokenized text too long");
                bn_free(buf);
                return NULL;
            }
            char *nb = bn_realloc(buf, nc);
            if (!nb) {
                bn_free(buf);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t k;
        bn_status st = i < n ? bn_detok_push(&d, ids[i], buf + len, cap - len - 1, &k)
                             : bn_detok_flush(&d, buf + len, cap - len - 1, &k);
        if (st != BN_OK) {
            bn_free(buf);
            return NULL;
        }
        len += k;
    }
    if (buf) buf[len] = '\0';
    return buf;
}

int32_t bitnet_tokenizer_n_vocab(const bitnet_tokenizer *t) { return valid(t) ? bn_tokenizer_n_vocab(t->tok) : 0; }
bitnet_token bitnet_tokenizer_bos(const bitnet_tokenizer *t) { return valid(t) ? bn_tokenizer_bos(t->tok) : -1; }
bitnet_token bitnet_tokenizer_eos(const bitnet_tokenizer *t) { return valid(t) ? bn_tokenizer_eos(t->tok) : -1; }
bitnet_token bitnet_tokenizer_eot(const bitnet_tokenizer *t) { return valid(t) ? bn_tokenizer_eot(t->tok) : -1; }

bool bitnet_tokenizer_is_eog(const bitnet_tokenizer *t, bitnet_token id)
{
    return valid(t) && bn_tokenizer_is_eog(t->tok, id);
}

struct bitnet_detokenizer {
    bn_detok d;
};

bitnet_status bitnet_detokenizer_init(const bitnet_tokenizer *t, bool special, bitnet_detokenizer **out)
{
    if (!out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_detokenizer_init: out is NULL");
    *out = NULL;
    if (!valid(t)) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_detokenizer_init: no tokenizer");
    bitnet_detokenizer *d = bn_malloc(sizeof *d);
    if (!d) return BITNET_ERR_NOMEM;
    bn_detok_init(&d->d, t->tok, special);
    *out = d;
    return BITNET_OK;
}

void bitnet_detokenizer_free(bitnet_detokenizer *d) { bn_free(d); }

bitnet_status bitnet_detokenizer_push(bitnet_detokenizer *d, bitnet_token id, char *out, size_t cap, size_t *len)
{
    if (len) *len = 0;
    if (!d) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_detokenizer_push: no detokenizer");
    return (bitnet_status)bn_detok_push(&d->d, id, out, cap, len);
}

bitnet_status bitnet_detokenizer_flush(bitnet_detokenizer *d, char *out, size_t cap, size_t *len)
{
    if (len) *len = 0;
    if (!d) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_detokenizer_flush: no detokenizer");
    return (bitnet_status)bn_detok_flush(&d->d, out, cap, len);
}
