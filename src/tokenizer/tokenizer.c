/* Tokenizer core: the vocabulary tables and the two encoders.
 *
 * Byte-level BPE (GPT-2, Llama-3): the text is split by a pre-tokenizer (pretok.c); each piece
 * starts as one symbol per byte and the adjacent pair with the best (lowest) merge rank is merged
 * until none is left.  Symbols are token ids and the merge table is keyed by the id pair, so a
 * merge costs one hash probe and no string work.  With ignore_merges (Llama-3) a piece that is
 * itself a token is taken whole first.
 *
 * SentencePiece-style BPE (`llama` vocabularies): spaces become U+2581, a space is prefixed, and
 * the adjacent pair whose concatenation is a token with the highest score is merged repeatedly;
 * symbols that are not tokens fall back to <0xXX> byte tokens.
 *
 * Both use a binary heap of candidate pairs with lazy deletion (a popped pair whose symbols have
 * changed since it was pushed is skipped), so a piece of n bytes costs O(n log n). */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

/* ---- hashing ---- */

uint64_t bn_tok_hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, p, n);
        h = (h ^ v) * 0x94D049BB133111EBull;
        h ^= h >> 32;
    }
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    return h;
}

static const char *map_key(const bn_tokenizer *t, int32_t id, size_t *len)
{
    return t->kind == BN_TOK_BPE ? bn_tok_piece(t, id, len) : bn_tok_text(t, id, len);
}

static const char *map_arena(const bn_tokenizer *t) { return t->kind == BN_TOK_BPE ? t->piece : t->text; }

int32_t bn_tok_map_find(const bn_tokenizer *t, const char *key, size_t len)
{
    uint64_t h = bn_tok_hash(key, len);
    uint32_t h32 = (uint32_t)(h >> 32);
    const char *arena = map_arena(t);
    for (uint32_t i = (uint32_t)h & t->map_mask;; i = (i + 1) & t->map_mask) {
        const bn_map_slot *s = &t->map[i];
        if (s->id < 0) return -1;
        if (s->hash == h32 && s->len == len && memcmp(arena + s->off, key, len) == 0) return s->id;
    }
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* A lookup split in stages so a batch of them can overlap their cache misses. */
typedef struct probe {
    const char *key;
    size_t len;
    uint64_t h;
} probe;

#define MERGE_BATCH 16

static void probe_start(const bn_tokenizer *t, probe *p, const char *key, size_t len)
{
    p->key = key;
    p->len = len;
    p->h = bn_tok_hash(key, len);
    PREFETCH(&t->map[(uint32_t)p->h & t->map_mask]);
}

/* Prefetches the key bytes of the first slot whose hash matches. */
static void probe_candidate(const bn_tokenizer *t, const probe *p)
{
    uint32_t h32 = (uint32_t)(p->h >> 32);
    for (uint32_t i = (uint32_t)p->h & t->map_mask;; i = (i + 1) & t->map_mask) {
        const bn_map_slot *s = &t->map[i];
        if (s->id < 0) return;
        if (s->hash == h32 && s->len == p->len) {
            PREFETCH(map_arena(t) + s->off);
            return;
        }
    }
}

static int32_t probe_finish(const bn_tokenizer *t, const probe *p)
{
    uint32_t h32 = (uint32_t)(p->h >> 32);
    const char *arena = map_arena(t);
    for (uint32_t i = (uint32_t)p->h & t->map_mask;; i = (i + 1) & t->map_mask) {
        const bn_map_slot *s = &t->map[i];
        if (s->id < 0) return -1;
        if (s->hash == h32 && s->len == p->len && memcmp(arena + s->off, p->key, p->len) == 0) return s->id;
    }
}

/* Inserts id (whose key hashes to h) unless the key is present (the lowest id wins). */
static void map_insert(bn_tokenizer *t, int32_t id, uint64_t h)
{
    size_t len;
    const char *key = map_key(t, id, &len);
    const char *arena = map_arena(t);
    uint32_t h32 = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & t->map_mask;; i = (i + 1) & t->map_mask) {
        bn_map_slot *s = &t->map[i];
        if (s->id < 0) {
            *s = (bn_map_slot){h32, id, (uint32_t)(key - arena), (uint32_t)len};
            return;
        }
        if (s->hash == h32 && s->len == len && memcmp(arena + s->off, key, len) == 0) return;
    }
}

static uint32_t merge_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static const bn_merge_slot *merge_find(const bn_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = merge_slot(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        const bn_merge_slot *s = &t->merges[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

static bn_status merge_grow(bn_tokenizer *t, uint32_t new_cap)
{
    bn_merge_slot *m = bn_malloc((size_t)new_cap * sizeof *m);
    if (!m) return BN_ERR_NOMEM;
    for (uint32_t i = 0; i < new_cap; i++) m[i].key = UINT64_MAX;
    uint32_t mask = new_cap - 1;
    if (t->merges) {
        for (uint32_t i = 0; i <= t->merge_mask; i++) {
            if (t->merges[i].key == UINT64_MAX) continue;
            uint32_t j = merge_slot(t->merges[i].key, mask);
            while (m[j].key != UINT64_MAX) j = (j + 1) & mask;
            m[j] = t->merges[i];
        }
    }
    bn_free(t->merges);
    t->merges = m;
    t->merge_mask = mask;
    return BN_OK;
}

/* Adds merge (a, b) -> result unless the pair already has a (better) rank. */
static bn_status merge_add(bn_tokenizer *t, uint32_t *count, int32_t a, int32_t b, int32_t rank, int32_t result)
{
    if ((uint64_t)(*count + 1) * 4 > ((uint64_t)t->merge_mask + 1) * 3) {
        if (t->merge_mask >= 0x7FFFFFFFu) return bn_error(BN_ERR_NOMEM, "too many merges");
        bn_status st = merge_grow(t, (t->merge_mask + 1) * 2);
        if (st != BN_OK) return st;
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = merge_slot(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        bn_merge_slot *s = &t->merges[i];
        if (s->key == key) return BN_OK;
        if (s->key == UINT64_MAX) {
            s->key = key;
            s->rank = rank;
            s->result = result;
            (*count)++;
            return BN_OK;
        }
    }
}

/* ---- GPT-2's byte <-> unicode mapping ----
 * Printable bytes stand for themselves; the other 68 (controls, space, 0x7F-0xA0, soft hyphen)
 * are moved to U+0100.. in byte order, so every byte is a visible character. */

static bool byte_printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

static uint32_t byte_to_cp(unsigned b)
{
    if (byte_printable(b)) return b;
    if (b <= 0x20) return 0x100 + b;
    if (b <= 0xA0) return 0x100 + 0x21 + (b - 0x7F);
    return 0x100 + 0x43; /* 0xAD */
}

#define CP_TABLE 0x144
static void cp_to_byte_table(int16_t *tab)
{
    for (int i = 0; i < CP_TABLE; i++) tab[i] = -1;
    for (unsigned b = 0; b < 256; b++) tab[byte_to_cp(b)] = (int16_t)b;
}

/* Decodes a byte-level token text to its bytes; characters outside the mapping are kept as
 * their UTF-8 (a malformed vocabulary still decodes to something readable). */
static size_t bytelevel_decode(const int16_t *tab, const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = bn_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp < CP_TABLE && tab[cp] >= 0) {
            out[o++] = (char)tab[cp];
        } else {
            memcpy(out + o, s + i, k);
            o += k;
        }
        i += k;
    }
    return o;
}

static size_t bytelevel_encode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += bn_utf8_encode(byte_to_cp((unsigned char)s[i]), out + o);
    return o;
}

/* ---- building ---- */

static bool text_is(const bn_tok_str *tokens, int32_t n, int32_t id, const char *want)
{
    if (id >= n) return false;
    size_t len = strlen(want);
    return tokens[id].len == len && memcmp(tokens[id].ptr, want, len) == 0;
}

bool bn_tok_texts_are_llama3(const bn_tok_str *tokens, int32_t n)
{
    return n >= 128256 && text_is(tokens, n, 128000, "<|begin_of_text|>") &&
           text_is(tokens, n, 128001, "<|end_of_text|>") && text_is(tokens, n, 128009, "<|eot_id|>");
}

static bool is_special_type(int type)
{
    return type == BN_TOKTYPE_CONTROL || type == BN_TOKTYPE_USER_DEFINED || type == BN_TOKTYPE_UNKNOWN;
}

static bool in_encoder(int type) { return type == BN_TOKTYPE_NORMAL || type == BN_TOKTYPE_USER_DEFINED; }

/* SPM byte token "<0xXX>" -> XX, or -1. */
static int spm_byte_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

typedef struct special_key {
    unsigned first;
    size_t len;
    int32_t id;
} special_key;

/* by first byte, then longest first (so the first match is the longest), then id */
static int cmp_special(const void *pa, const void *pb)
{
    const special_key *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static int32_t find_special_text(const bn_tokenizer *t, const char *s)
{
    size_t n = strlen(s);
    if (n == 0) return -1;
    unsigned char c = (unsigned char)s[0];
    for (uint32_t k = t->special_first[c]; k < t->special_first[c + 1]; k++) {
        size_t len;
        const char *txt = bn_tok_text(t, t->special[k], &len);
        if (len == n && memcmp(txt, s, n) == 0) return t->special[k];
    }
    return -1;
}

static bn_status check_id(const char *what, int32_t id, int32_t n)
{
    if (id < -1 || id >= n) return bn_error(BN_ERR_FORMAT, "%s token id %d is outside the vocabulary (%d tokens)",
                                            what, (int)id, (int)n);
    return BN_OK;
}

static void add_eog(bn_tokenizer *t, int32_t id)
{
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0])) t->eog[t->n_eog++] = id;
}

static bn_status build_tables(bn_tokenizer *t, const bn_tokenizer_desc *d)
{
    int32_t n = d->n_vocab;
    size_t text_total = 0, piece_total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!d->tokens[i].ptr && d->tokens[i].len)
            return bn_error(BN_ERR_INVALID_ARG, "token %d has no text", (int)i);
        /* byte-level text is at most 2 bytes per byte; pieces are never longer than the text */
        size_t tl = d->tokens[i].len, stored = tl;
        if (d->tokens_raw && d->kind == BN_TOK_BPE && bn_mul_overflow(tl, 2, &stored))
            return bn_error(BN_ERR_FORMAT, "vocabulary too large");
        if (bn_add_overflow(text_total, stored, &text_total) || bn_add_overflow(piece_total, tl, &piece_total))
            return bn_error(BN_ERR_FORMAT, "vocabulary too large");
    }
    if (text_total > UINT32_MAX || piece_total > UINT32_MAX)
        return bn_error(BN_ERR_FORMAT, "vocabulary texts exceed 4 GiB");

    t->text = bn_malloc(text_total + 1);
    t->piece = bn_malloc(piece_total + 1);
    t->text_off = bn_malloc(((size_t)n + 1) * sizeof *t->text_off);
    t->piece_off = bn_malloc(((size_t)n + 1) * sizeof *t->piece_off);
    t->scores = bn_calloc((size_t)n, sizeof *t->scores);
    t->types = bn_malloc((size_t)n);
    if (!t->text || !t->piece || !t->text_off || !t->piece_off || !t->scores || !t->types) return BN_ERR_NOMEM;

    int16_t cp_byte[CP_TABLE];
    cp_to_byte_table(cp_byte);
    size_t to = 0, po = 0;
    for (int32_t i = 0; i < n; i++) {
        int type = d->types ? d->types[i] : BN_TOKTYPE_NORMAL;
        if (type < BN_TOKTYPE_NORMAL || type > BN_TOKTYPE_BYTE) type = BN_TOKTYPE_NORMAL;
        t->types[i] = (uint8_t)type;
        if (d->scores) t->scores[i] = d->scores[i];
        const char *s = d->tokens[i].ptr;
        size_t len = d->tokens[i].len;
        t->text_off[i] = (uint32_t)to;
        t->piece_off[i] = (uint32_t)po;
        if (type == BN_TOKTYPE_NORMAL && t->kind == BN_TOK_BPE && d->tokens_raw) {
            to += bytelevel_encode(s, len, t->text + to);
            if (len) memcpy(t->piece + po, s, len);
            po += len;
            len = to - t->text_off[i];
        } else if (len) {
            memcpy(t->text + to, s, len);
            to += len;
        }
        if (type == BN_TOKTYPE_NORMAL && t->kind == BN_TOK_BPE) {
            if (!d->tokens_raw) po += bytelevel_decode(cp_byte, s, len, t->piece + po);
        } else if (type == BN_TOKTYPE_NORMAL || type == BN_TOKTYPE_USER_DEFINED) {
            if (t->kind == BN_TOK_SPM) {
                /* U+2581 (E2 96 81) stands for a space */
                for (size_t k = 0; k < len; k++) {
                    if (k + 2 < len && memcmp(s + k, "\xE2\x96\x81", 3) == 0) {
                        t->piece[po++] = ' ';
                        k += 2;
                    } else {
                        t->piece[po++] = s[k];
                    }
                }
            } else {
                if (len) memcpy(t->piece + po, s, len);
                po += len;
            }
        } else if (type == BN_TOKTYPE_BYTE) {
            int v = spm_byte_value(s, len);
            if (v >= 0) t->piece[po++] = (char)v;
        }
        /* control, unknown and unused tokens have no piece; control text shows only on request */
        size_t pl = po - t->piece_off[i];
        if (pl > t->max_piece_len) t->max_piece_len = pl;
        if (len > t->max_piece_len && is_special_type(type)) t->max_piece_len = len;
    }
    t->text_off[n] = (uint32_t)to;
    t->piece_off[n] = (uint32_t)po;
    return BN_OK;
}

/* Bytes the detokenizer writes for s[0..n) on its own: invalid parts become 3-byte U+FFFD, a
 * trailing incomplete sequence is held back. */
static size_t detok_expansion(const char *s, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t need, k = bn_utf8_prefix((const unsigned char *)s + i, n - i, &need);
        if (need && k == need) {
            out += k;
            i += k;
        } else if (need && k == n - i) {
            break;
        } else {
            out += 3;
            i += k ? k : 1;
        }
    }
    return out;
}

static void measure_detok(bn_tokenizer *t)
{
    size_t worst = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len;
        const char *p = bn_tok_piece(t, i, &len);
        size_t e = detok_expansion(p, len);
        p = bn_tok_text(t, i, &len);
        size_t e2 = detok_expansion(p, len);
        if (e2 > e && (t->types[i] == BN_TOKTYPE_CONTROL || t->types[i] == BN_TOKTYPE_UNKNOWN)) e = e2;
        if (e > worst) worst = e;
    }
    /* + a held-back sequence of the previous token: completed (<= 4 bytes, the completing bytes
     * already counted above as invalid) or replaced (3 bytes) */
    t->max_detok_len = worst + 4;
}

static bn_status build_maps(bn_tokenizer *t)
{
    int32_t n = t->n_vocab;
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2u) cap *= 2;
    t->map = bn_malloc((size_t)cap * sizeof *t->map);
    if (!t->map) return BN_ERR_NOMEM;
    for (uint32_t i = 0; i < cap; i++) t->map[i].id = -1;
    t->map_mask = cap - 1;
    /* hashes first, then inserts that prefetch the slot a few tokens ahead */
    uint64_t *hashes = bn_malloc((size_t)n * sizeof *hashes);
    if (!hashes) return BN_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        size_t klen;
        const char *k = map_key(t, i, &klen);
        hashes[i] = bn_tok_hash(k, klen);
    }
    uint32_t n_special = 0;
    for (int32_t i = 0; i < n; i++) {
        if (i + 16 < n) PREFETCH(&t->map[(uint32_t)hashes[i + 16] & t->map_mask]);
        size_t klen;
        map_key(t, i, &klen);
        if (in_encoder(t->types[i]) && klen) map_insert(t, i, hashes[i]);
        size_t tl;
        bn_tok_text(t, i, &tl);
        if (is_special_type(t->types[i]) && tl) n_special++;
    }
    bn_free(hashes);

    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    if (t->kind == BN_TOK_BPE) {
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_tok[b] = bn_tok_map_find(t, &c, 1);
            if (t->byte_tok[b] < 0)
                return bn_error(BN_ERR_FORMAT, "byte-level vocabulary has no token for byte 0x%02X", b);
        }
    } else {
        for (int32_t i = n - 1; i >= 0; i--) { /* backwards so the lowest id wins */
            size_t pl;
            const char *p = bn_tok_piece(t, i, &pl);
            if (t->types[i] == BN_TOKTYPE_BYTE && pl == 1) t->byte_tok[(unsigned char)p[0]] = i;
        }
        for (int b = 0; b < 128; b++) { /* vocabularies without byte tokens: a 1-character token */
            char c = (char)b;
            if (t->byte_tok[b] < 0 && b != ' ') t->byte_tok[b] = bn_tok_map_find(t, &c, 1);
        }
    }

    t->special = bn_malloc((size_t)(n_special ? n_special : 1) * sizeof *t->special);
    special_key *keys = bn_malloc((size_t)(n_special ? n_special : 1) * sizeof *keys);
    if (!t->special || !keys) {
        bn_free(keys);
        return BN_ERR_NOMEM;
    }
    t->n_special = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t tl;
        const char *txt = bn_tok_text(t, i, &tl);
        if (is_special_type(t->types[i]) && tl) keys[t->n_special++] = (special_key){(unsigned char)txt[0], tl, i};
    }
    qsort(keys, t->n_special, sizeof *keys, cmp_special);
    uint32_t k = 0;
    for (unsigned c = 0; c <= 256; c++) {
        while (k < t->n_special && keys[k].first < c) k++;
        t->special_first[c] = k;
    }
    for (uint32_t i = 0; i < t->n_special; i++) t->special[i] = keys[i].id;
    bn_free(keys);
    return BN_OK;
}

static bn_status build_merges(bn_tokenizer *t, const bn_tokenizer_desc *d)
{
    if (d->merges_from_ids) {
        t->merge_by_concat = true;
        return BN_OK;
    }
    uint32_t count = 0;
    uint32_t cap = 1024;
    while (cap < d->n_merges + d->n_merges / 2 && cap < 0x40000000u) cap *= 2;
    bn_status st = merge_grow(t, cap);
    if (st != BN_OK) return st;

    int16_t cp_byte[CP_TABLE];
    cp_to_byte_table(cp_byte);
    /* Merges are resolved MERGE_BATCH at a time in stages, prefetching what the next stage
     * touches: the three lookups per merge are random accesses into tables of megabytes, and
     * overlapping them is what keeps loading 280k merges well under 100 ms. */
    char *buf = NULL;
    size_t buf_cap = 0;
    for (size_t i0 = 0; i0 < d->n_merges; i0 += MERGE_BATCH) {
        size_t nb = d->n_merges - i0 < MERGE_BATCH ? d->n_merges - i0 : MERGE_BATCH;
        size_t need = 0;
        for (size_t j = 0; j < nb; j++) need += d->merges[i0 + j].len;
        if (need > buf_cap) {
            char *nbuf = bn_realloc(buf, need * 2);
            if (!nbuf) {
                bn_free(buf);
                return BN_ERR_NOMEM;
            }
            buf = nbuf;
            buf_cap = need * 2;
        }
        probe pr[MERGE_BATCH][3];
        size_t o = 0;
        for (size_t j = 0; j < nb; j++) {
            size_t i = i0 + j;
            const char *m = d->merges[i].ptr;
            size_t len = d->merges[i].len;
            const char *sp = (m && len > 1) ? memchr(m + 1, ' ', len - 1) : NULL;
            if (!sp || sp + 1 == m + len) {
                bn_free(buf);
                return bn_error(BN_ERR_FORMAT, "merge %zu is not \"left right\"", i);
            }
            size_t la = bytelevel_decode(cp_byte, m, (size_t)(sp - m), buf + o);
            size_t lb = bytelevel_decode(cp_byte, sp + 1, (size_t)(m + len - sp - 1), buf + o + la);
            probe_start(t, &pr[j][0], buf + o, la);
            probe_start(t, &pr[j][1], buf + o + la, lb);
            probe_start(t, &pr[j][2], buf + o, la + lb);
            o += la + lb;
        }
        for (size_t j = 0; j < nb; j++)
            for (int k = 0; k < 3; k++) probe_candidate(t, &pr[j][k]);
        int32_t ids[MERGE_BATCH][3];
        for (size_t j = 0; j < nb; j++) {
            for (int k = 0; k < 3; k++) ids[j][k] = probe_finish(t, &pr[j][k]);
            if (ids[j][0] >= 0 && ids[j][1] >= 0) {
                uint64_t key = ((uint64_t)(uint32_t)ids[j][0] << 32) | (uint32_t)ids[j][1];
                PREFETCH(&t->merges[merge_slot(key, t->merge_mask)]);
            }
        }
        for (size_t j = 0; j < nb; j++) {
            int32_t a = ids[j][0], b = ids[j][1], r = ids[j][2];
            /* a merge whose parts or result are not tokens can never apply to token symbols */
            if (a < 0 || b < 0 || r < 0 || i0 + j > INT32_MAX) continue;
            st = merge_add(t, &count, a, b, (int32_t)(i0 + j), r);
            if (st != BN_OK) {
                bn_free(buf);
                return st;
            }
        }
    }
    bn_free(buf);
    return BN_OK;
}

bn_status bn_tokenizer_build(const bn_tokenizer_desc *d, bn_tokenizer **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_build: out is NULL");
    *out = NULL;
    if (!d || !d->tokens) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_build: no vocabulary");
    if (d->n_vocab <= 0 || d->n_vocab > (1 << 28))
        return bn_error(BN_ERR_FORMAT, "vocabulary size %d is out of range", (int)d->n_vocab);
    if (d->kind != BN_TOK_BPE && d->kind != BN_TOK_SPM)
        return bn_error(BN_ERR_INVALID_ARG, "unknown tokenizer kind %d", (int)d->kind);
    if (d->kind == BN_TOK_BPE && d->pretok != BN_PRETOK_LLAMA3 && d->pretok != BN_PRETOK_GPT2 &&
        d->pretok != BN_PRETOK_DEFAULT)
        return bn_error(BN_ERR_INVALID_ARG, "BPE needs a resolved pre-tokenizer, got %d", (int)d->pretok);
    if (d->n_merges && !d->merges) return bn_error(BN_ERR_INVALID_ARG, "merge count without merges");
    bn_status st;
    if ((st = check_id("BOS", d->bos, d->n_vocab)) != BN_OK || (st = check_id("EOS", d->eos, d->n_vocab)) != BN_OK ||
        (st = check_id("EOT", d->eot, d->n_vocab)) != BN_OK || (st = check_id("EOM", d->eom, d->n_vocab)) != BN_OK ||
        (st = check_id("unknown", d->unk, d->n_vocab)) != BN_OK)
        return st;

    bn_tokenizer *t = bn_calloc(1, sizeof *t);
    if (!t) return BN_ERR_NOMEM;
    t->kind = d->kind;
    t->pretok = d->kind == BN_TOK_BPE ? d->pretok : BN_PRETOK_DEFAULT;
    t->ignore_merges = d->kind == BN_TOK_BPE && d->ignore_merges;
    t->add_bos = d->add_bos;
    t->add_space_prefix = d->kind == BN_TOK_SPM && d->add_space_prefix;
    t->n_vocab = d->n_vocab;
    t->bos = d->bos;
    t->eos = d->eos;
    t->unk = d->unk;
    t->llama3_vocab = d->kind == BN_TOK_BPE && bn_tok_texts_are_llama3(d->tokens, d->n_vocab);

    if ((st = build_tables(t, d)) != BN_OK) {
        bn_tokenizer_free(t);
        return st;
    }
    measure_detok(t);
    if ((st = build_maps(t)) != BN_OK ||
        (t->kind == BN_TOK_BPE && (st = build_merges(t, d)) != BN_OK)) {
        bn_tokenizer_free(t);
        return st;
    }

    t->eot = d->eot;
    if (t->eot < 0) {
        static const char *eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>"};
        for (size_t i = 0; i < sizeof eot_texts / sizeof eot_texts[0] && t->eot < 0; i++)
            t->eot = find_special_text(t, eot_texts[i]);
    }
    t->eom = d->eom >= 0 ? d->eom : find_special_text(t, "<|eom_id|>");
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);
    static const char *eog_texts[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<EOT>"};
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) add_eog(t, find_special_text(t, eog_texts[i]));
    *out = t;
    return BN_OK;
}

void bn_tokenizer_free(bn_tokenizer *t)
{
    if (!t) return;
    bn_free(t->text);
    bn_free(t->text_off);
    bn_free(t->piece);
    bn_free(t->piece_off);
    bn_free(t->scores);
    bn_free(t->types);
    bn_free(t->map);
    bn_free(t->merges);
    bn_free(t->special);
    bn_free(t);
}

/* ---- queries ---- */

int32_t bn_tokenizer_n_vocab(const bn_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t bn_tokenizer_bos(const bn_tokenizer *t) { return t ? t->bos : -1; }
int32_t bn_tokenizer_eos(const bn_tokenizer *t) { return t ? t->eos : -1; }
int32_t bn_tokenizer_eot(const bn_tokenizer *t) { return t ? t->eot : -1; }
int32_t bn_tokenizer_unk(const bn_tokenizer *t) { return t ? t->unk : -1; }
bool bn_tokenizer_add_bos(const bn_tokenizer *t) { return t && t->add_bos && t->bos >= 0; }
bool bn_tokenizer_is_llama3(const bn_tokenizer *t) { return t && t->llama3_vocab; }
bn_tok_kind bn_tokenizer_kind(const bn_tokenizer *t) { return t->kind; }
bn_pretok bn_tokenizer_pretok(const bn_tokenizer *t) { return t->pretok; }
size_t bn_tokenizer_max_piece_len(const bn_tokenizer *t) { return t ? t->max_piece_len : 0; }
size_t bn_tokenizer_max_detok_len(const bn_tokenizer *t) { return t ? t->max_detok_len : 0; }

bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id)
{
    if (!t || id < 0) return false;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

int bn_tokenizer_token_type(const bn_tokenizer *t, int32_t id)
{
    return (t && id >= 0 && id < t->n_vocab) ? t->types[id] : 0;
}

const char *bn_tokenizer_token_text(const bn_tokenizer *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return bn_tok_text(t, id, len);
}

int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *text, size_t len)
{
    if (!t || (!text && len)) return -1;
    if (len == 0) return -1;
    unsigned char c = (unsigned char)text[0];
    for (uint32_t k = t->special_first[c]; k < t->special_first[c + 1]; k++) {
        size_t tl;
        const char *s = bn_tok_text(t, t->special[k], &tl);
        if (tl == len && memcmp(s, text, len) == 0) return t->special[k];
    }
    return bn_tok_map_find(t, text, len);
}

bn_status bn_tokenizer_token_bytes(const bn_tokenizer *t, int32_t id, bool special, const char **bytes, size_t *len)
{
    if (!t || !bytes || !len) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_token_bytes: NULL argument");
    if (id < 0 || id >= t->n_vocab)
        return bn_error(BN_ERR_RANGE, "token id %d is outside the vocabulary (%d tokens)", (int)id, (int)t->n_vocab);
    int type = t->types[id];
    if (type == BN_TOKTYPE_CONTROL || type == BN_TOKTYPE_UNKNOWN) {
        if (special) {
            *bytes = bn_tok_text(t, id, len);
        } else {
            *bytes = "";
            *len = 0;
        }
        return BN_OK;
    }
    *bytes = bn_tok_piece(t, id, len);
    return BN_OK;
}

/* ---- encoding ---- */

typedef struct sym {
    uint32_t start, len; /* bytes of the symbol within the piece being encoded */
    int32_t id;          /* BPE: token id; -1 once merged away */
    int32_t prev, next;
} sym;

typedef struct pair {
    uint64_t key;  /* (priority << 32) | left symbol index: smallest first */
    int32_t right;
    int32_t a, b;  /* BPE: the ids when pushed; SPM: a = byte length of the pair */
} pair;

typedef struct enc {
    const bn_tokenizer *t;
    int32_t *ids;
    size_t n_ids, cap_ids;
    sym *syms;
    size_t cap_syms;
    pair *heap;
    size_t n_heap, cap_heap;
    bn_cps cps;
    size_t cap_cps;
    char *esc; /* SPM: escaped fragment */
    size_t cap_esc;
    const char *frag; /* bytes of the fragment being split */
} enc;

static bn_status grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return BN_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return bn_error(BN_ERR_NOMEM, "text too long");
        nc *= 2;
    }
    void *np = bn_realloc(*p, nc * elem);
    if (!np) return BN_ERR_NOMEM;
    *p = np;
    *cap = nc;
    return BN_OK;
}

static bn_status push_id(enc *e, int32_t id)
{
    if (e->n_ids == e->cap_ids) {
        bn_status st = grow((void **)&e->ids, &e->cap_ids, e->n_ids + 1, sizeof *e->ids);
        if (st != BN_OK) return st;
    }
    e->ids[e->n_ids++] = id;
    return BN_OK;
}

static bool pair_less(const pair *x, const pair *y) { return x->key < y->key; }

static bn_status heap_push(enc *e, pair p)
{
    if (e->n_heap == e->cap_heap) {
        bn_status st = grow((void **)&e->heap, &e->cap_heap, e->n_heap + 1, sizeof *e->heap);
        if (st != BN_OK) return st;
    }
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_less(&p, &e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = p;
    return BN_OK;
}

static pair heap_pop(enc *e)
{
    pair top = e->heap[0];
    pair last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!pair_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* The merge of ids a and b: its rank and result, false if they do not merge.  p is the piece
 * being encoded and sl/sr the two symbols (for merge_by_concat). */
static bool bpe_merge(const bn_tokenizer *t, const char *p, const sym *sl, const sym *sr, int32_t *rank,
                      int32_t *result)
{
    if (t->merge_by_concat) {
        int32_t id = bn_tok_map_find(t, p + sl->start, sl->len + sr->len);
        if (id < 0 || t->types[id] != BN_TOKTYPE_NORMAL) return false;
        *rank = *result = id;
        return true;
    }
    const bn_merge_slot *m = merge_find(t, sl->id, sr->id);
    if (!m) return false;
    *rank = m->rank;
    *result = m->result;
    return true;
}

static bn_status bpe_try_pair(enc *e, const char *p, int32_t l)
{
    if (l < 0) return BN_OK;
    int32_t r = e->syms[l].next;
    if (r < 0) return BN_OK;
    int32_t rank, result;
    if (!bpe_merge(e->t, p, &e->syms[l], &e->syms[r], &rank, &result)) return BN_OK;
    pair q = {((uint64_t)(uint32_t)rank << 32) | (uint32_t)l, r, e->syms[l].id, e->syms[r].id};
    return heap_push(e, q);
}

/* Encodes one pre-tokenized piece of raw bytes. */
static bn_status bpe_piece(enc *e, const char *p, size_t n)
{
    const bn_tokenizer *t = e->t;
    if (n == 0) return BN_OK;
    if (t->ignore_merges || n == 1) {
        int32_t id = n == 1 ? t->byte_tok[(unsigned char)p[0]] : bn_tok_map_find(t, p, n);
        if (id >= 0) return push_id(e, id);
    }
    if (n > INT32_MAX) return bn_error(BN_ERR_RANGE, "piece too long");
    bn_status st = grow((void **)&e->syms, &e->cap_syms, n, sizeof *e->syms);
    if (st != BN_OK) return st;
    for (size_t i = 0; i < n; i++) {
        e->syms[i] = (sym){(uint32_t)i, 1, t->byte_tok[(unsigned char)p[i]], (int32_t)i - 1,
                           i + 1 < n ? (int32_t)i + 1 : -1};
    }
    e->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if ((st = bpe_try_pair(e, p, (int32_t)i)) != BN_OK) return st;
    while (e->n_heap) {
        pair q = heap_pop(e);
        int32_t l = (int32_t)(uint32_t)q.key, r = q.right;
        sym *L = &e->syms[l], *R = &e->syms[r];
        if (L->id != q.a || L->next != r || R->id != q.b) continue; /* stale */
        int32_t rank, result;
        if (!bpe_merge(t, p, L, R, &rank, &result)) return bn_error(BN_ERR_INTERNAL, "merge vanished");
        L->id = result;
        L->len += R->len;
        L->next = R->next;
        if (R->next >= 0) e->syms[R->next].prev = l;
        R->id = -1;
        if ((st = bpe_try_pair(e, p, L->prev)) != BN_OK || (st = bpe_try_pair(e, p, l)) != BN_OK) return st;
    }
    for (int32_t i = 0; i >= 0; i = e->syms[i].next)
        if ((st = push_id(e, e->syms[i].id)) != BN_OK) return st;
    return BN_OK;
}

static bn_status bpe_on_piece(void *user, size_t start, size_t end)
{
    enc *e = user;
    uint32_t a = e->cps.off[start], b = e->cps.off[end];
    return bpe_piece(e, e->frag + a, b - a);
}

static bn_status decode_cps(enc *e, const char *s, size_t n)
{
    if (n >= UINT32_MAX) return bn_error(BN_ERR_RANGE, "text longer than 4 GiB");
    if (n + 1 > e->cap_cps) {
        size_t cap = n + 1;
        bn_free(e->cps.cp);
        bn_free(e->cps.fl);
        bn_free(e->cps.off);
        e->cps.cp = bn_malloc(cap * sizeof *e->cps.cp);
        e->cps.fl = bn_malloc(cap);
        e->cps.off = bn_malloc(cap * sizeof *e->cps.off);
        e->cap_cps = (e->cps.cp && e->cps.fl && e->cps.off) ? cap : 0;
        if (!e->cap_cps) return BN_ERR_NOMEM;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len;
        if (u[i] < 0x80) {
            cp = u[i];
            len = 1;
        } else {
            len = bn_utf8_decode(u + i, n - i, &cp);
        }
        e->cps.cp[k] = cp;
        e->cps.fl[k] = (uint8_t)((cp & BN_UTF8_INVALID) ? BN_UCD_SYMBOL : bn_ucd_flags(cp));
        e->cps.off[k] = (uint32_t)i;
        k++;
        i += len;
    }
    e->cps.off[k] = (uint32_t)n;
    e->cps.n = k;
    return BN_OK;
}

static bn_status spm_try_pair(enc *e, const char *s, int32_t l)
{
    if (l < 0) return BN_OK;
    int32_t r = e->syms[l].next;
    if (r < 0) return BN_OK;
    uint32_t len = e->syms[l].len + e->syms[r].len;
    int32_t id = bn_tok_map_find(e->t, s + e->syms[l].start, len);
    if (id < 0) return BN_OK;
    /* order-preserving map of the float score to an integer, negated: higher scores pop first */
    uint32_t u;
    memcpy(&u, &e->t->scores[id], 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    pair p = {((uint64_t)(~u) << 32) | (uint32_t)l, r, (int32_t)len, id};
    return heap_push(e, p);
}

static bn_status spm_fragment(enc *e, const char *s, size_t n)
{
    const bn_tokenizer *t = e->t;
    bn_status st;
    /* escape: optional leading space, every space as U+2581 */
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    size_t len = n + 2 * spaces + (t->add_space_prefix ? 3 : 0);
    if (len >= INT32_MAX) return bn_error(BN_ERR_RANGE, "text too long");
    if ((st = grow((void **)&e->esc, &e->cap_esc, len, 1)) != BN_OK) return st;
    size_t o = 0;
    if (t->add_space_prefix) {
        memcpy(e->esc, "\xE2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e->esc + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            e->esc[o++] = s[i];
        }
    }
    const char *x = e->esc;
    if ((st = grow((void **)&e->syms, &e->cap_syms, len, sizeof *e->syms)) != BN_OK) return st;
    int32_t ns = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = bn_utf8_decode((const unsigned char *)x + i, len - i, &cp);
        e->syms[ns] = (sym){(uint32_t)i, (uint32_t)k, 0, ns - 1, -1};
        if (ns > 0) e->syms[ns - 1].next = ns;
        ns++;
        i += k;
    }
    e->n_heap = 0;
    for (int32_t i = 0; i + 1 < ns; i++)
        if ((st = spm_try_pair(e, x, i)) != BN_OK) return st;
    while (e->n_heap) {
        pair q = heap_pop(e);
        int32_t l = (int32_t)(uint32_t)q.key, r = q.right;
        sym *L = &e->syms[l], *R = &e->syms[r];
        if (L->len == 0 || R->len == 0 || L->next != r || L->len + R->len != (uint32_t)q.a) continue;
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) e->syms[R->next].prev = l;
        if ((st = spm_try_pair(e, x, L->prev)) != BN_OK || (st = spm_try_pair(e, x, l)) != BN_OK) return st;
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = e->syms[i].next) {
        const sym *y = &e->syms[i];
        int32_t id = bn_tok_map_find(t, x + y->start, y->len);
        if (id >= 0) {
            if ((st = push_id(e, id)) != BN_OK) return st;
            continue;
        }
        for (uint32_t k = 0; k < y->len; k++) {
            unsigned char b = (unsigned char)x[y->start + k];
            int32_t bt = t->byte_tok[b] >= 0 ? t->byte_tok[b] : t->unk;
            if (bt < 0)
                return bn_error(BN_ERR_FORMAT, "cannot encode byte 0x%02X: the vocabulary has no byte token and no <unk>",
                                b);
            if ((st = push_id(e, bt)) != BN_OK) return st;
        }
    }
    return BN_OK;
}

static bn_status encode_fragment(enc *e, const char *s, size_t n)
{
    if (n == 0) return BN_OK;
    if (e->t->kind == BN_TOK_SPM) return spm_fragment(e, s, n);
    bn_status st = decode_cps(e, s, n);
    if (st != BN_OK) return st;
    e->frag = s;
    return bn_pretok_split(e->t->pretok, &e->cps, bpe_on_piece, e);
}

/* Longest special token starting at s[0..n), or -1. */
static int32_t match_special(const bn_tokenizer *t, const char *s, size_t n, size_t *len)
{
    unsigned char c = (unsigned char)s[0];
    for (uint32_t k = t->special_first[c]; k < t->special_first[c + 1]; k++) {
        size_t tl;
        const char *txt = bn_tok_text(t, t->special[k], &tl);
        if (tl <= n && memcmp(txt, s, tl) == 0) {
            *len = tl;
            return t->special[k];
        }
    }
    return -1;
}

bn_status bn_tokenizer_encode(const bn_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                              int32_t **ids, size_t *n_ids)
{
    if (!ids || !n_ids) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_encode: NULL output");
    *ids = NULL;
    *n_ids = 0;
    if (!t || (!text && len)) return bn_error(BN_ERR_INVALID_ARG, "bn_tokenizer_encode: NULL argument");
    enc e = {.t = t};
    bn_status st = BN_OK;
    if (add_bos && t->bos >= 0) st = push_id(&e, t->bos);
    size_t frag = 0;
    if (parse_special && t->n_special) {
        for (size_t i = 0; i < len && st == BN_OK;) {
            size_t sl;
            int32_t id = match_special(t, text + i, len - i, &sl);
            if (id < 0) {
                i++;
                continue;
            }
            st = encode_fragment(&e, text + frag, i - frag);
            if (st == BN_OK) st = push_id(&e, id);
            i += sl;
            frag = i;
        }
    }
    if (st == BN_OK) st = encode_fragment(&e, text + frag, len - frag);
    bn_free(e.syms);
    bn_free(e.heap);
    bn_free(e.cps.cp);
    bn_free(e.cps.fl);
    bn_free(e.cps.off);
    bn_free(e.esc);
    if (st != BN_OK) {
        bn_free(e.ids);
        return st;
    }
    if (!e.ids) { /* always hand back an allocation, even for no tokens */
        e.ids = bn_malloc(sizeof *e.ids);
        if (!e.ids) return BN_ERR_NOMEM;
    }
    *ids = e.ids;
    *n_ids = e.n_ids;
    return BN_OK;
}
