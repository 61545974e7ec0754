/* Sampler: every option changes the outcome the way it should, and bad parameters are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/error.h"
#include "sampling/sampler.h"

#define NV 8
static const float base_logits[NV] = {1.0f, 3.0f, 2.5f, 0.5f, -1.0f, 2.9f, 0.0f, -2.0f};

static bn_sampler_params greedy_params(void)
{
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temperature = 0;
    return p;
}

static int draw_histogram(bn_sampler_params p, int draws, int *hist)
{
    bn_sampler *s;
    if (bn_sampler_init(&p, &s) != BN_OK) return -1;
    memset(hist, 0, NV * sizeof(int));
    for (int i = 0; i < draws; i++) {
        int t = bn_sampler_sample(s, base_logits, NV);
        if (t < 0 || t >= NV) return -1;
        hist[t]++;
    }
    bn_sampler_free(s);
    return 0;
}

static void test_greedy(void **state)
{
    (void)state;
    bn_sampler_params p = greedy_params();
    bn_sampler *s;
    assert_int_equal(bn_sampler_init(&p, &s), BN_OK);
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 1);
    float ties[4] = {1, 5, 5, 0};
    assert_int_equal(bn_sampler_sample(s, ties, 4), 1); /* first of equal maxima */
    float nan_l[3] = {NAN, 0.5f, 0.1f};
    assert_int_equal(bn_sampler_sample(s, nan_l, 3), 1); /* NaN never wins */
    bn_sampler_free(s);
}

static void test_top_k(void **state)
{
    (void)state;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.top_k = 2;
    int hist[NV];
    assert_int_equal(draw_histogram(p, 2000, hist), 0);
    assert_true(hist[1] > 0 && hist[5] > 0);
    assert_int_equal(hist[1] + hist[5], 2000); /* only the two best */
    p.top_k = 0; /* off: everything can appear */
    assert_int_equal(draw_histogram(p, 20000, hist), 0);
    for (int i = 0; i < NV; i++) assert_true(hist[i] > 0);
}

static void test_top_p(void **state)
{
    (void)state;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.min_p = 0;
    /* probabilities: 3.0 -> .32, 2.9 -> .29, 2.5 -> .19 ... ; top_p .5 keeps the first two */
    p.top_p = 0.5f;
    int hist[NV];
    assert_int_equal(draw_histogram(p, 4000, hist), 0);
    assert_int_equal(hist[1] + hist[5], 4000);
    p.top_p = 0.7f; /* needs the third */
    assert_int_equal(draw_histogram(p, 4000, hist), 0);
    assert_true(hist[2] > 0);
    assert_int_equal(hist[1] + hist[5] + hist[2], 4000);
}

static void test_min_p(void **state)
{
    (void)state;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.5f; /* keep p >= .5 * p_max: logits within ln 2 of the best (3.0, 2.9, 2.5) */
    int hist[NV];
    assert_int_equal(draw_histogram(p, 4000, hist), 0);
    assert_int_equal(hist[1] + hist[5] + hist[2], 4000);
    assert_true(hist[2] > 0);
}

static void test_temperature(void **state)
{
    (void)state;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    int cold[NV], hot[NV];
    p.temperature = 0.1f;
    assert_int_equal(draw_histogram(p, 4000, cold), 0);
    p.temperature = 5.0f;
    assert_int_equal(draw_histogram(p, 4000, hot), 0);
    assert_true(cold[1] > hot[1]);   /* low temperature concentrates on the best */
    assert_true(hot[7] > cold[7]);    /* high temperature flattens: the worst token appears */
}

static void test_seed_reproducible(void **state)
{
    (void)state;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.top_k = 0;
    p.seed = 42;
    int a[64], b[64], c[64];
    bn_sampler *s;
    for (int run = 0; run < 3; run++) {
        if (run == 2) p.seed = 43;
        assert_int_equal(bn_sampler_init(&p, &s), BN_OK);
        int *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 64; i++) out[i] = bn_sampler_sample(s, base_logits, NV);
        bn_sampler_free(s);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    /* reset restarts the sequence */
    p.seed = 42;
    assert_int_equal(bn_sampler_init(&p, &s), BN_OK);
    for (int i = 0; i < 10; i++) bn_sampler_sample(s, base_logits, NV);
    bn_sampler_reset(s);
    for (int i = 0; i < 64; i++) assert_int_equal(bn_sampler_sample(s, base_logits, NV), a[i]);
    bn_sampler_free(s);
}

static void test_repeat_penalty(void **state)
{
    (void)state;
    bn_sampler_params p = greedy_params();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 4;
    bn_sampler *s;
    assert_int_equal(bn_sampler_init(&p, &s), BN_OK);
    bn_sampler_accept(s, 1); /* 3.0 -> 1.5: now 5 (2.9) wins */
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 5);
    bn_sampler_accept(s, 5); /* 2.9 -> 1.45: now 2 (2.5) wins */
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 2);
    /* the window forgets: four more tokens push 1 and 5 out */
    for (int i = 0; i < 4; i++) bn_sampler_accept(s, 7);
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 1);
    bn_sampler_free(s);
}

static void test_presence_frequency(void **state)
{
    (void)state;
    bn_sampler_params p = greedy_params();
    p.presence_penalty = 0.2f;
    bn_sampler *s;
    assert_int_equal(bn_sampler_init(&p, &s), BN_OK);
    bn_sampler_accept(s, 1); /* 3.0 - .2 = 2.8 < 2.9 */
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 5);
    bn_sampler_free(s);
    p.presence_penalty = 0;
    p.frequency_penalty = 0.06f;
    assert_int_equal(bn_sampler_init(&p, &s), BN_OK);
    bn_sampler_accept(s, 1); /* once: 2.94 > 2.9 */
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 1);
    bn_sampler_accept(s, 1); /* twice: 2.88 < 2.9 */
    assert_int_equal(bn_sampler_sample(s, base_logits, NV), 5);
    bn_sampler_free(s);
}

static void test_bad_params(void **state)
{
    (void)state;
    bn_sampler *s;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.top_p = -0.1f;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "top_p"));
    bn_sampler_params_default(&p);
    p.top_p = 1.5f;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
    bn_sampler_params_default(&p);
    p.top_k = -1;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
    bn_sampler_params_default(&p);
    p.min_p = 2;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
    bn_sampler_params_default(&p);
    p.repeat_penalty = 0;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
    bn_sampler_params_default(&p);
    p.temperature = NAN;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
    bn_sampler_params_default(&p);
    p.repeat_last_n = -5;
    assert_int_equal(bn_sampler_init(&p, &s), BN_ERR_INVALID_ARG);
}

static void test_rng_uniform(void **state)
{
    (void)state;
    bn_rng r;
    bn_rng_seed(&r, 1);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = bn_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        sum += u;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.01);
}

/* top-k straight from the logits (no penalties) keeps exactly the candidates the full sort would:
 * ties by smaller id, NaN as -inf, blocks of 32 with and without a better logit; the draws equal
 * those of top_k = 0 when min_p cuts inside the k best, and those of the penalty path (which sorts
 * every candidate) when the penalty only lowers a token far below the cut. */
static void test_top_k_blocks_match_full_sort(void **state)
{
    (void)state;
    enum { N = 5000 };
    static float logits[N];
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((x >> 40) % 5) * 0.5f; /* 0 .. 2, many ties */
        if (i % 97 == 3) logits[i] = NAN;
    }
    /* nine above 5, three ties at 5 */
    const int hi[] = {17, 33, 40, 41, 63, 64, 65, 100, 2496, 1000, 1001, 2500};
    const float hv[] = {5.25f, 5.5f, 5.75f, 5.25f, 5.5f, 5.75f, 5.25f, 5.5f, 6.0f, 5.0f, 5.0f, 5.0f};
    for (int i = 0; i < 12; i++) logits[hi[i]] = hv[i];
    for (int i = 3008; i < 3040; i++) logits[i] = 0.0f; /* a block of low logits, but: */
    logits[3008] = NAN; /* before the best logit in its block's lane (3008 + 8) */
    logits[3016] = 7.0f;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temperature = 1.3f;
    p.top_p = 1.0f;
    p.min_p = 0.05f; /* exp(-5) < 0.05: only the thirteen high logits survive */
    p.seed = 7;
    /* a: k = 13, the survivors, against b: no top-k; c: k = 11 keeps of the three ties at 5 the one
     * with the smallest id, against d: the same through the penalty path */
    bn_sampler *a, *b, *c, *d;
    p.top_k = 13;
    assert_int_equal(bn_sampler_init(&p, &a), BN_OK);
    p.top_k = 0;
    assert_int_equal(bn_sampler_init(&p, &b), BN_OK);
    p.top_k = 11;
    assert_int_equal(bn_sampler_init(&p, &c), BN_OK);
    p.frequency_penalty = 1.0f;
    assert_int_equal(bn_sampler_init(&p, &d), BN_OK);
    bn_sampler_accept(d, 0); /* logit <= 2: far below the cut */
    static int seen_a[N], seen_c[N];
    for (int n = 0; n < 3000; n++) {
        int32_t ta = bn_sampler_sample(a, logits, N), tb = bn_sampler_sample(b, logits, N);
        int32_t tc = bn_sampler_sample(c, logits, N), td = bn_sampler_sample(d, logits, N);
        assert_int_equal(ta, tb);
        assert_int_equal(tc, td);
        seen_a[ta]++;
        seen_c[tc]++;
    }
    for (int i = 0; i < 12; i++) assert_true(seen_a[hi[i]] > 0);
    assert_true(seen_a[3016] > 0);
    assert_true(seen_c[1000] > 0);
    assert_int_equal(seen_c[1001] + seen_c[2500], 0);
    bn_sampler_free(a);
    bn_sampler_free(b);
    bn_sampler_free(c);
    bn_sampler_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),          cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),           cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature),     cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_repeat_penalty),  cmocka_unit_test(test_presence_frequency),
        cmocka_unit_test(test_bad_params),      cmocka_unit_test(test_rng_uniform),
        cmocka_unit_test(test_top_k_blocks_match_full_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
