#include "model/model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/file.h"
#include "common/mem.h"
#include "quant/quant.h"

const char *bn_arch_name(bn_arch a)
{
    switch (a) {
    case BN_ARCH_BITNET_B158: return "bitnet-b1.58";
    case BN_ARCH_BITNET: return "bitnet";
    case BN_ARCH_LLAMA: return "llama";
    }
    return "?";
}

/* Reads <arch>.<suffix> as a positive int; required keys fail with a message naming them. */
static bn_status get_int(const bn_gguf *g, const char *arch, const char *suffix, bool required, int def, int *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    bn_status st = bn_gguf_get_i64(g, key, &v);
    if (st == BN_ERR_NOT_FOUND && !required) {
        *out = def;
        return BN_OK;
    }
    if (st != BN_OK) return st;
    if (v <= 0 || v > (1 << 24)) return bn_error(BN_ERR_FORMAT, "%s = %lld is out of range", key, (long long)v);
    *out = (int)v;
    return BN_OK;
}

static bn_status get_float(const bn_gguf *g, const char *arch, const char *suffix, float def, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    bn_status st = bn_gguf_get_f32(g, key, out);
    if (st == BN_ERR_NOT_FOUND) {
        *out = def;
        return BN_OK;
    }
    if (st != BN_OK) return st;
    if (!isfinite(*out) || *out <= 0) return bn_error(BN_ERR_FORMAT, "%s = %g is out of range", key, (double)*out);
    return BN_OK;
}

static bn_status load_hparams(bn_model *m)
{
    const bn_gguf *g = m->gguf;
    const char *a = m->arch_name;
    bn_hparams *hp = &m->hp;
    bn_status st;
    if ((st = get_int(g, a, "context_length", true, 0, &hp->n_ctx_train)) ||
        (st = get_int(g, a, "embedding_length", true, 0, &hp->n_embd)) ||
        (st = get_int(g, a, "block_count", true, 0, &hp->n_layer)) ||
        (st = get_int(g, a, "feed_forward_length", true, 0, &hp->n_ff)) ||
        (st = get_int(g, a, "attention.head_count", true, 0, &hp->n_head)) ||
        (st = get_int(g, a, "attention.head_count_kv", false, hp->n_head, &hp->n_head_kv)))
        return st;
    if ((st = get_float(g, a, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps)) ||
        (st = get_float(g, a, "rope.freq_base", 10000.0f, &hp->rope_theta)))
        return st;
    if (hp->n_embd % hp->n_head)
        return bn_error(BN_ERR_FORMAT, "embedding_length %d is not a multiple of head_count %d", hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv)
        return bn_error(BN_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->head_dim > 1024) /* attention keeps a few heads' queries on the stack */
        return bn_error(BN_ERR_UNSUPPORTED, "head dimension %d (embedding_length / head_count) is larger than 1024",
                        hp->head_dim);
    if ((st = get_int(g, a, "rope.dimension_count", false, hp->head_dim, &hp->n_rot))) return st;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 || hp->n_rot > 1024)
        return bn_error(BN_ERR_FORMAT, "%s.rope.dimension_count = %d does not fit head dimension %d", a, hp->n_rot,
                        hp->head_dim);
    if (m->arch == BN_ARCH_BITNET_B158 && hp->n_rot != hp->head_dim)
        return bn_error(BN_ERR_FORMAT, "%s needs rope.dimension_count (%d) == head dimension (%d)", a, hp->n_rot,
                        hp->head_dim);
    hp->rope_neox = m->arch != BN_ARCH_LLAMA;
    hp->sub_norms = m->arch != BN_ARCH_LLAMA;
    hp->ffn_act = m->arch == BN_ARCH_BITNET_B158 ? BN_FFN_RELU2 : BN_FFN_SILU;
    /* Mainline's "bitnet" files may name the hidden activation; honour relu2 there. */
    char key[128];
    snprintf(key, sizeof key, "%s.hidden_act", a);
    bn_gguf_str act;
    if (bn_gguf_get_str(g, key, &act) == BN_OK && act.len == 5 && !memcmp(act.ptr, "relu2", 5)) hp->ffn_act = BN_FFN_RELU2;
    return BN_OK;
}

/* Finds a tensor and checks its shape (ne0 x ne1; ne1 = 0 for vectors). */
static bn_status find_tensor(const bn_model *m, const char *name, int64_t ne0, int64_t ne1, bool required,
                             const bn_gguf_tensor **out)
{
    const bn_gguf_tensor *t = bn_gguf_find_tensor(m->gguf, name);
    *out = t;
    if (!t) return required ? bn_error(BN_ERR_FORMAT, "tensor '%s' is missing", name) : BN_OK;
    bool ok = ne1 == 0 ? (t->n_elem == ne0 && t->ne[0] == ne0)
                       : (t->n_dims == 2 && t->ne[0] == ne0 && t->ne[1] == ne1);
    if (!ok) {
        if (ne1 == 0)
            return bn_error(BN_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld], expected [%lld]", name,
                            (long long)t->ne[0], (long long)t->ne[1], (long long)ne0);
        return bn_error(BN_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                        (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1);
    }
    return BN_OK;
}

static bn_status bind_vector(bn_model *m, const char *name, int64_t n, bool required, const float **out)
{
    const bn_gguf_tensor *t;
    *out = NULL;
    bn_status st = find_tensor(m, name, n, 0, required, &t);
    if (st != BN_OK || !t) return st;
    if (t->type == BN_TYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = t->data;
        return BN_OK;
    }
    float *buf = bn_malloc((size_t)n * sizeof(float));
    if (!buf) return BN_ERR_NOMEM;
    if ((st = bn_dequantize(t->type, t->data, n, buf)) != BN_OK) {
        bn_free(buf);
        return bn_error_prefix(st, "tensor '%s': ", name);
    }
    void **grown = bn_realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof(void *));
    if (!grown) {
        bn_free(buf);
        return BN_ERR_NOMEM;
    }
    m->owned = grown;
    m->owned[m->n_owned++] = buf;
    *out = buf;
    return BN_OK;
}

static bn_status bind_matrix(bn_model *m, const char *name, int64_t ne0, int64_t ne1, bn_weight *w)
{
    const bn_gguf_tensor *t;
    bn_status st = find_tensor(m, name, ne0, ne1, true, &t);
    if (st != BN_OK) return st;
    st = bn_weight_init(w, t->type, t->data, ne1, ne0);
    if (st != BN_OK) return bn_error_prefix(st, "tensor '%s': ", name);
    return BN_OK;
}

/* "bitnet" arch: optional scalar blk.N.<name>.scale multiplied after the projection. */
static bn_status bind_scale(bn_model *m, const char *name, float *out)
{
    *out = 1.0f;
    const bn_gguf_tensor *t = bn_gguf_find_tensor(m->gguf, name);
    if (!t) return BN_OK;
    if (t->n_elem != 1) return bn_error(BN_ERR_FORMAT, "tensor '%s' should hold one value", name);
    return bn_dequantize(t->type, t->data, 1, out);
}

static bn_status bind_layers(bn_model *m)
{
    const bn_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd, dkv = (int64_t)hp->head_dim * hp->n_head_kv, ff = hp->n_ff;
    m->layers = bn_calloc((size_t)hp->n_layer, sizeof(bn_layer));
    if (!m->layers) return BN_ERR_NOMEM;
    char name[96];
#define NAME(fmt) (snprintf(name, sizeof name, "blk.%d." fmt, i), name)
    for (int i = 0; i < hp->n_layer; i++) {
        bn_layer *L = &m->layers[i];
        bn_status st;
        if ((st = bind_vector(m, NAME("attn_norm.weight"), d, true, &L->attn_norm)) ||
            (st = bind_vector(m, NAME("ffn_norm.weight"), d, true, &L->ffn_norm)) ||
            (st = bind_matrix(m, NAME("attn_q.weight"), d, d, &L->wq)) ||
            (st = bind_matrix(m, NAME("attn_k.weight"), d, dkv, &L->wk)) ||
            (st = bind_matrix(m, NAME("attn_v.weight"), d, dkv, &L->wv)) ||
            (st = bind_matrix(m, NAME("attn_output.weight"), d, d, &L->wo)) ||
            (st = bind_matrix(m, NAME("ffn_gate.weight"), d, ff, &L->w_gate)) ||
            (st = bind_matrix(m, NAME("ffn_up.weight"), d, ff, &L->w_up)) ||
            (st = bind_matrix(m, NAME("ffn_down.weight"), ff, d, &L->w_down)))
            return st;
        if (hp->sub_norms) {
            if ((st = bind_vector(m, NAME("attn_sub_norm.weight"), d, true, &L->attn_sub_norm)) ||
                (st = bind_vector(m, NAME("ffn_sub_norm.weight"), ff, true, &L->ffn_sub_norm)))
                return st;
        }
        if ((st = bind_scale(m, NAME("attn_q.scale"), &L->sq)) || (st = bind_scale(m, NAME("attn_k.scale"), &L->sk)) ||
            (st = bind_scale(m, NAME("attn_v.scale"), &L->sv)) ||
            (st = bind_scale(m, NAME("attn_output.scale"), &L->so)) ||
            (st = bind_scale(m, NAME("ffn_gate.scale"), &L->s_gate)) ||
            (st = bind_scale(m, NAME("ffn_up.scale"), &L->s_up)) ||
            (st = bind_scale(m, NAME("ffn_down.scale"), &L->s_down)))
            return st;
    }
#undef NAME
    return BN_OK;
}

static bn_status parse_arch(bn_model *m)
{
    bn_gguf_str s;
    bn_status st = bn_gguf_get_str(m->gguf, "general.architecture", &s);
    if (st != BN_OK) return st;
    if (s.len >= sizeof m->arch_name) return bn_error(BN_ERR_UNSUPPORTED, "unknown architecture (name too long)");
    memcpy(m->arch_name, s.ptr, s.len);
    m->arch_name[s.len] = '\0';
    if (!strcmp(m->arch_name, "bitnet-b1.58") || !strcmp(m->arch_name, "bitnet-25")) m->arch = BN_ARCH_BITNET_B158;
    else if (!strcmp(m->arch_name, "bitnet")) m->arch = BN_ARCH_BITNET;
    else if (!strcmp(m->arch_name, "llama")) m->arch = BN_ARCH_LLAMA;
    else
        return bn_error(BN_ERR_UNSUPPORTED, "unknown architecture '%s' (supported: bitnet-b1.58, bitnet-25, bitnet, llama)",
                        m->arch_name);
    return BN_OK;
}

bn_status bn_model_init_gguf(bn_gguf *g, bn_model **out)
{
    *out = NULL;
    bn_model *m = bn_calloc(1, sizeof *m);
    if (!m) return BN_ERR_NOMEM;
    m->gguf = g;
    bn_status st = parse_arch(m);
    if (st == BN_OK) st = load_hparams(m);
    if (st == BN_OK) {
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, "token_embd.weight");
        if (!t) st = bn_error(BN_ERR_FORMAT, "tensor 'token_embd.weight' is missing");
        else if (t->n_dims != 2 || t->ne[0] != m->hp.n_embd)
            st = bn_error(BN_ERR_FORMAT, "tensor 'token_embd.weight' has shape [%lld, %lld], expected [%d, n_vocab]",
                          (long long)t->ne[0], (long long)t->ne[1], m->hp.n_embd);
        else {
            m->tok_embd = t;
            m->hp.n_vocab = (int)t->ne[1];
            int64_t nv;
            char key[128];
            snprintf(key, sizeof key, "%s.vocab_size", m->arch_name);
            if (bn_gguf_get_i64(g, key, &nv) == BN_OK && nv != m->hp.n_vocab)
                st = bn_error(BN_ERR_FORMAT, "%s = %lld but token_embd has %d rows", key, (long long)nv, m->hp.n_vocab);
            if (t->type == BN_TYPE_I2_S) m->tok_embd_i2s_scale = bn_i2s_scale(t->data, t->n_elem);
        }
    }
    if (st == BN_OK) st = bind_vector(m, "output_norm.weight", m->hp.n_embd, true, &m->output_norm);
    if (st == BN_OK) {
        const bn_gguf_tensor *t;
        st = find_tensor(m, "output.weight", m->hp.n_embd, m->hp.n_vocab, false, &t);
        if (st == BN_OK) {
            if (!t) t = m->tok_embd;
            m->tied = t == m->tok_embd;
            st = bn_weight_init(&m->output, t->type, t->data, m->hp.n_vocab, m->hp.n_embd);
            if (st != BN_OK) bn_error_prefix(st, "output head: ");
        }
    }
    if (st == BN_OK) st = bind_layers(m);
    if (st != BN_OK) {
        m->gguf = NULL; /* not ours on failure */
        bn_model_free(m);
        return st;
    }
    for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) m->n_params += (uint64_t)bn_gguf_tensor_at(g, i)->n_elem;
    *out = m;
    return BN_OK;
}

void bn_model_free(bn_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int i = 0; i < m->hp.n_layer; i++) {
            bn_layer *L = &m->layers[i];
            bn_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (size_t j = 0; j < sizeof ws / sizeof ws[0]; j++) bn_weight_free(ws[j]);
        }
    }
    bn_weight_free(&m->output);
    bn_aligned_free(m->head_owned);
    for (int i = 0; i < m->n_owned; i++) bn_free(m->owned[i]);
    bn_free(m->owned);
    bn_free(m->layers);
    bn_gguf_free(m->gguf);
    bn_free(m);
}

bn_status bn_model_embed(const bn_model *m, int32_t token, float *dst)
{
    if (token < 0 || token >= m->hp.n_vocab)
        return bn_error(BN_ERR_RANGE, "token id %d is outside the vocabulary (0..%d)", token, m->hp.n_vocab - 1);
    return bn_dequantize_row(m->tok_embd->type, m->tok_embd->data, m->hp.n_embd, token, m->tok_embd_i2s_scale, dst);
}

static bn_weight *model_weight(bn_model *m, int i) /* i in [0, 7 n_layer]: the layers' matrices, then the head */
{
    if (i == m->hp.n_layer * 7) return &m->output;
    bn_layer *L = &m->layers[i / 7];
    bn_weight *ws[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return ws[i % 7];
}

uint64_t bn_model_pass_bytes(const bn_model *m)
{
    uint64_t total = 0;
    for (int i = 0; i <= m->hp.n_layer * 7; i++) {
        const bn_weight *w = model_weight((bn_model *)m, i);
        size_t row = 0;
        if (bn_type_row_nbytes(w->type, w->cols, &row)) total += (uint64_t)row * (uint64_t)w->rows;
    }
    return total;
}

/* Work at load (repacking, requantising the head) runs before any context's pool exists: a pool
 * of its own for that one job, on the physical cores.  NULL (the caller alone) with one core. */
static bn_threadpool *load_pool(void)
{
    bn_threadpool *pool = NULL;
    int nt = bn_cpu_count_physical();
    if (nt > 1 && bn_threadpool_init(&pool, nt > 8 ? 8 : nt) != BN_OK) pool = NULL;
    return pool;
}

bn_status bn_model_repack(bn_model *m, bool release_file_pages, bool lazy)
{
    if ((!bn_kernels_repack_i2s() && !bn_kernels_repack_tq()) || m->repack_total) return BN_OK;
    m->repack_release = release_file_pages;
    m->repack_total = m->hp.n_layer * 7 + 1;
    m->repacked_bytes = 0;
    for (int i = 0; i < m->repack_total; i++) {
        const bn_weight *w = model_weight(m, i);
        if (!bn_weight_packed(w)) m->repacked_bytes += bn_weight_repack_size(w); /* I2_S, TQ1_0, TQ2_0 */
    }
    if (lazy) return BN_OK;
    /* now, on all cores: a copy at memory speed */
    bn_threadpool *pool = load_pool();
    bn_status st = bn_model_repack_step(m, pool, SIZE_MAX);
    bn_threadpool_free(pool);
    return st;
}

bn_status bn_model_repack_step(const bn_model *cm, bn_threadpool *pool, size_t budget)
{
    /* The copies are a cache of the weights in another layout: making them does not change what the
     * model computes, so a const model (shared by contexts, maybe on several threads) gets them.
     * Each weight is claimed by one caller through the shared cursor. */
    bn_model *m = (bn_model *)cm;
    size_t done = 0;
    while (done < budget && __atomic_load_n(&m->repack_next, __ATOMIC_ACQUIRE) < m->repack_total) {
        int i = __atomic_fetch_add(&m->repack_next, 1, __ATOMIC_ACQ_REL);
        if (i >= m->repack_total) return BN_OK;
        bn_weight *w = model_weight(m, i);
        size_t bytes;
        bn_status st = bn_weight_repack(w, pool, &bytes);
        if (st != BN_OK) return bn_error_prefix(st, "repacking weights: ");
        if (bytes && m->repack_release) bn_mapfile_release(w->data, bytes);
        done += bytes;
    }
    return BN_OK;
}

typedef struct requant_task {
    const bn_weight *src;
    uint32_t type;
    uint8_t *dst;
    size_t row_bytes;
    bn_status st[8]; /* per thread (load_pool has at most 8) */
} requant_task;

static void requant_rows(void *arg, int ith, int nth)
{
    requant_task *T = arg;
    long lo, hi;
    bn_split_range((long)T->src->rows, ith, nth, 1, &lo, &hi);
    const int64_t cols = T->src->cols;
    float *row = bn_malloc((size_t)cols * sizeof(float));
    bn_status st = row ? BN_OK : BN_ERR_NOMEM;
    for (long r = lo; r < hi && st == BN_OK; r++) {
        st = bn_dequantize_row(T->src->type, T->src->data, cols, r, T->src->scale, row);
        if (st == BN_OK) st = bn_quantize_fast(T->type, row, 1, cols, T->dst + (size_t)r * T->row_bytes);
    }
    bn_free(row);
    T->st[ith] = st;
}

bn_status bn_model_requantize_head(bn_model *m, uint32_t type)
{
    if (type == m->output.type) return BN_OK;
    if (type != BN_TYPE_Q8_0 && type != BN_TYPE_Q6_K)
        return bn_error(BN_ERR_UNSUPPORTED, "the output head can be requantised to Q8_0 or Q6_K only");
    const int64_t rows = m->output.rows, cols = m->output.cols;
    size_t row_bytes, total;
    if (!bn_type_row_nbytes(type, cols, &row_bytes) || bn_mul_overflow(row_bytes, (size_t)rows, &total))
        return bn_error(BN_ERR_FORMAT, "output head of %lld columns cannot be stored as %s", (long long)cols,
                        bn_type_name(type));
    uint8_t *dst = bn_aligned_alloc(total, 64);
    if (!dst) return BN_ERR_NOMEM;
    /* 330 M values for 2B-4T: worth the cores */
    requant_task T = {&m->output, type, dst, row_bytes, {BN_OK}};
    bn_threadpool *pool = load_pool();
    bn_threadpool_run(pool, requant_rows, &T);
    bn_threadpool_free(pool);
    bn_status st = BN_OK;
    for (int i = 0; i < 8 && st == BN_OK; i++) st = T.st[i];
    /* a worker's message stays on its thread: say what failed here */
    if (st != BN_OK) st = bn_error(st, "a row could not be converted (%s)", bn_status_string(st));
    bn_weight w;
    if (st == BN_OK) st = bn_weight_init(&w, type, dst, rows, cols);
    if (st != BN_OK) {
        bn_aligned_free(dst);
        return bn_error_prefix(st, "requantising the output head: ");
    }
    bn_weight_free(&m->output);
    bn_aligned_free(m->head_owned);
    m->output = w;
    m->head_owned = dst;
    return BN_OK;
}
