#include "engine/engine.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/fp16.h"
#include "common/mem.h"
#include "kernels/ops.h"

struct bn_ctx {
    const bn_model *m;
    bn_threadpool *pool;
    int n_ctx, n_batch, pos;
    bool kv_f32;
    bool match_reference; /* reproduce bitnet.cpp's single-token rounding (see attn_worker) */
    bn_batch_split batch_split;
    void *k_cache, *v_cache; /* [n_layer][n_head_kv][n_ctx][head_dim], f16 or f32: each KV head's
                                positions side by side, so attention reads one sequential stream
                                (with positions kv_dim apart it ran at half the speed at 1-2K) */
    size_t kv_elem;          /* bytes per cached value */

    /* scratch for one pass of up to n_batch tokens */
    float *x;     /* [n_batch][n_embd]  residual stream */
    float *xb;    /* [n_batch][n_embd]  normed input of a block */
    float *q;     /* [n_batch][n_embd] */
    float *k, *v; /* [n_batch][kv_dim] */
    float *att;   /* [n_batch][n_embd]  attention output */
    float *gate, *up; /* [n_batch][n_ff] */
    float *scores;    /* [ATTN_CHUNKS_PER_THREAD * n_threads][ATTN_SHARE_MAX][n_ctx]: per attention chunk */
    float *rope_cos, *rope_sin; /* [n_batch][n_rot/2] */
    bn_act act;

    float *logits; /* [n_logit_rows][n_vocab] */
    int n_logit_rows, logit_first; /* rows kept from the last eval; index of the first kept token */
    size_t logits_cap;
    int last_n;
};

/* Attention work is cut into this many chunks per thread, so a thread that finishes early takes
 * another instead of waiting. */
#define ATTN_CHUNKS_PER_THREAD 4
/* At most this many query heads of one KV head are one attention work item. */
#define ATTN_SHARE_MAX 4

static size_t kv_dim(const bn_model *m) { return (size_t)m->hp.head_dim * (size_t)m->hp.n_head_kv; }

bn_status bn_ctx_init(const bn_model *m, const bn_ctx_params *p, bn_ctx **out)
{
    *out = NULL;
    const bn_hparams *hp = &m->hp;
    bn_ctx_params dp = {0};
    if (!p) p = &dp;
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_threads < 0)
        return bn_error(BN_ERR_INVALID_ARG, "context sizes and thread count must not be negative");
    int n_ctx = p->n_ctx ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (n_ctx > (1 << 20)) return bn_error(BN_ERR_INVALID_ARG, "context size %d is too large (max 1048576)", n_ctx);
    int n_batch = p->n_batch ? p->n_batch : 512;
    if (n_batch > n_ctx) n_batch = n_ctx;
    int n_threads = p->n_threads ? p->n_threads : bn_cpu_count_physical();
    if (n_threads > 256) return bn_error(BN_ERR_INVALID_ARG, "thread count %d is too large (max 256)", n_threads);
    if (p->batch_split < BN_BATCH_SPLIT_AUTO || p->batch_split > BN_BATCH_SPLIT_SEQUENCES)
        return bn_error(BN_ERR_INVALID_ARG, "unknown batch split %d", (int)p->batch_split);

    bn_ctx *c = bn_calloc(1, sizeof *c);
    if (!c) return BN_ERR_NOMEM;
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->kv_f32 = p->kv_f32;
    c->match_reference = p->match_reference;
    c->batch_split = p->batch_split;
    c->kv_elem = p->kv_f32 ? 4 : 2;
    bn_act_init(&c->act);
    bn_status st = bn_threadpool_init(&c->pool, n_threads);
    if (st != BN_OK) {
        bn_free(c);
        return st;
    }
    const size_t nb = (size_t)n_batch, d = (size_t)hp->n_embd, kvd = kv_dim(m), ff = (size_t)hp->n_ff;
    size_t kv_bytes = (size_t)hp->n_layer * (size_t)n_ctx * kvd * c->kv_elem;
    c->k_cache = bn_malloc(kv_bytes);
    c->v_cache = bn_malloc(kv_bytes);
    c->x = bn_malloc(nb * d * sizeof(float));
    c->xb = bn_malloc(nb * d * sizeof(float));
    c->q = bn_malloc(nb * d * sizeof(float));
    c->att = bn_malloc(nb * d * sizeof(float));
    c->k = bn_malloc(nb * kvd * sizeof(float));
    c->v = bn_malloc(nb * kvd * sizeof(float));
    c->gate = bn_malloc(nb * ff * sizeof(float));
    c->up = bn_malloc(nb * ff * sizeof(float));
    c->scores = bn_malloc((size_t)ATTN_CHUNKS_PER_THREAD * (size_t)n_threads * ATTN_SHARE_MAX * (size_t)n_ctx * sizeof(float));
    c->rope_cos = bn_malloc(nb * (size_t)(hp->n_rot / 2 + 1) * sizeof(float));
    c->rope_sin = bn_malloc(nb * (size_t)(hp->n_rot / 2 + 1) * sizeof(float));
    if (!c->k_cache || !c->v_cache || !c->x || !c->xb || !c->q || !c->att || !c->k || !c->v || !c->gate || !c->up ||
        !c->scores || !c->rope_cos || !c->rope_sin) {
        bn_ctx_free(c);
        return bn_error(BN_ERR_NOMEM, "out of memory for a context of %d tokens (KV cache %zu MiB)", n_ctx,
                        2 * kv_bytes >> 20);
    }
    *out = c;
    return BN_OK;
}

void bn_ctx_free(bn_ctx *c)
{
    if (!c) return;
    bn_threadpool_free(c->pool);
    bn_act_free(&c->act);
    void *bufs[] = {c->k_cache, c->v_cache, c->x, c->xb, c->q, c->att, c->k, c->v, c->gate, c->up, c->scores,
                    c->rope_cos, c->rope_sin, c->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bn_free(bufs[i]);
    bn_free(c);
}

int bn_ctx_n_ctx(const bn_ctx *c) { return c->n_ctx; }
int bn_ctx_pos(const bn_ctx *c) { return c->pos; }
int bn_ctx_n_threads(const bn_ctx *c) { return bn_threadpool_size(c->pool); }

bn_status bn_ctx_truncate(bn_ctx *c, int n)
{
    if (n < 0 || n > c->pos) return bn_error(BN_ERR_RANGE, "cannot truncate to %d tokens: the context holds %d", n, c->pos);
    c->pos = n;
    c->n_logit_rows = 0;
    return BN_OK;
}

/* ---- matmuls ---------------------------------------------------------------------------- */

/* y_i = W_i x for weights sharing one input: the input is quantised once per distinct format. */
static bn_status matmul_shared(bn_ctx *c, bn_threadpool *pool, const float *x, int n, bn_weight *const *w,
                               float *const *y, const float *scales, int count)
{
    for (int i = 0; i < count;) {
        /* the run of weights wanting the same activation format: one quantisation, one job */
        bn_act_format f = bn_weight_act_format(w[i]);
        int j = i + 1;
        while (j < count && j - i < BN_MATMUL_MAX && bn_weight_act_format(w[j]) == f) j++;
        bn_status st;
        if ((st = bn_act_quantize(&c->act, f, x, n, w[i]->cols, pool)) != BN_OK) return st;
        if ((st = bn_matmul_multi((const bn_weight *const *)&w[i], j - i, &c->act, &y[i], pool)) != BN_OK) return st;
        i = j;
    }
    for (int i = 0; i < count; i++) {
        if (scales && scales[i] != 1.0f) {
            const float s = scales[i];
            float *yy = y[i];
            for (int64_t j = 0; j < (int64_t)n * w[i]->rows; j++) yy[j] *= s;
        }
    }
    return BN_OK;
}

static bn_status matmul1(bn_ctx *c, bn_threadpool *pool, const float *x, int n, bn_weight *w, float *y, float scale)
{
    return matmul_shared(c, pool, x, n, &w, &y, &scale, 1);
}

/* ---- attention -------------------------------------------------------------------------- */

/* A pass evaluates n tokens; token t belongs to sequence seq[t] (whose KV cache it reads and
 * writes) at position pos[t].  A plain eval has one sequence; continuous batching has many. */
typedef struct {
    bn_ctx *c;             /* owner of the scratch buffers and threads */
    bn_ctx *const *seq;    /* [n] */
    const int *pos;        /* [n] */
    int layer, n;
    const uint8_t *single; /* [n]: the token is its sequence's only one in the pass (NULL: none
                              is): numerics of a single-token pass */
    int share;             /* query heads per work item, all of one KV head (attn_share) */
} attn_task;

/* How many query heads of one KV head a work item takes: the most of 4, 2, 1 that divides the
 * group and still leaves 4 items per thread.  Together they widen each cached f16 key and value
 * once instead of once per head. */
static int attn_share(const bn_ctx *c, int nth, int n)
{
    const bn_hparams *hp = &c->m->hp;
    const int group = hp->n_head / hp->n_head_kv;
    for (int s = ATTN_SHARE_MAX; s > 1; s /= 2)
        if (group % s == 0 && (long)n * (hp->n_head / s) >= 4L * nth) return s;
    return 1;
}

/* One work item: a token and `share` query heads of one KV head.  Each head's scores against every
 * cached position up to its own, softmax, then the weighted sum of values.  Q is rounded to f16 as
 * the reference does (its dot with the f16 keys is an f16 product).  The reference also rounds the
 * probabilities to f16 when it evaluates one token per pass but not in a batch; we do that only
 * with match_reference, because it makes results depend on how tokens are split into passes. */
static void attn_worker(void *arg, int ith, int nth)
{
    attn_task *t = arg;
    bn_ctx *c = t->c;
    const bn_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, H = hp->n_head, group = hp->n_head / hp->n_head_kv, S = t->share, per_tok = H / S;
    const size_t kvd = kv_dim(c->m), nc = (size_t)c->n_ctx;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = c->scores + (size_t)ith * ATTN_SHARE_MAX * nc; /* S rows of n_ctx */
    float qh[ATTN_SHARE_MAX * 1024];
    /* items are dealt out in turn (chunk ith takes ith, ith + nth, ...): a token attends to all
     * positions before it, so contiguous ranges would give the last chunk the most work */
    for (long item = ith; item < (long)t->n * per_tok; item += nth) {
        const int tok = (int)(item / per_tok), h0 = (int)(item % per_tok) * S, kvh = h0 / group;
        const bn_ctx *sc = t->seq[tok];
        const int p = t->pos[tok]; /* attends to positions 0..p of its own sequence */
        const size_t layer_off = (size_t)t->layer * (size_t)sc->n_ctx * kvd;
        const size_t off0 = layer_off + (size_t)kvh * (size_t)sc->n_ctx * hd; /* position 0 of this KV head */
        const float *q = c->q + (size_t)tok * (size_t)hp->n_embd + (size_t)h0 * hd; /* heads h0 .. h0+S-1 */
        float *o = c->att + (size_t)tok * (size_t)hp->n_embd + (size_t)h0 * hd;
        memcpy(qh, q, (size_t)S * hd * sizeof(float));
        if (!c->kv_f32) bn_round_f16(qh, (int64_t)S * hd);
        if (c->kv_f32) {
            for (int s = 0; s < S; s++)
                for (int j = 0; j <= p; j++)
                    scores[s * nc + j] = bn_dot_f32((const float *)sc->k_cache + off0 + (size_t)j * hd, qh + s * hd, hd);
        } else {
            bn_attn_dots_f16_gq((const uint16_t *)sc->k_cache + off0, (size_t)hd, qh, (size_t)hd, S, hd, p + 1, scores, nc);
        }
        for (int s = 0; s < S; s++) {
            bn_softmax(scores + s * nc, p + 1, scale);
            if (t->single && t->single[tok] && sc->match_reference && !c->kv_f32) bn_round_f16(scores + s * nc, p + 1);
        }
        if (c->kv_f32) {
            for (int s = 0; s < S; s++) {
                memset(o + s * hd, 0, (size_t)hd * sizeof(float));
                for (int j = 0; j <= p; j++)
                    bn_axpy_f32(o + s * hd, scores[s * nc + j], (const float *)sc->v_cache + off0 + (size_t)j * hd, hd);
            }
        } else {
            bn_attn_values_f16_gq(o, (size_t)hd, scores, nc, S, (const uint16_t *)sc->v_cache + off0, (size_t)hd, hd, p + 1);
        }
    }
}

/* ---- per-token steps ---------------------------------------------------------------------- */

/* The steps between the products work on each token's row alone, so a batch spreads its tokens
 * over the threads (each token's arithmetic is the same as in a serial loop, so results do not
 * depend on the thread count).  A single token runs on the caller. */
typedef enum {
    TOK_ADD_NORM, /* x[t] += y[t] (when add), out[t - first] = rmsnorm(x[t], w) */
    TOK_ROPE_KV,  /* rotate q[t] and k[t], store k[t] and v[t] in the token's KV cache */
    TOK_NORM,     /* att[t] = rmsnorm(att[t], w) (attention sub-norm) */
    TOK_FFN_ACT   /* gate[t] = act(gate[t]) * up[t], then the FFN sub-norm */
} tok_kind;

typedef struct {
    bn_ctx *c;
    bn_ctx *const *seq; /* TOK_ROPE_KV: [n] */
    const int *pos;     /* TOK_ROPE_KV: [n] */
    tok_kind kind;
    int layer, first, n; /* tokens first .. n-1 */
    const float *w;      /* the norm's weights */
    bool add;
    const float *y;      /* TOK_ADD_NORM: added to x when add */
    float *out;          /* TOK_ADD_NORM */
} tok_task;

static void store_kv_token(bn_ctx *c, bn_ctx *sc, int pos, int layer, int t)
{
    const size_t kvd = kv_dim(c->m), hd = (size_t)c->m->hp.head_dim, nc = (size_t)sc->n_ctx;
    for (int h = 0; h < c->m->hp.n_head_kv; h++) {
        const size_t off = ((size_t)layer * nc * kvd) + ((size_t)h * nc + (size_t)pos) * hd;
        const float *k = c->k + (size_t)t * kvd + (size_t)h * hd, *v = c->v + (size_t)t * kvd + (size_t)h * hd;
        if (c->kv_f32) {
            memcpy((float *)sc->k_cache + off, k, hd * sizeof(float));
            memcpy((float *)sc->v_cache + off, v, hd * sizeof(float));
        } else {
            bn_to_f16((uint16_t *)sc->k_cache + off, k, (int64_t)hd);
            bn_to_f16((uint16_t *)sc->v_cache + off, v, (int64_t)hd);
        }
    }
}

/* Tokens [t0, t1) of a step; norms go several rows at a time (bn_rmsnorm_rows). */
static void tok_rows(const tok_task *T, int t0, int t1)
{
    bn_ctx *c = T->c;
    const bn_hparams *hp = &c->m->hp;
    const size_t d = (size_t)hp->n_embd, ff = (size_t)hp->n_ff, kvd = kv_dim(c->m);
    const int hd = hp->head_dim, nrot = hp->n_rot, nt = t1 - t0;
    switch (T->kind) {
    case TOK_ADD_NORM:
        if (T->add)
            for (size_t i = (size_t)t0 * d; i < (size_t)t1 * d; i++) c->x[i] += T->y[i];
        bn_rmsnorm_rows(T->out + (size_t)(t0 - T->first) * d, c->x + (size_t)t0 * d, T->w, (int64_t)d, nt, hp->norm_eps);
        break;
    case TOK_ROPE_KV:
        for (int t = t0; t < t1; t++) {
            const float *cs = c->rope_cos + (size_t)t * (nrot / 2), *sn = c->rope_sin + (size_t)t * (nrot / 2);
            for (int h = 0; h < hp->n_head; h++) bn_rope_apply(c->q + (size_t)t * d + (size_t)h * hd, nrot, cs, sn, hp->rope_neox);
            for (int h = 0; h < hp->n_head_kv; h++)
                bn_rope_apply(c->k + (size_t)t * kvd + (size_t)h * hd, nrot, cs, sn, hp->rope_neox);
            store_kv_token(c, T->seq[t], T->pos[t], T->layer, t);
        }
        break;
    case TOK_NORM:
        bn_rmsnorm_rows(c->att + (size_t)t0 * d, c->att + (size_t)t0 * d, T->w, (int64_t)d, nt, hp->norm_eps);
        break;
    case TOK_FFN_ACT:
        for (int t = t0; t < t1; t++) {
            float *g = c->gate + (size_t)t * ff;
            const float *u = c->up + (size_t)t * ff;
            if (hp->ffn_act == BN_FFN_RELU2) bn_relu2_mul(g, u, (int64_t)ff);
            else bn_silu_mul(g, u, (int64_t)ff);
        }
        if (hp->sub_norms)
            bn_rmsnorm_rows(c->gate + (size_t)t0 * ff, c->gate + (size_t)t0 * ff, T->w, (int64_t)ff, nt, hp->norm_eps);
        break;
    }
}

static void tok_worker(void *arg, int ith, int nth)
{
    const tok_task *T = arg;
    const long n = T->n - T->first;
    long lo, hi;
    bn_split_range(n, ith, nth, n >= 4L * nth ? 4 : 1, &lo, &hi); /* whole groups of four rows where there are enough */
    if (lo < hi) tok_rows(T, T->first + (int)lo, T->first + (int)hi);
}

/* A few tokens (a decode step of a few sequences) stay on the caller: spreading them was measured
 * slower on the tiny model (bench_batch -b 4), the waits cost more than the work they share. */
static void tok_run(bn_threadpool *pool, const tok_task *T)
{
    const int n = T->n - T->first, nth = bn_threadpool_size(pool);
    if (n < 8 || nth == 1) tok_worker((void *)T, 0, 1);
    else bn_threadpool_run_chunks(pool, tok_worker, (void *)T, n / 4 < 4 * nth ? n / 4 : 4 * nth);
}

/* ---- one forward pass of n <= n_batch tokens ---------------------------------------------- */

/* single[t] (NULL: none): token t is the only one of its sequence in the pass (a single-token
 * eval, or continuous batching).  Such tokens get single-token numerics whatever n is, so a
 * sequence's output does not depend on which other sequences share the pass. */
static bn_status forward(bn_ctx *c, bn_threadpool *pool, bn_ctx *const *seq, const int *pos, const int32_t *tokens,
                         int n, const int *out, int n_out, const uint8_t *single)
{
    const bn_model *m = c->m;
    const bn_hparams *hp = &m->hp;
    const int d = hp->n_embd, nrot = hp->n_rot;
    bn_status st;

    for (int t = 0; t < n; t++)
        if ((st = bn_model_embed(m, tokens[t], c->x + (size_t)t * d)) != BN_OK) return st;
    for (int t = 0; t < n; t++)
        bn_rope_cache(c->rope_cos + (size_t)t * (nrot / 2), c->rope_sin + (size_t)t * (nrot / 2), nrot, pos[t],
                      hp->rope_theta);

    for (int l = 0; l < hp->n_layer; l++) {
        bn_layer *L = &m->layers[l];
        /* attention block (the previous layer's FFN output, in xb, joins the residual first) */
        tok_run(pool, &(tok_task){.c = c, .kind = TOK_ADD_NORM, .n = n, .w = L->attn_norm, .add = l > 0, .y = c->xb, .out = c->xb});
        {
            bn_weight *w[3] = {&L->wq, &L->wk, &L->wv};
            float *y[3] = {c->q, c->k, c->v};
            float s[3] = {L->sq, L->sk, L->sv};
            if ((st = matmul_shared(c, pool, c->xb, n, w, y, s, 3)) != BN_OK) return st;
        }
        tok_run(pool, &(tok_task){.c = c, .seq = seq, .pos = pos, .kind = TOK_ROPE_KV, .layer = l, .n = n});
        attn_task at = {c, seq, pos, l, n, single, attn_share(c, bn_threadpool_size(pool), n)};
        /* chunks (each with its own scores buffer) taken by whichever thread is free */
        {
            const long items = (long)n * (hp->n_head / at.share), most = (long)ATTN_CHUNKS_PER_THREAD * bn_threadpool_size(pool);
            bn_threadpool_run_chunks(pool, attn_worker, &at, (int)(items < most ? items : most));
        }
        if (hp->sub_norms) tok_run(pool, &(tok_task){.c = c, .kind = TOK_NORM, .n = n, .w = L->attn_sub_norm});
        if ((st = matmul1(c, pool, c->att, n, &L->wo, c->xb, L->so)) != BN_OK) return st;

        /* feed-forward block */
        tok_run(pool, &(tok_task){.c = c, .kind = TOK_ADD_NORM, .n = n, .w = L->ffn_norm, .add = true, .y = c->xb, .out = c->xb});
        {
            bn_weight *w[2] = {&L->w_gate, &L->w_up};
            float *y[2] = {c->gate, c->up};
            float s[2] = {L->s_gate, L->s_up};
            if ((st = matmul_shared(c, pool, c->xb, n, w, y, s, 2)) != BN_OK) return st;
        }
        tok_run(pool, &(tok_task){.c = c, .kind = TOK_FFN_ACT, .n = n, .w = L->ffn_sub_norm});
        if ((st = matmul1(c, pool, c->gate, n, &L->w_down, c->xb, L->s_down)) != BN_OK) return st;
    }

    /* output head on the rows whose logits are wanted (out[0..n_out), ascending; NULL: all): the last
     * FFN output joins the residual of those rows, normed into att (rows 0 .. rows-1) */
    const int first = out ? out[0] : 0, rows = out ? n_out : n;
    tok_run(pool, &(tok_task){.c = c, .kind = TOK_ADD_NORM, .first = first, .n = n, .w = m->output_norm, .add = hp->n_layer > 0,
                           .y = c->xb, .out = c->att});
    if (out) /* the wanted rows together (row out[j] - first >= j: moving them up in order is safe) */
        for (int j = 0; j < n_out; j++)
            if (out[j] - first != j)
                memcpy(c->att + (size_t)j * d, c->att + (size_t)(out[j] - first) * d, (size_t)d * sizeof(float));
    size_t need = (size_t)rows * (size_t)hp->n_vocab;
    if (need > c->logits_cap) {
        float *nl = bn_realloc(c->logits, need * sizeof(float));
        if (!nl) return BN_ERR_NOMEM;
        c->logits = nl;
        c->logits_cap = need;
    }
    /* The reference rounds a single token's final hidden state to f16 before the F16 head and
     * keeps a batch's in f32; we round in both cases (max |logit difference| ~3e-4 on the
     * reference models' batch positions). */
    bn_act_format f = bn_weight_act_format(&m->output);
    if ((st = bn_act_quantize(&c->act, f, c->att, rows, d, pool)) != BN_OK) return st;
    if ((st = bn_matmul(&m->output, &c->act, c->logits, pool)) != BN_OK) return st;
    c->n_logit_rows = rows;
    c->logit_first = first;
    c->last_n = n;
    return BN_OK;
}

/* One pass of a single sequence: tokens at c->pos, c->pos + 1, ... */
static bn_status forward_seq(bn_ctx *c, const int32_t *tokens, int n, bool all_logits)
{
    bn_ctx **seq = bn_malloc((size_t)n * sizeof *seq);
    int *pos = bn_malloc((size_t)n * sizeof *pos);
    bn_status st = seq && pos ? BN_OK : BN_ERR_NOMEM;
    if (st == BN_OK) {
        for (int t = 0; t < n; t++) {
            seq[t] = c;
            pos[t] = c->pos + t;
        }
        const int last = n - 1;
        const uint8_t one = 1;
        st = forward(c, c->pool, seq, pos, tokens, n, all_logits ? NULL : &last, 1, n == 1 ? &one : NULL);
        if (st == BN_OK) c->pos += n;
    }
    bn_free(seq);
    bn_free(pos);
    return st;
}

/* A lazily repacked model (bn_model_repack) gets a slice of its copy before each evaluation but a
 * context's first, so the first token is not delayed; 64 MiB (about 10 ms on two cores) per call
 * repacks a 2B-4T model over its first eight generated tokens.  The copy only makes products
 * faster: if memory for one runs out, that weight stays in the file's layout and evaluation goes on. */
static void repack_some(bn_ctx *c)
{
    if (c->pos > 0) (void)bn_model_repack_step(c->m, c->pool, (size_t)64 << 20);
}

bn_status bn_ctx_eval(bn_ctx *c, const int32_t *tokens, int n, bool all_logits)
{
    if (n <= 0) return bn_error(BN_ERR_INVALID_ARG, "no tokens to evaluate");
    if (n > c->n_ctx - c->pos)
        return bn_error(BN_ERR_RANGE, "context overflow: %d tokens do not fit (%d of %d used)", n, c->pos, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->m->hp.n_vocab)
            return bn_error(BN_ERR_RANGE, "token %d (id %d) is outside the vocabulary (0..%d)", i, tokens[i],
                            c->m->hp.n_vocab - 1);
    repack_some(c);
    if (!all_logits || n <= c->n_batch) {
        /* logits of intermediate passes are not needed */
        for (int done = 0; done < n;) {
            int chunk = n - done < c->n_batch ? n - done : c->n_batch;
            bn_status st = forward_seq(c, tokens + done, chunk, all_logits && done + chunk == n);
            if (st != BN_OK) return st;
            done += chunk;
        }
        return BN_OK;
    }
    /* all logits over several passes: gather them into one buffer */
    const size_t nv = (size_t)c->m->hp.n_vocab;
    float *all = bn_malloc((size_t)n * nv * sizeof(float));
    if (!all) return BN_ERR_NOMEM;
    for (int done = 0; done < n;) {
        int chunk = n - done < c->n_batch ? n - done : c->n_batch;
        bn_status st = forward_seq(c, tokens + done, chunk, true);
        if (st != BN_OK) {
            bn_free(all);
            return st;
        }
        memcpy(all + (size_t)done * nv, c->logits, (size_t)chunk * nv * sizeof(float));
        done += chunk;
    }
    bn_free(c->logits);
    c->logits = all;
    c->logits_cap = (size_t)n * nv;
    c->n_logit_rows = n;
    c->logit_first = 0;
    c->last_n = n;
    return BN_OK;
}

const float *bn_ctx_logits(const bn_ctx *c, int i)
{
    if (c->n_logit_rows == 0) return NULL;
    if (i < 0) i = c->last_n + i;
    int row = i - c->logit_first;
    if (row < 0 || row >= c->n_logit_rows) return NULL;
    return c->logits + (size_t)row * (size_t)c->m->hp.n_vocab;
}

/* Evaluates counts[i] tokens for each sequence cs[i] (counts NULL: one each; tokens holds them
 * sequence after sequence) in passes of up to cs[0]'s batch size on `pool`, with cs[0]'s scratch
 * buffers; each sequence then holds the logits of its last token.  Positions advance only when
 * everything succeeded. */
static bn_status eval_group(bn_ctx *const *cs, const int32_t *tokens, const int *counts, int n, bn_threadpool *pool)
{
    bn_ctx *c = cs[0];
    const size_t nv = (size_t)c->m->hp.n_vocab;
    int total = 0;
    for (int i = 0; i < n; i++) total += counts ? counts[i] : 1;
    bn_ctx **seq = bn_malloc((size_t)total * sizeof *seq);
    int *pos = bn_malloc((size_t)total * sizeof *pos), *out = bn_malloc((size_t)total * sizeof *out);
    int *last = bn_malloc((size_t)total * sizeof *last); /* for a token: its sequence if it is its last, else -1 */
    uint8_t *single = bn_malloc((size_t)total); /* the token is its sequence's only one */
    float *mine = bn_malloc(nv * sizeof(float)); /* c's row, while later passes reuse its buffer */
    bn_status st = seq && pos && out && last && single && mine ? BN_OK : BN_ERR_NOMEM;
    for (int i = 0, t = 0; st == BN_OK && i < n; i++) {
        const int k = counts ? counts[i] : 1;
        for (int j = 0; j < k; j++, t++) {
            seq[t] = cs[i];
            pos[t] = cs[i]->pos + j;
            last[t] = j == k - 1 ? i : -1;
            single[t] = k == 1;
        }
    }
    for (int done = 0; done < total && st == BN_OK; done += c->n_batch) {
        const int chunk = total - done < c->n_batch ? total - done : c->n_batch;
        int n_out = 0;
        for (int t = done; t < done + chunk; t++)
            if (last[t] >= 0) out[n_out++] = t - done;
        if (n_out == 0) { /* no sequence ends in this pass: its logits are not needed, but a pass
                             computes at least one row */
            out[0] = chunk - 1;
            n_out = 1;
        }
        st = forward(c, pool, seq + done, pos + done, tokens + done, chunk, out, n_out, single + done);
        for (int j = 0; j < n_out && st == BN_OK; j++) {
            const int i = last[done + out[j]];
            if (i < 0) continue;
            bn_ctx *sc = cs[i];
            float *dst = mine;
            if (sc != c) {
                if (sc->logits_cap < nv) {
                    float *nl = bn_realloc(sc->logits, nv * sizeof(float));
                    if (!nl) {
                        st = BN_ERR_NOMEM;
                        break;
                    }
                    sc->logits = nl;
                    sc->logits_cap = nv;
                }
                dst = sc->logits;
            }
            memcpy(dst, c->logits + (size_t)j * nv, nv * sizeof(float));
        }
    }
    if (st == BN_OK) {
        memcpy(c->logits, mine, nv * sizeof(float));
        for (int i = 0; i < n; i++) {
            bn_ctx *sc = cs[i];
            const int k = counts ? counts[i] : 1;
            sc->pos += k;
            sc->n_logit_rows = 1;
            sc->logit_first = k - 1;
            sc->last_n = k;
        }
    }
    bn_free(seq);
    bn_free(pos);
    bn_free(out);
    bn_free(last);
    bn_free(single);
    bn_free(mine);
    return st;
}

/* Sequence-parallel decoding: the sequences are cut into one group per thread and each thread
 * runs its group's passes alone, with no barrier between the steps of a pass.  Results are the
 * same bits (a decode token's numerics do not depend on the other tokens of its pass). */
typedef struct {
    bn_ctx *const *cs;
    const int32_t *tokens;
    int n;
    bn_logits_fn fn;
    void *user;
    atomic_int failed; /* the first group that failed, or -1 */
    bn_status st;
    char msg[512];
} split_task;

static void split_worker(void *arg, int g, int groups)
{
    split_task *T = arg;
    long lo, hi;
    bn_split_range(T->n, g, groups, 1, &lo, &hi);
    if (lo >= hi) return;
    bn_status st = eval_group(T->cs + lo, T->tokens + lo, NULL, (int)(hi - lo), NULL);
    if (st == BN_OK && T->fn) /* while this thread's cache still holds the logits */
        for (long i = lo; i < hi; i++) T->fn(T->user, (int)i, bn_ctx_logits(T->cs[i], -1));
    int none = -1;
    if (st != BN_OK && atomic_compare_exchange_strong(&T->failed, &none, g)) {
        T->st = st;
        snprintf(T->msg, sizeof T->msg, "%s", bn_last_error());
    }
}

/* Whether a pass of n decode tokens goes one group per thread.  A group's thread reads every matrix
 * itself, so with several groups the weights are read once per thread: cheap while they stay in
 * the shared cache, which is when small models gain (no barrier between a pass's many short steps,
 * none of them run by one thread while the others wait; the bundled model's 4-sequence pass on 2
 * threads: 212-218 -> 176-189 us).  A model streamed from memory loses (2B-4T: the weights read twice). */
static bool split_by_sequence(bn_ctx *const *cs, int n, int nth)
{
    const bn_ctx *c = cs[0];
    if (n < 2 || nth < 2) return false;
    switch (c->batch_split) {
    case BN_BATCH_SPLIT_SEQUENCES: break;
    case BN_BATCH_SPLIT_ROWS: return false;
    case BN_BATCH_SPLIT_AUTO: {
        const size_t llc = bn_cpu_cache_bytes();
        if (n < nth || llc == 0 || bn_model_pass_bytes(c->m) > llc) return false;
        break;
    }
    }
    /* a group runs on its first context's scratch, which holds positions below its n_ctx */
    const int groups = n < nth ? n : nth;
    for (int g = 0; g < groups; g++) {
        long lo, hi;
        bn_split_range(n, g, groups, 1, &lo, &hi);
        for (long i = lo; i < hi; i++)
            if (cs[i]->pos >= cs[lo]->n_ctx) return false;
    }
    return true;
}

/* The logits hook of a pass that all threads shared: the sequences dealt out among them. */
static void hook_worker(void *arg, int i, int n)
{
    (void)n;
    split_task *T = arg;
    T->fn(T->user, i, bn_ctx_logits(T->cs[i], -1));
}

bn_status bn_ctx_eval_multi(bn_ctx *const *cs, const int32_t *tokens, int n)
{
    return bn_ctx_eval_batch(cs, tokens, NULL, n, NULL, NULL);
}

bn_status bn_ctx_eval_batch(bn_ctx *const *cs, const int32_t *tokens, const int *counts, int n, bn_logits_fn fn,
                            void *user)
{
    if (n <= 0) return bn_error(BN_ERR_INVALID_ARG, "no sequences to evaluate");
    bn_ctx *c = cs[0];
    bool decode = true;
    for (int i = 0, t = 0; i < n; i++) {
        const int k = counts ? counts[i] : 1;
        if (k < 1) return bn_error(BN_ERR_INVALID_ARG, "sequence %d has %d tokens to evaluate", i, k);
        decode &= k == 1;
        if (cs[i]->m != c->m) return bn_error(BN_ERR_INVALID_ARG, "sequence %d belongs to another model", i);
        if (k > cs[i]->n_ctx - cs[i]->pos)
            return bn_error(BN_ERR_RANGE, "context overflow: sequence %d has room for %d more tokens, not %d", i,
                            cs[i]->n_ctx - cs[i]->pos, k);
        if (cs[i]->pos + k > c->n_ctx || cs[i]->kv_f32 != c->kv_f32)
            return bn_error(BN_ERR_INVALID_ARG, "sequence %d has a longer context or another KV type than sequence 0", i);
        for (int j = 0; j < k; j++, t++)
            if (tokens[t] < 0 || tokens[t] >= c->m->hp.n_vocab)
                return bn_error(BN_ERR_RANGE, "token %d of sequence %d (id %d) is outside the vocabulary", j, i, tokens[t]);
        for (int j = 0; j < i; j++)
            if (cs[j] == cs[i]) return bn_error(BN_ERR_INVALID_ARG, "sequence %d appears twice in one batch", i);
    }
    repack_some(c);
    const int nth = bn_threadpool_size(c->pool);
    split_task T = {.cs = cs, .tokens = tokens, .n = n, .fn = fn, .user = user};
    atomic_init(&T.failed, -1);
    /* a prompt among them: one shared pass (its tokens make a GEMM, and one group would get them all) */
    if (!decode || !split_by_sequence(cs, n, nth)) {
        bn_status st = eval_group(cs, tokens, counts, n, c->pool);
        if (st == BN_OK && fn) { /* several sequences' hooks side by side; one on the caller */
            if (n > 1) bn_threadpool_run_chunks(c->pool, hook_worker, &T, n);
            else fn(user, 0, bn_ctx_logits(cs[0], -1));
        }
        return st;
    }
    bn_threadpool_run_chunks(c->pool, split_worker, &T, n < nth ? n : nth);
    if (atomic_load(&T.failed) >= 0) return bn_error(T.st, "%s", T.msg);
    return BN_OK;
}
