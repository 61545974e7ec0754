/* The forward pass: a context holds the KV cache, scratch buffers and the thread pool, and
 * evaluates batches of tokens with a model.
 *
 * Per layer (BitNet b1.58, spec §1; "llama" drops the sub-norms and uses SwiGLU):
 *   a = RMSNorm(x)·attn_norm;  q,k,v = Wq a, Wk a, Wv a   (one int8 quantisation of a shared)
 *   q,k = RoPE(q,k);  o = softmax(q kᵀ/√d + mask) v      (GQA: head h reads kv head h/(H/Hkv))
 *   o = RMSNorm(o)·attn_sub_norm;  x += Wo o
 *   f = RMSNorm(x)·ffn_norm;  g = act(Wgate f)·(Wup f);  g = RMSNorm(g)·ffn_sub_norm;  x += Wdown g
 * then logits = head · RMSNorm(x)·output_norm. */
#ifndef BN_ENGINE_ENGINE_H
#define BN_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "model/model.h"

/* How bn_ctx_eval_multi shares a pass of several sequences among the threads (bitnet.h's
 * bitnet_batch_split says when each is faster). */
typedef enum bn_batch_split {
    BN_BATCH_SPLIT_AUTO = 0,      /* SEQUENCES when the model's matrices fit in the last-level cache
                                     and every thread gets a sequence, else ROWS */
    BN_BATCH_SPLIT_ROWS = 1,      /* one pass; every product's rows are shared by all threads */
    BN_BATCH_SPLIT_SEQUENCES = 2  /* one group of sequences per thread, each its own passes */
} bn_batch_split;

typedef struct bn_ctx_params {
    int n_ctx;     /* KV cache length; 0 = min(model context, 4096) */
    int n_threads; /* 0 = physical cores */
    int n_batch;   /* tokens per forward pass; 0 = 512 */
    bool kv_f32;   /* F32 K/V cache instead of F16 */
    bool match_reference; /* round attention weights to f16 in single-token passes as bitnet.cpp
                             does; otherwise results do not depend on how tokens are batched */
    bn_batch_split batch_split; /* for bn_ctx_eval_multi with this context first */
} bn_ctx_params;

typedef struct bn_ctx bn_ctx;

bn_status bn_ctx_init(const bn_model *m, const bn_ctx_params *p, bn_ctx **out);
void bn_ctx_free(bn_ctx *c);
int bn_ctx_n_ctx(const bn_ctx *c);
int bn_ctx_pos(const bn_ctx *c);
int bn_ctx_n_threads(const bn_ctx *c);
bn_status bn_ctx_truncate(bn_ctx *c, int n);

/* Evaluates tokens at the current position.  all_logits: keep logits of every token; else only
 * the last one's.  Fails with BN_ERR_RANGE (evaluating nothing) if the cache would overflow. */
bn_status bn_ctx_eval(bn_ctx *c, const int32_t *tokens, int n, bool all_logits);
/* One token for each of n contexts of the same model on cs[0]'s threads: one pass, or with
 * cs[0]'s batch_split, one group of sequences per thread (the logits are the same bits). */
bn_status bn_ctx_eval_multi(bn_ctx *const *cs, const int32_t *tokens, int n);
/* What to do with sequence i's logits (n_vocab floats) once they are ready: called once per
 * sequence, on one of the threads (the one that computed them where it can), concurrently for
 * different i. */
typedef void (*bn_logits_fn)(void *user, int i, const float *logits);
/* The general batch: counts[i] tokens for each context cs[i] (counts NULL: one each; tokens holds
 * them context after context, each appended at its position), evaluated together; afterwards each
 * context holds its last token's logits, and fn (NULL: none) has been called for every one.  A
 * batch with more than one token for some context is one shared pass (batch_split applies to
 * decode batches).  Fails without evaluating anything when a context lacks room. */
bn_status bn_ctx_eval_batch(bn_ctx *const *cs, const int32_t *tokens, const int *counts, int n, bn_logits_fn fn,
                            void *user);
/* Logits of token i of the last eval (-1 = last); NULL if not kept. */
const float *bn_ctx_logits(const bn_ctx *c, int i);

#endif
