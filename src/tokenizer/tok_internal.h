/* Internals of the tokenizer module shared by its files (not for other modules). */
#ifndef BN_TOKENIZER_TOK_INTERNAL_H
#define BN_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* ---- decoded text, as the pre-tokenizers see it ---- */

/* One fragment of input decoded to codepoints.  An invalid byte is a one-byte pseudo-character
 * with cp = BN_UTF8_INVALID | byte and the class of U+FFFD (a symbol), so it stays in the text
 * and byte-level BPE encodes it exactly. */
typedef struct bn_cps {
    uint32_t *cp;
    uint8_t *fl;   /* class bits (unicode.h) */
    uint32_t *off; /* byte offset of each codepoint; off[n] = byte length */
    size_t n;
} bn_cps;

/* Called for each piece [start, end) (codepoint indices) the pre-tokenizer produces, in order. */
typedef bn_status (*bn_piece_fn)(void *user, size_t start, size_t end);

/* Splits t with the given pre-tokenizer (LLAMA3, GPT2 or DEFAULT; see docs/tokenizer.md). */
bn_status bn_pretok_split(bn_pretok kind, const bn_cps *t, bn_piece_fn fn, void *user);

/* ---- the tokenizer ---- */

typedef struct bn_map_slot {
    uint32_t hash; /* high bits of the key's hash, to skip most string compares */
    int32_t id;    /* -1: empty */
    uint32_t off;  /* the key's bytes, so a probe touches only the slot and the key */
    uint32_t len;
} bn_map_slot;

typedef struct bn_merge_slot {
    uint64_t key;   /* (left id << 32) | right id; UINT64_MAX: empty */
    int32_t rank;   /* lower merges first */
    int32_t result; /* id of the merged token */
} bn_merge_slot;

struct bn_tokenizer {
    bn_tok_kind kind;
    bn_pretok pretok;      /* resolved: LLAMA3, GPT2 or DEFAULT (BPE only) */
    bool ignore_merges;    /* BPE: a pre-tokenized word that is a token is taken whole */
    bool add_bos;
    bool add_space_prefix; /* SPM: a space before the text and after each special token */
    bool llama3_vocab;
    int32_t n_vocab;
    int32_t bos, eos, eot, eom, unk;
    int32_t eog[16];
    int n_eog;

    /* Token i: stored text (as in the vocabulary file) and piece (the bytes it stands for). */
    char *text;
    uint32_t *text_off;  /* n_vocab + 1 */
    char *piece;
    uint32_t *piece_off; /* n_vocab + 1 */
    float *scores;
    uint8_t *types;
    size_t max_piece_len;
    size_t max_detok_len;

    /* Encoder lookup: normal and user-defined tokens by their encoder key (BPE: piece bytes;
     * SPM: stored text, with U+2581 for spaces). */
    bn_map_slot *map;
    uint32_t map_mask;

    bn_merge_slot *merges; /* BPE with a merge list */
    uint32_t merge_mask;
    bool merge_by_concat;  /* BPE without one (tiktoken): a pair merges if its concatenation is a
                              token, ranked by that token's id */
    int32_t byte_tok[256]; /* token of each single byte (BPE: its piece; SPM: <0xXX>); -1 if none */

    /* Special tokens (control, user-defined, unknown) matched in text when parse_special:
     * ids grouped by first byte, longest first within a group. */
    int32_t *special;
    uint32_t n_special;
    uint32_t special_first[257];
};

static inline const char *bn_tok_text(const bn_tokenizer *t, int32_t id, size_t *len)
{
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text + t->text_off[id];
}

static inline const char *bn_tok_piece(const bn_tokenizer *t, int32_t id, size_t *len)
{
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

uint64_t bn_tok_hash(const void *p, size_t n);
/* Encoder lookup of key bytes; -1 if absent. */
int32_t bn_tok_map_find(const bn_tokenizer *t, const char *key, size_t len);

#endif
