/* WebAssembly SIMD128 kernels (plain SIMD128: no relaxed-SIMD, whose results may differ between
 * engines).  Same results as the reference, bit for bit: integer sums are exact, float steps are
 * the reference's in its order (kernels_ref.c, kernels_impl.h).
 *
 * Integer ranges.  i16x8.extmul of a ternary code (0..3; 3 only in a corrupt file) and q (-128..127)
 * is at most 384 in magnitude.
 *   I2_S: a 128-element block adds 16 products per int16 lane (<= 6144); the int16 sums are widened
 *         (i32x4.dot_i16x8 with ones) every 4 blocks (<= 24576 < 32767).  An int32 lane then gains
 *         at most 2 * 24576 per 512 elements: below 2^31 for K < 2^24 (bn_weight_init's limit).
 *   TQ2_0/TQ1_0: a 256-element block adds 32 products per lane (<= 12288), widened per block.
 *   Q8_0: int8 x int8 pairs summed by i32x4.dot_i16x8 straight into int32 (no int16 sum at all).
 *   Q6_K: (v - 32) in -32..31 times q: two products per int16 lane (<= 2 * 32 * 128 = 8192), then
 *         i32x4.dot_i16x8 with the 16-element group's scale (|scale| <= 128) into int32.
 * The worst cases (every code +1 or 3, every q -128 or 127, K up to 65536) are tested
 * (tests/wasm).
 *
 * Floats.  SIMD128 has no fused multiply-add, and the F32 reference sums with fmaf; the F32 kernel
 * computes each fused step exactly in f64 lanes, rounds the sum to odd, then to float, which is
 * the correctly rounded a*b+c (see fma4).  F16/BF16 products are exact in float, so there a
 * multiply then an add equals the fused step.
 *
 * WebAssembly has no run-time feature detection: a module either validates with SIMD128 or not,
 * so this table is chosen when the build targets SIMD128 (cpu.c). */
#if defined(__wasm_simd128__)

#include <string.h>
#include <wasm_simd128.h>

#include "common/fp16.h"
#include "kernels/kernels_impl.h"

#define BN_AI static inline __attribute__((always_inline))

static float f16_scalar(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

BN_AI v128_t ld(const void *p) { return wasm_v128_load(p); }

BN_AI int32_t hsum_i32(v128_t v)
{
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_i32x4_extract_lane(v, 0);
}

/* sum of codes * q over 16 elements, two products per int16 lane */
BN_AI v128_t mul16(v128_t codes, v128_t q)
{
    return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(codes, q), wasm_i16x8_extmul_high_i8x16(codes, q));
}

/* sum of c[j] * q[16j .. 16j+15] over j < n (n even), as int16 lanes of 2n products each */
BN_AI v128_t dot_codes(const v128_t *c, const int8_t *q, const int n)
{
    v128_t s = wasm_i16x8_add(mul16(c[0], ld(q)), mul16(c[1], ld(q + 16)));
    for (int j = 2; j < n; j += 2)
        s = wasm_i16x8_add(s, wasm_i16x8_add(mul16(c[j], ld(q + 16 * j)), mul16(c[j + 1], ld(q + 16 * j + 16))));
    return s;
}

/* int16 lanes -> pair sums in int32 lanes */
BN_AI v128_t widen(v128_t s16) { return wasm_i32x4_dot_i16x8(s16, wasm_i16x8_splat(1)); }

/* Rows of a thread's share are taken in tiles whose weights fit in a part of L1, and tokens in
 * groups of up to 4, so a GEMM decodes each weight block once per token group and reads it from
 * cache rather than from memory for every token. */
static int64_t row_tile(size_t row_bytes)
{
    int64_t r = (int64_t)(12288 / (row_bytes ? row_bytes : 1));
    return r < 1 ? 1 : r > 64 ? 64 : r;
}

/* Computes out[0..T) = y[t0 .. t0+T-1][r] for one row and T <= 4 tokens. */
typedef void (*tile_fn)(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, int T, float *out);

static void for_tiles(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, size_t rb,
                      tile_fn tile)
{
    const int64_t R = row_tile(rb);
    for (int64_t rt = r0; rt < r1; rt += R) {
        int64_t rend = rt + R < r1 ? rt + R : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4) {
            int T = a->n_tok - t0 < 4 ? (int)(a->n_tok - t0) : 4;
            for (int64_t r = rt; r < rend; r++) {
                float out[4];
                tile(w, a, r, t0, T, out);
                for (int t = 0; t < T; t++) y[(t0 + t) * w->rows + r] = out[t];
            }
        }
    }
}

/* A tile_fn from an always-inlined body taking the token count as a constant (so its per-token
 * arrays live in registers). */
#define BN_TILE_FN(name, body)                                                                    \
    static void name(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, int T, float *out) \
    {                                                                                             \
        switch (T) {                                                                              \
        case 1: body(w, a, r, t0, 1, out); break;                                                 \
        case 2: body(w, a, r, t0, 2, out); break;                                                 \
        case 3: body(w, a, r, t0, 3, out); break;                                                 \
        default: body(w, a, r, t0, 4, out); break;                                                \
        }                                                                                         \
    }

/* ---- block decoders: codes in element order, 16 per vector ----
 * Shifts are 16-bit (one instruction on every engine; 8-bit shifts are emulated) and the mask
 * drops the bits a 16-bit shift drags in from the neighbouring byte. */

BN_AI v128_t bits2(v128_t v, int shift)
{
    const v128_t m3 = wasm_i8x16_splat(3);
    return wasm_v128_and(shift ? wasm_u16x8_shr(v, shift) : v, m3);
}

/* I2_S: byte j of the block's 32 holds elements j, 32+j, 64+j, 96+j from the high bits down. */
BN_AI void i2s_codes(const uint8_t *blk, v128_t c[8])
{
    v128_t lo = ld(blk), hi = ld(blk + 16);
    for (int k = 0; k < 4; k++) {
        c[2 * k] = bits2(lo, 6 - 2 * k);
        c[2 * k + 1] = bits2(hi, 6 - 2 * k);
    }
}

/* TQ2_0: in each 32-byte half, byte m holds elements m, m+32, m+64, m+96 from the low bits up. */
BN_AI void tq2_codes(const uint8_t *blk, v128_t c[16])
{
    for (int h = 0; h < 2; h++) {
        v128_t lo = ld(blk + 32 * h), hi = ld(blk + 32 * h + 16);
        for (int k = 0; k < 4; k++) {
            c[8 * h + 2 * k] = bits2(lo, 2 * k);
            c[8 * h + 2 * k + 1] = bits2(hi, 2 * k);
        }
    }
}

/* TQ1_0: trit n of byte b = ((uint8)(b * 3^n) * 3) >> 8, each step in 16-bit lanes from a
 * widening multiply (b * 3^n < 2^16).  Written so that the compiler keeps it in vectors:
 * WebAssembly has no 8-bit multiply, and chains of byte adds get folded into one and scalarised. */
BN_AI v128_t trits(v128_t b, v128_t pw)
{
    const v128_t m255 = wasm_i16x8_splat(0xff), k3 = wasm_i16x8_splat(3);
    v128_t lo = wasm_v128_and(wasm_u16x8_extmul_low_u8x16(b, pw), m255);
    v128_t hi = wasm_v128_and(wasm_u16x8_extmul_high_u8x16(b, pw), m255);
    lo = wasm_u16x8_shr(wasm_i16x8_mul(lo, k3), 8);
    hi = wasm_u16x8_shr(wasm_i16x8_mul(hi, k3), 8);
    return wasm_u8x16_narrow_i16x8(lo, hi); /* 0..2 */
}

BN_AI void tq1_codes(const uint8_t *blk, v128_t c[16])
{
    /* qs[0..31]: element 32n + m; qs[32..47]: element 160 + 16n + m; qh[0..3]: element 240 + 4n + m */
    v128_t a = ld(blk), b = ld(blk + 16), e = ld(blk + 32);
    static const uint8_t p3[5] = {1, 3, 9, 27, 81};
    for (int n = 0; n < 5; n++) {
        v128_t pw = wasm_u8x16_splat(p3[n]);
        c[2 * n] = trits(a, pw);
        c[2 * n + 1] = trits(b, pw);
        c[10 + n] = trits(e, pw);
    }
    uint32_t qh;
    memcpy(&qh, blk + 48, 4);
    c[15] = trits(wasm_i32x4_splat((int32_t)qh), wasm_u8x16_make(1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27));
}

/* ---- I2_S ---- */

BN_AI void i2s_tile(const uint8_t *row, int64_t nblk, const int8_t *q0, int64_t K, const int T, int32_t *out)
{
    v128_t acc[4];
    for (int t = 0; t < T; t++) acc[t] = wasm_i32x4_splat(0);
    for (int64_t b = 0; b < nblk;) {
        int64_t bend = b + 4 < nblk ? b + 4 : nblk;
        v128_t a16[4];
        for (int t = 0; t < T; t++) a16[t] = wasm_i16x8_splat(0);
        for (; b < bend; b++) {
            v128_t c[8];
            i2s_codes(row + 32 * b, c);
            for (int t = 0; t < T; t++) {
                const int8_t *q = q0 + t * K + 128 * b;
                a16[t] = wasm_i16x8_add(a16[t], dot_codes(c, q, 8));
            }
        }
        for (int t = 0; t < T; t++) acc[t] = wasm_i32x4_add(acc[t], widen(a16[t]));
    }
    for (int t = 0; t < T; t++) out[t] = hsum_i32(acc[t]);
}

BN_AI void i2s_call(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, const int T, float *out)
{
    const int64_t K = w->cols;
    int32_t acc[4];
    i2s_tile((const uint8_t *)w->data + r * (K / 4), K / 128, a->q + t0 * K, K, T, acc);
    for (int t = 0; t < T; t++) out[t] = ((float)acc[t] - (float)a->sum[t0 + t]) / a->d[t0 + t] * w->scale;
}

BN_TILE_FN(i2s_tile_fn, i2s_call)

static void mm_i2s_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    for_tiles(w, a, y, r0, r1, (size_t)(w->cols / 4), i2s_tile_fn);
}

/* ---- TQ2_0 / TQ1_0 ---- */

BN_AI void tq_tile(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, const int T, const int tq1,
                   float *out)
{
    const int64_t K = a->cols, nb = K / 256;
    const size_t bsz = tq1 ? 54 : 66;
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)nb * bsz;
    float sumf[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + bsz * (size_t)b;
        v128_t c[16];
        if (tq1) tq1_codes(blk, c);
        else tq2_codes(blk, c);
        const float wd = f16_scalar(blk + bsz - 2);
        for (int t = 0; t < T; t++) {
            const int8_t *q = a->q + (t0 + t) * K + 256 * b;
            const int64_t i = (t0 + t) * nb + b;
            int32_t sumi = hsum_i32(widen(dot_codes(c, q, 16))) - a->sum[i]; /* sum((code - 1) * q) */
            float d = a->d[i] * wd;
            sumf[t] += (float)sumi * d; /* the reference's order */
        }
    }
    for (int t = 0; t < T; t++) out[t] = sumf[t];
}

BN_AI void tq2_call(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, const int T, float *out)
{
    tq_tile(w, a, r, t0, T, 0, out);
}

BN_AI void tq1_call(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, const int T, float *out)
{
    tq_tile(w, a, r, t0, T, 1, out);
}

BN_TILE_FN(tq2_tile_fn, tq2_call)
BN_TILE_FN(tq1_tile_fn, tq1_call)

static void mm_tq2_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    for_tiles(w, a, y, r0, r1, (size_t)(w->cols / 256) * 66, tq2_tile_fn);
}

static void mm_tq1_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    for_tiles(w, a, y, r0, r1, (size_t)(w->cols / 256) * 54, tq1_tile_fn);
}

/* ---- Q8_0 ---- */

BN_AI void q8_0_tile(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, const int T, float *out)
{
    const int64_t K = a->cols, nb = K / 32;
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)nb * 34;
    float sumf[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + 34 * (size_t)b;
        v128_t w0 = ld(blk + 2), w1 = ld(blk + 18);
        v128_t wv[4] = {wasm_i16x8_extend_low_i8x16(w0), wasm_i16x8_extend_high_i8x16(w0),
                        wasm_i16x8_extend_low_i8x16(w1), wasm_i16x8_extend_high_i8x16(w1)};
        const float wd = f16_scalar(blk);
        for (int t = 0; t < T; t++) {
            const int8_t *q = a->q + (t0 + t) * K + 32 * b;
            v128_t q0 = ld(q), q1 = ld(q + 16);
            v128_t s = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wv[0], wasm_i16x8_extend_low_i8x16(q0)),
                                      wasm_i32x4_dot_i16x8(wv[1], wasm_i16x8_extend_high_i8x16(q0)));
            s = wasm_i32x4_add(s, wasm_i32x4_add(wasm_i32x4_dot_i16x8(wv[2], wasm_i16x8_extend_low_i8x16(q1)),
                                                 wasm_i32x4_dot_i16x8(wv[3], wasm_i16x8_extend_high_i8x16(q1))));
            sumf[t] += (float)hsum_i32(s) * (wd * a->d[(t0 + t) * nb + b]);
        }
    }
    for (int t = 0; t < T; t++) out[t] = sumf[t];
}

BN_TILE_FN(q8_0_tile_fn, q8_0_tile)

static void mm_q8_0_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    for_tiles(w, a, y, r0, r1, (size_t)(w->cols / 32) * 34, q8_0_tile_fn);
}

/* ---- Q6_K ----
 * Block: ql[128] qh[64] scales[16] (int8) d (fp16).  Per 128-element half h, element group j
 * (16 elements, 16j .. 16j+15 of the half) has scale sc[8h + j]; its 6-bit values are a nibble of
 * ql (low nibbles for j < 4) with 2 bits of qh above it:
 *   j = 0,1: ql[0..31] & 15 | (qh & 3) << 4      j = 2,3: ql[32..63] & 15 | (qh >> 2 & 3) << 4
 *   j = 4,5: ql[0..31] >> 4 | (qh >> 4 & 3) << 4 j = 6,7: ql[32..63] >> 4 | (qh >> 6 & 3) << 4
 * with qh[0..15] for even j and qh[16..31] for odd j. */

BN_AI void q6k_values(const uint8_t *blk, int h, v128_t v[8])
{
    const v128_t m4 = wasm_i8x16_splat(0x0f), m30 = wasm_i8x16_splat(0x30), k32 = wasm_i8x16_splat(32);
    const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
    v128_t l[4] = {ld(ql), ld(ql + 16), ld(ql + 32), ld(ql + 48)};
    v128_t hb[2] = {ld(qh), ld(qh + 16)};
    for (int j = 0; j < 8; j++) {
        v128_t lv = l[j & 3];
        v128_t lo = j < 4 ? wasm_v128_and(lv, m4) : wasm_v128_and(wasm_u16x8_shr(lv, 4), m4);
        int hs = 2 * (j >> 1); /* qh bits 0-1, 2-3, 4-5, 6-7 for j = 0-1, 2-3, 4-5, 6-7 */
        v128_t hv = hs <= 4 ? wasm_i16x8_shl(hb[j & 1], 4 - hs) : wasm_u16x8_shr(hb[j & 1], hs - 4);
        v[j] = wasm_i8x16_sub(wasm_v128_or(lo, wasm_v128_and(hv, m30)), k32); /* -32 .. 31 */
    }
}

BN_AI void q6k_tile(const bn_weight *w, const bn_act_view *a, int64_t r, int64_t t0, const int T, float *out)
{
    const int64_t K = a->cols, nb = K / 256;
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)nb * 210;
    float sumf[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + 210 * (size_t)b;
        const int8_t *sc = (const int8_t *)(blk + 192);
        v128_t acc[4];
        for (int t = 0; t < T; t++) acc[t] = wasm_i32x4_splat(0);
        for (int h = 0; h < 2; h++) {
            v128_t v[8];
            q6k_values(blk, h, v);
            for (int j = 0; j < 8; j++) {
                v128_t s16 = wasm_i16x8_splat(sc[8 * h + j]);
                for (int t = 0; t < T; t++) {
                    const int8_t *q = a->q + (t0 + t) * K + 256 * b + 128 * h + 16 * j;
                    acc[t] = wasm_i32x4_add(acc[t], wasm_i32x4_dot_i16x8(mul16(v[j], ld(q)), s16));
                }
            }
        }
        const float wd = f16_scalar(blk + 208);
        for (int t = 0; t < T; t++) sumf[t] += (float)hsum_i32(acc[t]) * (wd * a->d[(t0 + t) * nb + b]);
    }
    for (int t = 0; t < T; t++) out[t] = sumf[t];
}

BN_TILE_FN(q6k_tile_fn, q6k_tile)

static void mm_q6_K_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    for_tiles(w, a, y, r0, r1, (size_t)(w->cols / 256) * 210, q6k_tile_fn);
}

/* ---- F16 / BF16 / F32: the reference's 32 running sums as 8 vectors of 4 (kernels_impl.h) ---- */

enum { FL_F16, FL_BF16, FL_F32 };

/* Four fp16 values (sign-extended into 32-bit lanes, so bit 31 is the sign) to float, exactly as
 * bn_fp16_to_fp32: exponent and mantissa moved to float's places and scaled by 2^112 (exact,
 * subnormals included); what comes out at 2^16 or more was an infinity or NaN and gets float's
 * all-ones exponent over the same mantissa.  (Float compares and plain and/or: formulations with
 * 16-bit compares let the compiler turn them into byte shuffles that run several times slower.) */
BN_AI v128_t f16x4_to_f32(v128_t h)
{
    v128_t em = wasm_v128_and(h, wasm_i32x4_splat(0x7fff));
    v128_t v = wasm_f32x4_mul(wasm_i32x4_shl(em, 13), wasm_f32x4_splat(0x1p112f));
    v128_t special = wasm_f32x4_ge(v, wasm_f32x4_splat(65536.0f));
    v = wasm_v128_or(v, wasm_v128_and(special, wasm_i32x4_splat(0x7f800000)));
    return wasm_v128_or(v, wasm_v128_and(h, wasm_i32x4_splat((int32_t)0x80000000u)));
}

BN_AI v128_t load4(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return f16x4_to_f32(wasm_i32x4_load16x4((const int16_t *)p + i));
    if (kind == FL_BF16) return wasm_i32x4_shl(wasm_u32x4_load16x4((const uint16_t *)p + i), 16);
    return ld((const float *)p + i);
}

BN_AI float load1(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return bn_fp16_to_fp32(((const uint16_t *)p)[i]);
    if (kind == FL_BF16) return bn_bf16_to_fp32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* a*b + c rounded once, in two f64 lanes: a*b is exact in double; s = a*b + c rounds, and TwoSum
 * gives its exact error e.  Where e != 0 and s's last bit is even, s moves one unit towards e: that
 * rounds the exact sum to odd in 53 bits, and rounding that to float's 24 bits gives the correctly
 * rounded result (53 >= 24 + 2).  Infinities and NaNs make e NaN, which leaves s alone.  The exact
 * sum is never zero with e != 0, never near double's range limits (float inputs). */
BN_AI v128_t fma2_f64(v128_t a, v128_t b, v128_t c)
{
    v128_t p = wasm_f64x2_mul(a, b);
    v128_t s = wasm_f64x2_add(p, c);
    v128_t bv = wasm_f64x2_sub(s, p), av = wasm_f64x2_sub(s, bv);
    v128_t e = wasm_f64x2_add(wasm_f64x2_sub(p, av), wasm_f64x2_sub(c, bv));
    const v128_t zero = wasm_f64x2_splat(0.0);
    v128_t e_pos = wasm_f64x2_gt(e, zero), e_neg = wasm_f64x2_lt(e, zero);
    v128_t even = wasm_i64x2_eq(wasm_v128_and(s, wasm_i64x2_splat(1)), wasm_i64x2_splat(0));
    v128_t adjust = wasm_v128_and(wasm_v128_or(e_pos, e_neg), even);
    /* one unit up in magnitude where e has s's sign, down otherwise */
    v128_t up = wasm_v128_xor(e_pos, wasm_f64x2_lt(s, zero));
    v128_t step = wasm_v128_bitselect(wasm_i64x2_splat(1), wasm_i64x2_splat(-1), up);
    return wasm_i64x2_add(s, wasm_v128_and(step, adjust));
}

BN_AI v128_t lo2_f64(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
BN_AI v128_t hi2_f64(v128_t v) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3)); }

/* fmaf in each of four lanes */
BN_AI v128_t fma4(v128_t a, v128_t b, v128_t c)
{
    v128_t lo = fma2_f64(lo2_f64(a), lo2_f64(b), lo2_f64(c)), hi = fma2_f64(hi2_f64(a), hi2_f64(b), hi2_f64(c));
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

BN_AI float float_dot(const void *wr, const void *x, int64_t K, const int kind)
{
    v128_t acc[8];
    for (int j = 0; j < 8; j++) acc[j] = wasm_f32x4_splat(0.0f);
    int64_t np = K & ~(int64_t)31;
    for (int64_t k = 0; k < np; k += 32)
        for (int j = 0; j < 8; j++) {
            v128_t wv = load4(wr, k + 4 * j, kind), xv = load4(x, k + 4 * j, kind);
            acc[j] = kind == FL_F32 ? fma4(wv, xv, acc[j]) : wasm_f32x4_add(acc[j], wasm_f32x4_mul(wv, xv));
        }
    /* sums 0..7 = acc0,acc1; 8..15 = acc2,acc3; 16..23 = acc4,acc5; 24..31 = acc6,acc7 */
    v128_t vlo = wasm_f32x4_add(wasm_f32x4_add(acc[0], acc[4]), wasm_f32x4_add(acc[2], acc[6]));
    v128_t vhi = wasm_f32x4_add(wasm_f32x4_add(acc[1], acc[5]), wasm_f32x4_add(acc[3], acc[7]));
    v128_t t = wasm_f32x4_add(vlo, vhi);
    /* (t0 + t1) + (t2 + t3) */
    t = wasm_f32x4_add(t, wasm_i32x4_shuffle(t, t, 1, 0, 3, 2));
    t = wasm_f32x4_add(t, wasm_i32x4_shuffle(t, t, 2, 3, 0, 1));
    double s = wasm_f32x4_extract_lane(t, 0);
    for (int64_t k = np; k < K; k++) s += (double)(load1(wr, k, kind) * load1(x, k, kind));
    return (float)s;
}

BN_AI void mm_float(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, const int kind)
{
    const int64_t K = w->cols;
    const size_t esz = kind == FL_F32 ? 4 : 2, rb = (size_t)K * esz;
    const uint8_t *base = w->data;
    const uint8_t *xs = kind == FL_F32 ? (const uint8_t *)a->x : (const uint8_t *)a->h;
    /* a row is read from memory once, then from cache for the other tokens */
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++)
            y[t * w->rows + r] = float_dot(base + (size_t)r * rb, xs + (size_t)t * rb, K, kind);
}

static void mm_f16_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_F16);
}

static void mm_bf16_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_BF16);
}

static void mm_f32_wasm(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_F32);
}

const bn_kernel_table bn_kernels_wasm = {
    .mm =
        {
            [BN_TYPE_I2_S] = mm_i2s_wasm,
            [BN_TYPE_TQ2_0] = mm_tq2_wasm,
            [BN_TYPE_TQ1_0] = mm_tq1_wasm,
            [BN_TYPE_Q8_0] = mm_q8_0_wasm,
            [BN_TYPE_Q6_K] = mm_q6_K_wasm,
            [BN_TYPE_F16] = mm_f16_wasm,
            [BN_TYPE_BF16] = mm_bf16_wasm,
            [BN_TYPE_F32] = mm_f32_wasm,
        },
    .row_align = 1,
};

#endif /* __wasm_simd128__ */
