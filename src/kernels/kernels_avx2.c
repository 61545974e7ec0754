/* AVX2 (+FMA, F16C) kernels.  Each gives exactly the reference's result: integer sums are exact and
 * the float steps are the reference's, in its order (kernels_ref.c, kernels_impl.h).
 *
 * Integer ranges (why int16 lanes never overflow here).  _mm256_maddubs_epi16(u8 codes, s8 q)
 * adds two products per int16 lane.  Ternary codes are 0..3 (3 only in a corrupt file) and
 * q in [-128, 127], so a lane holds at most 2*3*128 = 768 in magnitude: maddubs never saturates.
 *   I2_S: a 128-element block adds 4 such lanes (<= 3072); int16 accumulators take 8 blocks
 *         (<= 24576 < 32767), then widen to int32 (pairs: <= 49152 per 8 blocks per lane), so an
 *         int32 lane stays below 2^31 for K < 2^30; weights are limited to K <= 2^24.
 *   TQ2_0/TQ1_0: a 256-element block adds 8 lanes (<= 6144) before widening per block.
 *   Q8_0: |w| <= 128 (abs of -128), |q| <= 127 (our Q8_0 activations never hold -128), so a lane
 *         is <= 2*128*127 = 32512 < 32767; widened per 32-element block.
 * The worst cases (every code +1, every q -128 or 127, K = 6912 .. 65536) are tested. */
#include <immintrin.h>
#include <string.h>

#include "common/fp16.h"
#include "kernels/kernels_impl.h"

#define BN_AI static inline __attribute__((always_inline))

BN_AI int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

BN_AI __m256i loadu(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

BN_AI float f16_scalar(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

/* Rows of a thread's share are processed in tiles whose packed weights fit in a part of L1, and
 * tokens in groups of up to 4, so a GEMM reads each weight tile from cache once per token group
 * instead of from memory once per token. */
static int64_t row_tile(size_t row_bytes)
{
    int64_t r = (int64_t)(12288 / (row_bytes ? row_bytes : 1));
    return r < 1 ? 1 : r > 64 ? 64 : r;
}

/* ---- I2_S ---- */

static inline __m256i bn_x86_sum8(const __m256i s[8]); /* kernels_x86_blocks.h, included below */

/* One row against T <= 8 tokens: each block's four code vectors are decoded once and serve T
 * tokens, one VPMADDUBSW + one add per 32 products, the activations folded into the multiplies as
 * memory operands.  int16 lanes take 8 blocks (see the top), then are widened into int32 totals.
 * The empty asm after each add pins the accumulator to its register at that point: without it GCC
 * re-associates the adds into trees of products and spills them (half the speed; clang does not). */
#define I2S_MA(t, c, off)                                                                        \
    if ((t) < T) {                                                                               \
        a##t = _mm256_add_epi16(a##t, _mm256_maddubs_epi16(c, loadu(q + (t) * K + (off))));       \
        __asm__("" : "+x"(a##t));                                                               \
    }
#define I2S_MA8(c, off)                                                                          \
    I2S_MA(0, c, off) I2S_MA(1, c, off) I2S_MA(2, c, off) I2S_MA(3, c, off) I2S_MA(4, c, off)  \
    I2S_MA(5, c, off) I2S_MA(6, c, off) I2S_MA(7, c, off)
#define I2S_WIDEN(t) \
    if ((t) < T) tot[t] = _mm256_add_epi32(tot[t], _mm256_madd_epi16(a##t, ones));

/* Blocks [b, b1) of a row (b even), two at a time from the row's pairs, an odd last one from its tail. */
BN_AI void i2s_tile(const bn_i2s_rowptr *row, int64_t b, int64_t b1, int64_t nblk, const int8_t *q0, int64_t K, const int T,
                    int32_t *out)
{
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i tot[8];
    for (int t = 0; t < 8; t++) tot[t] = _mm256_setzero_si256(); /* tokens past T stay zero */
    while (b < b1) {
        const int64_t bend = b + 8 < b1 ? b + 8 : b1;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        const uint8_t *wp = row->pairs + (size_t)(b >> 1) * row->pair_stride;
        for (; b < bend; b++) {
            const __m256i w = loadu((b | 1) < nblk ? wp + 32 * (b & 1) : row->tail);
            if (b & 1) {
                _mm_prefetch((const char *)wp + 4 * row->pair_stride, _MM_HINT_T0);
                wp += row->pair_stride;
            }
            const int8_t *q = q0 + 128 * b;
            /* byte j holds elements j, 32+j, 64+j, 96+j from the high bits down */
            const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(w, 6), m3);
            const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), m3);
            const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(w, 2), m3);
            const __m256i c3 = _mm256_and_si256(w, m3);
            I2S_MA8(c0, 0)
            I2S_MA8(c1, 32)
            I2S_MA8(c2, 64)
            I2S_MA8(c3, 96)
        }
        I2S_WIDEN(0) I2S_WIDEN(1) I2S_WIDEN(2) I2S_WIDEN(3) I2S_WIDEN(4) I2S_WIDEN(5) I2S_WIDEN(6) I2S_WIDEN(7)
    }
    if (T > 1) { /* the tokens' lane sums by one tree (kernels_x86_blocks.h); out has room for 8 */
        _mm256_storeu_si256((__m256i *)out, _mm256_add_epi32(loadu(out), bn_x86_sum8(tot)));
        return;
    }
    out[0] += hsum_i32(tot[0]);
}

/* out[i] = the lane sum of acc[i]: pairs of rows interleaved, then the two 128-bit halves */
BN_AI void x4_sums(const __m256i acc[4], int32_t out[4])
{
    const __m256i t01 = _mm256_add_epi32(_mm256_unpacklo_epi32(acc[0], acc[1]), _mm256_unpackhi_epi32(acc[0], acc[1]));
    const __m256i t23 = _mm256_add_epi32(_mm256_unpacklo_epi32(acc[2], acc[3]), _mm256_unpackhi_epi32(acc[2], acc[3]));
    const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23), _mm256_unpackhi_epi64(t01, t23));
    _mm_storeu_si128((__m128i *)out, _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1)));
}

/* T (1 or 2) tokens, q and q + K, one group of the x4 layout (kernels_impl.h): out[4t + i] = row i,
 * token t.  Each activation vector is loaded once for four rows, the four rows are independent
 * chains, and the group is one memory stream; each decoded block serves the T tokens.  A block's
 * int16 lane sum is at most 4 * 768 (see the top), widened at once.  Two tokens are for short rows
 * in small batches, where a tile's per-row setup costs more than its products (the tiny model's
 * K = 256: two tokens took 3.5x one token's time through the tile). */
BN_AI void i2s_x4_tokens(const uint8_t *g, int64_t nblk, const int8_t *q, int64_t K, const int T, int32_t *out)
{
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[2][4];
    for (int i = 0; i < 4; i++) acc[0][i] = acc[1][i] = _mm256_setzero_si256();
    for (int64_t b = 0; b < nblk; b++) {
        /* pairs: row i's block at 256 * (b / 2) + 64 * i + 32 * (b % 2); an odd last block at
         * 128 * b + 32 * i */
        const uint8_t *p = (b | 1) < nblk ? g + 128 * (b & ~(int64_t)1) + 32 * (b & 1) : g + 128 * b;
        const size_t step = (b | 1) < nblk ? 64 : 32;
        for (int i = 0; i < 4; i++) {
            __m256i w = loadu(p + step * (size_t)i);
            __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(w, 6), m3);
            __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), m3);
            __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(w, 2), m3);
            __m256i c3 = _mm256_and_si256(w, m3);
            for (int t = 0; t < T; t++) {
                const int8_t *qb = q + t * K + 128 * b;
                __m256i s = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(c0, loadu(qb)), _mm256_maddubs_epi16(c1, loadu(qb + 32))),
                                             _mm256_add_epi16(_mm256_maddubs_epi16(c2, loadu(qb + 64)), _mm256_maddubs_epi16(c3, loadu(qb + 96))));
                acc[t][i] = _mm256_add_epi32(acc[t][i], _mm256_madd_epi16(s, ones));
            }
        }
    }
    for (int t = 0; t < T; t++) x4_sums(acc[t], out + 4 * t);
}

static inline void i2s_gemv_x4(const uint8_t *g, int64_t nblk, const int8_t *q, int32_t out[4])
{
    i2s_x4_tokens(g, nblk, q, 0, 1, out);
}

static void i2s_gemv_x4_t2(const uint8_t *g, int64_t nblk, const int8_t *q, int64_t K, int32_t out[8])
{
    i2s_x4_tokens(g, nblk, q, K, 2, out);
}

/* i2s_tile for one token, with the signature bn_i2s_gemv_rows takes */
static void i2s_row_1(const bn_i2s_rowptr *row, int64_t nblk, const int8_t *q, int64_t K, int T, int32_t *out)
{
    (void)T;
    out[0] = 0;
    i2s_tile(row, 0, nblk, nblk, q, K, 1, out);
}

/* A batch: tiles of up to 64 rows, whose weights stay in L2 while tokens go by in groups of 8;
 * a long row (K > 3072) is cut into a few equal ranges of blocks so that the 8 tokens' activations
 * for a range (<= 24 KiB) stay in L1 while the tile's rows go by. */
static void mm_i2s_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const void *pk = bn_weight_packed(w); /* once: another thread may publish it meanwhile */
    const int64_t K = w->cols, nblk = K / 128;
    if (a->n_tok == 1) {
        bn_i2s_gemv_rows(w, pk, a->q, a->d[0], a->sum[0], y, r0, r1, i2s_gemv_x4, i2s_row_1);
        return;
    }
    if (a->n_tok <= 4 && nblk <= 8 && pk) { /* a few tokens, short rows: x4 groups, tokens in pairs */
        const int64_t gend = w->rows & ~(int64_t)3, rb = K / 4;
        for (int64_t r = r0; r < r1;) {
            if (r % 4 || r + 4 > r1 || r >= gend) {
                for (int64_t t = 0; t < a->n_tok; t++)
                    bn_i2s_gemv_rows(w, pk, a->q + t * K, a->d[t], a->sum[t], y + t * w->rows, r, r + 1, i2s_gemv_x4, i2s_row_1);
                r++;
                continue;
            }
            const uint8_t *g = (const uint8_t *)pk + r * rb;
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += 2) {
                int32_t acc[8];
                const int T = a->n_tok - t0 >= 2 ? 2 : 1;
                if (T == 2) i2s_gemv_x4_t2(g, nblk, a->q + t0 * K, K, acc);
                else i2s_gemv_x4(g, nblk, a->q + t0 * K, acc);
                for (int t = 0; t < T; t++) { /* the reference's float steps, four rows per vector */
                    const __m128 v = _mm_sub_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(acc + 4 * t))),
                                                _mm_set1_ps((float)a->sum[t0 + t]));
                    _mm_storeu_ps(y + (t0 + t) * w->rows + r,
                                  _mm_mul_ps(_mm_div_ps(v, _mm_set1_ps(a->d[t0 + t])), _mm_set1_ps(w->scale)));
                }
            }
            r += 4;
        }
        return;
    }
    const int64_t nkc = (nblk + 23) / 24, kc = ((nblk + nkc - 1) / nkc + 1) & ~(int64_t)1; /* even ranges */
    for (int64_t rt = r0; rt < r1; rt += 64) {
        const int64_t rend = rt + 64 < r1 ? rt + 64 : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 8) {
            const int T = (int)(a->n_tok - t0 < 8 ? a->n_tok - t0 : 8);
            const int8_t *q = a->q + t0 * K;
            int32_t acc[64][8];
            memset(acc, 0, sizeof acc);
            for (int64_t b0 = 0; b0 < nblk; b0 += kc) {
                const int64_t b1 = b0 + kc < nblk ? b0 + kc : nblk;
                for (int64_t r = rt; r < rend; r++) {
                    const bn_i2s_rowptr row = bn_i2s_row_at(w, pk, r);
                    int32_t *o = acc[r - rt];
                    switch (T) { /* constant T: the unused accumulators vanish */
                    case 8: i2s_tile(&row, b0, b1, nblk, q, K, 8, o); break;
                    case 7: i2s_tile(&row, b0, b1, nblk, q, K, 7, o); break;
                    case 6: i2s_tile(&row, b0, b1, nblk, q, K, 6, o); break;
                    case 5: i2s_tile(&row, b0, b1, nblk, q, K, 5, o); break;
                    case 4: i2s_tile(&row, b0, b1, nblk, q, K, 4, o); break;
                    case 3: i2s_tile(&row, b0, b1, nblk, q, K, 3, o); break;
                    case 2: i2s_tile(&row, b0, b1, nblk, q, K, 2, o); break;
                    default: i2s_tile(&row, b0, b1, nblk, q, K, 1, o); break;
                    }
                }
            }
            /* the reference's float steps, a row's tokens in the lanes of one vector (tokens past T:
             * sum 0, d 1, not stored) */
            float sv[8] = {0, 0, 0, 0, 0, 0, 0, 0}, dv[8] = {1, 1, 1, 1, 1, 1, 1, 1}, f[8];
            for (int t = 0; t < T; t++) sv[t] = (float)a->sum[t0 + t], dv[t] = a->d[t0 + t];
            const __m256 sum8 = _mm256_loadu_ps(sv), d8 = _mm256_loadu_ps(dv), sc = _mm256_set1_ps(w->scale);
            for (int64_t r = rt; r < rend; r++) {
                const __m256 v = _mm256_cvtepi32_ps(loadu(acc[r - rt]));
                _mm256_storeu_ps(f, _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(v, sum8), d8), sc));
                for (int t = 0; t < T; t++) y[(t0 + t) * w->rows + r] = f[t];
            }
        }
    }
}

/* ---- TQ2_0 / TQ1_0 ----
 * Per 256-element block an exact integer sum per (row, token), then the reference's float step.
 * A block's sum is needed as a scalar per (row, token) before its float step, so four of them are
 * reduced together and their four float steps run in the lanes of one vector, each lane doing
 * exactly the reference's operations.
 *
 * TQ1_0 trits.  The file's trit n of byte x is y * 3 >> 8 with y = x * 3^n (mod 256): 0, 1 or 2 as
 * y < 86, < 171 or not.  The chain runs on y' = y + 128 (mod 256), which two byte adds per step keep
 * (3 * 128 = 384 = 128 mod 256), so the two thresholds become signed compares (y' > -43, y' > 42)
 * whose masks (0 or -1) are subtracted from 0: 4 + 2 operations per 32 trits, all of them ones
 * that every vector ALU port runs (Zen 4: VPABSB, VPSUBUSB and 16-bit multiplies share the two
 * ports of VPMADDUBSW, which made the earlier decode and a nibble-table one slower);
 * tests/kernels checks every byte value.  (A lookup of y by nibbles, VPSHUFB, costs 3 operations
 * per step instead of 2.)
 *
 * TQ2_0 codes and TQ1_0 trits enter VPMADDUBSW as unsigned bytes 0..3 against the signed int8
 * activations: two products per int16 lane, at most 2 * 3 * 128 = 768. */

BN_AI __m256i tq2_code_vec(__m256i v, int k) /* codes of elements 32k..32k+31 of a 32-byte half */
{
    const __m256i m3 = _mm256_set1_epi8(3);
    return _mm256_and_si256(k ? _mm256_srli_epi16(v, 2 * k) : v, m3);
}

/* The two thresholds, hidden from the compiler: GCC rewrites y' > c with a known c as
 * min(y', c + 1) == c + 1, two operations instead of one. */
typedef struct tq1_k {
    __m256i lo, hi;
} tq1_k;
BN_AI tq1_k tq1_consts(void)
{
    tq1_k k = {_mm256_set1_epi8(-43), _mm256_set1_epi8(42)};
    __asm__("" : "+x"(k.lo), "+x"(k.hi));
    return k;
}

/* trit of each byte from y' = y + 128 */
BN_AI __m256i tq1_trit(__m256i yb, tq1_k k)
{
    __m256i z = _mm256_setzero_si256();
    return _mm256_sub_epi8(_mm256_sub_epi8(z, _mm256_cmpgt_epi8(yb, k.lo)), _mm256_cmpgt_epi8(yb, k.hi));
}
BN_AI __m256i tq1_bias(__m256i x) { return _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80)); }
BN_AI __m256i tq1_mul3(__m256i y) { return _mm256_add_epi8(y, _mm256_add_epi8(y, y)); }

/* The five trit vectors of 32 file bytes: t[n] = trit n of each byte. */
BN_AI void tq1_trits5(__m256i x, __m256i t[5], tq1_k k)
{
    __m256i y = tq1_bias(x);
    for (int n = 0; n < 5; n++) {
        t[n] = tq1_trit(y, k);
        if (n < 4) y = tq1_mul3(y);
    }
}

/* The trits of 4 qh bytes per 128-bit lane (the bytes in every dword of the lane, already biased):
 * dword n = trit n of the four bytes, i.e. elements 240 + 4n + m in order.  Byte m times 3^n (mod
 * 256) is the low byte of a 16-bit product: even bytes in place, odd ones with the even cleared;
 * an odd power keeps the bias (3^n * 128 = 128 mod 256). */
BN_AI __m256i tq1_qh_trits_b(__m256i x, tq1_k k)
{
    const __m256i pw = _mm256_setr_epi16(1, 1, 3, 3, 9, 9, 27, 27, 1, 1, 3, 3, 9, 9, 27, 27);
    const __m256i lo = _mm256_set1_epi16(0xff);
    __m256i ev = _mm256_and_si256(_mm256_mullo_epi16(x, pw), lo);
    __m256i od = _mm256_mullo_epi16(_mm256_andnot_si256(lo, x), pw);
    return tq1_trit(_mm256_or_si256(ev, od), k);
}

/* The block's 256 codes in the file layout as 8 vectors of 32, in element order. */
BN_AI void tq_block_codes(const uint8_t *blk, const int tq1, __m256i c[8], tq1_k kk)
{
    if (!tq1) {
        /* byte m of half h holds elements 128h + m, +32, +64, +96 from the low bits up */
        __m256i v0 = loadu(blk), v1 = loadu(blk + 32);
        for (int k = 0; k < 4; k++) {
            c[k] = tq2_code_vec(v0, k);
            c[4 + k] = tq2_code_vec(v1, k);
        }
        return;
    }
    tq1_trits5(loadu(blk), c, kk);
    /* qs[32..47]: 5 trits of 16 bytes, elements 160 + 16n + m; two n per 256-bit vector */
    __m128i y16 = _mm_loadu_si128((const __m128i *)(blk + 32));
    __m256i y0 = tq1_bias(_mm256_inserti128_si256(_mm256_castsi128_si256(y16), y16, 1));
    __m256i y1 = tq1_mul3(y0), y2 = tq1_mul3(y1), y3 = tq1_mul3(y2), y4 = tq1_mul3(y3);
    c[5] = tq1_trit(_mm256_blend_epi32(y0, y1, 0xf0), kk); /* n = 0 | 1 */
    c[6] = tq1_trit(_mm256_blend_epi32(y2, y3, 0xf0), kk); /* n = 2 | 3 */
    uint32_t h;
    memcpy(&h, blk + 48, 4);
    __m256i qh = tq1_qh_trits_b(tq1_bias(_mm256_set1_epi32((int)h)), kk);
    c[7] = _mm256_blend_epi32(tq1_trit(y4, kk), qh, 0xf0); /* n = 4 | the 16 qh trits */
}

/* Products of one 32-element chunk: codes (u8) times q, pairs summed into int16 lanes. */
BN_AI __m256i dot32(__m256i codes, const int8_t *q) { return _mm256_maddubs_epi16(codes, loadu(q)); }

/* sum(code * q) over one block, as 8 int32 lanes (int16 lanes: 8 * 768 at most) */
BN_AI __m256i tq_block_dot(const __m256i c[8], const int8_t *q)
{
    __m256i s = _mm256_add_epi16(_mm256_add_epi16(dot32(c[0], q), dot32(c[1], q + 32)),
                                 _mm256_add_epi16(dot32(c[2], q + 64), dot32(c[3], q + 96)));
    s = _mm256_add_epi16(s, _mm256_add_epi16(_mm256_add_epi16(dot32(c[4], q + 128), dot32(c[5], q + 160)),
                                             _mm256_add_epi16(dot32(c[6], q + 192), dot32(c[7], q + 224))));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* out[ri * T + ti] for R rows (row0, row0 + rb, ...) and T tokens from t0 in the file layout; R * T <= 4. */
BN_AI void tq_tile(const uint8_t *row0, size_t rb, int64_t nb, const bn_act_view *a, int64_t t0, const int R,
                   const int T, const int tq1, float *out)
{
    const int64_t K = a->cols;
    const size_t bsz = tq1 ? 54 : 66;
    const tq1_k kk = tq1_consts();
    __m128 sumf = _mm_setzero_ps();
    float sf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        float wd[4] = {0, 0, 0, 0};
        for (int ri = 0; ri < R; ri++) {
            const uint8_t *blk = row0 + (size_t)ri * rb + bsz * (size_t)b;
            __m256i c[8];
            tq_block_codes(blk, tq1, c, kk);
            wd[ri] = f16_scalar(blk + bsz - 2);
            for (int ti = 0; ti < T; ti++) s[ri * T + ti] = tq_block_dot(c, a->q + (t0 + ti) * K + 256 * b);
        }
        if (R * T == 1) { /* a GEMV: a plain reduction is cheaper */
            int64_t i = t0 * (K / 256) + b;
            int32_t sumi = hsum_i32(s[0]) - a->sum[i];
            sf += (float)sumi * (a->d[i] * wd[0]);
            continue;
        }
        /* four 8-lane sums -> one vector of four sums */
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        __m128i S = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        /* lane p is row p / T, token p % T; lanes past R * T repeat a valid one */
        const int64_t st = K / 256, i0 = t0 * st + b;
        const int64_t i1 = i0 + st * (T > 1), i2 = i0 + st * (T > 2 ? 2 : 0), i3 = i0 + st * (T > 3 ? 3 : 0);
        __m128i bs = T == 1 ? _mm_set1_epi32(a->sum[i0]) : _mm_setr_epi32(a->sum[i0], a->sum[i1], a->sum[i2], a->sum[i3]);
        __m128 ad = T == 1 ? _mm_set1_ps(a->d[i0]) : _mm_setr_ps(a->d[i0], a->d[i1], a->d[i2], a->d[i3]);
        __m128 dw = R == 1 ? _mm_set1_ps(wd[0]) : _mm_setr_ps(wd[0], wd[1], wd[2], wd[3]);
        __m128i sumi = _mm_sub_epi32(S, bs);
        __m128 d = _mm_mul_ps(ad, dw);
        sumf = _mm_add_ps(sumf, _mm_mul_ps(_mm_cvtepi32_ps(sumi), d)); /* sumf += (float)sumi * d */
    }
    if (R * T == 1) {
        out[0] = sf;
        return;
    }
    float o[4];
    _mm_storeu_ps(o, sumf);
    for (int p = 0; p < R * T; p++) out[p] = o[p];
}

/* Rows [lo, hi) one at a time in the file layout (rows after the last x4 group are at the same
 * place in the repacked copy pk, rows before it in w->data), tokens four at a time. */
static void tq_file_rows(const bn_weight *w, const void *pk, const bn_act_view *a, float *y, int64_t lo, int64_t hi,
                         const int tq1)
{
    const int64_t nb = w->cols / 256, gend = pk ? w->rows & ~(int64_t)3 : w->rows;
    const size_t rb = (size_t)nb * (tq1 ? 54 : 66);
    float out[4];
    for (int64_t r = lo; r < hi; r++) {
        const uint8_t *row = (const uint8_t *)(r < gend ? w->data : pk) + (size_t)r * rb;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4) {
            int64_t T = a->n_tok - t0 < 4 ? a->n_tok - t0 : 4;
            switch (T) {
            case 1: tq_tile(row, rb, nb, a, t0, 1, 1, tq1, out); break;
            case 2: tq_tile(row, rb, nb, a, t0, 1, 2, tq1, out); break;
            case 3: tq_tile(row, rb, nb, a, t0, 1, 3, tq1, out); break;
            default: tq_tile(row, rb, nb, a, t0, 1, 4, tq1, out); break;
            }
            for (int64_t t = 0; t < T; t++) y[(t0 + t) * w->rows + r] = out[t];
        }
    }
}

/* ---- TQ x4 (kernels_impl.h): groups of four rows from one memory stream ----
 * A group's block is decoded into c[i][k]: row i's codes of elements 32k .. 32k + 31 (the file's
 * element order), then sum(code * q) per row over 8 VPMADDUBSW in int16 lanes (<= 8 * 768).
 *   TQ2_0: row i's halves at 128 (i / 2) + 32 (i % 2) and +64; codes as in the file layout.
 *   TQ1_0: row i's qs[0..31] at 32i give elements 0..159 directly; qs[32..47] of rows 2j, 2j + 1
 *          (32 bytes at 128 + 32j) and their qh trits come as [row 2j | row 2j + 1] vectors of 16
 *          elements, whose 128-bit halves are regrouped per row. */
#define TQ_TOK 16 /* tokens per GEMM tile */

BN_AI void tq_x4_codes(const uint8_t *p, const int tq1, __m256i c[4][8], tq1_k kk)
{
    if (!tq1) {
        for (int i = 0; i < 4; i++) {
            const uint8_t *r = p + 128 * (i / 2) + 32 * (i % 2);
            __m256i v0 = loadu(r), v1 = loadu(r + 64);
            for (int k = 0; k < 4; k++) {
                c[i][k] = tq2_code_vec(v0, k);
                c[i][4 + k] = tq2_code_vec(v1, k);
            }
        }
        return;
    }
    const __m256i qh = tq1_bias(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 192))));
    for (int j = 0; j < 2; j++) {
        tq1_trits5(loadu(p + 64 * j), c[2 * j], kk);
        tq1_trits5(loadu(p + 64 * j + 32), c[2 * j + 1], kk);
        __m256i v[5];
        tq1_trits5(loadu(p + 128 + 32 * j), v, kk);
        /* qh bytes of row 2j in the low lane, of row 2j + 1 in the high one */
        const __m256i pick = _mm256_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1);
        __m256i h = tq1_qh_trits_b(_mm256_permutevar8x32_epi32(qh, pick), kk);
        c[2 * j][5] = _mm256_permute2x128_si256(v[0], v[1], 0x20);
        c[2 * j][6] = _mm256_permute2x128_si256(v[2], v[3], 0x20);
        c[2 * j][7] = _mm256_permute2x128_si256(v[4], h, 0x20);
        c[2 * j + 1][5] = _mm256_permute2x128_si256(v[0], v[1], 0x31);
        c[2 * j + 1][6] = _mm256_permute2x128_si256(v[2], v[3], 0x31);
        c[2 * j + 1][7] = _mm256_permute2x128_si256(v[4], h, 0x31);
    }
}

/* sum(code * q) of one row's block in int16 lanes; the empty asm pins the running sum (see I2S_MA). */
BN_AI __m256i tq_row_dot16(const __m256i c[8], const int8_t *q)
{
    __m256i s0 = dot32(c[0], q), s1 = dot32(c[1], q + 32);
    for (int k = 2; k < 8; k += 2) {
        s0 = _mm256_add_epi16(s0, dot32(c[k], q + 32 * k));
        __asm__("" : "+x"(s0));
        s1 = _mm256_add_epi16(s1, dot32(c[k + 1], q + 32 * k + 32));
        __asm__("" : "+x"(s1));
    }
    return _mm256_add_epi16(s0, s1);
}

/* The four rows' int16 lane sums -> [row 0, 1, 2, 3] in int32, without VPHADDW (slow): two
 * rounds of interleave-and-add in int16 (4 * 6144 at most) leave per 128-bit half the rows in the
 * order 0, 2, 1, 3, 0, 2, 1, 3; a byte shuffle pairs each row's two lanes, VPMADDWD widens them. */
BN_AI __m128i tq_reduce4(__m256i s0, __m256i s1, __m256i s2, __m256i s3)
{
    const __m256i t01 = _mm256_add_epi16(_mm256_unpacklo_epi16(s0, s1), _mm256_unpackhi_epi16(s0, s1));
    const __m256i t23 = _mm256_add_epi16(_mm256_unpacklo_epi16(s2, s3), _mm256_unpackhi_epi16(s2, s3));
    const __m256i v = _mm256_add_epi16(_mm256_unpacklo_epi16(t01, t23), _mm256_unpackhi_epi16(t01, t23));
    const __m256i pair = _mm256_setr_epi8(0, 1, 8, 9, 4, 5, 12, 13, 2, 3, 10, 11, 6, 7, 14, 15, 0, 1, 8, 9, 4, 5, 12, 13, 2,
                                          3, 10, 11, 6, 7, 14, 15);
    const __m256i w = _mm256_madd_epi16(_mm256_shuffle_epi8(v, pair), _mm256_set1_epi16(1));
    return _mm_add_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

/* sumf += (float)(S - bsum) * (d_act * d_w) per lane, the reference's step; ws: the four fp16
 * scales (F16C widening gives the scalar decode's floats). */
BN_AI __m128 tq_x4_step(__m128 sumf, __m128i S, const bn_act_view *a, int64_t i, const uint8_t *ws)
{
    const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(const void *)ws));
    const __m128i sumi = _mm_sub_epi32(S, _mm_set1_epi32(a->sum[i]));
    return _mm_add_ps(sumf, _mm_mul_ps(_mm_cvtepi32_ps(sumi), _mm_mul_ps(_mm_set1_ps(a->d[i]), dw)));
}

/* sum(code * q) of a group's block for one token, [row 0, 1, 2, 3]: as tq_x4_codes with
 * tq_row_dot16, but each code vector meets its activations as soon as it is made (few live
 * registers, nothing goes through the stack). */
BN_AI __m128i tq_x4_sums(const uint8_t *p, const int8_t *q, const int tq1, tq1_k kk)
{
    __m256i s[4];
    if (!tq1) {
        for (int i = 0; i < 4; i++) {
            __m256i c[8];
            const uint8_t *r = p + 128 * (i / 2) + 32 * (i % 2);
            __m256i v0 = loadu(r), v1 = loadu(r + 64);
            for (int k = 0; k < 4; k++) {
                c[k] = tq2_code_vec(v0, k);
                c[4 + k] = tq2_code_vec(v1, k);
            }
            s[i] = tq_row_dot16(c, q);
        }
        return tq_reduce4(s[0], s[1], s[2], s[3]);
    }
    const __m256i qh = tq1_bias(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 192))));
    for (int j = 0; j < 2; j++) {
        __m256i y0 = tq1_bias(loadu(p + 64 * j)), y1 = tq1_bias(loadu(p + 64 * j + 32));
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (int n = 0; n < 5; n++) { /* elements 32n .. 32n + 31 of rows 2j, 2j + 1 */
            const __m256i a = loadu(q + 32 * n);
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(tq1_trit(y0, kk), a));
            __asm__("" : "+x"(s0));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(tq1_trit(y1, kk), a));
            __asm__("" : "+x"(s1));
            if (n < 4) y0 = tq1_mul3(y0), y1 = tq1_mul3(y1);
        }
        __m256i v = tq1_bias(loadu(p + 128 + 32 * j)); /* [row 2j | row 2j + 1], elements 160 + 16n + m */
        const __m256i pick = _mm256_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1);
        __m256i h = tq1_qh_trits_b(_mm256_permutevar8x32_epi32(qh, pick), kk);
        for (int n = 0; n < 5; n += 2) { /* elements 160 + 32(n/2) .. +31 */
            const __m256i a = loadu(q + 160 + 16 * n);
            const __m256i t0 = tq1_trit(v, kk);
            __m256i t1 = h;
            if (n < 4) {
                v = tq1_mul3(v);
                t1 = tq1_trit(v, kk);
                v = tq1_mul3(v);
            }
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_permute2x128_si256(t0, t1, 0x20), a));
            __asm__("" : "+x"(s0));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_permute2x128_si256(t0, t1, 0x31), a));
            __asm__("" : "+x"(s1));
        }
        s[2 * j] = s0;
        s[2 * j + 1] = s1;
    }
    return tq_reduce4(s[0], s[1], s[2], s[3]);
}

/* One token, one group g: y[0..3] for its rows. */
BN_AI void tq_x4_gemv(const uint8_t *g, int64_t nb, const bn_act_view *a, const int tq1, float *y)
{
    const size_t gb = tq1 ? 4 * 54 : 4 * 66;
    const tq1_k kk = tq1_consts();
    __m128 sumf = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + gb * (size_t)b;
        sumf = tq_x4_step(sumf, tq_x4_sums(p, a->q + 256 * b, tq1, kk), a, b, p + BN_TQ_X4_SCALES(gb / 4));
    }
    _mm_storeu_ps(y, sumf);
}

/* T <= TQ_TOK tokens from t0, one group g: each block decoded once into a buffer, then per row its
 * codes in registers against the T tokens; y[t * stride + i] for the group's rows i. */
BN_AI void tq_x4_gemm(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, int T, const int tq1, float *y,
                      int64_t stride)
{
    const size_t gb = tq1 ? 4 * 54 : 4 * 66;
    const int64_t K = a->cols;
    const tq1_k kk = tq1_consts();
    __m128 sumf[TQ_TOK];
    for (int t = 0; t < T; t++) sumf[t] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + gb * (size_t)b;
        const int8_t *q = a->q + t0 * K + 256 * b;
        __m256i c[4][8], s[TQ_TOK][4];
        tq_x4_codes(p, tq1, c, kk);
        for (int i = 0; i < 4; i++) {
            __m256i ci[8];
            for (int k = 0; k < 8; k++) ci[k] = c[i][k];
            for (int t = 0; t < T; t++) s[t][i] = tq_row_dot16(ci, q + t * K);
        }
        for (int t = 0; t < T; t++)
            sumf[t] = tq_x4_step(sumf[t], tq_reduce4(s[t][0], s[t][1], s[t][2], s[t][3]), a, (t0 + t) * nb + b,
                                 p + BN_TQ_X4_SCALES(gb / 4));
    }
    for (int t = 0; t < T; t++) _mm_storeu_ps(y + (t0 + t) * stride, sumf[t]);
}

static __attribute__((noinline)) void tq2_x4_gemv(const uint8_t *g, int64_t nb, const bn_act_view *a, float *y)
{
    tq_x4_gemv(g, nb, a, 0, y);
}
static __attribute__((noinline)) void tq1_x4_gemv(const uint8_t *g, int64_t nb, const bn_act_view *a, float *y)
{
    tq_x4_gemv(g, nb, a, 1, y);
}
static __attribute__((noinline)) void tq2_x4_gemm(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, int T,
                                                  float *y, int64_t stride)
{
    tq_x4_gemm(g, nb, a, t0, T, 0, y, stride);
}
static __attribute__((noinline)) void tq1_x4_gemm(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, int T,
                                                  float *y, int64_t stride)
{
    tq_x4_gemm(g, nb, a, t0, T, 1, y, stride);
}

/* Rows [r0, r1): whole groups of the repacked copy through the x4 kernels (a GEMM in tiles of
 * groups whose weights stay in L2 while the tokens go by TQ_TOK at a time), other rows in the
 * file layout. */
BN_AI void mm_tq_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, const int tq1)
{
    const void *pk = bn_weight_packed(w); /* once: another thread may publish it meanwhile */
    const int64_t nb = w->cols / 256, gend = pk ? w->rows & ~(int64_t)3 : 0;
    const size_t rb = (size_t)nb * (tq1 ? 54 : 66);
    int64_t g0 = (r0 + 3) & ~(int64_t)3, g1 = r1 & ~(int64_t)3;
    if (g1 > gend) g1 = gend;
    if (g0 >= g1) {
        tq_file_rows(w, pk, a, y, r0, r1, tq1);
        return;
    }
    tq_file_rows(w, pk, a, y, r0, g0, tq1);
    const uint8_t *base = pk;
    if (a->n_tok == 1) {
        for (int64_t r = g0; r < g1; r += 4) {
            if (tq1) tq1_x4_gemv(base + (size_t)r * rb, nb, a, y + r);
            else tq2_x4_gemv(base + (size_t)r * rb, nb, a, y + r);
        }
    } else {
        int64_t tile = (int64_t)(131072 / (4 * rb)) * 4; /* rows whose weights stay in L2 */
        if (tile < 4) tile = 4;
        for (int64_t rt = g0; rt < g1; rt += tile) {
            const int64_t rend = rt + tile < g1 ? rt + tile : g1;
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += TQ_TOK) {
                const int T = (int)(a->n_tok - t0 < TQ_TOK ? a->n_tok - t0 : TQ_TOK);
                for (int64_t r = rt; r < rend; r += 4) {
                    if (tq1) tq1_x4_gemm(base + (size_t)r * rb, nb, a, t0, T, y + r, w->rows);
                    else tq2_x4_gemm(base + (size_t)r * rb, nb, a, t0, T, y + r, w->rows);
                }
            }
        }
    }
    tq_file_rows(w, pk, a, y, g1, r1, tq1);
}

static void mm_tq2_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq_avx2(w, a, y, r0, r1, 0);
}

static void mm_tq1_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq_avx2(w, a, y, r0, r1, 1);
}

/* ---- Q8_0 ----
 * |w| (u8, 128 at most) times q with w's sign moved onto it (q is never -128: see above), then as
 * for TQ: four (row, token) pairs per tile, four block sums reduced together, float steps in lanes. */

BN_AI __m256i q8_0_block_dot(const uint8_t *blk, const int8_t *q)
{
    __m256i wq = loadu(blk + 2), aq = loadu(q);
    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

#include "kernels/kernels_x86_blocks.h"

BN_AI void q8_0_tile(const uint8_t *row0, size_t rb, int64_t nb, const bn_act_view *a, int64_t t0, const int R,
                     const int T, float *out)
{
    const int64_t K = a->cols;
    __m128 sumf = _mm_setzero_ps();
    float sf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        uint16_t wh[4] = {0, 0, 0, 0};
        for (int ri = 0; ri < R; ri++) {
            const uint8_t *blk = row0 + (size_t)ri * rb + 34 * (size_t)b;
            memcpy(&wh[ri], blk, 2);
            for (int ti = 0; ti < T; ti++) s[ri * T + ti] = q8_0_block_dot(blk, a->q + (t0 + ti) * K + 32 * b);
        }
        if (R * T == 1) { /* a GEMV: a plain reduction is cheaper */
            sf += (float)hsum_i32(s[0]) * (f16_scalar(row0 + 34 * (size_t)b) * a->d[t0 * (K / 32) + b]);
            continue;
        }
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        __m128i S = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        /* lane p is row p / T, token p % T; lanes past R * T repeat a valid one */
        const float *adb = a->d + t0 * (K / 32) + b;
        int64_t st = K / 32;
        __m128 ad = T == 1 ? _mm_set1_ps(adb[0])
                           : _mm_setr_ps(adb[0], adb[st * (T > 1)], adb[st * (T > 2 ? 2 : 0)], adb[st * (T > 3 ? 3 : 0)]);
        /* F16C widening gives the same floats as the scalar fp16 decode */
        __m128 wd = R == 1 ? _mm_set1_ps(bn_fp16_to_fp32(wh[0]))
                           : _mm_cvtph_ps(_mm_setr_epi16((short)wh[0], (short)wh[1], (short)wh[2], (short)wh[3], 0, 0, 0, 0));
        __m128 d = _mm_mul_ps(wd, ad);
        sumf = _mm_add_ps(sumf, _mm_mul_ps(_mm_cvtepi32_ps(S), d)); /* sumf += (float)sumi * (d_w * d_a) */
    }
    if (R * T == 1) {
        out[0] = sf;
        return;
    }
    float o[4];
    _mm_storeu_ps(o, sumf);
    for (int p = 0; p < R * T; p++) out[p] = o[p];
}

static void mm_q8_0_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t nb = w->cols / 32;
    const size_t rb = (size_t)nb * 34;
    const uint8_t *base = w->data;
    float out[4];
    if (a->n_tok == 1) {
        /* one row at a time, as for TQ (see mm_tq) */
        for (int64_t r = r0; r < r1; r++) y[r] = q8_0_gemv_row(base + (size_t)r * rb, nb, a->q, a->d);
        return;
    }
    const int64_t R = row_tile(rb);
    for (int64_t rt = r0; rt < r1; rt += R) {
        int64_t rend = rt + R < r1 ? rt + R : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4) {
            int64_t T = a->n_tok - t0 < 4 ? a->n_tok - t0 : 4;
            for (int64_t r = rt; r < rend; r++) {
                const uint8_t *row = base + (size_t)r * rb;
                switch (T) {
                case 1: q8_0_tile(row, rb, nb, a, t0, 1, 1, out); break;
                case 2: q8_0_tile(row, rb, nb, a, t0, 1, 2, out); break;
                case 3: q8_0_tile(row, rb, nb, a, t0, 1, 3, out); break;
                default: q8_0_tile(row, rb, nb, a, t0, 1, 4, out); break;
                }
                for (int64_t t = 0; t < T; t++) y[(t0 + t) * w->rows + r] = out[t];
            }
        }
    }
}

/* ---- Q6_K ----
 * Block: ql[128] qh[64] scales[16] (int8) d (fp16); element values v - 32 with v in 0..63.  The
 * integer sum is sum_j scale_j * sum_{16 elements} (v - 32) * q, computed as
 * sum_j scale_j * (sum v*q) - 32 * sum_j scale_j * bsum_j with the activations' 16-element sums.
 * maddubs(v <= 63, |q| <= 128) pairs stay <= 2*63*128 = 16128; madd with the scales gives int32. */

BN_AI __m256i q6k_block_acc(const uint8_t *blk, const int8_t *q, const int16_t *bsums)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03), mC = _mm256_set1_epi8(0x0c);
    const __m256i m30 = _mm256_set1_epi8(0x30), mC0 = _mm256_set1_epi8((char)0xc0);
    /* the 16 scales as int16, sc[0..7] in both halves of one register and sc[8..15] in the other;
     * a per-k byte shuffle then broadcasts scale 2k' to the low half and 2k' + 1 to the high one */
    const __m256i sw = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
    const __m256i sw_lo = _mm256_permute4x64_epi64(sw, 0x44), sw_hi = _mm256_permute4x64_epi64(sw, 0xee);
    /* the -32 offset: 32 * sum_j scale_j * bsum_j, in int32 lanes (|scale * bsum| <= 128 * 2048) */
    __m256i acc = _mm256_slli_epi32(_mm256_madd_epi16(sw, loadu(bsums)), 5);
    acc = _mm256_sub_epi32(_mm256_setzero_si256(), acc);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        __m256i l0 = loadu(ql), l1 = loadu(ql + 32), hb = loadu(qh);
        __m256i v[4];
        v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
        v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(hb, mC), 2));
        v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
        v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_srli_epi16(_mm256_and_si256(hb, mC0), 2));
        const __m256i src = h ? sw_hi : sw_lo;
        for (int k = 0; k < 4; k++) {
            /* elements 128h + 32k .. +31: scales sc[8h + 2k] (first 16) and sc[8h + 2k + 1] */
            const char e0 = (char)(4 * k), e1 = (char)(4 * k + 2); /* byte offsets of int16 2k, 2k + 1 */
            const __m256i pick = _mm256_setr_epi8(e0, (char)(e0 + 1), e0, (char)(e0 + 1), e0, (char)(e0 + 1), e0,
                                                  (char)(e0 + 1), e0, (char)(e0 + 1), e0, (char)(e0 + 1), e0,
                                                  (char)(e0 + 1), e0, (char)(e0 + 1), e1, (char)(e1 + 1), e1,
                                                  (char)(e1 + 1), e1, (char)(e1 + 1), e1, (char)(e1 + 1), e1,
                                                  (char)(e1 + 1), e1, (char)(e1 + 1), e1, (char)(e1 + 1), e1,
                                                  (char)(e1 + 1));
            __m256i s16 = _mm256_shuffle_epi8(src, pick);
            __m256i p = _mm256_maddubs_epi16(v[k], loadu(q + 128 * h + 32 * k));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, s16));
        }
    }
    return acc;
}

/* A block's integer sum (8 int32 lanes of q6k_block_acc added). */
BN_AI int32_t q6k_block_isum(const uint8_t *blk, const int8_t *q, const int16_t *bsums)
{
    return hsum_i32(q6k_block_acc(blk, q, bsums));
}

/* One row against one token, eight blocks at a time as Q8_0's (kernels_x86_blocks.h). */
BN_AI float q6k_gemv_row(const uint8_t *row, int64_t nb, const int8_t *q, const float *ad, const int16_t *bs)
{
    float sumf = 0.0f;
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i s[8];
        uint16_t dh[8];
        for (int i = 0; i < 8; i++) {
            const uint8_t *blk = row + (size_t)(b + i) * 210;
            s[i] = q6k_block_acc(blk, q + 256 * (b + i), bs + 16 * (b + i));
            memcpy(&dh[i], blk + 208, 2);
        }
        sumf = bn_x86_add8(sumf, bn_x86_sum8(s), dh, ad + b);
    }
    for (; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * 210;
        sumf += (float)q6k_block_isum(blk, q + 256 * b, bs + 16 * b) * (f16_scalar(blk + 208) * ad[b]);
    }
    return sumf;
}

static void mm_q6_K_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols, nb = K / 256;
    const uint8_t *base = w->data;
    if (a->n_tok == 1) {
        for (int64_t r = r0; r < r1; r++) y[r] = q6k_gemv_row(base + (size_t)r * (size_t)nb * 210, nb, a->q, a->d, a->bsums);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = base + (size_t)r * (size_t)nb * 210;
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int8_t *q = a->q + t * K;
            const float *ad = a->d + t * nb;
            const int16_t *bs = a->bsums + t * (K / 16);
            float sumf = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * 210;
                int32_t isum = q6k_block_isum(blk, q + 256 * b, bs + 16 * b);
                sumf += (float)isum * (f16_scalar(blk + 208) * ad[b]);
            }
            y[t * w->rows + r] = sumf;
        }
    }
}

/* ---- F16 / BF16 / F32: 32 running sums in ggml's order (kernels_impl.h) ---- */

BN_AI float reduce4x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 v = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_hadd_ps(t, t);
    t = _mm_hadd_ps(t, t);
    return _mm_cvtss_f32(t);
}

enum { FL_F16, FL_BF16, FL_F32 };

BN_AI __m256 load8(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    if (kind == FL_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i))), 16));
    return _mm256_loadu_ps((const float *)p + i);
}

BN_AI float load1(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return bn_fp16_to_fp32(((const uint16_t *)p)[i]);
    if (kind == FL_BF16) return bn_bf16_to_fp32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* One weight row against T token rows. */
BN_AI void float_row(const void *wr, const void *x0, int64_t K, const int T, const int kind, const int xkind,
                      float *out)
{
    const size_t esz = xkind == FL_F32 ? 4 : 2; /* of the activations */
    __m256 acc[3][4];
    for (int t = 0; t < T; t++)
        for (int j = 0; j < 4; j++) acc[t][j] = _mm256_setzero_ps();
    int64_t np = K & ~(int64_t)31;
    /* a batch prefetches the weights four rows on (rows follow each other), so that streaming
     * rows' loads overlap the FMAs, as in the AVX-512 kernel */
    const size_t wesz = kind == FL_F32 ? 4 : 2, ahead = 4 * (size_t)K * wesz;
    for (int64_t k = 0; k < np; k += 32) {
        if (T > 1) _mm_prefetch((const char *)wr + ahead + (size_t)k * wesz, _MM_HINT_T0);
        __m256 wv[4];
        for (int j = 0; j < 4; j++) wv[j] = load8(wr, k + 8 * j, kind);
        for (int t = 0; t < T; t++) {
            const void *x = (const uint8_t *)x0 + (size_t)t * (size_t)K * esz;
            for (int j = 0; j < 4; j++) acc[t][j] = _mm256_fmadd_ps(wv[j], load8(x, k + 8 * j, xkind), acc[t][j]);
        }
    }
    for (int t = 0; t < T; t++) {
        const void *x = (const uint8_t *)x0 + (size_t)t * (size_t)K * esz;
        double s = reduce4x8(acc[t][0], acc[t][1], acc[t][2], acc[t][3]);
        for (int64_t k = np; k < K; k++) s += (double)(load1(wr, k, kind) * load1(x, k, xkind));
        out[t] = (float)s;
    }
}

BN_AI void mm_float_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, const int kind)
{
    const int64_t K = w->cols;
    const size_t esz = kind == FL_F32 ? 4 : 2, rb = (size_t)K * esz;
    const uint8_t *base = w->data;
    /* a batch's f16/bf16 activations come already widened to float (the same values) */
    const int xk = kind != FL_F32 && a->hf ? FL_F32 : kind;
    const uint8_t *xs = xk == FL_F32 ? (const uint8_t *)(kind == FL_F32 ? a->x : a->hf) : (const uint8_t *)a->h;
    const size_t xrb = (size_t)K * (xk == FL_F32 ? 4 : 2);
    const int64_t R = row_tile(rb);
    for (int64_t rt = r0; rt < r1; rt += R) {
        int64_t rend = rt + R < r1 ? rt + R : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 3) {
            int64_t T = a->n_tok - t0 < 3 ? a->n_tok - t0 : 3;
            const uint8_t *x = xs + (size_t)t0 * xrb;
            for (int64_t r = rt; r < rend; r++) {
                float out[3];
                const uint8_t *row = base + (size_t)r * rb;
                switch (T) {
                case 1: float_row(row, x, K, 1, kind, xk, out); break;
                case 2: float_row(row, x, K, 2, kind, xk, out); break;
                default: float_row(row, x, K, 3, kind, xk, out); break;
                }
                for (int64_t t = 0; t < T; t++) y[(t0 + t) * w->rows + r] = out[t];
            }
        }
    }
}

static void mm_f16_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float_avx2(w, a, y, r0, r1, FL_F16);
}

static void mm_bf16_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float_avx2(w, a, y, r0, r1, FL_BF16);
}

static void mm_f32_avx2(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float_avx2(w, a, y, r0, r1, FL_F32);
}

/* ---- activations ----
 * bn_quantize_act_i8 eight values at a time, with the same operations in the same order for each
 * value (the largest |x|, which is exact in any order and skips NaNs: VMAXPS returns its second
 * operand when the first is NaN; then x * s rounded half to even through the float adder and
 * clamped), so the bits are the reference's. */
static float act_i8_avx2(const float *x, int64_t n, int8_t *q, int32_t *sum)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mv = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), mv);
    float lanes[8], m = 0.0f;
    _mm256_storeu_ps(lanes, mv);
    for (int j = 0; j < 8; j++) m = lanes[j] > m ? lanes[j] : m;
    for (; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        m = a > m ? a : m;
    }
    const double max = (double)m > 0.00001 ? (double)m : 0.00001;
    const float s = (float)(127.0 / max);
    const __m256 sv = _mm256_set1_ps(s), magic = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-128);
    __m256i acc = _mm256_setzero_si256();
    i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; j++) {
            __m256 f = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), sv), magic);
            __m256i iv = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(f), mant), bias);
            v[j] = _mm256_max_epi32(_mm256_min_epi32(iv, hi), lo);
            acc = _mm256_add_epi32(acc, v[j]);
        }
        /* the values are already in range, so the saturating packs are plain narrowing; the packs
         * work per 128-bit lane, and the permute puts the four groups back in order */
        __m256i w01 = _mm256_packs_epi32(v[0], v[1]), w23 = _mm256_packs_epi32(v[2], v[3]);
        __m256i b = _mm256_packs_epi16(w01, w23);
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), b);
    }
    int32_t total = hsum_i32(acc);
    for (; i < n; i++) {
        float f = x[i] * s + 12582912.f;
        int32_t bits;
        memcpy(&bits, &f, 4);
        int v = (bits & 0x007fffff) - 0x00400000;
        v = v > 127 ? 127 : v < -128 ? -128 : v;
        q[i] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

const bn_kernel_table bn_kernels_avx2 = {
    .mm =
        {
            [BN_TYPE_I2_S] = mm_i2s_avx2,
            [BN_TYPE_TQ2_0] = mm_tq2_avx2,
            [BN_TYPE_TQ1_0] = mm_tq1_avx2,
            [BN_TYPE_Q8_0] = mm_q8_0_avx2,
            [BN_TYPE_Q6_K] = mm_q6_K_avx2,
            [BN_TYPE_F16] = mm_f16_avx2,
            [BN_TYPE_BF16] = mm_bf16_avx2,
            [BN_TYPE_F32] = mm_f32_avx2,
        },
    .row_align = 4,
    .act_i8 = act_i8_avx2,
    .i2s_x4 = 1,
    .tq_group = 4,
};
