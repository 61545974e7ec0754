/* Unicode helpers for the pre-tokenizers: character classes from generated tables
 * (unicode_tables.c, made by scripts/gen-unicode-tables.py) and a UTF-8 decoder that never fails. */
#ifndef BN_TOKENIZER_UNICODE_H
#define BN_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Class bits of a codepoint: its general category's major class, plus White_Space. */
enum {
    BN_UCD_LETTER = 1,  /* \p{L} */
    BN_UCD_NUMBER = 2,  /* \p{N} */
    BN_UCD_PUNCT = 4,   /* \p{P} */
    BN_UCD_SYMBOL = 8,  /* \p{S} */
    BN_UCD_MARK = 16,   /* \p{M} */
    BN_UCD_SEPARATOR = 32, /* \p{Z} */
    BN_UCD_OTHER = 64,  /* \p{C} except unassigned */
    BN_UCD_SPACE = 128  /* White_Space (the \s of Unicode regex engines) */
};

extern const char bn_ucd_version[];
extern const uint8_t bn_ucd_stage1[0x1100];
extern const uint8_t bn_ucd_stage2[][256];
extern const uint32_t bn_ucd_ascii_folds[][2];
extern const size_t bn_ucd_n_ascii_folds;

/* Class bits of cp; 0 for unassigned codepoints and anything above U+10FFFF. */
static inline unsigned bn_ucd_flags(uint32_t cp)
{
    if (cp > 0x10FFFF) return 0;
    return bn_ucd_stage2[bn_ucd_stage1[cp >> 8]][cp & 0xFF];
}

/* Simple case fold of cp when that fold is an ASCII character (A-Z -> a-z, U+017F -> 's',
 * U+212A -> 'k'); otherwise cp itself. */
uint32_t bn_ucd_fold_ascii(uint32_t cp);

/* Decodes one UTF-8 sequence at s[0..n) (n >= 1).  Returns its length (1-4) and the codepoint in
 * *cp.  A byte that does not start a valid, complete, shortest-form sequence (no surrogates,
 * nothing above U+10FFFF) gives length 1 and *cp = BN_UTF8_INVALID | byte, so callers can keep
 * the raw byte. */
#define BN_UTF8_INVALID 0x80000000u
size_t bn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* How many leading bytes of s[0..n) agree with some valid UTF-8 sequence (0 if s[0] cannot start
 * one); *need gets the length of the sequence s[0] starts (0 if none).  Result == *need: complete;
 * result == n < *need: a valid start cut short; otherwise s[0..max(result,1)) is one invalid
 * "maximal subpart" (shown as a single U+FFFD). */
size_t bn_utf8_prefix(const unsigned char *s, size_t n, size_t *need);

/* Encodes cp (<= 0x10FFFF) as UTF-8 into out (4 bytes room); returns the length. */
size_t bn_utf8_encode(uint32_t cp, char *out);

#endif
