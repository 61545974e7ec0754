/* Public API: synthetic models for tests and benchmarks, in the format of the real files of each
 * architecture: bitnet-b1.58 exactly as Microsoft's official 2B-4T file, "bitnet" as the BitNet
 * fork converts 1bitLLM's models, "llama" as llama.cpp converts Llama3-8B-1.58.  Linear weights
 * are scale·t with t uniform in {-1,0,+1} and scale = sqrt(1.5/K) (so quantisation is lossless;
 * with scale tensors t is stored as is and the scale separately), norms uniform in [0.5, 1.5],
 * embeddings (and llama's output.weight) N(0, 0.02²).  Each tensor is generated while the file is
 * written, so a 2B-4T-sized model needs one tensor in memory. */
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
    int kind; /* 0 linear ternary, 1 norm, 2 embedding or head, 3 per-tensor scale, 4 unit ternary */
    uint32_t type;
    int64_t rows, cols; /* kind 3: rows = 1, cols = 1, K of its weight in k_in */
    int64_t k_in;
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
    if (j->kind == 3) { /* the scale the unit ternary weight leaves out */
        *(float *)dst = sqrtf(1.5f / (float)j->k_in);
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
    const float scale = j->kind == 4 ? 1.0f : sqrtf(1.5f / (float)j->cols);
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
 * byte(i%256) (unique by construction, each with its merge), then the special tokens (CONTROL). */
static bn_status add_bpe_tokenizer(bn_gguf_writer *w, int n_vocab, const char *const *specials, int n_specials,
                                   bool with_scores)
{
    const int n_merged = n_vocab - 256 - n_specials;
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
    for (int i = 0; i < n_specials && st == BN_OK; i++) {
        int id = n_vocab - n_specials + i;
        if (!(tok[id] = bn_strdup(specials[i]))) st = BN_ERR_NOMEM;
        types[id] = 3; /* CONTROL */
        scores[id] = -1000.0f;
    }
    if (st == BN_OK) {
        st = bn_gguf_writer_set_array(w, "tokenizer.ggml.tokens", BN_GGUF_STRING, tok, (uint64_t)n_vocab);
        if (st == BN_OK && with_scores)
            st = bn_gguf_writer_set_array(w, "tokenizer.ggml.scores", BN_GGUF_F32, scores, (uint64_t)n_vocab);
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

/* A synthetic SentencePiece vocabulary laid out like Llama-2's (what 1bitLLM's models use):
 * <unk> <s> </s>, the 256 <0xXX> byte-fallback tokens, then pieces over the alphabet
 * U+2581 (the space) and printable ASCII: single symbols, then pairs, then triples, scored so
 * that shorter pieces come first. */
static bn_status add_spm_tokenizer(bn_gguf_writer *w, int n_vocab)
{
    static const char *const sym_space = "\xe2\x96\x81";
    const int n_sym = 95;
    char **tok = bn_calloc((size_t)n_vocab, sizeof(char *));
    int32_t *types = bn_calloc((size_t)n_vocab, sizeof(int32_t));
    float *scores = bn_calloc((size_t)n_vocab, sizeof(float));
    bn_status st = tok && types && scores ? BN_OK : BN_ERR_NOMEM;
    const char *fixed[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3 && st == BN_OK; i++) {
        if (!(tok[i] = bn_strdup(fixed[i]))) st = BN_ERR_NOMEM;
        types[i] = i == 0 ? 2 : 3; /* UNKNOWN, CONTROL */
    }
    for (int b = 0; b < 256 && st == BN_OK; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        if (!(tok[3 + b] = bn_strdup(s))) st = BN_ERR_NOMEM;
        types[3 + b] = 6; /* BYTE */
    }
    int64_t cand = 0; /* candidate piece number: its base-95 digits, shortest pieces first */
    for (int id = 259; id < n_vocab && st == BN_OK; id++, cand++) {
        char piece[16];
        for (;;) {
            int64_t i = cand, len = 1, span = n_sym;
            while (i >= span) {
                i -= span;
                span *= n_sym;
                len++;
            }
            int digit[8];
            for (int64_t k = len - 1; k >= 0; k--, i /= n_sym) digit[k] = (int)(i % n_sym);
            size_t at = 0;
            for (int64_t k = 0; k < len; k++) {
                if (digit[k] == 0) {
                    memcpy(piece + at, sym_space, 3);
                    at += 3;
                } else
                    piece[at++] = (char)('!' + digit[k] - 1);
            }
            piece[at] = '\0';
            if (strcmp(piece, "<s>")) break; /* the one triple that is already a special token */
            cand++;
        }
        if (!(tok[id] = bn_strdup(piece))) st = BN_ERR_NOMEM;
        types[id] = 1;
        scores[id] = -(float)(id - 259);
    }
    if (st == BN_OK) {
        st = bn_gguf_writer_set_array(w, "tokenizer.ggml.tokens", BN_GGUF_STRING, tok, (uint64_t)n_vocab);
        if (st == BN_OK) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.scores", BN_GGUF_F32, scores, (uint64_t)n_vocab);
        if (st == BN_OK) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BN_GGUF_I32, types, (uint64_t)n_vocab);
    }
    if (tok)
        for (int i = 0; i < n_vocab; i++) bn_free(tok[i]);
    bn_free(tok);
    bn_free(types);
    bn_free(scores);
    return st;
}

#define SETS(k, v) (st = st ? st : bn_gguf_writer_set_str(w, k, v))
#define SETU(k, v) (st = st ? st : bn_gguf_writer_set_u32(w, k, (uint32_t)(v)))
#define SETF(k, v) (st = st ? st : bn_gguf_writer_set_f32(w, k, v))
#define SETB(k, v) (st = st ? st : bn_gguf_writer_set_bool(w, k, v))

typedef enum { GEN_B158, GEN_BITNET, GEN_LLAMA } gen_arch;

static const char *const llama3_specials[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                               "<|end_header_id|>", "<|eot_id|>"};

/* Metadata in the key order of the real files: Microsoft's official 2B-4T file; the BitNet
 * fork's converter for 1bitLLM ("bitnet"); llama.cpp's converter for Llama3-8B-1.58 ("llama"). */
static bn_status write_keys(bn_gguf_writer *w, const bitnet_gen_model_params *p, gen_arch arch)
{
    bn_status st = BN_OK;
    const char *a = p->arch;
    char key[96], name[64];
#define K(s) (snprintf(key, sizeof key, "%s." s, a), key)
    snprintf(name, sizeof name, "synthetic-%s-%dL-%dd", a, p->n_layer, p->n_embd);
    const uint32_t ftype = p->weight_type == BN_TYPE_I2_S ? 40 : p->weight_type == BN_TYPE_TQ1_0 ? 36 : 37;
    SETS("general.architecture", a);
    SETS("general.name", name);
    if (arch == GEN_B158) {
        SETU(K("vocab_size"), p->n_vocab);
        SETU(K("context_length"), p->n_ctx);
        SETU(K("embedding_length"), p->n_embd);
        SETU(K("block_count"), p->n_layer);
        SETU(K("feed_forward_length"), p->n_ff);
        SETU(K("rope.dimension_count"), p->n_embd / p->n_head);
        SETU(K("attention.head_count"), p->n_head);
        SETU(K("attention.head_count_kv"), p->n_head_kv);
        SETB("tokenizer.ggml.add_bos_token", true);
        SETF(K("attention.layer_norm_rms_epsilon"), 1e-5f);
        SETF(K("rope.freq_base"), 500000.0f);
        SETU("general.file_type", ftype);
        SETS("tokenizer.ggml.model", "gpt2");
        if (st == BN_OK) st = add_bpe_tokenizer(w, p->n_vocab, llama3_specials, 2, true);
        SETU("tokenizer.ggml.bos_token_id", p->n_vocab - 2);
        SETU("tokenizer.ggml.eos_token_id", p->n_vocab - 1);
        SETU("tokenizer.ggml.padding_token_id", p->n_vocab - 1);
        SETS("tokenizer.chat_template",
             "{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim + "
             "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}");
        SETU("general.quantization_version", 2);
        return st;
    }
    /* the converters' common block */
    SETU(K("block_count"), p->n_layer);
    SETU(K("context_length"), p->n_ctx);
    SETU(K("embedding_length"), p->n_embd);
    SETU(K("feed_forward_length"), p->n_ff);
    SETU(K("attention.head_count"), p->n_head);
    SETU(K("attention.head_count_kv"), p->n_head_kv);
    SETF(K("rope.freq_base"), arch == GEN_LLAMA ? 500000.0f : 10000.0f);
    SETF(K("attention.layer_norm_rms_epsilon"), 1e-5f);
    SETU("general.file_type", ftype);
    if (arch == GEN_BITNET) {
        /* no vocab_size or rope.dimension_count: the loader's defaults (tokens, head dim) apply */
        SETS(K("rope.scaling.type"), "linear");
        SETF(K("rope.scaling.factor"), 1.0f);
        SETS("tokenizer.ggml.model", "llama");
        if (st == BN_OK) st = add_spm_tokenizer(w, p->n_vocab);
        SETU("tokenizer.ggml.bos_token_id", 1);
        SETU("tokenizer.ggml.eos_token_id", 2);
        SETU("tokenizer.ggml.unknown_token_id", 0);
        SETB("tokenizer.ggml.add_bos_token", true);
        SETB("tokenizer.ggml.add_eos_token", false);
    } else {
        SETU(K("vocab_size"), p->n_vocab);
        SETU(K("rope.dimension_count"), p->n_embd / p->n_head);
        SETS("tokenizer.ggml.model", "gpt2");
        SETS("tokenizer.ggml.pre", "llama-bpe");
        if (st == BN_OK) st = add_bpe_tokenizer(w, p->n_vocab, llama3_specials, 5, false) /* no scores: llama.cpp's gpt2 vocab */;
        SETU("tokenizer.ggml.bos_token_id", p->n_vocab - 5);
        SETU("tokenizer.ggml.eos_token_id", p->n_vocab - 1); /* <|eot_id|>, as Llama3-8B-1.58's file */
        SETB("tokenizer.ggml.add_bos_token", true);
        SETS("tokenizer.chat_template",
             "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
             "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
             "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
             "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
             "{% endif %}");
    }
    SETU("general.quantization_version", 2);
#undef K
    return st;
}

bitnet_status bitnet_gen_model(const bitnet_gen_model_params *p, const char *path)
{
    if (!p || !path) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: NULL argument");
    const char *an = p->arch ? p->arch : "(null)";
    gen_arch arch;
    if (!strcmp(an, "bitnet-b1.58")) arch = GEN_B158;
    else if (!strcmp(an, "bitnet")) arch = GEN_BITNET;
    else if (!strcmp(an, "llama")) arch = GEN_LLAMA;
    else
        return (bitnet_status)bn_error(BN_ERR_UNSUPPORTED,
                                       "gen-model: unknown arch '%s' (supported: bitnet-b1.58, bitnet, llama)", an);
    if (p->weight_type != BN_TYPE_I2_S && p->weight_type != BN_TYPE_TQ1_0 && p->weight_type != BN_TYPE_TQ2_0)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: weights must be I2_S, TQ1_0 or TQ2_0");
    if (p->embd_type != BN_TYPE_F16 && p->embd_type != BN_TYPE_Q8_0 && p->embd_type != BN_TYPE_F32)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "gen-model: embeddings must be F16, Q8_0 or F32");
    if (p->scale_tensors && (arch != GEN_BITNET || p->weight_type == BN_TYPE_I2_S))
        /* I2_S carries its scale inside the tensor (spec §8: the scale tensors are not used with it) */
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG,
                                       "gen-model: per-tensor scale tensors are for arch bitnet with TQ1_0/TQ2_0 weights");
    if (arch == GEN_BITNET && p->n_head_kv != p->n_head)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG,
                                       "gen-model: arch bitnet is multi-head (K/V are n_embd x n_embd): heads %d != kv heads %d",
                                       p->n_head, p->n_head_kv);
    const int n_specials = arch == GEN_LLAMA ? 5 : arch == GEN_B158 ? 2 : 0;
    const int min_vocab = arch == GEN_BITNET ? 260 : 257 + n_specials;
    const int64_t blk = p->weight_type == BN_TYPE_I2_S ? 128 : 256;
    if (p->n_layer < 1 || p->n_embd < 1 || p->n_head < 1 || p->n_head_kv < 1 || p->n_ff < 1 || p->n_vocab < min_vocab ||
        p->n_ctx < 1 || p->n_embd % p->n_head || p->n_head % p->n_head_kv || p->n_embd % blk || p->n_ff % blk ||
        (p->n_embd / p->n_head) % 2)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG,
                                       "gen-model: inconsistent shape (embd %d, heads %d/%d, ffn %d, vocab %d; widths must be "
                                       "multiples of %lld, vocab >= %d)",
                                       p->n_embd, p->n_head, p->n_head_kv, p->n_ff, p->n_vocab, (long long)blk, min_vocab);
    bn_gguf_writer *w;
    bn_status st = bn_gguf_writer_init(&w);
    if (st != BN_OK) return (bitnet_status)st;
    st = write_keys(w, p, arch);

    const int n_t = 1 + p->n_layer * 18 + 2;
    tensor_job *jobs = bn_calloc((size_t)n_t, sizeof *jobs);
    if (!jobs) st = st ? st : BN_ERR_NOMEM;
    int k = 0;
    uint64_t seed = p->seed * 1000003ull;
    const int64_t d = p->n_embd, kv = (int64_t)(p->n_embd / p->n_head) * p->n_head_kv, ff = p->n_ff;
#define ADD(nm, kind_, type_, rows_, cols_) \
    do { \
        if (st != BN_OK) break; \
        tensor_job *j = &jobs[k++]; \
        *j = (tensor_job){p, seed++, kind_, type_, rows_, cols_, 0}; \
        int64_t ne[2] = {cols_, rows_}; \
        st = bn_gguf_writer_add_tensor_fn(w, nm, type_, (rows_) == 1 ? 1 : 2, ne, fill_tensor, j); \
    } while (0)
    /* a ternary projection; with scale tensors, its scale follows it as "<name>.scale" */
#define LIN(nm, rows_, cols_) \
    do { \
        ADD(T(nm ".weight"), p->scale_tensors ? 4 : 0, p->weight_type, rows_, cols_); \
        if (p->scale_tensors && st == BN_OK) { \
            tensor_job *j = &jobs[k++]; \
            *j = (tensor_job){p, seed++, 3, BN_TYPE_F32, 1, 1, cols_}; \
            int64_t ne1[1] = {1}; \
            st = bn_gguf_writer_add_tensor_fn(w, T(nm ".scale"), BN_TYPE_F32, 1, ne1, fill_tensor, j); \
        } \
    } while (0)
    ADD("token_embd.weight", 2, p->embd_type, p->n_vocab, d);
    for (int l = 0; l < p->n_layer && st == BN_OK; l++) {
        char tn[64];
#define T(s) (snprintf(tn, sizeof tn, "blk.%d." s, l), tn)
        if (arch == GEN_B158) { /* the official file's order */
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
        } else { /* converters walk the Hugging Face checkpoint's sorted names */
            ADD(T("attn_norm.weight"), 1, BN_TYPE_F32, 1, d);
            LIN("ffn_down", d, ff);
            if (arch == GEN_BITNET) ADD(T("ffn_sub_norm.weight"), 1, BN_TYPE_F32, 1, ff);
            LIN("ffn_gate", ff, d);
            LIN("ffn_up", ff, d);
            ADD(T("ffn_norm.weight"), 1, BN_TYPE_F32, 1, d);
            if (arch == GEN_BITNET) ADD(T("attn_sub_norm.weight"), 1, BN_TYPE_F32, 1, d);
            LIN("attn_k", kv, d);
            LIN("attn_output", d, d);
            LIN("attn_q", d, d);
            LIN("attn_v", kv, d);
        }
#undef T
    }
    ADD("output_norm.weight", 1, BN_TYPE_F32, 1, d);
    if (arch == GEN_LLAMA) ADD("output.weight", 2, p->embd_type, p->n_vocab, d); /* untied, like Llama3-8B */
#undef LIN
#undef ADD
    if (st == BN_OK) st = bn_gguf_writer_write(w, path);
    bn_gguf_writer_free(w);
    bn_free(jobs);
    if (st != BN_OK) bn_error_prefix(st, "gen-model %s: ", path);
    return (bitnet_status)st;
}
