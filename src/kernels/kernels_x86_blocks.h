/* Block-wise GEMV rows shared by the AVX2 and AVX-512 kernels (Q8_0 here, Q6_K in kernels_avx2.c).
 * The reference adds each block's product to the row's sum one at a time,
 * sumf += (float)isum_b * (d_w * d_a); that serial chain is kept, and what is batched is the work
 * around it: eight blocks' integer sums are reduced together by a tree of horizontal adds (exact)
 * and their eight products formed in one vector, with the same float operations as the scalar form.
 * A block at a time, the reduction and the scalar fp16 decode cost more than the memory.
 * Included after the including file defines q8_0_block_dot(blk, q) (a block's 32 products as 8
 * int32 lanes) with its own instructions. */
#ifndef BN_KERNELS_X86_BLOCKS_H
#define BN_KERNELS_X86_BLOCKS_H

#include <immintrin.h>
#include <string.h>

#include "common/fp16.h"

/* Lane i: the sum of s[i]'s eight int32 lanes. */
static inline __m256i bn_x86_sum8(const __m256i s[8])
{
    /* per 128-bit half: hadd(hadd(s0, s1), hadd(s2, s3)) = the four sums over that half */
    __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* sumf + p[0] + ... + p[7], added in that order, with p[i] = (float)isum[i] * (dw[i] * da[i]): dw
 * are the eight blocks' fp16 scales (F16C widening gives the same floats as the scalar decode). */
static inline float bn_x86_add8(float sumf, __m256i isum, const uint16_t dw[8], const float *da)
{
    __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)dw)), _mm256_loadu_ps(da));
    float p[8];
    _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), d));
    for (int i = 0; i < 8; i++) sumf += p[i];
    return sumf;
}

/* One Q8_0 row against one token. */
static inline float q8_0_gemv_row(const uint8_t *row, int64_t nb, const int8_t *q, const float *ad)
{
    float sf = 0.0f;
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i s[8];
        uint16_t wh[8];
        for (int i = 0; i < 8; i++) {
            const uint8_t *blk = row + 34 * (size_t)(b + i);
            memcpy(&wh[i], blk, 2);
            s[i] = q8_0_block_dot(blk, q + 32 * (b + i));
        }
        sf = bn_x86_add8(sf, bn_x86_sum8(s), wh, ad + b);
    }
    for (; b < nb; b++) {
        const uint8_t *blk = row + 34 * (size_t)b;
        __m256i v = q8_0_block_dot(blk, q + 32 * b);
        __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
        x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
        uint16_t h;
        memcpy(&h, blk, 2);
        sf += (float)_mm_cvtsi128_si32(x) * (bn_fp16_to_fp32(h) * ad[b]);
    }
    return sf;
}

#endif
