/* ARM NEON (AArch64) kernels, with SDOT (dotprod) where the CPU has it.  Same results as the
 * reference, bit for bit: integer sums are exact, float steps are the reference's in its order.
 *
 * Integer ranges.  With SDOT, each int32 lane adds groups of 4 products of at most 3*128 (ternary
 * codes 0..3 as signed bytes times q), K/16 groups per lane: far below 2^31 for K <= 2^24.
 * Without it, VMULL gives int16 products (|3*128|, or 128*128 for Q8_0: below 32768) and VPADAL
 * adds pairs of them straight into int32 lanes, so no int16 sum is ever formed. */
#include <arm_neon.h>
#include <string.h>

#include "common/fp16.h"
#include "kernels/kernels_impl.h"

#define BN_AI static inline __attribute__((always_inline))

static float f16_scalar(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

/* ---- 16-byte dot products: codes (or Q8_0 weights) times q, into int32 lanes ---- */

BN_AI int32x4_t dot16_plain(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

/* SDOT, used only where the CPU reports it: the functions that use it are compiled for dotprod
 * (one binary serves CPUs with and without).  Clang before 16 declares vdotq_s32 only when the
 * whole file targets dotprod, so there it is one instruction of inline assembly. */
#if defined(__ARM_FEATURE_DOTPROD)
#define BN_DOTPROD
#elif defined(__clang__)
#define BN_DOTPROD __attribute__((target("dotprod")))
#else
#define BN_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

BN_DOTPROD static inline int32x4_t dot16_sdot(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
#else
    return vdotq_s32(acc, a, b);
#endif
}

static int have_dot(void) { return bn_cpu_features_get()->dotprod; }

/* ---- block decoders: codes in element order, 16 per vector ---- */

/* I2_S: byte j of the block's 32 holds elements j, 32+j, 64+j, 96+j from the high bits down. */
BN_AI void i2s_codes(const uint8_t *blk, int8x16_t c[8])
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    uint8x16_t lo = vld1q_u8(blk), hi = vld1q_u8(blk + 16);
    c[0] = vreinterpretq_s8_u8(vshrq_n_u8(lo, 6));
    c[1] = vreinterpretq_s8_u8(vshrq_n_u8(hi, 6));
    c[2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(lo, 4), m3));
    c[3] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(hi, 4), m3));
    c[4] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(lo, 2), m3));
    c[5] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(hi, 2), m3));
    c[6] = vreinterpretq_s8_u8(vandq_u8(lo, m3));
    c[7] = vreinterpretq_s8_u8(vandq_u8(hi, m3));
}

/* TQ2_0: in each 32-byte half, byte m holds elements m, m+32, m+64, m+96 from the low bits up. */
BN_AI void tq2_codes(const uint8_t *blk, int8x16_t c[16])
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int h = 0; h < 2; h++) {
        uint8x16_t lo = vld1q_u8(blk + 32 * h), hi = vld1q_u8(blk + 32 * h + 16);
        c[8 * h + 0] = vreinterpretq_s8_u8(vandq_u8(lo, m3));
        c[8 * h + 1] = vreinterpretq_s8_u8(vandq_u8(hi, m3));
        c[8 * h + 2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(lo, 2), m3));
        c[8 * h + 3] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(hi, 2), m3));
        c[8 * h + 4] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(lo, 4), m3));
        c[8 * h + 5] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(hi, 4), m3));
        c[8 * h + 6] = vreinterpretq_s8_u8(vshrq_n_u8(lo, 6));
        c[8 * h + 7] = vreinterpretq_s8_u8(vshrq_n_u8(hi, 6));
    }
}

/* TQ1_0: trit n of byte b = ((uint8)(b * 3^n) * 3) >> 8. */
BN_AI int8x16_t top_trit(uint8x16_t q)
{
    const uint8x8_t k3 = vdup_n_u8(3);
    uint8x8_t lo = vshrn_n_u16(vmull_u8(vget_low_u8(q), k3), 8);
    uint8x8_t hi = vshrn_n_u16(vmull_high_u8(q, vdupq_n_u8(3)), 8);
    return vreinterpretq_s8_u8(vcombine_u8(lo, hi));
}

BN_AI void tq1_codes(const uint8_t *blk, int8x16_t c[16])
{
    /* qs[0..31]: element 32n + m; qs[32..47]: element 160 + 16n + m; qh[0..3]: element 240 + 4n + m */
    uint8x16_t a = vld1q_u8(blk), b = vld1q_u8(blk + 16), e = vld1q_u8(blk + 32);
    static const uint8_t p3[5] = {1, 3, 9, 27, 81};
    for (int n = 0; n < 5; n++) {
        uint8x16_t m = vdupq_n_u8(p3[n]);
        c[2 * n] = top_trit(vmulq_u8(a, m));
        c[2 * n + 1] = top_trit(vmulq_u8(b, m));
        c[10 + n] = top_trit(vmulq_u8(e, m));
    }
    uint32_t qh;
    memcpy(&qh, blk + 48, 4);
    static const uint8_t pw[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
    c[15] = top_trit(vmulq_u8(vreinterpretq_u8_u32(vdupq_n_u32(qh)), vld1q_u8(pw)));
}

/* ---- I2_S ---- */

BN_AI int32_t i2s_dot(const uint8_t *row, int64_t nblk, const int8_t *q, const int dot)
{
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
    for (int64_t b = 0; b < nblk; b++) {
        int8x16_t c[8];
        i2s_codes(row + 32 * b, c);
        const int8_t *qb = q + 128 * b;
        for (int j = 0; j < 8; j += 2) {
            if (dot) {
                acc0 = dot16_sdot(acc0, c[j], vld1q_s8(qb + 16 * j));
                acc1 = dot16_sdot(acc1, c[j + 1], vld1q_s8(qb + 16 * j + 16));
            } else {
                acc0 = dot16_plain(acc0, c[j], vld1q_s8(qb + 16 * j));
                acc1 = dot16_plain(acc1, c[j + 1], vld1q_s8(qb + 16 * j + 16));
            }
        }
    }
    return vaddvq_s32(vaddq_s32(acc0, acc1));
}

BN_DOTPROD static int32_t i2s_dot_sdot(const uint8_t *row, int64_t nblk, const int8_t *q)
{
    return i2s_dot(row, nblk, q, 1);
}

static void mm_i2s_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols, nblk = K / 128, rb = K / 4;
    const int dot = have_dot();
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int8_t *q = a->q + t * K;
            int32_t acc = dot ? i2s_dot_sdot(base + r * rb, nblk, q) : i2s_dot(base + r * rb, nblk, q, 0);
            y[t * w->rows + r] = ((float)acc - (float)a->sum[t]) / a->d[t] * w->scale;
        }
}

/* ---- TQ2_0 / TQ1_0 ---- */

BN_AI float tq_dot(const uint8_t *row, int64_t nb, const bn_act_view *a, int64_t t, const int tq1, const int dot)
{
    const int64_t K = a->cols;
    const size_t bsz = tq1 ? 54 : 66;
    const int8_t *q = a->q + t * K;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + bsz * b;
        int8x16_t c[16];
        if (tq1) tq1_codes(blk, c);
        else tq2_codes(blk, c);
        int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
        const int8_t *qb = q + 256 * b;
        for (int j = 0; j < 16; j += 2) {
            if (dot) {
                acc0 = dot16_sdot(acc0, c[j], vld1q_s8(qb + 16 * j));
                acc1 = dot16_sdot(acc1, c[j + 1], vld1q_s8(qb + 16 * j + 16));
            } else {
                acc0 = dot16_plain(acc0, c[j], vld1q_s8(qb + 16 * j));
                acc1 = dot16_plain(acc1, c[j + 1], vld1q_s8(qb + 16 * j + 16));
            }
        }
        int32_t sumi = vaddvq_s32(vaddq_s32(acc0, acc1)) - a->sum[t * (K / 256) + b];
        float d = a->d[t * (K / 256) + b] * f16_scalar(blk + bsz - 2);
        sumf += (float)sumi * d;
    }
    return sumf;
}

BN_DOTPROD static float tq_dot_sdot(const uint8_t *row, int64_t nb, const bn_act_view *a, int64_t t, int tq1)
{
    return tq1 ? tq_dot(row, nb, a, t, 1, 1) : tq_dot(row, nb, a, t, 0, 1);
}

static void mm_tq_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, int tq1)
{
    const int64_t nb = w->cols / 256;
    const size_t rb = (size_t)nb * (tq1 ? 54 : 66);
    const int dot = have_dot();
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++) {
            const uint8_t *row = base + (size_t)r * rb;
            float v = dot ? tq_dot_sdot(row, nb, a, t, tq1) : tq1 ? tq_dot(row, nb, a, t, 1, 0) : tq_dot(row, nb, a, t, 0, 0);
            y[t * w->rows + r] = v;
        }
}

static void mm_tq2_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq_neon(w, a, y, r0, r1, 0);
}

static void mm_tq1_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq_neon(w, a, y, r0, r1, 1);
}

/* ---- Q8_0 ---- */

BN_AI float q8_0_dot(const uint8_t *row, int64_t nb, const int8_t *q, const float *ad, const int dot)
{
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + 34 * b;
        int8x16_t w0 = vld1q_s8((const int8_t *)blk + 2), w1 = vld1q_s8((const int8_t *)blk + 18);
        int32x4_t acc = vdupq_n_s32(0);
        if (dot) {
            acc = dot16_sdot(acc, w0, vld1q_s8(q + 32 * b));
            acc = dot16_sdot(acc, w1, vld1q_s8(q + 32 * b + 16));
        } else {
            acc = dot16_plain(acc, w0, vld1q_s8(q + 32 * b));
            acc = dot16_plain(acc, w1, vld1q_s8(q + 32 * b + 16));
        }
        sumf += (float)vaddvq_s32(acc) * (f16_scalar(blk) * ad[b]);
    }
    return sumf;
}

BN_DOTPROD static float q8_0_dot_sdot(const uint8_t *row, int64_t nb, const int8_t *q, const float *ad)
{
    return q8_0_dot(row, nb, q, ad, 1);
}

static void mm_q8_0_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols, nb = K / 32;
    const int dot = have_dot();
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++) {
            const uint8_t *row = base + (size_t)r * (size_t)nb * 34;
            y[t * w->rows + r] = dot ? q8_0_dot_sdot(row, nb, a->q + t * K, a->d + t * nb)
                                     : q8_0_dot(row, nb, a->q + t * K, a->d + t * nb, 0);
        }
}

/* ---- F16 / BF16 / F32: the reference's 32 running sums as 8 vectors of 4 (kernels_impl.h) ---- */

enum { FL_F16, FL_BF16, FL_F32 };

BN_AI float32x4_t load4(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p + i)));
    if (kind == FL_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)p + i), 16));
    return vld1q_f32((const float *)p + i);
}

BN_AI float load1(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return bn_fp16_to_fp32(((const uint16_t *)p)[i]);
    if (kind == FL_BF16) return bn_bf16_to_fp32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

BN_AI float float_dot(const void *wr, const void *x, int64_t K, const int kind)
{
    float32x4_t acc[8];
    for (int j = 0; j < 8; j++) acc[j] = vdupq_n_f32(0.0f);
    int64_t np = K & ~(int64_t)31;
    for (int64_t k = 0; k < np; k += 32)
        for (int j = 0; j < 8; j++) acc[j] = vfmaq_f32(acc[j], load4(wr, k + 4 * j, kind), load4(x, k + 4 * j, kind));
    /* sums 0..7 = acc0,acc1; 8..15 = acc2,acc3; 16..23 = acc4,acc5; 24..31 = acc6,acc7 */
    float32x4_t vlo = vaddq_f32(vaddq_f32(acc[0], acc[4]), vaddq_f32(acc[2], acc[6]));
    float32x4_t vhi = vaddq_f32(vaddq_f32(acc[1], acc[5]), vaddq_f32(acc[3], acc[7]));
    float32x4_t t = vaddq_f32(vlo, vhi);
    t = vpaddq_f32(t, t);
    t = vpaddq_f32(t, t);
    double s = vgetq_lane_f32(t, 0);
    for (int64_t k = np; k < K; k++) s += (double)(load1(wr, k, kind) * load1(x, k, kind));
    return (float)s;
}

BN_AI void mm_float(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, const int kind)
{
    const int64_t K = w->cols;
    const size_t esz = kind == FL_F32 ? 4 : 2, rb = (size_t)K * esz;
    const uint8_t *base = w->data;
    const uint8_t *xs = kind == FL_F32 ? (const uint8_t *)a->x : (const uint8_t *)a->h;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++)
            y[t * w->rows + r] = float_dot(base + (size_t)r * rb, xs + (size_t)t * rb, K, kind);
}

static void mm_f16_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_F16);
}

static void mm_bf16_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_BF16);
}

static void mm_f32_neon(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_F32);
}

const bn_kernel_table bn_kernels_neon = {
    .mm =
        {
            [BN_TYPE_I2_S] = mm_i2s_neon,
            [BN_TYPE_TQ2_0] = mm_tq2_neon,
            [BN_TYPE_TQ1_0] = mm_tq1_neon,
            [BN_TYPE_Q8_0] = mm_q8_0_neon,
            [BN_TYPE_F16] = mm_f16_neon,
            [BN_TYPE_BF16] = mm_bf16_neon,
            [BN_TYPE_F32] = mm_f32_neon,
        },
    .row_align = 1,
};
