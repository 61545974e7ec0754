/* Streaming detokenizer.  A token may end in the middle of a UTF-8 character (byte-level BPE and
 * <0xXX> tokens split characters freely), so the bytes of an incomplete but so-far valid
 * sequence wait in d->pending until the next token completes them.  Anything that can never
 * become valid UTF-8 is shown as U+FFFD, one per maximal invalid subpart (the Unicode
 * recommendation), so the output is always valid UTF-8. */
#include <string.h>

#include "common/error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static const char REPLACEMENT[3] = {'\xEF', '\xBF', '\xBD'};

void bn_detok_init(bn_detok *d, const bn_tokenizer *t, bool special)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->special = special;
    d->strip_leading = t && t->kind == BN_TOK_SPM && t->add_space_prefix;
}

typedef struct sink {
    char *out;
    size_t cap, n;
    bool full;
} sink;

static void put(sink *k, const void *p, size_t n)
{
    if (k->full || n > k->cap - k->n) {
        k->full = true;
        return;
    }
    memcpy(k->out + k->n, p, n);
    k->n += n;
}

static bn_status range_error(size_t cap)
{
    return bn_error(BN_ERR_RANGE, "detokenizer output buffer of %zu bytes is too small", cap);
}

bn_status bn_detok_push(bn_detok *d, int32_t id, char *out, size_t cap, size_t *n)
{
    if (!d || !d->t || !n || (!out && cap)) return bn_error(BN_ERR_INVALID_ARG, "bn_detok_push: NULL argument");
    *n = 0;
    const char *bytes;
    size_t len;
    bn_status st = bn_tokenizer_token_bytes(d->t, id, d->special, &bytes, &len);
    if (st != BN_OK) return st;
    int type = d->t->types[id];
    bool text_token = type == BN_TOKTYPE_NORMAL || type == BN_TOKTYPE_USER_DEFINED || type == BN_TOKTYPE_BYTE;
    /* SentencePiece puts a space before the text; the first text piece gives it back */
    if (text_token && d->strip_leading && d->n_out == 0 && len > 0 && bytes[0] == ' ') {
        bytes++;
        len--;
    }

    sink k = {out, cap, 0, false};
    const unsigned char *p = (const unsigned char *)bytes;
    size_t i = 0;
    unsigned char pending[8];
    size_t n_pending = d->n_pending;
    memcpy(pending, d->pending, n_pending);

    /* complete (or reject) the held-back sequence first */
    while (n_pending && i < len) {
        pending[n_pending++] = p[i++];
        size_t need, k_ok = bn_utf8_prefix(pending, n_pending, &need);
        if (k_ok == need) {
            put(&k, pending, need);
            n_pending = 0;
        } else if (k_ok < n_pending) {
            /* the new byte broke the sequence: the old bytes are one invalid subpart; the new
             * byte is looked at again below as the start of whatever follows */
            put(&k, REPLACEMENT, 3);
            n_pending = 0;
            i--;
        }
    }
    while (i < len) {
        size_t run = i;
        while (run < len && p[run] < 0x80) run++;
        if (run > i) {
            put(&k, p + i, run - i);
            i = run;
            continue;
        }
        size_t need, k_ok = bn_utf8_prefix(p + i, len - i, &need);
        if (need && k_ok == need) {
            put(&k, p + i, need);
            i += need;
        } else if (need && k_ok == len - i) {
            memcpy(pending, p + i, k_ok); /* a valid start cut short by the end of the token */
            n_pending = k_ok;
            i = len;
        } else {
            put(&k, REPLACEMENT, 3);
            i += k_ok ? k_ok : 1;
        }
    }
    if (k.full) return range_error(cap);
    memcpy(d->pending, pending, n_pending);
    d->n_pending = n_pending;
    if (text_token) d->n_out++;
    *n = k.n;
    return BN_OK;
}

bn_status bn_detok_flush(bn_detok *d, char *out, size_t cap, size_t *n)
{
    if (!d || !n || (!out && cap)) return bn_error(BN_ERR_INVALID_ARG, "bn_detok_flush: NULL argument");
    *n = 0;
    if (d->n_pending == 0) return BN_OK;
    if (cap < 3) return range_error(cap);
    memcpy(out, REPLACEMENT, 3);
    *n = 3;
    d->n_pending = 0;
    return BN_OK;
}
