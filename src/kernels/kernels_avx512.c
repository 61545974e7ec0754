/* AVX-512 kernels (F, BW, VL and VNNI, with AVX2/FMA/F16C; chosen only where all are present).  Same results as the reference, bit for
 * bit, like the AVX2 ones (see kernels_avx2.c for the contract).
 *
 * VPDPBUSD multiplies unsigned bytes (the ternary codes 0..3) by signed bytes (q) and adds groups of
 * four products straight into int32 lanes, without saturation, so there are no int16 intermediates:
 * an int32 lane gathers K/16 (zmm) or K/8 (ymm) groups of at most 4*3*128 = 1536, below 2^31 for
 * every K up to 2^24 (the weights' limit). */
#include <immintrin.h>
#include <string.h>

#include "common/fp16.h"
#include "kernels/kernels_impl.h"

#define BN_AI static inline __attribute__((always_inline))
/* Full unrolling of a short loop whose trip count is a constant after inlining, so that the arrays
 * it indexes stay in registers.  Clang does not take GCC's spelling (its I2_S x16 kernel kept two
 * tokens' accumulators in memory and ran at a third of the speed). */
#if defined(__clang__)
#define BN_UNROLL _Pragma("clang loop unroll(full)")
#else
#define BN_UNROLL _Pragma("GCC unroll 4")
#endif

BN_AI __m512i loadu512(const void *p) { return _mm512_loadu_si512(p); }
BN_AI __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
/* four activation bytes in every dword lane (a VPDPBUSD memory operand with {1to16}) */
BN_AI __m512i bcast32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

BN_AI int32_t hsum256_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

BN_AI float f16_scalar(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

static int64_t row_tile(size_t row_bytes)
{
    int64_t r = (int64_t)(8192 / (row_bytes ? row_bytes : 1));
    return r < 1 ? 1 : r > 64 ? 64 : r;
}

/* ---- I2_S ----
 * A block's 32 bytes are broadcast to both halves of a zmm; masking them with (0xc0 | 0x30) and
 * (0x0c | 0x03) leaves the codes of elements 0..63 and 64..127 of the block, in element order (they
 * meet 64 contiguous activation bytes each), but still in place: times 64, 16, 4 and 1.  The scale
 * is the same in every int32 lane of an accumulator for the whole row, so the lanes are shifted
 * back once per row (exact: each lane holds a multiple of its scale), which saves the per-block
 * shifts.
 *
 * Overflow: a VPDPBUSD group is at most 4 * 192 * 128 = 98304 < 2^17 in size, and a lane of one
 * accumulator gets at most one group per block, so I2S_CHUNK = 4096 blocks keep even the sum of
 * two accumulators below 2 * 2^12 * 2^17 = 2^30.  After the shift a lane holds an exact partial
 * sum of the true dot product, bounded as in the header comment. */

#define I2S_CHUNK 4096

BN_AI void i2s_row(const bn_i2s_rowptr *row, int64_t nblk, const int8_t *q0, int64_t K, const int T, int32_t *out)
{
    const __m512i m01 = _mm512_inserti64x4(_mm512_set1_epi8((char)0xc0), _mm256_set1_epi8(0x30), 1);
    const __m512i m23 = _mm512_inserti64x4(_mm512_set1_epi8(0x0c), _mm256_set1_epi8(0x03), 1);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_setzero_si256(), 1);
    /* two blocks per step with separate accumulators, so small T still has independent chains;
     * acc[t][j] for even j holds codes scaled by (64 | 16), for odd j by (4 | 1) */
    __m512i acc[8][4], tot[8];
    const int NA = T <= 2 ? 4 : 2;
    for (int t = 0; t < T; t++) tot[t] = _mm512_setzero_si512();
    for (int64_t c0 = 0; c0 < nblk; c0 += I2S_CHUNK) {
        const int64_t cend = nblk - c0 < I2S_CHUNK ? nblk : c0 + I2S_CHUNK;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < NA; j++) acc[t][j] = _mm512_setzero_si512();
        int64_t b = c0;
        for (; b + 2 <= cend; b += 2) {
            /* Without a software prefetch this loop streams from memory at about half the speed
             * of the AVX2 one on Zen 4 (measured); 384 bytes ahead suits this loop (256 and 128
             * were slower, 512 and more much slower). */
            const uint8_t *p = row->pairs + (size_t)(b >> 1) * row->pair_stride;
            _mm_prefetch((const char *)p + 384, _MM_HINT_T0);
            __m512i w01 = loadu512(p);
            __m512i w0 = _mm512_shuffle_i64x2(w01, w01, 0x44), w1 = _mm512_shuffle_i64x2(w01, w01, 0xee);
            __m512i x0 = _mm512_and_si512(w0, m01), x1 = _mm512_and_si512(w0, m23);
            __m512i x2 = _mm512_and_si512(w1, m01), x3 = _mm512_and_si512(w1, m23);
            for (int t = 0; t < T; t++) {
                const int8_t *q = q0 + t * K + 128 * b;
                acc[t][0] = _mm512_dpbusd_epi32(acc[t][0], x0, loadu512(q));
                acc[t][1] = _mm512_dpbusd_epi32(acc[t][1], x1, loadu512(q + 64));
                acc[t][NA - 2] = _mm512_dpbusd_epi32(acc[t][NA - 2], x2, loadu512(q + 128));
                acc[t][NA - 1] = _mm512_dpbusd_epi32(acc[t][NA - 1], x3, loadu512(q + 192));
            }
        }
        if (b < cend) {
            __m512i w0 = _mm512_broadcast_i64x4(loadu256(row->tail));
            __m512i x0 = _mm512_and_si512(w0, m01), x1 = _mm512_and_si512(w0, m23);
            for (int t = 0; t < T; t++) {
                const int8_t *q = q0 + t * K + 128 * b;
                acc[t][0] = _mm512_dpbusd_epi32(acc[t][0], x0, loadu512(q));
                acc[t][1] = _mm512_dpbusd_epi32(acc[t][1], x1, loadu512(q + 64));
            }
        }
        for (int t = 0; t < T; t++) {
            __m512i s01 = acc[t][0], s23 = acc[t][1];
            if (NA == 4) {
                s01 = _mm512_add_epi32(s01, acc[t][2]);
                s23 = _mm512_add_epi32(s23, acc[t][3]);
            }
            s01 = _mm512_srav_epi32(s01, sh01);
            s23 = _mm512_srav_epi32(s23, sh23);
            tot[t] = _mm512_add_epi32(tot[t], _mm512_add_epi32(s01, s23));
        }
    }
    for (int t = 0; t < T; t++) out[t] = _mm512_reduce_add_epi32(tot[t]);
}

#define I2S_TOK 8

/* One token, one group of the x4 layout (kernels_impl.h): each activation vector is loaded once
 * for four rows, and the rows give eight independent accumulator chains, so the loop is bound by
 * VPDPBUSD throughput, not by loads or latency, and reads one memory stream.  Masks, shifts and
 * chunking as in i2s_row (so the same overflow bound). */
static void i2s_gemv_x4(const uint8_t *g, int64_t nblk, const int8_t *q, int32_t out[4])
{
    const __m512i m01 = _mm512_inserti64x4(_mm512_set1_epi8((char)0xc0), _mm256_set1_epi8(0x30), 1);
    const __m512i m23 = _mm512_inserti64x4(_mm512_set1_epi8(0x0c), _mm256_set1_epi8(0x03), 1);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_setzero_si256(), 1);
    __m512i tot[4];
    for (int i = 0; i < 4; i++) tot[i] = _mm512_setzero_si512();
    for (int64_t c0 = 0; c0 < nblk; c0 += I2S_CHUNK) {
        const int64_t cend = nblk - c0 < I2S_CHUNK ? nblk : c0 + I2S_CHUNK;
        __m512i a0[4], a1[4];
        for (int i = 0; i < 4; i++) a0[i] = a1[i] = _mm512_setzero_si512();
        int64_t b = c0;
        for (; b + 2 <= cend; b += 2) {
            const int8_t *qb = q + 128 * b;
            const uint8_t *p = g + 128 * b; /* 256 bytes per pair of blocks */
            __m512i qa = loadu512(qb), qc = loadu512(qb + 64), qd = loadu512(qb + 128), qe = loadu512(qb + 192);
            for (int i = 0; i < 4; i++) {
                __m512i w0 = _mm512_broadcast_i64x4(loadu256(p + 64 * i));
                __m512i w1 = _mm512_broadcast_i64x4(loadu256(p + 64 * i + 32));
                a0[i] = _mm512_dpbusd_epi32(a0[i], _mm512_and_si512(w0, m01), qa);
                a1[i] = _mm512_dpbusd_epi32(a1[i], _mm512_and_si512(w0, m23), qc);
                a0[i] = _mm512_dpbusd_epi32(a0[i], _mm512_and_si512(w1, m01), qd);
                a1[i] = _mm512_dpbusd_epi32(a1[i], _mm512_and_si512(w1, m23), qe);
            }
        }
        if (b < cend) { /* the odd last block: 32 bytes per row */
            __m512i qa = loadu512(q + 128 * b), qc = loadu512(q + 128 * b + 64);
            for (int i = 0; i < 4; i++) {
                __m512i w0 = _mm512_broadcast_i64x4(loadu256(g + 128 * b + 32 * i));
                a0[i] = _mm512_dpbusd_epi32(a0[i], _mm512_and_si512(w0, m01), qa);
                a1[i] = _mm512_dpbusd_epi32(a1[i], _mm512_and_si512(w0, m23), qc);
            }
        }
        for (int i = 0; i < 4; i++)
            tot[i] = _mm512_add_epi32(tot[i], _mm512_add_epi32(_mm512_srav_epi32(a0[i], sh01), _mm512_srav_epi32(a1[i], sh23)));
    }
    /* the four rows' lane sums together: pairs of rows interleaved, then the four 128-bit parts */
    const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(tot[0], tot[1]), _mm512_unpackhi_epi32(tot[0], tot[1]));
    const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(tot[2], tot[3]), _mm512_unpackhi_epi32(tot[2], tot[3]));
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
    _mm_storeu_si128((__m128i *)out, _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

/* A batch (GEMM): R rows x T tokens per register tile, R * T int32 accumulators.  The codes of a
 * pair of blocks are decoded once per row (shift by 6 - 2i, mask to 0..3: four zmm of 64 codes)
 * and each meets 64 contiguous bytes of the reordered activations (bn_act_view.qp), which are
 * loaded once per token for all R rows.  Each lane adds 4 * 3 * 128 per VPDPBUSD and four of
 * them per pair of blocks: 6144 * K / 256 < 2^31 for K <= 2^24.  The integer sum is the exact
 * dot product, so the float step is the reference's.
 *
 * The empty asm keeps each activation vector in a register: left alone, compilers fold the load
 * into every VPDPBUSD that uses it, which reads L1 once per row instead of once per token and
 * made the loads, not VPDPBUSD, the limit (about 150 instead of 190 G multiply-adds per second
 * per core on Zen 4, bench/kernels). */
#define I2S_TILE_TOK 4

/* The lane sums of eight accumulators, in order, by one tree (halves, then two rounds of
 * pairwise adds): a third of the work of eight separate reductions, which at K = 2560 cost a
 * quarter as much as the tile's VPDPBUSDs. */
BN_AI __m256i reduce8(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m512i a4, __m512i a5, __m512i a6, __m512i a7)
{
#define HALVES(v) _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1))
    __m256i h01 = _mm256_hadd_epi32(HALVES(a0), HALVES(a1)), h23 = _mm256_hadd_epi32(HALVES(a2), HALVES(a3));
    __m256i h45 = _mm256_hadd_epi32(HALVES(a4), HALVES(a5)), h67 = _mm256_hadd_epi32(HALVES(a6), HALVES(a7));
#undef HALVES
    /* each 128-bit lane now holds the four-lane partial sums of a0..a3 (a4..a7), low lane from
     * elements 0..3 of each half, high lane from 4..7 */
    __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20), _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

/* Bytes ahead of a row's current block pair that a GEMM tile prefetches: two groups of four rows
 * at K = 2560, 20 block pairs further along a longer row.  Where the weights stream from memory (a
 * few tokens per pass) the loads then overlap the VPDPBUSDs: the 2B-4T shape with 4 sequences per
 * pass +5-10%; batches that reread the rows from L2 are unchanged. */
#define I2S_GEMM_PREFETCH 5120
BN_AI void i2s_tile(const bn_i2s_rowptr *rows, const int R, int64_t nblk, const int8_t *qp, int64_t K, const int T,
                    int32_t *out)
{
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512i acc[2][I2S_TILE_TOK];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_si512();
    const int64_t npair = nblk / 2;
    for (int64_t p = 0; p < npair; p++) {
        __m512i c[2][4];
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)rows[r].pairs + (size_t)p * rows[r].pair_stride + I2S_GEMM_PREFETCH, _MM_HINT_T0);
            __m512i w = loadu512(rows[r].pairs + (size_t)p * rows[r].pair_stride);
            c[r][0] = _mm512_and_si512(_mm512_srli_epi16(w, 6), m3);
            c[r][1] = _mm512_and_si512(_mm512_srli_epi16(w, 4), m3);
            c[r][2] = _mm512_and_si512(_mm512_srli_epi16(w, 2), m3);
            c[r][3] = _mm512_and_si512(w, m3);
        }
        for (int t = 0; t < T; t++) {
            const int8_t *q = qp + t * K + 256 * p;
            for (int i = 0; i < 4; i++) {
                __m512i qv = loadu512(q + 64 * i);
                __asm__("" : "+v"(qv));
                for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], c[r][i], qv);
            }
        }
    }
    if (nblk & 1) { /* the odd last block; its activations are in file order */
        const __m256i m3y = _mm256_set1_epi8(3);
        for (int r = 0; r < R; r++) {
            __m256i w = loadu256(rows[r].tail);
            __m256i cy[4] = {_mm256_and_si256(_mm256_srli_epi16(w, 6), m3y), _mm256_and_si256(_mm256_srli_epi16(w, 4), m3y),
                             _mm256_and_si256(_mm256_srli_epi16(w, 2), m3y), _mm256_and_si256(w, m3y)};
            for (int t = 0; t < T; t++) {
                const int8_t *q = qp + t * K + 256 * npair;
                for (int i = 0; i < 4; i++)
                    acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], _mm512_zextsi256_si512(cy[i]),
                                                    _mm512_zextsi256_si512(loadu256(q + 32 * i)));
            }
        }
    }
    if (R == 2) { /* one reduction tree for all eight, token-major (tokens past T: zeros) */
        const __m512i z = _mm512_setzero_si512();
        _mm256_storeu_si256((__m256i *)out, reduce8(acc[0][0], acc[1][0], T > 1 ? acc[0][1] : z, T > 1 ? acc[1][1] : z,
                                                    T > 2 ? acc[0][2] : z, T > 2 ? acc[1][2] : z, T > 3 ? acc[0][3] : z,
                                                    T > 3 ? acc[1][3] : z));
    } else
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) out[r * T + t] = _mm512_reduce_add_epi32(acc[r][t]);
}

/* Loop order: a chunk of rows whose weights fit in L2 (256 KiB), then groups of I2S_TILE_TOK
 * tokens (whose activations stay in L1 for all the chunk's rows: 27 KiB at K = 6912), then row
 * pairs.  Weights come from memory once per chunk and from L2 for the other token groups. */
static void mm_i2s_gemm_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const void *pk = bn_weight_packed(w);
    const int64_t K = w->cols, nblk = K / 128, rb = K / 4;
    int64_t RC = (int64_t)(262144 / (size_t)rb);
    RC = RC < 2 ? 2 : RC & ~(int64_t)1;
    for (int64_t rc = r0; rc < r1; rc += RC) {
        const int64_t rend = rc + RC < r1 ? rc + RC : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += I2S_TILE_TOK) {
            const int T = (int)(a->n_tok - t0 < I2S_TILE_TOK ? a->n_tok - t0 : I2S_TILE_TOK);
            const int8_t *qp = a->qp + t0 * K;
            /* per token, twice (for both rows of a tile): s0 s0 s1 s1 ...; tokens past T get 0 / 1 */
            float s4[I2S_TILE_TOK] = {0, 0, 0, 0}, d4[I2S_TILE_TOK] = {1, 1, 1, 1};
            for (int t = 0; t < T; t++) s4[t] = (float)a->sum[t0 + t], d4[t] = a->d[t0 + t];
            const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
            const __m256 sumv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(s4)), dup);
            const __m256 dv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(d4)), dup);
            const __m256 scv = _mm256_set1_ps(w->scale);
            for (int64_t r = rc; r < rend; r += 2) {
                const int R = rend - r >= 2 ? 2 : 1;
                bn_i2s_rowptr rows[2] = {bn_i2s_row_at(w, pk, r), bn_i2s_row_at(w, pk, R == 2 ? r + 1 : r)};
                int32_t out[2 * I2S_TILE_TOK];
#define TILE_CASE(TT)                                                                                                  \
    case TT:                                                                                                           \
        if (R == 2) i2s_tile(rows, 2, nblk, qp, K, TT, out);                                                           \
        else i2s_tile(rows, 1, nblk, qp, K, TT, out);                                                                  \
        break;
                switch (T) {
                    TILE_CASE(1)
                    TILE_CASE(2)
                    TILE_CASE(3)
                default: TILE_CASE(4)
                }
#undef TILE_CASE
                if (R == 2) { /* the reference's float steps, eight at a time */
                    const __m256 f = _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(loadu256(out)), sumv), dv), scv);
                    const __m128 lo = _mm256_castps256_ps128(f), hi = _mm256_extractf128_ps(f, 1);
                    float *yr = y + t0 * w->rows + r; /* rows r, r + 1 of each token: one 8-byte store */
                    _mm_storel_pi((__m64 *)yr, lo);
                    if (T > 1) _mm_storeh_pi((__m64 *)(yr + w->rows), lo);
                    if (T > 2) _mm_storel_pi((__m64 *)(yr + 2 * w->rows), hi);
                    if (T > 3) _mm_storeh_pi((__m64 *)(yr + 3 * w->rows), hi);
                    continue;
                }
                for (int i = 0; i < R; i++)
                    for (int t = 0; t < T; t++)
                        y[(t0 + t) * w->rows + r + i] =
                            ((float)out[i * T + t] - (float)a->sum[t0 + t]) / a->d[t0 + t] * w->scale;
            }
        }
    }
}

/* i2s_row for one token, with the signature bn_i2s_gemv_rows takes */
static void i2s_row_1(const bn_i2s_rowptr *row, int64_t nblk, const int8_t *q, int64_t K, int T, int32_t *out)
{
    (void)T;
    i2s_row(row, nblk, q, K, 1, out);
}

/* I2_S x16 (kernels_impl.h): a group's 16 row sums for T <= 4 tokens, S[t] lane i = row i.  Up to
 * two tokens keep an accumulator per bit pair, the codes masked in place (times 64, 16, 4, 1) and
 * shifted back once per row (exact: the lanes are multiples of the factor); three or four tokens
 * shift the codes down (two more operations per vector, shared by the tokens) into two
 * accumulators each, so that the accumulators fit the registers.  An accumulator's lane gets at
 * most 16 groups of 4 * 192 * 128 per block: < 2^24 for K <= 1024. */
BN_AI void i2s16_group(const uint8_t *g, int64_t nblk, const int8_t *q, int64_t K, const int T, __m512i *S)
{
    const int inplace = T <= 2;
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i m[4] = {_mm512_set1_epi8((char)0xc0), _mm512_set1_epi8(0x30), _mm512_set1_epi8(0x0c), m3};
    __m512i acc[4][4];
BN_UNROLL
    for (int t = 0; t < T; t++)
BN_UNROLL
        for (int c = 0; c < 4; c++) acc[t][c] = _mm512_setzero_si512();
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *p = g + 512 * b;
        const int8_t *qb = q + 128 * b;
        for (int v = 0; v < 8; v++) { /* bit pair c of dword v: elements 32c + 4v .. 32c + 4v + 3 */
            const __m512i x = loadu512(p + 64 * v);
            /* unrolled, so that the accumulators live in registers */
BN_UNROLL
            for (int c = 0; c < 4; c++) {
                const __m512i codes = inplace ? _mm512_and_si512(x, m[c])
                                              : _mm512_and_si512(c < 3 ? _mm512_srli_epi16(x, 6 - 2 * c) : x, m3);
                const int j = inplace ? c : c & 1;
BN_UNROLL
                for (int t = 0; t < T; t++) acc[t][j] = _mm512_dpbusd_epi32(acc[t][j], codes, bcast32(qb + t * K + 32 * c + 4 * v));
            }
        }
    }
BN_UNROLL
    for (int t = 0; t < T; t++)
        S[t] = inplace ? _mm512_add_epi32(_mm512_add_epi32(_mm512_srai_epi32(acc[t][0], 6), _mm512_srai_epi32(acc[t][1], 4)),
                                          _mm512_add_epi32(_mm512_srai_epi32(acc[t][2], 2), acc[t][3]))
                       : _mm512_add_epi32(acc[t][0], acc[t][1]);
}

/* i2s16_group for T = 1 .. 4 in a function of its own: inlined into mm_i2s_avx512, GCC spilled
 * the accumulators and reloaded the token offsets (half the speed). */
static __attribute__((noinline)) void i2s16_group_n(const uint8_t *g, int64_t nblk, const int8_t *q, int64_t K, int T,
                                                    __m512i *S)
{
    switch (T) {
    case 1: i2s16_group(g, nblk, q, K, 1, S); break;
    case 2: i2s16_group(g, nblk, q, K, 2, S); break;
    case 3: i2s16_group(g, nblk, q, K, 3, S); break;
    default: i2s16_group(g, nblk, q, K, 4, S); break;
    }
}

/* A product on the x16 layout: groups of 16 rows, tokens in fours, the reference's float step for
 * 16 rows per vector; rows after the last group one at a time (the file layout, kept in pk). */
static void mm_i2s_x16(const bn_weight *w, const void *pk, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const int64_t K = w->cols, nblk = K / 128, rb = K / 4, gend = w->rows & ~(int64_t)15;
    const __m512 scv = _mm512_set1_ps(w->scale);
    for (int64_t r = r0; r < r1;) {
        if (r % 16 == 0 && r + 16 <= r1 && r < gend) {
            const uint8_t *g = (const uint8_t *)pk + r * rb;
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4) {
                const int T = (int)(a->n_tok - t0 < 4 ? a->n_tok - t0 : 4);
                const int8_t *q = a->q + t0 * K;
                __m512i S[4];
                i2s16_group_n(g, nblk, q, K, T, S);
                for (int t = 0; t < T; t++) {
                    const __m512 v = _mm512_sub_ps(_mm512_cvtepi32_ps(S[t]), _mm512_set1_ps((float)a->sum[t0 + t]));
                    _mm512_storeu_ps(y + (t0 + t) * w->rows + r, _mm512_mul_ps(_mm512_div_ps(v, _mm512_set1_ps(a->d[t0 + t])), scv));
                }
            }
            r += 16;
            continue;
        }
        const uint8_t *row = (const uint8_t *)pk + r * rb;
        const bn_i2s_rowptr R = {row, 64, row + 64 * (nblk / 2)};
        for (int64_t t = 0; t < a->n_tok; t++) {
            int32_t acc;
            i2s_row(&R, nblk, a->q + t * K, K, 1, &acc);
            y[t * w->rows + r] = ((float)acc - (float)a->sum[t]) / a->d[t] * w->scale;
        }
        r++;
    }
}

static void mm_i2s_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    const void *pk = bn_weight_packed(w); /* once: another thread may publish it meanwhile */
    if (pk && bn_i2s_x16(w)) {
        mm_i2s_x16(w, pk, a, y, r0, r1);
        return;
    }
    if (a->n_tok > 1 && a->qp) {
        mm_i2s_gemm_avx512(w, a, y, r0, r1);
        return;
    }
    const int64_t K = w->cols, nblk = K / 128, rb = K / 4, R = row_tile((size_t)rb);
    if (a->n_tok == 1) {
        bn_i2s_gemv_rows(w, pk, a->q, a->d[0], a->sum[0], y, r0, r1, i2s_gemv_x4, i2s_row_1);
        return;
    }
    for (int64_t rt = r0; rt < r1; rt += R) {
        int64_t rend = rt + R < r1 ? rt + R : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += I2S_TOK) {
            int64_t T = a->n_tok - t0 < I2S_TOK ? a->n_tok - t0 : I2S_TOK;
            const int8_t *q = a->q + t0 * K;
            for (int64_t r = rt; r < rend; r++) {
                int32_t acc[I2S_TOK] = {0};
                const bn_i2s_rowptr rp = bn_i2s_row_at(w, pk, r), *row = &rp;
                switch (T) {
                case 1: i2s_row(row, nblk, q, K, 1, acc); break;
                case 2: i2s_row(row, nblk, q, K, 2, acc); break;
                case 3: i2s_row(row, nblk, q, K, 3, acc); break;
                case 4: i2s_row(row, nblk, q, K, 4, acc); break;
                case 5: i2s_row(row, nblk, q, K, 5, acc); break;
                case 6: i2s_row(row, nblk, q, K, 6, acc); break;
                case 7: i2s_row(row, nblk, q, K, 7, acc); break;
                default: i2s_row(row, nblk, q, K, 8, acc); break;
                }
                for (int64_t t = 0; t < T; t++)
                    y[(t0 + t) * w->rows + r] = ((float)acc[t] - (float)a->sum[t0 + t]) / a->d[t0 + t] * w->scale;
            }
        }
    }
}

/* ---- TQ2_0 / TQ1_0: per 256-element block an exact int32 sum, then the reference's float step ---- */

BN_AI __m256i mul3_u8(__m256i q) { return _mm256_add_epi8(q, _mm256_add_epi8(q, q)); }
BN_AI __m256i mul9_u8(__m256i q)
{
    return _mm256_add_epi8(_mm256_and_si256(_mm256_slli_epi16(q, 3), _mm256_set1_epi8((char)0xf8)), q);
}
BN_AI __m256i top_trit(__m256i q)
{
    const __m256i k3 = _mm256_set1_epi16(3);
    __m256i even = _mm256_mulhi_epu16(_mm256_slli_epi16(q, 8), k3);
    __m256i odd = _mm256_mulhi_epu16(_mm256_and_si256(q, _mm256_set1_epi16((short)0xff00)), k3);
    return _mm256_or_si256(even, _mm256_slli_epi16(odd, 8));
}
BN_AI __m128i tq1_qh_trits(const uint8_t *qh)
{
    uint32_t v;
    memcpy(&v, qh, 4);
    __m128i x = _mm_set1_epi32((int)v);
    const __m128i pw = _mm_setr_epi16(1, 1, 3, 3, 9, 9, 27, 27), lo = _mm_set1_epi16(0xff), k3 = _mm_set1_epi16(3);
    __m128i even = _mm_and_si128(_mm_mullo_epi16(_mm_and_si128(x, lo), pw), lo);
    __m128i odd = _mm_and_si128(_mm_mullo_epi16(_mm_srli_epi16(x, 8), pw), lo);
    even = _mm_srli_epi16(_mm_mullo_epi16(even, k3), 8);
    odd = _mm_srli_epi16(_mm_mullo_epi16(odd, k3), 8);
    return _mm_or_si128(even, _mm_slli_epi16(odd, 8));
}

/* Codes of a block as 8 vectors of 32, in element order. */
BN_AI void tq_block_codes(const uint8_t *blk, const int tq1, __m256i c[8])
{
    if (!tq1) {
        const __m256i m3 = _mm256_set1_epi8(3);
        __m256i v0 = loadu256(blk), v1 = loadu256(blk + 32);
        c[0] = _mm256_and_si256(v0, m3);
        c[1] = _mm256_and_si256(_mm256_srli_epi16(v0, 2), m3);
        c[2] = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m3);
        c[3] = _mm256_and_si256(_mm256_srli_epi16(v0, 6), m3);
        c[4] = _mm256_and_si256(v1, m3);
        c[5] = _mm256_and_si256(_mm256_srli_epi16(v1, 2), m3);
        c[6] = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m3);
        c[7] = _mm256_and_si256(_mm256_srli_epi16(v1, 6), m3);
        return;
    }
    __m256i x = loadu256(blk);
    __m256i x3 = mul3_u8(x), x9 = mul9_u8(x);
    c[0] = top_trit(x);
    c[1] = top_trit(x3);
    c[2] = top_trit(x9);
    c[3] = top_trit(mul9_u8(x3));
    c[4] = top_trit(mul9_u8(x9));
    __m128i yv = _mm_loadu_si128((const __m128i *)(blk + 32));
    __m256i yy = _mm256_inserti128_si256(_mm256_castsi128_si256(yv), yv, 1);
    __m256i y3 = mul3_u8(yy), y9 = mul9_u8(yy), y27 = mul9_u8(y3), y81 = mul9_u8(y9);
    c[5] = top_trit(_mm256_blend_epi32(yy, y3, 0xf0));
    c[6] = top_trit(_mm256_blend_epi32(y9, y27, 0xf0));
    c[7] = _mm256_inserti128_si256(top_trit(y81), tq1_qh_trits(blk + 48), 1);
}

/* sum(code * q) over one block, as 8 int32 lanes */
BN_AI __m256i tq_block_dot(const __m256i c[8], const int8_t *q)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int j = 0; j < 8; j += 2) {
        s0 = _mm256_dpbusd_epi32(s0, c[j], loadu256(q + 32 * j));
        s1 = _mm256_dpbusd_epi32(s1, c[j + 1], loadu256(q + 32 * j + 32));
    }
    return _mm256_add_epi32(s0, s1);
}

/* out[ri * T + ti] for R rows and T tokens, R * T <= 4: the four block sums are reduced together
 * and their float steps run in the lanes of one vector (as in kernels_avx2.c). */
BN_AI void tq_tile(const uint8_t *row0, size_t rb, int64_t nb, const bn_act_view *a, int64_t t0, const int R,
                   const int T, const int tq1, float *out)
{
    const int64_t K = a->cols;
    const size_t bsz = tq1 ? 54 : 66;
    __m128 sumf = _mm_setzero_ps();
    float sf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        float wd[4] = {0, 0, 0, 0};
        for (int ri = 0; ri < R; ri++) {
            const uint8_t *blk = row0 + (size_t)ri * rb + bsz * (size_t)b;
            __m256i c[8];
            tq_block_codes(blk, tq1, c);
            wd[ri] = f16_scalar(blk + bsz - 2);
            for (int ti = 0; ti < T; ti++) s[ri * T + ti] = tq_block_dot(c, a->q + (t0 + ti) * K + 256 * b);
        }
        if (R * T == 1) { /* a GEMV: a plain reduction is cheaper */
            int64_t i = t0 * (K / 256) + b;
            int32_t sumi = hsum256_i32(s[0]) - a->sum[i];
            sf += (float)sumi * (a->d[i] * wd[0]);
            continue;
        }
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
        sumf = _mm_add_ps(sumf, _mm_mul_ps(_mm_cvtepi32_ps(sumi), d));
    }
    if (R * T == 1) {
        out[0] = sf;
        return;
    }
    float o[4];
    _mm_storeu_ps(o, sumf);
    for (int p = 0; p < R * T; p++) out[p] = o[p];
}

/* ---- TQ x16 (kernels_impl.h): sixteen rows in the lanes of every vector ----
 * Vector v of a group's block holds the quantised dword v of the 16 rows.  Decoded, it gives 4
 * (TQ2_0; TQ1_0 qh) or 5 (TQ1_0 qs) code vectors, and lane i of each holds four consecutive elements
 * of row i; one VPDPBUSD with those four activations of a token, broadcast, adds the 16 rows'
 * products.  So the 16 block sums build up in the lanes with no horizontal reduction, the
 * reference's float step runs on the 16 rows at once, and each code vector serves up to TQ_TOK
 * tokens (the x4 layout's per-(row, token) reductions had been a third of a batch's work).
 *
 * TQ1_0 trits without multiplies: the byte sequence q, 3q, 9q, ... (mod 256) is two byte adds per
 * step, and the top trit of q, (3q) >> 8, is the top two bits of f(q) = avg(avg(q, 0), q -sat 2)
 * (vpavgb rounds up): f is non-decreasing, f(85) = 63, f(86) = 64, f(170) = 127, f(171) = 128 and
 * f(255) = 191, the reference's thresholds exactly (tests/kernels checks all 256 bytes).  So the
 * codes enter VPDPBUSD as 64 * trit; the products are then multiples of 64 and the block sums are
 * shifted back exactly.  A lane of a block's sum gets 64 groups of at most 4 * 128 * 128 = 2^16.
 * TQ2_0: codes 0..3 (2 bits).  Both then subtract the activations' block sum (code 1 is zero). */
#define TQ_TOK 8
/* Bytes ahead in a group's stream that a batch prefetches (where the weights stream from memory,
 * the loads then overlap the VPDPBUSDs).  A GEMV prefetches nothing: the hardware prefetcher keeps
 * up with its one stream, and the prefetches' own cost made it 20% slower (bench/kernels). */
#define TQ_PREFETCH 1024

BN_AI __m512i mul3_512(__m512i q) { return _mm512_add_epi8(q, _mm512_add_epi8(q, q)); }
BN_AI __m512i tq1_top64(__m512i q)
{
    __m512i f = _mm512_avg_epu8(_mm512_avg_epu8(q, _mm512_setzero_si512()), _mm512_subs_epu8(q, _mm512_set1_epi8(2)));
    return _mm512_and_si512(f, _mm512_set1_epi8((char)0xc0));
}

/* Running block sums: acc[t][j], chain j of token t.  Fewer tokens get more chains, so a GEMV is
 * not bound by VPDPBUSD's latency. */
#define TQ_CHAINS(T) ((T) >= 5 ? 1 : (T) >= 3 ? 2 : 4)
typedef struct tq16_acc {
    __m512i v[TQ_TOK][4];
} tq16_acc;

BN_AI void tq16_zero(tq16_acc *A, const int T)
{
    for (int t = 0; t < T; t++)
        for (int j = 0; j < TQ_CHAINS(T); j++) A->v[t][j] = _mm512_setzero_si512();
}

/* chain n % chains of each token += codes c times the four activations at q (token t at q + tK) */
BN_AI void tq16_dot(tq16_acc *A, const int n, __m512i c, const int8_t *q, int64_t K, const int T)
{
    const int j = n % TQ_CHAINS(T);
    for (int t = 0; t < T; t++) A->v[t][j] = _mm512_dpbusd_epi32(A->v[t][j], c, bcast32(q + t * K));
}

/* TQ1_0's qh vector (the 16 rows' four qh bytes): four trits each, elements 240 + 4n + m */
BN_AI void tq16_qh(tq16_acc *A, const uint8_t *p, const int8_t *q, int64_t K, const int T)
{
    __m512i x = loadu512(p + 12 * 64);
    for (int n = 0; n < 4; n++) {
        tq16_dot(A, n, tq1_top64(x), q + 240 + 4 * n, K, T);
        x = mul3_512(x);
    }
}

/* A group's block for T tokens whose activations start at q (the block's, token t at q + tK):
 * the 16 rows' sums of code * q in S[t] (TQ1_0: 64 x the sums). */
BN_AI void tq16_block(const uint8_t *p, const int8_t *q, int64_t K, const int T, const int tq1, __m512i *S)
{
    tq16_acc A;
    tq16_zero(&A, T);
    if (!tq1) {
        /* With a chain per code position (T <= 2) the codes stay in place, times 4^l, and each
         * chain is shifted back once per block (exact: its lanes are multiples of 4^l). */
        const int inplace = TQ_CHAINS(T) == 4;
        for (int v = 0; v < 16; v++) { /* qs dword v: elements 128 (v / 8) + 32 l + 4 (v % 8) + m */
            const __m512i x = loadu512(p + 64 * v);
            const int8_t *qv = q + 128 * (v / 8) + 4 * (v % 8);
            for (int l = 0; l < 4; l++) {
                const __m512i c = inplace ? _mm512_and_si512(x, _mm512_set1_epi8((char)(3 << 2 * l)))
                                          : _mm512_and_si512(l ? _mm512_srli_epi16(x, 2 * l) : x, _mm512_set1_epi8(3));
                tq16_dot(&A, l, c, qv + 32 * l, K, T);
            }
        }
        if (inplace)
            for (int t = 0; t < T; t++)
                for (int l = 1; l < 4; l++) A.v[t][l] = _mm512_srai_epi32(A.v[t][l], 2 * l);
    } else {
        for (int v = 0; v < 12; v++) { /* qs dword v: elements 32n + 4v + m, then 160 + 16n + 4(v - 8) + m */
            __m512i x = loadu512(p + 64 * v);
            const int8_t *qv = v < 8 ? q + 4 * v : q + 160 + 4 * (v - 8);
            const int step = v < 8 ? 32 : 16;
            for (int n = 0; n < 5; n++) {
                tq16_dot(&A, n, tq1_top64(x), qv + step * n, K, T);
                if (n < 4) x = mul3_512(x);
            }
        }
        tq16_qh(&A, p, q, K, T);
    }
    for (int t = 0; t < T; t++) {
        __m512i s = A.v[t][0];
        for (int j = 1; j < TQ_CHAINS(T); j++) s = _mm512_add_epi32(s, A.v[t][j]);
        S[t] = s;
    }
}

/* The reference's float step for block b of T tokens from t0, 16 rows per lane vector:
 * sumf += (float)(sum - bsum) * (d_act * d_w); ws: the 16 fp16 scales. */
BN_AI void tq16_steps(const __m512i *S, const uint8_t *ws, const bn_act_view *a, int64_t t0, const int T, int64_t b,
                      int64_t nb, const int tq1, __m512 *sumf)
{
    const __m512 dw = _mm512_cvtph_ps(loadu256(ws));
    for (int t = 0; t < T; t++) {
        const int64_t i = (t0 + t) * nb + b;
        const __m512i sumi = _mm512_sub_epi32(tq1 ? _mm512_srai_epi32(S[t], 6) : S[t], _mm512_set1_epi32(a->sum[i]));
        sumf[t] = _mm512_add_ps(sumf[t], _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(_mm512_set1_ps(a->d[i]), dw)));
    }
}

/* y[t * stride + i] for row i of the group g and T tokens from t0 */
BN_AI void tq16_group(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, const int T, const int tq1,
                      float *y, int64_t stride)
{
    const size_t gb = 16 * (tq1 ? 54 : 66);
    __m512 sumf[TQ_TOK];
    for (int t = 0; t < T; t++) sumf[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + gb * (size_t)b;
        if (T > 1)
            for (size_t o = 0; o < gb; o += 64) _mm_prefetch((const char *)p + TQ_PREFETCH + o, _MM_HINT_T0);
        __m512i S[TQ_TOK];
        tq16_block(p, a->q + t0 * a->cols + 256 * b, a->cols, T, tq1, S);
        tq16_steps(S, p + gb - 32, a, t0, T, b, nb, tq1, sumf);
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y + t * stride, sumf[t]);
}

/* TQ1_0 re-encoded for VBMI (kernels_impl.h): each 64 bytes' five trit vectors by a shift, a bit
 * select and five VPERMI2B, where the file's encoding takes about 28 operations.  A loop of its own:
 * its decode needs the VBMI target, which tq16_block, inlined where VBMI may be absent, cannot use. */
#define BN_VBMI __attribute__((target("avx512vbmi")))

BN_AI BN_VBMI void tq1v_group_t(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, const int T, float *y,
                                int64_t stride)
{
    __m512i lo[5], hi[5];
    for (int n = 0; n < 5; n++) {
        lo[n] = loadu512(bn_tq1v_lut[n]);
        hi[n] = loadu512(bn_tq1v_lut[n] + 64);
    }
    const size_t gb = 16 * 54;
    const int64_t K = a->cols;
    __m512 sumf[TQ_TOK];
    for (int t = 0; t < T; t++) sumf[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + gb * (size_t)b;
        if (T > 1)
            for (size_t o = 0; o < gb; o += 64) _mm_prefetch((const char *)p + TQ_PREFETCH + o, _MM_HINT_T0);
        const int8_t *q = a->q + t0 * K + 256 * b;
        tq16_acc A;
        tq16_zero(&A, T);
        for (int v = 0; v < 12; v++) {
            const __m512i e = loadu512(p + 64 * v);
            const __m512i s = _mm512_srli_epi16(e, 1); /* e >> 1 (bit 7 from the next byte: ignored) */
            const __m512i sel = _mm512_ternarylogic_epi32(_mm512_set1_epi8(1), e, s, 0xca); /* bit 0 of e, bits 1.. of s */
            const __m512i idx[5] = {e, e, s, s, sel};
            const int8_t *qv = v < 8 ? q + 4 * v : q + 160 + 4 * (v - 8);
            const int step = v < 8 ? 32 : 16;
            for (int n = 0; n < 5; n++) tq16_dot(&A, n, _mm512_permutex2var_epi8(lo[n], idx[n], hi[n]), qv + step * n, K, T);
        }
        tq16_qh(&A, p, q, K, T);
        __m512i S[TQ_TOK];
        for (int t = 0; t < T; t++) {
            __m512i s = A.v[t][0];
            for (int j = 1; j < TQ_CHAINS(T); j++) s = _mm512_add_epi32(s, A.v[t][j]);
            S[t] = s;
        }
        tq16_steps(S, p + gb - 32, a, t0, T, b, nb, 1, sumf);
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y + t * stride, sumf[t]);
}

/* One group for T (1 .. TQ_TOK) tokens, each token count its own unrolled copy. */
#define TQ16_CASES(CALL)                                                                                               \
    switch (T) {                                                                                                       \
    case 1: CALL(1); break;                                                                                            \
    case 2: CALL(2); break;                                                                                            \
    case 3: CALL(3); break;                                                                                            \
    case 4: CALL(4); break;                                                                                            \
    case 5: CALL(5); break;                                                                                            \
    case 6: CALL(6); break;                                                                                            \
    case 7: CALL(7); break;                                                                                            \
    default: CALL(8); break;                                                                                           \
    }
static BN_VBMI __attribute__((noinline)) void tq1v_group(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0,
                                                         const int T, float *y, int64_t stride)
{
#define TQ1V_CALL(TT) tq1v_group_t(g, nb, a, t0, TT, y, stride)
    TQ16_CASES(TQ1V_CALL)
#undef TQ1V_CALL
}
static __attribute__((noinline)) void tq1_group(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, const int T,
                                               float *y, int64_t stride)
{
#define TQ1_CALL(TT) tq16_group(g, nb, a, t0, TT, 1, y, stride)
    TQ16_CASES(TQ1_CALL)
#undef TQ1_CALL
}
static __attribute__((noinline)) void tq2_group(const uint8_t *g, int64_t nb, const bn_act_view *a, int64_t t0, const int T,
                                               float *y, int64_t stride)
{
#define TQ2_CALL(TT) tq16_group(g, nb, a, t0, TT, 0, y, stride)
    TQ16_CASES(TQ2_CALL)
#undef TQ2_CALL
}

/* One row in the file layout for tokens t0 .. t0+3 (fewer at the end); y[t * stride] gets token t. */
static void tq_row_tok4(const uint8_t *row, size_t rb, int64_t nb, const bn_act_view *a, int64_t t0, const int tq1,
                        float *y, int64_t stride)
{
    const int64_t T = a->n_tok - t0 < 4 ? a->n_tok - t0 : 4;
    float out[4];
    switch (T) {
    case 1: tq_tile(row, rb, nb, a, t0, 1, 1, tq1, out); break;
    case 2: tq_tile(row, rb, nb, a, t0, 1, 2, tq1, out); break;
    case 3: tq_tile(row, rb, nb, a, t0, 1, 3, tq1, out); break;
    default: tq_tile(row, rb, nb, a, t0, 1, 4, tq1, out); break;
    }
    for (int64_t t = 0; t < T; t++) y[(t0 + t) * stride] = out[t];
}

/* A product on the TQ x16 layout pk: groups of 16 rows, and rows outside full groups one at a
 * time from the file layout (which pk keeps for the rows after the last group). */
BN_AI void mm_tq_x16(const bn_weight *w, const void *pk, const bn_act_view *a, float *y, int64_t r0, int64_t r1,
                     const int tq1)
{
    const int vbmi = tq1 && bn_kernels_tq1_vbmi(); /* how bn_weight_repack encoded pk's TQ1_0 groups */
    const int64_t nb = w->cols / 256, gend = w->rows & ~(int64_t)15;
    const size_t rb = (size_t)nb * (tq1 ? 54 : 66);
    for (int64_t r = r0; r < r1;) {
        if (r % 16 == 0 && r + 16 <= r1 && r < gend) {
            const uint8_t *g = (const uint8_t *)pk + (size_t)r * rb;
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += TQ_TOK) {
                const int T = (int)(a->n_tok - t0 < TQ_TOK ? a->n_tok - t0 : TQ_TOK);
                float *yt = y + t0 * w->rows + r;
                if (vbmi) tq1v_group(g, nb, a, t0, T, yt, w->rows);
                else if (tq1) tq1_group(g, nb, a, t0, T, yt, w->rows);
                else tq2_group(g, nb, a, t0, T, yt, w->rows);
            }
            r += 16;
            continue;
        }
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4)
            tq_row_tok4((const uint8_t *)(r < gend ? w->data : pk) + (size_t)r * rb, rb, nb, a, t0, tq1, y + r, w->rows);
        r++;
    }
}

BN_AI void mm_tq(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, const int tq1)
{
    const void *pk = bn_weight_packed(w); /* once: another thread may publish it meanwhile */
    if (pk) {
        mm_tq_x16(w, pk, a, y, r0, r1, tq1);
        return;
    }
    const int64_t nb = w->cols / 256;
    const size_t rb = (size_t)nb * (tq1 ? 54 : 66);
    const uint8_t *base = w->data;
    /* A batch in tiles of row_tile rows x 4 tokens (the rows' weights stay in cache for the token
     * groups).  A GEMV one row at a time: reading several rows' streams interleaved (a 4 x 1 tile)
     * is twice as fast in cache but runs at a third of the memory speed on the machines tried. */
    const int64_t R = a->n_tok == 1 ? 1 : row_tile(rb);
    for (int64_t rt = r0; rt < r1; rt += R) {
        int64_t rend = rt + R < r1 ? rt + R : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4)
            for (int64_t r = rt; r < rend; r++) tq_row_tok4(base + (size_t)r * rb, rb, nb, a, t0, tq1, y + r, w->rows);
    }
}

static void mm_tq2_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq(w, a, y, r0, r1, 0);
}

static void mm_tq1_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_tq(w, a, y, r0, r1, 1);
}

/* ---- Q8_0 ----
 * |w| (u8, 128 at most) times q with w's sign moved onto it (q is never -128: see above), then as
 * for TQ: four (row, token) pairs per tile, four block sums reduced together, float steps in lanes. */

BN_AI __m256i q8_0_block_dot(const uint8_t *blk, const int8_t *q)
{
    __m256i wq = loadu256(blk + 2), aq = loadu256(q);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));
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
            sf += (float)hsum256_i32(s[0]) * (f16_scalar(row0 + 34 * (size_t)b) * a->d[t0 * (K / 32) + b]);
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

static void mm_q8_0_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
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

/* ---- F16 / BF16 / F32 ----
 * Two 16-lane sums hold ggml's four 8-lane ones: lo = lanes 0..15 (vectors 0, 1), hi = 16..31
 * (vectors 2, 3).  lo + hi = (v0 + v2 | v1 + v3), whose halves then add as v0+v2 + v1+v3: the
 * reference's order exactly. */

enum { FL_F16, FL_BF16, FL_F32 };

BN_AI __m512 load16(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return _mm512_cvtph_ps(loadu256((const uint16_t *)p + i));
    if (kind == FL_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(loadu256((const uint16_t *)p + i)), 16));
    return _mm512_loadu_ps((const float *)p + i);
}

BN_AI float load1(const void *p, int64_t i, const int kind)
{
    if (kind == FL_F16) return bn_fp16_to_fp32(((const uint16_t *)p)[i]);
    if (kind == FL_BF16) return bn_bf16_to_fp32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

BN_AI float reduce_2x16(__m512 lo, __m512 hi)
{
    __m512 s = _mm512_add_ps(lo, hi);
    __m256 v = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_hadd_ps(t, t);
    t = _mm_hadd_ps(t, t);
    return _mm_cvtss_f32(t);
}

/* reduce_2x16 of four (lo, hi) pairs at once, each with the same additions in the same order:
 * the 8-lane halves are added per token, then each token's two 4-lane halves (two tokens per
 * register), then the two pairwise rounds by HADDPS, which leave tokens 0, 2 in lanes 0, 1 and
 * tokens 1, 3 in lanes 4, 5. */
BN_AI __m128 reduce_2x16_x4(const __m512 lo[4], const __m512 hi[4])
{
    __m256 v[4];
    for (int t = 0; t < 4; t++) {
        __m512 s = _mm512_add_ps(lo[t], hi[t]);
        v[t] = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    }
    __m256 t01 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20), _mm256_permute2f128_ps(v[0], v[1], 0x31));
    __m256 t23 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[3], 0x20), _mm256_permute2f128_ps(v[2], v[3], 0x31));
    __m256 h = _mm256_hadd_ps(t01, t23);
    h = _mm256_hadd_ps(h, h);
    /* lanes: 0 = token 0, 1 = token 2, 4 = token 1, 5 = token 3 */
    __m128 a = _mm256_castps256_ps128(h), b = _mm256_extractf128_ps(h, 1);
    return _mm_unpacklo_ps(a, b); /* tokens 0, 1, 2, 3 */
}

BN_AI void float_row(const void *wr, const void *x0, int64_t K, const int T, const int kind, const int xkind,
                      float *out)
{
    const size_t esz = xkind == FL_F32 ? 4 : 2; /* of the activations */
    __m512 lo[4], hi[4];
    for (int t = 0; t < T; t++) lo[t] = hi[t] = _mm512_setzero_ps();
    int64_t np = K & ~(int64_t)31;
    for (int64_t k = 0; k < np; k += 32) {
        __m512 w0 = load16(wr, k, kind), w1 = load16(wr, k + 16, kind);
        for (int t = 0; t < T; t++) {
            const void *x = (const uint8_t *)x0 + (size_t)t * (size_t)K * esz;
            lo[t] = _mm512_fmadd_ps(w0, load16(x, k, xkind), lo[t]);
            hi[t] = _mm512_fmadd_ps(w1, load16(x, k + 16, xkind), hi[t]);
        }
    }
    if (T == 4 && np == K) { /* four tokens' reductions share their shuffles */
        _mm_storeu_ps(out, reduce_2x16_x4(lo, hi));
        return;
    }
    for (int t = 0; t < T; t++) {
        const void *x = (const uint8_t *)x0 + (size_t)t * (size_t)K * esz;
        double s = reduce_2x16(lo[t], hi[t]);
        for (int64_t k = np; k < K; k++) s += (double)(load1(wr, k, kind) * load1(x, k, xkind));
        out[t] = (float)s;
    }
}

/* Two rows x T tokens: each activation vector is loaded once for both rows (kept in a register by
 * the empty asm, as in the I2_S GEMM), so the FMAs, not the loads, are the limit.  Each (row,
 * token) sum is float_row's, in its order. */
BN_AI void float_row2(const void *wr0, const void *wr1, const void *x0, int64_t K, const int T, const int kind,
                       const int xkind, float *out0, float *out1)
{
    const size_t esz = xkind == FL_F32 ? 4 : 2;
    __m512 lo0[4], hi0[4], lo1[4], hi1[4];
    for (int t = 0; t < T; t++) lo0[t] = hi0[t] = lo1[t] = hi1[t] = _mm512_setzero_ps();
    /* A batch's rows stream from memory while their FMAs run: the weights two pairs on (four rows)
     * are prefetched line by line as this pair is read, so loads and FMAs overlap (the F16 head
     * with 8 tokens: +45%; one and three pairs on measured less).  Rows follow each other, so row
     * r + 4 is at wr0 + 4 rows. */
    const size_t wesz = kind == FL_F32 ? 4 : 2, ahead = 4 * (size_t)K * wesz;
    for (int64_t k = 0; k < K; k += 32) {
        if (T > 1) {
            _mm_prefetch((const char *)wr0 + ahead + (size_t)k * wesz, _MM_HINT_T0);
            _mm_prefetch((const char *)wr1 + ahead + (size_t)k * wesz, _MM_HINT_T0);
        }
        const __m512 a0 = load16(wr0, k, kind), a1 = load16(wr0, k + 16, kind);
        const __m512 b0 = load16(wr1, k, kind), b1 = load16(wr1, k + 16, kind);
        for (int t = 0; t < T; t++) {
            const void *x = (const uint8_t *)x0 + (size_t)t * (size_t)K * esz;
            __m512 x0v = load16(x, k, xkind), x1v = load16(x, k + 16, xkind);
            __asm__("" : "+v"(x0v), "+v"(x1v));
            lo0[t] = _mm512_fmadd_ps(a0, x0v, lo0[t]);
            hi0[t] = _mm512_fmadd_ps(a1, x1v, hi0[t]);
            lo1[t] = _mm512_fmadd_ps(b0, x0v, lo1[t]);
            hi1[t] = _mm512_fmadd_ps(b1, x1v, hi1[t]);
        }
    }
    if (T == 4) {
        _mm_storeu_ps(out0, reduce_2x16_x4(lo0, hi0));
        _mm_storeu_ps(out1, reduce_2x16_x4(lo1, hi1));
        return;
    }
    if (T >= 2) { /* two rows x two tokens share one set of shuffles (256-element rows: the
                     reductions cost about as much as the products) */
        const __m512 l4[4] = {lo0[0], lo0[1], lo1[0], lo1[1]}, h4[4] = {hi0[0], hi0[1], hi1[0], hi1[1]};
        float r[4];
        _mm_storeu_ps(r, reduce_2x16_x4(l4, h4));
        out0[0] = r[0], out0[1] = r[1], out1[0] = r[2], out1[1] = r[3];
    }
    for (int t = T >= 2 ? 2 : 0; t < T; t++) {
        out0[t] = (float)(double)reduce_2x16(lo0[t], hi0[t]);
        out1[t] = (float)(double)reduce_2x16(lo1[t], hi1[t]);
    }
}

BN_AI void mm_float(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1, const int kind)
{
    const int64_t K = w->cols;
    const size_t esz = kind == FL_F32 ? 4 : 2, rb = (size_t)K * esz;
    const uint8_t *base = w->data;
    /* a batch's f16/bf16 activations come already widened to float (the same values) */
    const int xk = kind != FL_F32 && a->hf ? FL_F32 : kind;
    const uint8_t *xs = xk == FL_F32 ? (const uint8_t *)(kind == FL_F32 ? a->x : a->hf) : (const uint8_t *)a->h;
    const size_t xrb = (size_t)K * (xk == FL_F32 ? 4 : 2);
    /* a batch takes rows at least in pairs (float_row2 then loads each activation vector once per
     * pair: the F16 head with 8 tokens +25%); one token keeps single rows of a long row, one
     * memory stream (two streams halved the GEMV's speed) */
    const int64_t R = a->n_tok > 1 && row_tile(rb) < 2 ? 2 : row_tile(rb);
    for (int64_t rt = r0; rt < r1; rt += R) {
        int64_t rend = rt + R < r1 ? rt + R : r1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += 4) {
            int64_t T = a->n_tok - t0 < 4 ? a->n_tok - t0 : 4;
            const uint8_t *x = xs + (size_t)t0 * xrb;
            int64_t r = rt;
            if (K % 32 == 0) /* row pairs */
                for (; r + 2 <= rend; r += 2) {
                    float o0[4], o1[4];
                    const uint8_t *row = base + (size_t)r * rb;
                    switch (T) {
                    case 1: float_row2(row, row + rb, x, K, 1, kind, xk, o0, o1); break;
                    case 2: float_row2(row, row + rb, x, K, 2, kind, xk, o0, o1); break;
                    case 3: float_row2(row, row + rb, x, K, 3, kind, xk, o0, o1); break;
                    default: float_row2(row, row + rb, x, K, 4, kind, xk, o0, o1); break;
                    }
                    for (int64_t t = 0; t < T; t++) {
                        y[(t0 + t) * w->rows + r] = o0[t];
                        y[(t0 + t) * w->rows + r + 1] = o1[t];
                    }
                }
            for (; r < rend; r++) {
                float out[4];
                const uint8_t *row = base + (size_t)r * rb;
                switch (T) {
                case 1: float_row(row, x, K, 1, kind, xk, out); break;
                case 2: float_row(row, x, K, 2, kind, xk, out); break;
                case 3: float_row(row, x, K, 3, kind, xk, out); break;
                default: float_row(row, x, K, 4, kind, xk, out); break;
                }
                for (int64_t t = 0; t < T; t++) y[(t0 + t) * w->rows + r] = out[t];
            }
        }
    }
}

static void mm_f16_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_F16);
}

static void mm_bf16_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_BF16);
}

static void mm_f32_avx512(const bn_weight *w, const bn_act_view *a, float *y, int64_t r0, int64_t r1)
{
    mm_float(w, a, y, r0, r1, FL_F32);
}

const bn_kernel_table bn_kernels_avx512 = {
    .mm =
        {
            [BN_TYPE_I2_S] = mm_i2s_avx512,
            [BN_TYPE_TQ2_0] = mm_tq2_avx512,
            [BN_TYPE_TQ1_0] = mm_tq1_avx512,
            [BN_TYPE_Q8_0] = mm_q8_0_avx512,
            [BN_TYPE_F16] = mm_f16_avx512,
            [BN_TYPE_BF16] = mm_bf16_avx512,
            [BN_TYPE_F32] = mm_f32_avx512,
        },
    .row_align = 4,
    .i2s_x4 = 1,
    .i2s_x16 = 1,
    .tq_group = 16,
    .fallback = &bn_kernels_avx2, /* Q6_K */
};
