/* Pre-tokenizers: the regular expressions that byte-level BPE vocabularies split text with,
 * written out by hand over the Unicode class tables (no regex engine).  Each function below
 * states the expression it implements; at every position the alternatives are tried in order,
 * as a backtracking regex engine would, and the first that matches gives the piece.
 * "End" is the end of the fragment being split: a lookahead past it sees nothing. */
#include "common/error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#define IS_L(f) ((f) & BN_UCD_LETTER)
#define IS_N(f) ((f) & BN_UCD_NUMBER)
#define IS_S(f) ((f) & BN_UCD_SPACE)

static bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }

/* Length (1..3) of a contraction 's 't 'm 'd 're 've 'll starting at i, or 0.  With fold, letters
 * compare case-insensitively (simple case folding, as (?i:...) does). */
static size_t contraction(const bn_cps *t, size_t i, size_t end, bool fold)
{
    if (t->cp[i] != '\'' || i + 1 >= end) return 0;
    uint32_t a = t->cp[i + 1];
    if (fold) a = bn_ucd_fold_ascii(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= end) return 0;
    uint32_t b = t->cp[i + 2];
    if (fold) b = bn_ucd_fold_ascii(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* Whitespace alternatives shared by both expressions, at a whitespace codepoint i:
 *   \s+(?!\S)   the run, less its last character when a non-space follows (if that leaves any)
 *   \s+         otherwise the whole run (a single space before a non-space) */
static size_t space_run(const bn_cps *t, size_t i, size_t end)
{
    size_t j = i;
    while (j < end && IS_S(t->fl[j])) j++;
    if (j < end && j - i >= 2) return j - 1;
    return j;
}

/* Llama-3:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n]*
 *   | \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t next_llama3(const bn_cps *t, size_t i, size_t end)
{
    size_t k = contraction(t, i, end, true);
    if (k) return i + k;

    uint32_t c = t->cp[i];
    unsigned f = t->fl[i];
    /* an optional non-letter, non-number, non-CR/LF lead, then letters */
    if (IS_L(f) || (!is_crlf(c) && !IS_N(f) && i + 1 < end && IS_L(t->fl[i + 1]))) {
        size_t j = i + 1;
        while (j < end && IS_L(t->fl[j])) j++;
        return j;
    }
    if (IS_N(f)) {
        size_t j = i + 1;
        while (j < end && j < i + 3 && IS_N(t->fl[j])) j++;
        return j;
    }
    /* optional space, then "other" characters, then any CR/LF */
    size_t j = i;
    if (c == ' ' && i + 1 < end) j = i + 1;
    unsigned g = t->fl[j];
    if (!IS_S(g) && !IS_L(g) && !IS_N(g)) {
        while (j < end && !(t->fl[j] & (BN_UCD_SPACE | BN_UCD_LETTER | BN_UCD_NUMBER))) j++;
        while (j < end && is_crlf(t->cp[j])) j++;
        return j;
    }
    /* c is whitespace here.  \s*[\r\n]+: greedy \s* backs off to the last CR/LF of the run. */
    size_t last_crlf = 0, r = i;
    while (r < end && IS_S(t->fl[r])) {
        if (is_crlf(t->cp[r])) last_crlf = r + 1;
        r++;
    }
    if (last_crlf) return last_crlf;
    return space_run(t, i, end);
}

/* GPT-2:  's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+ */
static size_t next_gpt2(const bn_cps *t, size_t i, size_t end)
{
    size_t k = contraction(t, i, end, false);
    if (k) return i + k;

    size_t j = (t->cp[i] == ' ' && i + 1 < end) ? i + 1 : i;
    unsigned g = t->fl[j];
    if (IS_L(g)) {
        while (j < end && IS_L(t->fl[j])) j++;
        return j;
    }
    if (IS_N(g)) {
        while (j < end && IS_N(t->fl[j])) j++;
        return j;
    }
    if (!IS_S(g)) {
        while (j < end && !(t->fl[j] & (BN_UCD_SPACE | BN_UCD_LETTER | BN_UCD_NUMBER))) j++;
        return j;
    }
    return space_run(t, i, end);
}

static bn_status split_simple(size_t (*next)(const bn_cps *, size_t, size_t), const bn_cps *t, size_t start,
                              size_t end, bn_piece_fn fn, void *user)
{
    for (size_t i = start; i < end;) {
        size_t j = next(t, i, end);
        bn_status st = fn(user, i, j);
        if (st != BN_OK) return st;
        i = j;
    }
    return BN_OK;
}

/* ---- llama.cpp's "default" chain (what bitnet.cpp uses for a BPE file without tokenizer.ggml.pre) ----
 * Four expressions applied one after another; each splits every piece of the previous stage
 * into its matches and the text between them:
 *   1. [\p{P}\$\+<=>\^~\|]+       2. the GPT-2 expression
 *   3. \p{N}+                      4. [0-9][0-9][0-9]
 * llama.cpp evaluates 1 and 3 with std::regex over a "collapsed" text in which every non-ASCII
 * codepoint becomes one byte standing for its class: whitespace counts as \s only, never as \p{P}
 * or \p{N}, and \p{P}/\p{N} on ASCII mean the ASCII punctuation/digits.  Expression 4 sees only
 * ASCII digits. */

static bool ascii_punct(uint32_t c)
{
    return (c >= 0x21 && c <= 0x23) || (c >= 0x25 && c <= 0x2A) || (c >= 0x2C && c <= 0x2F) || c == 0x3A ||
           c == 0x3B || c == 0x3F || c == 0x40 || (c >= 0x5B && c <= 0x5D) || c == 0x5F || c == 0x7B || c == 0x7D;
}

static bool default_class1(const bn_cps *t, size_t i)
{
    uint32_t c = t->cp[i];
    if (c < 0x80)
        return ascii_punct(c) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' ||
               c == '|';
    return !IS_S(t->fl[i]) && (t->fl[i] & BN_UCD_PUNCT) && !(c & BN_UTF8_INVALID);
}

static bool default_class3(const bn_cps *t, size_t i)
{
    uint32_t c = t->cp[i];
    if (c < 0x80) return c >= '0' && c <= '9';
    return !IS_S(t->fl[i]) && IS_N(t->fl[i]) && !(c & BN_UTF8_INVALID);
}

static bool ascii_digit(const bn_cps *t, size_t i) { return t->cp[i] >= '0' && t->cp[i] <= '9'; }

typedef struct chain {
    const bn_cps *t;
    bn_piece_fn fn;
    void *user;
} chain;

static bn_status emit(const chain *ch, size_t a, size_t b) { return a < b ? ch->fn(ch->user, a, b) : BN_OK; }

/* Stage 4: runs of three ASCII digits, leftmost first. */
static bn_status stage4(void *user, size_t start, size_t end)
{
    const chain *ch = user;
    size_t gap = start, i = start;
    while (i + 3 <= end) {
        if (ascii_digit(ch->t, i) && ascii_digit(ch->t, i + 1) && ascii_digit(ch->t, i + 2)) {
            bn_status st = emit(ch, gap, i);
            if (st == BN_OK) st = emit(ch, i, i + 3);
            if (st != BN_OK) return st;
            i += 3;
            gap = i;
        } else {
            i++;
        }
    }
    return emit(ch, gap, end);
}

/* Stages 1 and 3: maximal runs of a class, and the text between them. */
static bn_status runs_of(const chain *ch, bool (*in)(const bn_cps *, size_t), size_t start, size_t end,
                         bn_status (*next)(void *, size_t, size_t))
{
    size_t i = start;
    while (i < end) {
        size_t j = i;
        bool match = in(ch->t, i);
        while (j < end && in(ch->t, j) == match) j++;
        bn_status st = next((void *)ch, i, j);
        if (st != BN_OK) return st;
        i = j;
    }
    return BN_OK;
}

static bn_status stage3(void *user, size_t start, size_t end)
{
    return runs_of(user, default_class3, start, end, stage4);
}

static bn_status stage2(void *user, size_t start, size_t end)
{
    const chain *ch = user;
    for (size_t i = start; i < end;) {
        size_t j = next_gpt2(ch->t, i, end);
        bn_status st = stage3(user, i, j);
        if (st != BN_OK) return st;
        i = j;
    }
    return BN_OK;
}

bn_status bn_pretok_split(bn_pretok kind, const bn_cps *t, bn_piece_fn fn, void *user)
{
    switch (kind) {
    case BN_PRETOK_LLAMA3: return split_simple(next_llama3, t, 0, t->n, fn, user);
    case BN_PRETOK_GPT2: return split_simple(next_gpt2, t, 0, t->n, fn, user);
    case BN_PRETOK_DEFAULT: {
        chain ch = {t, fn, user};
        return runs_of(&ch, default_class1, 0, t->n, stage2);
    }
    default: return bn_error(BN_ERR_INTERNAL, "unresolved pre-tokenizer %d", (int)kind);
    }
}
