/* bitnet info: what a GGUF file holds — architecture, hyper-parameters, tokenizer, file type,
 * tensors and sizes — as text or one JSON object.  Uses only the public API (bitnet.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bitnet.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet info [MODEL.gguf] [--json] [--tensors] [--system]\n"
            "       bitnet info --system [--json]\n"
            "\n"
            "Without MODEL, describes the bundled model (models/bitnet-kjv-tiny.gguf) and says where it\n"
            "was found.\n"
            "\n"
            "Shows what a GGUF file (v2 or v3) holds: architecture, hyper-parameters (the <arch>.* keys),\n"
            "tokenizer summary, file type, other metadata, tensor counts by type, total size and bits\n"
            "per weight.  The file is validated completely first; a malformed file gives exit status 1\n"
            "and a message naming the field and byte offset.\n"
            "\n"
            "options:\n"
            "  --json      print one JSON object instead of text (shape: docs/gguf.md)\n"
            "  --tensors   also list every tensor: name, type, shape, bytes, offset\n"
            "  --system    also (or, without MODEL, only) show this machine: the kernels in use,\n"
            "              the CPU features detected, the number of cores\n"
            "  -h, --help  show this help\n");
}

/* ---- reading metadata ---------------------------------------------------------------------- */

typedef struct info {
    const char *path;
    bitnet_gguf *g;
    char arch[128];
} info;

static bool get_value(const info *in, const char *key, bitnet_gguf_value *v)
{
    int64_t i = bitnet_gguf_kv_find(in->g, key);
    return i >= 0 && bitnet_gguf_kv_value(in->g, i, v) == BITNET_OK;
}

static bool is_int(bitnet_gguf_type t)
{
    return t == BITNET_GGUF_UINT8 || t == BITNET_GGUF_INT8 || t == BITNET_GGUF_UINT16 || t == BITNET_GGUF_INT16 ||
           t == BITNET_GGUF_UINT32 || t == BITNET_GGUF_INT32 || t == BITNET_GGUF_UINT64 || t == BITNET_GGUF_INT64;
}

static bool is_signed(bitnet_gguf_type t)
{
    return t == BITNET_GGUF_INT8 || t == BITNET_GGUF_INT16 || t == BITNET_GGUF_INT32 || t == BITNET_GGUF_INT64;
}

/* An integer key as int64 (false if absent, not an integer, or too large). */
static bool get_int(const info *in, const char *key, int64_t *out)
{
    bitnet_gguf_value v;
    if (!get_value(in, key, &v) || !is_int(v.type)) return false;
    if (is_signed(v.type)) *out = v.i;
    else if (v.u > (uint64_t)INT64_MAX) return false;
    else *out = (int64_t)v.u;
    return true;
}

/* A string key copied into buf (NUL-terminated, cut to fit); false if absent or not a string. */
static bool get_string(const info *in, const char *key, char *buf, size_t cap)
{
    bitnet_gguf_value v;
    if (!get_value(in, key, &v) || v.type != BITNET_GGUF_STRING) return false;
    size_t n = v.str_len < cap - 1 ? (size_t)v.str_len : cap - 1;
    memcpy(buf, v.str, n);
    buf[n] = '\0';
    return true;
}

static uint64_t array_len(const info *in, const char *key, bitnet_gguf_type *elem)
{
    bitnet_gguf_value v;
    if (!get_value(in, key, &v) || v.type != BITNET_GGUF_ARRAY) return 0;
    if (elem) *elem = v.elem_type;
    return v.n_elem;
}

/* Id of the token whose text is `text` (for files that name no eot id), or -1. */
static int64_t find_token(const info *in, const char *text)
{
    bitnet_gguf_value tokens;
    if (!get_value(in, "tokenizer.ggml.tokens", &tokens) || tokens.type != BITNET_GGUF_ARRAY ||
        tokens.elem_type != BITNET_GGUF_STRING)
        return -1;
    size_t len = strlen(text);
    for (uint64_t j = 0; j < tokens.n_elem; j++) {
        bitnet_gguf_value t;
        if (bitnet_gguf_array_get(&tokens, j, &t) == BITNET_OK && t.str_len == len && !memcmp(t.str, text, len))
            return (int64_t)j;
    }
    return -1;
}

/* Text of a string made safe for a terminal (controls escaped) or for JSON (valid UTF-8):
 * bad bytes become U+FFFD.  Cut at `limit` bytes of input with "..." when limit > 0. */
static char *clean_text(const char *s, uint64_t len, bool escape_controls, size_t limit)
{
    bool cut = limit && len > limit;
    size_t n = cut ? limit : (size_t)len;
    char *out = malloc(n * 6 + 8);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = k > 0 && i + k <= n;
        for (size_t j = 1; ok && j < k; j++) ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
        if (ok && k == 2 && c < 0xc2) ok = false; /* overlong */
        if (!ok || c == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        if (escape_controls && c < 0x20) {
            o += (size_t)sprintf(out + o, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\x%02x", c);
            i++;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ---- tensors ------------------------------------------------------------------------------- */

typedef struct type_total {
    uint32_t type;
    int64_t count;
    uint64_t n_elem, bytes;
    bool sized;
} type_total;

typedef struct totals {
    type_total by_type[64];
    int n_types;
    uint64_t n_elem, bytes, unsized;
} totals;

static uint64_t n_elements(const bitnet_gguf_tensor_info *t)
{
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) n *= (uint64_t)t->ne[d]; /* the reader proved the product fits */
    return n;
}

static void count_tensors(const info *in, totals *tot)
{
    memset(tot, 0, sizeof *tot);
    for (int64_t i = 0; i < bitnet_gguf_tensor_count(in->g); i++) {
        bitnet_gguf_tensor_info t;
        if (bitnet_gguf_tensor_info_get(in->g, i, &t) != BITNET_OK) continue;
        type_total *tt = NULL;
        for (int k = 0; k < tot->n_types; k++)
            if (tot->by_type[k].type == t.type) tt = &tot->by_type[k];
        if (!tt && tot->n_types < 64) {
            tt = &tot->by_type[tot->n_types++];
            tt->type = t.type;
            tt->sized = true;
        }
        uint64_t n = n_elements(&t);
        tot->n_elem += n;
        if (t.sized) tot->bytes += t.nbytes;
        else tot->unsized++;
        if (tt) {
            tt->count++;
            tt->n_elem += n;
            tt->bytes += t.nbytes;
            tt->sized = tt->sized && t.sized;
        }
    }
}

static const char *type_label(uint32_t type, char *buf, size_t cap)
{
    const char *n = bitnet_type_name(type);
    if (n) return n;
    snprintf(buf, cap, "type%u", type);
    return buf;
}

static void shape_text(const bitnet_gguf_tensor_info *t, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (uint32_t d = 0; d < t->n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, d ? " x " : "", t->ne[d]);
    if (t->n_dims == 0) snprintf(buf, cap, "scalar");
}

/* ---- text output --------------------------------------------------------------------------- */

static void print_value(const bitnet_gguf_value *v, size_t limit)
{
    switch (v->type) {
    case BITNET_GGUF_BOOL: printf("%s", v->u ? "true" : "false"); break;
    case BITNET_GGUF_FLOAT32: case BITNET_GGUF_FLOAT64: printf("%g", v->f); break;
    case BITNET_GGUF_STRING: {
        char *s = clean_text(v->str, v->str_len, true, limit);
        printf("%s", s ? s : "");
        free(s);
        break;
    }
    case BITNET_GGUF_ARRAY: printf("[%s x %" PRIu64 "]", bitnet_gguf_type_name(v->elem_type), v->n_elem); break;
    default:
        if (is_signed(v->type)) printf("%" PRId64, v->i);
        else printf("%" PRIu64, v->u);
    }
}

static bool has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* Keys shown in their own sections, so "other metadata" leaves them out. */
static bool shown_elsewhere(const info *in, const char *key)
{
    size_t al = strlen(in->arch);
    if (al && !strncmp(key, in->arch, al) && key[al] == '.') return true;
    return has_prefix(key, "tokenizer.") || !strcmp(key, "general.architecture") || !strcmp(key, "general.name") ||
           !strcmp(key, "general.file_type") || !strcmp(key, "general.alignment");
}

static void print_id(const info *in, const char *label, const char *key)
{
    int64_t id;
    if (get_int(in, key, &id)) printf("  %-15s %" PRId64 "\n", label, id);
}

static void print_text(const info *in, bool tensors)
{
    bitnet_gguf *g = in->g;
    char buf[256];
    printf("file:           %s\n", in->path);
    printf("format:         GGUF v%u, alignment %u, %" PRIu64 " bytes, %" PRId64 " keys, %" PRId64 " tensors\n",
           bitnet_gguf_version(g), bitnet_gguf_alignment(g), bitnet_gguf_file_size(g), bitnet_gguf_kv_count(g),
           bitnet_gguf_tensor_count(g));
    printf("architecture:   %s\n", in->arch[0] ? in->arch : "(none)");
    if (get_string(in, "general.name", buf, sizeof buf)) {
        char *s = clean_text(buf, strlen(buf), true, 80);
        printf("name:           %s\n", s ? s : "");
        free(s);
    }
    int64_t ft;
    if (get_int(in, "general.file_type", &ft)) {
        const char *n = ft >= 0 && ft <= UINT32_MAX ? bitnet_file_type_name((uint32_t)ft) : NULL;
        printf("file type:      %" PRId64 " (%s)\n", ft, n ? n : "unknown");
    }

    if (in->arch[0]) {
        printf("\nhyper-parameters (%s.*):\n", in->arch);
        size_t al = strlen(in->arch);
        for (int64_t i = 0; i < bitnet_gguf_kv_count(g); i++) {
            const char *k = bitnet_gguf_kv_key(g, i);
            bitnet_gguf_value v;
            if (strncmp(k, in->arch, al) || k[al] != '.' || bitnet_gguf_kv_value(g, i, &v)) continue;
            printf("  %-40s ", k + al + 1);
            print_value(&v, 60);
            printf("\n");
        }
    }

    bitnet_gguf_type et;
    uint64_t n_tok = array_len(in, "tokenizer.ggml.tokens", &et);
    if (bitnet_gguf_kv_find(g, "tokenizer.ggml.model") >= 0 || n_tok) {
        printf("\ntokenizer:\n");
        if (get_string(in, "tokenizer.ggml.model", buf, sizeof buf)) printf("  %-15s %s\n", "model", buf);
        if (get_string(in, "tokenizer.ggml.pre", buf, sizeof buf)) printf("  %-15s %s\n", "pre-tokenizer", buf);
        printf("  %-15s %" PRIu64 "\n", "tokens", n_tok);
        printf("  %-15s %" PRIu64 "\n", "merges", array_len(in, "tokenizer.ggml.merges", NULL));
        printf("  %-15s %s\n", "scores", array_len(in, "tokenizer.ggml.scores", NULL) ? "yes" : "no");
        print_id(in, "bos id", "tokenizer.ggml.bos_token_id");
        print_id(in, "eos id", "tokenizer.ggml.eos_token_id");
        int64_t eot;
        if (get_int(in, "tokenizer.ggml.eot_token_id", &eot)) printf("  %-15s %" PRId64 "\n", "eot id", eot);
        else if ((eot = find_token(in, "<|eot_id|>")) >= 0) printf("  %-15s %" PRId64 " (<|eot_id|>)\n", "eot id", eot);
        else printf("  %-15s (none)\n", "eot id");
        print_id(in, "unk id", "tokenizer.ggml.unknown_token_id");
        print_id(in, "pad id", "tokenizer.ggml.padding_token_id");
        bitnet_gguf_value v;
        if (get_value(in, "tokenizer.ggml.add_bos_token", &v) && v.type == BITNET_GGUF_BOOL)
            printf("  %-15s %s\n", "add bos", v.u ? "true" : "false");
        bool tmpl = get_value(in, "tokenizer.chat_template", &v) && v.type == BITNET_GGUF_STRING;
        if (tmpl) printf("  %-15s yes (%" PRIu64 " bytes)\n", "chat template", v.str_len);
        else printf("  %-15s no\n", "chat template");
    }

    bool header = false;
    for (int64_t i = 0; i < bitnet_gguf_kv_count(g); i++) {
        const char *k = bitnet_gguf_kv_key(g, i);
        bitnet_gguf_value v;
        if (shown_elsewhere(in, k) || bitnet_gguf_kv_value(g, i, &v)) continue;
        if (!header) printf("\nother metadata:\n");
        header = true;
        char *ck = clean_text(k, strlen(k), true, 60);
        printf("  %-40s ", ck ? ck : "");
        free(ck);
        print_value(&v, 60);
        printf("\n");
    }

    totals tot;
    count_tensors(in, &tot);
    printf("\ntensors:        %" PRId64 ", %" PRIu64 " parameters, %" PRIu64 " bytes of data\n",
           bitnet_gguf_tensor_count(g), tot.n_elem, tot.bytes);
    for (int k = 0; k < tot.n_types; k++) {
        const type_total *tt = &tot.by_type[k];
        printf("  %-8s %5" PRId64 " tensors %14" PRIu64 " parameters %14" PRIu64 " bytes", type_label(tt->type, buf, sizeof buf),
               tt->count, tt->n_elem, tt->bytes);
        if (tt->sized && tt->n_elem) printf("  %6.3f bits/weight\n", 8.0 * (double)tt->bytes / (double)tt->n_elem);
        else if (!tt->sized) printf("  (size unknown: this type cannot be read by this version)\n");
        else printf("\n");
    }
    if (tot.n_elem && !tot.unsized)
        printf("bits per weight: %.3f (all tensor data / all parameters)\n", 8.0 * (double)tot.bytes / (double)tot.n_elem);
    else if (tot.unsized)
        printf("bits per weight: unknown (%" PRIu64 " tensors of a type this version cannot size)\n", tot.unsized);

    if (tensors && bitnet_gguf_tensor_count(g) > 0) {
        printf("\n%5s  %-40s %-8s %-22s %12s %12s\n", "#", "name", "type", "shape", "bytes", "offset");
        for (int64_t i = 0; i < bitnet_gguf_tensor_count(g); i++) {
            bitnet_gguf_tensor_info t;
            if (bitnet_gguf_tensor_info_get(g, i, &t)) continue;
            char shape[96], tl[32];
            shape_text(&t, shape, sizeof shape);
            char *name = clean_text(t.name, t.name_len, true, 64);
            printf("%5" PRId64 "  %-40s %-8s %-22s %12" PRIu64 "%s %12" PRIu64 "\n", i, name ? name : "",
                   type_label(t.type, tl, sizeof tl), shape, t.nbytes, t.sized ? " " : "?", t.offset);
            free(name);
        }
    }
}

/* ---- this machine ------------------------------------------------------------------------- */

static void print_system_text(const bitnet_system_info *si, bool blank_line)
{
    printf("%ssystem:\n", blank_line ? "\n" : "");
    printf("  %-15s %s\n", "kernels", si->kernels);
    printf("  %-15s %s\n", "cpu features", si->cpu_features[0] ? si->cpu_features : "(none)");
    printf("  %-15s %d physical, %d logical\n", "cores", si->n_cores_physical, si->n_cores_logical);
    if (si->cache_bytes)
        printf("  %-15s %.*f %s last level (continuous batching splits sequences among threads when a\n"
               "  %-15s model's matrices fit)\n", "cache", si->cache_bytes % (1u << 20) ? 1 : 0,
               si->cache_bytes >= (1u << 20) ? (double)si->cache_bytes / 1048576.0 : (double)si->cache_bytes / 1024.0,
               si->cache_bytes >= (1u << 20) ? "MiB" : "KiB", "");
    else
        printf("  %-15s unknown (continuous batching shares every product's rows among threads)\n", "cache");
    printf("  %-15s %s\n", "I2_S layout",
           si->i2s_repack ? "repacked after loading: rows interleaved in groups (one memory stream per GEMV)"
                          : "as stored in the file");
    printf("  %-15s %s\n", "TQ layout",
           si->tq_repack ? "repacked after loading: rows interleaved in groups (one memory stream per GEMV)"
                         : "as stored in the file");
}

static cJSON *system_json(const bitnet_system_info *si)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kernels", si->kernels);
    cJSON_AddStringToObject(o, "cpu_features", si->cpu_features);
    cJSON_AddNumberToObject(o, "n_cores_physical", si->n_cores_physical);
    cJSON_AddNumberToObject(o, "n_cores_logical", si->n_cores_logical);
    cJSON_AddBoolToObject(o, "i2s_repack", si->i2s_repack);
    cJSON_AddBoolToObject(o, "tq_repack", si->tq_repack);
    cJSON_AddNumberToObject(o, "cache_bytes", (double)si->cache_bytes);
    return o;
}

/* ---- JSON output --------------------------------------------------------------------------- */

static cJSON *json_string(const char *s, uint64_t len)
{
    char *c = clean_text(s, len, false, 0);
    cJSON *j = cJSON_CreateString(c ? c : "");
    free(c);
    return j;
}

/* A value as JSON: numbers, bools and strings as themselves; arrays as {"type","n"} (the
 * tokenizer arrays are far too large to print). */
static cJSON *json_value(const bitnet_gguf_value *v)
{
    switch (v->type) {
    case BITNET_GGUF_BOOL: return cJSON_CreateBool(v->u != 0);
    case BITNET_GGUF_FLOAT32: {
        /* the shortest decimal that gives back the float (1e-05, not 9.99999974737875e-06) */
        char num[32];
        snprintf(num, sizeof num, "%.9g", v->f);
        for (int p = 6; p < 9; p++) {
            char t[32];
            snprintf(t, sizeof t, "%.*g", p, v->f);
            if ((float)strtod(t, NULL) == (float)v->f) {
                memcpy(num, t, sizeof t);
                break;
            }
        }
        return cJSON_CreateNumber(strtod(num, NULL));
    }
    case BITNET_GGUF_FLOAT64: return cJSON_CreateNumber(v->f);
    case BITNET_GGUF_STRING: return json_string(v->str, v->str_len);
    case BITNET_GGUF_ARRAY: {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "array_of", bitnet_gguf_type_name(v->elem_type));
        cJSON_AddNumberToObject(a, "n", (double)v->n_elem);
        return a;
    }
    default: return cJSON_CreateNumber(is_signed(v->type) ? (double)v->i : (double)v->u);
    }
}

static void json_add_id(cJSON *o, const info *in, const char *name, const char *key)
{
    int64_t id;
    if (get_int(in, key, &id)) cJSON_AddNumberToObject(o, name, (double)id);
    else cJSON_AddNullToObject(o, name);
}

static int print_cjson(cJSON *root)
{
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "bitnet: info: out of memory building JSON\n");
        return 1;
    }
    puts(text);
    cJSON_free(text);
    return 0;
}

static int print_json(const info *in, bool tensors, const bitnet_system_info *si)
{
    bitnet_gguf *g = in->g;
    char buf[256];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "file", json_string(in->path, strlen(in->path)));
    cJSON_AddNumberToObject(root, "gguf_version", bitnet_gguf_version(g));
    cJSON_AddNumberToObject(root, "alignment", bitnet_gguf_alignment(g));
    cJSON_AddNumberToObject(root, "file_size", (double)bitnet_gguf_file_size(g));
    if (in->arch[0]) cJSON_AddItemToObject(root, "architecture", json_string(in->arch, strlen(in->arch)));
    else cJSON_AddNullToObject(root, "architecture");
    if (get_string(in, "general.name", buf, sizeof buf)) cJSON_AddItemToObject(root, "name", json_string(buf, strlen(buf)));
    else cJSON_AddNullToObject(root, "name");
    int64_t ft;
    if (get_int(in, "general.file_type", &ft)) {
        cJSON_AddNumberToObject(root, "file_type", (double)ft);
        const char *n = ft >= 0 && ft <= UINT32_MAX ? bitnet_file_type_name((uint32_t)ft) : NULL;
        if (n) cJSON_AddStringToObject(root, "file_type_name", n);
        else cJSON_AddNullToObject(root, "file_type_name");
    } else {
        cJSON_AddNullToObject(root, "file_type");
        cJSON_AddNullToObject(root, "file_type_name");
    }

    cJSON *hp = cJSON_AddObjectToObject(root, "hparams");
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    size_t al = strlen(in->arch);
    for (int64_t i = 0; i < bitnet_gguf_kv_count(g); i++) {
        const char *k = bitnet_gguf_kv_key(g, i);
        bitnet_gguf_value v;
        if (bitnet_gguf_kv_value(g, i, &v)) continue;
        char *ck = clean_text(k, strlen(k), false, 0);
        if (!ck) continue;
        cJSON_AddItemToObject(meta, ck, json_value(&v));
        if (al && !strncmp(k, in->arch, al) && k[al] == '.') cJSON_AddItemToObject(hp, ck + al + 1, json_value(&v));
        free(ck);
    }

    cJSON *tok = cJSON_AddObjectToObject(root, "tokenizer");
    if (get_string(in, "tokenizer.ggml.model", buf, sizeof buf)) cJSON_AddItemToObject(tok, "model", json_string(buf, strlen(buf)));
    else cJSON_AddNullToObject(tok, "model");
    if (get_string(in, "tokenizer.ggml.pre", buf, sizeof buf)) cJSON_AddItemToObject(tok, "pre", json_string(buf, strlen(buf)));
    else cJSON_AddNullToObject(tok, "pre");
    cJSON_AddNumberToObject(tok, "n_tokens", (double)array_len(in, "tokenizer.ggml.tokens", NULL));
    cJSON_AddNumberToObject(tok, "n_merges", (double)array_len(in, "tokenizer.ggml.merges", NULL));
    cJSON_AddBoolToObject(tok, "has_scores", array_len(in, "tokenizer.ggml.scores", NULL) > 0);
    json_add_id(tok, in, "bos_id", "tokenizer.ggml.bos_token_id");
    json_add_id(tok, in, "eos_id", "tokenizer.ggml.eos_token_id");
    int64_t eot;
    if (get_int(in, "tokenizer.ggml.eot_token_id", &eot) || (eot = find_token(in, "<|eot_id|>")) >= 0)
        cJSON_AddNumberToObject(tok, "eot_id", (double)eot);
    else cJSON_AddNullToObject(tok, "eot_id");
    json_add_id(tok, in, "unk_id", "tokenizer.ggml.unknown_token_id");
    json_add_id(tok, in, "pad_id", "tokenizer.ggml.padding_token_id");
    bitnet_gguf_value v;
    cJSON_AddBoolToObject(tok, "chat_template", get_value(in, "tokenizer.chat_template", &v) && v.type == BITNET_GGUF_STRING);

    totals tot;
    count_tensors(in, &tot);
    cJSON *sum = cJSON_AddObjectToObject(root, "tensor_summary");
    cJSON_AddNumberToObject(sum, "n_tensors", (double)bitnet_gguf_tensor_count(g));
    cJSON_AddNumberToObject(sum, "n_params", (double)tot.n_elem);
    cJSON_AddNumberToObject(sum, "data_bytes", (double)tot.bytes);
    if (tot.n_elem && !tot.unsized) cJSON_AddNumberToObject(sum, "bits_per_weight", 8.0 * (double)tot.bytes / (double)tot.n_elem);
    else cJSON_AddNullToObject(sum, "bits_per_weight");
    cJSON *bt = cJSON_AddArrayToObject(sum, "by_type");
    for (int k = 0; k < tot.n_types; k++) {
        const type_total *tt = &tot.by_type[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", type_label(tt->type, buf, sizeof buf));
        cJSON_AddNumberToObject(o, "type_id", tt->type);
        cJSON_AddNumberToObject(o, "count", (double)tt->count);
        cJSON_AddNumberToObject(o, "n_params", (double)tt->n_elem);
        cJSON_AddNumberToObject(o, "bytes", (double)tt->bytes);
        cJSON_AddBoolToObject(o, "sized", tt->sized);
        if (tt->sized && tt->n_elem) cJSON_AddNumberToObject(o, "bits_per_weight", 8.0 * (double)tt->bytes / (double)tt->n_elem);
        else cJSON_AddNullToObject(o, "bits_per_weight");
        cJSON_AddItemToArray(bt, o);
    }

    if (tensors) {
        cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
        for (int64_t i = 0; i < bitnet_gguf_tensor_count(g); i++) {
            bitnet_gguf_tensor_info t;
            if (bitnet_gguf_tensor_info_get(g, i, &t)) continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "name", json_string(t.name, t.name_len));
            cJSON_AddStringToObject(o, "type", type_label(t.type, buf, sizeof buf));
            cJSON_AddNumberToObject(o, "type_id", t.type);
            cJSON *shape = cJSON_AddArrayToObject(o, "shape");
            for (uint32_t d = 0; d < t.n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t.ne[d]));
            cJSON_AddNumberToObject(o, "bytes", (double)t.nbytes);
            cJSON_AddNumberToObject(o, "offset", (double)t.offset);
            cJSON_AddBoolToObject(o, "sized", t.sized);
            cJSON_AddItemToArray(arr, o);
        }
    }

    if (si) cJSON_AddItemToObject(root, "system", system_json(si));
    return print_cjson(root);
}

int cmd_info(int argc, char **argv)
{
    bool json = false, tensors = false, show_system = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--tensors")) {
            tensors = true;
        } else if (!strcmp(a, "--system")) {
            show_system = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bitnet: info: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "bitnet: info: one file at a time ('%s' and '%s')\n", path, a);
            return 2;
        } else {
            path = a;
        }
    }
    bitnet_system_info si;
    if (show_system && bitnet_system_info_get(&si) != BITNET_OK) return cli_fail("info: system");
    if (!path && show_system) {
        if (json) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddItemToObject(root, "system", system_json(&si));
            return print_cjson(root);
        }
        print_system_text(&si, false);
        return fflush(stdout) != 0;
    }
    if (!path) {
        path = cli_default_model();
        if (!path) {
            fprintf(stderr, "bitnet: info: no MODEL given and the bundled model was not found\n\n");
            usage(stderr);
            return 2;
        }
        if (!json) printf("bundled model found at %s\n\n", path);
    }
    info in = {.path = path};
    if (bitnet_gguf_open(path, &in.g) != BITNET_OK) return cli_fail("info");
    if (!get_string(&in, "general.architecture", in.arch, sizeof in.arch)) in.arch[0] = '\0';
    int rc = 0;
    if (json) {
        rc = print_json(&in, tensors, show_system ? &si : NULL);
    } else {
        print_text(&in, tensors);
        if (show_system) print_system_text(&si, true);
    }
    if (!json && fflush(stdout) != 0) rc = 1;
    bitnet_gguf_free(in.g);
    return rc;
}
