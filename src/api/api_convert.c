/* Public API: conversion of Hugging Face folders and GGUF files to GGUF (bitnet_convert). */
#include <string.h>

#include "api/api_internal.h"
#include "common/error.h"
#include "common/mem.h"
#include "gguf/gguf.h"
#include "hf/hf_model.h"
#include "hf/hf_parallel.h"
#include "quant/quant.h"

void bitnet_convert_params_default(bitnet_convert_params *p)
{
    memset(p, 0, sizeof *p);
    p->weight_type = BN_TYPE_I2_S;
    p->embed_type = BITNET_TYPE_AUTO;
}

static bool is_ternary(uint32_t t) { return t == BN_TYPE_I2_S || t == BN_TYPE_TQ1_0 || t == BN_TYPE_TQ2_0; }

/* ---- GGUF -> GGUF ------------------------------------------------------------------------------ */

typedef struct rq_job {
    const bn_gguf_tensor *src;
    uint32_t type;
    struct rq_ctx *ctx;
} rq_job;

typedef struct rq_ctx {
    const bitnet_convert_params *p;
    uint64_t done, total;
    bn_threadpool *tp; /* each tensor is split across its threads (hf_parallel.h) */
} rq_ctx;

/* Elements a thread takes at a time (whole blocks of every type). */
#define RQ_PIECE 65536

/* One tensor's pieces, shared by the threads that convert it. */
typedef struct rq_task {
    const rq_job *j;
    int8_t *t;
    float *in, *out; /* ternary scales read / written */
    void *dst;
    size_t row_bytes;
    float i2s_scale;
} rq_task;

static bn_status rq_decode(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    rq_task *k = arg;
    const bn_gguf_tensor *s = k->j->src;
    return bn_ternary_decode_range(s->type, s->data, s->n_elem, lo, hi - lo, k->t, k->in);
}

static bn_status rq_encode(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    rq_task *k = arg;
    return bn_ternary_encode_range(k->j->type, k->t, k->out, k->j->src->n_elem, lo, hi - lo, k->dst);
}

/* Same ternary values in another ternary encoding.  A single scale (I2_S) from per-block scales
 * (TQ) is their mean over blocks holding a nonzero value: exact when, as converters write them,
 * all blocks share one scale. */
static bn_status requant_ternary(const rq_job *j, void *dst)
{
    const bn_gguf_tensor *s = j->src;
    int64_t n = s->n_elem, nb_in = s->type == BN_TYPE_I2_S ? 1 : n / 256, nb_out = j->type == BN_TYPE_I2_S ? 1 : n / 256;
    rq_task k = {.j = j, .dst = dst};
    k.t = bn_malloc((size_t)n);
    k.in = bn_malloc((size_t)nb_in * sizeof(float));
    k.out = bn_malloc((size_t)nb_out * sizeof(float));
    /* pieces of whole blocks of every ternary type */
    bn_status st = k.t && k.in && k.out ? bn_parallel_ranges(j->ctx->tp, n, RQ_PIECE, rq_decode, &k) : BN_ERR_NOMEM;
    if (!st) {
        if (nb_in == nb_out) memcpy(k.out, k.in, (size_t)nb_out * sizeof(float));
        else if (nb_in == 1)
            for (int64_t b = 0; b < nb_out; b++) k.out[b] = k.in[0];
        else {
            double sum = 0;
            int64_t used = 0;
            for (int64_t b = 0; b < nb_in; b++) {
                bool nz = false;
                for (int e = 0; e < 256 && !nz; e++) nz = k.t[b * 256 + e] != 0;
                if (nz) {
                    sum += k.in[b];
                    used++;
                }
            }
            k.out[0] = used ? (float)(sum / (double)used) : 0.0f;
        }
        st = bn_parallel_ranges(j->ctx->tp, n, RQ_PIECE, rq_encode, &k);
    }
    bn_free(k.t);
    bn_free(k.in);
    bn_free(k.out);
    return st;
}

/* Rows [lo, hi) of any dequantizable type to a float type, a row at a time. */
static bn_status rq_rows(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    rq_task *k = arg;
    const bn_gguf_tensor *s = k->j->src;
    int64_t ne0 = s->ne[0];
    float *row = bn_malloc((size_t)ne0 * sizeof(float));
    if (!row) return BN_ERR_NOMEM;
    bn_status st = BN_OK;
    for (int64_t r = lo; r < hi && !st; r++) {
        st = bn_dequantize_row(s->type, s->data, ne0, r, k->i2s_scale, row);
        if (!st) st = bn_quantize(k->j->type, row, 1, ne0, (uint8_t *)k->dst + (size_t)r * k->row_bytes);
    }
    bn_free(row);
    return st;
}

static bn_status requant_float(const rq_job *j, uint8_t *dst)
{
    const bn_gguf_tensor *s = j->src;
    int64_t ne0 = s->ne[0], rows = s->n_elem / ne0;
    rq_task k = {.j = j, .dst = dst};
    if (!bn_type_row_nbytes(j->type, ne0, &k.row_bytes))
        return bn_error(BN_ERR_UNSUPPORTED, "rows of %lld elements cannot be stored as %s", (long long)ne0,
                        bn_type_name(j->type));
    k.i2s_scale = s->type == BN_TYPE_I2_S ? bn_i2s_scale(s->data, s->n_elem) : 0.0f;
    return bn_parallel_ranges(j->ctx->tp, rows, RQ_PIECE / ne0 > 0 ? RQ_PIECE / ne0 : 1, rq_rows, &k);
}

static bn_status rq_fill(void *user, void *dst, size_t nbytes)
{
    (void)nbytes;
    rq_job *j = user;
    bn_status st = is_ternary(j->type) && is_ternary(j->src->type) ? requant_ternary(j, dst) : requant_float(j, dst);
    if (st) return st;
    rq_ctx *c = j->ctx;
    c->done += (uint64_t)j->src->n_elem;
    if (c->p->progress && !c->p->progress(c->p->user, c->done, c->total))
        return bn_error(BN_ERR_CANCELLED, "conversion cancelled");
    return BN_OK;
}

static bn_status convert_gguf(const char *input, const char *output, const bitnet_convert_params *p)
{
    bn_gguf *g;
    bn_status st = bn_gguf_open(input, &g);
    if (st) return bn_error_prefix(st, "%s: ", input);
    int64_t n = bn_gguf_n_tensors(g);
    bn_gguf_writer *w = NULL;
    rq_job *jobs = bn_calloc((size_t)n + 1, sizeof *jobs);
    rq_ctx ctx = {.p = p};
    if (!jobs) st = BN_ERR_NOMEM;
    if (!st) st = bn_convert_pool_init(p->n_threads, &ctx.tp);
    if (!st) st = bn_gguf_writer_init(&w);
    if (!st) st = bn_gguf_writer_copy_kv(w, g);
    bool any_ternary = false;
    for (int64_t i = 0; i < n && !st; i++) {
        const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
        char name[128];
        size_t len = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, len);
        name[len] = '\0';
        bool embd = !strcmp(name, "token_embd.weight") || !strcmp(name, "output.weight");
        uint32_t type = t->type;
        if (embd && p->embed_type != BITNET_TYPE_AUTO) type = p->embed_type;
        else if (!embd && is_ternary(t->type)) {
            type = p->weight_type;
            any_ternary = true;
        }
        if (type == t->type) {
            st = bn_gguf_writer_add_tensor(w, name, type, t->n_dims, t->ne, t->data);
        } else {
            jobs[i] = (rq_job){.src = t, .type = type, .ctx = &ctx};
            ctx.total += (uint64_t)t->n_elem;
            st = bn_gguf_writer_add_tensor_fn(w, name, type, t->n_dims, t->ne, rq_fill, &jobs[i]);
        }
        if (st) bn_error_prefix(st, "tensor '%s': ", name);
    }
    if (!st && any_ternary) st = bn_gguf_writer_set_u32(w, "general.file_type", bn_file_type_for(p->weight_type));
    if (!st) st = bn_gguf_writer_write(w, output);
    bn_gguf_writer_free(w);
    bn_threadpool_free(ctx.tp);
    bn_free(jobs);
    bn_gguf_free(g);
    return st;
}

bitnet_status bitnet_convert(const char *input, const char *output, const bitnet_convert_params *params)
{
    if (!input || !output) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_convert: NULL path");
    bitnet_convert_params dp;
    if (!params) {
        bitnet_convert_params_default(&dp);
        params = &dp;
    }
    if (!is_ternary(params->weight_type))
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_convert: weight type %u is not I2_S, TQ1_0 or TQ2_0",
                                       params->weight_type);
    bn_status ts = bn_convert_check_threads(params->n_threads);
    if (ts) return (bitnet_status)bn_error_prefix(ts, "bitnet_convert: ");
    if (bn_hf_is_model_dir(input)) {
        bn_convert_opts o;
        bn_convert_opts_default(&o);
        o.weight_type = params->weight_type;
        o.embed_type = params->embed_type;
        o.progress = params->progress;
        o.user = params->user;
        o.n_threads = params->n_threads;
        return (bitnet_status)bn_hf_convert_file(input, &o, output);
    }
    if (params->embed_type != BITNET_TYPE_AUTO) {
        uint32_t e = params->embed_type;
        if (e != BN_TYPE_F32 && e != BN_TYPE_F16 && e != BN_TYPE_BF16 && e != BN_TYPE_Q8_0 && e != BN_TYPE_Q6_K)
            return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_convert: embedding type %u is not F32, F16, BF16, Q8_0 or Q6_K", e);
        /* fail before writing anything if the quantizer lacks this type */
        float zero[256] = {0};
        uint8_t probe[1100]; /* 256 floats at most */
        bn_status q = bn_quantize(e, zero, 1, 256, probe);
        if (q) return (bitnet_status)bn_error_prefix(q, "embedding type %s: ", bn_type_name(e));
    }
    return (bitnet_status)convert_gguf(input, output, params);
}
