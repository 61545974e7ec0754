/* tiktoken vocabulary files: one "base64(token bytes) rank" per line.  A rank is both the token
 * id and its merge priority: BPE merges two adjacent symbols when their concatenation is a token,
 * lowest rank first (bn_tokenizer_desc.merges_from_ids), and tiktoken takes a pre-tokenized
 * piece whole when it is a token (ignore_merges). */
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/file.h"
#include "common/mem.h"
#include "hf/hf_tokenizer.h"

#define LLAMA3_BASE 128000
#define LLAMA3_SPECIALS 256

void bn_llama3_special_name(int32_t id, char *buf, size_t cap)
{
    /* Meta's list: ten named slots with reserved 0-4 between them, then reserved 5.. */
    static const char *named[10] = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                    "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                                    "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                    "<|reserved_special_token_4|>", "<|eot_id|>"};
    int k = (int)(id - LLAMA3_BASE);
    if (k < 0 || k >= LLAMA3_SPECIALS) snprintf(buf, cap, "%s", "");
    else if (k < 10) snprintf(buf, cap, "%s", named[k]);
    else snprintf(buf, cap, "<|reserved_special_token_%d|>", k - 5);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (padding optional) into out; returns the length or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    while (n && s[n - 1] == '=') n--;
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

bn_status bn_tiktoken_load_memory(const char *data, size_t len, bn_pretok pretok, bn_tokenizer **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "bn_tiktoken_load_memory: out is NULL");
    *out = NULL;
    if (!data && len) return bn_error(BN_ERR_INVALID_ARG, "bn_tiktoken_load_memory: no data");
    if (pretok < BN_PRETOK_AUTO || pretok > BN_PRETOK_DEFAULT)
        return bn_error(BN_ERR_INVALID_ARG, "unknown pre-tokenizer option %d", (int)pretok);

    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += data[i] == '\n';
    n_lines++;
    if (n_lines > (1u << 27)) return bn_error(BN_ERR_FORMAT, "tiktoken file has too many lines");
    size_t cap = n_lines + LLAMA3_SPECIALS;
    bn_tok_str *tokens = bn_calloc(cap, sizeof *tokens);
    int32_t *types = bn_calloc(cap, sizeof *types);
    unsigned char *bytes = bn_malloc(len + 1); /* decoded tokens are shorter than their base64 */
    char *special_text = bn_malloc((size_t)LLAMA3_SPECIALS * 40);
    bn_status st = BN_OK;
    if (!tokens || !types || !bytes || !special_text) {
        st = BN_ERR_NOMEM;
        goto done;
    }

    size_t n = 0, bo = 0, line = 0;
    for (size_t i = 0; i < len;) {
        line++;
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        size_t end = e;
        if (end > i && data[end - 1] == '\r') end--;
        if (end > i) {
            const char *sp = memchr(data + i, ' ', end - i);
            if (!sp) {
                st = bn_error(BN_ERR_FORMAT, "tiktoken line %zu: expected \"base64 rank\"", line);
                goto done;
            }
            long bl = b64_decode(data + i, (size_t)(sp - (data + i)), bytes + bo);
            unsigned long long rank = 0;
            const char *r = sp + 1;
            if (r == data + end) bl = -1;
            for (; r < data + end && bl >= 0; r++) {
                if (*r < '0' || *r > '9' || rank > 1000000000ull) bl = -1;
                else rank = rank * 10 + (unsigned)(*r - '0');
            }
            if (bl <= 0) {
                st = bn_error(BN_ERR_FORMAT, "tiktoken line %zu: bad base64 token or rank", line);
                goto done;
            }
            if (rank >= n_lines || tokens[rank].ptr) {
                st = bn_error(BN_ERR_FORMAT, "tiktoken line %zu: rank %llu is out of range or repeated", line, rank);
                goto done;
            }
            tokens[rank] = (bn_tok_str){(const char *)bytes + bo, (size_t)bl};
            types[rank] = BN_TOKTYPE_NORMAL;
            bo += (size_t)bl;
            n++;
        }
        i = e + 1;
    }
    if (n == 0) {
        st = bn_error(BN_ERR_FORMAT, "tiktoken file has no tokens");
        goto done;
    }
    for (size_t r = 0; r < n; r++) {
        if (!tokens[r].ptr) {
            st = bn_error(BN_ERR_FORMAT, "tiktoken ranks are not 0..%zu: %zu is missing", n - 1, r);
            goto done;
        }
    }

    bn_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    d.kind = BN_TOK_BPE;
    d.tokens = tokens;
    d.tokens_raw = true;
    d.types = types;
    d.merges_from_ids = true;
    d.ignore_merges = true;
    d.pretok = pretok == BN_PRETOK_AUTO ? BN_PRETOK_LLAMA3 : pretok;
    d.bos = d.eos = d.unk = d.eot = d.eom = -1;
    if (n == LLAMA3_BASE) {
        for (int k = 0; k < LLAMA3_SPECIALS; k++) {
            char *s = special_text + (size_t)k * 40;
            bn_llama3_special_name(LLAMA3_BASE + k, s, 40);
            tokens[n + (size_t)k] = (bn_tok_str){s, strlen(s)};
            types[n + (size_t)k] = BN_TOKTYPE_CONTROL;
        }
        n += LLAMA3_SPECIALS;
        d.bos = LLAMA3_BASE;
        d.eos = LLAMA3_BASE + 1;
        d.add_bos = true;
    }
    d.n_vocab = (int32_t)n;
    st = bn_tokenizer_build(&d, out);
done:
    bn_free(tokens);
    bn_free(types);
    bn_free(bytes);
    bn_free(special_text);
    return st;
}

bn_status bn_tiktoken_load(const char *path, bn_pretok pretok, bn_tokenizer **out)
{
    if (out) *out = NULL;
    if (!path) return bn_error(BN_ERR_INVALID_ARG, "bn_tiktoken_load: path is NULL");
    bn_mapfile mf;
    bn_status st = bn_mapfile_open(&mf, path);
    if (st != BN_OK) return st;
    st = bn_tiktoken_load_memory((const char *)mf.data, mf.size, pretok, out);
    bn_mapfile_close(&mf);
    if (st != BN_OK) bn_error_prefix(st, "%s: ", path);
    return st;
}
