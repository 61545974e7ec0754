/* Kernel front end: weight and activation preparation, and the threaded matmul that hands row
 * ranges to the implementation chosen by the dispatcher (cpu.c). */
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "common/mem.h"
#include "kernels/kernels_impl.h"
#include "quant/quant.h"

/* ---- weights ---- */

static int64_t weight_col_multiple(uint32_t type)
{
    switch (type) {
    case BN_TYPE_I2_S: return BN_I2S_BLOCK;
    case BN_TYPE_TQ1_0:
    case BN_TYPE_TQ2_0:
    case BN_TYPE_Q6_K: return 256;
    case BN_TYPE_Q8_0: return 32;
    case BN_TYPE_F32:
    case BN_TYPE_F16:
    case BN_TYPE_BF16: return 1;
    default: return 0;
    }
}

bn_status bn_weight_init(bn_weight *w, uint32_t type, const void *data, int64_t rows, int64_t cols)
{
    if (!w) return bn_error(BN_ERR_INVALID_ARG, "weight: NULL");
    memset(w, 0, sizeof *w);
    int64_t mult = weight_col_multiple(type);
    const char *name = bn_type_name(type);
    if (mult == 0)
        return bn_error(BN_ERR_UNSUPPORTED, "weight: no matmul kernel for tensor type %s (%u)", name ? name : "unknown",
                        type);
    if (!data) return bn_error(BN_ERR_INVALID_ARG, "weight: NULL data");
    if (rows <= 0 || cols <= 0 || cols % mult)
        return bn_error(BN_ERR_INVALID_ARG, "weight: %s needs rows >= 1 and a row length that is a multiple of %lld, got %lld x %lld",
                        name, (long long)mult, (long long)rows, (long long)cols);
    /* Kernels index with int64 and int32 integer sums: bound the shape (see the overflow notes in
     * kernels_ref.c; 2^24 columns keeps every sum far from overflow and (float)sum exact). */
    if (cols > (1 << 24) || rows > INT64_MAX / cols)
        return bn_error(BN_ERR_RANGE, "weight: shape %lld x %lld is too large", (long long)rows, (long long)cols);
    size_t nb;
    if (!bn_type_tensor_nbytes(type, cols, rows * cols, &nb))
        return bn_error(BN_ERR_RANGE, "weight: size of %lld x %lld %s overflows", (long long)rows, (long long)cols, name);
    w->type = type;
    w->data = data;
    w->rows = rows;
    w->cols = cols;
    w->scale = type == BN_TYPE_I2_S ? bn_i2s_scale(data, rows * cols) : 1.0f;
    w->packed = NULL;
    return BN_OK;
}

void bn_weight_free(bn_weight *w)
{
    if (!w) return;
    bn_aligned_free(w->packed);
    w->packed = NULL;
}

bn_act_format bn_weight_act_format(const bn_weight *w)
{
    switch (w->type) {
    case BN_TYPE_I2_S: return BN_ACT_I8_ROW;
    case BN_TYPE_TQ1_0:
    case BN_TYPE_TQ2_0:
    case BN_TYPE_Q6_K: return BN_ACT_Q8_K;
    case BN_TYPE_Q8_0: return BN_ACT_Q8_0;
    case BN_TYPE_F16: return BN_ACT_F16;
    case BN_TYPE_BF16: return BN_ACT_BF16;
    default: return BN_ACT_F32;
    }
}

bool bn_kernels_repack_i2s(void)
{
    const bn_kernel_table *tab = bn_kernel_table_get(bn_kernels_active());
    return tab && tab->i2s_x4;
}

bool bn_i2s_x16(const bn_weight *w)
{
    const bn_kernel_table *tab = bn_kernel_table_get(bn_kernels_active());
    return tab && tab->i2s_x16 && w->type == BN_TYPE_I2_S && w->cols <= BN_I2S_X16_MAX_K && w->rows >= 16;
}

int bn_kernels_tq_group(void)
{
    const bn_kernel_table *tab = bn_kernel_table_get(bn_kernels_active());
    return tab ? tab->tq_group : 0;
}

bool bn_kernels_repack_tq(void) { return bn_kernels_tq_group() > 0; }

/* ---- TQ1_0 re-encoding (kernels_impl.h, "TQ1 VBMI") ---- */

const uint8_t bn_tq1v_lut[5][128] = {
    {128, 0, 128, 128, 128, 0, 64, 0, 64, 128, 128, 0, 64, 64, 0, 64, 0, 0, 0, 64, 64, 128, 0, 128, 64, 64, 64, 128, 128, 0, 128, 64,
     0, 64, 128, 64, 128, 64, 64, 128, 0, 128, 0, 64, 64, 128, 0, 0, 0, 128, 128, 64, 64, 0, 128, 64, 64, 64, 64, 128, 64, 64, 64, 0,
     0, 128, 64, 128, 0, 64, 0, 128, 0, 128, 128, 64, 0, 0, 64, 64, 64, 128, 64, 128, 64, 128, 128, 0, 0, 0, 128, 0, 0, 64, 64, 64,
     0, 128, 0, 0, 0, 64, 0, 64, 0, 64, 128, 128, 128, 0, 0, 128, 0, 0, 128, 128, 64, 128, 128, 0, 0, 128, 128, 128, 64, 64, 64, 0},
    {64, 128, 64, 0, 64, 128, 64, 0, 0, 0, 64, 0, 64, 128, 64, 64, 64, 0, 64, 64, 64, 64, 0, 128, 64, 0, 0, 64, 128, 0, 128, 64,
     128, 128, 64, 64, 64, 0, 64, 64, 128, 128, 0, 0, 128, 64, 0, 64, 0, 128, 0, 128, 64, 0, 0, 128, 0, 128, 64, 128, 128, 0, 128, 64,
     64, 64, 64, 0, 128, 0, 0, 128, 64, 0, 128, 128, 128, 128, 128, 128, 0, 0, 0, 0, 0, 64, 128, 64, 64, 0, 128, 128, 128, 64, 128, 0,
     128, 128, 64, 128, 64, 128, 64, 0, 128, 0, 128, 0, 0, 64, 0, 0, 0, 128, 128, 0, 0, 0, 0, 128, 0, 64, 128, 64, 64, 128, 128, 64},
    {64, 64, 0, 128, 64, 128, 64, 0, 128, 128, 0, 128, 0, 64, 0, 128, 128, 128, 0, 0, 64, 0, 0, 64, 0, 64, 0, 128, 128, 64, 0, 0,
     128, 0, 64, 128, 0, 128, 0, 0, 0, 128, 64, 0, 64, 0, 64, 0, 128, 0, 0, 128, 64, 0, 64, 0, 0, 128, 64, 128, 0, 128, 128, 0,
     0, 64, 128, 64, 128, 64, 128, 64, 128, 0, 128, 0, 64, 128, 64, 64, 64, 0, 64, 64, 64, 128, 64, 64, 64, 0, 0, 64, 64, 64, 128, 128,
     128, 128, 128, 128, 64, 128, 128, 64, 0, 128, 128, 0, 128, 64, 128, 0, 128, 0, 64, 128, 0, 64, 64, 128, 64, 0, 0, 128, 64, 0, 64, 64},
    {64, 64, 128, 128, 64, 128, 128, 128, 64, 0, 128, 128, 64, 0, 64, 64, 64, 64, 0, 64, 0, 128, 64, 64, 128, 0, 0, 64, 128, 64, 64, 0,
     128, 0, 128, 64, 64, 0, 64, 128, 0, 64, 0, 64, 0, 0, 0, 128, 128, 128, 0, 128, 128, 64, 0, 64, 64, 0, 64, 0, 0, 64, 128, 64,
     128, 0, 0, 0, 0, 128, 0, 64, 128, 128, 0, 128, 128, 0, 128, 64, 128, 64, 64, 128, 64, 0, 128, 128, 0, 0, 0, 128, 0, 128, 64, 0,
     64, 128, 0, 0, 128, 128, 64, 64, 128, 128, 128, 0, 0, 0, 64, 64, 128, 0, 64, 64, 0, 128, 0, 64, 64, 128, 128, 128, 64, 0, 0, 128},
    {64, 64, 64, 64, 128, 0, 64, 64, 64, 0, 128, 128, 0, 128, 64, 128, 64, 0, 64, 0, 0, 64, 0, 128, 64, 128, 128, 64, 0, 64, 128, 0,
     64, 0, 128, 0, 128, 0, 64, 0, 128, 64, 128, 64, 64, 0, 128, 0, 128, 0, 128, 64, 0, 64, 0, 128, 64, 128, 64, 128, 128, 128, 0, 0,
     0, 128, 64, 64, 64, 0, 64, 64, 0, 0, 128, 0, 0, 128, 0, 128, 64, 128, 128, 0, 128, 128, 64, 128, 128, 0, 0, 0, 64, 64, 128, 0,
     128, 0, 0, 0, 64, 128, 0, 128, 128, 128, 0, 64, 128, 64, 64, 64, 0, 64, 0, 64, 128, 64, 64, 0, 64, 0, 64, 64, 128, 0, 128, 0},
};

static int tq1v_index(uint8_t e, int n)
{
    return n < 2 ? e & 0x7f : n < 4 ? e >> 1 : (e & 1) | ((e >> 1) & 0x7e);
}

void bn_tq1v_encoder(uint8_t enc[256])
{
    int code[243];
    for (int p = 0; p < 243; p++) code[p] = -1;
    for (int e = 255; e >= 0; e--) { /* the lowest code of each pattern */
        int p = 0;
        for (int n = 0; n < 5; n++) p = 3 * p + bn_tq1v_lut[n][tq1v_index((uint8_t)e, n)] / 64;
        code[p] = e;
    }
    for (int q = 0; q < 256; q++) {
        int p = 0;
        for (int n = 0, x = q; n < 5; n++, x = (uint8_t)(x * 3)) p = 3 * p + ((x * 3) >> 8);
        enc[q] = (uint8_t)(code[p] < 0 ? 0 : code[p]); /* < 0 not reached: every pattern has a code (tests/kernels) */
    }
}

typedef struct repack_task {
    uint32_t type;
    const uint8_t *src;
    uint8_t *dst;
    size_t rb, npair, groups, G; /* G: rows per group */
    const uint8_t *enc; /* TQ1_0 re-encoded for VBMI (kernels_impl.h): the code of each qs byte; else NULL */
} repack_task;

/* Group g of the TQ x4 or x16 layout (kernels_impl.h) from the file's rows Gg .. Gg+G-1. */
static void repack_tq_group(const repack_task *T, size_t g)
{
    const size_t bsz = T->type == BN_TYPE_TQ1_0 ? 54 : 66, nb = T->rb / bsz, G = T->G;
    for (size_t b = 0; b < nb; b++) {
        uint8_t *d = T->dst + g * G * T->rb + b * G * bsz;
        for (size_t i = 0; i < G; i++) {
            const uint8_t *s = T->src + (g * G + i) * T->rb + b * bsz;
            if (G == 16) {
                for (size_t v = 0; v < (bsz - 2) / 4; v++) memcpy(d + 64 * v + 4 * i, s + 4 * v, 4);
            } else if (bsz == 66) {
                /* rows i and i ^ 1 share a 64-byte vector per 32-byte half of qs */
                size_t pair = 128 * (i / 2), slot = 32 * (i % 2);
                memcpy(d + pair + slot, s, 32);
                memcpy(d + pair + 64 + slot, s + 32, 32);
            } else {
                memcpy(d + 32 * i, s, 32);
                memcpy(d + 128 + 16 * i, s + 32, 16);
                memcpy(d + 192 + 4 * i, s + 48, 4);
            }
            memcpy(d + G * (bsz - 2) + 2 * i, s + bsz - 2, 2);
        }
        if (T->enc) /* the qs bytes: the first G * 48 in both layouts */
            for (size_t k = 0; k < G * 48; k++) d[k] = T->enc[d[k]];
    }
}

static void repack_groups(void *arg, int ith, int nth)
{
    const repack_task *T = arg;
    long lo, hi;
    bn_split_range((long)T->groups, ith, nth, 1, &lo, &hi);
    const size_t rb = T->rb, npair = T->npair;
    for (size_t g = (size_t)lo; g < (size_t)hi; g++) {
        if (T->type != BN_TYPE_I2_S) {
            repack_tq_group(T, g);
            continue;
        }
        const uint8_t *s0 = T->src + g * T->G * rb;
        uint8_t *d0 = T->dst + g * T->G * rb;
        if (T->G == 16) { /* I2_S x16 (kernels_impl.h) */
            for (size_t b = 0; b < rb / 32; b++)
                for (size_t i = 0; i < 16; i++)
                    for (size_t v = 0; v < 8; v++) memcpy(d0 + 512 * b + 64 * v + 4 * i, s0 + i * rb + 32 * b + 4 * v, 4);
            continue;
        }
        for (size_t p = 0; p < npair; p++)
            for (size_t i = 0; i < 4; i++) memcpy(d0 + 256 * p + 64 * i, s0 + i * rb + 64 * p, 64);
        if (rb % 64) /* an odd last block */
            for (size_t i = 0; i < 4; i++) memcpy(d0 + 256 * npair + 32 * i, s0 + i * rb + 64 * npair, 32);
    }
}

size_t bn_weight_repack_size(const bn_weight *w)
{
    if (!w || w->rows < 4) return 0;
    switch (w->type) {
    case BN_TYPE_I2_S: return bn_kernels_repack_i2s() ? (size_t)w->rows * (size_t)(w->cols / 4) : 0;
    case BN_TYPE_TQ1_0:
    case BN_TYPE_TQ2_0:
        if (!bn_kernels_repack_tq() || w->rows < bn_kernels_tq_group()) return 0; /* no whole group */
        return (size_t)w->rows * (size_t)(w->cols / 256) * (w->type == BN_TYPE_TQ1_0 ? 54 : 66);
    default: return 0;
    }
}

bn_status bn_weight_repack(bn_weight *w, bn_threadpool *pool, size_t *bytes)
{
    *bytes = 0;
    const size_t total = bn_weight_repack_size(w); /* bn_weight_init checked the product */
    if (!total || bn_weight_packed(w)) return BN_OK;
    const size_t rb = total / (size_t)w->rows;
    uint8_t *dst = bn_aligned_alloc(total, 64);
    if (!dst) return BN_ERR_NOMEM;
    uint8_t enc[256];
    const int recode = w->type == BN_TYPE_TQ1_0 && bn_kernels_tq1_vbmi();
    if (recode) bn_tq1v_encoder(enc);
    const size_t G = w->type == BN_TYPE_I2_S ? (bn_i2s_x16(w) ? 16 : 4) : (size_t)bn_kernels_tq_group();
    repack_task T = {w->type, w->data, dst, rb, (size_t)w->cols / 256, (size_t)w->rows / G, G, recode ? enc : NULL};
    if (pool) bn_threadpool_run_chunks(pool, repack_groups, &T, 4 * bn_threadpool_size(pool));
    else repack_groups(&T, 0, 1);
    /* rows after the last group keep the file layout (and encoding) */
    memcpy(dst + T.groups * G * rb, T.src + T.groups * G * rb, total - T.groups * G * rb);
    __atomic_store_n(&w->packed, (void *)dst, __ATOMIC_RELEASE); /* complete: readers may use it now */
    *bytes = total;
    return BN_OK;
}

/* ---- activations ----
 * Buffer layout (each part 64-byte aligned):
 *   I8_ROW: q [n_tok*cols] int8 | qp [n_tok*cols] int8 (n_tok > 1 only) | d [n_tok] float | sum [n_tok] int32
 *   Q8_K:   q [n_tok*cols] int8 | d [n_tok*cols/256] float | sum [n_tok*cols/256] int32 | bsums [n_tok*cols/16] int16
 *   Q8_0:   q [n_tok*cols] int8 | d [n_tok*cols/32] float
 *   F16, BF16: h [n_tok*cols] uint16 | hf [n_tok*cols] float (n_tok > 1 only)
 *   F32:    nothing (a->x points at the caller's input) */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

typedef struct act_layout {
    size_t off_q, off_qp, off_d, off_sum, off_bsums, off_hf, total;
} act_layout;

static void act_layout_get(bn_act_format fmt, int64_t n_tok, int64_t cols, act_layout *L)
{
    size_t n = (size_t)n_tok * (size_t)cols, nt = (size_t)n_tok;
    memset(L, 0, sizeof *L);
    switch (fmt) {
    case BN_ACT_I8_ROW:
        /* a batch also gets q reordered for the GEMM kernels (bn_act_view.qp) */
        L->off_qp = nt > 1 ? align64(n) : 0;
        L->off_d = align64(n) + (nt > 1 ? align64(n) : 0);
        L->off_sum = L->off_d + align64(nt * 4);
        L->total = L->off_sum + align64(nt * 4);
        break;
    case BN_ACT_Q8_K:
        L->off_d = align64(n);
        L->off_sum = L->off_d + align64(n / 256 * 4);
        L->off_bsums = L->off_sum + align64(n / 256 * 4);
        L->total = L->off_bsums + align64(n / 16 * 2);
        break;
    case BN_ACT_Q8_0:
        L->off_d = align64(n);
        L->total = L->off_d + align64(n / 32 * 4);
        break;
    case BN_ACT_F16:
    case BN_ACT_BF16:
        /* a batch also gets the rounded values widened back to float (bn_act_view.hf) */
        L->off_hf = nt > 1 ? align64(n * 2) : 0;
        L->total = align64(n * 2) + (nt > 1 ? align64(n * 4) : 0);
        break;
    default: L->total = 0; break;
    }
}

void bn_act_view_get(const bn_act *a, bn_act_view *v)
{
    act_layout L;
    act_layout_get(a->format, a->n_tok, a->cols, &L);
    const uint8_t *b = a->buf;
    memset(v, 0, sizeof *v);
    v->n_tok = a->n_tok;
    v->cols = a->cols;
    switch (a->format) {
    case BN_ACT_I8_ROW:
    case BN_ACT_Q8_K:
    case BN_ACT_Q8_0:
        v->q = (const int8_t *)b;
        v->d = (const float *)(const void *)(b + L.off_d);
        if (a->format != BN_ACT_Q8_0) v->sum = (const int32_t *)(const void *)(b + L.off_sum);
        if (a->format == BN_ACT_Q8_K) v->bsums = (const int16_t *)(const void *)(b + L.off_bsums);
        if (a->format == BN_ACT_I8_ROW && L.off_qp) v->qp = (const int8_t *)(b + L.off_qp);
        break;
    case BN_ACT_F16:
    case BN_ACT_BF16:
        v->h = (const uint16_t *)(const void *)b;
        if (L.off_hf) v->hf = (const float *)(const void *)(b + L.off_hf);
        break;
    default: v->x = a->x; break;
    }
}

void bn_act_init(bn_act *a)
{
    memset(a, 0, sizeof *a);
}

void bn_act_free(bn_act *a)
{
    if (!a) return;
    bn_aligned_free(a->buf);
    memset(a, 0, sizeof *a);
}

typedef struct act_task {
    float (*act_i8)(const float *x, int64_t n, int8_t *q, int32_t *sum);
    bn_act_format fmt;
    const float *x;
    int64_t n_tok, cols;
    uint8_t *buf;
    act_layout L;
} act_task;

void bn_act_i8_reorder(const int8_t *q, int8_t *qp, int64_t K)
{
    int64_t c = 0;
    for (; c + 256 <= K; c += 256)
        for (int i = 0; i < 4; i++) {
            memcpy(qp + c + 64 * i, q + c + 32 * i, 32);
            memcpy(qp + c + 64 * i + 32, q + c + 128 + 32 * i, 32);
        }
    memcpy(qp + c, q + c, (size_t)(K - c));
}

static void act_quantize_rows(void *arg, int ith, int nth)
{
    act_task *T = arg;
    long lo, hi;
    bn_split_range((long)T->n_tok, ith, nth, 1, &lo, &hi);
    const int64_t K = T->cols;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = T->x + t * K;
        switch (T->fmt) {
        case BN_ACT_I8_ROW: {
            int8_t *q = (int8_t *)T->buf + t * K;
            float *d = (float *)(void *)(T->buf + T->L.off_d);
            int32_t *s = (int32_t *)(void *)(T->buf + T->L.off_sum);
            d[t] = T->act_i8(x, K, q, &s[t]);
            if (T->L.off_qp) bn_act_i8_reorder(q, (int8_t *)T->buf + T->L.off_qp + t * K, K);
            break;
        }
        case BN_ACT_Q8_K: {
            int8_t *q = (int8_t *)T->buf + t * K;
            float *d = (float *)(void *)(T->buf + T->L.off_d) + t * (K / 256);
            int32_t *s = (int32_t *)(void *)(T->buf + T->L.off_sum) + t * (K / 256);
            int16_t *bs = (int16_t *)(void *)(T->buf + T->L.off_bsums) + t * (K / 16);
            bn_quantize_act_q8_K(x, K, q, d, s, bs);
            break;
        }
        case BN_ACT_Q8_0: {
            int8_t *q = (int8_t *)T->buf + t * K;
            float *d = (float *)(void *)(T->buf + T->L.off_d) + t * (K / 32);
            bn_quantize_act_q8_0(x, K, q, d);
            break;
        }
        case BN_ACT_F16: {
            uint16_t *h = (uint16_t *)(void *)T->buf + t * K;
            for (int64_t k = 0; k < K; k++) h[k] = bn_fp32_to_fp16(x[k]);
            if (T->L.off_hf) {
                float *hf = (float *)(void *)(T->buf + T->L.off_hf) + t * K;
                for (int64_t k = 0; k < K; k++) hf[k] = bn_fp16_to_fp32(h[k]);
            }
            break;
        }
        case BN_ACT_BF16: {
            uint16_t *h = (uint16_t *)(void *)T->buf + t * K;
            for (int64_t k = 0; k < K; k++) h[k] = bn_fp32_to_bf16(x[k]);
            if (T->L.off_hf) {
                float *hf = (float *)(void *)(T->buf + T->L.off_hf) + t * K;
                for (int64_t k = 0; k < K; k++) hf[k] = bn_bf16_to_fp32(h[k]);
            }
            break;
        }
        default: break;
        }
    }
}

bn_status bn_act_quantize(bn_act *a, bn_act_format fmt, const float *x, int64_t n_tok, int64_t cols,
                          bn_threadpool *pool)
{
    if (!a || !x) return bn_error(BN_ERR_INVALID_ARG, "activations: NULL argument");
    if ((unsigned)fmt > BN_ACT_Q8_0) return bn_error(BN_ERR_INVALID_ARG, "activations: unknown format %d", (int)fmt);
    int64_t mult = fmt == BN_ACT_I8_ROW ? BN_I2S_BLOCK : fmt == BN_ACT_Q8_K ? 256 : fmt == BN_ACT_Q8_0 ? 32 : 1;
    /* the buffer's size computation needs n_tok * cols * 8 to fit a size_t */
    if (n_tok <= 0 || cols <= 0 || cols % mult || cols > (1 << 24) || (uint64_t)n_tok > (SIZE_MAX / 8) / (uint64_t)cols)
        return bn_error(BN_ERR_INVALID_ARG, "activations: bad shape %lld x %lld (row length must be a multiple of %lld)",
                        (long long)n_tok, (long long)cols, (long long)mult);
    act_layout L;
    act_layout_get(fmt, n_tok, cols, &L);
    if (L.total > a->buf_cap) {
        void *nb = bn_aligned_alloc(L.total, 64);
        if (!nb) return BN_ERR_NOMEM;
        bn_aligned_free(a->buf);
        a->buf = nb;
        a->buf_cap = L.total;
    }
    a->format = fmt;
    a->n_tok = n_tok;
    a->cols = cols;
    a->x = fmt == BN_ACT_F32 ? x : NULL;
    if (fmt == BN_ACT_F32) return BN_OK;
    const bn_kernel_table *tab = bn_kernel_table_get(bn_kernels_active());
    while (tab && !tab->act_i8) tab = tab->fallback;
    act_task T = {tab ? tab->act_i8 : bn_quantize_act_i8, fmt, x, n_tok, cols, a->buf, L};
    /* a few short rows (a decode step of a few sequences) are not worth waking the workers for */
    if (n_tok == 1 || !pool || (double)n_tok * (double)cols < 65536.0) act_quantize_rows(&T, 0, 1);
    else bn_threadpool_run_chunks(pool, act_quantize_rows, &T, bn_threadpool_size(pool));
    return BN_OK;
}

/* ---- matmul ---- */

/* Up to BN_MATMUL_MAX products sharing one activation buffer run as one parallel job: their rows
 * form one range that the threads split, so the workers wake once and share the work evenly even
 * where one matrix is small (K and V next to Q). */
typedef struct mm_task {
    const bn_weight *w[BN_MATMUL_MAX];
    float *y[BN_MATMUL_MAX];
    bn_mm_fn fn[BN_MATMUL_MAX];
    int64_t first[BN_MATMUL_MAX + 1]; /* product i owns rows [first[i], first[i+1]) of the range */
    int n;
    bn_act_view v;
    long align;
} mm_task;

static void mm_rows(void *arg, int ith, int nth)
{
    mm_task *T = arg;
    long lo, hi;
    bn_split_range((long)T->first[T->n], ith, nth, T->align, &lo, &hi);
    for (int i = 0; i < T->n; i++) {
        int64_t a = lo > T->first[i] ? lo : T->first[i], b = hi < T->first[i + 1] ? hi : T->first[i + 1];
        if (a < b) T->fn[i](T->w[i], &T->v, T->y[i], a - T->first[i], b - T->first[i]);
    }
}

static bn_status mm_kernel(const bn_weight *w, const bn_act *a, bn_mm_fn *fn, int *align)
{
    if (!w || !w->data) return bn_error(BN_ERR_INVALID_ARG, "matmul: NULL argument");
    if (a->format != bn_weight_act_format(w))
        return bn_error(BN_ERR_INVALID_ARG, "matmul: activations are in format %d, %s weights need %d", (int)a->format,
                        bn_type_name(w->type), (int)bn_weight_act_format(w));
    if (a->cols != w->cols || a->n_tok <= 0)
        return bn_error(BN_ERR_INVALID_ARG, "matmul: activations have %lld columns, weights %lld", (long long)a->cols,
                        (long long)w->cols);
    const bn_kernel_table *tab = bn_kernel_table_get(bn_kernels_active());
    while (!tab->mm[w->type] && tab->fallback) tab = tab->fallback;
    if (!tab->mm[w->type]) tab = &bn_kernels_ref;
    *fn = tab->mm[w->type];
    if (!*fn) return bn_error(BN_ERR_UNSUPPORTED, "matmul: no kernel for %s", bn_type_name(w->type));
    if (tab->row_align > *align) *align = tab->row_align;
    if ((w->type == BN_TYPE_TQ1_0 || w->type == BN_TYPE_TQ2_0) && tab->tq_group > *align) *align = tab->tq_group;
    if (bn_i2s_x16(w) && *align < 16) *align = 16; /* whole x16 groups per thread */
    return BN_OK;
}

bn_status bn_matmul_multi(const bn_weight *const *w, int n, const bn_act *a, float *const *y, bn_threadpool *pool)
{
    if (!w || !a || !y || n < 1 || n > BN_MATMUL_MAX) return bn_error(BN_ERR_INVALID_ARG, "matmul: bad arguments");
    mm_task T;
    int align = 1;
    T.n = n;
    T.first[0] = 0;
    double work = 0;
    for (int i = 0; i < n; i++) {
        if (!y[i]) return bn_error(BN_ERR_INVALID_ARG, "matmul: NULL argument");
        bn_status st = mm_kernel(w[i], a, &T.fn[i], &align);
        if (st != BN_OK) return st;
        T.w[i] = w[i];
        T.y[i] = y[i];
        T.first[i + 1] = T.first[i] + w[i]->rows;
        work += (double)w[i]->rows * (double)w[i]->cols * (double)a->n_tok;
    }
    if (a->format == BN_ACT_F32 ? !a->x : !a->buf) return bn_error(BN_ERR_STATE, "matmul: activations not prepared");
    bn_act_view_get(a, &T.v);
    T.align = align;
    /* Small products are not worth waking the workers for. */
    if (!pool || bn_threadpool_size(pool) == 1 || work < 65536.0) mm_rows(&T, 0, 1);
    else {
        /* rows in chunks taken by whichever thread is free: on a busy machine a worker that is not
         * scheduled does not hold the product up.  A single token gets 4 per thread, which keeps
         * each a long memory stream; a batch is bound by compute and gets 16, so the thread that
         * finishes last waits less for the other (half a chunk on average), but no batch chunk is
         * smaller than 2^18 multiply-adds (a few microseconds): on a small model, claiming more
         * chunks cost more than the balance gained (tiny model, 4 sequences per pass: +17%).  A
         * single token keeps its 4 per thread even then: with as few chunks as threads it was
         * often 1.6x slower, whenever a worker woke late. */
        const int nth = bn_threadpool_size(pool);
        long chunks = (a->n_tok > 1 ? 16L : 4L) * nth, max_chunks = (long)((T.first[n] + align - 1) / align);
        if (a->n_tok > 1 && (double)chunks * 262144.0 > work) chunks = (long)(work / 262144.0) > nth ? (long)(work / 262144.0) : nth;
        bn_threadpool_run_chunks(pool, mm_rows, &T, (int)(chunks < max_chunks ? chunks : max_chunks));
    }
    return BN_OK;
}

bn_status bn_matmul(const bn_weight *w, const bn_act *a, float *y, bn_threadpool *pool)
{
    return bn_matmul_multi(&w, 1, a, &y, pool);
}
