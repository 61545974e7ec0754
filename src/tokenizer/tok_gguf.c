/* Loading a tokenizer from GGUF metadata (tokenizer.ggml.*), as llama.cpp's converters write it. */
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

static bool str_eq(bn_gguf_str s, const char *want)
{
    size_t n = strlen(want);
    return s.len == n && memcmp(s.ptr, want, n) == 0;
}

/* tokenizer.ggml.pre names we implement; anything else is refused rather than guessed. */
static bool pretok_from_name(bn_gguf_str name, bn_pretok *out)
{
    static const struct {
        const char *name;
        bn_pretok pretok;
    } names[] = {
        {"llama3", BN_PRETOK_LLAMA3}, {"llama-bpe", BN_PRETOK_LLAMA3}, {"llama-v3", BN_PRETOK_LLAMA3},
        {"smaug-bpe", BN_PRETOK_LLAMA3}, {"gpt-2", BN_PRETOK_GPT2},    {"gpt2", BN_PRETOK_GPT2},
        {"phi-2", BN_PRETOK_GPT2},       {"default", BN_PRETOK_DEFAULT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (str_eq(name, names[i].name)) {
            *out = names[i].pretok;
            return true;
        }
    }
    return false;
}

/* An optional token id: absent -> dflt; a negative or all-ones value means "none". */
static bn_status get_id(const bn_gguf *g, const char *key, int32_t dflt, int32_t *out)
{
    *out = dflt;
    if (!bn_gguf_get(g, key)) return BN_OK;
    int64_t v;
    bn_status st = bn_gguf_get_i64(g, key, &v);
    if (st != BN_OK) return st;
    if (v < 0 || v == 0xFFFFFFFFll) *out = -1;
    else if (v > INT32_MAX) return bn_error(BN_ERR_FORMAT, "%s = %lld is out of range", key, (long long)v);
    else *out = (int32_t)v;
    return BN_OK;
}

static bn_status get_bool(const bn_gguf *g, const char *key, bool dflt, bool *out)
{
    *out = dflt;
    if (!bn_gguf_get(g, key)) return BN_OK;
    return bn_gguf_get_bool(g, key, out);
}

/* A string array of exactly n elements (n = 0: any length, returned in *n). */
static bn_status get_strings(const bn_gguf *g, const char *key, uint64_t *n, bn_tok_str **out)
{
    *out = NULL;
    const bn_gguf_value *v = bn_gguf_get(g, key);
    if (!v) return bn_error(BN_ERR_NOT_FOUND, "%s is missing", key);
    if (v->type != BN_GGUF_ARRAY || v->v.arr.elem_type != BN_GGUF_STRING)
        return bn_error(BN_ERR_FORMAT, "%s is not an array of strings", key);
    if (*n && v->v.arr.n != *n)
        return bn_error(BN_ERR_FORMAT, "%s has %llu elements, expected %llu", key, (unsigned long long)v->v.arr.n,
                        (unsigned long long)*n);
    *n = v->v.arr.n;
    if (*n > (1u << 28)) return bn_error(BN_ERR_FORMAT, "%s has too many elements (%llu)", key, (unsigned long long)*n);
    bn_tok_str *s = bn_malloc((size_t)(*n ? *n : 1) * sizeof *s);
    if (!s) return BN_ERR_NOMEM;
    for (uint64_t i = 0; i < *n; i++) {
        bn_gguf_str e;
        bn_status st = bn_gguf_arr_str(v, i, &e);
        if (st != BN_OK) {
            bn_free(s);
            return st;
        }
        s[i] = (bn_tok_str){e.ptr, (size_t)e.len};
    }
    *out = s;
    return BN_OK;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bn_status get_scores(const bn_gguf *g, uint64_t n, float **out)
{
    *out = NULL;
    const char *key = "tokenizer.ggml.scores";
    const bn_gguf_value *v = bn_gguf_get(g, key);
    if (!v) return BN_OK;
    if (v->type != BN_GGUF_ARRAY || v->v.arr.elem_type != BN_GGUF_F32 || v->v.arr.n != n)
        return bn_error(BN_ERR_FORMAT, "%s must be %llu float32 values", key, (unsigned long long)n);
    const unsigned char *p = bn_gguf_arr_data(v);
    float *f = bn_malloc((size_t)n * sizeof *f);
    if (!p || !f) {
        bn_free(f);
        return p ? BN_ERR_NOMEM : bn_error(BN_ERR_FORMAT, "%s has no data", key);
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u = le32(p + 4 * i);
        memcpy(&f[i], &u, 4);
    }
    *out = f;
    return BN_OK;
}

static bn_status get_types(const bn_gguf *g, uint64_t n, int32_t **out)
{
    *out = NULL;
    const char *key = "tokenizer.ggml.token_type";
    const bn_gguf_value *v = bn_gguf_get(g, key);
    if (!v) return BN_OK;
    if (v->type != BN_GGUF_ARRAY || v->v.arr.n != n)
        return bn_error(BN_ERR_FORMAT, "%s must be an array of %llu values", key, (unsigned long long)n);
    int32_t *t = bn_malloc((size_t)n * sizeof *t);
    if (!t) return BN_ERR_NOMEM;
    const unsigned char *p = bn_gguf_arr_data(v);
    bool i32 = v->v.arr.elem_type == BN_GGUF_I32 || v->v.arr.elem_type == BN_GGUF_U32;
    for (uint64_t i = 0; i < n; i++) {
        if (i32 && p) {
            t[i] = (int32_t)le32(p + 4 * i);
            continue;
        }
        bn_gguf_value e;
        bn_status st = bn_gguf_arr_value(v, i, &e);
        if (st == BN_OK && (e.type == BN_GGUF_I8 || e.type == BN_GGUF_I16 || e.type == BN_GGUF_I64)) t[i] = (int32_t)e.v.i;
        else if (st == BN_OK && (e.type == BN_GGUF_U8 || e.type == BN_GGUF_U16 || e.type == BN_GGUF_U64)) t[i] = (int32_t)e.v.u;
        else {
            bn_free(t);
            return st != BN_OK ? st : bn_error(BN_ERR_FORMAT, "%s must hold integers", key);
        }
    }
    *out = t;
    return BN_OK;
}

bn_status bn_tokenizer_load_gguf(const bn_gguf *g, bn_pretok pretok, bn_tokenizer **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_load_gguf: out is NULL");
    *out = NULL;
    if (!g) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_load_gguf: no file");
    if (pretok < BN_PRETOK_AUTO || pretok > BN_PRETOK_DEFAULT)
        return bn_error(BN_ERR_INVALID_ARG, "unknown pre-tokenizer option %d", (int)pretok);

    bn_gguf_str model;
    bn_status st = bn_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st != BN_OK) return bn_error_prefix(st, "no tokenizer in this file: ");
    bn_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    if (str_eq(model, "gpt2")) d.kind = BN_TOK_BPE;
    else if (str_eq(model, "llama")) d.kind = BN_TOK_SPM;
    else
        return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.ggml.model \"%.*s\" is not supported (only gpt2 and llama)",
                        (int)(model.len > 64 ? 64 : model.len), model.ptr);

    uint64_t n = 0, n_merges = 0;
    bn_tok_str *tokens = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    if ((st = get_strings(g, "tokenizer.ggml.tokens", &n, &tokens)) != BN_OK) goto done;
    if (n == 0) {
        st = bn_error(BN_ERR_FORMAT, "tokenizer.ggml.tokens is empty");
        goto done;
    }
    if ((st = get_scores(g, n, &scores)) != BN_OK || (st = get_types(g, n, &types)) != BN_OK) goto done;
    if (d.kind == BN_TOK_BPE && (st = get_strings(g, "tokenizer.ggml.merges", &n_merges, &merges)) != BN_OK) goto done;

    bool llama3 = d.kind == BN_TOK_BPE && bn_tok_texts_are_llama3(tokens, (int32_t)n);
    d.n_vocab = (int32_t)n;
    d.tokens = tokens;
    d.scores = scores;
    d.types = types;
    d.merges = merges;
    d.n_merges = (size_t)n_merges;

    if (d.kind == BN_TOK_BPE) {
        const bn_gguf_value *pre = bn_gguf_get(g, "tokenizer.ggml.pre");
        d.pretok = pretok;
        if (pretok == BN_PRETOK_AUTO && pre) {
            if (pre->type != BN_GGUF_STRING) {
                st = bn_error(BN_ERR_FORMAT, "tokenizer.ggml.pre is not a string");
                goto done;
            }
            if (!pretok_from_name(pre->v.s, &d.pretok)) {
                st = bn_error(BN_ERR_UNSUPPORTED,
                              "pre-tokenizer \"%.*s\" (tokenizer.ggml.pre) is not supported; choose one of "
                              "llama3, gpt2, default explicitly",
                              (int)(pre->v.s.len > 64 ? 64 : pre->v.s.len), pre->v.s.ptr);
                goto done;
            }
        } else if (pretok == BN_PRETOK_AUTO) {
            /* Microsoft's BitNet 2B-4T file has no tokenizer.ggml.pre; the model was trained with
             * the Llama-3 splitting, so that is what a Llama-3 vocabulary gets. */
            d.pretok = llama3 ? BN_PRETOK_LLAMA3 : BN_PRETOK_DEFAULT;
        }
        d.ignore_merges = d.pretok == BN_PRETOK_LLAMA3;
    }

    int32_t dflt_bos = -1, dflt_eos = -1, dflt_unk = -1;
    if (d.kind == BN_TOK_SPM) {
        /* llama.cpp's defaults for SentencePiece vocabularies */
        dflt_unk = 0;
        dflt_bos = n > 1 ? 1 : -1;
        dflt_eos = n > 2 ? 2 : -1;
    } else if (llama3) {
        dflt_bos = 128000;
        dflt_eos = 128001;
    }
    if ((st = get_id(g, "tokenizer.ggml.bos_token_id", dflt_bos, &d.bos)) != BN_OK ||
        (st = get_id(g, "tokenizer.ggml.eos_token_id", dflt_eos, &d.eos)) != BN_OK ||
        (st = get_id(g, "tokenizer.ggml.unknown_token_id", dflt_unk, &d.unk)) != BN_OK ||
        (st = get_id(g, "tokenizer.ggml.eot_token_id", -1, &d.eot)) != BN_OK ||
        (st = get_id(g, "tokenizer.ggml.eom_token_id", -1, &d.eom)) != BN_OK ||
        (st = get_bool(g, "tokenizer.ggml.add_bos_token", d.kind == BN_TOK_SPM || llama3, &d.add_bos)) != BN_OK ||
        (st = get_bool(g, "tokenizer.ggml.add_space_prefix", true, &d.add_space_prefix)) != BN_OK)
        goto done;

    st = bn_tokenizer_build(&d, out);
done:
    bn_free(tokens);
    bn_free(merges);
    bn_free(scores);
    bn_free(types);
    return st;
}
