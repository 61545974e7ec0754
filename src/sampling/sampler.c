#include "sampling/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/error.h"
#include "common/mem.h"

typedef struct {
    int32_t id;
    float logit;
    float p;
} cand;

struct bn_sampler {
    bn_sampler_params p;
    bn_rng rng;
    int32_t *hist; /* ring buffer of the last repeat_last_n tokens */
    int n_hist, head;
    cand *cands;
    float *bmax; /* per TOPK_BLOCK logits, for top_k_blocks */
    int *blocks; /* top_k_blocks: the blocks it gathers from */
    int cap;
};

void bn_sampler_params_default(bn_sampler_params *p)
{
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->seed = 0;
}

bn_status bn_sampler_params_check(const bn_sampler_params *p)
{
    if (!p) return bn_error(BN_ERR_INVALID_ARG, "sampler parameters are NULL");
    if (!isfinite(p->temperature)) return bn_error(BN_ERR_INVALID_ARG, "temperature must be a finite number");
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return bn_error(BN_ERR_INVALID_ARG, "top_p must be in [0, 1], got %g", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return bn_error(BN_ERR_INVALID_ARG, "min_p must be in [0, 1], got %g", (double)p->min_p);
    if (p->top_k < 0) return bn_error(BN_ERR_INVALID_ARG, "top_k must be >= 0, got %d", p->top_k);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return bn_error(BN_ERR_INVALID_ARG, "repeat_penalty must be > 0, got %g", (double)p->repeat_penalty);
    if (p->repeat_last_n < 0 || p->repeat_last_n > (1 << 20))
        return bn_error(BN_ERR_INVALID_ARG, "repeat_last_n must be in 0..1048576, got %d", p->repeat_last_n);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return bn_error(BN_ERR_INVALID_ARG, "presence/frequency penalties must be finite numbers");
    return BN_OK;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bn_rng_seed(bn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bn_rng_next(bn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bn_rng_uniform(bn_rng *r) { return (double)(bn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

bn_status bn_sampler_init(const bn_sampler_params *p, bn_sampler **out)
{
    *out = NULL;
    bn_status st = bn_sampler_params_check(p);
    if (st != BN_OK) return st;
    bn_sampler *s = bn_calloc(1, sizeof *s);
    if (!s) return BN_ERR_NOMEM;
    s->p = *p;
    if (p->repeat_last_n > 0) {
        s->hist = bn_calloc((size_t)p->repeat_last_n, sizeof(int32_t));
        if (!s->hist) {
            bn_free(s);
            return BN_ERR_NOMEM;
        }
    }
    bn_rng_seed(&s->rng, p->seed);
    *out = s;
    return BN_OK;
}

void bn_sampler_free(bn_sampler *s)
{
    if (!s) return;
    bn_free(s->hist);
    bn_free(s->cands);
    bn_free(s->bmax);
    bn_free(s->blocks);
    bn_free(s);
}

void bn_sampler_reset(bn_sampler *s)
{
    s->n_hist = 0;
    s->head = 0;
    bn_rng_seed(&s->rng, s->p.seed);
}

void bn_sampler_accept(bn_sampler *s, int32_t token)
{
    if (s->p.repeat_last_n <= 0) return;
    s->hist[s->head] = token;
    s->head = (s->head + 1) % s->p.repeat_last_n;
    if (s->n_hist < s->p.repeat_last_n) s->n_hist++;
}

/* Larger logit first; equal logits by smaller id so the order is total and deterministic. */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Min-heap on "worse first" order: c[0] is the worst of the kept candidates. */
static void sift_down(cand *c, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cmp_cand(&c[l], &c[w]) > 0) w = l;
        if (r < n && cmp_cand(&c[r], &c[w]) > 0) w = r;
        if (w == i) return;
        cand t = c[i];
        c[i] = c[w];
        c[w] = t;
        i = w;
    }
}

static void apply_penalties(bn_sampler *s, cand *c, int n_vocab)
{
    const bn_sampler_params *p = &s->p;
    if (s->n_hist == 0 || (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f))
        return;
    /* count each distinct token of the window once for presence, by occurrences for frequency */
    for (int i = 0; i < s->n_hist; i++) {
        int32_t t = s->hist[i];
        if (t < 0 || t >= n_vocab) continue;
        int count = 0, first = 1;
        for (int j = 0; j < s->n_hist; j++)
            if (s->hist[j] == t) {
                if (j < i) first = 0;
                count++;
            }
        if (!first) continue;
        float *l = &c[t].logit;
        if (p->repeat_penalty != 1.0f) *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= (float)count * p->frequency_penalty + p->presence_penalty;
    }
}

/* Sorts a heap made by sift_down (worst first) best first, in place (heap sort: no allocation, as
 * qsort may make). */
static void heap_sort_best_first(cand *c, int n)
{
    for (int i = n - 1; i > 0; i--) {
        cand t = c[0];
        c[0] = c[i];
        c[i] = t;
        sift_down(c, i, 0);
    }
}

/* Whether any penalty would change a logit (then every candidate is copied first). */
static int penalties_active(const bn_sampler *s)
{
    const bn_sampler_params *p = &s->p;
    return s->n_hist > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
}

/* Keeps the k best of c[0..n) by cmp_cand in c[0..k), as a heap worst first (O(n log k)). */
static void heap_select(cand *c, int n, int k)
{
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (cmp_cand(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
}

/* Min-heap of floats, for the k-th largest block maximum. */
static void fsift_down(float *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && h[l] < h[w]) w = l;
        if (r < n && h[r] < h[w]) w = r;
        if (w == i) return;
        float t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Logits per block in top_k_blocks: small enough that few logits beside the k best are looked at
 * twice, big enough that the block maxima are few. */
#define TOPK_BLOCK 16

/* The largest of TOPK_BLOCK logits, NaN ignored (-inf if all are NaN).  A max is exact in any
 * order, so lanes give the same value as a serial loop.  (x > l ? x : l keeps l for a NaN x; GCC
 * does not vectorise that form by itself, and SSE's MAXPS is exactly it.) */
static float block_max(const float *x)
{
#if defined(__SSE2__)
    __m128 l = _mm_set1_ps(-INFINITY);
    for (int i = 0; i < TOPK_BLOCK; i += 4) l = _mm_max_ps(_mm_loadu_ps(x + i), l);
    l = _mm_max_ps(l, _mm_movehl_ps(l, l));
    l = _mm_max_ss(l, _mm_shuffle_ps(l, l, 1));
    return _mm_cvtss_f32(l);
#else
    float l[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    for (int i = 0; i < TOPK_BLOCK; i += 4)
        for (int j = 0; j < 4; j++) l[j] = x[i + j] > l[j] ? x[i + j] : l[j];
    float m = l[0];
    for (int j = 1; j < 4; j++) m = l[j] > m ? l[j] : m;
    return m;
#endif
}

/* The k best of logits[0..n) (no penalties) in c[0..k), as a heap worst first, without a heap pass
 * over every logit: blocks of TOPK_BLOCK give their maxima; the k-th largest maximum t is a lower
 * bound of the k-th largest logit (k blocks each hold one >= t), so only logits >= t can be among
 * the k best, and they are few.  The loops have no data-dependent branches (the maxima in four
 * lanes, the gathers by index arithmetic), which the compiler vectorises or the CPU predicts.
 * NaN logits fail every comparison, which is right as t > -inf means k real logits >= t exist.
 * Returns 0 (nothing done) when there are fewer blocks than k or t is -inf. */
static int top_k_blocks(cand *c, float *bmax, int *blocks, const float *logits, int n, int k)
{
    const int nb = (n + TOPK_BLOCK - 1) / TOPK_BLOCK;
    if (nb < k) return 0;
    for (int b = 0; b < nb; b++) {
        const int i0 = TOPK_BLOCK * b;
        float m = -INFINITY;
        if (n - i0 >= TOPK_BLOCK) {
            m = block_max(logits + i0);
        } else {
            for (int i = i0; i < n; i++) m = logits[i] > m ? logits[i] : m;
        }
        bmax[b] = m;
    }
    /* the k-th largest maximum: a min-heap of the k largest, in c's memory (k floats) */
    float *h = (float *)(void *)c;
    for (int b = 0; b < k; b++) h[b] = bmax[b];
    for (int i = k / 2 - 1; i >= 0; i--) fsift_down(h, k, i);
    for (int b = k; b < nb; b++)
        if (bmax[b] > h[0]) {
            h[0] = bmax[b];
            fsift_down(h, k, 0);
        }
    const float t = h[0];
    if (!(t > -INFINITY)) return 0;
    /* the blocks holding a logit >= t (at least k) */
    int nq = 0;
    for (int b = 0; b < nb; b++) {
        const int keep = bmax[b] >= t;
        blocks[nq] = b;
        nq += keep;
    }
    int m = 0;
    for (int q = 0; q < nq; q++) {
        const int i0 = TOPK_BLOCK * blocks[q], i1 = n - i0 < TOPK_BLOCK ? n : i0 + TOPK_BLOCK;
        for (int i = i0; i < i1; i++) { /* written always, kept when >= t */
            c[m].id = i;
            c[m].logit = logits[i];
            m += logits[i] >= t;
        }
    }
    heap_select(c, m, k); /* m >= k */
    return 1;
}

int32_t bn_sampler_sample(bn_sampler *s, const float *logits, int n_vocab)
{
    if (n_vocab <= 0) return -1;
    if (s->cap < n_vocab) {
        cand *nc = bn_realloc(s->cands, (size_t)n_vocab * sizeof(cand));
        if (!nc) return -1;
        s->cands = nc;
        float *nb = bn_realloc(s->bmax, (size_t)(n_vocab / TOPK_BLOCK + 1) * sizeof(float));
        if (!nb) return -1;
        s->bmax = nb;
        int *bl = bn_realloc(s->blocks, (size_t)(n_vocab / TOPK_BLOCK + 1) * sizeof(int));
        if (!bl) return -1;
        s->blocks = bl;
        s->cap = n_vocab;
    }
    cand *c = s->cands;
    const bn_sampler_params *p = &s->p;
    int n = n_vocab;
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (p->temperature > 0.0f && k < n && !penalties_active(s) && top_k_blocks(c, s->bmax, s->blocks, logits, n, k)) {
        /* the common case: top-k straight from the logits */
        n = k;
        heap_sort_best_first(c, n);
    } else {
        for (int i = 0; i < n_vocab; i++) {
            c[i].id = i;
            c[i].logit = isnan(logits[i]) ? -INFINITY : logits[i];
        }
        apply_penalties(s, c, n_vocab);

        if (p->temperature <= 0.0f) { /* greedy: the first of the highest logits */
            int best = 0;
            for (int i = 1; i < n_vocab; i++)
                if (c[i].logit > c[best].logit) best = i;
            return c[best].id;
        }

        /* top-k: keep the k best in a min-heap (O(n log k)); sorting all 128k logits per token
         * would cost more than a decode step of a small model. */
        if (k < n) {
            heap_select(c, n, k);
            n = k;
            heap_sort_best_first(c, n);
        } else {
            qsort(c, (size_t)n, sizeof(cand), cmp_cand);
        }
    }

    /* probabilities (before temperature, as llama.cpp's top-p/min-p see them) */
    double sum = 0.0;
    float max = c[0].logit;
    for (int i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - max);
        sum += c[i].p;
    }
    for (int i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);

    if (p->top_p < 1.0f) {
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        float thresh = c[0].p * p->min_p;
        int keep = 1;
        while (keep < n && c[keep].p >= thresh) keep++;
        n = keep;
    }

    /* temperature, then draw */
    sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - max) / p->temperature);
        sum += c[i].p;
    }
    double r = bn_rng_uniform(&s->rng) * sum, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) return c[i].id;
    }
    return c[n - 1].id;
}
