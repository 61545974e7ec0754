/* Tokenizers: byte-level BPE (GPT-2 / Llama-3 style, pre-tokenizer chosen by name) and
 * SentencePiece-style BPE (`llama` vocabularies with scores and <0xXX> byte fallback).
 * Built from GGUF metadata (this module) or from parts that another loader supplies
 * (src/hf builds one from tokenizer.json through bn_tokenizer_build). */
#ifndef BN_TOKENIZER_TOKENIZER_H
#define BN_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf.h"

typedef struct bn_tokenizer bn_tokenizer;

typedef enum bn_tok_kind {
    BN_TOK_BPE = 0, /* byte-level BPE (tokenizer.ggml.model = "gpt2") */
    BN_TOK_SPM = 1  /* SentencePiece-style (tokenizer.ggml.model = "llama") */
} bn_tok_kind;

/* Token types as GGUF stores them. */
enum {
    BN_TOKTYPE_NORMAL = 1,
    BN_TOKTYPE_UNKNOWN = 2,
    BN_TOKTYPE_CONTROL = 3,
    BN_TOKTYPE_USER_DEFINED = 4,
    BN_TOKTYPE_UNUSED = 5,
    BN_TOKTYPE_BYTE = 6
};

/* Pre-tokenizer override for BPE vocabularies (see docs/tokenizer.md). */
typedef enum bn_pretok {
    BN_PRETOK_AUTO = 0,     /* from tokenizer.ggml.pre; missing + Llama-3 vocabulary => LLAMA3 */
    BN_PRETOK_LLAMA3 = 1,
    BN_PRETOK_GPT2 = 2,
    BN_PRETOK_DEFAULT = 3   /* llama.cpp's "default" chain: what bitnet.cpp does without the key */
} bn_pretok;

bn_status bn_tokenizer_load_gguf(const bn_gguf *g, bn_pretok pretok, bn_tokenizer **out);

/* Building from parts: what a loader of another format (src/hf: tokenizer.json, tiktoken) hands
 * over.  Everything is copied; the caller keeps ownership of its arrays. */
typedef struct bn_tok_str {
    const char *ptr;
    size_t len;
} bn_tok_str;

typedef struct bn_tokenizer_desc {
    bn_tok_kind kind;
    int32_t n_vocab;
    /* Token texts as GGUF stores them: BPE normal tokens in the GPT-2 byte-to-unicode form
     * ("Ġhello"), SPM pieces with U+2581 for spaces, special tokens verbatim.  An empty text
     * makes a token that can be decoded but never produced. */
    const bn_tok_str *tokens;
    bool tokens_raw;      /* BPE: normal tokens are given as their raw bytes instead */
    const float *scores;  /* NULL: all 0 (SPM merges by score, higher first) */
    const int32_t *types; /* BN_TOKTYPE_*; NULL: all NORMAL */
    /* BPE merges "left right" (stored form), highest priority first. */
    const bn_tok_str *merges;
    size_t n_merges;
    /* BPE without a merge list (tiktoken): any two tokens whose concatenation is a token merge,
     * lower token id first. */
    bool merges_from_ids;
    bn_pretok pretok;   /* LLAMA3, GPT2 or DEFAULT (AUTO is an error here) */
    bool ignore_merges; /* BPE: a pre-tokenized word that is itself a token is used whole */
    int32_t bos, eos, unk; /* -1: none */
    int32_t eot, eom;      /* -1: found by text (<|eot_id|>, <|im_end|>, ... / <|eom_id|>) */
    bool add_bos;
    bool add_space_prefix; /* SPM */
} bn_tokenizer_desc;

bn_status bn_tokenizer_build(const bn_tokenizer_desc *d, bn_tokenizer **out);

/* true if the vocabulary is Llama-3's (128000 BPE tokens then <|begin_of_text|>, <|end_of_text|>,
 * ..., <|eot_id|> at 128009): decides the pre-tokenizer when a GGUF file names none. */
bool bn_tokenizer_is_llama3(const bn_tokenizer *t);
/* The same test on the stored texts of a vocabulary about to be built. */
bool bn_tok_texts_are_llama3(const bn_tok_str *tokens, int32_t n);
bn_tok_kind bn_tokenizer_kind(const bn_tokenizer *t);
bn_pretok bn_tokenizer_pretok(const bn_tokenizer *t); /* resolved (never AUTO) */
int32_t bn_tokenizer_unk(const bn_tokenizer *t);
int bn_tokenizer_token_type(const bn_tokenizer *t, int32_t id); /* BN_TOKTYPE_*, 0 if out of range */
/* The stored text of a token (as in the vocabulary file); NULL if id is out of range. */
const char *bn_tokenizer_token_text(const bn_tokenizer *t, int32_t id, size_t *len);
/* Longest piece in bytes. */
size_t bn_tokenizer_max_piece_len(const bn_tokenizer *t);
/* The most bytes one bn_detok_push or bn_detok_flush can write for this vocabulary (a cap this
 * large never gives BN_ERR_RANGE). */
size_t bn_tokenizer_max_detok_len(const bn_tokenizer *t);
void bn_tokenizer_free(bn_tokenizer *t);

int32_t bn_tokenizer_n_vocab(const bn_tokenizer *t);
int32_t bn_tokenizer_bos(const bn_tokenizer *t); /* -1 if none */
int32_t bn_tokenizer_eos(const bn_tokenizer *t);
int32_t bn_tokenizer_eot(const bn_tokenizer *t);
bool bn_tokenizer_add_bos(const bn_tokenizer *t);
/* true for every end-of-generation id (EOS, EOT, <|eom_id|>, ...). */
bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id);
/* Finds a token by its exact text (e.g. "<|eot_id|>"); -1 if absent. */
int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *text, size_t len);

/* Encodes UTF-8 text (invalid bytes are encoded as their byte tokens, never rejected silently).
 * *ids is allocated (bn_free); BOS is prepended when add_bos; special-token text is matched
 * only when parse_special. */
bn_status bn_tokenizer_encode(const bn_tokenizer *t, const char *text, size_t len, bool add_bos,
                              bool parse_special, int32_t **ids, size_t *n_ids);

/* The raw bytes a token stands for (BPE: byte-decoded; SPM: with ▁ as space, <0xXX> as the byte).
 * Control tokens give their text only when `special` is true, else "". */
bn_status bn_tokenizer_token_bytes(const bn_tokenizer *t, int32_t id, bool special, const char **bytes,
                                   size_t *len);

/* Streaming detokenizer: feed ids, get text that is always valid UTF-8.  An incomplete UTF-8
 * sequence is held back until completed; invalid bytes become U+FFFD. */
typedef struct bn_detok {
    const bn_tokenizer *t;
    bool special;        /* render control tokens */
    bool strip_leading;  /* SPM: drop the space that starts the first piece */
    unsigned char pending[8];
    size_t n_pending;
    size_t n_out;        /* pieces emitted so far */
} bn_detok;

void bn_detok_init(bn_detok *d, const bn_tokenizer *t, bool special);
/* Appends the text for `id` to out (at most cap bytes; *n gets the count).  BN_ERR_RANGE if cap is
 * too small (bn_tokenizer_max_detok_len is always enough), with nothing consumed, so the call can
 * be repeated with more room.  BN_ERR_RANGE also for an id out of range. */
bn_status bn_detok_push(bn_detok *d, int32_t id, char *out, size_t cap, size_t *n);
/* Flushes held-back bytes (as U+FFFD). */
bn_status bn_detok_flush(bn_detok *d, char *out, size_t cap, size_t *n);

#endif
