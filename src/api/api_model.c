/* Public API: models, contexts, sampling and generation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_internal.h"
#include "common/error.h"
#include "common/file.h"
#include "common/mem.h"
#include "hf/hf_model.h"

#define CHECK_ARG(cond, what) \
    do { \
        if (!(cond)) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "%s", what); \
    } while (0)

/* ---- models ---- */

void bitnet_model_params_default(bitnet_model_params *p)
{
    memset(p, 0, sizeof *p);
    p->pretokenizer = BITNET_PRETOK_AUTO;
    p->prefetch = true;
    p->repack = BITNET_REPACK_LAZY;
}

bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params, bitnet_model **out)
{
    CHECK_ARG(out, "bitnet_model_load: out is NULL");
    *out = NULL;
    CHECK_ARG(path, "bitnet_model_load: path is NULL");
    bitnet_model_params dp;
    if (!params) {
        bitnet_model_params_default(&dp);
        params = &dp;
    }
    bn_gguf *g;
    /* a Hugging Face folder is converted into memory, then loaded like a file */
    bool hf_dir = bn_hf_is_model_dir(path);
    bn_status st = hf_dir ? bn_hf_open_gguf(path, NULL, &g) : bn_gguf_open(path, &g);
    if (st != BN_OK) return hf_dir ? (bitnet_status)st : (bitnet_status)bn_error_prefix(st, "%s: ", path);
    if (params->prefetch && !hf_dir) {
        /* weights are read on every token: ask for read-ahead and huge pages */
        bn_mapfile mf = {.data = bn_gguf_file_data(g), .size = bn_gguf_file_size(g), .is_mapped = 1};
        bn_mapfile_advise_willneed(&mf);
    }
    bitnet_model *bm = bn_calloc(1, sizeof *bm);
    if (!bm) {
        bn_gguf_free(g);
        return BITNET_ERR_NOMEM;
    }
    st = bn_model_init_gguf(g, &bm->m);
    if (st != BN_OK) {
        bn_gguf_free(g);
        bn_free(bm);
        return (bitnet_status)bn_error_prefix(st, "%s: ", path);
    }
    if (params->head_type != 0 && (st = bn_model_requantize_head(bm->m, params->head_type)) != BN_OK) {
        bitnet_model_free(bm);
        return (bitnet_status)bn_error_prefix(st, "%s: ", path);
    }
    /* a file mapping's pages of the copied tensors can be dropped (a converted folder's buffer can't) */
    if (params->repack != BITNET_REPACK_OFF &&
        (st = bn_model_repack(bm->m, bn_gguf_is_file_mapping(g), params->repack != BITNET_REPACK_AT_LOAD)) != BN_OK) {
        bitnet_model_free(bm);
        return (bitnet_status)bn_error_prefix(st, "%s: ", path);
    }
    st = bn_tokenizer_load_gguf(g, (bn_pretok)params->pretokenizer, &bm->tokenizer.tok);
    if (st != BN_OK) {
        bitnet_model_free(bm);
        return (bitnet_status)bn_error_prefix(st, "%s: tokenizer: ", path);
    }
    if (bn_tokenizer_n_vocab(bm->tokenizer.tok) > bm->m->hp.n_vocab) {
        st = bn_error(BN_ERR_FORMAT, "%s: the tokenizer has %d tokens but the model only %d", path,
                      bn_tokenizer_n_vocab(bm->tokenizer.tok), bm->m->hp.n_vocab);
        bitnet_model_free(bm);
        return (bitnet_status)st;
    }
    bn_gguf_str tmpl;
    if (bn_gguf_get_str(g, "tokenizer.chat_template", &tmpl) == BN_OK) {
        bm->chat_template = bn_strndup(tmpl.ptr, (size_t)tmpl.len);
        if (!bm->chat_template) {
            bitnet_model_free(bm);
            return BITNET_ERR_NOMEM;
        }
    }
    bn_error_clear();
    *out = bm;
    return BITNET_OK;
}

void bitnet_model_free(bitnet_model *m)
{
    if (!m) return;
    bn_tokenizer_free(m->tokenizer.tok);
    bn_model_free(m->m);
    bn_free(m->chat_template);
    bn_free(m);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

bitnet_status bitnet_model_info_get(const bitnet_model *bm, bitnet_model_info *info)
{
    CHECK_ARG(bm && info, "bitnet_model_info_get: NULL argument");
    const bn_model *m = bm->m;
    const bn_hparams *hp = &m->hp;
    memset(info, 0, sizeof *info);
    copy_str(info->arch, sizeof info->arch, m->arch_name);
    bn_gguf_str name;
    if (bn_gguf_get_str(m->gguf, "general.name", &name) == BN_OK) {
        size_t n = name.len < sizeof info->name - 1 ? (size_t)name.len : sizeof info->name - 1;
        memcpy(info->name, name.ptr, n);
    }
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_ff = hp->n_ff;
    info->head_dim = hp->head_dim;
    info->rope_theta = hp->rope_theta;
    info->norm_eps = hp->norm_eps;
    info->weight_type = m->layers[0].wq.type;
    info->embd_type = m->tok_embd->type;
    info->head_type = m->output.type;
    info->tied_embeddings = m->tied;
    info->n_params = m->n_params;
    info->file_bytes = bn_gguf_file_size(m->gguf);
    info->weight_bytes = bn_gguf_file_size(m->gguf) - bn_gguf_data_offset(m->gguf);
    size_t head_bytes = 0;
    bn_type_tensor_nbytes(m->output.type, m->output.cols, m->output.rows * m->output.cols, &head_bytes);
    uint64_t per_tok = info->weight_bytes - m->tok_embd->nbytes + head_bytes;
    if (!m->tied) {
        const bn_gguf_tensor *out = bn_gguf_find_tensor(m->gguf, "output.weight");
        if (out) per_tok -= out->nbytes;
    }
    info->bytes_per_token = per_tok;
    info->repacked_bytes = m->repacked_bytes;
    return BITNET_OK;
}

const bitnet_tokenizer *bitnet_model_tokenizer(const bitnet_model *m) { return m ? &m->tokenizer : NULL; }

/* ---- contexts ---- */

void bitnet_context_params_default(bitnet_context_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_batch = 512;
    p->kv_type = BITNET_KV_F16;
}

bitnet_status bitnet_context_init(bitnet_model *m, const bitnet_context_params *params, bitnet_context **out)
{
    CHECK_ARG(out, "bitnet_context_init: out is NULL");
    *out = NULL;
    CHECK_ARG(m, "bitnet_context_init: model is NULL");
    bitnet_context_params dp;
    if (!params) {
        bitnet_context_params_default(&dp);
        params = &dp;
    }
    if (params->kv_type != BITNET_KV_F16 && params->kv_type != BITNET_KV_F32)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "unknown KV cache type %d", (int)params->kv_type);
    if (params->batch_split != BITNET_BATCH_SPLIT_AUTO && params->batch_split != BITNET_BATCH_SPLIT_ROWS &&
        params->batch_split != BITNET_BATCH_SPLIT_SEQUENCES)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "unknown batch split %d", (int)params->batch_split);
    bitnet_context *c = bn_calloc(1, sizeof *c);
    if (!c) return BITNET_ERR_NOMEM;
    bn_ctx_params cp = {.n_ctx = params->n_ctx, .n_threads = params->n_threads, .n_batch = params->n_batch,
                        .kv_f32 = params->kv_type == BITNET_KV_F32, .match_reference = params->match_reference,
                        .batch_split = (bn_batch_split)params->batch_split};
    bn_status st = bn_ctx_init(m->m, &cp, &c->ctx);
    if (st != BN_OK) {
        bn_free(c);
        return (bitnet_status)st;
    }
    c->model = m;
    *out = c;
    return BITNET_OK;
}

void bitnet_context_free(bitnet_context *c)
{
    if (!c) return;
    bn_ctx_free(c->ctx);
    bn_free(c);
}

int bitnet_context_n_ctx(const bitnet_context *c) { return c ? bn_ctx_n_ctx(c->ctx) : 0; }
int bitnet_context_pos(const bitnet_context *c) { return c ? bn_ctx_pos(c->ctx) : 0; }

bitnet_status bitnet_context_truncate(bitnet_context *c, int n)
{
    CHECK_ARG(c, "bitnet_context_truncate: context is NULL");
    return (bitnet_status)bn_ctx_truncate(c->ctx, n);
}

bitnet_status bitnet_eval(bitnet_context *c, const bitnet_token *tokens, int n, bool all_logits)
{
    CHECK_ARG(c && (tokens || n == 0), "bitnet_eval: NULL argument");
    return (bitnet_status)bn_ctx_eval(c->ctx, tokens, n, all_logits);
}

/* The engine contexts of a batch, checked (NULL with the error set). */
static bn_ctx **batch_contexts(bitnet_context *const *contexts, int n, const char *fn)
{
    bn_ctx **cs = bn_malloc((size_t)n * sizeof *cs);
    if (!cs) {
        bn_error(BN_ERR_NOMEM, "%s: out of memory for %d contexts", fn, n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!contexts[i] || contexts[i]->model->m != contexts[0]->model->m) {
            bn_free(cs);
            bn_error(BN_ERR_INVALID_ARG, "%s: context %d is NULL or of another model", fn, i);
            return NULL;
        }
        cs[i] = contexts[i]->ctx;
    }
    return cs;
}

bitnet_status bitnet_eval_multi(bitnet_context *const *contexts, const bitnet_token *tokens, int n)
{
    CHECK_ARG(contexts && tokens && n > 0, "bitnet_eval_multi: NULL argument or n <= 0");
    bn_ctx **cs = batch_contexts(contexts, n, "bitnet_eval_multi");
    if (!cs) return (bitnet_status)bn_last_status();
    bn_status st = bn_ctx_eval_multi(cs, tokens, n);
    bn_free(cs);
    return (bitnet_status)st;
}

typedef struct {
    bitnet_sampler *const *samplers;
    bitnet_token *next;
    int n_vocab;
} sample_hook;

static void sample_logits(void *user, int i, const float *logits)
{
    const sample_hook *h = user;
    h->next[i] = h->samplers[i] && logits ? bn_sampler_sample(h->samplers[i]->s, logits, h->n_vocab) : -1;
}

bitnet_status bitnet_eval_batch(bitnet_context *const *contexts, const bitnet_token *tokens, const int *n_tokens, int n,
                                bitnet_sampler *const *samplers, bitnet_token *next)
{
    CHECK_ARG(contexts && tokens && n > 0 && (!samplers || next), "bitnet_eval_batch: NULL argument or n <= 0");
    for (int i = 0; samplers && i < n; i++) {
        next[i] = -1;
        for (int j = 0; j < i && samplers[i]; j++)
            if (samplers[j] == samplers[i])
                return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_eval_batch: sampler %d is also sampler %d", i, j);
    }
    bn_ctx **cs = batch_contexts(contexts, n, "bitnet_eval_batch");
    if (!cs) return (bitnet_status)bn_last_status();
    sample_hook h = {samplers, next, contexts[0]->model->m->hp.n_vocab};
    bn_status st = bn_ctx_eval_batch(cs, tokens, n_tokens, n, samplers ? sample_logits : NULL, &h);
    bn_free(cs);
    return (bitnet_status)st;
}

bitnet_status bitnet_eval_multi_sample(bitnet_context *const *contexts, const bitnet_token *tokens, int n,
                                       bitnet_sampler *const *samplers, bitnet_token *next)
{
    CHECK_ARG(samplers && next, "bitnet_eval_multi_sample: NULL argument");
    return bitnet_eval_batch(contexts, tokens, NULL, n, samplers, next);
}

const float *bitnet_get_logits(const bitnet_context *c, int i) { return c ? bn_ctx_logits(c->ctx, i) : NULL; }

/* ---- sampling ---- */

void bitnet_sampler_params_default(bitnet_sampler_params *p)
{
    bn_sampler_params d;
    bn_sampler_params_default(&d);
    p->temperature = d.temperature;
    p->top_k = d.top_k;
    p->top_p = d.top_p;
    p->min_p = d.min_p;
    p->repeat_penalty = d.repeat_penalty;
    p->repeat_last_n = d.repeat_last_n;
    p->presence_penalty = d.presence_penalty;
    p->frequency_penalty = d.frequency_penalty;
    p->seed = d.seed;
}

static bn_sampler_params to_internal(const bitnet_sampler_params *p)
{
    bn_sampler_params d = {.temperature = p->temperature, .top_k = p->top_k, .top_p = p->top_p, .min_p = p->min_p,
                           .repeat_penalty = p->repeat_penalty, .repeat_last_n = p->repeat_last_n,
                           .presence_penalty = p->presence_penalty, .frequency_penalty = p->frequency_penalty,
                           .seed = p->seed};
    return d;
}

bitnet_status bitnet_sampler_init(const bitnet_sampler_params *p, bitnet_sampler **out)
{
    CHECK_ARG(out, "bitnet_sampler_init: out is NULL");
    *out = NULL;
    bitnet_sampler_params dp;
    if (!p) {
        bitnet_sampler_params_default(&dp);
        p = &dp;
    }
    bn_sampler_params ip = to_internal(p);
    bitnet_sampler *s = bn_calloc(1, sizeof *s);
    if (!s) return BITNET_ERR_NOMEM;
    bn_status st = bn_sampler_init(&ip, &s->s);
    if (st != BN_OK) {
        bn_free(s);
        return (bitnet_status)st;
    }
    *out = s;
    return BITNET_OK;
}

void bitnet_sampler_free(bitnet_sampler *s)
{
    if (!s) return;
    bn_sampler_free(s->s);
    bn_free(s);
}

bitnet_token bitnet_sampler_sample(bitnet_sampler *s, const float *logits, int n_vocab)
{
    if (!s || !logits) return -1;
    return bn_sampler_sample(s->s, logits, n_vocab);
}

void bitnet_sampler_accept(bitnet_sampler *s, bitnet_token t)
{
    if (s) bn_sampler_accept(s->s, t);
}

void bitnet_sampler_reset(bitnet_sampler *s)
{
    if (s) bn_sampler_reset(s->s);
}

void bitnet_free_string(char *s) { free(s); }
