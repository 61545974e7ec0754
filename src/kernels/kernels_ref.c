/* Scalar reference kernels: the definition of the right answer.  Every SIMD kernel must give the
 * same integer sums and the same float result (see kernels_impl.h for the float orders).
 *
 * Overflow: integer sums are int32.  I2_S: |code * q| <= 3 * 128, so |acc| <= 384 * K, below 2^31
 * for K < 5.5 million; the formats' row lengths are far below that.  TQ/Q8_0/Q6_K blocks sum at most
 * 256 products of at most 2*127, 127*128 or 32*128*127 (Q6_K scales included): all tiny. */
#include <math.h>
#include <string.h>

#include "common/fp16.h"
#include "kernels/kernels_impl.h"
#include "quant/quant.h"

static inline float rd_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

/* ---- ternary ---- */

static void mm_i2s_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols;
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = base + r * (K / 4); /* K % 128 == 0: rows start on a block */
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int8_t *q = a->q + t * K;
            int32_t acc = 0;
            for (int64_t k = 0; k < K; k++) acc += bn_i2s_code(row, k) * q[k];
            /* bitnet.cpp's exact order, in float */
            y[t * w->rows + r] = ((float)acc - (float)a->sum[t]) / a->d[t] * w->scale;
        }
    }
}

static void mm_tq_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, int tq1)
{
    const int64_t K = w->cols, nb = K / 256;
    const size_t bsz = tq1 ? 54 : 66;
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = base + (size_t)r * (size_t)nb * bsz;
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int8_t *q = a->q + t * K;
            const float *ad = a->d + t * nb;
            float sumf = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * bsz;
                int32_t sumi = 0;
                for (int e = 0; e < 256; e++)
                    sumi += ((tq1 ? bn_tq1_trit(blk, e) : bn_tq2_code(blk, e)) - 1) * q[b * 256 + e];
                float d = ad[b] * rd_f16(blk + bsz - 2);
                sumf += (float)sumi * d; /* ggml's order */
            }
            y[t * w->rows + r] = sumf;
        }
    }
}

static void mm_tq2_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq_ref(w, a, y, r0, r1, 0);
}

static void mm_tq1_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq_ref(w, a, y, r0, r1, 1);
}

/* ---- output-head types ---- */

static void mm_q8_0_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols, nb = K / 32;
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = base + (size_t)r * (size_t)nb * 34;
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int8_t *q = a->q + t * K;
            const float *ad = a->d + t * nb;
            float sumf = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * 34;
                int32_t sumi = 0;
                for (int j = 0; j < 32; j++) sumi += (int8_t)blk[2 + j] * q[b * 32 + j];
                sumf += (float)sumi * (rd_f16(blk) * ad[b]);
            }
            y[t * w->rows + r] = sumf;
        }
    }
}

/* Q6_K block: ql[128] qh[64] scales[16] d(fp16).  Whole-block integer sum, then one float
 * multiply-add per block (ggml's scalar code keeps 8 float lanes instead; the two differ by float
 * rounding only). */
static int32_t q6k_block_dot(const uint8_t *blk, const int8_t *q)
{
    const uint8_t *ql = blk, *qh = blk + 128;
    const int8_t *sc = (const int8_t *)(blk + 192);
    int32_t total = 0;
    for (int n = 0; n < 256; n += 128) {
        int32_t sub[8] = {0};
        for (int l = 0; l < 32; l++) {
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            int is = l / 16;
            sub[is + 0] += q1 * q[n + l];
            sub[is + 2] += q2 * q[n + l + 32];
            sub[is + 4] += q3 * q[n + l + 64];
            sub[is + 6] += q4 * q[n + l + 96];
        }
        for (int j = 0; j < 8; j++) total += sc[j] * sub[j];
        ql += 64;
        qh += 32;
        sc += 8;
    }
    return total;
}

static void mm_q6_K_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols, nb = K / 256;
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = base + (size_t)r * (size_t)nb * 210;
        for (int64_t t = 0; t < a->n_tok; t++) {
            const int8_t *q = a->q + t * K;
            const float *ad = a->d + t * nb;
            float sumf = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * 210;
                int32_t isum = q6k_block_dot(blk, q + b * 256);
                sumf += (float)isum * (rd_f16(blk + 208) * ad[b]);
            }
            y[t * w->rows + r] = sumf;
        }
    }
}

static float dot_f16_ref(const uint16_t *wr, const uint16_t *x, int64_t K, int bf16)
{
    float p[32] = {0};
    int64_t np = K & ~(int64_t)31;
    for (int64_t k = 0; k < np; k += 32)
        for (int l = 0; l < 32; l++) {
            float wv = bf16 ? bn_bf16_to_fp32(wr[k + l]) : bn_fp16_to_fp32(wr[k + l]);
            float xv = bf16 ? bn_bf16_to_fp32(x[k + l]) : bn_fp16_to_fp32(x[k + l]);
            p[l] += wv * xv; /* exact product: same as a fused multiply-add */
        }
    double s = bn_reduce32(p);
    for (int64_t k = np; k < K; k++) {
        float wv = bf16 ? bn_bf16_to_fp32(wr[k]) : bn_fp16_to_fp32(wr[k]);
        float xv = bf16 ? bn_bf16_to_fp32(x[k]) : bn_fp16_to_fp32(x[k]);
        s += (double)(wv * xv);
    }
    return (float)s;
}

static void mm_f16_like_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, int bf16)
{
    const int64_t K = w->cols;
    const uint16_t *base = w->data;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++)
            y[t * w->rows + r] = dot_f16_ref(base + r * K, a->h + t * K, K, bf16);
}

static void mm_f16_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_f16_like_ref(w, a, y, r0, r1, 0);
}

static void mm_bf16_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_f16_like_ref(w, a, y, r0, r1, 1);
}

static void mm_f32_ref(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols;
    const float *base = w->data;
    int64_t np = K & ~(int64_t)31;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++) {
            const float *wr = base + r * K, *x = a->x + t * K;
            float p[32] = {0};
            for (int64_t k = 0; k < np; k += 32)
                for (int l = 0; l < 32; l++) p[l] = fmaf(wr[k + l], x[k + l], p[l]);
            double s = bn_reduce32(p);
            for (int64_t k = np; k < K; k++) s += (double)(wr[k] * x[k]);
            y[t * w->rows + r] = (float)s;
        }
}

const bn_kernel_table bn_kernels_ref = {
    .mm =
        {
            [BN_TYPE_I2_S] = mm_i2s_ref,
            [BN_TYPE_TQ2_0] = mm_tq2_ref,
            [BN_TYPE_TQ1_0] = mm_tq1_ref,
            [BN_TYPE_Q8_0] = mm_q8_0_ref,
            [BN_TYPE_Q6_K] = mm_q6_K_ref,
            [BN_TYPE_F16] = mm_f16_ref,
            [BN_TYPE_BF16] = mm_bf16_ref,
            [BN_TYPE_F32] = mm_f32_ref,
        },
    .row_align = 1,
};
