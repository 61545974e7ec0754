/* Public API: synthetic BitNet models in exactly the official 2B-4T file's format, for tests and
 * benchmarks.  Linear weights are scale·t with t uniform in {-1,0,+1} and scale = sqrt(1.5/K)
 * (so quantisation is lossless), norms uniform in [0.5, 1.5], embeddings N(0, 0.02²).  Each tensor
 * is generated while the file is written, so a 2B-4T-sized model needs one tensor in memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "common/error.h"
#include "common/fp16.h"
#include "common/mem.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "sampling/sampler.h"

void bitnet_gen_model_params_default(bitnet_gen_model_params *p)
{
    memset(p, 0, sizeof *p);
    p->arch = "bitnet-b1.58";
    p->n_layer = 2;
    p->n_embd = 256;
    p->n_head = 4;
    p->n_head_kv = 2;
    p->n_ff = 768;
    p->n_vocab = 512;
    p->n_ctx = 512;
    p->weight_type = 36; /* I2_S */
    p->embd_type = 1;    /* F16 */
    p->seed = 1;
}

bitnet_status bitnet_gen_model_params_shape(bitnet_gen_model_params *p, const char *shape)
{
    if (!p || !shape) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: NULL argument");
    if (!strcmp(shape, "tiny")) {
        p->n_layer = 2, p->n_embd = 256, p->n_head = 4, p->n_head_kv = 2, p->n_ff = 768, p->n_vocab = 512, p->n_ctx = 512;
        return BITNET_OK;
    }
    if (!strcmp(shape, "2b4t")) { /* BitNet b1.58 2B-4T */
        p->n_layer = 30, p->n_embd = 2560, p->n_head = 20, p->n_head_kv = 5, p->n_ff = 6912, p->n_vocab = 128256;
        p->n_ctx = 4096;
        return BITNET_OK;
    }
    int layers, hidden;
    char tail;
    if (sscanf(shape, "%dx%d%c", &layers, &hidden, &tail) != 2 || layers < 1 || layers > 256 || hidden < 128 ||
        hidden > 65536 || hidden % 128)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG,
                                       "shape '%s': expected tiny, 2b4t or LAYERSxHIDDEN (HIDDEN a multiple of 128)", shape);
    p->n_layer = layers;
    p->n_embd = hidden;
    p->n_head = hidden / 128 >= 2 ? hidden / 128 : 2; /* head dim 128 like 2B-4T (64 for tiny widths) */
    p->n_head_kv = p->n_head % 4 == 0 ? p->n_head / 4 : p->n_head;
    p->n_ff = (int)((hidden * 27 / 10 + 127) / 128 * 128);
    return BITNET_OK;
}

typedef struct {
    const bitnet_gen_model_params *p;
    uint64_t seed;
    int kind; /* 0 linear ternary, 1 norm, 2 embedding */
    uint32_t type;
    int64_t rows, cols;
} tensor_job;

static bn_status fill_tensor(void *user, void *dst, size_t nbytes)
{
    tensor_job *j = user;
    bn_rng rng;
    bn_rng_seed(&rng, j->seed);
    const int64_t n = j->rows * j->cols;
    bn_status st = BN_OK;
    if (j->kind == 1) { /* F32 norm weights */
        float *f = dst;
        for (int64_t i = 0; i < n; i++) f[i] = 0.5f + (float)bn_rng_uniform(&rng);
        return BN_OK;
    }
    if (j->kind == 2) { /* embeddings: Box-Muller normal, std 0.02 */
        float *row = bn_malloc((size_t)j->cols * sizeof(float));
        if (!row) return BN_ERR_NOMEM;
        size_t row_bytes = nbytes / (size_t)j->rows;
        for (int64_t r = 0; r < j->rows && st == BN_OK; r++) {
            for (int64_t i = 0; i < j->cols; i++) {
                double u1 = bn_rng_uniform(&rng), u2 = bn_rng_uniform(&rng);
                row[i] = (float)(0.02 * sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2));
            }
            st = bn_quantize(j->type, row, 1, j->cols, (uint8_t *)dst + (size_t)r * row_bytes);
        }
        bn_free(row);
        return st;
    }
    int8_t *t = bn_malloc((size_t)n);
    if (!t) return BN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) t[i] = (int8_t)(bn_rng_next(&rng) % 3) - 1;
    const float scale = sqrtf(1.5f / (float)j->cols);
    int64_t n_scales = j->type == BN_TYPE_I2_S ? 1 : n / 256;
    float *scales = bn_malloc((size_t)n_scales * sizeof(float));
    if (!scales) {
        bn_free(t);
        return BN_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n_scales; i++) scales[i] = scale;
    st = bn_ternary_encode(j->type, t, scales, n, dst);
    bn_free(scales);
    bn_free(t);
    return st;
}

/* GPT-2's byte -> printable character mapping, as UTF-8. */
static void byte_token(int b, char out[4])
{
    int cp;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp = b;
    else {
        int k = 0; /* index among the unprintable bytes, in byte order */
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* A synthetic byte-level BPE vocabulary: 256 byte tokens, then token 256+i = token(i/256) +
 * byte(i%256) (unique by construction, each with its merge), then BOS and EOS. */
static bn_status add_tokenizer(bn_gguf_writer *w, int n_vocab)
{
    const int n_merged = n_vocab - 258;
    char **tok = bn_calloc((size_t)n_vocab, sizeof(char *));
    char **merges = bn_calloc((size_t)(n_merged > 0 ? n_merged : 1), sizeof(char *));
    int32_t *types = bn_calloc((size_t)n_vocab, sizeof(int32_t));
    float *scores = bn_calloc((size_t)n_vocab, sizeof(float));
    bn_status st = tok && merges && types && scores ? BN_OK : BN_ERR_NOMEM;
    for (int b = 0; b < 256 && st == BN_OK; b++) {
        char s[4];
        byte_token(b, s);
        if (!(tok[b] = bn_strdup(s))) st = BN_ERR_NOMEM;
        types[b] = 1;
    }
    for (int i = 0; i < n_merged && st == BN_OK; i++) {
        const char *a = tok[i / 256], *b = tok[i % 256];
        size_t la = strlen(a), lb = strlen(b);
        tok[256 + i] = bn_malloc(la + lb + 1);
        merges[i] = bn_malloc(la + lb + 2);
        if (!tok[256 + i] || !merges[i]) {
            st = BN_ERR_NOMEM;
            break;
        }
        snprintf(tok[256 + i], la + lb + 1, "%s%s", a, b);
        snprintf(merges[i], la + lb + 2, "%s %s", a, b);
        types[256 + i] = 1;
    }
    if (st == BN_OK) {
        tok[n_vocab - 2] = bn_strdup("<|begin_of_text|>");
        tok[n_vocab - 1] = bn_strdup("<|end_of_text|>");
        types[n_vocab - 2] = types[n_vocab - 1] = 3; /* CONTROL */
        scores[n_vocab - 2] = scores[n_vocab - 1] = -1000.0f;
        if (!tok[n_vocab - 2] || !tok[n_vocab - 1]) st = BN_ERR_NOMEM;
    }
    if (st == BN_OK) {
        st = bn_gguf_writer_set_array(w, "tokenizer.ggml.tokens", BN_GGUF_STRING, tok, (uint64_t)n_vocab);
        if (st == BN_OK) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.scores", BN_GGUF_F32, scores, (uint64_t)n_vocab);
        if (st == BN_OK) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BN_GGUF_I32, types, (uint64_t)n_vocab);
        if (st == BN_OK)
            st = bn_gguf_writer_set_array(w, "tokenizer.ggml.merges", BN_GGUF_STRING, merges,
                                          (uint64_t)(n_merged > 0 ? n_merged : 0));
    }
    if (tok)
        for (int i = 0; i < n_vocab; i++) bn_free(tok[i]);
    if (merges)
        for (int i = 0; i < n_merged; i++) bn_free(merges[i]);
    bn_free(tok);
    bn_free(merges);
    bn_free(types);
    bn_free(scores);
    return st;
}

#define SETS(k, v) (st = st ? st : bn_gguf_writer_set_str(w, k, v))
#define SETU(k, v) (st = st ? st : bn_gguf_writer_set_u32(w, k, (uint32_t)(v)))
#define SETF(k, v) (st = st ? st : bn_gguf_writer_set_f32(w, k, v))

bitnet_status bitnet_gen_model(const bitnet_gen_model_params *p, const char *path)
{
    if (!p || !path) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: NULL argument");
    if (strcmp(p->arch ? p->arch : "", "bitnet-b1.58"))
        return (bitnet_status)bn_error(BN_ERR_UNSUPPORTED, "gen-model: only arch bitnet-b1.58 is supported, not '%s'",
                                       p->arch ? p->arch : "(null)");
    if (p->weight_type != BN_TYPE_I2_S && p->weight_type != BN_TYPE_TQ1_0 && p->weight_type != BN_TYPE_TQ2_0)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: weights must be I2_S, TQ1_0 or TQ2_0");
    if (p->embd_type != BN_TYPE_F16 && p->embd_type != BN_TYPE_Q8_0 && p->embd_type != BN_TYPE_F32)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: embeddings must be F16, Q8_0 or F32");
    const int64_t blk = p->weight_type == BN_TYPE_I2_S ? 128 : 256;
    if (p->n_layer < 1 || p->n_embd < 1 || p->n_head < 1 || p->n_head_kv < 1 || p->n_ff < 1 || p->n_vocab < 259 ||
        p->n_ctx < 1 || p->n_embd % p->n_head || p->n_head % p->n_head_kv || p->n_embd % blk || p->n_ff % blk ||
        (p->n_embd / p->n_head) % 2)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG,
                                       "gen-model: inconsistent shape (embd %d, heads %d/%d, ffn %d, vocab %d; widths must be "
                                       "multiples of %lld, vocab >= 259)",
                                       p->n_embd, p->n_head, p->n_head_kv, p->n_ff, p->n_vocab, (long long)blk);
    bn_gguf_writer *w;
    bn_status st = bn_gguf_writer_init(&w);
    if (st != BN_OK) return (bitnet_status)st;
    const char *a = "bitnet-b1.58";
    char key[96], name[64];
#define K(s) (snprintf(key, sizeof key, "%s." s, a), key)
    snprintf(name, sizeof name, "synthetic-bitnet-b1.58-%dL-%dd", p->n_layer, p->n_embd);
    /* key order of Microsoft's official file */
    SETS("general.architecture", a);
    SETS("general.name", name);
    SETU(K("vocab_size"), p->n_vocab);
    SETU(K("context_length"), p->n_ctx);
    SETU(K("embedding_length"), p->n_embd);
    SETU(K("block_count"), p->n_layer);
    SETU(K("feed_forward_length"), p->n_ff);
    SETU(K("rope.dimension_count"), p->n_embd / p->n_head);
    SETU(K("attention.head_count"), p->n_head);
    SETU(K("attention.head_count_kv"), p->n_head_kv);
    if (st == BN_OK) st = bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    SETF(K("attention.layer_norm_rms_epsilon"), 1e-5f);
    SETF(K("rope.freq_base"), 500000.0f);
    SETU("general.file_type", p->weight_type == BN_TYPE_I2_S ? 40 : p->weight_type == BN_TYPE_TQ1_0 ? 36 : 37);
    SETS("tokenizer.ggml.model", "gpt2");
    if (st == BN_OK) st = add_tokenizer(w, p->n_vocab);
    SETU("tokenizer.ggml.bos_token_id", p->n_vocab - 2);
    SETU("tokenizer.ggml.eos_token_id", p->n_vocab - 1);
    SETU("tokenizer.ggml.padding_token_id", p->n_vocab - 1);
    SETS("tokenizer.chat_template",
         "{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim + "
         "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}");
    SETU("general.quantization_version", 2);
#undef K

    const int n_t = 1 + p->n_layer * 11 + 1;
    tensor_job *jobs = bn_calloc((size_t)n_t, sizeof *jobs);
    if (!jobs) st = st ? st : BN_ERR_NOMEM;
    int k = 0;
    uint64_t seed = p->seed * 1000003ull;
    const int64_t d = p->n_embd, kv = (int64_t)(p->n_embd / p->n_head) * p->n_head_kv, ff = p->n_ff;
#define ADD(nm, kind_, type_, rows_, cols_) \
    do { \
        if (st != BN_OK) break; \
        tensor_job *j = &jobs[k++]; \
        *j = (tensor_job){p, seed++, kind_, type_, rows_, cols_}; \
        int64_t ne[2] = {cols_, rows_}; \
        st = bn_gguf_writer_add_tensor_fn(w, nm, type_, (rows_) == 1 ? 1 : 2, ne, fill_tensor, j); \
    } while (0)
    ADD("token_embd.weight", 2, p->embd_type, p->n_vocab, d);
    for (int l = 0; l < p->n_layer && st == BN_OK; l++) {
        char tn[64];
#define T(s) (snprintf(tn, sizeof tn, "blk.%d." s, l), tn)
        ADD(T("attn_norm.weight"), 1, BN_TYPE_F32, 1, d);
        ADD(T("attn_q.weight"), 0, p->weight_type, d, d);
        ADD(T("attn_k.weight"), 0, p->weight_type, kv, d);
        ADD(T("attn_v.weight"), 0, p->weight_type, kv, d);
        ADD(T("attn_sub_norm.weight"), 1, BN_TYPE_F32, 1, d);
        ADD(T("attn_output.weight"), 0, p->weight_type, d, d);
        ADD(T("ffn_norm.weight"), 1, BN_TYPE_F32, 1, d);
        ADD(T("ffn_gate.weight"), 0, p->weight_type, ff, d);
        ADD(T("ffn_up.weight"), 0, p->weight_type, ff, d);
        ADD(T("ffn_sub_norm.weight"), 1, BN_TYPE_F32, 1, ff);
        ADD(T("ffn_down.weight"), 0, p->weight_type, d, ff);
#undef T
    }
    ADD("output_norm.weight", 1, BN_TYPE_F32, 1, d);
#undef ADD
    if (st == BN_OK) st = bn_gguf_writer_write(w, path);
    bn_gguf_writer_free(w);
    bn_free(jobs);
    if (st != BN_OK) bn_error_prefix(st, "gen-model %s: ", path);
    return (bitnet_status)st;
}
