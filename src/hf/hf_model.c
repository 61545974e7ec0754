/* Hugging Face model folder -> GGUF (see hf_model.h). */
#include "hf/hf_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/file.h"
#include "common/fp16.h"
#include "common/mem.h"
#include "hf/hf_parallel.h"
#include "quant/quant.h"
#include "safetensors/safetensors.h"
#include "tokenizer/tokenizer.h"

void bn_convert_opts_default(bn_convert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->weight_type = BN_TYPE_I2_S;
    o->embed_type = BN_CONVERT_TYPE_AUTO;
}

uint32_t bn_file_type_for(uint32_t weight_type)
{
    switch (weight_type) {
    case BN_TYPE_I2_S: return 40;
    case BN_TYPE_TQ1_0: return 36;
    case BN_TYPE_TQ2_0: return 37;
    default: return 0;
    }
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = bn_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

bool bn_hf_is_model_dir(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

#if BITNET_WITH_HF
#include <cjson/cJSON.h>

/* ---- JSON helpers ---------------------------------------------------------------------------- */

/* Parses dir/name; *out = NULL (and BN_OK) when the file is absent and !required. */
static bn_status read_json(const char *dir, const char *name, bool required, cJSON **out)
{
    *out = NULL;
    char *p = path_join(dir, name);
    if (!p) return BN_ERR_NOMEM;
    struct stat sb;
    if (stat(p, &sb) != 0) {
        bn_free(p);
        return required ? bn_error(BN_ERR_NOT_FOUND, "%s: %s is missing", dir, name) : BN_OK;
    }
    bn_mapfile mf;
    bn_status st = bn_mapfile_open(&mf, p);
    bn_free(p);
    if (st) return st;
    *out = cJSON_ParseWithLength((const char *)mf.data, mf.size);
    if (!*out) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= (const char *)mf.data && at <= (const char *)mf.data + mf.size
                         ? (size_t)(at - (const char *)mf.data)
                         : 0;
        bn_mapfile_close(&mf);
        return bn_error(BN_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", name, off);
    }
    bn_mapfile_close(&mf);
    return BN_OK;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* An integer field: absent -> dflt (or an error if dflt < 0, meaning required). */
static bn_status jint(const cJSON *o, const char *file, const char *k, long dflt, long lo, long hi, long *out)
{
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) {
        if (dflt < 0) return bn_error(BN_ERR_FORMAT, "%s: \"%s\" is missing", file, k);
        *out = dflt;
        return BN_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi)
        return bn_error(BN_ERR_FORMAT, "%s: \"%s\" must be an integer in [%ld, %ld]", file, k, lo, hi);
    *out = (long)v->valuedouble;
    return BN_OK;
}

static bn_status jfloat(const cJSON *o, const char *file, const char *k, double dflt, double *out)
{
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return BN_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) return bn_error(BN_ERR_FORMAT, "%s: \"%s\" must be a positive number", file, k);
    *out = v->valuedouble;
    return BN_OK;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static const char *token_content(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    return jstr(v, "content");
}

/* ---- the conversion ---------------------------------------------------------------------------- */

typedef enum job_kind {
    JOB_NORM,    /* float vector -> F32 */
    JOB_FLOAT,   /* float matrix -> embed_type (rows in chunks) */
    JOB_TERNARY, /* float master or packed -> ternary type */
} job_kind;

typedef struct hf_job {
    struct bn_hf_conv *c;
    job_kind kind;
    const bn_st_tensor *src;
    const bn_st_tensor *scale; /* packed weights' weight_scale */
    uint32_t type;
    int64_t ne0, ne1; /* GGUF: ne0 = row length (input), ne1 = rows */
    int perm_heads;   /* llama Q/K: rows are permuted for rope on adjacent pairs (0: none) */
} hf_job;

typedef enum hf_arch { ARCH_B158, ARCH_BITNET, ARCH_LLAMA } hf_arch;

typedef struct hf_hparams {
    hf_arch arch;
    const char *arch_name;
    long n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    double eps, theta;
    bool tied;
} hf_hparams;

struct bn_hf_conv {
    bn_convert_opts o;
    bn_safetensors *st;
    bn_gguf_writer *w;
    hf_job *jobs;
    int n_jobs, cap_jobs;
    uint64_t done, total;
    hf_hparams hp;
    bool *used; /* per safetensors tensor: consumed by a job */
    bn_threadpool *tp; /* o.n_threads workers for the tensors' conversion */
    /* one linear weight's float copy and codes, kept from tensor to tensor: allocating them anew
     * each time costs the kernel a page fault and a zeroed page every 4 KiB */
    float *wbuf;
    int8_t *tbuf;
    size_t wcap, tcap; /* elements */
};

/* buf with room for n elements of size each (contents not kept) */
static void *reserve(void **buf, size_t *cap, size_t n, size_t size)
{
    if (*cap >= n) return *buf;
    bn_free(*buf);
    *buf = bn_malloc(n * size);
    *cap = *buf ? n : 0;
    return *buf;
}

void bn_hf_conv_free(bn_hf_conv *c)
{
    if (!c) return;
    bn_gguf_writer_free(c->w);
    bn_st_free(c->st);
    bn_free(c->jobs);
    bn_free(c->used);
    bn_threadpool_free(c->tp);
    bn_free(c->wbuf);
    bn_free(c->tbuf);
    bn_free(c);
}

bn_gguf_writer *bn_hf_conv_writer(bn_hf_conv *c) { return c ? c->w : NULL; }

static bn_status report(bn_hf_conv *c, const hf_job *j)
{
    c->done += (uint64_t)(j->ne0 * j->ne1);
    if (c->o.progress && !c->o.progress(c->o.user, c->done, c->total))
        return bn_error(BN_ERR_CANCELLED, "conversion cancelled");
    return BN_OK;
}

/* Reads the scalar weight_scale of a packed tensor. */
static bn_status packed_scale(const hf_job *j, float *out)
{
    const bn_st_tensor *s = j->scale;
    if (s->n_elem < 1) return bn_error(BN_ERR_FORMAT, "tensor '%s' is empty", s->name);
    float first;
    bn_status st = bn_st_read_f32(s, 0, 1, &first);
    if (st) return st;
    for (int64_t i = 1; i < s->n_elem; i++) {
        /* one scale per tensor is what ternary GGUF types hold */
        float v;
        if ((st = bn_st_read_f32(s, i, 1, &v))) return st;
        if (v != first)
            return bn_error(BN_ERR_UNSUPPORTED, "tensor '%s' holds %lld different scales; only one per tensor is supported",
                            s->name, (long long)s->n_elem);
    }
    if (!(first > 0) || !isfinite(first))
        return bn_error(BN_ERR_FORMAT, "tensor '%s' is %g; a weight_scale must be positive", s->name, (double)first);
    *out = 1.0f / first;
    return BN_OK;
}

/* ---- producing one tensor on the pool's threads --------------------------------------------- */

/* Every piece of work below is cut into fixed-size pieces that the threads share out
 * (bn_parallel_ranges); whatever is gathered over a whole tensor is kept per piece and combined in
 * piece order, so the file is the same for every thread count. */

/* What one chunk of a float master weight holds: its first nonzero magnitude and whether all its
 * nonzero magnitudes are equal. */
typedef struct mag_scan {
    float mag;
    bool single;
} mag_scan;

typedef struct tern_task {
    const hf_job *j;
    int64_t n;
    float *w;        /* the tensor's float copy (master weights) */
    int8_t *t;       /* its ternary codes */
    double *sums;    /* sum|W| per BN_ABSMEAN_CHUNK elements */
    mag_scan *scan;  /* per chunk */
    bool single;     /* already ternary times one magnitude: keep the signs */
    float scale;     /* absmean's, when !single */
    const float *scales;
    void *dst;
} tern_task;

/* Unpacks packed rows [lo, hi) of Microsoft's layout into codes -1/0/+1 (rows = 4 x packed rows). */
static bn_status unpack_rows(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    tern_task *k = arg;
    const hf_job *j = k->j;
    const uint8_t *p = j->src->data;
    int64_t R = j->src->shape[0], K = j->ne0;
    for (int64_t r = lo; r < hi; r++)
        for (int64_t i = 0; i < K; i++) {
            unsigned b = p[r * K + i];
            for (int q = 0; q < 4; q++) {
                unsigned code = (b >> (2 * q)) & 3;
                if (code == 3)
                    return bn_error(BN_ERR_FORMAT, "tensor '%s': packed byte [%lld, %lld] holds the invalid code 3",
                                    j->src->name, (long long)r, (long long)i);
                k->t[((int64_t)q * R + r) * K + i] = (int8_t)((int)code - 1);
            }
        }
    return BN_OK;
}

/* Pieces for work whose result does not depend on how it is cut: at most cap items, and small
 * enough that a small tensor still gives every thread a few. */
static int64_t piece_size(int64_t n, int64_t cap, const bn_threadpool *tp)
{
    int64_t want = 4 * (int64_t)bn_threadpool_size(tp), g = (n + want - 1) / want;
    if (g > cap) g = cap;
    return g > 0 ? g : 1;
}

/* One chunk [lo, hi) of master weights to float, summed, checked finite, and scanned for a
 * single magnitude. */
static bn_status read_and_scan(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    tern_task *k = arg;
    const float *w = k->w;
    bn_status st = bn_st_read_f32(k->j->src, lo, hi - lo, k->w + lo);
    if (st) return st;
    double sum = bn_abs_sum(w + lo, hi - lo);
    /* finite iff every element is (a double cannot overflow on a chunk of floats) */
    if (!isfinite(sum))
        for (int64_t i = lo; i < hi; i++)
            if (!isfinite(w[i]))
                return bn_error(BN_ERR_FORMAT, "tensor '%s' element %lld is not finite", k->j->src->name, (long long)i);
    k->sums[lo / BN_ABSMEAN_CHUNK] = sum;
    /* real master weights differ within a few elements, so this stops almost at once */
    mag_scan s = {0, true};
    for (int64_t i = lo; i < hi && s.single; i++) {
        float a = fabsf(w[i]);
        if (a == 0) continue;
        if (s.mag == 0) s.mag = a;
        else if (a != s.mag) s.single = false;
    }
    k->scan[lo / BN_ABSMEAN_CHUNK] = s;
    return BN_OK;
}

static bn_status codes_of_range(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    tern_task *k = arg;
    if (k->single)
        for (int64_t i = lo; i < hi; i++) k->t[i] = (int8_t)(k->w[i] > 0 ? 1 : k->w[i] < 0 ? -1 : 0);
    else
        bn_ternarize_scaled(k->w + lo, hi - lo, k->scale, k->t + lo);
    return BN_OK;
}

static bn_status encode_range(void *arg, int64_t lo, int64_t hi, int ith)
{
    (void)ith;
    tern_task *k = arg;
    return bn_ternary_encode_range(k->j->type, k->t, k->scales, k->n, lo, hi - lo, k->dst);
}

/* Float master weights -> codes and one scale.  Weights that are already ternary times a single
 * magnitude (fake-quantised exports) keep that magnitude; real master weights get absmean. */
static bn_status ternarize(tern_task *k, float *scale)
{
    const hf_job *j = k->j;
    bn_threadpool *tp = j->c->tp;
    int64_t n = k->n, n_chunks = (n + BN_ABSMEAN_CHUNK - 1) / BN_ABSMEAN_CHUNK;
    k->w = reserve((void **)&j->c->wbuf, &j->c->wcap, (size_t)n, sizeof(float));
    k->sums = bn_malloc((size_t)n_chunks * sizeof(double));
    k->scan = bn_malloc((size_t)n_chunks * sizeof *k->scan);
    bn_status st = k->w && k->sums && k->scan ? BN_OK : BN_ERR_NOMEM;
    if (!st) st = bn_parallel_ranges(tp, n, BN_ABSMEAN_CHUNK, read_and_scan, k);
    if (!st) {
        float mag = 0;
        bool single = true;
        for (int64_t i = 0; i < n_chunks; i++) {
            single = single && k->scan[i].single;
            if (k->scan[i].mag == 0) continue;
            if (mag == 0) mag = k->scan[i].mag;
            else if (k->scan[i].mag != mag) single = false;
        }
        k->single = single && mag > 0;
        if (k->single) {
            *scale = mag;
        } else {
            double sum = 0;
            for (int64_t c = 0; c < n_chunks; c++) sum += k->sums[c];
            k->scale = bn_absmean_scale(sum, n); /* what bn_ternarize_absmean gives */
            /* bitnet.cpp's pipeline stores the fake-quantised weights in f32 (t * (1/s) with
             * s = 1/scale) and takes their magnitude as the scale: reproduce that rounding */
            *scale = 1.0f / (1.0f / k->scale);
        }
        st = bn_parallel_ranges(tp, n, BN_ABSMEAN_CHUNK, codes_of_range, k);
    }
    bn_free(k->sums);
    bn_free(k->scan);
    return st;
}

/* llama.cpp's Q/K permutation for "llama": within each head, row (j * hd/2 + i) moves to
 * (2i + j), so rope on adjacent pairs equals HF's rotate-half. */
static bn_status permute_rows(const hf_job *j, int8_t *t)
{
    int64_t rows = j->ne1, K = j->ne0, hd = rows / j->perm_heads;
    int8_t *tmp = bn_malloc((size_t)(hd * K));
    if (!tmp) return BN_ERR_NOMEM;
    for (int64_t h = 0; h < j->perm_heads; h++) {
        int8_t *head = t + h * hd * K;
        memcpy(tmp, head, (size_t)(hd * K));
        for (int64_t i = 0; i < hd / 2; i++)
            for (int64_t s = 0; s < 2; s++) memcpy(head + (2 * i + s) * K, tmp + (s * (hd / 2) + i) * K, (size_t)K);
    }
    bn_free(tmp);
    return BN_OK;
}

static bn_status fill_ternary(hf_job *j, void *dst)
{
    tern_task k = {.j = j, .n = j->ne0 * j->ne1, .dst = dst};
    k.t = reserve((void **)&j->c->tbuf, &j->c->tcap, (size_t)k.n, 1);
    if (!k.t) return BN_ERR_NOMEM;
    float scale = 0;
    bn_status st = j->scale ? packed_scale(j, &scale) : BN_OK;
    /* packed rows (4 x ne0 codes each) in pieces of a chunk's codes at most */
    int64_t R = j->src->shape[0], prows = piece_size(R, BN_ABSMEAN_CHUNK / (4 * j->ne0), j->c->tp);
    if (!st) st = j->scale ? bn_parallel_ranges(j->c->tp, R, prows, unpack_rows, &k) : ternarize(&k, &scale);
    if (!st && j->perm_heads) st = permute_rows(j, k.t);
    if (!st) {
        int64_t nb = j->type == BN_TYPE_I2_S ? 1 : k.n / 256;
        float *scales = bn_malloc((size_t)nb * sizeof(float));
        if (!scales) st = BN_ERR_NOMEM;
        else {
            for (int64_t b = 0; b < nb; b++) scales[b] = scale;
            k.scales = scales;
            /* whole blocks of every ternary type */
            st = bn_parallel_ranges(j->c->tp, k.n, BN_ABSMEAN_CHUNK, encode_range, &k);
            bn_free(scales);
        }
    }
    return st;
}

typedef struct float_task {
    const hf_job *j;
    uint8_t *dst;
    size_t row_bytes;
    int64_t chunk; /* rows converted at a time */
    float **bufs;  /* per thread, chunk rows of floats, allocated by the thread on first use */
} float_task;

/* Rows [lo, hi) (a chunk) to the embedding type through this thread's buffer. */
static bn_status float_rows(void *arg, int64_t lo, int64_t hi, int ith)
{
    float_task *f = arg;
    const hf_job *j = f->j;
    const bn_st_tensor *s = j->src;
    if (!f->bufs[ith] && !(f->bufs[ith] = bn_malloc((size_t)(f->chunk * j->ne0) * sizeof(float)))) return BN_ERR_NOMEM;
    size_t esize = bn_st_dtype_size(s->dtype);
    bn_status st = bn_st_read_f32(s, lo * j->ne0, (hi - lo) * j->ne0, f->bufs[ith]);
    if (!st) st = bn_quantize(j->type, f->bufs[ith], hi - lo, j->ne0, f->dst + (size_t)lo * f->row_bytes);
    bn_st_release_range(s, (size_t)(lo * j->ne0) * esize, (size_t)((hi - lo) * j->ne0) * esize);
    return st;
}

static bn_status fill_float(hf_job *j, uint8_t *dst)
{
    const bn_st_tensor *s = j->src;
    /* same 16-bit format in and out: copy the bits */
    if ((j->type == BN_TYPE_F16 && s->dtype == BN_ST_F16) || (j->type == BN_TYPE_BF16 && s->dtype == BN_ST_BF16)) {
        memcpy(dst, s->data, s->nbytes);
        return BN_OK;
    }
    float_task f = {.j = j, .dst = dst};
    if (!bn_type_row_nbytes(j->type, j->ne0, &f.row_bytes))
        return bn_error(BN_ERR_UNSUPPORTED, "tensor '%s': rows of %lld elements cannot be stored as %s", s->name,
                        (long long)j->ne0, bn_type_name(j->type));
    f.chunk = piece_size(j->ne1, (1 << 20) / j->ne0 + 1, j->c->tp); /* 4 MiB of floats at most */
    int nth = bn_threadpool_size(j->c->tp);
    f.bufs = bn_calloc((size_t)nth, sizeof *f.bufs);
    if (!f.bufs) return BN_ERR_NOMEM;
    bn_status st = bn_parallel_ranges(j->c->tp, j->ne1, f.chunk, float_rows, &f);
    for (int i = 0; i < nth; i++) bn_free(f.bufs[i]);
    bn_free(f.bufs);
    return st;
}

static bn_status fill(void *user, void *dst, size_t nbytes)
{
    (void)nbytes;
    hf_job *j = user;
    bn_status st;
    switch (j->kind) {
    case JOB_NORM: st = bn_st_read_f32(j->src, 0, j->ne0, dst); break;
    case JOB_FLOAT: st = fill_float(j, dst); break;
    default: st = fill_ternary(j, dst); break;
    }
    bn_st_release(j->src); /* done with these pages: keep the resident set to one tensor */
    if (!st) st = report(j->c, j);
    return st;
}

/* ---- config.json ------------------------------------------------------------------------------ */

static bn_status read_config(const cJSON *cfg, hf_hparams *hp)
{
    const char *F = "config.json";
    const cJSON *archs = jget(cfg, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    const char *arch = cJSON_IsString(a0) ? a0->valuestring : NULL;
    const char *model_type = jstr(cfg, "model_type");
    if (!arch && model_type && !strcmp(model_type, "bitnet")) arch = "BitNetForCausalLM";
    if (!arch) return bn_error(BN_ERR_FORMAT, "%s: no \"architectures\" list", F);
    const cJSON *qc = jget(cfg, "quantization_config");
    const char *qm = jstr(qc, "quant_method");
    if (!strcmp(arch, "BitNetForCausalLM")) {
        hp->arch = ARCH_B158;
        hp->arch_name = "bitnet-b1.58";
    } else if (!strcmp(arch, "BitnetForCausalLM")) {
        hp->arch = ARCH_BITNET;
        hp->arch_name = "bitnet";
    } else if (!strcmp(arch, "LlamaForCausalLM")) {
        if (!qm || strcmp(qm, "bitnet"))
            return bn_error(BN_ERR_UNSUPPORTED,
                            "%s: LlamaForCausalLM without a BitNet quantization_config (quant_method \"bitnet\") is "
                            "not a ternary model",
                            F);
        hp->arch = ARCH_LLAMA;
        hp->arch_name = "llama";
    } else {
        return bn_error(BN_ERR_UNSUPPORTED,
                        "%s: architecture %.60s is not supported (BitNetForCausalLM, BitnetForCausalLM, "
                        "LlamaForCausalLM with BitNet quantization)",
                        F, arch);
    }
    bn_status st;
    const long BIG = 1L << 24;
    if ((st = jint(cfg, F, "hidden_size", -1, 1, BIG, &hp->n_embd)) ||
        (st = jint(cfg, F, "intermediate_size", -1, 1, BIG, &hp->n_ff)) ||
        (st = jint(cfg, F, "num_hidden_layers", -1, 1, 4096, &hp->n_layer)) ||
        (st = jint(cfg, F, "num_attention_heads", -1, 1, 65536, &hp->n_head)) ||
        (st = jint(cfg, F, "num_key_value_heads", hp->n_head, 1, 65536, &hp->n_head_kv)) ||
        (st = jint(cfg, F, "vocab_size", -1, 1, 1L << 27, &hp->n_vocab)) ||
        (st = jint(cfg, F, "max_position_embeddings", 2048, 1, 1L << 30, &hp->n_ctx)) ||
        (st = jfloat(cfg, F, "rms_norm_eps", 1e-6, &hp->eps)) || (st = jfloat(cfg, F, "rope_theta", 10000.0, &hp->theta)))
        return st;
    if (hp->n_embd % hp->n_head)
        return bn_error(BN_ERR_FORMAT, "%s: hidden_size %ld is not a multiple of num_attention_heads %ld", F, hp->n_embd,
                        hp->n_head);
    if (hp->n_head % hp->n_head_kv)
        return bn_error(BN_ERR_FORMAT, "%s: num_attention_heads %ld is not a multiple of num_key_value_heads %ld", F,
                        hp->n_head, hp->n_head_kv);
    long hd = hp->n_embd / hp->n_head, v;
    if ((st = jint(cfg, F, "head_dim", hd, 1, BIG, &v))) return st;
    if (v != hd)
        return bn_error(BN_ERR_UNSUPPORTED, "%s: head_dim %ld differs from hidden_size / num_attention_heads (%ld)", F, v, hd);
    if (hd % 2) return bn_error(BN_ERR_FORMAT, "%s: the head dimension %ld is odd", F, hd);
    const cJSON *rs = jget(cfg, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) return bn_error(BN_ERR_UNSUPPORTED, "%s: rope_scaling is not supported", F);
    if (cJSON_IsTrue(jget(cfg, "attention_bias")) || cJSON_IsTrue(jget(cfg, "mlp_bias")))
        return bn_error(BN_ERR_UNSUPPORTED, "%s: linear biases are not supported", F);
    const char *act = jstr(cfg, "hidden_act");
    if (hp->arch == ARCH_B158 && act && strcmp(act, "relu2"))
        return bn_error(BN_ERR_UNSUPPORTED, "%s: BitNetForCausalLM with hidden_act \"%.20s\" (only relu2)", F, act);
    if (hp->arch != ARCH_B158 && act && strcmp(act, "silu"))
        return bn_error(BN_ERR_UNSUPPORTED, "%s: %s with hidden_act \"%.20s\" (only silu)", F, arch, act);
    /* when absent, decided later by whether there is an lm_head */
    hp->tied = cJSON_IsTrue(jget(cfg, "tie_word_embeddings"));
    return BN_OK;
}

/* ---- tokenizer -------------------------------------------------------------------------------- */

static const char LLAMA3_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                   "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static bool is_type(const cJSON *o, const char *type)
{
    const char *t = jstr(o, "type");
    return t && !strcmp(t, type);
}

/* The pre-tokenizer's name for tokenizer.ggml.pre ("llama-bpe", "gpt2"), or an error. */
static bn_status pretok_name(const cJSON *pre, const char **out)
{
    const cJSON *split = NULL, *bytelevel = NULL, *it;
    if (is_type(pre, "Sequence")) {
        cJSON_ArrayForEach(it, jget(pre, "pretokenizers"))
        {
            if (is_type(it, "Split") && !split) split = it;
            else if (is_type(it, "ByteLevel") && !bytelevel) bytelevel = it;
            else return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: unsupported pre-tokenizer step \"%.30s\"", jstr(it, "type") ? jstr(it, "type") : "?");
        }
    } else if (is_type(pre, "ByteLevel")) {
        bytelevel = pre;
    }
    if (!bytelevel) return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: only byte-level BPE tokenizers are supported");
    if (split) {
        const char *re = jstr(jget(split, "pattern"), "Regex");
        if (re && !strcmp(re, LLAMA3_REGEX)) *out = "llama-bpe";
        else if (re && !strcmp(re, GPT2_REGEX)) *out = "gpt2";
        else return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: the split expression is not Llama-3's or GPT-2's");
        return BN_OK;
    }
    *out = "gpt2";
    return BN_OK;
}

typedef struct tok_data {
    const char **tokens;
    int32_t *types;
    float *scores;
    char **merges;
    size_t n_merges;
    char **owned; /* pad names */
    int32_t n_vocab, n_owned;
    int32_t unk; /* SentencePiece vocabularies */
} tok_data;

static void tok_data_free(tok_data *t)
{
    bn_free(t->tokens);
    bn_free(t->types);
    bn_free(t->scores);
    for (size_t i = 0; i < t->n_merges; i++) bn_free(t->merges[i]);
    bn_free(t->merges);
    for (int32_t i = 0; i < t->n_owned; i++) bn_free(t->owned[i]);
    bn_free(t->owned);
}

static int32_t find_token(const tok_data *t, const char *text)
{
    if (!text) return -1;
    for (int32_t i = t->n_vocab - 1; i >= 0; i--) /* special tokens sit at the end */
        if (t->tokens[i] && !strcmp(t->tokens[i], text)) return i;
    return -1;
}

static bn_status valid_id(const cJSON *v, const char *what, int32_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (double)(1 << 27) ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return bn_error(BN_ERR_FORMAT, "tokenizer.json: %s has a bad id", what);
    *out = (int32_t)v->valuedouble;
    return BN_OK;
}

/* tokenizer.json -> tokens, types, scores, merges (n_vocab at least min_vocab, padded with
 * unused "[PADn]" tokens as llama.cpp's converter does). */
static bn_status read_tokenizer(const cJSON *tj, long min_vocab, tok_data *t)
{
    const cJSON *model = jget(tj, "model");
    if (!is_type(model, "BPE"))
        return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: model type \"%.20s\" (only BPE is supported)",
                        jstr(model, "type") ? jstr(model, "type") : "?");
    const cJSON *vocab = jget(model, "vocab"), *added = jget(tj, "added_tokens"), *it;
    if (!cJSON_IsObject(vocab)) return bn_error(BN_ERR_FORMAT, "tokenizer.json: model.vocab is not an object");
    int32_t max_id = -1, id = 0;
    bn_status st;
    cJSON_ArrayForEach(it, vocab)
    {
        if ((st = valid_id(it, "a vocab entry", &id))) return st;
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(it, added)
    {
        if ((st = valid_id(jget(it, "id"), "an added token", &id))) return st;
        if (!jstr(it, "content")) return bn_error(BN_ERR_FORMAT, "tokenizer.json: added token %d has no content", id);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return bn_error(BN_ERR_FORMAT, "tokenizer.json: the vocabulary is empty");
    int32_t n = max_id + 1 > min_vocab ? max_id + 1 : (int32_t)min_vocab;
    t->n_vocab = n;
    t->tokens = bn_calloc((size_t)n, sizeof *t->tokens);
    t->types = bn_calloc((size_t)n, sizeof *t->types);
    t->scores = bn_calloc((size_t)n, sizeof *t->scores);
    if (!t->tokens || !t->types || !t->scores) return BN_ERR_NOMEM;
    cJSON_ArrayForEach(it, vocab)
    {
        id = (int32_t)it->valuedouble;
        t->tokens[id] = it->string;
        t->types[id] = BN_TOKTYPE_NORMAL;
    }
    cJSON_ArrayForEach(it, added)
    {
        id = (int32_t)jget(it, "id")->valuedouble;
        t->tokens[id] = jstr(it, "content");
        t->types[id] = cJSON_IsTrue(jget(it, "special")) ? BN_TOKTYPE_CONTROL : BN_TOKTYPE_USER_DEFINED;
        if (t->types[id] == BN_TOKTYPE_CONTROL) t->scores[id] = -1000.0f;
    }
    for (int32_t i = 0; i < n; i++) {
        if (t->tokens[i]) continue;
        if (!t->owned && !(t->owned = bn_calloc((size_t)n, sizeof *t->owned))) return BN_ERR_NOMEM;
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%d]", (int)i);
        if (!(t->owned[t->n_owned] = bn_strdup(buf))) return BN_ERR_NOMEM;
        t->tokens[i] = t->owned[t->n_owned++];
        t->types[i] = BN_TOKTYPE_UNUSED;
    }
    const cJSON *merges = jget(model, "merges");
    int nm = cJSON_IsArray(merges) ? cJSON_GetArraySize(merges) : 0;
    if (nm && !(t->merges = bn_calloc((size_t)nm, sizeof *t->merges))) return BN_ERR_NOMEM;
    cJSON_ArrayForEach(it, merges)
    {
        char *m = NULL;
        if (cJSON_IsString(it)) m = bn_strdup(it->valuestring);
        else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                 cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            const char *a = cJSON_GetArrayItem(it, 0)->valuestring, *b = cJSON_GetArrayItem(it, 1)->valuestring;
            size_t la = strlen(a), lb = strlen(b);
            if ((m = bn_malloc(la + lb + 2))) {
                memcpy(m, a, la);
                m[la] = ' ';
                memcpy(m + la + 1, b, lb + 1);
            }
        } else {
            return bn_error(BN_ERR_FORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", t->n_merges);
        }
        if (!m) return BN_ERR_NOMEM;
        t->merges[t->n_merges++] = m;
    }
    return BN_OK;
}

/* SentencePiece-style vocabularies: <0xXX> pieces are BYTE tokens, model.unk_token UNKNOWN,
 * special added tokens (<s>, </s>) CONTROL; merges are implied by scores, which SentencePiece
 * orders like the ids, so a normal piece scores -id. */
static void spm_types(const cJSON *tj, tok_data *t)
{
    const char *unk = jstr(jget(tj, "model"), "unk_token");
    t->unk = -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->tokens[i];
        if (t->types[i] == BN_TOKTYPE_NORMAL) {
            bool byte = strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>';
            t->types[i] = byte ? BN_TOKTYPE_BYTE : BN_TOKTYPE_NORMAL;
            t->scores[i] = byte ? 0.0f : -(float)i;
        }
        if (unk && !strcmp(s, unk)) {
            t->types[i] = BN_TOKTYPE_UNKNOWN;
            t->scores[i] = 0;
            t->unk = i;
        }
    }
}

/* An id from tokenizer_config ("bos_token") or config/generation_config ("bos_token_id"). */
static int32_t special_id(const tok_data *t, const cJSON *tcfg, const char *tok_key, const cJSON *cfg,
                          const cJSON *gcfg, const char *id_key)
{
    int32_t id = find_token(t, token_content(jget(tcfg, tok_key)));
    if (id >= 0) return id;
    const cJSON *srcs[2] = {gcfg, cfg};
    for (int s = 0; s < 2; s++) {
        const cJSON *v = jget(srcs[s], id_key);
        if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0); /* generation_config may list several */
        if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < t->n_vocab) return (int32_t)v->valuedouble;
    }
    return -1;
}

static bool is_llama3_vocab(const tok_data *t)
{
    return t->n_vocab >= 128010 && !strcmp(t->tokens[128000], "<|begin_of_text|>") &&
           !strcmp(t->tokens[128001], "<|end_of_text|>") && !strcmp(t->tokens[128009], "<|eot_id|>");
}

/* ---- keys ---------------------------------------------------------------------------------------- */

static bn_status set_arch_u32(bn_gguf_writer *w, const char *arch, const char *suffix, uint32_t v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return bn_gguf_writer_set_u32(w, key, v);
}

static bn_status set_arch_f32(bn_gguf_writer *w, const char *arch, const char *suffix, float v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return bn_gguf_writer_set_f32(w, key, v);
}

static const char *base_name(const char *dir, char *buf, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    size_t len = n - b < cap - 1 ? n - b : cap - 1;
    memcpy(buf, dir + b, len);
    buf[len] = '\0';
    return buf;
}

/* Metadata in the order of Microsoft's official file (see the format spec, section 2). */
static bn_status write_keys(bn_hf_conv *c, const char *dir, const cJSON *cfg, const cJSON *tj, const cJSON *tcfg,
                            const cJSON *gcfg)
{
    const hf_hparams *hp = &c->hp;
    bn_gguf_writer *w = c->w;
    const char *a = hp->arch_name;
    tok_data t = {.unk = -1};
    const char *pre = NULL;
    /* BPE with byte fallback is SentencePiece's (Llama-2 style, 1bitLLM): GGUF model "llama" */
    bool spm = cJSON_IsTrue(jget(jget(tj, "model"), "byte_fallback"));
    bn_status st = spm ? BN_OK : pretok_name(jget(tj, "pre_tokenizer"), &pre);
    if (!st && !spm) {
        const cJSON *norm = jget(tj, "normalizer");
        if (norm && !cJSON_IsNull(norm))
            st = bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: normalizers are not supported (byte-level BPE has none)");
    }
    if (!st) st = read_tokenizer(tj, hp->n_vocab, &t);
    if (!st && spm) spm_types(tj, &t);
    if (!st && t.n_vocab > hp->n_vocab)
        st = bn_error(BN_ERR_FORMAT, "tokenizer.json has %d tokens but config.json's vocab_size is %ld", t.n_vocab,
                      hp->n_vocab);
    if (st) {
        tok_data_free(&t);
        return st;
    }
    bool llama3 = is_llama3_vocab(&t);
    int32_t bos = special_id(&t, tcfg, "bos_token", cfg, gcfg, "bos_token_id");
    int32_t eos = special_id(&t, tcfg, "eos_token", cfg, gcfg, "eos_token_id");
    int32_t pad = special_id(&t, tcfg, "pad_token", cfg, NULL, "pad_token_id");
    if (pad < 0) pad = eos;
    const cJSON *ab = jget(tcfg, "add_bos_token");
    bool add_bos = cJSON_IsBool(ab) ? cJSON_IsTrue(ab) : bos >= 0;
    const char *tmpl = jstr(tcfg, "chat_template");
    if (!tmpl) { /* a list of named templates: take "default" */
        const cJSON *it;
        cJSON_ArrayForEach(it, jget(tcfg, "chat_template"))
        {
            const char *nm = jstr(it, "name");
            if (nm && !strcmp(nm, "default")) tmpl = jstr(it, "template");
        }
    }
    char name[64];
    const char *model_name = jstr(cfg, "_name_or_path");
    if (!model_name || !*model_name) model_name = base_name(dir, name, sizeof name);
    else model_name = base_name(model_name, name, sizeof name);

    if (!st) st = bn_gguf_writer_set_str(w, "general.architecture", a);
    if (!st) st = bn_gguf_writer_set_str(w, "general.name", model_name);
    if (!st) st = set_arch_u32(w, a, "vocab_size", (uint32_t)hp->n_vocab);
    if (!st) st = set_arch_u32(w, a, "context_length", (uint32_t)hp->n_ctx);
    if (!st) st = set_arch_u32(w, a, "embedding_length", (uint32_t)hp->n_embd);
    if (!st) st = set_arch_u32(w, a, "block_count", (uint32_t)hp->n_layer);
    if (!st) st = set_arch_u32(w, a, "feed_forward_length", (uint32_t)hp->n_ff);
    if (!st) st = set_arch_u32(w, a, "rope.dimension_count", (uint32_t)(hp->n_embd / hp->n_head));
    if (!st) st = set_arch_u32(w, a, "attention.head_count", (uint32_t)hp->n_head);
    if (!st) st = set_arch_u32(w, a, "attention.head_count_kv", (uint32_t)hp->n_head_kv);
    if (!st) st = bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    if (!st) st = set_arch_f32(w, a, "attention.layer_norm_rms_epsilon", (float)hp->eps);
    if (!st) st = set_arch_f32(w, a, "rope.freq_base", (float)hp->theta);
    if (!st) st = bn_gguf_writer_set_u32(w, "general.file_type", bn_file_type_for(c->o.weight_type));
    if (!st) st = bn_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    /* Microsoft's file has no tokenizer.ggml.pre (readers pick Llama-3 splitting for that
     * vocabulary); other vocabularies say which splitting they need */
    if (!st && pre && !(llama3 && !strcmp(pre, "llama-bpe"))) st = bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    if (!st) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.tokens", BN_GGUF_STRING, t.tokens, (uint64_t)t.n_vocab);
    if (!st) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.scores", BN_GGUF_F32, t.scores, (uint64_t)t.n_vocab);
    if (!st) st = bn_gguf_writer_set_array(w, "tokenizer.ggml.token_type", BN_GGUF_I32, t.types, (uint64_t)t.n_vocab);
    if (!st && !spm)
        st = bn_gguf_writer_set_array(w, "tokenizer.ggml.merges", BN_GGUF_STRING, (const char **)t.merges, t.n_merges);
    if (!st && spm && t.unk >= 0) st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t.unk);
    if (!st && bos >= 0) st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (!st && eos >= 0) st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (!st && pad >= 0) st = bn_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    if (!st && tmpl) st = bn_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    if (!st) st = bn_gguf_writer_set_u32(w, "general.quantization_version", 2);
    tok_data_free(&t);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------------ */

static bn_status add_job(bn_hf_conv *c, const char *gguf_name, const hf_job *j)
{
    if (c->n_jobs == c->cap_jobs) return bn_error(BN_ERR_INTERNAL, "hf: job table full");
    hf_job *slot = &c->jobs[c->n_jobs++];
    *slot = *j;
    slot->c = c;
    c->total += (uint64_t)(j->ne0 * j->ne1);
    int64_t ne[2] = {j->ne0, j->ne1};
    bn_status st = bn_gguf_writer_add_tensor_fn(c->w, gguf_name, j->type, j->ne1 > 1 || j->kind != JOB_NORM ? 2 : 1, ne,
                                               fill, slot);
    return st ? bn_error_prefix(st, "%s: ", j->src->name) : BN_OK;
}

static void mark_used(bn_hf_conv *c, const bn_st_tensor *t)
{
    c->used[t - bn_st_tensor_at(c->st, 0)] = true;
}

static const char *shape_str(const bn_st_tensor *t, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int d = 0; d < t->n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

static bn_status need(bn_hf_conv *c, const char *name, const bn_st_tensor **out)
{
    *out = bn_st_find(c->st, name);
    if (!*out) return bn_error(BN_ERR_FORMAT, "tensor '%s' is missing from the checkpoint", name);
    mark_used(c, *out);
    return BN_OK;
}

static bool is_float(const bn_st_tensor *t)
{
    return t->dtype == BN_ST_F32 || t->dtype == BN_ST_F16 || t->dtype == BN_ST_BF16;
}

static bn_status shape_error(const bn_st_tensor *t, const char *expect)
{
    char got[96];
    return bn_error(BN_ERR_FORMAT, "tensor '%s' has shape %s, but config.json implies %s", t->name,
                    shape_str(t, got, sizeof got), expect);
}

static bn_status add_norm(bn_hf_conv *c, const char *hf, const char *gguf, int64_t n)
{
    const bn_st_tensor *t;
    bn_status st = need(c, hf, &t);
    if (st) return st;
    char want[48];
    snprintf(want, sizeof want, "[%lld]", (long long)n);
    if (!is_float(t)) return bn_error(BN_ERR_FORMAT, "tensor '%s' has dtype %s (expected a float type)", hf, bn_st_dtype_name(t->dtype));
    if (t->n_dims != 1 || t->shape[0] != n) return shape_error(t, want);
    hf_job j = {.kind = JOB_NORM, .src = t, .type = BN_TYPE_F32, .ne0 = n, .ne1 = 1};
    return add_job(c, gguf, &j);
}

static bn_status add_float(bn_hf_conv *c, const bn_st_tensor *t, const char *gguf, int64_t rows, int64_t cols)
{
    char want[64];
    snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
    if (!is_float(t)) return bn_error(BN_ERR_FORMAT, "tensor '%s' has dtype %s (expected a float type)", t->name, bn_st_dtype_name(t->dtype));
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) return shape_error(t, want);
    hf_job j = {.kind = JOB_FLOAT, .src = t, .type = c->o.embed_type, .ne0 = cols, .ne1 = rows};
    return add_job(c, gguf, &j);
}

/* A linear weight [rows (out) x cols (in)]: float master weights, or packed U8 [rows/4 x cols]
 * with a sibling "<name>_scale" (weight_scale). */
static bn_status add_linear(bn_hf_conv *c, const char *hf, const char *gguf, int64_t rows, int64_t cols, int perm)
{
    const bn_st_tensor *t;
    bn_status st = need(c, hf, &t);
    if (st) return st;
    char want[96];
    hf_job j = {.kind = JOB_TERNARY, .src = t, .type = c->o.weight_type, .ne0 = cols, .ne1 = rows, .perm_heads = perm};
    char sname[256];
    size_t len = strlen(hf);
    if (len > 7 && !strcmp(hf + len - 7, ".weight")) snprintf(sname, sizeof sname, "%s_scale", hf);
    else snprintf(sname, sizeof sname, "%s.weight_scale", hf);
    j.scale = bn_st_find(c->st, sname);
    if (j.scale) mark_used(c, j.scale);
    if (t->dtype == BN_ST_U8 || t->dtype == BN_ST_I8) {
        if (!j.scale)
            return bn_error(BN_ERR_FORMAT, "tensor '%s' is packed (%s) but '%s' is missing", hf, bn_st_dtype_name(t->dtype),
                            sname);
        if (rows % 4) return bn_error(BN_ERR_FORMAT, "tensor '%s': %lld output rows cannot be packed four per byte", hf, (long long)rows);
        snprintf(want, sizeof want, "[%lld, %lld] (packed from [%lld, %lld])", (long long)rows / 4, (long long)cols,
                 (long long)rows, (long long)cols);
        if (t->n_dims != 2 || t->shape[0] != rows / 4 || t->shape[1] != cols) return shape_error(t, want);
    } else {
        j.scale = NULL; /* float weights carry their own scale */
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
        if (!is_float(t))
            return bn_error(BN_ERR_FORMAT, "tensor '%s' has dtype %s (expected a float type or packed U8)", hf,
                            bn_st_dtype_name(t->dtype));
        if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) return shape_error(t, want);
    }
    int64_t block = c->o.weight_type == BN_TYPE_I2_S ? 128 : 256;
    if (cols % block)
        return bn_error(BN_ERR_UNSUPPORTED, "tensor '%s': rows of %lld elements cannot be stored as %s (needs a multiple of %lld)",
                        hf, (long long)cols, bn_type_name(c->o.weight_type), (long long)block);
    return add_job(c, gguf, &j);
}

static bn_status plan_tensors(bn_hf_conv *c)
{
    const hf_hparams *hp = &c->hp;
    const int64_t d = hp->n_embd, ff = hp->n_ff, dkv = hp->n_embd / hp->n_head * hp->n_head_kv, nv = hp->n_vocab;
    c->cap_jobs = 4 + 11 * (int)hp->n_layer;
    c->jobs = bn_calloc((size_t)c->cap_jobs, sizeof *c->jobs);
    c->used = bn_calloc((size_t)bn_st_n_tensors(c->st) + 1, sizeof *c->used);
    if (!c->jobs || !c->used) return BN_ERR_NOMEM;
    bn_status st;
    const bn_st_tensor *emb, *head = bn_st_find(c->st, "lm_head.weight");
    if ((st = need(c, "model.embed_tokens.weight", &emb))) return st;
    if ((st = add_float(c, emb, "token_embd.weight", nv, d))) return st;
    bool llama = hp->arch == ARCH_LLAMA;
    const char *attn_sub = hp->arch == ARCH_BITNET ? "self_attn.inner_attn_ln" : "self_attn.attn_sub_norm";
    const char *ffn_sub = hp->arch == ARCH_BITNET ? "mlp.ffn_layernorm" : "mlp.ffn_sub_norm";
    for (long i = 0; i < hp->n_layer; i++) {
        char h[160], g[96];
#define HF(fmt) (snprintf(h, sizeof h, "model.layers.%ld." fmt, i), h)
#define GG(fmt) (snprintf(g, sizeof g, "blk.%ld." fmt, i), g)
        if ((st = add_norm(c, HF("input_layernorm.weight"), GG("attn_norm.weight"), d)) ||
            (st = add_linear(c, HF("self_attn.q_proj.weight"), GG("attn_q.weight"), d, d, llama ? (int)hp->n_head : 0)) ||
            (st = add_linear(c, HF("self_attn.k_proj.weight"), GG("attn_k.weight"), dkv, d, llama ? (int)hp->n_head_kv : 0)) ||
            (st = add_linear(c, HF("self_attn.v_proj.weight"), GG("attn_v.weight"), dkv, d, 0)) ||
            (st = add_linear(c, HF("self_attn.o_proj.weight"), GG("attn_output.weight"), d, d, 0)))
            return st;
        if (!llama) {
            char tmp[160];
            snprintf(tmp, sizeof tmp, "model.layers.%ld.%s.weight", i, attn_sub);
            if ((st = add_norm(c, tmp, GG("attn_sub_norm.weight"), d))) return st;
        }
        if ((st = add_norm(c, HF("post_attention_layernorm.weight"), GG("ffn_norm.weight"), d)) ||
            (st = add_linear(c, HF("mlp.gate_proj.weight"), GG("ffn_gate.weight"), ff, d, 0)) ||
            (st = add_linear(c, HF("mlp.up_proj.weight"), GG("ffn_up.weight"), ff, d, 0)) ||
            (st = add_linear(c, HF("mlp.down_proj.weight"), GG("ffn_down.weight"), d, ff, 0)))
            return st;
        if (!llama) {
            char tmp[160];
            snprintf(tmp, sizeof tmp, "model.layers.%ld.%s.weight", i, ffn_sub);
            if ((st = add_norm(c, tmp, GG("ffn_sub_norm.weight"), ff))) return st;
        }
#undef HF
#undef GG
    }
    if ((st = add_norm(c, "model.norm.weight", "output_norm.weight", d))) return st;
    if (head) {
        mark_used(c, head);
        /* a separate head unless config.json ties it to the embeddings */
        if (!c->hp.tied && (st = add_float(c, head, "output.weight", nv, d))) return st;
    }
    /* anything left over means the checkpoint is not what config.json describes */
    for (int64_t i = 0; i < bn_st_n_tensors(c->st); i++) {
        const bn_st_tensor *t = bn_st_tensor_at(c->st, i);
        size_t len = strlen(t->name);
        if (c->used[i] || (len > 18 && !strcmp(t->name + len - 18, "rotary_emb.inv_freq"))) continue;
        return bn_error(BN_ERR_FORMAT, "the checkpoint has tensor '%s', which a %s model with %ld layers does not use",
                        t->name, hp->arch_name, hp->n_layer);
    }
    return BN_OK;
}

bn_status bn_hf_conv_init(const char *dir, const bn_convert_opts *opts, bn_hf_conv **out)
{
    if (!dir || !out) return bn_error(BN_ERR_INVALID_ARG, "hf: NULL argument");
    *out = NULL;
    bn_convert_opts o;
    if (opts) o = *opts;
    else bn_convert_opts_default(&o);
    if (o.embed_type == BN_CONVERT_TYPE_AUTO) o.embed_type = BN_TYPE_F16;
    if (o.weight_type != BN_TYPE_I2_S && o.weight_type != BN_TYPE_TQ1_0 && o.weight_type != BN_TYPE_TQ2_0)
        return bn_error(BN_ERR_INVALID_ARG, "weight type %s is not ternary (I2_S, TQ1_0, TQ2_0)",
                        bn_type_name(o.weight_type) ? bn_type_name(o.weight_type) : "?");
    if (o.embed_type != BN_TYPE_F32 && o.embed_type != BN_TYPE_F16 && o.embed_type != BN_TYPE_BF16 &&
        o.embed_type != BN_TYPE_Q8_0 && o.embed_type != BN_TYPE_Q6_K)
        return bn_error(BN_ERR_INVALID_ARG, "embedding type %s is not one of F32, F16, BF16, Q8_0, Q6_K",
                        bn_type_name(o.embed_type) ? bn_type_name(o.embed_type) : "?");
    bn_status ts = bn_convert_check_threads(o.n_threads);
    if (ts) return ts;
    {
        /* fail now, not after writing most of the file, if the quantizer lacks this type */
        float zero[256] = {0};
        uint8_t probe[1100]; /* 256 floats at most */
        bn_status q = bn_quantize(o.embed_type, zero, 1, 256, probe);
        if (q) return bn_error_prefix(q, "embedding type %s: ", bn_type_name(o.embed_type));
    }
    bn_hf_conv *c = bn_calloc(1, sizeof *c);
    if (!c) return BN_ERR_NOMEM;
    c->o = o;
    cJSON *cfg = NULL, *tj = NULL, *tcfg = NULL, *gcfg = NULL;
    bn_status st = read_json(dir, "config.json", true, &cfg);
    if (!st) st = read_config(cfg, &c->hp);
    if (!st) st = read_json(dir, "tokenizer.json", true, &tj);
    if (!st) st = read_json(dir, "tokenizer_config.json", false, &tcfg);
    if (!st) st = read_json(dir, "generation_config.json", false, &gcfg);
    if (!st) st = bn_st_open_dir(dir, &c->st);
    if (!st) {
        /* tie_word_embeddings absent: tied exactly when there is no lm_head */
        if (!jget(cfg, "tie_word_embeddings")) c->hp.tied = !bn_st_find(c->st, "lm_head.weight");
        st = bn_gguf_writer_init(&c->w);
    }
    if (!st) st = write_keys(c, dir, cfg, tj, tcfg, gcfg);
    if (!st) st = plan_tensors(c);
    if (!st) st = bn_convert_pool_init(o.n_threads, &c->tp);
    cJSON_Delete(cfg);
    cJSON_Delete(tj);
    cJSON_Delete(tcfg);
    cJSON_Delete(gcfg);
    if (st) {
        bn_hf_conv_free(c);
        /* name the folder once (the weights reader names files inside it already) */
        return strncmp(bn_last_error(), dir, strlen(dir)) ? bn_error_prefix(st, "%s: ", dir) : st;
    }
    *out = c;
    return BN_OK;
}

#else /* !BITNET_WITH_HF */

bn_status bn_hf_conv_init(const char *dir, const bn_convert_opts *o, bn_hf_conv **out)
{
    (void)dir;
    (void)o;
    if (out) *out = NULL;
    return bn_error(BN_ERR_UNSUPPORTED, "Hugging Face models need a build with Hugging Face support (cJSON)");
}
bn_gguf_writer *bn_hf_conv_writer(bn_hf_conv *c) { (void)c; return NULL; }
void bn_hf_conv_free(bn_hf_conv *c) { (void)c; }

#endif

bn_status bn_hf_convert_file(const char *dir, const bn_convert_opts *o, const char *out_path)
{
    bn_hf_conv *c;
    bn_status st = bn_hf_conv_init(dir, o, &c);
    if (st) return st;
    st = bn_gguf_writer_write(bn_hf_conv_writer(c), out_path);
    bn_hf_conv_free(c);
    return st;
}

bn_status bn_hf_open_gguf(const char *dir, const bn_convert_opts *o, bn_gguf **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "hf: NULL argument");
    *out = NULL;
    bn_hf_conv *c;
    bn_status st = bn_hf_conv_init(dir, o, &c);
    if (st) return st;
    void *buf = NULL;
    size_t len = 0;
    st = bn_gguf_writer_write_memory(bn_hf_conv_writer(c), &buf, &len);
    bn_hf_conv_free(c);
    if (st) return bn_error_prefix(st, "%s: ", dir);
    st = bn_gguf_open_memory(buf, len, out);
    if (st) {
        bn_aligned_free(buf);
        return bn_error_prefix(st, "%s (converted): ", dir);
    }
    bn_gguf_own_buffer(*out, buf);
    return BN_OK;
}
