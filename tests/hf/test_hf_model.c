/* Tests of Hugging Face folder conversion on synthetic checkpoints made here: keys and tensors of
 * the GGUF, the same ternary weights for I2_S / TQ1_0 / TQ2_0 and for float master vs packed
 * weights, sharding, Llama's Q/K permutation, direct loading (identical logits to the converted
 * file), GGUF -> GGUF requantisation, and bad inputs failing with clear messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"
#include "common/error.h"
#include "common/fp16.h"
#include "gguf/gguf.h"
#include "hf/hf_model.h"
#include "quant/quant.h"
#include "safetensors/safetensors.h"
#include "../safetensors/st_writer.h"

/* the synthetic model: small, but with rows TQ types accept (multiples of 256) */
enum { D = 256, FF = 512, NL = 2, NH = 4, NKV = 2, DKV = D / NH * NKV, NTOK = 262, NV = 264 };

static char tmpdir[64];
static char pathbuf[8][512];
static int pathi;

static const char *P(const char *name)
{
    char *b = pathbuf[pathi++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/bn_hf_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(tmpdir);
    return 0;
}

static void expect_error(bn_status got, bn_status want, const char *fragment)
{
    if (got != want) fail_msg("status %d (want %d): %s", got, want, bn_last_error());
    if (!strstr(bn_last_error(), fragment)) fail_msg("message '%s' lacks '%s'", bn_last_error(), fragment);
}

/* ---- making a model folder -------------------------------------------------------------------- */

static uint64_t rng = 1;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

typedef struct model_opts {
    const char *arch;       /* default BitNetForCausalLM */
    const char *config_extra; /* appended inside config.json */
    bool packed;            /* linear weights packed four per byte with weight_scale */
    int shards;             /* 0/1: model.safetensors; 2: two shards and an index */
    bool no_tokenizer;
    bool extra_tensor;
    int hidden_in_config;   /* 0: D */
    bool llama_names;       /* no sub-norms (LlamaForCausalLM) */
    bool untied;            /* a separate lm_head */
    bool spm;               /* a SentencePiece-style tokenizer.json (byte fallback) */
} model_opts;

/* GPT-2's byte-to-unicode map, UTF-8 encoded */
static void byte_token(int b, char *out)
{
    int cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
        cp = 256 + n;
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

static void write_tokenizer(const char *dir)
{
    size_t cap = 1 << 16, o = 0;
    char *j = malloc(cap);
    o += (size_t)snprintf(j + o, cap - o,
                          "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":260,\"content\":\"<|begin_of_text|>\",\"special\":true},"
                          "{\"id\":261,\"content\":\"<|end_of_text|>\",\"special\":true}],\"normalizer\":null,"
                          "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
                          "\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (int b = 0; b < 256; b++) {
        char t[4];
        byte_token(b, t);
        const char *esc = (t[0] == '"' || t[0] == '\\') && !t[1] ? "\\" : "";
        o += (size_t)snprintf(j + o, cap - o, "%s\"%s%s\":%d", b ? "," : "", esc, t, b);
    }
    /* "Ġt" = 256, "he" = 257, "Ġthe" = 258, "in" = 259 */
    o += (size_t)snprintf(j + o, cap - o,
                          ",\"\xc4\xa0t\":256,\"he\":257,\"\xc4\xa0the\":258,\"in\":259},\"merges\":[\"\xc4\xa0 t\",[\"h\",\"e\"],"
                          "\"\xc4\xa0t he\",\"i n\"]}}");
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    assert_true(write_text(p, j));
    free(j);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    assert_true(write_text(p, "{\"add_bos_token\":true,\"bos_token\":\"<|begin_of_text|>\",\"eos_token\":{\"content\":"
                              "\"<|end_of_text|>\"},\"chat_template\":\"{% for m in messages %}{{ m.content }}{% endfor %}\"}"));
}

/* Llama-2 style: <unk> <s> </s>, 256 byte pieces, then "▁t" "he" "▁the" (ids 259..261) */
static void write_spm_tokenizer(const char *dir)
{
    size_t cap = 1 << 16, o = 0;
    char *j = malloc(cap);
    o += (size_t)snprintf(j + o, cap - o,
                          "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},{\"id\":1,\"content\":"
                          "\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
                          "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":"
                          "\"\xe2\x96\x81\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]},"
                          "\"pre_tokenizer\":null,\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":"
                          "\"<unk>\",\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int b = 0; b < 256; b++) o += (size_t)snprintf(j + o, cap - o, ",\"<0x%02X>\":%d", b, 3 + b);
    o += (size_t)snprintf(j + o, cap - o, ",\"\xe2\x96\x81t\":259,\"he\":260,\"\xe2\x96\x81the\":261},\"merges\":["
                                          "\"\xe2\x96\x81 t\",\"h e\",\"\xe2\x96\x81t he\"]}}");
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    assert_true(write_text(p, j));
    free(j);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    assert_true(write_text(p, "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}"));
}

/* The float master weights of every linear tensor, regenerated identically from the seed. */
typedef struct lin {
    char name[128];
    int rows, cols;
} lin;

static int linears(const model_opts *mo, lin *out)
{
    (void)mo;
    static const struct {
        const char *n;
        int r, c;
    } L[] = {{"self_attn.q_proj", D, D}, {"self_attn.k_proj", DKV, D}, {"self_attn.v_proj", DKV, D},
             {"self_attn.o_proj", D, D}, {"mlp.gate_proj", FF, D},     {"mlp.up_proj", FF, D},
             {"mlp.down_proj", D, FF}};
    int n = 0;
    for (int i = 0; i < NL; i++)
        for (int k = 0; k < 7; k++) {
            snprintf(out[n].name, sizeof out[n].name, "model.layers.%d.%s.weight", i, L[k].n);
            out[n].rows = L[k].r;
            out[n].cols = L[k].c;
            n++;
        }
    return n;
}

static float *lin_weights(int idx, int rows, int cols)
{
    rng = 0x9E3779B97F4A7C15ull * (uint64_t)(idx + 1);
    float *w = malloc((size_t)rows * cols * sizeof(float));
    for (int i = 0; i < rows * cols; i++) w[i] = bn_bf16_to_fp32(bn_fp32_to_bf16(frand() * 0.05f));
    return w;
}

typedef struct tbuf {
    st_entry e[64];
    void *mem[64];
    char names[64][128];
    int n;
} tbuf;

static void add_entry(tbuf *b, const char *name, const char *dtype, int nd, int64_t s0, int64_t s1, void *data,
                      size_t nbytes)
{
    int i = b->n++;
    snprintf(b->names[i], sizeof b->names[i], "%.127s", name);
    b->e[i] = (st_entry){b->names[i], dtype, nd, {s0, s1}, data, nbytes};
    b->mem[i] = data;
}

static uint16_t *to_bf16(const float *w, size_t n)
{
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = bn_fp32_to_bf16(w[i]);
    return h;
}

static void make_model(const char *dir, const model_opts *mo)
{
    mkdir(dir, 0755);
    char p[600], cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"_name_or_path\":\"synthetic/model\",\"architectures\":[\"%s\"],\"model_type\":\"bitnet\",\"hidden_size\":%d,\"intermediate_size\":%d,"
             "\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,\"vocab_size\":%d,"
             "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,\"hidden_act\":\"%s\","
             "\"tie_word_embeddings\":%s,\"bos_token_id\":260,\"eos_token_id\":261%s}",
             mo->arch ? mo->arch : "BitNetForCausalLM", mo->hidden_in_config ? mo->hidden_in_config : D, FF, NL, NH, NKV,
             NV, mo->llama_names || (mo->arch && !strcmp(mo->arch, "BitnetForCausalLM")) ? "silu" : "relu2",
             mo->untied ? "false" : "true", mo->config_extra ? mo->config_extra : "");
    snprintf(p, sizeof p, "%s/config.json", dir);
    assert_true(write_text(p, cfg));
    if (mo->spm) write_spm_tokenizer(dir);
    else if (!mo->no_tokenizer) write_tokenizer(dir);

    tbuf b = {.n = 0};
    rng = 7;
    float *emb = malloc((size_t)NV * D * sizeof(float));
    for (int i = 0; i < NV * D; i++) emb[i] = frand();
    add_entry(&b, "model.embed_tokens.weight", "BF16", 2, NV, D, to_bf16(emb, (size_t)NV * D), (size_t)NV * D * 2);
    free(emb);
    lin L[NL * 7];
    int nl = linears(mo, L);
    for (int k = 0; k < nl; k++) {
        float *w = lin_weights(k, L[k].rows, L[k].cols);
        size_t n = (size_t)L[k].rows * L[k].cols;
        if (!mo->packed) {
            add_entry(&b, L[k].name, "BF16", 2, L[k].rows, L[k].cols, to_bf16(w, n), n * 2);
        } else {
            int8_t *t = malloc(n);
            float s = bn_ternarize_absmean(w, (int64_t)n, t);
            int R = L[k].rows / 4;
            uint8_t *pk = calloc((size_t)R * L[k].cols, 1);
            for (int row = 0; row < L[k].rows; row++)
                for (int c = 0; c < L[k].cols; c++)
                    pk[(size_t)(row % R) * L[k].cols + c] |= (uint8_t)((t[(size_t)row * L[k].cols + c] + 1) << (2 * (row / R)));
            add_entry(&b, L[k].name, "U8", 2, R, L[k].cols, pk, (size_t)R * L[k].cols);
            float *ws = malloc(4);
            *ws = 1.0f / s;
            char sn[160];
            snprintf(sn, sizeof sn, "%.127s_scale", L[k].name);
            add_entry(&b, sn, "F32", 1, 1, 0, ws, 4);
            free(t);
        }
        free(w);
    }
    for (int i = 0; i < NL; i++) {
        const char *norms[4] = {"input_layernorm", "post_attention_layernorm", "self_attn.attn_sub_norm", "mlp.ffn_sub_norm"};
        for (int k = 0; k < (mo->llama_names ? 2 : 4); k++) {
            int n = k == 3 ? FF : D;
            float *v = malloc((size_t)n * 4);
            for (int j = 0; j < n; j++) v[j] = 1.0f + 0.1f * frand();
            char name[128];
            const char *nm = norms[k];
            if (mo->arch && !strcmp(mo->arch, "BitnetForCausalLM") && k == 2) nm = "self_attn.inner_attn_ln";
            if (mo->arch && !strcmp(mo->arch, "BitnetForCausalLM") && k == 3) nm = "mlp.ffn_layernorm";
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, nm);
            add_entry(&b, name, "F32", 1, n, 0, v, (size_t)n * 4);
        }
    }
    float *on = malloc(D * 4);
    for (int j = 0; j < D; j++) on[j] = 1.0f + 0.1f * frand();
    add_entry(&b, "model.norm.weight", "F32", 1, D, 0, on, D * 4);
    if (mo->untied) {
        float *head = malloc((size_t)NV * D * sizeof(float));
        for (int i = 0; i < NV * D; i++) head[i] = frand();
        add_entry(&b, "lm_head.weight", "F32", 2, NV, D, head, (size_t)NV * D * 4);
    }
    if (mo->extra_tensor) add_entry(&b, "model.layers.0.mystery.weight", "F32", 1, 4, 0, calloc(4, 4), 16);

    if (mo->shards == 2) {
        int half = b.n / 2;
        snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
        assert_true(st_write(p, b.e, half));
        snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
        assert_true(st_write(p, b.e + half, b.n - half));
        size_t cap = 16384, o = 0;
        char *idx = malloc(cap);
        o += (size_t)snprintf(idx + o, cap - o, "{\"metadata\":{},\"weight_map\":{");
        for (int i = 0; i < b.n; i++)
            o += (size_t)snprintf(idx + o, cap - o, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", i ? "," : "",
                                  b.e[i].name, i < half ? 1 : 2);
        snprintf(idx + o, cap - o, "}}");
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
        assert_true(write_text(p, idx));
        free(idx);
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        assert_true(st_write(p, b.e, b.n));
    }
    for (int i = 0; i < b.n; i++) free(b.mem[i]);
}

static bn_status convert(const char *dir, uint32_t wt, uint32_t et, const char *out)
{
    bn_convert_opts o;
    bn_convert_opts_default(&o);
    o.weight_type = wt;
    o.embed_type = et;
    return bn_hf_convert_file(dir, &o, out);
}

/* Ternary codes and the first scale of a GGUF tensor. */
static int8_t *codes_of(const bn_gguf *g, const char *name, float *scale0)
{
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    assert_non_null(t);
    int8_t *c = malloc((size_t)t->n_elem);
    float *s = malloc((size_t)(t->n_elem / 256 + 1) * sizeof(float));
    assert_int_equal(bn_ternary_decode(t->type, t->data, t->n_elem, c, s), BN_OK);
    if (scale0) *scale0 = s[0];
    free(s);
    return c;
}

static const char *gguf_name(const char *hf, char *buf)
{
    int layer;
    char rest[64];
    sscanf(hf, "model.layers.%d.%63s", &layer, rest);
    static const char *map[][2] = {{"self_attn.q_proj.weight", "attn_q"},  {"self_attn.k_proj.weight", "attn_k"},
                                   {"self_attn.v_proj.weight", "attn_v"},  {"self_attn.o_proj.weight", "attn_output"},
                                   {"mlp.gate_proj.weight", "ffn_gate"},   {"mlp.up_proj.weight", "ffn_up"},
                                   {"mlp.down_proj.weight", "ffn_down"}};
    for (int k = 0; k < 7; k++)
        if (!strcmp(rest, map[k][0])) sprintf(buf, "blk.%d.%s.weight", layer, map[k][1]);
    return buf;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_convert_every_type(void **state)
{
    (void)state;
    model_opts mo = {0};
    const char *dir = P("m");
    make_model(dir, &mo);
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ1_0, BN_TYPE_TQ2_0};
    const char *outs[3] = {P("i2s.gguf"), P("tq1.gguf"), P("tq2.gguf")};
    bn_gguf *g[3];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(convert(dir, types[k], BN_CONVERT_TYPE_AUTO, outs[k]), BN_OK);
        assert_int_equal(bn_gguf_open(outs[k], &g[k]), BN_OK);
    }
    /* keys, as Microsoft's file has them */
    bn_gguf_str s;
    assert_int_equal(bn_gguf_get_str(g[0], "general.architecture", &s), BN_OK);
    assert_true(s.len == 12 && !memcmp(s.ptr, "bitnet-b1.58", 12));
    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g[0], "bitnet-b1.58.vocab_size", &u), BN_OK);
    assert_int_equal(u, NV);
    assert_int_equal(bn_gguf_get_u32(g[0], "bitnet-b1.58.attention.head_count_kv", &u), BN_OK);
    assert_int_equal(u, NKV);
    assert_int_equal(bn_gguf_get_u32(g[0], "bitnet-b1.58.rope.dimension_count", &u), BN_OK);
    assert_int_equal(u, D / NH);
    assert_int_equal(bn_gguf_get_u32(g[0], "general.file_type", &u), BN_OK);
    assert_int_equal(u, 40);
    assert_int_equal(bn_gguf_get_u32(g[1], "general.file_type", &u), BN_OK);
    assert_int_equal(u, 36);
    assert_int_equal(bn_gguf_get_u32(g[2], "general.file_type", &u), BN_OK);
    assert_int_equal(u, 37);
    float f;
    assert_int_equal(bn_gguf_get_f32(g[0], "bitnet-b1.58.rope.freq_base", &f), BN_OK);
    assert_true(f == 500000.0f);
    assert_int_equal(bn_gguf_get_u32(g[0], "tokenizer.ggml.bos_token_id", &u), BN_OK);
    assert_int_equal(u, 260);
    assert_int_equal(bn_gguf_get_u32(g[0], "tokenizer.ggml.eos_token_id", &u), BN_OK);
    assert_int_equal(u, 261);
    bool bv;
    assert_int_equal(bn_gguf_get_bool(g[0], "tokenizer.ggml.add_bos_token", &bv), BN_OK);
    assert_true(bv);
    assert_int_equal(bn_gguf_get_str(g[0], "tokenizer.ggml.pre", &s), BN_OK);
    assert_true(s.len == 4 && !memcmp(s.ptr, "gpt2", 4));
    assert_int_equal(bn_gguf_get_str(g[0], "tokenizer.chat_template", &s), BN_OK);
    assert_true(s.len > 10 && !memcmp(s.ptr, "{% for m", 8));
    const bn_gguf_value *tok = bn_gguf_get(g[0], "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->v.arr.n, NV);
    assert_int_equal(bn_gguf_arr_str(tok, 256, &s), BN_OK);
    assert_true(s.len == 3 && !memcmp(s.ptr, "\xc4\xa0t", 3));
    assert_int_equal(bn_gguf_arr_str(tok, 262, &s), BN_OK);
    assert_true(s.len == 8 && !memcmp(s.ptr, "[PAD262]", 8));
    const bn_gguf_value *types_v = bn_gguf_get(g[0], "tokenizer.ggml.token_type");
    int32_t tt[NV];
    memcpy(tt, bn_gguf_arr_data(types_v), sizeof tt);
    assert_int_equal(tt[0], 1);
    assert_int_equal(tt[260], 3);
    assert_int_equal(tt[263], 5);
    const bn_gguf_value *merges = bn_gguf_get(g[0], "tokenizer.ggml.merges");
    assert_int_equal(merges->v.arr.n, 4);
    assert_int_equal(bn_gguf_arr_str(merges, 1, &s), BN_OK);
    assert_true(s.len == 3 && !memcmp(s.ptr, "h e", 3));

    /* tensors: names, types, shapes */
    assert_int_equal(bn_gguf_n_tensors(g[0]), 2 + NL * 11);
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g[0], "token_embd.weight");
    assert_int_equal(t->type, BN_TYPE_F16);
    assert_true(t->ne[0] == D && t->ne[1] == NV);
    assert_null(bn_gguf_find_tensor(g[0], "output.weight"));
    t = bn_gguf_find_tensor(g[0], "blk.1.ffn_sub_norm.weight");
    assert_true(t && t->type == BN_TYPE_F32 && t->ne[0] == FF);
    t = bn_gguf_find_tensor(g[0], "blk.1.attn_k.weight");
    assert_true(t && t->type == BN_TYPE_I2_S && t->ne[0] == D && t->ne[1] == DKV);
    t = bn_gguf_find_tensor(g[2], "blk.0.ffn_down.weight");
    assert_true(t && t->type == BN_TYPE_TQ2_0 && t->ne[0] == FF && t->ne[1] == D);

    /* every linear: the three files hold the same ternary values, which are absmean's */
    lin L[NL * 7];
    int nl = linears(&mo, L);
    for (int k = 0; k < nl; k++) {
        char name[96];
        gguf_name(L[k].name, name);
        float *w = lin_weights(k, L[k].rows, L[k].cols);
        size_t n = (size_t)L[k].rows * L[k].cols;
        int8_t *want = malloc(n);
        float scale = bn_ternarize_absmean(w, (int64_t)n, want);
        for (int fi = 0; fi < 3; fi++) {
            float s0;
            int8_t *c = codes_of(g[fi], name, &s0);
            assert_memory_equal(c, want, n);
            if (fi == 0) assert_true(s0 == 1.0f / (1.0f / scale));
            else assert_true(s0 == bn_fp16_to_fp32(bn_fp32_to_fp16(scale)));
            free(c);
        }
        free(want);
        free(w);
    }
    for (int k = 0; k < 3; k++) bn_gguf_free(g[k]);
}

static void test_packed_and_sharded(void **state)
{
    (void)state;
    model_opts f = {0}, pk = {.packed = true}, sh = {.shards = 2}, shp = {.packed = true, .shards = 2};
    make_model(P("float"), &f);
    make_model(P("packed"), &pk);
    make_model(P("sharded"), &sh);
    make_model(P("shpacked"), &shp);
    assert_int_equal(convert(P("float"), BN_TYPE_I2_S, BN_TYPE_F16, P("f.gguf")), BN_OK);
    assert_int_equal(convert(P("packed"), BN_TYPE_I2_S, BN_TYPE_F16, P("p.gguf")), BN_OK);
    assert_int_equal(convert(P("sharded"), BN_TYPE_I2_S, BN_TYPE_F16, P("s.gguf")), BN_OK);
    assert_int_equal(convert(P("shpacked"), BN_TYPE_I2_S, BN_TYPE_F16, P("sp.gguf")), BN_OK);
    bn_gguf *gf, *gp, *gs, *gsp;
    assert_int_equal(bn_gguf_open(P("f.gguf"), &gf), BN_OK);
    assert_int_equal(bn_gguf_open(P("p.gguf"), &gp), BN_OK);
    assert_int_equal(bn_gguf_open(P("s.gguf"), &gs), BN_OK);
    assert_int_equal(bn_gguf_open(P("sp.gguf"), &gsp), BN_OK);
    /* sharding changes nothing: byte-identical files */
    assert_int_equal(bn_gguf_file_size(gf), bn_gguf_file_size(gs));
    assert_memory_equal(bn_gguf_file_data(gf), bn_gguf_file_data(gs), bn_gguf_file_size(gf));
    assert_int_equal(bn_gguf_file_size(gp), bn_gguf_file_size(gsp));
    assert_memory_equal(bn_gguf_file_data(gp), bn_gguf_file_data(gsp), bn_gguf_file_size(gp));
    /* packed weights (weight = code / weight_scale) give the master weights' ternary values and scale */
    for (int64_t i = 0; i < bn_gguf_n_tensors(gf); i++) {
        const bn_gguf_tensor *a = bn_gguf_tensor_at(gf, i);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.ptr);
        const bn_gguf_tensor *b = bn_gguf_find_tensor(gp, name);
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        if (a->type != BN_TYPE_I2_S) {
            assert_memory_equal(a->data, b->data, a->nbytes);
            continue;
        }
        assert_memory_equal(a->data, b->data, (size_t)a->n_elem / 4);
        float sa = bn_i2s_scale(a->data, a->n_elem), sb = bn_i2s_scale(b->data, b->n_elem);
        assert_true(fabsf(sa - sb) <= 1e-6f * sa);
    }
    bn_gguf_free(gf);
    bn_gguf_free(gp);
    bn_gguf_free(gs);
    bn_gguf_free(gsp);
}

static void test_embed_types(void **state)
{
    (void)state;
    model_opts mo = {0};
    make_model(P("m"), &mo);
    const uint32_t et[3] = {BN_TYPE_BF16, BN_TYPE_Q8_0, BN_TYPE_F32};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(convert(P("m"), BN_TYPE_I2_S, et[k], P("e.gguf")), BN_OK);
        bn_gguf *g;
        assert_int_equal(bn_gguf_open(P("e.gguf"), &g), BN_OK);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, "token_embd.weight");
        assert_int_equal(t->type, et[k]);
        float row[D];
        assert_int_equal(bn_dequantize_row(t->type, t->data, D, 5, 0, row), BN_OK);
        rng = 7;
        for (int i = 0; i < 5 * D; i++) frand();
        for (int i = 0; i < D; i++) {
            float want = bn_bf16_to_fp32(bn_fp32_to_bf16(frand()));
            assert_true(fabsf(row[i] - want) <= (et[k] == BN_TYPE_Q8_0 ? 1.0f / 127 : 0.0f));
        }
        bn_gguf_free(g);
    }
}

/* A SentencePiece-style tokenizer.json (1bitLLM's kind) becomes a "llama" GGUF vocabulary. */
static void test_spm_tokenizer(void **state)
{
    (void)state;
    model_opts mo = {.arch = "BitnetForCausalLM", .spm = true};
    make_model(P("s"), &mo);
    assert_int_equal(convert(P("s"), BN_TYPE_I2_S, BN_TYPE_F16, P("s.gguf")), BN_OK);
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(P("s.gguf"), &g), BN_OK);
    bn_gguf_str str;
    assert_int_equal(bn_gguf_get_str(g, "tokenizer.ggml.model", &str), BN_OK);
    assert_true(str.len == 5 && !memcmp(str.ptr, "llama", 5));
    assert_null(bn_gguf_get(g, "tokenizer.ggml.merges"));
    assert_null(bn_gguf_get(g, "tokenizer.ggml.pre"));
    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u), BN_OK);
    assert_int_equal(u, 0);
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u), BN_OK);
    assert_int_equal(u, 1);
    int32_t tt[NV];
    memcpy(tt, bn_gguf_arr_data(bn_gguf_get(g, "tokenizer.ggml.token_type")), sizeof tt);
    assert_int_equal(tt[0], 2);
    assert_int_equal(tt[1], 3);
    assert_int_equal(tt[3], 6);
    assert_int_equal(tt[259], 1);
    float sc[NV];
    memcpy(sc, bn_gguf_arr_data(bn_gguf_get(g, "tokenizer.ggml.scores")), sizeof sc);
    assert_true(sc[259] > sc[260] && sc[260] > sc[261]);
    bn_gguf_free(g);
    bitnet_model *m;
    assert_int_equal(bitnet_model_load(P("s.gguf"), NULL, &m), BITNET_OK);
    bitnet_token ids[16];
    size_t n;
    assert_int_equal(bitnet_tokenize(bitnet_model_tokenizer(m), "the the", 7, BITNET_TOKENIZE_ADD_BOS, ids, 16, &n),
                     BITNET_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 261);
    assert_int_equal(ids[2], 261);
    /* a byte with no piece falls back to its <0xXX> token */
    assert_int_equal(bitnet_tokenize(bitnet_model_tokenizer(m), "!", 1, BITNET_TOKENIZE_NO_BOS, ids, 16, &n), BITNET_OK);
    assert_int_equal(ids[n - 1], 3 + '!');
    bitnet_model_free(m);
}

static void test_untied_head(void **state)
{
    (void)state;
    model_opts mo = {.untied = true}, tied = {0};
    make_model(P("u"), &mo);
    make_model(P("t"), &tied);
    assert_int_equal(convert(P("u"), BN_TYPE_I2_S, BN_TYPE_Q8_0, P("u.gguf")), BN_OK);
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(P("u.gguf"), &g), BN_OK);
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g, "output.weight");
    assert_non_null(t);
    assert_int_equal(t->type, BN_TYPE_Q8_0);
    assert_true(t->ne[0] == D && t->ne[1] == NV);
    bn_gguf_free(g);
    bitnet_model *m;
    assert_int_equal(bitnet_model_load(P("u"), NULL, &m), BITNET_OK);
    bitnet_model_info info;
    assert_int_equal(bitnet_model_info_get(m, &info), BITNET_OK);
    assert_false(info.tied_embeddings);
    bitnet_model_free(m);
    /* tie_word_embeddings true: the head is the embedding matrix */
    assert_int_equal(bitnet_model_load(P("t"), NULL, &m), BITNET_OK);
    assert_int_equal(bitnet_model_info_get(m, &info), BITNET_OK);
    assert_true(info.tied_embeddings);
    bitnet_model_free(m);
}

static void test_llama_and_bitnet_archs(void **state)
{
    (void)state;
    model_opts llama = {.arch = "LlamaForCausalLM", .llama_names = true,
                        .config_extra = ",\"quantization_config\":{\"quant_method\":\"bitnet\"}"};
    model_opts onebit = {.arch = "BitnetForCausalLM"};
    make_model(P("llama"), &llama);
    make_model(P("onebit"), &onebit);
    assert_int_equal(convert(P("llama"), BN_TYPE_I2_S, BN_TYPE_F16, P("l.gguf")), BN_OK);
    assert_int_equal(convert(P("onebit"), BN_TYPE_I2_S, BN_TYPE_F16, P("o.gguf")), BN_OK);
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(P("o.gguf"), &g), BN_OK);
    bn_gguf_str s;
    assert_int_equal(bn_gguf_get_str(g, "general.architecture", &s), BN_OK);
    assert_true(s.len == 6 && !memcmp(s.ptr, "bitnet", 6));
    assert_non_null(bn_gguf_find_tensor(g, "blk.0.attn_sub_norm.weight"));
    assert_non_null(bn_gguf_find_tensor(g, "blk.1.ffn_sub_norm.weight"));
    bn_gguf_free(g);

    assert_int_equal(bn_gguf_open(P("l.gguf"), &g), BN_OK);
    assert_int_equal(bn_gguf_get_str(g, "general.architecture", &s), BN_OK);
    assert_true(s.len == 5 && !memcmp(s.ptr, "llama", 5));
    assert_null(bn_gguf_find_tensor(g, "blk.0.attn_sub_norm.weight"));
    /* Q and K rows are permuted within each head (llama rope on adjacent pairs); V is not */
    lin L[NL * 7];
    linears(&llama, L);
    const int heads[3] = {NH, NKV, 0};
    for (int k = 0; k < 3; k++) {
        float *w = lin_weights(k, L[k].rows, L[k].cols);
        size_t n = (size_t)L[k].rows * L[k].cols;
        int8_t *t = malloc(n);
        bn_ternarize_absmean(w, (int64_t)n, t);
        char name[96];
        int8_t *c = codes_of(g, gguf_name(L[k].name, name), NULL);
        int hd = D / NH, K = L[k].cols;
        for (int r = 0; r < L[k].rows; r++) {
            int src = r;
            if (heads[k]) {
                int h = r / hd, i = (r % hd) / 2, j = r % 2;
                src = h * hd + j * (hd / 2) + i;
            }
            assert_memory_equal(c + (size_t)r * K, t + (size_t)src * K, (size_t)K);
        }
        free(c);
        free(t);
        free(w);
    }
    bn_gguf_free(g);
}

static bool count_progress(void *user, uint64_t done, uint64_t total)
{
    int *calls = user;
    assert_true(done <= total);
    return ++*calls < 3;
}

static void test_bad_inputs(void **state)
{
    (void)state;
    model_opts none = {.no_tokenizer = true};
    make_model(P("notok"), &none);
    expect_error(convert(P("notok"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_NOT_FOUND, "tokenizer.json is missing");

    model_opts wrong = {.hidden_in_config = 128};
    make_model(P("wrong"), &wrong);
    expect_error(convert(P("wrong"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_FORMAT,
                 "'model.embed_tokens.weight' has shape [264, 256], but config.json implies [264, 128]");

    model_opts extra = {.extra_tensor = true};
    make_model(P("extra"), &extra);
    expect_error(convert(P("extra"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_FORMAT,
                 "'model.layers.0.mystery.weight', which a bitnet-b1.58 model with 2 layers does not use");

    model_opts arch = {.arch = "GPT2LMHeadModel"};
    make_model(P("arch"), &arch);
    expect_error(convert(P("arch"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_UNSUPPORTED, "GPT2LMHeadModel");

    model_opts llama = {.arch = "LlamaForCausalLM", .llama_names = true};
    make_model(P("plain"), &llama);
    expect_error(convert(P("plain"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_UNSUPPORTED,
                 "without a BitNet quantization_config");

    model_opts ok = {0};
    make_model(P("ok"), &ok);
    /* a truncated weights file */
    const char *st_path = P("ok/model.safetensors");
    struct stat sb;
    assert_int_equal(stat(st_path, &sb), 0);
    assert_int_equal(truncate(st_path, sb.st_size - 100), 0);
    expect_error(convert(P("ok"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_FORMAT, "truncated");
    /* header length beyond the file */
    assert_int_equal(truncate(st_path, 1000), 0);
    expect_error(convert(P("ok"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_FORMAT, "runs past the end of the file");
    unlink(st_path);
    expect_error(convert(P("ok"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_NOT_FOUND, "no model.safetensors");

    /* a bad config value */
    model_opts hd = {.config_extra = ",\"head_dim\":32"};
    make_model(P("hd"), &hd);
    expect_error(convert(P("hd"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_UNSUPPORTED,
                 "head_dim 32 differs from hidden_size / num_attention_heads (64)");
    model_opts rs = {.config_extra = ",\"rope_scaling\":{\"type\":\"linear\"}"};
    make_model(P("rs"), &rs);
    expect_error(convert(P("rs"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_UNSUPPORTED, "rope_scaling");

    /* types */
    model_opts good = {0};
    make_model(P("good"), &good);
    expect_error(convert(P("good"), BN_TYPE_F16, BN_TYPE_F16, P("x.gguf")), BN_ERR_INVALID_ARG, "not ternary");
    expect_error(convert(P("good"), BN_TYPE_I2_S, BN_TYPE_Q4_0, P("x.gguf")), BN_ERR_INVALID_ARG, "embedding type Q4_0");

    /* cancelling leaves no file */
    bn_convert_opts o;
    bn_convert_opts_default(&o);
    int calls = 0;
    o.progress = count_progress;
    o.user = &calls;
    expect_error(bn_hf_convert_file(P("good"), &o, P("c.gguf")), BN_ERR_CANCELLED, "cancelled");
    assert_int_equal(calls, 3);
    assert_int_not_equal(stat(P("c.gguf"), &sb), 0);
    assert_int_not_equal(stat(P("x.gguf"), &sb), 0);
}

static void test_packed_bad(void **state)
{
    (void)state;
    model_opts pk = {.packed = true};
    make_model(P("p"), &pk);
    /* the code 3 in a packed byte: rewrite the first weight byte of q_proj */
    bn_safetensors *unused = NULL;
    (void)unused;
    const char *path = P("p/model.safetensors");
    FILE *f = fopen(path, "r+b");
    uint8_t len8[8];
    assert_int_equal(fread(len8, 1, 8, f), 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
    char *h = malloc(hl + 1);
    assert_int_equal(fread(h, 1, hl, f), hl);
    h[hl] = 0;
    char *q = strstr(h, "\"model.layers.0.self_attn.q_proj.weight\"");
    assert_non_null(q);
    long begin = strtol(strstr(q, "data_offsets\":[") + 15, NULL, 10);
    fseek(f, (long)(8 + hl) + begin, SEEK_SET);
    uint8_t bad = 0xFF;
    fwrite(&bad, 1, 1, f);
    fclose(f);
    free(h);
    expect_error(convert(P("p"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_FORMAT, "invalid code 3");
    /* a missing weight_scale */
    model_opts pk2 = {.packed = true};
    make_model(P("p2"), &pk2);
    bn_safetensors *st;
    assert_int_equal(bn_st_open(P("p2/model.safetensors"), &st), BN_OK);
    st_entry e[128];
    int n = 0;
    for (int64_t i = 0; i < bn_st_n_tensors(st); i++) {
        const bn_st_tensor *t = bn_st_tensor_at(st, i);
        if (!strcmp(t->name, "model.layers.1.mlp.up_proj.weight_scale")) continue;
        e[n++] = (st_entry){t->name, bn_st_dtype_name(t->dtype), t->n_dims, {t->shape[0], t->shape[1]}, t->data, t->nbytes};
    }
    assert_true(st_write(P("p2/new.safetensors"), e, n));
    bn_st_free(st);
    rename(P("p2/new.safetensors"), P("p2/model.safetensors"));
    expect_error(convert(P("p2"), BN_TYPE_I2_S, BN_TYPE_F16, P("x.gguf")), BN_ERR_FORMAT,
                 "'model.layers.1.mlp.up_proj.weight' is packed (U8) but 'model.layers.1.mlp.up_proj.weight_scale' is missing");
}

/* bitnet_model_load(DIR) is the same conversion in memory: logits identical to the I2_S file. */
static void test_direct_load_and_requant(void **state)
{
    (void)state;
    model_opts mo = {0};
    make_model(P("m"), &mo);
    bitnet_convert_params cp;
    bitnet_convert_params_default(&cp);
    assert_int_equal(bitnet_convert(P("m"), P("i2s.gguf"), &cp), BITNET_OK);
    bitnet_model *hf, *file;
    assert_int_equal(bitnet_model_load(P("m"), NULL, &hf), BITNET_OK);
    assert_int_equal(bitnet_model_load(P("i2s.gguf"), NULL, &file), BITNET_OK);
    bitnet_model_info ia, ib;
    assert_int_equal(bitnet_model_info_get(hf, &ia), BITNET_OK);
    assert_int_equal(bitnet_model_info_get(file, &ib), BITNET_OK);
    assert_string_equal(ia.arch, "bitnet-b1.58");
    assert_int_equal(ia.weight_type, BN_TYPE_I2_S);
    assert_int_equal(ia.n_vocab, NV);
    bitnet_token toks[6] = {260, 72, 101, 256, 258, 33};
    bitnet_context_params pp;
    bitnet_context_params_default(&pp);
    pp.n_ctx = 32;
    pp.n_threads = 1;
    bitnet_context *ca, *cb;
    assert_int_equal(bitnet_context_init(hf, &pp, &ca), BITNET_OK);
    assert_int_equal(bitnet_context_init(file, &pp, &cb), BITNET_OK);
    assert_int_equal(bitnet_eval(ca, toks, 6, true), BITNET_OK);
    assert_int_equal(bitnet_eval(cb, toks, 6, true), BITNET_OK);
    for (int i = 0; i < 6; i++) assert_memory_equal(bitnet_get_logits(ca, i), bitnet_get_logits(cb, i), NV * sizeof(float));
    bitnet_context_free(ca);
    bitnet_context_free(cb);
    bitnet_model_free(hf);

    /* GGUF -> GGUF: TQ2_0 and back keeps the ternary values; the embeddings change type */
    cp.weight_type = BN_TYPE_TQ2_0;
    cp.embed_type = BN_TYPE_Q8_0;
    assert_int_equal(bitnet_convert(P("i2s.gguf"), P("tq2.gguf"), &cp), BITNET_OK);
    cp.weight_type = BN_TYPE_I2_S;
    cp.embed_type = BITNET_TYPE_AUTO;
    assert_int_equal(bitnet_convert(P("tq2.gguf"), P("back.gguf"), &cp), BITNET_OK);
    bn_gguf *a, *b, *c;
    assert_int_equal(bn_gguf_open(P("i2s.gguf"), &a), BN_OK);
    assert_int_equal(bn_gguf_open(P("tq2.gguf"), &b), BN_OK);
    assert_int_equal(bn_gguf_open(P("back.gguf"), &c), BN_OK);
    assert_int_equal(bn_gguf_n_kv(a), bn_gguf_n_kv(b));
    uint32_t ft;
    assert_int_equal(bn_gguf_get_u32(b, "general.file_type", &ft), BN_OK);
    assert_int_equal(ft, 37);
    assert_int_equal(bn_gguf_get_u32(c, "general.file_type", &ft), BN_OK);
    assert_int_equal(ft, 40);
    assert_int_equal(bn_gguf_find_tensor(b, "token_embd.weight")->type, BN_TYPE_Q8_0);
    assert_int_equal(bn_gguf_find_tensor(c, "token_embd.weight")->type, BN_TYPE_Q8_0);
    for (int64_t i = 0; i < bn_gguf_n_tensors(a); i++) {
        const bn_gguf_tensor *t = bn_gguf_tensor_at(a, i);
        if (t->type != BN_TYPE_I2_S) continue;
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        assert_int_equal(bn_gguf_find_tensor(b, name)->type, BN_TYPE_TQ2_0);
        float s1, s2, s3;
        int8_t *x = codes_of(a, name, &s1), *y = codes_of(b, name, &s2), *z = codes_of(c, name, &s3);
        assert_memory_equal(x, y, (size_t)t->n_elem);
        assert_memory_equal(x, z, (size_t)t->n_elem);
        assert_true(s2 == bn_fp16_to_fp32(bn_fp32_to_fp16(s1)) && s3 == s2);
        free(x);
        free(y);
        free(z);
    }
    bn_gguf_free(a);
    bn_gguf_free(b);
    bn_gguf_free(c);
    /* a TQ file evaluates to nearly the same logits */
    bitnet_model *tq;
    assert_int_equal(bitnet_model_load(P("tq2.gguf"), NULL, &tq), BITNET_OK);
    assert_int_equal(bitnet_context_init(tq, &pp, &ca), BITNET_OK);
    assert_int_equal(bitnet_context_init(file, &pp, &cb), BITNET_OK);
    assert_int_equal(bitnet_eval(ca, toks, 6, false), BITNET_OK);
    assert_int_equal(bitnet_eval(cb, toks, 6, false), BITNET_OK);
    const float *la = bitnet_get_logits(ca, -1), *lb = bitnet_get_logits(cb, -1);
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < NV; i++) {
        dot += (double)la[i] * lb[i];
        na += (double)la[i] * la[i];
        nb += (double)lb[i] * lb[i];
    }
    assert_true(dot / sqrt(na * nb) > 0.99);
    bitnet_context_free(ca);
    bitnet_context_free(cb);
    bitnet_model_free(tq);
    bitnet_model_free(file);

    /* errors */
    assert_int_equal(bitnet_convert(P("nothing.gguf"), P("x.gguf"), NULL), BITNET_ERR_IO);
    cp.weight_type = BN_TYPE_F16;
    assert_int_equal(bitnet_convert(P("i2s.gguf"), P("x.gguf"), &cp), BITNET_ERR_INVALID_ARG);
    bitnet_model *m;
    model_opts none = {.no_tokenizer = true};
    make_model(P("nt"), &none);
    assert_int_equal(bitnet_model_load(P("nt"), NULL, &m), BITNET_ERR_NOT_FOUND);
    assert_non_null(strstr(bitnet_last_error(), "tokenizer.json is missing"));
    assert_null(m);
    /* a folder without config.json */
    mkdir(P("empty"), 0755);
    assert_int_equal(bitnet_model_load(P("empty"), NULL, &m), BITNET_ERR_NOT_FOUND);
    assert_non_null(strstr(bitnet_last_error(), "config.json is missing"));
    assert_int_equal(bitnet_convert(P("empty"), P("x.gguf"), NULL), BITNET_ERR_NOT_FOUND);
    /* Q6_K embeddings, from the GGUF and straight from the folder: the file loads and predicts
     * the same next token as the F16-embedding conversion at every position */
    cp.weight_type = BN_TYPE_I2_S;
    cp.embed_type = BN_TYPE_Q6_K;
    assert_int_equal(bitnet_convert(P("i2s.gguf"), P("q6.gguf"), &cp), BITNET_OK);
    assert_int_equal(bitnet_convert(P("m"), P("q6hf.gguf"), &cp), BITNET_OK);
    const char *q6files[2] = {"q6.gguf", "q6hf.gguf"};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(bn_gguf_open(P(q6files[k]), &a), BN_OK);
        assert_int_equal(bn_gguf_find_tensor(a, "token_embd.weight")->type, BN_TYPE_Q6_K);
        bn_gguf_free(a);
        bitnet_model *q6, *f16;
        assert_int_equal(bitnet_model_load(P(q6files[k]), NULL, &q6), BITNET_OK);
        assert_int_equal(bitnet_model_load(P("i2s.gguf"), NULL, &f16), BITNET_OK);
        assert_int_equal(bitnet_context_init(q6, &pp, &ca), BITNET_OK);
        assert_int_equal(bitnet_context_init(f16, &pp, &cb), BITNET_OK);
        assert_int_equal(bitnet_eval(ca, toks, 6, true), BITNET_OK);
        assert_int_equal(bitnet_eval(cb, toks, 6, true), BITNET_OK);
        for (int i = 0; i < 6; i++) {
            const float *qa = bitnet_get_logits(ca, i), *fb = bitnet_get_logits(cb, i);
            int am = 0, bm = 0;
            for (int v = 1; v < NV; v++) {
                if (qa[v] > qa[am]) am = v;
                if (fb[v] > fb[bm]) bm = v;
            }
            assert_int_equal(am, bm);
        }
        bitnet_context_free(ca);
        bitnet_context_free(cb);
        bitnet_model_free(q6);
        bitnet_model_free(f16);
    }
}

/* A one-layer model around the real Llama-3 tokenizer.json (tests/data/tokenizer): the GGUF
 * must carry the key set of Microsoft's file (no tokenizer.ggml.pre) and tokenize exactly as the
 * tokenizer.json loader does. */
/* ---- threads ---------------------------------------------------------------------------------- */

static bn_status convert_threads(const char *dir, uint32_t wt, uint32_t et, int n_threads, const char *out)
{
    bn_convert_opts o;
    bn_convert_opts_default(&o);
    o.weight_type = wt;
    o.embed_type = et;
    o.n_threads = n_threads;
    return bn_hf_convert_file(dir, &o, out);
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *pa = slurp(a, &la), *pb = slurp(b, &lb);
    if (la != lb) fail_msg("%s has %zu bytes, %s %zu", a, la, b, lb);
    for (size_t i = 0; i < la; i++)
        if (pa[i] != pb[i]) fail_msg("%s and %s differ at byte %zu", a, b, i);
    free(pa);
    free(pb);
}

/* The output does not depend on the thread count: float master weights (absmean over two 64K
 * chunks for FF x D tensors, more threads than chunks at 3), packed weights, Llama's permuted
 * Q/K, a separate head, every ternary and embedding type, and GGUF -> GGUF. */
static void test_threads_identical(void **state)
{
    (void)state;
    model_opts f = {0}, pk = {.packed = true}, un = {.untied = true};
    model_opts llama = {.arch = "LlamaForCausalLM", .llama_names = true,
                        .config_extra = ",\"quantization_config\":{\"quant_method\":\"bitnet\"}"};
    make_model(P("f"), &f);
    make_model(P("pk"), &pk);
    make_model(P("un"), &un);
    make_model(P("ll"), &llama);
    static const struct {
        const char *dir;
        uint32_t wt, et;
    } cases[] = {{"f", BN_TYPE_I2_S, BN_TYPE_F16},   {"f", BN_TYPE_TQ1_0, BN_TYPE_Q8_0}, {"f", BN_TYPE_TQ2_0, BN_TYPE_Q6_K},
                 {"pk", BN_TYPE_I2_S, BN_TYPE_BF16}, {"pk", BN_TYPE_TQ2_0, BN_TYPE_F32}, {"un", BN_TYPE_I2_S, BN_TYPE_Q6_K},
                 {"ll", BN_TYPE_I2_S, BN_TYPE_F16},  {"ll", BN_TYPE_TQ1_0, BN_TYPE_Q8_0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int threads[3] = {1, 2, 3};
        char name[3][32];
        for (int i = 0; i < 3; i++) {
            snprintf(name[i], sizeof name[i], "c%zu-t%d.gguf", k, threads[i]);
            if (convert_threads(P(cases[k].dir), cases[k].wt, cases[k].et, threads[i], P(name[i])))
                fail_msg("%s with %d threads: %s", cases[k].dir, threads[i], bn_last_error());
        }
        assert_same_file(P(name[0]), P(name[1]));
        assert_same_file(P(name[0]), P(name[2]));
    }
    /* 3 threads give absmean's codes and scale, as one does (test_convert_every_type) */
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(P("c0-t3.gguf"), &g), BN_OK);
    lin L[NL * 7];
    int nl = linears(&f, L);
    for (int k = 0; k < nl; k++) {
        char name[96];
        float *w = lin_weights(k, L[k].rows, L[k].cols);
        size_t n = (size_t)L[k].rows * L[k].cols;
        int8_t *want = malloc(n);
        float scale = bn_ternarize_absmean(w, (int64_t)n, want), s0;
        int8_t *c = codes_of(g, gguf_name(L[k].name, name), &s0);
        assert_memory_equal(c, want, n);
        assert_true(s0 == 1.0f / (1.0f / scale));
        free(c);
        free(want);
        free(w);
    }
    bn_gguf_free(g);

    /* GGUF -> GGUF through the public API: I2_S -> TQ1_0 + Q6_K, and TQ2_0 -> I2_S (scale mean) */
    bitnet_convert_params cp;
    bitnet_convert_params_default(&cp);
    assert_int_equal(cp.n_threads, 0);
    for (int t = 1; t <= 3; t++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "rq1-t%d.gguf", t);
        snprintf(b, sizeof b, "rq2-t%d.gguf", t);
        cp.n_threads = t;
        cp.weight_type = BN_TYPE_TQ1_0;
        cp.embed_type = BN_TYPE_Q6_K;
        assert_int_equal(bitnet_convert(P("c0-t1.gguf"), P(a), &cp), BITNET_OK);
        cp.weight_type = BN_TYPE_I2_S;
        cp.embed_type = BN_TYPE_F16;
        assert_int_equal(bitnet_convert(P("c2-t1.gguf"), P(b), &cp), BITNET_OK);
    }
    for (int t = 2; t <= 3; t++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "rq1-t%d.gguf", t);
        snprintf(b, sizeof b, "rq2-t%d.gguf", t);
        assert_same_file(P("rq1-t1.gguf"), P(a));
        assert_same_file(P("rq2-t1.gguf"), P(b));
    }
}

/* Overwrites bytes of one tensor's data in a safetensors file. */
static void poke_tensor(const char *path, const char *tensor, long offset, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t len8[8];
    assert_int_equal(fread(len8, 1, 8, f), 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
    char *h = malloc(hl + 1);
    assert_int_equal(fread(h, 1, hl, f), hl);
    h[hl] = 0;
    char key[160];
    snprintf(key, sizeof key, "\"%s\"", tensor);
    char *q = strstr(h, key);
    assert_non_null(q);
    long begin = strtol(strstr(q, "data_offsets\":[") + 15, NULL, 10);
    fseek(f, (long)(8 + hl) + begin + offset, SEEK_SET);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    free(h);
}

/* Errors met on a worker thread reach the caller, the first in element order (whichever thread
 * met it); bad counts fail. */
static void test_threads_errors(void **state)
{
    (void)state;
    model_opts mo = {0};
    make_model(P("nan"), &mo);
    const char *w = "model.layers.0.mlp.gate_proj.weight"; /* FF x D: two absmean chunks */
    const uint16_t nan = 0x7FC0, inf = 0xFF80;
    poke_tensor(P("nan/model.safetensors"), w, 100000 * 2, &nan, 2); /* the second chunk */
    for (int t = 1; t <= 3; t++)
        expect_error(convert_threads(P("nan"), BN_TYPE_I2_S, BN_TYPE_F16, t, P("x.gguf")), BN_ERR_FORMAT,
                     "tensor 'model.layers.0.mlp.gate_proj.weight' element 100000 is not finite");
    poke_tensor(P("nan/model.safetensors"), w, 70000 * 2, &inf, 2); /* the same chunk, earlier */
    for (int t = 1; t <= 3; t++)
        expect_error(convert_threads(P("nan"), BN_TYPE_TQ2_0, BN_TYPE_F16, t, P("x.gguf")), BN_ERR_FORMAT,
                     "element 70000 is not finite");
    poke_tensor(P("nan/model.safetensors"), w, 10 * 2, &nan, 2); /* the first chunk's: reported first */
    for (int t = 1; t <= 3; t++)
        expect_error(convert_threads(P("nan"), BN_TYPE_I2_S, BN_TYPE_F16, t, P("x.gguf")), BN_ERR_FORMAT,
                     "element 10 is not finite");

    /* an invalid packed code in the last packed row (the last piece) */
    model_opts pk = {.packed = true};
    make_model(P("pk"), &pk);
    uint8_t bad = 0xFF;
    poke_tensor(P("pk/model.safetensors"), "model.layers.1.mlp.up_proj.weight", (long)(FF / 4 - 1) * D + 7, &bad, 1);
    for (int t = 1; t <= 3; t++)
        expect_error(convert_threads(P("pk"), BN_TYPE_I2_S, BN_TYPE_F16, t, P("x.gguf")), BN_ERR_FORMAT,
                     "'model.layers.1.mlp.up_proj.weight': packed byte [127, 7] holds the invalid code 3");

    /* thread counts: 0 means physical cores; negative or above 1024 is refused before any work */
    make_model(P("ok"), &mo);
    assert_int_equal(convert_threads(P("ok"), BN_TYPE_I2_S, BN_TYPE_F16, 0, P("zero.gguf")), BN_OK);
    expect_error(convert_threads(P("ok"), BN_TYPE_I2_S, BN_TYPE_F16, -1, P("x.gguf")), BN_ERR_INVALID_ARG,
                 "conversion threads: -1 is not in 1..1024 (0 = physical cores)");
    expect_error(convert_threads(P("ok"), BN_TYPE_I2_S, BN_TYPE_F16, 1025, P("x.gguf")), BN_ERR_INVALID_ARG,
                 "conversion threads: 1025 is not in 1..1024");
    bitnet_convert_params cp;
    bitnet_convert_params_default(&cp);
    cp.n_threads = -2;
    assert_int_equal(bitnet_convert(P("ok"), P("x.gguf"), &cp), BITNET_ERR_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "bitnet_convert: conversion threads: -2 is not in 1..1024"));
    assert_int_equal(bitnet_convert(P("zero.gguf"), P("x.gguf"), &cp), BITNET_ERR_INVALID_ARG);
    struct stat sb;
    assert_int_not_equal(stat(P("x.gguf"), &sb), 0);
}

/* The pieces converters encode on separate threads make the whole tensor's bytes. */
static void test_ternary_ranges(void **state)
{
    (void)state;
    enum { N = 4 * 256 };
    int8_t t[N], back[N];
    rng = 3;
    for (int i = 0; i < N; i++) t[i] = (int8_t)((int)((frand() + 1.0f) * 1.5f) - 1);
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ1_0, BN_TYPE_TQ2_0};
    float scales[N / 256] = {0.5f, 0.25f, 0.125f, 2.0f};
    for (int k = 0; k < 3; k++) {
        size_t nb = types[k] == BN_TYPE_I2_S ? N / 4 + 32 : N / 256 * (types[k] == BN_TYPE_TQ1_0 ? 54 : 66);
        uint8_t whole[N], pieces[N];
        memset(whole, 0xAA, sizeof whole);
        memset(pieces, 0x55, sizeof pieces);
        assert_int_equal(bn_ternary_encode(types[k], t, scales, N, whole), BN_OK);
        /* out of order, as threads may finish */
        assert_int_equal(bn_ternary_encode_range(types[k], t, scales, N, 512, 512, pieces), BN_OK);
        assert_int_equal(bn_ternary_encode_range(types[k], t, scales, N, 0, 256, pieces), BN_OK);
        assert_int_equal(bn_ternary_encode_range(types[k], t, scales, N, 256, 256, pieces), BN_OK);
        assert_memory_equal(whole, pieces, nb);
        float s[N / 256] = {0};
        memset(back, 7, sizeof back);
        assert_int_equal(bn_ternary_decode_range(types[k], whole, N, 256, 768, back, s), BN_OK);
        assert_int_equal(bn_ternary_decode_range(types[k], whole, N, 0, 256, back, s), BN_OK);
        assert_memory_equal(back, t, N);
        assert_true(s[0] == bn_fp16_to_fp32(bn_fp32_to_fp16(0.5f)));
        /* an invalid code 3 (element 700) is found, in its piece only */
        if (types[k] != BN_TYPE_TQ1_0) {
            int e = 700 % 256, w = e % 128;
            size_t at = types[k] == BN_TYPE_I2_S ? (size_t)(700 / 128) * 32 + (700 % 128) % 32
                                                  : (size_t)(700 / 256) * 66 + (size_t)(e / 128) * 32 + (size_t)(w % 32);
            int shift = types[k] == BN_TYPE_I2_S ? 6 - 2 * ((700 % 128) / 32) : 2 * (w / 32);
            whole[at] |= (uint8_t)(3 << shift);
            assert_int_equal(bn_ternary_decode_range(types[k], whole, N, 0, 512, back, s), BN_OK);
            expect_error(bn_ternary_decode_range(types[k], whole, N, 512, 512, back, s), BN_ERR_FORMAT,
                         "element 700 has the invalid code 3");
        }
        /* pieces that are not whole blocks */
        expect_error(bn_ternary_encode_range(types[k], t, scales, N, 64, 256, pieces), BN_ERR_INVALID_ARG, "whole blocks");
        expect_error(bn_ternary_decode_range(types[k], whole, N, 0, N + 256, back, s), BN_ERR_INVALID_ARG, "whole blocks");
    }
}

static void test_llama3_tokenizer(void **state)
{
    (void)state;
    enum { d = 128, ff = 256, nv = 128256 };
    const char *dir = P("l3");
    mkdir(dir, 0755);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"BitNetForCausalLM\"],\"hidden_size\":%d,\"intermediate_size\":%d,"
             "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":%d,"
             "\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
             "\"hidden_act\":\"relu2\",\"tie_word_embeddings\":true}",
             d, ff, nv);
    assert_true(write_text(P("l3/config.json"), cfg));
    const char *names[2] = {"tokenizer.json", "tokenizer_config.json"};
    for (int k = 0; k < 2; k++) {
        char src[600], cmd[1400];
        snprintf(src, sizeof src, "%s/tokenizer/%s", BITNET_TEST_DATA, names[k]);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/%s'", src, dir, names[k]);
        assert_int_equal(system(cmd), 0);
    }
    tbuf b = {.n = 0};
    size_t ne = (size_t)nv * d;
    uint16_t *emb = malloc(ne * 2);
    rng = 3;
    for (size_t i = 0; i < ne; i++) emb[i] = bn_fp32_to_bf16(frand());
    add_entry(&b, "model.embed_tokens.weight", "BF16", 2, nv, d, emb, ne * 2);
    static const struct {
        const char *n;
        int r, c;
    } L[] = {{"self_attn.q_proj", d, d}, {"self_attn.k_proj", d / 2, d}, {"self_attn.v_proj", d / 2, d},
             {"self_attn.o_proj", d, d}, {"mlp.gate_proj", ff, d},       {"mlp.up_proj", ff, d},
             {"mlp.down_proj", d, ff}};
    char name[128];
    for (int k = 0; k < 7; k++) {
        size_t n = (size_t)L[k].r * L[k].c;
        float *w = malloc(n * 4);
        for (size_t i = 0; i < n; i++) w[i] = frand();
        snprintf(name, sizeof name, "model.layers.0.%s.weight", L[k].n);
        add_entry(&b, name, "F32", 2, L[k].r, L[k].c, w, n * 4);
    }
    const char *norms[5] = {"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
                            "model.layers.0.self_attn.attn_sub_norm.weight", "model.layers.0.mlp.ffn_sub_norm.weight",
                            "model.norm.weight"};
    for (int k = 0; k < 5; k++) {
        int n = k == 3 ? ff : d;
        float *v = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++) v[i] = 1.0f;
        add_entry(&b, norms[k], "F32", 1, n, 0, v, (size_t)n * 4);
    }
    assert_true(st_write(P("l3/model.safetensors"), b.e, b.n));
    for (int i = 0; i < b.n; i++) free(b.mem[i]);

    assert_int_equal(convert(dir, BN_TYPE_I2_S, BN_TYPE_F16, P("l3.gguf")), BN_OK);
    bn_gguf *g;
    assert_int_equal(bn_gguf_open(P("l3.gguf"), &g), BN_OK);
    assert_null(bn_gguf_get(g, "tokenizer.ggml.pre"));
    assert_int_equal(bn_gguf_get(g, "tokenizer.ggml.merges")->v.arr.n, 280147);
    assert_int_equal(bn_gguf_get(g, "tokenizer.ggml.tokens")->v.arr.n, nv);
    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u), BN_OK);
    assert_int_equal(u, 128000);
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u), BN_OK);
    assert_int_equal(u, 128001);
    int32_t tt;
    memcpy(&tt, (const int32_t *)bn_gguf_arr_data(bn_gguf_get(g, "tokenizer.ggml.token_type")) + 128009, 4);
    assert_int_equal(tt, 3);
    /* the official key order: the first keys and the last */
    static const char *first[] = {"general.architecture", "general.name", "bitnet-b1.58.vocab_size",
                                  "bitnet-b1.58.context_length", "bitnet-b1.58.embedding_length"};
    for (int k = 0; k < 5; k++) {
        bn_gguf_str key = bn_gguf_kv_key(g, k);
        assert_true(key.len == strlen(first[k]) && !memcmp(key.ptr, first[k], key.len));
    }
    bn_gguf_str last = bn_gguf_kv_key(g, bn_gguf_n_kv(g) - 1);
    assert_true(last.len == 28 && !memcmp(last.ptr, "general.quantization_version", 28));
    assert_int_equal(bn_gguf_n_kv(g), 24); /* Microsoft's file has 24 keys */
    bn_gguf_free(g);

    /* the converted vocabulary tokenizes as tokenizer.json itself does */
    bitnet_model *m;
    assert_int_equal(bitnet_model_load(P("l3.gguf"), NULL, &m), BITNET_OK);
    bitnet_tokenizer *ref;
    char tj[600];
    snprintf(tj, sizeof tj, "%s/tokenizer/tokenizer.json", BITNET_TEST_DATA);
    assert_int_equal(bitnet_tokenizer_load(tj, BITNET_PRETOK_AUTO, &ref), BITNET_OK);
    const char *texts[] = {"In the beginning God created the heaven and the earth.", "  spaces\n\n and 12345 numbers",
                           "<|eot_id|> caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd don't"};
    for (int k = 0; k < 3; k++) {
        bitnet_token a[128], c[128];
        size_t na, nc;
        assert_int_equal(bitnet_tokenize(bitnet_model_tokenizer(m), texts[k], strlen(texts[k]),
                                         BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, a, 128, &na),
                         BITNET_OK);
        assert_int_equal(bitnet_tokenize(ref, texts[k], strlen(texts[k]),
                                         BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, c, 128, &nc),
                         BITNET_OK);
        assert_int_equal(na, nc);
        assert_memory_equal(a, c, na * sizeof a[0]);
        assert_int_equal(a[0], 128000);
    }
    bitnet_tokenizer_free(ref);
    bitnet_model_free(m);
}

/* The tiny KJV model's Hugging Face folders (models/<name>/config.json; float and packed
 * variants), when present: every variant and type holds the same ternary weights, the folder
 * evaluates to exactly the I2_S file's logits, and TQ files pick the same tokens. */
static int tiny_dirs(char dirs[4][600])
{
    int n = 0;
    DIR *d = opendir(BITNET_SOURCE_DIR "/models");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4) {
        char cfg[700];
        struct stat sb;
        snprintf(dirs[n], 600, "%s/models/%s", BITNET_SOURCE_DIR, e->d_name);
        snprintf(cfg, sizeof cfg, "%s/config.json", dirs[n]);
        if (e->d_name[0] != '.' && strstr(e->d_name, "tiny") && stat(cfg, &sb) == 0) n++;
    }
    closedir(d);
    return n;
}

/* A folder holding model-packed.safetensors beside model.safetensors (the tiny model ships both
 * forms) also yields a folder whose model.safetensors is the packed file, made of symlinks. */
static void add_packed_variant(char dirs[4][600], int *n)
{
    int n0 = *n;
    for (int v = 0; v < n0 && *n < 4; v++) {
        char src[4096], dst[4096]; /* ample: the compiler cannot bound dirs[v] */
        struct stat sb;
        snprintf(src, sizeof src, "%s/model-packed.safetensors", dirs[v]);
        if (stat(src, &sb) != 0) continue;
        char *dir = dirs[*n];
        snprintf(dir, 600, "%.500s/packed%d", tmpdir, v);
        mkdir(dir, 0755);
        static const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"};
        for (int k = 0; k < 4; k++) {
            snprintf(src, sizeof src, "%s/%s", dirs[v], files[k]);
            snprintf(dst, sizeof dst, "%s/%s", dir, files[k]);
            if (stat(src, &sb) == 0) assert_int_equal(symlink(src, dst), 0);
        }
        snprintf(src, sizeof src, "%s/model-packed.safetensors", dirs[v]);
        snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
        assert_int_equal(symlink(src, dst), 0);
        (*n)++;
    }
}

static void test_tiny_model(void **state)
{
    (void)state;
    char dirs[4][600];
    int n = tiny_dirs(dirs);
    if (n == 0) skip();
    add_packed_variant(dirs, &n);
    /* the GGUF file exported beside it (by the training scripts) holds the same ternary values */
    bn_gguf *shipped = NULL;
    if (bn_gguf_open(BITNET_SOURCE_DIR "/models/bitnet-kjv-tiny.gguf", &shipped) != BN_OK) shipped = NULL;
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ1_0, BN_TYPE_TQ2_0};
    bn_gguf *ref = NULL;
    bitnet_token toks[12] = {0};
    for (int v = 0; v < n; v++) {
        bn_gguf *g[3];
        for (int k = 0; k < 3; k++) {
            char out[64];
            snprintf(out, sizeof out, "tiny%d-%d.gguf", v, k);
            if (convert(dirs[v], types[k], BN_TYPE_F16, P(out))) fail_msg("%s", bn_last_error());
            assert_int_equal(bn_gguf_open(P(out), &g[k]), BN_OK);
        }
        if (!ref) assert_int_equal(bn_gguf_open(P("tiny0-0.gguf"), &ref), BN_OK);
        for (int64_t i = 0; i < bn_gguf_n_tensors(g[0]); i++) {
            const bn_gguf_tensor *t = bn_gguf_tensor_at(g[0], i);
            if (t->type != BN_TYPE_I2_S) continue;
            char name[96];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            float s0, s1, s2, sr;
            int8_t *c0 = codes_of(g[0], name, &s0), *c1 = codes_of(g[1], name, &s1), *c2 = codes_of(g[2], name, &s2);
            int8_t *cr = codes_of(ref, name, &sr); /* the first variant's */
            assert_memory_equal(c0, c1, (size_t)t->n_elem);
            assert_memory_equal(c0, c2, (size_t)t->n_elem);
            assert_memory_equal(c0, cr, (size_t)t->n_elem);
            if (s0 != sr) fail_msg("%s: scale %.9g in %s but %.9g in %s", name, s0, dirs[v], sr, dirs[0]);
            if (shipped) {
                float ss;
                int8_t *cs = codes_of(shipped, name, &ss);
                assert_memory_equal(c0, cs, (size_t)t->n_elem);
                /* absmean's scale there, its float round trip 1/(1/scale) here: one ulp at most */
                if (fabsf(s0 - ss) > 2e-7f * ss) fail_msg("%s: scale %.9g but %.9g in the shipped GGUF", name, s0, ss);
                free(cs);
            }
            free(c0);
            free(c1);
            free(c2);
            free(cr);
        }
        for (int k = 0; k < 3; k++) bn_gguf_free(g[k]);

        bitnet_model *hf, *m[3];
        assert_int_equal(bitnet_model_load(dirs[v], NULL, &hf), BITNET_OK);
        const char *text = "In the beginning God created the heaven and the earth. And the earth was";
        size_t nt;
        assert_int_equal(bitnet_tokenize(bitnet_model_tokenizer(hf), text, strlen(text), BITNET_TOKENIZE_ADD_BOS, toks, 12, &nt),
                         BITNET_ERR_RANGE); /* the first 12 tokens are enough */
        bitnet_context_params cp;
        bitnet_context_params_default(&cp);
        cp.n_ctx = 64;
        cp.n_threads = 1;
        bitnet_context *ch, *c[3];
        assert_int_equal(bitnet_context_init(hf, &cp, &ch), BITNET_OK);
        assert_int_equal(bitnet_eval(ch, toks, 12, true), BITNET_OK);
        bitnet_model_info info;
        assert_int_equal(bitnet_model_info_get(hf, &info), BITNET_OK);
        for (int k = 0; k < 3; k++) {
            char out[64];
            snprintf(out, sizeof out, "tiny%d-%d.gguf", v, k);
            assert_int_equal(bitnet_model_load(P(out), NULL, &m[k]), BITNET_OK);
            assert_int_equal(bitnet_context_init(m[k], &cp, &c[k]), BITNET_OK);
            assert_int_equal(bitnet_eval(c[k], toks, 12, true), BITNET_OK);
        }
        for (int i = 0; i < 12; i++) {
            const float *lh = bitnet_get_logits(ch, i);
            assert_memory_equal(lh, bitnet_get_logits(c[0], i), (size_t)info.n_vocab * sizeof(float));
            int best[3] = {0, 0, 0};
            for (int k = 0; k < 3; k++) {
                const float *l = bitnet_get_logits(c[k], i);
                for (int t = 1; t < info.n_vocab; t++)
                    if (l[t] > l[best[k]]) best[k] = t;
            }
            assert_int_equal(best[0], best[1]);
            assert_int_equal(best[0], best[2]);
        }
        for (int k = 0; k < 3; k++) {
            bitnet_context_free(c[k]);
            bitnet_model_free(m[k]);
        }
        bitnet_context_free(ch);
        bitnet_model_free(hf);
    }
    bn_gguf_free(ref);
    bn_gguf_free(shipped);
}

/* `test_hf_model --make-model DIR [packed]` writes a synthetic folder for the CLI script test. */
int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--make-model")) {
        model_opts mo = {.packed = argc >= 4 && !strcmp(argv[3], "packed")};
        make_model(argv[2], &mo);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_convert_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_and_sharded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embed_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_llama_and_bitnet_archs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untied_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spm_tokenizer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_load_and_requant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ternary_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_llama3_tokenizer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
