/* Internal interface between the kernel front end (kernels.c), the dispatcher (cpu.c) and the
 * implementations (kernels_ref.c, kernels_avx2.c, ...).  Not for use outside src/kernels and its
 * tests. */
#ifndef BN_KERNELS_IMPL_H
#define BN_KERNELS_IMPL_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/kernels.h"

/* Prepared activations, as pointers into bn_act.buf (see bn_act_view_get for the layout). */
typedef struct bn_act_view {
    const int8_t *q;      /* I8_ROW, Q8_K, Q8_0: [n_tok][cols] */
    const int8_t *qp;     /* I8_ROW with n_tok > 1: q with each 256-element chunk reordered as
                             32 of q[32i..], 32 of q[128 + 32i..] for i = 0..3 (a last odd 128 as
                             is), so that a pair of I2_S blocks' codes shifted by 6 - 2i meet 64
                             contiguous bytes; NULL otherwise */
    const float *d;       /* I8_ROW: s per token [n_tok]; Q8_K: [n_tok][cols/256]; Q8_0: [n_tok][cols/32] */
    const int32_t *sum;   /* I8_ROW: sum of q per token [n_tok]; Q8_K: per 256-block [n_tok][cols/256] */
    const int16_t *bsums; /* Q8_K: sums per 16 elements [n_tok][cols/16] */
    const uint16_t *h;    /* F16, BF16: [n_tok][cols] */
    const float *hf;      /* F16, BF16 with n_tok > 1: h widened back to float, so a GEMM need not
                             widen each token once per weight row; NULL otherwise */
    const float *x;       /* F32: [n_tok][cols] */
    int64_t n_tok, cols;
} bn_act_view;

void bn_act_view_get(const bn_act *a, bn_act_view *v);
/* Writes qp from q for one token of K values (the order bn_act_view.qp describes). */
void bn_act_i8_reorder(const int8_t *q, int8_t *qp, int64_t K);

/* Computes y[t * w->rows + r] for every token t and rows r0 <= r < r1. */
typedef void (*bn_mm_fn)(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1);

/* One implementation: a kernel per weight type (NULL: use the fallback's, finally the reference's). */
typedef struct bn_kernel_table {
    bn_mm_fn mm[BN_TYPE_COUNT];
    /* Rows a thread's share is rounded to (keeps SIMD row groups whole); 0 means 1. */
    int row_align;
    /* Whether mm[BN_TYPE_I2_S] reads the row-interleaved layout bn_weight_repack makes (it must
     * still accept weights without one). */
    int i2s_x4;
    /* Whether it reads short rows (see bn_i2s_x16) in the x16 layout instead. */
    int i2s_x16;
    /* Rows per group of the TQ row-interleaved layout below that mm[BN_TYPE_TQ1_0] and
     * mm[BN_TYPE_TQ2_0] read: 4 or 16, or 0 for none (they must still accept weights without one).
     * A thread's share of a TQ product is rounded to whole groups. */
    int tq_group;
    /* Optional: bn_quantize_act_i8 (same bits), for the I8_ROW activations.  NULL: the next
     * table's, finally bn_quantize_act_i8 itself. */
    float (*act_i8)(const float *x, int64_t n, int8_t *q, int32_t *sum);
    /* Where a type has no kernel here, the next table to try (NULL: the reference). */
    const struct bn_kernel_table *fallback;
} bn_kernel_table;

extern const bn_kernel_table bn_kernels_ref;
#if defined(BN_HAVE_AVX2)
extern const bn_kernel_table bn_kernels_avx2;
#endif
#if defined(BN_HAVE_AVX512)
extern const bn_kernel_table bn_kernels_avx512;
#endif
#if defined(BN_HAVE_NEON)
extern const bn_kernel_table bn_kernels_neon;
#endif
#if defined(__wasm_simd128__) /* WebAssembly: SIMD128 is fixed when the module is built */
extern const bn_kernel_table bn_kernels_wasm;
#endif

/* The table of an implementation (NULL if not compiled in). */
const bn_kernel_table *bn_kernel_table_get(bn_kernel_impl k);
/* Whether this build has, and this CPU can run, the implementation. */
int bn_kernel_impl_available(bn_kernel_impl k);

/* Float dot products of F32/F16/BF16 weights use one summation order on every implementation, the
 * one ggml's AVX2 code uses: 32 running sums (element k goes to sum k % 32, each updated with a
 * fused multiply-add), reduced as 4 vectors of 8 (v0+v2, v1+v3, then their sum), then the two
 * 4-lane halves, then pairwise (l0+l1)+(l2+l3); a tail of K % 32 elements is added in double.  So
 * every implementation gives the same bits.  (For F16/BF16 inputs each product is exact in float,
 * so a plain multiply-add equals the fused one.) */
static inline float bn_reduce32(const float p[32])
{
    float v[8];
    for (int i = 0; i < 8; i++) {
        float v0 = p[i] + p[16 + i];
        float v1 = p[8 + i] + p[24 + i];
        v[i] = v0 + v1;
    }
    float t0 = v[0] + v[4], t1 = v[1] + v[5], t2 = v[2] + v[6], t3 = v[3] + v[7];
    return (t0 + t1) + (t2 + t3);
}

/* ---- I2_S row-interleaved layout ("x4"), made by bn_weight_repack ----
 * A GEMV computes four rows at once so that each activation load serves four rows.  Reading four
 * rows of the file layout at once makes four memory streams, which the machines tried serve at
 * half the speed of one (bench/kernels), so the repacked layout puts the four rows' blocks side by
 * side and the kernel reads a single stream.  With rb = K / 4 bytes per row and nblk = K / 128:
 *   group g (rows 4g .. 4g+3) occupies bytes [4g·rb, 4g·rb + 4·rb);
 *   for each pair p of blocks (2p, 2p+1), row i's 64 bytes lie at 256p + 64i in the group;
 *   an odd last block: row i's 32 bytes at 256·(nblk/2) + 32i.
 * Rows after the last full group keep the file layout, at r·rb as in the file.  The per-tensor
 * scale stays in bn_weight.scale.  Same bytes, same size, only their order differs. */
typedef struct bn_i2s_rowptr {
    const uint8_t *pairs; /* blocks 2p, 2p+1 of the row: 64 bytes at pairs + p * pair_stride */
    size_t pair_stride;   /* 64 in the file layout, 256 in a group of the x4 layout */
    const uint8_t *tail;  /* the odd last block, if nblk is odd */
} bn_i2s_rowptr;

/* Row r of w, in the repacked copy pk (bn_weight_packed(w), read once per product) or the file's. */
static inline bn_i2s_rowptr bn_i2s_row_at(const bn_weight *w, const void *pk, int64_t r)
{
    const size_t rb = (size_t)w->cols / 4, npair = (size_t)w->cols / 256;
    bn_i2s_rowptr R;
    if (pk && r < (w->rows & ~(int64_t)3)) {
        const uint8_t *g = (const uint8_t *)pk + (size_t)(r / 4) * 4 * rb;
        R.pairs = g + 64 * (size_t)(r % 4);
        R.pair_stride = 256;
        R.tail = g + 256 * npair + 32 * (size_t)(r % 4);
    } else {
        R.pairs = (const uint8_t *)(pk ? pk : w->data) + (size_t)r * rb;
        R.pair_stride = 64;
        R.tail = R.pairs + 64 * npair;
    }
    return R;
}

/* ---- I2_S x16, for short rows (AVX-512) ----
 * Where rows are short (K <= BN_I2S_X16_MAX_K), a 2-row x 4-token tile spends as much on its
 * reductions as on its products.  Such weights are repacked in groups of 16 rows instead: block b
 * of group g (rows 16g .. 16g+15) is 512 bytes at 16g*rb + 512b, and its 64-byte vector v (v = 0..7)
 * holds bytes 4v .. 4v+3 of each row's block, row i at 4i.  A byte j of a block holds elements j,
 * 32+j, 64+j, 96+j in its bit pairs from the top, so lane i of vector v, masked to one bit pair,
 * holds four consecutive elements of row i: one VPDPBUSD with those four activations, broadcast,
 * serves the 16 rows, which stay in the lanes.  Rows after the last group keep the file layout. */
#define BN_I2S_X16_MAX_K 1024
/* Whether w's repacked copy (if it has one) is in the x16 layout: the active kernels read it and
 * w's rows are short enough. */
bool bn_i2s_x16(const bn_weight *w);

/* The single-token I2_S product over rows [r0, r1), shared by the x86 files: whole groups of four
 * rows of the repacked copy pk through gemv_x4 (one memory stream), other rows one at a time
 * through row (T = 1), each file passing its own kernels; then the reference's float step. */
typedef void (*bn_i2s_gemv_x4_fn)(const uint8_t *g, int64_t nblk, const int8_t *q, int32_t out[4]);
typedef void (*bn_i2s_row_fn)(const bn_i2s_rowptr *row, int64_t nblk, const int8_t *q, int64_t K, int T, int32_t *out);
static inline void bn_i2s_gemv_rows(const bn_weight *w, const void *pk, const int8_t *q, float d, int32_t qsum, float *y,
                                    int64_t r0, int64_t r1, bn_i2s_gemv_x4_fn gemv_x4, bn_i2s_row_fn row)
{
    const int64_t K = w->cols, nblk = K / 128, rb = K / 4;
    const int64_t gend = pk ? (w->rows & ~(int64_t)3) : 0; /* rows in x4 groups */
    const float sum = (float)qsum;
    for (int64_t r = r0; r < r1;) {
        int32_t acc[4];
        if (r % 4 == 0 && r + 4 <= r1 && r < gend) {
            gemv_x4((const uint8_t *)pk + r * rb, nblk, q, acc);
#if defined(__SSE2__)
            /* the four float steps in the lanes of one vector (one division instead of four,
             * which for short rows was the bound), each lane the reference's operations */
            __m128 v = _mm_sub_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)acc)), _mm_set1_ps(sum));
            _mm_storeu_ps(y + r, _mm_mul_ps(_mm_div_ps(v, _mm_set1_ps(d)), _mm_set1_ps(w->scale)));
#else
            for (int i = 0; i < 4; i++) y[r + i] = ((float)acc[i] - sum) / d * w->scale;
#endif
            r += 4;
        } else {
            bn_i2s_rowptr R = bn_i2s_row_at(w, pk, r);
            row(&R, nblk, q, K, 1, acc);
            y[r] = ((float)acc[0] - sum) / d * w->scale;
            r++;
        }
    }
}

/* The 32 bytes of block b of a row. */
static inline const uint8_t *bn_i2s_block(const bn_i2s_rowptr *R, int64_t b, int64_t nblk)
{
    return (b | 1) < nblk ? R->pairs + (size_t)(b >> 1) * R->pair_stride + 32 * (size_t)(b & 1) : R->tail;
}

/* ---- TQ1_0 / TQ2_0 row-interleaved layouts ("TQ x4", "TQ x16"), made by bn_weight_repack ----
 * As for I2_S: G rows at once from one memory stream (G = bn_kernels_tq_group(): 4 for AVX2, 16 for
 * AVX-512).  With bsz the block size (54 or 66 bytes), nb = K / 256 blocks and rb = nb * bsz bytes
 * per row, group g (rows Gg .. Gg+G-1) occupies bytes [Gg*rb, Gg*rb + G*rb), and block b of its G
 * rows G*bsz bytes at b*G*bsz in it, the quantised bytes first (G * (bsz - 2)) and the G fp16
 * scales (rows 0..G-1) last.  The quantised bytes:
 *   x4, TQ2_0 (256 bytes): qs[0..31] of rows 0, 1; qs[32..63] of rows 0, 1; the same for rows 2, 3.
 *                          (A 64-byte vector holds the same elements of two rows, one per 256-bit
 *                          half.)
 *   x4, TQ1_0 (208 bytes): qs[0..31] of rows 0..3; qs[32..47] of rows 0..3; qh[0..3] of rows 0..3.
 *   x16, both: 64-byte vector v holds the quantised dword v (bytes 4v .. 4v+3, qs then qh) of the
 *              16 rows, row i at 4i.  A dword's four bytes hold four consecutive elements in each
 *              of their code positions (TQ2_0 shifts 2l; TQ1_0 trits n), so one VPDPBUSD gives
 *              all 16 rows their products with four activations: the rows are the lanes and a
 *              block sum needs no horizontal reduction.
 * Rows after the last full group keep the file layout, at r*rb as in the file.  Same bytes, same
 * size, only their order differs. */
#define BN_TQ_X4_SCALES(bsz) (4 * ((bsz) - 2)) /* offset of the four scales in an x4 group's block */
/* Rows per group of the TQ layout bn_weight_repack makes for the active implementation (0: none). */
int bn_kernels_tq_group(void);

/* ---- TQ1_0 re-encoded for byte lookups ("TQ1 VBMI"), on CPUs with AVX-512 VBMI ----
 * The same layout, but each of the G * 48 five-trit bytes of a group's block (qs of the G rows;
 * qh and the scales keep the file's encoding) is replaced by a code e whose trits are table
 * lookups on 7-bit windows of e, one VPERMI2B each (a 128-byte table in two registers; the index
 * byte's bit 7 is ignored):
 *   trit n = bn_tq1v_lut[n][i_n] / 64 with i_0 = i_1 = e & 0x7f, i_2 = i_3 = e >> 1 and
 *   i_4 = (e & 1) | ((e >> 1) & 0x7e) (bit 1 of e left out),
 * where trit n is the file's trit n (element m + 32n of byte m; n = 0 the most significant).  Two
 * windows alone cannot hold all 243 patterns (each value of one window's bits must then meet 14
 * of the other's; counting shows 68 codes are needed), so the third leaves out a middle bit.  The
 * tables were found by simulated annealing over their 5 x 128 entries, maximising the distinct
 * patterns among the 256 codes until all 243 occurred; tests/kernels decodes every pattern.  The
 * entries are 64 x trit, as the AVX-512 kernel feeds its trits to VPDPBUSD. */
extern const uint8_t bn_tq1v_lut[5][128];
/* enc[q]: the code for file byte q (its five trits as the reference decodes them, any byte value). */
void bn_tq1v_encoder(uint8_t enc[256]);
/* Whether bn_weight_repack re-encodes TQ1_0 groups this way and the AVX-512 kernel reads them so:
 * the AVX-512 implementation is the active one and the CPU has VBMI, unless overridden (never
 * with another implementation active: the AVX2 kernels read the file's encoding in their x4
 * layout). */
int bn_kernels_tq1_vbmi(void);
/* Tests: 0 turns the re-encoding off, 1 back on where the CPU has VBMI, -1 follows the CPU.  Only
 * for weights repacked afterwards (a copy keeps the encoding it was made with). */
void bn_kernels_tq1_vbmi_override(int on);

#endif
