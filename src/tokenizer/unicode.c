/* UTF-8 decoding for the tokenizer.  Invalid input is never rejected: the pre-tokenizers keep a
 * bad byte as a one-byte pseudo-character so byte-level BPE can still encode it exactly. */
#include "tokenizer/unicode.h"

uint32_t bn_ucd_fold_ascii(uint32_t cp)
{
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    for (size_t i = 0; i < bn_ucd_n_ascii_folds; i++)
        if (bn_ucd_ascii_folds[i][0] == cp) return bn_ucd_ascii_folds[i][1];
    return cp;
}

/* Range of the second byte allowed after a lead byte (RFC 3629 table), so overlong forms,
 * surrogates and values above U+10FFFF are excluded. */
static void second_byte_range(unsigned char lead, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (lead == 0xE0) *lo = 0xA0;
    else if (lead == 0xED) *hi = 0x9F;
    else if (lead == 0xF0) *lo = 0x90;
    else if (lead == 0xF4) *hi = 0x8F;
}

static size_t lead_length(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t bn_utf8_prefix(const unsigned char *s, size_t n, size_t *need)
{
    size_t len = n ? lead_length(s[0]) : 0;
    *need = len;
    if (len == 0) return 0;
    size_t k = 1;
    while (k < len && k < n) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (k == 1) second_byte_range(s[0], &lo, &hi);
        if (s[k] < lo || s[k] > hi) break;
        k++;
    }
    return k;
}

size_t bn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    if (bn_utf8_prefix(s, n, &need) != need || need == 0) {
        *cp = BN_UTF8_INVALID | c;
        return 1;
    }
    uint32_t v = c & (0x7Fu >> need);
    for (size_t k = 1; k < need; k++) v = (v << 6) | (s[k] & 0x3Fu);
    *cp = v;
    return need;
}

size_t bn_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
