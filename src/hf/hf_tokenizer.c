/* Hugging Face tokenizer.json for byte-level BPE models.  What is read:
 *   model: type "BPE", vocab {text: id}, merges ("a b" strings or ["a", "b"] pairs), ignore_merges;
 *   added_tokens: [{id, content, special}] (special -> control token, else user-defined);
 *   pre_tokenizer: Split with the Llama-3 or GPT-2 expression followed by ByteLevel, or a ByteLevel
 *   with use_regex (GPT-2); anything else is refused unless the caller names a pre-tokenizer;
 *   normalizer: must be null (a normalizer would change the text before splitting).
 * bos/eos come from a tokenizer_config.json beside the file when there is one, else from a
 * TemplateProcessing post-processor, else the Llama-3 defaults for the Llama-3 vocabulary. */
#include "hf/hf_tokenizer.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/file.h"
#include "common/mem.h"

#if BITNET_WITH_HF
#include <cjson/cJSON.h>

static const char LLAMA3_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                   "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static bool is_type(const cJSON *o, const char *type)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
}

static bool flag(const cJSON *o, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* Recognises the pre-tokenizer; BN_ERR_UNSUPPORTED with the reason otherwise. */
static bn_status detect_pretok(const cJSON *pre, bn_pretok *out)
{
    const cJSON *split = NULL, *bytelevel = NULL;
    if (is_type(pre, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        const cJSON *it;
        int n = 0;
        cJSON_ArrayForEach(it, list)
        {
            n++;
            if (is_type(it, "Split") && !split) split = it;
            else if (is_type(it, "ByteLevel") && !bytelevel) bytelevel = it;
            else return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: unsupported pre-tokenizer step %d", n);
        }
    } else if (is_type(pre, "ByteLevel")) {
        bytelevel = pre;
    } else if (is_type(pre, "Split")) {
        split = pre;
    }
    if (!bytelevel) return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: only byte-level BPE is supported");
    if (flag(bytelevel, "add_prefix_space", false))
        return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: ByteLevel add_prefix_space is not supported");
    bool byte_regex = flag(bytelevel, "use_regex", true);
    if (split) {
        const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(split, "pattern");
        const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(split, "behavior");
        if (byte_regex || !cJSON_IsString(regex) || !cJSON_IsString(behavior) ||
            strcmp(behavior->valuestring, "Isolated") != 0 || flag(split, "invert", false))
            return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: unsupported Split pre-tokenizer");
        if (strcmp(regex->valuestring, LLAMA3_REGEX) == 0) *out = BN_PRETOK_LLAMA3;
        else if (strcmp(regex->valuestring, GPT2_REGEX) == 0) *out = BN_PRETOK_GPT2;
        else
            return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: the split expression %.80s is not one we implement",
                            regex->valuestring);
        return BN_OK;
    }
    if (!byte_regex) return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: ByteLevel without a splitting expression");
    *out = BN_PRETOK_GPT2; /* ByteLevel's own expression is GPT-2's */
    return BN_OK;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static const char *token_content(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int32_t find_id(const bn_tok_str *tokens, int32_t n, const char *text)
{
    if (!text) return -1;
    size_t len = strlen(text);
    for (int32_t i = n - 1; i >= 0; i--) /* special tokens sit at the end */
        if (tokens[i].len == len && tokens[i].ptr && memcmp(tokens[i].ptr, text, len) == 0) return i;
    return -1;
}

/* BOS from a TemplateProcessing post-processor whose single-sequence template starts with a
 * special token. */
static const char *template_bos(const cJSON *post)
{
    if (!is_type(post, "TemplateProcessing")) return NULL;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
    const cJSON *first = cJSON_GetArrayItem(single, 0);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(sp, "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

typedef struct loader {
    cJSON *root, *config;
    bn_tok_str *tokens;
    int32_t *types;
    bn_tok_str *merges;
    char **joined; /* merges given as pairs, joined into "a b" */
    size_t n_joined;
} loader;

static bn_status read_vocab(loader *L, const cJSON *model, const cJSON *added, int32_t *n_vocab)
{
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return bn_error(BN_ERR_FORMAT, "tokenizer.json: model.vocab is not an object");
    double max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= (1 << 27) ||
            it->valuedouble != (double)(int32_t)it->valuedouble)
            return bn_error(BN_ERR_FORMAT, "tokenizer.json: vocab entry %.40s has a bad id", it->string);
        if (it->valuedouble > max_id) max_id = it->valuedouble;
    }
    cJSON_ArrayForEach(it, added)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (1 << 27) ||
            id->valuedouble != (double)(int32_t)id->valuedouble || !cJSON_IsString(content))
            return bn_error(BN_ERR_FORMAT, "tokenizer.json: an added token has a bad id or content");
        if (id->valuedouble > max_id) max_id = id->valuedouble;
    }
    if (max_id < 0) return bn_error(BN_ERR_FORMAT, "tokenizer.json: the vocabulary is empty");
    int32_t n = (int32_t)max_id + 1;
    L->tokens = bn_calloc((size_t)n, sizeof *L->tokens);
    L->types = bn_calloc((size_t)n, sizeof *L->types);
    if (!L->tokens || !L->types) return BN_ERR_NOMEM;
    cJSON_ArrayForEach(it, vocab)
    {
        int32_t id = (int32_t)it->valuedouble;
        if (L->types[id]) return bn_error(BN_ERR_FORMAT, "tokenizer.json: id %d appears twice in the vocab", (int)id);
        L->tokens[id] = (bn_tok_str){it->string, strlen(it->string)};
        L->types[id] = BN_TOKTYPE_NORMAL;
    }
    cJSON_ArrayForEach(it, added)
    {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        L->tokens[id] = (bn_tok_str){content, strlen(content)};
        L->types[id] = flag(it, "special", false) ? BN_TOKTYPE_CONTROL : BN_TOKTYPE_USER_DEFINED;
    }
    for (int32_t i = 0; i < n; i++) {
        if (!L->types[i]) { /* a hole in the ids: a token that is never produced */
            L->tokens[i] = (bn_tok_str){"", 0};
            L->types[i] = BN_TOKTYPE_UNUSED;
        }
    }
    *n_vocab = n;
    return BN_OK;
}

static bn_status read_merges(loader *L, const cJSON *model, size_t *n_merges)
{
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!merges) {
        *n_merges = 0;
        return BN_OK;
    }
    if (!cJSON_IsArray(merges)) return bn_error(BN_ERR_FORMAT, "tokenizer.json: model.merges is not an array");
    size_t n = (size_t)cJSON_GetArraySize(merges);
    L->merges = bn_calloc(n ? n : 1, sizeof *L->merges);
    L->joined = bn_calloc(n ? n : 1, sizeof *L->joined);
    if (!L->merges || !L->joined) return BN_ERR_NOMEM;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, merges)
    {
        if (cJSON_IsString(it)) {
            L->merges[i] = (bn_tok_str){it->valuestring, strlen(it->valuestring)};
        } else {
            const cJSON *a = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b))
                return bn_error(BN_ERR_FORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", i);
            size_t la = strlen(a->valuestring), lb = strlen(b->valuestring);
            char *j = bn_malloc(la + lb + 2);
            if (!j) return BN_ERR_NOMEM;
            memcpy(j, a->valuestring, la);
            j[la] = ' ';
            memcpy(j + la + 1, b->valuestring, lb + 1);
            L->joined[L->n_joined++] = j;
            L->merges[i] = (bn_tok_str){j, la + lb + 1};
        }
        i++;
    }
    *n_merges = n;
    return BN_OK;
}

static bn_status load(loader *L, const char *json, size_t len, const char *config, size_t config_len,
                      bn_pretok pretok, bn_tokenizer **out)
{
    L->root = cJSON_ParseWithLength(json, len);
    if (!L->root) return bn_error(BN_ERR_FORMAT, "tokenizer.json is not valid JSON");
    if (config) {
        L->config = cJSON_ParseWithLength(config, config_len);
        if (!L->config) return bn_error(BN_ERR_FORMAT, "tokenizer_config.json is not valid JSON");
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(L->root, "model");
    if (!cJSON_IsObject(model)) return bn_error(BN_ERR_FORMAT, "tokenizer.json has no model");
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (mtype && !is_type(model, "BPE"))
        return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: model type %.40s is not supported (only BPE)",
                        cJSON_IsString(mtype) ? mtype->valuestring : "?");
    if (flag(model, "byte_fallback", false))
        return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: byte_fallback BPE (SentencePiece style) is not supported");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(L->root, "normalizer");
    if (norm && !cJSON_IsNull(norm))
        return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json: normalizers are not supported");

    bn_tokenizer_desc d;
    memset(&d, 0, sizeof d);
    d.kind = BN_TOK_BPE;
    bn_status st;
    bn_pretok detected = BN_PRETOK_AUTO;
    st = detect_pretok(cJSON_GetObjectItemCaseSensitive(L->root, "pre_tokenizer"), &detected);
    if (st != BN_OK && pretok == BN_PRETOK_AUTO) return st;
    d.pretok = pretok == BN_PRETOK_AUTO ? detected : pretok;
    d.ignore_merges = flag(model, "ignore_merges", false);

    const cJSON *added = cJSON_GetObjectItemCaseSensitive(L->root, "added_tokens");
    if ((st = read_vocab(L, model, added, &d.n_vocab)) != BN_OK) return st;
    if ((st = read_merges(L, model, &d.n_merges)) != BN_OK) return st;
    d.tokens = L->tokens;
    d.types = L->types;
    d.merges = L->merges;

    bool llama3 = bn_tok_texts_are_llama3(L->tokens, d.n_vocab);
    const char *bos = NULL, *eos = NULL;
    int add_bos = -1;
    if (L->config) {
        bos = token_content(cJSON_GetObjectItemCaseSensitive(L->config, "bos_token"));
        eos = token_content(cJSON_GetObjectItemCaseSensitive(L->config, "eos_token"));
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(L->config, "add_bos_token");
        if (cJSON_IsBool(ab)) add_bos = cJSON_IsTrue(ab);
    }
    const char *tbos = template_bos(cJSON_GetObjectItemCaseSensitive(L->root, "post_processor"));
    if (!bos) bos = tbos;
    if (add_bos < 0 && tbos) add_bos = 1;
    if (llama3) {
        if (!bos) bos = "<|begin_of_text|>";
        if (!eos) eos = "<|end_of_text|>";
        if (add_bos < 0) add_bos = 1; /* as the BitNet and Llama-3 GGUF files say */
    }
    d.bos = find_id(L->tokens, d.n_vocab, bos);
    d.eos = find_id(L->tokens, d.n_vocab, eos);
    d.unk = d.eot = d.eom = -1;
    d.add_bos = add_bos > 0;
    return bn_tokenizer_build(&d, out);
}

bn_status bn_hf_tokenizer_load_memory(const char *json, size_t len, const char *config, size_t config_len,
                                      bn_pretok pretok, bn_tokenizer **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "bn_hf_tokenizer_load_memory: out is NULL");
    *out = NULL;
    if (!json) return bn_error(BN_ERR_INVALID_ARG, "bn_hf_tokenizer_load_memory: no JSON");
    if (pretok < BN_PRETOK_AUTO || pretok > BN_PRETOK_DEFAULT)
        return bn_error(BN_ERR_INVALID_ARG, "unknown pre-tokenizer option %d", (int)pretok);
    loader L;
    memset(&L, 0, sizeof L);
    bn_status st = load(&L, json, len, config, config_len, pretok, out);
    for (size_t i = 0; i < L.n_joined; i++) bn_free(L.joined[i]);
    bn_free(L.joined);
    bn_free(L.merges);
    bn_free(L.tokens);
    bn_free(L.types);
    cJSON_Delete(L.root);
    cJSON_Delete(L.config);
    return st;
}

bn_status bn_hf_tokenizer_load(const char *path, bn_pretok pretok, bn_tokenizer **out)
{
    if (out) *out = NULL;
    if (!path) return bn_error(BN_ERR_INVALID_ARG, "bn_hf_tokenizer_load: path is NULL");
    bn_mapfile mf, cf;
    bn_status st = bn_mapfile_open(&mf, path);
    if (st != BN_OK) return st;
    /* tokenizer_config.json in the same folder, if present */
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    char *cpath = bn_malloc(dir + sizeof "tokenizer_config.json");
    bool have_config = false;
    if (cpath) {
        memcpy(cpath, path, dir);
        memcpy(cpath + dir, "tokenizer_config.json", sizeof "tokenizer_config.json");
        FILE *f = fopen(cpath, "rb");
        if (f) {
            fclose(f);
            have_config = bn_mapfile_open(&cf, cpath) == BN_OK;
        }
        bn_free(cpath);
    }
    if (!cpath) st = BN_ERR_NOMEM;
    else
        st = bn_hf_tokenizer_load_memory((const char *)mf.data, mf.size, have_config ? (const char *)cf.data : NULL,
                                         have_config ? cf.size : 0, pretok, out);
    if (have_config) bn_mapfile_close(&cf);
    bn_mapfile_close(&mf);
    if (st != BN_OK) bn_error_prefix(st, "%s: ", path);
    return st;
}

#else /* !BITNET_WITH_HF */

bn_status bn_hf_tokenizer_load_memory(const char *json, size_t len, const char *config, size_t config_len,
                                      bn_pretok pretok, bn_tokenizer **out)
{
    if (out) *out = NULL;
    return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json support was not built (BITNET_WITH_HF=OFF)");
}

bn_status bn_hf_tokenizer_load(const char *path, bn_pretok pretok, bn_tokenizer **out)
{
    if (out) *out = NULL;
    return bn_error(BN_ERR_UNSUPPORTED, "tokenizer.json support was not built (BITNET_WITH_HF=OFF)");
}

#endif
