/* Weight formats: decode, encode, ternarise.  Layouts follow ../shared/spec/bitnet-format.md
 * sections 3 (I2_S) and 5 (TQ1_0, TQ2_0) and ggml's block definitions for Q8_0 and Q6_K. */
#include "quant/quant.h"

#include <math.h>
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "common/mem.h"

/* ---- ternary decoding helpers ---------------------------------------------------------------- */

/* I2_S element i of a tensor (flattened, row-major): 128-element blocks of 32 bytes; byte j of a
 * block holds elements j, 32+j, 64+j, 96+j in bits 7-6, 5-4, 3-2, 1-0. */
static inline unsigned i2s_code(const uint8_t *p, int64_t i)
{
    int64_t blk = i / BN_I2S_BLOCK, e = i % BN_I2S_BLOCK;
    return (p[blk * 32 + e % 32] >> (6 - 2 * (e / 32))) & 3u;
}

/* TQ2_0: in each 32-byte half of qs, byte m holds elements m, m+32, m+64, m+96 from the low bits up. */
static inline unsigned tq2_code(const uint8_t *qs, int e)
{
    int half = e / 128, w = e % 128;
    return (qs[half * 32 + w % 32] >> (2 * (w / 32))) & 3u;
}

/* TQ1_0 trit (0..2) number e (0..255) of a block: qs[0..31] hold elements {m + 32n}, n = 0..4, of
 * the first 160; qs[32..47] hold {160 + m + 16n}; qh[0..3] hold {240 + m + 4n}, n = 0..3.  A byte is
 * a base-3 fraction scaled to 256 (first trit most significant): trit n = ((uint8)(b * 3^n) * 3) >> 8. */
static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};

static inline unsigned tq1_trit_of_byte(uint8_t b, int n)
{
    uint8_t q = (uint8_t)(b * pow3[n]);
    return ((unsigned)q * 3u) >> 8;
}

static inline unsigned tq1_code(const uint8_t *blk, int e)
{
    if (e < 160) return tq1_trit_of_byte(blk[e % 32], e / 32);
    if (e < 240) return tq1_trit_of_byte(blk[32 + (e - 160) % 16], (e - 160) / 16);
    return tq1_trit_of_byte(blk[48 + (e - 240) % 4], (e - 240) / 4);
}

int bn_tq1_trit(const uint8_t *block, int e) { return (int)tq1_code(block, e); }
int bn_tq2_code(const uint8_t *block, int e) { return (int)tq2_code(block, e); }
int bn_i2s_code(const uint8_t *data, int64_t i) { return (int)i2s_code(data, i); }

static inline float rd_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

static inline void wr_f16(uint8_t *p, float f)
{
    uint16_t h = bn_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* ---- argument checks ------------------------------------------------------------------------- */

static bn_status check_blocks(uint32_t type, int64_t n, const char *what)
{
    const bn_type_traits *t = bn_type_get(type);
    if (!t || !t->computable)
        return bn_error(BN_ERR_UNSUPPORTED, "%s: tensor type %u (%s) is not supported", what, type,
                        t ? t->name : "unknown");
    if (n < 0) return bn_error(BN_ERR_INVALID_ARG, "%s: negative element count", what);
    int64_t bs = type == BN_TYPE_I2_S ? BN_I2S_BLOCK : t->block_size;
    if (n % bs)
        return bn_error(BN_ERR_INVALID_ARG, "%s: %lld elements is not a whole number of %s blocks of %lld", what,
                        (long long)n, t->name, (long long)bs);
    return BN_OK;
}

float bn_i2s_scale(const void *data, int64_t n)
{
    float s;
    memcpy(&s, (const uint8_t *)data + n / 4, sizeof s);
    return s;
}

/* ---- dequantisation -------------------------------------------------------------------------- */

static void dequant_q6_K_block(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = rd_f16(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[n + l] = d * sc[is] * q1;
            y[n + l + 32] = d * sc[is + 2] * q2;
            y[n + l + 64] = d * sc[is + 4] * q3;
            y[n + l + 96] = d * sc[is + 6] * q4;
        }
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* Dequantises elements [0, n) of blocks starting at src (I2_S: codes starting at element i0 of a
 * tensor whose packed data begins at src, with the given scale). */
static void dequant_blocks(uint32_t type, const uint8_t *src, int64_t i0, int64_t n, float i2s_scale, float *dst)
{
    switch (type) {
    case BN_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case BN_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = rd_f16(src + 2 * i);
        break;
    case BN_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bn_bf16_to_fp32(h);
        }
        break;
    case BN_TYPE_Q8_0:
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = src + b * 34;
            float d = rd_f16(blk);
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)(int8_t)blk[2 + j] * d;
        }
        break;
    case BN_TYPE_Q6_K:
        for (int64_t b = 0; b < n / 256; b++) dequant_q6_K_block(src + b * 210, dst + b * 256);
        break;
    case BN_TYPE_TQ2_0:
        for (int64_t b = 0; b < n / 256; b++) {
            const uint8_t *blk = src + b * 66;
            float d = rd_f16(blk + 64);
            for (int e = 0; e < 256; e++) dst[b * 256 + e] = (float)((int)tq2_code(blk, e) - 1) * d;
        }
        break;
    case BN_TYPE_TQ1_0:
        for (int64_t b = 0; b < n / 256; b++) {
            const uint8_t *blk = src + b * 54;
            float d = rd_f16(blk + 52);
            for (int e = 0; e < 256; e++) dst[b * 256 + e] = (float)((int)tq1_code(blk, e) - 1) * d;
        }
        break;
    case BN_TYPE_I2_S:
        /* code 3 never occurs in valid files; bitnet.cpp's dequantiser maps it to 0 */
        for (int64_t i = 0; i < n; i++) {
            unsigned c = i2s_code(src, i0 + i);
            dst[i] = c == 2 ? i2s_scale : c == 0 ? -i2s_scale : 0.0f;
        }
        break;
    default: break;
    }
}

bn_status bn_dequantize(uint32_t type, const void *src, int64_t n, float *dst)
{
    bn_status st = check_blocks(type, n, "dequantize");
    if (st) return st;
    if (!src || !dst) return bn_error(BN_ERR_INVALID_ARG, "dequantize: NULL buffer");
    float scale = type == BN_TYPE_I2_S ? bn_i2s_scale(src, n) : 1.0f;
    dequant_blocks(type, src, 0, n, scale, dst);
    return BN_OK;
}

bn_status bn_dequantize_row(uint32_t type, const void *tensor_data, int64_t ne0, int64_t r, float i2s_scale,
                            float *dst)
{
    bn_status st = check_blocks(type, ne0, "dequantize row");
    if (st) return st;
    if (!tensor_data || !dst || r < 0) return bn_error(BN_ERR_INVALID_ARG, "dequantize row: bad argument");
    size_t row_bytes;
    if (!bn_type_row_nbytes(type, ne0, &row_bytes)) return bn_error(BN_ERR_RANGE, "dequantize row: size overflow");
    const uint8_t *base = tensor_data;
    if (type == BN_TYPE_I2_S) {
        /* ne0 % 128 == 0, so row r starts at a block boundary */
        dequant_blocks(type, base + (size_t)r * row_bytes, 0, ne0, i2s_scale, dst);
    } else {
        dequant_blocks(type, base + (size_t)r * row_bytes, 0, ne0, 1.0f, dst);
    }
    return BN_OK;
}

/* ---- quantisation ---------------------------------------------------------------------------- */

/* fminf(fmaxf(v, lo), hi) for the finite values the quantizers see, without libm calls. */
static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ggml's nearest_int: round half to even through the float adder (valid for |f| < 2^22). */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void quant_q8_0_ref(const float *x, int64_t n, uint8_t *dst)
{
    /* ggml quantize_row_q8_0_ref (what llama-quantize uses for weights) */
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        uint8_t *blk = dst + b * 34;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr_f16(blk, d);
        for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)roundf(xb[j] * id);
    }
}

static void quant_tq2_0(const float *x, int64_t n, uint8_t *dst)
{
    /* ggml quantize_row_tq2_0_ref: d = block absmax, code = lroundf(x/d) + 1 */
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        uint8_t *blk = dst + b * 66;
        float amax = 0.0f;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float id = amax != 0.0f ? 1.0f / amax : 0.0f;
        wr_f16(blk + 64, amax);
        memset(blk, 0, 64);
        for (int e = 0; e < 256; e++) {
            int c = (int)lroundf(xb[e] * id) + 1;
            int half = e / 128, w = e % 128;
            blk[half * 32 + w % 32] |= (uint8_t)((c & 3) << (2 * (w / 32)));
        }
    }
}

/* Packs 5 (or 4 then a zero) trits, first most significant, into a TQ1_0 byte. */
static uint8_t tq1_pack(const int *c, int k)
{
    unsigned q = 0;
    for (int n = 0; n < k; n++) q = q * 3 + (unsigned)c[n];
    for (int n = k; n < 5; n++) q *= 3;
    return (uint8_t)((q * 256 + 242) / 243); /* ceil(q * 256 / 243) */
}

static void tq1_encode_block(const int *c /* 256 codes 0..2 */, float d, uint8_t *blk)
{
    int g[5];
    for (int m = 0; m < 32; m++) {
        for (int n = 0; n < 5; n++) g[n] = c[m + 32 * n];
        blk[m] = tq1_pack(g, 5);
    }
    for (int m = 0; m < 16; m++) {
        for (int n = 0; n < 5; n++) g[n] = c[160 + m + 16 * n];
        blk[32 + m] = tq1_pack(g, 5);
    }
    for (int m = 0; m < 4; m++) {
        for (int n = 0; n < 4; n++) g[n] = c[240 + m + 4 * n];
        blk[48 + m] = tq1_pack(g, 4);
    }
    wr_f16(blk + 52, d);
}

static void quant_tq1_0(const float *x, int64_t n, uint8_t *dst)
{
    int c[256];
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        float amax = 0.0f;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float id = amax != 0.0f ? 1.0f / amax : 0.0f;
        for (int e = 0; e < 256; e++) c[e] = (int)lroundf(xb[e] * id) + 1;
        tq1_encode_block(c, amax, dst + b * 54);
    }
}

/* Q6_K sub-block scale (16 elements, codes in [-32, 31]) by least squares: for a few candidate
 * inverse scales around the one that maps the signed absmax to -32, round to codes L and take the
 * scale sum(x*L)/sum(L*L) of the candidate whose fit sum(x*L)^2/sum(L*L) is largest (the squared
 * error is sum(x^2) minus that).  Candidate 0 comes first, so exact grids are reproduced. */
static float q6_K_sub_scale(const float *x, int n_cand)
{
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 16; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax == 0.0f) return 0.0f;
    float best_scale = -max / 32.0f, best_fit = -1.0f;
    for (int k = 0; k < n_cand; k++) {
        int step = k == 0 ? 0 : (k & 1 ? (k + 1) / 2 : -(k / 2)); /* 0, 1, -1, 2, -2, ... */
        float iscale = -(32.0f + 0.1f * (float)step) / max;
        float sumlx = 0.0f, suml2 = 0.0f;
        for (int i = 0; i < 16; i++) {
            int l = nearest_int(clampf(iscale * x[i], -32.0f, 31.0f));
            sumlx += x[i] * (float)l;
            suml2 += (float)(l * l);
        }
        if (suml2 <= 0.0f) continue;
        float fit = sumlx * sumlx / suml2;
        if (fit > best_fit) {
            best_fit = fit;
            best_scale = sumlx / suml2;
        }
    }
    return best_scale;
}

/* One Q6_K block (the exact inverse of dequant_q6_K_block): element i has scale index i/16 and a
 * 6-bit code c = q + 32 whose low 4 bits sit in ql and high 2 bits in qh, in the interleaved
 * order the decoder reads.  The 16 sub-block scales are stored as int8 against the block scale
 * d = max_scale/128 (fp16); the codes are then chosen against the scales as stored. */
static bn_status quant_q6_K_block(const float *x, uint8_t *blk, int n_cand)
{
    float scales[16], max_scale = 0.0f, amax_scale = 0.0f;
    for (int i = 0; i < 256; i++)
        if (!isfinite(x[i])) return bn_error(BN_ERR_RANGE, "quantize Q6_K: element %d is not finite", i);
    for (int j = 0; j < 16; j++) {
        scales[j] = q6_K_sub_scale(x + 16 * j, n_cand);
        if (fabsf(scales[j]) > amax_scale) {
            amax_scale = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    memset(blk, 0, 210);
    float d = 0.0f;
    if (amax_scale > 0.0f) {
        /* d is rounded away from zero so the largest scale still fits int8 after rounding: where d
         * is an fp16 subnormal (small blocks) the int8 scales then absorb d's coarse rounding */
        float dt = -max_scale / 128.0f;
        uint16_t h = bn_fp32_to_fp16(dt);
        if (fabsf(bn_fp16_to_fp32(h)) < fabsf(dt)) h++;
        d = bn_fp16_to_fp32(h);
        if (!isfinite(d)) return bn_error(BN_ERR_RANGE, "quantize Q6_K: values too large for an fp16 block scale");
        memcpy(blk + 208, &h, 2);
    }
    int8_t *sc = (int8_t *)(blk + 192);
    int code[256];
    for (int j = 0; j < 16; j++) {
        int s = d != 0.0f ? nearest_int(clampf(scales[j] / d, -128.0f, 127.0f)) : 0;
        sc[j] = (int8_t)s;
        float step = d * (float)s;
        for (int i = 16 * j; i < 16 * j + 16; i++) {
            int q = step != 0.0f ? nearest_int(clampf(x[i] / step, -32.0f, 31.0f)) : 0;
            code[i] = q + 32;
        }
    }
    uint8_t *ql = blk, *qh = blk + 128;
    for (int h = 0; h < 2; h++, ql += 64, qh += 32) {
        const int *c = code + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((c[l] & 15) | (c[l + 64] & 15) << 4);
            ql[l + 32] = (uint8_t)((c[l + 32] & 15) | (c[l + 96] & 15) << 4);
            qh[l] = (uint8_t)(c[l] >> 4 | (c[l + 32] >> 4) << 2 | (c[l + 64] >> 4) << 4 | (c[l + 96] >> 4) << 6);
        }
    }
    return BN_OK;
}

static bn_status quant_q6_K(const float *x, int64_t n, uint8_t *dst, int n_cand)
{
    for (int64_t b = 0; b < n / 256; b++) {
        bn_status st = quant_q6_K_block(x + b * 256, dst + b * 210, n_cand);
        if (st) return bn_error_prefix(st, "block %lld: ", (long long)b);
    }
    return BN_OK;
}

static void i2s_put(uint8_t *p, int64_t i, unsigned code)
{
    int64_t blk = i / BN_I2S_BLOCK, e = i % BN_I2S_BLOCK;
    p[blk * 32 + e % 32] |= (uint8_t)(code << (6 - 2 * (e / 32)));
}

static void quant_i2s(const float *x, int64_t n, uint8_t *dst)
{
    /* bitnet.cpp quantize_i2_s: one scale for the whole tensor = max|w| (double, stored as float);
     * code 1 (zero) when |w| < 1e-6, else 2 for positive and 0 for negative. */
    double max = 0;
    for (int64_t i = 0; i < n; i++) max = fmax(max, fabs((double)x[i]));
    memset(dst, 0, (size_t)(n / 4) + 32);
    for (int64_t i = 0; i < n; i++) {
        unsigned code;
        if (fabs((double)x[i]) < 1e-6) code = 1;
        else code = (double)x[i] * max > 0 ? 2 : 0;
        i2s_put(dst, i, code);
    }
    float s = (float)max;
    memcpy(dst + n / 4, &s, sizeof s);
}

static bn_status quantize(uint32_t type, const float *src, int64_t rows, int64_t ne0, void *dst, bool fast)
{
    if (rows < 0 || ne0 <= 0) return bn_error(BN_ERR_INVALID_ARG, "quantize: bad shape %lld x %lld", (long long)rows,
                                              (long long)ne0);
    if (!src || !dst) return bn_error(BN_ERR_INVALID_ARG, "quantize: NULL buffer");
    bn_status st = check_blocks(type, ne0, "quantize");
    if (st) return st;
    size_t nb;
    if (!bn_type_tensor_nbytes(type, ne0, 0, &nb) || rows > INT64_MAX / ne0)
        return bn_error(BN_ERR_RANGE, "quantize: size overflow");
    int64_t n = rows * ne0;
    uint8_t *d = dst;
    switch (type) {
    case BN_TYPE_F32: memcpy(d, src, (size_t)n * 4); break;
    case BN_TYPE_F16:
        for (int64_t i = 0; i < n; i++) wr_f16(d + 2 * i, src[i]);
        break;
    case BN_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = bn_fp32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        break;
    case BN_TYPE_Q8_0: quant_q8_0_ref(src, n, d); break;
    case BN_TYPE_TQ2_0: quant_tq2_0(src, n, d); break;
    case BN_TYPE_TQ1_0: quant_tq1_0(src, n, d); break;
    case BN_TYPE_I2_S: quant_i2s(src, n, d); break;
    case BN_TYPE_Q6_K: return quant_q6_K(src, n, d, fast ? 1 : 21);
    default: return bn_error(BN_ERR_UNSUPPORTED, "quantize: type %u", type);
    }
    return BN_OK;
}

bn_status bn_quantize(uint32_t type, const float *src, int64_t rows, int64_t ne0, void *dst)
{
    return quantize(type, src, rows, ne0, dst, false);
}

bn_status bn_quantize_fast(uint32_t type, const float *src, int64_t rows, int64_t ne0, void *dst)
{
    return quantize(type, src, rows, ne0, dst, true);
}

double bn_abs_sum(const float *w, int64_t n)
{
    /* eight interleaved partial sums (element i into lane i % 8) added in lane order: a fixed
     * order, whose adds need not wait for one another (one running sum is latency-bound) */
    double lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += fabs((double)w[i + l]);
    for (; i < n; i++) lane[i % 8] += fabs((double)w[i]);
    double sum = 0;
    for (int l = 0; l < 8; l++) sum += lane[l];
    return sum;
}

float bn_absmean_scale(double abs_sum, int64_t n)
{
    float mean = n > 0 ? (float)(abs_sum / (double)n) : 0.0f;
    return mean > 1e-5f ? mean : 1e-5f;
}

void bn_ternarize_scaled(const float *w, int64_t n, float scale, int8_t *t)
{
    /* As BitNet's preprocessing does it in fp32: t = clamp(round(W * (1/scale))). */
    float s = 1.0f / scale;
    for (int64_t i = 0; i < n; i++) {
        /* clamp(round_half_even(v), -1, 1) without a rounding: +-0.5 round to 0; NaN gives -1 as
         * clamping it with fmaxf would */
        float v = w[i] * s;
        t[i] = (int8_t)((v > 0.5f) - !(v >= -0.5f)); /* branch-free: the signs are random */
    }
}

float bn_ternarize_absmean(const float *w, int64_t n, int8_t *t)
{
    /* sum|W| chunk by chunk (see BN_ABSMEAN_CHUNK), so a converter that sums chunks on several
     * threads gets this scale bit for bit */
    double sum = 0;
    for (int64_t i = 0; i < n; i += BN_ABSMEAN_CHUNK)
        sum += bn_abs_sum(w + i, n - i < BN_ABSMEAN_CHUNK ? n - i : BN_ABSMEAN_CHUNK);
    float scale = bn_absmean_scale(sum, n);
    bn_ternarize_scaled(w, n, scale, t);
    return scale;
}

/* ---- ternary values <-> formats -------------------------------------------------------------- */

/* first and count must be whole blocks inside an n-element tensor */
static bn_status check_range(uint32_t type, int64_t n, int64_t first, int64_t count, const char *what)
{
    bn_status st = check_blocks(type, n, what);
    if (st) return st;
    int64_t bs = type == BN_TYPE_I2_S ? BN_I2S_BLOCK : 256;
    if (first < 0 || count < 0 || first > n || count > n - first || first % bs || count % bs)
        return bn_error(BN_ERR_INVALID_ARG, "%s: elements [%lld, +%lld) are not whole blocks of a %lld-element tensor",
                        what, (long long)first, (long long)count, (long long)n);
    return BN_OK;
}

bn_status bn_ternary_decode_range(uint32_t type, const void *src, int64_t n, int64_t first, int64_t count, int8_t *t,
                                  float *scales)
{
    if (type != BN_TYPE_I2_S && type != BN_TYPE_TQ1_0 && type != BN_TYPE_TQ2_0)
        return bn_error(BN_ERR_INVALID_ARG, "ternary decode: type %u is not ternary", type);
    bn_status st = check_range(type, n, first, count, "ternary decode");
    if (st) return st;
    if (!src || !t || !scales) return bn_error(BN_ERR_INVALID_ARG, "ternary decode: NULL buffer");
    const uint8_t *p = src;
    if (type == BN_TYPE_I2_S) {
        /* a byte at a time (byte m of a block: elements m, m+32, m+64, m+96 from the high bits
         * down); a code 3 anywhere is located by the loop below */
        unsigned bad = 0;
        for (int64_t b = first / BN_I2S_BLOCK; b < (first + count) / BN_I2S_BLOCK; b++) {
            const uint8_t *pb = p + b * 32;
            int8_t *tb = t + b * BN_I2S_BLOCK;
            for (int m = 0; m < 32; m++) {
                unsigned v = pb[m];
                bad |= v & (v >> 1) & 0x55u;
                tb[m] = (int8_t)((int)(v >> 6) - 1);
                tb[m + 32] = (int8_t)((int)((v >> 4) & 3u) - 1);
                tb[m + 64] = (int8_t)((int)((v >> 2) & 3u) - 1);
                tb[m + 96] = (int8_t)((int)(v & 3u) - 1);
            }
        }
        for (int64_t i = first; bad && i < first + count; i++) {
            unsigned c = i2s_code(p, i);
            if (c == 3) return bn_error(BN_ERR_FORMAT, "I2_S element %lld has the invalid code 3", (long long)i);
            t[i] = (int8_t)((int)c - 1);
        }
        if (first == 0) scales[0] = bn_i2s_scale(src, n);
        return BN_OK;
    }
    for (int64_t b = first / 256; b < (first + count) / 256; b++) {
        const uint8_t *blk = p + b * (type == BN_TYPE_TQ2_0 ? 66 : 54);
        if (type == BN_TYPE_TQ2_0) {
            /* a byte at a time (tq2_code); only a block holding a code 3 takes the loop below */
            unsigned bad = 0;
            for (int half = 0; half < 2; half++)
                for (int m = 0; m < 32; m++) {
                    unsigned v = blk[half * 32 + m];
                    int8_t *th = t + b * 256 + half * 128 + m;
                    bad |= v & (v >> 1) & 0x55u;
                    th[0] = (int8_t)((int)(v & 3u) - 1);
                    th[32] = (int8_t)((int)((v >> 2) & 3u) - 1);
                    th[64] = (int8_t)((int)((v >> 4) & 3u) - 1);
                    th[96] = (int8_t)((int)(v >> 6) - 1);
                }
            if (!bad) {
                scales[b] = rd_f16(blk + 64);
                continue;
            }
        }
        for (int e = 0; e < 256; e++) {
            unsigned c = type == BN_TYPE_TQ2_0 ? tq2_code(blk, e) : tq1_code(blk, e);
            if (c == 3)
                return bn_error(BN_ERR_FORMAT, "TQ2_0 element %lld has the invalid code 3", (long long)(b * 256 + e));
            t[b * 256 + e] = (int8_t)((int)c - 1);
        }
        scales[b] = rd_f16(blk + (type == BN_TYPE_TQ2_0 ? 64 : 52));
    }
    return BN_OK;
}

bn_status bn_ternary_decode(uint32_t type, const void *src, int64_t n, int8_t *t, float *scales)
{
    return bn_ternary_decode_range(type, src, n, 0, n, t, scales);
}

bn_status bn_ternary_encode_range(uint32_t type, const int8_t *t, const float *scales, int64_t n, int64_t first,
                                  int64_t count, void *dst)
{
    if (type != BN_TYPE_I2_S && type != BN_TYPE_TQ1_0 && type != BN_TYPE_TQ2_0)
        return bn_error(BN_ERR_INVALID_ARG, "ternary encode: type %u is not ternary", type);
    bn_status st = check_range(type, n, first, count, "ternary encode");
    if (st) return st;
    if (!t || !scales || !dst) return bn_error(BN_ERR_INVALID_ARG, "ternary encode: NULL buffer");
    unsigned bad = 0; /* checked without a branch per element, then located */
    for (int64_t i = first; i < first + count; i++) bad |= (uint8_t)(t[i] + 1) > 2;
    for (int64_t i = first; bad && i < first + count; i++)
        if (t[i] < -1 || t[i] > 1)
            return bn_error(BN_ERR_INVALID_ARG, "ternary encode: value %d at %lld is not in {-1,0,1}", t[i],
                            (long long)i);
    uint8_t *d = dst;
    if (type == BN_TYPE_I2_S) {
        /* only this piece's bytes (and the scale and padding after the last piece): the pieces of
         * one tensor may be written at the same time.  Byte m of a block holds elements m, m+32,
         * m+64, m+96 from the high bits down (i2s_code). */
        for (int64_t b = first / BN_I2S_BLOCK; b < (first + count) / BN_I2S_BLOCK; b++) {
            const int8_t *tb = t + b * BN_I2S_BLOCK;
            uint8_t *db = d + b * 32;
            for (int m = 0; m < 32; m++)
                db[m] = (uint8_t)((tb[m] + 1) << 6 | (tb[m + 32] + 1) << 4 | (tb[m + 64] + 1) << 2 | (tb[m + 96] + 1));
        }
        if (first + count == n) {
            memset(d + n / 4, 0, 32);
            memcpy(d + n / 4, &scales[0], sizeof(float));
        }
        return BN_OK;
    }
    int c[256];
    for (int64_t b = first / 256; b < (first + count) / 256; b++) {
        for (int e = 0; e < 256; e++) c[e] = t[b * 256 + e] + 1;
        if (type == BN_TYPE_TQ1_0) {
            tq1_encode_block(c, scales[b], d + b * 54);
        } else {
            /* byte m of each 32-byte half holds its elements m, m+32, m+64, m+96 from the low bits up */
            uint8_t *blk = d + b * 66;
            for (int half = 0; half < 2; half++)
                for (int m = 0; m < 32; m++) {
                    const int *ch = c + half * 128 + m;
                    blk[half * 32 + m] = (uint8_t)(ch[0] | ch[32] << 2 | ch[64] << 4 | ch[96] << 6);
                }
            wr_f16(blk + 64, scales[b]);
        }
    }
    return BN_OK;
}

bn_status bn_ternary_encode(uint32_t type, const int8_t *t, const float *scales, int64_t n, void *dst)
{
    return bn_ternary_encode_range(type, t, scales, n, 0, n, dst);
}

/* ---- activations ----------------------------------------------------------------------------- */

float bn_quantize_act_i8(const float *x, int64_t n, int8_t *q, int32_t *sum)
{
    /* bitnet.cpp quantize_row_i8_s: max|x| in double, floor 1e-5; s = (float)(127/max). */
    /* the largest |x| in float (exact, and it vectorises; NaNs are skipped as fmax skips them),
     * then the floor in double as the reference has it */
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    double max = (double)m > 0.00001 ? (double)m : 0.00001;
    float s = (float)(127.0 / max);
    int32_t acc = 0;
    for (int64_t i = 0; i < n; i++) {
        int v = nearest_int(x[i] * s);
        v = v > 127 ? 127 : v < -128 ? -128 : v;
        q[i] = (int8_t)v;
        acc += v;
    }
    *sum = acc;
    return s;
}

void bn_quantize_act_q8_K(const float *x, int64_t n, int8_t *q, float *d, int32_t *bsum, int16_t *bsums16)
{
    /* ggml quantize_row_q8_K_ref: the element of largest magnitude `max` (signed) sets
     * iscale = -127/max; q = min(127, nearest_int(iscale*x)); d = 1/iscale.  All-zero block: d = 0. */
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        int8_t *qb = q + b * 256;
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        int32_t s = 0;
        if (amax == 0.0f) {
            memset(qb, 0, 256);
            d[b] = 0.0f;
        } else {
            float iscale = -127.f / max;
            for (int j = 0; j < 256; j++) {
                int v = nearest_int(iscale * xb[j]);
                qb[j] = (int8_t)(v < 127 ? v : 127);
            }
            d[b] = 1.0f / iscale;
        }
        for (int j = 0; j < 16; j++) {
            int acc = 0;
            for (int l = 0; l < 16; l++) acc += qb[j * 16 + l];
            if (bsums16) bsums16[b * 16 + j] = (int16_t)acc;
            s += acc;
        }
        if (bsum) bsum[b] = s;
    }
}

void bn_quantize_act_q8_0(const float *x, int64_t n, int8_t *q, float *d)
{
    /* ggml's x86 quantize_row_q8_0 (what runs on the activations there): d = amax/127 stored as fp16,
     * q = round_half_even(x * (127/amax)). */
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float dd = amax / 127.f;
        d[b] = bn_fp16_to_fp32(bn_fp32_to_fp16(dd));
        float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < 32; j++) q[b * 32 + j] = (int8_t)nearest_int(xb[j] * id);
    }
}
