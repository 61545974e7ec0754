/* Half and bfloat16 conversions, portable and exact (round to nearest even), so every kernel and
 * the reference agree bit for bit.  SIMD code may use hardware conversions, which give the same bits. */
#ifndef BN_COMMON_FP16_H
#define BN_COMMON_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t bn_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bn_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float bn_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return bn_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return bn_bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bn_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t bn_fp32_to_fp16(float f)
{
    uint32_t x = bn_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0)); /* inf/nan */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: overflow to inf */
    if (ax < 0x38800000u) {
        /* result is subnormal or zero: scale so the float adder rounds to nearest even for us */
        float v = bn_bits_f32(ax) * 16777216.0f; /* 2^24: subnormal units */
        uint32_t m = (uint32_t)v;                 /* truncation of an exactly representable part */
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    /* normal: round mantissa from 23 to 10 bits, nearest even; carry into the exponent is correct */
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

static inline float bn_bf16_to_fp32(uint16_t h) { return bn_bits_f32((uint32_t)h << 16); }

static inline uint16_t bn_fp32_to_bf16(float f)
{
    uint32_t x = bn_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

#endif
