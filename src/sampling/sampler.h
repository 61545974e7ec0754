/* Token sampling: penalties, then top-k, top-p, min-p, temperature, then a draw from the seeded
 * generator (the order llama.cpp uses).  Deterministic: the same seed and logits give the same
 * token on every machine and thread count. */
#ifndef BN_SAMPLING_SAMPLER_H
#define BN_SAMPLING_SAMPLER_H

#include <stdint.h>

#include "common/status.h"

typedef struct bn_sampler_params {
    float temperature;       /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    int repeat_last_n;       /* history window for all penalties */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;
} bn_sampler_params;

typedef struct bn_sampler bn_sampler;

void bn_sampler_params_default(bn_sampler_params *p);
/* BN_ERR_INVALID_ARG naming the bad parameter (negative top_p, top_p > 1, NaN, ...). */
bn_status bn_sampler_params_check(const bn_sampler_params *p);
bn_status bn_sampler_init(const bn_sampler_params *p, bn_sampler **out);
void bn_sampler_free(bn_sampler *s);
void bn_sampler_reset(bn_sampler *s);
void bn_sampler_accept(bn_sampler *s, int32_t token);
/* Returns the chosen token id (0 <= id < n_vocab), or -1 if n_vocab <= 0 or memory fails. */
int32_t bn_sampler_sample(bn_sampler *s, const float *logits, int n_vocab);

/* The generator: splitmix64-seeded xoshiro256** (portable, identical everywhere). */
typedef struct bn_rng {
    uint64_t s[4];
} bn_rng;
void bn_rng_seed(bn_rng *r, uint64_t seed);
uint64_t bn_rng_next(bn_rng *r);
double bn_rng_uniform(bn_rng *r); /* [0, 1) with 53 random bits */

#endif
