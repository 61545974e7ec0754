/* Shared by the kernel and quantiser tests (the cmocka ones and the wasm32 program): a seeded
 * xorshift generator, so each test's data is the same on every run and machine, and the weight
 * types the matmul kernels take with the multiple their row length must be.
 * Define BN_TEST_SEED (non-zero) before including to pick the sequence. */
#ifndef BN_TESTS_SUPPORT_TEST_RAND_H
#define BN_TESTS_SUPPORT_TEST_RAND_H

#include <stdint.h>

#include "gguf/types.h"

#ifndef BN_TEST_SEED
#define BN_TEST_SEED 1
#endif

static uint32_t rng_state = BN_TEST_SEED;

static inline uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Uniform in [-1, 1). */
static inline float rndf(void) { return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }

/* Every weight type with a matmul kernel: static const uint32_t all_types[] = BN_TEST_KERNEL_TYPES; */
#define BN_TEST_KERNEL_TYPES                                                                                           \
    {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0, BN_TYPE_Q8_0, BN_TYPE_Q6_K, BN_TYPE_F16, BN_TYPE_BF16, BN_TYPE_F32}

/* The multiple a row's length must be for the type. */
static inline int64_t col_multiple(uint32_t t)
{
    switch (t) {
    case BN_TYPE_I2_S: return 128;
    case BN_TYPE_TQ1_0:
    case BN_TYPE_TQ2_0:
    case BN_TYPE_Q6_K: return 256;
    case BN_TYPE_Q8_0: return 32;
    default: return 1;
    }
}

#endif
